/*
 * The llm executor's load shape and its secrets, against the mock LLM
 * server: concurrency caps the requests in flight, rate spreads them as
 * Poisson arrivals, the benchmark handler takes the seed job shape
 * (provider, model, iterations spread over tasks), and an API key read
 * from the worker's environment reaches the server but never Redis (every
 * key of the server is scanned) nor the worker's log.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include <llmb/util.h>

#include "fixture.h"
#include "test_llm_support.h"

#define TEST_KEY "sk-llmb-test-5e2d9c81f0a3"

static void test_concurrency(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "150", "--itl-ms", "1", NULL};
    char *id = NULL, *st;
    json_t *stats, *res;
    long long t0;

    lm_setup(t, "llm-concurrency", mock, NULL);
    t0 = (long long)llmb_mono_ms();
    st = lm_run(t, "{\"type\":\"llm\",\"payload\":{\"model\":\"m\","
                "\"prompt\":\"x\",\"max_tokens\":2,\"requests\":12,"
                "\"concurrency\":4}}", 20000, &id);
    assert_string_equal(st, "completed");
    /* Three rounds of four. */
    assert_true((long long)llmb_mono_ms() - t0 >= 450);
    stats = lm_mock_stats(&t->mock);
    assert_int_equal(lm_num(stats, "max_inflight_seen"), 4);
    assert_int_equal(lm_num(stats, "requests"), 12);
    res = lm_result(t, id, 0);
    assert_int_equal(lm_num(res, "summary.ok"), 12);
    json_decref(res);
    json_decref(stats);
    free(st);
    free(id);
}

/* 40 requests at 16/s: Poisson arrivals span about 39/16 s, with gaps as
 * irregular as an exponential's (coefficient of variation near 1), and
 * never bunch up into the concurrency allowed. */
static void test_rate(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "5", "--itl-ms", "1", NULL};
    char *id = NULL, *st;
    json_t *stats, *arr, *res, *r;
    double first, last, mean = 0, var = 0, span;
    size_t n, i;

    lm_setup(t, "llm-rate", mock, NULL);
    st = lm_run(t, "{\"type\":\"llm\",\"payload\":{\"model\":\"m\","
                "\"prompt\":\"x\",\"max_tokens\":2,\"requests\":40,"
                "\"concurrency\":40,\"rate\":16,\"seed\":7}}", 20000, &id);
    assert_string_equal(st, "completed");
    stats = lm_mock_stats(&t->mock);
    arr = json_object_get(stats, "arrivals_s");
    n = json_array_size(arr);
    assert_int_equal(n, 40);
    first = json_number_value(json_array_get(arr, 0));
    last = json_number_value(json_array_get(arr, n - 1));
    span = last - first;
    if (span < 39.0 / 16.0 * 0.5 || span > 39.0 / 16.0 * 1.6)
        fail_msg("40 arrivals at 16/s spanned %.3f s", span);
    for (i = 1; i < n; i++)
        mean += json_number_value(json_array_get(arr, i)) -
                json_number_value(json_array_get(arr, i - 1));
    mean /= (double)(n - 1);
    for (i = 1; i < n; i++) {
        double g = json_number_value(json_array_get(arr, i)) -
                   json_number_value(json_array_get(arr, i - 1)) - mean;
        var += g * g;
    }
    var /= (double)(n - 2);
    if (sqrt(var) / mean < 0.5 || sqrt(var) / mean > 1.7)
        fail_msg("arrival gaps: mean %.4f s, cv %.2f (Poisson: ~1)", mean,
                 sqrt(var) / mean);
    assert_true(lm_num(stats, "max_inflight_seen") <= 6);
    res = lm_result(t, id, 0);
    json_array_foreach(json_object_get(res, "_requests"), i, r)
        assert_true(lm_num(r, "queued_ms") < 100.0);
    json_decref(res);
    json_decref(stats);
    free(st);
    free(id);
}

/* A paced run longer than the run keeps arrival times for at once (1024,
 * then those not yet launched): 2100 arrivals at 1000/s all go out, none
 * before its time, so they span about 2.1 s on the server too. */
static void test_rate_long(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "1", "--itl-ms", "0", NULL};
    json_t *stats, *arr, *res;
    double span;
    size_t n;

    lm_setup(t, "llm-rate-long", mock, NULL);
    res = lm_run_ok(t, "{\"type\":\"llm\",\"payload\":{\"model\":\"m\","
                    "\"prompt\":\"x\",\"max_tokens\":1,\"requests\":2100,"
                    "\"concurrency\":64,\"rate\":1000,\"seed\":7}}", 60000);
    assert_int_equal(lm_num(res, "summary.ok"), 2100);
    assert_int_equal(lm_num(res, "metrics.queued_ms.count"), 2100);
    stats = lm_mock_stats(&t->mock);
    arr = json_object_get(stats, "arrivals_s");
    n = json_array_size(arr);
    assert_int_equal(n, 2100);
    span = json_number_value(json_array_get(arr, n - 1)) -
           json_number_value(json_array_get(arr, 0));
    /* the last of 2100 exponential gaps of mean 1 ms: 2.1 s +- 2 % */
    if (span < 2.1 * 0.85)
        fail_msg("2100 arrivals at 1000/s spanned %.3f s", span);
    json_decref(res);
    json_decref(stats);
}

/* The seed document's job, as written, with an endpoint named openai. */
static void test_benchmark_seed_shape(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "2", "--itl-ms", "0", NULL};
    char *id = NULL, *st, *ep;
    const char *args[4];
    json_t *stats;
    double total = 0;

    memset(t, 0, sizeof(*t));
    assert_int_equal(wh_init(&t->h, "llm-seed"), 0);
    lm_mock_start(&t->mock, mock);
    ep = llmb_xasprintf("openai=%s/v1", t->mock.url);
    args[0] = "--llm-endpoint";
    args[1] = ep;
    args[2] = NULL;
    wh_worker_start(&t->h, args);
    free(ep);
    st = lm_run(t, "{\"type\":\"benchmark\",\"tasks\":4,\"payload\":"
                "{\"provider\": \"openai\", \"model\": \"gpt-4\", "
                "\"iterations\": 10}}", 30000, &id);
    assert_string_equal(st, "completed");
    for (int i = 0; i < 4; i++) {
        json_t *res = lm_result(t, id, i);
        double n = lm_num(res, "summary.requests");
        /* 10 over 4 tasks: 3, 3, 2, 2. */
        assert_int_equal(n, i < 2 ? 3 : 2);
        total += n;
        assert_string_equal(json_string_value(json_object_get(res, "model")),
                            "gpt-4");
        assert_string_equal(
            json_string_value(json_object_get(res, "endpoint")), "openai");
        /* max_tokens defaults to 128 for a benchmark. */
        assert_int_equal(lm_num(res, "summary.output_tokens"), 128 * n);
        json_decref(res);
    }
    assert_int_equal(total, 10);
    stats = lm_mock_stats(&t->mock);
    assert_int_equal(lm_num(stats, "paths./v1/chat/completions"), 10);
    json_decref(stats);
    free(st);
    free(id);

    /* The same shape with iterations 100 over one task. */
    st = lm_run(t, "{\"type\":\"benchmark\",\"payload\":{\"provider\": "
                "\"openai\", \"model\": \"gpt-4\", \"iterations\": 100, "
                "\"concurrency\": 10}}", 30000, &id);
    assert_string_equal(st, "completed");
    {
        json_t *res = lm_result(t, id, 0);
        assert_int_equal(lm_num(res, "summary.ok"), 100);
        json_decref(res);
    }
    free(st);
    free(id);
}

/* Appends every string the key holds to out ("" when it is gone). */
static void key_values(redisContext *c, const char *key, struct llmb_buf *out)
{
    redisReply *ty = redisCommand(c, "TYPE %s", key);
    redisReply *r = NULL;
    const char *t = ty != NULL && ty->type == REDIS_REPLY_STATUS ? ty->str :
                    "none";

    if (strcmp(t, "string") == 0)
        r = redisCommand(c, "GET %s", key);
    else if (strcmp(t, "hash") == 0)
        r = redisCommand(c, "HGETALL %s", key);
    else if (strcmp(t, "list") == 0)
        r = redisCommand(c, "LRANGE %s 0 -1", key);
    else if (strcmp(t, "set") == 0)
        r = redisCommand(c, "SMEMBERS %s", key);
    else if (strcmp(t, "zset") == 0)
        r = redisCommand(c, "ZRANGE %s 0 -1", key);
    else if (strcmp(t, "stream") == 0)
        r = redisCommand(c, "XRANGE %s - +", key);
    if (r != NULL) {
        /* Walk the reply tree. */
        redisReply *stack[64];
        int sp = 0;
        stack[sp++] = r;
        while (sp > 0) {
            redisReply *e = stack[--sp];
            if (e->type == REDIS_REPLY_STRING)
                llmb_buf_append(out, e->str, e->len);
            else if (e->type == REDIS_REPLY_ARRAY)
                for (size_t i = 0; i < e->elements && sp < 64; i++)
                    stack[sp++] = e->element[i];
        }
        freeReplyObject(r);
    }
    if (ty != NULL)
        freeReplyObject(ty);
}

static void test_api_key(void **state)
{
    struct lm *t = *state;
    char *id = NULL, *st, *ep1, *ep2, *log = NULL;
    const char *args[6];
    json_t *stats, *auth;
    struct llmb_buf all;
    redisContext *c;
    redisReply *r;
    char cursor[32] = "0";
    size_t keys = 0;
    FILE *f;

    memset(t, 0, sizeof(*t));
    assert_int_equal(wh_init(&t->h, "llm-key"), 0);
    lm_mock_start(&t->mock, NULL);
    setenv("LLMB_TEST_LLM_KEY", TEST_KEY, 1);
    /* The comma form of the issue, split by the option list, and the
     * semicolon form. */
    ep1 = llmb_xasprintf("keyed=%s,key_env=LLMB_TEST_LLM_KEY", t->mock.url);
    ep2 = llmb_xasprintf("open=%s;key_env=LLMB_TEST_LLM_KEY", t->mock.url);
    args[0] = "--llm-endpoint";
    args[1] = ep1;
    args[2] = "--llm-endpoint";
    args[3] = ep2;
    args[4] = NULL;
    wh_worker_start(&t->h, args);
    st = lm_run(t, "{\"type\":\"llm\",\"payload\":{\"endpoint\":\"keyed\","
                "\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":3,"
                "\"requests\":3}}", 20000, &id);
    assert_string_equal(st, "completed");
    free(st);
    free(id);
    stats = lm_mock_stats(&t->mock);
    auth = json_object_get(stats, "authorization");
    assert_int_equal(json_integer_value(json_object_get(auth,
                                                        "Bearer " TEST_KEY)),
                     3);
    json_decref(stats);

    /* Every value of every key on the server: no key. */
    c = llmb_test_redis();
    llmb_buf_init(&all);
    do {
        r = redisCommand(c, "SCAN %s COUNT 1000", cursor);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *k = r->element[1]->element[i]->str;
            llmb_buf_append(&all, k, strlen(k));
            key_values(c, k, &all);
            keys++;
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    assert_true(keys > 0);
    assert_true(strstr(all.data, "5e2d9c81f0a3") == NULL);
    assert_true(strstr(all.data, "LLMB_TEST_LLM_KEY") == NULL);
    llmb_buf_fini(&all);
    redisFree(c);

    /* Nor in the worker's log (at debug level). */
    f = fopen(t->h.logs[0], "r");
    assert_non_null(f);
    {
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&log, &cap, f)) > 0)
            assert_true(strstr(log, "5e2d9c81f0a3") == NULL);
    }
    free(log);
    fclose(f);
    free(ep1);
    free(ep2);
}

/* A key_env whose variable is not set stops the worker at start. */
static void test_missing_key_stops_the_worker(void **state)
{
    struct lm *t = *state;
    const char *args[] = {"--llm-endpoint",
                          "x=http://127.0.0.1:1,key_env=LLMB_TEST_UNSET_VAR",
                          NULL};
    pid_t pid;

    memset(t, 0, sizeof(*t));
    assert_int_equal(wh_init(&t->h, "llm-nokey"), 0);
    unsetenv("LLMB_TEST_UNSET_VAR");
    pid = wh_worker_start(&t->h, args);
    assert_int_equal(wh_worker_wait(&t->h, pid, 10000), 78);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        LM_TEST(test_concurrency),
        LM_TEST(test_rate),
        LM_TEST(test_rate_long),
        LM_TEST(test_benchmark_seed_shape),
        LM_TEST(test_api_key),
        LM_TEST(test_missing_key_stops_the_worker),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
