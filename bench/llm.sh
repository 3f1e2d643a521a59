#!/usr/bin/env bash
# The llm executor's cost and reach: one llmb-worker against the mock LLM
# server (examples/mock-llm) on loopback, with a private redis-server.
#
#   bench/llm.sh [--quick] [--reps N] [--levels "500 1000 2000"]
#
# L1 CPU per 1,000 requests: 2,000 streamed requests (32 tokens each, 64
#    in flight); the worker's user+system CPU time from /proc, divided by
#    the requests, in ms per 1,000 requests.
# L2 concurrent streams: for each level C, one task sends C streamed
#    requests at concurrency C (TTFT 100 ms, 16 tokens 250 ms apart, so
#    every stream lasts about 4 s and all C overlap). A level is sustained
#    when every request succeeds, the mock saw all C in flight at once, and
#    the measured inter-token latency stays true (p99 within 25% of 250
#    ms). The worker's and the mock's CPU share over the run tell which
#    side limits.
# Each figure is the median of --reps runs (3). Uses LLMB_BUILD_DIR
# (default build/release) and writes bench/results/llm.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

reps=3 quick=0 levels="500 1000 2000 4000"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; reps=1; levels="200" ;;
    --reps) reps=$2; shift ;;
    --levels) levels=$2; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/llm.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
  shift
done

worker_bin="$LLMB_BUILD_DIR/worker/llmb-worker"
push="$LLMB_BUILD_DIR/tools/push/llmb-push"
for b in "$worker_bin" "$push"; do
  [ -x "$b" ] || { echo "bench/llm.sh: $b is not built (LLMB_BUILD_DIR)" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
tck=$(getconf CLK_TCK)

mock_pid="" worker_pid=""
stop_all() {
  [ -n "$worker_pid" ] && kill -TERM "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null || true
  [ -n "$mock_pid" ] && kill -TERM "$mock_pid" 2>/dev/null && wait "$mock_pid" 2>/dev/null || true
  worker_pid="" mock_pid=""
}
trap 'stop_all; bench_redis_stop' EXIT
bench_redis_start

# CPU ms (user + system) used so far by pid.
cpu_ms() { awk -v t="$tck" '{ printf "%d\n", ($14 + $15) * 1000 / t }' "/proc/$1/stat"; }

# Starts the mock with the given flags and one worker on it.
start_pair() {
  python3 -S "$bench_root/examples/mock-llm/mock_llm.py" --port 0 --quiet "$@" \
    > "$BENCH_TMP/mock.out" 2> "$BENCH_TMP/mock.log" &
  mock_pid=$!
  for _ in $(seq 100); do grep -q listening "$BENCH_TMP/mock.out" 2>/dev/null && break; sleep 0.05; done
  mock_port=$(sed -n 's/.*127.0.0.1:\([0-9]*\)$/\1/p' "$BENCH_TMP/mock.out")
  "$worker_bin" --redis "$BENCH_REDIS_URL" --prefix bench --capacity 1 \
    --llm-endpoint "mock=http://127.0.0.1:$mock_port" 2> "$BENCH_TMP/worker.log" &
  worker_pid=$!
  sleep 0.3
}

# Runs one llm job (payload $1) to its end; prints its task result.
run_job() {
  local id
  id=$("$push" --redis "$BENCH_REDIS_URL" --prefix bench --timeout 600 \
         --retries 0 llm "$1" 2>/dev/null)
  for _ in $(seq 6000); do
    case $(bench_rcli FCALL_RO llmb_job 1 "bench:{default}" "$id" state) in
      completed|failed|cancelled) break ;;
    esac
    sleep 0.05
  done
  bench_rcli FCALL_RO llmb_job 1 "bench:{default}" "$id" 0:result
}

# Percentiles and counts of a task result on stdin:
# "ok n itl_p50 itl_p99 ttft_p50 ttft_p99".
summarise() {
  python3 -S -c '
import json, math, sys
r = json.load(sys.stdin)
recs = r.get("_requests", r.get("requests", []))  # the sample kept
def q(xs, p):
    xs = sorted(xs)
    if not xs: return float("nan")
    h = (len(xs) - 1) * p; lo = math.floor(h); hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])
itl = [x["itl_ms"] for x in recs if "itl_ms" in x]
ttft = [x["ttft_ms"] for x in recs if "ttft_ms" in x]
print(r["summary"]["ok"], r["summary"]["requests"], "%.2f %.2f %.2f %.2f" %
      (q(itl, .5), q(itl, .99), q(ttft, .5), q(ttft, .99)))'
}

median() { tr ' ' '\n' | grep -v '^$' | bench_stats | cut -d' ' -f1; }

# ---- L1: CPU per 1,000 requests -------------------------------------------
n1=2000; [ $quick = 1 ] && n1=300
cpu_runs=() wall_runs=()
for r in $(seq 1 "$reps"); do
  start_pair --ttft-ms 10 --itl-ms 5
  c0=$(cpu_ms "$worker_pid"); t0=$(bench_now)
  run_job "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"bench\"}],\"max_tokens\":32,\"requests\":$n1,\"concurrency\":64}" > "$BENCH_TMP/l1.json"
  t1=$(bench_now); c1=$(cpu_ms "$worker_pid")
  read -r ok total _ < <(summarise < "$BENCH_TMP/l1.json")
  [ "$ok" = "$total" ] || echo "bench/llm.sh: L1 run $r: only $ok of $total ok" >&2
  cpu_runs+=("$(awk -v c=$((c1 - c0)) -v n="$n1" 'BEGIN { printf "%.1f", c * 1000 / n }')")
  wall_runs+=("$(awk -v a="$t0" -v b="$t1" -v n="$n1" 'BEGIN { printf "%.0f", n / (b - a) }')")
  stop_all
done
cpu_med=$(echo "${cpu_runs[*]}" | median)
rps_med=$(echo "${wall_runs[*]}" | median)

# ---- L2: concurrent streams ----------------------------------------------
rows=() sustained=0
for c in $levels; do
  oks=() peaks=() itl50=() itl99=() ttft99=() wcpu=() mcpu=()
  for r in $(seq 1 "$reps"); do
    start_pair --ttft-ms 100 --itl-ms 250
    cw0=$(cpu_ms "$worker_pid"); cm0=$(cpu_ms "$mock_pid"); t0=$(bench_now)
    run_job "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":16,\"requests\":$c,\"concurrency\":$c,\"timeout_s\":60}" > "$BENCH_TMP/l2.json"
    t1=$(bench_now); cw1=$(cpu_ms "$worker_pid"); cm1=$(cpu_ms "$mock_pid")
    peak=$(curl -s "http://127.0.0.1:$mock_port/mock/stats" |
           python3 -S -c 'import json,sys; print(json.load(sys.stdin)["max_inflight_seen"])')
    read -r ok _ i50 i99 _ t99 < <(summarise < "$BENCH_TMP/l2.json")
    oks+=("$ok"); peaks+=("$peak"); itl50+=("$i50"); itl99+=("$i99"); ttft99+=("$t99")
    wcpu+=("$(awk -v c=$((cw1 - cw0)) -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", c / 10 / (b - a) }')")
    mcpu+=("$(awk -v c=$((cm1 - cm0)) -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", c / 10 / (b - a) }')")
    stop_all
  done
  ok=$(echo "${oks[*]}" | median); peak=$(echo "${peaks[*]}" | median)
  i50=$(echo "${itl50[*]}" | median); i99=$(echo "${itl99[*]}" | median)
  t99=$(echo "${ttft99[*]}" | median)
  w=$(echo "${wcpu[*]}" | median); m=$(echo "${mcpu[*]}" | median)
  verdict=no
  if [ "$ok" = "$c" ] && [ "$peak" = "$c" ] &&
     awk -v x="$i99" 'BEGIN { exit !(x <= 312.5) }'; then
    verdict=yes; sustained=$c
  fi
  rows+=("| $c | $ok | $peak | $i50 | $i99 | $t99 | $w% | $m% | $verdict |")
done

out="$bench_root/bench/results/llm.md"
{
  echo "# llm executor: one worker against the mock LLM server"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs (shared), load $(cut -d' ' -f1-3 /proc/loadavg);"
  echo "medians of $reps runs; build: $LLMB_BUILD_DIR."
  echo
  echo "| L1: CPU per 1,000 requests | requests/s |"
  echo "| --- | --- |"
  echo "| ${cpu_med} ms (runs: ${cpu_runs[*]}) | $rps_med |"
  echo
  echo "L1: $n1 streamed chat requests, 32 tokens each (TTFT 10 ms, ITL 5 ms), 64 in flight."
  echo
  echo "| L2: streams | ok | peak in flight (mock) | ITL p50 ms | ITL p99 ms | TTFT p99 ms | worker CPU | mock CPU | sustained |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${rows[@]}"
  echo
  echo "L2: C requests at concurrency C, TTFT 100 ms, 16 tokens 250 ms apart."
  echo "Sustained: all ok, all C in flight at once, ITL p99 <= 312.5 ms."
  echo "Largest level sustained: $sustained concurrent streams."
} | tee "$out"
