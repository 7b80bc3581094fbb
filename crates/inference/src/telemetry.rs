//! What `/metrics` says, in Prometheus' text format: the worker's throughput counters and, where NVML
//! answers, each GPU's utilisation, memory, temperature and power. Without a GPU (or driver) the GPU
//! metrics are absent and that is said once, at start.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;

/// Counters since start.
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames run through the model (videos and single images).
    pub frames: AtomicU64,
    pub batches: AtomicU64,
    /// Time inside the model, in microseconds.
    pub inference_us: AtomicU64,
    /// Frames decoded from videos (predicted or skipped by the step).
    pub decoded: AtomicU64,
    pub videos_succeeded: AtomicU64,
    pub videos_failed: AtomicU64,
    pub images: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// NVML, when there is a GPU driver to answer.
pub struct Gpus {
    nvml: Option<Nvml>,
}

impl Gpus {
    /// Opens NVML; without it, logs once why there are no GPU metrics.
    pub fn open() -> Self {
        match Nvml::init() {
            Ok(nvml) => {
                let n = nvml.device_count().unwrap_or(0);
                log::info!("GPU telemetry: {n} GPU(s) through NVML");
                Gpus { nvml: Some(nvml) }
            }
            Err(e) => {
                log::info!("no GPU telemetry ({e}); /metrics has no GPU metrics");
                Gpus { nvml: None }
            }
        }
    }

    /// No NVML (tests, CPU hosts).
    pub fn none() -> Self {
        Gpus { nvml: None }
    }

    pub fn available(&self) -> bool {
        self.nvml.is_some()
    }

    /// One sample per GPU; a value the GPU does not report (power on some boards) is left out.
    pub fn sample(&self) -> Vec<GpuSample> {
        let Some(nvml) = &self.nvml else { return Vec::new() };
        let n = nvml.device_count().unwrap_or(0);
        (0..n)
            .filter_map(|i| {
                let d = nvml.device_by_index(i).ok()?;
                let util = d.utilization_rates().ok();
                let mem = d.memory_info().ok();
                Some(GpuSample {
                    index: i,
                    name: d.name().unwrap_or_default(),
                    uuid: d.uuid().unwrap_or_default(),
                    utilization: util.as_ref().map(|u| f64::from(u.gpu) / 100.0),
                    memory_utilization: util.map(|u| f64::from(u.memory) / 100.0),
                    memory_used: mem.as_ref().map(|m| m.used),
                    memory_total: mem.map(|m| m.total),
                    temperature: d.temperature(TemperatureSensor::Gpu).ok(),
                    power_watts: d.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
                })
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default)]
pub struct GpuSample {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub utilization: Option<f64>,
    pub memory_utilization: Option<f64>,
    pub memory_used: Option<u64>,
    pub memory_total: Option<u64>,
    pub temperature: Option<u32>,
    pub power_watts: Option<f64>,
}

/// What the model is, for an info metric.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
    pub provider: String,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A GPU gauge family: name, help text, and how to read it from a sample.
type Gauge = (&'static str, &'static str, fn(&GpuSample) -> Option<f64>);

/// The whole `/metrics` document.
pub fn render(c: &Counters, model: &ModelInfo, gpus: &[GpuSample]) -> String {
    let mut out = String::new();
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    family(&mut out, "endoreg_inference_model_info", "gauge", "The model this worker serves and where it runs.");
    let _ = writeln!(
        out,
        "endoreg_inference_model_info{{model=\"{}\",version=\"{}\",provider=\"{}\"}} 1",
        escape(&model.name),
        escape(&model.version),
        escape(&model.provider)
    );
    let counters = [
        ("endoreg_inference_frames_total", "Frames run through the model.", load(&c.frames)),
        ("endoreg_inference_batches_total", "Calls of the model.", load(&c.batches)),
        ("endoreg_inference_decoded_frames_total", "Frames decoded from videos.", load(&c.decoded)),
        ("endoreg_inference_images_total", "Single images predicted over HTTP.", load(&c.images)),
    ];
    for (name, help, v) in counters {
        family(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {v}");
    }
    family(&mut out, "endoreg_inference_seconds_total", "counter", "Time spent inside the model.");
    let _ = writeln!(out, "endoreg_inference_seconds_total {}", load(&c.inference_us) as f64 / 1e6);
    family(&mut out, "endoreg_inference_videos_total", "counter", "Prediction jobs finished, by outcome.");
    let _ = writeln!(out, "endoreg_inference_videos_total{{outcome=\"succeeded\"}} {}", load(&c.videos_succeeded));
    let _ = writeln!(out, "endoreg_inference_videos_total{{outcome=\"failed\"}} {}", load(&c.videos_failed));
    if gpus.is_empty() {
        return out;
    }
    let gauges: [Gauge; 6] = [
        ("endoreg_gpu_utilization_ratio", "Share of time a kernel ran on the GPU (0..1).", |g| g.utilization),
        ("endoreg_gpu_memory_utilization_ratio", "Share of time GPU memory was read or written (0..1).", |g| g.memory_utilization),
        ("endoreg_gpu_memory_used_bytes", "GPU memory in use.", |g| g.memory_used.map(|v| v as f64)),
        ("endoreg_gpu_memory_total_bytes", "GPU memory installed.", |g| g.memory_total.map(|v| v as f64)),
        ("endoreg_gpu_temperature_celsius", "GPU temperature.", |g| g.temperature.map(f64::from)),
        ("endoreg_gpu_power_watts", "GPU power draw.", |g| g.power_watts),
    ];
    for (name, help, get) in gauges {
        let values: Vec<(&GpuSample, f64)> = gpus.iter().filter_map(|g| get(g).map(|v| (g, v))).collect();
        if values.is_empty() {
            continue;
        }
        family(&mut out, name, "gauge", help);
        for (g, v) in values {
            let _ = writeln!(out, "{name}{{gpu=\"{}\",name=\"{}\",uuid=\"{}\"}} {v}", g.index, escape(&g.name), escape(&g.uuid));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ModelInfo {
        ModelInfo { name: "m".into(), version: "1\"x".into(), provider: "cpu".into() }
    }

    #[test]
    fn counters_without_gpus() {
        let c = Counters::default();
        Counters::add(&c.frames, 42);
        Counters::add(&c.inference_us, 1_500_000);
        let text = render(&c, &model(), &[]);
        assert!(text.contains("\nendoreg_inference_frames_total 42\n"), "{text}");
        assert!(text.contains("endoreg_inference_seconds_total 1.5\n"), "{text}");
        assert!(text.contains("version=\"1\\\"x\""), "{text}");
        assert!(!text.contains("endoreg_gpu_"), "{text}");
        // Every sample line belongs to a declared family.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(text.contains(&format!("# TYPE {name} ")), "{line}");
        }
    }

    #[test]
    fn gpu_metrics_per_gpu_and_missing_values_left_out() {
        let g = GpuSample {
            index: 0,
            name: "H100".into(),
            uuid: "GPU-1".into(),
            utilization: Some(0.75),
            memory_used: Some(1024),
            memory_total: Some(4096),
            temperature: Some(61),
            ..Default::default()
        };
        let text = render(&Counters::default(), &model(), &[g]);
        assert!(text.contains("endoreg_gpu_utilization_ratio{gpu=\"0\",name=\"H100\",uuid=\"GPU-1\"} 0.75"), "{text}");
        assert!(text.contains("endoreg_gpu_temperature_celsius{gpu=\"0\",name=\"H100\",uuid=\"GPU-1\"} 61"), "{text}");
        assert!(!text.contains("endoreg_gpu_power_watts"), "{text}");
    }

    #[test]
    fn without_a_driver_there_are_no_samples() {
        // Here (no NVIDIA driver) NVML does not open; on a GPU machine it lists the GPUs.
        let gpus = Gpus::open();
        if !std::path::Path::new("/dev/nvidiactl").exists() {
            assert!(!gpus.available());
            assert!(gpus.sample().is_empty());
        }
        assert!(Gpus::none().sample().is_empty());
    }
}
