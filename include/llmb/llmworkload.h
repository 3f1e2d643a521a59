/*
 * Workloads of an `llm` or `benchmark` job (docs/llm.md, "Workloads"):
 * what each request sends, when the payload gives no fixed messages or
 * prompt. Two kinds, each one payload object:
 *
 *   "synthetic": prompts of N words drawn from a seed, N and the output
 *                length drawn from fixed, uniform or normal distributions;
 *   "dataset":   a JSONL file of prompts or conversations (ShareGPT
 *                accepted), stored in Redis under the job by llmb_dataset
 *                before the job is pushed (lua/15-dataset.lua).
 *
 * The checks here run wherever a payload is checked in C (llmb-push and
 * the executor, through llmb_llm_fields_check); lua/15-dataset.lua holds
 * the same rules for llmb_push. llmb-push turns dataset lines into stored
 * entries with llmb_llm_dataset_entry(), the function llmb_dataset makes
 * the same entries with.
 */
#ifndef LLMB_LLMWORKLOAD_H
#define LLMB_LLMWORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <llmb/util.h>

/* Largest token count a synthetic distribution gives or takes. */
#define LLMB_LLM_SYNTH_MAX 100000
/* Limits of a stored dataset: entries, bytes of all entries, bytes of one
 * stored entry, and entries per llmb_dataset call. */
#define LLMB_LLM_DATASET_MAX_ENTRIES 1000000
#define LLMB_LLM_DATASET_MAX_BYTES (64L * 1024 * 1024)
#define LLMB_LLM_DATASET_ENTRY_MAX (256L * 1024)
#define LLMB_LLM_DATASET_CALL_MAX 1000

enum llmb_llm_dist_kind {
    LLMB_LLM_DIST_FIXED,
    LLMB_LLM_DIST_UNIFORM,
    LLMB_LLM_DIST_NORMAL
};

/* A distribution of token counts; draws are whole numbers in 1..max. */
struct llmb_llm_dist {
    enum llmb_llm_dist_kind kind;
    long value;           /* fixed */
    long min, max;        /* uniform: both ends included */
    double mean, stddev;  /* normal: rounded, cut to [1, LLMB_LLM_SYNTH_MAX] */
};

/* The payload's "synthetic" object. */
struct llmb_llm_synthetic {
    struct llmb_llm_dist in;  /* input tokens (words) */
    struct llmb_llm_dist out; /* output tokens: max_tokens */
    bool has_out;
    uint64_t seed;
    bool completions;         /* "api": "completions": a prompt string */
};

/* The payload's "dataset" object. */
struct llmb_llm_dataset {
    long entries;             /* stored under the job (checked at push) */
    bool completions;         /* "api": "completions" */
    bool reference_output;    /* "max_tokens": "reference" */
};

/* Reads payload field "synthetic" (v) into s. Returns 0, or -1 with a
 * malloc'd message naming the field (`llm payload field
 * "synthetic.input_tokens.mean" must be ...`); kind is "llm" or
 * "benchmark". */
int llmb_llm_synthetic_parse(const json_t *v, const char *kind,
                             struct llmb_llm_synthetic *s, char **errstr);

/* Reads payload field "dataset" (v) into d, as above. */
int llmb_llm_dataset_parse(const json_t *v, const char *kind,
                           struct llmb_llm_dataset *d, char **errstr);

/* Field name ("synthetic" or "dataset") of payload, or NULL when absent
 * or null (null means none, as for "slo"). */
json_t *llmb_llm_workload_field(const json_t *payload, const char *name);

/* v as short JSON text for a message, cut to 60 bytes (caller frees); a
 * number as Lua's cjson writes it (%.14g), so that C and Lua messages
 * say the same. */
char *llmb_llm_shown(const json_t *v);

/* Checks the workload fields of payload (an object of a job of kind "llm"
 * or "benchmark"): "synthetic" and "dataset" as above, at most one of
 * them, and neither together with "messages" or "prompt" (nor
 * "synthetic.output_tokens" with "max_tokens"). Returns 0, or -1 with a
 * malloc'd message. */
int llmb_llm_workload_check(const json_t *payload, const char *kind,
                            char **errstr);

/* The generator of request k of task `task`: the same (seed, task, k)
 * give the same state whatever the order requests are made in. */
uint64_t llmb_llm_synthetic_rng(uint64_t seed, long task, long k);

/* A draw of d with generator *rng. */
long llmb_llm_dist_draw(const struct llmb_llm_dist *d, uint64_t *rng);

/* Appends `words` words (separated by spaces) to b, each from a list of
 * common English words that tokenizers of the GPT and Llama families
 * make one token each: `words` words are about `words` tokens. */
void llmb_llm_synthetic_words(struct llmb_buf *b, long words, uint64_t *rng);

/* Tokens of a text of `bytes` bytes by the 4-bytes-a-token rule, at
 * least 1. */
long llmb_llm_text_tokens(size_t bytes);

/*
 * One dataset line (len bytes, no newline) as the entry llmb stores: the
 * compact JSON {"prompt": "..."} or {"messages": [...]}, with
 * "output_tokens": N when the line gives a reference output. A line is an
 * object with one of "prompt" (a non-empty string), "messages" (a
 * non-empty array of objects with a string "role") or "conversations"
 * (ShareGPT: the first "human" or "user" turn is the prompt; the first
 * "gpt" or "assistant" turn after it is the reference output, counted by
 * llmb_llm_text_tokens()), and may give "output_tokens" itself (1 to
 * LLMB_LLM_SYNTH_MAX). Returns the entry (caller frees; *elen its bytes),
 * or NULL with a malloc'd message.
 */
char *llmb_llm_dataset_entry(const char *line, size_t len, size_t *elen,
                             char **errstr);

#endif
