#!/usr/bin/env bash
# array-eval.sh — array task i evaluates line i+1 of $CLIPNEG_JOB_LIST (submit.sh --array / --model):
# "JOB <tab> OUTPUT [<tab> MODEL]"; a MODEL replaces the job's [model] path.
#SBATCH --job-name=clipneg-eval
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=8
#SBATCH --time=08:00:00
#SBATCH --requeue
#SBATCH --signal=B:USR1@120
#SBATCH --open-mode=append
set -uo pipefail
IFS=$'\t' read -r JOB OUT MODEL < <(sed -n "$(( SLURM_ARRAY_TASK_ID + 1 ))p" "$CLIPNEG_JOB_LIST")
[ -n "${MODEL:-}" ] && set -- --set "model.path=$MODEL" "$@"
exec bash "$CLIPNEG_SLURM_DIR/eval.sbatch" "$JOB" --output "$OUT" "$@"
