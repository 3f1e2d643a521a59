/*
 * Pulling work. While the worker has free slots it claims tasks with
 * FCALL llmb_claim, up to min(free, 1000) per call, from its queues in the
 * configured order: a full batch starts the round again from the first
 * queue, a short one moves on to the next queue, and a round that ends
 * with slots still free means every queue is empty. Then the worker blocks
 * on the queues' wake-up lists (BLPOP on its own connection) until a push
 * wakes it or the earliest delayed task is due, clamped to [10 ms, 5 s]:
 * an idle worker makes no calls in between. A queue that refused a claim,
 * or is backed off because its last claim brought only tasks this worker
 * has no handler for (types.c), is skipped until then.
 *
 * One claim and one BLPOP at most are in flight; the worker's step sends
 * the next claim at the end of the loop iteration, so it travels in the
 * same write as the outcomes that freed its slots.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/conn.h>
#include <llmb/log.h>
#include <llmb/reply.h>
#include <llmb/util.h>

#include "core.h"

#define CLAIM_MAX 1000
#define CLAIM_FIELDS 4
#define BLOCK_MIN_MS 10
#define BLOCK_MAX_MS 5000

/* Option `letter` of a claim reply's opts (lua/05-lifecycle.lua OPTS: a
 * letter and a number each, defaults left out) into *v; false when
 * absent. */
static bool opt_get(const char *opts, char letter, double *v)
{
    for (const char *p = opts; *p != '\0'; p++) {
        if (*p == letter && (p[1] == '-' || p[1] == '.' ||
                             (p[1] >= '0' && p[1] <= '9'))) {
            char *end;
            double x = strtod(p + 1, &end);
            if (end == p + 1)
                return false;
            *v = x;
            return true;
        }
    }
    return false;
}

/* Starts the tasks of one claim reply. Returns how many it held, or -1
 * when the reply is malformed. */
static long claim_take(struct llmb_worker *w, struct llmb_wqueue *q,
                       const redisReply *r)
{
    long long now, due, count;
    long unhandled = 0;
    char tokz[192]; /* "<seq>.<secret>": the batch's */

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 4 ||
        !llmb_reply_ll(r->element[0], &now) || !llmb_reply_ll(r->element[1], &due) ||
        !llmb_reply_ll(r->element[2], &count) || count < 0 ||
        r->element[3]->type != REDIS_REPLY_STRING ||
        r->elements != 4 + (size_t)count * CLAIM_FIELDS)
        return -1;
    q->due_mono_ms = due >= 0 ? llmb_mono_ms() + (due - now) : INT64_MAX;
    if (count == 0)
        return 0;
    if (r->element[3]->len >= sizeof(tokz) || r->element[3]->len == 0) {
        llmb_error("claim reply token malformed (its %lld tasks are skipped; "
                   "their lease runs out and they run again) queue=%s",
                   count, q->name);
        return count;
    }
    snprintf(tokz, sizeof(tokz), "%s", r->element[3]->str);
    for (long long i = 0; i < count; i++) {
        redisReply **f = r->element + 4 + i * CLAIM_FIELDS;
        double tasks = 1, attempt = 1, timeout_s = 600;
        long index = 0;
        char job[160];
        if (f[0]->type != REDIS_REPLY_STRING || f[0]->len == 0 ||
            f[0]->len >= sizeof(job) || f[1]->type != REDIS_REPLY_STRING ||
            f[2]->type != REDIS_REPLY_STRING ||
            f[3]->type != REDIS_REPLY_STRING) {
            llmb_error("malformed task %lld of the claim reply (skipped; "
                       "its lease runs out and it runs again) queue=%s",
                       i, q->name);
            continue;
        }
        if (w->state != LLMB_WORKER_RUNNING) {
            /* Claimed just as the worker stopped claiming (draining) or
             * gave its tasks back: hand it back at once, unspent. */
            llmb_report_add(w, q, LLMB_OUTCOME_RELEASE, f[0]->str, tokz, NULL,
                            0);
            continue;
        }
        /* the ref: "<id>" (one task) or "<id>:<index>" */
        snprintf(job, sizeof(job), "%s", f[0]->str);
        char *colon = strchr(job, ':');
        if (colon != NULL) {
            *colon = '\0';
            index = strtol(colon + 1, NULL, 10);
        }
        opt_get(f[3]->str, 'n', &tasks);
        opt_get(f[3]->str, 'a', &attempt);
        opt_get(f[3]->str, 't', &timeout_s);
        if (colon != NULL && tasks < 2)
            tasks = 2; /* (a fan-out task: its ref says so) */
        if (llmb_handlers_find(&w->handlers, f[1]->str) == NULL)
            unhandled++;
        llmb_task_start(w, q, job, index, tokz, (long)attempt, f[1]->str,
                        f[2]->str, f[2]->len, timeout_s, (long)tasks);
    }
    llmb_types_claimed(w, q, (long)count, unhandled);
    return (long)count;
}

static void claim_reply(struct llmb_aconn *ac, const redisReply *r,
                        void *priv)
{
    struct llmb_worker *w = priv;
    /* The queue this claim was sent to: a BLPOP reply or a reconnect may
     * have moved claim_qi on since. */
    size_t qi = w->claim_sent_qi;
    struct llmb_wqueue *q = &w->q[qi];

    (void)ac;
    w->claim_inflight = false;
    if (r == NULL)
        return; /* connection lost: claim again when it is back */
    if (r->type == REDIS_REPLY_ERROR) {
        /* One broken queue (a key of the wrong type planted under it) must
         * not stop the others: skip it for a second and go on. */
        llmb_error("redis refused llmb_claim: %s queue=%s", r->str, q->name);
        q->refused_mono_ms = llmb_mono_ms() + 1000;
        if (qi + 1 < w->nq) {
            w->claim_qi = qi + 1;
        } else {
            w->claim_qi = 0;
            w->queues_empty = true;
        }
        return;
    }
    long got = claim_take(w, q, r);
    if (got < 0) {
        char what[128];
        llmb_error("unexpected reply to llmb_claim: %s, not now, next due, "
                   "count, token and 4 fields per task; is the function library "
                   "of another version? queue=%s",
                   llmb_reply_describe(r, what, sizeof(what)), q->name);
        llmb_worker_hold(w, 1000);
        return;
    }
    if (got > 0)
        llmb_debug("claimed tasks n=%ld queue=%s", got, q->name);
    if (got >= w->claim_n) {
        w->claim_qi = 0; /* more may wait: start again at the first queue */
    } else if (qi + 1 < w->nq) {
        w->claim_qi = qi + 1;
    } else {
        w->claim_qi = 0;
        w->queues_empty = true;
    }
}

static void claim_send(struct llmb_worker *w)
{
    struct llmb_wqueue *q;
    long n = llmb_worker_free_slots(w);
    char nbuf[24], lease[24];
    int64_t now = llmb_mono_ms();

    /* On a cluster, a queue whose primary is away (a failover) waits for
     * it; the others go on. */
    while (w->claim_qi < w->nq && (w->q[w->claim_qi].refused_mono_ms > now ||
                                   w->q[w->claim_qi].backoff_mono_ms > now ||
                                   !llmb_worker_ready(w,
                                                      w->q[w->claim_qi].base)))
        w->claim_qi++;
    if (w->claim_qi >= w->nq) { /* the queues left were refused just now */
        w->claim_qi = 0;
        w->queues_empty = true;
        return;
    }
    q = &w->q[w->claim_qi];
    if (n > CLAIM_MAX)
        n = CLAIM_MAX;
    snprintf(nbuf, sizeof(nbuf), "%ld", n);
    snprintf(lease, sizeof(lease), "%lld", w->cfg->lease_ms);
    /* The lease secret: tokens are "<seq>.<secret>" and Redis keeps only a
     * hash of it, so no other credential can end this worker's tasks. */
    if (w->secret[0] == '\0' &&
        llmb_random_hex(w->secret, (sizeof(w->secret) - 1) / 2) != 0) {
        llmb_error("no random bytes for the lease secret (getrandom failed); "
                   "retrying");
        llmb_worker_hold(w, 1000);
        return;
    }
    const char *argv[] = {"FCALL", "llmb_claim", "1", q->base, w->id, nbuf,
                          lease, "250", w->secret};
    if (llmb_worker_send(w, q->base, claim_reply, w, 9, argv, NULL) != 0)
        return;
    w->claim_n = n;
    w->claim_sent_qi = w->claim_qi;
    w->claim_inflight = true;
}

/* A BLPOP in flight: its group. */
struct blpop_req {
    struct llmb_worker *w;
    size_t group;
};

static void blpop_reply(struct llmb_aconn *ac, const redisReply *r,
                        void *priv)
{
    struct blpop_req *b = priv;
    struct llmb_worker *w = b->w;

    (void)ac;
    w->groups[b->group].inflight = false;
    w->blpops--;
    free(b);
    if (r == NULL)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        llmb_error("redis refused BLPOP: %s", r->str);
        llmb_worker_hold(w, 1000);
    }
    /* Woken by a push, or the earliest due time came: claim again. */
    w->queues_empty = false;
    w->claim_qi = 0;
}

/* Sends a BLPOP on the wake keys of every group of queues that has none
 * in flight, until the earliest due time of a delayed task. */
static void blpop_send(struct llmb_worker *w)
{
    int64_t now = llmb_mono_ms(), due = INT64_MAX;
    const char **argv = llmb_xmalloc((w->nq + 2) * sizeof(*argv));
    char tbuf[32];

    for (size_t i = 0; i < w->nq; i++) {
        if (w->q[i].due_mono_ms < due)
            due = w->q[i].due_mono_ms;
        /* A queue backed off (types.c) is looked at again when that ends. */
        if (w->q[i].backoff_mono_ms > now && w->q[i].backoff_mono_ms < due)
            due = w->q[i].backoff_mono_ms;
    }
    int64_t ms = due == INT64_MAX ? BLOCK_MAX_MS : due - now;
    if (ms < BLOCK_MIN_MS)
        ms = BLOCK_MIN_MS;
    if (ms > BLOCK_MAX_MS)
        ms = BLOCK_MAX_MS;
    snprintf(tbuf, sizeof(tbuf), "%.3f", (double)ms / 1000.0);
    argv[0] = "BLPOP";
    for (size_t g = 0; g < w->ngroups; g++) {
        struct llmb_blk_group *grp = &w->groups[g];
        struct blpop_req *b;
        size_t argc = 1;
        if (grp->inflight || !llmb_acluster_block_ready(w->rc, grp->key))
            continue;
        for (size_t i = 0; i < w->nq; i++)
            if (w->q[i].blk_group == g)
                argv[argc++] = w->q[i].wake;
        argv[argc++] = tbuf;
        b = llmb_xmalloc(sizeof(*b));
        b->w = w;
        b->group = g;
        if (llmb_acluster_block_argv(w->rc, grp->key, ms, blpop_reply, b,
                                     (int)argc, argv, NULL) == 0) {
            grp->inflight = true;
            w->blpops++;
        } else {
            free(b);
        }
    }
    free(argv);
}

void llmb_claim_step(struct llmb_worker *w)
{
    if (w->state != LLMB_WORKER_RUNNING || llmb_worker_free_slots(w) <= 0 ||
        llmb_mono_ms() < w->hold_until_mono_ms)
        return;
    if (!w->queues_empty) {
        if (!w->claim_inflight &&
            (llmb_acluster_enabled(w->rc) ||
             llmb_worker_ready(w, w->owner_key)))
            claim_send(w);
    } else if (w->blpops < w->ngroups) {
        blpop_send(w);
    }
}
