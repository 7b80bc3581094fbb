//! A synthetic, endoscopy-like video: a round endoscope image with moving mucosa-like texture, and a fake
//! patient's name and birth date drawn where the processor prints them. The demo, the tests and the
//! benchmarks use it, so nothing real is needed to try the pipeline.
//!
//! The video runs through phases that a frame classifier can tell apart: outside the body (bright, grey),
//! mucosa (pink, textured), narrow-band imaging (green-blue), low quality (blurred), mucosa again.

use std::path::Path;

use ffmpeg::format::Pixel;
use ffmpeg::frame;
use ffmpeg_next as ffmpeg;

use super::MediaError;
use super::encode::{Colour, H264Settings, H264Writer};
use super::mask::{Layout, Mask, Rect};
use super::output::PartialFile;

/// What the demo video shows at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Outside,
    Mucosa,
    Nbi,
    Blurry,
}

/// The phase of frame `i` of `n`: outside 0–15 %, mucosa 15–55 %, NBI 55–70 %, blurry 70–85 %, mucosa.
pub fn phase(i: u64, n: u64) -> Phase {
    let p = i as f64 / n.max(1) as f64;
    match p {
        p if p < 0.15 => Phase::Outside,
        p if p < 0.55 => Phase::Mucosa,
        p if p < 0.70 => Phase::Nbi,
        p if p < 0.85 => Phase::Blurry,
        _ => Phase::Mucosa,
    }
}

/// The layout of the knowledge base's `olympus_cv_1500` (crates/registry/kb/processors.toml): for demo
/// videos, tests and benchmarks that run without a registry.
pub fn olympus_cv_1500() -> Layout {
    let r = |name: &str, kind: &str, x, y, width, height| endoreg_common::api::Region {
        name: name.into(),
        kind: kind.into(),
        x,
        y,
        width,
        height,
    };
    Layout {
        processor: "olympus_cv_1500".into(),
        width: 1920,
        height: 1080,
        regions: vec![
            r("endoscope_image", "endoscope_image", 580, 30, 1320, 1020),
            r("patient_id", "patient_information", 20, 30, 540, 44),
            r("patient_name", "patient_information", 20, 76, 540, 44),
            r("patient_sex_age", "patient_information", 20, 122, 540, 44),
            r("patient_birth_date", "patient_information", 20, 168, 540, 44),
            r("examination_date", "patient_information", 20, 240, 360, 44),
            r("examination_time", "patient_information", 20, 286, 360, 44),
            r("comment", "patient_information", 20, 780, 540, 90),
            r("endoscope_model", "device_information", 20, 890, 540, 44),
            r("endoscope_serial", "device_information", 20, 936, 540, 44),
            r("image_settings", "device_information", 20, 990, 540, 60),
        ],
    }
}

/// The fake identity drawn into the overlays.
#[derive(Debug, Clone)]
pub struct FakePatient {
    pub name: String,
    pub birth_date: String,
    pub examination_date: String,
}

impl Default for FakePatient {
    fn default() -> Self {
        FakePatient { name: "MUSTERMANN, ERIKA".into(), birth_date: "12.08.1961".into(), examination_date: "03.02.2024".into() }
    }
}

#[derive(Debug, Clone)]
pub struct DemoSpec {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub frames: u64,
    pub layout: Layout,
    pub patient: FakePatient,
    /// Per-frame noise: makes the video large and hard to compress (for memory benchmarks).
    pub noise: u8,
    pub encoding: H264Settings,
}

impl DemoSpec {
    /// A quick demo video for tests: the Olympus CV-1500 layout scaled to `width`×`height`, 25 fps, the
    /// default fake patient, no noise, x264 `ultrafast` at CRF 23.
    pub fn olympus(width: u32, height: u32, frames: u64) -> Self {
        DemoSpec {
            width,
            height,
            fps: 25,
            frames,
            layout: olympus_cv_1500(),
            patient: FakePatient::default(),
            noise: 0,
            encoding: H264Settings { crf: 23, preset: "ultrafast".into(), threads: 0, ..H264Settings::default() },
        }
    }
}

const TILE: usize = 512;

/// A tileable fold-like texture (0..=255) and its blurred version.
fn textures() -> (Vec<u8>, Vec<u8>) {
    let mut t = vec![0u8; TILE * TILE];
    let k = std::f64::consts::TAU / TILE as f64;
    for y in 0..TILE {
        for x in 0..TILE {
            let (fx, fy) = (x as f64 * k, y as f64 * k);
            let v = (3.0 * fx + (2.0 * fy).sin()).sin() * 0.45
                + (5.0 * fy + 1.3 * (3.0 * fx).cos()).sin() * 0.35
                + (9.0 * (fx + fy)).sin() * 0.2;
            t[y * TILE + x] = ((v * 0.5 + 0.5) * 255.0).clamp(0.0, 255.0) as u8;
        }
    }
    let r = 12usize;
    let mut blurred = vec![0u8; TILE * TILE];
    let mut tmp = vec![0u32; TILE * TILE];
    for y in 0..TILE {
        for x in 0..TILE {
            let s: u32 = (0..=2 * r).map(|d| u32::from(t[y * TILE + (x + TILE + d - r) % TILE])).sum();
            tmp[y * TILE + x] = s / (2 * r as u32 + 1);
        }
    }
    for y in 0..TILE {
        for x in 0..TILE {
            let s: u32 = (0..=2 * r).map(|d| tmp[((y + TILE + d - r) % TILE) * TILE + x]).sum();
            blurred[y * TILE + x] = (s / (2 * r as u32 + 1)) as u8;
        }
    }
    (t, blurred)
}

fn yuv(r: f64, g: f64, b: f64) -> (u8, u8, u8) {
    let y = 16.0 + (65.738 * r + 129.057 * g + 25.064 * b) / 256.0;
    let u = 128.0 + (-37.945 * r - 74.494 * g + 112.439 * b) / 256.0;
    let v = 128.0 + (112.439 * r - 94.154 * g - 18.285 * b) / 256.0;
    (y.clamp(16.0, 235.0) as u8, u.clamp(16.0, 240.0) as u8, v.clamp(16.0, 240.0) as u8)
}

/// 256-entry colour ramps per phase, indexed by texture value.
fn palette(phase: Phase) -> Vec<(u8, u8, u8)> {
    (0..256)
        .map(|i| {
            let t = f64::from(i) / 255.0;
            match phase {
                Phase::Outside => yuv(190.0 + 40.0 * t, 188.0 + 40.0 * t, 185.0 + 40.0 * t),
                Phase::Mucosa | Phase::Blurry => yuv(150.0 + 90.0 * t, 55.0 + 60.0 * t, 60.0 + 45.0 * t),
                Phase::Nbi => yuv(40.0 + 50.0 * t, 110.0 + 90.0 * t, 100.0 + 70.0 * t),
            }
        })
        .collect()
}

/// A 5×7 bitmap font for the overlays: upper-case letters, digits and a few signs.
fn glyph(c: char) -> [u8; 7] {
    match c {
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        _ => [0; 7],
    }
}

/// Draws `text` in white into `rect` of the luma plane, as large as the rectangle's height allows.
fn draw_text(y_plane: &mut [u8], stride: usize, rect: &Rect, text: &str) {
    let scale = (rect.h / 9).max(1) as usize;
    let mut x0 = rect.x as usize + scale;
    let y0 = rect.y as usize + scale;
    for c in text.chars() {
        let g = glyph(c.to_ascii_uppercase());
        if x0 + 5 * scale > rect.right() as usize {
            break;
        }
        for (row, bits) in g.iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) != 0 {
                    for dy in 0..scale {
                        let y = y0 + row * scale + dy;
                        if y >= rect.bottom() as usize {
                            continue;
                        }
                        let start = y * stride + x0 + col * scale;
                        y_plane[start..start + scale].fill(235);
                    }
                }
            }
        }
        x0 += 6 * scale;
    }
}

fn overlay_text(name: &str, patient: &FakePatient) -> String {
    let n = name.to_ascii_lowercase();
    if n.contains("setting") || n.contains("comment") {
        "SCREENING".into()
    } else if n.contains("name") {
        patient.name.clone()
    } else if n.contains("birth") || n.contains("dob") {
        patient.birth_date.clone()
    } else if n.contains("time") {
        "10:42:17".into()
    } else if n.contains("date") {
        patient.examination_date.clone()
    } else if n.contains("sex") || n.contains("age") {
        "F 62Y".into()
    } else if n.contains("id") {
        "ID 0815-4711".into()
    } else if n.contains("serial") || n.contains("sn") {
        "SN 2201234".into()
    } else if n.contains("model") || n.contains("type") {
        "CF-HQ190L".into()
    } else {
        "SCREENING".into()
    }
}

/// Generates the demo video at `path` (which appears only when complete). Returns the number of frames
/// written.
pub fn generate(path: &Path, spec: &DemoSpec) -> Result<u64, MediaError> {
    let (w, h) = (spec.width, spec.height);
    if w % 2 != 0 || h % 2 != 0 || w < 64 || h < 64 {
        return Err(MediaError::Unsupported(format!("demo size {w}x{h}: use even sides of at least 64")));
    }
    let mask = Mask::for_video(&spec.layout, w, h)?;
    let (texture, blurred) = textures();
    let palettes = [Phase::Outside, Phase::Mucosa, Phase::Nbi, Phase::Blurry].map(|p| (p, palette(p)));
    // The round endoscope picture inside the image rectangle, with vignetting to its edge.
    let k = mask.keep;
    let (cx, cy) = (f64::from(k.x) + f64::from(k.w) / 2.0, f64::from(k.y) + f64::from(k.h) / 2.0);
    let radius = f64::from(k.w.min(k.h)) / 2.0 * 0.96;
    let mut vignette = vec![0u8; (w * h) as usize];
    for y in k.y..k.bottom() {
        for x in k.x..k.right() {
            let d = ((f64::from(x) - cx).powi(2) + (f64::from(y) - cy).powi(2)).sqrt() / radius;
            if d < 1.0 {
                vignette[(y * w + x) as usize] = ((1.0 - d.powi(4) * 0.7) * 255.0) as u8;
            }
        }
    }
    // Texels per pixel: the texture keeps its size relative to the endoscope image (1:1 at 1080p), so the
    // picture looks alike at every resolution, as a real scene does, and a classifier sees the same thing.
    let texel = 1020.0 / f64::from(k.h.max(1));
    let texel_x: Vec<usize> = (0..w as usize).map(|x| (x as f64 * texel) as usize).collect();
    let texel_y: Vec<usize> = (0..h as usize).map(|y| (y as f64 * texel) as usize).collect();
    let rate = ffmpeg::Rational::new(spec.fps as i32, 1);
    let partial = PartialFile::beside(path)?;
    let mut writer =
        H264Writer::create(partial.path(), w, h, ffmpeg::Rational::new(1, spec.fps as i32), rate, Colour::default(), &spec.encoding)?;
    let mut f = frame::Video::new(Pixel::YUV420P, w, h);
    let mut rng: u32 = 0x9E37_79B9;
    let overlays: Vec<(Rect, String)> = mask
        .blank
        .iter()
        .zip(spec.layout.regions.iter().filter(|r| r.kind != "endoscope_image"))
        .map(|(rect, r)| (*rect, overlay_text(&r.name, &spec.patient)))
        .collect();
    for i in 0..spec.frames {
        let ph = phase(i, spec.frames);
        let pal = &palettes.iter().find(|(p, _)| *p == ph).map(|(_, pal)| pal).ok_or_else(|| MediaError::internal("demo", "palette"))?;
        let tex = if ph == Phase::Blurry { &blurred } else { &texture };
        let (dx, dy) = ((i * 3) as usize, (i * 2) as usize);
        let ys = f.stride(0);
        {
            let yp = f.data_mut(0);
            for y in 0..h as usize {
                let row = &mut yp[y * ys..y * ys + w as usize];
                row.fill(16);
                let ty = ((texel_y[y] + dy) % TILE) * TILE;
                for x in k.x as usize..k.right() as usize {
                    let v = vignette[y * w as usize + x];
                    if v == 0 {
                        continue;
                    }
                    let t = tex[ty + (texel_x[x] + dx) % TILE];
                    let mut luma = 16 + ((u32::from(pal[t as usize].0) - 16) * u32::from(v) / 255) as u8;
                    if spec.noise > 0 {
                        rng ^= rng << 13;
                        rng ^= rng >> 17;
                        rng ^= rng << 5;
                        luma = luma.saturating_add((rng % u32::from(spec.noise)) as u8).min(235);
                    }
                    row[x] = luma;
                }
            }
            for (rect, text) in &overlays {
                draw_text(yp, ys, rect, text);
            }
        }
        for plane in 1..=2usize {
            let cs = f.stride(plane);
            let cp = f.data_mut(plane);
            for cy in 0..(h / 2) as usize {
                let row = &mut cp[cy * cs..cy * cs + (w / 2) as usize];
                row.fill(128);
                let (y, ty) = (cy * 2, ((texel_y[cy * 2] + dy) % TILE) * TILE);
                let first = (k.x as usize).div_ceil(2);
                for (cx, sample) in row.iter_mut().enumerate().take(k.right() as usize / 2).skip(first) {
                    let x = cx * 2;
                    if vignette[y * w as usize + x] == 0 {
                        continue;
                    }
                    let t = tex[ty + (texel_x[x] + dx) % TILE] as usize;
                    *sample = if plane == 1 { pal[t].1 } else { pal[t].2 };
                }
            }
        }
        f.set_pts(Some(i as i64));
        writer.write(&f)?;
    }
    let frames = writer.finish()?;
    partial.persist()?;
    Ok(frames)
}
