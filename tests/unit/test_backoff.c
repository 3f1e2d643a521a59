/*
 * Unit tests of llmb_backoff_ms(): the equal-jitter bounds, the cap, and
 * no overflow for huge attempts or bases; and of the reconnect policy
 * built on it (struct llmb_reconnect).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>

#include <llmb/backoff.h>

static void test_exponential_steps(void **state)
{
    (void)state;
    /* r = 0 gives exactly d/2. */
    assert_int_equal(llmb_backoff_ms(0, 100, 100000, 0.0), 50);
    assert_int_equal(llmb_backoff_ms(1, 100, 100000, 0.0), 100);
    assert_int_equal(llmb_backoff_ms(2, 100, 100000, 0.0), 200);
    assert_int_equal(llmb_backoff_ms(10, 100, 1000000, 0.0), 51200);
    /* r = 0.5 adds a quarter of d. */
    assert_int_equal(llmb_backoff_ms(0, 100, 100000, 0.5), 75);
    assert_int_equal(llmb_backoff_ms(3, 100, 100000, 0.5), 600);
}

static void test_bounds_for_all_r(void **state)
{
    (void)state;
    for (unsigned attempt = 0; attempt < 20; attempt++) {
        int64_t d = 250LL << attempt;
        if (d > 60000)
            d = 60000;
        for (int i = 0; i <= 100; i++) {
            double r = i / 100.0 * 0.999999;
            int64_t v = llmb_backoff_ms(attempt, 250, 60000, r);
            assert_true(v >= d / 2);
            assert_true(v < d);
        }
    }
}

static void test_cap(void **state)
{
    (void)state;
    assert_int_equal(llmb_backoff_ms(20, 1000, 30000, 0.0), 15000);
    assert_int_equal(llmb_backoff_ms(5, 1000, 30000, 0.0), 15000);
    assert_int_equal(llmb_backoff_ms(4, 1000, 30000, 0.0), 8000);
    /* base above cap: the cap wins from the first attempt. */
    assert_int_equal(llmb_backoff_ms(0, 50000, 30000, 0.0), 15000);
}

static void test_no_overflow(void **state)
{
    const int64_t cap = INT64_MAX / 2;
    (void)state;
    assert_int_equal(llmb_backoff_ms(1000, 1000, 30000, 0.0), 15000);
    assert_int_equal(llmb_backoff_ms(1000, 1000, 30000, 0.5), 15000 + 7500);
    assert_int_equal(llmb_backoff_ms(63, 1, INT64_MAX, 0.0), INT64_MAX / 2);
    assert_int_equal(llmb_backoff_ms(64, 1, cap, 0.0), cap / 2);
    assert_int_equal(llmb_backoff_ms(UINT32_MAX, 3, 30000, 0.0), 15000);
    assert_int_equal(llmb_backoff_ms(61, INT64_MAX / 4, INT64_MAX, 0.0),
                     INT64_MAX / 2);
}

static void test_odd_inputs(void **state)
{
    (void)state;
    assert_int_equal(llmb_backoff_ms(3, 0, 30000, 0.5), 0);
    assert_int_equal(llmb_backoff_ms(3, -5, 30000, 0.5), 0);
    assert_int_equal(llmb_backoff_ms(3, 100, 0, 0.5), 0);
    /* r outside [0, 1) is clamped. */
    assert_int_equal(llmb_backoff_ms(0, 100, 1000, -3.0), 50);
    assert_int_equal(llmb_backoff_ms(0, 100, 1000, NAN), 50);
    assert_int_equal(llmb_backoff_ms(0, 100, 1000, 7.0), 99);
}

/* The reconnect policy: each failure waits within [d/2, d) of a doubling
 * d up to the cap, a reset starts over, and two policies made at the same
 * moment draw different delays (no fleet in lockstep). */
static void test_reconnect_policy(void **state)
{
    struct llmb_reconnect a, b;
    int differ = 0;
    (void)state;

    llmb_reconnect_init(&a, 100, 1000);
    llmb_reconnect_init(&b, 100, 1000);
    assert_true(llmb_reconnect_due(&a));
    for (unsigned i = 0; i < 8; i++) {
        int64_t d = i < 4 ? (int64_t)100 << i : 1000;
        int64_t wa = llmb_reconnect_failed(&a);
        int64_t wb = llmb_reconnect_failed(&b);
        assert_true(wa >= d / 2 && wa < d);
        assert_true(wb >= d / 2 && wb < d);
        differ += wa != wb;
        assert_int_equal(a.attempt, i + 1);
    }
    assert_true(differ > 0);
    assert_false(llmb_reconnect_due(&a));
    llmb_reconnect_reset(&a);
    assert_true(llmb_reconnect_due(&a));
    assert_int_equal(a.attempt, 0);
    assert_true(llmb_reconnect_failed(&a) < 100);

    /* Defaults: 100 ms first, 5000 ms cap. */
    llmb_reconnect_init(&a, 0, 0);
    assert_int_equal(a.base_ms, 100);
    assert_int_equal(a.cap_ms, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exponential_steps),
        cmocka_unit_test(test_bounds_for_all_r),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_no_overflow),
        cmocka_unit_test(test_odd_inputs),
        cmocka_unit_test(test_reconnect_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
