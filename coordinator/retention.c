/*
 * Retention: what keeps Redis memory bounded however long llmb runs.
 *
 * The Lua functions delete finished jobs and their task results
 * retention_s after they end (from <base>:fin, at every call that ends
 * jobs and at llmb_reap, which reaper.c calls every tick), cap each events
 * stream (events_max) and dead set
 * (dead_max), reading those settings from <base>:conf; the coordinator
 * writes its --retention-s, --events-max and --dead-max there when it first
 * sees a queue, after each reconnect and every minute (unless
 * --no-write-conf).
 *
 * What no function can do by itself is done here, bounded per tick:
 *  - <base>:jl lists the queue's job ids in push order; retention trims
 *    its head, and ids whose job is gone otherwise (deleted by hand, or
 *    kept behind a job that lives on) are trimmed
 *    by walking the list from the oldest, --scan-batch ids per tick,
 *    with a pipelined read of each job's state (FCALL_RO llmb_job). The
 *    same walk counts the jobs in each state, which is where the job
 *    gauges of the metrics come from: exact as of the last full pass (a
 *    pass starts at most once a second). A cut of the head moves every
 *    id to a lower rank; <base>:counts jl_cut counts the ids ever cut
 *    (by the functions and here), read with each batch, so the walk
 *    goes back as far and neither skips nor counts twice an id.
 *  - dead worker records go --worker-retention-s after their last
 *    heartbeat (the record and its entry in <prefix>:workers).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/log.h>
#include <llmb/reply.h>

#include "coordinator.h"

#define CONF_EVERY_MS 60000
#define SCAN_PASS_MIN_MS 1000
#define WORKERS_PER_PASS 100

static int conf_write(struct llmb_coord *co, struct llmb_coord_queue *q)
{
    char *key = llmb_xasprintf("%s:conf", q->base);
    redisReply *r = llmb_cluster_command(
        co->cl, "HSET %s retention_s %lld events_max %lld dead_max %lld",
        key, co->cfg->retention_s, co->cfg->events_max, co->cfg->dead_max);

    free(key);
    if (r == NULL)
        return llmb_coord_lost(co);
    if (r->type == REDIS_REPLY_ERROR)
        llmb_coord_reply_error(co, "writing queue settings", q->name, r);
    freeReplyObject(r);
    q->conf_mono = llmb_mono_ms();
    return 0;
}

static int state_ix(const char *s)
{
    static const char *const names[LLMB_JS_COUNT] = {
        "pending", "running", "completed", "failed", "cancelled"};
    int i;

    for (i = 0; i < LLMB_JS_COUNT; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

/* Takes the first k ids of list key, those of ids (found gone), out of
 * it and adds k to jl_cut of ckey (<base>:counts): under WATCH, only
 * while they are still its head. A function that deletes jobs trims the
 * head as well (lua/00-header.lua), and a push appends to the tail: an
 * LTRIM sent after either without the check would take out ids it never
 * checked, of jobs that live. When the list changed meanwhile, nothing
 * is taken out now (the next pass tries again). Sets *trimmed to what
 * went. Returns 0 or LLMB_EIO. */
static int head_trim(struct llmb_coord *co, struct llmb_coord_queue *q,
                     const char *key, const char *ckey, const redisReply *ids,
                     size_t k, size_t *trimmed)
{
    char start[24], stop[24];
    const char *watch[] = {"WATCH", key};
    const char *lrange[] = {"LRANGE", key, "0", stop};
    const char *multi[] = {"MULTI"};
    const char *ltrim[] = {"LTRIM", key, start, "-1"};
    const char *cut[] = {"HINCRBY", ckey, "jl_cut", start};
    const char *exec[] = {"EXEC"};
    const char *unwatch[] = {"UNWATCH"};
    redisReply *r;
    bool same;
    size_t i;

    *trimmed = 0;
    snprintf(start, sizeof(start), "%zu", k);
    snprintf(stop, sizeof(stop), "%zu", k - 1);
    r = llmb_cluster_command_argv(co->cl, key, 2, watch, NULL);
    if (r == NULL)
        return llmb_coord_lost(co);
    same = r->type == REDIS_REPLY_STATUS;
    if (!same)
        llmb_coord_reply_error(co, "watching the job list", q->name, r);
    freeReplyObject(r);
    if (!same)
        goto unwatch;
    r = llmb_cluster_command_argv(co->cl, key, 4, lrange, NULL);
    if (r == NULL)
        return llmb_coord_lost(co);
    same = r->type == REDIS_REPLY_ARRAY && r->elements == k;
    for (i = 0; same && i < k; i++)
        same = r->element[i]->type == REDIS_REPLY_STRING &&
               ids->element[i]->type == REDIS_REPLY_STRING &&
               r->element[i]->len == ids->element[i]->len &&
               memcmp(r->element[i]->str, ids->element[i]->str,
                      r->element[i]->len) == 0;
    freeReplyObject(r);
    if (!same)
        goto unwatch;
    r = llmb_cluster_command_argv(co->cl, key, 1, multi, NULL);
    if (r == NULL)
        return llmb_coord_lost(co);
    same = r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    if (!same)
        goto unwatch;
    r = llmb_cluster_command_argv(co->cl, key, 4, ltrim, NULL);
    if (r == NULL)
        return llmb_coord_lost(co);
    freeReplyObject(r); /* QUEUED */
    r = llmb_cluster_command_argv(co->cl, ckey, 4, cut, NULL);
    if (r == NULL)
        return llmb_coord_lost(co);
    freeReplyObject(r); /* QUEUED */
    r = llmb_cluster_command_argv(co->cl, key, 1, exec, NULL);
    if (r == NULL)
        return llmb_coord_lost(co);
    /* an array when it ran; nil when the list changed after the WATCH */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STATUS) {
        *trimmed = k;
        /* counted (not where <base>:counts is of another type): the
         * walk moved the ranks itself */
        if (r->element[1]->type == REDIS_REPLY_INTEGER)
            q->jl_cut += (long long)k;
    }
    else if (r->type == REDIS_REPLY_ERROR)
        llmb_coord_reply_error(co, "trimming the job list", q->name, r);
    freeReplyObject(r);
    return 0;
unwatch:
    r = llmb_cluster_command_argv(co->cl, key, 1, unwatch, NULL);
    if (r == NULL)
        return llmb_coord_lost(co);
    freeReplyObject(r);
    return 0;
}

/* jl_cut of <base>:counts from reply r (nil: 0). Returns false for
 * anything but a whole number or nil. */
static bool cut_value(const redisReply *r, long long *v)
{
    *v = 0;
    return r->type == REDIS_REPLY_NIL || llmb_reply_ll(r, v);
}

/* The ids of <base>:jl from q->scan_rank on, at most scan_batch, into
 * *page (NULL when none could be read consistently this tick: the next
 * tick tries again). jl_cut is read before and after the LRANGE in one
 * pipeline: equal, no cut came between (the functions cut and count in
 * one call), and what was cut since the last read moves the walk back as
 * far, then the page is read again. Returns 0 or LLMB_EIO. */
static int page_read(struct llmb_coord *co, struct llmb_coord_queue *q,
                     const char *zkey, const char *ckey, redisReply **page)
{
    long long batch = co->cfg->scan_batch;

    *page = NULL;
    for (int tries = 0; tries < 3; tries++) {
        char start[24], stop[24];
        const char *hget[] = {"HGET", ckey, "jl_cut"};
        const char *lrange[] = {"LRANGE", zkey, start, stop};
        redisReply *rep[3] = {NULL, NULL, NULL};
        long long c1 = 0, c2 = 0;
        bool known;
        int i;

        snprintf(start, sizeof(start), "%lld", q->scan_rank);
        snprintf(stop, sizeof(stop), "%lld", q->scan_rank + batch - 1);
        if (llmb_cluster_append_argv(co->cl, 3, hget, NULL) != 0 ||
            llmb_cluster_append_argv(co->cl, 4, lrange, NULL) != 0 ||
            llmb_cluster_append_argv(co->cl, 3, hget, NULL) != 0)
            return llmb_coord_lost(co);
        for (i = 0; i < 3; i++) {
            rep[i] = llmb_cluster_get_reply(co->cl);
            if (rep[i] == NULL) {
                while (i-- > 0)
                    freeReplyObject(rep[i]);
                return llmb_coord_lost(co);
            }
        }
        if (rep[1]->type != REDIS_REPLY_ARRAY) {
            llmb_coord_reply_error(co, "reading the job list", q->name,
                                   rep[1]);
            for (i = 0; i < 3; i++)
                freeReplyObject(rep[i]);
            return 0;
        }
        /* not known where <base>:counts is of another type (llmb_stats
         * names it, wrong_keys): the walk goes on without it */
        known = cut_value(rep[0], &c1) && cut_value(rep[2], &c2);
        freeReplyObject(rep[0]);
        freeReplyObject(rep[2]);
        if (known && c1 != c2) { /* cut while read: again */
            freeReplyObject(rep[1]);
            continue;
        }
        if (known && q->scan_rank > 0 &&
            (!q->jl_cut_known || c1 != q->jl_cut)) {
            long long moved = c1 - q->jl_cut;

            if (q->jl_cut_known && moved > 0) {
                /* cut since the last batch: back as far */
                q->scan_rank = moved < q->scan_rank ? q->scan_rank - moved
                                                    : 0;
            } else {
                /* where the walk stands is not known: the count could
                 * not be read since the pass began, or went back (reset
                 * by hand, a failover that lost cuts): start over */
                q->scan_rank = 0;
                memset(q->scan_tally, 0, sizeof(q->scan_tally));
            }
            q->jl_cut = c1;
            q->jl_cut_known = true;
            freeReplyObject(rep[1]);
            continue;
        }
        q->jl_cut = c1;
        q->jl_cut_known = known;
        *page = rep[1];
        return 0;
    }
    return 0;
}

/* Checks the next scan_batch ids of <base>:jl. Returns 0 or
 * LLMB_EIO. */
static int jobs_scan(struct llmb_coord *co, struct llmb_coord_queue *q)
{
    char *zkey = llmb_xasprintf("%s:jl", q->base);
    char *ckey = llmb_xasprintf("%s:counts", q->base);
    long long batch = co->cfg->scan_batch;
    size_t head_gone = 0;
    redisReply *r = NULL, *s = NULL;
    size_t i;
    int rc = 0;

    rc = page_read(co, q, zkey, ckey, &r);
    if (rc != 0 || r == NULL)
        goto out;
    for (i = 0; i < r->elements; i++) {
        const char *argv[] = {"FCALL_RO", "llmb_job", "1", q->base,
                              r->element[i]->str, "state"};
        int arc = llmb_cluster_append_argv(co->cl, 6, argv, NULL);
        if (arc != 0) {
            rc = llmb_coord_lost(co);
            goto out;
        }
    }
    for (i = 0; i < r->elements; i++) {
        const redisReply *st;
        int ix;
        s = llmb_cluster_get_reply(co->cl);
        if (s == NULL) {
            rc = llmb_coord_lost(co);
            goto out;
        }
        /* {state}, {nil} for a job that is gone; an error (a job key of
         * another type) counts as neither */
        st = s->type == REDIS_REPLY_ARRAY && s->elements == 1 ? s->element[0]
                                                               : NULL;
        if (st != NULL && st->type == REDIS_REPLY_NIL) {
            if (head_gone == i)
                head_gone++;
        }
        else if (st != NULL && st->type == REDIS_REPLY_STRING &&
                 (ix = state_ix(st->str)) >= 0)
            q->scan_tally[ix]++;
        freeReplyObject(s);
        s = NULL;
    }

    /* The gone ids at the head of the list go (LTRIM); those behind a job
     * that lives on stay until they reach the head (the readers skip
     * them): taking one out of the middle of a list costs a walk of it. */
    if (q->scan_rank == 0 && head_gone > 0) {
        size_t k = head_gone;
        rc = head_trim(co, q, zkey, ckey, r, k, &head_gone);
        if (rc != 0)
            goto out;
        if (head_gone > 0) {
            co->counters.jobs_trimmed += (long long)head_gone;
            llmb_debug("gone jobs trimmed from the job list queue=%s "
                       "jobs=%zu", q->name, head_gone);
        }
    } else {
        head_gone = 0;
    }

    /* Removed ids shift the ranks after them down. */
    q->scan_rank += (long long)(r->elements - head_gone);
    if ((long long)r->elements < batch) {
        memcpy(q->jobs_by_state, q->scan_tally, sizeof(q->jobs_by_state));
        memset(q->scan_tally, 0, sizeof(q->scan_tally));
        q->jobs_known = true;
        q->scan_rank = 0;
        q->scan_done_mono = llmb_mono_ms();
    }
out:
    freeReplyObject(r);
    freeReplyObject(s);
    free(ckey);
    free(zkey);
    return rc;
}

int llmb_retention_queue(struct llmb_coord *co, struct llmb_coord_queue *q)
{
    int64_t now = llmb_mono_ms();

    if (co->cfg->write_conf &&
        (q->conf_mono == 0 || now - q->conf_mono >= CONF_EVERY_MS) &&
        conf_write(co, q) != 0)
        return LLMB_EIO;
    if (q->scan_rank == 0 && q->scan_done_mono != 0 &&
        now - q->scan_done_mono < SCAN_PASS_MIN_MS)
        return 0;
    return jobs_scan(co, q);
}

/* Deletes the record of worker id if it is dead (or already gone) and
 * takes it out of the registry. Returns 0 or LLMB_EIO. */
static int worker_remove(struct llmb_coord *co, const char *id,
                         const char *zkey)
{
    char *name = llmb_xasprintf("worker:%s", id);
    char *hkey = llmb_coord_key(co, name);
    redisReply *r = NULL;
    int rc = 0;

    free(name);
    if (llmb_coord_away(co, hkey))
        goto out; /* at a later pass */
    r = llmb_cluster_command(co->cl, "HGET %s state", hkey);
    if (r == NULL)
        goto lost;
    if (r->type == REDIS_REPLY_STRING && strcmp(r->str, "dead") != 0)
        goto out; /* alive again, or not judged yet: the reaper's call */
    if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL) {
        llmb_coord_reply_error(co, "reading a dead worker", NULL, r);
        goto out;
    }
    freeReplyObject(r);
    r = llmb_cluster_command(co->cl, "DEL %s", hkey);
    if (r == NULL)
        goto lost;
    freeReplyObject(r);
    r = llmb_cluster_command(co->cl, "ZREM %s %s", zkey, id);
    if (r == NULL)
        goto lost;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
        co->counters.workers_removed++;
        llmb_info("dead worker record removed worker=%s", id);
    }
    goto out;
lost:
    rc = llmb_coord_lost(co);
out:
    freeReplyObject(r);
    free(hkey);
    return rc;
}

int llmb_retention_workers(struct llmb_coord *co)
{
    char *zkey = llmb_coord_key(co, "workers");
    redisReply *t = NULL, *r = NULL;
    int64_t now_ms;
    long long cutoff;
    size_t i;
    int rc = 0;

    if (llmb_coord_away(co, zkey))
        goto out; /* the registry's primary is away */
    t = llmb_cluster_command(co->cl, "TIME");
    if (t == NULL) {
        rc = llmb_coord_lost(co);
        goto out;
    }
    if (!llmb_reply_time_ms(t, &now_ms))
        goto out;
    cutoff = now_ms - co->cfg->worker_retention_s * 1000;
    r = llmb_cluster_command(co->cl, "ZRANGEBYSCORE %s -inf (%lld LIMIT 0 %d",
                          zkey, cutoff, WORKERS_PER_PASS);
    if (r == NULL) {
        rc = llmb_coord_lost(co);
        goto out;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        llmb_coord_reply_error(co, "reading old workers", NULL, r);
        goto out;
    }
    for (i = 0; i < r->elements && (rc == 0 || co->up); i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            rc = worker_remove(co, r->element[i]->str, zkey);
out:
    freeReplyObject(t);
    freeReplyObject(r);
    free(zkey);
    return rc;
}
