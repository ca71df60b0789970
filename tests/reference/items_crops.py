"""Golden crops for tests/test_items.c: region crops cut and preprocessed by PIL + open_clip.

For a few COCO boxes of coco-mini (read from instances_val2017.json with Python's json) and two
expansion factors, the crop window is computed here with Python's math (the formula of
docs/items.md), the crop is cut with PIL's Image.crop and preprocessed with open_clip's own
eval transform at R = 32 (Resize(32, bicubic) on the shorter side, CenterCrop(32), ToTensor,
Normalize with CLIP's mean/std). Output (small on purpose: 6 crops x 3 x 32 x 32 float32):
  tests/fixtures/items/crops_r32.txt  one line per crop: file x y w h expand x0 y0 x1 y1
  tests/fixtures/items/crops_r32.f32  the tensors, float32 little-endian, in line order

Run: .venv/bin/python tests/reference/items_crops.py  (CLIPNEG_SHARED: the shared data folder)
"""
import json
import math
import os

import numpy as np
from open_clip.transform import image_transform
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("CLIPNEG_SHARED") or os.path.join(REPO, "..", "shared")
COCO = os.path.join(SHARED, "data", "coco-mini")
OUT = os.path.join(REPO, "tests", "fixtures", "items")
R = 32
CASES = [("000000482585.jpg", 173302, 1.0), ("000000482585.jpg", 173292, 1.5), ("000000214753.jpg", 56944, 1.0),
         ("000000214753.jpg", 273821, 2.0), ("000000128598.jpg", 1906607, 1.3), ("000000359219.jpg", 1071112, 1.0)]


def window(box, expand, W, H):
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    hw, hh = w * expand / 2, h * expand / 2
    x0, y0 = max(math.floor(cx - hw), 0), max(math.floor(cy - hh), 0)
    x1, y1 = min(math.ceil(cx + hw), W), min(math.ceil(cy + hh), H)
    return int(x0), int(y0), int(x1), int(y1)


def main():
    inst = json.load(open(os.path.join(COCO, "annotations", "instances_val2017.json")))
    anns = {a["id"]: a for a in inst["annotations"]}
    tf = image_transform(R, is_train=False)
    os.makedirs(OUT, exist_ok=True)
    lines, tensors = [], []
    for fname, ann, expand in CASES:
        img = Image.open(os.path.join(COCO, "val2017", fname)).convert("RGB")
        box = anns[ann]["bbox"]
        win = window(box, expand, img.width, img.height)
        t = tf(img.crop(win)).numpy().astype(np.float32)
        assert t.shape == (3, R, R)
        tensors.append(t)
        lines.append(f"{fname} {box[0]!r} {box[1]!r} {box[2]!r} {box[3]!r} {expand!r} {win[0]} {win[1]} {win[2]} {win[3]}")
    with open(os.path.join(OUT, "crops_r32.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    np.stack(tensors).astype("<f4").tofile(os.path.join(OUT, "crops_r32.f32"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
