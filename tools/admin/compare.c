/*
 * `llmb compare JOB_A JOB_B [JOB...]`: the main numbers of llm jobs side
 * by side, from each job's aggregate (docs/llm.md "The task result and
 * the job's aggregate"), with each job's difference to the first one,
 * absolute and in percent: a table for people, or with --json one
 * document. A job the coordinator has not aggregated yet is an error.
 * "JOB@<endpoint>/<model>" names one pair of an A/B job (its aggregate's
 * "by" section), and an A/B job alone compares its pairs.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/aggregate.h>
#include <llmb/err.h>

#include "admin.h"

/* The compared numbers: name in --json, row label, aggregate path, stat. */
static const struct metric {
    const char *name, *label, *path, *stat;
} metrics[] = {
    {"requests", "requests", "summary.requests", "sum"},
    {"errors", "errors", "summary.failed", "sum"},
    {"request_throughput", "request throughput (req/s)", "summary.ok",
     "per_s"},
    {"output_throughput", "output throughput (tok/s)",
     "metrics.output_tokens", "per_s"},
    {"goodput", "goodput (req/s)", "summary.good", "per_s"},
    {"ttft_p50_ms", "TTFT p50 (ms)", "metrics.ttft_ms", "p50"},
    {"ttft_p99_ms", "TTFT p99 (ms)", "metrics.ttft_ms", "p99"},
    {"itl_p50_ms", "ITL p50 (ms)", "metrics.itl_ms", "p50"},
    {"itl_p99_ms", "ITL p99 (ms)", "metrics.itl_ms", "p99"},
    {"tpot_p50_ms", "TPOT p50 (ms)", "metrics.tpot_ms", "p50"},
    {"tpot_p99_ms", "TPOT p99 (ms)", "metrics.tpot_ms", "p99"},
    {"e2e_p50_ms", "E2E p50 (ms)", "metrics.e2e_ms", "p50"},
    {"e2e_p99_ms", "E2E p99 (ms)", "metrics.e2e_ms", "p99"},
};
#define NMETRICS (sizeof(metrics) / sizeof(metrics[0]))

int llmb_job_aggregate_read(struct llmb_admin *a, const char *spec,
                            char **queue, char **id, json_t **agg,
                            json_t **fields, char **errstr)
{
    json_t *hash = NULL;
    const char *text, *state;
    int rc;

    *agg = NULL;
    if (fields != NULL)
        *fields = NULL;
    rc = llmb_lookup_job(a, spec, queue, id, errstr);
    if (rc == 0)
        rc = llmb_job_hash_read(a, *queue, *id, spec, &hash, errstr);
    if (rc != 0)
        return rc;
    state = json_string_value(json_object_get(hash, "state"));
    text = json_string_value(json_object_get(hash, "aggregate"));
    if (text == NULL || (*agg = json_loads(text, 0, NULL)) == NULL) {
        *errstr = llmb_xasprintf("job \"%s\" has no aggregate yet (state "
                                 "%s)", spec, state ? state : "unknown");
        json_decref(hash);
        return LLMB_ENOTFOUND;
    }
    if (fields != NULL)
        *fields = hash;
    else
        json_decref(hash);
    return 0;
}

/* A number for the table: "-" when missing. */
static void cell_num(struct llmb_table *t, double v)
{
    char buf[64];

    if (isnan(v))
        llmb_table_cell(t, NULL);
    else
        llmb_table_cell(t, llmb_agg_format(v, buf));
}

static json_t *num_json(double v)
{
    return isnan(v) || isinf(v) ? json_null() : llmb_agg_json_number(v);
}

/* The pairs of agg's "by" section, ", "-separated (caller frees). */
static char *pair_names(const json_t *agg)
{
    struct llmb_buf b;
    const char *k;
    json_t *v;

    llmb_buf_init(&b);
    llmb_buf_appendf(&b, "%s", "");
    json_object_foreach(json_object_get(agg, "by"), k, v)
        llmb_buf_appendf(&b, "%s%s", b.len > 0 ? ", " : "", k);
    return llmb_buf_steal(&b);
}

/* The aggregate of job spec from its `show --json` document doc, with
 * its queue and id, as llmb_job_aggregate_read() gives them from Redis. */
static int shown_aggregate(const json_t *doc, const char *spec, char **queue,
                           char **id, json_t **agg, char **errstr)
{
    const json_t *job = json_object_get(doc, "job");
    json_t *v = json_object_get(job, "aggregate");
    const char *state = json_string_value(json_object_get(job, "state"));

    if (!json_is_object(v) && !json_is_array(v)) {
        *errstr = llmb_xasprintf("job \"%s\" has no aggregate yet (state "
                                 "%s)", spec, state ? state : "unknown");
        return LLMB_ENOTFOUND;
    }
    *agg = json_incref(v);
    *queue = llmb_xstrdup(json_string_value(json_object_get(job, "queue")));
    *id = llmb_xstrdup(json_string_value(json_object_get(job, "id")));
    return 0;
}

/* Reads the aggregate of spec: a job ("ID" or "QUEUE/ID"), or one pair of
 * an A/B job, "JOB@<endpoint>/<model>" (docs/llm.md), from its document
 * in shown (see llmb_view_compare_shown()) or else from Redis. *label
 * names it in the table. */
static int read_one(struct llmb_admin *a, const char *spec,
                    const json_t *shown, char **queue, char **label,
                    json_t **agg, char **errstr)
{
    const char *at = strchr(spec, '@');
    char *job = at != NULL ? llmb_xasprintf("%.*s", (int)(at - spec), spec)
                           : llmb_xstrdup(spec);
    const json_t *doc = json_object_get(shown, job);
    const json_t *fields = json_object_get(doc, "job");
    char *id = NULL;
    json_t *pair;
    bool have = json_is_string(json_object_get(fields, "queue")) &&
                json_is_string(json_object_get(fields, "id"));
    int rc = have ? shown_aggregate(doc, job, queue, &id, agg, errstr)
                  : llmb_job_aggregate_read(a, job, queue, &id, agg, NULL,
                                            errstr);

    free(job);
    if (rc != 0 || at == NULL) {
        *label = id;
        return rc;
    }
    pair = llmb_agg_group(*agg, at + 1);
    if (pair == NULL) {
        char *names = pair_names(*agg);
        *errstr = llmb_xasprintf("job \"%s\" has no pair \"%s\" (%s%s)",
                                 id, at + 1, *names ? "its pairs: " :
                                 "it is no A/B job", names);
        free(names);
        free(id);
        return LLMB_ENOTFOUND;
    }
    json_decref(*agg);
    *agg = pair;
    *label = llmb_xasprintf("%s@%s", id, at + 1);
    free(id);
    return 0;
}

/* The jobs compared: n aggregates with their queue and label. */
struct compared {
    size_t n;
    json_t **aggs;
    char **queues, **ids;
};

static void compared_fini(struct compared *c)
{
    for (size_t j = 0; j < c->n; j++) {
        json_decref(c->aggs[j]);
        free(c->queues[j]);
        free(c->ids[j]);
    }
    free(c->aggs);
    free(c->queues);
    free(c->ids);
    memset(c, 0, sizeof(*c));
}

/* Reads the aggregates of the n specs into *c (compared_fini() it in
 * every case), those of shown from their documents; one A/B job alone
 * gives its pairs. */
static int compared_read(struct llmb_admin *a, char *const *specs, size_t n,
                         const json_t *shown, struct compared *c,
                         char **errstr)
{
    int rc = 0;

    c->n = n;
    c->aggs = llmb_xcalloc(n, sizeof(*c->aggs));
    c->queues = llmb_xcalloc(n, sizeof(*c->queues));
    c->ids = llmb_xcalloc(n, sizeof(*c->ids));
    for (size_t j = 0; j < n && rc == 0; j++)
        rc = read_one(a, specs[j], shown, &c->queues[j], &c->ids[j],
                      &c->aggs[j], errstr);
    if (rc != 0)
        return rc;
    /* One A/B job alone: its pairs side by side. */
    if (n == 1 && json_object_size(json_object_get(c->aggs[0], "by")) > 0) {
        json_t *job = c->aggs[0];
        char *queue = c->queues[0], *id = c->ids[0];
        const char *k;
        json_t *v;
        size_t m = json_object_size(json_object_get(job, "by")), j = 0;
        c->aggs = llmb_xrealloc(c->aggs, m * sizeof(*c->aggs));
        c->queues = llmb_xrealloc(c->queues, m * sizeof(*c->queues));
        c->ids = llmb_xrealloc(c->ids, m * sizeof(*c->ids));
        json_object_foreach(json_object_get(job, "by"), k, v) {
            c->aggs[j] = llmb_agg_group(job, k);
            c->queues[j] = llmb_xstrdup(queue);
            c->ids[j++] = llmb_xasprintf("%s@%s", id, k);
        }
        c->n = m;
        json_decref(job);
        free(queue);
        free(id);
    } else if (n == 1) {
        *errstr = llmb_xasprintf("compare needs two jobs, or one A/B job "
                                 "(\"endpoints\" or \"models\" in its "
                                 "payload) to compare its pairs");
        return LLMB_EINVAL;
    }
    return 0;
}

/* The document of `compare --json`. */
static json_t *compared_json(const struct compared *c)
{
    json_t *doc = json_object(), *jobs = json_array();
    json_t **aggs = c->aggs;

    for (size_t j = 0; j < c->n; j++) {
        json_t *o = json_object(), *m = json_object();
        json_t *d = json_object(), *p = json_object();
        for (size_t k = 0; k < NMETRICS; k++) {
            double v = llmb_agg_stat(aggs[j], metrics[k].path,
                                     metrics[k].stat);
            double b = llmb_agg_stat(aggs[0], metrics[k].path,
                                     metrics[k].stat);
            json_object_set_new(m, metrics[k].name, num_json(v));
            json_object_set_new(d, metrics[k].name, num_json(v - b));
            json_object_set_new(p, metrics[k].name,
                                num_json(b != 0 ? 100.0 * (v - b) / b
                                                : NAN));
        }
        json_object_set_new(o, "job", llmb_json_str(c->ids[j]));
        if (strchr(c->ids[j], '@') != NULL) /* ids hold no '@' */
            json_object_set_new(o, "pair", llmb_json_str(
                strchr(c->ids[j], '@') + 1));
        json_object_set_new(o, "queue", llmb_json_str(c->queues[j]));
        json_object_set_new(o, "metrics", m);
        json_object_set_new(o, "delta", d);
        json_object_set_new(o, "delta_pct", p);
        json_array_append_new(jobs, o);
    }
    json_object_set_new(doc, "baseline", llmb_json_str(c->ids[0]));
    json_object_set_new(doc, "jobs", jobs);
    return doc;
}

int llmb_view_compare(struct llmb_admin *a, char *const *specs, size_t n,
                      json_t **doc, char **errstr)
{
    return llmb_view_compare_shown(a, specs, n, NULL, doc, errstr);
}

int llmb_view_compare_shown(struct llmb_admin *a, char *const *specs,
                            size_t n, const json_t *shown, json_t **doc,
                            char **errstr)
{
    struct compared c;
    int rc;

    memset(&c, 0, sizeof(c));
    rc = compared_read(a, specs, n, shown, &c, errstr);
    *doc = rc == 0 ? compared_json(&c) : NULL;
    compared_fini(&c);
    return rc;
}

/* The peaks of the llm jobs' time series (llmb_timeline_peaks()), one
 * line for them all; none when no job has a series. */
static void print_peaks(FILE *out, json_t *const *aggs, char *const *ids,
                        size_t n)
{
    struct llmb_timeline_peaks p;
    char pt[LLMB_AGG_NUM_LEN], pc[LLMB_AGG_NUM_LEN];
    bool any = false;

    for (size_t j = 0; j < n && !any; j++)
        any = llmb_timeline_peaks(aggs[j], &p);
    if (!any)
        return;
    fputs("\npeak of a timeline bucket (output tok/s, concurrency):", out);
    for (size_t j = 0; j < n; j++) {
        if (llmb_timeline_peaks(aggs[j], &p))
            fprintf(out, "%s %s %s, %s", j > 0 ? ";" : "", ids[j],
                    llmb_agg_format(p.tok_s, pt),
                    llmb_agg_format(p.concurrency, pc));
        else
            fprintf(out, "%s %s -", j > 0 ? ";" : "", ids[j]);
    }
    fputc('\n', out);
}

int llmb_compare_run(struct llmb_admin *a, char **errstr)
{
    struct compared c;
    struct llmb_table *t = NULL;
    json_t **aggs;
    char **ids;
    size_t n;
    int rc;

    memset(&c, 0, sizeof(c));
    rc = compared_read(a, a->args, a->nargs, NULL, &c, errstr);
    if (rc != 0)
        goto out;
    if (a->cfg->json) {
        llmb_output_json(a, compared_json(&c));
        goto out;
    }
    aggs = c.aggs;
    ids = c.ids;
    n = c.n;

    t = llmb_table_new();
    llmb_table_column(t, "METRIC", false);
    for (size_t j = 0; j < n; j++) {
        llmb_table_column(t, ids[j], true);
        if (j > 0) {
            char *h = llmb_xasprintf("DELTA %zu", j + 1);
            llmb_table_column(t, h, true);
            llmb_table_column(t, "%", true);
            free(h);
        }
    }
    for (size_t k = 0; k < NMETRICS; k++) {
        double b = llmb_agg_stat(aggs[0], metrics[k].path, metrics[k].stat);
        llmb_table_cell(t, metrics[k].label);
        for (size_t j = 0; j < n; j++) {
            double v = llmb_agg_stat(aggs[j], metrics[k].path,
                                     metrics[k].stat);
            char buf[64];
            cell_num(t, v);
            if (j == 0)
                continue;
            if (isnan(v - b)) {
                llmb_table_cell(t, NULL);
                llmb_table_cell(t, NULL);
                continue;
            }
            llmb_table_cellf(t, "%s%s", v - b > 0 ? "+" : "",
                             llmb_agg_format(v - b, buf));
            if (b != 0)
                llmb_table_cellf(t, "%+.1f%%", 100.0 * (v - b) / b);
            else
                llmb_table_cell(t, NULL);
        }
    }
    llmb_table_print(t, a->out);
    print_peaks(a->out, aggs, ids, n);
    fprintf(a->out, "\nDELTA N and %% are job N minus the first job (%s); "
            "\"-\" where a job has no such number.\n", ids[0]);

out:
    llmb_table_free(t);
    compared_fini(&c);
    return rc;
}
