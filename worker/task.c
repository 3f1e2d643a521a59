/*
 * One claimed task on this worker (struct llmb_task in core.h): started
 * on the executor of its job type's handler, watched by a timer for its
 * timeout_s, stopped when the heartbeat says its lease is gone or its job
 * was cancelled, and turned into an outcome for report.c when the executor
 * calls done. A task of a type with no handler here goes to types.c,
 * which hands it back or fails it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/list.h>
#include <llmb/log.h>
#include <llmb/util.h>

#include "core.h"
#include "executors/llm.h"

void llmb_task_free(struct llmb_task *t)
{
    struct llmb_worker *w = t->w;

    ev_timer_stop(w->loop, &t->timer);
    LLMB_LIST_REMOVE(w->tasks, t);
    w->running--;
    t->q->held--;
    free(t->ref);
    free(t->token);
    free(t->job);
    free(t->type);
    free(t->payload);
    free(t->json);
    free(t);
}

/* The executor's done callback (llmb_exec_done_fn): turns the outcome into
 * a report unless the task was dropped, then frees the task, or leaves
 * that to the caller when done came from inside start() or cancel(). */
static void task_done(void *token, enum llmb_exec_status status,
                      const char *text, size_t len)
{
    struct llmb_task *t = token;
    struct llmb_worker *w = t->w;
    int64_t ms = llmb_mono_ms() - t->started_mono_ms;

    if (t->finished) {
        llmb_error("handler %s called done twice for one task job=%s "
                   "queue=%s (ignored)", t->h->spec, t->job, t->q->name);
        return;
    }
    t->finished = true;
    ev_timer_stop(w->loop, &t->timer);
    if (t->stop == LLMB_TASK_DROP) {
        llmb_info("task stopped, outcome dropped (%s) job=%s task=%ld "
                  "queue=%s", t->stop_why, t->job, t->x.task, t->q->name);
    } else if (t->stop == LLMB_TASK_TIMEOUT) {
        char *msg = llmb_xasprintf("timed out after %g s", t->x.timeout_s);
        llmb_info("task timed out job=%s task=%ld queue=%s ms=%" PRId64,
                  t->job, t->x.task, t->q->name, ms);
        llmb_report_add(w, t->q, LLMB_OUTCOME_TIMEOUT, t->ref, t->token, msg,
                        strlen(msg));
        free(msg);
    } else if (status == LLMB_EXEC_OK) {
        llmb_debug("task done job=%s task=%ld queue=%s ms=%" PRId64, t->job,
                   t->x.task, t->q->name, ms);
        llmb_report_add(w, t->q, LLMB_OUTCOME_OK, t->ref, t->token, text, len);
    } else {
        enum llmb_outcome kind = status == LLMB_EXEC_FATAL ?
                                 LLMB_OUTCOME_FATAL : LLMB_OUTCOME_ERROR;
        llmb_info("task failed%s job=%s task=%ld queue=%s ms=%" PRId64
                  " error=\"%.*s\"", kind == LLMB_OUTCOME_FATAL ?
                  " for good" : "", t->job, t->x.task, t->q->name, ms,
                  (int)(len > 300 ? 300 : len), text);
        llmb_report_add(w, t->q, kind, t->ref, t->token, text, len);
    }
    if (!t->in_call)
        llmb_task_free(t);
}

/* A call of llmb_rendezvous for the llm executor: whom to tell. */
struct rendezvous_call {
    llmb_llm_rv_fn *cb;
    void *arg;
};

static int64_t reply_int(const redisReply *r, size_t i)
{
    return i < r->elements && r->element[i]->type == REDIS_REPLY_INTEGER ?
           (int64_t)r->element[i]->integer : -1;
}

static void rendezvous_reply(struct llmb_aconn *ac, const redisReply *r,
                             void *priv)
{
    struct rendezvous_call *c = priv;
    struct llmb_llm_rv rv;

    (void)ac;
    memset(&rv, 0, sizeof(rv));
    if (r == NULL) {
        c->cb(c->arg, "the connection to Redis was lost", NULL);
    } else if (r->type == REDIS_REPLY_ERROR) {
        c->cb(c->arg, r->str, NULL);
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        c->cb(c->arg, "llmb_rendezvous answered something else than an "
              "array", NULL);
    } else {
        rv.held = reply_int(r, 0) == 1 && r->elements >= 7;
        rv.now_ms = reply_int(r, 1);
        rv.start_ms = reply_int(r, 2);
        rv.arrived = (long)reply_int(r, 3);
        rv.tasks = (long)reply_int(r, 4);
        rv.missing = (long)reply_int(r, 5);
        rv.deadline_ms = reply_int(r, 6);
        c->cb(c->arg, NULL, &rv);
    }
    free(c);
}

/* The llm executor's synchronized start (llmb_llm_rendezvous): FCALL
 * llmb_rendezvous on the task's queue, under its lease. */
static int task_rendezvous(void *token, long timeout_ms, const char *phase,
                           long poll_ms, llmb_llm_rv_fn *cb, void *arg)
{
    struct llmb_task *t = token;
    struct rendezvous_call *c = llmb_xmalloc(sizeof(*c));
    char ms[24], poll[24];
    const char *argv[] = {"FCALL", "llmb_rendezvous", "1", t->q->base,
                          t->w->id, t->ref, t->token, ms, phase, poll};

    snprintf(ms, sizeof(ms), "%ld", timeout_ms);
    snprintf(poll, sizeof(poll), "%ld", poll_ms);
    c->cb = cb;
    c->arg = arg;
    if (llmb_worker_send(t->w, t->q->base, rendezvous_reply, c, 10, argv,
                         NULL) != 0) {
        free(c);
        return -1;
    }
    return 0;
}

/* The llm executor's record sink (llmb_llm_record_sink): queues a chunk
 * of task `token`'s records, sent with llmb_records ahead of its outcome.
 * A task being dropped (lease gone) sends none: Redis would refuse them. */
static void task_records(void *token, const char *chunk, size_t len)
{
    struct llmb_task *t = token;

    if (t->finished || t->stop == LLMB_TASK_DROP)
        return;
    llmb_report_add(t->w, t->q, LLMB_OUTCOME_RECORDS, t->ref, t->token,
                    chunk, len);
}

/* A read of a dataset for the llm executor: whom to tell. */
struct dataset_read {
    llmb_llm_rows_fn *cb;
    void *arg;
};

static void dataset_reply(struct llmb_aconn *ac, const redisReply *r,
                          void *priv)
{
    struct dataset_read *d = priv;
    const char **rows = NULL;
    size_t *lens = NULL;

    (void)ac;
    if (r == NULL) {
        d->cb(d->arg, "the connection to Redis was lost", 0, NULL, NULL);
    } else if (r->type == REDIS_REPLY_ERROR) {
        d->cb(d->arg, r->str, 0, NULL, NULL);
    } else if (r->type != REDIS_REPLY_ARRAY) {
        d->cb(d->arg, "llmb_dataset_read answered something else than an "
              "array", 0, NULL, NULL);
    } else {
        rows = llmb_xcalloc(r->elements + 1, sizeof(*rows));
        lens = llmb_xcalloc(r->elements + 1, sizeof(*lens));
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            rows[i] = e->type == REDIS_REPLY_STRING ? e->str : "";
            lens[i] = e->type == REDIS_REPLY_STRING ? e->len : 0;
        }
        d->cb(d->arg, NULL, r->elements, rows, lens);
    }
    free(rows);
    free(lens);
    free(d);
}

/* The llm executor's dataset source (llmb_llm_dataset_source): FCALL
 * llmb_dataset_read on the task's queue. */
static int task_dataset(void *token, const char *job, long first,
                        long count, llmb_llm_rows_fn *cb, void *arg)
{
    struct llmb_task *t = token;
    struct dataset_read *d = llmb_xmalloc(sizeof(*d));
    char a[24], b[24];
    const char *argv[] = {"FCALL", "llmb_dataset_read", "1", t->q->base, job,
                          a, b};

    snprintf(a, sizeof(a), "%ld", first);
    snprintf(b, sizeof(b), "%ld", count);
    d->cb = cb;
    d->arg = arg;
    if (llmb_worker_send(t->w, t->q->base, dataset_reply, d, 7, argv,
                         NULL) != 0) {
        free(d);
        return -1;
    }
    return 0;
}

static void timeout_cb(struct ev_loop *loop, ev_timer *tm, int revents)
{
    struct llmb_task *t = tm->data;

    (void)loop;
    (void)revents;
    llmb_task_stop(t, LLMB_TASK_TIMEOUT, "timeout");
}

void llmb_task_stop(struct llmb_task *t, enum llmb_task_stop how,
                    const char *why)
{
    if (t->finished)
        return;
    /* A drop wins over a timeout: nothing is reported for a lost lease. */
    if (t->stop == LLMB_TASK_DROP || (t->stop == how))
        return;
    bool first = t->stop == LLMB_TASK_RUN;
    t->stop = how;
    t->stop_why = why;
    ev_timer_stop(t->w->loop, &t->timer);
    if (!first || t->h == NULL)
        return; /* already cancelled once, the executor is stopping; or no
                   executor: types.c ends it when Redis answers */
    t->in_call = true;
    t->h->ops->cancel(t->handle);
    t->in_call = false;
    if (t->finished)
        llmb_task_free(t);
}

struct llmb_task *llmb_task_find(struct llmb_worker *w, struct llmb_wqueue *q,
                                 const char *ref, const char *token)
{
    for (struct llmb_task *t = w->tasks; t != NULL; t = t->next)
        if (t->q == q && !t->finished && strcmp(t->ref, ref) == 0 &&
            strcmp(t->token, token) == 0)
            return t;
    return NULL;
}

/* The task document an exec program reads on stdin. Ids, types and queue
 * names hold no character that JSON escapes; the payload is valid JSON
 * text (the push checked it) and goes in as it is. */
static char *task_json(const struct llmb_task *t, size_t *len)
{
    struct llmb_buf b;

    llmb_buf_init(&b);
    llmb_buf_appendf(&b, "{\"job\":\"%s\",\"task\":%ld,\"tasks\":%ld,"
                     "\"attempt\":%ld,\"type\":\"%s\",\"queue\":\"%s\","
                     "\"payload\":", t->job, t->x.task, t->x.tasks,
                     t->x.attempt, t->type, t->q->name);
    llmb_buf_append(&b, t->payload, t->x.payload_len);
    llmb_buf_appendf(&b, ",\"deadline_ms\":%" PRId64 "}\n", t->x.deadline_ms);
    *len = b.len;
    return llmb_buf_steal(&b);
}

void llmb_task_start(struct llmb_worker *w, struct llmb_wqueue *q,
                     const char *job, long index, const char *token,
                     long attempt, const char *type, const char *payload,
                     size_t payload_len, double timeout_s, long tasks)
{
    struct llmb_task *t = llmb_xcalloc(1, sizeof(*t));

    t->w = w;
    t->q = q;
    t->job = llmb_xstrdup(job);
    /* the member the claim handed out (05-lifecycle.lua): the job's id
     * for a job of one task, "<id>:<index>" for a fan-out job's task */
    t->ref = tasks == 1 ? llmb_xstrdup(job)
                        : llmb_xasprintf("%s:%ld", job, index);
    t->token = llmb_xstrdup(token);
    t->type = llmb_xstrdup(type);
    t->payload = llmb_xstrndup(payload, payload_len);
    t->started_mono_ms = llmb_mono_ms();
    t->x.job = t->job;
    t->x.task = index;
    t->x.tasks = tasks;
    t->x.attempt = attempt;
    t->x.type = t->type;
    t->x.queue = q->name;
    t->x.payload = t->payload;
    t->x.payload_len = payload_len;
    t->x.timeout_s = timeout_s;
    t->x.deadline_ms = timeout_s > 0 ?
        llmb_now_ms() + (int64_t)(timeout_s * 1000.0) : 0;
    ev_timer_init(&t->timer, timeout_cb, timeout_s, 0.0);
    t->timer.data = t;

    LLMB_LIST_INSERT(w->tasks, t);
    w->running++;
    q->held++;

    t->h = llmb_handlers_find(&w->handlers, type);
    if (t->h == NULL) {
        llmb_types_unhandled(t);
        return;
    }
    if (t->h->wants_json) {
        t->json = task_json(t, &t->x.json_len);
        t->x.json = t->json;
    } else {
        t->x.json = "";
    }
    llmb_debug("task started job=%s task=%ld attempt=%ld queue=%s type=%s",
               job, index, attempt, q->name, type);
    llmb_llm_record_sink = task_records;
    llmb_llm_dataset_source = task_dataset;
    llmb_llm_rendezvous = task_rendezvous;
    t->in_call = true;
    t->handle = t->h->ops->start(t->h->inst, &t->x, w->loop, task_done, t);
    t->in_call = false;
    if (t->finished) {
        llmb_task_free(t);
        return;
    }
    if (timeout_s > 0)
        ev_timer_start(w->loop, &t->timer);
}
