#!/usr/bin/env bash
# run_fuzz.sh BIN WORKDIR SEEDDIR SECONDS — fuzz from the seed corpus for a bounded time; print the
# executions run; fail (non-zero) on any crash. New inputs go to WORKDIR, never into the repo.
set -uo pipefail
bin=$1 work=$2 seeds=$3 secs=$4
mkdir -p "$work"
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
       -artifact_prefix="$work/" "$work" "$seeds" 2>"$work.log"
rc=$?
grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$work.log"
if [ $rc -ne 0 ]; then
  tail -60 "$work.log"
  echo "FUZZ FAILURE ($bin): reproducer in $work/"
fi
exit $rc
