#!/usr/bin/env python3
"""Runs the cmocka integration test programs of a build under valgrind
memcheck, against a private redis-server (redis-fixture.sh), with the
environment ctest would give them (and a private Redis Cluster to the
tests of the redis_cluster fixture). A test fails on any memcheck error or
on a definite or indirect leak (--error-exitcode). Child processes the tests
start (llmb-worker, llmb-coordinator) are not traced: the ASan run of the
suite covers them, and tracing them under valgrind makes the timing-based
tests flaky.

    memcheck.py BUILD_DIR [NAME_REGEX]

Prints one line per test with its time; exit 1 if any failed."""
import json, os, re, subprocess, sys, tempfile, time

build = os.path.abspath(sys.argv[1])
pattern = re.compile(sys.argv[2] if len(sys.argv) > 2 else ".")
here = os.path.dirname(os.path.abspath(__file__))
info = json.loads(subprocess.run(["ctest", "--show-only=json-v1"], cwd=build,
                                 check=True, capture_output=True,
                                 text=True).stdout)
tests = []
for t in info["tests"]:
    props = {p["name"]: p["value"] for p in t.get("properties", [])}
    cmd = t.get("command") or []
    if "integration" not in (props.get("LABELS") or []) or not cmd:
        continue
    if not cmd[0].startswith(build) or cmd[0].endswith(".sh"):
        continue
    if not pattern.search(t["name"]):
        continue
    tests.append((t["name"], cmd, props.get("ENVIRONMENT") or [],
                  "redis_cluster" in (props.get("FIXTURES_REQUIRED") or [])))

fixture = tempfile.mkdtemp(prefix="llmb-memcheck-")
subprocess.run([os.path.join(here, "redis-fixture.sh"), "start", fixture],
               check=True)
# The tests of the "redis_cluster" fixture get a private cluster of their
# own, as ctest gives them (tests/support/redis-cluster.sh).
cluster = None
failed = 0
try:
    if any(t[3] for t in tests):
        cluster = os.path.join(fixture, "cluster")
        subprocess.run([os.path.join(here, "redis-cluster.sh"), "start",
                        cluster], check=True)
    for name, cmd, env, wants_cluster in tests:
        e = dict(os.environ)
        for kv in env:
            k, _, v = kv.partition("=")
            e[k] = v
        e["LLMB_TEST_REDIS_URL_FILE"] = os.path.join(fixture, "redis.url")
        if wants_cluster:
            e["LLMB_TEST_CLUSTER_DIR"] = cluster
        log = os.path.join(fixture, name + ".valgrind")
        out = os.path.join(fixture, name + ".out")
        t0 = time.time()
        rc = subprocess.run(["valgrind", "--quiet", "--error-exitcode=99",
                             "--leak-check=full", "--show-leak-kinds=definite,indirect",
                             "--errors-for-leak-kinds=definite,indirect",
                             "--log-file=" + log] + cmd, env=e,
                            stdout=open(out, "w"),
                            stderr=subprocess.STDOUT).returncode
        dt = time.time() - t0
        if rc == 0:
            print("memcheck: %-28s ok (%.0fs)" % (name, dt), flush=True)
        else:
            failed += 1
            print("memcheck: %-28s FAILED, exit %d (%.0fs)" % (name, rc, dt),
                  flush=True)
            # The test's own words first (which check failed), then
            # valgrind's (a failed check leaks what it held).
            with open(out, errors="replace") as f:
                sys.stdout.write(f.read()[-4000:])
            with open(log) as f:
                sys.stdout.write(f.read()[-6000:])
finally:
    if cluster is not None:
        subprocess.run([os.path.join(here, "redis-cluster.sh"), "stop",
                        cluster])
    subprocess.run([os.path.join(here, "redis-fixture.sh"), "stop", fixture])
sys.exit(1 if failed else 0)
