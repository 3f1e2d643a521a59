/*
 * Routing for the asynchronous connection (llmb/aconn.h): one llmb_aconn
 * per primary of a Redis Cluster (and, when asked, a second one per
 * primary for blocking pops), each command sent to the primary that owns
 * its key's slot. On a plain redis:// or unix:// URL it is one connection
 * (two with blocking) that every key maps to, and commands pass straight
 * through.
 *
 * The contract of llmb/aconn.h holds per command: the reply callback is
 * called exactly once per accepted command, with the reply or with NULL
 * (connection failed, or the command could not be placed in time); the
 * reply belongs to the connection. A callback may get a NULL connection.
 *
 * Redirections are followed without the caller seeing them: MOVED reads
 * the slot map again and sends the command to the new owner, once that
 * primary's connection is ready; ASK sends ASKING and the command to the
 * node named, except FCALL, which waits until the slot's move ends (see
 * llmb/cluster.h); TRYAGAIN and CLUSTERDOWN wait and send again. A command
 * that cannot be placed within wait_ms gets NULL, or the last redirection
 * error when it came back redirected past wait_ms or more than 16 times.
 */
#ifndef LLMB_ACLUSTER_H
#define LLMB_ACLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include <llmb/aconn.h>

struct llmb_acluster;

/* Called when the command connection of primary `node` becomes ready, and
 * when a ready one is lost. */
typedef void llmb_acluster_event_fn(struct llmb_acluster *acl, size_t node,
                                    void *priv);

/* How to connect; copied by llmb_acluster_new(). */
struct llmb_acluster_opts {
    const char *url;            /* redis://, unix:// or redis+cluster:// */
    const char *name;           /* CLIENT SETNAME of every connection */
    const char *what;           /* for logs */
    bool functions;             /* as in llmb_aconn_opts, per primary */
    bool blocking;              /* a blocking connection per primary too */
    int64_t command_timeout_ms; /* as in llmb_aconn_opts */
    int64_t wait_ms;            /* longest a command waits to be placed
                                   (a slot moving, a failover); 0 = 10000 */
    llmb_acluster_event_fn *on_ready; /* may be NULL */
    llmb_acluster_event_fn *on_lost;  /* may be NULL */
    llmb_aconn_event_fn *on_blk_ready; /* a blocking connection became
                                          ready; may be NULL */
    llmb_aconn_refused_fn *on_refused; /* any of its connections was
                                          refused the credentials
                                          (llmb/aconn.h); may be NULL */
    void *priv;
};

/* Creates the router on loop; on a cluster reads the slot map (blocking,
 * from the URL's nodes) and starts connecting to every primary. Returns
 * NULL with a malloc'd message in *errstr when the URL is malformed or no
 * node of a cluster URL answers. */
struct llmb_acluster *llmb_acluster_new(struct ev_loop *loop,
                                        const struct llmb_acluster_opts *o,
                                        char **errstr);

/* Frees every connection (pending callbacks get NULL, on_lost is not
 * called); accepts NULL; not from inside one of its callbacks. */
void llmb_acluster_free(struct llmb_acluster *acl);

/* True when acl was made from a redis+cluster:// URL. */
bool llmb_acluster_enabled(const struct llmb_acluster *acl);

/* The primaries in use: their number, and the index of the one that owns
 * key's slot (-1 when unknown). Indexes are stable for the life of acl. */
size_t llmb_acluster_nnodes(const struct llmb_acluster *acl);
long llmb_acluster_node_of(struct llmb_acluster *acl, const char *key);

/* The command connection of primary i, or NULL. */
struct llmb_aconn *llmb_acluster_cmd(struct llmb_acluster *acl, size_t i);

/* Calls fn(ac, priv) for every connection open now, blocking ones too
 * (to name them, say). */
void llmb_acluster_each(struct llmb_acluster *acl, llmb_aconn_event_fn *fn,
                        void *priv);

/* Closes every blocking connection (their pending callbacks get NULL)
 * and opens no more. */
void llmb_acluster_close_blocking(struct llmb_acluster *acl);

/* True when a command (a blocking one) about key would be accepted now.
 * On a cluster a blocking command gets a connection per slot of its
 * primary, opened on first use: Redis runs one blocking command of a
 * connection at a time, and one command takes keys of one slot only. */
bool llmb_acluster_ready(struct llmb_acluster *acl, const char *key);
bool llmb_acluster_block_ready(struct llmb_acluster *acl, const char *key);

/* As llmb_aconn_command_argv() and llmb_aconn_block_argv(), sent to the
 * primary of key (the blocking connection for block). Returns 0, or
 * LLMB_EIO when that primary's connection is not ready: cb is then never
 * called and the caller still owns priv. */
int llmb_acluster_command_argv(struct llmb_acluster *acl, const char *key,
                               llmb_aconn_reply_fn *cb, void *priv, int argc,
                               const char **argv, const size_t *argvlen);
int llmb_acluster_block_argv(struct llmb_acluster *acl, const char *key,
                             int64_t block_ms, llmb_aconn_reply_fn *cb,
                             void *priv, int argc, const char **argv,
                             const size_t *argvlen);

#endif
