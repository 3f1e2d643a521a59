/*
 * How the llm executor classifies and retries what goes wrong, against
 * the mock LLM server: 429 and 5xx are retried up to "retries" and
 * counted by class when they persist, other 4xx are final at once, a
 * stalled stream ends at timeout_s, a broken stream or garbage in it is a
 * protocol error, a closed port is a connect error, a connect that
 * hangs ends at the connect timeout (10 s, or timeout_s when shorter),
 * a task whose every request failed fails with the classes in its error,
 * and a bad payload fails for good with a message naming the field.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include <llmb/util.h>

#include "test_llm_support.h"

static const char *const fast_mock[] = {"--ttft-ms", "10", "--itl-ms", "2",
                                        NULL};

/* Runs an llm job whose payload is {"model":"m","messages":[...],<extra>}
 * with max_retries 0 and returns its state. */
static char *run_llm(struct lm *t, const char *extra, char **id)
{
    char *doc = llmb_xasprintf(
        "{\"type\":\"llm\",\"max_retries\":0,\"payload\":{\"model\":\"m\","
        "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
        "\"max_tokens\":4,\"retry_backoff_ms\":20%s%s}}",
        extra[0] != '\0' ? "," : "", extra);
    char *st = lm_run(t, doc, 30000, id);
    free(doc);
    return st;
}

/* The record of request i of task 0's result. */
static json_t *record(json_t *res, size_t i)
{
    json_t *r = json_array_get(json_object_get(res, "_requests"), i);
    assert_non_null(r);
    return r;
}

static void test_429_retried(void **state)
{
    struct lm *t = *state;
    char *id = NULL, *st;
    json_t *res, *stats;

    lm_setup(t, "llm-429-retry", fast_mock, NULL);
    /* The first two attempts get 429, the third goes through. */
    st = run_llm(t, "\"retries\":2,\"extra_body\":{\"mock\":{\"fail_times\":2,"
                 "\"fail_status\":429,\"fail_key\":\"a\"}}", &id);
    assert_string_equal(st, "completed");
    res = lm_result(t, id, 0);
    assert_int_equal(lm_num(record(res, 0), "attempts"), 3);
    assert_int_equal(lm_num(record(res, 0), "status"), 200);
    assert_int_equal(lm_num(res, "summary.retries"), 2);
    assert_int_equal(lm_num(res, "summary.ok"), 1);
    stats = lm_mock_stats(&t->mock);
    assert_int_equal(lm_num(stats, "statuses.429"), 2);
    assert_int_equal(lm_num(stats, "statuses.200"), 1);
    json_decref(stats);
    json_decref(res);
    free(st);
    free(id);
}

/* Retries run out: the request ends as http_429 / http_5xx, the task
 * still completes because the other requests went through. */
static void check_final(struct lm *t, int status, const char *cls)
{
    char *extra = llmb_xasprintf("\"retries\":1,\"requests\":3,"
                                 "\"extra_body\":{\"mock\":{\"fail_times\":2,"
                                 "\"fail_status\":%d,\"fail_key\":\"%s\"}}",
                                 status, cls);
    char *id = NULL, *st = run_llm(t, extra, &id);
    char path[64];
    json_t *res, *r;

    assert_string_equal(st, "completed");
    res = lm_result(t, id, 0);
    r = record(res, 0);
    assert_string_equal(json_string_value(json_object_get(r, "error")), cls);
    assert_int_equal(lm_num(r, "status"), status);
    assert_int_equal(lm_num(r, "attempts"), 2);
    assert_null(json_object_get(r, "e2e_ms")); /* no latency of a failure */
    assert_non_null(strstr(json_string_value(json_object_get(r, "message")),
                           "failing on purpose"));
    snprintf(path, sizeof(path), "summary.errors.%s", cls);
    assert_int_equal(lm_num(res, path), 1);
    assert_int_equal(lm_num(res, "summary.failed"), 1);
    assert_int_equal(lm_num(res, "summary.ok"), 2);
    assert_int_equal(lm_num(res, "summary.retries"), 1);
    json_decref(res);
    free(st);
    free(id);
    free(extra);
}

static void test_429_and_5xx_classified(void **state)
{
    struct lm *t = *state;

    lm_setup(t, "llm-429-5xx", fast_mock, NULL);
    check_final(t, 429, "http_429");
    check_final(t, 503, "http_5xx");
}

/* A 4xx other than 429 is never retried; when every request failed the
 * task fails with the classes and the first error. */
static void test_4xx_not_retried(void **state)
{
    struct lm *t = *state;
    char *id = NULL, *st, *err;
    json_t *stats;

    lm_setup(t, "llm-4xx", fast_mock, NULL);
    st = run_llm(t, "\"retries\":5,\"requests\":2,\"extra_body\":{\"mock\":"
                 "{\"fail_times\":9,\"fail_status\":400,\"fail_key\":\"b\"}}", &id);
    assert_string_equal(st, "failed");
    err = lm_job_error(t, id);
    assert_non_null(strstr(err, "all 2 requests failed (http_4xx 2)"));
    assert_non_null(strstr(err, "HTTP 400: failing on purpose"));
    stats = lm_mock_stats(&t->mock);
    assert_int_equal(lm_num(stats, "requests"), 2); /* no retry */
    json_decref(stats);
    free(err);
    free(st);
    free(id);
}

/* A stream that stops sending ends at timeout_s, not at the job's
 * timeout. */
static void test_stalled_stream_times_out(void **state)
{
    struct lm *t = *state;
    char *id = NULL, *st, *err, *dur;
    long long t0 = (long long)llmb_mono_ms();

    lm_setup(t, "llm-stall", fast_mock, NULL);
    st = run_llm(t, "\"timeout_s\":0.6,\"requests\":2,\"concurrency\":2,"
                 "\"extra_body\":{\"mock\":{\"stall_after\":2}}", &id);
    assert_string_equal(st, "failed");
    assert_true((long long)llmb_mono_ms() - t0 < 10000);
    err = lm_job_error(t, id);
    assert_non_null(strstr(err, "(timeout 2)"));
    assert_non_null(strstr(err, "timeout_s 0.6"));
    dur = wh_job(&t->h, "default", id, "timeouts");
    assert_true(dur == NULL || strcmp(dur, "0") == 0); /* not the job's */
    free(dur);
    free(err);
    free(st);
    free(id);
}

static void test_broken_and_garbage_streams(void **state)
{
    struct lm *t = *state;
    char *id = NULL, *st, *err;

    lm_setup(t, "llm-broken", fast_mock, NULL);
    st = run_llm(t, "\"retries\":3,\"extra_body\":{\"mock\":{\"break_after\":2}}", &id);
    assert_string_equal(st, "failed");
    err = lm_job_error(t, id);
    assert_non_null(strstr(err, "(protocol 1)"));
    free(err);
    free(st);
    free(id);

    st = run_llm(t, "\"extra_body\":{\"mock\":{\"garbage_after\":1}}", &id);
    assert_string_equal(st, "failed");
    err = lm_job_error(t, id);
    assert_non_null(strstr(err, "not a JSON object: {this is not json"));
    free(err);
    free(st);
    free(id);
}

/* A listener on 127.0.0.1 whose accept queue is full: listen(fd, 0) and
 * one connection nobody accepts. Linux drops the SYNs of further
 * connects, so they hang. Checked here, with a non-blocking connect that
 * must not complete within 300 ms. Returns the port; fds[0..1] are the
 * listener and the connection that fills its queue. */
static int hanging_port(int fds[2])
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    struct pollfd pfd;
    int probe;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fds[0] >= 0);
    assert_int_equal(bind(fds[0], (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fds[0], 0), 0);
    assert_int_equal(getsockname(fds[0], (struct sockaddr *)&a, &len), 0);
    fds[1] = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fds[1], (struct sockaddr *)&a, sizeof(a)), 0);
    probe = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(probe >= 0);
    assert_int_equal(connect(probe, (struct sockaddr *)&a, sizeof(a)), -1);
    assert_int_equal(errno, EINPROGRESS);
    pfd = (struct pollfd){.fd = probe, .events = POLLOUT};
    assert_int_equal(poll(&pfd, 1, 300), 0); /* it hangs */
    close(probe);
    return ntohs(a.sin_port);
}

/* A connect that hangs ends at the connect timeout, 10 s, when timeout_s
 * is longer (60 s here: the job fails within the 30 s run_llm waits for
 * it, so at the connect timer), and at timeout_s when that is shorter
 * (2 s); both are connect errors that say how long was waited, and
 * neither ends before it. */
static void test_connect_hangs(void **state)
{
    static const struct {
        const char *endpoint, *timeout_s;
        double min_s;
        const char *want;
    } cases[] = {
        {"hang", "60", 10.0, "connect: no connection within 10 s"},
        {"hang", "2", 2.0, "connect: no connection within 2 s"},
        /* by name: libcurl resolves and connects for the own client too */
        {"hangname", "2", 2.0, "connect: no connection within 2 s"},
    };
    struct lm *t = *state;
    int fds[2], port = hanging_port(fds);
    char *ep = llmb_xasprintf("hang=http://127.0.0.1:%d/v1", port);
    char *epn = llmb_xasprintf("hangname=http://localhost:%d/v1", port);
    const char *args[] = {"--llm-endpoint", ep, "--llm-endpoint", epn, NULL};

    lm_setup(t, "llm-connect-hangs", fast_mock, args);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *extra = llmb_xasprintf("\"endpoint\":\"%s\",\"retries\":0,"
                                     "\"timeout_s\":%s",
                                     cases[i].endpoint, cases[i].timeout_s);
        char *id = NULL, *st, *err;
        int64_t t0 = llmb_mono_us();
        double took;

        st = run_llm(t, extra, &id);
        took = (double)(llmb_mono_us() - t0) / 1e6;
        assert_string_equal(st, "failed");
        err = lm_job_error(t, id);
        if (strstr(err, cases[i].want) == NULL)
            fail_msg("%s, timeout_s %s: %s, want %s", cases[i].endpoint,
                     cases[i].timeout_s, err, cases[i].want);
        if (took < cases[i].min_s)
            fail_msg("%s, timeout_s %s: the job failed after %.1f s, before "
                     "%.0f s", cases[i].endpoint, cases[i].timeout_s, took,
                     cases[i].min_s);
        free(err);
        free(st);
        free(id);
        free(extra);
    }
    close(fds[1]);
    close(fds[0]);
    free(epn);
    free(ep);
}

/* Nothing listens: connect, retried by policy. */
static void test_connect_error(void **state)
{
    struct lm *t = *state;
    const char *args[] = {"--llm-endpoint", "closed=http://127.0.0.1:1/v1",
                          NULL};
    char *id = NULL, *st, *err;

    lm_setup(t, "llm-connect", fast_mock, args);
    st = run_llm(t, "\"endpoint\":\"closed\",\"retries\":2", &id);
    assert_string_equal(st, "failed");
    err = lm_job_error(t, id);
    assert_non_null(strstr(err, "all 1 requests failed (connect 1); first: "
                                "connect: "));
    free(err);
    free(st);
    free(id);
}

/* Bad payloads fail for good at once, naming the field. */
static void test_payload_errors(void **state)
{
    struct lm *t = *state;
    static const struct {
        const char *payload;
        const char *want;
    } cases[] = {
        {"[1]", "llm payload must be a JSON object, got an array"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "llm payload needs \"model\", a non-empty string"},
        {"{\"model\":\"m\"}",
         "llm payload needs one of \"messages\" (for /chat/completions) or "
         "\"prompt\""},
        {"{\"model\":\"m\",\"prompt\":\"x\",\"messages\":[{\"role\":\"u\"}]}",
         "needs only one of \"messages\""},
        {"{\"model\":\"m\",\"messages\":[]}",
         "field \"messages\" must be a non-empty array"},
        {"{\"model\":\"m\",\"messages\":[\"hi\"]}",
         "\"messages\": item 0 must be an object with a string \"role\""},
        {"{\"model\":\"m\",\"prompt\":\"x\",\"requests\":\"ten\"}",
         "llm payload field \"requests\" must be an integer from 1 to "
         "1000000, got \"ten\""},
        {"{\"model\":\"m\",\"prompt\":\"x\",\"concurrency\":0}",
         "field \"concurrency\" must be an integer from 1 to 100000, got 0"},
        {"{\"model\":\"m\",\"prompt\":\"x\",\"rate\":-1}",
         "field \"rate\" must be a number greater than 0"},
        {"{\"model\":\"m\",\"prompt\":\"x\",\"temperature\":3}",
         "field \"temperature\" must be a number of at least 0 and at most 2"},
        {"{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":0}",
         "field \"max_tokens\" must be an integer from 1"},
        {"{\"model\":\"m\",\"prompt\":\"x\",\"stream\":\"yes\"}",
         "field \"stream\" must be true or false, got a string"},
        {"{\"model\":\"m\",\"prompt\":\"x\",\"endpoint\":\"nope\"}",
         "llm payload field \"endpoint\": no endpoint named \"nope\" on this "
         "worker (configured: mock)"},
        {"{\"model\":\"m\",\"prompt\":\"x\",\"timeout_s\":0}",
         "field \"timeout_s\" must be a number greater than 0"},
    };
    lm_setup(t, "llm-payload", fast_mock, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *doc = llmb_xasprintf("{\"type\":\"llm\",\"payload\":%s}",
                                   cases[i].payload);
        char *id = NULL, *st = lm_run(t, doc, 10000, &id);
        char *err = lm_job_error(t, id);
        char *attempt = wh_task(&t->h, "default", id, 0, "attempt");
        assert_string_equal(st, "failed");
        if (err == NULL || strstr(err, cases[i].want) == NULL)
            fail_msg("payload %s: error \"%s\", wanted \"%s\"",
                     cases[i].payload, err, cases[i].want);
        assert_string_equal(attempt, "1"); /* fatal: no retry */
        free(attempt);
        free(err);
        free(st);
        free(id);
        free(doc);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        LM_TEST(test_429_retried),
        LM_TEST(test_429_and_5xx_classified),
        LM_TEST(test_4xx_not_retried),
        LM_TEST(test_stalled_stream_times_out),
        LM_TEST(test_broken_and_garbage_streams),
        LM_TEST(test_connect_error),
        LM_TEST(test_connect_hangs),
        LM_TEST(test_payload_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
