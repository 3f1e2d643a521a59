/*
 * Reading a job, against a real redis-server: llmb_job (lua/15-job.lua),
 * the read-only function every reader asks. Its view is the job's own
 * fields and the task fields of its first 100 tasks, `page <from>` the
 * task fields of the next 100, and named fields answer as HMGET of the
 * job hash does: checked here against where the job is stored (its
 * record in <base>:jd, its hash, the leases of its running tasks), for a
 * fan-out job with claimed, completed and failed tasks on both sides of a
 * page. What a push does not store (the id, the queue, options at their
 * default) the view fills in, for a job that exists only, and so the
 * result {} of a completed task, which is stored as no field.
 * A job that is not there, an id no job can have, the bounds (1 to 1000
 * fields, a page from 0) and a job hash of another type are checked too.
 *
 * One of the tests of the function library (lua/), each with its own key
 * prefix (test_queue_support.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include <llmb/util.h>

#include "test_queue_support.h"

#define VIEW_PAGE 100
#define READ_MAX 1000

/* FCALL_RO llmb_job 1 <base> args... (argc values). Never NULL. */
static redisReply *job_call(int argc, const char **args)
{
    const char **argv = llmb_xcalloc((size_t)argc + 4, sizeof(*argv));
    redisReply *r;

    argv[0] = "FCALL_RO";
    argv[1] = "llmb_job";
    argv[2] = "1";
    argv[3] = T.base;
    for (int i = 0; i < argc; i++)
        argv[4 + i] = args[i];
    r = redisCommandArgv(T.c, argc + 4, argv, NULL);
    free(argv);
    assert_non_null(r);
    return r;
}

/* The task index of a task field "<i>:<name>", or -1 for a job field. */
static long long field_task(const char *f)
{
    char *end;
    long long i = strtoll(f, &end, 10);

    return end != f && *end == ':' ? i : -1;
}

/* Whether pairs reply r holds field f with value v, once. */
static int pairs_count(const redisReply *r, const char *f, const char *v)
{
    int n = 0;

    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (strcmp(r->element[i]->str, f) == 0 &&
            strcmp(r->element[i + 1]->str, v) == 0)
            n++;
    return n;
}

/* The job fields a push leaves out at their default, and their value
 * (`left`, absent while no task ended, is `tasks`: only a job of one task
 * leaves both out). */
static const char *const filled[][2] = {
    {"priority", "0"}, {"timeout_s", "600"}, {"max_retries", "3"},
    {"backoff_ms", "1000"}, {"tasks", "1"}, {"left", "1"},
};
#define NFILLED (sizeof(filled) / sizeof(*filled))

/* The options of a record's opts (docs/data-model.md): letter, field
 * and the default the view fills in (NULL: none, the field is absent). */
static const char *const opt_letters[][3] = {
    {"p", "priority", "0"}, {"n", "tasks", "1"}, {"t", "timeout_s", "600"},
    {"r", "max_retries", "3"}, {"b", "backoff_ms", "1000"},
    {"d", "deadline_ms", NULL}, {"y", "delay_s", NULL},
};

/* Whether pairs reply h holds field f. */
static int has_field(const redisReply *h, const char *f)
{
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (strcmp(h->element[i]->str, f) == 0)
            return 1;
    return 0;
}

/* What a job's view must hold: field/value pairs, each field once. */
struct want {
    char *f[2048];
    char *v[2048];
    size_t n;
};

/* Field f is to be v; a field wanted twice must be wanted the same. */
static void want_add(struct want *w, const char *f, const char *v)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->f[i], f) == 0) {
            if (strcmp(w->v[i], v) != 0)
                fail_msg("field %s stored as \"%s\" and as \"%s\"", f,
                         w->v[i], v);
            return;
        }
    assert_true(w->n < 2048);
    w->f[w->n] = llmb_xstrdup(f);
    w->v[w->n] = llmb_xstrdup(v);
    w->n++;
}

/* Field f is to be v, whatever was wanted before. */
static void want_set(struct want *w, const char *f, const char *v)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->f[i], f) == 0) {
            free(w->v[i]);
            w->v[i] = llmb_xstrdup(v);
            return;
        }
    want_add(w, f, v);
}

static const char *want_get(const struct want *w, const char *f)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->f[i], f) == 0)
            return w->v[i];
    return NULL;
}

/* The parts of job id's record in <base>:jd, "<s><created ms>\t<type>\t
 * <opts>\t<payload>" (caller frees *rec; the parts point into it). */
static void record_parts(const char *id, char **rec, char **created,
                         char **type, char **opts, char **payload)
{
    redisReply *r = tq_cmd("HGET %s:jd %s", T.base, id);
    char *t1, *t2, *t3;

    assert_int_equal(r->type, REDIS_REPLY_STRING);
    *rec = llmb_xstrdup(r->str);
    freeReplyObject(r);
    assert_true((*rec)[0] == 'p' || (*rec)[0] == 'x');
    t1 = strchr(*rec, '\t');
    assert_non_null(t1);
    t2 = strchr(t1 + 1, '\t');
    assert_non_null(t2);
    t3 = strchr(t2 + 1, '\t');
    assert_non_null(t3);
    *t1 = *t2 = *t3 = '\0';
    *created = *rec + 1;
    *type = t1 + 1;
    *opts = t2 + 1;
    *payload = t3 + 1;
}

/* Option `letter` of record opts o (a letter and a number each), or NULL
 * when it is at its default. Caller frees. */
static char *opt_of(const char *o, const char *letter)
{
    for (const char *p = o; *p; p++) {
        if (*p == letter[0]) {
            size_t n = strspn(p + 1, "-0123456789.e");
            char *v = llmb_xcalloc(n + 1, 1);
            memcpy(v, p + 1, n);
            return v;
        }
    }
    return NULL;
}

/* The fields job id's view from task `from` must hold, made from where
 * the job is stored: with_job, its own fields (its id, queue "q", the
 * record's type, payload, created ms and options, each option the record
 * leaves out at its default, `state` when its hash holds none, and every
 * job field of its hash); the task fields its hash holds of the tasks of
 * the page, the result {} of each completed task that has no result
 * field and the attempt 1 of one that has no attempt field; and for each
 * task of the page that runs, its state, worker (of its batch's lease)
 * and attempt (of <base>:att). */
static void view_wanted(const char *id, int with_job, long long from,
                        const char *state, struct want *w)
{
    redisReply *h = tq_cmd("HGETALL %s:j:%s", T.base, id);
    redisReply *run = tq_cmd("HGETALL %s:run", T.base);
    char *rec, *created, *type, *opts, *payload, *tasks_s;
    long long tasks;

    record_parts(id, &rec, &created, &type, &opts, &payload);
    tasks_s = opt_of(opts, "n");
    tasks = tasks_s ? atoll(tasks_s) : 1;
    free(tasks_s);
    w->n = 0;
    if (with_job) {
        want_add(w, "id", id);
        want_add(w, "queue", "q");
        want_add(w, "type", type);
        want_add(w, "payload", payload);
        want_add(w, "created_ms", created);
        for (size_t i = 0; i < sizeof(opt_letters) / sizeof(*opt_letters);
             i++) {
            char *v = opt_of(opts, opt_letters[i][0]);
            if (v != NULL)
                want_add(w, opt_letters[i][1], v);
            else if (opt_letters[i][2] != NULL)
                want_add(w, opt_letters[i][1], opt_letters[i][2]);
            free(v);
        }
    }
    for (size_t i = 0; i < h->elements; i += 2) {
        const char *f = h->element[i]->str;
        long long t = field_task(f);
        int in = t < 0 ? with_job : t >= from && t < from + VIEW_PAGE;
        if (in)
            want_add(w, f, h->element[i + 1]->str);
    }
    if (with_job) {
        if (want_get(w, "state") == NULL)
            want_add(w, "state", state);
        assert_string_equal(want_get(w, "state"), state);
        if (want_get(w, "left") == NULL)
            want_add(w, "left", want_get(w, "tasks"));
    }
    for (long long t = from; t < from + VIEW_PAGE && t < tasks; t++) {
        char sf[32], rf[32], af[32], wf[32], m[200];
        const char *st;
        snprintf(sf, sizeof(sf), "%lld:state", t);
        snprintf(rf, sizeof(rf), "%lld:result", t);
        snprintf(af, sizeof(af), "%lld:attempt", t);
        snprintf(wf, sizeof(wf), "%lld:worker", t);
        if (tasks == 1)
            snprintf(m, sizeof(m), "%s", id);
        else
            snprintf(m, sizeof(m), "%s:%lld", id, t);
        for (size_t i = 0; i + 1 < run->elements; i += 2) {
            if (strcmp(run->element[i]->str, m) != 0)
                continue;
            redisReply *l = tq_cmd("HGET %s:lease %s", T.base,
                                   run->element[i + 1]->str);
            redisReply *a = tq_cmd("HGET %s:att %s", T.base, m);
            char worker[64], att[32];
            assert_int_equal(l->type, REDIS_REPLY_STRING);
            assert_int_equal(sscanf(l->str, "%63s", worker), 1);
            snprintf(att, sizeof(att), "%lld",
                     (a->type == REDIS_REPLY_STRING ? atoll(a->str) : 0) + 1);
            want_set(w, sf, "running");
            want_set(w, wf, worker);
            want_set(w, af, att);
            freeReplyObject(l);
            freeReplyObject(a);
        }
        st = want_get(w, sf);
        if (st != NULL && strcmp(st, "completed") == 0) {
            if (want_get(w, rf) == NULL)
                want_add(w, rf, "{}");
            if (want_get(w, af) == NULL)
                want_add(w, af, "1");
        }
    }
    free(rec);
    freeReplyObject(run);
    freeReplyObject(h);
}

static void want_free(struct want *w)
{
    for (size_t i = 0; i < w->n; i++) {
        free(w->f[i]);
        free(w->v[i]);
    }
    w->n = 0;
}

/* Pairs reply v, job id's view from task `from` (with_job: with the
 * job's own fields, the job being in `state`), holds what is stored of
 * the job (view_wanted) once each, and nothing else. */
static void assert_view(const char *id, const redisReply *v, int with_job,
                        long long from, const char *state)
{
    static struct want w;

    view_wanted(id, with_job, from, state, &w);
    assert_int_equal(v->type, REDIS_REPLY_ARRAY);
    assert_int_equal(v->elements % 2, 0);
    if (with_job) {
        assert_int_equal(pairs_count(v, "id", id), 1);
        assert_int_equal(pairs_count(v, "queue", "q"), 1);
    }
    for (size_t i = 0; i < w.n; i++)
        if (pairs_count(v, w.f[i], w.v[i]) != 1)
            fail_msg("field %s = \"%s\" of job %s not in the view once",
                     w.f[i], w.v[i], id);
    assert_int_equal(v->elements, 2 * w.n);
    want_free(&w);
}

/* A job of 150 tasks: tasks 0, 120 and 149 completed (result "{"r":i}"),
 * task 1 failed for good (2), the others running. */
static char *fanout_job(void)
{
    struct tq_task t[200];
    char *id = tq_push("{\"type\":\"t\",\"tasks\":150,\"max_retries\":0}");
    int n = tq_claim("w1", 150, "30000", t, NULL);

    assert_int_equal(n, 150);
    for (int i = 0; i < n; i++) {
        char res[32];
        snprintf(res, sizeof(res), "{\"r\":%lld}", t[i].idx);
        if (t[i].idx == 0 || t[i].idx == 120 || t[i].idx == 149)
            assert_int_equal(tq_complete("w1", &t[i], res), 1);
        else if (t[i].idx == 1)
            assert_int_equal(tq_fail("w1", &t[i], "error", "boom"), 2);
    }
    return id;
}

static void test_view_is_the_job(void **state)
{
    char *id = fanout_job();
    const char *args[3] = {id, "page", "100"};
    redisReply *r;

    (void)state;
    r = job_call(1, args);
    assert_view(id, r, 1, 0, "running");
    /* the job's own fields come first, `id` leading */
    assert_string_equal(r->element[0]->str, "id");
    assert_string_equal(r->element[1]->str, id);
    assert_int_equal(pairs_count(r, "0:result", "{\"r\":0}"), 1);
    assert_int_equal(pairs_count(r, "1:state", "failed"), 1);
    assert_int_equal(pairs_count(r, "1:error", "boom"), 1);
    assert_int_equal(pairs_count(r, "120:result", "{\"r\":120}"), 0);
    freeReplyObject(r);

    r = job_call(3, args);
    assert_view(id, r, 0, 100, NULL);
    assert_int_equal(pairs_count(r, "120:result", "{\"r\":120}"), 1);
    assert_int_equal(pairs_count(r, "149:state", "completed"), 1);
    assert_int_equal(pairs_count(r, "state", "running"), 0);
    freeReplyObject(r);

    /* past the last task: nothing */
    args[2] = "150";
    r = job_call(3, args);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    free(id);
}

static void test_fields_as_hmget(void **state)
{
    char *id = fanout_job();
    const char *f[] = {id, "state", "tasks", "left", "0:result", "1:error",
                       "2:result", "149:state", "nope", "page", "aggregate"};
    int nf = (int)(sizeof(f) / sizeof(*f));
    redisReply *r, *h;

    (void)state;
    r = job_call(nf, f);
    h = tq_cmd("HMGET %s:j:%s state tasks left 0:result 1:error 2:result "
               "149:state nope page aggregate", T.base, id);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, (size_t)(nf - 1));
    assert_int_equal(h->elements, r->elements);
    for (size_t i = 0; i < r->elements; i++) {
        assert_int_equal(r->element[i]->type, h->element[i]->type);
        if (h->element[i]->type == REDIS_REPLY_STRING)
            assert_string_equal(r->element[i]->str, h->element[i]->str);
    }
    assert_string_equal(r->element[0]->str, "running");
    assert_string_equal(r->element[3]->str, "{\"r\":0}");
    assert_int_equal(r->element[5]->type, REDIS_REPLY_NIL);
    freeReplyObject(h);
    freeReplyObject(r);
    free(id);
}

/* A push stores no id, no queue and no option at its default; the view
 * and named fields fill them in, and a stored option is answered as it
 * was pushed. */
static void test_defaults_filled(void **state)
{
    char *a = tq_push("{\"type\":\"t\"}");
    char *b = tq_push("{\"type\":\"t\",\"priority\":-2,"
                      "\"timeout_s\":2.5,\"max_retries\":0,"
                      "\"backoff_ms\":7}");
    const char *args[] = {a, "backoff_ms", "id", "queue", "timeout_s",
                          "priority", "max_retries", "type"};
    const char *want_b[] = {"7", NULL, "q", "2.5", "-2", "0", "t"};
    redisReply *r;

    (void)state;
    /* a job of one task: its record, no hash; the record holds no option
     * at its default, b's those it set */
    assert_int_equal(tq_cmd_int("EXISTS %s:j:%s", T.base, a), 0);
    {
        char *rec, *created, *type, *opts, *payload;
        record_parts(a, &rec, &created, &type, &opts, &payload);
        assert_string_equal(opts, "");
        assert_string_equal(type, "t");
        assert_string_equal(payload, "{}");
        free(rec);
        record_parts(b, &rec, &created, &type, &opts, &payload);
        assert_string_equal(opts, "p-2t2.5r0b7");
        free(rec);
    }
    r = job_call(1, args);
    assert_view(a, r, 1, 0, "pending");
    for (size_t i = 0; i < NFILLED; i++)
        assert_int_equal(pairs_count(r, filled[i][0], filled[i][1]), 1);
    freeReplyObject(r);
    tq_assert_job_defaults(a);
    /* named fields, the job's state not among them */
    r = job_call(8, args);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 7);
    assert_string_equal(r->element[0]->str, "1000");
    assert_string_equal(r->element[1]->str, a);
    assert_string_equal(r->element[2]->str, "q");
    assert_string_equal(r->element[3]->str, "600");
    assert_string_equal(r->element[4]->str, "0");
    assert_string_equal(r->element[5]->str, "3");
    assert_string_equal(r->element[6]->str, "t");
    freeReplyObject(r);
    args[0] = b;
    r = job_call(8, args);
    assert_int_equal(r->elements, 7);
    for (size_t i = 0; i < 7; i++)
        assert_string_equal(r->element[i]->str, want_b[i] ? want_b[i] : b);
    freeReplyObject(r);
    /* a job that is not there has none of them */
    args[0] = "gone";
    r = job_call(8, args);
    assert_int_equal(r->elements, 7);
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(r->element[i]->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    free(a);
    free(b);
}

/* The result {} of a completed task is stored as no field; the view, a
 * page and named fields answer it, for completed tasks only. */
/* A job of one task stores no `left` (it has no hash): until its end is
 * stored `left` reads as its `tasks`, also for a cancelled job whose task
 * still runs, which a retry refuses. */
static void test_left_absent(void **state)
{
    struct tq_task t[1];
    char *a = tq_push("{\"type\":\"t\"}");
    redisReply *r;

    (void)state;
    assert_int_equal(tq_cmd_int("EXISTS %s:j:%s", T.base, a), 0);
    tq_assert_job(a, "left", "1");
    assert_int_equal(tq_claim("w1", 1, "30000", t, NULL), 1);
    tq_assert_job(a, "left", "1");
    r = tq_fcall("llmb_cancel", a, NULL);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    tq_assert_job(a, "state", "cancelled");
    tq_assert_job(a, "left", "1"); /* its task has not stopped */
    r = tq_fcall("llmb_retry", a, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "still stopping"));
    freeReplyObject(r);
    /* the worker learns it and the task ends: left is stored, 0 */
    r = tq_fcall("llmb_heartbeat", "w1", "30000", t[0].ref, t[0].tok, NULL);
    freeReplyObject(r);
    {
        char *e = tq_job_end(a); /* its end: cancelled after it ran */
        assert_true(e[0] == 'x' && strstr(e, " w1") != NULL);
        free(e);
    }
    tq_assert_job(a, "left", "0");
    r = tq_fcall("llmb_retry", a, NULL);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    tq_assert_job(a, "left", "1");
    free(a);
}

static void test_empty_result(void **state)
{
    struct tq_task t[3];
    char *id = tq_push("{\"type\":\"t\",\"tasks\":3}");
    const char *args[] = {id, "0:result", "1:result", "2:result",
                          "3:result", "0:state"};
    const char *page[] = {id, "page", "0"};
    redisReply *r;

    (void)state;
    assert_int_equal(tq_claim("w1", 3, "30000", t, NULL), 3);
    assert_int_equal(t[0].idx, 0);
    assert_int_equal(tq_complete("w1", &t[0], "{}"), 1);
    assert_int_equal(tq_complete("w1", &t[1], "{\"a\":1}"), 1);
    assert_int_equal(tq_cmd_int("HEXISTS %s:j:%s 0:result", T.base, id), 0);
    assert_int_equal(tq_cmd_int("HEXISTS %s:j:%s 1:result", T.base, id), 1);
    r = job_call(6, args);
    assert_int_equal(r->elements, 5);
    assert_string_equal(r->element[0]->str, "{}");
    assert_string_equal(r->element[1]->str, "{\"a\":1}");
    assert_int_equal(r->element[2]->type, REDIS_REPLY_NIL); /* running */
    assert_int_equal(r->element[3]->type, REDIS_REPLY_NIL); /* no task */
    assert_string_equal(r->element[4]->str, "completed");
    freeReplyObject(r);
    r = job_call(1, args);
    assert_view(id, r, 1, 0, "running");
    freeReplyObject(r);
    r = job_call(3, page);
    assert_view(id, r, 0, 0, NULL);
    assert_int_equal(pairs_count(r, "0:result", "{}"), 1);
    assert_int_equal(has_field(r, "2:result"), 0);
    freeReplyObject(r);
    free(id);
}

static void test_no_such_job(void **state)
{
    const char *ids[] = {"gone", "a:b", "", "x{y}"};

    (void)state;
    freeReplyObject(tq_cmd("HSET %s:j:a:b state pending", T.base));
    for (size_t i = 0; i < sizeof(ids) / sizeof(*ids); i++) {
        const char *args[3] = {ids[i], "state", "0:state"};
        redisReply *r = job_call(1, args);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        assert_int_equal(r->elements, 0);
        freeReplyObject(r);
        r = job_call(3, args);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        assert_int_equal(r->elements, 2);
        assert_int_equal(r->element[0]->type, REDIS_REPLY_NIL);
        assert_int_equal(r->element[1]->type, REDIS_REPLY_NIL);
        freeReplyObject(r);
    }
}

static void test_bounds(void **state)
{
    char *id = tq_push("{\"type\":\"t\"}");
    const char **args = llmb_xcalloc(READ_MAX + 2, sizeof(*args));
    char **names = llmb_xcalloc(READ_MAX + 1, sizeof(*names));
    const char *bad_pages[] = {"-1", "x", "1.5", ""};
    redisReply *r;

    (void)state;
    args[0] = id;
    for (int i = 0; i <= READ_MAX; i++) {
        names[i] = llmb_xasprintf("%d:state", i);
        args[1 + i] = names[i];
    }
    args[1] = "state";
    /* one field and READ_MAX fields are answered, READ_MAX + 1 refused */
    r = job_call(2, args);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 1);
    assert_string_equal(r->element[0]->str, "pending");
    freeReplyObject(r);
    r = job_call(1 + READ_MAX, args);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, READ_MAX);
    assert_string_equal(r->element[0]->str, "pending");
    freeReplyObject(r);
    r = job_call(2 + READ_MAX, args);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "at most 1000 fields"));
    freeReplyObject(r);
    /* a page from 0 is the first; anything but a task index refused */
    args[1] = "page";
    args[2] = "0";
    r = job_call(3, args);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    for (size_t i = 0; i < sizeof(bad_pages) / sizeof(*bad_pages); i++) {
        args[2] = bad_pages[i];
        r = job_call(3, args);
        assert_int_equal(r->type, REDIS_REPLY_ERROR);
        assert_non_null(strstr(r->str, "page takes a task index"));
        freeReplyObject(r);
    }
    /* no id */
    r = job_call(0, args);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "usage: FCALL_RO llmb_job"));
    freeReplyObject(r);
    for (int i = 0; i <= READ_MAX; i++)
        free(names[i]);
    free(names);
    free(args);
    free(id);
}

static void test_wrong_type(void **state)
{
    const char *args[2] = {"w", "state"};
    redisReply *r;

    (void)state;
    /* job w's record, its hash a string */
    freeReplyObject(tq_cmd("HSET %s:jd w p1\tt\tn2\t{}", T.base));
    freeReplyObject(tq_cmd("SET %s:j:w x", T.base));
    r = job_call(1, args);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "WRONGTYPE"));
    freeReplyObject(r);
    r = job_call(2, args);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "WRONGTYPE"));
    freeReplyObject(r);
    /* the records' hash a string */
    freeReplyObject(tq_cmd("DEL %s:jd %s:j:w", T.base, T.base));
    freeReplyObject(tq_cmd("SET %s:jd x", T.base));
    for (int n = 1; n <= 2; n++) {
        r = job_call(n, args);
        assert_int_equal(r->type, REDIS_REPLY_ERROR);
        assert_non_null(strstr(r->str, "WRONGTYPE"));
        freeReplyObject(r);
    }
    /* it wrote nothing */
    assert_int_equal(tq_cmd_int("EXISTS %s:events %s:counts", T.base,
                                T.base), 0);
}

#define T_(f)                                                                 \
    cmocka_unit_test_setup_teardown(f, tq_each_setup, tq_each_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T_(test_view_is_the_job),
        T_(test_fields_as_hmget),
        T_(test_defaults_filled),
        T_(test_empty_result),
        T_(test_left_absent),
        T_(test_no_such_job),
        T_(test_bounds),
        T_(test_wrong_type),
    };
    return cmocka_run_group_tests(tests, tq_setup, tq_teardown);
}
