#!/usr/bin/env python3
"""Golden float32 -> float16 conversions from numpy for tests/test_half.c.

Writes tests/fixtures/f16_vectors.txt: one line per value, "<float32 bits hex> <float16 bits hex>",
numpy's astype(np.float16) (IEEE round-to-nearest-even). Values: random normals at many scales,
exact ties between neighbouring halves (normal and subnormal), the overflow edge, +-0, +-inf, NaN.
Run: python3 tests/reference/make_f16_vectors.py
"""
import os
import numpy as np

rng = np.random.default_rng(7)
vals = []
for scale in [1e-8, 1e-6, 6e-5, 1e-3, 0.1, 1.0, 100.0, 6e4, 7e4]:
    vals.append((rng.standard_normal(60) * scale).astype(np.float32))
# exact midpoints between consecutive halves: ties go to the even neighbour
h = rng.integers(0, 0x7bff, 200).astype(np.uint16)
lo = h.view(np.float16).astype(np.float32)
hi = (h + 1).view(np.float16).astype(np.float32)
vals.append(((lo.astype(np.float64) + hi.astype(np.float64)) / 2).astype(np.float32))
sub = np.arange(0, 0x400, 37, dtype=np.uint16)
vals.append(((sub.view(np.float16).astype(np.float64) + (sub + 1).view(np.float16).astype(np.float64)) / 2).astype(np.float32))
vals.append(np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 65504.0, 65519.99, 65520.0, -65520.0,
                      2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0001, 2.0 ** -26, 6.1035156e-05, 1e-30],
                     dtype=np.float32))
x = np.concatenate(vals).astype(np.float32)
with np.errstate(over="ignore"):
    y = x.astype(np.float16)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "f16_vectors.txt")
with open(out, "w") as f:
    for a, b in zip(x.view(np.uint32), y.view(np.uint16)):
        f.write(f"{a:08x} {b:04x}\n")
print("wrote", os.path.normpath(out), len(x), "values")
