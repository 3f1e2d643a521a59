/*
 * The pieces of lib/jobwait.c that llmb-push --wait and llmb sweep follow
 * jobs with, on handmade replies: a job's progress from its hash (and a
 * hash without state: the job is gone), the events of a stream entry by
 * entry with the position advanced past them, and the stream's position
 * before a push.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <llmb/err.h>
#include <llmb/jobwait.h>
#include <llmb/util.h>

#include "handmade.h"

#define S(s) str(REDIS_REPLY_STRING, (s))

static void test_progress_take(void **state)
{
    struct llmb_job_progress p;
    const char *argv[LLMB_JOB_PROGRESS_ARGC];
    redisReply *r;

    (void)state;
    llmb_job_progress_argv("llmb:{q}", "a", argv);
    assert_string_equal(argv[0], "FCALL_RO");
    assert_string_equal(argv[1], "llmb_job");
    assert_string_equal(argv[3], "llmb:{q}");
    assert_string_equal(argv[4], "a");
    assert_string_equal(argv[5], "state");
    assert_string_equal(argv[8], "aggregate");

    memset(&p, 0, sizeof(p));
    r = arr(4, S("running"), S("10"), S("4"), nil());
    assert_int_equal(llmb_job_progress_take(r, &p), 0);
    freeReplyObject(r);
    assert_string_equal(p.state, "running");
    assert_int_equal(p.tasks, 10);
    assert_int_equal(p.done, 6);
    assert_false(p.finished);
    assert_false(p.aggregated);

    r = arr(4, S("completed"), S("10"), S("0"), S("{}"));
    assert_int_equal(llmb_job_progress_take(r, &p), 0);
    freeReplyObject(r);
    assert_true(p.finished);
    assert_true(p.aggregated);
    assert_int_equal(p.done, 10);

    /* no state: the job is gone */
    r = arr(4, nil(), nil(), nil(), nil());
    assert_int_equal(llmb_job_progress_take(r, &p), LLMB_ENOTFOUND);
    freeReplyObject(r);
    r = str(REDIS_REPLY_ERROR, "WRONGTYPE");
    assert_int_equal(llmb_job_progress_take(r, &p), LLMB_ENOTFOUND);
    freeReplyObject(r);
}

/* One stream entry: id and its field/value pairs (n words). */
static redisReply *entry(const char *id, size_t n, ...)
{
    redisReply *f = llmb_xcalloc(1, sizeof(*f));
    va_list ap;

    f->type = REDIS_REPLY_ARRAY;
    f->elements = n;
    f->element = llmb_xcalloc(n + 1, sizeof(*f->element));
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        f->element[i] = S(va_arg(ap, const char *));
    va_end(ap);
    return arr(2, S(id), f);
}

/* What events_each() saw. */
struct seen {
    struct llmb_job_progress p;
    int n;
    char jobs[64];
};

static void collect(const struct llmb_job_event *e, void *arg)
{
    struct seen *s = arg;

    s->n++;
    if (e->job != NULL) {
        strcat(s->jobs, e->job);
        strcat(s->jobs, " ");
    }
    if (e->job != NULL && strcmp(e->job, "a") == 0)
        llmb_job_event_apply(e, &s->p);
}

static void test_events_each(void **state)
{
    struct seen s;
    char *mark = llmb_xstrdup("0-0");
    redisReply *r;

    (void)state;
    memset(&s, 0, sizeof(s));
    s.p.tasks = 3;
    /* XREAD of one stream: [[key, [entries...]]] */
    r = arr(1, arr(2, S("llmb:{q}:events"),
                   arr(4, entry("1-0", 6, "event", "progress", "job", "a",
                                "done", "2"),
                       entry("2-0", 4, "event", "progress", "job", "b"),
                       entry("3-0", 6, "event", "finished", "job", "a",
                             "state", "failed"),
                       entry("4-0", 4, "event", "aggregated", "job", "a"))));
    assert_int_equal(llmb_job_events_each(r, &mark, collect, &s), 4);
    freeReplyObject(r);
    assert_string_equal(mark, "4-0");
    assert_int_equal(s.n, 4);
    assert_string_equal(s.jobs, "a b a a ");
    assert_true(s.p.finished);
    assert_true(s.p.aggregated);
    assert_string_equal(s.p.state, "failed");
    assert_int_equal(s.p.done, 3);

    /* no news (XREAD timed out): nil; the position stays */
    r = nil();
    assert_int_equal(llmb_job_events_each(r, &mark, collect, &s), 0);
    freeReplyObject(r);
    assert_string_equal(mark, "4-0");
    free(mark);
}

static void test_mark_take(void **state)
{
    char *mark = NULL;
    redisReply *r;

    (void)state;
    r = arr(1, entry("17-3", 2, "event", "pushed"));
    assert_int_equal(llmb_job_mark_take(r, &mark), 0);
    freeReplyObject(r);
    assert_string_equal(mark, "17-3");
    free(mark);
    /* an empty or missing stream: from the start */
    r = arr(0);
    assert_int_equal(llmb_job_mark_take(r, &mark), 0);
    freeReplyObject(r);
    assert_string_equal(mark, "0-0");
    free(mark);
    mark = NULL;
    r = str(REDIS_REPLY_ERROR, "WRONGTYPE Operation against a key");
    assert_int_equal(llmb_job_mark_take(r, &mark), LLMB_EREDIS);
    freeReplyObject(r);
    assert_null(mark);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_take),
        cmocka_unit_test(test_events_each),
        cmocka_unit_test(test_mark_take),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
