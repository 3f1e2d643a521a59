/*
 * Unit tests of the pure parts of lib/cluster.c: CRC16 and hash slots
 * (the examples of the Redis Cluster specification), MOVED and ASK
 * parsing, slot maps read from CLUSTER SHARDS and CLUSTER SLOTS replies
 * (RESP text fed to the hiredis reader, no sockets), and which commands
 * are part of a connection's transaction.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <llmb/cluster.h>
#include <llmb/err.h>

static unsigned slot_of(const char *key)
{
    return llmb_cluster_keyslot(key, strlen(key));
}

static void test_crc16(void **state)
{
    (void)state;
    /* The check value of CRC16-CCITT (XMODEM), as in the Redis spec. */
    assert_int_equal(llmb_crc16("123456789", 9), 0x31C3);
    assert_int_equal(llmb_crc16("", 0), 0);
}

static void test_keyslot(void **state)
{
    (void)state;
    assert_int_equal(slot_of("foo"), 12182);
    assert_int_equal(slot_of("bar"), 5061);
    /* The hash tag: the bytes between the first { and the next }. */
    assert_int_equal(slot_of("{user1000}.following"),
                     slot_of("{user1000}.followers"));
    assert_int_equal(slot_of("{user1000}.following"), slot_of("user1000"));
    /* An empty tag hashes the whole key. */
    assert_int_equal(slot_of("foo{}{bar}"),
                     llmb_crc16("foo{}{bar}", 10) & 16383);
    assert_int_equal(slot_of("foo{{bar}}zap"), slot_of("{bar"));
    assert_int_equal(slot_of("foo{bar}{zap}"), slot_of("bar"));
    assert_int_equal(slot_of("foo{bar"), llmb_crc16("foo{bar", 7) & 16383);
    /* Every key of a queue lands in the slot of its base key. */
    assert_int_equal(slot_of("llmb:{default}:pending"),
                     slot_of("llmb:{default}"));
    assert_int_equal(slot_of("other:{default}:j:abc"), slot_of("default"));
    /* Binary-safe: a NUL inside the key counts. */
    assert_int_not_equal(llmb_cluster_keyslot("a\0b", 3),
                         llmb_cluster_keyslot("a", 1));
}

static void test_redirect(void **state)
{
    struct llmb_redirect rd;
    (void)state;

    assert_int_equal(llmb_redirect_parse("MOVED 3999 127.0.0.1:6381", &rd),
                     LLMB_REDIRECT_MOVED);
    assert_int_equal(rd.slot, 3999);
    assert_string_equal(rd.host, "127.0.0.1");
    assert_int_equal(rd.port, 6381);
    assert_int_equal(llmb_redirect_parse("ASK 16383 ::1:7000", &rd),
                     LLMB_REDIRECT_ASK);
    assert_int_equal(rd.slot, 16383);
    assert_string_equal(rd.host, "::1");
    assert_int_equal(rd.port, 7000);
    assert_int_equal(llmb_redirect_parse("MOVED 16384 h:1", &rd),
                     LLMB_REDIRECT_NONE);
    assert_int_equal(rd.kind, LLMB_REDIRECT_NONE);
    assert_int_equal(llmb_redirect_parse("MOVED 1 h:0", &rd),
                     LLMB_REDIRECT_NONE);
    assert_int_equal(llmb_redirect_parse("MOVED 1 h", &rd),
                     LLMB_REDIRECT_NONE);
    assert_int_equal(llmb_redirect_parse("MOVED x h:1", &rd),
                     LLMB_REDIRECT_NONE);
    assert_int_equal(llmb_redirect_parse("MOVED 1 :1", &rd),
                     LLMB_REDIRECT_NONE);
    assert_int_equal(llmb_redirect_parse("ERR unknown command", &rd),
                     LLMB_REDIRECT_NONE);
    assert_int_equal(llmb_redirect_parse(NULL, &rd), LLMB_REDIRECT_NONE);
}

/* Parses RESP text into a reply. */
static redisReply *resp(const char *text)
{
    redisReader *rd = redisReaderCreate();
    void *r = NULL;

    assert_int_equal(redisReaderFeed(rd, text, strlen(text)), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
    assert_non_null(r);
    redisReaderFree(rd);
    return r;
}

static void test_slotmap_shards(void **state)
{
    struct llmb_slotmap m;
    char *err = NULL;
    /* Two shards: 0-99 and 200-16383 on a primary whose endpoint is "?"
     * (its ip is used); slots 100-199 unassigned; a third shard without
     * slots (a failed primary). */
    redisReply *r = resp(
        "*3\r\n"
        "*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:99\r\n$5\r\nnodes\r\n*2\r\n"
        "*8\r\n$2\r\nid\r\n$1\r\na\r\n$4\r\nport\r\n:7000\r\n"
        "$8\r\nendpoint\r\n$8\r\n10.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n"
        "*8\r\n$2\r\nid\r\n$1\r\nb\r\n$4\r\nport\r\n:7001\r\n"
        "$8\r\nendpoint\r\n$8\r\n10.0.0.2\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
        "*4\r\n$5\r\nslots\r\n*2\r\n:200\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n"
        "*8\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$4\r\nport\r\n:7002\r\n"
        "$8\r\nendpoint\r\n$1\r\n?\r\n$2\r\nip\r\n$8\r\n10.0.0.3\r\n"
        "*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*0\r\n");
    (void)state;

    assert_int_equal(llmb_slotmap_parse(r, true, &m, &err), 0);
    assert_null(err);
    assert_int_equal(m.nnodes, 2);
    assert_string_equal(m.nodes[0].host, "10.0.0.2");
    assert_int_equal(m.nodes[0].port, 7001);
    assert_string_equal(m.nodes[1].host, "10.0.0.3");
    assert_int_equal(m.nodes[1].port, 7002);
    assert_int_equal(m.owner[0], 0);
    assert_int_equal(m.owner[99], 0);
    assert_int_equal(m.owner[100], -1);
    assert_int_equal(m.owner[199], -1);
    assert_int_equal(m.owner[200], 1);
    assert_int_equal(m.owner[16383], 1);
    llmb_slotmap_fini(&m);
    freeReplyObject(r);

    /* A slot range past 16383 is no slot map. */
    r = resp("*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16384\r\n$5\r\nnodes"
             "\r\n*1\r\n*6\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$4\r\nport\r\n"
             ":1\r\n$2\r\nip\r\n$1\r\nh\r\n");
    assert_int_equal(llmb_slotmap_parse(r, true, &m, &err), LLMB_EPROTO);
    assert_string_equal(err, "CLUSTER SHARDS answered an array of 1 "
                             "elements, not a slot map");
    assert_int_equal(m.nnodes, 0);
    free(err);
    freeReplyObject(r);
}

static void test_slotmap_slots(void **state)
{
    struct llmb_slotmap m;
    char *err = NULL;
    redisReply *r = resp(
        "*2\r\n"
        "*4\r\n:0\r\n:8191\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$1\r\na\r\n"
        "*3\r\n$9\r\n127.0.0.1\r\n:7003\r\n$1\r\nd\r\n"
        "*3\r\n:8192\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:7001\r\n");
    (void)state;

    assert_int_equal(llmb_slotmap_parse(r, false, &m, &err), 0);
    assert_int_equal(m.nnodes, 2);
    assert_int_equal(m.nodes[0].port, 7000);
    assert_int_equal(m.nodes[1].port, 7001);
    assert_int_equal(m.owner[8191], 0);
    assert_int_equal(m.owner[8192], 1);
    llmb_slotmap_fini(&m);
    freeReplyObject(r);

    r = resp("-ERR This instance has cluster support disabled\r\n");
    assert_int_equal(llmb_slotmap_parse(r, false, &m, &err), LLMB_EPROTO);
    assert_non_null(strstr(err, "CLUSTER SLOTS answered the error ERR This "
                                "instance has cluster support disabled"));
    free(err);
    freeReplyObject(r);
}

/* Which commands are part of a connection's transaction: those inside
 * MULTI (EXEC too), and under WATCH alone only those of the slot
 * watched; EXEC, DISCARD, RESET end it, UNWATCH only outside MULTI. */
static void test_txstate(void **state)
{
    struct llmb_txstate t, n;
    (void)state;

    llmb_txstate_init(&t);
    assert_false(llmb_txstate_send(&t, "SET", 7, &n));
    assert_false(llmb_txstate_ends(&t, "EXEC", 7));
    assert_true(llmb_txstate_send(&t, "multi", 7, &n));
    t = n;
    assert_true(llmb_txstate_send(&t, "SET", 7, &n));
    assert_true(llmb_txstate_send(&t, "GET", 9, &n)); /* queued too */
    assert_true(llmb_txstate_send(&t, "UNWATCH", 7, &n));
    assert_int_equal(n.multi, 7);
    assert_true(llmb_txstate_ends(&t, "EXEC", 7));
    assert_false(llmb_txstate_ends(&t, "EXEC", 9));
    assert_true(llmb_txstate_send(&t, "EXEC", 7, &n));
    assert_int_equal(n.multi, -1);
    assert_int_equal(n.watch, -1);
    t = n;
    assert_false(llmb_txstate_send(&t, "SET", 7, &n));

    assert_true(llmb_txstate_send(&t, "WATCH", 7, &n));
    t = n;
    assert_true(llmb_txstate_send(&t, "GET", 7, &n));
    assert_false(llmb_txstate_send(&t, "GET", 9, &n));
    assert_true(llmb_txstate_ends(&t, "DISCARD", 7));
    assert_true(llmb_txstate_send(&t, "WATCH", 9, &n));
    assert_int_equal(n.watch, LLMB_CLUSTER_SLOTS);
    t = n;
    assert_true(llmb_txstate_send(&t, "GET", 0, &n));
    assert_true(llmb_txstate_send(&t, "UNWATCH", 0, &n));
    assert_int_equal(n.watch, -1);
    assert_true(llmb_txstate_send(&t, "RESET", 0, &n));
    assert_int_equal(n.watch, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16),
        cmocka_unit_test(test_keyslot),
        cmocka_unit_test(test_redirect),
        cmocka_unit_test(test_slotmap_shards),
        cmocka_unit_test(test_slotmap_slots),
        cmocka_unit_test(test_txstate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
