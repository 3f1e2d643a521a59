/*
 * The handler table (handler.h): parses each --handler TYPE=SPEC, makes
 * the executor instance it names, and finds the handler of a job type.
 */
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/job.h>

#include "handler.h"

static const struct {
    const char *name;
    const struct llmb_executor *ops;
} builtins[] = {
    {"noop", &llmb_executor_noop},
    {"sleep", &llmb_executor_sleep},
    {"echo", &llmb_executor_echo},
    {"fail", &llmb_executor_fail},
};

/* Makes handler h from one spec. Returns 0, or -1 with *errstr. */
static int handler_make(struct llmb_handler *h, const char *text,
                        const struct llmb_handler_limits *lim, char **errstr)
{
    const char *eq = strchr(text, '=');
    char *err = NULL;

    if (eq == NULL || eq == text || eq[1] == '\0') {
        *errstr = llmb_xasprintf("--handler \"%s\" must be TYPE=SPEC, as in "
                                 "echo=echo or render=exec:/usr/bin/render",
                                 text);
        return -1;
    }
    h->type = llmb_xstrndup(text, (size_t)(eq - text));
    h->spec = llmb_xstrdup(eq + 1);
    if (strcmp(h->type, "*") != 0 && !llmb_job_type_ok(h->type)) {
        *errstr = llmb_xasprintf("--handler \"%s\": job type \"%s\" must be "
                                 "* or 1 to 128 characters from "
                                 "[A-Za-z0-9_.:/-]", text, h->type);
        return -1;
    }
    const char *spec = h->spec;
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        if (strcmp(spec, builtins[i].name) == 0) {
            h->ops = builtins[i].ops;
            h->inst = h->ops->init("", &err);
            break;
        }
    }
    if (h->ops != NULL) {
        /* a built-in */
    } else if (strcmp(spec, "llm") == 0 || strcmp(spec, "benchmark") == 0) {
        bool bench = spec[0] == 'b';
        h->ops = bench ? &llmb_executor_benchmark : &llmb_executor_llm;
        h->inst = llmb_llm_instance_new(bench, lim->llm_endpoints, &err);
    } else if (strncmp(spec, "exec:", 5) == 0) {
        h->ops = &llmb_executor_exec;
        h->wants_json = true;
        h->inst = llmb_exec_instance_new(spec + 5, lim->max_output,
                                         lim->kill_grace_ms, &err);
        if (h->inst != NULL)
            llmb_exec_instance_harden(h->inst, &lim->exec);
    } else if (strncmp(spec, "plugin:", 7) == 0) {
        const char *path = spec + 7;
        size_t plen = strcspn(path, " ");
        char *p = llmb_xstrndup(path, plen);
        const char *conf = path + plen;
        while (*conf == ' ')
            conf++;
        if (llmb_plugin_load(p, &h->plugin, &err) == 0) {
            h->ops = h->plugin.ops;
            h->wants_json = true;
            h->inst = h->ops->init(conf, &err);
            if (h->inst == NULL && err == NULL)
                err = llmb_xasprintf("plugin %s: init failed", p);
        }
        free(p);
    } else {
        *errstr = llmb_xasprintf("--handler \"%s\": unknown handler \"%s\" "
                                 "(known: noop, sleep, echo, fail, llm, "
                                 "benchmark, exec:PROGRAM [ARGS], "
                                 "plugin:/path/lib.so [CONFIG])", text, spec);
        return -1;
    }
    if (h->inst == NULL) {
        *errstr = llmb_xasprintf("--handler \"%s\": %s", text,
                                 err != NULL ? err : "cannot start it");
        free(err);
        return -1;
    }
    return 0;
}

static void handler_fini(struct llmb_handler *h)
{
    if (h->ops != NULL && h->inst != NULL)
        h->ops->fini(h->inst);
    llmb_plugin_unload(&h->plugin);
    free(h->type);
    free(h->spec);
    memset(h, 0, sizeof(*h));
}

int llmb_handlers_init(struct llmb_handlers *hs,
                       const struct llmb_strlist *specs,
                       const struct llmb_handler_limits *lim, char **errstr)
{
    hs->v = llmb_xcalloc(specs->n + 1, sizeof(*hs->v));
    hs->n = 0;
    for (size_t i = 0; i < specs->n; i++) {
        struct llmb_handler *h = &hs->v[hs->n];
        if (handler_make(h, specs->v[i], lim, errstr) != 0) {
            handler_fini(h);
            llmb_handlers_fini(hs);
            return LLMB_ECONFIG;
        }
        for (size_t j = 0; j < hs->n; j++) {
            if (strcmp(hs->v[j].type, h->type) == 0) {
                *errstr = llmb_xasprintf("--handler: job type \"%s\" has two "
                                         "handlers (%s and %s)", h->type,
                                         hs->v[j].spec, h->spec);
                handler_fini(h);
                llmb_handlers_fini(hs);
                return LLMB_ECONFIG;
            }
        }
        hs->n++;
    }
    return 0;
}

void llmb_handlers_fini(struct llmb_handlers *hs)
{
    for (size_t i = 0; i < hs->n; i++)
        handler_fini(&hs->v[i]);
    free(hs->v);
    hs->v = NULL;
    hs->n = 0;
}

const struct llmb_handler *llmb_handlers_find(const struct llmb_handlers *hs,
                                              const char *type)
{
    const struct llmb_handler *any = NULL;

    for (size_t i = 0; i < hs->n; i++) {
        if (strcmp(hs->v[i].type, type) == 0)
            return &hs->v[i];
        if (strcmp(hs->v[i].type, "*") == 0)
            any = &hs->v[i];
    }
    return any;
}
