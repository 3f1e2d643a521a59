#!/usr/bin/env bash
# Runs every redis-cli line of docs/redis-cli.md as written (against the
# test server, with <id> replaced by a job the first line pushed) and
# checks that each works: no error reply, and the outputs the page
# promises.
set -euo pipefail
url=$(cat "$LLMB_TEST_REDIS_URL_FILE")
doc="$LLMB_SOURCE_DIR/docs/redis-cli.md"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# The page uses the default prefix; start from a clean slate for it.
redis-cli -u "$url" --scan --pattern 'llmb:*' | xargs -r redis-cli -u "$url" del >/dev/null
# Lines inside ```sh blocks that start with redis-cli, comments dropped.
awk '/^```sh/ { on = 1; next } /^```/ { on = 0 } on && /^redis-cli/' "$doc" |
  sed 's/ *#.*$//' > "$tmp/lines"
[ "$(wc -l < "$tmp/lines")" -ge 10 ] || fail "found only $(wc -l < "$tmp/lines") lines"

id=""
n=0
while IFS= read -r line; do
  n=$((n + 1))
  line=${line/build\/ci/$LLMB_BUILD_DIR}
  line=${line//<id>/$id}
  # XREAD BLOCK 0 would wait forever: give it a bound, nothing else changes.
  line=${line/BLOCK 0/BLOCK 100}
  out=$(eval "${line/redis-cli/redis-cli -u \"$url\"}" 2>&1) || fail "line $n exited non-zero: $line: $out"
  if grep -q '^ERR\|(error)' <<<"$out"; then
    fail "line $n: $line: $out"
  fi
  if [[ $line == *"FUNCTION LOAD"* ]]; then
    [ "$out" = llmb ] || fail "FUNCTION LOAD printed \"$out\""
  fi
  if [ -z "$id" ] && [[ $line == *llmb_push* ]]; then
    id=$out
    # (a minted id: the queue's three-character tag and a base-36 count)
    [[ $id =~ ^[0-9a-z]{4,16}$ ]] || fail "push printed \"$id\", not an id"
    redis-cli -u "$url" SADD llmb:queues default >/dev/null
  fi
  case "$line" in
    *"llmb_job 1 'llmb:{default}' $id") grep -qx pending <<<"$out" || fail "job view: $out" ;;
    *"llmb_job 1 'llmb:{default}' $id state "*) [ "$(head -n 1 <<<"$out")" = pending ] || fail "job fields: $out" ;;
    *"ZRANGE 'llmb:{default}:pending'"*) grep -q "^$id:\*$" <<<"$out" || fail "pending list: $out" ;;
    *llmb_stats*) grep -qx pending <<<"$out" || fail "stats: $out" ;;
    *llmb_cancel*) [ "$out" = 3 ] || fail "cancel removed $out" ;;
    *llmb_retry*) [ "$out" = 3 ] || fail "retry enqueued $out" ;;
  esac
done < "$tmp/lines"
[ -n "$id" ] || fail "no push line"
redis-cli -u "$url" --scan --pattern 'llmb:*' | xargs -r redis-cli -u "$url" del >/dev/null
echo "docs/redis-cli.md: $n lines work"
