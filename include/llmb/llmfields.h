/*
 * The fields an `llm` or `benchmark` job payload may have (docs/llm.md):
 * one list, read by every place that checks a payload. llmb-push checks
 * it on the client (lib/job.c), since llmb_push_fields stores payloads
 * without reading them; the llm executor checks it again for a job an
 * older client pushed. lua/10-document.lua holds the same list for
 * llmb_push, and tests/integration/test_llm_fields.c pushes every name
 * here through it, so the two cannot drift apart unnoticed.
 */
#ifndef LLMB_LLMFIELDS_H
#define LLMB_LLMFIELDS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

enum llmb_llm_field_kind {
    LLMB_LLM_FIELD_CONTROL,   /* steers llmb's run; never sent */
    LLMB_LLM_FIELD_REQUEST,   /* an OpenAI request field, sent as it is */
    LLMB_LLM_FIELD_BENCHMARK  /* control, of the benchmark handler only */
};

struct llmb_llm_field {
    const char *name;
    enum llmb_llm_field_kind kind;
};

/* Every known field, in the order messages list them. */
extern const struct llmb_llm_field llmb_llm_fields[];
extern const size_t llmb_llm_nfields;

/* True when jobs of type are checked here: "llm" or "benchmark". */
bool llmb_llm_type(const char *type);

/* The known field called name (of the benchmark handler too when
 * benchmark), or NULL. */
const struct llmb_llm_field *llmb_llm_field_find(const char *name,
                                                  bool benchmark);

/* Checks the keys of payload (any JSON; only an object's keys are looked
 * at) of a job of type "llm" (benchmark false) or "benchmark". Returns 0,
 * or -1 with a malloc'd message for the user naming the first unknown key
 * in byte order, the nearest known one when it is close, and the known
 * ones: `llm payload field "concurency" is not known; did you mean
 * "concurrency"? known: endpoint, model, ...`. Then checks that a string
 * "model" has at most LLMB_LLM_MODEL_MAX bytes, then the workload
 * fields, "synthetic" and "dataset" (llmb_llm_workload_check()). */
/* Bytes of the payload's "model" at most (as of each name of "models"):
 * every record carries it, and a record chunk stays under 64 KiB. */
#define LLMB_LLM_MODEL_MAX 200

int llmb_llm_fields_check(const json_t *payload, bool benchmark,
                          char **errstr);

#endif
