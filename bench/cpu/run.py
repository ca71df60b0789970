#!/usr/bin/env python3
"""bench/cpu/run.py — clipneg's CPU backend against open_clip (PyTorch, fp32), side by side, one run.

Same machine, same thread count, same seeded random full-size ViT-B/32 weights made by open_clip,
same inputs (open_clip's own preprocessing and tokenizer feed both towers). Prints one table with
medians of >= 5 repeats and the clipneg/open_clip ratio, plus achieved GFLOP/s against this
machine's measured sgemm peak, and writes it as markdown (default bench/cpu/results.md).

  bash scripts/build.sh && .venv/bin/python bench/cpu/run.py [--threads 2] [--repeats 5]

Parts: (1) image tower alone, (2) text tower alone on the rendered coco-mini captions x the seed's 7
variants (the strings clipneg rendered, read back from its own output; an evenly spaced subset of
--text-count of them, because open_clip needs ~10 minutes per pass over all 2423 on 2 cores),
(3) end to end on coco-mini (decode + preprocess + encode + similarity): `clipneg eval jobs/demo.ini`
vs a plain open_clip + PIL loop doing the same work (--e2e-images N restricts both to the first N
images and their captions), (4) peak RSS of one rank as the caption set is replicated 1x/10x/100x
(tiny model: the question is whether memory grows with the caption set, not how big the model is),
(5) the sgemm peak and what clipneg's thread-count-independent GEMM tile grid costs against plain
multithreaded OpenBLAS (bench_towers_plain: the same towers over one OpenBLAS call per GEMM).
Progress goes to stderr with the load average; the table to stdout and --out.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("CLIPNEG_SHARED", os.path.join(ROOT, "..", "shared"))
COCO = os.environ.get("CLIPNEG_DATA", os.path.join(SHARED, "data", "coco-mini"))
T0 = time.perf_counter()


def log(msg):
    """Progress on stderr: seconds since start, 1-minute load average, message."""
    print(f"[bench {time.perf_counter() - T0:6.1f}s load {os.getloadavg()[0]:.1f}] {msg}", file=sys.stderr, flush=True)


def sh(cmd, env=None):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def floats(out):
    return [float(x) for x in out.split()]


def median(xs):
    return statistics.median(xs)


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


def text_gflop_77(c):
    """Text tower FLOPs of one text at the full 77 positions (what open_clip computes). clipneg
    computes each length-sorted chunk only up to its longest EOT, so its GFLOP/s is quoted as
    '77-token-equivalent': useful work per second, not arithmetic executed."""
    W, L, D, T = c["width"], c["layers"], c["embed_dim"], 77
    return (L * (2 * T * 12 * W * W + 2 * 2 * T * T * W) + 2 * W * D) / 1e9


def coco_subset(path_out, n_images, replicate=1):
    """captions_val2017.json restricted to the first n_images images (0: all), each annotation
    repeated `replicate` times under new ids. Returns the number of annotations."""
    caps = json.load(open(os.path.join(COCO, "annotations", "captions_val2017.json")))
    sub = dict(caps)
    if n_images > 0:
        sub["images"] = caps["images"][:n_images]
    keep = {im["id"] for im in sub["images"]}
    anns = [a for a in caps["annotations"] if a["image_id"] in keep]
    sub["annotations"] = [dict(a, id=a["id"] * 1000 + r) for r in range(replicate) for a in anns]
    with open(path_out, "w") as f:
        json.dump(sub, f)
    return len(sub["annotations"])


def jsonl_subset(path_out, replicate=1):
    """The coco-mini captions as a JSONL manifest ({"image", "caption", "id"} per line, image paths
    relative to val2017/), each annotation repeated `replicate` times under new ids, in the same
    order as coco_subset. Returns the number of lines."""
    caps = json.load(open(os.path.join(COCO, "annotations", "captions_val2017.json")))
    names = {im["id"]: im["file_name"] for im in caps["images"]}
    n = 0
    with open(path_out, "w") as f:
        for r in range(replicate):
            for a in caps["annotations"]:
                f.write(json.dumps({"image": names[a["image_id"]], "caption": a["caption"],
                                    "id": a["id"] * 1000 + r}) + "\n")
                n += 1
    return n


def items_subset(path_out, replicate=1, k=5):
    """The coco-mini captions as an item manifest (`[dataset] format = items`): one k-candidate
    choice item per caption, its candidates the caption and the captions of the next k - 1
    annotations of other images (the foils), the answer at position (line % k); the whole set
    repeated `replicate` times. Returns the number of items."""
    caps = json.load(open(os.path.join(COCO, "annotations", "captions_val2017.json")))
    names = {im["id"]: im["file_name"] for im in caps["images"]}
    anns = caps["annotations"]
    n = 0
    with open(path_out, "w") as f:
        for r in range(replicate):
            for j, a in enumerate(anns):
                foils = [b["caption"] for b in anns[j + 1:] + anns[:j] if b["image_id"] != a["image_id"]][:k - 1]
                answer = n % k
                cands = foils[:answer] + [a["caption"]] + foils[answer:]
                f.write(json.dumps({"image": names[a["image_id"]], "candidates": cands, "answer": answer}) + "\n")
                n += 1
    return n


def measure_rss(clipneg, job, work, env, threads, factors, repeats, fmt="coco"):
    """Peak RSS of one rank (the singleton, no launcher) running `job` on the coco-mini captions
    replicated k times, for each k in `factors` ("1,10,100"): [(k, captions, [MiB per repeat],
    [seconds per repeat])]. fmt "jsonl" feeds the same captions as a JSONL manifest, "items" as an item
    manifest of 5-candidate choice items (one per caption: the count reported). Each run is a
    fresh interpreter whose only child is clipneg, so ru_maxrss is that run's alone."""
    out = []
    for k in [int(x) for x in factors.split(",") if x.strip()]:
        if fmt in ("jsonl", "items"):
            p = os.path.join(work, f"captions_x{k}.jsonl")
            n_caps = jsonl_subset(p, replicate=k) if fmt == "jsonl" else items_subset(p, replicate=k)
            data = ["--set", f"dataset.format={fmt}", "--set", f"dataset.manifest={p}", "--set", "dataset.captions=",
                    "--set", "dataset.instances=", "--set", f"dataset.images={os.path.join(COCO, 'val2017')}"]
        else:
            p = os.path.join(work, f"captions_x{k}.json")
            n_caps = coco_subset(p, 0, replicate=k)
            data = ["--set", f"dataset.captions={p}"]
        probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
                 "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if r.returncode == 0 else -1)")
        mib, secs = [], []
        for r in range(repeats):
            t0 = time.perf_counter()
            kib = int(sh([sys.executable, "-c", probe, clipneg, "eval", job, "--output",
                          os.path.join(work, f"rss{k}.h5"), "--fresh"] + data + [
                          "--set", "output.embeddings=false", "--set", f"run.threads={threads}"], env).split()[-1])
            if kib < 0:
                sys.exit(f"eval failed on the x{k} caption set")
            mib.append(kib / 1024)
            secs.append(time.perf_counter() - t0)
            log(f"RSS x{k} run {r + 1}/{repeats}: {mib[-1]:.1f} MiB in {secs[-1]:.1f} s")
            os.remove(os.path.join(work, f"rss{k}.h5"))
        os.remove(p)
        out.append((k, n_caps, mib, secs))
    return out


def peak_rss_mib(cmd, env):
    """Peak RSS (MiB) of one run of cmd, alone in a fresh interpreter (ru_maxrss of its only child)."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if r.returncode == 0 else -1)")
    kib = int(sh([sys.executable, "-c", probe] + cmd, env).split()[-1])
    if kib < 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return kib / 1024


def measure_tools_rss(clipneg, job, work, env, threads, factors, repeats):
    """Peak RSS of one rank of `clipneg reduce` and `clipneg export-tsne` on the output of the coco-mini
    captions replicated k times (one eval per k, embeddings on, not measured):
    [(k, captions, {tool: ([MiB per repeat], [seconds per repeat])})]."""
    out = []
    for k in [int(x) for x in factors.split(",") if x.strip()]:
        p = os.path.join(work, f"captions_x{k}.json")
        n_caps = coco_subset(p, 0, replicate=k)
        h5 = os.path.join(work, f"tools{k}.h5")
        t0 = time.perf_counter()
        sh([clipneg, "eval", job, "--output", h5, "--fresh", "--set", f"dataset.captions={p}",
            "--set", "output.embeddings=true", "--set", f"run.threads={threads}"], env)
        log(f"tools x{k}: eval {time.perf_counter() - t0:.1f} s")
        tools = {"reduce": [clipneg, "reduce", h5, "--no-table", "--json", os.path.join(work, "stats.json")],
                 "export-tsne": [clipneg, "export-tsne", h5]}
        res = {}
        for name, cmd in tools.items():
            mib, secs = [], []
            for r in range(repeats):
                t0 = time.perf_counter()
                mib.append(peak_rss_mib(cmd, env))
                secs.append(time.perf_counter() - t0)
                log(f"tools x{k} {name} run {r + 1}/{repeats}: {mib[-1]:.1f} MiB in {secs[-1]:.1f} s")
            res[name] = (mib, secs)
        os.remove(h5)
        os.remove(p)
        out.append((k, n_caps, res))
    return out


def tools_lines(rows):
    """The reduce / export-tsne RSS table (medians) and each tool's growth from the first to the last set."""
    if not rows:
        return []
    lines = ["", "| captions (x replication) | tool | peak RSS of the rank, median (MiB) | runs (MiB) | time (s) |",
             "|---|---|---:|---|---:|"]
    for k, n_caps, res in rows:
        for name, (mib, secs) in res.items():
            lines.append(f"| {n_caps} (x{k}) | {name} | {median(mib):.1f} | {', '.join(f'{m:.1f}' for m in mib)} | "
                         f"{median(secs):.1f} |")
    (k0, n0, r0), (k1, n1, r1) = rows[0], rows[-1]
    if n1 > n0:
        lines.append("")
        for name in r0:
            grow = median(r1[name][0]) - median(r0[name][0])
            lines.append(f"{name} growth x{k0} -> x{k1}: {grow:+.1f} MiB for {n1 - n0} more captions = "
                         f"{grow * 1048576 / (n1 - n0):.1f} bytes per caption.")
    return lines


def rss_lines(rss, fmt="coco"):
    """The RSS table (medians) and the growth per caption from the smallest to the largest set. An
    item manifest (fmt "items") has one caption per item (7 variant texts) and 5 candidate texts."""
    if not rss:
        return []
    what, per = ("items", 7 + 5) if fmt == "items" else ("captions", 7)
    lines = ["", f"| {what} (x replication) | texts | peak RSS of the rank, median (MiB) | runs (MiB) | eval time (s) |",
             "|---|---:|---:|---|---:|"]
    for k, n_caps, mib, secs in rss:
        lines.append(f"| {n_caps} (x{k}) | {n_caps * per} | {median(mib):.1f} | "
                     f"{', '.join(f'{m:.1f}' for m in mib)} | {median(secs):.1f} |")
    (k0, n0, m0, _), (k1, n1, m1, _) = rss[0], rss[-1]
    if n1 > n0:
        grow = median(m1) - median(m0)
        lines += ["", f"Growth x{k0} -> x{k1}: {grow:+.1f} MiB for {n1 - n0} more {what} = "
                      f"{grow * 1048576 / (n1 - n0):.1f} bytes per {what[:-1]}."]
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both implementations")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement (median reported)")
    ap.add_argument("--images", type=int, default=32, help="image tower batch")
    ap.add_argument("--text-count", type=int, default=256, help="texts for the text tower part (0: all)")
    ap.add_argument("--e2e-images", type=int, default=0, help="end to end on the first N coco-mini images (0: all 79)")
    ap.add_argument("--rss", default="1,10,100,1000", help="caption replication factors for the RSS part ('' skips)")
    ap.add_argument("--rss-repeats", type=int, default=3, help="runs per RSS point (median reported)")
    ap.add_argument("--rss-tools", action="store_true",
                    help="with --rss-only: measure clipneg reduce and export-tsne instead of eval")
    ap.add_argument("--rss-format", choices=("coco", "jsonl", "items"), default="coco",
                    help="feed the replicated captions as COCO JSON, a JSONL manifest or an item manifest of "
                         "5-candidate choice items, one per caption (RSS part)")
    ap.add_argument("--rss-only", action="store_true",
                    help="only the RSS part (tiny test model, minutes); table to stdout and bench/cpu/rss.md")
    ap.add_argument("--build", default=os.environ.get("CLIPNEG_BUILD", os.path.join(ROOT, "build")),
                    help="build folder holding clipneg and bench/cpu/bench_towers[_plain]")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "cpu", "results.md"))
    args = ap.parse_args()
    T, R = args.threads, args.repeats
    # Both sides get the same threads; set before torch/numpy load OpenBLAS (torch 1.13 from Debian
    # uses the system OpenBLAS for its GEMMs, which reads OPENBLAS_NUM_THREADS when it loads).
    os.environ.update(OMP_NUM_THREADS=str(T), OPENBLAS_NUM_THREADS=str(T))
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    clipneg = os.path.join(args.build, "clipneg")
    if args.rss_only:
        if not os.path.exists(clipneg):
            sys.exit(f"{clipneg} missing: run scripts/build.sh first (or pass --build)")
        work = tempfile.mkdtemp(prefix="clipneg-bench-")
        job = os.path.join(ROOT, "jobs", "demo.ini")
        if args.rss_tools:
            lines = tools_lines(measure_tools_rss(clipneg, job, work, env, T, args.rss, args.rss_repeats))
            what = "clipneg reduce / export-tsne (defaults) on the eval output"
        else:
            lines = rss_lines(measure_rss(clipneg, job, work, env, T, args.rss, args.rss_repeats, args.rss_format),
                              args.rss_format)
            what = "clipneg eval (item manifest)" if args.rss_format == "items" else f"clipneg eval ({args.rss_format} captions)"
        load = os.getloadavg()[0]
        text = "\n".join([f"Peak RSS of one rank, {what}, tiny test model, {T} threads, median of {args.rss_repeats} "
                          f"runs; 1-minute load average at the end {load:.1f} on {os.cpu_count()} cores."] + lines)
        print(text)
        out = args.out if args.out != os.path.join(ROOT, "bench", "cpu", "results.md") else \
            os.path.join(ROOT, "bench", "cpu", "rss.md")
        with open(out, "w") as f:
            f.write(text + "\n")
        return
    bench = os.path.join(args.build, "bench", "cpu", "bench_towers")
    bench_plain = bench + "_plain"
    for exe in (clipneg, bench, bench_plain):
        if not os.path.exists(exe):
            sys.exit(f"{exe} missing: run scripts/build.sh first (or pass --build)")

    import numpy as np
    import open_clip
    import torch
    from PIL import Image
    torch.set_num_threads(T)
    loads = [os.getloadavg()[0]]

    work = tempfile.mkdtemp(prefix="clipneg-bench-")
    model_dir = os.path.join(work, "vitb32")
    log("making the seeded random ViT-B/32 (open_clip)")
    model = make_model(model_dir)
    cfg = open_clip.get_model_config("ViT-B-32")
    vcfg = dict(cfg["vision_cfg"], embed_dim=cfg["embed_dim"])
    tcfg = dict(cfg["text_cfg"], embed_dim=cfg["embed_dim"])
    preprocess = open_clip.image_transform(224, is_train=False)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    rows, gemm_rows = [], []

    # ---- (5a) sgemm peak and the tile grid on transformer shapes ------------------------------
    # 1600 = 32 images x 50 tokens, 400 = the demo job's batch of 8 images, 4096 ~ 256 texts x 16.
    shapes = [(1600, 3072, 768), (1600, 768, 3072), (400, 2304, 768), (4096, 2048, 512)]
    for M, N, K in shapes:
        dims = [str(M), str(N), str(K), str(R)]
        plain = median(floats(sh([bench, "sgemm"] + dims, env)))
        tiled = median(floats(sh([bench, "sgemm-tiled"] + dims, env)))
        gemm_rows.append((M, N, K, plain, tiled))
        log(f"sgemm {M}x{N}x{K}: OpenBLAS {T} threads {plain:.1f} GFLOP/s, fixed tile grid {tiled:.1f}")
    peak = gemm_rows[0][3]
    loads.append(os.getloadavg()[0])

    # ---- (1) image tower ---------------------------------------------------------------------
    files = sorted(f for f in os.listdir(os.path.join(COCO, "val2017")) if f.endswith(".jpg"))[: args.images]
    pixels = torch.stack([preprocess(Image.open(os.path.join(COCO, "val2017", f))) for f in files])
    pix_path = os.path.join(work, "pixels.f32")
    pixels.numpy().astype("<f4").tofile(pix_path)
    B = len(files)
    ours = floats(sh([bench, model_dir, "image", pix_path, str(B), str(R)], env))
    ours_plain = floats(sh([bench_plain, model_dir, "image", pix_path, str(B), str(R)], env))
    theirs = []
    with torch.no_grad():
        model.encode_image(pixels)  # warm-up, as bench_towers does
        for _ in range(R):
            t0 = time.perf_counter()
            model.encode_image(pixels)
            theirs.append(B / (time.perf_counter() - t0))
    g = vit_gflop_image(vcfg)
    rows.append((f"image tower (images/s, batch {B})", median(ours), median(theirs),
                 f"{median(ours) * g:.0f} GFLOP/s ({100 * median(ours) * g / peak:.0f}% of sgemm peak); "
                 f"plain-OpenBLAS build {median(ours_plain):.2f} images/s"))
    log(f"image tower: clipneg {median(ours):.2f}/s (plain OpenBLAS {median(ours_plain):.2f}), "
        f"open_clip {median(theirs):.2f}/s")
    loads.append(os.getloadavg()[0])

    # ---- (3) end to end: clipneg eval on coco-mini vs an open_clip + PIL loop -------------------
    job = os.path.join(ROOT, "jobs", "demo.ini")
    out_h5 = os.path.join(work, "e2e.h5")
    e2e_caps = os.path.join(work, "captions_e2e.json")
    coco_subset(e2e_caps, args.e2e_images)
    eval_cmd = [clipneg, "eval", job, "--output", out_h5, "--fresh", "--set", f"model.path={model_dir}",
                "--set", f"run.threads={T}", "--set", f"dataset.captions={e2e_caps}"]
    e2e_ours = []
    for r in range(R):
        t0 = time.perf_counter()
        sh(eval_cmd, env)
        e2e_ours.append(time.perf_counter() - t0)
        log(f"clipneg eval run {r + 1}/{R}: {e2e_ours[-1]:.1f} s")
    import h5py
    with h5py.File(out_h5, "r") as f:
        status = f["texts/status"][()]
        text_rows = np.flatnonzero(status == 0)  # clipneg encodes the rendered texts only
        all_texts = f["texts/text"].asstr()[()]
        texts = [str(t) for t in all_texts[text_rows]]
        image_files = list(f["images/file_name"].asstr()[()])
        cap_img = f["captions/image_index"][()]
        V = f["variants/name"].shape[0]
        ours_paired = f["similarity/paired"][()].reshape(-1)[text_rows]
    text_img = torch.as_tensor(cap_img[text_rows // V].astype(np.int64))  # text row t = caption * V + variant

    def openclip_e2e():
        """The eval job's work, the plain way: load the weights (open_clip's own path: build the
        model, then load the state dict, as clipneg eval loads the same file), decode + preprocess
        (PIL, open_clip's transform), both towers, L2 normalisation, paired cosines and the full
        image x text matrix (float16, as demo.ini stores it). Kept in memory: clipneg also writes
        its HDF5 file, we do not; Python's start and `import torch` are not counted either."""
        from safetensors.torch import load_file
        model = open_clip.create_model("ViT-B-32", pretrained=None, force_quick_gelu=True)
        model.load_state_dict(load_file(os.path.join(model_dir, "open_clip_model.safetensors")))
        model.eval()
        tokenizer = open_clip.get_tokenizer("ViT-B-32")
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
    for r in range(R):
        t0 = time.perf_counter()
        paired, _ = openclip_e2e()
        e2e_theirs.append(time.perf_counter() - t0)
        log(f"open_clip loop run {r + 1}/{R}: {e2e_theirs[-1]:.1f} s")
    # Same work, same answer: the paired cosines agree (fp32 vs fp32, different summation order).
    dmax = float(np.max(np.abs(paired.numpy() - ours_paired)))
    n_items = len(image_files) + len(texts)
    rows.append((f"end to end coco-mini ({len(image_files)} images + {len(texts)} texts, items/s)",
                 n_items / median(e2e_ours), n_items / median(e2e_theirs),
                 f"demo.ini (image_batch 8, 2 decode threads) vs PIL+open_clip loop, both loading the weights; "
                 f"medians {median(e2e_ours):.1f} s vs {median(e2e_theirs):.1f} s; max |paired diff| {dmax:.1e}"))
    loads.append(os.getloadavg()[0])

    # ---- (2) text tower on the rendered seed-7 strings ------------------------------------------
    if 0 < args.text_count < len(texts):  # evenly spaced, so every variant and length is represented
        pick = np.linspace(0, len(texts) - 1, args.text_count).round().astype(int)
        texts = [texts[i] for i in pick]
    ids = tokenizer(texts)
    ids_path = os.path.join(work, "ids.i32")
    ids.numpy().astype("<i4").tofile(ids_path)
    n = len(texts)
    ours = floats(sh([bench, model_dir, "text", ids_path, str(n), str(R)], env))
    ours_plain = floats(sh([bench_plain, model_dir, "text", ids_path, str(n), str(R)], env))
    theirs = []
    with torch.no_grad():
        model.encode_text(ids[:256])  # warm-up
        for _ in range(R):
            t0 = time.perf_counter()
            for i in range(0, n, 256):
                model.encode_text(ids[i:i + 256])
            theirs.append(n / (time.perf_counter() - t0))
    lengths = (ids.argmax(-1) + 1).tolist()
    g = text_gflop_77(tcfg)
    rows.insert(1, (f"text tower ({n} texts in batches of 256, texts/s; mean length {np.mean(lengths):.1f} of 77)",
                    median(ours), median(theirs),
                    f"{median(ours) * g:.0f} 77-token-equivalent GFLOP/s; plain-OpenBLAS build "
                    f"{median(ours_plain):.1f} texts/s"))
    log(f"text tower: clipneg {median(ours):.1f}/s (plain OpenBLAS {median(ours_plain):.1f}), open_clip {median(theirs):.1f}/s")
    loads.append(os.getloadavg()[0])

    # ---- (4) peak RSS as the caption set grows -----------------------------------------------
    rss = measure_rss(clipneg, job, work, env, T, args.rss, args.rss_repeats)
    loads.append(os.getloadavg()[0])

    # ---- table ---------------------------------------------------------------------------------
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    lines = [f"Machine: {cpu}, {os.cpu_count()} cores; {T} threads for both; torch {torch.__version__}, "
             f"open_clip {open_clip.version.__version__}; sgemm peak {peak:.0f} GFLOP/s "
             f"(OpenBLAS, {T} threads, 1600x3072x768); medians of {R} runs; model: seeded random ViT-B/32 "
             f"(open_clip); 1-minute load average during the run {min(loads):.1f} .. {max(loads):.1f} "
             f"(on {os.cpu_count()} cores).", "",
             "| measurement | clipneg | open_clip | ratio | note |", "|---|---:|---:|---:|---|"]
    for name, a, b, note in rows:
        lines.append(f"| {name} | {a:.2f} | {b:.2f} | {a / b:.2f}x | {note} |")
    lines += ["", f"| GEMM M x N x K (A @ B^T) | OpenBLAS, {T} threads (GFLOP/s) | fixed tile grid (GFLOP/s) | grid / plain |",
              "|---|---:|---:|---:|"]
    for M, N, K, plain, tiled in gemm_rows:
        lines.append(f"| {M} x {N} x {K} | {plain:.1f} | {tiled:.1f} | {tiled / plain:.2f} |")
    lines += rss_lines(rss)
    text = "\n".join(lines)
    print(text)
    with open(args.out, "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
