/*
 * What an OpenAI-compatible response means, for the llm executor's
 * measurements. A streamed response arrives as SSE events (llm_sse.c),
 * each a JSON chunk; a chunk "carries content" when a choice has a
 * non-empty delta.content (chat), text (completions), reasoning text or
 * tool calls; the role-only first chunk of a chat stream does not count.
 * The times of the first and last content chunks give TTFT and the mean
 * gap; the gap before each content chunk after the first is kept for the
 * task's ITL histogram (llm_metrics.c), the first streamed byte for TTFB; the
 * usage object (sent last when stream_options.include_usage is set) gives
 * the token counts; a finish_reason and "data: [DONE]" end the stream.
 * An "error" object in the stream or the body makes the response bad.
 *
 * A non-streaming body is one JSON object with choices[].message.content
 * (chat) or choices[].text and usage.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <llmb/err.h>

#include "llm.h"

/* Longest SSE line or event accepted. */
#define MAX_EVENT (4 * 1024 * 1024)

static int on_event(void *arg, const char *event, const char *data,
                    size_t len);

void llmb_llm_resp_init(struct llmb_llm_resp *r, bool chat)
{
    memset(r, 0, sizeof(*r));
    r->chat = chat;
    r->prompt_tokens = -1;
    r->completion_tokens = -1;
    llmb_llm_sse_init(&r->sse, MAX_EVENT, on_event, r);
}

void llmb_llm_resp_fini(struct llmb_llm_resp *r)
{
    llmb_llm_sse_fini(&r->sse);
    free(r->gaps_us);
    r->gaps_us = NULL;
    r->ngaps = r->capgaps = 0;
    free(r->error);
    r->error = NULL;
}

/* Records the first reason the response is bad; returns LLMB_EPROTO. */
static int bad(struct llmb_llm_resp *r, char *msg)
{
    if (r->error == NULL)
        r->error = msg;
    else
        free(msg);
    return LLMB_EPROTO;
}

/* Records that `what` (text, len bytes) is not a JSON object, quoting its
 * first bytes (at most 80, control characters as spaces); returns
 * LLMB_EPROTO. */
static int not_object(struct llmb_llm_resp *r, const char *what,
                      const char *text, size_t len)
{
    char *s = llmb_xstrndup(text, llmb_utf8_cut(text, len, 80));
    int rc;

    for (char *c = s; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20)
            *c = ' ';
    rc = bad(r, llmb_xasprintf("%s is not a JSON object: %s", what, s));
    free(s);
    return rc;
}

/* Length of a JSON string value, 0 when v is not a string. */
static size_t str_len(const json_t *v)
{
    return json_is_string(v) ? json_string_length(v) : 0;
}

/* Bytes of content in one choice: the delta (chat stream), the message
 * (chat body) or the text (completions). */
static size_t choice_content(const struct llmb_llm_resp *r, json_t *choice,
                             bool stream)
{
    json_t *m;
    size_t n = 0;

    if (!r->chat)
        return str_len(json_object_get(choice, "text"));
    m = json_object_get(choice, stream ? "delta" : "message");
    if (!json_is_object(m))
        return 0;
    n += str_len(json_object_get(m, "content"));
    n += str_len(json_object_get(m, "reasoning_content"));
    n += str_len(json_object_get(m, "reasoning"));
    json_t *tc = json_object_get(m, "tool_calls");
    if (json_is_array(tc) && json_array_size(tc) > 0 && n == 0)
        n = 1;
    return n;
}

/* Reads o's usage into *prompt and *completion, each only when given as
 * a non-negative integer (null usage is skipped). */
static void read_usage(json_t *o, long *prompt, long *completion)
{
    json_t *u = json_object_get(o, "usage");
    json_t *p, *c;

    if (!json_is_object(u))
        return;
    p = json_object_get(u, "prompt_tokens");
    c = json_object_get(u, "completion_tokens");
    if (json_is_integer(p) && json_integer_value(p) >= 0)
        *prompt = (long)json_integer_value(p);
    if (json_is_integer(c) && json_integer_value(c) >= 0)
        *completion = (long)json_integer_value(c);
}

/* An in-band error object: {"error": {"message": ...}} or a string. */
static int take_error(struct llmb_llm_resp *r, json_t *o)
{
    json_t *e = json_object_get(o, "error");
    const char *msg = NULL;

    if (e == NULL || json_is_null(e))
        return 0;
    if (json_is_object(e))
        msg = json_string_value(json_object_get(e, "message"));
    else if (json_is_string(e))
        msg = json_string_value(e);
    if (msg == NULL)
        msg = "(no message)";
    return bad(r, llmb_xasprintf("the server reported an error: %.*s",
                                 (int)llmb_utf8_cut(msg, strlen(msg),
                                                    LLMB_LLM_ERROR_CUT), msg));
}

/* Keeps the gap before a content chunk, in us (capped at 2^32 - 1).
 * Returns 0, or LLMB_EPROTO once the response has more gaps than
 * LLMB_LLM_GAPS_MAX: a stream of that many chunks is not a completion,
 * and its gaps would grow without bound. */
static int add_gap(struct llmb_llm_resp *r, int64_t us)
{
    if (r->ngaps == LLMB_LLM_GAPS_MAX)
        return bad(r, llmb_xasprintf("the stream sent more than %d content "
                                     "chunks; the server is not sending a "
                                     "completion", LLMB_LLM_GAPS_MAX + 1));
    if (r->ngaps == r->capgaps) {
        r->capgaps = r->capgaps > 0 ? r->capgaps * 2 : 64;
        r->gaps_us = llmb_xrealloc(r->gaps_us,
                                   r->capgaps * sizeof(*r->gaps_us));
    }
    r->gaps_us[r->ngaps++] = us <= 0 ? 0 : us >= UINT32_MAX ? UINT32_MAX :
                             (uint32_t)us;
    return 0;
}

/* Counts a content chunk that arrived at r->now_us. Returns 0 or
 * add_gap()'s LLMB_EPROTO. */
static int take_content(struct llmb_llm_resp *r, size_t content)
{
    if (r->chunks == 0)
        r->first_us = r->now_us;
    else if (add_gap(r, r->now_us - r->last_us) != 0)
        return LLMB_EPROTO;
    r->last_us = r->now_us;
    r->chunks++;
    r->chars += content;
    return 0;
}

/* What chunk ck said, into r. Returns 0 or take_content()'s
 * LLMB_EPROTO. */
static int take_chunk(struct llmb_llm_resp *r,
                      const struct llmb_llm_chunk *ck)
{
    if (ck->finished)
        r->finished = true;
    if (ck->prompt_tokens >= 0)
        r->prompt_tokens = ck->prompt_tokens;
    if (ck->completion_tokens >= 0)
        r->completion_tokens = ck->completion_tokens;
    return ck->content > 0 ? take_content(r, ck->content) : 0;
}

/* The full reading of a chunk: json_loadb and the object's members, into
 * the struct llmb_llm_chunk_scan() fills, then taken by the same
 * take_chunk(). What the scan answers must be what this reads. A chunk
 * with an error object counts no content. */
static int parse_event(struct llmb_llm_resp *r, const char *event,
                       const char *data, size_t len)
{
    struct llmb_llm_chunk ck;
    json_error_t jerr;
    json_t *o, *choices, *c;
    size_t i;
    int rc = 0;

    o = json_loadb(data, len, 0, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        return not_object(r, "stream event", data, len);
    }
    if (strcmp(event, "error") == 0 && json_object_get(o, "error") == NULL) {
        json_decref(o);
        return bad(r, llmb_xasprintf("the server sent an error event: "
                                     "%.*s", (int)llmb_utf8_cut(data, len,
                                     LLMB_LLM_ERROR_CUT), data));
    }
    memset(&ck, 0, sizeof(ck));
    ck.chat = r->chat;
    ck.prompt_tokens = ck.completion_tokens = -1;
    rc = take_error(r, o);
    choices = json_object_get(o, "choices");
    json_array_foreach(choices, i, c) {
        ck.content += choice_content(r, c, true);
        if (json_is_string(json_object_get(c, "finish_reason")))
            ck.finished = true;
    }
    read_usage(o, &ck.prompt_tokens, &ck.completion_tokens);
    json_decref(o);
    if (rc == 0)
        return take_chunk(r, &ck);
    ck.content = 0; /* then take_chunk cannot fail */
    take_chunk(r, &ck);
    return rc;
}

/* One SSE event. A plain chunk is read by llmb_llm_chunk_scan() without
 * a JSON tree; the others (error events, unusual or bad JSON) by
 * parse_event(). */
static int on_event(void *arg, const char *event, const char *data,
                    size_t len)
{
    struct llmb_llm_resp *r = arg;
    struct llmb_llm_chunk ck;

    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        r->done = true;
        return 0;
    }
    if (r->done)
        return 0; /* nothing counts after [DONE] */
    if (!r->full_parse && event[0] == '\0' &&
        llmb_llm_chunk_scan(data, len, r->chat, &ck) == 0)
        return take_chunk(r, &ck);
    return parse_event(r, event, data, len);
}

int llmb_llm_resp_feed(struct llmb_llm_resp *r, const char *buf, size_t len,
                       int64_t now_us)
{
    int rc;

    r->now_us = now_us;
    if (r->first_byte_us == 0 && len > 0)
        r->first_byte_us = now_us;
    rc = llmb_llm_sse_feed(&r->sse, buf, len);
    if (rc == 0)
        return 0;
    if (r->error == NULL)
        r->error = llmb_xasprintf("an SSE line or event is longer than %d "
                                  "bytes", MAX_EVENT);
    return LLMB_EPROTO;
}

int llmb_llm_resp_end(struct llmb_llm_resp *r)
{
    if (r->error != NULL)
        return LLMB_EPROTO;
    if (r->done)
        return 0;
    if (llmb_llm_sse_pending(&r->sse))
        return bad(r, llmb_xstrdup("the stream ended in the middle of an "
                                   "event"));
    if (r->finished)
        return 0; /* no [DONE], but a finish_reason: complete */
    return bad(r, llmb_xstrdup("the stream ended without a finish_reason "
                               "or data: [DONE]"));
}

int llmb_llm_resp_body(struct llmb_llm_resp *r, const char *text, size_t len,
                       int64_t now_us)
{
    json_error_t jerr;
    json_t *o = json_loadb(text, len, 0, &jerr);
    json_t *choices, *c;
    size_t i;
    int rc;

    r->now_us = now_us;
    if (!json_is_object(o)) {
        json_decref(o);
        return not_object(r, "the response", text, len);
    }
    rc = take_error(r, o);
    choices = json_object_get(o, "choices");
    if (rc == 0 && (!json_is_array(choices) || json_array_size(choices) == 0))
        rc = bad(r, llmb_xstrdup("the response has no choices"));
    json_array_foreach(choices, i, c) {
        r->chars += choice_content(r, c, false);
        if (json_is_string(json_object_get(c, "finish_reason")))
            r->finished = true;
    }
    read_usage(o, &r->prompt_tokens, &r->completion_tokens);
    json_decref(o);
    r->done = rc == 0;
    return rc;
}

void llmb_llm_resp_measure(struct llmb_llm_resp *r, int64_t t0_us,
                           struct llmb_llm_record *rec)
{
    rec->ttfb_ms = r->first_byte_us > 0 && t0_us > 0 ?
                   (double)(r->first_byte_us - t0_us) / 1000.0 : -1.0;
    rec->gaps_us = r->gaps_us; /* moved, not copied: r is done with them */
    rec->ngaps = r->ngaps;
    r->gaps_us = NULL;
    r->ngaps = r->capgaps = 0;
}
