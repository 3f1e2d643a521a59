/*
 * How every llmb connection to Redis is set up, blocking (llmb/conn.h) or
 * asynchronous (llmb/aconn.h), in two steps written once:
 *
 *   1. where: llmb_server_locate() turns a parsed URL into the server to
 *      connect to (the URL's own server or socket, or the primary the
 *      sentinels of a redis+sentinel:// URL name, tried in turn);
 *   2. the handshake: the setup commands of a new connection (AUTH,
 *      SELECT, CLIENT SETNAME, and for a sentinel URL a ROLE that must
 *      say "master") with one judge of their replies, then the function
 *      library check (llmb/functions.h).
 *
 * llmb_server_connect() and llmb_handshake_run() do both on a blocking
 * hiredis context; the async connection sends the same steps itself and
 * judges each reply with llmb_handshake_check(). Routing (several servers
 * behind one URL) builds on these: locate, connect, handshake, per server.
 */
#ifndef LLMB_CONNECT_H
#define LLMB_CONNECT_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#include <llmb/url.h>

/* A server to connect to. Strings are owned; llmb_server_fini() frees. */
struct llmb_server {
    char *host;        /* NULL for a unix socket */
    int port;          /* 0 for a unix socket */
    char *socket_path; /* or NULL */
    char *address;     /* "host:port", "[v6]:port" or "unix:/path" */
};

/* Finds the server u names into *out: for a sentinel URL, asks each
 * sentinel in turn (SENTINEL get-master-addr-by-name) and takes the first
 * answer; otherwise no I/O. timeout_ms bounds each sentinel's connect and
 * reply (0: 5000 ms). Returns 0, or LLMB_EIO (no sentinel reachable),
 * LLMB_EAUTH (a sentinel refused the credentials of the URL's
 * sentinel_user/sentinel_password), LLMB_EREDIS (a sentinel refused, or
 * knows no such primary) or LLMB_EPROTO with a
 * malloc'd message naming every sentinel's answer in *errstr (if not
 * NULL). */
int llmb_server_locate(const struct llmb_redis_url *u, int timeout_ms,
                       struct llmb_server *out, char **errstr);

/* Frees the strings of s and zeroes it; accepts a zeroed struct. */
void llmb_server_fini(struct llmb_server *s);

/* Opens a blocking connection to s; timeout_ms (0 = none) bounds the
 * connect and every command after it. Returns the context, or NULL with
 * a malloc'd message in *errstr, such as
 *   cannot connect to redis 127.0.0.1:6390: Connection refused */
redisContext *llmb_server_connect(const struct llmb_server *s, int timeout_ms,
                                  char **errstr);

/* Describes the I/O error of the blocking context c (may be NULL) for a
 * user, in a malloc'd message: "<doing> redis <address>: <why>", or
 * "...: no answer within <timeout_ms> ms" for a timeout. */
char *llmb_ctx_error(const redisContext *c, const char *doing,
                     const char *address, int timeout_ms);

/* The setup commands of a connection, in the order they are sent. */
#define LLMB_HANDSHAKE_MAX 4
struct llmb_handshake_step {
    const char *what;      /* "AUTH", "SELECT", "CLIENT SETNAME", "ROLE" */
    int argc;
    const char *argv[4];
};
struct llmb_handshake {
    struct llmb_handshake_step step[LLMB_HANDSHAKE_MAX];
    int nsteps;
    int db;
    char dbtext[16];       /* argv of SELECT points here */
    const char *name;      /* CLIENT SETNAME value, or NULL */
    const char *user;      /* the URL's user, or NULL: "default" */
};

/* Fills hs with the setup of a connection for u named client_name (may be
 * NULL). hs points into u and client_name: they must outlive it. */
void llmb_handshake_init(struct llmb_handshake *hs,
                         const struct llmb_redis_url *u,
                         const char *client_name);

/* Judges the reply r (NULL when the connection failed) to step i sent to
 * the server named address. Returns 0 when the step succeeded; otherwise
 * LLMB_EIO (no reply), LLMB_EAUTH (the server refused the credentials:
 * any error of AUTH, NOAUTH, or NOPERM for a setup command) or
 * LLMB_EREDIS with
 * a malloc'd message for the user in *errstr, such as
 *   redis 127.0.0.1:6390 refused the credentials of user "alice":
 *   WRONGPASS invalid username-password pair or user is disabled.
 *   redis 127.0.0.1:6390 requires a password, and the URL gives none
 *   (user "default"); put it in the URL: ... */
int llmb_handshake_check(const struct llmb_handshake *hs, int i,
                         const redisReply *r, const char *address,
                         char **errstr);

/* When the error reply r to the setup command what ("AUTH", "PING"...)
 * refuses the credentials of hs (WRONGPASS, NOAUTH, NOPERM, any error
 * of AUTH), a malloc'd
 * message for the user naming address and the user; otherwise NULL. */
char *llmb_auth_refusal(const struct llmb_handshake *hs, const char *what,
                        const redisReply *r, const char *address);

/* Runs the steps of hs on the blocking context c, then, if functions,
 * llmb_functions_ensure(). Returns 0 or an llmb_err (LLMB_EAUTH for
 * refused credentials, as llmb_handshake_check()) with a malloc'd
 * message in *errstr. On LLMB_EIO, c is unusable. */
int llmb_handshake_run(redisContext *c, const struct llmb_handshake *hs,
                       const char *address, bool functions, char **errstr);

/*
 * Acknowledgement of writes by replicas, for the whole process: when
 * replicas > 0, every FCALL of a function that may write (not FCALL_RO,
 * not a function that only reads: llmb_argv_writes()) sent by llmb/conn.h
 * or llmb/aconn.h is followed on the same connection by WAIT <replicas>
 * <timeout_ms>. The blocking connection returns the FCALL's reply once
 * WAIT has answered, and when fewer
 * replicas confirmed it in time, an error reply "NOREPLICAS ..." instead
 * of a successful one: the write is made but not acknowledged (llmb-push
 * reports its jobs not confirmed). The async one calls the FCALL's
 * callback at once and judges WAIT after: a write it cannot take back
 * (a claim, a completion); it keeps one WAIT in flight per connection,
 * sent after the last write of a loop pass (a WAIT covers every earlier
 * write on its connection), and a command sent behind a WAIT gets that
 * WAIT's time on top of its own. Either logs a warning for a shortfall
 * and counts it in unconfirmed. Set by llmb_config_load() from
 * --wait-replicas and --wait-replicas-ms; 0 (the default) sends no WAIT.
 */
struct llmb_write_ack {
    long long replicas;
    long long timeout_ms;
    unsigned long long unconfirmed; /* writes short of replicas, ever */
};
extern struct llmb_write_ack llmb_write_ack;

/* False for the functions that write nothing (fn: the function's name,
 * len bytes; len 0 = NUL-terminated): no WAIT follows them. */
bool llmb_fcall_writes(const char *fn, size_t len);

/* True when the command argv (lengths argvlen, or NULL: NUL-terminated)
 * is an FCALL of a function that may write: a WAIT follows it, and lost
 * in flight it is not sent again. */
bool llmb_argv_writes(int argc, const char **argv, const size_t *argvlen);

/* Copies the command argv (lengths argvlen, or NULL: NUL-terminated), to
 * send it again later: argc NUL-terminated strings into *out and their
 * lengths into *outlen. Free with llmb_argv_free(). */
void llmb_argv_copy(int argc, const char **argv, const size_t *argvlen,
                    char ***out, size_t **outlen);

/* Frees a copy made by llmb_argv_copy(); accepts NULL arrays. */
void llmb_argv_free(int argc, char **argv, size_t *argvlen);

/* Judges the reply r of a WAIT sent after a write (NULL: connection
 * lost): true when enough replicas confirmed; else logs (what names the
 * connection), counts and returns false. */
bool llmb_write_ack_check(const redisReply *r, const char *what);

/* A new error reply (free with freeReplyObject) that stands for a write
 * whose WAIT answered r (NULL: no answer) short of the replicas asked. */
redisReply *llmb_write_ack_refusal(const redisReply *r);

#endif
