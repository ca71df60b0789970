#!/usr/bin/env python3
"""bench/cpu/run.py — clipneg's CPU backend against open_clip (PyTorch, fp32), side by side, one run.

Same machine, same thread count, same seeded random full-size ViT-B/32 weights made by open_clip,
same inputs (open_clip's own preprocessing and tokenizer feed both towers). Prints one table with
medians of >= 5 repeats and the clipneg/open_clip ratio, plus achieved GFLOP/s against this
machine's measured sgemm peak, and writes it as markdown (default bench/cpu/results.md).

  .venv/bin/python bench/cpu/run.py [--threads 2] [--repeats 5] [--out bench/cpu/results.md]

Parts: (1) image tower alone, (2) text tower alone on coco-mini captions x the seed's 7 variants
(the strings clipneg rendered, read back from its own output), (3) end to end on coco-mini
(decode + preprocess + encode + similarity): `clipneg eval` vs a plain open_clip + PIL loop,
(4) peak RSS of one rank as the caption set is replicated 1x/10x/100x (tiny model: the question is
whether memory grows with the caption set, not how big the model is), (5) the sgemm peak.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("CLIPNEG_BUILD", os.path.join(ROOT, "build"))  # run.py --build overrides
CLIPNEG = BENCH = None  # set in main() from --build
SHARED = os.environ.get("CLIPNEG_SHARED", os.path.join(ROOT, "..", "shared"))
COCO = os.environ.get("CLIPNEG_DATA", os.path.join(SHARED, "data", "coco-mini"))


def sh(cmd, env=None, capture=True):
    r = subprocess.run(cmd, env=env, capture_output=capture, text=True)
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def make_model(path, name="ViT-B-32"):
    import open_clip
    import torch
    from safetensors.torch import save_file
    torch.manual_seed(0)
    model = open_clip.create_model(name, pretrained=None, force_quick_gelu=True)
    model.eval()
    os.makedirs(path, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              os.path.join(path, "open_clip_model.safetensors"))
    cfg = open_clip.get_model_config(name)
    cfg["quick_gelu"] = True
    with open(os.path.join(path, "open_clip_config.json"), "w") as f:
        json.dump({"model_cfg": cfg, "preprocess_cfg": {}, "clipneg_random_weights": True}, f)
    return model


def vit_gflop_image(c):
    """Forward FLOPs (2 per multiply-add) of one image through a ViT tower (GEMMs + attention)."""
    W, L, P, R, D = c["width"], c["layers"], c["patch_size"], c["image_size"], c["embed_dim"]
    T = (R // P) ** 2 + 1
    per_layer = 2 * T * 12 * W * W + 2 * 2 * T * T * W
    return (2 * (R // P) ** 2 * 3 * P * P * W + L * per_layer + 2 * W * D) / 1e9


def text_gflop(c, lengths):
    """Text tower FLOPs for the given sequence lengths (clipneg computes each batch only up to its
    longest EOT, open_clip always to 77: we count useful FLOPs = the 77-token work, for both)."""
    W, L, D = c["width"], c["layers"], c["embed_dim"]
    T = 77
    return len(lengths) * (L * (2 * T * 12 * W * W + 2 * 2 * T * T * W) + 2 * W * D) / 1e9


T0 = time.perf_counter()


def log(msg):
    """Progress on stderr (the table goes to stdout): which part, seconds since start, load average."""
    print(f"[bench {time.perf_counter() - T0:6.1f}s load {os.getloadavg()[0]:.1f}] {msg}", file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--images", type=int, default=32)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "cpu", "results.md"))
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--build", default=BUILD, help="build folder holding clipneg and bench/cpu/bench_towers")
    args = ap.parse_args()
    global CLIPNEG, BENCH
    CLIPNEG = os.path.join(args.build, "clipneg")
    BENCH = os.path.join(args.build, "bench", "cpu", "bench_towers")
    T, R = args.threads, args.repeats

    import open_clip
    import torch
    from PIL import Image
    torch.set_num_threads(T)
    env = dict(os.environ, OMP_NUM_THREADS=str(T), OPENBLAS_NUM_THREADS=str(T),
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    for exe in (CLIPNEG, BENCH):
        if not os.path.exists(exe):
            sys.exit(f"{exe} missing: run scripts/build.sh first")

    work = tempfile.mkdtemp(prefix="clipneg-bench-")
    model_dir = os.path.join(work, "vitb32")
    model = make_model(model_dir)
    cfg = open_clip.get_model_config("ViT-B-32")
    vcfg = dict(cfg["vision_cfg"], embed_dim=cfg["embed_dim"])
    tcfg = dict(cfg["text_cfg"], embed_dim=cfg["embed_dim"])
    preprocess = open_clip.image_transform(224, is_train=False)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    rows = []

    # ---- sgemm peak (transformer shape: 32 images x 50 tokens, 768 -> 3072) --------------------
    peak = median([float(x) for x in sh([BENCH, "sgemm", "1600", "3072", "768", str(R)], env).split()])

    # ---- (1) image tower ---------------------------------------------------------------------
    files = sorted(f for f in os.listdir(os.path.join(COCO, "val2017")) if f.endswith(".jpg"))[: args.images]
    pixels = torch.stack([preprocess(Image.open(os.path.join(COCO, "val2017", f))) for f in files])
    pix_path = os.path.join(work, "pixels.f32")
    pixels.numpy().astype("<f4").tofile(pix_path)
    B = len(files)
    ours = [float(x) for x in sh([BENCH, model_dir, "image", pix_path, str(B), str(R)], env).split()]
    theirs = []
    with torch.no_grad():
        model.encode_image(pixels)
        for _ in range(R):
            t0 = time.perf_counter()
            model.encode_image(pixels)
            theirs.append(B / (time.perf_counter() - t0))
    g = vit_gflop_image(vcfg)
    rows.append(("image tower (images/s, batch %d)" % B, median(ours), median(theirs),
                 f"{median(ours) * g:.0f} GFLOP/s ({100 * median(ours) * g / peak:.0f}% of sgemm peak)"))

    # ---- (3) end to end: clipneg eval on coco-mini vs an open_clip + PIL loop -------------------
    job = os.path.join(ROOT, "jobs", "demo.ini")
    out_h5 = os.path.join(work, "e2e.h5")
    e2e_ours = []
    for _ in range(R):
        t0 = time.perf_counter()
        sh([CLIPNEG, "eval", job, "--output", out_h5, "--fresh", "--set", f"model.path={model_dir}",
            "--set", f"run.threads={T}"], env)
        e2e_ours.append(time.perf_counter() - t0)
    import h5py
    with h5py.File(out_h5, "r") as f:
        status = f["texts/status"][()]
        text_rows = np.flatnonzero(status == 0)  # clipneg encodes rendered texts only
        texts = list(f["texts/text"].asstr()[()][text_rows])
        image_files = list(f["images/file_name"].asstr()[()])
        cap_img = f["captions/image_index"][()]
        V = f["variants/name"].shape[0]
    text_img = torch.as_tensor(cap_img[text_rows // V].astype(np.int64))  # row t = caption * V + variant

    def openclip_e2e():
        """The same work as the eval job, the plain way: decode + preprocess (PIL, open_clip's
        transform), encode both towers, L2-normalise, paired cosine and the full image x text matrix."""
        with torch.no_grad():
            embs = []
            for i in range(0, len(image_files), 32):
                batch = torch.stack([preprocess(Image.open(os.path.join(COCO, "val2017", p)))
                                     for p in image_files[i:i + 32]])
                embs.append(model.encode_image(batch))
            img = torch.nn.functional.normalize(torch.cat(embs), dim=-1)
            temb = []
            for i in range(0, len(texts), 256):
                temb.append(model.encode_text(tokenizer(texts[i:i + 256])))
            txt = torch.nn.functional.normalize(torch.cat(temb), dim=-1)
            paired = (img[text_img] * txt).sum(-1)
            full = (img @ txt.T).half()
            return paired, full

    e2e_theirs = []
    for _ in range(R):
        t0 = time.perf_counter()
        openclip_e2e()
        e2e_theirs.append(time.perf_counter() - t0)
    n_items = len(image_files) + len(texts)
    rows.append((f"end to end coco-mini ({len(image_files)} images + {len(texts)} texts, items/s)",
                 n_items / median(e2e_ours), n_items / median(e2e_theirs), "decode+preprocess+encode+similarity"))

    # ---- (2) text tower on the rendered seed-7 strings ------------------------------------------
    ids = tokenizer(texts)
    ids_path = os.path.join(work, "ids.i32")
    ids.numpy().astype("<i4").tofile(ids_path)
    ours = [float(x) for x in sh([BENCH, model_dir, "text", ids_path, str(len(texts)), str(R)], env).split()]
    theirs = []
    with torch.no_grad():
        for _ in range(R):
            t0 = time.perf_counter()
            for i in range(0, len(texts), 256):
                model.encode_text(ids[i:i + 256])
            theirs.append(len(texts) / (time.perf_counter() - t0))
    lengths = (ids.argmax(-1) + 1).tolist()
    g = text_gflop(tcfg, lengths) / len(texts)
    rows.insert(1, (f"text tower ({len(texts)} texts, texts/s; mean length {np.mean(lengths):.1f} of 77)",
                    median(ours), median(theirs),
                    f"{median(ours) * g:.0f} 77-token-equivalent GFLOP/s"))

    # ---- (4) peak RSS as the caption set grows -----------------------------------------------
    rss = []
    if not args.skip_rss:
        caps = json.load(open(os.path.join(COCO, "annotations", "captions_val2017.json")))
        for k in (1, 10, 100):
            big = dict(caps)
            big["annotations"] = [dict(a, id=a["id"] * 1000 + r) for r in range(k) for a in caps["annotations"]]
            p = os.path.join(work, f"captions_x{k}.json")
            json.dump(big, open(p, "w"))
            # A fresh interpreter whose only child is clipneg, so ru_maxrss is that run's alone.
            probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
                     "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if r.returncode == 0 else -1)")
            t0 = time.perf_counter()
            kib = int(sh([sys.executable, "-c", probe, CLIPNEG, "eval", job, "--output",
                          os.path.join(work, f"rss{k}.h5"), "--fresh", "--set", f"dataset.captions={p}",
                          "--set", "output.embeddings=false"], env).split()[-1])
            if kib < 0:
                sys.exit(f"eval failed on the x{k} caption set")
            rss.append((k, len(big["annotations"]), kib / 1024, time.perf_counter() - t0))

    # ---- table ---------------------------------------------------------------------------------
    lines = [f"Machine: {os.cpu_count()} cores, {T} threads for both; torch {torch.__version__}, "
             f"open_clip {open_clip.version.__version__}; sgemm peak {peak:.0f} GFLOP/s "
             f"(1600x3072x768); medians of {R} runs; model: seeded random ViT-B/32 (open_clip).", "",
             "| measurement | clipneg | open_clip | ratio | note |", "|---|---:|---:|---:|---|"]
    for name, a, b, note in rows:
        lines.append(f"| {name} | {a:.1f} | {b:.1f} | {a / b:.2f}x | {note} |")
    if rss:
        lines += ["", "| captions (x replication) | texts | peak RSS of the rank (MiB) | eval time (s) |",
                  "|---|---:|---:|---:|"]
        for k, n, mb, t in rss:
            lines.append(f"| {n} (x{k}) | {n * 7} | {mb:.0f} | {t:.1f} |")
    text = "\n".join(lines)
    print(text)
    with open(args.out, "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
