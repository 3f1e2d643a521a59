"""RQ harness of bench/run. Subcommands:
  enqueue N bulk|single   prints the seconds the pushes took
  fill N                  N pending no-op jobs, pushed in bulk
  work                    one worker process until SIGTERM
  pace N RATE             W3: N jobs one at a time at RATE/s
Settings: see README.md beside this file."""
import logging
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [here, os.path.join(here, "..", "common")]

from redis import Redis  # noqa: E402
from rq import Queue, SimpleWorker  # noqa: E402

import bench_tasks  # noqa: E402
from benchstat import now_us, pace, payload, progress  # noqa: E402,F401


def main():
    cmd = sys.argv[1]
    r = Redis(host="127.0.0.1", port=int(os.environ["BENCH_REDIS_PORT"]))
    q = Queue("bench", connection=r)
    keep = os.environ.get("BENCH_RETAIN") == "default"
    # result_ttl=0: nothing is kept after success (the default keeps the
    # job and its result 500 s).
    opts = {} if keep else {"result_ttl": 0}
    if cmd == "work":
        progress()
        w = SimpleWorker([q], connection=r)
        w.work(logging_level="WARNING", with_scheduler=False)
        return
    n = int(sys.argv[2])
    if cmd in ("enqueue", "fill"):
        t0 = now_us()
        if len(sys.argv) > 3 and sys.argv[3] == "single":
            for i in range(n):
                q.enqueue(bench_tasks.noop, payload(i), **opts)
        else:
            for lo in range(0, n, 1000):
                with r.pipeline() as pipe:
                    jobs = [Queue.prepare_data(bench_tasks.noop, (payload(i),), **opts)
                            for i in range(lo, min(n, lo + 1000))]
                    q.enqueue_many(jobs, pipeline=pipe)
                    pipe.execute()
        if cmd == "enqueue":
            print((now_us() - t0) / 1e6)
    elif cmd == "pace":
        pace(n, float(sys.argv[3]),
             lambda i, t: q.enqueue(bench_tasks.noop, dict(payload(i), t=t), **opts))
    else:
        sys.exit("rq driver: unknown subcommand " + cmd)


main()
