#!/usr/bin/env bash
# llmb-push --batch --wait against a real Redis Cluster (the ctest fixture
# redis_cluster), with a real llmb-worker and llmb-coordinator:
#  1. a batch over 12 queues spread over the three primaries, each queue
#     with a job that completes, one that fails and one that runs until it
#     is cancelled during the wait (the same three ids in every queue);
#     while it waits, the slot of one queue moves to another primary (its
#     reads are answered ASK, then MOVED, and followed), and the sleeping
#     jobs are cancelled, that queue's last: --wait ends with every job's
#     state and aggregate, and exit 1;
#  2. a batch that only completes: exit 0;
#  3. one job's --wait, its queue's slot moved while it waits, then the
#     job cancelled: exit 1, the job cancelled.
set -euo pipefail
. "$(dirname "$0")/cluster_lib.sh"
admin="$1"
cluster_test "e2ecpw$$"
export LLMB_LOG_LEVEL=warn LLMB_STATE_DIR=$tmp/state

queues=()
for q in $(seq 0 11); do queues+=("w$q"); done
qlist=$(IFS=,; echo "${queues[*]}")
# the primary of each queue (the one that answers without MOVED); the
# queues use all three
declare -A owners=()
for q in "${queues[@]}"; do
    for p in "${ports[@]:0:3}"; do
        redis-cli -p "$p" EXISTS "$prefix:{$q}:none" | grep -q MOVED ||
            owners[$q]=$p
    done
    [ -n "${owners[$q]:-}" ] || fail "no primary owns queue $q"
done
for p in "${ports[@]:0:3}"; do
    printf '%s\n' "${owners[@]}" | grep -qx "$p" ||
        fail "primary $p owns none of the 12 queues"
done

# Moves the slot of queue $1 (of key $2) to another primary as redis-cli
# --cluster reshard does for each slot: IMPORTING, MIGRATING, MIGRATE its
# keys, then SETSLOT NODE on every primary. The slot is held half-moved
# for 2.5 s on the way: a wait's reads of the queue are then answered ASK
# by the source (and sent to the importing node after ASKING), and MOVED
# after.
move_slot() {
    local q=$1 key=$2 src="" dst="" p slot src_id dst_id
    local -a keys
    for p in "${ports[@]:0:3}"; do
        redis-cli -p "$p" EXISTS "$key" | grep -q MOVED || src=$p
    done
    for p in "${ports[@]:0:3}"; do [ "$p" != "$src" ] && dst=$p && break; done
    slot=$(rcli CLUSTER KEYSLOT "$key")
    src_id=$(redis-cli -p "$src" CLUSTER MYID)
    dst_id=$(redis-cli -p "$dst" CLUSTER MYID)
    redis-cli -p "$dst" CLUSTER SETSLOT "$slot" IMPORTING "$src_id" |
        grep -qx OK || fail "IMPORTING"
    redis-cli -p "$src" CLUSTER SETSLOT "$slot" MIGRATING "$dst_id" |
        grep -qx OK || fail "MIGRATING"
    while :; do
        mapfile -t keys < <(redis-cli -p "$src" CLUSTER GETKEYSINSLOT \
                                "$slot" 100 | grep .)
        [ "${#keys[@]}" -eq 0 ] && break
        redis-cli -p "$src" MIGRATE 127.0.0.1 "$dst" "" 0 5000 \
            KEYS "${keys[@]}" | grep -qx OK || fail "MIGRATE ${keys[*]}"
    done
    redis-cli -p "$src" EXISTS "$key" | grep -q '^ASK' ||
        fail "$src does not answer ASK for $q"
    sleep 2.5
    for p in "$dst" "$src" "${ports[@]:0:3}"; do
        redis-cli -p "$p" CLUSTER SETSLOT "$slot" NODE "$dst_id" >/dev/null
    done
    [ "$(redis-cli -p "$dst" EXISTS "$key")" = 1 ] ||
        fail "queue $q did not move to $dst"
    redis-cli -p "$src" EXISTS "$key" | grep -q '^MOVED' ||
        fail "$src does not answer MOVED for $q"
}

"$worker" --queues "$qlist" --handler echo=echo --handler fail=fail \
    --handler sleep=sleep --capacity 64 --heartbeat-ms 200 \
    --id "cpw$$" 2>"$tmp/worker.log" &
pids+=($!)
"$LLMB_BUILD_DIR/coordinator/llmb-coordinator" --tick-ms 50 \
    2>"$tmp/coordinator.log" &
pids+=($!)

# --- 1. completed, failed, cancelled, and a slot moved while waiting -------
for q in "${queues[@]}"; do
    printf '{"type":"echo","queue":"%s","id":"ok","tasks":2}\n' "$q"
    printf '{"type":"fail","queue":"%s","id":"ko","max_retries":0}\n' "$q"
    printf '{"type":"sleep","queue":"%s","id":"zz","payload":{"ms":600000}}\n' "$q"
done >"$tmp/jobs.ndjson"
set +e
"$push" --batch "$tmp/jobs.ndjson" --wait --wait-timeout 120 \
    >"$tmp/out" 2>"$tmp/err" &
push_pid=$!
pids+=($push_pid)
set -e
# every sleep job running: the wait has begun
for q in "${queues[@]}"; do
    for i in $(seq 600); do
        [ "$(rcli FCALL_RO llmb_job 1 "$prefix:{$q}" zz state)" = running ] && break
        sleep 0.1
    done
    [ "$(rcli FCALL_RO llmb_job 1 "$prefix:{$q}" zz state)" = running ] ||
        fail "job zz of $q not running: $(cat "$tmp/err" "$tmp/worker.log")"
done
[ ! -s "$tmp/out" ] || fail "llmb-push ended early: $(cat "$tmp/out" "$tmp/err")"

# The slot of w11 moves to another primary. (Not w0: the wait's blocking
# read, which goes through the router, is on the first queue with jobs
# open.)
mq=w11
move_slot "$mq" "$prefix:{$mq}:jd"

# Let the wait's reads meet the moved slot (the job hashes are read again
# at least once a second), then end every job but w11's zz: llmb-push
# must go on following it on its new primary, not take it for gone, nor
# for ended when the job of the same id ends in another queue.
sleep 2.5
for q in "${queues[@]:0:11}"; do
    "$admin" cancel -q "$q" zz >/dev/null || fail "cancel zz of $q exit $?"
done
for q in "${queues[@]:0:11}"; do
    for i in $(seq 600); do
        [ -n "$(rcli FCALL_RO llmb_job 1 "$prefix:{$q}" zz aggregate)" ] && break
        sleep 0.1
    done
done
sleep 2
# (it prints the jobs when every one has ended)
[ ! -s "$tmp/out" ] ||
    fail "llmb-push ended while zz of $mq still ran: $(cat "$tmp/out" "$tmp/err")"
"$admin" cancel -q "$mq" zz >/dev/null || fail "cancel zz of $mq exit $?"
rc=0
wait "$push_pid" || rc=$?
[ $rc -eq 1 ] || fail "--batch --wait exit $rc, not 1: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/out")" = 36 ] || fail "$(wc -l <"$tmp/out") lines, not 36"
python3 - "$tmp/out" <<'PY' || fail "states: $(cat "$tmp/out")"
import json, sys
want = {"ok": "completed", "ko": "failed", "zz": "cancelled"}
lines = [json.loads(l) for l in open(sys.argv[1])]
for i, job in enumerate(lines):
    q = "w%d" % (i // 3)
    kind = ["ok", "ko", "zz"][i % 3]
    assert job["id"] == kind, (i, job["id"])
    assert job["queue"] == q, job
    assert job["state"] == want[kind], job
    assert "aggregate" in job, job
PY
! grep -qi 'MOVED\|error\|gone' "$tmp/err" || fail "stderr: $(cat "$tmp/err")"
grep -q '^36 jobs, 48 tasks: 24 ok, 12 failed, 12 cancelled' "$tmp/err" ||
    fail "no jobs table on stderr: $(cat "$tmp/err")"

# --- 2. all completed: exit 0 ----------------------------------------------
for q in "${queues[@]}"; do
    for k in 1 2 3; do
        printf '{"type":"echo","queue":"%s","id":"b%d-%s"}\n' "$q" "$k" "$q"
    done
done >"$tmp/ok.ndjson"
"$push" --batch "$tmp/ok.ndjson" --wait --wait-timeout 60 --json \
    >"$tmp/ok.out" 2>"$tmp/ok.err" ||
    fail "all-completed --batch --wait exit $?: $(cat "$tmp/ok.err")"
[ "$(grep -c '"state":"completed"' "$tmp/ok.out")" = 36 ] ||
    fail "not 36 completed: $(cat "$tmp/ok.out")"
# --- 3. one job's --wait, its slot moved while it waits -------------------
"$push" --queue w5 --id one-w5 --wait --wait-timeout 120 sleep \
    '{"ms":600000}' >"$tmp/one.out" 2>"$tmp/one.err" &
push_pid=$!
pids+=($push_pid)
for i in $(seq 600); do
    [ "$(rcli FCALL_RO llmb_job 1 "$prefix:{w5}" one-w5 state)" = running ] && break
    sleep 0.1
done
move_slot w5 "$prefix:{w5}:jd"
sleep 2.5 # reads answered MOVED
"$admin" cancel -q w5 one-w5 >/dev/null || fail "cancel one-w5 exit $?"
rc=0
wait "$push_pid" || rc=$?
[ $rc -eq 1 ] || fail "one job --wait exit $rc, not 1: $(cat "$tmp/one.err")"
grep -q '"state": "cancelled"' "$tmp/one.out" ||
    fail "one-w5: $(cat "$tmp/one.out" "$tmp/one.err")"
echo ok
