/*
 * Reading a job, against a real redis-server: llmb_job (lua/15-job.lua),
 * the read-only function every reader asks. Its view is the job's own
 * fields and the task fields of its first 100 tasks, `page <from>` the
 * task fields of the next 100, and named fields answer as HMGET of the
 * job hash does: checked here against the job hash itself, for a fan-out
 * job with claimed, completed and failed tasks on both sides of a page.
 * What a push does not store (the id, the queue, options at their
 * default) the view fills in, for a job that exists only, and so the
 * result {} of a completed task, which is stored as no field.
 * A job that is not there, an id no job can have, the bounds (1 to 1000
 * fields, a page from 0) and a job key of another type are checked too.
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

/* Whether pairs reply h holds field f. */
static int has_field(const redisReply *h, const char *f)
{
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (strcmp(h->element[i]->str, f) == 0)
            return 1;
    return 0;
}

/* The fields of HGETALL of job id's hash that a view from task `from`
 * holds (with_job: the job's own fields too, and those filled in: its id,
 * queue "q" and the options the hash lacks, at their default) are in
 * pairs reply v once each, with the result {} of each completed task that
 * has no result field, and v holds nothing else. */
static void assert_view(const char *id, const redisReply *v, int with_job,
                        long long from)
{
    redisReply *h = tq_cmd("HGETALL %s:j:%s", T.base, id);
    size_t want = 0;

    if (with_job) {
        assert_int_equal(pairs_count(v, "id", id), 1);
        assert_int_equal(pairs_count(v, "queue", "q"), 1);
        want += 4;
        for (size_t i = 0; i < NFILLED; i++) {
            if (tq_cmd_int("HEXISTS %s:j:%s %s", T.base, id,
                           filled[i][0]) == 1)
                continue;
            assert_int_equal(pairs_count(v, filled[i][0], filled[i][1]), 1);
            want += 2;
        }
    }

    assert_int_equal(v->type, REDIS_REPLY_ARRAY);
    assert_int_equal(v->elements % 2, 0);
    for (size_t i = 0; i < h->elements; i += 2) {
        const char *f = h->element[i]->str;
        long long t = field_task(f);
        int in = t < 0 ? with_job : t >= from && t < from + VIEW_PAGE;
        if (!in)
            continue;
        want += 2;
        if (pairs_count(v, f, h->element[i + 1]->str) != 1)
            fail_msg("field %s of job %s not in the view once", f, id);
        if (t >= 0 && strcmp(strchr(f, ':'), ":state") == 0 &&
            strcmp(h->element[i + 1]->str, "completed") == 0) {
            char *rf = llmb_xasprintf("%lld:result", t);
            if (!has_field(h, rf)) {
                assert_int_equal(pairs_count(v, rf, "{}"), 1);
                want += 2;
            }
            free(rf);
        }
    }
    assert_int_equal(v->elements, want);
    freeReplyObject(h);
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
    assert_view(id, r, 1, 0);
    /* the job's own fields come first, `id` leading */
    assert_string_equal(r->element[0]->str, "id");
    assert_string_equal(r->element[1]->str, id);
    assert_int_equal(pairs_count(r, "0:result", "{\"r\":0}"), 1);
    assert_int_equal(pairs_count(r, "1:state", "failed"), 1);
    assert_int_equal(pairs_count(r, "1:error", "boom"), 1);
    assert_int_equal(pairs_count(r, "120:result", "{\"r\":120}"), 0);
    freeReplyObject(r);

    r = job_call(3, args);
    assert_view(id, r, 0, 100);
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
    assert_int_equal(tq_cmd_int("HEXISTS %s:j:%s id", T.base, a), 0);
    assert_int_equal(tq_cmd_int("HEXISTS %s:j:%s queue", T.base, a), 0);
    for (size_t i = 0; i < NFILLED; i++)
        assert_int_equal(tq_cmd_int("HEXISTS %s:j:%s %s", T.base, a,
                                    filled[i][0]), 0);
    r = job_call(1, args);
    assert_view(a, r, 1, 0);
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
/* A job of one task stores `left` only once its task ends; until then
 * `left` reads as its `tasks`, also for a cancelled job whose task still
 * runs, which a retry refuses. */
static void test_left_absent(void **state)
{
    struct tq_task t[1];
    char *a = tq_push("{\"type\":\"t\"}");
    redisReply *r;

    (void)state;
    assert_int_equal(tq_cmd_int("HEXISTS %s:j:%s left", T.base, a), 0);
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
        char *sub = llmb_xasprintf("j:%s", a);
        tq_assert_hget(sub, "left", "0");
        free(sub);
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
    assert_view(id, r, 1, 0);
    freeReplyObject(r);
    r = job_call(3, page);
    assert_view(id, r, 0, 0);
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
    freeReplyObject(tq_cmd("SET %s:j:w x", T.base));
    r = job_call(1, args);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "WRONGTYPE"));
    freeReplyObject(r);
    r = job_call(2, args);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "WRONGTYPE"));
    freeReplyObject(r);
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
