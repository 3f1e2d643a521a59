#!/usr/bin/env bash
# The web UI and `llmb report` in a real browser (docs/web.md, "Tests"):
# a private redis-server on a free port, a real llmb-coordinator, two real
# llmb-worker processes with the mock LLM server, and a real `llmb web`
# with a token; web.test.mjs drives Debian's chromium through it with
# puppeteer-core. Screenshots go to $LLMB_BUILD_DIR/tests/browser/artifacts;
# with LLMB_UPDATE_DOCS_IMAGES=1 the README's pictures in docs/images are
# written from the same run.
#
# Exit 77 (ctest: skipped) without chromium or npm. puppeteer-core is
# installed with `npm ci` from the committed package.json and
# package-lock.json into $LLMB_BUILD_DIR/tests/browser/node_modules when
# it is not there yet.
set -euo pipefail

src=${LLMB_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${LLMB_BUILD_DIR:?LLMB_BUILD_DIR names the build tree}
here=$src/tests/browser
work=$bin/tests/browser
art=$work/artifacts

chromium=${LLMB_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$chromium" ]; then
    echo "SKIP: no chromium (Debian package chromium; scripts/deps installs it): the web UI is not tested in a browser"
    exit 77
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "SKIP: no node or npm (Debian packages nodejs, npm): puppeteer-core cannot run"
    exit 77
fi

mkdir -p "$work" "$art"
if [ ! -f "$work/node_modules/puppeteer-core/package.json" ] ||
   ! cmp -s "$here/package-lock.json" "$work/package-lock.json"; then
    cp "$here/package.json" "$here/package-lock.json" "$work/"
    (cd "$work" && { npm ci --no-audit --no-fund --loglevel=error ||
                     npm ci --no-audit --no-fund --loglevel=error; }) ||
        { echo "FAIL: npm ci of puppeteer-core in $work (twice)"; exit 1; }
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/*.log; do
        [ -f "$f" ] || continue
        echo "--- $f" >&2
        tail -n 20 "$f" >&2
    done
    exit 1
}
free_port() {
    python3 -S -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Redis, private to this test
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$tmp" > "$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && break
    sleep 0.05
done
redis-cli -p "$rport" ping | grep -q PONG || fail "redis-server did not start"
url=redis://127.0.0.1:$rport
common=(--redis "$url" --prefix web)

# the mock LLM server: 20 ms to the first token, 3 ms a token, a 30 ms
# stall every 16th gap, some jitter: distributions with a shape
python3 -S "$src/examples/mock-llm/mock_llm.py" --port 0 --quiet --ttft-ms 20 \
    --itl-ms 3 --jitter 0.4 --pause-every 16 --pause-ms 30 \
    > "$tmp/mock.out" 2>"$tmp/mock.log" &
pids+=($!)
for _ in $(seq 100); do
    grep -q listening "$tmp/mock.out" 2>/dev/null && break
    sleep 0.05
done
mport=$(sed -n 's/^mock-llm listening on [0-9.]*:\([0-9]*\)$/\1/p' "$tmp/mock.out")
[ -n "$mport" ] || fail "the mock did not start"

for w in a b; do
    "$bin/worker/llmb-worker" "${common[@]}" --id "w-$w" --capacity 2 \
        --queues default,bench --heartbeat-ms 300 \
        --llm-endpoint "mock=http://127.0.0.1:$mport" \
        --llm-endpoint "mock2=http://127.0.0.1:$mport" 2>"$tmp/worker-$w.log" &
    pids+=($!)
done
"$bin/coordinator/llmb-coordinator" "${common[@]}" --tick-ms 50 \
    2>"$tmp/coordinator.log" &
pids+=($!)

# start_web VAR NAME ARGS...: an llmb web on a free port with ARGS, its
# log in $tmp/NAME.log; sets VAR to its URL once it serves ("" if not)
start_web() {
    local var=$1 name=$2
    shift 2
    "$bin/tools/admin/llmb" web "${common[@]}" --addr 127.0.0.1:0 "$@" \
        >/dev/null 2>"$tmp/$name.log" &
    pids+=($!)
    for _ in $(seq 100); do
        grep -q 'serving http' "$tmp/$name.log" 2>/dev/null && break
        sleep 0.05
    done
    printf -v "$var" '%s' "$(sed -n 's|^llmb web: serving \(http://[0-9.:]*/\).*|\1|p' "$tmp/$name.log")"
}
export LLMB_WEB_TEST_TOKEN=t-$RANDOM-$RANDOM-$RANDOM
start_web web web --token-env LLMB_WEB_TEST_TOKEN
[ -n "$web" ] || fail "llmb web did not start"
# and one without a token: read-only
start_web web_ro web-ro
[ -n "$web_ro" ] || fail "the read-only llmb web did not start"

# the jobs the pages show: two llm benchmarks (one with an slo), an A/B
# job, a sweep of two levels, a job whose payload is markup and one that
# fails
push=("$bin/tools/push/llmb-push" "${common[@]}")
"${push[@]}" --wait --wait-timeout 120 --no-progress --json --queue bench \
    --tasks 4 --id bench-slo llm '{"model":"m","prompt":"go","max_tokens":48,
    "requests":12,"concurrency":3,"endpoint":"mock",
    "slo":{"ttft_ms":30,"tpot_ms":5}}' > "$tmp/push1.log" 2>&1 ||
    fail "llm job bench-slo"
"${push[@]}" --wait --wait-timeout 120 --no-progress --json --queue bench \
    --tasks 4 --id bench-ab llm '{"endpoints":["mock","mock2"],"models":["m1","m2"],
    "prompt":"go","max_tokens":32,"requests":8,"concurrency":2}' \
    > "$tmp/push2.log" 2>&1 || fail "llm job bench-ab"
"$bin/tools/admin/llmb" "${common[@]}" sweep --queue bench --over concurrency \
    --levels 1,4 --id sw --job '{"type":"llm","payload":{"endpoint":"mock",
    "model":"m","prompt":"go","max_tokens":24,"requests":16}}' \
    > "$tmp/sweep.log" 2>&1 || fail "sweep"
"${push[@]}" --json --id xss-1 echo '{"msg":"<img src=x onerror=alert(1)>"}' \
    > "$tmp/push3.log" 2>&1 || fail "xss job"
"${push[@]}" --wait --wait-timeout 60 --no-progress --json --id broken-1 \
    --tasks 3 --retries 0 fail '{}' > "$tmp/push4.log" 2>&1 || true
for _ in $(seq 200); do
    [ -n "$(redis-cli -p "$rport" FCALL_RO llmb_job 1 'web:{bench}' bench-ab aggregate)" ] &&
    [ -n "$(redis-cli -p "$rport" FCALL_RO llmb_job 1 'web:{bench}' bench-slo aggregate)" ] && break
    sleep 0.05
done

WEB_URL=$web RO_URL=$web_ro TOKEN=$LLMB_WEB_TEST_TOKEN CHROMIUM=$chromium ARTIFACTS=$art \
LLMB="$bin/tools/admin/llmb" PUSH="$bin/tools/push/llmb-push" \
REDIS_URL=$url PREFIX=web PUPPETEER="$work/node_modules/puppeteer-core" \
DOCS_IMAGES=$([ "${LLMB_UPDATE_DOCS_IMAGES:-0}" = 1 ] && echo "$src/docs/images" || true) \
    node "$here/web.test.mjs" || fail "web.test.mjs"
