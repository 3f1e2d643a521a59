/*
 * The coordinator's HTTP server for /metrics and /healthz: libmicrohttpd,
 * the HTTP stack of `llmb web` too, run on the coordinator's libev loop
 * rather than in threads of its own, so that the handler reads the
 * coordinator's state on the thread that writes it. libmicrohttpd runs
 * in its external-loop mode with epoll: its epoll descriptor is one ev_io
 * watcher, and its next connection timeout one ev_timer; each calls
 * MHD_run(), which never blocks. One request per connection (the response
 * says Connection: close); a connection idle for 5 s is closed; at most 64
 * are open at once, 16 from one address (so that one client holding idle
 * connections cannot take them all: the one past is closed at once); the
 * request head is bounded by the memory of a connection (16 KiB, 431
 * past it). Request bodies are not read: only GET and HEAD are served,
 * which the handler decides. Every answer of the handler says
 * Cache-Control: no-store and X-Content-Type-Options: nosniff; those
 * libmicrohttpd makes itself (400, 431, ...) cannot carry them.
 * libmicrohttpd is loaded when the server starts (<llmb/mhd.h>): a
 * coordinator without --metrics-addr never maps it.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llmb/err.h>
#include <llmb/listen.h>
#include <llmb/log.h>
#include <llmb/mhd.h>

#include "coordinator.h"

#define IDLE_S 5
#define CONNS_MAX 64
#define CONNS_PER_IP 16
#define CONN_MEMORY (16 * 1024)

struct llmb_http {
    struct ev_loop *loop;
    struct MHD_Daemon *daemon;
    int port;
    ev_io io;       /* libmicrohttpd's epoll descriptor */
    ev_timer timer; /* its next timeout */
    llmb_http_handler handler;
    void *arg;
};

/* The request states, kept in libmicrohttpd's per-request pointer. */
static int seen_head;

/* Lets libmicrohttpd do what is due, then arms the timer for its next
 * timeout. */
static void run(struct llmb_http *h)
{
    MHD_UNSIGNED_LONG_LONG ms = 0;

    llmb_mhd.run(h->daemon);
    ev_timer_stop(h->loop, &h->timer);
    if (llmb_mhd.get_timeout(h->daemon, &ms) == MHD_YES) {
        ev_timer_set(&h->timer, (double)ms / 1000.0, 0.0);
        ev_timer_start(h->loop, &h->timer);
    }
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    run(w->data);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    run(w->data);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    struct llmb_http *h = cls;
    struct MHD_Response *r;
    struct llmb_buf body;
    const char *ctype = "text/plain; charset=utf-8";
    enum MHD_Result ret;
    int status;

    (void)version;
    (void)upload;
    if (*state == NULL) { /* the head: wait for the end of the request */
        *state = &seen_head;
        return MHD_YES;
    }
    if (*upload_size > 0) { /* a body: not read */
        *upload_size = 0;
        return MHD_YES;
    }
    llmb_buf_init(&body);
    status = h->handler(h->arg, method, url, &body, &ctype);
    r = llmb_mhd.create_response_from_buffer(body.len, body.data,
                                             MHD_RESPMEM_MUST_COPY);
    llmb_buf_fini(&body);
    if (r == NULL)
        return MHD_NO;
    llmb_mhd.add_response_header(r, "Content-Type", ctype);
    /* the type given is the type: no browser guesses another */
    llmb_mhd.add_response_header(r, "X-Content-Type-Options", "nosniff");
    llmb_mhd.add_response_header(r, "Cache-Control", "no-store");
    llmb_mhd.add_response_header(r, "Connection", "close");
    ret = llmb_mhd.queue_response(c, (unsigned)status, r);
    llmb_mhd.destroy_response(r);
    return ret;
}

/* libmicrohttpd's messages go to the log, as warnings. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    llmb_log_vwrite(LLMB_LOG_WARN, "metrics server: ", fmt, ap);
}

struct llmb_http *llmb_http_new(struct ev_loop *loop, const char *addr,
                                llmb_http_handler handler, void *arg,
                                char **errstr)
{
    struct llmb_http *h = NULL;
    const union MHD_DaemonInfo *info;
    int fd = -1, port = 0;

    *errstr = NULL;
    if (llmb_mhd_load(errstr) != 0)
        return NULL;
    if (llmb_listen_tcp(addr, "--metrics-addr", &fd, &port, errstr) != 0)
        return NULL;
    h = llmb_xcalloc(1, sizeof(*h));
    h->loop = loop;
    h->port = port;
    h->handler = handler;
    h->arg = arg;
    h->daemon = llmb_mhd.start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, h,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNS_MAX,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)CONNS_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
        MHD_OPTION_END);
    info = h->daemon != NULL
               ? llmb_mhd.get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD)
               : NULL;
    if (info == NULL) {
        *errstr = llmb_xasprintf("cannot start the metrics server on "
                                 "--metrics-addr %s", addr);
        if (h->daemon != NULL)
            llmb_mhd.stop_daemon(h->daemon);
        else
            close(fd);
        free(h);
        return NULL;
    }
    ev_io_init(&h->io, io_cb, info->epoll_fd, EV_READ);
    h->io.data = h;
    ev_io_start(loop, &h->io);
    ev_init(&h->timer, timer_cb);
    h->timer.data = h;
    return h;
}

int llmb_http_port(const struct llmb_http *h)
{
    return h->port;
}

void llmb_http_free(struct llmb_http *h)
{
    if (h == NULL)
        return;
    ev_io_stop(h->loop, &h->io);
    ev_timer_stop(h->loop, &h->timer);
    llmb_mhd.stop_daemon(h->daemon); /* closes the listener and connections */
    free(h);
}
