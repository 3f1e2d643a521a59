/*
 * The edges where a task could be lost or an outcome recorded twice, one
 * test per case, through FCALL as the programs and redis-cli users call
 * the library: settings at the ends of their ranges and around each chunk
 * size, fan-outs of millions of tasks, retries racing aggregation, junk in
 * every key, and tokens that must not open another worker's lease.
 * Processes (worker, coordinator) are tested in their own files; these
 * pin the contract of the functions they call.
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

#include "fixture.h"
#include "test_queue_support.h"

#define SECRET_A "0123456789abcdef0123456789abcdef"
#define SECRET_B "fedcba9876543210fedcba9876543210"

/* Pushes n single-task jobs of document doc, 250 per call (the most). */
static void push_n(int n, const char *doc)
{
    const char **argv = llmb_xcalloc(4 + 250, sizeof(*argv));

    for (int done = 0; done < n;) {
        int k = n - done < 250 ? n - done : 250, argc = 0;
        redisReply *r;
        argv[argc++] = "FCALL";
        argv[argc++] = "llmb_push";
        argv[argc++] = "1";
        argv[argc++] = T.base;
        for (int i = 0; i < k; i++)
            argv[argc++] = doc;
        r = redisCommandArgv(T.c, argc, argv, NULL);
        assert_non_null(r);
        assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
        freeReplyObject(r);
        done += k;
    }
    free(argv);
}

/* An error reply holding `want`. */
static void assert_error(redisReply *r, const char *want)
{
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    if (strstr(r->str, want) == NULL)
        fail_msg("error \"%s\" does not say \"%s\"", r->str, want);
    freeReplyObject(r);
}

/* LLEN of queue key <base>:<sub>. */
static long long llen(const char *sub)
{
    return tq_cmd_int("LLEN %s:%s", T.base, sub);
}

/* Case 1: 5,000 due delayed tasks promoted with a limit above the chunk
 * size. Before, a promote of 5,000 took them out of the delayed set and
 * failed to add them to the pending one (unpack of 10,000 values): lost.
 * Now a call promotes at most 250 (the limit's range is 0..250, a larger
 * one is refused before anything is written) and the caller calls again;
 * every task arrives. */
static void test_promote_5000_loses_nothing(void **state)
{
    long long moved = 0, n;

    (void)state;
    push_n(5000, "{\"type\":\"t\",\"delay_s\":0.05}");
    tq_sleep_ms(120);
    assert_error(tq_fcall("llmb_promote", "5000", NULL),
                 "[limit 0..250]");
    assert_int_equal(tq_zcard("pd"), 5000);
    assert_int_equal(tq_int(tq_fcall("llmb_promote", "0", NULL)), 0);
    assert_int_equal(tq_int(tq_fcall("llmb_promote", "1", NULL)), 1);
    assert_error(tq_fcall("llmb_promote", "251", NULL), "[limit 0..250]");
    while ((n = tq_int(tq_fcall("llmb_promote", "250", NULL))) > 0) {
        assert_true(n <= 250);
        moved += n;
    }
    assert_int_equal(moved, 4999);
    assert_int_equal(tq_zcard("pd"), 0);
    assert_int_equal(llen("pl"), 5000);
    assert_int_equal(tq_stat("pending"), 5000);
    /* a claim promotes too, 250 at most per call */
    push_n(300, "{\"type\":\"t\",\"delay_s\":0.05}");
    tq_sleep_ms(120);
    {
        static struct tq_task t[1000];
        assert_int_equal(tq_claim("w", 1, "30000", t, NULL), 1);
    }
    assert_int_equal(tq_zcard("pd"), 50);
}

/* Case 2: heartbeats of a worker holding more leases than one call takes.
 * 1,000 leases renew in one call; 1,001 are refused whole with a clear
 * error (nothing renewed, nothing dropped), so a worker splits them. */
static void test_heartbeat_at_the_call_limit(void **state)
{
    static struct tq_task t[1000];
    const char **argv = llmb_xcalloc(6 + 2 * 1001, sizeof(*argv));
    int argc = 0;
    redisReply *r;

    (void)state;
    tq_cmd_int("HSET %s:conf max_tasks 2000", T.base);
    free(tq_push("{\"type\":\"t\",\"tasks\":1001}"));
    assert_int_equal(tq_claim_secret("w", 1000, "30000", SECRET_A, t, NULL),
                     1000);
    argv[argc++] = "FCALL";
    argv[argc++] = "llmb_heartbeat";
    argv[argc++] = "1";
    argv[argc++] = T.base;
    argv[argc++] = "w";
    argv[argc++] = "60000";
    for (int i = 0; i < 1000; i++) {
        argv[argc++] = t[i].ref;
        argv[argc++] = t[i].tok;
    }
    r = redisCommandArgv(T.c, argc, argv, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 0); /* nothing to stop */
    freeReplyObject(r);
    /* every lease was extended to about now + 60 s */
    r = tq_cmd("ZRANGEBYSCORE %s:running -inf (%lld", T.base,
               (long long)llmb_now_ms() + 45000);
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    argv[argc++] = t[0].ref;
    argv[argc++] = t[0].tok;
    r = redisCommandArgv(T.c, argc, argv, NULL);
    assert_error(r, "at most 1000 leases per call, got 1001");
    free(argv);
}

/* Case 3: a fan-out job is pushed, claimed, cancelled and retried in O(1)
 * whatever its size: 10,000,000 tasks wait as one member. */
static void test_ten_million_task_job(void **state)
{
    static struct tq_task t[1000];
    char *id;

    (void)state;
    assert_error(tq_fcall("llmb_push", "{\"type\":\"t\",\"tasks\":10000000}",
                          NULL),
                 "job field \"tasks\" must be an integer from 1 to 100000");
    tq_cmd_int("HSET %s:conf max_tasks 10000000", T.base);
    id = tq_push("{\"type\":\"t\",\"tasks\":10000000}");
    assert_int_equal(llen("pl"), 1);
    assert_int_equal(tq_stat("pending"), 10000000);
    assert_int_equal(tq_claim("w", 1000, "30000", t, NULL), 1000);
    assert_int_equal(t[999].idx, 999);
    assert_int_equal(tq_stat("pending"), 10000000 - 1000);
    assert_int_equal(tq_complete("w", &t[0], "{}"), 1);
    assert_int_equal(tq_fail("w", &t[1], "fatal", "no"), 2);
    /* the cancel removes every task not handed out, at once */
    assert_int_equal(tq_int(tq_fcall("llmb_cancel", id, NULL)),
                     10000000 - 1000);
    /* (its cursor stays in <base>:pl, which the count leaves out) */
    assert_int_equal(tq_zcard("pz"), 0);
    assert_int_equal(tq_stat("pending"), 0);
    tq_assert_job(id, "state", "cancelled");
    tq_assert_job(id, "left", "998");
    /* the running ones stop at their heartbeat, then the job ends */
    {
        const char **argv = llmb_xcalloc(6 + 2 * 998, sizeof(*argv));
        int argc = 0;
        redisReply *r;
        argv[argc++] = "FCALL";
        argv[argc++] = "llmb_heartbeat";
        argv[argc++] = "1";
        argv[argc++] = T.base;
        argv[argc++] = "w";
        argv[argc++] = "30000";
        for (int i = 2; i < 1000; i++) {
            argv[argc++] = t[i].ref;
            argv[argc++] = t[i].tok;
        }
        r = redisCommandArgv(T.c, argc, argv, NULL);
        assert_int_equal(r->elements, 2 * 998);
        assert_string_equal(r->element[1]->str, "cancelled");
        freeReplyObject(r);
        free(argv);
    }
    tq_assert_job(id, "state", "cancelled");
    tq_assert_job(id, "ok", "1");
    tq_assert_job(id, "failed", "1");
    assert_int_equal(tq_stat("tasks_cancelled"), 10000000 - 2);
    /* a retry waits again in O(1): the task that completed is skipped */
    assert_int_equal(tq_int(tq_fcall("llmb_retry", id, NULL)),
                     10000000 - 1);
    assert_int_equal(llen("pl"), 1); /* the cursor, once */
    assert_int_equal(tq_stat("pending"), 10000000 - 1);
    tq_assert_job(id, "version", "1");
    assert_int_equal(tq_claim("w2", 3, "30000", t, NULL), 3);
    assert_int_equal(t[0].idx, 1);
    assert_int_equal(t[1].idx, 2);
    assert_int_equal(t[0].attempt, 1);
    /* and a purge of it is one call */
    {
        redisReply *r = tq_fcall("llmb_purge", "250", NULL);
        assert_int_equal(r->element[0]->integer, 1);
        assert_int_equal(r->element[1]->integer, 0);
        freeReplyObject(r);
    }
    assert_int_equal(tq_stat("pending"), 0);
    free(id);
}

/* Case 3 too: one push call takes at most 250 jobs; more are refused
 * whole, before anything is written. */
static void test_push_call_limit(void **state)
{
    const char **argv = llmb_xcalloc(4 + 251, sizeof(*argv));
    redisReply *r;
    int argc = 0;

    (void)state;
    argv[argc++] = "FCALL";
    argv[argc++] = "llmb_push";
    argv[argc++] = "1";
    argv[argc++] = T.base;
    for (int i = 0; i < 251; i++)
        argv[argc++] = "{\"type\":\"t\",\"tasks\":100000}";
    r = redisCommandArgv(T.c, argc, argv, NULL);
    assert_error(r, "llmb_push takes at most 250 jobs per call, got 251");
    assert_int_equal(tq_cmd_int("EXISTS %s:pl %s:jd %s:jl", T.base, T.base,
                                T.base),
                     0);
    r = redisCommandArgv(T.c, argc - 1, argv, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 250);
    freeReplyObject(r);
    /* 25,000,000 tasks behind 250 members */
    assert_int_equal(llen("pl"), 250);
    assert_int_equal(tq_stat("pending"), 25000000);
    free(argv);
}

/* A claim hands out up to 1,000 tasks but touches at most 250 jobs: a
 * batch of single-task jobs stops at 250, a fan-out fills it. */
static void test_claim_touches_at_most_250_jobs(void **state)
{
    static struct tq_task t[1000];

    (void)state;
    push_n(600, "{\"type\":\"t\"}");
    assert_int_equal(tq_claim("w", 1000, "30000", t, NULL), 250);
    assert_int_equal(tq_claim("w", 1000, "30000", t, NULL), 250);
    free(tq_push("{\"type\":\"t\",\"tasks\":5000}"));
    /* 100 single-task jobs, then 900 tasks of the fan-out */
    assert_int_equal(tq_claim("w", 1000, "30000", t, NULL), 1000);
    assert_int_equal(tq_claim("w", 1000, "30000", t, NULL), 1000);
    assert_int_equal(tq_stat("pending"), 5000 - 1900);
}

/* Case 4: a job retried while a coordinator aggregates its first run.
 * The coordinator read version 0; the retry bumps it, the job runs again
 * and ends, and a second take leases it again: the stale aggregate is
 * refused (-1) and changes nothing; the aggregate of the new run is the
 * one stored. */
static void test_retry_racing_aggregation(void **state)
{
    struct tq_task t[2];
    redisReply *r;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\",\"tasks\":2,\"max_retries\":0}");
    assert_int_equal(tq_claim("w", 2, "30000", t, NULL), 2);
    assert_int_equal(tq_fail("w", &t[0], "fatal", "boom"), 2);
    assert_int_equal(tq_complete("w", &t[1], "{}"), 1);
    tq_assert_job(id, "state", "failed");
    r = tq_fcall("llmb_agg_take", "60000", "10", NULL);
    assert_int_equal(r->elements, 1);
    freeReplyObject(r);
    tq_assert_job(id, "version", ""); /* 0 */
    assert_int_equal(tq_int(tq_fcall("llmb_retry", id, NULL)), 1);
    tq_assert_job(id, "version", "1");
    assert_int_equal(tq_claim("w", 2, "30000", t, NULL), 1);
    assert_int_equal(t[0].idx, 0);
    assert_int_equal(tq_complete("w", &t[0], "{}"), 1);
    tq_assert_job(id, "state", "completed");
    tq_assert_job(id, "ok", "2");
    r = tq_fcall("llmb_agg_take", "60000", "10", NULL);
    assert_int_equal(r->elements, 1);
    freeReplyObject(r);
    /* the first computation, of version 0, arrives now */
    assert_int_equal(tq_int(tq_fcall("llmb_agg_finish", id,
                                        "{\"state\":\"failed\"}", "0", NULL)),
                     -1);
    tq_assert_job(id, "aggregate", "");
    /* the right one is stored, once */
    assert_int_equal(tq_int(tq_fcall("llmb_agg_finish", id,
                                        "{\"state\":\"completed\"}", "1",
                                        NULL)),
                     1);
    tq_assert_job(id, "aggregate", "{\"state\":\"completed\"}");
    assert_int_equal(tq_int(tq_fcall("llmb_agg_finish", id,
                                        "{\"state\":\"completed\"}", "1",
                                        NULL)),
                     0);
    free(id);
}

/* The field head_type of llmb_stats must be want. */
static void head_type_is(const char *want)
{
    redisReply *r = tq_fcall("llmb_stats", NULL);
    const char *got = NULL;

    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (strcmp(r->element[i]->str, "head_type") == 0)
            got = r->element[i + 1]->str;
    assert_non_null(got);
    assert_string_equal(got, want);
    freeReplyObject(r);
}

/* Case 7: junk in every set of the queue is skipped and counted, never
 * fatal: stats, claim, promote, reap and purge go on; a key of the wrong
 * type is named by stats and refused by every writing function before it
 * writes. */
static void test_junk_everywhere(void **state)
{
    struct tq_task t[10];
    redisReply *r;
    char *id;
    long long junk;

    (void)state;
    /* members that name no task (no record, or no member's shape) */
    tq_cmd_int("ZADD %s:pz -1e15 nocolon -1e15 :5 -1e15 x:abc "
               "-1e15 gone:0 -1e15 gone:*",
               T.base);
    tq_cmd_int("RPUSH %s:pl gone:2 :", T.base);
    tq_cmd_int("ZADD %s:pd 0 junk 0 gone:1 0 gone:*", T.base);
    /* held tokens of batches without a lease record */
    tq_cmd_int("ZADD %s:running 0 junk 0 77.abc", T.base);
    /* stats: the head is junk; the real task behind it gives the age */
    id = tq_push("{\"type\":\"t\"}");
    assert_int_equal(tq_stat("pending"), 8);
    r = tq_fcall("llmb_stats", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    head_type_is("t");
    assert_int_equal(tq_int(tq_fcall("llmb_promote", "250", NULL)), 0);
    assert_int_equal(tq_zcard("pd"), 0);
    assert_int_equal(tq_claim("w", 10, "30000", t, NULL), 1);
    assert_string_equal(t[0].id, id);
    assert_int_equal(tq_int(tq_fcall("llmb_reap", "250", NULL)), 2);
    assert_int_equal(tq_zcard("running"), 1);
    assert_int_equal(tq_zcard("pz"), 0);
    assert_int_equal(llen("pl"), 0);
    assert_int_equal(tq_stat("pending"), 0);
    junk = tq_stat("junk");
    assert_true(junk >= 12);
    assert_int_equal(tq_complete("w", &t[0], "{}"), 1);
    tq_assert_job(id, "state", "completed");
    /* a fan-out job whose hash is not a hash, and a record that is no
     * record: their members are dropped as junk */
    freeReplyObject(tq_cmd("HSET %s:jd strjob p1\tt\tn2\t{} strrec x",
                           T.base));
    freeReplyObject(tq_cmd("SET %s:j:strjob x", T.base));
    tq_cmd_int("RPUSH %s:pl strjob:0 strrec", T.base);
    assert_int_equal(tq_claim("w", 10, "30000", t, NULL), 0);
    assert_int_equal(tq_stat("junk"), junk + 2);
    assert_int_equal(llen("pl"), 0);
    /* a queue key of the wrong type: named by stats, refused by writers */
    freeReplyObject(tq_cmd("DEL %s:counts", T.base));
    freeReplyObject(tq_cmd("SET %s:counts x", T.base));
    r = tq_fcall("llmb_stats", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_string_equal(r->element[r->elements - 2]->str, "wrong_keys");
    assert_non_null(strstr(r->element[r->elements - 1]->str, ":counts"));
    freeReplyObject(r);
    assert_error(tq_fcall("llmb_push", "{\"type\":\"t\"}", NULL),
                 "is a string, llmb expects a hash");
    assert_int_equal(llen("pl"), 0);
    assert_error(tq_fcall("llmb_claim", "w", "1", "30000", NULL),
                 "is a string, llmb expects a hash");
    free(id);
}

/* The queue keys (ALL_KEYS of lua/00-header.lua), and a command that
 * makes one of the wrong type. */
static const char *const queue_keys[] = {
    "jd", "je", "jl", "pl", "pz", "pd", "run", "lease", "running", "att",
    "cx", "fin", "deadlines", "dead", "aggr", "done", "wake", "events",
    "counts", "conf", "seq", "idseq", "tok", "paused", "jec",
};

static void break_key(const char *suffix)
{
    int is_string = strcmp(suffix, "seq") == 0 ||
                    strcmp(suffix, "idseq") == 0 || strcmp(suffix, "tok") == 0 ||
                    strcmp(suffix, "paused") == 0 ||
                    strcmp(suffix, "jec") == 0;

    freeReplyObject(tq_cmd("DEL %s:%s", T.base, suffix));
    if (is_string)
        freeReplyObject(tq_cmd("RPUSH %s:%s x", T.base, suffix));
    else
        freeReplyObject(tq_cmd("SET %s:%s x", T.base, suffix));
}

/* Deletes every key of the queue. */
static void queue_clear(void)
{
    redisReply *r = tq_cmd("KEYS %s*", T.base);
    for (size_t i = 0; i < r->elements; i++)
        freeReplyObject(tq_cmd("DEL %s", r->element[i]->str));
    freeReplyObject(r);
}

/* A reply that is no error, or the refusal that names a key of the wrong
 * type: never an error from a command that met that key mid-call (Redis
 * keeps what the call wrote before it). */
static void assert_refused_or_done(redisReply *r, const char *fn,
                                   const char *suffix)
{
    if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "llmb expects") == NULL)
        fail_msg("%s with %s:%s of the wrong type stopped mid-call: %s", fn,
                 T.base, suffix, r->str);
    freeReplyObject(r);
}

/* A job that ended long ago (its record with its end at 1 ms in front,
 * and its line in <base>:fin) with retention_s 1: a call that ends a job
 * then also reaches retention's keys (jd, jl, fin, dead). */
static void old_ended(void)
{
    freeReplyObject(tq_cmd("HSET %s:conf retention_s 1", T.base));
    freeReplyObject(tq_cmd("HSET %s:jd old %s", T.base,
                           "F1 1 w\t1\txp1\tt\t\t{}"));
    freeReplyObject(tq_cmd("ZADD %s:dead 1 old", T.base));
    freeReplyObject(tq_cmd("RPUSH %s:jl old", T.base));
    freeReplyObject(tq_cmd("LPUSH %s:fin %s", T.base, "1 old")); /* oldest */
}

/* old_ended(), and a fan-out job cancelled while one of its task refs
 * still waits (in <base>:pl and <base>:jr:<id>, as a cancel beyond its
 * refs leaves it, and a member the cancel ended left in <base>:pl): a
 * claim that meets them ends the job. Returns its id. */
static char *old_ended_and_cancelled_waiting(void)
{
    struct tq_task t[2];
    redisReply *r;
    char *c;

    c = tq_push("{\"type\":\"t\",\"tasks\":2}");
    assert_int_equal(tq_claim("w0", 2, "30000", t, NULL), 2);
    r = tq_fcall("llmb_release", "w0", t[0].ref, t[0].tok, t[1].ref,
                 t[1].tok, NULL);
    freeReplyObject(r);
    assert_int_equal(tq_int(tq_fcall("llmb_cancel", c, NULL)), 2);
    /* as if task 1 were past the cancel's CANCEL_REFS_MAX */
    tq_cmd_int("SADD %s:jr:%s %s", T.base, c, t[1].ref);
    tq_job_end_clear(c);
    freeReplyObject(tq_cmd("HSET %s:j:%s state cancelled left 1 cancelled 1 "
                           "1:state pending",
                           T.base, c));
    assert_int_equal(llen("pl"), 2);
    old_ended();
    return c;
}

/* What the claim of test_wrong_key_refused_before_writes meets: a task
 * that failed once, waiting its backoff (at least 500 ms), then made due
 * (the claim promotes it and reads <base>:att); the cancelled job of
 * old_ended_and_cancelled_waiting(), whose id it returns, and the old
 * ended job; a job waiting and a delayed one come due. */
static char *claim_setup(void)
{
    struct tq_task t[1];
    char *c;

    free(tq_push("{\"type\":\"t\",\"max_retries\":1}"));
    assert_int_equal(tq_claim("w0", 1, "30000", t, NULL), 1);
    assert_int_equal(tq_fail("w0", &t[0], "error", "x"), 1);
    c = old_ended_and_cancelled_waiting();
    freeReplyObject(tq_cmd("ZADD %s:pd 0 %s", T.base, t[0].ref));
    free(tq_push("{\"type\":\"t\"}"));
    free(tq_push("{\"type\":\"t\",\"delay_s\":0.001}"));
    tq_sleep_ms(5);
    return c;
}

/* Fields of <base>:counts and a job's stale_refs that are no whole number
 * (written by hand): the calls that count into them still complete and
 * their writes all stand; the count of the call replaces the field. */
static void test_counts_not_numbers(void **state)
{
    static const char *const fields[] = {"ok", "cancelled", "junk", "wait_p",
                                         "jl_cut", "stale_refs"};
    struct tq_task t[4];
    char *a, *b, *sub, *v;

    (void)state;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        freeReplyObject(tq_cmd("HSET %s:counts %s x", T.base, fields[i]));
    /* ok */
    a = tq_push("{\"type\":\"t\"}");
    assert_int_equal(tq_claim("w", 1, "30000", t, NULL), 1);
    assert_int_equal(tq_complete("w", &t[0], "{}"), 1);
    tq_assert_job(a, "state", "completed");
    tq_assert_hget("counts", "ok", "1");
    /* cancelled, wait_p and stale_refs: a fan-out job's two tasks given
     * back, then cancelled (three members left waiting) */
    b = tq_push("{\"type\":\"t\",\"tasks\":3}");
    assert_int_equal(tq_claim("w", 2, "30000", t, NULL), 2);
    freeReplyObject(tq_fcall("llmb_release", "w", t[0].ref, t[0].tok,
                             t[1].ref, t[1].tok, NULL));
    assert_int_equal(tq_int(tq_fcall("llmb_cancel", b, NULL)), 3);
    tq_assert_job(b, "state", "cancelled");
    tq_assert_hget("counts", "cancelled", "3");
    tq_assert_hget("counts", "wait_p", "-3");
    tq_assert_hget("counts", "stale_refs", "2");
    assert_int_equal(tq_stat("pending"), 0);
    /* the job's own count, then a claim that drops the three */
    sub = llmb_xasprintf("j:%s", b);
    freeReplyObject(tq_cmd("HSET %s:%s stale_refs x", T.base, sub));
    assert_int_equal(tq_claim("w", 4, "30000", t, NULL), 0);
    assert_int_equal(tq_cmd_int("LLEN %s:pl", T.base), 0);
    tq_assert_hget(sub, "stale_refs", "");
    tq_assert_hget("counts", "wait_p", "0");
    assert_int_equal(tq_stat("pending"), 0);
    free(sub);
    /* jl_cut: retention deletes both jobs and cuts them from <base>:jl */
    freeReplyObject(tq_cmd("HSET %s:conf retention_s 1", T.base));
    tq_sleep_ms(1100);
    freeReplyObject(tq_fcall("llmb_reap", NULL));
    assert_int_equal(tq_cmd_int("HLEN %s:jd", T.base), 0);
    assert_int_equal(tq_cmd_int("LLEN %s:jl", T.base), 0);
    tq_assert_hget("counts", "jl_cut", "2");
    /* junk: a member naming no task */
    tq_cmd_int("RPUSH %s:pl nojob:1", T.base);
    assert_int_equal(tq_claim("w", 1, "30000", t, NULL), 0);
    v = tq_hget("counts", "junk");
    assert_true(atoll(v) >= 1);
    free(v);
    free(a);
    free(b);
}

/* Case 7 too: each function checks the types of the queue keys it may touch
 * (not all of them), so a key of the wrong type must still be refused
 * before anything is written. For every queue key and each function of
 * KEYS_OF (lua/00-header.lua) but the rendezvous (below), the call goes
 * through the paths that touch the most keys: pushes of delayed, deadline,
 * fan-out and prioritized jobs; a claim that promotes and ends a cancelled job;
 * completions that end a job, retry one and fail one for good; a
 * heartbeat that ends a cancelled job; each end of a job with an old
 * ended job for retention to delete; a pause, and a resume that wakes
 * workers for a waiting job. */
static void test_wrong_key_refused_before_writes(void **state)
{
    struct tq_task t[4];
    char *a, *b;

    (void)state;
    /* (the claim's path, with every key right) */
    a = claim_setup();
    assert_int_equal(tq_claim("w", 10, "30000", t, NULL), 3);
    assert_int_equal(t[0].attempt + t[1].attempt + t[2].attempt, 4);
    tq_assert_job(a, "state", "cancelled");
    tq_assert_job(a, "cancelled", "2");
    assert_int_equal(tq_cmd_int("HEXISTS %s:jd old", T.base), 0);
    assert_int_equal(llen("pl"), 0);
    assert_int_equal(tq_stat("pending"), 0);
    free(a);
    /* (and the pushes': a job waits in each of <base>:pl, :pz and :pd) */
    queue_clear();
    {
        redisReply *r = tq_fcall("llmb_push_fields", "", "t", "{}", "", "2",
                                 "", "", "", "5", "60", "", "t", "{}", "5",
                                 "", "", "", "", "", "", "", "t", "{}", "",
                                 "", "", "", "", "", "", NULL);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        assert_int_equal(r->elements, 3);
        for (size_t i = 0; i < 3; i++)
            assert_int_equal(r->element[i]->type, REDIS_REPLY_STRING);
        freeReplyObject(r);
    }
    assert_int_equal(llen("pl"), 1);
    assert_int_equal(tq_zcard("pz"), 1);
    assert_int_equal(tq_zcard("pd"), 1);
    for (size_t k = 0; k < sizeof(queue_keys) / sizeof(*queue_keys); k++) {
        const char *sfx = queue_keys[k];

        queue_clear();
        break_key(sfx);
        assert_refused_or_done(
            tq_fcall("llmb_push", "{\"type\":\"t\",\"delay_s\":5,\"deadline_s\":60}",
                     "{\"type\":\"t\",\"tasks\":2}",
                     "{\"type\":\"t\",\"priority\":5}", NULL),
            "llmb_push", sfx);
        queue_clear();
        break_key(sfx);
        assert_refused_or_done(
            tq_fcall("llmb_push_fields", "", "t", "{}", "", "2", "", "", "",
                     "5", "60", "", "t", "{}", "5", "", "", "", "", "", "",
                     "", "t", "{}", "", "", "", "", "", "", "", NULL),
            "llmb_push_fields", sfx);

        queue_clear();
        free(claim_setup());
        break_key(sfx);
        assert_refused_or_done(tq_fcall("llmb_claim", "w", "10", "30000", NULL),
                               "llmb_claim", sfx);

        queue_clear();
        a = tq_push("{\"type\":\"t\",\"max_retries\":1}");
        free(tq_push("{\"type\":\"t\",\"max_retries\":0}"));
        free(tq_push("{\"type\":\"t\"}"));
        assert_int_equal(tq_claim("w", 3, "30000", t, NULL), 3);
        old_ended();
        break_key(sfx);
        assert_refused_or_done(
            tq_fcall("llmb_complete", "w", t[0].ref, t[0].tok, "[1]", t[1].ref,
                     t[1].tok, "[2]", t[2].ref, t[2].tok, "{}", NULL),
            "llmb_complete", sfx);
        free(a);

        queue_clear();
        b = tq_push("{\"type\":\"t\"}");
        assert_int_equal(tq_claim("w", 1, "30000", t, NULL), 1);
        freeReplyObject(tq_fcall("llmb_cancel", b, NULL));
        old_ended();
        break_key(sfx);
        assert_refused_or_done(
            tq_fcall("llmb_heartbeat", "w", "30000", t[0].ref, t[0].tok, NULL),
            "llmb_heartbeat", sfx);
        free(b);

        queue_clear();
        break_key(sfx);
        assert_refused_or_done(tq_fcall("llmb_pause", NULL), "llmb_pause",
                               sfx);
        queue_clear();
        free(tq_push("{\"type\":\"t\"}"));
        freeReplyObject(tq_cmd("SET %s:paused 1", T.base));
        break_key(sfx);
        assert_refused_or_done(tq_fcall("llmb_resume", NULL), "llmb_resume",
                               sfx);
    }
}

/* A `paused` key of another type than a string would stop every claim
 * (llmb_claim asks only whether it exists): refused, and named by stats.
 * A rendezvous, polled by each waiting task (every 20 to 500 ms), checks
 * only the key it may write (counts): another key of the wrong type does
 * not stop it. */
static void test_paused_and_rendezvous_keys(void **state)
{
    struct tq_task t[1];
    redisReply *r;
    char *id;

    (void)state;
    id = tq_push("{\"type\":\"t\"}");
    freeReplyObject(tq_cmd("RPUSH %s:paused x", T.base));
    assert_error(tq_fcall("llmb_claim", "w", "1", "30000", NULL),
                 "is a list, llmb expects a string");
    r = tq_fcall("llmb_stats", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_string_equal(r->element[r->elements - 2]->str, "wrong_keys");
    assert_non_null(strstr(r->element[r->elements - 1]->str, ":paused"));
    freeReplyObject(r);
    freeReplyObject(tq_cmd("DEL %s:paused", T.base));
    assert_int_equal(tq_claim("w", 1, "30000", t, NULL), 1);
    freeReplyObject(tq_cmd("SET %s:pd x", T.base));
    r = tq_fcall("llmb_rendezvous", "w", t[0].ref, t[0].tok, "60000", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 7);
    assert_int_equal(tq_reply_int_at(r, 3), 1);
    freeReplyObject(r);
    freeReplyObject(tq_cmd("DEL %s:counts", T.base));
    freeReplyObject(tq_cmd("SET %s:counts x", T.base));
    assert_error(
        tq_fcall("llmb_rendezvous", "w", t[0].ref, t[0].tok, "60000", NULL),
        "is a string, llmb expects a hash");
    free(id);
}

/* Case 9: a token opens only the lease it was handed for. The lease keys,
 * readable by every worker credential, hold a hash of the secret (the
 * held token, in <base>:run, <base>:lease, <base>:running and
 * <base>:wl:<worker>): it is no token; a plain "<seq>" opens no lease
 * claimed with a secret; another worker's secret opens nothing. */
static void test_tokens_not_forgeable(void **state)
{
    struct tq_task t[2];
    redisReply *r;
    char *id, *stored, forged[64];

    (void)state;
    id = tq_push("{\"type\":\"t\",\"tasks\":2}");
    assert_int_equal(tq_claim_secret("wa", 2, "30000", SECRET_A, t, NULL), 2);
    assert_non_null(strstr(t[0].tok, "." SECRET_A));
    stored = tq_hget("run", t[0].ref);
    assert_true(stored[0] != '\0');
    assert_null(strstr(stored, SECRET_A));
    assert_int_equal(tq_cmd_int("SISMEMBER %s:wl:wa %s", T.base, stored), 1);
    assert_int_equal(tq_cmd_int("HEXISTS %s:lease %s", T.base, stored), 1);
    {
        char *rec = tq_hget("lease", stored);
        assert_null(strstr(rec, SECRET_A));
        free(rec);
    }
    /* what is stored is no token */
    r = tq_fcall("llmb_complete", "wa", t[0].ref, stored, "{}", NULL);
    assert_int_equal(tq_reply_int_at(r, 0), 0);
    freeReplyObject(r);
    /* nor is the sequence alone, nor another secret */
    snprintf(forged, sizeof(forged), "%.*s", (int)strcspn(t[0].tok, "."),
             t[0].tok);
    r = tq_fcall("llmb_complete", "wa", t[0].ref, forged, "{}", NULL);
    assert_int_equal(tq_reply_int_at(r, 0), 0);
    freeReplyObject(r);
    snprintf(forged, sizeof(forged), "%.*s.%s", (int)strcspn(t[0].tok, "."),
             t[0].tok, SECRET_B);
    r = tq_fcall("llmb_complete", "wa", t[0].ref, forged, "{}", NULL);
    assert_int_equal(tq_reply_int_at(r, 0), 0);
    freeReplyObject(r);
    r = tq_fcall("llmb_heartbeat", "wa", "30000", t[0].ref, stored, NULL);
    assert_int_equal(r->elements, 2);
    assert_string_equal(r->element[1]->str, "lost");
    freeReplyObject(r);
    r = tq_fcall("llmb_release", "wa", t[0].ref, forged, NULL);
    assert_int_equal(tq_reply_int_at(r, 0), 0);
    freeReplyObject(r);
    /* the real token does */
    assert_int_equal(tq_complete("wa", &t[0], "{}"), 1);
    assert_int_equal(tq_fail("wa", &t[1], "error", "x"), 1);
    /* a secret must be 16..128 letters and digits */
    assert_error(tq_fcall("llmb_claim", "wa", "1", "30000", "250", "short",
                          NULL),
                 "secret: 16..128 letters and digits");
    free(stored);
    free(id);
}

/* A cancel removes at most 1,000 waiting refs of a fan-out job outside its
 * cursor (retried, released, lost): here 1,200 lost with their worker.
 * The 200 left still wait; a purge (or a claim) ends them as cancelled,
 * and the job ends with every task counted once. (The 1,000 ended stay in
 * <base>:pl, which a cancel does not walk, out of the pending count; the
 * purge drops them too.) */
static void test_cancel_beyond_its_refs(void **state)
{
    static struct tq_task t[1000];
    redisReply *r;
    char *id;

    (void)state;
    tq_cmd_int("HSET %s:conf max_tasks 2000", T.base);
    id = tq_push("{\"type\":\"t\",\"tasks\":1200,\"max_retries\":5}");
    assert_int_equal(tq_claim("w", 1000, "30000", t, NULL), 1000);
    assert_int_equal(tq_claim("w", 1000, "30000", t, NULL), 200);
    while (tq_int(tq_fcall("llmb_reap_worker", "w", "gone", NULL)) > 0)
        ;
    assert_int_equal(llen("pl"), 1200);
    assert_int_equal(tq_stat("pending"), 1200);
    assert_int_equal(tq_cmd_int("SCARD %s:jr:%s", T.base, id), 1200);
    assert_int_equal(tq_int(tq_fcall("llmb_cancel", id, NULL)), 1000);
    assert_int_equal(tq_stat("pending"), 200);
    assert_int_equal(tq_cmd_int("SCARD %s:jr:%s", T.base, id), 200);
    tq_assert_job(id, "state", "cancelled");
    tq_assert_job(id, "left", "200");
    /* cancelling again says so and changes nothing */
    assert_error(tq_fcall("llmb_cancel", id, NULL), "has already been cancelled");
    /* 250 members per call: five calls */
    for (int i = 0; i < 5; i++) {
        r = tq_fcall("llmb_purge", "250", NULL);
        assert_int_equal(r->element[0]->integer, 0); /* none newly cancelled */
        assert_int_equal(r->element[1]->integer, 1200 - 250 * (i + 1) > 0
                                                     ? 1200 - 250 * (i + 1)
                                                     : 0);
        freeReplyObject(r);
    }
    assert_int_equal(llen("pl"), 0);
    assert_int_equal(tq_stat("pending"), 0);
    tq_assert_job(id, "left", "0");
    tq_assert_job(id, "cancelled", "1200");
    tq_assert_job(id, "state", "cancelled");
    tq_assert_job(id, "1199:state", "cancelled");
    assert_int_equal(tq_cmd_int("EXISTS %s:jr:%s", T.base, id), 0);
    assert_int_equal(tq_cmd_int("LLEN %s:done", T.base), 1);
    assert_int_equal(tq_stat("tasks_cancelled"), 1200);
    assert_int_equal(tq_stat("junk"), 0);
    free(id);
}

/* A release puts a task back at the front of its priority (shutdown: it
 * was under way); with `back`, behind what waits (a worker without its
 * handler hands it on and is not given it again at once). The attempt is
 * given back either way. */
static void test_release_front_or_back(void **state)
{
    struct tq_task t[2];
    char *a, *b;

    (void)state;
    a = tq_push("{\"type\":\"t\",\"id\":\"a\"}");
    b = tq_push("{\"type\":\"t\",\"id\":\"b\"}");
    assert_int_equal(tq_claim("w", 1, "30000", t, NULL), 1);
    assert_string_equal(t[0].id, "a");
    {
        redisReply *r = tq_fcall("llmb_release", "w", "back", t[0].ref,
                                 t[0].tok, NULL);
        assert_int_equal(tq_reply_int_at(r, 0), 1);
        freeReplyObject(r);
    }
    assert_int_equal(tq_claim("w", 1, "30000", t, NULL), 1);
    assert_string_equal(t[0].id, "b");
    assert_int_equal(tq_claim("w", 1, "30000", t + 1, NULL), 1);
    assert_string_equal(t[1].id, "a");
    assert_int_equal(t[1].attempt, 1);
    /* without `back`: a goes in front of c, which waits */
    free(tq_push("{\"type\":\"t\",\"id\":\"c\"}"));
    {
        redisReply *r = tq_fcall("llmb_release", "w", t[1].ref, t[1].tok,
                                 NULL);
        assert_int_equal(tq_reply_int_at(r, 0), 1);
        freeReplyObject(r);
    }
    assert_int_equal(tq_claim("w", 1, "30000", t + 1, NULL), 1);
    assert_string_equal(t[1].id, "a");
    assert_int_equal(t[1].attempt, 1);
    free(a);
    free(b);
}

/* Builds FCALL fn <base> worker, then n groups of `per` values: a ref
 * "x:<i>", a token "1" and, for per 3 or 4, "error" and/or "{}". */
static redisReply *call_n(const char *fn, const char *pre, int n, int per)
{
    const char **argv = llmb_xcalloc((size_t)(6 + n * per), sizeof(*argv));
    char **refs = llmb_xcalloc((size_t)n, sizeof(*refs));
    redisReply *r;
    int argc = 0;

    argv[argc++] = "FCALL";
    argv[argc++] = fn;
    argv[argc++] = "1";
    argv[argc++] = T.base;
    argv[argc++] = "w";
    if (pre != NULL)
        argv[argc++] = pre;
    for (int i = 0; i < n; i++) {
        refs[i] = llmb_xasprintf("x:%d", i);
        argv[argc++] = refs[i];
        argv[argc++] = "1";
        if (per == 4)
            argv[argc++] = "error";
        if (per >= 3)
            argv[argc++] = "{}";
    }
    r = redisCommandArgv(T.c, argc, argv, NULL);
    assert_non_null(r);
    for (int i = 0; i < n; i++)
        free(refs[i]);
    free(refs);
    free(argv);
    return r;
}

/* Every function's per-call maximum: at it the call runs (stale tokens:
 * each task refused, nothing written); one past it the call is refused
 * whole with the range in the error. */
static void test_call_maximums(void **state)
{
    static const struct {
        const char *fn, *pre;
        int max, per;
        const char *what;
    } c[] = {
        {"llmb_complete", NULL, 250, 3, "at most 250 tasks per call"},
        {"llmb_fail", NULL, 250, 4, "at most 250 tasks per call"},
        {"llmb_release", NULL, 250, 2, "at most 250 tasks per call"},
        {"llmb_release", "back", 250, 2, "at most 250 tasks per call"},
        {"llmb_heartbeat", "30000", 1000, 2, "at most 1000 leases per call"},
    };
    redisReply *r;

    (void)state;
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        r = call_n(c[i].fn, c[i].pre, c[i].max, c[i].per);
        if (r->type != REDIS_REPLY_ARRAY)
            fail_msg("%s of %d: %s", c[i].fn, c[i].max,
                     r->type == REDIS_REPLY_ERROR ? r->str : "not an array");
        if (strcmp(c[i].fn, "llmb_heartbeat") == 0)
            assert_int_equal(r->elements, 2 * (size_t)c[i].max); /* lost */
        else
            assert_int_equal(r->elements, (size_t)c[i].max);
        freeReplyObject(r);
        assert_error(call_n(c[i].fn, c[i].pre, c[i].max + 1, c[i].per),
                     c[i].what);
    }
    /* the limits of reap, purge and deadlines: 1..250 */
    static const char *const limited[] = {"llmb_reap", "llmb_purge",
                                          "llmb_deadlines"};
    for (size_t i = 0; i < 3; i++) {
        r = tq_fcall(limited[i], "250", NULL);
        assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
        freeReplyObject(r);
        assert_error(tq_fcall(limited[i], "251", NULL), "[limit 1..250]");
        assert_error(tq_fcall(limited[i], "0", NULL), "[limit 1..250]");
    }
    /* agg_take: 1..1000 ids */
    r = tq_fcall("llmb_agg_take", "60000", "1000", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    assert_error(tq_fcall("llmb_agg_take", "60000", "1001", NULL),
                 "<n 1..1000>");
    assert_int_equal(tq_stat("junk"), 0);
    assert_int_equal(tq_cmd_int("EXISTS %s:pl %s:pz %s:jd %s:run %s:lease",
                                T.base, T.base, T.base, T.base, T.base),
                     0);
}

/* The ranges of claim's arguments, at both ends. */
static void test_claim_ranges(void **state)
{
    static struct tq_task t[1000];
    redisReply *r;

    (void)state;
    tq_cmd_int("HSET %s:conf max_tasks 2000", T.base);
    free(tq_push("{\"type\":\"t\",\"tasks\":1500}"));
    assert_error(tq_fcall("llmb_claim", "w", "0", "30000", NULL),
                 "<n 1..1000>");
    /* a worker name with whitespace (it would break a job's end, which
     * names its worker) */
    assert_error(tq_fcall("llmb_claim", "w 1", "1", "30000", NULL),
                 "<worker>");
    assert_error(tq_fcall("llmb_claim", "w\t1", "1", "30000", NULL),
                 "<worker>");
    assert_error(tq_fcall("llmb_claim", "w", "1001", "30000", NULL),
                 "<n 1..1000>");
    assert_error(tq_fcall("llmb_claim", "w", "1", "99", NULL),
                 "<lease_ms 100..86400000>");
    assert_error(tq_fcall("llmb_claim", "w", "1", "86400001", NULL),
                 "<lease_ms 100..86400000>");
    assert_error(tq_fcall("llmb_claim", "w", "1", "30000", "251", NULL),
                 "[promote limit 0..250]");
    r = tq_fcall("llmb_claim", "w", "1", "86400000", "0", NULL);
    assert_int_equal(r->element[2]->integer, 1);
    freeReplyObject(r);
    assert_int_equal(tq_claim("w", 1000, "100", t, NULL), 1000);
    assert_int_equal(tq_claim("w", 1000, "100", t, NULL), 499);
}

/* The ranges of llmb_dataset_read's arguments: whole numbers, <first>
 * 0..1000000 and <count> 1..256, refused in its usage words otherwise (not
 * with an error of LRANGE); 256 entries come back in one call. */
static void test_dataset_read_ranges(void **state)
{
    static const char *const bad[][2] = {
        {"-1", "1"}, {"0.5", "1"}, {"1000001", "1"}, {"1e300", "1"},
        {"x", "1"},  {"0", "0"},   {"0", "257"},     {"0", "1.5"},
    };
    redisReply *r;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_error(tq_fcall("llmb_dataset_read", "d", bad[i][0], bad[i][1],
                              NULL),
                     "<first 0..1000000> <count 1..256>");
    for (int i = 0; i < 300; i++)
        tq_cmd_int("RPUSH %s:ds:d {\"prompt\":\"%d\"}", T.base, i);
    r = tq_fcall("llmb_dataset_read", "d", "1", "256", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 256);
    assert_string_equal(r->element[0]->str, "{\"prompt\":\"1\"}");
    assert_string_equal(r->element[255]->str, "{\"prompt\":\"256\"}");
    freeReplyObject(r);
    r = tq_fcall("llmb_dataset_read", "d", "1000000", "256", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
}

/* Sets queue setting field to value. */
static void conf(const char *field, const char *value)
{
    freeReplyObject(tq_cmd("HSET %s:conf %s %s", T.base, field, value));
}

/* Pushes doc; returns 1 when pushed, 0 when refused. */
static int pushed(const char *doc)
{
    redisReply *r = tq_fcall("llmb_push", doc, NULL);
    int ok = r->type == REDIS_REPLY_STRING;

    freeReplyObject(r);
    return ok;
}

/* Every queue setting at both ends of its range, and just past them
 * (where it takes its default), with the effect it has. */
static void test_settings_at_their_ends(void **state)
{
    struct tq_task t[2];
    char *id;

    (void)state;
    /* max_payload 1..536870912 (default 1048576) */
    conf("max_payload", "1");
    assert_int_equal(pushed("{\"type\":\"t\",\"payload\":1}"), 1);
    assert_int_equal(pushed("{\"type\":\"t\",\"payload\":12}"), 0);
    conf("max_payload", "0"); /* out of range: the default */
    assert_int_equal(pushed("{\"type\":\"t\",\"payload\":12}"), 1);
    conf("max_payload", "536870912");
    assert_int_equal(pushed("{\"type\":\"t\",\"payload\":12}"), 1);
    /* max_tasks 1..1000000000 (default 100000) */
    conf("max_tasks", "1");
    assert_int_equal(pushed("{\"type\":\"t\",\"tasks\":1}"), 1);
    assert_int_equal(pushed("{\"type\":\"t\",\"tasks\":2}"), 0);
    conf("max_tasks", "0");
    assert_int_equal(pushed("{\"type\":\"t\",\"tasks\":100000}"), 1);
    assert_int_equal(pushed("{\"type\":\"t\",\"tasks\":100001}"), 0);
    conf("max_tasks", "1000000000");
    assert_int_equal(pushed("{\"type\":\"t\",\"tasks\":1000000000}"), 1);
    conf("max_tasks", "1000000001");
    assert_int_equal(pushed("{\"type\":\"t\",\"tasks\":100001}"), 0);
    freeReplyObject(tq_cmd("DEL %s:pl", T.base));
    /* max_result 1..536870912 (default 1048576) */
    conf("max_result", "2");
    id = tq_push("{\"type\":\"t\",\"tasks\":2,\"max_retries\":0}");
    assert_int_equal(tq_claim("w", 2, "30000", t, NULL), 2);
    assert_int_equal(tq_complete("w", &t[0], "{}"), 1);
    assert_int_equal(tq_complete("w", &t[1], "{ }"), -1);
    tq_assert_job(id, "1:error", "result is 3 bytes; the limit is 2");
    free(id);
    conf("max_result", "0");
    id = tq_push("{\"type\":\"t\"}");
    assert_int_equal(tq_claim("w", 1, "30000", t, NULL), 1);
    assert_int_equal(tq_complete("w", &t[0], "{ }"), 1);
    free(id);
    /* dead_max 0..100000000 (default 10000): 0 keeps no failed job */
    conf("dead_max", "0");
    id = tq_push("{\"type\":\"t\",\"max_retries\":0}");
    assert_int_equal(tq_claim("w", 1, "30000", t, NULL), 1);
    assert_int_equal(tq_fail("w", &t[0], "fatal", "x"), 2);
    tq_assert_job(id, "state", "failed");
    assert_int_equal(tq_zcard("dead"), 0);
    free(id);
    /* events_max 1..100000000 (default 10000); 0 is out of range */
    conf("events_max", "1");
    for (int i = 0; i < 300; i++)
        free(tq_push("{\"type\":\"t\"}"));
    assert_true(tq_cmd_int("XLEN %s:events", T.base) < 300);
    conf("events_max", "0");
    freeReplyObject(tq_cmd("DEL %s:events", T.base));
    for (int i = 0; i < 5; i++)
        free(tq_push("{\"type\":\"t\"}"));
    assert_int_equal(tq_cmd_int("XLEN %s:events", T.base), 5);
    /* retention_s 0..3153600000 (default 604800): a job that ended in
     * 1970 is kept at the maximum (100 years), deleted at the default
     * (which a value past the maximum takes) */
    conf("retention_s", "3153600000");
    freeReplyObject(tq_cmd("DEL %s:pl", T.base));
    /* (the jobs that ended above, later than it, out of retention's way) */
    freeReplyObject(tq_cmd("DEL %s:fin", T.base));
    id = tq_push("{\"type\":\"t\"}");
    assert_int_equal(tq_claim("w", 1, "30000", t, NULL), 1);
    assert_int_equal(tq_complete("w", &t[0], "{}"), 1);
    assert_int_equal(llen("fin"), 1);
    {
        char *e = tq_job_end(id), *v;
        assert_int_equal(e[0], 'c');
        v = llmb_xasprintf("c1%s", strchr(e, ' '));
        tq_job_end_set(id, v);
        free(v);
        free(e);
        v = llmb_xasprintf("1 %s", id);
        freeReplyObject(tq_cmd("LSET %s:fin 0 %s", T.base, v));
        free(v);
    }
    assert_int_equal(tq_int(tq_fcall("llmb_reap", "250", NULL)), 0);
    tq_assert_job(id, "state", "completed");
    conf("retention_s", "3153600001");
    assert_int_equal(tq_int(tq_fcall("llmb_reap", "250", NULL)), 0);
    tq_assert_job(id, "state", "");
    free(id);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, tq_each_setup, tq_each_teardown)
    const struct CMUnitTest tests[] = {
        T_(test_promote_5000_loses_nothing),
        T_(test_heartbeat_at_the_call_limit),
        T_(test_ten_million_task_job),
        T_(test_push_call_limit),
        T_(test_claim_touches_at_most_250_jobs),
        T_(test_retry_racing_aggregation),
        T_(test_junk_everywhere),
        T_(test_wrong_key_refused_before_writes),
        T_(test_counts_not_numbers),
        T_(test_paused_and_rendezvous_keys),
        T_(test_tokens_not_forgeable),
        T_(test_claim_ranges),
        T_(test_dataset_read_ranges),
        T_(test_cancel_beyond_its_refs),
        T_(test_release_front_or_back),
        T_(test_call_maximums),
        T_(test_settings_at_their_ends),
    };
    return cmocka_run_group_tests(tests, tq_setup, tq_teardown);
}
