#!/usr/bin/env bash
# The names users mistype: an unknown flag suggests the one meant, the
# worker takes llmb-push's --queue for its --queues and its old
# --command-timeout-ms for --redis-timeout-ms with a warning, and a
# set LLMB_* variable that a program does not read is warned about, unless
# another llmb program reads it (then only when it looks like one of this
# program's). Every variable of every option table must be known to every
# other program (lib/config.c known_env), or sharing one environment
# between the programs would print warnings.
set -uo pipefail
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
bins=(worker/llmb-worker coordinator/llmb-coordinator tools/push/llmb-push
      tools/admin/llmb)
# Start from an environment without LLMB_* (ctest's own are known anyway).
for v in $(compgen -e | grep '^LLMB_'); do
    case $v in LLMB_BUILD_DIR | LLMB_SOURCE_DIR | LLMB_TEST_*) ;; *) unset "$v" ;; esac
done

vars_of() { "$LLMB_BUILD_DIR/$1" --help-markdown | grep -o '`LLMB_[A-Z_]*`' | tr -d '`'; }
all=$(for b in "${bins[@]}"; do vars_of "$b"; done | sort -u)
for b in "${bins[@]}"; do
    own=$(vars_of "$b" | sort -u)
    foreign=$(comm -23 <(echo "$all") <(echo "$own"))
    err=$(env $(sed 's/$/=1/' <<<"$foreign") "$LLMB_BUILD_DIR/$b" --dump-config 2>&1 >/dev/null)
    while IFS= read -r line; do
        [ -z "$line" ] && continue
        grep -q "reads LLMB_[A-Z_]*, not LLMB_[A-Z_]* (that one is " <<<"$line" ||
            fail "$b with the other programs' variables set: $line"
    done <<<"$err"
done

W=$LLMB_BUILD_DIR/worker/llmb-worker
expect() { # expect WANT_RC WANT_STDERR -- CMD...
    local rc_want=$1 err_want=$2; shift 3
    local err rc
    err=$("$@" 2>&1 >/dev/null); rc=$?
    [ "$rc" = "$rc_want" ] || fail "$*: exit $rc, want $rc_want ($err)"
    [ "$err" = "$err_want" ] || fail "$*: stderr \"$err\", want \"$err_want\""
}
expect 0 "llmb-worker: warning: llmb-worker reads LLMB_QUEUES, not LLMB_QUEUE (that one is llmb-push's)" \
    -- env LLMB_QUEUE=jobs "$W" --dump-config
expect 0 "llmb-worker: warning: --queue is deprecated; use --queues" \
    -- "$W" --queue jobs --dump-config
[ "$("$W" --queue jobs --dump-config 2>/dev/null | grep '^queues')" = "queues = jobs" ] ||
    fail "--queue jobs does not set queues"
# The worker's Redis command limit has the coordinator's and llmb-push's
# name now; the old flag and variable still work.
expect 0 "llmb-worker: warning: --command-timeout-ms is deprecated; use --redis-timeout-ms" \
    -- "$W" --command-timeout-ms 900 --dump-config
expect 0 "llmb-worker: warning: LLMB_COMMAND_TIMEOUT_MS is deprecated; use LLMB_REDIS_TIMEOUT_MS" \
    -- env LLMB_COMMAND_TIMEOUT_MS=900 "$W" --dump-config
[ "$(LLMB_COMMAND_TIMEOUT_MS=900 "$W" --dump-config 2>/dev/null | grep '^redis-timeout-ms')" = "redis-timeout-ms = 900" ] ||
    fail "LLMB_COMMAND_TIMEOUT_MS=900 does not set redis-timeout-ms"
expect 0 "llmb-worker: warning: LLMB_COMMAND_TIMEOUT_MS is ignored: it is the old name of LLMB_REDIS_TIMEOUT_MS, which is set" \
    -- env LLMB_COMMAND_TIMEOUT_MS=900 LLMB_REDIS_TIMEOUT_MS=800 "$W" --dump-config
expect 64 'llmb-worker: unknown option "--queus"; did you mean --queues? See llmb-worker --help' \
    -- "$W" --queus jobs
expect 64 'llmb-push: unknown option "--wiat"; did you mean --wait? See llmb-push --help' \
    -- "$LLMB_BUILD_DIR/tools/push/llmb-push" --wiat x
expect 0 "llmb-coordinator: warning: LLMB_TICKMS is set, but no llmb program reads it; did you mean LLMB_TICK_MS?" \
    -- env LLMB_TICKMS=5 "$LLMB_BUILD_DIR/coordinator/llmb-coordinator" --dump-config
expect 0 "llmb-push: warning: LLMB_NOTHING_AT_ALL is set, but no llmb program reads it" \
    -- env LLMB_NOTHING_AT_ALL=1 "$LLMB_BUILD_DIR/tools/push/llmb-push" --dump-config
# Common and other programs' variables: no word.
expect 0 "" -- env LLMB_REDIS_URL=redis://127.0.0.1:1 LLMB_CAPACITY=3 \
    "$LLMB_BUILD_DIR/tools/push/llmb-push" --dump-config
# A variable named by the configuration (an llm endpoint's key) is read.
expect 0 "" -- env LLMB_MY_KEY=k "$W" --llm-endpoint 'a=http://h/v1,key_env=LLMB_MY_KEY' --dump-config

(( fails == 0 )) && echo "config_env: ok"
(( fails == 0 ))
