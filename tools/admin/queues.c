/*
 * `llmb queues`: one line per known queue with its depth and the age of
 * its head, from the read-only function llmb_stats (lua/80-stats.lua),
 * called for every queue in one pipeline and read by
 * llmb_queue_stats_parse() (lib/stats.c). `llmb stats` reads the same
 * numbers through llmb_queue_stats_fetch(). A queue whose stats cannot be
 * read is shown with "-" and its error on stderr; the others are shown all
 * the same, and the command then exits with status 1.
 */
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/keys.h>

#include "admin.h"

int llmb_queue_stats_fetch(struct llmb_admin *a,
                           const struct llmb_strlist *names,
                           struct llmb_queue_row **out, int64_t *now_ms,
                           char **errstr)
{
    struct llmb_queue_row *s = llmb_xcalloc(names->n, sizeof(*s));
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
        if (llmb_queue_stats_parse(b.replies[i], &s[i].st, &s[i].error) !=
            0) {
            memset(&s[i].st, 0, sizeof(s[i].st));
            continue;
        }
        if (*now_ms == 0)
            *now_ms = s[i].st.now_ms;
    }
    llmb_batch_fini(&b);
    if (rc != 0) {
        llmb_queue_rows_free(s, names->n);
        s = NULL;
    }
    *out = s;
    return rc;
}

void llmb_queue_rows_free(struct llmb_queue_row *s, size_t n)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(s[i].name);
        free(s[i].error);
    }
    free(s);
}

json_t *llmb_queue_row_json(const struct llmb_queue_row *s)
{
    json_t *o = json_object();
    const struct llmb_queue_stats *st = &s->st;

    json_object_set_new(o, "name", llmb_json_str(s->name));
    if (s->error != NULL) {
        json_object_set_new(o, "error", llmb_json_str(s->error));
        return o;
    }
    json_object_set_new(o, "pending", json_integer(st->pending));
    json_object_set_new(o, "delayed", json_integer(st->delayed));
    json_object_set_new(o, "running", json_integer(st->running));
    json_object_set_new(o, "jobs", json_integer(st->jobs));
    json_object_set_new(o, "dead", json_integer(st->dead));
    json_object_set_new(o, "to_aggregate", json_integer(st->to_aggregate));
    json_object_set_new(o, "head_age_ms", json_integer(st->head_age_ms));
    json_object_set_new(o, "tasks_ok", json_integer(st->tasks_ok));
    json_object_set_new(o, "tasks_failed", json_integer(st->tasks_failed));
    json_object_set_new(o, "tasks_cancelled",
                        json_integer(st->tasks_cancelled));
    json_object_set_new(o, "junk", json_integer(st->junk));
    json_object_set_new(o, "paused", json_boolean(st->paused != 0));
    return o;
}

void llmb_queue_rows_paused_print(FILE *out, const struct llmb_queue_row *s,
                                  size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i].error == NULL && s[i].st.paused)
            fprintf(out, "note: queue %s is paused: workers claim nothing "
                         "from it (llmb resume %s)\n", s[i].name, s[i].name);
}

int llmb_queue_rows_errors(const struct llmb_queue_row *s, size_t n,
                           char **errstr)
{
    struct llmb_buf names;
    size_t bad = 0;

    llmb_buf_init(&names);
    for (size_t i = 0; i < n; i++) {
        if (s[i].error == NULL)
            continue;
        fprintf(stderr, "llmb: queue %s: %s\n", s[i].name, s[i].error);
        llmb_buf_appendf(&names, "%s%s", bad > 0 ? ", " : "", s[i].name);
        bad++;
    }
    if (bad == 0) {
        llmb_buf_fini(&names);
        return 0;
    }
    *errstr = llmb_xasprintf("the stats of %zu queue%s could not be read: "
                             "%s", bad, bad == 1 ? "" : "s", names.data);
    llmb_buf_fini(&names);
    return LLMB_EREDIS;
}

void llmb_queue_table_columns(struct llmb_table *t, unsigned cols)
{
    llmb_table_column(t, "QUEUE", false);
    llmb_table_column(t, "PENDING", true);
    llmb_table_column(t, "DELAYED", true);
    llmb_table_column(t, "RUNNING", true);
    llmb_table_column(t, "DEAD", true);
    llmb_table_column(t, "JOBS", true);
    if (cols & LLMB_QT_TASKS) {
        llmb_table_column(t, "TO AGGREGATE", true);
        llmb_table_column(t, "TASKS OK", true);
        llmb_table_column(t, "TASKS FAILED", true);
    }
    if (cols & LLMB_QT_JUNK)
        llmb_table_column(t, "JUNK", true);
    llmb_table_column(t, "HEAD AGE", true);
}

void llmb_queue_table_row(struct llmb_table *t, const char *name,
                          const struct llmb_queue_stats *st, unsigned cols)
{
    char d[LLMB_HUMAN_LEN];

    llmb_table_cell(t, name);
    if (st == NULL) {
        int unknown = 6 + (cols & LLMB_QT_TASKS ? 3 : 0) +
                      (cols & LLMB_QT_JUNK ? 1 : 0);
        for (int k = 0; k < unknown; k++)
            llmb_table_cell(t, NULL); /* unknown, not 0 */
        return;
    }
    llmb_table_cellf(t, "%lld", st->pending);
    llmb_table_cellf(t, "%lld", st->delayed);
    llmb_table_cellf(t, "%lld", st->running);
    llmb_table_cellf(t, "%lld", st->dead);
    llmb_table_cellf(t, "%lld", st->jobs);
    if (cols & LLMB_QT_TASKS) {
        llmb_table_cellf(t, "%lld", st->to_aggregate);
        llmb_table_cellf(t, "%lld", st->tasks_ok);
        llmb_table_cellf(t, "%lld", st->tasks_failed);
    }
    if (cols & LLMB_QT_JUNK)
        llmb_table_cellf(t, "%lld", st->junk);
    llmb_table_cell(t, st->pending > 0
                           ? llmb_human_duration(st->head_age_ms, d)
                           : "-");
}

static void print_table(struct llmb_admin *a,
                        const struct llmb_queue_row *s, size_t n)
{
    struct llmb_table *t = llmb_table_new();

    llmb_queue_table_columns(t, 0);
    for (size_t i = 0; i < n; i++)
        llmb_queue_table_row(t, s[i].name,
                             s[i].error != NULL ? NULL : &s[i].st, 0);
    llmb_table_print(t, a->out);
    llmb_table_free(t);
}

/* The document of `queues --json`. */
static json_t *queues_json(const struct llmb_queue_row *s, size_t n)
{
    json_t *doc = json_object();
    json_t *arr = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, llmb_queue_row_json(&s[i]));
    json_object_set_new(doc, "queues", arr);
    return doc;
}

/* The known queues (or --queue) into *names and their rows into *s. */
static int queues_fetch(struct llmb_admin *a, struct llmb_strlist *names,
                        struct llmb_queue_row **s, char **errstr)
{
    int64_t now = 0;
    int rc = llmb_lookup_queues(a, names, errstr);

    if (rc == 0)
        rc = llmb_queue_stats_fetch(a, names, s, &now, errstr);
    return rc;
}

int llmb_view_queues(struct llmb_admin *a, json_t **doc, char **errstr)
{
    struct llmb_strlist names = {0};
    struct llmb_queue_row *s = NULL;
    int rc = queues_fetch(a, &names, &s, errstr);

    *doc = rc == 0 ? queues_json(s, names.n) : NULL;
    llmb_queue_rows_free(s, names.n);
    llmb_strlist_clear(&names);
    return rc;
}

int llmb_queues_run(struct llmb_admin *a, char **errstr)
{
    struct llmb_strlist names = {0};
    struct llmb_queue_row *s = NULL;
    int rc;

    rc = queues_fetch(a, &names, &s, errstr);
    if (rc != 0)
        goto out;

    rc = llmb_queue_rows_errors(s, names.n, errstr);
    if (a->cfg->json) {
        llmb_output_json(a, queues_json(s, names.n));
    } else if (names.n == 0) {
        fprintf(a->out, "no queues yet (the set %s:queues is empty)\n",
                a->prefix);
    } else {
        print_table(a, s, names.n);
        llmb_queue_rows_paused_print(a->out, s, names.n);
    }

out:
    llmb_queue_rows_free(s, names.n);
    llmb_strlist_clear(&names);
    return rc;
}
