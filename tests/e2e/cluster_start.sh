#!/usr/bin/env bash
# llmb-worker and llmb-coordinator started on a redis+cluster:// URL before
# the cluster exists: they wait for it with the reconnect backoff (the
# worker logs each attempt), through the nodes answering without slots,
# until redis-cli --cluster create assigns them; then a job pushed with
# --wait completes. A worker stopped (SIGTERM) while it waits exits 0.
# Refused credentials, or a URL naming a server not in cluster mode, stay
# configuration errors: the worker (and the coordinator, for credentials)
# exits 78 at once. Its own cluster of
# 3 primaries on free ports, started by the test after the programs.
set -euo pipefail
src=$LLMB_SOURCE_DIR
REDIS_CLI=redis-cli
. "$src/tests/support/redis-lib.sh"
push="$LLMB_BUILD_DIR/tools/push/llmb-push"
worker="$LLMB_BUILD_DIR/worker/llmb-worker"
coord="$LLMB_BUILD_DIR/coordinator/llmb-coordinator"
tmp=$(mktemp -d)
pids=()
ports=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for p in "${ports[@]}"; do
        stop_server_files "$tmp/node-$p/redis.pid" "$tmp/node-$p/port"
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# waits until file $1 has $2 lines matching $3; fails after 60 s
wait_lines() {
    local i
    for i in $(seq 600); do
        [ "$(grep -c -- "$3" "$1" || true)" -ge "$2" ] && return 0
        sleep 0.1
    done
    fail "$1 has not $2 lines of \"$3\": $(tail -5 "$1")"
}

# Three free ports and their cluster bus ports (+ 10000), held until the
# nodes start: bound without listening, so that no other server (tests
# run in parallel) takes them meanwhile, while a connect is refused as on
# a port nobody uses.
hold_pid=""
while [ -z "$hold_pid" ]; do
    ports=()
    while [ "${#ports[@]}" -lt 3 ]; do
        p=$((20000 + RANDOM % 12000))
        port_in_use "$p" || port_in_use $((p + 10000)) || ports+=("$p")
    done
    python3 -c '
import socket, sys, time
held = []
for p in sys.argv[1:]:
    for q in (int(p), int(p) + 10000):
        s = socket.socket()
        s.bind(("127.0.0.1", q))
        held.append(s)
print("held", flush=True)
time.sleep(3600)' "${ports[@]}" >"$tmp/hold.out" 2>/dev/null &
    pid=$!
    for i in $(seq 100); do
        grep -q held "$tmp/hold.out" && { hold_pid=$pid; break; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$hold_pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" || true; }
done
pids+=($hold_pid)
url="redis+cluster://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
export LLMB_REDIS_URL=$url LLMB_PREFIX="e2ecs$$" LLMB_STATE_DIR=$tmp/state

"$worker" --queues q --handler echo=echo --id "cs$$" --heartbeat-ms 200 \
    2>"$tmp/worker.log" &
pids+=($!)
"$coord" --tick-ms 100 2>"$tmp/coord.log" &
pids+=($!)

# the worker keeps trying, each attempt logged
wait_lines "$tmp/worker.log" 3 "cannot read the redis cluster's slot map"
grep -q 'Connection refused' "$tmp/worker.log" ||
    fail "no reason given: $(tail -3 "$tmp/worker.log")"
# a worker stopped while it waits exits 0 at once
"$worker" --queues q --handler echo=echo --id "st$$" 2>"$tmp/stop.log" &
stop_pid=$!
wait_lines "$tmp/stop.log" 1 "cannot read the redis cluster's slot map"
kill -TERM "$stop_pid"
rc=0
wait "$stop_pid" || rc=$?
[ $rc -eq 0 ] || fail "stopped while waiting: exit $rc: $(cat "$tmp/stop.log")"
grep -q 'stopping before redis answered' "$tmp/stop.log" ||
    fail "$(cat "$tmp/stop.log")"
# the coordinator too (it connects from its tick)
wait_lines "$tmp/coord.log" 1 "no redis cluster primary answers.*; retrying"

# the nodes come, without slots: still waiting
kill "$hold_pid"
wait "$hold_pid" 2>/dev/null || true
for p in "${ports[@]}"; do
    mkdir -p "$tmp/node-$p"
    echo "$p" >"$tmp/node-$p/port"
    redis-server --port "$p" --bind 127.0.0.1 --dir "$tmp/node-$p" \
        --save '' --appendonly no --cluster-enabled yes \
        --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
        --daemonize yes --pidfile "$tmp/node-$p/redis.pid" \
        --logfile "$tmp/node-$p/redis.log" >/dev/null ||
        fail "redis-server on $p did not start"
done
for p in "${ports[@]}"; do
    for i in $(seq 100); do cli "$p" PING >/dev/null 2>&1 && break; sleep 0.1; done
    cli "$p" PING | grep -qx PONG ||
        fail "node $p does not answer: $(tail -5 "$tmp/node-$p/redis.log")"
done
wait_lines "$tmp/worker.log" 1 "assigns no slot to any primary"

# a worker whose credentials are refused exits 78 at once
rc=0
"$worker" --redis "redis+cluster://:wrong@127.0.0.1:${ports[0]}" \
    --queues q --handler echo=echo --id "bad$$" 2>"$tmp/bad.log" || rc=$?
[ $rc -eq 78 ] || fail "refused credentials: exit $rc: $(cat "$tmp/bad.log")"
grep -q "refused the credentials of user \"default\"" "$tmp/bad.log" ||
    fail "no refusal naming the user: $(cat "$tmp/bad.log")"
# the coordinator too
rc=0
timeout 60 "$coord" --redis "redis+cluster://:wrong@127.0.0.1:${ports[0]}" \
    2>"$tmp/coord-bad.log" || rc=$?
[ $rc -eq 78 ] || fail "coordinator, refused credentials: exit $rc: $(cat "$tmp/coord-bad.log")"
grep -q "127.0.0.1:[0-9]* refused the credentials of user \"default\"" \
    "$tmp/coord-bad.log" || fail "coordinator: $(cat "$tmp/coord-bad.log")"
# and so does one whose URL names a server that is not in cluster mode
# (the test suite's redis-server)
single=$(sed -n 's|^redis://\([^/]*\).*|\1|p' "$LLMB_TEST_REDIS_URL_FILE")
[ -n "$single" ] || fail "no server in $LLMB_TEST_REDIS_URL_FILE"
rc=0
"$worker" --redis "redis+cluster://$single" --queues q --handler echo=echo \
    --id "one$$" 2>"$tmp/one.log" || rc=$?
[ $rc -eq 78 ] || fail "single server: exit $rc: $(cat "$tmp/one.log")"
grep -q 'single server' "$tmp/one.log" || fail "$(cat "$tmp/one.log")"

# the cluster is made: the worker starts, a job completes
redis-cli --cluster create "127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}" \
    "127.0.0.1:${ports[2]}" --cluster-replicas 0 --cluster-yes \
    >"$tmp/create.log" 2>&1 || fail "cluster create: $(tail -5 "$tmp/create.log")"
for p in "${ports[@]}"; do
    for i in $(seq 600); do
        cli "$p" CLUSTER INFO | tr -d '\r' | grep -qx 'cluster_state:ok' && break
        sleep 0.1
    done
done
wait_lines "$tmp/worker.log" 1 "redis cluster answered after"
out=$("$push" --queue q --wait --wait-timeout 60 --json echo '{"n":1}' \
    2>"$tmp/push.err") || fail "push --wait exit $?: $(cat "$tmp/push.err")" \
    "$(tail -5 "$tmp/worker.log" "$tmp/coord.log")"
grep -q '"state": "completed"' <<<"$out" || fail "not completed: $out"
grep -q '"aggregate"' <<<"$out" || fail "no aggregate: $out"
grep -q 'connected to redis' "$tmp/coord.log" ||
    fail "coordinator: $(tail -3 "$tmp/coord.log")"
n=$(grep -c "cannot read the redis cluster's slot map" "$tmp/worker.log")
echo "worker: $n failed attempts logged before the cluster answered"
echo ok
