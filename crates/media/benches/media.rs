//! The media worker's speed and memory targets, each against a baseline measured in the same run
//! (`cargo bench -p endoreg-media --bench media`):
//!
//! - frame extraction of a 1920×1080 H.264 video to JPEG: ≥ 1.0× the throughput of the `ffmpeg` CLI doing
//!   the same (`-q:v 3`, every frame);
//! - anonymisation + encoding: ≥ 0.9× the throughput of `ffmpeg` with `drawbox` filters blanking the same
//!   regions and libx264 with the same preset and CRF;
//! - peak RSS of the registry receiving a 1 GB video upload, and of the media worker processing it:
//!   ≤ 300 MB each (`ENDOREG_BENCH_SKIP_RSS=1` skips this part; it needs `cargo build --release -p
//!   endoreg-cli` first, for the registry binary).
//!
//! Prints a table and exits non-zero if a target is missed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a benchmark reports failure

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use endoreg_common::api::Region;
use endoreg_media::video::demo::{self, DemoSpec, FakePatient};
use endoreg_media::video::encode::H264Settings;
use endoreg_media::video::frames::{self, FrameSettings};
use endoreg_media::video::mask::{Layout, Mask};
use endoreg_media::video::{anonymise, probe};

const PRESET: &str = "veryfast";
const CRF: u8 = 20;
const QSCALE: u8 = 3;

fn layout() -> Layout {
    let r = |name: &str, kind: &str, x, y, width, height| Region { name: name.into(), kind: kind.into(), x, y, width, height };
    Layout {
        processor: "olympus_cv_1500".into(),
        width: 1920,
        height: 1080,
        regions: vec![
            r("endoscope_image", "endoscope_image", 580, 30, 1320, 1020),
            r("patient_id", "patient_information", 20, 30, 540, 44),
            r("patient_name", "patient_information", 20, 76, 540, 44),
            r("patient_birth_date", "patient_information", 20, 168, 540, 44),
            r("examination_date", "patient_information", 20, 240, 360, 44),
            r("examination_time", "patient_information", 20, 286, 360, 44),
            r("endoscope_model", "device_information", 20, 890, 540, 44),
        ],
    }
}

fn generate(path: &Path, frames: u64, noise: u8) {
    let spec = DemoSpec {
        width: 1920,
        height: 1080,
        fps: 25,
        frames,
        layout: layout(),
        patient: FakePatient::default(),
        noise,
        encoding: H264Settings { crf: 18, preset: PRESET.into(), threads: 0, ..H264Settings::default() },
    };
    demo::generate(path, &spec).unwrap();
}

fn ffmpeg(args: &[&str]) -> f64 {
    let t = Instant::now();
    let status =
        Command::new("ffmpeg").args(["-nostdin", "-v", "error", "-y"]).args(args).status().expect("run ffmpeg (apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg {args:?} failed");
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `drawbox` filters that blank what the mask blanks.
fn drawbox_filter(mask: &Mask, w: u32, h: u32) -> String {
    let k = mask.keep;
    let mut boxes = vec![(0, 0, k.x, h), (k.right(), 0, w - k.right(), h), (k.x, 0, k.w, k.y), (k.x, k.bottom(), k.w, h - k.bottom())];
    boxes.extend(mask.blank.iter().map(|b| (b.x, b.y, b.w, b.h)));
    boxes
        .into_iter()
        .filter(|(_, _, bw, bh)| *bw > 0 && *bh > 0)
        .map(|(x, y, bw, bh)| format!("drawbox=x={x}:y={y}:w={bw}:h={bh}:color=black:t=fill"))
        .collect::<Vec<_>>()
        .join(",")
}

struct Row {
    name: String,
    ours: f64,
    baseline: f64,
    unit: &'static str,
    /// ours / baseline must be at least this (throughputs), or `ours` at most `limit` (memory).
    target: f64,
    kind: Kind,
}

enum Kind {
    Ratio,
    Limit,
}

fn vm_hwm_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
        / 1024.0
}

fn registry_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/release/deps/media-… → target/release/endoreg
    let release = exe.parent().and_then(Path::parent).unwrap();
    let bin = release.join("endoreg");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release -p endoreg-cli` first (or set ENDOREG_BENCH_SKIP_RSS=1)",
        bin.display()
    );
    bin
}

fn endoreg(bin: &Path, data: &Path, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).env("ENDOREG_DATA_DIR", data).env_remove("ENDOREG_DATABASE_URL").output().unwrap();
    assert!(out.status.success(), "endoreg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn peak_memory(dir: &Path, rows: &mut Vec<Row>) {
    let big = dir.join("big.mp4");
    let started = Instant::now();
    // About 1 GiB: large, noisy 1080p frames until the file is big enough.
    let frames = 5000;
    generate(&big, frames, 40);
    let size = std::fs::metadata(&big).unwrap().len();
    eprintln!("generated {:.2} GB ({frames} frames) in {:.0} s", size as f64 / 1e9, started.elapsed().as_secs_f64());
    assert!(size >= 1_000_000_000, "the test video is only {size} bytes; raise the frame count or the noise");

    let bin = registry_binary();
    let data = dir.join("data");
    endoreg(&bin, &data, &["migrate"]);
    endoreg(&bin, &data, &["kb", "load"]);
    let token = endoreg(&bin, &data, &["token", "create", "--role", "service"]).trim().to_owned();
    std::fs::create_dir_all(data.join("keys")).unwrap();
    std::fs::write(data.join("keys/media.token"), &token).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let registry = Killed(
        Command::new(&bin)
            .arg("serve")
            .env("ENDOREG_DATA_DIR", &data)
            .env("ENDOREG_HTTP__LISTEN", &listen)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t = Instant::now();
    while std::net::TcpStream::connect(&listen).is_err() && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client =
        endoreg_media::client::Client::new(&format!("http://{listen}"), endoreg_common::secret::Secret::new(token.clone())).unwrap();
    let meta = endoreg_common::api::UploadMetadata {
        center: "demo_center".into(),
        processor: Some("olympus_cv_1500".into()),
        patient_examination_id: None,
        pdf_type: None,
        identity: None,
    };
    let t = Instant::now();
    let up = rt.block_on(client.upload(&big, &meta)).unwrap();
    let upload_s = t.elapsed().as_secs_f64();
    let registry_peak = vm_hwm_mb(registry.0.id());
    eprintln!("uploaded in {upload_s:.1} s; registry peak RSS {registry_peak:.0} MB");
    rows.push(Row {
        name: "registry: peak RSS receiving a 1 GB upload".into(),
        ours: registry_peak,
        baseline: f64::NAN,
        unit: "MB",
        target: 300.0,
        kind: Kind::Limit,
    });

    let video = up.video.unwrap().id;
    let worker = Killed(
        Command::new(env!("CARGO_BIN_EXE_endoreg-media"))
            .arg("run")
            .env("ENDOREG_DATA_DIR", &data)
            .env("ENDOREG_REGISTRY_URL", format!("http://{listen}"))
            .env("ENDOREG_ANONYMISE__PRESET", PRESET)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t = Instant::now();
    let mut peak = 0.0f64;
    loop {
        peak = peak.max(vm_hwm_mb(worker.0.id()));
        let v = rt.block_on(client.video(video)).unwrap();
        if v.state == "frames_extracted" {
            break;
        }
        assert!(v.state != "failed", "processing failed: {:?}", v.state_detail);
        assert!(t.elapsed() < Duration::from_secs(3600), "processing took over an hour");
        std::thread::sleep(Duration::from_secs(2));
    }
    peak = peak.max(vm_hwm_mb(worker.0.id()));
    eprintln!("processed in {:.0} s; worker peak RSS {peak:.0} MB", t.elapsed().as_secs_f64());
    rows.push(Row {
        name: "media worker: peak RSS processing it".into(),
        ours: peak,
        baseline: f64::NAN,
        unit: "MB",
        target: 300.0,
        kind: Kind::Limit,
    });
    drop(worker);
    drop(registry);
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.mp4");
    let frames_n = 250;
    generate(&input, frames_n, 4);
    let p = probe::probe(&input).unwrap();
    let mask = Mask::for_video(&layout(), p.width, p.height).unwrap();
    let mut rows = Vec::new();

    // Frame extraction: every frame to JPEG files.
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for run in 0..3 {
        let out = dir.path().join(format!("ours{run}"));
        std::fs::create_dir_all(&out).unwrap();
        let t = Instant::now();
        let (n, _) = frames::extract(&input, &FrameSettings { step: 1, jpeg_qscale: QSCALE, workers: 0 }, &mut |i, bytes| {
            std::fs::write(out.join(format!("{i:06}.jpg")), bytes).map_err(|e| endoreg_media::video::MediaError::internal("write", e))
        })
        .unwrap();
        ours.push(t.elapsed().as_secs_f64());
        assert_eq!(n, frames_n);
        std::fs::remove_dir_all(&out).unwrap();
        let out = dir.path().join(format!("cli{run}"));
        std::fs::create_dir_all(&out).unwrap();
        theirs.push(ffmpeg(&[
            "-i",
            input.to_str().unwrap(),
            "-q:v",
            &QSCALE.to_string(),
            "-start_number",
            "0",
            out.join("%06d.jpg").to_str().unwrap(),
        ]));
        assert_eq!(std::fs::read_dir(&out).unwrap().count() as u64, frames_n);
        std::fs::remove_dir_all(&out).unwrap();
    }
    let fps = |s: f64| frames_n as f64 / s;
    rows.push(Row {
        name: "frame extraction, 1080p → JPEG".into(),
        ours: fps(median(ours)),
        baseline: fps(median(theirs)),
        unit: "fps",
        target: 1.0,
        kind: Kind::Ratio,
    });

    // Anonymisation + H.264 encoding.
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let filter = drawbox_filter(&mask, p.width, p.height);
    for run in 0..3 {
        let out = dir.path().join(format!("anon{run}.mp4"));
        let t = Instant::now();
        let done = anonymise::anonymise(
            &input,
            &out,
            &p,
            &mask,
            &H264Settings { crf: CRF, preset: PRESET.into(), ..H264Settings::default() },
            &mut |_| Ok(()),
        )
        .unwrap();
        ours.push(t.elapsed().as_secs_f64());
        assert_eq!(done.frames, frames_n);
        let cli = dir.path().join(format!("cli{run}.mp4"));
        theirs.push(ffmpeg(&[
            "-i",
            input.to_str().unwrap(),
            "-vf",
            &filter,
            "-c:v",
            "libx264",
            "-preset",
            PRESET,
            "-crf",
            &CRF.to_string(),
            "-an",
            cli.to_str().unwrap(),
        ]));
    }
    rows.push(Row {
        name: format!("anonymise + libx264 {PRESET} crf {CRF}"),
        ours: fps(median(ours)),
        baseline: fps(median(theirs)),
        unit: "fps",
        target: 0.9,
        kind: Kind::Ratio,
    });

    if std::env::var("ENDOREG_BENCH_SKIP_RSS").is_ok_and(|v| v == "1") {
        eprintln!("peak-memory part skipped (ENDOREG_BENCH_SKIP_RSS=1)");
    } else {
        peak_memory(dir.path(), &mut rows);
    }

    println!("\n{:<46} {:>10} {:>10} {:>6}  {:>8}  result", "benchmark", "endoreg", "baseline", "", "ratio");
    let mut all = true;
    for r in &rows {
        let (ratio, met, target) = match r.kind {
            Kind::Ratio => {
                let ratio = r.ours / r.baseline;
                (format!("{ratio:.2}×"), ratio >= r.target, format!("≥ {:.1}×", r.target))
            }
            Kind::Limit => ("".into(), r.ours <= r.target, format!("≤ {:.0} {}", r.target, r.unit)),
        };
        all &= met;
        let base = if r.baseline.is_nan() { "–".to_owned() } else { format!("{:.1}", r.baseline) };
        println!(
            "{:<46} {:>10.1} {:>10} {:>6}  {:>8}  {} (target {target})",
            r.name,
            r.ours,
            base,
            r.unit,
            ratio,
            if met { "met" } else { "MISSED" }
        );
    }
    if !all {
        std::process::exit(1);
    }
}
