"""What the Python peer harnesses share: the wall clock in microseconds,
the benchmark payload, pacing, and the progress file a worker keeps for
bench/run (jobs done, first start and last end in us, rewritten every 10 ms
by a thread off the job path, plus push-to-start latencies appended)."""
import os
import threading
import time


def now_us():
    return time.time_ns() // 1000


def payload(i):
    return {"prompt": "benchmark request %08d" % i, "max_tokens": 128,
            "temperature": 0.5, "seed": i}


def pace(n, rate, push):
    t0 = now_us()
    for i in range(n):
        wait = (t0 + i * 1e6 / rate - now_us()) / 1e6
        if wait > 0:
            time.sleep(wait)
        push(i, now_us())


class Progress:
    def __init__(self):
        d = os.environ["BENCH_STATDIR"]
        self.file = "%s/%d.stat" % (d, os.getpid())
        self.latfile = "%s/%d.lat" % (d, os.getpid())
        self.count = self.first = self.last = 0
        self.lat = []
        self.flush()
        t = threading.Thread(target=self._loop, daemon=True)
        t.start()

    def _loop(self):
        while True:
            time.sleep(0.01)
            self.flush()

    def flush(self):
        with open(self.file + ".tmp", "w") as f:
            f.write("%d %d %d\n" % (self.count, self.first, self.last))
        os.rename(self.file + ".tmp", self.file)
        if self.lat:
            lat, self.lat = self.lat, []
            with open(self.latfile, "a") as f:
                f.write("".join("%d\n" % x for x in lat))

    def start(self, data):
        now = now_us()
        if self.first == 0:
            self.first = now
        if isinstance(data, dict) and "t" in data:
            self.lat.append(now - data["t"])

    def end(self):
        self.count += 1
        self.last = now_us()


_progress = None


def progress():
    """The process's Progress, made on first use (in the process that runs
    the jobs)."""
    global _progress
    if _progress is None or _progress.file != "%s/%d.stat" % (
            os.environ["BENCH_STATDIR"], os.getpid()):
        _progress = Progress()
    return _progress
