/*
 * A small HTTP/1.1 server for /metrics and /healthz, on the coordinator's
 * libev loop. Non-blocking throughout: the listener and each connection
 * are ev_io watchers. One request per connection: the server reads the
 * request head (at most 8 KiB, else 431), calls the handler, writes the
 * response with Connection: close and closes. A connection idle for 5 s
 * is closed; at most 64 are open at once (more are closed on accept).
 * Request bodies are not read: only GET and HEAD are served.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>

#include <llmb/err.h>
#include <llmb/log.h>

#include "coordinator.h"

#define HEAD_MAX 8192
#define IDLE_S 5.0
#define CONNS_MAX 64

struct http_conn {
    struct llmb_http *srv;
    int fd;
    ev_io io;
    ev_timer idle;
    char in[HEAD_MAX];
    size_t inlen;
    struct llmb_buf out; /* response, once the request is read */
    size_t sent;
    bool writing;
    struct http_conn *next; /* in srv->conns */
};

struct llmb_http {
    struct ev_loop *loop;
    int fd;
    int port;
    ev_io accept_io;
    llmb_http_handler handler;
    void *arg;
    struct http_conn *conns;
    int nconns;
};

static void conn_close(struct http_conn *c)
{
    struct llmb_http *srv = c->srv;
    struct http_conn **pp;

    ev_io_stop(srv->loop, &c->io);
    ev_timer_stop(srv->loop, &c->idle);
    close(c->fd);
    for (pp = &srv->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    srv->nconns--;
    llmb_buf_fini(&c->out);
    free(c);
}

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

/* Builds the response in c->out and switches the watcher to writing. */
static void respond(struct http_conn *c, int status, const char *ctype,
                    const struct llmb_buf *body, bool head_only)
{
    llmb_buf_appendf(&c->out,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n"
                     "Connection: close\r\n\r\n",
                     status, status_text(status), ctype, body->len);
    if (!head_only)
        llmb_buf_append(&c->out, body->data, body->len);
    c->writing = true;
    ev_io_stop(c->srv->loop, &c->io);
    ev_io_set(&c->io, c->fd, EV_WRITE);
    ev_io_start(c->srv->loop, &c->io);
}

static void respond_text(struct http_conn *c, int status, const char *text)
{
    struct llmb_buf body;

    llmb_buf_init(&body);
    llmb_buf_appendf(&body, "%s\n", text);
    respond(c, status, "text/plain; charset=utf-8", &body, false);
    llmb_buf_fini(&body);
}

/* Parses the request line of the complete head in c->in and answers. */
static void handle(struct http_conn *c)
{
    char *line_end = strstr(c->in, "\r\n");
    char *method, *path, *version, *q, *save = NULL;
    struct llmb_buf body;
    const char *ctype = "text/plain; charset=utf-8";
    int status;

    if (line_end == NULL)
        line_end = strchr(c->in, '\n');
    if (line_end == NULL) {
        respond_text(c, 400, "bad request");
        return;
    }
    *line_end = '\0';
    method = strtok_r(c->in, " ", &save);
    path = strtok_r(NULL, " ", &save);
    version = strtok_r(NULL, " ", &save);
    if (method == NULL || path == NULL || version == NULL ||
        strncmp(version, "HTTP/1.", 7) != 0 || path[0] != '/') {
        respond_text(c, 400, "bad request");
        return;
    }
    q = strchr(path, '?');
    if (q != NULL)
        *q = '\0';
    llmb_buf_init(&body);
    status = c->srv->handler(c->srv->arg, method, path, &body, &ctype);
    respond(c, status, ctype, &body, strcmp(method, "HEAD") == 0);
    llmb_buf_fini(&body);
}

static void conn_read(struct http_conn *c)
{
    ssize_t n = read(c->fd, c->in + c->inlen, HEAD_MAX - 1 - c->inlen);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    c->inlen += (size_t)n;
    c->in[c->inlen] = '\0';
    ev_timer_again(c->srv->loop, &c->idle);
    if (strstr(c->in, "\r\n\r\n") != NULL || strstr(c->in, "\n\n") != NULL) {
        handle(c);
        return;
    }
    if (c->inlen >= HEAD_MAX - 1)
        respond_text(c, 431, "request head too large");
}

static void conn_write(struct http_conn *c)
{
    ssize_t n = write(c->fd, c->out.data + c->sent, c->out.len - c->sent);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->sent += (size_t)n;
    ev_timer_again(c->srv->loop, &c->idle);
    if (c->sent == c->out.len) {
        shutdown(c->fd, SHUT_WR);
        conn_close(c);
    }
}

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct http_conn *c = w->data;

    (void)loop;
    (void)revents;
    if (c->writing)
        conn_write(c);
    else
        conn_read(c);
}

static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    conn_close(w->data);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct llmb_http *srv = w->data;
    struct http_conn *c;
    int fd;

    (void)revents;
    fd = accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
            errno != ECONNABORTED)
            llmb_warn("metrics server: accept failed: %s", strerror(errno));
        return;
    }
    if (srv->nconns >= CONNS_MAX) {
        close(fd);
        return;
    }
    c = llmb_xcalloc(1, sizeof(*c));
    c->srv = srv;
    c->fd = fd;
    llmb_buf_init(&c->out);
    ev_io_init(&c->io, conn_cb, fd, EV_READ);
    c->io.data = c;
    ev_io_start(loop, &c->io);
    ev_init(&c->idle, idle_cb);
    c->idle.repeat = IDLE_S;
    c->idle.data = c;
    ev_timer_again(loop, &c->idle);
    c->next = srv->conns;
    srv->conns = c;
    srv->nconns++;
}

/* Splits "HOST:PORT", "[V6]:PORT" or ":PORT" into host (NULL = any) and
 * port. Returns 0 or LLMB_EINVAL. */
static int addr_split(const char *addr, char **host, char **port)
{
    const char *colon;

    *host = *port = NULL;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (end == NULL || end[1] != ':')
            return LLMB_EINVAL;
        *host = llmb_xstrndup(addr + 1, (size_t)(end - addr - 1));
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL)
            return LLMB_EINVAL;
        if (colon > addr)
            *host = llmb_xstrndup(addr, (size_t)(colon - addr));
    }
    if (colon[1] == '\0' ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
        free(*host);
        *host = NULL;
        return LLMB_EINVAL;
    }
    *port = llmb_xstrdup(colon + 1);
    return 0;
}

struct llmb_http *llmb_http_new(struct ev_loop *loop, const char *addr,
                                llmb_http_handler handler, void *arg,
                                char **errstr)
{
    struct addrinfo hints, *res = NULL, *ai;
    struct llmb_http *srv = NULL;
    char *host = NULL, *port = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    int fd = -1, one = 1, gai;

    *errstr = NULL;
    if (addr_split(addr, &host, &port) != 0) {
        *errstr = llmb_xasprintf("--metrics-addr must be HOST:PORT, "
                                 "[IPV6]:PORT or :PORT, got \"%s\"", addr);
        goto fail;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        *errstr = llmb_xasprintf("--metrics-addr %s: %s", addr,
                                 gai_strerror(gai));
        goto fail;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
            break;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        *errstr = llmb_xasprintf("cannot listen on --metrics-addr %s: %s",
                                 addr, strerror(errno));
        goto fail;
    }
    srv = llmb_xcalloc(1, sizeof(*srv));
    srv->loop = loop;
    srv->fd = fd;
    srv->handler = handler;
    srv->arg = arg;
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0) {
        if (ss.ss_family == AF_INET)
            srv->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            srv->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    ev_io_init(&srv->accept_io, accept_cb, fd, EV_READ);
    srv->accept_io.data = srv;
    ev_io_start(loop, &srv->accept_io);
fail:
    if (res != NULL)
        freeaddrinfo(res);
    free(host);
    free(port);
    return srv;
}

int llmb_http_port(const struct llmb_http *h)
{
    return h->port;
}

void llmb_http_free(struct llmb_http *h)
{
    if (h == NULL)
        return;
    while (h->conns != NULL)
        conn_close(h->conns);
    ev_io_stop(h->loop, &h->accept_io);
    close(h->fd);
    free(h);
}
