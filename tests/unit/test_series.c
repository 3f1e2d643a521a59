/*
 * Unit tests of lib/series.c (bounded wall-clock time series): buckets on
 * multiples of the width, concurrency split over bucket edges, the width
 * doubling at the cap at both ends of the range, merging of equal and
 * doubled widths and the refusal of others, the JSON form and its
 * rejections at both ends of each range; and of the llm executor's use of
 * it (worker/executors/llm_timeline.c): a request's tokens counted at its
 * chunks' times, adding up to its output tokens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <llmb/err.h>
#include <llmb/series.h>

#include "executors/llm.h"
#include "executors/llm_timeline.h"

static int64_t sum_tokens(const struct llmb_series *s)
{
    int64_t t = 0;

    for (size_t i = 0; i < s->n; i++)
        t += s->tokens[i];
    return t;
}

static void test_buckets(void **state)
{
    struct llmb_series s;

    (void)state;
    llmb_series_init(&s, 1000, 10);
    llmb_series_count(&s, 1700000000999, 1, 5); /* the last ms of a bucket */
    assert_int_equal(s.n, 1);
    assert_int_equal(s.start_ms, 1700000000000);
    llmb_series_count(&s, 1700000001000, 2, 7); /* the first of the next */
    assert_int_equal(s.n, 2);
    assert_int_equal(s.requests[0], 1);
    assert_int_equal(s.tokens[0], 5);
    assert_int_equal(s.requests[1], 2);
    assert_int_equal(s.tokens[1], 7);
    /* before the first bucket: the series grows downwards */
    llmb_series_count(&s, 1699999998000, 1, 1);
    assert_int_equal(s.start_ms, 1699999998000);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.tokens[0], 1);
    assert_int_equal(s.tokens[1], 0);
    assert_int_equal(s.tokens[2], 5);
    assert_int_equal(s.tokens[3], 7);
    llmb_series_fini(&s);
}

static void test_busy(void **state)
{
    struct llmb_series s;

    (void)state;
    llmb_series_init(&s, 1000, 10);
    /* 2 in flight from 0.5 s to 2.5 s: means 1, 2, 1 */
    llmb_series_busy(&s, 10000500.0, 10002500.0, 2.0);
    assert_int_equal(s.start_ms, 10000000);
    assert_int_equal(s.n, 3);
    assert_true(s.busy[0] == 1000.0);
    assert_true(s.busy[1] == 2000.0);
    assert_true(s.busy[2] == 1000.0);
    /* ends on an edge: no bucket past it */
    llmb_series_busy(&s, 10002500.0, 10003000.0, 1.0);
    assert_int_equal(s.n, 3);
    assert_true(s.busy[2] == 1500.0);
    /* nothing for an empty span or level */
    llmb_series_busy(&s, 10009000.0, 10009000.0, 3.0);
    llmb_series_busy(&s, 10009000.0, 10009500.0, 0.0);
    assert_int_equal(s.n, 3);
    llmb_series_fini(&s);
}

static void test_cap(void **state)
{
    struct llmb_series s;

    (void)state;
    llmb_series_init(&s, 1000, 4);
    for (int i = 0; i < 4; i++)
        llmb_series_count(&s, 8000 + i * 1000, 1, i + 1);
    /* exactly max buckets: the width stays */
    assert_int_equal(s.width_ms, 1000);
    assert_int_equal(s.n, 4);
    /* one more at the top: the width doubles, counts kept */
    llmb_series_count(&s, 12000, 1, 10);
    assert_int_equal(s.width_ms, 2000);
    assert_int_equal(s.start_ms, 8000);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.tokens[0], 1 + 2);
    assert_int_equal(s.tokens[1], 3 + 4);
    assert_int_equal(s.tokens[2], 10);
    /* one at the bottom past max buckets: doubles again, aligned */
    llmb_series_count(&s, 2000, 1, 100);
    assert_int_equal(s.width_ms, 4000);
    assert_int_equal(s.start_ms, 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.tokens[0], 100);
    assert_int_equal(s.tokens[1], 0);
    assert_int_equal(s.tokens[2], 1 + 2 + 3 + 4);
    assert_int_equal(s.tokens[3], 10);
    assert_int_equal(sum_tokens(&s), 120);
    llmb_series_fini(&s);

    /* the default cap: an hour of 1 s buckets fits, a second more not */
    llmb_series_init(&s, LLMB_SERIES_WIDTH_MS, LLMB_SERIES_MAX);
    llmb_series_busy(&s, 3600000.0, 3600000.0 + 3600000.0, 1.0);
    assert_int_equal(s.width_ms, 1000);
    assert_int_equal(s.n, LLMB_SERIES_MAX);
    assert_true(s.busy[0] == 1000.0 && s.busy[3599] == 1000.0);
    llmb_series_count(&s, 7200000, 1, 1);
    assert_int_equal(s.width_ms, 2000);
    assert_int_equal(s.n, 1801);
    assert_true(s.busy[0] == 2000.0 && s.busy[1799] == 2000.0);
    assert_true(s.busy[1800] == 0.0);
    llmb_series_fini(&s);
}

static void test_merge(void **state)
{
    struct llmb_series a, b, c;

    (void)state;
    llmb_series_init(&a, 1000, 100);
    llmb_series_init(&b, 1000, 100);
    llmb_series_count(&a, 5000, 1, 3);
    llmb_series_busy(&a, 5000.0, 6000.0, 1.0);
    llmb_series_count(&b, 5500, 2, 4);
    llmb_series_busy(&b, 5000.0, 6000.0, 3.0);
    llmb_series_count(&b, 9000, 1, 1);
    assert_int_equal(llmb_series_merge(&a, &b), 0);
    assert_int_equal(a.start_ms, 5000);
    assert_int_equal(a.n, 5);
    assert_int_equal(a.requests[0], 3);
    assert_int_equal(a.tokens[0], 7);
    assert_true(a.busy[0] == 4000.0); /* concurrency 1 + 3 */
    assert_int_equal(a.tokens[4], 1);

    /* a wider one: a goes to its width */
    llmb_series_init(&c, 4000, 100);
    llmb_series_count(&c, 0, 1, 10);
    assert_int_equal(llmb_series_merge(&a, &c), 0);
    assert_int_equal(a.width_ms, 4000);
    assert_int_equal(a.start_ms, 0);
    assert_int_equal(a.n, 3);
    assert_int_equal(a.tokens[0], 10);
    assert_int_equal(a.tokens[1], 7);
    assert_int_equal(a.tokens[2], 1);
    /* a narrower one goes into the wider buckets */
    assert_int_equal(llmb_series_merge(&a, &b), 0);
    assert_int_equal(a.tokens[1], 7 + 4);
    assert_int_equal(a.tokens[2], 2);
    llmb_series_fini(&c);

    /* a width that is no doubling of the other: refused, a unchanged */
    llmb_series_init(&c, 1500, 100);
    llmb_series_count(&c, 0, 1, 10);
    assert_int_equal(llmb_series_merge(&a, &c), LLMB_EINVAL);
    assert_int_equal(a.width_ms, 4000);
    assert_int_equal(sum_tokens(&a), 10 + 7 + 1 + 4 + 1);
    llmb_series_fini(&c);
    /* an empty one changes nothing */
    llmb_series_init(&c, 1500, 100);
    assert_int_equal(llmb_series_merge(&a, &c), 0);
    llmb_series_fini(&c);
    llmb_series_fini(&a);
    llmb_series_fini(&b);
}

static int parse(const char *text, size_t max, struct llmb_series *s)
{
    json_t *v = json_loads(text, 0, NULL);
    char *err = NULL;
    int rc;

    assert_non_null(v);
    rc = llmb_series_from_json(s, v, max, &err);
    assert_true(rc == 0 ? err == NULL : err != NULL && *err != '\0');
    free(err);
    json_decref(v);
    return rc;
}

static void test_json(void **state)
{
    struct llmb_series s, t;
    json_t *j;
    char *text;

    (void)state;
    llmb_series_init(&s, 1000, 10);
    llmb_series_count(&s, 3000, 2, 9);
    llmb_series_busy(&s, 3000.0, 4250.0, 1.0);
    j = llmb_series_json(&s);
    text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"concurrency\":[1,0.25],\"output_tokens\":"
                        "[9,0],\"requests\":[2,0],\"start_ms\":3000,"
                        "\"width_ms\":1000}");
    assert_int_equal(parse(text, 10, &t), 0);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.tokens[0], 9);
    assert_true(t.busy[1] == 250.0);
    llmb_series_fini(&t);
    /* more buckets than allowed */
    assert_int_equal(parse(text, 1, &t), LLMB_EINVAL);
    assert_int_equal(t.n, 0);
    free(text);
    json_decref(j);
    llmb_series_fini(&s);

    /* ranges at both ends */
    assert_int_equal(parse("{\"start_ms\":0,\"width_ms\":1,\"requests\":[1],"
                           "\"output_tokens\":[0],\"concurrency\":[0]}", 4,
                           &t), 0);
    llmb_series_fini(&t);
    assert_int_equal(parse("{\"start_ms\":0,\"width_ms\":0,\"requests\":[],"
                           "\"output_tokens\":[],\"concurrency\":[]}", 4,
                           &t), LLMB_EINVAL);
    assert_int_equal(parse("{\"start_ms\":1099511627776,\"width_ms\":"
                           "1099511627776,\"requests\":[1],\"output_tokens\""
                           ":[1],\"concurrency\":[1]}", 4, &t), 0);
    llmb_series_fini(&t);
    assert_int_equal(parse("{\"start_ms\":0,\"width_ms\":1099511627777,"
                           "\"requests\":[],\"output_tokens\":[],"
                           "\"concurrency\":[]}", 4, &t), LLMB_EINVAL);
    assert_int_equal(parse("{\"start_ms\":1125899906842000,\"width_ms\":1000,"
                           "\"requests\":[],\"output_tokens\":[],"
                           "\"concurrency\":[]}", 4, &t), 0);
    llmb_series_fini(&t);
    assert_int_equal(parse("{\"start_ms\":1125899906843000,\"width_ms\":1000,"
                           "\"requests\":[],\"output_tokens\":[],"
                           "\"concurrency\":[]}", 4, &t), LLMB_EINVAL);
    assert_int_equal(parse("{\"start_ms\":-1000,\"width_ms\":1000,"
                           "\"requests\":[],\"output_tokens\":[],"
                           "\"concurrency\":[]}", 4, &t), LLMB_EINVAL);
    assert_int_equal(parse("{\"start_ms\":500,\"width_ms\":1000,"
                           "\"requests\":[],\"output_tokens\":[],"
                           "\"concurrency\":[]}", 4, &t), LLMB_EINVAL);
    assert_int_equal(parse("{\"start_ms\":0,\"width_ms\":1000,"
                           "\"requests\":[1],\"output_tokens\":[],"
                           "\"concurrency\":[]}", 4, &t), LLMB_EINVAL);
    assert_int_equal(parse("{\"start_ms\":0,\"width_ms\":1000,"
                           "\"requests\":[-1],\"output_tokens\":[0],"
                           "\"concurrency\":[0]}", 4, &t), LLMB_EINVAL);
    assert_int_equal(parse("{\"start_ms\":0,\"width_ms\":1000,"
                           "\"requests\":[1.5],\"output_tokens\":[0],"
                           "\"concurrency\":[0]}", 4, &t), LLMB_EINVAL);
    assert_int_equal(parse("{\"start_ms\":0,\"width_ms\":1000,"
                           "\"requests\":[1],\"output_tokens\":[0],"
                           "\"concurrency\":[\"x\"]}", 4, &t), LLMB_EINVAL);
    assert_int_equal(parse("[1]", 4, &t), LLMB_EINVAL);
    /* the last bucket starts by START_MAX (2^50), not past it */
    assert_int_equal(parse("{\"start_ms\":1125899906842624,\"width_ms\":"
                           "1099511627776,\"requests\":[1],"
                           "\"output_tokens\":[0],\"concurrency\":[0]}", 4,
                           &t), 0);
    llmb_series_fini(&t);
    assert_int_equal(parse("{\"start_ms\":1125899906842624,\"width_ms\":"
                           "1099511627776,\"requests\":[1,1],"
                           "\"output_tokens\":[0,0],\"concurrency\":[0,0]}",
                           4, &t), LLMB_EINVAL);
    assert_int_equal(parse("{\"start_ms\":1124800395214848,\"width_ms\":"
                           "1099511627776,\"requests\":[1,1],"
                           "\"output_tokens\":[0,0],\"concurrency\":[0,0]}",
                           4, &t), 0);
    llmb_series_fini(&t);
}

/* Series at both ends of time merge, with LLMB_SERIES_MAX buckets, into
 * one whose width the JSON form still reads back: at most WIDTH_MAX. */
static void test_span(void **state)
{
    static const char *const ends[] = {
        "{\"start_ms\":0,\"width_ms\":1048576000,\"requests\":[1],"
        "\"output_tokens\":[2],\"concurrency\":[0]}",
        "{\"start_ms\":1125899042816000,\"width_ms\":1048576000,"
        "\"requests\":[3],\"output_tokens\":[4],\"concurrency\":[0]}",
        "{\"start_ms\":1125281431552000,\"width_ms\":1073741824000,"
        "\"requests\":[5],\"output_tokens\":[6],\"concurrency\":[0]}",
    };
    struct llmb_series a, o, t;
    json_t *j;
    char *text;
    int64_t req = 0;

    (void)state;
    llmb_series_init(&a, LLMB_SERIES_WIDTH_MS, LLMB_SERIES_MAX);
    llmb_series_count(&a, 0, 7, 0);
    for (size_t k = 0; k < sizeof(ends) / sizeof(ends[0]); k++) {
        assert_int_equal(parse(ends[k], LLMB_SERIES_MAX, &o), 0);
        assert_int_equal(llmb_series_merge(&a, &o), 0);
        llmb_series_fini(&o);
        assert_true(a.width_ms <= LLMB_SERIES_WIDTH_MAX);
        assert_true(a.n <= LLMB_SERIES_MAX);
    }
    j = llmb_series_json(&a);
    text = json_dumps(j, JSON_COMPACT);
    assert_int_equal(parse(text, LLMB_SERIES_MAX, &t), 0);
    for (size_t i = 0; i < t.n; i++)
        req += t.requests[i];
    assert_int_equal(req, 7 + 1 + 3 + 5);
    llmb_series_fini(&t);
    free(text);
    json_decref(j);
    llmb_series_fini(&a);
}

/* Counts merged from many results stop at LLMB_SERIES_COUNT_MAX (2^53,
 * the most the JSON form reads back) instead of overflowing, and so does
 * the mean concurrency: a job's merged series always reads back. */
static void test_saturate(void **state)
{
    static const char one[] =
        "{\"start_ms\":0,\"width_ms\":1000,"
        "\"requests\":[9007199254740991],"
        "\"output_tokens\":[9007199254740992],"
        "\"concurrency\":[9007199254740992]}";
    struct llmb_series a, o, t;
    json_t *j;
    char *text;

    (void)state;
    llmb_series_init(&a, 1000, 10);
    assert_int_equal(parse(one, 10, &o), 0);
    /* past 2^63 / 2^53 = 1024 merges a plain sum would wrap */
    for (int i = 0; i < 1100; i++)
        assert_int_equal(llmb_series_merge(&a, &o), 0);
    assert_int_equal(a.n, 1);
    assert_true(a.requests[0] == LLMB_SERIES_COUNT_MAX);
    assert_true(a.tokens[0] == LLMB_SERIES_COUNT_MAX);
    /* counting on stays at the ceiling */
    llmb_series_count(&a, 0, 1, 1);
    assert_true(a.requests[0] == LLMB_SERIES_COUNT_MAX);
    j = llmb_series_json(&a);
    text = json_dumps(j, JSON_COMPACT);
    assert_int_equal(parse(text, 10, &t), 0);
    assert_true(t.requests[0] == LLMB_SERIES_COUNT_MAX);
    assert_true(t.busy[0] == (double)LLMB_SERIES_COUNT_MAX * 1000.0);
    llmb_series_fini(&t);
    free(text);
    json_decref(j);
    llmb_series_fini(&o);
    llmb_series_fini(&a);
}

/* A timeline whose monotonic 0 is wall-clock 1,000,000.000 s. */
static void timeline_at(struct llmb_llm_timeline *tl)
{
    llmb_llm_timeline_start(tl);
    tl->mono0_us = 0;
    tl->wall0_us = INT64_C(1000000000000);
}

static void test_timeline(void **state)
{
    struct llmb_llm_timeline tl;
    struct llmb_llm_record rec;
    uint32_t gaps[3] = {400000, 400000, 400000};

    (void)state;
    timeline_at(&tl);
    /* sent at 0.5 s, first chunk at 0.8 s, then 1.2, 1.6, 2.0 s; ended at
     * 2.1 s with 10 tokens: chunks carry 2, 3, 2, 3 */
    memset(&rec, 0, sizeof(rec));
    rec.cls = LLMB_LLM_OK;
    rec.e2e_ms = 1600.0;
    rec.ttft_ms = 300.0;
    rec.output_tokens = 10;
    rec.gaps_us = gaps;
    rec.ngaps = 3;
    llmb_llm_timeline_busy(&tl, 500000, 2100000, 1);
    llmb_llm_timeline_end(&tl, &rec, 2100000);
    assert_int_equal(tl.s.start_ms, INT64_C(1000000000));
    assert_int_equal(tl.s.n, 3);
    assert_int_equal(tl.s.tokens[0], 2);
    assert_int_equal(tl.s.tokens[1], 3 + 2);
    assert_int_equal(tl.s.tokens[2], 3);
    assert_int_equal(tl.s.requests[2], 1);
    assert_true(tl.s.busy[0] == 500.0 && tl.s.busy[2] == 100.0);

    /* not streamed: its tokens at its end */
    rec.ttft_ms = -1.0;
    rec.gaps_us = NULL;
    rec.ngaps = 0;
    llmb_llm_timeline_end(&tl, &rec, 1000000);
    assert_int_equal(tl.s.tokens[1], 5 + 10);
    /* more chunks than tokens: still the tokens, no more */
    rec.ttft_ms = 100.0;
    rec.output_tokens = 2;
    rec.gaps_us = gaps;
    rec.ngaps = 3;
    llmb_llm_timeline_end(&tl, &rec, 2100000);
    assert_int_equal(sum_tokens(&tl.s), 10 + 10 + 2);
    /* a failed request counts as ended, with no tokens */
    rec.cls = LLMB_LLM_HTTP_5XX;
    llmb_llm_timeline_end(&tl, &rec, 2100000);
    assert_int_equal(sum_tokens(&tl.s), 22);
    assert_int_equal(tl.s.requests[2], 3);
    llmb_llm_timeline_fini(&tl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_busy),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_span),
        cmocka_unit_test(test_saturate),
        cmocka_unit_test(test_timeline),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
