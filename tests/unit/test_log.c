/*
 * Unit tests of lib/log.c: the line format, the threshold (checked before
 * the arguments are evaluated), level parsing and one line per call.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llmb/err.h>
#include <llmb/log.h>

static int saved_stderr = -1;
static FILE *capture;

/* Sends stderr to a temporary file until captured() reads it back. */
static void capture_start(void)
{
    fflush(stderr);
    capture = tmpfile();
    assert_non_null(capture);
    saved_stderr = dup(STDERR_FILENO);
    assert_true(saved_stderr >= 0);
    assert_true(dup2(fileno(capture), STDERR_FILENO) >= 0);
}

/* Restores stderr; returns what was written (free() it). */
static char *captured(void)
{
    char *out;
    long n;

    fflush(stderr);
    assert_true(dup2(saved_stderr, STDERR_FILENO) >= 0);
    close(saved_stderr);
    n = ftell(capture);
    assert_true(n >= 0);
    out = calloc(1, (size_t)n + 1);
    rewind(capture);
    assert_int_equal(fread(out, 1, (size_t)n, capture), (size_t)n);
    fclose(capture);
    return out;
}

static void test_line_format(void **state)
{
    char *out, pat[256];
    regex_t re;
    (void)state;

    llmb_log_init("worker", LLMB_LOG_INFO);
    capture_start();
    llmb_info("claimed tasks n=%d queue=%s", 3, "default");
    out = captured();

    snprintf(pat, sizeof(pat),
             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
             "info worker\\[%ld\\]: claimed tasks n=3 queue=default\n$",
             (long)getpid());
    assert_int_equal(regcomp(&re, pat, REG_EXTENDED), 0);
    if (regexec(&re, out, 0, NULL, 0) != 0)
        fail_msg("line does not match: %s", out);
    regfree(&re);
    free(out);
}

/* A library's message through llmb_log_vwrite(): after its prefix, and
 * without the newline it ended with. */
static void vlog(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    llmb_log_vwrite(LLMB_LOG_WARN, "http: ", fmt, ap);
    va_end(ap);
}

static void test_vwrite(void **state)
{
    char *out;
    (void)state;

    llmb_log_init("llmb", LLMB_LOG_INFO);
    capture_start();
    vlog("Failed to bind to port %d\n", 80);
    out = captured();
    assert_non_null(strstr(out, "warn llmb["));
    assert_non_null(strstr(out, "]: http: Failed to bind to port 80\n"));
    assert_int_equal(out[strlen(out) - 2], '0');
    free(out);
}

static int evaluated;

static int side_effect(void)
{
    evaluated++;
    return 1;
}

static void test_threshold(void **state)
{
    char *out;
    (void)state;

    llmb_log_init("coordinator", LLMB_LOG_WARN);
    evaluated = 0;
    capture_start();
    llmb_debug("debug %d", side_effect());
    llmb_info("info %d", side_effect());
    llmb_warn("careful x=%d", 1);
    llmb_error("broken y=%d", 2);
    llmb_log_write(LLMB_LOG_INFO, "direct calls check the level too");
    out = captured();

    assert_int_equal(evaluated, 0);
    assert_null(strstr(out, "debug 1"));
    assert_null(strstr(out, "info 1"));
    assert_null(strstr(out, "direct calls"));
    assert_non_null(strstr(out, " warn coordinator["));
    assert_non_null(strstr(out, "]: careful x=1\n"));
    assert_non_null(strstr(out, " error coordinator["));
    assert_non_null(strstr(out, "]: broken y=2\n"));
    free(out);

    llmb_log_init("coordinator", LLMB_LOG_DEBUG);
    capture_start();
    llmb_debug("now visible %d", side_effect());
    out = captured();
    assert_int_equal(evaluated, 1);
    assert_non_null(strstr(out, " debug coordinator["));
    free(out);
}

static void test_one_line_and_errno_kept(void **state)
{
    char *out, *nl;
    (void)state;

    llmb_log_init("worker", LLMB_LOG_INFO);
    capture_start();
    errno = ENOENT;
    llmb_warn("handler said: %s", "line one\nline two\r\tend");
    assert_int_equal(errno, ENOENT);
    out = captured();

    nl = strchr(out, '\n');
    assert_non_null(nl);
    assert_string_equal(nl, "\n");
    assert_non_null(strstr(out, "handler said: line one line two  end"));
    free(out);
}

static void test_long_message_cut(void **state)
{
    char *big = malloc(40000), *out;
    (void)state;

    memset(big, 'a', 39999);
    big[39999] = '\0';
    llmb_log_init("worker", LLMB_LOG_INFO);
    capture_start();
    llmb_info("%s", big);
    out = captured();
    assert_true(strlen(out) < 17000);
    assert_non_null(strstr(out, "aaa...\n"));
    free(out);
    free(big);
}

static void test_level_parse(void **state)
{
    enum llmb_log_level l = LLMB_LOG_ERROR;
    (void)state;

    assert_int_equal(llmb_log_level_parse("debug", &l), LLMB_OK);
    assert_int_equal(l, LLMB_LOG_DEBUG);
    assert_int_equal(llmb_log_level_parse("INFO", &l), LLMB_OK);
    assert_int_equal(l, LLMB_LOG_INFO);
    assert_int_equal(llmb_log_level_parse("warn", &l), LLMB_OK);
    assert_int_equal(l, LLMB_LOG_WARN);
    assert_int_equal(llmb_log_level_parse("warning", &l), LLMB_OK);
    assert_int_equal(l, LLMB_LOG_WARN);
    assert_int_equal(llmb_log_level_parse("error", &l), LLMB_OK);
    assert_int_equal(l, LLMB_LOG_ERROR);
    assert_int_equal(llmb_log_level_parse("verbose", &l), LLMB_EINVAL);
    assert_int_equal(llmb_log_level_parse("", &l), LLMB_EINVAL);
    assert_int_equal(llmb_log_level_parse(NULL, &l), LLMB_EINVAL);
    assert_int_equal(l, LLMB_LOG_ERROR);
    assert_string_equal(llmb_log_level_name(LLMB_LOG_WARN), "warn");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_format),
        cmocka_unit_test(test_vwrite),
        cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_one_line_and_errno_kept),
        cmocka_unit_test(test_long_message_cut),
        cmocka_unit_test(test_level_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
