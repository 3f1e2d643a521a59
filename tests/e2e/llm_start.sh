#!/usr/bin/env bash
# The synchronized start of an llm job ("start": "together", docs/llm.md
# "Run control") over two real llmb-worker processes against the mock:
#
# 1. Four tasks, two workers of capacity 2, the second worker started a
#    second after the first one's two tasks have registered in the job's
#    rendezvous (B:rv:<id>). The first two wait for the other two: every
#    task's first request goes out at or after the common start Redis
#    set once the fourth arrived, none before, and every result names
#    that start with nothing missing. The waiting tasks back off: each
#    made a handful of calls, not one every 20 ms (the FCALLs a second
#    while two waited, from INFO commandstats, are printed).
# 2. Five tasks on the same four slots with start_timeout_s 1: the four
#    claimed tasks start when the timeout runs out, each saying one task
#    was missing; the fifth, claimed after them, starts at once and says
#    it came late.
#    A benchmark whose tasks outnumber its iterations: the tasks with no
#    share register too, and the start does not wait for the timeout.
# 2c. A warm-up with "start": "together" on queue warm: two more workers,
#    one whose endpoint answers at once and one whose endpoint takes 400
#    ms a token: the fast tasks' warm-up ends long before the slow ones',
#    yet every task sends its first measured request at the common
#    measured start, set once the last warm-up ended (none measures while
#    another still warms up).
# 3. A stale lease token registers nothing; retention deletes the
#    rendezvous with its job.
. "$(dirname "$0")/llm_lib.sh"

start_mock --ttft-ms 5 --itl-ms 2
fast=$port
start_mock --ttft-ms 400 --itl-ms 2
slow=$port
port=$fast

common=(--redis "$url" --prefix "$prefix")
B="$prefix:{default}"
worker() { # N [PORT QUEUE]: worker wN of capacity 2
    "$bin/worker/llmb-worker" "${common[@]}" --id "w$1" --capacity 2 \
        --heartbeat-ms 200 --queues "${3:-default}" \
        --llm-endpoint "mock=http://127.0.0.1:${2:-$port}" \
        2>"$tmp/worker$1.log" &
    pids+=($!)
}
fcalls() { # FCALLs the server has run so far
    rcli INFO commandstats | sed -n 's/^cmdstat_fcall:calls=\([0-9]*\),.*/\1/p'
}
wait_for() { # seconds, then a command that must come true
    local n=$(( $1 * 20 )); shift
    for _ in $(seq "$n"); do "$@" && return 0; sleep 0.05; done
    return 1
}
arrived() { [ "$(rcli HGET "$B:rv:$1" n)" = "$2" ]; }
ended() { [ "$(rcli FCALL_RO llmb_job 1 "$B" "$1" state)" = completed ] &&
          [ -n "$(rcli FCALL_RO llmb_job 1 "$B" "$1" aggregate)" ]; }

worker 1

payload='{"model":"m","prompt":"x","max_tokens":4,"requests":3,
          "concurrency":1,"start":"together","start_timeout_s":60}'
"$bin/tools/push/llmb-push" "${common[@]}" --tasks 4 --id sync llm \
    "$payload" > /dev/null || fail "push sync"
wait_for 20 arrived sync 2 || fail "worker 1's tasks did not register"
sleep 1
c0=$(fcalls)
sleep 2
c1=$(fcalls)
arrived sync 2 || fail "more than two tasks arrived with one worker"
[ -z "$(rcli HGET "$B:rv:sync" start)" ] || fail "a start was set early"
echo "while two tasks waited: $(( (c1 - c0) / 2 )) FCALLs a second" \
     "(their polls, worker 1's heartbeats, any other test's calls)"
worker 2
# (the coordinator only now: its calls stay out of the count above)
"$bin/coordinator/llmb-coordinator" "${common[@]}" --tick-ms 50 \
    2>"$tmp/coordinator.log" &
pids+=($!)
wait_for 60 ended sync || fail "job sync did not complete"

rcli HGETALL "$B:rv:sync" > "$tmp/rv"
for i in 0 1 2 3; do rcli FCALL_RO llmb_job 1 "$B" "sync" "$i:result" > "$tmp/r$i.json"; done
rcli FCALL_RO llmb_job 1 "$B" "sync" aggregate > "$tmp/agg.json"
"$bin/tools/admin/llmb" "${common[@]}" export sync > "$tmp/sync.jsonl" ||
    fail "export sync"

python3 -S - "$tmp" <<'PY' || fail "job sync"
import json, sys
tmp = sys.argv[1]
kv = open(tmp + "/rv").read().split("\n")
rv = dict(zip(kv[0::2], kv[1::2]))
arr = [int(rv[str(i)]) for i in range(4)]
start = int(rv["start"])
assert rv["n"] == "4" and rv["missing"] == "0", rv
# worker 2's tasks came a second after worker 1's (the test waited)
assert max(arr) - min(arr) >= 1000, arr
assert start >= max(arr), (start, arr)  # set once the last one came
first = {}
for line in open(tmp + "/sync.jsonl"):
    r = json.loads(line)
    t = r["task_start_ms"] + r["start_ms"]  # when it went out, unix ms
    first[r["task"]] = min(first.get(r["task"], t), t)
assert sorted(first) == [0, 1, 2, 3], first
for i in range(4):
    res = json.load(open("%s/r%d.json" % (tmp, i)))
    st = res["_start"]
    assert st["start_ms"] == start and st["missing"] == 0, st
    assert st["arrived"] == 4 and st["tasks"] == 4, st
    assert res["summary"]["start_missing"] == 0, res["summary"]
    assert "warnings" not in res or not any(
        w.startswith("start:") for w in res["warnings"]), res["warnings"]
    # no task went out before the common start (the same host's clock;
    # ms rounding), and none waited for another second
    assert first[i] >= start - 2, (i, first[i], start)
    assert first[i] < start + 900, (i, first[i], start)
    # backing off from 20 ms to 500 ms: about 5 calls in the first 0.6 s,
    # then 2 a second (polling every 20 ms would make 50 a second)
    wait_s = res["summary"]["start_wait_ms"] / 1000.0
    assert 1 <= st["calls"] <= 8 + 2 * wait_s, (i, st["calls"], wait_s)
spread = max(first.values()) - min(first.values())
print("arrivals spread %d ms, first requests spread %.1f ms after the start"
      % (max(arr) - min(arr), spread))
agg = json.load(open(tmp + "/agg.json"))
f = agg["fields"]
assert f["summary.start_missing"]["max"] == 0, f["summary.start_missing"]
assert f["summary.start_wait_ms"]["max"] >= 900, f["summary.start_wait_ms"]
assert not [k for k in f if k.startswith("_")], sorted(f)
PY

# 2. Five tasks, four slots: one cannot arrive before start_timeout_s.
payload='{"model":"m","prompt":"x","max_tokens":4,"requests":2,
          "concurrency":1,"start":"together","start_timeout_s":1}'
"$bin/tools/push/llmb-push" "${common[@]}" --tasks 5 --id part llm \
    "$payload" > /dev/null || fail "push part"
wait_for 60 ended part || fail "job part did not complete"
rcli HGETALL "$B:rv:part" > "$tmp/rv"
for i in 0 1 2 3 4; do rcli FCALL_RO llmb_job 1 "$B" "part" "$i:result" > "$tmp/r$i.json"; done
python3 -S - "$tmp" <<'PY' || fail "job part"
import json, sys
tmp = sys.argv[1]
kv = open(tmp + "/rv").read().split("\n")
rv = dict(zip(kv[0::2], kv[1::2]))
assert rv["n"] == "5" and rv["missing"] == "1", rv
assert int(rv["start"]) >= int(rv["deadline"]), rv
late = 0
for i in range(5):
    res = json.load(open("%s/r%d.json" % (tmp, i)))
    st, warn = res["_start"], res.get("warnings", [])
    assert st["missing"] == 1 and st["tasks"] == 5, st
    assert ("start: 1 of the job's 5 tasks had not arrived when "
            "start_timeout_s ran out; the others started without them") in warn, warn
    if st["late_ms"] > 0:
        late += 1
        assert any("after the common start" in w for w in warn), warn
assert late == 1, late
PY

# 2b. A benchmark of 2 iterations over 4 tasks: tasks 2 and 3 have no
#    share, yet register, so the start is set once all four arrived, not
#    when start_timeout_s (600) runs out.
payload='{"provider":"mock","model":"m","prompt":"x","max_tokens":4,
          "iterations":2,"concurrency":1,"start":"together",
          "start_timeout_s":600}'
"$bin/tools/push/llmb-push" "${common[@]}" --tasks 4 --id zero benchmark \
    "$payload" > /dev/null || fail "push zero"
wait_for 60 ended zero || fail "job zero did not complete"
rcli HGETALL "$B:rv:zero" > "$tmp/rv"
for i in 0 1; do rcli FCALL_RO llmb_job 1 "$B" "zero" "$i:result" > "$tmp/r$i.json"; done
python3 -S - "$tmp" <<'PY' || fail "job zero"
import json, sys
tmp = sys.argv[1]
kv = open(tmp + "/rv").read().split("\n")
rv = dict(zip(kv[0::2], kv[1::2]))
assert rv["n"] == "4" and rv["missing"] == "0", rv
assert int(rv["start"]) < int(rv["deadline"]), rv
for i in range(2):
    st = json.load(open("%s/r%d.json" % (tmp, i)))["_start"]
    assert st["missing"] == 0 and st["arrived"] == 4, st
PY

# 2c. Warm-ups of different lengths, one measured start.
W="$prefix:{warm}"
worker 3 "$fast" warm
worker 4 "$slow" warm
payload='{"model":"m","prompt":"x","max_tokens":2,"requests":2,
          "concurrency":1,"warmup_requests":2,"start":"together",
          "start_timeout_s":60}'
"$bin/tools/push/llmb-push" "${common[@]}" --queue warm --tasks 4 --id warm \
    llm "$payload" > /dev/null || fail "push warm"
warm_ended() { [ "$(rcli FCALL_RO llmb_job 1 "$W" warm state)" = completed ]; }
wait_for 60 warm_ended || fail "job warm did not complete"
rcli HGETALL "$W:rv:warm" > "$tmp/rv"
for i in 0 1 2 3; do rcli FCALL_RO llmb_job 1 "$W" warm "$i:result" > "$tmp/r$i.json"; done
"$bin/tools/admin/llmb" "${common[@]}" --queue warm export warm \
    > "$tmp/warm.jsonl" || fail "export warm"
python3 -S - "$tmp" <<'PY' || fail "job warm"
import json, sys
tmp = sys.argv[1]
kv = open(tmp + "/rv").read().split("\n")
rv = dict(zip(kv[0::2], kv[1::2]))
assert rv["m:n"] == "4" and rv["m:missing"] == "0", rv
start, measure = int(rv["start"]), int(rv["m:start"])
ends = [int(rv["m:%d" % i]) for i in range(4)]  # each warm-up's end
# the slow endpoint's warm-ups (2 requests of 400 ms) ended well after
# the fast one's: without a second meeting the fast tasks would measure
# while the slow ones warm up
assert max(ends) - min(ends) >= 500, ends
assert measure >= max(ends) > min(ends) >= start, (start, ends, measure)
first = {}
for line in open(tmp + "/warm.jsonl"):
    r = json.loads(line)
    t = r["task_start_ms"] + r["start_ms"]
    first[r["task"]] = min(first.get(r["task"], t), t)
assert sorted(first) == [0, 1, 2, 3], first
for i in range(4):
    res = json.load(open("%s/r%d.json" % (tmp, i)))
    st = res["_start"]
    assert st["start_ms"] == start and st["measure_ms"] == measure, st
    assert st["measure_missing"] == 0 and st["measure_late_ms"] == 0, st
    assert not [w for w in res.get("warnings", [])
                if w.startswith(("start:", "measure:"))], res["warnings"]
    assert res["summary"]["requests"] == 2, res["summary"]
    # no measured request before the measured start (the same host's
    # clock; ms rounding), none a second after it
    assert measure - 2 <= first[i] < measure + 900, (i, first[i], measure)
print("warm-ups ended %d ms apart; first measured requests within %.1f ms"
      " of the measured start" % (max(ends) - min(ends),
                                  max(first.values()) - measure))
PY

# llmb-push --wait on the ended jobs: the start line.
for j in sync part; do
    "$bin/tools/push/llmb-push" "${common[@]}" --wait --wait-timeout 10 \
        --no-progress --id $j llm '{"model":"m","prompt":"x"}' > /dev/null \
        2>"$tmp/push-$j.log" || fail "llmb-push --wait $j exited $?"
done
grep -q '^start  *together, all 4 tasks$' "$tmp/push-sync.log" ||
    fail "sync's start line: $(cat "$tmp/push-sync.log")"
grep -q '^start  *together, 4 of 5 tasks: 1 had not arrived when start_timeout_s ran out$' \
    "$tmp/push-part.log" || fail "part's start line: $(cat "$tmp/push-part.log")"

# A token the worker does not hold registers nothing.
[ "$(rcli FCALL llmb_rendezvous 1 "$B" w1 other:0 1.stale 1000)" = 0 ] ||
    fail "a stale token was answered"
[ "$(rcli EXISTS "$B:rv:other")" = 0 ] || fail "a stale token registered"
rcli FCALL llmb_rendezvous 1 "$B" w1 other:0 2>&1 | grep -q 'ERR usage' ||
    fail "no usage error"

# 3. Retention takes the rendezvous with the job.
rcli HSET "$B:conf" retention_s 1 > /dev/null
gone() { [ "$(rcli EXISTS "$B:j:sync" "$B:rv:sync" "$B:rv:part" "$B:rv:zero")" = 0 ]; }
wait_for 30 gone || fail "retention left $(rcli --scan --pattern "$B:rv:*")"
echo "llm start together: four tasks over two workers started at the rendezvous"
