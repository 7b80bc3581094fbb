#!/usr/bin/env python3
"""Builds endoreg's demo frame classifier: a tiny ONNX graph (no training, no weights file) whose 14 outputs
follow EndoregDB's multilabel colonoscopy label set and are computed from image statistics, so the demo
yields real segments on the synthetic demo video:

  outside      bright and colourless (the picture before the endoscope enters the body)
  nbi          green above red, saturated (narrow-band imaging)
  low_quality  little fine detail in the centre of the picture (blur), unless the picture is bright
  all others   never (a constant low logit)

Input: 1x3x128x128 RGB, values 0..1 (pixel / 255), after the contract's crop and pad to square.
Output: 14 logits; the sidecar says to apply a sigmoid. Deterministic: running this again writes the same
bytes. Usage: python3 make_demo_model.py OUT_DIR  (writes endoreg-demo-multilabel.onnx and .toml)
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LABELS = ["appendix", "blood", "diverticule", "grasper", "ileocaecalvalve", "ileum", "low_quality", "nbi",
          "needle", "outside", "polyp", "snare", "water_jet", "wound"]
SIZE = 128

# Features, in the order of the feature vector: mean R, G, B, brightness, saturation, centre sharpness,
# relu(brightness - 0.21), 1.
# Calibrated on the demo video (crates/media/src/video/demo.rs has its phases), after the sidecar's crop, pad
# and bilinear resize to 128x128: outside has brightness ~0.26 and saturation ~0.01; mucosa 0.15 / 0.19; NBI
# has G - R ~ +0.15; blurred mucosa has a centre sharpness (mean |Laplacian|) of ~0.018 against ~0.030 when
# sharp (NBI ~0.030, outside ~0.017, but outside is bright), alike from 480x270 to 1920x1080.
N_FEATURES = 8


def logit_weights():
    w = np.zeros((N_FEATURES, len(LABELS)), dtype=np.float32)
    w[7, :] = -6.0  # every label: "no" unless a rule below says otherwise
    out = LABELS.index("outside")
    w[:, out] = 0.0
    w[3, out] = 60.0                      # brightness
    w[4, out] = -40.0                     # saturation
    w[7, out] = -60.0 * 0.21 + 40.0 * 0.08
    nbi = LABELS.index("nbi")
    w[:, nbi] = 0.0
    w[1, nbi] = 40.0                      # + green
    w[0, nbi] = -40.0                     # - red
    w[4, nbi] = 30.0                      # + saturation
    w[7, nbi] = -30.0 * 0.08
    lq = LABELS.index("low_quality")
    w[:, lq] = 0.0
    w[5, lq] = -1500.0                    # - sharpness
    w[6, lq] = -400.0                     # - excess brightness (outside is not "low quality")
    w[7, lq] = 1500.0 * 0.025
    return w


def build():
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(LABELS)])
    q = SIZE // 4
    init = [
        numpy_helper.from_array(np.array([0.299, 0.587, 0.114], dtype=np.float32).reshape(1, 3, 1, 1), "gray_w"),
        numpy_helper.from_array(np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float32).reshape(1, 1, 3, 3), "lap_w"),
        numpy_helper.from_array(logit_weights(), "head_w"),
        numpy_helper.from_array(np.array([q, q], dtype=np.int64), "crop_start"),
        numpy_helper.from_array(np.array([3 * q, 3 * q], dtype=np.int64), "crop_end"),
        numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "crop_axes"),
        numpy_helper.from_array(np.array([0.21], dtype=np.float32), "bright_knee"),
        numpy_helper.from_array(np.array([[1.0]], dtype=np.float32), "one"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "last_axis"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["rgb"], axes=[2, 3], keepdims=0),               # N x 3
        helper.make_node("ReduceMean", ["rgb"], ["bright"], axes=[1], keepdims=1),                # N x 1
        helper.make_node("ReduceMax", ["input"], ["cmax"], axes=[1], keepdims=0),                 # N x H x W
        helper.make_node("ReduceMin", ["input"], ["cmin"], axes=[1], keepdims=0),
        helper.make_node("Sub", ["cmax", "cmin"], ["chroma"]),
        helper.make_node("ReduceMean", ["chroma"], ["sat"], axes=[1, 2], keepdims=0),            # N
        helper.make_node("Unsqueeze", ["sat", "last_axis"], ["sat1"]),                            # N x 1
        helper.make_node("Slice", ["input", "crop_start", "crop_end", "crop_axes"], ["centre"]),
        helper.make_node("Conv", ["centre", "gray_w"], ["gray"]),                                 # N x 1 x h x w
        helper.make_node("Conv", ["gray", "lap_w"], ["lap"]),
        helper.make_node("Abs", ["lap"], ["lap_abs"]),
        helper.make_node("ReduceMean", ["lap_abs"], ["sharp"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Unsqueeze", ["sharp", "last_axis"], ["sharp1"]),
        helper.make_node("Sub", ["bright", "bright_knee"], ["excess"]),
        helper.make_node("Relu", ["excess"], ["excess_pos"]),
        helper.make_node("Shape", ["bright"], ["bshape"]),
        helper.make_node("Expand", ["one", "bshape"], ["ones"]),
        helper.make_node("Concat", ["rgb", "bright", "sat1", "sharp1", "excess_pos", "ones"], ["features"], axis=1),
        helper.make_node("MatMul", ["features", "head_w"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "endoreg_demo_multilabel", [x], [y], init)
    # Opset 17 and IR 8: what ONNX Runtime 1.22 (nixpkgs) and later read.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="endoreg make_demo_model.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


SIDECAR = """# Sidecar of the demo model (docs/inference.md describes every key).
name = "colonoscopy_multilabel_classifier"
version = "demo-1"
label_set = "multilabel_classification_colonoscopy"
labels = [{labels}]

[input]
width = {size}
height = {size}

[preprocessing]
crop = "endoscope_image"
pad_to_square = true
resize = "bilinear"
mean = [0.0, 0.0, 0.0]
std = [1.0, 1.0, 1.0]

[output]
activation = "sigmoid"

[postprocessing]
threshold = 0.5
smoothing_window_s = 0.5
min_segment_s = 0.4
"""


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "models")
    os.makedirs(out, exist_ok=True)
    model = build()
    with open(os.path.join(out, "endoreg-demo-multilabel.onnx"), "wb") as f:
        f.write(model.SerializeToString(deterministic=True))
    with open(os.path.join(out, "endoreg-demo-multilabel.toml"), "w") as f:
        f.write(SIDECAR.format(labels=", ".join(f'"{l}"' for l in LABELS), size=SIZE))


if __name__ == "__main__":
    main()
