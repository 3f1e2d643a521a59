/*
 * The floor under any streaming client on this machine, for
 * bench/llm_clock.sh: the least a client can do to time a stream. One
 * thread, epoll, one recv per readiness, no HTTP or SSE parsing beyond
 * finding the first content chunk and the end of the body. N requests go
 * out at once to the scheduled server (bench/llm_server.c); each is timed
 * from just before its send() to the return of the epoll_wait that
 * reported its first content bytes. Its TTFT error and CPU per chunk are
 * what the kernel and the scheduler cost, the part no client can remove.
 * Prints one JSON line like bench/llm_pyclient.py: {"ttft_ms": [...],
 * "chunks": N, "cpu_s": S}. Links nothing of llmb.
 *
 *   llmb_bench_llm_floor --port P --n 2048
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

static const char BODY[] =
    "{\"model\": \"m\", \"stream\": true, \"max_tokens\": 16, \"messages\": "
    "[{\"role\": \"user\", \"content\": \"bench\"}]}";

struct stream {
    int fd;
    bool sent, done;
    int64_t t0, first;
    char tail[8];         /* last bytes read, for the end of the body */
    char carry[16];       /* to find "content" across two reads */
    size_t ncarry;
    long chunks;
};

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Occurrences of "\"content\"" in the carried bytes and buf. */
static long count_content(struct stream *s, const char *buf, size_t n)
{
    static const char pat[] = "\"content\"";
    const size_t plen = sizeof(pat) - 1;
    char joined[16 + 16384];
    size_t len = s->ncarry + n;
    long k = 0;

    memcpy(joined, s->carry, s->ncarry);
    memcpy(joined + s->ncarry, buf, n);
    for (const char *p = joined; (p = memmem(p, (size_t)(joined + len - p),
                                             pat, plen)) != NULL; p += plen)
        k++;
    s->ncarry = len < plen - 1 ? len : plen - 1;
    memcpy(s->carry, joined + len - s->ncarry, s->ncarry);
    return k;
}

int main(int argc, char **argv)
{
    long port = 0, n = 1, left, chunks = 0;
    struct sockaddr_in a;
    struct stream *st;
    struct epoll_event *evs;
    char req[512], buf[16384];
    int ep, reqlen;
    struct rusage ru;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--n") == 0)
            n = strtol(argv[i + 1], NULL, 10);
    }
    if (port <= 0 || port > 65535 || n < 1) {
        fprintf(stderr, "usage: llmb_bench_llm_floor --port P --n N\n");
        return 64;
    }
    reqlen = snprintf(req, sizeof(req),
                      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1"
                      "\r\nContent-Type: application/json\r\nAccept: "
                      "text/event-stream\r\nContent-Length: %zu\r\n\r\n%s",
                      sizeof(BODY) - 1, BODY);
    st = calloc((size_t)n, sizeof(*st));
    evs = calloc((size_t)n, sizeof(*evs));
    ep = epoll_create1(0);
    if (st == NULL || evs == NULL || ep < 0)
        return 70;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (long i = 0; i < n; i++) {
        int one = 1;
        struct epoll_event ev = {EPOLLOUT, {.u64 = (uint64_t)i}};
        st[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        setsockopt(st[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(st[i].fd, (struct sockaddr *)&a, sizeof(a)) != 0 &&
            errno != EINPROGRESS) {
            perror("llm_floor: connect");
            return 69;
        }
        epoll_ctl(ep, EPOLL_CTL_ADD, st[i].fd, &ev);
    }
    left = n;
    while (left > 0) {
        int k = epoll_wait(ep, evs, (int)n, 60000);
        int64_t pass = now_ns();
        if (k <= 0) {
            fprintf(stderr, "llm_floor: no progress in 60 s\n");
            return 1;
        }
        for (int e = 0; e < k; e++) {
            struct stream *s = &st[evs[e].data.u64];
            ssize_t r;
            if (!s->sent) {
                struct epoll_event ev = {EPOLLIN, {.u64 = evs[e].data.u64}};
                s->t0 = now_ns();
                if (send(s->fd, req, (size_t)reqlen, 0) != reqlen) {
                    perror("llm_floor: send");
                    return 1;
                }
                s->sent = true;
                epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
                continue;
            }
            r = recv(s->fd, buf, sizeof(buf), 0);
            if (r < 0 && errno == EAGAIN)
                continue;
            if (r <= 0) {
                fprintf(stderr, "llm_floor: the server closed a stream\n");
                return 1;
            }
            s->chunks += count_content(s, buf, (size_t)r);
            if (s->first == 0 && s->chunks > 0)
                s->first = pass > s->t0 ? pass : now_ns();
            if (r >= 5)
                memcpy(s->tail, buf + r - 5, 5);
            else {
                memmove(s->tail, s->tail + r, (size_t)(5 - r));
                memcpy(s->tail + 5 - r, buf, (size_t)r);
            }
            if (memcmp(s->tail, "0\r\n\r\n", 5) == 0 && !s->done) {
                s->done = true;
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
           (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    for (long i = 0; i < n; i++)
        close(st[i].fd);
    free(st);
    free(evs);
    return 0;
}
