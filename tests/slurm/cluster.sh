#!/usr/bin/env bash
# cluster.sh — a real single-node SLURM cluster on localhost (munge + slurmctld + slurmd), for tests.
# Source it, then: cluster_up BASE ; ... ; cluster_down   (cluster_down is also safe to call twice).
# Every daemon is stopped by PID (TERM, then KILL after 10 s). Proven recipe: ../shared/recipes/.
# Exports SLURM_CONF for the clients. Needs root (munged/slurmd as root) and Debian slurm-wlm + munge.

cluster_ts() { printf '[slurm-test %5ss] %s\n' "$(( $(date +%s) - ${CLUSTER_T0:-$(date +%s)} ))" "$*"; }

cluster_up() {
  CLUSTER_BASE=$1
  CLUSTER_T0=$(date +%s)
  local M=$CLUSTER_BASE/munge S=$CLUSTER_BASE/slurm
  rm -rf "$CLUSTER_BASE"
  mkdir -p "$M"/{etc,run,lib,log} "$S"/{etc,state,spool,run,log,pmix}
  chmod 700 "$M"/{etc,lib,log}
  CLUSTER_SOCK=$M/run/munge.socket.2
  mungekey --create --keyfile="$M/etc/munge.key"
  munged --socket="$CLUSTER_SOCK" --key-file="$M/etc/munge.key" --pid-file="$M/run/munged.pid" \
         --log-file="$M/log/munged.log" --seed-file="$M/lib/munged.seed" || return 1
  export SLURM_CONF=$S/etc/slurm.conf
  local hw
  hw=$(slurmd -C | head -n 1 | sed -e 's/^NodeName=[^ ]* //' -e 's/ *RealMemory=[0-9]*//')
  # Ports: pick free-ish ones derived from the PID so parallel runs on one machine do not collide.
  local port=$(( 20000 + ($$ % 20000) ))
  cat > "$SLURM_CONF" <<CONF
ClusterName=clipnegtest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$CLUSTER_SOCK
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/run/slurmctld.pid
SlurmdPidFile=$S/run/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=30
Waittime=0
NodeName=localhost NodeAddr=127.0.0.1 $hw RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  echo "PMIxCliTmpDirBase=$S/pmix" > "$S/etc/mpi.conf"
  slurmctld -f "$SLURM_CONF" || return 1
  local i
  for i in $(seq 300); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.1; done
  slurmd -N localhost -f "$SLURM_CONF" || return 1
  for i in $(seq 300); do [ "$(sinfo -h -n localhost -o %T 2>/dev/null)" = idle ] && break; sleep 0.1; done
  [ "$(sinfo -h -n localhost -o %T 2>/dev/null)" = idle ] || { echo "slurmd did not come up"; return 1; }
  cluster_ts "cluster up (slurm $(sinfo -V | awk '{print $2}'))"
}

cluster_down() {
  [ -n "${CLUSTER_BASE:-}" ] || return 0
  local pf p
  for pf in "$CLUSTER_BASE/slurm/run/slurmd.pid" "$CLUSTER_BASE/slurm/run/slurmctld.pid" \
            "$CLUSTER_BASE/munge/run/munged.pid"; do
    [ -s "$pf" ] || continue
    p=$(cat "$pf")
    kill -TERM "$p" 2>/dev/null || continue
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  done
  cluster_ts "cluster down"
  CLUSTER_BASE=
}

# job_state JID -> PENDING/RUNNING/COMPLETED/... (from scontrol; no accounting DB needed)
job_state() { scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
job_exit() { scontrol show job -o "$1" 2>/dev/null | grep -o ' ExitCode=[0-9:]*' | cut -d= -f2; }
# wait_job JID TIMEOUT_S -> returns 0 when COMPLETED, 1 otherwise
wait_job() {
  local jid=$1 limit=${2:-300} t0 st
  t0=$(date +%s)
  while :; do
    st=$(job_state "$jid")
    case "$st" in
      COMPLETED) return 0 ;;
      PENDING|CONFIGURING|RUNNING|COMPLETING|REQUEUED|RESIZING|SUSPENDED|"") ;;
      *) echo "job $jid ended $st exit=$(job_exit "$jid")"; return 1 ;;
    esac
    [ $(( $(date +%s) - t0 )) -lt "$limit" ] || { echo "job $jid timed out in state $st"; return 1; }
    sleep 0.3
  done
}
