#!/usr/bin/env bash
# array-reduce.sh — array task i reduces the output named on line i+1 of $CLIPNEG_JOB_LIST (submit.sh --array / --model).
#SBATCH --job-name=clipneg-reduce
#SBATCH --nodes=1
#SBATCH --ntasks=4
#SBATCH --cpus-per-task=2
#SBATCH --time=01:00:00
set -euo pipefail
IFS=$'\t' read -r _ OUT _ < <(sed -n "$(( SLURM_ARRAY_TASK_ID + 1 ))p" "$CLIPNEG_JOB_LIST")
exec bash "$CLIPNEG_SLURM_DIR/reduce.sbatch" "$OUT"
