#!/usr/bin/env bash
# The read-only commands of the llmb CLI -- stats, workers, queues, jobs and
# show -- as tables and as --json, against jobs pushed with llmb_push and
# moved along by a worker simulated with llmb_claim, llmb_complete and
# llmb_fail, worker records and coordinator metrics written by hand, and an
# aggregate stored through llmb_agg_take / llmb_agg_finish.
#
# usage: cli_inspect.sh PATH_TO_LLMB   (run by ctest with the redis fixture)
source "$(dirname "$0")/cli_lib.sh"

# An empty cluster (this also loads the function library).
run queues
expect_rc 0
expect_out "no queues yet"
run stats --json
expect_rc 0
check 'd["queues"] == [] and d["workers"]["total"] == 0 and d["metrics"] is None'
check 'd["totals"]["pending"] == 0 and d["now_ms"] > 0'
run workers
expect_rc 0
expect_out "no workers"

# Four jobs, oldest first: job-a (1 task), job-b (5 tasks, no retries),
# job-c (3 tasks on queue gpu, delayed), fan (150 tasks).
push default '{"type":"echo","id":"job-a","payload":{"x":1}}' >/dev/null
sleep 0.02
push default '{"type":"echo","id":"job-b","tasks":5,"max_retries":0}' >/dev/null
sleep 0.02
push gpu '{"type":"bench","id":"job-c","tasks":3,"delay_s":600}' >/dev/null
sleep 0.02
push default '{"type":"sweep","id":"fan","tasks":150,"priority":-1}' >/dev/null

# Worker w1 takes job-a (a job of one task: its ref is its id), job-b:0
# and job-b:1; job-a completes, job-b:0 fails for good, job-b:1 keeps
# running.
claim default w1 3
complete default w1 job-a '{"latency_ms":12.5,"tokens":100}'
fail_task default w1 job-b:0 fatal 'boom: exit 100'

# A coordinator aggregates job-a.
taken=$(fcall llmb_agg_take 1 "$PREFIX:{default}" 60000 10)
[[ $taken == job-a ]] || { echo "FAIL: llmb_agg_take gave \"$taken\"" >&2; exit 1; }
# A version 2 aggregate (docs/coordinator.md), with one field as version 1
# wrote it (no kind, a sum and a per_s even on a duration).
fcall llmb_agg_finish 1 "$PREFIX:{default}" job-a \
    '{"version":2,"ok":1,"failed":0,"cancelled":0,"wall_ms":40,"run_ms":2000,"results":1,"fields":{
      "latency_ms":{"kind":"duration","unit":"ms","count":1,"min":12.5,"mean":12.5,"p50":12.5,"p90":12.5,"p99":12.5,"max":12.5},
      "tokens":{"kind":"count","count":1,"sum":100,"min":100,"mean":100,"p50":100,"p90":100,"p99":100,"max":100,"per_s":50},
      "ratio":{"kind":"gauge","count":1,"min":0.8,"mean":0.8,"p50":0.8,"p90":0.8,"p99":0.8,"max":0.8},
      "cached":{"kind":"flag","count":4,"true":1,"mean":0.25},
      "status":{"kind":"label","count":3,"values":{"200":2,"429":1}},
      "slept_ms":{"count":1,"sum":7666,"min":7666,"mean":7666,"p50":7666,"p90":7666,"p99":7666,"max":7666,"per_s":3833}}}' >/dev/null

# Two worker records (one alive, one dead) and the coordinator's metrics.
now=$(redis_ms)
rcli HSET "$PREFIX:worker:w1" id w1 host node-1 pid 4242 queues default,gpu \
    tags a100 capacity 4 running 1 completed 1 failed 1 version 0.1.0 \
    started_ms $((now - 60000)) seen_ms $((now - 3000)) state busy >/dev/null
rcli HSET "$PREFIX:worker:w2" id w2 host node-2 pid 7 queues default \
    capacity 8 running 0 completed 5 failed 0 state dead \
    seen_ms $((now - 120000)) >/dev/null
rcli ZADD "$PREFIX:workers" $((now - 3000)) w1 $((now - 120000)) w2 >/dev/null
rcli HSET "$PREFIX:metrics" workers_total 2 load_pct 25.5 health healthy \
    queue:default:pending 153 updated_ms $((now - 2000)) updated_by c1 >/dev/null

# --- queues ------------------------------------------------------------
run queues --json
expect_rc 0
check '[q["name"] for q in d["queues"]] == ["default", "gpu"]'
check 'd["queues"][0]["pending"] == 153 and d["queues"][0]["running"] == 1'
check 'd["queues"][0]["delayed"] == 0 and d["queues"][0]["jobs"] == 3'
check 'd["queues"][0]["dead"] == 0 and d["queues"][0]["head_age_ms"] >= 0'
check 'd["queues"][1]["pending"] == 0 and d["queues"][1]["delayed"] == 3'

run queues
expect_rc 0
expect_out "QUEUE"
expect_out "HEAD AGE"
# Numbers are right-aligned under their header.
python3 - "$OUT" <<'EOF' || fail "queues table is not aligned"
import sys
lines = sys.argv[1].splitlines()
head = lines[0]
end = head.index("PENDING") + len("PENDING")
rows = {l.split()[0]: l for l in lines[1:]}
assert rows["default"][:end].endswith("153"), rows
assert rows["gpu"][:end].endswith("0"), rows
assert rows["gpu"].split()[2] == "3", rows
EOF

run queues --queue gpu --json
expect_rc 0
check '[q["name"] for q in d["queues"]] == ["gpu"]'

# --- stats -------------------------------------------------------------
run stats --json
expect_rc 0
check 'len(d["queues"]) == 2'
check 'd["totals"] == dict(d["totals"], pending=153, delayed=3, running=1, jobs=4, dead=0, to_aggregate=0)'
check 'd["totals"]["tasks_ok"] == 1 and d["totals"]["tasks_failed"] == 1 and d["totals"]["head_age_ms"] >= 0'
check 'd["queues"][0]["tasks_ok"] == 1 and d["queues"][1]["tasks_ok"] == 0'
check 'd["workers"]["total"] == 2 and d["workers"]["alive"] == 1'
check 'd["workers"]["by_state"] == {"busy": 1, "dead": 1}'
check 'd["workers"]["capacity"] == 4 and d["workers"]["running"] == 1'
check 'd["workers"]["completed"] == 6 and d["workers"]["failed"] == 1'
check 'd["now_ms"] - 30000 < d["workers"]["seen_newest_ms"] == d["workers"]["seen_oldest_ms"] <= d["now_ms"] - 3000'
check 'd["metrics"] == {"workers_total": 2, "load_pct": 25.5, "health": "healthy", "queue:default:pending": 153, "updated_ms": d["metrics"]["updated_ms"], "updated_by": "c1"}'

run stats
expect_rc 0
expect_out "(total)"
# every figure of the worker lines is as old as the heartbeats it comes
# from: the newest of the live ones (w1; w2 is dead) dates them
grep -Eq '^workers   2: busy 1, dead 1 \(as of their heartbeats [0-9.]+s ago\)$' <<<"$OUT" ||
    fail "no workers line with its age"
expect_out "capacity  4 on 1 live workers: 1 running, 3 free"
grep -Eq "^coordinator metrics \\($PREFIX:metrics, updated [0-9.]+s ago by c1\\):$" <<<"$OUT" ||
    fail "no metrics header"
grep -Eq '^load_pct +25.5$' <<<"$OUT" || fail "no load_pct line"
grep -q '^queue:default:pending' <<<"$OUT" && fail "per-queue metrics are listed"
expect_out "(1 metrics that repeat the queue table, tasks_* and queue:<name>:<field>, are in --json)"
# worker counters are attempts; the metrics, without interval_ms, are not
# judged stale
grep -Eq '^attempts  6 completed, 1 failed \(task attempts the workers counted, retries included\)$' <<<"$OUT" ||
    fail "no attempts line"
grep -q 'stale' <<<"$OUT" && fail "fresh metrics said stale"
# a hash older than two collections is said to be stale; the tasks_*
# metrics, which repeat the table, and jobs_* get their meaning said
rcli HSET "$PREFIX:metrics" interval_ms 500 tasks_running 3 jobs_running 1 >/dev/null
run stats
expect_rc 0
grep -Eq "^coordinator metrics \($PREFIX:metrics, updated [0-9.]+s ago by c1, every 500ms\):$" <<<"$OUT" ||
    fail "no metrics header with interval"
expect_out "note: these metrics are stale (no collection for "
grep -q '^tasks_running' <<<"$OUT" && fail "tasks_running repeats the table"
grep -Eq '^jobs_running +1$' <<<"$OUT" || fail "no jobs_running"
expect_out "(jobs_<state> counts jobs: a running job has started and not ended"
rcli HDEL "$PREFIX:metrics" interval_ms tasks_running jobs_running >/dev/null

# --- workers -----------------------------------------------------------
run workers --json
expect_rc 0
check '[w["id"] for w in d["workers"]] == ["w1", "w2"]'
check 'd["workers"][0]["pid"] == 4242 and d["workers"][0]["queues"] == ["default", "gpu"]'
check 'd["workers"][0]["tags"] == ["a100"] and d["workers"][0]["state"] == "busy"'
check 'd["workers"][0]["capacity"] == 4 and d["workers"][0]["completed"] == 1'
check '2500 <= d["workers"][0]["seen_ago_ms"] < 30000'
check 'd["workers"][1]["state"] == "dead" and d["workers"][1]["tags"] == []'

run workers
expect_rc 0
expect_out "LAST SEEN"
[[ $(head -n 1 <<<"$OUT") =~ RUNNING\ +ATTEMPTS\ OK\ +ATTEMPTS\ FAILED\ +LAST\ SEEN$ ]] ||
    fail "workers header does not say attempts"
grep -Eq '^w1 +node-1 +4242 +default,gpu +busy +4 +1 +1 +1 +[0-9.]+s ago$' <<<"$OUT" ||
    fail "no w1 row as expected"
grep -Eq '^w2 +node-2 .* dead .* [2-9]m[0-5]?[0-9]s ago$' <<<"$OUT" ||
    fail "no w2 row as expected"

# --- jobs --------------------------------------------------------------
run jobs --json
expect_rc 0
check '[j["id"] for j in d["jobs"]] == ["fan", "job-c", "job-b", "job-a"]'
check 'd["limit"] == 20 and d["truncated"] is False'
check 'd["jobs"][3] == dict(d["jobs"][3], state="completed", queue="default", type="echo", tasks=1, done=1, ok=1, failed=0)'
check 'd["jobs"][2]["state"] == "running" and d["jobs"][2]["done"] == 1 and d["jobs"][2]["error"] == "task 0: boom: exit 100"'
check 'd["jobs"][1]["queue"] == "gpu" and d["jobs"][1]["started_ms"] is None'
check 'all(a["created_ms"] >= b["created_ms"] for a, b in zip(d["jobs"], d["jobs"][1:]))'

run jobs --limit 2 --json
check '[j["id"] for j in d["jobs"]] == ["fan", "job-c"]'
run --json jobs -n 1 --queue default
check '[j["id"] for j in d["jobs"]] == ["fan"]'
run jobs --state completed --json
check '[j["id"] for j in d["jobs"]] == ["job-a"]'
run jobs --state failed --json
check 'd["jobs"] == []'
run jobs --queue gpu --state pending --json
check '[j["id"] for j in d["jobs"]] == ["job-c"]'

run jobs
expect_rc 0
expect_out "task 0: boom: exit 100"
head=$(head -n 1 <<<"$OUT")
[[ $head =~ ^ID\ +QUEUE\ +TYPE\ +STATE\ +TASKS\ +TASKS\ ENDED\ +CREATED\ +TOOK\ +ERROR$ ]] ||
    fail "unexpected jobs header"
grep -Eq '^job-b +default +echo +running +5 +1 failed ' <<<"$OUT" || fail "no job-b row"
run jobs --state failed
expect_rc 0
expect_out "no jobs in state failed"

# --- show --------------------------------------------------------------
run show job-b --json
expect_rc 0
check 'd["job"]["id"] == "job-b" and d["job"]["queue"] == "default" and d["job"]["state"] == "running"'
check 'd["job"]["tasks"] == 5 and d["job"]["left"] == 4 and d["job"]["failed"] == 1 and d["job"]["ok"] is None'
check 'd["job"]["max_retries"] == 0 and d["job"]["timeout_s"] == 600 and d["job"]["payload"] == {}'
check 'd["job"]["error"] == "task 0: boom: exit 100" and d["job"]["aggregate"] is None'
check 'd["task_states"] == {"failed": 1, "running": 1, "pending": 3}'
check 'd["tasks_total"] == 5 and d["tasks_shown"] == 5 and len(d["tasks"]) == 5'
check 'd["tasks"][0] == {"index": 0, "state": "failed", "attempt": 1, "worker": "w1", "error": "boom: exit 100", "result": None}'
check 'd["tasks"][1]["state"] == "running" and d["tasks"][1]["worker"] == "w1"'
check 'd["tasks"][4] == {"index": 4, "state": "pending", "attempt": 0, "worker": None, "error": None, "result": None}'

run show job-b
expect_rc 0
expect_out "state      running"
expect_out "error      task 0: boom: exit 100"
expect_out "task states: failed 1, running 1, pending 3"
grep -Eq '^ +0 +failed +1 +w1 +boom: exit 100$' <<<"$OUT" || fail "no task 0 row"
grep -Eq '^ +4 +pending +0 +- +-$' <<<"$OUT" || fail "no task 4 row"

# QUEUE/ID, and the aggregate.
run show default/job-a --json
expect_rc 0
check 'd["job"]["state"] == "completed" and d["job"]["ok"] == 1 and d["job"]["payload"] == {"x": 1}'
check 'd["job"]["aggregate"]["fields"]["latency_ms"]["p50"] == 12.5 and d["job"]["aggregated_ms"] > 0'
check 'd["tasks"][0]["result"] == {"latency_ms": 12.5, "tokens": 100}'
check 'd["job"]["aggregate"]["fields"]["tokens"]["per_s"] == 50 and "per_s" not in d["job"]["aggregate"]["fields"]["latency_ms"]'
grep -q '"mean": 0.8,' "$TMP/out" || fail "--json does not print 0.8 as 0.8"
run show default/job-a
expect_rc 0
expect_out "aggregate ("
expect_out "1 results, run 2.0s; --json prints it whole"
grep -Eq '^FIELD +KIND +COUNT +MIN +MEAN +P50 +P90 +P99 +MAX +SUM +PER_S$' <<<"$OUT" ||
    fail "no aggregate table header"
grep -Eq '^latency_ms +duration ms +1 +12.5 +12.5 +12.5 +12.5 +12.5 +12.5 +- +-$' <<<"$OUT" ||
    fail "no duration row without sum and per_s"
grep -Eq '^tokens +count +1 +100 +100 +100 +100 +100 +100 +100 +50$' <<<"$OUT" ||
    fail "no count row with sum and per_s"
grep -Eq '^ratio +gauge +1 +0.8 +0.8 +0.8 +0.8 +0.8 +0.8 +- +-$' <<<"$OUT" ||
    fail "no gauge row"
# A version 1 field: its kind from its name, no sum or per_s for a duration.
grep -Eq '^slept_ms +duration ms +1 +7666 +7666 +7666 +7666 +7666 +7666 +- +-$' <<<"$OUT" ||
    fail "no version 1 row"
grep -Eq '^cached +flag +4 +true 1 \(25%\), false 3$' <<<"$OUT" || fail "no flag row"
grep -Eq '^status +label +3 +200 2, 429 1$' <<<"$OUT" || fail "no label row"
grep -q '"kind"' <<<"$OUT" && fail "the text view prints the aggregate JSON"
expect_out "payload    {\"x\":1}"

# Tasks never claimed of a delayed job.
run show job-c --json
check 'd["task_states"] == {"delayed": 3} and d["job"]["delay_s"] == 600'

# A fan-out: every task counted, the first --tasks listed.
run show fan --json
check 'd["tasks_total"] == 150 and d["tasks_shown"] == 20 and len(d["tasks"]) == 20'
check 'd["task_states"] == {"pending": 150} and d["job"]["priority"] == -1'
run show fan --tasks 150 --json
check 'd["tasks_shown"] == 150 and d["tasks"][149]["index"] == 149'
run show fan
expect_out "(the first 20 of 150 tasks; --tasks N lists more)"
run show fan --tasks 0
expect_rc 0
expect_out "task states: pending 150"
grep -q '^TASK' <<<"$OUT" && fail "--tasks 0 listed tasks"

# Unknown jobs.
run show nope
expect_rc 1
expect_err_is 'llmb: job "nope" not found'
[[ -z $OUT ]] || fail "stdout is not empty"
run show gpu/job-a
expect_rc 1
expect_err_is 'llmb: job "gpu/job-a" not found'
run show nope --json
expect_rc 1
[[ -z $OUT ]] || fail "stdout is not empty"

# The same id in two queues needs QUEUE/ID.
push gpu '{"type":"echo","id":"job-a"}' >/dev/null
run show job-a
expect_rc 1
expect_err 'job "job-a" is in 2 queues (default, gpu)'
run show gpu/job-a --json
expect_rc 0
check 'd["job"]["queue"] == "gpu"'
run show job-a --queue gpu --json
expect_rc 0
check 'd["job"]["queue"] == "gpu"'

echo "$NAME: ok"
