//! ONNX Runtime: loading the library from a configured path, choosing the execution provider (CUDA or
//! TensorRT when asked for and usable, the CPU otherwise), and a [`Model`]: a session checked against its
//! contract when it is loaded, so that a wrong model fails at start and not on the first video.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::ep::ExecutionProvider as _;
use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::value::{TensorElementType, TensorRef, ValueType};
use sha2::{Digest, Sha256};

use crate::config::{ExecutionProvider, RuntimeConfig};
use crate::contract::{Activation, Contract};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot load ONNX Runtime from {path}: {detail} (set runtime.library or ORT_DYLIB_PATH to libonnxruntime.so, 1.22 or newer)")]
    Library { path: PathBuf, detail: String },
    #[error("the model file {0} does not exist")]
    Missing(PathBuf),
    #[error("the model file {path} is not a model ONNX Runtime can load: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("the model {path} does not fit its contract: {detail}")]
    Mismatch { path: PathBuf, detail: String },
    #[error("no GPU execution provider can be used ({0}) and require_gpu is set")]
    NoGpu(String),
    #[error("inference failed: {0}")]
    Run(String),
}

/// ONNX Runtime's error text on one line, without the source location and C++ signature it starts with
/// ("/onnxruntime_src/…/provider_bridge_ort.cc:1778 onnxruntime::Provider& … [ONNXRuntimeError] : 1 : FAIL : ").
fn err(e: impl std::fmt::Display) -> String {
    let text = e.to_string();
    let message = match text.split_once("[ONNXRuntimeError] : ") {
        Some((_, rest)) => rest.splitn(3, " : ").nth(2).unwrap_or(rest),
        None => text.as_str(),
    };
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether the NVIDIA driver is there and sees GPU `device`. ONNX Runtime 1.22's CUDA provider library
/// opens the driver's libcuda.so.1 while it is being loaded and, when that fails, dies with SIGSEGV
/// inside dlopen (onnxruntime#24652), where no error can be caught: a CUDA build of ONNX Runtime on a
/// host without the driver would crash at every start. So the driver is asked first, through NVML
/// (libnvidia-ml.so.1, which every driver installs beside libcuda.so.1).
fn nvidia_driver(device: i32) -> Result<(), String> {
    let nvml = nvml_wrapper::Nvml::init()
        .map_err(|e| format!("no usable NVIDIA driver ({e}); install it (NixOS: hardware.nvidia, the ai-deploy role's nvidia.enable)"))?;
    let n = nvml.device_count().map_err(|e| format!("the NVIDIA driver cannot count the GPUs ({e})"))?;
    if u32::try_from(device).is_ok_and(|d| d < n) {
        Ok(())
    } else {
        Err(format!("runtime.device_id is {device}, but the NVIDIA driver sees {n} GPU(s)"))
    }
}

/// The most input one batch may take (4 GiB: 512 frames of 716x716).
const MAX_BATCH_BYTES: usize = 4 << 30;

/// ONNX Runtime's own messages (e.g. a CUDA call failing while a provider starts), through the service's
/// log (journald, with the level) instead of coloured lines of its own on stderr.
fn onnxruntime_log(level: ort::logging::LogLevel, _category: &str, _id: &str, location: &str, message: &str) {
    use ort::logging::LogLevel;
    let level = match level {
        LogLevel::Verbose => log::Level::Trace,
        LogLevel::Info => log::Level::Debug,
        LogLevel::Warning => log::Level::Warn,
        LogLevel::Error | LogLevel::Fatal => log::Level::Error,
    };
    log::log!(target: "onnxruntime", level, "{} ({location})", message.trim_end());
}

/// The process's ONNX Runtime environment. The library is loaded once; a second, different path is refused
/// instead of silently ignored.
fn environment(library: &Path) -> Result<&'static ort::environment::Environment, ModelError> {
    static ENV: OnceLock<(PathBuf, ort::environment::Environment)> = OnceLock::new();
    static INIT: Mutex<()> = Mutex::new(());
    let fail = |detail: String| ModelError::Library { path: library.to_owned(), detail };
    if !library.is_file() {
        return Err(fail("no such file".into()));
    }
    let _guard = INIT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((path, env)) = ENV.get() {
        if path != library {
            return Err(fail(format!("{} is loaded already", path.display())));
        }
        return Ok(env);
    }
    let env = ort::init_from(library)
        .map_err(|e| fail(err(e)))?
        .with_name("endoreg-inference")
        .with_telemetry(false)
        .with_logger(std::sync::Arc::new(onnxruntime_log))
        .build()
        .map_err(|e| fail(err(e)))?;
    // With a logger, ONNX Runtime would format every verbose message for it; errors are what it has to say.
    env.set_log_level(ort::logging::LogLevel::Error);
    let _ = ENV.set((library.to_owned(), env));
    ENV.get().map(|(_, env)| env).ok_or_else(|| fail("the environment was not kept".into()))
}

/// Which execution provider runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Cpu,
    Cuda,
    TensorRt,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
            Provider::TensorRt => "tensorrt",
        }
    }

    pub fn is_gpu(self) -> bool {
        self != Provider::Cpu
    }
}

/// The GPU providers to try for the configured one, in order: TensorRT falls back to CUDA, still on the
/// GPU; the CPU comes after them all.
fn gpu_providers(wanted: ExecutionProvider) -> &'static [Provider] {
    match wanted {
        ExecutionProvider::Cpu => &[],
        ExecutionProvider::Auto | ExecutionProvider::Cuda => &[Provider::Cuda],
        ExecutionProvider::Tensorrt => &[Provider::TensorRt, Provider::Cuda],
    }
}

/// Options with GPU provider `provider` registered, on a copy of `base` (a provider registered before a
/// later step failed must not stay behind), or why it cannot be used.
fn register_gpu(base: &SessionBuilder, provider: Provider, device: i32) -> Result<SessionBuilder, String> {
    let (available, lacking) = if provider == Provider::TensorRt {
        (ort::ep::TensorRT::is_available(), "this ONNX Runtime library has no TensorRT provider")
    } else {
        (ort::ep::CUDA::is_available(), "this ONNX Runtime library has no CUDA provider (the CPU build of the onnxruntime wheel has none)")
    };
    if !available.map_err(err)? {
        return Err(lacking.into());
    }
    nvidia_driver(device)?;
    let mut builder = base.clone();
    if provider == Provider::TensorRt {
        ort::ep::TensorRT::default().with_device_id(device).register(&mut builder).map_err(err)?;
    }
    // Beside TensorRT, CUDA takes the subgraphs TensorRT does not support.
    ort::ep::CUDA::default()
        .with_device_id(device)
        .register(&mut builder)
        .map_err(|e| format!("{} (the CUDA 12 and cuDNN 9 libraries must be on the library path)", err(e)))?;
    Ok(builder)
}

/// Why GPU providers could not be used, each named: "TensorRT: …; CUDA: …", or "TensorRT and CUDA: …" when
/// the reason is the same.
fn gpu_failures(failures: &[(Provider, String)]) -> String {
    let name = |p: Provider| if p == Provider::TensorRt { "TensorRT" } else { "CUDA" };
    match failures {
        [(a, x), (b, y)] if x == y => format!("{} and {}: {x}", name(*a), name(*b)),
        _ => failures.iter().map(|(p, why)| format!("{}: {why}", name(*p))).collect::<Vec<_>>().join("; "),
    }
}

/// A loaded model, checked against its contract. Not shared between threads: ONNX Runtime runs one call
/// of a session at a time; callers put it behind a mutex.
pub struct Model {
    session: Session,
    pub contract: Contract,
    pub path: PathBuf,
    /// SHA-256 of the ONNX file: recorded with the model version, so a changed file under the same version
    /// is noticed.
    pub sha256: String,
    pub provider: Provider,
    /// Frames per call; the model's own when its batch dimension is fixed.
    pub batch_size: usize,
    fixed_batch: bool,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.contract.name)
            .field("version", &self.contract.version)
            .field("provider", &self.provider)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

impl Model {
    /// Loads `onnx` with `contract` on the provider `rt` asks for. A GPU provider that cannot be used is a
    /// warning and the CPU runs the model, unless `require_gpu`; then it is an error.
    pub fn load(library: &Path, onnx: &Path, contract: Contract, rt: &RuntimeConfig) -> Result<Model, ModelError> {
        let env = environment(library)?;
        if !onnx.is_file() {
            return Err(ModelError::Missing(onnx.to_owned()));
        }
        let bytes = std::fs::read(onnx).map_err(|e| ModelError::Corrupt { path: onnx.to_owned(), detail: e.to_string() })?;
        if let Some(tensor) = crate::onnx_file::external_tensor(&bytes) {
            return Err(ModelError::Corrupt {
                path: onnx.to_owned(),
                detail: format!(
                    "its tensor `{tensor}` is stored in a separate file (ONNX external data), which endoreg-inference \
                     does not read: a model is served and versioned as one file; save it as one \
                     (onnx.save_model(model, path, save_as_external_data=False), or torch.onnx.export(..., external_data=False))"
                ),
            });
        }
        let sha256 = format!("{:x}", Sha256::digest(&bytes));
        let threads = if rt.intra_threads == 0 { endoreg_media::video::cores() } else { rt.intra_threads };
        let corrupt = |detail: String| ModelError::Corrupt { path: onnx.to_owned(), detail };
        let mut builder = Session::builder(env)
            .map_err(|e| corrupt(err(e)))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| corrupt(err(e)))?
            .with_intra_threads(threads)
            .map_err(|e| corrupt(err(e)))?
            .with_inter_threads(1)
            .map_err(|e| corrupt(err(e)))?;
        builder = builder.with_intra_op_spinning(rt.spin_threads).map_err(|e| corrupt(err(e)))?;
        let device = i32::try_from(rt.device_id).unwrap_or(0);
        if rt.execution_provider == ExecutionProvider::Cpu && rt.require_gpu {
            return Err(ModelError::NoGpu("execution_provider is cpu".into()));
        }
        // A session, checked against the contract with a trial batch (where a GPU first allocates).
        let start = |mut options: SessionBuilder, provider: Provider| -> Result<Model, ModelError> {
            let session = options.commit_from_memory(&bytes).map_err(|e| corrupt(err(e)))?;
            let contract = contract.clone();
            let mut model = Model {
                session,
                contract,
                path: onnx.to_owned(),
                sha256: sha256.clone(),
                provider,
                batch_size: rt.batch_size,
                fixed_batch: false,
            };
            model.check_signature()?;
            model.check_outputs()?;
            Ok(model)
        };
        // The GPU providers in turn. One that registers can still fail to start or run the model (GPU memory
        // taken, a cuDNN that does not fit, an operator TensorRT cannot build an engine for); then the CPU
        // tells whether the model itself is at fault.
        let mut failures = Vec::new();
        let mut started_on_gpu = false;
        let mut on_gpu = None;
        for &provider in gpu_providers(rt.execution_provider) {
            let options = match register_gpu(&builder, provider, device) {
                Ok(options) => options,
                Err(why) => {
                    failures.push((provider, why));
                    continue;
                }
            };
            started_on_gpu = true;
            match start(options, provider) {
                Ok(model) => {
                    on_gpu = Some(model);
                    break;
                }
                Err(e @ (ModelError::Corrupt { .. } | ModelError::Run(_))) => {
                    failures.push((provider, format!("could not run the model: {e}")))
                }
                Err(e) => return Err(e),
            }
        }
        let why = gpu_failures(&failures);
        let model = match on_gpu {
            Some(model) => {
                if !failures.is_empty() {
                    log::warn!("{why}; running on {}", model.provider.as_str());
                }
                model
            }
            None => {
                if rt.require_gpu && !started_on_gpu {
                    return Err(ModelError::NoGpu(why));
                }
                let model = start(builder, Provider::Cpu).map_err(|cpu| match cpu {
                    ModelError::Corrupt { path, detail } if started_on_gpu => {
                        ModelError::Corrupt { path, detail: format!("{detail} (and {why})") }
                    }
                    other => other,
                })?;
                if rt.require_gpu {
                    return Err(ModelError::NoGpu(why));
                }
                match rt.execution_provider {
                    ExecutionProvider::Cpu => {}
                    ExecutionProvider::Auto if !started_on_gpu => {
                        log::info!("no GPU provider ({why}); running on the CPU with {threads} threads")
                    }
                    wanted => {
                        log::warn!(
                            "execution_provider {} cannot be used ({why}); running on the CPU with {threads} threads",
                            wanted.as_str()
                        )
                    }
                }
                model
            }
        };
        let provider = model.provider;
        log::info!(
            "model {} {} loaded from {} on {} (batch {})",
            model.contract.name,
            model.contract.version,
            onnx.display(),
            provider.as_str(),
            model.batch_size
        );
        Ok(model)
    }

    fn mismatch(&self, detail: String) -> ModelError {
        ModelError::Mismatch { path: self.path.clone(), detail }
    }

    /// The input must be one float tensor [batch, 3, height, width] of the contract's size; the output a
    /// float tensor [batch, labels].
    fn check_signature(&mut self) -> Result<(), ModelError> {
        let (w, h) = (i64::from(self.contract.input.width), i64::from(self.contract.input.height));
        let inputs = self.session.inputs();
        let [input] = inputs else {
            return Err(self.mismatch(format!("it has {} inputs; the contract describes one image input", inputs.len())));
        };
        let ValueType::Tensor { ty, shape, .. } = input.dtype() else {
            return Err(self.mismatch(format!("input `{}` is not a tensor", input.name())));
        };
        if *ty != TensorElementType::Float32 {
            return Err(self.mismatch(format!("input `{}` holds {ty:?}, not 32-bit floats", input.name())));
        }
        let dims: Vec<i64> = shape.to_vec();
        let fits = |got: i64, want: i64| got < 0 || got == want;
        if dims.len() != 4 || !fits(dims[1], 3) || !fits(dims[2], h) || !fits(dims[3], w) {
            return Err(self.mismatch(format!(
                "input `{}` has shape {dims:?}; the contract needs [batch, 3, {h}, {w}] (nchw, input.height x input.width)",
                input.name()
            )));
        }
        if dims[0] > 0 {
            self.batch_size = usize::try_from(dims[0]).unwrap_or(usize::MAX);
            self.fixed_batch = true;
        }
        // One batch of inputs is allocated as a whole (and a trial batch is run now): a size that cannot be
        // allocated must be an error naming it, not an abort.
        let bytes = self.batch_size.checked_mul(self.frame_len()).and_then(|n| n.checked_mul(4));
        if bytes.is_none_or(|b| b > MAX_BATCH_BYTES) {
            return Err(self.mismatch(format!(
                "a batch of {} frames of 3x{h}x{w} floats is {} MiB, more than the {} MiB allowed{}",
                self.batch_size,
                bytes.map_or_else(|| "too many".into(), |b| (b >> 20).to_string()),
                MAX_BATCH_BYTES >> 20,
                if self.fixed_batch { " (the model's fixed batch size)" } else { "; lower runtime.batch_size" }
            )));
        }
        let labels = i64::try_from(self.contract.labels.len()).unwrap_or(i64::MAX);
        let outputs = self.session.outputs();
        if outputs.len() != 1 {
            return Err(self.mismatch(format!("it has {} outputs; the contract describes one, [batch, labels]", outputs.len())));
        }
        let output = &outputs[0];
        if let ValueType::Tensor { ty, shape, .. } = output.dtype() {
            if *ty != TensorElementType::Float32 {
                return Err(self.mismatch(format!("output `{}` holds {ty:?}, not 32-bit floats", output.name())));
            }
            let dims: Vec<i64> = shape.to_vec();
            if dims.len() != 2 || !fits(dims[1], labels) {
                return Err(self.mismatch(format!(
                    "output `{}` has shape {dims:?} but the sidecar lists {labels} labels: [batch, {labels}] expected",
                    output.name()
                )));
            }
        } else {
            return Err(self.mismatch(format!("output `{}` is not a tensor", output.name())));
        }
        Ok(())
    }

    /// One call on a black batch: outputs whose size is only known at run time are checked here, and the
    /// providers allocate what they need before the first video.
    fn check_outputs(&mut self) -> Result<(), ModelError> {
        let n = self.batch_size;
        let zeros = vec![0.0f32; n * self.frame_len()];
        self.run(&zeros, n).map(|_| ())
    }

    /// Floats per frame in the input tensor.
    pub fn frame_len(&self) -> usize {
        3 * self.contract.input.width as usize * self.contract.input.height as usize
    }

    pub fn labels(&self) -> usize {
        self.contract.labels.len()
    }

    /// Runs `n` frames (`frames` holds `n * frame_len()` floats, `n <= batch_size`) and returns `n * labels`
    /// probabilities, the contract's activation applied. A model with a fixed batch gets the batch padded.
    pub fn run(&mut self, frames: &[f32], n: usize) -> Result<Vec<f32>, ModelError> {
        let per = self.frame_len();
        if frames.len() != n * per || n == 0 || n > self.batch_size {
            return Err(ModelError::Run(format!("a batch of {n} frames needs {} floats, got {}", n * per, frames.len())));
        }
        let padded;
        let (data, rows) = if self.fixed_batch && n < self.batch_size {
            let mut v = frames.to_vec();
            v.resize(self.batch_size * per, 0.0);
            padded = v;
            (&padded[..], self.batch_size)
        } else {
            (frames, n)
        };
        let (h, w) = (self.contract.input.height as usize, self.contract.input.width as usize);
        let labels = self.labels();
        let tensor = TensorRef::from_array_view(([rows, 3, h, w], data)).map_err(|e| ModelError::Run(err(e)))?;
        let outputs = self.session.run(ort::inputs![tensor]).map_err(|e| ModelError::Run(err(e)))?;
        let (shape, values) = outputs[0].try_extract_tensor::<f32>().map_err(|e| ModelError::Run(err(e)))?;
        let dims: Vec<i64> = shape.to_vec();
        if dims.len() != 2 || dims[0] != i64::try_from(rows).unwrap_or(-1) || dims[1] != i64::try_from(labels).unwrap_or(-1) {
            return Err(ModelError::Mismatch {
                path: self.path.clone(),
                detail: format!("it answered with shape {dims:?} for {rows} frames, but the sidecar lists {labels} labels"),
            });
        }
        let mut out = values[..n * labels].to_vec();
        activate(self.contract.output.activation, &mut out, labels);
        Ok(out)
    }
}

/// Applies the contract's activation to rows of `labels` values.
pub fn activate(activation: Activation, values: &mut [f32], labels: usize) {
    match activation {
        Activation::None => {}
        Activation::Sigmoid => values.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
        Activation::Softmax => {
            for row in values.chunks_mut(labels.max(1)) {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for v in row.iter_mut() {
                    *v = (*v - max).exp();
                    sum += *v;
                }
                row.iter_mut().for_each(|v| *v /= sum);
            }
        }
    }
    // A model that produces NaN must not yield "label present" by accident.
    values.iter_mut().filter(|v| !v.is_finite()).for_each(|v| *v = 0.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations() {
        let mut v = vec![0.0, 100.0, -100.0, f32::NAN];
        activate(Activation::Sigmoid, &mut v, 4);
        assert_eq!(v[0], 0.5);
        assert!(v[1] > 0.999 && v[2] < 0.001 && v[3] == 0.0);
        let mut v = vec![1.0, 1.0, 3.0, 0.0];
        activate(Activation::Softmax, &mut v, 2);
        assert!((v[0] - 0.5).abs() < 1e-6 && (v[2] + v[3] - 1.0).abs() < 1e-6 && v[2] > 0.95);
    }

    #[test]
    fn onnx_runtime_errors_are_cut_to_their_message() {
        // As the CUDA build of ONNX Runtime 1.22 reports a missing CUDA library (with its trailing newline).
        let raw = "/onnxruntime_src/onnxruntime/core/session/provider_bridge_ort.cc:1778 onnxruntime::Provider& \
                   onnxruntime::ProviderLibrary::Get() [ONNXRuntimeError] : 1 : FAIL : Failed to load library \
                   libonnxruntime_providers_cuda.so with error: libcublasLt.so.12: cannot open shared object file: \
                   No such file or directory\n";
        assert_eq!(
            err(raw),
            "Failed to load library libonnxruntime_providers_cuda.so with error: libcublasLt.so.12: cannot open \
             shared object file: No such file or directory"
        );
        assert_eq!(err("Load model from memory failed:Protobuf parsing failed."), "Load model from memory failed:Protobuf parsing failed.");
    }

    /// Without the driver (this machine, CI) the CUDA provider is never loaded: that is what would crash.
    #[test]
    fn without_an_nvidia_driver_cuda_is_not_tried() {
        if std::path::Path::new("/dev/nvidiactl").exists() {
            // A device node without a usable driver library (a container) is "no usable driver".
            assert!(nvidia_driver(i32::MAX).is_err_and(|e| e.contains("sees") || e.contains("no usable NVIDIA driver")));
            return;
        }
        let e = nvidia_driver(0).unwrap_err();
        assert!(e.contains("no usable NVIDIA driver") && e.contains("hardware.nvidia"), "{e}");
    }
}
