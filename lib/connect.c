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
#include <strings.h>
#include <sys/time.h>

#include <llmb/conn.h>
#include <llmb/connect.h>
#include <llmb/err.h>
#include <llmb/functions.h>
#include <llmb/log.h>
#include <llmb/util.h>

#define SENTINEL_TIMEOUT_MS 5000

/* Asks one sentinel for the address of the primary u names. Returns 0
 * with out filled, or an llmb_err with why in *why. */
static int ask_sentinel(const struct llmb_redis_url *u,
                        const struct llmb_redis_seed *s, int timeout_ms,
                        struct llmb_server *out, char **why)
{
    struct llmb_server sen;
    redisContext *c = NULL;
    redisReply *r = NULL;
    long long port = 0;
    int rc = LLMB_EIO;

    memset(&sen, 0, sizeof(sen));
    sen.host = s->host;
    sen.port = s->port;
    sen.address = llmb_hostport(s->host, s->port);
    c = llmb_server_connect(&sen, timeout_ms, why);
    if (c == NULL) {
        /* "cannot connect to redis H:P: ..." names a sentinel here. */
        static const char redis_word[] = "cannot connect to redis ";
        if (strncmp(*why, redis_word, sizeof(redis_word) - 1) == 0) {
            char *m = llmb_xasprintf("cannot connect to sentinel %s",
                                     *why + sizeof(redis_word) - 1);
            free(*why);
            *why = m;
        }
        goto out;
    }
    if (u->sentinel_password != NULL) {
        r = u->sentinel_user != NULL
                ? redisCommand(c, "AUTH %s %s", u->sentinel_user,
                               u->sentinel_password)
                : redisCommand(c, "AUTH %s", u->sentinel_password);
        if (r == NULL) {
            *why = llmb_xasprintf("sentinel %s: %s", sen.address,
                                  c->errstr);
            goto out;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            *why = llmb_xasprintf("sentinel %s refused the credentials of "
                                  "user \"%s\": %s", sen.address,
                                  u->sentinel_user != NULL ? u->sentinel_user
                                                           : "default",
                                  r->str);
            rc = LLMB_EAUTH;
            goto out;
        }
        freeReplyObject(r);
    }
    r = redisCommand(c, "SENTINEL get-master-addr-by-name %s",
                     u->master_name);
    if (r == NULL) {
        *why = llmb_xasprintf("sentinel %s: %s", sen.address, c->errstr);
        goto out;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        bool refused = strncmp(r->str, "NOAUTH", 6) == 0 ||
                       strncmp(r->str, "NOPERM", 6) == 0;
        *why = llmb_xasprintf("sentinel %s answered: %s%s", sen.address,
                              r->str, strncmp(r->str, "NOAUTH", 6) == 0 ?
                              " (put sentinel_password=... in the URL)" : "");
        rc = refused ? LLMB_EAUTH : LLMB_EREDIS;
        goto out;
    }
    if (r->type == REDIS_REPLY_NIL ||
        (r->type == REDIS_REPLY_ARRAY && r->elements == 0)) {
        *why = llmb_xasprintf("sentinel %s knows no primary named \"%s\"",
                              sen.address, u->master_name);
        rc = LLMB_EREDIS;
        goto out;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING ||
        llmb_parse_ll(r->element[1]->str, 1, 65535, &port) != 0) {
        char desc[128];
        *why = llmb_xasprintf("sentinel %s answered %s to SENTINEL "
                              "get-master-addr-by-name", sen.address,
                              llmb_reply_describe(r, desc, sizeof(desc)));
        rc = LLMB_EPROTO;
        goto out;
    }
    out->host = llmb_xstrdup(r->element[0]->str);
    out->port = (int)port;
    out->address = llmb_hostport(out->host, out->port);
    rc = 0;
out:
    if (r != NULL)
        freeReplyObject(r);
    if (c != NULL)
        redisFree(c);
    free(sen.address);
    return rc;
}

/* Finds the primary of a sentinel URL: asks each sentinel in turn, the
 * first that names it wins. */
static int locate_primary(const struct llmb_redis_url *u, int timeout_ms,
                          struct llmb_server *out, char **errstr)
{
    struct llmb_buf whys;
    int rc = LLMB_EIO;

    /* A connection without a time limit still asks each sentinel for a
     * bounded time: one that does not answer must not hold up the rest. */
    if (timeout_ms <= 0)
        timeout_ms = SENTINEL_TIMEOUT_MS;
    llmb_buf_init(&whys);
    for (size_t i = 0; i < u->nseeds; i++) {
        char *why = NULL;
        int src = ask_sentinel(u, &u->seeds[i], timeout_ms, out, &why);
        if (src == 0) {
            llmb_buf_fini(&whys);
            return 0;
        }
        /* A sentinel that answers outranks one that cannot be reached. */
        if (rc == LLMB_EIO)
            rc = src;
        llmb_buf_appendf(&whys, "%s%s", whys.len > 0 ? "; " : "", why);
        free(why);
    }
    *errstr = llmb_xasprintf("no sentinel named the primary \"%s\": %s",
                             u->master_name, whys.data);
    llmb_buf_fini(&whys);
    return rc;
}

int llmb_server_locate(const struct llmb_redis_url *u, int timeout_ms,
                       struct llmb_server *out, char **errstr)
{
    memset(out, 0, sizeof(*out));
    if (errstr != NULL)
        *errstr = NULL;
    if (u->sentinel) {
        char *err = NULL;
        int rc = locate_primary(u, timeout_ms, out, &err);
        if (errstr != NULL)
            *errstr = err;
        else
            free(err);
        return rc;
    }
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

char *llmb_ctx_error(const redisContext *c, const char *doing,
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
        *errstr = llmb_ctx_error(c, "cannot connect to", s->address,
                                 timeout_ms);
        goto fail;
    }
    if (timeout_ms > 0 && redisSetTimeout(c, tv) != REDIS_OK) {
        *errstr = llmb_ctx_error(c, "cannot set a timeout on the "
                                 "connection to",
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
    hs->user = u->user;
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
    if (u->sentinel) {
        /* The sentinels may name a primary that has just been demoted. */
        st = &hs->step[hs->nsteps++];
        st->what = "ROLE";
        st->argv[0] = "ROLE";
        st->argc = 1;
    }
}

/* The message for a server that wants a password the URL lacks. */
static char *noauth(const char *address, const char *detail)
{
    return llmb_xasprintf("redis %s requires a password, and the URL gives "
                          "none (user \"default\"); put it in the URL: "
                          "redis://:PASSWORD@host:port (%s)", address, detail);
}

char *llmb_auth_refusal(const struct llmb_handshake *hs, const char *what,
                        const redisReply *r, const char *address)
{
    const char *user = hs->user != NULL ? hs->user : "default";

    if (r == NULL || r->type != REDIS_REPLY_ERROR)
        return NULL;
    if (strncmp(r->str, "NOAUTH", 6) == 0)
        return noauth(address, r->str);
    /* Any refusal of AUTH is one of the credentials: WRONGPASS, or a
     * password sent to a server that has none configured. */
    if (strncmp(r->str, "WRONGPASS", 9) == 0 || strcmp(what, "AUTH") == 0)
        return llmb_xasprintf("redis %s refused the credentials of user "
                              "\"%s\": %s", address, user, r->str);
    if (strncmp(r->str, "NOPERM", 6) == 0)
        return llmb_xasprintf("redis %s refused %s to user \"%s\": %s",
                              address, what, user, r->str);
    return NULL;
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
    if (r->type != REDIS_REPLY_ERROR && strcmp(st->what, "ROLE") == 0) {
        const redisReply *role = r->type == REDIS_REPLY_ARRAY &&
                                 r->elements > 0 ? r->element[0] : NULL;
        if (role != NULL && role->type == REDIS_REPLY_STRING &&
            strcmp(role->str, "master") == 0)
            return 0;
        *errstr = llmb_xasprintf("redis %s, named by the sentinels, is not "
                                 "the primary (ROLE: %s); a failover is "
                                 "under way", address,
                                 role != NULL &&
                                 role->type == REDIS_REPLY_STRING ?
                                 role->str : "?");
        return LLMB_EREDIS;
    }
    if (r->type != REDIS_REPLY_ERROR)
        return 0;
    if (strcmp(st->what, "ROLE") == 0 &&
        (strncmp(r->str, "NOPERM", 6) == 0 ||
         strncasecmp(r->str, "ERR unknown command", 19) == 0)) {
        /* A user without ROLE (an ACL, a renamed command): not checked; a
         * demoted primary still answers the first write READONLY, which
         * sends the connection back to the sentinels. */
        return 0;
    }
    if ((*errstr = llmb_auth_refusal(hs, st->what, r, address)) != NULL)
        return LLMB_EAUTH;
    if (strcmp(st->what, "SELECT") == 0)
        *errstr = llmb_xasprintf("redis %s: SELECT %d failed: %s", address,
                                 hs->db, r->str);
    else if (strcmp(st->what, "CLIENT SETNAME") == 0)
        *errstr = llmb_xasprintf("redis %s: CLIENT SETNAME \"%s\" failed: "
                                 "%s", address, hs->name, r->str);
    else
        *errstr = llmb_xasprintf("redis %s: %s failed: %s", address,
                                 st->what, r->str);
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
            *errstr = llmb_ctx_error(c, "lost the connection to", address,
                                     0);
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
        rc = LLMB_EAUTH;
    } else {
        *errstr = llmb_xasprintf("redis %s: %s", address,
                                 ferr != NULL ? ferr : llmb_strerror(rc));
        free(ferr);
    }
    return rc;
}

struct llmb_write_ack llmb_write_ack;


bool llmb_fcall_writes(const char *fn, size_t len)
{
    /* The functions registered with the no-writes flag (lua/). */
    static const char *const ro[] = {"llmb_version", "llmb_stats",
                                     "llmb_dataset_read", "llmb_job"};

    if (len == 0)
        len = strlen(fn);
    for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++)
        if (strlen(ro[i]) == len && strncmp(fn, ro[i], len) == 0)
            return false;
    return true;
}

bool llmb_argv_writes(int argc, const char **argv, const size_t *argvlen)
{
    size_t len0;

    if (argc < 2)
        return false;
    len0 = argvlen != NULL ? argvlen[0] : strlen(argv[0]);
    return len0 == 5 && strncasecmp(argv[0], "FCALL", 5) == 0 &&
           llmb_fcall_writes(argv[1], argvlen != NULL ? argvlen[1]
                                                      : strlen(argv[1]));
}

void llmb_argv_copy(int argc, const char **argv, const size_t *argvlen,
                    char ***out, size_t **outlen)
{
    size_t n = argc > 0 ? (size_t)argc : 1;

    *out = llmb_xmalloc(n * sizeof(**out));
    *outlen = llmb_xmalloc(n * sizeof(**outlen));
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen != NULL ? argvlen[i] : strlen(argv[i]);
        (*out)[i] = llmb_xmalloc(len + 1);
        memcpy((*out)[i], argv[i], len);
        (*out)[i][len] = '\0';
        (*outlen)[i] = len;
    }
}

void llmb_argv_free(int argc, char **argv, size_t *argvlen)
{
    for (int i = 0; argv != NULL && i < argc; i++)
        free(argv[i]);
    free(argv);
    free(argvlen);
}

bool llmb_write_ack_check(const redisReply *r, const char *what)
{
    if (r != NULL && r->type == REDIS_REPLY_INTEGER &&
        r->integer >= llmb_write_ack.replicas)
        return true;
    llmb_write_ack.unconfirmed++;
    if (r == NULL)
        return false; /* the loss is reported where it is met */
    if (r->type == REDIS_REPLY_INTEGER)
        llmb_warn("a write is confirmed by %lld of %lld replicas after %lld "
                  "ms conn=%s (a failover now may lose it)", r->integer,
                  llmb_write_ack.replicas, llmb_write_ack.timeout_ms, what);
    else
        llmb_warn("WAIT after a write failed conn=%s: %s", what,
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    return false;
}

redisReply *llmb_write_ack_refusal(const redisReply *r)
{
    redisReply *e = llmb_xcalloc(1, sizeof(*e));

    e->type = REDIS_REPLY_ERROR;
    if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        e->str = llmb_xasprintf("NOREPLICAS the write is on the primary, but "
                                "%lld of %lld replicas confirmed it within "
                                "%lld ms (--wait-replicas)", r->integer,
                                llmb_write_ack.replicas,
                                llmb_write_ack.timeout_ms);
    else
        e->str = llmb_xasprintf("NOREPLICAS the write is on the primary, but "
                                "no replica confirmed it (--wait-replicas)");
    e->len = strlen(e->str);
    return e;
}
