//! The endoreg inference worker: runs a frame classifier (an ONNX model with a sidecar contract) on
//! anonymised endoscopy videos and turns its per-frame probabilities into labelled video segments.
//!
//! - [`contract`]: the sidecar — labels, input, preprocessing, activation, thresholds, smoothing.
//! - [`runtime`]: ONNX Runtime (and [`onnx_file`], a model file's external-data check), loaded at run time; CUDA/TensorRT when asked for and usable, else the CPU.
//! - [`preprocess`]: crop, pad, resize, normalise — the same for video frames and single images.
//! - [`pipeline`]: decode → preprocess → batch → model, overlapped through bounded channels.
//! - [`postprocess`]: centred smoothing, thresholds, minimum length → segments; [`probabilities`] stores
//!   the per-frame values compactly.
//! - [`service`], [`worker`], [`http`]: the running service — prediction jobs, single images, metrics
//!   ([`telemetry`], with NVML GPU metrics); [`config`] its settings.

pub mod config;
pub mod contract;
pub mod http;
pub mod onnx_file;
pub mod pipeline;
pub mod postprocess;
pub mod preprocess;
pub mod probabilities;
pub mod runtime;
pub mod service;
pub mod telemetry;
pub mod worker;
