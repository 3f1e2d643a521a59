/*
 * `llmb jobs`: the newest jobs first. Each queue keeps its job ids in
 * push order in the list <base>:jl, so the newest are an LRANGE of its
 * tail away;
 * their fields come in one pipelined call of llmb_job each. With --state
 * the walk goes on, a thousand ids at a time, until --limit jobs match or
 * LLMB_ADMIN_SCAN_MAX ids were read, so the command stays bounded on a
 * queue of millions. Over several queues each queue gives its newest
 * matches and the merged list is cut to --limit. The table says how the
 * tasks that ended did ("12 ok, 18 cancelled"), not just how many.
 */
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/jobfields.h>
#include <llmb/keys.h>

#include "admin.h"

/* The job fields read per job, in this order. */
enum { F_TYPE, F_STATE, F_TASKS, F_LEFT, F_OK, F_FAILED, F_CANCELLED,
       F_PRIORITY, F_CREATED, F_STARTED, F_FINISHED, F_ERROR, F_COUNT };
static const char *const field_names[F_COUNT] = {
    "type", "state", "tasks", "left", "ok", "failed", "cancelled",
    "priority", "created_ms", "started_ms", "finished_ms", "error",
};

struct job_row {
    char *id, *queue;
    long long created; /* its created_ms */
    char *f[F_COUNT];
};

/* The rows found so far, over all queues. */
struct job_rows {
    struct job_row *v;
    size_t n;
    bool truncated; /* some queue hit the scan bound */
};

static void rows_free(struct job_rows *rows)
{
    for (size_t i = 0; i < rows->n; i++) {
        free(rows->v[i].id);
        free(rows->v[i].queue);
        for (size_t f = 0; f < F_COUNT; f++)
            free(rows->v[i].f[f]);
    }
    free(rows->v);
    memset(rows, 0, sizeof(*rows));
}

static int cmp_row(const void *x, const void *y)
{
    const struct job_row *a = x, *b = y;
    if (a->created != b->created)
        return a->created > b->created ? -1 : 1;
    return strcmp(a->id, b->id);
}

/* Which jobs a listing keeps: all when both are NULL. */
struct job_filter {
    const char *state;  /* in this state only */
    const char *search; /* whose id starts with it or whose type is it */
};

static bool row_matches(const struct job_filter *flt, const char *id,
                        const char *state, const char *type)
{
    if (flt->state != NULL && strcmp(state, flt->state) != 0)
        return false;
    if (flt->search != NULL &&
        strncmp(id, flt->search, strlen(flt->search)) != 0 &&
        (type == NULL || strcmp(type, flt->search) != 0))
        return false;
    return true;
}

/* Reads ids [start, start+count) of queue q's job index, newest first,
 * with their fields, and appends those that exist and match flt.
 * Sets *got to the number of ids read and *matched to the rows added. */
static int read_page(struct llmb_admin *a, const char *q,
                     const struct job_filter *flt, long long start,
                     long long count, struct job_rows *rows, size_t *got,
                     size_t *matched, char **errstr)
{
    char *key = llmb_key_queue_sub(a->prefix, q, "jl");
    char *base = llmb_key_queue(a->prefix, q);
    redisReply *r = NULL;
    struct llmb_batch b;
    int rc;

    *got = *matched = 0;
    llmb_batch_init(&b);
    /* the newest first: from the tail, start from its end */
    r = llmb_cluster_command(a->conn, "LRANGE %s %lld %lld", key,
                          -(start + count), -(start + 1));
    rc = llmb_reply_check_array(r, a->conn, key, "list", errstr);
    if (rc != 0)
        goto out;
    *got = r->elements;
    for (size_t i = 0; i < *got / 2; i++) {
        redisReply *t = r->element[i];
        r->element[i] = r->element[*got - 1 - i];
        r->element[*got - 1 - i] = t;
    }
    for (size_t i = 0; i < *got; i++) {
        struct llmb_strlist cmd = {0};
        const char *id = llmb_reply_str(r->element[i]);
        llmb_job_read_cmd(&cmd, base, id ? id : "");
        for (size_t f = 0; f < F_COUNT; f++)
            llmb_strlist_push(&cmd, field_names[f]);
        llmb_batch_add_list(&b, &cmd);
        llmb_strlist_clear(&cmd);
    }
    rc = llmb_batch_run(&b, a->conn, errstr);
    if (rc != 0)
        goto out;
    rows->v = llmb_xrealloc(rows->v, (rows->n + *got) * sizeof(*rows->v));
    for (size_t i = 0; i < *got; i++) {
        const redisReply *h = b.replies[i];
        const char *state, *created;
        struct job_row *row;

        /* A job that is gone (deleted by hand, or expired under an
         * older library) is indexed until the coordinator trims it: skip it. */
        if (h->type != REDIS_REPLY_ARRAY || h->elements != F_COUNT)
            continue;
        state = llmb_reply_str(h->element[F_STATE]);
        if (state == NULL ||
            !row_matches(flt, llmb_reply_str(r->element[i]) ?
                              llmb_reply_str(r->element[i]) : "",
                         state, llmb_reply_str(h->element[F_TYPE])))
            continue;
        row = &rows->v[rows->n++];
        memset(row, 0, sizeof(*row));
        row->id = llmb_xstrdup(llmb_reply_str(r->element[i]));
        row->queue = llmb_xstrdup(q);
        created = llmb_reply_str(h->element[F_CREATED]);
        row->created = created ? (long long)strtod(created, NULL) : 0;
        for (size_t f = 0; f < F_COUNT; f++) {
            const char *v = llmb_reply_str(h->element[f]);
            row->f[f] = v ? llmb_xstrdup(v) : NULL;
        }
        (*matched)++;
    }

out:
    llmb_batch_fini(&b);
    if (r != NULL)
        freeReplyObject(r);
    free(key);
    free(base);
    return rc;
}

/* Appends up to --limit newest matching jobs of queue q to rows. */
static int read_queue(struct llmb_admin *a, const char *q,
                      struct job_rows *rows, char **errstr)
{
    struct job_filter flt = {a->cfg->state, NULL};
    long long limit = a->cfg->limit;
    long long page = a->cfg->state ? 1000 : limit;
    long long start = 0, found = 0;

    while (found < limit) {
        size_t got = 0, matched = 0;
        int rc;

        if (start >= LLMB_ADMIN_SCAN_MAX) {
            rows->truncated = true;
            break;
        }
        rc = read_page(a, q, &flt, start, page, rows, &got, &matched,
                       errstr);
        if (rc != 0)
            return rc;
        found += (long long)matched;
        start += (long long)got;
        if ((long long)got < page)
            break;
        /* Expired jobs left gaps: read on in pages of at least 100. */
        if (page < 100)
            page = 100;
    }
    return 0;
}

static json_t *row_json(const struct job_row *r)
{
    json_t *o = json_object();
    long long tasks = 0, left = 0;

    json_object_set_new(o, "id", llmb_json_str(r->id));
    json_object_set_new(o, "queue", llmb_json_str(r->queue));
    json_object_set_new(o, "type", llmb_json_str(r->f[F_TYPE]));
    json_object_set_new(o, "state", llmb_json_str(r->f[F_STATE]));
    json_object_set_new(o, "priority", llmb_json_int_or_null(r->f[F_PRIORITY]));
    json_object_set_new(o, "tasks", llmb_json_int_or_null(r->f[F_TASKS]));
    if (r->f[F_TASKS] && r->f[F_LEFT]) {
        tasks = strtoll(r->f[F_TASKS], NULL, 10);
        left = strtoll(r->f[F_LEFT], NULL, 10);
        json_object_set_new(o, "done", json_integer(tasks - left));
    } else {
        json_object_set_new(o, "done", json_null());
    }
    json_object_set_new(o, "ok", llmb_json_int_or_null(r->f[F_OK]));
    json_object_set_new(o, "failed", json_integer(
        r->f[F_FAILED] ? strtoll(r->f[F_FAILED], NULL, 10) : 0));
    json_object_set_new(o, "cancelled", json_integer(
        r->f[F_CANCELLED] ? strtoll(r->f[F_CANCELLED], NULL, 10) : 0));
    json_object_set_new(o, "created_ms", json_integer(r->created));
    json_object_set_new(o, "started_ms", llmb_json_int_or_null(r->f[F_STARTED]));
    json_object_set_new(o, "finished_ms",
                        llmb_json_int_or_null(r->f[F_FINISHED]));
    json_object_set_new(o, "error", llmb_json_str(r->f[F_ERROR]));
    return o;
}

static long long field_ll(const char *s)
{
    return s ? strtoll(s, NULL, 10) : 0;
}

/* How the ended tasks of job r ended, "12 ok, 18 cancelled", zeros left
 * out; "none" before any ended. ok is the job's field once it has ended,
 * else what ended neither failed nor cancelled. Writes into buf of n. */
static const char *ended_text(const struct job_row *r, char *buf, size_t n)
{
    long long done = field_ll(r->f[F_TASKS]) - field_ll(r->f[F_LEFT]);
    long long failed = field_ll(r->f[F_FAILED]);
    long long cancelled = field_ll(r->f[F_CANCELLED]);
    long long ok = r->f[F_OK] ? field_ll(r->f[F_OK]) : done - failed - cancelled;
    size_t off = 0;

    buf[0] = '\0';
    if (ok > 0)
        off += (size_t)snprintf(buf, n, "%lld ok", ok);
    if (failed > 0 && off < n)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld failed",
                                off ? ", " : "", failed);
    if (cancelled > 0 && off < n)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld cancelled",
                                off ? ", " : "", cancelled);
    if (off == 0)
        snprintf(buf, n, "none");
    return buf;
}

static void print_table(struct llmb_admin *a, const struct job_rows *rows,
                        int64_t now)
{
    struct llmb_table *t = llmb_table_new();
    char ago[LLMB_HUMAN_LEN], took[LLMB_HUMAN_LEN], ended[96];

    llmb_table_column(t, "ID", false);
    llmb_table_column(t, "QUEUE", false);
    llmb_table_column(t, "TYPE", false);
    llmb_table_column(t, "STATE", false);
    llmb_table_column(t, "TASKS", true);
    llmb_table_column(t, "TASKS ENDED", false);
    llmb_table_column(t, "CREATED", true);
    llmb_table_column(t, "TOOK", true);
    llmb_table_column(t, "ERROR", false);
    for (size_t i = 0; i < rows->n; i++) {
        const struct job_row *r = &rows->v[i];
        long long tasks = field_ll(r->f[F_TASKS]);
        long long started = field_ll(r->f[F_STARTED]);
        long long finished = field_ll(r->f[F_FINISHED]);
        char *err = llmb_output_oneline(r->f[F_ERROR], 60);

        llmb_table_cell(t, r->id);
        llmb_table_cell(t, r->queue);
        llmb_table_cell(t, r->f[F_TYPE]);
        llmb_table_cell(t, r->f[F_STATE]);
        llmb_table_cellf(t, "%lld", tasks);
        llmb_table_cell(t, ended_text(r, ended, sizeof(ended)));
        llmb_table_cell(t, llmb_human_ago(now, r->created, ago));
        if (started <= 0)
            llmb_table_cell(t, NULL);
        else
            llmb_table_cell(t, llmb_human_duration(
                                   (finished > 0 ? finished : now) - started,
                                   took));
        llmb_table_cell(t, err);
        free(err);
    }
    llmb_table_print(t, a->out);
    llmb_table_free(t);
}

/* Reads the newest jobs of --queue or of every known queue, --state
 * only, at most --limit, into *rows, sorted newest first. */
static int jobs_fetch(struct llmb_admin *a, struct job_rows *rows,
                      int64_t *now, char **errstr)
{
    struct llmb_strlist names = {0};
    int rc;

    memset(rows, 0, sizeof(*rows));
    rc = llmb_lookup_queues(a, &names, errstr);
    if (rc == 0)
        rc = llmb_lookup_now(a, now, errstr);
    for (size_t i = 0; rc == 0 && i < names.n; i++)
        rc = read_queue(a, names.v[i], rows, errstr);
    llmb_strlist_clear(&names);
    if (rc != 0)
        return rc;
    if (rows->n > 1)
        qsort(rows->v, rows->n, sizeof(*rows->v), cmp_row);
    while (rows->n > (size_t)a->cfg->limit) {
        struct job_row *r = &rows->v[--rows->n];
        free(r->id);
        free(r->queue);
        for (size_t f = 0; f < F_COUNT; f++)
            free(r->f[f]);
    }
    return 0;
}

static json_t *rows_json(const struct job_rows *rows, size_t from, size_t n)
{
    json_t *arr = json_array();

    for (size_t i = from; i < from + n && i < rows->n; i++)
        json_array_append_new(arr, row_json(&rows->v[i]));
    return arr;
}

/* The document of `jobs --json`. */
static json_t *jobs_json(struct llmb_admin *a, const struct job_rows *rows,
                         int64_t now)
{
    json_t *doc = json_object();

    json_object_set_new(doc, "now_ms", json_integer(now));
    json_object_set_new(doc, "jobs", rows_json(rows, 0, rows->n));
    json_object_set_new(doc, "limit", json_integer(a->cfg->limit));
    json_object_set_new(doc, "truncated", json_boolean(rows->truncated));
    return doc;
}

int llmb_view_jobs(struct llmb_admin *a, json_t **doc, char **errstr)
{
    struct job_rows rows;
    int64_t now = 0;
    int rc = jobs_fetch(a, &rows, &now, errstr);

    *doc = rc == 0 ? jobs_json(a, &rows, now) : NULL;
    rows_free(&rows);
    return rc;
}

int llmb_view_queue_jobs(struct llmb_admin *a, const char *queue,
                         const char *state, const char *search,
                         long long limit, long long offset, json_t **doc,
                         char **errstr)
{
    struct job_filter flt = {state, search};
    struct job_rows rows;
    char *key = llmb_key_queue_sub(a->prefix, queue, "jl");
    long long total = -1, next = -1;
    redisReply *r = NULL;
    int64_t now = 0;
    int rc;

    *doc = NULL;
    memset(&rows, 0, sizeof(rows));
    rc = llmb_lookup_now(a, &now, errstr);
    if (rc != 0)
        goto out;
    if (state == NULL && search == NULL) {
        size_t got = 0, matched = 0;
        /* the index counts them all; a page is one range of it */
        r = llmb_cluster_command(a->conn, "LLEN %s", key);
        rc = llmb_reply_check(r, a->conn, errstr);
        if (rc != 0)
            goto out;
        total = llmb_reply_ll_or(r, 0);
        if (offset < total)
            rc = read_page(a, queue, &flt, offset, limit, &rows, &got,
                           &matched, errstr);
        if (offset + limit < total)
            next = offset + limit;
    } else {
        /* Matches are counted from the newest job on, a thousand ids per
         * round trip, until one more than this page needs is found. */
        long long start = 0;
        for (;;) {
            size_t got = 0, matched = 0;
            if (start >= LLMB_ADMIN_SCAN_MAX) {
                rows.truncated = true;
                break;
            }
            rc = read_page(a, queue, &flt, start, 1000, &rows, &got,
                           &matched, errstr);
            if (rc != 0)
                goto out;
            start += (long long)got;
            if ((long long)rows.n > offset + limit) {
                next = offset + limit;
                break;
            }
            if (got < 1000) {
                total = (long long)rows.n;
                break;
            }
        }
    }
    if (rc != 0)
        goto out;
    *doc = json_object();
    json_object_set_new(*doc, "jobs",
                        state == NULL && search == NULL
                            ? rows_json(&rows, 0, rows.n)
                            : rows_json(&rows, (size_t)offset,
                                        (size_t)limit));
    json_object_set_new(*doc, "total",
                        total >= 0 ? json_integer(total) : json_null());
    json_object_set_new(*doc, "next_offset",
                        next >= 0 ? json_integer(next) : json_null());
    json_object_set_new(*doc, "truncated", json_boolean(rows.truncated));
    json_object_set_new(*doc, "now_ms", json_integer(now));

out:
    if (r != NULL)
        freeReplyObject(r);
    rows_free(&rows);
    free(key);
    return rc;
}

int llmb_jobs_run(struct llmb_admin *a, char **errstr)
{
    struct job_rows rows;
    int64_t now = 0;
    int rc;

    rc = jobs_fetch(a, &rows, &now, errstr);
    if (rc != 0)
        goto out;

    if (a->cfg->json) {
        llmb_output_json(a, jobs_json(a, &rows, now));
    } else {
        if (rows.n == 0)
            fprintf(a->out, "no jobs%s%s\n", a->cfg->state ? " in state " : "",
                    a->cfg->state ? a->cfg->state : "");
        else
            print_table(a, &rows, now);
        if (rows.truncated)
            fprintf(stderr, "llmb: note: read the newest %d jobs of a queue "
                            "only; older ones were not searched\n",
                    LLMB_ADMIN_SCAN_MAX);
    }

out:
    rows_free(&rows);
    return rc;
}
