/* One queue for function library tests (test_queue_support.h). */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    redisReply *r = tq_cmd("FCALL_RO llmb_job 1 %s %s %s", T.base, id, field);
    char *v = llmb_xstrdup(r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
                                   r->element[0]->type == REDIS_REPLY_STRING
                               ? r->element[0]->str
                               : "");

    freeReplyObject(r);
    return v;
}

long long tq_stat(const char *name)
{
    redisReply *r = tq_cmd("FCALL llmb_stats 1 %s", T.base);
    long long v = -1;
    size_t i;

    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    for (i = 0; i + 1 < r->elements; i += 2)
        if (strcmp(r->element[i]->str, name) == 0 &&
            r->element[i + 1]->type == REDIS_REPLY_INTEGER)
            v = r->element[i + 1]->integer;
    freeReplyObject(r);
    if (v < 0)
        fail_msg("llmb_stats has no integer field %s", name);
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

redisReply *tq_fcall(const char *fn, ...)
{
    const char *argv[4200];
    int argc = 0;
    va_list ap;
    const char *a;
    redisReply *r;

    argv[argc++] = "FCALL";
    argv[argc++] = fn;
    argv[argc++] = "1";
    argv[argc++] = T.base;
    va_start(ap, fn);
    while ((a = va_arg(ap, const char *)) != NULL)
        argv[argc++] = a;
    va_end(ap);
    r = redisCommandArgv(T.c, argc, argv, NULL);
    assert_non_null(r);
    return r;
}

char *tq_hget(const char *sub, const char *field)
{
    redisReply *r = tq_cmd("HGET %s:%s %s", T.base, sub, field);
    char *v = llmb_xstrdup(r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return v;
}

void tq_assert_hget(const char *sub, const char *field, const char *want)
{
    char *v = tq_hget(sub, field);
    if (strcmp(v, want) != 0)
        fail_msg("%s:%s %s = \"%s\", want \"%s\"", T.base, sub, field, v, want);
    free(v);
}

char *tq_push(const char *doc)
{
    redisReply *r = tq_fcall("llmb_push", doc, NULL);
    char *id;
    if (r->type != REDIS_REPLY_STRING)
        fail_msg("push %s: %s", doc, r->type == REDIS_REPLY_ERROR ? r->str : "?");
    id = llmb_xstrdup(r->str);
    freeReplyObject(r);
    return id;
}

int tq_claim_secret(const char *worker, int n, const char *lease_ms,
                    const char *secret, struct tq_task *out,
                    long long *next_due)
{
    char ns[16];
    redisReply *r;
    int count, i;

    snprintf(ns, sizeof(ns), "%d", n);
    if (secret != NULL)
        r = tq_fcall("llmb_claim", worker, ns, lease_ms, "250", secret, NULL);
    else
        r = tq_fcall("llmb_claim", worker, ns, lease_ms, NULL);
    if (r->type != REDIS_REPLY_ARRAY)
        fail_msg("claim: %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    /* {now, due, count, token, then per task: ref, type, payload, opts}
     * (lua/30-claim.lua) */
    assert_true(r->elements >= 4);
    count = (int)r->element[2]->integer;
    assert_int_equal(r->elements, 4 + (size_t)count * 4);
    assert_int_equal(r->element[3]->type, REDIS_REPLY_STRING);
    if (next_due)
        *next_due = r->element[1]->integer;
    for (i = 0; i < count; i++) {
        redisReply **e = r->element + 4 + i * 4;
        struct tq_task *t = &out[i];
        const char *a, *colon;
        snprintf(t->ref, sizeof(t->ref), "%s", e[0]->str);
        snprintf(t->id, sizeof(t->id), "%s", e[0]->str);
        colon = strchr(e[0]->str, ':');
        t->idx = colon ? atoll(colon + 1) : 0;
        if (colon)
            t->id[colon - e[0]->str] = '\0';
        snprintf(t->tok, sizeof(t->tok), "%s", r->element[3]->str);
        a = strchr(e[3]->str, 'a');
        t->attempt = a ? atoll(a + 1) : 1;
        snprintf(t->type, sizeof(t->type), "%s", e[1]->str);
        snprintf(t->payload, sizeof(t->payload), "%s", e[2]->str);
    }
    freeReplyObject(r);
    return count;
}

int tq_claim(const char *worker, int n, const char *lease_ms,
             struct tq_task *out, long long *next_due)
{
    return tq_claim_secret(worker, n, lease_ms, NULL, out, next_due);
}

long long tq_int(redisReply *r)
{
    long long v;

    if (r->type != REDIS_REPLY_INTEGER)
        fail_msg("want an integer, got %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "another type");
    v = r->integer;
    freeReplyObject(r);
    return v;
}

long long tq_reply_int_at(redisReply *r, size_t i)
{
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_true(i < r->elements);
    assert_int_equal(r->element[i]->type, REDIS_REPLY_INTEGER);
    return r->element[i]->integer;
}

long long tq_complete(const char *worker, const struct tq_task *t,
                          const char *result)
{
    redisReply *r = tq_fcall("llmb_complete", worker, t->ref, t->tok, result, NULL);
    long long v = tq_reply_int_at(r, 0);
    freeReplyObject(r);
    return v;
}

long long tq_fail(const char *worker, const struct tq_task *t,
                           const char *kind, const char *err)
{
    redisReply *r = tq_fcall("llmb_fail", worker, t->ref, t->tok, kind, err, NULL);
    long long v = tq_reply_int_at(r, 0);
    freeReplyObject(r);
    return v;
}

long long tq_ended_ms(const char *id)
{
    char *e = tq_job_end(id); /* "<c|f|x><finished ms>..." */
    long long v = e != NULL && e[1] != '\0' ? atoll(e + 1) : -1;

    free(e);
    return v;
}

/* In record value r (len bytes) with an end in front: where the two tabs
 * of the end are and where the record starts. Returns false when r has no
 * end (its first letter is not upper case) or it does not parse. */
static bool end_split(const char *r, size_t len, const char **t,
                      const char **u, size_t *inner)
{
    long long n = 0;

    if (len == 0 || r[0] < 'A' || r[0] > 'Z')
        return false;
    *t = memchr(r, '\t', len);
    *u = *t ? memchr(*t + 1, '\t', len - (size_t)(*t + 1 - r)) : NULL;
    if (*u == NULL)
        return false;
    if (*u > *t + 1)
        n = atoll(*t + 1);
    *inner = (size_t)(*u + 1 - r) + (size_t)n;
    return *inner <= len;
}

char *tq_job_end(const char *id)
{
    redisReply *r = tq_cmd("HGET %s:jd %s", T.base, id);
    const char *t, *u;
    size_t inner;
    char *e = NULL;

    if (r->type == REDIS_REPLY_STRING &&
        end_split(r->str, r->len, &t, &u, &inner)) {
        if (u == t + 1)
            e = llmb_xasprintf("%c%.*s", r->str[0] - 'A' + 'a',
                               (int)(t - r->str - 1), r->str + 1);
        else
            e = llmb_xasprintf("%c%.*s\t%.*s", r->str[0] - 'A' + 'a',
                               (int)(t - r->str - 1), r->str + 1,
                               (int)(r->str + inner - u - 1), u + 1);
    }
    freeReplyObject(r);
    return e;
}

void tq_job_end_set(const char *id, const char *end)
{
    redisReply *r = tq_cmd("HGET %s:jd %s", T.base, id);
    const char *t, *u, *tab = strchr(end, '\t');
    size_t inner = 0;
    char *v;

    assert_int_equal(r->type, REDIS_REPLY_STRING);
    if (!end_split(r->str, r->len, &t, &u, &inner))
        inner = 0;
    if (tab == NULL)
        v = llmb_xasprintf("%c%s\t\t%.*s", end[0] - 'a' + 'A', end + 1,
                           (int)(r->len - inner), r->str + inner);
    else
        v = llmb_xasprintf("%c%.*s\t%zu\t%s%.*s", end[0] - 'a' + 'A',
                           (int)(tab - end - 1), end + 1, strlen(tab + 1),
                           tab + 1, (int)(r->len - inner), r->str + inner);
    freeReplyObject(r);
    freeReplyObject(tq_cmd("HSET %s:jd %s %b", T.base, id, v, strlen(v)));
    free(v);
}

void tq_job_end_clear(const char *id)
{
    redisReply *r = tq_cmd("HGET %s:jd %s", T.base, id);
    const char *t, *u;
    size_t inner;

    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_true(end_split(r->str, r->len, &t, &u, &inner));
    freeReplyObject(tq_cmd("HSET %s:jd %s %b", T.base, id, r->str + inner,
                           r->len - inner));
    freeReplyObject(r);
}

long long tq_ended_count(void)
{
    redisReply *r = tq_cmd("HVALS %s:jd", T.base);
    long long n = 0;

    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->len > 0 && r->element[i]->str[0] >= 'A' &&
            r->element[i]->str[0] <= 'Z')
            n++;
    freeReplyObject(r);
    return n;
}

char *tq_push_and_complete(const char *doc)
{
    struct tq_task t[1];
    char *id = tq_push(doc);

    assert_int_equal(tq_claim("w1", 1, "30000", t, NULL), 1);
    assert_string_equal(t[0].id, id);
    assert_int_equal(tq_complete("w1", &t[0], "{}"), 1);
    return id;
}

redisReply *tq_complete_batch(const struct tq_task *t, int n, int bad,
                              const char *bad_result, const char *result)
{
    const char **argv = calloc(5 + 3 * (size_t)n, sizeof(*argv));
    redisReply *r;
    int i, argc = 0;

    assert_non_null(argv);
    argv[argc++] = "FCALL";
    argv[argc++] = "llmb_complete";
    argv[argc++] = "1";
    argv[argc++] = T.base;
    argv[argc++] = "w1";
    for (i = 0; i < n; i++) {
        argv[argc++] = t[i].ref;
        argv[argc++] = t[i].tok;
        argv[argc++] = i == bad ? bad_result : result;
    }
    r = redisCommandArgv(T.c, argc, argv, NULL);
    free(argv);
    assert_non_null(r);
    return r;
}

long long tq_zcard(const char *sub)
{
    return tq_cmd_int("ZCARD %s:%s", T.base, sub);
}

long long tq_waiting(void)
{
    return tq_cmd_int("LLEN %s:pl", T.base) + tq_zcard("pz");
}

void tq_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}
