//! Time and accuracy of single-field reads, single-threaded, per preprocessing preset.
//!
//! `cargo bench -p endoreg-ocr` compares the presets (a few minutes); `cargo bench -p endoreg-ocr -- default`
//! measures only the default. For every preset: 1080p fields (cap height 20–32 px) and 540p fields (10–16
//! px), two fonts, names, dates, times and endoscope types and serial numbers, each clean and degraded (blur, noise, JPEG q30); exact-match
//! accuracy, the median time of one `read_line` after a warm-up, and the CPU time per read. Then the
//! anonymisation check of one area, black and with text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use endoreg_ocr::{Charset, Engine, EngineConfig, InspectOptions, Language, LumaImage, Preprocess, Rect, ResizeFilter, TokenSet};

struct Case {
    frame: LumaImage,
    degraded: LumaImage,
    fields: Vec<(Rect, &'static str, Charset)>,
    p1080: bool,
}

fn cases() -> Vec<Case> {
    let fonts = [font(DEJAVU_SANS_MONO), font(DEJAVU_SANS)];
    let mut texts: Vec<(&'static str, Charset)> = Vec::new();
    texts.extend(NAMES.iter().map(|t| (*t, Charset::NAME)));
    texts.extend(DATES.iter().map(|t| (*t, Charset::DATE)));
    texts.extend(TIMES.iter().map(|t| (*t, Charset::TIME)));
    texts.extend(DEVICES.iter().map(|t| (*t, Charset::ALPHANUMERIC)));
    let strings: Vec<&str> = texts.iter().map(|(t, _)| *t).collect();
    let mut out = Vec::new();
    let mut seed = 0;
    for (w, h, caps, p1080) in [(1920, 1080, [20.0, 24.0, 28.0, 32.0], true), (960, 540, [10.0, 12.0, 14.0, 16.0], false)] {
        for f in &fonts {
            for cap in caps {
                let (frame, rects) = overlay(w, h, f, &strings, 40, 40, cap);
                seed += 1;
                let degraded = degrade(&frame, DEGRADED, seed);
                let fields = rects.into_iter().zip(&texts).map(|(r, (t, c))| (r, *t, c.clone())).collect();
                out.push(Case { frame, degraded, fields, p1080 });
            }
        }
    }
    out
}

#[derive(Default)]
struct Tally {
    right: usize,
    total: usize,
    times: Vec<Duration>,
}

impl Tally {
    fn pct(&self) -> f64 {
        100.0 * self.right as f64 / self.total.max(1) as f64
    }
}

fn main() {
    let only_default = std::env::args().any(|a| a == "default");
    let d = Preprocess::default();
    let deu = vec![Language::new("deu").unwrap()];
    let deu_eng = vec![Language::new("deu").unwrap(), Language::new("eng").unwrap()];
    let default_langs = EngineConfig::default().languages;
    let mut presets: Vec<(&str, Vec<Language>, Preprocess)> = vec![("default", default_langs, d)];
    if !only_default {
        presets.push(("deu only", deu, d));
        for (name, p) in [
            ("Otsu binarised", Preprocess { binarise: true, ..d }),
            ("grey, not stretched", Preprocess { stretch: false, ..d }),
            ("no upscale", Preprocess { max_scale: 1, ..d }),
            ("target 32", Preprocess { target_height: 32, ..d }),
            ("target 48", Preprocess { target_height: 48, ..d }),
            ("target 64", Preprocess { target_height: 64, ..d }),
            ("target 96", Preprocess { target_height: 96, ..d }),
            ("lanczos3", Preprocess { filter: ResizeFilter::Lanczos3, ..d }),
            ("target 64 lanczos3", Preprocess { target_height: 64, filter: ResizeFilter::Lanczos3, ..d }),
        ] {
            presets.push((name, deu_eng.clone(), p));
        }
    }
    let cases = cases();
    println!("libtesseract {}", tesseract_version());
    match std::env::var("OMP_THREAD_LIMIT") {
        Ok(v) => println!("OMP_THREAD_LIMIT={v}"),
        Err(_) => println!("OMP_THREAD_LIMIT is not set: libtesseract's OpenMP threads will inflate the times (docs/ocr.md)"),
    }
    println!(
        "| preset | languages | filter | target h | Otsu | stretch | 1080p clean | 1080p degraded | 540p clean | 540p degraded | median ms 1080p | median ms 540p | CPU ms per read |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, languages, p) in presets {
        let langs = languages.iter().map(Language::as_str).collect::<Vec<_>>().join("+");
        let mut engine = Engine::new(&EngineConfig { languages, preprocess: p, ..EngineConfig::default() })
            .expect("Tesseract with deu and eng (.ci/setup)");
        // Warm-up: the first reads allocate Tesseract's buffers.
        for (r, _, c) in cases[0].fields.iter().take(3) {
            let _ = engine.read_line(&cases[0].frame.as_plane(), *r, c);
        }
        let mut t: [Tally; 4] = Default::default();
        let cpu_start = thread_cpu_ticks();
        for case in &cases {
            for (degraded, img) in [(false, &case.frame), (true, &case.degraded)] {
                let slot = usize::from(!case.p1080) * 2 + usize::from(degraded);
                for (rect, text, charset) in &case.fields {
                    let start = Instant::now();
                    let reading = engine.read_line(&img.as_plane(), *rect, charset).expect("read");
                    t[slot].times.push(start.elapsed());
                    t[slot].total += 1;
                    t[slot].right += usize::from(reading.text == *text);
                }
            }
        }
        let cpu_ticks = thread_cpu_ticks().zip(cpu_start).map(|(e, s)| e.saturating_sub(s));
        let reads: usize = t.iter().map(|x| x.total).sum();
        // Linux reports thread CPU time in ticks of 10 ms (USER_HZ = 100).
        let cpu_ms = cpu_ticks.map_or(f64::NAN, |ticks| ticks as f64 * 10.0 / reads as f64);
        let mut all1080: Vec<Duration> = t[0].times.iter().chain(&t[1].times).copied().collect();
        let mut all540: Vec<Duration> = t[2].times.iter().chain(&t[3].times).copied().collect();
        all1080.sort();
        all540.sort();
        println!(
            "| {name} | {langs} | {:?} | {} (max ×{}) | {} | {} | {:.1} % ({}) | {:.1} % | {:.1} % ({}) | {:.1} % | {:.1} | {:.1} | {cpu_ms:.1} |",
            p.filter,
            p.target_height,
            p.max_scale,
            p.binarise,
            p.stretch,
            t[0].pct(),
            t[0].total,
            t[1].pct(),
            t[2].pct(),
            t[2].total,
            t[3].pct(),
            all1080[all1080.len() / 2].as_secs_f64() * 1000.0,
            all540[all540.len() / 2].as_secs_f64() * 1000.0,
        );
    }
    inspect_timings();
}

/// The anonymisation check on one area left of the endoscope image: black (the pixel check only) and with
/// text a wrong layout left (pixel check, then sparse OCR of the whole area).
fn inspect_timings() {
    let mut engine = Engine::new(&EngineConfig::default()).expect("engine");
    let tokens = TokenSet::new(&["Erika", "Mustermann", "12.08.1961"]);
    let options = InspectOptions::default();
    let f = font(DEJAVU_SANS);
    let texts = ["MUSTERMANN, ERIKA", "12.08.1961", "03.02.2024 14:32"];
    let black = LumaImage::filled(1920, 1080, BLACK).unwrap();
    let (text_1080, _) = overlay(1920, 1080, &f, &texts, 40, 200, 24.0);
    let (text_540, _) = overlay(960, 540, &f, &texts, 20, 100, 12.0);
    println!();
    println!("| anonymisation check, one area | median |");
    println!("|---|---|");
    for (name, img, area, runs) in [
        ("1080p, 600x1080, black", &black, Rect::new(0, 0, 600, 1080), 200),
        ("1080p, 600x1080, three lines of text", &text_1080, Rect::new(0, 0, 600, 1080), 10),
        ("540p, 300x540, three lines of text", &text_540, Rect::new(0, 0, 300, 540), 10),
    ] {
        let _ = engine.inspect(&img.as_plane(), area, &tokens, &options).unwrap();
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let start = Instant::now();
                let i = engine.inspect(&img.as_plane(), area, &tokens, &options).unwrap();
                std::hint::black_box(i);
                start.elapsed()
            })
            .collect();
        times.sort();
        println!("| {name} | {:.3} ms |", times[times.len() / 2].as_secs_f64() * 1000.0);
    }
}

/// User plus system CPU time of the calling thread, in clock ticks, from /proc (no unsafe, no libc).
fn thread_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command name: state is field 3 of stat(5), utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn tesseract_version() -> String {
    endoreg_ocr::check_installation(&EngineConfig::default()).map(|i| i.version).unwrap_or_else(|e| e.to_string())
}
