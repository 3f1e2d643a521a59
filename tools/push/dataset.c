/*
 * llmb-push --dataset FILE (docs/llm.md, "Workloads"): a JSONL file of
 * prompts or conversations goes to Redis once, with its job. The file is
 * read and every line checked and turned into the entry llmb keeps
 * (llmb_llm_dataset_entry) before anything is sent, so a bad file stores
 * nothing; the payload gets "dataset": {"entries": N}; then, with the
 * job's id known, the entries go up with FCALL llmb_dataset in calls of
 * at most LLMB_LLM_DATASET_CALL_MAX lines and CALL_BYTES bytes, and the
 * push (single.c) moves them under the job.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <llmb/conn.h>
#include <llmb/keys.h>
#include <llmb/llmfields.h>
#include <llmb/llmworkload.h>

#include "push.h"

#define CALL_BYTES (4L * 1024 * 1024) /* entries' bytes per call */

void push_dataset_fini(struct push_dataset *ds)
{
    free(ds->buf.data);
    free(ds->lens);
    memset(ds, 0, sizeof(*ds));
}

/* Adds the entry of line `no` (text, len bytes) to ds. */
static int add_line(struct push_dataset *ds, const char *path, long no,
                    const char *text, size_t len, char **errstr)
{
    char *err = NULL;
    size_t elen = 0;
    char *e = llmb_llm_dataset_entry(text, len, &elen, &err);

    if (e == NULL) {
        *errstr = llmb_xasprintf("--dataset %s: line %ld: %s", path, no, err);
        free(err);
        return -1;
    }
    if (ds->n == LLMB_LLM_DATASET_MAX_ENTRIES) {
        *errstr = llmb_xasprintf("--dataset %s: more than %d entries; the "
                                 "limit is %d", path,
                                 LLMB_LLM_DATASET_MAX_ENTRIES,
                                 LLMB_LLM_DATASET_MAX_ENTRIES);
    } else if (ds->buf.len + elen > (size_t)LLMB_LLM_DATASET_MAX_BYTES) {
        *errstr = llmb_xasprintf("--dataset %s: more than %ld bytes of "
                                 "entries (at line %ld); the limit is %ld",
                                 path, LLMB_LLM_DATASET_MAX_BYTES, no,
                                 LLMB_LLM_DATASET_MAX_BYTES);
    } else {
        if (ds->n == ds->cap) {
            ds->cap = ds->cap ? ds->cap * 2 : 1024;
            ds->lens = llmb_xrealloc(ds->lens, ds->cap * sizeof(*ds->lens));
        }
        ds->lens[ds->n++] = elen;
        llmb_buf_append(&ds->buf, e, elen);
        free(e);
        return 0;
    }
    free(e);
    return -1;
}

int push_dataset_read(struct push_dataset *ds, const char *path,
                      char **errstr)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long no = 0;
    int rc = 0;

    memset(ds, 0, sizeof(*ds));
    llmb_buf_init(&ds->buf);
    if (f == NULL) {
        *errstr = llmb_xasprintf("--dataset %s: %s", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && (got = getline(&line, &cap, f)) >= 0) {
        size_t len = (size_t)got;
        no++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (strspn(line, " \t") == len)
            continue; /* blank lines are skipped */
        if (len > (size_t)LLMB_LLM_DATASET_MAX_BYTES) {
            *errstr = llmb_xasprintf("--dataset %s: line %ld is %zu bytes; "
                                     "the limit is %ld", path, no, len,
                                     LLMB_LLM_DATASET_MAX_BYTES);
            rc = -1;
        } else {
            rc = add_line(ds, path, no, line, len, errstr);
        }
    }
    if (rc == 0 && ferror(f)) {
        *errstr = llmb_xasprintf("--dataset %s: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc == 0 && ds->n == 0) {
        *errstr = llmb_xasprintf("--dataset %s: no entries (the file is "
                                 "empty or blank)", path);
        rc = -1;
    }
    free(line);
    fclose(f);
    if (rc != 0)
        push_dataset_fini(ds);
    return rc;
}

char *push_dataset_payload(const char *type, const char *payload,
                           const char *tasks, long n, char **errstr)
{
    json_error_t jerr;
    json_t *o = NULL, *d;
    char *out = NULL;

    if (!llmb_llm_type(type)) {
        *errstr = llmb_xasprintf("--dataset is for jobs of type llm or "
                                 "benchmark, not \"%s\"", type);
        return NULL;
    }
    if (tasks != NULL && strtol(tasks, NULL, 10) > n) {
        *errstr = llmb_xasprintf("--dataset: a dataset of %ld entries cannot "
                                 "feed %s tasks: each task takes at least "
                                 "one entry", n, tasks);
        return NULL;
    }
    o = payload != NULL ? json_loads(payload, 0, &jerr) : json_object();
    if (!json_is_object(o)) {
        *errstr = llmb_xstrdup("--dataset needs a payload that is a JSON "
                               "object");
        goto out;
    }
    d = json_object_get(o, "dataset");
    if (d == NULL) {
        json_object_set_new(o, "dataset", json_object());
        d = json_object_get(o, "dataset");
    }
    if (!json_is_object(d)) {
        *errstr = llmb_xstrdup("--dataset: the payload's \"dataset\" must be "
                               "an object of options, or absent");
        goto out;
    }
    if (json_object_get(d, "entries") != NULL &&
        json_integer_value(json_object_get(d, "entries")) != n) {
        *errstr = llmb_xasprintf("--dataset: the payload's dataset.entries "
                                 "differs from the %ld entries of the file; "
                                 "leave it out", n);
        goto out;
    }
    json_object_set_new(d, "entries", json_integer(n));
    out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
    json_decref(o);
    return out;
}

int push_dataset_upload(const struct push_dataset *ds, struct llmb_conn *conn,
                        const char *base, const char *id, bool *exists,
                        char **errstr)
{
    const char **argv = llmb_xcalloc(6 + LLMB_LLM_DATASET_CALL_MAX,
                                     sizeof(*argv));
    size_t *argl = llmb_xcalloc(6 + LLMB_LLM_DATASET_CALL_MAX, sizeof(*argl));
    const char *p = ds->buf.data;
    size_t i = 0;
    int rc = 0;

    *exists = false;
    while (i < ds->n && rc == 0 && !*exists) {
        char first[24];
        size_t k = 0, bytes = 0;
        redisReply *r;
        snprintf(first, sizeof(first), "%zu", i);
        argv[0] = "FCALL";
        argv[1] = "llmb_dataset";
        argv[2] = "1";
        argv[3] = base;
        argv[4] = id;
        argv[5] = first;
        for (int a = 0; a < 6; a++)
            argl[a] = strlen(argv[a]);
        while (i + k < ds->n && k < LLMB_LLM_DATASET_CALL_MAX &&
               (k == 0 || bytes + ds->lens[i + k] <= (size_t)CALL_BYTES)) {
            argv[6 + k] = p;
            argl[6 + k] = ds->lens[i + k];
            bytes += ds->lens[i + k];
            p += ds->lens[i + k];
            k++;
        }
        r = llmb_conn_commandargv(conn, (int)(6 + k), argv, argl);
        if (r == NULL) {
            *errstr = llmb_xasprintf("storing the dataset: %s",
                                     llmb_conn_errstr(conn));
            rc = -1;
        } else if (r->type == REDIS_REPLY_ERROR) {
            *errstr = llmb_xasprintf("storing the dataset: %s",
                                     strncmp(r->str, "ERR ", 4) == 0 ?
                                     r->str + 4 : r->str);
            rc = -1;
        } else if (r->type == REDIS_REPLY_INTEGER && r->integer == -1) {
            *exists = true; /* the job is there, with its dataset */
        } else if (r->type != REDIS_REPLY_INTEGER ||
                   r->integer != (long long)(i + k)) {
            *errstr = llmb_xstrdup("storing the dataset: llmb_dataset "
                                   "answered an unexpected count");
            rc = -1;
        }
        if (r != NULL)
            freeReplyObject(r);
        i += k;
    }
    free(argv);
    free(argl);
    return rc;
}
