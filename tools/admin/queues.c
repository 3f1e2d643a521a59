/*
 * `llmb queues`: one line per known queue with its depth and the age of
 * its head, from the read-only function llmb_stats (lua/80-stats.lua),
 * called for every queue in one pipeline. `llmb stats` reads the same
 * numbers through llmb_queue_stats_fetch().
 */
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/keys.h>

#include "admin.h"

/* Fills s from the field/value pairs llmb_stats answers. */
static int stats_parse(const redisReply *r, struct llmb_queue_stats *s,
                       int64_t *now_ms)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
        return LLMB_EPROTO;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *k = llmb_reply_str(r->element[i]);
        long long v = llmb_reply_ll_or(r->element[i + 1], 0);

        if (k == NULL)
            return LLMB_EPROTO;
        if (strcmp(k, "pending") == 0)
            s->pending = v;
        else if (strcmp(k, "delayed") == 0)
            s->delayed = v;
        else if (strcmp(k, "running") == 0)
            s->running = v;
        else if (strcmp(k, "jobs") == 0)
            s->jobs = v;
        else if (strcmp(k, "dead") == 0)
            s->dead = v;
        else if (strcmp(k, "to_aggregate") == 0)
            s->to_aggregate = v;
        else if (strcmp(k, "head_age_ms") == 0)
            s->head_age_ms = v;
        else if (strcmp(k, "now_ms") == 0)
            *now_ms = v;
        else if (strcmp(k, "tasks_ok") == 0)
            s->tasks_ok = v;
        else if (strcmp(k, "tasks_failed") == 0)
            s->tasks_failed = v;
        else if (strcmp(k, "tasks_cancelled") == 0)
            s->tasks_cancelled = v;
    }
    return 0;
}

int llmb_queue_stats_fetch(struct llmb_admin *a,
                           const struct llmb_strlist *names,
                           struct llmb_queue_stats **out, int64_t *now_ms,
                           char **errstr)
{
    struct llmb_queue_stats *s = llmb_xcalloc(names->n, sizeof(*s));
    struct llmb_batch b;
    int rc;

    *now_ms = 0;
    llmb_batch_init(&b);
    for (size_t i = 0; i < names->n; i++) {
        char *base = llmb_key_queue(a->prefix, names->v[i]);
        llmb_batch_add(&b, "FCALL_RO", "llmb_stats", "1", base, NULL);
        free(base);
        s[i].name = llmb_xstrdup(names->v[i]);
    }
    rc = llmb_batch_run(&b, a->conn, errstr);
    for (size_t i = 0; rc == 0 && i < names->n; i++) {
        rc = llmb_reply_check(b.replies[i], a->conn, errstr);
        if (rc != 0) {
            char *m = *errstr;
            *errstr = llmb_xasprintf("queue %s: %s", names->v[i], m);
            free(m);
        } else if (stats_parse(b.replies[i], &s[i], now_ms) != 0) {
            *errstr = llmb_xasprintf("queue %s: llmb_stats answered "
                                     "something unexpected", names->v[i]);
            rc = LLMB_EPROTO;
        }
    }
    llmb_batch_fini(&b);
    if (rc != 0) {
        llmb_queue_stats_free(s, names->n);
        s = NULL;
    }
    *out = s;
    return rc;
}

void llmb_queue_stats_free(struct llmb_queue_stats *s, size_t n)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(s[i].name);
    free(s);
}

json_t *llmb_queue_stats_json(const struct llmb_queue_stats *s)
{
    json_t *o = json_object();

    json_object_set_new(o, "name", llmb_json_str(s->name));
    json_object_set_new(o, "pending", json_integer(s->pending));
    json_object_set_new(o, "delayed", json_integer(s->delayed));
    json_object_set_new(o, "running", json_integer(s->running));
    json_object_set_new(o, "jobs", json_integer(s->jobs));
    json_object_set_new(o, "dead", json_integer(s->dead));
    json_object_set_new(o, "to_aggregate", json_integer(s->to_aggregate));
    json_object_set_new(o, "head_age_ms", json_integer(s->head_age_ms));
    json_object_set_new(o, "tasks_ok", json_integer(s->tasks_ok));
    json_object_set_new(o, "tasks_failed", json_integer(s->tasks_failed));
    json_object_set_new(o, "tasks_cancelled",
                        json_integer(s->tasks_cancelled));
    return o;
}

static void print_table(struct llmb_admin *a,
                        const struct llmb_queue_stats *s, size_t n)
{
    struct llmb_table *t = llmb_table_new();
    char d[LLMB_HUMAN_LEN];

    llmb_table_column(t, "QUEUE", false);
    llmb_table_column(t, "PENDING", true);
    llmb_table_column(t, "DELAYED", true);
    llmb_table_column(t, "RUNNING", true);
    llmb_table_column(t, "DEAD", true);
    llmb_table_column(t, "JOBS", true);
    llmb_table_column(t, "HEAD AGE", true);
    for (size_t i = 0; i < n; i++) {
        llmb_table_cell(t, s[i].name);
        llmb_table_cellf(t, "%lld", s[i].pending);
        llmb_table_cellf(t, "%lld", s[i].delayed);
        llmb_table_cellf(t, "%lld", s[i].running);
        llmb_table_cellf(t, "%lld", s[i].dead);
        llmb_table_cellf(t, "%lld", s[i].jobs);
        llmb_table_cell(t, s[i].pending > 0
                               ? llmb_human_duration(s[i].head_age_ms, d)
                               : "-");
    }
    llmb_table_print(t, a->out);
    llmb_table_free(t);
}

int llmb_queues_run(struct llmb_admin *a, char **errstr)
{
    struct llmb_strlist names = {0};
    struct llmb_queue_stats *s = NULL;
    int64_t now = 0;
    int rc;

    rc = llmb_lookup_queues(a, &names, errstr);
    if (rc == 0)
        rc = llmb_queue_stats_fetch(a, &names, &s, &now, errstr);
    if (rc != 0)
        goto out;

    if (a->cfg->json) {
        json_t *doc = json_object();
        json_t *arr = json_array();
        for (size_t i = 0; i < names.n; i++)
            json_array_append_new(arr, llmb_queue_stats_json(&s[i]));
        json_object_set_new(doc, "queues", arr);
        llmb_output_json(a, doc);
    } else if (names.n == 0) {
        fprintf(a->out, "no queues yet (the set %s:queues is empty)\n",
                a->prefix);
    } else {
        print_table(a, s, names.n);
    }

out:
    llmb_queue_stats_free(s, names.n);
    llmb_strlist_clear(&names);
    return rc;
}
