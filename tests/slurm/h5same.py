#!/usr/bin/env python3
"""h5same.py A.h5 B.h5 [--groups g1,g2] — exit 0 when every dataset under the groups is bitwise
identical in both files (NaNs equal), else print the differences and exit 1. Provenance attributes
that legitimately differ between runs (times, ranks) are not compared; datasets are."""
import sys

import h5py
import numpy as np


def datasets(f, groups):
    out = {}
    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = obj
    for g in groups:
        if g in f:
            f[g].visititems(lambda n, o, g=g: visit(f"{g}/{n}", o))
    return out


def main():
    a, b = sys.argv[1], sys.argv[2]
    groups = ["images", "captions", "variants", "texts", "embeddings", "similarity", "progress"]
    if len(sys.argv) > 3 and sys.argv[3] == "--groups":
        groups = sys.argv[4].split(",")
    bad = 0
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        da, db = datasets(fa, groups), datasets(fb, groups)
        if set(da) != set(db):
            print("dataset sets differ:", sorted(set(da) ^ set(db)))
            bad += 1
        for name in sorted(set(da) & set(db)):
            x, y = da[name][()], db[name][()]
            if x.shape != y.shape or x.dtype != y.dtype:
                print(f"{name}: shape/dtype {x.shape} {x.dtype} vs {y.shape} {y.dtype}")
                bad += 1
                continue
            if x.dtype.kind == "f":
                same = np.array_equal(x.view(np.uint8), y.view(np.uint8)) or \
                    np.array_equal(x, y, equal_nan=True)
            else:
                same = np.array_equal(x, y)
            if not same:
                print(f"{name}: contents differ")
                bad += 1
        print(f"compared {len(da)} datasets: {'identical' if not bad else f'{bad} differ'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
