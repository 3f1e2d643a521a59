/* One queue for function library tests (test_queue_support.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <llmb/functions.h>
#include <llmb/keys.h>
#include <llmb/util.h>

#include "fixture.h"
#include "test_queue_support.h"

struct tq T;

int tq_setup(void **state)
{
    char *errstr = NULL;

    (void)state;
    T.c = llmb_test_redis();
    assert_non_null(T.c);
    if (llmb_functions_ensure(T.c, &errstr) != 0)
        fail_msg("functions: %s", errstr);
    return 0;
}

int tq_teardown(void **state)
{
    (void)state;
    redisFree(T.c);
    return 0;
}

int tq_each_setup(void **state)
{
    static int n;
    char name[32];

    (void)state;
    snprintf(name, sizeof(name), "q%d", ++n);
    T.prefix = llmb_test_prefix(name);
    T.base = llmb_key_queue(T.prefix, "q");
    return 0;
}

int tq_each_teardown(void **state)
{
    (void)state;
    llmb_test_redis_del_prefix(T.c, T.prefix);
    free(T.prefix);
    free(T.base);
    return 0;
}

redisReply *tq_cmd(const char *fmt, ...)
{
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(T.c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    return r;
}

long long tq_cmd_int(const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    long long v;

    va_start(ap, fmt);
    r = redisvCommand(T.c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    v = r->integer;
    freeReplyObject(r);
    return v;
}

char *tq_job_get(const char *id, const char *field)
{
    redisReply *r = tq_cmd("HGET %s:j:%s %s", T.base, id, field);
    char *v = llmb_xstrdup(r->type == REDIS_REPLY_STRING ? r->str : "");

    freeReplyObject(r);
    return v;
}

void tq_assert_job(const char *id, const char *field, const char *want)
{
    char *v = tq_job_get(id, field);

    if (strcmp(v, want) != 0)
        fail_msg("job %s field %s = \"%s\", want \"%s\"", id, field, v, want);
    free(v);
}

void tq_assert_job_defaults(const char *id)
{
    tq_assert_job(id, "id", id);
    tq_assert_job(id, "queue", "q");
    tq_assert_job(id, "priority", "0");
    tq_assert_job(id, "tasks", "1");
    tq_assert_job(id, "timeout_s", "600");
    tq_assert_job(id, "max_retries", "3");
    tq_assert_job(id, "backoff_ms", "1000");
    tq_assert_job(id, "state", "pending");
    tq_assert_job(id, "left", "1");
}
