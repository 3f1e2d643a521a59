#!/usr/bin/env bash
# llmb-push as a user runs it: one job from flags, bad flags, NDJSON
# batches with bad lines in the middle, exit codes, and Redis unreachable.
set -euo pipefail
url=$(cat "$LLMB_TEST_REDIS_URL_FILE")
push="$LLMB_BUILD_DIR/tools/push/llmb-push"
prefix="e2epush$$"
export LLMB_REDIS_URL=$url LLMB_PREFIX=$prefix
rcli() { redis-cli -u "$url" "$@"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; rcli --scan --pattern "$prefix:*" | xargs -r redis-cli -u "$url" del >/dev/null' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# one job, every flag; the document stored is what the flags said
id=$("$push" --queue gpu --priority 7 --tasks 3 --timeout 2.5 --retries 1 \
       --backoff-ms 50 --id job-a echo '{"seed": 12345678901234567890}')
[ "$id" = job-a ] || fail "id $id"
[ "$(rcli FCALL_RO llmb_job 1 "$prefix:{gpu}" "job-a" payload)" = '{"seed": 12345678901234567890}' ] ||
  fail "payload not kept byte for byte"
[ "$(rcli FCALL_RO llmb_job 1 "$prefix:{gpu}" "job-a" priority)" = 7 ] || fail priority
# tasks waiting in a queue (a fan-out job waits as one member, its cursor)
waiting() { rcli FCALL llmb_stats 1 "$prefix:{$1}" | sed -n 2p; }
[ "$(waiting gpu)" = 3 ] || fail "3 tasks pending"
[ "$(rcli ZCARD "$prefix:{gpu}:pz")" = 1 ] || fail "one member for 3 tasks"
rcli SISMEMBER "$prefix:queues" gpu | grep -qx 1 || fail "queue not registered"
# the same id again returns the same job
[ "$("$push" --queue gpu --id job-a other)" = job-a ] || fail idempotent
[ "$(waiting gpu)" = 3 ] || fail "no second job"

# bad flags: exit 64 with the flag named, nothing pushed
set +e
err=$("$push" --priority high echo 2>&1); rc=$?
set -e
[ $rc -eq 64 ] || fail "bad flag exit $rc"
grep -q -- '--priority must be an integer from -1000000 to 1000000, got "high"' <<<"$err" || fail "$err"
set +e
err=$("$push" echo '{"a":' 2>&1); rc=$?
set -e
[ $rc -eq 64 ] || fail "bad payload exit $rc"
grep -q 'payload is not valid JSON' <<<"$err" || fail "$err"
set +e
"$push" >/dev/null 2>&1; rc=$?
set -e
[ $rc -eq 64 ] || fail "no type exit $rc"
"$push" --help | grep -- '--batch' >/dev/null || fail "--help"

# batch: good and bad lines; ids in order on stdout, bad lines by number
cat > "$tmp/in.ndjson" <<'NDJSON'
{"type":"a","id":"b1"}

{"type":"b","id":"b2","tasks":0}
not json at all
{"type":"c","id":"b3","queue":"other"}
{"type":"d","id":"b4","priority":1}
NDJSON
set +e
"$push" --batch "$tmp/in.ndjson" >"$tmp/out" 2>"$tmp/err"; rc=$?
set -e
[ $rc -eq 65 ] || fail "batch with rejected lines exit $rc"
[ "$(tr '\n' ' ' < "$tmp/out")" = "b1 b3 b4 " ] || fail "ids: $(cat "$tmp/out")"
grep -q '^llmb-push: line 3: job field "tasks" must be an integer from 1 to 100000, got 0$' "$tmp/err" || fail "line 3: $(cat "$tmp/err")"
grep -q '^llmb-push: line 4: job document is not valid JSON' "$tmp/err" || fail "line 4: $(cat "$tmp/err")"
grep -q '2 rejected' "$tmp/err" || fail "summary"
[ "$(rcli FCALL_RO llmb_job 1 "$prefix:{other}" "b3" type)" = c ] || fail "routed by its queue field"

# batch jobs (llmb_push_fields) are stored as single pushes and as a
# document through llmb_push store them: payload byte for byte, every
# field; refusals name the line whoever made them
rcli FCALL llmb_push 1 "$prefix:{gpu}" '{"type":"echo","id":"json-a","priority":7,"tasks":3,"timeout_s":2.5,"max_retries":1,"backoff_ms":50,"payload":{"seed": 12345678901234567890}}' >/dev/null
cat > "$tmp/same.ndjson" <<'NDJSON'
{"type":"echo","id":"s2","priority":7,"tasks":3,"timeout_s":2.5,"max_retries":1,"backoff_ms":50,"payload":{"seed": 12345678901234567890}}
{"type":"echo","id":"bad id"}
{"type":"echo","id":"s3","queue":"gpu","timeout_s":0}
{"type":"echo","id":"s4","queue":"gpu","tasks":2,"payload":[1, "two" ,3.0]}
NDJSON
set +e
"$push" --queue gpu --batch "$tmp/same.ndjson" >"$tmp/out" 2>"$tmp/err"; rc=$?
set -e
[ $rc -eq 65 ] || fail "batch exit $rc"
[ "$(tr '\n' ' ' < "$tmp/out")" = "s2 s4 " ] || fail "ids: $(cat "$tmp/out")"
grep -q '^llmb-push: line 2: job field "id" must be a string of 1 to 128 characters from \[A-Za-z0-9_.-\], got "bad id"$' "$tmp/err" || fail "line 2: $(cat "$tmp/err")"
grep -q '^llmb-push: line 3: job field "timeout_s" must be a number from 0.001 to 604800, got 0$' "$tmp/err" || fail "line 3: $(cat "$tmp/err")"
hash_of() { rcli FCALL_RO llmb_job 1 "$prefix:{gpu}" "$1" | paste - - | grep -v '^id\|^created_ms' | sort; }
[ "$(hash_of s2)" = "$(hash_of job-a)" ] || fail "batch and single differ: $(hash_of s2) / $(hash_of job-a)"
[ "$(hash_of s2)" = "$(hash_of json-a)" ] || fail "batch and llmb_push differ: $(hash_of s2) / $(hash_of json-a)"
[ "$(rcli FCALL_RO llmb_job 1 "$prefix:{gpu}" s4 payload)" = '[1, "two" ,3.0]' ] || fail "batch payload not kept byte for byte"
[ -z "$(rcli FCALL_RO llmb_job 1 "$prefix:{gpu}" s3)" ] || fail "refused job stored"
[ "$(waiting gpu)" = 11 ] || fail "3 + 3 + 3 + 2 tasks pending"

# --json: one status object per line, in order; a refusal has a null id
# and its message without the "ERR " of a Redis error reply. The jobs
# exist already: they are answered, not pushed again.
set +e
"$push" --queue gpu --batch --json "$tmp/same.ndjson" >"$tmp/json" 2>/dev/null; rc=$?
set -e
[ $rc -eq 65 ] || fail "batch --json exit $rc"
python3 - "$tmp/json" <<'EOF' || fail "batch --json: $(cat "$tmp/json")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bad_id = 'job field "id" must be a string of 1 to 128 characters from [A-Za-z0-9_.-], got "bad id"'
bad_timeout = 'job field "timeout_s" must be a number from 0.001 to 604800, got 0'
assert rows == [
    {"line": 1, "id": "s2", "queue": "gpu", "status": "confirmed"},
    {"line": 2, "id": None, "queue": "gpu", "status": "error", "error": bad_id},
    {"line": 3, "id": None, "queue": "gpu", "status": "error", "error": bad_timeout},
    {"line": 4, "id": "s4", "queue": "gpu", "status": "confirmed"},
], rows
EOF
[ "$(waiting gpu)" = 11 ] || fail "the --json re-run pushed jobs again"

# a larger batch from stdin, pipelined, in order
seq 1 5000 | awk '{ printf "{\"type\":\"noop\",\"id\":\"n%d\"}\n", $1 }' |
  "$push" --batch --batch-size 64 --pipeline 4 - > "$tmp/ids"
[ "$(wc -l < "$tmp/ids")" = 5000 ] || fail "5000 ids"
[ "$(head -1 "$tmp/ids")" = n1 ] && [ "$(tail -1 "$tmp/ids")" = n5000 ] || fail order
[ "$(waiting default)" = 5002 ] || fail "5000 more pending"

# at the largest --batch-size and --pipeline: full calls and a partial one
seq 1 600 | awk '{ printf "{\"type\":\"noop\",\"id\":\"m%d\"}\n", $1 }' |
  "$push" --batch --batch-size 250 --pipeline 1024 - > "$tmp/ids"
[ "$(wc -l < "$tmp/ids")" = 600 ] || fail "600 ids at --batch-size 250"
[ "$(head -1 "$tmp/ids")" = m1 ] && [ "$(tail -1 "$tmp/ids")" = m600 ] || fail "order at --batch-size 250"
[ "$(waiting default)" = 5602 ] || fail "600 more pending"

# --wait follows its job when the job ends in one call with others: the
# call's `finished` event lists them all (ids, states). The call ends its
# jobs in the order of its tasks, the claim's: the waited job, pushed
# last, fails on a bad result and is the last of both lists.
wb="$prefix:{wq}"
"$push" --queue wq --id other-1 noop >/dev/null
"$push" --queue wq --id other-2 noop >/dev/null
"$push" --queue wq --wait --wait-timeout 30 --retries 0 --id waited noop '{}' \
  > "$tmp/waited" 2> "$tmp/waited.err" &
wpid=$!
for _ in $(seq 100); do
  [ "$(rcli LLEN "$wb:pl")" = 3 ] && break
  sleep 0.05
done
rcli FCALL llmb_claim 1 "$wb" w1 3 30000 > "$tmp/claim"
[ "$(sed -n 3p "$tmp/claim")" = 3 ] || fail "claim of 3: $(cat "$tmp/claim")"
# the reply: now, next due, count, the batch's token, then per task its
# ref, type, payload and options
cargs=()
token=$(sed -n 4p "$tmp/claim")
for k in 0 1 2; do
  ref=$(sed -n "$((5 + 4 * k))p" "$tmp/claim")
  res='{"ms":1}'
  [ "$ref" = waited ] && res='not an object'
  cargs+=("$ref" "$token" "$res")
done
rcli FCALL llmb_complete 1 "$wb" w1 "${cargs[@]}" >/dev/null
set +e
wait $wpid; rc=$?
set -e
[ $rc -eq 1 ] || fail "--wait of a failed job: exit $rc: $(cat "$tmp/waited.err")"
grep -q '"state": "failed"' "$tmp/waited" || fail "waited job: $(cat "$tmp/waited")"
grep -q '"id": "waited"' "$tmp/waited" || fail "waited job: $(cat "$tmp/waited")"
rcli XRANGE "$wb:events" - + > "$tmp/events"
[ "$(grep -A1 -x ids "$tmp/events" | tail -1)" = 'other-1 other-2 waited' ] ||
  fail "no finished event listing the three: $(cat "$tmp/events")"
[ "$(grep -A1 -x states "$tmp/events" | tail -1)" = 'completed completed failed' ] ||
  fail "finished event states: $(cat "$tmp/events")"

# a queue no live worker serves: pushed, with a warning on stderr; a real
# worker without the type's handler: a warning naming the type; one with
# it: no warning
out=$("$push" --queue nobody noop 2>"$tmp/warn") || fail "push to nobody"
[ -n "$out" ] || fail "no id for the job pushed to nobody"
grep -q 'warning: no live worker serves queue nobody' "$tmp/warn" ||
  fail "no warning: $(cat "$tmp/warn")"
"$LLMB_BUILD_DIR/worker/llmb-worker" --queues served --handler noop=noop \
  --heartbeat-ms 200 --log-level warn 2>"$tmp/worker.log" &
wpid=$!
trap 'kill $wpid 2>/dev/null || true; wait $wpid 2>/dev/null || true; rm -rf "$tmp"; rcli --scan --pattern "$prefix:*" | xargs -r redis-cli -u "$url" del >/dev/null' EXIT
for _ in $(seq 100); do
  [ -n "$(rcli HGET "$prefix:{served}:types" noop)" ] && break; sleep 0.1
done
"$push" --queue served special >/dev/null 2>"$tmp/warn" || fail "push special"
grep -q 'warning: no live worker of queue served handles job type "special"' \
  "$tmp/warn" || fail "no type warning: $(cat "$tmp/warn")"
"$push" --queue served noop >/dev/null 2>"$tmp/warn" || fail "push noop"
[ ! -s "$tmp/warn" ] || fail "warning for a served type: $(cat "$tmp/warn")"
kill $wpid; wait $wpid || true

# Redis unreachable: exit 69 and a clear message
set +e
err=$("$push" --redis redis://127.0.0.1:1 echo 2>&1); rc=$?
set -e
[ $rc -eq 69 ] || fail "unreachable exit $rc"
grep -q 'cannot connect to redis 127.0.0.1:1' <<<"$err" || fail "$err"
echo "e2e push: ok"
