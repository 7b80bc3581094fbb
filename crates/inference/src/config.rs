//! The inference worker's configuration: defaults for the embedded setup (registry on 127.0.0.1:8080,
//! storage under `./endoreg-data`, CPU), a TOML file, `ENDOREG_*` environment overrides
//! (`ENDOREG_MODEL__PATH`, `ENDOREG_RUNTIME__EXECUTION_PROVIDER`, ...).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use endoreg_common::config::ConfigError;
use endoreg_common::storage::StorageConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InferenceConfig {
    /// Storage (local by default) lives here; work files go to `<data_dir>/inference-work`.
    pub data_dir: PathBuf,
    /// The registry's base URL.
    pub registry_url: String,
    /// A file holding a `service` token (a systemd credential). Default: `<data_dir>/keys/inference.token`.
    pub token_file: Option<PathBuf>,
    /// This worker's name in job leases. Default: host name and process id.
    pub worker_name: Option<String>,
    /// Seconds between polls when there is no work.
    pub poll_secs: u64,
    /// Lease per job, renewed by heartbeats at a third of it.
    pub lease_secs: i64,
    pub model: ModelConfig,
    pub runtime: RuntimeConfig,
    pub pipeline: PipelineConfig,
    pub http: HttpConfig,
    pub storage: StorageConfig,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// The ONNX file. Required.
    pub path: Option<PathBuf>,
    /// The model's sidecar (docs/inference.md). Default: the ONNX file's path with `.toml`.
    pub metadata: Option<PathBuf>,
}

/// Where ONNX Runtime runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionProvider {
    /// CUDA when the ONNX Runtime library has it and a GPU answers, the CPU otherwise.
    Auto,
    Cuda,
    /// TensorRT, with CUDA for what TensorRT does not take.
    Tensorrt,
    Cpu,
}

impl ExecutionProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionProvider::Auto => "auto",
            ExecutionProvider::Cuda => "cuda",
            ExecutionProvider::Tensorrt => "tensorrt",
            ExecutionProvider::Cpu => "cpu",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// `libonnxruntime.so`. Default: `$ORT_DYLIB_PATH`.
    pub library: Option<PathBuf>,
    pub execution_provider: ExecutionProvider,
    /// Fail at start instead of falling back to the CPU when no GPU provider can be used.
    pub require_gpu: bool,
    /// The CUDA device.
    pub device_id: u32,
    /// Threads of ONNX Runtime's CPU kernels; 0: the machine's cores.
    pub intra_threads: usize,
    /// Frames per inference call (a model with a fixed batch dimension decides it itself).
    pub batch_size: usize,
    /// Let ONNX Runtime's CPU threads spin while they wait for work (its default). Off here: they share the
    /// cores with decoding and preprocessing (docs/benchmarks.md has both measured).
    pub spin_threads: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            library: None,
            execution_provider: ExecutionProvider::Auto,
            require_gpu: false,
            device_id: 0,
            intra_threads: 0,
            batch_size: 8,
            spin_threads: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Predict every `step`-th frame (1: every frame).
    pub step: u32,
    /// FFmpeg decoding threads; 0: the machine's cores.
    pub decode_threads: usize,
    /// Threads cropping, padding, resizing and normalising frames; 0: half the machine's cores, at least 1.
    pub preprocess_threads: usize,
    /// Frames queued between the stages: memory is about this many decoded frames plus as many model inputs,
    /// whatever the video's length. Enough to keep a batch ready while the model runs the previous one.
    pub queue_frames: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self { step: 1, decode_threads: 0, preprocess_threads: 0, queue_frames: 12 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Serve `/healthz`, `/metrics` and single-image prediction.
    pub enable: bool,
    pub listen: String,
    /// The largest image accepted for single-image prediction.
    pub max_image_bytes: usize,
    /// Single-image predictions decoded and run at the same time; more get 503 (each holds a decoded
    /// image, up to 8192x8192).
    pub max_concurrent_images: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { enable: true, listen: "127.0.0.1:8091".into(), max_image_bytes: 20 * 1024 * 1024, max_concurrent_images: 4 }
    }
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./endoreg-data"),
            registry_url: "http://127.0.0.1:8080".into(),
            token_file: None,
            worker_name: None,
            poll_secs: 2,
            lease_secs: 300,
            model: ModelConfig::default(),
            runtime: RuntimeConfig::default(),
            pipeline: PipelineConfig::default(),
            http: HttpConfig::default(),
            storage: StorageConfig::default(),
        }
    }
}

impl InferenceConfig {
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let cfg: Self = endoreg_common::config::load(file)?;
        cfg.check()?;
        Ok(cfg)
    }

    pub fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Check(m));
        if !(30..=3600).contains(&self.lease_secs) {
            return bad("lease_secs must be between 30 and 3600".into());
        }
        if !self.registry_url.starts_with("http://") && !self.registry_url.starts_with("https://") {
            return bad(format!("registry_url `{}` must start with http:// or https://", self.registry_url));
        }
        if !(1..=1024).contains(&self.runtime.batch_size) {
            return bad("runtime.batch_size must be between 1 and 1024".into());
        }
        if self.pipeline.step == 0 {
            return bad("pipeline.step must be at least 1".into());
        }
        if !(1..=4096).contains(&self.pipeline.queue_frames) {
            return bad("pipeline.queue_frames must be between 1 and 4096".into());
        }
        if !(1..=3600).contains(&self.poll_secs) {
            return bad(format!("poll_secs is {}; it must be between 1 and 3600", self.poll_secs));
        }
        if i32::try_from(self.runtime.device_id).is_err() {
            return bad(format!("runtime.device_id {} is not a GPU index", self.runtime.device_id));
        }
        for (name, n) in [
            ("runtime.intra_threads", self.runtime.intra_threads),
            ("pipeline.decode_threads", self.pipeline.decode_threads),
            ("pipeline.preprocess_threads", self.pipeline.preprocess_threads),
        ] {
            if n > 1024 {
                return bad(format!("{name} is {n}; at most 1024 (0: from the machine's cores)"));
            }
        }
        if !(1..=1024).contains(&self.http.max_concurrent_images) {
            return bad(format!("http.max_concurrent_images is {}; it must be between 1 and 1024", self.http.max_concurrent_images));
        }
        if self.http.enable && self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            return bad(format!("http.listen `{}` is not an address and port (e.g. 127.0.0.1:8091)", self.http.listen));
        }
        Ok(())
    }

    /// The ONNX file and its sidecar; an error when no model is configured.
    pub fn model_files(&self) -> Result<(PathBuf, PathBuf), ConfigError> {
        let onnx = self.model.path.clone().ok_or_else(|| {
            ConfigError::Check("model.path is not set: name the ONNX file of the model to serve (ENDOREG_MODEL__PATH)".into())
        })?;
        let sidecar = self.model.metadata.clone().unwrap_or_else(|| onnx.with_extension("toml"));
        Ok((onnx, sidecar))
    }

    /// The ONNX Runtime library: configured, or `$ORT_DYLIB_PATH`.
    pub fn library(&self) -> Result<PathBuf, ConfigError> {
        self.runtime.library.clone().or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from)).ok_or_else(|| {
            ConfigError::Check(
                "runtime.library is not set and ORT_DYLIB_PATH is empty: name libonnxruntime.so (ENDOREG_RUNTIME__LIBRARY)".into(),
            )
        })
    }

    pub fn token_file(&self) -> PathBuf {
        self.token_file.clone().unwrap_or_else(|| self.data_dir.join("keys").join("inference.token"))
    }

    pub fn work_dir(&self) -> PathBuf {
        self.data_dir.join("inference-work")
    }

    pub fn worker_name(&self) -> String {
        self.worker_name.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "localhost".into());
            format!("{host}-inference-{}", std::process::id())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_their_own_check() {
        InferenceConfig::default().check().unwrap();
    }

    #[test]
    fn bad_values_are_named() {
        let cfg = InferenceConfig { pipeline: PipelineConfig { step: 0, ..Default::default() }, ..Default::default() };
        assert!(cfg.check().unwrap_err().to_string().contains("pipeline.step"));
        let cfg = InferenceConfig { http: HttpConfig { listen: "localhost".into(), ..Default::default() }, ..Default::default() };
        assert!(cfg.check().unwrap_err().to_string().contains("http.listen"));
        let cfg = InferenceConfig { poll_secs: 0, ..Default::default() };
        assert!(cfg.check().unwrap_err().to_string().contains("poll_secs is 0"));
        let mut cfg = InferenceConfig::default();
        cfg.runtime.device_id = u32::MAX;
        assert!(cfg.check().unwrap_err().to_string().contains("runtime.device_id"));
        let cfg = InferenceConfig { pipeline: PipelineConfig { preprocess_threads: 100_000, ..Default::default() }, ..Default::default() };
        assert!(cfg.check().unwrap_err().to_string().contains("pipeline.preprocess_threads is 100000"));
        let cfg = InferenceConfig { http: HttpConfig { max_concurrent_images: 0, ..Default::default() }, ..Default::default() };
        assert!(cfg.check().unwrap_err().to_string().contains("http.max_concurrent_images"));
        let err = InferenceConfig::default().model_files().unwrap_err().to_string();
        assert!(err.contains("model.path"), "{err}");
    }

    #[test]
    fn the_sidecar_defaults_to_the_model_file_with_toml() {
        let cfg = InferenceConfig { model: ModelConfig { path: Some("/m/a.onnx".into()), metadata: None }, ..Default::default() };
        assert_eq!(cfg.model_files().unwrap().1, PathBuf::from("/m/a.toml"));
    }
}
