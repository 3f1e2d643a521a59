#!/usr/bin/env bash
# TLS through stunnel (docs/security.md): hiredis 0.14 speaks no TLS, so
# llmb-push and llmb-worker talk plain text to a local stunnel client, which
# carries the connection over TLS (a self-signed certificate made here with
# openssl, verified by the client) to a stunnel server in front of the
# test redis-server. A job pushed through the tunnel runs and completes.
set -euo pipefail
command -v stunnel >/dev/null || { echo "stunnel not installed (Debian: stunnel4)" >&2; exit 77; }
command -v openssl >/dev/null || { echo "openssl not installed" >&2; exit 77; }
url=$(cat "$LLMB_TEST_REDIS_URL_FILE")
rport=${url##*:}; rport=${rport%%/*}
prefix="e2etls$$"
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    redis-cli -u "$url" --scan --pattern "$prefix:*" | xargs -r redis-cli -u "$url" del >/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -n 20 "$tmp"/*.log >&2 || true; exit 1; }
free_port() {
    local p
    while :; do
        p=$(shuf -i 20000-31999 -n 1)
        [[ $p != 6379 ]] && ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && { echo "$p"; return; }
    done
}
sport=$(free_port); cport=$(free_port)

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>"$tmp/openssl.log" || fail openssl
cat > "$tmp/server.conf" <<CONF
foreground = yes
pid =
[redis-tls]
accept = 127.0.0.1:$sport
connect = 127.0.0.1:$rport
cert = $tmp/cert.pem
key = $tmp/key.pem
CONF
cat > "$tmp/client.conf" <<CONF
foreground = yes
pid =
[redis-tls]
client = yes
accept = 127.0.0.1:$cport
connect = 127.0.0.1:$sport
verifyPeer = yes
CAfile = $tmp/cert.pem
checkHost = localhost
CONF
stunnel "$tmp/server.conf" > "$tmp/stunnel-server.log" 2>&1 & pids+=($!)
stunnel "$tmp/client.conf" > "$tmp/stunnel-client.log" 2>&1 & pids+=($!)
turl="redis://127.0.0.1:$cport/0"
for _ in $(seq 50); do redis-cli -u "$turl" PING 2>/dev/null | grep -qx PONG && break; sleep 0.1; done
redis-cli -u "$turl" PING | grep -qx PONG || fail "no PONG through the tunnel"
# the server side really is TLS: plain text to it gets no PONG
out=$(timeout 3 redis-cli -p "$sport" PING 2>&1 || true)
[[ $out != PONG ]] || fail "stunnel server answered plain text"

export LLMB_REDIS_URL=$turl LLMB_PREFIX=$prefix
"$LLMB_BUILD_DIR/worker/llmb-worker" --queues tls --heartbeat-ms 200 \
    --lease-ms 5000 > "$tmp/worker.log" 2>&1 & pids+=($!)
id=$("$LLMB_BUILD_DIR/tools/push/llmb-push" --queue tls --tasks 2 echo '{"via":"tls"}')
for _ in $(seq 100); do
    [[ $(redis-cli -u "$url" FCALL_RO llmb_job 1 "$prefix:{tls}" "$id" state) == completed ]] && break
    sleep 0.1
done
[[ $(redis-cli -u "$url" FCALL_RO llmb_job 1 "$prefix:{tls}" "$id" state) == completed ]] || fail "job not completed through the tunnel"
echo "ok: push and worker through stunnel TLS"
