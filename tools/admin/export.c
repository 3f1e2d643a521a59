/*
 * `llmb export JOB`: every request of an llm job, as its records say
 * (records.c keeps the current claim of each task, so a request appears
 * once), written as JSON lines, CSV or one document shaped like vLLM's
 * benchmark result (docs/cli.md "export"). JSON lines and CSV stream a
 * page of chunks at a time; the vLLM document takes its summary from the
 * job's aggregate and its per-request arrays from one pass over the
 * records each, so memory stays bounded there too.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llmb/aggregate.h>
#include <llmb/err.h>

#include "admin.h"

/* The names of a record line's columns, in order (docs/llm.md). */
static const char *const col_names[LLMB_RECORD_COLS] = {
    "n", "start_ms", "end_ms", "ttft_ms", "itl_ms", "tpot_ms", "gaps",
    "gap_max_ms", "input_tokens", "output_tokens", "status", "class",
    "attempts", "error", "itls_ms",
};
/* How each column is written in JSON: i integer, r real, s string, g the
 * gaps (record_itls: microseconds joined by commas) as an array of ms. */
static const char col_types[LLMB_RECORD_COLS + 1] = "irrrrririiisisg";
#define COL_ITLS 14

/* Calls fn for each gap of a record's itls column (us), in order; stops
 * at a malformed one. */
static void itls_each(const char *s, void (*fn)(double us, void *arg),
                      void *arg)
{
    char *end;

    while (*s != '\0') {
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s || (*end != ',' && *end != '\0'))
            return;
        fn((double)v, arg);
        s = *end == ',' ? end + 1 : end;
    }
}

static void itl_json(double us, void *arg)
{
    json_array_append_new(arg, json_real(us / 1000.0));
}

enum format { FMT_JSONL, FMT_CSV, FMT_VLLM };

struct export {
    enum format fmt;
    FILE *out;
    long long n;     /* records written */
    const char *arr; /* vllm: the array being written */
    const char *pair; /* "<endpoint>/<model>": its records only; NULL all */
};

int llmb_export_check(struct llmb_admin *a, char **errstr)
{
    const char *f = a->cfg->format;

    if (f == NULL || strcmp(f, "jsonl") == 0 || strcmp(f, "csv") == 0 ||
        strcmp(f, "vllm") == 0)
        return 0;
    *errstr = llmb_xasprintf("--format must be jsonl, csv or vllm, got "
                             "\"%s\"", f);
    return LLMB_EINVAL;
}

/* A JSON value of column text s of type t: null when empty, else the
 * number it holds (a string when it holds none). */
static json_t *col_json(const char *s, char t)
{
    char *end;

    if (*s == '\0')
        return json_null();
    if (t == 'g') {
        json_t *a = json_array();
        itls_each(s, itl_json, a);
        return a;
    }
    if (t == 'i') {
        long long v = strtoll(s, &end, 10);
        if (*end == '\0')
            return json_integer(v);
    } else if (t == 'r') {
        double v = strtod(s, &end);
        if (*end == '\0' && isfinite(v))
            return json_real(v);
    }
    return llmb_json_str(s);
}

static char *request_id(const struct llmb_record *r)
{
    return llmb_xasprintf("%s:%s:%s", r->job, r->task, r->col[0]);
}

static int jsonl_write(const struct llmb_record *r, struct export *x)
{
    json_t *o = json_object();
    char *rid = request_id(r);

    json_object_set_new(o, "request_id", llmb_json_str(rid));
    json_object_set_new(o, "job", llmb_json_str(r->job));
    json_object_set_new(o, "task", col_json(r->task, 'i'));
    json_object_set_new(o, "attempt", col_json(r->attempt, 'i'));
    json_object_set_new(o, "worker", llmb_json_str(r->worker));
    json_object_set_new(o, "endpoint", llmb_json_str(r->endpoint));
    json_object_set_new(o, "model", llmb_json_str(r->model));
    json_object_set_new(o, "task_start_ms", col_json(r->task_start_ms, 'i'));
    for (size_t i = 0; i < LLMB_RECORD_COLS; i++)
        json_object_set_new(o, col_names[i], col_json(r->col[i],
                                                      col_types[i]));
    json_dumpf(o, x->out, JSON_COMPACT | JSON_PRESERVE_ORDER |
                              JSON_REAL_PRECISION(15));
    fputc('\n', x->out);
    json_decref(o);
    free(rid);
    return 0;
}

/* Writes s as one CSV field (RFC 4180): quoted, with quotes doubled, when
 * it holds a comma, a quote, CR or LF. */
static void csv_field(FILE *out, const char *s, bool last)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, out);
    } else {
        fputc('"', out);
        for (; *s != '\0'; s++) {
            if (*s == '"')
                fputc('"', out);
            fputc(*s, out);
        }
        fputc('"', out);
    }
    fputs(last ? "\r\n" : ",", out);
}

static void csv_header(FILE *out)
{
    fputs("request_id,job,task,attempt,worker,endpoint,model,"
          "task_start_ms", out);
    for (size_t i = 0; i < LLMB_RECORD_COLS; i++)
        fprintf(out, ",%s", col_names[i]);
    fputs("\r\n", out);
}

struct itls_out {
    FILE *out;
    const char *sep; /* between two gaps */
    bool seconds;    /* gaps in s (6 decimals), else in ms (3) */
    size_t n;
};

static void itl_write(double us, void *arg)
{
    struct itls_out *o = arg;

    fputs(o->n++ > 0 ? o->sep : "", o->out);
    if (o->seconds)
        fprintf(o->out, "%.6f", us / 1e6);
    else
        fprintf(o->out, "%.3f", us / 1e3);
}

/* The last CSV field: the gaps in ms, separated by spaces. */
static void itls_csv(FILE *out, const char *s)
{
    struct itls_out o = {out, " ", false, 0};

    itls_each(s, itl_write, &o);
    fputs("\r\n", out);
}

static int csv_write(const struct llmb_record *r, struct export *x)
{
    char *rid = request_id(r);

    csv_field(x->out, rid, false);
    csv_field(x->out, r->job, false);
    csv_field(x->out, r->task, false);
    csv_field(x->out, r->attempt, false);
    csv_field(x->out, r->worker, false);
    csv_field(x->out, r->endpoint, false);
    csv_field(x->out, r->model, false);
    csv_field(x->out, r->task_start_ms, false);
    for (size_t i = 0; i < COL_ITLS; i++)
        csv_field(x->out, r->col[i], false);
    itls_csv(x->out, r->col[COL_ITLS]);
    free(rid);
    return 0;
}

/* One element of the vLLM array x->arr for record r. */
static int vllm_write(const struct llmb_record *r, struct export *x)
{
    bool ok = strcmp(r->col[11], "ok") == 0;
    const char *arr = x->arr;
    json_t *v = NULL;

    fputs(x->n > 0 ? ", " : "", x->out);
    if (strcmp(arr, "input_lens") == 0) {
        fprintf(x->out, "%lld", ok ? atoll(r->col[8]) : 0LL);
    } else if (strcmp(arr, "output_lens") == 0) {
        fprintf(x->out, "%lld", ok ? atoll(r->col[9]) : 0LL);
    } else if (strcmp(arr, "ttfts") == 0) {
        /* seconds, as vLLM; 0 for a request without a first token */
        fprintf(x->out, "%.6f", ok ? atof(r->col[3]) / 1000.0 : 0.0);
    } else if (strcmp(arr, "itls") == 0) {
        /* seconds, as vLLM; [] when the job did not ask for record_itls */
        struct itls_out o = {x->out, ", ", true, 0};
        fputc('[', x->out);
        if (ok)
            itls_each(r->col[COL_ITLS], itl_write, &o);
        fputc(']', x->out);
    } else {
        char *e = ok ? llmb_xstrdup("")
                     : llmb_xasprintf("%s%s%s", r->col[11],
                                      *r->col[13] ? ": " : "", r->col[13]);
        v = llmb_json_str(e);
        json_dumpf(v, x->out, JSON_ENCODE_ANY);
        json_decref(v);
        free(e);
    }
    return 0;
}

/* True when r belongs to pair "<endpoint>/<model>" (endpoint names hold
 * no '/'; model names may). */
static bool in_pair(const struct llmb_record *r, const char *pair)
{
    size_t el = strlen(r->endpoint);

    return strncmp(pair, r->endpoint, el) == 0 && pair[el] == '/' &&
           strcmp(pair + el + 1, r->model) == 0;
}

static int record_write(const struct llmb_record *r, void *ctx)
{
    struct export *x = ctx;
    int rc;

    if (x->pair != NULL && !in_pair(r, x->pair))
        return 0;
    rc = x->fmt == FMT_JSONL ? jsonl_write(r, x)
         : x->fmt == FMT_CSV ? csv_write(r, x)
                             : vllm_write(r, x);

    x->n++;
    return rc;
}

/* Sets key of o to the number at the aggregate's path and stat, scaled;
 * leaves it out when the aggregate has none. */
static void vllm_num(json_t *o, const char *key, const json_t *agg,
                     const char *path, const char *stat, double scale)
{
    double v = llmb_agg_stat(agg, path, stat);

    if (!isnan(v))
        json_object_set_new(o, key, json_real(v * scale));
}

static void vllm_int(json_t *o, const char *key, const json_t *agg,
                     const char *path, const char *stat)
{
    double v = llmb_agg_stat(agg, path, stat);

    if (!isnan(v))
        json_object_set_new(o, key, json_integer((json_int_t)llround(v)));
}

/* The scalar part of the vLLM document, from the job hash and aggregate. */
static json_t *vllm_summary(const json_t *agg, const json_t *fields)
{
    static const char *const lat[][2] = {
        {"ttft", "metrics.ttft_ms"}, {"tpot", "metrics.tpot_ms"},
        {"itl", "metrics.itl_ms"}, {"e2el", "metrics.e2e_ms"},
    };
    json_t *o = json_object();
    json_t *payload = json_loads(
        json_string_value(json_object_get(fields, "payload")) ?: "", 0, NULL);
    const char *started = json_string_value(json_object_get(fields,
                                                            "started_ms"));
    time_t t = started != NULL ? (time_t)(atoll(started) / 1000) : 0;
    double in_s, out_s;
    char date[32];
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%Y%m%d-%H%M%S", &tm);
    json_object_set_new(o, "date", json_string(date));
    json_object_set_new(o, "backend", json_string("openai-chat"));
    json_object_set(o, "model_id", json_object_get(payload, "model")
                                       ?: json_null());
    vllm_int(o, "num_prompts", agg, "summary.requests", "sum");
    json_object_set_new(o, "duration", json_real(
        (double)json_integer_value(json_object_get(agg, "measured_ms") ?:
                                   json_object_get(agg, "run_ms")) /
        1000.0));
    vllm_int(o, "completed", agg, "summary.ok", "sum");
    vllm_int(o, "total_input_tokens", agg, "summary.input_tokens", "sum");
    vllm_int(o, "total_output_tokens", agg, "summary.output_tokens", "sum");
    vllm_num(o, "request_throughput", agg, "summary.ok", "per_s", 1);
    vllm_num(o, "request_goodput", agg, "summary.good", "per_s", 1);
    vllm_num(o, "output_throughput", agg, "metrics.output_tokens", "per_s",
             1);
    in_s = llmb_agg_stat(agg, "metrics.input_tokens", "per_s");
    out_s = llmb_agg_stat(agg, "metrics.output_tokens", "per_s");
    if (!isnan(in_s) && !isnan(out_s))
        json_object_set_new(o, "total_token_throughput",
                            json_real(in_s + out_s));
    for (size_t i = 0; i < sizeof(lat) / sizeof(lat[0]); i++) {
        char *k;
        k = llmb_xasprintf("mean_%s_ms", lat[i][0]);
        vllm_num(o, k, agg, lat[i][1], "mean", 1);
        free(k);
        k = llmb_xasprintf("median_%s_ms", lat[i][0]);
        vllm_num(o, k, agg, lat[i][1], "p50", 1);
        free(k);
        k = llmb_xasprintf("p99_%s_ms", lat[i][0]);
        vllm_num(o, k, agg, lat[i][1], "p99", 1);
        free(k);
    }
    json_decref(payload);
    return o;
}

/* Writes the vLLM document: the summary, then each per-request array from
 * a pass over the records. */
static int vllm_export(struct llmb_admin *a, struct export *x,
                       const char *queue, const char *id, const json_t *agg,
                       const json_t *fields, long long *dropped,
                       char **errstr)
{
    static const char *const arrays[] = {
        "input_lens", "output_lens", "ttfts", "itls", "errors",
    };
    json_t *sum = vllm_summary(agg, fields);
    char *text;
    size_t len;
    long long count = -1;
    int rc = 0;

    if (x->pair != NULL && strchr(x->pair, '/') != NULL) /* its model */
        json_object_set_new(sum, "model_id",
                            json_string(strchr(x->pair, '/') + 1));
    text = json_dumps(sum, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                               JSON_REAL_PRECISION(15));
    len = strlen(text);

    /* The summary without its closing "\n}", then the arrays. */
    while (len > 0 && text[len - 1] != '}')
        len--;
    if (len > 0)
        len--;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        len--;
    fwrite(text, 1, len, x->out);
    for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
        x->arr = arrays[i];
        x->n = 0;
        fprintf(x->out, ",\n  \"%s\": [", arrays[i]);
        rc = llmb_records_each(a, queue, id, record_write, x, dropped,
                               errstr);
        if (rc != 0)
            break;
        fputs("]", x->out);
        if (count >= 0 && count != x->n) {
            *errstr = llmb_xasprintf("the records of job \"%s\" changed "
                                     "during the export; run it again", id);
            rc = LLMB_EREDIS;
            break;
        }
        count = x->n;
    }
    if (rc == 0)
        fputs("\n}\n", x->out);
    free(text);
    json_decref(sum);
    return rc;
}

int llmb_export_run(struct llmb_admin *a, char **errstr)
{
    const char *f = a->cfg->format ? a->cfg->format : "jsonl";
    struct export x = {.fmt = strcmp(f, "csv") == 0    ? FMT_CSV
                              : strcmp(f, "vllm") == 0 ? FMT_VLLM
                                                       : FMT_JSONL};
    char *queue = NULL, *id = NULL, *job = NULL;
    const char *at = strchr(a->args[0], '@');
    json_t *agg = NULL, *fields = NULL;
    long long dropped = 0;
    int rc;

    /* JOB@<endpoint>/<model>: one pair of an A/B job (docs/llm.md) */
    job = at != NULL ? llmb_xasprintf("%.*s", (int)(at - a->args[0]),
                                      a->args[0])
                     : llmb_xstrdup(a->args[0]);
    x.pair = at != NULL ? at + 1 : NULL;
    if (x.fmt == FMT_VLLM || x.pair != NULL)
        rc = llmb_job_aggregate_read(a, job, &queue, &id, &agg, &fields,
                                     errstr);
    else
        rc = llmb_lookup_job(a, job, &queue, &id, errstr);
    if (rc != 0)
        goto out;
    if (x.pair != NULL) {
        json_t *g = llmb_agg_group(agg, x.pair);
        if (g == NULL) {
            *errstr = llmb_xasprintf("job \"%s\" has no pair \"%s\" (see "
                                     "llmb show %s)", id, x.pair, id);
            rc = LLMB_ENOTFOUND;
            goto out;
        }
        json_decref(agg);
        agg = g;
    }
    x.out = a->out;
    if (a->cfg->output != NULL && strcmp(a->cfg->output, "-") != 0) {
        x.out = fopen(a->cfg->output, "w");
        if (x.out == NULL) {
            *errstr = llmb_xasprintf("cannot write %s: %s", a->cfg->output,
                                     strerror(errno));
            rc = LLMB_EIO;
            goto out;
        }
    }
    if (x.fmt == FMT_VLLM) {
        rc = vllm_export(a, &x, queue, id, agg, fields, &dropped, errstr);
    } else {
        if (x.fmt == FMT_CSV)
            csv_header(x.out);
        rc = llmb_records_each(a, queue, id, record_write, &x, &dropped,
                               errstr);
    }
    if (rc == 0 && dropped > 0)
        fprintf(stderr, "llmb: warning: %lld record chunks of job \"%s\" "
                "were dropped at max_record_bytes: the export misses their "
                "requests\n", dropped, id);
    if (rc == 0 && x.n == 0)
        fprintf(stderr, "llmb: warning: job \"%s\" has no records (only "
                "llm jobs keep them)\n", id);
    if (x.out != a->out) {
        if ((ferror(x.out) | fclose(x.out)) != 0 && rc == 0) {
            *errstr = llmb_xasprintf("cannot write %s: %s", a->cfg->output,
                                     strerror(errno));
            rc = LLMB_EIO;
        }
    } else if (fflush(x.out) != 0 && rc == 0) {
        *errstr = llmb_xasprintf("cannot write stdout: %s", strerror(errno));
        rc = LLMB_EIO;
    }

out:
    json_decref(agg);
    json_decref(fields);
    free(job);
    free(queue);
    free(id);
    return rc;
}
