/*
 * Unit tests of lib/aggregate.c: the percentile math against values worked
 * out by hand (and matching NumPy's default "linear" percentile), the
 * flattening of nested objects and arrays into dotted paths, what is
 * ignored, the limits, kinds (inferred, declared by results, set by the
 * job), the rounding, and the JSON the coordinator stores.
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
#include <llmb/histogram.h>

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
    /* a, b.c, b.g.h and the flags b.e and t; not the strings nor null. */
    assert_int_equal(llmb_agg_nfields(agg), 5);
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
    assert_string_equal(p, "b.e");
    assert_int_equal(st.kind, LLMB_AGG_FLAG);
    assert_int_equal(llmb_agg_field(agg, 3, &p, &st), 0);
    assert_string_equal(p, "b.g.h");
    assert_close(st.p99, -3);
    assert_int_equal(llmb_agg_field(agg, 4, &p, &st), 0);
    assert_string_equal(p, "t");
    assert_int_equal(st.count, 1);
    assert_close(st.sum, 0);
    assert_int_equal(llmb_agg_field(agg, 5, &p, &st), LLMB_EINVAL);
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
    assert_int_equal(llmb_agg_nfields(agg), 3); /* and the flag .ok */
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
    fields = llmb_agg_fields_json(agg, 1000);
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

static char *dump(const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15));

    assert_non_null(text);
    return text;
}

/* Each kind gets its own statistics; sum and per_s for counts only. */
static void test_fields_json(void **state)
{
    struct llmb_agg *agg = llmb_agg_new(NULL);
    json_t *fields;
    char *text;

    (void)state;
    add(agg, "{\"tok\":{\"output_tokens\":1},\"ms\":0.5,\"cached\":true,"
             "\"status\":200,\"ratio\":0.3}");
    add(agg, "{\"tok\":{\"output_tokens\":2},\"ms\":1.5,\"cached\":false,"
             "\"status\":429,\"ratio\":0.5}");
    add(agg, "{\"status\":200}");
    fields = llmb_agg_fields_json(agg, 1500);
    text = dump(fields);
    assert_string_equal(text,
        "{\"cached\":{\"kind\":\"flag\",\"count\":2,\"true\":1,\"mean\":0.5},"
        "\"ms\":{\"kind\":\"duration\",\"unit\":\"ms\",\"count\":2,"
        "\"min\":0.5,\"mean\":1,\"p50\":1,\"p90\":1.4,\"p99\":1.49,"
        "\"max\":1.5},"
        "\"ratio\":{\"kind\":\"gauge\",\"count\":2,\"min\":0.3,\"mean\":0.4,"
        "\"p50\":0.4,\"p90\":0.48,\"p99\":0.498,\"max\":0.5},"
        "\"status\":{\"kind\":\"label\",\"count\":3,"
        "\"values\":{\"200\":2,\"429\":1}},"
        "\"tok.output_tokens\":{\"kind\":\"count\",\"count\":2,\"sum\":3,"
        "\"min\":1,\"mean\":1.5,\"p50\":1.5,\"p90\":1.9,\"p99\":1.99,"
        "\"max\":2,\"per_s\":2}}");
    free(text);
    assert_true(json_is_integer(json_object_get(
        json_object_get(fields, "tok.output_tokens"), "max")));
    json_decref(fields);
    /* No run time, no rate. */
    fields = llmb_agg_fields_json(agg, 0);
    assert_null(json_object_get(json_object_get(fields, "tok.output_tokens"),
                                "per_s"));
    json_decref(fields);
    llmb_agg_free(agg);
}

static void test_kind_infer(void **state)
{
    static const struct {
        const char *path;
        json_type type;
        enum llmb_agg_kind want;
    } cases[] = {
        {"latency_ms", JSON_REAL, LLMB_AGG_DURATION},
        {"requests.ttft_ms", JSON_REAL, LLMB_AGG_DURATION},
        {"summary.duration_ms", JSON_REAL, LLMB_AGG_DURATION},
        {"slept_ms", JSON_INTEGER, LLMB_AGG_DURATION},
        {"wait_s", JSON_REAL, LLMB_AGG_DURATION},
        {"gpu_us", JSON_INTEGER, LLMB_AGG_DURATION},
        {"ms", JSON_INTEGER, LLMB_AGG_DURATION},
        {"requests.tokens_per_s", JSON_REAL, LLMB_AGG_GAUGE},
        {"summary.request_rate", JSON_REAL, LLMB_AGG_GAUGE},
        {"summary.requests", JSON_INTEGER, LLMB_AGG_COUNT},
        {"summary.output_tokens", JSON_INTEGER, LLMB_AGG_COUNT},
        {"requests.input_tokens", JSON_INTEGER, LLMB_AGG_COUNT},
        {"summary.errors.http_429", JSON_INTEGER, LLMB_AGG_COUNT},
        {"summary.retries", JSON_INTEGER, LLMB_AGG_COUNT},
        {"summary.ok", JSON_INTEGER, LLMB_AGG_COUNT},
        {"summary.failed", JSON_INTEGER, LLMB_AGG_COUNT},
        {"bytes", JSON_INTEGER, LLMB_AGG_COUNT},
        {"summary.records_dropped", JSON_INTEGER, LLMB_AGG_COUNT},
        {"requests.status", JSON_INTEGER, LLMB_AGG_LABEL},
        {"exit_code", JSON_INTEGER, LLMB_AGG_LABEL},
        {"requests.tokens_estimated", JSON_TRUE, LLMB_AGG_FLAG},
        {"ok", JSON_FALSE, LLMB_AGG_FLAG},
        {"temperature", JSON_REAL, LLMB_AGG_GAUGE},
        {"mass", JSON_REAL, LLMB_AGG_GAUGE},       /* not "_s" */
        {"status_ms", JSON_REAL, LLMB_AGG_DURATION},
        {"tokensx", JSON_INTEGER, LLMB_AGG_GAUGE},
        {"okay", JSON_INTEGER, LLMB_AGG_GAUGE},
        {"errors_seen.x", JSON_INTEGER, LLMB_AGG_GAUGE},
    };
    enum llmb_agg_kind k;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
        if (llmb_agg_kind_infer(cases[i].path, cases[i].type) != cases[i].want)
            fail_msg("%s: got %s, want %s", cases[i].path,
                     llmb_agg_kind_name(llmb_agg_kind_infer(cases[i].path,
                                                            cases[i].type)),
                     llmb_agg_kind_name(cases[i].want));
    assert_string_equal(llmb_agg_unit("a.ttft_ms"), "ms");
    assert_string_equal(llmb_agg_unit("wait_s"), "s");
    assert_null(llmb_agg_unit("tokens_per_s"));
    assert_null(llmb_agg_unit("tokens"));
    assert_int_equal(llmb_agg_kind_parse("count", &k), 0);
    assert_int_equal(k, LLMB_AGG_COUNT);
    assert_int_equal(llmb_agg_kind_parse("sum", &k), LLMB_EINVAL);
    assert_string_equal(llmb_agg_kind_name(LLMB_AGG_LABEL), "label");
}

/* Results naming a "_group" are aggregated in it too: "by" has one entry
 * per group, in the order they came, with its own fields and the job's
 * kinds; past LLMB_AGG_GROUPS_MAX groups a result counts as dropped. */
static void test_groups(void **state)
{
    struct llmb_agg *agg = llmb_agg_new(NULL);
    json_t *kinds = json_loads("{\"lat\":\"count\"}", 0, NULL);
    json_t *by, *g, *f, *one, *fields;
    const char *first = NULL, *k;
    char *err = NULL, doc[128];

    (void)state;
    assert_null(llmb_agg_by_json(agg, 1000)); /* no group: no "by" */
    assert_int_equal(llmb_agg_set_kinds(agg, kinds, &err), 0);
    json_decref(kinds);
    add(agg, "{\"_group\":\"b/m\",\"lat\":10,\"n_ms\":1}");
    add(agg, "{\"_group\":\"a/m\",\"lat\":20,\"n_ms\":2}");
    add(agg, "{\"_group\":\"b/m\",\"lat\":30,\"n_ms\":3}");
    add(agg, "{\"lat\":40,\"n_ms\":4}");          /* no group */
    add(agg, "{\"_group\":7,\"lat\":50,\"n_ms\":5}");  /* not a name */
    by = llmb_agg_by_json(agg, 2000);
    assert_int_equal(json_object_size(by), 2);
    json_object_foreach(by, k, g) {
        first = k;
        break;
    }
    assert_string_equal(first, "b/m");
    g = json_object_get(by, "b/m");
    assert_int_equal(json_integer_value(json_object_get(g, "results")), 2);
    f = json_object_get(json_object_get(g, "fields"), "lat");
    assert_string_equal(json_string_value(json_object_get(f, "kind")),
                        "count");
    assert_int_equal(json_integer_value(json_object_get(f, "sum")), 40);
    assert_int_equal(json_integer_value(json_object_get(f, "per_s")), 20);
    f = json_object_get(json_object_get(g, "fields"), "n_ms");
    assert_int_equal(json_integer_value(json_object_get(f, "max")), 3);
    one = json_pack("{s:O,s:i}", "by", by, "run_ms", 2000);
    g = llmb_agg_group(one, "a/m");
    assert_non_null(g);
    assert_int_equal(llmb_agg_stat(g, "lat", "sum"), 20);
    json_decref(g);
    assert_null(llmb_agg_group(one, "c/m"));
    json_decref(one);
    json_decref(by);
    /* the job's own fields count every result */
    fields = llmb_agg_fields_json(agg, 2000);
    f = json_object_get(fields, "lat");
    assert_int_equal(json_integer_value(json_object_get(f, "count")), 5);
    json_decref(fields);
    assert_int_equal(llmb_agg_dropped(agg), 0);
    for (int i = 0; i < LLMB_AGG_GROUPS_MAX; i++) {
        snprintf(doc, sizeof(doc), "{\"_group\":\"e%d/m\",\"lat\":1}", i);
        add(agg, doc);
    }
    /* two groups came first: the last two new ones are dropped */
    assert_int_equal(llmb_agg_dropped(agg), 2);
    by = llmb_agg_by_json(agg, 1000);
    assert_int_equal(json_object_size(by), LLMB_AGG_GROUPS_MAX);
    json_decref(by);
    llmb_agg_free(agg);
}

/* The measured window: the earliest summary.window_start_ms to the latest
 * summary.window_end_ms, over the job and per group; 0 without both. */
static void test_window(void **state)
{
    struct llmb_agg *agg = llmb_agg_new(NULL);
    json_t *by;

    (void)state;
    assert_int_equal(llmb_agg_window_ms(agg), 0);
    add(agg, "{\"_group\":\"a\",\"summary\":{\"window_start_ms\":1000,"
             "\"window_end_ms\":4000}}");
    add(agg, "{\"_group\":\"b\",\"summary\":{\"window_start_ms\":2500}}");
    assert_int_equal(llmb_agg_window_ms(agg), 3000);
    add(agg, "{\"_group\":\"b\",\"summary\":{\"window_start_ms\":2000,"
             "\"window_end_ms\":9500}}");
    assert_int_equal(llmb_agg_window_ms(agg), 8500);
    by = llmb_agg_by_json(agg, 100000);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(by, "a"), "measured_ms")), 3000);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(by, "b"), "measured_ms")), 7500);
    json_decref(by);
    llmb_agg_free(agg);

    /* a start alone, or an end before the start, is no window */
    agg = llmb_agg_new(NULL);
    add(agg, "{\"summary\":{\"window_start_ms\":5000}}");
    assert_int_equal(llmb_agg_window_ms(agg), 0);
    add(agg, "{\"summary\":{\"window_end_ms\":4000}}");
    assert_int_equal(llmb_agg_window_ms(agg), 0);
    llmb_agg_free(agg);
}

/* "_kinds" of a result declares; the job's kinds win over both. */
static void test_kinds_declared(void **state)
{
    struct llmb_agg *agg = llmb_agg_new(NULL);
    json_t *kinds = json_loads("{\"model_id\":\"label\",\"hits\":\"count\"}",
                               0, NULL);
    json_t *fields, *f;
    char *err = NULL;

    (void)state;
    assert_int_equal(llmb_agg_set_kinds(agg, kinds, &err), 0);
    json_decref(kinds);
    add(agg, "{\"_kinds\":{\"hits\":\"gauge\",\"lat\":\"duration\","
             "\"model\":\"label\",\"x\":\"nonsense\"},"
             "\"hits\":3,\"lat\":7,\"model\":\"m1\",\"model_id\":4,"
             "\"x\":1,\"note\":\"free text\"}");
    /* A later declaration does not change a kind already given. */
    add(agg, "{\"_kinds\":{\"lat\":\"count\"},\"hits\":5,\"lat\":9,"
             "\"model\":\"m2\",\"model_id\":4,"
             "\"_requests\":[{\"lat\":100,\"hits\":1}],\"_n\":3}");
    fields = llmb_agg_fields_json(agg, 1000);
    assert_null(json_object_get(fields, "_kinds"));
    /* top-level "_" keys are for the result's readers: not aggregated */
    assert_null(json_object_get(fields, "_requests.lat"));
    assert_null(json_object_get(fields, "_n"));
    assert_null(json_object_get(fields, "note")); /* undeclared string */
    f = json_object_get(fields, "hits");
    assert_string_equal(json_string_value(json_object_get(f, "kind")),
                        "count");
    assert_int_equal(json_integer_value(json_object_get(f, "sum")), 8);
    assert_int_equal(json_integer_value(json_object_get(f, "per_s")), 8);
    f = json_object_get(fields, "lat");
    assert_string_equal(json_string_value(json_object_get(f, "kind")),
                        "duration");
    assert_null(json_object_get(f, "unit")); /* declared, no suffix */
    assert_null(json_object_get(f, "sum"));
    assert_null(json_object_get(f, "per_s"));
    f = json_object_get(fields, "model");
    assert_int_equal(json_integer_value(json_object_get(
        json_object_get(f, "values"), "m2")), 1);
    f = json_object_get(fields, "model_id");
    assert_int_equal(json_integer_value(json_object_get(
        json_object_get(f, "values"), "4")), 2);
    f = json_object_get(fields, "x"); /* a bad declaration is ignored */
    assert_string_equal(json_string_value(json_object_get(f, "kind")),
                        "gauge");
    json_decref(fields);

    /* A bad job kind is reported, the good ones kept. */
    kinds = json_loads("{\"a\":\"sum\",\"b\":\"flag\"}", 0, NULL);
    assert_int_equal(llmb_agg_set_kinds(agg, kinds, &err), LLMB_EINVAL);
    assert_string_equal(err, "\"_kinds\" of \"a\" must be one of duration, "
                             "count, gauge, flag, label, got \"sum\"");
    free(err);
    json_decref(kinds);
    kinds = json_loads("{\"a\":3}", 0, NULL);
    assert_int_equal(llmb_agg_set_kinds(agg, kinds, &err), LLMB_EINVAL);
    assert_string_equal(err, "\"_kinds\" of \"a\" must be one of duration, "
                             "count, gauge, flag, label, got a non-string");
    free(err);
    json_decref(kinds);
    kinds = json_string("x");
    assert_int_equal(llmb_agg_set_kinds(agg, kinds, &err), LLMB_EINVAL);
    free(err);
    json_decref(kinds);
    assert_int_equal(llmb_agg_set_kinds(agg, NULL, &err), 0);
    llmb_agg_free(agg);
}

/* A label keeps LLMB_AGG_LABELS_MAX values, counts the rest as other. */
static void test_label_limit(void **state)
{
    struct llmb_agg *agg = llmb_agg_new(NULL);
    json_t *fields, *f;
    char buf[64];

    (void)state;
    for (int i = 0; i < LLMB_AGG_LABELS_MAX + 8; i++) {
        snprintf(buf, sizeof(buf), "{\"code\":%d}", i);
        add(agg, buf);
    }
    add(agg, "{\"code\":0}");
    fields = llmb_agg_fields_json(agg, 0);
    f = json_object_get(fields, "code");
    assert_int_equal(json_integer_value(json_object_get(f, "count")),
                     LLMB_AGG_LABELS_MAX + 9);
    assert_int_equal(json_object_size(json_object_get(f, "values")),
                     LLMB_AGG_LABELS_MAX);
    assert_int_equal(json_integer_value(json_object_get(f, "other")), 8);
    /* Most frequent first. */
    assert_string_equal(json_object_iter_key(json_object_iter(
                            json_object_get(f, "values"))), "0");
    json_decref(fields);
    llmb_agg_free(agg);
}

static void test_round(void **state)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0.8, "0.8"},
        {111.111111111, "111.111"},
        {1.0 / 3.0, "0.333333"},
        {2.0 / 3.0 * 1000.0, "666.667"},
        {1234567.891234, "1234567.891"},
        {0.000123456789, "0.000123457"},
        {1.5e-7, "1.5e-07"},
        {12.0, "12"},
        {-2.5, "-2.5"},
        {-0.0001, "-0.0001"},
        {-0.0000000001, "-1e-10"},
        {0.0, "0"},
        {1e20, "1e+20"},
        {7666.0, "7666"},
        {9.5e15, "9.5e+15"},
    };
    char buf[LLMB_AGG_NUM_LEN];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
        assert_string_equal(llmb_agg_format(cases[i].v, buf), cases[i].text);
    assert_true(llmb_agg_round(0.8) == 0.8);
    assert_true(llmb_agg_round(111.111111111) == 111.111);
    assert_true(isnan(llmb_agg_round(NAN)));
    assert_true(isinf(llmb_agg_round(INFINITY)));
    /* The JSON text of a rounded number holds no noise digits. */
    {
        json_t *v = llmb_agg_json_number(0.1 + 0.7);
        char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
        assert_string_equal(text, "0.8");
        free(text);
        json_decref(v);
    }
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

/* Histograms of several results merge: the field's statistics are those
 * of every value of every histogram, not of a sample or of the tasks'
 * percentiles; a bad or other-scale histogram is dropped. */
static void test_histograms_merge(void **state)
{
    struct llmb_agg *agg = llmb_agg_new(NULL);
    struct llmb_hist all;
    struct llmb_agg_stats st;
    json_t *fields, *f;

    (void)state;
    llmb_hist_init(&all, 1000000);
    for (int task = 0; task < 4; task++) {
        struct llmb_hist h;
        json_t *res = json_object(), *m = json_object();
        llmb_hist_init(&h, 1000000);
        /* task 3 alone holds the 80 ms stalls */
        for (int i = 0; i < 1000; i++) {
            double v = task == 3 && i % 10 == 0 ? 80.0 : 5.0 + i % 7 * 0.1;
            llmb_hist_record(&h, v, 1);
            llmb_hist_record(&all, v, 1);
        }
        json_object_set_new(m, "itl_ms", llmb_hist_json(&h));
        json_object_set_new(res, "metrics", m);
        llmb_agg_add(agg, res);
        json_decref(res);
        llmb_hist_fini(&h);
    }
    field_of(agg, "metrics.itl_ms", &st);
    assert_int_equal(st.count, 4000);
    assert_int_equal(st.kind, LLMB_AGG_DURATION);
    assert_close(st.p99, llmb_hist_percentile(&all, 0.99));
    assert_true(fabs(st.p99 - 80.0) <= 80.0 / 256);
    assert_close(st.p50, llmb_hist_percentile(&all, 0.50));
    assert_close(st.mean, llmb_hist_mean(&all));
    assert_close(st.max, 80.0);
    assert_close(st.min, 5.0);
    /* another scale, and a malformed one: dropped */
    assert_int_equal(llmb_agg_add_text(agg,
        "{\"metrics\":{\"itl_ms\":{\"hist\":\"llmb-loglin-7\",\"scale\":1,"
        "\"count\":1,\"min\":1,\"max\":1,\"sum\":1,\"b\":[1,1]}}}", 101), 0);
    assert_int_equal(llmb_agg_add_text(agg,
        "{\"metrics\":{\"itl_ms\":{\"hist\":\"llmb-loglin-7\"}}}", 47), 0);
    assert_int_equal(llmb_agg_dropped(agg), 2);
    field_of(agg, "metrics.itl_ms", &st);
    assert_int_equal(st.count, 4000);
    fields = llmb_agg_fields_json(agg, 1000);
    f = json_object_get(fields, "metrics.itl_ms");
    assert_non_null(json_object_get(f, "p99"));
    assert_null(json_object_get(f, "per_s"));
    assert_null(json_object_get(f, "b"));
    /* the merged histogram itself is kept, whole, under "hist" */
    {
        struct llmb_hist back;
        const char *err = NULL;
        assert_int_equal(llmb_hist_from_json(&back, json_object_get(f, "hist"),
                                             &err), 0);
        assert_int_equal(back.count, 4000);
        assert_close(llmb_hist_percentile(&back, 0.99),
                     llmb_hist_percentile(&all, 0.99));
        llmb_hist_fini(&back);
    }
    json_decref(fields);
    llmb_hist_fini(&all);
    llmb_agg_free(agg);
}

/* llmb_agg_stat reads fields[path][stat] of an aggregate document. */
static void test_agg_stat(void **state)
{
    json_t *agg = json_loads("{\"fields\":{\"metrics.ttft_ms\":{\"p99\":"
                             "12.5,\"count\":3},\"x\":{\"p99\":\"no\"}}}",
                             0, NULL);

    (void)state;
    assert_non_null(agg);
    assert_true(llmb_agg_stat(agg, "metrics.ttft_ms", "p99") == 12.5);
    assert_true(llmb_agg_stat(agg, "metrics.ttft_ms", "count") == 3);
    assert_true(isnan(llmb_agg_stat(agg, "metrics.ttft_ms", "p50")));
    assert_true(isnan(llmb_agg_stat(agg, "nope", "p99")));
    assert_true(isnan(llmb_agg_stat(agg, "x", "p99"))); /* not a number */
    assert_true(isnan(llmb_agg_stat(NULL, "x", "p99")));
    json_decref(agg);
}

/* Results' "_timeline" series merge per job and per group, bucket by
 * bucket on the widest width; one of another width is refused and
 * counted; the series is no field of the aggregate. */
static void test_timeline(void **state)
{
    struct llmb_agg *agg = llmb_agg_new(NULL);
    json_t *tl, *by;
    char *text;

    (void)state;
    assert_null(llmb_agg_series_json(agg)); /* no series: no "timeline" */
    add(agg, "{\"_group\":\"a/m\",\"_timeline\":{\"start_ms\":2000,"
             "\"width_ms\":1000,\"requests\":[1,2],\"output_tokens\":[10,20],"
             "\"concurrency\":[1,0.5]}}");
    add(agg, "{\"_group\":\"b/m\",\"_timeline\":{\"start_ms\":0,"
             "\"width_ms\":2000,\"requests\":[1,1],\"output_tokens\":[5,7],"
             "\"concurrency\":[2,2]}}");
    add(agg, "{\"_group\":\"b/m\",\"_timeline\":{\"start_ms\":0,"
             "\"width_ms\":1500,\"requests\":[1],\"output_tokens\":[1],"
             "\"concurrency\":[1]}}");
    tl = llmb_agg_series_json(agg);
    text = json_dumps(tl, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"concurrency\":[2,2.75],\"output_tokens\":"
                        "[5,37],\"refused\":1,\"requests\":[1,4],"
                        "\"start_ms\":0,\"tasks\":2,\"width_ms\":2000}");
    free(text);
    json_decref(tl);
    by = llmb_agg_by_json(agg, 1000);
    text = json_dumps(json_object_get(json_object_get(by, "a/m"),
                                      "timeline"),
                      JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"concurrency\":[1,0.5],\"output_tokens\":"
                        "[10,20],\"requests\":[1,2],\"start_ms\":2000,"
                        "\"tasks\":1,\"width_ms\":1000}");
    free(text);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(
        json_object_get(by, "b/m"), "timeline"), "refused")), 1);
    json_decref(by);
    /* not a field */
    assert_int_equal(llmb_agg_nfields(agg), 0);
    llmb_agg_free(agg);
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
        cmocka_unit_test(test_kind_infer),
        cmocka_unit_test(test_kinds_declared),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_label_limit),
        cmocka_unit_test(test_round),
        cmocka_unit_test(test_json_number),
        cmocka_unit_test(test_histograms_merge),
        cmocka_unit_test(test_agg_stat),
        cmocka_unit_test(test_timeline),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
