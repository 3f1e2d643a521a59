#!/usr/bin/env bash
# compose.yaml must be a valid Compose file (no Docker engine runs here, so
# `docker-compose config -q` checks it), with the services the docs name.
set -euo pipefail
if ! command -v docker-compose >/dev/null; then
    echo "SKIP: docker-compose is not installed (scripts/deps installs it when it can)" >&2
    exit 77
fi
cd "$LLMB_SOURCE_DIR"
docker-compose -f compose.yaml config -q
services=$(docker-compose -f compose.yaml --profile sample config --services | sort | tr '\n' ' ')
[ "$services" = "coordinator redis sample worker " ] || { echo "FAIL: services: $services" >&2; exit 1; }
config=$(docker-compose -f compose.yaml config)
grep -q 'replicas: 3' <<<"$config" || { echo "FAIL: 3 worker replicas" >&2; exit 1; }
echo "compose.yaml is valid: $services"
