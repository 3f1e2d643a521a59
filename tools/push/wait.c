/*
 * --wait: follows one job to its end with blocking reads of its queue's
 * event stream (XREAD BLOCK, no polling), draws a progress bar on a
 * terminal, and prints the final job with its aggregate as JSON. The
 * stream position is taken before the push, so no event is missed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include <llmb/jobfields.h>
#include <llmb/keys.h>
#include <llmb/util.h>

#include "push.h"

/* How long to wait for the aggregate once the job has ended. */
#define AGGREGATE_GRACE_MS 5000
#define BLOCK_MS 1000

struct wait_state {
    long long done, tasks;
    char state[16];
    int finished, aggregated;
    int bar_drawn;
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

static void bar_draw(struct wait_state *w, int64_t started)
{
    char bar[41];
    double frac = w->tasks > 0 ? (double)w->done / (double)w->tasks : 0.0;
    int fill = (int)lround(frac * 40.0), i;

    for (i = 0; i < 40; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[40] = '\0';
    fprintf(stderr, "\r[%s] %lld/%lld tasks  %.1fs ", bar, w->done, w->tasks,
            (double)(llmb_mono_ms() - started) / 1000.0);
    w->bar_drawn = 1;
}

/* Reads the job hash: state, tasks, counts. Returns 0 or an exit code. */
static int job_poll(struct llmb_conn *conn, const char *jk,
                    struct wait_state *w)
{
    redisReply *r = llmb_conn_command(conn, "HMGET %s state tasks left "
                                            "aggregate", jk);
    int rc = 0;

    if (r == NULL)
        return EX_UNAVAILABLE;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
        r->element[0]->type != REDIS_REPLY_STRING) {
        rc = EX_SOFTWARE;
    } else {
        snprintf(w->state, sizeof(w->state), "%s", r->element[0]->str);
        if (r->element[1]->type == REDIS_REPLY_STRING)
            w->tasks = atoll(r->element[1]->str);
        if (r->element[2]->type == REDIS_REPLY_STRING)
            w->done = w->tasks - atoll(r->element[2]->str);
        w->finished = strcmp(w->state, "completed") == 0 ||
                      strcmp(w->state, "failed") == 0 ||
                      (strcmp(w->state, "cancelled") == 0 && w->done >= w->tasks);
        w->aggregated = r->element[3]->type == REDIS_REPLY_STRING;
    }
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

/* Applies the events of `reply` (an XREAD reply) that concern job id and
 * advances *mark past them. */
static void events_apply(redisReply *r, const char *id, char **mark,
                         struct wait_state *w)
{
    redisReply *entries;
    size_t i, k;

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->elements != 2)
        return;
    entries = r->element[0]->element[1];
    for (i = 0; i < entries->elements; i++) {
        redisReply *e = entries->element[i];
        redisReply *f = e->element[1];
        const char *ev = NULL, *job = NULL, *done = NULL, *state = NULL;
        const char *ids = NULL, *states = NULL;

        free(*mark);
        *mark = llmb_xstrdup(e->element[0]->str);
        for (k = 0; k + 1 < f->elements; k += 2) {
            const char *name = f->element[k]->str;
            const char *val = f->element[k + 1]->str;
            if (strcmp(name, "event") == 0)
                ev = val;
            else if (strcmp(name, "job") == 0)
                job = val;
            else if (strcmp(name, "done") == 0)
                done = val;
            else if (strcmp(name, "state") == 0)
                state = val;
            else if (strcmp(name, "ids") == 0)
                ids = val;
            else if (strcmp(name, "states") == 0)
                states = val;
        }
        if (ev != NULL && strcmp(ev, "finished") == 0 && ids != NULL) {
            if (finished_in(ids, states, id, w->state, sizeof(w->state))) {
                w->finished = 1;
                w->done = w->tasks;
            }
            continue;
        }
        if (ev == NULL || job == NULL || strcmp(job, id) != 0)
            continue;
        if (strcmp(ev, "progress") == 0 && done != NULL)
            w->done = atoll(done);
        else if (strcmp(ev, "finished") == 0) {
            w->finished = 1;
            w->done = w->tasks;
            if (state != NULL)
                snprintf(w->state, sizeof(w->state), "%s", state);
        } else if (strcmp(ev, "aggregated") == 0)
            w->aggregated = 1;
    }
}

/* Prints the job's own fields (not its task fields, which share the
 * hash) as one JSON object; numeric fields as numbers and
 * the payload and aggregate as the JSON they hold; then, with table, the
 * LLM benchmark summary when the job has one (summary.c). */
static int job_print(struct llmb_conn *conn, const char *jk, bool table)
{
    redisReply *r = llmb_job_fields_read(conn, jk);
    json_t *out = json_object();
    size_t i;
    char *text;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (r != NULL)
            freeReplyObject(r);
        json_decref(out);
        return EX_UNAVAILABLE;
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
    text = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS |
                              JSON_REAL_PRECISION(12));
    printf("%s\n", text);
    free(text);
    if (table)
        push_summary_print(out, stdout);
    json_decref(out);
    freeReplyObject(r);
    return 0;
}

int push_wait(const struct push_config *cfg, struct llmb_conn *conn,
              const char *queue, const char *id, char *mark)
{
    char *jk = llmb_key_queue_sub(cfg->common.prefix, queue, "j:");
    char *events = llmb_key_queue_sub(cfg->common.prefix, queue, "events");
    int tty = cfg->progress && isatty(STDERR_FILENO);
    int64_t started = llmb_mono_ms(), ended = 0;
    /* within --redis-timeout-ms, or the block itself would time out */
    int block_ms = cfg->redis_timeout_ms >= 2 * BLOCK_MS
                       ? BLOCK_MS : (int)(cfg->redis_timeout_ms / 2);
    struct wait_state w;
    int rc;

    memset(&w, 0, sizeof(w));
    {
        char *full = llmb_xasprintf("%s%s", jk, id);
        free(jk);
        jk = full;
    }
    rc = job_poll(conn, jk, &w);
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
        if (tty)
            bar_draw(&w, started);
        r = llmb_conn_command(conn, "XREAD COUNT 1000 BLOCK %d STREAMS %s %s",
                              block_ms, events, mark);
        if (r == NULL) {
            rc = EX_UNAVAILABLE;
            break;
        }
        if (r->type == REDIS_REPLY_ARRAY)
            events_apply(r, id, &mark, &w);
        freeReplyObject(r);
        /* The stream is capped: re-read the hash now and then, so an
         * event trimmed away before it was read cannot stall the wait. */
        if (!w.finished)
            rc = job_poll(conn, jk, &w);
    }
    if (tty && w.bar_drawn) {
        bar_draw(&w, started);
        fputc('\n', stderr);
    }
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
        int prc = job_print(conn, jk, !cfg->json);
        if (rc == 0)
            rc = prc != 0 ? prc
                          : strcmp(w.state, "completed") == 0 ? 0
                                                              : PUSH_EXIT_FAILED;
    }
    free(mark);
    free(jk);
    free(events);
    return rc;
}
