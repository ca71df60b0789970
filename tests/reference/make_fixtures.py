#!/usr/bin/env python3
"""make_fixtures.py — golden CLIP checkpoints and outputs for the C loader and encoder tests.

Everything here is produced by the independent reference implementations (open_clip 2.24.0 builds and
runs the models; transformers' CLIPModel proves and writes the HF layout), never by clipneg.

Regenerate all committed fixtures (from the repository root; seeded, deterministic, ~1 minute on CPU):

    .venv/bin/python tests/reference/make_fixtures.py

writes tests/fixtures/models/<name>/ for
    vit-tiny-openclip  tiny ViT + text, open_clip layout: open_clip_model.safetensors + open_clip_config.json
                       (as the HF hub ships open_clip models); exact GELU.
    vit-tiny-hf        the SAME weights in the HF transformers CLIPModel layout: model.safetensors +
                       config.json written by CLIPModel.save_pretrained (q/k/v split, projections transposed).
    rn-tiny-openclip   tiny ModifiedResNet + text, open_clip layout; QuickGELU; BatchNorm stats randomised.
each with expected.safetensors:
    tokens        int64 [N, 77]   open_clip tokenizer output for the captions in __metadata__["texts"]
    text_embeds   f32   [N, D]    model.encode_text(tokens) (NOT normalised)
    pixels        f32   [M,3,R,R] open_clip's own eval preprocess (PIL bicubic) of __metadata__["images"]
    image_embeds  f32   [M, D]    model.encode_image(pixels) (NOT normalised)
    logit_scale   f32   [1]       exp(model.logit_scale)
    folded/<conv>.weight|bias     (ResNet only) two convs with their BatchNorm folded by torch's
                                  fuse_conv_bn_weights: the reference for the loader's folding
and __metadata__ holding the architecture the loader must infer (every ClipConfig field, as strings).
The outputs come from the ROUND-TRIPPED weights (the saved file loaded back into a fresh open_clip model),
so the float16/bfloat16 rounding of the stored tensors is part of the reference.

A seeded random FULL-SIZE model (not committed; for the full-size encoder test):

    .venv/bin/python tests/reference/make_fixtures.py --full ViT-B-32 --out /tmp/vitb32 [--dtype f16]

NAME is one of ViT-B-32, ViT-B-16, ViT-L-14, ViT-L-14-336, RN50x16 (OpenAI shapes, QuickGELU). It writes
open_clip_model.safetensors + open_clip_config.json + expected.safetensors (a few images/texts) to DIR.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from torch import nn

import open_clip
from open_clip.model import CLIP
from PIL import Image
from safetensors.torch import load_file, save_file

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("CLIPNEG_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
COCO_IMAGES = os.path.join(SHARED, "data", "coco-mini", "val2017")
COCO_CAPTIONS = os.path.join(SHARED, "data", "coco-mini", "annotations", "captions_val2017.json")
OUT_ROOT = os.path.join(REPO, "tests", "fixtures", "models")

# Six images: the first five by file name (landscape and portrait) plus a greyscale one ("L" mode),
# so the RGB conversion of the preprocess is part of the reference.
IMAGES = ["000000000139.jpg", "000000000802.jpg", "000000011813.jpg", "000000012280.jpg",
          "000000018575.jpg", "000000431848.jpg"]

# ---- tiny architectures ----------------------------------------------------------------------
# Widths are chosen so that no two dimensions coincide (a transposed projection or a swapped
# width changes a shape and fails loudly), and head counts differ from the OpenAI default
# width/64 (so a loader that ignores the config gets them wrong).
TEXT_CFG = dict(context_length=77, vocab_size=49408, width=16, heads=2, layers=2)
TINY = {
    "vit-tiny": dict(
        embed_dim=24, quick_gelu=False,
        vision_cfg=dict(image_size=32, layers=2, width=64, head_width=32, patch_size=8),
        text_cfg=TEXT_CFG),
    "rn-tiny": dict(
        embed_dim=20, quick_gelu=True,
        vision_cfg=dict(image_size=64, layers=[1, 1, 1, 1], width=8, head_width=32, patch_size=None),
        text_cfg=TEXT_CFG),
}
# Stored dtypes: the 49408-row token embedding dominates the size, so it goes to 16 bits; a few more
# tensors are stored in float16/bfloat16 so both conversion paths meet ordinary weights too.
STORE_DTYPES = {
    "vit-tiny": {"token_embedding.weight": torch.float16,
                 "positional_embedding": torch.bfloat16,
                 "visual.transformer.resblocks.0.attn.in_proj_weight": torch.float16,
                 "visual.transformer.resblocks.0.mlp.c_proj.weight": torch.bfloat16,
                 "visual.transformer.resblocks.1.mlp.c_fc.weight": torch.bfloat16,
                 "visual.transformer.resblocks.1.mlp.c_proj.weight": torch.float16},
    "rn-tiny": {"token_embedding.weight": torch.bfloat16,
                "visual.attnpool.q_proj.weight": torch.float16,
                "visual.attnpool.k_proj.weight": torch.float16,
                "visual.attnpool.v_proj.weight": torch.bfloat16,
                "visual.layer3.0.conv2.weight": torch.bfloat16,
                "visual.layer4.0.conv1.weight": torch.float16,
                "visual.layer4.0.conv2.weight": torch.float16,
                "visual.layer4.0.conv3.weight": torch.bfloat16,
                "visual.layer4.0.downsample.0.weight": torch.float16,
                "transformer.resblocks.0.mlp.c_proj.weight": torch.bfloat16},
}

# ---- full-size OpenAI shapes (--full) ----------------------------------------------------------
FULL_NAMES = {"ViT-B-32": "ViT-B/32", "ViT-B-16": "ViT-B/16", "ViT-L-14": "ViT-L/14",
              "ViT-L-14-336": "ViT-L/14@336px", "RN50x16": "RN50x16"}


def captions():
    """~15 texts: six COCO captions, their negations, and three tokenizer edge cases."""
    with open(COCO_CAPTIONS) as f:
        coco = json.load(f)
    first = {}
    for a in sorted(coco["annotations"], key=lambda a: (a["image_id"], a["id"])):
        first.setdefault(a["image_id"], a["caption"].strip())
    base = [first[k] for k in sorted(first)[:6]]
    neg = ["This is not " + c[0].lower() + c[1:].rstrip(".") for c in base]
    long = " ".join(base)  # > 77 tokens: truncated, EOT forced into the last slot
    return base + neg + ["", "A café's 2 DOGS — running!!  ok?", long]


def randomise(model, gen):
    """open_clip's init leaves LayerNorm at (1, 0), biases at 0 and ResNet bn3 at 0: randomise them so
    a bug in any of those paths changes the outputs. Weights keep open_clip's own init."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(m.running_var.shape, generator=gen))
        for name, p in model.named_parameters():
            if name.endswith("bias") and "ln" not in name and "bn" not in name and "downsample.1" not in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))


def preprocess_images(size):
    tf = open_clip.image_transform(size, is_train=False)  # Resize(bicubic) + CenterCrop + RGB + Normalize
    return torch.stack([tf(Image.open(os.path.join(COCO_IMAGES, f))) for f in IMAGES])


def build(cfg, seed):
    torch.manual_seed(seed)
    model = CLIP(**cfg)
    randomise(model, torch.Generator().manual_seed(seed + 1))
    return model.eval()


def save_openclip(model, cfg, out_dir, dtypes, default_dtype=None):
    """open_clip_model.safetensors + open_clip_config.json, as open_clip's push_to_hf_hub writes them."""
    os.makedirs(out_dir, exist_ok=True)
    sd = {}
    for k, v in model.state_dict().items():
        v = v.detach().clone().contiguous()
        if v.is_floating_point():
            v = v.to(dtypes.get(k, default_dtype or v.dtype))
        sd[k] = v
    save_file(sd, os.path.join(out_dir, "open_clip_model.safetensors"))
    hub_cfg = {"model_cfg": cfg,
               "preprocess_cfg": {"mean": list(open_clip.OPENAI_DATASET_MEAN),
                                  "std": list(open_clip.OPENAI_DATASET_STD)}}
    with open(os.path.join(out_dir, "open_clip_config.json"), "w") as f:
        json.dump(hub_cfg, f, indent=2)
    return sd


def reload_openclip(cfg, out_dir):
    """A fresh fp32 open_clip model with the saved weights: the round trip the references come from."""
    model = CLIP(**cfg).eval()
    model.load_state_dict(load_file(os.path.join(out_dir, "open_clip_model.safetensors")), strict=True)
    return model


def expected_config(cfg, model):
    """Every ClipConfig field, derived from the open_clip config (independently of clipneg)."""
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    resnet = isinstance(v["layers"], (list, tuple))
    head_width = v.get("head_width", 64)
    meta = {
        "vision_kind": "resnet" if resnet else "vit",
        "image_size": v["image_size"],
        "embed_dim": cfg["embed_dim"],
        "patch_size": 0 if resnet else v["patch_size"],
        "vision_width": v["width"],
        "vision_layers": 0 if resnet else v["layers"],
        "vision_heads": v["width"] * 32 // head_width if resnet else v["width"] // head_width,
        "resnet_layers": ",".join(str(x) for x in (v["layers"] if resnet else [0, 0, 0, 0])),
        "vision_mlp": 0 if resnet else int(v["width"] * v.get("mlp_ratio", 4.0)),
        "vocab_size": t["vocab_size"],
        "context_length": t["context_length"],
        "text_width": t["width"],
        "text_heads": t["heads"],
        "text_layers": t["layers"],
        "text_mlp": int(t["width"] * t.get("mlp_ratio", 4.0)),
        "quick_gelu": int(bool(cfg.get("quick_gelu", False))),
        "ln_eps": 1e-5,
        "logit_scale": float(model.logit_scale.exp()),
    }
    # Parameter count after BatchNorm folding: every float tensor except logit_scale and the BN
    # tensors, plus one bias per folded conv (BN output channels).
    n_params, n_used = 0, 0
    for k, p in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        n_used += 1
        if k == "logit_scale":
            continue
        is_bn = ".bn" in k or "downsample.1." in k
        if is_bn:
            n_params += p.numel() if k.endswith(".bias") else 0
        else:
            n_params += p.numel()
    meta["n_params"] = n_params
    meta["n_tensors"] = n_used
    return {k: str(v) for k, v in meta.items()}


def folded_convs(model):
    """ModifiedResNet: two convolutions with their BatchNorm folded in by torch's own fusion helper
    (the stem's first conv, and a downsample conv), so the loader's folding has a reference."""
    from torch.nn.utils.fusion import fuse_conv_bn_weights
    v = model.visual
    if not hasattr(v, "attnpool"):
        return {}
    out = {}
    for name, conv, bn in [("visual.conv1", v.conv1, v.bn1),
                           ("visual.layer2.0.downsample.0", v.layer2[0].downsample[1], v.layer2[0].downsample[2])]:
        with torch.no_grad():
            w, b = fuse_conv_bn_weights(conv.weight, None, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
        out[f"folded/{name}.weight"] = w.detach().float().contiguous()
        out[f"folded/{name}.bias"] = b.detach().float().contiguous()
    return out


def write_expected(model, cfg, out_dir, texts, extra_meta):
    tokens = open_clip.tokenize(texts)
    pixels = preprocess_images(cfg["vision_cfg"]["image_size"])
    with torch.no_grad():
        text_embeds = model.encode_text(tokens, normalize=False)
        image_embeds = model.encode_image(pixels, normalize=False)
    meta = expected_config(cfg, model)
    meta.update(extra_meta)
    meta["texts"] = json.dumps(texts)
    meta["images"] = json.dumps(IMAGES[:pixels.shape[0]])
    tensors = {"tokens": tokens.to(torch.int64).contiguous(),
               "text_embeds": text_embeds.float().contiguous(),
               "pixels": pixels.float().contiguous(),
               "image_embeds": image_embeds.float().contiguous(),
               "logit_scale": model.logit_scale.exp().reshape(1).float().contiguous()}
    tensors.update(folded_convs(model))
    save_sorted(tensors, os.path.join(out_dir, "expected.safetensors"), meta)
    return tensors


def save_sorted(tensors, path, meta):
    """safetensors.save_file, with the header re-serialised with sorted keys: the library writes the
    __metadata__ map in hash order, which would make every regeneration a spurious git diff."""
    from safetensors.torch import save
    blob = save(tensors, metadata=meta)
    n = int.from_bytes(blob[:8], "little")
    header = json.dumps(json.loads(blob[8:8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # keep the data section 8-byte aligned, as the library does
    with open(path, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header + blob[8 + n:])


# ---- HF transformers CLIPModel layout ----------------------------------------------------------
def openclip_to_hf(sd, layers_v, layers_t):
    """open_clip ViT state dict -> transformers CLIPModel state dict (written independently of the
    C loader; transformers' own convert_clip_original_pytorch_to_hf.py does the same mapping)."""
    hf = {}

    def block(src, dst):
        q, k, v = sd[src + "attn.in_proj_weight"].chunk(3, dim=0)
        qb, kb, vb = sd[src + "attn.in_proj_bias"].chunk(3, dim=0)
        hf.update({dst + "self_attn.q_proj.weight": q, dst + "self_attn.k_proj.weight": k,
                   dst + "self_attn.v_proj.weight": v, dst + "self_attn.q_proj.bias": qb,
                   dst + "self_attn.k_proj.bias": kb, dst + "self_attn.v_proj.bias": vb})
        for a, b in [("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
                     ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")]:
            hf[dst + b + ".weight"] = sd[src + a + ".weight"]
            hf[dst + b + ".bias"] = sd[src + a + ".bias"]

    hf["vision_model.embeddings.class_embedding"] = sd["visual.class_embedding"]
    hf["vision_model.embeddings.patch_embedding.weight"] = sd["visual.conv1.weight"]
    hf["vision_model.embeddings.position_embedding.weight"] = sd["visual.positional_embedding"]
    for a, b in [("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")]:
        hf[f"vision_model.{b}.weight"] = sd[f"visual.{a}.weight"]
        hf[f"vision_model.{b}.bias"] = sd[f"visual.{a}.bias"]
    for i in range(layers_v):
        block(f"visual.transformer.resblocks.{i}.", f"vision_model.encoder.layers.{i}.")
    hf["visual_projection.weight"] = sd["visual.proj"].t()
    hf["text_model.embeddings.token_embedding.weight"] = sd["token_embedding.weight"]
    hf["text_model.embeddings.position_embedding.weight"] = sd["positional_embedding"]
    for i in range(layers_t):
        block(f"transformer.resblocks.{i}.", f"text_model.encoder.layers.{i}.")
    hf["text_model.final_layer_norm.weight"] = sd["ln_final.weight"]
    hf["text_model.final_layer_norm.bias"] = sd["ln_final.bias"]
    hf["text_projection.weight"] = sd["text_projection"].t()
    hf["logit_scale"] = sd["logit_scale"]
    return {k: v.contiguous() for k, v in hf.items()}


def make_hf_copy(oc_model, cfg, stored_sd, out_dir, ref):
    from transformers import CLIPConfig, CLIPModel
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    act = "quick_gelu" if cfg.get("quick_gelu", False) else "gelu"
    config = CLIPConfig(
        projection_dim=cfg["embed_dim"],
        logit_scale_init_value=float(oc_model.logit_scale),
        text_config=dict(vocab_size=t["vocab_size"], hidden_size=t["width"], intermediate_size=4 * t["width"],
                         num_hidden_layers=t["layers"], num_attention_heads=t["heads"],
                         max_position_embeddings=t["context_length"], hidden_act=act, layer_norm_eps=1e-5,
                         projection_dim=cfg["embed_dim"]),
        vision_config=dict(hidden_size=v["width"], intermediate_size=4 * v["width"],
                           num_hidden_layers=v["layers"], num_attention_heads=v["width"] // v["head_width"],
                           image_size=v["image_size"], patch_size=v["patch_size"], hidden_act=act,
                           layer_norm_eps=1e-5, projection_dim=cfg["embed_dim"]))
    fp32 = openclip_to_hf({k: p.float() for k, p in oc_model.state_dict().items()}, v["layers"], t["layers"])
    hf_model = CLIPModel(config).eval()
    hf_model.load_state_dict(fp32, strict=True)

    def check(model, what):
        # Same weights, same maths, different code: agreement within 1e-5 (absolute, outputs are O(1))
        # proves the name mapping, the q/k/v split and the projection transposes.
        with torch.no_grad():
            te = model.get_text_features(input_ids=ref["tokens"])
            ie = model.get_image_features(pixel_values=ref["pixels"])
        dt = (te - ref["text_embeds"]).abs().max().item()
        di = (ie - ref["image_embeds"]).abs().max().item()
        print(f"  {what}: max|text - open_clip| = {dt:.2e}, max|image - open_clip| = {di:.2e}")
        if not (dt < 1e-5 and di < 1e-5):
            sys.exit(f"error: transformers CLIPModel ({what}) disagrees with open_clip: conversion is wrong")

    check(hf_model, "converted CLIPModel")
    # Store each HF tensor in the dtype its open_clip source was stored in (exact: the values were
    # rounded to that dtype already), so both layouts hold bit-identical parameters.
    stored = openclip_to_hf(stored_sd, v["layers"], t["layers"])
    hf_sd = {k: fp32[k].to(stored[k].dtype).contiguous() for k in fp32}
    hf_model.save_pretrained(out_dir, state_dict=hf_sd, safe_serialization=True)
    check(CLIPModel.from_pretrained(out_dir).eval(), "reloaded from save_pretrained")
    return len(hf_sd)


# ---- drivers -----------------------------------------------------------------------------------
def make_tiny():
    texts = captions()
    torch.set_num_threads(1)
    for i, (name, cfg) in enumerate(TINY.items()):
        oc_dir = os.path.join(OUT_ROOT, f"{name}-openclip")
        print(f"{name}:")
        model = build(cfg, seed=1234 + i)
        stored = save_openclip(model, cfg, oc_dir, STORE_DTYPES[name])
        model = reload_openclip(cfg, oc_dir)
        ref = write_expected(model, cfg, oc_dir, texts, {"fixture": f"{name}-openclip", "layout": "open_clip"})
        print(f"  wrote {oc_dir}")
        if cfg["vision_cfg"]["patch_size"]:  # HF transformers has no ModifiedResNet
            hf_dir = os.path.join(OUT_ROOT, f"{name}-hf")
            os.makedirs(hf_dir, exist_ok=True)
            n_hf = make_hf_copy(model, cfg, stored, hf_dir, ref)
            write_expected(model, cfg, hf_dir, texts, {"fixture": f"{name}-hf", "layout": "hf", "n_tensors": str(n_hf)})
            print(f"  wrote {hf_dir}")
    total = 0
    for root, _, files in os.walk(OUT_ROOT):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print(f"fixtures total: {total / 1e6:.2f} MB")


def make_full(name, out_dir, dtype):
    if name not in FULL_NAMES:
        sys.exit(f"error: --full takes one of {', '.join(FULL_NAMES)}")
    cfg = dict(open_clip.get_model_config(name))
    cfg["quick_gelu"] = True  # OpenAI's weights were trained with QuickGELU
    print(f"building random {name} ({dtype}) ...")
    model = build(cfg, seed=4321)
    save_openclip(model, cfg, out_dir, {}, torch.float16 if dtype == "f16" else torch.float32)
    model = reload_openclip(cfg, out_dir)
    global IMAGES
    IMAGES = IMAGES[:2]
    texts = captions()[:2] + captions()[6:8]
    write_expected(model, cfg, out_dir, texts, {"fixture": name, "layout": "open_clip", "name": FULL_NAMES[name]})
    print(f"wrote {out_dir}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", metavar="NAME", help="write a random full-size model instead of the tiny fixtures")
    ap.add_argument("--out", metavar="DIR", help="output folder for --full")
    ap.add_argument("--dtype", choices=["f32", "f16"], default="f32", help="storage dtype for --full")
    args = ap.parse_args()
    print(f"open_clip {open_clip.version.__version__}, torch {torch.__version__}, numpy {np.__version__}")
    if args.full:
        if not args.out:
            sys.exit("error: --full needs --out DIR")
        make_full(args.full, args.out, args.dtype)
    else:
        make_tiny()


if __name__ == "__main__":
    main()
