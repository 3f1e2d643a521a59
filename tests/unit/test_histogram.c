/*
 * Unit tests of lib/histogram.c: the bucket layout, the relative error
 * bound of percentiles against the exact nearest-rank percentiles of
 * random data (uniform, log-normal, two-mode), merging equal to recording
 * everything in one histogram, and the JSON form round trip and its
 * rejections.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <llmb/err.h>
#include <llmb/histogram.h>

/* The documented bound, 1/256, plus a hair for the ticks' rounding. */
#define BOUND (1.0 / 256.0 + 1e-12)

static uint64_t rng = 88172645463325252ULL;

static double uniform01(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) * (1.0 / 9007199254740992.0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Exact nearest-rank percentile of sorted[0..n-1]. */
static double nearest_rank(const double *sorted, size_t n, double q)
{
    size_t r = (size_t)ceil(q * (double)n);

    if (r < 1)
        r = 1;
    return sorted[r - 1];
}

static void test_buckets(void **state)
{
    (void)state;
    for (uint64_t t = 0; t < 256; t++)
        assert_int_equal(llmb_hist_bucket(t), t);
    assert_int_equal(llmb_hist_bucket(256), 256);
    assert_int_equal(llmb_hist_bucket(257), 256);
    assert_int_equal(llmb_hist_bucket(258), 257);
    assert_int_equal(llmb_hist_bucket(UINT64_MAX), LLMB_HIST_NBUCKETS - 1);
    /* Every bucket is contiguous with the next, and from 256 on at most
     * 1/128 of its low end wide. */
    for (size_t i = 0; i + 1 < LLMB_HIST_NBUCKETS; i++) {
        uint64_t lo = llmb_hist_bucket_low(i), hi = llmb_hist_bucket_high(i);
        assert_int_equal(llmb_hist_bucket(lo), i);
        assert_int_equal(llmb_hist_bucket(hi), i);
        assert_int_equal(llmb_hist_bucket_low(i + 1), hi + 1);
        if (i >= 256) /* below, every tick has its own bucket */
            assert_true((double)(hi - lo + 1) / (double)lo <= 1.0 / 128.0);
    }
    assert_int_equal(llmb_hist_bucket_high(LLMB_HIST_NBUCKETS - 1),
                     UINT64_MAX);
}

/* Records n values from gen into a histogram of scale 10^6 and checks
 * p0..p100 in steps of 0.1 % against the exact nearest rank. */
static void check_bound(double (*gen)(void), size_t n)
{
    struct llmb_hist h;
    double *v = malloc(n * sizeof(*v)), worst = 0;

    llmb_hist_init(&h, 1000000);
    for (size_t i = 0; i < n; i++) {
        /* round to the tick, as the histogram does */
        v[i] = round(gen() * 1e6) / 1e6;
        llmb_hist_record(&h, v[i], 1);
    }
    qsort(v, n, sizeof(*v), cmp_double);
    assert_int_equal(h.count, n);
    assert_true(llmb_hist_min(&h) == v[0]);
    assert_true(llmb_hist_max(&h) == v[n - 1]);
    for (int k = 0; k <= 1000; k++) {
        double q = k / 1000.0, want = nearest_rank(v, n, q);
        double got = llmb_hist_percentile(&h, q);
        double err = want > 0 ? fabs(got - want) / want : fabs(got);
        if (err > worst)
            worst = err;
        if (err > BOUND)
            fail_msg("q=%.3f got %.9g want %.9g (error %.5f%%)", q, got, want,
                     err * 100);
    }
    printf("# worst relative error %.4f%% over %zu values\n", worst * 100, n);
    free(v);
    llmb_hist_fini(&h);
}

static double gen_uniform(void) { return 0.001 + uniform01() * 5000.0; }

static double gen_lognormal(void)
{
    double u1 = uniform01() + 1e-12, u2 = uniform01();
    double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
    return exp(3.0 + 1.5 * z); /* ms: median 20, long tail */
}

static double gen_bimodal(void)
{
    /* token gaps of 5 ms with an 80 ms stall one time in 16 */
    return uniform01() < 1.0 / 16.0 ? 80.0 + uniform01() * 0.6 :
           5.0 + uniform01() * 0.2;
}

static void test_error_bound(void **state)
{
    (void)state;
    check_bound(gen_uniform, 100000);
    check_bound(gen_lognormal, 100000);
    check_bound(gen_bimodal, 50000);
    check_bound(gen_uniform, 1);
    check_bound(gen_lognormal, 7);
}

static void test_exact_small_ticks(void **state)
{
    struct llmb_hist h;

    (void)state;
    llmb_hist_init(&h, 1);
    for (int i = 1; i <= 100; i++)
        llmb_hist_record(&h, i, 1);
    assert_true(llmb_hist_percentile(&h, 0.5) == 50.0);
    assert_true(llmb_hist_percentile(&h, 0.99) == 99.0);
    assert_true(llmb_hist_percentile(&h, 0.991) == 100.0);
    assert_true(llmb_hist_mean(&h) == 50.5);
    llmb_hist_record(&h, -3, 1); /* counts as 0 */
    llmb_hist_record(&h, NAN, 1); /* ignored */
    assert_int_equal(h.count, 101);
    assert_true(llmb_hist_min(&h) == 0.0);
    llmb_hist_fini(&h);
    assert_true(llmb_hist_percentile(&h, 0.5) == 0.0);
}

/* Split random data over several histograms, merge them: the same
 * histogram as recording all of it in one. */
static void test_merge(void **state)
{
    struct llmb_hist all, part[5], m;

    (void)state;
    llmb_hist_init(&all, 1000000);
    llmb_hist_init(&m, 1000000);
    for (int k = 0; k < 5; k++)
        llmb_hist_init(&part[k], 1000000);
    for (int i = 0; i < 20000; i++) {
        double v = i % 3 == 0 ? gen_lognormal() : gen_bimodal();
        llmb_hist_record(&all, v, 1);
        /* parts of very different sizes and ranges */
        llmb_hist_record(&part[(i * 7) % (i % 2 ? 5 : 2)], v, 1);
    }
    for (int k = 0; k < 5; k++)
        assert_int_equal(llmb_hist_merge(&m, &part[k]), 0);
    assert_int_equal(m.count, all.count);
    assert_true(m.min == all.min && m.max == all.max && m.sum == all.sum);
    for (size_t i = 0; i < all.nb || i < m.nb; i++)
        assert_int_equal(i < m.nb ? m.b[i] : 0, i < all.nb ? all.b[i] : 0);
    for (int k = 0; k <= 100; k++)
        assert_true(llmb_hist_percentile(&m, k / 100.0) ==
                    llmb_hist_percentile(&all, k / 100.0));
    /* scales must agree */
    {
        struct llmb_hist other;
        llmb_hist_init(&other, 1000);
        llmb_hist_record(&other, 1.0, 1);
        assert_int_equal(llmb_hist_merge(&m, &other), LLMB_EINVAL);
        assert_int_equal(m.count, all.count);
        llmb_hist_fini(&other);
    }
    for (int k = 0; k < 5; k++)
        llmb_hist_fini(&part[k]);
    llmb_hist_fini(&all);
    llmb_hist_fini(&m);
}

static void test_json_round_trip(void **state)
{
    struct llmb_hist h, back;
    const char *err = NULL;
    json_t *j;
    char *text;

    (void)state;
    llmb_hist_init(&h, 1000000);
    for (int i = 0; i < 5000; i++)
        llmb_hist_record(&h, gen_bimodal(), 1);
    llmb_hist_record(&h, 0, 3);
    j = llmb_hist_json(&h);
    assert_true(llmb_hist_json_is(j));
    text = json_dumps(j, JSON_COMPACT);
    /* two modes a few buckets wide each: short */
    assert_true(strlen(text) < 1200);
    assert_int_equal(llmb_hist_from_json(&back, j, &err), 0);
    assert_null(err);
    assert_true(back.scale == h.scale && back.count == h.count &&
                back.min == h.min && back.max == h.max && back.sum == h.sum);
    for (int k = 0; k <= 100; k++)
        assert_true(llmb_hist_percentile(&back, k / 100.0) ==
                    llmb_hist_percentile(&h, k / 100.0));
    free(text);
    json_decref(j);
    llmb_hist_fini(&back);
    llmb_hist_fini(&h);
}

static void reject(const char *text, const char *want)
{
    json_t *j = json_loads(text, 0, NULL);
    struct llmb_hist h;
    const char *err = NULL;

    assert_non_null(j);
    assert_int_equal(llmb_hist_from_json(&h, j, &err), LLMB_EINVAL);
    assert_non_null(err);
    if (strstr(err, want) == NULL)
        fail_msg("%s: got \"%s\", want \"%s\"", text, err, want);
    assert_int_equal(h.nb, 0);
    llmb_hist_fini(&h);
    json_decref(j);
}

static void test_json_rejects(void **state)
{
    (void)state;
    reject("{\"hist\":\"other\"}", "not a histogram");
    reject("{\"hist\":\"llmb-loglin-7\",\"scale\":0}", "scale");
    reject("{\"hist\":\"llmb-loglin-7\",\"scale\":1,\"count\":1,\"min\":1,"
           "\"max\":1,\"sum\":1,\"b\":[1]}", "pairs");
    reject("{\"hist\":\"llmb-loglin-7\",\"scale\":1,\"count\":2,\"min\":1,"
           "\"max\":1,\"sum\":1,\"b\":[1,1]}", "add up");
    reject("{\"hist\":\"llmb-loglin-7\",\"scale\":1,\"count\":1,\"min\":1,"
           "\"max\":1,\"sum\":1,\"b\":[99999,1]}", "out of range");
    reject("{\"hist\":\"llmb-loglin-7\",\"scale\":1,\"count\":2,\"min\":1,"
           "\"max\":2,\"sum\":3,\"b\":[1,1,0,1]}", "out of range");
    reject("{\"hist\":\"llmb-loglin-7\",\"scale\":1,\"count\":1,\"min\":5,"
           "\"max\":5,\"sum\":5,\"b\":[1,1]}", "non-empty bucket");
    reject("{\"hist\":\"llmb-loglin-7\",\"scale\":1,\"count\":1,\"min\":1,"
           "\"max\":900,\"sum\":5,\"b\":[1,1]}", "non-empty bucket");
    reject("{\"hist\":\"llmb-loglin-7\",\"scale\":1,\"count\":1,\"min\":1,"
           "\"max\":1,\"sum\":-1,\"b\":[1,1]}", "non-negative");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_error_bound),
        cmocka_unit_test(test_exact_small_ticks),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_rejects),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
