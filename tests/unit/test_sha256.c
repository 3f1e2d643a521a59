/*
 * Unit tests of llmb_sha256_* (lib/sha256.c): the FIPS 180-2 known
 * answers ("abc", the 448-bit message, one million 'a'), the empty input,
 * the same digest whatever the split of the input into updates, and the
 * raw digest against the hex one, and the count of bytes hashed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <llmb/sha256.h>

static const char abc_hex[] =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char msg448[] =
    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
static const char msg448_hex[] =
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
static const char million_a_hex[] =
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

/* The hex digest of len bytes of data, in updates of at most step bytes. */
static void digest(const char *data, size_t len, size_t step,
                   char hex[LLMB_SHA256_HEX + 1])
{
    struct llmb_sha256 s;

    llmb_sha256_init(&s);
    for (size_t off = 0; off < len; off += step)
        llmb_sha256_update(&s, data + off, len - off < step ? len - off : step);
    llmb_sha256_final(&s, hex);
}

static void test_empty(void **state)
{
    char hex[LLMB_SHA256_HEX + 1];

    (void)state;
    digest("", 0, 1, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb924"
                             "27ae41e4649b934ca495991b7852b855");
}

static void test_abc(void **state)
{
    char hex[LLMB_SHA256_HEX + 1];

    (void)state;
    digest("abc", 3, 3, hex);
    assert_string_equal(hex, abc_hex);
}

/* 56 bytes: the padding does not fit the block, a second one follows. */
static void test_448_bits(void **state)
{
    char hex[LLMB_SHA256_HEX + 1];

    (void)state;
    assert_int_equal(strlen(msg448), 56);
    digest(msg448, 56, 56, hex);
    assert_string_equal(hex, msg448_hex);
}

static void test_million_a(void **state)
{
    static char a[1000000];
    char hex[LLMB_SHA256_HEX + 1];

    (void)state;
    memset(a, 'a', sizeof(a));
    digest(a, sizeof(a), sizeof(a), hex);
    assert_string_equal(hex, million_a_hex);
    /* A step that is no divisor of the 64-byte block. */
    digest(a, sizeof(a), 1000, hex);
    assert_string_equal(hex, million_a_hex);
    digest(a, sizeof(a), 7, hex);
    assert_string_equal(hex, million_a_hex);
}

/* Every split of the input, byte by byte included, gives the same digest. */
static void test_any_split(void **state)
{
    char hex[LLMB_SHA256_HEX + 1];

    (void)state;
    for (size_t step = 1; step <= 57; step++) {
        digest(msg448, 56, step, hex);
        assert_string_equal(hex, msg448_hex);
    }
}

/* The hex digest spells the raw one, and final leaves the NUL after it. */
static void test_raw_matches_hex(void **state)
{
    struct llmb_sha256 s;
    unsigned char raw[LLMB_SHA256_LEN];
    char hex[LLMB_SHA256_HEX + 2], spelt[LLMB_SHA256_HEX + 1];

    (void)state;
    llmb_sha256_init(&s);
    llmb_sha256_update(&s, "ab", 2);
    llmb_sha256_update(&s, "c", 1);
    assert_int_equal(s.bytes, 3); /* llmb-push's size of its input */
    llmb_sha256_final_raw(&s, raw);
    for (size_t i = 0; i < LLMB_SHA256_LEN; i++)
        snprintf(spelt + 2 * i, 3, "%02x", (unsigned)raw[i]);
    assert_string_equal(spelt, abc_hex);

    memset(hex, 'x', sizeof(hex));
    llmb_sha256_init(&s);
    llmb_sha256_update(&s, "abc", 3);
    llmb_sha256_final(&s, hex);
    assert_int_equal(hex[LLMB_SHA256_HEX], '\0');
    assert_int_equal(hex[LLMB_SHA256_HEX + 1], 'x');
    assert_string_equal(hex, abc_hex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_abc),
        cmocka_unit_test(test_448_bits),
        cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_any_split),
        cmocka_unit_test(test_raw_matches_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
