/*
 * The worker's lifecycle (core.h has the map of the core). It builds the
 * handlers and queues from the configuration, opens two Redis connections,
 * takes ownership of its worker id, names the connections
 * "llmb-worker:<id>" (the coordinator tells live workers by these names),
 * registers the worker on every connect, heartbeats (renewing its leases,
 * its registry record and the job types it advertises, types.c), and runs
 * the step that ends every loop iteration: send queued outcomes, then the
 * next claim or BLPOP, then see whether a shutdown is complete.
 *
 * Ownership of the id. Two processes with one id would share one registry
 * record and one set of connection names: the coordinator could not tell
 * when one of them dies. So on every connect, before it claims, names its
 * connections or registers, the worker writes its instance string
 * ("<host>:<pid>:<random hex>") into <prefix>:worker:<id>:owner with SET
 * NX: Redis runs one SET at a time, so of two workers started at the same
 * moment exactly one gets the id. The other stops with the owner's pid and
 * host in its log (llmb_worker_status() is then LLMB_ECONFIG), never
 * having looked like a live worker. The key expires OWNER_TTL_HEARTBEATS
 * heartbeats after its last refresh, and a coordinator deletes it when it
 * finds the worker dead, so a restart with the same id waits at most that
 * long. Each heartbeat refreshes it only if it still holds our instance;
 * a worker that finds another there (it was cut off or stalled longer than
 * that) gives its running tasks back and stops. A clean shutdown deletes
 * the key, with the registry record, only while it is still ours (WATCH).
 *
 * Shutdown. The first SIGTERM/SIGINT stops claiming and lets running tasks
 * finish for --grace seconds. Then (or at a second signal) the tasks still
 * running are released back to their queues (llmb_release, no attempt
 * spent) and stopped; once every executor has stopped and Redis answered
 * for every outcome, the worker deregisters and breaks the loop. A hard
 * timer bounds that last phase when Redis is unreachable, or refuses the
 * deregistration while the owner key's slot moves (it is tried again):
 * leases then expire and the tasks run again elsewhere.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llmb/cluster.h>
#include <llmb/err.h>
#include <llmb/keys.h>
#include <llmb/log.h>
#include <llmb/reply.h>
#include <llmb/served.h>
#include <llmb/url.h>
#include <llmb/util.h>

#include "core.h"
#include "worker.h"

/* The worker hash lives this long without a heartbeat. */
#define WORKER_TTL_S "86400"
/* After the tasks are released: the longest wait for Redis and executors
 * on top of the kill grace. */
#define EXIT_SLACK_MS 5000
/* After a deregistration refused because the owner key's slot moved or
 * is moving: the wait before the next try, by when the router has read
 * the slot map again (it does so at most every 100 ms). */
#define DEREG_RETRY_MS 100
/* The owner key of the id lives this many heartbeats after its last
 * refresh, and at least OWNER_TTL_MIN_MS. */
#define OWNER_TTL_HEARTBEATS 3
#define OWNER_TTL_MIN_MS 1000

static void release_all(struct llmb_worker *w);

/* Starts the hard limit on the rest of the shutdown, unless it runs
 * already: the exit timer (exit_cb). */
static void exit_timer_start(struct llmb_worker *w)
{
    if (ev_is_active(&w->exit_timer))
        return;
    ev_timer_set(&w->exit_timer,
                 (ev_tstamp)(w->cfg->kill_grace_ms + EXIT_SLACK_MS) / 1000.0,
                 0.0);
    ev_timer_start(w->loop, &w->exit_timer);
}

long llmb_worker_free_slots(const struct llmb_worker *w)
{
    return w->capacity - (long)w->running;
}

static void retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)t;
    (void)revents;
    /* Nothing to do: the step runs before the loop blocks again. */
}

void llmb_worker_hold(struct llmb_worker *w, int64_t ms)
{
    w->hold_until_mono_ms = llmb_mono_ms() + ms;
    ev_timer_stop(w->loop, &w->retry);
    ev_timer_set(&w->retry, (ev_tstamp)ms / 1000.0 + 0.001, 0.0);
    ev_timer_start(w->loop, &w->retry);
}

static const char *state_name(const struct llmb_worker *w)
{
    if (w->state != LLMB_WORKER_RUNNING)
        return "draining";
    return w->running > 0 ? "busy" : "idle";
}

/* Writes the worker hash and its heartbeat score; no reply needed. Only
 * while the id is ours, and not once deregistration has begun. */
static void registry_write(struct llmb_worker *w)
{
    char pid[24], cap[24], running[24], completed[24], failed[24];
    char started[24], now_s[24];
    int64_t now = llmb_now_ms();

    if (w->id_owner != LLMB_ID_OWNED || w->dereg_sent)
        return;

    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    snprintf(cap, sizeof(cap), "%ld", w->capacity);
    snprintf(running, sizeof(running), "%zu", w->running);
    snprintf(completed, sizeof(completed), "%lld", w->completed);
    snprintf(failed, sizeof(failed), "%lld", w->failed);
    snprintf(started, sizeof(started), "%" PRId64, w->started_ms);
    snprintf(now_s, sizeof(now_s), "%" PRId64, now);
    const char *hset[] = {
        "HSET", w->worker_key, "id", w->id, "host", w->host, "pid", pid,
        "queues", w->queues_text, "tags", w->tags_text, "capacity", cap,
        "running", running, "completed", completed, "failed", failed,
        "version", LLMB_VERSION_STRING, "started_ms", started, "seen_ms",
        now_s, "state", state_name(w),
    };
    const char *expire[] = {"EXPIRE", w->worker_key, WORKER_TTL_S};
    const char *zadd[] = {"ZADD", w->workers_key, now_s, w->id};
    llmb_worker_send(w, w->worker_key, NULL, NULL,
                     (int)(sizeof(hset) / sizeof(hset[0])), hset, NULL);
    llmb_worker_send(w, w->worker_key, NULL, NULL, 3, expire, NULL);
    llmb_worker_send(w, w->workers_key, NULL, NULL, 4, zadd, NULL);
    llmb_types_advertise(w);
}

/* A heartbeat call in flight: which tasks it named, with their tokens. */
struct hb_req {
    struct llmb_worker *w;
    struct llmb_wqueue *q;
    struct llmb_strlist refs, tokens;
};

static void hb_req_free(struct hb_req *h)
{
    llmb_strlist_clear(&h->refs);
    llmb_strlist_clear(&h->tokens);
    free(h);
}

static void hb_reply(struct llmb_aconn *ac, const redisReply *r, void *priv)
{
    struct hb_req *h = priv;
    struct llmb_worker *w = h->w;

    (void)ac;
    w->hb_inflight--;
    if (r == NULL) {
        hb_req_free(h);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        llmb_error("redis refused llmb_heartbeat: %s queue=%s",
                   r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply",
                   h->q->name);
        hb_req_free(h);
        return;
    }
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *ref = r->element[i], *why = r->element[i + 1];
        if (ref->type != REDIS_REPLY_STRING || why->type != REDIS_REPLY_STRING)
            continue;
        for (size_t k = 0; k < h->refs.n; k++) {
            if (strcmp(h->refs.v[k], ref->str) != 0)
                continue;
            struct llmb_task *t = llmb_task_find(w, h->q, ref->str,
                                                 h->tokens.v[k]);
            if (t == NULL)
                break;
            const char *reason = strcmp(why->str, "cancelled") == 0 ?
                "job cancelled" : strcmp(why->str, "gone") == 0 ?
                "job deleted" : "lease lost";
            llmb_info("stopping task: %s job=%s task=%ld queue=%s", reason,
                      t->job, t->x.task, h->q->name);
            llmb_task_stop(t, LLMB_TASK_DROP, reason);
            break;
        }
    }
    hb_req_free(h);
}

/* Most leases one llmb_heartbeat call renews (TASKS_MAX in
 * lua/00-header.lua; CALL_MAX, 250, is the limit of other calls). */
#define HB_MAX 1000

/* Sends heartbeat request h (it owns h from here). */
static void hb_send(struct llmb_worker *w, struct hb_req *h, const char *lease)
{
    size_t argc = 6 + 2 * h->refs.n, k = 0;
    const char **argv = llmb_xmalloc(argc * sizeof(*argv));

    argv[k++] = "FCALL";
    argv[k++] = "llmb_heartbeat";
    argv[k++] = "1";
    argv[k++] = h->q->base;
    argv[k++] = w->id;
    argv[k++] = lease;
    for (size_t j = 0; j < h->refs.n; j++) {
        argv[k++] = h->refs.v[j];
        argv[k++] = h->tokens.v[j];
    }
    if (llmb_worker_send(w, h->q->base, hb_reply, h, (int)k, argv, NULL) == 0)
        w->hb_inflight++;
    else
        hb_req_free(h);
    free(argv);
}

/* Lease renewals per queue, one heartbeat's worth, HB_MAX per call. The
 * registry is written when the claim on the id has been renewed
 * (owner_result). */
static void heartbeat_send(struct llmb_worker *w)
{
    char lease[24];

    snprintf(lease, sizeof(lease), "%lld", w->cfg->lease_ms);
    for (size_t i = 0; i < w->nq; i++) {
        struct llmb_wqueue *q = &w->q[i];
        struct hb_req *h = NULL;
        if (q->held == 0 || !llmb_worker_ready(w, q->base))
            continue;
        for (struct llmb_task *t = w->tasks; t != NULL; t = t->next) {
            if (t->q != q || t->finished || t->stop == LLMB_TASK_DROP)
                continue;
            if (h == NULL) {
                h = llmb_xcalloc(1, sizeof(*h));
                h->w = w;
                h->q = q;
            }
            llmb_strlist_push(&h->refs, t->ref);
            llmb_strlist_push(&h->tokens, t->token);
            if (h->refs.n == HB_MAX) {
                hb_send(w, h, lease);
                h = NULL;
            }
        }
        if (h != NULL)
            hb_send(w, h, lease);
    }
}

/* "<host>:<pid>:<16 random hex digits>": tells this process from every
 * other, a restart with the same pid on the same host included. The caller
 * frees it. */
static char *instance_new(const char *host)
{
    char hex[17];

    if (llmb_random_hex(hex, 8) != 0)
        snprintf(hex, sizeof(hex), "%016" PRIx64,
                 (uint64_t)llmb_mono_us() ^ (uint64_t)random() ^
                 ((uint64_t)getpid() << 32));
    return llmb_xasprintf("%s:%ld:%s", host, (long)getpid(), hex);
}

/* The owner of an instance string, for people: "pid 1234 on host-a", or
 * the string itself when it has another shape. The caller frees it. */
static char *instance_describe(const char *v)
{
    size_t n = strlen(v), last = n, pid = n;

    for (size_t i = n; i > 0; i--) {
        if (v[i - 1] != ':')
            continue;
        if (last == n) {
            last = i - 1;
        } else {
            pid = i - 1;
            break;
        }
    }
    if (pid == n || last == pid + 1)
        return llmb_xasprintf("instance \"%s\"", v);
    return llmb_xasprintf("pid %.*s on %.*s", (int)(last - pid - 1),
                          v + pid + 1, (int)pid, v);
}

/* Names a connection llmb-worker:<id>, the name the coordinator looks
 * for. Done only once the id is ours, so that a worker refused its id
 * never looks like the live one. */
static void conn_name_set(struct llmb_worker *w, struct llmb_aconn *ac)
{
    const char *argv[] = {"CLIENT", "SETNAME", w->conn_name};

    if (ac != NULL && llmb_aconn_ready(ac))
        llmb_aconn_command_argv(ac, NULL, NULL, 3, argv, NULL);
}

static void conn_name_each(struct llmb_aconn *ac, void *priv)
{
    conn_name_set(priv, ac);
}

int llmb_worker_send(struct llmb_worker *w, const char *key,
                     llmb_aconn_reply_fn *cb, void *priv, int argc,
                     const char **argv, const size_t *argvlen)
{
    return llmb_acluster_command_argv(w->rc, key, cb, priv, argc, argv,
                                      argvlen);
}

bool llmb_worker_ready(struct llmb_worker *w, const char *key)
{
    return w->rc != NULL && llmb_acluster_ready(w->rc, key);
}

/* Stops claiming at once and gives the running tasks back; the loop ends
 * once they are released (shutdown_step). */
static void worker_stop(struct llmb_worker *w)
{
    if (w->state == LLMB_WORKER_RELEASING)
        return;
    llmb_acluster_close_blocking(w->rc);
    release_all(w);
}

/* Another process owns the id (its instance string is holder): refuse to
 * start, or stop if we owned it before. */
static void id_taken(struct llmb_worker *w, const char *holder)
{
    char *who = instance_describe(holder);

    w->id_owner = LLMB_ID_TAKEN;
    w->status = LLMB_ECONFIG;
    if (!w->id_owned_once)
        llmb_error("worker id \"%s\" is in use by another running "
                   "llmb-worker (%s): start this one with another --id "
                   "(without --id the default id is unique); if that worker "
                   "has just stopped or was killed, start this one again "
                   "once its claim on the id lapses (%s expires %d "
                   "heartbeats after its last one, or goes as soon as a "
                   "coordinator finds that worker dead)", w->id, who,
                   w->owner_key, OWNER_TTL_HEARTBEATS);
    else
        llmb_error("worker id \"%s\" was taken over by another llmb-worker "
                   "(%s) while this one could not renew its claim; giving "
                   "back %zu running tasks and stopping", w->id, who,
                   w->running);
    free(who);
    worker_stop(w);
}

/* The id is ours on this connection: name the connections, register the
 * queues, renew the leases. */
static void id_announce(struct llmb_worker *w)
{
    size_t argc = 2 + w->nq;
    const char **argv = llmb_xmalloc(argc * sizeof(*argv));

    llmb_acluster_each(w->rc, conn_name_each, w);
    argv[0] = "SADD";
    argv[1] = w->queues_key;
    for (size_t i = 0; i < w->nq; i++)
        argv[2 + i] = w->q[i].name;
    llmb_worker_send(w, w->queues_key, NULL, NULL, (int)argc, argv, NULL);
    free(argv);
    heartbeat_send(w);
}

/* What the owner key held before our write (prev: the reply of the SET
 * ... GET): nil or our instance means the id is ours, and the registry
 * record is written; another instance means it is not. */
static void owner_result(struct llmb_worker *w, const redisReply *prev)
{
    if (prev == NULL || (prev->type != REDIS_REPLY_NIL &&
                         prev->type != REDIS_REPLY_STRING)) {
        const char *msg = prev != NULL && prev->type == REDIS_REPLY_ERROR ?
                          prev->str : "unexpected reply";
        if (strncmp(msg, "NOPERM", 6) == 0) {
            llmb_error("redis refused the claim on worker id \"%s\": %s; "
                       "the worker's Redis user needs SET, GET and WATCH "
                       "on %s (deploy/redis/users.acl)", w->id, msg,
                       w->owner_key);
            w->status = LLMB_ECONFIG;
            worker_stop(w);
        } else {
            llmb_warn("cannot write the claim on worker id \"%s\" (trying "
                      "again at the next heartbeat): %s", w->id, msg);
        }
        return;
    }
    if (prev->type == REDIS_REPLY_STRING &&
        strcmp(prev->str, w->instance) != 0) {
        id_taken(w, prev->str);
        return;
    }
    if (prev->type == REDIS_REPLY_NIL && w->id_owned_once)
        llmb_warn("the claim on worker id \"%s\" had lapsed (redis lost it, "
                  "or this worker was cut off for more than %lld ms); "
                  "claimed it again", w->id, w->owner_ttl_ms);
    if (w->id_owner != LLMB_ID_OWNED) {
        w->id_owner = LLMB_ID_OWNED;
        w->id_owned_once = true;
        llmb_debug("worker id claimed id=%s key=%s instance=%s", w->id,
                   w->owner_key, w->instance);
        id_announce(w);
    }
    registry_write(w);
}

static void owner_set_reply(struct llmb_aconn *ac, const redisReply *r,
                            void *priv)
{
    struct llmb_worker *w = priv;

    (void)ac;
    w->id_inflight = false;
    if (r != NULL) /* NULL: lost; asked again on the reconnect */
        owner_result(w, r);
}

static void owner_exec_reply(struct llmb_aconn *ac, const redisReply *r,
                             void *priv)
{
    struct llmb_worker *w = priv;

    (void)ac;
    w->id_inflight = false;
    if (r == NULL)
        return;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2)
        owner_result(w, r->element[0]); /* the SET's reply */
    else
        owner_result(w, r->type == REDIS_REPLY_ERROR ? r : NULL);
}

/*
 * Writes the owner key. Before the id was ever ours: SET key instance NX
 * GET PX ttl, which takes the id only when nobody owns it. A refused
 * worker must not extend the owner's key: restarted in a loop, it would
 * keep the id of a dead worker taken forever. Afterwards (each heartbeat,
 * each reconnect): the same SET and a PEXPIRE in one MULTI, which renews
 * the key (or takes it again if it lapsed) and tells whether another
 * process took it meanwhile. Extending that other process's key once, in
 * that case, is harmless: this one then stops.
 */
static void owner_send(struct llmb_worker *w)
{
    char ttl[24];
    const char *set[] = {"SET", w->owner_key, w->instance, "NX", "GET",
                         "PX", ttl};
    const char *pexpire[] = {"PEXPIRE", w->owner_key, ttl};
    const char *multi[] = {"MULTI"};
    const char *exec[] = {"EXEC"};

    if (w->id_inflight || w->dereg_sent || w->id_owner == LLMB_ID_TAKEN ||
        w->status != 0 || !llmb_worker_ready(w, w->owner_key))
        return;
    snprintf(ttl, sizeof(ttl), "%lld", w->owner_ttl_ms);
    if (!w->id_owned_once) {
        if (llmb_worker_send(w, w->owner_key, owner_set_reply, w, 7, set,
                             NULL) == 0)
            w->id_inflight = true;
        return;
    }
    /* MULTI and EXEC go where the owner key does: the same connection. */
    if (llmb_worker_send(w, w->owner_key, NULL, NULL, 1, multi, NULL) == 0 &&
        llmb_worker_send(w, w->owner_key, NULL, NULL, 7, set, NULL) == 0 &&
        llmb_worker_send(w, w->owner_key, NULL, NULL, 3, pexpire, NULL) == 0 &&
        llmb_worker_send(w, w->owner_key, owner_exec_reply, w, 1, exec,
                         NULL) == 0)
        w->id_inflight = true;
}

static void heartbeat_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct llmb_worker *w = t->data;

    (void)loop;
    (void)revents;
    owner_send(w);
    if (w->hb_inflight == 0)
        heartbeat_send(w);
    else
        llmb_warn("the last heartbeat is still unanswered; skipping one");
    /* A safety net: look at the queues again even if no wake-up came. */
    if (w->queues_empty && w->blpops == 0)
        w->queues_empty = false;
}

/* On every connect of the owner key's primary (the one server, or one of
 * a cluster): nothing is claimed, named or registered until the owner key
 * answers that the id is ours (owner_result). Another primary of a
 * cluster (back after a failover, say) is named and its queues claimed
 * from again. */
static void cmd_ready(struct llmb_acluster *rc, size_t node, void *priv)
{
    struct llmb_worker *w = priv;
    long owner_node = llmb_acluster_node_of(rc, w->owner_key);

    w->ever_ready = true;
    w->queues_empty = false;
    w->claim_qi = 0;
    if (owner_node >= 0 && (size_t)owner_node != node) {
        if (w->id_owner == LLMB_ID_OWNED)
            conn_name_set(w, llmb_acluster_cmd(rc, node));
        return;
    }
    w->dereg_sent = false;
    if (w->id_owner == LLMB_ID_OWNED)
        w->id_owner = LLMB_ID_UNKNOWN;
    owner_send(w);
}

/* Redis refused a connection's credentials (already logged with the
 * server and the user). Before the worker was ever connected that is a
 * configuration error, a wrong URL, password or ACL user: it stops, and
 * main() exits 78, on every kind of URL alike. Once it has run (a
 * password rotated under it) the connection retries with backoff, which
 * is what a long-running daemon should do. */
static void refused(struct llmb_aconn *ac, const char *why, void *priv)
{
    struct llmb_worker *w = priv;

    (void)ac;
    if (w->status != 0)
        return; /* stopping already */
    if (w->ever_ready) {
        llmb_warn("redis refused the credentials that worked before "
                  "(retrying with backoff): %s", why);
        return;
    }
    llmb_error("stopping: refused credentials at start are a "
               "configuration error: %s", why);
    w->status = LLMB_ECONFIG;
    ev_break(w->loop, EVBREAK_ALL);
}

/* The blocking connection (re)connected: it carries the name too once the
 * id is ours. */
static void blk_ready(struct llmb_aconn *ac, void *priv)
{
    struct llmb_worker *w = priv;

    if (w->id_owner == LLMB_ID_OWNED)
        conn_name_set(w, ac);
}

static void cmd_lost(struct llmb_acluster *rc, size_t node, void *priv)
{
    struct llmb_worker *w = priv;

    if (llmb_acluster_enabled(rc))
        llmb_info("redis primary %zu is gone: %zu tasks keep running, the "
                  "outcomes of its queues wait for it or its replica", node,
                  w->running);
    else
        llmb_info("redis is gone: %zu tasks keep running, outcomes wait for "
                  "the reconnect", w->running);
}

/* The end of a deregistration: says so and leaves the loop. */
static void dereg_done(struct llmb_worker *w)
{
    llmb_info("worker stopped id=%s completed=%lld failed=%lld", w->id,
              w->completed, w->failed);
    ev_break(w->loop, EVBREAK_ALL);
}

/* True when r, the reply of the deregistration's GET or EXEC, is a
 * cluster's refusal because the owner key's slot moved or is moving
 * (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, or READONLY from a primary demoted
 * by a failover; EXECABORT when a command inside the transaction got
 * one): nothing was deleted. The deregistration is then
 * tried again from the WATCH in DEREG_RETRY_MS, at the owner the slot map
 * names by then, until it is done or the exit timer (started now if
 * need be) ends the shutdown. */
static bool dereg_moved(struct llmb_worker *w, const redisReply *r)
{
    /* (a READONLY, a demoted primary's, made the router read the map as
     * a MOVED does: the next try goes to the new owner, lib/acluster.c) */
    if (!llmb_reply_redirected(r) &&
        !(r != NULL && r->type == REDIS_REPLY_ERROR &&
          (strncmp(r->str, "EXECABORT", 9) == 0 ||
           strncmp(r->str, "READONLY", 8) == 0)))
        return false;
    if (w->dereg_moved++ == 0)
        llmb_info("redis cluster refused the deregistration id=%s: %s; "
                  "trying again", w->id, r->str);
    else
        llmb_debug("redis cluster refused the deregistration id=%s: %s; "
                   "trying again", w->id, r->str);
    w->dereg_sent = false;
    ev_timer_set(&w->dereg_retry, (ev_tstamp)DEREG_RETRY_MS / 1000.0, 0.0);
    ev_timer_start(w->loop, &w->dereg_retry);
    exit_timer_start(w);
    return true;
}

/* The EXEC of the deregistration answered r: false when it must be tried
 * again (lost: when reconnected; nil: the owner key changed after the
 * GET and the transaction did nothing, look again; a slot moved:
 * dereg_moved()). Another refusal is logged and counts as done: the
 * record expires, and a coordinator drops the entry. */
static bool dereg_exec_done(struct llmb_worker *w, const redisReply *r)
{
    if (r == NULL || r->type == REDIS_REPLY_NIL) {
        w->dereg_sent = false;
        return false;
    }
    if (dereg_moved(w, r))
        return false;
    if (r->type == REDIS_REPLY_ERROR)
        llmb_warn("redis refused the deregistration id=%s: %s", w->id,
                  r->str);
    return true;
}

/* On a cluster the record and the registry entry live in other slots
 * than the claim: deleted after it, each on its own primary. The loop
 * ends once both answered (or failed: the record expires, and a
 * coordinator drops the entry). */
static void dereg_tail_reply(struct llmb_aconn *ac, const redisReply *r,
                             void *priv)
{
    struct llmb_worker *w = priv;

    (void)ac;
    (void)r;
    if (--w->dereg_left == 0)
        dereg_done(w);
}

static void dereg_owner_reply(struct llmb_aconn *ac, const redisReply *r,
                              void *priv)
{
    struct llmb_worker *w = priv;
    const char *zrem[] = {"ZREM", w->workers_key, w->id};
    const char *del[] = {"DEL", w->worker_key};

    (void)ac;
    if (!dereg_exec_done(w, r))
        return;
    w->dereg_left = 2;
    if (llmb_worker_send(w, w->workers_key, dereg_tail_reply, w, 3, zrem,
                         NULL) != 0)
        w->dereg_left--;
    if (llmb_worker_send(w, w->worker_key, dereg_tail_reply, w, 2, del,
                         NULL) != 0)
        w->dereg_left--;
    if (w->dereg_left == 0)
        dereg_done(w);
}

static void dereg_reply(struct llmb_aconn *ac, const redisReply *r, void *priv)
{
    struct llmb_worker *w = priv;

    (void)ac;
    if (dereg_exec_done(w, r))
        dereg_done(w);
}

/* The owner key as read under WATCH: while it is ours (or nobody's), one
 * transaction deletes the registry entry, the record and the key, and
 * does nothing if the key changes before it runs. */
static void dereg_check(struct llmb_aconn *ac, const redisReply *r,
                        void *priv)
{
    struct llmb_worker *w = priv;
    const char *multi[] = {"MULTI"};
    const char *zrem[] = {"ZREM", w->workers_key, w->id};
    const char *del[] = {"DEL", w->worker_key, w->owner_key};
    const char *exec[] = {"EXEC"};
    const char *unwatch[] = {"UNWATCH"};

    if (r == NULL) {
        w->dereg_sent = false;
        return;
    }
    if (dereg_moved(w, r)) {
        /* The WATCH ends where it was sent: the next goes to the owner. */
        llmb_worker_send(w, w->owner_key, NULL, NULL, 1, unwatch, NULL);
        return;
    }
    if (r->type == REDIS_REPLY_STRING && strcmp(r->str, w->instance) != 0) {
        char *who = instance_describe(r->str);
        llmb_warn("worker stopped without deregistering: worker id \"%s\" "
                  "now belongs to another llmb-worker (%s)", w->id, who);
        free(who);
        w->id_owner = LLMB_ID_TAKEN;
        ev_break(w->loop, EVBREAK_ALL);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        llmb_warn("worker stopped without deregistering: cannot read the "
                  "claim on its id id=%s: %s", w->id, r->str);
        ev_break(w->loop, EVBREAK_ALL);
        return;
    }
    if (llmb_acluster_enabled(w->rc)) {
        const char *delown[] = {"DEL", w->owner_key};
        if (llmb_worker_send(w, w->owner_key, NULL, NULL, 1, multi,
                             NULL) != 0 ||
            llmb_worker_send(w, w->owner_key, NULL, NULL, 2, delown,
                             NULL) != 0 ||
            llmb_worker_send(w, w->owner_key, dereg_owner_reply, w, 1, exec,
                             NULL) != 0)
            w->dereg_sent = false;
        return;
    }
    if (llmb_aconn_command_argv(ac, NULL, NULL, 1, multi, NULL) != 0 ||
        llmb_aconn_command_argv(ac, NULL, NULL, 3, zrem, NULL) != 0 ||
        llmb_aconn_command_argv(ac, NULL, NULL, 3, del, NULL) != 0 ||
        llmb_aconn_command_argv(ac, dereg_reply, w, 1, exec, NULL) != 0)
        w->dereg_sent = false;
}

/* Releases every task still running and stops their executors. */
static void release_all(struct llmb_worker *w)
{
    struct llmb_task *t = w->tasks, *next = NULL;
    size_t n = 0;

    w->state = LLMB_WORKER_RELEASING;
    ev_timer_stop(w->loop, &w->grace);
    for (; t != NULL; t = next) {
        next = t->next;
        if (t->finished || t->stop == LLMB_TASK_DROP)
            continue;
        llmb_report_add(w, t->q, LLMB_OUTCOME_RELEASE, t->ref, t->token,
                        NULL, 0);
        n++;
        llmb_task_stop(t, LLMB_TASK_DROP, "released at shutdown");
    }
    if (n > 0)
        llmb_info("releasing tasks n=%zu", n);
    exit_timer_start(w);
}

static void grace_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct llmb_worker *w = t->data;

    (void)loop;
    (void)revents;
    llmb_info("grace period over; %zu tasks still running", w->running);
    release_all(w);
}

static void exit_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct llmb_worker *w = t->data;

    (void)revents;
    llmb_warn("exiting without confirmation from redis: running=%zu; "
              "unreported tasks run again once their leases expire",
              w->running);
    ev_break(loop, EVBREAK_ALL);
}

static void signal_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
    struct llmb_worker *w = s->data;

    (void)revents;
    if (w->rc == NULL) {
        /* Redis never answered: nothing was claimed or registered. */
        llmb_info("signal %d: stopping before redis answered", s->signum);
        ev_break(loop, EVBREAK_ALL);
    } else if (w->state == LLMB_WORKER_RUNNING) {
        llmb_info("signal %d: draining (running=%zu, grace=%llds)", s->signum,
                  w->running, w->cfg->grace_s);
        w->state = LLMB_WORKER_DRAINING;
        /* The BLPOP connections are of no more use. */
        llmb_acluster_close_blocking(w->rc);
        ev_timer_set(&w->grace, (ev_tstamp)w->cfg->grace_s, 0.0);
        ev_timer_start(loop, &w->grace);
        registry_write(w);
    } else if (w->state == LLMB_WORKER_DRAINING) {
        llmb_info("signal %d again: releasing the running tasks now",
                  s->signum);
        release_all(w);
    } else {
        llmb_warn("signal %d again: exiting now", s->signum);
        ev_break(loop, EVBREAK_ALL);
    }
}

/* During shutdown: deregisters once nothing runs, no claim is in flight
 * (what it brings back is released) and every outcome was answered. A
 * worker that never owned its id, or lost it, has no record to delete. */
static void shutdown_step(struct llmb_worker *w)
{
    if (w->running > 0 || w->claim_inflight || !llmb_report_idle(w) ||
        w->dereg_sent || w->id_inflight || ev_is_active(&w->dereg_retry))
        return;
    if (!llmb_worker_ready(w, w->owner_key)) {
        /* Nothing runs and nothing is owed, but Redis is away: waiting out
         * --grace would change nothing. The registry record expires, and
         * a coordinator marks the worker gone. */
        llmb_warn("worker stopped without deregistering: redis is "
                  "unreachable id=%s", w->id);
        ev_break(w->loop, EVBREAK_ALL);
        return;
    }
    if (w->id_owner != LLMB_ID_OWNED) {
        if (w->id_owner == LLMB_ID_UNKNOWN)
            llmb_info("worker stopped before its id was claimed id=%s",
                      w->id);
        ev_break(w->loop, EVBREAK_ALL);
        return;
    }
    const char *watch[] = {"WATCH", w->owner_key};
    const char *get[] = {"GET", w->owner_key};
    if (llmb_worker_send(w, w->owner_key, NULL, NULL, 2, watch, NULL) != 0 ||
        llmb_worker_send(w, w->owner_key, dereg_check, w, 2, get, NULL) != 0)
        return;
    w->dereg_sent = true;
}

static void step_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
    struct llmb_worker *w = p->data;

    (void)loop;
    (void)revents;
    llmb_report_flush(w);
    if (w->state != LLMB_WORKER_RUNNING)
        shutdown_step(w);
    else if (w->id_owner == LLMB_ID_OWNED)
        llmb_claim_step(w);
}

static char *list_join(const struct llmb_strlist *l)
{
    struct llmb_buf b;

    llmb_buf_init(&b);
    for (size_t i = 0; i < l->n; i++)
        llmb_buf_appendf(&b, "%s%s", i > 0 ? "," : "", l->v[i]);
    return llmb_buf_steal(&b);
}

struct llmb_worker *llmb_worker_new(const struct llmb_worker_config *cfg,
                                    char **errstr)
{
    struct llmb_worker *w = NULL;
    struct llmb_handler_limits lim;
    char host[256] = "";

    if (llmb_worker_config_check(cfg, errstr) != 0)
        return NULL;
    w = llmb_xcalloc(1, sizeof(*w));
    w->cfg = cfg;
    lim.max_output = (size_t)cfg->max_output_bytes;
    lim.kill_grace_ms = cfg->kill_grace_ms;
    lim.exec.env = &cfg->exec_env;
    lim.exec.rlimit_cpu_s = cfg->exec_rlimit_cpu;
    lim.exec.rlimit_as = cfg->exec_rlimit_as;
    lim.exec.rlimit_nofile = cfg->exec_rlimit_nofile;
    lim.llm_endpoints = &cfg->llm_endpoints;
    if (llmb_handlers_init(&w->handlers, &cfg->handlers, &lim, errstr) != 0) {
        free(w);
        return NULL;
    }
    w->id = cfg->id != NULL ? llmb_xstrdup(cfg->id) : llmb_worker_id_default();
    if (gethostname(host, sizeof(host) - 1) != 0)
        strcpy(host, "unknown");
    w->host = llmb_xstrdup(host);
    w->conn_name = llmb_xasprintf("llmb-worker:%s", w->id);
    w->capacity = (long)cfg->capacity;
    if (w->capacity <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        w->capacity = n > 0 ? n : 1;
    }
    const char *prefix = cfg->common.prefix != NULL ? cfg->common.prefix :
                         "llmb";
    w->worker_key = llmb_xasprintf("%s:worker:%s", prefix, w->id);
    w->owner_key = llmb_xasprintf("%s:worker:%s:owner", prefix, w->id);
    w->instance = instance_new(w->host);
    w->owner_ttl_ms = OWNER_TTL_HEARTBEATS * cfg->heartbeat_ms;
    if (w->owner_ttl_ms < OWNER_TTL_MIN_MS)
        w->owner_ttl_ms = OWNER_TTL_MIN_MS;
    w->workers_key = llmb_key_global(prefix, "workers");
    w->queues_key = llmb_key_global(prefix, "queues");
    w->queues_text = list_join(&cfg->queues);
    w->tags_text = list_join(&cfg->tags);
    w->nq = cfg->queues.n;
    w->q = llmb_xcalloc(w->nq, sizeof(*w->q));
    for (size_t i = 0; i < w->nq; i++) {
        w->q[i].name = llmb_xstrdup(cfg->queues.v[i]);
        w->q[i].base = llmb_key_queue(prefix, w->q[i].name);
        w->q[i].wake = llmb_key_queue_sub(prefix, w->q[i].name, "wake");
        w->q[i].due_mono_ms = INT64_MAX;
        w->q[i].types = llmb_key_queue_sub(prefix, w->q[i].name,
                                           LLMB_SERVED_SUFFIX);
    }
    w->started_ms = llmb_now_ms();
    return w;
}

/* The BLPOP groups: every queue in one on a server; on a cluster, one per
 * slot of the queues' wake keys. */
static void blk_groups_init(struct llmb_worker *w)
{
    w->groups = llmb_xcalloc(w->nq > 0 ? w->nq : 1, sizeof(*w->groups));
    w->ngroups = 0;
    for (size_t i = 0; i < w->nq; i++) {
        unsigned slot = llmb_cluster_keyslot(w->q[i].wake,
                                             strlen(w->q[i].wake));
        size_t g = 0;
        for (; g < w->ngroups; g++) {
            const char *k = w->groups[g].key;
            if (!llmb_acluster_enabled(w->rc) ||
                llmb_cluster_keyslot(k, strlen(k)) == slot)
                break;
        }
        if (g == w->ngroups) {
            w->groups[g].key = w->q[i].wake;
            w->ngroups++;
        }
        w->q[i].blk_group = g;
    }
}

/* True when the error of a first read of a cluster's map, rc with message
 * err (llmb_cluster_refresh()), is Redis being away or not ready yet: no
 * node answers, none has slots (the cluster is being created), a node
 * loading its data or without a majority. Refused credentials, or a node
 * that is not in cluster mode, are configuration errors. */
static bool cluster_away(int rc, const char *err)
{
    static const char *const later[] = {"LOADING", "BUSY", "MASTERDOWN",
                                        "TRYAGAIN", "CLUSTERDOWN"};

    if (rc == 0 || rc == LLMB_EIO)
        return true;
    if (rc != LLMB_EREDIS)
        return false;
    for (size_t i = 0; i < sizeof(later) / sizeof(*later); i++)
        if (strstr(err, later[i]) != NULL)
            return true;
    return false;
}

/* Makes the connections (w->rc). On a cluster this reads the slot map,
 * blocking: when no node answers, or the cluster is not ready, returns
 * LLMB_EIO with the reason in *errstr, to try again later; for a
 * configuration error another llmb_err (the URL was checked before). */
static int router_open(struct llmb_worker *w, char **errstr)
{
    struct llmb_acluster_opts o;
    struct llmb_cluster *probe = NULL;
    int rc;

    memset(&o, 0, sizeof(o));
    o.url = w->cfg->common.redis_url != NULL ? w->cfg->common.redis_url
                                             : "redis://127.0.0.1:6379";
    o.name = NULL; /* named once the id is ours (conn_name_set) */
    o.functions = true;
    o.blocking = true;
    o.command_timeout_ms = w->cfg->command_timeout_ms;
    o.on_ready = cmd_ready;
    o.on_lost = cmd_lost;
    o.on_blk_ready = blk_ready;
    o.on_refused = refused;
    o.priv = w;
    o.what = "commands";
    w->rc = llmb_acluster_new(w->loop, &o, errstr);
    if (w->rc != NULL)
        return 0;
    /* The router says why, not how bad: read the map once more to tell
     * Redis being away from a configuration error. */
    probe = llmb_cluster_new(o.url, NULL, 5000);
    rc = llmb_cluster_refresh(probe);
    if (cluster_away(rc, llmb_cluster_errstr(probe))) {
        rc = LLMB_EIO;
    } else {
        free(*errstr);
        *errstr = llmb_xstrdup(llmb_cluster_errstr(probe));
    }
    llmb_cluster_free(probe);
    return rc;
}

/* The connections are made: start claiming. */
static void worker_run(struct llmb_worker *w)
{
    blk_groups_init(w);
    ev_prepare_start(w->loop, &w->step);
    ev_timer_start(w->loop, &w->heartbeat);
}

/* Says why the cluster did not answer and when it is asked again. */
static void start_retry_later(struct llmb_worker *w, const char *why)
{
    int64_t d = llmb_reconnect_failed(&w->start_backoff);

    llmb_warn("cannot read the redis cluster's slot map: %s (attempt %u, "
              "retrying in %lld ms)", why, w->start_backoff.attempt,
              (long long)d);
    ev_timer_set(&w->start_retry, (ev_tstamp)d / 1000.0, 0.0);
    ev_timer_start(w->loop, &w->start_retry);
}

static void start_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct llmb_worker *w = t->data;
    char *err = NULL;
    int rc;

    (void)revents;
    rc = router_open(w, &err);
    if (rc == 0) {
        llmb_info("redis cluster answered after %u failed attempts",
                  w->start_backoff.attempt);
        worker_run(w);
    } else if (rc == LLMB_EIO) {
        start_retry_later(w, err != NULL ? err : "no answer");
    } else {
        llmb_error("%s", err != NULL ? err : "cannot use the redis cluster");
        w->status = LLMB_ECONFIG;
        ev_break(loop, EVBREAK_ALL);
    }
    free(err);
}

int llmb_worker_attach(struct llmb_worker *w, struct ev_loop *loop,
                       char **errstr)
{
    struct llmb_redis_url u;
    const char *url = w->cfg->common.redis_url != NULL ?
                      w->cfg->common.redis_url : "redis://127.0.0.1:6379";
    int rc;

    w->loop = loop;
    if (llmb_redis_url_parse(url, &u, errstr) != 0)
        return LLMB_ECONFIG;
    llmb_redis_url_fini(&u);

    ev_prepare_init(&w->step, step_cb);
    w->step.data = w;
    ev_timer_init(&w->heartbeat, heartbeat_cb,
                  (ev_tstamp)w->cfg->heartbeat_ms / 1000.0,
                  (ev_tstamp)w->cfg->heartbeat_ms / 1000.0);
    w->heartbeat.data = w;
    ev_timer_init(&w->retry, retry_cb, 0.0, 0.0);
    w->retry.data = w;
    ev_timer_init(&w->grace, grace_cb, 0.0, 0.0);
    w->grace.data = w;
    ev_timer_init(&w->exit_timer, exit_cb, 0.0, 0.0);
    w->exit_timer.data = w;
    ev_timer_init(&w->dereg_retry, retry_cb, 0.0, 0.0);
    w->dereg_retry.data = w;
    ev_timer_init(&w->start_retry, start_retry_cb, 0.0, 0.0);
    w->start_retry.data = w;
    llmb_reconnect_init(&w->start_backoff, 0, 0);

    /* On a cluster this reads the slot map. No node answering is Redis
     * being away: the worker waits for it with the backoff of every
     * reconnect, as it does for a single server that is not up yet. */
    rc = router_open(w, errstr);
    if (rc != 0 && rc != LLMB_EIO)
        return rc;
    ev_signal_init(&w->sigterm, signal_cb, SIGTERM);
    w->sigterm.data = w;
    ev_signal_start(loop, &w->sigterm);
    ev_signal_init(&w->sigint, signal_cb, SIGINT);
    w->sigint.data = w;
    ev_signal_start(loop, &w->sigint);

    char *hs = list_join(&w->cfg->handlers);
    llmb_info("worker starting id=%s queues=%s capacity=%ld handlers=%s",
              w->id, w->queues_text, w->capacity, hs);
    free(hs);
    if (rc == 0) {
        worker_run(w);
    } else {
        start_retry_later(w, *errstr);
        free(*errstr);
        *errstr = NULL;
    }
    return 0;
}

const char *llmb_worker_id(const struct llmb_worker *w)
{
    return w->id;
}

int llmb_worker_status(const struct llmb_worker *w)
{
    return w->status;
}

void llmb_worker_free(struct llmb_worker *w)
{
    if (w == NULL)
        return;
    if (w->loop != NULL) {
        ev_prepare_stop(w->loop, &w->step);
        ev_timer_stop(w->loop, &w->heartbeat);
        ev_timer_stop(w->loop, &w->retry);
        ev_timer_stop(w->loop, &w->grace);
        ev_timer_stop(w->loop, &w->exit_timer);
        ev_timer_stop(w->loop, &w->dereg_retry);
        ev_timer_stop(w->loop, &w->start_retry);
        ev_signal_stop(w->loop, &w->sigterm);
        ev_signal_stop(w->loop, &w->sigint);
    }
    /* Pending callbacks run with NULL here; they only give back what they
     * hold. */
    llmb_acluster_free(w->rc);
    w->rc = NULL;
    free(w->groups);
    w->groups = NULL;
    w->ngroups = 0;
    /* Executors kill what still runs; the tasks are then only memory. */
    llmb_handlers_fini(&w->handlers);
    while (w->tasks != NULL)
        llmb_task_free(w->tasks);
    llmb_report_clear(w);
    for (size_t i = 0; i < w->nq; i++) {
        free(w->q[i].name);
        free(w->q[i].base);
        free(w->q[i].wake);
        llmb_types_fini(&w->q[i]);
    }
    free(w->q);
    free(w->id);
    free(w->host);
    free(w->conn_name);
    free(w->worker_key);
    free(w->owner_key);
    free(w->instance);
    free(w->workers_key);
    free(w->queues_key);
    free(w->queues_text);
    free(w->tags_text);
    free(w);
}
