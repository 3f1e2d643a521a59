#!/usr/bin/env bash
# `cmake --install` of this build into a temporary prefix: the four
# programs in bin (each answers --version from there), the Lua function
# library in share/llmb, each program's --help page in share/doc/llmb, and
# its man page in share/man/man1 when the build found help2man.
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

cmake --install "$LLMB_BUILD_DIR" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; echo "FAIL: cmake --install"; exit 1; }
p=$tmp/prefix
for prog in llmb-worker llmb-coordinator llmb-push llmb; do
    [ -x "$p/bin/$prog" ] || { fail "bin/$prog is not installed"; continue; }
    out=$(cd / && env -i PATH="$p/bin:/usr/bin:/bin" "$prog" --version 2>&1) ||
        fail "$prog --version exited $?: $out"
    [[ $out =~ ^$prog\ [0-9]+\.[0-9]+\.[0-9]+\ \(lua\ library\ [0-9]+\)$ ]] ||
        fail "$prog --version printed \"$out\""
    [ -s "$p/share/doc/llmb/$prog.txt" ] || fail "share/doc/llmb/$prog.txt is missing"
    head -1 "$p/share/doc/llmb/$prog.txt" | grep -q "^Usage: $prog " ||
        fail "share/doc/llmb/$prog.txt is not its --help"
    if grep -q '^LLMB_HELP2MAN:FILEPATH=/' "$LLMB_BUILD_DIR/CMakeCache.txt"; then
        grep -q '^\.TH' "$p/share/man/man1/$prog.1" 2>/dev/null ||
            fail "share/man/man1/$prog.1 is missing"
    fi
done
cmp -s "$p/share/llmb/llmb_lua_bundle.lua" "$LLMB_BUILD_DIR/generated/llmb_lua_bundle.lua" ||
    fail "share/llmb/llmb_lua_bundle.lua is not the build's bundle"
head -1 "$p/share/llmb/llmb_lua_bundle.lua" | grep -q '^#!lua name=llmb' ||
    fail "the installed bundle does not start with #!lua name=llmb"
(( fails == 0 )) && echo "install: $(find "$p" -type f | wc -l) files, every program runs from bin"
(( fails == 0 ))
