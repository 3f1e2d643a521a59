#!/usr/bin/env bash
# Bad job documents, through redis-cli FCALL and through llmb-push:
# malformed JSON, wrong types, huge numbers, negative, 0 and 1,000,000
# tasks, a 64 MB payload, deep nesting, invalid UTF-8, NaN and hex numbers,
# unknown fields. Each gets its own clear message, creates nothing, and the
# queue keeps working: a good job pushed afterwards runs on a worker that
# ran all along.
set -euo pipefail
NAME=baddoc
. "$(dirname "$0")/bad_input_lib.sh"

"$worker" --queues default --capacity 2 --heartbeat-ms 300 >"$tmp/worker.log" 2>&1 &
wpid=$!
"$LLMB_BUILD_DIR/coordinator/llmb-coordinator" --no-write-conf >"$tmp/coordinator.log" 2>&1 &
cpid=$!
# one good job first, so that the queue and the worker are known to work
[ "$("$push" --wait --json --wait-timeout 20 --id good0 echo '{"n":0}' | head -c 1)" = '{' ] ||
    fail "good job before"
keys_before=$(rcli --scan --pattern "$prefix:*" | sort)
# the queue's jobs: the fields of its records hash, but "~"
job_ids() { rcli HKEYS "$base:jd" | grep -vx '~' | sort || true; }
jobs_before=$(job_ids)

# expect_fcall DOC MESSAGE: FCALL llmb_push refuses DOC with MESSAGE
expect_fcall() {
    local out
    out=$(rcli FCALL llmb_push 1 "$base" "$1" 2>&1)
    grep -qF -- "$2" <<<"$out" || fail "FCALL of ${1:0:60}: expected \"$2\", got \"${out:0:300}\""
}
# expect_push MESSAGE STATUS ARG...: llmb-push ARG... exits STATUS with MESSAGE
expect_push() {
    local msg=$1 want=$2 rc=0
    shift 2
    "$push" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
    [ "$rc" = "$want" ] || fail "llmb-push ${1:0:40}: exit $rc, expected $want: $(head -c 300 "$tmp/err")"
    grep -qF -- "$msg" "$tmp/err" || fail "llmb-push ${1:0:40}: expected \"$msg\", got \"$(head -c 300 "$tmp/err")\""
    [ ! -s "$tmp/out" ] || fail "llmb-push ${1:0:40} printed an id: $(cat "$tmp/out")"
}

# malformed JSON and documents that are not objects
expect_fcall '{"type":"echo"' 'ERR job document is not valid JSON: Expected comma or object end'
expect_fcall '' 'ERR job document is not valid JSON'
expect_fcall 'type=echo' 'ERR job document is not valid JSON'
expect_fcall '[{"type":"echo"}]' 'ERR job document must be a JSON object'
expect_fcall '"echo"' 'ERR job document must be a JSON object'
expect_fcall '{"type":"echo","payload":NaN}' 'ERR job document is not valid JSON: "NaN" at character 26 is not a JSON value'
expect_fcall '{"type":"echo","payload":{"a":-Infinity}}' '"-Infinity" at character 31 is not a JSON value'
expect_fcall '{"type":"echo","payload":[0x10]}' '"0x10" at character 27 is not a JSON value'
# wrong types
expect_fcall '{"type":["echo"]}' 'ERR job field "type" must be a string of 1 to 128 characters'
expect_fcall '{"type":"echo","tasks":"3"}' 'ERR job field "tasks" must be an integer from 1 to 100000, got "3"'
expect_fcall '{"type":"echo","priority":true}' 'ERR job field "priority" must be an integer from -1000000 to 1000000, got true'
expect_fcall '{"type":"echo","timeout_s":{}}' 'ERR job field "timeout_s" must be a number from 0.001 to 604800, got {}'
expect_fcall '{"type":"echo","queue":7}' 'ERR job field "queue" must be a string'
expect_fcall '{"type":"echo","id":"a:b"}' 'ERR job field "id" must be a string of 1 to 128 characters from [A-Za-z0-9_.-]'
expect_fcall '{"tasks":2}' 'ERR job field "type" is required'
# huge numbers, negative, 0 and 1,000,000 tasks, fractions
expect_fcall '{"type":"echo","priority":123456789012345678901234567890}' 'got 123456789012345678901234567890'
expect_fcall '{"type":"echo","tasks":1e400}' 'ERR job field "tasks" must be an integer from 1 to 100000, got 1e400'
expect_fcall '{"type":"echo","tasks":-5}' 'got -5'
expect_fcall '{"type":"echo","tasks":0}' 'ERR job field "tasks" must be an integer from 1 to 100000, got 0'
expect_fcall '{"type":"echo","tasks":1000000}' 'got 1000000'
expect_fcall '{"type":"echo","tasks":2.5}' 'got 2.5'
expect_fcall '{"type":"echo","max_retries":-1}' 'ERR job field "max_retries" must be an integer from 0 to 100, got -1'
expect_fcall '{"type":"echo","delay_s":1e308}' 'ERR job field "delay_s" must be a number from 0 to 31536000'
# unknown fields, invalid UTF-8, deep nesting
expect_fcall '{"type":"echo","bogus":1}' 'ERR job field "bogus" is not known (known fields: type, queue, payload'
# an llm payload's unknown field (a typo the server would ignore)
expect_fcall '{"type":"llm","payload":{"model":"m","concurency":8}}' \
    'ERR llm payload field "concurency" is not known; did you mean "concurrency"? known: endpoint, requests,'
expect_push 'llm payload field "warmup" is not known' 64 llm '{"model":"m","warmup":3}'
expect_fcall "$(printf '{"type":"echo","payload":"\xff\xfe"}')" 'ERR job document is not valid UTF-8 (byte 27)'
expect_fcall "$(printf '{"type":"echo","payload":"\xed\xa0\x80"}')" 'ERR job document is not valid UTF-8 (byte 27)'
deep=$(printf '%*s' 2000 '' | tr ' ' '[')$(printf '%*s' 2000 '' | tr ' ' ']')
expect_fcall "{\"type\":\"echo\",\"payload\":$deep}" 'ERR job document is not valid JSON: Found too many nested data structures'
# a batch call: each bad document answers its error, the good one its id
out=$(rcli FCALL llmb_push 1 "$base" '{"type":"echo","tasks":0}' \
        '{"type":"echo","id":"good1"}' 'nope' | tr '\n' '|')
[[ $out == *'must be an integer from 1 to 100000'*'|good1|'*'not valid JSON'* ]] ||
    fail "batch replies: $out"

# a 64 MB payload: refused by the queue's max_payload, from stdin and a file
head -c $((64 << 20)) /dev/zero | tr '\0' x | { printf '{"blob":"'; cat; printf '"}'; } >"$tmp/big.json"
"$push" echo - <"$tmp/big.json" >"$tmp/out" 2>"$tmp/err" && fail "64 MB payload accepted"
grep -qxF 'llmb-push: job field "payload" is 67108875 bytes; the limit is 1048576' "$tmp/err" ||
    fail "64 MB from stdin: $(head -c 300 "$tmp/err")"
{ printf '{"type":"echo","payload":'; cat "$tmp/big.json"; printf '}'; } >"$tmp/bigdoc.json"
out=$(rcli -x FCALL llmb_push 1 "$base" <"$tmp/bigdoc.json" 2>&1)
grep -qF 'ERR job document is 67108901 bytes; the limit is 1114112' <<<"$out" || fail "64 MB through redis-cli -x: ${out:0:300}"
# in a batch the big line is refused and the next one still goes in
{ cat "$tmp/bigdoc.json"; echo; echo '{"type":"echo","id":"good2"}'; } |
    "$push" --batch - >"$tmp/out" 2>"$tmp/err" && fail "batch with a 64 MB line exit 0"
grep -qF 'line 1: job field "payload" is 67108875 bytes; the limit is 1048576' "$tmp/err" ||
    fail "batch 64 MB: $(head -c 300 "$tmp/err")"
[ "$(cat "$tmp/out")" = good2 ] || fail "good line after the 64 MB one: $(cat "$tmp/out")"
# just under the limit is fine: the limit is the configured one
head -c 1048000 /dev/zero | tr '\0' y | { printf '"'; cat; printf '"'; } >"$tmp/under.json"
"$push" --id good3 echo - <"$tmp/under.json" >/dev/null || fail "1 MB payload refused"
rm -f "$tmp/big.json" "$tmp/bigdoc.json" "$tmp/under.json"

# llmb-push finds the same mistakes before it sends anything (exit 64)
expect_push '--tasks must be an integer from 1 to 100000, got "1000000"' 64 --tasks 1000000 echo
expect_push '--tasks must be an integer from 1 to 100000, got "-3"' 64 --tasks -3 echo
expect_push '--tasks must be an integer from 1 to 100000, got "0"' 64 --tasks 0 echo
expect_push '--priority must be an integer from -1000000 to 1000000, got "99999999999999999999"' 64 \
    --priority 99999999999999999999 echo
expect_push 'payload is not valid JSON' 64 echo '{"a":'
expect_push 'payload is not valid JSON' 64 echo 'NaN'
expect_push 'payload is not valid JSON: unable to decode byte 0xff' 64 echo "$(printf '{"a":"\xff"}')"
# 2000 levels pass jansson (llmb-push) but not cjson (Redis); 3000 neither
expect_push 'job document is not valid JSON: Found too many nested data structures (1001)' 65 echo "$deep"
deeper=$(printf '%*s' 3000 '' | tr ' ' '[')$(printf '%*s' 3000 '' | tr ' ' ']')
expect_push 'payload is not valid JSON: maximum parsing depth reached' 64 echo "$deeper"
expect_push 'job type must be 1 to 128 characters' 64 "$(printf 'ty\xffpe')"
# and in NDJSON the function's messages come back per line (exit 65)
printf '%s\n' '{"type":"echo","zzz":1}' '{"type":"echo","payload":{"x":nan}}' \
    '{"type":"echo","tasks":-1}' '{"type":"echo","id":"good4"}' \
    '{"type":"benchmark","payload":{"iteratons":4}}' >"$tmp/in.ndjson"
rc=0; "$push" --batch "$tmp/in.ndjson" >"$tmp/out" 2>"$tmp/err" || rc=$?
[ $rc = 65 ] || fail "NDJSON exit $rc"
grep -qF 'line 1: job field "zzz" is not known' "$tmp/err" || fail "ndjson 1: $(cat "$tmp/err")"
grep -qF 'line 2: job document is not valid JSON' "$tmp/err" || fail "ndjson 2: $(cat "$tmp/err")"
grep -qF 'line 3: job field "tasks" must be an integer from 1 to 100000, got -1' "$tmp/err" ||
    fail "ndjson 3: $(cat "$tmp/err")"
grep -qF 'line 5: benchmark payload field "iteratons" is not known; did you mean "iterations"?' \
    "$tmp/err" || fail "ndjson 5: $(cat "$tmp/err")"
[ "$(cat "$tmp/out")" = good4 ] || fail "ndjson ids: $(cat "$tmp/out")"

# nothing was created by the refused documents: only good1..good4 are new
new_jobs=$(comm -13 <(echo "$jobs_before") <(job_ids) | tr '\n' ' ')
[ "$new_jobs" = "good1 good2 good3 good4 " ] || fail "new jobs: $new_jobs"
for id in good1 good2 good3 good4; do
    [ -n "$(rcli FCALL_RO llmb_job 1 "$base" "$id" state)" ] || fail "$id missing"
done
# (job hashes and the task hashes of earlier versions; the good jobs
# running add other keys meanwhile)
new_keys=$(comm -13 <(echo "$keys_before") <(rcli --scan --pattern "$prefix:*" | sort) |
           grep -e ':[jt]:' | grep -v -e ":j:good[1-4]$" -e ":t:good[1-4]$" || true)
[ -z "$new_keys" ] || fail "refused documents left keys: $new_keys"

# the worker kept running and runs what was pushed after all that
out=$("$push" --wait --json --wait-timeout 20 --id good5 --tasks 3 echo '{"n":5}')
grep -q '"state": *"completed"' <<<"$out" || fail "good job after: $out"
kill -0 "$wpid" || fail "the worker died"
kill -0 "$cpid" || fail "the coordinator died"
echo "e2e bad input (documents): ok"
