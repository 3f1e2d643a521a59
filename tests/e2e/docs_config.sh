#!/usr/bin/env bash
# docs/configuration.md must be what the binaries' option tables say:
# every flag and environment variable documented exists, and every one
# that exists is documented. Regenerate with scripts/gen-config-doc.
set -euo pipefail
want=$(mktemp)
trap 'rm -f "$want"' EXIT
"$LLMB_SOURCE_DIR/scripts/gen-config-doc" --stdout "$LLMB_BUILD_DIR" > "$want"
if ! diff -u "$LLMB_SOURCE_DIR/docs/configuration.md" "$want" >&2; then
    echo "FAIL: docs/configuration.md is out of date: run scripts/gen-config-doc $LLMB_BUILD_DIR" >&2
    exit 1
fi
echo "docs/configuration.md matches the option tables"
