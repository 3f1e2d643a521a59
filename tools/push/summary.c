/*
 * The serving-benchmark summary that `llmb-push --wait` prints after the
 * job JSON when the job ran the llm or benchmark handler (docs/llm.md):
 * totals (requests, errors by class, retries, tokens, request and output
 * token throughput over the job's run time), the concurrency asked
 * against the one achieved (with a warning when it is well below), and
 * one row per latency
 * metric with its p50, p90, p99 and mean over every request of every
 * task. Everything comes from the coordinator's aggregate; a job whose
 * aggregate has no summary.requests field is not an llm job and gets no
 * table. --json turns the table off. Numbers are printed by
 * llmb_agg_format(), the rounding of the aggregate and of `llmb show`.
 *
 * After `llmb-push --batch --wait`, one row per job instead: its state,
 * tasks, run time and how its tasks ended ("12 ok, 18 cancelled").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <llmb/aggregate.h>

#include "push.h"

/* The aggregate's stats object of path, or NULL. */
static json_t *field(json_t *agg, const char *path)
{
    json_t *f = json_object_get(json_object_get(agg, "fields"), path);

    return json_is_object(f) ? f : NULL;
}

/* Statistic stat of path as a number; def when absent. */
static double stat(json_t *agg, const char *path, const char *stat,
                   double def)
{
    double v = llmb_agg_stat(agg, path, stat);

    return isnan(v) ? def : v;
}

/* The total of path: its sum (counts), else count times mean (fields of
 * other kinds, and flags, whose mean is the share of true). */
static double total(json_t *agg, const char *path)
{
    if (!isnan(llmb_agg_stat(agg, path, "sum")))
        return stat(agg, path, "sum", 0);
    return stat(agg, path, "count", 0) * stat(agg, path, "mean", 0);
}

/* The throughput of a total: its per_s, or its total over run_ms. */
static double per_s(json_t *agg, const char *path, double run_ms)
{
    json_t *v = json_object_get(field(agg, path), "per_s");

    if (json_is_number(v))
        return json_number_value(v);
    return run_ms > 0 ? total(agg, path) * 1000.0 / run_ms : 0;
}

/* n rounded to a whole number, for totals. */
static const char *whole(double n, char *buf)
{
    snprintf(buf, LLMB_AGG_NUM_LEN, "%.0f", n);
    return buf;
}

static const char *const error_classes[] = {
    "timeout", "connect", "http_4xx", "http_429", "http_5xx", "protocol",
};

static const struct {
    const char *path;
    const char *label;
} metrics[] = {
    /* merged histograms of every request and every token gap
     * (docs/llm.md, "Metrics") */
    {"metrics.ttft_ms", "TTFT (ms)"},
    {"metrics.ttfb_ms", "TTFB (ms)"},
    {"metrics.itl_ms", "ITL, every gap (ms)"},
    {"metrics.tpot_ms", "TPOT (ms)"},
    {"metrics.e2e_ms", "E2E latency (ms)"},
    {"metrics.output_tokens", "output tokens"},
    {"metrics.input_tokens", "input tokens"},
    {"metrics.queued_ms", "queued (ms)"},
};

/* An A/B job's pairs (the aggregate's "by" section, docs/llm.md): one
 * row each, requests, request throughput and the TTFT, ITL and TPOT
 * p50/p99 of its merged histograms. */
static void pairs_print(json_t *agg, FILE *out)
{
    static const char *const cols[][3] = {
        {"req/s", "summary.ok", "per_s"},
        {"TTFT p50", "metrics.ttft_ms", "p50"},
        {"TTFT p99", "metrics.ttft_ms", "p99"},
        {"ITL p50", "metrics.itl_ms", "p50"},
        {"ITL p99", "metrics.itl_ms", "p99"},
        {"TPOT p50", "metrics.tpot_ms", "p50"},
        {"TPOT p99", "metrics.tpot_ms", "p99"},
    };
    json_t *by = json_object_get(agg, "by"), *g;
    const char *name;
    char num[LLMB_AGG_NUM_LEN];
    size_t i;

    if (json_object_size(by) == 0)
        return;
    fprintf(out, "\n%-22s %8s", "endpoint/model (ms)", "requests");
    for (i = 0; i < sizeof(cols) / sizeof(*cols); i++)
        fprintf(out, " %9s", cols[i][0]);
    fputc('\n', out);
    json_object_foreach(by, name, g) {
        json_t *one = llmb_agg_group(agg, name);
        fprintf(out, "%-22s %8.0f", name, total(one, "summary.requests"));
        for (i = 0; i < sizeof(cols) / sizeof(*cols); i++) {
            double v = stat(one, cols[i][1], cols[i][2], NAN);
            fprintf(out, " %9s", isnan(v) ? "-" : llmb_agg_format(v, num));
        }
        fputc('\n', out);
        json_decref(one);
    }
}

int push_summary_print(json_t *job, FILE *out)
{
    json_t *agg = json_object_get(job, "aggregate");
    json_t *id = json_object_get(job, "id");
    char a[LLMB_AGG_NUM_LEN], b[LLMB_AGG_NUM_LEN], c[LLMB_AGG_NUM_LEN],
        d[LLMB_AGG_NUM_LEN], conc[512];
    double run_ms;
    size_t i, nerr = 0;

    if (field(agg, "summary.requests") == NULL)
        return 0;
    /* the measured window (no warm-up), or run_ms from an older
     * coordinator */
    run_ms = json_number_value(json_object_get(agg, "measured_ms"));
    if (!(run_ms > 0))
        run_ms = json_number_value(json_object_get(agg, "run_ms"));

    fprintf(out, "\n==== LLM serving benchmark: job %s ====\n",
            json_is_string(id) ? json_string_value(id) : "?");
    fprintf(out, "%-26s %s (%lld tasks: %lld ok, %lld failed)\n", "state",
            json_string_value(json_object_get(agg, "state")) != NULL ?
            json_string_value(json_object_get(agg, "state")) : "?",
            (long long)json_integer_value(json_object_get(agg, "tasks")),
            (long long)json_integer_value(json_object_get(agg, "ok")),
            (long long)json_integer_value(json_object_get(agg, "failed")));
    fprintf(out, "%-26s %s (ok %s, failed %s)\n", "requests",
            whole(total(agg, "summary.requests"), a),
            whole(total(agg, "summary.ok"), b),
            whole(total(agg, "summary.failed"), c));
    fprintf(out, "%-26s", "errors");
    for (i = 0; i < sizeof(error_classes) / sizeof(*error_classes); i++) {
        char path[64];
        double n;
        snprintf(path, sizeof(path), "summary.errors.%s", error_classes[i]);
        n = total(agg, path);
        if (n >= 0.5)
            fprintf(out, "%s %s %s", nerr++ > 0 ? "," : "",
                    error_classes[i], whole(n, a));
    }
    fprintf(out, "%s\n", nerr == 0 ? " none" : "");
    fprintf(out, "%-26s %s\n", "retries",
            whole(total(agg, "summary.retries"), a));
    fprintf(out, "%-26s %s in, %s out%s\n", "tokens",
            whole(total(agg, "summary.input_tokens"), a),
            whole(total(agg, "summary.output_tokens"), b),
            total(agg, "summary.tokens_estimated") >= 0.5 ?
            " (some estimated: no usage from the server)" : "");
    fprintf(out, "%-26s %s s\n", "run time",
            llmb_agg_format(run_ms / 1000.0, a));
    llmb_agg_concurrency_text(agg, json_object_get(job, "payload"), conc,
                              sizeof(conc));
    if (conc[0] != '\0') {
        char *nl = strchr(conc, '\n');
        if (nl != NULL)
            *nl = '\0';
        fprintf(out, "%-26s %s\n", "concurrency", conc);
        if (nl != NULL)
            fprintf(out, "%s\n", nl + 1);
    }
    /* "start": "together": how many tasks the rendezvous started */
    if (field(agg, "summary.start_missing") != NULL) {
        double missing = stat(agg, "summary.start_missing", "max", 0);
        long long tasks = (long long)json_integer_value(
            json_object_get(agg, "tasks"));
        if (missing < 0.5)
            fprintf(out, "%-26s together, all %lld tasks\n", "start",
                    tasks);
        else
            fprintf(out, "%-26s together, %lld of %lld tasks: %.0f had not "
                    "arrived when start_timeout_s ran out\n", "start",
                    tasks - (long long)missing, tasks, missing);
    }
    /* completed requests, as vLLM's request_throughput */
    fprintf(out, "%-26s %s req/s\n", "request throughput",
            llmb_agg_format(per_s(agg, "summary.ok", run_ms), a));
    if (field(agg, "summary.good") != NULL)
        fprintf(out, "%-26s %s req/s (%s requests within the slo)\n",
                "goodput",
                llmb_agg_format(per_s(agg, "summary.good", run_ms), a),
                whole(total(agg, "summary.good"), b));
    fprintf(out, "%-26s %s tok/s\n", "output token throughput",
            llmb_agg_format(per_s(agg, "summary.output_tokens", run_ms),
                            a));
    fprintf(out, "\n%-22s %10s %10s %10s %10s %8s\n", "metric", "p50", "p90",
            "p99", "mean", "n");
    for (i = 0; i < sizeof(metrics) / sizeof(*metrics); i++) {
        const char *p = metrics[i].path;
        if (field(agg, p) == NULL)
            continue;
        fprintf(out, "%-22s %10s %10s %10s %10s %8.0f\n", metrics[i].label,
                llmb_agg_format(stat(agg, p, "p50", 0), a),
                llmb_agg_format(stat(agg, p, "p90", 0), b),
                llmb_agg_format(stat(agg, p, "p99", 0), c),
                llmb_agg_format(stat(agg, p, "mean", 0), d),
                stat(agg, p, "count", 0));
    }
    pairs_print(agg, out);
    return 1;
}

/* The integer field k of job, or def. */
static long long job_ll(json_t *job, const char *k, long long def)
{
    json_t *v = json_object_get(job, k);

    return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

void push_job_row_fill(struct push_job_row *row, json_t *job)
{
    const char *id = json_string_value(json_object_get(job, "id"));
    const char *queue = json_string_value(json_object_get(job, "queue"));
    const char *state = json_string_value(json_object_get(job, "state"));
    long long started = job_ll(job, "started_ms", 0);
    long long finished = job_ll(job, "finished_ms", 0);

    row->id = llmb_xstrdup(id != NULL ? id : "?");
    row->queue = llmb_xstrdup(queue != NULL ? queue : "?");
    row->state = llmb_xstrdup(state != NULL ? state : "?");
    row->tasks = job_ll(job, "tasks", 0);
    row->ended = row->tasks - job_ll(job, "left", row->tasks);
    row->failed = job_ll(job, "failed", 0);
    row->cancelled = job_ll(job, "cancelled", 0);
    row->ok = job_ll(job, "ok", row->ended - row->failed - row->cancelled);
    row->run_ms = started > 0 && finished >= started ? finished - started : -1;
}

void push_job_row_fini(struct push_job_row *row)
{
    free(row->id);
    free(row->queue);
    free(row->state);
    memset(row, 0, sizeof(*row));
}

/* "12 ok, 18 cancelled": the tasks that ended, by how, zeros left out;
 * "none" before any ended. */
static const char *ended_text(const struct push_job_row *r, char *buf,
                              size_t n)
{
    size_t off = 0;

    buf[0] = '\0';
    if (r->ok > 0)
        off += (size_t)snprintf(buf + off, n - off, "%lld ok", r->ok);
    if (r->failed > 0 && off < n)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld failed",
                                off ? ", " : "", r->failed);
    if (r->cancelled > 0 && off < n)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld cancelled",
                                off ? ", " : "", r->cancelled);
    if (off == 0)
        snprintf(buf, n, "none");
    return buf;
}

void push_jobs_table_print(const struct push_job_row *rows, size_t n,
                           FILE *out)
{
    int wid = 3, wq = 5, ws = 5;
    long long ok = 0, failed = 0, cancelled = 0, tasks = 0;
    char ended[96], took[32];
    size_t i;

    for (i = 0; i < n; i++) {
        int l;
        if ((l = (int)strlen(rows[i].id)) > wid)
            wid = l;
        if ((l = (int)strlen(rows[i].queue)) > wq)
            wq = l;
        if ((l = (int)strlen(rows[i].state)) > ws)
            ws = l;
    }
    fprintf(out, "\n%-*s  %-*s  %-*s  %6s  %8s  %s\n", wid, "JOB", wq, "QUEUE",
            ws, "STATE", "TASKS", "TOOK", "TASKS ENDED");
    for (i = 0; i < n; i++) {
        const struct push_job_row *r = &rows[i];
        if (r->run_ms >= 0)
            snprintf(took, sizeof(took), "%.1fs", (double)r->run_ms / 1000.0);
        else
            snprintf(took, sizeof(took), "-");
        fprintf(out, "%-*s  %-*s  %-*s  %6lld  %8s  %s\n", wid, r->id, wq,
                r->queue, ws, r->state, r->tasks, took,
                ended_text(r, ended, sizeof(ended)));
        ok += r->ok;
        failed += r->failed;
        cancelled += r->cancelled;
        tasks += r->tasks;
    }
    fprintf(out, "%zu jobs, %lld tasks: %lld ok, %lld failed, %lld "
                 "cancelled\n", n, tasks, ok, failed, cancelled);
}
