#!/usr/bin/env bash
# How long one call of each function can block Redis, at the sizes that
# used to block it: a fan-out job of 10,000,000 tasks, a queue of
# 1,000,000 single-task jobs and a job with the largest dataset. Redis's SLOWLOG (every command logged,
# slowlog-log-slower-than 0) gives each call's execution time inside
# Redis; the table shows, per function and scenario, the calls made and
# the median and largest time of one call. docs/reliability.md explains
# the bounds.
#
#   bench/bounds.sh [--tasks N] [--jobs N]
#
#   --tasks N   tasks of the fan-out job (10000000)
#   --jobs N    single-task jobs in the queue (1000000)
#
# Writes bench/results/bounds-<time>.md and prints it. Uses the library
# of LLMB_BUILD_DIR (default build/release; built when missing).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

tasks=10000000 jobs=1000000
while [ $# -gt 0 ]; do
  case "$1" in
    --tasks) tasks=$2; shift ;;
    --jobs) jobs=$2; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/bounds.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
  shift
done

bundle=$LLMB_BUILD_DIR/generated/llmb_lua_bundle.lua
if [ ! -f "$bundle" ]; then
  (cd "$bench_root" && cmake --preset release >/dev/null &&
   cmake --build --preset release -j2 >/dev/null)
fi

bench_redis_start
trap bench_redis_stop EXIT
r() { bench_rcli "$@"; }
# (on stdin: the bundle is longer than one argument of a program may be)
r -x FUNCTION LOAD REPLACE < "$bundle" >/dev/null
r CONFIG SET slowlog-log-slower-than 0 >/dev/null
r CONFIG SET slowlog-max-len 1000000 >/dev/null

results=()
# Runs "$@" (redis-cli calls of FCALL <fn>) after a SLOWLOG RESET and
# records, for each FCALL function seen, its calls, median and max µs.
measure() {
  local scenario=$1
  shift
  r SLOWLOG RESET >/dev/null
  "$@"
  r --json SLOWLOG GET 1000000 2>/dev/null | python3 -c '
import json, sys, statistics
data = json.load(sys.stdin)
per = {}
for e in data:
    args = e[3]
    if len(args) > 1 and args[0] == "FCALL":
        per.setdefault(args[1], []).append(e[2])
for fn, ds in sorted(per.items()):
    print(fn, len(ds), int(statistics.median(ds)), max(ds))
' > "$BENCH_TMP/m"
  while read -r fn n med max; do
    results+=("| $scenario | \`$fn\` | $n | $med | $max |")
  done < "$BENCH_TMP/m"
}

# Runs the Python program on stdin, with arguments "$@" (sys.argv[1:]),
# after the definition of out (sys.stdout) and of cmd(args), which
# writes one command in RESP; sends what it writes to Redis in one
# redis-cli --pipe.
rpipe() {
  local prelude
  prelude=$(cat <<'EOF'
import sys
out = sys.stdout
def cmd(args):
    out.write('*%d\r\n' % len(args))
    for a in args:
        b = a.encode()
        out.write('$%d\r\n' % len(b))
        out.write(a + '\r\n')
EOF
)
  python3 -c "$prelude"$'\n'"$(cat)" "$@" | r --pipe >/dev/null
}

q='llmb:{bounds}'
r HSET "$q:conf" max_tasks "$tasks" retention_s 0 >/dev/null

fanout() {
  local id
  id=$(r FCALL llmb_push 1 "$q" "{\"type\":\"t\",\"tasks\":$tasks,\"id\":\"big\"}")
  for _ in 1 2 3; do r FCALL llmb_claim 1 "$q" w 1000 600000 250 \
    0123456789abcdef0123456789abcdef >/dev/null; done
  r FCALL llmb_cancel 1 "$q" "$id" >/dev/null
  r FCALL llmb_stats 1 "$q" >/dev/null
}
measure "one job of $tasks tasks: push, 3 claims of 1000, cancel" fanout

retry_fanout() {
  # the 3000 running tasks of the cancelled job stop (their worker is
  # reaped, 250 leases a call)
  while [ "$(r FCALL llmb_reap_worker 1 "$q" w gone)" != 0 ]; do :; done
  r FCALL llmb_retry 1 "$q" big >/dev/null
  for _ in 1 2 3; do r FCALL llmb_claim 1 "$q" w2 1000 600000 >/dev/null; done
  r FCALL llmb_purge 1 "$q" 250 >/dev/null
}
measure "the same job: stopped, retried, 3 claims, purged" retry_fanout

q='llmb:{bounds1m}'
r HSET "$q:conf" retention_s 0 >/dev/null
fill() {
  rpipe "$q" "$jobs" <<'EOF'
q, n = sys.argv[1], int(sys.argv[2])
doc = '{"type":"t","payload":{"n":1}}'
done = 0
while done < n:
    k = min(250, n - done)
    cmd(['FCALL', 'llmb_push', '1', q] + [doc] * k)
    done += k
EOF
}
measure "$jobs single-task jobs pushed, 250 per call (the most)" fill
stored=$(r HLEN "$q:jd")
[ "$stored" = "$jobs" ] || echo "bench/bounds.sh: $stored of $jobs jobs stored" >&2

drain_some() {
  for _ in $(seq 1 20); do r FCALL llmb_claim 1 "$q" w 1000 600000 >/dev/null; done
  r FCALL llmb_reap_worker 1 "$q" w gone >/dev/null
  local id
  id=$(r LINDEX "$q:jl" 0)
  r FCALL llmb_cancel 1 "$q" "$id" >/dev/null
  r FCALL llmb_retry 1 "$q" "$id" >/dev/null
  r FCALL llmb_stats 1 "$q" >/dev/null
  for _ in $(seq 1 20); do r FCALL llmb_purge 1 "$q" 250 >/dev/null; done
}
measure "the $jobs-job queue: 20 claims of n=1000 (250 jobs each), reap, cancel, retry, 20 purges of 250" drain_some

# A job with the largest dataset (1,000,000 entries of 63 bytes, 1,000 per
# llmb_dataset call), pushed, cancelled and deleted by retention, which
# frees the dataset off the server's thread (UNLINK).
q='llmb:{boundsds}'
r HSET "$q:conf" retention_s 1 >/dev/null
dataset() {
  rpipe "$q" <<'EOF'
q = sys.argv[1]
for first in range(0, 1000000, 1000):
    cmd(['FCALL', 'llmb_dataset', '1', q, 'ds', str(first)]
        + ['{"prompt":"%050d"}' % (first + i) for i in range(1000)])
EOF
  r FCALL llmb_push 1 "$q" \
    '{"type":"llm","id":"ds","payload":{"model":"m","dataset":{"entries":1000000}}}' >/dev/null
  r FCALL llmb_cancel 1 "$q" ds >/dev/null
  # ended long ago (the end in front of its record at 1 ms): the next
  # reap deletes it
  local v inner
  v=$(r HGET "$q:jd" ds)
  inner=${v#*$'\t'}
  inner=${inner#*$'\t'}
  r HSET "$q:jd" ds "X1"$'\t\t'"$inner" >/dev/null
  r LSET "$q:fin" 0 "1 ds" >/dev/null
  r FCALL llmb_reap 1 "$q" >/dev/null
}
measure "a dataset of 1,000,000 entries (63 MB): stored, pushed, cancelled, deleted by retention" dataset
[ "$(r EXISTS "$q:ds:ds" "$q:j:ds")" = 0 ] && [ "$(r HEXISTS "$q:jd" ds)" = 0 ] ||
  echo "bench/bounds.sh: retention left the dataset job" >&2

out="$here/results/bounds-$(date -u +%Y%m%dT%H%M%SZ).md"
{
  echo "# Time one call blocks Redis"
  echo
  echo "bench/bounds.sh --tasks $tasks --jobs $jobs, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores;"
  echo "execution time inside Redis per FCALL, from SLOWLOG (µs); jobs stored: $stored."
  echo
  echo "| scenario | function | calls | median µs | max µs |"
  echo "| --- | --- | --- | --- | --- |"
  printf '%s\n' "${results[@]}"
} > "$out"
cat "$out"
