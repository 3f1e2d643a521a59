/*
 * What a worker does with a lease, against a real redis-server:
 * llmb_heartbeat, llmb_complete, llmb_fail and llmb_release, the tokens
 * that fence them, failure kinds, backoff, results that are not objects,
 * and one call carrying many tasks of one job.
 *
 * One of the tests of the function library (lua/), through FCALL exactly
 * as workers, the coordinator and redis-cli users call it; each test
 * uses its own key prefix (test_queue_support.h).
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

/* One claim and one complete carry many tasks of one job, a task of
 * another job and a bad result: each job is counted right, its task
 * fields land in its job hash, and no other key is made for them. */
static void test_batch_of_many_tasks_per_job(void **state)
{
    static struct tq_task t[301];
    char *fan, *one;
    redisReply *r;
    int n, i, bad = -1;

    (void)state;
    fan = tq_push("{\"type\":\"t\",\"tasks\":300}");
    one = tq_push("{\"type\":\"t\"}");
    assert_int_equal(tq_claim("w1", 301, "30000", t, NULL), 301);
    for (i = 0; i < 301; i++) {
        if (strcmp(t[i].id, fan) == 0)
            assert_int_equal(t[i].attempt, 1);
        if (strcmp(t[i].id, fan) == 0 && t[i].idx == 7)
            bad = i;
    }
    assert_true(bad >= 0);
    tq_assert_job(fan, "state", "running");
    tq_assert_job(fan, "299:state", "running");
    tq_assert_job(fan, "299:worker", "w1");
    tq_assert_job(one, "0:attempt", "1");
    /* the first 150 in one call, the bad result among them */
    assert_true(bad < 150);
    r = tq_complete_batch(t, 150, bad, "[1]", "{\"ok\":1}");
    assert_int_equal(r->elements, 150);
    for (i = 0; i < 150; i++)
        assert_int_equal(r->element[i]->integer, i == bad ? -1 : 1);
    freeReplyObject(r);
    /* the bad one is retried: claim it again, then the rest in a call */
    tq_assert_job(fan, "7:state", "delayed");
    r = tq_complete_batch(t + 150, 151, -1, NULL, "{\"ok\":2}");
    assert_int_equal(r->elements, 151);
    freeReplyObject(r);
    tq_assert_job(one, "state", "completed");
    tq_assert_job(one, "0:result", "{\"ok\":2}");
    tq_assert_job(fan, "left", "1");
    tq_assert_job(fan, "state", "running");
    assert_int_equal(tq_cmd_int("ZADD %s:pd 0 %s:7", T.base, fan), 0);
    assert_int_equal(tq_claim("w1", 10, "30000", t, NULL), 1);
    assert_int_equal(t[0].attempt, 2);
    assert_int_equal(tq_complete("w1", &t[0], "{\"ok\":3}"), 1);
    tq_assert_job(fan, "state", "completed");
    tq_assert_job(fan, "ok", "300");
    tq_assert_job(fan, "left", "0");
    tq_assert_job(fan, "7:result", "{\"ok\":3}");
    tq_assert_job(fan, "7:attempt", "2");
    tq_assert_job(fan, "0:state", "completed");
    tq_assert_hget("counts", "ok", "301");
    assert_int_equal(tq_cmd_int("EXISTS %s:t:%s %s:t:%s", T.base, fan, T.base,
                             one), 0);
    /* a job of one task that ran once: its record and its end, no hash */
    assert_int_equal(tq_cmd_int("EXISTS %s:j:%s", T.base, one), 0);
    assert_true(tq_ended_ms(one) > 0);
    r = tq_cmd("XRANGE %s:events - +", T.base);
    n = 0;
    for (i = 0; i < (int)r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        if (strcmp(f->element[1]->str, "progress") == 0)
            n++;
    }
    freeReplyObject(r);
    /* a progress event per call that crossed a hundredth, none at the end */
    assert_int_equal(n, 2);
    free(fan);
    free(one);
}

static void test_stale_token_refused(void **state)
{
    struct tq_task t[1], again[1];
    struct tq_task forged;
    char *id;
    redisReply *r;

    (void)state;
    id = tq_push("{\"type\":\"t\"}");
    assert_int_equal(tq_claim("w1", 1, "100", t, NULL), 1);
    tq_sleep_ms(150);
    r = tq_fcall("llmb_reap", "100", NULL); /* lease expired: back to pending */
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_int_equal(tq_claim("w2", 1, "30000", again, NULL), 1);
    assert_int_equal(again[0].attempt, 2);
    /* w1's old lease: complete, fail and heartbeat are refused */
    assert_int_equal(tq_complete("w1", &t[0], "{}"), 0);
    assert_int_equal(tq_fail("w1", &t[0], "error", "boom"), 0);
    r = tq_fcall("llmb_heartbeat", "w1", "30000", t[0].ref, t[0].tok, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    assert_string_equal(r->element[1]->str, "lost");
    freeReplyObject(r);
    /* w2 with a wrong token is refused as well */
    forged = again[0];
    snprintf(forged.tok, sizeof(forged.tok), "%s", t[0].tok);
    assert_int_equal(tq_complete("w2", &forged, "{}"), 0);
    /* the real holder completes once, and only once */
    assert_int_equal(tq_complete("w2", &again[0], "{}"), 1);
    assert_int_equal(tq_complete("w2", &again[0], "{}"), 0);
    tq_assert_job(id, "state", "completed");
    tq_assert_job(id, "lost", "1");
    free(id);
}

static void test_heartbeat_extends_lease(void **state)
{
    struct tq_task t[1];
    redisReply *r;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\"}");
    assert_int_equal(tq_claim("w1", 1, "200", t, NULL), 1);
    tq_sleep_ms(120);
    r = tq_fcall("llmb_heartbeat", "w1", "5000", t[0].ref, t[0].tok, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    tq_sleep_ms(150);
    r = tq_fcall("llmb_reap", "100", NULL);
    assert_int_equal(r->integer, 0); /* extended: not expired */
    freeReplyObject(r);
    assert_int_equal(tq_complete("w1", &t[0], "{}"), 1);
    free(id);
}

static void test_retry_with_backoff_then_failed_for_good(void **state)
{
    struct tq_task t[1];
    long long due = 0;
    char *id;
    int attempt;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"max_retries\":2,\"backoff_ms\":100}");
    for (attempt = 1; attempt <= 3; attempt++) {
        int64_t start = llmb_now_ms();
        int got = 0;
        while ((got = tq_claim("w1", 1, "30000", t, &due)) == 0) {
            assert_true(llmb_now_ms() - start < 5000);
            tq_sleep_ms(10);
        }
        assert_int_equal(t[0].attempt, attempt);
        if (attempt < 3) {
            assert_int_equal(tq_fail("w1", &t[0], "error", "boom"), 1);
            assert_int_equal(tq_zcard("pd"), 1);
            assert_int_equal(tq_waiting(), 0);
            /* backoff: 100 ms * 2^(attempt-1) with equal jitter */
            {
                redisReply *r = tq_cmd("ZRANGE %s:pd 0 0 WITHSCORES", T.base);
                redisReply *tr = tq_cmd("TIME");
                long long now = atoll(tr->element[0]->str) * 1000 +
                                atoll(tr->element[1]->str) / 1000;
                long long wait = atoll(r->element[1]->str) - now;
                long long step = 100LL << (attempt - 1);
                assert_true(wait <= step);
                assert_true(wait >= step / 2 - 20);
                freeReplyObject(r);
                freeReplyObject(tr);
            }
        } else {
            assert_int_equal(tq_fail("w1", &t[0], "error", "boom"), 2);
        }
    }
    tq_assert_job(id, "state", "failed");
    tq_assert_job(id, "failed", "1");
    tq_assert_job(id, "retried", "2");
    tq_assert_job(id, "error", "task 0: boom");
    assert_int_equal(tq_zcard("dead"), 1);
    free(id);
}

static void test_fatal_and_timeout_kinds(void **state)
{
    struct tq_task t[2];
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"tasks\":2,\"max_retries\":5,\"backoff_ms\":1}");
    assert_int_equal(tq_claim("w1", 2, "30000", t, NULL), 2);
    assert_int_equal(tq_fail("w1", &t[0], "fatal", "bad input"), 2);
    assert_int_equal(tq_fail("w1", &t[1], "timeout", "timed out after 1s"), 1);
    tq_assert_job(id, "timeouts", "1");
    tq_assert_job(id, "failed", "1");
    tq_assert_job(id, "state", "running");
    free(id);
}

/* A result must be one JSON object: whatever else a worker (or anyone
 * with the worker's credential) sends fails the attempt, and nothing of
 * it is stored as a result. */
static void test_result_not_object_fails_attempt(void **state)
{
    static const char *const bad[] = {
        "[1,2]", "{garbage", "{\"a\":1} trailing", "{\"a\":NaN}",
        "{\"a\":0x10}", "{\"a\":\"\xff\"}", "", "  ", "null",
    };
    enum { NBAD = sizeof(bad) / sizeof(bad[0]) };
    struct tq_task t[NBAD + 1];
    char *id, *f;
    int i;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"max_retries\":0,\"tasks\":10}");
    assert_int_equal(tq_claim("w1", NBAD + 1, "30000", t, NULL), NBAD + 1);
    for (i = 0; i < NBAD; i++) {
        assert_int_equal(tq_complete("w1", &t[i], bad[i]), -1);
        f = llmb_xasprintf("%lld:state", t[i].idx);
        tq_assert_job(id, f, "failed");
        free(f);
        f = llmb_xasprintf("%lld:result", t[i].idx);
        tq_assert_job(id, f, ""); /* absent */
        free(f);
    }
    tq_assert_job(id, "0:error", "result is not a JSON object: [1,2]");
    /* what cjson takes and JSON does not, in the words of a push */
    tq_assert_job(id, "3:error", "result is not a JSON object: \"NaN\" at "
                                 "character 6 is not a JSON value");
    tq_assert_job(id, "4:error", "result is not a JSON object: \"0x10\" at "
                                 "character 6 is not a JSON value");
    tq_assert_job(id, "5:error", "result is not valid UTF-8 (byte 7)");
    assert_int_equal(tq_complete("w1", &t[NBAD], " {\"a\": [1, {\"b\": null}]} "), 1);
    tq_assert_job(id, "state", "failed");
    tq_assert_job(id, "ok", "1");
    free(id);
}

static void test_release_gives_attempt_back(void **state)
{
    struct tq_task t[1];
    redisReply *r;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\"}");
    assert_int_equal(tq_claim("w1", 1, "30000", t, NULL), 1);
    r = tq_fcall("llmb_release", "w1", t[0].ref, t[0].tok, NULL);
    assert_int_equal(tq_reply_int_at(r, 0), 1);
    freeReplyObject(r);
    assert_int_equal(tq_zcard("running"), 0);
    assert_int_equal(tq_cmd_int("HEXISTS %s:run %s", T.base, t[0].ref), 0);
    assert_int_equal(tq_waiting(), 1);
    assert_int_equal(tq_cmd_int("LLEN %s:wake", T.base) > 0, 1);
    assert_int_equal(tq_claim("w2", 1, "30000", t, NULL), 1);
    assert_int_equal(t[0].attempt, 1);
    /* releasing what one does not hold changes nothing */
    r = tq_fcall("llmb_release", "w1", t[0].ref, t[0].tok, NULL);
    assert_int_equal(tq_reply_int_at(r, 0), 0);
    freeReplyObject(r);
    assert_int_equal(tq_zcard("running"), 1);
    free(id);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, tq_each_setup, tq_each_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T_(test_batch_of_many_tasks_per_job),
        T_(test_stale_token_refused),
        T_(test_heartbeat_extends_lease),
        T_(test_retry_with_backoff_then_failed_for_good),
        T_(test_fatal_and_timeout_kinds),
        T_(test_result_not_object_fails_attempt),
        T_(test_release_gives_attempt_back),
    };
    return cmocka_run_group_tests(tests, tq_setup, tq_teardown);
}
