#!/usr/bin/env bash
# device-prep.sh — run HERE (a machine with apt and pip), once, before bench/gpu/device-check.sh is
# run on a GPU machine that has nvcc, cmake and python3 with torch/transformers/h5py but nothing
# else and no network (the project's lent H200 machines, /work/.library/device/KINDS.md). Fills
# two git-ignored folders inside the checkout, which travel with it:
#   shared/data/   coco-mini (the 79 captioned images + annotations, ~13 MB) and the CLIP BPE file:
#                  the ../shared beside a checkout does not travel, a shared/ inside it does
#   .devcarry/     debs/ the C libraries clipneg links (OpenMPI, parallel HDF5, OpenBLAS, cJSON, inih,
#                  stb: Debian 12 packages, ~25 MB, unpacked there with dpkg -x into a prefix) and
#                  whl/ open_clip 2.24 + ftfy + wcwidth (pure Python: random checkpoints and the
#                  PyTorch loop of e2e.py)
# Then call the device with carry [".devcarry"] and `bash bench/gpu/device-check.sh`.
# Total with the tracked files: ~52 MB of the 64 MiB a call may send.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
SRC=${CLIPNEG_SHARED:-$ROOT/../shared}

exclude=$(git rev-parse --git-path info/exclude)
for p in /shared/ /.devcarry/; do grep -qxF "$p" "$exclude" 2>/dev/null || echo "$p" >>"$exclude"; done

# ---- data: the captioned coco-mini images only, and the BPE vocabulary ----
mkdir -p shared/data/coco-mini/val2017 shared/data/coco-mini/annotations shared/data/clip-bpe
cp "$SRC"/data/coco-mini/annotations/*.json shared/data/coco-mini/annotations/
python3 - "$SRC/data/coco-mini" shared/data/coco-mini <<'EOF'
import json, os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
for im in json.load(open(os.path.join(src, "annotations", "captions_val2017.json")))["images"]:
    shutil.copy2(os.path.join(src, "val2017", im["file_name"]), os.path.join(dst, "val2017", im["file_name"]))
EOF
cp "$SRC"/data/clip-bpe/* shared/data/clip-bpe/

# ---- C libraries (Debian 12 packages; no dependencies resolved beyond this list) ----
DEBS=(libopenmpi-dev libopenmpi3 openmpi-bin openmpi-common libhdf5-openmpi-dev libhdf5-openmpi-103-1
  libhdf5-openmpi-hl-100 libopenblas-dev libopenblas0-pthread libopenblas-pthread-dev libopenblas0
  libstb-dev libstb0 libcjson-dev libcjson1 libinih-dev libinih1 libinireader0 libpmix2 libhwloc15
  libhwloc-plugins libevent-core-2.1-7 libevent-pthreads-2.1-7 libevent-2.1-7 libfabric1 libucx0 libpsm2-2
  libpsm-infinipath1 librdmacm1 libibverbs1 ibverbs-providers libnl-3-200 libnl-route-3-200 libaec0 libsz2
  libgfortran5 libmunge2 libnuma1 libxnvctrl0 libpciaccess0 libltdl7 libcurl4)
mkdir -p .devcarry/debs .devcarry/whl
(cd .devcarry/debs && for p in "${DEBS[@]}"; do ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download "$p" >/dev/null; done)

# ---- Python wheels (pure Python; torch, timm, huggingface_hub, regex are on the GPU machine) ----
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  -d .devcarry/whl open_clip_torch==2.24.0 ftfy==6.1.3 wcwidth==0.2.13

du -sh shared .devcarry
echo "[device-prep] ok: now run  bash bench/gpu/device-check.sh  on the GPU machine with carry [\".devcarry\"]"
