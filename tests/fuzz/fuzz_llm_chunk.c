/*
 * Fuzz target for the fast chunk reader (worker/executors/llm_chunk.c):
 * any bytes, as the data of one SSE event (a data line per line of them),
 * then [DONE], read by two response readers, one with the fast reader and
 * one that parses every chunk with jansson. They must end the same:
 * status, content chunks and bytes, usage, finish, [DONE], error, and the
 * content chunks' times and gaps (as tests/unit/test_llm_chunk.c
 * compares them).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/util.h>

#include "executors/llm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
    int rc;
    long chunks, prompt, completion;
    size_t chars;
    bool finished, done, error;
    int64_t first_us, last_us;
    size_t ngaps;
};

static struct outcome read_all(const char *text, size_t len, bool chat,
                               bool full)
{
    struct llmb_llm_resp r;
    struct outcome o;

    llmb_llm_resp_init(&r, chat);
    r.full_parse = full;
    o.rc = llmb_llm_resp_feed(&r, text, len, 1);
    if (o.rc == 0)
        o.rc = llmb_llm_resp_end(&r);
    o.chunks = r.chunks;
    o.prompt = r.prompt_tokens;
    o.completion = r.completion_tokens;
    o.chars = r.chars;
    o.finished = r.finished;
    o.done = r.done;
    o.error = r.error != NULL;
    o.first_us = r.first_us;
    o.last_us = r.last_us;
    o.ngaps = r.ngaps;
    llmb_llm_resp_fini(&r);
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *d = (const char *)data;
    struct llmb_buf b;
    size_t at = 0;

    llmb_buf_init(&b);
    while (at <= size) {
        size_t e = at;
        while (e < size && d[e] != '\n' && d[e] != '\r')
            e++;
        llmb_buf_append(&b, "data: ", 6);
        llmb_buf_append(&b, d + at, e - at);
        llmb_buf_append(&b, "\n", 1);
        at = e + 1;
    }
    llmb_buf_append(&b, "\ndata: [DONE]\n\n", 15);
    for (int chat = 0; chat <= 1; chat++) {
        struct outcome f = read_all(b.data, b.len, chat, false);
        struct outcome j = read_all(b.data, b.len, chat, true);
        if (f.rc != j.rc || f.chunks != j.chunks || f.chars != j.chars ||
            f.prompt != j.prompt || f.completion != j.completion ||
            f.finished != j.finished || f.done != j.done ||
            f.error != j.error || f.first_us != j.first_us ||
            f.last_us != j.last_us || f.ngaps != j.ngaps)
            abort();
    }
    llmb_buf_fini(&b);
    return 0;
}
