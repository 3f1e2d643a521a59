#!/usr/bin/env bash
# llmb-push when Redis does not answer in time, on a private redis-server
# (this test reconfigures it). A proxy (tests/fixtures/hold_replies_proxy.py)
# passes every call to Redis but drops the replies after the first few, so
# Redis stores jobs that llmb-push never hears of; and a script running
# longer than busy-reply-threshold makes Redis answer BUSY. Each time
# llmb-push must say which jobs are confirmed and which are not, by id,
# exit 69, and keep a journal; running the same command again must store
# every job exactly once and delete the journal; a run after that pushes
# new jobs. The same holds for a single job, for a run that is killed, and
# the journal's digest of the input is checked against sha256sum.
set -euo pipefail
push="$LLMB_BUILD_DIR/tools/push/llmb-push"
proxy_py="$LLMB_SOURCE_DIR/tests/fixtures/hold_replies_proxy.py"
for c in redis-server redis-cli python3 sha256sum; do
    command -v "$c" >/dev/null || { echo "push_resume: skipped: needs $c" >&2; exit 77; }
done
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
    for f in "$tmp"/err*; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 8 "$f" >&2; }; done
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
rcli() { redis-cli -p "$port" "$@"; }
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$tmp/redis.pid" --dir "$tmp" \
    --logfile "$tmp/redis-server.log"
for _ in $(seq 50); do rcli PING 2>/dev/null | grep -q PONG && break; sleep 0.1; done
rcli PING | grep -q PONG || fail "redis-server did not start"

unset LLMB_CONFIG LLMB_QUEUE LLMB_PUSH_JOURNAL LLMB_STATE_DIR LLMB_REDIS_TIMEOUT_MS
export LLMB_REDIS_URL="redis://127.0.0.1:$port" LLMB_PREFIX=resume
export XDG_STATE_HOME="$tmp/state"
jdir="$tmp/state/llmb"
journals() { find "$jdir" -name '*.journal' 2>/dev/null | wc -l; }
# the jobs of a queue: the fields of its records hash, but "~"
job_ids() { rcli HKEYS "resume:{$1}:jd" | grep -vx '~' || true; }
jobs_in() { job_ids "$1" | wc -l; }

# proxy ALLOWED: starts a proxy that answers ALLOWED calls of each
# connection; sets purl
proxy() {
    rm -f "$tmp/proxy.port"
    python3 "$proxy_py" "$port" "$tmp/proxy.port" "$1" 2>"$tmp/proxy.log" &
    pids+=($!)
    for _ in $(seq 100); do [ -s "$tmp/proxy.port" ] && break; sleep 0.05; done
    [ -s "$tmp/proxy.port" ] || fail "proxy did not start"
    purl="redis://127.0.0.1:$(cat "$tmp/proxy.port")"
}
# run NAME ARGS...: runs llmb-push (bounded); stdout in $tmp/out.NAME,
# stderr in $tmp/err.NAME, exit code in rc
run() {
    local name=$1
    shift
    rc=0
    timeout 60 "$push" "$@" >"$tmp/out.$name" 2>"$tmp/err.$name" || rc=$?
    if grep -Eq 'Sanitizer|runtime error:' "$tmp/err.$name"; then fail "$name: sanitizer report"; fi
}
err_has() { grep -qF -- "$2" "$tmp/err.$1" || fail "$1: stderr lacks \"$2\""; }
wait_jobs() { # QUEUE N
    for _ in $(seq 100); do [ "$(jobs_in "$1")" = "$2" ] && return 0; sleep 0.05; done
    fail "queue $1 has $(jobs_in "$1") jobs, not $2"
}

# b36_lines N: 1 to N in base 36, one a line
b36_lines() {
    python3 -c 'import sys
d = "0123456789abcdefghijklmnopqrstuvwxyz"
b = lambda n: (b(n // 36) if n >= 36 else "") + d[n % 36]
print("\n".join(b(i) for i in range(1, int(sys.argv[1]) + 1)))' "$1"
}

# 100 jobs with fan-outs, none with an id of its own
for i in $(seq 100); do
    printf '{"type":"echo","tasks":20,"payload":{"n":%d}}\n' "$i"
done > "$tmp/in.ndjson"

# 1. Five calls of ten jobs answered; Redis runs the sixth, its reply is
# lost; the client gives up after 500 ms.
proxy 5
run fail1 --redis "$purl" --redis-timeout-ms 500 --batch --batch-size 10 \
    --pipeline 1 --json "$tmp/in.ndjson"
[ "$rc" = 69 ] || fail "timed-out batch: exit $rc"
wait_jobs default 60 # the sixth call was stored, unconfirmed
err_has fail1 "no answer within 500 ms"
# a minted id: 64 random bits in 13 base-36 digits, the line in base 36
nonce=$(sed -n 's/.*"id":"\([0-9a-z]*\)-1".*/\1/p' "$tmp/out.fail1" | head -1)
[ ${#nonce} = 13 ] || fail "no minted id on line 1: $(head -2 "$tmp/out.fail1")"
err_has fail1 "llmb-push: 50 jobs confirmed, 50 not confirmed (they may or may not be stored): first unconfirmed id $nonce-1f (line 51, queue default); re-run the same command to finish without duplicates"
err_has fail1 "llmb show default/$nonce-1f"
python3 - "$tmp/out.fail1" "$nonce" <<'EOF' || fail "--json of the timed-out batch: $(head -3 "$tmp/out.fail1")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
nonce = sys.argv[2]
assert [r["line"] for r in rows] == list(range(1, 101)), "one row per line, in order"
b36 = lambda n: (b36(n // 36) if n >= 36 else "") + "0123456789abcdefghijklmnopqrstuvwxyz"[n % 36]
assert all(r["id"] == "%s-%s" % (nonce, b36(r["line"])) for r in rows)
assert all(r["queue"] == "default" for r in rows)
assert [r["status"] for r in rows] == ["confirmed"] * 50 + ["unknown"] * 50
EOF
[ "$(journals)" = 1 ] || fail "$(journals) journals after the timed-out batch"
jf=$(find "$jdir" -name '*.journal')
grep -qx "nonce $nonce" "$jf" || fail "journal: $(cat "$jf")"
grep -qx "input $(sha256sum < "$tmp/in.ndjson" | cut -c1-64) $(wc -c < "$tmp/in.ndjson") bytes" "$jf" ||
    fail "journal input digest is not sha256sum's: $(cat "$jf")"
grep -q "^ended .* 50 jobs confirmed, 50 not confirmed" "$jf" || fail "journal end: $(cat "$jf")"

# The same command again, straight to Redis: every job once, the journal
# gone, the ids those of the first run.
run resume1 --batch --batch-size 10 "$tmp/in.ndjson"
[ "$rc" = 0 ] || fail "re-run: exit $rc"
err_has resume1 "llmb-push: resuming an earlier run that did not finish"
[ "$(jobs_in default)" = 100 ] || fail "re-run: $(jobs_in default) jobs, not 100 (duplicates?)"
[ "$(b36_lines 100 | sed "s/^/$nonce-/")" = "$(cat "$tmp/out.resume1")" ] || fail "re-run ids: $(head -3 "$tmp/out.resume1")"
[ "$(journals)" = 0 ] || fail "journal left after the run finished"

# Once more: a run after a finished one pushes new jobs.
run again1 --batch "$tmp/in.ndjson"
[ "$rc" = 0 ] || fail "third run: exit $rc"
grep -q resuming "$tmp/err.again1" && fail "third run resumed"
[ "$(jobs_in default)" = 200 ] || fail "third run: $(jobs_in default) jobs, not 200"
grep -q "^$nonce-" "$tmp/out.again1" && fail "third run reused the nonce"
[ "$(journals)" = 0 ] || fail "journal left after the third run"

# While a run of the same input holds the journal, another run pushes its
# jobs as new ones and says so.
if command -v flock >/dev/null; then
    flock -o "$jf" sleep 5 >/dev/null 2>&1 &
    lpid=$!
    pids+=("$lpid")
    # until the lock is held: a try of our own fails
    for _ in $(seq 100); do
        [ -e "$jf" ] && ! flock -n "$jf" true && break
        sleep 0.05
    done
    run locked --batch "$tmp/in.ndjson"
    [ "$rc" = 0 ] || fail "run beside a locked journal: exit $rc"
    err_has locked "another run of the same input is going on"
    [ "$(jobs_in default)" = 300 ] || fail "run beside a locked journal: $(jobs_in default) jobs, not 300"
    kill "$lpid" 2>/dev/null; wait "$lpid" 2>/dev/null || true
    rm -f "$jf"
fi
# A journal of an older release holds a nonce of 16 hex digits, whose run
# wrote its line numbers in decimal: a run that resumes it mints the same
# ids, so the jobs that run stored are not pushed again.
proxy 5
run oldj1 --redis "$purl" --redis-timeout-ms 500 --queue old --batch \
    --batch-size 10 --pipeline 1 "$tmp/in.ndjson"
[ "$rc" = 69 ] || fail "timed-out batch (old journal): exit $rc"
wait_jobs old 60
jf=$(find "$jdir" -name '*.journal')
[ "$(journals)" = 1 ] || fail "$(journals) journals before the old-journal runs"
old=0123456789abcdef
sed -i "s/^nonce .*/nonce $old/" "$jf"
proxy 5
run oldj2 --redis "$purl" --redis-timeout-ms 500 --queue old --batch \
    --batch-size 10 --pipeline 1 "$tmp/in.ndjson"
[ "$rc" = 69 ] || fail "timed-out batch resuming an old journal: exit $rc"
err_has oldj2 "resuming an earlier run that did not finish"
err_has oldj2 "first unconfirmed id $old-51 (line 51, queue old)"
wait_jobs old 120
grep -qx "nonce $old" "$jf" || fail "old journal: $(cat "$jf")"
run oldj3 --queue old --batch --batch-size 10 "$tmp/in.ndjson"
[ "$rc" = 0 ] || fail "re-run of an old journal: exit $rc"
err_has oldj3 "resuming an earlier run that did not finish"
[ "$(seq 100 | sed "s/^/$old-/")" = "$(cat "$tmp/out.oldj3")" ] || fail "old journal ids: $(head -3 "$tmp/out.oldj3")"
[ "$(jobs_in old)" = 160 ] || fail "old journal: $(jobs_in old) jobs, not 160 (duplicates?)"
[ "$(journals)" = 0 ] || fail "journal left after the old-journal re-run"

"$push" --help | grep -- '--state-dir DIR' >/dev/null || fail "--help lacks --state-dir"
"$push" --help | grep -- '--\[no-\]journal' >/dev/null || fail "--help lacks --journal"

# 2. One job: its call runs, its reply is lost.
proxy 0
run fail2 --redis "$purl" --redis-timeout-ms 500 --queue one --tasks 3 --json echo '{"k":1}'
[ "$rc" = 69 ] || fail "timed-out single push: exit $rc"
wait_jobs one 1
id=$(job_ids one)
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d=={"id":sys.argv[2],"queue":"one","status":"unknown"}, d' \
    "$tmp/out.fail2" "$id" || fail "--json of the timed-out push: $(cat "$tmp/out.fail2")"
err_has fail2 "llmb-push: job $id (queue one) not confirmed (it may or may not be stored); re-run the same command to finish without a duplicate"
run resume2 --queue one --tasks 3 echo '{"k":1}'
[ "$rc" = 0 ] || fail "single re-run: exit $rc"
err_has resume2 "resuming an earlier run that did not finish"
[ "$(cat "$tmp/out.resume2")" = "$id" ] || fail "single re-run printed $(cat "$tmp/out.resume2"), not $id"
[ "$(jobs_in one)" = 1 ] || fail "single re-run: $(jobs_in one) jobs"
[ "$(journals)" = 0 ] || fail "journal left after the single re-run"
run again2 --queue one --tasks 3 echo '{"k":1}'
[ "$rc" = 0 ] && [ "$(jobs_in one)" = 2 ] || fail "single third run: exit $rc, $(jobs_in one) jobs"
[ "$(cat "$tmp/out.again2")" != "$id" ] || fail "single third run reused the id"

# 3. Redis answers BUSY: a script runs longer than busy-reply-threshold.
rcli CONFIG SET busy-reply-threshold 100 >/dev/null
mkfifo "$tmp/fifo"
"$push" --queue busy --batch "$tmp/fifo" >"$tmp/out.busy" 2>"$tmp/err.busy" &
bpid=$!
pids+=("$bpid")
# once it has connected (it reads its whole input before the first call)
for _ in $(seq 100); do
    rcli CLIENT LIST | grep 'name=llmb-push' | grep -qv 'cmd=client|setname' && break
    sleep 0.05
done
rcli EVAL "local function us() local t = redis.call('TIME') return t[1] * 1e6 + t[2] end
           local s = us() while us() - s < 2e6 do end return 1" 0 >/dev/null &
spid=$!
pids+=("$spid")
# until the script holds the server: it answers BUSY
for _ in $(seq 100); do rcli PING 2>&1 | grep -q BUSY && break; sleep 0.02; done
cat "$tmp/in.ndjson" > "$tmp/fifo"
rc=0; wait "$bpid" || rc=$?
[ "$rc" = 69 ] || fail "batch answered BUSY: exit $rc"
err_has busy "redis answered: BUSY"
err_has busy "0 jobs confirmed, 100 not confirmed (they may or may not be stored)"
[ ! -s "$tmp/out.busy" ] || fail "ids printed for jobs answered BUSY"
wait "$spid" || true
rcli CONFIG SET busy-reply-threshold 5000 >/dev/null
run resume3 --queue busy --batch - < "$tmp/in.ndjson"
[ "$rc" = 0 ] || fail "re-run after BUSY: exit $rc"
err_has resume3 "resuming an earlier run that did not finish"
[ "$(jobs_in busy)" = 100 ] || fail "after BUSY: $(jobs_in busy) jobs"
[ "$(journals)" = 0 ] || fail "journal left after BUSY re-run"

# 4. A run killed halfway (Ctrl-C, OOM killer): its journal is there
# from the start, and the same command finishes it.
proxy 3
"$push" --redis "$purl" --queue killed --batch --batch-size 10 --pipeline 1 \
    "$tmp/in.ndjson" >/dev/null 2>"$tmp/err.killed" &
kpid=$!
pids+=("$kpid")
wait_jobs killed 40
kill -KILL "$kpid"
wait "$kpid" 2>/dev/null || true
[ "$(journals)" = 1 ] || fail "no journal of the killed run"
run resume4 --queue killed --batch "$tmp/in.ndjson"
[ "$rc" = 0 ] || fail "re-run of the killed run: exit $rc"
err_has resume4 "it stopped before it could report"
[ "$(jobs_in killed)" = 100 ] || fail "after the killed run: $(jobs_in killed) jobs"
[ "$(journals)" = 0 ] || fail "journal left after re-running the killed run"

# 5. --no-journal: no file, and the message says a re-run pushes again.
proxy 0
run nojournal --redis "$purl" --redis-timeout-ms 300 --queue nj --no-journal \
    --batch "$tmp/in.ndjson"
[ "$rc" = 69 ] || fail "--no-journal timed out: exit $rc"
err_has nojournal "this run kept no journal, so a re-run pushes them again"
[ "$(journals)" = 0 ] || fail "--no-journal wrote a journal"
# --state-dir names the directory
run statedir --redis "$purl" --redis-timeout-ms 300 --queue sd \
    --state-dir "$tmp/elsewhere" echo
[ "$rc" = 69 ] || fail "--state-dir run: exit $rc"
[ "$(find "$tmp/elsewhere" -name '*.journal' | wc -l)" = 1 ] || fail "no journal in --state-dir"

# 6. The digest of inputs around the SHA-256 block sizes is sha256sum's.
for size in 13 55 56 63 64 65 119 120 128 1000; do
    if [ "$size" = 13 ]; then
        printf '{"type":"e"}\n'
    else
        printf '{"type":"e","payload":"%s"}\n' "$(head -c $((size - 26)) /dev/zero | tr '\0' x)"
    fi > "$tmp/s.ndjson"
    [ "$(wc -c < "$tmp/s.ndjson")" = "$size" ] || fail "input of $size bytes is $(wc -c < "$tmp/s.ndjson")"
    rm -rf "$jdir"
    run "sha$size" --redis "$purl" --redis-timeout-ms 300 --queue sha --batch "$tmp/s.ndjson"
    [ "$rc" = 69 ] || fail "size $size: exit $rc"
    grep -qx "input $(sha256sum < "$tmp/s.ndjson" | cut -c1-64) $size bytes" "$jdir"/*.journal ||
        fail "size $size: digest $(grep '^input' "$jdir"/*.journal) is not $(sha256sum < "$tmp/s.ndjson")"
done
echo "e2e push_resume: ok"
