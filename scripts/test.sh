#!/usr/bin/env bash
# test.sh — install what is missing, build, and run the whole test suite:
#   1. Release build (-Wall -Wextra -Werror; CUDA backend compiled when nvcc is present), ctest
#   2. AddressSanitizer + UBSan build of the C code, ctest again (labels that need no sanitizer excluded)
#   3. the SLURM test (real munge + slurmctld + slurmd on localhost), label `slurm`
#   4. libFuzzer targets, bounded time each (when clang is present), label `fuzz`
# Environment: JOBS (parallel ctest jobs, default 2), CLIPNEG_SKIP_ASAN=1, CLIPNEG_SKIP_SLURM=1,
# CLIPNEG_SKIP_FUZZ=1, CLIPNEG_FULLSIZE=1 (also run the full-size open_clip comparisons, label fullsize).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
JOBS=${JOBS:-2}
T0=$(date +%s)
stamp() { echo "[test.sh +$(( $(date +%s) - T0 ))s] $*"; }

bash scripts/install-deps.sh
stamp "dependencies ready"

EXCLUDE="slurm|fuzz|fullsize"
[ "${CLIPNEG_FULLSIZE:-0}" = 1 ] && EXCLUDE="slurm|fuzz"

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCLIPNEG_CUDA=AUTO >/dev/null
cmake --build build -j"$JOBS"
stamp "release build done"
ctest --test-dir build -j"$JOBS" --output-on-failure -LE "$EXCLUDE"
stamp "release suite done"

if [ "${CLIPNEG_SKIP_ASAN:-0}" != 1 ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLIPNEG_SANITIZE=ON -DCLIPNEG_CUDA=OFF >/dev/null
  cmake --build build-asan -j"$JOBS"
  # Python-driven tests exercise the same C code through the sanitized binary; the heaviest ones
  # (labels `slow`) run only in the release pass.
  ctest --test-dir build-asan -j"$JOBS" --output-on-failure -LE "$EXCLUDE|slow|cuda"
  stamp "ASan+UBSan suite done"
fi

if [ "${CLIPNEG_SKIP_SLURM:-0}" != 1 ]; then
  ctest --test-dir build --output-on-failure -L slurm
  stamp "slurm suite done"
fi

if [ "${CLIPNEG_SKIP_FUZZ:-0}" != 1 ] && [ -d tests/fuzz ] && command -v clang >/dev/null; then
  cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLIPNEG_FUZZ=ON \
        -DCLIPNEG_CUDA=OFF >/dev/null
  cmake --build build-fuzz -j"$JOBS"
  ctest --test-dir build-fuzz --output-on-failure -L fuzz
  stamp "fuzz suite done"
fi
stamp "all done"
