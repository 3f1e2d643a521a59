/*
 * Integration tests of the synchronous connection (lib/conn.c) and of the
 * library loading (lib/functions.c) against the fixture redis-server:
 * connect and load, reload after FUNCTION FLUSH, reconnect after a killed
 * connection, AUTH with an ACL user, SELECT, CLIENT SETNAME, unix sockets,
 * pipelining, timeouts and the exact error messages. RUN_SERIAL: it
 * flushes and replaces the function library that other tests use.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <libgen.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <llmb/conn.h>
#include <llmb/err.h>
#include <llmb/functions.h>
#include <llmb/url.h>
#include <llmb/util.h>

#include "fixture.h"

#define CLIENT_NAME "llmb-test-conn"

static const char *url;
static struct llmb_redis_url parsed;

static int group_setup(void **state)
{
    char *err = NULL;
    (void)state;
    url = llmb_test_redis_url();
    if (url == NULL)
        return -1;
    if (llmb_redis_url_parse(url, &parsed, &err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    llmb_redis_url_fini(&parsed);
    return 0;
}

static struct llmb_conn *connected(const char *u, const char *name)
{
    struct llmb_conn *c = llmb_conn_new(u, name, 5000);
    char *err = NULL;
    if (llmb_conn_connect(c, &err) != 0)
        fail_msg("connect %s: %s", u, err);
    assert_null(err);
    assert_non_null(llmb_conn_ctx(c));
    return c;
}

/* Runs a command that must answer an integer; returns it. */
static long long command_int(struct llmb_conn *c, const char *cmd)
{
    redisReply *r = llmb_conn_command(c, cmd);
    long long v;
    if (r == NULL)
        fail_msg("%s: %s", cmd, llmb_conn_errstr(c));
    if (r->type != REDIS_REPLY_INTEGER)
        fail_msg("%s: type %d %s", cmd, r->type,
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    v = r->integer;
    freeReplyObject(r);
    return v;
}

/* True when FUNCTION LIST shows a library named llmb. */
static int library_present(redisContext *c)
{
    redisReply *r = redisCommand(c, "FUNCTION LIST LIBRARYNAME llmb");
    int found = 0;
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *lib = r->element[i];
        for (size_t k = 0; k + 1 < lib->elements; k += 2)
            if (strcmp(lib->element[k]->str, "library_name") == 0 &&
                strcmp(lib->element[k + 1]->str, "llmb") == 0)
                found = 1;
    }
    freeReplyObject(r);
    return found;
}

static void test_connect_loads_library(void **state)
{
    redisContext *t = llmb_test_redis();
    struct llmb_conn *c;
    redisReply *r;
    (void)state;

    r = redisCommand(t, "FUNCTION FLUSH");
    freeReplyObject(r);
    assert_false(library_present(t));

    c = connected(url, CLIENT_NAME);
    assert_true(library_present(t));
    assert_int_equal(command_int(c, "FCALL_RO llmb_version 0"),
                     llmb_lua_version);

    /* Ensuring again is a no-op that succeeds. */
    {
        char *err = NULL;
        assert_int_equal(llmb_functions_ensure(llmb_conn_ctx(c), &err), 0);
        assert_null(err);
    }
    llmb_conn_free(c);
    redisFree(t);
}

static void test_reload_after_flush(void **state)
{
    struct llmb_conn *c = connected(url, CLIENT_NAME);
    redisReply *r;
    (void)state;

    r = llmb_conn_command(c, "FUNCTION FLUSH");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);

    /* FCALL answers "ERR Function not found"; the connection reloads the
     * library and retries. */
    assert_int_equal(command_int(c, "FCALL llmb_version 0"), llmb_lua_version);
    {
        const char *argv[] = {"FCALL_RO", "llmb_version", "0"};
        r = llmb_conn_commandargv(c, 3, argv, NULL);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        freeReplyObject(r);
    }

    /* A function that really does not exist is returned as the error. */
    r = llmb_conn_command(c, "FCALL llmb_no_such_function 0");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_string_equal(r->str, "ERR Function not found");
    freeReplyObject(r);
    llmb_conn_free(c);
}

static void test_reconnect_after_kill(void **state)
{
    struct llmb_conn *c = connected(url, CLIENT_NAME);
    redisContext *t = llmb_test_redis();
    long long id = command_int(c, "CLIENT ID"), id2;
    redisReply *r;
    (void)state;

    r = redisCommand(t, "CLIENT KILL ID %lld", id);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);

    /* The next command notices, reconnects once and succeeds. */
    id2 = command_int(c, "CLIENT ID");
    assert_true(id2 != id);
    llmb_conn_free(c);
    redisFree(t);
}

static void test_client_name(void **state)
{
    struct llmb_conn *c = connected(url, CLIENT_NAME);
    redisContext *t = llmb_test_redis();
    redisReply *r;
    (void)state;

    r = redisCommand(t, "CLIENT LIST");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_non_null(strstr(r->str, " name=" CLIENT_NAME " "));
    freeReplyObject(r);

    /* Names with spaces are refused by Redis, with a clear message. */
    {
        struct llmb_conn *bad = llmb_conn_new(url, "has space", 5000);
        char *err = NULL;
        assert_int_equal(llmb_conn_connect(bad, &err), LLMB_EREDIS);
        char *want = llmb_xasprintf("redis 127.0.0.1:%d: CLIENT SETNAME "
                                    "\"has space\" failed: ERR Client names "
                                    "cannot contain spaces, newlines or "
                                    "special characters.", parsed.port);
        assert_string_equal(err, want);
        free(want);
        free(err);
        llmb_conn_free(bad);
    }
    llmb_conn_free(c);
    redisFree(t);
}

static void test_acl_auth(void **state)
{
    redisContext *t = llmb_test_redis();
    char *user = llmb_test_prefix("user");
    char *good = NULL, *bad = NULL, *err = NULL;
    struct llmb_conn *c;
    redisReply *r;
    (void)state;

    r = redisCommand(t, "ACL SETUSER %s reset on >p@ss:w0rd ~* &* +@all",
                     user);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);

    /* The password needs escaping in the URL. */
    good = llmb_xasprintf("redis://%s:p%%40ss%%3Aw0rd@127.0.0.1:%d", user,
                          parsed.port);
    c = connected(good, CLIENT_NAME);
    r = llmb_conn_command(c, "ACL WHOAMI");
    assert_non_null(r);
    assert_string_equal(r->str, user);
    freeReplyObject(r);
    llmb_conn_free(c);

    bad = llmb_xasprintf("redis://%s:wrong@127.0.0.1:%d", user, parsed.port);
    c = llmb_conn_new(bad, NULL, 5000);
    assert_int_equal(llmb_conn_connect(c, &err), LLMB_EAUTH);
    {
        char *want = llmb_xasprintf("redis 127.0.0.1:%d refused the "
                                    "credentials of user \"%s\": "
                                    "WRONGPASS invalid username-password "
                                    "pair or user is disabled.", parsed.port,
                                    user);
        assert_string_equal(err, want);
        free(want);
    }
    assert_string_equal(llmb_conn_errstr(c), err);
    assert_null(llmb_conn_ctx(c));
    free(err);
    /* A command on a connection that cannot connect returns NULL. */
    assert_null(llmb_conn_command(c, "PING"));
    assert_non_null(strstr(llmb_conn_errstr(c), "WRONGPASS"));
    llmb_conn_free(c);

    r = redisCommand(t, "ACL DELUSER %s", user);
    freeReplyObject(r);
    free(good);
    free(bad);
    free(user);
    redisFree(t);
}

static void test_password_without_server_password(void **state)
{
    char *u = llmb_xasprintf("redis://:nope@127.0.0.1:%d", parsed.port);
    struct llmb_conn *c = llmb_conn_new(u, NULL, 5000);
    char *err = NULL;
    (void)state;

    assert_int_equal(llmb_conn_connect(c, &err), LLMB_EAUTH);
    {
        char *want = llmb_xasprintf("redis 127.0.0.1:%d refused the "
                                    "credentials of user \"default\": ERR "
                                    "AUTH <password> called without any "
                                    "password", parsed.port);
        assert_true(strncmp(err, want, strlen(want)) == 0);
        free(want);
    }
    assert_null(strstr(err, "nope"));
    free(err);
    llmb_conn_free(c);
    free(u);
}

/* A loopback port with nothing listening. */
static int closed_port(void)
{
    return llmb_test_free_port();
}

static void test_connection_refused(void **state)
{
    int port = closed_port();
    char *u = llmb_xasprintf("redis://127.0.0.1:%d", port);
    char *want = llmb_xasprintf("cannot connect to redis 127.0.0.1:%d: "
                                "Connection refused", port);
    struct llmb_conn *c = llmb_conn_new(u, NULL, 2000);
    char *err = NULL;
    (void)state;

    assert_int_equal(llmb_conn_connect(c, &err), LLMB_EIO);
    assert_string_equal(err, want);
    free(err);
    assert_null(llmb_conn_command(c, "PING"));
    assert_string_equal(llmb_conn_errstr(c), want);
    assert_int_equal(llmb_conn_append_argv(c, 1, (const char *[]){"PING"},
                                           NULL), LLMB_EIO);
    llmb_conn_free(c);
    free(want);
    free(u);
}

static void test_bad_url(void **state)
{
    struct llmb_conn *c = llmb_conn_new("redis://h:0", NULL, 1000);
    char *err = NULL;
    (void)state;

    assert_int_equal(llmb_conn_connect(c, &err), LLMB_ECONFIG);
    assert_string_equal(err, "redis URL \"redis://h:0\": port must be an "
                             "integer from 1 to 65535, got \"0\"");
    free(err);
    llmb_conn_free(c);
    llmb_conn_free(NULL);
}

static void test_select_db(void **state)
{
    char *u = llmb_xasprintf("redis://127.0.0.1:%d/3", parsed.port);
    char *key = llmb_test_prefix("select");
    struct llmb_conn *c = connected(u, NULL);
    redisContext *t = llmb_test_redis();
    redisReply *r;
    (void)state;

    r = llmb_conn_command(c, "SET %s here", key);
    freeReplyObject(r);
    r = redisCommand(t, "EXISTS %s", key);
    assert_int_equal(r->integer, 0); /* not in db 0 */
    freeReplyObject(r);
    r = redisCommand(t, "SELECT 3");
    freeReplyObject(r);
    r = redisCommand(t, "GETDEL %s", key);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "here");
    freeReplyObject(r);

    llmb_conn_free(c);
    redisFree(t);
    free(key);
    free(u);
}

static void test_unix_socket(void **state)
{
    const char *file = getenv("LLMB_TEST_REDIS_URL_FILE");
    char *dir, *path, line[256] = "";
    struct llmb_conn *c;
    FILE *f;
    (void)state;

    if (file == NULL)
        skip();
    dir = llmb_xstrdup(file);
    path = llmb_xasprintf("%s/redis.unix", dirname(dir));
    f = fopen(path, "r");
    free(path);
    free(dir);
    if (f == NULL)
        skip(); /* the fixture skips the socket when its path is too long */
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    line[strcspn(line, "\n")] = '\0';

    c = connected(line, CLIENT_NAME);
    assert_int_equal(command_int(c, "FCALL_RO llmb_version 0"),
                     llmb_lua_version);
    llmb_conn_free(c);
}

static void test_pipeline(void **state)
{
    struct llmb_conn *c = connected(url, NULL);
    char *key = llmb_test_prefix("pipe");
    const char *incr[] = {"INCR", key};
    const char *del[] = {"DEL", key};
    redisReply *r;
    (void)state;

    for (int i = 0; i < 3; i++)
        assert_int_equal(llmb_conn_append_argv(c, 2, incr, NULL), 0);
    assert_int_equal(llmb_conn_append_argv(c, 2, del, NULL), 0);
    for (long long i = 1; i <= 3; i++) {
        r = llmb_conn_get_reply(c);
        assert_non_null(r);
        assert_int_equal(r->integer, i);
        freeReplyObject(r);
    }
    r = llmb_conn_get_reply(c);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    llmb_conn_free(c);
    free(key);
}

static void test_timeout(void **state)
{
    struct llmb_conn *c = llmb_conn_new(url, NULL, 200);
    int64_t t0;
    redisReply *r;
    char *err = NULL;
    (void)state;

    assert_int_equal(llmb_conn_connect(c, &err), 0);
    t0 = llmb_mono_ms();
    /* The fixture allows DEBUG from localhost (another server may not:
     * then skip). The command times out, the reconnect times out too while
     * the server still sleeps. */
    r = llmb_conn_command(c, "DEBUG SLEEP 0.6");
    if (r != NULL && r->type == REDIS_REPLY_ERROR &&
        strstr(r->str, "not allowed") != NULL) {
        freeReplyObject(r);
        llmb_conn_free(c);
        skip();
    }
    assert_null(r);
    assert_true(llmb_mono_ms() - t0 < 3000);
    assert_true(strlen(llmb_conn_errstr(c)) > 0);

    /* Once the server is back, the same connection works again. */
    usleep(1500 * 1000);
    r = llmb_conn_command(c, "PING");
    assert_non_null(r);
    assert_string_equal(r->str, "PONG");
    freeReplyObject(r);
    llmb_conn_free(c);
}

static void test_version_rules(void **state)
{
    redisContext *t = llmb_test_redis();
    long long v = -1;
    char *err = NULL;
    redisReply *r;
    static const char newer[] =
        "#!lua name=llmb\n"
        "redis.register_function{function_name='llmb_version', "
        "callback=function() return 999999 end, flags={'no-writes'}}\n";
    static const char older[] =
        "#!lua name=llmb\n"
        "redis.register_function{function_name='llmb_version', "
        "callback=function() return 0 end, flags={'no-writes'}}\n";
    (void)state;

    /* A newer library is kept. */
    r = redisCommand(t, "FUNCTION LOAD REPLACE %s", newer);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    assert_int_equal(llmb_functions_ensure(t, &err), 0);
    assert_int_equal(llmb_functions_loaded_version(t, &v, &err), 0);
    assert_int_equal(v, 999999);

    /* An older one is replaced. */
    r = redisCommand(t, "FUNCTION LOAD REPLACE %s", older);
    freeReplyObject(r);
    assert_int_equal(llmb_functions_ensure(t, &err), 0);
    assert_int_equal(llmb_functions_loaded_version(t, &v, &err), 0);
    assert_int_equal(v, llmb_lua_version);

    /* One from before a layout (1..5 kept task fields apart, 6..29 a hash
     * per job) is replaced only when asked: jobs in flight are in another
     * layout. */
    for (int k = 0; k < 2; k++) {
        static const long long before[] = {5, 29};
        char lib[256], want[32];
        snprintf(lib, sizeof(lib),
                 "#!lua name=llmb\n"
                 "redis.register_function{function_name='llmb_version', "
                 "callback=function() return %lld end, "
                 "flags={'no-writes'}}\n", before[k]);
        snprintf(want, sizeof(want), "version %lld,", before[k]);
        r = redisCommand(t, "FUNCTION LOAD REPLACE %s", lib);
        freeReplyObject(r);
        unsetenv("LLMB_REPLACE_LIBRARY");
        assert_int_equal(llmb_functions_ensure(t, &err), LLMB_EVERSION);
        assert_non_null(strstr(err, want));
        assert_non_null(strstr(err, "LLMB_REPLACE_LIBRARY=1"));
        free(err);
        err = NULL;
        assert_int_equal(llmb_functions_loaded_version(t, &v, &err), 0);
        assert_int_equal(v, before[k]);
        setenv("LLMB_REPLACE_LIBRARY", "1", 1);
        assert_int_equal(llmb_functions_ensure(t, &err), 0);
        unsetenv("LLMB_REPLACE_LIBRARY");
        assert_int_equal(llmb_functions_loaded_version(t, &v, &err), 0);
        assert_int_equal(v, llmb_lua_version);
    }

    /* None at all reads as version 0, and is loaded. */
    r = redisCommand(t, "FUNCTION FLUSH");
    freeReplyObject(r);
    assert_int_equal(llmb_functions_loaded_version(t, &v, &err), 0);
    assert_int_equal(v, 0);
    assert_int_equal(llmb_functions_ensure(t, &err), 0);
    assert_int_equal(llmb_functions_loaded_version(t, &v, &err), 0);
    assert_int_equal(v, llmb_lua_version);
    redisFree(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_loads_library),
        cmocka_unit_test(test_reload_after_flush),
        cmocka_unit_test(test_reconnect_after_kill),
        cmocka_unit_test(test_client_name),
        cmocka_unit_test(test_acl_auth),
        cmocka_unit_test(test_password_without_server_password),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_bad_url),
        cmocka_unit_test(test_select_db),
        cmocka_unit_test(test_unix_socket),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_version_rules),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
