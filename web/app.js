/*
 * llmb's web UI: one script for the live pages that `llmb web` serves and
 * for the reports that `llmb report` writes (docs/web.md).
 *
 * Live, it reads the JSON API (/api/...) and follows /api/events
 * (Server-Sent Events) so that pages change without a reload. In a report
 * the same code reads the data that the file carries in
 * <script type="application/json" id="llmb-report-data"> and makes no
 * request at all. Routes are hashes: #/ (overview), #/queue/<q>,
 * #/job/<id>, #/compare/<id>,<id>.
 *
 * Everything that comes from Redis (ids, payloads, errors, results) is put
 * into the page as text (textContent, createElement), never as markup, and
 * the page runs under a Content-Security-Policy without inline scripts or
 * styles: no HTML parsed from strings, no eval, no inline handlers or style
 * attributes (tests/lint/web.sh).
 */
(function () {
    'use strict';

    /* ---------- what this page is: live, or a report ---------- */

    var REPORT = (function () {
        var node = document.getElementById('llmb-report-data');
        if (!node) return null;
        try {
            return JSON.parse(node.textContent);
        } catch (e) {
            return {error: 'the report data is not JSON: ' + e.message, jobs: []};
        }
    })();

    var app = document.getElementById('app');
    var config = {read_only: true, version: null};
    var overview = null;      /* the last overview document */
    var history = [];         /* overview samples for the throughput chart */
    var HISTORY_MAX = 300;    /* 10 minutes of the 2 s overview events */
    var page = null;          /* the page shown: {charts, onJob, onOverview} */
    var charts = [];          /* Chart.js instances of the page */
    var source = null;        /* the EventSource */

    /* ---------- DOM, without markup ---------- */

    /* el('td', {className: 'num', text: '12'}, [children]): an element
     * with properties set one by one; text goes in as textContent. */
    function el(tag, props, kids) {
        var node = document.createElement(tag);
        var k;
        if (props) {
            for (k in props) {
                if (!Object.prototype.hasOwnProperty.call(props, k)) continue;
                var v = props[k];
                if (v === undefined || v === null) continue;
                if (k === 'text') node.textContent = String(v);
                else if (k === 'className') node.className = v;
                else if (k === 'dataset') Object.keys(v).forEach(function (d) { node.dataset[d] = v[d]; });
                else if (k === 'on') Object.keys(v).forEach(function (e) { node.addEventListener(e, v[e]); });
                else if (k === 'hidden' || k === 'disabled' || k === 'checked') node[k] = !!v;
                else node.setAttribute(k, String(v));
            }
        }
        append(node, kids);
        return node;
    }

    function append(node, kids) {
        if (kids === undefined || kids === null) return node;
        if (!Array.isArray(kids)) kids = [kids];
        kids.forEach(function (c) {
            if (c === undefined || c === null || c === false) return;
            if (Array.isArray(c)) append(node, c);
            else if (typeof c === 'object' && c.nodeType) node.appendChild(c);
            else node.appendChild(document.createTextNode(String(c)));
        });
        return node;
    }

    function clear(node) {
        while (node.firstChild) node.removeChild(node.firstChild);
        return node;
    }

    function link(href, text, cls) {
        return el('a', {href: href, text: text, className: cls});
    }

    function jobHref(id) { return '#/job/' + encodeURIComponent(id); }
    function queueHref(q) { return '#/queue/' + encodeURIComponent(q); }

    /* A table: heads is a list of [label, numeric]; rows a list of cell
     * lists (a cell is text, a node, or {text|node, className}). */
    function table(heads, rows, cls) {
        var thead = el('thead', null, el('tr', null, heads.map(function (h) {
            var hh = Array.isArray(h) ? h : [h, false];
            return el('th', {text: hh[0], className: hh[1] ? 'num' : null, title: hh[2]});
        })));
        var tbody = el('tbody');
        fillBody(tbody, heads, rows);
        return el('div', {className: 'table-wrap'}, el('table', {className: cls || 'grid'}, [thead, tbody]));
    }

    function fillBody(tbody, heads, rows) {
        clear(tbody);
        rows.forEach(function (r) {
            var tr = el('tr', r.rowClass ? {className: r.rowClass} : null);
            (r.cells || r).forEach(function (c, i) {
                var numeric = Array.isArray(heads[i]) && heads[i][1];
                var td = el('td', {className: numeric ? 'num' : null});
                if (c && typeof c === 'object' && !c.nodeType && !Array.isArray(c)) {
                    if (c.className) td.className += (td.className ? ' ' : '') + c.className;
                    if (c.title) td.title = c.title;
                    append(td, c.node !== undefined ? c.node : c.text);
                } else {
                    append(td, c === null || c === undefined ? '-' : c);
                }
                tr.appendChild(td);
            });
            tbody.appendChild(tr);
        });
    }

    function section(title, kids, cls) {
        return el('section', {className: 'card' + (cls ? ' ' + cls : '')},
                  [title ? el('h2', {text: title}) : null].concat(kids));
    }

    function kv(pairs) {
        var dl = el('dl', {className: 'kv'});
        pairs.forEach(function (p) {
            if (p === null || p[1] === undefined) return;
            dl.appendChild(el('dt', {text: p[0]}));
            dl.appendChild(append(el('dd'), p[1] === null ? '-' : p[1]));
        });
        return dl;
    }

    function badge(stateName) {
        var s = String(stateName || 'unknown');
        return el('span', {className: 'badge state-' + s.replace(/[^a-z_]/g, ''), text: s});
    }

    function pre(value) {
        var s = typeof value === 'string' ? value : JSON.stringify(value, null, 2);
        return el('pre', {className: 'code', text: s});
    }

    function notice(msg, kind) {
        var n = document.getElementById('notice');
        n.textContent = msg;
        n.className = 'notice ' + (kind || 'info');
        n.hidden = false;
        clearTimeout(notice.timer);
        notice.timer = setTimeout(function () { n.hidden = true; }, kind === 'error' ? 15000 : 6000);
    }

    /* ---------- numbers and times for people ---------- */

    /* As llmb rounds (llmb_agg_format): 3 decimals, or 6 significant
     * digits when that keeps more; "-" when there is no number. */
    function num(v) {
        if (typeof v !== 'number' || !isFinite(v)) return '-';
        var a = Math.abs(v);
        if (a === 0) return '0';
        var dec = Math.max(3, 5 - Math.floor(Math.log10(a)));
        dec = Math.min(dec, 15);
        return v.toLocaleString('en-US', {maximumFractionDigits: dec, useGrouping: a >= 100000});
    }

    /* Fewer digits, for cards and chart labels. */
    function short(v) {
        if (typeof v !== 'number' || !isFinite(v)) return '-';
        var a = Math.abs(v);
        if (a >= 100) return v.toLocaleString('en-US', {maximumFractionDigits: 0});
        if (a >= 10) return v.toLocaleString('en-US', {maximumFractionDigits: 1});
        if (a >= 1) return v.toLocaleString('en-US', {maximumFractionDigits: 2});
        return v.toLocaleString('en-US', {maximumSignificantDigits: 3});
    }

    function pad2(n) { return (n < 10 ? '0' : '') + n; }

    /* "850ms", "4.2s", "59s", "3m04s", "2h05m", "3d04h" (llmb_human_duration). */
    function dur(ms) {
        if (typeof ms !== 'number' || !isFinite(ms)) return '-';
        if (ms < 0) ms = 0;
        if (ms < 1000) return Math.round(ms) + 'ms';
        if (ms < 10000) return (Math.floor(ms / 100) / 10).toFixed(1) + 's';
        var s = Math.floor(ms / 1000);
        if (s < 60) return s + 's';
        if (s < 3600) return Math.floor(s / 60) + 'm' + pad2(s % 60) + 's';
        if (s < 86400) return Math.floor(s / 3600) + 'h' + pad2(Math.floor(s % 3600 / 60)) + 'm';
        return Math.floor(s / 86400) + 'd' + pad2(Math.floor(s % 86400 / 3600)) + 'h';
    }

    function ago(now, then) {
        if (!then || then <= 0) return '-';
        if (!now) now = Date.now();
        return then > now ? 'in ' + dur(then - now) : dur(now - then) + ' ago';
    }

    function when(ms) {
        if (!ms || ms <= 0) return '-';
        var d = new Date(ms);
        return d.getUTCFullYear() + '-' + pad2(d.getUTCMonth() + 1) + '-' + pad2(d.getUTCDate()) + ' ' +
            pad2(d.getUTCHours()) + ':' + pad2(d.getUTCMinutes()) + ':' + pad2(d.getUTCSeconds()) + 'Z';
    }

    function clock(ms) {
        var d = new Date(ms);
        return pad2(d.getUTCHours()) + ':' + pad2(d.getUTCMinutes()) + ':' + pad2(d.getUTCSeconds());
    }

    function bytes(n) {
        if (typeof n !== 'number' || !isFinite(n)) return '-';
        var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
        var i = 0;
        while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
        return (i === 0 ? n : n.toFixed(n >= 100 ? 0 : 1)) + ' ' + units[i];
    }

    /* ---------- the aggregate (docs/coordinator.md, docs/llm.md) ---------- */

    function field(agg, path) {
        return agg && agg.fields ? agg.fields[path] : undefined;
    }

    function stat(agg, path, name) {
        var f = field(agg, path);
        var v = f ? f[name] : undefined;
        return typeof v === 'number' ? v : null;
    }

    /* A field's total: its sum, else count * mean (version 1). */
    function total(agg, path) {
        var f = field(agg, path);
        if (!f) return null;
        if (typeof f.sum === 'number') return f.sum;
        if (typeof f.count === 'number' && typeof f.mean === 'number') return f.count * f.mean;
        return null;
    }

    function parseAggregate(job) {
        var a = job && job.aggregate;
        if (typeof a === 'string') {
            try { a = JSON.parse(a); } catch (e) { return null; }
        }
        return a && typeof a === 'object' ? a : null;
    }

    function payloadOf(job) {
        var p = job && job.payload;
        return p && typeof p === 'object' && !Array.isArray(p) ? p : {};
    }

    function isLLM(agg) {
        return !!(field(agg, 'metrics.ttft_ms') || field(agg, 'metrics.e2e_ms'));
    }

    /* The concurrency asked (sum of the tasks') and achieved (request
     * seconds in flight over the run), as llmb_agg_concurrency. */
    function concurrency(agg) {
        var asked = total(agg, 'summary.concurrency');
        var inflight = total(agg, 'summary.inflight_s');
        if (asked === null || inflight === null || !(agg.run_ms > 0) || !(asked > 0)) return null;
        return {asked: asked, achieved: inflight * 1000 / agg.run_ms};
    }

    /* The latency metrics of an llm job, in the CLI's order. */
    var LATENCIES = [
        ['metrics.ttft_ms', 'TTFT', 'time to first token'],
        ['metrics.ttfb_ms', 'TTFB', 'time to first byte'],
        ['metrics.itl_ms', 'ITL', 'inter-token latency, every gap'],
        ['metrics.tpot_ms', 'TPOT', 'time per output token'],
        ['metrics.e2e_ms', 'E2E', 'end-to-end latency']
    ];
    var DISTRIBUTIONS = ['metrics.ttft_ms', 'metrics.itl_ms', 'metrics.tpot_ms', 'metrics.e2e_ms'];

    function latencyName(path) {
        for (var i = 0; i < LATENCIES.length; i++)
            if (LATENCIES[i][0] === path) return LATENCIES[i][1];
        return path;
    }

    /* ---------- histograms (include/llmb/histogram.h) ---------- */

    var LINEAR = 256, SUB = 128;

    function bucketLow(i) {
        if (i < LINEAR) return i;
        var k = i - LINEAR;
        return (SUB + k % SUB) * Math.pow(2, Math.floor(k / SUB) + 1);
    }

    function bucketHigh(i) {
        if (i < LINEAR) return i;
        return bucketLow(i) + Math.pow(2, Math.floor((i - LINEAR) / SUB) + 1) - 1;
    }

    /* The non-empty buckets of a histogram's JSON form, in units, each
     * clamped to the exact min and max: [{lo, hi, n}], or null. */
    function histBuckets(h) {
        if (!h || h.hist !== 'llmb-loglin-7' || !Array.isArray(h.b) || !(h.scale > 0) || !(h.count > 0)) return null;
        var out = [], idx = 0;
        for (var k = 0; k + 1 < h.b.length; k += 2) {
            idx = k === 0 ? h.b[0] : idx + h.b[k];
            var lo = Math.max(bucketLow(idx), h.min), hi = Math.min(bucketHigh(idx), h.max);
            if (hi < lo) hi = lo;
            out.push({lo: lo / h.scale, hi: hi / h.scale, n: h.b[k + 1]});
        }
        return out.length ? out : null;
    }

    /* Counts over nbins equal bins from min to max, each bucket spread
     * evenly over the part of its range that each bin covers. */
    /* A long tail (max over 8 times the median, as an ITL with decode
     * stalls) gets bins of equal ratio, so that the body and the tail both
     * show; else bins of equal width. Values under the first edge count
     * in the first bin. */
    function histBins(buckets, nbins, median) {
        var min = buckets[0].lo, max = buckets[buckets.length - 1].hi;
        if (max <= min) max = min + (min > 0 ? min * 0.01 : 1);
        var log = median > 0 && max > 8 * median;
        var lo = log ? Math.max(min, median / 8) : min;
        var edges = [], counts = [], i;
        for (i = 0; i <= nbins; i++)
            edges.push(log ? lo * Math.pow(max / lo, i / nbins) : min + (max - min) * i / nbins);
        for (i = 0; i < nbins; i++) counts.push(0);
        function bin(v) {
            var j = 0;
            while (j < nbins - 1 && v >= edges[j + 1]) j++;
            return j;
        }
        buckets.forEach(function (b) {
            var span = b.hi - b.lo;
            if (span <= 0) {
                counts[bin(b.lo)] += b.n;
                return;
            }
            var first = bin(b.lo), last = bin(b.hi);
            for (var j = first; j <= last; j++) {
                var a = Math.max(b.lo, j === 0 ? -Infinity : edges[j]), z = Math.min(b.hi, edges[j + 1]);
                if (j === last) z = b.hi;
                if (z > a) counts[j] += b.n * (z - a) / span;
            }
        });
        var labels = [];
        for (i = 0; i < nbins; i++) labels.push(short(log ? Math.sqrt(edges[i] * edges[i + 1]) : (edges[i] + edges[i + 1]) / 2));
        return {labels: labels, counts: counts, log: log};
    }

    /* The CDF as points {x, y}: y percent of the values are at or below x. */
    function histCDF(buckets) {
        var totalN = 0, seen = 0, pts = [];
        buckets.forEach(function (b) { totalN += b.n; });
        pts.push({x: buckets[0].lo, y: 0});
        buckets.forEach(function (b) {
            seen += b.n;
            pts.push({x: b.hi, y: 100 * seen / totalN});
        });
        return pts;
    }

    /* ---------- charts (Chart.js, from Debian's libjs-chart.js) ---------- */

    var COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];

    function color(i) { return COLORS[i % COLORS.length]; }

    function fade(hex, alpha) {
        var n = parseInt(hex.slice(1), 16);
        return 'rgba(' + (n >> 16) + ',' + ((n >> 8) & 255) + ',' + (n & 255) + ',' + alpha + ')';
    }

    /* A canvas in a sized box, and its chart once the box is in the page. */
    function chart(config, cls) {
        var canvas = el('canvas', {role: 'img', 'aria-label': (config.options && config.options.plugins &&
            config.options.plugins.title && config.options.plugins.title.text) || 'chart'});
        var box = el('div', {className: 'chart ' + (cls || '')}, canvas);
        if (typeof window.Chart !== 'function') {
            box.appendChild(el('p', {className: 'muted', text: 'Chart.js is not loaded: no chart.'}));
            return box;
        }
        config.options = config.options || {};
        config.options.animation = false;
        config.options.responsive = true;
        config.options.maintainAspectRatio = false;
        var c = new window.Chart(canvas, config);
        charts.push(c);
        box.chart = c;
        return box;
    }

    function titled(text) {
        return {display: true, text: text, font: {size: 13, weight: '600'}};
    }

    function axis(label, extra) {
        var a = {title: {display: !!label, text: label}};
        if (extra) Object.keys(extra).forEach(function (k) { a[k] = extra[k]; });
        return a;
    }

    /* The histogram of field path of agg, or null without one. */
    function histChart(agg, path, unit) {
        var f = field(agg, path);
        var buckets = f && histBuckets(f.hist);
        if (!buckets) return null;
        var bins = histBins(buckets, 40, f.p50);
        return chart({
            type: 'bar',
            data: {labels: bins.labels, datasets: [{
                label: 'requests' + (path === 'metrics.itl_ms' ? ' (gaps)' : ''),
                data: bins.counts.map(function (c) { return Math.round(c * 100) / 100; }),
                backgroundColor: fade(color(0), 0.6), borderColor: color(0), borderWidth: 1,
                barPercentage: 1, categoryPercentage: 1}]},
            options: {
                plugins: {legend: {display: false},
                          title: titled(latencyName(path) + ' histogram (' + unit + '): p50 ' + short(f.p50) +
                                        ', p90 ' + short(f.p90) + ', p99 ' + short(f.p99) + ', n ' + f.count)},
                scales: {x: axis(unit + (bins.log ? ', bins of equal ratio (long tail)' : ''), {ticks: {maxTicksLimit: 10}}), y: axis(path === 'metrics.itl_ms' ? 'gaps' : 'requests', {beginAtZero: true})}
            }
        }, 'hist');
    }

    /* The CDF of field path in each of the series [{label, agg}]. */
    function cdfChart(series, path, unit, title) {
        var datasets = [];
        /* a long tail (as in histBins) on a logarithmic axis, from an
         * eighth of the median */
        var first = field(series[0] && series[0].agg, path);
        var log = !!(first && first.p50 > 0 && first.max > 8 * first.p50);
        var floor = log ? first.p50 / 8 : 0;
        series.forEach(function (s, i) {
            var f = field(s.agg, path);
            var buckets = f && histBuckets(f.hist);
            if (!buckets) return;
            var pts = histCDF(buckets);
            if (log) pts = pts.map(function (p) { return {x: Math.max(p.x, floor), y: p.y}; });
            datasets.push({label: s.label, data: pts, borderColor: color(i),
                           backgroundColor: fade(color(i), 0.15), pointRadius: 0, borderWidth: 2,
                           stepped: false, fill: series.length === 1});
        });
        if (!datasets.length) return null;
        return chart({
            type: 'line',
            data: {datasets: datasets},
            options: {
                parsing: false,
                plugins: {legend: {display: datasets.length > 1}, title: titled(title || (latencyName(path) + ' CDF (' + unit + ')'))},
                scales: {x: axis(unit + (log ? ', logarithmic (long tail)' : ''), log ? {type: 'logarithmic', min: floor} : {type: 'linear'}),
                         y: axis('% of values at or below', {min: 0, max: 100})}
            }
        }, 'cdf');
    }

    function destroyCharts() {
        charts.forEach(function (c) { try { c.destroy(); } catch (e) { /* gone */ } });
        charts = [];
    }

    /* ---------- data: the API, or the report's data ---------- */

    function ApiError(status, message) {
        this.status = status;
        this.message = message;
    }

    function getJSON(path) {
        return fetch(path, {headers: {Accept: 'application/json'}, cache: 'no-store'}).then(function (r) {
            return r.text().then(function (body) {
                var doc = null;
                try { doc = body ? JSON.parse(body) : null; } catch (e) { doc = null; }
                if (!r.ok) throw new ApiError(r.status, (doc && doc.error) || body || r.statusText);
                return doc;
            });
        });
    }

    function reportJob(spec) {
        var jobs = (REPORT && REPORT.jobs) || [];
        var at = spec.indexOf('/');
        for (var i = 0; i < jobs.length; i++) {
            var j = jobs[i].job || {};
            if (j.id === spec || (at > 0 && j.queue === spec.slice(0, at) && j.id === spec.slice(at + 1))) return jobs[i];
        }
        return null;
    }

    var data = {
        config: function () {
            if (REPORT) return Promise.resolve({read_only: true, report: true, version: REPORT.version});
            return getJSON('/api/config');
        },
        overview: function () { return getJSON('/api/overview'); },
        queueJobs: function (q, params) {
            var qs = Object.keys(params).filter(function (k) {
                return params[k] !== '' && params[k] !== null && params[k] !== undefined;
            }).map(function (k) {
                return encodeURIComponent(k) + '=' + encodeURIComponent(params[k]);
            }).join('&');
            return getJSON('/api/queues/' + encodeURIComponent(q) + '/jobs' + (qs ? '?' + qs : ''));
        },
        job: function (spec, tasks, offset) {
            if (REPORT) {
                var d = reportJob(spec);
                return d ? Promise.resolve(d) : Promise.reject(new ApiError(404, 'job "' + spec + '" is not in this report'));
            }
            /* QUEUE/ID: the id, and its queue as ?queue= */
            var slash = spec.indexOf('/');
            var id = slash > 0 ? spec.slice(slash + 1) : spec;
            return getJSON('/api/jobs/' + encodeURIComponent(id) + '?tasks=' + (tasks || 0) +
                           '&task_offset=' + (offset || 0) +
                           (slash > 0 ? '&queue=' + encodeURIComponent(spec.slice(0, slash)) : ''));
        },
        compare: function (specs) {
            if (REPORT) {
                var c = REPORT.compare;
                if (c && c.jobs && specs.join(',') === (REPORT.compare_specs || []).join(',')) return Promise.resolve(c);
                return Promise.resolve(compareLocal(specs));
            }
            return getJSON('/api/compare?jobs=' + specs.map(encodeURIComponent).join(','));
        }
    };

    /* ---------- actions, with the token ---------- */

    var TOKEN_KEY = 'llmb-web-token';

    function token() {
        try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
    }

    function setToken(t) {
        try {
            if (t) sessionStorage.setItem(TOKEN_KEY, t);
            else sessionStorage.removeItem(TOKEN_KEY);
        } catch (e) { /* storage off: asked again next time */ }
        updateTokenButton();
    }

    function updateTokenButton() {
        var b = document.getElementById('token-button');
        b.hidden = !!(REPORT || config.read_only);
        b.textContent = token() ? 'Token set' : 'Token';
        b.classList.toggle('set', !!token());
    }

    /* Asks for the token; resolves true when one was saved. */
    function askToken(why) {
        var dlg = document.getElementById('token-dialog');
        var input = document.getElementById('token-input');
        var whyEl = document.getElementById('token-why');
        if (why) whyEl.dataset.why = why;
        whyEl.textContent = (why ? why + ' ' : '') + 'Actions need the token that llmb web was started with ' +
            '(--token-env). It is kept in this tab only (sessionStorage) and sent as Authorization: Bearer.';
        input.value = '';
        return new Promise(function (resolve) {
            function done(ok) {
                form.removeEventListener('submit', onSubmit);
                cancel.removeEventListener('click', onCancel);
                forget.removeEventListener('click', onForget);
                if (dlg.open) dlg.close();
                resolve(ok);
            }
            function onSubmit(e) {
                e.preventDefault();
                var v = input.value.trim();
                if (!v) return;
                setToken(v);
                done(true);
            }
            function onCancel() { done(false); }
            function onForget() { setToken(''); done(false); }
            var form = document.getElementById('token-form');
            var cancel = document.getElementById('token-cancel');
            var forget = document.getElementById('token-forget');
            form.addEventListener('submit', onSubmit);
            cancel.addEventListener('click', onCancel);
            forget.addEventListener('click', onForget);
            dlg.showModal();
            input.focus();
        });
    }

    function confirmAction(text) {
        var dlg = document.getElementById('confirm-dialog');
        document.getElementById('confirm-text').textContent = text;
        return new Promise(function (resolve) {
            var form = document.getElementById('confirm-form');
            var no = document.getElementById('confirm-no');
            function done(ok) {
                form.removeEventListener('submit', onYes);
                no.removeEventListener('click', onNo);
                if (dlg.open) dlg.close();
                resolve(ok);
            }
            function onYes(e) { e.preventDefault(); done(true); }
            function onNo() { done(false); }
            form.addEventListener('submit', onYes);
            no.addEventListener('click', onNo);
            dlg.showModal();
        });
    }

    function postAction(path) {
        var headers = {Accept: 'application/json'};
        if (token()) headers.Authorization = 'Bearer ' + token();
        return fetch(path, {method: 'POST', headers: headers, cache: 'no-store'}).then(function (r) {
            return r.text().then(function (body) {
                var doc = null;
                try { doc = body ? JSON.parse(body) : null; } catch (e) { doc = null; }
                if (!r.ok) throw new ApiError(r.status, (doc && doc.error) || body || r.statusText);
                return doc;
            });
        });
    }

    /* Runs action `name` (POST path) after asking for the token when
     * there is none; a 401 clears the token and says so. Resolves the
     * answer, or null when it did not happen. */
    function act(name, path, confirmText) {
        if (config.read_only) {
            notice('Read-only: this server was started without a token, so ' + name + ' is not possible here.', 'error');
            return Promise.resolve(null);
        }
        var first = confirmText ? confirmAction(confirmText) : Promise.resolve(true);
        return first.then(function (yes) {
            if (!yes) return false;
            return token() ? true : askToken('To ' + name + ':');
        }).then(function (go) {
            if (!go) return null;
            return postAction(path).then(function (doc) {
                notice(name + ': done' + (doc && doc.message ? ' (' + doc.message + ')' : ''), 'ok');
                return doc;
            }, function (err) {
                if (err.status === 401) {
                    setToken('');
                    notice(name + ' refused (401): the token is missing or wrong.', 'error');
                } else {
                    notice(name + ' failed' + (err.status ? ' (' + err.status + ')' : '') + ': ' + err.message, 'error');
                }
                return null;
            });
        });
    }

    function actionButton(label, name, path, opts) {
        opts = opts || {};
        var b = el('button', {type: 'button', text: label, className: opts.danger ? 'danger' : null,
                              dataset: {action: opts.action || label.toLowerCase()},
                              disabled: config.read_only,
                              title: config.read_only ? 'read-only: llmb web has no token' : null});
        b.addEventListener('click', function () {
            b.disabled = true;
            act(name, path, opts.confirm).then(function (doc) {
                b.disabled = config.read_only;
                if (doc && opts.after) opts.after(doc);
            });
        });
        return b;
    }

    /* ---------- live updates ---------- */

    function setLive(status) {
        var n = document.getElementById('live');
        n.className = 'live ' + status;
        n.textContent = status === 'on' ? 'live' : status === 'off' ? 'offline' : 'reconnecting';
    }

    function startEvents() {
        if (REPORT || typeof window.EventSource !== 'function') return;
        source = new EventSource('/api/events');
        source.addEventListener('open', function () { setLive('on'); });
        source.addEventListener('error', function () {
            setLive(source.readyState === 2 ? 'off' : 'retry');
        });
        source.addEventListener('overview', function (e) {
            var doc;
            try { doc = JSON.parse(e.data); } catch (x) { return; }
            takeOverview(doc);
            if (page && page.onOverview) page.onOverview(doc);
        });
        source.addEventListener('job', function (e) {
            var ev;
            try { ev = JSON.parse(e.data); } catch (x) { return; }
            if (page && page.onJob) page.onJob(ev);
        });
        /* after a reconnection whose missed events the server no longer
         * has: anything may have changed, as with a job event of any job */
        source.addEventListener('reload', function () {
            if (page && page.onJob) page.onJob(null);
        });
    }

    /* Keeps the overview and a sample of its counters for the rates. */
    function takeOverview(doc) {
        overview = doc;
        var stats = doc && doc.stats;
        if (!stats || !Array.isArray(stats.queues)) return;
        var sample = {t: doc.now_ms || stats.now_ms || Date.now(), done: 0, pending: 0, queues: dict()};
        stats.queues.forEach(function (q) {
            if (q.error) return;
            var d = (q.tasks_ok || 0) + (q.tasks_failed || 0) + (q.tasks_cancelled || 0);
            sample.queues[q.name] = d;
            sample.done += d;
            sample.pending += (q.pending || 0) + (q.delayed || 0);
        });
        var last = history[history.length - 1];
        if (last && sample.t <= last.t) return;
        history.push(sample);
        if (history.length > HISTORY_MAX) history.shift();
    }

    /* Tasks ended per second of queue q (all queues when q is null)
     * between the last two samples; null before there are two. */
    function rate(q, i) {
        if (i === undefined) i = history.length - 1;
        if (i < 1) return null;
        var a = history[i - 1], b = history[i];
        var dt = (b.t - a.t) / 1000;
        if (!(dt > 0)) return null;
        var da = q === null ? a.done : a.queues[q], db = q === null ? b.done : b.queues[q];
        if (da === undefined || db === undefined) return null;
        return Math.max(0, (db - da) / dt);
    }

    /* A map keyed by what Redis holds (job ids, queue names, payload
     * fields): no prototype, so that a key such as "__proto__" or
     * "constructor" is a key like any other. */
    function dict() {
        return Object.create(null);
    }

    /* Calls fn `ms` after the last of a burst of calls (typing). */
    function debounce(fn, ms) {
        var t = null;
        return function () {
            clearTimeout(t);
            t = setTimeout(fn, ms);
        };
    }

    /* A page's reload on events: calls load (which returns a promise)
     * `ms` after the first call of a burst, so that steady events reload
     * it about every `ms` rather than never; never while a load is
     * under way: a call meanwhile loads once more when it ends. */
    function reloader(load, ms) {
        var timer = null, running = false, again = false;
        function done() {
            running = false;
            if (again) schedule();
        }
        function run() {
            timer = null;
            running = true;
            again = false;
            Promise.resolve().then(load).then(done, done);
        }
        function schedule() {
            if (running) again = true;
            else if (timer === null) timer = setTimeout(run, ms);
        }
        return schedule;
    }

    /* ---------- pages ---------- */

    function showError(where, err) {
        clear(where);
        where.appendChild(section('Error', [el('p', {className: 'error', text: (err && err.status ? err.status + ': ' : '') +
            (err && err.message ? err.message : String(err))})]));
    }

    function setTitle(t) { document.title = t + (REPORT ? ' · llmb report' : ' · llmb'); }

    /* Overview: health, queues, workers, throughput, Redis. */
    function overviewPage() {
        var root = el('div', {className: 'page overview'});
        var health = el('div'), queues = el('div'), workers = el('div'), redis = el('div');
        var thr = chart({
            type: 'line',
            data: {labels: [], datasets: [
                {label: 'tasks ended / s', data: [], borderColor: color(0), backgroundColor: fade(color(0), 0.15),
                 fill: true, pointRadius: 0, borderWidth: 2, yAxisID: 'y'},
                {label: 'tasks waiting', data: [], borderColor: color(3), pointRadius: 0, borderWidth: 1.5,
                 borderDash: [4, 3], yAxisID: 'y1'}]},
            options: {plugins: {title: titled('Throughput, last ' + Math.round(HISTORY_MAX * 2 / 60) + ' minutes (from the live overview every 2 s)')},
                      scales: {x: axis('time (UTC)', {ticks: {maxTicksLimit: 8}}),
                               y: axis('tasks / s', {beginAtZero: true, position: 'left'}),
                               y1: axis('waiting', {beginAtZero: true, position: 'right', grid: {drawOnChartArea: false}})}}
        }, 'wide');
        var failed = el('p', {className: 'error', hidden: true});
        append(root, [
            el('h1', {text: 'Overview'}),
            failed,
            el('div', {className: 'cols'}, [section('Health', health, 'health'), section('Redis', redis)]),
            section('Queues', queues),
            section('Workers', workers),
            section(null, [thr, el('p', {className: 'muted small', id: 'thr-note'})])
        ]);

        function drawThroughput() {
            var c = thr.chart;
            if (!c) return;
            var labels = [], rates = [], waiting = [];
            for (var i = 1; i < history.length; i++) {
                labels.push(clock(history[i].t));
                rates.push(rate(null, i));
                waiting.push(history[i].pending);
            }
            c.data.labels = labels;
            c.data.datasets[0].data = rates;
            c.data.datasets[1].data = waiting;
            c.update('none');
            var note = document.getElementById('thr-note');
            if (note) note.textContent = history.length < 2 ? 'Waiting for the live overview events…' :
                history.length + ' samples, ' + dur(history[history.length - 1].t - history[0].t) + '.';
        }

        function render(doc) {
            var stats = doc.stats || {}, now = doc.now_ms || stats.now_ms;
            var h = doc.health || {};
            setTitle('Overview');
            failed.hidden = true;
            clear(health);
            append(health, [
                el('p', {className: 'health-status'}, [badge(h.status || (stats.metrics && stats.metrics.health) || 'unknown')]),
                (h.reasons && h.reasons.length) ? el('ul', {className: 'reasons'}, h.reasons.map(function (r) {
                    return el('li', {text: typeof r === 'string' ? r : JSON.stringify(r)});
                })) : el('p', {className: 'muted', text: (stats.metrics && stats.metrics.health_reason) || 'no reason given'})
            ]);

            var unserved = stats.unserved || {};
            var rows = (stats.queues || []).map(function (q) {
                if (q.error) return {cells: [link(queueHref(q.name), q.name), {text: q.error, className: 'error'}, '', '', '', '', '', '', ''], rowClass: 'bad'};
                var warn = unserved[q.name];
                var paused = q.paused === true || q.paused === 1 || q.paused === '1';
                return {cells: [
                    el('span', null, [link(queueHref(q.name), q.name), paused ? el('span', {className: 'badge state-paused', text: 'paused'}) : null]),
                    num(q.pending), num(q.delayed), num(q.running), num(q.dead), num(q.jobs),
                    short(rate(q.name)), q.pending > 0 || q.head_age_ms > 0 ? dur(q.head_age_ms) : '-',
                    warn ? {text: 'no worker: ' + (typeof warn === 'string' ? warn : JSON.stringify(warn)), className: 'warn'} : ''
                ], rowClass: warn ? 'warn' : (paused ? 'paused' : null)};
            });
            clear(queues);
            if (!doc.stats) {
                /* the server could not read Redis: nothing is known */
                append(queues, el('p', {className: 'error', text: 'Not known: ' + ((h.reasons || []).join('; ') || 'Redis could not be read')}));
                clear(workers);
                return;
            }
            append(queues, rows.length ? table([['queue'], ['pending', 1], ['delayed', 1], ['running', 1], ['dead', 1],
                ['jobs', 1], ['tasks/s', 1, 'tasks ended per second, from the live overview'], ['head age', 1], ['notes']], rows)
                : el('p', {className: 'muted', text: 'No queue yet: push a job (llmb-push).'}));

            var ws = (doc.workers && doc.workers.workers) || [];
            clear(workers);
            var ww = stats.workers || {};
            append(workers, [
                el('p', {className: 'muted', text: ws.length + ' workers, ' + (ww.alive || 0) + ' alive; capacity ' +
                    (ww.capacity || 0) + ', ' + (ww.running || 0) + ' running'}),
                ws.length ? table([['worker'], ['state'], ['capacity', 1], ['running', 1], ['handlers / queues'],
                    ['host'], ['pid', 1], ['attempts ok', 1], ['failed', 1], ['last seen', 1]], ws.map(function (w) {
                    var handlers = w.handlers || w.types;
                    return {cells: [w.id, badge(w.state), num(w.capacity), num(w.running),
                        (Array.isArray(handlers) ? handlers.join(', ') + ' · ' : (handlers && typeof handlers === 'object' ? Object.keys(handlers).join(', ') + ' · ' : '')) +
                            (w.queues || []).join(', '),
                        w.host, w.pid, num(w.completed), num(w.failed),
                        w.seen_ago_ms !== null && w.seen_ago_ms !== undefined ? dur(w.seen_ago_ms) + ' ago' : ago(now, w.seen_ms)],
                        rowClass: w.state === 'dead' || w.state === 'gone' ? 'bad' : null};
                })) : el('p', {className: 'warn', text: 'No worker has registered: nothing will run.'})
            ]);

            var r = doc.redis || {};
            clear(redis);
            var pairs = [];
            if (r.used_memory !== undefined) pairs.push(['used memory', bytes(Number(r.used_memory))]);
            if (r.used_memory_peak !== undefined) pairs.push(['peak', bytes(Number(r.used_memory_peak))]);
            if (r.maxmemory !== undefined) pairs.push(['maxmemory', Number(r.maxmemory) > 0 ? bytes(Number(r.maxmemory)) : 'none']);
            Object.keys(r).forEach(function (k) {
                if (['used_memory', 'used_memory_peak', 'maxmemory'].indexOf(k) >= 0 || /_human$/.test(k)) return;
                var v = r[k];
                pairs.push([k.replace(/_/g, ' '), typeof v === 'number' && /memory|bytes/.test(k) ? bytes(v) :
                    (typeof v === 'object' ? JSON.stringify(v) : String(v))]);
            });
            if (r.used_memory !== undefined && Number(r.maxmemory) > 0) {
                var pct = 100 * Number(r.used_memory) / Number(r.maxmemory);
                var bar = el('div', {className: 'meter'}, el('span'));
                bar.firstChild.style.width = Math.min(100, pct).toFixed(1) + '%';
                pairs.push(['of maxmemory', el('span', null, [bar, ' ' + pct.toFixed(1) + ' %'])]);
            }
            append(redis, pairs.length ? kv(pairs) : el('p', {className: 'muted', text: 'not reported'}));
            drawThroughput();
        }

        clear(app).appendChild(root);
        drawThroughput();
        var first = overview ? Promise.resolve(overview) : data.overview().then(function (d) { takeOverview(d); return d; });
        /* a failure here is shown until an overview event comes (the
         * live stream keeps trying) */
        first.then(render, function (e) {
            failed.textContent = (e && e.status ? e.status + ': ' : '') + (e && e.message ? e.message : String(e));
            failed.hidden = false;
        });
        return {onOverview: render};
    }

    /* Queue: jobs by state, paged, searched; pause, resume, purge. */
    function queuePage(q) {
        var LIMIT = 50;
        var st = {state: '', search: '', offset: 0};
        var root = el('div', {className: 'page queue'});
        var head = el('div', {className: 'queue-head'});
        var list = el('div');
        var pager = el('div', {className: 'pager'});
        var selected = dict(); /* job id -> true */
        setTitle('Queue ' + q);

        var tabs = el('div', {className: 'tabs', role: 'tablist'}, ['', 'pending', 'running', 'completed', 'failed', 'cancelled'].map(function (s) {
            return el('button', {type: 'button', text: s || 'all', className: s === st.state ? 'tab on' : 'tab', dataset: {state: s},
                on: {click: function () {
                    st.state = s;
                    st.offset = 0;
                    Array.prototype.forEach.call(tabs.children, function (b) { b.className = b.dataset.state === s ? 'tab on' : 'tab'; });
                    load();
                }}});
        }));
        var search = el('input', {type: 'search', placeholder: 'search: id prefix or type', 'aria-label': 'search jobs', id: 'job-search'});
        search.addEventListener('input', debounce(function () {
            st.search = search.value.trim();
            st.offset = 0;
            load();
        }, 250));
        var compareBtn = el('button', {type: 'button', text: 'Compare selected', className: 'secondary', disabled: true,
            on: {click: function () {
                var ids = Object.keys(selected);
                if (ids.length >= 2) location.hash = '#/compare/' + ids.map(encodeURIComponent).join(',');
            }}});

        append(root, [
            el('h1', null, ['Queue ', el('span', {className: 'mono', text: q})]),
            head,
            section('Jobs', [el('div', {className: 'toolbar'}, [tabs, search, compareBtn]), list, pager])
        ]);
        clear(app).appendChild(root);

        var shown = null; /* what the head shows, to redraw it only on a change */
        function renderHead() {
            var row = null;
            if (overview && overview.stats && overview.stats.queues)
                overview.stats.queues.forEach(function (x) { if (x.name === q) row = x; });
            var now = JSON.stringify([row, rate(q)]);
            if (now === shown) return;
            shown = now;
            clear(head);
            var paused = row && (row.paused === true || row.paused === 1 || row.paused === '1');
            var base = '/api/queues/' + encodeURIComponent(q) + '/';
            append(head, el('div', {className: 'cols'}, [
                section('State', row ? [kv([
                    ['pending', num(row.pending)], ['delayed', num(row.delayed)], ['running', num(row.running)],
                    ['dead', num(row.dead)], ['jobs kept', num(row.jobs)], ['tasks ok', num(row.tasks_ok)],
                    ['tasks failed', num(row.tasks_failed)], ['head age', row.pending > 0 ? dur(row.head_age_ms) : '-'],
                    ['tasks/s', short(rate(q))], ['paused', paused ? el('span', {className: 'badge state-paused', text: 'paused'}) : 'no']
                ])] : el('p', {className: 'muted', text: 'no stats yet'})),
                section('Actions', [
                    el('div', {className: 'row'}, [
                        paused ? actionButton('Resume', 'resume queue ' + q, base + 'resume', {after: refreshOverview})
                               : actionButton('Pause', 'pause queue ' + q, base + 'pause', {after: refreshOverview}),
                        actionButton('Purge', 'purge queue ' + q, base + 'purge', {danger: true,
                            confirm: 'Cancel every waiting job of queue ' + q + '? Running tasks stop at their next heartbeat.',
                            after: load})
                    ]),
                    el('p', {className: 'muted small', text: 'Pause: workers claim nothing from the queue until it is resumed; pushes are still accepted. Purge: cancels every job that has tasks waiting.'})
                ])
            ]));
        }

        var seq = 0;
        function load() {
            var my = ++seq;
            return data.queueJobs(q, {state: st.state, search: st.search, limit: LIMIT, offset: st.offset}).then(function (doc) {
                if (my !== seq) return;
                var jobs = doc.jobs || [], now = doc.now_ms;
                clear(list);
                if (!jobs.length) {
                    list.appendChild(el('p', {className: 'muted', text: 'No job' + (st.state ? ' in state ' + st.state : '') + (st.search ? ' matching "' + st.search + '"' : '') + '.'}));
                } else {
                    list.appendChild(table([[''], ['job'], ['type'], ['state'], ['tasks', 1], ['ended'], ['created', 1], ['took', 1], ['error']],
                        jobs.map(function (j) {
                            var box = el('input', {type: 'checkbox', 'aria-label': 'select ' + j.id, checked: !!selected[j.id]});
                            box.addEventListener('change', function () {
                                if (box.checked) selected[j.id] = true;
                                else delete selected[j.id];
                                compareBtn.disabled = Object.keys(selected).length < 2;
                            });
                            var ended = [];
                            if (j.ok) ended.push(j.ok + ' ok');
                            if (j.failed) ended.push(j.failed + ' failed');
                            if (j.cancelled) ended.push(j.cancelled + ' cancelled');
                            var took = j.started_ms ? dur((j.finished_ms || now) - j.started_ms) : '-';
                            return {cells: [box, link(jobHref(j.id), j.id, 'mono'), j.type, badge(j.state), num(j.tasks),
                                ended.length ? ended.join(', ') : 'none', ago(now, j.created_ms), took,
                                j.error ? {text: String(j.error).slice(0, 120), className: 'error', title: String(j.error)} : '-'],
                                rowClass: 'job-row', id: j.id};
                        }), 'grid jobs'));
                    Array.prototype.forEach.call(list.querySelectorAll('tr.job-row'), function (tr, i) {
                        tr.dataset.job = jobs[i].id;
                        tr.dataset.state = jobs[i].state;
                    });
                }
                clear(pager);
                var totalN = typeof doc.total === 'number' ? doc.total : null;
                var to = st.offset + jobs.length;
                append(pager, [
                    el('button', {type: 'button', text: '← newer', className: 'secondary', disabled: st.offset === 0,
                        on: {click: function () { st.offset = Math.max(0, st.offset - LIMIT); load(); }}}),
                    el('span', {className: 'muted', text: jobs.length ? (st.offset + 1) + '–' + to + (totalN !== null ? ' of ' + totalN : '') + (doc.truncated ? ' (the oldest not searched)' : '') : ''}),
                    el('button', {type: 'button', text: 'older →', className: 'secondary',
                        disabled: doc.next_offset === null || doc.next_offset === undefined,
                        on: {click: function () { st.offset = doc.next_offset; load(); }}})
                ]);
            }, function (e) { if (my === seq) showError(list, e); });
        }

        function refreshOverview() {
            return data.overview().then(function (d) { takeOverview(d); renderHead(); });
        }

        renderHead();
        if (!overview) refreshOverview().catch(function () { /* the head says no stats */ });
        load();
        var reload = reloader(load, 300);
        return {
            onJob: function (ev) { if (!ev || ev.queue === q) reload(); },
            onOverview: renderHead
        };
    }

    /* Job: spec, state, tasks, timeline, aggregate, llm charts, sweep. */
    function jobPage(spec) {
        var TASKS = 500;
        var taskOffset = 0;
        var root = el('div', {className: 'page job'});
        var chosen = null; /* the task whose detail is open */
        clear(app).appendChild(root);
        setTitle('Job ' + spec);

        var seq = 0;
        function load() {
            var my = ++seq;
            return data.job(spec, TASKS, taskOffset).then(function (doc) {
                if (my !== seq) return;
                destroyCharts();
                clear(root);
                renderJob(root, doc);
            }, function (e) { if (my === seq) showError(root, e); });
        }

        function renderJob(root, doc) {
            var j = doc.job || {};
            var agg = parseAggregate(j);
            var payload = payloadOf(j);
            var now = doc.now_ms;
            var actions = [];
            if (!REPORT) {
                var base = '/api/jobs/' + encodeURIComponent(j.id) + '/';
                var inQueue = j.queue ? '?queue=' + encodeURIComponent(j.queue) : '';
                if (j.state === 'pending' || j.state === 'running')
                    actions.push(actionButton('Cancel', 'cancel job ' + j.id, base + 'cancel' + inQueue, {danger: true,
                        confirm: 'Cancel job ' + j.id + '?', after: load}));
                if (j.state === 'failed' || j.state === 'cancelled')
                    actions.push(actionButton('Retry', 'retry job ' + j.id, base + 'retry' + inQueue, {after: load}));
            }
            append(root, [
                el('h1', null, ['Job ', el('span', {className: 'mono', id: 'job-id', text: j.id}), ' ', el('span', {id: 'job-state'}, badge(j.state))]),
                el('p', {className: 'subtitle'}, [
                    'queue ', REPORT ? el('span', {className: 'mono', text: j.queue}) : link(queueHref(j.queue), j.queue, 'mono'),
                    ' · type ', el('span', {className: 'mono', text: j.type}),
                    ' · ' + num(doc.tasks_total !== undefined ? doc.tasks_total : j.tasks) + ' task' + (j.tasks === 1 ? '' : 's'),
                    actions.length ? el('span', {className: 'actions'}, actions) : null
                ]),
                j.error ? el('p', {className: 'error', id: 'job-error', text: 'error: ' + j.error}) : null
            ]);

            var cols = el('div', {className: 'cols'});
            cols.appendChild(section('Spec', [kv([
                ['state', badge(j.state)],
                ['priority', num(j.priority)],
                ['tasks', num(j.tasks) + ': ' + num((j.tasks || 0) - (j.left || 0)) + ' ended, ' + num(j.failed) + ' failed, ' +
                    num(j.cancelled) + ' cancelled' + (j.ok !== null && j.ok !== undefined ? ', ' + num(j.ok) + ' ok' : '')],
                ['limits', (j.timeout_s !== null ? j.timeout_s + ' s per attempt, ' : '') + (j.max_retries !== null ? j.max_retries + ' retries, ' : '') +
                    (j.backoff_ms !== null ? 'backoff ' + j.backoff_ms + ' ms' : '')],
                j.delay_s !== null && j.delay_s !== undefined ? ['delay', j.delay_s + ' s'] : null,
                j.deadline_ms ? ['deadline', when(j.deadline_ms)] : null,
                ['attempts', num(j.retried) + ' retried, ' + num(j.timeouts) + ' timed out, ' + num(j.lost) + ' lost'],
                ['payload', pre(j.payload === undefined ? null : j.payload)]
            ])]));
            cols.appendChild(section('Timeline', timeline(j, now)));
            root.appendChild(cols);
            root.appendChild(section('Tasks', taskGrid(doc)));

            if (agg) {
                if (isLLM(agg)) llmSections(root, j, agg, payload, doc);
                root.appendChild(section('Aggregate', aggregateTables(agg, j)));
                if (isLLM(agg)) sweepSection(root, j);
                if (!REPORT) root.appendChild(el('p', {className: 'muted small'}, ['To hand over: ', el('code', {text: 'llmb report ' +
                    j.id + ' -o report.html'}), ' writes this page into one file that opens offline.']));
            } else if (j.state === 'completed' || j.state === 'failed' || j.state === 'cancelled') {
                root.appendChild(section('Aggregate', el('p', {className: 'muted', text: 'Not aggregated yet (is a coordinator running?).'})));
            }
        }

        function timeline(j, now) {
            var ev = [];
            function add(name, ms, cls) { if (ms && ms > 0) ev.push({name: name, ms: ms, cls: cls}); }
            add('created', j.created_ms, 'created');
            add('started', j.started_ms, 'started');
            add('cancelled', j.cancelled_ms, 'cancelled');
            add(j.state === 'failed' ? 'failed' : 'finished', j.finished_ms, j.state === 'failed' ? 'failed' : 'finished');
            add('aggregated', j.aggregated_ms, 'aggregated');
            add('deadline', j.deadline_ms, 'deadline');
            ev.sort(function (a, b) { return a.ms - b.ms; });
            if (!ev.length) return el('p', {className: 'muted', text: 'no times recorded'});
            var t0 = ev[0].ms, end = j.finished_ms || j.cancelled_ms || now || ev[ev.length - 1].ms;
            var t1 = Math.max(end, ev[ev.length - 1].ms);
            var span = Math.max(1, t1 - t0);
            var track = el('div', {className: 'track'});
            if (j.started_ms) {
                var run = el('span', {className: 'run' + (j.finished_ms || j.cancelled_ms ? '' : ' open'),
                                      title: (j.finished_ms ? 'ran ' : 'running ') + dur(end - j.started_ms)});
                run.style.left = (100 * (j.started_ms - t0) / span).toFixed(2) + '%';
                run.style.width = Math.max(0.5, 100 * (end - j.started_ms) / span).toFixed(2) + '%';
                track.appendChild(run);
            }
            ev.forEach(function (e) {
                var m = el('span', {className: 'mark ' + e.cls, title: e.name + ' ' + when(e.ms)});
                m.style.left = (100 * (e.ms - t0) / span).toFixed(2) + '%';
                track.appendChild(m);
            });
            var rows = ev.map(function (e) {
                return [el('span', null, [el('span', {className: 'dot ' + e.cls}), e.name]), when(e.ms),
                        e.ms === t0 ? '' : '+' + dur(e.ms - t0), ago(now, e.ms)];
            });
            var extra = [];
            if (j.started_ms) extra.push(el('p', {className: 'muted small', text: 'waited ' + dur(j.started_ms - j.created_ms) +
                ' before its first claim; ' + (j.finished_ms || j.cancelled_ms ? 'ran ' : 'running for ') + dur(end - j.started_ms)}));
            return [track, table([['event'], ['time (UTC)'], ['since created', 1], ['ago', 1]], rows, 'grid compact')].concat(extra);
        }

        function taskGrid(doc) {
            var j = doc.job || {};
            var tasks = doc.tasks || [];
            var states = doc.task_states || {};
            var totalN = doc.tasks_total !== undefined ? doc.tasks_total : j.tasks;
            var out = [];
            out.push(el('p', {className: 'legend'}, Object.keys(states).sort().map(function (s) {
                return el('span', {className: 'legend-item'}, [el('span', {className: 'cell state-' + s.replace(/[^a-z_]/g, '')}), s + ' ' + states[s]]);
            })));
            var grid = el('div', {className: 'task-grid', role: 'list'});
            var detail = el('div', {className: 'task-detail', id: 'task-detail'});
            tasks.forEach(function (t) {
                var b = el('button', {type: 'button', className: 'cell state-' + String(t.state).replace(/[^a-z_]/g, ''),
                    title: 'task ' + t.index + ': ' + t.state + (t.error ? ' — ' + String(t.error).slice(0, 200) : ''),
                    'aria-label': 'task ' + t.index + ' ' + t.state, dataset: {task: String(t.index), state: String(t.state)}});
                if (t.error) b.classList.add('has-error');
                b.addEventListener('click', function () {
                    chosen = t.index;
                    Array.prototype.forEach.call(grid.children, function (c) { c.classList.toggle('chosen', c === b); });
                    showTask(detail, t);
                });
                grid.appendChild(b);
                if (chosen === t.index) {
                    b.classList.add('chosen');
                    showTask(detail, t);
                }
            });
            out.push(grid);
            if (doc.tasks_cut) out.push(el('p', {className: 'muted small', text: 'The tasks shown stop at ' + tasks.length +
                ': their results reached the ' + (doc.tasks_cut / 1048576) + ' MiB a page may hold; later tasks are on the next page.'}));
            if (totalN > tasks.length) {
                out.push(el('div', {className: 'pager'}, [
                    el('button', {type: 'button', text: '← earlier tasks', className: 'secondary', disabled: REPORT || taskOffset === 0,
                        on: {click: function () { taskOffset = Math.max(0, taskOffset - TASKS); load(); }}}),
                    el('span', {className: 'muted', text: tasks.length ? 'tasks ' + tasks[0].index + '–' + tasks[tasks.length - 1].index + ' of ' + totalN : ''}),
                    el('button', {type: 'button', text: 'later tasks →', className: 'secondary',
                        disabled: REPORT || taskOffset + tasks.length >= totalN,
                        on: {click: function () { taskOffset += tasks.length || TASKS; load(); }}})
                ]));
            }
            if (!chosen && chosen !== 0) detail.appendChild(el('p', {className: 'muted', text: 'Click a task for its attempt, worker, error and result.'}));
            out.push(detail);
            return out;
        }

        function showTask(detail, t) {
            clear(detail);
            var result = t.result;
            if (result && typeof result === 'object' && typeof result._requests_omitted === 'number') {
                result = JSON.parse(JSON.stringify(result));
                result._requests_omitted = result._requests_omitted + ' request records left out: llmb export has every one';
            }
            if (result && typeof result === 'object' && Array.isArray(result._requests)) {
                result = JSON.parse(JSON.stringify(result));
                result._requests = '[' + t.result._requests.length + ' request records: llmb export has every one]';
            }
            if (result && typeof result === 'object' && result.metrics) {
                Object.keys(result.metrics).forEach(function (k) {
                    var h = result.metrics[k];
                    if (h && h.hist) result.metrics[k] = {count: h.count, min: h.min / h.scale, max: h.max / h.scale,
                        mean: h.count ? h.sum / h.count / h.scale : null, note: 'histogram, in the job aggregate'};
                });
            }
            append(detail, [
                el('h3', {text: 'Task ' + t.index}),
                kv([['state', badge(t.state)], ['attempt', num(t.attempt)], ['worker', t.worker || '-'],
                    t.error ? ['error', el('pre', {className: 'code error', id: 'task-error', text: String(t.error)})] : null,
                    result !== null && result !== undefined ? ['result', pre(result)] : null])
            ]);
        }

        load();
        var reload = reloader(load, 300);
        return {
            onJob: function (ev) {
                var cur = document.getElementById('job-id');
                if (!ev || (cur && ev.id === cur.textContent)) reload();
            },
            /* a job under way: its tasks move without a job event, so
             * it is read again with each overview (every 2 s) */
            onOverview: function () {
                var st = document.getElementById('job-state');
                var s = st ? st.textContent : '';
                if (s === 'pending' || s === 'running') reload();
            }
        };
    }

    /* The aggregate as tables: numbers with units, then flags and labels. */
    function aggregateTables(agg, j) {
        var out = [];
        var info = [
            ['results', num(agg.results)], ['run', dur(agg.run_ms) + ' (first claim to end)'],
            ['wall', dur(agg.wall_ms) + ' (push to end)'],
            ['tasks', num(agg.tasks) + ': ' + num(agg.ok) + ' ok, ' + num(agg.failed) + ' failed, ' + num(agg.cancelled) + ' cancelled'],
            ['attempts', num(agg.retried) + ' retried, ' + num(agg.timeouts) + ' timed out, ' + num(agg.lost) + ' lost']
        ];
        if (j && j.aggregated_ms) info.push(['aggregated', when(j.aggregated_ms)]);
        if (agg.fields_dropped) info.push(['dropped', num(agg.fields_dropped) + ' samples of paths past the first 1024']);
        out.push(kv(info));
        var fields = agg.fields || {};
        var numeric = [], cats = [];
        Object.keys(fields).sort().forEach(function (path) {
            var f = fields[path];
            if (!f || typeof f !== 'object') return;
            if (f.kind === 'flag' || f.kind === 'label' || (f.values && typeof f.values === 'object')) {
                var vals;
                if (f.kind === 'flag') vals = 'true ' + num(f['true']) + ' (' + num(100 * (f.mean || 0)) + ' %), false ' + num((f.count || 0) - (f['true'] || 0));
                else vals = Object.keys(f.values || {}).map(function (k) { return k + ' ' + f.values[k]; }).join(', ') + (f.other ? ', other ' + f.other : '');
                cats.push([el('span', {className: 'mono', text: path}), f.kind || 'label', num(f.count), vals]);
                return;
            }
            var unit = f.kind === 'duration' ? (f.unit || '') : '';
            numeric.push([el('span', {className: 'mono', text: path}), f.kind || '-', unit, num(f.count), num(f.min), num(f.mean), num(f.p50),
                num(f.p90), num(f.p99), num(f.max), f.kind === 'count' || (!f.kind && f.sum !== undefined) ? num(f.sum) : '-',
                typeof f.per_s === 'number' ? num(f.per_s) + ' /s' : '-']);
        });
        if (numeric.length) out.push(table([['field'], ['kind'], ['unit'], ['count', 1], ['min', 1], ['mean', 1], ['p50', 1], ['p90', 1],
            ['p99', 1], ['max', 1], ['sum', 1], ['per second', 1, 'the sum per second of the run']], numeric, 'grid compact aggregate'));
        if (cats.length) out.push(table([['field'], ['kind'], ['count', 1], ['values']], cats, 'grid compact'));
        if (!numeric.length && !cats.length) out.push(el('p', {className: 'muted', text: 'The results held no numbers.'}));
        return out;
    }

    /* The sections of an llm benchmark job (docs/llm.md). */
    function llmSections(root, j, agg, payload, doc) {
        var conc = concurrency(agg);
        var okSum = total(agg, 'summary.ok'), reqSum = total(agg, 'summary.requests');
        var failed = total(agg, 'summary.failed');
        var cards = [
            ['requests', num(reqSum), (okSum !== null ? num(okSum) + ' ok' : '') + (failed ? ', ' + num(failed) + ' failed' : '')],
            ['request throughput', short(stat(agg, 'summary.ok', 'per_s')), 'req/s (completed)'],
            ['output tokens', short(stat(agg, 'metrics.output_tokens', 'per_s') !== null ? stat(agg, 'metrics.output_tokens', 'per_s') : stat(agg, 'summary.output_tokens', 'per_s')), 'tok/s'],
            ['TTFT p50 / p99', short(stat(agg, 'metrics.ttft_ms', 'p50')) + ' / ' + short(stat(agg, 'metrics.ttft_ms', 'p99')), 'ms'],
            ['ITL p50 / p99', short(stat(agg, 'metrics.itl_ms', 'p50')) + ' / ' + short(stat(agg, 'metrics.itl_ms', 'p99')), 'ms, every gap'],
            ['TPOT p50 / p99', short(stat(agg, 'metrics.tpot_ms', 'p50')) + ' / ' + short(stat(agg, 'metrics.tpot_ms', 'p99')), 'ms'],
            ['E2E p50 / p99', short(stat(agg, 'metrics.e2e_ms', 'p50')) + ' / ' + short(stat(agg, 'metrics.e2e_ms', 'p99')), 'ms'],
            ['run time', dur(agg.run_ms), 'first claim to last end']
        ];
        if (field(agg, 'summary.good')) cards.splice(3, 0, ['goodput', short(stat(agg, 'summary.good', 'per_s')), 'req/s within the SLO']);
        if (conc) cards.push(['concurrency', short(conc.achieved) + ' of ' + short(conc.asked), 'achieved of asked (time-weighted)']);
        root.appendChild(section('LLM benchmark', [
            el('div', {className: 'cards'}, cards.map(function (c) {
                return el('div', {className: 'stat-card'}, [el('div', {className: 'label', text: c[0]}), el('div', {className: 'value', text: c[1]}), el('div', {className: 'unit', text: c[2]})]);
            })),
            conc && conc.achieved < 0.75 * conc.asked && !(payload.rate > 0) ? el('p', {className: 'warn', text: 'The job ran at ' +
                Math.round(100 * conc.achieved / conc.asked) + ' % of the concurrency asked: its tasks did not all run at once (the workers\' --capacity, too few workers) or could not keep their requests in flight; its latencies are those of the concurrency achieved.'}) : null,
            warnings(doc),
            errorsLine(agg),
            latencyTable(agg)
        ], 'llm'));

        if (payload.slo && typeof payload.slo === 'object') root.appendChild(section('SLO and goodput', sloView(agg, payload.slo)));

        var grid = el('div', {className: 'dist-grid'});
        var pairs = agg.by && typeof agg.by === 'object' ? Object.keys(agg.by) : [];
        DISTRIBUTIONS.forEach(function (path) {
            if (!field(agg, path)) return;
            var unit = (field(agg, path).unit || 'ms');
            var series = [{label: 'all', agg: agg}];
            pairs.forEach(function (p) { series.push({label: p, agg: agg.by[p]}); });
            var h = histChart(agg, path, unit);
            var c = cdfChart(series, path, unit, latencyName(path) + ' CDF (' + unit + ')' + (pairs.length ? ', by endpoint/model' : ''));
            if (h || c) grid.appendChild(el('div', {className: 'dist', dataset: {metric: path}}, [h, c]));
        });
        if (grid.children.length) root.appendChild(section('Distributions', [grid, el('p', {className: 'muted small',
            text: 'From the merged histograms of every request of every task (ITL: every gap between tokens); percentiles within 0.39 %.'})], 'dists'));
        else root.appendChild(section('Distributions', el('p', {className: 'muted', text: 'This aggregate has no histograms (aggregated before llmb kept them): the tables have its percentiles.'})));

        var overTime = timelineCharts(agg, pairs);
        if (overTime) root.appendChild(section('Throughput and concurrency over time', overTime, 'timeline'));

        if (pairs.length) root.appendChild(section('By endpoint / model', pairsView(agg, pairs)));
        var per = perTaskChart(doc);
        if (per) root.appendChild(section('Throughput and concurrency per task', per));
    }

    /* The points {x: s since t0, y} of one array of a time series
     * (docs/llm.md), for a stepped line: y per bucket (divided by the
     * bucket's seconds when perSecond) from the bucket's start, and the
     * last bucket's end, so that one bucket draws too. */
    function seriesPoints(tl, key, t0, perSecond) {
        var w = tl.width_ms, vals = Array.isArray(tl[key]) ? tl[key] : [];
        var pts = vals.map(function (v, i) {
            var y = perSecond ? v * 1000 / w : v;
            return {x: (tl.start_ms + i * w - t0) / 1000, y: Math.round(y * 1000) / 1000};
        });
        if (pts.length) pts.push({x: (tl.start_ms + vals.length * w - t0) / 1000, y: pts[pts.length - 1].y});
        return pts;
    }

    /* Two line charts of the job's merged time series ("timeline" of the
     * aggregate, and of each endpoint/model pair): output tokens/s and
     * requests/s, and the time-weighted concurrency; null without one. */
    function timelineCharts(agg, pairs) {
        var tl = agg.timeline;
        if (!tl || !Array.isArray(tl.requests) || !tl.requests.length || !(tl.width_ms > 0)) return null;
        var t0 = tl.start_ms;
        var xAxis = axis('s since ' + clock(t0) + (tl.width_ms !== 1000 ? ' (buckets of ' + tl.width_ms / 1000 + ' s)' : ''), {type: 'linear', min: 0});
        var tput = [
            {label: 'output tokens/s', data: seriesPoints(tl, 'output_tokens', t0, true), yAxisID: 'y',
             borderColor: color(0), backgroundColor: fade(color(0), 0.15), pointRadius: 0, borderWidth: 2},
            {label: 'requests/s', data: seriesPoints(tl, 'requests', t0, true), yAxisID: 'y1',
             borderColor: color(1), backgroundColor: fade(color(1), 0.15), pointRadius: 0, borderWidth: 2, borderDash: [6, 3]}];
        var conc = [{label: 'all', data: seriesPoints(tl, 'concurrency', t0, false),
                     borderColor: color(0), backgroundColor: fade(color(0), 0.15), pointRadius: 0, borderWidth: 2,
                     fill: !pairs.length}];
        pairs.forEach(function (p, i) {
            var g = agg.by[p] && agg.by[p].timeline;
            if (!g || !Array.isArray(g.requests)) return;
            tput.push({label: p + ' tokens/s', data: seriesPoints(g, 'output_tokens', t0, true), yAxisID: 'y',
                       borderColor: color(i + 2), pointRadius: 0, borderWidth: 1});
            conc.push({label: p, data: seriesPoints(g, 'concurrency', t0, false),
                       borderColor: color(i + 2), pointRadius: 0, borderWidth: 1});
        });
        tput.concat(conc).forEach(function (d) { d.stepped = 'after'; });
        var a = chart({type: 'line', data: {datasets: tput}, options: {
            parsing: false,
            plugins: {title: titled('Throughput over time: output tokens/s and requests/s (per ' + tl.width_ms / 1000 + ' s bucket)')},
            scales: {x: xAxis, y: axis('output tokens/s', {beginAtZero: true, position: 'left'}),
                     y1: axis('requests/s', {beginAtZero: true, position: 'right', grid: {drawOnChartArea: false}})}}}, 'series');
        var b = chart({type: 'line', data: {datasets: conc}, options: {
            parsing: false,
            plugins: {legend: {display: conc.length > 1},
                      title: titled('Concurrency over time: requests in flight, time-weighted mean per bucket')},
            scales: {x: xAxis, y: axis('requests in flight', {beginAtZero: true})}}}, 'series');
        a.dataset.series = 'throughput';
        b.dataset.series = 'concurrency';
        return [el('div', {className: 'dist-grid'}, [a, b]), el('p', {className: 'muted small',
            text: 'Merged from every task\'s series on wall-clock buckets: tokens counted when their chunk arrived; ' +
                  'concurrency summed over the tasks' + (tl.refused ? '; ' + tl.refused + ' task series of another bucket width left out' : '') + '.'})];
    }

    function warnings(doc) {
        var seen = dict();
        (doc.tasks || []).forEach(function (t) {
            var w = t.result && Array.isArray(t.result.warnings) ? t.result.warnings : [];
            w.forEach(function (s) { seen[String(s)] = (seen[String(s)] || 0) + 1; });
        });
        var keys = Object.keys(seen);
        if (!keys.length) return null;
        return el('ul', {className: 'warn'}, keys.map(function (k) {
            return el('li', {text: k + (seen[k] > 1 ? ' (' + seen[k] + ' tasks)' : '')});
        }));
    }

    function errorsLine(agg) {
        var fields = agg.fields || {}, parts = [];
        Object.keys(fields).sort().forEach(function (p) {
            if (p.indexOf('summary.errors.') !== 0) return;
            var n = total(agg, p);
            if (n) parts.push(p.slice('summary.errors.'.length) + ' ' + num(n));
        });
        var retries = total(agg, 'summary.retries');
        return el('p', {className: parts.length ? 'warn' : 'muted'}, 'errors: ' + (parts.length ? parts.join(', ') : 'none') +
            (retries ? '; ' + num(retries) + ' retries' : ''));
    }

    function latencyTable(agg) {
        var rows = [];
        LATENCIES.forEach(function (m) {
            var f = field(agg, m[0]);
            if (!f) return;
            rows.push([el('span', {title: m[2], text: m[1] + ' (' + (f.unit || 'ms') + ')'}), num(f.p50), num(f.p90), num(f.p99), num(f.mean), num(f.min), num(f.max), num(f.count)]);
        });
        ['metrics.output_tokens', 'metrics.input_tokens'].forEach(function (p) {
            var f = field(agg, p);
            if (f) rows.push([p === 'metrics.output_tokens' ? 'output tokens' : 'input tokens', num(f.p50), num(f.p90), num(f.p99), num(f.mean), num(f.min), num(f.max), num(f.count)]);
        });
        return table([['metric'], ['p50', 1], ['p90', 1], ['p99', 1], ['mean', 1], ['min', 1], ['max', 1], ['n', 1]], rows, 'grid latency');
    }

    function sloView(agg, slo) {
        var good = total(agg, 'summary.good'), ok = total(agg, 'summary.ok'), req = total(agg, 'summary.requests');
        var rows = Object.keys(slo).map(function (k) {
            var path = 'metrics.' + k, f = field(agg, path), th = slo[k];
            var p99 = f ? f.p99 : null, p90 = f ? f.p90 : null, p50 = f ? f.p50 : null;
            var within = function (v) { return typeof v === 'number' && typeof th === 'number' ? (v <= th ? 'ok' : 'over') : ''; };
            return [latencyName(path) + ' ≤ ' + num(th) + ' ms', {text: num(p50), className: within(p50)}, {text: num(p90), className: within(p90)},
                    {text: num(p99), className: within(p99)}];
        });
        var share = good !== null && req ? 100 * good / req : null;
        return [
            kv([['goodput', short(stat(agg, 'summary.good', 'per_s')) + ' req/s'],
                ['within the SLO', (good !== null ? num(good) : '-') + ' of ' + num(req) + ' requests' + (share !== null ? ' (' + share.toFixed(1) + ' %)' : '')],
                ['request throughput', short(stat(agg, 'summary.ok', 'per_s')) + ' req/s (' + num(ok) + ' completed)']]),
            table([['threshold'], ['p50', 1], ['p90', 1], ['p99', 1]], rows, 'grid compact slo'),
            el('p', {className: 'muted small', text: 'Goodput counts the requests that met every threshold, per second of the run (vLLM\'s request_goodput).'})
        ];
    }

    function pairsView(agg, pairs) {
        var cols = [['summary.requests', 'sum', 'requests'], ['summary.failed', 'sum', 'errors'], ['summary.ok', 'per_s', 'req/s'],
            ['metrics.output_tokens', 'per_s', 'out tok/s'], ['metrics.ttft_ms', 'p50', 'TTFT p50'], ['metrics.ttft_ms', 'p99', 'TTFT p99'],
            ['metrics.itl_ms', 'p50', 'ITL p50'], ['metrics.itl_ms', 'p99', 'ITL p99'], ['metrics.tpot_ms', 'p50', 'TPOT p50'],
            ['metrics.tpot_ms', 'p99', 'TPOT p99'], ['metrics.e2e_ms', 'p99', 'E2E p99']];
        var rows = pairs.map(function (p) {
            var g = agg.by[p];
            return [el('span', {className: 'mono', text: p}), num(g.results)].concat(cols.map(function (c) { return num(stat(g, c[0], c[1])); }));
        });
        var links = REPORT ? null : el('p', null, link('#/compare/' + pairs.map(function (p) {
            return encodeURIComponent(currentJobId() + '@' + p);
        }).join(','), 'Compare the pairs side by side'));
        var bars = chart({
            type: 'bar',
            data: {labels: pairs, datasets: [
                {label: 'TTFT p50 (ms)', data: pairs.map(function (p) { return stat(agg.by[p], 'metrics.ttft_ms', 'p50'); }), backgroundColor: color(0)},
                {label: 'TTFT p99 (ms)', data: pairs.map(function (p) { return stat(agg.by[p], 'metrics.ttft_ms', 'p99'); }), backgroundColor: color(1)},
                {label: 'output tok/s', data: pairs.map(function (p) { return stat(agg.by[p], 'metrics.output_tokens', 'per_s'); }), backgroundColor: color(2), yAxisID: 'y1'}]},
            options: {plugins: {title: titled('Endpoint / model pairs')},
                      scales: {y: axis('ms', {beginAtZero: true}), y1: axis('tok/s', {beginAtZero: true, position: 'right', grid: {drawOnChartArea: false}})}}
        });
        return [table([['endpoint/model'], ['tasks', 1]].concat(cols.map(function (c) { return [c[2], 1]; })), rows, 'grid compact'), bars, links];
    }

    function currentJobId() {
        var n = document.getElementById('job-id');
        return n ? n.textContent : '';
    }

    function perTaskChart(doc) {
        var tasks = (doc.tasks || []).filter(function (t) { return t.result && t.result.summary; });
        if (tasks.length < 1) return null;
        var labels = tasks.map(function (t) { return 'task ' + t.index; });
        var s = function (k) { return tasks.map(function (t) { var v = t.result.summary[k]; return typeof v === 'number' ? v : null; }); };
        return [chart({
            type: 'bar',
            data: {labels: labels, datasets: [
                {label: 'req/s', data: s('request_rate'), backgroundColor: color(0), yAxisID: 'y'},
                {label: 'output tok/s', data: s('output_token_rate'), backgroundColor: color(2), yAxisID: 'y1'},
                {label: 'concurrency asked', data: s('concurrency'), backgroundColor: fade(color(4), 0.35), yAxisID: 'y2'},
                {label: 'concurrency achieved', data: s('achieved_concurrency'), backgroundColor: color(4), yAxisID: 'y2'}]},
            options: {plugins: {title: titled('Per task: its own rates and concurrency (each over its own run)')},
                      scales: {y: axis('req/s', {beginAtZero: true}), y1: axis('tok/s', {beginAtZero: true, position: 'right', grid: {drawOnChartArea: false}}),
                               y2: axis('in flight', {beginAtZero: true, position: 'right', grid: {drawOnChartArea: false}})}}
        }, 'wide'), el('p', {className: 'muted small', text: 'The job\'s throughput is over its whole run (the cards above); a task\'s rate is over its own run.'})];
    }

    /* A sweep level's job id: <sweep>-<concurrency|rate>-<level>. */
    var SWEEP_ID = /^(.+)-(concurrency|rate)-([0-9]+(?:\.[0-9]+)?)$/;

    function sweepSection(root, j) {
        var m = SWEEP_ID.exec(j.id || '');
        if (!m) return;
        var prefix = m[1] + '-' + m[2] + '-', over = m[2];
        var box = section('Sweep ' + m[1] + ' over ' + over, el('p', {className: 'muted', text: 'Reading the other levels…'}), 'sweep');
        root.appendChild(box);
        var ids;
        if (REPORT) {
            ids = (REPORT.jobs || []).map(function (d) { return d.job && d.job.id; }).filter(function (id) { return id && id.indexOf(prefix) === 0 && SWEEP_ID.test(id); });
            drawSweep(box, ids, over, j.queue);
            return;
        }
        data.queueJobs(j.queue, {search: prefix, limit: 100}).then(function (doc) {
            ids = (doc.jobs || []).map(function (x) { return x.id; }).filter(function (id) {
                var mm = SWEEP_ID.exec(id);
                return mm && mm[1] === m[1] && mm[2] === over;
            });
            drawSweep(box, ids, over, j.queue);
        }, function (e) { showError(box, e); });
    }

    function drawSweep(box, ids, over, queue) {
        Promise.all(ids.map(function (id) {
            return data.job(queue ? queue + '/' + id : id, 0, 0).then(function (d) { return d; }, function () { return null; });
        })).then(function (docs) {
            var levels = [];
            docs.forEach(function (d) {
                if (!d || !d.job) return;
                var agg = parseAggregate(d.job);
                if (!agg) return;
                levels.push({level: Number(SWEEP_ID.exec(d.job.id)[3]), id: d.job.id, agg: agg, state: d.job.state});
            });
            levels.sort(function (a, b) { return a.level - b.level; });
            var kids = [];
            clear(box).appendChild(el('h2', {text: 'Sweep over ' + over + ': ' + levels.length + ' levels aggregated'}));
            if (levels.length < 2) {
                box.appendChild(el('p', {className: 'muted', text: 'Only this level has an aggregate so far.'}));
                return;
            }
            var x = levels.map(function (l) { return l.level; });
            function line(label, path, st, i, axisId) {
                return {label: label, data: levels.map(function (l) { return {x: l.level, y: stat(l.agg, path, st)}; }),
                        borderColor: color(i), backgroundColor: color(i), pointRadius: 3, borderWidth: 2, yAxisID: axisId || 'y'};
            }
            kids.push(el('div', {className: 'dist-grid'}, [
                chart({type: 'line', data: {datasets: [line('TTFT p50', 'metrics.ttft_ms', 'p50', 0), line('TTFT p99', 'metrics.ttft_ms', 'p99', 1),
                    line('TPOT p50', 'metrics.tpot_ms', 'p50', 2), line('ITL p99', 'metrics.itl_ms', 'p99', 3), line('E2E p50', 'metrics.e2e_ms', 'p50', 4, 'y1')]},
                    options: {parsing: false, plugins: {title: titled('Latency against ' + over)},
                              scales: {x: axis(over, {type: 'linear'}), y: axis('ms', {beginAtZero: true}),
                                       y1: axis('E2E ms', {beginAtZero: true, position: 'right', grid: {drawOnChartArea: false}})}}}),
                chart({type: 'line', data: {datasets: [line('request throughput (req/s)', 'summary.ok', 'per_s', 0),
                    line('goodput (req/s)', 'summary.good', 'per_s', 2), line('output tok/s', 'metrics.output_tokens', 'per_s', 4, 'y1')]},
                    options: {parsing: false, plugins: {title: titled('Throughput against ' + over)},
                              scales: {x: axis(over, {type: 'linear'}), y: axis('req/s', {beginAtZero: true}),
                                       y1: axis('tok/s', {beginAtZero: true, position: 'right', grid: {drawOnChartArea: false}})}}})
            ]));
            kids.push(table([[over, 1], ['job'], ['state'], ['requests', 1], ['req/s', 1], ['out tok/s', 1], ['goodput', 1], ['TTFT p50', 1], ['TTFT p99', 1],
                ['ITL p99', 1], ['TPOT p50', 1], ['errors', 1]], levels.map(function (l) {
                return [num(l.level), link(jobHref(l.id), l.id, 'mono'), badge(l.state), num(total(l.agg, 'summary.requests')), num(stat(l.agg, 'summary.ok', 'per_s')),
                    num(stat(l.agg, 'metrics.output_tokens', 'per_s')), num(stat(l.agg, 'summary.good', 'per_s')), num(stat(l.agg, 'metrics.ttft_ms', 'p50')),
                    num(stat(l.agg, 'metrics.ttft_ms', 'p99')), num(stat(l.agg, 'metrics.itl_ms', 'p99')), num(stat(l.agg, 'metrics.tpot_ms', 'p50')),
                    num(total(l.agg, 'summary.failed'))];
            }), 'grid compact'));
            if (!REPORT) kids.push(el('p', null, link('#/compare/' + levels.map(function (l) { return encodeURIComponent(l.id); }).join(','), 'Compare the levels side by side')));
            append(box, kids);
            void x;
        });
    }

    /* ---------- compare ---------- */

    var COMPARED = [
        ['requests', 'requests', 'summary.requests', 'sum', 0],
        ['errors', 'errors', 'summary.failed', 'sum', -1],
        ['request_throughput', 'request throughput (req/s)', 'summary.ok', 'per_s', 1],
        ['output_throughput', 'output throughput (tok/s)', 'metrics.output_tokens', 'per_s', 1],
        ['goodput', 'goodput (req/s)', 'summary.good', 'per_s', 1],
        ['ttft_p50_ms', 'TTFT p50 (ms)', 'metrics.ttft_ms', 'p50', -1],
        ['ttft_p99_ms', 'TTFT p99 (ms)', 'metrics.ttft_ms', 'p99', -1],
        ['itl_p50_ms', 'ITL p50 (ms)', 'metrics.itl_ms', 'p50', -1],
        ['itl_p99_ms', 'ITL p99 (ms)', 'metrics.itl_ms', 'p99', -1],
        ['tpot_p50_ms', 'TPOT p50 (ms)', 'metrics.tpot_ms', 'p50', -1],
        ['tpot_p99_ms', 'TPOT p99 (ms)', 'metrics.tpot_ms', 'p99', -1],
        ['e2e_p50_ms', 'E2E p50 (ms)', 'metrics.e2e_ms', 'p50', -1],
        ['e2e_p99_ms', 'E2E p99 (ms)', 'metrics.e2e_ms', 'p99', -1]
    ];

    /* The aggregate a compare spec names: JOB, or JOB@ENDPOINT/MODEL. */
    function specAggregate(doc, spec) {
        var agg = parseAggregate(doc && doc.job);
        var at = spec.indexOf('@');
        if (!agg || at < 0) return agg;
        var g = agg.by && agg.by[spec.slice(at + 1)];
        return g ? {fields: g.fields, run_ms: agg.run_ms, results: g.results} : null;
    }

    /* `llmb compare --json` computed here from the report's aggregates, for
     * specs the report did not compare itself. */
    function compareLocal(specs) {
        var aggs = specs.map(function (s) {
            var at = s.indexOf('@');
            return specAggregate(reportJob(at < 0 ? s : s.slice(0, at)), s);
        });
        return {baseline: specs[0], jobs: specs.map(function (s, i) {
            var m = {}, d = {}, p = {};
            COMPARED.forEach(function (c) {
                var v = aggs[i] ? stat(aggs[i], c[2], c[3]) : null, b = aggs[0] ? stat(aggs[0], c[2], c[3]) : null;
                m[c[0]] = v;
                d[c[0]] = v !== null && b !== null ? v - b : null;
                p[c[0]] = v !== null && b ? 100 * (v - b) / b : null;
            });
            return {job: s, metrics: m, delta: d, delta_pct: p};
        })};
    }

    function comparePage(specs) {
        var root = el('div', {className: 'page compare'});
        clear(app).appendChild(root);
        setTitle('Compare');
        if (specs.length < 1) {
            var input = el('input', {type: 'text', placeholder: 'job ids, comma separated (JOB or JOB@ENDPOINT/MODEL)', id: 'compare-input', size: 60});
            var form = el('form', {className: 'row'}, [input, el('button', {type: 'submit', text: 'Compare'})]);
            form.addEventListener('submit', function (e) {
                e.preventDefault();
                var ids = input.value.split(',').map(function (s) { return s.trim(); }).filter(Boolean);
                location.hash = '#/compare/' + ids.map(encodeURIComponent).join(',');
            });
            append(root, [el('h1', {text: 'Compare'}), section(null, [el('p', {text: 'Two or more llm jobs side by side, each with its difference to the first. One A/B job alone compares its endpoint/model pairs. Or tick jobs on a queue\'s page.'}), form])]);
            return {};
        }
        append(root, el('h1', {text: 'Compare'}));
        var body = el('div');
        root.appendChild(body);
        body.appendChild(el('p', {className: 'muted', text: 'Loading…'}));
        data.compare(specs).then(function (cmp) {
            var jobs = cmp.jobs || [];
            var names = jobs.map(function (x) { return x.job; });
            var plain = dict();
            names.forEach(function (n) { plain[n.split('@')[0]] = true; });
            return Promise.all(Object.keys(plain).map(function (id) {
                return data.job(id, 0, 0).then(function (d) { return [id, d]; }, function () { return [id, null]; });
            })).then(function (docs) {
                var byId = dict();
                docs.forEach(function (p) { byId[p[0]] = p[1]; });
                destroyCharts();
                clear(body);
                renderCompare(body, cmp, byId);
            });
        }).catch(function (e) { showError(body, e); });
        return {};
    }

    function renderCompare(body, cmp, byId) {
        var jobs = cmp.jobs || [];
        var heads = [['metric']];
        jobs.forEach(function (x, i) {
            heads.push([x.job, 1]);
            if (i > 0) { heads.push(['Δ ' + (i + 1), 1]); heads.push(['%', 1]); }
        });
        var rows = COMPARED.map(function (c) {
            var cells = [c[1]];
            jobs.forEach(function (x, i) {
                var v = x.metrics ? x.metrics[c[0]] : null;
                cells.push(num(v));
                if (i === 0) return;
                var d = x.delta ? x.delta[c[0]] : null, p = x.delta_pct ? x.delta_pct[c[0]] : null;
                var cls = '';
                if (typeof d === 'number' && d !== 0 && c[4] !== 0) cls = (d > 0) === (c[4] > 0) ? 'better' : 'worse';
                cells.push({text: typeof d === 'number' ? (d > 0 ? '+' : '') + num(d) : '-', className: cls});
                cells.push({text: typeof p === 'number' ? (p > 0 ? '+' : '') + p.toFixed(1) + '%' : '-', className: cls});
            });
            return cells;
        });
        body.appendChild(section('Side by side', [table(heads, rows, 'grid compare-table'),
            REPORT ? null : el('p', {className: 'muted small'}, ['To hand over: ', el('code', {text: 'llmb report ' +
                jobs.map(function (x) { return x.job; }).join(' ') + ' -o report.html'}), ' writes this page into one file that opens offline.']),
            el('p', {className: 'muted small', text: 'Δ N and % are job N minus the first (' + (cmp.baseline || (jobs[0] && jobs[0].job)) +
                '); green is better, red worse; "-" where a job has no such number.'}),
            el('p', null, jobs.map(function (x) {
                var id = x.job.split('@')[0];
                return REPORT && !reportJob(id) ? null : link(jobHref(id), x.job, 'chip mono');
            }))]));

        var series = jobs.map(function (x) {
            var id = x.job.split('@')[0];
            return {label: x.job, agg: specAggregate(byId[id], x.job)};
        }).filter(function (s) { return s.agg; });
        var grid = el('div', {className: 'dist-grid'});
        DISTRIBUTIONS.forEach(function (path) {
            var c = cdfChart(series, path, 'ms');
            if (c) grid.appendChild(el('div', {className: 'dist', dataset: {metric: path}}, c));
        });
        grid.appendChild(chart({
            type: 'bar',
            data: {labels: jobs.map(function (x) { return x.job; }), datasets: [
                {label: 'request throughput (req/s)', data: jobs.map(function (x) { return x.metrics.request_throughput; }), backgroundColor: color(0)},
                {label: 'goodput (req/s)', data: jobs.map(function (x) { return x.metrics.goodput; }), backgroundColor: color(2)},
                {label: 'output tok/s', data: jobs.map(function (x) { return x.metrics.output_throughput; }), backgroundColor: color(4), yAxisID: 'y1'}]},
            options: {plugins: {title: titled('Throughput')},
                      scales: {y: axis('req/s', {beginAtZero: true}), y1: axis('tok/s', {beginAtZero: true, position: 'right', grid: {drawOnChartArea: false}})}}
        }));
        body.appendChild(section('Distributions', grid));

        /* what differs between the payloads */
        var flat = dict();
        Object.keys(byId).forEach(function (id) {
            var d = byId[id];
            flat[id] = dict();
            flatten(payloadOf(d && d.job), '', flat[id]);
        });
        var ids = Object.keys(flat);
        if (ids.length > 1) {
            var keys = dict();
            ids.forEach(function (id) { Object.keys(flat[id]).forEach(function (k) { keys[k] = true; }); });
            var diff = Object.keys(keys).sort().filter(function (k) {
                return ids.some(function (id) { return flat[id][k] !== flat[ids[0]][k]; });
            });
            if (diff.length) body.appendChild(section('Payload differences', table([['field']].concat(ids.map(function (id) { return [id]; })),
                diff.map(function (k) { return [el('span', {className: 'mono', text: k})].concat(ids.map(function (id) { return flat[id][k] === undefined ? '-' : flat[id][k]; })); }), 'grid compact')));
        }
    }

    function flatten(v, prefix, out) {
        if (v && typeof v === 'object' && !Array.isArray(v)) {
            Object.keys(v).forEach(function (k) { flatten(v[k], prefix ? prefix + '.' + k : k, out); });
        } else {
            out[prefix] = JSON.stringify(v);
        }
    }

    /* ---------- the report's own index ---------- */

    function reportIndex() {
        var root = el('div', {className: 'page report-index'});
        clear(app).appendChild(root);
        setTitle('Report');
        var jobs = REPORT.jobs || [];
        append(root, [
            el('h1', {text: 'Report'}),
            REPORT.error ? el('p', {className: 'error', text: REPORT.error}) : null,
            section(null, [kv([['written', when(REPORT.generated_ms)], ['by', 'llmb ' + (REPORT.version || '')],
                ['jobs', jobs.length]]),
                table([['job'], ['queue'], ['type'], ['state'], ['tasks', 1], ['run', 1], ['requests', 1], ['req/s', 1], ['TTFT p99 (ms)', 1]],
                    jobs.map(function (d) {
                        var j = d.job || {}, agg = parseAggregate(j);
                        return [link(jobHref(j.id), j.id, 'mono'), j.queue, j.type, badge(j.state), num(j.tasks), agg ? dur(agg.run_ms) : '-',
                            agg ? num(total(agg, 'summary.requests')) : '-', agg ? num(stat(agg, 'summary.ok', 'per_s')) : '-',
                            agg ? num(stat(agg, 'metrics.ttft_ms', 'p99')) : '-'];
                    }))])
        ]);
        if (REPORT.compare_error) root.appendChild(section('Not compared', el('p', {className: 'warn',
            text: 'The jobs could not be compared: ' + REPORT.compare_error}), 'compare-error'));
        if (jobs.length >= 2 && REPORT.compare) {
            var body = el('div');
            root.appendChild(el('h1', {text: 'Compared'}));
            root.appendChild(body);
            var byId = dict();
            jobs.forEach(function (d) { byId[d.job.id] = d; });
            renderCompare(body, REPORT.compare, byId);
        }
        return {};
    }

    /* ---------- routing ---------- */

    function route() {
        var h = location.hash || '#/';
        var parts = h.replace(/^#\/?/, '').split('/');
        var name = parts[0] || '';
        var rest = parts.slice(1).join('/');
        destroyCharts();
        page = null;
        window.scrollTo(0, 0);
        Array.prototype.forEach.call(document.querySelectorAll('[data-nav]'), function (a) {
            a.classList.toggle('on', a.dataset.nav === (name || (REPORT ? 'report' : 'overview')));
        });
        try {
            if (name === 'queue' && rest && !REPORT) page = queuePage(decodeURIComponent(rest));
            else if (name === 'job' && rest) page = jobPage(decodeURIComponent(rest));
            else if (name === 'compare') page = comparePage(rest.split(',').map(function (s) {
                return decodeURIComponent(s).trim();
            }).filter(Boolean));
            else if (REPORT) page = REPORT.jobs && REPORT.jobs.length === 1 && !name ? jobPage(REPORT.jobs[0].job.id) : reportIndex();
            else page = overviewPage();
        } catch (e) {
            showError(app, e);
            if (window.console) console.error(e);
        }
    }

    function start() {
        document.body.classList.toggle('report', !!REPORT);
        if (REPORT) {
            var nav = document.querySelector('header nav');
            clear(nav);
            append(nav, [link('#/', 'Report', null), (REPORT.jobs || []).length > 1 ? link('#/compare/' + (REPORT.jobs || []).map(function (d) {
                return encodeURIComponent(d.job.id);
            }).join(','), 'Compare') : null]);
            nav.firstChild.dataset.nav = 'report';
            if (nav.children[1]) nav.children[1].dataset.nav = 'compare';
            var live = document.getElementById('live');
            live.className = 'live report';
            live.textContent = 'report · ' + when(REPORT.generated_ms);
        }
        data.config().then(function (c) {
            config = c || config;
        }, function () {
            config = {read_only: true, version: null, unknown: true};
        }).then(function () {
            var mode = document.getElementById('mode');
            if (config.read_only && !REPORT) {
                mode.hidden = false;
                mode.textContent = 'read-only';
                var banner = document.getElementById('banner');
                banner.hidden = false;
                banner.textContent = config.unknown ? 'Could not read /api/config: actions are off.' :
                    'Read-only: this llmb web was started without a token (--token-env), so cancel, retry, purge, pause and resume are off.';
            }
            updateTokenButton();
            document.getElementById('token-button').addEventListener('click', function () { askToken(''); });
            window.addEventListener('hashchange', route);
            startEvents();
            route();
        });
    }

    /* Exposed for tests and the console: the page's charts and state. */
    window.llmb = {
        charts: function () { return charts.slice(); },
        report: REPORT,
        history: function () { return history.slice(); },
        config: function () { return config; }
    };

    start();
})();
