#!/usr/bin/env bash
# How true the llm executor's clock is: one llmb-worker (capacity 1) and a
# plain Python asyncio client (bench/llm_pyclient.py) against the same
# scheduled streaming server, which logs the true send time of every
# chunk: bench/llm_server.c (built as llmb_bench_llm_server, libev only,
# so the truth costs little CPU), or with --server py its Python twin
# bench/llm_server.py. Loopback only.
#
#   bench/llm_clock.sh [--reps N] [--levels "1 128 512 2048"] [--itl-ms 100]
#                      [--tokens 16] [--server c|py]
#                      [--clients "llmb asyncio floor connect-only"]
#
# For each level C: C streams at once, first chunk 50 ms after the
# request reached the server, then --tokens chunks --itl-ms apart (two
# runs at 16 and 64 tell a request's fixed cost from a chunk's). TTFT p50
# error = the client's TTFT p50 minus the server's (first chunk sent minus
# request arrived, from its log). CPU per chunk = the client process's
# user+system CPU over the run divided by the content chunks it read.
# Also llmb's loop lag p99, peak concurrency and send delay p50; the
# floor: bench/llm_floor.c (llmb_bench_llm_floor), the least a client can
# do (epoll and recv), what the kernel and the scheduler cost on this
# machine; the connect-only client: bench/llm_connect_only.c
# (llmb_bench_llm_connect_only), libcurl connects (CURLOPT_CONNECT_ONLY)
# and the client speaks HTTP/1.1 over curl_easy_send and curl_easy_recv,
# what llmb would cost without libcurl's transfer layer; how late the
# server's chunks left against its schedule (p99)
# and its CPU per chunk (during llmb's runs); the 1-minute load average
# before and after the level. Medians of --reps (3). --clients runs only
# those named (llmb always runs; the others' columns read nan): llmb
# alone, with two LLMB_BUILD_DIRs taking turns, compares two builds.
# Uses LLMB_BUILD_DIR; writes bench/results/llm-clock-<time>.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

reps=3 levels="1 128 512 2048" itl=100 tokens=16 server=c
clients="llmb asyncio floor connect-only"
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps=$2; shift ;;
    --levels) levels=$2; shift ;;
    --itl-ms) itl=$2; shift ;;
    --tokens) tokens=$2; shift ;;
    --server) server=$2; shift ;;
    --clients) clients=$2; shift ;;
    -h|--help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/llm_clock.sh: unknown option $1" >&2; exit 64 ;;
  esac
  shift
done
worker_bin="$LLMB_BUILD_DIR/worker/llmb-worker"
for c in $clients; do
  case $c in llmb|asyncio|floor|connect-only) ;;
    *) echo "bench/llm_clock.sh: --clients names llmb, asyncio, floor or connect-only, not $c" >&2; exit 64 ;;
  esac
done
wants() { case " $clients " in *" $1 "*) return 0 ;; esac; return 1; }
floor="$LLMB_BUILD_DIR/bench/llmb_bench_llm_floor"
{ [ -x "$floor" ] && wants floor; } || floor=""
conly="$LLMB_BUILD_DIR/bench/llmb_bench_llm_connect_only"
{ [ -x "$conly" ] && wants connect-only; } || conly=""
push="$LLMB_BUILD_DIR/tools/push/llmb-push"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
srv_pid="" worker_pid=""
stop_all() {
  for p in $worker_pid $srv_pid; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  worker_pid="" srv_pid=""
}
trap 'stop_all; bench_redis_stop' EXIT
bench_redis_start
# CPU time of a process in us: the scheduler's ns count of each of its
# threads (/proc/PID/task/*/schedstat), not the 10 ms ticks of
# /proc/PID/stat, which at 128 streams are 5 us per chunk.
cpu_us() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%d\n", s / 1000 }'; }

case $server in
  c) srv_cmd=("$LLMB_BUILD_DIR/bench/llmb_bench_llm_server")
     [ -x "${srv_cmd[0]}" ] || { echo "bench/llm_clock.sh: ${srv_cmd[0]} is not built (LLMB_BUILD_DIR)" >&2; exit 1; } ;;
  py) srv_cmd=(python3 -S "$here/llm_server.py") ;;
  *) echo "bench/llm_clock.sh: --server is c or py, not $server" >&2; exit 64 ;;
esac
"${srv_cmd[@]}" --port 0 --first-ms 50 --itl-ms "$itl" --tokens "$tokens" > "$BENCH_TMP/srv.out" &
srv_pid=$!
for _ in $(seq 100); do grep -q listening "$BENCH_TMP/srv.out" 2>/dev/null && break; sleep 0.05; done
port=$(sed -n 's/.*127.0.0.1:\([0-9]*\)$/\1/p' "$BENCH_TMP/srv.out")
"$worker_bin" --redis "$BENCH_REDIS_URL" --prefix bench --capacity 1 \
  --llm-endpoint "srv=http://127.0.0.1:$port" 2> "$BENCH_TMP/worker.log" &
worker_pid=$!
sleep 0.3

srv_p50() { curl -s "http://127.0.0.1:$port/stats" | python3 -S -c '
import json, sys
s = json.load(sys.stdin); v = sorted(s["ttft_ns"])
late = sorted(s["late_ns"])
print("%.3f %.3f" % (v[len(v)//2] / 1e6, late[int(len(late)*.99)] / 1e6))'; }
reset() { curl -s -X POST "http://127.0.0.1:$port/reset" > /dev/null; }

run_llmb() { # C -> "ttft_p50 lagp99 peak delay_p50 chunks"
  local id
  id=$("$push" --redis "$BENCH_REDIS_URL" --prefix bench --timeout 600 --retries 0 llm \
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"bench\"}],\"max_tokens\":$tokens,\"requests\":$1,\"concurrency\":$1,\"timeout_s\":60}" 2>/dev/null)
  for _ in $(seq 6000); do
    case $(bench_rcli FCALL_RO llmb_job 1 "bench:{default}" "$id" state) in completed|failed|cancelled) break ;; esac
    sleep 0.05
  done
  bench_rcli FCALL_RO llmb_job 1 "bench:{default}" "$id" 0:result | python3 -S -c '
import json, sys
r = json.load(sys.stdin); q = r.get("_requests", r.get("requests")); s = r["summary"]
t = sorted(x["ttft_ms"] for x in q if "ttft_ms" in x)
d = sorted(x.get("send_delay_ms", 0) for x in q)
print("%.3f %.3f %d %.3f %d" % (t[len(t)//2], s["loop_lag_p99_ms"],
      s["peak_concurrency"], d[len(d)//2], s["output_tokens"]))'
}

# Runs a client that prints {"ttft_ms": [...], "chunks", "cpu_s"} ->
# "ttft_p50_error_ms cpu_us_per_chunk".
run_client() {
  local out st
  out=$("$@")
  read -r st _ < <(srv_p50)
  echo "$out" | python3 -S -c '
import json, sys
o = json.load(sys.stdin); t = sorted(o["ttft_ms"])
print("%.2f %.1f" % (t[len(t)//2] - float(sys.argv[1]),
                     o["cpu_s"] * 1e6 / o["chunks"]))' "$st"
}

median() { tr ' ' '\n' | grep -v '^$' | bench_stats | cut -d' ' -f1; }
rows=() raw=()
for c in $levels; do
  le=() lc=() ll=() lp=() ld=() pe=() pc=() sv=() fe=() fc=() sc=() ce=() cc=()
  load0=$(cut -d' ' -f1 /proc/loadavg)
  for r in $(seq 1 "$reps"); do
    reset; c0=$(cpu_us "$worker_pid"); s0=$(cpu_us "$srv_pid")
    read -r tt lag peak dly chunks < <(run_llmb "$c")
    c1=$(cpu_us "$worker_pid"); s1=$(cpu_us "$srv_pid")
    read -r st sl < <(srv_p50)
    le+=("$(awk -v a="$tt" -v b="$st" 'BEGIN{printf "%.2f", a-b}')")
    lc+=("$(awk -v m=$((c1 - c0)) -v n="$chunks" 'BEGIN{printf "%.1f", m/n}')")
    sv+=("$sl")
    sc+=("$(awk -v m=$((s1 - s0)) -v n="$chunks" 'BEGIN{printf "%.1f", m/n}')")
    ll+=("$lag"); lp+=("$peak"); ld+=("$dly")
    if wants asyncio; then
      reset
      read -r e u < <(run_client python3 -S "$here/llm_pyclient.py" --port "$port" --n "$c")
      pe+=("$e"); pc+=("$u")
    fi
    if [ -n "$floor" ]; then
      reset
      read -r e u < <(run_client "$floor" --port "$port" --n "$c")
      fe+=("$e"); fc+=("$u")
    fi
    if [ -n "$conly" ]; then
      reset
      read -r e u < <(run_client "$conly" --port "$port" --n "$c")
      ce+=("$e"); cc+=("$u")
    fi
  done
  rows+=("| $c | $(echo "${le[*]}" | median) | $(echo "${lc[*]}" | median) | $(echo "${ll[*]}" | median) | $(echo "${lp[*]}" | median) | $(echo "${ld[*]}" | median) | $(echo "${pe[*]:-}" | median) | $(echo "${pc[*]:-}" | median) | $(echo "${fe[*]:-}" | median) | $(echo "${fc[*]:-}" | median) | $(echo "${ce[*]:-}" | median) | $(echo "${cc[*]:-}" | median) | $(echo "${sv[*]}" | median) | $(echo "${sc[*]}" | median) | $load0-$(cut -d' ' -f1 /proc/loadavg) |")
  raw+=("level $c: llmb err ${le[*]} cpu ${lc[*]} lag ${ll[*]}; python err ${pe[*]:-} cpu ${pc[*]:-}; floor err ${fe[*]:-} cpu ${fc[*]:-}; connect-only err ${ce[*]:-} cpu ${cc[*]:-}; server late p99 ${sv[*]} cpu ${sc[*]}; load $load0-$(cut -d' ' -f1 /proc/loadavg)")
  echo "${raw[-1]}" >&2
done

out="$bench_root/bench/results/llm-clock-$(date -u +%Y%m%dT%H%M%SZ).md"
{
  echo "# llm executor clock vs a scheduled server (bench/llm_clock.sh)"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs (shared), load $(cut -d' ' -f1-3 /proc/loadavg);"
  echo "medians of $reps runs; first chunk at +50 ms, $tokens chunks ${itl} ms apart; server $server; clients $clients; build $LLMB_BUILD_DIR ($(git -C "$bench_root" describe --always --dirty 2>/dev/null || echo "${LLMB_BENCH_REV:-revision unknown}"))."
  echo
  echo "| streams | llmb TTFT p50 error ms | llmb CPU us/chunk | llmb loop lag p99 ms | llmb peak in flight | llmb send delay p50 ms | asyncio TTFT p50 error ms | asyncio CPU us/chunk | floor TTFT p50 error ms | floor CPU us/chunk | connect-only TTFT p50 error ms | connect-only CPU us/chunk | server send late p99 ms | server CPU us/chunk | load (1 min) |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Every run (TTFT errors in ms, CPU in us per chunk, lag p99 in ms):"
  echo
  echo '```'
  printf '%s\n' "${raw[@]}"
  echo '```'
} | tee "$out"
