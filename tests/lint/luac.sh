#!/usr/bin/env bash
# Parses every Lua file of the function library, and the bundle the build
# embeds, with luac5.1 -p (syntax only; Redis runs Lua 5.1).
#
#   luac.sh LUAC LUA_DIR BUNDLE
#
# Exit 0 when all parse, 1 when one does not, 77 (skipped) without luac5.1.
set -uo pipefail

luac=${1:-}
lua_dir=${2:?usage: luac.sh LUAC LUA_DIR BUNDLE}
bundle=${3:?usage: luac.sh LUAC LUA_DIR BUNDLE}

if [[ -z $luac || $luac == *NOTFOUND || ! -x $luac ]]; then
    luac=$(command -v luac5.1 || true)
fi
if [[ -z $luac ]]; then
    echo "SKIP: luac5.1 is not installed (apt-get install lua5.1)"
    exit 77
fi

shopt -s nullglob
files=("$lua_dir"/*.lua)
if (( ${#files[@]} == 0 )); then
    echo "no Lua files in $lua_dir" >&2
    exit 1
fi
if [[ ! -f $bundle ]]; then
    echo "bundle $bundle is missing: build the llmb target first" >&2
    exit 1
fi

passed=0
failed=0
for f in "${files[@]}" "$bundle"; do
    if "$luac" -p "$f"; then
        passed=$((passed + 1))
    else
        echo "FAIL: $f" >&2
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
(( failed == 0 ))
