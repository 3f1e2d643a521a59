#!/usr/bin/env bash
# Every integer option of every binary has a documented range (the range
# column of docs/configuration.md, from --help-markdown) and is held to it:
# both ends are accepted, one past either end is refused with a message
# that names the range, and nothing else is checked to get there.
set -uo pipefail
fails=0 checked=0
for b in worker/llmb-worker coordinator/llmb-coordinator tools/push/llmb-push \
         tools/admin/llmb; do
  bin=$LLMB_BUILD_DIR/$b
  rows=$("$bin" --help-markdown | tail -n +3) || { echo "FAIL: $b --help-markdown"; exit 1; }
  while IFS='|' read -r _ flag _ _ range _; do
    name=$(sed -n 's/.*`--\([a-z0-9-]*\) [A-Z_]*`.*/\1/p' <<<"$flag")
    range=$(tr -d ' ' <<<"$range")
    [[ -n $name && $range == *..* ]] || continue
    lo=${range%%..*} hi=${range##*..}
    for v in "$lo" ${hi:+"$hi"}; do
      checked=$((checked + 1))
      out=$("$bin" --"$name"="$v" --dump-config 2>&1) ||
        { echo "FAIL: $b --$name=$v (in $range) refused: $out"; fails=$((fails + 1)); }
    done
    for v in $((lo - 1)) ${hi:+$((hi + 1))}; do
      checked=$((checked + 1))
      if out=$("$bin" --"$name"="$v" --dump-config 2>&1); then
        echo "FAIL: $b --$name=$v (out of $range) accepted"; fails=$((fails + 1))
      elif ! grep -q "must be an integer from $lo\|must be an integer >= $lo" <<<"$out"; then
        echo "FAIL: $b --$name=$v: the error does not name the range: $out"
        fails=$((fails + 1))
      fi
    done
  done <<<"$rows"
done
(( checked > 100 )) || { echo "FAIL: only $checked checks: is the range column gone?"; exit 1; }
echo "$((checked - fails)) passed, $fails failed"
(( fails == 0 ))
