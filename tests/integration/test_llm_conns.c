/*
 * The llm executor's connections and clocks, against the mock LLM server
 * (llm_multi.c): the connection caches keep as many connections as the
 * most transfers ever in flight, so later requests and later runs reuse
 * them instead of connecting again; more than 128 request slots spread
 * over several curl multi handles and every stream still completes; and
 * TTFT and TTFB end at the kernel's receive time of the first content
 * chunk, not when a stopped worker got round to reading it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include <llmb/util.h>

#include "fixture.h"
#include "test_llm_support.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Three runs of 100 streams at concurrency 50 on one worker: 300
 * requests, never more than 50 on the wire, so 50 connections serve them
 * all. A cache that closed connections as a run's transfers ended (curl's
 * own limit, 4 per transfer it holds) would connect again in every run,
 * about 50 more a run. */
static void test_connections_kept(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "100", "--itl-ms", "1", NULL};
    json_t *stats, *res;
    double conns;

    lm_setup(t, "llm-conns-kept", mock, NULL);
    for (int run = 0; run < 3; run++) {
        res = lm_run_all_ok(t, 100, 50, "\"max_tokens\":2");
        json_decref(res);
    }
    stats = lm_mock_stats(&t->mock);
    assert_int_equal(lm_num(stats, "requests"), 300);
    assert_true(lm_num(stats, "max_inflight_seen") <= 50);
    conns = lm_num(stats, "connections");
    /* 50, and a few more should the server have been slow to take one
     * back before the next request of its slot started */
    if (conns < 1 || conns > 55)
        fail_msg("300 requests at concurrency 50 took %.0f connections",
                 conns);
    json_decref(stats);
}

/* Whether the worker's log has line. */
static bool log_has(const struct lm *t, const char *line)
{
    FILE *f = fopen(t->h.logs[0], "r");
    char buf[4096];
    bool found = false;

    assert_non_null(f);
    while (!found && fgets(buf, sizeof(buf), f) != NULL)
        found = strstr(buf, line) != NULL;
    fclose(f);
    return found;
}

/* 300 streams at once, each complete with its tokens. On libcurl's
 * client slots 0 to 299 go on three multi handles (the worker's
 * descriptor limit leaves room for them, as the harness starts it); the
 * own client connects to the mock's address itself and makes none. */
static void test_slots_over_shards(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "1000", "--itl-ms", "1", NULL};
    json_t *res, *reqs, *r, *stats;
    size_t i;

    lm_setup(t, "llm-conns-shards", mock, NULL);
    res = lm_run_all_ok(t, 300, 300, "\"max_tokens\":5");
    assert_int_equal(lm_num(res, "summary.output_tokens"), 1500);
    assert_true(lm_num(res, "summary.peak_concurrency") > 256);
    reqs = json_object_get(res, "_requests");
    assert_int_equal(json_array_size(reqs), 300);
    json_array_foreach(reqs, i, r) {
        assert_int_equal(lm_num(r, "status"), 200);
        assert_int_equal(lm_num(r, "output_tokens"), 5);
    }
    json_decref(res);
    stats = lm_mock_stats(&t->mock);
    assert_int_equal(lm_num(stats, "requests"), 300);
    assert_true(lm_num(stats, "max_inflight_seen") > 256);
    json_decref(stats);
    if (getenv("LLMB_TEST_LLM_CLIENT") == NULL) {
        /* the own client connects to an address without libcurl */
        assert_false(log_has(t, "llm: curl multi handle 0 made"));
        return;
    }
    for (int k = 2; k >= 0; k--) {
        char line[96];
        snprintf(line, sizeof(line), "llm: curl multi handle %d made "
                 "(request slots %d to %d)", k, k * 128, k * 128 + 127);
        if (!log_has(t, line)) {
            wh_dump_logs(&t->h);
            fail_msg("the worker's log has no \"%s\"", line);
        }
    }
    assert_false(log_has(t, "llm: curl multi handle 3 made"));
}

/* Waits until file path is not empty; fails the test after timeout_ms. */
static void wait_not_empty(const char *path, int timeout_ms)
{
    struct stat st;

    for (int waited = 0; waited <= timeout_ms; waited += 2) {
        if (stat(path, &st) == 0 && st.st_size > 0)
            return;
        sleep_ms(2);
    }
    fail_msg("%s stayed empty for %d ms", path, timeout_ms);
}

/* The first content chunk reaches a worker that is stopped (SIGSTOP)
 * from 100 ms after the mock read the request (the worker then waits in
 * its poll, with curl's timer of 200 ms after the connect still to come:
 * a stop inside the pass that sends the request, between a peek and
 * curl's read, is not what this is about) until 250 ms after the mock
 * wrote the chunk. TTFT and TTFB end at the kernel's receive time, before
 * the worker ran again: on the one clock of the machine (CLOCK_MONOTONIC,
 * the mock's too), the mock's read of the request plus the TTFT reported
 * (which counts from the send, earlier still) comes before SIGCONT. A
 * stamp taken when the worker read the chunk would be after it. */
static void test_ttft_kernel_time(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "400", "--itl-ms", "1", NULL};
    pid_t wpid;
    char *id, *st;
    json_t *stats, *sends, *res, *r;
    double mock_ttft, sent0_s, ttft, ttfb, read_us;
    int64_t cont_us;
    int waited = 0;

    lm_setup_sends(t, "llm-conns-kernel", mock, NULL);
    wpid = t->h.workers[0];
    id = wh_push(&t->h, "default", "{\"type\":\"llm\",\"payload\":{"
                 "\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":1,"
                 "\"requests\":1,\"concurrency\":1}}");
    for (;;) {
        double n;
        stats = lm_mock_stats(&t->mock);
        n = lm_num(stats, "requests");
        json_decref(stats);
        if (n >= 1)
            break;
        if (waited > 20000)
            fail_msg("the request did not reach the mock");
        sleep_ms(2);
        waited += 2;
    }
    sleep_ms(100);
    assert_int_equal(kill(wpid, SIGSTOP), 0);
    /* the mock logs a stream's sends once it has written all its tokens,
     * here the one */
    wait_not_empty(t->sends, 10000);
    sleep_ms(250);
    cont_us = llmb_mono_us();
    assert_int_equal(kill(wpid, SIGCONT), 0);

    st = wh_wait_state(&t->h, "default", id, "completed|failed|cancelled",
                       20000);
    assert_string_equal(st, "completed");
    res = lm_result(t, id, 0);
    r = json_array_get(json_object_get(res, "_requests"), 0);
    assert_non_null(r);
    ttft = lm_num(r, "ttft_ms");
    ttfb = lm_num(r, "ttfb_ms");
    stats = lm_mock_stats(&t->mock);
    mock_ttft = json_number_value(
        json_array_get(json_object_get(stats, "ttfts_ms"), 0));
    sends = lm_mock_sends(t);
    sent0_s = json_number_value(json_array_get(json_array_get(sends, 0), 0));
    read_us = sent0_s * 1e6 - mock_ttft * 1000.0;
    /* the stop lasted past the chunk's write, by construction */
    assert_true((double)cont_us - sent0_s * 1e6 >= 250000.0);
    /* never early: the request was sent before the mock read it */
    assert_true(ttft >= mock_ttft - 1.0);
    assert_true(ttfb >= mock_ttft - 1.0);
    if (read_us + ttft * 1000.0 >= (double)cont_us ||
        read_us + ttfb * 1000.0 >= (double)cont_us) {
        wh_dump_logs(&t->h);
        fail_msg("TTFT %.3f ms, TTFB %.3f ms: the mock wrote the first "
                 "chunk %.3f ms after reading the request and the worker "
                 "ran again %.3f ms after that", ttft, ttfb, mock_ttft,
                 ((double)cont_us - sent0_s * 1e6) / 1000.0);
    }
    json_decref(sends);
    json_decref(stats);
    json_decref(res);
    free(st);
    free(id);
}

/* A kept connection that the server closes as the next request comes,
 * unanswered (its keep-alive timeout struck then: --drop-kept), costs
 * the request nothing: it goes again, once, on a fresh connection, and
 * counts as one attempt. At concurrency 2, each of the 20 requests but
 * the first two finds its slot's kept connection and is dropped there. */
static void test_kept_connection_closed(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "5", "--itl-ms", "1", "--drop-kept",
                          NULL};
    json_t *res, *reqs, *r, *stats;
    size_t i;

    lm_setup(t, "llm-conns-dropped", mock, NULL);
    res = lm_run_all_ok(t, 20, 2, "\"max_tokens\":3,\"retries\":0");
    assert_int_equal(lm_num(res, "summary.retries"), 0);
    reqs = json_object_get(res, "_requests");
    assert_int_equal(json_array_size(reqs), 20);
    json_array_foreach(reqs, i, r) {
        assert_int_equal(lm_num(r, "attempts"), 1);
        assert_int_equal(lm_num(r, "output_tokens"), 3);
    }
    json_decref(res);
    stats = lm_mock_stats(&t->mock);
    assert_int_equal(lm_num(stats, "requests"), 20);
    assert_int_equal(lm_num(stats, "dropped"), 18);
    assert_int_equal(lm_num(stats, "connections"), 20);
    json_decref(stats);
}

/* A job doc of head (an object's opening, up to a comma) and a 6 MB
 * prompt, which t's queue is made to take (max_payload 16 MB): larger
 * than a loopback socket's buffers (the send buffer grows to
 * net.ipv4.tcp_wmem's 4 MB). */
static void large_doc(struct lm *t, struct llmb_buf *doc, const char *head)
{
    redisReply *r = wh_cmd(&t->h, "HSET %s:{default}:conf max_payload "
                           "16777216", t->h.prefix);

    freeReplyObject(r);
    llmb_buf_init(doc);
    llmb_buf_appendf(doc, "%s\"prompt\":\"", head);
    for (size_t k = 0; k < 6 * 1024 * 1024 / 8; k++)
        llmb_buf_append(doc, "abcdefg ", 8);
    llmb_buf_appendf(doc, "\"}}");
}

/* A request body larger than the socket's buffers goes out in pieces as
 * the server reads it: a prompt of 6 MB (large_doc) to a server that
 * reads a body only 300 ms after its headers, so that the send fills the
 * buffers and must wait for room; every word of both prompts arrives. */
static void test_large_request_body(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "1", "--itl-ms", "1",
                          "--read-delay-ms", "300", NULL};
    struct llmb_buf doc;
    json_t *res, *stats;

    lm_setup(t, "llm-conns-body", mock, NULL);
    large_doc(t, &doc, "{\"type\":\"llm\",\"payload\":{\"model\":\"m\","
              "\"max_tokens\":2,\"requests\":2,\"concurrency\":2,");
    res = lm_run_ok(t, doc.data, 60000);
    assert_int_equal(lm_num(res, "summary.ok"), 2);
    /* every byte arrived: the mock counts the prompt's words */
    assert_int_equal(lm_num(res, "summary.input_tokens"),
                     2 * (6 * 1024 * 1024 / 8));
    json_decref(res);
    stats = lm_mock_stats(&t->mock);
    assert_int_equal(lm_num(stats, "requests"), 2);
    json_decref(stats);
    llmb_buf_fini(&doc);
}

/* A server that answers before it has read the request's body, and
 * closes (a body over its limit: --max-body-bytes) gets its answer
 * recorded: the 413 is read while the body is still going out, as
 * libcurl does, and the request is an http_4xx, not a failed send (a
 * connect error, retried). */
static void test_answer_before_body(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "1", "--itl-ms", "1",
                          "--max-body-bytes", "1048576", NULL};
    struct llmb_buf doc;
    char *id = NULL, *st, *err;

    lm_setup(t, "llm-conns-early", mock, NULL);
    large_doc(t, &doc, "{\"type\":\"llm\",\"max_retries\":0,"
              "\"payload\":{\"model\":\"m\",\"max_tokens\":2,"
              "\"requests\":1,\"retries\":0,");
    st = lm_run(t, doc.data, 60000, &id);
    assert_string_equal(st, "failed");
    err = lm_job_error(t, id);
    assert_non_null(err);
    if (strstr(err, "(http_4xx 1); first: http_4xx: HTTP 413") == NULL)
        fail_msg("the 413 answered before the body was read: %s", err);
    free(err);
    free(st);
    free(id);
    llmb_buf_fini(&doc);
}

/* An endpoint named by a host name: the own client has libcurl resolve
 * it and connect (localhost: ::1 and 127.0.0.1, the mock listening on the
 * second only, so that libcurl closes the losing socket itself), then
 * takes the socket over; on libcurl's client the whole request is
 * libcurl's. Either way every request completes and the connections are
 * kept: 40 requests at concurrency 4 over 4 connections. */
static void test_host_name(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "2", "--itl-ms", "1", NULL};
    const char *args[] = {"--llm-endpoint", NULL, NULL};
    char *ep, *url;
    json_t *res, *stats;

    memset(t, 0, sizeof(*t));
    assert_int_equal(wh_init(&t->h, "llm-conns-name"), 0);
    lm_mock_start(&t->mock, mock);
    url = llmb_xasprintf("http://localhost:%d", t->mock.port);
    ep = lm_endpoint("byname", url);
    free(url);
    args[1] = ep;
    wh_worker_start(&t->h, args);
    res = lm_run_all_ok(t, 40, 4, "\"endpoint\":\"byname\",\"max_tokens\":3");
    json_decref(res);
    stats = lm_mock_stats(&t->mock);
    assert_int_equal(lm_num(stats, "requests"), 40);
    assert_int_equal(lm_num(stats, "connections"), 4);
    json_decref(stats);
    /* the connects went through libcurl */
    assert_true(log_has(t, "llm: curl multi handle 0 made"));
    free(ep);
}

/* An endpoint at an IPv6 address, http://[::1]:PORT: the own client
 * connects to it itself (a numeric host); the requests complete and
 * their connections are kept. */
static void test_ipv6_literal(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "2", "--itl-ms", "1", "--host", "::1",
                          NULL};
    json_t *res, *stats;

    lm_setup(t, "llm-conns-v6", mock, NULL);
    assert_non_null(strstr(t->mock.url, "[::1]"));
    res = lm_run_all_ok(t, 10, 2, "\"max_tokens\":3");
    json_decref(res);
    stats = lm_mock_stats(&t->mock);
    assert_int_equal(lm_num(stats, "requests"), 10);
    assert_int_equal(lm_num(stats, "connections"), 2);
    json_decref(stats);
}

/* The worker's sockets to port that the server has closed and the
 * worker not (TCP CLOSE_WAIT, /proc/net/tcp state 08). */
static int close_wait_to(int port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512];
    int n = 0;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned rport, st;
        if (sscanf(line, " %*d: %*8X:%*4X %*8X:%4X %2X", &rport, &st) == 2 &&
            (int)rport == port && st == 0x08)
            n++;
    }
    fclose(f);
    return n;
}

/* Kept connections the server closes while they are idle (its
 * keep-alive timeout: --keep-alive-ms) are closed by the worker too
 * within a second or so, whichever origin the later requests go to, as
 * libcurl's connection cache does: 20 connections of one endpoint, then
 * requests only to another name of the same server. */
static void test_idle_closed_by_server(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "2", "--itl-ms", "1",
                          "--keep-alive-ms", "500", NULL};
    const char *args[] = {"--llm-endpoint", NULL, "--llm-endpoint", NULL,
                          NULL};
    char *ep1, *ep2, *url;
    json_t *res;

    memset(t, 0, sizeof(*t));
    assert_int_equal(wh_init(&t->h, "llm-conns-idle"), 0);
    lm_mock_start(&t->mock, mock);
    ep1 = lm_endpoint("mock", t->mock.url);
    url = llmb_xasprintf("http://localhost:%d", t->mock.port);
    ep2 = lm_endpoint("byname", url);
    free(url);
    args[1] = ep1;
    args[3] = ep2;
    wh_worker_start(&t->h, args);
    res = lm_run_all_ok(t, 20, 20, "\"endpoint\":\"mock\",\"max_tokens\":3");
    json_decref(res);
    /* the server closes the 20 idle connections after 500 ms */
    sleep_ms(1500);
    for (int run = 0; run < 3; run++) {
        if (run > 0)
            sleep_ms(1100);
        res = lm_run_all_ok(t, 2, 1,
                            "\"endpoint\":\"byname\",\"max_tokens\":3");
        json_decref(res);
    }
    /* the last run's connection is still in its 500 ms */
    if (close_wait_to(t->mock.port) != 0)
        fail_msg("%d connections closed by the server are still open",
                 close_wait_to(t->mock.port));
    free(ep1);
    free(ep2);
}

/* An error answer whose head the own client cannot read to its end (a
 * Content-Type line over its 1 KiB limit) still counts by the status its
 * status line gave: a 503 is http_5xx, as on libcurl's client, not a
 * connect error with no status. */
static void test_error_with_long_header(void **state)
{
    struct lm *t = *state;
    const char *mock[] = {"--ttft-ms", "1", "--itl-ms", "1",
                          "--fail-times", "2", "--fail-status", "503",
                          "--long-error-header", NULL};
    json_t *res, *reqs, *r;
    size_t i;
    int failed = 0;

    lm_setup(t, "llm-conns-longhdr", mock, NULL);
    res = lm_run_ok(t, "{\"type\":\"llm\",\"payload\":{\"model\":\"m\","
                    "\"prompt\":\"x\",\"max_tokens\":2,\"requests\":3,"
                    "\"concurrency\":1,\"retries\":0}}", 30000);
    assert_int_equal(lm_num(res, "summary.ok"), 1);
    reqs = json_object_get(res, "_requests");
    assert_int_equal(json_array_size(reqs), 3);
    json_array_foreach(reqs, i, r) {
        if (json_object_get(r, "error") == NULL)
            continue;
        failed++;
        assert_int_equal(lm_num(r, "status"), 503);
        assert_string_equal(json_string_value(json_object_get(r, "error")),
                            "http_5xx");
    }
    assert_int_equal(failed, 2);
    json_decref(res);
}

/* client= of --llm-endpoint: anything but llmb or libcurl, and llmb for
 * an endpoint it cannot speak to (https), stop the worker at start; so
 * does an endpoint named client, the name of an attribute. */
static void test_client_refused(void **state)
{
    struct lm *t = *state;
    static const struct {
        const char *endpoint, *want;
    } bad[] = {
        {"x=http://127.0.0.1:1,client=curl",
         "client must be llmb or libcurl, got \"curl\""},
        {"x=https://127.0.0.1:1,client=llmb",
         "client=llmb speaks plain http://"},
        {"x=http://u:p@127.0.0.1:1,client=llmb",
         "use libcurl for \"http://u:p@127.0.0.1:1\""},
        {"x=http://127.0.0.1:1,client=llmb,client=libcurl",
         "client given twice"},
        {"client=http://127.0.0.1:1", "not key_env or client"},
    };
    size_t n = sizeof(bad) / sizeof(bad[0]);

    for (size_t i = 0; i < n; i++) {
        const char *args[] = {"--llm-endpoint", bad[i].endpoint, NULL};
        char name[32];
        pid_t pid;

        memset(t, 0, sizeof(*t));
        snprintf(name, sizeof(name), "llm-client-%zu", i);
        assert_int_equal(wh_init(&t->h, name), 0);
        pid = wh_worker_start(&t->h, args);
        assert_int_equal(wh_worker_wait(&t->h, pid, 10000), 78);
        if (!log_has(t, bad[i].want))
            fail_msg("--llm-endpoint %s: the worker did not say \"%s\"",
                     bad[i].endpoint, bad[i].want);
        if (i < n - 1)
            lm_teardown(t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        LM_TEST(test_connections_kept),
        LM_TEST(test_slots_over_shards),
        LM_TEST(test_ttft_kernel_time),
        LM_TEST(test_kept_connection_closed),
        LM_TEST(test_large_request_body),
        LM_TEST(test_answer_before_body),
        LM_TEST(test_host_name),
        LM_TEST(test_idle_closed_by_server),
        LM_TEST(test_ipv6_literal),
        LM_TEST(test_error_with_long_header),
        LM_TEST(test_client_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
