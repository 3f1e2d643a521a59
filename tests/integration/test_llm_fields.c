/*
 * The known fields of an llm or benchmark payload are one list
 * (include/llmb/llmfields.h) with a copy in lua/10-document.lua: every
 * name of the C list is pushed through llmb_push and taken, and unknown
 * names are refused at push in the same words by llmb_push (redis-cli),
 * by lib/job.c (llmb-push, before llmb_push_fields) and by
 * llmb_llm_fields_check (the executor's own check). A payload's "_kinds"
 * is checked the same way, for every job type, and so is the length of
 * "model".
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

#include <llmb/aggregate.h>
#include <llmb/err.h>
#include <llmb/job.h>
#include <llmb/llmfields.h>
#include <llmb/util.h>

#include "fixture.h"
#include "test_queue_support.h"

/* llmb_push of doc: NULL when taken, else its error (caller frees). */
static char *push_error(const char *doc)
{
    redisReply *r = tq_fcall("llmb_push", doc, NULL);
    char *err = NULL;

    if (r->type == REDIS_REPLY_ERROR)
        err = llmb_xstrdup(strncmp(r->str, "ERR ", 4) == 0 ? r->str + 4 :
                           r->str);
    else
        assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    return err;
}

/* lib/job.c on doc, as llmb-push --batch: NULL when taken. */
static char *fields_error(const char *doc)
{
    struct llmb_buf out;
    size_t lens[LLMB_PUSH_NFIELDS];
    char queue[LLMB_QUEUE_NAME_MAX + 1];
    char *err = NULL;

    llmb_buf_init(&out);
    if (llmb_job_fields_append(doc, strlen(doc), &out, lens, queue, &err) ==
        0)
        assert_null(err);
    llmb_buf_fini(&out);
    return err;
}

/* lib/job.c as llmb-push TYPE PAYLOAD: NULL when taken. */
static char *build_error(const char *type, const char *payload)
{
    struct llmb_job_args a = {.type = type, .payload = payload};
    struct llmb_buf out;
    char *err = NULL;

    llmb_buf_init(&out);
    llmb_job_doc_build(&a, &out, &err);
    llmb_buf_fini(&out);
    return err;
}

/* A payload holding every known field (benchmark's too when bench),
 * each with a null value: only names are checked at push. */
static char *every_field(bool bench)
{
    struct llmb_buf b;
    char *s;

    llmb_buf_init(&b);
    llmb_buf_appendf(&b, "{");
    for (size_t i = 0, k = 0; i < llmb_llm_nfields; i++)
        if (bench || llmb_llm_fields[i].kind != LLMB_LLM_FIELD_BENCHMARK)
            llmb_buf_appendf(&b, "%s\"%s\":null", k++ > 0 ? "," : "",
                             llmb_llm_fields[i].name);
    llmb_buf_appendf(&b, "}");
    s = llmb_xstrdup(b.data);
    llmb_buf_fini(&b);
    return s;
}

static void test_every_known_field_is_taken(void **state)
{
    (void)state;
    for (int bench = 0; bench < 2; bench++) {
        const char *type = bench ? "benchmark" : "llm";
        char *p = every_field(bench), *doc, *err;

        doc = llmb_xasprintf("{\"type\":\"%s\",\"payload\":%s}", type, p);
        err = push_error(doc);
        if (err != NULL)
            fail_msg("llmb_push refused %s: %s", doc, err);
        assert_null(fields_error(doc));
        assert_null(build_error(type, p));
        /* One at a time too, so that no name hides behind another. */
        for (size_t i = 0; i < llmb_llm_nfields; i++) {
            char *one;
            if (strcmp(llmb_llm_fields[i].name, "_kinds") == 0)
                continue; /* its value is checked: test_kinds_are_checked */
            if (!bench && llmb_llm_fields[i].kind == LLMB_LLM_FIELD_BENCHMARK)
                continue;
            /* (the workload objects are checked at push; null is none) */
            one = llmb_xasprintf("{\"type\":\"%s\",\"payload\":{\"%s\":%s}}",
                                 type, llmb_llm_fields[i].name,
                                 strcmp(llmb_llm_fields[i].name,
                                        "synthetic") == 0 ||
                                 strcmp(llmb_llm_fields[i].name,
                                        "dataset") == 0 ? "null" : "1");
            err = push_error(one);
            if (err != NULL)
                fail_msg("llmb_push refused %s: %s", one, err);
            free(one);
        }
        free(doc);
        free(p);
    }
}

/* The message every push path gives doc {"type": type, "payload":
 * payload}: llmb_push's must start with want (be want when whole), and
 * lib/job.c's as llmb-push --batch and as llmb-push TYPE PAYLOAD, and
 * lib, the library check's own (taken), must be the same. */
static void same_refusal(const char *type, const char *payload, char *lib,
                         const char *want, bool whole)
{
    char *doc = llmb_xasprintf("{\"type\":\"%s\",\"payload\":%s}", type,
                               payload);
    char *e1 = push_error(doc), *e2 = fields_error(doc),
         *e3 = build_error(type, payload);

    if (e1 == NULL)
        fail_msg("llmb_push took %s", doc);
    if (strncmp(e1, want, strlen(want)) != 0 ||
        (whole && strlen(e1) != strlen(want)))
        fail_msg("llmb_push said \"%s\", want it %s \"%s\"", e1,
                 whole ? "to be" : "to start", want);
    assert_non_null(e2);
    assert_non_null(e3);
    assert_non_null(lib);
    assert_string_equal(e2, e1);
    assert_string_equal(e3, e1);
    assert_string_equal(lib, e1);
    free(e1);
    free(e2);
    free(e3);
    free(lib);
    free(doc);
}

/* The same message from every path, and the executor's check. */
static void refused_everywhere(const char *type, const char *payload,
                               const char *want_start)
{
    json_t *p = json_loads(payload, 0, NULL);
    char *lib = NULL;

    assert_non_null(p);
    assert_int_equal(llmb_llm_fields_check(p, strcmp(type, "benchmark") == 0,
                                           &lib), -1);
    json_decref(p);
    same_refusal(type, payload, lib, want_start, false);
}

static void test_unknown_fields_are_refused(void **state)
{
    (void)state;
    refused_everywhere("llm", "{\"model\":\"m\",\"concurency\":8}",
                       "llm payload field \"concurency\" is not known; did "
                       "you mean \"concurrency\"? known: endpoint, requests, "
                       "concurrency, rate, ");
    refused_everywhere("llm", "{\"warmup\":3,\"duration\":2}",
                       "llm payload field \"duration\" is not known; did you "
                       "mean \"duration_s\"?");
    refused_everywhere("llm", "{\"top_k\":40}",
                       "llm payload field \"top_k\" is not known; did you "
                       "mean \"top_p\"?");
    refused_everywhere("llm", "{\"provider\":\"openai\"}",
                       "llm payload field \"provider\" is not known; known: "
                       "endpoint, requests,");
    refused_everywhere("benchmark", "{\"iteratoins\":5}",
                       "benchmark payload field \"iteratoins\" is not known; "
                       "did you mean \"iterations\"? known: endpoint, "
                       "provider, iterations,");
    /* two swapped pairs: two edits, close, on every path alike */
    refused_everywhere("llm", "{\"tmeperatuer\":0.5}",
                       "llm payload field \"tmeperatuer\" is not known; did "
                       "you mean \"temperature\"?");
    refused_everywhere("llm", "{\"zzz_server_thing\":1}",
                       "llm payload field \"zzz_server_thing\" is not known; "
                       "known: ");
}

/* A payload's "_kinds" (aggregate kinds, any job type) is checked at
 * push by every path in the same words: llmb_push, lib/job.c as
 * llmb-push --batch and as llmb-push TYPE PAYLOAD, and
 * llmb_agg_kinds_check itself. */
static void kinds_refused(const char *type, const char *payload,
                          const char *want)
{
    json_t *p = json_loads(payload, 0, NULL);
    char *lib = NULL;

    assert_non_null(p);
    assert_int_equal(llmb_agg_kinds_check(p, &lib), LLMB_EINVAL);
    json_decref(p);
    same_refusal(type, payload, lib, want, true);
}

static void test_kinds_are_checked(void **state)
{
    struct llmb_buf many;

    (void)state;
    kinds_refused("bench", "{\"_kinds\":{\"lat_ms\":\"duration\","
                  "\"zeta\":\"fast\",\"alpha\":\"slow\"}}",
                  "payload field \"_kinds\": \"alpha\" must be one of "
                  "duration, count, gauge, flag, label, got \"slow\"");
    kinds_refused("llm", "{\"model\":\"m\",\"_kinds\":{\"x\":3}}",
                  "payload field \"_kinds\": \"x\" must be one of "
                  "duration, count, gauge, flag, label, got a non-string");
    kinds_refused("t", "{\"_kinds\":\"count\"}",
                  "payload field \"_kinds\" must be an object of field "
                  "paths to kind names (duration, count, gauge, flag, "
                  "label)");
    kinds_refused("t", "{\"_kinds\":[\"count\"]}",
                  "payload field \"_kinds\" must be an object of field "
                  "paths to kind names (duration, count, gauge, flag, "
                  "label)");
    kinds_refused("t", "{\"_kinds\":{\"\":\"count\"}}",
                  "payload field \"_kinds\" has an empty field path");
    llmb_buf_init(&many);
    llmb_buf_appendf(&many, "{\"_kinds\":{");
    for (int i = 0; i <= LLMB_AGG_KINDS_MAX; i++)
        llmb_buf_appendf(&many, "%s\"f%d\":\"count\"", i > 0 ? "," : "", i);
    llmb_buf_appendf(&many, "}}");
    kinds_refused("t", many.data, "payload field \"_kinds\" has 1025 "
                  "entries; the limit is 1024");
    llmb_buf_fini(&many);
    /* good ones, and none, are taken */
    assert_null(push_error("{\"type\":\"t\",\"payload\":{\"_kinds\":"
                           "{\"summary.x\":\"count\",\"m\":\"label\"}}}"));
    assert_null(fields_error("{\"type\":\"t\",\"payload\":{\"_kinds\":"
                             "{\"summary.x\":\"count\"}}}"));
    assert_null(build_error("t", "{\"_kinds\":null}"));
    assert_null(push_error("{\"type\":\"t\",\"payload\":{\"_kinds\":"
                           "null}}"));
}

/* Other job types, and payloads that are not objects, are not looked at;
 * extra_body holds what the server alone knows. */
static void test_what_is_not_checked(void **state)
{
    (void)state;
    assert_null(push_error("{\"type\":\"t\",\"payload\":{\"concurency\":1}}"));
    assert_null(fields_error("{\"type\":\"t\",\"payload\":{\"concurency\":1}}"));
    assert_null(push_error("{\"type\":\"llm\",\"payload\":[1,2]}"));
    assert_null(push_error("{\"type\":\"llm\",\"payload\":\"x\"}"));
    assert_null(push_error("{\"type\":\"llm\",\"payload\":{\"extra_body\":"
                           "{\"top_k\":40,\"concurency\":1}}}"));
    assert_null(fields_error("{\"type\":\"llm\",\"payload\":{\"extra_body\":"
                             "{\"top_k\":40}}}"));
}

/* The workload objects (lib/llmworkload.c, lua/08-workload.lua): every
 * rule at both ends, refused in the same words by every path. */
static void test_workload_fields_are_refused(void **state)
{
    static const char *const cases[][2] = {
        {"{\"synthetic\":{\"input_tokens\":0}}",
         "llm payload field \"synthetic.input_tokens\" must be a token "
         "count from 1 to 100000 or a distribution, got 0"},
        {"{\"synthetic\":{\"input_tokens\":100001}}",
         "llm payload field \"synthetic.input_tokens\" must be a token "
         "count from 1 to 100000 or a distribution, got 100001"},
        {"{\"synthetic\":{\"input_tokens\":2.5}}",
         "llm payload field \"synthetic.input_tokens\" must be a token "
         "count from 1 to 100000 or a distribution, got 2.5"},
        {"{\"synthetic\":{\"input_tokens\":{\"dist\":\"fixed\","
         "\"value\":100001}}}",
         "llm payload field \"synthetic.input_tokens.value\" must be an "
         "integer from 1 to 100000, got 100001"},
        {"{\"synthetic\":{\"input_tokens\":{\"dist\":\"uniform\","
         "\"min\":0,\"max\":4}}}",
         "llm payload field \"synthetic.input_tokens.min\" must be an "
         "integer from 1 to 100000, got 0"},
        {"{\"synthetic\":{\"input_tokens\":{\"dist\":\"uniform\","
         "\"min\":5,\"max\":4}}}",
         "llm payload field \"synthetic.input_tokens\": min (5) is greater "
         "than max (4)"},
        {"{\"synthetic\":{\"input_tokens\":{\"dist\":\"normal\","
         "\"mean\":100000.5,\"stddev\":1}}}",
         "llm payload field \"synthetic.input_tokens.mean\" must be a number "
         "from 1 to 100000, got 100000.5"},
        {"{\"synthetic\":{\"input_tokens\":{\"dist\":\"normal\","
         "\"mean\":9}}}",
         "llm payload field \"synthetic.input_tokens.stddev\" is required: a "
         "number from 0 to 100000"},
        {"{\"synthetic\":{\"input_tokens\":{\"dist\":\"zipf\"}}}",
         "llm payload field \"synthetic.input_tokens.dist\" must be one of "
         "\"fixed\", \"uniform\", \"normal\", got \"zipf\""},
        {"{\"synthetic\":{\"input_tokens\":1,\"seed\":2147483648}}",
         "llm payload field \"synthetic.seed\" must be an integer from 0 to "
         "2147483647, got 2147483648"},
        {"{\"synthetic\":{\"input_tokens\":1,\"api\":\"x\"}}",
         "llm payload field \"synthetic.api\" must be \"chat\" "
         "(/chat/completions) or \"completions\" (/completions), got \"x\""},
        {"{\"synthetic\":{\"output_tokens\":1}}",
         "llm payload field \"synthetic.input_tokens\" is required: a token "
         "count or a distribution"},
        {"{\"synthetic\":\"x\"}",
         "llm payload field \"synthetic\" must be an object "
         "{\"input_tokens\": ..., \"output_tokens\": ..., \"seed\": N}, got "
         "\"x\""},
        {"{\"synthetic\":{\"input_tokens\":1},\"prompt\":\"x\"}",
         "llm payload: \"synthetic\" makes each request's prompt; give it or "
         "\"messages\"/\"prompt\", not both"},
        {"{\"synthetic\":{\"input_tokens\":1},\"dataset\":{}}",
         "llm payload: give \"synthetic\" or \"dataset\", not both"},
        {"{\"dataset\":{\"entries\":0}}",
         "llm payload field \"dataset.entries\" must be an integer from 1 to "
         "1000000, got 0"},
        {"{\"dataset\":{\"entries\":1000001}}",
         "llm payload field \"dataset.entries\" must be an integer from 1 to "
         "1000000, got 1000001"},
        {"{\"dataset\":{\"entries\":3,\"max_tokens\":\"ref\"}}",
         "llm payload field \"dataset.max_tokens\" must be \"reference\" "
         "(each entry's reference output length) or \"payload\", got "
         "\"ref\""},
        {"{\"dataset\":{\"entries\":3,\"shuffle\":true}}",
         "llm payload field \"dataset\" has an unknown key \"shuffle\" "
         "(known: entries, api, max_tokens)"},
        {"{\"dataset\":{\"entries\":3,\"max_tokens\":\"reference\"},"
         "\"max_tokens\":5}",
         "llm payload: \"dataset.max_tokens\": \"reference\" sets each "
         "request's max_tokens; give it or \"max_tokens\", not both"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        refused_everywhere("llm", cases[i][0], cases[i][1]);
    /* the largest values are taken (a dataset's entries are checked
     * against its upload when the push names an id) */
    assert_null(push_error("{\"type\":\"llm\",\"payload\":{\"synthetic\":"
                           "{\"input_tokens\":{\"dist\":\"normal\","
                           "\"mean\":100000,\"stddev\":100000},"
                           "\"output_tokens\":{\"dist\":\"uniform\","
                           "\"min\":1,\"max\":100000},\"seed\":2147483647,"
                           "\"api\":\"completions\"}}}"));
    assert_null(build_error("llm", "{\"dataset\":{\"entries\":1000000,"
                            "\"api\":\"chat\",\"max_tokens\":\"payload\"}}"));
}

/* "model" has at most LLMB_LLM_MODEL_MAX (200) bytes: every record of
 * the job carries it. */
static void test_model_length_is_capped(void **state)
{
    char name[LLMB_LLM_MODEL_MAX + 2];
    char *payload, *doc;

    (void)state;
    memset(name, 'm', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0'; /* 201 bytes */
    payload = llmb_xasprintf("{\"model\":\"%s\",\"prompt\":\"x\"}", name);
    refused_everywhere("llm", payload, "llm payload field \"model\" is 201 "
                                       "bytes; the limit is 200");
    refused_everywhere("benchmark", payload, "benchmark payload field "
                                             "\"model\" is 201 bytes; the "
                                             "limit is 200");
    free(payload);
    name[LLMB_LLM_MODEL_MAX] = '\0'; /* 200 bytes: taken */
    payload = llmb_xasprintf("{\"model\":\"%s\",\"prompt\":\"x\"}", name);
    doc = llmb_xasprintf("{\"type\":\"llm\",\"payload\":%s}", payload);
    assert_null(push_error(doc));
    assert_null(fields_error(doc));
    assert_null(build_error("benchmark", payload));
    free(doc);
    free(payload);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, tq_each_setup, tq_each_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T_(test_every_known_field_is_taken),
        T_(test_unknown_fields_are_refused),
        T_(test_kinds_are_checked),
        T_(test_what_is_not_checked),
        T_(test_workload_fields_are_refused),
        T_(test_model_length_is_capped),
    };
    return cmocka_run_group_tests(tests, tq_setup, tq_teardown);
}
