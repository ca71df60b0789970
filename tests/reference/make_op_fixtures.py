#!/usr/bin/env python3
"""Per-op golden data for tests/test_ops.c, computed with PyTorch (float64) and open_clip.

Usage:  .venv/bin/python tests/reference/make_op_fixtures.py [--out tests/fixtures/ops]

Inputs are drawn in float32 (seeded), the reference outputs are computed in float64 from exactly
those float32 values and stored rounded to float32, so the C ops (fp32) are compared against the
exact answer, not against another fp32 implementation's rounding.

File format (little endian), one file per case, <case>.bin:
    b"CNOPFIX1", u32 n_tensors, then per tensor:
    u16 name_len, name (utf-8), u8 ndim, u32 dims[ndim], float32 data[prod(dims)]
Integer parameters (shapes, strides) are stored as a float32 tensor "params" (exact small ints).
"""
import argparse
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F


def write_case(out_dir, name, tensors):
    path = os.path.join(out_dir, name + ".bin")
    with open(path, "wb") as f:
        f.write(b"CNOPFIX1")
        f.write(struct.pack("<I", len(tensors)))
        for key, value in tensors.items():
            arr = np.ascontiguousarray(np.asarray(value, dtype=np.float32))
            kb = key.encode()
            f.write(struct.pack("<H", len(kb)))
            f.write(kb)
            f.write(struct.pack("<B", arr.ndim))
            for d in arr.shape:
                f.write(struct.pack("<I", d))
            f.write(arr.astype("<f4").tobytes())
    return path


def randn(gen, *shape, scale=1.0, offset=0.0):
    return (torch.randn(*shape, generator=gen, dtype=torch.float32) * scale + offset)


def f64(t):
    return t.to(torch.float64)


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "fixtures", "ops"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    g = torch.Generator().manual_seed(1234)
    written = []

    # layernorm: rows with a large common offset (as the ViT residual stream has), eps 1e-5
    N, C = 7, 37
    x = randn(g, N, C, scale=3.0, offset=50.0)
    w, b = randn(g, C), randn(g, C)
    out = F.layer_norm(f64(x), (C,), f64(w), f64(b), eps=1e-5)
    written.append(write_case(args.out, "layernorm", dict(params=[N, C], inp=x, w=w, b=b, out=out)))

    # matmul (Linear layout [OC, C], with and without bias) and matmul_nn ([C, OC])
    N, C, OC = 9, 19, 23
    x = randn(g, N, C)
    w = randn(g, OC, C)
    bias = randn(g, OC)
    w_nn = randn(g, C, OC)
    written.append(write_case(args.out, "matmul", dict(
        params=[N, C, OC], inp=x, weight=w, bias=bias, weight_nn=w_nn,
        out_bias=F.linear(f64(x), f64(w), f64(bias)), out_nobias=F.linear(f64(x), f64(w)),
        out_nn=f64(x) @ f64(w_nn))))

    # activations over a wide range, including the saturated tails and values far past the point
    # where exp() over/underflows in float32 (|1.702 x| > 88)
    extremes = torch.tensor([-1e4, -300.0, -60.0, -52.0, 52.0, 60.0, 300.0, 1e4])
    x = torch.cat([torch.linspace(-12, 12, 2001), randn(g, 999, scale=3.0), extremes]).to(torch.float32)
    xd = f64(x)
    written.append(write_case(args.out, "activations", dict(
        inp=x, gelu=F.gelu(xd), quick_gelu=xd * torch.sigmoid(1.702 * xd))))

    # attention core: qkv [B, T, 3C] -> [B, T, C], softmax(q k^T / sqrt(hs)) v, causal and not
    B, T, C, NH = 2, 9, 24, 3
    hs = C // NH
    qkv = randn(g, B, T, 3 * C, scale=2.0)
    q, k, v = f64(qkv).split(C, dim=-1)
    heads = lambda t: t.view(B, T, NH, hs).transpose(1, 2)  # [B, NH, T, hs]
    scores = heads(q) @ heads(k).transpose(-1, -2) / np.sqrt(hs)
    full = (torch.softmax(scores, -1) @ heads(v)).transpose(1, 2).reshape(B, T, C)
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)  # open_clip's build_attention_mask
    causal = (torch.softmax(scores + mask, -1) @ heads(v)).transpose(1, 2).reshape(B, T, C)
    written.append(write_case(args.out, "attention", dict(params=[B, T, C, NH], qkv=qkv, out=full,
                                                          out_causal=causal)))

    # conv2d: (B, IC, H, OC, K, S, P, has_bias); the last is the ViT patch conv shape
    conv_cases = [(2, 3, 11, 5, 3, 2, 1, 1), (2, 6, 5, 4, 1, 1, 0, 1), (1, 4, 7, 3, 3, 1, 1, 0),
                  (2, 3, 8, 6, 4, 4, 0, 0)]
    for i, (B, IC, H, OC, K, S, P, hb) in enumerate(conv_cases):
        x = randn(g, B, IC, H, H)
        w = randn(g, OC, IC, K, K, scale=0.5)
        bias = randn(g, OC) if hb else torch.zeros(OC)
        out = F.conv2d(f64(x), f64(w), f64(bias) if hb else None, stride=S, padding=P)
        written.append(write_case(args.out, f"conv2d_{i}", dict(params=[B, IC, H, OC, K, S, P, hb], inp=x,
                                                                 weight=w, bias=bias, out=out)))

    # avgpool kernel = stride = k (including an odd size that floors)
    for i, (B, C, H, k) in enumerate([(2, 3, 8, 2), (1, 2, 9, 2), (2, 4, 12, 3)]):
        x = randn(g, B, C, H, H)
        out = torch.nn.AvgPool2d(k)(f64(x))
        written.append(write_case(args.out, f"avgpool_{i}", dict(params=[B, C, H, k], inp=x, out=out)))

    # patch embedding: im2patch + matmul == conv(kernel = stride = P), R not a multiple of P
    B, R, P, W = 2, 10, 4, 6
    img = randn(g, B, 3, R, R)
    w = randn(g, W, 3, P, P, scale=0.3)
    out = F.conv2d(f64(img), f64(w), stride=P)  # [B, W, G, G]
    tokens = out.flatten(2).transpose(1, 2)     # [B, G*G, W]
    written.append(write_case(args.out, "patch_embed", dict(params=[B, R, P, W], img=img, weight=w, out=tokens)))

    # attention pooling: open_clip's own AttentionPool2d module, run in float64
    from open_clip.modified_resnet import AttentionPool2d
    spacial, E, NH, OD, B = 3, 32, 4, 16, 2
    torch.manual_seed(99)
    pool = AttentionPool2d(spacial, E, NH, OD)
    with torch.no_grad():
        for lin in (pool.q_proj, pool.k_proj, pool.v_proj, pool.c_proj):
            lin.bias.copy_(torch.randn(lin.bias.shape, generator=g) * 0.1)
    pool = pool.eval()
    x = randn(g, B, E, spacial, spacial)
    with torch.no_grad():
        out = pool.double()(f64(x))
    sd = {k: v.to(torch.float32) for k, v in pool.state_dict().items()}
    written.append(write_case(args.out, "attnpool", dict(
        params=[B, E, spacial * spacial, NH, OD], inp=x, pos_emb=sd["positional_embedding"],
        q_w=sd["q_proj.weight"], q_b=sd["q_proj.bias"], k_w=sd["k_proj.weight"], k_b=sd["k_proj.bias"],
        v_w=sd["v_proj.weight"], v_b=sd["v_proj.bias"], c_w=sd["c_proj.weight"], c_b=sd["c_proj.bias"],
        out=out)))

    total = sum(os.path.getsize(p) for p in written)
    print(f"wrote {len(written)} cases, {total} bytes, to {os.path.normpath(args.out)}")


if __name__ == "__main__":
    main()
