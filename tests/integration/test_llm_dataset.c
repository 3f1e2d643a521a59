/*
 * Dataset lines (docs/llm.md "Workloads") are read by two programs:
 * llmb-push checks a file with llmb_llm_dataset_entry (lib/llmworkload.c)
 * and llmb_dataset (lua/08-workload.lua) checks the lines redis-cli
 * sends. Each bad line here is refused by both in the same words, and
 * nothing of a refused call is stored; good lines become the same
 * entries, at the size limits too.
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
#include <jansson.h>

#include <llmb/llmworkload.h>
#include <llmb/util.h>

#include "fixture.h"
#include "test_queue_support.h"

/* FCALL llmb_dataset for job id with first 0 and the one line (len
 * bytes): the reply, never NULL (caller frees). */
static redisReply *store_one(const char *id, const char *line, size_t len)
{
    const char *argv[] = {"FCALL", "llmb_dataset", "1", T.base, id, "0",
                          line};
    size_t lens[] = {5, 12, 1, strlen(T.base), strlen(id), 1, len};
    redisReply *r = redisCommandArgv(T.c, 7, argv, lens);

    assert_non_null(r);
    return r;
}

static void test_bad_lines_same_words(void **state)
{
    static const char *const bad[] = {
        "hello",
        "[1, 2]",
        "{}",
        "{\"prompt\": 5}",
        "{\"prompt\": \"\"}",
        "{\"prompt\": \"a\", \"messages\": []}",
        "{\"messages\": []}",
        "{\"messages\": [{\"content\": \"x\"}]}",
        "{\"messages\": [{\"role\": \"user\"}, 3]}",
        "{\"conversations\": [{\"from\": \"gpt\", \"value\": \"x\"}]}",
        "{\"conversations\": [{\"from\": \"human\", \"value\": \"\"}]}",
        "{\"prompt\": \"a\", \"output_tokens\": 0}",
        "{\"prompt\": \"a\", \"output_tokens\": 100001}",
        "{\"prompt\": \"a\", \"output_tokens\": 2.5}",
        /* what cjson takes and JSON does not */
        "{\"prompt\": \"a\", \"output_tokens\": NaN}",
        "{\"prompt\": \"a\", \"output_tokens\": Infinity}",
        "{\"prompt\": \"a\", \"output_tokens\": 0x10}",
        "{\"prompt\": \"a\", \"x\": -Infinity}",
        "{\"prompt\": \"\xff\xfe\"}",
        "{\"prompt\": \"a\xc3\"}",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *err = NULL, *want;
        size_t elen = 0;
        char *e = llmb_llm_dataset_entry(bad[i], strlen(bad[i]), &elen, &err);
        redisReply *r = store_one("bad", bad[i], strlen(bad[i]));

        if (e != NULL)
            fail_msg("llmb_llm_dataset_entry took %s", bad[i]);
        if (r->type != REDIS_REPLY_ERROR)
            fail_msg("llmb_dataset took %s", bad[i]);
        want = llmb_xasprintf("ERR dataset line 1: %s", err);
        /* the JSON parsers' own words differ; the rest is the same */
        if (strncmp(err, "not a JSON object: ", 19) == 0)
            assert_int_equal(strncmp(r->str, want, 39), 0);
        else
            assert_string_equal(r->str, want);
        assert_int_equal(tq_cmd_int("EXISTS %s:dsu:bad", T.base), 0);
        freeReplyObject(r);
        free(want);
        free(err);
    }
}

/* The same entry from both: a ShareGPT line becomes its prompt and the
 * reference output's tokens (4 bytes a token); the largest entry is
 * taken, one byte more is refused. */
static void test_good_lines_same_entries(void **state)
{
    static const char *const good[][2] = {
        {"{\"id\": 7, \"conversations\": [{\"from\": \"system\", \"value\": "
         "\"s\"}, {\"from\": \"human\", \"value\": \"hi\"}, {\"from\": "
         "\"gpt\", \"value\": \"123456789\"}]}",
         "{\"prompt\":\"hi\",\"output_tokens\":3}"},
        {"{\"conversations\": [{\"from\": \"user\", \"value\": \"q\"}]}",
         "{\"prompt\":\"q\"}"},
        {"{\"prompt\":\"p\",\"output_tokens\":100000}",
         "{\"prompt\":\"p\",\"output_tokens\":100000}"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[]}]}",
         "{\"messages\":[{\"role\":\"user\",\"content\":[]}]}"},
    };
    struct llmb_buf big;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char *err = NULL, *id = llmb_xasprintf("good%zu", i);
        size_t elen = 0;
        char *e = llmb_llm_dataset_entry(good[i][0], strlen(good[i][0]),
                                         &elen, &err);
        redisReply *r = store_one(id, good[i][0], strlen(good[i][0])), *g;

        assert_non_null(e);
        assert_string_equal(e, good[i][1]);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        assert_int_equal(r->integer, 1);
        g = tq_cmd("LINDEX %s:dsu:%s 0", T.base, id);
        /* Lua keeps a prompt or messages line as it came: llmb-push
         * sends it as C made it */
        if (strstr(good[i][0], "conversations") != NULL) {
            json_t *a = json_loads(g->str, 0, NULL);
            json_t *b = json_loads(good[i][1], 0, NULL);
            assert_true(json_equal(a, b)); /* (cjson orders keys its way) */
            json_decref(a);
            json_decref(b);
        } else
            assert_string_equal(g->str, good[i][0]);
        freeReplyObject(g);
        freeReplyObject(r);
        free(e);
        free(id);
    }
    /* {"prompt":"xxx..."}: 13 bytes around the text */
    llmb_buf_init(&big);
    llmb_buf_appendf(&big, "{\"prompt\":\"");
    for (long i = 0; i < LLMB_LLM_DATASET_ENTRY_MAX - 13; i++)
        llmb_buf_append(&big, "x", 1);
    llmb_buf_appendf(&big, "\"}");
    for (int more = 0; more <= 1; more++) {
        char *err = NULL;
        size_t elen = 0;
        char *e;
        redisReply *r;
        if (more) {
            big.len -= 2;
            llmb_buf_appendf(&big, "x\"}");
        }
        e = llmb_llm_dataset_entry(big.data, big.len, &elen, &err);
        r = store_one("big", big.data, big.len);
        if (!more) {
            assert_non_null(e);
            assert_int_equal(elen, LLMB_LLM_DATASET_ENTRY_MAX);
            assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        } else {
            assert_null(e);
            assert_string_equal(err, "the entry is 262145 bytes; the limit "
                                     "is 262144");
            assert_int_equal(r->type, REDIS_REPLY_ERROR);
            assert_string_equal(r->str, "ERR dataset line 1: the entry is "
                                        "262145 bytes; the limit is 262144");
        }
        freeReplyObject(r);
        free(e);
        free(err);
    }
    llmb_buf_fini(&big);
}

/* An upload key of another type is someone else's: llmb_dataset and the
 * push that would take it refuse it by name, and neither deletes it. */
static void test_wrong_type_upload_kept(void **state)
{
    static const char line[] = "{\"prompt\":\"p\"}";
    redisReply *r;

    (void)state;
    freeReplyObject(tq_cmd("SET %s:dsu:wt x", T.base));
    r = store_one("wt", line, strlen(line));
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "is a string, llmb expects a list: "
                                    "rename or delete it"));
    freeReplyObject(r);
    r = tq_fcall("llmb_push", "{\"type\":\"llm\",\"id\":\"wt\",\"payload\":{"
                 "\"model\":\"m\",\"dataset\":{\"entries\":1}}}", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "is a string, llmb expects a list: "
                                    "rename or delete it"));
    freeReplyObject(r);
    assert_int_equal(tq_cmd_int("EXISTS %s:j:wt", T.base), 0);
    r = tq_cmd("GET %s:dsu:wt", T.base);
    assert_string_equal(r->str, "x");
    freeReplyObject(r);
    /* the count of its bytes too */
    freeReplyObject(tq_cmd("DEL %s:dsu:wt", T.base));
    freeReplyObject(tq_cmd("RPUSH %s:dsb:wt x", T.base));
    r = store_one("wt", line, strlen(line));
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "is a list, llmb expects a string: "
                                    "rename or delete it"));
    freeReplyObject(r);
    assert_int_equal(tq_cmd_int("LLEN %s:dsb:wt", T.base), 1);
}

/* A job pushed twice in one call whose dataset is refused: both copies
 * get the refusal, neither is answered as pushed. */
static void test_twice_in_a_call_refused_twice(void **state)
{
    static const char doc[] = "{\"type\":\"llm\",\"id\":\"tw\",\"payload\":{"
                              "\"model\":\"m\",\"dataset\":{\"entries\":1}}}";
    redisReply *r;

    (void)state;
    r = tq_fcall("llmb_push", doc, doc, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(r->element[i]->type, REDIS_REPLY_ERROR);
        assert_non_null(strstr(r->element[i]->str, "payload field \"dataset\" "
                                                    "says 1 entries, but 0"));
    }
    freeReplyObject(r);
    assert_int_equal(tq_cmd_int("EXISTS %s:j:tw", T.base), 0);
}

/* Calls of at most 1,000 lines; a call sent again appends nothing. */
static void test_call_limits(void **state)
{
    const char **argv = llmb_xcalloc(1007, sizeof(*argv));
    redisReply *r;

    (void)state;
    argv[0] = "FCALL";
    argv[1] = "llmb_dataset";
    argv[2] = "1";
    argv[3] = T.base;
    argv[4] = "calls";
    argv[5] = "0";
    for (int i = 6; i < 1007; i++)
        argv[i] = "{\"prompt\":\"p\"}";
    r = redisCommandArgv(T.c, 1007, argv, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_string_equal(r->str, "ERR llmb_dataset takes at most 1000 lines "
                                "per call, got 1001: split them over several "
                                "calls");
    freeReplyObject(r);
    r = redisCommandArgv(T.c, 1006, argv, NULL);
    assert_int_equal(r->integer, 1000);
    freeReplyObject(r);
    argv[5] = "1000";
    r = redisCommandArgv(T.c, 7, argv, NULL);
    assert_int_equal(r->integer, 1001);
    freeReplyObject(r);
    r = redisCommandArgv(T.c, 7, argv, NULL); /* sent again */
    assert_int_equal(r->integer, 1001);
    freeReplyObject(r);
    assert_int_equal(tq_cmd_int("LLEN %s:dsu:calls", T.base), 1001);
    assert_true(tq_cmd_int("TTL %s:dsu:calls", T.base) > 3500);
    r = tq_fcall("llmb_dataset_read", "calls", "0", "257", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    r = tq_fcall("llmb_dataset_read", "calls", "0", "1", NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR); /* not pushed yet */
    assert_non_null(strstr(r->str, "has no dataset"));
    freeReplyObject(r);
    free(argv);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, tq_each_setup, tq_each_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T_(test_bad_lines_same_words),
        T_(test_good_lines_same_entries),
        T_(test_call_limits),
        T_(test_wrong_type_upload_kept),
        T_(test_twice_in_a_call_refused_twice),
    };
    return cmocka_run_group_tests(tests, tq_setup, tq_teardown);
}
