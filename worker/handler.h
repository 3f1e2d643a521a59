/*
 * The worker's handler table: which executor runs which job type, built
 * from the --handler TYPE=SPEC options. A job type is looked up exactly
 * first, then under "*".
 */
#ifndef LLMB_WORKER_HANDLER_H
#define LLMB_WORKER_HANDLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llmb/executor.h>
#include <llmb/util.h>

#include "executors/executors.h"

/* One handler: a type, its executor and the executor's instance. */
struct llmb_handler {
    char *type;                      /* job type, or "*" */
    char *spec;                      /* as configured, for logs */
    const struct llmb_executor *ops;
    void *inst;                      /* from ops->init() */
    struct llmb_plugin plugin;       /* for plugin: handlers */
    bool wants_json;                 /* the executor reads t->json */
};

/* Limits handed to the exec executor, and the llm executor's
 * endpoints. */
struct llmb_handler_limits {
    size_t max_output;
    int64_t kill_grace_ms;
    struct llmb_exec_hardening exec; /* environment and rlimits */
    const struct llmb_strlist *llm_endpoints; /* --llm-endpoint values */
};

struct llmb_handlers {
    struct llmb_handler *v;
    size_t n;
};

/* Builds the table from specs ("TYPE=SPEC" each). Returns 0, or
 * LLMB_ECONFIG with a malloc'd message naming the bad spec; the table is
 * then empty. */
int llmb_handlers_init(struct llmb_handlers *hs,
                       const struct llmb_strlist *specs,
                       const struct llmb_handler_limits *lim, char **errstr);

/* Finalises every executor instance (exec kills what still runs) and
 * unloads plugins. */
void llmb_handlers_fini(struct llmb_handlers *hs);

/* The handler for a job type, or NULL. */
const struct llmb_handler *llmb_handlers_find(const struct llmb_handlers *hs,
                                              const char *type);

#endif
