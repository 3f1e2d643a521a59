/*
 * `llmb workers`: every worker of the sorted set <prefix>:workers with
 * what it writes into its hash <prefix>:worker:<id> at each heartbeat
 * (docs/data-model.md). The ids are read a thousand at a time and their
 * hashes with one pipelined HMGET each. `llmb stats` sums the same records.
 */
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/keys.h>

#include "admin.h"

#define PAGE 1000

/* The hash fields, in enum llmb_worker_field order. */
static const char *const field_names[LLMB_WF_COUNT] = {
    "id", "host", "pid", "queues", "tags", "capacity", "running",
    "completed", "failed", "version", "started_ms", "seen_ms", "state",
};

static int cmp_worker(const void *x, const void *y)
{
    const struct llmb_admin_worker *a = x, *b = y;
    return strcmp(a->id, b->id);
}

/* Reads ids and scores [start, start+PAGE) of the set into *ws. Returns
 * the count read, or a negative error. */
static int page_ids(struct llmb_admin *a, const char *key, long long start,
                    struct llmb_admin_worker **ws, size_t *n, char **errstr)
{
    redisReply *r = llmb_cluster_command(a->conn, "ZRANGE %s %lld %lld "
                                      "WITHSCORES", key, start,
                                      start + PAGE - 1);
    int rc = llmb_reply_check_array(r, a->conn, key, "sorted set", errstr);
    size_t got = 0;

    if (rc != 0)
        goto out;
    got = r->elements / 2;
    *ws = llmb_xrealloc(*ws, (*n + got) * sizeof(**ws));
    for (size_t i = 0; i < got; i++) {
        struct llmb_admin_worker *w = &(*ws)[*n + i];
        const char *id = llmb_reply_str(r->element[2 * i]);
        const char *score = llmb_reply_str(r->element[2 * i + 1]);
        memset(w, 0, sizeof(*w));
        w->id = llmb_xstrdup(id ? id : "");
        w->seen_ms = score ? (long long)strtod(score, NULL) : 0;
    }
    *n += got;
    rc = (int)got;

out:
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

int llmb_workers_fetch(struct llmb_admin *a, struct llmb_admin_worker **out,
                       size_t *n, char **errstr)
{
    char *key = llmb_key_global(a->prefix, "workers");
    struct llmb_admin_worker *ws = NULL;
    struct llmb_batch b;
    size_t count = 0;
    int rc = 0;

    llmb_batch_init(&b);
    for (long long start = 0;; start += PAGE) {
        rc = page_ids(a, key, start, &ws, &count, errstr);
        if (rc < PAGE)
            break;
    }
    if (rc < 0)
        goto out;
    rc = 0;

    for (size_t i = 0; i < count; i++) {
        struct llmb_strlist cmd = {0};
        char *sub = llmb_xasprintf("worker:%s", ws[i].id);
        char *hkey = llmb_key_global(a->prefix, sub);
        llmb_strlist_push(&cmd, "HMGET");
        llmb_strlist_push(&cmd, hkey);
        for (size_t f = 0; f < LLMB_WF_COUNT; f++)
            llmb_strlist_push(&cmd, field_names[f]);
        llmb_batch_add_list(&b, &cmd);
        llmb_strlist_clear(&cmd);
        free(hkey);
        free(sub);
    }
    rc = llmb_batch_run(&b, a->conn, errstr);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const redisReply *r = b.replies[i];
        long long seen;

        /* A hash of another type, or gone: keep the id and the score. */
        if (r->type != REDIS_REPLY_ARRAY || r->elements != LLMB_WF_COUNT)
            continue;
        for (size_t f = 0; f < LLMB_WF_COUNT; f++) {
            const char *v = llmb_reply_str(r->element[f]);
            ws[i].f[f] = v ? llmb_xstrdup(v) : NULL;
        }
        if (llmb_reply_ll(r->element[LLMB_WF_SEEN_MS], &seen))
            ws[i].seen_ms = seen;
    }
    /* The hash expires when its worker stops heartbeating. */
    for (size_t i = 0; rc == 0 && i < count; i++)
        if (ws[i].f[LLMB_WF_STATE] == NULL)
            ws[i].f[LLMB_WF_STATE] = llmb_xstrdup("gone");
    if (rc == 0 && count > 1)
        qsort(ws, count, sizeof(*ws), cmp_worker);

out:
    llmb_batch_fini(&b);
    free(key);
    if (rc != 0) {
        llmb_workers_free(ws, count);
        ws = NULL;
        count = 0;
    }
    *out = ws;
    *n = count;
    return rc;
}

void llmb_workers_free(struct llmb_admin_worker *w, size_t n)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(w[i].id);
        for (size_t f = 0; f < LLMB_WF_COUNT; f++)
            free(w[i].f[f]);
    }
    free(w);
}

bool llmb_admin_worker_gone(const struct llmb_admin_worker *w)
{
    const char *s = w->f[LLMB_WF_STATE];
    return strcmp(s, "dead") == 0 || strcmp(s, "gone") == 0;
}

/* A list field (queues, tags) as a JSON array: the worker writes a
 * comma-separated list; a JSON array is taken as it is. */
static json_t *list_json(const char *s)
{
    struct llmb_strlist l = {0};
    json_t *arr;

    if (s == NULL)
        return json_array();
    if (s[0] == '[') {
        arr = json_loads(s, 0, NULL);
        if (json_is_array(arr))
            return arr;
        json_decref(arr);
    }
    arr = json_array();
    llmb_strlist_split(&l, s, ',');
    for (size_t i = 0; i < l.n; i++)
        json_array_append_new(arr, llmb_json_str(l.v[i]));
    llmb_strlist_clear(&l);
    return arr;
}

static json_t *worker_json(const struct llmb_admin_worker *w, int64_t now)
{
    json_t *o = json_object();

    json_object_set_new(o, "id", llmb_json_str(w->id));
    json_object_set_new(o, "host", llmb_json_str(w->f[LLMB_WF_HOST]));
    json_object_set_new(o, "pid", llmb_json_int_or_null(w->f[LLMB_WF_PID]));
    json_object_set_new(o, "queues", list_json(w->f[LLMB_WF_QUEUES]));
    json_object_set_new(o, "tags", list_json(w->f[LLMB_WF_TAGS]));
    json_object_set_new(o, "state", llmb_json_str(w->f[LLMB_WF_STATE]));
    json_object_set_new(o, "capacity",
                        llmb_json_int_or_null(w->f[LLMB_WF_CAPACITY]));
    json_object_set_new(o, "running",
                        llmb_json_int_or_null(w->f[LLMB_WF_RUNNING]));
    json_object_set_new(o, "completed",
                        llmb_json_int_or_null(w->f[LLMB_WF_COMPLETED]));
    json_object_set_new(o, "failed",
                        llmb_json_int_or_null(w->f[LLMB_WF_FAILED]));
    json_object_set_new(o, "version", llmb_json_str(w->f[LLMB_WF_VERSION]));
    json_object_set_new(o, "started_ms",
                        llmb_json_int_or_null(w->f[LLMB_WF_STARTED_MS]));
    json_object_set_new(o, "seen_ms", json_integer(w->seen_ms));
    json_object_set_new(o, "seen_ago_ms",
                        json_integer(now > w->seen_ms ? now - w->seen_ms : 0));
    return o;
}

static void print_table(struct llmb_admin *a, const struct llmb_admin_worker *ws,
                        size_t n, int64_t now)
{
    struct llmb_table *t = llmb_table_new();
    char ago[LLMB_HUMAN_LEN];

    llmb_table_column(t, "ID", false);
    llmb_table_column(t, "HOST", false);
    llmb_table_column(t, "PID", true);
    llmb_table_column(t, "QUEUES", false);
    llmb_table_column(t, "STATE", false);
    llmb_table_column(t, "CAP", true);
    llmb_table_column(t, "RUNNING", true);
    /* counters of attempts: a task retried twice failed two */
    llmb_table_column(t, "ATTEMPTS OK", true);
    llmb_table_column(t, "ATTEMPTS FAILED", true);
    llmb_table_column(t, "LAST SEEN", true);
    for (size_t i = 0; i < n; i++) {
        const struct llmb_admin_worker *w = &ws[i];
        llmb_table_cell(t, w->id);
        llmb_table_cell(t, w->f[LLMB_WF_HOST]);
        llmb_table_cell(t, w->f[LLMB_WF_PID]);
        llmb_table_cell(t, w->f[LLMB_WF_QUEUES]);
        llmb_table_cell(t, w->f[LLMB_WF_STATE]);
        llmb_table_cell(t, w->f[LLMB_WF_CAPACITY]);
        llmb_table_cell(t, w->f[LLMB_WF_RUNNING]);
        llmb_table_cell(t, w->f[LLMB_WF_COMPLETED]);
        llmb_table_cell(t, w->f[LLMB_WF_FAILED]);
        llmb_table_cell(t, llmb_human_ago(now, w->seen_ms, ago));
    }
    llmb_table_print(t, a->out);
    llmb_table_free(t);
}

json_t *llmb_workers_json(const struct llmb_admin_worker *ws, size_t n,
                          int64_t now)
{
    json_t *doc = json_object();
    json_t *arr = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, worker_json(&ws[i], now));
    json_object_set_new(doc, "now_ms", json_integer(now));
    json_object_set_new(doc, "workers", arr);
    return doc;
}

/* The server time and every worker. */
static int workers_read(struct llmb_admin *a, struct llmb_admin_worker **ws,
                        size_t *n, int64_t *now, char **errstr)
{
    int rc = llmb_lookup_now(a, now, errstr);

    if (rc == 0)
        rc = llmb_workers_fetch(a, ws, n, errstr);
    return rc;
}

int llmb_view_workers(struct llmb_admin *a, json_t **doc, char **errstr)
{
    struct llmb_admin_worker *ws = NULL;
    size_t n = 0;
    int64_t now = 0;
    int rc = workers_read(a, &ws, &n, &now, errstr);

    *doc = rc == 0 ? llmb_workers_json(ws, n, now) : NULL;
    llmb_workers_free(ws, n);
    return rc;
}

int llmb_workers_run(struct llmb_admin *a, char **errstr)
{
    struct llmb_admin_worker *ws = NULL;
    size_t n = 0;
    int64_t now = 0;
    int rc;

    rc = workers_read(a, &ws, &n, &now, errstr);
    if (rc != 0)
        return rc;

    if (a->cfg->json)
        llmb_output_json(a, llmb_workers_json(ws, n, now));
    else if (n == 0)
        fprintf(a->out, "no workers (the set %s:workers is empty)\n",
                a->prefix);
    else
        print_table(a, ws, n, now);
    llmb_workers_free(ws, n);
    return 0;
}
