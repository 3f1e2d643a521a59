/*
 * A streaming OpenAI-style server on a known schedule, for
 * bench/llm_clock.sh: the ground truth the clients' TTFT is held to. It is
 * the C twin of bench/llm_server.py (same schedule, same routes, same
 * /stats), written so that the truth costs little CPU on the machine it
 * shares with the clients. It links nothing of llmb (libev and the C
 * library only) and parses no SSE: it only writes it.
 *
 * Every request other than the two below streams --tokens content chunks,
 * the first --first-ms after the request arrived in full, then one every
 * --itl-ms, each on an absolute schedule (recv + first + k * itl), then a
 * finish chunk and "data: [DONE]" (HTTP/1.1 chunked, keep-alive). The
 * true send time of each chunk is CLOCK_MONOTONIC right after the write()
 * that handed its last byte to the kernel; the request's arrival (recv) is
 * the kernel's receive time of its last bytes (SO_TIMESTAMPNS), so that
 * the server being slow to read does not count against the client. GET
 * /stats returns, per request, the server's TTFT (first chunk sent minus
 * request arrived) and, per chunk, how late it left against its
 * schedule, in ns: {"ttft_ns": [...], "late_ns": [...], "chunks": N,
 * "unstamped": reads that had no kernel receive time, so took the time
 * of the read}; POST /reset clears them. 127.0.0.1 only.
 *
 *   llmb_bench_llm_server --port 0 --first-ms 50 --itl-ms 100 --tokens 16
 *
 * prints "listening on 127.0.0.1:PORT" once it accepts connections.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <ev.h>

#define MAX_REQUEST 65536

static const char CHUNK[] =
    "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":\"tok\"}}]}\n\n";
static const char FINISH[] =
    "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
    "\"delta\":{},\"finish_reason\":\"length\"}]}\n\n";
static const char DONE[] = "data: [DONE]\n\n";
static const char STREAM_HEAD[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    "Transfer-Encoding: chunked\r\n\r\n";

struct i64s {
    int64_t *v;
    size_t n, cap;
};

static struct {
    int64_t first_ns, itl_ns;
    long tokens;
    struct i64s ttft, late;
    uint64_t chunks;
    uint64_t unstamped;   /* reads the kernel gave no receive time for */
} S;

static char chunk_framed[256], tail_framed[512];
static size_t chunk_len, tail_len;

/* One client connection: reads requests one after the other and streams
 * the answer of each before it reads the next. */
struct conn {
    ev_io rio, wio;
    ev_timer tick;
    int fd;
    char in[MAX_REQUEST];
    size_t inlen;
    char *out;            /* bytes not yet taken by the kernel */
    size_t outlen, outcap;
    bool streaming;
    int64_t recv_ns;      /* request in full (its last bytes' arrival) */
    int64_t arrived_ns;   /* arrival of the last bytes read */
    long k;               /* next chunk to send */
    long unsent;          /* chunks in out, not yet logged */
    long unsent_first;    /* index of the first of them */
};

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL) {
        perror("llm_server: realloc");
        abort();
    }
    return p;
}

static void push(struct i64s *a, int64_t v)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 4096;
        a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
    }
    a->v[a->n++] = v;
}

static void conn_free(struct ev_loop *loop, struct conn *c)
{
    ev_io_stop(loop, &c->rio);
    ev_io_stop(loop, &c->wio);
    ev_timer_stop(loop, &c->tick);
    close(c->fd);
    free(c->out);
    free(c);
}

/* Logs chunk k (0-based) of the current stream as sent at t. */
static void logged(struct conn *c, long k, int64_t due, int64_t t)
{
    S.chunks++;
    push(&S.late, t - due);
    if (k == 0)
        push(&S.ttft, t - c->recv_ns);
}

/* Writes what out holds. Returns false when the connection is gone (c is
 * then freed). Chunks that were waiting in out are logged when out
 * empties. */
static bool flush(struct ev_loop *loop, struct conn *c)
{
    size_t off = 0;

    while (off < c->outlen) {
        ssize_t w = write(c->fd, c->out + off, c->outlen - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w <= 0) {
            conn_free(loop, c);
            return false;
        }
        off += (size_t)w;
    }
    memmove(c->out, c->out + off, c->outlen - off);
    c->outlen -= off;
    if (c->outlen > 0) {
        ev_io_start(loop, &c->wio);
        return true;
    }
    ev_io_stop(loop, &c->wio);
    if (c->unsent > 0) {
        int64_t t = now_ns();
        for (long i = 0; i < c->unsent; i++) {
            long k = c->unsent_first + i;
            int64_t due = c->recv_ns + S.first_ns + k * S.itl_ns;
            logged(c, k, due, t);
        }
        c->unsent = 0;
    }
    return true;
}

static void out_add(struct conn *c, const char *p, size_t n)
{
    if (c->outlen + n > c->outcap) {
        c->outcap = (c->outlen + n) * 2;
        c->out = xrealloc(c->out, c->outcap);
    }
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
}

static bool parse_requests(struct ev_loop *loop, struct conn *c, int64_t t);

/* The timer of a stream: sends chunk c->k, which is due now. */
static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conn *c = w->data;
    long k = c->k;
    int64_t due = c->recv_ns + S.first_ns + k * S.itl_ns;
    bool queued = c->outlen > 0;

    (void)revents;
    out_add(c, chunk_framed, chunk_len);
    if (k + 1 == S.tokens)
        out_add(c, tail_framed, tail_len);
    if (queued) {
        /* Waiting behind unsent bytes: logged when they are all out. */
        if (c->unsent == 0)
            c->unsent_first = k;
        c->unsent++;
    }
    if (!flush(loop, c))
        return;
    if (!queued && c->outlen == 0)
        logged(c, k, due, now_ns());
    else if (!queued) {
        c->unsent_first = k;
        c->unsent = 1;
    }
    c->k++;
    if (c->k < S.tokens) {
        int64_t next = c->recv_ns + S.first_ns + c->k * S.itl_ns;
        double d;
        /* libev counts from the time its pass began: bring it to now. */
        ev_now_update(loop);
        d = (double)(next - now_ns()) / 1e9;
        ev_timer_set(&c->tick, d > 0 ? d : 0.0, 0.0);
        ev_timer_start(loop, &c->tick);
        return;
    }
    c->streaming = false;
    parse_requests(loop, c, c->arrived_ns); /* a request sent meanwhile */
}

static void reply_json(struct conn *c, const char *body, size_t len)
{
    char head[160];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n", len);

    out_add(c, head, (size_t)n);
    out_add(c, body, len);
}

static void append_array(char **s, size_t *len, size_t *cap,
                         const struct i64s *a)
{
    for (size_t i = 0; i < a->n; i++) {
        if (*len + 32 > *cap) {
            *cap = *cap * 2 + 64;
            *s = xrealloc(*s, *cap);
        }
        *len += (size_t)snprintf(*s + *len, *cap - *len, "%s%lld",
                                 i > 0 ? "," : "", (long long)a->v[i]);
    }
}

static void stats(struct conn *c)
{
    size_t cap = 64 + 24 * (S.ttft.n + S.late.n), len = 0;
    char *s = xrealloc(NULL, cap);

    len += (size_t)snprintf(s, cap, "{\"ttft_ns\":[");
    append_array(&s, &len, &cap, &S.ttft);
    if (len + 64 > cap)
        s = xrealloc(s, cap = len + 64);
    len += (size_t)snprintf(s + len, cap - len, "],\"late_ns\":[");
    append_array(&s, &len, &cap, &S.late);
    if (len + 64 > cap)
        s = xrealloc(s, cap = len + 64);
    len += (size_t)snprintf(s + len, cap - len,
                            "],\"chunks\":%llu,\"unstamped\":%llu}",
                            (unsigned long long)S.chunks,
                            (unsigned long long)S.unstamped);
    reply_json(c, s, len);
    free(s);
}

/* Content-Length of the header block head (NUL-terminated), 0 if none. */
static size_t content_length(const char *head)
{
    const char *p = head;

    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, "content-length:", 15) == 0)
            return (size_t)strtoul(p + 15, NULL, 10);
    }
    return 0;
}

/* Handles the complete requests in c->in, read at t; a stream stops it
 * until the stream ends. Returns false when c was freed. */
static bool parse_requests(struct ev_loop *loop, struct conn *c, int64_t t)
{
    while (!c->streaming) {
        char *end;
        size_t hlen, blen;

        if (c->inlen == 0)
            return true;
        c->in[c->inlen] = '\0';
        end = strstr(c->in, "\r\n\r\n");
        if (end == NULL)
            return true;
        *end = '\0';
        hlen = (size_t)(end - c->in) + 4;
        blen = content_length(c->in);
        if (c->inlen < hlen + blen) {
            *end = '\r';
            return true;
        }
        if (strncmp(c->in, "GET /stats", 10) == 0) {
            stats(c);
        } else if (strncmp(c->in, "POST /reset", 11) == 0) {
            S.ttft.n = S.late.n = 0;
            S.chunks = S.unstamped = 0;
            reply_json(c, "{}", 2);
        } else {
            int64_t d;
            c->streaming = true;
            c->recv_ns = t;
            c->k = 0;
            c->unsent = 0;
            out_add(c, STREAM_HEAD, sizeof(STREAM_HEAD) - 1);
            ev_now_update(loop);
            d = c->recv_ns + S.first_ns - now_ns();
            ev_timer_set(&c->tick, d > 0 ? (double)d / 1e9 : 0.0, 0.0);
            ev_timer_start(loop, &c->tick);
        }
        memmove(c->in, c->in + hlen + blen, c->inlen - hlen - blen);
        c->inlen -= hlen + blen;
        if (!flush(loop, c))
            return false;
    }
    return true;
}

/* When the last bytes read with msg reached the socket, on the
 * CLOCK_MONOTONIC clock: the kernel's receive time (SO_TIMESTAMPNS, on
 * CLOCK_REALTIME, moved over), so that a late read of ours is not taken
 * for a late client; now when the kernel gave none. */
static int64_t arrival(struct msghdr *msg)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm != NULL;
         cm = CMSG_NXTHDR(msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts, real;
            int64_t mono = now_ns(), at;
            memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
            clock_gettime(CLOCK_REALTIME, &real);
            at = mono - ((int64_t)real.tv_sec * 1000000000 + real.tv_nsec -
                         ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec));
            /* No stamp (0), or one from the future or from over a
             * minute ago: not a receive time to trust. */
            if (at <= mono && mono - at < 60 * (int64_t)1000000000)
                return at;
            break;
        }
    }
    S.unstamped++;
    return now_ns();
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    char ctl[CMSG_SPACE(sizeof(struct timespec))];
    struct msghdr msg;
    struct iovec iov;
    ssize_t r;

    (void)revents;
    if (c->inlen + 1 >= sizeof(c->in)) {
        conn_free(loop, c); /* a request larger than we take */
        return;
    }
    iov.iov_base = c->in + c->inlen;
    iov.iov_len = sizeof(c->in) - 1 - c->inlen;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl;
    msg.msg_controllen = sizeof(ctl);
    r = recvmsg(c->fd, &msg, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        conn_free(loop, c);
        return;
    }
    c->inlen += (size_t)r;
    c->arrived_ns = arrival(&msg);
    parse_requests(loop, c, c->arrived_ns);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    flush(loop, w->data);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    for (;;) {
        int one = 1, fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK);
        struct conn *c;

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                perror("llm_server: accept");
            return;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
        c = calloc(1, sizeof(*c));
        if (c == NULL)
            abort();
        c->fd = fd;
        ev_io_init(&c->rio, read_cb, fd, EV_READ);
        ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
        ev_timer_init(&c->tick, tick_cb, 0.0, 0.0);
        c->rio.data = c->wio.data = c->tick.data = c;
        ev_io_start(loop, &c->rio);
    }
}

static size_t frame(char *dst, size_t cap, const char *data, size_t n)
{
    return (size_t)snprintf(dst, cap, "%zx\r\n%s\r\n", n, data);
}

static void usage(void)
{
    fprintf(stderr, "usage: llmb_bench_llm_server [--port P] [--first-ms MS]"
                    " [--itl-ms MS] [--tokens N]\n");
    exit(64);
}

int main(int argc, char **argv)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    long port = 0;
    double first_ms = 50, itl_ms = 100;
    int one = 1, fd;
    struct ev_loop *loop;
    ev_io lio;
    char tail[256];

    S.tokens = 16;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--port") == 0)
            port = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--first-ms") == 0)
            first_ms = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--itl-ms") == 0)
            itl_ms = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--tokens") == 0)
            S.tokens = strtol(argv[++i], NULL, 10);
        else
            usage();
    }
    if (S.tokens < 1 || port < 0 || port > 65535)
        usage();
    S.first_ns = (int64_t)(first_ms * 1e6);
    S.itl_ns = (int64_t)(itl_ms * 1e6);
    chunk_len = frame(chunk_framed, sizeof(chunk_framed), CHUNK,
                      sizeof(CHUNK) - 1);
    tail_len = frame(tail_framed, sizeof(tail_framed), FINISH,
                     sizeof(FINISH) - 1);
    tail_len += frame(tail, sizeof(tail), DONE, sizeof(DONE) - 1);
    strcat(tail_framed, tail);
    strcat(tail_framed, "0\r\n\r\n");
    tail_len += 5;

    signal(SIGPIPE, SIG_IGN);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* Before the first connection: the kernel stamps what it receives
     * only once some socket asks for it. */
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(fd, 4096) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        perror("llm_server: listen");
        return 69;
    }
    loop = ev_default_loop(EVFLAG_AUTO);
    ev_io_init(&lio, accept_cb, fd, EV_READ);
    ev_io_start(loop, &lio);
    printf("listening on 127.0.0.1:%u\n", ntohs(a.sin_port));
    fflush(stdout);
    ev_run(loop, 0);
    return 0;
}
