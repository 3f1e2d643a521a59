// BullMQ harness of bench/run. Subcommands:
//   enqueue N bulk|single   prints the seconds the pushes took
//   fill N                  N pending no-op jobs, pushed in bulk
//   work                    one worker process until SIGTERM
//   pace N RATE             W3: N jobs one at a time at RATE/s
// Settings: see README.md beside this file.
'use strict';
const { Queue, Worker } = require('bullmq');
const { nowUs, payload, pace, progress, chunks } = require('../common/stat');

const connection = { host: '127.0.0.1', port: Number(process.env.BENCH_REDIS_PORT) };
const keep = process.env.BENCH_RETAIN === 'default';
const jobOpts = keep ? {} : { removeOnComplete: true, removeOnFail: true };
const concurrency = Number(process.env.BENCH_CONCURRENCY || 200);

async function main() {
  const [cmd, a, b] = process.argv.slice(2);
  if (cmd === 'work') {
    const p = progress();
    const w = new Worker('bench', async (job) => { p.start(job.data); p.end(); return null; },
      { connection, concurrency, autorun: false });
    await w.waitUntilReady();
    p.flush();
    const stop = async () => { await w.close(); p.flush(); process.exit(0); };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    w.run();
    return;
  }
  const q = new Queue('bench', { connection, defaultJobOptions: jobOpts });
  await q.waitUntilReady();
  const n = Number(a);
  if (cmd === 'enqueue' || cmd === 'fill') {
    const t0 = nowUs();
    if (b === 'single') {
      for (let i = 0; i < n; i++) await q.add('noop', payload(i));
    } else {
      for (const [lo, hi] of chunks(n, 1000)) {
        const jobs = [];
        for (let i = lo; i < hi; i++) jobs.push({ name: 'noop', data: payload(i) });
        await q.addBulk(jobs);
      }
    }
    if (cmd === 'enqueue') console.log((nowUs() - t0) / 1e6);
  } else if (cmd === 'pace') {
    await pace(n, Number(b), (i, t) => q.add('noop', { t, ...payload(i) }));
  } else {
    throw new Error('unknown subcommand ' + cmd);
  }
  await q.close();
}

main().catch((e) => { console.error('bullmq driver:', e.message); process.exit(1); });
