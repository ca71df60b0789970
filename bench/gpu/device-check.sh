#!/usr/bin/env bash
# device-check.sh — everything a short lease of a GPU machine should do for clipneg, in one go and
# within ~8 minutes (issue 17): build with CUDA, `ctest -L cuda`, the tower benchmark and the end-to-end
# run, tables written to $OUT (or out/device-check/).
#
#   bash bench/gpu/device-check.sh            (in the repository root, on the GPU machine)
#
# Prepare first, where apt and pip work: bench/gpu/device-prep.sh (data into shared/, C libraries and
# Python wheels into .devcarry/, which the call must carry). Steps and their time limits (seconds,
# environment variables of the same name change them):
#   T_BUILD=200   configure + build (Release, -DCLIPNEG_CUDA=ON, sm_80 + sm_90, all cores)
#   T_CTEST=100   ctest -L cuda without the compute-sanitizer variants (FULL=1: with them)
#   T_BENCH=100   bench/gpu/run.py --time-budget (most important configurations first)
#   T_E2E=100     bench/gpu/e2e.py: ViT-B/32 on a COCO-val2017-sized replica, clipneg vs PyTorch loop
# A step that fails is reported and the next one still runs; the exit status is the number of
# failed steps. Logs and tables: $OUT/{build,ctest,bench,e2e}.log, results.md, e2e.json.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/out/device-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
failed=0
step() { echo "== $(date +%T) $*"; }
fail() { echo "!! $*"; failed=$((failed + 1)); }
T0=$(date +%s)

# ---- dependencies: C libraries from .devcarry/debs when the machine lacks them ----
if ! pkg-config --exists libcjson inih openblas stb 2>/dev/null || ! command -v mpicc >/dev/null; then
  if ls .devcarry/debs/*.deb >/dev/null 2>&1; then
    step "unpacking $(ls .devcarry/debs/*.deb | wc -l) packages into /opt/cn-deps"
    P=/opt/cn-deps
    mkdir -p $P
    for f in .devcarry/debs/*.deb; do dpkg -x "$f" $P; done
    A=$P/usr/lib/x86_64-linux-gnu
    # dpkg -x runs no maintainer scripts: make the links the alternatives system would have made
    ln -sf openblas-pthread/libopenblas.so.0 $A/libopenblas.so.0 2>/dev/null
    ln -sf openblas-pthread/libopenblas.so $A/libopenblas.so 2>/dev/null
    [ -e $A/pkgconfig/openblas.pc ] || ln -sf openblas-pthread.pc $A/pkgconfig/openblas.pc
    for b in mpicc mpirun mpiexec; do [ -e $P/usr/bin/$b ] || ln -sf $b.openmpi $P/usr/bin/$b; done
    export PATH=$P/usr/bin:$PATH
    export LD_LIBRARY_PATH=$A:$A/openblas-pthread:$A/openmpi/lib:$A/hdf5/openmpi:${LD_LIBRARY_PATH:-}
    export PKG_CONFIG_PATH=$A/pkgconfig:$P/usr/share/pkgconfig PKG_CONFIG_SYSROOT_DIR=$P
    export OPAL_PREFIX=$P/usr CMAKE_PREFIX_PATH=$P/usr HDF5_ROOT=$A/hdf5/openmpi
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
    CMAKE_EXTRA=(-DMPI_C_COMPILER=$P/usr/bin/mpicc.openmpi -DHDF5_C_COMPILER_EXECUTABLE=$P/usr/bin/h5pcc)
  else
    echo "!! MPI / HDF5 / OpenBLAS / cJSON / inih / stb missing and no .devcarry/debs (run bench/gpu/device-prep.sh)"
  fi
fi
if ls .devcarry/whl/*.whl >/dev/null 2>&1 && ! python3 -c "import open_clip" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .devcarry/whl/*.whl && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
SHARED=$ROOT/shared
[ -d "$SHARED/data/coco-mini" ] || SHARED=$ROOT/../shared
BPE=$SHARED/data/clip-bpe/bpe_simple_vocab_16e6.txt.gz
export CLIPNEG_BPE=$BPE
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$OUT/gpu.txt"

# ---- build ----
step "build"
B=$ROOT/build-gpu
timeout "${T_BUILD:-200}" bash -c "cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DCLIPNEG_CUDA=ON \
    -DCLIPNEG_SHARED_DIR=$SHARED -DCLIPNEG_PYTHON=$(command -v python3) ${CMAKE_EXTRA[*]:-} && \
    cmake --build $B -j$(nproc)" >"$OUT/build.log" 2>&1 || fail "build (see build.log)"
tail -3 "$OUT/build.log"

# ---- ctest -L cuda ----
step "ctest -L cuda"
EXCL=(-E "memcheck|racecheck")
[ "${FULL:-0}" = 1 ] && EXCL=()
timeout "${T_CTEST:-100}" ctest --test-dir "$B" -L cuda "${EXCL[@]}" --output-on-failure >"$OUT/ctest.log" 2>&1 ||
  fail "ctest -L cuda (see ctest.log)"
grep -E "tests passed|tests failed|Failed|Not Run|Skipped" "$OUT/ctest.log" | tail -8

# ---- end to end first (its model is the first the tower benchmark needs too) ----
MODELS=$ROOT/out/bench-gpu-models
mkdir -p "$MODELS"
step "e2e: ViT-B/32, COCO-val2017-sized"
E2E=$ROOT/out/e2e-coco
python3 bench/gpu/e2e.py make --src "$SHARED/data/coco-mini" --out "$E2E" --images "${E2E_IMAGES:-5000}" >"$OUT/e2e.log" 2>&1
if [ ! -f "$MODELS/ViT-B-32/open_clip_model.safetensors" ]; then
  python3 tests/reference/make_fixtures.py --full ViT-B-32 --out "$MODELS/ViT-B-32" --dtype f16 >>"$OUT/e2e.log" 2>&1 ||
    fail "random ViT-B-32 (make_fixtures.py --full; see e2e.log)"
fi
timeout "${T_E2E:-100}" python3 bench/gpu/e2e.py run --data "$E2E" --model "$MODELS/ViT-B-32" --shape ViT-B-32 \
  --bpe "$BPE" --build "$B" --out-json "$OUT/e2e.json" >>"$OUT/e2e.log" 2>&1 || fail "e2e (see e2e.log)"
grep -E "stages|done:" "$OUT/e2e.log" | tail -3

# ---- tower benchmark (time budget: whatever is left of T_BENCH) ----
step "towers: bench/gpu/run.py"
timeout $(( ${T_BENCH:-100} + 30 )) python3 bench/gpu/run.py --build "$B" --models "$MODELS" \
  --captions "$SHARED/data/coco-mini/annotations/captions_val2017.json" --bpe "$BPE" \
  --time-budget "${T_BENCH:-100}" --repeats "${REPEATS:-3}" --runs 3 ${HF_COMPILE:+--hf-compile} \
  --e2e "$OUT/e2e.json" --out "$OUT/results.md" >"$OUT/bench.log" 2>&1 || fail "run.py (see bench.log)"
tail -40 "$OUT/results.md" 2>/dev/null || tail -20 "$OUT/bench.log"

echo "== done in $(( $(date +%s) - T0 )) s, $failed failed step(s); files in $OUT"
exit $failed
