/*
 * llmb_claim against a real redis-server: delayed tasks promoted when due,
 * two processes claiming from one queue never sharing a task, members
 * that name no task dropped from where they wait or run, and a batch cut
 * at 250 jobs waking a worker for the rest.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include <llmb/util.h>

#include "fixture.h"
#include "test_queue_support.h"

static void test_delay_and_promotion(void **state)
{
    struct tq_task t[1];
    long long due = 0;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"delay_s\":0.3}");
    assert_int_equal(tq_zcard("pd"), 1);
    assert_int_equal(tq_waiting(), 0);
    assert_int_equal(tq_claim("w1", 1, "30000", t, &due), 0);
    assert_true(due > 0); /* the worker learns when to look again */
    tq_sleep_ms(350);
    assert_int_equal(tq_claim("w1", 1, "30000", t, NULL), 1);
    assert_string_equal(t[0].id, id);
    free(id);
}

/* Two processes claim from one queue as fast as they can; every task is
 * handed out exactly once. */
static void test_two_workers_never_share_a_task(void **state)
{
    int pipes[2][2];
    pid_t pid[2];
    char *seen = llmb_xcalloc(5000, 1);
    char *id;
    char tok[160], last[2][160] = {"", ""};
    int w, total = 0, batches = 0;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"tasks\":5000}");
    for (w = 0; w < 2; w++) {
        assert_int_equal(pipe(pipes[w]), 0);
        pid[w] = fork();
        assert_true(pid[w] >= 0);
        if (pid[w] == 0) {
            redisContext *c = llmb_test_redis();
            struct tq_task t[7];
            char wid[8];
            int got, i;
            FILE *out = fdopen(pipes[w][1], "w");
            close(pipes[w][0]);
            redisFree(T.c);
            T.c = c;
            snprintf(wid, sizeof(wid), "w%d", w);
            while ((got = tq_claim(wid, 7, "30000", t, NULL)) > 0)
                for (i = 0; i < got; i++)
                    fprintf(out, "%s %lld\n", t[i].tok, t[i].idx);
            fclose(out);
            free(seen);
            free(id);
            _exit(0);
        }
        close(pipes[w][1]);
    }
    for (w = 0; w < 2; w++) {
        FILE *in = fdopen(pipes[w][0], "r");
        long long idx;
        int st;
        while (fscanf(in, "%159s %lld", tok, &idx) == 2) {
            assert_true(idx >= 0 && idx < 5000);
            /* one lease per batch: a worker's tokens change per claim */
            if (strcmp(tok, last[w]) != 0) {
                assert_true(strcmp(tok, last[1 - w]) != 0);
                snprintf(last[w], sizeof(last[w]), "%s", tok);
                batches++;
            }
            if (seen[idx])
                fail_msg("task %lld handed out twice", idx);
            seen[idx] = 1;
            total++;
        }
        fclose(in);
        assert_int_equal(waitpid(pid[w], &st, 0), pid[w]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    assert_int_equal(total, 5000);
    /* every task held ("~" keeps <base>:run a hash table), one lease and
     * one deadline per batch */
    assert_int_equal(tq_cmd_int("HLEN %s:run", T.base), 5000 + 1);
    assert_int_equal(tq_zcard("running"), batches);
    assert_int_equal(tq_cmd_int("HLEN %s:lease", T.base), 2 * batches);
    free(seen);
    free(id);
}

/* Members that name no task, added by hand to the waiting list, the
 * waiting and delayed sets and the running set, are dropped; the tasks
 * around them are claimed and reaped as usual, and a job whose record is
 * no record counts as a job that is gone. */
static void test_bad_refs_and_keys_dropped(void **state)
{
    struct tq_task t[8];
    char *a, *b, *c;
    int i, n;

    (void)state;
    a = tq_push("{\"type\":\"t\"}");
    b = tq_push("{\"type\":\"t\",\"tasks\":2}");
    c = tq_push("{\"type\":\"t\"}");
    /* between a and b in the waiting order */
    assert_int_equal(tq_cmd_int("LINSERT %s:pl BEFORE %s junk", T.base, b), 4);
    freeReplyObject(tq_cmd("ZADD %s:pz 1 junk-z 2 %s:x:1", T.base, a));
    freeReplyObject(tq_cmd("ZADD %s:pd 0 no-index", T.base));
    /* c's record is now no record */
    freeReplyObject(tq_cmd("HSET %s:jd %s x", T.base, c));
    /* a alone in its batch */
    assert_int_equal(tq_claim("w1", 1, "30000", t, NULL), 1);
    assert_string_equal(t[0].id, a);
    n = tq_claim("w1", 7, "30000", t + 1, NULL);
    assert_int_equal(n, 2);
    n++;
    assert_string_equal(t[1].id, b);
    assert_string_equal(t[2].id, b);
    for (i = 0; i < n; i++) {
        assert_int_equal(t[i].idx, i == 2 ? 1 : 0);
        assert_int_equal(t[i].attempt, 1);
        assert_string_equal(t[i].type, "t");
    }
    assert_string_equal(t[0].ref, a);
    assert_int_equal(tq_waiting(), 0);
    assert_int_equal(tq_zcard("pd"), 0);
    assert_int_equal(tq_zcard("running"), 2);
    assert_int_equal(tq_cmd_int("HLEN %s:run", T.base), 3 + 1);
    /* an expired lease beside a junk member of running: both go */
    freeReplyObject(tq_cmd("ZADD %s:running 0 junk2 0 %s", T.base, t[0].tok));
    {
        redisReply *r = tq_fcall("llmb_reap", "10", NULL);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        assert_int_equal(r->integer, 2);
        freeReplyObject(r);
    }
    assert_int_equal(tq_zcard("running"), 1);
    assert_int_equal(tq_cmd_int("HLEN %s:run", T.base), 2 + 1);
    tq_assert_job(a, "0:state", "pending");
    tq_assert_job(a, "state", "pending");
    assert_int_equal(tq_waiting(), 1);
    assert_int_equal(tq_complete("w1", &t[1], "{}"), 1);
    assert_int_equal(tq_complete("w1", &t[2], "{}"), 1);
    tq_assert_job(b, "state", "completed");
    assert_int_equal(tq_zcard("running"), 0);
    free(a);
    free(b);
    free(c);
}

/* A claim hands out at most 250 jobs; a worker takes a batch smaller than
 * it asked for as an empty queue and sleeps on the wake-up list. So a
 * batch cut at 250 jobs with more waiting leaves a wake-up token, and the
 * batch that empties the queue leaves none. */
static void test_capped_batch_wakes(void **state)
{
    struct tq_task *t = llmb_xcalloc(1000, sizeof(*t));

    (void)state;
    for (int i = 0; i < 300; i++)
        free(tq_push("{\"type\":\"t\"}"));
    freeReplyObject(tq_cmd("DEL %s:wake", T.base));
    assert_int_equal(tq_claim("w", 1000, "30000", t, NULL), 250);
    assert_true(tq_cmd_int("LLEN %s:wake", T.base) >= 1);
    freeReplyObject(tq_cmd("DEL %s:wake", T.base));
    assert_int_equal(tq_claim("w", 1000, "30000", t, NULL), 50);
    assert_int_equal(tq_cmd_int("LLEN %s:wake", T.base), 0);
    free(t);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, tq_each_setup, tq_each_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T_(test_delay_and_promotion),
        T_(test_two_workers_never_share_a_task),
        T_(test_bad_refs_and_keys_dropped),
        T_(test_capped_batch_wakes),
    };
    return cmocka_run_group_tests(tests, tq_setup, tq_teardown);
}
