#!/usr/bin/env bash
# Runs the README's Quick start as a newcomer would: every ```sh block
# under the "## Quick start" heading, in order, in one shell. Only what
# the test suite provides itself is swapped: the install of this build
# into a temp prefix (on PATH) for the release build and `sudo cmake
# --install`, the test's redis-server for `redis-server --daemonize yes`,
# and its address for redis://127.0.0.1:6379, with a prefix of its own.
# The coordinator and worker start in the background as the README says;
# everything the script started is stopped afterwards, and it has 120 s.
set -uo pipefail
url=$(cat "$LLMB_TEST_REDIS_URL_FILE")
readme=$LLMB_SOURCE_DIR/README.md
tmp=$(mktemp -d)
prefix=readme$$
pid=""
cleanup() {
    [ -n "$pid" ] && kill -TERM -- "-$pid" 2>/dev/null
    sleep 0.2
    redis-cli -u "$url" --scan --pattern "$prefix:*" | xargs -r redis-cli -u "$url" del >/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

awk '/^## / { on = ($0 == "## Quick start") } on && /^```sh$/ { code = 1; next }
     code && /^```$/ { code = 0; next } code' "$readme" > "$tmp/blocks.sh"
[ -s "$tmp/blocks.sh" ] || fail "no \`\`\`sh block under \"## Quick start\" in README.md"

install_line='sudo cmake --install build/release --prefix /usr/local'
{
    echo "set -euo pipefail"
    echo "export LLMB_PREFIX=$prefix"
    while IFS= read -r line; do
        case "$line" in
        "cmake --preset release && cmake --build --preset release")
            echo "# (the test's build stands in for: $line)" ;;
        "$install_line")
            echo "cmake --install '$LLMB_BUILD_DIR' --prefix '$tmp/prefix' >/dev/null"
            echo "export PATH='$tmp/prefix/bin':\$PATH" ;;
        "redis-server --daemonize yes")
            echo "# (the test's redis-server stands in for: $line)" ;;
        *) echo "${line//redis:\/\/127.0.0.1:6379/$url}" ;;
        esac
    done < "$tmp/blocks.sh"
} > "$tmp/run.sh"
grep -qF "$install_line" "$tmp/blocks.sh" || fail "the Quick start no longer says: $install_line"
grep -q 'redis://127.0.0.1:6379' "$tmp/blocks.sh" || fail "the Quick start sets no LLMB_REDIS_URL"

cd "$tmp"
setsid bash "$tmp/run.sh" >"$tmp/out" 2>"$tmp/err" &
pid=$!
rc=""
for _ in $(seq 1 1200); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid"; rc=$?; break; }
    sleep 0.1
done
if [ -z "$rc" ]; then
    cat "$tmp/run.sh" "$tmp/out" "$tmp/err" >&2
    fail "the Quick start did not finish in 120 s"
fi
if [ "$rc" != 0 ]; then
    cat "$tmp/run.sh" "$tmp/out" "$tmp/err" >&2
    fail "the Quick start failed (exit $rc)"
fi
grep -q '"state": "completed"' "$tmp/out" || fail "no completed job on stdout: $(cat "$tmp/out")"
grep -q '"state": "completed"' "$tmp/job.json" || fail "job.json: $(cat "$tmp/job.json")"
grep -q '"aggregate"' "$tmp/job.json" || fail "job.json has no aggregate"
# Lines run back to back can push before the worker registered, which
# llmb-push points out; a person typing them does not get that far first.
if grep -v 'no live worker serves queue' "$tmp/err" | grep -q 'warning\|error'; then
    cat "$tmp/err" >&2
    fail "the Quick start printed warnings or errors"
fi
echo "README.md Quick start: $(grep -cv '^#' "$tmp/run.sh") lines ran"
