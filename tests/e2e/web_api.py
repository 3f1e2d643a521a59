#!/usr/bin/env python3
"""The checks of web_api.sh: talks HTTP to two running `llmb web`
servers (one taking actions with a token, one read-only) and compares
what they answer with what the llmb CLI prints and with docs/web.md.

usage: web_api.py RW_PORT RO_PORT TOKEN LLMB LLMB_PUSH WORKER_ID
(LLMB_REDIS_URL and LLMB_PREFIX name the cluster, as for the CLI.)
Every wait is bounded and ends in a failure, never a timed assertion."""
import http.client
import json
import random
import socket
import subprocess
import sys
import threading
import time

from web_sse import read_to_close

RW, RO, TOKEN, LLMB, PUSH, WORKER = sys.argv[1:7]
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; "
       "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
JSON_TYPE = "application/json; charset=utf-8"
XSS = '<img src=x onerror=alert(1)>'


def fail(msg):
    print("FAIL (web_api.py): " + msg, file=sys.stderr)
    sys.exit(1)


def req(method, path, port=RW, headers=None, body=None):
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r, data


def api(method, path, want=200, port=RW, headers=None, body=None):
    st, r, data = req(method, path, port, headers, body)
    if st != want:
        fail("%s %s answered %d, not %d: %r" % (method, path, st, want,
                                                data[:300]))
    if r.getheader("Content-Type") != JSON_TYPE:
        fail("%s %s: Content-Type %r" % (method, path,
                                         r.getheader("Content-Type")))
    check_headers(method + " " + path, r)
    doc = json.loads(data)
    if st >= 400 and set(doc) != {"error"}:
        fail("%s %s: an error is not {\"error\": ...}: %r" % (method, path,
                                                                doc))
    return doc


def check_headers(what, r):
    if r.getheader("Content-Security-Policy") != CSP:
        fail(what + ": CSP is %r" % r.getheader("Content-Security-Policy"))
    if r.getheader("X-Content-Type-Options") != "nosniff":
        fail(what + ": no X-Content-Type-Options: nosniff")
    if r.getheader("Referrer-Policy") != "no-referrer":
        fail(what + ": no Referrer-Policy: no-referrer")


def cli(*args):
    p = subprocess.run([LLMB] + list(args) + ["--json"], capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        fail("llmb %s: %s" % (" ".join(args), p.stderr))
    return json.loads(p.stdout)


def push(queue, jid, typ="echo", payload="{}", *extra):
    p = subprocess.run([PUSH, "--queue", queue, "--id", jid] + list(extra) +
                       [typ, payload], capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0:
        fail("llmb-push %s: %s" % (jid, p.stderr))


def wait_for(what, fn, tries=300):
    for _ in range(tries):
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    fail("gave up waiting for " + what)


def shape(v):
    """The keys of a document, recursively (values change with time)."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(v[0])] if v else []
    return None


AUTH = {"Authorization": "Bearer " + TOKEN}

# --- config, files, headers ------------------------------------------------
d = api("GET", "/api/config")
if d["read_only"] is not False or not d["version"]:
    fail("config: %r" % d)
if api("GET", "/api/config", port=RO)["read_only"] is not True:
    fail("the server without --token-env is not read-only")
for path in ("/", "/static/app.js", "/static/app.css",
             "/static/vendor/chart.min.js"):
    st, r, data = req("GET", path)
    if st == 404:
        continue  # the front end has not shipped that file (yet)
    if st != 200 or not data:
        fail("GET %s: %d" % (path, st))
    check_headers("GET " + path, r)
    want = {"/": "text/html; charset=utf-8",
            "/static/app.css": "text/css; charset=utf-8"}.get(
                path, "text/javascript; charset=utf-8")
    if r.getheader("Content-Type") != want:
        fail("GET %s: Content-Type %r" % (path, r.getheader("Content-Type")))
st, r, _ = req("GET", "/static/../../etc/passwd")
if st != 404:
    fail("a path out of the files answered %d" % st)

# --- the live stream: a job from pending to completed ----------------------
events = []
events_cv = threading.Condition()


def sse_reader():
    c = http.client.HTTPConnection("127.0.0.1", int(RW), timeout=60)
    c.request("GET", "/api/events")
    r = c.getresponse()
    if r.status != 200 or r.getheader("Content-Type") != "text/event-stream":
        with events_cv:
            events.append(("bad", r.status))
            events_cv.notify_all()
        return
    check_headers("GET /api/events", r)
    name, data = None, []
    while True:
        line = r.fp.readline()
        if not line:
            return
        line = line.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and name is not None:
            with events_cv:
                events.append((name, json.loads("\n".join(data))))
                events_cv.notify_all()
            name, data = None, []


threading.Thread(target=sse_reader, daemon=True).start()


def wait_event(what, pred, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    with events_cv:
        while True:
            for e in events:
                if e[0] == "bad":
                    fail("GET /api/events answered %r" % (e,))
                if pred(e):
                    return e
            left = deadline - time.monotonic()
            if left <= 0:
                fail("no event: %s; got %r" % (what, events[-20:]))
            events_cv.wait(left)


ov = wait_event("a first overview", lambda e: e[0] == "overview")[1]
if set(ov) != {"health", "stats", "workers", "redis", "now_ms"}:
    fail("overview event: %r" % sorted(ov))

# Paused, the job waits: pending; resumed, the worker runs it.
api("POST", "/api/queues/live/pause", headers=AUTH)
push("live", "sse-1", "echo", json.dumps({"x": XSS}))
wait_event("sse-1 pushed", lambda e: e[0] == "job" and
           e[1].get("id") == "sse-1" and e[1]["event"] == "pushed")
job = api("GET", "/api/jobs/sse-1")
if job["job"]["state"] != "pending" or job["job"]["payload"] != {"x": XSS}:
    fail("sse-1 while paused: %r" % job["job"])
q = [x for x in api("GET", "/api/queues")["queues"] if x["name"] == "live"]
if not q or q[0]["paused"] is not True or q[0]["pending"] != 1:
    fail("the paused queue in /api/queues: %r" % q)
api("POST", "/api/queues/live/resume", headers=AUTH)
e = wait_event("sse-1 finished", lambda e: e[0] == "job" and
               e[1].get("id") == "sse-1" and e[1]["event"] == "finished")[1]
if e["state"] != "completed" or e["queue"] != "live" or "stream_id" not in e:
    fail("the finished event of sse-1: %r" % e)
wait_event("sse-1 aggregated", lambda e: e[0] == "job" and
           e[1].get("id") == "sse-1" and e[1]["event"] == "aggregated")
n = len([x for x in events if x[0] == "overview"])
wait_event("a later overview", lambda e: e[0] == "overview" and
           len([x for x in events if x[0] == "overview"]) > n + 1)

# At most 64 streams: one more is refused with 503; once they close, a
# stream opens again.
socks = []
for i in range(63):
    sk = socket.create_connection(("127.0.0.1", int(RW)), timeout=30)
    sk.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    if not sk.recv(64).startswith(b"HTTP/1.1 200"):
        fail("stream %d of 64 was refused" % (i + 2))
    socks.append(sk)
api("GET", "/api/events", 503)
for sk in socks:
    sk.close()


def stream_opens():
    sk = socket.create_connection(("127.0.0.1", int(RW)), timeout=30)
    sk.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    ok = sk.recv(64).startswith(b"HTTP/1.1 200")
    sk.close()
    return ok


wait_for("a stream to open again after 63 closed", stream_opens)

# --- the overview and the views are the CLI's documents --------------------
ov = api("GET", "/api/overview")
if set(ov) != {"health", "stats", "workers", "redis", "now_ms"}:
    fail("overview keys: %r" % sorted(ov))
if ov["health"]["status"] not in ("healthy", "degraded", "unhealthy") or \
        not isinstance(ov["health"]["reasons"], list):
    fail("overview health: %r" % ov["health"])
if shape(ov["stats"]) != shape(cli("stats")):
    fail("overview stats differ from llmb stats --json: %r" % ov["stats"])
if shape(ov["workers"]) != shape(cli("workers")):
    fail("overview workers differ from llmb workers --json")
if WORKER not in [w["id"] for w in ov["workers"]["workers"]]:
    fail("the worker is not in the overview")
if not isinstance(ov["redis"]["used_memory"], int) or \
        not ov["redis"]["version"]:
    fail("overview redis: %r" % ov["redis"])
qs = api("GET", "/api/queues")
if qs != cli("queues"):
    fail("/api/queues differs from llmb queues --json")
job = api("GET", "/api/jobs/sse-1")
want = cli("show", "sse-1")
for doc in (job, want):
    doc.pop("now_ms")
want["task_offset"] = 0
if job["job"] != want["job"] or job["tasks"] != want["tasks"]:
    fail("/api/jobs/sse-1 differs from llmb show --json")
if job["job"]["payload"]["x"] != XSS:
    fail("the payload was changed: %r" % job["job"]["payload"])
d = api("GET", "/api/compare?jobs=sse-1,sse-1")
if d["baseline"] != "sse-1" or len(d["jobs"]) != 2:
    fail("compare: %r" % d)
if d != cli("compare", "sse-1", "sse-1"):
    fail("/api/compare differs from llmb compare --json")

# --- paging and search --------------------------------------------------------
for i in range(25):
    push("pg", "pg-%d" % i)
push("pg", "other-1", "other")
push("pg", "other-2", "other")
d = api("GET", "/api/queues/pg/jobs?limit=10")
if len(d["jobs"]) != 10 or d["total"] != 27 or d["next_offset"] != 10:
    fail("page 1: %r" % {k: d[k] for k in ("total", "next_offset")})
if d["jobs"][0]["id"] != "other-2":
    fail("newest first: %r" % d["jobs"][0])
if set(d["jobs"][0]) != set(cli("jobs", "--queue", "pg")["jobs"][0]):
    fail("the job objects differ from llmb jobs --json")
d = api("GET", "/api/queues/pg/jobs?limit=10&offset=20")
if len(d["jobs"]) != 7 or d["next_offset"] is not None:
    fail("last page: %r" % d)
seen = []
off = 0
while off is not None:
    d = api("GET", "/api/queues/pg/jobs?limit=4&offset=%d" % off)
    seen += [j["id"] for j in d["jobs"]]
    off = d["next_offset"]
if sorted(seen) != sorted(["pg-%d" % i for i in range(25)] +
                          ["other-1", "other-2"]):
    fail("paging missed or repeated jobs: %r" % seen)
d = api("GET", "/api/queues/pg/jobs?search=pg-1&limit=50")
if sorted(j["id"] for j in d["jobs"]) != sorted(
        ["pg-1"] + ["pg-1%d" % i for i in range(10)]) or d["total"] != 11:
    fail("search by id prefix: %r" % d)
d = api("GET", "/api/queues/pg/jobs?search=other")
if sorted(j["id"] for j in d["jobs"]) != ["other-1", "other-2"]:
    fail("search by type: %r" % d)
d = api("GET", "/api/queues/pg/jobs?search=pg-&limit=5")
if len(d["jobs"]) != 5 or d["next_offset"] != 5:
    fail("search, paged: %r" % d)
d = api("GET", "/api/queues/pg/jobs?state=completed")
if d["jobs"] or d["total"] != 0:
    fail("state filter: %r" % d)
d = api("GET", "/api/queues/nosuchqueue/jobs")
if d["jobs"] or d["total"] != 0 or d["next_offset"] is not None:
    fail("unknown queue: %r" % d)

# the per-task grid of a fan-out job
push("pg", "fan", "echo", "{}", "--tasks", "10")
d = api("GET", "/api/jobs/fan?tasks=2&task_offset=3")
if [t["index"] for t in d["tasks"]] != [3, 4] or d["tasks_total"] != 10 or \
        d["task_offset"] != 3 or d["task_states"] != {"pending": 10}:
    fail("task grid: %r" % d)
d = api("GET", "/api/jobs/fan?tasks=5&task_offset=8")
if [t["index"] for t in d["tasks"]] != [8, 9]:
    fail("task grid at the end: %r" % d["tasks"])
d = api("GET", "/api/jobs/fan?queue=pg&tasks=0")
if d["tasks"] != [] or d["job"]["queue"] != "pg":
    fail("?queue= and tasks=0: %r" % d)

# --- actions: 401 without the token, 403 read-only, done with it ----------
actions = [("/api/jobs/pg-3/cancel", {"job": "pg-3", "queue": "pg",
                                      "removed": 1}),
           ("/api/jobs/pg-3/retry", {"job": "pg-3", "queue": "pg",
                                     "enqueued": 1}),
           ("/api/queues/pg/pause", {"queue": "pg", "paused": True,
                                     "changed": True}),
           ("/api/queues/pg/resume", {"queue": "pg", "paused": False,
                                      "changed": True}),
           ("/api/queues/pg/purge", None)]
for path, answer in actions:
    api("POST", path, 401)
    api("POST", path, 401, headers={"Authorization": "Bearer wrong"})
    api("POST", path, 401, headers={"Authorization": "Bearer " + TOKEN[:-1]})
    api("POST", path, 401, headers={"Authorization": "Bearer " + TOKEN + "x"})
    api("POST", path, 401, headers={"Authorization": TOKEN})
    api("POST", path, 403, port=RO, headers=AUTH)
    api("GET", path, 405)
    d = api("POST", path, headers=AUTH)
    if answer is not None and d != answer:
        fail("POST %s: %r" % (path, d))
if d["queue"] != "pg" or d["cancelled"] != 28 or d["calls"] < 1:
    fail("purge: %r" % d)
if any(j["state"] == "pending" for j in
       api("GET", "/api/queues/pg/jobs?limit=500")["jobs"]):
    fail("jobs still pending after the purge")
api("POST", "/api/jobs/pg-3/cancel", 409, headers=AUTH)
api("POST", "/api/jobs/nope/cancel", 404, headers=AUTH)
api("POST", "/api/jobs/pg-3/cancel", 413, headers=AUTH, body="x=1")
d = api("GET", "/api/compare?jobs=" + ",".join(["a"] * 17), 400)
if d["error"] != "jobs must name 2 to 16 jobs (or one A/B job), comma-separated":
    fail("17 jobs compared: %r" % d)
# Headers past the 32 KiB of a connection (docs/web.md): 431.
st, _, _ = req("GET", "/api/config", headers={"X-Big": "a" * 40000})
if st != 431:
    fail("40000 bytes of headers answered %d, not 431" % st)
# The answers libmicrohttpd makes itself, before any code of ours runs
# (docs/web.md): their status, and a fixed text that repeats nothing of
# the request (they cannot carry the headers of every response).
MARK = b"<script>alert(1)</script>"
HOST = b"Host: localhost\r\n"
for what, raw, want in [
        ("a header line without a colon",
         b"GET /api/config HTTP/1.1\r\n" + HOST + MARK + b"\r\n\r\n", 400),
        ("a Content-Length that is no number",
         b"GET /api/config HTTP/1.1\r\n" + HOST + b"Content-Length: " +
         MARK + b"\r\n\r\n", 400),
        ("a Content-Length past 2^64",
         b"GET /api/config?" + MARK + b" HTTP/1.1\r\n" + HOST +
         b"Content-Length: 99999999999999999999999\r\n\r\n", 413),
        ("a request line past the memory",
         b"GET /" + MARK + b"a" * 40000 + b" HTTP/1.1\r\n" + HOST +
         b"\r\n", 414),
        ("headers past the memory",
         b"GET /api/config HTTP/1.1\r\n" + HOST + b"X: " + MARK +
         b"a" * 40000 + b"\r\n\r\n", 431),
        ("HTTP/2.5", b"GET /api/config?" + MARK + b" HTTP/2.5\r\n" + HOST +
         b"\r\n", 505)]:
    s = socket.create_connection(("127.0.0.1", int(RW)), timeout=30)
    s.sendall(raw)
    got = read_to_close(s)
    if not got.startswith(b"HTTP/1.1 %d " % want):
        fail("%s answered %r, not %d" % (what, got[:80], want))
    if b"alert" in got or b"<script" in got:
        fail("%s: the answer repeats the request: %r" % (what, got[:300]))
# A body announced is refused at once, none of it read: the answer comes
# though not a byte of it was sent.
for te in (b"Content-Length: 1000000000", b"Transfer-Encoding: chunked"):
    s = socket.create_connection(("127.0.0.1", int(RW)), timeout=30)
    s.sendall(b"POST /api/jobs/pg-3/cancel HTTP/1.1\r\nHost: localhost\r\n"
              + te + b"\r\n\r\n")
    head = s.recv(4096).decode()
    s.close()
    if not head.startswith("HTTP/1.1 413 ") or "Connection: close" not in head:
        fail("%s and no body: %r" % (te.decode(), head[:300]))

# --- bad requests ---------------------------------------------------------------
push("idle", "noagg")  # no worker serves "idle": never aggregated
for path, want in [("/api/jobs/nope", 404), ("/api/jobs/bad%20id", 400),
                   ("/api/jobs/" + "x" * 129, 400),
                   ("/api/queues/bad%7Bq%7D/jobs", 400),
                   ("/api/queues/pg/jobs?limit=0", 400),
                   ("/api/queues/pg/jobs?limit=501", 400),
                   ("/api/queues/pg/jobs?limit=1x", 400),
                   ("/api/queues/pg/jobs?offset=100001", 400),
                   ("/api/queues/pg/jobs?offset=-1", 400),
                   ("/api/queues/pg/jobs?state=lost", 400),
                   ("/api/queues/pg/jobs?search=" + "s" * 200, 400),
                   ("/api/jobs/fan?tasks=1001", 400),
                   ("/api/jobs/fan?task_offset=-1", 400),
                   ("/api/jobs/fan?queue=bad%20q", 400),
                   ("/api/compare", 400), ("/api/compare?jobs=", 400),
                   ("/api/compare?jobs=" + ",".join(["a"] * 17), 400),
                   ("/api/compare?jobs=nope,sse-1", 404),
                   ("/api/compare?jobs=noagg,sse-1", 404),
                   ("/api/nope", 404), ("/api/", 404), ("/api", 404),
                   ("/api//config", 404), ("/api/config/", 404),
                   ("/api/jobs/a/b/c/d/e/f/g", 404), ("/nope", 404),
                   ("/static/", 404), ("/static/nope.js", 404)]:
    api("GET", path, want)
d = api("GET", "/api/queues/pg/jobs?state=lost", 400)
if d["error"] != ('state must be pending, running, completed, failed or '
                  'cancelled, got "lost"'):
    fail("a bad state: %r" % d)
for method, path, allow in [("POST", "/api/overview", "GET, HEAD"),
                            ("DELETE", "/api/jobs/fan", "GET, HEAD"),
                            ("PUT", "/api/queues/pg/pause", "POST"),
                            ("GET", "/api/queues/pg/purge", "POST")]:
    st, r, _ = req(method, path)
    if st != 405 or r.getheader("Allow") != allow:
        fail("%s %s: %d, Allow %r" % (method, path, st, r.getheader("Allow")))
st, r, _ = req("POST", "/")
if st != 405:
    fail("POST /: %d" % st)

# --- a few hundred random requests: answered, never a crash ----------------
rnd = random.Random(16)
SEGS = ["api", "jobs", "queues", "sse-1", "pg", "cancel", "retry", "pause",
        "resume", "purge", "events", "compare", "overview", "config",
        "static", "..", ".", "%00", "%ff%fe", "a" * 300, "%2F", "{q}", "",
        "index.html", "app.js", "%C3%A9t%C3%A9"]
ARGS = ["limit", "offset", "tasks", "task_offset", "state", "search",
        "jobs", "queue"]
VALS = ["0", "-1", "1", "500", "501", "99999999999999999999", "x", "",
        "%00", "pending", "sse-1,pg-1", ",", "a" * 100]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH",
           "TRACE", "BREW"]
for i in range(300):
    path = "/" + "/".join(rnd.choice(SEGS)
                          for _ in range(rnd.randint(0, 5)))
    if rnd.random() < 0.5:
        path += "?" + "&".join("%s=%s" % (rnd.choice(ARGS), rnd.choice(VALS))
                               for _ in range(rnd.randint(1, 4)))
    method = rnd.choice(METHODS)
    if path.endswith("/events") and method in ("GET", "HEAD"):
        continue  # a stream does not end
    try:
        st, r, _ = req(method, path, headers=AUTH if rnd.random() < 0.2
                       else None)
    except (http.client.HTTPException, ConnectionError) as ex:
        fail("%s %r: %r" % (method, path, ex))
    if st >= 500 and st != 503:
        fail("%s %r answered %d" % (method, path, st))
# and raw bytes that are not HTTP
for raw in [b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
            b"GET /api/jobs/\xc3\xa9\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            b"GET /" + b"a" * 40000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 3000 + b"\r\n",
            b"POST /api/jobs/x/cancel HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Length: 99999999\r\n\r\nabc"]:
    s = socket.create_connection(("127.0.0.1", int(RW)), timeout=10)
    try:
        s.sendall(raw)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()
if api("GET", "/api/config")["read_only"] is not False:
    fail("the server changed after the random requests")
print("web_api.py: ok")
