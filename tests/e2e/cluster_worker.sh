#!/usr/bin/env bash
# llmb-worker against a real Redis Cluster (3 primaries, 3 replicas; the
# ctest fixture redis_cluster):
#  1. 30 queues spread over the three shards drain completely with two
#     workers serving all of them;
#  2. while two workers drain 3000 jobs (40 ms each, 32 at a time: about
#     4 s), redis-cli --cluster reshard moves
#     100 slots, among them those of 3 busy queues, to another primary:
#     every job completes, each task started once;
#  3. a worker stopped while the slot of the claim on its id is being
#     migrated tries its deregistration again until the move ends, and
#     deletes its claim, record and registry entry.
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
    mapfile -t ids < <(rcli LRANGE "$prefix:{$q}:jl" 0 -1)
    [ "${#ids[@]}" = "$n" ] || fail "queue $q has ${#ids[@]} jobs, not $n"
    [ "$(rcli ZCARD "$prefix:{$q}:running")" = 0 ] || fail "$q still running"
    [ "$(rcli HLEN "$prefix:{$q}:run")" -le 1 ] || fail "$q still running"
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
    [ "$(redis-cli -p "$p" --scan --pattern "$prefix:{d*}:pl" | wc -l)" -gt 0 ] ||
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
    n=$(redis-cli -p "$dst" EXISTS "$prefix:{$q}:jd")
    [ "$n" = 1 ] || fail "queue $q did not move to $dst"
done
dups=0
for q in "${all[@]}"; do dups=$((dups + $(check_queue "$q" 500))); done
echo "reshard during drain: 3000 jobs (40 ms each, 32 at a time), 3 queues" \
     "moved, $done_at_reshard done when the reshard ended, tasks run twice: $dups"
[ "$dups" = 0 ] || fail "$dups tasks ran twice"
if grep -i "error" "$tmp"/worker*.log; then fail "worker logged errors"; fi

# --- 3. a clean stop while the claim on the id is being migrated -----------
# The claim (<prefix>:worker:<id>:owner) moved already and its slot is
# half moved: the source answers the deregistration's GET with ASK, which
# under WATCH is not followed. The worker says so and tries again until
# the move ends (MOVED, then the new owner answers), then deletes the
# claim, the record and the registry entry: it does not stop without
# deregistering. The slot goes back to its primary at the end.
id="cd$$"
owner="$prefix:worker:$id:owner"
q=cdq
log="$tmp/stop.log"

slot=$(rcli CLUSTER KEYSLOT "$owner")
# the primaries' node ids, by port
declare -A node_id
for p in "${ports[@]:0:3}"; do node_id[$p]=$(redis-cli -p "$p" CLUSTER MYID); done

# moves the keys of $slot from port $1 to port $2, in batches
slot_keys_move() {
    local -a keys
    local r
    while mapfile -t keys < <(redis-cli -p "$1" CLUSTER GETKEYSINSLOT "$slot" 100 |
                              grep -v '^$') &&
        [ "${#keys[@]}" -gt 0 ]; do
        r=$(redis-cli -p "$1" MIGRATE 127.0.0.1 "$2" "" 0 5000 KEYS "${keys[@]}")
        [ "$r" = OK ] || fail "MIGRATE of ${keys[*]} from $1 to $2: $r"
    done
}
# begins moving $slot from port $1 to port $2
slot_move_begin() {
    redis-cli -p "$2" CLUSTER SETSLOT "$slot" IMPORTING "${node_id[$1]}" >/dev/null
    redis-cli -p "$1" CLUSTER SETSLOT "$slot" MIGRATING "${node_id[$2]}" >/dev/null
}
# ends moving $slot from port $1 to port $2: its last keys, then every
# primary names $2 its owner
slot_move_end() {
    local p
    slot_keys_move "$1" "$2"
    redis-cli -p "$2" CLUSTER SETSLOT "$slot" NODE "${node_id[$2]}" >/dev/null
    redis-cli -p "$1" CLUSTER SETSLOT "$slot" NODE "${node_id[$2]}" >/dev/null
    for p in "${ports[@]:0:3}"; do
        redis-cli -p "$p" CLUSTER SETSLOT "$slot" NODE "${node_id[$2]}" >/dev/null
    done
}
# a move begun is ended, whatever happens, so that the fixture's other
# tests find a stable cluster
moving=""
trap '[ -z "$moving" ] || slot_move_end $moving; cluster_test_end' EXIT

# A worker with a task running (so that it stops only when told to twice:
# --grace 0 releases it at once) and its claim in place.
"$push" --queue "$q" --id long sleep '{"ms":600000}' >/dev/null
LLMB_LOG_LEVEL=info "$worker" --queues "$q" --handler sleep=sleep --id "$id" \
    --grace 0 --kill-grace-ms 20000 2>"$log" &
wpid=$!
pids+=("$wpid")
for i in $(seq 200); do
    [ "$(rcli ZCARD "$prefix:{$q}:running")" = 1 ] && break
    sleep 0.1
done
[ "$(rcli ZCARD "$prefix:{$q}:running")" = 1 ] || fail "the worker claimed nothing"
[ "$(rcli EXISTS "$owner")" = 1 ] || fail "no claim on the worker id"

src=""
for p in "${ports[@]:0:3}"; do
    [ "$(redis-cli -p "$p" CLUSTER COUNTKEYSINSLOT "$slot")" -gt 0 ] && src=$p
done
[ -n "$src" ] || fail "no primary holds slot $slot"
for p in "${ports[@]:0:3}"; do [ "$p" != "$src" ] && dst=$p && break; done

# The claim moves to dst; the slot stays half moved: the source answers
# ASK for it.
slot_move_begin "$src" "$dst"
moving="$src $dst"
[ "$(redis-cli -p "$src" MIGRATE 127.0.0.1 "$dst" "$owner" 0 5000)" = OK ] ||
    fail "MIGRATE of the claim failed"

kill -TERM "$wpid"
for i in $(seq 200); do
    grep -q "refused the deregistration id=$id: ASK" "$log" && break
    kill -0 "$wpid" 2>/dev/null || break
    sleep 0.1
done
grep -q "refused the deregistration id=$id: ASK" "$log" ||
    fail "the worker did not try again: $(grep -i dereg "$log" | tail -2)"

# The move ends: the worker finds the claim at its new primary.
slot_move_end $moving
moving=""
rc=0
wait "$wpid" || rc=$?
pids=()
[ "$rc" = 0 ] || fail "the worker exited $rc: $(tail -3 "$log")"
grep -q "worker stopped id=$id" "$log" || fail "no clean stop: $(tail -3 "$log")"
if grep -q "without deregistering\|exiting without confirmation" "$log"; then
    fail "the worker stopped without deregistering: $(tail -3 "$log")"
fi
[ "$(rcli EXISTS "$owner")" = 0 ] || fail "the claim on the id is left"
[ "$(rcli EXISTS "$prefix:worker:$id")" = 0 ] || fail "the record is left"
[ -z "$(rcli ZSCORE "$prefix:workers" "$id")" ] || fail "the registry entry is left"
[ "$(rcli LLEN "$prefix:{$q}:pl")" = 1 ] || fail "the task was not released"

# The slot goes back.
slot_move_begin "$dst" "$src"
moving="$dst $src"
slot_move_end $moving
moving=""
echo ok
