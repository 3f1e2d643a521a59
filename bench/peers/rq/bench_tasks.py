"""The job function of the RQ harness: a no-op that notes its start and end
for bench/run."""
import benchstat


def noop(data):
    p = benchstat.progress()
    p.start(data)
    p.end()
