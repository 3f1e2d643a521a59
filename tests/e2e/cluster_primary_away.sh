#!/usr/bin/env bash
# One Redis Cluster primary stopped (kill -STOP; cluster-node-timeout 60 s,
# so no replica takes over): llmb-coordinator goes on with the queues of
# the other primaries. While the primary is stopped, on a queue of
# another primary: a job completed is aggregated, a lease that runs out
# is taken back (llmb_reap), a delayed task is promoted (llmb_promote) and
# a worker that died is reaped; /healthz names the primary that does not
# answer (degraded) and /metrics says llmb_primary_up 0 for it; the
# coordinator logs it once. After kill -CONT its queue is aggregated
# again. Its own cluster, as it stops a node; test-made workers play
# with redis-cli and the llmb functions.
set -euo pipefail
src=$LLMB_SOURCE_DIR
coord="$LLMB_BUILD_DIR/coordinator/llmb-coordinator"
tmp=$(mktemp -d)
pids=()
vpid=""
cleanup() {
    if [ -n "$vpid" ]; then kill -CONT "$vpid" 2>/dev/null || true; fi
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    "$src/tests/support/redis-cluster.sh" stop "$tmp/cluster" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    echo "--- claims and completions" >&2
    tail -n 30 "$tmp/claims" >&2 || true
    echo "--- coordinator log (its debug lines apart)" >&2
    { grep -v " debug " "$tmp/coord.log" || true; } | tail -n 40 >&2
    echo "--- the last debug lines (liveness checks)" >&2
    { grep " debug " "$tmp/coord.log" || true; } | tail -n 20 >&2
    exit 1
}

LLMB_CLUSTER_NODE_TIMEOUT=60000 \
    "$src/tests/support/redis-cluster.sh" start "$tmp/cluster" >/dev/null
url=$(cat "$tmp/cluster/cluster.url")
mapfile -t ports <"$tmp/cluster/ports"
victim=${ports[0]}
vpid=$(cat "$tmp/cluster/node-$victim/redis.pid")

# The primary (its port) that owns key $1.
owner_of() {
    local p
    for p in "${ports[@]:0:3}"; do
        if ! timeout 5 redis-cli -p "$p" EXISTS "$1" | grep -q MOVED; then
            echo "$p"
            return
        fi
    done
}
# A prefix whose keys outside any queue (<prefix>:queues, :workers,
# :metrics, the dying worker's record) live on the other primaries, and a
# queue on each side.
wid="pa$$-dead"
prefix=""
for i in $(seq 200); do
    p="e2epa$$x$i"
    [ "$(owner_of "$p:queues")" != "$victim" ] &&
        [ "$(owner_of "$p:workers")" != "$victim" ] &&
        [ "$(owner_of "$p:metrics")" != "$victim" ] &&
        [ "$(owner_of "$p:worker:$wid")" != "$victim" ] && { prefix=$p; break; }
done
[ -n "$prefix" ] || fail "no prefix keeps its global keys off $victim"
qa="" qb=""
for i in $(seq 100); do
    o=$(owner_of "$prefix:{q$i}")
    if [ "$o" = "$victim" ]; then [ -z "$qa" ] && qa="q$i"
    else [ -z "$qb" ] && qb="q$i"; fi
    [ -n "$qa" ] && [ -n "$qb" ] && break
done
live=$(owner_of "$prefix:{$qb}")
export LLMB_REDIS_URL=$url LLMB_PREFIX=$prefix LLMB_LOG_LEVEL=info

# redis-cli on a primary that stays up, following MOVED
rcli() { timeout 10 redis-cli -c -p "$live" "$@"; }
# redis-cli on the victim
vcli() { timeout 10 redis-cli -c -p "$victim" "$@"; }
push() { # queue, document; via the cli $3 (rcli or vcli)
    ${3:-rcli} FCALL llmb_push 1 "$prefix:{$1}" "$2" >/dev/null
    rcli SADD "$prefix:queues" "$1" >/dev/null
}
# claims up to $3 tasks of queue $1 for worker $2 with a lease of $4 ms
claim() { ${5:-rcli} FCALL llmb_claim 1 "$prefix:{$1}" "$2" "$3" "$4" >>"$tmp/claims"; }
# completes task $3 (its ref: the id of a job of one task, "id:index" of
# a fan-out job's) of queue $1 held by worker $2: the token is its batch's
complete() {
    local tok
    tok=$(${4:-rcli} HGET "$prefix:{$1}:run" "$3")
    ${4:-rcli} FCALL llmb_complete 1 "$prefix:{$1}" "$2" "$3" "$tok" \
        '{"latency_ms":5}' >>"$tmp/claims"
}
# field $2 of llmb_stats of queue $1
stat_of() {
    rcli FCALL_RO llmb_stats 1 "$prefix:{$1}" | paste - - |
        awk -v f="$2" '$1 == f {print $2}'
}
# waits (up to $1 tenths of a second) until the command "$2" succeeds
wait_for() {
    local n=$1 i
    shift
    for i in $(seq "$n"); do
        if eval "$1"; then return 0; fi
        sleep 0.1
    done
    return 1
}
mport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
http() { curl -s --max-time 10 "http://127.0.0.1:$mport$1"; }

# (at debug level: a failure shows the liveness checks)
LLMB_LOG_LEVEL=debug "$coord" --tick-ms 100 --metrics-ms 300 --liveness-ms 200 \
    --gone-after-ms 1000 --redis-timeout-ms 500 \
    --metrics-addr "127.0.0.1:$mport" 2>"$tmp/coord.log" &
cpid=$!
pids+=("$cpid")
# (it loads the function library on every primary)
wait_for 300 'grep -q "connected to redis" "$tmp/coord.log"' ||
    fail "the coordinator did not connect"
push "$qa" '{"type":"t","id":"a0"}' vcli
push "$qb" '{"type":"t","id":"b0"}'
wait_for 300 '[ -n "$(rcli HGET "$prefix:metrics" "queue:$qa:pending")" ]' ||
    fail "the coordinator did not see queue $qa"
# a worker that will die: registered, connected by name, holding a task
"$LLMB_BUILD_DIR/worker/llmb-worker" --queues "$qb" --handler t=sleep \
    --id "$wid" 2>"$tmp/worker.log" &
wpid=$!
pids+=("$wpid")
push "$qb" '{"type":"t","id":"bw","payload":{"ms":600000}}'
wait_for 300 '[ "$(stat_of "$qb" running)" = 1 ]' ||
    fail "the worker did not take its task"

kill -STOP "$vpid"
t_stop=$(date +%s)
kill -9 "$wpid"
# the worker's death: its task back in pending
wait_for 300 '[ "$(rcli HGET "$prefix:worker:$wid" state)" = dead ]' ||
    fail "the dead worker was not reaped while $victim was stopped"
# a completed job aggregated
push "$qb" '{"type":"t","id":"b1","tasks":2}'
claim "$qb" "w$$" 10 30000
complete "$qb" "w$$" "b0"
complete "$qb" "w$$" "b1:0"
complete "$qb" "w$$" "b1:1"
complete "$qb" "w$$" "bw"
wait_for 300 '[ -n "$(rcli FCALL_RO llmb_job 1 "$prefix:{$qb}" b1 aggregate)" ]' ||
    fail "job b1 of $qb was not aggregated while $victim was stopped"
# an overdue lease taken back
push "$qb" '{"type":"t","id":"b2"}'
claim "$qb" "w$$" 1 300
wait_for 300 '[ "$(stat_of "$qb" running)" = 0 ] && [ "$(stat_of "$qb" pending)" = 1 ]' ||
    fail "the expired lease of b2 was not taken back while $victim was stopped"
# a delayed task promoted (no worker claims)
push "$qb" '{"type":"t","id":"b3","delay_s":1}'
wait_for 300 '[ "$(stat_of "$qb" delayed)" = 0 ] && [ "$(stat_of "$qb" pending)" = 2 ]' ||
    fail "delayed b3 was not promoted while $victim was stopped"
# what the coordinator says
hz=$(http /healthz)
python3 - "$hz" "127.0.0.1:$victim" <<'EOF' || fail "healthz: $hz"
import json, sys
d = json.loads(sys.argv[1])
assert d["status"] == "degraded", d
assert d["redis"] is True, d
assert list(d["primaries_away"]) == [sys.argv[2]], d
assert "does not answer" in d["reason"] and sys.argv[2] in d["reason"], d
EOF
m=$(http /metrics)
grep -qx "llmb_primary_up{primary=\"127.0.0.1:$victim\"} 0" <<<"$m" ||
    fail "metrics: $(grep llmb_primary_up <<<"$m")"
[ "$(grep -c '^llmb_primary_up{.*} 1$' <<<"$m")" = 2 ] ||
    fail "metrics: $(grep llmb_primary_up <<<"$m")"
grep -q "^llmb_primary_away_seconds{primary=\"127.0.0.1:$victim\"} " <<<"$m" ||
    fail "metrics: no llmb_primary_away_seconds"
[ "$(rcli HGET "$prefix:metrics" primaries_away)" = "127.0.0.1:$victim" ] ||
    fail "<prefix>:metrics primaries_away: $(rcli HGET "$prefix:metrics" primaries_away)"
# still stopped: all of the above happened meanwhile
[ "$(ps -o stat= -p "$vpid" | cut -c1)" = T ] || fail "$victim is not stopped"
away_s=$(( $(date +%s) - t_stop ))

kill -CONT "$vpid"
vpid_cont=$vpid
vpid=""
wait_for 300 'http /metrics | grep -qx "llmb_primary_up{primary=\"127.0.0.1:$victim\"} 1"' ||
    fail "$victim not back in the metrics"
# its queue goes on: a job there is aggregated
claim "$qa" "w$$" 1 30000 vcli
complete "$qa" "w$$" "a0" vcli
wait_for 300 '[ -n "$(vcli FCALL_RO llmb_job 1 "$prefix:{$qa}" a0 aggregate)" ]' ||
    fail "job a0 of $qa was not aggregated after $victim came back:" \
        "$(vcli FCALL_RO llmb_job 1 "$prefix:{$qa}" a0 | paste - - | cut -c1-60)"
http /healthz | grep -q primaries_away && fail "healthz: $(http /healthz)"
# logged once while away (rate-limited), and once back
[ "$(grep -c "redis primary 127.0.0.1:$victim does not answer" "$tmp/coord.log")" = 1 ] ||
    fail "not one 'does not answer' line"
grep -q "redis primary 127.0.0.1:$victim answers again" "$tmp/coord.log" ||
    fail "no 'answers again' line"
kill -0 "$vpid_cont"
kill -TERM "$cpid"
wait "$cpid" || fail "the coordinator exited $? on SIGTERM"
if grep -E "Sanitizer|runtime error" "$tmp/coord.log" >&2; then
    fail "sanitizer report in the coordinator's log"
fi
echo "primary away: $victim stopped ${away_s} s; queue $qb reaped," \
     "promoted and aggregated meanwhile; $qa aggregated once it was back"
echo ok
