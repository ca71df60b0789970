#!/usr/bin/env bash
# demo.sh — install what is missing, build, and run the main job on the coco-mini sample:
#   eval (2 MPI ranks) -> reduce (/stats, stats.json, Table 1 on stdout) -> export-tsne -> HTML report.
# Data: ../shared/data/coco-mini beside the checkout when present; otherwise point CLIPNEG_DATA at a
# folder with annotations/captions_val2017.json (+ instances_val2017.json) and val2017/ images.
# Model: CLIPNEG_MODEL (a downloaded checkpoint folder, see scripts/fetch-model.sh); without it the
# committed tiny RANDOM test model is used and every output says so.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
NP=${NP:-2}
bash scripts/install-deps.sh
bash scripts/build.sh
if [ -z "${CLIPNEG_DATA:-}" ]; then
  if [ -d "$ROOT/../shared/data/coco-mini" ]; then
    export CLIPNEG_DATA="$ROOT/../shared/data/coco-mini"
  else
    echo "demo: no data. Set CLIPNEG_DATA to a COCO-style folder (annotations/captions_val2017.json, val2017/)," >&2
    echo "      e.g. after scripts/fetch-coco.sh DIR: CLIPNEG_DATA=DIR bash scripts/demo.sh" >&2
    exit 2
  fi
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p out
OUT=out/demo.h5
mpirun -np "$NP" build/clipneg eval jobs/demo.ini --output "$OUT" --fresh
mpirun -np "$NP" build/clipneg reduce "$OUT"
mpirun -np "$NP" build/clipneg export-tsne "$OUT"
build/clipneg info "$OUT"
.venv/bin/python -m clipneg_analysis report "$OUT" -o out/demo-report.html
echo "[demo] output: $OUT, statistics: out/demo.stats.json (see 'clipneg reduce' above), report: out/demo-report.html"
