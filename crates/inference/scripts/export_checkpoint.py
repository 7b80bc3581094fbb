#!/usr/bin/env python3
"""Exports a trained EndoregDB multilabel classifier (a PyTorch Lightning checkpoint of
`MultiLabelClassificationNet`, RegNetX-800MF or EfficientNet-B4 backbone) to ONNX, with endoreg's sidecar.

    pip install torch torchvision onnx
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
import os

# EndoregDB's defaults for this model (ModelMeta: size 716, mean and std of its training data).
MEAN = [0.45211223, 0.27139644, 0.19264949]
STD = [0.31418097, 0.21088019, 0.16059452]
SIZE = 716


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("out_dir")
    p.add_argument("--name", default="colonoscopy_multilabel_classifier", help="the ai_model name in the registry")
    p.add_argument("--version", required=True)
    p.add_argument("--label-set", default="multilabel_classification_colonoscopy")
    p.add_argument("--backbone", choices=["RegNetX800MF", "EfficientNetB4"], default=None,
                   help="default: from the checkpoint's hyper-parameters")
    p.add_argument("--opset", type=int, default=17, help="17 is read by ONNX Runtime 1.22 and later")
    args = p.parse_args()

    import torch
    from torchvision import models

    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    hp = ckpt.get("hyper_parameters", {})
    labels = list(hp.get("labels") or [])
    if not labels:
        raise SystemExit("the checkpoint names no labels (hyper_parameters.labels)")
    backbone = args.backbone or hp.get("model_type") or "RegNetX800MF"
    if backbone == "RegNetX800MF":
        net = models.regnet_x_800mf(weights=None)
        net.fc = torch.nn.Linear(net.fc.in_features, len(labels))
    else:
        net = models.efficientnet_b4(weights=None)
        net.classifier[1] = torch.nn.Linear(net.classifier[1].in_features, len(labels))
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    if not state:
        raise SystemExit("the checkpoint's state_dict has no weights under `model.`")
    net.load_state_dict(state, strict=True)  # a missing or unexpected weight is an error, not a silent default
    net.eval()

    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, f"{args.name}.onnx")
    dummy = torch.zeros(1, 3, SIZE, SIZE)
    torch.onnx.export(net, dummy, onnx_path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=args.opset)
    quoted = ", ".join(f'"{l}"' for l in labels)
    with open(os.path.join(args.out_dir, f"{args.name}.toml"), "w") as f:
        f.write(f"""# Exported from {os.path.basename(args.checkpoint)} by export_checkpoint.py
name = "{args.name}"
version = "{args.version}"
label_set = "{args.label_set}"
labels = [{quoted}]

[input]
width = {SIZE}
height = {SIZE}

[preprocessing]
crop = "endoscope_image"
pad_to_square = true
resize = "bilinear"
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
