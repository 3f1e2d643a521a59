/*
 * One queue of the fixture redis-server for tests that call the function
 * library directly: a connection with the library loaded (group setup)
 * and, per test, a fresh key prefix with queue "q" whose keys are deleted
 * afterwards, and the calls those tests make (push, claim, complete...).
 * Used by the tests of the function library.
 */
#ifndef LLMB_TEST_QUEUE_SUPPORT_H
#define LLMB_TEST_QUEUE_SUPPORT_H

#include <hiredis/hiredis.h>

struct tq {
    redisContext *c;
    char *prefix;
    char *base; /* <prefix>:{q} */
};

/* The test's queue. */
extern struct tq T;

/* cmocka group setup/teardown: connect and load the library. */
int tq_setup(void **state);
int tq_teardown(void **state);
/* cmocka per-test setup/teardown: a fresh prefix; its keys deleted. */
int tq_each_setup(void **state);
int tq_each_teardown(void **state);

/* A command on T.c; never NULL (fails the test). Caller frees. */
redisReply *tq_cmd(const char *fmt, ...);
/* A command whose reply must be an integer: that integer. */
long long tq_cmd_int(const char *fmt, ...);

/* Field of job id (a job field, or a task's "<i>:state", ...), read with
 * llmb_job; "" when missing. Caller frees. */
char *tq_job_get(const char *id, const char *field);
/* That field must be want. */
void tq_assert_job(const char *id, const char *field, const char *want);
/* Integer field `name` of llmb_stats of the test queue: tasks waiting in
 * "pending" or "delayed" (a fan-out cursor counts its tasks), "junk"... */
long long tq_stat(const char *name);
/* Job id holds what every push stores for a job of queue "q" that set
 * nothing but its type and payload: its id, the defaults, pending. */
void tq_assert_job_defaults(const char *id);

/* FCALL fn 1 <base> args... (NULL-terminated). Never NULL. */
redisReply *tq_fcall(const char *fn, ...);
/* HGET of a queue sub-key (<base>:<sub>); "" when missing. Caller frees. */
char *tq_hget(const char *sub, const char *field);
void tq_assert_hget(const char *sub, const char *field, const char *want);
/* ZCARD of <base>:<sub>. */
long long tq_zcard(const char *sub);
/* Members waiting to be claimed now: LLEN <base>:pl + ZCARD <base>:pz
 * (a fan-out cursor is one member). */
long long tq_waiting(void);
void tq_sleep_ms(long ms);

/* Pushes doc with llmb_push; returns the id (caller frees); fails the
 * test on error. */
char *tq_push(const char *doc);

/* One claimed task. */
struct tq_task {
    char ref[200];
    char id[140];
    long long idx, attempt;
    char tok[160];
    char type[64];
    char payload[256];
};

/* Claims up to n tasks for worker (with lease secret `secret`, or none
 * when NULL); returns how many, filled into out. */
int tq_claim_secret(const char *worker, int n, const char *lease_ms,
                    const char *secret, struct tq_task *out,
                    long long *next_due);
int tq_claim(const char *worker, int n, const char *lease_ms,
             struct tq_task *out, long long *next_due);
/* Element i of an array reply, which must be an integer. */
long long tq_reply_int_at(redisReply *r, size_t i);
/* The integer of reply r, which must be one (fails the test otherwise);
 * r is freed. */
long long tq_int(redisReply *r);
/* llmb_complete / llmb_fail of one task: the reply for it. */
long long tq_complete(const char *worker, const struct tq_task *t,
                      const char *result);
long long tq_fail(const char *worker, const struct tq_task *t,
                  const char *kind, const char *err);

/* Pushes doc (a single-task job), claims it as w1 and completes it with
 * "{}": the id of the job, now completed (caller frees). */
char *tq_push_and_complete(const char *doc);
/* One llmb_complete of worker w1 for tasks t[0..n-1]: each result is
 * `result`, except task `bad` (-1 for none), whose result is `bad_result`.
 * Returns the reply (caller frees). */
redisReply *tq_complete_batch(const struct tq_task *t, int n, int bad,
                              const char *bad_result, const char *result);
/* When job id ended (ms, from its end), or -1. */
long long tq_ended_ms(const char *id);
/* The end of job id as the library made it ("<c|f|x><finished ms>..."
 * and, when it has one, a tab and the result or error), read from the
 * front of its record in <base>:jd (lua/05-lifecycle.lua); NULL while it
 * has none. The caller frees it. */
char *tq_job_end(const char *id);
/* Puts end (in the form tq_job_end gives) in front of job id's record,
 * instead of the end it has. */
void tq_job_end_set(const char *id, const char *end);
/* Takes the end out of the front of job id's record: the record as it
 * was before the job ended. */
void tq_job_end_clear(const char *id);
/* Jobs of the queue whose records hold an end. */
long long tq_ended_count(void);

#endif
