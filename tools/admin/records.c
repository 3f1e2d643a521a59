/*
 * Reading a job's per-request records (docs/llm.md "Records") for
 * `llmb export`: the list <base>:rec:<id> is read a page of chunks at a
 * time, and of each page only the chunks of the claim that <base>:rs:<id>
 * names for their task are kept (lua/75-records.lua): the records of an
 * attempt that failed and was retried are skipped, so every request
 * appears once. Memory stays bounded by a page, whatever the job's size.
 */
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/keys.h>

#include "admin.h"

/* List elements read per round trip. A chunk is at most 64 KiB, so a page
 * holds at most about 6.4 MB. */
#define PAGE_CHUNKS 100

/* Splits s at tabs into at most max fields, in place; returns how many. */
static size_t split_tabs(char *s, char **f, size_t max)
{
    size_t n = 0;

    f[n++] = s;
    for (char *p = s; *p != '\0' && n < max; p++)
        if (*p == '\t') {
            *p = '\0';
            f[n++] = p + 1;
        }
    return n;
}

/* Calls fn for each record line of one chunk element. Returns 0, fn's
 * non-zero value, or LLMB_EPROTO for an element that is not a chunk. */
static int chunk_each(char *elem, const char *job, llmb_record_fn fn,
                      void *ctx)
{
    struct llmb_record rec;
    char *head[8], *line, *next;
    char *nl = strchr(elem, '\n');
    int rc;

    if (nl == NULL)
        return LLMB_EPROTO;
    *nl = '\0';
    /* "<index>\t<claim>\t<worker>\t<attempt>\t<seq>\t<endpoint>\t<model>\t
     * <start ms>" */
    if (split_tabs(elem, head, 8) != 8)
        return LLMB_EPROTO;
    memset(&rec, 0, sizeof(rec));
    rec.job = job;
    rec.task = head[0];
    rec.claim = head[1];
    rec.worker = head[2];
    rec.attempt = head[3];
    rec.endpoint = head[5];
    rec.model = head[6];
    rec.task_start_ms = head[7];
    for (line = nl + 1; *line != '\0'; line = next) {
        char *end = strchr(line, '\n');
        size_t n;

        next = end != NULL ? end + 1 : line + strlen(line);
        if (end != NULL)
            *end = '\0';
        if (*line == '\0')
            continue;
        n = split_tabs(line, rec.col, LLMB_RECORD_COLS);
        for (size_t i = n; i < LLMB_RECORD_COLS; i++)
            rec.col[i] = "";
        rc = fn(&rec, ctx);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The task index of an element: its text up to the first tab. */
static char *elem_task(const char *elem)
{
    return llmb_xstrndup(elem, strcspn(elem, "\t"));
}

int llmb_records_each(struct llmb_admin *a, const char *queue,
                      const char *id, llmb_record_fn fn, void *ctx,
                      long long *dropped, char **errstr)
{
    char *sub_rec = llmb_xasprintf("rec:%s", id);
    char *sub_rs = llmb_xasprintf("rs:%s", id);
    char *rec_key = llmb_key_queue_sub(a->prefix, queue, sub_rec);
    char *rs_key = llmb_key_queue_sub(a->prefix, queue, sub_rs);
    redisReply *page = NULL, *cur = NULL;
    long long start = 0;
    int rc;

    cur = llmb_cluster_command(a->conn, "HGET %s dropped", rs_key);
    rc = llmb_reply_check(cur, a->conn, errstr);
    if (rc != 0)
        goto out;
    if (dropped != NULL)
        *dropped = llmb_reply_ll_or(cur, 0);
    freeReplyObject(cur);
    cur = NULL;

    for (;;) {
        struct llmb_strlist cmd = {0};

        page = llmb_cluster_command(a->conn, "LRANGE %s %lld %lld", rec_key,
                                 start, start + PAGE_CHUNKS - 1);
        rc = llmb_reply_check_array(page, a->conn, rec_key, "list", errstr);
        if (rc != 0)
            goto out;
        if (page->elements == 0)
            break;
        /* The current claim of each chunk's task, in one HMGET. */
        llmb_strlist_push(&cmd, "HMGET");
        llmb_strlist_push(&cmd, rs_key);
        for (size_t i = 0; i < page->elements; i++) {
            const char *e = llmb_reply_str(page->element[i]);
            char *t = elem_task(e != NULL ? e : "");
            llmb_strlist_push(&cmd, t);
            free(t);
        }
        cur = llmb_cluster_commandargv(a->conn, (int)cmd.n,
                                    (const char **)cmd.v, NULL);
        llmb_strlist_clear(&cmd);
        rc = llmb_reply_check(cur, a->conn, errstr);
        if (rc != 0)
            goto out;
        if (cur->type != REDIS_REPLY_ARRAY ||
            cur->elements != page->elements) {
            *errstr = llmb_xasprintf("%s is not a hash", rs_key);
            rc = LLMB_EREDIS;
            goto out;
        }
        for (size_t i = 0; i < page->elements; i++) {
            const char *e = llmb_reply_str(page->element[i]);
            const char *c = llmb_reply_str(cur->element[i]);
            const char *claim, *colon;

            if (e == NULL || c == NULL)
                continue; /* not a chunk, or a task with no claim */
            claim = e + strcspn(e, "\t");
            colon = strchr(c, ':');
            if (*claim == '\0' || colon == NULL)
                continue;
            claim++;
            /* Keep the chunk when its claim is the one B:rs:<id> names. */
            if (strncmp(claim, c, (size_t)(colon - c)) != 0 ||
                claim[colon - c] != '\t')
                continue;
            rc = chunk_each(page->element[i]->str, id, fn, ctx);
            if (rc == LLMB_EPROTO) {
                *errstr = llmb_xasprintf("element %lld of %s is not a "
                                         "record chunk", start + (long long)i,
                                         rec_key);
                goto out;
            }
            if (rc != 0)
                goto out;
        }
        start += (long long)page->elements;
        freeReplyObject(cur);
        cur = NULL;
        freeReplyObject(page);
        page = NULL;
    }

out:
    if (page != NULL)
        freeReplyObject(page);
    if (cur != NULL)
        freeReplyObject(cur);
    free(rs_key);
    free(rec_key);
    free(sub_rs);
    free(sub_rec);
    return rc;
}
