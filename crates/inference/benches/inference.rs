//! endoreg-inference's speed and memory targets, each against a baseline measured in the same run
//! (`cargo bench -p endoreg-inference --bench inference`, after `source .ci/setup`):
//!
//! - model throughput: ≥ 1.0× Python onnxruntime running the same model with the same batch size and thread
//!   count on the CPU (`scripts/bench_onnxruntime.py`);
//! - whole video → segments (decode, crop, pad, resize, normalise, batch, model, smoothing) of a 1920×1080
//!   H.264 video: ≥ 0.8× the pure model throughput measured here (pipeline overhead ≤ 20 %);
//! - memory: the pipeline's peak RSS on a video four times as long grows by less than 32 MB (bounded by the
//!   queues, not by the video's length).
//!
//! The model has the shape of EndoregDB's colonoscopy classifier (RegNetX-800MF at 716×716, 14 outputs,
//! random weights), written by `scripts/make_regnet_benchmark_model.py` into `target/bench-models/`.
//! `ENDOREG_BENCH_SPIN=1` lets ONNX Runtime's threads spin (`runtime.spin_threads`) as Python's do.
//! `ENDOREG_BENCH_MODEL_ONLY=1` compares the model throughput only, `ENDOREG_BENCH_RSS_ONLY=60,600` the
//! pipeline's peak RSS for videos of those frame counts only.
//! `ENDOREG_BENCH_PROVIDER=cuda` runs the Rust side on CUDA (with a CUDA build of ONNX Runtime in
//! `ORT_DYLIB_PATH`); the Python baseline then needs `onnxruntime-gpu` and is skipped unless
//! `ENDOREG_BENCH_PYTHON_CUDA=1`. Prints a table and exits non-zero if a target is missed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a benchmark reports failure

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use endoreg_inference::config::{ExecutionProvider, InferenceConfig};
use endoreg_inference::pipeline;
use endoreg_inference::postprocess;
use endoreg_inference::preprocess::Region;
use endoreg_inference::service::load_model;
use endoreg_inference::telemetry::Counters;
use endoreg_media::video::demo::{self, DemoSpec, FakePatient};
use endoreg_media::video::encode::H264Settings;
use endoreg_media::video::mask::{Layout, Mask};

const BATCH: usize = 4;
const ITERATIONS: usize = 12;
const ROUNDS: usize = 6;

const SIDECAR: &str = r#"name = "regnetx_800mf_benchmark"
version = "bench"
labels = ["appendix", "blood", "diverticule", "grasper", "ileocaecalvalve", "ileum", "low_quality", "nbi", "needle", "outside", "polyp", "snare", "water_jet", "wound"]
[input]
width = 716
height = 716
[preprocessing]
crop = "endoscope_image"
pad_to_square = true
resize = "bilinear"
mean = [0.485, 0.456, 0.406]
std = [0.229, 0.224, 0.225]
[output]
activation = "sigmoid"
[postprocessing]
threshold = 0.5
smoothing_window_s = 1.0
min_segment_s = 0.5
"#;

fn layout() -> Layout {
    demo::olympus_cv_1500()
}

fn python() -> PathBuf {
    std::env::var_os("ENDOREG_CI_VENV").map_or_else(|| PathBuf::from("python3"), |v| Path::new(&v).join("bin/python3"))
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts")
}

/// The RegNet-like model and its sidecar, generated once into target/bench-models.
fn benchmark_model() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-models");
    std::fs::create_dir_all(&dir).unwrap();
    let onnx = dir.join("regnetx-800mf-716.onnx");
    if !onnx.is_file() {
        eprintln!("writing the benchmark model to {}", onnx.display());
        let tmp = dir.join("regnetx-800mf-716.onnx.part");
        let status = Command::new(python()).arg(scripts().join("make_regnet_benchmark_model.py")).arg(&tmp).status().unwrap();
        assert!(status.success(), "make_regnet_benchmark_model.py failed (Python with onnx and numpy: source .ci/setup)");
        std::fs::rename(&tmp, &onnx).unwrap();
    }
    std::fs::write(onnx.with_extension("toml"), SIDECAR).unwrap();
    onnx
}

fn config(onnx: &Path, threads: usize) -> InferenceConfig {
    let mut cfg = InferenceConfig::default();
    cfg.model.path = Some(onnx.to_owned());
    cfg.runtime.batch_size = BATCH;
    cfg.runtime.intra_threads = threads;
    cfg.runtime.execution_provider = match std::env::var("ENDOREG_BENCH_PROVIDER").as_deref() {
        Ok("cuda") => ExecutionProvider::Cuda,
        Ok("tensorrt") => ExecutionProvider::Tensorrt,
        _ => ExecutionProvider::Cpu,
    };
    cfg.runtime.require_gpu = cfg.runtime.execution_provider != ExecutionProvider::Cpu;
    cfg.runtime.spin_threads = std::env::var("ENDOREG_BENCH_SPIN").is_ok_and(|v| v == "1");
    cfg
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn python_images_per_second(onnx: &Path, threads: usize, spin: bool) -> f64 {
    let out = Command::new(python())
        .arg(scripts().join("bench_onnxruntime.py"))
        .arg(onnx)
        .args([BATCH.to_string(), threads.to_string(), ITERATIONS.to_string(), u8::from(spin).to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "bench_onnxruntime.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["images_per_second"].as_f64().unwrap()
}

fn rust_images_per_second(model: &Mutex<endoreg_inference::runtime::Model>) -> f64 {
    let mut m = model.lock().unwrap();
    let per = m.frame_len();
    let mut state = 0x2545_F491_u32;
    let input: Vec<f32> = (0..BATCH * per)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 1000) as f32 / 1000.0
        })
        .collect();
    for _ in 0..2 {
        m.run(&input, BATCH).unwrap();
    }
    let t = Instant::now();
    for _ in 0..ITERATIONS {
        m.run(&input, BATCH).unwrap();
    }
    (BATCH * ITERATIONS) as f64 / t.elapsed().as_secs_f64()
}

fn demo_video(path: &Path, frames: u64) {
    if path.is_file() {
        return;
    }
    let spec = DemoSpec {
        width: 1920,
        height: 1080,
        fps: 25,
        frames,
        layout: layout(),
        patient: FakePatient::default(),
        noise: 0,
        encoding: H264Settings { crf: 20, preset: "veryfast".into(), threads: 0, ..H264Settings::default() },
    };
    demo::generate(path, &spec).unwrap();
}

/// Whole video → segments; returns frames per second.
fn pipeline_frames_per_second(model: &Mutex<endoreg_inference::runtime::Model>, cfg: &InferenceConfig, video: &Path) -> (f64, usize) {
    let region = Region::Rect(Mask::for_video(&layout(), 1920, 1080).unwrap().keep);
    let t = Instant::now();
    let (probs, stats) = pipeline::run(video, region, model, &cfg.pipeline, &Counters::default(), &AtomicBool::new(false)).unwrap();
    let contract = model.lock().unwrap().contract.clone();
    let segments = postprocess::segments(&probs, &contract);
    (stats.predicted as f64 / t.elapsed().as_secs_f64(), segments.len())
}

fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok()).unwrap_or(0)
}

/// Runs the pipeline on `video` in a child process (a fresh peak RSS) and returns that peak in kB.
fn child_peak_rss(onnx: &Path, video: &Path) -> u64 {
    let out = Command::new(std::env::current_exe().unwrap())
        .env("ENDOREG_BENCH_CHILD", format!("{}\n{}", onnx.display(), video.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "the pipeline child failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn main() {
    let threads = endoreg_media::video::cores();
    if let Ok(child) = std::env::var("ENDOREG_BENCH_CHILD") {
        let (onnx, video) = child.split_once('\n').unwrap();
        let cfg = config(Path::new(onnx), threads);
        let model = Mutex::new(load_model(&cfg).unwrap());
        pipeline_frames_per_second(&model, &cfg, Path::new(video));
        println!("{}", peak_rss_kb());
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if std::env::var("ENDOREG_BENCH_MODEL_ONLY").is_ok() {
        let onnx = benchmark_model();
        let cfg = config(&onnx, threads);
        let model = Mutex::new(load_model(&cfg).unwrap());
        for _ in 0..4 {
            let p = python_images_per_second(&onnx, threads, true);
            let q = python_images_per_second(&onnx, threads, false);
            let r = rust_images_per_second(&model);
            println!("python {p:.2} (no spinning {q:.2}) rust {r:.2} ratio {:.3}", r / p);
        }
        return;
    }
    if let Ok(spec) = std::env::var("ENDOREG_BENCH_RSS_ONLY") {
        let onnx = benchmark_model();
        for n in spec.split(',').map(|n| n.parse::<u64>().unwrap()) {
            let v = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../target/bench-models/demo-1080p-{n}.mp4"));
            demo_video(&v, n);
            println!("{n} frames: peak RSS {} MB", child_peak_rss(&onnx, &v) / 1024);
        }
        return;
    }
    let onnx = benchmark_model();
    let cfg = config(&onnx, threads);
    let model = Mutex::new(load_model(&cfg).unwrap());
    let provider = model.lock().unwrap().provider.as_str();
    let python_cuda = std::env::var("ENDOREG_BENCH_PYTHON_CUDA").is_ok_and(|v| v == "1");
    let compare_python = provider == "cpu" || python_cuda;

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-models");
    let short = dir.join("demo-1080p-60.mp4");
    let long = dir.join("demo-1080p-240.mp4");
    let video = dir.join("demo-1080p-120.mp4");
    demo_video(&video, 120);

    // Paired rounds, the order alternating (Python first, then ours first, ...), so that a machine getting
    // faster or slower during the run favours neither side; the ratios are the medians of the rounds'.
    let (mut py, mut py_nospin, mut rs, mut pipe) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut model_ratio, mut pipeline_ratio) = (Vec::new(), Vec::new());
    let mut segments = 0;
    for round in 0..ROUNDS {
        let python = |py: &mut Vec<f64>, py_nospin: &mut Vec<f64>| {
            if compare_python {
                py.push(python_images_per_second(&onnx, threads, true));
                py_nospin.push(python_images_per_second(&onnx, threads, false));
            }
        };
        if round % 2 == 0 {
            python(&mut py, &mut py_nospin);
        }
        rs.push(rust_images_per_second(&model));
        let (fps, n) = pipeline_frames_per_second(&model, &cfg, &video);
        pipe.push(fps);
        segments = n;
        if round % 2 == 1 {
            python(&mut py, &mut py_nospin);
        }
        if compare_python {
            model_ratio.push(rs[round] / py[round]);
        }
        pipeline_ratio.push(fps / rs[round]);
        eprintln!("round {}: python {:?} / {:?} rust {:.2} pipeline {:.2} img/s", round + 1, py.last(), py_nospin.last(), rs[round], fps);
    }
    let (py, rs, pipe) = (if compare_python { median(py) } else { f64::NAN }, median(rs), median(pipe));
    let py_nospin = if compare_python { median(py_nospin) } else { f64::NAN };
    let model_ratio = if compare_python { median(model_ratio) } else { f64::NAN };
    let pipeline_ratio = median(pipeline_ratio);

    demo_video(&short, 60);
    demo_video(&long, 240);
    let (rss_short, rss_long) = (child_peak_rss(&onnx, &short), child_peak_rss(&onnx, &long));

    let mut failed = false;
    let mut row = |what: &str, value: String, baseline: String, ratio: f64, target: &str, ok: bool| {
        println!(
            "| {what} | {value} | {baseline} | {} | {target} | {} |",
            if ratio.is_nan() { "–".into() } else { format!("{ratio:.2}×") },
            if ok { "ok" } else { "MISSED" }
        );
        failed |= !ok;
    };
    println!(
        "RegNetX-800MF-like, 716×716, batch {BATCH}, {threads} threads, provider {provider}; {ROUNDS} paired rounds: median throughputs, median of the rounds' ratios"
    );
    println!("| measure | endoreg | baseline | ratio | target | |");
    println!("|---|---|---|---|---|---|");
    if compare_python {
        row(
            "model throughput (img/s)",
            format!("{rs:.2}"),
            format!("{py:.2} (Python onnxruntime)"),
            model_ratio,
            "≥ 1.0×",
            model_ratio >= 1.0,
        );
        // For information: the baseline with its threads not spinning either (as ours), no target.
        println!("| (Python onnxruntime without spinning) | {rs:.2} | {py_nospin:.2} | {:.2}× | – | |", rs / py_nospin);
    }
    row(
        "1080p video → segments (frames/s)",
        format!("{pipe:.2} ({segments} segments)"),
        format!("{rs:.2} (model alone)"),
        pipeline_ratio,
        "≥ 0.8×",
        pipeline_ratio >= 0.8,
    );
    let growth = rss_long.saturating_sub(rss_short) as f64 / 1024.0;
    row(
        "peak RSS, 240 vs 60 frames (MB)",
        format!("{:.0}", rss_long as f64 / 1024.0),
        format!("{:.0}", rss_short as f64 / 1024.0),
        f64::NAN,
        "growth < 32 MB",
        growth < 32.0,
    );
    if failed {
        std::process::exit(1);
    }
}
