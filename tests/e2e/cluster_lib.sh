# Helpers for the e2e tests on the Redis Cluster of the ctest fixture
# redis_cluster (tests/e2e/cluster_{push,push_wait,web,worker}.sh), sourced
# by each after `set -euo pipefail`:
#
#   dir, url, ports   the fixture's directory, its redis+cluster:// URL
#                     and the ports of its nodes (the 3 primaries first)
#   push, worker      the built llmb-push and llmb-worker
#   cluster_test PREFIX
#                     the test's world (below): prefix, tmp, pids
#   rcli ARGS...      redis-cli on the first node, following MOVED
#   cluster_del_prefix PREFIX
#                     deletes every key under PREFIX on the primaries
#   fail MSG...       prints FAIL: MSG and exits 1
dir=$LLMB_TEST_CLUSTER_DIR
url=$(cat "$dir/cluster.url")
mapfile -t ports <"$dir/ports"
push="$LLMB_BUILD_DIR/tools/push/llmb-push"
worker="$LLMB_BUILD_DIR/worker/llmb-worker"

rcli() { redis-cli -c -p "${ports[0]}" "$@"; }

cluster_del_prefix() {
    local p
    for p in "${ports[@]:0:3}"; do
        redis-cli -p "$p" --scan --pattern "$1:*" |
            xargs -r -n 100 redis-cli -p "$p" del >/dev/null 2>&1 || true
    done
}

fail() { echo "FAIL: $*" >&2; exit 1; }

# The test's world, its keys under PREFIX: sets prefix, exports
# LLMB_REDIS_URL (the fixture's) and LLMB_PREFIX, makes a temp dir tmp and
# an empty pids for the processes it starts. On exit those are stopped
# (SIGTERM) and waited for, tmp is removed and the keys are deleted.
cluster_test() {
    prefix=$1
    export LLMB_REDIS_URL=$url LLMB_PREFIX=$prefix
    tmp=$(mktemp -d)
    pids=()
    trap cluster_test_end EXIT
}

cluster_test_end() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
    cluster_del_prefix "$prefix"
}
