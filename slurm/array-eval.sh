#!/usr/bin/env bash
# array-eval.sh — array task i evaluates line i+1 of $CLIPNEG_JOB_LIST (submit.sh --array).
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
JOB=$(sed -n "$(( SLURM_ARRAY_TASK_ID + 1 ))p" "$CLIPNEG_JOB_LIST")
exec bash "$CLIPNEG_SLURM_DIR/eval.sbatch" "$JOB" --output "$CLIPNEG_OUT_DIR/$(basename "$JOB" .ini).h5" "$@"
