/*
 * An asynchronous Redis connection on a libev loop that looks after itself:
 * it connects, authenticates, selects the database, names itself (CLIENT
 * SETNAME) and, when asked to, makes sure the llmb function library is
 * loaded; when the connection drops (Redis restarted, CLIENT KILL, a command
 * stuck past its time limit) it reconnects with capped backoff and does all
 * of that again. Commands are sent only while the connection is ready; the
 * caller learns of readiness and loss through two notifications and keeps
 * whatever it must send again itself.
 *
 * The daemons use one connection for commands and a second one for blocking
 * pops (a BLPOP would hold up everything queued behind it).
 *
 * Every reply callback is called exactly once per accepted command: with the
 * reply, or with NULL when the connection failed or was freed before the
 * reply came. The reply belongs to the connection: copy out what you keep.
 */
#ifndef LLMB_ACONN_H
#define LLMB_ACONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <hiredis/hiredis.h>

struct llmb_aconn;

/* Called once per accepted command with its reply, or NULL (see above). */
typedef void llmb_aconn_reply_fn(struct llmb_aconn *ac,
                                 const redisReply *reply, void *priv);

/* Called when the connection becomes ready (set up, commands accepted) and
 * when a ready connection is lost (every pending reply callback has been
 * called with NULL by then). */
typedef void llmb_aconn_event_fn(struct llmb_aconn *ac, void *priv);

/* Called when the server refused the credentials while the connection
 * was being set up (WRONGPASS, NOAUTH, NOPERM: LLMB_EAUTH of
 * llmb/connect.h); why names the server and the user. The connection
 * has logged it and tries again with backoff, as after any failed setup;
 * a caller that has never been ready may take it as a configuration
 * error and stop instead. */
typedef void llmb_aconn_refused_fn(struct llmb_aconn *ac, const char *why,
                                   void *priv);

/* How to connect; copied by llmb_aconn_new(). */
struct llmb_aconn_opts {
    const char *url;            /* redis:// or unix:// URL (llmb/url.h) */
    const char *name;           /* CLIENT SETNAME value; NULL = none */
    bool functions;             /* ensure the llmb function library on
                                   every connect, and reload it once when
                                   FCALL answers "Function not found" */
    int64_t command_timeout_ms; /* a command unanswered this long drops the
                                   connection; 0 = 10000 */
    int64_t backoff_base_ms;    /* first reconnect delay; 0 = 100 */
    int64_t backoff_cap_ms;     /* longest reconnect delay; 0 = 5000 */
    llmb_aconn_event_fn *on_ready; /* may be NULL */
    llmb_aconn_event_fn *on_lost;  /* may be NULL */
    llmb_aconn_refused_fn *on_refused; /* may be NULL */
    void *priv;                 /* passed to on_ready, on_lost and
                                   on_refused */
    const char *what;           /* name of the connection in logs */
};

/*
 * Creates a connection on loop and starts connecting at once. Returns NULL
 * with a malloc'd message in *errstr only when the URL is malformed;
 * Redis being down is not an error (it keeps retrying). Ignores SIGPIPE
 * for the whole process.
 */
struct llmb_aconn *llmb_aconn_new(struct ev_loop *loop,
                                  const struct llmb_aconn_opts *opts,
                                  char **errstr);

/* Closes the connection: pending callbacks get NULL (on_lost is not
 * called), then the connection is freed. Accepts NULL. Must not be called
 * from inside one of this connection's callbacks. */
void llmb_aconn_free(struct llmb_aconn *ac);

/* True when commands are accepted. */
bool llmb_aconn_ready(const struct llmb_aconn *ac);

/*
 * Sends one command (argv with lengths; argvlen NULL = strlen of each).
 * cb (may be NULL) is called exactly once later. Returns 0, or LLMB_EIO
 * when the connection is not ready: then cb is never called and the caller
 * still owns priv.
 */
int llmb_aconn_command_argv(struct llmb_aconn *ac, llmb_aconn_reply_fn *cb,
                            void *priv, int argc, const char **argv,
                            const size_t *argvlen);

/* As llmb_aconn_command_argv() for a command that may legitimately take
 * up to block_ms before answering (BLPOP with a timeout): the watchdog
 * allows block_ms more than the command timeout. */
int llmb_aconn_block_argv(struct llmb_aconn *ac, int64_t block_ms,
                          llmb_aconn_reply_fn *cb, void *priv, int argc,
                          const char **argv, const size_t *argvlen);

/* Drops the connection now (as if the network failed) and reconnects with
 * backoff. Safe from inside callbacks. */
void llmb_aconn_drop(struct llmb_aconn *ac);

/* Number of commands sent and not yet answered. */
size_t llmb_aconn_pending(const struct llmb_aconn *ac);

#endif
