/*
 * A streaming client on libcurl in CONNECT_ONLY mode, for
 * bench/llm_clock.sh: what a client pays per chunk when libcurl only
 * connects (name resolution, connect, proxy, TLS) and the client speaks
 * HTTP/1.1 itself. One thread, epoll. The connects run on one multi
 * handle driven by curl_multi_socket_action (--connect multi, as an
 * event loop would) or one blocking curl_easy_perform each (--connect
 * easy); each connected stream sends the request with curl_easy_send on
 * its own, then its socket (CURLINFO_ACTIVESOCKET) joins the epoll set
 * and every readiness is one curl_easy_recv (--drain: read until
 * CURLE_AGAIN, which TLS needs, since the TLS library may hold decrypted
 * bytes the socket no longer shows; --recv sys: recv(2) on the socket
 * instead, which only plain HTTP allows, to tell curl_easy_recv's cost
 * from the rest). The client parses the status line,
 * the headers, chunked transfer coding (or Content-Length) and counts
 * the SSE chunks of the body. Timed like bench/llm_floor.c: from just
 * before the send to the return of the epoll_wait that reported the
 * first content bytes. Prints one JSON line: {"ttft_ms": [...],
 * "chunks": N, "cpu_s": S}, where S leaves out the start of the process
 * and curl_global_init (about 4 ms more than the floor's start, loading
 * and initialising the TLS library), as llmb's figure leaves out the
 * worker's start. Links libcurl, nothing of llmb.
 *
 *   llmb_bench_llm_connect_only --port P --n 2048 [--connect multi|easy]
 *                               [--drain] [--recv curl|sys]
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char BODY[] =
    "{\"model\": \"m\", \"stream\": true, \"max_tokens\": 16, \"messages\": "
    "[{\"role\": \"user\", \"content\": \"bench\"}]}";

/* epoll tags: a stream's index, or a socket libcurl watches while it
 * connects. */
#define CURL_TAG (UINT64_C(1) << 63)

enum phase { HEAD, SIZE, DATA, DATA_CRLF, TRAILER, DONE };

struct stream {
    CURL *h;
    curl_socket_t fd;
    bool sent;
    enum phase ph;
    bool chunked;
    int64_t t0, first;
    long long left;        /* bytes of the chunk, or of the body */
    char head[2048];       /* the status line and headers, then a line */
    size_t nhead;
    char carry[16];        /* to find "content" across two reads */
    size_t ncarry;
    long chunks;
};

static int ep;
static long timeout_ms = -1;

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double cpu_s(const struct rusage *ru)
{
    return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) +
           (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;
}

/* Occurrences of "\"content\"" in the carried bytes and buf. */
static void count_content(struct stream *s, const char *buf, size_t n)
{
    static const char pat[] = "\"content\"";
    const size_t plen = sizeof(pat) - 1;
    char joined[16 + 16384];
    size_t len = s->ncarry + n;

    memcpy(joined, s->carry, s->ncarry);
    memcpy(joined + s->ncarry, buf, n);
    for (const char *p = joined; (p = memmem(p, (size_t)(joined + len - p),
                                             pat, plen)) != NULL; p += plen)
        s->chunks++;
    s->ncarry = len < plen - 1 ? len : plen - 1;
    memcpy(s->carry, joined + len - s->ncarry, s->ncarry);
}

/* The response head: 200, and how the body is framed. */
static bool parse_head(struct stream *s)
{
    char *line = strstr(s->head, "\r\n") + 2;

    if (strncmp(s->head, "HTTP/1.1 200 ", 13) != 0)
        return false;
    s->left = -1;
    for (char *end; (end = strstr(line, "\r\n")) != NULL && end != line;
         line = end + 2) {
        if (strncasecmp(line, "transfer-encoding:", 18) == 0)
            s->chunked = strstr(line, "chunked") != NULL;
        else if (strncasecmp(line, "content-length:", 15) == 0)
            s->left = strtoll(line + 15, NULL, 10);
    }
    if (!s->chunked && s->left < 0)
        return false;   /* a body to the close: not from this server */
    s->ph = s->chunked ? SIZE : s->left > 0 ? DATA : DONE;
    s->nhead = 0;
    return true;
}

/* Takes one line (up to CRLF) into s->head; true when it is whole. */
static bool take_line(struct stream *s, const char **p, const char *end)
{
    while (*p < end) {
        char c = *(*p)++;
        if (s->nhead + 1 >= sizeof(s->head))
            return false;
        s->head[s->nhead++] = c;
        if (c == '\n') {
            s->head[s->nhead] = '\0';
            s->nhead = 0;
            return true;
        }
    }
    return false;
}

/* Feeds the bytes read to the HTTP/1.1 framing; false on a bad
 * response. */
static bool feed(struct stream *s, const char *p, size_t n)
{
    const char *end = p + n;

    while (p < end && s->ph != DONE) {
        switch (s->ph) {
        case HEAD: {
            size_t k = (size_t)(end - p);
            char *e;
            if (k > sizeof(s->head) - 1 - s->nhead)
                k = sizeof(s->head) - 1 - s->nhead;
            memcpy(s->head + s->nhead, p, k);
            s->head[s->nhead + k] = '\0';
            e = strstr(s->head, "\r\n\r\n");
            if (e == NULL) {
                if (s->nhead + k == sizeof(s->head) - 1)
                    return false;
                s->nhead += k;
                p += k;
                break;
            }
            p += (size_t)(e + 4 - s->head) - s->nhead;
            e[2] = '\0';
            if (!parse_head(s))
                return false;
            break;
        }
        case SIZE:
            if (take_line(s, &p, end)) {
                char *x;
                s->left = strtoll(s->head, &x, 16);
                if (x == s->head || s->left < 0)
                    return false;
                s->ph = s->left > 0 ? DATA : TRAILER;
            }
            break;
        case DATA: {
            size_t k = (size_t)(end - p);
            if ((long long)k > s->left)
                k = (size_t)s->left;
            count_content(s, p, k);
            p += k;
            s->left -= (long long)k;
            if (s->left == 0)
                s->ph = s->chunked ? DATA_CRLF : DONE;
            break;
        }
        case DATA_CRLF:
            if (take_line(s, &p, end)) {
                if (strcmp(s->head, "\r\n") != 0)
                    return false;
                s->ph = SIZE;
            }
            break;
        case TRAILER:   /* trailer fields, skipped, to the empty line */
            if (take_line(s, &p, end) && strcmp(s->head, "\r\n") == 0)
                s->ph = DONE;
            break;
        case DONE:
            break;
        }
    }
    return true;
}

static int socket_cb(CURL *h, curl_socket_t fd, int what, void *u, void *sp)
{
    struct epoll_event ev = {0, {.u64 = CURL_TAG | (uint64_t)fd}};

    (void)h, (void)u, (void)sp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) |
                (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) != 0)
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

static int timer_cb(CURLM *m, long ms, void *u)
{
    (void)m, (void)u;
    timeout_ms = ms;
    return 0;
}

/* The stream is connected: send the request, watch its socket. */
static int start(struct stream *st, long i, const char *req, size_t len)
{
    struct stream *s = &st[i];
    struct epoll_event ev = {EPOLLIN, {.u64 = (uint64_t)i}};
    size_t sent = 0;

    if (curl_easy_getinfo(s->h, CURLINFO_ACTIVESOCKET, &s->fd) != CURLE_OK
        || s->fd == CURL_SOCKET_BAD) {
        fprintf(stderr, "llm_connect_only: no socket\n");
        return 1;
    }
    s->t0 = now_ns();
    while (sent < len) {
        size_t k = 0;
        CURLcode rc = curl_easy_send(s->h, req + sent, len - sent, &k);
        if (rc != CURLE_OK) {   /* CURLE_AGAIN: not for 200 bytes */
            fprintf(stderr, "llm_connect_only: send: %s\n",
                    curl_easy_strerror(rc));
            return 1;
        }
        sent += k;
    }
    s->sent = true;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev) != 0 &&
        epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) != 0) {
        perror("llm_connect_only: epoll_ctl");
        return 1;
    }
    return 0;
}

/* The connects libcurl finished since the last call. */
static int started(CURLM *m, struct stream *st, const char *req)
{
    CURLMsg *msg;
    int q;

    while ((msg = curl_multi_info_read(m, &q)) != NULL) {
        long i;
        if (msg->msg != CURLMSG_DONE)
            continue;
        if (msg->data.result != CURLE_OK) {
            fprintf(stderr, "llm_connect_only: connect: %s\n",
                    curl_easy_strerror(msg->data.result));
            return 1;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &i);
        if (start(st, i, req, strlen(req)) != 0)
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    long port = 0, n = 1, left, chunks = 0;
    bool drain = false, easy = false, sys = false;
    struct stream *st;
    struct epoll_event *evs;
    char req[512], url[64], buf[16384];
    CURLM *m;
    struct rusage ru;
    double cpu0;
    int running;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--drain") == 0)
            drain = true;
        else if (i + 1 >= argc)
            port = 0;
        else if (strcmp(argv[i], "--port") == 0)
            port = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--n") == 0)
            n = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--connect") == 0)
            easy = strcmp(argv[++i], "easy") == 0;
        else if (strcmp(argv[i], "--recv") == 0)
            sys = strcmp(argv[++i], "sys") == 0;
    }
    if (port <= 0 || port > 65535 || n < 1) {
        fprintf(stderr, "usage: llmb_bench_llm_connect_only --port P --n N"
                " [--connect multi|easy] [--drain]\n"
                "       [--recv curl|sys]\n");
        return 64;
    }
    snprintf(req, sizeof(req),
             "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1"
             "\r\nContent-Type: application/json\r\nAccept: "
             "text/event-stream\r\nContent-Length: %zu\r\n\r\n%s",
             sizeof(BODY) - 1, BODY);
    snprintf(url, sizeof(url), "http://127.0.0.1:%ld/", port);
    st = calloc((size_t)n, sizeof(*st));
    evs = calloc((size_t)n, sizeof(*evs));
    ep = epoll_create1(0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    m = curl_multi_init();
    if (st == NULL || evs == NULL || ep < 0 || m == NULL)
        return 70;
    getrusage(RUSAGE_SELF, &ru);
    cpu0 = cpu_s(&ru);
    curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, timer_cb);
    for (long i = 0; i < n; i++) {
        CURL *h = st[i].h = curl_easy_init();
        if (h == NULL)
            return 70;
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
        curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);   /* as the worker */
        curl_easy_setopt(h, CURLOPT_PRIVATE, (void *)i);
        if (easy) {
            CURLcode rc = curl_easy_perform(h);
            if (rc != CURLE_OK) {
                fprintf(stderr, "llm_connect_only: connect: %s\n",
                        curl_easy_strerror(rc));
                return 69;
            }
            if (start(st, i, req, strlen(req)) != 0)
                return 1;
        } else {
            curl_multi_add_handle(m, h);
        }
    }
    if (!easy)
        curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
    left = n;
    while (left > 0) {
        int k = epoll_wait(ep, evs, (int)n, timeout_ms < 0 ? 60000 :
                           (int)timeout_ms);
        int64_t pass = now_ns();
        if (k < 0 || (k == 0 && timeout_ms < 0)) {
            fprintf(stderr, "llm_connect_only: no progress in 60 s\n");
            return 1;
        }
        if (k == 0) {
            timeout_ms = -1;
            curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
            if (started(m, st, req) != 0)
                return 1;
            continue;
        }
        for (int e = 0; e < k; e++) {
            struct stream *s;
            size_t r;
            CURLcode rc;
            if (evs[e].data.u64 & CURL_TAG) {
                int w = (evs[e].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                        (evs[e].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                        (evs[e].events & EPOLLERR ? CURL_CSELECT_ERR : 0);
                curl_multi_socket_action(
                    m, (curl_socket_t)(evs[e].data.u64 & ~CURL_TAG), w,
                    &running);
                if (started(m, st, req) != 0)
                    return 1;
                continue;
            }
            s = &st[evs[e].data.u64];
            if (s->ph == DONE)
                continue;
            do {
                if (sys) {
                    ssize_t got = recv(s->fd, buf, sizeof(buf), 0);
                    r = got > 0 ? (size_t)got : 0;
                    rc = got >= 0 ? CURLE_OK : errno == EAGAIN ? CURLE_AGAIN
                                                            : CURLE_RECV_ERROR;
                } else {
                    rc = curl_easy_recv(s->h, buf, sizeof(buf), &r);
                }
                if (rc == CURLE_AGAIN)
                    break;
                if (rc != CURLE_OK || r == 0) {
                    fprintf(stderr, "llm_connect_only: the server closed "
                            "a stream (%s)\n", curl_easy_strerror(rc));
                    return 1;
                }
                if (!feed(s, buf, r)) {
                    fprintf(stderr, "llm_connect_only: bad response\n");
                    return 1;
                }
                if (s->first == 0 && s->chunks > 0)
                    s->first = pass > s->t0 ? pass : now_ns();
            } while (drain && s->ph != DONE);
            if (s->ph == DONE) {   /* the connection could be reused */
                left--;
                epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
            }
        }
    }
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"ttft_ms\": [");
    for (long i = 0; i < n; i++) {
        chunks += st[i].chunks;
        printf("%s%.3f", i > 0 ? ", " : "",
               (double)(st[i].first - st[i].t0) / 1e6);
    }
    printf("], \"chunks\": %ld, \"cpu_s\": %.6f}\n", chunks,
           cpu_s(&ru) - cpu0);
    for (long i = 0; i < n; i++) {
        if (!easy)
            curl_multi_remove_handle(m, st[i].h);
        curl_easy_cleanup(st[i].h);
    }
    curl_multi_cleanup(m);
    curl_global_cleanup();
    free(st);
    free(evs);
    return 0;
}
