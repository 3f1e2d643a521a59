/*
 * The cluster of the "redis_cluster" fixture for the tests that route
 * (test_cluster_support.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <llmb/cluster.h>

#include "test_cluster_support.h"

char tc_url[1024];
int tc_ports[TC_NODES];

void tc_read(void)
{
    const char *dir = getenv("LLMB_TEST_CLUSTER_DIR");
    char path[4096];
    FILE *f;

    assert_non_null(dir);
    snprintf(path, sizeof(path), "%s/cluster.url", dir);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(tc_url, sizeof(tc_url), f));
    tc_url[strcspn(tc_url, "\r\n")] = '\0';
    fclose(f);
    snprintf(path, sizeof(path), "%s/ports", dir);
    f = fopen(path, "r");
    assert_non_null(f);
    for (int i = 0; i < TC_NODES; i++)
        assert_int_equal(fscanf(f, "%d", &tc_ports[i]), 1);
    fclose(f);
}

redisContext *tc_node(int port)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);

    assert_non_null(c);
    assert_int_equal(c->err, 0);
    redisSetTimeout(c, tv);
    return c;
}

redisReply *tc_node_cmd(int port, const char *fmt, ...)
{
    redisContext *c = tc_node(port);
    redisReply *r;
    va_list ap;

    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    redisFree(c);
    return r;
}

/* The primary whose port owns key's slot, among the current primaries. */
int tc_owner_of(const char *key)
{
    redisReply *r = tc_node_cmd(tc_ports[0], "CLUSTER SHARDS");
    unsigned slot = llmb_cluster_keyslot(key, strlen(key));
    struct llmb_slotmap m;
    int port;

    assert_int_equal(llmb_slotmap_parse(r, true, &m, NULL), 0);
    assert_true(m.owner[slot] >= 0);
    port = m.nodes[m.owner[slot]].port;
    llmb_slotmap_fini(&m);
    freeReplyObject(r);
    return port;
}

static const char *myid(int port, char *buf, size_t n)
{
    redisReply *r = tc_node_cmd(port, "CLUSTER MYID");
    snprintf(buf, n, "%s", r->str);
    freeReplyObject(r);
    return buf;
}

/* Starts moving slot from src to dst (IMPORTING, MIGRATING). */
void tc_slot_move_begin(unsigned slot, int src, int dst)
{
    char sid[64], did[64];
    redisReply *r;

    r = tc_node_cmd(dst, "CLUSTER SETSLOT %u IMPORTING %s", slot,
                 myid(src, sid, sizeof(sid)));
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    r = tc_node_cmd(src, "CLUSTER SETSLOT %u MIGRATING %s", slot,
                 myid(dst, did, sizeof(did)));
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
}

/* Moves the keys of slot still at src to dst, then gives dst the slot. */
void tc_slot_move_end(unsigned slot, int src, int dst)
{
    char did[64];

    for (;;) {
        redisReply *k = tc_node_cmd(src, "CLUSTER GETKEYSINSLOT %u 100", slot);
        if (k->elements == 0) {
            freeReplyObject(k);
            break;
        }
        for (size_t i = 0; i < k->elements; i++) {
            redisReply *r = tc_node_cmd(src, "MIGRATE 127.0.0.1 %d %s 0 5000",
                                     dst, k->element[i]->str);
            assert_int_equal(r->type, REDIS_REPLY_STATUS);
            freeReplyObject(r);
        }
        freeReplyObject(k);
    }
    myid(dst, did, sizeof(did));
    freeReplyObject(tc_node_cmd(dst, "CLUSTER SETSLOT %u NODE %s", slot, did));
    freeReplyObject(tc_node_cmd(src, "CLUSTER SETSLOT %u NODE %s", slot, did));
    for (int i = 0; i < 3; i++)
        if (tc_ports[i] != src && tc_ports[i] != dst)
            freeReplyObject(tc_node_cmd(tc_ports[i], "CLUSTER SETSLOT %u NODE %s",
                                     slot, did));
}

int tc_other_primary(int port)
{
    return tc_ports[0] == port ? tc_ports[1] : tc_ports[0];
}

/* What the node on port holds at key: its value, "(nil)" for none,
 * whether the node serves the key's slot or not. */
void tc_node_value(int port, const char *key, char *out, size_t size)
{
    unsigned slot = llmb_cluster_keyslot(key, strlen(key));
    redisReply *r = tc_node_cmd(port, "CLUSTER GETKEYSINSLOT %u 100", slot);
    redisContext *c;
    bool there = false;

    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < r->elements; i++)
        there = there || strcmp(r->element[i]->str, key) == 0;
    freeReplyObject(r);
    if (!there) {
        snprintf(out, size, "(nil)");
        return;
    }
    c = tc_node(port); /* (ASKING: an importing node answers too) */
    freeReplyObject(redisCommand(c, "ASKING"));
    r = redisCommand(c, "GET %s", key);
    assert_non_null(r);
    snprintf(out, size, "%s", r->type == REDIS_REPLY_STRING ? r->str : "?");
    freeReplyObject(r);
    redisFree(c);
}
