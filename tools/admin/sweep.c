/*
 * `llmb sweep`: one `llm` (or `benchmark`) job per level of concurrency or
 * rate, one after the other. Each level copies the base job document,
 * sets the level in its payload and the id <sweep>-<param>-<level>, is
 * pushed like `llmb-push` pushes (llmb_job_fields_append, then FCALL
 * llmb_push_fields), and is followed as `llmb-push --wait` follows a job
 * (llmb/jobwait.h: the queue's event stream, from its position before
 * the push) until it has ended and the coordinator has written its
 * aggregate; only then does the next level start, so levels never share
 * the server. The aggregate's
 * merged histograms give each level's row: throughputs, goodput, TTFT,
 * ITL and TPOT percentiles, errors. With --stop-on-slo the sweep ends
 * after the first level that breaks the payload's slo (slo_broken()).
 * Ctrl-C cancels the running level's job (FCALL llmb_cancel) and ends.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llmb/aggregate.h>
#include <llmb/err.h>
#include <llmb/job.h>
#include <llmb/jobwait.h>
#include <llmb/keys.h>

#include "admin.h"

#define SWEEP_LEVELS_MAX 100
#define SWEEP_RATE_MAX 1000000.0
/* The longest blocking read of the queue's events (the CLI's commands
 * time out after 10 s), and how often the job hash is read again. */
#define SWEEP_BLOCK_MS 1000
/* How long to wait for the aggregate once the job has ended. */
#define SWEEP_AGGREGATE_GRACE_MS 10000

/* The base job, read and checked by llmb_sweep_check() before Redis is
 * reached (a usage error is exit 64 even with Redis down) and used by
 * llmb_sweep_run(); a one-shot program holds one. */
static json_t *base_job;

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Reads all of path ("-": stdin) into a malloc'd string, or NULL. */
static char *file_read(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    struct llmb_buf b;
    int rc;

    if (f == NULL)
        return NULL;
    llmb_buf_init(&b);
    rc = llmb_buf_append_file(&b, f);
    if (f != stdin)
        fclose(f);
    if (rc != 0) {
        llmb_buf_fini(&b);
        return NULL;
    }
    return llmb_buf_steal(&b);
}

/* Parses level text for param into *v. Returns 0 or LLMB_EINVAL with
 * *errstr. */
static int level_parse(const char *param, const char *text, double *v,
                       char **errstr)
{
    char *end = NULL;
    long long n;

    if (strcmp(param, "concurrency") == 0) {
        if (llmb_parse_ll(text, 1, 100000, &n) == 0) {
            *v = (double)n;
            return 0;
        }
        *errstr = llmb_xasprintf("--levels: a concurrency level must be an "
                                 "integer from 1 to 100000, got \"%s\"", text);
        return LLMB_EINVAL;
    }
    errno = 0;
    *v = strtod(text, &end);
    if (text[0] != '\0' && *end == '\0' && errno == 0 && *v > 0 &&
        *v <= SWEEP_RATE_MAX && strspn(text, "0123456789.") == strlen(text))
        return 0;
    *errstr = llmb_xasprintf("--levels: a rate level must be a number of "
                             "requests per second, > 0 and at most 1000000, "
                             "got \"%s\"", text);
    return LLMB_EINVAL;
}

/* Checks the base job document text; sets base_job. */
static int job_check(const struct llmb_sweep_opts *o, const char *text,
                     char **errstr)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr), *payload, *type;
    const char *t;

    if (doc == NULL || !json_is_object(doc)) {
        *errstr = doc == NULL
                      ? llmb_xasprintf("the base job is not JSON: %s (line "
                                       "%d)", jerr.text, jerr.line)
                      : llmb_xstrdup("the base job must be a JSON object "
                                     "(a job document)");
        goto bad;
    }
    type = json_object_get(doc, "type");
    t = json_string_value(type);
    if (t == NULL || (strcmp(t, "llm") != 0 && strcmp(t, "benchmark") != 0)) {
        *errstr = llmb_xstrdup("the base job's \"type\" must be \"llm\" or "
                               "\"benchmark\"");
        goto bad;
    }
    payload = json_object_get(doc, "payload");
    if (!json_is_object(payload)) {
        *errstr = llmb_xstrdup("the base job needs a \"payload\" object");
        goto bad;
    }
    if (json_object_get(doc, "id") != NULL) {
        *errstr = llmb_xstrdup("the base job must not have an \"id\": each "
                               "level's job is <sweep id>-<param>-<level> "
                               "(--id sets the sweep id)");
        goto bad;
    }
    if (o->stop_on_slo && !json_is_object(json_object_get(payload, "slo"))) {
        *errstr = llmb_xstrdup("--stop-on-slo needs an \"slo\" object in the "
                               "base job's payload, e.g. \"slo\": "
                               "{\"ttft_ms\": 200}");
        goto bad;
    }
    json_decref(base_job);
    base_job = doc;
    return 0;
bad:
    json_decref(doc);
    return LLMB_EINVAL;
}

int llmb_sweep_check(struct llmb_admin *a, char **errstr)
{
    const struct llmb_sweep_opts *o = &a->cfg->sweep;
    char *text = NULL, *end = NULL;
    double v;
    int rc;

    if (o->over == NULL || (strcmp(o->over, "concurrency") != 0 &&
                            strcmp(o->over, "rate") != 0)) {
        *errstr = o->over == NULL
                      ? llmb_xstrdup("--over is required: concurrency or "
                                     "rate")
                      : llmb_xasprintf("--over must be concurrency or rate, "
                                       "got \"%s\"", o->over);
        return LLMB_EINVAL;
    }
    if (o->levels.n == 0 || o->levels.n > SWEEP_LEVELS_MAX) {
        *errstr = llmb_xasprintf("--levels needs 1 to %d comma-separated "
                                 "values, got %zu", SWEEP_LEVELS_MAX,
                                 o->levels.n);
        return LLMB_EINVAL;
    }
    for (size_t i = 0; i < o->levels.n; i++) {
        if ((rc = level_parse(o->over, o->levels.v[i], &v, errstr)) != 0)
            return rc;
        for (size_t k = 0; k < i; k++)
            if (strcmp(o->levels.v[k], o->levels.v[i]) == 0) {
                *errstr = llmb_xasprintf("--levels: \"%s\" is given twice",
                                         o->levels.v[i]);
                return LLMB_EINVAL;
            }
    }
    if ((o->job == NULL) == (o->job_file == NULL)) {
        *errstr = llmb_xstrdup("give the base job with exactly one of --job "
                               "JSON and --job-file FILE");
        return LLMB_EINVAL;
    }
    errno = 0;
    v = strtod(o->slo_min_good, &end);
    if (o->slo_min_good[0] == '\0' || *end != '\0' || errno != 0 ||
        !(v >= 0 && v <= 1)) {
        *errstr = llmb_xasprintf("--slo-min-good must be a fraction from 0 "
                                 "to 1, got \"%s\"", o->slo_min_good);
        return LLMB_EINVAL;
    }
    if (o->slo_percentile != NULL && strcmp(o->slo_percentile, "p50") != 0 &&
        strcmp(o->slo_percentile, "p90") != 0 &&
        strcmp(o->slo_percentile, "p99") != 0) {
        *errstr = llmb_xasprintf("--slo-percentile must be p50, p90 or p99, "
                                 "got \"%s\"", o->slo_percentile);
        return LLMB_EINVAL;
    }
    if (o->id != NULL) {
        /* the longest level's id must still be a job id */
        char *probe = llmb_xasprintf("%s-%s-1000000", o->id, o->over);
        bool ok = llmb_job_id_ok(o->id) && llmb_job_id_ok(probe);
        free(probe);
        if (!ok) {
            *errstr = llmb_xasprintf("--id must be [A-Za-z0-9_.-], short "
                                     "enough that ID-%s-LEVEL is at most %d "
                                     "characters, got \"%s\"", o->over,
                                     LLMB_JOB_ID_MAX, o->id);
            return LLMB_EINVAL;
        }
    }
    if (o->job_file != NULL && (text = file_read(o->job_file)) == NULL) {
        *errstr = llmb_xasprintf("--job-file: cannot read %s: %s",
                                 o->job_file, strerror(errno));
        return LLMB_EINVAL;
    }
    rc = job_check(o, text != NULL ? text : o->job, errstr);
    free(text);
    return rc;
}

/* One level's outcome. */
struct level {
    const char *text;  /* as given in --levels */
    char *job;         /* its job id */
    char *state;       /* the job's end state, or NULL */
    json_t *agg;       /* the job's aggregate (owned), or NULL */
    int slo;           /* -1 no slo in the payload, 0 kept, 1 broken */
};

/*
 * The slo test of --stop-on-slo, on a level's aggregate: the level breaks
 * the slo when no request completed, when its goodput (summary.good.per_s)
 * is below min_good of the rate its requests were sent at
 * (summary.requests.per_s: a failed request counts against it, as it
 * would for a user), or, with
 * pct ("p99"), when that percentile of metrics.<name> is over the slo's
 * threshold for any <name> the slo sets (ttft_ms, tpot_ms, e2e_ms).
 */
static bool slo_broken(const struct level *l, json_t *slo, double min_good,
                       const char *pct)
{
    double ok = llmb_agg_stat(l->agg, "summary.ok", "per_s");
    double sent = llmb_agg_stat(l->agg, "summary.requests", "per_s");
    double good = llmb_agg_stat(l->agg, "summary.good", "per_s");
    const char *name;
    json_t *thr;

    if (!(ok > 0) || isnan(good) || good < min_good * sent)
        return true;
    if (pct == NULL)
        return false;
    json_object_foreach(slo, name, thr) {
        char *field = llmb_xasprintf("metrics.%s", name);
        double v = llmb_agg_stat(l->agg, field, pct);
        free(field);
        if (json_is_number(thr) && !isnan(v) && v > json_number_value(thr))
            return true;
    }
    return false;
}

/* Pushes doc to queue (as llmb-push does). Returns 0 or an error. */
static int job_push(struct llmb_admin *a, json_t *doc, const char *queue,
                    char **errstr)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    char *base = llmb_key_queue(a->prefix, queue);
    char *queues = llmb_key_global(a->prefix, "queues");
    const char *fargv[4 + LLMB_PUSH_NFIELDS];
    size_t flen[4 + LLMB_PUSH_NFIELDS], lens[LLMB_PUSH_NFIELDS], off = 0;
    char docq[LLMB_QUEUE_NAME_MAX + 1];
    struct llmb_buf vals;
    redisReply *r = NULL;
    const redisReply *e;
    int rc;

    llmb_buf_init(&vals);
    rc = llmb_job_fields_append(text, strlen(text), &vals, lens, docq,
                                errstr);
    if (rc != 0)
        goto out;
    r = llmb_cluster_command(a->conn, "SADD %s %s", queues, queue);
    if ((rc = llmb_reply_check(r, a->conn, errstr)) != 0)
        goto out;
    freeReplyObject(r);
    fargv[0] = "FCALL";
    fargv[1] = "llmb_push_fields";
    fargv[2] = "1";
    fargv[3] = base;
    for (size_t i = 0; i < 4; i++)
        flen[i] = strlen(fargv[i]);
    for (size_t i = 0; i < LLMB_PUSH_NFIELDS; i++) {
        fargv[4 + i] = vals.data + off;
        flen[4 + i] = lens[i];
        off += lens[i];
    }
    r = llmb_cluster_commandargv(a->conn, 4 + LLMB_PUSH_NFIELDS, fargv, flen);
    if ((rc = llmb_reply_check(r, a->conn, errstr)) != 0)
        goto out;
    e = r->type == REDIS_REPLY_ARRAY && r->elements == 1 ? r->element[0] : r;
    if (e->type == REDIS_REPLY_ERROR) {
        *errstr = llmb_xasprintf("push refused: %s", e->str);
        rc = LLMB_EREDIS;
    } else if (e->type != REDIS_REPLY_STRING) {
        char what[96];
        *errstr = llmb_xasprintf("unexpected reply from llmb_push_fields: %s",
                                 llmb_reply_describe(e, what, sizeof(what)));
        rc = LLMB_EPROTO;
    }
out:
    if (r != NULL)
        freeReplyObject(r);
    llmb_buf_fini(&vals);
    free(text);
    free(base);
    free(queues);
    return rc;
}

/* Cancels job id of queue after Ctrl-C; says so on stderr. */
static void job_cancel(struct llmb_admin *a, const char *queue,
                       const char *id)
{
    char *base = llmb_key_queue(a->prefix, queue);
    redisReply *r = llmb_cluster_command(a->conn, "FCALL llmb_cancel 1 %s %s",
                                      base, id);
    char *err = NULL;

    if (llmb_reply_check(r, a->conn, &err) == 0)
        fprintf(stderr, "llmb: interrupted: cancelled job %s\n", id);
    else
        fprintf(stderr, "llmb: interrupted; cancelling job %s: %s\n", id,
                err);
    free(err);
    if (r != NULL)
        freeReplyObject(r);
    free(base);
}

/* The position of queue's event stream into *mark (caller frees), taken
 * before a level's job is pushed: its events come after it. Returns 0 or
 * an error. */
static int events_mark(struct llmb_admin *a, const char *queue, char **mark,
                       char **errstr)
{
    char *events = llmb_key_queue_sub(a->prefix, queue, "events");
    redisReply *r = llmb_cluster_command(a->conn, "XREVRANGE %s + - COUNT 1",
                                         events);
    int rc = llmb_reply_check(r, a->conn, errstr);

    if (rc == 0 && llmb_job_mark_take(r, mark) != 0) {
        *errstr = llmb_xasprintf("reading %s: %s", events, r->str);
        rc = LLMB_EREDIS;
    }
    if (r != NULL)
        freeReplyObject(r);
    free(events);
    return rc;
}

/* Before each read of job_follow(): Ctrl-C ends the wait. */
static int follow_tick(const struct llmb_job_progress *p, void *arg)
{
    (void)p;
    (void)arg;
    return interrupted ? 1 : 0;
}

/* Follows job l->job of queue from the event stream position *mark (see
 * llmb/jobwait.h) until it has ended and been aggregated (or
 * SWEEP_AGGREGATE_GRACE_MS after it ended); fills l->state and l->agg.
 * Returns 0, LLMB_EREDIS when interrupted (the job is then cancelled), or
 * an error. */
static int job_follow(struct llmb_admin *a, const char *queue,
                      struct level *l, char **mark, char **errstr)
{
    struct llmb_job_wait_opts o = {SWEEP_BLOCK_MS, SWEEP_AGGREGATE_GRACE_MS,
                                   follow_tick, NULL};
    struct llmb_job_progress p;
    char *base = NULL;
    redisReply *r = NULL;
    json_t *agg = NULL;
    char *err = NULL;
    int rc = llmb_job_wait(a->conn, a->prefix, queue, l->job, mark, &o, &p,
                           &err);

    if (rc == 1) {
        job_cancel(a, queue, l->job);
        free(l->state);
        l->state = llmb_xstrdup("cancelled");
        *errstr = llmb_xasprintf("interrupted at level %s", l->text);
        return LLMB_EREDIS; /* exit 1: the sweep did not end */
    }
    if (rc == LLMB_ENOTFOUND) {
        *errstr = llmb_xasprintf("level %s: job %s was deleted while the "
                                 "sweep waited for it (purged, or by hand)",
                                 l->text, l->job);
        return rc;
    }
    if (rc == LLMB_EREDIS) {
        *errstr = err;
        return rc;
    }
    if (rc != 0) {
        *errstr = llmb_xstrdup(llmb_cluster_errstr(a->conn));
        return rc;
    }
    free(l->state);
    l->state = llmb_xstrdup(p.state);
    base = llmb_key_queue(a->prefix, queue);
    r = llmb_cluster_command(a->conn, "FCALL_RO llmb_job 1 %s %s aggregate",
                             base, l->job);
    rc = llmb_reply_check(r, a->conn, errstr);
    if (rc == 0 && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_STRING)
        agg = json_loads(r->element[0]->str, 0, NULL);
    if (json_object_get(agg, "fields") != NULL)
        l->agg = json_incref(agg);
    json_decref(agg);
    if (rc == 0 && l->agg == NULL)
        fprintf(stderr, "llmb: job %s ended %s but no aggregate arrived in "
                        "%ds; is llmb-coordinator running?\n", l->job,
                l->state, SWEEP_AGGREGATE_GRACE_MS / 1000);
    if (r != NULL)
        freeReplyObject(r);
    free(base);
    return rc;
}

/* A number for a table cell: "-" when NaN. */
static void cell_num(struct llmb_table *t, double v, int prec)
{
    if (isnan(v))
        llmb_table_cell(t, NULL);
    else
        llmb_table_cellf(t, "%.*f", prec, v);
}

static void table_print(struct llmb_admin *a, const char *param,
                        const struct level *lv, size_t n)
{
    static const char *const lat[] = {"metrics.ttft_ms", "metrics.itl_ms",
                                      "metrics.tpot_ms"};
    static const char *const heads[] = {"TTFT", "ITL", "TPOT"};
    struct llmb_table *t = llmb_table_new();

    llmb_table_column(t, strcmp(param, "rate") == 0 ? "RATE"
                                                    : "CONCURRENCY", true);
    llmb_table_column(t, "STATE", false);
    llmb_table_column(t, "REQUESTS", true);
    llmb_table_column(t, "REQ/S", true);
    llmb_table_column(t, "OUT TOK/S", true);
    llmb_table_column(t, "GOODPUT", true);
    for (size_t k = 0; k < 3; k++) {
        char h[32];
        snprintf(h, sizeof(h), "%s P50", heads[k]);
        llmb_table_column(t, h, true);
        snprintf(h, sizeof(h), "%s P99", heads[k]);
        llmb_table_column(t, h, true);
    }
    llmb_table_column(t, "ERRORS", true);
    llmb_table_column(t, "SLO", false);
    for (size_t i = 0; i < n; i++) {
        const struct level *l = &lv[i];
        const json_t *g = l->agg;
        llmb_table_cell(t, l->text);
        llmb_table_cell(t, l->state);
        cell_num(t, llmb_agg_stat(g, "summary.requests", "sum"), 0);
        cell_num(t, llmb_agg_stat(g, "summary.ok", "per_s"), 2);
        cell_num(t, llmb_agg_stat(g, "summary.output_tokens", "per_s"), 1);
        cell_num(t, llmb_agg_stat(g, "summary.good", "per_s"), 2);
        for (size_t k = 0; k < 3; k++) {
            cell_num(t, llmb_agg_stat(g, lat[k], "p50"), 2);
            cell_num(t, llmb_agg_stat(g, lat[k], "p99"), 2);
        }
        cell_num(t, llmb_agg_stat(g, "summary.failed", "sum"), 0);
        llmb_table_cell(t, l->slo < 0 ? NULL : l->slo ? "broken" : "ok");
    }
    llmb_table_print(t, a->out);
    llmb_table_free(t);
}

/* A JSON number, or null for NaN. */
static json_t *num(double v)
{
    return isnan(v) ? json_null() : json_real(v);
}

static json_t *level_json(const struct level *l, json_t *value)
{
    static const char *const lat[] = {"ttft_ms", "itl_ms", "tpot_ms",
                                      "e2e_ms"};
    const json_t *g = l->agg;
    json_t *o = json_object();

    json_object_set_new(o, "level", value);
    json_object_set_new(o, "job", llmb_json_str(l->job));
    json_object_set_new(o, "state", llmb_json_str(l->state));
    json_object_set_new(o, "run_ms",
                        num(g != NULL ? json_number_value(
                                            json_object_get(g, "run_ms"))
                                      : NAN));
    json_object_set_new(o, "requests",
                        num(llmb_agg_stat(g, "summary.requests", "sum")));
    json_object_set_new(o, "errors",
                        num(llmb_agg_stat(g, "summary.failed", "sum")));
    json_object_set_new(o, "request_throughput",
                        num(llmb_agg_stat(g, "summary.ok", "per_s")));
    json_object_set_new(o, "output_throughput",
                        num(llmb_agg_stat(g, "summary.output_tokens",
                                          "per_s")));
    json_object_set_new(o, "goodput",
                        num(llmb_agg_stat(g, "summary.good", "per_s")));
    json_object_set_new(o, "good",
                        num(llmb_agg_stat(g, "summary.good", "sum")));
    for (size_t k = 0; k < sizeof(lat) / sizeof(*lat); k++) {
        char *f = llmb_xasprintf("metrics.%s", lat[k]);
        json_t *m = json_object();
        json_object_set_new(m, "p50", num(llmb_agg_stat(g, f, "p50")));
        json_object_set_new(m, "p90", num(llmb_agg_stat(g, f, "p90")));
        json_object_set_new(m, "p99", num(llmb_agg_stat(g, f, "p99")));
        json_object_set_new(m, "mean", num(llmb_agg_stat(g, f, "mean")));
        json_object_set_new(o, lat[k], m);
        free(f);
    }
    json_object_set_new(o, "slo_broken",
                        l->slo < 0 ? json_null() : json_boolean(l->slo));
    return o;
}

int llmb_sweep_run(struct llmb_admin *a, char **errstr)
{
    const struct llmb_sweep_opts *o = &a->cfg->sweep;
    json_t *slo = json_object_get(json_object_get(base_job, "payload"),
                                  "slo");
    const char *queue = a->cfg->queue;
    double min_good = strtod(o->slo_min_good, NULL);
    struct level *lv = llmb_xcalloc(o->levels.n, sizeof(*lv));
    struct sigaction sa, old;
    char *sweep_id = NULL, *mark = NULL;
    const char *stopped = NULL;
    size_t n = 0;
    int rc = 0;

    if (queue == NULL)
        queue = json_string_value(json_object_get(base_job, "queue"));
    if (queue == NULL)
        queue = "default";
    if (!llmb_queue_name_ok(queue)) {
        *errstr = llmb_xasprintf("the base job's queue \"%s\" is not a "
                                 "queue name", queue);
        rc = LLMB_EINVAL;
        goto out;
    }
    if (o->id != NULL) {
        sweep_id = llmb_xstrdup(o->id);
    } else {
        char hex[17];
        llmb_random_hex(hex, 8);
        sweep_id = llmb_xasprintf("sweep-%s", hex);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);

    for (n = 0; n < o->levels.n && rc == 0;) {
        struct level *l = &lv[n];
        json_t *doc = json_deep_copy(base_job);
        json_t *payload = json_object_get(doc, "payload");
        double v = 0;

        level_parse(o->over, o->levels.v[n], &v, errstr);
        l->text = o->levels.v[n];
        l->slo = -1;
        l->job = llmb_xasprintf("%s-%s-%s", sweep_id, o->over, l->text);
        json_object_set_new(payload, o->over,
                            strcmp(o->over, "concurrency") == 0
                                ? json_integer((json_int_t)v)
                                : json_real(v));
        json_object_set_new(doc, "id", json_string(l->job));
        json_object_set_new(doc, "queue", json_string(queue));
        free(mark);
        mark = NULL;
        rc = events_mark(a, queue, &mark, errstr);
        if (rc == 0)
            rc = job_push(a, doc, queue, errstr);
        json_decref(doc);
        if (rc != 0) {
            char *why = *errstr;
            *errstr = llmb_xasprintf("level %s: job %s: %s", l->text, l->job,
                                     why);
            free(why);
            break;
        }
        n++;
        fprintf(stderr, "llmb: sweep %s: %s=%s: job %s pushed to queue %s\n",
                sweep_id, o->over, l->text, l->job, queue);
        if ((rc = job_follow(a, queue, l, &mark, errstr)) != 0)
            break;
        if (json_is_object(slo) && l->agg != NULL)
            l->slo = slo_broken(l, slo, min_good, o->slo_percentile);
        if (strcmp(l->state, "completed") != 0) {
            *errstr = llmb_xasprintf("level %s: job %s ended %s", l->text,
                                     l->job, l->state);
            rc = LLMB_EREDIS;
        } else if (l->agg == NULL) {
            *errstr = llmb_xasprintf("level %s: job %s has no aggregate",
                                     l->text, l->job);
            rc = LLMB_ETIMEOUT;
        } else if (o->stop_on_slo && l->slo == 1) {
            stopped = l->text;
            if (n < o->levels.n)
                fprintf(stderr, "llmb: sweep %s: %s=%s breaks the slo; "
                                "stopping\n", sweep_id, o->over, l->text);
            break;
        }
    }
    sigaction(SIGINT, &old, NULL);

    if (a->cfg->json) {
        json_t *doc = json_object(), *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            double v = 0;
            char *ignored = NULL;
            level_parse(o->over, lv[i].text, &v, &ignored);
            json_array_append_new(arr, level_json(&lv[i],
                                  strcmp(o->over, "concurrency") == 0
                                      ? json_integer((json_int_t)v)
                                      : json_real(v)));
        }
        json_object_set_new(doc, "sweep", json_string(sweep_id));
        json_object_set_new(doc, "queue", json_string(queue));
        json_object_set_new(doc, "over", json_string(o->over));
        json_object_set_new(doc, "stop_on_slo", json_boolean(o->stop_on_slo));
        json_object_set_new(doc, "slo_min_good", json_real(min_good));
        json_object_set_new(doc, "slo_percentile",
                            llmb_json_str(o->slo_percentile));
        json_object_set_new(doc, "slo", json_incref(slo != NULL ? slo
                                                                : json_null()));
        json_object_set_new(doc, "levels", arr);
        json_object_set_new(doc, "stopped_at", llmb_json_str(stopped));
        json_object_set_new(doc, "complete", json_boolean(rc == 0 &&
                                                          stopped == NULL));
        llmb_output_json(a, doc);
    } else if (n > 0) {
        fprintf(a->out, "sweep %s over %s, queue %s\n", sweep_id, o->over,
                queue);
        table_print(a, o->over, lv, n);
        if (stopped != NULL)
            fprintf(a->out, "stopped at %s=%s: it breaks the slo\n", o->over,
                    stopped);
    }
out:
    for (size_t i = 0; i < o->levels.n; i++) {
        free(lv[i].job);
        free(lv[i].state);
        json_decref(lv[i].agg);
    }
    free(lv);
    free(sweep_id);
    free(mark);
    json_decref(base_job);
    base_job = NULL;
    return rc;
}
