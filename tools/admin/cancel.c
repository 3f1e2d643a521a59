/*
 * `llmb cancel JOB`: FCALL llmb_cancel (lua/50-cancel.lua) on the job's
 * queue. The function removes the waiting tasks at once and marks the job
 * cancelled; the workers running its other tasks learn it at their next
 * heartbeat. Its refusals ("job ... has already completed") are shown as
 * the function words them.
 */
#include <stdlib.h>

#include "admin.h"

int llmb_cancel_run(struct llmb_admin *a, char **errstr)
{
    char *queue = NULL, *id = NULL;
    long long removed = 0;
    int rc;

    rc = llmb_job_fcall_ll(a, "llmb_cancel", &queue, &id, &removed, errstr);
    if (rc != 0)
        goto out;
    if (a->cfg->json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "job", llmb_json_str(id));
        json_object_set_new(doc, "queue", llmb_json_str(queue));
        json_object_set_new(doc, "removed", json_integer(removed));
        llmb_output_json(a, doc);
    } else {
        fprintf(a->out, "cancelled job %s in queue %s: %lld waiting task%s "
                        "removed; running tasks stop at their next "
                        "heartbeat\n", id, queue, removed,
                removed == 1 ? "" : "s");
    }
out:
    free(queue);
    free(id);
    return rc;
}
