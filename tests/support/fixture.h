/*
 * Helpers for tests that need Redis: the private redis-server that the ctest
 * "redis" fixture started (tests/support/redis-fixture.sh), a connection to
 * it, and a key prefix per test so tests can share the server.
 */
#ifndef LLMB_TEST_FIXTURE_H
#define LLMB_TEST_FIXTURE_H

#include <hiredis/hiredis.h>

/* URL of the test server: the contents of the file named by
 * LLMB_TEST_REDIS_URL_FILE, else LLMB_TEST_REDIS_URL. NULL (and a message
 * on stderr) when neither is set. Static storage. */
const char *llmb_test_redis_url(void);

/* A new key prefix for this test in this process, "t<pid>-<name>" with
 * characters outside [A-Za-z0-9_.:-] turned into '_'. free() it. */
char *llmb_test_prefix(const char *name);

/* A plain connected hiredis context to the test server (no AUTH, no
 * library loading); aborts with a message when it cannot connect. Free
 * with redisFree(). */
redisContext *llmb_test_redis(void);

/* A TCP port on 127.0.0.1 that nothing listens on, for a server a test
 * starts: random in 20000-31999, below Linux's ephemeral range
 * (32768-60999), so no client's source port takes it between this call
 * and the server's bind, and a client never connects to itself on it. */
int llmb_test_free_port(void);

/* Deletes every key whose name contains prefix (SCAN + UNLINK). */
void llmb_test_redis_del_prefix(redisContext *c, const char *prefix);

/* How many clients of c's server are named name (CLIENT LIST); fails the
 * running cmocka test when the command fails. */
int llmb_test_clients_named(redisContext *c, const char *name);

struct ev_loop;

/* Runs loop (a 10 ms timer keeps each pass short) until *counter reaches
 * want; fails the running cmocka test when timeout_ms pass first. */
void llmb_test_run_until(struct ev_loop *loop, const int *counter, int want,
                         int timeout_ms);

/* Runs loop for ms milliseconds. */
void llmb_test_run_for(struct ev_loop *loop, int ms);

#endif
