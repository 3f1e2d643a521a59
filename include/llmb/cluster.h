/*
 * Redis Cluster routing for the synchronous connection: the hash slot of a
 * key, the slot map read from CLUSTER SHARDS (or CLUSTER SLOTS), MOVED and
 * ASK redirections, and a router that keeps one llmb_conn per primary in
 * use and sends each command to the primary that owns its key's slot.
 *
 * A router made from a plain redis:// or unix:// URL has one node that owns
 * every slot, so a program written against the router runs unchanged on a
 * single server and on a cluster (redis+cluster://host:port,host:port).
 */
#ifndef LLMB_CLUSTER_H
#define LLMB_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include <llmb/conn.h>

#define LLMB_CLUSTER_SLOTS 16384

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the checksum
 * Redis Cluster hashes keys with. */
uint16_t llmb_crc16(const char *buf, size_t len);

/* The hash slot (0..16383) of the key of len bytes: CRC16 of its hash tag
 * (the bytes between the first "{" and the first "}" after it, when there
 * is at least one) or of the whole key, modulo 16384. */
unsigned llmb_cluster_keyslot(const char *key, size_t len);

/* A redirection parsed from an error reply. */
enum llmb_redirect_kind {
    LLMB_REDIRECT_NONE = 0,
    LLMB_REDIRECT_MOVED, /* the slot has a new owner: update the map */
    LLMB_REDIRECT_ASK    /* the slot is being migrated: ask once, with ASKING */
};

struct llmb_redirect {
    enum llmb_redirect_kind kind;
    unsigned slot;
    char host[256];
    int port;
};

/* Parses "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>" (an
 * error reply's text, IPv6 hosts as the last colon separates the port).
 * Returns the kind; LLMB_REDIRECT_NONE for any other text, for a slot out
 * of range or a malformed address. */
enum llmb_redirect_kind llmb_redirect_parse(const char *err,
                                            struct llmb_redirect *out);

/* One primary of a slot map. */
struct llmb_cluster_node {
    char *host;
    int port;
};

/* Which primary owns each slot. Lifecycle: zero it, fill it with
 * llmb_slotmap_parse(), release it with llmb_slotmap_fini(). */
struct llmb_slotmap {
    struct llmb_cluster_node *nodes; /* the primaries that own slots */
    size_t nnodes;
    int16_t owner[LLMB_CLUSTER_SLOTS]; /* index into nodes, -1 = none */
};

/* Fills m from a reply of CLUSTER SHARDS (shards=true) or CLUSTER SLOTS.
 * Of each shard it takes the primary; a node is named by its "endpoint"
 * (or "ip" when the endpoint is "?" or empty). Returns 0, or LLMB_EPROTO
 * with a malloc'd message in *errstr (if not NULL) for a reply of another
 * shape; m is then empty. */
int llmb_slotmap_parse(const redisReply *r, bool shards,
                       struct llmb_slotmap *m, char **errstr);
void llmb_slotmap_fini(struct llmb_slotmap *m);

/*
 * The router. Lifecycle: llmb_cluster_new() parses the URL (no I/O);
 * llmb_cluster_connect() reads the slot map and connects to every primary
 * (each connection runs the llmb_conn handshake, which loads the function
 * library); commands connect lazily to the primaries they need;
 * llmb_cluster_free() closes everything.
 */
struct llmb_cluster;

/* As llmb_conn_new(), for a redis://, unix:// or redis+cluster:// URL.
 * Never returns NULL: a bad URL is reported by llmb_cluster_connect(). */
struct llmb_cluster *llmb_cluster_new(const char *url, const char *client_name,
                                      int timeout_ms);

/* Reads the slot map (from the known primaries, then the seeds of the
 * URL) and connects to every primary, loading the function library where
 * it is missing. Returns 0, or an llmb_err with a malloc'd message in
 * *errstr (if not NULL). On a single server: llmb_conn_connect(). */
int llmb_cluster_connect(struct llmb_cluster *cl, char **errstr);

/* True when cl was made from a redis+cluster:// URL. */
bool llmb_cluster_enabled(const struct llmb_cluster *cl);

/* Reads the slot map again (after a MOVED, a failover, a new shard), at
 * most once per 100 ms: asked again sooner, it returns the result of the
 * last read. It asks the node that answered last over the connection
 * kept from then, then the primaries over their open connections, then
 * new connections (connect and answer within 1 s) to the other primaries
 * and the seeds, and the nodes whose last connect or command failed last
 * of all. On a single server does nothing and returns 0. */
int llmb_cluster_refresh(struct llmb_cluster *cl);

/* Installs map m, read by the caller (the asynchronous router reads it
 * over its own connections); takes m's contents, as a read by
 * llmb_cluster_refresh() would. An empty map is ignored. */
void llmb_cluster_map_set(struct llmb_cluster *cl, struct llmb_slotmap *m);

/* How many times cl has sent CLUSTER SHARDS (or SLOTS) since it was made. */
long long llmb_cluster_map_reads(const struct llmb_cluster *cl);

/* Sends the commands that name no key (see llmb_cluster_command()) to
 * primary i of the map instead of the first (when the first is away); an
 * index past the map means the first. */
void llmb_cluster_set_keyless(struct llmb_cluster *cl, size_t i);

/* The connection of the primary that owns key's slot, connected (and its
 * function library loaded); NULL when no primary is known for the slot or
 * it cannot be reached (see llmb_cluster_errstr()). Owned by cl; valid
 * until the next refresh. */
struct llmb_conn *llmb_cluster_conn_for_key(struct llmb_cluster *cl,
                                            const char *key);

/* For a single server: its connection, not connected by this call (NULL
 * on a cluster). Owned by cl. */
struct llmb_conn *llmb_cluster_conn0(struct llmb_cluster *cl);

/* The primaries of the current map: their number, and the connection and
 * "host:port" name of primary i (connecting it if need be: NULL when it
 * cannot be reached). Indexes change with a refresh. */
size_t llmb_cluster_nnodes(const struct llmb_cluster *cl);
struct llmb_conn *llmb_cluster_node_conn(struct llmb_cluster *cl, size_t i);
const char *llmb_cluster_node_name(const struct llmb_cluster *cl, size_t i);

/* The index of the primary that owns key's slot in the current map, or -1
 * when none does (read the map again with llmb_cluster_refresh()). */
int llmb_cluster_owner(const struct llmb_cluster *cl, const char *key);

/* The redis:// URL of primary i, with the cluster URL's credentials
 * (the caller frees it); for a single server, the URL given. */
char *llmb_cluster_node_url(const struct llmb_cluster *cl, size_t i);

/*
 * Runs one command about key (argv; argvlen NULL = strlen of each) on the
 * primary that owns its slot and returns the reply for the caller to
 * freeReplyObject(). Follows MOVED (refreshing the map) and ASK (ASKING,
 * then the command, on the node named), waits with backoff on TRYAGAIN,
 * CLUSTERDOWN and on a primary that cannot be reached until the cluster
 * names a new one, at most about timeout_ms (10 s when 0) in all.
 * An FCALL answered ASK is not sent to the importing node: an llmb
 * function reads and writes keys it derives from its one declared key,
 * and on a queue whose keys are half moved it would see half a queue; it
 * waits at the same node until the slot's move ends (MOVED). Returns NULL
 * when the command could not be run (llmb_cluster_errstr() says why; for
 * an FCALL lost in flight, that it may or may not have run).
 */
redisReply *llmb_cluster_command_argv(struct llmb_cluster *cl, const char *key,
                                      int argc, const char **argv,
                                      const size_t *argvlen);

/*
 * The same for callers that do not name the key: it is taken from the
 * command (the first key of FCALL, FCALL_RO, EVAL and EVALSHA; none for
 * TIME, PING, INFO, CLIENT, CLUSTER, FUNCTION, MULTI, EXEC, ROLE, SCAN,
 * DBSIZE and CONFIG, which go to the first primary (see
 * llmb_cluster_set_keyless()); else the first
 * argument). printf-style (redisCommand format) or argv.
 */
redisReply *llmb_cluster_command(struct llmb_cluster *cl, const char *fmt,
                                 ...);
redisReply *llmb_cluster_commandargv(struct llmb_cluster *cl, int argc,
                                     const char **argv,
                                     const size_t *argvlen);

/* Pipelining across primaries: commands queued with
 * llmb_cluster_append_argv() (key taken as above; 0, or LLMB_EIO when its
 * primary cannot be reached, which drops the commands queued before it
 * too) are sent to their primaries at the next
 * llmb_cluster_get_reply(), which returns their replies in the order they
 * were queued (NULL on a connection failure: the replies still due are
 * then lost, see llmb_conn_get_reply()). Redirections are not followed
 * here: a MOVED comes back as the reply, and the map is read again. */
int llmb_cluster_append_argv(struct llmb_cluster *cl, int argc,
                             const char **argv, const size_t *argvlen);
redisReply *llmb_cluster_get_reply(struct llmb_cluster *cl);

/* The last error message ("" if none). Owned by cl. */
const char *llmb_cluster_errstr(struct llmb_cluster *cl);

/* Closes every connection and frees cl; accepts NULL. */
void llmb_cluster_free(struct llmb_cluster *cl);

#endif
