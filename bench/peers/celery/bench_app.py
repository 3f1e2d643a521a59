"""The Celery app of the Celery harness: Redis as the broker, no result
backend (results are not kept, Celery's default without one), and a no-op
task that notes its start and end for bench/run."""
import os

from celery import Celery

import benchstat

app = Celery("bench", broker="redis://127.0.0.1:%s/0" % os.environ["BENCH_REDIS_PORT"])
app.conf.update(
    task_ignore_result=True,
    task_default_queue="bench",
    worker_prefetch_multiplier=int(os.environ.get("BENCH_PREFETCH", "100")),
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="noop")
def noop(data):
    p = benchstat.progress()
    p.start(data)
    p.end()
