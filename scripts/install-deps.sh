#!/usr/bin/env bash
# install-deps.sh — install everything clipneg needs on a fresh Debian 12 machine (idempotent).
#   * Debian packages: compilers' libraries (MPI, parallel HDF5, OpenBLAS, stb, cJSON, inih, zlib),
#     SLURM + munge (for the cluster test), Python with numpy/h5py/matplotlib/scikit-learn,
#     pandas/xarray/h5netcdf (clipneg_analysis.load; the schema test opens the output with xarray) and
#     Debian's CPU-only PyTorch (python3-torch 1.13) — far lighter than PyPI's CUDA wheels.
#   * A virtualenv at .venv (with the system site-packages) adding the pinned PyPI packages below.
#   * CLIP's BPE vocabulary, from the pinned open_clip wheel (never committed to this repo).
# Set CLIPNEG_SKIP_APT=1 to skip apt (e.g. without root, when the packages are already there).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

APT_PKGS=(build-essential cmake pkg-config git clang libclang-rt-14-dev libomp-dev
  libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools
  libopenblas-dev libstb-dev libcjson-dev libinih-dev zlib1g-dev
  slurm-wlm munge
  python3 python3-venv python3-pip python3-numpy python3-h5py python3-matplotlib python3-sklearn
  python3-pil python3-regex python3-tqdm python3-yaml python3-pytest
  python3-pandas python3-xarray python3-h5netcdf
  python3-torch python3-torchvision)

# Pinned PyPI packages (reference data, analysis). open_clip 2.24.0 is the newest release that
# runs on Debian's torch 1.13; transformers 4.41.2 likewise (used to write HF-layout fixtures).
PIP_PKGS=(open_clip_torch==2.24.0 ftfy==6.1.3 wcwidth==0.2.13 safetensors==0.4.3
  huggingface_hub==0.23.4 filelock==3.15.4 fsspec==2024.6.1 requests packaging typing_extensions
  transformers==4.41.2 tokenizers==0.19.1 openTSNE==1.0.2)

if [ "${CLIPNEG_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "[install-deps] apt-get install ${missing[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "[install-deps] creating .venv (system site-packages + pinned PyPI packages)"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
if ! .venv/bin/python -c "import open_clip, transformers, openTSNE, safetensors" 2>/dev/null; then
  # --no-deps: everything else comes from Debian (torch, numpy, ...); keeps PyPI's CUDA wheels out.
  .venv/bin/pip install -q --disable-pip-version-check --no-deps "${PIP_PKGS[@]}"
fi
if ! .venv/bin/python -c "import clipneg_analysis" 2>/dev/null && [ -f analysis/pyproject.toml ]; then
  .venv/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e analysis
fi

# CLIP's BPE vocabulary: the copy inside the pinned open_clip wheel.
mkdir -p models
if [ ! -f models/bpe_simple_vocab_16e6.txt.gz ]; then
  cp "$(.venv/bin/python -c 'import open_clip, os; print(os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz"))')" models/
fi
echo "[install-deps] ok"
