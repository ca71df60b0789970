#!/usr/bin/env bash
# submit.sh — submit evaluations and their reduce passes; prints the job ids.
#   slurm/submit.sh [options] JOB.ini... [-- extra sbatch options for every job]
# options:
#   --out-dir DIR   outputs go to DIR/<job name>.h5, logs to DIR/logs/ (default: results)
#   --array         one job array over the job files (e.g. the five backbones) and one reduce array
#                   paired task by task (aftercorr); default: one eval + one reduce job per job file
#   --cpu N         CPU backend, N ranks per node, no GPUs (tests, GPU-less partitions)
#   --dry-run       print the sbatch commands instead of submitting
# A reduce starts only if its evaluation succeeded (afterok / aftercorr); an evaluation that is
# requeued (preemption, time limit) keeps its reduce waiting and resumes from its recorded shards.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT_DIR=results ARRAY=0 CPU=0 DRY=0 JOBS=() EXTRA=()
while [ $# -gt 0 ]; do
  case $1 in
    --out-dir) OUT_DIR=$2; shift 2 ;;
    --array) ARRAY=1; shift ;;
    --cpu) CPU=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "submit.sh: unknown option $1" >&2; exit 2 ;;
    *) JOBS+=("$1"); shift ;;
  esac
done
[ ${#JOBS[@]} -gt 0 ] || { echo "usage: slurm/submit.sh [options] JOB.ini..." >&2; exit 2; }
for j in "${JOBS[@]}"; do [ -f "$j" ] || { echo "submit.sh: no such job file: $j" >&2; exit 2; }; done
mkdir -p "$OUT_DIR/logs"
OUT_DIR=$(cd "$OUT_DIR" && pwd)

export CLIPNEG=${CLIPNEG:-$ROOT/build/clipneg} CLIPNEG_SLURM_DIR=$HERE CLIPNEG_OUT_DIR=$OUT_DIR
[ -x "$CLIPNEG" ] || { echo "submit.sh: $CLIPNEG not built (run scripts/build.sh or set CLIPNEG)" >&2; exit 2; }
EVAL_RES=() REDUCE_RES=() EVAL_ARGS=()
if [ "$CPU" != 0 ]; then
  EVAL_RES=(--gpus-per-node=0 --ntasks-per-node="$CPU" --cpus-per-task=1)
  REDUCE_RES=(--ntasks="$CPU" --cpus-per-task=1)
  EVAL_ARGS=(--set run.backend=cpu)
fi
sb() {  # sbatch --parsable, or print it for --dry-run
  if [ "$DRY" = 1 ]; then echo "sbatch $*" >&2; echo "DRY$RANDOM"; else sbatch --parsable --export=ALL "$@"; fi
}

if [ "$ARRAY" = 1 ]; then
  export CLIPNEG_JOB_LIST="$OUT_DIR/logs/jobs-$(date +%Y%m%d-%H%M%S)-$$.txt"
  for j in "${JOBS[@]}"; do (cd "$(dirname "$j")" && echo "$PWD/$(basename "$j")"); done > "$CLIPNEG_JOB_LIST"
  n=${#JOBS[@]}
  eid=$(sb --array=0-$((n - 1)) "${EVAL_RES[@]}" -o "$OUT_DIR/logs/%x-%A_%a.out" "${EXTRA[@]}" \
        "$HERE/array-eval.sh" "${EVAL_ARGS[@]}")
  eid=${eid%%;*}
  rid=$(sb --array=0-$((n - 1)) --dependency=aftercorr:"$eid" "${REDUCE_RES[@]}" \
        -o "$OUT_DIR/logs/%x-%A_%a.out" "${EXTRA[@]}" "$HERE/array-reduce.sh")
  echo "eval array $eid  reduce array ${rid%%;*}  ($n job files, outputs in $OUT_DIR)"
  exit 0
fi

for j in "${JOBS[@]}"; do
  name=$(basename "$j" .ini)
  out="$OUT_DIR/$name.h5"
  eid=$(sb "${EVAL_RES[@]}" -J "clipneg-$name" -o "$OUT_DIR/logs/%x-%j.out" "${EXTRA[@]}" \
        "$HERE/eval.sbatch" "$j" --output "$out" "${EVAL_ARGS[@]}")
  eid=${eid%%;*}
  rid=$(sb --dependency=afterok:"$eid" "${REDUCE_RES[@]}" -J "clipneg-reduce-$name" \
        -o "$OUT_DIR/logs/%x-%j.out" "${EXTRA[@]}" "$HERE/reduce.sbatch" "$out")
  echo "$name: eval $eid  reduce ${rid%%;*}  output $out"
done
