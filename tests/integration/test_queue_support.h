/*
 * One queue of the fixture redis-server for tests that call the function
 * library directly: a connection with the library loaded (group setup)
 * and, per test, a fresh key prefix with queue "q" whose keys are deleted
 * afterwards. Used by test_functions and test_push_fields.
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

/* Field of job id's hash (a job field, or a task's "<i>:state", ...);
 * "" when missing. Caller frees. */
char *tq_job_get(const char *id, const char *field);
/* That field must be want. */
void tq_assert_job(const char *id, const char *field, const char *want);
/* Job id holds what every push stores for a job of queue "q" that set
 * nothing but its type and payload: its id, the defaults, pending. */
void tq_assert_job_defaults(const char *id);

#endif
