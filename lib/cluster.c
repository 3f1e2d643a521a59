/*
 * Redis Cluster routing above the synchronous connection (llmb/cluster.h).
 *
 * Flow. llmb_cluster_connect() reads the slot map with CLUSTER SHARDS
 * (CLUSTER SLOTS when the server predates it) from a known primary or a
 * seed of the URL, then opens one llmb_conn per primary; each runs the
 * connection handshake, which loads the function library on that primary.
 * A command names its key; the router sends it to the owner of the key's
 * slot. A MOVED reply reads the map again (a failover or a resharding
 * changed owners) and sends the command to the new owner; an ASK reply
 * sends ASKING and the command to the node named, once, except for FCALL
 * (see llmb_cluster_command_argv()). A primary that cannot be reached is
 * waited for: the map is read again with backoff until a replica has
 * taken over or the time runs out.
 *
 * On a plain redis:// or unix:// URL the router holds one connection that
 * owns every slot and never reads a map.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <llmb/cluster.h>
#include <llmb/connect.h>
#include <llmb/err.h>
#include <llmb/log.h>
#include <llmb/url.h>
#include <llmb/util.h>

#define DEFAULT_WAIT_MS 10000
#define REDIRECTS_MAX 16
#define MAP_TIMEOUT_MS 2000 /* for a router made without a timeout */
/* The least time between two reads of the map: a burst of MOVED, or
 * every command of a slot without owner, asks for one each. */
#define MAP_MIN_MS 100
/* The longest a new connection made only to read the map may take to
 * connect and answer: a node that does not (stopped, or gone with its
 * host) is tried last, and must not hold the caller for long. */
#define MAP_SHORT_MS 1000

uint16_t llmb_crc16(const char *buf, size_t len)
{
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)(unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++) {
            unsigned v = (unsigned)crc << 1;
            if (crc & 0x8000)
                v ^= 0x1021;
            crc = (uint16_t)v;
        }
    }
    return crc;
}

unsigned llmb_cluster_keyslot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);

    if (open != NULL) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close != NULL && close > open + 1)
            return llmb_crc16(open + 1, (size_t)(close - open - 1)) &
                   (LLMB_CLUSTER_SLOTS - 1);
    }
    return llmb_crc16(key, len) & (LLMB_CLUSTER_SLOTS - 1);
}

enum llmb_redirect_kind llmb_redirect_parse(const char *err,
                                            struct llmb_redirect *out)
{
    enum llmb_redirect_kind kind;
    const char *p, *addr, *colon;
    long long slot = 0, port = 0;
    char num[16];
    size_t n;

    memset(out, 0, sizeof(*out));
    if (err == NULL)
        return LLMB_REDIRECT_NONE;
    if (strncmp(err, "MOVED ", 6) == 0) {
        kind = LLMB_REDIRECT_MOVED;
        p = err + 6;
    } else if (strncmp(err, "ASK ", 4) == 0) {
        kind = LLMB_REDIRECT_ASK;
        p = err + 4;
    } else {
        return LLMB_REDIRECT_NONE;
    }
    n = strcspn(p, " ");
    if (n == 0 || n >= sizeof(num) || p[n] != ' ')
        return LLMB_REDIRECT_NONE;
    memcpy(num, p, n);
    num[n] = '\0';
    if (llmb_parse_ll(num, 0, LLMB_CLUSTER_SLOTS - 1, &slot) != 0)
        return LLMB_REDIRECT_NONE;
    addr = p + n + 1;
    colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr ||
        (size_t)(colon - addr) >= sizeof(out->host) ||
        llmb_parse_ll(colon + 1, 1, 65535, &port) != 0)
        return LLMB_REDIRECT_NONE;
    memcpy(out->host, addr, (size_t)(colon - addr));
    out->host[colon - addr] = '\0';
    out->port = (int)port;
    out->slot = (unsigned)slot;
    out->kind = kind;
    return kind;
}

/* Finds field name in a RESP2 map (a flat array of name, value). */
static const redisReply *map_get(const redisReply *map, const char *name)
{
    if (map == NULL || map->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < map->elements; i += 2) {
        const redisReply *k = map->element[i];
        if ((k->type == REDIS_REPLY_STRING || k->type == REDIS_REPLY_STATUS) &&
            strcmp(k->str, name) == 0)
            return map->element[i + 1];
    }
    return NULL;
}

static bool is_str(const redisReply *r)
{
    return r != NULL &&
           (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

/* The index of host:port in m, added if new. */
static int16_t slotmap_node(struct llmb_slotmap *m, const char *host,
                            size_t hostlen, int port)
{
    for (size_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].port == port && strlen(m->nodes[i].host) == hostlen &&
            memcmp(m->nodes[i].host, host, hostlen) == 0)
            return (int16_t)i;
    m->nodes = llmb_xrealloc(m->nodes, (m->nnodes + 1) * sizeof(*m->nodes));
    m->nodes[m->nnodes].host = llmb_xstrndup(host, hostlen);
    m->nodes[m->nnodes].port = port;
    return (int16_t)m->nnodes++;
}

/* Marks slots lo..hi as owned by node; false when out of range. */
static bool slotmap_assign(struct llmb_slotmap *m, long long lo, long long hi,
                           int16_t node)
{
    if (lo < 0 || hi >= LLMB_CLUSTER_SLOTS || lo > hi)
        return false;
    for (long long s = lo; s <= hi; s++)
        m->owner[s] = node;
    return true;
}

/* The primary of one shard of CLUSTER SHARDS: its host into *host, *port. */
static bool shard_primary(const redisReply *nodes, const redisReply **host,
                          long long *port)
{
    for (size_t i = 0; nodes != NULL && nodes->type == REDIS_REPLY_ARRAY &&
                       i < nodes->elements; i++) {
        const redisReply *n = nodes->element[i];
        const redisReply *role = map_get(n, "role");
        const redisReply *ep = map_get(n, "endpoint");
        const redisReply *ip = map_get(n, "ip");
        const redisReply *p = map_get(n, "port");

        if (!is_str(role) || strcmp(role->str, "master") != 0 || p == NULL ||
            p->type != REDIS_REPLY_INTEGER)
            continue;
        if (is_str(ep) && ep->len > 0 && strcmp(ep->str, "?") != 0)
            *host = ep;
        else if (is_str(ip) && ip->len > 0)
            *host = ip;
        else
            continue;
        *port = p->integer;
        return true;
    }
    return false;
}

static int parse_shards(const redisReply *r, struct llmb_slotmap *m)
{
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *shard = r->element[i];
        const redisReply *slots = map_get(shard, "slots");
        const redisReply *host = NULL;
        long long port = 0;
        int16_t node;

        if (slots == NULL || slots->type != REDIS_REPLY_ARRAY ||
            slots->elements % 2 != 0)
            return LLMB_EPROTO;
        if (slots->elements == 0)
            continue; /* a primary without slots, or a failed one */
        if (!shard_primary(map_get(shard, "nodes"), &host, &port) ||
            port < 1 || port > 65535)
            continue; /* its slots are not served: left at -1 */
        node = slotmap_node(m, host->str, host->len, (int)port);
        for (size_t j = 0; j < slots->elements; j += 2) {
            const redisReply *lo = slots->element[j];
            const redisReply *hi = slots->element[j + 1];
            if (lo->type != REDIS_REPLY_INTEGER ||
                hi->type != REDIS_REPLY_INTEGER ||
                !slotmap_assign(m, lo->integer, hi->integer, node))
                return LLMB_EPROTO;
        }
    }
    return 0;
}

static int parse_slots(const redisReply *r, struct llmb_slotmap *m)
{
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        const redisReply *lo, *hi, *primary, *host, *port;
        int16_t node;

        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3)
            return LLMB_EPROTO;
        lo = e->element[0];
        hi = e->element[1];
        primary = e->element[2];
        if (lo->type != REDIS_REPLY_INTEGER ||
            hi->type != REDIS_REPLY_INTEGER ||
            primary->type != REDIS_REPLY_ARRAY || primary->elements < 2)
            return LLMB_EPROTO;
        host = primary->element[0];
        port = primary->element[1];
        if (!is_str(host) || port->type != REDIS_REPLY_INTEGER ||
            port->integer < 1 || port->integer > 65535)
            return LLMB_EPROTO;
        if (host->len == 0 || strcmp(host->str, "?") == 0)
            continue;
        node = slotmap_node(m, host->str, host->len, (int)port->integer);
        if (!slotmap_assign(m, lo->integer, hi->integer, node))
            return LLMB_EPROTO;
    }
    return 0;
}

int llmb_slotmap_parse(const redisReply *r, bool shards,
                       struct llmb_slotmap *m, char **errstr)
{
    char what[128];
    int rc;

    memset(m, 0, sizeof(*m));
    for (size_t s = 0; s < LLMB_CLUSTER_SLOTS; s++)
        m->owner[s] = -1;
    if (errstr != NULL)
        *errstr = NULL;
    rc = r != NULL && r->type == REDIS_REPLY_ARRAY
             ? (shards ? parse_shards(r, m) : parse_slots(r, m))
             : LLMB_EPROTO;
    if (rc != 0) {
        llmb_slotmap_fini(m);
        if (errstr != NULL)
            *errstr = llmb_xasprintf("CLUSTER %s answered %s, not a slot map",
                                     shards ? "SHARDS" : "SLOTS",
                                     llmb_reply_describe(r, what,
                                                         sizeof(what)));
    }
    return rc;
}

void llmb_slotmap_fini(struct llmb_slotmap *m)
{
    for (size_t i = 0; i < m->nnodes; i++)
        free(m->nodes[i].host);
    free(m->nodes);
    m->nodes = NULL;
    m->nnodes = 0;
    for (size_t s = 0; s < LLMB_CLUSTER_SLOTS; s++)
        m->owner[s] = -1;
}

/* A primary the router may talk to. */
struct node {
    char *host;
    int port;
    char *name;             /* "host:port" */
    struct llmb_conn *conn; /* made on first use */
    bool failed;            /* its last connect or command failed */
};

/*
 * The router. nodes holds the primaries of the current map (index =
 * llmb_slotmap index); on a single server, one node for the URL's server,
 * owner of every slot.
 */
/* A command queued by llmb_cluster_append_argv(), not sent yet. */
struct pipe_cmd {
    struct llmb_conn *conn;
    int argc;
    char **argv;
    size_t *argvlen;
};

struct llmb_cluster {
    struct llmb_redis_url url;
    char *url_text;    /* for a single server: handed to llmb_conn_new() */
    char *url_err;     /* URL parse error, reported on connect; or NULL */
    char *client_name; /* or NULL */
    int timeout_ms;    /* 0 = none */
    struct node *nodes;
    size_t nnodes;
    int16_t owner[LLMB_CLUSTER_SLOTS];
    char *err;
    struct pipe_cmd *unsent;  /* queued, in order */
    size_t nunsent;
    struct llmb_conn **due;   /* sent, reply not read yet, in order */
    size_t due_head, ndue, due_cap;
    redisContext *mapc;       /* to the node that gave the last map, kept
                                 for the next refresh; or NULL */
    struct llmb_server mapsrv; /* that node */
    int64_t map_mono;         /* monotonic: the last read of the map */
    int map_rc;               /* and its result */
    long long map_reads;      /* reads of the map sent */
    size_t keyless;           /* primary of the commands without key */
};

static void set_err(struct llmb_cluster *cl, char *msg)
{
    free(cl->err);
    cl->err = msg;
}

static void nodes_free(struct llmb_cluster *cl)
{
    for (size_t i = 0; i < cl->nnodes; i++) {
        free(cl->nodes[i].host);
        free(cl->nodes[i].name);
        llmb_conn_free(cl->nodes[i].conn);
    }
    free(cl->nodes);
    cl->nodes = NULL;
    cl->nnodes = 0;
}

struct llmb_cluster *llmb_cluster_new(const char *url, const char *client_name,
                                      int timeout_ms)
{
    struct llmb_cluster *cl = llmb_xcalloc(1, sizeof(*cl));

    cl->url_text = llmb_xstrdup(url != NULL ? url : "");
    cl->client_name = client_name ? llmb_xstrdup(client_name) : NULL;
    cl->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
    for (size_t s = 0; s < LLMB_CLUSTER_SLOTS; s++)
        cl->owner[s] = -1;
    if (llmb_redis_url_parse(url, &cl->url, &cl->url_err) != 0 ||
        !cl->url.cluster) {
        /* One server (or a bad URL, which llmb_conn reports): node 0. */
        cl->nodes = llmb_xcalloc(1, sizeof(*cl->nodes));
        cl->nnodes = 1;
        cl->nodes[0].conn = llmb_conn_new(url, client_name, timeout_ms);
        cl->nodes[0].name = cl->url_err == NULL
                                ? llmb_redis_url_address(&cl->url)
                                : llmb_redis_url_redacted(url);
        memset(cl->owner, 0, sizeof(cl->owner));
    }
    return cl;
}

bool llmb_cluster_enabled(const struct llmb_cluster *cl)
{
    return cl->url.cluster;
}

/* Percent-encodes s for the user or password of a URL. */
static void url_escape(struct llmb_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~')
            llmb_buf_append(b, s, 1);
        else
            llmb_buf_appendf(b, "%%%02X", c);
    }
}

/* The redis:// URL of one node, with the cluster URL's credentials. */
static char *node_url(const struct llmb_cluster *cl, const char *host,
                      int port)
{
    struct llmb_buf b;
    char *addr;

    llmb_buf_init(&b);
    llmb_buf_appendf(&b, "redis://");
    if (cl->url.password != NULL) {
        if (cl->url.user != NULL)
            url_escape(&b, cl->url.user);
        llmb_buf_append(&b, ":", 1);
        url_escape(&b, cl->url.password);
        llmb_buf_append(&b, "@", 1);
    }
    addr = llmb_hostport(host, port);
    llmb_buf_appendf(&b, "%s", addr);
    free(addr);
    return llmb_buf_steal(&b);
}

/* Closes the connection kept for reading maps, if any. */
static void map_close(struct llmb_cluster *cl)
{
    if (cl->mapc != NULL)
        redisFree(cl->mapc);
    cl->mapc = NULL;
    llmb_server_fini(&cl->mapsrv);
}

/* True when s (host NULL: none) is host:port. */
static bool same_server(const struct llmb_server *s, const char *host,
                        int port)
{
    return s->host != NULL && s->port == port && strcmp(s->host, host) == 0;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Reads the map over c, a connection to address: CLUSTER SHARDS, else
 * CLUSTER SLOTS. Returns 0, or an llmb_err with the message in cl->err
 * (LLMB_EIO: c is unusable). */
static int map_read(struct llmb_cluster *cl, redisContext *c,
                    const char *address, struct llmb_slotmap *m)
{
    redisReply *r;
    char *perr = NULL;
    bool shards = true;
    int rc = LLMB_EIO;

    cl->map_reads++;
    r = redisCommand(c, "CLUSTER SHARDS");
    if (r != NULL && r->type == REDIS_REPLY_ERROR &&
        strncasecmp(r->str, "ERR unknown subcommand", 22) == 0) {
        freeReplyObject(r);
        shards = false;
        r = redisCommand(c, "CLUSTER SLOTS");
    }
    if (r == NULL) {
        set_err(cl, llmb_ctx_error(c, "lost the connection to", address,
                                   cl->timeout_ms > 0 ? cl->timeout_ms
                                                      : MAP_TIMEOUT_MS));
        return LLMB_EIO;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        set_err(cl, llmb_xasprintf("redis %s refused CLUSTER %s: %s%s",
                                   address, shards ? "SHARDS" : "SLOTS",
                                   r->str,
                                   strstr(r->str, "cluster support disabled")
                                       ? " (it is a single server: use a "
                                         "redis:// URL)"
                                       : ""));
        rc = LLMB_EREDIS;
    } else {
        rc = llmb_slotmap_parse(r, shards, m, &perr);
        if (rc != 0)
            set_err(cl, llmb_xasprintf("redis %s: %s", address, perr));
    }
    free(perr);
    freeReplyObject(r);
    return rc;
}

/* The timeout of a connection made to read the map. */
static int map_timeout(const struct llmb_cluster *cl)
{
    int t = cl->timeout_ms > 0 ? cl->timeout_ms : MAP_TIMEOUT_MS;

    return t < MAP_SHORT_MS ? t : MAP_SHORT_MS;
}

/* Asks host:port for the map over a new connection, named as the
 * router's, which runs the handshake without the library check (a seed
 * may be a replica, where loading the library would be refused). On
 * success the connection is kept as cl->mapc for the next refresh. */
static int map_from(struct llmb_cluster *cl, const char *host, int port,
                    struct llmb_slotmap *m)
{
    struct llmb_server srv;
    struct llmb_handshake hs;
    redisContext *c = NULL;
    char *err = NULL;
    int rc = LLMB_EIO;

    memset(&srv, 0, sizeof(srv));
    srv.host = llmb_xstrdup(host);
    srv.port = port;
    srv.address = llmb_hostport(host, port);
    c = llmb_server_connect(&srv, map_timeout(cl), &err);
    if (c == NULL) {
        set_err(cl, err);
        goto out;
    }
    llmb_handshake_init(&hs, &cl->url, cl->client_name);
    rc = llmb_handshake_run(c, &hs, srv.address, false, &err);
    if (rc != 0) {
        set_err(cl, err);
        goto out;
    }
    rc = map_read(cl, c, srv.address, m);
    if (rc == 0) {
        map_close(cl);
        cl->mapc = c;
        cl->mapsrv = srv;
        return 0;
    }
out:
    if (c != NULL)
        redisFree(c);
    llmb_server_fini(&srv);
    return rc;
}

/* Installs m as the router's map, keeping the connections of primaries
 * that stay. Takes the node strings of m. */
static void map_install(struct llmb_cluster *cl, struct llmb_slotmap *m)
{
    struct node *nodes = llmb_xcalloc(m->nnodes ? m->nnodes : 1,
                                      sizeof(*nodes));

    for (size_t i = 0; i < m->nnodes; i++) {
        nodes[i].host = m->nodes[i].host;
        nodes[i].port = m->nodes[i].port;
        nodes[i].name = llmb_hostport(nodes[i].host, nodes[i].port);
        m->nodes[i].host = NULL;
        for (size_t j = 0; j < cl->nnodes; j++) {
            if (cl->nodes[j].conn != NULL && cl->nodes[j].port == nodes[i].port &&
                strcmp(cl->nodes[j].host, nodes[i].host) == 0) {
                nodes[i].conn = cl->nodes[j].conn;
                nodes[i].failed = cl->nodes[j].failed;
                cl->nodes[j].conn = NULL;
                break;
            }
        }
    }
    nodes_free(cl);
    cl->nodes = nodes;
    cl->nnodes = m->nnodes;
    memcpy(cl->owner, m->owner, sizeof(cl->owner));
    llmb_slotmap_fini(m);
}

/* True when host:port is the server s, or a node of the map whose last
 * connect or command failed: such nodes are asked last. */
static bool addr_failed(const struct llmb_cluster *cl,
                        const struct llmb_server *s, const char *host,
                        int port)
{
    if (same_server(s, host, port))
        return true;
    for (size_t i = 0; i < cl->nnodes; i++)
        if (cl->nodes[i].failed && cl->nodes[i].port == port &&
            strcmp(cl->nodes[i].host, host) == 0)
            return true;
    return false;
}

/* Reads the map into m from the first node that answers, in the order
 * of the cheapest answer: the connection kept from the last read, the
 * open connections of primaries, new connections (with a short timeout)
 * to the other primaries and to the seeds, and last the nodes whose last
 * connect or command failed (a primary that died, or is stopped, may
 * take a timeout to say so). Returns 0 or an llmb_err (cl->err). */
static int map_fetch(struct llmb_cluster *cl, struct llmb_slotmap *m)
{
    struct llmb_server failed;
    int rc = LLMB_EIO;

    memset(&failed, 0, sizeof(failed));
    if (cl->mapc != NULL &&
        !addr_failed(cl, &failed, cl->mapsrv.host, cl->mapsrv.port)) {
        rc = map_read(cl, cl->mapc, cl->mapsrv.address, m);
        if (rc != 0) {
            redisFree(cl->mapc);
            cl->mapc = NULL;
            failed = cl->mapsrv;
            memset(&cl->mapsrv, 0, sizeof(cl->mapsrv));
        }
    } else if (cl->mapc != NULL) {
        map_close(cl);
    }
    for (size_t i = 0; rc != 0 && i < cl->nnodes; i++) {
        struct node *n = &cl->nodes[i];
        redisContext *c = n->conn != NULL ? llmb_conn_ctx(n->conn) : NULL;
        if (c == NULL || n->failed)
            continue;
        rc = map_read(cl, c, n->name, m);
        if (rc == LLMB_EIO) {
            /* Its context is broken: the next command reconnects. */
            llmb_conn_free(n->conn);
            n->conn = NULL;
            n->failed = true;
        }
    }
    for (size_t i = 0; rc != 0 && i < cl->nnodes; i++)
        if (cl->nodes[i].conn == NULL &&
            !addr_failed(cl, &failed, cl->nodes[i].host, cl->nodes[i].port))
            rc = map_from(cl, cl->nodes[i].host, cl->nodes[i].port, m);
    for (size_t i = 0; rc != 0 && i < cl->url.nseeds; i++)
        if (!addr_failed(cl, &failed, cl->url.seeds[i].host,
                         cl->url.seeds[i].port))
            rc = map_from(cl, cl->url.seeds[i].host, cl->url.seeds[i].port,
                          m);
    for (size_t i = 0; rc != 0 && i < cl->nnodes; i++)
        if (cl->nodes[i].failed &&
            !same_server(&failed, cl->nodes[i].host, cl->nodes[i].port))
            rc = map_from(cl, cl->nodes[i].host, cl->nodes[i].port, m);
    if (rc != 0 && failed.host != NULL)
        rc = map_from(cl, failed.host, failed.port, m);
    llmb_server_fini(&failed);
    return rc;
}

/* Reads the map and installs it. Returns 0 or an llmb_err (cl->err). */
static int map_refresh(struct llmb_cluster *cl)
{
    struct llmb_slotmap m;
    bool keep = false;
    int rc;

    cl->map_mono = llmb_mono_ms();
    rc = map_fetch(cl, &m);
    if (rc == 0 && m.nnodes == 0) {
        set_err(cl, llmb_xasprintf("redis cluster: %s assigns no slot to "
                                   "any primary; create the cluster "
                                   "(redis-cli --cluster create) or "
                                   "assign the slots (CLUSTER ADDSLOTS), "
                                   "then try again",
                                   cl->mapsrv.address != NULL
                                       ? cl->mapsrv.address
                                       : "the node asked"));
        llmb_slotmap_fini(&m);
        rc = LLMB_EIO;
    }
    cl->map_rc = rc;
    if (rc != 0)
        return rc;
    map_install(cl, &m);
    /* The connection is kept to a primary of the map only: a seed may be
     * a replica, or a node that has left the cluster and answers a map
     * of its own. */
    for (size_t i = 0; i < cl->nnodes; i++)
        keep = keep || same_server(&cl->mapsrv, cl->nodes[i].host,
                                   cl->nodes[i].port);
    if (!keep)
        map_close(cl);
    return 0;
}

int llmb_cluster_refresh(struct llmb_cluster *cl)
{
    if (!cl->url.cluster)
        return 0;
    if (cl->url_err != NULL) {
        set_err(cl, llmb_xstrdup(cl->url_err));
        return LLMB_ECONFIG;
    }
    if (cl->ndue > 0 || cl->nunsent > 0)
        return 0; /* a pipeline holds connections: not now */
    if (cl->map_mono != 0 && llmb_mono_ms() - cl->map_mono < MAP_MIN_MS)
        return cl->map_rc; /* read a moment ago */
    return map_refresh(cl);
}

/* As llmb_cluster_refresh(), but a read asked for within MAP_MIN_MS of
 * the last one waits out the rest of that time instead of being left
 * out: the caller knows the map it has is wrong (a MOVED to a node it
 * does not know). */
static int refresh_now(struct llmb_cluster *cl)
{
    int64_t since = llmb_mono_ms() - cl->map_mono;

    if (cl->map_mono != 0 && since < MAP_MIN_MS)
        sleep_ms(MAP_MIN_MS - since);
    return llmb_cluster_refresh(cl);
}

void llmb_cluster_map_set(struct llmb_cluster *cl, struct llmb_slotmap *m)
{
    cl->map_mono = llmb_mono_ms();
    cl->map_rc = 0;
    if (m->nnodes == 0) {
        llmb_slotmap_fini(m);
        return;
    }
    map_install(cl, m);
}

long long llmb_cluster_map_reads(const struct llmb_cluster *cl)
{
    return cl->map_reads;
}

void llmb_cluster_set_keyless(struct llmb_cluster *cl, size_t i)
{
    cl->keyless = i;
}

/* The index of the primary host:port in the map, or -1. */
static int node_index(const struct llmb_cluster *cl, const char *host,
                      int port)
{
    for (size_t i = 0; i < cl->nnodes; i++)
        if (cl->nodes[i].port == port && strcmp(cl->nodes[i].host, host) == 0)
            return (int)i;
    return -1;
}

/* Records how the last use of connection c went. */
static void conn_went(struct llmb_cluster *cl, const struct llmb_conn *c,
                      bool ok)
{
    for (size_t i = 0; i < cl->nnodes; i++)
        if (cl->nodes[i].conn == c)
            cl->nodes[i].failed = !ok;
}

/* The primary of the commands that name no key. */
static size_t keyless_node(const struct llmb_cluster *cl)
{
    return cl->keyless < cl->nnodes ? cl->keyless : 0;
}

struct llmb_conn *llmb_cluster_conn0(struct llmb_cluster *cl)
{
    return cl->url.cluster ? NULL : cl->nodes[0].conn;
}

int llmb_cluster_owner(const struct llmb_cluster *cl, const char *key)
{
    return cl->owner[llmb_cluster_keyslot(key, strlen(key))];
}

char *llmb_cluster_node_url(const struct llmb_cluster *cl, size_t i)
{
    if (!cl->url.cluster)
        return llmb_xstrdup(cl->url_text);
    return i < cl->nnodes ? node_url(cl, cl->nodes[i].host, cl->nodes[i].port)
                          : NULL;
}

size_t llmb_cluster_nnodes(const struct llmb_cluster *cl)
{
    return cl->nnodes;
}

const char *llmb_cluster_node_name(const struct llmb_cluster *cl, size_t i)
{
    return i < cl->nnodes ? cl->nodes[i].name : "?";
}

/* Connects node i if it is not; returns its connection or NULL. */
static struct llmb_conn *node_ready(struct llmb_cluster *cl, size_t i)
{
    struct node *n = &cl->nodes[i];
    char *err = NULL;

    if (n->conn == NULL) {
        char *u = node_url(cl, n->host, n->port);
        n->conn = llmb_conn_new(u, cl->client_name, cl->timeout_ms);
        free(u);
    }
    if (llmb_conn_ctx(n->conn) != NULL)
        return n->conn;
    if (llmb_conn_connect(n->conn, &err) != 0) {
        set_err(cl, err);
        n->failed = true;
        return NULL;
    }
    n->failed = false;
    return n->conn;
}

struct llmb_conn *llmb_cluster_node_conn(struct llmb_cluster *cl, size_t i)
{
    return i < cl->nnodes ? node_ready(cl, i) : NULL;
}

int llmb_cluster_connect(struct llmb_cluster *cl, char **errstr)
{
    int rc = 0;

    if (errstr != NULL)
        *errstr = NULL;
    if (!cl->url.cluster) {
        rc = llmb_conn_connect(cl->nodes[0].conn, errstr);
        if (rc != 0)
            set_err(cl, llmb_xstrdup(llmb_conn_errstr(cl->nodes[0].conn)));
        return rc;
    }
    rc = llmb_cluster_refresh(cl);
    for (size_t i = 0; rc == 0 && i < cl->nnodes; i++)
        if (node_ready(cl, i) == NULL)
            rc = LLMB_EIO;
    if (rc != 0 && errstr != NULL)
        *errstr = llmb_xstrdup(llmb_cluster_errstr(cl));
    return rc;
}

struct llmb_conn *llmb_cluster_conn_for_key(struct llmb_cluster *cl,
                                            const char *key)
{
    unsigned slot = llmb_cluster_keyslot(key, strlen(key));

    if (cl->owner[slot] < 0 && llmb_cluster_refresh(cl) != 0)
        return NULL;
    if (cl->owner[slot] < 0) {
        set_err(cl, llmb_xasprintf("no redis cluster node serves slot %u "
                                   "(of key %s): a failover may be under "
                                   "way, or the slot is not assigned "
                                   "(redis-cli --cluster check %s)", slot,
                                   key, cl->nnodes > 0 ? cl->nodes[0].name
                                                       : "HOST:PORT"));
        return NULL;
    }
    return node_ready(cl, (size_t)cl->owner[slot]);
}

static bool is_fcall(int argc, const char **argv)
{
    return argc > 0 && (strcasecmp(argv[0], "FCALL") == 0 ||
                        strcasecmp(argv[0], "FCALL_RO") == 0);
}

/* Sends ASKING and the command to host:port over a short connection with
 * the router's credentials. Returns the command's reply or NULL. */
static redisReply *ask_at(struct llmb_cluster *cl, const char *host, int port,
                          int argc, const char **argv, const size_t *argvlen)
{
    char *u = node_url(cl, host, port);
    struct llmb_conn *c = llmb_conn_new(u, cl->client_name, cl->timeout_ms);
    const char *asking[] = {"ASKING"};
    redisReply *r = NULL;
    char *err = NULL;

    free(u);
    if (llmb_conn_connect(c, &err) != 0) {
        set_err(cl, err);
        goto out;
    }
    if (llmb_conn_append_argv(c, 1, asking, NULL) != 0 ||
        llmb_conn_append_argv(c, argc, argv, argvlen) != 0) {
        set_err(cl, llmb_xstrdup(llmb_conn_errstr(c)));
        goto out;
    }
    r = llmb_conn_get_reply(c);
    if (r != NULL) {
        freeReplyObject(r);
        r = llmb_conn_get_reply(c);
    }
    if (r == NULL)
        set_err(cl, llmb_xstrdup(llmb_conn_errstr(c)));
out:
    llmb_conn_free(c);
    return r;
}

redisReply *llmb_cluster_command_argv(struct llmb_cluster *cl, const char *key,
                                      int argc, const char **argv,
                                      const size_t *argvlen)
{
    unsigned slot = llmb_cluster_keyslot(key, strlen(key));
    int64_t wait_ms = cl->timeout_ms > 0 ? cl->timeout_ms : DEFAULT_WAIT_MS;
    int64_t start = llmb_mono_ms(), pause = 10;
    int redirects = 0;

    if (!cl->url.cluster) {
        redisReply *r = llmb_conn_commandargv(cl->nodes[0].conn, argc, argv,
                                              argvlen);
        if (r == NULL)
            set_err(cl, llmb_xstrdup(llmb_conn_errstr(cl->nodes[0].conn)));
        return r;
    }
    for (;;) {
        struct llmb_conn *c = llmb_cluster_conn_for_key(cl, key);
        struct llmb_redirect rd;
        redisReply *r = NULL;
        const char *why = NULL;

        if (c != NULL) {
            r = llmb_conn_commandargv(c, argc, argv, argvlen);
            conn_went(cl, c, r != NULL);
            if (r == NULL) {
                set_err(cl, llmb_xstrdup(llmb_conn_errstr(c)));
                if (is_fcall(argc, argv) &&
                    strstr(cl->err, "may or may not") != NULL)
                    return NULL;
                why = cl->err;
            }
        } else {
            why = cl->err;
        }
        if (r != NULL && r->type == REDIS_REPLY_ERROR) {
            switch (llmb_redirect_parse(r->str, &rd)) {
            case LLMB_REDIRECT_MOVED:
                freeReplyObject(r);
                if (++redirects > REDIRECTS_MAX) {
                    char *to = llmb_hostport(rd.host, rd.port);
                    set_err(cl, llmb_xasprintf("redis cluster: more than %d "
                                               "redirections for slot %u, "
                                               "the last to %s: its owner "
                                               "keeps changing (redis-cli "
                                               "--cluster check %s)",
                                               REDIRECTS_MAX, slot, to, to));
                    free(to);
                    return NULL;
                }
                llmb_debug("redis cluster: slot %u moved to %s:%d", slot,
                           rd.host, rd.port);
                /* A primary of the map: the slot moved there (a burst of
                 * MOVED reads the map once). Else read it. */
                int to = node_index(cl, rd.host, rd.port);
                if (to >= 0) {
                    cl->owner[rd.slot] = (int16_t)to;
                    continue;
                }
                if (refresh_now(cl) != 0)
                    why = cl->err;
                else
                    continue;
                r = NULL;
                break;
            case LLMB_REDIRECT_ASK:
                if (!is_fcall(argc, argv)) {
                    freeReplyObject(r);
                    return ask_at(cl, rd.host, rd.port, argc, argv, argvlen);
                }
                why = "the queue's slot is being migrated";
                break;
            case LLMB_REDIRECT_NONE:
                if (strncmp(r->str, "TRYAGAIN", 8) == 0 ||
                    strncmp(r->str, "CLUSTERDOWN", 11) == 0)
                    why = "the redis cluster asks to try again";
                if (strncmp(r->str, "READONLY", 8) == 0 &&
                    ++redirects <= REDIRECTS_MAX) {
                    /* A primary demoted by a failover: the command did not
                     * run. Its new owner is in the map read now. */
                    freeReplyObject(r);
                    r = NULL;
                    if (refresh_now(cl) != 0)
                        why = cl->err;
                    else
                        continue;
                }
                break;
            }
        }
        if (why == NULL)
            return r;
        if (llmb_mono_ms() - start >= wait_ms) {
            set_err(cl, llmb_xasprintf("redis cluster: slot %u: %s%s%s (gave "
                                       "up after %lld ms)", slot, why,
                                       r != NULL ? ": " : "",
                                       r != NULL ? r->str : "",
                                       (long long)wait_ms));
            if (r != NULL)
                freeReplyObject(r);
            return NULL;
        }
        if (r != NULL)
            freeReplyObject(r);
        llmb_debug("redis cluster: slot %u: %s; trying again in %lld ms", slot,
                   why, (long long)pause);
        sleep_ms(pause);
        pause = pause * 2 > 500 ? 500 : pause * 2;
        /* A primary that could not be reached: is there a new one? (A
         * slot without owner reads the map at the top of the loop.) */
        if ((c == NULL || r == NULL) && cl->owner[slot] >= 0)
            llmb_cluster_refresh(cl);
    }
}

/* The key of a command, or NULL for one that names none (see
 * llmb_cluster_command()). Points into argv. */
static const char *cmd_key(int argc, const char **argv)
{
    static const char *const keyless[] = {
        "TIME", "PING", "INFO", "CLIENT", "CLUSTER", "FUNCTION", "MULTI",
        "EXEC", "ROLE", "SCAN", "DBSIZE", "CONFIG",
    };

    if (argc < 2)
        return NULL;
    for (size_t i = 0; i < sizeof(keyless) / sizeof(*keyless); i++)
        if (strcasecmp(argv[0], keyless[i]) == 0)
            return NULL;
    if (strcasecmp(argv[0], "FCALL") == 0 ||
        strcasecmp(argv[0], "FCALL_RO") == 0 ||
        strcasecmp(argv[0], "EVAL") == 0 ||
        strcasecmp(argv[0], "EVALSHA") == 0)
        return argc >= 4 && strcmp(argv[2], "0") != 0 ? argv[3] : NULL;
    return argv[1];
}

/* Parses the RESP array of bulk strings that redisFormatCommand() makes
 * back into argv. Returns argc, or -1. */
static int resp_argv(const char *s, size_t len, char ***argv, size_t **lens)
{
    const char *p = s, *end = s + len;
    long long n = 0;
    char *e = NULL;

    if (len < 4 || *p != '*')
        return -1;
    n = strtoll(p + 1, &e, 10);
    if (e == NULL || n < 1 || n > 1000000 || e + 2 > end)
        return -1;
    p = e + 2;
    *argv = llmb_xcalloc((size_t)n, sizeof(**argv));
    *lens = llmb_xcalloc((size_t)n, sizeof(**lens));
    for (long long i = 0; i < n; i++) {
        long long l;
        if (p >= end || *p != '$')
            goto bad;
        l = strtoll(p + 1, &e, 10);
        if (l < 0 || e + 2 + l + 2 > end)
            goto bad;
        p = e + 2;
        (*argv)[i] = llmb_xmalloc((size_t)l + 1);
        memcpy((*argv)[i], p, (size_t)l);
        (*argv)[i][l] = '\0';
        (*lens)[i] = (size_t)l;
        p += l + 2;
    }
    return (int)n;
bad:
    llmb_argv_free((int)n, *argv, *lens);
    return -1;
}

redisReply *llmb_cluster_commandargv(struct llmb_cluster *cl, int argc,
                                     const char **argv,
                                     const size_t *argvlen)
{
    const char *key = cmd_key(argc, argv);
    char *k = NULL;
    redisReply *r;

    if (!cl->url.cluster) {
        r = llmb_conn_commandargv(cl->nodes[0].conn, argc, argv, argvlen);
        if (r == NULL)
            set_err(cl, llmb_xstrdup(llmb_conn_errstr(cl->nodes[0].conn)));
        return r;
    }
    if (key == NULL) {
        struct llmb_conn *c = cl->nnodes > 0
                                  ? node_ready(cl, keyless_node(cl))
                                  : NULL;
        if (c == NULL) {
            if (cl->nnodes == 0)
                set_err(cl, llmb_xstrdup("no redis cluster primary known"));
            return NULL;
        }
        r = llmb_conn_commandargv(c, argc, argv, argvlen);
        conn_went(cl, c, r != NULL);
        if (r == NULL)
            set_err(cl, llmb_xstrdup(llmb_conn_errstr(c)));
        return r;
    }
    /* The key as a string (its length from argvlen when given). */
    for (int i = 1; i < argc; i++)
        if (argv[i] == key)
            k = llmb_xstrndup(key, argvlen != NULL ? argvlen[i]
                                                   : strlen(key));
    r = llmb_cluster_command_argv(cl, k != NULL ? k : key, argc, argv,
                                  argvlen);
    free(k);
    return r;
}

redisReply *llmb_cluster_command(struct llmb_cluster *cl, const char *fmt,
                                 ...)
{
    char *cmd = NULL, **argv = NULL;
    size_t *lens = NULL;
    redisReply *r = NULL;
    va_list ap;
    int len, argc;

    va_start(ap, fmt);
    len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0) {
        set_err(cl, llmb_xasprintf("cannot format the command \"%s\"",
                                   fmt));
        return NULL;
    }
    argc = resp_argv(cmd, (size_t)len, &argv, &lens);
    redisFreeCommand(cmd);
    if (argc < 0) {
        set_err(cl, llmb_xasprintf("cannot format the command \"%s\"",
                                   fmt));
        return NULL;
    }
    r = llmb_cluster_commandargv(cl, argc, (const char **)argv, lens);
    llmb_argv_free(argc, argv, lens);
    return r;
}

static void due_drain(struct llmb_cluster *cl);

int llmb_cluster_append_argv(struct llmb_cluster *cl, int argc,
                             const char **argv, const size_t *argvlen)
{
    const char *key = cmd_key(argc, argv);
    struct llmb_conn *c;
    struct pipe_cmd *p;

    if (!cl->url.cluster) {
        if (llmb_conn_append_argv(cl->nodes[0].conn, argc, argv,
                                  argvlen) != 0) {
            set_err(cl, llmb_xstrdup(llmb_conn_errstr(cl->nodes[0].conn)));
            return LLMB_EIO;
        }
        return 0;
    }
    if (key == NULL) {
        c = cl->nnodes > 0 ? node_ready(cl, keyless_node(cl)) : NULL;
    } else {
        size_t n = strlen(key);
        for (int i = 1; i < argc; i++)
            if (argv[i] == key && argvlen != NULL)
                n = argvlen[i];
        char *k = llmb_xstrndup(key, n);
        c = llmb_cluster_conn_for_key(cl, k);
        free(k);
    }
    if (c == NULL) {
        due_drain(cl); /* none of the pipeline goes out */
        return LLMB_EIO;
    }
    cl->unsent = llmb_xrealloc(cl->unsent,
                               (cl->nunsent + 1) * sizeof(*cl->unsent));
    p = &cl->unsent[cl->nunsent++];
    p->conn = c;
    p->argc = argc;
    llmb_argv_copy(argc, argv, argvlen, &p->argv, &p->argvlen);
    return 0;
}

static void due_push(struct llmb_cluster *cl, struct llmb_conn *c)
{
    if (cl->ndue == cl->due_cap) {
        size_t cap = cl->due_cap ? cl->due_cap * 2 : 16;
        struct llmb_conn **d = llmb_xmalloc(cap * sizeof(*d));
        for (size_t i = 0; i < cl->ndue; i++)
            d[i] = cl->due[(cl->due_head + i) % cl->due_cap];
        free(cl->due);
        cl->due = d;
        cl->due_cap = cap;
        cl->due_head = 0;
    }
    cl->due[(cl->due_head + cl->ndue) % cl->due_cap] = c;
    cl->ndue++;
}

static struct llmb_conn *due_pop(struct llmb_cluster *cl)
{
    struct llmb_conn *c = cl->due[cl->due_head];

    cl->due_head = (cl->due_head + 1) % cl->due_cap;
    cl->ndue--;
    return c;
}

/* After a failure in a pipeline: reads and drops the replies still due
 * on the other connections, so that none is taken for a later one. */
static void due_drain(struct llmb_cluster *cl)
{
    while (cl->ndue > 0) {
        redisReply *r = llmb_conn_get_reply(due_pop(cl));
        if (r != NULL)
            freeReplyObject(r);
    }
    for (size_t i = 0; i < cl->nunsent; i++)
        llmb_argv_free(cl->unsent[i].argc, cl->unsent[i].argv,
                  cl->unsent[i].argvlen);
    cl->nunsent = 0;
}

redisReply *llmb_cluster_get_reply(struct llmb_cluster *cl)
{
    struct llmb_conn *c;
    redisReply *r;

    if (!cl->url.cluster) {
        r = llmb_conn_get_reply(cl->nodes[0].conn);
        if (r == NULL)
            set_err(cl, llmb_xstrdup(llmb_conn_errstr(cl->nodes[0].conn)));
        return r;
    }
    for (size_t i = 0; i < cl->nunsent; i++) {
        struct pipe_cmd *p = &cl->unsent[i];
        int rc = llmb_conn_append_argv(p->conn, p->argc,
                                       (const char **)p->argv, p->argvlen);
        if (rc != 0) {
            set_err(cl, llmb_xstrdup(llmb_conn_errstr(p->conn)));
            due_drain(cl);
            return NULL;
        }
        due_push(cl, p->conn);
        llmb_argv_free(p->argc, p->argv, p->argvlen);
        p->argv = NULL;
    }
    cl->nunsent = 0;
    if (cl->ndue == 0) {
        set_err(cl, llmb_xstrdup("no reply is due"));
        return NULL;
    }
    c = due_pop(cl);
    r = llmb_conn_get_reply(c);
    conn_went(cl, c, r != NULL);
    if (r == NULL) {
        set_err(cl, llmb_xstrdup(llmb_conn_errstr(c)));
        due_drain(cl);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "MOVED ", 6) == 0 &&
        cl->ndue == 0)
        llmb_cluster_refresh(cl);
    return r;
}

const char *llmb_cluster_errstr(struct llmb_cluster *cl)
{
    return cl->err ? cl->err : "";
}

void llmb_cluster_free(struct llmb_cluster *cl)
{
    if (cl == NULL)
        return;
    due_drain(cl);
    free(cl->unsent);
    free(cl->due);
    map_close(cl);
    nodes_free(cl);
    llmb_redis_url_fini(&cl->url);
    free(cl->url_text);
    free(cl->url_err);
    free(cl->client_name);
    free(cl->err);
    free(cl);
}
