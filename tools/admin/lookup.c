/*
 * Where things are: the known queues (the set <prefix>:queues that
 * llmb-push and the workers fill), the queue that holds a job the user
 * named by id alone, and the server's clock, which every "3s ago" is
 * measured against so that a CLI on another machine shows the same ages.
 */
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/jobfields.h>
#include <llmb/keys.h>

#include "admin.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int queue_arg_check(const char *q, char **errstr)
{
    if (llmb_queue_name_ok(q))
        return 0;
    *errstr = llmb_name_refusal(NULL, "queue name", q, LLMB_QUEUE_NAME_MAX);
    return LLMB_EINVAL;
}

int llmb_lookup_queues(struct llmb_admin *a, struct llmb_strlist *queues,
                       char **errstr)
{
    char *key = NULL;
    redisReply *r = NULL;
    int rc = 0;

    if (a->cfg->queue != NULL) {
        rc = queue_arg_check(a->cfg->queue, errstr);
        if (rc == 0)
            llmb_strlist_push(queues, a->cfg->queue);
        return rc;
    }
    /* The set holds one member per queue name: small by nature. */
    key = llmb_key_global(a->prefix, "queues");
    r = llmb_cluster_command(a->conn, "SMEMBERS %s", key);
    rc = llmb_reply_check_array(r, a->conn, key, "set", errstr);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < r->elements; i++) {
        const char *q = llmb_reply_str(r->element[i]);
        /* A name no queue could have was added by hand: skip it. */
        if (q != NULL && llmb_queue_name_ok(q))
            llmb_strlist_push(queues, q);
    }
    if (queues->n > 1)
        qsort(queues->v, queues->n, sizeof(*queues->v), cmp_str);

out:
    if (r != NULL)
        freeReplyObject(r);
    free(key);
    return rc;
}

/* Splits spec into queue (or NULL) and id, checking both. */
static int spec_parse(struct llmb_admin *a, const char *spec, char **queue,
                      char **id, char **errstr)
{
    const char *slash = strchr(spec, '/');
    int rc;

    if (slash != NULL) {
        *queue = llmb_xstrndup(spec, (size_t)(slash - spec));
        *id = llmb_xstrdup(slash + 1);
    } else {
        *queue = a->cfg->queue ? llmb_xstrdup(a->cfg->queue) : NULL;
        *id = llmb_xstrdup(spec);
    }
    if (*queue != NULL && (rc = queue_arg_check(*queue, errstr)) != 0)
        return rc;
    if (!llmb_job_id_ok(*id)) {
        *errstr = llmb_xasprintf("job id \"%s\" must be 1 to %d characters "
                                 "from [A-Za-z0-9_.-] (or QUEUE/ID)", *id,
                                 LLMB_JOB_ID_MAX);
        return LLMB_EINVAL;
    }
    return 0;
}

/* Whether the reply of llmb_job <id> state names a job: a state, or a
 * job key of another type (set by hand), which the reader that follows
 * reports. */
static bool job_exists(const redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR)
        return strncmp(r->str, "WRONGTYPE", 9) == 0;
    return r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
           r->element[0]->type == REDIS_REPLY_STRING;
}

int llmb_lookup_job(struct llmb_admin *a, const char *spec, char **queue,
                    char **id, char **errstr)
{
    struct llmb_strlist queues = {0};
    struct llmb_strlist found = {0};
    struct llmb_batch b;
    int rc;

    *queue = NULL;
    *id = NULL;
    llmb_batch_init(&b);
    rc = spec_parse(a, spec, queue, id, errstr);
    if (rc != 0)
        goto out;

    if (*queue != NULL) {
        llmb_strlist_push(&queues, *queue);
    } else {
        rc = llmb_lookup_queues(a, &queues, errstr);
        if (rc != 0)
            goto out;
    }
    for (size_t i = 0; i < queues.n; i++) {
        char *base = llmb_key_queue(a->prefix, queues.v[i]);
        struct llmb_strlist cmd = {0};
        llmb_job_read_cmd(&cmd, base, *id);
        llmb_strlist_push(&cmd, "state");
        llmb_batch_add_list(&b, &cmd);
        llmb_strlist_clear(&cmd);
        free(base);
    }
    rc = llmb_batch_run(&b, a->conn, errstr);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < queues.n; i++)
        if (job_exists(b.replies[i]))
            llmb_strlist_push(&found, queues.v[i]);

    if (found.n == 0) {
        *errstr = llmb_xasprintf("job \"%s\" not found", spec);
        rc = LLMB_ENOTFOUND;
    } else if (found.n > 1) {
        struct llmb_buf msg;
        llmb_buf_init(&msg);
        llmb_buf_appendf(&msg, "job \"%s\" is in %zu queues (", *id,
                         found.n);
        for (size_t i = 0; i < found.n; i++)
            llmb_buf_appendf(&msg, "%s%s", i ? ", " : "", found.v[i]);
        llmb_buf_appendf(&msg, "); name one as QUEUE/ID, e.g. %s/%s",
                         found.v[0], *id);
        *errstr = llmb_buf_steal(&msg);
        rc = LLMB_EREDIS;
    } else {
        free(*queue);
        *queue = llmb_xstrdup(found.v[0]);
    }

out:
    if (rc != 0) {
        free(*queue);
        free(*id);
        *queue = NULL;
        *id = NULL;
    }
    llmb_batch_fini(&b);
    llmb_strlist_clear(&queues);
    llmb_strlist_clear(&found);
    return rc;
}

int llmb_lookup_now(struct llmb_admin *a, int64_t *now_ms, char **errstr)
{
    redisReply *r = llmb_cluster_command(a->conn, "TIME");
    int rc = llmb_reply_check(r, a->conn, errstr);

    if (rc != 0)
        goto out;
    if (!llmb_reply_time_ms(r, now_ms)) {
        *errstr = llmb_xstrdup("redis TIME answered something unexpected");
        rc = LLMB_EPROTO;
        goto out;
    }

out:
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

int llmb_fcall_ll(struct llmb_admin *a, const char *fn, const char *base,
                  const char *arg, long long *value, char **errstr)
{
    redisReply *r = arg != NULL
        ? llmb_cluster_command(a->conn, "FCALL %s 1 %s %s", fn, base, arg)
        : llmb_cluster_command(a->conn, "FCALL %s 1 %s", fn, base);
    int rc = llmb_reply_check(r, a->conn, errstr);

    if (rc == 0 && !llmb_reply_ll(r, value)) {
        char what[128];
        *errstr = llmb_xasprintf("%s answered %s, not a number", fn,
                                 llmb_reply_describe(r, what, sizeof(what)));
        rc = LLMB_EPROTO;
    }
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

int llmb_queue_fcall_doc(struct llmb_admin *a, const char *fn,
                         const char *queue, const char *id,
                         long long *value, json_t **doc, char **errstr)
{
    char *base = llmb_key_queue(a->prefix, queue);
    int rc;

    *doc = NULL;
    rc = llmb_fcall_ll(a, fn, base, id, value, errstr);
    if (rc == 0) {
        *doc = json_object();
        if (id != NULL)
            json_object_set_new(*doc, "job", llmb_json_str(id));
        json_object_set_new(*doc, "queue", llmb_json_str(queue));
    }
    free(base);
    return rc;
}

int llmb_job_fcall_doc(struct llmb_admin *a, const char *fn,
                       const char *spec, const char *field, json_t **doc,
                       char **errstr)
{
    char *queue = NULL, *id = NULL;
    long long value = 0;
    int rc;

    *doc = NULL;
    rc = llmb_lookup_job(a, spec, &queue, &id, errstr);
    if (rc == 0)
        rc = llmb_queue_fcall_doc(a, fn, queue, id, &value, doc, errstr);
    if (rc == 0)
        json_object_set_new(*doc, field, json_integer(value));
    free(queue);
    free(id);
    return rc;
}
