#!/usr/bin/env bash
# Runs scripts/demo the way a newcomer does (non-interactively, on this
# build) and checks that it ends with a completed, aggregated job and an
# LLM benchmark table, prints the stats and workers, and leaves nothing
# behind: no process of its session, no redis-server on its port, no temp
# dir.
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
tmp=$(mktemp -d)
out=$tmp/out
mkdir "$tmp/t"
trap 'rm -rf "$tmp"' EXIT

# Its own session, so that every process it starts can be found after.
set +e
TMPDIR=$tmp/t LLMB_DEMO_BUILD_DIR=$LLMB_BUILD_DIR timeout 150 \
    setsid "$LLMB_SOURCE_DIR/scripts/demo" --tasks 20 </dev/null >"$out" 2>&1 &
pid=$!
wait $pid
rc=$?
set -e
[ $rc -eq 0 ] || { cat "$out" >&2; fail "scripts/demo exited $rc"; }

grep -q '"state": "completed"' "$out" || fail "no completed job in the output"
grep -q '"latency_ms"' "$out" || fail "no aggregate of the task results"
grep -q '"p99"' "$out" || fail "no percentiles"
grep -q '"ok": 20' "$out" || fail "not all 20 tasks ok"
grep -q '^TTFT (ms)' "$out" || fail "no LLM serving benchmark table"
grep -q '^requests  *60 (ok 60, failed 0)' "$out" || fail "not all 60 LLM requests ok"
grep -q '^QUEUE' "$out" || fail "no llmb stats table"
grep -q 'demo-worker-3' "$out" || fail "no llmb workers table"
grep -q '^llmb_workers_total' "$out" || fail "no /metrics lines"

# what it stopped may take a moment to exit on a loaded machine
for _ in $(seq 100); do pgrep -s "$pid" >/dev/null || break; sleep 0.05; done
if pgrep -s "$pid" >/dev/null; then
    pgrep -a -s "$pid" >&2
    fail "processes of the demo left running"
fi
port=$(sed -n 's/.*starting redis-server on 127.0.0.1:\([0-9]*\).*/\1/p' "$out" | tail -1)
[ -n "$port" ] || fail "no redis port in the output"
if redis-cli -p "$port" ping >/dev/null 2>&1; then
    fail "the demo's redis-server on port $port is still running"
fi
[ -z "$(ls -A "$tmp/t")" ] || fail "temp files left behind: $(ls "$tmp/t")"
echo "scripts/demo: completed job, aggregate, LLM table, stats, workers, metrics; nothing left behind"
