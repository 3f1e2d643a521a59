/*
 * Unit tests of the fast chunk reader (worker/executors/llm_chunk.c):
 * what it answers on its own, what it leaves to the full parse, and, for
 * every case and every truncation and byte change of it, that a response
 * reader using it agrees with one that parses every chunk with jansson
 * (llmb_llm_resp.full_parse). A stream with the shapes real servers send
 * (role-only first chunk, escapes, empty deltas, a usage-only last chunk,
 * comments, CR LF, [DONE]) is split at every byte.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/util.h>

#include "executors/llm.h"

/* Scans s; returns the scanner's answer. */
static int scan(const char *s, bool chat, struct llmb_llm_chunk *ck)
{
    return llmb_llm_chunk_scan(s, strlen(s), chat, ck);
}

static void test_plain_chunks(void **state)
{
    struct llmb_llm_chunk ck;

    (void)state;
    assert_int_equal(scan("{\"id\":\"x\",\"object\":\"chat.completion.chunk\","
                          "\"created\":1700000000,\"model\":\"m\",\"choices\":"
                          "[{\"index\":0,\"delta\":{\"content\":\"Hello\"},"
                          "\"logprobs\":null,\"finish_reason\":null}]}",
                          true, &ck), 0);
    assert_int_equal(ck.content, 5);
    assert_false(ck.finished);
    assert_int_equal(ck.prompt_tokens, -1);
    assert_int_equal(ck.completion_tokens, -1);

    /* Role only: no content. */
    assert_int_equal(scan("{\"choices\":[{\"delta\":{\"role\":\"assistant\","
                          "\"content\":\"\"}}]}", true, &ck), 0);
    assert_int_equal(ck.content, 0);
    /* Empty delta with a finish_reason. */
    assert_int_equal(scan("{\"choices\":[{\"delta\":{},\"finish_reason\":"
                          "\"stop\"}]}", true, &ck), 0);
    assert_int_equal(ck.content, 0);
    assert_true(ck.finished);
    /* Usage only, the last chunk with include_usage. */
    assert_int_equal(scan(" { \"choices\" : [ ] , \"usage\" : {\"prompt_tokens\""
                          ":12,\"completion_tokens\":3,\"total_tokens\":15} } ",
                          true, &ck), 0);
    assert_int_equal(ck.content, 0);
    assert_int_equal(ck.prompt_tokens, 12);
    assert_int_equal(ck.completion_tokens, 3);
    /* Counts that are not non-negative integers are not taken. */
    assert_int_equal(scan("{\"usage\":{\"prompt_tokens\":-1,"
                          "\"completion_tokens\":2.0}}", true, &ck), 0);
    assert_int_equal(ck.prompt_tokens, -1);
    assert_int_equal(ck.completion_tokens, -1);
    assert_int_equal(scan("{\"usage\":{\"prompt_tokens\":-0}}", true, &ck), 0);
    assert_int_equal(ck.prompt_tokens, 0);
    /* Reasoning and tool calls count; an empty tool_calls does not. */
    assert_int_equal(scan("{\"choices\":[{\"delta\":{\"reasoning_content\":"
                          "\"ab\",\"reasoning\":\"c\"}}]}", true, &ck), 0);
    assert_int_equal(ck.content, 3);
    assert_int_equal(scan("{\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":"
                          "\"t\"}]}}]}", true, &ck), 0);
    assert_int_equal(ck.content, 1);
    assert_int_equal(scan("{\"choices\":[{\"delta\":{\"tool_calls\":[]}}]}",
                          true, &ck), 0);
    assert_int_equal(ck.content, 0);
    /* Two choices add up; a choice that is not an object is nothing. */
    assert_int_equal(scan("{\"choices\":[{\"delta\":{\"content\":\"ab\"}},7,"
                          "{\"delta\":{\"content\":\"c\"},\"finish_reason\":"
                          "\"length\"}]}", true, &ck), 0);
    assert_int_equal(ck.content, 3);
    assert_true(ck.finished);
    /* Completions read text, and chat reads delta, not the other. */
    assert_int_equal(scan("{\"choices\":[{\"text\":\"xyz\",\"delta\":{"
                          "\"content\":\"q\"}}]}", false, &ck), 0);
    assert_int_equal(ck.content, 3);
    assert_int_equal(scan("{\"choices\":[{\"text\":\"xyz\",\"delta\":{"
                          "\"content\":\"q\"}}]}", true, &ck), 0);
    assert_int_equal(ck.content, 1);
    /* A null error is no error. */
    assert_int_equal(scan("{\"error\":null,\"choices\":[{\"delta\":{"
                          "\"content\":\"a\"}}]}", true, &ck), 0);
    assert_int_equal(ck.content, 1);
}

static void test_escapes(void **state)
{
    struct llmb_llm_chunk ck;

    (void)state;
    /* Each escape is the bytes it decodes to: \n 1, \" 1, \u00e9 2,
     * \u4e2d 3, a surrogate pair 4, raw UTF-8 as it is. */
    assert_int_equal(scan("{\"choices\":[{\"delta\":{\"content\":"
                          "\"a\\n\\\"\\\\\\/\\b\\f\\r\\t\"}}]}", true, &ck), 0);
    assert_int_equal(ck.content, 9);
    assert_int_equal(scan("{\"choices\":[{\"delta\":{\"content\":"
                          "\"\\u00e9\\u4E2D\\ud83d\\ude00\"}}]}", true, &ck),
                     0);
    assert_int_equal(ck.content, 2 + 3 + 4);
    assert_int_equal(scan("{\"choices\":[{\"delta\":{\"content\":"
                          "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"}}]}", true,
                          &ck), 0);
    assert_int_equal(ck.content, 9);
}

/* Left to the full parse: errors, unusual and invalid text. */
static void test_left_to_full(void **state)
{
    static const char *const full[] = {
        "{\"error\":{\"message\":\"overloaded\"}}",
        "{\"error\":\"busy\"}",
        "{\"choices\":[],\"choices\":[]}",          /* duplicate */
        "{\"usage\":{\"prompt_tokens\":1,\"prompt_tokens\":2}}",
        "{\"choices\":[{\"delta\":{\"content\":\"a\",\"content\":\"b\"}}]}",
        "{\"ch\\u006fices\":[]}",                   /* escaped key */
        "{\"usage\":{\"prompt_tokens\":1234567890123456789}}",
        "{\"x\":1e400}",
        "{\"x\":\"\\u0000\"}",                      /* jansson refuses */
        "{\"x\":\"\\udc00\"}",                      /* lone low surrogate */
        "{\"x\":\"\\ud800x\"}",                     /* lone high surrogate */
        "{\"x\":\"\xc0\xaf\"}",                     /* overlong */
        "{\"x\":\"\xed\xa0\x80\"}",                 /* UTF-8 surrogate */
        "{\"x\":\"\xf4\x90\x80\x80\"}",             /* > U+10FFFF */
        "{\"x\":\"a\tb\"}",                         /* raw control */
        "{\"x\":01}", "{\"x\":1.}", "{\"x\":.5}", "{\"x\":1e}", "{\"x\":-}",
        "{\"x\":tru}", "{\"x\":nulll}", "{\"x\":1,}", "{,}", "{\"x\"}",
        "[1]", "\"s\"", "7", "", "{", "{}x", "{}{}",
        "{\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
        "{\"x\":\"\\q\"}", "{\"x\":\"\\u12G4\"}",
    };
    struct llmb_llm_chunk ck;

    (void)state;
    for (size_t i = 0; i < sizeof(full) / sizeof(full[0]); i++)
        if (scan(full[i], true, &ck) != 1)
            fail_msg("scanned on its own: %s", full[i]);
    /* Not too deep, though. */
    assert_int_equal(scan("{\"x\":[[[[1]]]],\"y\":{\"z\":{}}}", true, &ck), 0);
    assert_int_equal(scan("{\"x\":-0.5e-10,\"y\":1E+2,\"z\":true,\"w\":false}",
                          true, &ck), 0);
}

/* What a response reader ends with, to compare two of them. */
struct outcome {
    int rc;
    long chunks;
    size_t chars;
    long prompt, completion;
    bool finished, done, error;
    int64_t first_us, last_us;
    size_t ngaps;
};

/* Feeds text, cut at the offsets, to a reader (fast or full parse).
 * Piece k arrives at 1000 * (k + 1) us. */
static struct outcome feed(const char *text, size_t len, const size_t *cuts,
                           size_t ncut, bool chat, bool full)
{
    struct llmb_llm_resp r;
    struct outcome o;
    size_t at = 0;

    memset(&o, 0, sizeof(o));
    llmb_llm_resp_init(&r, chat);
    r.full_parse = full;
    for (size_t i = 0; i <= ncut && o.rc == 0; i++) {
        size_t end = i < ncut ? cuts[i] : len;
        o.rc = llmb_llm_resp_feed(&r, text + at, end - at,
                                  (int64_t)(1000 * (i + 1)));
        at = end;
    }
    if (o.rc == 0)
        o.rc = llmb_llm_resp_end(&r);
    o.chunks = r.chunks;
    o.chars = r.chars;
    o.prompt = r.prompt_tokens;
    o.completion = r.completion_tokens;
    o.finished = r.finished;
    o.done = r.done;
    o.error = r.error != NULL;
    o.first_us = r.first_us;
    o.last_us = r.last_us;
    o.ngaps = r.ngaps;
    llmb_llm_resp_fini(&r);
    return o;
}

static void assert_same(const struct outcome *a, const struct outcome *b,
                        const char *what, size_t wlen)
{
    if (a->rc != b->rc || a->chunks != b->chunks || a->chars != b->chars ||
        a->prompt != b->prompt || a->completion != b->completion ||
        a->finished != b->finished || a->done != b->done ||
        a->error != b->error || a->first_us != b->first_us ||
        a->last_us != b->last_us || a->ngaps != b->ngaps)
        fail_msg("fast and full readings differ on %.*s: rc %d/%d chunks "
                 "%ld/%ld chars %zu/%zu usage %ld,%ld/%ld,%ld", (int)wlen,
                 what, a->rc, b->rc, a->chunks, b->chunks, a->chars, b->chars,
                 a->prompt, a->completion, b->prompt, b->completion);
}

/* data as one SSE event (a data line per line of it) then [DONE]; both
 * readers must agree. */
static void agree(const char *data, size_t len, bool chat)
{
    struct llmb_buf b;
    struct outcome fast, full;
    size_t at = 0;

    llmb_buf_init(&b);
    while (at <= len) {
        size_t e = at;
        while (e < len && data[e] != '\n' && data[e] != '\r')
            e++;
        llmb_buf_append(&b, "data: ", 6);
        llmb_buf_append(&b, data + at, e - at);
        llmb_buf_append(&b, "\n", 1);
        at = e + 1;
    }
    llmb_buf_append(&b, "\ndata: [DONE]\n\n", 15);
    fast = feed(b.data, b.len, NULL, 0, chat, false);
    full = feed(b.data, b.len, NULL, 0, chat, true);
    assert_same(&fast, &full, data, len);
    llmb_buf_fini(&b);
}

static const char *const cases[] = {
    "{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
    "\"\"},\"finish_reason\":null}]}",
    "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\\u00e9\\n\\\"\"},"
    "\"finish_reason\":null}]}",
    "{\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}",
    "{\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3}}",
    "{\"choices\":[{\"text\":\"xy\",\"finish_reason\":\"length\"}]}",
    "{\"error\":{\"message\":\"overloaded\",\"code\":503}}",
    "{\"error\":null,\"choices\":[{\"delta\":{\"tool_calls\":[{}]}}]}",
    "{\"choices\":[{\"delta\":{\"reasoning\":\"\xe4\xb8\xad\"}}],"
    "\"x\":[1.5e3,-2,true,false,null,{}]}",
};

/* Every case, every truncation of it, and every byte replaced by one of a
 * few that break or bend JSON: the two readings never differ. */
static void test_agrees_with_full_parse(void **state)
{
    static const char subst[] = "{}[]\",:\\0e.-u \x80\xff";

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i]);
        char *m = llmb_xstrdup(cases[i]);
        for (int chat = 0; chat <= 1; chat++) {
            for (size_t k = 0; k <= len; k++)
                agree(cases[i], k, chat);
            for (size_t k = 0; k < len; k++)
                for (size_t j = 0; j < sizeof(subst) - 1; j++) {
                    m[k] = subst[j];
                    agree(m, len, chat);
                    m[k] = cases[i][k];
                }
        }
        free(m);
    }
}

/* A stream with every shape, split at every byte and one byte at a time:
 * the fast reader gives what the full one gives, and the right figures. */
static const char stream[] =
    ": comment\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
    "\"content\":\"\"},\"finish_reason\":null}]}\r\n\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"He\\\"l\"},"
    "\"finish_reason\":null}]}\n\n"
    ": keep-alive\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{},"
    "\"finish_reason\":null}]}\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\u00e9\\n\"},"
    "\"finish_reason\":null}]}\r\r"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"!\"},"
    "\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,"
    "\"completion_tokens\":3,\"total_tokens\":10}}\r\n\r\n"
    "data: [DONE]\r\n\r\n";

static void check_stream(const struct outcome *o)
{
    assert_int_equal(o->rc, 0);
    assert_int_equal(o->chunks, 3);
    assert_int_equal(o->chars, 4 + 3 + 1);
    assert_int_equal(o->prompt, 7);
    assert_int_equal(o->completion, 3);
    assert_true(o->finished);
    assert_true(o->done);
    assert_false(o->error);
}

static void test_stream_every_split(void **state)
{
    size_t len = strlen(stream);
    size_t *cuts = llmb_xcalloc(len, sizeof(*cuts));
    struct outcome a, b;

    (void)state;
    for (size_t i = 0; i <= len; i++) {
        size_t cut[1] = {i};
        a = feed(stream, len, cut, 1, true, false);
        b = feed(stream, len, cut, 1, true, true);
        check_stream(&a);
        assert_same(&a, &b, stream, len);
    }
    for (size_t i = 0; i < len; i++)
        cuts[i] = i;
    a = feed(stream, len, cuts, len, true, false);
    b = feed(stream, len, cuts, len, true, true);
    check_stream(&a);
    assert_same(&a, &b, stream, len);
    free(cuts);
}

/* An error object in the stream stops it with the server's words. */
static void test_error_object(void **state)
{
    const char *s = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
                    "data: {\"error\":{\"message\":\"overloaded\"}}\n\n";
    struct llmb_llm_resp r;

    (void)state;
    llmb_llm_resp_init(&r, true);
    assert_int_equal(llmb_llm_resp_feed(&r, s, strlen(s), 1), LLMB_EPROTO);
    assert_int_equal(r.chunks, 1);
    assert_non_null(strstr(r.error, "overloaded"));
    llmb_llm_resp_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_chunks),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_left_to_full),
        cmocka_unit_test(test_agrees_with_full_parse),
        cmocka_unit_test(test_stream_every_split),
        cmocka_unit_test(test_error_object),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
