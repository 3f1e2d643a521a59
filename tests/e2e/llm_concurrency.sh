#!/usr/bin/env bash
# The job's concurrency, asked against achieved (docs/llm.md, "Is the
# client the bottleneck?"): one real llmb-worker of --capacity 1 runs a
# job of two tasks at concurrency 2 one after the other, so at most 2
# requests are ever on the wire of the 4 asked. llmb-push --wait and
# llmb show print "4 asked, X achieved" with X at most 2, and the
# warning; a job under a rate (concurrency is then a cap) gets the line
# without the warning. Then the job's throughput and concurrency over
# time against the mock's send log (at the end).
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

# Throughput and concurrency over time (docs/llm.md): two tasks of
# concurrency 3 side by side (a worker of capacity 2), so at most 6 on the
# wire. The job's merged series gives every output token the mock sent
# (its send log) and every request, on 1 s buckets; its concurrency is at
# most 6 in every bucket, adds up to the tasks' time on the wire, and
# covers at least the mock's own sending time of every response.
port1=$port
start_mock --ttft-ms 30 --itl-ms 20 --log-sends "$tmp/sends.log"
port2=$port
port=$port1
"$bin/worker/llmb-worker" "${common[@]}" --id w2 --capacity 2 \
    --heartbeat-ms 200 --queues series \
    --llm-endpoint "mock2=http://127.0.0.1:$port2" 2>"$tmp/worker2.log" &
pids+=($!)
"$bin/tools/push/llmb-push" "${common[@]}" --wait --wait-timeout 60 \
    --queue series --tasks 2 --no-progress --id timeline llm \
    '{"endpoint":"mock2","model":"m","prompt":"x","max_tokens":12,"requests":24,"concurrency":3}' \
    > /dev/null 2>"$tmp/push3.log" || fail "timeline job exited $?"
for _ in $(seq 100); do
    [ -n "$(rcli FCALL_RO llmb_job 1 "$prefix:{series}" timeline aggregate)" ] && break
    sleep 0.1
done
rcli FCALL_RO llmb_job 1 "$prefix:{series}" timeline aggregate > "$tmp/timeline.json"
python3 -S - "$tmp/timeline.json" "$tmp/sends.log" <<'PY' || fail "timeline"
import json, sys
agg = json.load(open(sys.argv[1]))
sends = [json.loads(l) for l in open(sys.argv[2])]
tl = agg["timeline"]
f = agg["fields"]
n = len(tl["requests"])
assert tl["tasks"] == 2 and "refused" not in tl, tl
assert tl["width_ms"] == 1000 and tl["start_ms"] % 1000 == 0, tl
assert n == len(tl["output_tokens"]) == len(tl["concurrency"]) >= 1, tl
# tokens and requests: exactly what was sent and counted
tokens = sum(tl["output_tokens"])
assert tokens == f["summary.output_tokens"]["sum"] == 2 * 24 * 12, tokens
assert tokens == sum(len(s["sent_s"]) for s in sends), tokens
assert sum(tl["requests"]) == f["summary.requests"]["sum"] == 48, tl
# concurrency: never above the 6 asked, the tasks' time on the wire
assert max(tl["concurrency"]) <= 6.001, tl["concurrency"]
busy_s = sum(tl["concurrency"]) * tl["width_ms"] / 1000
wire = f["summary.inflight_s"]
wire_s = wire["mean"] * wire["count"]
assert abs(busy_s - wire_s) < 0.01 + 0.0001 * n, (busy_s, wire_s)
mock_s = sum(s["sent_s"][-1] - s["sent_s"][0] for s in sends)
assert busy_s >= mock_s, (busy_s, mock_s)
print("timeline: %d buckets, %d tokens, mean concurrency %.2f, "
      "peak bucket %.2f" % (n, tokens, busy_s * 1000 / (n * tl["width_ms"]),
                            max(tl["concurrency"])))
PY
echo "llm timeline: tokens and requests as sent, concurrency within the asked"
# llmb show sums it up in one line; --json has it whole.
"$bin/tools/admin/llmb" "${common[@]}" show timeline > "$tmp/show3.out" \
    2>&1 || fail "llmb show timeline exited $?"
"$bin/tools/admin/llmb" "${common[@]}" show timeline --json \
    > "$tmp/show3.json" 2>&1 || fail "llmb show timeline --json exited $?"
python3 -S - "$tmp/timeline.json" "$tmp/show3.out" "$tmp/show3.json" <<'PY' ||
import json, re, sys
tl = json.load(open(sys.argv[1]))["timeline"]
lines = [l for l in open(sys.argv[2]) if l.startswith("timeline")]
assert len(lines) == 1, lines
m = re.fullmatch(r"timeline: (\d+) buckets of 1\.0s, peak ([0-9.]+) output "
                 r"tok/s, peak concurrency ([0-9.]+) \(--json has the "
                 r"series\)\n", lines[0])
assert m, lines[0]
assert int(m.group(1)) == len(tl["output_tokens"]), (m.group(1), tl)
peak = max(tl["output_tokens"]) * 1000 / tl["width_ms"]
assert abs(float(m.group(2)) - peak) < 0.001, (m.group(2), peak)
assert abs(float(m.group(3)) - max(tl["concurrency"])) < 0.001, (
    m.group(3), tl["concurrency"])
shown = json.load(open(sys.argv[3]))["job"]["aggregate"]["timeline"]
assert shown == tl, (shown, tl)
PY
    fail "show: the timeline line: $(grep '^timeline' "$tmp/show3.out")"
grep '^timeline' "$tmp/show3.out"
