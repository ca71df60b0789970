#!/usr/bin/env python3
"""make_synthetic_h5.py — write a small clipneg-eval HDF5 file with h5py, following docs/hdf5-schema.md.

It stands in for `clipneg eval` output in the reduce / export-tsne / analysis tests when no real run is
available, and it exercises the edge cases those tools must handle:
  * failed images (status 3, NaN embedding rows, NaN paired/full similarities),
  * texts that were not rendered (status 1, "" text, NaN rows),
  * exact ties between a negative variant and the base (identical text embeddings),
  * two images with identical embeddings (ties in text->image retrieval),
  * a negative variant that is usually *more* similar than the base (many flips),
  * a variant of polarity "other".
Embeddings are L2-normalised float32; paired similarities are their float32 dot products (numpy).
Nothing here comes from clipneg itself.

usage: make_synthetic_h5.py OUT.h5 [--images N] [--dim D] [--seed S] [--full f16|f32|none]
                                  [--no-embeddings] [--random-weights 0|1]

real_demo_file() gives the tests the other input they run on: the output of the real pipeline,
`clipneg eval jobs/demo.ini` (the committed tiny random-weights model on the shared coco-mini set),
made once per build folder and reused.
"""
import argparse
import datetime
import fcntl
import hashlib
import os
import subprocess

import h5py
import numpy as np

VARIANTS = [  # name, template, polarity (0 positive, 1 negative, 2 other)
    ("original", "{caption}", 0),
    ("photo_of", "A photo of {caption_lc}", 0),
    ("this_is_not", "This is not {caption_lc}", 1),
    ("swap_not", "This is not {swap_lc}", 1),
    ("no_subject", "There is no {subject} here", 1),
    ("other_obj", "{other}", 2),
]
# how strongly each variant's text embedding points at its image (higher = more similar)
ALPHA = [1.0, 0.9, 0.95, 0.6, 1.1, 0.2]
BASE = "original"


def unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def vlen_str(group, name, values):
    dt = h5py.string_dtype(encoding="utf-8")
    group.create_dataset(name, data=np.array(values, dtype=object), dtype=dt)


def make(path, n_img=40, dim=64, seed=0, full="f16", embeddings=True, random_weights=1):
    rng = np.random.default_rng(seed)
    V = len(VARIANTS)
    n_caps = rng.integers(4, 7, size=n_img)          # 4..6 captions per image, like COCO's 5 (+ extras)
    first = np.concatenate([[0], np.cumsum(n_caps)[:-1]]).astype(np.int32)
    n_cap = int(n_caps.sum())
    image_index = np.repeat(np.arange(n_img, dtype=np.int32), n_caps)

    # images: a few shared directions (clusters) + noise; image 1 duplicates image 0 (retrieval ties)
    centers = rng.normal(size=(5, dim))
    img = unit(centers[rng.integers(0, 5, size=n_img)] * 0.8 + rng.normal(size=(n_img, dim)))
    img[1] = img[0]
    img_status = np.ones(n_img, dtype=np.int8)
    img_error = [""] * n_img
    for i in (n_img - 3,):                            # one failed image (decode error)
        img_status[i] = 3
        img_error[i] = "stb_image: corrupt JPEG data"
        img[i] = np.nan

    # texts: caption-major rows t = c*V + v
    cap_noise = rng.normal(size=(n_cap, dim))
    txt = np.empty((n_cap * V, dim), dtype=np.float32)
    txt_status = np.zeros(n_cap * V, dtype=np.int8)
    captions = [f"a thing number {c} of image {image_index[c]} on a table." for c in range(n_cap)]
    texts = []
    neg_dir = unit(rng.normal(size=dim))               # a shared "negation" direction
    for c in range(n_cap):
        i = image_index[c]
        anchor = img[i] if img_status[i] == 1 else unit(rng.normal(size=dim))
        for v, (name, template, pol) in enumerate(VARIANTS):
            t = c * V + v
            e = ALPHA[v] * anchor + 0.9 * cap_noise[c] + 0.35 * rng.normal(size=dim)
            if pol == 1:
                e = e + 0.5 * neg_dir
            txt[t] = unit(e)
            cap = captions[c]
            lc = cap[0].lower() + cap[1:].rstrip(".")
            texts.append(template.replace("{caption}", cap).replace("{caption_lc}", lc)
                         .replace("{swap_lc}", lc.replace("thing", "dog")).replace("{subject}", "thing")
                         .replace("{other}", "a dog"))
    # exact ties: for every 7th caption the first negative is rendered identical to the base
    for c in range(0, n_cap, 7):
        txt[c * V + 2] = txt[c * V + 0]
    # not rendered: "swap_not" found no subject for every 5th caption
    for c in range(0, n_cap, 5):
        t = c * V + 3
        txt_status[t] = 1
        texts[t] = ""
        txt[t] = np.nan

    paired = np.einsum("cd,cvd->cv", img[image_index].astype(np.float32),
                       txt.reshape(n_cap, V, dim)).astype(np.float32)
    full_m = (img @ txt.T).astype(np.float32)          # NaN rows/cols propagate

    with h5py.File(path, "w") as f:
        job_text = ("[model]\npath = models/synthetic\n[dataset]\nkind = coco\n"
                    f"[variants]\nfile = variants.ini\nbase_variant = {BASE}\n[output]\npath = {path}\n")
        variants_text = "".join(f"[{n}]\ntemplate = {t}\npolarity = {['positive','negative','other'][p]}\n\n"
                                for n, t, p in VARIANTS)
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        attrs = {
            "format": "clipneg-eval", "format_version": 1, "clipneg_version": "synthetic",
            "git_commit": "synthetic", "job_text": job_text,
            "job_sha256": hashlib.sha256((job_text + variants_text).encode()).hexdigest(),
            "variants_text": variants_text, "model_path": "models/synthetic", "model_arch": "Synthetic-D%d" % dim,
            "model_sha256": "0" * 64, "random_weights": int(random_weights), "backend": "cpu",
            "precision": "fp32", "ranks": 1, "start_time": now, "end_time": now,
        }
        for k, v in attrs.items():
            f.attrs[k] = v
        g = f.create_group("images")
        g["id"] = (np.arange(n_img, dtype=np.int64) * 1000 + 255965 - 1000 * (n_img // 2))
        vlen_str(g, "file_name", [f"{i:012d}.jpg" for i in range(n_img)])
        g["status"] = img_status
        vlen_str(g, "error", img_error)
        g["first_caption"] = first
        g["n_captions"] = n_caps.astype(np.int32)
        g = f.create_group("captions")
        g["id"] = np.arange(n_cap, dtype=np.int64) + 700000
        g["image_index"] = image_index
        vlen_str(g, "text", captions)
        g = f.create_group("variants")
        vlen_str(g, "name", [n for n, _, _ in VARIANTS])
        vlen_str(g, "template", [t for _, t, _ in VARIANTS])
        g["polarity"] = np.array([p for _, _, p in VARIANTS], dtype=np.int8)
        g["polarity"].attrs["labels"] = "positive,negative,other"
        g = f.create_group("texts")
        vlen_str(g, "text", texts)
        g["status"] = txt_status
        g["n_tokens"] = np.array([min(77, len(s.split()) + 2) if s else 0 for s in texts], dtype=np.int32)
        g["truncated"] = np.zeros(n_cap * V, dtype=np.int8)
        if embeddings:
            g = f.create_group("embeddings")
            g["image"] = img
            g["text"] = txt
        g = f.create_group("similarity")
        g["paired"] = paired
        if full != "none":
            g["full"] = full_m.astype(np.float16 if full == "f16" else np.float32)
        g = f.create_group("progress")
        g.attrs["text_shard"] = 512
        g.attrs["image_shard"] = 64
        g["text_shards"] = np.ones((n_cap * V + 511) // 512, dtype=np.uint8)
        g["image_shards"] = np.ones((n_img + 63) // 64, dtype=np.uint8)
        g["sim_shards"] = np.ones((n_img + 63) // 64, dtype=np.uint8)
        f.attrs["complete"] = 1                        # written last, as the evaluator does


def real_demo_file():
    """(path, None) of a real `clipneg eval jobs/demo.ini` output, or (None, reason) when none can be made.

    $CLIPNEG_DEMO_H5 names an existing file; otherwise the file is made with $CLIPNEG_BIN into
    $CLIPNEG_BUILD_DIR/test-data/demo-eval.h5 (under a lock, so parallel tests make it once) and remade
    when the binary is newer. Callers must copy it before writing into it."""
    given = os.environ.get("CLIPNEG_DEMO_H5")
    if given:
        return (given, None) if os.path.exists(given) else (None, f"CLIPNEG_DEMO_H5={given} does not exist")
    binary, build = os.environ.get("CLIPNEG_BIN"), os.environ.get("CLIPNEG_BUILD_DIR")
    src, shared = os.environ.get("CLIPNEG_SOURCE_DIR"), os.environ.get("CLIPNEG_SHARED")
    if not (binary and build and src and shared) or not os.path.exists(binary):
        return None, "CLIPNEG_BIN/BUILD_DIR/SOURCE_DIR/SHARED not set (run through ctest)"
    job = os.path.join(src, "jobs", "demo.ini")
    data = os.path.join(shared, "data", "coco-mini")
    bpe = os.path.join(src, "models", "bpe_simple_vocab_16e6.txt.gz")
    if not os.path.exists(bpe):
        bpe = os.path.join(shared, "data", "clip-bpe", "bpe_simple_vocab_16e6.txt.gz")
    for need in (job, data, bpe):
        if not os.path.exists(need):
            return None, f"{need} is missing"
    out_dir = os.path.join(build, "test-data")
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, "demo-eval.h5")
    with open(out + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(binary):
            return out, None
        tmp = out + ".tmp"
        if os.path.exists(tmp):
            os.remove(tmp)
        env = dict(os.environ, CLIPNEG_DATA=data, CLIPNEG_BPE=bpe, CLIPNEG_OUT=out_dir, OMP_NUM_THREADS="2")
        try:
            p = subprocess.run([binary, "eval", job, "--output", tmp], env=env, capture_output=True, text=True,
                               timeout=900)
        except subprocess.TimeoutExpired:
            return None, "clipneg eval jobs/demo.ini timed out"
        if p.returncode != 0 or not os.path.exists(tmp):
            return None, f"clipneg eval jobs/demo.ini failed ({p.returncode}): {p.stderr[-800:]}"
        os.replace(tmp, out)
        return out, None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--full", choices=["f16", "f32", "none"], default="f16")
    ap.add_argument("--no-embeddings", action="store_true")
    ap.add_argument("--random-weights", type=int, default=1)
    a = ap.parse_args()
    make(a.out, a.images, a.dim, a.seed, a.full, not a.no_embeddings, a.random_weights)


if __name__ == "__main__":
    main()
