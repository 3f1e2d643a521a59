/*
 * --wait: follows one job, or (--batch) every job of the run, to its end
 * with bounded blocking reads of its queue's event stream (XREAD COUNT
 * BLOCK, no polling; a batch reads the stream of each of its queues), and
 * re-reads the job hashes at most once a second in case the capped stream
 * dropped an event before it was read. It prints the final jobs with
 * their aggregates as JSON: one indented document for one
 * job, one compact line per job for a batch. That JSON is all stdout
 * holds when it is not a terminal or with --json; the tables for people
 * (summary.c) go to stdout only when it is a terminal, else to stderr.
 * Progress goes to stderr: a bar on a terminal, else a plain line at most
 * every PLAIN_MS. One job's stream position is taken before the push; a
 * batch's after it, and then every hash is read once: what happened
 * before the position is in the hashes, what happens after in the stream.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sysexits.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include <llmb/job.h>
#include <llmb/jobfields.h>
#include <llmb/keys.h>
#include <llmb/util.h>

#include "push.h"

/* How long to wait for the aggregate once the job has ended. */
#define AGGREGATE_GRACE_MS 5000
/* The longest blocking read of a stream, and how often the job hashes are
 * read again at most, in case the capped stream lost an event. */
#define BLOCK_MS 1000
/* Without a terminal, a progress line at most this often. */
#define PLAIN_MS 5000
/* --batch: the jobs whose hashes are read per pipeline. */
#define POLL_CHUNK 1000

struct wait_state {
    long long done, tasks;
    char state[16];
    int finished, aggregated;
};

int push_wait_mark(const struct push_config *cfg, struct llmb_conn *conn,
                   const char *queue, char **mark)
{
    char *events = llmb_key_queue_sub(cfg->common.prefix, queue, "events");
    redisReply *r = llmb_conn_command(conn, "XREVRANGE %s + - COUNT 1", events);
    int rc = 0;

    free(events);
    if (r == NULL) {
        fprintf(stderr, "llmb-push: %s\n", llmb_conn_errstr(conn));
        return EX_UNAVAILABLE;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements == 2)
        *mark = llmb_xstrdup(r->element[0]->element[0]->str);
    else if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "llmb-push: reading events: %s\n", r->str);
        rc = EX_SOFTWARE;
    } else
        *mark = llmb_xstrdup("0-0");
    freeReplyObject(r);
    return rc;
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

/* The read job_poll() and followed_poll() make of job id of the queue
 * whose base key is base (the function llmb_job): the fields in the order
 * state_apply() takes them. */
#define JOB_ARGV(base, id)                                                   \
    {"FCALL_RO", "llmb_job", "1", (base), (id), "state", "tasks", "left",     \
     "aggregate"}
#define JOB_ARGC 9

/* Takes the reply of JOB_ARGV into *w. Returns 0, or -1 when the reply
 * has no state: the job is gone (purged, expired). */
static int state_apply(const redisReply *r, struct wait_state *w)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return -1;
    snprintf(w->state, sizeof(w->state), "%s", r->element[0]->str);
    if (r->element[1]->type == REDIS_REPLY_STRING)
        w->tasks = atoll(r->element[1]->str);
    if (r->element[2]->type == REDIS_REPLY_STRING)
        w->done = w->tasks - atoll(r->element[2]->str);
    w->finished = llmb_job_ended(w->state, w->tasks - w->done);
    w->aggregated = r->element[3]->type == REDIS_REPLY_STRING;
    return 0;
}

/* Reads the job: state, tasks, counts. Returns 0 or an exit code
 * (EX_SOFTWARE: the job is gone). */
static int job_poll(struct llmb_conn *conn, const char *base, const char *id,
                    struct wait_state *w)
{
    const char *argv[] = JOB_ARGV(base, id);
    redisReply *r = llmb_conn_commandargv(conn, JOB_ARGC, argv, NULL);
    int rc;

    if (r == NULL)
        return EX_UNAVAILABLE;
    rc = state_apply(r, w) == 0 ? 0 : EX_SOFTWARE;
    freeReplyObject(r);
    return rc;
}

/* In a `finished` event for several jobs, `ids` and `states` list them
 * separated by spaces, in the same order. Copies the state of job id into
 * out (size n) and returns 1 when ids names it; else returns 0. */
static int finished_in(const char *ids, const char *states, const char *id,
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
            return 0;
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
    return 1;
}

/* The fields of one events stream entry that --wait reads (the others
 * stay NULL); they point into the reply. */
struct event {
    const char *ev, *job, *done, *state, *ids, *states;
};

static void event_parse(const redisReply *e, struct event *out)
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

/* Applies event e, which names the job of w in its field `job`. */
static void event_apply(const struct event *e, struct wait_state *w)
{
    if (strcmp(e->ev, "progress") == 0 && e->done != NULL)
        w->done = atoll(e->done);
    else if (strcmp(e->ev, "finished") == 0) {
        w->finished = 1;
        w->done = w->tasks;
        if (e->state != NULL)
            snprintf(w->state, sizeof(w->state), "%s", e->state);
    } else if (strcmp(e->ev, "aggregated") == 0) {
        w->aggregated = 1;
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

/* Calls fn(e, arg) for every entry of an XREAD reply of one stream, with
 * *mark advanced past them. Returns the number of entries. */
static size_t events_each(const redisReply *r, char **mark,
                          void (*fn)(const struct event *e, void *arg),
                          void *arg)
{
    const redisReply *entries = stream_entries(r, mark);
    size_t i;

    for (i = 0; entries != NULL && i < entries->elements; i++) {
        struct event e;

        event_parse(entries->element[i], &e);
        if (e.ev != NULL)
            fn(&e, arg);
    }
    return entries != NULL ? entries->elements : 0;
}

/* One job being followed by push_wait(). */
struct single {
    const char *id;
    struct wait_state *w;
};

/* Applies event e when it concerns the job of arg (a struct single). */
static void single_apply(const struct event *e, void *arg)
{
    struct single *one = arg;
    struct wait_state *w = one->w;

    if (strcmp(e->ev, "finished") == 0 && e->ids != NULL &&
        e->states != NULL) {
        if (finished_in(e->ids, e->states, one->id, w->state,
                        sizeof(w->state))) {
            w->finished = 1;
            w->done = w->tasks;
        }
    } else if (e->job != NULL && strcmp(e->job, one->id) == 0) {
        event_apply(e, w);
    }
}

/* The job's own fields (not its task fields), read with llmb_job, as
 * one new JSON object: numeric fields as numbers, the payload and
 * aggregate as the JSON they hold. NULL when the read failed (the job
 * is gone: an empty object). */
static json_t *job_json(struct llmb_conn *conn, const char *base,
                        const char *id)
{
    redisReply *r = llmb_job_fields_read(conn, base, id);
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

/* Prints the job as one indented JSON document on stdout, then, unless
 * --json, the LLM benchmark summary when the job has one (summary.c) to
 * table_out(). Returns 0 or an exit code. */
static int job_print(const struct push_config *cfg, struct llmb_conn *conn,
                     const char *base, const char *id)
{
    json_t *out = job_json(conn, base, id);
    FILE *tables = table_out(cfg);
    char *text;

    if (out == NULL)
        return EX_UNAVAILABLE;
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

int push_wait(const struct push_config *cfg, struct llmb_conn *conn,
              const char *queue, const char *id, char *mark)
{
    char *base = llmb_key_queue(cfg->common.prefix, queue);
    char *events = llmb_key_queue_sub(cfg->common.prefix, queue, "events");
    struct progress p;
    int64_t started = llmb_mono_ms(), ended = 0, polled;
    /* within --redis-timeout-ms, or the block itself would time out */
    int block_ms = cfg->redis_timeout_ms >= 2 * BLOCK_MS
                       ? BLOCK_MS : (int)(cfg->redis_timeout_ms / 2);
    struct wait_state w;
    int rc;

    memset(&w, 0, sizeof(w));
    progress_init(&p, cfg);
    rc = job_poll(conn, base, id, &w);
    polled = llmb_mono_ms();
    while (rc == 0) {
        redisReply *r;
        int64_t now = llmb_mono_ms();

        if (w.finished && ended == 0)
            ended = now;
        if (w.finished && (w.aggregated || now - ended > AGGREGATE_GRACE_MS))
            break;
        if (cfg->wait_timeout > 0 && now - started > cfg->wait_timeout * 1000) {
            rc = PUSH_EXIT_TIMEOUT;
            break;
        }
        progress_show(&p, w.done, w.tasks, 0, 1, 0);
        r = llmb_conn_command(conn, "XREAD COUNT 1000 BLOCK %d STREAMS %s %s",
                              block_ms, events, mark);
        if (r == NULL) {
            rc = EX_UNAVAILABLE;
            break;
        }
        if (r->type == REDIS_REPLY_ARRAY) {
            struct single one = {id, &w};
            events_each(r, &mark, single_apply, &one);
        }
        freeReplyObject(r);
        /* The stream is capped: re-read the hash every BLOCK_MS, so an
         * event trimmed away before it was read cannot stall the wait
         * (not after every read: on a busy queue XREAD answers at once). */
        if (!w.finished && llmb_mono_ms() - polled >= BLOCK_MS) {
            rc = job_poll(conn, base, id, &w);
            polled = llmb_mono_ms();
        }
    }
    progress_show(&p, w.done, w.tasks, 0, 1, 1);
    progress_end(&p);
    if (rc == EX_UNAVAILABLE)
        fprintf(stderr, "llmb-push: %s\n", llmb_conn_errstr(conn));
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
        int prc = job_print(cfg, conn, base, id);
        if (rc == 0)
            rc = prc != 0 ? prc
                          : strcmp(w.state, "completed") == 0 ? 0
                                                              : PUSH_EXIT_FAILED;
    }
    free(mark);
    free(base);
    free(events);
    return rc;
}

/* One job of a batch being followed. */
struct followed {
    char *base;       /* its queue's base key */
    const char *id;   /* a string of the caller's ids */
    size_t stream;    /* its queue's entry of the streams */
    struct wait_state w;
    int64_t ended;    /* mono ms it was seen ended, 0 before */
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
};

/* True when nothing more is awaited of job f at time now. */
static int followed_over(const struct followed *f, int64_t now)
{
    return f->w.finished &&
           (f->w.aggregated || now - f->ended > AGGREGATE_GRACE_MS);
}

/* Notes the time job f was first seen ended. */
static void followed_seen(struct followed *f, int64_t now)
{
    if (f->w.finished && f->ended == 0)
        f->ended = now;
}

/* Reads the jobs not over yet, POLL_CHUNK per pipeline.
 * Returns 0 or EX_UNAVAILABLE. */
static int followed_poll(struct llmb_conn *conn, struct followed *v, size_t n)
{
    int64_t now = llmb_mono_ms();
    size_t i = 0;

    while (i < n) {
        size_t sent[POLL_CHUNK], ns = 0, k;

        for (; i < n && ns < POLL_CHUNK; i++) {
            const char *argv[] = JOB_ARGV(v[i].base, v[i].id);
            if (followed_over(&v[i], now))
                continue;
            if (llmb_conn_append_argv(conn, JOB_ARGC, argv, NULL) != 0)
                return EX_UNAVAILABLE;
            sent[ns++] = i;
        }
        for (k = 0; k < ns; k++) {
            redisReply *r = llmb_conn_get_reply(conn);
            struct followed *f = &v[sent[k]];
            if (r == NULL)
                return EX_UNAVAILABLE;
            if (state_apply(r, &f->w) != 0) {
                /* gone (purged, expired): nothing more will come */
                snprintf(f->w.state, sizeof(f->w.state), "gone");
                f->w.finished = f->w.aggregated = 1;
            }
            followed_seen(f, now);
            freeReplyObject(r);
        }
    }
    return 0;
}

/* The jobs by_id_cmp() compares, for qsort(), which takes no context. */
static const struct followed *sort_base;

static int by_id_cmp(const void *a, const void *b)
{
    return strcmp(sort_base[*(const size_t *)a].id,
                  sort_base[*(const size_t *)b].id);
}

/* Calls fn on every followed job named id (a batch may name a job twice:
 * the second push returned the first). len is id's length: ids of a
 * `finished` event are words of a longer string. */
static void follow_each(struct follow *fl, const char *id, size_t len,
                        const struct event *e, const char *state, size_t slen)
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
        if (state != NULL) {  /* one job of a `finished` event for many */
            f->w.finished = 1;
            f->w.done = f->w.tasks;
            if (slen >= sizeof(f->w.state))
                slen = sizeof(f->w.state) - 1;
            memcpy(f->w.state, state, slen);
            f->w.state[slen] = '\0';
        } else {
            event_apply(e, &f->w);
        }
        followed_seen(f, llmb_mono_ms());
    }
}

/* Applies event e to the jobs of arg (a struct follow) that it names. */
static void follow_event(const struct event *e, void *arg)
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
 * COUNT bounds each read. Returns 0 or EX_UNAVAILABLE. */
#define EVENTS_COUNT 1000
#define MULTI_BLOCK_MS 250
static int follow_read(struct llmb_conn *conn, struct follow *fl, int block_ms)
{
    size_t sent[64], ns = 0, k, got = 0, open = 0, first = SIZE_MAX, i = 0;
    char count[24], block[24];

    snprintf(count, sizeof(count), "%d", EVENTS_COUNT);
    while (i < fl->ns) {
        ns = 0;
        for (; i < fl->ns && ns < sizeof(sent) / sizeof(*sent); i++) {
            const char *argv[] = {"XREAD", "COUNT", count, "STREAMS",
                                  fl->s[i].key, fl->s[i].mark};
            if (fl->s[i].open == 0)
                continue;
            if (first == SIZE_MAX)
                first = i;
            open++;
            if (llmb_conn_append_argv(conn, 6, argv, NULL) != 0)
                return EX_UNAVAILABLE;
            sent[ns++] = i;
        }
        for (k = 0; k < ns; k++) {
            redisReply *r = llmb_conn_get_reply(conn);
            if (r == NULL)
                return EX_UNAVAILABLE;
            got += events_each(r, &fl->s[sent[k]].mark, follow_event, fl);
            freeReplyObject(r);
        }
    }
    if (got == 0 && first != SIZE_MAX) {
        const char *argv[] = {"XREAD", "COUNT", count, "BLOCK", block,
                              "STREAMS", fl->s[first].key,
                              fl->s[first].mark};
        redisReply *r;

        snprintf(block, sizeof(block), "%d",
                 open > 1 && block_ms > MULTI_BLOCK_MS ? MULTI_BLOCK_MS
                                                       : block_ms);
        r = llmb_conn_commandargv(conn, 8, argv, NULL);
        if (r == NULL)
            return EX_UNAVAILABLE;
        events_each(r, &fl->s[first].mark, follow_event, fl);
        freeReplyObject(r);
    }
    return 0;
}

/* Builds fl for the jobs ids of queues (the streams in order of first
 * use) and takes each stream's position. Returns 0 or an exit code. */
static int follow_init(struct follow *fl, const struct push_config *cfg,
                       struct llmb_conn *conn,
                       const struct llmb_strlist *ids,
                       const struct llmb_strlist *queues)
{
    size_t i, k;
    int rc;

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
        rc = push_wait_mark(cfg, conn, q, &fl->s[k].mark);
        if (rc != 0)
            return rc;
    }
    return 0;
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

int push_wait_jobs(const struct push_config *cfg, struct llmb_conn *conn,
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
    /* The streams' positions first, then the hashes: what happened before
     * the positions is in the hashes, what happens after in the streams. */
    rc = follow_init(&fl, cfg, conn, ids, queues);
    v = fl.v;
    if (rc != 0) /* said */
        goto out;
    rc = followed_poll(conn, v, ids->n);
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
        rc = follow_read(conn, &fl, block_ms);
        /* The streams are capped: re-read the hashes of the jobs not over
         * every BLOCK_MS, so an event trimmed away before it was read
         * cannot stall the wait. */
        if (rc == 0 && llmb_mono_ms() - polled >= BLOCK_MS) {
            rc = followed_poll(conn, v, ids->n);
            polled = llmb_mono_ms();
        }
    }
    progress_end(&p);
    if (rc == EX_UNAVAILABLE) {
        fprintf(stderr, "llmb-push: %s\n", llmb_conn_errstr(conn));
        goto out;
    }
    /* stdout: one line per job, in input order */
    for (i = 0; i < ids->n; i++) {
        json_t *job = job_json(conn, v[i].base, v[i].id);
        char *text;

        if (job == NULL) {
            fprintf(stderr, "llmb-push: %s\n", llmb_conn_errstr(conn));
            rc = EX_UNAVAILABLE;
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
