#!/usr/bin/env bash
# fetch-coco.sh — download COCO 2017 validation images and annotations (idempotent).
#   scripts/fetch-coco.sh [DEST]       DEST default: $CLIPNEG_COCO, else data/coco in the repository
# Result (what jobs/coco-val2017-*.ini expect, via CLIPNEG_COCO=DEST):
#   DEST/val2017/*.jpg                          5000 images (778 MB)
#   DEST/annotations/captions_val2017.json      25014 captions
#   DEST/annotations/instances_val2017.json     object instances (used by the {swap} variants)
# Archives are downloaded to DEST/.download/*.zip.part, renamed when complete, checked with
# `unzip -t` (zip CRCs) and extracted; a second run finds everything in place and does nothing.
# Needs curl, unzip and internet (COCO_MIRROR replaces http://images.cocodataset.org). Not run in CI.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in -h|--help) sed -n '2,10p' "$0"; exit 0 ;; esac
DEST=${1:-${CLIPNEG_COCO:-$ROOT/data/coco}}
MIRROR=${COCO_MIRROR:-http://images.cocodataset.org}
for tool in curl unzip; do
  command -v $tool >/dev/null || { echo "fetch-coco.sh: $tool is required" >&2; exit 2; }
done
mkdir -p "$DEST/.download"

fetch() {  # fetch URL -> DEST/.download/NAME (kept for re-runs until extracted)
  local url=$1 out="$DEST/.download/$(basename "$1")"
  if [ ! -s "$out" ]; then
    echo "[fetch-coco] $url" >&2
    curl -fL --retry 3 --retry-delay 10 -C - --progress-bar -o "$out.part" "$url"
    mv "$out.part" "$out"
  fi
  echo "[fetch-coco] checking $(basename "$out")" >&2
  unzip -tq "$out" >/dev/null || { echo "fetch-coco.sh: $out is corrupt; delete it and re-run" >&2; exit 1; }
  echo "$out"
}

n_images() { find "$DEST/val2017" -maxdepth 1 -name '*.jpg' 2>/dev/null | wc -l; }

if [ "$(n_images)" -lt 5000 ]; then
  zip=$(fetch "$MIRROR/zips/val2017.zip" | tail -1)
  echo "[fetch-coco] extracting images"
  unzip -q -o "$zip" -d "$DEST"
  [ "$(n_images)" -ge 5000 ] || { echo "fetch-coco.sh: only $(n_images) images after extraction" >&2; exit 1; }
  rm -f "$zip"
else
  echo "[fetch-coco] $DEST/val2017: $(n_images) images already present"
fi

if [ ! -s "$DEST/annotations/captions_val2017.json" ] || [ ! -s "$DEST/annotations/instances_val2017.json" ]; then
  zip=$(fetch "$MIRROR/annotations/annotations_trainval2017.zip" | tail -1)
  echo "[fetch-coco] extracting the val2017 annotations"
  unzip -q -o "$zip" annotations/captions_val2017.json annotations/instances_val2017.json -d "$DEST"
  rm -f "$zip"
else
  echo "[fetch-coco] $DEST/annotations: captions and instances already present"
fi
rmdir "$DEST/.download" 2>/dev/null || true
echo "[fetch-coco] done: export CLIPNEG_COCO=$DEST"
