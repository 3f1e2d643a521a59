/*
 * `llmb show JOB`: everything Redis knows of one job, read with the
 * function llmb_job (lua/15-job.lua): the spec, state, counters, times
 * and aggregate, and each task's state, attempt, worker, error and result
 * (the task fields "<i>:state", ...). A task without fields was never
 * claimed: it is pending (delayed when its job was pushed with a delay),
 * or cancelled once its job has ended. After a retry, a task of a fan-out
 * job at or past the job's `next` that did not complete waits again,
 * whatever its field says of the earlier run (see lua/05-lifecycle.lua).
 * The states of all tasks are counted, a thousand per call, pipelined;
 * only the first --tasks are listed one by one.
 *
 * The text view prints the aggregate as tables, one row per field with
 * the statistics of its kind (docs/coordinator.md), numbers rounded by
 * llmb_agg_format(); --json gives the stored document as it is.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/aggregate.h>
#include <llmb/err.h>
#include <llmb/job.h>
#include <llmb/jobfields.h>
#include <llmb/keys.h>

#include "admin.h"

/* Payloads longer than this are cut in the text view (--json has all). */
#define PAYLOAD_SHOWN 4096
/* Task states counted per call of llmb_job. */
#define STATES_PER_CALL LLMB_JOB_READ_MAX
/* Task fields listed per task, in this order. */
enum { TF_STATE, TF_ATTEMPT, TF_WORKER, TF_ERROR, TF_RESULT, TF_COUNT };
static const char *const task_fields[TF_COUNT] = {
    "state", "attempt", "worker", "error", "result",
};

/* One job as read from Redis. */
struct job {
    char *queue, *id;
    json_t *hash;        /* field -> string, as stored */
    long long ntasks;    /* the job's task count */
    json_t *states;      /* task state -> count, over every task */
    long long toff;      /* the first task listed one by one */
    size_t nshown;       /* tasks listed one by one, from toff */
    char *(*shown)[TF_COUNT]; /* nshown rows of task fields (NULL = none) */
};

static const char *hget(const struct job *j, const char *field)
{
    return json_string_value(json_object_get(j->hash, field));
}

static long long hget_ll(const struct job *j, const char *field)
{
    const char *s = hget(j, field);
    return s ? strtoll(s, NULL, 10) : 0;
}

/* The state of a task that has no fields (never claimed): see above. */
static const char *unclaimed_state(const struct job *j)
{
    const char *st = hget(j, "state");

    if (st == NULL || llmb_job_state_final(st))
        return "cancelled";
    if (hget(j, "delay_s") != NULL && strcmp(st, "pending") == 0)
        return "delayed";
    return "pending";
}

static void count_state(json_t *states, const char *st)
{
    json_t *c = json_object_get(states, st);
    if (c != NULL)
        json_integer_set(c, json_integer_value(c) + 1);
    else
        json_object_set_new(states, st, json_integer(1));
}

/* The state of task k whose state field is `field` (NULL when absent):
 * the field, unless the task waits behind its job's cursor again after a
 * retry (fan-out, k >= next, not completed) or was cancelled there: then,
 * as for a task without fields, `unclaimed`. */
static const char *task_state(const struct job *j, long long k,
                              const char *field, const char *unclaimed)
{
    if (field == NULL)
        return unclaimed;
    if (j->ntasks > 1 && hget_ll(j, "version") > 0 && k >= hget_ll(j, "next") &&
        strcmp(field, "completed") != 0)
        return unclaimed;
    return field;
}

int llmb_job_hash_read(struct llmb_admin *a, const char *queue,
                       const char *id, const char *spec, json_t **hash,
                       char **errstr)
{
    char *key = llmb_key_queue(a->prefix, queue);
    struct llmb_conn *jc = llmb_cluster_conn_for_key(a->conn, key);
    redisReply *r = jc != NULL ? llmb_job_fields_read(jc, key, id) : NULL;
    int rc = llmb_reply_check(r, a->conn, errstr);

    *hash = NULL;
    if (rc != 0)
        goto out;
    *hash = json_object();
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements &&
                       i < llmb_job_nfields;
         i++) {
        const char *v = llmb_reply_str(r->element[i]);
        if (v != NULL)
            json_object_set_new(*hash, llmb_job_fields[i].name,
                                llmb_json_str(v));
    }
    if (json_object_size(*hash) == 0) {
        json_decref(*hash);
        *hash = NULL;
        *errstr = llmb_xasprintf("job \"%s\" not found", spec);
        rc = LLMB_ENOTFOUND;
    }

out:
    if (r != NULL)
        freeReplyObject(r);
    free(key);
    return rc;
}

/* Reads the job's own fields into j->hash and its task count. Returns as
 * llmb_job_hash_read(). */
static int read_hash(struct llmb_admin *a, struct job *j, const char *spec,
                     char **errstr)
{
    int rc = llmb_job_hash_read(a, j->queue, j->id, spec, &j->hash, errstr);

    if (rc != 0)
        return rc;
    j->ntasks = hget_ll(j, "tasks");
    if (j->ntasks < 0)
        j->ntasks = 0;
    return 0;
}

/* Counts the states of every task and reads the fields of `want` of
 * them from task j->toff on, in one pipeline. */
static int read_tasks(struct llmb_admin *a, struct job *j, long long want,
                      char **errstr)
{
    char *key = llmb_key_queue(a->prefix, j->queue);
    const char *unclaimed = unclaimed_state(j);
    struct llmb_batch b;
    size_t nsum = 0;
    int rc;

    llmb_batch_init(&b);
    for (long long i = 0; i < j->ntasks; i += STATES_PER_CALL) {
        struct llmb_strlist cmd = {0};
        long long end = i + STATES_PER_CALL < j->ntasks
                            ? i + STATES_PER_CALL
                            : j->ntasks;
        llmb_job_read_cmd(&cmd, key, j->id);
        for (long long k = i; k < end; k++) {
            char *f = llmb_xasprintf("%lld:state", k);
            llmb_strlist_push(&cmd, f);
            free(f);
        }
        llmb_batch_add_list(&b, &cmd);
        llmb_strlist_clear(&cmd);
        nsum++;
    }
    if (j->toff < j->ntasks)
        j->nshown = (size_t)(j->ntasks - j->toff < want ? j->ntasks - j->toff
                                                        : want);
    for (size_t i = 0; i < j->nshown; i++) {
        struct llmb_strlist cmd = {0};
        llmb_job_read_cmd(&cmd, key, j->id);
        for (size_t f = 0; f < TF_COUNT; f++) {
            char *name = llmb_xasprintf("%lld:%s", j->toff + (long long)i,
                                        task_fields[f]);
            llmb_strlist_push(&cmd, name);
            free(name);
        }
        llmb_batch_add_list(&b, &cmd);
        llmb_strlist_clear(&cmd);
    }
    rc = llmb_batch_run(&b, a->conn, errstr);
    if (rc != 0)
        goto out;

    j->states = json_object();
    for (size_t i = 0; i < nsum; i++) {
        const redisReply *r = b.replies[i];
        rc = llmb_reply_check(r, a->conn, errstr);
        if (rc != 0)
            goto out;
        for (size_t k = 0; r->type == REDIS_REPLY_ARRAY && k < r->elements;
             k++) {
            const char *st = llmb_reply_str(r->element[k]);
            long long idx = (long long)i * STATES_PER_CALL + (long long)k;
            count_state(j->states, task_state(j, idx, st, unclaimed));
        }
    }
    j->shown = llmb_xcalloc(j->nshown ? j->nshown : 1, sizeof(*j->shown));
    for (size_t i = 0; i < j->nshown; i++) {
        const redisReply *r = b.replies[nsum + i];
        if (r->type != REDIS_REPLY_ARRAY || r->elements != TF_COUNT)
            continue;
        for (size_t f = 0; f < TF_COUNT; f++) {
            const char *v = llmb_reply_str(r->element[f]);
            j->shown[i][f] = v ? llmb_xstrdup(v) : NULL;
        }
        const char *st = task_state(j, j->toff + (long long)i,
                                    j->shown[i][TF_STATE], unclaimed);
        if (st != j->shown[i][TF_STATE]) {
            free(j->shown[i][TF_STATE]);
            j->shown[i][TF_STATE] = llmb_xstrdup(st);
        }
    }

out:
    llmb_batch_fini(&b);
    free(key);
    return rc;
}

static void job_fini(struct job *j)
{
    for (size_t i = 0; j->shown != NULL && i < j->nshown; i++)
        for (size_t f = 0; f < TF_COUNT; f++)
            free(j->shown[i][f]);
    free(j->shown);
    json_decref(j->hash);
    json_decref(j->states);
    free(j->queue);
    free(j->id);
}

static json_t *field_json(enum llmb_field_kind kind, const char *v)
{
    switch (kind) {
    case LLMB_FK_STR:
        return llmb_json_str(v);
    case LLMB_FK_INT:
        return llmb_json_int_or_null(v);
    case LLMB_FK_COUNT:
        return v ? llmb_json_int_or_null(v) : json_integer(0);
    case LLMB_FK_NUM:
        return v ? llmb_json_scalar(v) : json_null();
    case LLMB_FK_JSON:
        return llmb_json_text(v);
    case LLMB_FK_BOOL:
        return json_boolean(v != NULL && strcmp(v, "1") == 0);
    }
    return json_null();
}

/* The document of `show --json`. */
static json_t *job_json(const struct job *j, int64_t now)
{
    json_t *doc = json_object(), *o = json_object(), *arr = json_array();

    for (size_t i = 0; i < llmb_job_nfields; i++)
        json_object_set_new(o, llmb_job_fields[i].name,
                            field_json(llmb_job_fields[i].kind,
                                       hget(j, llmb_job_fields[i].name)));
    json_object_set_new(o, "queue", llmb_json_str(j->queue));
    json_object_set_new(doc, "job", o);
    json_object_set(doc, "task_states", j->states);
    json_object_set_new(doc, "tasks_total", json_integer(j->ntasks));
    json_object_set_new(doc, "tasks_shown",
                        json_integer((json_int_t)j->nshown));
    json_object_set_new(doc, "task_offset", json_integer(j->toff));
    for (size_t i = 0; i < j->nshown; i++) {
        json_t *t = json_object();
        json_object_set_new(t, "index",
                            json_integer(j->toff + (json_int_t)i));
        json_object_set_new(t, "state", llmb_json_str(j->shown[i][TF_STATE]));
        json_object_set_new(t, "attempt",
                            j->shown[i][TF_ATTEMPT]
                                ? llmb_json_int_or_null(j->shown[i][TF_ATTEMPT])
                                : json_integer(0));
        json_object_set_new(t, "worker", llmb_json_str(j->shown[i][TF_WORKER]));
        json_object_set_new(t, "error", llmb_json_str(j->shown[i][TF_ERROR]));
        json_object_set_new(t, "result", llmb_json_text(j->shown[i][TF_RESULT]));
        json_array_append_new(arr, t);
    }
    json_object_set_new(doc, "tasks", arr);
    json_object_set_new(doc, "now_ms", json_integer(now));
    return doc;
}

/* One "label  value" line of the text view; nothing when value is NULL. */
static void line(FILE *out, const char *label, const char *value)
{
    if (value != NULL && *value != '\0')
        fprintf(out, "%-10s %s\n", label, value);
}

static void line_time(FILE *out, const char *label, const struct job *j,
                      const char *field, int64_t now)
{
    char buf[LLMB_HUMAN_LEN];
    long long ms = hget_ll(j, field);
    if (ms > 0)
        line(out, label, llmb_human_time(now, ms, buf));
}

/* Prints JSON text indented, or the text itself when it is not JSON; cut
 * at max bytes when max > 0. */
static void print_json_text(FILE *out, const char *text, size_t max)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    char *s = v ? json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;
    const char *p = s ? s : text;
    size_t len = strlen(p);

    if (max > 0 && len > max) {
        fprintf(out, "%.*s\n... (%zu bytes in all; --json shows all)\n",
                (int)max, p, len);
    } else {
        fprintf(out, "%s\n", p);
    }
    free(s);
    json_decref(v);
}

/* Adds the cell of statistic `stat` of field f (rounded), or "-". */
static void stat_cell(struct llmb_table *t, const json_t *f, const char *stat)
{
    const json_t *v = json_object_get(f, stat);
    char buf[LLMB_AGG_NUM_LEN];

    llmb_table_cell(t, json_is_number(v)
                           ? llmb_agg_format(json_number_value(v), buf)
                           : NULL);
}

/* The kind of field f of path: its "kind", or for an aggregate before
 * version 2 (no kinds) the one its name and values suggest. */
static enum llmb_agg_kind field_kind(const char *path, const json_t *f)
{
    enum llmb_agg_kind k;
    const char *name = json_string_value(json_object_get(f, "kind"));

    if (name != NULL && llmb_agg_kind_parse(name, &k) == 0)
        return k;
    if (json_is_object(json_object_get(f, "values")))
        return LLMB_AGG_LABEL;
    return llmb_agg_kind_infer(path, JSON_REAL);
}

/* "true 12 (12%), false 88" of a flag, "200 2480, 429 20" of a label. */
static char *values_text(enum llmb_agg_kind kind, const json_t *f)
{
    struct llmb_buf b;
    char n[LLMB_AGG_NUM_LEN], share[LLMB_AGG_NUM_LEN], no[LLMB_AGG_NUM_LEN];
    const char *k;
    json_t *v;

    llmb_buf_init(&b);
    if (kind == LLMB_AGG_FLAG) {
        double count = json_number_value(json_object_get(f, "count"));
        double yes = json_number_value(json_object_get(f, "true"));
        llmb_buf_appendf(&b, "true %s (%s%%), false %s",
                         llmb_agg_format(yes, n),
                         llmb_agg_format(count > 0 ? 100.0 * yes / count : 0,
                                         share),
                         llmb_agg_format(count - yes, no));
    } else {
        json_object_foreach(json_object_get(f, "values"), k, v)
            llmb_buf_appendf(&b, "%s%s %lld", b.len ? ", " : "", k,
                             (long long)json_integer_value(v));
        if (json_integer_value(json_object_get(f, "other")) > 0)
            llmb_buf_appendf(&b, ", other %lld",
                             (long long)json_integer_value(
                                 json_object_get(f, "other")));
    }
    llmb_buf_append(&b, "", 1);
    return llmb_buf_steal(&b);
}

/* An A/B job's pairs (its aggregate's "by" section, docs/llm.md): one
 * row each with its main numbers, from the same merged histograms. */
static void print_pairs(FILE *out, const json_t *agg)
{
    static const struct {
        const char *head, *path, *stat;
    } cols[] = {
        {"REQUESTS", "summary.requests", "sum"},
        {"ERRORS", "summary.failed", "sum"},
        {"REQ/S", "summary.ok", "per_s"},
        {"OUT TOK/S", "metrics.output_tokens", "per_s"},
        {"TTFT P50", "metrics.ttft_ms", "p50"},
        {"TTFT P99", "metrics.ttft_ms", "p99"},
        {"ITL P50", "metrics.itl_ms", "p50"},
        {"ITL P99", "metrics.itl_ms", "p99"},
        {"TPOT P50", "metrics.tpot_ms", "p50"},
        {"TPOT P99", "metrics.tpot_ms", "p99"},
        {"E2E P99", "metrics.e2e_ms", "p99"},
    };
    const json_t *by = json_object_get(agg, "by");
    struct llmb_table *t;
    const char *name;
    json_t *g;

    if (json_object_size(by) == 0)
        return;
    t = llmb_table_new();
    llmb_table_column(t, "ENDPOINT/MODEL", false);
    llmb_table_column(t, "TASKS", true);
    for (size_t i = 0; i < sizeof(cols) / sizeof(*cols); i++)
        llmb_table_column(t, cols[i].head, true);
    json_object_foreach((json_t *)by, name, g) {
        char buf[LLMB_AGG_NUM_LEN];
        llmb_table_cell(t, name);
        llmb_table_cellf(t, "%lld", (long long)json_integer_value(
                                        json_object_get(g, "results")));
        for (size_t i = 0; i < sizeof(cols) / sizeof(*cols); i++) {
            double v = llmb_agg_stat(g, cols[i].path, cols[i].stat);
            llmb_table_cell(t, isnan(v) ? NULL : llmb_agg_format(v, buf));
        }
    }
    fputs("\nby endpoint/model (latencies in ms; llmb compare JOB puts "
          "them side by side):\n", out);
    llmb_table_print(t, out);
    llmb_table_free(t);
}

bool llmb_timeline_peaks(const json_t *agg, struct llmb_timeline_peaks *p)
{
    const json_t *tl = json_object_get(agg, "timeline");
    const json_t *v;
    size_t i;

    memset(p, 0, sizeof(*p));
    p->width_ms = (long long)json_integer_value(json_object_get(tl,
                                                                "width_ms"));
    if (!json_is_object(tl) || p->width_ms <= 0)
        return false;
    p->refused = (long long)json_integer_value(json_object_get(tl,
                                                               "refused"));
    p->buckets = json_array_size(json_object_get(tl, "output_tokens"));
    json_array_foreach(json_object_get(tl, "output_tokens"), i, v)
        if (json_number_value(v) > p->tok_s)
            p->tok_s = json_number_value(v);
    p->tok_s = p->tok_s * 1000.0 / (double)p->width_ms;
    json_array_foreach(json_object_get(tl, "concurrency"), i, v)
        if (json_number_value(v) > p->concurrency)
            p->concurrency = json_number_value(v);
    return true;
}

/* One line of an llm job's time series (llmb_timeline_peaks()); the
 * series itself is for --json, the web UI and reports. Nothing without
 * one. */
static void print_timeline(FILE *out, const json_t *agg)
{
    struct llmb_timeline_peaks p;
    char d[LLMB_HUMAN_LEN], pt[LLMB_AGG_NUM_LEN], pc[LLMB_AGG_NUM_LEN];

    if (!llmb_timeline_peaks(agg, &p))
        return;
    fprintf(out, "timeline: %zu buckets of %s, peak %s output tok/s, peak "
            "concurrency %s", p.buckets, llmb_human_duration(p.width_ms, d),
            llmb_agg_format(p.tok_s, pt), llmb_agg_format(p.concurrency, pc));
    if (p.refused > 0)
        fprintf(out, ", %lld series left out", p.refused);
    fputs(" (--json has the series)\n", out);
}

/* The aggregate as tables: numbers (durations, gauges, counts), then
 * flags and labels. An aggregate that is not JSON is printed as it is. */
static void print_aggregate(FILE *out, const char *text, const char *when,
                            const char *payload_text)
{
    json_t *agg = json_loads(text, 0, NULL);
    json_t *payload = payload_text != NULL ?
                      json_loads(payload_text, JSON_DECODE_ANY, NULL) : NULL;
    char conc[512];
    json_t *fields = json_object_get(agg, "fields");
    struct llmb_table *num = NULL, *cat = NULL;
    char d[LLMB_HUMAN_LEN];
    const char *path;
    json_t *f;

    if (!json_is_object(fields)) {
        fprintf(out, "\naggregate (%s):\n", when);
        print_json_text(out, text, 0);
        json_decref(agg);
        json_decref(payload);
        return;
    }
    fprintf(out, "\naggregate (%s): %lld results, run %s", when,
            (long long)json_integer_value(json_object_get(agg, "results")),
            llmb_human_duration(
                json_integer_value(json_object_get(agg, "run_ms")), d));
    /* the window every per_s below is over (llm jobs; docs/llm.md) */
    if (json_integer_value(json_object_get(agg, "measured_ms")) > 0)
        fprintf(out, ", measured %s",
                llmb_human_duration(
                    json_integer_value(json_object_get(agg, "measured_ms")),
                    d));
    if (json_integer_value(json_object_get(agg, "fields_dropped")) > 0)
        fprintf(out, ", %lld samples of paths past the first 1024 dropped",
                (long long)json_integer_value(
                    json_object_get(agg, "fields_dropped")));
    fputs("; --json prints it whole\n", out);
    /* an llm job's concurrency, asked against achieved (docs/llm.md) */
    if (llmb_agg_concurrency_text(agg, payload, conc, sizeof(conc))[0] !=
        '\0')
        fprintf(out, "concurrency: %s\n", conc);
    print_timeline(out, agg);
    json_decref(payload);
    payload = NULL;

    json_object_foreach(fields, path, f) {
        enum llmb_agg_kind kind = field_kind(path, f);
        if (kind == LLMB_AGG_FLAG || kind == LLMB_AGG_LABEL) {
            char *vals = values_text(kind, f);
            if (cat == NULL) {
                cat = llmb_table_new();
                llmb_table_column(cat, "FIELD", false);
                llmb_table_column(cat, "KIND", false);
                llmb_table_column(cat, "COUNT", true);
                llmb_table_column(cat, "VALUES", false);
            }
            llmb_table_cell(cat, path);
            llmb_table_cell(cat, llmb_agg_kind_name(kind));
            stat_cell(cat, f, "count");
            llmb_table_cell(cat, vals);
            free(vals);
            continue;
        }
        if (num == NULL) {
            static const char *const heads[] = {"COUNT", "MIN", "MEAN",
                                                "P50", "P90", "P99", "MAX",
                                                "SUM", "PER_S"};
            num = llmb_table_new();
            llmb_table_column(num, "FIELD", false);
            llmb_table_column(num, "KIND", false);
            for (size_t i = 0; i < sizeof(heads) / sizeof(*heads); i++)
                llmb_table_column(num, heads[i], true);
        }
        llmb_table_cell(num, path);
        if (kind == LLMB_AGG_DURATION && llmb_agg_unit(path) != NULL)
            llmb_table_cellf(num, "duration %s", llmb_agg_unit(path));
        else
            llmb_table_cell(num, llmb_agg_kind_name(kind));
        stat_cell(num, f, "count");
        stat_cell(num, f, "min");
        stat_cell(num, f, "mean");
        stat_cell(num, f, "p50");
        stat_cell(num, f, "p90");
        stat_cell(num, f, "p99");
        stat_cell(num, f, "max");
        /* Totals and rates of counts only, also for version 1. */
        stat_cell(num, kind == LLMB_AGG_COUNT ? f : NULL, "sum");
        stat_cell(num, kind == LLMB_AGG_COUNT ? f : NULL, "per_s");
    }
    if (num != NULL) {
        fputc('\n', out);
        llmb_table_print(num, out);
    }
    if (cat != NULL) {
        fputc('\n', out);
        llmb_table_print(cat, out);
    }
    print_pairs(out, agg);
    llmb_table_free(num);
    llmb_table_free(cat);
    json_decref(agg);
}

static void print_text(struct llmb_admin *a, const struct job *j,
                       int64_t now)
{
    FILE *out = a->out;
    struct llmb_buf b;
    char d[LLMB_HUMAN_LEN];
    const char *k;
    json_t *v;
    long long started = hget_ll(j, "started_ms");
    long long finished = hget_ll(j, "finished_ms");
    const char *payload = hget(j, "payload");

    llmb_buf_init(&b);
    line(out, "job", j->id);
    line(out, "queue", j->queue);
    line(out, "type", hget(j, "type"));
    line(out, "state", hget(j, "state"));
    llmb_buf_appendf(&b, "%lld: %lld ended, %lld failed, %lld cancelled",
                     j->ntasks, j->ntasks - hget_ll(j, "left"),
                     hget_ll(j, "failed"), hget_ll(j, "cancelled"));
    if (hget(j, "ok") != NULL)
        llmb_buf_appendf(&b, ", %lld ok", hget_ll(j, "ok"));
    line(out, "tasks", b.data);
    line(out, "priority", hget(j, "priority"));
    llmb_buf_reset(&b);
    llmb_buf_appendf(&b, "%ss per attempt, %s retries, backoff %sms",
                     hget(j, "timeout_s") ? hget(j, "timeout_s") : "?",
                     hget(j, "max_retries") ? hget(j, "max_retries") : "?",
                     hget(j, "backoff_ms") ? hget(j, "backoff_ms") : "?");
    line(out, "limits", b.data);
    if (hget(j, "delay_s") != NULL) {
        llmb_buf_reset(&b);
        llmb_buf_appendf(&b, "%ss", hget(j, "delay_s"));
        line(out, "delay", b.data);
    }
    line_time(out, "deadline", j, "deadline_ms", now);
    line_time(out, "created", j, "created_ms", now);
    line_time(out, "started", j, "started_ms", now);
    line_time(out, "cancelled", j, "cancelled_ms", now);
    line_time(out, "finished", j, "finished_ms", now);
    if (started > 0)
        line(out, finished > 0 ? "took" : "running",
             llmb_human_duration((finished > 0 ? finished : now) - started,
                                 d));
    llmb_buf_reset(&b);
    llmb_buf_appendf(&b, "%lld retried, %lld timed out, %lld lost",
                     hget_ll(j, "retried"), hget_ll(j, "timeouts"),
                     hget_ll(j, "lost"));
    line(out, "attempts", b.data);
    line(out, "error", hget(j, "error"));
    if (payload != NULL) {
        if (strlen(payload) <= 60 && strchr(payload, '\n') == NULL) {
            line(out, "payload", payload);
        } else {
            fprintf(out, "payload:\n");
            print_json_text(out, payload, PAYLOAD_SHOWN);
        }
    }

    llmb_buf_reset(&b);
    json_object_foreach(j->states, k, v)
        llmb_buf_appendf(&b, "%s%s %lld", b.len ? ", " : "", k,
                         (long long)json_integer_value(v));
    fprintf(out, "\ntask states: %s\n", b.len ? b.data : "none");

    if (j->nshown > 0) {
        struct llmb_table *t = llmb_table_new();
        llmb_table_column(t, "TASK", true);
        llmb_table_column(t, "STATE", false);
        llmb_table_column(t, "ATTEMPT", true);
        llmb_table_column(t, "WORKER", false);
        llmb_table_column(t, "ERROR / RESULT", false);
        for (size_t i = 0; i < j->nshown; i++) {
            char *const *f = j->shown[i];
            char *detail = llmb_output_oneline(
                f[TF_ERROR] ? f[TF_ERROR] : f[TF_RESULT], 80);
            llmb_table_cellf(t, "%zu", i);
            llmb_table_cell(t, f[TF_STATE]);
            llmb_table_cell(t, f[TF_ATTEMPT] ? f[TF_ATTEMPT] : "0");
            llmb_table_cell(t, f[TF_WORKER]);
            llmb_table_cell(t, detail);
            free(detail);
        }
        fputc('\n', out);
        llmb_table_print(t, out);
        llmb_table_free(t);
        if ((long long)j->nshown < j->ntasks)
            fprintf(out, "(the first %zu of %lld tasks; --tasks N lists "
                         "more)\n", j->nshown, j->ntasks);
    }

    if (hget(j, "aggregate") != NULL) {
        char when[LLMB_HUMAN_LEN];
        print_aggregate(out, hget(j, "aggregate"),
                        llmb_human_ago(now, hget_ll(j, "aggregated_ms"),
                                       when), hget(j, "payload"));
    }
    llmb_buf_fini(&b);
}

/* Reads job spec with `want` tasks listed from task toff on into *j
 * (job_fini() it in every case) and the server time into *now. */
static int show_fetch(struct llmb_admin *a, const char *spec, long long want,
                      long long toff, struct job *j, int64_t *now,
                      char **errstr)
{
    int rc;

    memset(j, 0, sizeof(*j));
    j->toff = toff;
    rc = llmb_lookup_job(a, spec, &j->queue, &j->id, errstr);
    if (rc == 0)
        rc = llmb_lookup_now(a, now, errstr);
    if (rc == 0)
        rc = read_hash(a, j, spec, errstr);
    if (rc == 0)
        rc = read_tasks(a, j, want, errstr);
    return rc;
}

/* Drops from each task's result of a `show --json` document what the
 * report and the web job view do not draw and what makes it big: the
 * sample of request records (`_requests`, up to 1000 a task), whose
 * length stays as `_requests_omitted`, the buckets (`b`) of the
 * histograms of `metrics`, whose count, min, max and sum stay, and the
 * task's time series (`_timeline`, up to 3,600 buckets). The numbers,
 * distributions and series drawn come from the aggregate, which holds
 * the merged histograms and series; llmb export has every record. */
void llmb_view_drop_records(json_t *doc)
{
    size_t i;
    json_t *t;

    json_array_foreach(json_object_get(doc, "tasks"), i, t) {
        json_t *r = json_object_get(t, "result");
        json_t *recs = json_object_get(r, "_requests");
        const char *k;
        json_t *h;

        if (json_is_array(recs)) {
            json_object_set_new(r, "_requests_omitted",
                                json_integer((json_int_t)json_array_size(recs)));
            json_object_del(r, "_requests");
        }
        json_object_del(r, "_timeline");
        json_object_foreach(json_object_get(r, "metrics"), k, h)
            if (json_is_object(h) && json_object_get(h, "hist") != NULL)
                json_object_del(h, "b");
    }
}

int llmb_view_show(struct llmb_admin *a, const char *spec, long long tasks,
                   long long task_offset, json_t **doc, char **errstr)
{
    struct job j;
    int64_t now = 0;
    int rc = show_fetch(a, spec, tasks, task_offset, &j, &now, errstr);

    *doc = NULL;
    if (rc == 0)
        *doc = job_json(&j, now);
    job_fini(&j);
    return rc;
}

int llmb_show_run(struct llmb_admin *a, char **errstr)
{
    struct job j;
    int64_t now = 0;
    int rc;

    rc = show_fetch(a, a->args[0], a->cfg->tasks, 0, &j, &now, errstr);
    if (rc != 0)
        goto out;

    if (a->cfg->json)
        llmb_output_json(a, job_json(&j, now));
    else
        print_text(a, &j, now);

out:
    job_fini(&j);
    return rc;
}
