#!/usr/bin/env bash
# Runs the Python client snippet of docs/clients.md as written (Debian's
# python3-redis) against the test server, with a real llmb-worker and
# llmb-coordinator serving the job it pushes.
set -euo pipefail
py=/usr/bin/python3
if ! "$py" -c 'import redis' 2>/dev/null; then
    echo "SKIP: python3-redis is not installed (scripts/deps installs it)" >&2
    exit 77
fi
url=$(cat "$LLMB_TEST_REDIS_URL_FILE")
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    redis-cli -u "$url" --scan --pattern 'llmb:{default}*' | xargs -r redis-cli -u "$url" del >/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
awk '/^```python/ { on = 1; next } /^```/ { on = 0 } on' \
    "$LLMB_SOURCE_DIR/docs/clients.md" > "$tmp/client.py"
[ -s "$tmp/client.py" ] || { echo "FAIL: no python block in docs/clients.md" >&2; exit 1; }

export LLMB_REDIS_URL=$url
"$LLMB_BUILD_DIR/worker/llmb-worker" --id docs-clients-w --capacity 4 \
    --log-level warn 2>"$tmp/worker.log" &
pids+=($!)
for _ in $(seq 1 100); do   # the worker loads the function library
    [ -n "$(redis-cli -u "$url" FUNCTION LIST LIBRARYNAME llmb)" ] && break
    sleep 0.05
done
# Without a coordinator it gives up, saying why (its minute made 1 s).
sed 's/+ 60$/+ 1/' "$tmp/client.py" > "$tmp/client_short.py"
if out=$(timeout 30 "$py" "$tmp/client_short.py" 2>&1); then
    echo "FAIL: with no coordinator the snippet succeeded: $out" >&2
    exit 1
fi
grep -q "is an llmb-coordinator running" <<<"$out" ||
    { echo "FAIL: with no coordinator the snippet said: $out" >&2; exit 1; }
"$LLMB_BUILD_DIR/coordinator/llmb-coordinator" --id docs-clients-c \
    --log-level warn 2>"$tmp/coord.log" &
pids+=($!)
out=$(timeout 60 "$py" "$tmp/client.py")
if [ "$out" != "completed 4" ]; then
    echo "FAIL: the snippet printed \"$out\", want \"completed 4\"" >&2
    cat "$tmp/worker.log" "$tmp/coord.log" >&2
    exit 1
fi
echo "docs/clients.md: the Python snippet pushed a job and read its aggregate"
