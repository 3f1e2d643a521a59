/*
 * llmb_reply_ll(), llmb_reply_ll_or() and llmb_reply_time_ms()
 * (lib/reply.c) on handmade replies: integers, numbers held in strings
 * and statuses, the ends of the range, and every reply they must refuse
 * (nil, errors, arrays, text, TIME replies of another shape).
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ll_reads),
        cmocka_unit_test(test_ll_refuses),
        cmocka_unit_test(test_ll_or),
        cmocka_unit_test(test_time_reads),
        cmocka_unit_test(test_time_refuses),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
