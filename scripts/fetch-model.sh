#!/usr/bin/env bash
# fetch-model.sh — download OpenAI CLIP weights from the Hugging Face hub into models/NAME/ (idempotent).
#   scripts/fetch-model.sh NAME [DEST]      NAME: ViT-B-32 ViT-B-16 ViT-L-14 ViT-L-14-336 RN50x16
# Gets the open_clip files as the hub ships them (repo timm/<model>.openai):
#   open_clip_model.safetensors  the weights (what clipneg reads; no conversion step)
#   open_clip_config.json        the architecture (embed_dim, widths, quick_gelu, ...)
# and copies CLIP's BPE vocabulary beside them (from models/, see scripts/install-deps.sh), so the
# folder is self-contained. Files already present (non-empty) are kept; downloads go to a temporary
# name first, so an interrupted run never leaves a truncated file behind. Needs curl and internet;
# HF_ENDPOINT (mirror) and HF_TOKEN are honoured. Not run in CI.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NAME=${1:-}
case "$NAME" in
  ViT-B-32)     REPO=timm/vit_base_patch32_clip_224.openai ;;
  ViT-B-16)     REPO=timm/vit_base_patch16_clip_224.openai ;;
  ViT-L-14)     REPO=timm/vit_large_patch14_clip_224.openai ;;
  ViT-L-14-336) REPO=timm/vit_large_patch14_clip_336.openai ;;
  RN50x16)      REPO=timm/resnet50x16_clip.openai ;;
  -h|--help|"") sed -n '2,9p' "$0"; [ -n "$NAME" ]; exit $? ;;
  *) echo "fetch-model.sh: unknown model '$NAME' (ViT-B-32 ViT-B-16 ViT-L-14 ViT-L-14-336 RN50x16)" >&2; exit 2 ;;
esac
DEST=${2:-$ROOT/models/$NAME}
ENDPOINT=${HF_ENDPOINT:-https://huggingface.co}
command -v curl >/dev/null || { echo "fetch-model.sh: curl is required" >&2; exit 2; }
mkdir -p "$DEST"

# get FILE: download $REPO/FILE into $DEST unless already there. Returns 22 when the hub has no such file.
get() {
  local f=$1 out="$DEST/$1"
  if [ -s "$out" ]; then echo "[fetch-model] $out already present"; return 0; fi
  local auth=()
  [ -n "${HF_TOKEN:-}" ] && auth=(-H "Authorization: Bearer $HF_TOKEN")
  echo "[fetch-model] $ENDPOINT/$REPO/resolve/main/$f"
  if curl -fL --retry 3 --retry-delay 5 --progress-bar "${auth[@]}" -o "$out.part" "$ENDPOINT/$REPO/resolve/main/$f"; then
    mv "$out.part" "$out"
  else
    local rc=$?
    rm -f "$out.part"
    return $rc
  fi
}

get open_clip_config.json
if ! get open_clip_model.safetensors; then
  # Older hub repos ship only the PyTorch pickle: convert it once with the project's venv (torch +
  # safetensors, scripts/install-deps.sh). The pickle is loaded with weights_only where available.
  echo "[fetch-model] no open_clip_model.safetensors in $REPO: converting open_clip_pytorch_model.bin"
  get open_clip_pytorch_model.bin
  PY=${CLIPNEG_PYTHON:-$ROOT/.venv/bin/python}
  "$PY" - "$DEST" <<'PYEOF'
import os, sys, torch
from safetensors.torch import save_file
d = sys.argv[1]
try:
    sd = torch.load(os.path.join(d, "open_clip_pytorch_model.bin"), map_location="cpu", weights_only=True)
except TypeError:  # torch < 1.13 has no weights_only
    sd = torch.load(os.path.join(d, "open_clip_pytorch_model.bin"), map_location="cpu")
sd = {k: v.contiguous() for k, v in sd.items()}
save_file(sd, os.path.join(d, "open_clip_model.safetensors.part"))
os.replace(os.path.join(d, "open_clip_model.safetensors.part"), os.path.join(d, "open_clip_model.safetensors"))
PYEOF
  rm -f "$DEST/open_clip_pytorch_model.bin"  # converted: the pickle is not needed any more (GBs for ViT-L)
fi

VOCAB=bpe_simple_vocab_16e6.txt.gz
if [ ! -s "$DEST/$VOCAB" ]; then
  for src in "$ROOT/models/$VOCAB" "${CLIPNEG_SHARED:-$ROOT/../shared}/data/clip-bpe/$VOCAB"; do
    if [ -s "$src" ]; then cp "$src" "$DEST/$VOCAB"; break; fi
  done
  [ -s "$DEST/$VOCAB" ] || echo "[fetch-model] note: no $VOCAB found to copy (run scripts/install-deps.sh); set [model] tokenizer"
fi
echo "[fetch-model] $NAME ready in $DEST:"
ls -l "$DEST"
