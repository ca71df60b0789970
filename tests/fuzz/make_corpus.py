"""Make the model seeds of tests/fuzz/corpus/safetensors/ with open_clip / transformers / safetensors
(never with clipneg): micro CLIPs small enough for libFuzzer (-max_len 65536) in every layout and
dtype the loader reads, so mutations start from files that get through the whole loader.

  .venv/bin/python tests/fuzz/make_corpus.py

Every tower is 8 wide (ResNet: base width 2) with 2 heads: no config travels with a single file, so
fuzz_safetensors passes vision_heads = text_heads = 2 as load options. Deterministic (seed 0).
micro_vit.safetensors (F32) was committed earlier; its F16/BF16 copies are made from it here.
"""
import os

import torch
from open_clip.model import CLIP
from safetensors.torch import load_file, save_file
from transformers import CLIPConfig, CLIPModel

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "safetensors")


def save(sd, name, dtype=None):
    sd = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).contiguous() for k, v in sd.items()}
    path = os.path.join(OUT, name)
    save_file(sd, path)
    print(f"{name}: {len(sd)} tensors, {os.path.getsize(path)} bytes")


def main():
    torch.manual_seed(0)
    vit = load_file(os.path.join(OUT, "micro_vit.safetensors"))
    save(vit, "micro_vit_f16.safetensors", torch.float16)
    save(vit, "micro_vit_bf16.safetensors", torch.bfloat16)

    # open_clip ModifiedResNet, base width 2, one bottleneck per stage (F16 keeps it under 64 KiB)
    rn = CLIP(embed_dim=4, vision_cfg=dict(layers=(1, 1, 1, 1), width=2, image_size=32, head_width=32),
              text_cfg=dict(context_length=8, vocab_size=10, width=8, heads=2, layers=1))
    sd = {k: v for k, v in rn.state_dict().items() if not k.endswith("num_batches_tracked")}
    for k, v in sd.items():  # BatchNorm variances must be >= 0 (the loader checks it): keep them positive
        if k.endswith("running_var"):
            v.uniform_(0.5, 1.5)
    save(sd, "micro_rn_f16.safetensors", torch.float16)

    # Hugging Face CLIPModel (q/k/v split, projections transposed, pre_layrnorm spelling)
    cfg = CLIPConfig(text_config=dict(vocab_size=10, hidden_size=8, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, max_position_embeddings=8),
                     vision_config=dict(hidden_size=8, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, image_size=8, patch_size=4),
                     projection_dim=4)
    hf = CLIPModel(cfg)
    save({k: v for k, v in hf.state_dict().items() if "position_ids" not in k}, "micro_hf.safetensors")


if __name__ == "__main__":
    main()
