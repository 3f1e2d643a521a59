/*
 * The `llm` and `benchmark` executors (docs/llm.md): the tables the
 * worker's handler table points at. An instance holds the endpoints of
 * --llm-endpoint (parsed and their keys read at start, so a bad value
 * stops the worker with exit 78; libcurl is loaded then, lib/curl.c), one
 * curl multi handle, attached to the
 * worker's loop at the first task, and the runs in progress. start()
 * checks the payload (a bad one fails the task for good, with a message
 * that names the field) and starts a run (llm_run.c).
 */
#include <stdlib.h>
#include <string.h>

#include <llmb/log.h>

#include "executors.h"
#include "llm.h"

struct llm_inst {
    enum llmb_llm_kind kind;
    struct llmb_llm_endpoints eps;
    struct llmb_llm_multi *multi;  /* on the first task's loop */
    struct llmb_llm_run_list runs;
};

void *llmb_llm_instance_new(bool benchmark,
                            const struct llmb_strlist *endpoints,
                            char **errstr)
{
    struct llm_inst *in = llmb_xcalloc(1, sizeof(*in));

    in->kind = benchmark ? LLMB_LLM_KIND_BENCHMARK : LLMB_LLM_KIND_LLM;
    if (llmb_llm_endpoints_parse(&in->eps, endpoints, errstr) != 0) {
        free(in);
        return NULL;
    }
    /* libcurl is loaded only when there is an endpoint to talk to; with
     * none, every task fails on its payload before any request. */
    if (in->eps.n > 0 && llmb_curl_load(errstr) != 0) {
        llmb_llm_endpoints_fini(&in->eps);
        free(in);
        return NULL;
    }
    for (size_t i = 0; i < in->eps.n; i++)
        llmb_debug("llm endpoint %s at %s%s%s", in->eps.v[i].name,
                   in->eps.v[i].base,
                   in->eps.v[i].key_env != NULL ? " key from $" : "",
                   in->eps.v[i].key_env != NULL ? in->eps.v[i].key_env : "");
    return in;
}

/* init() of the ABI: a built-in takes its endpoints from the worker's
 * configuration through llmb_llm_instance_new(), so a configuration text
 * here only says that the handler was misused. */
static void *llm_init(const char *config, char **errstr)
{
    if (config != NULL && config[0] != '\0') {
        *errstr = llmb_xasprintf("the llm handlers take no configuration "
                                 "text, got \"%s\"; endpoints come from "
                                 "--llm-endpoint", config);
        return NULL;
    }
    return llmb_llm_instance_new(false, NULL, errstr);
}

static void *bench_init(const char *config, char **errstr)
{
    struct llm_inst *in = llm_init(config, errstr);

    if (in != NULL)
        in->kind = LLMB_LLM_KIND_BENCHMARK;
    return in;
}

static void *llm_start(void *instance, const struct llmb_exec_task *t,
                       struct ev_loop *loop, llmb_exec_done_fn *done,
                       void *token)
{
    struct llm_inst *in = instance;
    struct llmb_llm_spec spec;
    char *err = NULL;

    if (llmb_llm_spec_parse(&spec, in->kind, &in->eps, t, &err) != 0) {
        done(token, LLMB_EXEC_FATAL, err, strlen(err));
        free(err);
        return NULL;
    }
    if (in->multi == NULL)
        in->multi = llmb_llm_multi_new(loop);
    llmb_assert(llmb_llm_multi_loop(in->multi) == loop);
    llmb_debug("llm task started job=%s task=%ld endpoint=%s url=%s "
               "requests=%ld concurrency=%ld rate=%g stream=%d", t->job,
               t->task, spec.ep->name, spec.url, spec.requests,
               spec.concurrency, spec.rate, (int)spec.stream);
    return llmb_llm_run_start(&in->runs, in->multi, &spec, t, done, token);
}

static void llm_cancel(void *handle)
{
    llmb_llm_run_cancel(handle);
}

static void llm_fini(void *instance)
{
    struct llm_inst *in = instance;

    if (in == NULL)
        return;
    while (in->runs.head != NULL)
        llmb_llm_run_free(in->runs.head);
    llmb_llm_multi_free(in->multi);
    llmb_llm_endpoints_fini(&in->eps);
    free(in);
}

const struct llmb_executor llmb_executor_llm = {
    LLMB_EXECUTOR_ABI, "llm", llm_init, llm_start, llm_cancel, llm_fini,
};

const struct llmb_executor llmb_executor_benchmark = {
    LLMB_EXECUTOR_ABI, "benchmark", bench_init, llm_start, llm_cancel,
    llm_fini,
};
