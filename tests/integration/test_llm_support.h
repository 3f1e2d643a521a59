/*
 * What the llm executor's integration tests share: the mock LLM server
 * (examples/mock-llm/mock_llm.py, run with `python3 -S` on a free port of
 * 127.0.0.1), its /mock/stats, a worker pointed at it, and a job run to
 * its end with its task results decoded. Built on the worker harness
 * (test_worker_harness.h); test helpers fail the test on any surprise.
 */
#ifndef LLMB_TEST_LLM_SUPPORT_H
#define LLMB_TEST_LLM_SUPPORT_H

#include <sys/types.h>

#include <jansson.h>

#include "test_worker_harness.h"

/* A running mock server. */
struct lm_mock {
    pid_t pid;
    int port;
    char *url; /* http://127.0.0.1:<port> */
};

/* Starts the mock (LLMB_MOCK_LLM names the script) with --port 0, --quiet
 * and the NULL-terminated extra flags; waits for its listening line. */
void lm_mock_start(struct lm_mock *m, const char *const *flags);
/* Stops it (SIGTERM, then SIGKILL) and frees m's strings. */
void lm_mock_stop(struct lm_mock *m);
/* GET /mock/stats as JSON (decref it). */
json_t *lm_mock_stats(const struct lm_mock *m);

/* The --llm-endpoint value NAME=URL, with the client= of
 * LLMB_TEST_LLM_CLIENT when that is set (CMakeLists.txt runs some tests
 * on libcurl's client that way). Caller frees. */
char *lm_endpoint(const char *name, const char *url);

/* A watch of how long processes wait for a CPU while they could run, as
 * the kernel counts it (/proc/<pid>/task/<tid>/schedstat's run delay):
 * what a loaded machine adds to a chunk's delivery. A child process reads
 * the counters about every millisecond until stopped. */
struct lm_cpu_wait {
    pid_t pid;   /* the reading child */
    int stop;    /* closed to stop it */
    int out;     /* its answer */
};

/* Starts watching the n processes of pids (at most 8). */
void lm_cpu_wait_start(struct lm_cpu_wait *w, const pid_t *pids, int n);
/* Stops the watch; returns, summed over the processes, the largest growth
 * of each one's run delay between two reads, in ms: at least its longest
 * single wait for a CPU meanwhile (longer reads between make it more). */
double lm_cpu_wait_stop(struct lm_cpu_wait *w);

/* One test's world: Redis through the worker harness, a mock, a worker. */
struct lm {
    struct wh h;
    struct lm_mock mock;
    char *sends; /* the mock's --log-sends file, or NULL */
};

/* Sets up t: the harness with prefix name, a mock with mock_flags, and
 * one llmb-worker with --llm-endpoint mock=<mock url> plus worker_args
 * (both NULL-terminated, may be NULL). */
void lm_setup(struct lm *t, const char *name, const char *const *mock_flags,
              const char *const *worker_args);
/* As lm_setup, and the mock logs its sends (--log-sends) to t->sends, a
 * file of the harness's temp dir, which lm_mock_sends() reads. */
void lm_setup_sends(struct lm *t, const char *name,
                    const char *const *mock_flags,
                    const char *const *worker_args);
/* The send log of t's mock (lm_setup_sends): per stream that sent all its
 * tokens, in the order they ended, the array of when each content chunk
 * was written, in seconds of the mock's monotonic clock (decref it). */
json_t *lm_mock_sends(const struct lm *t);
void lm_teardown(struct lm *t);

/* cmocka per-test setup/teardown: *state gets a zeroed struct lm, which
 * each test sets up with lm_setup; torn down and freed after it. */
int lm_state_new(void **state);
int lm_state_free(void **state);
#define LM_TEST(f) cmocka_unit_test_setup_teardown(f, lm_state_new, lm_state_free)

/* Pushes doc to queue default and waits up to timeout_ms for it to end;
 * returns its state (free it); *id gets the job id (free it). */
char *lm_run(struct lm *t, const char *doc, int timeout_ms, char **id);

/* Runs doc as lm_run() does and returns the result JSON of its task 0
 * (decref it); fails the test unless the job completed. */
json_t *lm_run_ok(struct lm *t, const char *doc, int timeout_ms);

/* Runs {"type":"llm","payload":{"model":"m","prompt":"x","requests":
 * <requests>,"concurrency":<concurrency>,<more>}} (60 s at most) and
 * checks that every request succeeded; returns the result (caller
 * decrefs). */
json_t *lm_run_all_ok(struct lm *t, int requests, int concurrency,
                      const char *more);

/* The result JSON of task index of job id (decref it); fails the test when
 * there is none. */
json_t *lm_result(struct lm *t, const char *id, int index);

/* The error text of the job (free it), or NULL. */
char *lm_job_error(struct lm *t, const char *id);

/* Number at path "a.b" of o; fails the test when it is not a number. */
double lm_num(const json_t *o, const char *path);

#endif
