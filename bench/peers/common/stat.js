// What every Node.js peer harness shares: the wall clock in microseconds,
// the benchmark payload, pacing, and the progress file a worker keeps for
// bench/run (count of jobs done, first start and last end in us, rewritten
// every 10 ms off the job path, plus push-to-start latencies appended).
'use strict';
const fs = require('fs');
const { performance } = require('perf_hooks');

const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

function payload(i) {
  return { prompt: 'benchmark request ' + String(i).padStart(8, '0'),
           max_tokens: 128, temperature: 0.5, seed: i };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Pushes n jobs one at a time at `rate` per second; push(i, t) gets the
// push time t (us) to put into the job.
async function pace(n, rate, push) {
  const t0 = nowUs();
  for (let i = 0; i < n; i++) {
    const wait = (t0 + (i * 1e6) / rate - nowUs()) / 1000;
    if (wait > 0) await sleep(wait);
    await push(i, nowUs());
  }
}

// The worker side: call done(job data) at the start of each job.
function progress() {
  const dir = process.env.BENCH_STATDIR;
  const file = `${dir}/${process.pid}.stat`;
  let count = 0, first = 0, last = 0, lat = [];
  const flush = () => {
    fs.writeFileSync(file + '.tmp', `${count} ${first} ${last}\n`);
    fs.renameSync(file + '.tmp', file);
    if (lat.length) { fs.appendFileSync(`${dir}/${process.pid}.lat`, lat.join('\n') + '\n'); lat = []; }
  };
  setInterval(flush, 10).unref();
  return {
    start(data) {
      const now = nowUs();
      if (first === 0) first = now;
      if (data && data.t) lat.push(now - data.t);
    },
    end() { count++; last = nowUs(); },
    flush,
  };
}

function chunks(n, size) {
  const out = [];
  for (let i = 0; i < n; i += size) out.push([i, Math.min(n, i + size)]);
  return out;
}

module.exports = { nowUs, payload, pace, progress, chunks, sleep };
