#!/usr/bin/env bash
# The job-level metrics of an LLM benchmark (docs/llm.md, "Metrics"): two
# real llmb-worker processes and a real llmb-coordinator against the mock
# with an 80 ms decode stall every 16th token gap (5 ms otherwise). The
# job aggregate merges the tasks' histograms: ITL p50 and p99 (every gap
# of every request) must be those of the gaps the mock logged sending
# (--log-sends), the p99 a stall, while TPOT stays near each request's
# mean gap as sent; counts must be every request and every gap; output token
# throughput must be all output tokens / the measured window (warm-up
# left out, measured_ms); goodput must count only
# the requests within the payload's slo. With record_itls every gap goes
# to the exports (jsonl, csv, vLLM's itls), the gaps the histogram holds.
. "$(dirname "$0")/llm_lib.sh"

start_mock --ttft-ms 30 --itl-ms 5 --pause-every 16 --pause-ms 80 \
    --log-sends "$tmp/sends.jsonl"

common=(--redis "$url" --prefix "$prefix")
for i in 1 2; do
    "$bin/worker/llmb-worker" "${common[@]}" --id "w$i" --capacity 2 \
        --heartbeat-ms 200 --llm-endpoint "mock=http://127.0.0.1:$port" \
        2>"$tmp/worker$i.log" &
    pids+=($!)
done
"$bin/coordinator/llmb-coordinator" "${common[@]}" --tick-ms 50 \
    2>"$tmp/coordinator.log" &
pids+=($!)

# Four tasks of 10 requests of 64 tokens; tpot_ms 9 splits nothing
# (every request is near 8.6), ttft_ms 30 splits them: the mock waits at
# least 30 ms, so only requests answered within a hair of it are good.
payload='{"model":"m","messages":[{"role":"user","content":"go"}],
          "max_tokens":64,"requests":10,"concurrency":5,
          "slo":{"ttft_ms":32.5,"tpot_ms":9.5},"record_itls":true}'
"$bin/tools/push/llmb-push" "${common[@]}" --wait --wait-timeout 60 --json \
    --tasks 4 --no-progress --id met llm "$payload" > "$tmp/out" 2>"$tmp/push.log" ||
    fail "llmb-push --wait exited $?"
job_aggregate met "$tmp/aggregate.json"
for i in 0 1 2 3; do
    rcli FCALL_RO llmb_job 1 "$prefix:{default}" "met" "$i:result" > "$tmp/result$i.json"
done

python3 -S - "$tmp" <<'PY' || fail "aggregate check"
import json, math, sys
tmp = sys.argv[1]
agg = json.load(open(tmp + "/aggregate.json"))
results = [json.load(open("%s/result%d.json" % (tmp, i))) for i in range(4)]
records = [r for res in results for r in res["_requests"]]
assert len(records) == 40 and all("error" not in r for r in records)
f = agg["fields"]
itl, tpot = f["metrics.itl_ms"], f["metrics.tpot_ms"]
print("ITL  p50 %.3f p90 %.3f p99 %.3f max %.3f mean %.3f n %d" %
      (itl["p50"], itl["p90"], itl["p99"], itl["max"], itl["mean"], itl["count"]))
print("TPOT p50 %.3f p90 %.3f p99 %.3f max %.3f mean %.3f n %d" %
      (tpot["p50"], tpot["p90"], tpot["p99"], tpot["max"], tpot["mean"], tpot["count"]))
# The gaps the mock sent (its own clock, so a loaded machine that delays
# the mock moves both sides): the measured ITL percentiles are theirs,
# give or take the delivery on loopback, and the p99 is a stall, far from
# the mean gap of 8.6 ms that the old per-request ITL gave.
sent = [json.loads(l)["sent_s"] for l in open(tmp + "/sends.jsonl")]
assert len(sent) == 40 and all(len(s) == 64 for s in sent), len(sent)
sgaps = sorted((b - a) * 1000.0 for s in sent for a, b in zip(s, s[1:]))
def rank(xs, q):  # nearest rank, as the histogram
    return xs[max(0, math.ceil(q * len(xs)) - 1)]
sp50, sp99 = rank(sgaps, .5), rank(sgaps, .99)
print("sent gaps p50 %.3f p99 %.3f" % (sp50, sp99))
assert sp99 > 4 * sp50, (sp50, sp99)         # the mock did stall
assert itl["count"] == len(sgaps) == 40 * 63, itl  # every gap, not a sample
assert abs(itl["p99"] - sp99) <= max(0.1 * sp99, 5.0), (itl, sp99)
assert abs(itl["p50"] - sp50) <= max(0.2 * sp50, 1.5), (itl, sp50)
assert itl["kind"] == "duration" and "per_s" not in itl, itl
# TPOT is per request: each request's mean gap as sent (the finish chunk
# follows the last token at once), so it stays near the mean, no stall
stpot = [(s[-1] - s[0]) * 1000.0 / 63 for s in sent]
assert tpot["count"] == 40, tpot
assert abs(tpot["mean"] - sum(stpot) / 40) < 1.0, (tpot, stpot)
assert tpot["p99"] < max(stpot) + 1.0, (tpot, max(stpot))
assert tpot["p99"] < itl["p99"] / 4, (tpot, itl)
# the per-request mean gap of the records is what the old ITL was
old = sorted(r["itl_ms"] for r in records)
print("records' mean gaps p99 %.3f (what ITL p99 used to be)" % old[-1])
for m in ("ttft_ms", "ttfb_ms", "e2e_ms"):
    assert f["metrics." + m]["count"] == 40, (m, f["metrics." + m])
# throughput: all output tokens / the job's measured window (measured_ms:
# the earliest measured start to the latest measured end of its tasks)
run_ms = agg["measured_ms"]
assert 0 < run_ms <= agg["run_ms"], (run_ms, agg["run_ms"])
out = f["metrics.output_tokens"]
assert out["sum"] == 40 * 64, out
want = 40 * 64 * 1000.0 / run_ms
assert abs(out["per_s"] - want) <= max(5e-4, 5e-6 * want), (out, run_ms)
assert abs(f["summary.output_tokens"]["per_s"] - want) <= max(5e-4, 5e-6 * want)
ok = f["summary.ok"]
assert abs(ok["per_s"] - 40 * 1000.0 / run_ms) < 0.01, ok
# goodput: exactly the requests within both thresholds
good = sum(1 for r in records if r["ttft_ms"] <= 32.5 and r["tpot_ms"] <= 9.5)
assert f["summary.good"]["sum"] == good, (f["summary.good"], good)
assert abs(f["summary.good"]["per_s"] - good * 1000.0 / run_ms) < 0.01
print("output tok/s %.1f, req/s %.2f, goodput %.2f req/s (%d of 40 good) over measured_ms %d"
      % (out["per_s"], ok["per_s"], f["summary.good"]["per_s"], good, run_ms))
PY
# record_itls: every gap of every request in the exports, the same gaps
# the histograms counted.
for f in jsonl csv vllm; do
    "$bin/tools/admin/llmb" "${common[@]}" export met --format $f \
        > "$tmp/met.$f" 2>>"$tmp/export.log" || fail "export --format $f"
done
python3 -S - "$tmp" <<'PY' || fail "exported gaps"
import csv, json, math, sys
tmp = sys.argv[1]
f = json.load(open(tmp + "/aggregate.json"))["fields"]
rows = [json.loads(l) for l in open(tmp + "/met.jsonl")]
assert len(rows) == 40, len(rows)
gaps = []
for r in rows:
    g = r["itls_ms"]
    assert len(g) == r["gaps"] == 63, (len(g), r["gaps"])
    assert abs(max(g) - r["gap_max_ms"]) < 0.002, (max(g), r["gap_max_ms"])
    assert abs(sum(g) / len(g) - r["itl_ms"]) < 0.002, r["itl_ms"]
    gaps += g
gaps.sort()
# the stalls are in the exports too (one request's stall can read short on
# a loaded machine, when the chunk before it came late: not every one)
assert sum(1 for x in gaps if x > 70) >= 3, gaps[-8:]
itl = f["metrics.itl_ms"]
assert len(gaps) == itl["count"], (len(gaps), itl["count"])
for name, q in (("p50", .5), ("p90", .9), ("p99", .99)):
    want = gaps[max(0, math.ceil(q * len(gaps)) - 1)]   # nearest rank
    assert abs(itl[name] - want) <= 0.004 * want + 0.002, (name, itl[name], want)
crows = list(csv.DictReader(open(tmp + "/met.csv", newline="")))
assert len(crows) == 40
assert [float(x) for x in crows[0]["itls_ms"].split(" ")] == \
    [x for x in next(r for r in rows if r["request_id"] == crows[0]["request_id"])["itls_ms"]]
v = json.load(open(tmp + "/met.vllm"))
assert len(v["itls"]) == 40 and all(len(x) == 63 for x in v["itls"]), v["itls"][:1]
assert abs(max(max(x) for x in v["itls"]) - gaps[-1] / 1000) < 2e-6
print("exported gaps: %d, p99 %.3f ms (the histogram's %.3f)" % (len(gaps),
      gaps[math.ceil(.99 * len(gaps)) - 1], itl["p99"]))
PY
# Throughput over the measured window: two tasks, each 10 warm-up
# requests before its 4 measured ones. per_s, the vLLM export's duration
# and throughputs are over measured_ms (the earliest measured start to the
# latest measured end of the tasks' windows), not run_ms, which holds the
# warm-up too.
payload='{"model":"m","messages":[{"role":"user","content":"go"}],
          "max_tokens":4,"requests":4,"concurrency":2,"warmup_requests":10}'
"$bin/tools/push/llmb-push" "${common[@]}" --wait --wait-timeout 60 \
    --tasks 2 --no-progress --id wu llm "$payload" > /dev/null 2>"$tmp/push-wu.log" ||
    fail "llmb-push --wait wu exited $?"
job_aggregate wu "$tmp/wu-agg.json"
for i in 0 1; do
    rcli FCALL_RO llmb_job 1 "$prefix:{default}" "wu" "$i:result" > "$tmp/wu$i.json"
done
"$bin/tools/admin/llmb" "${common[@]}" export wu --format vllm \
    > "$tmp/wu.vllm" 2>>"$tmp/export.log" || fail "export wu"
python3 -S - "$tmp" <<'PY' || fail "throughput over the measured window"
import json, sys
tmp = sys.argv[1]
agg = json.load(open(tmp + "/wu-agg.json"))
sums = [json.load(open("%s/wu%d.json" % (tmp, i)))["summary"] for i in (0, 1)]
window = (max(s["window_end_ms"] for s in sums) -
          min(s["window_start_ms"] for s in sums))
assert agg["measured_ms"] == window, (agg["measured_ms"], window)
# the warm-up (10 requests of at least 30 ms TTFT, two at a time) came
# before every window, inside run_ms
assert 0 < window < agg["run_ms"], (window, agg["run_ms"])
f = agg["fields"]
assert f["summary.ok"]["sum"] == 8, f["summary.ok"]
def near(a, b):   # the aggregate's rounding: 3 decimals or 6 significant digits
    return abs(a - b) <= max(5e-4, 5e-6 * abs(b))
assert near(f["summary.ok"]["per_s"], 8 * 1000.0 / window), f["summary.ok"]
out = f["summary.output_tokens"]
assert near(out["per_s"], out["sum"] * 1000.0 / window), out
v = json.load(open(tmp + "/wu.vllm"))
assert near(v["duration"], window / 1000.0), (v["duration"], window)
assert near(v["request_throughput"], 8 * 1000.0 / window), v["request_throughput"]
print("measured window %d ms of run_ms %d: %.1f requests/s" %
      (window, agg["run_ms"], f["summary.ok"]["per_s"]))
PY
# record_itls at its limit: a response of 4,002 tokens has 4,001 gaps,
# all in the histogram and counted in the record's "gaps", and the record
# keeps the first 4,000 (LLMB_LLM_ITLS_MAX, docs/llm.md "Records").
payload='{"model":"m","prompt":"x","max_tokens":4002,"requests":1,
          "record_itls":true,"extra_body":{"mock":{"itl_ms":0,"pause_every":0}}}'
"$bin/tools/push/llmb-push" "${common[@]}" --wait --wait-timeout 60 \
    --no-progress --id long llm "$payload" > /dev/null 2>"$tmp/push-long.log" ||
    fail "llmb-push --wait long exited $?"
job_aggregate long "$tmp/long-agg.json"
"$bin/tools/admin/llmb" "${common[@]}" export long --format jsonl \
    > "$tmp/long.jsonl" 2>>"$tmp/export.log" || fail "export long"
python3 -S - "$tmp" <<'PY' || fail "record_itls at its limit"
import json, sys
tmp = sys.argv[1]
rows = [json.loads(l) for l in open(tmp + "/long.jsonl")]
assert len(rows) == 1, len(rows)
r = rows[0]
assert r["output_tokens"] == 4002 and r["gaps"] == 4001, r["gaps"]
assert len(r["itls_ms"]) == 4000, len(r["itls_ms"])
itl = json.load(open(tmp + "/long-agg.json"))["fields"]["metrics.itl_ms"]
assert itl["count"] == 4001, itl
PY
echo "llm metrics: job ITL p99 is the stall, TPOT the mean, from merged histograms"
