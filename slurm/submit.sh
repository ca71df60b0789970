#!/usr/bin/env bash
# submit.sh — submit evaluations and their reduce passes; prints the job ids.
#   slurm/submit.sh [options] JOB.ini... [-- extra sbatch options for every job]
# options:
#   --out-dir DIR   outputs go to DIR/<job name>.h5, logs to DIR/logs/ (default: results)
#   --array         one job array over the job files (e.g. the five backbones) and one reduce array
#                   paired task by task (aftercorr); default: one eval + one reduce job per job file
#   --cpu N         CPU backend, N ranks per node, no GPUs (tests, GPU-less partitions)
#   --dry-run       print the sbatch commands instead of submitting
#   --model PATH    (repeatable) a suite: every model x every job file as ONE eval array (task = one
#                   model and one job: `--set model.path=PATH`), the reduce array paired with it, then
#                   one table job (slurm/table.sbatch) after all of them: DIR/<model>/<job>.h5,
#                   DIR/table.md, DIR/table.csv, DIR/suite-report.html. Models are named by their
#                   folder (or file) name, which must differ between models.
#   --set S.K=V     (repeatable) passed to every `clipneg eval` (e.g. --set model.quick_gelu=true)
# A reduce starts only if its evaluation succeeded (afterok / aftercorr); an evaluation that is
# requeued (preemption, time limit) keeps its reduce waiting and resumes from its recorded shards.
# The suite's table job runs when every reduce task has ended (afterany) and tabulates the outputs
# that exist, naming the missing ones.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT_DIR=results ARRAY=0 CPU=0 DRY=0 JOBS=() EXTRA=() MODELS=() SETS=()
while [ $# -gt 0 ]; do
  case $1 in
    --out-dir) OUT_DIR=$2; shift 2 ;;
    --array) ARRAY=1; shift ;;
    --cpu) CPU=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --model) [ $# -ge 2 ] || { echo "submit.sh: --model needs a path" >&2; exit 2; }; MODELS+=("$2"); shift 2 ;;
    --set) [ $# -ge 2 ] || { echo "submit.sh: --set needs section.key=value" >&2; exit 2; }; SETS+=(--set "$2"); shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "submit.sh: unknown option $1" >&2; exit 2 ;;
    *) JOBS+=("$1"); shift ;;
  esac
done
[ ${#JOBS[@]} -gt 0 ] || { echo "usage: slurm/submit.sh [options] JOB.ini..." >&2; exit 2; }
for j in "${JOBS[@]}"; do [ -f "$j" ] || { echo "submit.sh: no such job file: $j" >&2; exit 2; }; done
MODEL_NAMES=()
for m in "${MODELS[@]}"; do
  [ -e "$m" ] || { echo "submit.sh: --model $m: no such file or folder" >&2; exit 2; }
  n=$(basename "${m%/}" .safetensors)
  for seen in "${MODEL_NAMES[@]}"; do
    [ "$seen" != "$n" ] || { echo "submit.sh: two models are named '$n' (outputs go to DIR/<model name>/): rename one folder" >&2; exit 2; }
  done
  MODEL_NAMES+=("$n")
done
mkdir -p "$OUT_DIR/logs"
OUT_DIR=$(cd "$OUT_DIR" && pwd)

export CLIPNEG=${CLIPNEG:-$ROOT/build/clipneg} CLIPNEG_SLURM_DIR=$HERE CLIPNEG_OUT_DIR=$OUT_DIR
[ -x "$CLIPNEG" ] || { echo "submit.sh: $CLIPNEG not built (run scripts/build.sh or set CLIPNEG)" >&2; exit 2; }
EVAL_RES=() REDUCE_RES=() EVAL_ARGS=("${SETS[@]}")
if [ "$CPU" != 0 ]; then
  EVAL_RES=(--gpus-per-node=0 --ntasks-per-node="$CPU" --cpus-per-task=1)
  REDUCE_RES=(--ntasks="$CPU" --cpus-per-task=1)
  EVAL_ARGS+=(--set run.backend=cpu)
fi
sb() {  # sbatch --parsable, or print it for --dry-run
  if [ "$DRY" = 1 ]; then echo "sbatch $*" >&2; echo "DRY$RANDOM"; else sbatch --parsable --export=ALL "$@"; fi
}

abspath() { (cd "$(dirname "$1")" && echo "$PWD/$(basename "$1")"); }
if [ "$ARRAY" = 1 ] || [ ${#MODELS[@]} -gt 0 ]; then
  # One line per array task: JOB <tab> OUTPUT [<tab> MODEL] (array-eval.sh / array-reduce.sh read it).
  export CLIPNEG_JOB_LIST="$OUT_DIR/logs/jobs-$(date +%Y%m%d-%H%M%S)-$$.txt"
  : > "$CLIPNEG_JOB_LIST"
  OUTS=()
  if [ ${#MODELS[@]} -gt 0 ]; then
    for i in "${!MODELS[@]}"; do
      mkdir -p "$OUT_DIR/${MODEL_NAMES[$i]}"
      for j in "${JOBS[@]}"; do
        o="$OUT_DIR/${MODEL_NAMES[$i]}/$(basename "$j" .ini).h5"
        printf '%s\t%s\t%s\n' "$(abspath "$j")" "$o" "$(abspath "${MODELS[$i]%/}")" >> "$CLIPNEG_JOB_LIST"
        OUTS+=("$o")
      done
    done
  else
    for j in "${JOBS[@]}"; do
      o="$OUT_DIR/$(basename "$j" .ini).h5"
      printf '%s\t%s\n' "$(abspath "$j")" "$o" >> "$CLIPNEG_JOB_LIST"
      OUTS+=("$o")
    done
  fi
  n=${#OUTS[@]}
  eid=$(sb --array=0-$((n - 1)) "${EVAL_RES[@]}" -o "$OUT_DIR/logs/%x-%A_%a.out" "${EXTRA[@]}" \
        "$HERE/array-eval.sh" "${EVAL_ARGS[@]}")
  eid=${eid%%;*}
  rid=$(sb --array=0-$((n - 1)) --dependency=aftercorr:"$eid" "${REDUCE_RES[@]}" \
        -o "$OUT_DIR/logs/%x-%A_%a.out" "${EXTRA[@]}" "$HERE/array-reduce.sh")
  rid=${rid%%;*}
  if [ ${#MODELS[@]} -eq 0 ]; then
    echo "eval array $eid  reduce array $rid  ($n job files, outputs in $OUT_DIR)"
    exit 0
  fi
  tid=$(sb --dependency=afterany:"$rid" -J clipneg-table -o "$OUT_DIR/logs/%x-%j.out" "${EXTRA[@]}" \
        "$HERE/table.sbatch" "$OUT_DIR" "${OUTS[@]}")
  echo "suite: ${#MODELS[@]} models x ${#JOBS[@]} jobs: eval array $eid  reduce array $rid  table ${tid%%;*}" \
       "(outputs in $OUT_DIR/<model>/, table in $OUT_DIR/table.md)"
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
