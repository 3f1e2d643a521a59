/*
 * llmb_push against a real redis-server: ids, defaults and payloads kept
 * exactly, fan-out jobs pushed as one cursor, priorities then FIFO,
 * batches, and every kind of bad document refused with its own message.
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

static void test_push_defaults_and_payload_kept_exactly(void **state)
{
    const char *payload = "{\"n\": 1700000000123456789, \"a\": [], \"x\": 0.1234567890123456789}";
    char doc[512];
    char *id, *id2;
    struct tq_task t[2];

    (void)state;
    snprintf(doc, sizeof(doc), "{\"type\":\"echo\",\"payload\":%s}", payload);
    id = tq_push(doc);
    /* a minted id: the queue's 3-character tag and a base-36 counter */
    assert_true(strlen(id) >= 4);
    assert_int_equal(strspn(id, "0123456789abcdefghijklmnopqrstuvwxyz"),
                     strlen(id));
    id2 = tq_push("{\"type\":\"echo\"}");
    assert_memory_equal(id2, id, 3);
    assert_string_not_equal(id2, id);
    tq_assert_job(id, "payload", payload);
    tq_assert_job(id, "type", "echo");
    tq_assert_job_defaults(id);
    assert_int_equal(tq_claim("w1", 2, "30000", t, NULL), 2);
    assert_string_equal(t[0].id, id);
    assert_string_equal(t[1].id, id2);
    assert_string_equal(t[0].payload, payload);
    assert_string_equal(t[0].type, "echo");
    assert_int_equal(t[0].attempt, 1);
    free(id);
    free(id2);
}

static void test_push_idempotent_on_id(void **state)
{
    char *a, *b;

    (void)state;
    a = tq_push("{\"type\":\"echo\",\"id\":\"job-1\",\"tasks\":3}");
    b = tq_push("{\"type\":\"other\",\"id\":\"job-1\",\"tasks\":5}");
    assert_string_equal(a, "job-1");
    assert_string_equal(b, "job-1");
    /* one fan-out cursor for its three tasks */
    assert_int_equal(tq_waiting(), 1);
    assert_int_equal(tq_stat("pending"), 3);
    tq_assert_job("job-1", "type", "echo");
    tq_assert_job("job-1", "tasks", "3");
    free(a);
    free(b);
}

static void test_push_fanout_10000_in_one_call(void **state)
{
    struct tq_task *t = llmb_xcalloc(1000, sizeof(*t));
    char *id;
    int seen = 0, got, i;
    char *mark = llmb_xcalloc(10000, 1);

    (void)state;
    id = tq_push("{\"type\":\"noop\",\"tasks\":10000}");
    /* pushed in O(1): one member, its cursor, stands for every task */
    assert_int_equal(tq_waiting(), 1);
    assert_int_equal(tq_stat("pending"), 10000);
    while ((got = tq_claim("w1", 1000, "30000", t, NULL)) > 0) {
        for (i = 0; i < got; i++) {
            assert_string_equal(t[i].id, id);
            assert_true(t[i].idx >= 0 && t[i].idx < 10000);
            assert_int_equal(mark[t[i].idx], 0);
            mark[t[i].idx] = 1;
            /* FIFO within one job: indexes come out in order */
            assert_int_equal(t[i].idx, seen);
            seen++;
        }
    }
    assert_int_equal(seen, 10000);
    assert_int_equal(tq_waiting(), 0);
    assert_int_equal(tq_stat("pending"), 0);
    free(mark);
    free(t);
    free(id);
}

static void test_priority_then_fifo_across_10000(void **state)
{
    struct llmb_buf args;
    const char **argv = llmb_xcalloc(4 + 251, sizeof(char *));
    char **docs = llmb_xcalloc(10000, sizeof(char *));
    struct tq_task *t = llmb_xcalloc(1000, sizeof(*t));
    long long last_prio = 1000, last_seq = -1;
    redisReply *r;
    int i, got, total = 0;

    (void)state;
    /* 10,000 jobs, priorities 0..4 interleaved; the id encodes both. */
    argv[0] = "FCALL";
    argv[1] = "llmb_push";
    argv[2] = "1";
    argv[3] = T.base;
    for (i = 0; i < 10000; i++) {
        int prio = (i * 7) % 5;
        docs[i] = llmb_xasprintf("{\"type\":\"t\",\"id\":\"p%d-s%05d\","
                                 "\"priority\":%d}", prio, i, prio);
    }
    /* forty calls of 250 jobs, the most one call takes */
    for (int c = 0; c < 40; c++) {
        for (i = 0; i < 250; i++)
            argv[4 + i] = docs[c * 250 + i];
        r = redisCommandArgv(T.c, 254, argv, NULL);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        assert_int_equal(r->elements, 250);
        freeReplyObject(r);
    }
    /* 251 in one call are refused whole */
    argv[4 + 250] = docs[0];
    r = redisCommandArgv(T.c, 255, argv, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "at most 250 jobs per call, got 251"));
    freeReplyObject(r);
    llmb_buf_init(&args);
    while ((got = tq_claim("w1", 1000, "30000", t, NULL)) > 0) {
        for (i = 0; i < got; i++) {
            long long prio, seq;
            assert_int_equal(sscanf(t[i].id, "p%lld-s%lld", &prio, &seq), 2);
            if (prio == last_prio) {
                assert_true(seq > last_seq); /* FIFO within a priority */
            } else {
                assert_true(prio < last_prio); /* higher priority first */
            }
            last_prio = prio;
            last_seq = seq;
            total++;
        }
    }
    assert_int_equal(total, 10000);
    for (i = 0; i < 10000; i++)
        free(docs[i]);
    free(docs);
    free(argv);
    free(t);
    llmb_buf_fini(&args);
}

/* Every kind of bad document gets its own message; nothing is stored. */
static void test_bad_documents_rejected(void **state)
{
    static const struct {
        const char *doc;
        const char *msg;
    } cases[] = {
        {"{\"type\":\"x\"", "ERR job document is not valid JSON"},
        {"[1,2]", "ERR job document must be a JSON object"},
        {"\"x\"", "ERR job document must be a JSON object"},
        {"{}", "ERR job field \"type\" is required"},
        {"{\"type\":5}", "ERR job field \"type\" must be a string"},
        {"{\"type\":\"a b\"}", "ERR job field \"type\" must be a string"},
        {"{\"type\":\"x\",\"foo\":1}", "ERR job field \"foo\" is not known"},
        {"{\"type\":\"x\",\"priority\":\"high\"}",
         "ERR job field \"priority\" must be an integer from -1000000 to "
         "1000000, got \"high\""},
        {"{\"type\":\"x\",\"priority\":1.5}", "ERR job field \"priority\" must be an integer"},
        {"{\"type\":\"x\",\"priority\":1e300}", "ERR job field \"priority\" must be an integer"},
        {"{\"type\":\"x\",\"tasks\":0}", "ERR job field \"tasks\" must be an integer from 1 to 100000, got 0"},
        {"{\"type\":\"x\",\"tasks\":-3}", "ERR job field \"tasks\" must be an integer"},
        {"{\"type\":\"x\",\"tasks\":1000000}", "ERR job field \"tasks\" must be an integer from 1 to 100000, got 1000000"},
        {"{\"type\":\"x\",\"timeout_s\":0}", "ERR job field \"timeout_s\" must be a number"},
        {"{\"type\":\"x\",\"timeout_s\":null}", "ERR job field \"timeout_s\" must be a number"},
        {"{\"type\":\"x\",\"max_retries\":-1}", "ERR job field \"max_retries\" must be an integer"},
        {"{\"type\":\"x\",\"delay_s\":\"soon\"}", "ERR job field \"delay_s\" must be a number"},
        {"{\"type\":\"x\",\"queue\":\"other\"}", "ERR job field \"queue\" is \"other\" but the job was pushed to queue \"q\""},
        {"{\"type\":\"x\",\"id\":\"a:b\"}", "ERR job field \"id\" must be a string"},
        {"{\"type\":\"x\",\"id\":\"\"}", "ERR job field \"id\" must be a string"},
        {"{\"type\":\"\xff\"}", "ERR job document is not valid UTF-8"},
        {"{\"type\":\"x\",\"payload\":\"\xc3\x28\"}", "ERR job document is not valid UTF-8"},
        {"{\"type\":\"x\"} trailing", "ERR job document is not valid JSON"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        redisReply *r = tq_fcall("llmb_push", cases[i].doc, NULL);
        if (r->type != REDIS_REPLY_ERROR ||
            strncmp(r->str, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("doc %s: got \"%s\", want \"%s...\"", cases[i].doc,
                     r->type == REDIS_REPLY_ERROR ? r->str : "(not an error)",
                     cases[i].msg);
        freeReplyObject(r);
    }
    assert_int_equal(tq_waiting(), 0);
    assert_int_equal(tq_zcard("pd"), 0);
    assert_int_equal(tq_cmd_int("HLEN %s:jd", T.base), 0);
}

static void test_deep_nesting_and_payload_limit(void **state)
{
    struct llmb_buf b;
    redisReply *r;
    int i;

    (void)state;
    llmb_buf_init(&b);
    llmb_buf_appendf(&b, "{\"type\":\"x\",\"payload\":");
    for (i = 0; i < 5000; i++)
        llmb_buf_append(&b, "[", 1);
    for (i = 0; i < 5000; i++)
        llmb_buf_append(&b, "]", 1);
    llmb_buf_append(&b, "}", 1);
    r = tq_fcall("llmb_push", b.data, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "not valid JSON"));
    freeReplyObject(r);

    /* A per-queue payload limit, set the way an operator would. */
    freeReplyObject(tq_cmd("HSET %s:conf max_payload 100", T.base));
    llmb_buf_reset(&b);
    llmb_buf_appendf(&b, "{\"type\":\"x\",\"payload\":\"");
    for (i = 0; i < 200; i++)
        llmb_buf_append(&b, "a", 1);
    llmb_buf_appendf(&b, "\"}");
    r = tq_fcall("llmb_push", b.data, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_string_equal(r->str, "ERR job field \"payload\" is 202 bytes; the limit is 100");
    freeReplyObject(r);
    assert_int_equal(tq_waiting(), 0);
    assert_int_equal(tq_cmd_int("HLEN %s:jd", T.base), 0);
    llmb_buf_fini(&b);
}

static void test_batch_push_mixed(void **state)
{
    redisReply *r;

    (void)state;
    r = tq_fcall("llmb_push", "{\"type\":\"a\"}", "{\"type\":1}", "{\"type\":\"c\"}",
              NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    assert_int_equal(r->element[0]->type, REDIS_REPLY_STRING);
    assert_int_equal(r->element[1]->type, REDIS_REPLY_ERROR);
    assert_int_equal(r->element[2]->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    assert_int_equal(tq_waiting(), 2);
    assert_int_equal(tq_cmd_int("HLEN %s:jd", T.base), 2);
}

/* n in base 36, as the minted ids write their counter. */
static void b36(long long n, char *out)
{
    char rev[16];
    int k = 0;

    do {
        rev[k++] = "0123456789abcdefghijklmnopqrstuvwxyz"[n % 36];
        n /= 36;
    } while (n > 0);
    while (k > 0)
        *out++ = rev[--k];
    *out = '\0';
}

static void test_minted_ids_across_digit_counts(void **state)
{
    /* counters before the first id of a call: its ids cross 1 to 2, 2 to
     * 3 and 3 to 4 digits, and a call that starts past them */
    const long long from[] = {0, 30, 1290, 46650, 1679610, 2000000000};
    char tag[4], want[32];
    size_t k, i;

    (void)state;
    for (k = 0; k < sizeof(from) / sizeof(from[0]); k++) {
        redisReply *r;
        r = tq_cmd("SET %s:idseq %lld", T.base, from[k]);
        freeReplyObject(r);
        r = tq_fcall("llmb_push", "{\"type\":\"a\"}", "{\"type\":\"a\"}",
                     "{\"type\":\"a\"}", "{\"type\":\"a\"}",
                     "{\"type\":\"a\"}", "{\"type\":\"a\"}",
                     "{\"type\":\"a\"}", "{\"type\":\"a\"}",
                     "{\"type\":\"a\"}", "{\"type\":\"a\"}", NULL);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        assert_int_equal(r->elements, 10);
        memcpy(tag, r->element[0]->str, 3);
        tag[3] = '\0';
        for (i = 0; i < 10; i++) {
            memcpy(want, tag, 3);
            b36(from[k] + 1 + (long long)i, want + 3);
            assert_int_equal(r->element[i]->type, REDIS_REPLY_STRING);
            assert_string_equal(r->element[i]->str, want);
        }
        freeReplyObject(r);
    }
    assert_int_equal(tq_cmd_int("HLEN %s:jd", T.base), 60);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, tq_each_setup, tq_each_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T_(test_push_defaults_and_payload_kept_exactly),
        T_(test_push_idempotent_on_id),
        T_(test_push_fanout_10000_in_one_call),
        T_(test_priority_then_fifo_across_10000),
        T_(test_bad_documents_rejected),
        T_(test_deep_nesting_and_payload_limit),
        T_(test_batch_push_mixed),
        T_(test_minted_ids_across_digit_counts),
    };
    return cmocka_run_group_tests(tests, tq_setup, tq_teardown);
}
