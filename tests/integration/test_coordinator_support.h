/*
 * What the coordinator's integration tests share: starting and stopping
 * real llmb-coordinator processes, simulated workers (a hiredis
 * connection named llmb-worker:<id> that registers and claims, like
 * llmb-worker does; closing it is a kill -9), a tiny HTTP client, and
 * waiting for a condition with a deadline. Test helpers fail the test
 * (cmocka) on any unexpected answer.
 */
#ifndef LLMB_TEST_COORDINATOR_SUPPORT_H
#define LLMB_TEST_COORDINATOR_SUPPORT_H

#include <stdbool.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

#include <llmb/util.h>

/* Starts llmb-coordinator (LLMB_COORDINATOR_BIN) with --redis url,
 * --prefix prefix, --id id, a fast --tick-ms 50 and the NULL-terminated
 * extra arguments. Its log goes to stderr. Returns its pid. */
pid_t tc_coord_start(const char *url, const char *prefix, const char *id,
                     ...);
/* In a forked child: closes every descriptor above 2, so that the test's
 * connections (a simulated worker's above all) do not live on in it. */
void tc_close_fds(void);

/* Remembers a child process to kill in tc_children_kill(). */
void tc_child_add(pid_t pid);
/* SIGKILLs and reaps every remembered child still running (a failed test
 * leaves none behind); a cmocka teardown. */
int tc_children_kill(void **state);

/* Sends sig and waits for the process; returns its wait status. Fails
 * the test if it does not exit within 10 s. */
int tc_coord_stop(pid_t pid, int sig);

/* A connected context to url with the llmb library loaded. */
redisContext *tc_redis(const char *url);

/* Runs a command and fails the test on a NULL or error reply. */
redisReply *tc_cmd(redisContext *c, const char *fmt, ...);
long long tc_int(redisContext *c, const char *fmt, ...);
/* HGET-like commands: a malloc'd copy of the string reply, or NULL. */
char *tc_str(redisContext *c, const char *fmt, ...);
/* Field of job id of prefix:{queue} (a job field or a task's
 * "<i>:<name>"), read with llmb_job; NULL when absent. Caller frees. */
char *tc_job(redisContext *c, const char *prefix, const char *queue,
             const char *id, const char *field);

/* A simulated worker. */
struct tc_worker {
    redisContext *c; /* its only connection, named llmb-worker:<id> */
    char *id;
    char *prefix;
    char *queue;
    char *base;
    int capacity;
    int running;
    struct llmb_strlist refs, tokens; /* claimed, not yet completed */
};

/* Connects as llmb-worker:<id>, registers in queue and heartbeats once. */
struct tc_worker *tc_worker_new(const char *url, const char *prefix,
                                const char *id, const char *queue,
                                int capacity);
/* Writes seen_ms (Redis time) into the record and the registry. */
void tc_worker_heartbeat(struct tc_worker *w);
/* Claims up to n tasks with lease_ms; returns how many it got. */
int tc_worker_claim(struct tc_worker *w, int n, long long lease_ms);
/* Completes claimed task k (0-based in the claim order) with result. */
void tc_worker_complete(struct tc_worker *w, size_t k, const char *result);
/* Closes the connection (the worker "dies") and frees w; NULL is fine. */
void tc_worker_free(struct tc_worker *w);

/* Pushes a job document to queue; returns its id (malloc'd). */
char *tc_push(redisContext *c, const char *prefix, const char *queue,
              const char *doc);

/* GET path from 127.0.0.1:port. Returns the status (-1 when no answer)
 * and the body in *body (malloc'd, or NULL). */
int tc_http_get(int port, const char *path, char **body);
/* A TCP port on 127.0.0.1 that was free a moment ago (llmb_test_free_port). */
int tc_free_port(void);

/* Milliseconds on the monotonic clock. */
long long tc_now(void);

#endif
