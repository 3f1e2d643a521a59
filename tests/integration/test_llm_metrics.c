/*
 * The llm executor's metrics (docs/llm.md, "Metrics") against the mock
 * LLM server with a known schedule: an 80 ms decode stall every 16th gap
 * must show as the ITL p99 of the task's histogram of every gap, the p99
 * of the gaps the mock logged sending (--log-sends), while TPOT stays near
 * the mean gap; TPOT is (e2e - ttft) / (tokens - 1) of each request;
 * goodput counts exactly the successful requests within the payload's
 * "slo"; a bad "slo" fails the task with a message naming it. The
 * job-level merge of these histograms is tests/e2e/llm_metrics.sh.
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

#include <llmb/histogram.h>
#include <llmb/util.h>

#include "test_llm_support.h"

#define assert_near(got, want, tol)                                         \
    do {                                                                    \
        double g_ = (got), w_ = (want), t_ = (tol);                         \
        if (fabs(g_ - w_) > t_)                                             \
            fail_msg("%s = %.3f, wanted %.3f +- %.3f", #got, g_, w_, t_);   \
    } while (0)

/* Decodes metrics.<name> of task result res into h (fini it). */
static void metric(const json_t *res, const char *name, struct llmb_hist *h)
{
    const json_t *v = json_object_get(json_object_get(res, "metrics"), name);
    const char *err = NULL;

    if (v == NULL)
        fail_msg("the result has no metrics.%s", name);
    if (llmb_hist_from_json(h, v, &err) != 0)
        fail_msg("metrics.%s: %s", name, err);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* The sample of sorted xs (n of them) at quantile q by nearest rank, as
 * llmb_hist_percentile() picks it. */
static double rank_of(const double *xs, size_t n, double q)
{
    size_t k = (size_t)ceil(q * (double)n);

    return xs[k > 0 ? k - 1 : 0];
}

/* 64 tokens: 5 ms gaps, except gaps 16, 32 and 48, which are 80 ms.
 *
 * The expected values are what the mock's send log (--log-sends) says it
 * did, not its settings: a loaded machine makes the Python mock late, and
 * since it keeps to its schedule a late token shortens the gap after it
 * (a stall may be sent as 70 ms, the gap before it as 15), which llmb
 * must measure as sent. A gap as measured is the gap as sent plus the
 * later chunk's delivery less the earlier one's: loopback and the
 * worker's wake-up, and an arrival stamped at most 1 ms early
 * (LLMB_LLM_PASS_FRESH_US). When every gap is within x of its own sent
 * gap, every order statistic of the measured gaps is within x of that of
 * the sent ones, so the percentiles are compared rank for rank, without
 * knowing which request was which stream. x is the tolerance the checks
 * always had (the histogram's 0.39 % and the work of reading other
 * streams included) plus "late": the longest waits for a CPU that the
 * kernel counted for the worker and for the mock during the run
 * (lm_cpu_wait). A chunk is read late only while the worker waits to run,
 * and stamped late by the mock (which stamps after writing) only while
 * the mock does, so on an idle machine late is near 0 and the checks are
 * as tight as ever. A TPOT or a record's mean gap is one request's sent
 * span plus the difference of two deliveries, over 63 gaps (the finish
 * chunk follows the last token at once). */
static void test_stall_schedule(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "40", "--itl-ms", "5",
                          "--pause-every", "16", "--pause-ms", "80", NULL};
    struct llmb_hist itl, tpot, ttft, ttfb, e2e, out;
    double gaps[8 * 63], spans[8], mine[8];
    double tpot_sum = 0, sent_sum = 0, sp50, sp99, late;
    char *id = NULL, *st;
    json_t *res, *reqs, *r, *sends, *s;
    size_t i, ng = 0;
    struct lm_cpu_wait cw;
    pid_t pids[2];

    lm_setup_sends(t, "llm-metrics-stall", mock, NULL);
    pids[0] = t->h.workers[0];
    pids[1] = t->mock.pid;
    lm_cpu_wait_start(&cw, pids, 2);
    st = lm_run(t, "{\"type\":\"llm\",\"payload\":{\"model\":\"m\","
                "\"messages\":[{\"role\":\"user\",\"content\":\"go\"}],"
                "\"max_tokens\":64,\"requests\":8,\"concurrency\":4}}",
                30000, &id);
    late = lm_cpu_wait_stop(&cw);
    assert_string_equal(st, "completed");
    res = lm_result(t, id, 0);
    metric(res, "itl_ms", &itl);
    metric(res, "tpot_ms", &tpot);
    metric(res, "ttft_ms", &ttft);
    metric(res, "ttfb_ms", &ttfb);
    metric(res, "e2e_ms", &e2e);
    metric(res, "output_tokens", &out);

    /* What the mock sent: 8 streams of 64 content chunks. */
    sends = lm_mock_sends(t);
    assert_int_equal(json_array_size(sends), 8);
    json_array_foreach(sends, i, s) {
        assert_int_equal(json_array_size(s), 64);
        for (size_t j = 0; j + 1 < 64; j++) {
            double g = (json_number_value(json_array_get(s, j + 1)) -
                        json_number_value(json_array_get(s, j))) * 1000.0;
            gaps[ng++] = g;
            sent_sum += g;
        }
        spans[i] = (json_number_value(json_array_get(s, 63)) -
                    json_number_value(json_array_get(s, 0))) * 1000.0;
    }
    json_decref(sends);
    qsort(gaps, ng, sizeof(*gaps), cmp_double);
    qsort(spans, 8, sizeof(*spans), cmp_double);
    sp50 = rank_of(gaps, ng, 0.50);
    sp99 = rank_of(gaps, ng, 0.99);
    /* the mock did stall: 24 stalls (4.8 %) are in the p99 */
    assert_true(sp99 > 4 * sp50);

    /* Every gap of every request: 8 x 63, 24 of them stalls (4.8 %). */
    assert_int_equal(itl.count, 8 * 63);
    assert_near(llmb_hist_percentile(&itl, 0.99), sp99, 4.0 + late);
    assert_near(llmb_hist_percentile(&itl, 0.50), sp50, 1.5 + late);
    assert_near(llmb_hist_max(&itl), gaps[ng - 1], 8.0 + late);
    /* The sum of the gaps is each request's last chunk less its first:
     * the spans as sent, give or take two deliveries each. */
    assert_near(llmb_hist_mean(&itl), sent_sum / (double)ng,
                0.3 + late / 63);
    /* TPOT per request, its span over 63 gaps: (60 x 5 + 3 x 80) / 63 =
     * 8.57 ms on schedule, the stalls in it, far below the ITL p99. */
    assert_int_equal(tpot.count, 8);
    assert_near(llmb_hist_mean(&tpot), (spans[0] + spans[1] + spans[2] +
                                        spans[3] + spans[4] + spans[5] +
                                        spans[6] + spans[7]) / 8.0 / 63.0,
                1.0 + late / 63);
    assert_near(llmb_hist_percentile(&tpot, 0.99), spans[7] / 63.0,
                1.5 + late / 63);
    assert_true(llmb_hist_percentile(&tpot, 0.99) <
                llmb_hist_percentile(&itl, 0.99) / 4);
    /* The pooled gaps and the per-request TPOT have nearly one mean. */
    assert_near(llmb_hist_mean(&itl), llmb_hist_mean(&tpot), 0.3);
    assert_int_equal(ttft.count, 8);
    assert_int_equal(e2e.count, 8);
    /* the mock never sends a first token early */
    assert_true(llmb_hist_percentile(&ttft, 0.5) >= 39.0);
    assert_int_equal(llmb_hist_min(&out), 64);
    assert_int_equal(llmb_hist_max(&out), 64);

    reqs = json_object_get(res, "_requests");
    assert_int_equal(json_array_size(reqs), 8);
    json_array_foreach(reqs, i, r) {
        double ttft_r = lm_num(r, "ttft_ms"), e2e_r = lm_num(r, "e2e_ms");
        double tpot_r = lm_num(r, "tpot_ms");
        /* the formula, exactly (records are rounded to the microsecond) */
        assert_near(tpot_r, (e2e_r - ttft_r) / 63.0, 0.002);
        /* the first byte (the role chunk) comes before the first token */
        assert_true(lm_num(r, "ttfb_ms") <= ttft_r);
        mine[i] = lm_num(r, "itl_ms");
        tpot_sum += tpot_r;
    }
    /* the record's itl_ms is still the request's mean gap: a stream's
     * span as sent over 63, rank for rank */
    qsort(mine, 8, sizeof(*mine), cmp_double);
    for (i = 0; i < 8; i++)
        assert_near(mine[i], spans[i] / 63.0, 1.0 + late / 63);
    /* the histogram's mean is exact, up to its ns ticks */
    assert_near(llmb_hist_mean(&tpot), tpot_sum / 8.0, 0.001);
    assert_near(lm_num(res, "summary.output_token_rate"),
                lm_num(res, "summary.output_tokens") * 1000.0 /
                lm_num(res, "summary.duration_ms"), 0.01);
    assert_null(json_object_get(json_object_get(res, "summary"), "good"));

    llmb_hist_fini(&itl);
    llmb_hist_fini(&tpot);
    llmb_hist_fini(&ttft);
    llmb_hist_fini(&ttfb);
    llmb_hist_fini(&e2e);
    llmb_hist_fini(&out);
    json_decref(res);
    free(st);
    free(id);
}

/* TTFT spread over 10-190 ms by jitter and two requests failing: good is
 * exactly the successful requests within both thresholds. */
static void test_goodput_counts_requests_within_slo(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "100", "--itl-ms", "4", "--jitter",
                          "0.9", "--seed", "7", NULL};
    json_t *res, *reqs, *r;
    long want = 0, ok = 0;
    size_t i;

    lm_setup(t, "llm-metrics-slo", mock, NULL);
    res = lm_run_ok(t, "{\"type\":\"llm\",\"payload\":{\"model\":\"m\","
                    "\"prompt\":\"go\",\"max_tokens\":8,\"requests\":24,"
                    "\"concurrency\":6,\"retries\":0,"
                    "\"slo\":{\"ttft_ms\":100,\"tpot_ms\":6},"
                    "\"extra_body\":{\"mock\":{\"fail_times\":2,"
                    "\"fail_status\":400,\"fail_key\":\"slo\"}}}}", 30000);
    reqs = json_object_get(res, "_requests");
    assert_int_equal(json_array_size(reqs), 24);
    json_array_foreach(reqs, i, r) {
        if (json_object_get(r, "error") != NULL)
            continue;
        ok++;
        if (lm_num(r, "ttft_ms") <= 100.0 && lm_num(r, "tpot_ms") <= 6.0)
            want++;
    }
    assert_int_equal(ok, 22);
    assert_int_equal(lm_num(res, "summary.failed"), 2);
    assert_int_equal(lm_num(res, "summary.good"), want);
    /* the jitter puts requests on both sides of 100 ms */
    assert_true(want > 0 && want < ok);
    json_decref(res);
}

static void test_slo_payload_errors(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "1", "--itl-ms", "1", NULL};
    static const struct {
        const char *slo;
        const char *want;
    } cases[] = {
        {"5", "llm payload field \"slo\" must be an object with at least one "
              "of \"ttft_ms\", \"tpot_ms\", \"e2e_ms\", got 5"},
        {"{}", "field \"slo\" must be an object"},
        {"{\"itl\":5}", "llm payload field \"slo\" has an unknown key \"itl\" "
                        "(known: ttft_ms, tpot_ms, e2e_ms)"},
        {"{\"ttft_ms\":\"fast\"}",
         "llm payload field \"slo.ttft_ms\" must be a number of ms greater "
         "than 0 and at most 86400000, got \"fast\""},
        {"{\"tpot_ms\":0}", "field \"slo.tpot_ms\" must be a number of ms"},
    };

    lm_setup(t, "llm-metrics-slo-errors", mock, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *doc = llmb_xasprintf("{\"type\":\"llm\",\"payload\":{\"model\":"
                                   "\"m\",\"prompt\":\"x\",\"slo\":%s}}",
                                   cases[i].slo);
        char *id = NULL, *st = lm_run(t, doc, 10000, &id);
        char *err = lm_job_error(t, id);
        assert_string_equal(st, "failed");
        if (err == NULL || strstr(err, cases[i].want) == NULL)
            fail_msg("slo %s: error \"%s\", wanted \"%s\"", cases[i].slo, err,
                     cases[i].want);
        free(err);
        free(st);
        free(id);
        free(doc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        LM_TEST(test_stall_schedule),
        LM_TEST(test_goodput_counts_requests_within_slo),
        LM_TEST(test_slo_payload_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
