#!/usr/bin/env bash
# llmb-push --wait as a user runs it, with a real llmb-worker and
# llmb-coordinator: stdout redirected to a file is exactly one JSON
# document (one job) or NDJSON (--batch, one line per job); the tables go
# to stderr then; the progress is a plain line without a terminal.
. "$(dirname "$0")/llm_lib.sh"
push="$bin/tools/push/llmb-push"
export LLMB_REDIS_URL=$url LLMB_PREFIX=$prefix LLMB_STATE_DIR=$tmp/state
isjson() { python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$1"; }
isndjson() { python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == int(sys.argv[2]), len(lines)
for l in lines: json.loads(l)' "$1" "$2"; }

"$bin/worker/llmb-worker" --id w1 --capacity 4 --heartbeat-ms 200 \
    --log-level warn 2>"$tmp/worker.log" &
pids+=($!)
"$bin/coordinator/llmb-coordinator" --tick-ms 50 --log-level warn \
    2>"$tmp/coordinator.log" &
pids+=($!)
for _ in $(seq 200); do
    [ "$(rcli ZCARD "$prefix:workers")" = 1 ] && break; sleep 0.05
done

# one job, stdout to a file: one JSON document, nothing after it
"$push" --wait --wait-timeout 30 --tasks 3 --id one echo '{"n":1}' \
    > "$tmp/one.json" 2> "$tmp/one.err" || fail "--wait exit $?"
isjson "$tmp/one.json" || fail "stdout is not one JSON document: $(cat "$tmp/one.json")"
grep -q '"state": "completed"' "$tmp/one.json" || fail "not completed"
grep -Eq '^llmb-push: 3/3 tasks ended, [0-9.]+s$' "$tmp/one.err" ||
    fail "no plain progress line: $(cat "$tmp/one.err")"
! grep -q $'\r' "$tmp/one.err" || fail "a bar without a terminal"

# an LLM job's benchmark table goes to stderr when stdout is a file
start_mock --ttft-ms 5 --itl-ms 1
"$bin/worker/llmb-worker" --id w2 --queues llmq --heartbeat-ms 200 \
    --llm-endpoint "mock=http://127.0.0.1:$port" --log-level warn 2>"$tmp/worker2.log" &
pids+=($!)
payload='{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"requests":3,"concurrency":1}'
"$push" --queue llmq --wait --wait-timeout 30 --id llm1 llm "$payload" \
    > "$tmp/llm.json" 2> "$tmp/llm.err" || fail "llm --wait exit $?"
isjson "$tmp/llm.json" || fail "llm stdout is not JSON: $(cat "$tmp/llm.json")"
grep -q '==== LLM serving benchmark: job llm1 ====' "$tmp/llm.err" ||
    fail "no table on stderr: $(cat "$tmp/llm.err")"
"$push" --queue llmq --wait --json --wait-timeout 30 --id llm1 llm "$payload" \
    > "$tmp/llm2.json" 2> "$tmp/llm2.err" || fail "llm --json exit $?"
isjson "$tmp/llm2.json" || fail "--json stdout is not JSON"
! grep -q 'LLM serving benchmark' "$tmp/llm2.err" || fail "a table with --json"

# a batch: three jobs followed, NDJSON in input order, a table of jobs,
# one progress line per PLAIN_MS at most; a failed job makes exit 1
cat > "$tmp/in.ndjson" <<'NDJSON'
{"type":"echo","id":"b1","tasks":4}
{"type":"echo","id":"b2","tasks":2}
{"type":"fail","id":"b3","tasks":2,"max_retries":0}
NDJSON
set +e
"$push" --batch "$tmp/in.ndjson" --wait --wait-timeout 30 \
    > "$tmp/batch.out" 2> "$tmp/batch.err"; rc=$?
set -e
[ $rc -eq 1 ] || fail "batch --wait with a failed job: exit $rc"
isndjson "$tmp/batch.out" 3 || fail "stdout is not 3 NDJSON lines: $(cat "$tmp/batch.out")"
python3 - "$tmp/batch.out" <<'PY' || fail "batch jobs: $(cat "$tmp/batch.out")"
import json, sys
jobs = [json.loads(l) for l in open(sys.argv[1])]
assert [j["id"] for j in jobs] == ["b1", "b2", "b3"]
assert [j["state"] for j in jobs] == ["completed", "completed", "failed"]
assert jobs[0]["aggregate"]["tasks"] == 4
PY
grep -Eq '^b1 +default +completed +4 +[0-9.]+s +4 ok$' "$tmp/batch.err" ||
    fail "no row for b1: $(cat "$tmp/batch.err")"
grep -Eq '^b3 +default +failed +2 +[0-9.]+s +2 failed$' "$tmp/batch.err" ||
    fail "no row for b3: $(cat "$tmp/batch.err")"
grep -q '^3 jobs, 8 tasks: 6 ok, 2 failed, 0 cancelled$' "$tmp/batch.err" ||
    fail "no total: $(cat "$tmp/batch.err")"
grep -Eq '^llmb-push: 8/8 tasks ended, 3/3 jobs ended, [0-9.]+s$' "$tmp/batch.err" ||
    fail "no final progress line: $(cat "$tmp/batch.err")"

# the same with a job that cannot end in time: exit 2, its state as it is
echo '{"type":"echo","id":"never","queue":"nobody"}' > "$tmp/never.ndjson"
set +e
"$push" --batch "$tmp/never.ndjson" --wait --wait-timeout 1 --no-progress \
    > "$tmp/never.out" 2> "$tmp/never.err"; rc=$?
set -e
[ $rc -eq 2 ] || fail "batch --wait timeout: exit $rc"
isndjson "$tmp/never.out" 1 || fail "timeout stdout: $(cat "$tmp/never.out")"
grep -q '"state":"pending"' "$tmp/never.out" || fail "pending: $(cat "$tmp/never.out")"
grep -q '1 of 1 jobs still not ended after 1s' "$tmp/never.err" || fail "$(cat "$tmp/never.err")"
! grep -q 'tasks ended' "$tmp/never.err" || fail "progress with --no-progress"

# --json: NDJSON only, no table at all
"$push" --batch --json --wait --wait-timeout 30 --no-progress - \
    > "$tmp/j.out" 2> "$tmp/j.err" <<'NDJSON' || fail "--json batch exit $?"
{"type":"echo","id":"j1"}
{"type":"echo","id":"j2"}
NDJSON
isndjson "$tmp/j.out" 2 || fail "--json stdout: $(cat "$tmp/j.out")"
! grep -q 'JOB' "$tmp/j.err" || fail "a table with --json: $(cat "$tmp/j.err")"
# a batch of 300 jobs in two queues, followed through the queues' event
# streams: 200 complete, 50 fail, 50 are cancelled while it waits; the
# stream of one queue is cut to nothing again and again, so the re-read of
# the hashes must catch what its stream lost
"$bin/worker/llmb-worker" --id w3 --queues q2 --capacity 4 --heartbeat-ms 200 \
    --log-level warn 2>"$tmp/worker3.log" &
pids+=($!)
for _ in $(seq 200); do
    [ "$(rcli ZCARD "$prefix:workers")" -ge 3 ] && break; sleep 0.05
done
python3 - > "$tmp/many.ndjson" <<'PY'
import json
for i in range(300):
    if i % 6 == 5:
        j = {"type": "fail", "id": "m%d" % i, "max_retries": 0}
    elif i % 6 == 4:
        j = {"type": "sleep", "id": "m%d" % i, "queue": "q2",
             "payload": {"ms": 60000}}
    else:
        j = {"type": "echo", "id": "m%d" % i, "tasks": 1 + i % 3}
    print(json.dumps(j))
PY
"$push" --batch "$tmp/many.ndjson" --wait --wait-timeout 60 \
    > "$tmp/many.out" 2> "$tmp/many.err" &
waiter=$!
pids+=($waiter)
for _ in $(seq 200); do
    [ -n "$(rcli FCALL_RO llmb_job 1 "$prefix:{q2}" m298 state)" ] && break; sleep 0.05
done
# it waits in a blocking read of a stream, not in a loop over the hashes
for _ in $(seq 100); do
    rcli CLIENT LIST | grep 'name=llmb-push' | grep -q 'cmd=xread' && break
    sleep 0.05
done
rcli CLIENT LIST | grep 'name=llmb-push' | grep -q 'cmd=xread' ||
    fail "llmb-push does not read the streams: $(rcli CLIENT LIST | grep llmb-push)"
( while kill -0 $waiter 2>/dev/null; do
      rcli XTRIM "$prefix:{default}:events" MAXLEN 0 >/dev/null; sleep 0.02
  done ) &
trimmer=$!
for i in $(seq 4 6 299); do
    "$bin/tools/admin/llmb" cancel "q2/m$i" >/dev/null || fail "cancel m$i"
done
set +e
wait $waiter; rc=$?
set -e
wait $trimmer
[ $rc -eq 1 ] || fail "300 jobs: exit $rc, $(tail -n 3 "$tmp/many.err")"
python3 - "$tmp/many.out" <<'PY' || fail "300 jobs: $(head -c 2000 "$tmp/many.out")"
import json, sys
jobs = [json.loads(l) for l in open(sys.argv[1])]
assert [j["id"] for j in jobs] == ["m%d" % i for i in range(300)]
want = {5: "failed", 4: "cancelled"}
for i, j in enumerate(jobs):
    assert j["state"] == want.get(i % 6, "completed"), (i, j["state"])
    assert j["queue"] == ("q2" if i % 6 == 4 else "default"), j["queue"]
    if j["state"] != "cancelled":
        assert "aggregate" in j, j
PY
grep -q '^300 jobs, 450 tasks: 350 ok, 50 failed, 50 cancelled$' "$tmp/many.err" ||
    fail "no total: $(tail -n 3 "$tmp/many.err")"

# one id in two queues: two jobs, each followed on its own queue's stream;
# the end of the one does not end the wait for the other
cat > "$tmp/same.ndjson" <<'NDJSON'
{"type":"echo","id":"same"}
{"type":"sleep","id":"same","queue":"q2","payload":{"ms":60000}}
NDJSON
"$push" --batch "$tmp/same.ndjson" --wait --wait-timeout 60 --no-journal \
    > "$tmp/same.out" 2> "$tmp/same.err" &
waiter=$!
pids+=($waiter)
for _ in $(seq 200); do
    [ -n "$(rcli FCALL_RO llmb_job 1 "$prefix:{default}" same aggregate)" ] &&
        [ "$(rcli FCALL_RO llmb_job 1 "$prefix:{q2}" same state)" = running ] && break
    sleep 0.05
done
sleep 2 # a wait that took the end of default/same for q2/same's ends now
[ ! -s "$tmp/same.out" ] ||
    fail "the wait ended with q2/same running: $(cat "$tmp/same.out")"
"$bin/tools/admin/llmb" cancel q2/same >/dev/null || fail "cancel q2/same"
set +e
wait $waiter; rc=$?
set -e
[ $rc -eq 1 ] || fail "one id, two queues: exit $rc, $(cat "$tmp/same.err")"
python3 - "$tmp/same.out" <<'PY' || fail "one id, two queues: $(cat "$tmp/same.out")"
import json, sys
jobs = [json.loads(l) for l in open(sys.argv[1])]
assert [(j["queue"], j["state"]) for j in jobs] == \
    [("default", "completed"), ("q2", "cancelled")], jobs
PY
# an events key that stops being a stream while a wait reads it: the
# error is said and the wait ends (before, it asked again at once until
# --wait-timeout, and never said why)
junk_wait() { # NAME ARGS...: the wait of job NAME in queue NAME made junk
    local name=$1
    shift
    "$push" "$@" --wait --wait-timeout 20 --no-progress \
        > "$tmp/$name.out" 2> "$tmp/$name.err" &
    waiter=$!
    pids+=($waiter)
    for _ in $(seq 200); do
        [ -n "$(rcli FCALL_RO llmb_job 1 "$prefix:{$name}" "$name" state)" ] && break
        sleep 0.05
    done
    rcli DEL "$prefix:{$name}:events" >/dev/null
    rcli SET "$prefix:{$name}:events" x >/dev/null
    set +e
    wait $waiter; rc=$?
    set -e
    [ $rc -eq 70 ] || fail "$name: exit $rc, $(cat "$tmp/$name.err")"
    grep -q "^llmb-push: reading events $prefix:{$name}:events: WRONGTYPE" \
        "$tmp/$name.err" || fail "$name: $(cat "$tmp/$name.err")"
}
junk_wait junk1 --queue junk1 --id junk1 echo '{}'
echo '{"type":"echo","id":"junk2","queue":"junk2"}' > "$tmp/junk2.ndjson"
junk_wait junk2 --batch "$tmp/junk2.ndjson"
# the final read of a job's hash answered with an error: said, exit 70
# (the hash of a job over is not read again until then)
cat > "$tmp/junk3.ndjson" <<'NDJSON'
{"type":"echo","id":"junk3"}
{"type":"echo","id":"junk3b","queue":"nobody"}
NDJSON
"$push" --batch "$tmp/junk3.ndjson" --wait --wait-timeout 4 --no-progress \
    > "$tmp/junk3.out" 2> "$tmp/junk3.err" &
waiter=$!
pids+=($waiter)
for _ in $(seq 200); do
    [ -n "$(rcli FCALL_RO llmb_job 1 "$prefix:{default}" junk3 aggregate)" ] && break
    sleep 0.05
done
sleep 1.5 # the wait has read that it is over
rcli DEL "$prefix:{default}:j:junk3" >/dev/null
rcli SET "$prefix:{default}:j:junk3" x >/dev/null
set +e
wait $waiter; rc=$?
set -e
[ $rc -eq 70 ] || fail "junk3: exit $rc, $(cat "$tmp/junk3.err")"
grep -q "^llmb-push: reading job junk3: WRONGTYPE" \
    "$tmp/junk3.err" || fail "junk3: $(cat "$tmp/junk3.err")"
echo "e2e push_wait: ok"
