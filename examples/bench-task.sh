#!/bin/sh
# An example benchmark program for the exec executor: reads the task JSON
# on stdin, "runs" one test case (a short sleep whose length depends on
# the task index), and prints its measurements as a JSON object. Any
# program that reads JSON on stdin and writes a JSON object on stdout can
# take its place (docs/executors.md).
#
#   llmb-worker --handler 'bench=exec:/path/to/bench-task.sh'
#   llmb-push --tasks 20 --wait bench '{"case":"demo"}'
set -eu
input=$(cat)
task=$(printf '%s' "$input" | sed -n 's/.*"task":[[:space:]]*\([0-9][0-9]*\).*/\1/p')
attempt=$(printf '%s' "$input" | sed -n 's/.*"attempt":[[:space:]]*\([0-9][0-9]*\).*/\1/p')
task=${task:-0}
# A spread of latencies, 20..119 ms, that differs per task.
ms=$(( 20 + (task * 37) % 100 ))
sleep "$(printf '0.%03d' "$ms")"
tokens=$(( 100 + (task * 13) % 50 ))
passed=$(( task % 7 != 0 ))
printf '{"latency_ms": %d, "tokens": %d, "passed": %d, "attempt": %s}\n' \
  "$ms" "$tokens" "$passed" "${attempt:-1}"
