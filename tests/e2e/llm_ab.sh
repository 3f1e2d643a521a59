#!/usr/bin/env bash
# A/B runs (docs/llm.md, "Several endpoints or models in one job"): two
# real mock servers, one fast (first token at 10 ms) and one slow (150
# ms), named a and b on two real llmb-worker processes, and a job of 8
# tasks over "endpoints": ["a","b"] x "models": ["m1","m2"]. Task i runs
# pair i mod 4, endpoint-major; each server gets exactly its pairs'
# requests; the aggregate's "by" section splits the metrics per pair
# (the slow endpoint's TTFT at or above its 150 ms, the fast one's
# below); llmb show, llmb compare (the job alone, and JOB@pair against
# JOB@pair) and llmb export JOB@pair show the pairs. Every pair is sent
# the same prompts (the servers' --log-requests files hold one multiset):
# synthetic prompts with warm-up, a dataset's parts, and a benchmark's
# iterations with a remainder. A name no worker has fails the job for
# good.
. "$(dirname "$0")/llm_lib.sh"

start_mock --ttft-ms 10 --itl-ms 1 --log-requests "$tmp/ra.jsonl"
pa=$port
start_mock --ttft-ms 150 --itl-ms 1 --log-requests "$tmp/rb.jsonl"
pb=$port

common=(--redis "$url" --prefix "$prefix")
B="$prefix:{default}"
for i in 1 2; do
    "$bin/worker/llmb-worker" "${common[@]}" --id "w$i" --capacity 4 \
        --heartbeat-ms 200 --llm-endpoint "a=http://127.0.0.1:$pa" \
        --llm-endpoint "b=http://127.0.0.1:$pb" 2>"$tmp/worker$i.log" &
    pids+=($!)
done
"$bin/coordinator/llmb-coordinator" "${common[@]}" --tick-ms 50 \
    2>"$tmp/coordinator.log" &
pids+=($!)
llmb=("$bin/tools/admin/llmb" "${common[@]}")

payload='{"endpoints":["a","b"],"models":["m1","m2"],"prompt":"x",
          "max_tokens":5,"requests":5,"concurrency":2}'
"$bin/tools/push/llmb-push" "${common[@]}" --wait --wait-timeout 60 \
    --tasks 8 --no-progress --id ab llm "$payload" > /dev/null \
    2>"$tmp/push.log" || fail "llmb-push --wait exited $?"
job_aggregate ab "$tmp/agg.json"
for i in 0 1 2 3 4 5 6 7; do rcli FCALL_RO llmb_job 1 "$B" "ab" "$i:result" > "$tmp/r$i.json"; done
curl -s "http://127.0.0.1:$pa/mock/stats" > "$tmp/sa.json"
curl -s "http://127.0.0.1:$pb/mock/stats" > "$tmp/sb.json"

python3 -S - "$tmp" <<'PY' || fail "the pairs"
import json, sys
tmp = sys.argv[1]
pairs = ["a/m1", "a/m2", "b/m1", "b/m2"]
for i in range(8):
    r = json.load(open("%s/r%d.json" % (tmp, i)))
    assert "%s/%s" % (r["endpoint"], r["model"]) == pairs[i % 4], (i, r["endpoint"], r["model"])
    assert r["_group"] == pairs[i % 4], r["_group"]
sa, sb = json.load(open(tmp + "/sa.json")), json.load(open(tmp + "/sb.json"))
assert sa["requests"] == 20 and sb["requests"] == 20, (sa["requests"], sb["requests"])
agg = json.load(open(tmp + "/agg.json"))
by = agg["by"]
assert sorted(by) == pairs, sorted(by)
assert not [k for k in agg["fields"] if k.startswith("_")], agg["fields"].keys()
for p in pairs:
    f = by[p]["fields"]
    assert by[p]["results"] == 2, (p, by[p]["results"])
    assert f["metrics.ttft_ms"]["count"] == 10, (p, f["metrics.ttft_ms"])
    assert f["summary.requests"]["sum"] == 10, p
    # per_s over the pair's own measured window
    assert 0 < by[p]["measured_ms"] <= agg["run_ms"], (p, by[p])
    assert abs(f["summary.ok"]["per_s"] - 10 * 1000.0 / by[p]["measured_ms"]) < 0.01
    ttft = f["metrics.ttft_ms"]
    if p.startswith("b/"):
        assert ttft["min"] >= 150, (p, ttft)    # the slow server's wait
    else:
        assert ttft["p50"] < 150, (p, ttft)
# the job's own figures cover every pair
assert agg["fields"]["metrics.ttft_ms"]["count"] == 40
print("pairs:", {p: by[p]["fields"]["metrics.ttft_ms"]["p50"] for p in pairs})
PY

# llmb-push --wait prints a row per pair
for p in a/m1 a/m2 b/m1 b/m2; do
    grep -Eq "^$p +10 +[0-9.]+ " "$tmp/push.log" || fail "push: no row $p: $(cat "$tmp/push.log")"
done

"${llmb[@]}" show ab > "$tmp/show.out" || fail "llmb show exited $?"
grep -q '^by endpoint/model' "$tmp/show.out" || fail "show: no pairs table"
for p in a/m1 a/m2 b/m1 b/m2; do
    grep -Eq "^$p +2 +10 +0 " "$tmp/show.out" || fail "show: no row $p: $(cat "$tmp/show.out")"
done

"${llmb[@]}" compare ab > "$tmp/cmp.out" || fail "compare of one A/B job exited $?"
head -n 1 "$tmp/cmp.out" | grep -q 'ab@a/m1 .*ab@a/m2 .*ab@b/m1 .*ab@b/m2' ||
    fail "compare's header: $(head -n 1 "$tmp/cmp.out")"
# the peaks of each pair's timeline, in one line; llmb show's line is
# the job's
"${llmb[@]}" show ab --json > "$tmp/show.json" || fail "show --json exited $?"
python3 -S - "$tmp/show.json" "$tmp/cmp.out" "$tmp/show.out" <<'PY' ||
import json, re, sys
agg = json.load(open(sys.argv[1]))["job"]["aggregate"]
def peaks(tl):
    return (max(tl["output_tokens"]) * 1000 / tl["width_ms"],
            max(tl["concurrency"]))
lines = [l for l in open(sys.argv[2]) if l.startswith("peak of a timeline")]
assert len(lines) == 1, lines
head = "peak of a timeline bucket (output tok/s, concurrency): "
assert lines[0].startswith(head), lines[0]
parts = lines[0][len(head):].rstrip("\n").split("; ")
assert len(parts) == 4, parts
for part in parts:
    m = re.fullmatch(r"ab@(\S+) ([0-9.]+), ([0-9.]+)", part)
    assert m, part
    tok, conc = peaks(agg["by"][m.group(1)]["timeline"])
    assert abs(float(m.group(2)) - tok) < 0.001, (part, tok)
    assert abs(float(m.group(3)) - conc) < 0.001, (part, conc)
tok, conc = peaks(agg["timeline"])
line = [l for l in open(sys.argv[3]) if l.startswith("timeline")]
m = re.fullmatch(r"timeline: (\d+) buckets of \S+, peak ([0-9.]+) output "
                 r"tok/s, peak concurrency ([0-9.]+) \(--json has the "
                 r"series\)\n", line[0])
assert m and int(m.group(1)) == len(agg["timeline"]["concurrency"]), line
assert abs(float(m.group(2)) - tok) < 0.001, (line, tok)
assert abs(float(m.group(3)) - conc) < 0.001, (line, conc)
PY
    fail "the timeline peaks: $(grep -h 'timeline' "$tmp/cmp.out" "$tmp/show.out")"
"${llmb[@]}" compare --json ab@a/m1 ab@b/m1 > "$tmp/cmp.json" ||
    fail "compare of two pairs exited $?"
python3 -S - "$tmp/cmp.json" <<'PY' || fail "compare --json of two pairs"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["baseline"] == "ab@a/m1", d["baseline"]
a, b = d["jobs"]
assert a["pair"] == "a/m1" and b["pair"] == "b/m1", (a, b)
assert b["metrics"]["requests"] == 10 and b["delta"]["ttft_p50_ms"] > 0, b
PY
"${llmb[@]}" compare ab@a/zz ab > "$tmp/cmp.err" 2>&1 && fail "an unknown pair was compared"
grep -q 'job "ab" has no pair "a/zz" (its pairs: a/m1, a/m2, b/m1, b/m2)' "$tmp/cmp.err" ||
    fail "unknown pair: $(cat "$tmp/cmp.err")"

"${llmb[@]}" export ab@b/m2 > "$tmp/b.jsonl" || fail "export of a pair exited $?"
"${llmb[@]}" export ab@b/m2 --format vllm > "$tmp/b.vllm" || fail "export vllm of a pair"
python3 -S - "$tmp" <<'PY' || fail "export of a pair"
import json, sys
tmp = sys.argv[1]
rows = [json.loads(l) for l in open(tmp + "/b.jsonl")]
assert len(rows) == 10 and all(r["endpoint"] == "b" and r["model"] == "m2" for r in rows), rows
v = json.load(open(tmp + "/b.vllm"))
assert v["model_id"] == "m2" and v["num_prompts"] == 10 and len(v["ttfts"]) == 10, v
assert v["median_ttft_ms"] >= 150, v["median_ttft_ms"]
PY

# Identical prompts for every pair: tasks 2r and 2r + 1 (pairs a and b)
# are replica r and send the same requests. Each job is checked on what
# the two servers logged while it ran.
same_prompts() { # JOB N ARGS...: llmb-push --wait ARGS; each server got N
    local job=$1 want=$2
    shift 2
    : > "$tmp/ra.jsonl"
    : > "$tmp/rb.jsonl"
    "$bin/tools/push/llmb-push" "${common[@]}" --wait --wait-timeout 60 \
        --no-progress --no-journal --id "$job" "$@" > /dev/null \
        2>"$tmp/push3.log" || fail "$job: llmb-push --wait exited $?"
    python3 -S - "$tmp" "$want" <<'PY' || fail "$job: the pairs' prompts differ"
import collections, json, sys
tmp, want = sys.argv[1], int(sys.argv[2])
def seen(name):
    return collections.Counter(
        json.dumps([r["prompt"], r["max_tokens"]])
        for r in map(json.loads, open("%s/%s" % (tmp, name))))
a, b = seen("ra.jsonl"), seen("rb.jsonl")
assert sum(a.values()) == want, (sum(a.values()), want)
assert a == b, (a - b, b - a)
assert len(a) > 1, a  # prompts that differ: the check can fail
PY
}
syn='{"endpoints":["a","b"],"model":"m","requests":5,"concurrency":2,
      "warmup_requests":1,"synthetic":{"input_tokens":{"dist":"uniform",
      "min":2,"max":60},"output_tokens":{"dist":"uniform","min":1,"max":4},
      "seed":9}}'
# 3 replicas of 5 measured requests and 1 warm-up each
same_prompts syn 18 --tasks 6 llm "$syn"
python3 -S - "$tmp/ds.jsonl" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(9):
        f.write('{"prompt": "entry %d %s"}\n' % (i, "w " * i))
PY
# 9 entries over 2 replicas (4 tasks): parts 0-3 and 4-8, each entry once
same_prompts ds 9 --tasks 4 --dataset "$tmp/ds.jsonl" llm \
    '{"endpoints":["a","b"],"model":"m","max_tokens":2,"dataset":{}}'
# iterations 11 over 4 tasks of 2 pairs: the remainder 3 by replica (one
# more for replica 0's two tasks, the last one unsent): 5 to each server
same_prompts bench 5 --tasks 4 benchmark \
    '{"endpoints":["a","b"],"model":"m","iterations":11,"max_tokens":2,
      "synthetic":{"input_tokens":{"dist":"uniform","min":2,"max":60}}}'
echo "llm A/B: every pair sent the same prompts"

# A name no worker has: the task fails for good, naming it.
"$bin/tools/push/llmb-push" "${common[@]}" --wait --wait-timeout 30 \
    --no-progress --id bad llm '{"endpoints":["a","zz"],"model":"m","prompt":"x"}' \
    > /dev/null 2>"$tmp/push2.log" && fail "a job with an unknown endpoint completed"
rcli FCALL_RO llmb_job 1 "$B" "bad" "0:error" | grep -q 'llm payload field "endpoints": no endpoint named "zz" on this worker' ||
    fail "bad endpoint: $(rcli FCALL_RO llmb_job 1 "$B" "bad" "0:error")"
echo "llm A/B: tasks over endpoints x models, the aggregate split by pair"
