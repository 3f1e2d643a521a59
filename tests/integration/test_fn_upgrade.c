/*
 * The upgrade from the layout of library versions before 30 (a hash per
 * job, task refs in <base>:pending, :delayed and :running, a lease hash
 * per worker, <base>:jobs and <base>:ended), against a real redis-server:
 * llmb_upgrade (lua/90-upgrade.lua) converts a queue a chunk at a time,
 * and llmb_reap a task the old library leased once its lease runs out
 * (lua/06-oldlayout.lua). The old keys are written here as the old
 * library wrote them (docs/operations.md, Upgrade, names the versions).
 * Also the ends of jobs that version 30 kept in <base>:je, which go in
 * front of the jobs' records.
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

static long long upgrade(const char *limit)
{
    redisReply *r = tq_fcall("llmb_upgrade", limit, NULL);
    long long v;

    if (r->type != REDIS_REPLY_INTEGER)
        fail_msg("llmb_upgrade: %s", r->type == REDIS_REPLY_ERROR ? r->str
                                                                 : "?");
    v = r->integer;
    freeReplyObject(r);
    return v;
}

/* Calls llmb_upgrade until it answers 0; returns the calls made. */
static int upgrade_all(const char *limit)
{
    int calls = 0;

    while (upgrade(limit) > 0)
        assert_true(++calls < 10000);
    return calls + 1;
}

/* Writes old job hash `id`: `fields` holds its fields and values
 * separated by '|'. */
static void old_job(const char *id, const char *fields)
{
    char *copy = strdup(fields), *save = NULL;
    const char *argv[64];
    char *key;
    int argc = 0;
    redisReply *r;

    key = malloc(strlen(T.base) + strlen(id) + 4);
    sprintf(key, "%s:j:%s", T.base, id);
    argv[argc++] = "HSET";
    argv[argc++] = key;
    for (char *f = strtok_r(copy, "|", &save); f != NULL && argc < 64;
         f = strtok_r(NULL, "|", &save))
        argv[argc++] = f;
    r = redisCommandArgv(T.c, argc, argv, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    free(key);
    free(copy);
}

/* Every kind of old job: ended (completed with a result and with {},
 * failed, cancelled, a fan-out job), waiting (priority 0, another
 * priority, delayed, a fan-out cursor and a retried task of one), running
 * under an old lease; each reads the same through llmb_job afterwards, and
 * what waits is claimed in the order it waited. */
static void test_convert_every_kind(void **state)
{
    struct tq_task t[16];
    redisReply *r;

    (void)state;
    /* ended */
    old_job("ok1", "type|a|payload|{\"p\":1}|state|completed|created_ms|1000|"
                   "started_ms|1100|finished_ms|1200|ok|1|left|0|0:state|"
                   "completed|0:attempt|2|0:worker|w9|0:result|{\"r\":5}|"
                   "retried|1|lost|1");
    old_job("ok2", "type|a|payload|{}|state|completed|created_ms|1001|"
                   "started_ms|1101|finished_ms|1201|ok|1|left|0|0:state|"
                   "completed|0:attempt|1|0:worker|w9");
    old_job("bad", "type|b|payload|{}|state|failed|created_ms|1002|started_ms|"
                   "1102|finished_ms|1202|ok|0|failed|1|left|0|0:state|failed|"
                   "0:attempt|4|0:worker|w8|0:error|boom|error|task 0: boom|"
                   "max_retries|3");
    old_job("cx", "type|c|payload|{}|state|cancelled|created_ms|1003|"
                  "finished_ms|1203|cancelled_ms|1203|ok|0|cancelled|1|left|0|"
                  "0:state|cancelled");
    old_job("fan", "type|f|payload|{}|state|completed|created_ms|1004|"
                   "started_ms|1104|finished_ms|1204|tasks|2|left|0|ok|2|"
                   "0:state|completed|0:worker|w7|1:state|completed|1:worker|"
                   "w7|1:result|{\"x\":1}|aggregate|{\"ok\":2}");
    freeReplyObject(tq_cmd("ZADD %s:ended 1200 ok1 1201 ok2 1202 bad 1203 cx "
                           "1204 fan", T.base));
    freeReplyObject(tq_cmd("ZADD %s:dead 1202 bad", T.base));
    /* waiting */
    old_job("w0", "type|t|payload|{\"n\":0}|state|pending|created_ms|2000");
    old_job("w5", "type|t|payload|{\"n\":5}|state|pending|created_ms|2001|"
                  "priority|5|timeout_s|2.5");
    old_job("wd", "type|t|payload|{}|state|pending|created_ms|2002|delay_s|"
                  "100");
    old_job("wf", "type|t|payload|{}|state|running|created_ms|2003|started_ms|"
                  "2100|tasks|4|left|3|next|2|failed|0|0:state|completed|"
                  "1:state|pending|1:attempt|1|1:error|oops");
    old_job("wr", "type|t|payload|{}|state|pending|created_ms|2004|0:state|"
                  "pending|0:attempt|2|retried|2");
    freeReplyObject(tq_cmd("ZADD %s:pending 1 w0:0 -21474836479 w5:0 2 wf:* "
                           "3 wf:1 4 wr:0", T.base));
    freeReplyObject(tq_cmd("ZADD %s:delayed 99999999999999 wd:0", T.base));
    freeReplyObject(tq_cmd("SADD %s:jr:wf wf:1", T.base));
    /* running under the old library */
    old_job("run", "type|t|payload|{}|state|running|created_ms|3000|started_ms|"
                   "3100|0:state|running|0:attempt|1|0:worker|oldw");
    freeReplyObject(tq_cmd("ZADD %s:running 5000 run:0", T.base));
    freeReplyObject(tq_cmd("HSET %s:wl:oldw run:0 7.abc", T.base));
    freeReplyObject(tq_cmd("ZADD %s:jobs 1000 ok1 1001 ok2 1002 bad 1003 cx "
                           "1004 fan 2000 w0 2001 w5 2002 wd 2003 wf 2004 wr "
                           "3000 run 4000 gone", T.base));

    /* three at a time: the chunks end between kinds */
    assert_true(upgrade_all("3") > 4);
    assert_int_equal(tq_cmd_int("EXISTS %s:pending %s:delayed %s:ended "
                                "%s:jobs %s:wl:oldw", T.base, T.base, T.base,
                                T.base, T.base), 0);

    tq_assert_job("ok1", "state", "completed");
    tq_assert_job("ok1", "type", "a");
    tq_assert_job("ok1", "payload", "{\"p\":1}");
    tq_assert_job("ok1", "started_ms", "1100");
    tq_assert_job("ok1", "finished_ms", "1200");
    tq_assert_job("ok1", "0:result", "{\"r\":5}");
    tq_assert_job("ok1", "0:attempt", "2");
    tq_assert_job("ok1", "0:worker", "w9");
    tq_assert_job("ok1", "retried", "1");
    tq_assert_job("ok2", "0:result", "{}");
    tq_assert_job("bad", "state", "failed");
    tq_assert_job("bad", "error", "task 0: boom");
    tq_assert_job("bad", "0:error", "boom");
    tq_assert_job("cx", "state", "cancelled");
    tq_assert_job("fan", "state", "completed");
    tq_assert_job("fan", "1:result", "{\"x\":1}");
    tq_assert_job("fan", "aggregate", "{\"ok\":2}");
    r = tq_cmd("ZSCORE %s:dead bad", T.base);
    assert_string_equal(r->str, "1202");
    freeReplyObject(r);
    /* their retention order: the oldest first in <base>:fin */
    assert_int_equal(tq_cmd_int("LLEN %s:fin", T.base), 5);
    r = tq_cmd("LINDEX %s:fin 0", T.base);
    assert_string_equal(r->str, "1200 ok1");
    freeReplyObject(r);

    tq_assert_job("w5", "priority", "5");
    tq_assert_job("w5", "timeout_s", "2.5");
    tq_assert_job("wd", "state", "pending");
    tq_assert_job("wr", "0:attempt", "2");
    assert_int_equal(tq_zcard("pd"), 1);
    /* the old lease is lost: run waits again at the front, its attempt
     * given back; the claim order: priority 5, then the front, then the
     * oldest */
    assert_int_equal(tq_claim("w1", 16, "30000", t, NULL), 7);
    assert_string_equal(t[0].ref, "w5");
    assert_string_equal(t[1].ref, "run");
    assert_int_equal(t[1].attempt, 1);
    assert_string_equal(t[2].ref, "w0");
    assert_string_equal(t[3].ref, "wf:2"); /* the cursor, past next */
    assert_string_equal(t[4].ref, "wf:3");
    assert_string_equal(t[5].ref, "wf:1"); /* the retried one, after */
    assert_int_equal(t[5].attempt, 2);
    /* the retried job of one task, its attempts counted */
    assert_string_equal(t[6].ref, "wr");
    assert_int_equal(t[6].attempt, 3);
    for (int i = 0; i < 7; i++)
        assert_int_equal(tq_complete("w1", &t[i], "{}"), 1);
    tq_assert_job("wf", "state", "completed");
    tq_assert_job("run", "state", "completed");
    tq_assert_job("wr", "state", "completed");
    tq_assert_job("wd", "state", "pending");
    assert_int_equal(upgrade("250"), 0);
}

/* A task leased by the old library whose lease runs out before any
 * llmb_upgrade comes back through llmb_reap, as a lost lease; a later
 * upgrade finds nothing more. */
static void test_reap_converts_old_lease(void **state)
{
    struct tq_task t[2];
    redisReply *r;

    (void)state;
    old_job("r1", "type|t|payload|{}|state|running|created_ms|1|started_ms|2|"
                  "0:state|running|0:attempt|1|0:worker|ow");
    freeReplyObject(tq_cmd("ZADD %s:running 1 r1:0", T.base));
    freeReplyObject(tq_cmd("HSET %s:wl:ow r1:0 3.abc", T.base));
    r = tq_fcall("llmb_reap", NULL);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    assert_int_equal(tq_zcard("running"), 0);
    assert_int_equal(tq_claim("w1", 2, "30000", t, NULL), 1);
    assert_string_equal(t[0].ref, "r1");
    assert_int_equal(t[0].attempt, 1);
    assert_int_equal(tq_complete("w1", &t[0], "{}"), 1);
    tq_assert_job("r1", "state", "completed");
}

/* The fields of llmb_job a job's end gives. */
static const char *const END_FIELDS[] = {
    "state", "finished_ms", "started_ms", "ok", "failed", "cancelled",
    "0:state", "0:worker", "0:attempt", "0:result", "0:error", "left",
};
#define N_END_FIELDS (sizeof(END_FIELDS) / sizeof(END_FIELDS[0]))

/* llmb_job's END_FIELDS of job id, joined with '|' (caller frees). */
static char *end_view(const char *id)
{
    char *out = strdup("");

    for (size_t i = 0; i < N_END_FIELDS; i++) {
        char *v = tq_job_get(id, END_FIELDS[i]);
        char *n = malloc(strlen(out) + strlen(v) + 2);
        sprintf(n, "%s%s|", out, v);
        free(out);
        free(v);
        out = n;
    }
    return out;
}

/* The ends version 30 kept in the hash <base>:je: jobs of every kind of
 * end (completed with a result and with {}, on a second attempt, failed
 * with an error, cancelled while waiting and while running, a fan-out
 * job), 262 of them so that the calls cross the chunk of 250, plus an end
 * whose record is gone. llmb_upgrade, 7 at a time and then 250 at a
 * time, puts each in front of its record: llmb_job reads the same as
 * before, <base>:je is gone, a retry and retention work on them. */
static void test_convert_version_30_ends(void **state)
{
    enum { N = 262 };
    struct tq_task t[N];
    char *ids[N + 6], *before[N + 6];
    int n = 0, i, k;
    long long junk;
    redisReply *r;

    (void)state;
    for (i = 0; i < N; i++)
        ids[n++] = tq_push("{\"type\":\"t\"}");
    assert_int_equal(tq_claim("w1", 250, "30000", t, NULL), 250);
    assert_int_equal(tq_claim("w1", 250, "30000", t + 250, NULL), N - 250);
    freeReplyObject(tq_complete_batch(t, 250, 3, "{\"r\":1}", "{}"));
    freeReplyObject(tq_complete_batch(t + 250, N - 250, -1, NULL, "{}"));
    /* failed with an error; on a second attempt; cancelled waiting and
     * running; a fan-out job of 3 tasks */
    ids[n++] = tq_push("{\"type\":\"t\",\"max_retries\":0}");
    assert_int_equal(tq_claim("w2", 1, "30000", t, NULL), 1);
    assert_int_equal(tq_fail("w2", &t[0], "error", "went wrong\tbadly"), 2);
    ids[n++] = tq_push("{\"type\":\"t\",\"backoff_ms\":1}");
    assert_int_equal(tq_claim("w2", 1, "30000", t, NULL), 1);
    assert_int_equal(tq_fail("w2", &t[0], "error", "once"), 1);
    tq_sleep_ms(20);
    freeReplyObject(tq_fcall("llmb_promote", "10", NULL));
    assert_int_equal(tq_claim("w3", 1, "30000", t, NULL), 1);
    assert_int_equal(tq_complete("w3", &t[0], "{\"second\":true}"), 1);
    ids[n++] = tq_push("{\"type\":\"t\",\"priority\":5}");
    freeReplyObject(tq_fcall("llmb_cancel", ids[n - 1], NULL));
    ids[n++] = tq_push("{\"type\":\"t\"}");
    assert_int_equal(tq_claim("w4", 1, "30000", t, NULL), 1);
    freeReplyObject(tq_fcall("llmb_cancel", ids[n - 1], NULL));
    freeReplyObject(tq_fcall("llmb_heartbeat", "w4", "30000", t[0].ref,
                             t[0].tok, NULL));
    ids[n++] = tq_push("{\"type\":\"t\",\"tasks\":3}");
    assert_int_equal(tq_claim("w5", 3, "30000", t, NULL), 3);
    for (k = 0; k < 3; k++)
        assert_int_equal(tq_complete("w5", &t[k], "{\"k\":1}"), 1);
    ids[n++] = tq_push("{\"type\":\"t\"}"); /* still waiting */
    tq_assert_job(ids[N], "state", "failed");
    tq_assert_job(ids[N + 1], "0:attempt", "2");
    tq_assert_job(ids[N + 3], "state", "cancelled");
    tq_assert_job(ids[N + 4], "state", "completed");
    assert_int_equal(tq_ended_count(), N + 5);

    /* as version 30 kept them */
    for (i = 0; i < n; i++) {
        char *e = tq_job_end(ids[i]);
        before[i] = end_view(ids[i]);
        if (e == NULL)
            continue;
        tq_job_end_clear(ids[i]);
        r = tq_cmd("HSET %s:je %s %s", T.base, ids[i], e);
        freeReplyObject(r);
        free(e);
    }
    /* (its result of 100 bytes makes <base>:je a hash table, as a large
     * one is: HSCAN then goes a few fields at a time) */
    {
        char v[128];
        snprintf(v, sizeof(v), "c1 1 w\t%0100d", 0);
        freeReplyObject(tq_cmd("HSET %s:je gone %s", T.base, v));
    }
    assert_int_equal(tq_ended_count(), 0);
    assert_int_equal(tq_cmd_int("HLEN %s:je", T.base), N + 6);

    junk = tq_stat("junk");
    k = (int)upgrade("7");
    assert_true(k >= 7 && k < 100);
    assert_true(tq_ended_count() == k || tq_ended_count() == k - 1);
    assert_int_equal(tq_cmd_int("HLEN %s:je", T.base), N + 6 - k);
    assert_true(upgrade_all("250") >= 2);
    assert_int_equal(tq_cmd_int("EXISTS %s:je", T.base), 0);
    assert_int_equal(tq_ended_count(), N + 5);
    for (i = 0; i < n; i++) {
        char *after = end_view(ids[i]);
        assert_string_equal(after, before[i]);
        free(after);
    }
    assert_int_equal(tq_stat("junk"), junk + 1); /* the end of no record */

    /* a retry takes the end back out; retention deletes an ended job */
    assert_int_equal(tq_int(tq_fcall("llmb_retry", ids[N], NULL)), 1);
    tq_assert_job(ids[N], "state", "pending");
    assert_int_equal(tq_ended_ms(ids[N]), -1);
    freeReplyObject(tq_cmd("HSET %s:conf retention_s 1", T.base));
    tq_sleep_ms(1100);
    r = tq_fcall("llmb_reap", "250", NULL);
    freeReplyObject(r);
    assert_int_equal(tq_cmd_int("HEXISTS %s:jd %s", T.base, ids[0]), 0);
    tq_assert_job(ids[N], "state", "pending");
    for (i = 0; i < n; i++) {
        free(before[i]);
        free(ids[i]);
    }
}

/* While version 30's ends are still in <base>:je, every function reads
 * a job's end there: a completed job with a deadline due is not failed by
 * llmb_deadlines nor cancelled by llmb_cancel, llmb_job reads its result,
 * retention deletes a job whose end is there, and a retry takes that end
 * away; then the upgrade moves the others. The ends here are written
 * literally as version 30 wrote them. */
static void test_version_30_ends_read_until_moved(void **state)
{
    struct tq_task t[3];
    char *a, *b, *c, *d;
    redisReply *r;

    (void)state;
    a = tq_push("{\"type\":\"t\",\"deadline_s\":0.05}");
    b = tq_push("{\"type\":\"t\"}");
    c = tq_push("{\"type\":\"t\",\"max_retries\":0}");
    d = tq_push("{\"type\":\"t\"}");
    assert_int_equal(tq_claim("w1", 3, "30000", t, NULL), 3);
    assert_int_equal(tq_complete("w1", &t[0], "{\"a\":42}"), 1);
    assert_int_equal(tq_complete("w1", &t[1], "{}"), 1);
    assert_int_equal(tq_fail("w1", &t[2], "error", "bad"), 2);
    tq_job_end_clear(a);
    tq_job_end_clear(b);
    tq_job_end_clear(c);
    freeReplyObject(tq_cmd("HSET %s:je %s %s", T.base, a,
                           "c1700000000500 1700000000400 w1\t{\"a\":42}"));
    freeReplyObject(tq_cmd("HSET %s:je %s %s", T.base, b,
                           "c1000 900 w1"));
    freeReplyObject(tq_cmd("HSET %s:je %s %s", T.base, c,
                           "f1700000000600 1700000000400 w1\tbad"));
    tq_assert_job(a, "state", "completed");
    tq_assert_job(a, "0:result", "{\"a\":42}");
    tq_assert_job(a, "finished_ms", "1700000000500");
    tq_assert_job(c, "0:error", "bad");

    tq_sleep_ms(100);
    freeReplyObject(tq_fcall("llmb_deadlines", "10", NULL));
    r = tq_fcall("llmb_cancel", a, NULL);
    freeReplyObject(r);
    tq_assert_job(a, "state", "completed");
    tq_assert_job(a, "0:result", "{\"a\":42}");

    /* b ended in 1970: retention finds its end in <base>:je */
    freeReplyObject(tq_cmd("RPUSH %s:fin %s", T.base, "1000 placeholder"));
    freeReplyObject(tq_cmd("LPUSH %s:fin %s", T.base, "1000 x"));
    {
        char *line = malloc(strlen(b) + 8);
        sprintf(line, "1000 %s", b);
        freeReplyObject(tq_cmd("LSET %s:fin 0 %s", T.base, line));
        free(line);
    }
    freeReplyObject(tq_cmd("HSET %s:conf retention_s 3600", T.base));
    freeReplyObject(tq_fcall("llmb_reap", "250", NULL));
    assert_int_equal(tq_cmd_int("HEXISTS %s:jd %s", T.base, b), 0);
    assert_int_equal(tq_cmd_int("HEXISTS %s:je %s", T.base, b), 0);

    /* a retry of c takes its end in <base>:je away */
    assert_int_equal(tq_int(tq_fcall("llmb_retry", c, NULL)), 1);
    assert_int_equal(tq_cmd_int("HEXISTS %s:je %s", T.base, c), 0);
    tq_assert_job(c, "state", "pending");

    assert_int_equal(upgrade_all("1"), 2);
    assert_int_equal(tq_cmd_int("EXISTS %s:je %s:jec", T.base, T.base), 0);
    tq_assert_job(a, "state", "completed");
    tq_assert_job(a, "0:result", "{\"a\":42}");
    tq_assert_job(a, "0:worker", "w1");
    tq_assert_job(a, "started_ms", "1700000000400");
    assert_int_equal(tq_ended_ms(a), 1700000000500LL);
    tq_assert_job(d, "state", "pending");
    free(a);
    free(b);
    free(c);
    free(d);
}

/* A large <base>:je converted one end per call: each call goes on from
 * the cursor the last one kept (<base>:jec), never stuck behind the
 * buckets it emptied; every end is moved. */
static void test_version_30_ends_one_at_a_time(void **state)
{
    enum { N = 3000 };
    redisReply *r;
    int i, calls;

    (void)state;
    for (i = 0; i < N; i++) {
        char id[32], rec[64];
        snprintf(id, sizeof(id), "j%d", i);
        snprintf(rec, sizeof(rec), "p1000\tt\t\t{\"i\":%d}", i);
        redisAppendCommand(T.c, "HSET %s:jd %s %s", T.base, id, rec);
        redisAppendCommand(T.c, "HSET %s:je %s %s", T.base, id, "c2000 1500 w");
    }
    for (i = 0; i < 2 * N; i++) {
        assert_int_equal(redisGetReply(T.c, (void **)&r), REDIS_OK);
        freeReplyObject(r);
    }
    /* (an HSCAN step with COUNT 1 may return a bucket's chain of more
     * than one) */
    calls = upgrade_all("1");
    fprintf(stderr, "%d ends moved in %d calls of limit 1\n", N, calls);
    assert_true(calls >= N / 4 && calls <= N + 10);
    assert_int_equal(tq_cmd_int("EXISTS %s:je %s:jec", T.base, T.base), 0);
    assert_int_equal(tq_ended_count(), N);
    tq_assert_job("j2999", "state", "completed");
    tq_assert_job("j0", "finished_ms", "2000");
}

/* Nothing of the old layout: one call answers 0 and writes nothing. */
static void test_nothing_to_do(void **state)
{
    (void)state;
    assert_int_equal(upgrade("1"), 0);
    assert_int_equal(upgrade("250"), 0);
    assert_int_equal(tq_cmd_int("EXISTS %s:jd %s:pl %s:fin", T.base, T.base,
                                T.base), 0);
}

/* An old key of another type (B:ended, B:je, B:jec) is refused, with
 * what to do, before anything is written; the limit is held to 1..250. */
static void test_refusals(void **state)
{
    redisReply *r;

    static const struct {
        const char *key, *kind;
    } old_keys[] = {{"ended", "RPUSH"}, {"je", "SET"}, {"jec", "RPUSH"}};
    static const char *const want[] = {
        ":ended\" is a list, llmb expects a zset",
        ":je\" is a string, llmb expects a hash",
        ":jec\" is a list, llmb expects a string"};

    (void)state;
    for (size_t i = 0; i < sizeof(old_keys) / sizeof(*old_keys); i++) {
        freeReplyObject(tq_cmd("%s %s:%s x", old_keys[i].kind, T.base,
                               old_keys[i].key));
        r = tq_fcall("llmb_upgrade", NULL);
        assert_int_equal(r->type, REDIS_REPLY_ERROR);
        if (strstr(r->str, want[i]) == NULL)
            fail_msg("llmb_upgrade with a wrong %s: %s", old_keys[i].key,
                     r->str);
        assert_non_null(strstr(r->str, "rename or delete it"));
        freeReplyObject(r);
        freeReplyObject(tq_cmd("DEL %s:%s", T.base, old_keys[i].key));
    }
    r = tq_fcall("llmb_upgrade", "0", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    r = tq_fcall("llmb_upgrade", "251", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_convert_every_kind,
                                        tq_each_setup, tq_each_teardown),
        cmocka_unit_test_setup_teardown(test_reap_converts_old_lease,
                                        tq_each_setup, tq_each_teardown),
        cmocka_unit_test_setup_teardown(test_convert_version_30_ends,
                                        tq_each_setup, tq_each_teardown),
        cmocka_unit_test_setup_teardown(test_version_30_ends_read_until_moved,
                                        tq_each_setup, tq_each_teardown),
        cmocka_unit_test_setup_teardown(test_version_30_ends_one_at_a_time,
                                        tq_each_setup, tq_each_teardown),
        cmocka_unit_test_setup_teardown(test_nothing_to_do, tq_each_setup,
                                        tq_each_teardown),
        cmocka_unit_test_setup_teardown(test_refusals, tq_each_setup,
                                        tq_each_teardown),
    };

    return cmocka_run_group_tests(tests, tq_setup, tq_teardown);
}
