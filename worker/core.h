/*
 * The inside of the worker core, shared by its files:
 *
 *   worker.c  lifecycle: build, ownership of the worker id, registration,
 *             heartbeat, shutdown, and the per-iteration step (ev_prepare)
 *             that drives the others
 *   claim.c   claiming tasks while there is capacity; BLPOP when idle
 *   task.c    one claimed task: start it on its executor, timeout, stop
 *   report.c  outcomes waiting for Redis, sent in batches per queue
 *   types.c   the job types this worker advertises per queue, and tasks
 *             of a type it has no handler for: handed back while another
 *             live worker handles the type, failed once none has for
 *             --no-handler-fail-after-s
 *
 * Everything runs on one libev loop. Tasks are claimed with FCALL
 * llmb_claim and hold a lease (ref + token) until their outcome is
 * reported with llmb_complete, llmb_fail or llmb_release.
 */
#ifndef LLMB_WORKER_CORE_H
#define LLMB_WORKER_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include <llmb/acluster.h>
#include <llmb/aconn.h>
#include <llmb/backoff.h>
#include <llmb/executor.h>

#include "config.h"
#include "handler.h"

/* Kinds of outcome reported to Redis. */
enum llmb_outcome {
    LLMB_OUTCOME_OK,      /* llmb_complete */
    LLMB_OUTCOME_ERROR,   /* llmb_fail kind error */
    LLMB_OUTCOME_TIMEOUT, /* llmb_fail kind timeout */
    LLMB_OUTCOME_FATAL,   /* llmb_fail kind fatal */
    LLMB_OUTCOME_RELEASE, /* llmb_release: to the front of its priority */
    LLMB_OUTCOME_HANDBACK, /* llmb_release back: behind what waits */
    LLMB_OUTCOME_RECORDS  /* llmb_records: a chunk of request records,
                             sent before any outcome of its queue */
};

/* One outcome waiting to be sent (or sent and not yet answered). */
struct llmb_report {
    enum llmb_outcome kind;
    char *ref;    /* "<job>:<index>" */
    char *token;  /* lease token */
    char *text;   /* result JSON or error text; NULL for a release */
    size_t text_len;
    struct llmb_report *next;
};

struct llmb_report_list {
    struct llmb_report *head, *tail;
    size_t n;
};

/* The outcome lists of a queue, one per call that sends them, in the
 * order report.c sends them: a task's record chunks before the outcome
 * that ends its lease. */
enum llmb_report_route {
    LLMB_ROUTE_RECORDS,  /* llmb_records */
    LLMB_ROUTE_DONE,     /* llmb_complete */
    LLMB_ROUTE_FAILED,   /* llmb_fail */
    LLMB_ROUTE_RELEASE,  /* llmb_release */
    LLMB_ROUTE_HANDBACK, /* llmb_release back */
    LLMB_ROUTE_N
};

/* A job type of a queue that this worker has no handler for and that no
 * live worker advertised at the last look (types.c). */
struct llmb_unserved {
    char *type;
    int64_t since_mono_ms;          /* first found unserved */
    struct llmb_unserved *prev, *next; /* <llmb/list.h> */
};

/* A queue the worker serves. */
struct llmb_wqueue {
    char *name;
    char *base;                     /* <prefix>:{name} */
    char *wake;                     /* <base>:wake */
    struct llmb_report_list out[LLMB_ROUTE_N]; /* outcomes to send */
    int64_t due_mono_ms;            /* next delayed task; INT64_MAX none */
    size_t held;                    /* tasks of this queue running here */
    int64_t refused_mono_ms;        /* skipped until then: claim refused */
    char *types;                    /* <base>:types (types.c) */
    int64_t backoff_ms;             /* last back-off after a claim that
                                       brought only tasks without handler */
    int64_t backoff_mono_ms;        /* skipped until then: that back-off */
    struct llmb_unserved *unserved; /* newest first, at most 256 */
    size_t blk_group;               /* its BLPOP (claim.c) */
};

/* The queues one BLPOP waits on: all of them on one server; on a Redis
 * Cluster those of one slot (a command takes the keys of one slot). */
struct llmb_blk_group {
    const char *key;                /* the wake key of its first queue */
    bool inflight;
};

/* Why a running task is being stopped. */
enum llmb_task_stop {
    LLMB_TASK_RUN = 0,   /* not stopped */
    LLMB_TASK_TIMEOUT,   /* past timeout_s: report a timeout */
    LLMB_TASK_DROP       /* lease gone, job cancelled, or released at
                            shutdown: report nothing */
};

/*
 * A claimed task. Lives from its claim until its executor calls done;
 * counts against the capacity all that time (a task being killed still
 * holds its slot). Its outcome then moves to a struct llmb_report.
 */
struct llmb_task {
    struct llmb_worker *w;
    struct llmb_wqueue *q;
    struct llmb_exec_task x;        /* what the executor sees */
    char *ref, *token;
    char *job, *type, *payload, *json; /* owned strings behind x */
    const struct llmb_handler *h;
    void *handle;                   /* from ops->start() */
    enum llmb_task_stop stop;
    const char *stop_why;           /* for the log */
    bool in_call;                   /* inside start() or cancel() */
    bool finished;                  /* done was called */
    int64_t started_mono_ms;
    ev_timer timer;                 /* timeout_s */
    struct llmb_task *prev, *next;
};

/* Whether this process owns its worker id (worker.c). The owner key
 * <prefix>:worker:<id>:owner holds the instance string of the process
 * that owns the id; it expires a few heartbeats after the last refresh. */
enum llmb_id_owner {
    LLMB_ID_UNKNOWN, /* not answered on this connection yet */
    LLMB_ID_OWNED,   /* the owner key holds our instance */
    LLMB_ID_TAKEN    /* another instance owns the id: refused at start, or
                        taken over while this one was away */
};

enum llmb_worker_state {
    LLMB_WORKER_RUNNING,
    LLMB_WORKER_DRAINING,  /* signal: no new tasks; grace running */
    LLMB_WORKER_RELEASING, /* grace over: tasks released, waiting for
                              executors, reports, deregistration */
};

struct llmb_worker {
    const struct llmb_worker_config *cfg;
    struct ev_loop *loop;
    char *id, *host, *conn_name;
    char *worker_key, *workers_key, *queues_key;
    char *queues_text, *tags_text;
    long capacity;
    struct llmb_handlers handlers;
    struct llmb_wqueue *q;
    size_t nq;

    struct llmb_acluster *rc;     /* the connections: on a Redis Cluster
                                     a command one per primary and a
                                     BLPOP one per slot served; on one
                                     server one of each */
    struct llmb_blk_group *groups; /* BLPOP groups of the queues */
    size_t ngroups;

    struct llmb_task *tasks;      /* running, newest first */
    size_t running;
    long long completed, failed;  /* outcomes recorded by Redis */
    int64_t started_ms;

    enum llmb_worker_state state;
    bool claim_inflight;
    size_t claim_qi;              /* queue of the next claim */
    size_t claim_sent_qi;         /* queue of the claim in flight */
    long claim_n;
    bool queues_empty;            /* last round found nothing: BLPOP */
    size_t blpops;                /* BLPOPs in flight */
    size_t hb_inflight;           /* heartbeat calls unanswered */
    size_t dereg_left;            /* on a cluster: deletions unanswered
                                     after the claim's */
    size_t reports_inflight;      /* outcome batches unanswered */
    bool dereg_sent;
    unsigned dereg_moved;         /* deregistrations refused: slot moved */
    int64_t hold_until_mono_ms;   /* after an error reply: pause a bit */
    char secret[33];              /* lease secret sent with every claim:
                                     128 random bits, hex (claim.c) */

    char *owner_key;              /* <prefix>:worker:<id>:owner */
    char *instance;               /* "<host>:<pid>:<random hex>" */
    long long owner_ttl_ms;       /* lifetime of the owner key */
    enum llmb_id_owner id_owner;
    bool id_owned_once;           /* owned the id at least once */
    bool id_inflight;             /* a write of the owner key unanswered */
    int status;                   /* 0, or why the worker stopped itself */
    bool ever_ready;              /* a command connection was ready once */

    ev_prepare step;              /* every loop iteration */
    ev_timer heartbeat;
    ev_timer retry;               /* wakes the loop after a hold */
    ev_timer grace;
    ev_timer exit_timer;          /* hard limit once releasing, or once
                                     a deregistration was refused */
    ev_timer dereg_retry;         /* before the next try of those */
    ev_signal sigterm, sigint;
    ev_timer start_retry;         /* a cluster that did not answer at start:
                                     the next read of its map */
    struct llmb_reconnect start_backoff;
};

/* worker.c */
/* Sends a command about key on the connection of the primary that owns
 * it (llmb_acluster_command_argv()); 0 or LLMB_EIO (cb never called). */
int llmb_worker_send(struct llmb_worker *w, const char *key,
                     llmb_aconn_reply_fn *cb, void *priv, int argc,
                     const char **argv, const size_t *argvlen);
/* True when a command about key would be sent now. */
bool llmb_worker_ready(struct llmb_worker *w, const char *key);

/* claim.c */
/* Sends a claim or a BLPOP if there is capacity and nothing in flight. */
void llmb_claim_step(struct llmb_worker *w);

/* task.c */
/* Starts a claimed task on its handler (or fails it when there is none). */
void llmb_task_start(struct llmb_worker *w, struct llmb_wqueue *q,
                     const char *job, long index, const char *token,
                     long attempt, const char *type, const char *payload,
                     size_t payload_len, double timeout_s, long tasks);
/* Stops t (see enum llmb_task_stop); its executor is asked to cancel. */
void llmb_task_stop(struct llmb_task *t, enum llmb_task_stop how,
                    const char *why);
/* The running task of q with this ref and token, or NULL. */
struct llmb_task *llmb_task_find(struct llmb_worker *w, struct llmb_wqueue *q,
                                 const char *ref, const char *token);
/* Frees t without reporting (the worker is being freed). */
void llmb_task_free(struct llmb_task *t);

/* report.c */
/* Queues an outcome for q; text is copied. */
void llmb_report_add(struct llmb_worker *w, struct llmb_wqueue *q,
                     enum llmb_outcome kind, const char *ref,
                     const char *token, const char *text, size_t len);
/* Sends what is queued, batched per queue and kind. */
void llmb_report_flush(struct llmb_worker *w);
/* True when nothing is queued or in flight. */
bool llmb_report_idle(const struct llmb_worker *w);
/* Frees every queued outcome. */
void llmb_report_clear(struct llmb_worker *w);

/* types.c */
/* Writes this worker's job types into <base>:types of every queue, each
 * until a few heartbeats from now. */
void llmb_types_advertise(struct llmb_worker *w);
/* Takes over t, a task of a type with no handler here: asks Redis whether
 * a live worker handles the type, then hands t back (llmb_release) or
 * fails it for good; t holds its slot until then. */
void llmb_types_unhandled(struct llmb_task *t);
/* After a claim of q that brought n tasks, unhandled of them without a
 * handler here: backs q off when all were, resets the back-off otherwise. */
void llmb_types_claimed(struct llmb_worker *w, struct llmb_wqueue *q,
                        long n, long unhandled);
/* Frees q's memory of unserved types. */
void llmb_types_fini(struct llmb_wqueue *q);

/* worker.c */
/* Pauses claims and reports for ms after an error reply. */
void llmb_worker_hold(struct llmb_worker *w, int64_t ms);
/* Free slots: capacity minus running tasks. */
long llmb_worker_free_slots(const struct llmb_worker *w);

#endif
