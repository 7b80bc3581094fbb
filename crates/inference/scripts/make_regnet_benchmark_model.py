#!/usr/bin/env python3
"""Builds a benchmark model with the shape of EndoregDB's colonoscopy classifier: RegNetX-800MF (widths 64,
128, 288, 672; depths 1, 3, 7, 5; group width 16) with a 14-output head, at 716x716 input, random weights.
Batch norms are folded into the convolutions, as an exported model for inference has them. Generated at
benchmark time, never committed (about 29 MB). Usage: make_regnet_benchmark_model.py OUT.onnx [SEED]
"""

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WIDTHS = [64, 128, 288, 672]
DEPTHS = [1, 3, 7, 5]
GROUP_WIDTH = 16
STEM = 32
SIZE = 716
CLASSES = 14


class Builder:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []
        self.n = 0

    def name(self, p):
        self.n += 1
        return f"{p}{self.n}"

    def conv(self, x, cin, cout, k, stride=1, groups=1, relu=True):
        w = self.name("w")
        b = self.name("b")
        fan_in = cin // groups * k * k
        self.inits.append(numpy_helper.from_array((self.rng.standard_normal((cout, cin // groups, k, k)) * np.sqrt(2.0 / fan_in)).astype(np.float32), w))
        self.inits.append(numpy_helper.from_array(np.zeros(cout, dtype=np.float32), b))
        y = self.name("conv")
        self.nodes.append(helper.make_node("Conv", [x, w, b], [y], kernel_shape=[k, k], strides=[stride, stride],
                                           pads=[k // 2] * 4, group=groups))
        if relu:
            r = self.name("relu")
            self.nodes.append(helper.make_node("Relu", [y], [r]))
            return r
        return y

    def block(self, x, cin, cout, stride):
        groups = cout // GROUP_WIDTH
        a = self.conv(x, cin, cout, 1)
        b = self.conv(a, cout, cout, 3, stride=stride, groups=groups)
        c = self.conv(b, cout, cout, 1, relu=False)
        shortcut = x if (cin == cout and stride == 1) else self.conv(x, cin, cout, 1, stride=stride, relu=False)
        s = self.name("add")
        self.nodes.append(helper.make_node("Add", [c, shortcut], [s]))
        r = self.name("relu")
        self.nodes.append(helper.make_node("Relu", [s], [r]))
        return r


def build(seed):
    b = Builder(seed)
    x = b.conv("input", 3, STEM, 3, stride=2)
    cin = STEM
    for width, depth in zip(WIDTHS, DEPTHS):
        for i in range(depth):
            x = b.block(x, cin, width, 2 if i == 0 else 1)
            cin = width
    b.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"]))
    b.nodes.append(helper.make_node("Flatten", ["pooled"], ["flat"], axis=1))
    b.inits.append(numpy_helper.from_array((b.rng.standard_normal((CLASSES, cin)) * 0.01).astype(np.float32), "fc_w"))
    b.inits.append(numpy_helper.from_array(np.zeros(CLASSES, dtype=np.float32), "fc_b"))
    b.nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1))
    graph = helper.make_graph(
        b.nodes, "regnetx_800mf_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", CLASSES])],
        b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="endoreg make_regnet_benchmark_model.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    out = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    with open(out, "wb") as f:
        f.write(build(seed).SerializeToString())
