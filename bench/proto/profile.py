#!/usr/bin/python3
"""Where redis-server's CPU goes while it drains jobs, by perf: for each
library, a fresh private redis-server is filled with N single-task jobs
(as costs.py does) and `perf record` samples it while costs.py's drain
runs; the samples are then grouped by what the function is part of.

  bench/proto/profile.py [--jobs N] NAME=SOURCE...

SOURCE as for costs.py. Groups, by symbol name: the Lua interpreter
(lua*, luaV_*, luaH_*...: running the library's code, its tables and
strings), the bridge between Lua and Redis (luaRedis*, redisProtocolToLua*,
luaReplyToRedisReply, script and function call plumbing: every value that
crosses), the commands and data structures (*Command, dict*, zsl*, lp*,
the sds and object helpers), memory allocation (je_*, zmalloc*), the
kernel and networking (read, write, epoll: [k] symbols and the
connection code), and the rest. Needs perf (Debian linux-perf) and
kernel.perf_event_paranoid <= 2."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

from costs import drain, load, parse_args, push, server

GROUPS = [
    ("Lua interpreter", re.compile(r"^(lua[A-Z_]|luaV_|luaH_|luaS_|luaD_|luaC_|luaF_|luaG_|luaK_"
                                   r"|luaL_|luaM_|luaO_|luaT_|luaX_|luaY_|luaZ_|luaE_|luaU_|lua_"
                                   r"|str_|math_|luaB_|tconcat|auxsort|sort_comp|str_find_aux"
                                   r"|match|singlematch|classend|luaopen_)")),
    ("Lua <-> Redis bridge", re.compile(r"^(luaRedis|redisProtocolToLua|luaReplyToRedisReply"
                                        r"|luaPush|luaArgsToRedisArgv|luaCallFunction|scriptCall"
                                        r"|fcallCommandGeneric|luaRegisterFunction|luaRaiseError"
                                        r"|luaGetFromRegistry|luaSaveOnRegistry|luaEngine"
                                        r"|ldb|callReplyParse|callReply|RM_|moduleCallReply"
                                        r"|scriptPrepare|scriptResetRun|luaSetErrorMetatable"
                                        r"|luaProtectedTable|luaRedisAclCheck)")),
    ("commands and data structures", re.compile(r"(Command$|Command\.|^dict|^zsl|^zset|^lp|^ziplist"
                                                r"|^hash|^sds|^createObject|^createString|^decrRef"
                                                r"|^incrRef|^getGenericCommand|^lookupKey|^dbAdd"
                                                r"|^setKey|^signalModifiedKey|^notifyKeyspace"
                                                r"|^stream|^rax|^quicklist|^listType|^siphash"
                                                r"|^string2ll|^ll2string|^getLongLong|^getDouble"
                                                r"|^addReply|^_addReply|^call$|^processCommand"
                                                r"|^lookupCommand|^propagate|^alsoPropagate"
                                                r"|^zslInsert|^memcmp|^__memcmp|^__memmove|^__memcpy"
                                                r"|^memcpy|^memmove|^strlen|^__strlen)")),
    ("memory allocation", re.compile(r"^(je_|zmalloc|zfree|zcalloc|zrealloc|ztrymalloc|malloc"
                                     r"|free$|realloc|calloc|extent_|arena_|tcache_|sdsMakeRoom"
                                     r"|sdsRemoveFree|sdsfree|sdsnewlen|_sdsnewlen)")),
]


def lua_range():
    """The addresses of the Lua interpreter and its libraries inside the
    redis-server binary (Debian links them in statically and keeps only the
    exported names: an address between the first lua_/luaL_ function and
    the last of the Lua libraries is counted as Lua's)."""
    exe = os.path.realpath(shutil.which("redis-server"))
    out = subprocess.run(["nm", "-D", "--defined-only", exe], capture_output=True,
                         text=True).stdout
    lo, hi = None, None
    for line in out.splitlines():
        f = line.split()
        if len(f) != 3 or f[1] not in "Tt":
            continue
        a = int(f[0], 16)
        if re.match(r"lua_|luaL_", f[2]):
            lo = a if lo is None else min(lo, a)
        if re.match(r"lua|strbuf_|mp_|fpconv_", f[2]):
            hi = a if hi is None else max(hi, a)
    return (lo or 0), (hi or 0) + 0x2000


def main():
    n, _, libs = parse_args(sys.argv[1:], __doc__, reps_too=False)
    print("load average: %s" % open("/proc/loadavg").read().split()[:3])
    lo, hi = lua_range()
    results = []
    for name, text in libs:
        srv, r, tmp = server()
        data = os.path.join(tmp, "perf.data")
        try:
            load(r, text)
            push(r, 100)
            drain(r, 100)
            push(r, n)
            rec = subprocess.Popen(["perf", "record", "-F", "4999", "-p", str(srv.pid), "-o", data],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            import time
            time.sleep(0.5)
            drain(r, n)
            rec.send_signal(2)
            rec.wait()
            rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                                  "--sort", "dso,symbol", "--percent-limit", "0.01"],
                                 capture_output=True, text=True).stdout
        finally:
            srv.terminate()
            srv.wait()
        share, top = {}, []
        for line in rep.splitlines():
            m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(\S+)", line)
            if not m:
                continue
            pct, dso, where, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4)
            group = "kernel" if where == "k" else "other"
            addr = int(sym, 16) if re.match(r"0x[0-9a-f]+$", sym) else None
            if where != "k" and (re.search(r"liblua|cjson|bit32|lua_bit", dso) or (
                    addr is not None and lo <= addr <= hi)):
                # (an interpreter without symbols: its samples count
                # whole, see lua_range)
                group = "Lua interpreter"
                sym = "%s %s" % (dso, sym)
            for g, rx in GROUPS:
                if group == "other" and rx.search(sym):
                    group = g
                    break
            share[group] = share.get(group, 0) + pct
            top.append((pct, sym, group))
        results.append((name, share, top[:12]))
    order = [g for g, _ in GROUPS] + ["kernel", "other"]
    print("\n| share of redis-server's samples while draining %d jobs | %s |" % (
        n, " | ".join(name for name, _, _ in results)))
    print("| --- |" + " --- |" * len(results))
    for g in order:
        print("| %s | %s |" % (g, " | ".join("%.1f%%" % s.get(g, 0) for _, s, _ in results)))
    for name, _, top in results:
        print("\n%s, the most sampled symbols: %s" % (name, ", ".join(
            "%s %.1f%%" % (sym, pct) for pct, sym, _ in top)))
    print("\nload average: %s" % open("/proc/loadavg").read().split()[:3])


if __name__ == "__main__":
    main()
