/*
 * lib/listen.c without the network: which addresses are loopback (`llmb
 * web` warns when it listens elsewhere without a token) and the
 * addresses refused before any socket is made, with the option named in
 * the message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <llmb/err.h>
#include <llmb/listen.h>

static void test_loopback(void **state)
{
    (void)state;
    assert_true(llmb_listen_is_loopback("127.0.0.1:8080"));
    assert_true(llmb_listen_is_loopback("127.1.2.3:0"));
    assert_true(llmb_listen_is_loopback("localhost:80"));
    assert_true(llmb_listen_is_loopback("[::1]:8080"));
    assert_false(llmb_listen_is_loopback(":8080"));
    assert_false(llmb_listen_is_loopback("0.0.0.0:8080"));
    assert_false(llmb_listen_is_loopback("[::]:8080"));
    assert_false(llmb_listen_is_loopback("10.0.0.1:8080"));
    assert_false(llmb_listen_is_loopback("128.0.0.1:8080"));
    assert_false(llmb_listen_is_loopback("example.org:8080"));
    assert_false(llmb_listen_is_loopback("nonsense"));
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "nonsense", "127.0.0.1", "127.0.0.1:", "127.0.0.1:http",
        "127.0.0.1:65536", "127.0.0.1:123456", "[::1]8080", "[::1",
        ":-1", "",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *err = NULL;
        int fd = 7, port = 7;
        assert_int_equal(llmb_listen_tcp(bad[i], "--addr", &fd, &port, &err),
                         LLMB_EINVAL);
        assert_int_equal(fd, -1);
        assert_non_null(err);
        assert_non_null(strstr(err, "--addr must be HOST:PORT"));
        free(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
