/*
 * llmb_push_fields against a real redis-server: the jobs it stores are
 * the jobs llmb_push stores for the same documents (record, where it
 * waits, index, events), it refuses what llmb_push refuses in the same words, a bad job
 * leaves the others pushed and nothing of its own, and a call keeps FIFO
 * order within a priority. The vectors come from llmb_job_fields_append,
 * as llmb-push --batch makes them, or are written by hand like a redis-cli
 * user's. Each test uses its own key prefix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include <llmb/functions.h>
#include <llmb/job.h>
#include <llmb/keys.h>
#include <llmb/util.h>

#include "fixture.h"
#include "test_queue_support.h"

/* A growing FCALL: FCALL fn 1 <base> values... */
struct call {
    const char *argv[12000];
    size_t len[12000];
    int argc;
};

static void call_init(struct call *c, const char *fn)
{
    c->argc = 0;
    c->argv[c->argc] = "FCALL";
    c->len[c->argc++] = 5;
    c->argv[c->argc] = fn;
    c->len[c->argc++] = strlen(fn);
    c->argv[c->argc] = "1";
    c->len[c->argc++] = 1;
    c->argv[c->argc] = T.base;
    c->len[c->argc++] = strlen(T.base);
}

static void call_add(struct call *c, const char *v)
{
    assert_true(c->argc < 12000);
    c->argv[c->argc] = v;
    c->len[c->argc++] = strlen(v);
}

/* Adds the ten values of one job, in the order of enum llmb_push_field. */
static void call_job(struct call *c, const char *id, const char *type,
                     const char *payload, const char *priority,
                     const char *tasks, const char *timeout_s,
                     const char *max_retries, const char *backoff_ms,
                     const char *delay_s, const char *deadline_s)
{
    const char *v[LLMB_PUSH_NFIELDS] = {id, type, payload, priority, tasks,
                                       timeout_s, max_retries, backoff_ms,
                                       delay_s, deadline_s};
    size_t i;

    for (i = 0; i < LLMB_PUSH_NFIELDS; i++)
        call_add(c, v[i]);
}

static redisReply *call_run(struct call *c)
{
    redisReply *r = redisCommandArgv(T.c, c->argc, c->argv, c->len);
    assert_non_null(r);
    return r;
}

/* A job with every field default but type (and id, "" to mint one). */
static void call_simple(struct call *c, const char *id, const char *type)
{
    call_job(c, id, type, "", "", "", "", "", "", "", "");
}

/* The queue's sequence counter must be want. */
static void assert_seq(long long want)
{
    redisReply *r = tq_cmd("GET %s:seq", T.base);

    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(atoll(r->str), want);
    freeReplyObject(r);
}

/* The members of <base>:<sub> (the list "pl", else a sorted set, in
 * order) must be want[0..n-1]. */
static void assert_list(const char *sub, const char *const *want, size_t n)
{
    redisReply *r = strcmp(sub, "pl") == 0
                        ? tq_cmd("LRANGE %s:%s 0 -1", T.base, sub)
                        : tq_cmd("ZRANGE %s:%s 0 -1", T.base, sub);
    size_t i;

    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    if (r->elements != n)
        fail_msg("%s holds %zu members, want %zu", sub, r->elements, n);
    for (i = 0; i < n; i++)
        assert_string_equal(r->element[i]->str, want[i]);
    freeReplyObject(r);
}

/* The string of element i of array reply r. */
static const char *elem_str(redisReply *r, size_t i)
{
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_true(i < r->elements);
    if (r->element[i]->type != REDIS_REPLY_STRING)
        fail_msg("element %zu: %s", i,
                 r->element[i]->type == REDIS_REPLY_ERROR ? r->element[i]->str
                                                          : "not a string");
    return r->element[i]->str;
}

static const char *elem_err(redisReply *r, size_t i)
{
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_true(i < r->elements);
    if (r->element[i]->type != REDIS_REPLY_ERROR)
        fail_msg("element %zu is not an error", i);
    return r->element[i]->str;
}

/* Pushes doc with llmb_push; returns the reply (an id or an error). */
static redisReply *push_doc(const char *doc)
{
    return tq_cmd("FCALL llmb_push 1 %s %s", T.base, doc);
}

/* Pushes doc with llmb_push_fields, its values made by
 * llmb_job_fields_append as llmb-push --batch makes them. */
static redisReply *push_doc_fields(const char *doc)
{
    static struct call c;
    struct llmb_buf vals;
    size_t lens[LLMB_PUSH_NFIELDS], off = 0, i;
    char q[LLMB_QUEUE_NAME_MAX + 1];
    char *errstr = NULL;
    redisReply *r;

    llmb_buf_init(&vals);
    if (llmb_job_fields_append(doc, strlen(doc), &vals, lens, q, &errstr) != 0)
        fail_msg("fields of %s: %s", doc, errstr);
    call_init(&c, "llmb_push_fields");
    for (i = 0; i < LLMB_PUSH_NFIELDS; i++) {
        c.argv[c.argc] = vals.data + off;
        c.len[c.argc++] = lens[i];
        off += lens[i];
    }
    r = call_run(&c);
    llmb_buf_fini(&vals);
    return r;
}

static void test_valid_and_minted_ids(void **state)
{
    static struct call c;
    redisReply *r;
    const char *minted;

    (void)state;
    call_init(&c, "llmb_push_fields");
    call_simple(&c, "", "echo");
    call_job(&c, "job-1", "llm/chat:v1", "{\"prompt\": [1, 2.50]}", "7", "3",
             "2.5", "0", "250", "", "");
    r = call_run(&c);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    minted = elem_str(r, 0);
    /* the queue's 3-character tag and its counter, in base 36 */
    assert_true(strlen(minted) >= 4);
    assert_int_equal(strspn(minted, "0123456789abcdefghijklmnopqrstuvwxyz"),
                     strlen(minted));
    assert_string_equal(minted + 3, "1");
    assert_string_equal(elem_str(r, 1), "job-1");

    tq_assert_job(minted, "type", "echo");
    tq_assert_job(minted, "payload", "{}");
    tq_assert_job_defaults(minted);
    tq_assert_job("job-1", "type", "llm/chat:v1");
    tq_assert_job("job-1", "payload", "{\"prompt\": [1, 2.50]}");
    tq_assert_job("job-1", "priority", "7");
    tq_assert_job("job-1", "tasks", "3");
    tq_assert_job("job-1", "timeout_s", "2.5");
    tq_assert_job("job-1", "max_retries", "0");
    tq_assert_job("job-1", "backoff_ms", "250");
    tq_assert_job("job-1", "left", "3");
    /* job-1's three tasks wait as one cursor */
    assert_int_equal(tq_waiting(), 2);
    assert_int_equal(tq_stat("pending"), 4);
    assert_int_equal(tq_cmd_int("HLEN %s:jd", T.base), 2);
    assert_int_equal(tq_cmd_int("LLEN %s:jl", T.base), 2);
    /* one pushed event for the call (jobs 2) */
    assert_int_equal(tq_cmd_int("XLEN %s:events", T.base), 1);
    assert_int_equal(tq_cmd_int("LLEN %s:wake", T.base), 4);
    freeReplyObject(r);

    /* One job answers an array too. */
    call_init(&c, "llmb_push_fields");
    call_simple(&c, "job-2", "echo");
    r = call_run(&c);
    assert_int_equal(r->elements, 1);
    assert_string_equal(elem_str(r, 0), "job-2");
    freeReplyObject(r);
}

/* The view of job id (llmb_job) as "field=value\n" lines sorted, with the
 * fields that depend on the push time left out; deadline_ms becomes its
 * distance from created_ms. Caller frees. */
static char *job_dump(const char *id)
{
    redisReply *r = tq_cmd("FCALL_RO llmb_job 1 %s %s", T.base, id);
    struct llmb_buf b;
    char *lines[64];
    long long created = 0, deadline = -1;
    size_t n = 0, i, k;

    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    for (i = 0; i + 1 < r->elements; i += 2) {
        const char *f = r->element[i]->str, *v = r->element[i + 1]->str;
        if (strcmp(f, "created_ms") == 0)
            created = atoll(v);
        else if (strcmp(f, "deadline_ms") == 0)
            deadline = atoll(v);
        else if (strcmp(f, "id") != 0)
            lines[n++] = llmb_xasprintf("%s=%s", f, v);
        assert_true(n < 60);
    }
    if (deadline >= 0)
        lines[n++] = llmb_xasprintf("deadline_ms-created_ms=%lld",
                                    deadline - created);
    for (i = 1; i < n; i++)
        for (k = i; k > 0 && strcmp(lines[k - 1], lines[k]) > 0; k--) {
            char *t = lines[k];
            lines[k] = lines[k - 1];
            lines[k - 1] = t;
        }
    llmb_buf_init(&b);
    for (i = 0; i < n; i++) {
        llmb_buf_appendf(&b, "%s\n", lines[i]);
        free(lines[i]);
    }
    freeReplyObject(r);
    return llmb_buf_steal(&b);
}

/* Where job id waits: "delayed +<ms>" (due time after created_ms),
 * "pending <priority score>" in <base>:pz less its sequence number, or
 * "pending list" in <base>:pl; and its record without its created ms
 * (type, options, payload), its deadline option made its distance from
 * created_ms. Caller frees. */
static char *tasks_dump(const char *id)
{
    char *created = tq_job_get(id, "created_ms");
    char *rec0 = tq_hget("jd", id), *rec = rec0;
    const char *tab = strchr(rec0, '\t');
    const char *o = tab ? strchr(tab + 1, '\t') : NULL;
    const char *d = o ? strchr(o + 1, 'd') : NULL;
    const char *p = o ? strchr(o + 1, '\t') : NULL;
    redisReply *r;
    char *out;

    assert_non_null(tab);
    assert_non_null(p);
    if (d != NULL && d < p) {
        char *end;
        long long ms = strtoll(d + 1, &end, 10);
        rec = llmb_xasprintf("%.*s+%lld%s", (int)(d + 1 - rec0), rec0,
                             ms - atoll(created), end);
        free(rec0);
        tab = strchr(rec, '\t');
    }
    r = tq_cmd("ZSCORE %s:pd %s", T.base, id);
    if (r->type == REDIS_REPLY_STRING) {
        out = llmb_xasprintf("delayed +%lld %s",
                             atoll(r->str) - atoll(created), tab + 1);
    } else {
        freeReplyObject(r);
        r = tq_cmd("ZSCORE %s:pz %s", T.base, id);
        if (r->type == REDIS_REPLY_STRING) {
            /* -priority * 2^32 + seq: the priority part */
            long long sc = atoll(r->str);
            out = llmb_xasprintf("pending %lld %s",
                                 (sc - (sc & 0xffffffffLL)) >> 32, tab + 1);
        } else {
            freeReplyObject(r);
            r = tq_cmd("LPOS %s:pl %s", T.base, id);
            assert_int_equal(r->type, REDIS_REPLY_INTEGER);
            out = llmb_xasprintf("pending list %s", tab + 1);
        }
    }
    freeReplyObject(r);
    free(created);
    free(rec);
    return out;
}

/* doc with its one '@' replaced by id. Caller frees. */
static char *with_id(const char *doc, const char *id)
{
    const char *at = strchr(doc, '@');

    assert_non_null(at);
    return llmb_xasprintf("%.*s%s%s", (int)(at - doc), doc, id, at + 1);
}

static void test_stored_as_llmb_push_stores(void **state)
{
    /* @ is the id, so each document is pushed twice, once each way. */
    static const char *const docs[] = {
        "{\"type\":\"echo\",\"id\":\"@\"}",
        "{ \"id\" : \"@\" , \"type\":\"a.b/c:d\", \"payload\" : [1, 2 ,"
        "{\"k\":\"}]\\\"\"}] , \"priority\":-3,\"tasks\":4}",
        "{\"id\":\"@\",\"type\":\"t\",\"payload\":{\"n\":1.50e3},"
        "\"timeout_s\":0.25,\"max_retries\":0,\"backoff_ms\":1e3,"
        "\"priority\":1.0}",
        "{\"id\":\"@\",\"type\":\"t\",\"tasks\":3,\"delay_s\":1.5}",
        "{\"id\":\"@\",\"type\":\"t\",\"deadline_s\":60,\"tasks\":2}",
        "{\"id\":\"@\",\"type\":\"t\",\"delay_s\":2,\"deadline_s\":0.5,"
        "\"payload\":\"text\"}",
        "{\"id\":\"@\",\"type\":\"t\",\"payload\":null,\"delay_s\":0,"
        "\"deadline_s\":0,\"queue\":\"q\"}",
        "{\"id\":\"@\",\"type\":\"t\",\"payload\":12345678901234567890}",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        char ja[16], fa[16];
        char *jdoc, *fdoc, *jd, *fd, *jt, *ft;
        redisReply *r;

        snprintf(ja, sizeof(ja), "json-%zu", i);
        snprintf(fa, sizeof(fa), "fields-%zu", i);
        jdoc = with_id(docs[i], ja);
        fdoc = with_id(docs[i], fa);
        r = push_doc(jdoc);
        if (r->type != REDIS_REPLY_STRING)
            fail_msg("llmb_push %s: %s", jdoc, r->str);
        freeReplyObject(r);
        r = push_doc_fields(fdoc);
        assert_string_equal(elem_str(r, 0), fa);
        freeReplyObject(r);

        jd = job_dump(ja);
        fd = job_dump(fa);
        if (strcmp(jd, fd) != 0)
            fail_msg("%s\nllmb_push stored:\n%s\nllmb_push_fields stored:\n%s",
                     docs[i], jd, fd);
        jt = tasks_dump(ja);
        ft = tasks_dump(fa);
        if (strcmp(jt, ft) != 0)
            fail_msg("%s: tasks %s vs %s", docs[i], jt, ft);
        free(jd);
        free(fd);
        free(jt);
        free(ft);
        free(jdoc);
        free(fdoc);
    }
    /* the deadline sets, the index and the events hold both of each */
    assert_int_equal(tq_cmd_int("ZCARD %s:deadlines", T.base), 4);
    assert_int_equal(tq_cmd_int("HLEN %s:jd", T.base), 16);
    assert_int_equal(tq_cmd_int("LLEN %s:jl", T.base), 16);
    assert_int_equal(tq_cmd_int("XLEN %s:events", T.base), 16);
}

static void test_existing_id_changes_nothing(void **state)
{
    static struct call c;
    redisReply *r;

    (void)state;
    r = push_doc("{\"type\":\"a\",\"id\":\"x\",\"payload\":[1]}");
    freeReplyObject(r);
    call_init(&c, "llmb_push_fields");
    call_job(&c, "x", "b", "[2]", "5", "3", "", "", "", "", "");
    call_simple(&c, "y", "c");
    call_simple(&c, "y", "d"); /* the same id twice in one call */
    r = call_run(&c);
    assert_string_equal(elem_str(r, 0), "x");
    assert_string_equal(elem_str(r, 1), "y");
    assert_string_equal(elem_str(r, 2), "y");
    freeReplyObject(r);
    tq_assert_job("x", "type", "a");
    tq_assert_job("x", "payload", "[1]");
    tq_assert_job("x", "tasks", "1");
    tq_assert_job("y", "type", "c");
    assert_int_equal(tq_waiting(), 2);
    assert_int_equal(tq_cmd_int("HLEN %s:jd", T.base), 2);
    assert_int_equal(tq_cmd_int("LLEN %s:jl", T.base), 2);
    /* x's, then the call's, which pushed y alone */
    assert_int_equal(tq_cmd_int("XLEN %s:events", T.base), 2);
}

/* Refusals: each bad vector gets the message llmb_push gives for the
 * document saying the same (doc NULL: no such document). */
static void test_refusals_in_llmb_push_words(void **state)
{
    static const struct {
        enum llmb_push_field field;
        const char *value;
        const char *doc; /* the same job as a document, or NULL */
        const char *want;
    } cases[] = {
        {LLMB_PUSH_F_PRIORITY, "1.5", "{\"type\":\"t\",\"priority\":1.5}",
         "job field \"priority\" must be an integer from -1000000 to 1000000, got 1.5"},
        {LLMB_PUSH_F_PRIORITY, "1000001", "{\"type\":\"t\",\"priority\":1000001}", NULL},
        {LLMB_PUSH_F_PRIORITY, "\"high\"", "{\"type\":\"t\",\"priority\":\"high\"}",
         "job field \"priority\" must be an integer from -1000000 to 1000000, got \"high\""},
        {LLMB_PUSH_F_PRIORITY, "0x10", NULL,
         "job field \"priority\" must be an integer from -1000000 to 1000000, got 0x10"},
        {LLMB_PUSH_F_PRIORITY, "nan", NULL, NULL},
        {LLMB_PUSH_F_PRIORITY, " 5", NULL, NULL},
        {LLMB_PUSH_F_TASKS, "0", "{\"type\":\"t\",\"tasks\":0}",
         "job field \"tasks\" must be an integer from 1 to 10, got 0"},
        {LLMB_PUSH_F_TASKS, "11", "{\"type\":\"t\",\"tasks\":11}", NULL},
        {LLMB_PUSH_F_TASKS, "null", "{\"type\":\"t\",\"tasks\":null}", NULL},
        {LLMB_PUSH_F_TIMEOUT_S, "0", "{\"type\":\"t\",\"timeout_s\":0}", NULL},
        {LLMB_PUSH_F_TIMEOUT_S, "inf", NULL, NULL},
        {LLMB_PUSH_F_MAX_RETRIES, "101", "{\"type\":\"t\",\"max_retries\":101}", NULL},
        {LLMB_PUSH_F_BACKOFF_MS, "0", "{\"type\":\"t\",\"backoff_ms\":0}", NULL},
        {LLMB_PUSH_F_DELAY_S, "-1", "{\"type\":\"t\",\"delay_s\":-1}", NULL},
        {LLMB_PUSH_F_DEADLINE_S, "31536001", "{\"type\":\"t\",\"deadline_s\":31536001}", NULL},
        {LLMB_PUSH_F_PAYLOAD, "\"0123456789abcdef\"",
         "{\"type\":\"t\",\"payload\":\"0123456789abcdef\"}",
         "job field \"payload\" is 18 bytes; the limit is 16"},
        {LLMB_PUSH_F_PAYLOAD, "hello", NULL,
         "job field \"payload\" must be JSON text, got hello"},
        {LLMB_PUSH_F_ID, "a b", "{\"type\":\"t\",\"id\":\"a b\"}",
         "job field \"id\" must be a string of 1 to 128 characters from [A-Za-z0-9_.-], got \"a b\""},
        {LLMB_PUSH_F_ID, "x:1", "{\"type\":\"t\",\"id\":\"x:1\"}", NULL},
        {LLMB_PUSH_F_ID, "{q}", "{\"type\":\"t\",\"id\":\"{q}\"}", NULL},
        {LLMB_PUSH_F_TYPE, "a b", "{\"type\":\"a b\"}",
         "job field \"type\" must be a string of 1 to 128 characters from [A-Za-z0-9_.:/-], got \"a b\""},
        {LLMB_PUSH_F_TYPE, "", "{\"payload\":{}}", "job field \"type\" is required"},
    };
    char long_name[130];
    size_t i;
    redisReply *r;

    (void)state;
    freeReplyObject(tq_cmd("HSET %s:conf max_tasks 10 max_payload 16", T.base));
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        static struct call c;
        const char *v[LLMB_PUSH_NFIELDS] = {"", "t", "", "", "", "", "", "", "", ""};
        char *want = NULL;
        size_t k;

        v[cases[i].field] = cases[i].value;
        call_init(&c, "llmb_push_fields");
        for (k = 0; k < LLMB_PUSH_NFIELDS; k++)
            call_add(&c, v[k]);
        if (cases[i].doc != NULL) {
            r = push_doc(cases[i].doc);
            if (r->type != REDIS_REPLY_ERROR)
                fail_msg("llmb_push accepted %s", cases[i].doc);
            want = llmb_xstrdup(r->str);
            freeReplyObject(r);
            if (cases[i].want != NULL)
                assert_string_equal(want + 4, cases[i].want);
        } else if (cases[i].want != NULL) {
            want = llmb_xasprintf("ERR %s", cases[i].want);
        }
        r = call_run(&c);
        if (want != NULL && strcmp(elem_err(r, 0), want) != 0)
            fail_msg("value %s: got \"%s\", want \"%s\"", cases[i].value,
                     elem_err(r, 0), want);
        (void)elem_err(r, 0);
        freeReplyObject(r);
        free(want);
    }
    /* names at their length limit and one past it */
    memset(long_name, 'n', 128);
    long_name[128] = '\0';
    {
        static struct call c;
        call_init(&c, "llmb_push_fields");
        call_simple(&c, long_name, long_name);
        long_name[128] = 'n';
        long_name[129] = '\0';
        call_simple(&c, long_name, "t");
        call_simple(&c, "", long_name);
        r = call_run(&c);
        long_name[128] = '\0';
        assert_string_equal(elem_str(r, 0), long_name);
        assert_non_null(strstr(elem_err(r, 1), "job field \"id\" must be"));
        assert_non_null(strstr(elem_err(r, 2), "job field \"type\" must be"));
        freeReplyObject(r);
    }
    /* nothing written but the one good job */
    assert_int_equal(tq_waiting(), 1);
    assert_int_equal(tq_cmd_int("HLEN %s:jd", T.base), 1);
    assert_int_equal(tq_cmd_int("LLEN %s:jl", T.base), 1);
    assert_int_equal(tq_cmd_int("XLEN %s:events", T.base), 1);
}

static void test_wrong_argument_count(void **state)
{
    static struct call c;
    static const int counts[] = {0, 9, 11, 19};
    redisReply *r;
    size_t i;
    int k;

    (void)state;
    for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        call_init(&c, "llmb_push_fields");
        for (k = 0; k < counts[i]; k++)
            call_add(&c, k % 10 == 1 ? "t" : "");
        r = call_run(&c);
        assert_int_equal(r->type, REDIS_REPLY_ERROR);
        assert_non_null(strstr(r->str, "llmb_push_fields takes 10 values per "
                                       "job (id, type, payload, priority, "
                                       "tasks, timeout_s, max_retries, "
                                       "backoff_ms, delay_s, deadline_s)"));
        freeReplyObject(r);
    }
    r = tq_cmd("FCALL llmb_push_fields 1 %s:nobrace %s", T.prefix, "t");
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "is not a queue key"));
    freeReplyObject(r);
    assert_int_equal(tq_cmd_int("EXISTS %s:pl %s:pz %s:pd %s:jd %s:jl "
                                "%s:events %s:seq %s:idseq",
                                T.base, T.base, T.base, T.base, T.base,
                                T.base, T.base, T.base), 0);
}

static void test_bad_job_in_the_middle(void **state)
{
    static struct call c;
    redisReply *r;

    (void)state;
    call_init(&c, "llmb_push_fields");
    call_simple(&c, "m1", "t");
    call_job(&c, "m2", "t", "", "", "3", "", "", "", "", "");
    call_job(&c, "bad", "t", "[1]", "", "2", "", "", "", "", "9e99");
    call_job(&c, "m4", "t", "", "", "", "", "", "", "5", "");
    call_simple(&c, "m5", "t");
    r = call_run(&c);
    assert_int_equal(r->elements, 5);
    assert_string_equal(elem_str(r, 0), "m1");
    assert_string_equal(elem_str(r, 1), "m2");
    assert_non_null(strstr(elem_err(r, 2), "job field \"deadline_s\""));
    assert_string_equal(elem_str(r, 3), "m4");
    assert_string_equal(elem_str(r, 4), "m5");
    freeReplyObject(r);
    assert_int_equal(tq_cmd_int("EXISTS %s:j:bad", T.base), 0);
    assert_int_equal(tq_cmd_int("HEXISTS %s:jd bad", T.base), 0);
    assert_int_equal(tq_waiting(), 3);
    assert_int_equal(tq_stat("pending"), 5);
    assert_int_equal(tq_cmd_int("ZCARD %s:pd", T.base), 1);
    assert_list("pd", (const char *const[]){"m4"}, 1);
    assert_int_equal(tq_cmd_int("HLEN %s:jd", T.base), 4);
    assert_int_equal(tq_cmd_int("LLEN %s:jl", T.base), 4);
    assert_int_equal(tq_cmd_int("EXISTS %s:deadlines", T.base), 0);
    /* one pushed event for the call: jobs 4, the bad one not counted */
    assert_int_equal(tq_cmd_int("XLEN %s:events", T.base), 1);
    r = tq_cmd("XREVRANGE %s:events + - COUNT 1", T.base);
    assert_string_equal(r->element[0]->element[1]->element[3]->str, "4");
    assert_string_equal(r->element[0]->element[1]->element[5]->str, "m1");
    assert_string_equal(r->element[0]->element[1]->element[7]->str, "m5");
    freeReplyObject(r);
    /* m1, m2's cursor and m5 wait at priority 0 in call order (a list:
     * no sequence number); m4 is delayed */
    assert_list("pl", (const char *const[]){"m1", "m2", "m5"}, 3);
    assert_int_equal(tq_cmd_int("EXISTS %s:seq", T.base), 0);
}

/* Waiting order: higher priority first, then argument order, over calls;
 * a fan-out job waits as one member, its cursor, whose tasks a claim
 * hands out in index order. Priority 0 waits in the list <base>:pl, the
 * others in the sorted set <base>:pz. */
static void test_fifo_within_priority(void **state)
{
    static struct call c;
    static struct tq_task t[1000];
    static const char *const want_pz[] = {"hi-1", "hi-2", "lo"};
    static const char *const want_pl[] = {"a", "fan", "b", "c"};
    static const char *const order[] = {"hi-1", "hi-2", "a"};
    long long next = 0;
    int got, i, total = 0;

    (void)state;
    call_init(&c, "llmb_push_fields");
    call_simple(&c, "a", "t");
    call_job(&c, "lo", "t", "", "-1", "", "", "", "", "", "");
    call_job(&c, "hi-1", "t", "", "5", "", "", "", "", "", "");
    call_job(&c, "fan", "t", "", "", "2500", "", "", "", "", "");
    call_simple(&c, "b", "t");
    call_job(&c, "hi-2", "t", "", "5", "", "", "", "", "", "");
    freeReplyObject(call_run(&c));
    call_init(&c, "llmb_push_fields");
    call_simple(&c, "c", "t");
    freeReplyObject(call_run(&c));

    assert_list("pz", want_pz, 3);
    assert_list("pl", want_pl, 4);
    assert_int_equal(tq_stat("pending"), 2506);
    /* one sequence number per member of the sorted set */
    assert_seq(3);
    /* claimed 1000 at a time: hi-1, hi-2, a, then fan's tasks in order,
     * then b, c and lo */
    while ((got = tq_claim("w", 1000, "30000", t, NULL)) > 0) {
        for (i = 0; i < got; i++, total++) {
            if (total < 3)
                assert_string_equal(t[i].ref, order[total]);
            else if (total < 3 + 2500) {
                assert_string_equal(t[i].id, "fan");
                assert_int_equal(t[i].idx, next);
                next++;
            } else
                assert_string_equal(t[i].ref, total == 2503   ? "b"
                                              : total == 2504 ? "c"
                                                              : "lo");
        }
    }
    assert_int_equal(total, 2506);
    assert_int_equal(next, 2500);
    assert_int_equal(tq_stat("pending"), 0);
    assert_int_equal(tq_stat("running"), 2506);
}

/* One pushed event per call: the job's id when the call pushed one, else
 * the count and the first and last ids. The stream is cut to its cap once
 * per call. */
static void test_events_per_call_and_capped(void **state)
{
    static struct call c;
    redisReply *r, *f;
    long long len;
    int i;

    (void)state;
    freeReplyObject(tq_cmd("HSET %s:conf events_max 100", T.base));
    for (i = 0; i < 300; i++) {
        call_init(&c, "llmb_push_fields");
        call_simple(&c, "", "t");
        freeReplyObject(call_run(&c));
    }
    len = tq_cmd_int("XLEN %s:events", T.base);
    if (len < 100 || len >= 300)
        fail_msg("events stream holds %lld entries, cap 100", len);
    r = tq_cmd("XREVRANGE %s:events + - COUNT 1", T.base);
    f = r->element[0]->element[1];
    assert_int_equal(f->elements, 6);
    assert_string_equal(f->element[1]->str, "pushed");
    assert_string_equal(f->element[2]->str, "job");
    assert_string_equal(f->element[5]->str, "1");
    freeReplyObject(r);

    call_init(&c, "llmb_push_fields");
    call_simple(&c, "first-of-three", "t");
    call_simple(&c, "bad id!", "t");
    call_simple(&c, "", "t");
    call_simple(&c, "last-of-three", "t");
    r = call_run(&c);
    assert_int_equal(r->elements, 4);
    assert_int_equal(r->element[1]->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    len = tq_cmd_int("XLEN %s:events", T.base);
    r = tq_cmd("XREVRANGE %s:events + - COUNT 1", T.base);
    f = r->element[0]->element[1];
    assert_int_equal(f->elements, 10);
    assert_string_equal(f->element[1]->str, "pushed");
    assert_string_equal(f->element[2]->str, "jobs");
    assert_string_equal(f->element[3]->str, "3");
    assert_string_equal(f->element[5]->str, "first-of-three");
    assert_string_equal(f->element[7]->str, "last-of-three");
    assert_string_equal(f->element[9]->str, "3");
    freeReplyObject(r);
    if (len < 100 || len >= 300)
        fail_msg("events stream holds %lld entries, cap 100", len);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, tq_each_setup, tq_each_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T_(test_valid_and_minted_ids),
        T_(test_stored_as_llmb_push_stores),
        T_(test_existing_id_changes_nothing),
        T_(test_refusals_in_llmb_push_words),
        T_(test_wrong_argument_count),
        T_(test_bad_job_in_the_middle),
        T_(test_fifo_within_priority),
        T_(test_events_per_call_and_capped),
    };
    return cmocka_run_group_tests(tests, tq_setup, tq_teardown);
}
