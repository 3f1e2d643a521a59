/*
 * The asynchronous Redis connection (include/llmb/aconn.h): hiredis 0.14's
 * async API on libev, with the sharp edges filed off in this one file, the
 * only one that includes <hiredis/async.h>.
 *
 * Flow. connect_start() finds the server (llmb_server_locate), makes a
 * hiredis context and queues the handshake of lib/connect.c (AUTH, SELECT,
 * CLIENT SETNAME) and a PING that closes it; each reply is judged by
 * llmb_handshake_check(). When the PING answers and nothing failed, the
 * function library is checked over a short-lived blocking connection set
 * up by the same handshake (only for connections made with `functions`),
 * the connection becomes ready and on_ready runs. Any failure (connect
 * error, error reply during setup, disconnect, watchdog) ends in
 * ctx_gone(), which calls on_lost if the connection was ready and arms the
 * reconnect timer by the reconnect policy (llmb/backoff.h).
 *
 * Every command travels with a struct pending: the caller's callback and
 * data, its deadline for the watchdog, and for FCALL a copy of its
 * arguments so that it can be sent again once after the library was
 * reloaded. Pendings sit in a list (llmb/list.h); the watchdog timer fires
 * at the earliest deadline and drops the connection if anything is late.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/async.h>
#include <hiredis/adapters/libev.h>

#include <llmb/aconn.h>
#include <llmb/backoff.h>
#include <llmb/connect.h>
#include <llmb/err.h>
#include <llmb/functions.h>
#include <llmb/list.h>
#include <llmb/log.h>
#include <llmb/url.h>
#include <llmb/util.h>

#define SYNC_TIMEOUT_MS 5000
/* Each sentinel asked where the primary is (a blocking exchange: the
 * loop waits for it) gets this long to answer. */
#define LOCATE_TIMEOUT_MS 1000

/* One command in flight. Owned by the list of its connection until its
 * hiredis callback ran. */
struct pending {
    struct llmb_aconn *ac;
    llmb_aconn_reply_fn *cb;   /* user callback, or NULL */
    void *priv;
    int64_t deadline_ms;       /* monotonic */
    int retried;               /* already sent again after a reload */
    int argc;                  /* copy of argv for FCALL, else 0 */
    char **argv;
    size_t *argvlen;
    int64_t block_ms;
    struct pending *prev, *next;
};

/*
 * A connection. ctx is the current hiredis context (NULL between a loss
 * and the next connect).
 */
struct llmb_aconn {
    struct ev_loop *loop;
    struct llmb_redis_url url;
    char *name;                /* CLIENT SETNAME value or NULL */
    struct llmb_handshake hs;  /* points into url and name */
    struct llmb_server srv;    /* the server of the current context */
    char *what;                /* for logs */
    bool functions;
    int64_t timeout_ms;
    struct llmb_reconnect retry;
    llmb_aconn_event_fn *on_ready, *on_lost;
    llmb_aconn_refused_fn *on_refused;
    void *priv;

    redisAsyncContext *ctx;
    bool ready;                /* setup done, commands accepted */
    bool up;                   /* on_ready ran; on_lost is owed */
    bool setup_failed;         /* an error reply during setup */
    char *refused;             /* why the setup's credentials were
                                  refused, until the PING decides */
    bool freeing;              /* llmb_aconn_free() is running */
    bool drop_requested;

    struct pending *head;      /* commands in flight */
    size_t npending;

    /* --wait-replicas (llmb_write_ack): one WAIT in flight at most, sent
     * at the end of a loop pass after its writes (it covers every earlier
     * write on the connection). */
    bool wait_due;             /* a write was sent since the last WAIT */
    bool wait_inflight;
    ev_prepare waiter;         /* sends the WAIT before the loop sleeps */

    ev_timer reconnect;        /* backoff before the next connect */
    ev_timer watchdog;         /* at the earliest deadline of a pending */
    ev_timer dropper;          /* zero-delay: drops outside of callbacks */
};

static void connect_start(struct llmb_aconn *ac);

static void pending_unlink(struct llmb_aconn *ac, struct pending *p)
{
    LLMB_LIST_REMOVE(ac->head, p);
    ac->npending--;
}

static void pending_free(struct pending *p)
{
    llmb_argv_free(p->argc, p->argv, p->argvlen);
    free(p);
}

/* Arms the watchdog for deadline_ms unless it already fires earlier. */
static void watchdog_arm(struct llmb_aconn *ac, int64_t deadline_ms)
{
    ev_tstamp at = (ev_tstamp)(deadline_ms - llmb_mono_ms()) / 1000.0;

    if (at < 0.001)
        at = 0.001;
    if (ev_is_active(&ac->watchdog)) {
        if (ev_timer_remaining(ac->loop, &ac->watchdog) <= at)
            return;
        ev_timer_stop(ac->loop, &ac->watchdog);
    }
    ev_timer_set(&ac->watchdog, at, 0.0);
    ev_timer_start(ac->loop, &ac->watchdog);
}

/* Ends the current context now: hiredis calls every pending callback with
 * NULL and then disconnect_cb(), which schedules the reconnect. Only
 * outside of hiredis callbacks. */
static void ctx_gone(struct llmb_aconn *ac);

static void ctx_kill(struct llmb_aconn *ac)
{
    redisAsyncContext *c = ac->ctx;

    if (c == NULL)
        return;
    ac->ready = false;
    redisAsyncFree(c);
    /* hiredis calls disconnect_cb() only for a context that had connected;
     * one still connecting is gone without a word. */
    if (ac->ctx == c)
        ctx_gone(ac);
}

/* The context is gone (freed by hiredis after this returns). Tells the
 * user if it was ready and schedules a reconnect unless freeing. */
static void ctx_gone(struct llmb_aconn *ac)
{
    bool was_up = ac->up;

    ac->ctx = NULL;
    ac->ready = false;
    ac->up = false;
    ac->drop_requested = false;
    ac->wait_due = false;      /* the writes' callbacks got NULL */
    ac->wait_inflight = false;
    ev_prepare_stop(ac->loop, &ac->waiter);
    ev_timer_stop(ac->loop, &ac->dropper);
    if (ac->head == NULL)
        ev_timer_stop(ac->loop, &ac->watchdog);
    if (ac->freeing)
        return;
    if (was_up && ac->on_lost != NULL)
        ac->on_lost(ac, ac->priv);
    if (ac->ctx != NULL || ac->freeing)
        return; /* on_lost reconnected or freed it */
    int64_t d = llmb_reconnect_failed(&ac->retry);
    ev_timer_stop(ac->loop, &ac->reconnect);
    ev_timer_set(&ac->reconnect, (ev_tstamp)d / 1000.0, 0.0);
    ev_timer_start(ac->loop, &ac->reconnect);
}

static void connect_cb(const redisAsyncContext *c, int status)
{
    struct llmb_aconn *ac = c->data;

    if (status == REDIS_OK)
        return; /* the setup commands are on their way */
    if (ac->retry.attempt <= 1 || llmb_log_threshold == LLMB_LOG_DEBUG)
        llmb_warn("cannot connect to redis conn=%s: %s (retrying)", ac->what,
                  c->errstr);
    else
        llmb_debug("cannot connect to redis conn=%s: %s", ac->what, c->errstr);
    ctx_gone(ac); /* hiredis frees c after this */
}

static void disconnect_cb(const redisAsyncContext *c, int status)
{
    struct llmb_aconn *ac = c->data;

    if (ac->ctx != c)
        return;
    if (!ac->freeing)
        llmb_warn("lost the connection to redis conn=%s: %s (reconnecting)",
                  ac->what,
                  status == REDIS_OK ? "closed" :
                  (c->errstr[0] ? c->errstr : "connection closed"));
    ctx_gone(ac);
}

static void drop_now_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct llmb_aconn *ac = w->data;

    (void)loop;
    (void)revents;
    ac->drop_requested = false;
    ctx_kill(ac);
}

void llmb_aconn_drop(struct llmb_aconn *ac)
{
    if (ac == NULL || ac->ctx == NULL || ac->drop_requested)
        return;
    ac->drop_requested = true;
    ac->ready = false;
    /* No new commands from here on; the drop itself waits for the next
     * loop iteration so that it never runs inside a hiredis callback. */
    ev_timer_set(&ac->dropper, 0.0, 0.0);
    ev_timer_start(ac->loop, &ac->dropper);
}

static void watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct llmb_aconn *ac = w->data;
    int64_t now = llmb_mono_ms();
    int64_t next = INT64_MAX;

    (void)loop;
    (void)revents;
    for (struct pending *p = ac->head; p != NULL; p = p->next) {
        if (p->deadline_ms <= now) {
            llmb_warn("redis did not answer within %lld ms conn=%s "
                      "(dropping the connection)",
                      (long long)(ac->timeout_ms + p->block_ms), ac->what);
            ctx_kill(ac);
            return;
        }
        if (p->deadline_ms < next)
            next = p->deadline_ms;
    }
    if (next != INT64_MAX)
        watchdog_arm(ac, next);
}

/*
 * Loads the function library if needed, over a short blocking connection
 * to the same server with the same handshake (the coordinator counts
 * connection names, so every connection carries the name). Blocks the
 * loop for a few round trips; it runs only after a connect and when a
 * function went missing. Returns 0 or a negative llmb_err with the reason
 * logged.
 */
static int functions_ensure_sync(struct llmb_aconn *ac)
{
    redisContext *c = NULL;
    char *err = NULL;
    int rc = LLMB_EIO;

    c = llmb_server_connect(&ac->srv, SYNC_TIMEOUT_MS, &err);
    if (c == NULL) {
        llmb_warn("cannot connect to redis to load functions conn=%s: %s",
                  ac->what, err);
        goto out;
    }
    rc = llmb_handshake_run(c, &ac->hs, ac->srv.address, true, &err);
    if (rc != 0)
        llmb_error("cannot load the llmb function library conn=%s: %s",
                   ac->what, err != NULL ? err : llmb_strerror(rc));
out:
    if (c != NULL)
        redisFree(c);
    free(err);
    return rc;
}

static int send_pending(struct llmb_aconn *ac, struct pending *p, int argc,
                        const char **argv, const size_t *argvlen);

/*
 * The hiredis callback of every command. Runs the user callback once
 * (reply or NULL), except for an FCALL answered "Function not found" the
 * first time: then the library is reloaded and the same command is sent
 * again with the same callback.
 */
static void pending_reply_cb(redisAsyncContext *c, void *r, void *data)
{
    struct pending *p = data;
    struct llmb_aconn *ac = p->ac;
    redisReply *reply = r;

    (void)c;
    pending_unlink(ac, p);
    if (reply == NULL)
        ac->ready = false; /* the context is going: refuse new commands */
    if (ac->head == NULL)
        ev_timer_stop(ac->loop, &ac->watchdog);

    if (llmb_reply_function_missing(reply) && p->argc > 0 && !p->retried &&
        ac->functions && ac->ready && !ac->freeing) {
        llmb_warn("the llmb functions are missing in redis conn=%s "
                  "(loading them)", ac->what);
        if (functions_ensure_sync(ac) == 0) {
            p->retried = 1;
            if (send_pending(ac, p, p->argc, (const char **)p->argv,
                             p->argvlen) == 0)
                return;
        }
    }
    if (reply != NULL && ac->url.sentinel && reply->type == REDIS_REPLY_ERROR &&
        strncmp(reply->str, "READONLY", 8) == 0) {
        /* The server was demoted: to the caller this is the connection to
         * the primary lost (the command did not run); reconnecting asks
         * the sentinels again. */
        if (!ac->drop_requested)
            llmb_warn("redis %s answered READONLY conn=%s (asking the "
                      "sentinels for the primary)", ac->srv.address,
                      ac->what);
        llmb_aconn_drop(ac);
        reply = NULL;
    }
    if (p->cb != NULL)
        p->cb(ac, reply, p->priv);
    pending_free(p);
}

/* Reply of the WAIT that follows writes (llmb_write_ack); the writes
 * sent since wait for the next one. */
static void write_ack_reply(struct llmb_aconn *ac, const redisReply *r,
                            void *priv)
{
    (void)priv;
    ac->wait_inflight = false;
    llmb_write_ack_check(r, ac->what);
    if (ac->wait_due && !ac->freeing)
        ev_prepare_start(ac->loop, &ac->waiter);
}

/* At the end of a loop pass: one WAIT after the writes sent, unless one
 * is in flight already (its reply starts this again). */
static void waiter_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct llmb_aconn *ac = w->data;
    char n[24], ms[24];
    const char *wargv[] = {"WAIT", n, ms};
    struct pending *p;

    (void)revents;
    ev_prepare_stop(loop, w);
    if (!ac->wait_due || ac->wait_inflight || !ac->ready || ac->freeing)
        return;
    snprintf(n, sizeof(n), "%lld", llmb_write_ack.replicas);
    snprintf(ms, sizeof(ms), "%lld", llmb_write_ack.timeout_ms);
    p = llmb_xcalloc(1, sizeof(*p));
    p->ac = ac;
    p->cb = write_ack_reply;
    p->block_ms = llmb_write_ack.timeout_ms;
    ac->wait_due = false;
    if (send_pending(ac, p, 3, wargv, NULL) != 0) {
        pending_free(p); /* the writes' callbacks learn of the loss */
        return;
    }
    ac->wait_inflight = true;
}

/* Queues p's command on the current context and links p. Returns 0, or
 * LLMB_EIO (p is not linked, still the caller's). */
static int send_pending(struct llmb_aconn *ac, struct pending *p, int argc,
                        const char **argv, const size_t *argvlen)
{
    if (ac->ctx == NULL ||
        redisAsyncCommandArgv(ac->ctx, pending_reply_cb, p, argc, argv,
                              argvlen) != REDIS_OK)
        return LLMB_EIO;
    /* Behind a WAIT in flight, a command waits for it too. */
    p->deadline_ms = llmb_mono_ms() + ac->timeout_ms + p->block_ms +
                     (ac->wait_inflight ? llmb_write_ack.timeout_ms : 0);
    if (llmb_write_ack.replicas > 0 && llmb_argv_writes(argc, argv, argvlen)) {
        ac->wait_due = true;
        ev_prepare_start(ac->loop, &ac->waiter);
    }
    LLMB_LIST_INSERT(ac->head, p);
    ac->npending++;
    watchdog_arm(ac, p->deadline_ms);
    return 0;
}

static void ready_set(struct llmb_aconn *ac)
{
    if (ac->functions && functions_ensure_sync(ac) != 0) {
        llmb_aconn_drop(ac);
        return;
    }
    ac->ready = true;
    ac->up = true;
    llmb_reconnect_reset(&ac->retry);
    llmb_info("connected to redis conn=%s", ac->what);
    if (ac->on_ready != NULL)
        ac->on_ready(ac, ac->priv);
}

/* Reply of one handshake step (priv: its index) or of the PING that
 * closes the handshake (priv: NULL), which decides. */
static void setup_reply(struct llmb_aconn *ac, const redisReply *r,
                        void *priv)
{
    char *err = NULL;

    if (r == NULL)
        return; /* the connection failed; ctx_gone() handles it */
    if (priv != NULL) {
        int i = (int)((intptr_t)priv - 1);
        int rc = llmb_handshake_check(&ac->hs, i, r, ac->srv.address, &err);
        if (rc != 0) {
            llmb_error("%s conn=%s", err, ac->what);
            ac->setup_failed = true;
        }
        if (rc == LLMB_EAUTH && ac->refused == NULL)
            ac->refused = err;
        else
            free(err);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        /* Without AUTH or CLIENT SETNAME, PING is the first command
         * that a server requiring a password refuses. */
        err = llmb_auth_refusal(&ac->hs, "PING", r, ac->srv.address);
        if (err != NULL)
            llmb_error("%s conn=%s", err, ac->what);
        else
            llmb_error("redis %s refused PING conn=%s: %s", ac->srv.address,
                       ac->what, r->str);
        if (ac->refused == NULL)
            ac->refused = err;
        else
            free(err);
        ac->setup_failed = true;
    }
    if (ac->setup_failed) {
        char *why = ac->refused;
        ac->refused = NULL;
        llmb_aconn_drop(ac);
        if (why != NULL && ac->on_refused != NULL)
            ac->on_refused(ac, why, ac->priv);
        free(why);
        return;
    }
    ready_set(ac);
}

/* Sends handshake step i (-1: the closing PING). */
static int setup_send(struct llmb_aconn *ac, int i)
{
    struct pending *p = llmb_xcalloc(1, sizeof(*p));
    static const char *ping[] = {"PING"};
    const struct llmb_handshake_step *st = i >= 0 ? &ac->hs.step[i] : NULL;
    int argc = st != NULL ? st->argc : 1;
    const char **argv = st != NULL ? (const char **)st->argv : ping;

    p->ac = ac;
    p->cb = setup_reply;
    p->priv = (void *)(intptr_t)(i + 1);
    if (send_pending(ac, p, argc, argv, NULL) != 0) {
        free(p);
        return LLMB_EIO;
    }
    return 0;
}

/* Finds the server, makes a new context and queues the setup commands. */
static void connect_start(struct llmb_aconn *ac)
{
    redisAsyncContext *c = NULL;
    char *err = NULL;
    int rc = 0;

    ac->setup_failed = false;
    free(ac->refused);
    ac->refused = NULL;
    llmb_server_fini(&ac->srv);
    rc = llmb_server_locate(&ac->url, LOCATE_TIMEOUT_MS, &ac->srv, &err);
    if (rc != 0) {
        if (rc == LLMB_EAUTH)
            llmb_error("%s conn=%s (retrying)", err, ac->what);
        else if (ac->retry.attempt <= 1 ||
                 llmb_log_threshold == LLMB_LOG_DEBUG)
            llmb_warn("%s conn=%s (retrying)", err, ac->what);
        if (rc == LLMB_EAUTH)
            ac->refused = err; /* told from reconnect_cb() */
        else
            free(err);
        ctx_gone(ac); /* schedules the next try */
        return;
    }
    if (ac->srv.socket_path != NULL)
        c = redisAsyncConnectUnix(ac->srv.socket_path);
    else
        c = redisAsyncConnect(ac->srv.host, ac->srv.port);
    if (c == NULL || c->err) {
        llmb_debug("cannot connect to redis conn=%s: %s", ac->what,
                   c != NULL ? c->errstr : "out of memory");
        if (c != NULL)
            redisAsyncFree(c);
        ac->ctx = NULL;
        /* Schedule the next try as if the context had gone. */
        ctx_gone(ac);
        return;
    }
    c->data = ac;
    ac->ctx = c;
    redisLibevAttach(ac->loop, c);
    redisAsyncSetConnectCallback(c, connect_cb);
    redisAsyncSetDisconnectCallback(c, disconnect_cb);

    for (int i = 0; i < ac->hs.nsteps; i++)
        rc |= setup_send(ac, i);
    rc |= setup_send(ac, -1);
    if (rc != 0)
        llmb_aconn_drop(ac);
}

static void reconnect_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct llmb_aconn *ac = w->data;

    (void)loop;
    (void)revents;
    if (ac->refused != NULL && ac->on_refused != NULL) {
        /* The sentinels refused the credentials at the last try, inside
         * llmb_aconn_new() maybe: the owner hears of it from the loop. */
        char *why = ac->refused;
        ac->refused = NULL;
        ac->on_refused(ac, why, ac->priv);
        free(why);
    }
    if (ac->ctx == NULL && !ac->freeing)
        connect_start(ac);
}

struct llmb_aconn *llmb_aconn_new(struct ev_loop *loop,
                                  const struct llmb_aconn_opts *o,
                                  char **errstr)
{
    struct llmb_aconn *ac = llmb_xcalloc(1, sizeof(*ac));

    if (llmb_redis_url_parse(o->url, &ac->url, errstr) != 0) {
        free(ac);
        return NULL;
    }
    signal(SIGPIPE, SIG_IGN);
    ac->loop = loop;
    ac->name = o->name != NULL ? llmb_xstrdup(o->name) : NULL;
    ac->what = llmb_xstrdup(o->what != NULL ? o->what : "redis");
    ac->functions = o->functions;
    ac->timeout_ms = o->command_timeout_ms > 0 ? o->command_timeout_ms : 10000;
    llmb_reconnect_init(&ac->retry, o->backoff_base_ms, o->backoff_cap_ms);
    llmb_handshake_init(&ac->hs, &ac->url, ac->name);
    ac->on_ready = o->on_ready;
    ac->on_lost = o->on_lost;
    ac->on_refused = o->on_refused;
    ac->priv = o->priv;
    ev_timer_init(&ac->reconnect, reconnect_cb, 0.0, 0.0);
    ac->reconnect.data = ac;
    ev_timer_init(&ac->watchdog, watchdog_cb, 0.0, 0.0);
    ac->watchdog.data = ac;
    ev_timer_init(&ac->dropper, drop_now_cb, 0.0, 0.0);
    ac->dropper.data = ac;
    ev_prepare_init(&ac->waiter, waiter_cb);
    ac->waiter.data = ac;
    connect_start(ac);
    return ac;
}

void llmb_aconn_free(struct llmb_aconn *ac)
{
    if (ac == NULL)
        return;
    ac->freeing = true;
    ev_timer_stop(ac->loop, &ac->reconnect);
    ev_timer_stop(ac->loop, &ac->dropper);
    ev_prepare_stop(ac->loop, &ac->waiter);
    if (ac->ctx != NULL)
        redisAsyncFree(ac->ctx); /* pending callbacks get NULL */
    ac->ctx = NULL;
    ev_timer_stop(ac->loop, &ac->watchdog);
    llmb_server_fini(&ac->srv);
    llmb_redis_url_fini(&ac->url);
    free(ac->name);
    free(ac->what);
    free(ac->refused);
    free(ac);
}

bool llmb_aconn_ready(const struct llmb_aconn *ac)
{
    return ac != NULL && ac->ready;
}

size_t llmb_aconn_pending(const struct llmb_aconn *ac)
{
    return ac != NULL ? ac->npending : 0;
}

static int command_send(struct llmb_aconn *ac, int64_t block_ms,
                        llmb_aconn_reply_fn *cb, void *priv, int argc,
                        const char **argv, const size_t *argvlen)
{
    struct pending *p = NULL;

    if (!llmb_aconn_ready(ac) || ac->freeing || argc < 1)
        return LLMB_EIO;
    p = llmb_xcalloc(1, sizeof(*p));
    p->ac = ac;
    p->cb = cb;
    p->priv = priv;
    p->block_ms = block_ms;
    if (ac->functions && (strcasecmp(argv[0], "FCALL") == 0 ||
                          strcasecmp(argv[0], "FCALL_RO") == 0)) {
        /* Kept to send again once if the library went missing. */
        p->argc = argc;
        llmb_argv_copy(argc, argv, argvlen, &p->argv, &p->argvlen);
    }
    if (send_pending(ac, p, argc, argv, argvlen) != 0) {
        pending_free(p);
        return LLMB_EIO;
    }
    return 0;
}

int llmb_aconn_command_argv(struct llmb_aconn *ac, llmb_aconn_reply_fn *cb,
                            void *priv, int argc, const char **argv,
                            const size_t *argvlen)
{
    return command_send(ac, 0, cb, priv, argc, argv, argvlen);
}

int llmb_aconn_block_argv(struct llmb_aconn *ac, int64_t block_ms,
                          llmb_aconn_reply_fn *cb, void *priv, int argc,
                          const char **argv, const size_t *argvlen)
{
    return command_send(ac, block_ms > 0 ? block_ms : 0, cb, priv, argc, argv,
                        argvlen);
}
