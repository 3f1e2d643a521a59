/*
 * llmb_reply_ll(), llmb_reply_ll_or() and llmb_reply_time_ms()
 * (lib/reply.c) on handmade replies: integers, numbers held in strings
 * and statuses, the ends of the range, and every reply they must refuse
 * (nil, errors, arrays, text, TIME replies of another shape); and
 * llmb_reply_not_yet() on the errors of a server that cannot serve yet,
 * llmb_reply_redirected() on those of a cluster's slot moved or moving,
 * and both on others.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <llmb/reply.h>
#include <llmb/util.h>

#include "handmade.h"

/* llmb_reply_ll() of r: true and *v, or false; frees r. */
static bool ll(redisReply *r, long long *v)
{
    bool ok = llmb_reply_ll(r, v);

    freeReplyObject(r);
    return ok;
}

static void test_ll_reads(void **state)
{
    long long v = 0;

    (void)state;
    assert_true(ll(num(42), &v));
    assert_int_equal(v, 42);
    assert_true(ll(num(-7), &v));
    assert_int_equal(v, -7);
    assert_true(ll(str(REDIS_REPLY_STRING, "123"), &v));
    assert_int_equal(v, 123);
    assert_true(ll(str(REDIS_REPLY_STRING, "-5"), &v));
    assert_int_equal(v, -5);
    assert_true(ll(str(REDIS_REPLY_STATUS, "9"), &v));
    assert_int_equal(v, 9);
    /* both ends of the range */
    assert_true(ll(str(REDIS_REPLY_STRING, "9223372036854775807"), &v));
    assert_true(v == INT64_MAX);
    assert_true(ll(str(REDIS_REPLY_STRING, "-9223372036854775808"), &v));
    assert_true(v == INT64_MIN);
    assert_true(ll(num(INT64_MAX), &v));
    assert_true(v == INT64_MAX);
}

static void test_ll_refuses(void **state)
{
    long long v = 77;

    (void)state;
    assert_false(llmb_reply_ll(NULL, &v));
    assert_false(ll(nil(), &v));
    assert_false(ll(str(REDIS_REPLY_ERROR, "ERR 5"), &v));
    assert_false(ll(str(REDIS_REPLY_STRING, ""), &v));
    assert_false(ll(str(REDIS_REPLY_STRING, "12abc"), &v));
    assert_false(ll(str(REDIS_REPLY_STRING, " 12"), &v));
    assert_false(ll(str(REDIS_REPLY_STRING, "1.5"), &v));
    assert_false(ll(str(REDIS_REPLY_STRING, "9223372036854775808"), &v));
    assert_false(ll(str(REDIS_REPLY_STRING, "-9223372036854775809"), &v));
    assert_false(ll(arr(1, num(3)), &v));
    assert_int_equal(v, 77); /* left alone */
}

static void test_ll_or(void **state)
{
    redisReply *r;

    (void)state;
    assert_int_equal(llmb_reply_ll_or(NULL, -1), -1);
    r = str(REDIS_REPLY_STRING, "x");
    assert_int_equal(llmb_reply_ll_or(r, 4), 4);
    freeReplyObject(r);
    r = str(REDIS_REPLY_STRING, "8");
    assert_int_equal(llmb_reply_ll_or(r, 4), 8);
    freeReplyObject(r);
}

/* llmb_reply_time_ms() of r: true and *ms, or false; frees r. */
static bool tm(redisReply *r, int64_t *ms)
{
    bool ok = llmb_reply_time_ms(r, ms);

    freeReplyObject(r);
    return ok;
}

static void test_time_reads(void **state)
{
    int64_t ms = 0;

    (void)state;
    assert_true(tm(arr(2, str(REDIS_REPLY_STRING, "1700000000"),
                       str(REDIS_REPLY_STRING, "123456")), &ms));
    assert_true(ms == 1700000000123LL);
    /* microseconds at both ends */
    assert_true(tm(arr(2, str(REDIS_REPLY_STRING, "0"),
                       str(REDIS_REPLY_STRING, "0")), &ms));
    assert_true(ms == 0);
    assert_true(tm(arr(2, str(REDIS_REPLY_STRING, "1"),
                       str(REDIS_REPLY_STRING, "999999")), &ms));
    assert_true(ms == 1999);
    /* a proxy may answer integers */
    assert_true(tm(arr(2, num(2), num(500000)), &ms));
    assert_true(ms == 2500);
}

static void test_time_refuses(void **state)
{
    int64_t ms = 5;

    (void)state;
    assert_false(llmb_reply_time_ms(NULL, &ms));
    assert_false(tm(str(REDIS_REPLY_ERROR, "NOPERM no TIME"), &ms));
    assert_false(tm(nil(), &ms));
    assert_false(tm(arr(1, str(REDIS_REPLY_STRING, "1")), &ms));
    assert_false(tm(arr(3, num(1), num(2), num(3)), &ms));
    assert_false(tm(arr(2, nil(), num(2)), &ms));
    assert_false(tm(arr(2, str(REDIS_REPLY_STRING, "x"), num(2)), &ms));
    assert_false(tm(arr(2, num(-1), num(2)), &ms));
    assert_false(tm(arr(2, num(1), num(-1)), &ms));
    assert_false(tm(arr(2, num(1), num(1000000)), &ms));
    assert_false(tm(arr(2, num(INT64_MAX), num(0)), &ms));
    assert_true(ms == 5); /* left alone */
}

/* is(): true for the error replies of yes[] (ny of them), false for
 * those of no[], for a string reply of yes[0] and for NULL. */
static void errors_check(bool (*is)(const redisReply *),
                         const char *const *yes, size_t ny,
                         const char *const *no, size_t nn)
{
    redisReply *r;

    for (size_t i = 0; i < ny; i++) {
        r = str(REDIS_REPLY_ERROR, yes[i]);
        assert_true(is(r));
        freeReplyObject(r);
    }
    for (size_t i = 0; i < nn; i++) {
        r = str(REDIS_REPLY_ERROR, no[i]);
        assert_false(is(r));
        freeReplyObject(r);
    }
    /* the same words in a string are data, not an error */
    r = str(REDIS_REPLY_STRING, yes[0]);
    assert_false(is(r));
    freeReplyObject(r);
    assert_false(is(NULL));
}

/* llmb_reply_not_yet(): the errors of a server that cannot serve yet,
 * nothing else. */
static void test_not_yet(void **state)
{
    static const char *const yes[] = {
        "LOADING Redis is loading the dataset in memory",
        "BUSY Redis is busy running a script.",
        "MASTERDOWN Link with MASTER is down",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "CLUSTERDOWN The cluster is down"};
    static const char *const no[] = {
        "WRONGTYPE Operation against a key holding the wrong kind of value",
        "ERR unknown command", "NOAUTH Authentication required.",
        "BUSYKEY Target key name already exists.", "LOAD", ""};

    (void)state;
    errors_check(llmb_reply_not_yet, yes, sizeof(yes) / sizeof(*yes), no,
                 sizeof(no) / sizeof(*no));
}

/* llmb_reply_redirected(): a slot moved, moving or without an owner,
 * nothing else. */
static void test_redirected(void **state)
{
    static const char *const yes[] = {
        "MOVED 3999 127.0.0.1:6381", "ASK 3999 127.0.0.1:6381",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "CLUSTERDOWN Hash slot not served"};
    static const char *const no[] = {
        "EXECABORT Transaction discarded because of previous errors.",
        "MOVEDX 1 a:1", "ASKING", "LOADING Redis is loading",
        "READONLY You can't write against a read only replica.", ""};

    (void)state;
    errors_check(llmb_reply_redirected, yes, sizeof(yes) / sizeof(*yes), no,
                 sizeof(no) / sizeof(*no));
}

/* llmb_reply_refused_for_now(): a write Redis did not run for now, by
 * its code; not another error, nor a code that only begins the same. */
static void test_refused_for_now(void **state)
{
    static const char *const yes[] = {
        "BUSY Redis is busy running a script.", "LOADING", "MASTERDOWN x",
        "TRYAGAIN x", "CLUSTERDOWN The cluster is down",
        "READONLY You can't write against a read only replica.",
        "MISCONF Redis is configured to save RDB snapshots",
        "NOREPLICAS Not enough good replicas to write.",
        "OOM command not allowed when used memory > 'maxmemory'.",
        "MOVED 3999 127.0.0.1:6381", "ASK 3999 127.0.0.1:6381"};
    static const char *const no[] = {
        "ERR unknown command", "WRONGTYPE x", "NOPERM x", "NOSCRIPT x",
        "BUSYKEY Target key name already exists.", "OOMX", "ASKING", "",
        "ERR llmb: BUSY"};

    (void)state;
    for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++)
        assert_true(llmb_reply_refused_for_now(yes[i]));
    for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
        assert_false(llmb_reply_refused_for_now(no[i]));
    assert_false(llmb_reply_refused_for_now(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ll_reads),
        cmocka_unit_test(test_ll_refuses),
        cmocka_unit_test(test_ll_or),
        cmocka_unit_test(test_time_reads),
        cmocka_unit_test(test_time_refuses),
        cmocka_unit_test(test_not_yet),
        cmocka_unit_test(test_redirected),
        cmocka_unit_test(test_refused_for_now),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
