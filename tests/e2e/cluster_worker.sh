#!/usr/bin/env bash
# llmb-worker against a real Redis Cluster (3 primaries, 3 replicas; the
# ctest fixture redis_cluster):
#  1. 30 queues spread over the three shards drain completely with two
#     workers serving all of them;
#  2. while two workers drain 3000 jobs (40 ms each, 32 at a time: about
#     4 s), redis-cli --cluster reshard moves
#     100 slots, among them those of 3 busy queues, to another primary:
#     every job completes, each task started once.
# Duplicates (tasks started more than once) are counted and must be 0: a
# function call on a queue whose slot is half moved waits for the move to
# end (docs/operations.md, Redis Cluster).
set -euo pipefail
. "$(dirname "$0")/cluster_lib.sh"
cluster_test "e2ecw$$"
export LLMB_LOG_LEVEL=warn
# count of tasks ended ok in queue $1
ok_of() { local n; n=$(rcli HGET "$prefix:{$1}:counts" ok); echo "${n:-0}"; }
# waits until the queues $2... hold $1 ok tasks in all; fails after 120 s
wait_ok() {
    local want=$1 got i q
    shift
    for i in $(seq 1200); do
        got=0
        for q in "$@"; do got=$((got + $(ok_of "$q"))); done
        [ "$got" -ge "$want" ] && return 0
        sleep 0.1
    done
    fail "only $got of $want tasks completed"
}
start_workers() {
    local k
    for k in 1 2; do
        "$worker" --queues "$1" --handler noop=noop --handler sleep=sleep \
            --capacity 16 \
            --id "cw$$-$k" 2>>"$tmp/worker$k.log" &
        pids+=($!)
    done
}
stop_workers() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" || fail "a worker exited $?"; done
    pids=()
}
# every job of queue $1 completed, each of its tasks started once; prints
# the number of tasks started more than once
check_queue() {
    local q=$1 n=$2 res
    local -a ids
    mapfile -t ids < <(rcli ZRANGE "$prefix:{$q}:jobs" 0 -1)
    [ "${#ids[@]}" = "$n" ] || fail "queue $q has ${#ids[@]} jobs, not $n"
    [ "$(rcli ZCARD "$prefix:{$q}:running")" = 0 ] || fail "$q still running"
    # one redis-cli for the queue: state and attempts of each job
    res=$(printf "FCALL_RO llmb_job 1 $prefix:{$q} %s state 0:attempt\n" "${ids[@]}" | rcli |
          grep -v '^-> Redirected' | paste - - | awk '$1 != "completed" {bad++} $2 != 1 {dup++}
                           END {print bad + 0, dup + 0}')
    [ "${res% *}" = 0 ] || fail "${res% *} jobs of $q did not complete"
    echo "${res#* }"
}

# --- 1. 30 queues over the shards drain completely -------------------------
queues=()
for q in $(seq 0 29); do queues+=("d$q"); done
qlist=$(IFS=,; echo "${queues[*]}")
for q in "${queues[@]}"; do
    for k in $(seq 0 19); do printf '{"type":"noop","queue":"%s","id":"j%d"}\n' "$q" "$k"; done
done >"$tmp/drain.ndjson"
"$push" --batch "$tmp/drain.ndjson" >/dev/null || fail "push exit $?"
for p in "${ports[@]:0:3}"; do
    [ "$(redis-cli -p "$p" --scan --pattern "$prefix:{d*}:pending" | wc -l)" -gt 0 ] ||
        fail "primary $p holds none of the queues"
done
start_workers "$qlist"
wait_ok 600 "${queues[@]}"
stop_workers
dups=0
for q in "${queues[@]}"; do dups=$((dups + $(check_queue "$q" 20))); done
[ "$dups" = 0 ] || fail "$dups tasks ran twice"
# the workers deregistered on every shard
[ "$(rcli ZCARD "$prefix:workers")" = 0 ] || fail "workers left registered"

# --- 2. a reshard during a drain loses nothing -----------------------------
# Three queues in the first 100 slots of one primary: redis-cli moves a
# primary's slots from its lowest.
src=${ports[0]}
lo=$(redis-cli -p "$src" CLUSTER SHARDS | awk -v p="$src" '
    /^slots$/ {getline a; getline b; s=a}
    /^port$/ {getline x; if (x == p) {print s; exit}}')
[ -n "$lo" ] || fail "no slot range for $src"
for i in $(seq 0 40000); do echo "CLUSTER KEYSLOT m$i"; done |
    redis-cli -p "$src" >"$tmp/slots"
mapfile -t moved < <(awk -v lo="$lo" '$1 >= lo && $1 < lo + 100 {print "m" NR-1}' \
    "$tmp/slots" | head -n 3)
[ "${#moved[@]}" = 3 ] || fail "found ${#moved[@]} queue names in slots $lo.."
stay=(s0 s1 s2)
all=("${moved[@]}" "${stay[@]}")
for q in "${all[@]}"; do
    for k in $(seq 0 499); do printf '{"type":"sleep","payload":{"ms":40},"queue":"%s","id":"j%d"}\n' "$q" "$k"; done
done >"$tmp/move.ndjson"
"$push" --batch "$tmp/move.ndjson" >/dev/null || fail "push exit $?"
dst=${ports[1]}
src_id=$(redis-cli -p "$src" CLUSTER MYID)
dst_id=$(redis-cli -p "$dst" CLUSTER MYID)
start_workers "$(IFS=,; echo "${all[*]}")"
redis-cli --cluster reshard "127.0.0.1:$src" --cluster-from "$src_id" \
    --cluster-to "$dst_id" --cluster-slots 100 --cluster-yes \
    --cluster-pipeline 5 >"$tmp/reshard.log" 2>&1 ||
    fail "reshard failed: $(tail -5 "$tmp/reshard.log")"
done_at_reshard=0
for q in "${all[@]}"; do done_at_reshard=$((done_at_reshard + $(ok_of "$q"))); done
wait_ok 3000 "${all[@]}"
stop_workers
for q in "${moved[@]}"; do
    n=$(redis-cli -p "$dst" EXISTS "$prefix:{$q}:jobs")
    [ "$n" = 1 ] || fail "queue $q did not move to $dst"
done
dups=0
for q in "${all[@]}"; do dups=$((dups + $(check_queue "$q" 500))); done
echo "reshard during drain: 3000 jobs (40 ms each, 32 at a time), 3 queues" \
     "moved, $done_at_reshard done when the reshard ended, tasks run twice: $dups"
[ "$dups" = 0 ] || fail "$dups tasks ran twice"
if grep -i "error" "$tmp"/worker*.log; then fail "worker logged errors"; fi
echo ok
