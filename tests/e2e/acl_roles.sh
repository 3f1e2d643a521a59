#!/usr/bin/env bash
# The least-privilege users of deploy/redis/users.acl, loaded with
# "aclfile" into a private redis-server (free port, temp dir): the whole
# system runs with them (llmb-push as pusher, llmb-worker as worker,
# llmb-coordinator as coordinator, llmb stats/jobs as reader), and each
# role is refused what it must not do.
set -euo pipefail
src=${LLMB_SOURCE_DIR:?}
bin=${LLMB_BUILD_DIR:?}
tmp=$(mktemp -d)
pids=()
port=""
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    [[ -n $port ]] && redis-cli -p "$port" --user admin --pass change-me-admin \
        --no-auth-warning SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    [[ -f $tmp/redis.pid ]] && kill -KILL "$(cat "$tmp/redis.pid")" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/*.log; do echo "--- $f" >&2; tail -n 15 "$f" >&2; done
    echo "--- ACL LOG" >&2
    as admin ACL LOG 10 >&2 || true
    exit 1
}

for _ in $(seq 50); do
    p=$(shuf -i 20000-31999 -n 1)
    [[ $p != 6379 ]] && ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && { port=$p; break; }
done
[[ -n $port ]] || fail "no free port"
cp "$src/deploy/redis/users.acl" "$tmp/users.acl"
redis-server --port "$port" --bind 127.0.0.1 --dir "$tmp" --save '' \
    --appendonly no --aclfile "$tmp/users.acl" --daemonize yes \
    --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log"
url() { echo "redis://$1:change-me-$1@127.0.0.1:$port/0"; }
as() { local u=$1; shift; redis-cli -p "$port" --user "$u" --pass "change-me-$u" --no-auth-warning "$@"; }
for _ in $(seq 50); do as admin PING >/dev/null 2>&1 && break; sleep 0.1; done
as admin PING | grep -qx PONG || fail "redis-server did not start"

# refused: the reply of a command as role must be a NOPERM error
refused() {
    local u=$1 out; shift
    out=$(as "$u" "$@" 2>&1 || true)
    grep -q 'NOPERM\|NOAUTH\|WRONGPASS' <<<"$out" || fail "$u was allowed: $* -> $out"
}
allowed() {
    local u=$1 out; shift
    out=$(as "$u" "$@" 2>&1) || fail "$u: $* -> $out"
    grep -q 'NOPERM' <<<"$out" && fail "$u refused: $* -> $out"
    return 0
}

# The operator loads the function library once, as admin.
LLMB_REDIS_URL=$(url admin) "$bin/tools/admin/llmb" stats >/dev/null 2>"$tmp/admin.log" ||
    fail "llmb stats as admin"
as admin FUNCTION LIST LIBRARYNAME llmb | grep llmb_push >/dev/null || fail "library not loaded"

# The default user is off.
out=$(redis-cli -p "$port" PING 2>&1 || true)
grep -q 'NOAUTH\|NOPERM' <<<"$out" || fail "default user answered: $out"

# The system runs with its roles.
# (--no-write-conf: the retention of 1 s below is set once the first job
# has been read, so that it cannot delete that job before its checks)
LLMB_REDIS_URL=$(url coordinator) "$bin/coordinator/llmb-coordinator" \
    --tick-ms 100 --no-write-conf > "$tmp/coordinator.log" 2>&1 &
pids+=($!)
LLMB_REDIS_URL=$(url worker) "$bin/worker/llmb-worker" --heartbeat-ms 200 \
    --lease-ms 5000 > "$tmp/worker.log" 2>&1 &
pids+=($!)
id=$(LLMB_REDIS_URL=$(url pusher) "$bin/tools/push/llmb-push" --tasks 3 \
    echo '{"n":1}' 2>"$tmp/push.log") || fail "push as pusher"
for _ in $(seq 100); do
    [[ -n $(as reader FCALL_RO llmb_job 1 "llmb:{default}" "$id" aggregated_ms) ]] && break
    sleep 0.1
done
[[ $(as reader FCALL_RO llmb_job 1 "llmb:{default}" "$id" state) == completed ]] || fail "job not completed"
[[ -n $(as reader FCALL_RO llmb_job 1 "llmb:{default}" "$id" aggregated_ms) ]] || fail "job not aggregated by the coordinator"
LLMB_REDIS_URL=$(url reader) "$bin/tools/admin/llmb" stats > "$tmp/stats.out" 2>"$tmp/reader.log" ||
    fail "llmb stats as reader"
LLMB_REDIS_URL=$(url reader) "$bin/tools/admin/llmb" show "$id" > /dev/null 2>>"$tmp/reader.log" ||
    fail "llmb show as reader"
# Retention (1 s): the calls that end jobs, and the coordinator's reap,
# delete the jobs ended before, with the commands of their users.
as admin HSET "llmb:{default}:conf" retention_s 1 >/dev/null
sleep 1.2
LLMB_REDIS_URL=$(url pusher) "$bin/tools/push/llmb-push" echo '{}' >/dev/null 2>>"$tmp/push.log" ||
    fail "second push as pusher"
for _ in $(seq 100); do
    [[ -z $(as reader FCALL_RO llmb_job 1 "llmb:{default}" "$id" state) ]] && break
    sleep 0.1
done
[[ -z $(as reader FCALL_RO llmb_job 1 "llmb:{default}" "$id" state) ]] ||
    fail "job $id not deleted by retention"
# and no process logged a refusal (of a command, or of one a function runs)
grep -l "NOPERM\|can't run this command" "$tmp"/*.log &&
    fail "a process was refused a command it needs"

q='llmb:{default}'
# pusher: only llmb_push, no other function, no raw writes, nothing outside llmb:
# (p2 waits an hour: the worker running meanwhile, with the 1 s retention,
# must not end and delete it before `llmb cancel p2` below)
allowed pusher FCALL llmb_push 1 "$q" '{"type":"echo","id":"p2","delay_s":3600}'
allowed pusher FCALL llmb_push_fields 1 "$q" p3 echo '' '' '' '' '' '' '' ''
printf '{"type":"echo","id":"p4"}\n' | LLMB_REDIS_URL=$(url pusher) \
    "$bin/tools/push/llmb-push" --batch >/dev/null 2>"$tmp/push-batch.log" ||
    fail "push --batch as pusher"
# a job with a prompt dataset: llmb_dataset stores the upload (dsu, dsb),
# the push moves it under the job (ds), both with the commands of the
# pusher's selectors (p5 waits an hour, as p2)
printf '{"prompt":"a"}\n{"prompt":"b"}\n' > "$tmp/ds.jsonl"
LLMB_REDIS_URL=$(url pusher) "$bin/tools/push/llmb-push" --id p5 --delay 3600 \
    --tasks 2 --dataset "$tmp/ds.jsonl" llm '{"model":"m"}' >/dev/null \
    2>"$tmp/push-dataset.log" || fail "push --dataset as pusher"
[[ $(as reader LLEN "$q:ds:p5") == 2 ]] || fail "the dataset of p5 not stored"
[[ $(as reader EXISTS "$q:dsu:p5" "$q:dsb:p5") == 0 ]] ||
    fail "the upload of p5 is left"
out=$(as worker FCALL llmb_dataset_read 1 "$q" p5 0 2 2>&1)
[[ $out == $'{"prompt":"a"}\n{"prompt":"b"}' ]] ||
    fail "the dataset of p5 read back: $out"
# a push refused for its dataset deletes the upload (UNLINK)
allowed pusher FCALL llmb_dataset 1 "$q" p6 0 '{"prompt":"a"}'
out=$(as pusher FCALL llmb_push 1 "$q" '{"type":"llm","id":"p6",
    "payload":{"model":"m","dataset":{"entries":2}}}' 2>&1 || true)
grep -q 'says 2 entries, but 1 are stored' <<<"$out" || fail "push of p6: $out"
[[ $(as reader EXISTS "$q:dsu:p6" "$q:dsb:p6") == 0 ]] ||
    fail "the upload of p6 is left"
refused pusher FCALL llmb_claim 1 "$q" w 1 30000
refused pusher FCALL llmb_cancel 1 "$q" p2
refused pusher FCALL llmb_complete 1 "$q" w "$id:0" 1 '{}'
refused pusher DEL "$q:pl"
refused pusher UNLINK "$q:pl"
refused pusher DEL "$q:jd"
refused pusher RENAME "$q:pl" "$q:pl2"
refused pusher RENAME "$q:jd" "$q:dsu:x"
refused pusher SET "$q:conf" x
# the selectors: uploads may be deleted, a stored dataset only renamed
# onto (by the push) and made persistent
refused pusher DEL "$q:ds:p5"
refused pusher UNLINK "$q:ds:p5"
refused pusher RENAME "$q:ds:p5" "$q:dsu:p5"
refused pusher GET "$q:ds:p5"
refused pusher ZPOPMIN "$q:pz"
# Not enforceable: HSET, ZADD and the like on llmb:{...} keys. Redis checks
# the commands a function runs against the caller's ACL, so the pusher
# must hold every command llmb_push runs (docs/security.md).
refused pusher GET secret:key
refused pusher FLUSHALL
refused pusher FUNCTION DELETE llmb
refused pusher CONFIG SET appendonly no
# worker: its five functions, not push, cancel, reap, aggregation or admin
refused worker FCALL llmb_push 1 "$q" '{"type":"echo"}'
refused worker FCALL llmb_push_fields 1 "$q" '' echo '' '' '' '' '' '' '' ''
refused worker FCALL llmb_cancel 1 "$q" p2
refused worker FCALL llmb_retry 1 "$q" "$id"
refused worker FCALL llmb_purge 1 "$q"
refused worker FCALL llmb_agg_finish 1 "$q" "$id" '{}'
refused worker FCALL llmb_reap 1 "$q"
refused worker FUNCTION LOAD REPLACE "#!lua name=llmb"
refused worker FLUSHDB
refused worker SET other:key 1
refused worker CLIENT KILL ID 1
# and the functions its llm executor calls (answered, not refused)
for fn in llmb_rendezvous llmb_dataset_read; do
    out=$(as worker FCALL "$fn" 1 "$q" "$id" 2>&1 || true)
    grep -q 'NOPERM' <<<"$out" && fail "worker refused $fn: $out"
done
# coordinator: its functions, not push, claim, cancel, purge, admin
refused coordinator FCALL llmb_push 1 "$q" '{"type":"echo"}'
refused coordinator FCALL llmb_claim 1 "$q" w 1 30000
refused coordinator FCALL llmb_cancel 1 "$q" p2
refused coordinator FCALL llmb_purge 1 "$q"
refused coordinator FUNCTION DELETE llmb
refused coordinator FLUSHALL
refused coordinator SET other:key 1
refused coordinator CONFIG GET requirepass
refused coordinator KEYS '*'
# reader: reads under llmb: only
allowed reader FCALL_RO llmb_stats 1 "$q"
allowed reader HGETALL "$q:j:$id"
allowed reader FCALL_RO llmb_job 1 "$q" "$id"
allowed pusher FCALL_RO llmb_job 1 "$q" "$id" state
allowed coordinator FCALL_RO llmb_job 1 "$q" "$id" state
refused reader FCALL llmb_push 1 "$q" '{"type":"echo"}'
refused reader FCALL llmb_cancel 1 "$q" p2
refused reader HSET "$q:j:$id" state x
refused reader DEL "$q:pl"
refused reader GET other:key
refused reader FLUSHALL
out=$(LLMB_REDIS_URL=$(url reader) "$bin/tools/admin/llmb" cancel p2 2>&1 || true)
grep -q 'NOPERM' <<<"$out" || fail "llmb cancel as reader: $out"
echo "ok: every role runs and is refused the rest"
