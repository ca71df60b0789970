#!/usr/bin/env bash
# build.sh — configure and build clipneg into build/ (Release; CUDA backend when nvcc is found).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release -DCLIPNEG_CUDA="${CLIPNEG_CUDA:-AUTO}" >/dev/null
cmake --build "$ROOT/build" -j"$(nproc)"
echo "[build] $ROOT/build/clipneg"
