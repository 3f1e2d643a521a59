/*
 * The llm executor's run control against the mock LLM server: warm-up
 * requests (by number or by time) reach the server but not the result, duration_s stops sending
 * on time and counts what was in flight, ramp_up_s starts below the
 * concurrency asked, start_at_ms holds the start, and extra_body reaches
 * the server while a field the executor does not know fails the task.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <llmb/util.h>

#include "fixture.h"
#include "test_llm_support.h"

static void test_warmup_not_measured(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "5", "--itl-ms", "1", NULL};
    char *id = NULL, *st;
    json_t *stats, *res;

    lm_setup(t, "llm-warmup", mock, NULL);
    st = lm_run(t, "{\"type\":\"llm\",\"payload\":{\"model\":\"m\","
                "\"prompt\":\"x\",\"max_tokens\":2,\"requests\":4,"
                "\"warmup_requests\":3,\"concurrency\":2}}", 20000, &id);
    assert_string_equal(st, "completed");
    stats = lm_mock_stats(&t->mock);
    assert_int_equal(lm_num(stats, "requests"), 7);
    res = lm_result(t, id, 0);
    assert_int_equal(lm_num(res, "summary.requests"), 4);
    assert_int_equal(lm_num(res, "summary.ok"), 4);
    assert_int_equal(json_array_size(json_object_get(res, "_requests")), 4);
    assert_int_equal(lm_num(res, "metrics.e2e_ms.count"), 4);
    json_decref(res);
    json_decref(stats);
    free(st);
    free(id);
}

/* warmup_s: warm-up requests, two at a time, for 0.3 s; the measured
 * four go out only after the warm-up's sending stopped and its last
 * request ended, and only they are in the result. */
static void test_warmup_by_time(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "60", "--itl-ms", "1", NULL};
    char *id = NULL, *st;
    json_t *stats, *res, *arr;
    size_t n;

    lm_setup(t, "llm-warmup-s", mock, NULL);
    st = lm_run(t, "{\"type\":\"llm\",\"payload\":{\"model\":\"m\","
                "\"prompt\":\"x\",\"max_tokens\":2,\"requests\":4,"
                "\"warmup_s\":0.3,\"concurrency\":2}}", 20000, &id);
    assert_string_equal(st, "completed");
    stats = lm_mock_stats(&t->mock);
    arr = json_object_get(stats, "arrivals_s");
    n = json_array_size(arr);
    assert_int_equal(lm_num(stats, "requests"), (double)n);
    assert_true(n >= 6); /* at least one pair of warm-up requests */
    /* the first measured request came after the warm-up's 0.3 s (the
     * server's clock: allow it 50 ms) */
    assert_true(json_number_value(json_array_get(arr, n - 4)) -
                json_number_value(json_array_get(arr, 0)) >= 0.25);
    res = lm_result(t, id, 0);
    assert_int_equal(lm_num(res, "summary.requests"), 4);
    assert_int_equal(json_array_size(json_object_get(res, "_requests")), 4);
    assert_int_equal(lm_num(res, "metrics.e2e_ms.count"), 4);
    json_decref(res);
    json_decref(stats);
    free(st);
    free(id);
}

/* 0.6 s of two at a time, each about 100 ms: sending stops at 0.6 s, the
 * two in flight then end and count. */
static void test_duration_stops_sending(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "100", "--itl-ms", "1", NULL};
    char *id = NULL, *st;
    json_t *stats, *res, *arr;
    long long t0;
    double first, last;
    size_t n;

    lm_setup(t, "llm-duration", mock, NULL);
    t0 = (long long)llmb_mono_ms();
    st = lm_run(t, "{\"type\":\"llm\",\"payload\":{\"model\":\"m\","
                "\"prompt\":\"x\",\"max_tokens\":2,\"duration_s\":0.6,"
                "\"concurrency\":2}}", 20000, &id);
    assert_string_equal(st, "completed");
    assert_true((long long)llmb_mono_ms() - t0 < 5000);
    stats = lm_mock_stats(&t->mock);
    arr = json_object_get(stats, "arrivals_s");
    n = json_array_size(arr);
    assert_true(n >= 6 && n <= 14);
    first = json_number_value(json_array_get(arr, 0));
    last = json_number_value(json_array_get(arr, n - 1));
    assert_true(last - first < 0.6);
    res = lm_result(t, id, 0);
    assert_int_equal(lm_num(res, "summary.requests"), (double)n);
    assert_int_equal(lm_num(res, "summary.ok"), (double)n);
    json_decref(res);
    json_decref(stats);
    free(st);
    free(id);
}

/* Concurrency 8 ramped over 1 s: the second slot opens at 1/7 s, so the
 * first 0.12 s see one request at a time; without the ramp, eight start
 * at once. */
static void test_ramp_up_starts_low(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "50", "--itl-ms", "1", NULL};
    char *id = NULL, *st;
    json_t *stats, *arr;
    double first;
    size_t n, early = 0;

    lm_setup(t, "llm-ramp", mock, NULL);
    st = lm_run(t, "{\"type\":\"llm\",\"payload\":{\"model\":\"m\","
                "\"prompt\":\"x\",\"max_tokens\":2,\"requests\":24,"
                "\"concurrency\":8,\"ramp_up_s\":1}}", 20000, &id);
    assert_string_equal(st, "completed");
    stats = lm_mock_stats(&t->mock);
    arr = json_object_get(stats, "arrivals_s");
    n = json_array_size(arr);
    assert_int_equal(n, 24);
    first = json_number_value(json_array_get(arr, 0));
    for (size_t i = 0; i < n; i++)
        if (json_number_value(json_array_get(arr, i)) - first < 0.04)
            early++;
    assert_int_equal(early, 1);
    assert_true(lm_num(stats, "max_inflight_seen") < 8 ||
                json_number_value(json_array_get(arr, n - 1)) - first > 0.8);
    json_decref(stats);
    free(st);
    free(id);
}

static void test_start_at(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "5", "--itl-ms", "1", NULL};
    char *id = NULL, *st, *doc;
    struct timespec ts;
    long long now_ms, t0;

    lm_setup(t, "llm-start-at", mock, NULL);
    clock_gettime(CLOCK_REALTIME, &ts);
    now_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    t0 = (long long)llmb_mono_ms();
    doc = llmb_xasprintf("{\"type\":\"llm\",\"payload\":{\"model\":\"m\","
                         "\"prompt\":\"x\",\"max_tokens\":2,\"requests\":2,"
                         "\"start_at_ms\":%lld}}", now_ms + 1200);
    st = lm_run(t, doc, 20000, &id);
    assert_string_equal(st, "completed");
    assert_true((long long)llmb_mono_ms() - t0 >= 1150);
    free(doc);
    free(st);
    free(id);
}

/* extra_body's keys join the body: the mock's per-request "mock" object
 * sets its token count. A field llmb checks at the top level is refused
 * in extra_body. */
static void test_extra_body(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "5", "--itl-ms", "1", NULL};
    char *id = NULL, *st, *err;
    json_t *res;

    lm_setup(t, "llm-extra", mock, NULL);
    st = lm_run(t, "{\"type\":\"llm\",\"payload\":{\"model\":\"m\","
                "\"prompt\":\"x\",\"max_tokens\":9,\"requests\":2,"
                "\"extra_body\":{\"mock\":{\"tokens\":3},\"seed\":5}}}",
                20000, &id);
    assert_string_equal(st, "completed");
    res = lm_result(t, id, 0);
    assert_int_equal(lm_num(res, "summary.output_tokens"), 6);
    json_decref(res);
    free(st);
    free(id);
    st = lm_run(t, "{\"type\":\"llm\",\"max_retries\":0,\"payload\":{"
                "\"model\":\"m\",\"prompt\":\"x\",\"extra_body\":"
                "{\"stream\":false}}}", 20000, &id);
    assert_string_equal(st, "failed");
    err = lm_job_error(t, id);
    assert_non_null(strstr(err, "\"extra_body\" has \"stream\""));
    free(err);
    free(st);
    free(id);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, lm_state_new, lm_state_free)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T_(test_warmup_not_measured),
        T_(test_warmup_by_time),
        T_(test_duration_stops_sending),
        T_(test_ramp_up_starts_low),
        T_(test_start_at),
        T_(test_extra_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
