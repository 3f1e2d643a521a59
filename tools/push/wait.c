/*
 * --wait: follows one job, or (--batch) every job of the run, to its end
 * with bounded blocking reads of its queue's event stream (XREAD COUNT
 * BLOCK, no polling; a batch reads the stream of each of its queues), and
 * re-reads the jobs (llmb_job) at most once a second in case the capped
 * stream dropped an event before it was read. One job is followed by
 * llmb_job_wait() (lib/jobwait.c, shared with llmb sweep); a batch here,
 * with the same pieces. It prints the final jobs with
 * their aggregates as JSON: one indented document for one
 * job, one compact line per job for a batch. That JSON is all stdout
 * holds when it is not a terminal or with --json; the tables for people
 * (summary.c) go to stdout only when it is a terminal, else to stderr.
 * Progress goes to stderr: a bar on a terminal, else a plain line at most
 * every PLAIN_MS. One job's stream position is taken before the push; a
 * batch's after it, and then every job is read once: what happened
 * before the position is in the jobs, what happens after in the stream.
 * A batch's reads go through the router (lib/cluster.c): on a Redis
 * Cluster each to the primary of its queue's slot, pipelined per primary
 * (reads_run()).
 */
#include <math.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include <llmb/err.h>
#include <llmb/job.h>
#include <llmb/jobfields.h>
#include <llmb/jobwait.h>
#include <llmb/keys.h>
#include <llmb/reply.h>
#include <llmb/util.h>

#include "push.h"

/* How long to wait for the aggregate once the job has ended. */
#define AGGREGATE_GRACE_MS 5000
/* The longest blocking read of a stream, and how often the jobs are read
 * again at most, in case the capped stream lost an event. */
#define BLOCK_MS 1000
/* Without a terminal, a progress line at most this often. */
#define PLAIN_MS 5000
/* --batch: the jobs read per pipeline. */
#define POLL_CHUNK 1000

/* llmb_job_mark_take() with llmb-push's message and exit code: 0, or
 * EX_SOFTWARE for an error reply (said). */
static int mark_take(const redisReply *r, char **mark)
{
    if (llmb_job_mark_take(r, mark) == 0)
        return 0;
    fprintf(stderr, "llmb-push: reading events: %s\n", r->str);
    return EX_SOFTWARE;
}

/* When r is an error reply to the read of key (what it holds): says so
 * and returns EX_SOFTWARE; else 0. Going on would ask again at once,
 * forever, and never say why. The error of a server that cannot serve
 * yet (llmb_reply_not_yet()) is not one: the caller asks again later. */
static int read_refused(const redisReply *r, const char *what,
                        const char *key)
{
    if (r->type != REDIS_REPLY_ERROR || llmb_reply_not_yet(r))
        return 0;
    fprintf(stderr, "llmb-push: reading %s %s: %s\n", what, key, r->str);
    return EX_SOFTWARE;
}

int push_wait_mark(const struct push_config *cfg, struct llmb_conn *conn,
                   const char *queue, char **mark)
{
    char *events = llmb_key_queue_sub(cfg->common.prefix, queue, "events");
    redisReply *r = llmb_conn_command(conn, "XREVRANGE %s + - COUNT 1", events);
    int rc;

    free(events);
    if (r == NULL) {
        fprintf(stderr, "llmb-push: %s\n", llmb_conn_errstr(conn));
        return EX_UNAVAILABLE;
    }
    rc = mark_take(r, mark);
    freeReplyObject(r);
    return rc;
}

/*
 * The reads of a batch's wait (a stream's position, its news, a job) each
 * name one key of one queue, so on a Redis Cluster each goes to the
 * primary of its queue's slot. None has more than READ_ARGC words.
 */
#define READ_ARGC LLMB_JOB_PROGRESS_ARGC
struct read {
    const char *argv[READ_ARGC];
    int argc;
    const char *key;  /* the key it is about: one of argv */
    redisReply *r;    /* its reply, once run; freed by reads_clear() */
};

/* Sends the reads of v (n of them) that go over connection c, starting
 * with v[first], in one pipeline, and reads their replies into them. A
 * read left without a reply (c cannot connect, or failed) or redirected
 * keeps r NULL for reads_run() to run again alone. done[i] is set for
 * each read of c. */
static void reads_pipeline(struct llmb_conn *c, struct llmb_conn **conns,
                           struct read *v, size_t n, size_t first,
                           bool *done)
{
    size_t *sent = llmb_xcalloc(n, sizeof(*sent)), ns = 0, i;
    bool failed = false;

    for (i = first; i < n; i++) {
        if (done[i] || conns[i] != c)
            continue;
        done[i] = true; /* sent, or left to reads_run() */
        if (failed)
            continue;
        if (llmb_conn_append_argv(c, v[i].argc, v[i].argv, NULL) != 0)
            failed = true; /* not connected, and connecting failed */
        else
            sent[ns++] = i;
    }
    for (i = 0; i < ns; i++) {
        redisReply *r = llmb_conn_get_reply(c);
        if (r == NULL)
            break; /* the replies still due are lost */
        if (llmb_reply_redirected(r))
            freeReplyObject(r);
        else
            v[sent[i]].r = r;
    }
    free(sent);
}

/* Runs the reads of v (n of them), filling each one's r: pipelined per
 * primary (on one server, one pipeline; on a cluster, the reads of each
 * primary's queues sent together, one primary after the other). A read
 * the pipeline left without an answer (its primary could not be reached,
 * the connection failed, MOVED, ASK, TRYAGAIN or CLUSTERDOWN: a slot
 * moving, a failover) is run again alone through the router, which
 * follows the redirection, or waits for the slot's new owner up to
 * --redis-timeout-ms. Returns 0, or EX_UNAVAILABLE (llmb_cluster_errstr()
 * says why). The caller frees the replies with reads_clear(). */
static int reads_run(struct llmb_cluster *cl, struct read *v, size_t n)
{
    struct llmb_conn **conns = llmb_xcalloc(n ? n : 1, sizeof(*conns));
    bool *done = llmb_xcalloc(n ? n : 1, sizeof(*done));
    struct llmb_conn **node = NULL;
    bool unmapped = false, *tried = NULL;
    size_t i, nn;
    int rc = 0;

    /* A slot without a known owner reads the map, which may replace
     * connections: read it now, before any connection is taken. */
    for (i = 0; i < n; i++)
        unmapped = unmapped || llmb_cluster_owner(cl, v[i].key) < 0;
    if (unmapped)
        llmb_cluster_refresh(cl);
    /* Each primary's connection asked for once: one that cannot be
     * reached costs one connect, not one per read. */
    nn = llmb_cluster_nnodes(cl);
    node = llmb_xcalloc(nn ? nn : 1, sizeof(*node));
    tried = llmb_xcalloc(nn ? nn : 1, sizeof(*tried));
    for (i = 0; i < n; i++) {
        int o = llmb_cluster_owner(cl, v[i].key);
        if (o < 0 || (size_t)o >= nn)
            continue;
        if (!tried[o]) {
            node[o] = llmb_cluster_conn_for_key(cl, v[i].key);
            tried[o] = true;
        }
        conns[i] = node[o];
    }
    free(node);
    free(tried);
    for (i = 0; i < n; i++)
        if (!done[i] && conns[i] != NULL)
            reads_pipeline(conns[i], conns, v, n, i, done);
    for (i = 0; i < n && rc == 0; i++) {
        if (v[i].r != NULL)
            continue;
        v[i].r = llmb_cluster_command_argv(cl, v[i].key, v[i].argc,
                                           v[i].argv, NULL);
        if (v[i].r == NULL)
            rc = EX_UNAVAILABLE;
    }
    free(done);
    free(conns);
    return rc;
}

/* Makes rd the read argv (argc words, at most READ_ARGC) about its word
 * keyarg. */
static void read_set(struct read *rd, int argc, const char *const *argv,
                     size_t keyarg)
{
    memcpy(rd->argv, argv, (size_t)argc * sizeof(*argv));
    rd->argc = argc;
    rd->key = argv[keyarg];
    rd->r = NULL;
}

static void reads_clear(struct read *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i].r != NULL)
            freeReplyObject(v[i].r);
        v[i].r = NULL;
    }
}

/* Where progress goes: nothing (--no-progress), a bar redrawn in place
 * on a terminal, or a plain line at most every PLAIN_MS. */
struct progress {
    enum { PROGRESS_NONE, PROGRESS_BAR, PROGRESS_PLAIN } mode;
    int64_t started, last;  /* mono ms: the wait began, a line was said */
    size_t drawn;           /* columns of the bar on the screen, 0: none */
};

static void progress_init(struct progress *p, const struct push_config *cfg)
{
    memset(p, 0, sizeof(*p));
    if (cfg->progress)
        p->mode = isatty(STDERR_FILENO) ? PROGRESS_BAR : PROGRESS_PLAIN;
    p->started = llmb_mono_ms();
}

/* The columns of the terminal on stderr, asked at every draw since it can
 * be resized; 80 when it does not say. */
static size_t term_cols(void)
{
    struct winsize ws;

    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/* Draws the bar: "\r[###...] 3/10 tasks  1/2 jobs  1.2s". The line must
 * stay shorter than the terminal, or it wraps and every redraw leaves a
 * line behind: the bar takes the room the counts leave (BAR_MAX at most,
 * none when fewer than BAR_MIN columns are left), the counts are cut
 * to the width, and blanks cover what a longer earlier draw left. */
#define BAR_MAX 40
#define BAR_MIN 10
static void bar_draw(struct progress *p, long long done, long long tasks,
                     long ended, long jobs, double secs)
{
    char counts[128], line[256];
    size_t cols = term_cols() - 1, room, fill, len, i;
    int n;

    n = snprintf(counts, sizeof(counts), "%lld/%lld tasks", done, tasks);
    if (jobs > 1)
        n += snprintf(counts + n, sizeof(counts) - (size_t)n,
                      "  %ld/%ld jobs", ended, jobs);
    snprintf(counts + n, sizeof(counts) - (size_t)n, "  %.1fs", secs);
    if (cols > sizeof(line) - 1)
        cols = sizeof(line) - 1;
    len = strlen(counts);
    room = cols > len + 3 ? cols - len - 3 : 0; /* "[", "] " */
    if (room > BAR_MAX)
        room = BAR_MAX;
    len = 0;
    if (room >= BAR_MIN) {
        fill = tasks > 0 ? (size_t)lround((double)done / (double)tasks *
                                          (double)room) : 0;
        line[len++] = '[';
        for (i = 0; i < room; i++)
            line[len++] = i < fill ? '#' : '.';
        line[len++] = ']';
        line[len++] = ' ';
    }
    for (i = 0; counts[i] != '\0' && len < cols; i++)
        line[len++] = counts[i];
    for (i = len; i < p->drawn && len < cols; i++)
        line[len++] = ' ';
    line[len] = '\0';
    fprintf(stderr, "\r%s", line);
    fflush(stderr);
    p->drawn = len > 0 ? len : 1;
}

/* Shows done of tasks ended, and with jobs > 1 ended of jobs; a plain
 * line only when PLAIN_MS passed since the last one, or with force. */
static void progress_show(struct progress *p, long long done, long long tasks,
                          long ended, long jobs, int force)
{
    int64_t now = llmb_mono_ms();
    double secs = (double)(now - p->started) / 1000.0;

    if (p->mode == PROGRESS_BAR) {
        bar_draw(p, done, tasks, ended, jobs, secs);
    } else if (p->mode == PROGRESS_PLAIN &&
               (force || p->last == 0 || now - p->last >= PLAIN_MS)) {
        fprintf(stderr, "llmb-push: %lld/%lld tasks ended", done, tasks);
        if (jobs > 1)
            fprintf(stderr, ", %ld/%ld jobs ended", ended, jobs);
        fprintf(stderr, ", %.1fs\n", secs);
        p->last = now;
    }
}

/* Ends the bar's line. */
static void progress_end(struct progress *p)
{
    if (p->drawn)
        fputc('\n', stderr);
    p->drawn = 0;
}

/* Where the tables for people go: stdout when it is a terminal, else
 * stderr (stdout holds only JSON); NULL with --json. */
static FILE *table_out(const struct push_config *cfg)
{
    if (cfg->json)
        return NULL;
    return isatty(STDOUT_FILENO) ? stdout : stderr;
}

/* The job's own fields (not its task fields) as one new JSON object
 * from r, the reply of a read of llmb_job_fields with llmb_job (freed
 * here): numeric fields as numbers, the payload and aggregate as
 * the JSON they hold. NULL when the read failed (the job is gone: an
 * empty object). */
static json_t *job_json_of(redisReply *r)
{
    json_t *out = json_object();
    size_t i;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (r != NULL)
            freeReplyObject(r);
        json_decref(out);
        return NULL;
    }
    for (i = 0; i < r->elements && i < llmb_job_nfields; i++) {
        const char *k = llmb_job_fields[i].name;
        const char *v = r->element[i]->str;
        json_t *jv = NULL;
        long long n;

        if (r->element[i]->type != REDIS_REPLY_STRING)
            continue;

        if (strcmp(k, "payload") == 0 || strcmp(k, "aggregate") == 0)
            jv = json_loads(v, JSON_DECODE_ANY, NULL);
        else if (strcmp(k, "id") != 0 && strcmp(k, "type") != 0 &&
                 llmb_parse_ll(v, -(1LL << 62), 1LL << 62, &n) == 0)
            jv = json_integer(n);
        else if (strcmp(k, "timeout_s") == 0 || strcmp(k, "delay_s") == 0)
            jv = json_real(atof(v));
        if (jv == NULL)
            jv = json_string(v);
        json_object_set_new(out, k, jv);
    }
    freeReplyObject(r);
    return out;
}

/* job_json_of() job id of the queue whose base key is base, read with
 * llmb_job through the router cl; NULL when the read failed, said on
 * stderr, with the exit code in *rc: EX_UNAVAILABLE (no answer) or
 * EX_SOFTWARE (an error reply). */
static json_t *job_json_routed(struct llmb_cluster *cl, const char *base,
                               const char *id, int *rc)
{
    struct llmb_strlist cmd = {0};
    redisReply *r;

    llmb_job_fields_cmd(&cmd, base, id);
    r = llmb_cluster_command_argv(cl, base, (int)cmd.n,
                                  (const char **)cmd.v, NULL);
    llmb_strlist_clear(&cmd);
    if (r == NULL) {
        fprintf(stderr, "llmb-push: %s\n", llmb_cluster_errstr(cl));
        *rc = EX_UNAVAILABLE;
        return NULL;
    }
    if ((*rc = read_refused(r, "job", id)) != 0 ||
        r->type != REDIS_REPLY_ARRAY) {
        if (*rc == 0) /* "not yet" at the very end: no job to show */
            fprintf(stderr, "llmb-push: reading job %s: %s\n", id, r->str);
        *rc = EX_SOFTWARE;
        freeReplyObject(r);
        return NULL;
    }
    return job_json_of(r);
}

/* Prints the job as one indented JSON document on stdout, then, unless
 * --json, the LLM benchmark summary when the job has one (summary.c) to
 * table_out(). Returns 0 or an exit code. */
static int job_print(const struct push_config *cfg, struct llmb_cluster *cl,
                     const char *base, const char *id)
{
    int rc = 0;
    json_t *out = job_json_routed(cl, base, id, &rc);
    FILE *tables = table_out(cfg);
    char *text;

    if (out == NULL)
        return rc; /* said */
    text = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS |
                              JSON_REAL_PRECISION(12));
    printf("%s\n", text);
    fflush(stdout);
    free(text);
    if (tables != NULL)
        push_summary_print(out, tables);
    json_decref(out);
    return 0;
}

/* What push_wait()'s tick needs: the progress shown, the time limit. */
struct wait_tick {
    const struct push_config *cfg;
    struct progress *p;
    int64_t started;
};

/* Before each read of push_wait(): shows the progress; ends the wait
 * with PUSH_EXIT_TIMEOUT once --wait-timeout has passed. */
static int wait_tick(const struct llmb_job_progress *w, void *arg)
{
    struct wait_tick *t = arg;

    if (t->cfg->wait_timeout > 0 &&
        llmb_mono_ms() - t->started > t->cfg->wait_timeout * 1000)
        return PUSH_EXIT_TIMEOUT;
    progress_show(t->p, w->done, w->tasks, 0, 1, 0);
    return 0;
}

int push_wait(const struct push_config *cfg, struct llmb_cluster *cl,
              const char *queue, const char *id, char *mark)
{
    char *base = llmb_key_queue(cfg->common.prefix, queue);
    struct progress p;
    struct wait_tick t = {cfg, &p, llmb_mono_ms()};
    struct llmb_job_wait_opts o;
    struct llmb_job_progress w;
    char *err = NULL;
    int rc;

    memset(&o, 0, sizeof(o));
    /* within --redis-timeout-ms, or the block itself would time out */
    o.block_ms = cfg->redis_timeout_ms >= 2 * BLOCK_MS
                     ? BLOCK_MS : (int)(cfg->redis_timeout_ms / 2);
    o.grace_ms = AGGREGATE_GRACE_MS;
    o.tick = wait_tick;
    o.arg = &t;
    progress_init(&p, cfg);
    rc = llmb_job_wait(cl, cfg->common.prefix, queue, id, &mark, &o, &w,
                       &err);
    progress_show(&p, w.done, w.tasks, 0, 1, 1);
    progress_end(&p);
    if (rc == LLMB_EREDIS) {
        fprintf(stderr, "llmb-push: %s\n", err);
        free(err);
        rc = EX_SOFTWARE;
        goto out;
    }
    if (rc == LLMB_EIO)
        rc = EX_UNAVAILABLE;
    else if (rc == LLMB_ENOTFOUND)
        rc = EX_SOFTWARE;
    if (rc == EX_UNAVAILABLE)
        fprintf(stderr, "llmb-push: %s\n", llmb_cluster_errstr(cl));
    else if (rc == PUSH_EXIT_TIMEOUT)
        fprintf(stderr, "llmb-push: job %s still %s after %llds\n", id,
                w.state, cfg->wait_timeout);
    else if (rc == EX_SOFTWARE)
        fprintf(stderr, "llmb-push: job %s is gone\n", id);
    else if (!w.aggregated)
        fprintf(stderr, "llmb-push: job %s ended %s but no aggregate arrived "
                        "in %ds; is llmb-coordinator running?\n", id, w.state,
                AGGREGATE_GRACE_MS / 1000);
    if (rc == 0 || rc == PUSH_EXIT_TIMEOUT) {
        int prc = job_print(cfg, cl, base, id);
        if (rc == 0)
            rc = prc != 0 ? prc
                          : strcmp(w.state, "completed") == 0 ? 0
                                                              : PUSH_EXIT_FAILED;
    }
out:
    free(mark);
    free(base);
    return rc;
}

/* One job of a batch being followed. */
struct followed {
    char *base;       /* its queue's base key */
    const char *id;   /* a string of the caller's ids */
    size_t stream;    /* its queue's entry of the streams */
    struct llmb_job_progress w;
    int64_t ended;    /* mono ms it was seen ended, 0 before */
    bool reread;      /* read again once seen ended */
    bool to_read;     /* to be read by the next followed_poll(only) */
};

/* The events stream of a queue of the batch. */
struct stream {
    char *key;
    char *mark;       /* the last entry read */
    size_t open;      /* jobs of the queue not over */
};

/* What a batch follows: the jobs, in input order; their queues' streams;
 * the jobs sorted by id, for the events to find theirs. */
struct follow {
    struct followed *v;
    size_t n;
    struct stream *s;
    size_t ns;
    size_t *by_id;    /* indexes of v, sorted by id */
    size_t reading;   /* the stream whose events are being applied */
};

/* True when nothing more is awaited of job f at time now. */
static int followed_over(const struct followed *f, int64_t now)
{
    return f->w.finished &&
           (f->w.aggregated || now - f->ended > AGGREGATE_GRACE_MS);
}

/* Marks to_read the jobs an event ended that were not read since (their
 * aggregate may be there at once); whether there are any. */
static bool rereads(struct followed *v, size_t n)
{
    bool any = false;

    for (size_t i = 0; i < n; i++) {
        if (v[i].w.finished && !v[i].w.aggregated && !v[i].reread) {
            v[i].reread = v[i].to_read = true;
            any = true;
        }
    }
    return any;
}

/* Notes the time job f was first seen ended. */
static void followed_seen(struct followed *f, int64_t now)
{
    if (f->w.finished && f->ended == 0)
        f->ended = now;
}

/* Reads the jobs not over yet (with `only`, those marked to_read alone),
 * POLL_CHUNK per round of reads_run(). Returns 0, EX_UNAVAILABLE or
 * EX_SOFTWARE (an error reply, said). */
static int followed_poll(struct llmb_cluster *cl, struct followed *v, size_t n,
                         bool only)
{
    int64_t now = llmb_mono_ms();
    struct read *rd = llmb_xcalloc(POLL_CHUNK, sizeof(*rd));
    size_t *sent = llmb_xcalloc(POLL_CHUNK, sizeof(*sent));
    size_t i = 0;
    int rc = 0;

    while (i < n && rc == 0) {
        size_t ns = 0, k;

        for (; i < n && ns < POLL_CHUNK; i++) {
            const char *argv[LLMB_JOB_PROGRESS_ARGC];
            if (followed_over(&v[i], now) || (only && !v[i].to_read))
                continue;
            v[i].to_read = false;
            llmb_job_progress_argv(v[i].base, v[i].id, argv);
            read_set(&rd[ns], LLMB_JOB_PROGRESS_ARGC, argv, 3);
            sent[ns++] = i;
        }
        rc = reads_run(cl, rd, ns);
        for (k = 0; k < ns && rc == 0; k++) {
            struct followed *f = &v[sent[k]];
            if ((rc = read_refused(rd[k].r, "job", f->id)) != 0)
                break;
            if (llmb_reply_not_yet(rd[k].r))
                continue; /* read again at the next poll */
            if (llmb_job_progress_take(rd[k].r, &f->w) != 0) {
                /* gone (purged, expired): nothing more will come */
                snprintf(f->w.state, sizeof(f->w.state), "gone");
                f->w.finished = f->w.aggregated = true;
            }
            followed_seen(f, now);
        }
        reads_clear(rd, ns);
    }
    free(sent);
    free(rd);
    return rc;
}

/* The jobs by_id_cmp() compares, for qsort(), which takes no context. */
static const struct followed *sort_base;

static int by_id_cmp(const void *a, const void *b)
{
    return strcmp(sort_base[*(const size_t *)a].id,
                  sort_base[*(const size_t *)b].id);
}

/* Applies an event of the stream being read (fl->reading) to every
 * followed job of its queue named id (a batch may name a job twice: the
 * second push returned the first; jobs of other queues may have the same
 * id). len is id's length: ids of a `finished` event are words of a
 * longer string. */
static void follow_each(struct follow *fl, const char *id, size_t len,
                        const struct llmb_job_event *e, const char *state, size_t slen)
{
    size_t lo = 0, hi = fl->n;

    /* the first index whose id is not below id */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *m = fl->v[fl->by_id[mid]].id;
        int c = strncmp(m, id, len);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < fl->n; lo++) {
        struct followed *f = &fl->v[fl->by_id[lo]];
        if (strncmp(f->id, id, len) != 0 || f->id[len] != '\0')
            break;
        if (f->stream != fl->reading)
            continue;
        if (state != NULL) {  /* one job of a `finished` event for many */
            f->w.finished = 1;
            f->w.done = f->w.tasks;
            if (slen >= sizeof(f->w.state))
                slen = sizeof(f->w.state) - 1;
            memcpy(f->w.state, state, slen);
            f->w.state[slen] = '\0';
        } else {
            llmb_job_event_apply(e, &f->w);
        }
        followed_seen(f, llmb_mono_ms());
    }
}

/* Applies event e to the jobs of arg (a struct follow) that it names. */
static void follow_event(const struct llmb_job_event *e, void *arg)
{
    struct follow *fl = arg;

    if (strcmp(e->ev, "finished") == 0 && e->ids != NULL &&
        e->states != NULL) {
        const char *id = e->ids, *state = e->states;
        while (*id != '\0' && *state != '\0') {
            size_t il = strcspn(id, " "), sl = strcspn(state, " ");
            follow_each(fl, id, il, e, state, sl);
            id += il + (id[il] == ' ');
            state += sl + (state[sl] == ' ');
        }
    } else if (e->job != NULL) {
        follow_each(fl, e->job, strlen(e->job), e, NULL, 0);
    }
}

/* One round of reading the streams of the queues that have jobs not
 * over: a read of each without blocking, pipelined (every XREAD names one
 * key, as Redis Cluster needs), and when none had news, a read that
 * blocks up to block_ms on the first of them (up to MULTI_BLOCK_MS when
 * other queues wait too, so that their news is not held back long).
 * COUNT bounds each read. Returns 0, EX_UNAVAILABLE or EX_SOFTWARE (an
 * error reply, said). */
#define EVENTS_COUNT 1000
#define MULTI_BLOCK_MS 250
static int follow_read(struct llmb_cluster *cl, struct follow *fl,
                       int block_ms)
{
    struct read rd[64];
    size_t sent[64], ns = 0, k, got = 0, open = 0, first = SIZE_MAX, i = 0;
    char count[24], block[24];
    int rc = 0;

    snprintf(count, sizeof(count), "%d", EVENTS_COUNT);
    while (i < fl->ns && rc == 0) {
        ns = 0;
        for (; i < fl->ns && ns < sizeof(sent) / sizeof(*sent); i++) {
            const char *argv[] = {"XREAD", "COUNT", count, "STREAMS",
                                  fl->s[i].key, fl->s[i].mark};
            if (fl->s[i].open == 0)
                continue;
            if (first == SIZE_MAX)
                first = i;
            open++;
            read_set(&rd[ns], 6, argv, 4);
            sent[ns++] = i;
        }
        rc = reads_run(cl, rd, ns);
        for (k = 0; k < ns && rc == 0; k++) {
            fl->reading = sent[k];
            rc = read_refused(rd[k].r, "events", fl->s[sent[k]].key);
            if (rc == 0)
                got += llmb_job_events_each(rd[k].r, &fl->s[sent[k]].mark,
                                            follow_event, fl);
        }
        reads_clear(rd, ns);
    }
    if (rc == 0 && got == 0 && first != SIZE_MAX) {
        const char *argv[] = {"XREAD", "COUNT", count, "BLOCK", block,
                              "STREAMS", fl->s[first].key,
                              fl->s[first].mark};
        redisReply *r;

        snprintf(block, sizeof(block), "%d",
                 open > 1 && block_ms > MULTI_BLOCK_MS ? MULTI_BLOCK_MS
                                                       : block_ms);
        r = llmb_cluster_command_argv(cl, fl->s[first].key, 8, argv, NULL);
        if (r == NULL)
            return EX_UNAVAILABLE;
        fl->reading = first;
        rc = read_refused(r, "events", fl->s[first].key);
        if (rc == 0 && llmb_reply_not_yet(r)) {
            /* not a busy loop: as long as the read would have blocked */
            struct timespec ts = {0, 0};
            ts.tv_sec = block_ms / 1000;
            ts.tv_nsec = (long)(block_ms % 1000) * 1000000L;
            nanosleep(&ts, NULL);
        } else if (rc == 0) {
            llmb_job_events_each(r, &fl->s[first].mark, follow_event, fl);
        }
        freeReplyObject(r);
    }
    return rc;
}

/* Builds fl for the jobs ids of queues (the streams in order of first
 * use) and takes each stream's position. Returns 0 or an exit code. */
static int follow_init(struct follow *fl, const struct push_config *cfg,
                       struct llmb_cluster *cl,
                       const struct llmb_strlist *ids,
                       const struct llmb_strlist *queues)
{
    struct read *rd;
    size_t i, k;
    int rc = 0;

    memset(fl, 0, sizeof(*fl));
    fl->n = ids->n;
    fl->v = llmb_xcalloc(ids->n ? ids->n : 1, sizeof(*fl->v));
    fl->by_id = llmb_xcalloc(ids->n ? ids->n : 1, sizeof(*fl->by_id));
    fl->s = llmb_xcalloc(queues->n ? queues->n : 1, sizeof(*fl->s));
    for (i = 0; i < ids->n; i++) {
        struct followed *f = &fl->v[i];

        f->base = llmb_key_queue(cfg->common.prefix, queues->v[i]);
        f->id = ids->v[i];
        for (k = 0; k < fl->ns; k++)
            if (strcmp(queues->v[i], queues->v[fl->s[k].open]) == 0)
                break;
        if (k == fl->ns) {
            /* open holds the first job's index until the marks are taken */
            fl->s[k].open = i;
            fl->ns++;
        }
        f->stream = k;
        fl->by_id[i] = i;
    }
    sort_base = fl->v;
    qsort(fl->by_id, fl->n, sizeof(*fl->by_id), by_id_cmp);
    for (k = 0; k < fl->ns; k++) {
        const char *q = queues->v[fl->s[k].open];
        fl->s[k].key = llmb_key_queue_sub(cfg->common.prefix, q, "events");
    }
    /* the positions, POLL_CHUNK streams per round of reads */
    rd = llmb_xcalloc(POLL_CHUNK, sizeof(*rd));
    for (k = 0; k < fl->ns && rc == 0; k += POLL_CHUNK) {
        size_t n = fl->ns - k < POLL_CHUNK ? fl->ns - k : POLL_CHUNK;
        for (i = 0; i < n; i++) {
            const char *argv[] = {"XREVRANGE", fl->s[k + i].key, "+", "-",
                                  "COUNT", "1"};
            read_set(&rd[i], 6, argv, 1);
        }
        rc = reads_run(cl, rd, n);
        if (rc == EX_UNAVAILABLE)
            fprintf(stderr, "llmb-push: %s\n", llmb_cluster_errstr(cl));
        for (i = 0; i < n && rc == 0; i++)
            rc = mark_take(rd[i].r, &fl->s[k + i].mark);
        reads_clear(rd, n);
    }
    free(rd);
    return rc;
}

static void follow_fini(struct follow *fl)
{
    size_t i;

    for (i = 0; i < fl->n; i++)
        free(fl->v[i].base);
    for (i = 0; i < fl->ns; i++) {
        free(fl->s[i].key);
        free(fl->s[i].mark);
    }
    free(fl->v);
    free(fl->s);
    free(fl->by_id);
}

int push_wait_jobs(const struct push_config *cfg, struct llmb_cluster *cl,
                   const struct llmb_strlist *ids,
                   const struct llmb_strlist *queues)
{
    struct follow fl;
    struct followed *v;
    struct push_job_row *rows = llmb_xcalloc(ids->n ? ids->n : 1,
                                             sizeof(*rows));
    struct progress p;
    FILE *tables = table_out(cfg);
    int64_t started = llmb_mono_ms(), polled;
    /* within --redis-timeout-ms, or the block itself would time out */
    int block_ms = cfg->redis_timeout_ms >= 2 * BLOCK_MS
                       ? BLOCK_MS : (int)(cfg->redis_timeout_ms / 2);
    long unaggregated = 0;
    size_t i;
    int rc = 0, failed = 0;

    progress_init(&p, cfg);
    /* The streams' positions first, then the jobs: what happened before
     * the positions is in the jobs, what happens after in the streams. */
    rc = follow_init(&fl, cfg, cl, ids, queues);
    v = fl.v;
    if (rc != 0) /* said */
        goto out;
    rc = followed_poll(cl, v, ids->n, false);
    polled = llmb_mono_ms();
    while (rc == 0) {
        long long done = 0, tasks = 0;
        long ended = 0, over = 0;
        int64_t now = llmb_mono_ms();

        for (i = 0; i < fl.ns; i++)
            fl.s[i].open = 0;
        for (i = 0; i < ids->n; i++) {
            int o = followed_over(&v[i], now);
            done += v[i].w.done;
            tasks += v[i].w.tasks;
            ended += v[i].w.finished;
            over += o;
            if (!o)
                fl.s[v[i].stream].open++;
        }
        progress_show(&p, done, tasks, ended, (long)ids->n,
                      (size_t)over == ids->n);
        if ((size_t)over == ids->n)
            break;
        if (cfg->wait_timeout > 0 && now - started > cfg->wait_timeout * 1000) {
            rc = PUSH_EXIT_TIMEOUT;
            break;
        }
        rc = follow_read(cl, &fl, block_ms);
        /* The streams are capped: re-read the jobs not over
         * every BLOCK_MS, so an event trimmed away before it was read
         * cannot stall the wait; and a job its `finished` event ended
         * at once, whose aggregate may be there already (a job of one
         * task whose result is {} needs no coordinator: docs/coordinator.md). */
        if (rc == 0 && llmb_mono_ms() - polled >= BLOCK_MS) {
            rc = followed_poll(cl, v, ids->n, false);
            polled = llmb_mono_ms();
        } else if (rc == 0 && rereads(v, ids->n)) {
            rc = followed_poll(cl, v, ids->n, true);
        }
    }
    progress_end(&p);
    if (rc == EX_UNAVAILABLE) {
        fprintf(stderr, "llmb-push: %s\n", llmb_cluster_errstr(cl));
        goto out;
    }
    if (rc == EX_SOFTWARE) /* said */
        goto out;
    /* stdout: one line per job, in input order */
    for (i = 0; i < ids->n; i++) {
        int jrc = 0;
        json_t *job = job_json_routed(cl, v[i].base, v[i].id, &jrc);
        char *text;

        if (job == NULL) {
            rc = jrc; /* said */
            goto out;
        }
        if (json_object_size(job) == 0) /* gone */
            json_object_set_new(job, "id", json_string(ids->v[i]));
        json_object_set_new(job, "queue", json_string(queues->v[i]));
        if (!json_is_string(json_object_get(job, "state")))
            json_object_set_new(job, "state", json_string(v[i].w.state));
        text = json_dumps(job, JSON_COMPACT | JSON_SORT_KEYS |
                                   JSON_REAL_PRECISION(12));
        printf("%s\n", text);
        free(text);
        push_job_row_fill(&rows[i], job);
        json_decref(job);
        if (strcmp(v[i].w.state, "completed") != 0)
            failed = 1;
        if (v[i].w.finished && !v[i].w.aggregated)
            unaggregated++;
    }
    fflush(stdout);
    if (tables != NULL)
        push_jobs_table_print(rows, ids->n, tables);
    if (unaggregated > 0)
        fprintf(stderr, "llmb-push: %ld jobs ended but no aggregate arrived "
                        "in %ds; is llmb-coordinator running?\n",
                unaggregated, AGGREGATE_GRACE_MS / 1000);
    if (rc == PUSH_EXIT_TIMEOUT) {
        long running = 0;
        for (i = 0; i < ids->n; i++)
            running += !v[i].w.finished;
        fprintf(stderr, "llmb-push: %ld of %zu jobs still not ended after "
                        "%llds\n", running, ids->n, cfg->wait_timeout);
    } else if (failed) {
        rc = PUSH_EXIT_FAILED;
    }
out:
    for (i = 0; i < ids->n; i++)
        push_job_row_fini(&rows[i]);
    follow_fini(&fl);
    free(rows);
    return rc;
}
