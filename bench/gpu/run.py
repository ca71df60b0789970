#!/usr/bin/env python3
"""bench/gpu/run.py — clipneg's CUDA backend against HF transformers CLIPModel (fp16), one GPU, one run.

For each backbone shape (seeded random weights; the numbers are about speed, not accuracy) it prints
images/s and texts/s of both implementations side by side, and the achieved TFLOP/s against this
GPU's measured dense GEMM peak (bench/gpu/gemm_peak: an fp16 cuBLASLt GEMM through clipneg's own
matmul path); then, with --e2e, the end-to-end table of bench/gpu/e2e.py.

    python bench/gpu/run.py [--build build] [--precision fp16] [--batches 64,256,1024] [--repeats 5]
                            [--runs 3] [--shapes ViT-B-32,ViT-B-16,ViT-L-14,ViT-L-14-336,RN50x16]
                            [--transfers h2h,d2d] [--text-lens 77,coco] [--captions FILE] [--bpe FILE]
                            [--models DIR] [--out bench/gpu/results.md] [--no-hf] [--hf-compile]
                            [--time-budget SECONDS] [--e2e DATA_DIR] [--e2e-shapes ViT-B-32]
                            [--dry-run]

Needs: a CUDA build (cmake -DCLIPNEG_CUDA=ON; bench_gpu_towers and gemm_peak are built with it), a
visible GPU, open_clip + torch (CPU is enough) to write the random checkpoints through
tests/reference/make_fixtures.py --full (cached in --models), and for the HF columns a CUDA-enabled
torch with transformers (without them the columns say why they are missing).

What is timed:
  * h2h (host to host): host input -> device -> tower -> host output, per batch (clipneg through the
    Backend interface the evaluator uses; HF with .to("cuda") of the CPU tensors and .cpu() of the
    result).  d2d: the input already on the device, the output left there (clipneg:
    cuda_backend_time_d2d; HF: tensors moved before the clock starts).
  * text lengths: "77" = every text padded to the whole context on both sides (EOT at 76, what HF
    computes with padding="max_length"); "coco" = real COCO captions (tokenised by `clipneg tokenize`
    from --captions), clipneg trimming each chunk to its longest EOT and HF with padding="longest"
    (the batch padded to its longest caption, attention mask on).
  * every configuration: --runs blocks of --repeats timed calls after one warm-up; the table shows
    the median of the block medians and the spread (max - min of the block medians, % of the median).
  * HF eager (sdpa attention where the transformers version has it) and, with --hf-compile,
    torch.compile of the same modules (skipped with the reason when it fails).
FLOPs per item (2 per multiply-add of every GEMM, convolution and attention product) come from
clipneg's count of the loaded architecture (texts at their own lengths) and are used for both
columns. RN50x16: HF transformers has no ModifiedResNet, so its image column is n/a.
--time-budget: configurations are run most important first (batch 256 of every shape, then the
sweep); once the budget is spent the rest are listed as skipped. --dry-run: parse the arguments,
write the caption ids, print the plan and exit (no GPU needed).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPES = ["ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-L-14-336", "RN50x16"]


def sh(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def gemm_peak(build):
    out = sh([os.path.join(build, "bench", "gpu", "gemm_peak"), "fp16"])
    print(out.strip())
    for line in out.splitlines():
        if line.startswith("peak_tflops"):
            return float(line.split()[1])
    sys.exit("gemm_peak printed no peak_tflops line")


def model_dir(models, shape):
    d = os.path.join(models, shape)
    if not os.path.exists(os.path.join(d, "open_clip_model.safetensors")):
        print(f"writing random {shape} to {d} (tests/reference/make_fixtures.py --full) ...", flush=True)
        sh([sys.executable, os.path.join(ROOT, "tests", "reference", "make_fixtures.py"), "--full", shape,
            "--out", d, "--dtype", "f16"])
    return d


def clipneg_rates(build, mdir, precision, kind, batch, n, transfer, ids_file):
    cmd = [os.path.join(build, "bench", "gpu", "bench_gpu_towers"), mdir, precision, kind, str(batch), str(n)]
    if kind == "text" and ids_file:
        cmd.append(f"ids={ids_file}")
    if transfer == "d2d":
        cmd.append("d2d")
    out = sh(cmd)
    return json.loads(out.strip().splitlines()[-1])


def caption_ids(build, captions, bpe, out_path, limit=4096):
    """Real COCO captions as rows of 77 int32 ids (clipneg tokenize --pad), for both sides."""
    import array
    with open(captions) as f:
        texts = [a["caption"].replace("\n", " ").strip() for a in json.load(f)["annotations"]][:limit]
    env = dict(os.environ)
    if bpe:
        env["CLIPNEG_BPE"] = bpe
    r = subprocess.run([os.path.join(build, "clipneg"), "tokenize", "--pad"], input="\n".join(texts) + "\n",
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"clipneg tokenize failed: {r.stderr}")
    rows = [list(map(int, l.split())) for l in r.stdout.splitlines() if l.strip()]
    if not rows or any(len(x) != 77 for x in rows):
        sys.exit("clipneg tokenize --pad did not print rows of 77 ids")
    arr = array.array("i", [v for x in rows for v in x])
    if sys.byteorder != "little":
        arr.byteswap()
    with open(out_path, "wb") as f:
        arr.tofile(f)
    lens = [x.index(max(x)) + 1 for x in rows]
    return rows, sum(lens) / len(lens)


def hf_model(shape, torch, transformers):
    """A random-initialised HF CLIPModel with the shape of the open_clip config (QuickGELU, fp16)."""
    import open_clip
    cfg = open_clip.get_model_config(shape)
    v, t, D = cfg["vision_cfg"], cfg["text_cfg"], cfg["embed_dim"]
    text = dict(hidden_size=t["width"], intermediate_size=4 * t["width"], num_hidden_layers=t["layers"],
                num_attention_heads=t["heads"], max_position_embeddings=t.get("context_length", 77),
                vocab_size=t.get("vocab_size", 49408), hidden_act="quick_gelu", projection_dim=D,
                eos_token_id=49407)
    has_vision = isinstance(v["layers"], int)  # ModifiedResNet configs list the stage depths
    if has_vision:
        W = v["width"]
        vision = dict(hidden_size=W, intermediate_size=4 * W, num_hidden_layers=v["layers"],
                      num_attention_heads=W // v.get("head_width", 64), image_size=v["image_size"],
                      patch_size=v["patch_size"], hidden_act="quick_gelu", projection_dim=D)
    else:  # text tower only: a token vision tower that is never run
        vision = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=1, num_attention_heads=1,
                      image_size=32, patch_size=16, projection_dim=D)
    conf = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=D)
    torch.manual_seed(0)
    impl = "eager"
    model = None
    for kw in ("dtype", "torch_dtype"):  # transformers >= 4.56 calls it dtype, older ones torch_dtype
        try:
            model = transformers.CLIPModel._from_config(conf, attn_implementation="sdpa", **{kw: torch.float16})
            impl = "sdpa"
            break
        except Exception as e:  # older transformers: CLIP has the eager attention only
            print(f"HF CLIPModel with sdpa and {kw}=: {type(e).__name__}: {e}", file=sys.stderr)
    if model is None:
        model = transformers.CLIPModel(conf).half()
    return model.cuda().eval(), has_vision, impl, v.get("image_size", 224)


def hf_rates(torch, model, kind, batch, n, image_size, transfer, rows, compiled=False):
    """n timed calls (after a warm-up) of HF's tower + projection; items/s per call.
    rows: the caption ids (lists of 77) for "coco" lengths, None for 77-token random texts."""
    # the tower + projection, spelled out: get_*_features returns a tensor in transformers 4 and a
    # model output in 5, while these modules behave the same in both
    g = torch.Generator().manual_seed(0)
    vm, tm = model.vision_model, model.text_model
    if compiled:
        vm, tm = torch.compile(vm), torch.compile(tm)
    if kind == "image":
        x = torch.randn(batch, 3, image_size, image_size, generator=g).half()
        xd = x.to("cuda")
        f = lambda inp: model.visual_projection(vm(pixel_values=inp).pooler_output)
        fn = (lambda: f(x.to("cuda")).float().cpu()) if transfer == "h2h" else (lambda: f(xd))
    else:
        if rows is None:
            ids = torch.randint(1, 49405, (batch, 77), generator=g)
            ids[:, 0], ids[:, 76] = 49406, 49407
            mask = None
        else:  # padding="longest": the batch cut to its longest caption, with the attention mask
            sel = [rows[i % len(rows)] for i in range(batch)]
            L = max(r.index(max(r)) + 1 for r in sel)
            ids = torch.tensor([r[:L] for r in sel])
            mask = (torch.arange(L)[None, :] <= ids.argmax(-1)[:, None]).long()
        idd, maskd = ids.to("cuda"), (mask.to("cuda") if mask is not None else None)
        f = lambda i, m: model.text_projection(tm(input_ids=i, attention_mask=m).pooler_output)
        if transfer == "h2h":
            fn = lambda: f(ids.to("cuda"), mask.to("cuda") if mask is not None else None).float().cpu()
        else:
            fn = lambda: f(idd, maskd)
    rates = []
    with torch.inference_mode():
        fn()
        torch.cuda.synchronize()
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            rates.append(batch / (time.perf_counter() - t0))
    return rates


def summarise(rates, runs):
    """Median of the per-block medians, and their spread (max - min) in % of that median."""
    k = max(1, len(rates) // runs)
    meds = [statistics.median(rates[i * k:(i + 1) * k]) for i in range(runs) if rates[i * k:(i + 1) * k]]
    m = statistics.median(meds)
    return m, (100.0 * (max(meds) - min(meds)) / m if m else 0.0)


def plan(args):
    """(shape, kind, text_len, transfer, batch) most important first: batch 256 (or the middle of the
    sweep) for every shape, h2h before d2d, then the rest of the sweep."""
    batches = [int(b) for b in args.batches.split(",")]
    first = 256 if 256 in batches else batches[len(batches) // 2]
    order = [first] + [b for b in batches if b != first]
    items = []
    for b in order:
        for transfer in args.transfers.split(","):
            for shape in args.shapes.split(","):
                items.append((shape, "image", None, transfer, b))
                for tl in args.text_lens.split(","):
                    items.append((shape, "text", tl, transfer, b))
    return items


def e2e_table(results):
    lines = ["## End to end: COCO-val2017-sized run (bench/gpu/e2e.py)", "",
             "5000 images (coco-mini JPEGs replicated), 25,000 captions x 7 variants, full similarity, from JPEG "
             "files to a closed HDF5 file. Stage seconds (clipneg: max over ranks, main thread; decode = waiting "
             "for the decode threads). GPU busy <= (towers + similarity) / total.", "",
             "| shape | side | wall s | " + " | ".join(STAGE_COLS) + " | GPU busy <= | speed-up |",
             "|---|---|---|" + "---|" * len(STAGE_COLS) + "---|---|"]
    for r in results:
        c, t = r.get("clipneg", {}), r.get("torch", {})
        for side, d in (("clipneg", c), ("PyTorch + open_clip", t)):
            if "error" in d:
                lines.append(f"| {r['shape']} | {side} | {d['error']} |" + " |" * (len(STAGE_COLS) + 2))
                continue
            st = d.get("stages") or {}
            busy = d.get("gpu_busy_max")
            sp = f"{t['wall'] / c['wall']:.2f}x" if side == "clipneg" and "wall" in t and "wall" in c else ""
            lines.append(f"| {r['shape']} | {side} | {d['wall']:.1f} | " +
                         " | ".join(f"{st.get(k, float('nan')):.2f}" for k in STAGE_COLS) +
                         (f" | {100 * busy:.0f} % | {sp} |" if busy is not None else " | n/a | |"))
    return lines


STAGE_COLS = ["decode", "tokenize", "text_tower", "image_tower", "similarity", "io", "other"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--precision", default="fp16", choices=["fp32", "tf32", "fp16", "bf16"])
    ap.add_argument("--batches", default="64,256,1024")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per run")
    ap.add_argument("--runs", type=int, default=3, help="blocks of --repeats calls (the spread column)")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--transfers", default="h2h,d2d")
    ap.add_argument("--text-lens", default="77,coco")
    ap.add_argument("--captions", default=os.path.join(ROOT, "..", "shared", "data", "coco-mini", "annotations",
                                                       "captions_val2017.json"))
    ap.add_argument("--bpe", default=None, help="CLIP BPE vocabulary for clipneg tokenize (default: $CLIPNEG_BPE)")
    ap.add_argument("--models", default=os.path.join(ROOT, "out", "bench-gpu-models"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "gpu", "results.md"))
    ap.add_argument("--no-hf", action="store_true", help="clipneg only")
    ap.add_argument("--hf-compile", action="store_true", help="also HF under torch.compile")
    ap.add_argument("--time-budget", type=float, default=0, help="seconds for the tower table (0: no limit)")
    ap.add_argument("--e2e", action="append", default=[], help="JSON files written by e2e.py run --out-json")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    if args.runs < 1 or args.repeats < 1:
        sys.exit("--runs and --repeats must be >= 1")

    items = plan(args)
    rows_coco, coco_mean = None, None
    ids_file = os.path.join(args.models, "coco-caption-ids.i32")
    if "coco" in args.text_lens.split(","):
        os.makedirs(args.models, exist_ok=True)
        rows_coco, coco_mean = caption_ids(args.build, args.captions, args.bpe, ids_file)
        print(f"{len(rows_coco)} COCO captions tokenised: {coco_mean:.1f} tokens on average (SOT and EOT included)")
    if args.dry_run:
        print(f"{len(items)} configurations, {args.runs} x {args.repeats} timed calls each:")
        for it in items:
            print("  ", *it)
        for path in args.e2e:
            print("\n".join(e2e_table([json.load(open(path))])))
        return

    peak = gemm_peak(args.build)
    hf_why = None
    torch = transformers = None
    if args.no_hf:
        hf_why = "--no-hf"
    else:
        try:
            import torch
            import transformers
            if not torch.cuda.is_available():
                hf_why = f"torch {torch.__version__} has no CUDA"
        except ImportError as e:
            hf_why = f"not importable: {e}"
    if hf_why:
        print(f"HF transformers columns skipped: {hf_why}")

    t_start = time.perf_counter()
    n = args.runs * args.repeats
    hf_cache, results, skipped = {}, [], []
    for shape, kind, tl, transfer, batch in items:
        if args.time_budget and time.perf_counter() - t_start > args.time_budget:
            skipped.append((shape, kind, tl, transfer, batch))
            continue
        mdir = model_dir(args.models, shape)
        ids = ids_file if tl == "coco" else None
        r = clipneg_rates(args.build, mdir, args.precision, kind, batch, n, transfer, ids)
        c_rate, c_spread = summarise(r["rates"], args.runs)
        gflop = r["gflop_per_item"]
        hf = {}
        note = hf_why or ""
        if not hf_why:
            if shape not in hf_cache:
                hf_cache.clear()  # one HF model on the GPU at a time
                torch.cuda.empty_cache()
                hf_cache[shape] = hf_model(shape, torch, transformers)
            model, has_vision, impl, size = hf_cache[shape]
            if kind == "image" and not has_vision:
                note = "HF has no ModifiedResNet"
            else:
                note = f"HF attention: {impl}"
                rows = rows_coco if tl == "coco" else None
                hf["eager"] = summarise(hf_rates(torch, model, kind, batch, n, size, transfer, rows), args.runs)
                if args.hf_compile:
                    try:
                        hf["compile"] = summarise(hf_rates(torch, model, kind, batch, n, size, transfer, rows, True),
                                                  args.runs)
                    except Exception as e:  # noqa: BLE001 - report any compile failure in the table
                        note += f"; torch.compile failed: {type(e).__name__}"
        results.append((shape, kind, tl, transfer, batch, c_rate, c_spread, hf, gflop, r.get("tokens_mean", 0), note))
        e = hf.get("eager", (None, 0))[0]
        print(f"{shape:13s} {kind:5s} {tl or '':4s} {transfer} B={batch:5d} clipneg {c_rate:9.1f}/s "
              f"(+-{c_spread:.0f}%)  HF {e or float('nan'):9.1f}/s  {gflop:7.2f} GFLOP/item  {note}", flush=True)

    def tf(rate, g):
        return f"{rate * g / 1e3:.1f} ({100 * rate * g / 1e3 / peak:.0f} %)" if rate else "n/a"

    lines = [f"# clipneg CUDA backend vs HF transformers CLIPModel ({args.precision} / fp16)", "",
             f"Measured fp16 GEMM peak (cuBLASLt, gemm_peak): {peak:.1f} TFLOP/s. Texts: `77` = padded to the "
             f"context on both sides; `coco` = real COCO captions ({coco_mean or 0:.1f} tokens on average), clipneg "
             "trimming at EOT, HF with padding=\"longest\". h2h: host buffers in and out; d2d: device-resident "
             f"input and output. Per configuration: median of {args.runs} runs x {args.repeats} calls after a "
             "warm-up (spread = max - min of the run medians). Seeded random weights.", "",
             "| shape | tower | text | transfer | batch | clipneg items/s (spread) | HF eager items/s (spread) "
             "| clipneg / HF | HF compiled items/s | GFLOP/item | clipneg TFLOP/s (% peak) | HF TFLOP/s (% peak) "
             "| note |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for shape, kind, tl, transfer, batch, c, cs, hf, g, tok, note in results:
        h, hs = hf.get("eager", (None, 0))
        hc = hf.get("compile", (None, 0))[0]
        ratio = f"{c / h:.2f}" if h else "n/a"
        lines.append(f"| {shape} | {kind} | {tl or ''} | {transfer} | {batch} | {c:.1f} ({cs:.0f} %) | "
                     f"{f'{h:.1f} ({hs:.0f} %)' if h else 'n/a'} | {ratio} | {f'{hc:.1f}' if hc else 'n/a'} | "
                     f"{g:.2f} | {tf(c, g)} | {tf(h, g)} | {note} |")
    if skipped:
        lines += ["", f"Skipped (time budget of {args.time_budget:.0f} s spent): " +
                  ", ".join(f"{s} {k} {t or ''} {tr} {b}".replace("  ", " ") for s, k, t, tr, b in skipped)]
    for path in args.e2e:
        try:
            lines += [""] + e2e_table([json.load(open(path))])
        except (OSError, ValueError) as e:
            lines += ["", f"End to end: {path} unreadable ({e})"]
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
