/*
 * A plain HTTP GET for `llmb health --coordinator URL`: one request over a
 * TCP socket, HTTP/1.0 with Connection: close, the whole exchange bounded
 * by a deadline. The coordinator serves /healthz as plain HTTP from its own
 * small server (coordinator/http.c), so this needs no TLS, no redirects
 * and no chunked bodies; libcurl is not linked by the CLI (the worker
 * loads it at run time for the llm executor only), and one GET does not
 * justify making it a link dependency of `llmb`.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <llmb/err.h>

#include "admin.h"

/* Most bytes of a response kept; /healthz answers a few hundred. */
#define RESPONSE_MAX 65536

/* Splits "http://HOST[:PORT][/PATH]" ("[V6]" hosts too) into malloc'd
 * host, port ("80" by default) and path ("/healthz" when there is none or
 * it is "/"). Returns 0 or LLMB_EINVAL with *errstr. */
static int url_split(const char *url, char **host, char **port, char **path,
                     char **errstr)
{
    const char *p, *end, *slash;

    *host = *port = *path = NULL;
    if (strncmp(url, "http://", 7) != 0) {
        *errstr = llmb_xasprintf("--coordinator must be an http:// URL "
                                 "(the coordinator serves plain HTTP), got "
                                 "\"%s\"", url);
        return LLMB_EINVAL;
    }
    p = url + 7;
    slash = strchr(p, '/');
    end = slash ? slash : p + strlen(p);
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL || (rb + 1 != end && rb[1] != ':'))
            goto bad;
        *host = llmb_xstrndup(p + 1, (size_t)(rb - p - 1));
        if (rb + 1 != end)
            *port = llmb_xstrndup(rb + 2, (size_t)(end - rb - 2));
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        *host = llmb_xstrndup(p, (size_t)((colon ? colon : end) - p));
        if (colon != NULL)
            *port = llmb_xstrndup(colon + 1, (size_t)(end - colon - 1));
    }
    if ((*host)[0] == '\0' || (*port != NULL && (*port)[0] == '\0'))
        goto bad;
    if (*port == NULL)
        *port = llmb_xstrdup("80");
    *path = llmb_xstrdup(slash == NULL || strcmp(slash, "/") == 0
                             ? "/healthz" : slash);
    return 0;

bad:
    *errstr = llmb_xasprintf("--coordinator: malformed URL \"%s\"; expected "
                             "http://HOST[:PORT][/PATH]", url);
    free(*host);
    free(*port);
    *host = *port = NULL;
    return LLMB_EINVAL;
}

/* Waits until fd is ready for events or the deadline (mono ms) passes.
 * Returns 0, or -1 with errno (ETIMEDOUT at the deadline). */
static int wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    int n;

    for (;;) {
        int64_t left = deadline - llmb_mono_ms();
        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        n = poll(&pfd, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* Connects to one address before the deadline; the fd or -1 with errno. */
static int connect_one(const struct addrinfo *ai, int64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
                    SOCK_CLOEXEC, ai->ai_protocol);
    int soerr = 0;
    socklen_t len = sizeof(soerr);

    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, deadline) != 0)
        goto fail;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        goto fail;
    if (soerr == 0)
        return fd;
    errno = soerr;

fail:
    soerr = errno;
    close(fd);
    errno = soerr;
    return -1;
}

/* Sends the request and reads the response until EOF, RESPONSE_MAX bytes
 * or the deadline, into out. Returns 0 or -1 with errno. */
static int exchange(int fd, const char *req, struct llmb_buf *out,
                    int64_t deadline)
{
    size_t len = strlen(req), sent = 0;
    char chunk[4096];

    while (sent < len) {
        ssize_t n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (wait_fd(fd, POLLOUT, deadline) != 0)
            return -1;
    }
    while (out->len < RESPONSE_MAX) {
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n == 0)
            return 0;
        if (n > 0) {
            llmb_buf_append(out, chunk, (size_t)n);
            continue;
        }
        if (errno != EAGAIN && errno != EINTR)
            return -1;
        if (wait_fd(fd, POLLIN, deadline) != 0)
            return -1;
    }
    return 0;
}

int llmb_http_url_check(const char *url, char **errstr)
{
    char *host = NULL, *port = NULL, *path = NULL;
    int rc = url_split(url, &host, &port, &path, errstr);

    free(host);
    free(port);
    free(path);
    return rc;
}

int llmb_http_get(const char *url, int timeout_ms, int *status, char **body,
                  char **errstr)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char *host = NULL, *port = NULL, *path = NULL, *req = NULL;
    int64_t deadline = llmb_mono_ms() + timeout_ms;
    struct llmb_buf resp;
    const char *sep;
    int fd = -1, rc, gai, err = 0;

    *status = 0;
    *body = NULL;
    llmb_buf_init(&resp);
    rc = url_split(url, &host, &port, &path, errstr);
    if (rc != 0)
        goto out;
    gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        *errstr = llmb_xasprintf("cannot resolve %s: %s", host,
                                 gai_strerror(gai));
        rc = LLMB_EIO;
        goto out;
    }
    for (const struct addrinfo *ai = res; ai != NULL && fd < 0;
         ai = ai->ai_next) {
        fd = connect_one(ai, deadline);
        if (fd < 0)
            err = errno;
    }
    if (fd < 0) {
        *errstr = llmb_xasprintf("cannot connect to %s:%s: %s", host, port,
                                 strerror(err));
        rc = LLMB_EIO;
        goto out;
    }
    req = llmb_xasprintf("GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: "
                         "llmb-health\r\nConnection: close\r\n\r\n",
                         path, host);
    if (exchange(fd, req, &resp, deadline) != 0) {
        *errstr = llmb_xasprintf("GET %s from %s:%s: %s", path, host, port,
                                 errno == ETIMEDOUT ? "no answer in time"
                                                    : strerror(errno));
        rc = errno == ETIMEDOUT ? LLMB_ETIMEOUT : LLMB_EIO;
        goto out;
    }
    llmb_buf_append(&resp, "", 1); /* NUL-terminates */
    if (sscanf(resp.data, "HTTP/1.%*1[01] %3d", status) != 1 ||
        *status < 100 || *status > 599) {
        *status = 0;
        *errstr = llmb_xasprintf("GET %s from %s:%s: not an HTTP response",
                                 path, host, port);
        rc = LLMB_EPROTO;
        goto out;
    }
    sep = strstr(resp.data, "\r\n\r\n");
    *body = llmb_xstrdup(sep ? sep + 4 : "");
    rc = 0;

out:
    if (fd >= 0)
        close(fd);
    if (res != NULL)
        freeaddrinfo(res);
    llmb_buf_fini(&resp);
    free(req);
    free(host);
    free(port);
    free(path);
    return rc;
}
