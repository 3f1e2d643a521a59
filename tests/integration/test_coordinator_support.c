/*
 * Helpers of the coordinator's integration tests (see
 * test_coordinator_support.h): coordinator processes, simulated workers
 * that speak to Redis exactly as llmb-worker does, and an HTTP client.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <llmb/functions.h>
#include <llmb/keys.h>
#include <llmb/url.h>

#include "fixture.h"
#include "test_coordinator_support.h"

long long tc_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tc_close_fds(void)
{
    long max = sysconf(_SC_OPEN_MAX);

    for (long fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
        close((int)fd);
}

#define CHILDREN_MAX 64
static pid_t children[CHILDREN_MAX];

void tc_child_add(pid_t pid)
{
    for (int i = 0; i < CHILDREN_MAX; i++) {
        if (children[i] == 0) {
            children[i] = pid;
            return;
        }
    }
}

int tc_children_kill(void **state)
{
    (void)state;
    for (int i = 0; i < CHILDREN_MAX; i++) {
        if (children[i] != 0 && waitpid(children[i], NULL, WNOHANG) == 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
        }
        children[i] = 0;
    }
    return 0;
}

pid_t tc_coord_start(const char *url, const char *prefix, const char *id, ...)
{
    const char *bin = getenv("LLMB_COORDINATOR_BIN");
    const char *argv[64];
    int argc = 0;
    va_list ap;
    pid_t pid;

    if (bin == NULL || *bin == '\0')
        fail_msg("LLMB_COORDINATOR_BIN is not set (ctest sets it)");
    argv[argc++] = bin;
    argv[argc++] = "--redis";
    argv[argc++] = url;
    argv[argc++] = "--prefix";
    argv[argc++] = prefix;
    argv[argc++] = "--id";
    argv[argc++] = id;
    argv[argc++] = "--tick-ms";
    argv[argc++] = "50";
    va_start(ap, id);
    for (const char *a = va_arg(ap, const char *); a != NULL;
         a = va_arg(ap, const char *)) {
        assert_true(argc < 62);
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        tc_close_fds();
        execv(bin, (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    tc_child_add(pid);
    return pid;
}

int tc_coord_stop(pid_t pid, int sig)
{
    long long deadline = tc_now() + 10000;
    int status = 0;

    kill(pid, sig);
    while (tc_now() < deadline) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    fail_msg("coordinator %ld did not exit within 10 s of signal %d",
             (long)pid, sig);
    return status;
}

redisContext *tc_redis(const char *url)
{
    struct llmb_redis_url u;
    struct timeval tv = {5, 0};
    redisContext *c;
    char *err = NULL;

    if (llmb_redis_url_parse(url, &u, &err) != 0)
        fail_msg("%s", err);
    c = u.socket_path ? redisConnectUnixWithTimeout(u.socket_path, tv)
                      : redisConnectWithTimeout(u.host, u.port, tv);
    llmb_redis_url_fini(&u);
    if (c == NULL || c->err)
        fail_msg("cannot connect to %s: %s", url, c ? c->errstr : "?");
    redisSetTimeout(c, tv);
    if (llmb_functions_ensure(c, &err) != 0)
        fail_msg("loading the function library: %s", err);
    return c;
}

static redisReply *vcmd(redisContext *c, const char *fmt, va_list ap)
{
    redisReply *r = redisvCommand(c, fmt, ap);

    if (r == NULL)
        fail_msg("%s: %s", fmt, c->errstr);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("%s: %s", fmt, r->str);
    return r;
}

redisReply *tc_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = vcmd(c, fmt, ap);
    va_end(ap);
    return r;
}

long long tc_int(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    long long v = 0;

    va_start(ap, fmt);
    r = vcmd(c, fmt, ap);
    va_end(ap);
    if (r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    else if (r->type == REDIS_REPLY_NIL)
        v = 0;
    else
        fail_msg("%s: not an integer (type %d)", fmt, r->type);
    freeReplyObject(r);
    return v;
}

char *tc_str(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    char *s = NULL;

    va_start(ap, fmt);
    r = vcmd(c, fmt, ap);
    va_end(ap);
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        s = llmb_xstrndup(r->str, r->len);
    freeReplyObject(r);
    return s;
}

char *tc_job(redisContext *c, const char *prefix, const char *queue,
             const char *id, const char *field)
{
    redisReply *r = tc_cmd(c, "FCALL_RO llmb_job 1 %s:{%s} %s %s", prefix,
                           queue, id, field);
    char *s = NULL;

    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_STRING)
        s = llmb_xstrndup(r->element[0]->str, r->element[0]->len);
    freeReplyObject(r);
    return s;
}

static long long redis_time_ms(redisContext *c)
{
    redisReply *r = tc_cmd(c, "TIME");
    long long ms = atoll(r->element[0]->str) * 1000 +
                   atoll(r->element[1]->str) / 1000;
    freeReplyObject(r);
    return ms;
}

void tc_worker_heartbeat(struct tc_worker *w)
{
    long long now = redis_time_ms(w->c);
    char *hkey = llmb_xasprintf("%s:worker:%s", w->prefix, w->id);
    redisReply *r;

    r = tc_cmd(w->c,
               "HSET %s id %s host test pid %d queues %s tags %s capacity %d "
               "running %d completed 0 failed 0 version test started_ms %lld "
               "seen_ms %lld state %s",
               hkey, w->id, (int)getpid(), w->queue, "", w->capacity,
               w->running, now, now, w->running > 0 ? "busy" : "idle");
    freeReplyObject(r);
    r = tc_cmd(w->c, "ZADD %s:workers %lld %s", w->prefix, now, w->id);
    freeReplyObject(r);
    free(hkey);
}

struct tc_worker *tc_worker_new(const char *url, const char *prefix,
                                const char *id, const char *queue,
                                int capacity)
{
    struct tc_worker *w = llmb_xcalloc(1, sizeof(*w));
    redisReply *r;

    w->c = tc_redis(url);
    w->id = llmb_xstrdup(id);
    w->prefix = llmb_xstrdup(prefix);
    w->queue = llmb_xstrdup(queue);
    w->base = llmb_key_queue(prefix, queue);
    w->capacity = capacity;
    r = tc_cmd(w->c, "CLIENT SETNAME llmb-worker:%s", id);
    freeReplyObject(r);
    r = tc_cmd(w->c, "SADD %s:queues %s", prefix, queue);
    freeReplyObject(r);
    tc_worker_heartbeat(w);
    return w;
}

int tc_worker_claim(struct tc_worker *w, int n, long long lease_ms)
{
    redisReply *r = tc_cmd(w->c, "FCALL llmb_claim 1 %s %s %d %lld", w->base,
                           w->id, n, lease_ms);
    long long count;
    size_t i;

    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    /* {now, due, count, token, then per task: ref, type, payload, opts} */
    count = r->element[2]->integer;
    for (i = 0; i < (size_t)count; i++) {
        llmb_strlist_push(&w->refs, r->element[4 + 4 * i]->str);
        llmb_strlist_push(&w->tokens, r->element[3]->str);
    }
    freeReplyObject(r);
    w->running += (int)count;
    return (int)count;
}

void tc_worker_complete(struct tc_worker *w, size_t k, const char *result)
{
    redisReply *r;

    assert_true(k < w->refs.n);
    r = tc_cmd(w->c, "FCALL llmb_complete 1 %s %s %s %s %s", w->base, w->id,
               w->refs.v[k], w->tokens.v[k], result);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[0]->integer, 1);
    freeReplyObject(r);
    w->running--;
}

void tc_worker_free(struct tc_worker *w)
{
    if (w == NULL)
        return;
    redisFree(w->c);
    free(w->id);
    free(w->prefix);
    free(w->queue);
    free(w->base);
    llmb_strlist_clear(&w->refs);
    llmb_strlist_clear(&w->tokens);
    free(w);
}

char *tc_push(redisContext *c, const char *prefix, const char *queue,
              const char *doc)
{
    char *base = llmb_key_queue(prefix, queue);
    char *id = tc_str(c, "FCALL llmb_push 1 %s %s", base, doc);
    redisReply *r = tc_cmd(c, "SADD %s:queues %s", prefix, queue);

    freeReplyObject(r);
    free(base);
    assert_non_null(id);
    return id;
}

int tc_http_get(int port, const char *path, char **body)
{
    struct sockaddr_in sa;
    struct llmb_buf in;
    char buf[4096], *req, *sep;
    int fd, status = -1;
    ssize_t n;

    *body = NULL;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    req = llmb_xasprintf("GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path);
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        free(req);
        close(fd);
        return -1;
    }
    free(req);
    llmb_buf_init(&in);
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        llmb_buf_append(&in, buf, (size_t)n);
    close(fd);
    if (sscanf(in.data, "HTTP/1.1 %d", &status) != 1)
        status = -1;
    sep = strstr(in.data, "\r\n\r\n");
    if (sep != NULL)
        *body = llmb_xstrdup(sep + 4);
    llmb_buf_fini(&in);
    return status;
}

int tc_free_port(void)
{
    return llmb_test_free_port();
}
