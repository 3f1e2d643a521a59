/*
 * Unit tests of the synthetic workload's draws (lib/llmworkload.c): a
 * normal draw takes its two uniform numbers in a fixed order (the first
 * for the radius, the second for the angle), so one seed gives the same
 * lengths whatever compiler built the worker. And the bodies the llm
 * executor makes of them (worker/executors/llm_workload.c): the payload's
 * members, the drawn prompt, max_tokens and ignore_eos.
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

#include <llmb/llmworkload.h>

#include "executors/llm.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* The next uniform number in [0, 1) of rng, as the draws make it: a
 * uniform draw over [0, 2^53 - 1] is the raw 53 bits. */
static double next_unit(uint64_t *rng)
{
    struct llmb_llm_dist u = {.kind = LLMB_LLM_DIST_UNIFORM,
                              .min = 0, .max = 9007199254740991L};

    return (double)llmb_llm_dist_draw(&u, rng) * (1.0 / 9007199254740992.0);
}

static void test_normal_draw_order(void **state)
{
    struct llmb_llm_dist d = {.kind = LLMB_LLM_DIST_NORMAL,
                              .mean = 50000, .stddev = 10000};

    (void)state;
    for (long k = 0; k < 64; k++) {
        uint64_t a = llmb_llm_synthetic_rng(7, 3, k);
        uint64_t b = a;
        double u1 = next_unit(&b);
        double u2 = next_unit(&b);
        double v = floor(50000.0 + 10000.0 * sqrt(-2.0 * log(1.0 - u1)) *
                                       cos(2.0 * M_PI * u2) + 0.5);
        long want = v < 1 ? 1 : v > LLMB_LLM_SYNTH_MAX ? LLMB_LLM_SYNTH_MAX
                                                        : (long)v;

        assert_int_equal(llmb_llm_dist_draw(&d, &a), want);
        assert_true(a == b); /* two draws taken, no more */
    }
}

/* Occurrences of needle in hay. */
static int count_of(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* A synthetic workload's body k of a payload body tmpl. */
static json_t *synthetic_body(const char *syn, const char *tmpl,
                              bool completions, long k, size_t *input_chars)
{
    struct llmb_llm_workload wl;
    json_t *v = json_loads(syn, 0, NULL), *b = json_loads(tmpl, 0, NULL);
    json_t *out;
    char *err = NULL, *text;
    size_t len;

    memset(&wl, 0, sizeof(wl));
    assert_int_equal(llmb_llm_synthetic_parse(v, "llm", &wl.syn, &err), 0);
    wl.kind = LLMB_LLM_WL_SYNTHETIC;
    wl.completions = completions;
    llmb_llm_workload_set_body(&wl, b);
    text = llmb_llm_workload_body(&wl, k, &len, input_chars);
    assert_int_equal(len, strlen(text));
    assert_int_equal(count_of(text, "\"max_tokens\""),
                     json_object_get(v, "output_tokens") != NULL ||
                     json_object_get(b, "max_tokens") != NULL);
    out = json_loads(text, 0, NULL);
    assert_non_null(out);
    free(text);
    json_decref(v);
    json_decref(b);
    llmb_llm_workload_fini(&wl);
    return out;
}

/* A request's body is the payload's members with the drawn prompt (a
 * user message for chat) and, with output_tokens, its max_tokens in place
 * of the payload's and ignore_eos true unless the payload says. */
static void test_synthetic_body(void **state)
{
    size_t chars = 0;
    json_t *b, *m;

    (void)state;
    b = synthetic_body("{\"input_tokens\":8,\"output_tokens\":5}",
                       "{\"model\":\"m\",\"max_completion_tokens\":9,"
                       "\"temperature\":0.5,\"stream\":true}", true, 3,
                       &chars);
    assert_string_equal(json_string_value(json_object_get(b, "model")), "m");
    assert_true(json_real_value(json_object_get(b, "temperature")) == 0.5);
    assert_true(json_is_true(json_object_get(b, "stream")));
    assert_int_equal(json_integer_value(json_object_get(b, "max_tokens")), 5);
    assert_null(json_object_get(b, "max_completion_tokens"));
    assert_true(json_is_true(json_object_get(b, "ignore_eos")));
    assert_int_equal(json_string_length(json_object_get(b, "prompt")), chars);
    assert_true(chars > 0);
    assert_null(json_object_get(b, "messages"));
    json_decref(b);

    /* chat, the payload's ignore_eos and max_tokens without output_tokens */
    b = synthetic_body("{\"input_tokens\":8}",
                       "{\"model\":\"m\",\"max_tokens\":9,"
                       "\"ignore_eos\":false,\"messages\":[]}", false, -1,
                       &chars);
    assert_int_equal(json_integer_value(json_object_get(b, "max_tokens")), 9);
    assert_true(json_is_false(json_object_get(b, "ignore_eos")));
    assert_int_equal(json_array_size(json_object_get(b, "messages")), 1);
    m = json_array_get(json_object_get(b, "messages"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "role")),
                        "user");
    assert_int_equal(json_string_length(json_object_get(m, "content")),
                     chars);
    json_decref(b);

    /* a payload of no other member */
    b = synthetic_body("{\"input_tokens\":2}", "{}", false, 0, &chars);
    assert_int_equal(json_object_size(b), 1);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normal_draw_order),
        cmocka_unit_test(test_synthetic_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
