#!/usr/bin/env bash
# Bad things under a running llmb-worker and llmb-coordinator: handlers that
# crash, hang past their timeout ignoring SIGTERM, close stdout, flood stdout
# or stderr, print junk, skip their stdin, or exit with every status 0..255
# (tests/fixtures/bad_handler.sh); a key of the wrong type planted under a
# queue; a job hash deleted by hand while its tasks run. Each gets a clear
# error on the job or from the command, both processes keep running, and
# good jobs pushed among them complete.
set -euo pipefail
NAME=badh
. "$(dirname "$0")/bad_input_lib.sh"
bad="$LLMB_SOURCE_DIR/tests/fixtures/bad_handler.sh"

# The broken queue "wq" comes first in the worker's list: it must still
# serve "default".
rcli SET "$prefix:{wq}:pz" "not a sorted set" >/dev/null
handlers="echo=echo,sleep=sleep"
for m in crash hang closeout floodout flooderr garbage nostdin exitcode; do
    handlers="$handlers,$m=exec:$bad $m"
done
"$LLMB_BUILD_DIR/worker/llmb-worker" --queues wq,default --capacity 4 \
    --heartbeat-ms 300 --lease-ms 3000 --kill-grace-ms 300 \
    --handler "$handlers" >"$tmp/worker.log" 2>&1 &
wpid=$!
"$LLMB_BUILD_DIR/coordinator/llmb-coordinator" --no-write-conf --gone-after-ms 1000 \
    >"$tmp/coordinator.log" 2>&1 &
cpid=$!

# waits until job $1 is in a terminal state; prints the state
wait_end() {
    local s i
    for i in $(seq 300); do
        s=$(rcli FCALL_RO llmb_job 1 "$base" "$1" state)
        case $s in completed|failed|cancelled) echo "$s"; return 0;; esac
        sleep 0.1
    done
    fail "job $1 still ${s:-absent} after 30 s"
}
# expect_job ID STATE ERROR-SUBSTRING
expect_job() {
    local s err
    s=$(wait_end "$1")
    [ "$s" = "$2" ] || fail "job $1 is $s, expected $2: $(rcli FCALL_RO llmb_job 1 "$base" "$1" error)"
    [ -z "$3" ] && return 0
    err=$(rcli FCALL_RO llmb_job 1 "$base" "$1" 0:error)
    grep -qF -- "$3" <<<"$err" || fail "job $1 error \"${err:0:300}\", expected \"$3\""
}

one() { "$push" --retries 0 --id "$1" "${@:2}" >/dev/null; }
one good1 echo '{"n":1}'
one crash crash
one hang --timeout 1 hang
one closeout closeout
one floodout floodout
one flooderr flooderr
one garbage garbage
head -c 1000000 /dev/zero | tr '\0' z | { printf '"'; cat; printf '"'; } >"$tmp/payload"
one nostdin nostdin - <"$tmp/payload"
one codes --tasks 256 exitcode
one good2 echo '{"n":2}'

expect_job good1 completed ''
expect_job crash failed 'killed by signal 11 (SIGSEGV): about to crash'
expect_job hang failed 'timed out after 1 s'
[ "$(rcli FCALL_RO llmb_job 1 "$base" "hang" timeouts)" = 1 ] || fail "hang not counted as a timeout"
expect_job closeout completed ''
expect_job floodout failed 'stdout exceeded 1048576 bytes'
expect_job flooderr failed 'exited with status 1: '
err=$(rcli FCALL_RO llmb_job 1 "$base" "flooderr" 0:error)
grep -q 'the end of stderr$' <<<"$err" || fail "flooderr: not the tail of stderr"
[ ${#err} -le 5000 ] || fail "flooderr: error of ${#err} bytes kept"
expect_job garbage failed 'stdout is not JSON'
expect_job nostdin completed ''
expect_job good2 completed ''
# every exit status: 0 succeeds, 100 fails for good, the others fail
expect_job codes failed ''
[ "$(rcli FCALL_RO llmb_job 1 "$base" "codes" ok)" = 1 ] || fail "codes: ok $(rcli FCALL_RO llmb_job 1 "$base" "codes" ok)"
[ "$(rcli FCALL_RO llmb_job 1 "$base" "codes" failed)" = 255 ] || fail "codes: failed"
[ "$(rcli FCALL_RO llmb_job 1 "$base" "codes" 0:state)" = completed ] || fail "status 0"
rcli FCALL_RO llmb_job 1 "$base" "codes" 100:error | grep -q '^exited with status 100 (do not retry)' ||
    fail "status 100: $(rcli FCALL_RO llmb_job 1 "$base" "codes" 100:error)"
for c in 1 2 99 101 126 127 128 137 255; do
    rcli FCALL_RO llmb_job 1 "$base" "codes" "$c:error" | grep -q "^exited with status $c" ||
        fail "status $c: $(rcli FCALL_RO llmb_job 1 "$base" "codes" "$c:error")"
done

# the planted key: a clear error from the command, nothing written; the
# worker logged it and kept serving "default" (the jobs above)
out=$(rcli FCALL llmb_push 1 "$prefix:{wq}" '{"type":"echo","id":"w1"}' 2>&1)
grep -qF "ERR key \"$prefix:{wq}:pz\" is a string, llmb expects a zset" <<<"$out" ||
    fail "planted key, FCALL: $out"
rc=0; "$push" -q wq echo >"$tmp/out" 2>"$tmp/err" || rc=$?
[ $rc != 0 ] && grep -qF 'is a string, llmb expects a zset' "$tmp/err" ||
    fail "planted key, llmb-push exit $rc: $(cat "$tmp/err")"
[ "$(rcli HEXISTS "$prefix:{wq}:jd" w1)" = 0 ] || fail "planted key: half a job was written"
[ "$(rcli EXISTS "$prefix:{wq}:pl")" = 0 ] || fail "planted key: a member was written"
grep -qF 'is a string, llmb expects a zset' "$tmp/worker.log" || fail "worker did not log the planted key"
[ "$(rcli GET "$prefix:{wq}:pz")" = "not a sorted set" ] || fail "planted key changed"

# a job deleted by hand while its tasks run (its record and its fan-out
# hash): running tasks are dropped at the next heartbeat, waiting ones
# when claimed; others go on
one victim --tasks 12 sleep '{"ms":1500}'
for i in $(seq 100); do
    [ "$(rcli FCALL_RO llmb_job 1 "$base" "victim" state)" = running ] && break
    sleep 0.1
done
rcli HDEL "$base:jd" victim >/dev/null
rcli DEL "$base:j:victim" >/dev/null
one good3 --tasks 5 echo '{"n":3}'
expect_job good3 completed ''
for i in $(seq 100); do
    left=$( (rcli LRANGE "$base:pl" 0 -1; rcli ZRANGE "$base:pz" 0 -1
             rcli HKEYS "$base:run") | grep -c '^victim\($\|:\)' || true)
    [ "$left" = 0 ] && break
    sleep 0.1
done
[ "$left" = 0 ] || fail "tasks of the deleted job still queued: $left"
one good4 echo '{"n":4}'
expect_job good4 completed ''

kill -0 "$wpid" || fail "the worker died"
kill -0 "$cpid" || fail "the coordinator died"
# no handler process is left behind
sleep 0.5
! pgrep -f "^/bin/sh $bad hang" >/dev/null || fail "a hung handler is still running"
echo "e2e bad input (handlers, keys, deleted job): ok"
