/*
 * The private Redis Cluster of the ctest fixture "redis_cluster"
 * (tests/support/redis-cluster.sh) for the tests that route: its URL and
 * ports, plain connections to one node, and moving a slot between
 * primaries by hand (CLUSTER SETSLOT ... IMPORTING / MIGRATING, MIGRATE,
 * SETSLOT ... NODE), the steps redis-cli --cluster reshard takes.
 */
#ifndef LLMB_TEST_CLUSTER_SUPPORT_H
#define LLMB_TEST_CLUSTER_SUPPORT_H

#include <hiredis/hiredis.h>

#define TC_NODES 6

/* The cluster's redis+cluster:// URL and node ports, the three primaries
 * first (as started), read from LLMB_TEST_CLUSTER_DIR by tc_read(). */
extern char tc_url[1024];
extern int tc_ports[TC_NODES];
void tc_read(void);

/* A plain connection to the node on port; fails the test if it cannot. */
redisContext *tc_node(int port);
/* One command on a fresh connection to the node on port; never NULL. */
redisReply *tc_node_cmd(int port, const char *fmt, ...);
/* The port of the primary that owns key's slot now. */
int tc_owner_of(const char *key);
/* A primary other than port. */
int tc_other_primary(int port);
/* Starts moving slot from src to dst (IMPORTING, MIGRATING). */
void tc_slot_move_begin(unsigned slot, int src, int dst);
/* Moves the keys of slot still at src to dst and gives dst the slot on
 * every primary. */
void tc_slot_move_end(unsigned slot, int src, int dst);
/* What the node on port holds at key, whether it serves the key's slot,
 * imports it or gave it away: the value, or "(nil)" for none. */
void tc_node_value(int port, const char *key, char *out, size_t size);

#endif
