/*
 * Tasks of a type a worker has no handler for: with two workers of which
 * only one has the handler, the task runs there and no attempt is spent
 * on the other, which hands it back (llmb_release) without claiming it in
 * a hot loop; with only workers that lack the handler, the task fails
 * "no handler" once none has handled the type for
 * --no-handler-fail-after-s, not before. Workers advertise their types
 * in <base>:types.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llmb/util.h>

#include "test_worker_harness.h"

static int setup(void **state)
{
    struct wh *h = llmb_xcalloc(1, sizeof(*h));

    if (wh_init(h, "whand") != 0) {
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

/* The log of the i-th worker started, read whole (free it). */
static char *worker_log(struct wh *h, int i)
{
    char *text = NULL;
    size_t cap = 0;
    FILE *f = fopen(h->logs[i], "r");

    if (f == NULL)
        return llmb_xstrdup("");
    if (getdelim(&text, &cap, '\0', f) < 0) {
        free(text);
        text = llmb_xstrdup("");
    }
    fclose(f);
    return text;
}

static int count_of(const char *text, const char *what)
{
    int n = 0;

    for (const char *p = text; (p = strstr(p, what)) != NULL; p++)
        n++;
    return n;
}

/* Waits until <base>:types of queue holds type. */
static void wait_advertised(struct wh *h, const char *queue, const char *type)
{
    for (int i = 0; i < 100; i++) {
        redisReply *r = wh_cmd(h, "HGET %s:{%s}:types %s", h->prefix, queue,
                               type);
        bool ok = r->type == REDIS_REPLY_STRING;
        freeReplyObject(r);
        if (ok)
            return;
        usleep(100 * 1000);
    }
    wh_dump_logs(h);
    fail_msg("no worker advertised type %s on queue %s", type, queue);
}

static void test_runs_where_handled(void **state)
{
    struct wh *h = *state;
    char *a = llmb_xasprintf("%s-a", h->prefix);
    char *b = llmb_xasprintf("%s-b", h->prefix);
    const char *args_a[] = {"--queues", "q1", "--id", a, "--handler",
                            "noop=noop", "--no-handler-fail-after-s", "60",
                            NULL};
    const char *args_b[] = {"--queues", "q1", "--id", b, "--handler",
                            "special=echo", NULL};

    wh_worker_start(h, args_a);
    wait_advertised(h, "q1", "noop");
    /* Only A so far: it claims the task, finds nobody handling the type,
     * hands it back and backs off. */
    char *id = wh_push(h, "q1", "{\"type\":\"special\",\"max_retries\":0,"
                                "\"payload\":{\"x\":1}}");
    usleep(2000 * 1000);
    /* Waiting with no attempt spent: a task handed back has no task
     * fields, as one never claimed. */
    char *st = wh_job(h, "q1", id, "state");
    assert_string_equal(st, "pending");
    free(st);
    assert_null(wh_task(h, "q1", id, 0, "state"));
    assert_null(wh_task(h, "q1", id, 0, "attempt"));
    char *log = worker_log(h, 0);
    if (strstr(log, "no handler for job type \"special\" here") == NULL) {
        wh_dump_logs(h);
        fail_msg("worker A never met the task");
    }
    /* Backed off: a handful of hand-backs in two seconds, not a loop. */
    int released = count_of(log, "task released");
    free(log);
    assert_true(released >= 1);
    assert_true(released <= 20);

    wh_worker_start(h, args_b);
    free(wh_wait_state(h, "q1", id, "completed", 15000));
    char *worker = wh_task(h, "q1", id, 0, "worker");
    assert_string_equal(worker, b);
    free(worker);
    /* max_retries 0, yet completed: no attempt was spent on A. */
    char *attempt = wh_task(h, "q1", id, 0, "attempt");
    assert_string_equal(attempt, "1");
    free(attempt);
    char *result = wh_task(h, "q1", id, 0, "result");
    assert_string_equal(result, "{\"x\":1}");
    free(result);
    free(id);
    free(a);
    free(b);
}

static void test_fails_after_the_configured_time(void **state)
{
    struct wh *h = *state;
    char *a = llmb_xasprintf("%s-a", h->prefix);
    const char *args[] = {"--queues", "q1", "--id", a, "--handler",
                          "noop=noop", "--no-handler-fail-after-s", "3",
                          NULL};

    wh_worker_start(h, args);
    wait_advertised(h, "q1", "noop");
    int64_t t0 = llmb_mono_ms();
    char *id = wh_push(h, "q1", "{\"type\":\"special\",\"max_retries\":5}");
    /* Not before the configured time. */
    usleep(2000 * 1000);
    char *st = wh_job(h, "q1", id, "state");
    assert_string_equal(st, "pending");
    free(st);
    assert_null(wh_task(h, "q1", id, 0, "state"));
    assert_null(wh_task(h, "q1", id, 0, "attempt"));
    free(wh_wait_state(h, "q1", id, "failed", 15000));
    int64_t took = llmb_mono_ms() - t0;
    assert_true(took >= 3000);
    char *err = wh_job(h, "q1", id, "error");
    char *want = llmb_xasprintf("no handler for job type \"special\" on "
                                "worker %s, and no live worker of queue q1 "
                                "has handled it for 3 s", a);
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
    free(want);
    free(err);
    /* Failed for good, not retried: the hand-backs spent no attempt. */
    char *attempt = wh_task(h, "q1", id, 0, "attempt");
    assert_string_equal(attempt, "1");
    free(attempt);
    char *retried = wh_job(h, "q1", id, "retried");
    assert_true(retried == NULL || strcmp(retried, "0") == 0);
    free(retried);
    free(id);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_runs_where_handled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fails_after_the_configured_time,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
