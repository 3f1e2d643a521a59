/*
 * llmb-worker when things break: kill -9 of a worker (its task runs again
 * elsewhere once the lease expires and llmb_reap takes it back), a lease
 * taken away while its task runs (the heartbeat stops the task), and Redis
 * trouble on a private redis-server of this test (never the fixture's):
 * not there when the worker starts, restarted while tasks run, and the
 * worker's connections killed with CLIENT KILL, and the function library
 * flushed. The worker carries on each time and the jobs complete.
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
#include <sys/wait.h>
#include <unistd.h>

#include <llmb/util.h>

#include "fixture.h"
#include "test_worker_harness.h"

static int teardown(void **state)
{
    wh_fini(*state);
    free(*state);
    return 0;
}

static int setup_fixture(void **state)
{
    struct wh *h = llmb_xcalloc(1, sizeof(*h));
    if (wh_init(h, "wf") != 0) {
        free(h);
        return -1;
    }
    *state = h;
    return 0;
}

static int setup_bare(void **state)
{
    struct wh *h = llmb_xcalloc(1, sizeof(*h));
    if (wh_init_bare(h, "wr") != 0) {
        free(h);
        return -1;
    }
    *state = h;
    return 0;
}

static void test_kill9(void **state)
{
    struct wh *h = *state;
    char *spec = llmb_xasprintf("*=exec:%s", wh_fixture("worker_task.sh"));
    const char *args[] = {"--queues", "q1", "--lease-ms", "1000",
                          "--handler", spec, NULL};
    pid_t w1 = wh_worker_start(h, args);
    char *doc = llmb_xasprintf("{\"type\":\"t\",\"payload\":{\"mode\":"
                               "\"once\",\"dir\":\"%s\"}}", h->dir);
    char *id = wh_push(h, "q1", doc);
    char *pidfile = llmb_xasprintf("%s/once.pid", h->dir);

    wh_wait_file(h, pidfile, 10000);
    FILE *f = fopen(pidfile, "r");
    long child = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &child), 1);
    fclose(f);

    kill(w1, SIGKILL);
    assert_int_equal(wh_worker_wait(h, w1, 5000), 128 + SIGKILL);
    kill(-(pid_t)child, SIGKILL); /* the orphan of the dead worker */

    /* No coordinator here: reap by hand once the lease has run out. */
    long long reaped = 0;
    for (int i = 0; i < 100 && reaped == 0; i++) {
        usleep(50000);
        reaped = wh_fcall_int(h, "llmb_reap", "q1", NULL);
    }
    assert_int_equal(reaped, 1);
    char *lost = wh_job(h, "q1", id, "lost");
    assert_string_equal(lost, "1");
    free(lost);

    wh_worker_start(h, args);
    free(wh_wait_state(h, "q1", id, "completed", 10000));
    char *res = wh_task(h, "q1", id, 0, "result");
    assert_string_equal(res, "{\"attempt\":2}");
    free(res);

    free(pidfile);
    free(id);
    free(doc);
    free(spec);
}

/* The lease is taken away while the task runs (as the coordinator does
 * for a worker it believes dead): the next heartbeat answers "lost", the
 * worker stops the task and drops its outcome, and the retry runs. */
static void test_lease_lost(void **state)
{
    struct wh *h = *state;
    char *spec = llmb_xasprintf("*=exec:%s", wh_fixture("worker_task.sh"));
    char *wid = llmb_xasprintf("%s-ll", h->prefix);
    const char *args[] = {"--queues", "q1", "--id", wid, "--handler", spec,
                          "--kill-grace-ms", "300", NULL};
    pid_t pid = wh_worker_start(h, args);
    char *doc = llmb_xasprintf("{\"type\":\"t\",\"payload\":{\"mode\":"
                               "\"once\",\"dir\":\"%s\"}}", h->dir);
    char *id = wh_push(h, "q1", doc);
    char *pidfile = llmb_xasprintf("%s/once.pid", h->dir);

    wh_wait_file(h, pidfile, 10000);
    FILE *f = fopen(pidfile, "r");
    long child = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &child), 1);
    fclose(f);

    char *base = llmb_xasprintf("%s:{q1}", h->prefix);
    redisReply *r = wh_cmd(h, "FCALL llmb_reap_worker 1 %s %s %s", base, wid,
                           "test");
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    /* The first attempt is stopped; the retry (attempt 2) completes. */
    for (int i = 0; i < 500 && kill((pid_t)child, 0) == 0; i++)
        usleep(10000);
    assert_int_not_equal(kill((pid_t)child, 0), 0);
    free(wh_wait_state(h, "q1", id, "completed", 10000));
    char *res = wh_task(h, "q1", id, 0, "result");
    assert_string_equal(res, "{\"attempt\":2}");
    free(res);

    kill(pid, SIGTERM);
    assert_int_equal(wh_worker_wait(h, pid, 10000), 0);
    free(base);
    free(pidfile);
    free(id);
    free(doc);
    free(wid);
    free(spec);
}

static void test_redis_trouble(void **state)
{
    struct wh *h = *state;
    int port = wh_redis_port(h);
    char *url = llmb_xasprintf("redis://127.0.0.1:%d", port);
    char *wid = llmb_xasprintf("%s-r", h->prefix);
    char *cname = llmb_xasprintf("llmb-worker:%s", wid);
    const char *args[] = {"--queues", "q1", "--capacity", "4", "--id", wid,
                          NULL};

    /* The worker starts while Redis is not there yet. */
    h->url = llmb_xstrdup(url);
    pid_t pid = wh_worker_start(h, args);
    usleep(700000);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
    wh_redis_start_port(h, port);
    wh_connect(h, url);
    char *a = wh_push(h, "q1", "{\"type\":\"sleep\",\"payload\":{\"ms\":50}}");
    free(wh_wait_state(h, "q1", a, "completed", 15000));

    /* Redis restarts while tasks run; they are reported when it is back. */
    char *b = wh_push(h, "q1", "{\"type\":\"sleep\",\"tasks\":4,"
                               "\"payload\":{\"ms\":1500}}");
    free(wh_wait_state(h, "q1", b, "running", 10000));
    redisFree(h->c);
    h->c = NULL;
    wh_redis_stop(h, port);
    usleep(500000);
    wh_redis_start_port(h, port);
    wh_connect(h, url);
    free(wh_wait_state(h, "q1", b, "completed", 15000));
    for (int i = 0; i < 4; i++) {
        char *res = wh_task(h, "q1", b, i, "result");
        assert_string_equal(res, "{\"slept_ms\":1500}");
        free(res);
    }

    /* Its connections are killed; it reconnects under the same name. */
    char *c = wh_push(h, "q1", "{\"type\":\"sleep\",\"tasks\":2,"
                               "\"payload\":{\"ms\":800}}");
    free(wh_wait_state(h, "q1", c, "running", 10000));
    /* Both of its connections are back from the restart first (the
     * reconnect waits a random backoff). */
    for (int i = 0; i < 200 && llmb_test_clients_named(h->c, cname) < 2; i++)
        usleep(50000);
    assert_true(llmb_test_clients_named(h->c, cname) >= 2);
    redisReply *r = wh_cmd(h, "CLIENT KILL TYPE normal SKIPME yes");
    assert_true(r->type == REDIS_REPLY_INTEGER && r->integer >= 2);
    freeReplyObject(r);
    free(wh_wait_state(h, "q1", c, "completed", 15000));
    char *d = wh_push(h, "q1", "{\"type\":\"noop\"}");
    free(wh_wait_state(h, "q1", d, "completed", 10000));
    assert_true(llmb_test_clients_named(h->c, cname) >= 2);

    /* The function library vanishes (FUNCTION FLUSH): the worker's next
     * FCALL answers "Function not found", and it loads the library again
     * and carries on. A wake-up token makes it claim at once. */
    redisReply *fr = wh_cmd(h, "FUNCTION FLUSH");
    freeReplyObject(fr);
    fr = wh_cmd(h, "LPUSH %s:{q1}:wake 1", h->prefix);
    freeReplyObject(fr);
    int loaded = 0;
    for (int i = 0; i < 200 && !loaded; i++) {
        usleep(25000);
        fr = wh_cmd(h, "FUNCTION LIST LIBRARYNAME llmb");
        loaded = fr->type == REDIS_REPLY_ARRAY && fr->elements == 1;
        freeReplyObject(fr);
    }
    if (!loaded)
        wh_dump_logs(h);
    assert_true(loaded);
    char *e = wh_push(h, "q1", "{\"type\":\"noop\"}");
    free(wh_wait_state(h, "q1", e, "completed", 10000));
    free(e);

    kill(pid, SIGTERM);
    assert_int_equal(wh_worker_wait(h, pid, 10000), 0);
    free(a);
    free(b);
    free(c);
    free(d);
    free(cname);
    free(wid);
    free(url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill9, setup_fixture, teardown),
        cmocka_unit_test_setup_teardown(test_lease_lost, setup_fixture,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_trouble, setup_bare,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
