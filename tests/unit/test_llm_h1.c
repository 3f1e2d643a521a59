/*
 * Unit tests of the HTTP/1.1 response reader (worker/executors/llm_h1.c).
 * The central test feeds real-looking responses split at every byte
 * boundary, in two and in three pieces and one byte at a time, and checks
 * that the body and what the head says never depend on the split; the
 * others go through each rule of the framing and each limit at both ends.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llmb/util.h>

#include "executors/llm_h1.h"

/* Collects the body; stops when calls reaches stop_at (if > 0). */
struct sink {
    struct llmb_buf body;
    int calls;
    int stop_at;
};

static int collect(void *arg, const char *data, size_t len)
{
    struct sink *s = arg;

    assert_true(len > 0);
    llmb_buf_append(&s->body, data, len);
    s->calls++;
    return s->stop_at > 0 && s->calls >= s->stop_at;
}

static void sink_init(struct sink *s)
{
    llmb_buf_init(&s->body);
    s->calls = 0;
    s->stop_at = 0;
}

/* Feeds text cut at the given offsets (ascending, ncut of them), each
 * piece whole (no leftovers expected); returns the body (free it). */
static char *parse_cut(struct llmb_h1 *p, const char *text, size_t len,
                       const size_t *cuts, size_t ncut)
{
    struct sink s;
    size_t at = 0;

    sink_init(&s);
    llmb_h1_init(p, false);
    for (size_t i = 0; i <= ncut; i++) {
        size_t end = i < ncut ? cuts[i] : len;

        if (end > at)
            assert_int_equal(llmb_h1_feed(p, text + at, end - at, collect,
                                          &s),
                             (ssize_t)(end - at));
        at = end;
    }
    llmb_buf_append(&s.body, "", 0);
    return llmb_buf_steal(&s.body);
}

static void same_outcome(const struct llmb_h1 *a, const char *abody,
                         const struct llmb_h1 *b, const char *bbody)
{
    assert_string_equal(abody, bbody);
    assert_int_equal(a->status, b->status);
    assert_string_equal(a->content_type, b->content_type);
    assert_int_equal(a->keep_alive, b->keep_alive);
    assert_int_equal(a->done, b->done);
    assert_int_equal(a->head_done, b->head_done);
    assert_int_equal(a->retry_after_s, b->retry_after_s);
}

static const char sse_chunked[] =
    "HTTP/1.1 200 OK\r\n"
    "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
    "Content-Type: text/event-stream; charset=utf-8\r\n"
    "Transfer-Encoding: chunked\r\n"
    "Cache-Control: no-cache\r\n"
    "Retry-After: 7\r\n"
    "\r\n"
    "33\r\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n\r\n"
    "16;ext=\"a;b\"\r\n"
    "data: {\"usage\":null}\n\n\r\n"
    "0E\r\n"
    "data: [DONE]\n\n\r\n"
    "0\r\n"
    "X-Trailer: yes\r\n"
    "\r\n";
static const char sse_body[] =
    "data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"}}]}\n\n"
    "data: {\"usage\":null}\n\n"
    "data: [DONE]\n\n";

static const char interim_len[] =
    "HTTP/1.1 100 Continue\r\n\r\n"
    "HTTP/1.1 103 Early Hints\n"
    "Link: </style.css>; rel=preload\n"
    "\n"
    "HTTP/1.1 429 Too Many Requests\r\n"
    "content-type:application/json\r\n"
    "CONTENT-LENGTH:   22  \r\n"
    "\r\n"
    "{\"error\":\"rate limit\"}";

/* The same outcome however the bytes are cut. */
static void check_splits(const char *text, const char *want_body,
                         int want_status, const char *want_ctype)
{
    struct llmb_h1 ref, p;
    size_t len = strlen(text), cuts[2];
    char *rbody, *body;

    rbody = parse_cut(&ref, text, len, NULL, 0);
    assert_string_equal(rbody, want_body);
    assert_int_equal(ref.status, want_status);
    assert_string_equal(ref.content_type, want_ctype);
    assert_true(ref.done);
    assert_true(ref.keep_alive);
    assert_int_equal(llmb_h1_eof(&ref), 0);

    for (size_t i = 1; i < len; i++) {
        cuts[0] = i;
        body = parse_cut(&p, text, len, cuts, 1);
        same_outcome(&ref, rbody, &p, body);
        free(body);
        for (size_t j = i + 1; j < len; j++) {
            cuts[1] = j;
            body = parse_cut(&p, text, len, cuts, 2);
            same_outcome(&ref, rbody, &p, body);
            free(body);
        }
    }

    {
        size_t *every = malloc(len * sizeof(*every));

        assert_non_null(every);
        for (size_t i = 0; i < len; i++)
            every[i] = i + 1;
        body = parse_cut(&p, text, len, every, len - 1);
        same_outcome(&ref, rbody, &p, body);
        free(body);
        free(every);
    }
    free(rbody);
}

static void test_split_chunked(void **state)
{
    (void)state;
    check_splits(sse_chunked, sse_body, 200,
                 "text/event-stream; charset=utf-8");
}

static void test_split_interim_length(void **state)
{
    (void)state;
    check_splits(interim_len, "{\"error\":\"rate limit\"}", 429,
                 "application/json");
}

/* One whole feed; returns its result and the body in s. */
static ssize_t feed_all(struct llmb_h1 *p, bool head, const char *text,
                        struct sink *s)
{
    sink_init(s);
    llmb_h1_init(p, head);
    return llmb_h1_feed(p, text, strlen(text), collect, s);
}

static void test_content_length(void **state)
{
    static const char text[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Length: 11\r\n"
                               "\r\n"
                               "hello worldHTTP/1.1 200 OK\r\n";
    struct llmb_h1 p;
    struct sink s;
    (void)state;

    /* The next response's bytes are left over. */
    assert_int_equal(feed_all(&p, false, text, &s),
                     (ssize_t)(strlen(text) - strlen("HTTP/1.1 200 OK\r\n")));
    assert_true(p.done);
    assert_true(p.head_done);
    assert_true(p.keep_alive);
    assert_int_equal(s.calls, 1); /* one run, not byte by byte */
    assert_int_equal(s.body.len, 11);
    assert_memory_equal(s.body.data, "hello world", 11);
    assert_string_equal(p.content_type, "");
    assert_int_equal(p.retry_after_s, -1);
    /* Done: more bytes are an error. */
    assert_int_equal(llmb_h1_feed(&p, "x", 1, collect, &s), LLMB_H1_ERROR);
    assert_non_null(p.error);
    llmb_buf_fini(&s.body);

    /* Content-Length: 0 is done at the head's end. */
    assert_int_equal(feed_all(&p, false,
                              "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                              &s),
                     38);
    assert_true(p.done);
    assert_int_equal(s.calls, 0);
    llmb_buf_fini(&s.body);

    /* The same length twice is no conflict; two different ones are. */
    assert_true(feed_all(&p, false,
                         "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
                         "Content-Length: 1\r\n\r\nz", &s) > 0);
    assert_true(p.done);
    llmb_buf_fini(&s.body);
    assert_int_equal(feed_all(&p, false,
                              "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
                              "Content-Length: 2\r\n\r\nzz", &s),
                     LLMB_H1_ERROR);
    assert_non_null(strstr(p.error, "Content-Length"));
    llmb_buf_fini(&s.body);
    assert_int_equal(feed_all(&p, false,
                              "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
                              &s),
                     LLMB_H1_ERROR);
    llmb_buf_fini(&s.body);
    /* INT64_MAX is read, one more is not. */
    assert_true(feed_all(&p, false,
                         "HTTP/1.1 200 OK\r\n"
                         "Content-Length: 9223372036854775807\r\n\r\n",
                         &s) > 0);
    assert_true(p.head_done);
    assert_false(p.done);
    llmb_buf_fini(&s.body);
    assert_int_equal(feed_all(&p, false,
                              "HTTP/1.1 200 OK\r\n"
                              "Content-Length: 9223372036854775808\r\n\r\n",
                              &s),
                     LLMB_H1_ERROR);
    llmb_buf_fini(&s.body);
}

static void test_until_close(void **state)
{
    static const char text[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: text/plain\r\n"
                               "\r\n"
                               "all of it";
    struct llmb_h1 p;
    struct sink s;
    (void)state;

    assert_int_equal(feed_all(&p, false, text, &s), (ssize_t)strlen(text));
    assert_true(p.head_done);
    assert_false(p.done);
    assert_false(p.keep_alive);
    assert_int_equal(llmb_h1_feed(&p, " and more", 9, collect, &s), 9);
    assert_int_equal(llmb_h1_eof(&p), 0);
    assert_true(p.done);
    assert_int_equal(llmb_h1_eof(&p), 0);
    llmb_buf_append(&s.body, "", 0);
    assert_string_equal(s.body.data, "all of it and more");
    assert_int_equal(s.calls, 2);
    llmb_buf_fini(&s.body);

    /* A last coding other than chunked: until the end too. */
    assert_true(feed_all(&p, false,
                         "HTTP/1.1 200 OK\r\n"
                         "Transfer-Encoding: chunked, gzip\r\n\r\nzz",
                         &s) > 0);
    assert_false(p.done);
    assert_false(p.keep_alive);
    assert_int_equal(s.body.len, 2);
    assert_int_equal(llmb_h1_eof(&p), 0);
    llmb_buf_fini(&s.body);
}

static void test_interim(void **state)
{
    static const char interim[] = "HTTP/1.1 100 Continue\r\n\r\n"
                                  "HTTP/1.1 102 Processing\r\n"
                                  "Content-Length: 5\r\n"
                                  "Content-Type: bad/interim\r\n"
                                  "Connection: close\r\n"
                                  "\r\n";
    static const char final[] = "HTTP/1.1 201 Created\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n"
                                "2\r\nok\r\n0\r\n\r\n";
    struct llmb_h1 p;
    struct sink s;
    (void)state;

    assert_int_equal(feed_all(&p, false, interim, &s),
                     (ssize_t)strlen(interim));
    /* The interim heads say nothing of the response. */
    assert_int_equal(p.status, 0);
    assert_false(p.head_done);
    assert_false(p.done);
    assert_int_equal(llmb_h1_feed(&p, final, strlen(final), collect, &s),
                     (ssize_t)strlen(final));
    assert_int_equal(p.status, 201);
    assert_true(p.done);
    assert_true(p.keep_alive);
    assert_string_equal(p.content_type, "");
    assert_int_equal(s.body.len, 2);
    llmb_buf_fini(&s.body);

    assert_int_equal(feed_all(&p, false,
                              "HTTP/1.1 101 Switching Protocols\r\n"
                              "Upgrade: websocket\r\n\r\n", &s),
                     LLMB_H1_ERROR);
    assert_non_null(strstr(p.error, "101"));
    llmb_buf_fini(&s.body);
}

static void test_no_body(void **state)
{
    static const char *const texts[] = {
        "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    static const char head_resp[] = "HTTP/1.1 200 OK\r\n"
                                    "Content-Length: 1000\r\n"
                                    "\r\n";
    struct llmb_h1 p;
    struct sink s;
    char buf[256];
    (void)state;

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        snprintf(buf, sizeof(buf), "%sHTTP/1.1", texts[i]);
        assert_int_equal(feed_all(&p, false, buf, &s),
                         (ssize_t)strlen(texts[i]));
        assert_true(p.done);
        assert_true(p.keep_alive);
        assert_int_equal(s.calls, 0);
        llmb_buf_fini(&s.body);
    }
    /* A response to HEAD has no body whatever its Content-Length. */
    snprintf(buf, sizeof(buf), "%sHTTP/1.1", head_resp);
    assert_int_equal(feed_all(&p, true, buf, &s),
                     (ssize_t)strlen(head_resp));
    assert_true(p.done);
    assert_int_equal(p.status, 200);
    assert_true(p.keep_alive);
    assert_int_equal(s.calls, 0);
    llmb_buf_fini(&s.body);
}

/* keep_alive after a whole feed of text. */
static bool keep_alive_of(const char *text, bool want_done)
{
    struct llmb_h1 p;
    struct sink s;

    assert_int_equal(feed_all(&p, false, text, &s), (ssize_t)strlen(text));
    assert_int_equal(p.done, want_done);
    llmb_buf_fini(&s.body);
    return p.keep_alive;
}

static void test_keep_alive(void **state)
{
    (void)state;
    assert_false(keep_alive_of("HTTP/1.0 200 OK\r\n"
                               "Content-Length: 0\r\n\r\n", true));
    assert_true(keep_alive_of("HTTP/1.0 200 OK\r\n"
                              "Connection: Keep-Alive\r\n"
                              "Content-Length: 0\r\n\r\n", true));
    /* A body delimited by the end cannot be followed by another. */
    assert_false(keep_alive_of("HTTP/1.0 200 OK\r\n"
                               "Connection: keep-alive\r\n\r\n", false));
    assert_true(keep_alive_of("HTTP/1.1 200 OK\r\n"
                              "Content-Length: 0\r\n\r\n", true));
    assert_false(keep_alive_of("HTTP/1.1 200 OK\r\n"
                               "Connection: close\r\n"
                               "Content-Length: 0\r\n\r\n", true));
    assert_false(keep_alive_of("HTTP/1.1 200 OK\r\n"
                               "Connection: upgrade ,  CLOSE \r\n"
                               "Content-Length: 0\r\n\r\n", true));
    assert_false(keep_alive_of("HTTP/1.0 200 OK\r\n"
                               "Connection: keep-alive, close\r\n"
                               "Content-Length: 0\r\n\r\n", true));
    assert_true(keep_alive_of("HTTP/1.1 200 OK\r\n"
                              "Connection: closed\r\n"
                              "Content-Length: 0\r\n\r\n", true));
    /* Chunked and a Content-Length: chunked frames it, not reused. */
    assert_false(keep_alive_of("HTTP/1.1 200 OK\r\n"
                               "Content-Length: 100\r\n"
                               "Transfer-Encoding: CHUNKED\r\n\r\n"
                               "0\r\n\r\n", true));
}

static void test_chunk_ext_trailers(void **state)
{
    static const char text[] = "HTTP/1.1 200 OK\r\n"
                               "Transfer-Encoding: gzip\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n"
                               "5;name=val;x\r\nhello\r\n"
                               "00006 \t; q=\"1\"\r\n world\n"
                               "0;last\r\n"
                               "Trailer-A: 1\r\n"
                               "B: 2\r\n"
                               "\r\n"
                               "left";
    struct llmb_h1 p;
    struct sink s;
    (void)state;

    assert_int_equal(feed_all(&p, false, text, &s),
                     (ssize_t)strlen(text) - 4);
    assert_true(p.done);
    assert_int_equal(s.body.len, 11);
    assert_memory_equal(s.body.data, "hello world", 11);
    assert_int_equal(s.calls, 2);
    llmb_buf_fini(&s.body);

    /* The largest size (15 hex digits) is read; its data then follows. */
    assert_true(feed_all(&p, false,
                         "HTTP/1.1 200 OK\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n"
                         "7fffffffffffffff\r\n"
                         "abc", &s) == LLMB_H1_ERROR);
    llmb_buf_fini(&s.body);
    assert_true(feed_all(&p, false,
                         "HTTP/1.1 200 OK\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n"
                         "fffffffffffffff\r\n"
                         "abc", &s) > 0);
    assert_false(p.done);
    assert_int_equal(s.body.len, 3);
    assert_int_equal(llmb_h1_eof(&p), LLMB_H1_ERROR);
    assert_non_null(strstr(p.error, "body"));
    llmb_buf_fini(&s.body);
}

/* The Retry-After read from one header value. */
static long retry_after_of(const char *value)
{
    struct llmb_h1 p;
    struct sink s;
    char text[256];

    snprintf(text, sizeof(text),
             "HTTP/1.1 503 Service Unavailable\r\n"
             "Retry-After: %s\r\nContent-Length: 0\r\n\r\n", value);
    assert_int_equal(feed_all(&p, false, text, &s), (ssize_t)strlen(text));
    assert_true(p.done);
    llmb_buf_fini(&s.body);
    return p.retry_after_s;
}

static void test_retry_after(void **state)
{
    char date[64];
    time_t t = time(NULL) + 120;
    struct tm tm;
    long v;
    (void)state;

    assert_int_equal(retry_after_of("120"), 120);
    assert_int_equal(retry_after_of("  0 "), 0);
    assert_int_equal(retry_after_of("Sun, 06 Nov 1994 08:49:37 GMT"), 0);
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    v = retry_after_of(date);
    assert_in_range(v, 118, 121);
    assert_int_equal(retry_after_of("soon"), -1);
    assert_int_equal(retry_after_of("12s"), -1);
    assert_int_equal(retry_after_of("99999999999999999999999"), -1);
    assert_int_equal(retry_after_of("Sunday, 06-Nov-94 08:49:37 GMT"), -1);
    assert_int_equal(retry_after_of("Sun, 06 Nov 1994 25:49:37 GMT"), -1);
    assert_int_equal(retry_after_of("Sun, 06 Now 1994 08:49:37 GMT"), -1);
}

/* The error of one whole feed (LLMB_H1_ERROR is expected). */
static const char *error_of(const char *text)
{
    static struct llmb_h1 p;
    struct sink s;

    assert_int_equal(feed_all(&p, false, text, &s), LLMB_H1_ERROR);
    assert_non_null(p.error);
    /* Nothing more is read after an error. */
    assert_int_equal(llmb_h1_feed(&p, "\r\n", 2, collect, &s),
                     LLMB_H1_ERROR);
    assert_int_equal(llmb_h1_eof(&p), LLMB_H1_ERROR);
    llmb_buf_fini(&s.body);
    return p.error;
}

#define CHUNKED_HEAD "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

static void test_errors(void **state)
{
    (void)state;
    assert_non_null(strstr(error_of("HTTP/2 200 OK\r\n\r\n"),
                           "not an HTTP/1.x response"));
    assert_non_null(strstr(error_of("ICY 200 OK\r\n\r\n"),
                           "not an HTTP/1.x response"));
    assert_non_null(strstr(error_of("HTTP/1.1 20 OK\r\n\r\n"),
                           "not an HTTP/1.x response"));
    assert_non_null(strstr(error_of("HTTP/1.1 200OK\r\n\r\n"),
                           "not an HTTP/1.x response"));
    assert_non_null(strstr(error_of("\r\nHTTP/1.1 200 OK\r\n\r\n"),
                           "not an HTTP/1.x response"));
    assert_non_null(strstr(error_of(CHUNKED_HEAD "zz\r\n"), "chunk size"));
    assert_non_null(strstr(error_of(CHUNKED_HEAD "\r\n"), "chunk size"));
    assert_non_null(strstr(error_of(CHUNKED_HEAD "5x\r\n"), "chunk size"));
    /* 16 significant hex digits overflow; leading zeros do not count. */
    assert_non_null(strstr(error_of(CHUNKED_HEAD "1000000000000000\r\n"),
                           "15 hex digits"));
    assert_non_null(strstr(error_of(CHUNKED_HEAD "5\r\nhelloX\r\n"),
                           "CRLF"));
    assert_non_null(strstr(error_of(CHUNKED_HEAD "5\r\nhello\rX"), "CRLF"));
    assert_non_null(strstr(error_of("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n"),
                           "without ':'"));
    assert_non_null(strstr(error_of("HTTP/1.1 200 OK\r\nX-A: 1\r\n"
                                    " folded\r\n\r\n"),
                           "fold"));
    assert_non_null(strstr(error_of("HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n"),
                           "whitespace"));
    assert_non_null(strstr(error_of("HTTP/1.1 200 OK\r\n: 1\r\n\r\n"),
                           "name"));
}

/* A head of exactly total bytes, its filler made of header lines. */
static char *make_head(const char *first, size_t total)
{
    static const char start_fmt[] = "%sContent-Length: 0\r\n";
    char *h = malloc(total + 1), *at;
    size_t start, mid;

    assert_non_null(h);
    start = (size_t)snprintf(h, total + 1, start_fmt, first);
    assert_true(start + 2 + 7 <= total);
    mid = total - start - 2;
    at = h + start;
    while (mid > 0) {
        /* Lines of 1000 bytes; the last takes a remainder under 7. */
        size_t line = mid >= 1007 ? 1000 : mid;

        memcpy(at, "X-F: ", 5);
        memset(at + 5, 'a', line - 7);
        memcpy(at + line - 2, "\r\n", 2);
        at += line;
        mid -= line;
    }
    memcpy(at, "\r\n", 3);
    assert_int_equal(strlen(h), total);
    return h;
}

static void test_head_max(void **state)
{
    struct llmb_h1 p;
    struct sink s;
    char *h, *both;
    (void)state;

    h = make_head("HTTP/1.1 200 OK\r\n", LLMB_H1_HEAD_MAX);
    assert_int_equal(feed_all(&p, false, h, &s), LLMB_H1_HEAD_MAX);
    assert_true(p.done);
    llmb_buf_fini(&s.body);
    free(h);

    h = make_head("HTTP/1.1 200 OK\r\n", LLMB_H1_HEAD_MAX + 1);
    assert_int_equal(feed_all(&p, false, h, &s), LLMB_H1_ERROR);
    assert_non_null(strstr(p.error, "head longer than"));
    llmb_buf_fini(&s.body);
    free(h);

    /* An interim head is counted apart: two of the most bytes pass. */
    h = make_head("HTTP/1.1 103 Early Hints\r\n", LLMB_H1_HEAD_MAX);
    both = malloc(2 * LLMB_H1_HEAD_MAX + 1);
    assert_non_null(both);
    memcpy(both, h, LLMB_H1_HEAD_MAX);
    free(h);
    h = make_head("HTTP/1.1 200 OK\r\n", LLMB_H1_HEAD_MAX);
    memcpy(both + LLMB_H1_HEAD_MAX, h, LLMB_H1_HEAD_MAX + 1);
    free(h);
    assert_int_equal(feed_all(&p, false, both, &s), 2 * LLMB_H1_HEAD_MAX);
    assert_true(p.done);
    assert_int_equal(p.status, 200);
    llmb_buf_fini(&s.body);
    free(both);
}

static void test_long_lines(void **state)
{
    char text[4096], big[2048];
    struct llmb_h1 p;
    struct sink s;
    (void)state;

    /* Content-Type is cut to the cap. */
    memset(big, 'c', 300);
    big[300] = '\0';
    snprintf(text, sizeof(text),
             "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
             "Content-Length: 0\r\n\r\n", big);
    assert_int_equal(feed_all(&p, false, text, &s), (ssize_t)strlen(text));
    assert_int_equal(strlen(p.content_type), LLMB_H1_CTYPE_MAX - 1);
    assert_memory_equal(p.content_type, big, LLMB_H1_CTYPE_MAX - 1);
    llmb_buf_fini(&s.body);

    /* A line of 1024 bytes (without CRLF) is whole; one more is not. */
    memset(big, 'c', 1024 - strlen("Content-Type: "));
    big[1024 - strlen("Content-Type: ")] = '\0';
    snprintf(text, sizeof(text),
             "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
             "Content-Length: 0\r\n\r\n", big);
    assert_int_equal(feed_all(&p, false, text, &s), (ssize_t)strlen(text));
    llmb_buf_fini(&s.body);
    snprintf(text, sizeof(text),
             "HTTP/1.1 200 OK\r\nContent-Type: %sc\r\n"
             "Content-Length: 0\r\n\r\n", big);
    assert_non_null(strstr(error_of(text), "longer than 1024"));

    /* A long header the parser does not read is skipped. */
    memset(big, 'x', 2000);
    big[2000] = '\0';
    snprintf(text, sizeof(text),
             "HTTP/1.1 200 OK\r\nX-Long: %s\r\n"
             "Content-Length: 1\r\n\r\nz", big);
    assert_int_equal(feed_all(&p, false, text, &s), (ssize_t)strlen(text));
    assert_true(p.done);
    assert_int_equal(s.body.len, 1);
    llmb_buf_fini(&s.body);

    /* A chunk size line of 1024 bytes with its extensions, and 1025. */
    memset(big, 'e', 1024 - 2);
    big[1024 - 2] = '\0';
    snprintf(text, sizeof(text), CHUNKED_HEAD "1;%s\r\nz\r\n0\r\n\r\n",
             big);
    assert_int_equal(feed_all(&p, false, text, &s), (ssize_t)strlen(text));
    assert_true(p.done);
    llmb_buf_fini(&s.body);
    snprintf(text, sizeof(text), CHUNKED_HEAD "1;%se\r\nz\r\n0\r\n\r\n",
             big);
    assert_non_null(strstr(error_of(text), "longer than 1024"));
}

static void test_eof(void **state)
{
    struct llmb_h1 p;
    struct sink s;
    (void)state;

    llmb_h1_init(&p, false);
    assert_int_equal(llmb_h1_eof(&p), LLMB_H1_ERROR);
    assert_non_null(strstr(p.error, "before a response"));

    assert_true(feed_all(&p, false, "HTTP/1.1 200 OK\r\nConte", &s) > 0);
    assert_int_equal(llmb_h1_eof(&p), LLMB_H1_ERROR);
    assert_non_null(strstr(p.error, "head"));
    llmb_buf_fini(&s.body);

    /* After a whole interim response, still within the head. */
    assert_true(feed_all(&p, false, "HTTP/1.1 100 Continue\r\n\r\n",
                         &s) > 0);
    assert_int_equal(llmb_h1_eof(&p), LLMB_H1_ERROR);
    assert_non_null(strstr(p.error, "head"));
    llmb_buf_fini(&s.body);

    assert_true(feed_all(&p, false, "HTTP/1.1 200 OK\r\n"
                         "Content-Length: 5\r\n\r\nhell", &s) > 0);
    assert_int_equal(llmb_h1_eof(&p), LLMB_H1_ERROR);
    assert_non_null(strstr(p.error, "body"));
    llmb_buf_fini(&s.body);

    /* A chunked body cut in its trailers. */
    assert_true(feed_all(&p, false, CHUNKED_HEAD "0\r\nX: 1\r\n", &s) > 0);
    assert_false(p.done);
    assert_int_equal(llmb_h1_eof(&p), LLMB_H1_ERROR);
    assert_non_null(strstr(p.error, "body"));
    llmb_buf_fini(&s.body);
}

static void test_stop(void **state)
{
    struct llmb_h1 p;
    struct sink s;
    (void)state;

    sink_init(&s);
    s.stop_at = 2;
    llmb_h1_init(&p, false);
    assert_int_equal(llmb_h1_feed(&p, sse_chunked, strlen(sse_chunked),
                                  collect, &s),
                     LLMB_H1_STOPPED);
    assert_int_equal(s.calls, 2);
    assert_false(p.done);
    assert_int_equal(llmb_h1_feed(&p, "0\r\n", 3, collect, &s),
                     LLMB_H1_ERROR);
    llmb_buf_fini(&s.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_chunked),
        cmocka_unit_test(test_split_interim_length),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_until_close),
        cmocka_unit_test(test_interim),
        cmocka_unit_test(test_no_body),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_chunk_ext_trailers),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_head_max),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_eof),
        cmocka_unit_test(test_stop),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
