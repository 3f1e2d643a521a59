/*
 * Cluster metrics and health. Every --metrics-ms the coordinator reads, in
 * two pipelined round trips, Redis TIME, the worker registry and each
 * worker's record (state, capacity, running, completed, failed), each
 * queue's FCALL_RO llmb_stats and the retired task counters; adds the job
 * state counts that retention.c's walk of <base>:jobs keeps; and writes the
 * result into the hash <prefix>:metrics (HGETALL-readable, field names in
 * docs/coordinator.md). /metrics renders the same numbers as Prometheus
 * text, /healthz the health with its reason.
 *
 * A queue whose llmb_stats answers an error, something unexpected or keys
 * of the wrong type (llmb/stats.h) has no numbers: it is left out of the
 * sums and the per-queue metrics, and makes the health unhealthy with the
 * queue and the reason, until its stats read well again. The numbers of a
 * queue that cannot be read are unknown, not zero.
 *
 * Work that stalls silently: each queue's <base>:types (the job types
 * live workers advertise, llmb/served.h) is read in the same round trips
 * and llmb_stats names the type of the job at the head of the queue
 * (head_type), and a queue with tasks pending that
 * no live worker serves, or whose head task's type none handles, makes the
 * health degraded with the queue named (llmb_metrics_unserved).
 *
 * A worker counts as dead when the reaper judged it so (or, before the
 * reaper has seen it, when its record says state=dead); the others are
 * active, busy when they run at least one task and idle otherwise.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <llmb/err.h>
#include <llmb/log.h>
#include <llmb/reply.h>

#include "coordinator.h"

/* Takes queue q's llmb_stats reply r: its numbers, or why they cannot be
 * used (logged when that changes, and when it clears). Logs one line when
 * the queue's junk count grows. */
static void stats_take(struct llmb_coord *co, struct llmb_coord_queue *q,
                       const redisReply *r)
{
    char *err = NULL;

    if (llmb_queue_stats_parse(r, &q->stats, &err) != 0) {
        memset(&q->stats, 0, sizeof(q->stats));
        q->stats_errors++;
        if (r->type == REDIS_REPLY_ERROR)
            co->counters.redis_errors++;
        if (q->stats_err == NULL || strcmp(q->stats_err, err) != 0)
            llmb_error("cannot read the stats of a queue (health is "
                       "unhealthy until it can): %s queue=%s", err, q->name);
        free(q->stats_err);
        q->stats_err = err;
        return;
    }
    if (q->stats_err != NULL) {
        llmb_info("the stats of a queue read well again queue=%s", q->name);
        free(q->stats_err);
        q->stats_err = NULL;
    }
    if (q->junk_seen < 0 && q->stats.junk > 0)
        llmb_warn("queue holds junk: the functions skipped %lld members or "
                  "keys that name no task so far queue=%s junk=%lld",
                  q->stats.junk, q->name, q->stats.junk);
    else if (q->junk_seen >= 0 && q->stats.junk > q->junk_seen)
        llmb_warn("junk in a queue: the functions skipped %lld more members "
                  "or keys that name no task queue=%s junk=%lld",
                  q->stats.junk - q->junk_seen, q->name, q->stats.junk);
    q->junk_seen = q->stats.junk;
}

/* The field head_type of an llmb_stats reply (the type of the job at the
 * head of pending), or NULL when absent or empty. */
static char *stats_head_type(const redisReply *r)
{
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements;
         i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type == REDIS_REPLY_STRING &&
            strcmp(k->str, "head_type") == 0)
            return v->type == REDIS_REPLY_STRING && v->len > 0
                       ? llmb_xstrdup(v->str)
                       : NULL;
    }
    return NULL;
}

/* Round trip 1: TIME, the worker ids and every queue's stats. Fills m
 * (the queues' stats go into co->queues) and *workers.
 * Returns 0 or LLMB_EIO. */
static int read_cluster(struct llmb_coord *co, struct llmb_cluster_metrics *m,
                        redisReply **workers)
{
    char *zkey = llmb_coord_key(co, "workers");
    const char *time_argv[] = {"TIME"};
    const char *zr_argv[] = {"ZRANGE", zkey, "0", "-1"};
    redisReply *r = NULL;
    /* the queues asked, in order (those of away primaries are not) */
    size_t *qix = llmb_xcalloc(co->nqueues + 1, sizeof(*qix));
    size_t i, nq = 0, n;
    bool registry = !llmb_coord_away(co, zkey);
    int rc = 0;

    *workers = NULL;
    if (llmb_cluster_append_argv(co->cl, 1, time_argv, NULL) != 0 ||
        (registry && llmb_cluster_append_argv(co->cl, 4, zr_argv, NULL) != 0))
        goto lost;
    for (i = 0; i < co->nqueues; i++) {
        const char *base = co->queues[i].base;
        if (co->queues[i].away) {
            free(co->queues[i].head_type); /* unknown */
            co->queues[i].head_type = NULL;
            continue;
        }
        qix[nq++] = i;
        char *types = llmb_xasprintf("%s:%s", base, LLMB_SERVED_SUFFIX);
        const char *argv[] = {"FCALL_RO", "llmb_stats", "1", base};
        const char *hgetall[] = {"HGETALL", types};
        int rc2 = llmb_cluster_append_argv(co->cl, 4, argv, NULL);
        if (rc2 == 0)
            rc2 = llmb_cluster_append_argv(co->cl, 2, hgetall, NULL);
        free(types);
        if (rc2 != 0)
            goto lost;
    }
    n = 2 + 2 * nq;
    for (i = 0; i < n; i++) {
        if (i == 1 && !registry)
            continue; /* not asked: the registry's primary is away */
        r = llmb_cluster_get_reply(co->cl);
        if (r == NULL)
            goto lost;
        if (i == 0) {
            llmb_reply_time_ms(r, &m->collected_ms);
        } else if (i == 1 && r->type == REDIS_REPLY_ARRAY) {
            *workers = r;
            r = NULL;
        } else if (i >= 2 && (i - 2) % 2 == 0) {
            struct llmb_coord_queue *q = &co->queues[qix[(i - 2) / 2]];
            stats_take(co, q, r);
            free(q->head_type);
            q->head_type = stats_head_type(r);
        } else if (i >= 2) {
            struct llmb_coord_queue *q = &co->queues[qix[(i - 2) / 2]];
            llmb_served_fini(&q->served);
            /* A key of another type reads as no advert. */
            (void)llmb_served_parse(r, m->collected_ms,
                                    co->cfg->worker_retention_s * 1000,
                                    &q->served);
        } else if (r->type == REDIS_REPLY_ERROR) {
            llmb_coord_reply_error(co, "reading metrics", NULL, r);
        }
        freeReplyObject(r);
        r = NULL;
    }
    goto out;
lost:
    rc = llmb_coord_lost(co);
    freeReplyObject(*workers);
    *workers = NULL;
out:
    free(qix);
    free(zkey);
    return rc;
}

/* Marks the queues a live worker's record lists ("q1,q2") as served: a
 * worker older than <base>:types serves them too. */
static void registry_queues(struct llmb_coord *co, const char *list)
{
    struct llmb_strlist names = {0};

    llmb_strlist_split(&names, list, ',');
    for (size_t k = 0; k < names.n; k++)
        for (size_t i = 0; i < co->nqueues; i++)
            if (strcmp(co->queues[i].name, names.v[k]) == 0)
                co->queues[i].by_registry = true;
    llmb_strlist_clear(&names);
}

/* Round trip 2: every worker's record, summed into m. Returns 0 or
 * LLMB_EIO. */
static int read_workers(struct llmb_coord *co, const redisReply *ids,
                        struct llmb_cluster_metrics *m)
{
    /* records on an away primary are not asked (nor counted) */
    bool *asked = llmb_xcalloc(ids->elements + 1, sizeof(*asked));
    size_t i;

    for (i = 0; i < ids->elements; i++) {
        char *name = llmb_xasprintf("worker:%s", ids->element[i]->str);
        char *key = llmb_coord_key(co, name);
        const char *argv[] = {"HMGET", key, "state", "capacity", "running",
                              "queues"};
        int rc = 0;
        asked[i] = !llmb_coord_away(co, key);
        if (asked[i])
            rc = llmb_cluster_append_argv(co->cl, 6, argv, NULL);
        free(name);
        free(key);
        if (rc != 0) {
            free(asked);
            return llmb_coord_lost(co);
        }
    }
    for (i = 0; i < ids->elements; i++) {
        redisReply *r;
        const char *state;
        long long cap, run;

        if (!asked[i])
            continue;
        r = llmb_cluster_get_reply(co->cl);
        if (r == NULL) {
            free(asked);
            return llmb_coord_lost(co);
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
            freeReplyObject(r);
            continue;
        }
        state = r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str
                                                           : NULL;
        m->workers_total++;
        if (state == NULL || llmb_reaper_is_dead(co->reaper,
                                                 ids->element[i]->str, state)) {
            m->workers_dead++;
        } else {
            cap = llmb_reply_ll_or(r->element[1], 0);
            run = llmb_reply_ll_or(r->element[2], 0);
            if (cap < 0)
                cap = 0;
            if (run < 0)
                run = 0;
            m->workers_active++;
            if (run > 0)
                m->workers_busy++;
            else
                m->workers_idle++;
            m->capacity_total += cap;
            m->capacity_used += run < cap ? run : cap;
            if (r->element[3]->type == REDIS_REPLY_STRING)
                registry_queues(co, r->element[3]->str);
        }
        freeReplyObject(r);
    }
    free(asked);
    return 0;
}

/* True when some live worker serves queue q: it advertises types in
 * <base>:types, or (a worker older than that) its record lists q. */
static bool queue_served(const struct llmb_coord_queue *q)
{
    return llmb_served_any(&q->served) || q->by_registry;
}

/* The most ended adverts deleted from one queue's <base>:types per
 * collection. */
#define TYPES_TRIM_MAX 100

/* Round trip 3: deletes the fields of <base>:types whose advert ended
 * more than --worker-retention-s ago. Returns 0 or LLMB_EIO. */
static int types_trim(struct llmb_coord *co)
{
    size_t i, sent = 0;
    int rc = 0;

    for (i = 0; i < co->nqueues; i++) {
        struct llmb_coord_queue *q = &co->queues[i];
        /* bounded: the rest goes at the next collections */
        size_t nstale = q->served.stale.n < TYPES_TRIM_MAX ?
                        q->served.stale.n : TYPES_TRIM_MAX;
        if (nstale == 0 || q->away)
            continue;
        char *key = llmb_xasprintf("%s:%s", q->base, LLMB_SERVED_SUFFIX);
        const char *argv[2 + TYPES_TRIM_MAX];
        argv[0] = "HDEL";
        argv[1] = key;
        for (size_t k = 0; k < nstale; k++)
            argv[2 + k] = q->served.stale.v[k];
        int rc2 = llmb_cluster_append_argv(co->cl, (int)(2 + nstale), argv,
                                        NULL);
        free(key);
        if (rc2 != 0)
            goto lost;
        sent++;
    }
    for (; sent > 0; sent--) {
        redisReply *r = llmb_cluster_get_reply(co->cl);
        if (r == NULL)
            goto lost;
        if (r->type == REDIS_REPLY_ERROR)
            llmb_coord_reply_error(co, "trimming <base>:types", NULL, r);
        freeReplyObject(r);
    }
    goto out;
lost:
    rc = llmb_coord_lost(co);
out:
    return rc;
}

/* Appends "field value" pairs of m to the argv being built. */
struct kv {
    struct llmb_strlist args;
};

static void kv_add(struct kv *kv, const char *field, long long v)
{
    char num[32];

    snprintf(num, sizeof(num), "%lld", v);
    llmb_strlist_push(&kv->args, field);
    llmb_strlist_push(&kv->args, num);
}

static void kv_adds(struct kv *kv, const char *field, const char *v)
{
    llmb_strlist_push(&kv->args, field);
    llmb_strlist_push(&kv->args, v);
}

static const char *const job_state_names[LLMB_JS_COUNT] = {
    "pending", "running", "completed", "failed", "cancelled"};

/* The per-queue number fields of <prefix>:metrics: queue:<name>:<field>.
 * A queue whose stats cannot be read has queue:<name>:error instead. */
static const char *const queue_fields[] = {
    "pending",     "delayed",         "running",      "jobs",
    "dead",        "to_aggregate",    "head_age_ms",  "tasks_completed",
    "tasks_failed", "tasks_cancelled", "junk"};
#define NQUEUE_FIELDS (sizeof(queue_fields) / sizeof(queue_fields[0]))

/* Deletes queue name's fields from <prefix>:metrics: its numbers, its
 * error, or both. Returns 0 or LLMB_EIO. */
static int queue_fields_del(struct llmb_coord *co, const char *name,
                            bool numbers, bool error)
{
    char *key = llmb_coord_key(co, "metrics");
    char *fields[NQUEUE_FIELDS + 1];
    const char *argv[2 + NQUEUE_FIELDS + 1];
    size_t i, n = 0;
    redisReply *r;

    if (llmb_coord_away(co, key)) {
        free(key);
        return 0; /* the hash's primary is away: its fields stay */
    }
    argv[0] = "HDEL";
    argv[1] = key;
    for (i = 0; numbers && i < NQUEUE_FIELDS; i++)
        fields[n++] = llmb_xasprintf("queue:%s:%s", name, queue_fields[i]);
    if (error)
        fields[n++] = llmb_xasprintf("queue:%s:error", name);
    for (i = 0; i < n; i++)
        argv[2 + i] = fields[i];
    r = llmb_cluster_commandargv(co->cl, (int)(2 + n), argv, NULL);
    for (i = 0; i < n; i++)
        free(fields[i]);
    free(key);
    if (r == NULL)
        return llmb_coord_lost(co);
    if (r->type == REDIS_REPLY_ERROR)
        llmb_coord_reply_error(co, "writing metrics", name, r);
    freeReplyObject(r);
    return 0;
}

/* Writes m into <prefix>:metrics. Returns 0 or LLMB_EIO. */
static int write_hash(struct llmb_coord *co)
{
    const struct llmb_cluster_metrics *m = &co->metrics;
    struct kv kv = {{0}};
    char *key = llmb_coord_key(co, "metrics");
    char field[160], num[64], reason[512];
    enum llmb_health h;
    const char **argv;
    redisReply *r;
    size_t i;
    int s;

    if (llmb_coord_away(co, key)) {
        /* /metrics and /healthz still say it all */
        free(key);
        return 0;
    }
    kv_adds(&kv, "HSET", key);
    kv_add(&kv, "workers_total", m->workers_total);
    kv_add(&kv, "workers_active", m->workers_active);
    kv_add(&kv, "workers_idle", m->workers_idle);
    kv_add(&kv, "workers_busy", m->workers_busy);
    kv_add(&kv, "workers_dead", m->workers_dead);
    kv_add(&kv, "capacity_total", m->capacity_total);
    kv_add(&kv, "capacity_used", m->capacity_used);
    kv_add(&kv, "capacity_available", m->capacity_available);
    snprintf(num, sizeof(num), "%.1f", m->load_pct);
    kv_adds(&kv, "load_pct", num);
    for (s = 0; s < LLMB_JS_COUNT; s++) {
        snprintf(field, sizeof(field), "jobs_%s", job_state_names[s]);
        kv_add(&kv, field, m->jobs[s]);
    }
    kv_add(&kv, "tasks_pending", m->tasks_pending);
    kv_add(&kv, "tasks_running", m->tasks_running);
    kv_add(&kv, "tasks_delayed", m->tasks_delayed);
    kv_add(&kv, "tasks_completed", m->tasks_completed);
    kv_add(&kv, "tasks_failed", m->tasks_failed);
    kv_add(&kv, "tasks_cancelled", m->tasks_cancelled);
    kv_add(&kv, "to_aggregate", m->queues_to_aggregate);
    for (i = 0; i < co->nqueues; i++) {
        const struct llmb_coord_queue *q = &co->queues[i];
        /* In the order of queue_fields. */
        const long long qv[NQUEUE_FIELDS] = {
            q->stats.pending,      q->stats.delayed,
            q->stats.running,      q->stats.jobs,
            q->stats.dead,         q->stats.to_aggregate,
            q->stats.head_age_ms,  q->stats.tasks_ok,
            q->stats.tasks_failed, q->stats.tasks_cancelled,
            q->stats.junk};
        if (q->away)
            continue; /* unknown: the last numbers written stay */
        if (q->stats_err != NULL) {
            snprintf(field, sizeof(field), "queue:%s:error", q->name);
            kv_adds(&kv, field, q->stats_err);
            continue;
        }
        for (size_t k = 0; k < NQUEUE_FIELDS; k++) {
            snprintf(field, sizeof(field), "queue:%s:%s", q->name,
                     queue_fields[k]);
            kv_add(&kv, field, qv[k]);
        }
    }
    h = llmb_metrics_health(co, reason, sizeof(reason));
    kv_adds(&kv, "health", llmb_health_name(h));
    kv_adds(&kv, "health_reason", reason);
    kv_add(&kv, "updated_ms", m->collected_ms);
    /* how old updated_ms may get: readers tell a stale hash by it */
    kv_add(&kv, "interval_ms", co->cfg->metrics_ms);
    kv_adds(&kv, "updated_by", co->id);
    {
        struct llmb_buf away;
        llmb_buf_init(&away);
        for (i = 0; i < co->naway; i++)
            llmb_buf_appendf(&away, "%s%s", i > 0 ? "," : "",
                             co->away[i].name);
        kv_adds(&kv, "primaries_away", away.len > 0 ? away.data : "");
        llmb_buf_fini(&away);
    }
    kv_add(&kv, "coordinator_uptime_s", llmb_coord_uptime_ms(co) / 1000);

    argv = llmb_xcalloc(kv.args.n, sizeof(*argv));
    for (i = 0; i < kv.args.n; i++)
        argv[i] = kv.args.v[i];
    r = llmb_cluster_commandargv(co->cl, (int)kv.args.n, argv, NULL);
    free(argv);
    llmb_strlist_clear(&kv.args);
    free(key);
    if (r == NULL)
        return llmb_coord_lost(co);
    if (r->type == REDIS_REPLY_ERROR)
        llmb_coord_reply_error(co, "writing metrics", NULL, r);
    freeReplyObject(r);
    /* A queue that went into error loses its numbers (they would be
     * stale); one that came out of it loses its error. */
    for (i = 0; i < co->nqueues; i++) {
        struct llmb_coord_queue *q = &co->queues[i];
        bool err = q->stats_err != NULL;
        if (err == q->err_in_hash || q->away)
            continue;
        if (queue_fields_del(co, q->name, err, !err) != 0)
            return LLMB_EIO;
        q->err_in_hash = err;
    }
    return 0;
}

void llmb_metrics_primaries_free(struct llmb_coord_primary *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i].name);
    free(p);
}

/* On a cluster: sums the queues of each primary into co->primaries and
 * writes them to <prefix>:metrics as primary:<host:port>:<field>,
 * deleting the fields of a primary gone since the last collection.
 * Returns 0 or LLMB_EIO. */
static int primaries_collect(struct llmb_coord *co)
{
    static const char *const names[] = {"queues", "tasks_pending",
                                        "tasks_delayed", "tasks_running"};
    struct llmb_coord_primary *p = NULL;
    struct llmb_strlist set = {0}, del = {0};
    struct llmb_strlist *cmds[2] = {&set, &del};
    char *key;
    size_t n = 0;
    bool written;
    int rc = 0;

    if (!llmb_cluster_enabled(co->cl))
        return 0;
    for (size_t i = 0; i < co->nqueues; i++) {
        const struct llmb_coord_queue *q = &co->queues[i];
        int owner = llmb_cluster_owner(co->cl, q->base);
        const char *name;
        size_t k;
        if (owner < 0 || q->stats_err != NULL || q->away)
            continue;
        name = llmb_cluster_node_name(co->cl, (size_t)owner);
        for (k = 0; k < n && strcmp(p[k].name, name) != 0; k++)
            ;
        if (k == n) {
            p = llmb_xrealloc(p, (n + 1) * sizeof(*p));
            memset(&p[n], 0, sizeof(*p));
            p[n++].name = llmb_xstrdup(name);
        }
        p[k].queues++;
        p[k].pending += q->stats.pending;
        p[k].delayed += q->stats.delayed;
        p[k].running += q->stats.running;
    }
    key = llmb_coord_key(co, "metrics");
    llmb_strlist_push(&set, "HSET");
    llmb_strlist_push(&set, key);
    for (size_t k = 0; k < n; k++) {
        const long long v[] = {p[k].queues, p[k].pending, p[k].delayed,
                               p[k].running};
        for (size_t f = 0; f < 4; f++) {
            char *field = llmb_xasprintf("primary:%s:%s", p[k].name, names[f]);
            char num[32];
            snprintf(num, sizeof(num), "%lld", v[f]);
            llmb_strlist_push(&set, field);
            llmb_strlist_push(&set, num);
            free(field);
        }
    }
    llmb_strlist_push(&del, "HDEL");
    llmb_strlist_push(&del, key);
    for (size_t j = 0; j < co->primaries_in_hash.n; j++) {
        const char *old = co->primaries_in_hash.v[j];
        bool kept = false;
        for (size_t k = 0; k < n; k++)
            kept = kept || strcmp(p[k].name, old) == 0;
        for (size_t f = 0; !kept && f < 4; f++) {
            char *field = llmb_xasprintf("primary:%s:%s", old, names[f]);
            llmb_strlist_push(&del, field);
            free(field);
        }
    }
    /* While the hash's primary is away, nothing is written: the fields
     * of a primary gone meanwhile go at the next write. */
    written = !llmb_coord_away(co, key);
    for (size_t c = 0; c < 2 && rc == 0 && written; c++) {
        redisReply *r;
        if (cmds[c]->n <= 2)
            continue;
        r = llmb_cluster_commandargv(co->cl, (int)cmds[c]->n,
                                     (const char **)cmds[c]->v, NULL);
        if (r == NULL) {
            rc = llmb_coord_lost(co);
            break;
        }
        if (r->type == REDIS_REPLY_ERROR)
            llmb_coord_reply_error(co, "writing metrics per primary", NULL,
                                   r);
        freeReplyObject(r);
    }
    if (written && rc == 0) {
        llmb_strlist_clear(&co->primaries_in_hash);
        for (size_t k = 0; k < n; k++)
            llmb_strlist_push(&co->primaries_in_hash, p[k].name);
    } else {
        for (size_t k = 0; k < n; k++) {
            bool known = false;
            for (size_t j = 0; j < co->primaries_in_hash.n; j++)
                known = known ||
                        strcmp(co->primaries_in_hash.v[j], p[k].name) == 0;
            if (!known)
                llmb_strlist_push(&co->primaries_in_hash, p[k].name);
        }
    }
    llmb_strlist_clear(&set);
    llmb_strlist_clear(&del);
    llmb_metrics_primaries_free(co->primaries, co->nprimaries);
    co->primaries = p;
    co->nprimaries = n;
    free(key);
    return rc;
}

int llmb_metrics_collect(struct llmb_coord *co)
{
    struct llmb_cluster_metrics m;
    redisReply *workers = NULL;
    size_t i;
    int s;

    char *zkey = llmb_coord_key(co, "workers");
    bool registry = !llmb_coord_away(co, zkey);

    free(zkey);
    memset(&m, 0, sizeof(m));
    for (i = 0; i < co->nqueues; i++) {
        co->queues[i].away = llmb_coord_away(co, co->queues[i].base);
        if (registry)
            co->queues[i].by_registry = false;
    }
    if (!registry) {
        /* the registry's primary is away: the last figures stand */
        m.workers_total = co->metrics.workers_total;
        m.workers_active = co->metrics.workers_active;
        m.workers_idle = co->metrics.workers_idle;
        m.workers_busy = co->metrics.workers_busy;
        m.workers_dead = co->metrics.workers_dead;
        m.capacity_total = co->metrics.capacity_total;
        m.capacity_used = co->metrics.capacity_used;
    }
    if (read_cluster(co, &m, &workers) != 0)
        return LLMB_EIO;
    if (workers != NULL && read_workers(co, workers, &m) != 0) {
        freeReplyObject(workers);
        return LLMB_EIO;
    }
    freeReplyObject(workers);
    if (types_trim(co) != 0)
        return LLMB_EIO;
    m.capacity_available = m.capacity_total - m.capacity_used;
    m.load_pct = m.capacity_total > 0 ? 100.0 * (double)m.capacity_used /
                                            (double)m.capacity_total
                                      : 0.0;
    for (i = 0; i < co->nqueues; i++) {
        const struct llmb_coord_queue *q = &co->queues[i];
        if (q->away)
            continue; /* unknown, not 0 */
        m.tasks_pending += q->stats.pending;
        m.tasks_running += q->stats.running;
        m.tasks_delayed += q->stats.delayed;
        m.queues_to_aggregate += q->stats.to_aggregate;
        m.tasks_completed += q->stats.tasks_ok;
        m.tasks_failed += q->stats.tasks_failed;
        m.tasks_cancelled += q->stats.tasks_cancelled;
        for (s = 0; s < LLMB_JS_COUNT; s++)
            m.jobs[s] += q->jobs_by_state[s];
    }
    m.valid = true;
    co->metrics = m;
    if (write_hash(co) != 0)
        return LLMB_EIO;
    return primaries_collect(co);
}


int llmb_metrics_queue_forget(struct llmb_coord *co, const char *name)
{
    return queue_fields_del(co, name, true, true);
}

char *llmb_metrics_unserved(const struct llmb_coord_queue *q)
{
    if (q->stats_err != NULL || q->away || q->stats.pending == 0)
        return NULL;
    if (!queue_served(q))
        return llmb_xasprintf("%lld tasks pending and no live worker "
                              "serves the queue", q->stats.pending);
    if (q->head_type != NULL && llmb_served_any(&q->served) &&
        !llmb_served_type(&q->served, q->head_type))
        return llmb_xasprintf("tasks of type \"%s\" pending and no live "
                              "worker handles that type", q->head_type);
    return NULL;
}

const char *llmb_health_name(enum llmb_health h)
{
    switch (h) {
    case LLMB_HEALTHY:
        return "healthy";
    case LLMB_DEGRADED:
        return "degraded";
    case LLMB_UNHEALTHY:
        return "unhealthy";
    }
    return "unhealthy";
}

static void cause(struct llmb_buf *b, enum llmb_health *h,
                  enum llmb_health level, const char *fmt, ...)
    LLMB_PRINTF(4, 5);

/* Adds one cause to the health reason b ("; " between causes) and raises
 * *h to level when it is below. */
static void cause(struct llmb_buf *b, enum llmb_health *h,
                  enum llmb_health level, const char *fmt, ...)
{
    va_list ap;

    if (b->len > 0)
        llmb_buf_append(b, "; ", 2);
    va_start(ap, fmt);
    llmb_buf_vappendf(b, fmt, ap);
    va_end(ap);
    if (*h < level)
        *h = level;
}

enum llmb_health llmb_metrics_health(const struct llmb_coord *co, char *reason,
                                     size_t reason_size)
{
    const struct llmb_cluster_metrics *m = &co->metrics;
    struct llmb_buf b;
    enum llmb_health h = LLMB_HEALTHY;

    if (!co->up) {
        snprintf(reason, reason_size, "redis unreachable: %s",
                 co->redis_err ? co->redis_err : "not connected yet");
        return LLMB_UNHEALTHY;
    }
    if (!m->valid) {
        snprintf(reason, reason_size, "no metrics collected yet");
        return LLMB_DEGRADED;
    }
    llmb_buf_init(&b);
    for (size_t i = 0; i < co->nqueues; i++) {
        const struct llmb_coord_queue *q = &co->queues[i];
        if (q->stats_err != NULL)
            cause(&b, &h, LLMB_UNHEALTHY, "queue %s: %s", q->name,
                  q->stats_err);
    }
    for (size_t i = 0; i < co->naway; i++) {
        const struct llmb_coord_away *a = &co->away[i];
        cause(&b, &h, LLMB_DEGRADED, "redis primary %s does not answer "
              "(for %lld s; its queues wait): %s", a->name,
              (long long)((llmb_mono_ms() - a->since_mono) / 1000), a->err);
    }
    if (m->load_pct > (double)co->cfg->load_degraded_pct)
        cause(&b, &h, LLMB_DEGRADED, "cluster load %.0f%% is above %lld%%",
              m->load_pct, co->cfg->load_degraded_pct);
    if (m->workers_dead > 0)
        cause(&b, &h, LLMB_DEGRADED, "%lld dead worker%s", m->workers_dead,
              m->workers_dead == 1 ? "" : "s");
    if (m->tasks_pending > 0 && m->workers_active == 0)
        cause(&b, &h, LLMB_DEGRADED, "%lld tasks pending and no live worker",
              m->tasks_pending);
    for (size_t i = 0; m->workers_active > 0 && i < co->nqueues; i++) {
        char *why = llmb_metrics_unserved(&co->queues[i]);
        if (why == NULL)
            continue;
        cause(&b, &h, LLMB_DEGRADED, "queue %s: %s", co->queues[i].name, why);
        free(why);
    }
    snprintf(reason, reason_size, "%s", h == LLMB_HEALTHY ? "ok" : b.data);
    llmb_buf_fini(&b);
    return h;
}

/* One Prometheus metric family: HELP and TYPE lines. */
static void family(struct llmb_buf *out, const char *name, const char *type,
                   const char *help)
{
    llmb_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                     type);
}

static void sample(struct llmb_buf *out, const char *name, long long v)
{
    llmb_buf_appendf(out, "%s %lld\n", name, v);
}

/* A label value with \, " and newline escaped. */
static void label_value(struct llmb_buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            llmb_buf_appendf(out, "\\%c", *s);
        else if (*s == '\n')
            llmb_buf_appendf(out, "\\n");
        else
            llmb_buf_append(out, s, 1);
    }
}

static void gauge(struct llmb_buf *out, const char *name, const char *help,
                  long long v)
{
    family(out, name, "gauge", help);
    sample(out, name, v);
}

static void counter(struct llmb_buf *out, const char *name, const char *help,
                    long long v)
{
    family(out, name, "counter", help);
    sample(out, name, v);
}

/* A per-queue family: one sample per queue, labelled queue, of the
 * llmb_queue_stats field at offset, times scale. Queues whose stats cannot
 * be read have no sample (llmb_queue_stats_error says so). */
static void queue_family(struct llmb_buf *out, const struct llmb_coord *co,
                         const char *name, const char *type, const char *help,
                         size_t offset, double scale)
{
    size_t i;

    family(out, name, type, help);
    for (i = 0; i < co->nqueues; i++) {
        const struct llmb_coord_queue *q = &co->queues[i];
        long long v;
        if (q->stats_err != NULL || q->away)
            continue;
        memcpy(&v, (const char *)&q->stats + offset, sizeof(v));
        if (scale == 1.0)
            llmb_buf_appendf(out, "%s{queue=\"%s\"} %lld\n", name, q->name, v);
        else
            llmb_buf_appendf(out, "%s{queue=\"%s\"} %.3f\n", name, q->name,
                             (double)v * scale);
    }
}

static void queue_gauge(struct llmb_buf *out, const struct llmb_coord *co,
                        const char *name, const char *help, size_t offset,
                        double scale)
{
    queue_family(out, co, name, "gauge", help, offset, scale);
}

static void queue_counter(struct llmb_buf *out, const struct llmb_coord *co,
                          const char *name, const char *help, size_t offset)
{
    queue_family(out, co, name, "counter", help, offset, 1.0);
}

void llmb_metrics_prometheus(const struct llmb_coord *co, struct llmb_buf *out)
{
    const struct llmb_cluster_metrics *m = &co->metrics;
    const struct llmb_coord_counters *c = &co->counters;
    char reason[512];
    enum llmb_health h = llmb_metrics_health(co, reason, sizeof(reason));
    int s;

    family(out, "llmb_coordinator_info", "gauge",
           "Constant 1, labelled with this coordinator's id and version.");
    llmb_buf_appendf(out, "llmb_coordinator_info{id=\"");
    label_value(out, co->id);
    llmb_buf_appendf(out, "\",version=\"%s\"} 1\n", LLMB_VERSION_STRING);
    family(out, "llmb_coordinator_uptime_seconds", "gauge",
           "Seconds since this coordinator started.");
    llmb_buf_appendf(out, "llmb_coordinator_uptime_seconds %.3f\n",
                     (double)llmb_coord_uptime_ms(co) / 1000.0);
    gauge(out, "llmb_redis_up", "1 when this coordinator reaches Redis.",
          co->up ? 1 : 0);
    family(out, "llmb_health", "gauge",
           "1 for the current health status (healthy, degraded, unhealthy).");
    for (s = LLMB_HEALTHY; s <= LLMB_UNHEALTHY; s++)
        llmb_buf_appendf(out, "llmb_health{status=\"%s\"} %d\n",
                         llmb_health_name((enum llmb_health)s),
                         (enum llmb_health)s == h ? 1 : 0);

    if (llmb_cluster_enabled(co->cl) && co->up) {
        size_t n = llmb_cluster_nnodes(co->cl);
        family(out, "llmb_primary_up", "gauge",
               "1 when this Redis Cluster primary answers this "
               "coordinator, 0 while it does not (its queues wait).");
        for (size_t k = 0; k < n; k++) {
            const char *name = llmb_cluster_node_name(co->cl, k);
            bool away = false;
            for (size_t j = 0; j < co->naway; j++)
                away = away || strcmp(co->away[j].name, name) == 0;
            llmb_buf_appendf(out, "llmb_primary_up{primary=\"");
            label_value(out, name);
            llmb_buf_appendf(out, "\"} %d\n", away ? 0 : 1);
        }
        family(out, "llmb_primary_away_seconds", "gauge",
               "Seconds since this Redis Cluster primary stopped answering "
               "this coordinator (only while it does not).");
        for (size_t j = 0; j < co->naway; j++) {
            llmb_buf_appendf(out, "llmb_primary_away_seconds{primary=\"");
            label_value(out, co->away[j].name);
            llmb_buf_appendf(out, "\"} %.3f\n",
                             (double)(llmb_mono_ms() -
                                      co->away[j].since_mono) / 1000.0);
        }
    }
    if (co->nprimaries > 0) {
        static const char *const pn[] = {
            "llmb_primary_queues", "llmb_primary_tasks_pending",
            "llmb_primary_tasks_delayed", "llmb_primary_tasks_running"};
        static const char *const ph[] = {
            "Queues whose slot this Redis Cluster primary owns.",
            "Tasks pending in the queues of this primary.",
            "Tasks delayed in the queues of this primary.",
            "Tasks running in the queues of this primary."};
        for (size_t f = 0; f < 4; f++) {
            family(out, pn[f], "gauge", ph[f]);
            for (size_t k = 0; k < co->nprimaries; k++) {
                const struct llmb_coord_primary *p = &co->primaries[k];
                const long long v[] = {p->queues, p->pending, p->delayed,
                                       p->running};
                llmb_buf_appendf(out, "%s{primary=\"", pn[f]);
                label_value(out, p->name);
                llmb_buf_appendf(out, "\"} %lld\n", v[f]);
            }
        }
    }
    if (m->valid) {
        gauge(out, "llmb_workers_total", "Registered workers.",
              m->workers_total);
        gauge(out, "llmb_workers_active", "Workers alive (idle or busy).",
              m->workers_active);
        gauge(out, "llmb_workers_idle", "Live workers running no task.",
              m->workers_idle);
        gauge(out, "llmb_workers_busy", "Live workers running tasks.",
              m->workers_busy);
        gauge(out, "llmb_workers_dead",
              "Workers judged dead whose records are still kept.",
              m->workers_dead);
        gauge(out, "llmb_capacity_total",
              "Task slots of live workers (sum of capacity).",
              m->capacity_total);
        gauge(out, "llmb_capacity_used", "Task slots in use.",
              m->capacity_used);
        gauge(out, "llmb_capacity_available", "Task slots free.",
              m->capacity_available);
        family(out, "llmb_cluster_load_percent", "gauge",
               "Used capacity as a percentage of total capacity.");
        llmb_buf_appendf(out, "llmb_cluster_load_percent %.1f\n", m->load_pct);
        family(out, "llmb_jobs", "gauge",
               "Jobs by state, as of the last full pass over the job lists.");
        for (s = 0; s < LLMB_JS_COUNT; s++)
            llmb_buf_appendf(out, "llmb_jobs{state=\"%s\"} %lld\n",
                             job_state_names[s], m->jobs[s]);
        family(out, "llmb_tasks", "gauge",
               "Tasks waiting (pending), leased (running) or delayed.");
        llmb_buf_appendf(out, "llmb_tasks{state=\"pending\"} %lld\n",
                         m->tasks_pending);
        llmb_buf_appendf(out, "llmb_tasks{state=\"running\"} %lld\n",
                         m->tasks_running);
        llmb_buf_appendf(out, "llmb_tasks{state=\"delayed\"} %lld\n",
                         m->tasks_delayed);
        counter(out, "llmb_tasks_completed_total",
                "Tasks that ended completed, all queues.", m->tasks_completed);
        counter(out, "llmb_tasks_failed_total",
                "Tasks that failed for good, all queues.", m->tasks_failed);
        counter(out, "llmb_tasks_cancelled_total",
                "Tasks that ended cancelled, all queues.", m->tasks_cancelled);
        queue_gauge(out, co, "llmb_queue_pending", "Tasks waiting per queue.",
                    offsetof(struct llmb_queue_stats, pending), 1.0);
        queue_gauge(out, co, "llmb_queue_delayed", "Tasks delayed per queue.",
                    offsetof(struct llmb_queue_stats, delayed), 1.0);
        queue_gauge(out, co, "llmb_queue_running", "Tasks leased per queue.",
                    offsetof(struct llmb_queue_stats, running), 1.0);
        queue_gauge(out, co, "llmb_queue_jobs", "Jobs kept per queue.",
                    offsetof(struct llmb_queue_stats, jobs), 1.0);
        queue_gauge(out, co, "llmb_queue_dead", "Failed jobs in the dead set.",
                    offsetof(struct llmb_queue_stats, dead), 1.0);
        queue_gauge(out, co, "llmb_queue_to_aggregate",
                    "Finished jobs waiting for their aggregate.",
                    offsetof(struct llmb_queue_stats, to_aggregate), 1.0);
        queue_gauge(out, co, "llmb_queue_head_age_seconds",
                    "Age of the job of the oldest waiting task.",
                    offsetof(struct llmb_queue_stats, head_age_ms), 0.001);
        queue_counter(out, co, "llmb_queue_tasks_completed_total",
                      "Tasks that ended completed per queue.",
                      offsetof(struct llmb_queue_stats, tasks_ok));
        queue_counter(out, co, "llmb_queue_tasks_failed_total",
                      "Tasks that failed for good per queue.",
                      offsetof(struct llmb_queue_stats, tasks_failed));
        queue_counter(out, co, "llmb_queue_junk_total",
                      "Junk the functions met and skipped per queue "
                      "(members or keys that name no task).",
                      offsetof(struct llmb_queue_stats, junk));
        family(out, "llmb_queue_stats_error", "gauge",
               "1 while the stats of the queue cannot be read (llmb_stats "
               "failed or named keys of the wrong type); its other "
               "llmb_queue_* samples are then missing.");
        for (size_t i = 0; i < co->nqueues; i++)
            llmb_buf_appendf(out, "llmb_queue_stats_error{queue=\"%s\"} %d\n",
                             co->queues[i].name,
                             co->queues[i].stats_err != NULL ? 1 : 0);
        family(out, "llmb_queue_stats_errors_total", "counter",
               "Reads of the stats of the queue that could not be used, "
               "by this coordinator.");
        for (size_t i = 0; i < co->nqueues; i++)
            llmb_buf_appendf(out,
                             "llmb_queue_stats_errors_total{queue=\"%s\"} "
                             "%lld\n", co->queues[i].name,
                             co->queues[i].stats_errors);
    }

    counter(out, "llmb_coordinator_leases_reaped_total",
            "Expired leases (claim batches) this coordinator took back.",
            c->leases_reaped);
    counter(out, "llmb_coordinator_tasks_given_back_total",
            "Tasks of workers this coordinator judged dead that it gave "
            "back.", c->tasks_given_back);
    counter(out, "llmb_coordinator_workers_reaped_total",
            "Workers this coordinator judged dead.", c->workers_reaped);
    counter(out, "llmb_coordinator_deadlines_total",
            "Jobs this coordinator ended past their deadline.", c->deadlines);
    counter(out, "llmb_coordinator_promoted_total",
            "Delayed tasks this coordinator promoted.", c->promoted);
    counter(out, "llmb_coordinator_jobs_aggregated_total",
            "Jobs this coordinator aggregated.", c->jobs_aggregated);
    counter(out, "llmb_coordinator_jobs_trimmed_total",
            "Ids of gone jobs this coordinator trimmed from job lists.",
            c->jobs_trimmed);
    counter(out, "llmb_coordinator_workers_removed_total",
            "Dead worker records this coordinator deleted.",
            c->workers_removed);
    counter(out, "llmb_coordinator_redis_errors_total",
            "Redis errors and lost connections seen by this coordinator.",
            c->redis_errors);
    counter(out, "llmb_coordinator_reconnects_total",
            "Times this coordinator's Redis connection came back.",
            c->reconnects);
}

/* Sets key to v (stolen) in the object o[obj], made on first use. */
static void set_in(json_t *o, const char *obj, const char *key, json_t *v)
{
    json_t *child = json_object_get(o, obj);

    if (child == NULL) {
        child = json_object();
        json_object_set_new(o, obj, child);
    }
    json_object_set_new(child, key, v);
}

int llmb_metrics_healthz(const struct llmb_coord *co, struct llmb_buf *out)
{
    char reason[512];
    enum llmb_health h = llmb_metrics_health(co, reason, sizeof(reason));
    json_t *o = json_object();
    char *text;

    json_object_set_new(o, "status", json_string(llmb_health_name(h)));
    json_object_set_new(o, "reason", json_string(reason));
    json_object_set_new(o, "redis", json_boolean(co->up));
    json_object_set_new(o, "coordinator", json_string(co->id));
    json_object_set_new(o, "uptime_s",
                        json_integer(llmb_coord_uptime_ms(co) / 1000));
    if (co->metrics.valid) {
        json_object_set_new(o, "workers_active",
                            json_integer(co->metrics.workers_active));
        json_object_set_new(o, "workers_dead",
                            json_integer(co->metrics.workers_dead));
        json_object_set_new(o, "load_pct",
                            json_real(round(co->metrics.load_pct * 10) / 10));
    }
    for (size_t i = 0; i < co->nqueues; i++) {
        const struct llmb_coord_queue *q = &co->queues[i];
        if (q->stats_err != NULL)
            set_in(o, "queue_errors", q->name, json_string(q->stats_err));
    }
    for (size_t i = 0; i < co->naway; i++) {
        const struct llmb_coord_away *a = &co->away[i];
        json_t *d = json_object();
        json_object_set_new(d, "error", json_string(a->err));
        json_object_set_new(d, "away_s", json_integer(
                                             (llmb_mono_ms() - a->since_mono) /
                                             1000));
        set_in(o, "primaries_away", a->name, d);
    }
    for (size_t i = 0; co->metrics.valid && co->metrics.workers_active > 0 &&
                       i < co->nqueues; i++) {
        char *why = llmb_metrics_unserved(&co->queues[i]);
        if (why == NULL)
            continue;
        set_in(o, "unserved", co->queues[i].name, json_string(why));
        free(why);
    }
    text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
    llmb_assert(text != NULL);
    llmb_buf_appendf(out, "%s\n", text);
    free(text);
    json_decref(o);
    return h == LLMB_UNHEALTHY ? 503 : 200;
}
