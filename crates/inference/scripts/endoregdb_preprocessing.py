#!/usr/bin/env python3
"""EndoregDB's frame preprocessing, as its classifier saw frames in training and inference, for comparing
endoreg-inference's against it: crop the endoscope region, pad the crop with black to a centred square
(the odd pixel at the bottom/right), resize to SIZE x SIZE with PIL's Lanczos, scale to 0..1, then
(v - mean) / std per RGB channel. Writes the planar CHW float32 tensor (little-endian) to OUT.

Usage: endoregdb_preprocessing.py IMAGE X Y W H SIZE MEAN_R,G,B STD_R,G,B OUT.f32
"""

import sys

import numpy as np
from PIL import Image, ImageOps


def main():
    image, x, y, w, h, size = sys.argv[1], *map(int, sys.argv[2:7])
    mean = np.array([float(v) for v in sys.argv[7].split(",")], dtype=np.float32)
    std = np.array([float(v) for v in sys.argv[8].split(",")], dtype=np.float32)
    picture = Image.open(image).convert("RGB").crop((x, y, x + w, y + h))
    excess = abs(w - h)
    before, after = excess // 2, excess - excess // 2
    border = (0, before, 0, after) if w > h else (before, 0, after, 0)  # left, top, right, bottom
    square = ImageOps.expand(picture, border, fill=(0, 0, 0))
    resized = square.resize((size, size), resample=Image.Resampling.LANCZOS)
    hwc = np.asarray(resized, dtype=np.float32) / 255.0
    chw = ((hwc - mean) / std).transpose(2, 0, 1)
    np.ascontiguousarray(chw, dtype="<f4").tofile(sys.argv[9])


if __name__ == "__main__":
    main()
