/*
 * Unit tests of lib/util.c: llmb_buf growth and NUL-termination, reading
 * a file into one, llmb_strlist splitting, strict integer parsing and the
 * clocks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/util.h>

static void test_buf_append_grows_and_terminates(void **state)
{
    struct llmb_buf b;
    char big[1000];
    (void)state;

    llmb_buf_init(&b);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    assert_int_equal(b.len, 0);

    llmb_buf_append(&b, "abc", 3);
    assert_int_equal(b.len, 3);
    assert_string_equal(b.data, "abc");

    memset(big, 'x', sizeof(big));
    llmb_buf_append(&b, big, sizeof(big));
    assert_int_equal(b.len, 1003);
    assert_true(b.cap > b.len);
    assert_int_equal(b.data[1003], '\0');
    assert_memory_equal(b.data + 3, big, sizeof(big));

    llmb_buf_append(&b, "", 0);
    assert_int_equal(b.len, 1003);

    llmb_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    llmb_buf_fini(&b);
    assert_null(b.data);
}

static void test_buf_appendf(void **state)
{
    struct llmb_buf b;
    char *s;
    (void)state;

    llmb_buf_init(&b);
    llmb_buf_appendf(&b, "n=%d q=%s", 3, "default");
    assert_string_equal(b.data, "n=3 q=default");
    /* Longer than the initial capacity: takes the second vsnprintf. */
    llmb_buf_appendf(&b, " %0200d", 7);
    assert_int_equal(b.len, strlen("n=3 q=default") + 201);
    assert_int_equal(b.data[b.len - 1], '7');
    assert_int_equal(b.data[b.len], '\0');

    s = llmb_buf_steal(&b);
    assert_int_equal(strncmp(s, "n=3 q=default 000", 17), 0);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(s);

    /* A stolen-from buffer can be appended to again. */
    llmb_buf_appendf(&b, "%s", "again");
    assert_string_equal(b.data, "again");
    llmb_buf_reset(&b);
    s = llmb_buf_steal(&b);
    assert_string_equal(s, "");
    free(s);
    s = llmb_buf_steal(&b); /* nothing left: still a string */
    assert_string_equal(s, "");
    free(s);
    llmb_buf_fini(&b);
}

/* The whole of a file, past several reads, NUL bytes included; and a
 * stream that cannot be read is an error. */
static void test_buf_append_file(void **state)
{
    static char big[200000];
    struct llmb_buf b;
    FILE *f = tmpfile();

    (void)state;
    assert_non_null(f);
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)(i % 251);
    assert_int_equal(fwrite(big, 1, sizeof(big), f), sizeof(big));
    rewind(f);
    llmb_buf_init(&b);
    llmb_buf_append(&b, "head", 4);
    assert_int_equal(llmb_buf_append_file(&b, f), LLMB_OK);
    assert_int_equal(b.len, 4 + sizeof(big));
    assert_memory_equal(b.data, "head", 4);
    assert_memory_equal(b.data + 4, big, sizeof(big));
    assert_int_equal(b.data[b.len], '\0');
    /* at the end already: nothing more, still fine */
    assert_int_equal(llmb_buf_append_file(&b, f), LLMB_OK);
    assert_int_equal(b.len, 4 + sizeof(big));
    fclose(f);

    /* an empty file gives "" */
    f = tmpfile();
    assert_non_null(f);
    llmb_buf_reset(&b);
    assert_int_equal(llmb_buf_append_file(&b, f), LLMB_OK);
    assert_string_equal(b.data, "");
    fclose(f);

    /* a write-only stream cannot be read */
    f = fopen("/dev/null", "w");
    assert_non_null(f);
    assert_int_equal(llmb_buf_append_file(&b, f), LLMB_EIO);
    fclose(f);
    llmb_buf_fini(&b);
}

static void test_xasprintf_and_strndup(void **state)
{
    char *s;
    (void)state;

    s = llmb_xasprintf("%s-%lld", "job", 42LL);
    assert_string_equal(s, "job-42");
    free(s);

    s = llmb_xstrndup("abcdef", 3);
    assert_string_equal(s, "abc");
    free(s);
    s = llmb_xstrndup("ab", 10);
    assert_string_equal(s, "ab");
    free(s);
}

static void test_strlist_split(void **state)
{
    struct llmb_strlist l = {0};
    (void)state;

    assert_int_equal(llmb_strlist_split(&l, " a , b,,c ,", ','), 3);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0], "a");
    assert_string_equal(l.v[1], "b");
    assert_string_equal(l.v[2], "c");

    /* Appends to what is there. */
    assert_int_equal(llmb_strlist_split(&l, "d e", ' '), 2);
    assert_int_equal(l.n, 5);
    assert_string_equal(l.v[4], "e");

    assert_int_equal(llmb_strlist_split(&l, "", ','), 0);
    assert_int_equal(llmb_strlist_split(&l, " , \t,", ','), 0);
    assert_int_equal(l.n, 5);

    llmb_strlist_push(&l, " kept as is ");
    assert_string_equal(l.v[5], " kept as is ");

    llmb_strlist_clear(&l);
    assert_int_equal(l.n, 0);
    assert_null(l.v);
}

static void test_parse_ll(void **state)
{
    long long v = 99;
    (void)state;

    assert_int_equal(llmb_parse_ll("42", 0, 100, &v), LLMB_OK);
    assert_int_equal(v, 42);
    assert_int_equal(llmb_parse_ll("-7", -10, 10, &v), LLMB_OK);
    assert_int_equal(v, -7);
    assert_int_equal(llmb_parse_ll("9223372036854775807", LLONG_MIN,
                                   LLONG_MAX, &v), LLMB_OK);
    assert_true(v == LLONG_MAX);

    v = 99;
    assert_int_equal(llmb_parse_ll("", 0, 100, &v), LLMB_EINVAL);
    assert_int_equal(llmb_parse_ll(NULL, 0, 100, &v), LLMB_EINVAL);
    assert_int_equal(llmb_parse_ll("12x", 0, 100, &v), LLMB_EINVAL);
    assert_int_equal(llmb_parse_ll(" 12", 0, 100, &v), LLMB_EINVAL);
    assert_int_equal(llmb_parse_ll("12 ", 0, 100, &v), LLMB_EINVAL);
    assert_int_equal(llmb_parse_ll("0x10", 0, 100, &v), LLMB_EINVAL);
    assert_int_equal(llmb_parse_ll("101", 0, 100, &v), LLMB_EINVAL);
    assert_int_equal(llmb_parse_ll("-1", 0, 100, &v), LLMB_EINVAL);
    assert_int_equal(llmb_parse_ll("99999999999999999999", LLONG_MIN,
                                   LLONG_MAX, &v), LLMB_EINVAL);
    assert_int_equal(v, 99); /* untouched on error */
}

static void test_clocks(void **state)
{
    int64_t now = llmb_now_ms();
    int64_t m1 = llmb_mono_ms(), u1 = llmb_mono_us();
    int64_t m2, u2;
    (void)state;

    /* After 2020-01-01 and before 2100-01-01. */
    assert_true(now > 1577836800000LL);
    assert_true(now < 4102444800000LL);
    m2 = llmb_mono_ms();
    u2 = llmb_mono_us();
    assert_true(m2 >= m1);
    assert_true(u2 >= u1);
    assert_true(u1 / 1000 - m1 <= 1);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(llmb_strerror(LLMB_OK), "success");
    assert_string_equal(llmb_strerror(LLMB_ECONFIG), "configuration error");
    assert_string_equal(llmb_strerror(-1000), "unknown error");
}

static size_t dist(const char *a, const char *b)
{
    return llmb_edit_distance(a, strlen(a), b, strlen(b));
}

static void test_edit_distance(void **state)
{
    char long_name[66];

    (void)state;
    assert_int_equal(dist("wait", "wait"), 0);
    assert_int_equal(dist("wiat", "wait"), 1);   /* a swap is one edit */
    assert_int_equal(dist("queus", "queues"), 1); /* a letter missing */
    assert_int_equal(dist("stast", "stats"), 1);
    assert_int_equal(dist("", "abc"), 3);
    assert_int_equal(dist("kitten", "sitting"), 3);
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    assert_true(dist(long_name, "a") == SIZE_MAX); /* past 64: never close */
    long_name[64] = '\0';
    assert_int_equal(dist(long_name, long_name), 0);
}

static size_t cut(const char *s, size_t max)
{
    return llmb_utf8_cut(s, strlen(s), max);
}

/* A cut never splits a character of 2, 3 or 4 bytes, at any offset; what
 * is not UTF-8 is cut where asked. */
static void test_utf8_cut(void **state)
{
    /* "a" é (2) € (3) 😀 (4) "b" */
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" "b";
    static const size_t want[] = {0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10, 11, 11};

    (void)state;
    for (size_t max = 0; max < sizeof(want) / sizeof(*want); max++)
        assert_int_equal(cut(s, max), want[max]);
    assert_int_equal(cut("abc", 2), 2);
    assert_int_equal(cut("", 5), 0);
    /* a whole character before a stray continuation byte stays */
    assert_int_equal(cut("\xc3\xa9\xa9x", 2), 2);
    /* stray continuation bytes after ASCII, or only them: cut as asked */
    assert_int_equal(cut("ab\x80\x80", 3), 3);
    assert_int_equal(cut("\x80\x80\x80\x80\x80\x80", 5), 5);
    /* the cut at 200 bytes of an error message of 3-byte characters */
    {
        char msg[301];
        for (size_t i = 0; i < 300; i += 3)
            memcpy(msg + i, "\xe2\x82\xac", 3);
        msg[300] = '\0';
        assert_int_equal(cut(msg, 200), 198);
    }
}

/* 2 * nbytes hex digits, also past the 64 bytes read at a time. */
static void test_random_hex(void **state)
{
    char a[2 * 100 + 1], b[2 * 100 + 1];

    (void)state;
    assert_int_equal(llmb_random_hex(a, 100), 0);
    assert_int_equal(strlen(a), 200);
    assert_int_equal(strspn(a, "0123456789abcdef"), 200);
    assert_int_equal(llmb_random_hex(b, 100), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(llmb_random_hex(a, 0), 0);
    assert_string_equal(a, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_grows_and_terminates),
        cmocka_unit_test(test_buf_appendf),
        cmocka_unit_test(test_buf_append_file),
        cmocka_unit_test(test_xasprintf_and_strndup),
        cmocka_unit_test(test_strlist_split),
        cmocka_unit_test(test_parse_ll),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_edit_distance),
        cmocka_unit_test(test_utf8_cut),
        cmocka_unit_test(test_random_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
