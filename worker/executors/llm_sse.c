/*
 * Server-Sent Events framing (the text/event-stream format of the HTML
 * standard), parsed incrementally for the llm executor: llm_request.c
 * feeds the bytes of a streaming response as curl hands them over, split
 * anywhere, and each complete event goes to a callback (llm_response.c).
 *
 * Lines end with LF, CR LF or a lone CR; a CR at the end of one feed and
 * a LF at the start of the next are one line end. A line "field: value"
 * sets a field (one space after the colon is dropped); "data" lines
 * accumulate, joined with LF; "event" sets the type; a line starting with
 * ':' is a comment; an empty line dispatches the event if it has data.
 * An event cut short by the end of the stream is never dispatched.
 */
#include <string.h>

#include <llmb/err.h>

#include "llm.h"

void llmb_llm_sse_init(struct llmb_llm_sse *p, size_t max_event,
                       llmb_llm_sse_event_fn *cb, void *arg)
{
    memset(p, 0, sizeof(*p));
    llmb_buf_init(&p->line);
    llmb_buf_init(&p->data);
    llmb_buf_init(&p->event);
    p->max_event = max_event;
    p->cb = cb;
    p->arg = arg;
}

void llmb_llm_sse_fini(struct llmb_llm_sse *p)
{
    llmb_buf_fini(&p->line);
    llmb_buf_fini(&p->data);
    llmb_buf_fini(&p->event);
}

bool llmb_llm_sse_pending(const struct llmb_llm_sse *p)
{
    return p->line.len > 0 || p->data.len > 0;
}

/* An empty line: dispatches the event being built, if it has data, and
 * starts the next one. */
static int dispatch(struct llmb_llm_sse *p)
{
    int rc = 0;

    if (p->data.len > 0) {
        /* Every data line added a LF; the last one is not part of it. */
        p->data.len--;
        p->data.data[p->data.len] = '\0';
        rc = p->cb(p->arg, p->event.data, p->data.data, p->data.len);
    }
    llmb_buf_reset(&p->data);
    llmb_buf_reset(&p->event);
    return rc;
}

/* A complete line (without its end) is in p->line: applies it. */
static int line_end(struct llmb_llm_sse *p)
{
    const char *s = p->line.data;
    size_t n = p->line.len, k = 0;
    const char *value;
    size_t vlen;
    int rc = 0;

    if (n == 0)
        return dispatch(p);
    /* A line starting with ':' is a comment, often a keep-alive. */
    while (k < n && s[k] != ':')
        k++;
    value = k < n ? s + k + 1 : s + n;
    vlen = k < n ? n - k - 1 : 0;
    if (vlen > 0 && value[0] == ' ') {
        value++;
        vlen--;
    }
    if (k == 4 && memcmp(s, "data", 4) == 0) {
        if (p->data.len + vlen + 1 > p->max_event)
            rc = LLMB_EPROTO;
        else {
            llmb_buf_append(&p->data, value, vlen);
            llmb_buf_append(&p->data, "\n", 1);
        }
    } else if (k == 5 && memcmp(s, "event", 5) == 0) {
        llmb_buf_reset(&p->event);
        llmb_buf_append(&p->event, value, vlen);
    }
    /* id, retry and unknown fields mean nothing to a completion stream. */
    llmb_buf_reset(&p->line);
    return rc;
}

int llmb_llm_sse_feed(struct llmb_llm_sse *p, const char *buf, size_t len)
{
    size_t i = 0;

    while (i < len) {
        char c = buf[i];
        int rc;

        if (p->after_cr) {
            p->after_cr = false;
            if (c == '\n') {
                i++;
                continue;
            }
        }
        if (c == '\r' || c == '\n') {
            p->after_cr = c == '\r';
            i++;
            rc = line_end(p);
            if (rc != 0)
                return rc;
            continue;
        }
        /* Copy the run of bytes up to the next line end at once. */
        size_t j = i;
        while (j < len && buf[j] != '\r' && buf[j] != '\n')
            j++;
        if (p->line.len + (j - i) > p->max_event)
            return LLMB_EPROTO;
        llmb_buf_append(&p->line, buf + i, j - i);
        i = j;
    }
    return 0;
}
