/*
 * llmb-worker at the top of its ranges: a worker holding more leases than
 * one heartbeat call renews (1,000) keeps every one of them alive, past
 * several lease times, and ends every task once; a worker that starts
 * thousands of tasks of one fan-out job claims them in batches. Real
 * worker processes against the fixture's redis-server.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <llmb/util.h>

#include "test_worker_harness.h"

/* 4,500 sleeping tasks on one worker of capacity 5,000 with a lease of
 * 1 s: its heartbeats (five calls a round) keep every lease, so after
 * three lease times no task was lost, and the job completes with 4,500
 * ok. Before, one heartbeat call named all 4,500 leases and Redis refused
 * it (unpack of 9,000 values): every lease expired and the job failed. */
static void test_heartbeats_beyond_one_call(void **state)
{
    struct wh h;
    const char *args[] = {"--queues", "q", "--capacity", "5000",
                          "--lease-ms", "1000", "--log-level", "info", NULL};
    char *id, *st, *lost;
    pid_t w;
    int i;

    (void)state;
    assert_int_equal(wh_init(&h, "hb4500"), 0);
    freeReplyObject(wh_cmd(&h, "HSET %s:{q}:conf max_tasks 10000", h.prefix));
    id = wh_push(&h, "q", "{\"type\":\"sleep\",\"tasks\":4500,"
                          "\"payload\":{\"ms\":4000},\"max_retries\":0}");
    w = wh_worker_start(&h, args);
    for (i = 0; i < 200 && wh_stat(&h, "q", "running") < 4500; i++)
        usleep(20000);
    if (wh_stat(&h, "q", "running") != 4500)
        wh_dump_logs(&h);
    assert_int_equal(wh_stat(&h, "q", "running"), 4500);
    usleep(3000 * 1000); /* three lease times */
    assert_int_equal(wh_stat(&h, "q", "running"), 4500);
    /* no lease has run out: every one was renewed */
    {
        redisReply *r = wh_cmd(&h, "ZCOUNT %s:{q}:running -inf %lld",
                               h.prefix, (long long)llmb_now_ms());
        assert_int_equal(r->integer, 0);
        freeReplyObject(r);
    }
    lost = wh_job(&h, "q", id, "lost");
    assert_null(lost);
    st = wh_wait_state(&h, "q", id, "completed|failed|cancelled", 30000);
    if (strcmp(st, "completed") != 0)
        wh_dump_logs(&h);
    assert_string_equal(st, "completed");
    free(st);
    st = wh_job(&h, "q", id, "ok");
    assert_string_equal(st, "4500");
    free(st);
    kill(w, SIGTERM);
    assert_int_equal(wh_worker_wait(&h, w, 10000), 0);
    free(id);
    wh_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heartbeats_beyond_one_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
