/*
 * The end of a job against a real redis-server: its state and counts,
 * the `finished` events that name it, its end in its record and retention
 * in the order of <base>:fin, the
 * calls that end the most jobs at once, and the hand-off to the
 * coordinators (llmb_agg_take, llmb_agg_finish).
 *
 * One of the tests of the function library (lua/), through FCALL exactly
 * as workers, the coordinator and redis-cli users call it; each test
 * uses its own key prefix (test_queue_support.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include <llmb/util.h>

#include "test_queue_support.h"

static void test_complete_ends_job(void **state)
{
    struct tq_task t[3];
    char *id;
    int i;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"tasks\":3}");
    assert_int_equal(tq_claim("w1", 3, "30000", t, NULL), 3);
    tq_assert_job(id, "state", "running");
    for (i = 0; i < 3; i++)
        assert_int_equal(tq_complete("w1", &t[i], "{\"ms\": 5}"), 1);
    tq_assert_job(id, "state", "completed");
    tq_assert_job(id, "ok", "3");
    assert_int_equal(tq_zcard("running"), 0);
    assert_int_equal(tq_cmd_int("LLEN %s:done", T.base), 1);
    assert_int_equal(tq_cmd_int("EXISTS %s:wl:w1", T.base), 0);
    tq_assert_job(id, "1:result", "{\"ms\": 5}");
    tq_assert_job(id, "1:state", "completed");
    /* retention: the job has its end in its record and its line in
     * <base>:fin, no TTL */
    assert_true(tq_ended_ms(id) > 0);
    assert_int_equal(tq_cmd_int("LLEN %s:fin", T.base), 1);
    assert_int_equal(tq_cmd_int("TTL %s:j:%s", T.base, id), -1);
    assert_int_equal(tq_cmd_int("TTL %s:jd", T.base), -1);
    free(id);
}

/* Jobs that end in one call share one `finished` event: their ids and
 * states in the same order. A call that ends one job names it. */
static void test_finished_event_per_call(void **state)
{
    struct tq_task t[3];
    char *id[3], *ids, *states;
    redisReply *r, *e;
    int i;

    (void)state;
    for (i = 0; i < 3; i++)
        id[i] = tq_push("{\"type\":\"t\",\"max_retries\":0}");
    assert_int_equal(tq_claim("w1", 3, "30000", t, NULL), 3);
    freeReplyObject(tq_complete_batch(t, 3, 1, "not json", "{}"));
    r = tq_cmd("XREVRANGE %s:events + - COUNT 1", T.base);
    assert_int_equal(r->elements, 1);
    e = r->element[0]->element[1];
    assert_int_equal(e->elements, 8);
    assert_string_equal(e->element[1]->str, "finished");
    assert_string_equal(e->element[2]->str, "jobs");
    assert_string_equal(e->element[3]->str, "3");
    assert_string_equal(e->element[4]->str, "ids");
    assert_string_equal(e->element[6]->str, "states");
    /* in the order the call reported them, the bad result failing its
     * job */
    ids = llmb_xasprintf("%s %s %s", id[0], id[1], id[2]);
    states = llmb_xasprintf("completed failed completed");
    assert_string_equal(e->element[5]->str, ids);
    assert_string_equal(e->element[7]->str, states);
    freeReplyObject(r);
    free(ids);
    free(states);
    for (i = 0; i < 3; i++)
        free(id[i]);

    id[0] = tq_push_and_complete("{\"type\":\"t\"}");
    r = tq_cmd("XREVRANGE %s:events + - COUNT 1", T.base);
    e = r->element[0]->element[1];
    assert_int_equal(e->elements, 6);
    assert_string_equal(e->element[1]->str, "finished");
    assert_string_equal(e->element[2]->str, "job");
    assert_string_equal(e->element[3]->str, id[0]);
    assert_string_equal(e->element[5]->str, "completed");
    freeReplyObject(r);
    free(id[0]);
}

/* Moves the end of job id to 1970 (the time of its end and of its line
 * in <base>:fin), as if it had ended long before any retention. The lines
 * before its line must have been moved too. */
static void ended_long_ago(const char *id)
{
    char *e = tq_job_end(id);
    redisReply *r;
    const char *rest;
    char *end, *line;
    size_t i;

    assert_non_null(e);
    rest = e + 1;
    while (*rest >= '0' && *rest <= '9')
        rest++;
    end = llmb_xasprintf("%c1000%s", e[0], rest);
    tq_job_end_set(id, end);
    free(end);
    free(e);
    r = tq_cmd("LRANGE %s:fin 0 -1", T.base);
    for (i = 0; i < r->elements; i++) {
        const char *ids = strchr(r->element[i]->str, ' ');
        if (ids == NULL || strcmp(ids + 1, id) != 0)
            continue;
        line = llmb_xasprintf("1000 %s", id);
        freeReplyObject(tq_cmd("LSET %s:fin %d %s", T.base, (int)i, line));
        free(line);
        break;
    }
    assert_true(i < r->elements);
    freeReplyObject(r);
}

/* Jobs with an end. */
static long long ended_count(void)
{
    return tq_ended_count();
}

/* The server's count of values freed on its lazyfree thread (UNLINK of a
 * large value), once that thread freed them. */
static long long lazyfreed(void)
{
    redisReply *r = tq_cmd("INFO memory");
    const char *v = strstr(r->str, "lazyfreed_objects:");
    long long n;

    assert_non_null(v);
    n = strtoll(v + strlen("lazyfreed_objects:"), NULL, 10);
    freeReplyObject(r);
    return n;
}

/* Gives job id every per-job key besides its hash: its requeued refs,
 * rendezvous, records (a list of 1,000 chunks of 1 KiB, large enough to
 * be freed on the lazyfree thread), record claims and dataset (as
 * large). */
static void per_job_keys(const char *id)
{
    static const char *const lists[] = {"rec", "ds"};
    char kib[1025];

    memset(kib, 'x', 1024);
    kib[1024] = '\0';
    tq_cmd_int("SADD %s:jr:%s %s:0", T.base, id, id);
    tq_cmd_int("HSET %s:rv:%s n 1", T.base, id);
    tq_cmd_int("HSET %s:rs:%s 0 1:1", T.base, id);
    for (size_t k = 0; k < 2; k++)
        for (int i = 0; i < 1000; i++)
            tq_cmd_int("RPUSH %s:%s:%s %s", T.base, lists[k], id, kib);
}

/* Retention: a job that ended retention_s ago is deleted, with its
 * entries in the job index, the dead set and <base>:ended and its per-job
 * keys (the large ones freed off the server's thread, by UNLINK), by the
 * next call that ends a job or by llmb_reap; younger jobs stay. */
static void test_retention_deletes_old_jobs(void **state)
{
    struct tq_task t[1];
    char *old, *dead, *young;
    redisReply *r;
    long long freed;

    (void)state;
    freeReplyObject(tq_cmd("HSET %s:conf retention_s 3600", T.base));
    old = tq_push_and_complete("{\"type\":\"t\"}");
    dead = tq_push("{\"type\":\"t\",\"max_retries\":0}");
    assert_int_equal(tq_claim("w1", 1, "30000", t, NULL), 1);
    assert_int_equal(tq_fail("w1", &t[0], "fatal", "boom"), 2);
    assert_int_equal(tq_zcard("dead"), 1);
    /* both ended long ago */
    ended_long_ago(old);
    ended_long_ago(dead);
    per_job_keys(old);
    freed = lazyfreed();
    young = tq_push_and_complete("{\"type\":\"t\"}");
    /* ending `young` deleted the two */
    assert_int_equal(tq_cmd_int("EXISTS %s:j:%s %s:j:%s", T.base, old, T.base,
                                dead), 0);
    assert_int_equal(tq_cmd_int("EXISTS %s:jr:%s %s:rv:%s %s:rec:%s %s:rs:%s "
                                "%s:ds:%s",
                                T.base, old, T.base, old, T.base, old, T.base,
                                old, T.base, old),
                     0);
    /* (counted once freed, on the server's other thread) */
    for (int i = 0; i < 200 && lazyfreed() < freed + 2; i++)
        tq_sleep_ms(10);
    assert_true(lazyfreed() >= freed + 2);
    assert_int_equal(tq_cmd_int("HEXISTS %s:jd %s", T.base, old), 0);
    assert_int_equal(tq_cmd_int("HEXISTS %s:jd %s", T.base, dead), 0);
    assert_int_equal(tq_zcard("dead"), 0);
    assert_int_equal(ended_count(), 1);
    assert_int_equal(tq_cmd_int("LLEN %s:fin", T.base), 1);
    assert_int_equal(tq_cmd_int("HLEN %s:jd", T.base), 1);
    assert_int_equal(tq_cmd_int("LLEN %s:jl", T.base), 1);
    tq_assert_job(young, "state", "completed");
    /* a quiet queue: llmb_reap applies it */
    ended_long_ago(young);
    r = tq_fcall("llmb_reap", NULL);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    assert_int_equal(tq_cmd_int("EXISTS %s:j:%s", T.base, young), 0);
    assert_int_equal(ended_count(), 0);
    assert_int_equal(tq_cmd_int("LLEN %s:fin", T.base), 0);
    assert_int_equal(tq_cmd_int("HLEN %s:jd", T.base), 0);
    assert_int_equal(tq_cmd_int("LLEN %s:jl", T.base), 0);
    /* retention_s 0 keeps them */
    freeReplyObject(tq_cmd("HSET %s:conf retention_s 0", T.base));
    free(old);
    old = tq_push_and_complete("{\"type\":\"t\"}");
    ended_long_ago(old);
    freeReplyObject(tq_fcall("llmb_reap", NULL));
    tq_assert_job(old, "state", "completed");
    free(old);
    free(dead);
    free(young);
}

/* A job deleted by hand (its record and its end) and its id pushed
 * again: the new job is not the ended one that <base>:fin names, so
 * retention leaves it and only drops the stale entry. */
static void test_retention_spares_a_job_pushed_again(void **state)
{
    struct tq_task t[1];
    char *id, *again;
    redisReply *r;

    (void)state;
    freeReplyObject(tq_cmd("HSET %s:conf retention_s 3600", T.base));
    id = tq_push_and_complete("{\"type\":\"t\",\"id\":\"same\"}");
    ended_long_ago("same");
    tq_cmd_int("HDEL %s:jd same", T.base);
    again = tq_push("{\"type\":\"t\",\"id\":\"same\"}");
    assert_string_equal(again, "same");
    r = tq_fcall("llmb_reap", NULL);
    freeReplyObject(r);
    tq_assert_job("same", "state", "pending");
    assert_int_equal(tq_stat("pending"), 1);
    assert_int_equal(tq_cmd_int("LLEN %s:pl", T.base), 1);
    assert_int_equal(ended_count(), 0);
    assert_int_equal(tq_cmd_int("LLEN %s:fin", T.base), 0);
    assert_int_equal(tq_cmd_int("HLEN %s:jd", T.base), 1);
    /* it runs and ends as usual, and is listed again */
    assert_int_equal(tq_claim("w1", 1, "30000", t, NULL), 1);
    assert_int_equal(tq_complete("w1", &t[0], "{}"), 1);
    assert_true(tq_ended_ms("same") > 1000);
    free(id);
    free(again);
}

/* Counts the jobs named by `finished` events. */
static long long finished_named(void)
{
    redisReply *r = tq_cmd("XRANGE %s:events - +", T.base);
    long long named = 0;
    size_t i, k;

    for (i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        if (strcmp(f->element[1]->str, "finished") != 0)
            continue;
        if (strcmp(f->element[2]->str, "job") == 0) {
            named++;
            continue;
        }
        assert_string_equal(f->element[2]->str, "jobs");
        k = (size_t)atoll(f->element[3]->str);
        assert_true(k >= 1 && k <= 10);
        named += (long long)k;
    }
    freeReplyObject(r);
    return named;
}

/* Pushes n single-task jobs of document doc, 250 per call (the most). */
static void push_many(int n, const char *doc)
{
    const char *argv[4 + 250];
    int done = 0;

    while (done < n) {
        int k = n - done < 250 ? n - done : 250, argc = 0, i;
        redisReply *r;
        argv[argc++] = "FCALL";
        argv[argc++] = "llmb_push";
        argv[argc++] = "1";
        argv[argc++] = T.base;
        for (i = 0; i < k; i++)
            argv[argc++] = doc;
        r = redisCommandArgv(T.c, argc, argv, NULL);
        assert_non_null(r);
        if (k == 1) { /* one document: its id */
            assert_int_equal(r->type, REDIS_REPLY_STRING);
        } else {
            assert_int_equal(r->type, REDIS_REPLY_ARRAY);
            assert_int_equal(r->elements, (size_t)k);
        }
        freeReplyObject(r);
        done += k;
    }
}

/* The ids listed in the lines of <base>:fin (the order retention
 * deletes in). */
static long long fin_listed(void)
{
    redisReply *r = tq_cmd("LRANGE %s:fin 0 -1", T.base);
    long long n = 0;
    size_t i;

    for (i = 0; i < r->elements; i++)
        for (const char *p = strchr(r->element[i]->str, ' '); p != NULL;
             p = strchr(p + 1, ' '))
            n++;
    freeReplyObject(r);
    return n;
}

/* The aggregate llmb_job answers for the first job listed in <base>:fin
 * must be of state `want`. */
static void first_fin_aggregate(const char *want)
{
    redisReply *r = tq_cmd("LINDEX %s:fin 0", T.base);
    char id[64], *agg, *st;

    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(sscanf(r->str, "%*s %63s", id), 1);
    freeReplyObject(r);
    agg = tq_job_get(id, "aggregate");
    st = llmb_xasprintf("\"state\":\"%s\"", want);
    if (strstr(agg, st) == NULL)
        fail_msg("job %s aggregate %s, want %s", id, agg, st);
    free(st);
    free(agg);
}

/* Calls that end the most jobs one call can: a reap of a worker holding
 * 251 tasks (two batches: 250 and 1) takes back 250 (every job ends) and
 * then 1; a purge ends 250 pending and 250 delayed jobs at once. Every
 * job gets its end in its record, is listed in <base>:fin and is named by
 * a `finished` event, ten per event; none of them (jobs of one task with
 * no result) is handed to the coordinators: llmb_job answers their
 * aggregate. */
static void test_calls_ending_the_most_jobs(void **state)
{
    static struct tq_task t[1000];
    redisReply *r;

    (void)state;
    push_many(251, "{\"type\":\"t\",\"max_retries\":0}");
    /* (a claim touches at most 250 jobs) */
    assert_int_equal(tq_claim("w1", 1000, "30000", t, NULL), 250);
    assert_int_equal(tq_claim("w1", 1000, "30000", t, NULL), 1);
    r = tq_fcall("llmb_reap_worker", "w1", "gone", NULL);
    assert_int_equal(r->integer, 250);
    freeReplyObject(r);
    assert_int_equal(tq_cmd_int("LLEN %s:done", T.base), 0);
    assert_int_equal(ended_count(), 250);
    assert_int_equal(fin_listed(), 250);
    assert_int_equal(finished_named(), 250);
    first_fin_aggregate("failed");
    r = tq_fcall("llmb_reap_worker", "w1", "gone", NULL);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    r = tq_fcall("llmb_reap_worker", "w1", "gone", NULL);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    assert_int_equal(ended_count(), 251);
    assert_int_equal(fin_listed(), 251);
    assert_int_equal(finished_named(), 251);

    push_many(250, "{\"type\":\"t\"}");
    push_many(250, "{\"type\":\"t\",\"delay_s\":600}");
    r = tq_fcall("llmb_purge", "250", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[0]->integer, 500);
    assert_int_equal(r->element[1]->integer, 0);
    freeReplyObject(r);
    assert_int_equal(ended_count(), 751);
    assert_int_equal(fin_listed(), 751);
    assert_int_equal(tq_cmd_int("LLEN %s:done", T.base), 0);
    assert_int_equal(finished_named(), 751);
    assert_int_equal(tq_stat("tasks_cancelled"), 500);
}

static void test_agg_take_and_finish_once(void **state)
{
    struct tq_task t[1];
    redisReply *r;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\"}");
    assert_int_equal(tq_claim("w1", 1, "30000", t, NULL), 1);
    assert_int_equal(tq_complete("w1", &t[0], "{\"x\":1}"), 1);
    r = tq_fcall("llmb_agg_take", "100", "10", NULL);
    assert_int_equal(r->elements, 1);
    assert_string_equal(r->element[0]->str, id);
    freeReplyObject(r);
    /* a coordinator that died: the lease runs out, another takes it */
    tq_sleep_ms(150);
    r = tq_fcall("llmb_agg_take", "30000", "10", NULL);
    assert_int_equal(r->elements, 1);
    freeReplyObject(r);
    r = tq_fcall("llmb_agg_finish", id, "{\"ok\":1}", NULL);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    r = tq_fcall("llmb_agg_finish", id, "{\"ok\":2}", NULL);
    assert_int_equal(r->integer, 0); /* exactly once */
    freeReplyObject(r);
    tq_assert_job(id, "aggregate", "{\"ok\":1}");
    free(id);
}

/* A fan-out job of 3 tasks: its first two handed out and given back
 * (two task refs in <base>:pl; with `back`, behind what waits), its
 * cursor waiting for the third; cancelled, its three members stay listed,
 * out of the pending count. Returns its id. */
static char *left_waiting(const char *worker, bool back)
{
    struct tq_task t[2];
    long long before = tq_cmd_int("LLEN %s:pl", T.base);
    char *id = tq_push("{\"type\":\"t\",\"tasks\":3}");
    char *sub;

    assert_int_equal(tq_claim(worker, 2, "30000", t, NULL), 2);
    if (back)
        freeReplyObject(tq_fcall("llmb_release", worker, "back", t[0].ref,
                                 t[0].tok, t[1].ref, t[1].tok, NULL));
    else
        freeReplyObject(tq_fcall("llmb_release", worker, t[0].ref, t[0].tok,
                                 t[1].ref, t[1].tok, NULL));
    assert_int_equal(tq_int(tq_fcall("llmb_cancel", id, NULL)), 3);
    assert_int_equal(tq_cmd_int("LLEN %s:pl", T.base), before + 3);
    sub = llmb_xasprintf("j:%s", id);
    tq_assert_hget(sub, "stale_refs", "2");
    free(sub);
    return id;
}

/* Once every member left waiting is dropped: <base>:pl empty, wait_p 0,
 * and the next task is counted and claimed. */
static void counted_right(void)
{
    struct tq_task t[1];
    char *next;

    assert_int_equal(tq_cmd_int("LLEN %s:pl", T.base), 0);
    assert_int_equal(tq_stat("pending"), 0);
    tq_assert_hget("counts", "wait_p", "0");
    tq_assert_hget("counts", "stale_refs", "0");
    next = tq_push("{\"type\":\"t\"}");
    assert_int_equal(tq_stat("pending"), 1);
    assert_int_equal(tq_claim("w9", 1, "30000", t, NULL), 1);
    assert_string_equal(t[0].id, next);
    assert_int_equal(tq_complete("w9", &t[0], "{}"), 1);
    ended_long_ago(next); /* (not in the way of the next retention) */
    free(next);
}

/* Members a cancel left in <base>:pl, out of the pending count (a fan-out
 * job's cursor and two task refs), whose job retention deletes before a
 * claim or a purge meets them: they count as pending again until dropped
 * as junk, and the count is right after. Retention by llmb_reap, at the
 * end of a call that ends another job, then a purge instead of a claim,
 * and for a job cancelled, retried and completed while its stale refs
 * still wait behind the rest. */
static void test_retention_of_members_left_waiting(void **state)
{
    struct tq_task t[4];
    char *id, *k;

    (void)state;
    freeReplyObject(tq_cmd("HSET %s:conf retention_s 3600", T.base));

    /* by llmb_reap; a claim drops them */
    id = left_waiting("w1", false);
    assert_int_equal(tq_stat("pending"), 0);
    ended_long_ago(id);
    freeReplyObject(tq_fcall("llmb_reap", NULL));
    assert_int_equal(tq_cmd_int("EXISTS %s:j:%s", T.base, id), 0);
    assert_int_equal(tq_stat("pending"), 3); /* junk, until a claim meets it */
    assert_int_equal(tq_claim("w1", 4, "30000", t, NULL), 0);
    counted_right();
    free(id);

    /* at the end of a call that ends another job (its complete) */
    k = tq_push("{\"type\":\"t\"}");
    assert_int_equal(tq_claim("w2", 1, "30000", t, NULL), 1);
    assert_string_equal(t[0].id, k);
    id = left_waiting("w1", false);
    ended_long_ago(id);
    assert_int_equal(tq_complete("w2", &t[0], "{}"), 1);
    ended_long_ago(k);
    assert_int_equal(tq_cmd_int("EXISTS %s:j:%s", T.base, id), 0);
    assert_int_equal(tq_stat("pending"), 3);
    assert_int_equal(tq_claim("w1", 4, "30000", t, NULL), 0);
    counted_right();
    free(id);
    free(k);

    /* dropped by a purge */
    id = left_waiting("w1", false);
    ended_long_ago(id);
    freeReplyObject(tq_fcall("llmb_reap", NULL));
    assert_int_equal(tq_stat("pending"), 3);
    freeReplyObject(tq_fcall("llmb_purge", NULL));
    counted_right();
    free(id);

    /* cancelled, retried, completed: its end is not a cancel's, and its
     * two stale refs still wait behind */
    id = left_waiting("w1", true);
    assert_int_equal(tq_int(tq_fcall("llmb_retry", id, NULL)), 3);
    assert_int_equal(tq_stat("pending"), 3);
    assert_int_equal(tq_claim("w1", 3, "30000", t, NULL), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(tq_complete("w1", &t[i], "{}"), 1);
    tq_assert_job(id, "state", "completed");
    assert_int_equal(tq_cmd_int("LLEN %s:pl", T.base), 2);
    assert_int_equal(tq_stat("pending"), 0);
    ended_long_ago(id);
    freeReplyObject(tq_fcall("llmb_reap", NULL));
    assert_int_equal(tq_cmd_int("EXISTS %s:j:%s", T.base, id), 0);
    assert_int_equal(tq_stat("pending"), 2);
    assert_int_equal(tq_claim("w1", 4, "30000", t, NULL), 0);
    counted_right();
    free(id);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, tq_each_setup, tq_each_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T_(test_complete_ends_job),
        T_(test_finished_event_per_call),
        T_(test_retention_deletes_old_jobs),
        T_(test_retention_spares_a_job_pushed_again),
        T_(test_retention_of_members_left_waiting),
        T_(test_calls_ending_the_most_jobs),
        T_(test_agg_take_and_finish_once),
    };
    return cmocka_run_group_tests(tests, tq_setup, tq_teardown);
}
