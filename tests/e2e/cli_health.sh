#!/usr/bin/env bash
# `llmb health`, the probe of compose.yaml, the Dockerfile and
# deploy/k8s: Redis and the library, a real worker's record and records
# made by hand (fresh, stale, dead, draining, missing), a real
# coordinator's /healthz and a fake one that answers 503, --live, --json,
# and the exit statuses: 0 healthy or degraded, 1 unhealthy, 64 usage.
#
# usage: cli_health.sh PATH_TO_LLMB   (run by ctest with the redis fixture)
source "$(dirname "$0")/cli_lib.sh"

BIN=${LLMB_BUILD_DIR:?run under ctest}
DOWN_URL="redis://127.0.0.1:$(free_port)"

# --- usage ----------------------------------------------------------------
run health --help
expect_rc 0
expect_out "Usage: llmb health [OPTIONS]"
expect_out "--coordinator URL"
expect_out "--worker ID"
expect_out "--[no-]live"
run --help
expect_out "  health "
run health --live
expect_rc 64
expect_err "--live checks a process: give --coordinator URL or --worker ID"
run health --coordinator https://127.0.0.1:1
expect_rc 64
expect_err "--coordinator must be an http:// URL"
run health --coordinator http://
expect_rc 64
expect_err "malformed URL"
for bad in http://127.0.0.1:abc http://127.0.0.1:70000 http://127.0.0.1:0 \
    http://127.0.0.1:80x; do
    run health --coordinator "$bad"
    expect_rc 64
    expect_err "PORT from 1 to 65535"
done
run health --worker 'no spaces'
expect_rc 64
expect_err "--worker must be a worker id"
# the worker's own limit: 128 characters (llmb-worker --id)
run health --worker "$(printf 'w%.0s' $(seq 129))"
expect_rc 64
expect_err "worker id of 1 to 128 characters"
run health --timeout-ms 5
expect_rc 64
run health extra
expect_rc 64

# --- Redis ----------------------------------------------------------------
run health
expect_rc 0
expect_out "redis  ok"
expect_out "library version"
expect_out "healthy"
run health --json
expect_rc 0
check 'd["status"] == "healthy" and d["checks"][0]["check"] == "redis" and d["checks"][0]["status"] == "ok" and d["live"] is False'
run health --redis "$DOWN_URL" --timeout-ms 500
expect_rc 1
expect_out "unhealthy"
expect_err "llmb: unhealthy: redis: cannot connect to redis"

# --- workers: records made by hand -----------------------------------------
now=$(rcli TIME | head -n 1)000
set_worker() { # ID STATE SEEN_MS
    rcli HSET "$PREFIX:worker:$1" id "$1" state "$2" seen_ms "$3" running 1 \
        capacity 4 >/dev/null
}
set_worker fresh busy "$now"
run health --worker fresh
expect_rc 0
expect_out "worker fresh  ok"
expect_out "busy, 1 of 4 slots busy"
set_worker stale idle $((now - 60000))
run health --worker stale
expect_rc 1
expect_err "unhealthy: worker stale: idle, last heartbeat"
expect_err "older than --stale-ms 15000"
run health --worker stale --stale-ms 120000
expect_rc 0
set_worker dead dead "$now"
run health --worker dead
expect_rc 1
expect_err "marked dead by a coordinator"
set_worker draining draining "$now"
run health --worker draining --json
expect_rc 0
check 'd["status"] == "degraded" and d["checks"][1]["status"] == "degraded"'
run health --worker nobody
expect_rc 1
expect_err "no record $PREFIX:worker:nobody"
run health --worker stale --live
expect_rc 1
# --live: Redis away says nothing about the worker.
run health --worker stale --live --redis "$DOWN_URL" --timeout-ms 500
expect_rc 0
expect_out "skipped"
expect_out "cannot judge"
run health --worker fresh --redis "$DOWN_URL" --timeout-ms 500
expect_rc 1

# --- a real worker --------------------------------------------------------
"$BIN/worker/llmb-worker" --id "hw-$$" --queues health --handler noop=noop \
    --heartbeat-ms 200 2>"$TMP/worker.log" &
pids+=($!)
for _ in $(seq 50); do
    run health --worker "hw-$$"
    [[ $RC -eq 0 ]] && break
    sleep 0.1
done
expect_rc 0
expect_out "worker hw-$$  ok"
expect_out "idle"

# --- coordinators ---------------------------------------------------------
# libmicrohttpd is loaded when the coordinator serves HTTP, not linked: one
# without --metrics-addr never maps it (docs/coordinator.md).
"$BIN/coordinator/llmb-coordinator" 2>"$TMP/coordinator-nohttp.log" &
nohttp=$!
pids+=($nohttp)
for _ in $(seq 50); do
    grep -q "coordinator started" "$TMP/coordinator-nohttp.log" && break
    sleep 0.1
done
grep -q "coordinator started" "$TMP/coordinator-nohttp.log" ||
    fail "the coordinator without --metrics-addr did not start"
if grep -q libmicrohttpd "/proc/$nohttp/maps"; then
    fail "a coordinator without --metrics-addr maps libmicrohttpd"
fi
kill -TERM "$nohttp"
wait "$nohttp" || fail "the coordinator without --metrics-addr exited $?"
unset 'pids[-1]'
# A libmicrohttpd that cannot serve: a clear error and a non-zero exit.
mkdir -p "$TMP/fakelib"
gcc -shared -o "$TMP/fakelib/libmicrohttpd.so.12" -x c /dev/null ||
    fail "cannot build the stand-in libmicrohttpd"
rc=0
LD_LIBRARY_PATH="$TMP/fakelib" "$BIN/coordinator/llmb-coordinator" \
    --metrics-addr "127.0.0.1:$(free_port)" 2>"$TMP/coordinator-fake.log" ||
    rc=$?
[[ $rc -ne 0 ]] || fail "a coordinator without libmicrohttpd exited 0"
grep -q "libmicrohttpd.so.12 has no MHD_" "$TMP/coordinator-fake.log" ||
    fail "no libmicrohttpd error: $(cat "$TMP/coordinator-fake.log")"

port=$(free_port)
"$BIN/coordinator/llmb-coordinator" --metrics-addr "127.0.0.1:$port" \
    2>"$TMP/coordinator.log" &
pids+=($!)
for _ in $(seq 50); do
    run health --coordinator "http://127.0.0.1:$port"
    [[ $RC -eq 0 ]] && break
    sleep 0.1
done
expect_rc 0
grep -q libmicrohttpd "/proc/${pids[-1]}/maps" ||
    fail "the coordinator with --metrics-addr does not map libmicrohttpd"
grep -Eq "^coordinator +(ok +healthy|degraded)" <<<"$OUT" || fail "coordinator line"
run health --coordinator "http://127.0.0.1:$port/healthz" --live --json
expect_rc 0
check '[c["check"] for c in d["checks"]] == ["coordinator"] and d["checks"][0]["detail"] == "answers (HTTP 200)"'

# The headers of its answers (docs/coordinator.md): nosniff and no-store
# on each, and the content type of each path.
for path in metrics healthz nothing; do
    case $path in
    metrics) type="text/plain; version=0.0.4; charset=utf-8" ;;
    healthz) type="application/json" ;;
    *) type="text/plain; charset=utf-8" ;;
    esac
    curl -s -i -o "$TMP/head.out" "http://127.0.0.1:$port/$path" ||
        fail "GET /$path: curl failed"
    head=$(sed -n '1,/^\r$/p' "$TMP/head.out" | tr -d '\r')
    grep -qx "X-Content-Type-Options: nosniff" <<<"$head" ||
        fail "GET /$path: no X-Content-Type-Options: nosniff: $head"
    grep -qx "Cache-Control: no-store" <<<"$head" ||
        fail "GET /$path: no Cache-Control: no-store: $head"
    grep -qx "Content-Type: $type" <<<"$head" ||
        fail "GET /$path: not Content-Type: $type: $head"
done

# 16 idle connections from one address hold their slots; the 17th is
# closed at once, unanswered; the idle ones and another address are
# served (docs/coordinator.md).
python3 "$(dirname "$0")/web_sse.py" "$port" /healthz 16 16 ||
    fail "the coordinator's connections per address"

# A coordinator whose Redis is down answers 503: not ready, but alive.
fake=$(free_port)
python3 - "$fake" <<'EOF' 2>"$TMP/fake.log" &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"status":"unhealthy","reason":"redis: connection refused","redis":false}\n'
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
pids+=($!)
for _ in $(seq 50); do
    run health --coordinator "http://127.0.0.1:$fake" --live
    [[ $RC -eq 0 ]] && break
    sleep 0.1
done
expect_rc 0
expect_out "answers (HTTP 503)"
run health --coordinator "http://127.0.0.1:$fake"
expect_rc 1
expect_err "unhealthy: coordinator: unhealthy (HTTP 503): redis: connection refused"
closed=$(free_port)
run health --coordinator "http://127.0.0.1:$closed" --live
expect_rc 1
expect_err "cannot connect to 127.0.0.1:$closed"
# A proxy named by the environment is not used: the probe talks to the
# coordinator itself.
http_proxy="http://127.0.0.1:$closed" HTTP_PROXY="http://127.0.0.1:$closed" \
    run health --coordinator "http://127.0.0.1:$fake" --live
expect_rc 0
expect_out "answers (HTTP 503)"
# Something that is not HTTP, and something that never answers.
garbage=$(free_port)
silent=$(free_port)
python3 - "$garbage" "$silent" <<'PY' 2>"$TMP/raw.log" &
import socket, sys, threading
def serve(port, reply):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(8)
    held = []
    while True:
        c, _ = s.accept()
        if reply:
            c.recv(4096)
            c.sendall(reply)
            c.close()
        else:
            held.append(c)
threading.Thread(target=serve, daemon=True,
                 args=(int(sys.argv[1]), b"SSH-2.0-OpenSSH\r\n\r\n")).start()
serve(int(sys.argv[2]), None)
PY
pids+=($!)
for _ in $(seq 50); do
    run health --coordinator "http://127.0.0.1:$garbage" --live
    [[ $ERR == *"not an HTTP response"* ]] && break
    sleep 0.1
done
expect_rc 1
expect_err "coordinator: GET /healthz from 127.0.0.1:$garbage: not an HTTP response"
run health --coordinator "http://127.0.0.1:$silent/healthz" --live --timeout-ms 300
expect_rc 1
expect_err "coordinator: GET /healthz from 127.0.0.1:$silent: no answer in time"
# libcurl and libmicrohttpd are loaded when a check or `llmb web` needs
# them, not linked: llmb starts without them, so does the coordinator
if command -v ldd >/dev/null; then
    for lib in libcurl libmicrohttpd; do
        if ldd "$LLMB" | grep -q "$lib"; then
            fail "llmb links $lib"
        fi
    done
    if ldd "$BIN/coordinator/llmb-coordinator" | grep -q libmicrohttpd; then
        fail "llmb-coordinator links libmicrohttpd"
    fi
fi
echo "cli_health: ok"
