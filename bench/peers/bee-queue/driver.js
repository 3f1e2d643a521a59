// bee-queue harness of bench/run. Subcommands:
//   enqueue N bulk|single   prints the seconds the pushes took
//   fill N                  N pending no-op jobs, pushed in bulk (saveAll)
//   work                    one worker process until SIGTERM
//   pace N RATE             W3: N jobs one at a time at RATE/s
// Settings: see README.md beside this file.
'use strict';
const Queue = require('bee-queue');
const { nowUs, payload, pace, progress, chunks } = require('../common/stat');

const redis = { host: '127.0.0.1', port: Number(process.env.BENCH_REDIS_PORT) };
const keep = process.env.BENCH_RETAIN === 'default';
// 200 jobs in flight per process: bee-queue's own benchmark setting for
// many short jobs, each holding a BRPOPLPUSH on its own.
const concurrency = Number(process.env.BENCH_CONCURRENCY || 200);
// The settings of bee-queue's own benchmark: no events, no job objects
// kept in the producer, finished jobs removed.
const fast = { getEvents: false, sendEvents: false, storeJobs: false,
               removeOnSuccess: !keep, removeOnFailure: !keep, activateDelayedJobs: false };

async function main() {
  const [cmd, a, b] = process.argv.slice(2);
  if (cmd === 'work') {
    const p = progress();
    const q = new Queue('bench', { redis, isWorker: true, ...fast });
    await q.ready();
    p.flush();
    q.process(concurrency, async (job) => { p.start(job.data); p.end(); return null; });
    const stop = async () => { await q.close(5000); p.flush(); process.exit(0); };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    return;
  }
  const q = new Queue('bench', { redis, isWorker: false, ...fast });
  await q.ready();
  const n = Number(a);
  if (cmd === 'enqueue' || cmd === 'fill') {
    const t0 = nowUs();
    if (b === 'single') {
      for (let i = 0; i < n; i++) await q.createJob(payload(i)).save();
    } else {
      for (const [lo, hi] of chunks(n, 1000)) {
        const jobs = [];
        for (let i = lo; i < hi; i++) jobs.push(q.createJob(payload(i)));
        const errs = await q.saveAll(jobs);
        if (errs.size) throw new Error(`saveAll: ${errs.size} jobs failed`);
      }
    }
    if (cmd === 'enqueue') console.log((nowUs() - t0) / 1e6);
  } else if (cmd === 'pace') {
    await pace(n, Number(b), (i, t) => q.createJob({ t, ...payload(i) }).save());
  } else {
    throw new Error('unknown subcommand ' + cmd);
  }
  await q.close();
}

main().catch((e) => { console.error('bee-queue driver:', e.message); process.exit(1); });
