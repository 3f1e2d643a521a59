#!/usr/bin/env bash
# Every request record of an llm job is kept in B:rec:<id> (llmb_records,
# docs/llm.md "Records"), sent by real llmb-worker processes against the
# mock LLM server: each request of a fan-out job appears once, and the
# records of an attempt that failed and was retried are not counted with
# those of the attempt that completed (the last claim of each task, as
# B:rs:<id> names it, is what export keeps).
. "$(dirname "$0")/llm_lib.sh"

# The first 3 requests fail with 500: the first attempt of the retry job
# fails whole and is retried.
start_mock --ttft-ms 5 --itl-ms 2 --seed 3 --fail-times 3 --fail-status 500

common=(--redis "$url" --prefix "$prefix" --log-level debug)
for i in 1 2; do
    "$bin/worker/llmb-worker" "${common[@]}" --id "w$i" --capacity 2 \
        --heartbeat-ms 200 --llm-endpoint "mock=http://127.0.0.1:$port" \
        2>"$tmp/worker$i.log" &
    pids+=($!)
done
"$bin/coordinator/llmb-coordinator" "${common[@]}" --tick-ms 50 \
    2>"$tmp/coordinator.log" &
pids+=($!)

"$bin/tools/push/llmb-push" "${common[@]}" --wait --wait-timeout 45 \
    --no-progress --id retry --retries 2 --backoff-ms 10 llm \
    '{"model":"m","prompt":"x","max_tokens":4,"requests":3,"concurrency":1,"retries":0}' \
    > /dev/null 2>"$tmp/push1.log" || fail "retry job exited $?"
"$bin/tools/push/llmb-push" "${common[@]}" --wait --wait-timeout 45 \
    --tasks 4 --no-progress --id fan llm \
    '{"model":"m","prompt":"x","max_tokens":4,"requests":25,"concurrency":3}' \
    > /dev/null 2>"$tmp/push2.log" || fail "fan-out job exited $?"

# The records as export reads them: per task, the chunks of its last claim.
check() { # job, tasks, requests per task, chunks of other claims wanted
    local b="$prefix:{default}"
    rcli --raw LRANGE "$b:rec:$1" 0 -1 > "$tmp/rec.$1"
    rcli --raw HGETALL "$b:rs:$1" > "$tmp/rs.$1"
    python3 -S - "$tmp/rec.$1" "$tmp/rs.$1" "$2" "$3" "$4" <<'PY'
import sys
rec, rs, tasks, per, other = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
kv = open(rs).read().split("\n")
st = dict(zip(kv[0::2], kv[1::2]))
data = open(rec).read()
seen, skipped = {}, 0
# elements start with "<idx>\t<claim>\t<worker>\t<attempt>\t<seq>\t"
lines = data.split("\n")
cur = None
for ln in lines:
    f = ln.split("\t")
    if len(f) == 8 and f[0] in st and f[3].isdigit():  # a chunk header
        idx, claim = f[0], f[1]
        cur = idx if st[idx].split(":")[0] == claim else None
        if cur is None:
            skipped += 1
        continue
    if cur is None or ln == "":
        continue
    assert len(f) == 14, (len(f), ln)
    seen.setdefault(cur, []).append(int(f[0]))
assert len(seen) == tasks, seen.keys()
for idx, ns in seen.items():
    assert sorted(ns) == list(range(per)), (idx, ns)
assert skipped == other, skipped
print("records ok:", tasks, "tasks of", per, "requests;", skipped, "chunks of other claims")
PY
}
check retry 1 3 1 || fail "records of the retried job"
check fan 4 25 0 || fail "records of the fan-out job"

# llmb export reads them by the same rule: every request once, in JSON
# lines and in CSV, also for the retried job.
llmb=("$bin/tools/admin/llmb" --redis "$url" --prefix "$prefix")
exports() { # job, tasks, requests per task
    "${llmb[@]}" export "$1" > "$tmp/$1.jsonl" 2>"$tmp/export.log" ||
        fail "export $1 exited $?"
    "${llmb[@]}" export "$1" --format csv -o "$tmp/$1.csv" \
        2>>"$tmp/export.log" || fail "export --format csv $1 exited $?"
    python3 -S - "$tmp/$1.jsonl" "$tmp/$1.csv" "$@" <<'PY'
import csv, json, sys
jl, cf, job, tasks, per = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:])
want = sorted(f"{job}:{t}:{n}" for t in range(tasks) for n in range(per))
rows = [json.loads(l) for l in open(jl)]
assert sorted(r["request_id"] for r in rows) == want, [r["request_id"] for r in rows]
for r in rows:
    assert r["job"] == job and r["model"] == "m" and r["endpoint"] == "mock", r
    assert r["class"] == "ok" and r["status"] == 200 and r["ttft_ms"] > 0, r
    assert r["output_tokens"] == 4 and r["error"] is None, r
    assert type(r["input_tokens"]) is int and type(r["gaps"]) is int, r
with open(cf, newline="") as f:
    crows = list(csv.DictReader(f))
assert sorted(r["request_id"] for r in crows) == want
assert list(crows[0])[:3] == ["request_id", "job", "task"], list(crows[0])
print("export ok:", job, len(rows), "requests in jsonl and csv")
PY
}
exports retry 1 3 || fail "export of the retried job"
exports fan 4 25 || fail "export of the fan-out job"

# The vLLM document and compare need the aggregate: wait for it.
for _ in $(seq 200); do
    "${llmb[@]}" compare retry fan --json > "$tmp/compare.json" 2>/dev/null && break
    sleep 0.05
done
"${llmb[@]}" export fan --format vllm > "$tmp/fan.vllm.json" \
    2>"$tmp/export.log" || fail "export --format vllm exited $?"
python3 -S - "$tmp/fan.vllm.json" <<'PY' || fail "the vllm document"
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("date", "backend", "model_id", "num_prompts", "completed",
          "request_throughput", "output_throughput", "total_input_tokens",
          "total_output_tokens", "mean_ttft_ms", "median_ttft_ms",
          "p99_ttft_ms", "mean_tpot_ms", "p99_itl_ms", "median_e2el_ms",
          "input_lens", "output_lens", "ttfts", "itls", "errors"):
    assert k in d, k
assert d["backend"] == "openai-chat" and d["model_id"] == "m", d
assert d["num_prompts"] == 100 and d["completed"] == 100, d
assert d["total_output_tokens"] == 400, d
for k in ("input_lens", "output_lens", "ttfts", "itls", "errors"):
    assert len(d[k]) == 100, (k, len(d[k]))
assert all(0 < t < 10 for t in d["ttfts"]) and set(d["output_lens"]) == {4}
assert d["errors"] == [""] * 100 and d["itls"] == [[]] * 100
print("vllm ok")
PY
"${llmb[@]}" compare retry fan --json > "$tmp/compare.json" ||
    fail "compare --json exited $?"
python3 -S - "$tmp/compare.json" <<'PY' || fail "compare --json"
import json, sys
d = json.load(open(sys.argv[1]))
a, b = d["jobs"]
assert d["baseline"] == "retry" and a["job"] == "retry" and b["job"] == "fan"
assert a["metrics"]["requests"] == 3 and b["metrics"]["requests"] == 100, d
assert b["delta"]["requests"] == 97, b["delta"]
assert abs(b["delta_pct"]["requests"] - 9700 * 1 / 3) < 0.01, b["delta_pct"]
assert a["metrics"]["ttft_p50_ms"] > 0 and b["metrics"]["e2e_p99_ms"] > 0
print("compare --json ok")
PY
"${llmb[@]}" compare retry fan > "$tmp/compare.txt" || fail "compare exited $?"
grep -q '^METRIC .*retry .*fan .*DELTA 2 ' "$tmp/compare.txt" ||
    fail "compare's header: $(head -n 1 "$tmp/compare.txt")"
grep -q '^requests .* 3 .* 100 .* +97 .* +3233.3%' "$tmp/compare.txt" ||
    fail "compare's requests row: $(cat "$tmp/compare.txt")"
st=0
"${llmb[@]}" compare retry nosuchjob 2>"$tmp/compare.err" || st=$?
[ "$st" -eq 1 ] || fail "compare of a missing job exited $st, not 1"
grep -qx 'llmb: job "nosuchjob" not found' "$tmp/compare.err" ||
    fail "compare of a missing job said: $(cat "$tmp/compare.err")"
# A job the coordinator has not aggregated yet is refused, naming its state.
# (pushed to a queue no worker serves and claimed by hand: it runs)
"$bin/tools/push/llmb-push" "${common[@]}" --queue side --id noagg llm \
    '{"model":"m","prompt":"x","max_tokens":4,"requests":1}' \
    > /dev/null 2>"$tmp/push3.log" || fail "push of noagg exited $?"
[ "$(rcli FCALL llmb_claim 1 "$prefix:{side}" w9 1 600000 | sed -n 5p)" = noagg ] ||
    fail "noagg was not claimed"
st=0
"${llmb[@]}" compare retry noagg 2>"$tmp/compare.err" || st=$?
[ "$st" -eq 1 ] || fail "compare of a job without aggregate exited $st, not 1"
grep -qx 'llmb: job "noagg" has no aggregate yet (state running)' \
    "$tmp/compare.err" ||
    fail "compare of a job without aggregate said: $(cat "$tmp/compare.err")"

# A newer claim of task 0 replaces the older one in the export; its error
# text is quoted as RFC 4180 says; dropped chunks are warned about.
b="$prefix:{default}"
chunk=$(printf '0\t99\tw9\t3\t0\tmock\tm\t1\n0\t1\t2\t\t\t\t0\t\t\t\t500\thttp_5xx\t1\tsaid "no", twice\n')
rcli RPUSH "$b:rec:retry" "$chunk" > /dev/null
rcli HSET "$b:rs:retry" 0 99:1 > /dev/null
rcli HINCRBY "$b:rs:retry" dropped 2 > /dev/null
"${llmb[@]}" export retry --format csv > "$tmp/retry2.csv" 2>"$tmp/export.log" ||
    fail "export of the new claim exited $?"
grep -q 'dropped' "$tmp/export.log" || fail "no warning of dropped chunks"
python3 -S - "$tmp/retry2.csv" <<'PY' || fail "the csv of the new claim"
import csv, sys
raw = open(sys.argv[1], newline="").read()
assert '"said ""no"", twice",\r\n' in raw, raw  # then itls_ms, empty
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
assert len(rows) == 1, rows
r = rows[0]
assert r["request_id"] == "retry:0:0" and r["worker"] == "w9", r
assert r["class"] == "http_5xx" and r["error"] == 'said "no", twice', r
assert r["ttft_ms"] == "" and r["status"] == "500", r
print("csv quoting ok")
PY
echo "every request recorded once, exported once, and compared"
