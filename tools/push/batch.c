/*
 * NDJSON batch push: reads job documents line by line, takes each apart
 * into the values of llmb_push_fields (lib/job.c checks what it can on the
 * way), groups consecutive lines of the same queue into calls of up to
 * --batch-size jobs and keeps up to --pipeline calls in flight, so 100,000
 * jobs take a few hundred round trips, not 100,000, and Redis parses no
 * JSON.
 *
 * A job that names no id gets "<nonce>-<line>" from the run's journal
 * (journal.c). With the journal on, the whole input is read first (a file
 * is hashed and read again; stdin is copied to a temporary file on the
 * way), since the journal is found by the digest of the input.
 *
 * Every non-blank line gets a record, in input order: its id, queue and
 * status. Replies come back in order and settle the records of their call
 * (confirmed, or refused with the server's message); a line llmb-push
 * refuses itself is settled at once. Records are said (outcome.c) in input
 * order as soon as every line before them is settled: ids on stdout,
 * refusals with their line number on stderr. When the connection is lost,
 * a reply does not come in time, or Redis will not run a call now (BUSY,
 * LOADING...), nothing more is sent: the jobs of that call, of the calls
 * in flight and of the rest of the input are not confirmed.
 *
 * With --wait no id is printed: once the input is pushed, every confirmed
 * job is followed to its end (wait.c) and printed as one JSON line.
 *
 * On a Redis Cluster the calls of a run of lines of one queue go to the
 * primary of that queue's slot; where the queue changes, the replies in
 * flight are read first. A call answered MOVED or ASK (its slot moved on
 * the way) is not confirmed, like one answered LOADING.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include <hiredis/hiredis.h>

#include <llmb/job.h>
#include <llmb/keys.h>

#include "push.h"

/* One non-blank input line and what became of its job. */
struct line_rec {
    long line;
    char *id;          /* as sent, then as answered; NULL if refused here */
    const char *queue; /* a string of batch.queues */
    enum push_status st;
    char *error;       /* PUSH_ERROR: why */
};

/* One call in flight: an FCALL llmb_push_fields of n jobs, or (n == 0) the
 * SADD that registers a queue. */
struct batch_call {
    size_t n;
    size_t *seqs; /* the record of each job, by sequence number */
};

struct batch {
    const struct push_config *cfg;
    struct llmb_conn *conn;    /* where calls go: on a cluster, the
                                  primary of the current queue */
    struct llmb_cluster *cl;   /* a cluster, or NULL */
    struct push_journal *journal;
    struct push_tally tally;
    /* records not said yet, a growing ring; seq0 is the sequence number of
     * recs[rhead] */
    struct line_rec *recs;
    size_t rcap, rhead, rn, seq0;
    /* the call being filled */
    const char *queue;         /* its queue; NULL when empty */
    size_t njobs;              /* its jobs */
    struct llmb_buf vals;      /* their values, back to back */
    size_t *lens;              /* LLMB_PUSH_NFIELDS lengths per job */
    size_t *seqs;              /* their records */
    /* calls in flight, a ring of cfg->pipeline + 1 entries */
    struct batch_call *ring;
    size_t ring_cap, head, count;
    struct llmb_strlist queues;     /* queue names seen (stable strings) */
    struct llmb_strlist registered; /* queues registered in this run */
    struct llmb_strlist confirmed_ids;    /* --wait: the jobs to follow */
    struct llmb_strlist confirmed_queues; /* and their queues */
    int stopped;               /* send nothing more */
    int lost;                  /* the connection is gone: read nothing */
};

static struct line_rec *rec_at(struct batch *b, size_t seq)
{
    return &b->recs[(b->rhead + (seq - b->seq0)) % b->rcap];
}

/* Adds the record of a line; returns its sequence number. Takes id and
 * error. */
static size_t rec_add(struct batch *b, long line, char *id, const char *queue,
                      enum push_status st, char *error)
{
    struct line_rec *r;

    if (b->rn == b->rcap) {
        size_t cap = b->rcap ? 2 * b->rcap : 256, i;
        struct line_rec *n = llmb_xcalloc(cap, sizeof(*n));
        for (i = 0; i < b->rn; i++)
            n[i] = b->recs[(b->rhead + i) % b->rcap];
        free(b->recs);
        b->recs = n;
        b->rcap = cap;
        b->rhead = 0;
    }
    r = &b->recs[(b->rhead + b->rn) % b->rcap];
    r->line = line;
    r->id = id;
    r->queue = queue;
    r->st = st;
    r->error = error;
    b->rn++;
    return b->seq0 + b->rn - 1;
}

static void rec_settle(struct batch *b, size_t seq, enum push_status st,
                       const char *id, size_t idlen, const char *error)
{
    struct line_rec *r = rec_at(b, seq);

    r->st = st;
    if (id != NULL) {
        free(r->id);
        r->id = llmb_xstrndup(id, idlen);
    }
    if (error != NULL)
        r->error = llmb_xstrdup(error);
}

/* Says the settled records at the head, in input order. */
static void recs_say(struct batch *b)
{
    while (b->rn > 0) {
        struct line_rec *r = &b->recs[b->rhead];
        if (r->st == PUSH_PENDING)
            break;
        /* with --wait, stdout holds the final jobs only */
        push_status_print(b->cfg, &b->tally, r->line, r->id, r->queue, r->st,
                          r->error, b->cfg->wait);
        if (b->cfg->wait && r->st == PUSH_CONFIRMED) {
            llmb_strlist_push(&b->confirmed_ids, r->id);
            llmb_strlist_push(&b->confirmed_queues, r->queue);
        }
        free(r->id);
        free(r->error);
        b->rhead = (b->rhead + 1) % b->rcap;
        b->rn--;
        b->seq0++;
    }
}

/* Stops sending; reason is said once, for the first cause. */
static void batch_stop(struct batch *b, const char *reason)
{
    if (!b->stopped)
        fprintf(stderr, "llmb-push: %s\n", reason);
    b->stopped = 1;
}

/* Reads the reply of the oldest call in flight and settles its jobs. */
static void batch_read_one(struct batch *b)
{
    struct batch_call *c = &b->ring[b->head];
    redisReply *r = llmb_conn_get_reply(b->conn);
    size_t i;

    if (r == NULL) {
        batch_stop(b, llmb_conn_errstr(b->conn));
        b->lost = 1;
        for (i = 0; i < c->n; i++)
            rec_settle(b, c->seqs[i], PUSH_UNKNOWN, NULL, 0, NULL);
    } else if (c->n == 0) {
        /* SADD: nothing to settle */
        if (r->type == REDIS_REPLY_ERROR && push_reply_unavailable(r->str)) {
            char *m = llmb_xasprintf("redis answered: %s", r->str);
            batch_stop(b, m);
            free(m);
        } else if (r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "llmb-push: registering the queue: %s\n", r->str);
        }
    } else if (r->type == REDIS_REPLY_STRING && c->n == 1) {
        rec_settle(b, c->seqs[0], PUSH_CONFIRMED, r->str, r->len, NULL);
    } else if (r->type == REDIS_REPLY_ERROR &&
               push_reply_unavailable(r->str)) {
        /* not run now: its jobs are not confirmed, nor is anything after */
        char *m = llmb_xasprintf("redis answered: %s", r->str);
        batch_stop(b, m);
        free(m);
        for (i = 0; i < c->n; i++)
            rec_settle(b, c->seqs[i], PUSH_UNKNOWN, NULL, 0, NULL);
    } else if (r->type == REDIS_REPLY_ERROR && c->n == 1) {
        rec_settle(b, c->seqs[0], PUSH_ERROR, NULL, 0, r->str);
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == c->n) {
        for (i = 0; i < c->n; i++) {
            redisReply *e = r->element[i];
            if (e->type == REDIS_REPLY_STRING)
                rec_settle(b, c->seqs[i], PUSH_CONFIRMED, e->str, e->len,
                           NULL);
            else
                rec_settle(b, c->seqs[i], PUSH_ERROR, NULL, 0,
                           e->type == REDIS_REPLY_ERROR ? e->str
                                                        : "unexpected reply");
        }
    } else {
        /* The whole call was refused, e.g. the function library is
         * missing. */
        for (i = 0; i < c->n; i++)
            rec_settle(b, c->seqs[i], PUSH_ERROR, NULL, 0,
                       r->type == REDIS_REPLY_ERROR ? r->str
                                                    : "unexpected reply");
    }
    if (r != NULL)
        freeReplyObject(r);
    free(c->seqs);
    c->seqs = NULL;
    b->head = (b->head + 1) % b->ring_cap;
    b->count--;
    recs_say(b);
}

/* Queues a call of n jobs (their records seqs, taken over); reads replies
 * first while the pipeline is full. Once the run has stopped, the jobs
 * are not sent and not confirmed. */
static void batch_send(struct batch *b, int argc, const char **argv,
                       const size_t *argvlen, size_t n, size_t *seqs)
{
    struct batch_call *c;
    size_t i;

    while (b->count >= (size_t)b->cfg->pipeline && !b->lost)
        batch_read_one(b);
    if (!b->stopped &&
        llmb_conn_append_argv(b->conn, argc, argv, argvlen) != 0) {
        batch_stop(b, llmb_conn_errstr(b->conn));
        b->lost = 1;
    }
    if (b->stopped) {
        for (i = 0; i < n; i++)
            rec_settle(b, seqs[i], PUSH_UNKNOWN, NULL, 0, NULL);
        free(seqs);
        recs_say(b);
        return;
    }
    c = &b->ring[(b->head + b->count) % b->ring_cap];
    c->n = n;
    c->seqs = seqs;
    b->count++;
    /* sent now, so that Redis runs it while the next call is read; a
     * failure leaves it, and every call in flight, not confirmed */
    if (llmb_conn_flush(b->conn) != 0) {
        batch_stop(b, llmb_conn_errstr(b->conn));
        b->lost = 1;
    }
}

int push_fields_argv(const char *base, const char *vals, const size_t *lens,
                     size_t njobs, const char **argv, size_t *argvlen)
{
    size_t i, n = njobs * LLMB_PUSH_NFIELDS, off = 0;

    argv[0] = "FCALL";
    argv[1] = "llmb_push_fields";
    argv[2] = "1";
    argv[3] = base;
    for (i = 0; i < 4; i++)
        argvlen[i] = strlen(argv[i]);
    for (i = 0; i < n; i++) {
        argv[4 + i] = vals + off;
        argvlen[4 + i] = lens[i];
        off += lens[i];
    }
    return (int)(n + 4);
}

/* Sends the call being filled, if any. */
static void batch_flush(struct batch *b)
{
    const char **argv;
    size_t *argvlen;
    char *base;
    size_t n = b->njobs * LLMB_PUSH_NFIELDS;
    int argc;

    if (n == 0)
        return;
    base = llmb_key_queue(b->cfg->common.prefix, b->queue);
    argv = llmb_xcalloc(n + 4, sizeof(*argv));
    argvlen = llmb_xcalloc(n + 4, sizeof(*argvlen));
    argc = push_fields_argv(base, b->vals.data, b->lens, b->njobs, argv,
                            argvlen);
    batch_send(b, argc, argv, argvlen, b->njobs, b->seqs);
    b->seqs = llmb_xcalloc((size_t)b->cfg->batch_size, sizeof(*b->seqs));
    b->njobs = 0;
    llmb_buf_reset(&b->vals);
    free(argvlen);
    free(argv);
    free(base);
}

/* The stable copy of queue name q kept for the records. */
static const char *queue_intern(struct batch *b, const char *q)
{
    size_t i;

    for (i = 0; i < b->queues.n; i++)
        if (strcmp(b->queues.v[i], q) == 0)
            return b->queues.v[i];
    llmb_strlist_push(&b->queues, q);
    return b->queues.v[b->queues.n - 1];
}

/* On a cluster: reads every reply in flight (they come on the current
 * node's connection), so that the router may use its connections. */
static void batch_drain(struct batch *b)
{
    while (b->count > 0 && !b->lost)
        batch_read_one(b);
}

/* Registers queue q in <prefix>:queues once per run. On a cluster the
 * set lives in the slot of its own name: the SADD goes there through the
 * router, after the calls in flight. */
static void batch_register(struct batch *b, const char *q)
{
    const char *argv[3];
    char *key;
    size_t i;

    for (i = 0; i < b->registered.n; i++)
        if (strcmp(b->registered.v[i], q) == 0)
            return;
    llmb_strlist_push(&b->registered, q);
    key = llmb_key_global(b->cfg->common.prefix, "queues");
    argv[0] = "SADD";
    argv[1] = key;
    argv[2] = q;
    if (b->cl != NULL) {
        redisReply *r = NULL;
        batch_drain(b);
        if (!b->stopped)
            r = llmb_cluster_command_argv(b->cl, key, 3, argv, NULL);
        if (!b->stopped && r == NULL) {
            batch_stop(b, llmb_cluster_errstr(b->cl));
            b->lost = 1;
        } else if (r != NULL && r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "llmb-push: registering the queue: %s\n",
                    r->str);
        }
        if (r != NULL)
            freeReplyObject(r);
    } else {
        batch_send(b, 3, argv, NULL, 0, NULL);
    }
    free(key);
}

/* On a cluster: sends the calls of queue q to the primary of its slot
 * (after the calls in flight on the previous one). */
static void batch_route(struct batch *b, const char *q)
{
    char *key;
    struct llmb_conn *c;

    if (b->cl == NULL || b->stopped)
        return;
    batch_drain(b);
    key = llmb_key_queue(b->cfg->common.prefix, q);
    c = llmb_cluster_conn_for_key(b->cl, key);
    free(key);
    if (c == NULL) {
        batch_stop(b, llmb_cluster_errstr(b->cl));
        b->lost = 1;
        return;
    }
    b->conn = c;
}

static int blank(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

/* Makes the input readable twice: a regular file is hashed and rewound;
 * anything else (stdin, a pipe) is copied to a temporary file while it is
 * hashed, and *in becomes that file. The SHA-256 goes to hex and the size
 * to *bytes. Returns 0 or an exit code (said on stderr). */
static int input_prepare(FILE **in, const char *name, char *hex,
                         unsigned long long *bytes)
{
    struct llmb_sha256 h;
    struct stat st;
    FILE *copy = NULL;
    char chunk[65536];
    off_t start = 0;
    size_t n;

    if (fstat(fileno(*in), &st) != 0 || !S_ISREG(st.st_mode) ||
        (start = ftello(*in)) < 0) {
        copy = tmpfile();
        if (copy == NULL) {
            fprintf(stderr, "llmb-push: cannot make a temporary file for %s: "
                            "%s (--no-journal streams it instead)\n", name,
                    strerror(errno));
            return EX_CANTCREAT;
        }
    }
    llmb_sha256_init(&h);
    while ((n = fread(chunk, 1, sizeof(chunk), *in)) > 0) {
        llmb_sha256_update(&h, chunk, n);
        if (copy != NULL && fwrite(chunk, 1, n, copy) != n) {
            fprintf(stderr, "llmb-push: cannot copy %s to a temporary file: "
                            "%s\n", name, strerror(errno));
            fclose(copy);
            return EX_IOERR;
        }
    }
    if (ferror(*in)) {
        fprintf(stderr, "llmb-push: reading %s: %s\n", name, strerror(errno));
        if (copy != NULL)
            fclose(copy);
        return EX_IOERR;
    }
    *bytes = h.bytes;
    llmb_sha256_final(&h, hex);
    if (copy != NULL) {
        if (*in != stdin)
            fclose(*in);
        *in = copy;
        start = 0;
    }
    if (fflush(*in) != 0 || fseeko(*in, start, SEEK_SET) != 0) {
        fprintf(stderr, "llmb-push: cannot read %s again: %s\n", name,
                strerror(errno));
        return EX_IOERR;
    }
    return 0;
}

int push_batch(const struct push_config *cfg, struct llmb_conn *conn,
               struct llmb_cluster *cl, const char *path)
{
    struct batch b;
    struct push_journal journal;
    FILE *in = stdin;
    const char *name = "stdin";
    char *line = NULL;
    char hex[LLMB_SHA256_HEX + 1] = "";
    unsigned long long bytes = 0;
    size_t cap = 0;
    ssize_t len;
    size_t fields[LLMB_PUSH_NFIELDS];
    struct llmb_buf one; /* the values of the line being read */
    long lineno = 0;
    int rc;

    if (path != NULL && strcmp(path, "-") != 0) {
        name = path;
        in = fopen(path, "r");
        if (in == NULL) {
            fprintf(stderr, "llmb-push: cannot open %s: %s\n", path,
                    strerror(errno));
            return EX_NOINPUT;
        }
    }
    if (cfg->journal && (rc = input_prepare(&in, name, hex, &bytes)) != 0) {
        if (in != stdin)
            fclose(in);
        return rc;
    }
    push_journal_open(&journal, cfg, "batch", cfg->queue, hex, bytes, name);

    memset(&b, 0, sizeof(b));
    b.cfg = cfg;
    b.conn = conn;
    b.cl = llmb_cluster_enabled(cl) ? cl : NULL;
    b.journal = &journal;
    b.ring_cap = (size_t)cfg->pipeline + 1;
    b.ring = llmb_xcalloc(b.ring_cap, sizeof(*b.ring));
    b.seqs = llmb_xcalloc((size_t)cfg->batch_size, sizeof(*b.seqs));
    b.lens = llmb_xcalloc((size_t)cfg->batch_size * LLMB_PUSH_NFIELDS,
                          sizeof(*b.lens));
    llmb_buf_init(&b.vals);
    llmb_buf_init(&one);

    while ((len = getline(&line, &cap, in)) >= 0) {
        char q[LLMB_QUEUE_NAME_MAX + 1], *errstr = NULL;
        char minted[PUSH_ID_MAX];
        const char *queue;
        char *id;
        size_t seq;

        lineno++;
        if (blank(line, (size_t)len))
            continue;
        if (b.stopped && !cfg->journal) {
            /* a stream may not end: stop reading it */
            b.tally.unread_after = lineno - 1;
            break;
        }
        llmb_buf_reset(&one);
        if (llmb_job_fields_append(line, (size_t)len, &one, fields, q,
                                   &errstr) != 0) {
            rec_add(&b, lineno, NULL, queue_intern(&b, cfg->queue),
                    PUSH_ERROR, errstr);
            recs_say(&b);
            continue;
        }
        /* A document that names no queue goes to --queue: the server
         * takes the queue from the key it is pushed with. */
        queue = queue_intern(&b, q[0] != '\0' ? q : cfg->queue);
        if (fields[LLMB_PUSH_F_ID] == 0) {
            push_id_mint(&journal, lineno, minted);
            id = llmb_xstrdup(minted);
        } else {
            id = llmb_xstrndup(one.data, fields[LLMB_PUSH_F_ID]);
        }
        if (b.stopped) {
            rec_add(&b, lineno, id, queue, PUSH_UNKNOWN, NULL);
            recs_say(&b);
            continue;
        }
        seq = rec_add(&b, lineno, id, queue, PUSH_PENDING, NULL);
        if (b.queue != NULL && b.queue != queue)
            batch_flush(&b);
        if (b.queue != queue) {
            b.queue = queue;
            batch_register(&b, queue);
            batch_route(&b, queue);
        }
        if (fields[LLMB_PUSH_F_ID] == 0) {
            llmb_buf_append(&b.vals, id, strlen(id));
            fields[LLMB_PUSH_F_ID] = strlen(id);
        }
        llmb_buf_append(&b.vals, one.data, one.len);
        memcpy(b.lens + b.njobs * LLMB_PUSH_NFIELDS, fields, sizeof(fields));
        b.seqs[b.njobs++] = seq;
        if (b.njobs == (size_t)cfg->batch_size)
            batch_flush(&b);
    }
    if (ferror(in)) {
        char *m = llmb_xasprintf("reading %s: %s", name, strerror(errno));
        batch_stop(&b, m);
        free(m);
        b.tally.unread_after = lineno;
    }
    batch_flush(&b);
    while (b.count > 0 && !b.lost)
        batch_read_one(&b);
    while (b.count > 0) { /* the connection is gone: no answer will come */
        struct batch_call *c = &b.ring[b.head];
        size_t i;
        for (i = 0; i < c->n; i++)
            rec_settle(&b, c->seqs[i], PUSH_UNKNOWN, NULL, 0, NULL);
        free(c->seqs);
        b.head = (b.head + 1) % b.ring_cap;
        b.count--;
    }
    recs_say(&b);
    llmb_assert(b.rn == 0); /* every line was said */
    fflush(stdout);

    push_tally_report(&b.tally, false, push_journal_kept(&journal));
    if (b.tally.unknown > 0 || b.stopped)
        rc = EX_UNAVAILABLE;
    else
        rc = b.tally.rejected > 0 ? PUSH_EXIT_REJECTED : 0;
    push_journal_close(&journal, &b.tally);
    if (cfg->wait && b.confirmed_ids.n > 0) {
        /* a push error says more than how the pushed jobs ended */
        int wrc = push_wait_jobs(cfg, cl, &b.confirmed_ids,
                                 &b.confirmed_queues);
        if (rc == 0 || wrc == EX_UNAVAILABLE)
            rc = wrc;
    }

    push_tally_fini(&b.tally);
    llmb_strlist_clear(&b.confirmed_ids);
    llmb_strlist_clear(&b.confirmed_queues);
    free(b.recs);
    free(b.ring);
    free(b.seqs);
    free(b.lens);
    llmb_buf_fini(&b.vals);
    llmb_buf_fini(&one);
    free(line);
    llmb_strlist_clear(&b.queues);
    llmb_strlist_clear(&b.registered);
    if (in != stdin)
        fclose(in);
    return rc;
}
