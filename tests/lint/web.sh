#!/usr/bin/env bash
# Lint of the web UI (web/, docs/web.md): what the pages' Content-Security-
# Policy refuses, and what would put data from Redis into the page as
# markup, must not be in the files. Each JavaScript file must parse
# (node --check, when node is installed).
#
#   web.sh WEB_DIR
set -euo pipefail
dir=${1:?usage: web.sh WEB_DIR}
bad=0
say() { echo "FAIL: $*"; bad=1; }

for f in "$dir"/*.js; do
    # markup from strings, code from strings
    if grep -nE 'innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(|setAttribute\(.(style|on[a-z]+)' "$f"; then
        say "$f builds markup or code from strings (use textContent and createElement)"
    fi
    if command -v node >/dev/null; then
        node --check "$f" || say "$f does not parse"
    fi
done
for f in "$dir"/*.html; do
    # inline script, inline style, inline handlers, javascript: URLs
    if grep -niE '<script>|<script [^>]*>[^<]|<style|[[:space:]]style=|[[:space:]]on[a-z]+=|javascript:' "$f"; then
        say "$f has an inline script, style or handler (the CSP refuses them)"
    fi
    # nothing from elsewhere
    if grep -niE '(src|href)="(https?:)?//' "$f"; then
        say "$f loads something from another host"
    fi
done
[ "$bad" = 0 ] && echo "web/: no markup from strings, nothing inline, nothing from elsewhere"
exit "$bad"
