/*
 * Unit tests of the llm executor's stream reading: the SSE framing
 * (worker/executors/llm_sse.c) and what the OpenAI chunks mean
 * (llm_response.c). The central test feeds a real-looking stream split at
 * every byte boundary, in two and in three pieces and one byte at a time,
 * and checks that the events and the counts never depend on the split.
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

/* Collects events as "type|data" lines. */
struct sink {
    struct llmb_buf out;
    int n;
};

static int collect(void *arg, const char *event, const char *data,
                   size_t len)
{
    struct sink *s = arg;

    llmb_buf_appendf(&s->out, "%s|", event);
    llmb_buf_append(&s->out, data, len);
    llmb_buf_append(&s->out, "\n", 1);
    s->n++;
    return 0;
}

/* Parses the pieces of text cut at the given offsets (ascending, ncut of
 * them); returns the collected events (free it). */
static char *parse_cut(const char *text, const size_t *cuts, size_t ncut,
                       int *nevents)
{
    struct llmb_llm_sse p;
    struct sink s;
    size_t len = strlen(text), at = 0;

    llmb_buf_init(&s.out);
    s.n = 0;
    llmb_llm_sse_init(&p, 1 << 20, collect, &s);
    for (size_t i = 0; i <= ncut; i++) {
        size_t end = i < ncut ? cuts[i] : len;
        assert_int_equal(llmb_llm_sse_feed(&p, text + at, end - at), 0);
        at = end;
    }
    llmb_llm_sse_fini(&p);
    *nevents = s.n;
    return llmb_buf_steal(&s.out);
}

static void test_sse_basics(void **state)
{
    int n;
    char *out;

    (void)state;
    out = parse_cut("data: a\n\ndata:b\r\n\r\n: comment\ndata: c\rdata: d\r\r"
                    "event: error\ndata: {\"x\":1}\n\nid: 7\nretry: 5\n"
                    "data\n\nfoo: bar\n\n", NULL, 0, &n);
    assert_string_equal(out, "|a\n|b\n|c\nd\nerror|{\"x\":1}\n|\n");
    assert_int_equal(n, 5);
    free(out);

    /* An event cut short by the end of the stream is not dispatched. */
    out = parse_cut("data: whole\n\ndata: half\n", NULL, 0, &n);
    assert_string_equal(out, "|whole\n");
    free(out);

    /* Only one space after the colon is dropped. */
    out = parse_cut("data:  two\n\n", NULL, 0, &n);
    assert_string_equal(out, "| two\n");
    free(out);
}

static void test_sse_too_long(void **state)
{
    struct llmb_llm_sse p;
    struct sink s;

    (void)state;
    llmb_buf_init(&s.out);
    s.n = 0;
    llmb_llm_sse_init(&p, 16, collect, &s);
    assert_int_equal(llmb_llm_sse_feed(&p, "data: 0123456789\n\n", 18), 0);
    assert_int_equal(llmb_llm_sse_feed(&p, "data: 0123456789abcdef", 22),
                     LLMB_EPROTO);
    llmb_llm_sse_fini(&p);
    llmb_buf_fini(&s.out);
}

/* A chat stream as OpenAI sends it: the role chunk, content chunks, the
 * finish chunk, the usage chunk and [DONE], with mixed line ends. */
static const char chat_stream[] =
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
    "\"content\":\"\"},\"finish_reason\":null}]}\n\n"
    ": keep-alive\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},"
    "\"finish_reason\":null}]}\r\n\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\u00e9\"},"
    "\"finish_reason\":null}]}\r\r"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"!\"},"
    "\"finish_reason\":null}]}\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{},"
    "\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
    "\"completion_tokens\":3,\"total_tokens\":15}}\n\n"
    "data: [DONE]\n\n";

static void test_sse_every_split(void **state)
{
    size_t len = strlen(chat_stream);
    int n0, n;
    char *whole = parse_cut(chat_stream, NULL, 0, &n0);

    (void)state;
    assert_int_equal(n0, 7);
    for (size_t i = 0; i <= len; i++) {
        size_t cut[1] = {i};
        char *out = parse_cut(chat_stream, cut, 1, &n);
        assert_string_equal(out, whole);
        free(out);
    }
    /* One byte at a time. */
    {
        size_t *cuts = llmb_xcalloc(len, sizeof(*cuts));
        char *out;
        for (size_t i = 0; i < len; i++)
            cuts[i] = i;
        out = parse_cut(chat_stream, cuts, len, &n);
        assert_string_equal(out, whole);
        free(out);
        free(cuts);
    }
    free(whole);
}

/* Feeds the stream to a response reader in pieces cut at the offsets;
 * piece k arrives at time 1000 * (k + 1) us. */
static void resp_cut(struct llmb_llm_resp *r, const char *text,
                     const size_t *cuts, size_t ncut)
{
    size_t len = strlen(text), at = 0;

    llmb_llm_resp_init(r, true);
    for (size_t i = 0; i <= ncut; i++) {
        size_t end = i < ncut ? cuts[i] : len;
        assert_int_equal(llmb_llm_resp_feed(r, text + at, end - at,
                                            (int64_t)(1000 * (i + 1))), 0);
        at = end;
    }
}

static void check_chat(struct llmb_llm_resp *r)
{
    assert_int_equal(r->chunks, 3);
    assert_int_equal(r->prompt_tokens, 12);
    assert_int_equal(r->completion_tokens, 3);
    assert_true(r->finished);
    assert_true(r->done);
    assert_int_equal(r->chars, 3 + 5 + 1); /* "é" is two bytes */
    assert_int_equal(llmb_llm_resp_end(r), 0);
}

static void test_resp_every_split(void **state)
{
    size_t len = strlen(chat_stream);
    struct llmb_llm_resp r;

    (void)state;
    for (size_t i = 0; i <= len; i++) {
        size_t cut[1] = {i};
        resp_cut(&r, chat_stream, cut, 1);
        check_chat(&r);
        llmb_llm_resp_fini(&r);
    }
    /* Three pieces, every pair of cuts (a stride keeps it quick). */
    for (size_t i = 0; i <= len; i += 3)
        for (size_t j = i; j <= len; j += 7) {
            size_t cut[2] = {i, j};
            resp_cut(&r, chat_stream, cut, 2);
            check_chat(&r);
            llmb_llm_resp_fini(&r);
        }
}

/* Timestamps: first and last content chunk are the pieces they were
 * completed in, not the role chunk. */
static void test_resp_times(void **state)
{
    const char *s = chat_stream;
    const char *c1 = strstr(s, "Hel");
    const char *c3 = strstr(s, "\"!\"");
    size_t cuts[3];
    struct llmb_llm_resp r;

    (void)state;
    /* piece 1: up to just after the first content event; piece 2: up to
     * the third content event's data; piece 3: the rest. */
    cuts[0] = (size_t)(strstr(c1, "\r\n\r\n") - s) + 4;
    cuts[1] = (size_t)(c3 - s);
    cuts[2] = (size_t)(strstr(c3, "\n\n") - s) + 2;
    resp_cut(&r, s, cuts, 3);
    assert_int_equal(r.first_us, 1000);
    assert_int_equal(r.last_us, 3000);
    llmb_llm_resp_fini(&r);
}

static void test_resp_no_usage_no_done(void **state)
{
    struct llmb_llm_resp r;
    const char *s =
        "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\"b\"},"
        "\"finish_reason\":\"length\"}]}\n\n";

    (void)state;
    resp_cut(&r, s, NULL, 0);
    assert_int_equal(r.chunks, 2);
    assert_int_equal(r.prompt_tokens, -1);
    assert_int_equal(r.completion_tokens, -1);
    assert_false(r.done);
    assert_int_equal(llmb_llm_resp_end(&r), 0); /* finish_reason is enough */
    llmb_llm_resp_fini(&r);

    /* Neither [DONE] nor a finish_reason: unfinished. */
    resp_cut(&r, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n",
             NULL, 0);
    assert_int_equal(llmb_llm_resp_end(&r), LLMB_EPROTO);
    assert_non_null(strstr(r.error, "without a finish_reason"));
    llmb_llm_resp_fini(&r);

    /* Cut inside an event. */
    resp_cut(&r, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"},"
             "\"finish_reason\":\"stop\"}]}\n\ndata: {\"choi", NULL, 0);
    assert_int_equal(llmb_llm_resp_end(&r), LLMB_EPROTO);
    assert_non_null(strstr(r.error, "middle of an event"));
    llmb_llm_resp_fini(&r);
}

static void test_resp_errors(void **state)
{
    struct llmb_llm_resp r;

    (void)state;
    llmb_llm_resp_init(&r, true);
    assert_int_equal(llmb_llm_resp_feed(&r, "data: {not json\n\n", 17, 1),
                     LLMB_EPROTO);
    assert_non_null(strstr(r.error, "not a JSON object"));
    llmb_llm_resp_fini(&r);
    /* an error object: test_llm_chunk's test_error_object */
}

/* A response keeps the gap before each content chunk for the ITL
 * histogram, at most LLMB_LLM_GAPS_MAX of them: LLMB_LLM_GAPS_MAX + 1
 * chunks are a response, one more is a protocol error, whichever reading
 * (the scanner or the full parse) takes the chunk. */
static void test_resp_gaps_max(void **state)
{
    static const char ev[] =
        "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n";
    const size_t evlen = sizeof(ev) - 1, per = 1024;
    char *buf = llmb_xmalloc(evlen * per);
    struct llmb_llm_resp r;

    (void)state;
    for (size_t i = 0; i < per; i++)
        memcpy(buf + i * evlen, ev, evlen);
    for (int full = 0; full <= 1; full++) {
        llmb_llm_resp_init(&r, true);
        r.full_parse = full != 0;
        for (long n = 0; n < LLMB_LLM_GAPS_MAX; n += (long)per)
            assert_int_equal(llmb_llm_resp_feed(&r, buf, evlen * per, n), 0);
        assert_int_equal(llmb_llm_resp_feed(&r, ev, evlen, 1 << 30), 0);
        assert_int_equal(r.chunks, LLMB_LLM_GAPS_MAX + 1);
        assert_int_equal(r.ngaps, LLMB_LLM_GAPS_MAX);
        assert_int_equal(llmb_llm_resp_feed(&r, ev, evlen, 1 << 30),
                         LLMB_EPROTO);
        assert_non_null(strstr(r.error, "more than 1048577 content chunks"));
        assert_int_equal(r.ngaps, LLMB_LLM_GAPS_MAX);
        llmb_llm_resp_fini(&r);
    }
    free(buf);
}

static void test_resp_completions_and_body(void **state)
{
    struct llmb_llm_resp r;
    const char *s =
        "data: {\"object\":\"text_completion\",\"choices\":[{\"text\":\"x\","
        "\"finish_reason\":null}]}\n\n"
        "data: {\"choices\":[{\"text\":\"yz\",\"finish_reason\":\"length\"}],"
        "\"usage\":null}\n\ndata: [DONE]\n\n";
    const char *body =
        "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":"
        "\"hello there\"},\"finish_reason\":\"stop\"}],\"usage\":"
        "{\"prompt_tokens\":5,\"completion_tokens\":2}}";

    (void)state;
    llmb_llm_resp_init(&r, false);
    assert_int_equal(llmb_llm_resp_feed(&r, s, strlen(s), 5), 0);
    assert_int_equal(r.chunks, 2);
    assert_int_equal(r.chars, 3);
    assert_int_equal(llmb_llm_resp_end(&r), 0);
    llmb_llm_resp_fini(&r);

    llmb_llm_resp_init(&r, true);
    assert_int_equal(llmb_llm_resp_body(&r, body, strlen(body), 9), 0);
    assert_int_equal(r.chars, 11);
    assert_int_equal(r.prompt_tokens, 5);
    assert_int_equal(r.completion_tokens, 2);
    llmb_llm_resp_fini(&r);

    llmb_llm_resp_init(&r, true);
    assert_int_equal(llmb_llm_resp_body(&r, "{\"choices\":[]}", 14, 9),
                     LLMB_EPROTO);
    assert_non_null(strstr(r.error, "no choices"));
    llmb_llm_resp_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_basics),
        cmocka_unit_test(test_sse_too_long),
        cmocka_unit_test(test_sse_every_split),
        cmocka_unit_test(test_resp_every_split),
        cmocka_unit_test(test_resp_times),
        cmocka_unit_test(test_resp_no_usage_no_done),
        cmocka_unit_test(test_resp_errors),
        cmocka_unit_test(test_resp_gaps_max),
        cmocka_unit_test(test_resp_completions_and_body),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
