/*
 * Parsing of Redis URLs (--redis, LLMB_REDIS_URL) into host, port, user,
 * password, db or socket path, or the nodes of a cluster, or the sentinels
 * and the primary's name. The connection code (conn.c, and the async
 * connection) only ever sees a parsed struct llmb_redis_url. Every error
 * says what is wrong in words a user can act on, and never shows the
 * password.
 */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llmb/err.h>
#include <llmb/url.h>
#include <llmb/util.h>

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 6379
#define DEFAULT_SENTINEL_PORT 26379

/* Sets *errstr (when wanted) to: redis URL "<s, redacted>"<formatted>. */
static void url_error(char **errstr, const char *s, const char *fmt, ...)
    LLMB_PRINTF(3, 4);

static void url_error(char **errstr, const char *s, const char *fmt, ...)
{
    struct llmb_buf b;
    char *shown;
    va_list ap;

    if (errstr == NULL)
        return;
    shown = llmb_redis_url_redacted(s);
    llmb_buf_init(&b);
    llmb_buf_appendf(&b, "redis URL \"%s\"", shown);
    va_start(ap, fmt);
    llmb_buf_vappendf(&b, fmt, ap);
    va_end(ap);
    free(shown);
    *errstr = llmb_buf_steal(&b);
}

/* Percent-decodes the n bytes at s into a new string in *out (NULL when n
 * is 0). Returns 0, or -1 on a malformed escape or an escaped NUL. */
static int pct_decode(const char *s, size_t n, char **out)
{
    char *d, *p;

    *out = NULL;
    if (n == 0)
        return 0;
    d = p = llmb_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *p++ = s[i];
            continue;
        }
        if (n - i < 3 || llmb_hex_digit(s[i + 1]) < 0 || llmb_hex_digit(s[i + 2]) < 0 ||
            (s[i + 1] == '0' && s[i + 2] == '0')) {
            free(d);
            return -1;
        }
        *p++ = (char)(llmb_hex_digit(s[i + 1]) * 16 + llmb_hex_digit(s[i + 2]));
        i += 2;
    }
    *p = '\0';
    *out = d;
    return 0;
}

static bool host_char_ok(char c, bool bracketed)
{
    if (isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_')
        return true;
    return bracketed && (c == ':' || c == '%');
}

/* Parses a port or db number given as the n bytes at s. */
static int parse_num(const char *s, size_t n, long long min, long long max,
                     int *out)
{
    char *tmp = llmb_xstrndup(s, n);
    long long v = 0;
    int rc = llmb_parse_ll(tmp, min, max, &v);

    free(tmp);
    if (rc == 0)
        *out = (int)v;
    return rc;
}

/* Parses "[user]:password" (the n bytes at s) into out. */
static int parse_userinfo(const char *url, const char *s, size_t n,
                          struct llmb_redis_url *out, char **errstr)
{
    const char *colon = memchr(s, ':', n);

    if (colon == NULL) {
        url_error(errstr, url, ": \"%.*s@\" has no password; write "
                  "redis://:PASSWORD@host or redis://USER:PASSWORD@host",
                  (int)n, s);
        return LLMB_EINVAL;
    }
    if (pct_decode(s, (size_t)(colon - s), &out->user) != 0) {
        url_error(errstr, url, ": bad %%-escape in the user name");
        return LLMB_EINVAL;
    }
    if (pct_decode(colon + 1, (size_t)(s + n - colon - 1), &out->password)) {
        url_error(errstr, url, ": bad %%-escape in the password");
        return LLMB_EINVAL;
    }
    if (out->user != NULL && out->password == NULL) {
        url_error(errstr, url, ": user \"%s\" has an empty password",
                  out->user);
        return LLMB_EINVAL;
    }
    return LLMB_OK;
}

/* Parses "host[:port]" or "[v6][:port]", the hplen bytes at hp, into a
 * new string in *host (127.0.0.1 when empty) and *port (defport when
 * absent). When an '@' follows in the URL, the text may be part of a
 * password with an unescaped '/', so errors do not repeat it. */
static int parse_hostport(const char *url, const char *hp, size_t hplen,
                          int defport, char **hostout, int *portout,
                          char **errstr)
{
    const char *tail = hp + hplen;
    const char *host = hp, *port = NULL;
    size_t hostlen = hplen, portlen = 0;
    bool bracketed = false;
    bool secret = strchr(hp, '@') != NULL;

    if (hplen > 0 && hp[0] == '[') {
        const char *close = memchr(hp, ']', hplen);
        if (close == NULL) {
            url_error(errstr, url, ": missing \"]\" after the IPv6 address");
            return LLMB_EINVAL;
        }
        bracketed = true;
        host = hp + 1;
        hostlen = (size_t)(close - host);
        if (close + 1 < tail) {
            if (close[1] != ':') {
                if (secret)
                    url_error(errstr, url, ": unexpected text after the IPv6 "
                              "address");
                else
                    url_error(errstr, url, ": unexpected \"%.*s\" after the "
                              "IPv6 address", (int)(tail - close - 1),
                              close + 1);
                return LLMB_EINVAL;
            }
            port = close + 2;
            portlen = (size_t)(tail - port);
        } else if (close + 1 == tail && hostlen == 0) {
            url_error(errstr, url, ": empty IPv6 address \"[]\"");
            return LLMB_EINVAL;
        }
    } else {
        const char *colon = memchr(hp, ':', hplen);
        if (colon != NULL) {
            if (memchr(colon + 1, ':', (size_t)(tail - colon - 1)) != NULL) {
                url_error(errstr, url, ": IPv6 addresses must be in "
                          "brackets, like redis://[::1]:6379");
                return LLMB_EINVAL;
            }
            hostlen = (size_t)(colon - hp);
            port = colon + 1;
            portlen = (size_t)(tail - port);
        }
    }

    for (size_t i = 0; i < hostlen; i++) {
        if (!host_char_ok(host[i], bracketed)) {
            if (secret)
                url_error(errstr, url, ": bad host");
            else
                url_error(errstr, url, ": bad host \"%.*s\"", (int)hostlen,
                          host);
            return LLMB_EINVAL;
        }
    }
    *portout = defport;
    if (port != NULL && parse_num(port, portlen, 1, 65535, portout) != 0) {
        if (secret)
            url_error(errstr, url, ": port must be an integer from 1 to "
                      "65535");
        else
            url_error(errstr, url, ": port must be an integer from 1 to "
                      "65535, got \"%.*s\"", (int)portlen, port);
        return LLMB_EINVAL;
    }
    *hostout = hostlen ? llmb_xstrndup(host, hostlen)
                       : llmb_xstrdup(DEFAULT_HOST);
    return LLMB_OK;
}

/* Parses the part after "redis://". */
static int parse_tcp(const char *url, const char *rest,
                     struct llmb_redis_url *out, char **errstr)
{
    const char *at = strrchr(rest, '@');
    const char *hp = at ? at + 1 : rest;
    size_t hplen = strcspn(hp, "/?#");
    const char *tail = hp + hplen;

    if (at != NULL &&
        parse_userinfo(url, rest, (size_t)(at - rest), out, errstr) != 0)
        return LLMB_EINVAL;
    if (parse_hostport(url, hp, hplen, DEFAULT_PORT, &out->host, &out->port,
                       errstr) != 0)
        return LLMB_EINVAL;

    if (*tail == '/') {
        const char *db = tail + 1;
        size_t dblen = strcspn(db, "?#");
        if (dblen > 0 && parse_num(db, dblen, 0, INT_MAX, &out->db) != 0) {
            url_error(errstr, url, ": database must be an integer >= 0, "
                      "got \"%.*s\"", (int)dblen, db);
            return LLMB_EINVAL;
        }
        tail = db + dblen;
    }
    if (*tail != '\0') {
        url_error(errstr, url, ": unexpected \"%s\" at the end (only "
                  "redis://[[user]:password@]host[:port][/db] is accepted)",
                  tail);
        return LLMB_EINVAL;
    }
    return LLMB_OK;
}

/* The most nodes a cluster URL may name. */
#define SEEDS_MAX 64

/* Parses the comma-separated host[:port] list from hp to tail into
 * out->seeds; a port left out is defport. */
static int parse_seeds(const char *url, const char *hp, const char *tail,
                       int defport, struct llmb_redis_url *out,
                       char **errstr)
{
    const char *p = hp;

    while (p <= tail) {
        size_t n = (size_t)(tail - p);
        const char *comma = memchr(p, ',', n);
        struct llmb_redis_seed *s;

        if (comma != NULL)
            n = (size_t)(comma - p);
        if (n == 0) {
            url_error(errstr, url, ": empty node name in the list (two "
                      "commas, or one at an end)");
            return LLMB_EINVAL;
        }
        if (out->nseeds == SEEDS_MAX) {
            url_error(errstr, url, ": more than %d nodes; a few of them are "
                      "enough to find the others", SEEDS_MAX);
            return LLMB_EINVAL;
        }
        out->seeds = llmb_xrealloc(out->seeds,
                                   (out->nseeds + 1) * sizeof(*out->seeds));
        s = &out->seeds[out->nseeds];
        s->host = NULL;
        if (parse_hostport(url, p, n, defport, &s->host, &s->port,
                           errstr) != 0)
            return LLMB_EINVAL;
        out->nseeds++;
        p += n + 1;
    }
    return LLMB_OK;
}

/* Parses the part after "redis+cluster://": userinfo as for redis://,
 * then one or more host[:port] separated by commas; no database (a
 * cluster has only db 0; "/0" is taken). */
static int parse_cluster(const char *url, const char *rest,
                         struct llmb_redis_url *out, char **errstr)
{
    const char *at = strrchr(rest, '@');
    const char *hp = at ? at + 1 : rest;
    size_t hplen = strcspn(hp, "/?#");
    const char *tail = hp + hplen;

    out->cluster = true;
    if (at != NULL &&
        parse_userinfo(url, rest, (size_t)(at - rest), out, errstr) != 0)
        return LLMB_EINVAL;
    if (hplen == 0) {
        url_error(errstr, url, ": name at least one node, like "
                  "redis+cluster://10.0.0.1:7000,10.0.0.2:7000");
        return LLMB_EINVAL;
    }
    if (parse_seeds(url, hp, tail, DEFAULT_PORT, out, errstr) != 0)
        return LLMB_EINVAL;
    out->host = llmb_xstrdup(out->seeds[0].host);
    out->port = out->seeds[0].port;

    if (*tail == '/') {
        const char *db = tail + 1;
        size_t dblen = strcspn(db, "?#");
        int v = 0;
        if (dblen > 0 && (parse_num(db, dblen, 0, INT_MAX, &v) != 0 ||
                          v != 0)) {
            url_error(errstr, url, ": a cluster has only database 0, got "
                      "\"%.*s\"", (int)dblen, db);
            return LLMB_EINVAL;
        }
        tail = db + dblen;
    }
    if (*tail != '\0') {
        url_error(errstr, url, ": unexpected \"%s\" at the end (only "
                  "redis+cluster://[[user]:password@]host[:port][,host[:port]]"
                  "... is accepted)", tail);
        return LLMB_EINVAL;
    }
    return LLMB_OK;
}

/* Parses one "name=value" query parameter of a unix:// URL. */
static int parse_param(const char *url, const char *p, size_t n,
                       struct llmb_redis_url *out, char **errstr)
{
    const char *eq = memchr(p, '=', n);
    size_t namelen = eq ? (size_t)(eq - p) : n;
    const char *val = eq ? eq + 1 : p + n;
    size_t vallen = (size_t)(p + n - val);
    char **dst = NULL;

    if (namelen == 2 && strncmp(p, "db", 2) == 0) {
        if (parse_num(val, vallen, 0, INT_MAX, &out->db) != 0) {
            url_error(errstr, url, ": database must be an integer >= 0, "
                      "got \"%.*s\"", (int)vallen, val);
            return LLMB_EINVAL;
        }
        return LLMB_OK;
    }
    if (out->sentinel) {
        if (namelen == 13 && strncmp(p, "sentinel_user", 13) == 0)
            dst = &out->sentinel_user;
        else if (namelen == 17 && strncmp(p, "sentinel_password", 17) == 0)
            dst = &out->sentinel_password;
    } else if (namelen == 4 && strncmp(p, "user", 4) == 0) {
        dst = &out->user;
    } else if (namelen == 8 && strncmp(p, "password", 8) == 0) {
        dst = &out->password;
    }
    if (dst == NULL) {
        url_error(errstr, url, ": unknown parameter \"%.*s\" (known: %s)",
                  (int)namelen, p, out->sentinel ?
                  "db, sentinel_user, sentinel_password" :
                  "db, user, password");
        return LLMB_EINVAL;
    }
    free(*dst);
    if (pct_decode(val, vallen, dst) != 0) {
        url_error(errstr, url, ": bad %%-escape in parameter \"%.*s\"",
                  (int)namelen, p);
        return LLMB_EINVAL;
    }
    return LLMB_OK;
}

/* Parses the "?name=value&..." parameters at q (the rest of the URL). */
static int parse_query(const char *url, const char *q,
                       struct llmb_redis_url *out, char **errstr)
{
    if (*q == '#') {
        url_error(errstr, url, ": unexpected \"%s\" at the end", q);
        return LLMB_EINVAL;
    }
    while (*q == '?' || *q == '&') {
        const char *p = q + 1;
        size_t n = strcspn(p, "&#");
        if (n > 0 && parse_param(url, p, n, out, errstr) != 0)
            return LLMB_EINVAL;
        q = p + n;
        if (*q == '#') {
            url_error(errstr, url, ": unexpected \"%s\" at the end", q);
            return LLMB_EINVAL;
        }
    }
    return LLMB_OK;
}

/* Parses the part after "unix://". */
static int parse_unix(const char *url, const char *rest,
                      struct llmb_redis_url *out, char **errstr)
{
    size_t pathlen = strcspn(rest, "?#");
    const char *q = rest + pathlen;

    if (pathlen == 0 || rest[0] != '/') {
        url_error(errstr, url, ": the socket path must be absolute, like "
                  "unix:///run/redis/redis.sock");
        return LLMB_EINVAL;
    }
    if (pct_decode(rest, pathlen, &out->socket_path) != 0) {
        url_error(errstr, url, ": bad %%-escape in the socket path");
        return LLMB_EINVAL;
    }
    if (parse_query(url, q, out, errstr) != 0)
        return LLMB_EINVAL;
    if (out->user != NULL && out->password == NULL) {
        url_error(errstr, url, ": user \"%s\" has no password", out->user);
        return LLMB_EINVAL;
    }
    return LLMB_OK;
}

/* Parses the part after "redis+sentinel://": userinfo for the primary as
 * for redis://, the sentinels as host[:port] separated by commas (port
 * 26379 when left out), "/" and the name of the primary at the
 * sentinels, then the parameters db, sentinel_user and
 * sentinel_password. */
static int parse_sentinel(const char *url, const char *rest,
                          struct llmb_redis_url *out, char **errstr)
{
    const char *at = NULL, *hp, *tail, *name, *q;
    size_t namelen;

    out->sentinel = true;
    /* The last '@' before the path: a master name holds none. */
    for (const char *s = rest; *s != '\0' && *s != '/'; s++)
        if (*s == '@')
            at = s;
    hp = at ? at + 1 : rest;
    tail = hp + strcspn(hp, "/?#");
    if (at != NULL &&
        parse_userinfo(url, rest, (size_t)(at - rest), out, errstr) != 0)
        return LLMB_EINVAL;
    if (tail == hp) {
        url_error(errstr, url, ": name at least one sentinel, like "
                  "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster");
        return LLMB_EINVAL;
    }
    if (parse_seeds(url, hp, tail, DEFAULT_SENTINEL_PORT, out, errstr) != 0)
        return LLMB_EINVAL;
    name = *tail == '/' ? tail + 1 : tail;
    namelen = strcspn(name, "/?#");
    if (namelen == 0) {
        url_error(errstr, url, ": the name of the primary at the sentinels "
                  "is missing, like redis+sentinel://host:26379/mymaster");
        return LLMB_EINVAL;
    }
    if (pct_decode(name, namelen, &out->master_name) != 0) {
        url_error(errstr, url, ": bad %%-escape in the primary's name");
        return LLMB_EINVAL;
    }
    q = name + namelen;
    if (*q == '/') {
        url_error(errstr, url, ": unexpected \"%s\" after the primary's name "
                  "(choose the database with ?db=N)", q);
        return LLMB_EINVAL;
    }
    if (parse_query(url, q, out, errstr) != 0)
        return LLMB_EINVAL;
    if (out->sentinel_user != NULL && out->sentinel_password == NULL) {
        url_error(errstr, url, ": sentinel_user \"%s\" has no "
                  "sentinel_password", out->sentinel_user);
        return LLMB_EINVAL;
    }
    return LLMB_OK;
}

int llmb_redis_url_parse(const char *s, struct llmb_redis_url *out,
                         char **errstr)
{
    int rc;

    memset(out, 0, sizeof(*out));
    if (errstr != NULL)
        *errstr = NULL;
    if (s == NULL || *s == '\0') {
        if (errstr != NULL)
            *errstr = llmb_xstrdup("redis URL is empty; expected "
                                   "redis://host:port, "
                                   "redis+cluster://host:port,host:port, "
                                   "redis+sentinel://host:port,host:port/NAME "
                                   "or unix:///path");
        return LLMB_EINVAL;
    }
    if (strncasecmp(s, "redis://", 8) == 0) {
        rc = parse_tcp(s, s + 8, out, errstr);
    } else if (strncasecmp(s, "unix://", 7) == 0) {
        rc = parse_unix(s, s + 7, out, errstr);
    } else if (strncasecmp(s, "redis+cluster://", 16) == 0) {
        rc = parse_cluster(s, s + 16, out, errstr);
    } else if (strncasecmp(s, "redis+sentinel://", 17) == 0) {
        rc = parse_sentinel(s, s + 17, out, errstr);
    } else if (strncasecmp(s, "rediss://", 9) == 0) {
        url_error(errstr, s, ": TLS (rediss://) is not supported by this "
                  "build; use redis://, redis+cluster://, "
                  "redis+sentinel:// or unix://");
        rc = LLMB_EINVAL;
    } else {
        url_error(errstr, s, " must start with redis://, redis+cluster://, "
                  "redis+sentinel:// or unix://");
        rc = LLMB_EINVAL;
    }
    if (rc != 0)
        llmb_redis_url_fini(out);
    return rc;
}

void llmb_redis_url_fini(struct llmb_redis_url *u)
{
    free(u->host);
    free(u->user);
    free(u->password);
    free(u->socket_path);
    for (size_t i = 0; i < u->nseeds; i++)
        free(u->seeds[i].host);
    free(u->seeds);
    free(u->master_name);
    free(u->sentinel_user);
    free(u->sentinel_password);
    memset(u, 0, sizeof(*u));
}

char *llmb_redis_url_redacted(const char *s)
{
    struct llmb_buf b;
    const char *start, *at, *colon, *q;

    if (s == NULL)
        return llmb_xstrdup("");
    llmb_buf_init(&b);
    start = strstr(s, "://");
    start = start ? start + 3 : s;

    /* user:password@ -- the password runs from the first ':' to the last
     * '@' before the query, so unescaped '@' or '/' in it are hidden too,
     * and an '@' in a parameter's value is no end of a password. URLs
     * without parameters (redis://, redis+cluster://) look for the last
     * '@' of all, as their parser does. */
    if (strncasecmp(s, "redis://", 8) == 0 ||
        strncasecmp(s, "redis+cluster://", 16) == 0) {
        at = strrchr(start, '@');
    } else {
        size_t authlen = strcspn(start, "?#");
        at = NULL;
        for (const char *p = start; p < start + authlen; p++)
            if (*p == '@')
                at = p;
    }
    colon = at ? memchr(start, ':', (size_t)(at - start)) : NULL;
    if (colon != NULL && at > colon + 1) {
        llmb_buf_append(&b, s, (size_t)(colon + 1 - s));
        llmb_buf_append(&b, "***", 3);
        s = at;
    }

    /* password=... query parameters (unix:// URLs), sentinel_password=...
     * (redis+sentinel://). */
    q = strchr(s, '?');
    while (q != NULL) {
        const char *name = q + 1;
        const char *next = strchr(name, '&');
        size_t skip = strncmp(name, "password=", 9) == 0 ? 9
                      : strncmp(name, "sentinel_password=", 18) == 0 ? 18
                                                                     : 0;
        if (skip > 0) {
            llmb_buf_append(&b, s, (size_t)(name + skip - s));
            llmb_buf_append(&b, "***", 3);
            s = next ? next : name + strlen(name);
        }
        q = next;
    }
    llmb_buf_append(&b, s, strlen(s));
    return llmb_buf_steal(&b);
}

char *llmb_hostport(const char *host, int port)
{
    return strchr(host, ':') != NULL ? llmb_xasprintf("[%s]:%d", host, port)
                                     : llmb_xasprintf("%s:%d", host, port);
}

char *llmb_redis_url_address(const struct llmb_redis_url *u)
{
    if (u->socket_path != NULL)
        return llmb_xasprintf("unix:%s", u->socket_path);
    if (u->sentinel)
        return llmb_xasprintf("sentinel:%s", u->master_name);
    return llmb_hostport(u->host ? u->host : "?", u->port);
}
