/*
 * The helpers of the llmb-worker integration tests (test_worker_harness.h).
 * Workers are started with fork and execv, their stderr goes to a log
 * file in the test's temp dir, printed when a wait times out.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <llmb/functions.h>
#include <llmb/util.h>

#include "fixture.h"
#include "test_worker_harness.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int wh_init_bare(struct wh *h, const char *name)
{
    char tmpl[] = "/tmp/llmb-wt-XXXXXX";

    memset(h, 0, sizeof(*h));
    if (getenv("LLMB_WORKER_BIN") == NULL) {
        fprintf(stderr, "LLMB_WORKER_BIN is not set\n");
        return -1;
    }
    if (mkdtemp(tmpl) == NULL)
        return -1;
    h->dir = llmb_xstrdup(tmpl);
    h->prefix = llmb_test_prefix(name);
    return 0;
}

void wh_connect(struct wh *h, const char *url)
{
    char *err = NULL;
    int port = 0;
    char host[64] = "";

    free(h->url);
    h->url = llmb_xstrdup(url);
    if (h->c != NULL)
        redisFree(h->c);
    if (sscanf(url, "redis://%63[^:]:%d", host, &port) != 2)
        fail_msg("cannot read host and port of %s", url);
    for (int i = 0; i < 100; i++) {
        h->c = redisConnect(host, port);
        if (h->c != NULL && h->c->err == 0)
            break;
        if (h->c != NULL)
            redisFree(h->c);
        h->c = NULL;
        sleep_ms(50);
    }
    if (h->c == NULL)
        fail_msg("cannot connect to %s", url);
    if (llmb_functions_ensure(h->c, &err) != 0)
        fail_msg("cannot load the functions: %s", err);
}

int wh_init(struct wh *h, const char *name)
{
    const char *url = llmb_test_redis_url();

    if (url == NULL || wh_init_bare(h, name) != 0)
        return -1;
    wh_connect(h, url);
    return 0;
}

void wh_fini(struct wh *h)
{
    for (int i = 0; i < h->nworkers; i++) {
        if (h->workers[i] > 0) {
            kill(h->workers[i], SIGKILL);
            waitpid(h->workers[i], NULL, 0);
        }
        free(h->logs[i]);
    }
    if (h->c != NULL) {
        llmb_test_redis_del_prefix(h->c, h->prefix);
        redisFree(h->c);
    }
    for (int i = 0; i < h->nports; i++) {
        char *cmd = llmb_xasprintf("redis-cli -p %d SHUTDOWN NOSAVE "
                                   ">/dev/null 2>&1", h->ports[i]);
        if (system(cmd) != 0)
            fprintf(stderr, "(redis on port %d was already down)\n",
                    h->ports[i]);
        free(cmd);
    }
    if (h->dir != NULL) {
        char *cmd = llmb_xasprintf("rm -rf '%s'", h->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", h->dir);
        free(cmd);
    }
    free(h->dir);
    free(h->prefix);
    free(h->url);
    memset(h, 0, sizeof(*h));
}

pid_t wh_worker_start(struct wh *h, const char *const *args)
{
    const char *argv[64];
    int k = 0;
    char *log = llmb_xasprintf("%s/worker-%d.log", h->dir, h->nworkers);

    assert_true(h->nworkers < 8);
    argv[k++] = getenv("LLMB_WORKER_BIN");
    argv[k++] = "--redis";
    argv[k++] = h->url;
    argv[k++] = "--prefix";
    argv[k++] = h->prefix;
    argv[k++] = "--heartbeat-ms";
    argv[k++] = "200";
    argv[k++] = "--log-level";
    argv[k++] = "debug";
    for (int i = 0; args != NULL && args[i] != NULL && k < 62; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    h->workers[h->nworkers] = pid;
    h->logs[h->nworkers] = log;
    h->nworkers++;
    return pid;
}

int wh_worker_wait(struct wh *h, pid_t pid, int timeout_ms)
{
    int st = 0;

    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            for (int i = 0; i < h->nworkers; i++)
                if (h->workers[i] == pid)
                    h->workers[i] = 0;
            if (WIFEXITED(st))
                return WEXITSTATUS(st);
            return 128 + WTERMSIG(st);
        }
        sleep_ms(10);
    }
    return -1;
}

void wh_dump_logs(struct wh *h)
{
    for (int i = 0; i < h->nworkers; i++) {
        char *cmd = llmb_xasprintf("echo '--- %s'; tail -n 40 '%s' >&2",
                                   h->logs[i], h->logs[i]);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot show %s\n", h->logs[i]);
        free(cmd);
    }
}

redisReply *wh_cmd(struct wh *h, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(h->c, fmt, ap);
    va_end(ap);
    if (r == NULL)
        fail_msg("redis: %s", h->c->errstr);
    return r;
}

static char *base_key(struct wh *h, const char *queue)
{
    return llmb_xasprintf("%s:{%s}", h->prefix, queue);
}

char *wh_push(struct wh *h, const char *queue, const char *doc)
{
    char *base = base_key(h, queue);
    redisReply *r = wh_cmd(h, "FCALL llmb_push 1 %s %s", base, doc);
    char *id = NULL;

    if (r->type != REDIS_REPLY_STRING)
        fail_msg("push %s: %s", doc,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    id = llmb_xstrdup(r->str);
    freeReplyObject(r);
    free(base);
    return id;
}

char *wh_job(struct wh *h, const char *queue, const char *id,
             const char *field)
{
    redisReply *r = wh_cmd(h, "FCALL_RO llmb_job 1 %s:{%s} %s %s", h->prefix,
                           queue, id, field);
    char *v = r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
                      r->element[0]->type == REDIS_REPLY_STRING
                  ? llmb_xstrdup(r->element[0]->str)
                  : NULL;
    freeReplyObject(r);
    return v;
}

char *wh_task(struct wh *h, const char *queue, const char *id, int index,
              const char *field)
{
    char *f = llmb_xasprintf("%d:%s", index, field);
    char *v = wh_job(h, queue, id, f);
    free(f);
    return v;
}

long long wh_fcall_int(struct wh *h, const char *fn, const char *queue,
                       const char *arg)
{
    char *base = base_key(h, queue);
    redisReply *r = arg != NULL ?
        wh_cmd(h, "FCALL %s 1 %s %s", fn, base, arg) :
        wh_cmd(h, "FCALL %s 1 %s", fn, base);
    long long v = 0;

    if (r->type != REDIS_REPLY_INTEGER)
        fail_msg("%s: %s", fn, r->type == REDIS_REPLY_ERROR ? r->str :
                 "not an integer");
    v = r->integer;
    freeReplyObject(r);
    free(base);
    return v;
}

long long wh_stat(struct wh *h, const char *queue, const char *field)
{
    char *base = base_key(h, queue);
    redisReply *r = wh_cmd(h, "FCALL llmb_stats 1 %s", base);
    long long v = -1;

    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements;
         i += 2)
        if (strcmp(r->element[i]->str, field) == 0)
            v = r->element[i + 1]->integer;
    freeReplyObject(r);
    free(base);
    return v;
}

/* True when s is one of the |-separated words of set. */
static bool in_set(const char *s, const char *set)
{
    size_t n = strlen(s);
    for (const char *p = set; *p != '\0';) {
        size_t k = strcspn(p, "|");
        if (k == n && strncmp(p, s, n) == 0)
            return true;
        p += k;
        if (*p == '|')
            p++;
    }
    return false;
}

char *wh_wait_state(struct wh *h, const char *queue, const char *id,
                    const char *states, int timeout_ms)
{
    char *st = NULL;
    int64_t end = llmb_mono_ms() + timeout_ms;

    for (;;) {
        st = wh_job(h, queue, id, "state");
        if (st != NULL && in_set(st, states))
            return st;
        if (llmb_mono_ms() > end)
            break;
        free(st);
        sleep_ms(20);
    }
    wh_dump_logs(h);
    fail_msg("job %s is \"%s\" after %d ms, wanted %s", id,
             st != NULL ? st : "(none)", timeout_ms, states);
    return NULL;
}

void wh_wait_file(struct wh *h, const char *path, int timeout_ms)
{
    int64_t end = llmb_mono_ms() + timeout_ms;

    while (access(path, F_OK) != 0) {
        if (llmb_mono_ms() > end) {
            wh_dump_logs(h);
            fail_msg("%s did not appear within %d ms", path, timeout_ms);
        }
        sleep_ms(10);
    }
}

const char *wh_fixture(const char *name)
{
    static char path[4096];
    const char *dir = getenv("LLMB_FIXTURES");
    snprintf(path, sizeof(path), "%s/%s", dir != NULL ? dir : "tests/fixtures",
             name);
    return path;
}

void wh_redis_start_port(struct wh *h, int port)
{
    char *cmd = llmb_xasprintf(
        "mkdir -p '%s/redis-%d' && redis-server --port %d --bind 127.0.0.1 "
        "--dir '%s/redis-%d' --appendonly yes --appendfsync always "
        "--save '' --daemonize yes --pidfile '%s/redis-%d/pid' "
        "--logfile '%s/redis-%d/log'", h->dir, port, port, h->dir, port,
        h->dir, port, h->dir, port);
    if (system(cmd) != 0)
        fail_msg("cannot start redis-server on port %d", port);
    free(cmd);
    cmd = llmb_xasprintf("for i in $(seq 100); do redis-cli -p %d PING "
                         ">/dev/null 2>&1 && exit 0; sleep 0.05; done; "
                         "exit 1", port);
    if (system(cmd) != 0)
        fail_msg("redis-server on port %d does not answer", port);
    free(cmd);
}

int wh_redis_port(struct wh *h)
{
    int port = llmb_test_free_port();
    assert_true(h->nports < 4);
    h->ports[h->nports++] = port;
    return port;
}

int wh_redis_start(struct wh *h)
{
    int port = wh_redis_port(h);
    wh_redis_start_port(h, port);
    return port;
}

void wh_redis_stop(struct wh *h, int port)
{
    char *cmd = llmb_xasprintf(
        "redis-cli -p %d SHUTDOWN >/dev/null 2>&1; "
        "for i in $(seq 100); do redis-cli -p %d PING >/dev/null 2>&1 || "
        "exit 0; sleep 0.05; done; exit 1", port, port);
    (void)h;
    if (system(cmd) != 0)
        fail_msg("redis-server on port %d does not stop", port);
    free(cmd);
}

long long wh_cpu_ms(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long ut = 0, st = 0;
    FILE *f = NULL;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (f == NULL || fgets(buf, sizeof(buf), f) == NULL) {
        if (f != NULL)
            fclose(f);
        return -1;
    }
    fclose(f);
    const char *p = strrchr(buf, ')');
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &ut, &st) != 2)
        return -1;
    return (long long)((ut + st) * 1000ULL / (unsigned long long)sysconf(_SC_CLK_TCK));
}
