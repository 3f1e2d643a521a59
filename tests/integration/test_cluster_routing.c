/*
 * lib/cluster.c against a real Redis Cluster (3 primaries, 3 replicas,
 * started by the ctest fixture "redis_cluster", tests/support/
 * redis-cluster.sh): hash slots agree with CLUSTER KEYSLOT, the router
 * loads the function library on every primary, sends each queue's calls
 * to the primary that owns it, follows MOVED after a slot moved, follows
 * ASK for a plain command and holds an FCALL back while its queue's slot
 * is half moved, never follows a redirection inside a transaction (the
 * transaction fails whole, its next try goes to the new owner), and
 * reads the map again over the connection it kept, only when it is wrong
 * and at most once per 100 ms.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include <llmb/cluster.h>
#include <llmb/err.h>
#include <llmb/functions.h>
#include <llmb/keys.h>
#include <llmb/util.h>

#include "fixture.h"
#include "test_cluster_support.h"

static char *prefix;

static int group_setup(void **state)
{
    (void)state;
    tc_read();
    prefix = llmb_test_prefix("cluster");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        redisContext *c = tc_node(tc_ports[i]);
        llmb_test_redis_del_prefix(c, prefix);
        redisFree(c);
    }
    free(prefix);
    return 0;
}

/* Our slot of many keys equals the server's: plain keys, queue keys,
 * tags that are empty, unclosed, nested or first of several. */
static void test_keyslot_matches_server(void **state)
{
    /* Each shape is a text before and after a random word. */
    static const char *shapes[][2] = {
        {"", ""}, {"{", "}"}, {"x{", "}y"}, {"{}", ""}, {"{", ""},
        {"", "}"}, {"a{{", "}}"}, {"{", "}{z}"}, {"llmb:{", "}:pending"},
        {"", "{}"}};
    enum { KEYS = 4000 };
    redisContext *c = tc_node(tc_ports[0]);
    char (*keys)[96] = llmb_xmalloc(KEYS * sizeof(*keys));
    (void)state;

    srand(17);
    for (int i = 0; i < KEYS; i++) {
        char word[40];
        int n = 1 + rand() % 30;
        for (int j = 0; j < n; j++)
            word[j] = (char)(33 + rand() % 94); /* printable, braces too */
        word[n] = '\0';
        snprintf(keys[i], sizeof(keys[i]), "%s%s%s", shapes[i % 10][0], word,
                 shapes[i % 10][1]);
        redisAppendCommand(c, "CLUSTER KEYSLOT %s", keys[i]);
    }
    for (int i = 0; i < KEYS; i++) {
        redisReply *r = NULL;
        assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        if ((unsigned)r->integer !=
            llmb_cluster_keyslot(keys[i], strlen(keys[i])))
            fail_msg("key \"%s\": server slot %lld, ours %u", keys[i],
                     r->integer, llmb_cluster_keyslot(keys[i],
                                                      strlen(keys[i])));
        freeReplyObject(r);
    }
    free(keys);
    redisFree(c);
}

/* Connecting loads the library on every primary (flushed first). */
static void test_connect_loads_library(void **state)
{
    struct llmb_cluster *cl = llmb_cluster_new(tc_url, "llmb-test", 5000);
    char *err = NULL;
    (void)state;

    for (int i = 0; i < 3; i++)
        freeReplyObject(tc_node_cmd(tc_ports[i], "FUNCTION FLUSH"));
    assert_true(llmb_cluster_enabled(cl));
    if (llmb_cluster_connect(cl, &err) != 0)
        fail_msg("connect: %s", err);
    assert_int_equal(llmb_cluster_nnodes(cl), 3);
    for (int i = 0; i < 3; i++) {
        redisReply *r = tc_node_cmd(tc_ports[i], "FCALL_RO llmb_version 0");
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        assert_int_equal(r->integer, llmb_lua_version);
        freeReplyObject(r);
    }
    llmb_cluster_free(cl);
}

static redisReply *push(struct llmb_cluster *cl, const char *queue,
                        const char *id)
{
    char *key = llmb_key_queue(prefix, queue);
    char *doc = llmb_xasprintf("{\"type\":\"noop\",\"id\":\"%s\"}", id);
    const char *argv[] = {"FCALL", "llmb_push", "1", key, doc};
    redisReply *r = llmb_cluster_command_argv(cl, key, 5, argv, NULL);

    free(key);
    free(doc);
    return r;
}

static long long stat_pending(struct llmb_cluster *cl, const char *queue)
{
    char *key = llmb_key_queue(prefix, queue);
    const char *argv[] = {"FCALL_RO", "llmb_stats", "1", key};
    redisReply *r = llmb_cluster_command_argv(cl, key, 4, argv, NULL);
    long long n = -1;

    if (r == NULL)
        fail_msg("llmb_stats %s: %s", queue, llmb_cluster_errstr(cl));
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (strcmp(r->element[i]->str, "pending") == 0)
            n = r->element[i + 1]->integer;
    freeReplyObject(r);
    free(key);
    return n;
}

/* Each queue's jobs are on the primary that owns the queue's slot, and
 * 30 queues use all three primaries. */
static void test_routes_by_slot(void **state)
{
    struct llmb_cluster *cl = llmb_cluster_new(tc_url, "llmb-test", 5000);
    int used[3] = {0, 0, 0};
    (void)state;

    assert_int_equal(llmb_cluster_connect(cl, NULL), 0);
    for (int q = 0; q < 30; q++) {
        char queue[16], *base;
        redisReply *r;
        int owner;

        snprintf(queue, sizeof(queue), "rq%d", q);
        r = push(cl, queue, "j1");
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_string_equal(r->str, "j1");
        freeReplyObject(r);
        base = llmb_key_queue(prefix, queue);
        owner = tc_owner_of(base);
        r = tc_node_cmd(owner, "FCALL_RO llmb_job 1 %s j1 state", base);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        assert_string_equal(r->element[0]->str, "pending");
        freeReplyObject(r);
        for (int i = 0; i < 3; i++)
            if (tc_ports[i] == owner)
                used[i]++;
        free(base);
    }
    for (int i = 0; i < 3; i++)
        assert_true(used[i] > 0);
    llmb_cluster_free(cl);
}

/* A queue whose slot moved is found again: MOVED refreshes the map. */
static void test_moved(void **state)
{
    struct llmb_cluster *cl = llmb_cluster_new(tc_url, "llmb-test", 5000);
    char *key = llmb_key_queue(prefix, "moved");
    unsigned slot = llmb_cluster_keyslot(key, strlen(key));
    int src, dst;
    redisReply *r;
    (void)state;

    assert_int_equal(llmb_cluster_connect(cl, NULL), 0);
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof(id), "m%d", i);
        r = push(cl, "moved", id);
        assert_non_null(r);
        freeReplyObject(r);
    }
    src = tc_owner_of(key);
    dst = tc_other_primary(src);
    tc_slot_move_begin(slot, src, dst);
    tc_slot_move_end(slot, src, dst);
    assert_int_equal(tc_owner_of(key), dst);
    /* The router still has the old map: the old owner answers MOVED. */
    assert_int_equal(stat_pending(cl, "moved"), 5);
    r = push(cl, "moved", "m5");
    assert_non_null(r);
    freeReplyObject(r);
    assert_int_equal(stat_pending(cl, "moved"), 6);
    free(key);
    llmb_cluster_free(cl);
}

/* The map is read only when it is wrong, and at most once per 100 ms:
 * none for calls on queues of every primary with nothing moving; none for
 * a burst of MOVED naming a primary of the map (the slot is pointed
 * there); asked again and again, at most one read per 100 ms elapsed. */
static void test_map_reads_bounded(void **state)
{
    struct llmb_cluster *cl = llmb_cluster_new(tc_url, "llmb-test", 5000);
    char *key = llmb_key_queue(prefix, "mapreads");
    unsigned slot = llmb_cluster_keyslot(key, strlen(key));
    long long reads;
    int64_t start, elapsed;
    int src, dst;
    redisReply *r;
    (void)state;

    assert_int_equal(llmb_cluster_connect(cl, NULL), 0);
    reads = llmb_cluster_map_reads(cl);
    assert_int_equal(reads, 1);
    for (int q = 0; q < 30; q++) {
        char queue[16];
        snprintf(queue, sizeof(queue), "mr%d", q);
        r = push(cl, queue, "x");
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        freeReplyObject(r);
    }
    assert_int_equal(llmb_cluster_map_reads(cl), reads);

    src = tc_owner_of(key);
    dst = tc_other_primary(src);
    tc_slot_move_begin(slot, src, dst);
    tc_slot_move_end(slot, src, dst);
    for (int i = 0; i < 10; i++) {
        char id[8];
        snprintf(id, sizeof(id), "m%d", i);
        r = push(cl, "mapreads", id);
        assert_non_null(r);
        assert_string_equal(r->str, id);
        freeReplyObject(r);
    }
    assert_int_equal(stat_pending(cl, "mapreads"), 10);
    assert_int_equal(llmb_cluster_map_reads(cl), reads);

    start = llmb_mono_ms();
    for (int i = 0; i < 200; i++)
        assert_int_equal(llmb_cluster_refresh(cl), 0);
    elapsed = llmb_mono_ms() - start;
    assert_true(llmb_cluster_map_reads(cl) - reads <= 1 + elapsed / 100);
    free(key);
    llmb_cluster_free(cl);
}

/* During a move, a plain command on a key already moved follows ASK; an
 * FCALL waits until the move ends, then runs at the new owner. */
static void test_ask_and_fcall_held(void **state)
{
    struct llmb_cluster *cl = llmb_cluster_new(tc_url, "llmb-test", 300);
    char *key = llmb_key_queue(prefix, "asked");
    char *plain = llmb_key_queue_sub(prefix, "asked", "plain");
    unsigned slot = llmb_cluster_keyslot(key, strlen(key));
    const char *get[] = {"GET", plain};
    int src, dst;
    redisReply *r;
    (void)state;

    assert_int_equal(llmb_cluster_connect(cl, NULL), 0);
    r = push(cl, "asked", "a0");
    assert_non_null(r);
    freeReplyObject(r);
    src = tc_owner_of(key);
    dst = tc_other_primary(src);
    freeReplyObject(tc_node_cmd(src, "SET %s here", plain));
    tc_slot_move_begin(slot, src, dst);
    r = tc_node_cmd(src, "MIGRATE 127.0.0.1 %d %s 0 5000", dst, plain);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);

    r = llmb_cluster_command_argv(cl, plain, 2, get, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "here");
    freeReplyObject(r);

    /* The base key never exists, so the source answers ASK to every
     * FCALL: it must not run at the importing node on half a queue. */
    r = push(cl, "asked", "a1");
    assert_null(r);
    assert_non_null(strstr(llmb_cluster_errstr(cl),
                           "the queue's slot is being migrated"));
    r = tc_node_cmd(dst, "EXISTS %s:pending", key);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);

    tc_slot_move_end(slot, src, dst);
    r = push(cl, "asked", "a1");
    assert_non_null(r);
    assert_string_equal(r->str, "a1");
    freeReplyObject(r);
    assert_int_equal(stat_pending(cl, "asked"), 2);
    free(key);
    free(plain);
    llmb_cluster_free(cl);
}

/* MULTI, SET, EXEC about a key whose slot moved: the SET queued in the
 * transaction is answered MOVED and not sent to the new owner alone
 * (where it would run outside the transaction); EXEC goes where MULTI
 * went and answers EXECABORT, the key is nowhere, and the transaction
 * sent again runs at the new owner. */
static void test_tx_not_split(void **state)
{
    struct llmb_cluster *cl = llmb_cluster_new(tc_url, "llmb-test", 5000);
    char *key = llmb_key_queue_sub(prefix, "txmoved", "owner");
    unsigned slot = llmb_cluster_keyslot(key, strlen(key));
    const char *multi[] = {"MULTI"};
    const char *set[] = {"SET", key, "split"};
    const char *exec[] = {"EXEC"};
    int src = tc_owner_of(key), dst = tc_other_primary(src);
    redisReply *r[3];
    char v[128];
    (void)state;

    assert_int_equal(llmb_cluster_connect(cl, NULL), 0);
    tc_slot_move_begin(slot, src, dst);
    tc_slot_move_end(slot, src, dst);
    r[0] = llmb_cluster_command_argv(cl, key, 1, multi, NULL);
    r[1] = llmb_cluster_command_argv(cl, key, 3, set, NULL);
    r[2] = llmb_cluster_command_argv(cl, key, 1, exec, NULL);
    tc_node_value(src, key, v, sizeof(v));
    assert_string_equal(v, "(nil)");
    tc_node_value(dst, key, v, sizeof(v));
    assert_string_equal(v, "(nil)");
    for (int i = 0; i < 3; i++)
        assert_non_null(r[i]);
    assert_string_equal(r[0]->str, "OK");
    assert_int_equal(r[1]->type, REDIS_REPLY_ERROR);
    assert_true(strncmp(r[1]->str, "MOVED ", 6) == 0);
    assert_int_equal(r[2]->type, REDIS_REPLY_ERROR);
    assert_true(strncmp(r[2]->str, "EXECABORT", 9) == 0);
    for (int i = 0; i < 3; i++)
        freeReplyObject(r[i]);

    set[2] = "whole";
    r[0] = llmb_cluster_command_argv(cl, key, 1, multi, NULL);
    r[1] = llmb_cluster_command_argv(cl, key, 3, set, NULL);
    r[2] = llmb_cluster_command_argv(cl, key, 1, exec, NULL);
    for (int i = 0; i < 3; i++)
        assert_non_null(r[i]);
    assert_string_equal(r[0]->str, "OK");
    assert_string_equal(r[1]->str, "QUEUED");
    assert_int_equal(r[2]->type, REDIS_REPLY_ARRAY);
    for (int i = 0; i < 3; i++)
        freeReplyObject(r[i]);
    tc_node_value(dst, key, v, sizeof(v));
    assert_string_equal(v, "whole");

    tc_slot_move_begin(slot, dst, src);
    tc_slot_move_end(slot, dst, src);
    freeReplyObject(tc_node_cmd(src, "DEL %s", key));
    free(key);
    llmb_cluster_free(cl);
}

/* Commands that do not name their key go where it lives; a pipeline over
 * keys of every primary answers in the order it was queued. */
static void test_auto_and_pipeline(void **state)
{
    struct llmb_cluster *cl = llmb_cluster_new(tc_url, "llmb-test", 5000);
    const char *tm[] = {"TIME"};
    redisReply *r;
    (void)state;

    assert_int_equal(llmb_cluster_connect(cl, NULL), 0);
    for (int i = 0; i < 30; i++) {
        char *k = llmb_xasprintf("%s:{p%d}:v", prefix, i);
        r = llmb_cluster_command(cl, "SET %s %d", k, i);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STATUS);
        freeReplyObject(r);
        free(k);
    }
    assert_int_equal(llmb_cluster_append_argv(cl, 1, tm, NULL), 0);
    for (int i = 0; i < 30; i++) {
        char *k = llmb_xasprintf("%s:{p%d}:v", prefix, i);
        const char *get[] = {"GET", k};
        assert_int_equal(llmb_cluster_append_argv(cl, 2, get, NULL), 0);
        free(k);
    }
    r = llmb_cluster_get_reply(cl);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    for (int i = 0; i < 30; i++) {
        char want[16];
        snprintf(want, sizeof(want), "%d", i);
        r = llmb_cluster_get_reply(cl);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_string_equal(r->str, want);
        freeReplyObject(r);
    }
    /* An FCALL's key is its first key. */
    {
        char *key = llmb_key_queue(prefix, "p7");
        r = llmb_cluster_command(cl, "FCALL_RO llmb_stats 1 %s", key);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        freeReplyObject(r);
        free(key);
    }
    llmb_cluster_free(cl);
}

/* The clients named name on every node of the cluster: their number,
 * and the id of the last one into *id. */
static int clients_named(const char *name, long long *id)
{
    char *want = llmb_xasprintf(" name=%s ", name);
    int n = 0;

    for (int i = 0; i < TC_NODES; i++) {
        redisReply *r = tc_node_cmd(tc_ports[i], "CLIENT LIST");
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        for (const char *line = r->str; line != NULL && *line != '\0';) {
            const char *eol = strchr(line, '\n');
            const char *hit = strstr(line, want);
            if (hit != NULL && (eol == NULL || hit < eol)) {
                assert_true(strncmp(line, "id=", 3) == 0);
                *id = strtoll(line + 3, NULL, 10);
                n++;
            }
            line = eol != NULL ? eol + 1 : NULL;
        }
        freeReplyObject(r);
    }
    free(want);
    return n;
}

/* Reading the map again asks the node of the last read over the
 * connection kept from then: the servers see one connection of the
 * router, the same one (CLIENT LIST id) after every refresh, and a
 * primary of the map. */
static void test_refresh_keeps_its_connection(void **state)
{
    char *name = llmb_test_prefix("maprefresh");
    struct llmb_cluster *cl = llmb_cluster_new(tc_url, name, 5000);
    long long first = -1, id = -1;
    (void)state;

    for (int round = 0; round < 5; round++) {
        assert_int_equal(llmb_cluster_refresh(cl), 0);
        assert_int_equal(clients_named(name, &id), 1);
        if (round == 0)
            first = id;
        assert_true(id == first);
    }
    llmb_cluster_free(cl);
    free(name);
}

/* Starts a lone cluster-mode node in dir and returns a connection to it,
 * its port in *port. The node also binds port + 10000 (the cluster bus),
 * which llmb_test_free_port() does not check, and another test may take
 * either port first: a node that does not answer within 10 s is tried
 * again on another port, its log printed. */
static redisContext *start_lone_node(const char *dir, int *port)
{
    const char *server = getenv("LLMB_REDIS_SERVER");

    for (int attempt = 0; attempt < 5; attempt++) {
        int p, attempt_rc;
        char *cmd;

        do
            p = llmb_test_free_port();
        while (p + 10000 > 65535);
        cmd = llmb_xasprintf(
            "rm -f %s/nodes.conf %s/redis.log; %s --port %d --bind "
            "127.0.0.1 --cluster-enabled yes --cluster-config-file "
            "%s/nodes.conf --dir %s --save '' --appendonly no --daemonize "
            "yes --pidfile %s/redis.pid --logfile %s/redis.log",
            dir, dir, server != NULL ? server : "redis-server", p, dir, dir,
            dir, dir);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        for (int i = 0; i < 200; i++) {
            struct timespec ts = {0, 50 * 1000000L};
            redisContext *c = redisConnect("127.0.0.1", p);
            redisReply *r = NULL;

            if (c != NULL && c->err == 0)
                r = redisCommand(c, "PING");
            if (r != NULL) {
                freeReplyObject(r);
                *port = p;
                return c;
            }
            redisFree(c);
            nanosleep(&ts, NULL);
        }
        fprintf(stderr, "cluster node on port %d did not answer; its log:\n",
                p);
        cmd = llmb_xasprintf("cat %s/redis.log >&2; kill $(cat "
                             "%s/redis.pid 2>/dev/null) 2>/dev/null", dir,
                             dir);
        attempt_rc = system(cmd); /* fails when nothing was left to stop */
        (void)attempt_rc;
        free(cmd);
    }
    fail_msg("no cluster node started in %s", dir);
    return NULL;
}

/* A node in cluster mode that was never given slots: connecting fails
 * with a message naming the node and what to do. */
static void test_no_slots(void **state)
{
    char dir[] = "/tmp/llmb-noslots-XXXXXX";
    int port = 0;
    struct llmb_cluster *cl;
    redisContext *c;
    redisReply *r;
    char *cmd, *url, *err = NULL, *want;
    (void)state;

    assert_non_null(mkdtemp(dir));
    c = start_lone_node(dir, &port);

    url = llmb_xasprintf("redis+cluster://127.0.0.1:%d", port);
    cl = llmb_cluster_new(url, NULL, 2000);
    assert_int_equal(llmb_cluster_connect(cl, &err), LLMB_EIO);
    want = llmb_xasprintf("redis cluster: 127.0.0.1:%d assigns no slot to "
                          "any primary; create the cluster (redis-cli "
                          "--cluster create) or assign the slots (CLUSTER "
                          "ADDSLOTS), then try again", port);
    assert_string_equal(err, want);
    llmb_cluster_free(cl);

    r = redisCommand(c, "SHUTDOWN NOSAVE");
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    cmd = llmb_xasprintf("rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(want);
    free(url);
    free(err);
}

/* A plain URL gives a router of one node owning every slot. */
static void test_single_server(void **state)
{
    struct llmb_cluster *cl = llmb_cluster_new(llmb_test_redis_url(),
                                               "llmb-test", 5000);
    const char *argv[] = {"PING"};
    redisReply *r;
    (void)state;

    assert_false(llmb_cluster_enabled(cl));
    assert_int_equal(llmb_cluster_connect(cl, NULL), 0);
    assert_int_equal(llmb_cluster_nnodes(cl), 1);
    assert_non_null(llmb_cluster_conn_for_key(cl, "anything"));
    r = llmb_cluster_command_argv(cl, "x", 1, argv, NULL);
    assert_non_null(r);
    assert_string_equal(r->str, "PONG");
    freeReplyObject(r);
    llmb_cluster_free(cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyslot_matches_server),
        cmocka_unit_test(test_connect_loads_library),
        cmocka_unit_test(test_routes_by_slot),
        cmocka_unit_test(test_moved),
        cmocka_unit_test(test_map_reads_bounded),
        cmocka_unit_test(test_ask_and_fcall_held),
        cmocka_unit_test(test_tx_not_split),
        cmocka_unit_test(test_auto_and_pipeline),
        cmocka_unit_test(test_refresh_keeps_its_connection),
        cmocka_unit_test(test_no_slots),
        cmocka_unit_test(test_single_server),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
