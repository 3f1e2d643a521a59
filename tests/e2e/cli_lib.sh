# Helpers for the e2e tests of the llmb admin CLI (tests/e2e/cli_*.sh),
# sourced by each of them. A test runs the real llmb binary (its path is
# the script's first argument) against the private redis-server of the
# ctest "redis" fixture, under a key prefix of its own, and plays pusher
# and worker itself with redis-cli and the llmb functions.
#
#   run ARGS...         runs llmb (bounded); sets RC, OUT, ERR; fails on a
#                       sanitizer report
#   expect_rc N         the last run exited N
#   expect_out TEXT     stdout of the last run contains TEXT
#   expect_err TEXT     stderr of the last run contains TEXT
#   expect_err_is TEXT  stderr of the last run is exactly TEXT
#   check PY_EXPR       stdout of the last run is one JSON document d, and
#                       the Python expression is true of it
#   rcli ARGS...        redis-cli on the test server
#   push Q DOC          FCALL llmb_push on queue Q, prints the id
#   claim Q W N         FCALL llmb_claim for worker W
#   complete Q W REF RESULT / fail_task Q W REF KIND ERROR
#                       report on a task the worker holds
#   free_port           prints a TCP port of 127.0.0.1 that is free now
#   pids+=($!)          a process started in the background: stopped
#                       (SIGTERM, then waited for) at exit
set -euo pipefail

LLMB=${1:?usage: $0 PATH_TO_LLMB}
NAME=$(basename "$0" .sh)

if ! command -v python3 >/dev/null || ! command -v redis-cli >/dev/null; then
    echo "$NAME: skipped: needs python3 and redis-cli" >&2
    exit 77
fi
[[ -x $LLMB ]] || { echo "$NAME: no llmb binary at $LLMB" >&2; exit 1; }
url_file=${LLMB_TEST_REDIS_URL_FILE:?"LLMB_TEST_REDIS_URL_FILE is not set (run this under ctest)"}
URL=$(cat "$url_file")

PREFIX="t$$-$NAME"
export LLMB_REDIS_URL=$URL
export LLMB_PREFIX=$PREFIX
unset LLMB_CONFIG LLMB_LOG_LEVEL

TMP=$(mktemp -d)
pids=()
cleanup() {
    local keys p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    keys=$(timeout 10 redis-cli -u "$URL" --scan --pattern "$PREFIX:*" 2>/dev/null || true)
    if [[ -n $keys ]]; then
        xargs -n 500 timeout 10 redis-cli -u "$URL" UNLINK <<<"$keys" >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

CMD=""
RC=0
OUT=""
ERR=""

fail() {
    {
        echo "FAIL ($NAME): $*"
        echo "  command: llmb $CMD"
        echo "  exit:    $RC"
        echo "  stdout:"
        sed 's/^/    /' <<<"$OUT"
        echo "  stderr:"
        sed 's/^/    /' <<<"$ERR"
    } >&2
    exit 1
}

run() {
    CMD="$*"
    RC=0
    timeout 30 "$LLMB" "$@" >"$TMP/out" 2>"$TMP/err" || RC=$?
    OUT=$(cat "$TMP/out")
    ERR=$(cat "$TMP/err")
    # Under -DLLMB_SANITIZE a leak also exits 1: look at what was said.
    if grep -Eq 'Sanitizer|runtime error:' <<<"$ERR"; then
        fail "sanitizer report"
    fi
}

expect_rc() {
    [[ $RC -eq $1 ]] || fail "expected exit $1"
}

expect_out() {
    grep -qF -- "$1" <<<"$OUT" || fail "stdout lacks \"$1\""
}

expect_err() {
    grep -qF -- "$1" <<<"$ERR" || fail "stderr lacks \"$1\""
}

expect_err_is() {
    [[ $ERR == "$1" ]] || fail "stderr is not \"$1\""
}

check() {
    local msg
    if ! msg=$(python3 - "$1" "$TMP/out" 2>&1 <<'EOF'
import json, sys
expr, path = sys.argv[1], sys.argv[2]
with open(path) as f:
    d = json.load(f)
ok = eval(expr, {"d": d})
if not ok:
    print("false: " + expr)
    sys.exit(1)
EOF
    ); then
        fail "JSON check failed: $msg"
    fi
}

rcli() {
    timeout 10 redis-cli -u "$URL" "$@"
}

# Runs a function; an error reply (redis-cli prints it and exits 0) fails
# the test.
fcall() {
    local out
    out=$(rcli FCALL "$@")
    if [[ $out == ERR* ]]; then
        echo "FAIL ($NAME): FCALL $*: $out" >&2
        exit 1
    fi
    printf '%s\n' "$out"
}

push() {
    fcall llmb_push 1 "$PREFIX:{$1}" "$2"
    rcli SADD "$PREFIX:queues" "$1" >/dev/null
}

claim() {
    fcall llmb_claim 1 "$PREFIX:{$1}" "$2" "$3" 30000 >/dev/null
}

# The token of the batch that runs task $3 (its ref) of queue $1: a claim
# without a lease secret holds its plain token in <base>:run.
token() {
    rcli HGET "$PREFIX:{$1}:run" "$3"
}

complete() {
    fcall llmb_complete 1 "$PREFIX:{$1}" "$2" "$3" "$(token "$1" "$2" "$3")" "$4" >/dev/null
}

fail_task() {
    fcall llmb_fail 1 "$PREFIX:{$1}" "$2" "$3" "$(token "$1" "$2" "$3")" "$4" "$5" >/dev/null
}

# Redis' clock in ms, which the CLI measures ages against.
redis_ms() {
    local t
    mapfile -t t < <(rcli TIME)
    echo $(( t[0] * 1000 + t[1] / 1000 ))
}
