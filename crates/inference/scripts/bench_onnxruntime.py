#!/usr/bin/env python3
"""The baseline of endoreg-inference's benchmark: Python onnxruntime running a model on the CPU with the
same batch size and thread count. Prints one JSON line: {"images_per_second": ..., "seconds": ...}.
Usage: bench_onnxruntime.py MODEL.onnx BATCH THREADS ITERATIONS [SPIN]
SPIN 1 (default): onnxruntime's default, its threads spin while waiting; 0: they do not (as endoreg's).
"""

import json
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    model, batch, threads, iterations = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    spin = sys.argv[5] if len(sys.argv) > 5 else "1"
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).random((batch, 3, shape[2], shape[3]), dtype=np.float32)
    for _ in range(2):
        session.run(None, {name: x})
    started = time.perf_counter()
    for _ in range(iterations):
        session.run(None, {name: x})
    seconds = time.perf_counter() - started
    print(json.dumps({"images_per_second": batch * iterations / seconds, "seconds": seconds}))


if __name__ == "__main__":
    main()
