/*
 * `llmb stats`: the state of the whole cluster on one screen. Per queue
 * the numbers of llmb_stats (queues.c) and their totals; the workers
 * summed from their hashes (workers.c) by state, with the capacity and
 * running tasks of the live ones; and the coordinator's cluster metrics,
 * the hash <prefix>:metrics, shown as written when a coordinator keeps it.
 *
 * A queue whose stats cannot be read is shown with "-" (its numbers are
 * unknown, not 0) and left out of the totals; its error goes to stderr,
 * everything else is shown, and the command exits with status 1. The JUNK
 * column appears when a queue has met junk (llmb_stats field junk).
 *
 * A queue with tasks pending that no live worker serves (no worker
 * advertises job types in its <base>:types, llmb/served.h, and no live
 * worker's record lists it) gets a note under the table, and an entry in
 * "unserved" with --json: such work would otherwise wait silently.
 */
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/keys.h>
#include <llmb/served.h>

#include "admin.h"

/* Sums of the worker records. */
struct worker_sums {
    size_t total, alive;
    long long capacity, running; /* over live workers */
    long long completed, failed; /* attempts, over all */
    long long seen_min, seen_max; /* of the live, 0: none */
    json_t *by_state;            /* state -> count */
};

static void workers_sum(const struct llmb_admin_worker *ws, size_t n,
                        struct worker_sums *s)
{
    memset(s, 0, sizeof(*s));
    s->by_state = json_object();
    s->total = n;
    for (size_t i = 0; i < n; i++) {
        const struct llmb_admin_worker *w = &ws[i];
        const char *st = w->f[LLMB_WF_STATE];
        json_t *c = json_object_get(s->by_state, st);

        if (c != NULL)
            json_integer_set(c, json_integer_value(c) + 1);
        else
            json_object_set_new(s->by_state, st, json_integer(1));
        if (w->f[LLMB_WF_COMPLETED])
            s->completed += strtoll(w->f[LLMB_WF_COMPLETED], NULL, 10);
        if (w->f[LLMB_WF_FAILED])
            s->failed += strtoll(w->f[LLMB_WF_FAILED], NULL, 10);
        if (llmb_admin_worker_gone(w))
            continue;
        s->alive++;
        if (w->f[LLMB_WF_SEEN_MS]) {
            long long seen = strtoll(w->f[LLMB_WF_SEEN_MS], NULL, 10);
            if (s->seen_min == 0 || seen < s->seen_min)
                s->seen_min = seen;
            if (seen > s->seen_max)
                s->seen_max = seen;
        }
        if (w->f[LLMB_WF_CAPACITY])
            s->capacity += strtoll(w->f[LLMB_WF_CAPACITY], NULL, 10);
        if (w->f[LLMB_WF_RUNNING])
            s->running += strtoll(w->f[LLMB_WF_RUNNING], NULL, 10);
    }
}

/* Reads the coordinator's metrics hash into *out: an object, or NULL when
 * there is no such hash. */
static int metrics_fetch(struct llmb_admin *a, json_t **out, char **errstr)
{
    char *key = llmb_key_global(a->prefix, "metrics");
    redisReply *r = llmb_cluster_command(a->conn, "HGETALL %s", key);
    int rc = llmb_reply_check(r, a->conn, errstr);

    *out = NULL;
    if (rc != 0) {
        char *m = *errstr;
        *errstr = llmb_xasprintf("%s: %s", key, m);
        free(m);
        goto out;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        *out = json_object();
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            const char *k = llmb_reply_str(r->element[i]);
            const char *v = llmb_reply_str(r->element[i + 1]);
            if (k != NULL && v != NULL)
                json_object_set_new(*out, k, llmb_json_scalar(v));
        }
    }

out:
    if (r != NULL)
        freeReplyObject(r);
    free(key);
    return rc;
}

/* True when a live worker's record lists queue. */
static bool listed_by_worker(const struct llmb_admin_worker *ws, size_t nw,
                             const char *queue)
{
    for (size_t i = 0; i < nw; i++) {
        struct llmb_strlist qs = {0};
        bool found = false;
        if (llmb_admin_worker_gone(&ws[i]) || ws[i].f[LLMB_WF_QUEUES] == NULL)
            continue;
        llmb_strlist_split(&qs, ws[i].f[LLMB_WF_QUEUES], ',');
        for (size_t k = 0; k < qs.n && !found; k++)
            found = strcmp(qs.v[k], queue) == 0;
        llmb_strlist_clear(&qs);
        if (found)
            return true;
    }
    return false;
}

/* The queues with tasks pending that no live worker serves, as an object
 * queue -> why (empty when there is none). Reads <base>:types of each
 * queue with pending tasks, pipelined. Returns 0 or LLMB_EIO. */
static int unserved_fetch(struct llmb_admin *a,
                          const struct llmb_queue_row *s, size_t n,
                          const struct llmb_admin_worker *ws, size_t nw,
                          int64_t now, json_t **out, char **errstr)
{
    bool *asked = llmb_xcalloc(n + 1, sizeof(*asked));
    int rc = 0;

    *out = json_object();
    for (size_t i = 0; i < n; i++) {
        if (s[i].error != NULL || s[i].st.pending == 0 ||
            listed_by_worker(ws, nw, s[i].name))
            continue;
        char *key = llmb_key_queue_sub(a->prefix, s[i].name,
                                       LLMB_SERVED_SUFFIX);
        const char *argv[] = {"HGETALL", key};
        rc = llmb_cluster_append_argv(a->conn, 2, argv, NULL);
        free(key);
        if (rc != 0)
            break;
        asked[i] = true;
    }
    for (size_t i = 0; i < n; i++) {
        struct llmb_served sv;
        redisReply *r;
        if (!asked[i])
            continue;
        r = llmb_cluster_get_reply(a->conn);
        if (r == NULL) {
            rc = LLMB_EIO;
            continue;
        }
        if (llmb_served_parse(r, now, INT64_MAX, &sv) == 0) {
            if (!llmb_served_any(&sv))
                json_object_set_new(*out, s[i].name, json_sprintf(
                    "%lld tasks pending and no live worker serves the queue",
                    s[i].st.pending));
            llmb_served_fini(&sv);
        }
        freeReplyObject(r);
    }
    if (rc != 0)
        *errstr = llmb_xasprintf("reading <base>:types: %s",
                                 llmb_cluster_errstr(a->conn));
    free(asked);
    return rc;
}

/* Sums the readable rows into *tot; returns them as JSON. */
static json_t *totals_json(const struct llmb_queue_row *rows, size_t n,
                           struct llmb_queue_stats *tot)
{
    json_t *o = json_object();

    memset(tot, 0, sizeof(*tot));
    for (size_t i = 0; i < n; i++) {
        const struct llmb_queue_stats *s = &rows[i].st;
        if (rows[i].error != NULL)
            continue;
        tot->pending += s->pending;
        tot->delayed += s->delayed;
        tot->running += s->running;
        tot->jobs += s->jobs;
        tot->dead += s->dead;
        tot->to_aggregate += s->to_aggregate;
        tot->tasks_ok += s->tasks_ok;
        tot->tasks_failed += s->tasks_failed;
        tot->tasks_cancelled += s->tasks_cancelled;
        tot->junk += s->junk;
        if (s->head_age_ms > tot->head_age_ms)
            tot->head_age_ms = s->head_age_ms;
    }
    json_object_set_new(o, "pending", json_integer(tot->pending));
    json_object_set_new(o, "delayed", json_integer(tot->delayed));
    json_object_set_new(o, "running", json_integer(tot->running));
    json_object_set_new(o, "jobs", json_integer(tot->jobs));
    json_object_set_new(o, "dead", json_integer(tot->dead));
    json_object_set_new(o, "to_aggregate", json_integer(tot->to_aggregate));
    json_object_set_new(o, "head_age_ms", json_integer(tot->head_age_ms));
    json_object_set_new(o, "tasks_ok", json_integer(tot->tasks_ok));
    json_object_set_new(o, "tasks_failed", json_integer(tot->tasks_failed));
    json_object_set_new(o, "tasks_cancelled",
                        json_integer(tot->tasks_cancelled));
    json_object_set_new(o, "junk", json_integer(tot->junk));
    return o;
}

static json_t *workers_json(const struct worker_sums *w)
{
    json_t *o = json_object();

    json_object_set_new(o, "total", json_integer((json_int_t)w->total));
    json_object_set_new(o, "alive", json_integer((json_int_t)w->alive));
    json_object_set(o, "by_state", w->by_state);
    json_object_set_new(o, "capacity", json_integer(w->capacity));
    json_object_set_new(o, "running", json_integer(w->running));
    json_object_set_new(o, "completed", json_integer(w->completed));
    json_object_set_new(o, "failed", json_integer(w->failed));
    /* the figures above are as of these heartbeats (Redis ms) */
    json_object_set_new(o, "seen_newest_ms", w->seen_max > 0
                        ? json_integer(w->seen_max) : json_null());
    json_object_set_new(o, "seen_oldest_ms", w->seen_min > 0
                        ? json_integer(w->seen_min) : json_null());
    return o;
}

/* Metrics of the hash that the queue table above has read afresh: shown
 * there, not here, so that two numbers of different ages never sit one
 * under the other. */
static bool metric_repeats_table(const char *k)
{
    return strncmp(k, "queue:", 6) == 0 || strncmp(k, "tasks_", 6) == 0 ||
           strcmp(k, "to_aggregate") == 0;
}

/* The coordinator's metrics with their age, but for the fields that
 * repeat the table above (metric_repeats_table). */
static void print_metrics(struct llmb_admin *a, json_t *metrics, int64_t now)
{
    struct llmb_table *t = llmb_table_new();
    json_t *updated = json_object_get(metrics, "updated_ms");
    json_t *by = json_object_get(metrics, "updated_by");
    json_t *every = json_object_get(metrics, "interval_ms");
    char ago[LLMB_HUMAN_LEN];
    size_t skipped = 0;
    bool jobs = false;
    const char *k;
    json_t *v;

    fprintf(a->out, "\ncoordinator metrics (%s:metrics", a->prefix);
    if (json_is_integer(updated))
        fprintf(a->out, ", updated %s",
                llmb_human_ago(now, json_integer_value(updated), ago));
    if (json_is_string(by))
        fprintf(a->out, " by %s", json_string_value(by));
    if (json_is_integer(every))
        fprintf(a->out, ", every %lldms",
                (long long)json_integer_value(every));
    fprintf(a->out, "):\n");
    /* older than two collections: the coordinator is not writing it */
    if (json_is_integer(updated) && json_is_integer(every) &&
        now - json_integer_value(updated) > 2 * json_integer_value(every))
        fprintf(a->out, "note: these metrics are stale (no collection for "
                        "%s); is llmb-coordinator running?\n",
                llmb_human_duration(now - json_integer_value(updated), ago));
    llmb_table_column(t, "METRIC", false);
    llmb_table_column(t, "VALUE", false);
    json_object_foreach(metrics, k, v) {
        if (metric_repeats_table(k)) {
            skipped++;
            continue;
        }
        if (strncmp(k, "jobs_", 5) == 0)
            jobs = true;
        llmb_table_cell(t, k);
        if (json_is_string(v))
            llmb_table_cell(t, json_string_value(v));
        else if (json_is_integer(v))
            llmb_table_cellf(t, "%lld", (long long)json_integer_value(v));
        else
            llmb_table_cellf(t, "%g", json_number_value(v));
    }
    llmb_table_print(t, a->out);
    llmb_table_free(t);
    if (skipped > 0)
        fprintf(a->out, "(%zu metrics that repeat the queue table, "
                        "tasks_* and queue:<name>:<field>, are in --json)\n",
                skipped);
    if (jobs)
        fprintf(a->out, "(jobs_<state> counts jobs: a running job has "
                        "started and not ended, with tasks leased or "
                        "waiting; RUNNING above counts leased tasks)\n");
}

static void print_text(struct llmb_admin *a, const struct llmb_queue_row *s,
                       size_t n, struct llmb_queue_stats *tot,
                       const struct worker_sums *w, json_t *metrics,
                       json_t *unserved, int64_t now)
{
    struct llmb_table *t = llmb_table_new();
    const char *state;
    json_t *v;
    bool first = true;
    unsigned cols = LLMB_QT_TASKS | (tot->junk > 0 ? LLMB_QT_JUNK : 0);

    llmb_queue_table_columns(t, cols);
    for (size_t i = 0; i < n; i++)
        llmb_queue_table_row(t, s[i].name,
                             s[i].error != NULL ? NULL : &s[i].st, cols);
    if (n != 1)
        llmb_queue_table_row(t, n == 0 ? "(no queues)" : "(total)", tot,
                             cols);
    llmb_table_print(t, a->out);
    llmb_table_free(t);
    llmb_queue_rows_paused_print(a->out, s, n);
    const char *uq;
    json_t *why;
    json_object_foreach(unserved, uq, why)
        fprintf(a->out, "note: queue %s: %s\n", uq, json_string_value(why));

    /* Every figure of these lines is as of the workers' last heartbeats,
     * which the first line dates. */
    fprintf(a->out, "\nworkers   %zu", w->total);
    json_object_foreach(w->by_state, state, v) {
        fprintf(a->out, "%s%s %lld", first ? ": " : ", ", state,
                (long long)json_integer_value(v));
        first = false;
    }
    if (w->seen_max > 0) {
        char a1[LLMB_HUMAN_LEN], a2[LLMB_HUMAN_LEN];
        llmb_human_ago(now, w->seen_max, a1);
        llmb_human_ago(now, w->seen_min, a2);
        fprintf(a->out, " (as of their heartbeats %s", a1);
        if (strcmp(a1, a2) != 0)
            fprintf(a->out, " to %s", a2);
        fprintf(a->out, ")");
    }
    fprintf(a->out, "\ncapacity  %lld on %zu live workers: %lld running, "
                    "%lld free\n", w->capacity, w->alive, w->running,
            w->capacity > w->running ? w->capacity - w->running : 0);
    /* attempts, not tasks: a task retried twice failed two attempts */
    fprintf(a->out, "attempts  %lld completed, %lld failed (task attempts "
                    "the workers counted, retries included)\n", w->completed,
            w->failed);

    if (metrics == NULL) {
        fprintf(a->out, "\nno coordinator metrics (%s:metrics does not "
                        "exist)\n", a->prefix);
        return;
    }
    print_metrics(a, metrics, now);
}

/* What `stats` shows, read from Redis by stats_fetch(). */
struct stats_view {
    struct llmb_strlist names;   /* the queues */
    struct llmb_queue_row *rows; /* names.n rows */
    struct llmb_admin_worker *ws;
    size_t nw;
    struct worker_sums w;
    json_t *metrics;  /* or NULL */
    json_t *unserved; /* queue -> why */
    int64_t now;
};

static void stats_fini(struct stats_view *v)
{
    json_decref(v->metrics);
    json_decref(v->unserved);
    json_decref(v->w.by_state);
    llmb_workers_free(v->ws, v->nw);
    llmb_queue_rows_free(v->rows, v->names.n);
    llmb_strlist_clear(&v->names);
    memset(v, 0, sizeof(*v));
}

/* Reads everything `stats` shows into *v (stats_fini() it in every
 * case). Queues whose stats cannot be read have an error in their row. */
static int stats_fetch(struct llmb_admin *a, struct stats_view *v,
                       char **errstr)
{
    int rc;

    memset(v, 0, sizeof(*v));
    rc = llmb_lookup_queues(a, &v->names, errstr);
    if (rc == 0)
        rc = llmb_queue_stats_fetch(a, &v->names, &v->rows, &v->now, errstr);
    if (rc == 0 && v->now == 0)
        rc = llmb_lookup_now(a, &v->now, errstr);
    if (rc == 0)
        rc = llmb_workers_fetch(a, &v->ws, &v->nw, errstr);
    if (rc == 0)
        rc = metrics_fetch(a, &v->metrics, errstr);
    if (rc == 0)
        rc = unserved_fetch(a, v->rows, v->names.n, v->ws, v->nw, v->now,
                            &v->unserved, errstr);
    if (rc == 0)
        workers_sum(v->ws, v->nw, &v->w);
    return rc;
}

/* The document of `stats --json`; *tot gets the totals. */
static json_t *stats_json(const struct stats_view *v,
                          struct llmb_queue_stats *tot)
{
    json_t *doc = json_object();
    json_t *arr = json_array();

    for (size_t i = 0; i < v->names.n; i++)
        json_array_append_new(arr, llmb_queue_row_json(&v->rows[i]));
    json_object_set_new(doc, "now_ms", json_integer(v->now));
    json_object_set_new(doc, "queues", arr);
    json_object_set_new(doc, "totals", totals_json(v->rows, v->names.n, tot));
    json_object_set_new(doc, "workers", workers_json(&v->w));
    json_object_set(doc, "unserved", v->unserved);
    json_object_set(doc, "metrics", v->metrics ? v->metrics : json_null());
    return doc;
}

int llmb_view_stats_workers(struct llmb_admin *a, json_t **stats,
                            json_t **workers, char **errstr)
{
    struct stats_view v;
    struct llmb_queue_stats tot;
    int rc = stats_fetch(a, &v, errstr);

    *stats = rc == 0 ? stats_json(&v, &tot) : NULL;
    if (workers != NULL)
        *workers = rc == 0 ? llmb_workers_json(v.ws, v.nw, v.now) : NULL;
    stats_fini(&v);
    return rc;
}

int llmb_view_stats(struct llmb_admin *a, json_t **doc, char **errstr)
{
    return llmb_view_stats_workers(a, doc, NULL, errstr);
}

int llmb_stats_run(struct llmb_admin *a, char **errstr)
{
    struct stats_view v;
    struct llmb_queue_stats tot;
    json_t *doc;
    int rc;

    rc = stats_fetch(a, &v, errstr);
    if (rc != 0)
        goto out;
    /* Unreadable queues: on stderr now, the exit status at the end. */
    rc = llmb_queue_rows_errors(v.rows, v.names.n, errstr);
    doc = stats_json(&v, &tot);
    if (a->cfg->json)
        llmb_output_json(a, doc);
    else {
        print_text(a, v.rows, v.names.n, &tot, &v.w, v.metrics, v.unserved,
                   v.now);
        json_decref(doc);
    }

out:
    stats_fini(&v);
    return rc;
}
