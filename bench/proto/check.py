#!/usr/bin/python3
"""Checks the guarantees the prototype (lua/proto.lua) must keep, in a
private redis-server: a completion is fenced by its batch's lease token
and recorded once; a reaped batch's tasks run again with their attempt
counted, and its old token opens nothing; a heartbeat renews only the
worker's own batch; a key of the wrong type is refused before any write;
one read-only call per job tells its state; priorities and delays keep
lua/'s order; a failure retries with backoff or fails for good, once; a
cancelled waiting job is skipped by the claim that meets it. Exits 1 at the first broken one.

  bench/proto/check.py"""
import os
import shutil
import sys
import time

from costs import BASE as B, SECRET, load, server

HERE = os.path.dirname(os.path.abspath(__file__))


def fc(r, *a):
    return r.execute_command("FCALL", *a)


def want(ok, what):
    if not ok:
        print("check.py: FAILED:", what)
        sys.exit(1)
    print("ok:", what)


def main():
    srv, r, tmp = server()
    try:
        load(r, open(os.path.join(HERE, "lua", "proto.lua")).read())
        ids = fc(r, "llmb_push_fields", 1, B, "", "t", '{"a":1}', "", "", "", "", "", "", "",
                 "mine", "t", "{}", "", "", "", "", "", "", "")
        want(len(ids) == 2 and ids[1] == b"mine", "push mints a short id and keeps a given one")
        again = fc(r, "llmb_push_fields", 1, B, "mine", "t", "{}", "", "", "", "", "", "", "")
        want(again == [b"mine"] and r.llen(B + ":pl") == 2, "an id pushed again changes nothing")
        st = r.execute_command("FCALL_RO", "llmb_state", 1, B, "mine")
        want(st[0] == b"pending", "state: pending")
        c = fc(r, "llmb_claim", 1, B, "w1", 10, 100, 250, SECRET)
        tok = c[3].decode()
        want(int(c[2]) == 2 and c[4] == ids[0] and c[7] == b"", "claim: one token, defaults not sent")
        st = r.execute_command("FCALL_RO", "llmb_state", 1, B, "mine")
        want(st[0] == b"running", "state: running, from the lease")
        want(fc(r, "llmb_heartbeat", 1, B, "w2", 100, tok) == 0, "another worker cannot renew")
        time.sleep(0.15)
        want(fc(r, "llmb_reap", 1, B, 10) == 2, "an expired batch is taken back")
        want(fc(r, "llmb_complete", 1, B, "w1", tok, "mine", "{}") == [0],
             "the reaped batch's token completes nothing")
        c = fc(r, "llmb_claim", 1, B, "w2", 10, 30000, 250, SECRET)
        tok2 = c[3].decode()
        want(int(c[2]) == 2 and c[7] == b"a2", "the lost attempt is counted")
        forged = tok2.split(".")[0] + ".fedcba9876543210fedcba9876543210"
        want(fc(r, "llmb_complete", 1, B, "w2", forged, "mine", "{}") == [0],
             "another secret opens nothing")
        want(fc(r, "llmb_complete", 1, B, "w2", tok2, "mine", "{}", "mine", "{}") == [1, 0],
             "the same task twice in one call is recorded once")
        want(fc(r, "llmb_complete", 1, B, "w2", tok2, "mine", "{}") == [0],
             "a completion is recorded once")
        st = r.execute_command("FCALL_RO", "llmb_state", 1, B, "mine")
        want(st[0] == b"completed" and b"\t" not in st[1], "state: completed, {} not stored")
        want(fc(r, "llmb_complete", 1, B, "w2", tok2, ids[0].decode(), '{"x":2}') == [1],
             "the rest of the batch completes")
        want(r.exists(B + ":att") == 0, "a completed job's lost attempts are forgotten")
        want(r.hlen(B + ":lease") == 0 and r.zcard(B + ":running") == 0,
             "a batch's records go with its last task")
        fin = r.lrange(B + ":fin", 0, -1)
        want(len(fin) == 2, "one completion record per call")
        fc(r, "llmb_push_fields", 1, B, "lo", "t", "{}", "-1", "", "", "", "", "", "",
           "zero", "t", "{}", "", "", "", "", "", "", "",
           "hi", "t", "{}", "5", "", "", "", "", "", "",
           "later", "t", "{}", "", "", "", "", "", "0.05", "",
           "hi2", "t", "{}", "5", "", "", "", "", "", "")
        c = fc(r, "llmb_claim", 1, B, "w3", 10, 100, 250, SECRET)
        got = [c[4 + 4 * k] for k in range(int(c[2]))]
        want(got == [b"hi", b"hi2", b"zero", b"lo"] and int(c[1]) > int(c[0]),
             "higher priorities first, FIFO within one; the delayed job's due time answered")
        time.sleep(0.15)
        want(fc(r, "llmb_reap", 1, B, 10) == 4, "a batch of several priorities is taken back")
        time.sleep(0.05)
        c = fc(r, "llmb_claim", 1, B, "w3", 10, 30000, 250, SECRET)
        got = [c[4 + 4 * k] for k in range(int(c[2]))]
        want(got == [b"hi", b"hi2", b"zero", b"later", b"lo"],
             "lost tasks go back to the front of their priority; a due job joins its own")
        r.delete(B + ":pl", B + ":pz", B + ":pd")
        fc(r, "llmb_push_fields", 1, B, "f1", "t", "{}", "", "", "", "1", "1", "", "",
           "f2", "t", "{}", "", "", "", "0", "", "", "",
           "x1", "t", "{}", "", "", "", "", "", "", "",
           "x2", "t", "{}", "", "", "", "", "", "", "")
        want(fc(r, "llmb_cancel", 1, B, "x1") == 1, "a waiting job is cancelled")
        c = fc(r, "llmb_claim", 1, B, "w4", 10, 30000, 250, SECRET)
        tok = c[3].decode()
        got = [c[4 + 4 * k] for k in range(int(c[2]))]
        want(got == [b"f1", b"f2", b"x2"], "a claim skips the cancelled job's id")
        want(fc(r, "llmb_cancel", 1, B, "x2") == 0, "a running job is not cancelled here")
        want(fc(r, "llmb_fail", 1, B, "w4", tok, "f1", "error", "boom", "f2", "error", "bang")
             == [1, 2], "a failure with retries left is retried; with none it fails for good")
        want(fc(r, "llmb_fail", 1, B, "w4", tok, "f1", "error", "again") == [0],
             "a failure is recorded once")
        st = r.execute_command("FCALL_RO", "llmb_state", 1, B, "f2")
        want(st[0] == b"failed" and st[1].endswith(b"\tbang"), "state: failed, with its error")
        st = r.execute_command("FCALL_RO", "llmb_state", 1, B, "x1")
        want(st[0] == b"cancelled", "state: cancelled")
        time.sleep(0.01)
        c = fc(r, "llmb_claim", 1, B, "w4", 10, 30000, 250, SECRET)
        got = [(c[4 + 4 * k], c[7 + 4 * k]) for k in range(int(c[2]))]
        want(got == [(b"f1", b"r1b1a2")], "the retried job runs again after its backoff, "
             "attempt 2")
        r.set(B + ":pl", "x")
        n0 = r.hlen(B + ":jd")
        try:
            fc(r, "llmb_push_fields", 1, B, "", "t", "{}", "", "", "", "", "", "", "")
            refused = False
        except Exception as e:
            refused = "llmb expects" in str(e)
        want(refused and r.hlen(B + ":jd") == n0, "a key of the wrong type is refused before writes")
    finally:
        srv.terminate()
        srv.wait()
        shutil.rmtree(tmp, ignore_errors=True)


main()
