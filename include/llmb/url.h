/*
 * Redis URLs, the one way every llmb program is told where Redis is:
 *   redis://[[user]:password@]host[:port][/db]   (IPv6 as [::1])
 *   unix:///path/to/redis.sock[?db=N][&user=U][&password=P]
 *   redis+cluster://[[user]:password@]host[:port][,host[:port]]...
 *   redis+sentinel://[[user]:password@]host[:port][,host[:port]].../NAME
 *       [?db=N][&sentinel_user=U][&sentinel_password=P]
 * Defaults: host 127.0.0.1, port 6379 (26379 for a sentinel), db 0. User
 * and password are percent-decoded (write "@" as %40, ":" in a user as
 * %3A). A cluster URL names one or more nodes of a Redis Cluster to read
 * the slot map from (any node will do; llmb/cluster.h); a cluster has only
 * db 0. A sentinel URL names the sentinels that watch the primary called
 * NAME (llmb/connect.h asks them where it is); user and password are the
 * primary's, sentinel_user and sentinel_password the sentinels' own.
 * Either names at most 64 nodes.
 */
#ifndef LLMB_URL_H
#define LLMB_URL_H

#include <stdbool.h>
#include <stddef.h>

/* One node named by a cluster URL, or one sentinel of a sentinel URL. */
struct llmb_redis_seed {
    char *host;
    int port;
};

/* A parsed URL. Strings are owned; llmb_redis_url_fini() frees them. */
struct llmb_redis_url {
    char *host;        /* host name or address (no brackets); NULL for unix */
    int port;          /* 1..65535; 0 for unix */
    char *user;        /* ACL user, or NULL for the default user */
    char *password;    /* or NULL: no AUTH */
    int db;            /* SELECT index, >= 0 */
    char *socket_path; /* absolute path for unix://, else NULL */
    bool cluster;      /* redis+cluster://: host and port are the first
                          seed's */
    struct llmb_redis_seed *seeds; /* the nodes of a cluster URL, the
                                      sentinels of a sentinel URL */
    size_t nseeds;
    bool sentinel;     /* redis+sentinel://: host is NULL, the server is
                          found through the sentinels (seeds) */
    char *master_name; /* the primary's name at the sentinels */
    char *sentinel_user, *sentinel_password; /* AUTH at the sentinels, or
                                                NULL */
};

/* Parses s into *out. Returns 0, or LLMB_EINVAL with *out zeroed and, if
 * errstr is not NULL, a malloc'd message for the user in *errstr, such as
 *   redis URL "x" must start with redis://, redis+cluster:// or unix://
 * Messages show the URL with its password masked. */
int llmb_redis_url_parse(const char *s, struct llmb_redis_url *out,
                         char **errstr);

/* Frees the strings of u and zeroes it; accepts a zeroed struct. */
void llmb_redis_url_fini(struct llmb_redis_url *u);

/* Returns a malloc'd copy of s with any password replaced by "***", for
 * logs and --dump-config; works on malformed URLs too. */
char *llmb_redis_url_redacted(const char *s);

/* Returns a malloc'd "host:port", or "[host]:port" for an IPv6 address
 * (a host holding a colon), for messages and node names. */
char *llmb_hostport(const char *host, int port);

/* Returns a malloc'd "host:port", "[v6]:port", "unix:/path" or
 * "sentinel:NAME" naming the server of u, for messages. */
char *llmb_redis_url_address(const struct llmb_redis_url *u);

#endif
