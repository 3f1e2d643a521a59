/*
 * lib/acluster.c against the real Redis Cluster of the "redis_cluster"
 * fixture, on a libev loop: calls of queues on all three shards answered,
 * calls after their queue's slot moved follow MOVED (reading the map once
 * for the burst), an FCALL sent while its slot is half moved is held and
 * answered once the move ends, a plain command follows ASK, an FCALL
 * whose slot stays half moved gets its redirection error past wait_ms,
 * a command of a transaction (MULTI, WATCH) answered MOVED or ASK is not
 * sent elsewhere alone: the transaction fails whole and its next try
 * goes to the new owner,
 * blocking pops run on the blocking connections, the map is not read
 * while nothing changes, and after a manual failover the calls go to the
 * new primary and the connections to the demoted one are closed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <hiredis/hiredis.h>

#include <llmb/acluster.h>
#include <llmb/cluster.h>
#include <llmb/keys.h>
#include <llmb/util.h>

#include "fixture.h"
#include "test_cluster_support.h"

static char *prefix;
static struct ev_loop *loop;

/* Replies of the commands of a test, copied out. */
struct got {
    int n;          /* callbacks run */
    int nulls;      /* of them with NULL */
    char text[64][128];
};

static void got_cb(struct llmb_aconn *ac, const redisReply *r, void *priv)
{
    struct got *g = priv;

    (void)ac;
    if (r == NULL)
        g->nulls++;
    else if (g->n < 64)
        snprintf(g->text[g->n], sizeof(g->text[0]), "%s",
                 r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_ERROR ||
                 r->type == REDIS_REPLY_STATUS ? r->str : "(other)");
    g->n++;
}

/* Runs the loop until *flag reaches want; fails after 20 s. */
static void run_until(const int *flag, int want)
{
    llmb_test_run_until(loop, flag, want, 20000);
}

static int ready_count;

static void on_ready(struct llmb_acluster *acl, size_t node, void *priv)
{
    (void)acl;
    (void)node;
    (void)priv;
    ready_count++;
}

static struct llmb_acluster *acl_new_wait(int64_t wait_ms)
{
    struct llmb_acluster_opts o;
    struct llmb_acluster *acl;
    char *err = NULL;

    memset(&o, 0, sizeof(o));
    o.url = tc_url;
    o.name = "llmb-test";
    o.what = "test";
    o.functions = true;
    o.blocking = true;
    o.on_ready = on_ready;
    o.wait_ms = wait_ms;
    ready_count = 0;
    acl = llmb_acluster_new(loop, &o, &err);
    if (acl == NULL)
        fail_msg("acluster: %s", err);
    assert_true(llmb_acluster_enabled(acl));
    assert_int_equal(llmb_acluster_nnodes(acl), 3);
    run_until(&ready_count, 3);
    return acl;
}

static struct llmb_acluster *acl_new(void)
{
    return acl_new_wait(0);
}

static int push(struct llmb_acluster *acl, const char *queue, const char *id,
                struct got *g)
{
    char *key = llmb_key_queue(prefix, queue);
    char *doc = llmb_xasprintf("{\"type\":\"noop\",\"id\":\"%s\"}", id);
    const char *argv[] = {"FCALL", "llmb_push", "1", key, doc};
    int rc = llmb_acluster_command_argv(acl, key, got_cb, g, 5, argv, NULL);

    free(key);
    free(doc);
    return rc;
}

static int group_setup(void **state)
{
    (void)state;
    tc_read();
    prefix = llmb_test_prefix("acluster");
    loop = ev_loop_new(EVFLAG_AUTO);
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
    ev_loop_destroy(loop);
    free(prefix);
    return 0;
}

/* 30 queues over the three shards: every push answered with its id. */
static void test_spread(void **state)
{
    struct llmb_acluster *acl = acl_new();
    struct got g;
    bool used[TC_NODES] = {false};
    (void)state;

    memset(&g, 0, sizeof(g));
    for (int q = 0; q < 30; q++) {
        char queue[16], *key;
        snprintf(queue, sizeof(queue), "aq%d", q);
        key = llmb_key_queue(prefix, queue);
        assert_true(llmb_acluster_ready(acl, key));
        used[llmb_acluster_node_of(acl, key)] = true;
        free(key);
        assert_int_equal(push(acl, queue, "x", &g), 0);
    }
    run_until(&g.n, 30);
    assert_int_equal(g.nulls, 0);
    for (int i = 0; i < 30; i++)
        assert_string_equal(g.text[i], "x");
    for (int i = 0; i < 3; i++)
        assert_true(used[i]);
    llmb_acluster_free(acl);
}

/* The number of CLUSTER SHARDS the nodes of the cluster have run. */
static long long shards_calls(void)
{
    long long sum = 0;

    for (int i = 0; i < TC_NODES; i++) {
        redisReply *r = tc_node_cmd(tc_ports[i], "INFO commandstats");
        const char *p = strstr(r->str, "cmdstat_cluster|shards:calls=");
        if (p != NULL)
            sum += strtoll(strchr(p, '=') + 1, NULL, 10);
        freeReplyObject(r);
    }
    return sum;
}

/* After the slot moved, the old owner answers MOVED: the calls are sent
 * to the new owner and answered there. Of the burst of MOVED answering
 * ten calls, the first reads the map again (one CLUSTER SHARDS); the
 * others find the new owner in it. */
static void test_moved(void **state)
{
    struct llmb_acluster *acl = acl_new();
    char *key = llmb_key_queue(prefix, "amoved");
    unsigned slot = llmb_cluster_keyslot(key, strlen(key));
    struct got g;
    long long calls;
    int src, dst;
    (void)state;

    memset(&g, 0, sizeof(g));
    assert_int_equal(push(acl, "amoved", "m0", &g), 0);
    run_until(&g.n, 1);
    src = tc_owner_of(key);
    dst = tc_other_primary(src);
    tc_slot_move_begin(slot, src, dst);
    tc_slot_move_end(slot, src, dst);
    calls = shards_calls();
    assert_int_equal(push(acl, "amoved", "m1", &g), 0);
    for (int i = 2; i <= 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "m%d", i);
        assert_int_equal(push(acl, "amoved", id, &g), 0);
    }
    run_until(&g.n, 11);
    assert_int_equal(shards_calls() - calls, 1);
    assert_int_equal(g.nulls, 0);
    /* (Parked calls are sent again each on its own timer: in any order.) */
    for (int i = 1; i <= 10; i++) {
        char id[16];
        int found = 0;
        snprintf(id, sizeof(id), "m%d", i);
        for (int j = 1; j <= 10; j++)
            found += strcmp(g.text[j], id) == 0;
        assert_int_equal(found, 1);
    }
    {
        redisReply *r = tc_node_cmd(dst, "FCALL_RO llmb_job 1 %s m1 state",
                                    key);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        assert_string_equal(r->element[0]->str, "pending");
        freeReplyObject(r);
    }
    free(key);
    llmb_acluster_free(acl);
}

struct mover {
    unsigned slot;
    int src, dst;
    ev_timer t;
};

static void finish_move_cb(struct ev_loop *l, ev_timer *t, int revents)
{
    struct mover *m = t->data;

    (void)l;
    (void)revents;
    tc_slot_move_end(m->slot, m->src, m->dst);
}

/* An FCALL sent while its queue's slot is half moved waits and runs at
 * the new owner once the move ends; a GET of a moved key follows ASK. */
static void test_held_while_moving(void **state)
{
    struct llmb_acluster *acl = acl_new();
    char *key = llmb_key_queue(prefix, "aheld");
    char *plain = llmb_key_queue_sub(prefix, "aheld", "plain");
    const char *get[] = {"GET", plain};
    struct mover m;
    struct got g;
    redisReply *r;
    (void)state;

    memset(&g, 0, sizeof(g));
    assert_int_equal(push(acl, "aheld", "h0", &g), 0);
    run_until(&g.n, 1);
    m.slot = llmb_cluster_keyslot(key, strlen(key));
    m.src = tc_owner_of(key);
    m.dst = tc_other_primary(m.src);
    freeReplyObject(tc_node_cmd(m.src, "SET %s here", plain));
    tc_slot_move_begin(m.slot, m.src, m.dst);
    r = tc_node_cmd(m.src, "MIGRATE 127.0.0.1 %d %s 0 5000", m.dst, plain);
    freeReplyObject(r);

    assert_int_equal(llmb_acluster_command_argv(acl, plain, got_cb, &g, 2,
                                                get, NULL), 0);
    run_until(&g.n, 2);
    assert_string_equal(g.text[1], "here");

    assert_int_equal(push(acl, "aheld", "h1", &g), 0);
    /* Held: nothing answers while the slot is half moved. */
    for (int i = 0; i < 30; i++)
        ev_run(loop, EVRUN_NOWAIT);
    assert_int_equal(g.n, 2);
    r = tc_node_cmd(m.dst, "EXISTS %s:j:h1", key);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    ev_timer_init(&m.t, finish_move_cb, 0.3, 0.0);
    m.t.data = &m;
    ev_timer_start(loop, &m.t);
    run_until(&g.n, 3);
    assert_int_equal(g.nulls, 0);
    assert_string_equal(g.text[2], "h1");
    r = tc_node_cmd(m.dst, "FCALL_RO llmb_job 1 %s h1 state", key);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_string_equal(r->element[0]->str, "pending");
    freeReplyObject(r);
    free(key);
    free(plain);
    llmb_acluster_free(acl);
}

/* An FCALL whose slot stays half moved is redirected again and again:
 * past wait_ms its caller gets the redirection error, and the call never
 * ran at either node. */
static void test_gives_up_past_wait(void **state)
{
    struct llmb_acluster *acl = acl_new_wait(1000);
    char *key = llmb_key_queue(prefix, "agiveup");
    unsigned slot = llmb_cluster_keyslot(key, strlen(key));
    int src = tc_owner_of(key), dst = tc_other_primary(src);
    struct got g;
    redisReply *r;
    (void)state;

    memset(&g, 0, sizeof(g));
    tc_slot_move_begin(slot, src, dst);
    assert_int_equal(push(acl, "agiveup", "g0", &g), 0);
    run_until(&g.n, 1);
    assert_int_equal(g.nulls, 0);
    assert_true(strncmp(g.text[0], "ASK ", 4) == 0 ||
                strncmp(g.text[0], "TRYAGAIN", 8) == 0);
    r = tc_node_cmd(src, "EXISTS %s:j:g0", key);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    r = tc_node_cmd(dst, "EXISTS %s:j:g0", key);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);

    /* Once the move ends, the queue takes calls again. */
    tc_slot_move_end(slot, src, dst);
    assert_int_equal(push(acl, "agiveup", "g1", &g), 0);
    run_until(&g.n, 2);
    assert_int_equal(g.nulls, 0);
    assert_string_equal(g.text[1], "g1");
    free(key);
    llmb_acluster_free(acl);
}

/* Sends argv (argc words) about key through acl, its reply to g. */
static void send_cmd(struct llmb_acluster *acl, const char *key,
                     struct got *g, int argc, const char **argv)
{
    assert_int_equal(llmb_acluster_command_argv(acl, key, got_cb, g, argc,
                                                argv, NULL), 0);
}

/* Sends MULTI, SET key value, EXEC through acl; waits for their replies
 * (g->text[first...first+2]). */
static void tx_set(struct llmb_acluster *acl, const char *key,
                   const char *value, struct got *g)
{
    const char *multi[] = {"MULTI"};
    const char *set[] = {"SET", key, value};
    const char *exec[] = {"EXEC"};
    int want = g->n + 3;

    send_cmd(acl, key, g, 1, multi);
    send_cmd(acl, key, g, 3, set);
    send_cmd(acl, key, g, 1, exec);
    run_until(&g->n, want);
}

/* Runs the loop until acl routes key to another primary than node (the
 * map read that a MOVED asked for came back); fails if it never does. */
static void wait_rerouted(struct llmb_acluster *acl, const char *key,
                          long node)
{
    for (int i = 0; i < 200 && llmb_acluster_node_of(acl, key) == node; i++)
        llmb_test_run_for(loop, 20);
    assert_true(llmb_acluster_node_of(acl, key) != node);
}

/* A transaction whose key's slot moved: the SET queued in it is answered
 * MOVED, and the router does not send it to the new owner alone (where it
 * would run outside the transaction): it ran nowhere, EXEC answers
 * EXECABORT, and the transaction sent again goes to the new owner. */
static void test_tx_moved(void **state)
{
    struct llmb_acluster *acl = acl_new();
    char *key = llmb_key_queue_sub(prefix, "atxmoved", "owner");
    unsigned slot = llmb_cluster_keyslot(key, strlen(key));
    int src = tc_owner_of(key), dst = tc_other_primary(src);
    long before = llmb_acluster_node_of(acl, key);
    char v[128];
    struct got g;
    (void)state;

    memset(&g, 0, sizeof(g));
    tc_slot_move_begin(slot, src, dst);
    tc_slot_move_end(slot, src, dst);
    tx_set(acl, key, "split", &g);
    tc_node_value(src, key, v, sizeof(v));
    assert_string_equal(v, "(nil)");
    tc_node_value(dst, key, v, sizeof(v));
    assert_string_equal(v, "(nil)");
    assert_int_equal(g.nulls, 0);
    assert_string_equal(g.text[0], "OK");
    assert_true(strncmp(g.text[1], "MOVED ", 6) == 0);
    assert_true(strncmp(g.text[2], "EXECABORT", 9) == 0);

    wait_rerouted(acl, key, before);
    tx_set(acl, key, "whole", &g);
    assert_int_equal(g.nulls, 0);
    assert_string_equal(g.text[3], "OK");
    assert_string_equal(g.text[4], "QUEUED");
    assert_string_equal(g.text[5], "(other)"); /* EXEC's array */
    tc_node_value(dst, key, v, sizeof(v));
    assert_string_equal(v, "whole");

    /* The slot goes back (with the key), as the other tests expect. */
    tc_slot_move_begin(slot, dst, src);
    tc_slot_move_end(slot, dst, src);
    freeReplyObject(tc_node_cmd(src, "DEL %s", key));
    free(key);
    llmb_acluster_free(acl);
}

/* WATCH, GET, then MULTI, DEL, EXEC while the key is at the importing
 * node of a half-moved slot: every one of them answered ASK is given to
 * the caller, none is sent to the importing node alone (which would read
 * the key without the WATCH and delete it unconditionally); EXEC
 * answers EXECABORT and the key is still there. Once the move ends, the
 * first try reads the map (MOVED) and the next deletes the key at the
 * new owner. */
static void test_tx_watch_ask(void **state)
{
    struct llmb_acluster *acl = acl_new();
    char *key = llmb_key_queue_sub(prefix, "atxask", "owner");
    unsigned slot = llmb_cluster_keyslot(key, strlen(key));
    int src = tc_owner_of(key), dst = tc_other_primary(src);
    long before = llmb_acluster_node_of(acl, key);
    const char *watch[] = {"WATCH", key};
    const char *get[] = {"GET", key};
    const char *multi[] = {"MULTI"};
    const char *del[] = {"DEL", key};
    const char *exec[] = {"EXEC"};
    char v[128];
    struct got g;
    redisReply *r;
    (void)state;

    memset(&g, 0, sizeof(g));
    freeReplyObject(tc_node_cmd(src, "SET %s mine", key));
    tc_slot_move_begin(slot, src, dst);
    r = tc_node_cmd(src, "MIGRATE 127.0.0.1 %d %s 0 5000", dst, key);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);

    send_cmd(acl, key, &g, 2, watch);
    send_cmd(acl, key, &g, 2, get);
    run_until(&g.n, 2);
    send_cmd(acl, key, &g, 1, multi);
    send_cmd(acl, key, &g, 2, del);
    send_cmd(acl, key, &g, 1, exec);
    run_until(&g.n, 5);
    tc_node_value(dst, key, v, sizeof(v));
    assert_string_equal(v, "mine");
    assert_int_equal(g.nulls, 0);
    assert_true(strncmp(g.text[0], "ASK ", 4) == 0);
    assert_true(strncmp(g.text[1], "ASK ", 4) == 0);
    assert_string_equal(g.text[2], "OK");
    assert_true(strncmp(g.text[3], "ASK ", 4) == 0);
    assert_true(strncmp(g.text[4], "EXECABORT", 9) == 0);

    tc_slot_move_end(slot, src, dst);
    /* The map still names src: WATCH is answered MOVED, and read. */
    send_cmd(acl, key, &g, 2, watch);
    run_until(&g.n, 6);
    assert_true(strncmp(g.text[5], "MOVED ", 6) == 0);
    wait_rerouted(acl, key, before);
    send_cmd(acl, key, &g, 2, watch);
    send_cmd(acl, key, &g, 2, get);
    send_cmd(acl, key, &g, 1, multi);
    send_cmd(acl, key, &g, 2, del);
    send_cmd(acl, key, &g, 1, exec);
    run_until(&g.n, 11);
    assert_int_equal(g.nulls, 0);
    assert_string_equal(g.text[6], "OK");
    assert_string_equal(g.text[7], "mine");
    assert_string_equal(g.text[8], "OK");
    assert_string_equal(g.text[9], "QUEUED");
    assert_string_equal(g.text[10], "(other)");
    tc_node_value(dst, key, v, sizeof(v));
    assert_string_equal(v, "(nil)");

    tc_slot_move_begin(slot, dst, src);
    tc_slot_move_end(slot, dst, src);
    free(key);
    llmb_acluster_free(acl);
}

static int blk_ready_count;

static void on_blk_ready(struct llmb_aconn *ac, void *priv)
{
    (void)ac;
    (void)priv;
    blk_ready_count++;
}

/* BLPOP goes to a blocking connection of the key's primary, one per slot,
 * opened on first use; closing them gives NULL to a BLPOP in flight. */
static void test_blocking(void **state)
{
    struct llmb_acluster_opts o;
    struct llmb_acluster *acl;
    char *wake = llmb_key_queue_sub(prefix, "ablk", "wake");
    char *other = llmb_key_queue_sub(prefix, "ablk2", "wake");
    const char *blpop[] = {"BLPOP", wake, "5"};
    const char *blpop2[] = {"BLPOP", other, "5"};
    struct got g;
    (void)state;

    memset(&o, 0, sizeof(o));
    o.url = tc_url;
    o.what = "test";
    o.blocking = true;
    o.on_blk_ready = on_blk_ready;
    blk_ready_count = 0;
    acl = llmb_acluster_new(loop, &o, NULL);
    assert_non_null(acl);
    assert_false(llmb_acluster_block_ready(acl, wake));
    assert_false(llmb_acluster_block_ready(acl, other));
    run_until(&blk_ready_count, 2);
    assert_true(llmb_acluster_block_ready(acl, wake));
    memset(&g, 0, sizeof(g));
    freeReplyObject(tc_node_cmd(tc_owner_of(wake), "RPUSH %s 1", wake));
    assert_int_equal(llmb_acluster_block_argv(acl, wake, 5000, got_cb, &g,
                                              3, blpop, NULL), 0);
    run_until(&g.n, 1);
    assert_int_equal(g.nulls, 0);
    assert_string_equal(g.text[0], "(other)"); /* [key, value] */
    /* Nothing to pop: closing the blocking connections ends the wait. */
    assert_int_equal(llmb_acluster_block_argv(acl, other, 5000, got_cb, &g,
                                              3, blpop2, NULL), 0);
    for (int i = 0; i < 10; i++)
        ev_run(loop, EVRUN_NOWAIT);
    assert_int_equal(g.n, 1);
    llmb_acluster_close_blocking(acl);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.nulls, 1);
    assert_false(llmb_acluster_block_ready(acl, wake));
    free(wake);
    free(other);
    llmb_acluster_free(acl);
}

/* Calls on queues of every primary, the loop running past the refresh
 * timer's period: no read of the map (nothing changed). */
static void test_map_reads_quiet(void **state)
{
    struct llmb_acluster *acl = acl_new();
    struct got g;
    long long calls;
    (void)state;

    memset(&g, 0, sizeof(g));
    calls = shards_calls();
    for (int q = 0; q < 30; q++) {
        char queue[16];
        snprintf(queue, sizeof(queue), "aquiet%d", q);
        assert_int_equal(push(acl, queue, "x", &g), 0);
    }
    run_until(&g.n, 30);
    llmb_test_run_for(loop, 1500);
    assert_int_equal(g.nulls, 0);
    assert_int_equal(shards_calls() - calls, 0);
    llmb_acluster_free(acl);
}

/* The port of a replica of the primary on port. */
static int replica_of(int port)
{
    redisReply *r = tc_node_cmd(port, "INFO replication");
    const char *p = strstr(r->str, "slave0:");
    int rp;

    assert_non_null(p);
    p = strstr(p, "port=");
    assert_non_null(p);
    rp = atoi(p + 5);
    freeReplyObject(r);
    return rp;
}

/* True when every node names the node on port the owner of key. */
static bool owner_everywhere(const char *key, int port)
{
    unsigned slot = llmb_cluster_keyslot(key, strlen(key));
    bool all = true;

    for (int i = 0; i < TC_NODES && all; i++) {
        redisReply *r = tc_node_cmd(tc_ports[i], "CLUSTER SHARDS");
        struct llmb_slotmap m;
        if (llmb_slotmap_parse(r, true, &m, NULL) != 0) {
            all = false;
        } else {
            all = m.owner[slot] >= 0 && m.nodes[m.owner[slot]].port == port;
            llmb_slotmap_fini(&m);
        }
        freeReplyObject(r);
    }
    return all;
}

/* CLUSTER FAILOVER on the replica on port; waits until every node names
 * it the owner of key (asked again while the replica is not in sync). */
static void failover_to(int port, const char *key)
{
    for (int i = 0; i < 200 && !owner_everywhere(key, port); i++) {
        if (i % 40 == 0)
            freeReplyObject(tc_node_cmd(port, "CLUSTER FAILOVER"));
        llmb_test_run_for(loop, 50);
    }
    assert_true(owner_everywhere(key, port));
}

/* Connections named name on the node on port. */
static int clients_named(int port, const char *name)
{
    redisContext *c = tc_node(port);
    int n = llmb_test_clients_named(c, name);

    redisFree(c);
    return n;
}

/* A manual failover (CLUSTER FAILOVER on the replica): the demoted
 * primary answers MOVED; the map is read and the calls go to the new
 * primary, the connections to the old one are closed, so it gets no more
 * writes. The blocking router follows too. Then the roles go back. */
static void test_manual_failover(void **state)
{
    struct llmb_acluster *acl = acl_new();
    struct llmb_cluster *cl = llmb_cluster_new(tc_url, "llmb-test-sync",
                                               5000);
    char *key = llmb_key_queue(prefix, "afailover");
    struct got g;
    redisReply *r;
    int src, rep, i;
    (void)state;

    memset(&g, 0, sizeof(g));
    assert_int_equal(llmb_cluster_connect(cl, NULL), 0);
    assert_int_equal(push(acl, "afailover", "f0", &g), 0);
    run_until(&g.n, 1);
    src = tc_owner_of(key);
    rep = replica_of(src);
    assert_true(clients_named(src, "llmb-test") >= 1);

    failover_to(rep, key);
    for (i = 1; i <= 5; i++) {
        char id[8];
        snprintf(id, sizeof(id), "f%d", i);
        assert_int_equal(push(acl, "afailover", id, &g), 0);
    }
    run_until(&g.n, 6);
    assert_int_equal(g.nulls, 0);
    for (i = 1; i <= 5; i++) {
        char id[8];
        int found = 0;
        snprintf(id, sizeof(id), "f%d", i);
        for (int j = 1; j <= 5; j++)
            found += strcmp(g.text[j], id) == 0;
        assert_int_equal(found, 1);
    }
    r = tc_node_cmd(rep, "FCALL_RO llmb_job 1 %s f5 state", key);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_string_equal(r->element[0]->str, "pending");
    freeReplyObject(r);
    for (i = 0; i < 200 && clients_named(src, "llmb-test") > 0; i++)
        llmb_test_run_for(loop, 50);
    assert_int_equal(clients_named(src, "llmb-test"), 0);

    r = llmb_cluster_command(cl, "FCALL llmb_push 1 %s %s", key,
                             "{\"type\":\"noop\",\"id\":\"s0\"}");
    assert_non_null(r);
    assert_string_equal(r->str, "s0");
    freeReplyObject(r);
    r = tc_node_cmd(rep, "FCALL_RO llmb_job 1 %s s0 state", key);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_string_equal(r->element[0]->str, "pending");
    freeReplyObject(r);

    llmb_cluster_free(cl);
    llmb_acluster_free(acl);
    failover_to(src, key);
    free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_moved),
        cmocka_unit_test(test_held_while_moving),
        cmocka_unit_test(test_gives_up_past_wait),
        cmocka_unit_test(test_tx_moved),
        cmocka_unit_test(test_tx_watch_ask),
        cmocka_unit_test(test_blocking),
        cmocka_unit_test(test_map_reads_quiet),
        cmocka_unit_test(test_manual_failover),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
