/*
 * The asynchronous router (include/llmb/acluster.h), a layer above
 * lib/aconn.c: it never touches hiredis's async API itself.
 *
 * Flow. On a cluster the first slot map is read with the synchronous
 * router (lib/cluster.c, which never connects to the primaries here: it
 * only reads and keeps maps) and every primary gets an llmb_aconn, which
 * does its own handshake, library load and reconnects. Later reads go
 * out as CLUSTER SHARDS on a ready command connection (the one that
 * answered last first) without blocking the loop; the synchronous read,
 * with its short connect timeout, only when none is ready.
 *
 * A command travels as a struct acmd holding a copy of its arguments;
 * its reply is looked at before the caller's callback runs: MOVED reads
 * the map again (unless it names the new owner already: the first of a
 * burst of MOVED read it) and parks the command; ASK sends ASKING and
 * the command at the node named (not for FCALL, parked instead);
 * TRYAGAIN and CLUSTERDOWN park it. A parked command
 * waits on its own timer with backoff (doubled on every park) and is sent
 * again once its primary's connection is ready, or gets NULL past its
 * deadline. A command whose slot has no owner reads the map again, at
 * most every REFRESH_MIN_MS. A redirection past the deadline, or past the
 * 16th of one command, goes to the caller as the error it is. READONLY
 * (a demoted primary) reads the map and parks the command too. The map
 * is read only then: after a MOVED, a READONLY, a lost primary (and every
 * second while one is not ready: a failover is found that way), a slot
 * without owner; every read is REFRESH_MIN_MS after the last at least,
 * one at a time. After each read a timer closes the connections of nodes
 * that left the map, so that a demoted primary gets nothing more.
 *
 * Nodes are kept by "host:port" and never renumbered, so the indexes a
 * caller holds stay valid; a primary that left the map keeps its slot in
 * the array with no connection.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llmb/acluster.h>
#include <llmb/cluster.h>
#include <llmb/connect.h>
#include <llmb/err.h>
#include <llmb/list.h>
#include <llmb/log.h>
#include <llmb/url.h>
#include <llmb/util.h>

#define DEFAULT_WAIT_MS 10000
#define PAUSE_MIN_MS 10
#define PAUSE_MAX_MS 500
/* The most redirections (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) one command
 * follows, as the blocking router (lib/cluster.c) does. */
#define REDIRECTS_MAX 16
/* The least time between two reads of the map asked for by commands
 * whose slot has no owner: each command of the slot's queues asks. */
#define REFRESH_MIN_MS 100

/* A blocking connection: per slot on a cluster (a blocking command holds
 * its connection, and takes the keys of one slot), one on a server. */
struct bconn {
    unsigned slot;
    struct llmb_aconn *ac;
    struct bconn *next;
};

struct anode {
    struct llmb_acluster *acl;
    size_t index;
    char *name;               /* "host:port"; the URL for a single server */
    char *url;
    struct llmb_aconn *cmd;   /* NULL once the primary left the map */
    struct bconn *blk;        /* made on first use */
};

/* One command in flight or parked. */
struct acmd {
    struct llmb_acluster *acl;
    char *key;
    int argc;
    char **argv;
    size_t *argvlen;
    llmb_aconn_reply_fn *cb;
    void *priv;
    bool blocking;
    int64_t block_ms;
    int64_t deadline_ms;      /* monotonic: NULL to cb after this */
    int64_t pause_ms;
    int redirects;            /* redirections followed so far */
    char *why;                /* why it is parked, for the log */
    ev_timer timer;           /* while parked */
    struct acmd *prev, *next; /* the parked list */
};

struct llmb_acluster {
    struct ev_loop *loop;
    struct llmb_cluster *map; /* slot maps only; NULL for a single server */
    char *url;
    char *name, *what;
    bool functions, blocking, freeing;
    int64_t timeout_ms, wait_ms;
    llmb_acluster_event_fn *on_ready, *on_lost;
    llmb_aconn_event_fn *on_blk_ready;
    llmb_aconn_refused_fn *on_refused;
    void *priv;
    struct anode **nodes;
    size_t nnodes;
    struct acmd *parked;
    ev_timer refresh;
    ev_timer prune;           /* closes nodes that left the map, soon after
                                 a read (not inside a reply callback) */
    int64_t refreshed_ms;     /* monotonic: the last read of the map */
    struct anode *reading;    /* the node a read of the map is sent to */
    size_t answered;          /* the node that answered the last read */
};

static void acmd_free(struct acmd *c)
{
    llmb_argv_free(c->argc, c->argv, c->argvlen);
    free(c->key);
    free(c->why);
    free(c);
}

static void node_ready_cb(struct llmb_aconn *ac, void *priv)
{
    struct anode *n = priv;

    (void)ac;
    if (n->acl->on_ready != NULL)
        n->acl->on_ready(n->acl, n->index, n->acl->priv);
}

static void map_refresh(struct llmb_acluster *acl);

static void node_refused_cb(struct llmb_aconn *ac, const char *why,
                            void *priv)
{
    struct anode *n = priv;

    if (n->acl->on_refused != NULL)
        n->acl->on_refused(ac, why, n->acl->priv);
}

static void node_lost_cb(struct llmb_aconn *ac, void *priv)
{
    struct anode *n = priv;

    (void)ac;
    /* A failover, maybe: the other primaries know soon. */
    map_refresh(n->acl);
    if (n->acl->on_lost != NULL)
        n->acl->on_lost(n->acl, n->index, n->acl->priv);
}

/* The blocking connection of node n for key, opened if need be (and
 * blocking connections are wanted); NULL otherwise. */
static struct llmb_aconn *blk_for(struct anode *n, const char *key)
{
    struct llmb_acluster *acl = n->acl;
    unsigned slot = acl->map != NULL ? llmb_cluster_keyslot(key, strlen(key))
                                     : 0;
    struct llmb_aconn_opts o;
    struct bconn *b;
    char *what;

    for (b = n->blk; b != NULL; b = b->next)
        if (b->slot == slot)
            return b->ac;
    if (!acl->blocking || n->url == NULL || n->cmd == NULL)
        return NULL;
    what = acl->map != NULL
               ? llmb_xasprintf("%s-blocking@%s/%u", acl->what, n->name, slot)
               : llmb_xstrdup("blocking");
    memset(&o, 0, sizeof(o));
    o.url = n->url;
    o.name = acl->name;
    o.command_timeout_ms = acl->timeout_ms;
    o.on_ready = acl->on_blk_ready;
    o.on_refused = acl->on_refused;
    o.priv = acl->priv;
    o.what = what;
    b = llmb_xcalloc(1, sizeof(*b));
    b->slot = slot;
    b->ac = llmb_aconn_new(acl->loop, &o, NULL);
    b->next = n->blk;
    n->blk = b;
    free(what);
    return b->ac;
}

static void blk_close(struct anode *n)
{
    while (n->blk != NULL) {
        struct bconn *b = n->blk;
        n->blk = b->next;
        llmb_aconn_free(b->ac);
        free(b);
    }
}

/* Opens the command connection of node n to url (and, on a single server,
 * its blocking one). */
static void node_connect(struct anode *n, const char *url)
{
    struct llmb_acluster *acl = n->acl;
    struct llmb_aconn_opts o;
    char *what = llmb_xasprintf("%s@%s", acl->what, n->name);
    char *err = NULL;

    free(n->url);
    n->url = llmb_xstrdup(url);
    memset(&o, 0, sizeof(o));
    o.url = url;
    o.name = acl->name;
    o.functions = acl->functions;
    o.command_timeout_ms = acl->timeout_ms;
    o.on_ready = node_ready_cb;
    o.on_lost = node_lost_cb;
    o.on_refused = node_refused_cb;
    o.priv = n;
    o.what = acl->map != NULL ? what : acl->what;
    n->cmd = llmb_aconn_new(acl->loop, &o, &err);
    if (n->cmd == NULL) {
        llmb_error("cannot connect to redis %s: %s", n->name, err);
        free(err);
    }
    if (acl->map == NULL)
        blk_for(n, "");
    free(what);
}

/* The node named name, created (and connecting) if new. */
static struct anode *node_get(struct llmb_acluster *acl, const char *name,
                              size_t map_index)
{
    struct anode *n;
    char *url;

    for (size_t i = 0; i < acl->nnodes; i++) {
        n = acl->nodes[i];
        if (strcmp(n->name, name) != 0)
            continue;
        if (n->cmd == NULL) {
            /* It left the map and came back (a primary again). */
            url = llmb_cluster_node_url(acl->map, map_index);
            node_connect(n, url);
            free(url);
        }
        return n;
    }
    n = llmb_xcalloc(1, sizeof(*n));
    n->acl = acl;
    n->index = acl->nnodes;
    n->name = llmb_xstrdup(name);
    acl->nodes = llmb_xrealloc(acl->nodes,
                               (acl->nnodes + 1) * sizeof(*acl->nodes));
    acl->nodes[acl->nnodes++] = n;
    url = acl->map != NULL ? llmb_cluster_node_url(acl->map, map_index)
                           : llmb_xstrdup(acl->url);
    node_connect(n, url);
    free(url);
    return n;
}

static void map_installed(struct llmb_acluster *acl)
{
    for (size_t i = 0; i < llmb_cluster_nnodes(acl->map); i++)
        node_get(acl, llmb_cluster_node_name(acl->map, i), i);
    if (!ev_is_active(&acl->prune)) {
        ev_timer_set(&acl->prune, 0.0, 0.0);
        ev_timer_start(acl->loop, &acl->prune);
    }
}

static void map_send(struct llmb_acluster *acl, struct anode *n, bool shards);

/* The answer to CLUSTER SHARDS (or SLOTS) sent by map_send(). */
static void map_reply(struct llmb_aconn *ac, const redisReply *r, void *priv,
                      bool shards)
{
    struct llmb_acluster *acl = priv;
    struct anode *n = acl->reading;
    struct llmb_slotmap m;
    char *err = NULL;

    (void)ac;
    acl->reading = NULL;
    if (r == NULL || acl->freeing || n == NULL)
        return; /* the next trigger reads again */
    if (shards && r->type == REDIS_REPLY_ERROR &&
        strncasecmp(r->str, "ERR unknown subcommand", 22) == 0) {
        map_send(acl, n, false);
        return;
    }
    if (llmb_slotmap_parse(r, shards, &m, &err) != 0) {
        llmb_warn("cannot read the redis cluster's slot map from %s: %s",
                  n->name, err);
        free(err);
        return;
    }
    acl->answered = n->index;
    llmb_cluster_map_set(acl->map, &m);
    map_installed(acl);
}

static void map_shards_cb(struct llmb_aconn *ac, const redisReply *r,
                          void *priv)
{
    map_reply(ac, r, priv, true);
}

static void map_slots_cb(struct llmb_aconn *ac, const redisReply *r,
                         void *priv)
{
    map_reply(ac, r, priv, false);
}

/* Sends CLUSTER SHARDS (or SLOTS) on n's command connection. */
static void map_send(struct llmb_acluster *acl, struct anode *n, bool shards)
{
    const char *argv[] = {"CLUSTER", shards ? "SHARDS" : "SLOTS"};

    if (llmb_aconn_command_argv(n->cmd, shards ? map_shards_cb : map_slots_cb,
                                acl, 2, argv, NULL) == 0)
        acl->reading = n;
}

/* Reads the map again, at most once per REFRESH_MIN_MS and one read at a
 * time: over the command connection of the node that answered the last
 * read, else of any ready primary, without waiting (the answer installs
 * the map when it comes); only when no connection is ready, with the
 * blocking router's read, which connects with a short timeout. Safe
 * inside reply callbacks: it creates nodes for new primaries but frees
 * none (a timer closes the nodes that left the map). */
static void map_refresh(struct llmb_acluster *acl)
{
    struct anode *n = NULL;

    if (acl->map == NULL || acl->reading != NULL ||
        llmb_mono_ms() - acl->refreshed_ms < REFRESH_MIN_MS)
        return;
    acl->refreshed_ms = llmb_mono_ms();
    if (acl->answered < acl->nnodes &&
        llmb_aconn_ready(acl->nodes[acl->answered]->cmd))
        n = acl->nodes[acl->answered];
    for (size_t i = 0; n == NULL && i < acl->nnodes; i++)
        if (llmb_aconn_ready(acl->nodes[i]->cmd))
            n = acl->nodes[i];
    if (n != NULL) {
        map_send(acl, n, true);
        if (acl->reading != NULL)
            return;
    }
    if (llmb_cluster_refresh(acl->map) != 0) {
        llmb_warn("cannot read the redis cluster's slot map: %s",
                  llmb_cluster_errstr(acl->map));
        return;
    }
    map_installed(acl);
}

/* The node that owns key's slot, or NULL. */
static struct anode *route(struct llmb_acluster *acl, const char *key)
{
    int owner;

    if (acl->map == NULL)
        return acl->nodes[0];
    owner = llmb_cluster_owner(acl->map, key);
    if (owner < 0) {
        /* (A slot left without owner by a failover keeps it for a
         * while: its commands park, and ask again at most so often.) */
        map_refresh(acl);
        owner = llmb_cluster_owner(acl->map, key);
        if (owner < 0)
            return NULL;
    }
    return node_get(acl, llmb_cluster_node_name(acl->map, (size_t)owner),
                    (size_t)owner);
}

static struct anode *node_by_address(struct llmb_acluster *acl,
                                     const char *host, int port)
{
    char *name = llmb_hostport(host, port);
    struct anode *n = NULL;

    for (size_t i = 0; i < acl->nnodes; i++)
        if (strcmp(acl->nodes[i]->name, name) == 0)
            n = acl->nodes[i];
    free(name);
    return n;
}

/* True when the map names the node of redirection rd as the owner of
 * key's slot. */
static bool map_names_owner(const struct llmb_acluster *acl, const char *key,
                            const struct llmb_redirect *rd)
{
    int owner = llmb_cluster_owner(acl->map, key);
    char *name = NULL;
    bool same;

    if (owner < 0)
        return false;
    name = llmb_hostport(rd->host, rd->port);
    same = strcmp(llmb_cluster_node_name(acl->map, (size_t)owner), name) == 0;
    free(name);
    return same;
}

static bool is_fcall(const struct acmd *c)
{
    return strcasecmp(c->argv[0], "FCALL") == 0 ||
           strcasecmp(c->argv[0], "FCALL_RO") == 0;
}

static void acmd_reply(struct llmb_aconn *ac, const redisReply *r,
                       void *priv);

/* Sends c on node n's connection. Returns 0 or LLMB_EIO. */
static int acmd_send(struct anode *n, struct acmd *c, bool asking)
{
    struct llmb_aconn *ac = c->blocking ? blk_for(n, c->key) : n->cmd;
    const char *ask[] = {"ASKING"};

    if (ac == NULL || !llmb_aconn_ready(ac))
        return LLMB_EIO;
    if (asking &&
        llmb_aconn_command_argv(ac, NULL, NULL, 1, ask, NULL) != 0)
        return LLMB_EIO;
    if (c->blocking)
        return llmb_aconn_block_argv(ac, c->block_ms, acmd_reply, c, c->argc,
                                     (const char **)c->argv, c->argvlen);
    return llmb_aconn_command_argv(ac, acmd_reply, c, c->argc,
                                   (const char **)c->argv, c->argvlen);
}

static void parked_unlink(struct llmb_acluster *acl, struct acmd *c)
{
    LLMB_LIST_REMOVE(acl->parked, c);
}

/* Ends c with NULL for its caller (it could not be placed). */
static void acmd_give_up(struct acmd *c)
{
    llmb_warn("redis cluster: gave up sending %s key=%s: %s", c->argv[0],
              c->key, c->why != NULL ? c->why : "?");
    if (c->cb != NULL)
        c->cb(NULL, NULL, c->priv);
    acmd_free(c);
}

static void park_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct acmd *c = t->data;
    struct llmb_acluster *acl = c->acl;
    struct anode *n;

    (void)loop;
    (void)revents;
    parked_unlink(acl, c);
    n = route(acl, c->key);
    if (n != NULL && acmd_send(n, c, false) == 0)
        return;
    if (llmb_mono_ms() >= c->deadline_ms) {
        acmd_give_up(c);
        return;
    }
    c->pause_ms = c->pause_ms * 2 > PAUSE_MAX_MS ? PAUSE_MAX_MS
                                                 : c->pause_ms * 2;
    LLMB_LIST_INSERT(acl->parked, c);
    ev_timer_set(&c->timer, (ev_tstamp)c->pause_ms / 1000.0, 0.0);
    ev_timer_start(acl->loop, &c->timer);
}

/* Parks c to be sent again after a pause (why: for the log). */
static void acmd_park(struct acmd *c, const char *why)
{
    struct llmb_acluster *acl = c->acl;

    free(c->why);
    c->why = llmb_xstrdup(why);
    if (c->pause_ms == 0)
        c->pause_ms = PAUSE_MIN_MS;
    else
        c->pause_ms = c->pause_ms * 2 > PAUSE_MAX_MS ? PAUSE_MAX_MS
                                                     : c->pause_ms * 2;
    llmb_debug("redis cluster: %s key=%s: %s; trying again in %lld ms",
               c->argv[0], c->key, why, (long long)c->pause_ms);
    ev_timer_init(&c->timer, park_cb, (ev_tstamp)c->pause_ms / 1000.0, 0.0);
    c->timer.data = c;
    LLMB_LIST_INSERT(acl->parked, c);
    ev_timer_start(acl->loop, &c->timer);
}

/* Counts one more redirection of c: true when it went past
 * REDIRECTS_MAX or its deadline, and is to be sent no more. */
static bool acmd_spent(struct acmd *c)
{
    c->redirects++;
    return c->redirects > REDIRECTS_MAX || llmb_mono_ms() >= c->deadline_ms;
}

static void acmd_reply(struct llmb_aconn *ac, const redisReply *r,
                       void *priv)
{
    struct acmd *c = priv;
    struct llmb_redirect rd;
    enum llmb_redirect_kind kind;

    if (r != NULL && r->type == REDIS_REPLY_ERROR && !c->acl->freeing) {
        kind = llmb_redirect_parse(r->str, &rd);
        if ((kind != LLMB_REDIRECT_NONE ||
             strncmp(r->str, "TRYAGAIN", 8) == 0 ||
             strncmp(r->str, "CLUSTERDOWN", 11) == 0) &&
            acmd_spent(c)) {
            /* No more tries: the caller gets the error. */
            llmb_warn("redis cluster: gave up sending %s key=%s after %d "
                      "redirections: %s", c->argv[0], c->key,
                      c->redirects - 1, r->str);
            goto done;
        }
        switch (kind) {
        case LLMB_REDIRECT_MOVED:
            /* Of a burst of MOVED for one slot, the first reads the map;
             * the others find it names the new owner already. */
            if (!map_names_owner(c->acl, c->key, &rd))
                map_refresh(c->acl);
            acmd_park(c, r->str);
            return;
        case LLMB_REDIRECT_ASK:
            if (!is_fcall(c)) {
                struct anode *n = node_by_address(c->acl, rd.host, rd.port);
                if (n == NULL) {
                    map_refresh(c->acl);
                    n = node_by_address(c->acl, rd.host, rd.port);
                }
                if (n != NULL && acmd_send(n, c, true) == 0)
                    return;
            }
            acmd_park(c, "the queue's slot is being migrated");
            return;
        case LLMB_REDIRECT_NONE:
            if (strncmp(r->str, "TRYAGAIN", 8) == 0 ||
                strncmp(r->str, "CLUSTERDOWN", 11) == 0) {
                acmd_park(c, r->str);
                return;
            }
            if (strncmp(r->str, "READONLY", 8) == 0 && !acmd_spent(c)) {
                /* A primary demoted by a failover (the command did not
                 * run): the map names the new one. */
                map_refresh(c->acl);
                acmd_park(c, r->str);
                return;
            }
            break;
        }
    }
done:
    if (c->cb != NULL)
        c->cb(ac, r, c->priv);
    acmd_free(c);
}

/* Every second on a cluster while a primary is not ready (its connection
 * was lost: a failover promotes a replica), reads the map again. */
static void refresh_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct llmb_acluster *acl = t->data;
    bool all_ready = true;

    (void)loop;
    (void)revents;
    for (size_t i = 0; i < acl->nnodes; i++)
        if (acl->nodes[i]->cmd != NULL &&
            !llmb_aconn_ready(acl->nodes[i]->cmd))
            all_ready = false;
    if (!all_ready)
        map_refresh(acl);
}

/* After a read of the map: closes the connections of the nodes that are
 * no longer primaries (a demoted primary answers MOVED, or takes no
 * writes; its blocking commands end). */
static void prune_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct llmb_acluster *acl = t->data;

    (void)loop;
    (void)revents;
    for (size_t i = 0; i < acl->nnodes; i++) {
        struct anode *n = acl->nodes[i];
        bool in_map = false;
        for (size_t j = 0; j < llmb_cluster_nnodes(acl->map); j++)
            if (strcmp(llmb_cluster_node_name(acl->map, j), n->name) == 0)
                in_map = true;
        if (!in_map && n->cmd != NULL) {
            llmb_info("redis cluster: %s is no longer a primary; closing its "
                      "connections", n->name);
            if (acl->reading == n)
                acl->reading = NULL;
            llmb_aconn_free(n->cmd);
            n->cmd = NULL;
            blk_close(n);
        }
    }
}

struct llmb_acluster *llmb_acluster_new(struct ev_loop *loop,
                                        const struct llmb_acluster_opts *o,
                                        char **errstr)
{
    struct llmb_acluster *acl = llmb_xcalloc(1, sizeof(*acl));
    struct llmb_redis_url u;

    if (errstr != NULL)
        *errstr = NULL;
    if (llmb_redis_url_parse(o->url, &u, errstr) != 0) {
        free(acl);
        return NULL;
    }
    acl->loop = loop;
    acl->url = llmb_xstrdup(o->url);
    acl->name = o->name != NULL ? llmb_xstrdup(o->name) : NULL;
    acl->what = llmb_xstrdup(o->what != NULL ? o->what : "redis");
    acl->functions = o->functions;
    acl->blocking = o->blocking;
    acl->timeout_ms = o->command_timeout_ms;
    acl->wait_ms = o->wait_ms > 0 ? o->wait_ms : DEFAULT_WAIT_MS;
    acl->on_ready = o->on_ready;
    acl->on_lost = o->on_lost;
    acl->on_blk_ready = o->on_blk_ready;
    acl->on_refused = o->on_refused;
    acl->priv = o->priv;
    if (!u.cluster) {
        char *addr = llmb_redis_url_address(&u);
        node_get(acl, addr, 0);
        free(addr);
        llmb_redis_url_fini(&u);
        return acl;
    }
    llmb_redis_url_fini(&u);
    acl->map = llmb_cluster_new(o->url, o->name, 5000);
    if (llmb_cluster_refresh(acl->map) != 0) {
        if (errstr != NULL)
            *errstr = llmb_xstrdup(llmb_cluster_errstr(acl->map));
        llmb_acluster_free(acl);
        return NULL;
    }
    acl->refreshed_ms = llmb_mono_ms();
    for (size_t i = 0; i < llmb_cluster_nnodes(acl->map); i++)
        node_get(acl, llmb_cluster_node_name(acl->map, i), i);
    ev_timer_init(&acl->refresh, refresh_cb, 1.0, 1.0);
    acl->refresh.data = acl;
    ev_timer_start(loop, &acl->refresh);
    ev_timer_init(&acl->prune, prune_cb, 0.0, 0.0);
    acl->prune.data = acl;
    return acl;
}

void llmb_acluster_free(struct llmb_acluster *acl)
{
    if (acl == NULL)
        return;
    acl->freeing = true;
    if (acl->map != NULL) {
        ev_timer_stop(acl->loop, &acl->refresh);
        ev_timer_stop(acl->loop, &acl->prune);
    }
    while (acl->parked != NULL) {
        struct acmd *c = acl->parked;
        parked_unlink(acl, c);
        ev_timer_stop(acl->loop, &c->timer);
        if (c->cb != NULL)
            c->cb(NULL, NULL, c->priv);
        acmd_free(c);
    }
    for (size_t i = 0; i < acl->nnodes; i++) {
        blk_close(acl->nodes[i]);
        llmb_aconn_free(acl->nodes[i]->cmd);
        free(acl->nodes[i]->name);
        free(acl->nodes[i]->url);
        free(acl->nodes[i]);
    }
    free(acl->nodes);
    llmb_cluster_free(acl->map);
    free(acl->url);
    free(acl->name);
    free(acl->what);
    free(acl);
}

bool llmb_acluster_enabled(const struct llmb_acluster *acl)
{
    return acl->map != NULL;
}

size_t llmb_acluster_nnodes(const struct llmb_acluster *acl)
{
    return acl->nnodes;
}

long llmb_acluster_node_of(struct llmb_acluster *acl, const char *key)
{
    struct anode *n = route(acl, key);

    return n != NULL ? (long)n->index : -1;
}

struct llmb_aconn *llmb_acluster_cmd(struct llmb_acluster *acl, size_t i)
{
    return i < acl->nnodes ? acl->nodes[i]->cmd : NULL;
}

void llmb_acluster_each(struct llmb_acluster *acl, llmb_aconn_event_fn *fn,
                        void *priv)
{
    for (size_t i = 0; i < acl->nnodes; i++) {
        struct anode *n = acl->nodes[i];
        if (n->cmd != NULL)
            fn(n->cmd, priv);
        for (struct bconn *b = n->blk; b != NULL; b = b->next)
            fn(b->ac, priv);
    }
}

void llmb_acluster_close_blocking(struct llmb_acluster *acl)
{
    acl->blocking = false;
    for (size_t i = 0; i < acl->nnodes; i++)
        blk_close(acl->nodes[i]);
}

bool llmb_acluster_ready(struct llmb_acluster *acl, const char *key)
{
    struct anode *n = route(acl, key);

    return n != NULL && llmb_aconn_ready(n->cmd);
}

bool llmb_acluster_block_ready(struct llmb_acluster *acl, const char *key)
{
    struct anode *n = route(acl, key);

    return n != NULL && llmb_aconn_ready(blk_for(n, key));
}

static int command(struct llmb_acluster *acl, const char *key, bool blocking,
                   int64_t block_ms, llmb_aconn_reply_fn *cb, void *priv,
                   int argc, const char **argv, const size_t *argvlen)
{
    struct anode *n = route(acl, key);
    struct acmd *c;

    if (n == NULL || argc < 1 || acl->freeing)
        return LLMB_EIO;
    if (acl->map == NULL) /* one server: nothing to follow */
        return blocking ? llmb_aconn_block_argv(blk_for(n, key), block_ms,
                                                cb, priv, argc, argv, argvlen)
                        : llmb_aconn_command_argv(n->cmd, cb, priv, argc,
                                                  argv, argvlen);
    c = llmb_xcalloc(1, sizeof(*c));
    c->acl = acl;
    c->key = llmb_xstrdup(key);
    c->cb = cb;
    c->priv = priv;
    c->blocking = blocking;
    c->block_ms = block_ms;
    c->deadline_ms = llmb_mono_ms() + acl->wait_ms;
    c->argc = argc;
    llmb_argv_copy(argc, argv, argvlen, &c->argv, &c->argvlen);
    if (acmd_send(n, c, false) != 0) {
        acmd_free(c);
        return LLMB_EIO;
    }
    return 0;
}

int llmb_acluster_command_argv(struct llmb_acluster *acl, const char *key,
                               llmb_aconn_reply_fn *cb, void *priv, int argc,
                               const char **argv, const size_t *argvlen)
{
    return command(acl, key, false, 0, cb, priv, argc, argv, argvlen);
}

int llmb_acluster_block_argv(struct llmb_acluster *acl, const char *key,
                             int64_t block_ms, llmb_aconn_reply_fn *cb,
                             void *priv, int argc, const char **argv,
                             const size_t *argvlen)
{
    if (!acl->blocking)
        return LLMB_EIO;
    return command(acl, key, true, block_ms, cb, priv, argc, argv, argvlen);
}
