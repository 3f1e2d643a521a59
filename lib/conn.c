/*
 * The synchronous Redis connection used by the tools and the tests: a
 * hiredis blocking context, set up by lib/connect.c (the server, then
 * AUTH, SELECT, CLIENT SETNAME and the function library), and got back
 * after a dropped connection or a FUNCTION FLUSH. Each command is retried at most
 * once per cause; anything beyond that is the caller's decision.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llmb/conn.h>
#include <llmb/connect.h>
#include <llmb/err.h>
#include <llmb/functions.h>
#include <llmb/log.h>
#include <llmb/url.h>
#include <llmb/util.h>

/* Lifecycle: llmb_conn_new() parses the URL; llmb_conn_connect() (or the
 * first command) opens ctx; a failed command drops ctx and the next one
 * reopens it; llmb_conn_free() closes everything. */
struct llmb_conn {
    struct llmb_redis_url url;
    char *url_err;     /* URL parse error, reported on connect; or NULL */
    char *address;     /* "host:port" or "unix:/path", for messages */
    char *client_name; /* or NULL */
    int timeout_ms;    /* 0 = none */
    redisContext *ctx; /* NULL while not connected */
    char *err;         /* last error message, or NULL */
    /* Pipelining: one entry per appended command not yet read, oldest at
     * acks_head; true when a WAIT follows it (llmb_write_ack). */
    bool *acks;
    size_t acks_head, nacks, acks_cap;
    bool stale;        /* a sentinel URL's server answered READONLY: find
                          the primary again before the next command */
};

/* A command to send: printf-style (fmt, ap) or argv. */
struct cmd {
    const char *fmt;
    va_list *ap;
    int argc;
    const char **argv;
    const size_t *argvlen;
};

static void set_err(struct llmb_conn *c, char *msg)
{
    free(c->err);
    c->err = msg;
}

static void drop(struct llmb_conn *c)
{
    if (c->ctx != NULL)
        redisFree(c->ctx);
    c->ctx = NULL;
    c->acks_head = c->nacks = 0;
    c->stale = false;
}

/* True when r says the server is a replica (read-only). */
static bool is_readonly(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR &&
           strncmp(r->str, "READONLY", 8) == 0;
}

/* Connects when there is no connection, or when a sentinel URL's server
 * turned out to be a replica and nothing is in flight on it. */
static int ensure_connected(struct llmb_conn *c)
{
    if (c->ctx != NULL && c->stale && c->nacks == 0) {
        llmb_warn("redis %s is no longer the primary; asking the sentinels "
                  "again", c->address);
        drop(c);
    }
    if (c->ctx == NULL && llmb_conn_connect(c, NULL) != 0)
        return LLMB_EIO;
    return 0;
}

/* Describes the I/O error of the context for a user. */
static char *ctx_error(struct llmb_conn *c, const char *doing)
{
    return llmb_ctx_error(c->ctx, doing, c->address, c->timeout_ms);
}

/* Sends WAIT after the write that answered *reply (llmb_write_ack);
 * replaces *reply with a NOREPLICAS error when it falls short. */
static void write_ack(struct llmb_conn *c, redisReply **reply)
{
    redisReply *r = redisCommand(c->ctx, "WAIT %lld %lld",
                                 llmb_write_ack.replicas,
                                 llmb_write_ack.timeout_ms);

    if (!llmb_write_ack_check(r, c->address)) {
        freeReplyObject(*reply);
        *reply = llmb_write_ack_refusal(r);
    }
    if (r == NULL) {
        set_err(c, ctx_error(c, "lost the connection to"));
        drop(c);
        return;
    }
    freeReplyObject(r);
}

struct llmb_conn *llmb_conn_new(const char *url, const char *client_name,
                                int timeout_ms)
{
    struct llmb_conn *c = llmb_xcalloc(1, sizeof(*c));
    struct sigaction sa;

    if (llmb_redis_url_parse(url, &c->url, &c->url_err) == 0)
        c->address = llmb_redis_url_address(&c->url);
    else
        c->address = llmb_redis_url_redacted(url);
    c->client_name = client_name ? llmb_xstrdup(client_name) : NULL;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;

    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    return c;
}

int llmb_conn_connect(struct llmb_conn *c, char **errstr)
{
    struct llmb_server srv;
    struct llmb_handshake hs;
    char *err = NULL;
    int rc = 0;

    memset(&srv, 0, sizeof(srv));
    drop(c);
    if (errstr != NULL)
        *errstr = NULL;
    if (c->url_err != NULL) {
        set_err(c, llmb_xstrdup(c->url_err));
        rc = LLMB_ECONFIG;
        goto out;
    }
    rc = llmb_server_locate(&c->url, c->timeout_ms, &srv, &err);
    if (rc != 0)
        goto out;
    free(c->address);
    c->address = llmb_xstrdup(srv.address);
    c->ctx = llmb_server_connect(&srv, c->timeout_ms, &err);
    if (c->ctx == NULL) {
        rc = LLMB_EIO;
        goto out;
    }
    llmb_handshake_init(&hs, &c->url, c->client_name);
    rc = llmb_handshake_run(c->ctx, &hs, c->address, true, &err);

out:
    llmb_server_fini(&srv);
    if (err != NULL)
        set_err(c, err);
    if (rc != 0) {
        drop(c);
        if (errstr != NULL)
            *errstr = llmb_xstrdup(c->err);
    }
    return rc;
}

redisContext *llmb_conn_ctx(struct llmb_conn *c)
{
    return c->ctx;
}

static redisReply *send_cmd(struct llmb_conn *c, const struct cmd *cmd)
{
    if (cmd->fmt != NULL) {
        va_list ap;
        redisReply *r;
        va_copy(ap, *cmd->ap);
        r = redisvCommand(c->ctx, cmd->fmt, ap);
        va_end(ap);
        return r;
    }
    return redisCommandArgv(c->ctx, cmd->argc, cmd->argv, cmd->argvlen);
}

/* True when cmd calls a function that may write (FCALL of a function
 * without the no-writes flag, see llmb_fcall_writes()): lost in flight, it
 * may or may not have run, so it is not sent again, and a WAIT follows
 * it. A function named by a format directive counts as writing. */
static bool writes_by_function(const struct cmd *cmd)
{
    const char *fn = NULL;
    size_t fnlen = 0;

    if (cmd->fmt != NULL) {
        if (strncasecmp(cmd->fmt, "FCALL ", 6) != 0)
            return false;
        fn = cmd->fmt + 6 + strspn(cmd->fmt + 6, " ");
        fnlen = strcspn(fn, " ");
        if (memchr(fn, '%', fnlen) != NULL)
            return true;
        return fnlen > 0 && llmb_fcall_writes(fn, fnlen);
    }
    return llmb_argv_writes(cmd->argc, cmd->argv, cmd->argvlen);
}

/* Sends cmd with the retry rules of llmb_conn_command(). */
static redisReply *run(struct llmb_conn *c, const struct cmd *cmd)
{
    bool reconnected = false, reloaded = false, relocated = false;

    if (ensure_connected(c) != 0)
        return NULL;
    for (;;) {
        redisReply *r = send_cmd(c, cmd);

        if (r == NULL) {
            set_err(c, ctx_error(c, "lost the connection to"));
            drop(c);
            if (reconnected)
                return NULL;
            if (writes_by_function(cmd)) {
                char *msg = llmb_xasprintf("%s (the call may or may not "
                                           "have run; check before "
                                           "repeating it)", c->err);
                set_err(c, msg);
                return NULL;
            }
            reconnected = true;
            llmb_warn("%s; reconnecting", c->err);
            if (llmb_conn_connect(c, NULL) != 0)
                return NULL;
            continue;
        }
        if (!reloaded && llmb_reply_function_missing(r)) {
            char *ferr = NULL;
            reloaded = true;
            llmb_warn("redis answered \"Function not found\"; checking the "
                      "llmb function library");
            if (llmb_functions_ensure(c->ctx, &ferr) != 0) {
                llmb_warn("cannot reload the llmb function library: %s",
                          ferr ? ferr : "?");
                free(ferr);
                if (c->ctx->err) {
                    set_err(c, ctx_error(c, "lost the connection to"));
                    drop(c);
                }
                return r;
            }
            freeReplyObject(r);
            continue;
        }
        if (!relocated && c->url.sentinel && is_readonly(r)) {
            /* A demoted primary: the command did not run (a replica runs
             * no write), so it goes again to the primary the sentinels
             * name now. */
            relocated = true;
            llmb_warn("redis %s answered READONLY; asking the sentinels for "
                      "the primary", c->address);
            freeReplyObject(r);
            if (llmb_conn_connect(c, NULL) != 0)
                return NULL;
            continue;
        }
        if (llmb_write_ack.replicas > 0 && writes_by_function(cmd) &&
            r->type != REDIS_REPLY_ERROR)
            write_ack(c, &r);
        return r;
    }
}

redisReply *llmb_conn_command(struct llmb_conn *c, const char *fmt, ...)
{
    struct cmd cmd;
    va_list ap;
    redisReply *r;

    memset(&cmd, 0, sizeof(cmd));
    va_start(ap, fmt);
    cmd.fmt = fmt;
    cmd.ap = &ap;
    r = run(c, &cmd);
    va_end(ap);
    return r;
}

redisReply *llmb_conn_commandargv(struct llmb_conn *c, int argc,
                                  const char **argv, const size_t *argvlen)
{
    struct cmd cmd;

    memset(&cmd, 0, sizeof(cmd));
    cmd.argc = argc;
    cmd.argv = argv;
    cmd.argvlen = argvlen;
    return run(c, &cmd);
}

int llmb_conn_append_argv(struct llmb_conn *c, int argc, const char **argv,
                          const size_t *argvlen)
{
    bool ack = llmb_write_ack.replicas > 0 &&
               llmb_argv_writes(argc, argv, argvlen);

    if (ensure_connected(c) != 0)
        return LLMB_EIO;
    if (redisAppendCommandArgv(c->ctx, argc, argv, argvlen) != REDIS_OK ||
        (ack && redisAppendCommand(c->ctx, "WAIT %lld %lld",
                                   llmb_write_ack.replicas,
                                   llmb_write_ack.timeout_ms) != REDIS_OK)) {
        set_err(c, ctx_error(c, "cannot queue a command for"));
        return LLMB_EIO;
    }
    if (c->acks_head + c->nacks == c->acks_cap) {
        if (c->acks_head > 0) {
            memmove(c->acks, c->acks + c->acks_head,
                    c->nacks * sizeof(*c->acks));
            c->acks_head = 0;
        } else {
            c->acks_cap = c->acks_cap ? 2 * c->acks_cap : 64;
            c->acks = llmb_xrealloc(c->acks, c->acks_cap * sizeof(*c->acks));
        }
    }
    c->acks[c->acks_head + c->nacks++] = ack;
    return 0;
}

redisReply *llmb_conn_get_reply(struct llmb_conn *c)
{
    void *reply = NULL;

    if (c->ctx == NULL) {
        set_err(c, llmb_xasprintf("not connected to redis %s", c->address));
        return NULL;
    }
    if (redisGetReply(c->ctx, &reply) != REDIS_OK) {
        set_err(c, ctx_error(c, "lost the connection to"));
        drop(c);
        return NULL;
    }
    if (c->nacks > 0) {
        bool ack = c->acks[c->acks_head++];
        c->nacks--;
        if (ack) {
            void *w = NULL;
            if (redisGetReply(c->ctx, &w) != REDIS_OK) {
                llmb_write_ack_check(NULL, c->address);
                set_err(c, ctx_error(c, "lost the connection to"));
                drop(c);
                freeReplyObject(reply);
                return NULL;
            }
            /* WAIT after a refused write waits for nothing: judge only
             * the writes that were made. */
            if (((redisReply *)reply)->type != REDIS_REPLY_ERROR &&
                !llmb_write_ack_check(w, c->address)) {
                freeReplyObject(reply);
                reply = llmb_write_ack_refusal(w);
            }
            freeReplyObject(w);
        }
    }
    if (c->url.sentinel && is_readonly(reply))
        c->stale = true;
    return reply;
}

int llmb_conn_flush(struct llmb_conn *c)
{
    int done = 0;

    if (c->ctx == NULL) {
        set_err(c, llmb_xasprintf("not connected to redis %s", c->address));
        return LLMB_EIO;
    }
    while (!done) {
        if (redisBufferWrite(c->ctx, &done) != REDIS_OK) {
            set_err(c, ctx_error(c, "lost the connection to"));
            drop(c);
            return LLMB_EIO;
        }
    }
    return 0;
}

const char *llmb_conn_errstr(struct llmb_conn *c)
{
    return c->err ? c->err : "";
}

void llmb_conn_free(struct llmb_conn *c)
{
    if (c == NULL)
        return;
    drop(c);
    free(c->acks);
    llmb_redis_url_fini(&c->url);
    free(c->url_err);
    free(c->address);
    free(c->client_name);
    free(c->err);
    free(c);
}

const char *llmb_reply_describe(const redisReply *r, char *buf, size_t n)
{
    if (r == NULL) {
        snprintf(buf, n, "no reply");
        return buf;
    }
    switch (r->type) {
    case REDIS_REPLY_STRING:
        snprintf(buf, n, "the string \"%.*s\"", r->len > 60 ? 60 : (int)r->len,
                 r->str);
        break;
    case REDIS_REPLY_ARRAY:
        snprintf(buf, n, "an array of %zu elements", r->elements);
        break;
    case REDIS_REPLY_INTEGER:
        snprintf(buf, n, "the integer %lld", r->integer);
        break;
    case REDIS_REPLY_NIL:
        snprintf(buf, n, "nil");
        break;
    case REDIS_REPLY_STATUS:
        snprintf(buf, n, "the status %.*s", r->len > 60 ? 60 : (int)r->len,
                 r->str);
        break;
    case REDIS_REPLY_ERROR:
        snprintf(buf, n, "the error %.*s", r->len > 200 ? 200 : (int)r->len,
                 r->str);
        break;
    default:
        snprintf(buf, n, "a reply of type %d", r->type);
        break;
    }
    return buf;
}
