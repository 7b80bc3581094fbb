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
//! `ENDOREG_BENCH_MODEL_ONLY=1` compares the model throughput only (twice as many rounds),
//! `ENDOREG_BENCH_RSS_ONLY=60,600` the pipeline's peak RSS for videos of those frame counts only.
//! `ENDOREG_BENCH_PROVIDER=cuda` runs the Rust side on CUDA (with a CUDA build of ONNX Runtime in
//! `ORT_DYLIB_PATH`); the Python baseline then needs `onnxruntime-gpu` and is skipped unless
//! `ENDOREG_BENCH_PYTHON_CUDA=1`. Prints a table and exits non-zero if a target is missed.
//!
//! How the model is compared: both sides run the same input bytes with the same thread setting. Each side
//! has two sessions alive for the whole run, one whose threads spin while waiting (onnxruntime's default,
//! the target's baseline) and one whose threads do not (the service's default, `runtime.spin_threads =
//! false`; the pipeline runs on that one); Python's are long-lived processes. Each round measures a block
//! of batches on every session, the order alternating, so that the machine's drift falls on both sides
//! alike. Ratios are the median of the rounds' ratios with a distribution-free 95 % interval for it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is how a benchmark reports failure

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use endoreg_inference::config::{ExecutionProvider, InferenceConfig, RuntimeConfig};
use endoreg_inference::pipeline;
use endoreg_inference::postprocess;
use endoreg_inference::preprocess::Region;
use endoreg_inference::service::load_model;
use endoreg_inference::telemetry::Counters;
use endoreg_media::video::demo::{self, DemoSpec};
use endoreg_media::video::encode::H264Settings;
use endoreg_media::video::mask::{Layout, Mask};

const BATCH: usize = 4;
const ITERATIONS: usize = 8;
const ROUNDS: usize = 10;

const SIDECAR: &str = r#"name = "regnetx_800mf_benchmark"
version = "bench"
labels = ["appendix", "blood", "diverticule", "grasper", "ileocaecalvalve", "ileum", "low_quality", "nbi", "needle", "outside", "polyp", "snare", "water_jet", "wound"]
[input]
width = 716
height = 716
[preprocessing]
crop = "endoscope_image"
pad_to_square = true
resize = "lanczos"
mean = [0.45211223, 0.27139644, 0.19264949]
std = [0.31418097, 0.21088019, 0.16059452]
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

/// The service's configuration for the benchmark model (threads not spinning, the service's default).
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
    cfg
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n.is_multiple_of(2) { (v[n / 2 - 1] + v[n / 2]) / 2.0 } else { v[n / 2] }
}

/// Python onnxruntime in one long-lived process (`scripts/bench_onnxruntime.py`), measured on request.
struct PythonBaseline {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl PythonBaseline {
    fn start(onnx: &Path, threads: usize, spin: bool, input: &Path, provider: &str) -> PythonBaseline {
        let mut child = Command::new(python())
            .arg(scripts().join("bench_onnxruntime.py"))
            .arg(onnx)
            .args([BATCH.to_string(), threads.to_string(), u8::from(spin).to_string()])
            .arg(input)
            .arg(provider)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with onnxruntime (source .ci/setup)");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut baseline = PythonBaseline { child, stdin, stdout };
        assert!(baseline.answer()["ready"].as_bool().unwrap_or(false), "bench_onnxruntime.py did not start");
        baseline
    }

    fn answer(&mut self) -> serde_json::Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "bench_onnxruntime.py ended early (its error is above)");
        serde_json::from_str(&line).unwrap()
    }

    fn images_per_second(&mut self, iterations: usize) -> f64 {
        writeln!(self.stdin.as_mut().unwrap(), "{iterations}").unwrap();
        let v = self.answer()["images_per_second"].as_f64().unwrap();
        settle();
        v
    }
}

impl Drop for PythonBaseline {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.wait();
    }
}

/// A pause between measured blocks, so that the other side's threads have stopped spinning.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(100));
}

/// The batch both sides run: the same bytes, written once for the Python side to read.
fn benchmark_input(frame_len: usize) -> (Vec<f32>, PathBuf) {
    let mut state = 0x2545_F491_u32;
    let input: Vec<f32> = (0..BATCH * frame_len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 1000) as f32 / 1000.0
        })
        .collect();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-models/input.f32");
    let bytes: Vec<u8> = input.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&path, bytes).unwrap();
    (input, path)
}

fn rust_images_per_second(model: &Mutex<endoreg_inference::runtime::Model>, input: &[f32], iterations: usize) -> f64 {
    let mut m = model.lock().unwrap();
    let t = Instant::now();
    for _ in 0..iterations {
        m.run(input, BATCH).unwrap();
    }
    let v = (BATCH * iterations) as f64 / t.elapsed().as_secs_f64();
    drop(m);
    settle();
    v
}

/// The median of `ratios` and a distribution-free confidence interval for it of at least 95 %: the
/// order statistics k and n + 1 - k, k the largest with P(Binomial(n, 1/2) < k) <= 2.5 %.
fn median_with_interval(mut ratios: Vec<f64>) -> (f64, f64, f64) {
    ratios.sort_by(|a, b| a.total_cmp(b));
    let n = ratios.len();
    let mut k = 0;
    let mut below = 0.0; // P(X < k + 1)
    let mut choose = 1.0;
    for i in 0..n {
        if i > 0 {
            choose = choose * (n - i + 1) as f64 / i as f64;
        }
        below += choose / 2f64.powi(n as i32);
        if below > 0.025 {
            break;
        }
        k = i + 1;
    }
    let (lo, hi) = if k == 0 { (f64::NAN, f64::NAN) } else { (ratios[k - 1], ratios[n - k]) };
    (median(ratios), lo, hi)
}

fn demo_video(path: &Path, frames: u64) {
    if path.is_file() {
        return;
    }
    let spec = DemoSpec {
        encoding: H264Settings { crf: 20, preset: "veryfast".into(), threads: 0, ..H264Settings::default() },
        ..DemoSpec::olympus(1920, 1080, frames)
    };
    demo::generate(path, &spec).unwrap();
}

/// Whole video → segments; returns frames per second.
fn pipeline_frames_per_second(model: &Mutex<endoreg_inference::runtime::Model>, cfg: &InferenceConfig, video: &Path) -> (f64, usize) {
    let region = Region::Rect(Mask::for_video(&layout(), 1920, 1080).unwrap().keep);
    let t = Instant::now();
    let (probs, stats) = pipeline::run(video, region, model, &cfg.pipeline, &Counters::default(), &|| false).unwrap();
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
    if let Ok(spec) = std::env::var("ENDOREG_BENCH_RSS_ONLY") {
        let onnx = benchmark_model();
        for n in spec.split(',').map(|n| n.parse::<u64>().unwrap()) {
            let v = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../target/bench-models/demo-1080p-{n}.mp4"));
            demo_video(&v, n);
            println!("{n} frames: peak RSS {} MB", child_peak_rss(&onnx, &v) / 1024);
        }
        return;
    }
    let model_only = std::env::var("ENDOREG_BENCH_MODEL_ONLY").is_ok();
    let rounds = if model_only { 2 * ROUNDS } else { ROUNDS };
    let onnx = benchmark_model();
    let cfg = config(&onnx, threads);
    let model = Mutex::new(load_model(&cfg).unwrap());
    let spinning_model = Mutex::new(
        load_model(&InferenceConfig { runtime: RuntimeConfig { spin_threads: true, ..cfg.runtime.clone() }, ..cfg.clone() }).unwrap(),
    );
    let provider = model.lock().unwrap().provider.as_str();
    let python_cuda = std::env::var("ENDOREG_BENCH_PYTHON_CUDA").is_ok_and(|v| v == "1");
    let compare_python = provider == "cpu" || python_cuda;
    let python_provider = if provider == "cpu" { "cpu" } else { "cuda" };
    let (input, input_file) = benchmark_input(model.lock().unwrap().frame_len());
    for m in [&model, &spinning_model] {
        for _ in 0..2 {
            m.lock().unwrap().run(&input, BATCH).unwrap();
        }
    }
    // Python with its threads spinning (its default) and not spinning, both alive for the whole run so
    // that each round measures short blocks side by side.
    let mut baselines = compare_python.then(|| {
        (
            PythonBaseline::start(&onnx, threads, true, &input_file, python_provider),
            PythonBaseline::start(&onnx, threads, false, &input_file, python_provider),
        )
    });

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-models");
    let video = dir.join("demo-1080p-120.mp4");
    if !model_only {
        demo_video(&video, 120);
    }

    // Paired rounds, the order alternating (Python first, then ours first, ...), so that a machine getting
    // faster or slower during the run favours neither side; the ratios are the medians of the rounds'.
    let (mut py, mut py_still, mut rs, mut rs_still, mut pipe) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut model_ratio, mut still_ratio, mut pipeline_ratio) = (Vec::new(), Vec::new(), Vec::new());
    let mut segments = 0;
    for round in 0..rounds {
        let mut python = |py: &mut Vec<f64>, py_still: &mut Vec<f64>| {
            if let Some((spinning, still)) = baselines.as_mut() {
                py.push(spinning.images_per_second(ITERATIONS));
                py_still.push(still.images_per_second(ITERATIONS));
            }
        };
        if round % 2 == 0 {
            python(&mut py, &mut py_still);
        }
        let r = rust_images_per_second(&spinning_model, &input, ITERATIONS);
        let r_still = rust_images_per_second(&model, &input, ITERATIONS);
        rs.push(r);
        rs_still.push(r_still);
        if !model_only {
            let (fps, n) = pipeline_frames_per_second(&model, &cfg, &video);
            pipe.push(fps);
            pipeline_ratio.push(fps / r_still);
            segments = n;
        }
        if round % 2 == 1 {
            python(&mut py, &mut py_still);
        }
        if compare_python {
            model_ratio.push(r / py[round]);
            still_ratio.push(r_still / py_still[round]);
        }
        let show = |v: Option<&f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"));
        eprintln!(
            "round {}: spinning: Python {}, ours {r:.2}; not spinning: Python {}, ours {r_still:.2}; pipeline {} img/s",
            round + 1,
            show(py.last()),
            show(py_still.last()),
            show(pipe.last())
        );
    }
    drop(baselines);
    let (py, py_still) = if compare_python { (median(py), median(py_still)) } else { (f64::NAN, f64::NAN) };
    let (rs, rs_still, pipe) = (median(rs), median(rs_still), if model_only { f64::NAN } else { median(pipe) });
    let (model_ratio, model_lo, model_hi) = if compare_python { median_with_interval(model_ratio) } else { (f64::NAN, f64::NAN, f64::NAN) };
    let (still_ratio, still_lo, still_hi) = if compare_python { median_with_interval(still_ratio) } else { (f64::NAN, f64::NAN, f64::NAN) };

    let mut failed = false;
    let mut row = |what: &str, value: String, baseline: String, ratio: String, target: &str, ok: bool| {
        println!("| {what} | {value} | {baseline} | {ratio} | {target} | {} |", if ok { "ok" } else { "MISSED" });
        failed |= !ok;
    };
    let interval = |m: f64, lo: f64, hi: f64| format!("{m:.3}× (95 % CI {lo:.3}–{hi:.3})");
    println!(
        "RegNetX-800MF-like, 716×716, batch {BATCH}, {threads} threads, provider {provider}; {rounds} paired rounds of {ITERATIONS} batches: median throughputs, median of the rounds' ratios"
    );
    println!("| measure | endoreg | baseline | ratio | target | |");
    println!("|---|---|---|---|---|---|");
    if compare_python {
        row(
            "model throughput, threads spinning (img/s)",
            format!("{rs:.2}"),
            format!("{py:.2} (Python onnxruntime, its default)"),
            interval(model_ratio, model_lo, model_hi),
            "≥ 1.0×",
            model_ratio >= 1.0,
        );
        // The same comparison with the service's default; for information.
        println!(
            "| model throughput, threads not spinning (img/s) | {rs_still:.2} | {py_still:.2} (Python onnxruntime) | {} | – | |",
            interval(still_ratio, still_lo, still_hi)
        );
    }
    if model_only {
        if failed {
            std::process::exit(1);
        }
        return;
    }
    let (rss_short, rss_long) = {
        let (short, long) = (dir.join("demo-1080p-60.mp4"), dir.join("demo-1080p-240.mp4"));
        demo_video(&short, 60);
        demo_video(&long, 240);
        (child_peak_rss(&onnx, &short), child_peak_rss(&onnx, &long))
    };
    let (pipeline_ratio, pipeline_lo, pipeline_hi) = median_with_interval(pipeline_ratio);
    row(
        "1080p video → segments (frames/s)",
        format!("{pipe:.2} ({segments} segments)"),
        format!("{rs_still:.2} (model alone)"),
        interval(pipeline_ratio, pipeline_lo, pipeline_hi),
        "≥ 0.8×",
        pipeline_ratio >= 0.8,
    );
    let growth = rss_long.saturating_sub(rss_short) as f64 / 1024.0;
    row(
        "peak RSS, 240 vs 60 frames (MB)",
        format!("{:.0}", rss_long as f64 / 1024.0),
        format!("{:.0}", rss_short as f64 / 1024.0),
        "–".into(),
        "growth < 32 MB",
        growth < 32.0,
    );
    if failed {
        std::process::exit(1);
    }
}
