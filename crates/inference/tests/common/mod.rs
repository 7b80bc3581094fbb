//! What the integration tests share: the real ONNX Runtime library, Python for the reference scripts, the
//! demo model, demo videos.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use endoreg_inference::config::InferenceConfig;
use endoreg_media::video::demo::{self, DemoSpec};
use endoreg_media::video::mask::Layout;

/// The ONNX Runtime library the tests run with (`.ci/setup` exports it from the onnxruntime wheel).
pub fn library() -> PathBuf {
    let p = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .expect("ORT_DYLIB_PATH must name libonnxruntime.so (run `source .ci/setup`, which installs it)");
    assert!(p.is_file(), "ORT_DYLIB_PATH={} is not a file", p.display());
    p
}

/// The Python with onnx, numpy and Pillow that `.ci/setup` installs (`ENDOREG_CI_VENV`), else `python3`.
pub fn python() -> PathBuf {
    std::env::var_os("ENDOREG_CI_VENV").map_or_else(|| "python3".into(), |v| Path::new(&v).join("bin/python3"))
}

pub fn demo_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/endoreg-demo-multilabel.onnx")
}

/// A configuration for the demo model on the CPU, with data under `data`.
pub fn config(data: &Path) -> InferenceConfig {
    let mut cfg = InferenceConfig { data_dir: data.to_owned(), ..InferenceConfig::default() };
    cfg.model.path = Some(demo_model());
    cfg.runtime.library = Some(library());
    cfg.runtime.batch_size = 4;
    cfg.pipeline.decode_threads = 1;
    cfg.pipeline.preprocess_threads = 2;
    cfg
}

pub fn olympus_layout() -> Layout {
    demo::olympus_cv_1500()
}

/// The synthetic demo video (outside 0–15 %, mucosa, NBI 55–70 %, blurred 70–85 %, mucosa) at 480x270.
pub fn demo_video(dir: &Path, name: &str, frames: u64) -> PathBuf {
    let path = dir.join(name);
    demo::generate(&path, &DemoSpec::olympus(480, 270, frames)).unwrap();
    path
}
