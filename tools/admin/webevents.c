/*
 * The live stream of `llmb web`: GET /api/events, Server-Sent Events
 * (docs/web.md). One reader thread per server does all the Redis work,
 * whatever the number of open streams: every LLMB_WEB_OVERVIEW_MS it
 * reads the overview once (llmb_web_overview()), and in between it waits
 * on the event streams of the known queues with one XREAD COUNT 500
 * BLOCK over all of them, never polling key by key (a Redis Cluster,
 * where one XREAD cannot span slots, is read per queue without blocking,
 * pipelined, every CLUSTER_ROUND_MS: xread_cluster()). The job events
 * it reads become SSE messages in a ring of RING_SIZE; the overview is
 * kept apart, the latest only, since each one replaces the one before.
 * Each open stream is a libmicrohttpd content reader on its connection's
 * own thread that copies the messages it has not sent yet, waiting on a
 * condition variable for the next one, and sends the latest overview in
 * its place among them (older ones it missed are skipped). A stream that
 * falls more than the ring behind is told to reload and goes on from the
 * present.
 *
 * Resuming: every message carries an id, "<server>-<n>", server a random
 * token of this process and n the number of job events published up to
 * it. A stream opened with a Last-Event-ID of this server still in the
 * ring starts after it, so that a browser that reconnects (EventSource
 * does so by itself) gets exactly the events it missed; any other id (of
 * another process, fallen out of the ring, garbage) gets a reload event.
 * The reader goes on RESUME_GRACE_MS after the last stream closed, for
 * the reconnection of a lone page, then sleeps; when a stream opens
 * again it starts from the present, and a reload message put in the ring
 * at that point tells the streams that resume from before it that the
 * events of the sleep were never read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <llmb/err.h>
#include <llmb/keys.h>
#include <llmb/log.h>

#include "web.h"

#define RING_SIZE 1024
#define XREAD_COUNT "500"
/* On a Redis Cluster, the streams are read this often (xread_cluster). */
#define CLUSTER_ROUND_MS 250
/* A comment line goes out after this long without a message. */
#define KEEPALIVE_S 15
/* A failure to read the event streams is logged at most this often. */
#define WARN_EVERY_MS 60000
/* The reader goes on this long after the last stream closed. */
#define RESUME_GRACE_MS 60000

/* What a read of the event streams came to. */
enum xr { XR_OK, XR_ERROR /* an error reply */, XR_CONN /* no answer */ };

struct msg {
    char *text; /* "id: ...\nevent: ...\ndata: ...\n\n" */
    size_t len;
};

struct llmb_web_events {
    struct llmb_web *w;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* a message, a stream opened or closed, stop */
    bool stop;
    size_t nsubs;        /* open streams */
    struct msg ring[RING_SIZE]; /* the job events */
    unsigned long long next; /* sequence number of the next message */
    char server[17];     /* this process's token in the ids, hex */
    long long idle_since; /* mono_ms() when the last stream closed */
    bool slept;          /* the reader slept since it last read */
    struct msg overview; /* the last overview message, without id */
    unsigned long long ov_gen; /* overviews published */
    unsigned long long ov_seq; /* next when the last one was published */

    /* The reader's own, touched by its thread only. */
    struct llmb_cluster *cl;
    struct llmb_strlist queues; /* known queues */
    struct llmb_strlist from;   /* per queue: the last stream id read */
    struct llmb_strlist skipped; /* queues whose events key is no stream */
    long long last_now;         /* Redis time of the previous overview */
    long long warn_next;        /* mono_ms() of the next warning allowed */
    unsigned long nquiet;       /* warnings left out since the last one */
};

/* One open stream. */
struct sub {
    struct llmb_web_events *ev;
    unsigned long long seq; /* next message to send */
    unsigned long long ov_gen; /* ov_gen of the last overview sent */
    char *pending;          /* what is being sent */
    size_t plen, poff;
};

/* The reload event (docs/web.md), its id the position pos. */
static char *reload_text(const struct llmb_web_events *ev,
                         unsigned long long pos, const char *reason)
{
    return llmb_xasprintf("id: %s-%llu\nevent: reload\ndata: "
                          "{\"reason\":\"%s\"}\n\n", ev->server, pos,
                          reason);
}

/* Puts text in the ring, its next message; with ev->mu held. */
static void ring_push_locked(struct llmb_web_events *ev, char *text)
{
    struct msg *m = &ev->ring[ev->next % RING_SIZE];

    free(m->text);
    m->text = text;
    m->len = strlen(text);
    ev->next++;
    pthread_cond_broadcast(&ev->cv);
}

static void publish(struct llmb_web_events *ev, const char *event,
                    json_t *data, bool is_overview)
{
    char *js = json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(15));

    pthread_mutex_lock(&ev->mu);
    if (is_overview) {
        /* its id is each stream's own position (sub_read) */
        free(ev->overview.text);
        ev->overview.text = llmb_xasprintf("event: %s\ndata: %s\n\n",
                                           event, js != NULL ? js : "null");
        ev->overview.len = strlen(ev->overview.text);
        ev->ov_gen++;
        ev->ov_seq = ev->next;
        pthread_cond_broadcast(&ev->cv);
    } else {
        ring_push_locked(ev, llmb_xasprintf("id: %s-%llu\nevent: %s\n"
                                            "data: %s\n\n", ev->server,
                                            ev->next + 1, event,
                                            js != NULL ? js : "null"));
    }
    pthread_mutex_unlock(&ev->mu);
    free(js);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits up to ms for stop; true when stopping. */
static bool nap(struct llmb_web_events *ev, long long ms)
{
    struct timespec ts;
    bool stop;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ev->mu);
    if (!ev->stop)
        pthread_cond_timedwait(&ev->cv, &ev->mu, &ts);
    stop = ev->stop;
    pthread_mutex_unlock(&ev->mu);
    return stop;
}

/* The reader's connection, (re)made when needed; NULL with *errstr. */
static struct llmb_cluster *reader_conn(struct llmb_web_events *ev,
                                        char **errstr)
{
    if (ev->cl != NULL)
        return ev->cl;
    /* a timeout past the longest XREAD BLOCK */
    ev->cl = llmb_cluster_new(ev->w->cfg->common.redis_url,
                              "llmb-web-events", 10000);
    if (llmb_cluster_connect(ev->cl, errstr) != 0) {
        llmb_cluster_free(ev->cl);
        ev->cl = NULL;
    }
    return ev->cl;
}

static void reader_conn_drop(struct llmb_web_events *ev)
{
    llmb_cluster_free(ev->cl);
    ev->cl = NULL;
}

/* Logs a failure to read the event streams, at most once every
 * WARN_EVERY_MS, with the number left out since. */
static void warn_limited(struct llmb_web_events *ev, const char *why)
{
    long long now = mono_ms();

    if (ev->warn_next != 0 && now < ev->warn_next) {
        ev->nquiet++;
        return;
    }
    if (ev->nquiet > 0)
        llmb_warn("events: reading the event streams failed: %s (and %lu "
                  "times more since the last warning)", why, ev->nquiet);
    else
        llmb_warn("events: reading the event streams failed: %s", why);
    ev->nquiet = 0;
    ev->warn_next = now + WARN_EVERY_MS;
}

static bool is_skipped(const struct llmb_web_events *ev, const char *q)
{
    for (size_t i = 0; i < ev->skipped.n; i++)
        if (strcmp(ev->skipped.v[i], q) == 0)
            return true;
    return false;
}

/* True when the events key of queue q holds something else than a
 * stream (none, or a failure to ask, is not). */
static bool stream_key_bad(struct llmb_web_events *ev, const char *q)
{
    char *key = llmb_key_queue_sub(ev->w->prefix, q, "events");
    const char *argv[] = {"TYPE", key};
    redisReply *r = llmb_cluster_command_argv(ev->cl, key, 2, argv, NULL);
    bool bad = r != NULL && r->type == REDIS_REPLY_STATUS &&
               strcmp(r->str, "stream") != 0 && strcmp(r->str, "none") != 0;

    if (bad)
        llmb_warn("events: %s is a %s, not a stream: the events of queue "
                  "%s are not read until it is one", key, r->str, q);
    freeReplyObject(r);
    free(key);
    return bad;
}

/* The skipped queues whose events key is a stream again (or none) are
 * read again, from where they were. */
static void skipped_recheck(struct llmb_web_events *ev)
{
    struct llmb_strlist keep = {0};

    for (size_t i = 0; i < ev->skipped.n; i++) {
        char *key = llmb_key_queue_sub(ev->w->prefix, ev->skipped.v[i],
                                       "events");
        const char *argv[] = {"TYPE", key};
        redisReply *r = llmb_cluster_command_argv(ev->cl, key, 2, argv,
                                                  NULL);
        if (r != NULL && r->type == REDIS_REPLY_STATUS &&
            (strcmp(r->str, "stream") == 0 || strcmp(r->str, "none") == 0))
            llmb_info("events: the events of queue %s are read again",
                      ev->skipped.v[i]);
        else
            llmb_strlist_push(&keep, ev->skipped.v[i]);
        freeReplyObject(r);
        free(key);
    }
    llmb_strlist_clear(&ev->skipped);
    ev->skipped = keep;
}

/* Reads and publishes the overview, and learns the queues from it: a
 * queue met for the first time is read from the previous overview's
 * time on (or from now, at the start), so that its first events are not
 * missed. A fresh start forgets the queues: every one is read from now.
 * False when the overview could not be read (the start is then still to
 * come). */
static bool overview_tick(struct llmb_web_events *ev, bool fresh)
{
    struct llmb_admin a;
    json_t *doc = NULL, *q;
    char *err = NULL;
    long long now;
    size_t i;

    memset(&a, 0, sizeof(a));
    a.cfg = ev->w->cfg;
    a.prefix = ev->w->prefix;
    a.out = stdout;
    a.conn = reader_conn(ev, &err);
    if (a.conn == NULL || llmb_web_overview(&a, &doc, &err) != 0) {
        json_t *h = json_object(), *reasons = json_array();
        if (a.conn != NULL)
            reader_conn_drop(ev);
        json_array_append_new(reasons, llmb_json_str(err));
        json_object_set_new(h, "status", json_string("unhealthy"));
        json_object_set_new(h, "reasons", reasons);
        doc = json_object();
        json_object_set_new(doc, "health", h);
        json_object_set_new(doc, "now_ms", json_null());
        publish(ev, "overview", doc, true);
        json_decref(doc);
        free(err);
        return false;
    }
    now = (long long)json_integer_value(json_object_get(doc, "now_ms"));
    if (fresh) {
        llmb_strlist_clear(&ev->queues);
        llmb_strlist_clear(&ev->from);
        llmb_strlist_clear(&ev->skipped);
        ev->last_now = now;
    } else if (ev->skipped.n > 0) {
        skipped_recheck(ev);
    }
    json_array_foreach(json_object_get(json_object_get(doc, "stats"),
                                       "queues"), i, q) {
        const char *name = json_string_value(json_object_get(q, "name"));
        bool known = false;
        for (size_t k = 0; name != NULL && k < ev->queues.n && !known; k++)
            known = strcmp(ev->queues.v[k], name) == 0;
        if (name == NULL || known)
            continue;
        /* never from 0-0: a queue met before any time is known is read
         * from now on, not from its oldest event */
        char *id = llmb_xasprintf("%lld-0", ev->last_now > 0 ? ev->last_now
                                                            : now);
        llmb_strlist_push(&ev->queues, name);
        llmb_strlist_push(&ev->from, id);
        free(id);
    }
    ev->last_now = now;
    publish(ev, "overview", doc, true);
    json_decref(doc);
    return true;
}

/* The field f of a stream entry's field/value array, or NULL. */
static const char *entry_get(const redisReply *fv, const char *f)
{
    for (size_t i = 0; i + 1 < fv->elements; i += 2) {
        const char *k = llmb_reply_str(fv->element[i]);
        if (k != NULL && strcmp(k, f) == 0)
            return llmb_reply_str(fv->element[i + 1]);
    }
    return NULL;
}

/* Publishes the job events of one stream entry (docs/web.md). */
static void publish_entry(struct llmb_web_events *ev, const char *queue,
                          const char *sid, const redisReply *fv)
{
    const char *ids = entry_get(fv, "ids");
    const char *states = entry_get(fv, "states");
    json_t *base = json_object();

    for (size_t i = 0; i + 1 < fv->elements; i += 2) {
        const char *k = llmb_reply_str(fv->element[i]);
        const char *v = llmb_reply_str(fv->element[i + 1]);
        if (k == NULL || strcmp(k, "job") == 0 || strcmp(k, "ids") == 0 ||
            strcmp(k, "states") == 0)
            continue;
        json_object_set_new(base, k, strcmp(k, "event") == 0 ||
                                     strcmp(k, "state") == 0
                                     ? llmb_json_str(v)
                                     : llmb_json_scalar(v));
    }
    json_object_set_new(base, "queue", llmb_json_str(queue));
    json_object_set_new(base, "stream_id", llmb_json_str(sid));
    if (json_object_get(base, "state") == NULL)
        json_object_set_new(base, "state", json_null());
    if (ids == NULL) {
        json_object_set_new(base, "id", llmb_json_str(entry_get(fv, "job")));
        publish(ev, "job", base, false);
        json_decref(base);
        return;
    }
    /* one event per job the entry names, each with its own state */
    struct llmb_strlist il = {0}, sl = {0};
    llmb_strlist_split(&il, ids, ' ');
    if (states != NULL)
        llmb_strlist_split(&sl, states, ' ');
    for (size_t i = 0; i < il.n; i++) {
        json_t *o = json_deep_copy(base);
        json_object_set_new(o, "id", llmb_json_str(il.v[i]));
        json_object_set_new(o, "state",
                            i < sl.n ? llmb_json_str(sl.v[i]) : json_null());
        json_object_del(o, "jobs");
        publish(ev, "job", o, false);
        json_decref(o);
    }
    llmb_strlist_clear(&il);
    llmb_strlist_clear(&sl);
    json_decref(base);
}

/* Index of queue q in the known queues, or -1. */
static long queue_index(const struct llmb_web_events *ev, const char *q)
{
    for (size_t i = 0; i < ev->queues.n; i++)
        if (strcmp(ev->queues.v[i], q) == 0)
            return (long)i;
    return -1;
}

/* Publishes the entries of an XREAD reply and moves the queues' read
 * positions past them. */
static void xread_publish(struct llmb_web_events *ev, const redisReply *r)
{
    size_t plen = strlen(ev->w->prefix) + 2;

    for (size_t s = 0; r->type == REDIS_REPLY_ARRAY && s < r->elements;
         s++) {
        const redisReply *st = r->element[s];
        const char *key;
        long qi;
        if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
            (key = llmb_reply_str(st->element[0])) == NULL ||
            strlen(key) <= plen)
            continue;
        /* <prefix>:{<queue>}:events */
        char *q = llmb_xstrndup(key + plen, strcspn(key + plen, "}"));
        qi = queue_index(ev, q);
        for (size_t e = 0; qi >= 0 && st->element[1]->type ==
                                          REDIS_REPLY_ARRAY &&
                           e < st->element[1]->elements; e++) {
            const redisReply *en = st->element[1]->element[e];
            const char *sid;
            if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 ||
                (sid = llmb_reply_str(en->element[0])) == NULL ||
                en->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            free(ev->from.v[qi]);
            ev->from.v[qi] = llmb_xstrdup(sid);
            publish_entry(ev, q, sid, en->element[1]);
        }
        free(q);
    }
}

/* The text of an error reply, for the warning. */
static void reply_error(char **why, const redisReply *r)
{
    free(*why);
    *why = llmb_xstrdup(r->str != NULL ? r->str : "an error reply");
}

/* One server: a single XREAD BLOCK over every queue's stream (but the
 * skipped ones), for at most block_ms. An error reply is XR_ERROR with
 * *why; WRONGTYPE also finds the queues whose key is no stream and skips
 * them from then on, so that the others are read. */
static enum xr xread_single(struct llmb_web_events *ev, long long block_ms,
                            char **why)
{
    size_t nq = ev->queues.n, n = 0;
    const char **argv = llmb_xcalloc(6 + 2 * nq, sizeof(*argv));
    char **keys = llmb_xcalloc(nq, sizeof(*keys));
    const char **from = llmb_xcalloc(nq, sizeof(*from));
    char block[32];
    redisReply *r = NULL;
    enum xr res = XR_OK;
    int argc = 0;

    snprintf(block, sizeof(block), "%lld", block_ms);
    argv[argc++] = "XREAD";
    argv[argc++] = "COUNT";
    argv[argc++] = XREAD_COUNT;
    argv[argc++] = "BLOCK";
    argv[argc++] = block;
    argv[argc++] = "STREAMS";
    for (size_t i = 0; i < nq; i++) {
        if (is_skipped(ev, ev->queues.v[i]))
            continue;
        argv[argc++] = keys[n] = llmb_key_queue_sub(ev->w->prefix,
                                                    ev->queues.v[i],
                                                    "events");
        from[n++] = ev->from.v[i];
    }
    for (size_t i = 0; i < n; i++)
        argv[argc++] = from[i];
    if (n == 0)
        goto out; /* every queue skipped: the caller naps */
    r = llmb_cluster_command_argv(ev->cl, keys[0], argc, argv, NULL);
    if (r == NULL) {
        res = XR_CONN;
    } else if (r->type == REDIS_REPLY_ERROR) {
        res = XR_ERROR;
        reply_error(why, r);
        if (strncmp(r->str, "WRONGTYPE", 9) == 0)
            for (size_t i = 0; i < nq; i++)
                if (!is_skipped(ev, ev->queues.v[i]) &&
                    stream_key_bad(ev, ev->queues.v[i]))
                    llmb_strlist_push(&ev->skipped, ev->queues.v[i]);
    } else {
        xread_publish(ev, r);
    }
    freeReplyObject(r);
out:
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    free(from);
    free(argv);
    return res;
}

/* A Redis Cluster: one XREAD cannot name the streams of several slots,
 * and every queue has a slot of its own, so each queue's stream is read
 * without blocking, the calls pipelined on the connection of each
 * primary. A queue answered WRONGTYPE is skipped from then on; XR_CONN
 * when a connection failed, else XR_ERROR (with *why) on another error
 * reply. */
static enum xr xread_cluster(struct llmb_web_events *ev, char **why)
{
    size_t nq = ev->queues.n;
    struct llmb_conn **conns = llmb_xcalloc(nq, sizeof(*conns));
    bool moved = false;
    enum xr res = XR_OK;

    for (size_t i = 0; i < nq; i++) {
        char *key;
        if (is_skipped(ev, ev->queues.v[i]))
            continue;
        key = llmb_key_queue_sub(ev->w->prefix, ev->queues.v[i], "events");
        const char *argv[] = {"XREAD", "COUNT", XREAD_COUNT, "STREAMS", key,
                              ev->from.v[i]};
        conns[i] = llmb_cluster_conn_for_key(ev->cl, key);
        if (conns[i] != NULL &&
            llmb_conn_append_argv(conns[i], 6, argv, NULL) != 0)
            conns[i] = NULL;
        if (conns[i] == NULL)
            res = XR_CONN;
        free(key);
    }
    /* each connection answers in the order its calls were queued */
    for (size_t i = 0; i < nq; i++) {
        struct llmb_conn *c = conns[i];
        redisReply *r;
        if (c == NULL)
            continue;
        r = llmb_conn_get_reply(c);
        if (r == NULL) { /* the rest of its replies are lost */
            for (size_t k = i; k < nq; k++)
                if (conns[k] == c)
                    conns[k] = NULL;
            res = XR_CONN;
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR &&
            (strncmp(r->str, "MOVED", 5) == 0 ||
             strncmp(r->str, "ASK", 3) == 0)) {
            moved = true; /* read again at the next round */
        } else if (r->type == REDIS_REPLY_ERROR) {
            if (res == XR_OK)
                res = XR_ERROR;
            reply_error(why, r);
            if (strncmp(r->str, "WRONGTYPE", 9) == 0 &&
                stream_key_bad(ev, ev->queues.v[i]))
                llmb_strlist_push(&ev->skipped, ev->queues.v[i]);
        } else {
            xread_publish(ev, r);
        }
        freeReplyObject(r);
    }
    if (moved)
        llmb_cluster_refresh(ev->cl);
    free(conns);
    return res;
}

static void *reader_main(void *arg)
{
    struct llmb_web_events *ev = arg;
    long long next_overview = 0;
    bool fresh = true;
    char *why = NULL;

    for (;;) {
        long long now, wait;
        enum xr res;

        pthread_mutex_lock(&ev->mu);
        /* after the grace, sleeps until a stream opens */
        while (!ev->stop && ev->nsubs == 0 &&
               mono_ms() - ev->idle_since >= RESUME_GRACE_MS) {
            if (!fresh)
                ev->slept = true; /* it read before: a gap */
            fresh = true;
            next_overview = 0;
            pthread_cond_wait(&ev->cv, &ev->mu);
        }
        if (ev->stop) {
            pthread_mutex_unlock(&ev->mu);
            break;
        }
        pthread_mutex_unlock(&ev->mu);

        now = mono_ms();
        if (now >= next_overview) {
            /* a start stays to come until an overview is read (a
             * failure later keeps the queues and where they were read) */
            if (overview_tick(ev, fresh))
                fresh = false;
            next_overview = now + LLMB_WEB_OVERVIEW_MS;
        }
        wait = next_overview - mono_ms();
        if (wait < 100)
            wait = 100;
        if (wait > 1000)
            wait = 1000;
        if (ev->cl == NULL || ev->queues.n == 0) {
            if (nap(ev, wait))
                break;
            continue;
        }
        if (!llmb_cluster_enabled(ev->cl)) {
            res = xread_single(ev, wait, &why);
            /* nothing to block on: every queue is skipped */
            if (res == XR_OK && ev->skipped.n == ev->queues.n &&
                nap(ev, wait))
                break;
        } else {
            res = xread_cluster(ev, &why);
            if (res == XR_OK &&
                nap(ev, wait < CLUSTER_ROUND_MS ? wait : CLUSTER_ROUND_MS))
                break;
        }
        if (res != XR_OK) {
            /* an error reply (LOADING, WRONGTYPE, ...) is a failure too:
             * a nap, not a spin */
            warn_limited(ev, res == XR_CONN ? llmb_cluster_errstr(ev->cl)
                                            : why);
            if (res == XR_CONN)
                reader_conn_drop(ev);
            if (nap(ev, 500))
                break;
        }
    }
    free(why);
    return NULL;
}

/* 16 hex digits of /dev/urandom (of the time and pid if it cannot be
 * read): the ids of another process are told apart from this one's. */
static void server_token(char *out, size_t size)
{
    unsigned long long v = 0;
    FILE *f = fopen("/dev/urandom", "rb");

    if (f == NULL || fread(&v, sizeof(v), 1, f) != 1) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = ((unsigned long long)ts.tv_sec << 32) ^
            (unsigned long long)ts.tv_nsec ^
            ((unsigned long long)getpid() << 16);
    }
    if (f != NULL)
        fclose(f);
    snprintf(out, size, "%016llx", v);
}

struct llmb_web_events *llmb_web_events_new(struct llmb_web *w)
{
    struct llmb_web_events *ev = llmb_xcalloc(1, sizeof(*ev));

    ev->w = w;
    server_token(ev->server, sizeof(ev->server));
    ev->idle_since = mono_ms() - RESUME_GRACE_MS; /* asleep at first */
    pthread_mutex_init(&ev->mu, NULL);
    pthread_cond_init(&ev->cv, NULL);
    if (pthread_create(&ev->thread, NULL, reader_main, ev) == 0)
        ev->started = true;
    else
        llmb_warn("events: cannot start the reader thread: %s",
                  strerror(errno));
    return ev;
}

void llmb_web_events_stop(struct llmb_web_events *ev)
{
    if (ev == NULL)
        return;
    pthread_mutex_lock(&ev->mu);
    ev->stop = true;
    pthread_cond_broadcast(&ev->cv);
    pthread_mutex_unlock(&ev->mu);
    if (ev->started)
        pthread_join(ev->thread, NULL);
    ev->started = false;
}

void llmb_web_events_free(struct llmb_web_events *ev)
{
    if (ev == NULL)
        return;
    llmb_web_events_stop(ev);
    for (size_t i = 0; i < RING_SIZE; i++)
        free(ev->ring[i].text);
    free(ev->overview.text);
    llmb_cluster_free(ev->cl);
    llmb_strlist_clear(&ev->queues);
    llmb_strlist_clear(&ev->from);
    llmb_strlist_clear(&ev->skipped);
    pthread_cond_destroy(&ev->cv);
    pthread_mutex_destroy(&ev->mu);
    free(ev);
}

/* libmicrohttpd's content reader of one stream: the next bytes to send,
 * waiting for a message when all were sent. A newer overview than the
 * stream's goes out after the job events published before it. */
static ssize_t sub_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct sub *s = cls;
    struct llmb_web_events *ev = s->ev;
    size_t n;

    (void)pos;
    if (s->poff >= s->plen) {
        struct timespec ts;
        bool timed_out = false;

        free(s->pending);
        s->pending = NULL;
        s->plen = s->poff = 0;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += KEEPALIVE_S;
        pthread_mutex_lock(&ev->mu);
        while (!ev->stop && s->seq >= ev->next && s->ov_gen == ev->ov_gen &&
               !timed_out)
            timed_out = pthread_cond_timedwait(&ev->cv, &ev->mu, &ts) ==
                        ETIMEDOUT;
        if (ev->stop) {
            pthread_mutex_unlock(&ev->mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (ev->next - s->seq > RING_SIZE) { /* fell behind */
            s->seq = ev->next;
            s->pending = reload_text(ev, s->seq, "behind");
        } else if (s->ov_gen != ev->ov_gen && s->seq >= ev->ov_seq) {
            s->pending = llmb_xasprintf("id: %s-%llu\n%s", ev->server,
                                        s->seq, ev->overview.text);
            s->ov_gen = ev->ov_gen;
        } else if (s->seq < ev->next) {
            const struct msg *m = &ev->ring[s->seq % RING_SIZE];
            s->pending = llmb_xstrndup(m->text, m->len);
            s->seq++;
        } else {
            s->pending = llmb_xstrdup(": keepalive\n\n");
        }
        s->plen = strlen(s->pending);
        pthread_mutex_unlock(&ev->mu);
    }
    n = s->plen - s->poff < max ? s->plen - s->poff : max;
    memcpy(buf, s->pending + s->poff, n);
    s->poff += n;
    return (ssize_t)n;
}

static void sub_free(void *cls)
{
    struct sub *s = cls;

    pthread_mutex_lock(&s->ev->mu);
    if (--s->ev->nsubs == 0)
        s->ev->idle_since = mono_ms(); /* the grace starts */
    pthread_mutex_unlock(&s->ev->mu);
    free(s->pending);
    free(s);
}

/* The position after the Last-Event-ID id when it is one of this server
 * still in the ring (or the present): true with *pos. */
static bool resume_pos(const struct llmb_web_events *ev, const char *id,
                       unsigned long long *pos)
{
    size_t sl = strlen(ev->server);
    unsigned long long n;
    char *end;

    if (strncmp(id, ev->server, sl) != 0 || id[sl] != '-' ||
        id[sl + 1] < '0' || id[sl + 1] > '9')
        return false;
    errno = 0;
    n = strtoull(id + sl + 1, &end, 10);
    if (errno != 0 || *end != '\0' || n > ev->next ||
        ev->next - n > RING_SIZE)
        return false;
    *pos = n;
    return true;
}

struct MHD_Response *llmb_web_events_response(struct llmb_web_events *ev,
                                              const char *last_id)
{
    struct MHD_Response *r;
    struct sub *s;
    char *reload = NULL;

    pthread_mutex_lock(&ev->mu);
    if (ev->stop || ev->nsubs >= LLMB_WEB_STREAMS_MAX) {
        pthread_mutex_unlock(&ev->mu);
        return NULL;
    }
    if (ev->nsubs++ == 0 && ev->slept) {
        /* the reader starts again from the present: a stream resuming
         * from before this point missed what came while it slept */
        ev->slept = false;
        ring_push_locked(ev, reload_text(ev, ev->next + 1, "paused"));
    }
    s = llmb_xcalloc(1, sizeof(*s));
    s->ev = ev;
    s->seq = ev->next;
    s->ov_gen = ev->ov_gen;
    /* (an empty one, which EventSource never sends, is none) */
    if (last_id != NULL && last_id[0] != '\0' &&
        !resume_pos(ev, last_id, &s->seq)) {
        s->seq = ev->next;
        reload = reload_text(ev, s->seq, "unknown");
    }
    /* the last overview at once, then the events missed (or the reload),
     * then what comes */
    if (ev->overview.text != NULL)
        s->pending = llmb_xasprintf("retry: 2000\n\nid: %s-%llu\n%s%s",
                                    ev->server, s->seq, ev->overview.text,
                                    reload != NULL ? reload : "");
    else
        s->pending = llmb_xasprintf("retry: 2000\n\n%s",
                                    reload != NULL ? reload : "");
    free(reload);
    s->plen = strlen(s->pending);
    pthread_cond_broadcast(&ev->cv); /* wakes a sleeping reader */
    pthread_mutex_unlock(&ev->mu);

    r = llmb_mhd.create_response_from_callback(MHD_SIZE_UNKNOWN, 16384,
                                               sub_read, s, sub_free);
    if (r == NULL) {
        sub_free(s);
        return NULL;
    }
    llmb_web_headers(r);
    llmb_mhd.add_response_header(r, "Content-Type", "text/event-stream");
    llmb_mhd.add_response_header(r, "X-Accel-Buffering", "no");
    return r;
}
