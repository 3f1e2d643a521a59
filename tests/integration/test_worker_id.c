/*
 * One worker id, one running llmb-worker. A second worker started with the
 * id of a live one stops with exit status 78 and the owner's pid in its
 * log, also when both start at the same moment, and never looks like a
 * live worker; a worker whose claim on its id lapsed while it was stopped
 * (SIGSTOP) and was taken by another stops and gives its task back; a
 * clean stop frees the id at once, and a coordinator frees the id of a
 * worker it finds dead (kill -9) long before the claim would expire.
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

static int setup(void **state)
{
    struct wh *h = llmb_xcalloc(1, sizeof(*h));

    if (wh_init(h, "wid") != 0) {
        free(h);
        return -1;
    }
    *state = h;
    return 0;
}

/* The coordinator of test_dead_owner_freed, killed by the teardown if
 * the test fails before it stops it. */
static pid_t coordinator;

static int teardown(void **state)
{
    if (coordinator > 0) {
        kill(coordinator, SIGKILL);
        waitpid(coordinator, NULL, 0);
        coordinator = 0;
    }
    wh_fini(*state);
    free(*state);
    return 0;
}

static void sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

/* The log of worker pid, read whole (free it). The harness forgets the
 * pid of a worker it reaped, so the log is found by the tag its lines
 * carry: "worker[<pid>]". */
static char *worker_log(struct wh *h, pid_t pid)
{
    char *tag = llmb_xasprintf("worker[%ld]", (long)pid);
    char *text = NULL;
    size_t cap = 0;

    for (int i = 0; i < h->nworkers; i++) {
        FILE *f = fopen(h->logs[i], "r");
        if (f == NULL)
            continue;
        ssize_t n = getdelim(&text, &cap, '\0', f);
        fclose(f);
        if (n > 0 && strstr(text, tag) != NULL) {
            free(tag);
            return text;
        }
    }
    free(tag);
    free(text);
    return llmb_xstrdup("");
}

static void assert_log_has(struct wh *h, pid_t pid, const char *want)
{
    char *log = worker_log(h, pid);

    if (strstr(log, want) == NULL) {
        wh_dump_logs(h);
        fail_msg("the log of worker %ld lacks \"%s\"", (long)pid, want);
    }
    free(log);
}

/* The pid part of the owner key of id ("<host>:<pid>:<hex>"), or 0 when
 * there is no such key. */
static long owner_pid(struct wh *h, const char *id)
{
    redisReply *r = wh_cmd(h, "GET %s:worker:%s:owner", h->prefix, id);
    long pid = 0;

    if (r->type == REDIS_REPLY_STRING) {
        char *last = strrchr(r->str, ':');
        assert_non_null(last);
        *last = '\0';
        char *p = strrchr(r->str, ':');
        assert_non_null(p);
        pid = atol(p + 1);
    }
    freeReplyObject(r);
    return pid;
}

/* The pid in the registry record of id, or 0. */
static long record_pid(struct wh *h, const char *id)
{
    redisReply *r = wh_cmd(h, "HGET %s:worker:%s pid", h->prefix, id);
    long pid = r->type == REDIS_REPLY_STRING ? atol(r->str) : 0;

    freeReplyObject(r);
    return pid;
}

/* Waits until worker pid owns id and has registered. */
static void wait_owner(struct wh *h, const char *id, pid_t pid, int ms)
{
    int64_t end = llmb_mono_ms() + ms;

    while (owner_pid(h, id) != (long)pid || record_pid(h, id) != (long)pid) {
        if (llmb_mono_ms() > end) {
            wh_dump_logs(h);
            fail_msg("worker %ld did not claim id %s within %d ms", (long)pid,
                     id, ms);
        }
        sleep_ms(10);
    }
}

/* The connections of the worker with id id (it names them
 * llmb-worker:<id>). */
static int worker_conns(struct wh *h, const char *id)
{
    char *name = llmb_xasprintf("llmb-worker:%s", id);
    int n = llmb_test_clients_named(h->c, name);

    free(name);
    return n;
}

static bool alive(pid_t pid)
{
    return waitpid(pid, NULL, WNOHANG) == 0;
}

/* A second worker with the id of a running one stops at once, and the
 * first one goes on undisturbed; a clean stop frees the id. */
static void test_second_refused(void **state)
{
    struct wh *h = *state;
    char *wid = llmb_xasprintf("%s-a", h->prefix);
    const char *args[] = {"--queues", "q1", "--id", wid, NULL};
    pid_t a, b, c;

    a = wh_worker_start(h, args);
    wait_owner(h, wid, a, 10000);
    assert_int_equal(worker_conns(h, wid), 2);

    b = wh_worker_start(h, args);
    assert_int_equal(wh_worker_wait(h, b, 10000), 78);
    char *want = llmb_xasprintf("worker id \"%s\" is in use by another "
                                "running llmb-worker (pid %ld on ", wid,
                                (long)a);
    assert_log_has(h, b, want);
    assert_log_has(h, b, "start this one with another --id");
    free(want);

    /* The first one is untouched: its record, its connections, its work. */
    assert_true(alive(a));
    assert_int_equal(owner_pid(h, wid), (long)a);
    assert_int_equal(record_pid(h, wid), (long)a);
    assert_int_equal(worker_conns(h, wid), 2);
    char *job = wh_push(h, "q1", "{\"type\":\"noop\"}");
    free(wh_wait_state(h, "q1", job, "completed", 10000));
    free(job);

    /* A clean stop deletes the claim with the record: the id is free. */
    kill(a, SIGTERM);
    assert_int_equal(wh_worker_wait(h, a, 10000), 0);
    assert_int_equal(owner_pid(h, wid), 0);
    assert_int_equal(record_pid(h, wid), 0);
    c = wh_worker_start(h, args);
    wait_owner(h, wid, c, 10000);
    kill(c, SIGTERM);
    assert_int_equal(wh_worker_wait(h, c, 10000), 0);
    free(wid);
}

/* Two workers started at the same moment with one id: exactly one runs. */
static void test_simultaneous(void **state)
{
    struct wh *h = *state;

    for (int round = 0; round < 3; round++) {
        char *wid = llmb_xasprintf("%s-s%d", h->prefix, round);
        const char *args[] = {"--queues", "q1", "--id", wid, NULL};
        pid_t p[2], winner, loser;
        int st = -1;

        p[0] = wh_worker_start(h, args);
        p[1] = wh_worker_start(h, args);
        /* One of them stops with 78 ... */
        int64_t end = llmb_mono_ms() + 10000;
        loser = 0;
        while (loser == 0 && llmb_mono_ms() < end) {
            for (int i = 0; i < 2 && loser == 0; i++) {
                st = wh_worker_wait(h, p[i], 0);
                if (st >= 0)
                    loser = p[i];
            }
            sleep_ms(10);
        }
        if (loser == 0)
            wh_dump_logs(h);
        assert_true(loser != 0);
        assert_int_equal(st, 78);
        winner = loser == p[0] ? p[1] : p[0];
        /* ... and the other owns the id and keeps running. */
        wait_owner(h, wid, winner, 10000);
        sleep_ms(300);
        assert_true(alive(winner));
        assert_int_equal(worker_conns(h, wid), 2);
        kill(winner, SIGTERM);
        assert_int_equal(wh_worker_wait(h, winner, 10000), 0);
        free(wid);
    }
}

/* A worker stopped (SIGSTOP) past its claim's lifetime finds the id taken
 * by another when it resumes: it gives its task back and stops, leaving
 * the other's record alone; the task runs on the other. */
static void test_taken_over(void **state)
{
    struct wh *h = *state;
    char *wid = llmb_xasprintf("%s-t", h->prefix);
    /* --heartbeat-ms 200 (harness): the claim lives 1 s. */
    const char *args[] = {"--queues", "q1", "--id", wid, "--capacity", "1",
                          NULL};
    pid_t a, b;

    a = wh_worker_start(h, args);
    wait_owner(h, wid, a, 10000);
    char *job = wh_push(h, "q1", "{\"type\":\"sleep\",\"payload\":"
                                 "{\"ms\":3000}}");
    free(wh_wait_state(h, "q1", job, "running", 10000));

    kill(a, SIGSTOP);
    int64_t end = llmb_mono_ms() + 5000;
    while (owner_pid(h, wid) != 0 && llmb_mono_ms() < end)
        sleep_ms(50);
    assert_int_equal(owner_pid(h, wid), 0);
    b = wh_worker_start(h, args);
    wait_owner(h, wid, b, 10000);

    kill(a, SIGCONT);
    assert_int_equal(wh_worker_wait(h, a, 10000), 78);
    char *want = llmb_xasprintf("worker id \"%s\" was taken over by another "
                                "llmb-worker (pid %ld on ", wid, (long)b);
    assert_log_has(h, a, want);
    free(want);
    assert_int_equal(owner_pid(h, wid), (long)b);
    /* B's next heartbeat rewrites anything A may have written meanwhile. */
    sleep_ms(500);
    assert_int_equal(record_pid(h, wid), (long)b);

    /* A released its task (no lease to wait for): it completes on B. */
    assert_log_has(h, a, "releasing tasks n=1");
    free(wh_wait_state(h, "q1", job, "completed", 15000));
    char *worker = wh_task(h, "q1", job, 0, "worker");
    assert_string_equal(worker, wid);
    free(worker);
    kill(b, SIGTERM);
    assert_int_equal(wh_worker_wait(h, b, 10000), 0);
    free(job);
    free(wid);
}

/* Starts llmb-coordinator on h's Redis and prefix; its log goes to
 * h->dir/coordinator.log. */
static pid_t coordinator_start(struct wh *h)
{
    char *log = llmb_xasprintf("%s/coordinator.log", h->dir);
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(log, "w", stderr);
        (void)f;
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        execl(getenv("LLMB_COORDINATOR_BIN"), "llmb-coordinator", "--redis",
              h->url, "--prefix", h->prefix, "--tick-ms", "50", (char *)NULL);
        _exit(127);
    }
    free(log);
    return pid;
}

/* kill -9 of a worker whose claim lives 15 s: a coordinator finds it dead
 * in about 3 s and frees the id; until then a restart is refused. */
static void test_dead_owner_freed(void **state)
{
    struct wh *h = *state;
    char *wid = llmb_xasprintf("%s-k", h->prefix);
    const char *args[] = {"--queues", "q1", "--id", wid, "--heartbeat-ms",
                          "5000", NULL};
    pid_t co, a, b, c;
    int64_t t0;

    co = coordinator = coordinator_start(h);
    a = wh_worker_start(h, args);
    wait_owner(h, wid, a, 10000);
    sleep_ms(700); /* the coordinator has seen it connected */

    kill(a, SIGKILL);
    assert_int_equal(wh_worker_wait(h, a, 5000), 128 + SIGKILL);
    t0 = llmb_mono_ms();
    b = wh_worker_start(h, args);
    assert_int_equal(wh_worker_wait(h, b, 10000), 78);

    while (owner_pid(h, wid) != 0 && llmb_mono_ms() - t0 < 8000)
        sleep_ms(20);
    assert_int_equal(owner_pid(h, wid), 0);
    fprintf(stderr, "claim of the dead worker freed after %lld ms\n",
            (long long)(llmb_mono_ms() - t0));
    assert_true(llmb_mono_ms() - t0 < 6000);
    c = wh_worker_start(h, args);
    wait_owner(h, wid, c, 10000);
    kill(c, SIGTERM);
    assert_int_equal(wh_worker_wait(h, c, 10000), 0);

    kill(co, SIGTERM);
    int st = 0;
    assert_int_equal(waitpid(co, &st, 0), co);
    coordinator = 0;
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(wid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_second_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_simultaneous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_taken_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_owner_freed, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
