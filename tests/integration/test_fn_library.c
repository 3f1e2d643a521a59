/*
 * The function library as a whole against a real redis-server: llmb_stats
 * and the events stream, queue settings and arguments that are wrong,
 * reloading after FUNCTION FLUSH (which empties the whole server's
 * functions: this file runs alone), and the client-side job builder
 * agreeing with the server on what is valid.
 *
 * One of the tests of the function library (lua/), through FCALL exactly
 * as workers, the coordinator and redis-cli users call it; each test
 * uses its own key prefix (test_queue_support.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include <llmb/functions.h>
#include <llmb/job.h>
#include <llmb/util.h>

#include "test_queue_support.h"

/* A queue setting that is not a whole number from 0 up takes its default:
 * a push and the calls after it still work and the stream stays capped. */
static void test_bad_settings_take_defaults(void **state)
{
    static const char *bad[] = {"100.5", "-1", "1e20", "nan", "x"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *id;

        freeReplyObject(tq_cmd("HSET %s:conf events_max %s retention_s %s",
                            T.base, bad[i], bad[i]));
        id = tq_push_and_complete("{\"type\":\"t\"}");
        tq_assert_job(id, "state", "completed");
        free(id);
    }
    /* 100.5 is not 100 rounded: the default 10000 applied throughout */
    assert_int_equal(tq_cmd_int("XLEN %s:events", T.base), 10);
}

/* Every function cuts the events stream to events_max once per call:
 * 250 jobs ending in one llmb_complete leave about the cap. */
static void test_events_capped_per_call(void **state)
{
    static struct tq_task t[250];
    redisReply *r;
    long long len;
    int i;

    (void)state;
    freeReplyObject(tq_cmd("HSET %s:conf events_max 100", T.base));
    for (i = 0; i < 250; i++)
        free(tq_push("{\"type\":\"t\"}"));
    assert_int_equal(tq_claim("w1", 250, "30000", t, NULL), 250);
    r = tq_complete_batch(t, 250, -1, NULL, "{}");
    assert_int_equal(r->elements, 250);
    freeReplyObject(r);
    len = tq_cmd_int("XLEN %s:events", T.base);
    if (len < 100 || len >= 250)
        fail_msg("events stream holds %lld entries, cap 100", len);
}

/* Field head_type of llmb_stats of the test queue. Caller frees. */
static char *stats_head_type(void)
{
    redisReply *r = tq_cmd("FCALL_RO llmb_stats 1 %s", T.base);
    char *v = NULL;

    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (strcmp(r->element[i]->str, "head_type") == 0)
            v = llmb_xstrdup(r->element[i + 1]->str);
    freeReplyObject(r);
    assert_non_null(v);
    return v;
}

static void test_stats_and_events(void **state)
{
    redisReply *r;
    char *id, *ht;

    (void)state;
    ht = stats_head_type();
    assert_string_equal(ht, ""); /* nothing pending */
    free(ht);
    id = tq_push("{\"type\":\"t\",\"tasks\":5}");
    free(tq_push("{\"type\":\"later\"}"));
    ht = stats_head_type();
    assert_string_equal(ht, "t"); /* the type of the oldest job */
    free(ht);
    r = tq_cmd("FCALL_RO llmb_stats 1 %s", T.base);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_string_equal(r->element[0]->str, "pending");
    assert_int_equal(r->element[1]->integer, 6);
    freeReplyObject(r);
    r = tq_cmd("XRANGE %s:events - +", T.base);
    assert_int_equal(r->elements, 2);
    freeReplyObject(r);
    free(id);
}

static void test_bad_arguments(void **state)
{
    redisReply *r;

    (void)state;
    r = tq_fcall("llmb_claim", "w1", "0", "30000", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "usage"));
    freeReplyObject(r);
    r = tq_fcall("llmb_complete", "w1", "x:0", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    r = tq_cmd("FCALL llmb_push 1 notaqueue {\"type\":\"x\"}");
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "is not a queue key"));
    freeReplyObject(r);
    /* no key at all: a clear error, not a Lua error */
    r = tq_cmd("FCALL llmb_push 0 {\"type\":\"x\"}");
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "takes one key, the queue key"));
    freeReplyObject(r);
}

static void test_reload_after_function_flush(void **state)
{
    redisReply *r;
    char *errstr = NULL;

    (void)state;
    freeReplyObject(tq_cmd("FUNCTION FLUSH"));
    r = tq_cmd("FCALL_RO llmb_version 0");
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    assert_int_equal(llmb_functions_ensure(T.c, &errstr), 0);
    r = tq_cmd("FCALL_RO llmb_version 0");
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, llmb_lua_version);
    freeReplyObject(r);
}

/* The calls of `cmd` (e.g. "function|load") since CONFIG RESETSTAT. */
static long long calls_of(const char *cmd)
{
    redisReply *r = tq_cmd("INFO commandstats");
    char *field = llmb_xasprintf("cmdstat_%s:calls=", cmd);
    const char *at = strstr(r->str, field);
    long long n = at != NULL ? strtoll(at + strlen(field), NULL, 10) : 0;

    free(field);
    freeReplyObject(r);
    return n;
}

/* The library is checked by its version and hash, a few bytes: the same
 * one is not sent again, one of the same version with another hash (other
 * code) is replaced. */
static void test_ensure_compares_the_hash(void **state)
{
    char *other = llmb_xmalloc(llmb_lua_source_len + 1);
    char *at;
    char *errstr = NULL;
    redisReply *r;

    (void)state;
    assert_int_equal(llmb_functions_ensure(T.c, &errstr), 0);
    r = tq_cmd("FCALL_RO llmb_version 0 hash");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    assert_int_equal(r->element[0]->integer, llmb_lua_version);
    assert_string_equal(r->element[1]->str, llmb_lua_hash);
    freeReplyObject(r);
    r = tq_cmd("FCALL_RO llmb_version 0 junk");
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "usage"));
    freeReplyObject(r);

    freeReplyObject(tq_cmd("CONFIG RESETSTAT"));
    assert_int_equal(llmb_functions_ensure(T.c, &errstr), 0);
    assert_int_equal(calls_of("function|load"), 0);
    assert_int_equal(calls_of("function|list"), 0);
    assert_int_equal(calls_of("fcall_ro"), 1);

    /* our code under another hash: the same version, other code */
    memcpy(other, llmb_lua_source, llmb_lua_source_len + 1);
    at = strstr(other, llmb_lua_hash);
    assert_non_null(at);
    memset(at, '0', strlen(llmb_lua_hash));
    r = tq_cmd("FUNCTION LOAD REPLACE %b", other, llmb_lua_source_len);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    freeReplyObject(tq_cmd("CONFIG RESETSTAT"));
    assert_int_equal(llmb_functions_ensure(T.c, &errstr), 0);
    assert_int_equal(calls_of("function|load"), 1);
    r = tq_cmd("FCALL_RO llmb_version 0 hash");
    assert_string_equal(r->element[1]->str, llmb_lua_hash);
    freeReplyObject(r);
    free(other);
}

/* The client-side builder and the server agree on what is valid. */
static void test_client_and_server_agree(void **state)
{
    static const struct {
        const char *field, *value;
    } bad[] = {
        {"priority", "1000001"}, {"priority", "1.5"}, {"tasks", "0"},
        {"tasks", "100001"}, {"timeout_s", "0"}, {"max_retries", "101"},
        {"delay_s", "-1"}, {"backoff_ms", "0"}, {"deadline_s", "-2"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct llmb_job_args a;
        struct llmb_buf out;
        char *errstr = NULL;
        char *doc;
        redisReply *r;

        memset(&a, 0, sizeof(a));
        a.type = "t";
        if (strcmp(bad[i].field, "priority") == 0) a.priority = bad[i].value;
        if (strcmp(bad[i].field, "tasks") == 0) a.tasks = bad[i].value;
        if (strcmp(bad[i].field, "timeout_s") == 0) a.timeout_s = bad[i].value;
        if (strcmp(bad[i].field, "max_retries") == 0) a.max_retries = bad[i].value;
        if (strcmp(bad[i].field, "delay_s") == 0) a.delay_s = bad[i].value;
        if (strcmp(bad[i].field, "backoff_ms") == 0) a.backoff_ms = bad[i].value;
        if (strcmp(bad[i].field, "deadline_s") == 0) a.deadline_s = bad[i].value;
        llmb_buf_init(&out);
        assert_int_not_equal(llmb_job_doc_build(&a, &out, &errstr), 0);
        free(errstr);
        doc = llmb_xasprintf("{\"type\":\"t\",\"%s\":%s}", bad[i].field,
                             bad[i].value);
        r = tq_fcall("llmb_push", doc, NULL);
        if (r->type != REDIS_REPLY_ERROR)
            fail_msg("server accepted %s", doc);
        freeReplyObject(r);
        free(doc);
        llmb_buf_fini(&out);
    }
}

#define T_(f) cmocka_unit_test_setup_teardown(f, tq_each_setup, tq_each_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T_(test_bad_settings_take_defaults),
        T_(test_events_capped_per_call),
        T_(test_stats_and_events),
        T_(test_bad_arguments),
        T_(test_reload_after_function_flush),
        T_(test_ensure_compares_the_hash),
        T_(test_client_and_server_agree),
    };
    return cmocka_run_group_tests(tests, tq_setup, tq_teardown);
}
