#!/usr/bin/env bash
# What a user sees on a terminal: llmb-push --wait (one job, an LLM job, a
# batch) and the tables of llmb stats, jobs and show, run on a
# pseudo-terminal (tests/fixtures/tty.py renders what the terminal shows)
# with a real llmb-worker and llmb-coordinator. The bar is redrawn in
# place and ends as one line that fits the terminal, the tables follow
# it; stdout redirected to a file holds only the JSON (NDJSON for a
# batch), with no escape codes; the admin tables are aligned and the same
# on a terminal as in a pipe.
. "$(dirname "$0")/llm_lib.sh"
export LLMB_REDIS_URL=$url LLMB_PREFIX=$prefix LLMB_STATE_DIR=$tmp/state
push="$bin/tools/push/llmb-push"
llmb="$bin/tools/admin/llmb"
tty() { python3 "$LLMB_SOURCE_DIR/tests/fixtures/tty.py" "$@"; }

# runs ARGS on a terminal of COLS columns; the screen goes to $tmp/NAME.screen,
# the bytes to $tmp/NAME.raw; OUTFILE, when not "-", gets stdout. Sets rc.
on_tty() {
    local name=$1 cols=$2 outfile=$3
    shift 3
    local so=()
    [ "$outfile" = - ] || so=(--stdout "$outfile")
    rc=0
    timeout 60 python3 "$LLMB_SOURCE_DIR/tests/fixtures/tty.py" run \
        --cols "$cols" "${so[@]}" --raw "$tmp/$name.raw" \
        --screen "$tmp/$name.screen" -- "$@" || rc=$?
}
screen_fail() { fail "$1; the screen:"$'\n'"$(cat "$tmp/$2.screen")"; }
# The file holds no escape code and no carriage return.
plain() {
    ! grep -q $'[\x1b\r]' "$1" || fail "$1 has escape codes or CRs: $(cat -A "$1" | head)"
}
isjson() { python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$1"; }
isndjson() { python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == int(sys.argv[2]), len(lines)
for l in lines: json.loads(l)' "$1" "$2"; }
# The screen of NAME has exactly one progress line, BAR_RE (an extended
# regex), and no other line about tasks ended (a redraw left behind).
one_bar() {
    local name=$1 re=$2
    [ "$(grep -Ec "$re" "$tmp/$name.screen")" = 1 ] ||
        screen_fail "not one final bar /$re/" "$name"
    [ "$(grep -Ec '[0-9]+/[0-9]+ tasks' "$tmp/$name.screen")" = 1 ] ||
        screen_fail "a redraw of the bar left lines behind" "$name"
    ! grep -q '<ESC' "$tmp/$name.screen" || screen_fail "unknown escape codes" "$name"
}

"$bin/worker/llmb-worker" --id w1 --capacity 4 --heartbeat-ms 200 \
    --log-level warn 2>"$tmp/worker.log" &
pids+=($!)
"$bin/coordinator/llmb-coordinator" --tick-ms 50 --log-level warn \
    2>"$tmp/coordinator.log" &
pids+=($!)
for _ in $(seq 200); do
    [ "$(rcli ZCARD "$prefix:workers")" = 1 ] && break; sleep 0.05
done

# --- one job, everything on an 80-column terminal: the bar, then the JSON
on_tty one 80 - "$push" --wait --wait-timeout 30 --tasks 3 --id one sleep '{"ms":300}'
[ $rc -eq 0 ] || screen_fail "one job: exit $rc" one
one_bar one '^\[#{40}\] 3/3 tasks  [0-9]+\.[0-9]s$'
python3 - "$tmp/one.screen" <<'PY' || screen_fail "no JSON document after the bar" one
import json, sys
lines = open(sys.argv[1]).read().splitlines()
bar = next(i for i, l in enumerate(lines) if l.startswith("[#"))
job = json.loads("\n".join(lines[bar + 1:]))
assert job["id"] == "one" and job["state"] == "completed", job
PY

# --- the same with stdout in a file: one JSON document in the file, the
# bar alone on the terminal
on_tty one_file 80 "$tmp/one.json" "$push" --wait --wait-timeout 30 --tasks 3 \
    --id one sleep '{"ms":300}'
[ $rc -eq 0 ] || screen_fail "one job to a file: exit $rc" one_file
isjson "$tmp/one.json" || fail "stdout is not one JSON document: $(cat "$tmp/one.json")"
plain "$tmp/one.json"
one_bar one_file '^\[#{40}\] 3/3 tasks  [0-9]+\.[0-9]s$'
! grep -q '"state"' "$tmp/one_file.screen" || screen_fail "JSON on the terminal" one_file

# --- an LLM job: the serving-benchmark table ends what the terminal shows,
# after the JSON (stdout a terminal) or alone (stdout a file)
start_mock --ttft-ms 5 --itl-ms 1
"$bin/worker/llmb-worker" --id w2 --queues llmq --heartbeat-ms 200 \
    --llm-endpoint "mock=http://127.0.0.1:$port" --log-level warn 2>"$tmp/worker2.log" &
pids+=($!)
payload='{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"requests":3,"concurrency":1}'
on_tty llm 80 - "$push" --queue llmq --wait --wait-timeout 30 --id llm1 llm "$payload"
[ $rc -eq 0 ] || screen_fail "llm job: exit $rc" llm
one_bar llm '^\[#{40}\] 1/1 tasks  [0-9]+\.[0-9]s$'
python3 - "$tmp/llm.screen" <<'PY' || screen_fail "not bar, JSON, table" llm
import json, re, sys
lines = open(sys.argv[1]).read().splitlines()
bar = next(i for i, l in enumerate(lines) if l.startswith("[#"))
head = next(i for i, l in enumerate(lines) if "LLM serving benchmark" in l)
job = json.loads("\n".join(lines[bar + 1:head]))
assert job["id"] == "llm1", job
metric = next(i for i, l in enumerate(lines) if l.startswith("metric "))
assert head < metric, (head, metric)
# the table's rows end the screen
assert all(re.match(r"\S.* +[0-9]+$", l) for l in lines[metric + 1:]), lines[metric:]
PY
tty aligned "$tmp/llm.screen" "metric " || screen_fail "the metric table" llm
on_tty llm_file 80 "$tmp/llm.json" "$push" --queue llmq --wait --wait-timeout 30 \
    --id llm1 llm "$payload"
[ $rc -eq 0 ] || screen_fail "llm job to a file: exit $rc" llm_file
isjson "$tmp/llm.json" || fail "llm stdout is not JSON: $(cat "$tmp/llm.json")"
plain "$tmp/llm.json"
grep -q '==== LLM serving benchmark: job llm1 ====' "$tmp/llm_file.screen" ||
    screen_fail "no LLM table on the terminal" llm_file

# --- a batch, stdout in a file, on a 60-column terminal: the bar keeps
# to one line as it is redrawn (the counts take more room than for one
# job), the jobs table follows and its total ends the screen; the file
# holds the NDJSON
for i in $(seq 12); do
    echo "{\"type\":\"sleep\",\"id\":\"b$i\",\"tasks\":2,\"payload\":{\"ms\":200}}"
done > "$tmp/in.ndjson"
echo '{"type":"fail","id":"bad","max_retries":0}' >> "$tmp/in.ndjson"
on_tty batch 60 "$tmp/batch.out" "$push" --batch "$tmp/in.ndjson" --wait \
    --wait-timeout 60
[ $rc -eq 1 ] || screen_fail "batch with a failed job: exit $rc" batch
one_bar batch '^\[#+\] 25/25 tasks  13/13 jobs  [0-9]+\.[0-9]s$'
awk 'length > 59 { exit 1 }' < <(grep '^\[' "$tmp/batch.screen") ||
    screen_fail "the bar is wider than the terminal" batch
isndjson "$tmp/batch.out" 13 || fail "stdout is not 13 NDJSON lines: $(cat "$tmp/batch.out")"
plain "$tmp/batch.out"
! grep -q '"state"' "$tmp/batch.screen" || screen_fail "JSON on the terminal" batch
[ "$(tail -n 1 "$tmp/batch.screen")" = "13 jobs, 25 tasks: 24 ok, 1 failed, 0 cancelled" ] ||
    screen_fail "the total does not end the screen" batch
tty aligned "$tmp/batch.screen" "JOB " "13 jobs, " || screen_fail "the jobs table" batch

# the same with stdout on the terminal (wide enough for a JSON line):
# the bar, the NDJSON in input order, the table
sed 's/"id":"\([a-z0-9]*\)"/"id":"t\1"/' "$tmp/in.ndjson" > "$tmp/in2.ndjson"
on_tty batch_tty 2000 - "$push" --batch "$tmp/in2.ndjson" --wait --wait-timeout 60
[ $rc -eq 1 ] || screen_fail "batch on a terminal: exit $rc" batch_tty
one_bar batch_tty '^\[#{40}\] 25/25 tasks  13/13 jobs  [0-9]+\.[0-9]s$'
python3 - "$tmp/batch_tty.screen" <<'PY' || screen_fail "not bar, NDJSON, table" batch_tty
import json, sys
lines = open(sys.argv[1]).read().splitlines()
bar = next(i for i, l in enumerate(lines) if l.startswith("[#"))
jobs = [json.loads(l) for l in lines[bar + 1:bar + 14]]
assert [j["id"] for j in jobs] == ["tb%d" % i for i in range(1, 13)] + ["tbad"]
assert lines[-1] == "13 jobs, 25 tasks: 24 ok, 1 failed, 0 cancelled", lines[-1]
PY
tty aligned "$tmp/batch_tty.screen" "JOB " "13 jobs, " || screen_fail "the jobs table" batch_tty

# and without a terminal at all: stderr holds plain lines only
"$push" --batch "$tmp/in2.ndjson" --wait --wait-timeout 60 \
    > "$tmp/plain.out" 2> "$tmp/plain.err" || true
plain "$tmp/plain.out"
plain "$tmp/plain.err"

# --- the admin tables on a terminal: aligned, and what a pipe gets
# (numbers and durations aside: ages and load move on between the two
# runs). The terminal is wide:
# a table is as wide as its cells (the stats queue table takes about 96
# columns), and a narrower terminal wraps it, as it does `docker ps`.
same_as_pipe() {
    local name=$1
    shift
    "$llmb" "$@" > "$tmp/$name.pipe" 2>&1 || fail "llmb $*: exit $?"
    plain "$tmp/$name.pipe"
    # Two workers' heartbeats read "in N to N ago" (or "N ago to N ago")
    # when their ages differ and "N ago" when they round alike, which can
    # change between the two runs.
    local num='s/([0-9][0-9.]*(ms|[smhd])?)+/N/g; s/ +/ /g; s/N ago to N ago/N ago/g; s/in N to N ago/N ago/g'
    diff <(sed -E "$num" "$tmp/$name.screen") \
        <(sed -E "$num" "$tmp/$name.pipe") >&2 ||
        fail "llmb $* differs on a terminal"
}
on_tty stats 160 - "$llmb" stats
[ $rc -eq 0 ] || screen_fail "llmb stats: exit $rc" stats
tty aligned "$tmp/stats.screen" "QUEUE " || screen_fail "the queue table" stats
tty aligned "$tmp/stats.screen" "METRIC " || screen_fail "the metric table" stats
same_as_pipe stats stats
on_tty jobs 160 - "$llmb" jobs --limit 30
[ $rc -eq 0 ] || screen_fail "llmb jobs: exit $rc" jobs
[ "$(grep -c ' sleep ' "$tmp/jobs.screen")" -ge 12 ] || screen_fail "not every job listed" jobs
tty aligned "$tmp/jobs.screen" "ID " || screen_fail "the jobs table" jobs
same_as_pipe jobs jobs --limit 30
on_tty show 160 - "$llmb" show bad
[ $rc -eq 0 ] || screen_fail "llmb show: exit $rc" show
tty aligned "$tmp/show.screen" "TASK " || screen_fail "the task table" show
same_as_pipe show show bad
on_tty show2 160 - "$llmb" show b1
tty aligned "$tmp/show2.screen" "FIELD " || screen_fail "the aggregate table" show2
echo "e2e tty: ok"
