/*
 * `llmb web`: the web UI's server (docs/web.md), a command of the admin
 * CLI. What its files own:
 *
 *   web.c        the command: its options, the token, the libmicrohttpd
 *                daemon (a thread per connection) and the small pool of
 *                Redis connections the request threads share
 *   webapi.c     one request: the routes, the embedded files (assets.h),
 *                the JSON API built by the views of admin.h, the actions
 *                behind the token, and the headers of every response
 *   webevents.c  the live stream (Server-Sent Events): one reader thread
 *                per server reads the queues' event streams and the
 *                overview, and every open stream is fed from its ring
 *
 * Everything from Redis goes out as JSON strings, as stored: escaping is
 * the page's job. Every request does bounded work (docs/web.md).
 */
#ifndef LLMB_ADMIN_WEB_H
#define LLMB_ADMIN_WEB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <llmb/mhd.h>

#include "admin.h"

/* Bounds of the API (docs/web.md). */
#define LLMB_WEB_LIMIT_DEFAULT 50
#define LLMB_WEB_LIMIT_MAX 500
#define LLMB_WEB_OFFSET_MAX 100000
#define LLMB_WEB_TASKS_DEFAULT 100
#define LLMB_WEB_TASKS_MAX 1000
#define LLMB_WEB_TASK_OFFSET_MAX 100000000
/* The tasks of a job view stop before their JSON passes this many bytes. */
#define LLMB_WEB_TASKS_BYTES_MAX (4 << 20)
#define LLMB_WEB_COMPARE_MAX 16
#define LLMB_WEB_STREAMS_MAX 64
#define LLMB_WEB_CONNS_MAX 256
/* A connection that sends nothing for this long is closed. */
#define LLMB_WEB_IDLE_S 30
#define LLMB_WEB_POOL_MAX 8
/* The overview of the live stream, every this many ms. */
#define LLMB_WEB_OVERVIEW_MS 2000

struct llmb_web_events;

/* The server: made by llmb_web_run(), shared by every request thread. */
struct llmb_web {
    const struct llmb_admin_config *cfg;
    const char *prefix;
    char *token;                  /* the actions' token; NULL: read-only */
    struct MHD_Daemon *daemon;
    struct llmb_web_events *events;
    pthread_mutex_t mu;           /* guards the pool */
    pthread_cond_t cv;            /* a connection was given back */
    struct llmb_admin *idle[LLMB_WEB_POOL_MAX]; /* connected, unused */
    size_t nidle, nconns;         /* idle ones; all made */
};

/* web.c */
/* Takes a connected Redis connection of the pool, making one when fewer
 * than LLMB_WEB_POOL_MAX exist, else waiting for one. The caller has it
 * alone until llmb_web_conn_give(). NULL with a malloc'd *errstr when
 * Redis cannot be reached. a->cfg is the server's; a caller that changes
 * it restores it before giving a back. */
struct llmb_admin *llmb_web_conn_take(struct llmb_web *w, char **errstr);
void llmb_web_conn_give(struct llmb_web *w, struct llmb_admin *a);

/* webapi.c */
/* libmicrohttpd's access handler: answers one request. */
enum MHD_Result llmb_web_handle(void *cls, struct MHD_Connection *c,
                                const char *url, const char *method,
                                const char *version, const char *upload,
                                size_t *upload_size, void **state);
/* The document of GET /api/overview, read with a. Returns 0 or an error
 * of the views with *errstr. */
int llmb_web_overview(struct llmb_admin *a, json_t **doc, char **errstr);
/* Adds the headers of every response (docs/web.md) to r. */
void llmb_web_headers(struct MHD_Response *r);

/* webevents.c */
/* Starts the reader thread of w's live streams. */
struct llmb_web_events *llmb_web_events_new(struct llmb_web *w);
/* Ends every open stream and the reader; accepts NULL. Call before
 * MHD_stop_daemon(), which waits for the streams' threads. */
void llmb_web_events_stop(struct llmb_web_events *ev);
void llmb_web_events_free(struct llmb_web_events *ev);
/* A response streaming the events to one client, or NULL when
 * LLMB_WEB_STREAMS_MAX are open. last_id is the request's Last-Event-ID
 * or NULL: the stream resumes after it, or starts with a reload event
 * when it cannot (docs/web.md). */
struct MHD_Response *llmb_web_events_response(struct llmb_web_events *ev,
                                              const char *last_id);

#endif
