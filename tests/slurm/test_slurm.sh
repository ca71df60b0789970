#!/usr/bin/env bash
# test_slurm.sh — clipneg's SLURM scripts against real daemons (munge + slurmctld + slurmd on localhost).
#  1. slurm/submit.sh --cpu 2 jobs/demo.ini: eval (2 ranks, srun --mpi=pmix) then the dependent reduce;
#     checks the HDF5 output is complete and has /stats, and that stats.json was written.
#  2. preemption: the same job again into a new file, slowed down; once it has finished some shards we
#     send the batch shell SIGUSR1 (what --signal=B:USR1@120 does); the ranks checkpoint and exit 75,
#     eval.sbatch requeues the job, the requeued attempt resumes and must end with datasets identical
#     to the uninterrupted run of step 1.
# Daemons are stopped by PID on every exit path; the whole test is bounded by `timeout` in ctest.
# Exit 77 (skip) when not root or SLURM/munge are not installed.
set -euo pipefail
ROOT=${CLIPNEG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${CLIPNEG_BIN:-$ROOT/build/clipneg}
PY=${CLIPNEG_PYTHON:-python3}
for t in slurmctld slurmd munged sbatch; do
  command -v "$t" >/dev/null || { echo "SKIPPED: $t not installed (Debian slurm-wlm, munge)"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIPPED: the local test cluster needs root"; exit 77; }
[ -x "$BIN" ] || { echo "FAIL: clipneg binary not found at $BIN"; exit 1; }
source "$ROOT/tests/slurm/cluster.sh"

W=$(mktemp -d /tmp/clipneg-slurm.XXXXXX)
chmod 755 "$W"   # munged insists that every folder above its socket is world-executable
trap 'cluster_down; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM
cluster_up "$W/cluster"
export CLIPNEG=$BIN CLIPNEG_PYTHON=$PY
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
cd "$ROOT"

# ---- 1. submit.sh: eval + dependent reduce ------------------------------------------------------
ids=$(bash slurm/submit.sh --cpu 2 --out-dir "$W/results" jobs/demo.ini)
echo "$ids"
eid=$(echo "$ids" | sed -n 's/.*eval \([0-9]*\).*/\1/p')
rid=$(echo "$ids" | sed -n 's/.*reduce \([0-9]*\).*/\1/p')
[ -n "$eid" ] && [ -n "$rid" ] || { echo "FAIL: could not parse job ids"; exit 1; }
dep=$(scontrol show job -o "$rid" | grep -o 'Dependency=[^ ]*' || true)
echo "reduce job $rid: $dep"
echo "$dep" | grep -q "afterok:$eid" || { echo "FAIL: reduce does not depend afterok on eval $eid"; exit 1; }
wait_job "$eid" 600 || { cat "$W"/results/logs/*.out; exit 1; }
cluster_ts "eval job $eid completed"
wait_job "$rid" 600 || { cat "$W"/results/logs/*.out; exit 1; }
cluster_ts "reduce job $rid completed"
OUT="$W/results/demo.h5"
"$PY" - "$OUT" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    assert int(f.attrs["complete"]) == 1, "output not complete"
    assert int(f.attrs["ranks"]) == 2, f"expected 2 ranks, file says {f.attrs['ranks']}"
    assert "stats" in f, "no /stats: reduce did not run"
    n = f["similarity/paired"].shape
    print("demo.h5 complete, ranks=2, paired", n, "stats groups", list(f["stats"].keys()))
PY
ls "$W/results"/*stats.json >/dev/null || ls "$W/results"/*.json >/dev/null \
  || { echo "FAIL: no stats.json beside the output"; ls -la "$W/results"; exit 1; }

# ---- 2. preemption: USR1 to the batch shell -> checkpoint -> self-requeue -> resume ------------------
OUT2="$W/results/demo-preempted.h5"
jid=$(CLIPNEG_TEST_ROUND_DELAY_MS=400 CLIPNEG_PROGRESS_INTERVAL=0.2 sbatch --parsable --export=ALL --gpus-per-node=0 --ntasks-per-node=2 \
      --cpus-per-task=1 -J clipneg-preempt -o "$W/results/logs/preempt-%j.out" \
      slurm/eval.sbatch jobs/demo.ini --output "$OUT2" --set run.backend=cpu)
jid=${jid%%;*}
LOG="$W/results/logs/preempt-$jid.out"
# wait until the evaluator reports progress (finished rounds), then deliver the end-of-time warning
for _ in $(seq 600); do grep -q "items/s" "$LOG" 2>/dev/null && break; sleep 0.2; done
grep -q "items/s" "$LOG" || { echo "FAIL: no progress in $LOG"; cat "$LOG"; exit 1; }
sleep 1
scancel --batch --signal=USR1 "$jid"
cluster_ts "sent USR1 to job $jid"
for _ in $(seq 600); do
  st=$(job_state "$jid")
  [ "$st" = PENDING ] && break
  [ "$st" = COMPLETED ] && { echo "FAIL: job completed without being preempted"; cat "$LOG"; exit 1; }
  sleep 0.2
done
[ "$(job_state "$jid")" = PENDING ] || { echo "FAIL: job not requeued"; scontrol show job "$jid"; cat "$LOG"; exit 1; }
grep -q "checkpointed; requeueing" "$LOG" || { echo "FAIL: eval.sbatch did not see exit 75"; cat "$LOG"; exit 1; }
# The previous attempt's step daemon must be gone before the next starts, or the new step cannot
# bind its PMIx socket (same step id): SLURM's ~120 s hold on requeued jobs normally ensures that.
# (Nothing else runs on this test cluster: wait for every step daemon, then a little longer for their
# sockets to be removed.)
for _ in $(seq 300); do pgrep -f slurmstepd >/dev/null || break; sleep 0.2; done
pgrep -af slurmstepd && echo "warning: step daemons still running"
sleep 3
scontrol update JobId="$jid" StartTime=now     # a requeued job is otherwise held ~120 s
cluster_ts "job $jid requeued; released"
wait_job "$jid" 600 || { cat "$LOG"; exit 1; }
restarts=$(scontrol show job -o "$jid" | grep -o 'Restarts=[0-9]*' | cut -d= -f2)
[ "${restarts:-0}" -ge 1 ] || { echo "FAIL: job did not restart"; exit 1; }
cat "$LOG"
"$PY" "$ROOT/tests/slurm/h5same.py" "$OUT" "$OUT2"
cluster_ts "preempted + resumed run identical to the uninterrupted one (restarts=$restarts)"
echo "slurm test: 2 passed, 0 failed"
