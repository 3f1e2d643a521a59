/*
 * Pausing a queue, against a real redis-server: llmb_pause and
 * llmb_resume (lua/55-pause.lua). While paused, a claim hands out
 * nothing and pushes are still taken; resuming wakes idle workers and
 * claims hand out again. llmb_stats shows the flag, and both functions
 * refuse a paused key of the wrong type without writing.
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

#include "test_queue_support.h"

static long long fcall_int(const char *fn)
{
    redisReply *r = tq_fcall(fn, NULL);
    long long v;

    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    v = r->integer;
    freeReplyObject(r);
    return v;
}

static void test_pause_claim_resume(void **state)
{
    struct tq_task t[4];
    char *a, *b;

    (void)state;
    a = tq_push("{\"type\":\"t\",\"tasks\":2}");
    assert_int_equal(tq_stat("paused"), 0);
    assert_int_equal(fcall_int("llmb_pause"), 1);
    assert_int_equal(fcall_int("llmb_pause"), 0); /* already paused */
    assert_int_equal(tq_stat("paused"), 1);
    assert_int_equal(tq_cmd_int("EXISTS %s:paused", T.base), 1);
    /* nothing is handed out, and nothing is taken from the queue */
    assert_int_equal(tq_claim("w1", 4, "30000", t, NULL), 0);
    assert_int_equal(tq_stat("pending"), 2);
    tq_assert_job(a, "state", "pending");
    /* pushes are still accepted */
    b = tq_push("{\"type\":\"t\"}");
    assert_int_equal(tq_stat("pending"), 3);
    assert_int_equal(tq_claim("w1", 4, "30000", t, NULL), 0);

    freeReplyObject(tq_cmd("DEL %s:wake", T.base));
    assert_int_equal(fcall_int("llmb_resume"), 1);
    assert_int_equal(fcall_int("llmb_resume"), 0); /* not paused */
    assert_int_equal(tq_stat("paused"), 0);
    /* idle workers blocked on the wake list are told */
    assert_true(tq_cmd_int("LLEN %s:wake", T.base) > 0);
    assert_int_equal(tq_claim("w1", 4, "30000", t, NULL), 3);
    assert_int_equal(tq_stat("pending"), 0);
    free(a);
    free(b);
}

static void test_pause_events(void **state)
{
    redisReply *r;

    (void)state;
    assert_int_equal(fcall_int("llmb_pause"), 1);
    assert_int_equal(fcall_int("llmb_resume"), 1);
    assert_int_equal(fcall_int("llmb_resume"), 0); /* no event */
    r = tq_cmd("XRANGE %s:events - +", T.base);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    assert_string_equal(r->element[0]->element[1]->element[1]->str, "paused");
    assert_string_equal(r->element[1]->element[1]->element[1]->str,
                        "resumed");
    freeReplyObject(r);
}

/* Resuming an empty queue wakes nobody: there is nothing to claim. */
static void test_resume_empty_queue(void **state)
{
    (void)state;
    assert_int_equal(fcall_int("llmb_pause"), 1);
    assert_int_equal(fcall_int("llmb_resume"), 1);
    assert_int_equal(tq_cmd_int("LLEN %s:wake", T.base), 0);
}

/* Resuming a queue whose only tasks are delayed wakes idle workers too: a
 * claim while paused told them of no due time, and a task that came due
 * during the pause waits for a claim to promote it. */
static void test_resume_wakes_for_delayed(void **state)
{
    struct tq_task t[1];
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"delay_s\":0.001}");
    assert_int_equal(fcall_int("llmb_pause"), 1);
    tq_sleep_ms(5);
    assert_int_equal(tq_claim("w1", 1, "30000", t, NULL), 0);
    assert_int_equal(tq_zcard("pd"), 1);
    assert_int_equal(tq_waiting(), 0);
    freeReplyObject(tq_cmd("DEL %s:wake", T.base));
    assert_int_equal(fcall_int("llmb_resume"), 1);
    assert_true(tq_cmd_int("LLEN %s:wake", T.base) > 0);
    assert_int_equal(tq_claim("w1", 1, "30000", t, NULL), 1);
    assert_string_equal(t[0].id, id);
    free(id);
}

/* A paused key written by something else is refused before any write. */
static void test_pause_wrong_type(void **state)
{
    redisReply *r;

    (void)state;
    freeReplyObject(tq_cmd("RPUSH %s:paused x", T.base));
    r = tq_fcall("llmb_pause", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, ":paused\" is a list"));
    freeReplyObject(r);
    r = tq_fcall("llmb_resume", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    assert_int_equal(tq_cmd_int("LLEN %s:paused", T.base), 1);
    assert_int_equal(tq_cmd_int("EXISTS %s:events", T.base), 0);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, tq_each_setup, tq_each_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T_(test_pause_claim_resume),
        T_(test_pause_events),
        T_(test_resume_empty_queue),
        T_(test_resume_wakes_for_delayed),
        T_(test_pause_wrong_type),
    };
    return cmocka_run_group_tests(tests, tq_setup, tq_teardown);
}
