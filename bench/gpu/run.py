#!/usr/bin/env python3
"""bench/gpu/run.py — clipneg's CUDA backend against HF transformers CLIPModel (fp16), one GPU, one run.

For each backbone shape (seeded random weights; the numbers are about speed, not accuracy) it prints
images/s and texts/s of both implementations, and the achieved TFLOP/s against this GPU's measured
dense GEMM peak (bench/gpu/gemm_peak: an fp16 cuBLASLt GEMM through clipneg's own matmul path).

    python bench/gpu/run.py [--build build] [--precision fp16] [--image-batch 64] [--text-batch 256]
                            [--repeats 10] [--shapes ViT-B-32,ViT-B-16,ViT-L-14,ViT-L-14-336,RN50x16]
                            [--models DIR] [--out bench/gpu/results.md] [--no-hf]

Needs: a CUDA build (cmake -DCLIPNEG_CUDA=ON; bench_gpu_towers and gemm_peak are built with it), a
visible GPU, open_clip + torch (CPU is enough) to write the random checkpoints through
tests/reference/make_fixtures.py --full (cached in --models), and for the HF column a CUDA-enabled
torch with transformers (the Debian CPU torch of scripts/install-deps.sh cannot run it: the column
then says why it is missing).

What is timed, for both: host input -> device -> tower -> host output, per batch (clipneg through the
Backend interface the evaluator uses; HF with .to("cuda") of the CPU tensors and .cpu() of the
result). Texts use the whole 77-token context (EOT at position 76), which HF computes anyway; clipneg
would trim shorter captions (see encoder_text.c), so real captions run faster than this.
FLOPs per item (2 per multiply-add of every GEMM, convolution and attention product) come from
clipneg's count of the loaded architecture and are used for both columns. RN50x16: HF transformers
has no ModifiedResNet, so its image column is n/a (its text tower is timed).
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


def clipneg_rates(build, mdir, precision, kind, batch, repeats):
    out = sh([os.path.join(build, "bench", "gpu", "bench_gpu_towers"), mdir, precision, kind, str(batch),
              str(repeats)])
    return json.loads(out.strip().splitlines()[-1])


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


def hf_rates(torch, model, kind, batch, repeats, image_size):
    # the tower + projection, spelled out: get_*_features returns a tensor in transformers 4 and a
    # model output in 5, while these modules behave the same in both
    g = torch.Generator().manual_seed(0)
    if kind == "image":
        x = torch.randn(batch, 3, image_size, image_size, generator=g)
        fn = lambda: model.visual_projection(model.vision_model(pixel_values=x.to("cuda").half()).pooler_output).float().cpu()
    else:
        ids = torch.randint(1, 49405, (batch, 77), generator=g)
        ids[:, 0], ids[:, 76] = 49406, 49407
        fn = lambda: model.text_projection(model.text_model(input_ids=ids.to("cuda")).pooler_output).float().cpu()
    rates = []
    with torch.inference_mode():
        fn()
        torch.cuda.synchronize()
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            rates.append(batch / (time.perf_counter() - t0))
    return rates


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--precision", default="fp16", choices=["fp32", "tf32", "fp16", "bf16"])
    ap.add_argument("--image-batch", type=int, default=64)
    ap.add_argument("--text-batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--models", default=os.path.join(ROOT, "out", "bench-gpu-models"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "gpu", "results.md"))
    ap.add_argument("--no-hf", action="store_true", help="clipneg only")
    args = ap.parse_args()

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
        print(f"HF transformers column skipped: {hf_why}")

    rows = []
    for shape in args.shapes.split(","):
        mdir = model_dir(args.models, shape)
        hf = None
        if not hf_why:
            hf = hf_model(shape, torch, transformers)
        for kind, batch in (("image", args.image_batch), ("text", args.text_batch)):
            r = clipneg_rates(args.build, mdir, args.precision, kind, batch, args.repeats)
            c_rate = statistics.median(r["rates"])
            gflop = r["gflop_per_item"]
            h_rate, note = None, hf_why or ""
            if hf is not None:
                model, has_vision, impl, size = hf
                if kind == "image" and not has_vision:
                    note = "HF has no ModifiedResNet"
                else:
                    h_rate = statistics.median(hf_rates(torch, model, kind, batch, args.repeats, size))
                    note = f"HF attention: {impl}"
            rows.append((shape, kind, batch, c_rate, h_rate, gflop, note))
            print(f"{shape:13s} {kind:5s} clipneg {c_rate:9.1f}/s  HF {h_rate if h_rate else float('nan'):9.1f}/s  "
                  f"{gflop:7.2f} GFLOP/item  {note}", flush=True)
        if hf is not None:
            del hf
            torch.cuda.empty_cache()

    def tf(rate, gflop):
        return f"{rate * gflop / 1e3:.1f} ({100 * rate * gflop / 1e3 / peak:.0f} %)" if rate else "n/a"

    lines = [f"# clipneg CUDA backend vs HF transformers CLIPModel ({args.precision} / fp16)", "",
             f"Measured fp16 GEMM peak (cuBLASLt, gemm_peak): {peak:.1f} TFLOP/s. Batches: {args.image_batch} images, "
             f"{args.text_batch} texts (77 tokens). Median of {args.repeats} repeats after a warm-up; host buffers "
             "in and out on both sides. Seeded random weights.", "",
             "| shape | tower | clipneg items/s | HF items/s | clipneg / HF | GFLOP/item | clipneg TFLOP/s (% peak) "
             "| HF TFLOP/s (% peak) | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for shape, kind, batch, c, h, g, note in rows:
        ratio = f"{c / h:.2f}" if h else "n/a"
        hs = f"{h:.1f}" if h else "n/a"
        lines.append(f"| {shape} | {kind} | {c:.1f} | {hs} | {ratio} | {g:.2f} | {tf(c, g)} | {tf(h, g)} | {note} |")
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
