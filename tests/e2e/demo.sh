#!/usr/bin/env bash
# Runs scripts/demo the way a newcomer does (non-interactively, on this
# build) and checks that it ends with a completed, aggregated job, prints
# the stats and workers, and leaves no process and no temp dir behind.
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
before=$(ls -d /tmp/llmb-demo.* 2>/dev/null | sort || true)

LLMB_DEMO_BUILD_DIR=$LLMB_BUILD_DIR timeout 120 \
    "$LLMB_SOURCE_DIR/scripts/demo" --tasks 20 </dev/null >"$out" 2>&1 ||
    { cat "$out" >&2; fail "scripts/demo exited non-zero"; }

grep -q '"state": "completed"' "$out" || fail "no completed job in the output"
grep -q '"latency_ms"' "$out" || fail "no aggregate of the task results"
grep -q '"p99"' "$out" || fail "no percentiles"
grep -q '"ok": 20' "$out" || fail "not all 20 tasks ok"
grep -q '^TTFT (ms)' "$out" || fail "no LLM serving benchmark table"
grep -q '^requests  *60 (ok 60, failed 0)' "$out" || fail "not all 60 LLM requests ok"
grep -q '^QUEUE' "$out" || fail "no llmb stats table"
grep -q 'demo-worker-3' "$out" || fail "no llmb workers table"
grep -q '^llmb_workers_total' "$out" || fail "no /metrics lines"

# Nothing left behind: no process of ours from this build, no temp dir.
sleep 0.5
if pgrep -f "$LLMB_BUILD_DIR/(worker/llmb-worker|coordinator/llmb-coordinator).*demo" >/dev/null ||
   pgrep -af "llmb-demo\." | grep -q redis-server ||
   pgrep -af "mock_llm.py" | grep -q -- "--ttft-ms 80 --itl-ms 15 --jitter 0.3"; then
    pgrep -af "llmb-(worker|coordinator)|llmb-demo" >&2 || true
    fail "processes left running"
fi
after=$(ls -d /tmp/llmb-demo.* 2>/dev/null | sort || true)
[ "$before" = "$after" ] || fail "temp dir left behind: $after"
echo "scripts/demo: completed job, aggregate, stats, workers, metrics; nothing left running"
