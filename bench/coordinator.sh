#!/usr/bin/env bash
# The coordinator under load: RSS and CPU of llmb-coordinator while W
# workers heartbeat and J single-task jobs flow through them, on a private
# redis-server. Prints medians of REPS runs.
#
#   bench/coordinator.sh [--workers 50] [--jobs 10000] [--reps 3]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

workers=50 jobs=10000 reps=3
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers=$2; shift ;;
    --jobs) jobs=$2; shift ;;
    --reps) reps=$2; shift ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/coordinator.sh: unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
B=$LLMB_BUILD_DIR
pids=()
stop() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
trap 'stop; bench_redis_stop' EXIT
clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

awk -v n="$jobs" 'BEGIN { for (i = 0; i < n; i++)
  printf "{\"type\":\"noop\",\"payload\":{\"i\":%d}}\n", i }' > /tmp/llmb-coord-bench.$$
cpus=() rsss=() secs=()
for r in $(seq 1 "$reps"); do
  bench_redis_start
  export LLMB_REDIS_URL=$BENCH_REDIS_URL
  "$B/coordinator/llmb-coordinator" --log-level warn 2>/dev/null &
  coord=$!
  pids+=($coord)
  for w in $(seq 1 "$workers"); do
    "$B/worker/llmb-worker" --capacity 2 --heartbeat-ms 1000 --log-level warn 2>/dev/null &
    pids+=($!)
  done
  until [ "$(bench_rcli zcard llmb:workers)" -ge "$workers" ]; do sleep 0.1; done
  c0=$(cpu_ticks "$coord"); t0=$(bench_now)
  "$B/tools/push/llmb-push" --batch /tmp/llmb-coord-bench.$$ >/dev/null
  peak=0
  # until every job is aggregated
  while :; do
    s=$(bench_rcli fcall_ro llmb_stats 1 'llmb:{default}' | paste - - | awk '$1=="to_aggregate"||$1=="pending"||$1=="running"{s+=$2} END{print s+0}')
    k=$(rss_kb "$coord"); [ "$k" -gt "$peak" ] && peak=$k
    [ "$s" = 0 ] && break
    sleep 0.1
  done
  t1=$(bench_now); c1=$(cpu_ticks "$coord")
  agg=$(bench_rcli xlen 'llmb:{default}:events')
  cpus+=("$(awk -v a="$c0" -v b="$c1" -v t="$clk" 'BEGIN { print (b - a) / t }')")
  rsss+=("$peak")
  secs+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
  printf 'rep %d: %d jobs through %d workers in %.2f s; coordinator CPU %.2f s, peak RSS %d KiB\n' \
    "$r" "$jobs" "$workers" "${secs[-1]}" "${cpus[-1]}" "$peak" >&2
  stop
  bench_redis_stop
done
rm -f /tmp/llmb-coord-bench.$$
read -r cm clo chi < <(printf '%s\n' "${cpus[@]}" | bench_stats)
read -r rm rlo rhi < <(printf '%s\n' "${rsss[@]}" | bench_stats)
read -r sm slo shi < <(printf '%s\n' "${secs[@]}" | bench_stats)
echo "| coordinator, $workers workers, $jobs jobs | median | min–max |"
echo "| --- | --- | --- |"
echo "| wall time | ${sm} s | ${slo}–${shi} s |"
echo "| coordinator CPU | ${cm} s | ${clo}–${chi} s |"
echo "| coordinator CPU per 1,000 jobs | $(awk -v c="$cm" -v j="$jobs" 'BEGIN{printf "%.3f", c*1000/j}') s | |"
echo "| coordinator peak RSS | $(awk -v k="$rm" 'BEGIN{printf "%.1f", k/1024}') MiB | $(awk -v a="$rlo" -v b="$rhi" 'BEGIN{printf "%.1f–%.1f", a/1024, b/1024}') MiB |"
