#!/usr/bin/env python3
"""The llmb chaos suite: the whole system under crashes, restarts and pauses.

It starts a private redis-server (AOF on, appendfsync always by default),
pushes jobs (single and fan-out) while several llmb-worker processes and two
llmb-coordinators run them, and meanwhile, for --minutes:

  kill -9 a random worker and start a new one       (worker-kill)
  SIGSTOP a worker past its lease, then SIGCONT      (worker-stall)
  kill -9 a coordinator and start it again          (coordinator-kill)
  CLIENT KILL one worker's connections or all        (client-kill)
  kill -9 redis-server and restart it from its AOF   (redis-restart)
  SIGSTOP redis-server past the lease, then SIGCONT  (redis-pause)

Then it lets the system settle and checks, reading Redis and the file in
which the handler (tests/fixtures/chaos_handler.sh) records every execution:

  - every acknowledged push exists (no job lost) and is in a terminal state,
    the one its type calls for;
  - no task outcome recorded twice: the job's left is 0, its ok/failed match
    the task states, the queue's counters match the sum over jobs, and each
    job has exactly one "finished" and one "aggregated" event;
  - every task of a completed job completed once, and its stored result comes
    from an execution the handler really recorded, under an attempt that
    Redis counted (a claim lost by Redis would show as executions > attempts);
  - the aggregate agrees with the task results (ok, results, and count, min,
    max of the numeric field "v", computed here independently).

It reports the number of executions beyond one per task (allowed: the
guarantee is at-least-once) and every kill and restart done. Exit status 0
when every check holds, 1 otherwise, 77 when redis-server is missing.

  chaos.py [--jobs N] [--minutes M] [--workers W] [--fsync always|everysec]
           [--seed S] [--keep]

Binaries come from $LLMB_BUILD_DIR (default build/chaos under the source
tree). Only the Python standard library is used.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SOURCE_DIR = os.environ.get(
    'LLMB_SOURCE_DIR',
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD_DIR = os.environ.get('LLMB_BUILD_DIR', os.path.join(SOURCE_DIR, 'build', 'chaos'))
WORKER = os.path.join(BUILD_DIR, 'worker', 'llmb-worker')
COORDINATOR = os.path.join(BUILD_DIR, 'coordinator', 'llmb-coordinator')
HANDLER = os.path.join(SOURCE_DIR, 'tests', 'fixtures', 'chaos_handler.sh')

PREFIX = 'chaos'
QUEUE = 'chaos'
BASE = '%s:{%s}' % (PREFIX, QUEUE)
LEASE_MS = 2000
HEARTBEAT_MS = 300


def log(msg):
    sys.stderr.write('%s chaos: %s\n' % (time.strftime('%H:%M:%S'), msg))
    sys.stderr.flush()


class RedisError(Exception):
    """An error reply of the server (not a connection problem)."""


class Resp:
    """A minimal blocking RESP2 client; any socket trouble raises OSError."""

    def __init__(self, port, timeout=5.0):
        self.port = port
        self.timeout = timeout
        self.sock = None
        self.buf = b''

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = b''

    def _connect(self):
        self.sock = socket.create_connection(('127.0.0.1', self.port), self.timeout)
        self.sock.settimeout(self.timeout)
        self.buf = b''

    @staticmethod
    def _encode(args):
        out = [b'*%d\r\n' % len(args)]
        for a in args:
            if not isinstance(a, bytes):
                a = str(a).encode()
            out.append(b'$%d\r\n%s\r\n' % (len(a), a))
        return b''.join(out)

    def _line(self):
        while b'\r\n' not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise OSError('connection closed')
            self.buf += chunk
        line, self.buf = self.buf.split(b'\r\n', 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise OSError('connection closed')
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b'+':
            return rest.decode()
        if t == b'-':
            return RedisError(rest.decode())
        if t == b':':
            return int(rest)
        if t == b'$':
            n = int(rest)
            return None if n < 0 else self._exact(n).decode('utf-8', 'replace')
        if t == b'*':
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise OSError('bad reply %r' % line)

    def pipeline(self, cmds):
        """Sends every command, returns the replies (errors as RedisError
        objects, not raised)."""
        try:
            if self.sock is None:
                self._connect()
            self.sock.sendall(b''.join(self._encode(c) for c in cmds))
            return [self._reply() for _ in cmds]
        except (OSError, ValueError):
            self.close()
            raise

    def call(self, *args):
        r = self.pipeline([args])[0]
        if isinstance(r, RedisError):
            raise r
        return r


def free_port():
    while True:
        port = random.randint(20000, 31999)
        if port == 6379:
            continue
        s = socket.socket()
        try:
            s.bind(('127.0.0.1', port))
            return port
        except OSError:
            continue
        finally:
            s.close()


class RedisServer:
    """A private redis-server with AOF in its own directory."""

    def __init__(self, workdir, fsync):
        self.dir = os.path.join(workdir, 'redis')
        os.makedirs(self.dir)
        self.fsync = fsync
        self.port = free_port()
        self.proc = None
        self.stopped = False

    def start(self):
        logf = open(os.path.join(self.dir, 'redis.log'), 'a')
        self.proc = subprocess.Popen(
            ['redis-server', '--port', str(self.port), '--bind', '127.0.0.1',
             '--dir', self.dir, '--save', '', '--appendonly', 'yes',
             '--appendfsync', self.fsync, '--enable-debug-command', 'local',
             '--daemonize', 'no', '--logfile', ''],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logf.close()
        self.stopped = False
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                r = Resp(self.port, 1.0)
                if r.call('PING') == 'PONG':
                    r.close()
                    return
            except (OSError, RedisError):
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError('redis-server did not start; see %s/redis.log' % self.dir)

    def kill9(self):
        self.cont()
        self.proc.kill()
        self.proc.wait()

    def stop_signal(self):
        self.proc.send_signal(signal.SIGSTOP)
        self.stopped = True

    def cont(self):
        if self.stopped and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
        self.stopped = False

    def shutdown(self):
        if self.proc is not None and self.proc.poll() is None:
            self.cont()
            self.proc.kill()
            self.proc.wait()


class Procs:
    """The llmb processes of the run: workers and coordinators."""

    def __init__(self, workdir, port, exec_log):
        self.workdir = workdir
        self.url = 'redis://127.0.0.1:%d' % port
        self.exec_log = exec_log
        self.workers = {}       # id -> Popen
        self.coords = {}        # slot -> Popen
        self.stalled = set()
        self.next_worker = 0
        self.lock = threading.Lock()

    def _spawn(self, name, argv):
        logf = open(os.path.join(self.workdir, name + '.log'), 'a')
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        return p

    def start_worker(self):
        with self.lock:
            self.next_worker += 1
            wid = 'cw%d' % self.next_worker
            spec = ','.join('%s=exec:%s %s %s %s' % (m, HANDLER, self.exec_log, wid, m)
                            for m in ('ok', 'slow', 'flaky', 'fatal'))
            self.workers[wid] = self._spawn('worker-' + wid, [
                WORKER, '--redis', self.url, '--prefix', PREFIX, '--queues', QUEUE,
                '--id', wid, '--capacity', '3', '--heartbeat-ms', str(HEARTBEAT_MS),
                '--lease-ms', str(LEASE_MS), '--redis-timeout-ms', '1500',
                '--kill-grace-ms', '500', '--grace', '1', '--handler', spec])
            return wid

    def start_coordinator(self, slot, events_max):
        with self.lock:
            self.coords[slot] = self._spawn('coordinator-%d' % slot, [
                COORDINATOR, '--redis', self.url, '--prefix', PREFIX,
                '--id', 'cc%d' % slot, '--tick-ms', '100', '--liveness-ms', '250',
                '--gone-after-ms', '1000', '--dead-after-ms', '5000',
                '--reconnect-grace-ms', '2000', '--redis-timeout-ms', '1000',
                '--agg-batch', '64', '--agg-lease-ms', '5000',
                '--events-max', str(events_max), '--metrics-ms', '2000'])

    def kill_worker(self, wid):
        with self.lock:
            p = self.workers.pop(wid)
        p.kill()
        p.wait()
        self.stalled.discard(wid)

    def kill_coordinator(self, slot):
        with self.lock:
            p = self.coords.pop(slot)
        p.kill()
        p.wait()

    def crashed(self):
        """Names of llmb processes that exited by themselves."""
        out = []
        with self.lock:
            for wid, p in self.workers.items():
                if p.poll() is not None:
                    out.append('worker %s (status %s)' % (wid, p.returncode))
            for slot, p in self.coords.items():
                if p.poll() is not None:
                    out.append('coordinator %d (status %s)' % (slot, p.returncode))
        return out

    def stop_all(self):
        with self.lock:
            procs = list(self.workers.values()) + list(self.coords.values())
            self.workers, self.coords = {}, {}
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGCONT)
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
            p.wait()


def make_jobs(n, rnd):
    """The job documents of the run: (id, type, tasks, document)."""
    jobs = []
    for i in range(n):
        r = rnd.random()
        kind = 'ok' if r < 0.70 else 'slow' if r < 0.85 else 'flaky' if r < 0.97 else 'fatal'
        tasks = 1 if rnd.random() < 0.7 else rnd.randint(2, 20)
        if kind == 'slow':
            tasks = min(tasks, 4)
        jid = 'j%06d' % i
        doc = json.dumps({'id': jid, 'type': kind, 'tasks': tasks,
                          'max_retries': 12, 'backoff_ms': 50, 'timeout_s': 30,
                          'payload': {'n': i}}, separators=(',', ':'))
        jobs.append((jid, kind, tasks, doc))
    return jobs


class Pusher(threading.Thread):
    """Pushes the jobs in batches over `seconds`, retrying a batch until
    Redis acknowledges it (safe: every job has its own id, so a push that
    went through but whose reply was lost only returns that id again)."""

    def __init__(self, port, jobs, seconds):
        super().__init__(daemon=True)
        self.port = port
        self.jobs = jobs
        self.seconds = seconds
        self.acked = []
        self.retries = 0
        self.error = None

    def run(self):
        r = Resp(self.port, 3.0)
        batch = 50
        start = time.time()
        for i in range(0, len(self.jobs), batch):
            chunk = self.jobs[i:i + batch]
            while True:
                try:
                    ids = r.call('FCALL', 'llmb_push', 1, BASE, *[j[3] for j in chunk])
                    break
                except (OSError, RedisError) as e:
                    if isinstance(e, RedisError) and 'LOADING' not in str(e) \
                            and 'Function not found' not in str(e) \
                            and 'BUSY' not in str(e):
                        self.error = 'push refused: %s' % e
                        return
                    self.retries += 1
                    r.close()
                    time.sleep(0.2)
            for j, got in zip(chunk, ids):
                if got != j[0]:
                    self.error = 'push of %s answered %r' % (j[0], got)
                    return
                self.acked.append(j[0])
            # spread the pushes over the chaos period
            due = start + self.seconds * (i + batch) / len(self.jobs)
            if due > time.time():
                time.sleep(due - time.time())
        r.close()


class Chaos(threading.Thread):
    """Does one disruption every 0.5 to 2.5 s until `until`: each kind once
    in a shuffled order first, then at random."""

    KINDS = ['worker-kill', 'worker-stall', 'coordinator-kill', 'client-kill',
             'redis-restart', 'redis-pause']
    WEIGHTS = [5, 2, 2, 3, 1, 1]

    def __init__(self, redis, procs, until, rnd, events_max):
        super().__init__(daemon=True)
        self.redis = redis
        self.procs = procs
        self.until = until
        self.rnd = rnd
        self.events_max = events_max
        self.counts = {k: 0 for k in self.KINDS}
        self.error = None

    def run(self):
        try:
            order = list(self.KINDS)
            self.rnd.shuffle(order)
            while time.time() < self.until:
                time.sleep(self.rnd.uniform(0.5, 2.5))
                if time.time() >= self.until:
                    break
                kind = order.pop(0) if order else \
                    self.rnd.choices(self.KINDS, self.WEIGHTS)[0]
                getattr(self, kind.replace('-', '_'))()
                self.counts[kind] += 1
        except Exception as e:  # a bug of the driver: report it as a failure
            self.error = 'chaos thread: %r' % e

    def worker_kill(self):
        wid = self.rnd.choice(sorted(self.procs.workers))
        self.procs.kill_worker(wid)
        new = self.procs.start_worker()
        log('kill -9 worker %s, started %s' % (wid, new))

    def worker_stall(self):
        wid = self.rnd.choice(sorted(self.procs.workers))
        p = self.procs.workers[wid]
        os.killpg(p.pid, signal.SIGSTOP)
        log('SIGSTOP worker %s (and its tasks) for %d ms' % (wid, LEASE_MS + 1500))
        time.sleep((LEASE_MS + 1500) / 1000)
        if wid in self.procs.workers:
            os.killpg(p.pid, signal.SIGCONT)

    def coordinator_kill(self):
        slot = self.rnd.choice(sorted(self.procs.coords))
        self.procs.kill_coordinator(slot)
        time.sleep(self.rnd.uniform(0, 1.5))
        self.procs.start_coordinator(slot, self.events_max)
        log('kill -9 coordinator %d, started again' % slot)

    def client_kill(self):
        r = Resp(self.redis.port, 2.0)
        try:
            if self.rnd.random() < 0.5:
                wid = self.rnd.choice(sorted(self.procs.workers))
                n = 0
                lst = r.call('CLIENT', 'LIST', 'TYPE', 'normal')
                for line in lst.splitlines():
                    f = dict(kv.split('=', 1) for kv in line.split(' ') if '=' in kv)
                    if f.get('name') == 'llmb-worker:' + wid:
                        r.call('CLIENT', 'KILL', 'ID', f['id'])
                        n += 1
                log('CLIENT KILL of %d connections of worker %s' % (n, wid))
            else:
                n = r.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
                log('CLIENT KILL TYPE normal: %d connections' % n)
        except (OSError, RedisError) as e:
            log('CLIENT KILL failed: %s' % e)
        finally:
            r.close()

    def redis_restart(self):
        self.redis.kill9()
        time.sleep(self.rnd.uniform(0, 1))
        self.redis.start()
        log('kill -9 redis-server, restarted from its AOF')

    def redis_pause(self):
        ms = LEASE_MS + 1000
        self.redis.stop_signal()
        time.sleep(ms / 1000)
        self.redis.cont()
        log('SIGSTOP redis-server for %d ms (past the %d ms lease)' % (ms, LEASE_MS))


def read_all(r, jobs):
    """Job fields and task fields of every job (task fields are
    "<index>:<name>"), from the view of llmb_job, pipelined: the view holds
    the task fields of the first 100 tasks, and a job here has at most 20."""
    out = {}
    for i in range(0, len(jobs), 500):
        chunk = jobs[i:i + 500]
        rep = r.pipeline([('FCALL_RO', 'llmb_job', '1', BASE, jid)
                          for jid in chunk])
        for jid, h in zip(chunk, rep):
            jh, th = {}, {}
            for k, v in zip(h[::2], h[1::2]):
                (th if k[:1].isdigit() else jh)[k] = v
            out[jid] = (jh, th)
    return out


def settle(r, ids, timeout):
    """Waits until every job is terminal and aggregated; returns the number
    still not."""
    deadline = time.time() + timeout
    left = list(ids)
    while True:
        still = []
        for i in range(0, len(left), 1000):
            chunk = left[i:i + 1000]
            rep = r.pipeline([('FCALL_RO', 'llmb_job', '1', BASE, j, 'state',
                               'aggregate') for j in chunk])
            for jid, (state, agg) in zip(chunk, rep):
                if state not in ('completed', 'failed', 'cancelled') or agg is None:
                    still.append(jid)
        left = still
        if not left or time.time() > deadline:
            return left
        time.sleep(0.5)


def read_events(r):
    """Counts of finished and aggregated events per job, from the stream."""
    finished, aggregated = {}, {}
    start = '-'
    while True:
        rep = r.call('XRANGE', BASE + ':events', start, '+', 'COUNT', 5000)
        if not rep:
            break
        for eid, fields in rep:
            f = dict(zip(fields[::2], fields[1::2]))
            ev = f.get('event')
            if ev == 'finished':
                # `job`, or `ids` when a call ended several jobs
                for jid in f['ids'].split(' ') if 'ids' in f else [f['job']]:
                    finished[jid] = finished.get(jid, 0) + 1
            elif ev == 'aggregated':
                aggregated[f['job']] = aggregated.get(f['job'], 0) + 1
        ms, seq = rep[-1][0].split('-')
        start = '%s-%d' % (ms, int(seq) + 1)
    return finished, aggregated


def check(r, jobs, acked, exec_log):
    """Every check of the run; returns (problems, figures)."""
    problems = []
    spec = {j[0]: j for j in jobs}
    runs = {}  # (job, task) -> list of (attempt, worker)
    with open(exec_log) as f:
        for line in f:
            p = line.split()
            if len(p) != 6 or p[0] != 'run':
                problems.append('malformed execution line %r' % line)
                continue
            runs.setdefault((p[1], int(p[2])), []).append((int(p[3]), p[4]))
    state = read_all(r, acked)
    finished, aggregated = read_events(r)
    sum_ok = sum_failed = 0
    tasks_total = dup_exec = planned_retry = 0

    def bad(msg):
        if len(problems) < 50:
            problems.append(msg)

    for jid in acked:
        _, kind, ntasks, _ = spec[jid]
        tasks_total += ntasks
        jh, th = state[jid]
        if not jh:
            bad('job %s acknowledged but lost' % jid)
            continue
        want = 'failed' if kind == 'fatal' else 'completed'
        if jh.get('state') != want:
            bad('job %s (%s) is %s, expected %s: %s' % (jid, kind, jh.get('state'),
                                                       want, jh.get('error')))
        if jh.get('left') != '0':
            bad('job %s has left=%s' % (jid, jh.get('left')))
        n_ok = n_failed = 0
        vals = []
        for t in range(ntasks):
            ts = th.get('%d:state' % t)
            attempts = int(th.get('%d:attempt' % t, 0))
            ex = runs.get((jid, t), [])
            if ex:
                dup_exec += len(ex) - 1
                if kind == 'flaky' and t % 2 == 0 and any(a == 1 for a, _ in ex):
                    planned_retry += 1
            if len(ex) > attempts:
                bad('task %s:%d ran %d times but Redis counted %d attempts'
                    % (jid, t, len(ex), attempts))
            if ts == 'completed':
                n_ok += 1
                try:
                    res = json.loads(th['%d:result' % t])
                except (KeyError, ValueError):
                    bad('task %s:%d completed without a JSON result' % (jid, t))
                    continue
                vals.append(res['v'])
                if res['v'] != t * 7 % 100:
                    bad('task %s:%d result %r' % (jid, t, res))
                if (res['attempt'], res['worker']) not in ex:
                    bad('task %s:%d result from attempt %s on %s, never executed'
                        % (jid, t, res['attempt'], res['worker']))
            elif ts == 'failed':
                n_failed += 1
                if not (kind == 'fatal' and t == 0):
                    bad('task %s:%d failed: %s' % (jid, t, th.get('%d:error' % t)))
            else:
                bad('task %s:%d is in state %s' % (jid, t, ts))
        sum_ok += n_ok
        sum_failed += n_failed
        if int(jh.get('ok', -1)) != n_ok or int(jh.get('failed', 0)) != n_failed:
            bad('job %s ok=%s failed=%s but tasks say %d and %d'
                % (jid, jh.get('ok'), jh.get('failed'), n_ok, n_failed))
        # a job of one task that ended with no result but {} is never
        # handed to a coordinator: llmb_job answers its aggregate, and no
        # `aggregated` event comes (docs/coordinator.md)
        trivial = int(jh.get('tasks', 1)) == 1 and (
            jh.get('state') != 'completed' or th.get('0:result', '{}') == '{}')
        if finished.get(jid, 0) != 1 or \
                aggregated.get(jid, 0) != (0 if trivial else 1):
            bad('job %s has %d finished and %d aggregated events'
                % (jid, finished.get(jid, 0), aggregated.get(jid, 0)))
        try:
            agg = json.loads(jh['aggregate'])
        except (KeyError, ValueError):
            bad('job %s has no aggregate' % jid)
            continue
        if agg.get('ok') != n_ok or agg.get('results') != n_ok \
                or agg.get('state') != jh.get('state'):
            bad('job %s aggregate %s disagrees with its %d completed tasks'
                % (jid, jh['aggregate'][:200], n_ok))
        v = agg.get('fields', {}).get('v')
        if vals:
            if v is None or v.get('count') != len(vals) or v.get('min') != min(vals) \
                    or v.get('max') != max(vals):
                bad('job %s aggregate of v %r, computed count %d min %d max %d'
                    % (jid, v, len(vals), min(vals), max(vals)))
        elif v is not None:
            bad('job %s aggregate has v without results' % jid)
    counts = r.call('HGETALL', BASE + ':counts')
    counts = dict(zip(counts[::2], counts[1::2]))
    if int(counts.get('ok', 0)) != sum_ok or int(counts.get('failed', 0)) != sum_failed:
        bad('queue counters ok=%s failed=%s, jobs say %d and %d'
            % (counts.get('ok'), counts.get('failed'), sum_ok, sum_failed))
    pend = r.pipeline([('LLEN', BASE + ':pl')] +
                      [('ZCARD', BASE + ':' + k)
                       for k in ('pz', 'pd', 'running', 'aggr')] +
                      [('LLEN', BASE + ':done')])
    if any(pend):
        bad('leftovers: pl, pz, pd, running, aggr, done = %r' % (pend,))
    executions = sum(len(v) for v in runs.values())
    figures = {
        'jobs': len(acked), 'tasks': tasks_total, 'tasks_ok': sum_ok,
        'tasks_failed_for_good': sum_failed, 'executions': executions,
        'extra_executions': dup_exec, 'planned_retries': planned_retry,
        'duplicate_executions': dup_exec - planned_retry,
        'lost': sum(1 for j in acked if not state[j][0]),
    }
    return problems, figures


def main():
    ap = argparse.ArgumentParser(description='llmb chaos suite')
    ap.add_argument('--jobs', type=int, default=400)
    ap.add_argument('--minutes', type=float, default=0.6)
    ap.add_argument('--workers', type=int, default=4)
    ap.add_argument('--fsync', choices=('always', 'everysec'), default='always')
    ap.add_argument('--seed', type=int, default=None)
    ap.add_argument('--settle-s', type=float, default=None,
                    help='time allowed after the chaos for every job to end')
    ap.add_argument('--keep', action='store_true', help='keep the work directory')
    args = ap.parse_args()
    # SIGTERM and SIGINT (even when started in the background) clean up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    signal.signal(signal.SIGINT, signal.default_int_handler)

    if shutil.which('redis-server') is None:
        log('redis-server not found: skipped')
        return 77
    for b in (WORKER, COORDINATOR):
        if not os.access(b, os.X_OK):
            log('%s not built' % b)
            return 1
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rnd = random.Random(seed)
    chaos_s = args.minutes * 60
    settle_s = args.settle_s if args.settle_s is not None else 60 + args.jobs / 100
    workdir = tempfile.mkdtemp(prefix='llmb-chaos.')
    exec_log = os.path.join(workdir, 'executions.log')
    open(exec_log, 'w').close()
    log('seed %d, %d jobs, %.0f s of chaos, %d workers, appendfsync %s, dir %s'
        % (seed, args.jobs, chaos_s, args.workers, args.fsync, workdir))

    redis = RedisServer(workdir, args.fsync)
    procs = None
    ok = False
    try:
        redis.start()
        procs = Procs(workdir, redis.port, exec_log)
        events_max = args.jobs * 30 + 100000
        for _ in range(args.workers):
            procs.start_worker()
        procs.start_coordinator(1, events_max)
        procs.start_coordinator(2, events_max)
        jobs = make_jobs(args.jobs, rnd)
        t0 = time.time()
        pusher = Pusher(redis.port, jobs, chaos_s * 0.7)
        chaos = Chaos(redis, procs, t0 + chaos_s, rnd, events_max)
        pusher.start()
        chaos.start()
        chaos.join()
        redis.cont()
        pusher.join()
        if pusher.error or chaos.error:
            raise RuntimeError(pusher.error or chaos.error)
        log('chaos over after %.0f s: %s; %d pushes acknowledged (%d batch retries)'
            % (time.time() - t0, chaos.counts, len(pusher.acked), pusher.retries))
        for wid in list(procs.workers):
            os.killpg(procs.workers[wid].pid, signal.SIGCONT)
        crashed = procs.crashed()
        r = Resp(redis.port, 30.0)
        left = settle(r, pusher.acked, settle_s)
        log('settled after %.0f s' % (time.time() - t0))
        problems, figures = check(r, jobs, pusher.acked, exec_log)
        if left:
            problems.insert(0, '%d jobs not terminal and aggregated after %.0f s, '
                            'e.g. %s' % (len(left), settle_s, left[:5]))
        crashed += procs.crashed()
        if crashed:
            problems.append('processes exited by themselves: %s' % ', '.join(crashed))
        figures.update({'kills_and_restarts': chaos.counts, 'seed': seed,
                        'push_retries': pusher.retries, 'fsync': args.fsync,
                        'seconds': round(time.time() - t0)})
        print(json.dumps(figures, sort_keys=True))
        for p in problems:
            log('FAIL: ' + p)
        ok = not problems
        log('%s: %d jobs, %d tasks, %d executions, %d duplicate executions, lost %d'
            % ('ok' if ok else 'FAILED', figures['jobs'], figures['tasks'],
               figures['executions'], figures['duplicate_executions'], figures['lost']))
        r.close()
    finally:
        if procs is not None:
            procs.stop_all()
        redis.shutdown()
        if args.keep or not ok:
            log('work directory kept: %s' % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
