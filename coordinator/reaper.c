/*
 * The reaper: gives back the tasks of workers that are gone, and keeps the
 * time-driven transitions of every queue moving.
 *
 * Worker death, every --liveness-ms. One pipelined read takes Redis TIME,
 * CLIENT LIST TYPE normal and the <prefix>:workers sorted set. Workers name
 * every connection "llmb-worker:<id>", so a registered worker with none of
 * its connections in CLIENT LIST has died or lost the network: after
 * --gone-after-ms of that it is dead (beanstalkd's way of noticing a
 * closed connection, over Redis). A worker still connected but silent is
 * judged by its heartbeat: dead when its seen_ms is older than
 * --dead-after-ms by Redis time and has not moved for that long as this
 * coordinator watched it (so a worker whose clock runs behind is not
 * killed for it). A dead worker's leases go back at once in every queue
 * (FCALL llmb_reap_worker), its record is marked state=dead (retention.c
 * deletes it later) and its claim on the id, <prefix>:worker:<id>:owner,
 * is deleted so that a worker restarted with that id need not wait for
 * the claim to expire. If the dead one was only cut off, it claims the id
 * again when it is back (worker/worker.c).
 *
 * Per queue, every tick: expired leases (llmb_reap), job deadlines
 * (llmb_deadlines) and due delayed tasks (llmb_promote, for when no worker
 * claims), each bounded by --reap-limit.
 *
 * What the reaper observed lives in a sorted array of workers that each
 * pass rebuilds from the sorted set and merges with the previous one.
 */
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/functions.h>
#include <llmb/keys.h>
#include <llmb/log.h>
#include <llmb/reply.h>

#include "coordinator.h"

/* The most tasks one call of llmb_reap, llmb_reap_worker, llmb_promote or
 * llmb_deadlines handles (CALL_MAX in lua/00-header.lua); more take
 * several calls. */
#define CALL_MAX 250

#define WORKER_NAME_PREFIX "llmb-worker:"
#define REAP_PER_PASS 100 /* dead workers handled per pass */

/* What the reaper knows of one registered worker. */
struct wstate {
    char *id;
    double seen_ms;        /* score in <prefix>:workers */
    int64_t changed_mono;  /* when seen_ms was first seen at this value */
    int64_t missing_mono;  /* since when no connection was seen; 0 = seen */
    bool dead;             /* judged (or found marked) dead */
};

struct llmb_reaper {
    struct wstate *w; /* sorted by id */
    size_t n;
    int64_t last_mono; /* last pass */
    bool list_warned;  /* CLIENT LIST refusal logged */
};

struct llmb_reaper *llmb_reaper_new(void)
{
    return llmb_xcalloc(1, sizeof(struct llmb_reaper));
}

static void states_free(struct wstate *w, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(w[i].id);
    free(w);
}

void llmb_reaper_reset(struct llmb_reaper *r)
{
    states_free(r->w, r->n);
    r->w = NULL;
    r->n = 0;
    r->last_mono = 0;
}

void llmb_reaper_free(struct llmb_reaper *r)
{
    if (r == NULL)
        return;
    states_free(r->w, r->n);
    free(r);
}

static int cmp_wstate(const void *a, const void *b)
{
    return strcmp(((const struct wstate *)a)->id,
                  ((const struct wstate *)b)->id);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static struct wstate *find(const struct llmb_reaper *r, const char *id)
{
    struct wstate key = {.id = (char *)id};

    if (r->n == 0)
        return NULL;
    return bsearch(&key, r->w, r->n, sizeof(*r->w), cmp_wstate);
}

bool llmb_reaper_is_dead(const struct llmb_reaper *r, const char *id,
                         const char *state)
{
    const struct wstate *w = find(r, id);

    if (w != NULL)
        return w->dead;
    return state != NULL && strcmp(state, "dead") == 0;
}

/* Collects the worker ids of the connections named llmb-worker:<id> in a
 * CLIENT LIST reply into names (pointers into text, which is modified),
 * sorted. */
static void live_names(char *text, struct llmb_strlist *names)
{
    char *line = text;

    while (line != NULL && *line != '\0') {
        char *next = strchr(line, '\n');
        char *name;

        if (next != NULL)
            *next++ = '\0';
        name = strstr(line, " name=");
        if (name != NULL) {
            char *end;
            name += strlen(" name=");
            end = name + strcspn(name, " \r");
            *end = '\0';
            if (strncmp(name, WORKER_NAME_PREFIX,
                        strlen(WORKER_NAME_PREFIX)) == 0 &&
                name[strlen(WORKER_NAME_PREFIX)] != '\0')
                llmb_strlist_push(names, name + strlen(WORKER_NAME_PREFIX));
        }
        line = next;
    }
    if (names->n > 1)
        qsort(names->v, names->n, sizeof(*names->v), cmp_str);
}

static bool is_live(const struct llmb_strlist *names, const char *id)
{
    if (names->n == 0)
        return false;
    return bsearch(&id, names->v, names->n, sizeof(*names->v), cmp_str) !=
           NULL;
}

/* Appends queue to list unless it is there already or not a queue name. */
static void queue_add(struct llmb_strlist *list, const char *queue)
{
    size_t i;

    if (!llmb_queue_name_ok(queue))
        return;
    for (i = 0; i < list->n; i++)
        if (strcmp(list->v[i], queue) == 0)
            return;
    llmb_strlist_push(list, queue);
}

/* Gives back every lease of worker w in every queue it may hold one in
 * and marks its record dead. Returns 0 or LLMB_EIO. */
static int worker_kill(struct llmb_coord *co, struct wstate *w,
                       const char *reason, int64_t now_ms)
{
    char *name = llmb_xasprintf("worker:%s", w->id);
    char *hkey = llmb_coord_key(co, name);
    char *okey = NULL;
    struct llmb_strlist queues = {0};
    redisReply *r = NULL;
    long long back = 0;
    bool exists;
    size_t i;
    int rc = 0;

    free(name);
    if (llmb_coord_away(co, hkey))
        goto out; /* its record's primary is away: at a later pass */
    r = llmb_cluster_command(co->cl, "HMGET %s state queues", hkey);
    if (r == NULL) {
        rc = llmb_coord_lost(co);
        goto out;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        llmb_coord_reply_error(co, "reading a worker", NULL, r);
        goto out;
    }
    if (r->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(r->element[0]->str, "dead") == 0) {
        w->dead = true; /* another coordinator was first */
        goto out;
    }
    exists = r->element[0]->type == REDIS_REPLY_STRING;
    /* The queues it registered with, then every known queue: a lease in a
     * queue it did not list is still given back. */
    if (r->element[1]->type == REDIS_REPLY_STRING) {
        char *list = llmb_xstrdup(r->element[1]->str);
        for (char *p = list; *p; p++)
            if (*p == ' ')
                *p = ',';
        struct llmb_strlist parts = {0};
        llmb_strlist_split(&parts, list, ',');
        for (i = 0; i < parts.n; i++)
            queue_add(&queues, parts.v[i]);
        llmb_strlist_clear(&parts);
        free(list);
    }
    for (i = 0; i < co->nqueues; i++)
        queue_add(&queues, co->queues[i].name);
    freeReplyObject(r);
    r = NULL;

    for (i = 0; i < queues.n; i++) {
        char *base = llmb_key_queue(co->cfg->common.prefix, queues.v[i]);
        /* About CALL_MAX tasks per call, a batch taken whole: again while
         * a call takes that many or more */
        long long got = CALL_MAX;
        /* A queue whose primary is away gets its leases back when they
         * expire (llmb_reap), once the primary answers. */
        if (llmb_coord_away(co, base))
            got = 0;
        while (got >= CALL_MAX) {
            r = llmb_cluster_command(co->cl,
                                  "FCALL llmb_reap_worker 1 %s %s %s", base,
                                  w->id, reason);
            if (r == NULL) {
                llmb_coord_lost(co);
                if (!co->up) {
                    free(base);
                    rc = LLMB_EIO;
                    goto out;
                }
                break; /* that primary is away now: the next queue */
            }
            got = 0;
            if (r->type == REDIS_REPLY_INTEGER) {
                got = r->integer;
                back += got;
            } else {
                llmb_coord_reply_error(co, "llmb_reap_worker", queues.v[i],
                                       r);
            }
            freeReplyObject(r);
            r = NULL;
        }
        free(base);
    }

    if (exists) {
        r = llmb_cluster_command(co->cl,
                              "HSET %s state dead dead_ms %lld dead_reason %s",
                              hkey, (long long)now_ms, reason);
    } else {
        /* A registry entry without a record: nothing to keep. */
        char *zkey = llmb_coord_key(co, "workers");
        r = llmb_cluster_command(co->cl, "ZREM %s %s", zkey, w->id);
        free(zkey);
    }
    if (r == NULL) {
        rc = llmb_coord_lost(co);
        goto out;
    }
    freeReplyObject(r);
    r = NULL;
    okey = llmb_xasprintf("%s:owner", hkey);
    /* (Left to expire when its primary is away.) */
    if (!llmb_coord_away(co, okey)) {
        r = llmb_cluster_command(co->cl, "DEL %s", okey);
        if (r == NULL) {
            rc = llmb_coord_lost(co);
            goto out;
        }
    }
    w->dead = true;
    co->counters.workers_reaped++;
    co->counters.tasks_given_back += back;
    llmb_warn("worker dead: %s; tasks given back worker=%s tasks=%lld", reason,
              w->id, back);
out:
    freeReplyObject(r);
    llmb_strlist_clear(&queues);
    free(okey);
    free(hkey);
    return rc;
}

/* Sends the three reads of a pass and returns their replies in out[3]
 * (TIME, CLIENT LIST, ZRANGE). Returns 0 or LLMB_EIO. */
static int pass_read(struct llmb_coord *co, redisReply *out[3])
{
    char *zkey = llmb_coord_key(co, "workers");
    const char *time_argv[] = {"TIME"};
    const char *list_argv[] = {"CLIENT", "LIST", "TYPE", "normal"};
    const char *zr_argv[] = {"ZRANGE", zkey, "0", "-1", "WITHSCORES"};
    int rc = 0, i;

    out[0] = out[1] = out[2] = NULL;
    if (llmb_cluster_append_argv(co->cl, 1, time_argv, NULL) != 0 ||
        llmb_cluster_append_argv(co->cl, 4, list_argv, NULL) != 0 ||
        llmb_cluster_append_argv(co->cl, 5, zr_argv, NULL) != 0) {
        free(zkey);
        return llmb_coord_lost(co);
    }
    free(zkey);
    for (i = 0; i < 3; i++) {
        out[i] = llmb_cluster_get_reply(co->cl);
        if (out[i] == NULL) {
            rc = llmb_coord_lost(co);
            break;
        }
    }
    return rc;
}

int llmb_reaper_workers(struct llmb_coord *co)
{
    const struct llmb_coord_config *cfg = co->cfg;
    struct llmb_reaper *rp = co->reaper;
    int64_t now_mono = llmb_mono_ms();
    redisReply *rep[3] = {NULL, NULL, NULL};
    struct llmb_strlist names = {0};
    struct wstate *nw = NULL;
    size_t nn = 0, i, oi = 0, killed = 0;
    int64_t now_ms;
    bool grace, have_list;
    char *text;
    int rc;

    if (rp->last_mono != 0 && now_mono - rp->last_mono < cfg->liveness_ms)
        return 0;
    rp->last_mono = now_mono;
    {
        char *zkey = llmb_coord_key(co, "workers");
        bool away = llmb_coord_away(co, zkey);
        free(zkey);
        if (away) {
            llmb_debug("worker check skipped: the primary of the workers' "
                       "registry is away");
            return 0;
        }
    }
    rc = pass_read(co, rep);
    if (rc != 0) {
        llmb_debug("worker check failed: %s", llmb_cluster_errstr(co->cl));
        goto out;
    }
    if (!llmb_reply_time_ms(rep[0], &now_ms)) {
        llmb_coord_reply_error(co, "reading the Redis time", NULL, rep[0]);
        goto out;
    }
    if (rep[2]->type != REDIS_REPLY_ARRAY) {
        llmb_coord_reply_error(co, "reading the workers", NULL, rep[2]);
        goto out;
    }
    /* Without CLIENT LIST (an ACL or a managed Redis may refuse it) only
     * heartbeats can tell a dead worker. */
    have_list = rep[1]->type == REDIS_REPLY_STRING;
    if (have_list) {
        text = rep[1]->str;
        live_names(text, &names);
        rp->list_warned = false;
    } else if (!rp->list_warned) {
        rp->list_warned = true;
        llmb_warn("CLIENT LIST refused (%s); dead workers are found by "
                  "heartbeat only",
                  rep[1]->type == REDIS_REPLY_ERROR ? rep[1]->str
                                                    : "unexpected reply");
    }

    /* The new picture, sorted by id, carrying over what was observed. */
    nw = llmb_xcalloc(rep[2]->elements / 2 + 1, sizeof(*nw));
    for (i = 0; i + 1 < rep[2]->elements; i += 2) {
        const redisReply *id = rep[2]->element[i];
        const redisReply *sc = rep[2]->element[i + 1];
        if (id->type != REDIS_REPLY_STRING)
            continue;
        nw[nn].id = llmb_xstrdup(id->str);
        nw[nn].seen_ms = sc->type == REDIS_REPLY_STRING ? atof(sc->str) : 0.0;
        nn++;
    }
    qsort(nw, nn, sizeof(*nw), cmp_wstate);
    if (nn == 0)
        llmb_debug("worker check: no worker registered (the registry "
                   "answered %zu values%s)", rep[2]->elements,
                   rep[2]->elements > 0 &&
                           rep[2]->element[0]->type != REDIS_REPLY_STRING
                       ? ", not strings"
                       : "");

    grace = co->reconnected &&
            now_mono - co->up_since_mono < cfg->reconnect_grace_ms;
    for (i = 0; i < nn; i++) {
        struct wstate *w = &nw[i];
        bool live = !have_list || is_live(&names, w->id);
        struct wstate *old = NULL;
        char reason[128];

        while (oi < rp->n && strcmp(rp->w[oi].id, w->id) < 0)
            oi++;
        if (oi < rp->n && strcmp(rp->w[oi].id, w->id) == 0)
            old = &rp->w[oi];

        if (old == NULL) {
            w->changed_mono = now_mono;
            w->missing_mono = live ? 0 : now_mono;
        } else {
            w->dead = old->dead;
            w->changed_mono =
                old->seen_ms != w->seen_ms ? now_mono : old->changed_mono;
            w->missing_mono = live ? 0
                              : old->missing_mono ? old->missing_mono
                                                  : now_mono;
            if (w->dead && live && old->seen_ms != w->seen_ms) {
                w->dead = false;
                llmb_info("worker marked dead is heartbeating again "
                          "worker=%s", w->id);
            }
        }
        llmb_debug("worker check worker=%s live=%d dead=%d missing_ms=%lld "
                   "silent_ms=%lld", w->id, live, w->dead,
                   w->missing_mono ? (long long)(now_mono - w->missing_mono)
                                   : 0LL,
                   (long long)((double)now_ms - w->seen_ms));
        if (w->dead || killed >= REAP_PER_PASS)
            continue;

        reason[0] = '\0';
        if (cfg->gone_after_ms > 0 && !live && !grace &&
            now_mono - w->missing_mono >= cfg->gone_after_ms)
            snprintf(reason, sizeof(reason),
                     "connection closed (no connection for %lld ms)",
                     (long long)(now_mono - w->missing_mono));
        else if ((double)now_ms - w->seen_ms > (double)cfg->dead_after_ms &&
                 now_mono - w->changed_mono >= cfg->dead_after_ms)
            snprintf(reason, sizeof(reason),
                     "no heartbeat for %lld ms",
                     (long long)((double)now_ms - w->seen_ms));
        if (reason[0] == '\0')
            continue;
        killed++;
        rc = worker_kill(co, w, reason, now_ms);
        if (rc != 0)
            break;
    }

    states_free(rp->w, rp->n);
    rp->w = nw;
    rp->n = nn;
    nw = NULL;
    nn = 0;
out:
    states_free(nw, nn);
    llmb_strlist_clear(&names);
    for (i = 0; i < 3; i++)
        freeReplyObject(rep[i]);
    return rc;
}

/*
 * Per queue, every tick: llmb_reap, llmb_deadlines and llmb_promote, each
 * with up to its limit of tasks in calls of at most CALL_MAX. One round
 * pipelines one call of each function that still has work; a function
 * drops out of the next round when it answers less than it was allowed,
 * its limit is used up, or it answers an error (logged). The common tick
 * is one round trip. Returns 0, or LLMB_EIO when the connection is lost.
 */
/* Converts, a chunk per tick, what a queue holds of the layout before
 * library version 30 (llmb_upgrade), until it answers that nothing is
 * left; then never again for this queue. Returns 0, or LLMB_EIO when the
 * connection is lost. */
static int upgrade_queue(struct llmb_coord *co, struct llmb_coord_queue *q)
{
    char limit[24];
    redisReply *r;

    if (q->upgraded)
        return 0;
    snprintf(limit, sizeof(limit), "%d", CALL_MAX);
    const char *argv[] = {"FCALL", "llmb_upgrade", "1", q->base, limit};
    r = llmb_cluster_command_argv(co->cl, q->base, 5, argv, NULL);
    if (r == NULL)
        return llmb_coord_lost(co);
    if (r->type != REDIS_REPLY_INTEGER) {
        llmb_coord_reply_error(co, "llmb_upgrade", q->name, r);
    } else if (r->integer == 0) {
        q->upgraded = true;
    } else {
        llmb_info("converted to the record layout queue=%s members=%lld",
                  q->name, r->integer);
    }
    freeReplyObject(r);
    return 0;
}

int llmb_reaper_queue(struct llmb_coord *co, struct llmb_coord_queue *q)
{
    static const char *const what[3] = {"llmb_reap", "llmb_deadlines",
                                        "llmb_promote"};
    long long dl = co->cfg->reap_limit / 10;
    long long left[3] = {co->cfg->reap_limit, dl > 0 ? dl : 1,
                         co->cfg->reap_limit};
    long long asked[3], done[3] = {0, 0, 0};
    redisReply *r;
    int i, rc = 0;

    if (upgrade_queue(co, q) != 0)
        return LLMB_EIO;

    while (left[0] > 0 || left[1] > 0 || left[2] > 0) {
        for (i = 0; i < 3; i++) {
            char limit[24];
            asked[i] = left[i] < CALL_MAX ? left[i] : CALL_MAX;
            if (asked[i] == 0)
                continue;
            snprintf(limit, sizeof(limit), "%lld", asked[i]);
            const char *argv[] = {"FCALL", what[i], "1", q->base, limit};
            if (llmb_cluster_append_argv(co->cl, 5, argv, NULL) != 0)
                return llmb_coord_lost(co);
        }
        for (i = 0; i < 3; i++) {
            if (asked[i] == 0)
                continue;
            r = llmb_cluster_get_reply(co->cl);
            if (r == NULL)
                return llmb_coord_lost(co);
            if (r->type != REDIS_REPLY_INTEGER) {
                /* A library loaded by an older process may lack a
                 * function; the next plain command reloads it. */
                llmb_coord_reply_error(co, what[i], q->name, r);
                if (llmb_reply_function_missing(r))
                    rc = 1;
                left[i] = 0;
            } else {
                done[i] += r->integer;
                left[i] = r->integer < asked[i] ? 0 : left[i] - asked[i];
            }
            freeReplyObject(r);
        }
    }
    if (done[0] > 0) {
        co->counters.leases_reaped += done[0];
        /* (llmb_reap answers batches: one lease each, of any size) */
        llmb_info("expired leases taken back queue=%s leases=%lld", q->name,
                  done[0]);
    }
    if (done[1] > 0) {
        co->counters.deadlines += done[1];
        llmb_info("jobs ended past their deadline queue=%s jobs=%lld",
                  q->name, done[1]);
    }
    if (done[2] > 0) {
        co->counters.promoted += done[2];
        llmb_debug("delayed tasks promoted queue=%s tasks=%lld", q->name,
                   done[2]);
    }
    if (rc == 1) {
        /* Reload through the plain-command path (reloads on this error). */
        r = llmb_cluster_command(co->cl, "FCALL llmb_promote 1 %s 0", q->base);
        if (r == NULL)
            return llmb_coord_lost(co);
        freeReplyObject(r);
    }
    return 0;
}
