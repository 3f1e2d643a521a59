/*
 * Shared helpers of the llmb-worker integration tests: start and stop real
 * llmb-worker processes (the binary named by LLMB_WORKER_BIN), push jobs
 * and read their state over a plain hiredis connection, wait for a
 * condition with a deadline, and run a private redis-server for the tests
 * that stop and restart Redis. Linked into each test_worker_*.c.
 */
#ifndef LLMB_TEST_WORKER_HARNESS_H
#define LLMB_TEST_WORKER_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

/* One test's world: its Redis, key prefix, temp dir and workers. */
struct wh {
    redisContext *c;
    char *url;
    char *prefix;
    char *dir;        /* private temp dir, removed at the end */
    pid_t workers[8];
    char *logs[8];
    int nworkers;
    int ports[4];     /* private redis-servers, shut down by wh_fini() */
    int nports;
};

/* Sets up h against the fixture server with prefix t<pid>-<name>;
 * returns 0 or -1 (message on stderr). Loads the function library. */
int wh_init(struct wh *h, const char *name);
/* Sets up h without a server yet (for a private one); wh_connect() then
 * connects to url and loads the function library. */
int wh_init_bare(struct wh *h, const char *name);
void wh_connect(struct wh *h, const char *url);
/* Kills leftover workers, deletes the prefix's keys, frees h. */
void wh_fini(struct wh *h);

/* Starts llmb-worker with --redis, --prefix, a short heartbeat and then
 * args (NULL-terminated). Returns its pid. */
pid_t wh_worker_start(struct wh *h, const char *const *args);
/* Waits up to timeout_ms for the worker to exit; returns its exit status
 * (0..255), 128+signal when killed, or -1 on timeout. */
int wh_worker_wait(struct wh *h, pid_t pid, int timeout_ms);
/* Prints the tail of every worker's log to stderr. */
void wh_dump_logs(struct wh *h);

/* Runs a command that must not fail; returns the reply (free it). */
redisReply *wh_cmd(struct wh *h, const char *fmt, ...);
/* Pushes doc to queue; returns the job id (free it). */
char *wh_push(struct wh *h, const char *queue, const char *doc);
/* Field of a job, read with llmb_job (NULL when absent; free it). */
char *wh_job(struct wh *h, const char *queue, const char *id,
             const char *field);
/* Task field "<index>:<field>" of a job, as wh_job (NULL when absent;
 * free it). */
char *wh_task(struct wh *h, const char *queue, const char *id, int index,
              const char *field);
/* FCALL <fn> 1 <base of queue> [arg] returning an integer. */
long long wh_fcall_int(struct wh *h, const char *fn, const char *queue,
                       const char *arg);
/* A field of llmb_stats for queue. */
long long wh_stat(struct wh *h, const char *queue, const char *field);

/* Waits until the job's state is one of the |-separated states; returns
 * the state (free it) or fails the test after timeout_ms. */
char *wh_wait_state(struct wh *h, const char *queue, const char *id,
                    const char *states, int timeout_ms);
/* Waits until file path exists; fails the test after timeout_ms. */
void wh_wait_file(struct wh *h, const char *path, int timeout_ms);

/* Path of a fixture file (tests/fixtures/<name>); static storage. */
const char *wh_fixture(const char *name);

/* A private redis-server on a free port in dir/redis-<port>, with AOF on.
 * Returns the port; wh_redis_stop() shuts it down (SHUTDOWN, so the AOF is
 * synced), wh_redis_start_port() starts it again on the same port and
 * data. */
int wh_redis_start(struct wh *h);
/* Picks a free port for a private server without starting it yet. */
int wh_redis_port(struct wh *h);
void wh_redis_start_port(struct wh *h, int port);
void wh_redis_stop(struct wh *h, int port);

/* Milliseconds of CPU time (user + system) process pid has used. */
long long wh_cpu_ms(pid_t pid);

#endif
