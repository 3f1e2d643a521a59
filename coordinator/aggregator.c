/*
 * The aggregator: turns each finished job into its aggregate.
 *
 * A job's last task pushes its id on <base>:done. Each tick the aggregator
 * takes up to --agg-batch ids with FCALL llmb_agg_take, which leases them
 * (<base>:aggr, --agg-lease-ms): if this process dies, any coordinator
 * takes them again when the lease runs out. For each job it reads the
 * job's fields, then the task results <i>:result, with the read-only
 * function llmb_job (lua/15-job.lua) in chunks of consecutive indexes,
 * feeds them to lib/aggregate.c and stores the document with
 * FCALL llmb_agg_finish, which keeps only the first aggregate of a job
 * however many coordinators computed one, and only when the job is still
 * the run the aggregate was read from (its `version`, which a retry bumps;
 * a retry between the reads would otherwise mix two runs).
 *
 * Work is bounded: about --agg-budget-ms per tick, and each read asks for
 * as many results as fit about 4 MiB at the sizes seen so far, so a
 * 100,000-task job is aggregated over several ticks while the reaper keeps
 * its pace.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <llmb/aggregate.h>
#include <llmb/err.h>
#include <llmb/jobfields.h>
#include <llmb/log.h>

#include "coordinator.h"

#define CHUNK_MIN 1
#define CHUNK_MAX LLMB_JOB_READ_MAX
#define CHUNK_FIRST 100
#define CHUNK_BYTES (4 * 1024 * 1024)

/* Fields of the job the aggregate is made of, in the order read. */
enum jf {
    JF_STATE,
    JF_TASKS,
    JF_OK,
    JF_FAILED,
    JF_CANCELLED,
    JF_CREATED,
    JF_STARTED,
    JF_FINISHED,
    JF_RETRIED,
    JF_TIMEOUTS,
    JF_LOST,
    JF_VERSION,
    JF_PAYLOAD, /* for its "_kinds" */
    JF_COUNT
};
static const char *const job_fields[JF_COUNT] = {
    "state",      "tasks",       "ok",          "failed",
    "cancelled",  "created_ms",  "started_ms",  "finished_ms",
    "retried",    "timeouts",    "lost",        "version",
    "payload"};

/* One job being aggregated; created by a take, freed when its aggregate
 * is stored or dropped. */
struct job {
    char *queue;   /* queue name, for logs */
    char *base;    /* queue base key */
    char *id;
    bool loaded;   /* the job hash was read */
    char *state;
    long long f[JF_COUNT]; /* numeric job fields, 0 when absent */
    long long next;        /* next task index to read */
    size_t chunk;          /* indexes per HMGET */
    long long results;     /* results read */
    struct llmb_agg *agg;
};

struct llmb_agg_work {
    struct job *jobs;
    size_t n;
    size_t rr; /* round-robin position */
};

struct llmb_agg_work *llmb_aggregator_new(void)
{
    return llmb_xcalloc(1, sizeof(struct llmb_agg_work));
}

static void job_fini(struct job *j)
{
    free(j->queue);
    free(j->base);
    free(j->id);
    free(j->state);
    llmb_agg_free(j->agg);
}

void llmb_aggregator_free(struct llmb_agg_work *w)
{
    size_t i;

    if (w == NULL)
        return;
    for (i = 0; i < w->n; i++)
        job_fini(&w->jobs[i]);
    free(w->jobs);
    free(w);
}

size_t llmb_aggregator_busy(const struct llmb_agg_work *w)
{
    return w->n;
}

static void job_drop(struct llmb_agg_work *w, size_t i)
{
    job_fini(&w->jobs[i]);
    memmove(&w->jobs[i], &w->jobs[i + 1], (w->n - i - 1) * sizeof(*w->jobs));
    w->n--;
}

static bool holding(const struct llmb_agg_work *w, const char *base,
                    const char *id)
{
    size_t i;

    for (i = 0; i < w->n; i++)
        if (strcmp(w->jobs[i].id, id) == 0 &&
            strcmp(w->jobs[i].base, base) == 0)
            return true;
    return false;
}

/* Takes up to room jobs from queue q. Returns 0 or LLMB_EIO. */
static int take(struct llmb_coord *co, struct llmb_coord_queue *q, size_t room)
{
    struct llmb_agg_work *w = co->agg;
    redisReply *r;
    size_t i;

    r = llmb_cluster_command(co->cl, "FCALL llmb_agg_take 1 %s %lld %lld",
                          q->base, co->cfg->agg_lease_ms, (long long)room);
    if (r == NULL)
        return llmb_coord_lost(co);
    if (r->type != REDIS_REPLY_ARRAY) {
        llmb_coord_reply_error(co, "llmb_agg_take", q->name, r);
        freeReplyObject(r);
        return 0;
    }
    for (i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        struct job *j;
        if (e->type != REDIS_REPLY_STRING || holding(w, q->base, e->str))
            continue;
        w->jobs = llmb_xrealloc(w->jobs, (w->n + 1) * sizeof(*w->jobs));
        j = &w->jobs[w->n++];
        memset(j, 0, sizeof(*j));
        j->queue = llmb_xstrdup(q->name);
        j->base = llmb_xstrdup(q->base);
        j->id = llmb_xstrdup(e->str);
        j->chunk = CHUNK_FIRST;
        j->agg = llmb_agg_new(NULL);
    }
    freeReplyObject(r);
    return 0;
}

static bool terminal(const char *state)
{
    return strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0 ||
           strcmp(state, "cancelled") == 0;
}

/* What happened to a job after one step. */
enum step {
    STEP_MORE, /* call again */
    STEP_DONE, /* stored, or dropped: forget it */
    STEP_LOST  /* the connection failed */
};

/* Gives j's aggregation the kinds of the payload's "_kinds" object, if
 * any; a bad entry is logged and skipped. */
static void set_kinds(struct job *j, const char *payload, size_t len)
{
    json_t *p = json_loadb(payload, len, 0, NULL);
    char *errstr = NULL;

    if (llmb_agg_set_kinds(j->agg, json_object_get(p, "_kinds"),
                           &errstr) != 0) {
        llmb_warn("payload %s; ignored job=%s queue=%s", errstr, j->id,
                  j->queue);
        free(errstr);
    }
    json_decref(p);
}

/* The start of a read of job j's fields (the function llmb_job). */
#define JOB_READ(j) "FCALL_RO", "llmb_job", "1", (j)->base, (j)->id
#define JOB_READ_ARGC 5

/* Reads the job's own fields. */
static enum step step_load(struct llmb_coord *co, struct job *j)
{
    const char *argv[JOB_READ_ARGC + JF_COUNT] = {JOB_READ(j)};
    redisReply *r;
    int i;

    for (i = 0; i < JF_COUNT; i++)
        argv[JOB_READ_ARGC + i] = job_fields[i];
    r = llmb_cluster_commandargv(co->cl, JOB_READ_ARGC + JF_COUNT, argv,
                                 NULL);
    if (r == NULL) {
        llmb_coord_lost(co);
        return STEP_LOST;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != JF_COUNT) {
        llmb_coord_reply_error(co, "reading a job to aggregate", j->queue, r);
        freeReplyObject(r);
        return STEP_DONE; /* retaken after the lease */
    }
    if (r->element[JF_STATE]->type != REDIS_REPLY_STRING) {
        /* The job is gone (expired or deleted): llmb_agg_finish only
         * clears the lease then. */
        freeReplyObject(r);
        j->state = llmb_xstrdup("gone");
        j->loaded = true;
        j->next = 0;
        return STEP_MORE;
    }
    j->state = llmb_xstrdup(r->element[JF_STATE]->str);
    for (i = 1; i < JF_PAYLOAD; i++) {
        const redisReply *e = r->element[i];
        j->f[i] = e->type == REDIS_REPLY_STRING ? atoll(e->str) : 0;
    }
    if (r->element[JF_PAYLOAD]->type == REDIS_REPLY_STRING)
        set_kinds(j, r->element[JF_PAYLOAD]->str,
                  r->element[JF_PAYLOAD]->len);
    freeReplyObject(r);
    if (!terminal(j->state)) {
        /* Retried since it ended: it comes back through <base>:done when
         * it ends again; the stale lease is retaken and checked again. */
        llmb_debug("job to aggregate is %s again; skipped job=%s queue=%s",
                   j->state, j->id, j->queue);
        return STEP_DONE;
    }
    j->loaded = true;
    return STEP_MORE;
}

/* Reads the next chunk of task results into the aggregation. */
static enum step step_read(struct llmb_coord *co, struct job *j)
{
    long long tasks = j->f[JF_TASKS];
    long long end = j->next + (long long)j->chunk;
    size_t n, i, bytes = 0, got = 0;
    const char **argv;
    char **fields;
    redisReply *r;

    if (end > tasks)
        end = tasks;
    n = (size_t)(end - j->next);
    argv = llmb_xcalloc(n + JOB_READ_ARGC, sizeof(*argv));
    fields = llmb_xcalloc(n, sizeof(*fields));
    {
        const char *start[] = {JOB_READ(j)};
        memcpy(argv, start, sizeof(start));
    }
    for (i = 0; i < n; i++) {
        fields[i] = llmb_xasprintf("%lld:result", j->next + (long long)i);
        argv[JOB_READ_ARGC + i] = fields[i];
    }
    r = llmb_cluster_commandargv(co->cl, (int)(n + JOB_READ_ARGC), argv,
                                 NULL);
    for (i = 0; i < n; i++)
        free(fields[i]);
    free(fields);
    free(argv);
    if (r == NULL) {
        llmb_coord_lost(co);
        return STEP_LOST;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        llmb_coord_reply_error(co, "reading task results", j->queue, r);
        freeReplyObject(r);
        return STEP_DONE;
    }
    for (i = 0; i < n; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        got++;
        bytes += e->len;
        if (llmb_agg_add_text(j->agg, e->str, e->len) != 0)
            llmb_debug("task result is not JSON; ignored job=%s queue=%s "
                       "task=%lld", j->id, j->queue, j->next + (long long)i);
    }
    freeReplyObject(r);
    j->results += (long long)got;
    j->next = end;
    /* Size the next chunk to about CHUNK_BYTES at the sizes seen. */
    if (got > 0) {
        size_t avg = bytes / got + 1;
        size_t c = CHUNK_BYTES / avg;
        j->chunk = c < CHUNK_MIN ? CHUNK_MIN : c > CHUNK_MAX ? CHUNK_MAX : c;
    }
    return STEP_MORE;
}

static void set_int(json_t *o, const char *key, long long v)
{
    json_object_set_new(o, key, json_integer(v));
}

static char *dump(const json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));

    llmb_assert(text != NULL);
    return text;
}

/* What an aggregate over --agg-max-bytes leaves out, in this order, until
 * it fits: each group's timeline, the groups, the timeline, the fields.
 * Past the fields only the job's counts are left, far below the least
 * --agg-max-bytes (64 KiB). */
static const char *const SHED[] = {"by.timeline", "by", "timeline",
                                   "fields"};

/* Leaves `what` (one of SHED) out of o; false when o had none of it. */
static bool shed(json_t *o, const char *what)
{
    const char *name;
    json_t *g;
    bool any = false;

    if (strcmp(what, "by.timeline") == 0) {
        json_object_foreach(json_object_get(o, "by"), name, g)
            any |= json_object_del(g, "timeline") == 0;
        return any;
    }
    if (strcmp(what, "fields") == 0) {
        any = json_object_size(json_object_get(o, "fields")) > 0;
        json_object_set_new(o, "fields", json_object());
        return any;
    }
    return json_object_del(o, what) == 0;
}

/* o as text of at most max bytes: what SHED names is left out, step by
 * step, and what was there listed in o's "dropped", so that a reader
 * knows the aggregate is not whole. */
static char *fit(json_t *o, size_t max)
{
    char *text = dump(o);
    json_t *dropped = NULL;

    for (size_t k = 0; strlen(text) > max &&
                       k < sizeof(SHED) / sizeof(SHED[0]); k++) {
        if (!shed(o, SHED[k]))
            continue;
        if (dropped == NULL) {
            dropped = json_array();
            json_object_set_new(o, "dropped", dropped);
        }
        json_array_append_new(dropped, json_string(SHED[k]));
        free(text);
        text = dump(o);
    }
    return text;
}

/* The aggregate document of j (docs/coordinator.md), of at most max_bytes
 * (fit); caller frees it. */
static char *build(struct job *j, long long max_bytes)
{
    json_t *o = json_object();
    long long fin = j->f[JF_FINISHED];
    long long run_ms = fin && j->f[JF_STARTED] ? fin - j->f[JF_STARTED] : 0;
    int64_t measured = llmb_agg_window_ms(j->agg);
    json_t *by, *series;
    char *text;

    set_int(o, "version", LLMB_AGG_VERSION);
    json_object_set_new(o, "state", json_string(j->state));
    set_int(o, "tasks", j->f[JF_TASKS]);
    set_int(o, "ok", j->f[JF_OK]);
    set_int(o, "failed", j->f[JF_FAILED]);
    set_int(o, "cancelled", j->f[JF_CANCELLED]);
    set_int(o, "wall_ms", fin && j->f[JF_CREATED] ? fin - j->f[JF_CREATED] : 0);
    set_int(o, "run_ms", run_ms);
    set_int(o, "retried", j->f[JF_RETRIED]);
    set_int(o, "timeouts", j->f[JF_TIMEOUTS]);
    set_int(o, "lost", j->f[JF_LOST]);
    set_int(o, "results", j->results);
    if (llmb_agg_dropped(j->agg) > 0)
        set_int(o, "fields_dropped", (long long)llmb_agg_dropped(j->agg));
    /* An llm job's measured window: the earliest measured start to the
     * latest measured end of its tasks (no warm-up, no waits before). */
    if (measured > 0)
        set_int(o, "measured_ms", measured);
    /* Counts get their sum per second of the measured window, or of
     * run_ms (first claim to last task end) for other jobs: the
     * throughput of totals such as requests or tokens. */
    json_object_set_new(o, "fields", llmb_agg_fields_json(
                                         j->agg, measured > 0 ? measured
                                                              : run_ms));
    /* the same per "_group" of the results (an llm A/B job's pairs) */
    by = llmb_agg_by_json(j->agg, run_ms);
    if (by != NULL)
        json_object_set_new(o, "by", by);
    /* the tasks' throughput and concurrency over time, merged */
    if ((series = llmb_agg_series_json(j->agg)) != NULL)
        json_object_set_new(o, "timeline", series);
    text = fit(o, (size_t)max_bytes);
    json_decref(o);
    return text;
}

/* Stores the aggregate (or, for a vanished job, clears its lease). */
static enum step step_finish(struct llmb_coord *co, struct job *j)
{
    char *doc = build(j, co->cfg->agg_max_bytes);
    /* fenced by the version read with the job: a retry since makes
     * llmb_agg_finish store nothing (-1) */
    redisReply *r = llmb_cluster_command(co->cl,
                                      "FCALL llmb_agg_finish 1 %s %s %s %lld",
                                      j->base, j->id, doc, j->f[JF_VERSION]);

    free(doc);
    if (r == NULL) {
        llmb_coord_lost(co);
        return STEP_LOST;
    }
    if (r->type != REDIS_REPLY_INTEGER) {
        llmb_coord_reply_error(co, "llmb_agg_finish", j->queue, r);
    } else if (r->integer == -1) {
        llmb_info("job retried while it was aggregated: this run's aggregate "
                  "is dropped, the next one is made when it ends again job=%s "
                  "queue=%s", j->id, j->queue);
    } else if (r->integer == 1) {
        co->counters.jobs_aggregated++;
        llmb_info("job aggregated job=%s queue=%s state=%s tasks=%lld "
                  "results=%lld fields=%zu", j->id, j->queue, j->state,
                  j->f[JF_TASKS], j->results, llmb_agg_nfields(j->agg));
    } else {
        llmb_debug("job aggregated elsewhere or gone job=%s queue=%s", j->id,
                   j->queue);
    }
    freeReplyObject(r);
    return STEP_DONE;
}

static enum step step(struct llmb_coord *co, struct job *j)
{
    if (!j->loaded)
        return step_load(co, j);
    if (j->next < j->f[JF_TASKS] && strcmp(j->state, "gone") != 0)
        return step_read(co, j);
    return step_finish(co, j);
}

/* Takes from every queue whose primary answers, up to room jobs in all.
 * Returns 0, or LLMB_EIO once Redis is lost. */
static int take_all(struct llmb_coord *co, size_t batch)
{
    struct llmb_agg_work *w = co->agg;

    for (size_t i = 0; i < co->nqueues && w->n < batch; i++) {
        if (llmb_coord_away(co, co->queues[i].base))
            continue;
        if (take(co, &co->queues[i], batch - w->n) != 0 && !co->up)
            return LLMB_EIO;
    }
    return 0;
}

int llmb_aggregator_tick(struct llmb_coord *co)
{
    struct llmb_agg_work *w = co->agg;
    size_t batch = (size_t)co->cfg->agg_batch;
    int64_t start = llmb_mono_ms();
    size_t waiting = 0; /* jobs in a row left for an away primary */

    if (take_all(co, batch) != 0)
        return LLMB_EIO;
    while (w->n > 0 && waiting < w->n) {
        size_t k = w->rr % w->n;
        enum step s;

        if (llmb_coord_away(co, w->jobs[k].base)) {
            /* kept (its lease too) until its primary answers again */
            w->rr = k + 1;
            waiting++;
            continue;
        }
        waiting = 0;
        s = step(co, &w->jobs[k]);
        if (s == STEP_LOST && !co->up)
            return LLMB_EIO;
        if (s == STEP_DONE)
            job_drop(w, k);
        else
            w->rr = k + 1;
        if (llmb_mono_ms() - start >= co->cfg->agg_budget_ms)
            break;
        /* The batch is done and time is left: take more, so a backlog of
         * small jobs drains at the budget's pace, not a batch per tick. */
        if (w->n == 0 && take_all(co, batch) != 0)
            return LLMB_EIO;
    }
    return 0;
}
