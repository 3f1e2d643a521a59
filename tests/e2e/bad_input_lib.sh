# Shared start of the bad input scripts, sourced after setting NAME: the
# test server's URL, a key prefix of its own ($prefix, queue base $base),
# rcli, a temp dir $tmp, and a cleanup on exit that stops the worker and
# coordinator whose pids are in $wpid and $cpid and deletes the prefix's
# keys. fail prints its message (and the worker log when there is one).
url=$(cat "$LLMB_TEST_REDIS_URL_FILE")
push="$LLMB_BUILD_DIR/tools/push/llmb-push"
worker="$LLMB_BUILD_DIR/worker/llmb-worker"
prefix="e2e$NAME$$"
base="$prefix:{default}"
export LLMB_REDIS_URL=$url LLMB_PREFIX=$prefix
rcli() { redis-cli -u "$url" "$@"; }
tmp=$(mktemp -d)
wpid= cpid=
cleanup() {
    set +e
    for p in $wpid $cpid; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
    rcli --scan --pattern "$prefix:*" | xargs -r redis-cli -u "$url" del >/dev/null
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    [ -f "$tmp/worker.log" ] && tail -n 20 "$tmp/worker.log" >&2
    exit 1
}
