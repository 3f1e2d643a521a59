#!/usr/bin/env bash
# `llmb sweep` (docs/cli.md): a real llmb-worker and llmb-coordinator
# against the mock, which answers 429 while 4 requests run. A sweep over
# concurrency 1,2,3 stays within the slo and gives one row per level, in
# the table and in --json, each job named <sweep>-concurrency-<level>;
# with --stop-on-slo, levels 1,16,2 stop at 16, where most requests fail
# (retries 0), so goodput falls far below the request throughput. A
# level is followed on the queue's events: Ctrl-C cancels it; a deleted
# job ends the sweep.
. "$(dirname "$0")/llm_lib.sh"

start_mock --ttft-ms 20 --itl-ms 2 --max-inflight 4

common=(--redis "$url" --prefix "$prefix")
"$bin/worker/llmb-worker" "${common[@]}" --id w1 --capacity 1 --queues sq \
    --heartbeat-ms 200 --llm-endpoint "mock=http://127.0.0.1:$port" \
    2>"$tmp/worker.log" &
pids+=($!)
"$bin/coordinator/llmb-coordinator" "${common[@]}" --tick-ms 50 \
    2>"$tmp/coordinator.log" &
pids+=($!)
llmb() { "$bin/tools/admin/llmb" "${common[@]}" "$@"; }

job='{"type":"llm","payload":{"model":"m","prompt":"go","max_tokens":8,
      "requests":24,"retries":0,"slo":{"ttft_ms":2000}}}'

# usage errors: exit 64 before Redis is reached
set +e
llmb sweep --queue sq --over tokens --levels 1 --job "$job" 2>"$tmp/usage.err"
rc=$?
set -e
[ "$rc" = 64 ] || fail "bad --over exited $rc"
grep -q -- '--over must be concurrency or rate' "$tmp/usage.err" || fail "usage message"

llmb sweep --queue sq --over concurrency --levels 1,2,3 --id s1 --job "$job" \
    > "$tmp/table.out" 2>"$tmp/sweep1.log" || fail "sweep exited $?"
cat "$tmp/table.out"
head -n 2 "$tmp/table.out" | tail -n 1 | grep -Eq '^CONCURRENCY +STATE +REQUESTS +REQ/S +OUT TOK/S +GOODPUT +TTFT P50 +TTFT P99 +ITL P50 +ITL P99 +TPOT P50 +TPOT P99 +ERRORS +SLO$' ||
    fail "table header"
for l in 1 2 3; do
    grep -Eq "^ *$l  completed +24 " "$tmp/table.out" || fail "row of level $l"
    [ "$(rcli FCALL_RO llmb_job 1 "$prefix:{sq}" "s1-concurrency-$l" state)" = completed ] ||
        fail "job s1-concurrency-$l"
    [ "$(rcli FCALL_RO llmb_job 1 "$prefix:{sq}" "s1-concurrency-$l" payload |
         python3 -c 'import json,sys; print(json.load(sys.stdin)["concurrency"])')" = "$l" ] ||
        fail "level $l's payload"
done
[ "$(grep -c ' ok$' "$tmp/table.out")" = 3 ] || fail "three levels within the slo"

llmb sweep --queue sq --over concurrency --levels 1,16,2 --id s2 --json \
    --stop-on-slo --job "$job" > "$tmp/stop.json" 2>"$tmp/sweep2.log" ||
    fail "stop-on-slo sweep exited $?"
python3 -S - "$tmp/stop.json" <<'PY' || fail "stop-on-slo JSON"
import json, sys
d = json.load(open(sys.argv[1]))
lv = d["levels"]
print("stopped at", d["stopped_at"], [(l["level"], l["requests"], l["goodput"],
      l["request_throughput"], l["errors"], l["slo_broken"]) for l in lv])
assert d["sweep"] == "s2" and d["over"] == "concurrency", d
assert d["stopped_at"] == "16" and d["complete"] is False, d
assert [l["level"] for l in lv] == [1, 16], lv
assert [l["job"] for l in lv] == ["s2-concurrency-1", "s2-concurrency-16"]
a, b = lv
assert a["slo_broken"] is False and a["errors"] == 0 and a["requests"] == 24
assert b["slo_broken"] is True and b["errors"] > 0, b
for l in lv:
    assert l["state"] == "completed"
    assert l["request_throughput"] > 0 and l["output_throughput"] > 0
    for m in ("ttft_ms", "itl_ms", "tpot_ms"):
        assert l[m]["p50"] is not None and l[m]["p99"] >= l[m]["p50"], (m, l)
    assert l["ttft_ms"]["p50"] >= 19, l
assert abs(a["goodput"] - a["request_throughput"]) < 1e-6 * a["goodput"] + 1e-9
PY
[ -z "$(rcli FCALL_RO llmb_job 1 "$prefix:{sq}" s2-concurrency-2)" ] ||
    fail "level 2 ran after the stop"
grep -q 'breaks the slo; stopping' "$tmp/sweep2.log" || fail "stop message"
# A level whose push is refused (a key of queue bad has the wrong type)
# ends the sweep with exit 1, naming the level and the job.
redis-cli -u "$url" SET "$prefix:{bad}:pz" x > /dev/null
rc=0
llmb sweep --queue bad --over concurrency --levels 1 --id s3 --job "$job" \
    > /dev/null 2>"$tmp/refused.err" || rc=$?
[ "$rc" = 1 ] || fail "sweep into a broken queue exited $rc"
grep -q '^llmb: level 1: job s3-concurrency-1: key .*:pz" is a string' "$tmp/refused.err" ||
    fail "refused push message: $(cat "$tmp/refused.err")"
# A level nobody serves (queue idle) waits on the queue's events: Ctrl-C
# cancels its job and ends the sweep with exit 1; a level's job deleted
# while the sweep waits ends it with exit 1, saying so.
"$bin/tools/admin/llmb" "${common[@]}" sweep --queue idle --over concurrency \
    --levels 1 --id s4 --job "$job" >/dev/null 2>"$tmp/int.err" &
spid=$!
for _ in $(seq 200); do grep -q 'pushed to queue idle' "$tmp/int.err" && break; sleep 0.05; done
grep -q 'pushed to queue idle' "$tmp/int.err" || fail "sweep s4 did not push: $(cat "$tmp/int.err")"
kill -INT "$spid"
rc=0
wait "$spid" || rc=$?
[ "$rc" = 1 ] || fail "interrupted sweep exited $rc: $(cat "$tmp/int.err")"
grep -q '^llmb: interrupted at level 1' "$tmp/int.err" || fail "interrupt message: $(cat "$tmp/int.err")"
[ "$(rcli FCALL_RO llmb_job 1 "$prefix:{idle}" s4-concurrency-1 state)" = cancelled ] ||
    fail "the interrupted level's job was not cancelled"
"$bin/tools/admin/llmb" "${common[@]}" sweep --queue idle --over concurrency \
    --levels 1 --id s5 --job "$job" >/dev/null 2>"$tmp/del.err" &
spid=$!
for _ in $(seq 200); do grep -q 'pushed to queue idle' "$tmp/del.err" && break; sleep 0.05; done
# (a job of one task: its record is the job)
rcli HDEL "$prefix:{idle}:jd" s5-concurrency-1 | grep -qx 1 || fail "no record of s5-concurrency-1"
rc=0
wait "$spid" || rc=$?
[ "$rc" = 1 ] || fail "sweep of a deleted job exited $rc: $(cat "$tmp/del.err")"
grep -q 'level 1: job s5-concurrency-1 was deleted while the sweep waited' "$tmp/del.err" ||
    fail "deleted job message: $(cat "$tmp/del.err")"
echo "sweep: rows per level, JSON, and --stop-on-slo stopping at the level that breaks it"
