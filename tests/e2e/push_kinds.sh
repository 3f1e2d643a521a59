#!/usr/bin/env bash
# A job payload's "_kinds" (docs/coordinator.md, "Kinds") is checked at
# push on every path, with the same words: llmb-push TYPE PAYLOAD,
# llmb-push --batch (NDJSON documents) and redis-cli's FCALL llmb_push.
# A refused job stores nothing and llmb-push exits non-zero; a good one
# is taken.
. "$(dirname "$0")/llm_lib.sh"

common=(--redis "$url" --prefix "$prefix")
push=("$bin/tools/push/llmb-push" "${common[@]}")
B="$prefix:{default}"
want='payload field "_kinds": "model" must be one of duration, count, gauge, flag, label, got "text"'
bad='{"_kinds":{"model":"text","lat_ms":"duration"}}'

"${push[@]}" --id k1 bench "$bad" > "$tmp/out" 2>"$tmp/err" && fail "llmb-push took a bad _kinds"
grep -qF "$want" "$tmp/err" || fail "llmb-push said: $(cat "$tmp/err")"
printf '{"type":"bench","id":"k2","payload":%s}\n' "$bad" |
    "${push[@]}" --batch > "$tmp/out" 2>"$tmp/err" && fail "--batch took a bad _kinds"
grep -qF "$want" "$tmp/err" "$tmp/out" || fail "--batch said: $(cat "$tmp/err" "$tmp/out")"
rcli FCALL llmb_push 1 "$B" "{\"type\":\"bench\",\"id\":\"k3\",\"payload\":$bad}" \
    > "$tmp/out" 2>&1
grep -qF "$want" "$tmp/out" || fail "llmb_push said: $(cat "$tmp/out")"
for k in k1 k2 k3; do
    [ -z "$(rcli FCALL_RO llmb_job 1 "$B" "$k")" ] || fail "a refused job was stored: $k"
done

"${push[@]}" --id k4 bench '{"_kinds":{"model":"label","lat_ms":"duration"}}' \
    > /dev/null 2>"$tmp/err" || fail "a good _kinds was refused: $(cat "$tmp/err")"
[ "$(rcli FCALL_RO llmb_job 1 "$B" k4 state)" = pending ] || fail "the good job was not stored"
echo "push: _kinds checked on every path"
