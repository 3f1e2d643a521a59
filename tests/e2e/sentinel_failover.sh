#!/usr/bin/env bash
# Every llmb program on a Sentinel-managed primary (1 primary, 1 replica,
# 3 sentinels: tests/support/redis-sentinel.sh), through the URL
# redis+sentinel://S1,S2,S3/llmbtest, across a kill -9 of the primary:
#  - a job of 3000 tasks drains through a real llmb-worker (an exec
#    handler that logs each run) and llmb-coordinator; one llmb-push after
#    the other pushes one-task jobs all along;
#  - once 600 tasks are done, the replication link is cut (the replica's
#    masterauth made wrong, then CLIENT KILL TYPE replica: it cannot
#    resynchronise) and CUT_MS (300) later the primary is killed (kill -9),
#    so that the writes of those 300 ms are on the primary only, as when a
#    replica lags; the sentinels promote the replica; the worker, the
#    coordinator and llmb-push find it again through the sentinels;
#  - the old primary's server is started again, empty, as a replica;
#  - every task ends: the big job and every job a push acknowledged and
#    that the new primary has are completed; llmb reads them through
#    the sentinels.
# Run twice: with asynchronous replication only (--wait-replicas 0) and
# with --wait-replicas 1. Measured, printed, not asserted: the time from
# the kill to the first task completed on the new primary, tasks run more
# than once (duplicates) and acknowledged pushes the new primary lacks
# (losses). With --wait-replicas 1 llmb-push confirms only a push that
# WAIT saw on the replica (else it says NOREPLICAS, not confirmed), so
# there no loss is allowed.
set -euo pipefail
command -v redis-sentinel >/dev/null || { echo "redis-sentinel missing (scripts/deps)"; exit 77; }
support="$LLMB_SOURCE_DIR/tests/support/redis-sentinel.sh"
push="$LLMB_BUILD_DIR/tools/push/llmb-push"
worker="$LLMB_BUILD_DIR/worker/llmb-worker"
coord="$LLMB_BUILD_DIR/coordinator/llmb-coordinator"
admin="$LLMB_BUILD_DIR/tools/admin/llmb"
TASKS=${LLMB_FAILOVER_TASKS:-3000}
KILL_AT=$((TASKS / 5))
CUT_MS=${LLMB_FAILOVER_CUT_MS:-300}
tmp=$(mktemp -d)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for d in "$tmp"/sen-*; do [ -d "$d" ] && "$support" stop "$d" >/dev/null 2>&1; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() { echo "FAIL: $*" >&2; for f in "$tmp"/*.log; do echo "== $f" >&2; tail -n 15 "$f" >&2; done; exit 1; }
now_ms() { date +%s%3N; }

# the exec handler: one line per run, "job task attempt"
cat >"$tmp/rec.sh" <<EOF
#!/bin/sh
echo "\$LLMB_JOB_ID \$LLMB_TASK \$LLMB_ATTEMPT" >>"$tmp/runs.txt"
echo '{}'
EOF
chmod +x "$tmp/rec.sh"

# runs one scenario; $1 = --wait-replicas value
scenario() {
    local wr=$1 sd url prefix old new t_kill t_promoted t_resume
    local ok0 ok i id state lost=0 acked=0 warned runs dups job n t_rejoined
    local replica out
    sd="$tmp/sen-$wr"
    prefix="e2esen$$w$wr"
    : >"$tmp/runs.txt"
    "$support" start "$sd" >"$tmp/support.log" 2>&1 || fail "cannot start the deployment"
    url=$(cat "$sd/sentinel.url")
    export LLMB_REDIS_URL=$url LLMB_PREFIX=$prefix LLMB_WAIT_REPLICAS=$wr
    old=$(cat "$sd/primary.port")
    pcli() { redis-cli -p "$("$support" primary "$sd")" "$@"; }

    job=$("$push" --no-journal --queue big --tasks "$TASKS" --retries 10 \
          --backoff-ms 100 rec '{}' 2>"$tmp/push-big.log") || fail "push of the big job"
    "$coord" --tick-ms 100 --liveness-ms 500 --metrics-addr '' \
        2>"$tmp/coord-$wr.log" &
    pids+=($!)
    "$worker" --queues big,small --capacity 16 --heartbeat-ms 1000 \
        --lease-ms 5000 --handler "rec=exec:$tmp/rec.sh" --id "sw$$-$wr" \
        2>"$tmp/worker-$wr.log" &
    pids+=($!)
    # one push after the other, all along: "ms id" per acknowledged job
    : >"$tmp/acked.txt"
    (
        k=0
        while [ ! -e "$tmp/stop-pushing" ]; do
            k=$((k + 1))
            if out=$("$push" --no-journal --queue small --retries 10 \
                     --redis-timeout-ms 2000 rec '{}' 2>>"$tmp/pusher-$wr.log"); then
                echo "$(now_ms) $out" >>"$tmp/acked.txt"
            fi
            sleep 0.02
        done
    ) &
    local pusher=$!

    # kill -9 of the primary once KILL_AT tasks are done
    for i in $(seq 1200); do
        ok=$(pcli HGET "$prefix:{big}:counts" ok); ok=${ok:-0}
        [ "$ok" -ge "$KILL_AT" ] && break
        sleep 0.05
    done
    [ "$ok" -ge "$KILL_AT" ] || fail "only $ok tasks done before the kill"
    replica=$(cat "$sd/replica.port")
    redis-cli -p "$replica" CONFIG SET masterauth cut-link >/dev/null
    redis-cli -p "$old" CLIENT KILL TYPE replica >/dev/null
    sleep "$(awk -v ms="$CUT_MS" 'BEGIN { print ms / 1000 }')"
    t_kill=$(now_ms)
    kill -KILL "$(cat "$sd/redis-$old/pid")"
    redis-cli -p "$replica" CONFIG SET masterauth "" >/dev/null
    new=$("$support" promoted "$sd" "$old") || fail "no failover"
    t_promoted=$(now_ms)
    ok0=$(redis-cli -p "$new" HGET "$prefix:{big}:counts" ok); ok0=${ok0:-0}
    t_resume=""
    for i in $(seq 1200); do
        ok=$(redis-cli -p "$new" HGET "$prefix:{big}:counts" ok); ok=${ok:-0}
        if [ "$ok" -gt "$ok0" ]; then t_resume=$(now_ms); break; fi
        sleep 0.02
    done
    [ -n "$t_resume" ] || fail "no task completed on the new primary in 24 s"
    # the old primary's machine comes back: a replica again (without one,
    # every WAIT 1 would wait its whole --wait-replicas-ms)
    "$support" rejoin "$sd" "$old" >>"$tmp/support.log" 2>&1 || fail "rejoin"
    t_rejoined=$(now_ms)
    sleep 2
    touch "$tmp/stop-pushing"
    wait "$pusher" || true
    rm -f "$tmp/stop-pushing"

    # every task ends
    for i in $(seq 1200); do
        state=$(redis-cli -p "$new" FCALL_RO llmb_job 1 "$prefix:{big}" "$job" state)
        n=$(redis-cli -p "$new" FCALL_RO llmb_stats 1 "$prefix:{small}" |
            paste - - | awk '$1 == "pending" || $1 == "delayed" ||
                             $1 == "running" || $1 == "to_aggregate" { s += $2 }
                             END { print s + 0 }')
        [ "$state" = completed ] && [ "$n" = 0 ] && break
        sleep 0.1
    done
    [ "$state" = completed ] || fail "the big job is $state"
    [ "$(redis-cli -p "$new" HGET "$prefix:{big}:counts" ok)" -ge "$TASKS" ] ||
        fail "not every task of the big job completed"
    while read -r t id; do
        acked=$((acked + 1))
        state=$(redis-cli -p "$new" FCALL_RO llmb_job 1 "$prefix:{small}" "$id" state)
        if [ -z "$state" ]; then
            lost=$((lost + 1))
            echo "lost: job $id acknowledged at $t (kill at $t_kill)" >>"$tmp/lost-$wr.txt"
        else
            for i in $(seq 100); do
                [ "$state" = completed ] && break
                sleep 0.1
                state=$(redis-cli -p "$new" FCALL_RO llmb_job 1 "$prefix:{small}" "$id" state)
            done
            [ "$state" = completed ] || fail "pushed job $id is $state"
        fi
    done <"$tmp/acked.txt"
    [ "$acked" -gt 0 ] || fail "no push was acknowledged"
    # llmb finds the new primary through the sentinels
    out=$("$admin" show --json "big/$job" 2>"$tmp/admin.log") ||
        fail "llmb show through the sentinels: $(cat "$tmp/admin.log")"
    grep -q '"state": *"completed"' <<<"$out" || fail "llmb show: $out"

    runs=$(wc -l <"$tmp/runs.txt")
    dups=$(sort "$tmp/runs.txt" | awk '{print $1" "$2}' | uniq -d | wc -l)
    warned=$(cat "$tmp"/*-"$wr".log | grep -c "replicas after" || true)
    echo "sentinel failover, --wait-replicas $wr, link cut $CUT_MS ms before the kill: promoted after $((t_promoted - t_kill)) ms," \
         "tasks completing again after $((t_resume - t_kill)) ms," \
         "old primary back as a replica after $((t_rejoined - t_kill)) ms;" \
         "$TASKS + $acked tasks, $runs runs, $dups tasks run more than once;" \
         "$acked pushes acknowledged, $lost lost; $warned writes short of replicas"
    if [ "$wr" -gt 0 ] && [ "$lost" -gt 0 ]; then
        fail "with --wait-replicas $wr, $lost acknowledged pushes were lost: $(cat "$tmp/lost-$wr.txt")"
    fi
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
    "$support" stop "$sd" >/dev/null
    unset LLMB_REDIS_URL LLMB_PREFIX LLMB_WAIT_REPLICAS
}

scenario 0
scenario 1
