/*
 * llmb_records against a real redis-server: records are appended only
 * under a lease the worker still holds, a chunk sent again is appended
 * once, a new claim of the task starts over, the per-call and per-job caps
 * hold, and retention deletes the records with their job.
 *
 * One of the tests of the function library (lua/), through FCALL exactly
 * as workers call it (test_queue_support.h).
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

/* llmb_records of one chunk for task t as worker; the reply for it. */
static long long append(const char *worker, const struct tq_task *t,
                        const char *chunk)
{
    const char *argv[] = {"FCALL", "llmb_records", "1", T.base, worker,
                          t->ref, t->tok, chunk};
    redisReply *r = redisCommandArgv(T.c, 8, argv, NULL);
    long long v;

    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("llmb_records: %s", r->str);
    v = tq_reply_int_at(r, 0);
    freeReplyObject(r);
    return v;
}

static long long llen(const char *id)
{
    return tq_cmd_int("LLEN %s:rec:%s", T.base, id);
}

static void test_records_fenced_and_once(void **state)
{
    struct tq_task t[1], stale;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"max_retries\":2,\"backoff_ms\":1}");
    assert_int_equal(tq_claim("w1", 1, "30000", t, NULL), 1);
    assert_int_equal(append("w1", t, "1\t0\tep\tm\t1000\n0\t1\t2\n"), 1);
    /* the same chunk again (its reply was lost): appended once */
    assert_int_equal(append("w1", t, "1\t0\tep\tm\t1000\n0\t1\t2\n"), 2);
    assert_int_equal(append("w1", t, "1\t1\tep\tm\t1000\n1\t1\t2\n"), 1);
    assert_int_equal(llen(id), 2);
    /* another worker, a wrong token, a chunk without its header */
    assert_int_equal(append("w2", t, "1\t2\tep\tm\t1000\n"), 0);
    stale = t[0];
    strcat(stale.tok, "x");
    assert_int_equal(append("w1", &stale, "1\t2\tep\tm\t1000\n"), 0);
    assert_int_equal(append("w1", t, "no header"), -1);
    /* the attempt fails: its token no longer appends */
    stale = t[0];
    assert_int_equal(tq_fail("w1", t, "error", "boom"), 1);
    assert_int_equal(append("w1", &stale, "1\t2\tep\tm\t1000\n2\t1\t2\n"), 0);
    assert_int_equal(llen(id), 2);
    /* the next claim starts over at chunk 0, tagged with its own claim */
    tq_sleep_ms(20);
    assert_int_equal(tq_claim("w1", 1, "30000", t, NULL), 1);
    assert_int_equal(append("w1", t, "2\t0\tep\tm\t1000\n0\t1\t2\n"), 1);
    assert_int_equal(llen(id), 3);
    {
        redisReply *r = tq_cmd("HGET %s:rs:%s 0", T.base, id);
        char want[64];
        snprintf(want, sizeof(want), "%.*s:1",
                 (int)strcspn(t[0].tok, "."), t[0].tok);
        assert_string_equal(r->str, want);
        freeReplyObject(r);
    }
    assert_int_equal(tq_complete("w1", t, "{}"), 1);
    /* retention deletes the records with the job */
    tq_cmd_int("HSET %s:conf retention_s 1", T.base);
    tq_sleep_ms(1100);
    tq_cmd_int("FCALL llmb_reap 1 %s 100", T.base);
    assert_int_equal(llen(id), 0);
    assert_int_equal(tq_cmd_int("EXISTS %s:rs:%s", T.base, id), 0);
    free(id);
}

static void test_records_caps(void **state)
{
    struct tq_task t[1];
    const char *argv[5 + 3 * 17];
    char *id, *big;
    redisReply *r;
    int argc = 0;

    (void)state;
    id = tq_push("{\"type\":\"t\"}");
    assert_int_equal(tq_claim("w1", 1, "30000", t, NULL), 1);
    /* 17 chunks in one call: refused whole */
    argv[argc++] = "FCALL";
    argv[argc++] = "llmb_records";
    argv[argc++] = "1";
    argv[argc++] = T.base;
    argv[argc++] = "w1";
    for (int i = 0; i < 17; i++) {
        argv[argc++] = t[0].ref;
        argv[argc++] = t[0].tok;
        argv[argc++] = "1\t0\tep\tm\t1000\n";
    }
    r = redisCommandArgv(T.c, argc, argv, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "at most 16 chunks"));
    freeReplyObject(r);
    r = redisCommandArgv(T.c, argc - 3, argv, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 16);
    freeReplyObject(r);
    /* a chunk over 64 KiB */
    big = llmb_xmalloc(65538);
    memset(big, 'x', 65537);
    memcpy(big, "1\t1\tep\tm\t1000\n", 14);
    big[65537] = '\0';
    assert_int_equal(append("w1", t, big), -1);
    free(big);
    /* the per-job cap: a chunk past max_record_bytes is dropped, counted */
    tq_cmd_int("HSET %s:conf max_record_bytes 40", T.base);
    assert_int_equal(append("w1", t, "1\t1\tep\tm\t1000\n0\t1\t2\n"), 1);
    assert_int_equal(append("w1", t, "1\t2\tep\tm\t1000\n0\t1\t2\n"), 3);
    r = tq_cmd("HGET %s:rs:%s dropped", T.base, id);
    assert_string_equal(r->str, "1");
    freeReplyObject(r);
    assert_int_equal(llen(id), 2);
    free(id);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, tq_each_setup, tq_each_teardown)
    const struct CMUnitTest tests[] = {
        T_(test_records_fenced_and_once),
        T_(test_records_caps),
    };
    return cmocka_run_group_tests(tests, tq_setup, tq_teardown);
}
