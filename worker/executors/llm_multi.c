/*
 * libcurl's multi interface on the worker's libev loop, the pattern of
 * curl's own evhiperfifo example: curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION, one ev_io each) and when to wake it
 * (CURLMOPT_TIMERFUNCTION, one ev_timer), and we call
 * llmb_curl.multi_socket_action() when either fires. Finished transfers are
 * read with llmb_curl.multi_info_read() after each action and handed to their
 * owner's done callback, outside any curl callback, so that the owner may
 * free the handle or start new transfers right there.
 *
 * One llmb_llm_multi per llm executor instance, holding one curl multi
 * handle (a shard) per SHARD_KEYS transfer keys (a run's slot numbers):
 * its connection cache and DNS cache are shared by every request of
 * every task of that handler whose slot falls in the shard, so keep-alive
 * connections (and HTTP/2 multiplexing) carry over. Why shards: to start
 * a request on HTTP/1.1, libcurl 7.88 walks its cache's connections to
 * the host, the busy ones first, until it finds an idle one; with all of
 * them in one cache a start at 2,048 streams walked up to 2,000 busy
 * connections (up to 140 us a start against 20 us at 64). A slot's
 * requests keep to one shard, so a run's next requests find their
 * connections there; up to SHARD_KEYS slots nothing changes. A shard's
 * idle connections serve only its own transfers, so shards are used only
 * while the worker may open twice the connections they may hold; nearer
 * its descriptor limit (`ulimit -n`) every transfer goes to the first
 * shard, whose idle connections any request can take, rather than wait
 * for descriptors that other shards keep idle.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <llmb/err.h>
#include <llmb/list.h>
#include <llmb/log.h>

#include "llm.h"

#define SHARD_KEYS 128 /* transfer keys per curl multi handle */

/* One curl multi handle, made when a key of its block is first added,
 * freed with the llmb_llm_multi. */
struct shard {
    CURLM *m;
    struct llmb_llm_multi *mu;
    ev_timer timer;   /* curl's timeout */
    ev_tstamp due;    /* when it was due, on ev_now()'s clock */
    bool put_off;     /* it came late and waits one pass (timer_cb) */
    int running;      /* transfers curl still runs */
    long nxfer;       /* transfers added and not yet removed */
    long maxconns;    /* CURLMOPT_MAXCONNECTS: the most nxfer has been */
};

struct llmb_llm_multi {
    struct ev_loop *loop;
    struct shard **shards; /* by key / SHARD_KEYS; NULL = none yet */
    size_t nshards;
    long maxconns;    /* the sum of the shards' */
    struct msock *socks; /* watched sockets */
    ev_check pass;    /* first watcher of each loop pass: stamps it */
    int64_t pass_us;  /* when the current pass's poll returned */
    struct msock *rx_sock; /* the socket of the action under way, when
                              its transfer asked for receive times */
    int64_t rx_us;    /* the kernel's time of its bytes; -1 = none */
    const void *rx_owner; /* whose bytes rx_us stamps: an easy handle
                             (curl's reads) or an exchange (llm_conn.c) */
    struct llmb_llm_pool *pool; /* llm_conn.c's kept connections */
};

/* A socket a shard asked us to watch; on the multi's list. */
struct msock {
    ev_io io;
    curl_socket_t fd;
    struct shard *sh;
    CURL *easy;       /* the transfer curl last watched it for; compared,
                         never used */
    bool want;        /* that transfer asked for receive times */
    struct msock *prev, *next;
};

static void msock_free(struct llmb_llm_multi *mu, struct msock *s)
{
    if (mu->rx_sock == s)
        mu->rx_sock = NULL; /* closed during its action */
    ev_io_stop(mu->loop, &s->io);
    LLMB_LIST_REMOVE(mu->socks, s);
    free(s);
}

/* Hands every finished transfer of sh to its owner. */
static void drain_done(struct shard *sh)
{
    CURLMsg *msg;
    int left;

    while ((msg = llmb_curl.multi_info_read(sh->m, &left)) != NULL) {
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        struct llmb_llm_xfer *x = NULL;

        if (msg->msg != CURLMSG_DONE)
            continue;
        /* msg is invalid once the handle is removed: copied above. */
        llmb_curl.easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        if (x != NULL && x->adopt && rc == CURLE_OK &&
            llmb_curl.easy_getinfo(easy, CURLINFO_ACTIVESOCKET,
                                   &x->fd) != CURLE_OK)
            x->fd = CURL_SOCKET_BAD;
        llmb_curl.multi_remove_handle(sh->m, easy);
        sh->nxfer--;
        if (x != NULL)
            x->done(x, rc);
    }
}

static void action(struct shard *sh, curl_socket_t fd, int what)
{
    CURLMcode mc = llmb_curl.multi_socket_action(sh->m, fd, what,
                                                 &sh->running);

    if (mc != CURLM_OK)
        llmb_error("llm: curl_multi_socket_action: %s",
                   llmb_curl.multi_strerror(mc));
    drain_done(sh);
}

/* The kernel's receive time (SO_TIMESTAMPNS, on CLOCK_REALTIME, moved
 * over to llmb_mono_us()'s clock) in msg's control data; -1 when there is
 * none (or one not to trust). */
static int64_t rx_time(struct msghdr *msg)
{
    struct cmsghdr *cm;

    for (cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts, real;
            int64_t mono = llmb_mono_us(), at;
            memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
            clock_gettime(CLOCK_REALTIME, &real);
            at = mono - (((int64_t)real.tv_sec - ts.tv_sec) * 1000000 +
                         (real.tv_nsec - ts.tv_nsec) / 1000);
            /* none (0), from the future, or from over a minute ago */
            if (at <= mono && mono - at < 60 * (int64_t)1000000)
                return at;
        }
    }
    return -1;
}

ssize_t llmb_llm_recv_stamped(int fd, void *buf, size_t len, int flags,
                              int64_t *at_us)
{
    char ctl[CMSG_SPACE(sizeof(struct timespec))];
    struct iovec iov = {buf, len};
    struct msghdr msg;
    ssize_t r;

    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl;
    msg.msg_controllen = sizeof(ctl);
    r = recvmsg(fd, &msg, flags);
    *at_us = r > 0 ? rx_time(&msg) : -1;
    return r;
}

/* When the bytes waiting on fd reached it: the receive time of the last
 * of them, read with MSG_PEEK so that curl still reads them all; -1 when
 * the kernel gives none. Bytes that come between this and curl's read,
 * microseconds later in the same callback, get the same time. */
static int64_t peek_arrival(curl_socket_t fd)
{
    char buf[CURL_MAX_WRITE_SIZE];
    int64_t at;

    (void)llmb_llm_recv_stamped(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT,
                                &at);
    return at;
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct msock *s = w->data;
    struct llmb_llm_multi *mu = s->sh->mu;
    int what = ((revents & EV_READ) ? CURL_CSELECT_IN : 0) |
               ((revents & EV_WRITE) ? CURL_CSELECT_OUT : 0);

    (void)loop;
    if ((revents & EV_READ) && s->want) {
        mu->rx_sock = s; /* valid until curl's action returns */
        mu->rx_owner = s->easy;
        mu->rx_us = peek_arrival(s->fd);
    }
    /* s may be freed inside the action (CURL_POLL_REMOVE). */
    action(s->sh, s->fd, what);
    mu->rx_sock = NULL;
    mu->rx_owner = NULL;
}

/* Runs first in every pass of the loop (an ev_check of the highest
 * priority is invoked right after the poll, before any other watcher):
 * every byte of every socket the poll reported had arrived by now. */
static void pass_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    struct llmb_llm_multi *mu = w->data;

    (void)loop;
    (void)revents;
    mu->pass_us = llmb_mono_us();
}

/* Curl's timeout. Its action reads every socket whose transfer curl
 * runs, without the peek io_cb makes for the bytes' receive time, so when
 * the loop was held up (a long pass, the worker preempted or stopped:
 * then the poll may even return no event at all) and bytes may be waiting,
 * it waits one pass: that pass's poll reports the sockets, whose watchers
 * run before this one (the timer has the lowest priority). */
static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct shard *sh = w->data;

    (void)revents;
    if (!sh->put_off &&
        ev_now(loop) - sh->due > LLMB_LLM_PASS_FRESH_US / 1e6) {
        sh->put_off = true;
        ev_timer_set(&sh->timer, 0.0, 0.0);
        ev_timer_start(loop, &sh->timer);
        return;
    }
    sh->put_off = false;
    action(sh, CURL_SOCKET_TIMEOUT, 0);
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching fd. */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
                     void *socketp)
{
    struct shard *sh = userp;
    struct llmb_llm_multi *mu = sh->mu;
    struct msock *s = socketp;
    struct llmb_llm_xfer *x = NULL;
    int events = ((what & CURL_POLL_IN) ? EV_READ : 0) |
                 ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    int one = 1;

    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            llmb_curl.multi_assign(sh->m, fd, NULL);
            msock_free(mu, s);
        }
        return 0;
    }
    if (s == NULL) {
        s = llmb_xcalloc(1, sizeof(*s));
        s->fd = fd;
        s->sh = sh;
        ev_io_init(&s->io, io_cb, fd, events);
        s->io.data = s;
        LLMB_LIST_INSERT(mu->socks, s);
        llmb_curl.multi_assign(sh->m, fd, s);
    } else {
        ev_io_stop(mu->loop, &s->io);
        ev_io_set(&s->io, fd, events);
    }
    ev_io_start(mu->loop, &s->io);
    /* Curl watches a transfer's socket for reading once it has sent the
     * request (so after llm_request.c's prereq_cb asked) */
    llmb_curl.easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    s->easy = easy;
    s->want = x != NULL && x->arrival && (what & CURL_POLL_IN) &&
              setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one,
                         sizeof(one)) == 0;
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: wake curl in timeout_ms (-1: never). Curl must
 * not be called from here, so even 0 goes through the timer. A timer
 * already due is left as it is: curl asks for 0 again at every
 * curl_multi_add_handle, and stopping the timer would drop its pending
 * event, so that starts added in every pass (llm_run.c) would put it off
 * pass after pass, and curl would run them all in one action at the end. */
static int timerfn_cb(CURLM *m, long timeout_ms, void *userp)
{
    struct shard *sh = userp;
    struct ev_loop *loop = sh->mu->loop;

    (void)m;
    if (timeout_ms == 0 &&
        (ev_is_pending(&sh->timer) ||
         (ev_is_active(&sh->timer) &&
          ev_timer_remaining(loop, &sh->timer) <= 0)))
        return 0;
    ev_timer_stop(loop, &sh->timer);
    sh->put_off = false;
    if (timeout_ms >= 0) {
        sh->due = ev_now(loop) + (ev_tstamp)timeout_ms / 1000.0;
        ev_timer_set(&sh->timer, (ev_tstamp)timeout_ms / 1000.0, 0.0);
        ev_timer_start(loop, &sh->timer);
    }
    return 0;
}

/* True when the worker may open twice the connections the shards may
 * keep, with one more shard. */
static bool room_for_shards(const struct llmb_llm_multi *mu)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return false;
    return rl.rlim_cur == RLIM_INFINITY ||
           (rlim_t)(mu->maxconns + SHARD_KEYS) * 2 <= rl.rlim_cur;
}

/* The index of the shard for key, made when it is first needed. */
static size_t shard_of(struct llmb_llm_multi *mu, size_t key)
{
    size_t i = key / SHARD_KEYS;
    struct shard *sh;

    if (i > 0 && (i >= mu->nshards || mu->shards[i] == NULL ||
                  mu->shards[i]->nxfer >= mu->shards[i]->maxconns) &&
        !room_for_shards(mu))
        i = 0;

    if (i >= mu->nshards) {
        mu->shards = llmb_xrealloc(mu->shards,
                                   (i + 1) * sizeof(*mu->shards));
        memset(mu->shards + mu->nshards, 0,
               (i + 1 - mu->nshards) * sizeof(*mu->shards));
        mu->nshards = i + 1;
    }
    if (mu->shards[i] != NULL)
        return i;
    sh = llmb_xcalloc(1, sizeof(*sh));
    sh->mu = mu;
    sh->m = llmb_curl.multi_init();
    llmb_assert(sh->m != NULL);
    ev_timer_init(&sh->timer, timer_cb, 0.0, 0.0);
    sh->timer.data = sh;
    /* after the sockets of the same pass (timer_cb) */
    ev_set_priority(&sh->timer, EV_MINPRI);
    llmb_curl.multi_setopt(sh->m, CURLMOPT_SOCKETFUNCTION, socket_cb);
    llmb_curl.multi_setopt(sh->m, CURLMOPT_SOCKETDATA, sh);
    llmb_curl.multi_setopt(sh->m, CURLMOPT_TIMERFUNCTION, timerfn_cb);
    llmb_curl.multi_setopt(sh->m, CURLMOPT_TIMERDATA, sh);
    mu->shards[i] = sh;
    llmb_debug("llm: curl multi handle %zu made (request slots %zu to %zu)",
               i, i * SHARD_KEYS, (i + 1) * SHARD_KEYS - 1);
    return i;
}

struct llmb_llm_multi *llmb_llm_multi_new(struct ev_loop *loop)
{
    struct llmb_llm_multi *mu = llmb_xcalloc(1, sizeof(*mu));

    mu->loop = loop;
    ev_check_init(&mu->pass, pass_cb);
    mu->pass.data = mu;
    ev_set_priority(&mu->pass, EV_MAXPRI);
    ev_check_start(loop, &mu->pass);
    ev_unref(loop); /* it alone does not keep the loop running */
    return mu;
}

void llmb_llm_multi_free(struct llmb_llm_multi *mu)
{
    if (mu == NULL)
        return;
    /* The runs removed their transfers before (curl 7.88 cannot list
     * them); the cleanup closes the cached connections. */
    llmb_llm_pool_free(mu->pool);
    ev_ref(mu->loop);
    ev_check_stop(mu->loop, &mu->pass);
    for (size_t i = 0; i < mu->nshards; i++) {
        struct shard *sh = mu->shards[i];
        if (sh == NULL)
            continue;
        ev_timer_stop(mu->loop, &sh->timer);
        llmb_curl.multi_cleanup(sh->m);
        free(sh);
    }
    while (mu->socks != NULL)
        msock_free(mu, mu->socks);
    free(mu->shards);
    free(mu);
}

struct ev_loop *llmb_llm_multi_loop(const struct llmb_llm_multi *mu)
{
    return mu->loop;
}

int64_t llmb_llm_multi_now(const struct llmb_llm_multi *mu, int64_t sent_us)
{
    int64_t now = llmb_mono_us();

    /* Bytes of a request sent during this pass came after its start; in
     * a pass that has run long (many events, or the worker preempted in
     * it), bytes read now may have come after its poll: a stamp of the
     * poll could be early by all that time, so they get the present. */
    if (mu->pass_us == 0 || mu->pass_us < sent_us ||
        now - mu->pass_us > LLMB_LLM_PASS_FRESH_US)
        return now;
    return mu->pass_us;
}

int64_t llmb_llm_multi_stamp(const struct llmb_llm_multi *mu,
                             const void *owner, int64_t sent_us)
{
    if (owner != NULL && mu->rx_owner == owner && mu->rx_us >= sent_us)
        return mu->rx_us;
    return llmb_llm_multi_now(mu, sent_us);
}

int64_t llmb_llm_multi_arrival(const struct llmb_llm_multi *mu,
                               const struct llmb_llm_xfer *x, int64_t sent_us)
{
    return llmb_llm_multi_stamp(mu, x->easy, sent_us);
}

void llmb_llm_multi_rx_at(struct llmb_llm_multi *mu, const void *owner,
                          int64_t at_us)
{
    mu->rx_owner = owner;
    mu->rx_us = at_us;
}

void llmb_llm_multi_rx_end(struct llmb_llm_multi *mu)
{
    mu->rx_owner = NULL;
}

struct llmb_llm_pool **llmb_llm_multi_pool(struct llmb_llm_multi *mu)
{
    return &mu->pool;
}

void llmb_llm_multi_arrival_off(struct llmb_llm_multi *mu,
                                struct llmb_llm_xfer *x)
{
    x->arrival = false;
    if (mu->rx_sock != NULL && mu->rx_sock->easy == x->easy)
        mu->rx_sock->want = false;
}

int llmb_llm_multi_add(struct llmb_llm_multi *mu, struct llmb_llm_xfer *x)
{
    size_t i = shard_of(mu, x->key);
    struct shard *sh = mu->shards[i];
    CURLMcode mc;

    llmb_curl.easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
    mc = llmb_curl.multi_add_handle(sh->m, x->easy);
    if (mc != CURLM_OK) {
        llmb_error("llm: curl_multi_add_handle: %s",
                   llmb_curl.multi_strerror(mc));
        return LLMB_EIO;
    }
    x->shard = i;
    /* Without a limit of ours curl keeps 4 idle connections per transfer
     * it holds, and as the transfers of a run end that limit falls, so it
     * closes the connections the run's next requests (or the next run's)
     * would reuse: they would all connect again, a burst of connects
     * where sends were due. So the cache keeps as many as the most
     * transfers that were ever in flight at once. */
    if (++sh->nxfer > sh->maxconns) {
        sh->maxconns = sh->nxfer;
        mu->maxconns++;
        llmb_curl.multi_setopt(sh->m, CURLMOPT_MAXCONNECTS, sh->maxconns);
    }
    return 0;
}

void llmb_llm_multi_remove(struct llmb_llm_multi *mu, struct llmb_llm_xfer *x)
{
    struct shard *sh = mu->shards[x->shard];

    llmb_curl.multi_remove_handle(sh->m, x->easy);
    sh->nxfer--;
}
