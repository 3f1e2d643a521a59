/*
 * llmb_queue_stats_parse() (lib/stats.c) on handmade replies of
 * llmb_stats: the fields of every library version, the optional junk
 * count, fields it does not know, numbers as strings; and every reply it
 * must refuse with a message: an error, another shape, a field that is not
 * an integer, a missing field, keys of the wrong type.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <llmb/err.h>
#include <llmb/stats.h>
#include <llmb/util.h>

#include "handmade.h"

#define S(s) str(REDIS_REPLY_STRING, (s))

/* The reply of a library that knows junk, paused and wrong_keys. */
static redisReply *reply_full(const char *wrong_keys)
{
    return arr(28, S("pending"), num(3), S("delayed"), num(1),
               S("running"), num(2), S("jobs"), num(4), S("dead"), num(5),
               S("to_aggregate"), num(6), S("head_age_ms"), num(700),
               S("now_ms"), num(1700000000000LL), S("tasks_ok"), num(8),
               S("tasks_failed"), num(9), S("tasks_cancelled"), num(10),
               S("junk"), num(11), S("paused"), num(1),
               S("wrong_keys"), S(wrong_keys));
}

static void test_full(void **state)
{
    struct llmb_queue_stats st;
    redisReply *r = reply_full("");
    char *err = NULL;

    (void)state;
    assert_int_equal(llmb_queue_stats_parse(r, &st, &err), 0);
    assert_null(err);
    assert_int_equal(st.pending, 3);
    assert_int_equal(st.delayed, 1);
    assert_int_equal(st.running, 2);
    assert_int_equal(st.jobs, 4);
    assert_int_equal(st.dead, 5);
    assert_int_equal(st.to_aggregate, 6);
    assert_int_equal(st.head_age_ms, 700);
    assert_int_equal(st.now_ms, 1700000000000LL);
    assert_int_equal(st.tasks_ok, 8);
    assert_int_equal(st.tasks_failed, 9);
    assert_int_equal(st.tasks_cancelled, 10);
    assert_int_equal(st.junk, 11);
    assert_int_equal(st.paused, 1);
    freeReplyObject(r);
}

/* An older library: no junk, no wrong_keys, no task counters. */
static void test_older_library(void **state)
{
    struct llmb_queue_stats st;
    redisReply *r = arr(6, S("pending"), num(1), S("delayed"), num(0),
                        S("running"), num(2));
    char *err = NULL;

    (void)state;
    st.junk = 99;
    st.paused = 1;
    assert_int_equal(llmb_queue_stats_parse(r, &st, &err), 0);
    assert_int_equal(st.paused, 0); /* before pausing existed: running */
    assert_int_equal(st.pending, 1);
    assert_int_equal(st.running, 2);
    assert_int_equal(st.junk, 0);
    assert_int_equal(st.tasks_ok, 0);
    freeReplyObject(r);
}

/* A newer library: unknown fields are skipped, whatever their type;
 * numbers written as strings are read. */
static void test_newer_library(void **state)
{
    struct llmb_queue_stats st;
    redisReply *r = arr(12, S("pending"), S("42"), S("future"),
                        arr(2, num(1), num(2)), S("delayed"), num(0),
                        S("shiny"), S("x"), S("running"), num(0),
                        S("junk"), S("7"));
    char *err = NULL;

    (void)state;
    assert_int_equal(llmb_queue_stats_parse(r, &st, &err), 0);
    assert_int_equal(st.pending, 42);
    assert_int_equal(st.junk, 7);
    freeReplyObject(r);
}

/* Parses r, expects rc and a message containing want; frees both. */
static void refused(redisReply *r, int rc, const char *want)
{
    struct llmb_queue_stats st;
    char *err = NULL;

    assert_int_equal(llmb_queue_stats_parse(r, &st, &err), rc);
    assert_non_null(err);
    if (strstr(err, want) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err, want);
    free(err);
    freeReplyObject(r);
}

static void test_error_reply(void **state)
{
    (void)state;
    refused(str(REDIS_REPLY_ERROR, "ERR something broke"), LLMB_EREDIS,
            "llmb_stats failed: something broke");
    refused(str(REDIS_REPLY_ERROR, "NOPERM this user has no permissions to "
                "access one of the keys used as arguments"), LLMB_EREDIS,
            "llmb_stats failed: NOPERM this user");
}

static void test_wrong_shape(void **state)
{
    (void)state;
    refused(num(3), LLMB_EPROTO, "llmb_stats answered an integer");
    refused(S("pending"), LLMB_EPROTO, "llmb_stats answered a string");
    refused(arr(3, S("pending"), num(1), S("delayed")), LLMB_EPROTO,
            "odd number of elements (3)");
    refused(arr(6, S("pending"), num(1), num(5), num(0), S("running"),
                num(0)), LLMB_EPROTO,
            "an integer where field name 2 belongs");
    refused(arr(6, S("pending"), S("many"), S("delayed"), num(0),
                S("running"), num(0)), LLMB_EPROTO,
            "field \"pending\" is not an integer but a string");
    refused(arr(6, S("pending"), num(1), S("delayed"), arr(0),
                S("running"), num(0)), LLMB_EPROTO,
            "field \"delayed\" is not an integer but an array");
    refused(arr(4, S("delayed"), num(0), S("running"), num(0)), LLMB_EPROTO,
            "no field \"pending\"");
    refused(arr(0), LLMB_EPROTO, "no field \"pending\"");
}

/* Keys of the wrong type: the numbers are there, but not to be trusted;
 * each key is named once. */
static void test_wrong_keys(void **state)
{
    struct llmb_queue_stats st;
    redisReply *r = reply_full("p:{q}:pending p:{q}:pending p:{q}:dead");
    char *err = NULL;

    (void)state;
    assert_int_equal(llmb_queue_stats_parse(r, &st, &err), LLMB_EREDIS);
    assert_string_equal(err, "keys of the wrong type, counted as empty: "
                             "p:{q}:pending p:{q}:dead (written by something "
                             "else than llmb: rename or delete them; "
                             "docs/data-model.md)");
    assert_int_equal(st.pending, 3);
    free(err);
    freeReplyObject(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_older_library),
        cmocka_unit_test(test_newer_library),
        cmocka_unit_test(test_error_reply),
        cmocka_unit_test(test_wrong_shape),
        cmocka_unit_test(test_wrong_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
