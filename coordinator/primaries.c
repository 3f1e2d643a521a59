/*
 * On a Redis Cluster: which primaries answer.
 *
 * Each queue lives on one primary, and so does each key that is not per
 * queue (<prefix>:queues, :workers, :worker:<id>, :metrics). A primary
 * that stops answering (killed, stopped, its host gone, a failover under
 * way) must not stop the work of the others. A failed call makes the
 * coordinator ask every primary it counts present (PING on its
 * connection); those that do not answer are away: every step leaves out
 * the keys they own (llmb_coord_away()) and goes on with the others. An
 * away primary is asked again at the start of a tick with backoff (1 s
 * doubling to 10 s), after a read of the map, which forgets it once a
 * replica has taken over. Only when no primary answers is Redis down for
 * the coordinator (llmb_coord_lost()).
 */
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/log.h>

#include "coordinator.h"

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 10000
#define LOG_EVERY_MS 30000 /* "still away" lines, per primary */

static struct llmb_coord_away *find(const struct llmb_coord *co,
                                    const char *name)
{
    for (size_t i = 0; i < co->naway; i++)
        if (strcmp(co->away[i].name, name) == 0)
            return &co->away[i];
    return NULL;
}

static void forget(struct llmb_coord *co, size_t i)
{
    free(co->away[i].name);
    free(co->away[i].err);
    memmove(&co->away[i], &co->away[i + 1],
            (co->naway - i - 1) * sizeof(*co->away));
    co->naway--;
}

void llmb_primaries_free(struct llmb_coord *co)
{
    while (co->naway > 0)
        forget(co, co->naway - 1);
    free(co->away);
    co->away = NULL;
}

bool llmb_coord_away(const struct llmb_coord *co, const char *key)
{
    int owner;

    if (!llmb_cluster_enabled(co->cl))
        return false;
    owner = llmb_cluster_owner(co->cl, key);
    if (owner < 0)
        return true; /* no primary serves its slot now: a failover */
    return find(co, llmb_cluster_node_name(co->cl, (size_t)owner)) != NULL;
}

/* Records that primary name did not answer (err): new, or asked again
 * in vain. Logs the first time, then at most every LOG_EVERY_MS. */
static void mark_away(struct llmb_coord *co, const char *name,
                      const char *err)
{
    struct llmb_coord_away *a = find(co, name);
    int64_t now = llmb_mono_ms();

    if (a == NULL) {
        co->away = llmb_xrealloc(co->away,
                                 (co->naway + 1) * sizeof(*co->away));
        a = &co->away[co->naway++];
        memset(a, 0, sizeof(*a));
        a->name = llmb_xstrdup(name);
        a->since_mono = now;
        a->wait_ms = RETRY_MIN_MS;
        a->logged_mono = now;
        co->counters.redis_errors++;
        llmb_warn("redis primary %s does not answer: %s; its queues wait, "
                  "the others go on (asked again in %lld ms)", name, err,
                  (long long)a->wait_ms);
    } else {
        a->wait_ms = a->wait_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS
                                                   : a->wait_ms * 2;
        if (now - a->logged_mono >= LOG_EVERY_MS) {
            a->logged_mono = now;
            llmb_warn("redis primary %s still does not answer after %lld s: "
                      "%s", name, (long long)((now - a->since_mono) / 1000),
                      err);
        }
    }
    free(a->err);
    a->err = llmb_xstrdup(err);
    a->retry_mono = now + a->wait_ms;
}

/* PING on primary i's connection (connecting, and loading the library,
 * if need be). Returns true when it answered; else err is set. */
static bool ping(struct llmb_coord *co, size_t i, char **err)
{
    struct llmb_conn *c = llmb_cluster_node_conn(co->cl, i);
    redisReply *r;
    bool ok;

    if (c == NULL) {
        *err = llmb_xstrdup(llmb_cluster_errstr(co->cl));
        return false;
    }
    r = llmb_conn_command(c, "PING");
    ok = r != NULL && r->type != REDIS_REPLY_ERROR;
    if (!ok) {
        char desc[128];
        *err = r == NULL ? llmb_xstrdup(llmb_conn_errstr(c))
                         : llmb_xstrdup(llmb_reply_describe(r, desc,
                                                            sizeof(desc)));
    }
    freeReplyObject(r);
    return ok;
}

/* The commands that name no key (TIME, CLIENT LIST) go to the first
 * primary that is not away. */
static void keyless_pick(struct llmb_coord *co)
{
    size_t n = llmb_cluster_nnodes(co->cl), i;

    for (i = 0; i < n; i++)
        if (find(co, llmb_cluster_node_name(co->cl, i)) == NULL)
            break;
    llmb_cluster_set_keyless(co->cl, i < n ? i : 0);
}

size_t llmb_primaries_check(struct llmb_coord *co)
{
    size_t n = llmb_cluster_nnodes(co->cl), ok = 0;

    for (size_t i = 0; i < n; i++) {
        const char *name = llmb_cluster_node_name(co->cl, i);
        char *err = NULL;
        if (find(co, name) != NULL)
            continue;
        if (ping(co, i, &err))
            ok++;
        else
            mark_away(co, llmb_cluster_node_name(co->cl, i), err);
        free(err);
    }
    keyless_pick(co);
    return ok;
}

/* True when a known queue's slot, or a key of the coordinator's, has no
 * owner in the map. */
static bool slot_unowned(const struct llmb_coord *co)
{
    static const char *const globals[] = {"queues", "workers", "metrics"};

    for (size_t i = 0; i < co->nqueues; i++)
        if (llmb_cluster_owner(co->cl, co->queues[i].base) < 0)
            return true;
    for (size_t i = 0; i < 3; i++) {
        char *key = llmb_coord_key(co, globals[i]);
        int owner = llmb_cluster_owner(co->cl, key);
        free(key);
        if (owner < 0)
            return true;
    }
    return false;
}

int llmb_primaries_tick(struct llmb_coord *co)
{
    int64_t now = llmb_mono_ms();
    size_t n, present = 0;
    bool due = false;

    for (size_t i = 0; i < co->naway; i++)
        due = due || now >= co->away[i].retry_mono;
    if ((due || slot_unowned(co)) && llmb_cluster_refresh(co->cl) != 0)
        return LLMB_EIO;
    n = llmb_cluster_nnodes(co->cl);
    for (size_t i = 0; i < co->naway;) {
        struct llmb_coord_away *a = &co->away[i];
        size_t k;
        for (k = 0; k < n; k++)
            if (strcmp(llmb_cluster_node_name(co->cl, k), a->name) == 0)
                break;
        if (k == n) {
            llmb_info("redis primary %s is no longer a primary (a replica "
                      "took over its slots after %lld s)", a->name,
                      (long long)((now - a->since_mono) / 1000));
            forget(co, i);
            continue;
        }
        if (now >= a->retry_mono) {
            char *err = NULL;
            if (ping(co, k, &err)) {
                llmb_info("redis primary %s answers again after %lld s; its "
                          "queues go on", a->name,
                          (long long)((now - a->since_mono) / 1000));
                forget(co, i);
                continue;
            }
            mark_away(co, a->name, err);
            free(err);
        }
        i++;
    }
    for (size_t k = 0; k < n; k++)
        if (find(co, llmb_cluster_node_name(co->cl, k)) == NULL)
            present++;
    keyless_pick(co);
    return present > 0 ? 0 : LLMB_EIO;
}
