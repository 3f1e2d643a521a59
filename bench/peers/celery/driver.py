"""Celery harness of bench/run. Subcommands:
  enqueue N bulk|single   prints the seconds the pushes took
  fill N                  N pending no-op jobs
  work                    one worker process (solo pool) until SIGTERM
  pace N RATE             W3: N jobs one at a time at RATE/s
Celery has no bulk publish: "bulk" publishes one message after another on
one producer connection. Settings: see README.md beside this file."""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [here, os.path.join(here, "..", "common")]

from benchstat import now_us, pace, payload, progress  # noqa: E402
from bench_app import app, noop  # noqa: E402


def main():
    cmd = sys.argv[1]
    if cmd == "work":
        progress()
        app.worker_main(["worker", "--pool=solo", "--loglevel=WARNING",
                         "--without-gossip", "--without-mingle",
                         "--without-heartbeat", "-Q", "bench"])
        return
    n = int(sys.argv[2])
    if cmd in ("enqueue", "fill"):
        t0 = now_us()
        with app.producer_or_acquire() as producer:
            for i in range(n):
                noop.apply_async((payload(i),), producer=producer)
        if cmd == "enqueue":
            print((now_us() - t0) / 1e6)
    elif cmd == "pace":
        with app.producer_or_acquire() as producer:
            pace(n, float(sys.argv[3]),
                 lambda i, t: noop.apply_async((dict(payload(i), t=t),), producer=producer))
    else:
        sys.exit("celery driver: unknown subcommand " + cmd)


main()
