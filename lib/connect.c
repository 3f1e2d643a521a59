/*
 * The setup of every connection to Redis (include/llmb/connect.h): which
 * server to connect to, the blocking connect, and the handshake (AUTH,
 * SELECT, CLIENT SETNAME, then the function library). lib/conn.c runs it
 * on its blocking context; lib/aconn.c sends the same steps on its async
 * context and judges the replies here, so a refusal reads the same
 * whichever program met it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <llmb/connect.h>
#include <llmb/err.h>
#include <llmb/functions.h>
#include <llmb/util.h>

int llmb_server_locate(const struct llmb_redis_url *u, int timeout_ms,
                       struct llmb_server *out, char **errstr)
{
    (void)timeout_ms;
    memset(out, 0, sizeof(*out));
    if (errstr != NULL)
        *errstr = NULL;
    if (u->socket_path != NULL) {
        out->socket_path = llmb_xstrdup(u->socket_path);
    } else {
        out->host = llmb_xstrdup(u->host);
        out->port = u->port;
    }
    out->address = llmb_redis_url_address(u);
    return 0;
}

void llmb_server_fini(struct llmb_server *s)
{
    free(s->host);
    free(s->socket_path);
    free(s->address);
    memset(s, 0, sizeof(*s));
}

/* Describes the I/O error of c (may be NULL) for a user. */
static char *ctx_error(const redisContext *c, const char *doing,
                       const char *address, int timeout_ms)
{
    const char *why = c != NULL && c->errstr[0] ? c->errstr
                                                : "connection closed";

    if (timeout_ms > 0 && c != NULL && c->err == REDIS_ERR_IO &&
        strstr(why, "temporarily unavailable") != NULL)
        return llmb_xasprintf("%s redis %s: no answer within %d ms", doing,
                              address, timeout_ms);
    return llmb_xasprintf("%s redis %s: %s", doing, address, why);
}

redisContext *llmb_server_connect(const struct llmb_server *s, int timeout_ms,
                                  char **errstr)
{
    struct timeval tv;
    redisContext *c = NULL;

    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    if (s->socket_path != NULL)
        c = timeout_ms > 0 ? redisConnectUnixWithTimeout(s->socket_path, tv)
                           : redisConnectUnix(s->socket_path);
    else
        c = timeout_ms > 0 ? redisConnectWithTimeout(s->host, s->port, tv)
                           : redisConnect(s->host, s->port);
    if (c == NULL || c->err) {
        *errstr = ctx_error(c, "cannot connect to", s->address, timeout_ms);
        goto fail;
    }
    if (timeout_ms > 0 && redisSetTimeout(c, tv) != REDIS_OK) {
        *errstr = ctx_error(c, "cannot set a timeout on the connection to",
                            s->address, timeout_ms);
        goto fail;
    }
    return c;
fail:
    if (c != NULL)
        redisFree(c);
    return NULL;
}

void llmb_handshake_init(struct llmb_handshake *hs,
                         const struct llmb_redis_url *u,
                         const char *client_name)
{
    struct llmb_handshake_step *st;

    memset(hs, 0, sizeof(*hs));
    hs->db = u->db;
    hs->name = client_name;
    if (u->password != NULL) {
        st = &hs->step[hs->nsteps++];
        st->what = "AUTH";
        st->argv[0] = "AUTH";
        if (u->user != NULL) {
            st->argv[1] = u->user;
            st->argv[2] = u->password;
            st->argc = 3;
        } else {
            st->argv[1] = u->password;
            st->argc = 2;
        }
    }
    if (u->db != 0) {
        st = &hs->step[hs->nsteps++];
        snprintf(hs->dbtext, sizeof(hs->dbtext), "%d", u->db);
        st->what = "SELECT";
        st->argv[0] = "SELECT";
        st->argv[1] = hs->dbtext;
        st->argc = 2;
    }
    if (client_name != NULL) {
        st = &hs->step[hs->nsteps++];
        st->what = "CLIENT SETNAME";
        st->argv[0] = "CLIENT";
        st->argv[1] = "SETNAME";
        st->argv[2] = client_name;
        st->argc = 3;
    }
}

/* The message for a server that wants a password the URL lacks. */
static char *noauth(const char *address, const char *detail)
{
    return llmb_xasprintf("redis %s requires a password; put it in the URL: "
                          "redis://:PASSWORD@host:port (%s)", address, detail);
}

int llmb_handshake_check(const struct llmb_handshake *hs, int i,
                         const redisReply *r, const char *address,
                         char **errstr)
{
    const struct llmb_handshake_step *st = &hs->step[i];

    if (r == NULL) {
        *errstr = llmb_xasprintf("lost the connection to redis %s during %s",
                                 address, st->what);
        return LLMB_EIO;
    }
    if (r->type != REDIS_REPLY_ERROR)
        return 0;
    if (strncmp(r->str, "NOAUTH", 6) == 0)
        *errstr = noauth(address, r->str);
    else if (strcmp(st->what, "SELECT") == 0)
        *errstr = llmb_xasprintf("redis SELECT %d failed: %s", hs->db,
                                 r->str);
    else if (strcmp(st->what, "CLIENT SETNAME") == 0)
        *errstr = llmb_xasprintf("redis CLIENT SETNAME \"%s\" failed: %s",
                                 hs->name, r->str);
    else
        *errstr = llmb_xasprintf("redis %s failed: %s", st->what, r->str);
    return LLMB_EREDIS;
}

int llmb_handshake_run(redisContext *c, const struct llmb_handshake *hs,
                       const char *address, bool functions, char **errstr)
{
    char *ferr = NULL;
    int rc = 0;

    *errstr = NULL;
    for (int i = 0; i < hs->nsteps; i++) {
        /* hiredis 0.14 takes argv without the inner const; it only
         * reads it. */
        redisReply *r = redisCommandArgv(c, hs->step[i].argc,
                                         (const char **)hs->step[i].argv,
                                         NULL);
        if (r == NULL) {
            *errstr = ctx_error(c, "lost the connection to", address, 0);
            return LLMB_EIO;
        }
        rc = llmb_handshake_check(hs, i, r, address, errstr);
        freeReplyObject(r);
        if (rc != 0)
            return rc;
    }
    if (!functions)
        return 0;
    rc = llmb_functions_ensure(c, &ferr);
    if (rc == 0)
        return 0;
    if (ferr != NULL && strstr(ferr, "NOAUTH") != NULL) {
        *errstr = noauth(address, ferr);
        free(ferr);
    } else {
        *errstr = ferr != NULL ? ferr : llmb_xstrdup(llmb_strerror(rc));
    }
    return rc;
}
