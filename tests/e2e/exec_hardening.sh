#!/usr/bin/env bash
# exec hardening and secrets: a real llmb-worker runs exec programs with an
# API key and a Redis password-like LLMB_* value in its environment.
#   - the program sees only PATH, HOME, LANG, the --exec-env names and the
#     task's LLMB_* variables: no secret, no LLMB_REDIS_URL;
#   - --exec-rlimit-cpu/-as/-nofile are in force in the program, and a
#     program spinning past its CPU limit is killed (SIGXCPU) and fails;
#   - afterwards no key name or value anywhere in Redis (SCAN of the whole
#     server, every type read) contains the secret.
set -euo pipefail
url=$(cat "$LLMB_TEST_REDIS_URL_FILE")
worker="$LLMB_BUILD_DIR/worker/llmb-worker"
push="$LLMB_BUILD_DIR/tools/push/llmb-push"
prefix="e2eexec$$"
secret="sk-llmbtest-$$-$RANDOM$RANDOM-do-not-store"
rcli() { redis-cli -u "$url" "$@"; }
tmp=$(mktemp -d)
wpid=""
cleanup() {
    [[ -n $wpid ]] && kill -KILL "$wpid" 2>/dev/null || true
    rcli --scan --pattern "$prefix:*" | xargs -r redis-cli -u "$url" del >/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [[ -f $tmp/worker.log ]] && tail -n 20 "$tmp/worker.log" >&2; exit 1; }

# The probe prints its environment (one string, quotes and backslashes
# dropped) and its limits as a JSON object; burn spins on the CPU.
cat > "$tmp/probe.sh" <<'SH'
#!/bin/sh
cat >/dev/null
envs=$(env | tr -d '"\\' | tr '\n' '|')
printf '{"env":"%s","cpu":"%s","as":"%s","nofile":"%s"}\n' \
    "$envs" "$(ulimit -t)" "$(ulimit -v)" "$(ulimit -n)"
SH
cat > "$tmp/burn.sh" <<'SH'
#!/bin/sh
while :; do :; done
SH
chmod +x "$tmp/probe.sh" "$tmp/burn.sh"

env OPENAI_API_KEY="$secret" KEEP_ME=kept \
    LLMB_REDIS_URL="$url" LLMB_PREFIX="$prefix" \
    "$worker" --queues hard --capacity 2 --heartbeat-ms 200 --lease-ms 5000 \
    --handler "probe=exec:$tmp/probe.sh,burn=exec:$tmp/burn.sh" \
    --exec-env KEEP_ME --exec-rlimit-cpu 1 --exec-rlimit-as 1073741824 \
    --exec-rlimit-nofile 64 > "$tmp/worker.log" 2>&1 &
wpid=$!

export LLMB_REDIS_URL=$url LLMB_PREFIX=$prefix
wait_state() { # job, wanted state
    local s=""
    for _ in $(seq 300); do
        s=$(rcli FCALL_RO llmb_job 1 "$prefix:{hard}" "$1" state)
        [[ $s == "$2" ]] && return 0
        sleep 0.1
    done
    fail "job $1 is \"$s\", not $2"
}
"$push" --queue hard --id probe1 probe '{"secret_free":true}' >/dev/null
"$push" --queue hard --id burn1 --retries 0 --timeout 60 burn >/dev/null
wait_state probe1 completed
result=$(rcli FCALL_RO llmb_job 1 "$prefix:{hard}" "probe1" 0:result)
grep -q '"cpu":"1"' <<<"$result" || fail "RLIMIT_CPU not set: $result"
grep -q '"as":"1048576"' <<<"$result" || fail "RLIMIT_AS not set: $result"
grep -q '"nofile":"64"' <<<"$result" || fail "RLIMIT_NOFILE not set: $result"
grep -q '|KEEP_ME=kept|' <<<"|$result" || fail "--exec-env KEEP_ME not passed: $result"
grep -q '|PATH=' <<<"|$result" || fail "no PATH: $result"
grep -q '|LLMB_JOB_ID=probe1|' <<<"|$result" || fail "no LLMB_JOB_ID: $result"
grep -q 'OPENAI_API_KEY' <<<"$result" && fail "API key reached the program: $result"
grep -q 'LLMB_REDIS_URL\|LLMB_PREFIX' <<<"$result" && fail "worker LLMB_* reached the program: $result"
names=$(tr '|' '\n' <<<"${result#*\"env\":\"}" | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' | sort | tr '\n' ' ')
for n in $names; do
    case $n in
    PATH | HOME | LANG | KEEP_ME | PWD | SHLVL | _ | LLMB_JOB_ID | LLMB_TASK | \
        LLMB_ATTEMPT | LLMB_TASKS | LLMB_QUEUE | LLMB_TYPE) ;;
    *) fail "unexpected variable $n in the program's environment: $names" ;;
    esac
done

wait_state burn1 failed
err=$(rcli FCALL_RO llmb_job 1 "$prefix:{hard}" "burn1" error)
grep -q 'SIGXCPU\|SIGKILL' <<<"$err" || fail "CPU limit did not stop burn: $err"

# --exec-env refuses LLMB_* names (they can hold the Redis password)
set +e
out=$("$worker" --exec-env LLMB_REDIS_URL --handler 'x=noop' 2>&1); rc=$?
set -e
[[ $rc -eq 78 ]] || fail "--exec-env LLMB_REDIS_URL exit $rc: $out"
grep -q 'not LLMB_' <<<"$out" || fail "$out"

# Secrets never reach Redis: read every key of the whole server.
kill -TERM "$wpid"; wait "$wpid" || true; wpid=""
found=0; keys=0
while IFS= read -r k; do
    keys=$((keys + 1))
    case $(rcli TYPE "$k") in
    string) v=$(rcli GET "$k") ;;
    hash) v=$(rcli HGETALL "$k") ;;
    list) v=$(rcli LRANGE "$k" 0 -1) ;;
    set) v=$(rcli SMEMBERS "$k") ;;
    zset) v=$(rcli ZRANGE "$k" 0 -1) ;;
    stream) v=$(rcli XRANGE "$k" - +) ;;
    *) v="" ;;
    esac
    if grep -qF "$secret" <<<"$k$v"; then
        echo "secret found in key $k" >&2
        found=1
    fi
done < <(rcli --scan)
grep -qF "$secret" "$tmp/worker.log" && fail "secret in the worker's log"
(( keys > 0 )) || fail "scan saw no keys"
(( found == 0 )) || fail "the API key reached Redis"
echo "ok: $keys keys scanned, no secret; limits and environment as configured"
