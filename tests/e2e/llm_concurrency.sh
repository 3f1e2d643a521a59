#!/usr/bin/env bash
# The job's concurrency, asked against achieved (docs/llm.md, "Is the
# client the bottleneck?"): one real llmb-worker of --capacity 1 runs a
# job of two tasks at concurrency 2 one after the other, so at most 2
# requests are ever on the wire of the 4 asked. llmb-push --wait and
# llmb show print "4 asked, X achieved" with X at most 2, and the
# warning; a job under a rate (concurrency is then a cap) gets the line
# without the warning.
. "$(dirname "$0")/llm_lib.sh"

start_mock --ttft-ms 40 --itl-ms 2

common=(--redis "$url" --prefix "$prefix")
"$bin/worker/llmb-worker" "${common[@]}" --id w1 --capacity 1 \
    --heartbeat-ms 200 --llm-endpoint "mock=http://127.0.0.1:$port" \
    2>"$tmp/worker.log" &
pids+=($!)
"$bin/coordinator/llmb-coordinator" "${common[@]}" --tick-ms 50 \
    2>"$tmp/coordinator.log" &
pids+=($!)

"$bin/tools/push/llmb-push" "${common[@]}" --wait --wait-timeout 60 \
    --tasks 2 --no-progress --id seq llm \
    '{"model":"m","prompt":"x","max_tokens":4,"requests":6,"concurrency":2}' \
    > /dev/null 2>"$tmp/push.log" || fail "llmb-push --wait exited $?"
line=$(grep -E '^concurrency ' "$tmp/push.log") || fail "no concurrency line"
echo "$line"
[[ $line =~ ^concurrency\ +4\ asked,\ ([0-9.]+)\ achieved\ \(time-weighted\ over\ the\ run\)$ ]] ||
    fail "concurrency line: $line"
python3 -S -c 'import sys; a = float(sys.argv[1]); assert 0 < a <= 2.05, a' \
    "${BASH_REMATCH[1]}" || fail "achieved ${BASH_REMATCH[1]} of 4 on one slot"
grep -q '^warning: the job ran at [0-9]* % of the concurrency asked: its tasks did not all run at once' \
    "$tmp/push.log" || fail "no warning"

"$bin/tools/admin/llmb" "${common[@]}" show seq > "$tmp/show.out" 2>&1 ||
    fail "llmb show exited $?"
grep -Eq '^concurrency: 4 asked, [0-9.]+ achieved \(time-weighted over the run\)$' \
    "$tmp/show.out" || fail "show: no concurrency line"
grep -q '^warning: the job ran at' "$tmp/show.out" || fail "show: no warning"
# the header names the measured window every per_s is over
grep -Eq '^aggregate \(.*\): 2 results, run [0-9.a-z]+, measured [0-9.a-z]+; ' \
    "$tmp/show.out" || fail "show: no measured window in the header"

# Under a rate, concurrency is a cap: the line, no warning.
"$bin/tools/push/llmb-push" "${common[@]}" --wait --wait-timeout 60 \
    --tasks 2 --no-progress --id paced llm \
    '{"model":"m","prompt":"x","max_tokens":4,"requests":3,"concurrency":2,"rate":20}' \
    > /dev/null 2>"$tmp/push2.log" || fail "paced job exited $?"
grep -Eq '^concurrency +4 asked, ' "$tmp/push2.log" || fail "paced: no line"
if grep -q '^warning: the job ran at' "$tmp/push2.log"; then
    fail "a warning under a rate"
fi
echo "llm concurrency: asked against achieved, with the warning"
