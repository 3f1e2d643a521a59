#!/usr/bin/env bash
# The commands of the llmb CLI that change jobs and queues -- cancel,
# retry, retry --dead, purge, pause and resume -- with their effect checked in Redis, their
# --json output, and the refusals of the Lua functions shown without
# their "ERR " prefix.
#
# usage: cli_actions.sh PATH_TO_LLMB   (run by ctest with the redis fixture)
source "$(dirname "$0")/cli_lib.sh"

B="$PREFIX:{default}"
run queues   # loads the function library
expect_rc 0

# --- cancel ------------------------------------------------------------
push default '{"type":"echo","id":"c1","tasks":4}' >/dev/null
claim default w1 1                       # c1:0 runs, c1:1..3 wait
run cancel c1 --json
expect_rc 0
check 'd == {"job": "c1", "queue": "default", "removed": 3}'
[[ $(rcli FCALL_RO llmb_job 1 "$B" "c1" state) == cancelled ]] || fail "c1 is not cancelled"
[[ $(rcli FCALL_RO llmb_job 1 "$B" "c1" cancelled) == 3 ]] || fail "c1's tasks are not cancelled"
# (its cursor may stay in <base>:pl: a claim hands out none of its tasks)
[[ $(fcall llmb_claim 1 "$B" w1 3 30000 | sed -n 3p) == 0 ]] || fail "c1's tasks still wait"

run cancel c1
expect_rc 1
expect_err_is 'llmb: job "c1" has already been cancelled'

push default '{"type":"echo","id":"c2"}' >/dev/null
run cancel default/c2
expect_rc 0
expect_out "cancelled job c2 in queue default: 1 waiting task removed"

# A job cancelled after some tasks completed: `jobs` says how each ended,
# not "3/3".
push default '{"type":"echo","id":"c3","tasks":3}' >/dev/null
claim default w1 1
complete default w1 c3:0 '{}'
run cancel c3
expect_rc 0
run jobs
expect_rc 0
grep -Eq '^c3 +default +echo +cancelled +3 +1 ok, 2 cancelled ' <<<"$OUT" ||
    fail "c3 row: $OUT"
grep -Eq '^c1 +default +echo +cancelled +4 +3 cancelled ' <<<"$OUT" ||
    fail "c1 row: $OUT"

run cancel missing
expect_rc 1
expect_err_is 'llmb: job "missing" not found'

# A completed job cannot be cancelled.
push default '{"type":"echo","id":"done1"}' >/dev/null
claim default w1 1
complete default w1 done1 '{}'
run cancel done1
expect_rc 1
expect_err_is 'llmb: job "done1" has already completed'

# --- retry JOB -----------------------------------------------------------
run retry done1
expect_rc 1
expect_err_is 'llmb: job "done1" is completed; only failed or cancelled jobs can be retried'

run retry c2 --json
expect_rc 0
check 'd == {"job": "c2", "queue": "default", "enqueued": 1}'
[[ $(rcli FCALL_RO llmb_job 1 "$B" "c2" state) == pending ]] || fail "c2 is not pending again"
run retry c2
expect_rc 1
expect_err 'only failed or cancelled jobs can be retried'

# --- retry --dead --------------------------------------------------------
run cancel c2                             # nothing waits in default now
expect_rc 0
for i in 1 2 3; do
    push default "{\"type\":\"echo\",\"id\":\"d$i\",\"max_retries\":0,\"tasks\":2}" >/dev/null
done
claim default w2 6
for i in 1 2 3; do
    fail_task default w2 "d$i:0" fatal "bad input $i"
    complete default w2 "d$i:1" '{"v":1}'
done
[[ $(rcli ZCARD "$B:dead") == 3 ]] || fail "the dead set does not hold 3 jobs"

run jobs --state failed --json
check 'sorted(j["id"] for j in d["jobs"]) == ["d1", "d2", "d3"]'
run queues --json
check 'd["queues"][0]["dead"] == 3'

run retry --dead --json
expect_rc 0
check 'd["retried"] == 3 and d["tasks"] == 3 and d["failed"] == 0 and d["errors"] == []'
check 'd["queues"] == [{"queue": "default", "retried": 3, "tasks": 3, "failed": 0}]'
[[ $(rcli ZCARD "$B:dead") == 0 ]] || fail "the dead set is not empty"
[[ $(rcli FCALL_RO llmb_job 1 "$B" "d1" state) == pending ]] || fail "d1 is not pending"
# Only the failed task runs again; the completed one keeps its result.
run show d1 --json
check 'd["task_states"] == {"pending": 1, "completed": 1} and d["tasks"][1]["result"] == {"v": 1}'

run retry --dead
expect_rc 0
expect_out "retried 0 dead jobs (0 tasks enqueued again) in queue default"

# A dead job whose hash is gone is reported; the others are retried.
claim default w3 3
for i in 1 2 3; do fail_task default w3 "d$i:0" fatal "bad again $i"; done
[[ $(rcli ZCARD "$B:dead") == 3 ]] || fail "the dead set does not hold 3 jobs"
rcli DEL "$B:j:d2" >/dev/null
run retry --dead --queue default --json
expect_rc 1
check 'd["retried"] == 2 and d["failed"] == 1'
check 'd["errors"] == [{"queue": "default", "job": "d2", "error": "job \"d2\" not found in queue \"default\""}]'
expect_err 'llmb: queue default, job d2: job "d2" not found in queue "default"'
expect_err 'llmb: 1 dead job could not be retried'
[[ $(rcli ZCARD "$B:dead") == 0 ]] || fail "the expired d2 should have left the dead set"

# Dead jobs in one queue of several: "in queue default", not "in 2 queues".
push spare '{"type":"echo","id":"s1"}' >/dev/null
claim default w4 2
for i in 1 3; do fail_task default w4 "d$i:0" fatal "bad once more $i"; done
[[ $(rcli ZCARD "$B:dead") == 2 ]] || fail "the dead set does not hold 2 jobs"
run retry --dead
expect_rc 0
expect_out "retried 2 dead jobs (2 tasks enqueued again) in queue default"
run retry --dead
expect_rc 0
expect_out "retried 0 dead jobs (0 tasks enqueued again): no dead jobs in 2 queues"

# --- purge ---------------------------------------------------------------
rcli DEL "$B:dead" >/dev/null
purge_base="$PREFIX:{bulk}"
docs=()
for i in $(seq 1 1500); do docs+=("{\"type\":\"echo\",\"id\":\"p$i\"}"); done
for i in $(seq 0 250 1250); do  # 250 jobs per call, the most
  fcall llmb_push 1 "$purge_base" "${docs[@]:$i:250}" >/dev/null
done
push bulk '{"type":"echo","id":"later","delay_s":3600}' >/dev/null

run purge --queue bulk
expect_rc 64
expect_err_is 'llmb: purge cancels every waiting job of queue "bulk" and cannot be undone; add --yes to go ahead'
[[ $(rcli LLEN "$purge_base:pl") == 1500 ]] || fail "purge without --yes changed the queue"
run purge --yes
expect_rc 64
expect_err 'purge needs --queue QUEUE'

run purge --queue bulk --yes --json
expect_rc 0
check 'd["queue"] == "bulk" and d["cancelled"] == 1501 and d["calls"] >= 2'
[[ $(rcli LLEN "$purge_base:pl") == 0 ]] || fail "tasks still pending"
[[ $(rcli ZCARD "$purge_base:pd") == 0 ]] || fail "tasks still delayed"
[[ $(rcli FCALL_RO llmb_job 1 "$purge_base" "p1500" state) == cancelled ]] || fail "p1500 is not cancelled"
[[ $(rcli FCALL_RO llmb_job 1 "$purge_base" "later" error) == purged ]] || fail "later is not purged"

run -y purge -q bulk
expect_rc 0
expect_out "purged queue bulk: 0 jobs cancelled"

# --- pause and resume ----------------------------------------------------
P="$PREFIX:{held}"
push held '{"type":"echo","id":"h1"}' >/dev/null
run pause held --json
expect_rc 0
check 'd == {"queue": "held", "paused": True, "changed": True}'
run pause held
expect_rc 0
expect_out "queue held was already paused"
claim held w1 1
[[ $(rcli LLEN "$P:pl") == 1 ]] || fail "a paused queue handed out a task"
run queues --queue held --json
check 'd["queues"][0]["paused"] is True and d["queues"][0]["pending"] == 1'
run stats --queue held
expect_out "note: queue held is paused"
run resume held
expect_rc 0
expect_out "resumed queue held: workers claim from it again"
claim held w1 1
[[ $(rcli LLEN "$P:pl") == 0 ]] || fail "the resumed queue handed out nothing"
run queues --queue held --json
check 'd["queues"][0]["paused"] is False'
run pause 'bad name'
expect_rc 64
expect_err_is 'llmb: queue name "bad name" must be 1 to 64 characters from [A-Za-z0-9_.-]'
run pause
expect_rc 64

echo "$NAME: ok"
