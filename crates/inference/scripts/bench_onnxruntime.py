#!/usr/bin/env python3
"""The baseline of endoreg-inference's benchmark: Python onnxruntime running a model on the CPU with the
same batch size and thread count (or on CUDA, with onnxruntime-gpu).

Usage: bench_onnxruntime.py MODEL.onnx BATCH THREADS SPIN INPUT.f32 [cpu|cuda]

SPIN 1: onnxruntime's default, its threads spin while waiting; 0: they do not. INPUT.f32 holds the batch
as raw little-endian float32 (the same bytes the Rust side runs).
The model is loaded and run twice to warm up, then the script serves the benchmark on stdin: each line
`N` runs N batches and answers one JSON line {"images_per_second": ..., "seconds": ...}; end of input ends
it. One long-lived process lets the benchmark interleave short blocks of ours and theirs, so that drift in
the machine's speed falls on both sides alike.
"""

import json
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    model, batch, threads, spin = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    provider = sys.argv[6] if len(sys.argv) > 6 else "cpu"
    providers = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider"]}[provider]
    session = ort.InferenceSession(model, options, providers=providers)
    if session.get_providers()[0] != providers[0]:
        raise SystemExit(f"onnxruntime cannot run {providers[0]} here (it has {session.get_providers()})")
    shape = session.get_inputs()[0].shape
    name = session.get_inputs()[0].name
    x = np.fromfile(sys.argv[5], dtype="<f4").reshape(batch, 3, shape[2], shape[3])
    for _ in range(2):
        session.run(None, {name: x})
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        iterations = int(line)
        started = time.perf_counter()
        for _ in range(iterations):
            session.run(None, {name: x})
        seconds = time.perf_counter() - started
        print(json.dumps({"images_per_second": batch * iterations / seconds, "seconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
