#!/usr/bin/env bash
# `llmb web`, its JSON API and live stream as a browser's script uses
# them, against real processes: the redis-server of the ctest fixture, an
# llmb-worker, an llmb-coordinator and two `llmb web` servers (one with a
# token, one read-only), spoken to over real HTTP by web_api.py: every
# endpoint's shape, paging and search, a job seen going from pending to
# completed on the event stream, each action refused without the token
# and done with it, the headers, bad paths, ids and methods, a few
# hundred random requests that must never crash the server, and the
# per-address connection limit.
#
# usage: web_api.sh PATH_TO_LLMB   (run by ctest with the redis fixture)
source "$(dirname "$0")/cli_lib.sh"

BIN=${LLMB_BUILD_DIR:?run under ctest}
# the checks below import web_sse.py, the stream's reader
export PYTHONPATH="$(cd "$(dirname "$0")" && pwd)${PYTHONPATH:+:$PYTHONPATH}"
old_port=""
stop_all() {
    # the second redis-server (Redis started late), if a check failed
    # while it ran
    [[ -z $old_port ]] ||
        redis-cli -p "$old_port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    cleanup
}
trap stop_all EXIT

# Starts `llmb web` on a free port with the arguments given; sets PORT
# from the line it prints.
start_web() {
    local log=$1
    shift
    # made here, not only by the redirection below: that one happens in
    # the child, maybe after the loop's first sed, which would then fail
    # (no such file) and end the script under set -e
    : > "$log"
    "$LLMB" web --addr 127.0.0.1:0 "$@" 2>"$log" &
    pids+=($!)
    PORT=""
    for _ in $(seq 100); do
        PORT=$(sed -n 's|^llmb web: serving http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$log")
        [[ -n $PORT ]] && return 0
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "FAIL ($NAME): llmb web did not start:" >&2
    cat "$log" >&2
    exit 1
}

# --- usage ----------------------------------------------------------------
run web --help
expect_rc 0
expect_out "--token-env VAR"
unset LLMB_TEST_NO_TOKEN
run web --token-env LLMB_TEST_NO_TOKEN
expect_rc 78
expect_err "LLMB_TEST_NO_TOKEN is not set"
run web --addr nonsense
expect_rc 64
expect_err "--addr must be HOST:PORT"
# --max-conns-per-ip: 1 to 256
for n in 0 257; do
    run web --max-conns-per-ip "$n"
    expect_rc 64
    expect_err "max-conns-per-ip"
done

# --- the system -------------------------------------------------------------
"$BIN/worker/llmb-worker" --id "ww-$$" --queues live --capacity 4 \
    --handler echo=echo --heartbeat-ms 200 2>"$TMP/worker.log" &
pids+=($!)
"$BIN/coordinator/llmb-coordinator" --tick-ms 200 --metrics-addr '' \
    2>"$TMP/coordinator.log" &
pids+=($!)

export LLMB_TEST_WEB_TOKEN="tok-$$-$RANDOM$RANDOM"
# (its 64 event streams, checked by web_api.py, come from one address)
start_web "$TMP/web.log" --token-env LLMB_TEST_WEB_TOKEN \
    --max-conns-per-ip 256
RW=$PORT
rw_pid=${pids[-1]}
# Bound to every address without a token: a warning.
start_web "$TMP/web-ro.log"
RO=$PORT
ro_pid=${pids[-1]}
"$LLMB" web --addr :0 2>"$TMP/web-any.log" &
any=$!
for _ in $(seq 50); do
    grep -q "serving" "$TMP/web-any.log" && break
    sleep 0.1
done
kill -TERM "$any"
wait "$any" || true
grep -q "warning: listening on :0 without --token-env" "$TMP/web-any.log" ||
    fail "no warning for a server bound to every address without a token"

# Redis away: the files and /api/config answer, the views 503, and the
# live stream says unhealthy.
dead_port=$(free_port)
start_web "$TMP/web-down.log" --redis "redis://127.0.0.1:$dead_port"
grep -q "warning: cannot connect to redis" "$TMP/web-down.log" ||
    fail "no warning when Redis is away: $(cat "$TMP/web-down.log")"
python3 - "$PORT" <<'PY' || fail "llmb web with Redis away"
import http.client, json, sys
from web_sse import events
def get(path):
    c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    return r.status, r
st, r = get("/api/config")
assert st == 200, st
for path in ("/api/overview", "/api/queues", "/api/jobs/x",
             "/api/queues/q/jobs"):
    st, r = get(path)
    body = json.loads(r.read())
    assert st == 503 and "cannot connect to redis" in body["error"], (path, st, body)
ev, data = next(events(sys.argv[1]))
assert ev == "overview", ev
assert data["health"]["status"] == "unhealthy" and data["now_ms"] is None, data
PY

python3 "$(dirname "$0")/web_api.py" "$RW" "$RO" "$LLMB_TEST_WEB_TOKEN" \
    "$LLMB" "$BIN/tools/push/llmb-push" "ww-$$" ||
    fail "web_api.py failed (server logs: $(cat "$TMP/web.log"))"

# A job view of big task results: no request records (their number
# stays), no histogram buckets, and the tasks cut short before 4 MiB of
# JSON, which the answer says.
"$BIN/tools/push/llmb-push" --queue bigq --id big --tasks 60 echo '{}' \
    >/dev/null || fail "llmb-push big"
python3 - "$TMP/big.json" <<'PY'
import json, sys
reqs = [{"i": i, "ttft_ms": 12.5, "tokens": 100, "status": 200}
        for i in range(1000)]
hist = {"hist": "llmb-loglin-7", "scale": 1000, "count": 3, "min": 1000,
        "max": 9000, "sum": 15000, "b": [10, 1, 5, 1, 5, 1]}
res = {"_requests": reqs, "metrics": {"ttft_ms": hist},
       "text": "x" * 100000}
open(sys.argv[1], "w").write(json.dumps(res))
PY
for i in $(seq 0 59); do
    rcli -x HSET "$PREFIX:{bigq}:j:big" "$i:result" <"$TMP/big.json" \
        >/dev/null
done
python3 - "$RW" <<'PY' || fail "the job view of big results"
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=60)
c.request("GET", "/api/jobs/big?tasks=60")
r = c.getresponse()
body = r.read()
assert r.status == 200, (r.status, body[:300])
d = json.loads(body)
n = len(d["tasks"])
assert len(body) <= 4 * 1048576 + 65536, len(body)
assert 0 < n < 60 and d["tasks_shown"] == n, (n, d["tasks_shown"])
assert d["tasks_cut"] == 4 * 1048576, d.get("tasks_cut")
for t in d["tasks"]:
    res = t["result"]
    assert "_requests" not in res and res["_requests_omitted"] == 1000, \
        list(res)
    h = res["metrics"]["ttft_ms"]
    assert "b" not in h and h["count"] == 3, h
c.request("GET", "/api/jobs/big?tasks=60&task_offset=%d" % n)
r = c.getresponse()
d2 = json.loads(r.read())
assert d2["tasks"][0]["index"] == n, d2["tasks"][0]["index"]
c.request("GET", "/api/jobs/big?tasks=2")
r = c.getresponse()
d3 = json.loads(r.read())
assert len(d3["tasks"]) == 2 and d3["tasks_cut"] is None, d3["tasks_cut"]
PY

# A queue whose events key is no stream (WRONGTYPE): the reader naps and
# warns once instead of spinning, skips that queue, and the events of
# the other queues still arrive.
"$BIN/tools/push/llmb-push" --queue wtq --id wt1 echo '{}' >/dev/null ||
    fail "llmb-push wt1"
rcli SET "$PREFIX:{wtq}:events" x >/dev/null
start_web "$TMP/web-wt.log"
wt_pid=${pids[-1]}
python3 - "$PORT" "$BIN/tools/push/llmb-push" <<'PY' ||
import subprocess, sys, time
from web_sse import events
it = events(sys.argv[1])
for ev, d in it:
    if ev == "overview":
        break
subprocess.run([sys.argv[2], "--queue", "okq", "--id", "okjob", "echo", "{}"],
               check=True, capture_output=True, timeout=60)
deadline = time.monotonic() + 60
for ev, d in it:
    if ev == "job" and d.get("id") == "okjob":
        break
    assert time.monotonic() < deadline, "no event of okjob"
PY
    fail "events with a WRONGTYPE events key: $(tail -5 "$TMP/web-wt.log")"
n=$(grep -c "WRONGTYPE" "$TMP/web-wt.log" || true)
[[ $n -le 1 ]] || fail "$n warnings of WRONGTYPE: $(tail -3 "$TMP/web-wt.log")"
grep -q "is a string, not a stream" "$TMP/web-wt.log" ||
    fail "no word of the skipped queue: $(cat "$TMP/web-wt.log")"
kill -TERM "$wt_pid"
wait "$wt_pid" || fail "llmb web (wtq) did not stop cleanly"
rcli DEL "$PREFIX:{wtq}:events" >/dev/null

# Started with Redis away: once Redis is there (with old events), the
# stream starts from the present, not from the oldest event kept.
old_port=$(free_port)
old_url="redis://127.0.0.1:$old_port"
mkdir -p "$TMP/old"
old_redis() {
    redis-server --port "$old_port" --bind 127.0.0.1 --save '' \
        --appendonly no --daemonize yes --dir "$TMP/old" \
        --dbfilename old.rdb --pidfile "$TMP/old/redis.pid" \
        --logfile "$TMP/old/redis.log"
    for _ in $(seq 100); do
        redis-cli -p "$old_port" PING 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    fail "redis-server on $old_port did not start"
}
old_redis
LLMB_REDIS_URL=$old_url "$BIN/tools/push/llmb-push" --queue oldq \
    --id oldjob echo '{}' >/dev/null || fail "llmb-push oldjob"
redis-cli -p "$old_port" SHUTDOWN SAVE >/dev/null 2>&1 || true
for _ in $(seq 100); do
    redis-cli -p "$old_port" PING >/dev/null 2>&1 || break
    sleep 0.1
done
start_web "$TMP/web-old.log" --redis "$old_url"
old_web=${pids[-1]}
python3 - "$PORT" "$BIN/tools/push/llmb-push" "$old_url" "$old_port" \
    "$TMP/old" <<'PY' ||
import os, subprocess, sys
from web_sse import events
port, push, url, rport, rdir = sys.argv[1:6]
it = events(port)
for ev, d in it:
    assert ev == "overview" and d["now_ms"] is None, (ev, d)
    break
subprocess.run(["redis-server", "--port", rport, "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "yes",
                "--dir", rdir, "--dbfilename", "old.rdb", "--pidfile",
                rdir + "/redis.pid", "--logfile", rdir + "/redis.log"],
               check=True, timeout=60)
for ev, d in it:
    assert ev != "job", d
    if ev == "overview" and d["now_ms"] is not None:
        break
env = dict(os.environ, LLMB_REDIS_URL=url)
subprocess.run([push, "--queue", "oldq", "--id", "newjob", "echo", "{}"],
               check=True, capture_output=True, timeout=60, env=env)
for ev, d in it:
    if ev == "job":
        assert d["id"] == "newjob", ("an old event replayed", d)
        break
PY
    fail "events after Redis came: $(tail -5 "$TMP/web-old.log")"
redis-cli -p "$old_port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
kill -TERM "$old_web"
wait "$old_web" || fail "llmb web (Redis late) did not stop cleanly"

# Resuming the live stream: every message has an id; a stream opened
# again with the last id it read (Last-Event-ID, as EventSource sends it)
# gets exactly the job events it missed, in order, once each, whether
# another stream kept the reader going or not; an id it can no longer
# serve (fallen out of the ring of 1024, of another server, garbage, of
# the future) gets one reload event, then the present.
"$BIN/tools/push/llmb-push" --queue rsq --id rs-held echo '{}' >/dev/null ||
    fail "llmb-push rs-held"
python3 - "$RW" "$BIN/tools/push/llmb-push" "$URL" "$PREFIX" <<'PY' ||
import re, subprocess, sys, time
from web_sse import Stream
port, push, url, prefix = sys.argv[1:5]

def num(mid):
    m = re.fullmatch(r"([0-9a-f]{16})-([0-9]+)", mid or "")
    assert m, ("a message without a valid id", mid)
    return m.group(1), int(m.group(2))

def until(it, pred, what):
    """The job messages of it up to the one pred takes, that one included."""
    got = []
    deadline = time.monotonic() + 60
    for mid, ev, d in it:
        assert ev != "reload", ("a reload while waiting for " + what, d)
        num(mid)
        if ev == "job":
            got.append((mid, ev, d))
            if pred(d):
                return got
        assert time.monotonic() < deadline, "no event: " + what

def job_done(jid):
    return lambda d: d.get("id") == jid and d["event"] == "finished"

def run(*jids):
    for j in jids:
        subprocess.run([push, "--queue", "live", "--id", j, "--wait",
                        "--no-progress", "echo", "{}"], check=True,
                       capture_output=True, timeout=120)

def consecutive(last, got):
    ns = [num(m)[1] for m, _, _ in got]
    assert ns == list(range(last + 1, last + 1 + len(ns))), (last, ns)

# 1. Another stream open all along: the resumed stream gets what it saw.
watch = Stream(port)
wit = iter(watch)
s1 = Stream(port)
it1 = iter(s1)
mid, ev, d = next(it1)
assert ev == "overview", ev
server, _ = num(mid)
run("rs-1")
last = until(it1, job_done("rs-1"), "rs-1 finished")[-1][0]
s1.close()
until(wit, job_done("rs-1"), "rs-1 finished (watch)")
run("rs-2", "rs-3")
seen = until(wit, job_done("rs-3"), "rs-3 finished (watch)")
missed = [m for m in seen if num(m[0])[1] > num(last)[1]]
assert any(d.get("id") == "rs-2" for _, _, d in missed), missed
s1 = Stream(port, last)
it1 = iter(s1)
mid, ev, d = next(it1)
assert ev == "overview" and num(mid) == num(last), (mid, ev, last)
got = [next(m for m in it1 if m[1] == "job") for _ in missed]
assert got == missed, ("not exactly the missed events", got, missed)
s1.close()
last = got[-1][0]

# 2. No stream open in between: the reader goes on for a while after the
# last one closed, so a lone page's reconnection misses nothing either.
watch.close()
run("rs-4", "rs-5")
time.sleep(2)  # read by the server by then (XREAD BLOCK of 1 s at most)
s2 = Stream(port, last)
it2 = iter(s2)
got = until(it2, job_done("rs-5"), "rs-5 finished (resumed)")
consecutive(num(last)[1], got)
assert {"rs-4", "rs-5"} <= {d.get("id") for _, _, d in got}, got

# 3. An id fallen out of the ring: 1100 events later, one reload.
key = "%s:{rsq}:events" % prefix
cmds = "".join("XADD %s * event progress job rs-held done %d tasks 1100\n"
               % (key, i) for i in range(1100))
subprocess.run(["redis-cli", "-u", url], input=cmds.encode(), check=True,
               capture_output=True, timeout=60)
flood = until(it2, lambda d: d.get("id") == "rs-held" and
              d.get("done") == 1099, "the 1100th event")
s2.close()
now = num(flood[-1][0])[1]
assert now - num(last)[1] > 1024, (now, last)

def reload_on(lid):
    s = Stream(port, lid)
    it = iter(s)
    mid, ev, d = next(it)
    assert ev == "overview", (lid, ev)
    at = num(mid)
    mid, ev, d = next(it)
    assert ev == "reload" and d == {"reason": "unknown"}, (lid, ev, d)
    assert num(mid) == at and at[0] == server and at[1] >= now, (lid, mid)
    s.close()

other = ("0" if server[0] != "0" else "1") + server[1:]
for lid in [last, "garbage", "%s-%d" % (other, now), "%s-%d" % (server,
            now + 1000000), server + "-", server + "-1x", server + "-+1",
            server + "--1", "%s-%d0" % (server, 2 ** 64)]:
    reload_on(lid)
# the oldest id kept resumes, one older does not (the present is read
# from a new stream: an event of rs-5 may have come after the 1100)
s = Stream(port)
now = num(next(iter(s))[0])[1]
s.close()
s = Stream(port, "%s-%d" % (server, now - 1024))
it = iter(s)
next(it)
mid, ev, d = next(it)
assert ev == "job" and num(mid)[1] == now - 1023, (mid, ev, d)
s.close()
reload_on("%s-%d" % (server, now - 1025))
# an empty Last-Event-ID is none: no reload
s = Stream(port, "")
it = iter(s)
for k, (mid, ev, d) in enumerate(it):
    assert ev != "reload", d
    if ev == "overview" and k > 0:
        break
s.close()
PY
    fail "resuming the live stream: $(tail -5 "$TMP/web.log")"

# DNS rebinding: a Host that is not this server's is refused (421),
# unless --allow-host names it.
for h in evil.example evil.example:$RO 127.0.0.1.evil.example; do
    st=$(curl -s -o "$TMP/host.out" -w '%{http_code}' -H "Host: $h" \
        "http://127.0.0.1:$RO/api/config")
    [[ $st == 421 ]] || fail "Host $h: $st, not 421"
    st=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $h" \
        "http://127.0.0.1:$RO/")
    [[ $st == 421 ]] || fail "Host $h on /: $st, not 421"
done
grep -q -- "--allow-host" "$TMP/host.out" || fail "421 without a word: $(cat "$TMP/host.out")"
for h in "localhost:$RO" "127.0.0.1:$RO" "[::1]:$RO" LOCALHOST; do
    st=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $h" \
        "http://127.0.0.1:$RO/api/config")
    [[ $st == 200 ]] || fail "Host $h: $st, not 200"
done
start_web "$TMP/web-host.log" --allow-host evil.example --allow-host ui.lan
host_web=${pids[-1]}
for h in evil.example "ui.lan:$PORT"; do
    st=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $h" \
        "http://127.0.0.1:$PORT/api/config")
    [[ $st == 200 ]] || fail "--allow-host, Host $h: $st, not 200"
done
st=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: other.example" \
    "http://127.0.0.1:$PORT/api/config")
[[ $st == 421 ]] || fail "--allow-host, Host other.example: $st, not 421"
kill -TERM "$host_web"
wait "$host_web" || fail "llmb web (--allow-host) did not stop cleanly"

# Per-address connection limit (slowloris): N idle connections from one
# address hold their slots, the N+1th is closed at once without an
# answer, and the N idle ones and another address are still served. At
# the default 16, and at both ends of the range: 1, and 256 (20 idle
# connections are no limit).
conns_check() { # PORT N IDLE: IDLE idle connections, N the limit
    python3 "$(dirname "$0")/web_sse.py" "$1" /api/config "$2" "$3" 200
}
for n in default 1 256; do
    if [[ $n == default ]]; then
        start_web "$TMP/web-conns-$n.log"
        conns_check "$PORT" 16 16 || fail "--max-conns-per-ip 16 (default)"
    elif [[ $n -eq 1 ]]; then
        start_web "$TMP/web-conns-$n.log" --max-conns-per-ip "$n"
        conns_check "$PORT" 1 1 || fail "--max-conns-per-ip 1"
    else
        start_web "$TMP/web-conns-$n.log" --max-conns-per-ip "$n"
        conns_check "$PORT" 256 20 || fail "--max-conns-per-ip 256"
    fi
    kill -TERM "${pids[-1]}"
    wait "${pids[-1]}" ||
        fail "llmb web (--max-conns-per-ip $n) did not stop cleanly"
done

# Both servers are still up, and stop cleanly on SIGTERM.
for p in "$RW" "$RO"; do
    python3 -c 'import sys, urllib.request
urllib.request.urlopen("http://127.0.0.1:%s/api/config" % sys.argv[1], timeout=10)' "$p" ||
        fail "the server on port $p no longer answers"
done
# SIGTERM ends the live streams, the daemon and the pool: exit 0, and
# under -DLLMB_SANITIZE no report (leaks included).
for p in "$rw_pid" "$ro_pid"; do
    kill -TERM "$p"
    rc=0
    wait "$p" || rc=$?
    [[ $rc -eq 0 ]] || fail "llmb web exited $rc on SIGTERM: $(cat "$TMP"/web*.log)"
done
grep -q "received SIGTERM; stopping" "$TMP/web.log" || fail "no stop line"
if grep -Eq 'Sanitizer|runtime error:' "$TMP/web.log" "$TMP/web-ro.log"; then
    fail "sanitizer report: $(cat "$TMP/web.log" "$TMP/web-ro.log")"
fi
echo "$NAME: ok"
