/*
 * `llmb purge --queue Q --yes`: cancels every job that has tasks waiting
 * in the queue by calling FCALL llmb_purge (lua/50-cancel.lua), which
 * handles a thousand waiting tasks per call, until nothing waits. It
 * destroys work, so it wants --yes; and it gives up, rather than loop for
 * ever, when jobs arrive faster than it cancels them.
 */
#include <stdlib.h>

#include <llmb/err.h>
#include <llmb/keys.h>

#include "admin.h"

#define PURGE_LIMIT "250"
/* Calls in a row that may leave more waiting than the best seen so far. */
#define PURGE_NO_PROGRESS 100

int llmb_purge_check(struct llmb_admin *a, char **errstr)
{
    const char *q = a->cfg->queue;

    if (q == NULL) {
        *errstr = llmb_xstrdup("purge needs --queue QUEUE: the queue whose "
                               "waiting jobs are to be cancelled");
        return LLMB_EINVAL;
    }
    if (!a->cfg->yes) {
        *errstr = llmb_xasprintf("purge cancels every waiting job of queue "
                                 "\"%s\" and cannot be undone; add --yes to "
                                 "go ahead", q);
        return LLMB_EINVAL;
    }
    return 0;
}

int llmb_view_purge(struct llmb_admin *a, const char *q, json_t **doc,
                    char **errstr)
{
    char *base = NULL;
    long long jobs = 0, calls = 0, waiting = -1, best = -1, stalled = 0;
    int rc = 0;

    *doc = NULL;
    base = llmb_key_queue(a->prefix, q);
    while (waiting != 0) {
        redisReply *r = llmb_cluster_command(a->conn, "FCALL llmb_purge 1 %s %s",
                                          base, PURGE_LIMIT);
        rc = llmb_reply_check(r, a->conn, errstr);
        if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements != 2)) {
            *errstr = llmb_xstrdup("llmb_purge answered something "
                                   "unexpected");
            rc = LLMB_EPROTO;
        }
        if (rc == 0) {
            jobs += llmb_reply_ll_or(r->element[0], 0);
            waiting = llmb_reply_ll_or(r->element[1], 0);
        }
        if (r != NULL)
            freeReplyObject(r);
        if (rc != 0)
            goto out;
        calls++;
        if (best < 0 || waiting < best) {
            best = waiting;
            stalled = 0;
        } else if (++stalled >= PURGE_NO_PROGRESS) {
            *errstr = llmb_xasprintf("gave up on queue \"%s\" after %lld "
                                     "calls: %lld tasks still wait (jobs "
                                     "arrive as fast as they are "
                                     "cancelled); %lld jobs cancelled",
                                     q, calls, waiting, jobs);
            rc = LLMB_EREDIS;
            goto out;
        }
    }

    *doc = json_object();
    json_object_set_new(*doc, "queue", llmb_json_str(q));
    json_object_set_new(*doc, "cancelled", json_integer(jobs));
    json_object_set_new(*doc, "calls", json_integer(calls));

out:
    free(base);
    return rc;
}

int llmb_purge_run(struct llmb_admin *a, char **errstr)
{
    json_t *doc = NULL;
    long long jobs;
    int rc;

    rc = llmb_view_purge(a, a->cfg->queue, &doc, errstr);
    if (rc != 0)
        return rc;
    if (a->cfg->json) {
        llmb_output_json(a, doc);
        return 0;
    }
    jobs = json_integer_value(json_object_get(doc, "cancelled"));
    fprintf(a->out, "purged queue %s: %lld job%s cancelled; running "
                    "tasks stop at their next heartbeat\n", a->cfg->queue,
            jobs, jobs == 1 ? "" : "s");
    json_decref(doc);
    return 0;
}
