/*
 * Outcomes on their way to Redis. Tasks that end during one loop iteration
 * queue their outcome here; the worker's step at the end of the iteration
 * sends them as one call per queue and kind (llmb_complete with many
 * triples, llmb_fail, llmb_release), pipelined with the next claim. The
 * llm executor's record chunks go the same way with llmb_records, 16 per
 * call, ahead of the outcomes: Redis runs the calls of one connection in
 * order, so a task's records are appended while its lease still opens.
 *
 * An outcome stays owned here until Redis answers for it. When the
 * connection fails first, it goes back to the front of its list and is
 * sent again once reconnected: if Redis had already recorded it, the
 * second call is refused as stale (the lease is gone), which is logged and
 * harmless, so nothing is recorded twice.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/log.h>
#include <llmb/reply.h>
#include <llmb/util.h>

#include "core.h"

/* Most outcomes in one call: keeps each function call short. */
#define REPORT_BATCH 250
/* Most record chunks in one llmb_records call (its limit, 16 of at most
 * 16 KiB here: a call carries 256 KiB at most). */
#define RECORDS_BATCH 16

/* How each list of a queue is sent. */
static const struct route {
    const char *function; /* the library function */
    const char *flag;     /* argument before the outcomes, or NULL */
    size_t per;           /* arguments per outcome: ref token [kind] [text] */
    size_t batch;         /* most outcomes per call */
} routes[LLMB_ROUTE_N] = {
    [LLMB_ROUTE_RECORDS] = {"llmb_records", NULL, 3, RECORDS_BATCH},
    [LLMB_ROUTE_DONE] = {"llmb_complete", NULL, 3, REPORT_BATCH},
    [LLMB_ROUTE_FAILED] = {"llmb_fail", NULL, 4, REPORT_BATCH},
    [LLMB_ROUTE_RELEASE] = {"llmb_release", NULL, 2, REPORT_BATCH},
    [LLMB_ROUTE_HANDBACK] = {"llmb_release", "back", 2, REPORT_BATCH},
};

/* A batch in flight: what was sent, to account for the reply. */
struct report_batch {
    struct llmb_worker *w;
    struct llmb_wqueue *q;
    enum llmb_report_route route; /* the list it came from */
    struct llmb_report_list items;
};

static void report_free(struct llmb_report *r)
{
    free(r->ref);
    free(r->token);
    free(r->text);
    free(r);
}

static void list_append(struct llmb_report_list *l, struct llmb_report *r)
{
    r->next = NULL;
    if (l->tail != NULL)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->n++;
}

/* Puts the items of src back at the front of dst. */
static void list_prepend_all(struct llmb_report_list *dst,
                             struct llmb_report_list *src)
{
    if (src->head == NULL)
        return;
    src->tail->next = dst->head;
    if (dst->tail == NULL)
        dst->tail = src->tail;
    dst->head = src->head;
    dst->n += src->n;
    src->head = src->tail = NULL;
    src->n = 0;
}

static void list_clear(struct llmb_report_list *l)
{
    while (l->head != NULL) {
        struct llmb_report *r = l->head;
        l->head = r->next;
        report_free(r);
    }
    l->tail = NULL;
    l->n = 0;
}

static enum llmb_report_route route_of(enum llmb_outcome k)
{
    switch (k) {
    case LLMB_OUTCOME_OK:
        return LLMB_ROUTE_DONE;
    case LLMB_OUTCOME_RELEASE:
        return LLMB_ROUTE_RELEASE;
    case LLMB_OUTCOME_HANDBACK:
        return LLMB_ROUTE_HANDBACK;
    case LLMB_OUTCOME_RECORDS:
        return LLMB_ROUTE_RECORDS;
    case LLMB_OUTCOME_ERROR:
    case LLMB_OUTCOME_TIMEOUT:
    case LLMB_OUTCOME_FATAL:
        break;
    }
    return LLMB_ROUTE_FAILED;
}

void llmb_report_add(struct llmb_worker *w, struct llmb_wqueue *q,
                     enum llmb_outcome kind, const char *ref,
                     const char *token, const char *text, size_t len)
{
    struct llmb_report *r = llmb_xcalloc(1, sizeof(*r));

    (void)w;
    r->kind = kind;
    r->ref = llmb_xstrdup(ref);
    r->token = llmb_xstrdup(token);
    if (text != NULL) {
        r->text = llmb_xmalloc(len + 1);
        memcpy(r->text, text, len);
        r->text[len] = '\0';
        r->text_len = len;
    }
    list_append(&q->out[route_of(kind)], r);
}

static const char *fail_kind(enum llmb_outcome k)
{
    switch (k) {
    case LLMB_OUTCOME_TIMEOUT:
        return "timeout";
    case LLMB_OUTCOME_FATAL:
        return "fatal";
    default:
        return "error";
    }
}

/* Accounts for the answer to one outcome; v is the function's per-task
 * reply. */
static void report_answered(struct report_batch *b, struct llmb_report *r,
                            long long v)
{
    struct llmb_worker *w = b->w;
    const char *q = b->q->name;

    switch (b->route) {
    case LLMB_ROUTE_RECORDS:
        if (v == 3)
            llmb_warn("records dropped: the job has max_record_bytes of them "
                      "task=%s queue=%s", r->ref, q);
        else if (v != 1 && v != 2)
            llmb_debug("records refused (%lld): the lease is no longer held "
                       "task=%s queue=%s", v, r->ref, q);
        break;
    case LLMB_ROUTE_DONE:
        if (v == 1) {
            w->completed++;
        } else if (v == -1) {
            w->failed++;
            llmb_warn("redis refused the result (not a JSON object or too "
                      "large); the attempt failed task=%s queue=%s", r->ref,
                      q);
        } else {
            llmb_warn("result dropped: the lease is no longer held (the task "
                      "was reaped or re-run elsewhere) task=%s queue=%s",
                      r->ref, q);
        }
        break;
    case LLMB_ROUTE_FAILED:
        if (v == 1 || v == 2)
            w->failed++;
        if (v == 0)
            llmb_warn("failure dropped: the lease is no longer held "
                      "task=%s queue=%s", r->ref, q);
        else
            llmb_debug("failure recorded (%s) task=%s queue=%s",
                       v == 2 ? "failed for good" : "retry scheduled",
                       r->ref, q);
        break;
    case LLMB_ROUTE_RELEASE:
    case LLMB_ROUTE_HANDBACK:
    case LLMB_ROUTE_N:
        if (v == 1)
            llmb_info("task released task=%s queue=%s", r->ref, q);
        else
            llmb_warn("release refused: the lease is no longer held "
                      "task=%s queue=%s", r->ref, q);
        break;
    }
}

static void batch_reply(struct llmb_aconn *ac, const redisReply *reply,
                        void *priv)
{
    struct report_batch *b = priv;
    struct llmb_worker *w = b->w;
    struct llmb_report_list *home = &b->q->out[b->route];

    (void)ac;
    w->reports_inflight--;
    if (reply == NULL) {
        /* Not known to be recorded: send again after the reconnect. */
        list_prepend_all(home, &b->items);
        free(b);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        /* Transient server states are retried (CLUSTERDOWN, MISCONF,
         * NOREPLICAS and redirects too); anything else would fail the
         * same way again. */
        if (llmb_reply_refused_for_now(reply->str)) {
            llmb_warn("redis answered %s: %s (retrying) queue=%s",
                      routes[b->route].function, reply->str, b->q->name);
            list_prepend_all(home, &b->items);
            llmb_worker_hold(w, 1000);
        } else {
            llmb_error("redis refused %s: %s (%zu outcomes dropped) queue=%s",
                       routes[b->route].function, reply->str, b->items.n,
                       b->q->name);
            list_clear(&b->items);
        }
        free(b);
        return;
    }
    size_t i = 0;
    for (struct llmb_report *r = b->items.head; r != NULL; r = r->next, i++) {
        long long v = 0;
        if (reply->type == REDIS_REPLY_ARRAY && i < reply->elements &&
            reply->element[i]->type == REDIS_REPLY_INTEGER)
            v = reply->element[i]->integer;
        report_answered(b, r, v);
    }
    list_clear(&b->items);
    free(b);
}

/* Sends up to routes[route].batch outcomes of list route of queue q.
 * Returns 0, or -1 when the connection is not ready (the outcomes stay
 * queued). */
static int batch_send(struct llmb_worker *w, struct llmb_wqueue *q,
                      enum llmb_report_route route)
{
    const struct route *rt = &routes[route];
    struct llmb_report_list *l = &q->out[route];
    size_t n = l->n < rt->batch ? l->n : rt->batch;
    size_t argc = 6 + n * rt->per; /* (one more: the flag) */
    const char **argv = llmb_xmalloc(argc * sizeof(*argv));
    size_t *lens = llmb_xmalloc(argc * sizeof(*lens));
    struct report_batch *b = llmb_xcalloc(1, sizeof(*b));
    size_t k = 0;

#define ARG(s, len) (argv[k] = (s), lens[k] = (len), k++)
    ARG("FCALL", 5);
    ARG(rt->function, strlen(rt->function));
    ARG("1", 1);
    ARG(q->base, strlen(q->base));
    ARG(w->id, strlen(w->id));
    if (rt->flag != NULL)
        ARG(rt->flag, strlen(rt->flag));
    b->w = w;
    b->q = q;
    b->route = route;
    for (size_t i = 0; i < n; i++) {
        struct llmb_report *r = l->head;
        l->head = r->next;
        if (l->head == NULL)
            l->tail = NULL;
        l->n--;
        list_append(&b->items, r);
        ARG(r->ref, strlen(r->ref));
        ARG(r->token, strlen(r->token));
        if (rt->per == 4) {
            const char *kind = fail_kind(r->kind);
            ARG(kind, strlen(kind));
        }
        if (rt->per >= 3)
            ARG(r->text != NULL ? r->text : "", r->text_len);
    }
#undef ARG
    int rc = llmb_worker_send(w, q->base, batch_reply, b, (int)k, argv,
                              lens);
    free(argv);
    free(lens);
    if (rc != 0) {
        list_prepend_all(l, &b->items);
        free(b);
        return -1;
    }
    w->reports_inflight++;
    return 0;
}

void llmb_report_flush(struct llmb_worker *w)
{
    if (llmb_mono_ms() < w->hold_until_mono_ms)
        return;
    for (size_t i = 0; i < w->nq; i++) {
        struct llmb_wqueue *q = &w->q[i];
        if (!llmb_worker_ready(w, q->base))
            continue; /* its primary is away: its outcomes wait */
        /* in route order: a task's record chunks reach Redis while its
         * lease still opens, before the outcome that ends it */
        for (size_t j = 0; j < LLMB_ROUTE_N; j++)
            while (q->out[j].n > 0)
                if (batch_send(w, q, (enum llmb_report_route)j) != 0)
                    return;
    }
}

bool llmb_report_idle(const struct llmb_worker *w)
{
    if (w->reports_inflight > 0)
        return false;
    for (size_t i = 0; i < w->nq; i++)
        for (size_t j = 0; j < LLMB_ROUTE_N; j++)
            if (w->q[i].out[j].n > 0)
                return false;
    return true;
}

void llmb_report_clear(struct llmb_worker *w)
{
    for (size_t i = 0; i < w->nq; i++)
        for (size_t j = 0; j < LLMB_ROUTE_N; j++)
            list_clear(&w->q[i].out[j]);
}
