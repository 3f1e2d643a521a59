/*
 * llmb's own HTTP/1.1 client for plain-HTTP endpoints, on the worker's
 * libev loop. Why: with libcurl 7.88 each streamed chunk costs a poll
 * after every read, a walk of curl's transfer state machine and its
 * chunked decoding, about a third of the client's CPU per chunk
 * (docs/llm.md, "How true the clock is"); here a chunk is one readiness,
 * one recv(2) and llm_h1.c's framing.
 *
 * libcurl still makes the connections: a CURLOPT_CONNECT_ONLY transfer on
 * the instance's curl multi handles (llm_multi.c) resolves the name,
 * tries the addresses and keeps to the connect timeout; when it is done
 * the socket is taken over. libcurl 7.88 closes a connect-only connection
 * as its handle leaves the multi handle; its close goes through
 * CURLOPT_CLOSESOCKETFUNCTION, which leaves that one socket open for us.
 *
 * Kept connections. A response read to its end on a connection that may
 * stay open (llm_h1.c's keep_alive) puts the connection on its origin's
 * idle list, the most recent first; a request takes the most recent one,
 * after a peek that finds it neither closed nor holding stray bytes. A
 * request whose kept connection turns out closed by the server before a
 * byte of the response came (its keep-alive timeout raced the send) is
 * sent again once on a fresh connection, as libcurl does. The pool keeps
 * at most as many idle connections as were ever in use at once, and
 * none idle longer than 118 s (IDLE_MAX_US, libcurl's default); a
 * request's start, at most every 100 ms, closes those of any origin
 * that are too old or that the server closed.
 *
 * One read per readiness: the loop is level-triggered, so bytes left over
 * wake it again in the next pass, and a chunk never costs a second recv
 * that only says EAGAIN.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <llmb/err.h>
#include <llmb/list.h>
#include <llmb/log.h>

#include "llm.h"

#define IDLE_MAX_US (118 * (int64_t)1000000)
#define READ_BUF 16384
#define PRUNE_EVERY_US 100000
#define PRUNE_PEEKS 64

struct origin;

struct llmb_llm_conn {
    int fd;                    /* -1 while connecting */
    struct llmb_llm_pool *pool;
    struct origin *o;
    struct llmb_llm_exch *e;   /* using it; NULL when idle */
    struct llmb_llm_xfer x;    /* the connect; x.easy NULL after it */
    bool adopted;              /* the close callback left fd to us */
    bool connecting;           /* our own connect() is under way */
    bool reused;               /* it carried a request before */
    int64_t idle_us;           /* since when it is idle */
    int64_t checked_us;        /* when prune() last peeked at it */
    ev_io io;
    struct llmb_llm_conn *prev, *next; /* on o's idle list */
    char errbuf[CURL_ERROR_SIZE];
};

/* The connections to one authority. */
struct origin {
    char *name;
    struct llmb_llm_conn *idle; /* the most recent first */
    struct origin *prev, *next;
    bool numeric;               /* the host is an address: addr */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char host[64];              /* for messages */
    int port;
};

struct llmb_llm_pool {
    struct llmb_llm_multi *mu;
    struct ev_loop *loop;
    struct origin *origins;
    long busy;                 /* connections in use or connecting */
    long idle;
    long peak;                 /* the most busy ever: the idle cap */
    int64_t pruned_us;         /* the last walk of the idle lists */
    bool curl_keeps;           /* libcurl kept a connection it made for
                                  us: host names cannot be connected */
    char buf[READ_BUF];        /* every read lands here, one at a time */
};

bool llmb_llm_exch_fits(const char *url)
{
    static const char *const proxies[] = {"http_proxy", "all_proxy",
                                          "ALL_PROXY"};
    const char *auth, *end;

    if (strncmp(url, "http://", 7) != 0)
        return false;
    auth = url + 7;
    end = auth + strcspn(auth, "/?#");
    if (memchr(auth, '@', (size_t)(end - auth)) != NULL)
        return false;
    for (size_t i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++) {
        const char *v = getenv(proxies[i]);
        if (v != NULL && v[0] != '\0')
            return false;
    }
    return true;
}

static struct llmb_llm_pool *pool_of(struct llmb_llm_multi *mu)
{
    struct llmb_llm_pool **pp = llmb_llm_multi_pool(mu);

    if (*pp == NULL) {
        *pp = llmb_xcalloc(1, sizeof(**pp));
        (*pp)->mu = mu;
        (*pp)->loop = llmb_llm_multi_loop(mu);
    }
    return *pp;
}

/* Reads o->name, an authority "host[:port]" or "[v6]:port": when the
 * host is an IPv4 or IPv6 address, o->addr gets it with the port. */
static void origin_address(struct origin *o)
{
    const char *n = o->name, *colon;
    char port[8];
    size_t hlen;
    struct addrinfo hints, *ai = NULL;

    if (n[0] == '[') {
        const char *close = strchr(n, ']');
        if (close == NULL)
            return;
        hlen = (size_t)(close - n - 1);
        n++;
        colon = close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = strchr(n, ':');
        hlen = colon != NULL ? (size_t)(colon - n) : strlen(n);
    }
    if (hlen == 0 || hlen >= sizeof(o->host) ||
        (colon != NULL && (strlen(colon + 1) == 0 ||
                           strlen(colon + 1) >= sizeof(port) ||
                           strspn(colon + 1, "0123456789") !=
                           strlen(colon + 1))))
        return;
    memcpy(o->host, n, hlen);
    o->host[hlen] = '\0';
    snprintf(port, sizeof(port), "%s", colon != NULL ? colon + 1 : "80");
    o->port = atoi(port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (o->port < 1 || o->port > 65535 ||
        getaddrinfo(o->host, port, &hints, &ai) != 0 || ai == NULL)
        return;
    if (ai->ai_addrlen <= sizeof(o->addr)) {
        memcpy(&o->addr, ai->ai_addr, ai->ai_addrlen);
        o->addr_len = ai->ai_addrlen;
        o->numeric = true;
    }
    freeaddrinfo(ai);
}

static struct origin *origin_of(struct llmb_llm_pool *p, const char *name)
{
    struct origin *o;

    for (o = p->origins; o != NULL; o = o->next)
        if (strcmp(o->name, name) == 0)
            return o;
    o = llmb_xcalloc(1, sizeof(*o));
    o->name = llmb_xstrdup(name);
    origin_address(o);
    LLMB_LIST_INSERT(p->origins, o);
    return o;
}

/* Closes and frees c, which is on no idle list. */
static void conn_free(struct llmb_llm_conn *c)
{
    struct llmb_llm_pool *p = c->pool;

    if (c->x.easy != NULL) {
        llmb_llm_multi_remove(p->mu, &c->x);
        llmb_curl.easy_cleanup(c->x.easy);
    }
    if (c->fd >= 0) {
        ev_io_stop(p->loop, &c->io);
        close(c->fd);
    }
    free(c);
}

static void conn_drop(struct llmb_llm_conn *c)
{
    c->pool->busy--;
    conn_free(c);
}

/* CURLOPT_CLOSESOCKETFUNCTION: libcurl closes a socket of c's connect;
 * the connected one, once it is ours (x.fd read as the transfer ended),
 * stays open. */
static int closesocket_cb(void *clientp, curl_socket_t fd)
{
    struct llmb_llm_conn *c = clientp;

    if (c->x.adopt && c->x.fd != CURL_SOCKET_BAD && fd == c->x.fd &&
        !c->adopted) {
        c->adopted = true;
        return 0;
    }
    return close(fd);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void connect_failed(struct llmb_llm_exch *e, int err);
static bool all_written(const struct llmb_llm_exch *e);

/* Ends e with rc: its connection goes back to the pool when keep is
 * true, else it is closed. The done callback runs now, or from the loop's
 * next pass when e is still being started. */
static void finish(struct llmb_llm_exch *e, CURLcode rc, bool keep)
{
    struct llmb_llm_conn *c = e->conn;
    struct llmb_llm_pool *p = pool_of(e->mu);

    ev_timer_stop(p->loop, &e->timer);
    e->conn = NULL;
    if (c != NULL) {
        c->e = NULL;
        if (keep && c->fd >= 0 && all_written(e) && p->idle < p->peak) {
            ev_io_stop(p->loop, &c->io);
            c->reused = true;
            c->idle_us = c->checked_us = llmb_mono_us();
            p->busy--;
            p->idle++;
            LLMB_LIST_INSERT(c->o->idle, c);
        } else {
            conn_drop(c);
        }
    }
    if (e->starting) {
        e->rc = rc;
        e->ending = true;
        ev_timer_set(&e->timer, 0.0, 0.0);
        ev_timer_start(p->loop, &e->timer);
        return;
    }
    e->done(e, rc);
}

/* Ends e with rc, why being prefix and what. */
static void fail(struct llmb_llm_exch *e, CURLcode rc, const char *prefix,
                 const char *what)
{
    if (e->errbuf != NULL && e->errbuf[0] == '\0')
        snprintf(e->errbuf, CURL_ERROR_SIZE, "%s%s", prefix, what);
    finish(e, rc, false);
}

static bool resend(struct llmb_llm_exch *e);

/* Whether all of e's request is out. */
static bool all_written(const struct llmb_llm_exch *e)
{
    return e->written == e->out[0].iov_len + e->out[1].iov_len +
                         e->out[2].iov_len;
}

/* Stops writing e's request: the server answered before it had read all
 * of it; its answer is read to its end, and the connection then closed
 * (finish keeps no connection whose request is not all out). */
static void stop_sending(struct llmb_llm_exch *e)
{
    struct llmb_llm_conn *c = e->conn;
    struct ev_loop *loop = c->pool->loop;

    ev_io_stop(loop, &c->io);
    ev_io_set(&c->io, c->fd, EV_READ);
    ev_io_start(loop, &c->io);
}

/* Writes what is left of e's request. Returns 0 when all of it is out,
 * 1 when the socket is full, -1 on an error (e ended, went again on a
 * fresh connection, or only reads the answer that came). */
static int send_some(struct llmb_llm_exch *e)
{
    struct llmb_llm_conn *c = e->conn;
    struct iovec iov[3];
    struct msghdr msg;
    size_t skip = e->written, n = 0;
    ssize_t w;

    for (int i = 0; i < 3; i++) {
        if (skip >= e->out[i].iov_len) {
            skip -= e->out[i].iov_len;
            continue;
        }
        iov[n].iov_base = (char *)e->out[i].iov_base + skip;
        iov[n].iov_len = e->out[i].iov_len - skip;
        skip = 0;
        n++;
    }
    if (n == 0)
        return 0;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
        int err = errno;
        char b;
        if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
            return 1;
        /* the server answered and closed without reading all of it (a
         * body over its limit): its answer is the result, as libcurl's */
        if (e->fed > 0 || recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
            stop_sending(e);
            return -1;
        }
        if (!resend(e))
            fail(e, CURLE_SEND_ERROR, "cannot send the request: ",
                 strerror(err));
        return -1;
    }
    e->written += (size_t)w;
    return all_written(e) ? 0 : 1;
}

/* Sends e's request on its connection c (connected and ours). */
static void send_request(struct llmb_llm_exch *e)
{
    struct llmb_llm_conn *c = e->conn;
    struct llmb_llm_pool *p = pool_of(e->mu);
    int rc;

    e->connected = true;
    if (e->short_timer) { /* the rest of timeout_s */
        double left = e->timeout_s -
                      (double)(llmb_mono_us() - e->start_us) / 1e6;
        e->short_timer = false;
        ev_timer_stop(p->loop, &e->timer);
        ev_timer_set(&e->timer, left > 0 ? left : 0.0, 0.0);
        ev_timer_start(p->loop, &e->timer);
    }
    e->written = 0; /* (nothing was read yet: resend needs fed 0) */
    if (e->sent != NULL)
        e->sent(e);
    rc = send_some(e);
    if (rc < 0)
        return;
    ev_io_stop(p->loop, &c->io);
    ev_io_set(&c->io, c->fd, rc == 0 ? EV_READ : EV_READ | EV_WRITE);
    ev_io_start(p->loop, &c->io);
}

static void connect_start(struct llmb_llm_exch *e, struct origin *o);

/* A kept connection closed under a request sent on it: once, the
 * request goes again on a fresh connection. Returns true when it did. */
static bool resend(struct llmb_llm_exch *e)
{
    struct llmb_llm_conn *c = e->conn;
    struct origin *o = c->o;

    if (!c->reused || e->fed > 0 || e->resent)
        return false;
    e->resent = true;
    e->connected = false; /* until the fresh connection is made */
    e->conn = NULL;
    conn_drop(c);
    connect_start(e, o);
    return true;
}

/* Reads once from c's socket and feeds the response. Returns true when
 * e goes on on c; false when it ended (e may be freed) or went again on
 * a fresh connection. */
static bool read_once(struct llmb_llm_exch *e)
{
    struct llmb_llm_conn *c = e->conn;
    struct llmb_llm_pool *p = c->pool;
    int64_t at;
    ssize_t r, used;
    bool on = false;

    /* one recvmsg: the bytes, and the kernel's receive time of the last
     * of them (SO_TIMESTAMPNS, on since the connect), which stamps every
     * chunk they hold: TTFT, TTFB and every token gap */
    r = llmb_llm_recv_stamped(c->fd, p->buf, sizeof(p->buf), 0, &at);
    if (r > 0)
        llmb_llm_multi_rx_at(p->mu, e, at);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        goto out;
    if (r <= 0) {
        int err = r < 0 ? errno : 0;
        if (resend(e))
            goto out;
        if (r == 0 && llmb_h1_eof(&e->resp) == 0) {
            finish(e, CURLE_OK, false);
        } else if (err != 0) {
            fail(e, CURLE_RECV_ERROR, "Recv failure: ", strerror(err));
        } else if (e->fed == 0) {
            fail(e, CURLE_GOT_NOTHING, "", "Empty reply from server");
        } else {
            fail(e, CURLE_PARTIAL_FILE, "", e->resp.error);
        }
        goto out;
    }
    e->fed += (size_t)r;
    used = llmb_h1_feed(&e->resp, p->buf, (size_t)r, e->body, e);
    if (used == LLMB_H1_STOPPED)
        finish(e, CURLE_WRITE_ERROR, false);
    else if (used < 0) {
        /* a head broken after its status line still has its status,
         * which classifies the attempt (a 503 is retried as one) */
        if (e->resp.status == 0 && e->resp.code >= 200)
            e->resp.status = e->resp.code;
        fail(e, CURLE_WEIRD_SERVER_REPLY, "", e->resp.error);
    }
    else if (e->resp.done)
        /* bytes past the response: a server out of step, not kept */
        finish(e, CURLE_OK, e->resp.keep_alive && used == r);
    else
        on = true;
out:
    llmb_llm_multi_rx_end(p->mu);
    return on;
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct llmb_llm_conn *c = w->data;
    struct llmb_llm_exch *e = c->e;

    if (e == NULL) { /* cannot be: idle connections are not watched */
        ev_io_stop(loop, w);
        return;
    }
    if (c->connecting) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        c->connecting = false;
        if (err != 0) {
            connect_failed(e, err);
            return;
        }
        send_request(e);
        return;
    }
    if (revents & EV_READ) {
        /* an answer, even while the request is going out (a server may
         * answer before it has read the body): libcurl too stops sending
         * on an error status then */
        if (read_once(e) && !all_written(e) && e->resp.head_done &&
            e->resp.status >= 300)
            stop_sending(e);
        return;
    }
    if (revents & EV_WRITE) {
        int rc = send_some(e);
        if (rc == 0) {
            ev_io_stop(loop, w);
            ev_io_set(w, c->fd, EV_READ);
            ev_io_start(loop, w);
        }
    }
}

/* The connect transfer of c ended. */
static void connected_cb(struct llmb_llm_xfer *x, CURLcode rc)
{
    struct llmb_llm_conn *c = (struct llmb_llm_conn *)
        ((char *)x - offsetof(struct llmb_llm_conn, x));
    struct llmb_llm_exch *e = c->e;
    int one = 1;

    /* out of the multi handle already; libcurl has closed the connection
     * but for the socket the close callback kept */
    if (rc == CURLE_OK && !c->adopted) {
        /* Not so with libcurl 7.88. The connection is still libcurl's,
         * which may call c's close callback later: c stays allocated,
         * off every list, and that callback then closes the socket. */
        llmb_error("llm: libcurl kept the connection it made "
                   "(CURLOPT_CONNECT_ONLY); requests to endpoints named by "
                   "host name fail: give them client=libcurl "
                   "(--llm-endpoint NAME=URL,client=libcurl)");
        c->pool->curl_keeps = true;
        llmb_curl.easy_cleanup(c->x.easy);
        c->x.easy = NULL;
        c->x.adopt = false;
        c->e = NULL;
        e->conn = NULL;
        c->pool->busy--;
        if (e->errbuf != NULL && e->errbuf[0] == '\0')
            snprintf(e->errbuf, CURL_ERROR_SIZE, "libcurl kept the "
                     "connection it made (CURLOPT_CONNECT_ONLY); give the "
                     "endpoint client=libcurl");
        finish(e, CURLE_COULDNT_CONNECT, false);
        return;
    }
    llmb_curl.easy_cleanup(c->x.easy);
    c->x.easy = NULL;
    if (rc != CURLE_OK) {
        if (e->errbuf != NULL && e->errbuf[0] == '\0')
            snprintf(e->errbuf, CURL_ERROR_SIZE, "%s",
                     c->errbuf[0] != '\0' ? c->errbuf :
                     llmb_curl.easy_strerror(rc));
        finish(e, rc, false);
        return;
    }
    c->fd = x->fd;
    ev_io_init(&c->io, io_cb, c->fd, EV_READ);
    c->io.data = c;
    /* the kernel's receive time of every read (read_once) */
    (void)setsockopt(c->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
    send_request(e);
}

/* Our own connect failed with err: the message libcurl would give. */
static void connect_failed(struct llmb_llm_exch *e, int err)
{
    const struct origin *o = e->conn->o;

    if (e->errbuf != NULL && e->errbuf[0] == '\0')
        snprintf(e->errbuf, CURL_ERROR_SIZE, "Failed to connect to %s port "
                 "%d: %s", o->host, o->port, strerror(err));
    finish(e, CURLE_COULDNT_CONNECT, false);
}

/* Connects c to its origin's address without libcurl: a numeric host
 * needs no name resolution, and one address no happy eyeballs. */
static void connect_direct(struct llmb_llm_exch *e, struct llmb_llm_conn *c)
{
    struct llmb_llm_pool *p = c->pool;
    const struct origin *o = c->o;
    int one = 1;

    c->fd = socket(o->addr.ss_family,
                   SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        connect_failed(e, errno);
        return;
    }
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)setsockopt(c->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
    ev_io_init(&c->io, io_cb, c->fd, EV_WRITE);
    c->io.data = c;
    if (connect(c->fd, (const struct sockaddr *)&o->addr, o->addr_len) == 0) {
        send_request(e);
        return;
    }
    if (errno != EINPROGRESS) {
        connect_failed(e, errno);
        return;
    }
    c->connecting = true;
    ev_io_start(p->loop, &c->io);
}

/* A fresh connection for e to its origin o. */
static void connect_start(struct llmb_llm_exch *e, struct origin *o)
{
    struct llmb_llm_pool *p = pool_of(e->mu);
    struct llmb_llm_conn *c;
    CURL *h;

    if (!o->numeric && p->curl_keeps) { /* (connected_cb said why) */
        fail(e, CURLE_COULDNT_CONNECT, "", "libcurl keeps the connections "
             "it makes (CURLOPT_CONNECT_ONLY); give the endpoint "
             "client=libcurl");
        return;
    }
    c = llmb_xcalloc(1, sizeof(*c));
    c->fd = -1;
    c->pool = p;
    c->o = o;
    c->e = e;
    e->conn = c;
    if (++p->busy > p->peak)
        p->peak = p->busy;
    if (c->o->numeric) {
        /* libcurl keeps to its connect timeout itself; here the timer
         * does, until the connection is made (send_request) */
        double left = e->timeout_s -
                      (double)(llmb_mono_us() - e->start_us) / 1e6;
        if ((double)e->connect_timeout_ms / 1000.0 < left) {
            ev_timer_stop(p->loop, &e->timer);
            ev_timer_set(&e->timer, (double)e->connect_timeout_ms / 1000.0,
                         0.0);
            ev_timer_start(p->loop, &e->timer);
            e->short_timer = true;
        }
        connect_direct(e, c);
        return;
    }
    h = llmb_curl.easy_init();
    if (h == NULL) {
        fail(e, CURLE_OUT_OF_MEMORY, "", "curl_easy_init failed");
        return;
    }
    c->x.easy = h;
    c->x.done = connected_cb;
    c->x.key = e->key;
    c->x.adopt = true;
    c->x.fd = CURL_SOCKET_BAD;
    llmb_curl.easy_setopt(h, CURLOPT_URL, e->url);
    llmb_curl.easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
    llmb_curl.easy_setopt(h, CURLOPT_PROXY, "");
    llmb_curl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    llmb_curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    llmb_curl.easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    llmb_curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, e->connect_timeout_ms);
    llmb_curl.easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    llmb_curl.easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, closesocket_cb);
    llmb_curl.easy_setopt(h, CURLOPT_CLOSESOCKETDATA, c);
    if (llmb_llm_multi_add(e->mu, &c->x) != 0) {
        llmb_curl.easy_cleanup(h);
        c->x.easy = NULL;
        fail(e, CURLE_FAILED_INIT, "", "curl_multi_add_handle failed");
    }
}

/* True when idle c is still open with nothing waiting on it. */
static bool idle_ok(const struct llmb_llm_conn *c, int64_t now)
{
    char b;
    ssize_t r;

    if (now - c->idle_us > IDLE_MAX_US)
        return false;
    r = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Closes the idle connections of every origin that the server closed or
 * that are too old (as libcurl prunes its cache): else those of an origin
 * no request goes to any more stay open. A walk every PRUNE_EVERY_US at
 * most, on a request's start; it peeks at up to PRUNE_PEEKS connections
 * not checked for a second, so that one start never pays a system call
 * per idle connection (2,048 of them would take about a millisecond). */
static void prune(struct llmb_llm_pool *p, int64_t now)
{
    int peeks = 0;

    if (now - p->pruned_us < PRUNE_EVERY_US)
        return;
    p->pruned_us = now;
    for (struct origin *o = p->origins; o != NULL; o = o->next) {
        struct llmb_llm_conn *c = o->idle, *next;
        for (; c != NULL; c = next) {
            next = c->next;
            if (now - c->idle_us <= IDLE_MAX_US) {
                if (now - c->checked_us < 1000000 || peeks >= PRUNE_PEEKS)
                    continue;
                peeks++;
                c->checked_us = now;
                if (idle_ok(c, now))
                    continue;
            }
            LLMB_LIST_REMOVE(o->idle, c);
            p->idle--;
            conn_free(c);
        }
    }
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct llmb_llm_exch *e = w->data;

    (void)loop;
    (void)revents;
    if (e->ending) { /* ended while it was being started */
        e->ending = false;
        e->done(e, e->rc);
        return;
    }
    /* (in libcurl's words, which the classification wraps) */
    if (e->errbuf != NULL && e->errbuf[0] == '\0') {
        double ms = (double)(llmb_mono_us() - e->start_us) / 1000.0;
        if (e->connected)
            snprintf(e->errbuf, CURL_ERROR_SIZE, "Operation timed out after "
                     "%.0f milliseconds with %zu bytes received", ms, e->fed);
        else
            snprintf(e->errbuf, CURL_ERROR_SIZE, "Connection timed out "
                     "after %.0f milliseconds", ms);
    }
    finish(e, CURLE_OPERATION_TIMEDOUT, false);
}

void llmb_llm_exch_start(struct llmb_llm_multi *mu, struct llmb_llm_exch *e)
{
    struct llmb_llm_pool *p = pool_of(mu);
    struct origin *o = origin_of(p, e->origin);
    int64_t now = llmb_mono_us();

    prune(p, now);
    e->mu = mu;
    e->conn = NULL;
    e->connected = e->resent = e->ending = e->short_timer = false;
    e->starting = true;
    e->start_us = now;
    e->written = e->fed = 0;
    llmb_h1_init(&e->resp, false);
    ev_timer_init(&e->timer, timer_cb, e->timeout_s, 0.0);
    e->timer.data = e;
    ev_timer_start(p->loop, &e->timer);
    while (o->idle != NULL) {
        struct llmb_llm_conn *c = o->idle;
        LLMB_LIST_REMOVE(o->idle, c);
        p->idle--;
        p->busy++;
        if (!idle_ok(c, now)) {
            conn_drop(c);
            continue;
        }
        c->e = e;
        e->conn = c;
        send_request(e);
        e->starting = false;
        return;
    }
    connect_start(e, o);
    e->starting = false;
}

void llmb_llm_exch_stop(struct llmb_llm_exch *e)
{
    if (e->mu == NULL)
        return;
    e->ending = false;
    ev_timer_stop(pool_of(e->mu)->loop, &e->timer);
    if (e->conn != NULL) {
        e->conn->e = NULL;
        conn_drop(e->conn);
        e->conn = NULL;
    }
}

void llmb_llm_pool_free(struct llmb_llm_pool *p)
{
    if (p == NULL)
        return;
    while (p->origins != NULL) {
        struct origin *o = p->origins;
        while (o->idle != NULL) {
            struct llmb_llm_conn *c = o->idle;
            LLMB_LIST_REMOVE(o->idle, c);
            conn_free(c);
        }
        LLMB_LIST_REMOVE(p->origins, o);
        free(o->name);
        free(o);
    }
    free(p);
}
