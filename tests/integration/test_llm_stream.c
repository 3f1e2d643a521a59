/*
 * The llm executor against the mock LLM server on loopback: what it
 * measures matches what the mock was told to do (TTFT, inter-token gap,
 * token counts), whether the events arrive whole or in 7-byte pieces,
 * streamed or not, with usage or without (then counted and marked
 * estimated), on /chat/completions and /completions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "test_llm_support.h"

/* |got - want| <= tol, with a readable failure. */
#define assert_near(got, want, tol)                                         \
    do {                                                                    \
        double g_ = (got), w_ = (want), t_ = (tol);                         \
        if (fabs(g_ - w_) > t_)                                             \
            fail_msg("%s = %.3f, wanted %.3f +- %.3f", #got, g_, w_, t_);   \
    } while (0)

/* The least and the greatest number of array a (not empty). */
static void range_of(const json_t *a, double *lo, double *hi)
{
    const json_t *v;
    size_t i;

    assert_true(json_array_size(a) > 0);
    *lo = INFINITY;
    *hi = -INFINITY;
    json_array_foreach(a, i, v) {
        *lo = fmin(*lo, json_number_value(v));
        *hi = fmax(*hi, json_number_value(v));
    }
}

/* Every request of the task (the mock told ttft 120 ms, itl 20 ms, 15
 * tokens) against what the mock's /mock/stats says it really did: a
 * loaded machine makes the mock late, and llmb must measure that, not
 * the settings. Loopback adds a little on each side. */
static void check_timings(struct lm *t, json_t *res, int n,
                          bool exact_tokens)
{
    json_t *reqs = json_object_get(res, "_requests");
    json_t *stats = lm_mock_stats(&t->mock), *r;
    double tlo, thi, glo, ghi;
    size_t i;

    assert_int_equal(json_array_size(reqs), n);
    assert_int_equal(json_array_size(json_object_get(stats, "ttfts_ms")), n);
    range_of(json_object_get(stats, "ttfts_ms"), &tlo, &thi);
    range_of(json_object_get(stats, "gaps_ms"), &glo, &ghi);
    json_array_foreach(reqs, i, r) {
        double ttft = lm_num(r, "ttft_ms"), e2e = lm_num(r, "e2e_ms");
        /* sent before the mock read it, read after the mock wrote it
         * (less the 1 ms an arrival may be stamped early,
         * LLMB_LLM_PASS_FRESH_US) */
        assert_true(ttft >= 119.0);
        assert_true(ttft >= tlo - 1.0);
        assert_true(ttft <= thi + 30.0);
        /* the 14 gaps as sent, each end off by the delivery */
        assert_near(lm_num(r, "itl_ms"), (glo + ghi) / 2,
                    (ghi - glo) / 2 + 3.0);
        assert_near(lm_num(r, "tpot_ms"), (glo + ghi) / 2,
                    (ghi - glo) / 2 + 3.0);
        assert_true(e2e > ttft);
        assert_true(e2e <= thi + 14 * ghi + 45.0); /* + finish, usage */
        assert_int_equal(lm_num(r, "output_tokens"), 15);
        if (exact_tokens) {
            /* The mock counts the words of the prompt. */
            assert_int_equal(lm_num(r, "input_tokens"), 4);
            assert_null(json_object_get(r, "tokens_estimated"));
        }
        assert_int_equal(lm_num(r, "status"), 200);
        assert_int_equal(lm_num(r, "attempts"), 1);
        assert_near(lm_num(r, "tokens_per_s"), 15.0 * 1000.0 / e2e, 0.1);
    }
    json_decref(stats);
}

static void test_measures_match_the_mock(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "120", "--itl-ms", "20", NULL};
    json_t *res;

    lm_setup(t, "llm-measure", mock, NULL);
    res = lm_run_ok(t, "{\"type\":\"llm\",\"payload\":{\"endpoint\":\"mock\","
                    "\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                    "\"content\":\"say four words please\"}],\"max_tokens\":15,"
                    "\"requests\":6,\"concurrency\":3}}", 20000);
    check_timings(t, res, 6, true);
    assert_int_equal(lm_num(res, "summary.requests"), 6);
    assert_int_equal(lm_num(res, "summary.ok"), 6);
    assert_int_equal(lm_num(res, "summary.failed"), 0);
    assert_int_equal(lm_num(res, "summary.output_tokens"), 90);
    assert_int_equal(lm_num(res, "summary.input_tokens"), 24);
    assert_int_equal(lm_num(res, "summary.errors.http_429"), 0);
    assert_string_equal(json_string_value(json_object_get(res, "api")),
                        "chat");
    assert_true(json_is_true(json_object_get(res, "stream")));
    json_decref(res);
}

/* The same stream written in 7-byte pieces, each its own send. */
static void test_fragmented_stream(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "120", "--itl-ms", "20",
                          "--fragment", "7", NULL};
    json_t *res;

    lm_setup(t, "llm-fragment", mock, NULL);
    res = lm_run_ok(t, "{\"type\":\"llm\",\"payload\":{\"model\":\"m\","
                    "\"messages\":[{\"role\":\"user\",\"content\":"
                    "\"say four words please\"}],\"max_tokens\":15,"
                    "\"requests\":2,\"concurrency\":2}}", 20000);
    check_timings(t, res, 2, true);
    json_decref(res);
}

static void test_not_streaming(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "100", "--itl-ms", "10", NULL};
    char *id = NULL, *st;
    json_t *res, *r, *stats;
    double lo, hi;
    size_t i;

    lm_setup(t, "llm-nostream", mock, NULL);
    st = lm_run(t, "{\"type\":\"llm\",\"payload\":{\"model\":\"m\","
                "\"messages\":[{\"role\":\"user\",\"content\":\"one two\"}],"
                "\"max_tokens\":11,\"stream\":false,\"requests\":3}}", 20000,
                &id);
    assert_string_equal(st, "completed");
    res = lm_result(t, id, 0);
    assert_true(json_is_false(json_object_get(res, "stream")));
    stats = lm_mock_stats(&t->mock);
    assert_int_equal(json_array_size(json_object_get(stats, "bodies_ms")), 3);
    range_of(json_object_get(stats, "bodies_ms"), &lo, &hi);
    json_decref(stats);
    json_array_foreach(json_object_get(res, "_requests"), i, r) {
        /* The whole answer after TTFT + 10 gaps, when the mock wrote it
         * (less the 1 ms an arrival may be stamped early), plus the
         * loopback's delivery. */
        assert_true(lm_num(r, "e2e_ms") >= 200.0 - 1.0);
        assert_true(lm_num(r, "e2e_ms") >= lo - 1.0);
        assert_true(lm_num(r, "e2e_ms") <= hi + 30.0);
        assert_null(json_object_get(r, "ttft_ms"));
        assert_null(json_object_get(r, "itl_ms"));
        assert_int_equal(lm_num(r, "output_tokens"), 11);
        assert_int_equal(lm_num(r, "input_tokens"), 2);
    }
    assert_int_equal(lm_num(res, "summary.ok"), 3);
    json_decref(res);
    free(st);
    free(id);
}

/* No usage: output tokens are the content chunks, input tokens a
 * quarter of the prompt's bytes, both marked estimated. No [DONE]
 * either: the finish_reason ends the stream. */
static void test_missing_usage(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "20", "--itl-ms", "5", "--no-usage",
                          "--no-done", NULL};
    char *id = NULL, *st;
    json_t *res, *r;
    size_t i;

    lm_setup(t, "llm-nousage", mock, NULL);
    st = lm_run(t, "{\"type\":\"llm\",\"payload\":{\"model\":\"m\","
                "\"messages\":[{\"role\":\"user\",\"content\":"
                "\"0123456789abcdef\"}],\"max_tokens\":9,\"requests\":2}}",
                20000, &id);
    assert_string_equal(st, "completed");
    res = lm_result(t, id, 0);
    json_array_foreach(json_object_get(res, "_requests"), i, r) {
        assert_int_equal(lm_num(r, "output_tokens"), 9);
        assert_int_equal(lm_num(r, "input_tokens"), 4); /* 16 bytes / 4 */
        assert_true(json_is_true(json_object_get(r, "tokens_estimated")));
    }
    assert_int_equal(lm_num(res, "summary.tokens_estimated"), 2);
    json_decref(res);
    free(st);
    free(id);
}

/* /v1/completions with a prompt, streamed and not. */
static void test_completions(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "20", "--itl-ms", "5", NULL};
    char *id = NULL, *st;
    json_t *res, *stats;

    lm_setup(t, "llm-completions", mock, NULL);
    st = lm_run(t, "{\"type\":\"llm\",\"payload\":{\"model\":\"m\","
                "\"prompt\":\"a b c\",\"max_tokens\":7,\"requests\":2}}",
                20000, &id);
    assert_string_equal(st, "completed");
    res = lm_result(t, id, 0);
    assert_string_equal(json_string_value(json_object_get(res, "api")),
                        "completions");
    assert_int_equal(lm_num(res, "summary.output_tokens"), 14);
    assert_int_equal(lm_num(res, "summary.input_tokens"), 6);
    json_decref(res);
    free(st);
    free(id);
    st = lm_run(t, "{\"type\":\"llm\",\"payload\":{\"model\":\"m\","
                "\"prompt\":[\"a b\",\"c\"],\"max_tokens\":7,"
                "\"stream\":false}}", 20000, &id);
    assert_string_equal(st, "completed");
    res = lm_result(t, id, 0);
    assert_int_equal(lm_num(res, "summary.output_tokens"), 7);
    json_decref(res);
    stats = lm_mock_stats(&t->mock);
    assert_int_equal(lm_num(stats, "paths./v1/completions"), 3);
    json_decref(stats);
    free(st);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        LM_TEST(test_measures_match_the_mock),
        LM_TEST(test_fragmented_stream),
        LM_TEST(test_not_streaming),
        LM_TEST(test_missing_usage),
        LM_TEST(test_completions),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
