/*
 * Integration tests of llmb-coordinator's view of workers and of itself:
 * a worker whose connection closes gets its tasks back within about 3 s
 * (not after its lease); a connected but silent worker is reaped after
 * --dead-after-ms while a heartbeating one is left alone, and its record
 * goes after --worker-retention-s; /metrics is valid Prometheus text whose
 * numbers match Redis, /healthz answers, SIGTERM exits 0; and a Redis
 * that goes away and comes back is survived (this one runs its own
 * redis-server).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "fixture.h"
#include "test_coordinator_support.h"

static const char *url;

static int group_setup(void **state)
{
    (void)state;
    url = llmb_test_redis_url();
    return url == NULL ? -1 : 0;
}

/* Waits up to ms until `LLEN key` (members waiting at priority 0)
 * reaches want; returns the last count. */
static long long wait_llen(redisContext *c, const char *key, long long want,
                           long long ms)
{
    long long deadline = tc_now() + ms, n = -1;

    while (tc_now() < deadline) {
        n = tc_int(c, "LLEN %s", key);
        if (n == want)
            break;
        usleep(20000);
    }
    return n;
}

static double prom_value(const char *text, const char *name);

/* kill -9 of a worker = its connection closes: its tasks are pending
 * again long before their lease of a minute runs out (about 3 s: the
 * gone rule's 2 s and a liveness pass; how soon is bench's, not a
 * test's, so the bound here is half the lease); /metrics
 * counts them given back, and no lease taken back for running out. */
static void test_connection_closed(void **state)
{
    char *prefix = llmb_test_prefix("gone");
    char *pending = llmb_xasprintf("%s:{q}:pl", prefix);
    redisContext *c = tc_redis(url);
    struct tc_worker *w;
    long long t0, n;
    char *id, *st, *err, *body = NULL;
    char addr[64];
    int port = tc_free_port();
    pid_t co;

    (void)state;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    co = tc_coord_start(url, prefix, "gone-c1", "--metrics-addr", addr,
                        NULL);
    id = tc_push(c, prefix, "q", "{\"type\":\"t\",\"tasks\":5}");
    w = tc_worker_new(url, prefix, "gone-w1", "q", 5);
    assert_int_equal(tc_worker_claim(w, 5, 60000), 5);
    assert_int_equal(tc_int(c, "LLEN %s", pending), 0);
    usleep(700000); /* the coordinator has seen it connected */

    tc_worker_free(w);
    t0 = tc_now();
    n = wait_llen(c, pending, 5, 30000);
    assert_int_equal(n, 5);
    if (tc_now() - t0 > 30000)
        fail_msg("tasks came back after %lld ms", tc_now() - t0);
    fprintf(stderr, "tasks back %lld ms after the connection closed\n",
            tc_now() - t0);
    assert_int_equal(tc_int(c, "ZCARD %s:{q}:running", prefix), 0);
    /* no member runs (the one field left is '~') */
    assert_int_equal(tc_int(c, "HLEN %s:{q}:run", prefix), 1);
    st = tc_job(c, prefix, "q", id, "lost");
    assert_non_null(st);
    assert_string_equal(st, "5");
    free(st);
    st = tc_str(c, "HGET %s:worker:gone-w1 state", prefix);
    assert_non_null(st);
    assert_string_equal(st, "dead");
    free(st);
    err = tc_job(c, prefix, "q", id, "0:error");
    assert_non_null(err);
    assert_non_null(strstr(err, "connection closed"));
    free(err);
    assert_int_equal(tc_http_get(port, "/metrics", &body), 200);
    assert_true(prom_value(body, "llmb_coordinator_tasks_given_back_total") ==
                5.0);
    assert_true(prom_value(body, "llmb_coordinator_workers_reaped_total") ==
                1.0);
    assert_true(prom_value(body, "llmb_coordinator_leases_reaped_total") ==
                0.0);
    free(body);
    assert_int_equal(tc_coord_stop(co, SIGTERM), 0);

    llmb_test_redis_del_prefix(c, prefix);
    redisFree(c);
    free(id);
    free(pending);
    free(prefix);
}

/* A dead worker's batches go back whole however large: three batches of
 * 300 tasks each, more than one llmb_reap_worker call takes (250 tasks,
 * a batch taken whole), all wait again at once, not when their lease of
 * a minute runs out. */
static void test_dead_worker_large_batches(void **state)
{
    char *prefix = llmb_test_prefix("gonebig");
    char *pending = llmb_xasprintf("%s:{q}:pl", prefix);
    redisContext *c = tc_redis(url);
    struct tc_worker *w;
    char *st;
    pid_t co;

    (void)state;
    co = tc_coord_start(url, prefix, "gonebig-c1", NULL);
    free(tc_push(c, prefix, "q", "{\"type\":\"t\",\"tasks\":900}"));
    w = tc_worker_new(url, prefix, "gonebig-w1", "q", 900);
    for (int i = 0; i < 3; i++)
        assert_int_equal(tc_worker_claim(w, 300, 60000), 300);
    assert_int_equal(tc_int(c, "ZCARD %s:{q}:running", prefix), 3);
    usleep(700000); /* the coordinator has seen it connected */

    tc_worker_free(w);
    assert_int_equal(wait_llen(c, pending, 900, 6000), 900);
    assert_int_equal(tc_int(c, "ZCARD %s:{q}:running", prefix), 0);
    assert_int_equal(tc_int(c, "HLEN %s:{q}:run", prefix), 1); /* '~' */
    assert_int_equal(tc_int(c, "EXISTS %s:{q}:wl:gonebig-w1", prefix), 0);
    st = tc_str(c, "HGET %s:worker:gonebig-w1 state", prefix);
    assert_non_null(st);
    assert_string_equal(st, "dead");
    free(st);
    assert_int_equal(tc_coord_stop(co, SIGTERM), 0);

    llmb_test_redis_del_prefix(c, prefix);
    redisFree(c);
    free(pending);
    free(prefix);
}

/* A worker that stays connected but stops heartbeating (SIGSTOP) is dead
 * after --dead-after-ms; one that heartbeats keeps its task. The dead
 * record is removed after --worker-retention-s. */
static void test_silent_worker(void **state)
{
    char *prefix = llmb_test_prefix("silent");
    char *pending = llmb_xasprintf("%s:{q}:pl", prefix);
    redisContext *c = tc_redis(url);
    struct tc_worker *quiet, *busy;
    long long t0, deadline;
    char *st;
    pid_t co;

    (void)state;
    free(tc_push(c, prefix, "q", "{\"type\":\"t\",\"tasks\":4}"));
    quiet = tc_worker_new(url, prefix, "silent-quiet", "q", 3);
    busy = tc_worker_new(url, prefix, "silent-busy", "q", 1);
    assert_int_equal(tc_worker_claim(quiet, 3, 60000), 3);
    assert_int_equal(tc_worker_claim(busy, 1, 60000), 1);
    t0 = tc_now();
    co = tc_coord_start(url, prefix, "silent-c1", "--dead-after-ms", "1500",
                        "--worker-retention-s", "0", NULL);

    deadline = tc_now() + 8000;
    while (tc_now() < deadline &&
           tc_int(c, "LLEN %s", pending) < 3) {
        tc_worker_heartbeat(busy);
        usleep(100000);
    }
    assert_int_equal(tc_int(c, "LLEN %s", pending), 3);
    assert_true(tc_now() - t0 >= 1400);
    fprintf(stderr, "silent worker reaped after %lld ms\n", tc_now() - t0);
    /* The heartbeating worker still holds its task. */
    assert_int_equal(tc_int(c, "ZCARD %s:{q}:running", prefix), 1);
    assert_int_equal(tc_int(c, "HLEN %s:{q}:run", prefix), 2); /* and '~' */
    st = tc_str(c, "HGET %s:worker:silent-busy state", prefix);
    assert_string_equal(st, "busy");
    free(st);

    /* Retention 0: the dead record goes at the next retention pass. */
    deadline = tc_now() + 8000;
    while (tc_now() < deadline) {
        tc_worker_heartbeat(busy);
        if (tc_int(c, "EXISTS %s:worker:silent-quiet", prefix) == 0)
            break;
        usleep(100000);
    }
    assert_int_equal(tc_int(c, "EXISTS %s:worker:silent-quiet", prefix), 0);
    assert_null(tc_str(c, "ZSCORE %s:workers silent-quiet", prefix));
    assert_non_null(st = tc_str(c, "ZSCORE %s:workers silent-busy", prefix));
    free(st);
    assert_int_equal(tc_coord_stop(co, SIGTERM), 0);

    tc_worker_free(quiet);
    tc_worker_free(busy);
    llmb_test_redis_del_prefix(c, prefix);
    redisFree(c);
    free(pending);
    free(prefix);
}

/* Value of the sample line `name` (exact match of name and labels). */
static double prom_value(const char *text, const char *name)
{
    size_t len = strlen(name);
    const char *p = text;

    while (p != NULL && *p != '\0') {
        if (strncmp(p, name, len) == 0 && p[len] == ' ')
            return atof(p + len + 1);
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    fail_msg("no sample %s in /metrics", name);
    return 0;
}

/* Checks every line against the text exposition format: HELP and TYPE
 * comments, then samples `name{label="value",...} number`, a TYPE before
 * the first sample of each family. */
static void check_prometheus(char *text)
{
    regex_t sample_re, help_re, type_re;
    char *save = NULL, *line;
    int lines = 0;

    assert_int_equal(regcomp(&sample_re,
                             "^[a-zA-Z_:][a-zA-Z0-9_:]*"
                             "(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\""
                             "(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\")*"
                             "\\})? -?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$",
                             REG_EXTENDED | REG_NOSUB), 0);
    assert_int_equal(regcomp(&help_re, "^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+$",
                             REG_EXTENDED | REG_NOSUB), 0);
    assert_int_equal(regcomp(&type_re,
                             "^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* "
                             "(counter|gauge|histogram|summary|untyped)$",
                             REG_EXTENDED | REG_NOSUB), 0);
    assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
    for (line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        lines++;
        if (strncmp(line, "# HELP ", 7) == 0) {
            if (regexec(&help_re, line, 0, NULL, 0) != 0)
                fail_msg("bad HELP line: %s", line);
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            if (regexec(&type_re, line, 0, NULL, 0) != 0)
                fail_msg("bad TYPE line: %s", line);
        } else if (regexec(&sample_re, line, 0, NULL, 0) != 0) {
            fail_msg("bad sample line: %s", line);
        }
    }
    assert_true(lines > 20);
    regfree(&sample_re);
    regfree(&help_re);
    regfree(&type_re);
}

/* /metrics, /healthz and the <prefix>:metrics hash agree with Redis. */
/* Field `name` of llmb_stats of queue q: tasks (a fan-out cursor stands
 * for all the tasks it has not handed out). */
static long long stat_of(redisContext *c, const char *prefix,
                         const char *name)
{
    redisReply *r = redisCommand(c, "FCALL llmb_stats 1 %s:{q}", prefix);
    long long v = -1;

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (strcmp(r->element[i]->str, name) == 0)
            v = r->element[i + 1]->integer;
    freeReplyObject(r);
    assert_true(v >= 0);
    return v;
}

static void test_metrics_and_health(void **state)
{
    char *prefix = llmb_test_prefix("metrics");
    redisContext *c = tc_redis(url);
    struct tc_worker *w;
    int port = tc_free_port(), status;
    char addr[64], *body = NULL, *copy, *v;
    long long deadline;
    json_t *h;
    pid_t co;

    (void)state;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    free(tc_push(c, prefix, "q", "{\"type\":\"t\",\"tasks\":3}"));
    free(tc_push(c, prefix, "q",
                 "{\"type\":\"t\",\"tasks\":2,\"delay_s\":600}"));
    w = tc_worker_new(url, prefix, "metrics-w1", "q", 4);
    assert_int_equal(tc_worker_claim(w, 2, 60000), 2);
    tc_worker_heartbeat(w);
    co = tc_coord_start(url, prefix, "metrics-c1", "--metrics-addr", addr,
                        "--metrics-ms", "200", NULL);

    /* Wait for a collection that saw the worker and the job states. */
    deadline = tc_now() + 8000;
    while (tc_now() < deadline) {
        tc_worker_heartbeat(w);
        if (tc_int(c, "HGET %s:metrics workers_active", prefix) == 1 &&
            tc_int(c, "HGET %s:metrics jobs_running", prefix) == 1)
            break;
        usleep(50000);
    }
    assert_int_equal(tc_int(c, "HGET %s:metrics workers_total", prefix), 1);
    assert_int_equal(tc_int(c, "HGET %s:metrics workers_active", prefix), 1);
    assert_int_equal(tc_int(c, "HGET %s:metrics workers_busy", prefix), 1);
    assert_int_equal(tc_int(c, "HGET %s:metrics workers_idle", prefix), 0);
    assert_int_equal(tc_int(c, "HGET %s:metrics capacity_total", prefix), 4);
    assert_int_equal(tc_int(c, "HGET %s:metrics capacity_used", prefix), 2);
    assert_int_equal(tc_int(c, "HGET %s:metrics capacity_available", prefix),
                     2);
    assert_int_equal(tc_int(c, "HGET %s:metrics jobs_running", prefix), 1);
    assert_int_equal(tc_int(c, "HGET %s:metrics jobs_pending", prefix), 1);
    assert_int_equal(tc_int(c, "HGET %s:metrics tasks_pending", prefix),
                     tc_int(c, "LLEN %s:{q}:pl", prefix));
    assert_int_equal(tc_int(c, "HGET %s:metrics tasks_delayed", prefix), 2);
    assert_int_equal(tc_int(c, "HGET %s:metrics queue:q:running", prefix), 2);
    v = tc_str(c, "HGET %s:metrics health", prefix);
    assert_string_equal(v, "healthy");
    free(v);

    /* One task completes: the cluster counter follows. */
    tc_worker_complete(w, 0, "{\"x\":1}");
    deadline = tc_now() + 5000;
    while (tc_now() < deadline) {
        tc_worker_heartbeat(w);
        if (tc_int(c, "HGET %s:metrics tasks_completed", prefix) == 1 &&
            tc_int(c, "HGET %s:metrics capacity_used", prefix) == 1)
            break;
        usleep(50000);
    }
    assert_int_equal(tc_int(c, "HGET %s:metrics tasks_completed", prefix), 1);
    assert_int_equal(tc_int(c, "HGET %s:metrics capacity_used", prefix), 1);

    status = tc_http_get(port, "/metrics", &body);
    assert_int_equal(status, 200);
    assert_non_null(body);
    assert_int_equal((long long)prom_value(body, "llmb_workers_active"), 1);
    assert_int_equal((long long)prom_value(body, "llmb_capacity_total"), 4);
    assert_int_equal((long long)prom_value(body, "llmb_capacity_used"), 1);
    assert_int_equal((long long)prom_value(body, "llmb_cluster_load_percent"),
                     25);
    assert_int_equal((long long)prom_value(body,
                                           "llmb_tasks{state=\"pending\"}"),
                     stat_of(c, prefix, "pending"));
    assert_int_equal((long long)prom_value(body,
                                           "llmb_tasks{state=\"running\"}"),
                     stat_of(c, prefix, "running"));
    assert_int_equal((long long)prom_value(body,
                                           "llmb_tasks{state=\"delayed\"}"),
                     stat_of(c, prefix, "delayed"));
    assert_int_equal((long long)prom_value(body,
                                           "llmb_queue_running{queue=\"q\"}"),
                     1);
    assert_int_equal((long long)prom_value(body, "llmb_tasks_completed_total"),
                     1);
    assert_int_equal((long long)prom_value(body, "llmb_redis_up"), 1);
    assert_int_equal(
        (long long)prom_value(body, "llmb_health{status=\"healthy\"}"), 1);
    copy = llmb_xstrdup(body);
    check_prometheus(copy);
    free(copy);
    free(body);

    status = tc_http_get(port, "/healthz", &body);
    assert_int_equal(status, 200);
    h = json_loads(body, 0, NULL);
    assert_non_null(h);
    assert_string_equal(json_string_value(json_object_get(h, "status")),
                        "healthy");
    assert_true(json_is_true(json_object_get(h, "redis")));
    json_decref(h);
    free(body);

    status = tc_http_get(port, "/nope", &body);
    assert_int_equal(status, 404);
    free(body);

    /* The worker dies: health turns degraded with the reason. */
    tc_worker_free(w);
    deadline = tc_now() + 6000;
    while (tc_now() < deadline) {
        v = tc_str(c, "HGET %s:metrics health", prefix);
        if (v != NULL && strcmp(v, "degraded") == 0)
            break;
        free(v);
        v = NULL;
        usleep(50000);
    }
    assert_non_null(v);
    assert_string_equal(v, "degraded");
    free(v);
    status = tc_http_get(port, "/healthz", &body);
    assert_int_equal(status, 200);
    assert_non_null(strstr(body, "dead worker"));
    free(body);

    /* SIGTERM: a clean exit 0. */
    status = tc_coord_stop(co, SIGTERM);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    llmb_test_redis_del_prefix(c, prefix);
    redisFree(c);
    free(prefix);
}

/* Starts a private redis-server on port; returns its pid once it answers. */
static pid_t redis_start(int port, const char *dir)
{
    const char *bin = getenv("LLMB_REDIS_SERVER");
    char portarg[16];
    long long deadline = tc_now() + 5000;
    pid_t pid;

    if (bin == NULL || *bin == '\0')
        bin = "redis-server";
    snprintf(portarg, sizeof(portarg), "%d", port);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        tc_close_fds();
        execlp(bin, bin, "--port", portarg, "--bind", "127.0.0.1", "--save",
               "", "--appendonly", "no", "--dir", dir, "--logfile",
               "/dev/null", (char *)NULL);
        _exit(127);
    }
    tc_child_add(pid);
    while (tc_now() < deadline) {
        redisContext *c = redisConnect("127.0.0.1", port);
        if (c != NULL && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;
            if (r)
                freeReplyObject(r);
            redisFree(c);
            if (ok)
                return pid;
        } else if (c != NULL) {
            redisFree(c);
        }
        usleep(20000);
    }
    fail_msg("redis-server on port %d did not start", port);
    return -1;
}

static int healthz_status(int port, char **status_text)
{
    char *body = NULL;
    int st = tc_http_get(port, "/healthz", &body);
    json_t *h = body ? json_loads(body, 0, NULL) : NULL;

    *status_text = NULL;
    if (h != NULL) {
        *status_text =
            llmb_xstrdup(json_string_value(json_object_get(h, "status")));
        json_decref(h);
    }
    free(body);
    return st;
}

/* Redis goes away: the coordinator keeps running and serves /healthz as
 * unhealthy; Redis comes back (empty, without the function library): it
 * reconnects, reloads and goes on. */
static void test_redis_down_and_back(void **state)
{
    char dir[] = "/tmp/llmb-coord-redis-XXXXXX";
    int rport = tc_free_port(), mport = tc_free_port(), st, wst;
    char rurl[64], addr[64], *status_text = NULL, *id;
    long long deadline;
    redisContext *c;
    pid_t redis, co;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(rurl, sizeof(rurl), "redis://127.0.0.1:%d", rport);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", mport);
    redis = redis_start(rport, dir);
    co = tc_coord_start(rurl, "down", "down-c1", "--metrics-addr", addr,
                        "--redis-timeout-ms", "500", NULL);
    c = tc_redis(rurl);
    deadline = tc_now() + 5000;
    while (tc_now() < deadline && tc_int(c, "EXISTS down:metrics") == 0)
        usleep(20000);
    assert_int_equal(tc_int(c, "EXISTS down:metrics"), 1);
    redisFree(c);

    kill(redis, SIGKILL);
    waitpid(redis, &wst, 0);
    deadline = tc_now() + 5000;
    do {
        free(status_text);
        st = healthz_status(mport, &status_text);
        if (st == 503)
            break;
        usleep(50000);
    } while (tc_now() < deadline);
    assert_int_equal(st, 503);
    assert_string_equal(status_text, "unhealthy");
    free(status_text);
    status_text = NULL;
    usleep(1500000); /* a few failed reconnects */
    assert_int_equal(waitpid(co, &wst, WNOHANG), 0); /* still running */

    redis = redis_start(rport, dir);
    c = tc_redis(rurl);
    deadline = tc_now() + 10000;
    while (tc_now() < deadline && tc_int(c, "EXISTS down:metrics") == 0)
        usleep(50000);
    assert_int_equal(tc_int(c, "EXISTS down:metrics"), 1);
    st = healthz_status(mport, &status_text);
    assert_int_equal(st, 200);
    assert_string_not_equal(status_text, "unhealthy");
    free(status_text);

    /* And it does its work again: a finished job gets its aggregate. */
    {
        struct tc_worker *w = tc_worker_new(rurl, "down", "down-w1", "q", 1);
        char *agg = NULL;
        id = tc_push(c, "down", "q", "{\"type\":\"t\"}");
        assert_int_equal(tc_worker_claim(w, 1, 60000), 1);
        tc_worker_complete(w, 0, "{\"x\":2}");
        deadline = tc_now() + 5000;
        while (tc_now() < deadline &&
               (agg = tc_job(c, "down", "q", id, "aggregate")) == NULL)
            usleep(20000);
        assert_non_null(agg);
        free(agg);
        free(id);
        tc_worker_free(w);
    }

    assert_int_equal(tc_coord_stop(co, SIGTERM), 0);
    redisFree(c);
    kill(redis, SIGKILL);
    waitpid(redis, &wst, 0);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_connection_closed, tc_children_kill),
        cmocka_unit_test_teardown(test_dead_worker_large_batches,
                                  tc_children_kill),
        cmocka_unit_test_teardown(test_silent_worker, tc_children_kill),
        cmocka_unit_test_teardown(test_metrics_and_health, tc_children_kill),
        cmocka_unit_test_teardown(test_redis_down_and_back, tc_children_kill),
    };

    return cmocka_run_group_tests(tests, group_setup, NULL);
}
