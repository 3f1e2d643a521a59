/*
 * llmb_reap and llmb_reap_worker against a real redis-server: expired
 * leases and the leases of a dead worker go back to waiting, and each
 * lost lease spends an attempt.
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

#include "test_queue_support.h"

static void test_reap_expired_and_dead_worker(void **state)
{
    struct tq_task t[4];
    redisReply *r;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"tasks\":4}");
    assert_int_equal(tq_claim("w1", 2, "100", t, NULL), 2);
    assert_int_equal(tq_claim("w2", 2, "30000", t + 2, NULL), 2);
    tq_sleep_ms(150);
    r = tq_fcall("llmb_reap", "250", NULL);
    assert_int_equal(r->integer, 1); /* w1's batch (two tasks) expired */
    freeReplyObject(r);
    /* both of its tasks wait again, on their own, at priority 0 */
    assert_int_equal(tq_stat("pending"), 2);
    assert_int_equal(tq_cmd_int("LLEN %s:pl", T.base), 2);
    assert_int_equal(tq_stat("running"), 2);
    r = tq_fcall("llmb_reap_worker", "w2", "connection closed", NULL);
    assert_int_equal(r->integer, 2); /* w2 is dead: all its leases at once */
    freeReplyObject(r);
    assert_int_equal(tq_stat("pending"), 4);
    assert_int_equal(tq_cmd_int("LLEN %s:pl", T.base), 4);
    assert_int_equal(tq_stat("running"), 0);
    assert_int_equal(tq_zcard("running"), 0);
    assert_int_equal(tq_cmd_int("EXISTS %s:wl:w2", T.base), 0);
    tq_assert_job(id, "2:error", "worker w2: connection closed");
    tq_assert_job(id, "lost", "4");
    free(id);
}

static void test_lost_leases_spend_attempts(void **state)
{
    struct tq_task t[1];
    redisReply *r;
    char *id;
    int i;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"max_retries\":1}");
    for (i = 0; i < 2; i++) {
        assert_int_equal(tq_claim("w1", 1, "30000", t, NULL), 1);
        r = tq_fcall("llmb_reap_worker", "w1", "gone", NULL);
        assert_int_equal(r->integer, 1);
        freeReplyObject(r);
    }
    tq_assert_job(id, "state", "failed");
    tq_assert_job(id, "lost", "2");
    free(id);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, tq_each_setup, tq_each_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T_(test_reap_expired_and_dead_worker),
        T_(test_lost_leases_spend_attempts),
    };
    return cmocka_run_group_tests(tests, tq_setup, tq_teardown);
}
