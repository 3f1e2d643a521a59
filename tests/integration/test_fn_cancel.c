/*
 * What an operator does to a job, against a real redis-server:
 * llmb_cancel of waiting and running tasks, llmb_retry, llmb_purge, and
 * llmb_deadlines failing a job that ran out of time.
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

/* No task waits: a claim gets none, and drops the members of cancelled
 * jobs it meets (a cancel leaves one in <base>:pl, taking it out of a
 * long list being O(n)), so that none is left. */
static void nothing_waits(void)
{
    struct tq_task x[4];

    assert_int_equal(tq_claim("w9", 4, "30000", x, NULL), 0);
    assert_int_equal(tq_cmd_int("LLEN %s:pl", T.base), 0);
    assert_int_equal(tq_zcard("pz"), 0);
    assert_int_equal(tq_zcard("pd"), 0);
    assert_int_equal(tq_stat("pending"), 0);
    assert_int_equal(tq_stat("delayed"), 0);
}

static void test_cancel_pending_and_running(void **state)
{
    struct tq_task t[2];
    redisReply *r;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"tasks\":10}");
    assert_int_equal(tq_claim("w1", 2, "30000", t, NULL), 2);
    r = tq_fcall("llmb_cancel", id, NULL);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 8); /* the waiting ones, at once */
    freeReplyObject(r);
    nothing_waits();
    tq_assert_job(id, "state", "cancelled");
    /* running ones stop at the next heartbeat */
    r = tq_fcall("llmb_heartbeat", "w1", "30000", t[0].ref, t[0].tok, t[1].ref,
              t[1].tok, NULL);
    assert_int_equal(r->elements, 4);
    assert_string_equal(r->element[1]->str, "cancelled");
    assert_string_equal(r->element[3]->str, "cancelled");
    freeReplyObject(r);
    assert_int_equal(tq_zcard("running"), 0);
    tq_assert_job(id, "cancelled", "10");
    tq_assert_job(id, "left", "0");
    assert_int_equal(tq_cmd_int("LLEN %s:done", T.base), 1);
    /* cancelling again, or an unknown job: clear errors */
    r = tq_fcall("llmb_cancel", id, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "already been cancelled"));
    freeReplyObject(r);
    r = tq_fcall("llmb_cancel", "nope", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_string_equal(r->str, "ERR job \"nope\" not found in queue \"q\"");
    freeReplyObject(r);
    free(id);
}

static void test_cancel_delayed_and_retry_job(void **state)
{
    struct tq_task t[1];
    redisReply *r;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"tasks\":2,\"delay_s\":60}");
    r = tq_fcall("llmb_cancel", id, NULL);
    assert_int_equal(r->integer, 2);
    freeReplyObject(r);
    assert_int_equal(tq_zcard("pd"), 0);
    tq_assert_job(id, "state", "cancelled");
    /* retry runs every task that did not complete */
    r = tq_fcall("llmb_retry", id, NULL);
    assert_int_equal(r->integer, 2);
    freeReplyObject(r);
    tq_assert_job(id, "state", "pending");
    assert_int_equal(tq_cmd_int("LLEN %s:pl", T.base), 1); /* its cursor */
    assert_int_equal(tq_stat("pending"), 2);
    assert_int_equal(tq_cmd_int("TTL %s:j:%s", T.base, id), -1);
    /* no longer ended: retention leaves it alone */
    assert_int_equal(tq_ended_ms(id), -1);
    assert_int_equal(tq_claim("w1", 1, "30000", t, NULL), 1);
    assert_int_equal(t[0].attempt, 1);
    free(id);
}

/* A cancel leaves the members it ends in <base>:pl (taking one out of a
 * long list is O(n)), out of the pending count. A retry of the job must
 * not make them run: the job of one task waits once (its member where it
 * is), and the fan-out job's task refs the cancel ended are dropped, its
 * tasks running once each from its cursor. */
static void test_retry_after_cancel_in_the_list(void **state)
{
    struct tq_task t[4];
    redisReply *r;
    char *a, *b;

    (void)state;
    a = tq_push("{\"type\":\"t\"}");
    assert_int_equal(tq_int(tq_fcall("llmb_cancel", a, NULL)), 1);
    assert_int_equal(tq_cmd_int("LLEN %s:pl", T.base), 1);
    assert_int_equal(tq_stat("pending"), 0);
    assert_int_equal(tq_int(tq_fcall("llmb_retry", a, NULL)), 1);
    assert_int_equal(tq_cmd_int("LLEN %s:pl", T.base), 1);
    assert_int_equal(tq_stat("pending"), 1);
    assert_int_equal(tq_claim("w1", 4, "30000", t, NULL), 1);
    assert_string_equal(t[0].id, a);
    assert_int_equal(tq_claim("w2", 4, "30000", t + 1, NULL), 0);
    assert_int_equal(tq_complete("w1", &t[0], "{}"), 1);
    tq_assert_job(a, "state", "completed");
    assert_int_equal(tq_stat("pending"), 0);

    b = tq_push("{\"type\":\"t\",\"tasks\":2}");
    assert_int_equal(tq_claim("w1", 2, "30000", t, NULL), 2);
    r = tq_fcall("llmb_release", "w1", t[0].ref, t[0].tok, t[1].ref, t[1].tok,
                 NULL);
    freeReplyObject(r);
    assert_int_equal(tq_stat("pending"), 2);
    assert_int_equal(tq_int(tq_fcall("llmb_cancel", b, NULL)), 2);
    tq_assert_job(b, "state", "cancelled");
    assert_int_equal(tq_cmd_int("LLEN %s:pl", T.base), 2);
    assert_int_equal(tq_stat("pending"), 0);
    assert_int_equal(tq_int(tq_fcall("llmb_retry", b, NULL)), 2);
    assert_int_equal(tq_stat("pending"), 2);
    assert_int_equal(tq_claim("w1", 4, "30000", t, NULL), 2);
    assert_true(t[0].idx != t[1].idx);
    assert_int_equal(tq_claim("w2", 4, "30000", t + 2, NULL), 0);
    assert_int_equal(tq_cmd_int("LLEN %s:pl", T.base), 0);
    assert_int_equal(tq_stat("pending"), 0);
    assert_int_equal(tq_complete("w1", &t[0], "{}"), 1);
    assert_int_equal(tq_complete("w1", &t[1], "{}"), 1);
    tq_assert_job(b, "state", "completed");
    tq_assert_job(b, "ok", "2");
    free(a);
    free(b);
}

static void test_purge(void **state)
{
    redisReply *r;
    char *a, *b;

    (void)state;
    a = tq_push("{\"type\":\"t\",\"tasks\":30}");
    b = tq_push("{\"type\":\"t\",\"delay_s\":100}");
    r = tq_fcall("llmb_purge", "10", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[0]->integer, 2); /* both jobs */
    assert_int_equal(r->element[1]->integer, 0); /* cancel takes whole jobs */
    freeReplyObject(r);
    assert_int_equal(tq_cmd_int("LLEN %s:pl", T.base), 0);
    assert_int_equal(tq_zcard("pd"), 0);
    tq_assert_job(a, "state", "cancelled");
    tq_assert_job(a, "error", "purged");
    free(a);
    free(b);
}

/* A waiting task of a fan-out job whose hash was deleted by hand is
 * purged without bringing a job hash back or touching its record. */
static void test_purge_orphaned_task(void **state)
{
    redisReply *r;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"tasks\":2}");
    freeReplyObject(tq_cmd("DEL %s:j:%s", T.base, id));
    r = tq_fcall("llmb_purge", "10", NULL);
    assert_int_equal(r->element[0]->integer, 0);
    assert_int_equal(r->element[1]->integer, 0);
    freeReplyObject(r);
    assert_int_equal(tq_cmd_int("LLEN %s:pl", T.base), 0);
    assert_int_equal(tq_cmd_int("EXISTS %s:j:%s", T.base, id), 0);
    assert_int_equal(tq_cmd_int("LLEN %s:done", T.base), 0);
    assert_int_equal(tq_ended_ms(id), -1);
    {
        char *rec = tq_hget("jd", id);
        assert_int_equal(rec[0], 'p');
        free(rec);
    }
    assert_int_equal(tq_stat("junk"), 1);
    free(id);
}

/* A job that ended under a library before version 6 has its task fields
 * in <base>:t:<id>: retry moves them into the job hash first, so a
 * completed task keeps its result and does not run again. */
static void test_retry_moves_legacy_task_fields(void **state)
{
    struct tq_task t[2];
    redisReply *r;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"tasks\":2,\"max_retries\":0}");
    assert_int_equal(tq_claim("w1", 2, "30000", t, NULL), 2);
    assert_int_equal(tq_complete("w1", &t[0], "{\"v\":1}"), 1);
    assert_int_equal(tq_fail("w1", &t[1], "error", "boom"), 2);
    tq_assert_job(id, "state", "failed");
    /* as a version 5 library left it */
    freeReplyObject(tq_cmd("HDEL %s:j:%s 0:state 0:result 0:attempt 0:worker "
                        "1:state 1:error 1:attempt 1:worker", T.base, id));
    freeReplyObject(tq_cmd("HSET %s:t:%s 0:state completed 0:result {\"v\":1} "
                        "0:attempt 1 1:state failed 1:error boom 1:attempt 1",
                        T.base, id));
    r = tq_fcall("llmb_retry", id, NULL);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_int_equal(tq_cmd_int("EXISTS %s:t:%s", T.base, id), 0);
    tq_assert_job(id, "0:state", "completed");
    tq_assert_job(id, "0:result", "{\"v\":1}");
    /* task 1 waits again behind the job's cursor, task 0 does not */
    assert_int_equal(tq_cmd_int("LLEN %s:pl", T.base), 1);
    assert_int_equal(tq_stat("pending"), 1);
    assert_int_equal(tq_claim("w1", 2, "30000", t, NULL), 1);
    assert_int_equal(t[0].idx, 1);
    assert_int_equal(t[0].attempt, 1);
    assert_int_equal(tq_stat("pending"), 0);
    free(id);
}

/* Retrying a cancelled job while its running tasks are still stopping
 * would run them twice: refused until the job has ended. */
static void test_retry_waits_for_running_tasks(void **state)
{
    struct tq_task t[2];
    redisReply *r;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"tasks\":3}");
    assert_int_equal(tq_claim("w1", 2, "30000", t, NULL), 2);
    freeReplyObject(tq_fcall("llmb_cancel", id, NULL));
    r = tq_fcall("llmb_retry", id, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "2 of its tasks are still stopping"));
    freeReplyObject(r);
    nothing_waits();
    /* the same task twice in one heartbeat is stopped and counted once */
    r = tq_fcall("llmb_heartbeat", "w1", "30000", t[0].ref, t[0].tok, t[0].ref,
              t[0].tok, t[1].ref, t[1].tok, NULL);
    assert_int_equal(r->elements, 4);
    freeReplyObject(r);
    tq_assert_job(id, "cancelled", "3");
    tq_assert_job(id, "left", "0");
    assert_int_equal(tq_cmd_int("LLEN %s:done", T.base), 1);
    /* ended: now it can run again, and is no longer waiting to be
     * aggregated from its first run */
    r = tq_fcall("llmb_retry", id, NULL);
    assert_int_equal(r->integer, 3);
    freeReplyObject(r);
    assert_int_equal(tq_cmd_int("LLEN %s:done", T.base), 0);
    tq_assert_job(id, "left", "3");
    free(id);
}

static void test_deadline(void **state)
{
    struct tq_task t[1];
    redisReply *r;
    long long junk;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"tasks\":3,\"deadline_s\":0.1}");
    assert_int_equal(tq_claim("w1", 1, "30000", t, NULL), 1);
    tq_sleep_ms(150);
    r = tq_fcall("llmb_deadlines", "10", NULL);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    nothing_waits();
    r = tq_fcall("llmb_heartbeat", "w1", "30000", t[0].ref, t[0].tok, NULL);
    assert_int_equal(r->elements, 2);
    assert_string_equal(r->element[1]->str, "cancelled");
    freeReplyObject(r);
    tq_assert_job(id, "state", "failed");
    tq_assert_job(id, "error", "deadline exceeded");
    free(id);

    /* a fan-out job whose hash was deleted by hand is not given one back
     * (with only `expired` in it) when its deadline passes: junk */
    id = tq_push("{\"type\":\"t\",\"tasks\":3,\"deadline_s\":0.05}");
    freeReplyObject(tq_cmd("DEL %s:j:%s", T.base, id));
    tq_sleep_ms(100);
    junk = tq_stat("junk");
    r = tq_fcall("llmb_deadlines", "10", NULL);
    freeReplyObject(r);
    assert_int_equal(tq_cmd_int("EXISTS %s:j:%s", T.base, id), 0);
    assert_true(tq_stat("junk") > junk);
    free(id);
}

/* One llmb_rendezvous of task t (worker w1, timeout 60 s) in meeting
 * phase, announcing poll ms: the reply {1, now, start, arrived, tasks,
 * missing, deadline} into v. A NULL phase sends neither (the NULL ends
 * tq_fcall's arguments): the call without phases. */
static void meet(const struct tq_task *t, const char *phase, const char *poll,
                 long long v[7])
{
    redisReply *r = tq_fcall("llmb_rendezvous", "w1", t->ref, t->tok,
                             "60000", phase, poll, NULL);
    size_t i;

    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 7);
    for (i = 0; i < 7; i++)
        v[i] = tq_reply_int_at(r, i);
    freeReplyObject(r);
}

/* meet() without a phase. */
static void rendezvous(const struct tq_task *t, long long v[7])
{
    meet(t, NULL, NULL, v);
}

/* A retried job whose tasks start together meets anew: the tasks that
 * run again wait for one another, not for the start of the first run. */
static void test_retry_starts_together_anew(void **state)
{
    struct tq_task t[2];
    long long v[7];
    char rv[200];
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"tasks\":2}");
    assert_int_equal(tq_claim("w1", 2, "30000", t, NULL), 2);
    rendezvous(&t[0], v);
    assert_int_equal(v[2], -1);
    rendezvous(&t[1], v);
    assert_int_equal(v[3], 2);
    assert_int_equal(v[2], v[1] + 100);
    (void)tq_complete("w1", &t[0], "{}");
    (void)tq_fail("w1", &t[1], "fatal", "boom");
    tq_assert_job(id, "state", "failed");
    freeReplyObject(tq_fcall("llmb_retry", id, NULL));
    snprintf(rv, sizeof rv, "rv:%s", id);
    tq_assert_hget(rv, "expect", "1");
    assert_int_equal(tq_claim("w1", 2, "30000", t, NULL), 1);
    assert_int_equal(t[0].idx, 1);
    /* the one task again is all the start waits for: a new start */
    rendezvous(&t[0], v);
    assert_int_equal(v[3], 1);
    assert_int_equal(v[4], 1);
    assert_int_equal(v[5], 0);
    assert_int_equal(v[2], v[1] + 100);
    free(id);
}

/* A start that cannot wait: a first task with timeout 0 sets it at once,
 * 100 ms ahead, with the tasks not yet arrived as `missing`; a task that
 * arrives later registers and is told that same start, and the first one
 * asking again changes nothing. */
static void test_rendezvous_deadline(void **state)
{
    struct tq_task t[3];
    long long v[7], start;
    redisReply *r;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"tasks\":3}");
    assert_int_equal(tq_claim("w1", 3, "30000", t, NULL), 3);
    r = tq_fcall("llmb_rendezvous", "w1", t[0].ref, t[0].tok, "0", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 7);
    for (size_t i = 0; i < 7; i++)
        v[i] = tq_reply_int_at(r, i);
    freeReplyObject(r);
    assert_int_equal(v[0], 1);
    assert_int_equal(v[2], v[1] + 100); /* start */
    assert_int_equal(v[3], 1);          /* arrived */
    assert_int_equal(v[4], 3);          /* tasks */
    assert_int_equal(v[5], 2);          /* missing */
    assert_int_equal(v[6], v[1]);       /* deadline: now + 0 */
    start = v[2];
    rendezvous(&t[2], v);
    assert_int_equal(v[2], start);
    assert_int_equal(v[3], 2);
    assert_int_equal(v[5], 2);
    rendezvous(&t[0], v);
    assert_int_equal(v[2], start);
    assert_int_equal(v[3], 2);
    free(id);
}

/* The rendezvous' input: a timeout of at most a day; a job whose hash is
 * gone is answered as a lease not held, nothing written; a rendezvous key
 * that is not a hash never gives a start (not a fresh one each call). */
static void test_rendezvous_input(void **state)
{
    struct tq_task t[2];
    long long v[7];
    redisReply *r;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"tasks\":2}");
    assert_int_equal(tq_claim("w1", 2, "30000", t, NULL), 2);
    r = tq_fcall("llmb_rendezvous", "w1", t[0].ref, t[0].tok, "86400001",
                 NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "<timeout ms 0..86400000>"));
    freeReplyObject(r);
    r = tq_fcall("llmb_rendezvous", "", t[0].ref, t[0].tok, "0", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "usage: FCALL llmb_rendezvous"));
    freeReplyObject(r);
    assert_int_equal(tq_cmd_int("EXISTS %s:rv:%s", T.base, id), 0);
    /* not a hash: no start, whoever asks and however often */
    freeReplyObject(tq_cmd("SET %s:rv:%s x", T.base, id));
    rendezvous(&t[0], v);
    assert_int_equal(v[2], -1);
    rendezvous(&t[1], v);
    assert_int_equal(v[2], -1);
    rendezvous(&t[1], v);
    assert_int_equal(v[2], -1);
    assert_true(tq_stat("junk") >= 3);
    /* the job is gone (its record and hash): nothing to meet, nothing
     * written */
    freeReplyObject(tq_cmd("DEL %s:rv:%s", T.base, id));
    freeReplyObject(tq_cmd("DEL %s:j:%s", T.base, id));
    freeReplyObject(tq_cmd("HDEL %s:jd %s", T.base, id));
    r = tq_fcall("llmb_rendezvous", "w1", t[0].ref, t[0].tok, "86400000",
                 NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 1);
    assert_int_equal(tq_reply_int_at(r, 0), 0);
    freeReplyObject(r);
    assert_int_equal(tq_cmd_int("EXISTS %s:rv:%s", T.base, id), 0);
    free(id);
}

/* Waiters announce how long they wait between calls: the start is set
 * 100 ms plus the longest wait announced ahead, so that each hears of it
 * before it passes; what one announces after the start changes nothing.
 * A task with nothing to send ("none") counts at the start only. */
static void test_rendezvous_poll_lead(void **state)
{
    struct tq_task t[3];
    long long v[7], start;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"tasks\":3}");
    assert_int_equal(tq_claim("w1", 3, "30000", t, NULL), 3);
    meet(&t[0], "start", "300", v);
    assert_int_equal(v[2], -1);
    meet(&t[0], "start", "20", v); /* a shorter wait: the longest holds */
    assert_int_equal(v[2], -1);
    meet(&t[2], "none", "0", v);
    assert_int_equal(v[2], -1);
    assert_int_equal(v[3], 2);
    meet(&t[1], "start", "40", v);
    assert_int_equal(v[3], 3);
    assert_int_equal(v[5], 0);
    assert_int_equal(v[2], v[1] + 100 + 300);
    start = v[2];
    meet(&t[1], "start", "10000", v);
    assert_int_equal(v[2], start);
    {
        char rv[200];
        snprintf(rv, sizeof rv, "rv:%s", id);
        tq_assert_hget(rv, "poll", "300");
        tq_assert_hget(rv, "none", "1");
    }
    free(id);
}

/* After a warm-up the tasks meet again ("measure", fields m:*): the
 * measured start waits for every task that came to the start (a late one
 * too) but the one with nothing to send, with a deadline of its own, and
 * leaves the start as it was. */
static void test_rendezvous_measure(void **state)
{
    struct tq_task t[4];
    long long v[7], start;
    char rv[200], *s;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"tasks\":4}");
    snprintf(rv, sizeof rv, "rv:%s", id);
    assert_int_equal(tq_claim("w1", 4, "30000", t, NULL), 4);
    meet(&t[0], "start", "20", v);
    meet(&t[1], "start", "20", v);
    meet(&t[3], "none", "20", v);
    assert_int_equal(v[2], -1);
    meet(&t[2], "start", "20", v);
    assert_int_equal(v[3], 4);
    start = v[2];
    assert_true(start > 0);
    /* tasks 0 and 1 end their warm-up; task 2 still warms up */
    meet(&t[0], "measure", "20", v);
    assert_int_equal(v[2], -1);
    assert_int_equal(v[3], 1);
    assert_int_equal(v[4], 3); /* the 4 that came, but the one with none */
    meet(&t[1], "measure", "500", v);
    assert_int_equal(v[2], -1);
    assert_int_equal(v[3], 2);
    meet(&t[2], "measure", "20", v);
    assert_int_equal(v[3], 3);
    assert_int_equal(v[5], 0);
    assert_int_equal(v[2], v[1] + 100 + 500);
    tq_assert_hget(rv, "m:n", "3");
    s = tq_hget(rv, "start");
    assert_int_equal(atoll(s), start); /* the first start is untouched */
    free(s);
    meet(&t[0], "start", "20", v);
    assert_int_equal(v[2], start);
    assert_int_equal(v[3], 4);
    free(id);

    /* a task missing at the measured start: its deadline, then missing */
    id = tq_push("{\"type\":\"t\",\"tasks\":2}");
    assert_int_equal(tq_claim("w1", 2, "30000", t, NULL), 2);
    meet(&t[0], "start", "0", v);
    meet(&t[1], "start", "0", v);
    assert_true(v[2] > 0);
    {
        redisReply *r = tq_fcall("llmb_rendezvous", "w1", t[0].ref,
                                 t[0].tok, "0", "measure", "0", NULL);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        assert_int_equal(tq_reply_int_at(r, 2),
                         tq_reply_int_at(r, 1) + 100);
        assert_int_equal(tq_reply_int_at(r, 4), 2);
        assert_int_equal(tq_reply_int_at(r, 5), 1); /* missing */
        freeReplyObject(r);
    }
    free(id);
}

/* The phase and the poll ms: "start", "measure" or "none", 0..10000. */
static void test_rendezvous_phase_input(void **state)
{
    static const char *const bad[][2] = {
        {"begin", "0"}, {"start", "-1"}, {"start", "10001"},
        {"start", "1.5"}, {"measure", "x"},
    };
    struct tq_task t[1];
    long long v[7];
    redisReply *r;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"tasks\":2}");
    assert_int_equal(tq_claim("w1", 1, "30000", t, NULL), 1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        r = tq_fcall("llmb_rendezvous", "w1", t[0].ref, t[0].tok, "60000",
                     bad[i][0], bad[i][1], NULL);
        assert_int_equal(r->type, REDIS_REPLY_ERROR);
        assert_non_null(strstr(r->str, "[start|measure|none [<poll ms "
                                       "0..10000>]]"));
        freeReplyObject(r);
    }
    r = tq_fcall("llmb_rendezvous", "w1", t[0].ref, t[0].tok, "60000",
                 "start", "0", "x", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    assert_int_equal(tq_cmd_int("EXISTS %s:rv:%s", T.base, id), 0);
    meet(&t[0], "start", "10000", v); /* both ends */
    assert_int_equal(v[3], 1);
    meet(&t[0], "start", "0", v);
    assert_int_equal(v[3], 1);
    meet(&t[0], "measure", "0", v);
    assert_int_equal(v[3], 1);
    free(id);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, tq_each_setup, tq_each_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T_(test_cancel_pending_and_running),
        T_(test_cancel_delayed_and_retry_job),
        T_(test_retry_after_cancel_in_the_list),
        T_(test_purge),
        T_(test_purge_orphaned_task),
        T_(test_retry_moves_legacy_task_fields),
        T_(test_retry_waits_for_running_tasks),
        T_(test_retry_starts_together_anew),
        T_(test_rendezvous_deadline),
        T_(test_rendezvous_input),
        T_(test_rendezvous_poll_lead),
        T_(test_rendezvous_measure),
        T_(test_rendezvous_phase_input),
        T_(test_deadline),
    };
    return cmocka_run_group_tests(tests, tq_setup, tq_teardown);
}
