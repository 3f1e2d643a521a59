#!/usr/bin/env bash
# `llmb web` on a real Redis Cluster (3 primaries; the ctest fixture
# redis_cluster): the views read queues spread over every primary, and
# the live stream delivers the job events of queues on different
# primaries (one XREAD per node), including a job run by a worker.
set -euo pipefail
. "$(dirname "$0")/cluster_lib.sh"
admin="$1"
cluster_test "e2eweb$$"

# queues on every primary: one job each, so that the server knows them
queues=()
for i in $(seq 0 11); do
    "$push" --queue "wq$i" --id "first$i" echo '{}' >/dev/null 2>&1
    queues+=("wq$i")
done

: > "$tmp/web.log" # made before the child's redirection: read at once
"$admin" web --addr 127.0.0.1:0 2>"$tmp/web.log" &
web_pid=$!
pids+=($web_pid)
port=""
for _ in $(seq 100); do
    port=$(sed -n 's|^llmb web: serving http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/web.log")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || fail "llmb web did not start: $(cat "$tmp/web.log")"
"$worker" --id "cw$$" --queues wq0 --handler echo=echo --heartbeat-ms 200 \
    2>"$tmp/worker.log" &
pids+=($!)

python3 - "$port" "$push" "$admin" "${queues[@]}" <<'PY' || fail "see above; web log: $(cat "$tmp/web.log")"
import http.client, json, subprocess, sys, threading, time
port, push, admin, queues = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]

def get(path):
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    assert r.status == 200, (path, r.status, body)
    return json.loads(body)

qs = get("/api/queues")
cli = json.loads(subprocess.run([admin, "queues", "--json"], check=True,
                                capture_output=True, text=True).stdout)
def steady(doc):  # the figures that do not move by themselves
    return [{k: v for k, v in q.items() if k == "name" or k == "jobs"}
            for q in doc["queues"]]
assert steady(qs) == steady(cli), (qs, cli)
assert sorted(q["name"] for q in qs["queues"]) == sorted(queues), qs
for q in queues:
    d = get("/api/queues/%s/jobs" % q)
    assert d["total"] >= 1, (q, d)

events, cv = [], threading.Condition()
def reader():
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
    c.request("GET", "/api/events")
    r = c.getresponse()
    name = None
    while True:
        line = r.fp.readline().decode()
        if not line:
            return
        line = line.rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name == "job":
            with cv:
                events.append(json.loads(line[6:]))
                cv.notify_all()
threading.Thread(target=reader, daemon=True).start()
# the stream reads from about when it opened: give it its first overview
time.sleep(1)
for q in queues:
    subprocess.run([push, "--queue", q, "--id", "live-" + q, "echo", "{}"],
                   check=True, capture_output=True)
want = {("live-" + q, "pushed") for q in queues} | {("live-wq0", "finished")}
deadline = time.monotonic() + 60
with cv:
    while not want <= {(e.get("id"), e["event"]) for e in events}:
        left = deadline - time.monotonic()
        if left <= 0:
            got = {(e.get("id"), e["event"]) for e in events}
            sys.exit("missing events: %r" % sorted(want - got))
        cv.wait(left)
fin = [e for e in events if e.get("id") == "live-wq0" and e["event"] == "finished"]
assert fin[0]["state"] == "completed" and fin[0]["queue"] == "wq0", fin
print("cluster_web: events ok")
PY

# a clean stop, with no sanitizer report under -DLLMB_SANITIZE
kill -TERM "$web_pid"
rc=0
wait "$web_pid" || rc=$?
[ "$rc" = 0 ] || fail "llmb web exited $rc on SIGTERM: $(cat "$tmp/web.log")"
if grep -Eq 'Sanitizer|runtime error:' "$tmp/web.log"; then
    fail "sanitizer report: $(cat "$tmp/web.log")"
fi
echo "cluster_web: ok"
