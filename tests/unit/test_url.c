/*
 * Unit tests of lib/url.c: every accepted form of a Redis URL, every error
 * message, and password redaction.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/url.h>
#include <llmb/util.h>

/* Parses s, which must succeed. */
static void ok(const char *s, struct llmb_redis_url *u)
{
    char *err = NULL;
    int rc = llmb_redis_url_parse(s, u, &err);
    if (rc != 0)
        fail_msg("%s: %s", s, err ? err : "(no message)");
    assert_null(err);
}

/* Parses s, which must fail with exactly the message want. */
static void bad(const char *s, const char *want)
{
    struct llmb_redis_url u;
    char *err = NULL;

    assert_int_equal(llmb_redis_url_parse(s, &u, &err), LLMB_EINVAL);
    assert_non_null(err);
    assert_string_equal(err, want);
    assert_null(u.host);
    assert_null(u.password);
    free(err);
    /* Without errstr too. */
    assert_int_equal(llmb_redis_url_parse(s, &u, NULL), LLMB_EINVAL);
}

static void test_host_only(void **state)
{
    struct llmb_redis_url u;
    (void)state;

    ok("redis://cache.internal", &u);
    assert_string_equal(u.host, "cache.internal");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_null(u.user);
    assert_null(u.password);
    assert_null(u.socket_path);
    llmb_redis_url_fini(&u);
    assert_null(u.host);
}

static void test_defaults(void **state)
{
    struct llmb_redis_url u;
    (void)state;

    ok("redis://", &u);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    llmb_redis_url_fini(&u);

    ok("redis://:6380", &u);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6380);
    llmb_redis_url_fini(&u);

    ok("REDIS://h/", &u);
    assert_string_equal(u.host, "h");
    assert_int_equal(u.db, 0);
    llmb_redis_url_fini(&u);
}

static void test_host_port_db(void **state)
{
    struct llmb_redis_url u;
    (void)state;

    ok("redis://10.0.0.5:7000", &u);
    assert_string_equal(u.host, "10.0.0.5");
    assert_int_equal(u.port, 7000);
    llmb_redis_url_fini(&u);

    ok("redis://h:1/15", &u);
    assert_int_equal(u.port, 1);
    assert_int_equal(u.db, 15);
    llmb_redis_url_fini(&u);

    ok("redis://h:65535/0", &u);
    assert_int_equal(u.port, 65535);
    llmb_redis_url_fini(&u);
}

static void test_user_password(void **state)
{
    struct llmb_redis_url u;
    (void)state;

    ok("redis://alice:s3cret@h:6390/2", &u);
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.password, "s3cret");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 2);
    llmb_redis_url_fini(&u);

    ok("redis://:onlypass@h", &u);
    assert_null(u.user);
    assert_string_equal(u.password, "onlypass");
    assert_int_equal(u.port, 6379);
    llmb_redis_url_fini(&u);

    /* Empty user and password: no AUTH. */
    ok("redis://:@h", &u);
    assert_null(u.user);
    assert_null(u.password);
    llmb_redis_url_fini(&u);
}

static void test_percent_decoding(void **state)
{
    struct llmb_redis_url u;
    (void)state;

    ok("redis://us%3Aer:p%40ss%2Fw%25rd@h", &u);
    assert_string_equal(u.user, "us:er");
    assert_string_equal(u.password, "p@ss/w%rd");
    llmb_redis_url_fini(&u);

    /* Unescaped '@', '/' and ':' in a password still work: the password
     * runs from the first ':' to the last '@'. */
    ok("redis://:a@b/c:d@h:7/1", &u);
    assert_string_equal(u.password, "a@b/c:d");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 7);
    assert_int_equal(u.db, 1);
    llmb_redis_url_fini(&u);
}

static void test_ipv6(void **state)
{
    struct llmb_redis_url u;
    (void)state;

    ok("redis://[::1]:6379", &u);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6379);
    llmb_redis_url_fini(&u);

    ok("redis://:pw@[fe80::1%25eth0]:6400/3", &u);
    assert_string_equal(u.host, "fe80::1%25eth0");
    assert_int_equal(u.port, 6400);
    assert_int_equal(u.db, 3);
    assert_string_equal(u.password, "pw");
    llmb_redis_url_fini(&u);

    ok("redis://[2001:db8::7]", &u);
    assert_string_equal(u.host, "2001:db8::7");
    assert_int_equal(u.port, 6379);
    llmb_redis_url_fini(&u);
}

static void test_unix(void **state)
{
    struct llmb_redis_url u;
    (void)state;

    ok("unix:///run/redis/redis.sock", &u);
    assert_string_equal(u.socket_path, "/run/redis/redis.sock");
    assert_null(u.host);
    assert_int_equal(u.port, 0);
    assert_int_equal(u.db, 0);
    llmb_redis_url_fini(&u);

    ok("unix:///tmp/r.sock?db=4", &u);
    assert_string_equal(u.socket_path, "/tmp/r.sock");
    assert_int_equal(u.db, 4);
    llmb_redis_url_fini(&u);

    ok("unix:///tmp/my%20r.sock?db=1&user=bob&password=p%26w", &u);
    assert_string_equal(u.socket_path, "/tmp/my r.sock");
    assert_int_equal(u.db, 1);
    assert_string_equal(u.user, "bob");
    assert_string_equal(u.password, "p&w");
    llmb_redis_url_fini(&u);
}

/* A cluster or sentinel URL names at most 64 nodes: 64 parse, 65 are
 * refused with a message saying why. */
static void test_seeds_max(void **state)
{
    static const char *const schemes[] = {"redis+cluster://",
                                          "redis+sentinel://"};
    (void)state;

    for (size_t k = 0; k < 2; k++) {
        struct llmb_buf b;
        struct llmb_redis_url u;
        char *want;

        llmb_buf_init(&b);
        llmb_buf_appendf(&b, "%s", schemes[k]);
        for (int i = 0; i < 64; i++)
            llmb_buf_appendf(&b, "%sn%d:7000", i > 0 ? "," : "", i);
        if (k == 1)
            llmb_buf_appendf(&b, "/mymaster");
        ok(b.data, &u);
        assert_int_equal(u.nseeds, 64);
        assert_string_equal(u.seeds[63].host, "n63");
        llmb_redis_url_fini(&u);
        llmb_buf_fini(&b);

        llmb_buf_init(&b);
        llmb_buf_appendf(&b, "%s", schemes[k]);
        for (int i = 0; i < 65; i++)
            llmb_buf_appendf(&b, "%sn%d:7000", i > 0 ? "," : "", i);
        if (k == 1)
            llmb_buf_appendf(&b, "/mymaster");
        want = llmb_xasprintf("redis URL \"%s\": more than 64 nodes; a few "
                              "of them are enough to find the others",
                              b.data);
        bad(b.data, want);
        free(want);
        llmb_buf_fini(&b);
    }
}

static void test_cluster(void **state)
{
    struct llmb_redis_url u;
    (void)state;

    ok("redis+cluster://:s%40cret@10.0.0.1:7000,node-b,[::1]:7002/0", &u);
    assert_true(u.cluster);
    assert_int_equal(u.nseeds, 3);
    assert_string_equal(u.seeds[0].host, "10.0.0.1");
    assert_int_equal(u.seeds[0].port, 7000);
    assert_string_equal(u.seeds[1].host, "node-b");
    assert_int_equal(u.seeds[1].port, 6379);
    assert_string_equal(u.seeds[2].host, "::1");
    assert_int_equal(u.seeds[2].port, 7002);
    assert_string_equal(u.host, "10.0.0.1");
    assert_int_equal(u.port, 7000);
    assert_null(u.user);
    assert_string_equal(u.password, "s@cret");
    assert_int_equal(u.db, 0);
    llmb_redis_url_fini(&u);
    assert_null(u.seeds);
    assert_int_equal(u.nseeds, 0);

    ok("REDIS+CLUSTER://h", &u);
    assert_true(u.cluster);
    assert_int_equal(u.nseeds, 1);
    assert_string_equal(u.seeds[0].host, "h");
    llmb_redis_url_fini(&u);

    ok("redis://h", &u);
    assert_false(u.cluster);
    assert_int_equal(u.nseeds, 0);
    llmb_redis_url_fini(&u);

    bad("redis+cluster://", "redis URL \"redis+cluster://\": name at least "
        "one node, like redis+cluster://10.0.0.1:7000,10.0.0.2:7000");
    bad("redis+cluster://a:1,,b:2", "redis URL \"redis+cluster://a:1,,b:2\": "
        "empty node name in the list (two commas, or one at an end)");
    bad("redis+cluster://a:1,", "redis URL \"redis+cluster://a:1,\": empty "
        "node name in the list (two commas, or one at an end)");
    bad("redis+cluster://a:1,b:0", "redis URL \"redis+cluster://a:1,b:0\": "
        "port must be an integer from 1 to 65535, got \"0\"");
    bad("redis+cluster://a/1", "redis URL \"redis+cluster://a/1\": a "
        "cluster has only database 0, got \"1\"");
    bad("redis+cluster://:pw@a?x", "redis URL \"redis+cluster://:***@a?x\": "
        "unexpected \"?x\" at the end (only "
        "redis+cluster://[[user]:password@]host[:port][,host[:port]]... is "
        "accepted)");
}

static void test_sentinel(void **state)
{
    struct llmb_redis_url u;
    char *a;
    (void)state;

    ok("redis+sentinel://:s%40cret@s1,s2:26380,[::1]/my%2Fmaster"
       "?db=3&sentinel_user=sen&sentinel_password=p%26w", &u);
    assert_true(u.sentinel);
    assert_false(u.cluster);
    assert_null(u.host);
    assert_int_equal(u.nseeds, 3);
    assert_string_equal(u.seeds[0].host, "s1");
    assert_int_equal(u.seeds[0].port, 26379);
    assert_string_equal(u.seeds[1].host, "s2");
    assert_int_equal(u.seeds[1].port, 26380);
    assert_string_equal(u.seeds[2].host, "::1");
    assert_int_equal(u.seeds[2].port, 26379);
    assert_string_equal(u.master_name, "my/master");
    assert_null(u.user);
    assert_string_equal(u.password, "s@cret");
    assert_int_equal(u.db, 3);
    assert_string_equal(u.sentinel_user, "sen");
    assert_string_equal(u.sentinel_password, "p&w");
    a = llmb_redis_url_address(&u);
    assert_string_equal(a, "sentinel:my/master");
    free(a);
    llmb_redis_url_fini(&u);
    assert_null(u.master_name);
    assert_null(u.sentinel_password);

    ok("redis+sentinel://127.0.0.1:26379/mymaster", &u);
    assert_true(u.sentinel);
    assert_null(u.password);
    assert_null(u.sentinel_password);
    assert_int_equal(u.db, 0);
    llmb_redis_url_fini(&u);

    bad("redis+sentinel://", "redis URL \"redis+sentinel://\": name at "
        "least one sentinel, like "
        "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster");
    bad("redis+sentinel://s1:26379", "redis URL \"redis+sentinel://s1:26379\""
        ": the name of the primary at the sentinels is missing, like "
        "redis+sentinel://host:26379/mymaster");
    bad("redis+sentinel://s1/", "redis URL \"redis+sentinel://s1/\": the "
        "name of the primary at the sentinels is missing, like "
        "redis+sentinel://host:26379/mymaster");
    bad("redis+sentinel://s1/m/2", "redis URL \"redis+sentinel://s1/m/2\": "
        "unexpected \"/2\" after the primary's name (choose the database "
        "with ?db=N)");
    bad("redis+sentinel://s1/m?password=x", "redis URL "
        "\"redis+sentinel://s1/m?password=***\": unknown parameter "
        "\"password\" (known: db, sentinel_user, sentinel_password)");
    bad("redis+sentinel://s1/m?sentinel_user=u", "redis URL "
        "\"redis+sentinel://s1/m?sentinel_user=u\": sentinel_user \"u\" has "
        "no sentinel_password");
    bad("redis+sentinel://s1,,s2/m", "redis URL \"redis+sentinel://s1,,s2/m\""
        ": empty node name in the list (two commas, or one at an end)");
}

static void test_errors(void **state)
{
    (void)state;
    bad("", "redis URL is empty; expected redis://host:port, "
            "redis+cluster://host:port,host:port, "
            "redis+sentinel://host:port,host:port/NAME or unix:///path");
    bad(NULL, "redis URL is empty; expected redis://host:port, "
              "redis+cluster://host:port,host:port, "
              "redis+sentinel://host:port,host:port/NAME or unix:///path");
    bad("localhost:6379",
        "redis URL \"localhost:6379\" must start with redis://, "
        "redis+cluster://, redis+sentinel:// or unix://");
    bad("http://h", "redis URL \"http://h\" must start with redis://, "
                    "redis+cluster://, redis+sentinel:// or unix://");
    bad("rediss://h:6380", "redis URL \"rediss://h:6380\": TLS (rediss://) "
                           "is not supported by this build; use redis://, "
                           "redis+cluster://, redis+sentinel:// or unix://");
    bad("redis://h:0", "redis URL \"redis://h:0\": port must be an integer "
                       "from 1 to 65535, got \"0\"");
    bad("redis://h:65536", "redis URL \"redis://h:65536\": port must be an "
                           "integer from 1 to 65535, got \"65536\"");
    bad("redis://h:", "redis URL \"redis://h:\": port must be an integer "
                      "from 1 to 65535, got \"\"");
    bad("redis://h:abc", "redis URL \"redis://h:abc\": port must be an "
                         "integer from 1 to 65535, got \"abc\"");
    bad("redis://h/x", "redis URL \"redis://h/x\": database must be an "
                       "integer >= 0, got \"x\"");
    bad("redis://h/-1", "redis URL \"redis://h/-1\": database must be an "
                        "integer >= 0, got \"-1\"");
    bad("redis://h/0/1", "redis URL \"redis://h/0/1\": database must be an "
                         "integer >= 0, got \"0/1\"");
    bad("redis://h?db=1", "redis URL \"redis://h?db=1\": unexpected "
                          "\"?db=1\" at the end (only "
                          "redis://[[user]:password@]host[:port][/db] is "
                          "accepted)");
    bad("redis://::1:6379", "redis URL \"redis://::1:6379\": IPv6 addresses "
                            "must be in brackets, like "
                            "redis://[::1]:6379");
    bad("redis://[::1:6379", "redis URL \"redis://[::1:6379\": missing "
                             "\"]\" after the IPv6 address");
    bad("redis://[::1]x", "redis URL \"redis://[::1]x\": unexpected \"x\" "
                          "after the IPv6 address");
    bad("redis://[]", "redis URL \"redis://[]\": empty IPv6 address \"[]\"");
    bad("redis://bad host", "redis URL \"redis://bad host\": bad host "
                            "\"bad host\"");
    bad("redis://alice@h", "redis URL \"redis://alice@h\": \"alice@\" has "
                           "no password; write redis://:PASSWORD@host or "
                           "redis://USER:PASSWORD@host");
    bad("redis://alice:@h", "redis URL \"redis://alice:@h\": user "
                            "\"alice\" has an empty password");
    bad("redis://:p%4@h", "redis URL \"redis://:***@h\": bad %-escape in "
                          "the password");
    bad("redis://:p%00x@h", "redis URL \"redis://:***@h\": bad %-escape in "
                            "the password");
    bad("redis://u%zz:p@h", "redis URL \"redis://u%zz:***@h\": bad "
                            "%-escape in the user name");
    bad("unix://run/redis.sock", "redis URL \"unix://run/redis.sock\": the "
                                 "socket path must be absolute, like "
                                 "unix:///run/redis/redis.sock");
    bad("unix://", "redis URL \"unix://\": the socket path must be "
                   "absolute, like unix:///run/redis/redis.sock");
    bad("unix:///s?db=x", "redis URL \"unix:///s?db=x\": database must be "
                          "an integer >= 0, got \"x\"");
    bad("unix:///s?timeout=3", "redis URL \"unix:///s?timeout=3\": unknown "
                               "parameter \"timeout\" (known: db, user, "
                               "password)");
    bad("unix:///s?user=bob", "redis URL \"unix:///s?user=bob\": user "
                              "\"bob\" has no password");
    bad("unix:///s?password=%zz", "redis URL \"unix:///s?password=***\": "
                                  "bad %-escape in parameter \"password\"");
    bad("unix:///s#x", "redis URL \"unix:///s#x\": unexpected \"#x\" at the "
                       "end");
}

static void test_errors_never_show_the_password(void **state)
{
    struct llmb_redis_url u;
    char *err = NULL;
    (void)state;

    assert_int_equal(llmb_redis_url_parse("redis://bob:hunter2@h:99999", &u,
                                          &err), LLMB_EINVAL);
    assert_null(strstr(err, "hunter2"));
    assert_non_null(strstr(err, "redis://bob:***@h:99999"));
    free(err);

    /* An unescaped '/' in a sentinel URL's password ends the list of
     * sentinels: the text before it is no host or port to repeat. */
    err = NULL;
    assert_int_equal(llmb_redis_url_parse("redis+sentinel://:pa/ss@h1/m",
                                          &u, &err), LLMB_EINVAL);
    assert_null(strstr(err, "pa"));
    assert_null(strstr(err, "ss"));
    assert_non_null(strstr(err, "redis+sentinel://:***@h1/m"));
    free(err);

    err = NULL;
    assert_int_equal(llmb_redis_url_parse("redis+sentinel://:p/a!b@h1/m",
                                          &u, &err), LLMB_EINVAL);
    assert_null(strstr(err, "a!b"));
    free(err);

    err = NULL;
    assert_int_equal(llmb_redis_url_parse("redis+sentinel://s1:26379/m?"
                                          "sentinel_password=ab@cd&db=x",
                                          &u, &err), LLMB_EINVAL);
    assert_null(strstr(err, "ab@cd"));
    assert_null(strstr(err, "@cd"));
    free(err);
}

static void test_redacted(void **state)
{
    struct {
        const char *in, *out;
    } cases[] = {
        {"redis://h:6379", "redis://h:6379"},
        {"redis://:pw@h:6379/1", "redis://:***@h:6379/1"},
        {"redis://alice:pw@h", "redis://alice:***@h"},
        {"redis://:a@b/c@h", "redis://:***@h"},
        {"redis://alice@h", "redis://alice@h"},
        {"redis://:@h", "redis://:@h"},
        {"unix:///s?db=1&password=x&user=u", "unix:///s?db=1&password=***&user=u"},
        {"unix:///s?password=x", "unix:///s?password=***"},
        {"redis+sentinel://:pw@s1,s2/m?db=1&sentinel_password=x",
         "redis+sentinel://:***@s1,s2/m?db=1&sentinel_password=***"},
        {"redis+sentinel://s1:26379/m?sentinel_password=ab@cd",
         "redis+sentinel://s1:26379/m?sentinel_password=***"},
        {"redis+sentinel://:pw@s1/m?sentinel_password=x@y",
         "redis+sentinel://:***@s1/m?sentinel_password=***"},
        {"redis+sentinel://u:p@w@s1/m?db=0&sentinel_password=a@b&x=1",
         "redis+sentinel://u:***@s1/m?db=0&sentinel_password=***&x=1"},
        {"unix:///s?password=a@b", "unix:///s?password=***"},
        {"redis+sentinel://:pa/ss@h1/m", "redis+sentinel://:***@h1/m"},
        {"garbage", "garbage"},
        {"", ""},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *r = llmb_redis_url_redacted(cases[i].in);
        assert_string_equal(r, cases[i].out);
        free(r);
    }
}

static void test_address(void **state)
{
    struct llmb_redis_url u;
    char *a;
    (void)state;

    ok("redis://:pw@h:7", &u);
    a = llmb_redis_url_address(&u);
    assert_string_equal(a, "h:7");
    free(a);
    llmb_redis_url_fini(&u);

    ok("redis://[::1]:8", &u);
    a = llmb_redis_url_address(&u);
    assert_string_equal(a, "[::1]:8");
    free(a);
    llmb_redis_url_fini(&u);

    ok("unix:///tmp/r.sock", &u);
    a = llmb_redis_url_address(&u);
    assert_string_equal(a, "unix:/tmp/r.sock");
    free(a);
    llmb_redis_url_fini(&u);
}

static void test_hostport(void **state)
{
    char *a;
    (void)state;

    a = llmb_hostport("10.0.0.1", 6379);
    assert_string_equal(a, "10.0.0.1:6379");
    free(a);
    a = llmb_hostport("fe80::1", 7000);
    assert_string_equal(a, "[fe80::1]:7000");
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_only),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_host_port_db),
        cmocka_unit_test(test_user_password),
        cmocka_unit_test(test_percent_decoding),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_unix),
        cmocka_unit_test(test_cluster),
        cmocka_unit_test(test_sentinel),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_errors_never_show_the_password),
        cmocka_unit_test(test_redacted),
        cmocka_unit_test(test_address),
        cmocka_unit_test(test_seeds_max),
        cmocka_unit_test(test_hostport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
