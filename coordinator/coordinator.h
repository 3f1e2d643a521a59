/*
 * llmb-coordinator's core, shared by its files (like Redis's server.h).
 *
 * The coordinator is one libev loop around a periodic tick. Each tick runs
 * short, bounded batches against Redis over one synchronous connection
 * (llmb/conn.h, with a command timeout): reaper.c finds dead workers and
 * takes back expired leases, aggregator.c turns finished jobs into
 * aggregates, retention.c keeps memory bounded, metrics.c collects the
 * cluster numbers that http.c serves; on a Redis Cluster, primaries.c
 * keeps track of the primaries that do not answer, whose keys every step
 * leaves out while the others go on. coordinator.c owns the loop, the
 * connection and its backoff, the list of queues and the signals; main.c
 * only loads the config, builds this core and runs the loop.
 *
 * Every Redis-changing step is a Lua function or idempotent, so any number
 * of coordinators may run at once.
 */
#ifndef LLMB_COORDINATOR_H
#define LLMB_COORDINATOR_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>
#include <hiredis/hiredis.h>

#include <llmb/backoff.h>
#include <llmb/cluster.h>
#include <llmb/config.h>
#include <llmb/conn.h>
#include <llmb/served.h>
#include <llmb/stats.h>
#include <llmb/util.h>

struct llmb_conn;
struct llmb_http;
struct llmb_agg_work;

/* ---- configuration (config.c) ---- */

struct llmb_coord_config {
    struct llmb_common common;
    char *id;                     /* coordinator id; default host-pid */
    long long tick_ms;            /* period of the tick */
    long long liveness_ms;        /* period of the CLIENT LIST check */
    long long gone_after_ms;      /* no connection this long: dead */
    long long dead_after_ms;      /* no heartbeat this long: dead */
    long long reconnect_grace_ms; /* gone rule paused after a reconnect */
    long long worker_retention_s; /* dead worker records kept */
    long long retention_s;        /* written to <base>:conf */
    long long events_max;         /* written to <base>:conf */
    long long dead_max;           /* written to <base>:conf */
    bool write_conf;              /* write the three above at all */
    long long reap_limit;         /* expired leases taken back per call */
    long long agg_lease_ms;       /* lease of a job taken for aggregation */
    long long agg_batch;          /* jobs aggregated at once */
    long long agg_budget_ms;      /* aggregation time per tick */
    long long agg_max_bytes;      /* largest aggregate stored */
    long long scan_batch;         /* <base>:jobs members checked per tick */
    long long metrics_ms;         /* period of the metrics collection */
    char *metrics_addr;           /* HOST:PORT of /metrics; NULL/"" = off */
    long long load_degraded_pct;  /* cluster load above this: degraded */
    long long redis_timeout_ms;   /* connect and command timeout */
};

extern const struct llmb_opt_set llmb_coord_opt_set;

/* ---- per-queue state (coordinator.c) ---- */

enum llmb_job_state_ix {
    LLMB_JS_PENDING,
    LLMB_JS_RUNNING,
    LLMB_JS_COMPLETED,
    LLMB_JS_FAILED,
    LLMB_JS_CANCELLED,
    LLMB_JS_COUNT
};

/* One known queue. Created when the queue first shows up in
 * <prefix>:queues, freed when it leaves the set. */
struct llmb_coord_queue {
    char *name;
    char *base;             /* "<prefix>:{<name>}" */
    int64_t conf_mono;      /* when <base>:conf was last written; 0 never */
    long long scan_rank;    /* next rank of <base>:jl to check */
    long long jl_cut;       /* <base>:counts jl_cut at the last read */
    bool jl_cut_known;      /* jl_cut was read */
    int64_t scan_done_mono; /* when the last full pass ended */
    long long scan_tally[LLMB_JS_COUNT]; /* pass in progress */
    long long jobs_by_state[LLMB_JS_COUNT]; /* last full pass */
    bool jobs_known;        /* a full pass has ended */
    struct llmb_queue_stats stats; /* last read; zero while stats_err */
    char *stats_err;        /* why the last llmb_stats could not be used,
                               or NULL (metrics.c) */
    long long stats_errors; /* llmb_stats calls that could not be used */
    bool err_in_hash;       /* <prefix>:metrics holds queue:<q>:error */
    long long junk_seen;    /* stats.junk last logged; -1 not yet */
    struct llmb_served served; /* <base>:types at the last collection */
    bool by_registry;       /* a live worker's record lists the queue */
    bool away;              /* on a cluster, its primary did not answer at
                               the last collection: numbers unknown */
    char *head_type;        /* type of the job at the head of pending
                               (llmb_stats head_type), or NULL */
    bool seen;              /* scratch for the refresh */
    bool upgraded;          /* llmb_upgrade found nothing of the layout
                               before library version 30 (reaper.c) */
};

/* ---- cluster numbers (metrics.c) ---- */

struct llmb_cluster_metrics {
    bool valid;              /* collected at least once */
    int64_t collected_ms;    /* Redis time of the collection */
    long long workers_total, workers_active, workers_idle, workers_busy,
        workers_dead;
    long long capacity_total, capacity_used, capacity_available;
    double load_pct;
    long long jobs[LLMB_JS_COUNT];
    long long tasks_pending, tasks_running, tasks_delayed;
    long long tasks_completed, tasks_failed, tasks_cancelled; /* cumulative */
    long long queues_to_aggregate;
};

/* What this coordinator did since it started (its own counters). */
/* The queues of one primary of a Redis Cluster, summed at a collection
 * (metrics.c). */
struct llmb_coord_primary {
    char *name;             /* "host:port" */
    long long queues, pending, delayed, running;
};

/* A primary of a Redis Cluster that does not answer (primaries.c). */
struct llmb_coord_away {
    char *name;         /* "host:port" */
    char *err;          /* why, the last time it was asked */
    int64_t since_mono; /* away since */
    int64_t retry_mono; /* asked again at the first tick after this */
    int64_t wait_ms;    /* backoff */
    int64_t logged_mono;
};

struct llmb_coord_counters {
    long long leases_reaped, tasks_given_back, workers_reaped, deadlines,
        promoted;
    long long jobs_aggregated, jobs_trimmed, workers_removed;
    long long redis_errors, reconnects;
};

enum llmb_health {
    LLMB_HEALTHY,
    LLMB_DEGRADED,
    LLMB_UNHEALTHY
};

/* ---- the core (coordinator.c) ---- */

/* Lifecycle: llmb_coord_new() builds it (no I/O), llmb_coord_start()
 * attaches the tick, the signals and the metrics server to the loop,
 * ev_run() runs until SIGTERM/SIGINT stops the loop (or the coordinator
 * stops itself: llmb_coord_status()), llmb_coord_free() detaches and
 * frees everything. */
struct llmb_coord {
    const struct llmb_coord_config *cfg; /* borrowed */
    struct ev_loop *loop;                /* borrowed */
    char *id;                            /* cfg->id or "<host>-<pid>" */
    ev_timer tick;
    ev_signal sigterm, sigint;
    struct llmb_http *http; /* or NULL when --metrics-addr is empty */

    struct llmb_cluster *cl;    /* routes each call to the primary of its
                                   key on a Redis Cluster; one connection
                                   on a server */
    redisContext *ctx_seen;     /* ctx at the last tick: a change = reconnect
                                   (one server) */
    bool up;                    /* the last Redis call worked */
    bool ever_up;               /* connected at least once */
    int status;                 /* 0, or why it stopped itself */
    char *redis_err;            /* why not, while !up */
    struct llmb_reconnect reconnect; /* backoff between connects */
    int64_t up_since_mono;      /* when the connection came (back) */
    bool reconnected;           /* up_since follows a lost connection */

    int64_t started_mono;
    int64_t queues_mono;        /* last refresh of the queue list */
    struct llmb_coord_queue *queues;
    size_t nqueues;

    struct llmb_reaper *reaper;
    struct llmb_agg_work *agg;
    struct llmb_cluster_metrics metrics;
    struct llmb_coord_primary *primaries; /* on a cluster, per primary at
                                             the last collection */
    size_t nprimaries;
    struct llmb_strlist primaries_in_hash; /* the primaries whose fields
                                              <prefix>:metrics may hold */
    struct llmb_coord_away *away;         /* on a cluster, the primaries
                                             that do not answer */
    size_t naway;
    int64_t metrics_mono;
    int64_t retention_workers_mono;
    struct llmb_coord_counters counters;
    bool stopping;
};

/* Builds the core for cfg on loop; both stay owned by the caller and must
 * outlive it. No I/O happens here. */
struct llmb_coord *llmb_coord_new(const struct llmb_coord_config *cfg,
                                  struct ev_loop *loop);

/* Starts the tick, the signal watchers and, when configured, the metrics
 * server. Returns 0, or LLMB_EIO with a malloc'd *errstr when the metrics
 * address cannot be listened on. */
int llmb_coord_start(struct llmb_coord *co, char **errstr);

/* 0, or LLMB_ECONFIG once the coordinator has stopped its loop itself:
 * Redis refused its credentials before it had ever connected. */
int llmb_coord_status(const struct llmb_coord *co);

/* Runs one tick now (the tick timer calls it too; tests may call it). */
void llmb_coord_tick(struct llmb_coord *co);

/* Stops the watchers, closes the connection and frees co; accepts NULL. */
void llmb_coord_free(struct llmb_coord *co);

/* Records that the connection failed (the caller got a NULL reply): the
 * coordinator stops this tick's work and reconnects with backoff. On a
 * Redis Cluster it first asks every primary (llmb_primaries_check()):
 * while one answers, only the ones that do not are left out (co->up stays
 * true) and the tick goes on with its next step. Always returns LLMB_EIO,
 * for `return llmb_coord_lost(co);`. */
int llmb_coord_lost(struct llmb_coord *co);

/* Logs a Redis error reply of a step (what, e.g. "reap") and counts it.
 * Does not free r. */
void llmb_coord_reply_error(struct llmb_coord *co, const char *what,
                            const char *queue, const redisReply *r);

/* "<prefix>:<name>"; the caller frees it. */
char *llmb_coord_key(const struct llmb_coord *co, const char *name);

/* Milliseconds since the coordinator started. */
int64_t llmb_coord_uptime_ms(const struct llmb_coord *co);

/* ---- primaries.c: the Redis Cluster primaries that do not answer ---- */

/* True when the primary that owns key's slot does not answer now, or no
 * primary owns it (a failover under way): the caller leaves key out this
 * time. Always false on a single server. */
bool llmb_coord_away(const struct llmb_coord *co, const char *key);
/* Asks every primary not known away (PING); those that do not answer are
 * away from now on. Returns how many answered. */
size_t llmb_primaries_check(struct llmb_coord *co);
/* At the start of a tick: reads the map again when an away primary is due
 * to be asked again or a slot in use has no owner, forgets away primaries
 * that are no longer primaries, asks those due. Returns 0, or LLMB_EIO
 * when the map cannot be read or no primary answers. */
int llmb_primaries_tick(struct llmb_coord *co);
/* Forgets every away primary. */
void llmb_primaries_free(struct llmb_coord *co);

/* ---- reaper.c: dead workers, expired leases, deadlines, promotion ---- */

struct llmb_reaper;

struct llmb_reaper *llmb_reaper_new(void);
void llmb_reaper_free(struct llmb_reaper *r);
/* Forgets what was observed (after a reconnect the connection picture
 * starts over). */
void llmb_reaper_reset(struct llmb_reaper *r);
/* Checks every registered worker against CLIENT LIST and its heartbeat;
 * reaps the leases of the dead ones in every queue and marks them dead.
 * Returns 0 or LLMB_EIO. */
int llmb_reaper_workers(struct llmb_coord *co);
/* Takes back expired leases, ends jobs past their deadline and promotes
 * due delayed tasks of one queue, each bounded. Returns 0 or LLMB_EIO. */
int llmb_reaper_queue(struct llmb_coord *co, struct llmb_coord_queue *q);
/* True when the reaper judged worker id dead (for the metrics). */
bool llmb_reaper_is_dead(const struct llmb_reaper *r, const char *id,
                         const char *state);

/* ---- aggregator.c ---- */

struct llmb_agg_work *llmb_aggregator_new(void);
void llmb_aggregator_free(struct llmb_agg_work *w);
/* Takes finished jobs (agg_take) up to the batch size and works on them
 * for about agg_budget_ms: reads the job and its task results in chunks,
 * then stores the aggregate (agg_finish). Work left over goes on next
 * tick. Returns 0 or LLMB_EIO. */
int llmb_aggregator_tick(struct llmb_coord *co);
/* Jobs in progress. */
size_t llmb_aggregator_busy(const struct llmb_agg_work *w);

/* ---- retention.c ---- */

/* Writes the retention settings into <base>:conf (first sight and every
 * minute), trims <base>:jobs of expired jobs while counting job states,
 * bounded per tick. Returns 0 or LLMB_EIO. */
int llmb_retention_queue(struct llmb_coord *co, struct llmb_coord_queue *q);
/* Deletes dead worker records whose last heartbeat is older than
 * --worker-retention-s (bounded). Returns 0 or LLMB_EIO. */
int llmb_retention_workers(struct llmb_coord *co);

/* ---- metrics.c ---- */

/* Collects the cluster numbers (workers, capacity, queues) into
 * co->metrics (on a Redis Cluster also per primary, co->primaries) and
 * writes them into the <prefix>:metrics hash. Returns 0 or LLMB_EIO. */
int llmb_metrics_collect(struct llmb_coord *co);
/* Frees the n per-primary sums at p; accepts NULL. */
void llmb_metrics_primaries_free(struct llmb_coord_primary *p, size_t n);
/* Deletes the fields of queue name from <prefix>:metrics (it left
 * <prefix>:queues). Returns 0 or LLMB_EIO. */
int llmb_metrics_queue_forget(struct llmb_coord *co, const char *name);
/* Why queue q stalls, for people (malloc'd), or NULL: tasks pending and
 * no live worker serves the queue, or none handles the type at its head. */
char *llmb_metrics_unserved(const struct llmb_coord_queue *q);
/* Health from co's view, with a static or co-owned reason. */
enum llmb_health llmb_metrics_health(const struct llmb_coord *co,
                                     char *reason, size_t reason_size);
const char *llmb_health_name(enum llmb_health h);
/* Appends the Prometheus text exposition of the metrics to out. */
void llmb_metrics_prometheus(const struct llmb_coord *co, struct llmb_buf *out);
/* Appends the /healthz JSON document; returns the HTTP status (200 or
 * 503). */
int llmb_metrics_healthz(const struct llmb_coord *co, struct llmb_buf *out);

/* ---- http.c: the metrics server ---- */

/* Handler of one request: fills body and *content_type (static) and
 * returns the status code. */
typedef int (*llmb_http_handler)(void *arg, const char *method,
                                 const char *path, struct llmb_buf *body,
                                 const char **content_type);

/* Listens on addr ("HOST:PORT", "[v6]:PORT" or ":PORT") and serves
 * requests on loop with handler. Returns NULL with a malloc'd *errstr when
 * the address is malformed or cannot be bound. */
struct llmb_http *llmb_http_new(struct ev_loop *loop, const char *addr,
                                llmb_http_handler handler, void *arg,
                                char **errstr);
/* The port listened on (useful with port 0). */
int llmb_http_port(const struct llmb_http *h);
/* Closes the listener and every connection; accepts NULL. */
void llmb_http_free(struct llmb_http *h);

#endif
