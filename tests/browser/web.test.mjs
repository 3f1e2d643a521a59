/*
 * The web UI and `llmb report` in Debian's chromium (run.sh starts the
 * system and passes it in the environment). Each check waits for what the
 * page shows, never for a time: a check that does not come true fails
 * when its wait ends (60 s), with a screenshot of the page as it was.
 *
 *   overview   lists the queues and both workers
 *   read-only  a server without a token: the banner, the buttons off,
 *              403 for an action even with a token
 *   actions    pause without the token: the page asks for it; a wrong
 *              token is refused (401) and the queue is not paused; a
 *              request without the header is 401; with the token the
 *              queue pauses (checked with llmb queues --json)
 *   live       a job pushed while the queue page is open shows up
 *              pending (the queue is paused), and after resume (again
 *              through the page) completed, without a reload
 *   steady     jobs pushed one after another, without a pause: the list
 *              shows them while the pushes go on (a reload does not
 *              wait for the events to stop), one load at a time
 *   reconnect  a server of the test's own stopped and started again on
 *              its port: the page reconnects by itself, the new server
 *              cannot resume the old one's id and says reload, and a job
 *              pushed while no server ran shows up, without a reload of
 *              the page
 *   proto-id   a job whose id is __proto__ can be ticked for a compare
 *   task-error a failed task's error shows on a click on its cell
 *   charts     the llm job's histograms and CDFs, and its throughput and
 *              concurrency over time, draw: the canvases' pixels are
 *              not blank
 *   xss        the payload <img src=x onerror=alert(1)> is text: visible,
 *              no <img> in the page, no dialog
 *   report     llmb report of two jobs opens from disk with every request
 *              refused (any request fails the test) and draws its charts
 */
import {execFile, spawn} from 'node:child_process';
import {mkdirSync} from 'node:fs';
import {createServer} from 'node:net';
import {join} from 'node:path';
import {promisify} from 'node:util';

const run = promisify(execFile);
const env = process.env;
const {default: puppeteer} = await import(join(env.PUPPETEER, 'lib/esm/puppeteer/puppeteer-core.js'));
const WAIT = 60000;
const art = env.ARTIFACTS;
const common = ['--redis', env.REDIS_URL, '--prefix', env.PREFIX];

let failures = 0;
const problems = [];   /* page errors and dialogs, fatal at the end */

function ok(cond, what) {
    if (!cond) throw new Error(what);
}

async function llmb(...args) {
    const {stdout} = await run(env.LLMB, [...common, ...args]);
    return stdout;
}

async function queues() {
    return JSON.parse(await llmb('queues', '--json')).queues;
}

/* Canvas pixels that are drawn (not transparent, not white), of every
 * canvas matched by sel: a list of counts. */
async function drawnPixels(page, sel) {
    return page.$$eval(sel, cs => cs.map(c => {
        const ctx = c.getContext('2d');
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) {
            const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
            /* coloured: the datasets' colours, not the grey of axes and text */
            if (a > 100 && Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
        }
        return n;
    }));
}

/* A TCP port of 127.0.0.1 free a moment ago. */
function freePort() {
    return new Promise((resolve, reject) => {
        const s = createServer();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const port = s.address().port;
            s.close(() => resolve(port));
        });
    });
}

function watch(page, name) {
    page.on('pageerror', e => problems.push(`${name}: page error: ${e.message}`));
    page.on('dialog', async d => {
        problems.push(`${name}: a dialog opened: ${d.type()} ${d.message()}`);
        await d.dismiss();
    });
    page.on('console', m => {
        /* the refused actions log their 401 (403 read-only), as they should */
        if (m.type() === 'error' && !/favicon|status of 40[13]/.test(m.text())) problems.push(`${name}: console error: ${m.text()}`);
    });
}

async function step(name, page, fn) {
    try {
        await fn();
        console.log(`ok - ${name}`);
    } catch (e) {
        failures++;
        console.log(`not ok - ${name}: ${e.message}`);
        if (page) await page.screenshot({path: join(art, `fail-${name}.png`), fullPage: true}).catch(() => {});
    }
}

async function text(page, sel) {
    return page.$eval(sel, n => n.textContent);
}

const browser = await puppeteer.launch({
    executablePath: env.CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--font-render-hinting=none'],
});

try {
    const page = await browser.newPage();
    watch(page, 'live');
    await page.setViewport({width: 1400, height: 1000});
    page.setDefaultTimeout(WAIT);

    await step('overview', page, async () => {
        await page.goto(env.WEB_URL + '#/', {waitUntil: 'load'});
        await page.waitForFunction(() => {
            const t = document.querySelector('main').textContent;
            return t.includes('w-a') && t.includes('w-b') && document.querySelector('a[href="#/queue/bench"]') &&
                document.querySelector('a[href="#/queue/default"]');
        });
        /* two overview events give the throughput chart a point */
        await page.waitForFunction(() => window.llmb.history().length >= 2);
        await page.screenshot({path: join(art, 'overview.png'), fullPage: true});
    });

    await step('actions-need-the-token', page, async () => {
        await page.goto(env.WEB_URL + '#/queue/default', {waitUntil: 'load'});
        await page.waitForSelector('button[data-action="pause"]:not([disabled])');
        /* no header at all: 401 */
        const status = await page.evaluate(async () =>
            (await fetch('/api/queues/default/pause', {method: 'POST'})).status);
        ok(status === 401, `POST without a token answered ${status}, not 401`);
        /* through the page: it asks; a wrong token is refused */
        await page.click('button[data-action="pause"]');
        await page.waitForSelector('#token-dialog[open]');
        await page.type('#token-input', 'not-the-token');
        await page.click('#token-save');
        await page.waitForFunction(() => {
            const n = document.getElementById('notice');
            return !n.hidden && n.textContent.includes('401');
        });
        ok((await queues()).find(q => q.name === 'default').paused === false, 'the queue was paused with a wrong token');
        ok(await page.evaluate(() => sessionStorage.getItem('llmb-web-token')) === null, 'a refused token is kept');
        /* the right one */
        await page.waitForSelector('button[data-action="pause"]:not([disabled])');
        await page.click('button[data-action="pause"]');
        await page.waitForSelector('#token-dialog[open]');
        await page.type('#token-input', env.TOKEN);
        await page.click('#token-save');
        await page.waitForFunction(() => {
            const n = document.getElementById('notice');
            return !n.hidden && n.textContent.includes('done');
        });
        ok((await queues()).find(q => q.name === 'default').paused === true, 'the queue is not paused');
        ok(await page.evaluate(() => document.cookie) === '', 'a cookie was set');
        /* the page sees it paused: the button turns to Resume */
        await page.waitForSelector('button[data-action="resume"]');
    });

    await step('live-pending-to-completed', page, async () => {
        await page.evaluate(() => { window.__noReload = 'still here'; });
        await run(env.PUSH, [...common, '--json', '--id', 'live-1', 'echo', '{"live":true}']);
        await page.waitForSelector('tr[data-job="live-1"][data-state="pending"]');
        await page.screenshot({path: join(art, 'queue-pending.png'), fullPage: true});
        await page.click('button[data-action="resume"]');
        await page.waitForSelector('tr[data-job="live-1"][data-state="completed"]');
        ok(await page.evaluate(() => window.__noReload) === 'still here', 'the page reloaded');
        ok((await queues()).find(q => q.name === 'default').paused === false, 'the queue is still paused');
        await page.screenshot({path: join(art, 'queue-completed.png'), fullPage: true});
    });

    await step('live-under-steady-events', page, async () => {
        await page.evaluate(() => {
            const f = window.fetch;
            const l = window.__loads = {now: 0, max: 0};
            window.fetch = function (u) {
                if (!String(u).includes('/api/queues/default/jobs')) return f.apply(this, arguments);
                l.max = Math.max(l.max, ++l.now);
                return f.apply(this, arguments).finally(() => { l.now--; });
            };
        });
        let n = 0, shown = false;
        while (!shown && n < 200) {
            n++;
            await run(env.PUSH, [...common, '--id', `steady-${n}`, 'echo', '{}']);
            shown = await page.$('tr[data-job^="steady-"]') !== null;
        }
        ok(shown, `no job shown while ${n} were pushed one after another`);
        const loads = await page.evaluate(() => window.__loads.max);
        ok(loads === 1, `${loads} loads of the list at once`);
    });

    await step('proto-id', page, async () => {
        await run(env.PUSH, [...common, '--id', '__proto__', 'echo', '{}']);
        await page.waitForSelector('tr[data-job="__proto__"]');
        await page.click('tr[data-job="__proto__"] input[type="checkbox"]');
        await page.click('tr[data-job^="steady-"] input[type="checkbox"]');
        const off = await page.$$eval('button', bs => bs.find(b => b.textContent === 'Compare selected').disabled);
        ok(off === false, 'Compare stays off with __proto__ and another job ticked');
    });

    await step('job-charts', page, async () => {
        await page.goto(env.WEB_URL + '#/job/bench-slo', {waitUntil: 'load'});
        await page.waitForSelector('.dist canvas');
        await page.waitForFunction(() => window.llmb.charts().length >= 8);
        const counts = await drawnPixels(page, '.dist canvas');
        ok(counts.length >= 8, `${counts.length} distribution charts, not 8`);
        ok(counts.every(n => n > 300), `a blank chart: coloured pixels ${counts.join(', ')}`);
        /* throughput and concurrency over time: two line charts */
        const series = await drawnPixels(page, 'section.timeline .chart.series canvas');
        ok(series.length === 2 && series.every(n => n > 100), `time series charts: ${series.join(', ')}`);
        ok((await text(page, 'section.timeline')).includes('when their chunk arrived'), 'no note under the time series');
        ok((await text(page, 'main')).includes('SLO and goodput'), 'no SLO section');
        if (env.DOCS_IMAGES) {
            /* the README's picture: the job's head, its llm cards and its
             * distributions */
            await page.evaluate(() => { document.getElementById('notice').hidden = true; });
            const top = await page.$eval('main h1', n => n.getBoundingClientRect().top + window.scrollY);
            const end = await page.$eval('section.dists', n => n.getBoundingClientRect().bottom + window.scrollY);
            mkdirSync(env.DOCS_IMAGES, {recursive: true});
            await page.screenshot({path: join(env.DOCS_IMAGES, 'web-job-llm.png'),
                                   clip: {x: 0, y: Math.max(0, top - 60), width: 1400, height: end - top + 70}});
        }
        /* a task's detail on click */
        await page.click('.task-grid .cell[data-task="0"]');
        await page.waitForFunction(() => document.getElementById('task-detail').textContent.includes('Task 0'));
        await page.screenshot({path: join(art, 'job-llm.png'), fullPage: true});
        await page.goto(env.WEB_URL + '#/job/bench-ab', {waitUntil: 'load'});
        await page.waitForFunction(() => document.querySelector('main').textContent.includes('By endpoint / model'));
        /* an A/B job's series: a line per pair besides the job's */
        await page.waitForFunction(() => document.querySelectorAll('section.timeline .chart.series canvas').length === 2);
        const abSeries = await page.evaluate(() => window.llmb.charts().filter(c =>
            c.canvas.closest('section.timeline')).map(c => c.data.datasets.length));
        ok(abSeries.length === 2 && abSeries[1] >= 3 && abSeries[0] === abSeries[1] + 1,
           `A/B time series datasets: ${abSeries.join(', ')}, not 2 + pairs and 1 + pairs`);
        await page.goto(env.WEB_URL + '#/job/sw-concurrency-4', {waitUntil: 'load'});
        await page.waitForFunction(() => /Sweep over concurrency: 2 levels/.test(document.querySelector('main').textContent));
        const sweep = await drawnPixels(page, '.sweep canvas');
        ok(sweep.length === 2 && sweep.every(n => n > 100), `sweep charts: ${sweep.join(', ')}`);
    });

    await step('task-error-on-click', page, async () => {
        await page.goto(env.WEB_URL + '#/job/broken-1', {waitUntil: 'load'});
        await page.waitForSelector('.task-grid .cell.state-failed[data-task="2"]');
        ok(await page.$$eval('.task-grid .cell.state-failed', n => n.length) === 3, 'not 3 failed cells');
        await page.click('.task-grid .cell[data-task="2"]');
        await page.waitForSelector('#task-error');
        ok((await text(page, '#task-error')).includes('failed on purpose'), 'the task\'s error is not shown');
    });

    await step('xss-stays-text', page, async () => {
        await page.goto(env.WEB_URL + '#/job/xss-1', {waitUntil: 'load'});
        await page.waitForFunction(() => document.querySelector('main').textContent.includes('<img src=x onerror=alert(1)>'));
        ok(await page.$$eval('main img', n => n.length) === 0, 'an <img> element was made from the payload');
        const shown = await page.$$eval('pre', ps => ps.some(p => p.textContent.includes('<img src=x onerror=alert(1)>') &&
            p.getBoundingClientRect().height > 0));
        ok(shown, 'the payload is not visible as text');
        await page.goto(env.WEB_URL + '#/queue/default', {waitUntil: 'load'});
        await page.type('#job-search', 'xss');
        await page.waitForSelector('tr[data-job="xss-1"]');
    });

    await step('read-only', page, async () => {
        await page.goto(env.RO_URL + '#/queue/default', {waitUntil: 'load'});
        await page.waitForFunction(() => {
            const b = document.getElementById('banner');
            return !b.hidden && b.textContent.includes('Read-only');
        });
        await page.waitForSelector('button[data-action="pause"][disabled]');
        ok(await page.$eval('#mode', n => !n.hidden && n.textContent === 'read-only'), 'no read-only mark');
        const status = await page.evaluate(async (t) =>
            (await fetch('/api/queues/default/pause', {method: 'POST', headers: {Authorization: 'Bearer ' + t}})).status, env.TOKEN);
        ok(status === 403, `a read-only server answered ${status} to an action, not 403`);
        ok((await queues()).find(q => q.name === 'default').paused === false, 'the read-only server paused the queue');
        await page.screenshot({path: join(art, 'read-only.png')});
    });

    await step('compare', page, async () => {
        await page.goto(env.WEB_URL + '#/compare/sw-concurrency-1,sw-concurrency-4', {waitUntil: 'load'});
        await page.waitForSelector('.compare-table');
        await page.waitForFunction(() => window.llmb.charts().length >= 4);
        const counts = await drawnPixels(page, '.dist canvas');
        ok(counts.length >= 4 && counts.every(n => n > 100), `compare charts: ${counts.join(', ')}`);
        await page.screenshot({path: join(art, 'compare.png'), fullPage: true});
    });

    await step('reconnect', null, async () => {
        const port = await freePort();
        const url = `http://127.0.0.1:${port}/`;
        const serve = async () => {
            const p = spawn(env.LLMB, [...common, 'web', '--addr', `127.0.0.1:${port}`], {stdio: 'ignore'});
            for (let i = 0; i < 600; i++) {
                try {
                    if ((await fetch(url + 'api/config')).ok) return p;
                } catch (e) { /* not listening yet */ }
                await new Promise(r => setTimeout(r, 100));
            }
            p.kill('SIGTERM');
            throw new Error(`llmb web did not start on port ${port}`);
        };
        const stop = p => new Promise(r => {
            if (p.exitCode !== null || p.signalCode !== null) return r();
            p.once('exit', r);
            p.kill('SIGTERM');
        });
        let srv = await serve();
        const rp = await browser.newPage();
        /* (the reconnections while no server runs log refused connections) */
        rp.on('pageerror', e => problems.push(`reconnect: page error: ${e.message}`));
        try {
            await run(env.PUSH, [...common, '--queue', 'reconnect', '--id', 'rc-1', 'echo', '{}']);
            await rp.goto(url + '#/queue/reconnect', {waitUntil: 'load'});
            await rp.waitForSelector('tr[data-job="rc-1"]');
            await rp.waitForSelector('#live.on');
            await rp.evaluate(() => { window.__noReload = 'still here'; });
            await stop(srv);
            await rp.waitForSelector('#live:not(.on)');
            /* no worker serves the queue: no later event names the job */
            await run(env.PUSH, [...common, '--queue', 'reconnect', '--id', 'rc-2', 'echo', '{}']);
            srv = await serve();
            await rp.waitForSelector('tr[data-job="rc-2"]');
            ok(await rp.evaluate(() => window.__noReload) === 'still here', 'the page reloaded');
        } finally {
            await rp.close();
            await stop(srv);
        }
    });

    await step('report-offline', null, async () => {
        const file = join(art, 'report.html');
        await run(env.LLMB, [...common, 'report', 'bench-slo', 'sw-concurrency-1', 'sw-concurrency-4', '-o', file]);
        const rp = await browser.newPage();
        watch(rp, 'report');
        rp.setDefaultTimeout(WAIT);
        await rp.setViewport({width: 1400, height: 1000});
        const requests = [];
        await rp.setRequestInterception(true);
        rp.on('request', r => {
            if (r.isNavigationRequest() && r.url().startsWith('file://') && r.frame() === rp.mainFrame()) {
                r.continue();
            } else {
                requests.push(r.url().slice(0, 120));
                r.abort();
            }
        });
        await rp.goto('file://' + file, {waitUntil: 'load'});
        await rp.waitForFunction(() => window.llmb && window.llmb.report && window.llmb.charts().length >= 4);
        let counts = await drawnPixels(rp, 'canvas');
        ok(counts.length >= 4 && counts.every(n => n > 100), `report compare charts: ${counts.join(', ')}`);
        await rp.screenshot({path: join(art, 'report.png'), fullPage: true});
        await rp.evaluate(() => { location.hash = '#/job/bench-slo'; });
        await rp.waitForFunction(() => document.querySelectorAll('.dist canvas').length >= 8);
        counts = await drawnPixels(rp, '.dist canvas');
        ok(counts.every(n => n > 300), `report job charts: ${counts.join(', ')}`);
        counts = await drawnPixels(rp, 'section.timeline .chart.series canvas');
        ok(counts.length === 2 && counts.every(n => n > 100), `report time series charts: ${counts.join(', ')}`);
        await rp.screenshot({path: join(art, 'report-job.png'), fullPage: true});
        ok(requests.length === 0, `the report made requests: ${requests.join(' ')}`);
        await rp.close();
    });

    if (env.DOCS_IMAGES) {
        /* the README's overview: a while of work, so that the throughput
         * chart has a shape; jobs pushed in batches as the chart fills */
        await step('docs-overview', page, async () => {
            await page.goto(env.WEB_URL + '#/', {waitUntil: 'load'});
            for (let round = 0; round < 6; round++) {
                const lines = [];
                for (let i = 0; i < 10 + 8 * (round % 3); i++)
                    lines.push(JSON.stringify({type: 'sleep', queue: round % 2 ? 'bench' : 'default', payload: {ms: 150 + 40 * (i % 5)}}));
                await new Promise((resolve, reject) => {
                    const p = spawn(env.PUSH, [...common, '--batch', '-'], {stdio: ['pipe', 'ignore', 'ignore']});
                    p.on('exit', c => c === 0 ? resolve() : reject(new Error(`llmb-push --batch exited ${c}`)));
                    p.stdin.end(lines.join('\n') + '\n');
                });
                const n = (await page.evaluate(() => window.llmb.history().length)) + 2;
                await page.waitForFunction(k => window.llmb.history().length >= k, {}, n);
            }
            mkdirSync(env.DOCS_IMAGES, {recursive: true});
            await page.screenshot({path: join(env.DOCS_IMAGES, 'web-overview.png'), fullPage: true});
        });
    }
} finally {
    await browser.close();
}

if (problems.length) {
    failures++;
    console.log('not ok - no page errors, dialogs or console errors:\n  ' + problems.join('\n  '));
}
console.log(failures ? `${failures} failed` : 'all passed');
process.exit(failures ? 1 : 0);
