#!/usr/bin/env bash
# llmb-push against a real Redis Cluster (3 primaries, 3 replicas; the
# ctest fixture redis_cluster): one job per queue and NDJSON batches over
# 30 queues land on the primary of each queue's slot, every queue spread
# over the three shards, and llmb lists and finds them all.
set -euo pipefail
. "$(dirname "$0")/cluster_lib.sh"
admin="$1"
cluster_test "e2eclu$$"
waiting() { rcli FCALL_RO llmb_stats 1 "$prefix:{$1}" | sed -n 2p; }

# one job to each of 10 queues: each on its own primary, registered
for i in $(seq 0 9); do
    id=$("$push" --queue "one$i" --id "j$i" echo '{"n":1}')
    [ "$id" = "j$i" ] || fail "single push to one$i answered $id"
    [ "$(rcli FCALL_RO llmb_job 1 "$prefix:{one$i}" "j$i" state)" = pending ] ||
        fail "job j$i not pending in queue one$i"
    rcli SISMEMBER "$prefix:queues" "one$i" | grep -qx 1 ||
        fail "queue one$i not registered"
done

# a batch over 30 queues, in runs of 25 lines that come back to each
# queue several times: 3000 jobs, 100 a queue
for round in 0 1 2 3; do
    for q in $(seq 0 29); do
        for k in $(seq 0 24); do
            printf '{"type":"echo","queue":"bq%d","id":"r%d-%d"}\n' \
                "$q" "$round" "$k"
        done
    done
done >"$tmp/jobs.ndjson"
"$push" --batch "$tmp/jobs.ndjson" >"$tmp/ids" 2>"$tmp/err" ||
    fail "batch exit $?: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/ids")" = 3000 ] || fail "$(wc -l <"$tmp/ids") ids, not 3000"
total=0
for q in $(seq 0 29); do
    n=$(waiting "bq$q")
    [ "$n" = 100 ] || fail "queue bq$q has $n pending, not 100"
    total=$((total + n))
done
[ "$total" = 3000 ] || fail "total $total"
[ "$(rcli SCARD "$prefix:queues")" = 40 ] || fail "$(rcli SCARD "$prefix:queues") queues registered"

# the queues use all three primaries
for p in "${ports[@]:0:3}"; do
    n=$(redis-cli -p "$p" --scan --pattern "$prefix:{bq*}:pl" | wc -l)
    [ "$n" -gt 0 ] || fail "primary $p holds none of the 30 queues"
done

# the same batch again: every id exists, nothing doubles
"$push" --batch "$tmp/jobs.ndjson" >/dev/null 2>"$tmp/err" ||
    fail "second batch exit $?: $(cat "$tmp/err")"
[ "$(waiting bq7)" = 100 ] || fail "second batch doubled bq7"

# llmb sees every shard: the 40 queues with their counts, a job found
# by its id alone
"$admin" queues >"$tmp/queues" || fail "llmb queues exit $?"
[ "$(grep -c '^bq' "$tmp/queues")" = 30 ] || fail "$(cat "$tmp/queues")"
grep -q '^bq7  *100 ' "$tmp/queues" || fail "bq7: $(grep '^bq7' "$tmp/queues")"
"$admin" show j4 | grep -q 'one4' || fail "llmb show j4: $("$admin" show j4 2>&1)"
echo ok
