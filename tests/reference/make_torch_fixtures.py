"""make_torch_fixtures.py — PyTorch checkpoints in every wrapper the negation papers publish, for the
PyTorch reader (src/torchfile*.c) tests. Written by torch 1.13 / open_clip 2.24 (torch.save,
torch.jit.script or trace + torch.jit.save), never by clipneg.

    .venv/bin/python tests/reference/make_torch_fixtures.py [--out DIR]   # default tests/fixtures/torch

One seeded micro open_clip CLIP (ViT, 16 wide, 2 heads, QuickGELU: an OpenAI-style model; 11k
parameters) saved as:
    bare_f32.pt          torch.save(state_dict)                     (NegationCLIP)
    bare_f16.pt          the same in float16
    bare_bf16.pth        the same in bfloat16
    openclip_train.pt    {"epoch", "name", "state_dict" (module. prefix), "optimizer" (Adam state),
                          "args": argparse.Namespace, "best": numpy.float64}  (NegCLIP / NegBench)
    conclip.pt           {"model", "optimizer", "args": argparse.Namespace}   (CoN-CLIP)
    clipbnl.pth.tar      {"epoch", "model" (clip_model. prefix), "best_perf", "config"}  (CLIP-bnl)
    jit_f16.pt           torch.jit.save of the scripted (or traced) model in float16  (OpenAI .pt)
    noncontig.pt         bare state dict whose text_projection is a transposed (non-contiguous) view
    ccneg_mini.pt        CC-Neg's ccneg_preprocessed.pt layout (CoN-CLIP ccneg_dataset): {"image_paths",
                         "annotations": [{"json": {"caption", ...}, "sop_data": {"negative-prompt", ...}}]},
                         7 entries, one image path used twice, commas in the negations
    ccneg_mini.expected.json   what format = ccneg must give for last_n = 5, image_prefix "/workspace/datasets/cc3m/":
                         upstream's rule re-implemented here (last N entries, commas removed)
and the references, from the same weights:
    ref_f32.safetensors, ref_f16.safetensors, ref_bf16.safetensors   the state dict per dtype
    expected.safetensors pixels [2,3,16,16], tokens [3,16] (EOT = the largest id), image_embeds,
                         text_embeds: open_clip's encode_image / encode_text (fp32, not normalised)
Each file is < 200 KB.

    .venv/bin/python tests/reference/make_torch_fixtures.py --corpus   # tests/fuzz/corpus/torchfile/

writes the fuzz seeds (each < 64 KiB, libFuzzer's -max_len): the micro CLIP as a float16 state dict
(loads through the whole model loader), a training-checkpoint wrapper (module. prefix, Namespace,
numpy scalar, optimizer) and a TorchScript archive of a two-module tree, both with tiny tensors.
"""
import argparse
import os
import sys

import numpy as np
import torch
from open_clip.model import CLIP
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_fixtures import randomise, save_sorted  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
CFG = dict(embed_dim=8, quick_gelu=True,
           vision_cfg=dict(image_size=16, layers=1, width=16, head_width=8, patch_size=8),
           text_cfg=dict(context_length=16, vocab_size=64, width=16, heads=2, layers=1))
SEED = 15


def build():
    torch.manual_seed(SEED)
    model = CLIP(**CFG)
    randomise(model, torch.Generator().manual_seed(SEED + 1))
    return model.eval()


def state(model, dtype=torch.float32, prefix=""):
    return {prefix + k: v.detach().clone().to(dtype) if v.is_floating_point() else v.detach().clone()
            for k, v in model.state_dict().items()}


def optimizer_state(model):
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)
    model.zero_grad()
    model.logit_scale.sum().backward()
    opt.step()
    return opt.state_dict()


def expected(model, out):
    g = torch.Generator().manual_seed(SEED + 2)
    pixels = torch.randn(2, 3, 16, 16, generator=g)
    ctx, vocab = CFG["text_cfg"]["context_length"], CFG["text_cfg"]["vocab_size"]
    tokens = torch.zeros(3, ctx, dtype=torch.int64)
    for i, n in enumerate([3, 9, ctx - 1]):  # n ordinary ids, then EOT (the largest id: argmax pooling)
        tokens[i, :n] = torch.randint(1, vocab - 1, (n,), generator=g)
        tokens[i, n] = vocab - 1
    with torch.no_grad():
        img = model.encode_image(pixels, normalize=False)
        txt = model.encode_text(tokens, normalize=False)
    save_sorted({"pixels": pixels.contiguous(), "tokens": tokens.contiguous(),
                 "image_embeds": img.float().contiguous(), "text_embeds": txt.float().contiguous()},
                os.path.join(out, "expected.safetensors"), {"source": "open_clip 2.24 fp32, make_torch_fixtures.py"})


def torchscript(model):
    try:
        return torch.jit.script(model), "script"
    except Exception:  # open_clip's CLIP does not always script; a trace keeps every module and tensor
        ex = {"encode_image": torch.zeros(1, 3, 16, 16), "encode_text": torch.zeros(1, 16, dtype=torch.int64)}
        return torch.jit.trace_module(model, ex), "trace"


def ccneg(out):
    import json
    prefix = "/workspace/datasets/cc3m/"
    names = [f"cc3m_subset_images_extracted_final/{i:09d}.jpg" for i in range(7)]
    names[5] = names[3]  # the same image for two captions
    caps = ["a dog runs on the beach", "two cups of coffee, on a table", "a red car parked outside",
            "children playing football", "a café with wooden chairs", "a bowl of fruit", "a man riding a bike"]
    negs = ["a dog, not a cat, runs on the beach", "two cups of coffee, but no table", "a red car, no driver",
            "children playing, but not football", "a café, without chairs", "a bowl, no fruit", "no man riding a bike"]
    anns = [{"json": {"caption": c, "url": f"http://example.com/{i}.jpg", "key": f"{i:09d}", "status": "success",
                      "width": 256 + i, "height": np.int64(200)},
             "sop_data": {"subject": c.split()[1], "negative-prompt": n, "score": 0.5 + i / 10}}
            for i, (c, n) in enumerate(zip(caps, negs))]
    torch.save({"image_paths": [prefix + n for n in names], "annotations": anns}, os.path.join(out, "ccneg_mini.pt"))
    last = 5  # CoN-CLIP evaluates the last 40,000 entries: [-N:]
    sel = list(range(len(names)))[-last:]
    images = []
    for i in sel:
        if names[i] not in images:
            images.append(names[i])
    items = [{"image": names[i], "caption": caps[i], "negated": negs[i].replace(",", ""), "entry": i + 1} for i in sel]
    with open(os.path.join(out, "ccneg_mini.expected.json"), "w") as f:
        json.dump({"last_n": last, "strip_prefix": prefix, "images": images, "items": items}, f, indent=1,
                  ensure_ascii=False)


def corpus(out):
    os.makedirs(out, exist_ok=True)
    torch.save(state(build(), torch.float16), os.path.join(out, "micro_clip_f16.pt"))
    torch.manual_seed(SEED)
    tree = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.LayerNorm(3))
    small = {"module." + k: v.detach().clone() for k, v in tree.state_dict().items()}
    ns = argparse.Namespace(model="ViT-B-32", lr=1e-5)
    torch.save({"epoch": 1, "name": "micro", "state_dict": small, "optimizer": {"state": {}, "param_groups": []},
                "args": ns, "best": np.float64(0.5)}, os.path.join(out, "micro_train.pt"))
    torch.jit.save(torch.jit.script(tree).half(), os.path.join(out, "micro_jit.pt"))
    for f in sorted(os.listdir(out)):
        size = os.path.getsize(os.path.join(out, f))
        assert size < 65536, f
        print(f"{f}: {size} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "fixtures", "torch"))
    ap.add_argument("--corpus", action="store_true", help="write the fuzz seeds instead")
    args = ap.parse_args()
    if args.corpus:
        return corpus(os.path.join(REPO, "tests", "fuzz", "corpus", "torchfile"))
    out = args.out
    os.makedirs(out, exist_ok=True)
    model = build()
    p = lambda name: os.path.join(out, name)  # noqa: E731
    for dt, tag in [(torch.float32, "f32"), (torch.float16, "f16"), (torch.bfloat16, "bf16")]:
        save_file(state(model, dt), p(f"ref_{tag}.safetensors"))
    expected(model, out)

    torch.save(state(model), p("bare_f32.pt"))
    torch.save(state(model, torch.float16), p("bare_f16.pt"))
    torch.save(state(model, torch.bfloat16), p("bare_bf16.pth"))
    ns = argparse.Namespace(model="ViT-B-32", lr=1e-5, batch_size=256, epochs=5, quick_gelu=True)
    torch.save({"epoch": 5, "name": "negclip-micro", "state_dict": state(model, prefix="module."),
                "optimizer": optimizer_state(build()), "args": ns, "best": np.float64(0.625)},
               p("openclip_train.pt"))
    torch.save({"model": state(model), "optimizer": optimizer_state(build()), "args": ns}, p("conclip.pt"))
    torch.save({"epoch": 9, "model": state(model, prefix="clip_model."), "best_perf": 0.41,
                "config": {"lr": 1e-6, "backbone": "ViT-B/32"}}, p("clipbnl.pth.tar"))
    scripted, how = torchscript(build())
    scripted = scripted.half()  # OpenAI's .pt archives hold float16 weights
    torch.jit.save(scripted, p("jit_f16.pt"))
    sd = state(model)
    sd["text_projection"] = sd["text_projection"].t().contiguous().t()  # same values, strides (1, 16)
    assert not sd["text_projection"].is_contiguous()
    torch.save(sd, p("noncontig.pt"))
    ccneg(out)
    for f in sorted(os.listdir(out)):
        print(f"{f}: {os.path.getsize(p(f))} bytes")
    print(f"TorchScript by {how}")


if __name__ == "__main__":
    main()
