/*
 * What an exec program leaves behind is killed when its task ends, by
 * every path: success, failure, timeout, cancel, worker shutdown, a
 * supervisor killed from outside, the worker itself killed. Real workers
 * run leak.sh, written into the test's temp dir: it starts (a) a
 * background child that ignores SIGTERM and (b) a grandchild in a session
 * of its own whose parent exits at once (setsid, double fork), also
 * ignoring SIGTERM, and writes their pids and its parent's (the task's
 * supervisor) to <dir>/<job>.bg, .gc and .sup. By its job type it then
 * prints {} ("leak_ok"), exits 3 ("leak_fail") or sleeps ("leak_wait").
 * The test waits a bounded time for each pid to be gone (kill(pid, 0)
 * fails with ESRCH, so it was reaped too: a zombie still has its pid).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <llmb/util.h>

#include "test_worker_harness.h"

/* How long a leftover may take to disappear: the kill grace is 300 ms;
 * cancels arrive with the 200 ms heartbeat. Generous for a loaded box. */
#define GONE_MS 8000

static const char leak_sh[] =
    "#!/bin/sh\n"
    "dir=$1\n"
    "cat >/dev/null\n"
    "put() {\n"
    "    echo \"$2\" > \"$dir/$LLMB_JOB_ID.$1.tmp\"\n"
    "    mv \"$dir/$LLMB_JOB_ID.$1.tmp\" \"$dir/$LLMB_JOB_ID.$1\"\n"
    "}\n"
    "( trap '' TERM; exec sleep 120 ) >/dev/null 2>&1 &\n"
    "put bg $!\n"
    "setsid -w sh -c 'trap \"\" TERM; sleep 120 & echo $! > \"$1\"' \\\n"
    "    sh \"$dir/$LLMB_JOB_ID.gc.tmp\" </dev/null >/dev/null 2>&1\n"
    "mv \"$dir/$LLMB_JOB_ID.gc.tmp\" \"$dir/$LLMB_JOB_ID.gc\"\n"
    "put sup $PPID\n"
    "case $LLMB_TYPE in\n"
    "leak_ok) echo '{}' ;;\n"
    "leak_fail) echo 'failed on purpose' >&2; exit 3 ;;\n"
    "*) sleep 60; echo '{}' ;;\n"
    "esac\n";

static int setup(void **state)
{
    struct wh *h = llmb_xcalloc(1, sizeof(*h));
    char *path = NULL;
    FILE *f = NULL;

    if (wh_init(h, "wl") != 0) {
        free(h);
        return -1;
    }
    path = llmb_xasprintf("%s/leak.sh", h->dir);
    f = fopen(path, "w");
    if (f == NULL || fputs(leak_sh, f) < 0 || fclose(f) != 0 ||
        chmod(path, 0755) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        free(path);
        return -1;
    }
    free(path);
    *state = h;
    return 0;
}

/* Kills whatever a failed test left running (every pid in <dir>/ *.bg,
 * .gc, .sup), then the workers. */
static int teardown(void **state)
{
    struct wh *h = *state;
    DIR *d = opendir(h->dir);
    struct dirent *e = NULL;

    while (d != NULL && (e = readdir(d)) != NULL) {
        const char *dot = strrchr(e->d_name, '.');
        if (dot == NULL || (strcmp(dot, ".bg") != 0 &&
                            strcmp(dot, ".gc") != 0 &&
                            strcmp(dot, ".sup") != 0))
            continue;
        char *path = llmb_xasprintf("%s/%s", h->dir, e->d_name);
        FILE *f = fopen(path, "r");
        long pid = 0;
        if (f != NULL && fscanf(f, "%ld", &pid) == 1 && pid > 1)
            kill((pid_t)pid, SIGKILL);
        if (f != NULL)
            fclose(f);
        free(path);
    }
    if (d != NULL)
        closedir(d);
    wh_fini(h);
    free(h);
    return 0;
}

static pid_t start(struct wh *h, const char *extra1, const char *extra2)
{
    char *spec = llmb_xasprintf("*=exec:%s/leak.sh %s", h->dir, h->dir);
    const char *args[] = {"--queues", "q1", "--capacity", "4",
                          "--handler", spec, "--kill-grace-ms", "300",
                          extra1, extra2, NULL};
    pid_t pid = wh_worker_start(h, args);
    free(spec);
    return pid;
}

static char *push_type(struct wh *h, const char *type, const char *extra)
{
    char *doc = llmb_xasprintf("{\"type\":\"%s\",\"max_retries\":0%s%s}",
                               type, extra != NULL ? "," : "",
                               extra != NULL ? extra : "");
    char *id = wh_push(h, "q1", doc);
    free(doc);
    return id;
}

/* The pid the script wrote to <dir>/<id>.<what>. */
static pid_t read_pid(struct wh *h, const char *id, const char *what)
{
    char *path = llmb_xasprintf("%s/%s.%s", h->dir, id, what);
    FILE *f = NULL;
    long pid = 0;

    wh_wait_file(h, path, 10000);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    free(path);
    assert_true(pid > 1);
    return (pid_t)pid;
}

/* The leftovers of one task. */
struct leak {
    pid_t bg, gc, sup;
};

static struct leak read_leak(struct wh *h, const char *id)
{
    struct leak l;

    l.bg = read_pid(h, id, "bg");
    l.gc = read_pid(h, id, "gc");
    l.sup = read_pid(h, id, "sup");
    /* The grandchild really left the program's session. */
    assert_true(getsid(l.gc) > 0);
    assert_true(getsid(l.gc) != getsid(l.bg));
    return l;
}

/* Waits until pid no longer exists, neither running nor as a zombie;
 * reaps it when it is this process's child. */
static void wait_gone(struct wh *h, pid_t pid, const char *what)
{
    for (int waited = 0; waited < GONE_MS; waited += 10) {
        waitpid(pid, NULL, WNOHANG);
        if (kill(pid, 0) != 0 && errno == ESRCH)
            return;
        usleep(10000);
    }
    wh_dump_logs(h);
    fail_msg("%s (pid %ld) still exists %d ms after its task ended", what,
             (long)pid, GONE_MS);
}

static void wait_leak_gone(struct wh *h, const struct leak *l)
{
    wait_gone(h, l->bg, "the background child ignoring SIGTERM");
    wait_gone(h, l->gc, "the setsid'd grandchild ignoring SIGTERM");
}

/* Fails when a child of pid is a zombie. */
static void assert_no_zombie_children(pid_t parent)
{
    DIR *d = opendir("/proc");
    struct dirent *e = NULL;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[512];
        FILE *f = NULL;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        f = fopen(path, "r");
        if (f == NULL)
            continue;
        char *got = fgets(buf, sizeof(buf), f);
        fclose(f);
        char *p = got != NULL ? strrchr(buf, ')') : NULL;
        char state = 0;
        long ppid = 0;
        if (p != NULL && sscanf(p + 1, " %c %ld", &state, &ppid) == 2 &&
            ppid == (long)parent && state == 'Z')
            fail_msg("process %s, a child of %ld, is a zombie", e->d_name,
                     (long)parent);
    }
    closedir(d);
}

static void assert_error(struct wh *h, const char *id, const char *part)
{
    char *e = wh_task(h, "q1", id, 0, "error");
    if (e == NULL || strstr(e, part) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"",
                 e != NULL ? e : "(null)", part);
    free(e);
}

static void stop_worker(struct wh *h, pid_t pid)
{
    kill(pid, SIGTERM);
    int st = wh_worker_wait(h, pid, 10000);
    if (st != 0)
        wh_dump_logs(h);
    assert_int_equal(st, 0);
}

/* The program exits (0 with a result, or 3): its leftovers go, and the
 * outcome is the program's. */
static void test_leftovers_program_exits(void **state)
{
    struct wh *h = *state;
    pid_t pid = start(h, NULL, NULL);
    char *ok = push_type(h, "leak_ok", NULL);
    char *bad = push_type(h, "leak_fail", NULL);
    struct leak lok = read_leak(h, ok), lbad = read_leak(h, bad);

    free(wh_wait_state(h, "q1", ok, "completed", 10000));
    free(wh_wait_state(h, "q1", bad, "failed", 10000));
    wait_leak_gone(h, &lok);
    wait_leak_gone(h, &lbad);
    assert_true(lok.sup != pid); /* each task has a supervisor */
    wait_gone(h, lok.sup, "the supervisor");
    char *res = wh_task(h, "q1", ok, 0, "result");
    assert_string_equal(res, "{}");
    free(res);
    assert_error(h, bad, "exited with status 3: failed on purpose");
    assert_no_zombie_children(pid);

    stop_worker(h, pid);
    free(ok);
    free(bad);
}

static void test_leftovers_timeout(void **state)
{
    struct wh *h = *state;
    pid_t pid = start(h, NULL, NULL);
    char *id = push_type(h, "leak_wait", "\"timeout_s\":0.5");
    struct leak l = read_leak(h, id);

    free(wh_wait_state(h, "q1", id, "failed", 10000));
    assert_error(h, id, "timed out after 0.5 s");
    wait_leak_gone(h, &l);
    assert_no_zombie_children(pid);
    stop_worker(h, pid);
    free(id);
}

static void test_leftovers_cancel(void **state)
{
    struct wh *h = *state;
    pid_t pid = start(h, NULL, NULL);
    char *id = push_type(h, "leak_wait", NULL);
    struct leak l = read_leak(h, id);

    assert_int_equal(wh_fcall_int(h, "llmb_cancel", "q1", id), 0);
    free(wh_wait_state(h, "q1", id, "cancelled", 5000));
    wait_leak_gone(h, &l);
    wait_gone(h, l.sup, "the supervisor");
    assert_no_zombie_children(pid);
    assert_int_equal(wh_stat(h, "q1", "running"), 0);
    stop_worker(h, pid);
    free(id);
}

/* SIGTERM to the worker: the task is released and its tree killed before
 * the worker exits 0. */
static void test_leftovers_shutdown(void **state)
{
    struct wh *h = *state;
    pid_t pid = start(h, "--grace", "1");
    char *id = push_type(h, "leak_wait", NULL);
    struct leak l = read_leak(h, id);

    stop_worker(h, pid);
    wait_leak_gone(h, &l);
    wait_gone(h, l.sup, "the supervisor");
    assert_int_equal(wh_stat(h, "q1", "pending"), 1);
    free(id);
}

/* A supervisor killed from outside (SIGKILL, as the OOM killer would):
 * its tree reaches the worker, which kills it; the task fails. */
static void test_leftovers_supervisor_killed(void **state)
{
    struct wh *h = *state;
    pid_t pid = start(h, NULL, NULL);
    char *id = push_type(h, "leak_wait", NULL);
    struct leak l = read_leak(h, id);

    assert_true(l.sup != pid);
    kill(l.sup, SIGKILL);
    free(wh_wait_state(h, "q1", id, "failed", 10000));
    assert_error(h, id, "supervisor");
    wait_leak_gone(h, &l);
    assert_no_zombie_children(pid);
    stop_worker(h, pid);
    free(id);
}

/* The worker killed with SIGKILL: each supervisor is told by the kernel
 * (parent-death signal) and kills its tree. This process stands in for
 * init as the subreaper that reaps the orphaned supervisor. */
static void test_leftovers_worker_killed(void **state)
{
    struct wh *h = *state;
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    pid_t pid = start(h, NULL, NULL);
    char *id = push_type(h, "leak_wait", NULL);
    struct leak l = read_leak(h, id);

    assert_true(l.sup != pid);
    kill(pid, SIGKILL);
    assert_int_equal(wh_worker_wait(h, pid, 5000), 128 + SIGKILL);
    wait_leak_gone(h, &l);
    wait_gone(h, l.sup, "the supervisor");
    prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_leftovers_program_exits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_leftovers_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_leftovers_cancel, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_leftovers_shutdown, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_leftovers_supervisor_killed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_leftovers_worker_killed, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
