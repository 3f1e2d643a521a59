/*
 * The synchronous Redis connection (hiredis 0.14 blocking API), for the
 * CLI tools, llmb-push and tests. It connects from a Redis URL,
 * authenticates, selects the db, names itself, loads the llmb function
 * library, and survives a dropped connection or a flushed library by
 * retrying a command once. The event-loop daemons use the async connection
 * instead.
 */
#ifndef LLMB_CONN_H
#define LLMB_CONN_H

#include <stddef.h>

#include <hiredis/hiredis.h>

struct llmb_conn;

/* Makes a connection object for url; no I/O yet. client_name (may be NULL)
 * is sent with CLIENT SETNAME and must not hold spaces; timeout_ms bounds
 * the connect and every command (0 = no limit; a blocking command such as
 * BLMOVE needs a timeout longer than its own, or 0). Never returns NULL: a
 * bad URL is reported by llmb_conn_connect(). Ignores SIGPIPE process-wide
 * if it has its default action, as hiredis writes with write(2). */
struct llmb_conn *llmb_conn_new(const char *url, const char *client_name,
                                int timeout_ms);

/* (Re)connects: TCP or unix socket, AUTH [user] password, SELECT db,
 * CLIENT SETNAME, then llmb_functions_ensure(). Returns 0, or LLMB_ECONFIG
 * (bad URL), LLMB_EIO (cannot connect), LLMB_EREDIS (e.g. AUTH refused) or
 * LLMB_EVERSION (Redis < 7) with a malloc'd message in *errstr (if not
 * NULL), also kept for llmb_conn_errstr(), such as
 *   cannot connect to redis 127.0.0.1:6390: Connection refused */
int llmb_conn_connect(struct llmb_conn *c, char **errstr);

/* The hiredis context, or NULL while not connected. Owned by c; it changes
 * when c reconnects. */
redisContext *llmb_conn_ctx(struct llmb_conn *c);

/* Runs a command (redisCommand format) and returns its reply for the
 * caller to freeReplyObject(); error replies are replies. Connects first
 * if needed. On an I/O error it reconnects once and sends the command
 * again, except an FCALL (a function that may write), which may or may
 * not have run: that returns NULL with an error saying so. On
 * "ERR Function not found" it reloads the library and retries once.
 * Returns NULL only when the connection failed; see llmb_conn_errstr(). */
redisReply *llmb_conn_command(struct llmb_conn *c, const char *fmt, ...);
redisReply *llmb_conn_commandargv(struct llmb_conn *c, int argc,
                                  const char **argv, const size_t *argvlen);

/* Pipelining: queue commands with llmb_conn_append_argv() (0, or LLMB_EIO
 * when not connected and connecting failed), then read one reply per
 * command with llmb_conn_get_reply() (NULL on a connection failure, after
 * which the queued replies are lost and the next call reconnects). Nothing
 * is retried here: the caller knows which commands it may resend. */
int llmb_conn_append_argv(struct llmb_conn *c, int argc, const char **argv,
                          const size_t *argvlen);
redisReply *llmb_conn_get_reply(struct llmb_conn *c);
/* Sends the commands queued so far without waiting for a reply, so that
 * Redis works on them while the caller prepares the next ones (else they
 * go with the next llmb_conn_get_reply()). 0, or LLMB_EIO on a connection
 * failure, as llmb_conn_get_reply() fails. */
int llmb_conn_flush(struct llmb_conn *c);

/* Describes reply r for an error message ("an array of 5 elements", "the
 * integer 3", "the string \"x\"", "nil", "no reply") into buf of n bytes;
 * returns buf. */
const char *llmb_reply_describe(const redisReply *r, char *buf, size_t n);

/* The last error message ("" if none). Owned by c; valid until the next
 * call on c. */
const char *llmb_conn_errstr(struct llmb_conn *c);

/* Closes and frees c; accepts NULL. */
void llmb_conn_free(struct llmb_conn *c);

#endif
