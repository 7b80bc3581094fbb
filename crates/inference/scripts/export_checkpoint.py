#!/usr/bin/env python3
"""Exports a trained EndoregDB multilabel classifier (a PyTorch Lightning checkpoint of
`MultiLabelClassificationNet`, RegNetX-800MF or EfficientNet-B4 backbone) to ONNX, with endoreg's sidecar.

    pip install torch torchvision onnx onnxscript
    python3 export_checkpoint.py colo_segmentation_RegNetX800MF_6.ckpt OUT_DIR \\
        --name colonoscopy_multilabel_classifier --version 6 \\
        --label-set multilabel_classification_colonoscopy

The checkpoint holds the labels (`hyper_parameters.labels`) and the weights (`state_dict`, keys under
`model.`). The exported graph takes `input` (N x 3 x 716 x 716, normalised) and returns `logits` (N x
labels); the sidecar records the labels in output order, the input size, EndoregDB's crop/pad/resize and
mean/std, and a sigmoid activation (docs/inference.md describes every key; review the thresholds). Check
the result with `ENDOREG_MODEL__PATH=OUT_DIR/<name>.onnx endoreg-inference check`, then on a video with
`endoreg-inference predict-video VIDEO --layout-file LAYOUT.toml`.
"""

import argparse
import json
import os

# EndoregDB's defaults for this model (ModelMeta: size 716, mean and std of its training data).
MEAN = [0.45211223, 0.27139644, 0.19264949]
STD = [0.31418097, 0.21088019, 0.16059452]
SIZE = 716


def plain(value):
    """A hyper-parameter as its plain value: newer EndoregDB versions save enums (e.g. the backbone)."""
    return getattr(value, "value", value)


def load_checkpoint(torch, path):
    """torch.load, tolerating classes of packages the export does not need.

    Newer EndoregDB checkpoints pickle their hyper-parameters with enums from lx_dtypes; an enum pickles as
    its class called with its value, so reading a missing class as `str` yields that value.
    """
    import pickle
    import types

    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except ModuleNotFoundError as e:
        missing = e.name

    class Tolerant(pickle.Unpickler):
        def find_class(self, module, name):
            try:
                return super().find_class(module, name)
            except ModuleNotFoundError:
                return type(name, (str,), {"__module__": module})

    tolerant = types.ModuleType("tolerant_pickle")
    tolerant.Unpickler = Tolerant
    tolerant.load = pickle.load
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=tolerant)
    except Exception as e:  # noqa: BLE001 - any failure here means the placeholder was not enough
        raise SystemExit(f"{path} needs the Python module `{missing}` to be read (install it from EndoregDB's "
                         f"environment): {e}") from None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("out_dir")
    p.add_argument("--name", default="colonoscopy_multilabel_classifier", help="the ai_model name in the registry")
    p.add_argument("--version", required=True)
    p.add_argument("--label-set", default="multilabel_classification_colonoscopy")
    p.add_argument("--backbone", choices=["RegNetX800MF", "EfficientNetB4"], default=None,
                   help="default: from the checkpoint's hyper-parameters")
    p.add_argument("--opset", type=int, default=18,
                   help="18 is the lowest the torch.export-based exporter writes; ONNX Runtime 1.22 reads up to 22")
    args = p.parse_args()

    import torch
    from torchvision import models

    ckpt = load_checkpoint(torch, args.checkpoint)
    hp = ckpt.get("hyper_parameters", {})
    labels = [str(plain(label)) for label in hp.get("labels") or []]
    if not labels:
        raise SystemExit("the checkpoint names no labels (hyper_parameters.labels)")
    backbone = args.backbone or str(plain(hp.get("model_type") or "RegNetX800MF"))
    if backbone == "RegNetX800MF":
        net = models.regnet_x_800mf(weights=None)
        net.fc = torch.nn.Linear(net.fc.in_features, len(labels))
    elif backbone == "EfficientNetB4":
        net = models.efficientnet_b4(weights=None)
        net.classifier[1] = torch.nn.Linear(net.classifier[1].in_features, len(labels))
    else:
        raise SystemExit(f"the checkpoint's backbone {backbone!r} is neither RegNetX800MF nor EfficientNetB4")
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    if not state:
        raise SystemExit("the checkpoint's state_dict has no weights under `model.`")
    net.load_state_dict(state, strict=True)  # a missing or unexpected weight is an error, not a silent default
    net.eval()

    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, f"{args.name}.onnx")
    # A batch of 2: torch.export specialises a dimension traced at size 1, so the batch axis would not stay dynamic.
    dummy = torch.zeros(2, 3, SIZE, SIZE)
    # The torch.export-based exporter, spelled out (the default since torch 2.9; the TorchScript one is deprecated).
    # external_data=False: one self-contained file, as endoreg-inference loads the model from its bytes (an
    # `.onnx.data` beside it is not found) and the registry versions the weights by that one file's SHA-256.
    torch.onnx.export(net, (dummy,), onnx_path, input_names=["input"], output_names=["logits"],
                      dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=args.opset,
                      dynamo=True, external_data=False)
    # JSON strings are valid TOML basic strings: a label with a quote or backslash stays what it is.
    quoted = ", ".join(json.dumps(label) for label in labels)
    with open(os.path.join(args.out_dir, f"{args.name}.toml"), "w") as f:
        f.write(f"""# Exported from {os.path.basename(args.checkpoint)} by export_checkpoint.py
name = {json.dumps(args.name)}
version = {json.dumps(args.version)}
label_set = {json.dumps(args.label_set)}
labels = [{quoted}]

[input]
width = {SIZE}
height = {SIZE}

[preprocessing]
crop = "endoscope_image"
pad_to_square = true
resize = "lanczos"
mean = {MEAN}
std = {STD}

[output]
activation = "sigmoid"

[postprocessing]
threshold = 0.5
smoothing_window_s = 1.0
min_segment_s = 0.5
""")
    print(f"wrote {onnx_path} and its sidecar ({len(labels)} labels, {backbone})")


if __name__ == "__main__":
    main()
