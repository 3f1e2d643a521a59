#!/usr/bin/env bash
# Redis gone wrong, on private servers (this test restarts and flushes
# them): unreachable, refused credentials (at start, and a password
# rotated under running processes), the function library flushed under
# running processes, and a server without Redis
# Functions (tests/fixtures/fake_redis6.py answers like Redis 6.2; no real
# Redis 6 binary is at hand). Each gets a clear message; the worker and the
# coordinator keep running and carry on once the server is right again,
# but for credentials refused at start, a configuration error (78).
set -euo pipefail
push="$LLMB_BUILD_DIR/tools/push/llmb-push"
admin="$LLMB_BUILD_DIR/tools/admin/llmb"
worker="$LLMB_BUILD_DIR/worker/llmb-worker"
coordinator="$LLMB_BUILD_DIR/coordinator/llmb-coordinator"
command -v redis-server >/dev/null || { echo "redis-server not found" >&2; exit 77; }
tmp=$(mktemp -d)
pids=()
cleanup() {
    set +e
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    [ -f "$tmp/redis.pid" ] && kill "$(cat "$tmp/redis.pid")" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/*.log; do echo "== $f" >&2; tail -n 8 "$f" >&2; done
    exit 1
}
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}
port=$(free_port)
url="redis://127.0.0.1:$port"
export LLMB_PREFIX=e2ebadr
rcli() { redis-cli -p "$port" "$@"; }
start_redis() {
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$tmp/redis.pid" --dir "$tmp" \
        --logfile "$tmp/redis-server.log" "$@"
    for i in $(seq 50); do rcli PING 2>/dev/null | grep -q PONG && return 0; sleep 0.1; done
    fail "redis-server did not start"
}
wait_log() { # FILE TEXT TENTHS MESSAGE: TEXT in FILE within TENTHS/10 s
    for _ in $(seq "$3"); do
        grep -q "$2" "$1" && return 0
        sleep 0.1
    done
    grep -q "$2" "$1" || fail "$4"
}
wait_state() { # URL JOB STATE [QUEUE]
    local base="$LLMB_PREFIX:{${4:-default}}"
    for i in $(seq 200); do
        [ "$(redis-cli -u "$1" FCALL_RO llmb_job 1 "$base" "$2" state 2>/dev/null)" = "$3" ] && return 0
        sleep 0.1
    done
    fail "job $2 not $3: $(redis-cli -u "$1" FCALL_RO llmb_job 1 "$base" "$2" | tr '\n' ' ')"
}
expect() { # STATUS MESSAGE COMMAND...
    local want=$1 msg=$2 rc=0
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
    [ "$rc" = "$want" ] || fail "$(basename "$1"): exit $rc, expected $want: $(cat "$tmp/err")"
    grep -qF -- "$msg" "$tmp/err" || fail "$(basename "$1"): expected \"$msg\", got \"$(cat "$tmp/err")\""
}

# 1. unreachable: the tools say so (69); worker and coordinator wait for it
expect 69 "cannot connect to redis 127.0.0.1:$port: Connection refused" "$push" --redis "$url" echo
expect 69 "cannot connect to redis 127.0.0.1:$port" "$admin" --redis "$url" stats
"$worker" --redis "$url" --heartbeat-ms 300 >"$tmp/worker.log" 2>&1 &
pids+=($!); wpid=$!
"$coordinator" --redis "$url" >"$tmp/coordinator.log" 2>&1 &
pids+=($!); cpid=$!
sleep 1.5
kill -0 "$wpid" && kill -0 "$cpid" || fail "a process exited while Redis was unreachable"
grep -q 'Connection refused' "$tmp/worker.log" || fail "worker did not log why"
# it comes up: both connect, and a job runs
start_redis
id=$("$push" --redis "$url" --id up1 echo '{"a":1}')
wait_state "$url" up1 completed
# (the coordinator's reconnect backoff may be seconds long by now: it must
# be connected before requirepass below, which it would rightly take, at
# its first connect, for a configuration error)
wait_log "$tmp/coordinator.log" 'connected to redis' 300 \
    "the coordinator did not connect once Redis was up"

# 2. the function library flushed under running processes: redis-cli gets
# Redis's own error; llmb-push, the worker and the coordinator load it again
# (in one transaction: the running coordinator, which loads the library
# again at its next tick, cannot come between the two)
out=$(printf '%s\n' MULTI 'FUNCTION FLUSH' \
          "FCALL llmb_push 1 \"$LLMB_PREFIX:{default}\" '{\"type\":\"echo\"}'" \
          EXEC | rcli 2>&1)
grep -q 'Function not found' <<<"$out" || fail "FCALL after FUNCTION FLUSH: $out"
"$push" --redis "$url" --id flushed1 echo >/dev/null || fail "llmb-push after FUNCTION FLUSH"
wait_state "$url" flushed1 completed
rcli FUNCTION FLUSH >/dev/null
# the coordinator's next tick finds the library gone and loads it
for i in $(seq 100); do
    rcli FUNCTION LIST LIBRARYNAME llmb | grep llmb >/dev/null && break
    sleep 0.1
done
rcli FUNCTION LIST LIBRARYNAME llmb | grep llmb >/dev/null || fail "nobody loaded the library again"
rcli FCALL llmb_push 1 "$LLMB_PREFIX:{default}" '{"type":"echo","id":"flushed2"}' >/dev/null
wait_state "$url" flushed2 completed
kill -0 "$wpid" && kill -0 "$cpid" || fail "a process exited after FUNCTION FLUSH"

# 3. refused credentials. At start they are a configuration error: exit
# 78 with the server and the user named, for the tools, the worker and the
# coordinator alike (a wrong password of an ACL user: WRONGPASS; no
# password where one is required: NOAUTH). After a good start a refusal
# (the password rotated under a running process) is logged and retried
# with backoff until the password is right again.
rcli ACL SETUSER alice on '>right-password' '~*' '&*' '+@all' >/dev/null
bad="redis://alice:wrong@127.0.0.1:$port"
good="redis://alice:right-password@127.0.0.1:$port"
refusal="redis 127.0.0.1:$port refused the credentials of user \"alice\": WRONGPASS"
expect 78 "$refusal" "$push" --redis "$bad" echo
expect 78 "$refusal" "$admin" --redis "$bad" stats
expect 78 "redis 127.0.0.1:$port refused the credentials of user \"nobody\": WRONGPASS" \
    "$push" --redis "redis://nobody:x@127.0.0.1:$port" echo
expect 78 "$refusal" timeout 30 "$worker" --redis "$bad"
grep -q 'refused credentials at start are a configuration error' "$tmp/err" ||
    fail "worker: $(cat "$tmp/err")"
expect 78 "$refusal" timeout 30 "$coordinator" --redis "$bad"
grep -q 'refused credentials at start are a configuration error' "$tmp/err" ||
    fail "coordinator: $(cat "$tmp/err")"
# requirepass: the running processes stay authenticated; new ones are not
rcli CONFIG SET requirepass sekret >/dev/null
noauth="redis 127.0.0.1:$port requires a password, and the URL gives none (user \"default\"); put it in the URL"
expect 78 "$noauth" timeout 30 "$worker" --redis "$url"
expect 78 "$noauth" timeout 30 "$coordinator" --redis "$url"
expect 78 "$noauth" "$push" --redis "$url" echo
redis-cli -p "$port" -a sekret --no-auth-warning CONFIG SET requirepass '' >/dev/null
# a worker and a coordinator that started with alice's password
"$worker" --grace 1 --redis "$good" --queues rot --heartbeat-ms 300 \
    >"$tmp/worker-rotated.log" 2>&1 &
pids+=($!); rwpid=$!
"$coordinator" --redis "$good" >"$tmp/coordinator-rotated.log" 2>&1 &
pids+=($!); rcpid=$!
"$push" --redis "$good" --queue rot --id acl1 echo >/dev/null ||
    fail "the right password refused"
wait_state "$url" acl1 completed rot
wait_log "$tmp/coordinator-rotated.log" 'connected to redis' 100 \
    "the coordinator did not connect with alice's password"
rcli ACL SETUSER alice resetpass '>rotated' >/dev/null
rcli CLIENT KILL USER alice >/dev/null
for i in $(seq 100); do
    grep -q 'WRONGPASS' "$tmp/worker-rotated.log" &&
        grep -q 'WRONGPASS' "$tmp/coordinator-rotated.log" && break
    sleep 0.1
done
grep -q 'WRONGPASS' "$tmp/worker-rotated.log" ||
    fail "the worker did not log the refusal after the rotation"
grep -q 'WRONGPASS' "$tmp/coordinator-rotated.log" ||
    fail "the coordinator did not log the refusal after the rotation"
kill -0 "$rwpid" && kill -0 "$rcpid" ||
    fail "a process exited when its password was rotated"
rcli ACL SETUSER alice resetpass '>right-password' >/dev/null
"$push" --redis "$good" --queue rot --id acl2 echo >/dev/null ||
    fail "the right password refused"
# the worker comes back once the password is right again
wait_state "$url" acl2 completed rot
kill -0 "$rcpid" || fail "the coordinator exited"
kill "$rwpid" "$rcpid"; wait "$rwpid" "$rcpid" 2>/dev/null || true

# 4. "Redis 6": a server without Redis Functions
python3 "$LLMB_SOURCE_DIR/tests/fixtures/fake_redis6.py" "$tmp/fake.port" &
pids+=($!)
for i in $(seq 50); do [ -s "$tmp/fake.port" ] && break; sleep 0.1; done
old="redis://127.0.0.1:$(cat "$tmp/fake.port")"
msg='llmb needs Redis 7.0 or newer (Redis Functions); this server is 6.2.14'
expect 69 "$msg" "$push" --redis "$old" echo
expect 69 "$msg" "$admin" --redis "$old" stats
"$worker" --grace 1 --redis "$old" >"$tmp/worker-old.log" 2>&1 &
pids+=($!); opid=$!
"$coordinator" --redis "$old" >"$tmp/coordinator-old.log" 2>&1 &
pids+=($!); ocpid=$!
sleep 1.5
grep -qF "$msg" "$tmp/worker-old.log" || fail "worker on Redis 6: $(tail -3 "$tmp/worker-old.log")"
grep -qF "$msg" "$tmp/coordinator-old.log" || fail "coordinator on Redis 6: $(tail -3 "$tmp/coordinator-old.log")"
kill -0 "$opid" && kill -0 "$ocpid" || fail "a process exited on Redis 6"

# the real server's processes were not disturbed by any of it
"$push" --redis "$url" --id last echo >/dev/null
wait_state "$url" last completed
kill -0 "$wpid" && kill -0 "$cpid" || fail "the worker or coordinator died"
echo "e2e bad input (redis): ok"
