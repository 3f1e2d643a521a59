/*
 * Job types, between workers. Every heartbeat the worker writes the types
 * it has handlers for into <base>:types of each of its queues (one HSET:
 * type -> wall-clock ms until which the advert holds, OWNER_TTL of the
 * worker from now), so that other workers, the coordinator's /healthz,
 * llmb-push and `llmb stats` can tell whether a queue, and a type on it,
 * is served (include/llmb/served.h).
 *
 * A claimed task whose type has no handler here does not fail at once:
 * another worker of the queue may have the handler. The task holds its
 * slot while one HGETALL <base>:types asks (read by llmb_served_parse,
 * as every program reads it); when a live worker advertises the type (or
 * "*"), the task is handed back with llmb_release, which gives its
 * attempt back. When none does, the worker remembers since
 * when it found the type unserved, and fails the task for good (kind
 * fatal) only once that has lasted --no-handler-fail-after-s. Released
 * tasks go back to the head of their queue, so a claim that brought only
 * such tasks backs the queue off for this worker (100 ms doubling to 5 s),
 * and a claim that brought work it can run resets that.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/list.h>
#include <llmb/log.h>
#include <llmb/served.h>
#include <llmb/util.h>

#include "core.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* Most unserved types remembered per queue; the oldest is forgotten (its
 * clock starts again, which only delays a failure). */
#define UNSERVED_MAX 256
/* <base>:types expires this long after the last advert of any worker. */
#define TYPES_TTL_S "86400"

void llmb_types_advertise(struct llmb_worker *w)
{
    char until[24];
    size_t argc = 2 + 2 * w->handlers.n;
    const char **argv = NULL;

    if (w->handlers.n == 0 || w->state != LLMB_WORKER_RUNNING)
        return;
    snprintf(until, sizeof(until), "%" PRId64,
             llmb_now_ms() + (int64_t)w->owner_ttl_ms);
    argv = llmb_xmalloc(argc * sizeof(*argv));
    argv[0] = "HSET";
    for (size_t i = 0; i < w->handlers.n; i++) {
        argv[2 + 2 * i] = w->handlers.v[i].type;
        argv[3 + 2 * i] = until;
    }
    for (size_t i = 0; i < w->nq; i++) {
        const char *expire[] = {"EXPIRE", w->q[i].types, TYPES_TTL_S};
        argv[1] = w->q[i].types;
        llmb_worker_send(w, w->q[i].types, NULL, NULL, (int)argc, argv, NULL);
        llmb_worker_send(w, w->q[i].types, NULL, NULL, 3, expire, NULL);
    }
    free(argv);
}

void llmb_types_claimed(struct llmb_worker *w, struct llmb_wqueue *q,
                        long n, long unhandled)
{
    (void)w;
    if (n <= 0)
        return;
    if (unhandled < n) {
        q->backoff_ms = 0;
        return;
    }
    q->backoff_ms = q->backoff_ms == 0 ? BACKOFF_MIN_MS : 2 * q->backoff_ms;
    if (q->backoff_ms > BACKOFF_MAX_MS)
        q->backoff_ms = BACKOFF_MAX_MS;
    q->backoff_mono_ms = llmb_mono_ms() + q->backoff_ms;
}

/* q's entry for type, or NULL. */
static struct llmb_unserved *unserved_find(struct llmb_wqueue *q,
                                           const char *type)
{
    for (struct llmb_unserved *u = q->unserved; u != NULL; u = u->next)
        if (strcmp(u->type, type) == 0)
            return u;
    return NULL;
}

/* Takes u off q's list and frees it. */
static void unserved_free(struct llmb_wqueue *q, struct llmb_unserved *u)
{
    LLMB_LIST_REMOVE(q->unserved, u);
    free(u->type);
    free(u);
}

/* q's entry for type, made (and logged) when it is new: the type was found
 * unserved just now. The list keeps the UNSERVED_MAX newest. */
static struct llmb_unserved *unserved_note(struct llmb_worker *w,
                                           struct llmb_wqueue *q,
                                           const char *type)
{
    struct llmb_unserved *u = unserved_find(q, type), *v = NULL;
    size_t n = 1;

    if (u != NULL)
        return u;
    u = llmb_xcalloc(1, sizeof(*u));
    u->type = llmb_xstrdup(type);
    u->since_mono_ms = llmb_mono_ms();
    LLMB_LIST_INSERT(q->unserved, u);
    for (v = u; v->next != NULL && n < UNSERVED_MAX; v = v->next)
        n++;
    if (v->next != NULL)
        unserved_free(q, v->next);
    llmb_warn("no handler for job type \"%s\" here and no live worker of "
              "the queue handles it: its tasks go back to the queue, and "
              "fail for good if none does for %lld s queue=%s type=%s", type,
              w->cfg->no_handler_fail_after_s, q->name, type);
    return u;
}

/* Hands t back: its outcome is a release behind the tasks of its priority
 * that wait (so a worker without the handler is not given the same task
 * again and again), its attempt given back. */
static void hand_back(struct llmb_task *t)
{
    llmb_report_add(t->w, t->q, LLMB_OUTCOME_HANDBACK, t->ref, t->token,
                    NULL, 0);
    t->finished = true;
    llmb_task_free(t);
}

/* The answer of HGETALL <base>:types, read by llmb_served_parse like
 * every other program's: decides t's fate. */
static void check_reply(struct llmb_aconn *ac, const redisReply *r,
                        void *priv)
{
    struct llmb_task *t = priv;
    struct llmb_worker *w = t->w;
    struct llmb_wqueue *q = t->q;
    struct llmb_served s;
    bool served = false;

    (void)ac;
    if (t->stop == LLMB_TASK_DROP) {
        /* Lease lost, job cancelled, or released at shutdown (the
         * release is already queued): nothing more to say. */
        llmb_debug("task without handler stopped (%s) job=%s queue=%s",
                   t->stop_why, t->job, q->name);
        t->finished = true;
        llmb_task_free(t);
        return;
    }
    if (r == NULL) {
        hand_back(t);
        return;
    }
    if (llmb_served_parse(r, llmb_now_ms(), INT64_MAX, &s) != 0) {
        llmb_warn("cannot read which workers handle job type \"%s\" "
                  "(%s); handing the task back job=%s queue=%s", t->type,
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply",
                  t->job, q->name);
        hand_back(t);
        return;
    }
    served = llmb_served_type(&s, t->type);
    llmb_served_fini(&s);
    if (served) {
        struct llmb_unserved *u = unserved_find(q, t->type);
        if (u != NULL)
            unserved_free(q, u);
        llmb_debug("no handler here for job type %s, another live worker "
                   "has one: handing the task back job=%s task=%ld queue=%s",
                   t->type, t->job, t->x.task, q->name);
        hand_back(t);
        return;
    }
    struct llmb_unserved *u = unserved_note(w, q, t->type);
    int64_t waited = llmb_mono_ms() - u->since_mono_ms;
    if (waited < w->cfg->no_handler_fail_after_s * 1000) {
        hand_back(t);
        return;
    }
    char *msg = llmb_xasprintf("no handler for job type \"%s\" on worker %s, "
                               "and no live worker of queue %s has handled "
                               "it for %lld s", t->type, w->id, q->name,
                               w->cfg->no_handler_fail_after_s);
    llmb_warn("%s job=%s task=%ld queue=%s", msg, t->job, t->x.task, q->name);
    llmb_report_add(w, q, LLMB_OUTCOME_FATAL, t->ref, t->token, msg,
                    strlen(msg));
    free(msg);
    t->finished = true;
    llmb_task_free(t);
}

void llmb_types_unhandled(struct llmb_task *t)
{
    struct llmb_worker *w = t->w;
    const char *argv[] = {"HGETALL", t->q->types};

    if (llmb_worker_send(w, t->q->types, check_reply, t, 2, argv, NULL) != 0)
        hand_back(t);
}

void llmb_types_fini(struct llmb_wqueue *q)
{
    while (q->unserved != NULL)
        unserved_free(q, q->unserved);
    free(q->types);
    q->types = NULL;
}
