/*
 * llmb-worker's exec handler end to end: real workers running
 * tests/fixtures/worker_task.sh against the fixture redis-server. The task
 * document and environment the program sees; handlers that crash, flood
 * stdout, print garbage or exit with an error; the capacity limit (the
 * script records how many copies run at once); timeouts with SIGTERM and
 * SIGKILL; cancelling a running task; SIGTERM releasing what still runs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <llmb/util.h>

#include "test_worker_harness.h"

static int setup(void **state)
{
    struct wh *h = llmb_xcalloc(1, sizeof(*h));
    if (wh_init(h, "we") != 0) {
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

static char *exec_spec(void)
{
    return llmb_xasprintf("*=exec:%s", wh_fixture("worker_task.sh"));
}

static pid_t start(struct wh *h, const char *capacity, const char *extra1,
                   const char *extra2)
{
    char *spec = exec_spec();
    const char *args[] = {"--queues", "q1", "--capacity", capacity,
                          "--handler", spec, "--kill-grace-ms", "300",
                          extra1, extra2, NULL};
    pid_t pid = wh_worker_start(h, args);
    free(spec);
    return pid;
}

static char *push_mode(struct wh *h, const char *mode, const char *extra)
{
    char *doc = llmb_xasprintf("{\"type\":\"t\",\"max_retries\":0%s%s,"
                               "\"payload\":{\"mode\":\"%s\",\"dir\":\"%s\"}}",
                               extra != NULL ? "," : "",
                               extra != NULL ? extra : "", mode, h->dir);
    char *id = wh_push(h, "q1", doc);
    free(doc);
    return id;
}

static void assert_contains(const char *s, const char *part)
{
    if (s == NULL || strstr(s, part) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", s != NULL ? s : "(null)",
                 part);
}

static void assert_error(struct wh *h, const char *id, const char *part)
{
    char *e = wh_task(h, "q1", id, 0, "error");
    assert_contains(e, part);
    free(e);
}

/* Reads the pid the script wrote to <dir>/<name>. */
static pid_t read_pid(struct wh *h, const char *name)
{
    char *path = llmb_xasprintf("%s/%s", h->dir, name);
    FILE *f = NULL;
    long pid = 0;

    wh_wait_file(h, path, 10000);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    free(path);
    return (pid_t)pid;
}

static void rm_file(struct wh *h, const char *name)
{
    char *path = llmb_xasprintf("%s/%s", h->dir, name);
    unlink(path);
    free(path);
}

static void wait_gone(struct wh *h, pid_t pid, int timeout_ms)
{
    for (int i = 0; i < timeout_ms / 10; i++) {
        if (kill(pid, 0) != 0 && errno == ESRCH)
            return;
        usleep(10000);
    }
    wh_dump_logs(h);
    fail_msg("process %ld still runs after %d ms", (long)pid, timeout_ms);
}

static void test_exec_ok(void **state)
{
    struct wh *h = *state;
    pid_t pid = start(h, "2", NULL, NULL);
    char *id = push_mode(h, "ok", "\"tasks\":2");
    char *empty = push_mode(h, "empty", NULL);

    free(wh_wait_state(h, "q1", id, "completed", 10000));
    free(wh_wait_state(h, "q1", empty, "completed", 10000));
    char *res = wh_task(h, "q1", id, 1, "result");
    json_error_t jerr;
    json_t *j = json_loads(res != NULL ? res : "", 0, &jerr);
    if (j == NULL)
        fail_msg("result %s: %s", res, jerr.text);
    json_t *in = json_object_get(j, "input");
    json_t *env = json_object_get(j, "env");
    assert_string_equal(json_string_value(json_object_get(in, "job")), id);
    assert_int_equal(json_integer_value(json_object_get(in, "task")), 1);
    assert_int_equal(json_integer_value(json_object_get(in, "tasks")), 2);
    assert_int_equal(json_integer_value(json_object_get(in, "attempt")), 1);
    assert_string_equal(json_string_value(json_object_get(in, "type")), "t");
    assert_string_equal(json_string_value(json_object_get(in, "queue")), "q1");
    assert_true(json_integer_value(json_object_get(in, "deadline_ms")) > 0);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(in, "payload"), "mode")), "ok");
    assert_string_equal(json_string_value(json_object_get(env, "job")), id);
    assert_string_equal(json_string_value(json_object_get(env, "task")), "1");
    assert_string_equal(json_string_value(json_object_get(env, "attempt")),
                        "1");
    json_decref(j);
    free(res);
    res = wh_task(h, "q1", empty, 0, "result");
    assert_string_equal(res, "{}");
    free(res);

    kill(pid, SIGTERM);
    assert_int_equal(wh_worker_wait(h, pid, 10000), 0);
    free(id);
    free(empty);
}

static void test_exec_bad_handlers(void **state)
{
    struct wh *h = *state;
    pid_t pid = start(h, "4", NULL, NULL);
    char *crash = push_mode(h, "crash", NULL);
    char *flood = push_mode(h, "flood", NULL);
    char *garbage = push_mode(h, "garbage", NULL);
    char *array = push_mode(h, "array", NULL);
    char *status3 = push_mode(h, "status3", NULL);
    char *fatal = wh_push(h, "q1", "{\"type\":\"t\",\"max_retries\":3,"
                                   "\"payload\":{\"mode\":\"fatal\"}}");

    free(wh_wait_state(h, "q1", crash, "failed", 15000));
    free(wh_wait_state(h, "q1", flood, "failed", 15000));
    free(wh_wait_state(h, "q1", garbage, "failed", 15000));
    free(wh_wait_state(h, "q1", array, "failed", 15000));
    free(wh_wait_state(h, "q1", status3, "failed", 15000));
    free(wh_wait_state(h, "q1", fatal, "failed", 15000));
    assert_error(h, crash, "killed by signal 11 (SIGSEGV)");
    assert_error(h, crash, "about to crash");
    assert_error(h, flood, "stdout exceeded 1048576 bytes");
    assert_error(h, garbage, "stdout is not JSON");
    assert_error(h, garbage, "this is not json");
    assert_error(h, array, "stdout must be a JSON object");
    assert_error(h, status3, "exited with status 3: something went wrong");
    assert_error(h, fatal, "exited with status 100");
    char *att = wh_task(h, "q1", fatal, 0, "attempt");
    assert_string_equal(att, "1"); /* exit 100: no retry */
    free(att);

    /* The worker keeps serving. */
    char *ok = push_mode(h, "ok", NULL);
    free(wh_wait_state(h, "q1", ok, "completed", 10000));
    kill(pid, SIGTERM);
    assert_int_equal(wh_worker_wait(h, pid, 10000), 0);
    free(crash);
    free(flood);
    free(garbage);
    free(array);
    free(status3);
    free(fatal);
    free(ok);
}

static void test_exec_capacity(void **state)
{
    struct wh *h = *state;
    pid_t pid = start(h, "3", NULL, NULL);
    char *doc = llmb_xasprintf("{\"type\":\"t\",\"tasks\":10,\"payload\":"
                               "{\"mode\":\"conc\",\"dir\":\"%s\",\"ms\":300}}",
                               h->dir);
    char *id = wh_push(h, "q1", doc);

    free(wh_wait_state(h, "q1", id, "completed", 20000));
    char *path = llmb_xasprintf("%s/conc.log", h->dir);
    FILE *f = fopen(path, "r");
    int n = 0, max = 0, v = 0;
    assert_non_null(f);
    while (fscanf(f, "%d", &v) == 1) {
        n++;
        if (v > max)
            max = v;
    }
    fclose(f);
    print_message("10 tasks at capacity 3: at most %d at once\n", max);
    assert_int_equal(n, 10);
    assert_true(max <= 3);
    assert_true(max >= 2);
    kill(pid, SIGTERM);
    assert_int_equal(wh_worker_wait(h, pid, 10000), 0);
    free(path);
    free(id);
    free(doc);
}

static void test_exec_timeout(void **state)
{
    struct wh *h = *state;
    pid_t pid = start(h, "2", NULL, NULL);
    char *soft = push_mode(h, "sleep", "\"timeout_s\":0.5");
    pid_t child = read_pid(h, "0.pid");
    free(wh_wait_state(h, "q1", soft, "failed", 10000));
    assert_error(h, soft, "timed out after 0.5 s");
    char *t = wh_job(h, "q1", soft, "timeouts");
    assert_string_equal(t, "1");
    free(t);
    wait_gone(h, child, 3000);
    rm_file(h, "0.pid");

    /* One that ignores SIGTERM is killed after the kill grace. */
    int64_t t0 = llmb_mono_ms();
    char *hard = push_mode(h, "stubborn", "\"timeout_s\":0.3");
    child = read_pid(h, "0.pid");
    free(wh_wait_state(h, "q1", hard, "failed", 10000));
    wait_gone(h, child, 3000);
    assert_error(h, hard, "timed out after 0.3 s");
    print_message("stubborn task ended after %lld ms\n",
                  (long long)(llmb_mono_ms() - t0));

    kill(pid, SIGTERM);
    assert_int_equal(wh_worker_wait(h, pid, 10000), 0);
    free(soft);
    free(hard);
}

static void test_exec_cancel(void **state)
{
    struct wh *h = *state;
    pid_t pid = start(h, "2", NULL, NULL);
    char *id = push_mode(h, "sleep", NULL);
    pid_t child = read_pid(h, "0.pid");

    assert_int_equal(wh_fcall_int(h, "llmb_cancel", "q1", id), 0);
    wait_gone(h, child, 5000); /* at the next heartbeat (200 ms) */
    free(wh_wait_state(h, "q1", id, "cancelled", 5000));
    char *st = wh_task(h, "q1", id, 0, "state");
    assert_string_equal(st, "cancelled");
    free(st);
    assert_int_equal(wh_stat(h, "q1", "running"), 0);

    kill(pid, SIGTERM);
    assert_int_equal(wh_worker_wait(h, pid, 10000), 0);
    free(id);
}

/* SIGTERM with a task that outlives the grace: it is released (attempt
 * given back) and its process stopped; the worker exits 0. */
static void test_exec_sigterm_releases(void **state)
{
    struct wh *h = *state;
    pid_t pid = start(h, "2", "--grace", "1");
    char *id = push_mode(h, "stubborn", NULL);
    pid_t child = read_pid(h, "0.pid");
    int64_t t0 = llmb_mono_ms();

    kill(pid, SIGTERM);
    int st = wh_worker_wait(h, pid, 10000);
    if (st != 0)
        wh_dump_logs(h);
    assert_int_equal(st, 0);
    print_message("drained in %lld ms\n", (long long)(llmb_mono_ms() - t0));
    wait_gone(h, child, 3000);
    assert_int_equal(wh_stat(h, "q1", "pending"), 1);
    assert_int_equal(wh_stat(h, "q1", "running"), 0);
    /* The attempt given back: the view holds none, as before the first
     * claim (an attempt count of 0 is not stored). */
    char *att = wh_task(h, "q1", id, 0, "attempt");
    assert_null(att);
    att = wh_job(h, "q1", id, "state");
    assert_string_equal(att, "pending");
    free(att);

    /* Another worker picks it up. */
    rm_file(h, "0.pid");
    pid = start(h, "2", NULL, NULL);
    child = read_pid(h, "0.pid");
    att = wh_task(h, "q1", id, 0, "attempt");
    assert_string_equal(att, "1");
    free(att);
    /* A second signal releases at once. */
    kill(pid, SIGTERM);
    usleep(100000);
    kill(pid, SIGTERM);
    assert_int_equal(wh_worker_wait(h, pid, 5000), 0);
    wait_gone(h, child, 3000);
    assert_int_equal(wh_stat(h, "q1", "pending"), 1);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exec_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_bad_handlers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_exec_capacity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_sigterm_releases, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
