/*
 * `llmb pause QUEUE` and `llmb resume QUEUE`: FCALL llmb_pause and
 * llmb_resume (lua/55-pause.lua). While a queue is paused, workers claim
 * nothing from it; pushes are still taken and running tasks go on.
 * Resuming wakes the idle workers. Both are idempotent: pausing a paused
 * queue changes nothing, and says so.
 */
#include <stdlib.h>

#include <llmb/err.h>
#include <llmb/keys.h>

#include "admin.h"

int llmb_view_pause(struct llmb_admin *a, const char *queue, bool pause,
                    json_t **doc, char **errstr)
{
    const char *fn = pause ? "llmb_pause" : "llmb_resume";
    long long changed = 0;
    int rc;

    *doc = NULL;
    if (!llmb_queue_name_ok(queue)) {
        *errstr = llmb_name_refusal(NULL, "queue name", queue,
                                    LLMB_QUEUE_NAME_MAX);
        return LLMB_EINVAL;
    }
    rc = llmb_queue_fcall_doc(a, fn, queue, NULL, &changed, doc, errstr);
    if (rc == 0) {
        json_object_set_new(*doc, "paused", json_boolean(pause));
        json_object_set_new(*doc, "changed", json_boolean(changed == 1));
    }
    return rc;
}

static int run(struct llmb_admin *a, bool pause, char **errstr)
{
    const char *q = a->args[0];
    json_t *doc = NULL;
    int rc;

    rc = llmb_view_pause(a, q, pause, &doc, errstr);
    if (rc != 0)
        return rc;
    if (a->cfg->json) {
        llmb_output_json(a, doc);
        return 0;
    }
    if (json_is_true(json_object_get(doc, "changed")))
        fprintf(a->out, pause ? "paused queue %s: workers claim nothing "
                                "from it until llmb resume %s\n"
                              : "resumed queue %s: workers claim from it "
                                "again%s\n",
                q, pause ? q : "");
    else
        fprintf(a->out, "queue %s was already %s\n", q,
                pause ? "paused" : "running (not paused)");
    json_decref(doc);
    return 0;
}

int llmb_pause_run(struct llmb_admin *a, char **errstr)
{
    return run(a, true, errstr);
}

int llmb_resume_run(struct llmb_admin *a, char **errstr)
{
    return run(a, false, errstr);
}
