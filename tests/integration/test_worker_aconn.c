/*
 * The async Redis connection the worker is built on (lib/aconn.c), driven
 * on a real libev loop against real redis-servers: setup and naming,
 * commands refused while not ready, reconnect after CLIENT KILL, NULL
 * replies when freed with commands in flight, the watchdog dropping a
 * connection whose server stopped answering (CLIENT PAUSE on a private
 * server), reloading a flushed function library and retrying the FCALL,
 * a server that only appears after the connection was made, AUTH with
 * an ACL user plus SELECT (and a wrong password), and --wait-replicas
 * sending one WAIT after the writes of a loop pass, none after reads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include <llmb/aconn.h>
#include <llmb/connect.h>
#include <llmb/err.h>
#include <llmb/keys.h>
#include <llmb/util.h>

#include "fixture.h"
#include "test_worker_harness.h"

/* What the callbacks saw. */
struct seen {
    int ready, lost;
    int replies, nulls;
    long long integer;
    char str[2048];
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
    if (r == NULL) {
        s->nulls++;
        return;
    }
    s->replies++;
    if (r->type == REDIS_REPLY_INTEGER)
        s->integer = r->integer;
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
        r->type == REDIS_REPLY_ERROR)
        snprintf(s->str, sizeof(s->str), "%s", r->str);
}

static void tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)t;
    (void)revents;
}

static struct llmb_aconn *connect_to(struct ev_loop *loop, const char *url,
                                     struct seen *s, bool functions,
                                     int64_t timeout_ms)
{
    struct llmb_aconn_opts o;
    char *err = NULL;

    memset(&o, 0, sizeof(o));
    o.url = url;
    o.name = "llmb-test-aconn";
    o.functions = functions;
    o.command_timeout_ms = timeout_ms;
    o.backoff_base_ms = 20;
    o.backoff_cap_ms = 200;
    o.on_ready = on_ready;
    o.on_lost = on_lost;
    o.priv = s;
    o.what = "test";
    struct llmb_aconn *ac = llmb_aconn_new(loop, &o, &err);
    if (ac == NULL)
        fail_msg("llmb_aconn_new: %s", err);
    return ac;
}

static int setup(void **state)
{
    struct wh *h = llmb_xcalloc(1, sizeof(*h));
    if (wh_init_bare(h, "wa") != 0) {
        free(h);
        return -1;
    }
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    llmb_write_ack.replicas = 0; /* even after a failed test */
    wh_fini(*state);
    free(*state);
    return 0;
}

static void test_aconn_basics(void **state)
{
    struct wh *h = *state;
    struct ev_loop *loop = ev_default_loop(0);
    struct seen s;
    int port = wh_redis_start(h);
    char *url = llmb_xasprintf("redis://127.0.0.1:%d", port);

    memset(&s, 0, sizeof(s));
    wh_connect(h, url);
    struct llmb_aconn *ac = connect_to(loop, url, &s, false, 2000);
    const char *get[] = {"CLIENT", "GETNAME"};
    /* Not ready yet: refused, the callback is never called. */
    assert_int_equal(llmb_aconn_command_argv(ac, on_reply, &s, 2, get, NULL),
                     LLMB_EIO);
    llmb_test_run_until(loop, &s.ready, 1, 5000);
    assert_true(llmb_aconn_ready(ac));
    assert_int_equal(llmb_aconn_command_argv(ac, on_reply, &s, 2, get, NULL),
                     0);
    llmb_test_run_until(loop, &s.replies, 1, 5000);
    assert_string_equal(s.str, "llmb-test-aconn");

    /* CLIENT KILL: lost, then ready again by itself. */
    redisReply *r = wh_cmd(h, "CLIENT KILL TYPE normal SKIPME yes");
    freeReplyObject(r);
    llmb_test_run_until(loop, &s.lost, 1, 5000);
    llmb_test_run_until(loop, &s.ready, 2, 5000);
    const char *incr[] = {"INCR", "aconn:n"};
    assert_int_equal(llmb_aconn_command_argv(ac, on_reply, &s, 2, incr, NULL),
                     0);
    llmb_test_run_until(loop, &s.replies, 2, 5000);
    assert_int_equal(s.integer, 1);

    /* Freed with a blocking command in flight: its callback gets NULL. */
    const char *blpop[] = {"BLPOP", "aconn:empty", "5"};
    assert_int_equal(llmb_aconn_block_argv(ac, 5000, on_reply, &s, 3, blpop,
                                           NULL), 0);
    assert_int_equal(llmb_aconn_pending(ac), 1);
    ev_run(loop, EVRUN_NOWAIT);
    llmb_aconn_free(ac);
    assert_int_equal(s.nulls, 1);
    assert_int_equal(s.lost, 1); /* on_lost is not called by free */
    free(url);
}

static void test_aconn_watchdog_and_functions(void **state)
{
    struct wh *h = *state;
    struct ev_loop *loop = ev_default_loop(0);
    struct seen s;
    int port = wh_redis_start(h);
    char *url = llmb_xasprintf("redis://127.0.0.1:%d", port);

    memset(&s, 0, sizeof(s));
    wh_connect(h, url);
    struct llmb_aconn *ac = connect_to(loop, url, &s, true, 300);
    llmb_test_run_until(loop, &s.ready, 1, 5000);

    /* The server stops answering: the command gets NULL once the
     * watchdog drops the connection, which comes back after the pause. */
    redisReply *r = wh_cmd(h, "CLIENT PAUSE 1200 ALL");
    freeReplyObject(r);
    const char *ping[] = {"PING"};
    int64_t t0 = llmb_mono_ms();
    assert_int_equal(llmb_aconn_command_argv(ac, on_reply, &s, 1, ping, NULL),
                     0);
    llmb_test_run_until(loop, &s.nulls, 1, 3000);
    int64_t waited = llmb_mono_ms() - t0;
    print_message("watchdog dropped the connection after %lld ms\n",
                  (long long)waited);
    assert_true(waited >= 250 && waited < 1200);
    assert_true(s.lost >= 1);
    llmb_test_run_until(loop, &s.ready, 2, 10000);

    /* The function library is flushed: FCALL reloads it and retries. */
    r = wh_cmd(h, "FUNCTION FLUSH");
    freeReplyObject(r);
    const char *fcall[] = {"FCALL", "llmb_version", "0"};
    s.integer = 0;
    int before = s.replies;
    assert_int_equal(llmb_aconn_command_argv(ac, on_reply, &s, 3, fcall, NULL),
                     0);
    llmb_test_run_until(loop, &s.replies, before + 1, 5000);
    assert_true(s.integer >= 1);
    llmb_aconn_free(ac);
    free(url);
}

static void test_aconn_server_appears_later(void **state)
{
    struct wh *h = *state;
    struct ev_loop *loop = ev_default_loop(0);
    struct seen s;
    int port = wh_redis_port(h);
    char *url = llmb_xasprintf("redis://127.0.0.1:%d", port);

    memset(&s, 0, sizeof(s));
    struct llmb_aconn *ac = connect_to(loop, url, &s, true, 2000);
    ev_run(loop, EVRUN_NOWAIT);
    assert_false(llmb_aconn_ready(ac));
    wh_redis_start_port(h, port);
    llmb_test_run_until(loop, &s.ready, 1, 5000);
    assert_int_equal(s.lost, 0);
    llmb_aconn_free(ac);

    /* AUTH with an ACL user and SELECT on every connect. */
    wh_connect(h, url);
    redisReply *r = wh_cmd(h, "ACL SETUSER aw on >s3cret ~* &* +@all");
    freeReplyObject(r);
    char *auth_url = llmb_xasprintf("redis://aw:s3cret@127.0.0.1:%d/2", port);
    memset(&s, 0, sizeof(s));
    ac = connect_to(loop, auth_url, &s, true, 2000);
    llmb_test_run_until(loop, &s.ready, 1, 5000);
    const char *info[] = {"CLIENT", "INFO"};
    assert_int_equal(llmb_aconn_command_argv(ac, on_reply, &s, 2, info, NULL),
                     0);
    llmb_test_run_until(loop, &s.replies, 1, 5000);
    assert_non_null(strstr(s.str, " db=2 "));
    assert_non_null(strstr(s.str, " user=aw "));
    assert_non_null(strstr(s.str, " name=llmb-test-aconn "));
    llmb_aconn_free(ac);

    /* A wrong password never becomes ready (and keeps retrying). */
    char *bad_url = llmb_xasprintf("redis://aw:wrong@127.0.0.1:%d", port);
    memset(&s, 0, sizeof(s));
    ac = connect_to(loop, bad_url, &s, true, 2000);
    llmb_test_run_for(loop, 500);
    assert_int_equal(s.ready, 0);
    assert_false(llmb_aconn_ready(ac));
    llmb_aconn_free(ac);
    free(bad_url);
    free(auth_url);

    /* A malformed URL is the only error of llmb_aconn_new(). */
    struct llmb_aconn_opts o;
    char *err = NULL;
    memset(&o, 0, sizeof(o));
    o.url = "http://nope";
    assert_null(llmb_aconn_new(loop, &o, &err));
    assert_non_null(err);
    free(err);
    free(url);
}

/* The calls of WAIT the server has run (INFO commandstats). */
static long long wait_calls(struct wh *h)
{
    redisReply *r = wh_cmd(h, "INFO commandstats");
    const char *p = strstr(r->str, "cmdstat_wait:calls=");
    long long n = p != NULL ? atoll(p + 19) : 0;

    freeReplyObject(r);
    return n;
}

/* With --wait-replicas, 20 writes sent in one loop pass are followed by
 * one WAIT, and read-only calls (llmb_stats) by none. The test server has
 * no replica: each WAIT answers 0 after its timeout, one unconfirmed. */
static void test_aconn_one_wait_per_pass(void **state)
{
    struct wh *h = *state;
    struct ev_loop *loop = ev_default_loop(0);
    struct seen s;
    int port = wh_redis_start(h);
    char *url = llmb_xasprintf("redis://127.0.0.1:%d", port);
    char *key = llmb_key_queue(h->prefix, "wq");
    const char *push[] = {"FCALL", "llmb_push", "1", key,
                          "{\"type\":\"noop\"}"};
    const char *stats[] = {"FCALL", "llmb_stats", "1", key};
    struct llmb_write_ack saved = llmb_write_ack;
    unsigned long long u0;
    ev_timer tick;
    int64_t end;

    memset(&s, 0, sizeof(s));
    wh_connect(h, url);
    struct llmb_aconn *ac = connect_to(loop, url, &s, true, 2000);
    llmb_test_run_until(loop, &s.ready, 1, 5000);
    llmb_write_ack.replicas = 1;
    llmb_write_ack.timeout_ms = 100;
    u0 = llmb_write_ack.unconfirmed;
    for (int i = 0; i < 20; i++)
        assert_int_equal(llmb_aconn_command_argv(ac, on_reply, &s, 5, push,
                                                 NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(llmb_aconn_command_argv(ac, on_reply, &s, 4, stats,
                                                 NULL), 0);
    llmb_test_run_until(loop, &s.replies, 23, 10000);
    /* Until the WAIT answered (one write short of its replica). */
    ev_timer_init(&tick, tick_cb, 0.01, 0.01);
    ev_timer_start(loop, &tick);
    end = llmb_mono_ms() + 10000;
    while (llmb_write_ack.unconfirmed == u0 && llmb_mono_ms() < end)
        ev_run(loop, EVRUN_ONCE);
    for (int i = 0; i < 20; i++)
        ev_run(loop, EVRUN_NOWAIT);
    ev_timer_stop(loop, &tick);
    assert_int_equal(llmb_write_ack.unconfirmed - u0, 1);
    assert_int_equal(wait_calls(h), 1);
    assert_int_equal(llmb_aconn_pending(ac), 0);

    /* Reads alone: no WAIT. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(llmb_aconn_command_argv(ac, on_reply, &s, 4, stats,
                                                 NULL), 0);
    llmb_test_run_until(loop, &s.replies, 26, 10000);
    assert_int_equal(llmb_aconn_pending(ac), 0);
    assert_int_equal(wait_calls(h), 1);
    assert_int_equal(s.nulls, 0);

    llmb_write_ack = saved;
    llmb_aconn_free(ac);
    free(key);
    free(url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_aconn_basics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aconn_watchdog_and_functions,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_aconn_one_wait_per_pass, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_aconn_server_appears_later,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
