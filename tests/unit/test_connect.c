/*
 * Unit tests of the write predicates of lib/connect.c: the read-only
 * functions llmb_fcall_writes() lists by hand are exactly those the
 * embedded library registers with the no-writes flag (lua/00-header.lua:
 * register(name, fn, true), or a register_function{} with 'no-writes'),
 * and llmb_argv_writes() tells an FCALL of a writing function from the
 * rest.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include <llmb/connect.h>
#include <llmb/functions.h>

/* Copies the quoted name that starts at p (after its opening quote) into
 * name of n bytes; returns its length, 0 when it does not fit. */
static size_t quoted(const char *p, char *name, size_t n)
{
    size_t len = strcspn(p, "'");

    if (len == 0 || len >= n)
        return 0;
    memcpy(name, p, len);
    name[len] = '\0';
    return len;
}

static void test_read_only_list_matches_lua(void **state)
{
    static const char reg[] = "\nregister('";
    static const char fn[] = "function_name = '";
    const char *src = llmb_lua_source;
    const char *p;
    int functions = 0, read_only = 0;
    char name[64];
    (void)state;

    for (p = strstr(src, reg); p != NULL; p = strstr(p + 1, reg)) {
        const char *eol = strchr(p + 1, '\n');
        const char *ro = strstr(p, ", true)");
        bool writes = ro == NULL || (eol != NULL && ro > eol);

        assert_true(quoted(p + sizeof(reg) - 1, name, sizeof(name)) > 0);
        if (llmb_fcall_writes(name, 0) != writes)
            fail_msg("%s: llmb_fcall_writes() says %s, lua/ registers it %s",
                     name, writes ? "read-only" : "writing",
                     writes ? "writing" : "read-only (no-writes)");
        functions++;
        read_only += !writes;
    }
    for (p = strstr(src, fn); p != NULL; p = strstr(p + 1, fn)) {
        const char *end = strstr(p, "}}");
        const char *flag = strstr(p, "'no-writes'");
        bool writes = flag == NULL || (end != NULL && flag > end);

        assert_true(quoted(p + sizeof(fn) - 1, name, sizeof(name)) > 0);
        if (llmb_fcall_writes(name, 0) != writes)
            fail_msg("%s: llmb_fcall_writes() disagrees with lua/", name);
        functions++;
        read_only += !writes;
    }
    /* The scan found the library's functions, and the four that only
     * read: llmb_version, llmb_stats, llmb_dataset_read, llmb_job. */
    assert_true(functions > 20);
    assert_int_equal(read_only, 4);
}

static void test_argv_writes(void **state)
{
    const char *push[] = {"FCALL", "llmb_push", "1", "p:{q}"};
    const char *push_lower[] = {"fcall", "llmb_push", "1", "p:{q}"};
    const char *stats[] = {"FCALL", "llmb_stats", "1", "p:{q}"};
    const char *stats_ro[] = {"FCALL_RO", "llmb_stats", "1", "p:{q}"};
    const char *push_ro[] = {"FCALL_RO", "llmb_push", "1", "p:{q}"};
    const char *job[] = {"FCALL", "llmb_job", "1", "p:{q}", "j1"};
    const char *set[] = {"SET", "k", "v"};
    /* Lengths shorter than the strings: "llmb_stats_x" read as llmb_stats. */
    const char *cut[] = {"FCALLX", "llmb_stats_x"};
    const size_t cutlen[] = {5, 10};
    (void)state;

    assert_true(llmb_argv_writes(4, push, NULL));
    assert_true(llmb_argv_writes(4, push_lower, NULL));
    assert_false(llmb_argv_writes(4, stats, NULL));
    assert_false(llmb_argv_writes(4, stats_ro, NULL));
    assert_false(llmb_argv_writes(4, push_ro, NULL));
    assert_false(llmb_argv_writes(5, job, NULL));
    assert_false(llmb_argv_writes(3, set, NULL));
    assert_false(llmb_argv_writes(1, push, NULL));
    assert_false(llmb_argv_writes(2, cut, cutlen));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_only_list_matches_lua),
        cmocka_unit_test(test_argv_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
