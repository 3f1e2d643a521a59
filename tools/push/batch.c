/*
 * NDJSON batch push: reads job documents line by line, takes each apart
 * into the values of llmb_push_fields (lib/job.c checks what it can on the
 * way), groups consecutive lines of the same queue into calls of up to
 * --batch-size jobs and keeps up to --pipeline calls in flight, so 100,000
 * jobs take a few hundred round trips, not 100,000, and Redis parses no
 * JSON. Replies come back in order, so ids are printed in input order; a
 * rejected line is reported on stderr with its line number and the error
 * (ours or the server's), and the others go on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <hiredis/hiredis.h>

#include <llmb/job.h>
#include <llmb/keys.h>

#include "push.h"

/* One call in flight: an FCALL llmb_push_fields of n jobs, or (n == 0) the
 * SADD that registers a queue. */
struct batch_call {
    size_t n;
    long *lines; /* input line number of each document */
};

struct batch {
    const struct push_config *cfg;
    struct llmb_conn *conn;
    /* the call being filled */
    char *queue;               /* its queue; NULL when empty */
    size_t njobs;              /* its jobs */
    struct llmb_buf vals;      /* their values, back to back */
    size_t *lens;              /* LLMB_JOB_NFIELDS lengths per job */
    long *lines;               /* their line numbers */
    /* calls in flight, a ring of cfg->pipeline + 1 entries */
    struct batch_call *ring;
    size_t ring_cap, head, count;
    struct llmb_strlist known; /* queues registered in this run */
    long pushed, rejected;
    int failed;                /* connection lost: stop */
};

static void report(long line, const char *msg)
{
    if (strncmp(msg, "ERR ", 4) == 0)
        msg += 4;
    fprintf(stderr, "llmb-push: line %ld: %s\n", line, msg);
}

/* Reads the reply of the oldest call in flight. */
static void batch_read_one(struct batch *b)
{
    struct batch_call *c = &b->ring[b->head];
    redisReply *r = llmb_conn_get_reply(b->conn);
    size_t i;

    if (r == NULL) {
        if (!b->failed)
            fprintf(stderr, "llmb-push: %s\n", llmb_conn_errstr(b->conn));
        b->failed = 1;
    } else if (c->n == 0) {
        /* SADD: nothing to report unless it failed */
        if (r->type == REDIS_REPLY_ERROR)
            fprintf(stderr, "llmb-push: registering the queue: %s\n", r->str);
    } else if (r->type == REDIS_REPLY_STRING && c->n == 1) {
        printf("%.*s\n", (int)r->len, r->str);
        b->pushed++;
    } else if (r->type == REDIS_REPLY_ERROR && c->n == 1) {
        report(c->lines[0], r->str);
        b->rejected++;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == c->n) {
        for (i = 0; i < c->n; i++) {
            redisReply *e = r->element[i];
            if (e->type == REDIS_REPLY_STRING) {
                printf("%.*s\n", (int)e->len, e->str);
                b->pushed++;
            } else {
                report(c->lines[i], e->type == REDIS_REPLY_ERROR
                                        ? e->str : "unexpected reply");
                b->rejected++;
            }
        }
    } else {
        /* The whole call failed, e.g. the function library is missing. */
        for (i = 0; i < c->n; i++)
            report(c->lines[i], r->type == REDIS_REPLY_ERROR
                                    ? r->str : "unexpected reply");
        b->rejected += (long)c->n;
    }
    if (r != NULL)
        freeReplyObject(r);
    free(c->lines);
    c->lines = NULL;
    b->head = (b->head + 1) % b->ring_cap;
    b->count--;
}

/* Queues a call; reads replies first while the pipeline is full. */
static void batch_send(struct batch *b, int argc, const char **argv,
                       const size_t *argvlen, size_t n, long *lines)
{
    struct batch_call *c;

    while (b->count >= (size_t)b->cfg->pipeline && !b->failed)
        batch_read_one(b);
    if (b->failed ||
        llmb_conn_append_argv(b->conn, argc, argv, argvlen) != 0) {
        if (!b->failed)
            fprintf(stderr, "llmb-push: %s\n", llmb_conn_errstr(b->conn));
        b->failed = 1;
        free(lines);
        return;
    }
    c = &b->ring[(b->head + b->count) % b->ring_cap];
    c->n = n;
    c->lines = lines;
    b->count++;
}

/* Sends the call being filled, if any. */
static void batch_flush(struct batch *b)
{
    const char **argv;
    size_t *argvlen;
    char *base;
    size_t i, n = b->njobs * LLMB_JOB_NFIELDS, off = 0;

    if (n == 0)
        return;
    base = llmb_key_queue(b->cfg->common.prefix, b->queue);
    argv = llmb_xcalloc(n + 4, sizeof(*argv));
    argvlen = llmb_xcalloc(n + 4, sizeof(*argvlen));
    argv[0] = "FCALL";
    argv[1] = "llmb_push_fields";
    argv[2] = "1";
    argv[3] = base;
    for (i = 0; i < 4; i++)
        argvlen[i] = strlen(argv[i]);
    for (i = 0; i < n; i++) {
        argv[4 + i] = b->vals.data + off;
        argvlen[4 + i] = b->lens[i];
        off += b->lens[i];
    }
    batch_send(b, (int)(n + 4), argv, argvlen, b->njobs, b->lines);
    b->lines = llmb_xcalloc((size_t)b->cfg->batch_size, sizeof(long));
    b->njobs = 0;
    llmb_buf_reset(&b->vals);
    free(argvlen);
    free(argv);
    free(base);
}

/* Registers queue q in <prefix>:queues once per run. */
static void batch_register(struct batch *b, const char *q)
{
    const char *argv[3];
    char *key;
    size_t i;

    for (i = 0; i < b->known.n; i++)
        if (strcmp(b->known.v[i], q) == 0)
            return;
    llmb_strlist_push(&b->known, q);
    key = llmb_key_global(b->cfg->common.prefix, "queues");
    argv[0] = "SADD";
    argv[1] = key;
    argv[2] = q;
    batch_send(b, 3, argv, NULL, 0, NULL);
    free(key);
}

static int blank(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

int push_batch(const struct push_config *cfg, struct llmb_conn *conn,
               const char *path)
{
    struct batch b;
    FILE *in = stdin;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    size_t fields[LLMB_JOB_NFIELDS];
    struct llmb_buf one; /* the values of the line being read */
    long lineno = 0;
    int rc;

    if (path != NULL && strcmp(path, "-") != 0) {
        in = fopen(path, "r");
        if (in == NULL) {
            fprintf(stderr, "llmb-push: cannot open %s: %s\n", path,
                    strerror(errno));
            return EX_NOINPUT;
        }
    }
    memset(&b, 0, sizeof(b));
    b.cfg = cfg;
    b.conn = conn;
    b.ring_cap = (size_t)cfg->pipeline + 1;
    b.ring = llmb_xcalloc(b.ring_cap, sizeof(*b.ring));
    b.lines = llmb_xcalloc((size_t)cfg->batch_size, sizeof(long));
    b.lens = llmb_xcalloc((size_t)cfg->batch_size * LLMB_JOB_NFIELDS,
                          sizeof(*b.lens));
    llmb_buf_init(&b.vals);
    llmb_buf_init(&one);

    while (!b.failed && (len = getline(&line, &cap, in)) >= 0) {
        char q[LLMB_QUEUE_NAME_MAX + 1], *errstr = NULL;
        const char *queue;

        lineno++;
        if (blank(line, (size_t)len))
            continue;
        llmb_buf_reset(&one);
        if (llmb_job_fields_append(line, (size_t)len, &one, fields, q,
                                   &errstr) != 0) {
            report(lineno, errstr);
            b.rejected++;
            free(errstr);
            continue;
        }
        /* A document that names no queue goes to --queue: the server
         * takes the queue from the key it is pushed with. */
        queue = q[0] != '\0' ? q : cfg->queue;
        if (b.queue != NULL && strcmp(b.queue, queue) != 0)
            batch_flush(&b);
        if (b.queue == NULL || strcmp(b.queue, queue) != 0) {
            free(b.queue);
            b.queue = llmb_xstrdup(queue);
            batch_register(&b, queue);
        }
        llmb_buf_append(&b.vals, one.data, one.len);
        memcpy(b.lens + b.njobs * LLMB_JOB_NFIELDS, fields, sizeof(fields));
        b.lines[b.njobs++] = lineno;
        if (b.njobs == (size_t)cfg->batch_size)
            batch_flush(&b);
    }
    if (ferror(in) && !b.failed) {
        fprintf(stderr, "llmb-push: reading %s: %s\n",
                in == stdin ? "stdin" : path, strerror(errno));
        b.failed = 1;
    }
    batch_flush(&b);
    while (b.count > 0 && !b.failed)
        batch_read_one(&b);
    fflush(stdout);

    if (b.failed) {
        fprintf(stderr, "llmb-push: stopped: %ld jobs pushed, %ld rejected, "
                        "the rest not confirmed\n", b.pushed, b.rejected);
        rc = EX_UNAVAILABLE;
    } else {
        if (b.rejected > 0)
            fprintf(stderr, "llmb-push: %ld jobs pushed, %ld rejected\n",
                    b.pushed, b.rejected);
        rc = b.rejected > 0 ? PUSH_EXIT_REJECTED : 0;
    }
    while (b.count > 0) { /* after a failure: free what is left */
        free(b.ring[b.head].lines);
        b.head = (b.head + 1) % b.ring_cap;
        b.count--;
    }
    free(b.ring);
    free(b.lines);
    free(b.lens);
    llmb_buf_fini(&b.vals);
    llmb_buf_fini(&one);
    free(b.queue);
    free(line);
    llmb_strlist_clear(&b.known);
    if (in != stdin)
        fclose(in);
    return rc;
}
