/*
 * llmb-worker end to end with its built-in handlers (noop, sleep, echo,
 * fail) and the example C plugin: real worker processes against the
 * fixture redis-server. Also: the worker registry and connection names, an
 * unknown job type, a drain that lets a task finish, an idle worker that
 * uses no CPU and starts a pushed job at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <llmb/util.h>

#include "fixture.h"
#include "test_worker_harness.h"

static int setup(void **state)
{
    struct wh *h = llmb_xcalloc(1, sizeof(*h));
    if (wh_init(h, "wb") != 0) {
        free(h);
        return -1;
    }
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    wh_fini(*state);
    free(*state);
    return 0;
}

static void assert_field(struct wh *h, const char *id, int index,
                         const char *field, const char *want)
{
    char *v = wh_task(h, "q1", id, index, field);
    if (v == NULL || strcmp(v, want) != 0)
        fail_msg("task %s:%d field %s is \"%s\", wanted \"%s\"", id, index,
                 field, v != NULL ? v : "(none)", want);
    free(v);
}

static void assert_contains(const char *s, const char *part)
{
    if (s == NULL || strstr(s, part) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", s != NULL ? s : "(null)",
                 part);
}

static void test_builtins(void **state)
{
    struct wh *h = *state;
    char *wid = llmb_xasprintf("%s-w1", h->prefix);
    const char *args[] = {"--queues", "q1", "--capacity", "4", "--id", wid,
                          "--tags", "gpu,eu", "--no-handler-fail-after-s",
                          "0", NULL};
    pid_t pid = wh_worker_start(h, args);

    char *noop = wh_push(h, "q1", "{\"type\":\"noop\"}");
    char *echo = wh_push(h, "q1", "{\"type\":\"echo\",\"payload\":"
                                  "{\"a\": [1, 2.50]}}");
    char *scalar = wh_push(h, "q1", "{\"type\":\"echo\",\"payload\":5}");
    char *fail = wh_push(h, "q1", "{\"type\":\"fail\",\"max_retries\":0,"
                                  "\"payload\":{\"message\":\"boom\"}}");
    char *sleep = wh_push(h, "q1", "{\"type\":\"sleep\",\"tasks\":3,"
                                   "\"payload\":{\"ms\":50}}");
    char *nope = wh_push(h, "q1", "{\"type\":\"nope\",\"max_retries\":3}");

    free(wh_wait_state(h, "q1", noop, "completed", 10000));
    free(wh_wait_state(h, "q1", echo, "completed", 10000));
    free(wh_wait_state(h, "q1", scalar, "completed", 10000));
    free(wh_wait_state(h, "q1", fail, "failed", 10000));
    free(wh_wait_state(h, "q1", sleep, "completed", 10000));
    free(wh_wait_state(h, "q1", nope, "failed", 10000));

    assert_field(h, noop, 0, "result", "{}");
    assert_field(h, echo, 0, "result", "{\"a\": [1, 2.50]}");
    assert_field(h, scalar, 0, "result", "{\"value\":5}");
    assert_field(h, fail, 0, "error", "boom");
    assert_field(h, sleep, 2, "result", "{\"slept_ms\":50}");
    /* No handler, and none on another worker: with
     * --no-handler-fail-after-s 0, failed for good on the first attempt
     * (test_worker_handlers covers the wait). */
    assert_field(h, nope, 0, "attempt", "1");
    char *want = llmb_xasprintf("no handler for job type \"nope\" on worker %s",
                                wid);
    char *err = wh_job(h, "q1", nope, "error");
    assert_contains(err, want);
    free(err);
    free(want);

    /* The registry and the connection names the coordinator relies on. */
    char *key = llmb_xasprintf("%s:worker:%s", h->prefix, wid);
    redisReply *r = wh_cmd(h, "HMGET %s id capacity queues tags state pid "
                              "completed failed version", key);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_string_equal(r->element[0]->str, wid);
    assert_string_equal(r->element[1]->str, "4");
    assert_string_equal(r->element[2]->str, "q1");
    assert_string_equal(r->element[3]->str, "gpu,eu");
    assert_non_null(r->element[4]->str);
    assert_int_equal(atol(r->element[5]->str), (long)pid);
    freeReplyObject(r);
    r = wh_cmd(h, "ZSCORE %s:workers %s", h->prefix, wid);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    r = wh_cmd(h, "SISMEMBER %s:queues q1", h->prefix);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    char *cname = llmb_xasprintf("llmb-worker:%s", wid);
    assert_true(llmb_test_clients_named(h->c, cname) >= 2);

    /* A clean stop deregisters. */
    kill(pid, SIGTERM);
    assert_int_equal(wh_worker_wait(h, pid, 10000), 0);
    r = wh_cmd(h, "EXISTS %s", key);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    r = wh_cmd(h, "ZSCORE %s:workers %s", h->prefix, wid);
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    /* Redis notices the closed sockets a moment after the exit. */
    for (int i = 0; i < 100 && llmb_test_clients_named(h->c, cname) > 0; i++)
        usleep(10000);
    assert_int_equal(llmb_test_clients_named(h->c, cname), 0);

    free(cname);
    free(key);
    free(noop);
    free(echo);
    free(scalar);
    free(fail);
    free(sleep);
    free(nope);
    free(wid);
}

static void test_plugin(void **state)
{
    struct wh *h = *state;
    const char *so = getenv("LLMB_EXAMPLE_PLUGIN");
    assert_non_null(so);
    char *spec = llmb_xasprintf("sum=plugin:%s hello", so);
    const char *args[] = {"--queues", "q1", "--capacity", "2", "--handler",
                          spec, "--no-handler-fail-after-s", "0", NULL};
    pid_t pid = wh_worker_start(h, args);

    char *ok = wh_push(h, "q1", "{\"type\":\"sum\",\"tasks\":3,"
                                "\"payload\":{\"n\":10,\"delay_ms\":20}}");
    char *bad = wh_push(h, "q1", "{\"type\":\"sum\",\"max_retries\":0,"
                                 "\"payload\":{\"fail\":\"nope\"}}");
    char *fatal = wh_push(h, "q1", "{\"type\":\"sum\",\"max_retries\":3,"
                                   "\"payload\":{\"fatal\":\"never\"}}");
    char *other = wh_push(h, "q1", "{\"type\":\"echo\",\"max_retries\":0}");
    free(wh_wait_state(h, "q1", ok, "completed", 10000));
    free(wh_wait_state(h, "q1", bad, "failed", 10000));
    free(wh_wait_state(h, "q1", fatal, "failed", 10000));
    free(wh_wait_state(h, "q1", other, "failed", 10000));

    for (int i = 0; i < 3; i++) {
        char *res = wh_task(h, "q1", ok, i, "result");
        json_t *j = json_loads(res != NULL ? res : "", 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "greeting")),
                            "hello");
        assert_int_equal(json_integer_value(json_object_get(j, "sum")), 55);
        assert_int_equal(json_integer_value(json_object_get(j, "task")), i);
        json_decref(j);
        free(res);
    }
    assert_field(h, bad, 0, "error", "nope");
    assert_field(h, fatal, 0, "attempt", "1");
    assert_field(h, fatal, 0, "error", "never");

    kill(pid, SIGTERM);
    assert_int_equal(wh_worker_wait(h, pid, 10000), 0);

    /* A plugin that does not load is a configuration error (78). */
    const char *bad_args[] = {"--handler", "x=plugin:/nonexistent/lib.so",
                              NULL};
    pid = wh_worker_start(h, bad_args);
    assert_int_equal(wh_worker_wait(h, pid, 10000), 78);
    const char *bad_exec[] = {"--handler", "x=exec:/nonexistent/prog", NULL};
    pid = wh_worker_start(h, bad_exec);
    assert_int_equal(wh_worker_wait(h, pid, 10000), 78);

    free(ok);
    free(bad);
    free(fatal);
    free(other);
    free(spec);
}

/* SIGTERM while a task runs: the task finishes within the grace and is
 * recorded; the worker exits 0. */
static void test_drain_finishes(void **state)
{
    struct wh *h = *state;
    const char *args[] = {"--queues", "q1", "--grace", "10", NULL};
    pid_t pid = wh_worker_start(h, args);
    char *id = wh_push(h, "q1", "{\"type\":\"sleep\",\"payload\":{\"ms\":700}}");

    free(wh_wait_state(h, "q1", id, "running", 10000));
    kill(pid, SIGTERM);
    assert_int_equal(wh_worker_wait(h, pid, 10000), 0);
    char *st = wh_job(h, "q1", id, "state");
    assert_string_equal(st, "completed");
    free(st);
    free(id);
}

/* An idle worker sleeps in BLPOP: next to no CPU, and a push starts at
 * once. */
static void test_idle_and_wake(void **state)
{
    struct wh *h = *state;
    char *wid = llmb_xasprintf("%s-idle", h->prefix);
    const char *args[] = {"--queues", "q1", "--id", wid, NULL};
    pid_t pid = wh_worker_start(h, args);
    char *key = llmb_xasprintf("%s:worker:%s", h->prefix, wid);

    for (int i = 0; i < 500; i++) {
        redisReply *r = wh_cmd(h, "EXISTS %s", key);
        long long e = r->integer;
        freeReplyObject(r);
        if (e)
            break;
        usleep(10000);
    }
    usleep(300000);
    long long cpu0 = wh_cpu_ms(pid);
    usleep(2000000);
    long long cpu1 = wh_cpu_ms(pid);
    print_message("idle worker: %lld ms CPU in 2 s\n", cpu1 - cpu0);
    assert_true(cpu0 >= 0 && cpu1 - cpu0 <= 100);

    /* created_ms and started_ms both come from the Redis clock. */
    long long best = 1000000;
    for (int i = 0; i < 5; i++) {
        char *id = wh_push(h, "q1", "{\"type\":\"noop\"}");
        free(wh_wait_state(h, "q1", id, "completed", 10000));
        char *c = wh_job(h, "q1", id, "created_ms");
        char *s = wh_job(h, "q1", id, "started_ms");
        long long d = atoll(s) - atoll(c);
        print_message("push to start: %lld ms\n", d);
        if (d < best)
            best = d;
        free(c);
        free(s);
        free(id);
        usleep(100000);
    }
    assert_true(best <= 20);
    kill(pid, SIGTERM);
    assert_int_equal(wh_worker_wait(h, pid, 10000), 0);
    free(key);
    free(wid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_builtins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plugin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_finishes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_and_wake, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
