/*
 * Unit tests of lib/aggregate.c: the percentile math against values worked
 * out by hand (and matching NumPy's default "linear" percentile), the
 * flattening of nested objects and arrays into dotted paths, what is
 * ignored, the limits, and the JSON the coordinator stores.
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

#include <llmb/aggregate.h>
#include <llmb/err.h>

static void assert_close(double got, double want)
{
    double tol = 1e-9 * fmax(1.0, fabs(want));

    if (fabs(got - want) > tol)
        fail_msg("got %.17g, want %.17g", got, want);
}

/* Fetches field `path` of agg into *st; fails the test when it is absent. */
static void field_of(struct llmb_agg *agg, const char *path,
                     struct llmb_agg_stats *st)
{
    size_t i;

    for (i = 0; i < llmb_agg_nfields(agg); i++) {
        const char *p = NULL;
        assert_int_equal(llmb_agg_field(agg, i, &p, st), 0);
        if (strcmp(p, path) == 0)
            return;
    }
    fail_msg("field %s not found", path);
}

static void add(struct llmb_agg *agg, const char *json)
{
    assert_int_equal(llmb_agg_add_text(agg, json, strlen(json)), 0);
}

/* Known answers (NumPy: np.percentile(x, q), method "linear"). */
static void test_quantile_known(void **state)
{
    double five[] = {15, 20, 35, 40, 50};
    double ten[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    double two[] = {0, 10};
    double one[] = {42};
    double hundred[100];
    int i;

    (void)state;
    assert_close(llmb_agg_quantile(five, 5, 0.50), 35);
    assert_close(llmb_agg_quantile(five, 5, 0.90), 46);
    assert_close(llmb_agg_quantile(five, 5, 0.99), 49.6);
    assert_close(llmb_agg_quantile(five, 5, 0.40), 29);
    assert_close(llmb_agg_quantile(ten, 10, 0.50), 5.5);
    assert_close(llmb_agg_quantile(ten, 10, 0.90), 9.1);
    assert_close(llmb_agg_quantile(ten, 10, 0.99), 9.91);
    assert_close(llmb_agg_quantile(two, 2, 0.90), 9);
    assert_close(llmb_agg_quantile(two, 2, 0.99), 9.9);
    assert_close(llmb_agg_quantile(one, 1, 0.99), 42);
    assert_close(llmb_agg_quantile(ten, 10, 0.0), 1);
    assert_close(llmb_agg_quantile(ten, 10, 1.0), 10);
    assert_close(llmb_agg_quantile(ten, 10, -3), 1);
    assert_close(llmb_agg_quantile(ten, 10, 7), 10);
    for (i = 0; i < 100; i++)
        hundred[i] = i + 1;
    assert_close(llmb_agg_quantile(hundred, 100, 0.50), 50.5);
    assert_close(llmb_agg_quantile(hundred, 100, 0.90), 90.1);
    assert_close(llmb_agg_quantile(hundred, 100, 0.99), 99.01);
}

/* Reference: the textbook form (1 - t) * a + t * b on a sorted copy. */
static double ref_quantile(const double *sorted, size_t n, double q)
{
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)h;
    double t = h - (double)lo;

    if (lo + 1 >= n)
        return sorted[n - 1];
    return (1.0 - t) * sorted[lo] + t * sorted[lo + 1];
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static void test_stats_random(void **state)
{
    double v[257], sorted[257];
    struct llmb_agg_stats st;
    double sum = 0;
    unsigned seed = 12345;
    size_t i;

    (void)state;
    for (i = 0; i < 257; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (double)(seed >> 8 & 0xffff) / 7.0 - 3000.0;
        sum += v[i];
    }
    memcpy(sorted, v, sizeof(v));
    qsort(sorted, 257, sizeof(double), cmp);
    llmb_agg_stats_compute(v, 257, &st);
    assert_int_equal(st.count, 257);
    assert_close(st.min, sorted[0]);
    assert_close(st.max, sorted[256]);
    assert_close(st.mean, sum / 257);
    assert_close(st.p50, ref_quantile(sorted, 257, 0.50));
    assert_close(st.p90, ref_quantile(sorted, 257, 0.90));
    assert_close(st.p99, ref_quantile(sorted, 257, 0.99));

    llmb_agg_stats_compute(v, 0, &st);
    assert_int_equal(st.count, 0);
    assert_close(st.max, 0);
}

static void test_flatten_nested(void **state)
{
    struct llmb_agg *agg = llmb_agg_new(NULL);
    struct llmb_agg_stats st;
    const char *p = NULL;

    (void)state;
    add(agg, "{\"a\":1,\"b\":{\"c\":2.5,\"d\":\"7\",\"e\":true,\"f\":null,"
             "\"g\":{\"h\":-3}},\"s\":\"x\",\"t\":false}");
    add(agg, "{\"a\":3,\"b\":{\"c\":0.5}}");
    assert_int_equal(llmb_agg_nfields(agg), 3);
    /* Sorted by path. */
    assert_int_equal(llmb_agg_field(agg, 0, &p, &st), 0);
    assert_string_equal(p, "a");
    assert_int_equal(st.count, 2);
    assert_close(st.mean, 2);
    assert_int_equal(llmb_agg_field(agg, 1, &p, &st), 0);
    assert_string_equal(p, "b.c");
    assert_close(st.min, 0.5);
    assert_close(st.max, 2.5);
    assert_close(st.p50, 1.5);
    assert_int_equal(llmb_agg_field(agg, 2, &p, &st), 0);
    assert_string_equal(p, "b.g.h");
    assert_close(st.p99, -3);
    assert_int_equal(llmb_agg_field(agg, 3, &p, &st), LLMB_EINVAL);
    llmb_agg_free(agg);
}

static void test_flatten_arrays(void **state)
{
    struct llmb_agg *agg = llmb_agg_new(NULL);
    struct llmb_agg_stats st;

    (void)state;
    add(agg, "{\"requests\":[{\"ttft_ms\":1},{\"ttft_ms\":2}]}");
    add(agg, "{\"requests\":[{\"ttft_ms\":3,\"ok\":true}],"
             "\"lat\":[4,[5,6],\"x\"]}");
    assert_int_equal(llmb_agg_nfields(agg), 2);
    field_of(agg, "requests.ttft_ms", &st);
    assert_int_equal(st.count, 3);
    assert_close(st.mean, 2);
    assert_close(st.p90, 2.8);
    field_of(agg, "lat", &st);
    assert_int_equal(st.count, 3);
    assert_close(st.min, 4);
    assert_close(st.max, 6);
    llmb_agg_free(agg);
}

static void test_empty_and_ignored(void **state)
{
    struct llmb_agg *agg = llmb_agg_new(NULL);
    json_t *fields;

    (void)state;
    add(agg, "{}");
    add(agg, "[]");
    add(agg, "5");          /* a bare number has no path */
    add(agg, "[1, 2]");     /* nor do numbers in a bare array */
    add(agg, "\"text\"");
    add(agg, "{\"a\":\"1\",\"b\":[],\"c\":{},\"d\":null}");
    assert_int_equal(llmb_agg_add_text(agg, "{not json", 9), LLMB_EINVAL);
    assert_int_equal(llmb_agg_add_text(agg, "", 0), LLMB_EINVAL);
    llmb_agg_add(agg, NULL);
    assert_int_equal(llmb_agg_nfields(agg), 0);
    fields = llmb_agg_fields_json(agg);
    assert_int_equal(json_object_size(fields), 0);
    json_decref(fields);
    llmb_agg_free(agg);
    llmb_agg_free(NULL);
}

/* 100 results {"x": i, "y": {"z": [i, 2i]}}, as a fan-out job returns. */
static void test_many_results(void **state)
{
    struct llmb_agg *agg = llmb_agg_new(NULL);
    struct llmb_agg_stats st;
    char buf[128];
    int i;

    (void)state;
    for (i = 1; i <= 100; i++) {
        snprintf(buf, sizeof(buf), "{\"x\":%d,\"y\":{\"z\":[%d,%d]}}", i, i,
                 2 * i);
        add(agg, buf);
    }
    field_of(agg, "x", &st);
    assert_int_equal(st.count, 100);
    assert_close(st.min, 1);
    assert_close(st.max, 100);
    assert_close(st.mean, 50.5);
    assert_close(st.p50, 50.5);
    assert_close(st.p90, 90.1);
    assert_close(st.p99, 99.01);
    /* z holds 1..100 and 2..200 step 2: 200 samples. */
    field_of(agg, "y.z", &st);
    assert_int_equal(st.count, 200);
    assert_close(st.mean, (5050.0 + 10100.0) / 200.0);
    assert_close(st.max, 200);
    llmb_agg_free(agg);
}

static void test_limits(void **state)
{
    struct llmb_agg_limits lim = {.max_fields = 2, .max_samples = 100};
    struct llmb_agg *agg = llmb_agg_new(&lim);
    struct llmb_agg_stats st;
    char buf[64];
    int i;

    (void)state;
    add(agg, "{\"a\":1,\"b\":2,\"c\":3,\"d\":4}");
    assert_int_equal(llmb_agg_nfields(agg), 2);
    assert_int_equal(llmb_agg_dropped(agg), 2);
    for (i = 0; i < 10000; i++) {
        snprintf(buf, sizeof(buf), "{\"a\":%d}", i);
        add(agg, buf);
    }
    field_of(agg, "a", &st);
    /* Count, min, mean and max stay exact past the reservoir. */
    assert_int_equal(st.count, 10001);
    assert_close(st.min, 0);
    assert_close(st.max, 9999);
    assert_close(st.mean, (1.0 + 9999.0 * 10000.0 / 2.0) / 10001.0);
    /* Percentiles come from 100 uniform samples: roughly right. */
    assert_true(st.p50 > 2500 && st.p50 < 7500);
    assert_true(st.p90 > st.p50 && st.p99 >= st.p90);
    llmb_agg_free(agg);
}

static void test_fields_json(void **state)
{
    struct llmb_agg *agg = llmb_agg_new(NULL);
    json_t *fields, *f;
    char *text;

    (void)state;
    add(agg, "{\"tok\":{\"n\":1},\"ms\":0.5}");
    add(agg, "{\"tok\":{\"n\":2},\"ms\":1.5}");
    fields = llmb_agg_fields_json(agg);
    text = json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS |
                                  JSON_REAL_PRECISION(15));
    assert_string_equal(text,
        "{\"ms\":{\"count\":2,\"max\":1.5,\"mean\":1,\"min\":0.5,"
        "\"p50\":1,\"p90\":1.4,\"p99\":1.49,\"sum\":2},"
        "\"tok.n\":{\"count\":2,\"max\":2,\"mean\":1.5,\"min\":1,"
        "\"p50\":1.5,\"p90\":1.9,\"p99\":1.99,\"sum\":3}}");
    free(text);
    f = json_object_get(json_object_get(fields, "tok.n"), "max");
    assert_true(json_is_integer(f));
    json_decref(fields);
    llmb_agg_free(agg);
}

static void test_json_number(void **state)
{
    json_t *v;

    (void)state;
    v = llmb_agg_json_number(5.0);
    assert_true(json_is_integer(v));
    assert_int_equal(json_integer_value(v), 5);
    json_decref(v);
    v = llmb_agg_json_number(-0.25);
    assert_true(json_is_real(v));
    json_decref(v);
    v = llmb_agg_json_number(1e300);
    assert_true(json_is_real(v));
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantile_known),
        cmocka_unit_test(test_stats_random),
        cmocka_unit_test(test_flatten_nested),
        cmocka_unit_test(test_flatten_arrays),
        cmocka_unit_test(test_empty_and_ignored),
        cmocka_unit_test(test_many_results),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_fields_json),
        cmocka_unit_test(test_json_number),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
