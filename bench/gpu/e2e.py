#!/usr/bin/env python3
"""bench/gpu/e2e.py — the end-to-end benchmark: a COCO-val2017-sized job from JPEG files to a closed
HDF5 file, clipneg (`clipneg eval`, the job jobs/coco-val2017-<backbone>.ini) against a PyTorch +
open_clip loop doing the same work, each with a per-stage breakdown.

    python bench/gpu/e2e.py make  --src ../shared/data/coco-mini --out DIR [--images 5000]
    python bench/gpu/e2e.py run   --data DIR --model MODEL_DIR --shape ViT-B-32 [--build build]
                                  [--out-json FILE] [--no-torch] [--max-images N] [--np 1]

`make` writes a COCO-sized dataset from a small one: DIR/val2017/ holds --images symbolic links to
the source JPEGs (real-size images, each source file used ~64 times: decoding is real work, the
files stay in the page cache as they would on a warm node), DIR/annotations/captions_val2017.json
the source captions of each copy (5000 images: ~25,000 captions, x the seed's 7 variants = ~175,000
texts) and instances_val2017.json its object annotations (the {swap}/{other} variants need them).

`run` runs `clipneg eval` on that dataset with the backbone's COCO job (precision = auto, full
similarity on, as shipped) and parses its `stages:` line; then, unless --no-torch, the PyTorch loop:
the same images decoded by PIL in a DataLoader (8 workers) and preprocessed as open_clip does, the
same rendered texts (read back from clipneg's file, /texts/text) tokenised by open_clip, both towers
in fp16 on the GPU, L2-normalised, paired and full image x text similarities (fp32 GEMM, stored
float16) and the embeddings written with h5py. Random weights on both sides (speed only). The JSON
printed last (and written to --out-json) holds both breakdowns; run.py turns it into a table.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STAGES = ["decode", "tokenize", "text_tower", "image_tower", "similarity", "io", "other"]


# ---- make ------------------------------------------------------------------------------------------------
def make(src, out, n_images):
    with open(os.path.join(src, "annotations", "captions_val2017.json")) as f:
        caps = json.load(f)
    inst_path = os.path.join(src, "annotations", "instances_val2017.json")
    inst = json.load(open(inst_path)) if os.path.exists(inst_path) else None
    images = sorted(caps["images"], key=lambda im: im["id"])
    by_image, inst_by_image = {}, {}
    for a in caps["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    for a in (inst["annotations"] if inst else []):
        inst_by_image.setdefault(a["image_id"], []).append(a)
    os.makedirs(os.path.join(out, "val2017"), exist_ok=True)
    os.makedirs(os.path.join(out, "annotations"), exist_ok=True)
    new_images, new_caps, new_inst = [], [], []
    for k in range(n_images):
        im = images[k % len(images)]
        nid = 1000000 + k  # new ids, in the order of the copies
        name = f"{nid:012d}.jpg"
        link = os.path.join(out, "val2017", name)
        if not os.path.lexists(link):
            os.symlink(os.path.abspath(os.path.join(src, "val2017", im["file_name"])), link)
        new_images.append(dict(im, id=nid, file_name=name))
        for a in by_image.get(im["id"], []):
            new_caps.append(dict(a, id=len(new_caps) + 1, image_id=nid))
        for a in inst_by_image.get(im["id"], []):
            new_inst.append(dict(a, id=len(new_inst) + 1, image_id=nid))
    with open(os.path.join(out, "annotations", "captions_val2017.json"), "w") as f:
        json.dump(dict(caps, images=new_images, annotations=new_caps), f)
    if inst:
        with open(os.path.join(out, "annotations", "instances_val2017.json"), "w") as f:
            json.dump(dict(inst, images=new_images, annotations=new_inst), f)
    print(f"wrote {out}: {len(new_images)} images (links to {len(images)} files), {len(new_caps)} captions, "
          f"{len(new_inst)} object annotations")
    return len(new_images), len(new_caps)


# ---- clipneg ---------------------------------------------------------------------------------------------
def parse_stages(text):
    """The `stages (...): NAME=MAX/MEAN ... total=T` line of clipneg eval -> {name: max seconds}."""
    for line in text.splitlines():
        if "stages (s, max/mean over" in line:
            vals = {k: float(a) for k, a, _ in re.findall(r" (\w+)=([0-9.eE+-]+)/([0-9.eE+-]+)", line)}
            vals["total"] = float(re.search(r"total=([0-9.]+)", line).group(1))
            return vals
    return None


def run_clipneg(args, out_dir):
    job = os.path.join(ROOT, "jobs", f"coco-val2017-{args.job}.ini")
    env = dict(os.environ, CLIPNEG_COCO=os.path.abspath(args.data), CLIPNEG_OUT=out_dir,
               CLIPNEG_MODELS=os.path.dirname(os.path.abspath(args.model)), CLIPNEG_PROGRESS_INTERVAL="10")
    if args.bpe:
        env["CLIPNEG_BPE"] = os.path.abspath(args.bpe)
    clipneg = os.path.join(args.build, "clipneg")
    cmd = [clipneg, "eval", job, "--fresh", "--set", f"model.path={os.path.abspath(args.model)}"]
    if args.max_images:
        cmd += ["--set", f"dataset.max_images={args.max_images}"]
    for s in args.set or []:
        cmd += ["--set", s]
    if args.np > 1:
        cmd = ["mpirun", "--allow-run-as-root", "-n", str(args.np)] + cmd
    print("+", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    sys.stderr.write(p.stderr[-4000:])
    if p.returncode != 0:
        return {"error": f"clipneg eval exited {p.returncode}: {p.stderr.strip().splitlines()[-1:]}"}, None
    out = re.search(r"done: (\S+) complete", p.stderr)
    return {"wall": wall, "stages": parse_stages(p.stderr)}, out.group(1) if out else None


# ---- the PyTorch + open_clip loop ------------------------------------------------------------------------
def run_torch(args, h5_clipneg, out_dir):
    import h5py
    import numpy as np
    import torch
    import open_clip
    from PIL import Image

    dev = args.device
    if dev == "cuda" and not torch.cuda.is_available():
        return {"error": f"torch {torch.__version__} sees no GPU"}
    dtype = torch.float16 if dev == "cuda" else torch.float32  # --device cpu: a dry run of this code
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    st = dict.fromkeys(STAGES, 0.0)
    t_all = time.perf_counter()

    def lap(name, t):
        now = time.perf_counter()
        st[name] += now - t
        return now

    t = time.perf_counter()
    with h5py.File(h5_clipneg, "r") as f:
        texts = [s.decode() if isinstance(s, bytes) else s for s in f["texts/text"][()]]
        files = [s.decode() if isinstance(s, bytes) else s for s in f["images/file_name"][()]]
        cap_image = f["captions/image_index"][()] if "captions/image_index" in f else None
    V = len(texts) // max(1, len(cap_image) if cap_image is not None else 1)
    t = lap("io", t)
    model, _, preprocess = open_clip.create_model_and_transforms(args.shape, pretrained=None)
    model = model.to(dev, dtype).eval()
    tokenizer = open_clip.get_tokenizer(args.shape)
    t = lap("other", t)

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return len(files)

        def __getitem__(self, i):
            return preprocess(Image.open(os.path.join(args.data, "val2017", files[i])).convert("RGB"))

    loader = torch.utils.data.DataLoader(Images(), batch_size=args.image_batch, num_workers=args.workers)
    img_emb = []
    t = time.perf_counter()
    with torch.inference_mode():
        for x in loader:
            t = lap("decode", t)
            e = model.encode_image(x.to(dev, non_blocking=True).to(dtype)).float()
            img_emb.append(torch.nn.functional.normalize(e, dim=-1))
            sync()
            t = lap("image_tower", t)
        # the rendered texts only ("" = variant not applicable: a NaN row, as in clipneg's file)
        rendered = [i for i, s in enumerate(texts) if s]
        txt_emb = []
        for b0 in range(0, len(rendered), args.text_batch):
            ids = tokenizer([texts[i] for i in rendered[b0:b0 + args.text_batch]])
            t = lap("tokenize", t)
            e = model.encode_text(ids.to(dev)).float()
            txt_emb.append(torch.nn.functional.normalize(e, dim=-1))
            sync()
            t = lap("text_tower", t)
        I = torch.cat(img_emb)
        T = torch.full((len(texts), I.shape[1]), float("nan"), device=dev)
        T[torch.as_tensor(rendered, device=dev)] = torch.cat(txt_emb)
        path = os.path.join(out_dir, "torch-loop.h5")
        with h5py.File(path, "w") as f:
            f["embeddings/image"] = I.cpu().numpy()
            f["embeddings/text"] = T.cpu().numpy()
            t = lap("io", t)
            if cap_image is not None:
                ci = torch.as_tensor(np.repeat(cap_image.astype(np.int64), V)[:len(texts)], device=dev)
                paired = (I[ci] * T).sum(-1).cpu().numpy()
                t = lap("similarity", t)
                f["similarity/paired"] = paired
                t = lap("io", t)
            full = f.create_dataset("similarity/full", (I.shape[0], T.shape[0]), dtype="f2")
            tile = 16384
            for t0 in range(0, T.shape[0], tile):
                block = (I @ T[t0:t0 + tile].T).half().cpu().numpy()
                t = lap("similarity", t)
                full[:, t0:t0 + block.shape[1]] = block
                t = lap("io", t)
    total = time.perf_counter() - t_all
    st["total"] = total
    return {"wall": total, "stages": st, "images": len(files), "texts": len(texts)}


def gpu_busy(stages):
    """Upper bound of the GPU's busy share: the towers and similarity (their host transfers included)."""
    if not stages or not stages.get("total"):
        return None
    return min(1.0, (stages["text_tower"] + stages["image_tower"] + stages["similarity"]) / stages["total"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--src", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--images", type=int, default=5000)
    r = sub.add_parser("run")
    r.add_argument("--data", required=True)
    r.add_argument("--model", required=True, help="model folder (e.g. a make_fixtures.py --full output)")
    r.add_argument("--shape", default="ViT-B-32", help="open_clip architecture of the model")
    r.add_argument("--job", default=None, help="jobs/coco-val2017-JOB.ini (default: from --shape)")
    r.add_argument("--bpe", default=None, help="CLIP BPE vocabulary (default: the job's)")
    r.add_argument("--build", default=os.path.join(ROOT, "build"))
    r.add_argument("--out-dir", default=None, help="where the .h5 files go (default: DATA/out)")
    r.add_argument("--out-json", default=None)
    r.add_argument("--max-images", type=int, default=0)
    r.add_argument("--np", type=int, default=1)
    r.add_argument("--set", action="append", help="extra --set section.key=value for clipneg eval")
    r.add_argument("--no-torch", action="store_true")
    r.add_argument("--image-batch", type=int, default=256)
    r.add_argument("--text-batch", type=int, default=1024)
    r.add_argument("--workers", type=int, default=8)
    r.add_argument("--device", default="cuda", help="torch loop device (cpu: a dry run of the code path)")
    args = ap.parse_args()
    if args.cmd == "make":
        make(args.src, args.out, args.images)
        return
    if args.job is None:
        args.job = {"ViT-B-32": "vitb32", "ViT-B-16": "vitb16", "ViT-L-14": "vitl14", "ViT-L-14-336": "vitl14-336",
                    "RN50x16": "rn50x16"}[args.shape]
    out_dir = os.path.abspath(args.out_dir or os.path.join(args.data, "out"))
    os.makedirs(out_dir, exist_ok=True)
    res = {"shape": args.shape}
    res["clipneg"], h5 = run_clipneg(args, out_dir)
    if args.no_torch:
        res["torch"] = {"error": "--no-torch"}
    elif not h5:
        res["torch"] = {"error": "no clipneg file to take the texts from"}
    else:
        try:
            res["torch"] = run_torch(args, h5, out_dir)
        except Exception as e:  # a missing package on the machine: say so in the table
            res["torch"] = {"error": f"{type(e).__name__}: {e}"}
    for side in ("clipneg", "torch"):
        res[side]["gpu_busy_max"] = gpu_busy(res[side].get("stages"))
    text = json.dumps(res)
    print(text)
    if args.out_json:
        with open(args.out_json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
