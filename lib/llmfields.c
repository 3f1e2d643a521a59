/*
 * The known fields of an llm or benchmark payload (llmb/llmfields.h) and
 * the check every push path makes with them. Keep lua/10-document.lua's
 * LLM_FIELDS in the same order: test_llm_fields compares the messages.
 */
#include <stdlib.h>
#include <string.h>

#include <llmb/llmfields.h>
#include <llmb/llmworkload.h>
#include <llmb/util.h>

const struct llmb_llm_field llmb_llm_fields[] = {
    /* llmb's own: where, how many, how fast */
    {"endpoint", LLMB_LLM_FIELD_CONTROL},
    {"provider", LLMB_LLM_FIELD_BENCHMARK},
    {"iterations", LLMB_LLM_FIELD_BENCHMARK},
    {"requests", LLMB_LLM_FIELD_CONTROL},
    {"concurrency", LLMB_LLM_FIELD_CONTROL},
    {"rate", LLMB_LLM_FIELD_CONTROL},
    {"warmup_requests", LLMB_LLM_FIELD_CONTROL},
    {"warmup_s", LLMB_LLM_FIELD_CONTROL},
    {"duration_s", LLMB_LLM_FIELD_CONTROL},
    {"ramp_up_s", LLMB_LLM_FIELD_CONTROL},
    {"start_at_ms", LLMB_LLM_FIELD_CONTROL},
    {"start", LLMB_LLM_FIELD_CONTROL},
    {"start_timeout_s", LLMB_LLM_FIELD_CONTROL},
    {"timeout_s", LLMB_LLM_FIELD_CONTROL},
    {"retries", LLMB_LLM_FIELD_CONTROL},
    {"retry_backoff_ms", LLMB_LLM_FIELD_CONTROL},
    {"max_records", LLMB_LLM_FIELD_CONTROL},
    {"record_itls", LLMB_LLM_FIELD_CONTROL},
    {"seed", LLMB_LLM_FIELD_CONTROL},
    {"slo", LLMB_LLM_FIELD_CONTROL},
    {"_kinds", LLMB_LLM_FIELD_CONTROL}, /* the aggregate's, never sent */
    {"endpoints", LLMB_LLM_FIELD_CONTROL}, /* A/B: over these pairs */
    {"models", LLMB_LLM_FIELD_CONTROL},
    {"extra_body", LLMB_LLM_FIELD_CONTROL},
    {"synthetic", LLMB_LLM_FIELD_CONTROL},
    {"dataset", LLMB_LLM_FIELD_CONTROL},
    /* the OpenAI request fields, sent as they are */
    {"model", LLMB_LLM_FIELD_REQUEST},
    {"messages", LLMB_LLM_FIELD_REQUEST},
    {"prompt", LLMB_LLM_FIELD_REQUEST},
    {"max_tokens", LLMB_LLM_FIELD_REQUEST},
    {"max_completion_tokens", LLMB_LLM_FIELD_REQUEST},
    {"temperature", LLMB_LLM_FIELD_REQUEST},
    {"top_p", LLMB_LLM_FIELD_REQUEST},
    {"stop", LLMB_LLM_FIELD_REQUEST},
    {"n", LLMB_LLM_FIELD_REQUEST},
    {"stream", LLMB_LLM_FIELD_REQUEST},
    {"stream_options", LLMB_LLM_FIELD_REQUEST},
    {"ignore_eos", LLMB_LLM_FIELD_REQUEST},
    {"logprobs", LLMB_LLM_FIELD_REQUEST},
    {"top_logprobs", LLMB_LLM_FIELD_REQUEST},
    {"presence_penalty", LLMB_LLM_FIELD_REQUEST},
    {"frequency_penalty", LLMB_LLM_FIELD_REQUEST},
    {"logit_bias", LLMB_LLM_FIELD_REQUEST},
    {"user", LLMB_LLM_FIELD_REQUEST},
    {"response_format", LLMB_LLM_FIELD_REQUEST},
    {"tools", LLMB_LLM_FIELD_REQUEST},
    {"tool_choice", LLMB_LLM_FIELD_REQUEST},
    {"parallel_tool_calls", LLMB_LLM_FIELD_REQUEST},
    {"reasoning_effort", LLMB_LLM_FIELD_REQUEST},
    {"echo", LLMB_LLM_FIELD_REQUEST},
    {"best_of", LLMB_LLM_FIELD_REQUEST},
    {"suffix", LLMB_LLM_FIELD_REQUEST},
};

const size_t llmb_llm_nfields = sizeof(llmb_llm_fields) /
                                sizeof(*llmb_llm_fields);

bool llmb_llm_type(const char *type)
{
    return type != NULL &&
           (strcmp(type, "llm") == 0 || strcmp(type, "benchmark") == 0);
}

const struct llmb_llm_field *llmb_llm_field_find(const char *name,
                                                  bool benchmark)
{
    for (size_t i = 0; i < llmb_llm_nfields; i++)
        if (strcmp(llmb_llm_fields[i].name, name) == 0)
            return benchmark ||
                   llmb_llm_fields[i].kind != LLMB_LLM_FIELD_BENCHMARK ?
                   &llmb_llm_fields[i] : NULL;
    return NULL;
}

int llmb_llm_fields_check(const json_t *payload, bool benchmark,
                          char **errstr)
{
    const char *key, *bad = NULL, *near = NULL;
    json_t *v;
    size_t best = 3;
    struct llmb_buf b;

    if (!json_is_object(payload))
        return 0;
    json_object_foreach((json_t *)payload, key, v) {
        if (llmb_llm_field_find(key, benchmark) == NULL &&
            (bad == NULL || strcmp(key, bad) < 0))
            bad = key;
    }
    if (bad == NULL) {
        v = json_object_get(payload, "model");
        if (json_is_string(v) && json_string_length(v) > LLMB_LLM_MODEL_MAX) {
            *errstr = llmb_xasprintf("%s payload field \"model\" is %zu "
                                     "bytes; the limit is %d",
                                     benchmark ? "benchmark" : "llm",
                                     json_string_length(v),
                                     LLMB_LLM_MODEL_MAX);
            return -1;
        }
        return llmb_llm_workload_check(payload, benchmark ? "benchmark"
                                                          : "llm", errstr);
    }
    llmb_buf_init(&b);
    llmb_buf_appendf(&b, "%s payload field \"%.40s\" is not known",
                     benchmark ? "benchmark" : "llm", bad);
    for (size_t i = 0; i < llmb_llm_nfields; i++) {
        size_t d;
        if (!benchmark && llmb_llm_fields[i].kind == LLMB_LLM_FIELD_BENCHMARK)
            continue;
        /* (capped at 3 as the Lua copy's distance in 10-document.lua) */
        d = llmb_edit_distance(bad, strlen(bad), llmb_llm_fields[i].name,
                               strlen(llmb_llm_fields[i].name));
        if (d > 3)
            d = 3;
        if (d < best && d < strlen(bad)) {
            best = d;
            near = llmb_llm_fields[i].name;
        }
    }
    if (near != NULL)
        llmb_buf_appendf(&b, "; did you mean \"%s\"?", near);
    else
        llmb_buf_appendf(&b, ";");
    llmb_buf_appendf(&b, " known:");
    for (size_t i = 0, k = 0; i < llmb_llm_nfields; i++)
        if (benchmark || llmb_llm_fields[i].kind != LLMB_LLM_FIELD_BENCHMARK)
            llmb_buf_appendf(&b, "%s %s", k++ > 0 ? "," : "",
                             llmb_llm_fields[i].name);
    llmb_buf_appendf(&b, " (server-specific fields go in \"extra_body\")");
    *errstr = llmb_buf_steal(&b);
    return -1;
}
