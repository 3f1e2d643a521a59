/*
 * `llmb cancel JOB`: FCALL llmb_cancel (lua/50-cancel.lua) on the job's
 * queue. The function removes the waiting tasks at once and marks the job
 * cancelled; the workers running its other tasks learn it at their next
 * heartbeat. Its refusals ("job ... has already completed") are shown as
 * the function words them.
 */
#include "admin.h"

int llmb_view_cancel(struct llmb_admin *a, const char *spec, json_t **doc,
                     char **errstr)
{
    return llmb_job_fcall_doc(a, "llmb_cancel", spec, "removed", doc,
                              errstr);
}

int llmb_cancel_run(struct llmb_admin *a, char **errstr)
{
    json_t *doc = NULL;
    long long removed;
    int rc;

    rc = llmb_view_cancel(a, a->args[0], &doc, errstr);
    if (rc != 0)
        return rc;
    if (a->cfg->json) {
        llmb_output_json(a, doc);
        return 0;
    }
    removed = json_integer_value(json_object_get(doc, "removed"));
    fprintf(a->out, "cancelled job %s in queue %s: %lld waiting task%s "
                    "removed; running tasks stop at their next "
                    "heartbeat\n",
            json_string_value(json_object_get(doc, "job")),
            json_string_value(json_object_get(doc, "queue")), removed,
            removed == 1 ? "" : "s");
    json_decref(doc);
    return 0;
}
