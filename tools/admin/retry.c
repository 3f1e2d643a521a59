/*
 * `llmb retry JOB` and `llmb retry --dead`: FCALL llmb_retry
 * (lua/50-cancel.lua) runs again every task of a failed or cancelled job
 * that did not complete, and takes the job out of the dead set. --dead
 * does that for every job of <base>:dead, a thousand calls per pipeline.
 * Only as many jobs as the set held when the command started are tried,
 * so jobs that fail again at once cannot keep it going.
 */
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/keys.h>

#include "admin.h"

#define BATCH 1000

/* Totals of a --dead run. */
struct dead_run {
    long long jobs, tasks, failed;
    size_t with_dead;     /* queues that had dead jobs */
    const char *last_dead; /* the last of them */
    json_t *queues; /* per-queue totals */
    json_t *errors; /* {queue, job, error} of each refusal */
};

int llmb_view_retry(struct llmb_admin *a, const char *spec, json_t **doc,
                    char **errstr)
{
    return llmb_job_fcall_doc(a, "llmb_retry", spec, "enqueued", doc,
                              errstr);
}

static int retry_one(struct llmb_admin *a, char **errstr)
{
    json_t *doc = NULL;
    long long again;
    int rc;

    rc = llmb_view_retry(a, a->args[0], &doc, errstr);
    if (rc != 0)
        return rc;
    if (a->cfg->json) {
        llmb_output_json(a, doc);
        return 0;
    }
    again = json_integer_value(json_object_get(doc, "enqueued"));
    fprintf(a->out, "retried job %s in queue %s: %lld task%s enqueued "
                    "again\n", json_string_value(json_object_get(doc, "job")),
            json_string_value(json_object_get(doc, "queue")), again,
            again == 1 ? "" : "s");
    json_decref(doc);
    return 0;
}

/* Retries the jobs of one queue's dead set. */
static int retry_dead_queue(struct llmb_admin *a, const char *q,
                            struct dead_run *run, char **errstr)
{
    char *base = llmb_key_queue(a->prefix, q);
    char *dkey = llmb_key_queue_sub(a->prefix, q, "dead");
    long long total = 0, tried = 0, jobs = 0, tasks = 0, failed = 0;
    redisReply *r = NULL;
    json_t *qo;
    int rc;

    r = llmb_cluster_command(a->conn, "ZCARD %s", dkey);
    rc = llmb_reply_check(r, a->conn, errstr);
    if (rc != 0)
        goto out;
    total = llmb_reply_ll_or(r, 0);

    while (tried < total) {
        struct llmb_batch b;
        long long n = total - tried < BATCH ? total - tried : BATCH;

        freeReplyObject(r);
        /* Refused jobs stay in the set, in front of those not yet tried. */
        r = llmb_cluster_command(a->conn, "ZRANGE %s %lld %lld", dkey, failed,
                              failed + n - 1);
        rc = llmb_reply_check(r, a->conn, errstr);
        if (rc != 0)
            goto out;
        if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
            break;
        llmb_batch_init(&b);
        for (size_t i = 0; i < r->elements; i++)
            llmb_batch_add(&b, "FCALL", "llmb_retry", "1", base,
                           llmb_reply_str(r->element[i]), NULL);
        rc = llmb_batch_run(&b, a->conn, errstr);
        for (size_t i = 0; rc == 0 && i < r->elements; i++) {
            const redisReply *x = b.replies[i];
            const char *id = llmb_reply_str(r->element[i]);
            long long v;

            if (llmb_reply_ll(x, &v)) {
                jobs++;
                tasks += v;
                continue;
            }
            failed++;
            {
                json_t *e = json_object();
                const char *msg = x->type == REDIS_REPLY_ERROR
                                      ? llmb_reply_errmsg(x)
                                      : "unexpected reply";
                json_object_set_new(e, "queue", llmb_json_str(q));
                json_object_set_new(e, "job", llmb_json_str(id));
                json_object_set_new(e, "error", llmb_json_str(msg));
                json_array_append_new(run->errors, e);
                fprintf(stderr, "llmb: queue %s, job %s: %s\n", q, id, msg);
            }
        }
        llmb_batch_fini(&b);
        if (rc != 0)
            goto out;
        tried += (long long)r->elements;
    }

    qo = json_object();
    json_object_set_new(qo, "queue", llmb_json_str(q));
    json_object_set_new(qo, "retried", json_integer(jobs));
    json_object_set_new(qo, "tasks", json_integer(tasks));
    json_object_set_new(qo, "failed", json_integer(failed));
    json_array_append_new(run->queues, qo);
    if (total > 0) {
        run->with_dead++;
        run->last_dead = q;
    }
    run->jobs += jobs;
    run->tasks += tasks;
    run->failed += failed;

out:
    if (r != NULL)
        freeReplyObject(r);
    free(dkey);
    free(base);
    return rc;
}

static int retry_dead(struct llmb_admin *a, char **errstr)
{
    struct llmb_strlist names = {0};
    struct dead_run run;
    int rc;

    memset(&run, 0, sizeof(run));
    run.queues = json_array();
    run.errors = json_array();
    rc = llmb_lookup_queues(a, &names, errstr);
    for (size_t i = 0; rc == 0 && i < names.n; i++)
        rc = retry_dead_queue(a, names.v[i], &run, errstr);
    if (rc != 0)
        goto out;

    if (a->cfg->json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "retried", json_integer(run.jobs));
        json_object_set_new(doc, "tasks", json_integer(run.tasks));
        json_object_set_new(doc, "failed", json_integer(run.failed));
        json_object_set(doc, "queues", run.queues);
        json_object_set(doc, "errors", run.errors);
        llmb_output_json(a, doc);
    } else {
        fprintf(a->out, "retried %lld dead job%s (%lld task%s enqueued "
                        "again)", run.jobs, run.jobs == 1 ? "" : "s",
                run.tasks, run.tasks == 1 ? "" : "s");
        /* the queues that had dead jobs, not the queues looked at */
        if (run.with_dead == 1)
            fprintf(a->out, " in queue %s", run.last_dead);
        else if (run.with_dead > 1)
            fprintf(a->out, " in %zu queues", run.with_dead);
        else if (names.n == 1)
            fprintf(a->out, " in queue %s", names.v[0]);
        else
            fprintf(a->out, ": no dead jobs in %zu queues", names.n);
        fputc('\n', a->out);
    }
    if (run.failed > 0) {
        *errstr = llmb_xasprintf("%lld dead job%s could not be retried",
                                 run.failed, run.failed == 1 ? "" : "s");
        rc = LLMB_EREDIS;
    }

out:
    json_decref(run.queues);
    json_decref(run.errors);
    llmb_strlist_clear(&names);
    return rc;
}

int llmb_retry_check(struct llmb_admin *a, char **errstr)
{
    if (a->cfg->dead && a->nargs > 0) {
        *errstr = llmb_xstrdup("retry takes a JOB or --dead, not both");
        return LLMB_EINVAL;
    }
    if (!a->cfg->dead && a->nargs == 0) {
        *errstr = llmb_xstrdup("retry needs a JOB (an id or QUEUE/ID), or "
                               "--dead; see llmb retry --help");
        return LLMB_EINVAL;
    }
    return 0;
}

int llmb_retry_run(struct llmb_admin *a, char **errstr)
{
    return a->cfg->dead ? retry_dead(a, errstr) : retry_one(a, errstr);
}
