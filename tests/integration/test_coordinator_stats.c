/*
 * The coordinator when a queue's stats cannot be read, with real
 * llmb-coordinator processes: a queue key of the wrong type (llmb_stats
 * names it in wrong_keys) and an llmb_stats refused by Redis (an ACL user
 * that may not touch that queue's keys) make /healthz unhealthy with the
 * queue and the reason, set llmb_queue_stats_error and leave out the
 * queue's numbers (unknown, not 0) in /metrics and <prefix>:metrics, and
 * all of that clears when the queue reads well again. The junk count of
 * llmb_stats becomes llmb_queue_junk_total, and the coordinator logs one
 * line each time it grows. Pending work that no live worker serves (the
 * queue, or the type at its head) makes /healthz degraded.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "test_coordinator_support.h"

static const char *url;

static int group_setup(void **state)
{
    (void)state;
    url = llmb_test_redis_url();
    return url == NULL ? -1 : 0;
}

/* Waits up to ms for GET path to answer status with a body holding want
 * (NULL: any body); returns the body (free it). */
static char *wait_http(int port, const char *path, int status,
                       const char *want, long long ms)
{
    long long deadline = tc_now() + ms;
    char *body = NULL;
    int st = -1;

    while (tc_now() < deadline) {
        free(body);
        body = NULL;
        st = tc_http_get(port, path, &body);
        if (st == status && body != NULL &&
            (want == NULL || strstr(body, want) != NULL))
            return body;
        usleep(50000);
    }
    fail_msg("GET %s: status %d, body %s; wanted %d with \"%s\"", path, st,
             body != NULL ? body : "(none)", status, want ? want : "");
    return NULL;
}

static void assert_has(const char *text, const char *want)
{
    if (strstr(text, want) == NULL)
        fail_msg("\"%s\" is not in:\n%s", want, text);
}

static void assert_lacks(const char *text, const char *unwanted)
{
    if (strstr(text, unwanted) != NULL)
        fail_msg("\"%s\" should not be in:\n%s", unwanted, text);
}

static pid_t coord_start(const char *redis_url, const char *prefix,
                         const char *id, int port)
{
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    return tc_coord_start(redis_url, prefix, id, "--metrics-addr", addr,
                          "--metrics-ms", "100", NULL);
}

/* A key of the wrong type in queue bad: unhealthy, no numbers for bad,
 * the other queue as usual; fixed, all is well again. */
static void test_wrong_key(void **state)
{
    char *prefix = llmb_test_prefix("stwrong");
    redisContext *c = tc_redis(url);
    int port = tc_free_port();
    char *body, *want, *v;
    pid_t co;

    (void)state;
    free(tc_push(c, prefix, "good", "{\"type\":\"t\"}"));
    freeReplyObject(tc_cmd(c, "SADD %s:queues good bad", prefix));
    freeReplyObject(tc_cmd(c, "SET %s:{bad}:pz x", prefix));
    co = coord_start(url, prefix, "stwrong-c1", port);

    want = llmb_xasprintf("queue bad: keys of the wrong type, counted as "
                          "empty: %s:{bad}:pz", prefix);
    body = wait_http(port, "/healthz", 503, want, 5000);
    assert_has(body, "\"status\":\"unhealthy\"");
    assert_has(body, "\"queue_errors\":{\"bad\":");
    free(body);

    body = wait_http(port, "/metrics", 200, NULL, 5000);
    assert_has(body, "llmb_queue_stats_error{queue=\"bad\"} 1\n");
    assert_has(body, "llmb_queue_stats_error{queue=\"good\"} 0\n");
    assert_has(body, "llmb_queue_pending{queue=\"good\"} 1\n");
    assert_lacks(body, "llmb_queue_pending{queue=\"bad\"}");
    assert_lacks(body, "llmb_queue_stats_errors_total{queue=\"bad\"} 0\n");
    assert_has(body, "llmb_health{status=\"unhealthy\"} 1\n");
    free(body);

    /* The hash: an error field instead of numbers. */
    v = tc_str(c, "HGET %s:metrics queue:bad:error", prefix);
    assert_non_null(v);
    assert_has(v, "keys of the wrong type");
    free(v);
    assert_null(tc_str(c, "HGET %s:metrics queue:bad:pending", prefix));
    v = tc_str(c, "HGET %s:metrics health", prefix);
    assert_string_equal(v, "unhealthy");
    free(v);
    v = tc_str(c, "HGET %s:metrics queue:good:pending", prefix);
    assert_string_equal(v, "1");
    free(v);

    /* Fixed: the queue has numbers again, the error is gone. (Degraded:
     * a task waits and no worker runs.) */
    freeReplyObject(tc_cmd(c, "DEL %s:{bad}:pz", prefix));
    body = wait_http(port, "/healthz", 200, "\"status\":\"degraded\"", 5000);
    assert_lacks(body, "queue bad");
    free(body);
    body = wait_http(port, "/metrics", 200,
                     "llmb_queue_stats_error{queue=\"bad\"} 0\n", 5000);
    assert_has(body, "llmb_queue_pending{queue=\"bad\"} 0\n");
    free(body);
    long long deadline = tc_now() + 5000;
    while ((v = tc_str(c, "HGET %s:metrics queue:bad:error", prefix)) !=
               NULL && tc_now() < deadline) {
        free(v);
        usleep(50000);
    }
    assert_null(v);
    v = tc_str(c, "HGET %s:metrics queue:bad:pending", prefix);
    assert_string_equal(v, "0");
    free(v);

    assert_int_equal(tc_coord_stop(co, SIGTERM), 0);
    llmb_test_redis_del_prefix(c, prefix);
    redisFree(c);
    free(want);
    free(prefix);
}

/* "redis://HOST..." with user:password@ after the scheme (malloc'd). */
static char *url_with_user(const char *u, const char *user, const char *pw)
{
    const char *rest = strstr(u, "://");

    assert_non_null(rest);
    return llmb_xasprintf("%.*s://%s:%s@%s", (int)(rest - u), u, user, pw,
                          rest + 3);
}

/* Redis refuses llmb_stats for queue bad (the coordinator's ACL user may
 * not touch its keys): unhealthy, with Redis's error. */
static void test_error_reply(void **state)
{
    char *prefix = llmb_test_prefix("sterr");
    char *user = llmb_xasprintf("%s-user", prefix);
    redisContext *c = tc_redis(url);
    int port = tc_free_port();
    char *body, *curl;
    pid_t co;

    (void)state;
    free(tc_push(c, prefix, "good", "{\"type\":\"t\"}"));
    free(tc_push(c, prefix, "bad", "{\"type\":\"t\"}"));
    freeReplyObject(tc_cmd(c, "ACL SETUSER %s on >pw resetkeys "
                              "~%s:queues ~%s:workers ~%s:worker:* "
                              "~%s:metrics ~%s:{good}* +@all", user, prefix,
                           prefix, prefix, prefix, prefix));
    curl = url_with_user(url, user, "pw");
    co = coord_start(curl, prefix, "sterr-c1", port);

    body = wait_http(port, "/healthz", 503,
                     "queue bad: llmb_stats failed: NOPERM", 5000);
    assert_lacks(body, "queue good");
    free(body);
    body = wait_http(port, "/metrics", 200, NULL, 5000);
    assert_has(body, "llmb_queue_stats_error{queue=\"bad\"} 1\n");
    assert_has(body, "llmb_queue_pending{queue=\"good\"} 1\n");
    assert_lacks(body, "llmb_queue_pending{queue=\"bad\"}");
    free(body);

    assert_int_equal(tc_coord_stop(co, SIGTERM), 0);
    freeReplyObject(tc_cmd(c, "ACL DELUSER %s", user));
    llmb_test_redis_del_prefix(c, prefix);
    redisFree(c);
    free(curl);
    free(user);
    free(prefix);
}

/* Lines of file path that hold want. */
static int count_lines(const char *path, const char *want)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int n = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, want) != NULL)
            n++;
    fclose(f);
    return n;
}

/* The junk count: llmb_queue_junk_total, the queue:<q>:junk field, and
 * one log line when it is first seen and one each time it grows. */
static void test_junk(void **state)
{
    char *prefix = llmb_test_prefix("stjunk");
    char path[] = "/tmp/llmb-stjunk-XXXXXX";
    redisContext *c = tc_redis(url);
    int port = tc_free_port(), fd, saved;
    char *body, *v;
    pid_t co;

    (void)state;
    free(tc_push(c, prefix, "q", "{\"type\":\"t\"}"));
    freeReplyObject(tc_cmd(c, "HINCRBY %s:{q}:counts junk 3", prefix));
    /* The coordinator's log (its stderr) into a file of our own. */
    fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    saved = dup(2);
    dup2(fd, 2);
    co = coord_start(url, prefix, "sj-c1", port);
    dup2(saved, 2);
    close(saved);
    close(fd);

    body = wait_http(port, "/metrics", 200,
                     "llmb_queue_junk_total{queue=\"q\"} 3\n", 5000);
    assert_has(body, "# TYPE llmb_queue_junk_total counter\n");
    free(body);
    v = tc_str(c, "HGET %s:metrics queue:q:junk", prefix);
    assert_string_equal(v, "3");
    free(v);
    assert_int_equal(count_lines(path, "queue holds junk"), 1);
    assert_int_equal(count_lines(path, "queue=q junk=3"), 1);

    freeReplyObject(tc_cmd(c, "HINCRBY %s:{q}:counts junk 2", prefix));
    body = wait_http(port, "/metrics", 200,
                     "llmb_queue_junk_total{queue=\"q\"} 5\n", 5000);
    free(body);
    usleep(300000); /* a few more collections: no more lines */
    assert_int_equal(count_lines(path, "junk in a queue: the functions "
                                       "skipped 2 more"), 1);
    assert_int_equal(count_lines(path, "junk="), 2);
    /* Junk alone is no reason for concern in the health. */
    body = wait_http(port, "/healthz", 200, NULL, 5000);
    assert_lacks(body, "junk");
    free(body);

    assert_int_equal(tc_coord_stop(co, SIGTERM), 0);
    unlink(path);
    llmb_test_redis_del_prefix(c, prefix);
    redisFree(c);
    free(prefix);
}

/* Work nobody serves: a queue with tasks pending and no live worker, and
 * a queue whose head task has a type no live worker advertises in
 * <base>:types, make /healthz degraded with the queue named; advertising
 * the type clears it, and stale adverts are deleted. */
static void test_unserved(void **state)
{
    char *prefix = llmb_test_prefix("stunserved");
    redisContext *c = tc_redis(url);
    int port = tc_free_port();
    struct tc_worker *w = NULL;
    char *body;
    pid_t co;

    (void)state;
    free(tc_push(c, prefix, "orphan", "{\"type\":\"t\"}"));
    free(tc_push(c, prefix, "served", "{\"type\":\"special\"}"));
    /* A worker of queue served only (its record lists it). */
    w = tc_worker_new(url, prefix, "stunserved-w1", "served", 2);
    co = coord_start(url, prefix, "stunserved-c1", port);

    body = wait_http(port, "/healthz", 200,
                     "queue orphan: 1 tasks pending and no live worker "
                     "serves the queue", 5000);
    assert_has(body, "\"status\":\"degraded\"");
    assert_has(body, "\"unserved\":{\"orphan\":");
    assert_lacks(body, "queue served");
    free(body);

    /* The workers of served advertise their types, not "special". */
    freeReplyObject(tc_cmd(c, "HSET %s:{served}:types noop 99999999999999 "
                              "old 1", prefix));
    body = wait_http(port, "/healthz", 200,
                     "queue served: tasks of type \\\"special\\\" pending "
                     "and no live worker handles that type", 5000);
    assert_has(body, "\"unserved\":{");
    free(body);
    /* Adverts that ended long ago are deleted, more than one collection
     * deletes (100) included: only noop is left. */
    for (int k = 0; k < 250; k++)
        freeReplyObject(tc_cmd(c, "HSET %s:{served}:types old%d 1", prefix,
                               k));
    long long deadline = tc_now() + 5000;
    while (tc_now() < deadline &&
           tc_int(c, "HLEN %s:{served}:types", prefix) > 1)
        usleep(50000);
    assert_int_equal(tc_int(c, "HEXISTS %s:{served}:types old", prefix), 0);
    assert_int_equal(tc_int(c, "HLEN %s:{served}:types", prefix), 1);

    /* A worker handles it now: only orphan is left. */
    freeReplyObject(tc_cmd(c, "HSET %s:{served}:types special "
                              "99999999999999", prefix));
    deadline = tc_now() + 5000;
    for (;;) {
        body = wait_http(port, "/healthz", 200, "queue orphan", 5000);
        if (strstr(body, "queue served") == NULL || tc_now() > deadline)
            break;
        free(body);
        usleep(50000);
    }
    assert_lacks(body, "queue served");
    free(body);

    tc_coord_stop(co, SIGTERM);
    tc_worker_free(w);
    llmb_test_redis_del_prefix(c, prefix);
    redisFree(c);
    free(prefix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_wrong_key, tc_children_kill),
        cmocka_unit_test_teardown(test_error_reply, tc_children_kill),
        cmocka_unit_test_teardown(test_junk, tc_children_kill),
        cmocka_unit_test_teardown(test_unserved, tc_children_kill),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
