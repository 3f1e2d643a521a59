/*
 * The coordinator's loop: one periodic tick on libev, the Redis connection
 * with its capped backoff, the list of known queues, the signals that stop
 * it and the glue to the metrics server. Each tick, while Redis answers:
 * refresh the queue list (every second), check worker liveness (every
 * --liveness-ms), reap each queue, aggregate for --agg-budget-ms, apply
 * retention, and collect metrics (every --metrics-ms). A failed command
 * ends the tick's work; the next ticks reconnect with backoff and serve
 * /healthz as unhealthy meanwhile. Nothing here ever exits the process.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llmb/backoff.h>
#include <llmb/conn.h>
#include <llmb/err.h>
#include <llmb/keys.h>
#include <llmb/log.h>

#include "coordinator.h"

#define QUEUES_REFRESH_MS 1000
#define RETENTION_WORKERS_MS 5000
#define BACKOFF_RESET_MS 10000

char *llmb_coord_key(const struct llmb_coord *co, const char *name)
{
    return llmb_key_global(co->cfg->common.prefix, name);
}

int64_t llmb_coord_uptime_ms(const struct llmb_coord *co)
{
    return llmb_mono_ms() - co->started_mono;
}

/* Redis is away as a whole: the tick's work stops, the next ticks
 * reconnect with backoff. */
static int down(struct llmb_coord *co)
{
    int64_t wait;

    if (!co->up)
        return LLMB_EIO;
    co->up = false;
    co->counters.redis_errors++;
    free(co->redis_err);
    co->redis_err = llmb_xstrdup(llmb_cluster_errstr(co->cl)[0]
                                     ? llmb_cluster_errstr(co->cl)
                                     : "connection lost");
    wait = llmb_reconnect_failed(&co->reconnect);
    llmb_warn("lost redis: %s; reconnecting in %lld ms", co->redis_err,
              (long long)wait);
    return LLMB_EIO;
}

int llmb_coord_lost(struct llmb_coord *co)
{
    if (!co->up)
        return LLMB_EIO;
    if (llmb_cluster_enabled(co->cl) && llmb_primaries_check(co) > 0)
        return LLMB_EIO; /* the primaries that answer go on */
    return down(co);
}

/* Connects to a Redis Cluster: reads the map and asks every primary
 * (the away ones too). Returns 0 when one answers at least, else LLMB_EIO
 * with a malloc'd *err. */
static int cluster_connect(struct llmb_coord *co, char **err)
{
    int rc = llmb_cluster_refresh(co->cl);

    if (rc == 0) {
        for (size_t i = 0; i < co->naway; i++)
            co->away[i].retry_mono = 0;
        llmb_primaries_check(co);
        rc = llmb_primaries_tick(co);
    }
    if (rc == LLMB_EAUTH)
        *err = llmb_xstrdup(llmb_cluster_errstr(co->cl));
    else if (rc != 0)
        *err = llmb_xasprintf("no redis cluster primary answers: %s",
                              llmb_cluster_errstr(co->cl));
    return rc;
}

void llmb_coord_reply_error(struct llmb_coord *co, const char *what,
                            const char *queue, const redisReply *r)
{
    char desc[256];

    co->counters.redis_errors++;
    llmb_reply_describe(r, desc, sizeof(desc));
    if (queue != NULL)
        llmb_warn("%s failed: %s queue=%s", what, desc, queue);
    else
        llmb_warn("%s failed: %s", what, desc);
}

/* The connection is (back) up: start over what depends on it. */
static void connected(struct llmb_coord *co)
{
    size_t i;

    co->reconnected = co->ever_up;
    if (co->ever_up) {
        co->counters.reconnects++;
        llmb_info("reconnected to redis; missing worker connections count "
                  "again in %lld ms", co->cfg->reconnect_grace_ms);
    } else {
        llmb_info("connected to redis");
    }
    co->ever_up = true;
    co->up = true;
    free(co->redis_err);
    co->redis_err = NULL;
    co->up_since_mono = llmb_mono_ms();
    co->ctx_seen = llmb_cluster_enabled(co->cl)
                       ? NULL
                       : llmb_conn_ctx(llmb_cluster_conn0(co->cl));
    llmb_reaper_reset(co->reaper);
    for (i = 0; i < co->nqueues; i++) {
        co->queues[i].conf_mono = 0;
        /* (another process may have loaded a library of a newer layout
         * meanwhile: its llmb_upgrade may have work again) */
        co->queues[i].upgraded = false;
    }
}

/* Connects when the backoff allows. Returns true when Redis is usable.
 * Refused credentials before the first connect are a configuration error
 * (a wrong URL, password or ACL user): the coordinator stops its loop and
 * main() exits 78. After it (a password rotated) they are retried with
 * backoff like any other failure. */
static bool ensure_up(struct llmb_coord *co)
{
    char *err = NULL;
    int rc;

    if (co->up && llmb_cluster_enabled(co->cl)) {
        /* The map is read again by the router after a MOVED or a lost
         * primary, and here while a primary is away or a slot in use
         * has no owner; not every tick. */
        if (llmb_primaries_tick(co) != 0) {
            down(co);
            return false;
        }
        return true;
    }
    if (co->up) {
        redisContext *ctx = llmb_conn_ctx(llmb_cluster_conn0(co->cl));
        if (ctx == NULL) {
            down(co);
            return false;
        }
        if (ctx != co->ctx_seen) /* llmb_conn reconnected by itself */
            connected(co);
        return true;
    }
    if (!llmb_reconnect_due(&co->reconnect))
        return false;
    rc = llmb_cluster_enabled(co->cl) ? cluster_connect(co, &err)
                                      : llmb_cluster_connect(co->cl, &err);
    if (rc == LLMB_EAUTH && !co->ever_up) {
        llmb_error("stopping: refused credentials at start are a "
                   "configuration error: %s", err);
        free(err);
        co->status = LLMB_ECONFIG;
        ev_break(co->loop, EVBREAK_ALL);
        return false;
    }
    if (rc != 0) {
        if (co->reconnect.attempt == 0 || co->reconnect.attempt % 10 == 0 ||
            co->redis_err == NULL || strcmp(co->redis_err, err) != 0)
            llmb_warn("%s; retrying", err);
        free(co->redis_err);
        co->redis_err = err;
        llmb_reconnect_failed(&co->reconnect);
        return false;
    }
    connected(co);
    return true;
}

static void queue_fini(struct llmb_coord_queue *q)
{
    free(q->name);
    free(q->base);
    free(q->stats_err);
    llmb_served_fini(&q->served);
    free(q->head_type);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads <prefix>:queues and brings co->queues in line: new queues are
 * added (sorted by name), vanished ones dropped. Returns 0 or LLMB_EIO. */
static int queues_refresh(struct llmb_coord *co)
{
    char *key = llmb_coord_key(co, "queues");
    char *mkey = llmb_coord_key(co, "metrics");
    /* A queue that left is dropped once its fields of <prefix>:metrics
     * can be deleted. */
    bool metrics_away = llmb_coord_away(co, mkey);
    redisReply *r;
    char **names = NULL;
    size_t i, j, n = 0;

    free(mkey);
    if (llmb_coord_away(co, key)) { /* the list known stays */
        free(key);
        return 0;
    }
    r = llmb_cluster_command(co->cl, "SMEMBERS %s", key);
    free(key);
    if (r == NULL)
        return llmb_coord_lost(co);
    if (r->type != REDIS_REPLY_ARRAY) {
        llmb_coord_reply_error(co, "reading the queue list", NULL, r);
        freeReplyObject(r);
        return 0;
    }
    names = llmb_xcalloc(r->elements + 1, sizeof(*names));
    for (i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_STRING && llmb_queue_name_ok(e->str))
            names[n++] = e->str;
    }
    qsort(names, n, sizeof(*names), cmp_str);

    for (j = 0; j < co->nqueues; j++)
        co->queues[j].seen = false;
    for (i = 0; i < n; i++) {
        bool found = false;
        for (j = 0; j < co->nqueues; j++) {
            if (strcmp(co->queues[j].name, names[i]) == 0) {
                co->queues[j].seen = found = true;
                break;
            }
        }
        if (!found) {
            struct llmb_coord_queue *q;
            co->queues = llmb_xrealloc(co->queues, (co->nqueues + 1) *
                                                       sizeof(*co->queues));
            q = &co->queues[co->nqueues++];
            memset(q, 0, sizeof(*q));
            q->name = llmb_xstrdup(names[i]);
            q->base = llmb_key_queue(co->cfg->common.prefix, names[i]);
            q->junk_seen = -1;
            q->seen = true;
            llmb_info("watching queue queue=%s", q->name);
        }
    }
    for (j = 0; j < co->nqueues;) {
        if (!co->queues[j].seen && !metrics_away) {
            llmb_info("queue left %s:queues queue=%s", co->cfg->common.prefix,
                      co->queues[j].name);
            if (llmb_metrics_queue_forget(co, co->queues[j].name) != 0) {
                free(names);
                freeReplyObject(r);
                return LLMB_EIO;
            }
            queue_fini(&co->queues[j]);
            memmove(&co->queues[j], &co->queues[j + 1],
                    (co->nqueues - j - 1) * sizeof(*co->queues));
            co->nqueues--;
        } else {
            j++;
        }
    }
    free(names);
    freeReplyObject(r);
    return 0;
}

/* One tick's work, in order; stops when Redis is lost. On a Redis
 * Cluster a step that failed on a primary that does not answer leaves
 * co->up true (llmb_coord_lost()): the next steps go on without that
 * primary's keys. */
static int tick_work(struct llmb_coord *co)
{
    int64_t now = llmb_mono_ms();
    size_t i;

    if (co->queues_mono == 0 || now - co->queues_mono >= QUEUES_REFRESH_MS) {
        if (queues_refresh(co) == 0)
            co->queues_mono = now;
        else if (!co->up)
            return LLMB_EIO;
    }
    if (llmb_reaper_workers(co) != 0 && !co->up)
        return LLMB_EIO;
    for (i = 0; i < co->nqueues; i++)
        if (!llmb_coord_away(co, co->queues[i].base) &&
            llmb_reaper_queue(co, &co->queues[i]) != 0 && !co->up)
            return LLMB_EIO;
    if (llmb_aggregator_tick(co) != 0 && !co->up)
        return LLMB_EIO;
    for (i = 0; i < co->nqueues; i++)
        if (!llmb_coord_away(co, co->queues[i].base) &&
            llmb_retention_queue(co, &co->queues[i]) != 0 && !co->up)
            return LLMB_EIO;
    if (co->retention_workers_mono == 0 ||
        now - co->retention_workers_mono >= RETENTION_WORKERS_MS) {
        if (llmb_retention_workers(co) == 0)
            co->retention_workers_mono = now;
        else if (!co->up)
            return LLMB_EIO;
    }
    if (co->metrics_mono == 0 ||
        now - co->metrics_mono >= co->cfg->metrics_ms) {
        if (llmb_metrics_collect(co) == 0)
            co->metrics_mono = now;
        else if (!co->up)
            return LLMB_EIO;
    }
    return 0;
}

int llmb_coord_status(const struct llmb_coord *co)
{
    return co->status;
}

void llmb_coord_tick(struct llmb_coord *co)
{
    if (co->stopping || !ensure_up(co))
        return;
    /* The backoff starts over only once the connection has held a while,
     * so a connection that fails right after each connect backs off too. */
    if (co->reconnect.attempt > 0 &&
        llmb_mono_ms() - co->up_since_mono >= BACKOFF_RESET_MS)
        llmb_reconnect_reset(&co->reconnect);
    tick_work(co);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    llmb_coord_tick(w->data);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct llmb_coord *co = w->data;

    (void)revents;
    llmb_info("received %s; stopping",
              w->signum == SIGTERM ? "SIGTERM" : "SIGINT");
    co->stopping = true;
    ev_break(loop, EVBREAK_ALL);
}

/* The metrics server's handler. */
static int http_handle(void *arg, const char *method, const char *path,
                       struct llmb_buf *body, const char **content_type)
{
    const struct llmb_coord *co = arg;

    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        *content_type = "text/plain; charset=utf-8";
        llmb_buf_appendf(body, "method not allowed\n");
        return 405;
    }
    if (strcmp(path, "/metrics") == 0) {
        *content_type = "text/plain; version=0.0.4; charset=utf-8";
        llmb_metrics_prometheus(co, body);
        return 200;
    }
    if (strcmp(path, "/healthz") == 0) {
        *content_type = "application/json";
        return llmb_metrics_healthz(co, body);
    }
    *content_type = "text/plain; charset=utf-8";
    llmb_buf_appendf(body, "not found; try /metrics or /healthz\n");
    return 404;
}

struct llmb_coord *llmb_coord_new(const struct llmb_coord_config *cfg,
                                  struct ev_loop *loop)
{
    struct llmb_coord *co = llmb_xcalloc(1, sizeof(*co));
    char *client_name;

    co->cfg = cfg;
    co->loop = loop;
    if (cfg->id != NULL && cfg->id[0] != '\0') {
        co->id = llmb_xstrdup(cfg->id);
    } else {
        char host[256] = "host";
        if (gethostname(host, sizeof(host)) != 0)
            strcpy(host, "host");
        host[sizeof(host) - 1] = '\0';
        co->id = llmb_xasprintf("%s-%ld", host, (long)getpid());
    }
    /* A client name holds no spaces. */
    for (char *p = co->id; *p; p++)
        if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
            *p = '_';
    client_name = llmb_xasprintf("llmb-coordinator:%s", co->id);
    co->cl = llmb_cluster_new(cfg->common.redis_url, client_name,
                              (int)cfg->redis_timeout_ms);
    free(client_name);
    co->reaper = llmb_reaper_new();
    co->agg = llmb_aggregator_new();
    co->started_mono = llmb_mono_ms();
    co->up_since_mono = co->started_mono;
    llmb_reconnect_init(&co->reconnect, 0, 0);
    return co;
}

int llmb_coord_start(struct llmb_coord *co, char **errstr)
{
    double period = (double)co->cfg->tick_ms / 1000.0;

    *errstr = NULL;
    if (co->cfg->metrics_addr != NULL && co->cfg->metrics_addr[0] != '\0') {
        co->http = llmb_http_new(co->loop, co->cfg->metrics_addr, http_handle,
                                 co, errstr);
        if (co->http == NULL)
            return LLMB_EIO;
        llmb_info("serving /metrics and /healthz addr=%s",
                  co->cfg->metrics_addr);
    }
    ev_timer_init(&co->tick, tick_cb, 0.0, period);
    co->tick.data = co;
    ev_timer_start(co->loop, &co->tick);
    ev_signal_init(&co->sigterm, signal_cb, SIGTERM);
    co->sigterm.data = co;
    ev_signal_start(co->loop, &co->sigterm);
    ev_signal_init(&co->sigint, signal_cb, SIGINT);
    co->sigint.data = co;
    ev_signal_start(co->loop, &co->sigint);
    llmb_info("coordinator started id=%s tick_ms=%lld gone_after_ms=%lld "
              "dead_after_ms=%lld", co->id, co->cfg->tick_ms,
              co->cfg->gone_after_ms, co->cfg->dead_after_ms);
    return 0;
}

void llmb_coord_free(struct llmb_coord *co)
{
    size_t i;

    if (co == NULL)
        return;
    ev_timer_stop(co->loop, &co->tick);
    ev_signal_stop(co->loop, &co->sigterm);
    ev_signal_stop(co->loop, &co->sigint);
    llmb_http_free(co->http);
    llmb_aggregator_free(co->agg);
    llmb_reaper_free(co->reaper);
    for (i = 0; i < co->nqueues; i++)
        queue_fini(&co->queues[i]);
    free(co->queues);
    llmb_cluster_free(co->cl);
    llmb_metrics_primaries_free(co->primaries, co->nprimaries);
    llmb_strlist_clear(&co->primaries_in_hash);
    llmb_primaries_free(co);
    free(co->redis_err);
    free(co->id);
    free(co);
}
