#!/usr/bin/env bash
# kill -9 of a Redis Cluster primary in the middle of a drain, its replica
# promoted (cluster-node-timeout 2 s): with two llmb-workers and an
# llmb-coordinator running and llmb-push pushing meanwhile, every job
# that exists afterwards ends completed, and an llmb-push --batch --wait
# started before the kill ends with its jobs completed. Measured and
# printed (not asserted: replication is asynchronous): jobs whose push was
# acknowledged but that the promoted replica never got, tasks run more
# than once, and the time from the kill to the first task completed on
# the promoted replica. docs/operations.md gives the figures of a run.
# Its own cluster (tests/support/redis-cluster.sh), as it loses a node.
set -euo pipefail
src=$LLMB_SOURCE_DIR
push="$LLMB_BUILD_DIR/tools/push/llmb-push"
worker="$LLMB_BUILD_DIR/worker/llmb-worker"
coord="$LLMB_BUILD_DIR/coordinator/llmb-coordinator"
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    "$src/tests/support/redis-cluster.sh" stop "$tmp/cluster" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$src/tests/support/redis-cluster.sh" start "$tmp/cluster" >/dev/null
url=$(cat "$tmp/cluster/cluster.url")
mapfile -t ports <"$tmp/cluster/ports"
# a prefix whose <prefix>:metrics lives on the victim (ports[0]): the
# coordinator cannot write it until the replica has taken over, and must
# then delete the dead primary's fields
for i in $(seq 100); do
    prefix="e2efo$$x$i"
    redis-cli -p "${ports[0]}" EXISTS "$prefix:metrics" | grep -q MOVED || break
done
export LLMB_REDIS_URL=$url LLMB_PREFIX=$prefix LLMB_LOG_LEVEL=warn
# a node that stays up (the victim is ports[0]); during the failover a
# redirection may point at the dead node: the helpers below read that as
# "not known yet"
rcli() { redis-cli -c -p "${ports[1]}" "$@" 2>/dev/null; }
# tasks of queue $1 ended ok, 0 when unknown
ok_of() {
    local v
    v=$(rcli HGET "$prefix:{$1}:counts" ok) || v=0
    [[ $v =~ ^[0-9]+$ ]] || v=0
    echo "$v"
}
# tasks of queue $1 waiting or running; -1 when unknown
left_of() {
    local out
    out=$(rcli FCALL_RO llmb_stats 1 "$prefix:{$1}") || { echo -1; return; }
    grep -qx pending <<<"$out" || { echo -1; return; }
    paste - - <<<"$out" |
        awk '$1 == "pending" || $1 == "delayed" || $1 == "running" {s += $2} END {print s + 0}'
}

queues=()
for q in $(seq 0 11); do queues+=("f$q"); done
qlist=$(IFS=,; echo "${queues[*]}")
for q in "${queues[@]}"; do
    for k in $(seq 0 249); do
        printf '{"type":"sleep","payload":{"ms":30},"queue":"%s","id":"j%d"}\n' "$q" "$k"
    done
done >"$tmp/jobs.ndjson"
"$push" --batch "$tmp/jobs.ndjson" >"$tmp/acked" || fail "push exit $?"

"$coord" --tick-ms 200 2>"$tmp/coord.log" &
pids+=($!)
for k in 1 2; do
    "$worker" --queues "$qlist" --handler sleep=sleep --capacity 16 \
        --id "fo$$-$k" 2>"$tmp/worker$k.log" &
    pids+=($!)
done
# llmb-push --batch --wait follows jobs of every queue through the
# failover: pushed now, long before the kill (so replicated), they run
# after the first 3000 and end once the replica has taken over
for q in "${queues[@]}"; do
    for k in 0 1; do
        printf '{"type":"sleep","payload":{"ms":30},"queue":"%s","id":"w%d"}\n' "$q" "$k"
    done
done >"$tmp/wait.ndjson"
"$push" --batch "$tmp/wait.ndjson" --wait --wait-timeout 240 --no-journal \
    >"$tmp/wait.out" 2>"$tmp/wait.err" &
wait_pid=$!
pids+=($wait_pid)
# pushes go on through the failover: one job at a time, its id printed
# once acknowledged
(
    i=0
    while [ ! -e "$tmp/stop-pushing" ]; do
        q=${queues[$((i % 12))]}
        "$push" --queue "$q" --id "late$i" --no-journal sleep '{"ms":30}' \
            >>"$tmp/late-acked" 2>>"$tmp/late-err" || true
        i=$((i + 1))
    done
) &
pids+=($!)

ok_total() {
    local t=0 q
    for q in "${queues[@]}"; do t=$((t + $(ok_of "$q"))); done
    echo "$t"
}
# kill the first primary once a fifth of the jobs are done
for i in $(seq 600); do
    [ "$(ok_total)" -ge 600 ] && break
    sleep 0.1
done
victim=${ports[0]}
vpid=$(cat "$tmp/cluster/node-$victim/redis.pid")
# the queues the victim owns
mine=()
for q in "${queues[@]}"; do
    s=$(rcli CLUSTER KEYSLOT "$prefix:{$q}")
    owner=$(rcli CLUSTER SHARDS | awk -v s="$s" '
        /^slots$/ {getline a; getline b; lo=a; hi=b}
        /^port$/ {getline p}
        /^role$/ {getline r; if (r == "master" && s >= lo && s <= hi) {print p; exit}}')
    [ "$owner" = "$victim" ] && mine+=("$q")
done
done_before=$(ok_total)
kill -9 "$vpid"
t_kill=$(date +%s%N)
"$src/tests/support/redis-cluster.sh" wait "$tmp/cluster" >/dev/null
t_ok=$(date +%s%N)
# the first task completed on the promoted replica's queues
before=0
for q in "${mine[@]}"; do before=$((before + $(ok_of "$q"))); done
t_resume=""
for i in $(seq 1200); do
    now=0
    for q in "${mine[@]}"; do now=$((now + $(ok_of "$q"))); done
    if [ "$now" -gt "$before" ]; then t_resume=$(date +%s%N); break; fi
    sleep 0.05
done
[ -n "$t_resume" ] || fail "no task of the failed-over queues completed"
sleep 2
touch "$tmp/stop-pushing"

# every job that exists ends completed
for i in $(seq 1200); do
    left=0
    for q in "${queues[@]}"; do
        n=$(left_of "$q")
        [ "$n" -lt 0 ] && { left=unknown; break; }
        left=$((left + n))
    done
    [ "$left" = 0 ] && break
    sleep 0.1
done
[ "$left" = 0 ] || fail "$left tasks still waiting or running"

# the --batch --wait ended with every job completed
rc=0
wait "$wait_pid" || rc=$?
[ $rc -eq 0 ] || fail "--batch --wait exit $rc: $(tail -5 "$tmp/wait.err")"
[ "$(grep -c '"state":"completed"' "$tmp/wait.out")" = 24 ] ||
    fail "--batch --wait: $(cat "$tmp/wait.out" "$tmp/wait.err")"

# the coordinator's figures per primary: the 12 queues, none on the dead
# one (its fields deleted once it is no longer a primary)
fields=""
for i in $(seq 300); do
    fields=$(rcli HGETALL "$prefix:metrics" | paste - - | grep '^primary:.*:queues' || true)
    sum=$(awk '{s += $2} END {print s + 0}' <<<"$fields")
    [ "$sum" = 12 ] && ! grep -q "^primary:127.0.0.1:$victim:" <<<"$fields" && break
    sleep 0.1
done
[ "$sum" = 12 ] || fail "metrics per primary: $fields"
if grep -q "^primary:127.0.0.1:$victim:" <<<"$fields"; then
    fail "the dead primary $victim is still in the metrics: $fields"
fi
[ "$(wc -l <<<"$fields")" = 3 ] || fail "not 3 primaries in the metrics: $fields"

# every acknowledged job: its state and attempts, one redis-cli per queue
for q in "${queues[@]}"; do
    for k in $(seq 0 249); do echo "j$k"; done >"$tmp/ids-$q"
done
while read -r id; do
    echo "$id" >>"$tmp/ids-${queues[$((${id#late} % 12))]}"
done <"$tmp/late-acked"
lost=0 dups=0 total=0
for q in "${queues[@]}"; do
    # state and attempt of each job ("" "" for a job that is not there)
    res=$(sed "s|.*|FCALL_RO llmb_job 1 $prefix:{$q} & state 0:attempt|" "$tmp/ids-$q" |
          rcli | grep -v '^-> Redirected' | paste - - | awk '
              $1 == "" {lost++; next}
              {total++} $1 != "completed" {bad++} $2 > 1 {dup++}
              END {print lost + 0, total + 0, bad + 0, dup + 0}')
    read -r l t b d <<<"$res"
    [ "$b" = 0 ] || fail "$b jobs of $q did not complete"
    lost=$((lost + l)) total=$((total + t)) dups=$((dups + d))
done
late=$(wc -l <"$tmp/late-acked")
echo "failover: killed primary $victim owning ${#mine[@]} of 12 queues" \
     "with $done_before of 3000 jobs done; cluster_state:ok after" \
     "$(( (t_ok - t_kill) / 1000000 )) ms, first task completed on the" \
     "promoted replica $(( (t_resume - t_kill) / 1000000 )) ms after the kill;" \
     "jobs acknowledged: $((3000 + late)), of them lost: $lost;" \
     "tasks run more than once: $dups of $total"
echo ok
