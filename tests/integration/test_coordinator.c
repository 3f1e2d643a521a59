/*
 * Integration tests of llmb-coordinator's job handling, with real
 * coordinator processes against the fixture redis-server and workers
 * simulated with plain Redis calls: a 100-task fan-out aggregated with the
 * right percentiles, two coordinators aggregating every job exactly once,
 * a job taken by a coordinator that died is aggregated after the lease,
 * retention deletes jobs and their ids, and delayed tasks and deadlines move
 * without any worker.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include <llmb/util.h>

#include "fixture.h"
#include "test_coordinator_support.h"

static const char *url;

static int group_setup(void **state)
{
    (void)state;
    url = llmb_test_redis_url();
    return url == NULL ? -1 : 0;
}

/* Waits up to ms for the job's aggregate; returns it parsed, or NULL. */
static json_t *wait_aggregate(redisContext *c, const char *prefix,
                              const char *queue, const char *id, long long ms)
{
    long long deadline = tc_now() + ms;

    while (tc_now() < deadline) {
        char *agg = tc_job(c, prefix, queue, id, "aggregate");
        if (agg != NULL) {
            json_error_t err;
            json_t *v = json_loads(agg, 0, &err);
            if (v == NULL)
                fail_msg("aggregate is not JSON: %s: %s", err.text, agg);
            free(agg);
            return v;
        }
        usleep(20000);
    }
    return NULL;
}

/* Counts "aggregated" events of job id (all jobs when id is NULL). */
static long long count_aggregated(redisContext *c, const char *prefix,
                                  const char *queue, const char *id)
{
    redisReply *r = tc_cmd(c, "XRANGE %s:{%s}:events - +", prefix, queue);
    long long n = 0;
    size_t i, k;

    for (i = 0; i < r->elements; i++) {
        const redisReply *f = r->element[i]->element[1];
        const char *event = NULL, *job = NULL;
        for (k = 0; k + 1 < f->elements; k += 2) {
            if (strcmp(f->element[k]->str, "event") == 0)
                event = f->element[k + 1]->str;
            else if (strcmp(f->element[k]->str, "job") == 0)
                job = f->element[k + 1]->str;
        }
        if (event != NULL && strcmp(event, "aggregated") == 0 &&
            (id == NULL || (job != NULL && strcmp(job, id) == 0)))
            n++;
    }
    freeReplyObject(r);
    return n;
}

static long long jint(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    if (!json_is_integer(v))
        fail_msg("aggregate field %s is not an integer", key);
    return json_integer_value(v);
}

/* Equal up to the aggregate's rounding (llmb_agg_round: 3 decimals, or 6
 * significant digits). */
static void assert_near(double got, double want)
{
    if (fabs(got - want) > fmax(5e-4, 5e-6 * fabs(want)) + 1e-12)
        fail_msg("got %.17g, want %.17g", got, want);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* The textbook linear-interpolation percentile on sorted values. */
static double pct(const double *s, size_t n, double q)
{
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)floor(h);
    double t = h - (double)lo;

    if (lo + 1 >= n)
        return s[n - 1];
    return (1.0 - t) * s[lo] + t * s[lo + 1];
}

static void check_field(const json_t *fields, const char *path,
                        double *values, size_t n)
{
    const json_t *f = json_object_get(fields, path);
    double sum = 0;
    size_t i;

    if (f == NULL)
        fail_msg("aggregate has no field %s", path);
    qsort(values, n, sizeof(*values), cmp_double);
    for (i = 0; i < n; i++)
        sum += values[i];
    assert_int_equal(jint(f, "count"), n);
    assert_near(json_number_value(json_object_get(f, "min")), values[0]);
    assert_near(json_number_value(json_object_get(f, "max")), values[n - 1]);
    assert_near(json_number_value(json_object_get(f, "mean")),
                sum / (double)n);
    assert_near(json_number_value(json_object_get(f, "p50")),
                pct(values, n, 0.50));
    assert_near(json_number_value(json_object_get(f, "p90")),
                pct(values, n, 0.90));
    assert_near(json_number_value(json_object_get(f, "p99")),
                pct(values, n, 0.99));
}

/* A 100-task job: every task returns {"ms": ..., "nested": {"tok": [..]},
 * "label": "x", "ok": true, "requests": 2}; the aggregate has exact
 * statistics of "ms" (a duration: 100 samples, no sum, no per_s) and
 * "nested.tok" (a gauge: 200), "ok" is a flag, "requests" a count with a
 * sum and a per_s, and the string "label" is a label, as the job's
 * payload "_kinds" says. */
static void test_fanout_aggregate(void **state)
{
    char *prefix = llmb_test_prefix("fanout");
    redisContext *c = tc_redis(url);
    struct tc_worker *w;
    double ms[100], tok[200];
    json_t *agg, *fields, *f;
    char *id, result[256];
    pid_t co;
    int i;

    (void)state;
    id = tc_push(c, prefix, "q", "{\"type\":\"bench\",\"tasks\":100,"
                                 "\"payload\":{\"_kinds\":{\"label\":\"label\"}}}");
    w = tc_worker_new(url, prefix, "fanout-w1", "q", 100);
    assert_int_equal(tc_worker_claim(w, 100, 60000), 100);
    usleep(20000); /* so that run_ms > 0 and per_s is there */
    for (i = 0; i < 100; i++) {
        /* Task index from the ref "<id>:<index>". */
        const char *ref = w->refs.v[i];
        int idx = atoi(strrchr(ref, ':') + 1);
        double v = (double)((idx * 37) % 100) * 1.5 + 0.25;
        ms[idx] = v;
        tok[2 * idx] = idx;
        tok[2 * idx + 1] = idx * 3 + 0.5;
        snprintf(result, sizeof(result),
                 "{\"ms\":%.2f,\"nested\":{\"tok\":[%d,%.1f]},\"label\":\"x\","
                 "\"ok\":true,\"requests\":2}", v, idx, idx * 3 + 0.5);
        tc_worker_complete(w, (size_t)i, result);
    }
    co = tc_coord_start(url, prefix, "fanout-c1", NULL);
    agg = wait_aggregate(c, prefix, "q", id, 10000);
    assert_non_null(agg);

    assert_string_equal(json_string_value(json_object_get(agg, "state")),
                        "completed");
    assert_int_equal(jint(agg, "tasks"), 100);
    assert_int_equal(jint(agg, "ok"), 100);
    assert_int_equal(jint(agg, "failed"), 0);
    assert_int_equal(jint(agg, "cancelled"), 0);
    assert_int_equal(jint(agg, "results"), 100);
    assert_true(jint(agg, "wall_ms") >= 0);
    assert_true(jint(agg, "run_ms") >= 0);
    assert_true(jint(agg, "wall_ms") >= jint(agg, "run_ms"));
    assert_int_equal(jint(agg, "version"), 2);
    fields = json_object_get(agg, "fields");
    assert_int_equal(json_object_size(fields), 5);
    check_field(fields, "ms", ms, 100);
    check_field(fields, "nested.tok", tok, 200);
    f = json_object_get(fields, "label");
    assert_string_equal(json_string_value(json_object_get(f, "kind")),
                        "label");
    assert_int_equal(jint(json_object_get(f, "values"), "x"), 100);
    f = json_object_get(fields, "ms");
    assert_string_equal(json_string_value(json_object_get(f, "kind")),
                        "duration");
    assert_string_equal(json_string_value(json_object_get(f, "unit")), "ms");
    assert_null(json_object_get(f, "sum"));
    assert_null(json_object_get(f, "per_s"));
    f = json_object_get(fields, "nested.tok");
    assert_string_equal(json_string_value(json_object_get(f, "kind")),
                        "gauge");
    assert_null(json_object_get(f, "per_s"));
    f = json_object_get(fields, "ok");
    assert_string_equal(json_string_value(json_object_get(f, "kind")), "flag");
    assert_int_equal(jint(f, "true"), 100);
    f = json_object_get(fields, "requests");
    assert_string_equal(json_string_value(json_object_get(f, "kind")),
                        "count");
    assert_int_equal(jint(f, "sum"), 200);
    assert_true(jint(agg, "run_ms") > 0);
    assert_near(json_number_value(json_object_get(f, "per_s")),
                200.0 * 1000.0 / (double)jint(agg, "run_ms"));
    json_decref(agg);

    assert_int_equal(count_aggregated(c, prefix, "q", id), 1);
    assert_int_equal(tc_coord_stop(co, SIGTERM), 0);

    tc_worker_free(w);
    llmb_test_redis_del_prefix(c, prefix);
    redisFree(c);
    free(id);
    free(prefix);
}

/* Appends to b the result of task idx: its group g<idx>, a field "ms",
 * nfields more fields and a timeline of `buckets` buckets. */
static void result_build(struct llmb_buf *b, int idx, int buckets,
                         int nfields)
{
    llmb_buf_appendf(b, "{\"_group\":\"g%d\",\"ms\":%d", idx, idx);
    for (int k = 0; k < nfields; k++)
        llmb_buf_appendf(b, ",\"f%04d\":%d.5", k, k);
    if (buckets > 0) {
        static const char *const arr[] = {"requests", "output_tokens",
                                          "concurrency"};
        llmb_buf_appendf(b, ",\"_timeline\":{\"start_ms\":0,"
                            "\"width_ms\":1000");
        for (int a = 0; a < 3; a++) {
            llmb_buf_appendf(b, ",\"%s\":[", arr[a]);
            for (int i = 0; i < buckets; i++)
                llmb_buf_appendf(b, "%s%d", i > 0 ? "," : "", a + 1);
            llmb_buf_appendf(b, "]");
        }
        llmb_buf_appendf(b, "}");
    }
    llmb_buf_appendf(b, "}");
}

/* The aggregate of job id of queue q, once stored, which must be at most
 * max bytes as stored. */
static json_t *aggregate_within(redisContext *c, const char *prefix,
                                const char *id, size_t max)
{
    json_t *agg = wait_aggregate(c, prefix, "q", id, 10000);
    char *text;

    assert_non_null(agg);
    text = tc_job(c, prefix, "q", id, "aggregate");
    assert_true(strlen(text) <= max);
    free(text);
    return agg;
}

/* An aggregate stays within --agg-max-bytes (here its least, 64 KiB): a
 * job of 64 groups whose timelines would make it about 120 KiB loses the
 * groups' timelines alone, and a job whose 1,000 fields would make it
 * about 100 KiB loses its fields; each names what it lost in "dropped",
 * and what it kept is whole. */
static void test_aggregate_cap(void **state)
{
    char *prefix = llmb_test_prefix("aggcap");
    redisContext *c = tc_redis(url);
    struct tc_worker *w;
    struct llmb_buf b;
    json_t *agg, *by, *g, *tl, *v;
    char *id1, *id2;
    const char *name;
    long long sum = 0;
    size_t i;
    pid_t co;

    (void)state;
    id1 = tc_push(c, prefix, "q", "{\"type\":\"bench\",\"tasks\":64}");
    id2 = tc_push(c, prefix, "q", "{\"type\":\"bench\"}");
    w = tc_worker_new(url, prefix, "aggcap-w1", "q", 65);
    assert_int_equal(tc_worker_claim(w, 65, 60000), 65);
    for (i = 0; i < 65; i++) {
        const char *ref = w->refs.v[i];
        llmb_buf_init(&b);
        if (strncmp(ref, id1, strlen(id1)) == 0)
            result_build(&b, atoi(strrchr(ref, ':') + 1), 300, 0);
        else
            result_build(&b, 0, 0, 1000);
        tc_worker_complete(w, i, b.data);
        llmb_buf_fini(&b);
    }
    co = tc_coord_start(url, prefix, "aggcap-c1", "--agg-max-bytes", "65536",
                        NULL);

    agg = aggregate_within(c, prefix, id1, 65536);
    v = json_object_get(agg, "dropped");
    assert_int_equal(json_array_size(v), 1);
    assert_string_equal(json_string_value(json_array_get(v, 0)),
                        "by.timeline");
    by = json_object_get(agg, "by");
    assert_int_equal(json_object_size(by), 64);
    json_object_foreach(by, name, g) {
        assert_null(json_object_get(g, "timeline"));
        assert_int_equal(jint(g, "results"), 1);
    }
    tl = json_object_get(agg, "timeline");
    assert_non_null(tl);
    v = json_object_get(tl, "requests");
    for (i = 0; i < json_array_size(v); i++)
        sum += json_integer_value(json_array_get(v, i));
    assert_int_equal(sum, 64 * 300);
    assert_int_equal(json_object_size(json_object_get(agg, "fields")), 1);
    json_decref(agg);

    agg = aggregate_within(c, prefix, id2, 65536);
    v = json_object_get(agg, "dropped");
    assert_int_equal(json_array_size(v), 2);
    assert_string_equal(json_string_value(json_array_get(v, 0)), "by");
    assert_string_equal(json_string_value(json_array_get(v, 1)), "fields");
    assert_int_equal(json_object_size(json_object_get(agg, "fields")), 0);
    assert_int_equal(jint(agg, "results"), 1);
    assert_int_equal(jint(agg, "ok"), 1);
    json_decref(agg);

    assert_int_equal(tc_coord_stop(co, SIGTERM), 0);
    tc_worker_free(w);
    llmb_test_redis_del_prefix(c, prefix);
    redisFree(c);
    free(id1);
    free(id2);
    free(prefix);
}

/* Two coordinators at once: each of 40 jobs is aggregated exactly once. */
static void test_two_coordinators(void **state)
{
    char *prefix = llmb_test_prefix("two");
    redisContext *c = tc_redis(url);
    struct tc_worker *w;
    char *ids[40];
    pid_t a, b;
    size_t i, n;
    long long deadline;

    (void)state;
    a = tc_coord_start(url, prefix, "two-a", "--agg-batch", "4", NULL);
    b = tc_coord_start(url, prefix, "two-b", "--agg-batch", "4", NULL);
    w = tc_worker_new(url, prefix, "two-w1", "q", 1000);
    for (i = 0; i < 40; i++)
        ids[i] = tc_push(c, prefix, "q",
                         "{\"type\":\"t\",\"tasks\":3,\"payload\":{}}");
    n = (size_t)tc_worker_claim(w, 120, 60000);
    assert_int_equal(n, 120);
    for (i = 0; i < n; i++)
        tc_worker_complete(w, i, "{\"v\":1}");

    deadline = tc_now() + 15000;
    for (i = 0; i < 40; i++) {
        json_t *agg = wait_aggregate(c, prefix, "q", ids[i],
                                     deadline - tc_now());
        if (agg == NULL)
            fail_msg("job %zu (%s) not aggregated in time", i, ids[i]);
        assert_int_equal(jint(agg, "ok"), 3);
        json_decref(agg);
    }
    /* Let both finish whatever they might still do, then count. */
    usleep(700000);
    assert_int_equal(count_aggregated(c, prefix, "q", NULL), 40);
    for (i = 0; i < 40; i++) {
        assert_int_equal(count_aggregated(c, prefix, "q", ids[i]), 1);
        free(ids[i]);
    }
    assert_int_equal(tc_int(c, "ZCARD %s:{q}:aggr", prefix), 0);
    assert_int_equal(tc_int(c, "LLEN %s:{q}:done", prefix), 0);
    assert_int_equal(tc_coord_stop(a, SIGTERM), 0);
    assert_int_equal(tc_coord_stop(b, SIGTERM), 0);

    tc_worker_free(w);
    llmb_test_redis_del_prefix(c, prefix);
    redisFree(c);
    free(prefix);
}

/* A coordinator that took a job and died (here: the test takes it with
 * llmb_agg_take and never finishes) loses nothing: after the lease a new
 * coordinator takes it again. A SIGKILLed coordinator's successor goes on
 * too. */
static void test_killed_during_aggregation(void **state)
{
    char *prefix = llmb_test_prefix("killed");
    redisContext *c = tc_redis(url);
    struct tc_worker *w;
    redisReply *r;
    json_t *agg;
    long long t0;
    char *id, *id2;
    int status;
    pid_t co;

    (void)state;
    id = tc_push(c, prefix, "q", "{\"type\":\"t\",\"tasks\":2}");
    w = tc_worker_new(url, prefix, "killed-w1", "q", 10);
    assert_int_equal(tc_worker_claim(w, 2, 60000), 2);
    tc_worker_complete(w, 0, "{\"x\":1}");
    tc_worker_complete(w, 1, "{\"x\":3}");

    /* The "dead" coordinator's take, with a 2 s lease. */
    r = tc_cmd(c, "FCALL llmb_agg_take 1 %s:{q} 2000 10", prefix);
    assert_int_equal(r->elements, 1);
    assert_string_equal(r->element[0]->str, id);
    freeReplyObject(r);
    t0 = tc_now();

    /* A coordinator killed with SIGKILL right after starting. */
    co = tc_coord_start(url, prefix, "killed-c1", NULL);
    usleep(300000);
    kill(co, SIGKILL);
    waitpid(co, &status, 0);
    assert_true(WIFSIGNALED(status));

    co = tc_coord_start(url, prefix, "killed-c2", NULL);
    usleep(800000);
    /* Still under the first lease: nobody may aggregate it yet. */
    if (tc_now() - t0 < 1900) {
        char *a = tc_job(c, prefix, "q", id, "aggregate");
        assert_null(a);
    }
    agg = wait_aggregate(c, prefix, "q", id, 6000);
    assert_non_null(agg);
    assert_true(tc_now() - t0 >= 1900);
    assert_int_equal(jint(json_object_get(json_object_get(agg, "fields"), "x"),
                          "count"), 2);
    json_decref(agg);
    assert_int_equal(count_aggregated(c, prefix, "q", id), 1);

    /* And the restarted one handles new jobs as usual. */
    id2 = tc_push(c, prefix, "q", "{\"type\":\"t\"}");
    assert_int_equal(tc_worker_claim(w, 1, 60000), 1);
    tc_worker_complete(w, 2, "{\"x\":5}");
    agg = wait_aggregate(c, prefix, "q", id2, 5000);
    assert_non_null(agg);
    json_decref(agg);
    assert_int_equal(tc_coord_stop(co, SIGTERM), 0);

    tc_worker_free(w);
    llmb_test_redis_del_prefix(c, prefix);
    redisFree(c);
    free(id);
    free(id2);
    free(prefix);
}

/* --retention-s 1: the settings land in <base>:conf, and a finished job
 * with its task results and its ids in <base>:jobs and <base>:ended is
 * deleted a second after it ends: no job ends after it, so the
 * coordinator's llmb_reap does it. */
static void test_retention(void **state)
{
    char *prefix = llmb_test_prefix("retention");
    redisContext *c = tc_redis(url);
    struct tc_worker *w;
    long long deadline;
    json_t *agg;
    char *id, *v;
    pid_t co;

    (void)state;
    w = tc_worker_new(url, prefix, "retention-w1", "q", 10);
    co = tc_coord_start(url, prefix, "retention-c1", "--retention-s", "1",
                        "--events-max", "500", "--dead-max", "50", NULL);
    deadline = tc_now() + 5000;
    while ((v = tc_str(c, "HGET %s:{q}:conf retention_s", prefix)) == NULL &&
           tc_now() < deadline)
        usleep(20000);
    assert_non_null(v);
    assert_string_equal(v, "1");
    free(v);
    assert_int_equal(tc_int(c, "HGET %s:{q}:conf events_max", prefix), 500);
    assert_int_equal(tc_int(c, "HGET %s:{q}:conf dead_max", prefix), 50);

    id = tc_push(c, prefix, "q", "{\"type\":\"t\"}");
    assert_int_equal(tc_int(c, "HEXISTS %s:{q}:jd %s", prefix, id), 1);
    assert_int_equal(tc_worker_claim(w, 1, 60000), 1);
    tc_worker_complete(w, 0, "{\"x\":1}");
    agg = wait_aggregate(c, prefix, "q", id, 5000);
    assert_non_null(agg);
    json_decref(agg);

    /* retention deletes the job's hash (its aggregate), its record in
     * <base>:jd (its end in front) and its line in <base>:fin */
    deadline = tc_now() + 8000;
    while (tc_now() < deadline) {
        if (tc_int(c, "EXISTS %s:{q}:j:%s", prefix, id) == 0 &&
            tc_int(c, "HEXISTS %s:{q}:jd %s", prefix, id) == 0)
            break;
        usleep(50000);
    }
    assert_int_equal(tc_int(c, "EXISTS %s:{q}:j:%s", prefix, id), 0);
    assert_int_equal(tc_int(c, "HEXISTS %s:{q}:jd %s", prefix, id), 0);
    assert_int_equal(tc_int(c, "LLEN %s:{q}:fin", prefix), 0);
    assert_int_equal(tc_int(c, "LLEN %s:{q}:jl", prefix), 0);
    {
        char *v2 = tc_job(c, prefix, "q", id, "state");
        assert_null(v2);
    }
    assert_int_equal(tc_coord_stop(co, SIGTERM), 0);

    tc_worker_free(w);
    llmb_test_redis_del_prefix(c, prefix);
    redisFree(c);
    free(id);
    free(prefix);
}

/* With no worker at all: a delayed job's tasks become pending when due,
 * and a job past its deadline ends failed and is aggregated. */
static void test_promote_and_deadline(void **state)
{
    char *prefix = llmb_test_prefix("promote");
    redisContext *c = tc_redis(url);
    long long deadline;
    json_t *agg;
    char *delayed, *late, *err;
    pid_t co;

    (void)state;
    co = tc_coord_start(url, prefix, "promote-c1", NULL);
    delayed = tc_push(c, prefix, "q",
                      "{\"type\":\"t\",\"tasks\":3,\"delay_s\":0.3}");
    late = tc_push(c, prefix, "q",
                   "{\"type\":\"t\",\"tasks\":2,\"deadline_s\":0.5,"
                   "\"delay_s\":60}");
    /* each fan-out job waits as one member, its cursor */
    assert_int_equal(tc_int(c, "ZCARD %s:{q}:pd", prefix), 2);

    deadline = tc_now() + 5000;
    while (tc_int(c, "LLEN %s:{q}:pl", prefix) < 1 && tc_now() < deadline)
        usleep(20000);
    assert_int_equal(tc_int(c, "LLEN %s:{q}:pl", prefix), 1);
    {
        char *m = tc_str(c, "LINDEX %s:{q}:pl 0", prefix);
        assert_non_null(m);
        assert_string_equal(m, delayed);
        free(m);
    }
    assert_int_equal(tc_int(c, "ZCARD %s:{q}:pz", prefix), 0);

    agg = wait_aggregate(c, prefix, "q", late, 5000);
    assert_non_null(agg);
    assert_string_equal(json_string_value(json_object_get(agg, "state")),
                        "failed");
    assert_int_equal(jint(agg, "cancelled"), 2);
    json_decref(agg);
    err = tc_job(c, prefix, "q", late, "error");
    assert_non_null(err);
    assert_string_equal(err, "deadline exceeded");
    free(err);
    assert_int_equal(tc_int(c, "ZCARD %s:{q}:pd", prefix), 0);
    assert_int_equal(tc_coord_stop(co, SIGTERM), 0);

    llmb_test_redis_del_prefix(c, prefix);
    redisFree(c);
    free(delayed);
    free(late);
    free(prefix);
}

/* Ids of jobs gone otherwise than by retention (deleted by hand) leave
 * the head of the job list <base>:jl at the coordinator's scan, counted
 * in <base>:counts jl_cut; one
 * behind a job that lives stays (the readers skip it), and the living
 * job's id is never taken out. */
static void test_job_list_trim(void **state)
{
    char *prefix = llmb_test_prefix("jltrim");
    redisContext *c = tc_redis(url);
    char *id[4], *v;
    long long deadline;
    pid_t co;

    (void)state;
    for (int i = 0; i < 4; i++)
        id[i] = tc_push(c, prefix, "q", "{\"type\":\"t\",\"delay_s\":600}");
    assert_int_equal(tc_int(c, "LLEN %s:{q}:jl", prefix), 4);
    assert_int_equal(tc_int(c, "HDEL %s:{q}:jd %s %s %s", prefix, id[0], id[1],
                            id[3]), 3);
    co = tc_coord_start(url, prefix, "jltrim-c1", NULL);
    deadline = tc_now() + 5000;
    while (tc_int(c, "LLEN %s:{q}:jl", prefix) > 2 && tc_now() < deadline)
        usleep(20000);
    assert_int_equal(tc_int(c, "LLEN %s:{q}:jl", prefix), 2);
    /* counted, as the functions count their cuts */
    assert_int_equal(tc_int(c, "HGET %s:{q}:counts jl_cut", prefix), 2);
    v = tc_str(c, "LINDEX %s:{q}:jl 0", prefix);
    assert_non_null(v);
    assert_string_equal(v, id[2]);
    free(v);
    v = tc_str(c, "LINDEX %s:{q}:jl 1", prefix);
    assert_non_null(v);
    assert_string_equal(v, id[3]);
    free(v);
    v = tc_job(c, prefix, "q", id[2], "state");
    assert_non_null(v);
    assert_string_equal(v, "pending");
    free(v);
    assert_int_equal(tc_coord_stop(co, SIGTERM), 0);
    llmb_test_redis_del_prefix(c, prefix);
    redisFree(c);
    for (int i = 0; i < 4; i++)
        free(id[i]);
    free(prefix);
}

/* Polls <prefix>:metrics every 10 ms for 20 s at most: every value of
 * jobs_pending must be `pending`; returns once jobs_cancelled has been 0
 * for 5 s (the passes after a cut), false if it never was. */
static bool gauges_hold(redisContext *c, const char *prefix, long long pending)
{
    long long deadline = tc_now() + 20000, zero = 0;

    while (tc_now() < deadline) {
        long long p = tc_int(c, "HGET %s:metrics jobs_pending", prefix);
        long long x = tc_int(c, "HGET %s:metrics jobs_cancelled", prefix);

        if (p != pending)
            fail_msg("jobs_pending %lld after the cut, want %lld "
                     "(jobs_cancelled %lld)", p, pending, x);
        if (x == 0 && zero == 0)
            zero = tc_now();
        if (x != 0)
            zero = 0;
        if (zero != 0 && tc_now() - zero > 5000)
            return true;
        usleep(10000);
    }
    return false;
}

/* Waits (15 s at most) until the gauges say `pending` and `cancelled`: a
 * pass has ended; the next starts a second later. */
static void gauges_reach(redisContext *c, const char *prefix,
                         long long pending, long long cancelled)
{
    long long deadline = tc_now() + 15000, p, x;

    do {
        usleep(10000);
        p = tc_int(c, "HGET %s:metrics jobs_pending", prefix);
        x = tc_int(c, "HGET %s:metrics jobs_cancelled", prefix);
    } while ((p != pending || x != cancelled) && tc_now() < deadline);
    assert_int_equal(p, pending);
    assert_int_equal(x, cancelled);
}

/* The job gauges come from a walk of <base>:jl by rank, one id every
 * 50 ms here; retention cuts the head of that list in the middle of a
 * pass (10 cancelled jobs deleted when retention_s drops to 1 s, 1.5 s
 * into a pass of 3.25 s over 65 ids). The walk moves back as far as the
 * head was cut (<base>:counts jl_cut), so every pass, the one the cut
 * came in too, counts all the pending jobs: a walk that kept its rank
 * would skip as many ids as were cut. Then the count of cuts is reset
 * (to 0) in the same transaction as a cut of 5 more: the count went back,
 * so the pass in progress starts over, and again no pass skips an id. */
#define CUT_X 10
#define CUT_X2 5
#define CUT_Y 50
static void test_gauges_while_head_cut(void **state)
{
    char *prefix = llmb_test_prefix("jlcut");
    redisContext *c = tc_redis(url);
    char *x[CUT_X], *x2[CUT_X2], *y[CUT_Y];
    redisReply *r;
    pid_t co;

    (void)state;
    assert_int_equal(tc_int(c, "HSET %s:{q}:conf retention_s 3600", prefix),
                     1);
    for (int i = 0; i < CUT_X; i++)
        x[i] = tc_push(c, prefix, "q", "{\"type\":\"t\"}");
    for (int i = 0; i < CUT_X2; i++)
        x2[i] = tc_push(c, prefix, "q", "{\"type\":\"t\"}");
    for (int i = 0; i < CUT_Y; i++)
        y[i] = tc_push(c, prefix, "q", "{\"type\":\"t\"}");
    for (int i = 0; i < CUT_X; i++)
        assert_int_equal(tc_int(c, "FCALL llmb_cancel 1 %s:{q} %s", prefix,
                                x[i]), 1);
    co = tc_coord_start(url, prefix, "jlcut-c1", "--no-write-conf",
                        "--scan-batch", "1", "--tick-ms", "50",
                        "--metrics-ms", "100", NULL);
    gauges_reach(c, prefix, CUT_X2 + CUT_Y, CUT_X);
    usleep(2500000);
    assert_int_equal(tc_int(c, "HSET %s:{q}:conf retention_s 1", prefix), 0);
    assert_true(gauges_hold(c, prefix, CUT_X2 + CUT_Y));
    assert_int_equal(tc_int(c, "LLEN %s:{q}:jl", prefix), CUT_X2 + CUT_Y);
    assert_int_equal(tc_int(c, "HGET %s:{q}:counts jl_cut", prefix), CUT_X);

    /* the count reset, and 5 more cut, at once */
    assert_int_equal(tc_int(c, "HSET %s:{q}:conf retention_s 3600", prefix),
                     0);
    for (int i = 0; i < CUT_X2; i++)
        assert_int_equal(tc_int(c, "FCALL llmb_cancel 1 %s:{q} %s", prefix,
                                x2[i]), 1);
    gauges_reach(c, prefix, CUT_Y, CUT_X2);
    usleep(2500000);
    freeReplyObject(tc_cmd(c, "MULTI"));
    freeReplyObject(tc_cmd(c, "HSET %s:{q}:conf retention_s 1", prefix));
    freeReplyObject(tc_cmd(c, "HSET %s:{q}:counts jl_cut 0", prefix));
    freeReplyObject(tc_cmd(c, "FCALL llmb_reap 1 %s:{q}", prefix));
    r = tc_cmd(c, "EXEC");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    freeReplyObject(r);
    assert_int_equal(tc_int(c, "LLEN %s:{q}:jl", prefix), CUT_Y);
    assert_int_equal(tc_int(c, "HGET %s:{q}:counts jl_cut", prefix), CUT_X2);
    assert_true(gauges_hold(c, prefix, CUT_Y));

    assert_int_equal(tc_coord_stop(co, SIGTERM), 0);
    llmb_test_redis_del_prefix(c, prefix);
    redisFree(c);
    for (int i = 0; i < CUT_X; i++)
        free(x[i]);
    for (int i = 0; i < CUT_X2; i++)
        free(x2[i]);
    for (int i = 0; i < CUT_Y; i++)
        free(y[i]);
    free(prefix);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A coordinator whose --reap-limit (5000) is above what one call takes
 * (250) promotes 5,000 due delayed tasks with no worker running: every
 * one waits in <base>:pl once, none is lost or doubled between the two. */
static void test_reap_limit_above_the_call_limit(void **state)
{
    char *prefix = llmb_test_prefix("reaplimit");
    redisContext *c = tc_redis(url);
    long long deadline;
    pid_t co;

    (void)state;
    for (int call = 0; call < 20; call++) {
        const char *argv[4 + 250];
        redisReply *r;
        char *base = llmb_xasprintf("%s:{q}", prefix);
        argv[0] = "FCALL";
        argv[1] = "llmb_push";
        argv[2] = "1";
        argv[3] = base;
        for (int i = 0; i < 250; i++)
            argv[4 + i] = "{\"type\":\"t\",\"delay_s\":0.2}";
        r = redisCommandArgv(c, 254, argv, NULL);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        freeReplyObject(r);
        free(base);
    }
    assert_int_equal(tc_int(c, "ZCARD %s:{q}:pd", prefix), 5000);
    freeReplyObject(redisCommand(c, "SADD %s:queues q", prefix));
    co = tc_coord_start(url, prefix, "reaplimit-c1", "--reap-limit", "5000",
                        NULL);
    deadline = tc_now() + 10000;
    while (tc_int(c, "LLEN %s:{q}:pl", prefix) < 5000 && tc_now() < deadline)
        usleep(20000);
    assert_int_equal(tc_int(c, "LLEN %s:{q}:pl", prefix), 5000);
    assert_int_equal(tc_int(c, "ZCARD %s:{q}:pd", prefix), 0);
    {
        redisReply *r = tc_cmd(c, "LRANGE %s:{q}:pl 0 -1", prefix);
        const char **m = llmb_xcalloc(r->elements, sizeof(*m));
        assert_int_equal(r->elements, 5000);
        for (size_t i = 0; i < r->elements; i++)
            m[i] = r->element[i]->str;
        qsort(m, r->elements, sizeof(*m), str_cmp);
        for (size_t i = 1; i < r->elements; i++)
            if (strcmp(m[i - 1], m[i]) == 0)
                fail_msg("member %s waits twice", m[i]);
        free(m);
        freeReplyObject(r);
    }
    assert_int_equal(tc_coord_stop(co, SIGTERM), 0);
    llmb_test_redis_del_prefix(c, prefix);
    redisFree(c);
    free(prefix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_fanout_aggregate, tc_children_kill),
        cmocka_unit_test_teardown(test_aggregate_cap, tc_children_kill),
        cmocka_unit_test_teardown(test_two_coordinators, tc_children_kill),
        cmocka_unit_test_teardown(test_reap_limit_above_the_call_limit,
                                  tc_children_kill),
        cmocka_unit_test_teardown(test_killed_during_aggregation,
                                  tc_children_kill),
        cmocka_unit_test_teardown(test_retention, tc_children_kill),
        cmocka_unit_test_teardown(test_promote_and_deadline, tc_children_kill),
        cmocka_unit_test_teardown(test_job_list_trim, tc_children_kill),
        cmocka_unit_test_teardown(test_gauges_while_head_cut,
                                  tc_children_kill),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
