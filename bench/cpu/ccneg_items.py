#!/usr/bin/env python3
"""bench/cpu/ccneg_items.py — a CC-Neg-shaped run on the CPU: items/s and each rank's peak memory.

Writes into --out (default /tmp/ccneg-bench; nothing goes into the repository):
  ccneg_preprocessed.pt   torch.save in CC-Neg's published layout (docs/benchmarks.md): --entries
                          entries, {"image_paths": ["/workspace/datasets/cc3m/cc3m_subset_images_
                          extracted_final/<i>.jpg"], "annotations": [{"json": {img2dataset-style
                          fields, "caption"}, "sop_data": {..., "negative-prompt"}}]}
  images/cc3m_subset_images_extracted_final/<i>.jpg   one symlink per entry to one of --jpegs small
                          synthetic JPEGs (every entry its own image path, as in CC-Neg)
  ccneg.ini               the job: format = ccneg, image_prefix = /workspace/datasets/cc3m/, the tiny
                          test model, cpu backend, embeddings off
then runs `mpirun -np --ranks clipneg eval` under /usr/bin/time -v (per rank: `time` wraps each rank)
and prints items/s (last_n items / wall seconds of the whole eval, process start and loading
included) and each rank's maximum resident set size.

    .venv/bin/python bench/cpu/ccneg_items.py                          # 40,000 entries = 40,000 items
    .venv/bin/python bench/cpu/ccneg_items.py --entries 228000 --load-only   # loader peak memory only

--load-only sets [dataset] max_images = 1: the whole file is read (the loader's peak) but only the
first image's items are evaluated.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("CLIPNEG_SHARED") or os.path.normpath(os.path.join(REPO, "..", "shared"))
BPE = os.path.join(SHARED, "data", "clip-bpe", "bpe_simple_vocab_16e6.txt.gz")
TINY_MODEL = os.path.join(REPO, "tests", "fixtures", "models", "vit-tiny-openclip")
PREFIX = "/workspace/datasets/cc3m/"
SUB = "cc3m_subset_images_extracted_final"
SUBJECTS = ["dog", "cat", "car", "man", "woman", "tree", "house", "boat", "bird", "horse"]


def write_pt(path, n):
    import torch
    paths, anns = [], []
    for i in range(n):
        s, o = SUBJECTS[i % 10], SUBJECTS[(i // 10) % 10]
        cap = f"a {s} next to a {o} in picture number {i}"
        paths.append(f"{PREFIX}{SUB}/{i:09d}.jpg")
        anns.append({"json": {"caption": cap, "url": f"http://example.com/images/{i}.jpg", "key": f"{i:09d}",
                              "status": "success", "error_message": None, "width": 256, "height": 256,
                              "original_width": 500 + i % 300, "original_height": 375, "exif": "{}",
                              "sha256": f"{i:064x}"},
                     "sop_data": {"subject": s, "object": o, "predicate": "next to",
                                  "negative-prompt": f"a {s}, but no {o}, in picture number {i}", "num_ops": 1}})
    torch.save({"image_paths": paths, "annotations": anns}, path)


def write_images(d, n, n_jpegs):
    from PIL import Image
    src = os.path.join(d, "jpegs")
    os.makedirs(src, exist_ok=True)
    for k in range(n_jpegs):  # small synthetic JPEGs: decoding is not what this measures
        Image.new("RGB", (64, 48), (40 * k % 256, 90, 200 - 20 * k % 200)).save(os.path.join(src, f"{k}.jpg"), quality=90)
    sub = os.path.join(d, "images", SUB)
    shutil.rmtree(os.path.join(d, "images"), ignore_errors=True)
    os.makedirs(sub)
    for i in range(n):
        os.symlink(os.path.join(src, f"{i % n_jpegs}.jpg"), os.path.join(sub, f"{i:09d}.jpg"))


def write_job(d, last_n, threads, load_only):
    job = os.path.join(d, "ccneg.ini")
    with open(job, "w") as f:
        f.write(f"""[model]
path = {TINY_MODEL}
tokenizer = {BPE}
[dataset]
format = ccneg
path = {os.path.join(d, "ccneg_preprocessed.pt")}
images = {os.path.join(d, "images")}
image_prefix = {PREFIX}
last_n = {last_n}
{"max_images = 1" if load_only else ""}
[variants]
file = {os.path.join(REPO, "jobs", "variants", "caption-only.ini")}
[output]
path = {os.path.join(d, "ccneg.h5")}
embeddings = false
[run]
backend = cpu
threads = {threads}
""")
    return job


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/ccneg-bench")
    ap.add_argument("--entries", type=int, default=40000)
    ap.add_argument("--last-n", type=int, default=40000)
    ap.add_argument("--jpegs", type=int, default=8)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="threads per rank")
    ap.add_argument("--load-only", action="store_true")
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    t = time.time()
    write_pt(os.path.join(a.out, "ccneg_preprocessed.pt"), a.entries)
    write_images(a.out, a.entries, a.jpegs)
    print(f"wrote {a.entries} entries ({os.path.getsize(os.path.join(a.out, 'ccneg_preprocessed.pt')) / 2**20:.1f} MiB"
          f" .pt) and images in {time.time() - t:.0f} s", file=sys.stderr)
    job = write_job(a.out, a.last_n, a.threads, a.load_only)
    out = os.path.join(a.out, "ccneg.h5")
    if os.path.exists(out):
        os.remove(out)
    mpirun = shutil.which("mpirun")
    cmd = [mpirun, "--oversubscribe", "-np", str(a.ranks), "/usr/bin/time", "-v", os.path.join(a.build, "clipneg"),
           "eval", job, "--fresh"]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t
    if p.returncode:
        sys.exit(f"eval failed ({p.returncode}):\n{p.stderr[-3000:]}")
    rss = [int(x) / 1024 for x in re.findall(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)]
    items = 1 if a.load_only else min(a.entries, a.last_n or a.entries)
    print(f"entries {a.entries}, items {items}, ranks {a.ranks} x {a.threads} thread(s): wall {wall:.1f} s, "
          f"{items / wall:.1f} items/s; peak RSS per rank (MiB): {', '.join(f'{r:.0f}' for r in rss)}")


if __name__ == "__main__":
    main()
