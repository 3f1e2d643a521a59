#!/usr/bin/python3
"""Where Redis spends its time and memory per job, for one or more builds of
the function library measured side by side in one private redis-server.

  bench/proto/costs.py [--jobs N] [--reps R] NAME=SOURCE...

SOURCE is a folder of *.lua files bundled as the build does (sorted by
name, concatenated), git:REV for lua/ at a revision of this repository
(git:HEAD is the last commit), or one .lua file (the prototype,
bench/proto/lua/proto.lua, whose claim and complete it drives in their
own shape). Each library is loaded in turn under its own
name (FUNCTION FLUSH, then FUNCTION LOAD) and driven through the same
calls as llmb-push --batch and llmb-worker make:

  push    N single-task jobs with the ~100-byte payload of bench/run,
          llmb_push_fields, 250 jobs a call, 4 calls in flight
  drain   llmb_claim of up to 1000 tasks, then one llmb_complete of the
          batch (result "{}") sent with the next claim, as the worker does
  single  2,000 pushes of one job a call, then 500 claims of one task
          each followed by its completion: the path of W1 single and W3

For each it prints medians over R repetitions (the libraries alternate
within a repetition, so the machine's load falls on them alike): the
rates of push and drain (bound by this Python client, which spends more
CPU per job than Redis: the ceiling Redis allows is one second over its
CPU per job); Redis CPU per job (INFO cpu) for push and drain; the time Redis spent in each
function and in the commands the functions ran (INFO commandstats); bytes
per pending job and per finished job still held (used_memory, before any
coordinator aggregates or retention deletes); and, from a copy of the
library whose redis.call and redis.pcall count what they pass, the values
that cross between Lua and Redis per job at claim and at complete (the
arguments of each command, its reply's values, the function's ARGV and its
reply). Needs redis-server and python3-redis. docs/performance.md quotes
it."""
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BASE = "bench:{bench}"
PAYLOAD = ('{"prompt":"benchmark request %08d","max_tokens":128,'
           '"temperature":0.5,"seed":%d}')
SECRET = "0123456789abcdef0123456789abcdef"

# What the counting copy puts in front of the library: wrappers of
# redis.call and redis.pcall that add up the values each passes, and a
# function that answers and resets the sums.
COUNTER = """
local XC = {0, 0, 0}
local function xcount(r, n)
    XC[1] = XC[1] + 1
    XC[2] = XC[2] + n
    if type(r) == 'table' and r.err == nil and r.ok == nil then
        XC[3] = XC[3] + #r
    else
        XC[3] = XC[3] + 1
    end
    return r
end
local function XCALL(...) return xcount(redis.call(...), select('#', ...)) end
local function XPCALL(...) return xcount(redis.pcall(...), select('#', ...)) end
redis.register_function('llmbx_counts', function()
    local r = {XC[1], XC[2], XC[3]}
    XC[1], XC[2], XC[3] = 0, 0, 0
    return r
end)
"""


def bundle(source):
    """The library text of SOURCE (a folder, or git:REV)."""
    if source.endswith(".lua"):
        return open(source).read()
    if source.startswith("git:"):
        rev = source[4:]
        names = subprocess.run(["git", "-C", ROOT, "ls-tree", "--name-only", rev, "lua/"],
                               check=True, capture_output=True, text=True).stdout.split()
        parts = [subprocess.run(["git", "-C", ROOT, "show", "%s:%s" % (rev, n)], check=True,
                                capture_output=True, text=True).stdout
                 for n in sorted(names) if n.endswith(".lua")]
    else:
        parts = [open(os.path.join(source, n)).read()
                 for n in sorted(os.listdir(source)) if n.endswith(".lua")]
    out = ""
    for p in parts:
        out += p if p.endswith("\n") else p + "\n"
    return out


def counting(text):
    """The library with every redis.call / redis.pcall counted."""
    head, rest = text.split("\n", 1)
    rest = re.sub(r"\bredis\.pcall\(", "XPCALL(", rest)
    rest = re.sub(r"\bredis\.call\(", "XCALL(", rest)
    return head + "\n" + COUNTER + rest


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu(r):
    i = r.info("cpu")
    return i["used_cpu_user"] + i["used_cpu_sys"]


def cmdstats(r):
    """{command: (calls, usec)} from INFO commandstats."""
    out = {}
    for k, v in r.info("commandstats").items():
        out[k[len("cmdstat_"):]] = (v["calls"], v["usec"])
    return out


def load(r, text):
    """Loads library `text` in place of any other; drain and the others
    then speak its calls (PROTO)."""
    global PROTO, RECORDS
    PROTO = text.startswith("#!lua name=llmbproto")
    r.execute_command("FUNCTION", "FLUSH")
    r.execute_command("FUNCTION", "LOAD", text)
    RECORDS = not PROTO and int(r.execute_command(
        "FCALL_RO", "llmb_version", 0)) >= RECORDS_VERSION


def push(r, n):
    """n single-task jobs, 250 a call, 4 calls in flight."""
    calls = []
    for lo in range(0, n, 250):
        args = []
        for i in range(lo, min(n, lo + 250)):
            args += ["", "noop", PAYLOAD % (i, i), "", "", "", "", "", "", ""]
        calls.append(args)
    for k in range(0, len(calls), 4):
        p = r.pipeline(transaction=False)
        for args in calls[k:k + 4]:
            p.execute_command("FCALL", "llmb_push_fields", 1, BASE, *args)
        for rep in p.execute():
            for x in rep:
                if isinstance(x, redis.ResponseError) or isinstance(x, Exception):
                    raise SystemExit("push refused: %s" % x)


def claim_args():
    return ["FCALL", "llmb_claim", 1, BASE, "w1", 1000, 30000, 250, SECRET]


# The library under measure speaks the calls of lua/, or those of the
# prototype (bench/proto/lua/proto.lua: one token per claim batch, 4
# values per task, and llmb_complete taking the token once). Set by load.
PROTO = False
# lua/ of the record layout (library version RECORDS_VERSION on,
# bench/proto/LAYOUT.md): the claim reply of the prototype, the complete
# of lua/ (a token per task: the batch's).
RECORDS_VERSION = 30
RECORDS = False


def parse_claim(rep):
    """[(ref, token)] of a claim reply."""
    count = int(rep[2])
    if PROTO or RECORDS:
        return [(rep[4 + 4 * k].decode(), rep[3].decode()) for k in range(count)], 4
    width = (len(rep) - 3) // count if count else 8
    out = []
    for k in range(count):
        f = rep[3 + k * width: 3 + (k + 1) * width]
        out.append(("%s:%s" % (f[0].decode(), int(f[1])), f[2].decode()))
    return out, width


def complete_args(held):
    args = ["FCALL", "llmb_complete", 1, BASE, "w1"]
    if PROTO:
        if held:
            args.append(held[0][1])
        for ref, _ in held:
            args += [ref, "{}"]
        return args
    for ref, tok in held:
        args += [ref, tok, "{}"]
    return args


def drain(r, n):
    """Claims and completes until n tasks completed, the worker's way: the
    completions of one batch go in the pipeline of the next claim."""
    done, held = 0, []
    while True:
        p = r.pipeline(transaction=False)
        if held:
            p.execute_command(*complete_args(held))
        p.execute_command(*claim_args())
        reps = p.execute()
        if held:
            ok = reps[0]
            if any(int(x) != 1 for x in ok):
                raise SystemExit("complete refused: %r" % ok[:10])
            done += len(held)
        held, _ = parse_claim(reps[-1])
        if not held and done >= n:
            return


def used_memory(r):
    """used_memory without the clients' buffers (a pipelined call of 250
    jobs leaves a query buffer that Redis shrinks only later)."""
    m = r.info("memory")
    return m["used_memory"] - m.get("mem_clients_normal", 0)


def measure(r, text, n):
    """One repetition for one library: returns a dict of figures."""
    r.flushall()
    load(r, text)
    push(r, 100)            # warm-up: keys created, library compiled
    drain(r, 100)
    r.flushall()
    r.config_resetstat()
    c0 = cpu(r)
    t0 = time.monotonic()
    push(r, n)
    t1 = time.monotonic()
    c1 = cpu(r)
    st_push = cmdstats(r)
    r.config_resetstat()
    c2 = cpu(r)
    t2 = time.monotonic()
    drain(r, n)
    t3 = time.monotonic()
    c3 = cpu(r)
    st = cmdstats(r)
    fcall = st.get("fcall", (0, 0))[1]
    inner = sum(u for k, (c, u) in st.items() if k not in ("fcall", "info", "config|resetstat"))
    f = {
        "push_rate": n / (t1 - t0),
        "drain_rate": n / (t3 - t2),
        "push_us": (c1 - c0) / n * 1e6,
        "push_fcall_us": st_push.get("fcall", (0, 0))[1] / n,
        "drain_us": (c3 - c2) / n * 1e6,
        "drain_fcall_us": fcall / n,
        "drain_cmds_us": inner / n,
        "drain_cmds": sum(c for k, (c, u) in st.items()
                          if k not in ("info", "config|resetstat")) / n,
    }
    f["pending_b"], f["finished_b"] = memory(text, n)
    # One job per call (the path of W1 single and W3): the time Redis spends
    # in each call, from INFO commandstats.
    r.flushall()
    k = 2000
    r.config_resetstat()
    p = r.pipeline(transaction=False)
    for i in range(k):
        p.execute_command("FCALL", "llmb_push_fields", 1, BASE, "", "noop", PAYLOAD % (i, i),
                          "", "", "", "", "", "", "")
    p.execute()
    f["push1_us"] = cmdstats(r).get("fcall", (0, 0))[1] / k
    r.config_resetstat()
    for i in range(k // 4):
        held, _ = parse_claim(r.execute_command("FCALL", "llmb_claim", 1, BASE, "w1", 1, 30000,
                                                250, SECRET))
        r.execute_command(*complete_args(held))
    f["cycle1_us"] = cmdstats(r).get("fcall", (0, 0))[1] / (k // 4)
    per = {k: u / n for k, (c, u) in st.items() if k not in ("info", "config|resetstat", "fcall")}
    f["top"] = ", ".join("%s %.2f" % (k, v) for k, v in sorted(per.items(), key=lambda x: -x[1])
                         if v >= 0.05)
    return f


def crossing(r, text):
    """Values crossing the Lua boundary per job at claim and at complete:
    a batch of 250 single-task jobs through the counting copy."""
    r.flushall()
    load(r, counting(text))
    push(r, 250)
    r.execute_command("FCALL", "llmbx_counts", 0)
    rep = r.execute_command(*claim_args())
    held, width = parse_claim(rep)
    c = r.execute_command("FCALL", "llmbx_counts", 0)
    k = len(held)
    claim = (c[0] / k, c[1] / k, c[2] / k, (len(claim_args()) - 4) / k + width)
    ok = r.execute_command(*complete_args(held))
    c = r.execute_command("FCALL", "llmbx_counts", 0)
    comp = (c[0] / k, c[1] / k, c[2] / k, (len(complete_args(held)) - 4 + len(ok)) / k)
    return claim, comp


def server():
    """A private redis-server: (process, client, its folder)."""
    tmp = tempfile.mkdtemp(prefix="llmb-costs.")
    port = free_port()
    srv = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                            "--save", "", "--appendonly", "no", "--dir", tmp],
                           stdout=subprocess.DEVNULL)
    r = redis.Redis(port=port)
    for _ in range(100):
        try:
            r.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return srv, r, tmp


def memory(text, n):
    """Bytes per pending and per finished job, in a fresh redis-server of
    its own: used_memory depends on what a server held before (the sizes
    its tables grew to), so the libraries must not share one."""
    srv, r, tmp = server()
    try:
        load(r, text)
        push(r, 100)
        drain(r, 100)
        m0 = used_memory(r)
        push(r, n)
        m1 = used_memory(r)
        drain(r, n)
        m2 = used_memory(r)
        return (m1 - m0) / n, (m2 - m0) / n
    finally:
        srv.terminate()
        srv.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def parse_args(args, usage, reps_too=True):
    """(jobs, reps, [(name, library text)]) of --jobs N, --reps R (when
    reps_too) and NAME=SOURCE...: exits with `usage` on anything else or
    without a library."""
    args = list(args)
    n, reps, libs = 50000, 3, []
    while args:
        a = args.pop(0)
        if a == "--jobs" and args:
            n = int(args.pop(0))
        elif a == "--reps" and reps_too and args:
            reps = int(args.pop(0))
        elif "=" in a:
            name, src = a.split("=", 1)
            libs.append((name, bundle(src)))
        else:
            raise SystemExit(usage)
    if not libs:
        raise SystemExit(usage)
    return n, reps, libs


def main():
    n, reps, libs = parse_args(sys.argv[1:], __doc__)
    srv, r, tmp = server()
    try:
        print("load average: %s" % open("/proc/loadavg").read().split()[:3])
        results = {name: [] for name, _ in libs}
        for rep in range(reps):
            for name, text in libs:
                f = measure(r, text, n)
                results[name].append(f)
                print("rep %d %s: push %.1f us, drain %.1f us (%.1f in FCALL, %.1f in its "
                      "commands), %.0f B pending, %.0f B finished" % (
                          rep + 1, name, f["push_us"], f["drain_us"], f["drain_fcall_us"],
                          f["drain_cmds_us"], f["pending_b"], f["finished_b"]), file=sys.stderr)
        print("load average: %s" % open("/proc/loadavg").read().split()[:3])
        rows = [("push, jobs/s (this Python client: a lower bound)", "push_rate", ""),
                ("drain, jobs/s (this Python client: a lower bound)", "drain_rate", ""),
                ("push: Redis CPU per job", "push_us", " µs"),
                ("push: time in llmb_push_fields per job", "push_fcall_us", " µs"),
                ("push, one job per call: time in the call", "push1_us", " µs"),
                ("claim + complete, one job per call: time in the two calls", "cycle1_us", " µs"),
                ("drain: Redis CPU per job", "drain_us", " µs"),
                ("drain: time in the functions per job", "drain_fcall_us", " µs"),
                ("drain: of which the commands they run", "drain_cmds_us", " µs"),
                ("drain: commands per job, inside functions included", "drain_cmds", ""),
                ("bytes per pending single-task job", "pending_b", " B"),
                ("bytes per finished job, result {} (before aggregation)", "finished_b", "B")]
        base = libs[0][0]
        print("\n%d jobs, medians of %d repetitions (min–max)\n" % (n, reps))
        print("| figure | " + " | ".join(name for name, _ in libs)
              + "".join(" | %s / %s" % (name, base) for name, _ in libs[1:]) + " |")
        print("| --- |" + " --- |" * (2 * len(libs) - 1))
        for title, key, unit in rows:
            med = {}
            cells = []
            for name, _ in libs:
                v = [f[key] for f in results[name]]
                med[name] = statistics.median(v)
                cells.append("%.1f%s (%.1f–%.1f)" % (med[name], unit, min(v), max(v)))
            for name, _ in libs[1:]:
                cells.append("%.2f×" % (med[name] / med[base]) if med[base] else "–")
            print("| %s | %s |" % (title, " | ".join(cells)))
        print()
        for name, _ in libs:
            print("- %s, drain, µs per job by command (last repetition): %s" % (
                name, results[name][-1]["top"]))
        print()
        print("| values crossing Lua ↔ Redis per job | redis.call per job | arguments | "
              "reply values | function ARGV + reply |")
        print("| --- | --- | --- | --- | --- |")
        for name, text in libs:
            cl, co = crossing(r, text)
            for what, c in (("claim", cl), ("complete", co)):
                print("| %s %s | %.2f | %.1f | %.1f | %.1f |" % (name, what, *c))
    finally:
        srv.terminate()
        srv.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
