# Setup shared by the e2e tests that run llm jobs through real
# llmb-worker and llmb-coordinator processes against the mock LLM server
# (tests/e2e/llm_*.sh, sweep.sh), sourced by each of them. It runs under
# ctest: LLMB_TEST_REDIS_URL_FILE names the private redis-server of the
# "redis" fixture, LLMB_BUILD_DIR and LLMB_SOURCE_DIR the trees.
#
#   url, bin, prefix    the test server, the build dir, this test's key
#                       prefix (e2e-<script>-<pid>)
#   tmp                 a private directory; logs go in $tmp/*.log
#   pids                processes to stop at exit: append what you start
#   rcli ARGS...        redis-cli on the test server
#   fail MESSAGE        prints MESSAGE and the tail of every .log, .out and
#                       .err file in $tmp, exits 1
#   start_mock ARGS...  starts examples/mock-llm/mock_llm.py on a free port
#                       with ARGS (output in $tmp/mock.out, mock.log);
#                       sets port, fails when the mock does not start
#   job_aggregate JOB FILE  waits up to 10 s for the aggregate of job JOB
#                       of queue default, writes it to FILE; fails without
#
# At exit every pid in pids gets SIGTERM and is waited for, then the keys
# under the prefix and $tmp are removed.
set -euo pipefail

url=$(cat "$LLMB_TEST_REDIS_URL_FILE")
bin=$LLMB_BUILD_DIR
prefix="e2e-$(basename "$0" .sh)-$$"
tmp=$(mktemp -d)
pids=()

rcli() { redis-cli -u "$url" "$@"; }

cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rcli --scan --pattern "$prefix:*" | xargs -r redis-cli -u "$url" del >/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/*.log "$tmp"/*.out "$tmp"/*.err; do
        [ -f "$f" ] || continue
        echo "--- $f" >&2
        tail -n 20 "$f" >&2
    done
    exit 1
}

start_mock() {
    # emptied here, not only by the redirection below: that one happens in
    # the child, maybe after the loop has read the previous mock's line
    : > "$tmp/mock.out"
    python3 -S "$LLMB_SOURCE_DIR/examples/mock-llm/mock_llm.py" --port 0 \
        --quiet "$@" > "$tmp/mock.out" 2>"$tmp/mock.log" &
    pids+=($!)
    for _ in $(seq 100); do
        grep -q listening "$tmp/mock.out" 2>/dev/null && break
        sleep 0.05
    done
    port=$(sed -n 's/^mock-llm listening on [0-9.]*:\([0-9]*\)$/\1/p' "$tmp/mock.out")
    [ -n "$port" ] || fail "the mock did not start"
}

job_aggregate() {
    for _ in $(seq 100); do
        [ -n "$(rcli FCALL_RO llmb_job 1 "$prefix:{default}" "$1" aggregate)" ] && break
        sleep 0.1
    done
    rcli FCALL_RO llmb_job 1 "$prefix:{default}" "$1" aggregate > "$2"
    [ -s "$2" ] && [ "$(head -c 1 "$2")" = "{" ] || fail "job $1 has no aggregate"
}
