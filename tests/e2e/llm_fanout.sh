#!/usr/bin/env bash
# An LLM benchmark spread over three real llmb-worker processes and
# aggregated by a real llmb-coordinator, against the mock LLM server: the
# job's p50/p90/p99 of metrics.ttft_ms, tpot_ms and e2e_ms must be the
# percentiles of every request of every task taken together (recomputed
# here from the task results' records, within the histograms' bound,
# never averaged), the sampled records must not be aggregated, the
# totals must add up,
# and `llmb-push --wait` must print the summary table (--json: the job
# JSON only).
. "$(dirname "$0")/llm_lib.sh"

start_mock --ttft-ms 40 --itl-ms 5 --jitter 0.6 --seed 3

common=(--redis "$url" --prefix "$prefix" --log-level debug)
for i in 1 2 3; do
    "$bin/worker/llmb-worker" "${common[@]}" --id "w$i" --capacity 2 \
        --heartbeat-ms 200 --llm-endpoint "mock=http://127.0.0.1:$port" \
        2>"$tmp/worker$i.log" &
    pids+=($!)
done
"$bin/coordinator/llmb-coordinator" "${common[@]}" --tick-ms 50 \
    2>"$tmp/coordinator.log" &
pids+=($!)
for _ in $(seq 200); do
    [ "$(rcli ZCARD "$prefix:workers")" = 3 ] && break
    sleep 0.05
done
[ "$(rcli ZCARD "$prefix:workers")" = 3 ] || fail "three workers did not register"

# Six tasks of 20 requests; every worker takes two (capacity 2).
payload='{"model":"m","messages":[{"role":"user","content":"count to ten"}],
          "max_tokens":10,"requests":20,"concurrency":4}'
"$bin/tools/push/llmb-push" "${common[@]}" --wait --wait-timeout 45 \
    --tasks 6 --no-progress --id fanout llm "$payload" > "$tmp/out" 2>"$tmp/push.log" ||
    fail "llmb-push --wait exited $?"
# stdout is a file: it holds the job's JSON only, the table goes to stderr
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/out" ||
    fail "stdout is not one JSON document: $(cat "$tmp/out")"
grep -q '==== LLM serving benchmark: job fanout ====' "$tmp/push.log" || fail "no table: $(cat "$tmp/push.log")"
grep -Eq '^requests +120 \(ok 120, failed 0\)$' "$tmp/push.log" || fail "requests line"
grep -Eq '^TTFT \(ms\) +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +120$' "$tmp/push.log" || fail "TTFT row"
grep -Eq '^errors +none$' "$tmp/push.log" || fail "errors line"

# The aggregate against the percentiles of all 120 records.
job_aggregate fanout "$tmp/aggregate.json"
for i in 0 1 2 3 4 5; do
    rcli FCALL_RO llmb_job 1 "$prefix:{default}" "fanout" "$i:result" > "$tmp/result$i.json"
    rcli FCALL_RO llmb_job 1 "$prefix:{default}" "fanout" "$i:worker"
done | sort -u > "$tmp/workers"
[ "$(wc -l < "$tmp/workers")" = 3 ] || fail "tasks ran on $(tr '\n' ' ' < "$tmp/workers")"

python3 -S - "$tmp" <<'PY' || fail "aggregate check"
import json, math, sys
tmp = sys.argv[1]
agg = json.load(open(tmp + "/aggregate.json"))
results = [json.load(open("%s/result%d.json" % (tmp, i))) for i in range(6)]
records = [r for res in results for r in res["_requests"]]
assert len(records) == 120, len(records)

def quantile(xs, q):  # NumPy's default: linear between closest ranks
    xs = sorted(xs)
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])

def near(got, want):  # the aggregate's rounding: 3 decimals or 6 digits
    return abs(got - want) <= max(5e-4, 5e-6 * abs(want)) + 1e-12

fields = agg["fields"]
# The sampled records are not aggregated: the latency figures are the
# merged histograms only (docs/llm.md, "The task result and the job's
# aggregate").
assert not [k for k in fields if k.startswith(("requests.", "_"))], sorted(fields)
assert "summary.records_dropped" not in fields
for m in ("ttft_ms", "tpot_ms", "e2e_ms"):
    xs = sorted(r[m] for r in records)
    f = fields["metrics." + m]
    assert f["count"] == 120, (m, f["count"])
    for name, q in (("p50", .5), ("p90", .9), ("p99", .99)):
        # nearest rank, within the histogram's 0.39 % (records: to the us)
        want = xs[max(0, math.ceil(q * len(xs)) - 1)]
        assert abs(f[name] - want) <= 0.004 * want + 0.002, (m, name, f[name], want)
    assert abs(f["mean"] - sum(xs) / len(xs)) < 0.002, (m, f["mean"])
    assert f["kind"] == "duration" and "sum" not in f and "per_s" not in f, f
    # Averaging the tasks' own p99s is not what the job reports.
    per_task = [quantile([r[m] for r in res["_requests"]], .99) for res in results]
    print("%s: p50 %.3f p99 %.3f (mean of task p99s %.3f)" %
          (m, f["p50"], f["p99"], sum(per_task) / len(per_task)))
# ITL: every gap of every request (9 per request of 10 tokens)
assert fields["metrics.itl_ms"]["count"] == 120 * 9, fields["metrics.itl_ms"]

s = fields["summary.requests"]
assert s["sum"] == 120 and s["count"] == 6, s
assert fields["summary.output_tokens"]["sum"] == 1200
assert fields["summary.errors.http_429"]["sum"] == 0
run_ms = agg["measured_ms"]  # the measured window, not run_ms
assert 0 < run_ms <= agg["run_ms"], (run_ms, agg["run_ms"])
assert s["kind"] == "count" and near(s["per_s"], 120 * 1000.0 / run_ms), (s, run_ms)
print("requests/s %.2f over measured_ms %d" % (s["per_s"], run_ms))
PY

# --json: the job JSON alone.
"$bin/tools/push/llmb-push" "${common[@]}" --wait --wait-timeout 30 --json \
    --no-progress llm '{"model":"m","prompt":"x","max_tokens":3}' > "$tmp/json" 2>>"$tmp/push.log" ||
    fail "--json run exited $?"
python3 -S -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["state"]=="completed"' "$tmp/json" ||
    fail "--json output is not one JSON document: $(cat "$tmp/json")"
echo "llm fan-out over 3 workers aggregated every request"
