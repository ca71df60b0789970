#!/usr/bin/env bash
# run_fuzz.sh BIN WORKDIR SEEDDIR SECONDS [DICT] — fuzz from the seed corpus for a bounded time;
# print the executions run; fail (non-zero) on any crash, sanitizer report, timeout or OOM.
# New inputs go to WORKDIR (kept between runs, so coverage accumulates), never into the repo;
# reproducers are written as WORKDIR/crash-*, leak-*, timeout-*, oom-*. Replay one with
#   BIN WORKDIR/crash-<sha1>
set -uo pipefail
bin=$1 work=$2 seeds=$3 secs=$4 dict=${5:-}
mkdir -p "$work"
args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1
      -artifact_prefix="$work/")
[ -n "$dict" ] && [ -f "$dict" ] && args+=(-dict="$dict")
"$bin" "${args[@]}" "$work" "$seeds" 2>"$work.log"
rc=$?
grep -E "stat::number_of_executed_units|stat::peak_rss_mb|stat::new_units_added" "$work.log"
grep -E "^Done [0-9]+ runs" "$work.log" | tail -1
tr '\r' '\n' <"$work.log" | grep -E "^#[0-9]+[[:space:]].*cov: " | tail -1
if [ $rc -ne 0 ]; then
  tail -60 "$work.log"
  echo "FUZZ FAILURE ($bin): reproducer in $work/"
fi
exit $rc
