//! A model that does not fit its contract, or is not there, fails at start with an error naming the file
//! and the problem; the GPU fallback and `require_gpu` behave as documented. Real ONNX Runtime throughout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use endoreg_inference::config::ExecutionProvider;
use endoreg_inference::runtime::Provider;
use endoreg_inference::service::{StartError, load_model};

fn demo_sidecar() -> String {
    std::fs::read_to_string(common::demo_model().with_extension("toml")).unwrap()
}

/// A model directory with the demo ONNX file and `sidecar` next to it.
fn with_sidecar(dir: &Path, sidecar: &str) -> std::path::PathBuf {
    let onnx = dir.join("m.onnx");
    std::fs::copy(common::demo_model(), &onnx).unwrap();
    std::fs::write(dir.join("m.toml"), sidecar).unwrap();
    onnx
}

fn load_err(cfg: &endoreg_inference::config::InferenceConfig) -> String {
    match load_model(cfg) {
        Ok(m) => panic!("{m:?} loaded, an error was expected"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_demo_model_loads_on_the_cpu_and_a_missing_gpu_is_a_fallback_or_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(dir.path());
    let m = load_model(&cfg).unwrap();
    assert_eq!((m.provider, m.labels(), m.contract.input.width), (Provider::Cpu, 14, 128));
    assert_eq!(m.sha256.len(), 64);

    // The wheel's library has no CUDA provider: asked for CUDA, the CPU runs it (logged) ...
    cfg.runtime.execution_provider = ExecutionProvider::Cuda;
    assert_eq!(load_model(&cfg).unwrap().provider, Provider::Cpu);
    // ... unless a GPU is required.
    cfg.runtime.require_gpu = true;
    let e = load_err(&cfg);
    assert!(e.contains("no GPU execution provider") && e.contains("CUDA provider"), "{e}");
    // TensorRT that cannot be used falls back to CUDA (still a GPU); neither: both reasons.
    cfg.runtime.execution_provider = ExecutionProvider::Tensorrt;
    let e = load_err(&cfg);
    assert!(e.contains("TensorRT: this ONNX Runtime library has no TensorRT provider; CUDA: this ONNX Runtime library has no CUDA"), "{e}");
    cfg.runtime.execution_provider = ExecutionProvider::Cpu;
    assert!(load_err(&cfg).contains("execution_provider is cpu"));
}

#[test]
fn a_missing_or_corrupt_model_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(dir.path());
    cfg.model.path = Some(dir.path().join("nowhere.onnx"));
    let e = load_err(&cfg);
    assert!(e.contains("nowhere.onnx") && e.contains("does not exist"), "{e}");
    cfg.model.metadata = Some(common::demo_model().with_extension("toml"));

    let corrupt = dir.path().join("corrupt.onnx");
    std::fs::write(&corrupt, b"\x08\x07this is not a protobuf model at all").unwrap();
    cfg.model.path = Some(corrupt);
    let e = load_err(&cfg);
    assert!(e.contains("corrupt.onnx") && e.contains("not a model ONNX Runtime can load"), "{e}");

    // A truncated copy of the real model.
    let bytes = std::fs::read(common::demo_model()).unwrap();
    let truncated = dir.path().join("truncated.onnx");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    cfg.model.path = Some(truncated);
    let e = load_err(&cfg);
    assert!(e.contains("truncated.onnx"), "{e}");

    // No sidecar next to the model.
    let lonely = dir.path().join("lonely.onnx");
    std::fs::copy(common::demo_model(), &lonely).unwrap();
    cfg.model.path = Some(lonely);
    cfg.model.metadata = None;
    let e = load_err(&cfg);
    assert!(e.contains("lonely.toml"), "{e}");

    // No model configured at all, no library.
    cfg.model.path = None;
    assert!(load_err(&cfg).contains("model.path is not set"));
    cfg.model.path = Some(common::demo_model());
    cfg.runtime.library = Some(dir.path().join("libonnxruntime.so"));
    let e = load_err(&cfg);
    assert!(e.contains("cannot load ONNX Runtime") && e.contains("no such file"), "{e}");
}

#[test]
fn a_model_that_does_not_fit_its_sidecar_fails_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(dir.path());

    // 13 labels in the sidecar, 14 outputs in the model.
    let sidecar = demo_sidecar().replace("\"appendix\", ", "");
    cfg.model.path = Some(with_sidecar(dir.path(), &sidecar));
    let e = load_err(&cfg);
    assert!(e.contains("does not fit its contract") && e.contains("13 labels"), "{e}");

    // The sidecar's input size is not the model's.
    let sidecar = demo_sidecar().replace("width = 128", "width = 64");
    cfg.model.path = Some(with_sidecar(dir.path(), &sidecar));
    let e = load_err(&cfg);
    assert!(e.contains("does not fit its contract") && e.contains("[batch, 3, 128, 64]"), "{e}");

    // A sidecar that is not a contract names its file.
    cfg.model.path = Some(with_sidecar(dir.path(), "name = \"x\"\nlabels = 3\n"));
    let e = load_err(&cfg);
    assert!(e.contains("m.toml"), "{e}");
    assert!(matches!(load_model(&cfg), Err(StartError::Contract(_))));
}

/// Weights in a separate file (ONNX external data): the worker loads models from their bytes and versions
/// them by one file's hash, so such a model is refused at start with the reason, not ONNX Runtime's riddle.
#[test]
fn a_model_with_its_weights_in_a_separate_file_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(dir.path());
    let split = dir.path().join("split.onnx");
    let resave = "import onnx, sys\nm = onnx.load(sys.argv[1])\n\
                  onnx.save_model(m, sys.argv[2], save_as_external_data=True, location='split.onnx.data', size_threshold=0)";
    let out = std::process::Command::new(common::python()).args(["-c", resave]).arg(common::demo_model()).arg(&split).output().unwrap();
    assert!(out.status.success(), "re-saving the demo model failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("split.onnx.data").is_file());
    std::fs::copy(common::demo_model().with_extension("toml"), split.with_extension("toml")).unwrap();
    cfg.model.path = Some(split);
    let e = load_err(&cfg);
    assert!(e.contains("split.onnx") && e.contains("external data") && e.contains("one file"), "{e}");
}

/// A model whose fixed batch could not be allocated is refused at start with the sizes, not an abort.
#[test]
fn a_model_with_an_enormous_fixed_batch_is_refused_with_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("huge.onnx");
    let make = "import onnx, sys\nfrom onnx import helper as h, TensorProto as T\nimport numpy as np\n\
                n = 20_000_000\n\
                w = onnx.numpy_helper.from_array(np.zeros((3, 14), np.float32), 'w')\n\
                g = h.make_graph([h.make_node('ReduceMean', ['x'], ['m'], axes=[2, 3], keepdims=0), h.make_node('MatMul', ['m', 'w'], ['y'])],\n\
                'g', [h.make_tensor_value_info('x', T.FLOAT, [n, 3, 8, 8])], [h.make_tensor_value_info('y', T.FLOAT, [n, 14])], [w])\n\
                onnx.save(h.make_model(g, opset_imports=[h.make_opsetid('', 17)], ir_version=8), sys.argv[1])";
    let out = std::process::Command::new(common::python()).args(["-c", make]).arg(&onnx).output().unwrap();
    assert!(out.status.success(), "making the model failed: {}", String::from_utf8_lossy(&out.stderr));
    let sidecar = demo_sidecar().replace("width = 128", "width = 8").replace("height = 128", "height = 8");
    std::fs::write(onnx.with_extension("toml"), sidecar).unwrap();
    let mut cfg = common::config(dir.path());
    cfg.model.path = Some(onnx);
    let e = load_err(&cfg);
    assert!(e.contains("huge.onnx") && e.contains("20000000 frames") && e.contains("fixed batch size"), "{e}");
}

/// The committed demo model is what its script writes: anyone can check that the bytes hold no trained
/// weights from elsewhere (needs Python with `onnx` and `numpy`; `.ci/setup` installs them).
#[test]
fn the_committed_demo_model_is_what_its_script_generates() {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make_demo_model.py");
    let out = std::process::Command::new(common::python()).arg(&script).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    for name in ["endoreg-demo-multilabel.onnx", "endoreg-demo-multilabel.toml"] {
        let committed = std::fs::read(common::demo_model().with_file_name(name)).unwrap();
        let generated = std::fs::read(dir.path().join(name)).unwrap();
        assert!(committed == generated, "models/{name} differs from what scripts/make_demo_model.py writes; run it again and commit");
    }
    assert!(std::fs::metadata(common::demo_model()).unwrap().len() < 1024 * 1024);
}
