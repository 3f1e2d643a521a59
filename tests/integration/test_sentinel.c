/*
 * Integration tests of the connection layer on a Sentinel-managed primary
 * (tests/support/redis-sentinel.sh: a primary, a replica, three
 * sentinels, started for this test in a temporary directory): the
 * blocking and the async connection find the primary through the
 * sentinels, find the new one after a failover (SENTINEL FAILOVER), and
 * report a name no sentinel knows or sentinels that do not answer; and
 * --wait-replicas (llmb_write_ack) turns a write short of its replicas
 * into a NOREPLICAS error on the blocking connection; an ACL user that
 * may not run ROLE connects.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include <llmb/aconn.h>
#include <llmb/conn.h>
#include <llmb/connect.h>
#include <llmb/err.h>
#include <llmb/keys.h>
#include <llmb/util.h>

#include "fixture.h"

static char *dir;      /* the deployment's directory */
static char *url;      /* redis+sentinel://.../llmbtest */
static char *script;   /* tests/support/redis-sentinel.sh */

/* Runs the support script with cmd and arg; returns its first output
 * line (malloc'd), or NULL when it failed. */
static char *support(const char *cmd, const char *arg)
{
    char *line = llmb_xasprintf("'%s' %s '%s' %s", script, cmd, dir,
                                arg != NULL ? arg : "");
    char buf[512] = "";
    FILE *p = popen(line, "r");
    int st;

    free(line);
    if (p == NULL)
        return NULL;
    if (fgets(buf, sizeof(buf), p) == NULL)
        buf[0] = '\0';
    while (fgetc(p) != EOF) {
    }
    st = pclose(p);
    if (st != 0)
        return NULL;
    buf[strcspn(buf, "\n")] = '\0';
    return llmb_xstrdup(buf);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static char *read_file(const char *name)
{
    char *path = llmb_xasprintf("%s/%s", dir, name);
    char buf[512] = "";
    FILE *f = fopen(path, "r");

    free(path);
    if (f == NULL)
        return NULL;
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    return llmb_xstrdup(buf);
}

static int group_setup(void **state)
{
    const char *src = getenv("LLMB_SOURCE_DIR");
    char tmpl[] = "/tmp/llmb-sentinel-XXXXXX";
    char *out = NULL;

    (void)state;
    if (src == NULL || mkdtemp(tmpl) == NULL)
        return -1;
    dir = llmb_xstrdup(tmpl);
    script = llmb_xasprintf("%s/tests/support/redis-sentinel.sh", src);
    out = support("start", NULL);
    if (out == NULL)
        return -1;
    free(out);
    url = read_file("sentinel.url");
    return url != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (script != NULL && dir != NULL)
        free(support("stop", NULL));
    free(url);
    free(script);
    free(dir);
    return 0;
}

/* The port of the server c is connected to, from ROLE's point of view:
 * its "tcp_port" in INFO server. */
static int port_of(struct llmb_conn *c)
{
    redisReply *r = llmb_conn_command(c, "INFO server");
    const char *p;
    int port = 0;

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    p = strstr(r->str, "tcp_port:");
    assert_non_null(p);
    port = atoi(p + 9);
    freeReplyObject(r);
    return port;
}

/* The first line redis-cli prints for cmd (a shell command line). */
static char *first_line(const char *cmd)
{
    char buf[256] = "";
    FILE *p = popen(cmd, "r");

    assert_non_null(p);
    if (fgets(buf, sizeof(buf), p) == NULL)
        buf[0] = '\0';
    while (fgetc(p) != EOF) {
    }
    pclose(p);
    buf[strcspn(buf, "\n")] = '\0';
    return llmb_xstrdup(buf);
}

/* Runs cmd every pause_ms until the first line of its output is want;
 * fails the test when the monotonic time end_ms passes first. */
static void wait_line(const char *cmd, const char *want, int64_t end_ms,
                      long pause_ms)
{
    char *out = first_line(cmd);

    while (strcmp(out, want) != 0 && llmb_mono_ms() <= end_ms) {
        free(out);
        sleep_ms(pause_ms);
        out = first_line(cmd);
    }
    assert_string_equal(out, want);
    free(out);
}

/* Fails over to the replica (SENTINEL FAILOVER at a sentinel, asked again
 * while a recent failover holds it back), waits until the sentinels name
 * the new primary and the old one has been turned into its replica;
 * returns the new primary's port. A failover the sentinels accepted may
 * still be given up (a promotion slower than failover-timeout, 4 s, on
 * a loaded machine): then it is asked for again, up to 4 times. */
static int failover(void)
{
    char *old = support("primary", NULL);
    char *sentinels = read_file("sentinels");
    char *cmd = NULL, *now = NULL, *wait_arg;
    int64_t end = llmb_mono_ms() + 120000;
    int port;

    assert_non_null(old);
    assert_non_null(sentinels);
    cmd = llmb_xasprintf("redis-cli -p %s SENTINEL FAILOVER llmbtest 2>&1",
                         sentinels);
    wait_arg = llmb_xasprintf("%s 20", old);
    for (int i = 0; i < 4 && now == NULL; i++) {
        wait_line(cmd, "OK", end, 500);
        now = support("promoted", wait_arg);
    }
    free(wait_arg);
    free(cmd);
    assert_non_null(now);
    port = atoi(now);
    /* Until the sentinels demote the old primary, it takes writes too. */
    cmd = llmb_xasprintf("redis-cli -p %s ROLE 2>&1", old);
    wait_line(cmd, "slave", end, 100);
    free(cmd);
    /* And in sync, or the next failover would promote it without the
     * writes made since. */
    cmd = llmb_xasprintf("redis-cli -p %s INFO replication | tr -d '\\r' | "
                         "grep -x master_link_status:up", old);
    wait_line(cmd, "master_link_status:up", end, 100);
    free(cmd);
    free(now);
    free(old);
    free(sentinels);
    return port;
}

static void test_blocking_follows_the_primary(void **state)
{
    struct llmb_conn *c = llmb_conn_new(url, "llmb-test-sentinel", 5000);
    char *primary = support("primary", NULL);
    char *err = NULL;
    redisReply *r;
    int port;
    (void)state;

    assert_int_equal(llmb_conn_connect(c, &err), 0);
    assert_null(err);
    assert_int_equal(port_of(c), atoi(primary));
    r = llmb_conn_command(c, "SET sentinel:k v1");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);

    port = failover();
    assert_int_not_equal(port, atoi(primary));
    /* The next commands go to the new primary, found again through the
     * sentinels; the write made before the failover is there. */
    r = llmb_conn_command(c, "SET sentinel:k2 v2");
    if (r == NULL) /* the old primary closed us: one more try connects */
        r = llmb_conn_command(c, "SET sentinel:k2 v2");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    assert_int_equal(port_of(c), port);
    r = llmb_conn_command(c, "GET sentinel:k");
    assert_non_null(r);
    assert_string_equal(r->str, "v1");
    freeReplyObject(r);
    llmb_conn_free(c);
    free(primary);
}

struct seen {
    int ready, lost, replies;
    long long integer;
};

static void on_ready(struct llmb_aconn *ac, void *priv)
{
    (void)ac;
    ((struct seen *)priv)->ready++;
}

static void on_lost(struct llmb_aconn *ac, void *priv)
{
    (void)ac;
    ((struct seen *)priv)->lost++;
}

static void on_reply(struct llmb_aconn *ac, const redisReply *r, void *priv)
{
    struct seen *s = priv;

    (void)ac;
    s->replies++;
    s->integer = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer
                                                             : -1;
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        print_message("error reply: %s\n", r->str);
    else if (r == NULL)
        print_message("no reply\n");
}

static void test_async_follows_the_primary(void **state)
{
    struct ev_loop *loop = ev_default_loop(0);
    struct llmb_aconn_opts o;
    struct llmb_aconn *ac;
    struct seen s;
    char *err = NULL;
    const char *incr[] = {"INCR", "sentinel:n"};
    int port;
    (void)state;

    memset(&s, 0, sizeof(s));
    memset(&o, 0, sizeof(o));
    o.url = url;
    o.name = "llmb-test-sentinel-async";
    o.functions = true;
    o.on_ready = on_ready;
    o.on_lost = on_lost;
    o.priv = &s;
    o.what = "test";
    ac = llmb_aconn_new(loop, &o, &err);
    assert_non_null(ac);
    llmb_test_run_until(loop, &s.ready, 1, 10000);
    assert_int_equal(llmb_aconn_command_argv(ac, on_reply, &s, 2, incr, NULL),
                     0);
    llmb_test_run_until(loop, &s.replies, 1, 5000);
    assert_true(s.integer >= 1);

    port = failover();
    /* Lost when the old primary is demoted, ready again on the new one. */
    llmb_test_run_until(loop, &s.lost, 1, 20000);
    llmb_test_run_until(loop, &s.ready, 2, 20000);
    assert_int_equal(llmb_aconn_command_argv(ac, on_reply, &s, 2, incr, NULL),
                     0);
    llmb_test_run_until(loop, &s.replies, 2, 5000);
    assert_true(s.integer >= 2);
    {
        /* The connection is on the new primary: its INCR is there. */
        char *cmd = llmb_xasprintf("redis-cli -p %d GET sentinel:n", port);
        FILE *p = popen(cmd, "r");
        char buf[64] = "";
        assert_non_null(p);
        assert_non_null(fgets(buf, sizeof(buf), p));
        pclose(p);
        assert_int_equal(atoll(buf), s.integer);
        free(cmd);
    }
    llmb_aconn_free(ac);
}

static void test_errors(void **state)
{
    char *sentinels = read_file("sentinels");
    char *u = llmb_xasprintf("redis+sentinel://127.0.0.1:%s/nosuch",
                             sentinels);
    int closed = llmb_test_free_port();
    char *down = llmb_xasprintf("redis+sentinel://127.0.0.1:%d/llmbtest",
                                closed);
    char *want = NULL, *err = NULL;
    struct llmb_conn *c = llmb_conn_new(u, NULL, 2000);
    (void)state;

    assert_int_equal(llmb_conn_connect(c, &err), LLMB_EREDIS);
    want = llmb_xasprintf("no sentinel named the primary \"nosuch\": "
                          "sentinel 127.0.0.1:%s knows no primary named "
                          "\"nosuch\"", sentinels);
    assert_string_equal(err, want);
    free(err);
    free(want);
    llmb_conn_free(c);

    c = llmb_conn_new(down, NULL, 2000);
    assert_int_equal(llmb_conn_connect(c, &err), LLMB_EIO);
    want = llmb_xasprintf("no sentinel named the primary \"llmbtest\": "
                          "cannot connect to sentinel 127.0.0.1:%d: "
                          "Connection refused", closed);
    assert_string_equal(err, want);
    free(err);
    free(want);
    llmb_conn_free(c);
    free(u);
    free(down);
    free(sentinels);
}

/* With the replica in sync, WAIT 1 confirms a write (llmb_pause);
 * asking for 2 (there is one) turns the write's reply into NOREPLICAS
 * after the timeout, and the write is made all the same. A function
 * that writes nothing is followed by no WAIT, called with FCALL or
 * FCALL_RO. */
static void test_wait_replicas(void **state)
{
    struct llmb_conn *c = llmb_conn_new(url, NULL, 5000);
    char *prefix = llmb_test_prefix("waitrep");
    char *base = llmb_key_queue(prefix, "q");
    const char *argv[] = {"FCALL", "llmb_resume", "1", base};
    const char *version[] = {"FCALL", "llmb_version", "0"};
    unsigned long long before = llmb_write_ack.unconfirmed;
    redisReply *r;
    (void)state;

    llmb_write_ack.replicas = 1;
    llmb_write_ack.timeout_ms = 5000;
    r = llmb_conn_command(c, "FCALL llmb_pause 1 %s", base);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_int_equal(llmb_write_ack.unconfirmed, before);

    llmb_write_ack.replicas = 2;
    llmb_write_ack.timeout_ms = 100;
    r = llmb_conn_command(c, "FCALL llmb_pause 1 %s", base);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_string_equal(r->str, "NOREPLICAS the write is on the primary, "
                                "but 1 of 2 replicas confirmed it within "
                                "100 ms (--wait-replicas)");
    freeReplyObject(r);
    /* Pipelined: the WAIT after each FCALL is read with it. */
    assert_int_equal(llmb_conn_append_argv(c, 4, argv, NULL), 0);
    assert_int_equal(llmb_conn_append_argv(c, 1, (const char *[]){"PING"},
                                           NULL), 0);
    r = llmb_conn_get_reply(c);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_true(strncmp(r->str, "NOREPLICAS ", 11) == 0);
    freeReplyObject(r);
    r = llmb_conn_get_reply(c);
    assert_non_null(r);
    assert_string_equal(r->str, "PONG");
    freeReplyObject(r);
    assert_int_equal(llmb_write_ack.unconfirmed, before + 2);
    /* The queue was resumed all the same. */
    r = llmb_conn_command(c, "EXISTS %s:paused", base);
    assert_non_null(r);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    /* Read-only functions: no WAIT, whether called as FCALL (formatted,
     * argv or pipelined) or FCALL_RO. */
    r = llmb_conn_command(c, "FCALL_RO llmb_version 0");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    r = llmb_conn_command(c, "FCALL llmb_version 0");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    r = llmb_conn_commandargv(c, 3, version, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    r = llmb_conn_command(c, "FCALL llmb_stats 1 %s", base);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    assert_int_equal(llmb_conn_append_argv(c, 3, version, NULL), 0);
    r = llmb_conn_get_reply(c);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    assert_int_equal(llmb_write_ack.unconfirmed, before + 2);
    llmb_write_ack.replicas = 0;
    llmb_test_redis_del_prefix(llmb_conn_ctx(c), prefix);
    llmb_conn_free(c);
    free(base);
    free(prefix);
}

/* An ACL user that may not run ROLE connects all the same: the check
 * that the sentinels named the primary is left out. */
static void test_user_without_role(void **state)
{
    struct llmb_conn *admin = llmb_conn_new(url, NULL, 5000);
    const char *rest = strstr(url, "://") + 3;
    char *user_url = llmb_xasprintf("redis+sentinel://llmbnorole:pw@%s",
                                    rest);
    struct llmb_conn *c = llmb_conn_new(user_url, NULL, 5000);
    char *err = NULL;
    redisReply *r;
    (void)state;

    r = llmb_conn_command(admin, "ACL SETUSER llmbnorole reset on >pw ~* "
                                 "&* +@all -role");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);

    assert_int_equal(llmb_conn_connect(c, &err), LLMB_OK);
    assert_null(err);
    r = llmb_conn_command(c, "ACL WHOAMI");
    assert_non_null(r);
    assert_string_equal(r->str, "llmbnorole");
    freeReplyObject(r);
    r = llmb_conn_command(c, "ROLE");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_true(strncmp(r->str, "NOPERM", 6) == 0);
    freeReplyObject(r);
    llmb_conn_free(c);

    r = llmb_conn_command(admin, "ACL DELUSER llmbnorole");
    freeReplyObject(r);
    llmb_conn_free(admin);
    free(user_url);
}

/* on_refused of the async connection: counts, keeps the last reason. */
struct refusals {
    int n;
    char why[512];
};

static void on_refused(struct llmb_aconn *ac, const char *why, void *priv)
{
    struct refusals *f = priv;

    (void)ac;
    f->n++;
    snprintf(f->why, sizeof(f->why), "%s", why);
}

/* Refused credentials are LLMB_EAUTH, with the server and the user named,
 * whether the primary the sentinels name refuses them or a sentinel
 * does, on the blocking connection and on the async one (on_refused). */
static void test_refused_credentials(void **state)
{
    const char *rest = strstr(url, "://") + 3;
    char *primary = llmb_xasprintf("redis+sentinel://llmbnobody:wrong@%s",
                                   rest);
    char *sentinel = llmb_xasprintf("%s%csentinel_password=wrong", url,
                                    strchr(url, '?') != NULL ? '&' : '?');
    const char *urls[] = {primary, sentinel};
    const char *says[] = {"refused the credentials of user \"llmbnobody\": "
                          "WRONGPASS",
                          "refused the credentials of user \"default\""};
    const char *who[] = {"redis 127.0.0.1:", "sentinel 127.0.0.1:"};
    (void)state;

    for (int i = 0; i < 2; i++) {
        struct llmb_conn *c = llmb_conn_new(urls[i], NULL, 5000);
        struct ev_loop *loop = ev_default_loop(0);
        struct llmb_aconn_opts o;
        struct llmb_aconn *ac;
        struct refusals f;
        char *err = NULL;

        assert_int_equal(llmb_conn_connect(c, &err), LLMB_EAUTH);
        print_message("blocking: %s\n", err);
        assert_non_null(strstr(err, says[i]));
        assert_non_null(strstr(err, who[i]));
        free(err);
        llmb_conn_free(c);

        memset(&f, 0, sizeof(f));
        memset(&o, 0, sizeof(o));
        o.url = urls[i];
        o.on_refused = on_refused;
        o.priv = &f;
        o.what = "test";
        ac = llmb_aconn_new(loop, &o, &err);
        assert_non_null(ac);
        llmb_test_run_until(loop, &f.n, 1, 10000);
        print_message("async: %s\n", f.why);
        assert_non_null(strstr(f.why, says[i]));
        assert_non_null(strstr(f.why, who[i]));
        assert_false(llmb_aconn_ready(ac));
        llmb_aconn_free(ac);
    }
    free(primary);
    free(sentinel);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_wait_replicas),
        cmocka_unit_test(test_user_without_role),
        cmocka_unit_test(test_refused_credentials),
        cmocka_unit_test(test_blocking_follows_the_primary),
        cmocka_unit_test(test_async_follows_the_primary),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
