/*
 * Following jobs to their end (llmb/jobwait.h): a job's progress read
 * with llmb_job or from its queue's event stream, and the wait for one
 * job that llmb-push --wait and llmb sweep share. The stream carries
 * `progress`, `finished` (for one job, or for several with `ids` and
 * `states`) and `aggregated` entries (docs/data-model.md); it is capped,
 * so the job is read again once per block in case an entry was trimmed
 * away before it was read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llmb/err.h>
#include <llmb/job.h>
#include <llmb/jobwait.h>
#include <llmb/keys.h>
#include <llmb/reply.h>
#include <llmb/util.h>

void llmb_job_progress_argv(const char *base, const char *id,
                            const char *argv[LLMB_JOB_PROGRESS_ARGC])
{
    argv[0] = "FCALL_RO";
    argv[1] = "llmb_job";
    argv[2] = "1";
    argv[3] = base;
    argv[4] = id;
    argv[5] = "state";
    argv[6] = "tasks";
    argv[7] = "left";
    argv[8] = "aggregate";
}

int llmb_job_progress_take(const redisReply *r, struct llmb_job_progress *p)
{
    long long v;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return LLMB_ENOTFOUND;
    snprintf(p->state, sizeof(p->state), "%s", r->element[0]->str);
    if (llmb_reply_ll(r->element[1], &v))
        p->tasks = v;
    if (llmb_reply_ll(r->element[2], &v))
        p->done = p->tasks - v;
    p->finished = llmb_job_ended(p->state, p->tasks - p->done);
    p->aggregated = r->element[3]->type == REDIS_REPLY_STRING;
    return 0;
}

static void event_parse(const redisReply *e, struct llmb_job_event *out)
{
    const redisReply *f;
    size_t k;

    memset(out, 0, sizeof(*out));
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    f = e->element[1];
    for (k = 0; k + 1 < f->elements; k += 2) {
        const char *name = f->element[k]->str;
        const char *val = f->element[k + 1]->str;
        if (name == NULL || val == NULL)
            continue;
        if (strcmp(name, "event") == 0)
            out->ev = val;
        else if (strcmp(name, "job") == 0)
            out->job = val;
        else if (strcmp(name, "done") == 0)
            out->done = val;
        else if (strcmp(name, "state") == 0)
            out->state = val;
        else if (strcmp(name, "ids") == 0)
            out->ids = val;
        else if (strcmp(name, "states") == 0)
            out->states = val;
    }
}

void llmb_job_event_apply(const struct llmb_job_event *e,
                          struct llmb_job_progress *p)
{
    if (strcmp(e->ev, "progress") == 0 && e->done != NULL)
        p->done = atoll(e->done);
    else if (strcmp(e->ev, "finished") == 0) {
        p->finished = true;
        p->done = p->tasks;
        if (e->state != NULL)
            snprintf(p->state, sizeof(p->state), "%s", e->state);
    } else if (strcmp(e->ev, "aggregated") == 0) {
        p->aggregated = true;
    }
}

/* The entries of an XREAD reply of one stream (NULL when none came), and
 * *mark advanced past them. */
static const redisReply *stream_entries(const redisReply *r, char **mark)
{
    const redisReply *entries, *last;

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_ARRAY ||
        r->element[0]->elements != 2 ||
        r->element[0]->element[1]->type != REDIS_REPLY_ARRAY ||
        r->element[0]->element[1]->elements == 0)
        return NULL;
    entries = r->element[0]->element[1];
    last = entries->element[entries->elements - 1];
    if (last->type == REDIS_REPLY_ARRAY && last->elements == 2 &&
        last->element[0]->type == REDIS_REPLY_STRING) {
        free(*mark);
        *mark = llmb_xstrdup(last->element[0]->str);
    }
    return entries;
}

size_t llmb_job_events_each(const redisReply *r, char **mark,
                            void (*fn)(const struct llmb_job_event *e,
                                       void *arg),
                            void *arg)
{
    const redisReply *entries = stream_entries(r, mark);
    size_t i;

    for (i = 0; entries != NULL && i < entries->elements; i++) {
        struct llmb_job_event e;

        event_parse(entries->element[i], &e);
        if (e.ev != NULL)
            fn(&e, arg);
    }
    return entries != NULL ? entries->elements : 0;
}

int llmb_job_mark_take(const redisReply *r, char **mark)
{
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements == 2 &&
        r->element[0]->element[0]->type == REDIS_REPLY_STRING) {
        *mark = llmb_xstrdup(r->element[0]->element[0]->str);
    } else if (r->type == REDIS_REPLY_ERROR) {
        return LLMB_EREDIS;
    } else {
        *mark = llmb_xstrdup("0-0");
    }
    return 0;
}

/* In a `finished` event for several jobs, `ids` and `states` list them
 * separated by spaces, in the same order. Copies the state of job id into
 * out (size n) and returns true when ids names it. */
static bool finished_in(const char *ids, const char *states, const char *id,
                        char *out, size_t n)
{
    size_t len = strlen(id), pos = 0;
    const char *p = ids;

    for (;;) {
        const char *end = strchr(p, ' ');
        size_t tok = end != NULL ? (size_t)(end - p) : strlen(p);
        if (tok == len && memcmp(p, id, len) == 0)
            break;
        if (end == NULL)
            return false;
        p = end + 1;
        pos++;
    }
    /* the pos-th word of states */
    for (p = states; p != NULL && pos > 0; pos--) {
        p = strchr(p, ' ');
        if (p != NULL)
            p++;
    }
    if (p != NULL && n > 0) {
        size_t tok = strcspn(p, " ");
        if (tok >= n)
            tok = n - 1;
        memcpy(out, p, tok);
        out[tok] = '\0';
    }
    return true;
}

/* One job being followed by llmb_job_wait(). */
struct single {
    const char *id;
    struct llmb_job_progress *p;
};

/* Applies event e when it concerns the job of arg (a struct single). */
static void single_apply(const struct llmb_job_event *e, void *arg)
{
    struct single *one = arg;
    struct llmb_job_progress *p = one->p;

    if (strcmp(e->ev, "finished") == 0 && e->ids != NULL &&
        e->states != NULL) {
        if (finished_in(e->ids, e->states, one->id, p->state,
                        sizeof(p->state))) {
            p->finished = true;
            p->done = p->tasks;
        }
    } else if (e->job != NULL && strcmp(e->job, one->id) == 0) {
        llmb_job_event_apply(e, p);
    }
}

/* A read answered "not yet" (llmb_reply_not_yet()): asked again later. */
#define NOT_YET 1

/* When r is an error reply to a read of key: NOT_YET for a server that
 * cannot serve yet (loading, a busy script, a failover), else
 * LLMB_EREDIS with a message naming both in *errstr; 0 for any other
 * reply. A follower that went on past an error would ask again at once,
 * forever, and never say why. */
static int read_error(const redisReply *r, const char *what, const char *key,
                      char **errstr)
{
    if (r->type != REDIS_REPLY_ERROR)
        return 0;
    if (llmb_reply_not_yet(r))
        return NOT_YET;
    *errstr = llmb_xasprintf("reading %s %s: %s", what, key, r->str);
    return LLMB_EREDIS;
}

/* Reads job id of the queue whose base key is base into *p (left as it
 * was when the server cannot serve yet). Returns 0, LLMB_EIO,
 * LLMB_ENOTFOUND or LLMB_EREDIS (with *errstr). */
static int progress_read(struct llmb_cluster *cl, const char *base,
                         const char *id, struct llmb_job_progress *p,
                         char **errstr)
{
    const char *argv[LLMB_JOB_PROGRESS_ARGC];
    redisReply *r;
    int rc;

    llmb_job_progress_argv(base, id, argv);
    r = llmb_cluster_command_argv(cl, base, LLMB_JOB_PROGRESS_ARGC, argv,
                                  NULL);
    if (r == NULL)
        return LLMB_EIO;
    rc = read_error(r, "job", id, errstr);
    if (rc == 0)
        rc = llmb_job_progress_take(r, p);
    else if (rc == NOT_YET)
        rc = 0;
    freeReplyObject(r);
    return rc;
}

/* Waits ms without asking: for a server that cannot serve yet. */
static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

int llmb_job_wait(struct llmb_cluster *cl, const char *prefix,
                  const char *queue, const char *id, char **mark,
                  const struct llmb_job_wait_opts *o,
                  struct llmb_job_progress *p, char **errstr)
{
    char *base = llmb_key_queue(prefix, queue);
    char *events = llmb_key_queue_sub(prefix, queue, "events");
    int64_t ended = 0, polled;
    bool reread = false;
    char block[24];
    int rc;

    memset(p, 0, sizeof(*p));
    snprintf(block, sizeof(block), "%d", o->block_ms);
    *errstr = NULL;
    rc = progress_read(cl, base, id, p, errstr);
    polled = llmb_mono_ms();
    while (rc == 0) {
        const char *argv[] = {"XREAD", "COUNT", "1000", "BLOCK", block,
                              "STREAMS", events, *mark};
        struct single one = {id, p};
        int64_t now = llmb_mono_ms();
        redisReply *r;

        if (p->finished && ended == 0)
            ended = now;
        if (p->finished && (p->aggregated || now - ended > o->grace_ms))
            break;
        if (o->tick != NULL && (rc = o->tick(p, o->arg)) != 0)
            break;
        r = llmb_cluster_command_argv(cl, events, 8, argv, NULL);
        if (r == NULL) {
            rc = LLMB_EIO;
            break;
        }
        rc = read_error(r, "events", events, errstr);
        if (rc == 0)
            llmb_job_events_each(r, mark, single_apply, &one);
        freeReplyObject(r);
        if (rc == NOT_YET) {
            rc = 0;
            pause_ms(o->block_ms); /* as a blocking read would have */
        }
        /* Not after every read: on a busy queue XREAD answers at once.
         * But once right after its `finished` event: a job of one task
         * whose result is {} has its aggregate at once, without a
         * coordinator (docs/coordinator.md). */
        if (rc == 0 && ((!p->finished &&
                         llmb_mono_ms() - polled >= o->block_ms) ||
                        (p->finished && !p->aggregated && !reread))) {
            reread = p->finished;
            rc = progress_read(cl, base, id, p, errstr);
            polled = llmb_mono_ms();
        }
    }
    free(base);
    free(events);
    return rc;
}
