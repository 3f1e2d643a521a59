/*
 * One job from the command line: the document is built from the flags
 * (checked before any round trip), taken apart into the values of
 * llmb_push_fields as --batch does (Redis then parses no JSON), given an
 * id from the run's journal unless --id names one (journal.c: the same
 * command after a run that got no answer reuses that run's id), pushed in
 * one pipelined round trip together with the queue's registration (on a
 * cluster main.c registers it first, through the router), and its id
 * printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <hiredis/hiredis.h>

#include <llmb/functions.h>
#include <llmb/job.h>
#include <llmb/keys.h>
#include <llmb/log.h>

#include "push.h"

/* Reads all of stdin into a new string; NULL on a read error. */
static char *read_stdin(void)
{
    struct llmb_buf b;

    llmb_buf_init(&b);
    if (llmb_buf_append_file(&b, stdin) != 0) {
        llmb_buf_fini(&b);
        return NULL;
    }
    return llmb_buf_steal(&b);
}

/* Sends FCALL llmb_push_fields with the values vals (lens), and unless
 * the queue is registered already SADD <prefix>:queues, in one round
 * trip. Returns PUSH_CONFIRMED with the id
 * Redis answered in *id_out (caller frees); PUSH_ERROR with the refusal
 * in *err_out (caller frees) and the exit code in *rc; or PUSH_UNKNOWN
 * when no answer came (the reason said on stderr). */
static enum push_status send_one(const struct push_config *cfg,
                                 struct llmb_conn *conn, const char *queue,
                                 const struct llmb_buf *vals,
                                 const size_t lens[LLMB_PUSH_NFIELDS],
                                 bool registered, char **id_out,
                                 char **err_out, int *rc)
{
    char *base = llmb_key_queue(cfg->common.prefix, queue);
    char *queues = llmb_key_global(cfg->common.prefix, "queues");
    const char *sargv[] = {"SADD", queues, queue};
    const char *fargv[4 + LLMB_PUSH_NFIELDS];
    size_t flen[4 + LLMB_PUSH_NFIELDS];
    redisReply *r = NULL;
    const redisReply *e;
    enum push_status st = PUSH_UNKNOWN;
    int fargc = push_fields_argv(base, vals->data, lens, 1, fargv, flen);

    *id_out = NULL;
    *err_out = NULL;
    if ((!registered && llmb_conn_append_argv(conn, 3, sargv, NULL) != 0) ||
        llmb_conn_append_argv(conn, fargc, fargv, flen) != 0)
        goto lost;
    if (!registered) {
        r = llmb_conn_get_reply(conn);
        if (r == NULL)
            goto lost;
        freeReplyObject(r);
    }
    r = llmb_conn_get_reply(conn);
    if (r == NULL)
        goto lost;
    /* an error for the whole call, or an array of one id or error */
    e = r->type == REDIS_REPLY_ARRAY && r->elements == 1 ? r->element[0] : r;
    if (e->type == REDIS_REPLY_ERROR && e == r &&
        push_reply_unavailable(e->str)) {
        fprintf(stderr, "llmb-push: redis answered: %s\n", e->str);
    } else if (e->type == REDIS_REPLY_ERROR) {
        *err_out = llmb_xstrdup(e->str);
        *rc = llmb_reply_function_missing(e) ? EX_UNAVAILABLE
                                                   : PUSH_EXIT_REJECTED;
        st = PUSH_ERROR;
    } else if (e->type == REDIS_REPLY_STRING) {
        *id_out = llmb_xstrndup(e->str, e->len);
        st = PUSH_CONFIRMED;
    } else {
        char what[96];
        *err_out = llmb_xasprintf("unexpected reply from llmb_push_fields: "
                                  "%s", llmb_reply_describe(e, what,
                                                            sizeof(what)));
        *rc = EX_PROTOCOL;
        st = PUSH_ERROR;
    }
    freeReplyObject(r);
    goto out;
lost:
    fprintf(stderr, "llmb-push: %s\n", llmb_conn_errstr(conn));
out:
    free(base);
    free(queues);
    return st;
}

int push_single(const struct push_config *cfg, struct llmb_conn *conn,
                struct llmb_cluster *cl, const struct llmb_strlist *args)
{
    bool registered = llmb_cluster_enabled(cl);
    struct llmb_job_args ja;
    struct llmb_buf doc, vals;
    struct push_journal journal;
    struct push_tally t;
    struct llmb_sha256 h;
    size_t lens[LLMB_PUSH_NFIELDS];
    char docq[LLMB_QUEUE_NAME_MAX + 1];
    char hex[LLMB_SHA256_HEX + 1];
    char *payload_in = NULL;
    char *errstr = NULL;
    char *id = NULL;      /* as Redis answered it */
    char *id_sent = NULL; /* as sent */
    char *mark = NULL;
    bool journal_open = false;
    struct push_dataset ds = {0};
    char *ds_payload = NULL;
    enum push_status st;
    int rc;

    if (args->n < 1 || args->n > 2) {
        fprintf(stderr, "llmb-push: expected TYPE [PAYLOAD_JSON]; see "
                        "llmb-push --help\n");
        return EX_USAGE;
    }
    memset(&ja, 0, sizeof(ja));
    memset(&t, 0, sizeof(t));
    ja.type = args->v[0];
    if (args->n == 2) {
        if (strcmp(args->v[1], "-") == 0) {
            payload_in = read_stdin();
            if (payload_in == NULL) {
                fprintf(stderr, "llmb-push: cannot read the payload from "
                                "stdin\n");
                return EX_IOERR;
            }
            ja.payload = payload_in;
        } else {
            ja.payload = args->v[1];
        }
    }
    ja.queue = cfg->queue;
    ja.priority = cfg->priority;
    ja.tasks = cfg->tasks;
    ja.timeout_s = cfg->timeout;
    ja.max_retries = cfg->retries;
    ja.delay_s = cfg->delay;
    ja.id = cfg->id;
    ja.backoff_ms = cfg->backoff_ms;
    ja.deadline_s = cfg->deadline;
    if (cfg->dataset != NULL) {
        /* every line checked before anything is sent (dataset.c) */
        if (push_dataset_read(&ds, cfg->dataset, &errstr) != 0 ||
            (ds_payload = push_dataset_payload(ja.type, ja.payload,
                                               cfg->tasks, (long)ds.n,
                                               &errstr)) == NULL) {
            fprintf(stderr, "llmb-push: %s\n", errstr);
            free(errstr);
            push_dataset_fini(&ds);
            free(payload_in);
            return PUSH_EXIT_REJECTED;
        }
        ja.payload = ds_payload;
    }

    llmb_buf_init(&doc);
    llmb_buf_init(&vals);
    if (llmb_job_doc_build(&ja, &doc, &errstr) != 0) {
        fprintf(stderr, "llmb-push: %s\n", errstr);
        free(errstr);
        rc = EX_USAGE;
        goto out;
    }
    if (llmb_job_fields_append(doc.data, doc.len, &vals, lens, docq,
                               &errstr) != 0) {
        /* what the flags could not check, such as a payload nested
         * deeper than the server decodes: refused as llmb_push would */
        push_status_print(cfg, &t, 0, NULL, cfg->queue, PUSH_ERROR, errstr,
                          false);
        free(errstr);
        rc = PUSH_EXIT_REJECTED;
        goto out;
    }
    /* The journal of the same document, flags and server: its nonce
     * gives the job the id an unfinished run gave it. */
    llmb_sha256_init(&h);
    llmb_sha256_update(&h, doc.data, doc.len);
    llmb_sha256_final(&h, hex);
    push_journal_open(&journal, cfg, "single", cfg->queue, hex, doc.len,
                      "the command line");
    journal_open = true;
    if (lens[LLMB_PUSH_F_ID] == 0) {
        char minted[PUSH_ID_MAX];
        struct llmb_buf with_id;
        push_id_mint(&journal, 1, minted);
        llmb_buf_init(&with_id);
        llmb_buf_append(&with_id, minted, strlen(minted));
        llmb_buf_append(&with_id, vals.data, vals.len);
        lens[LLMB_PUSH_F_ID] = strlen(minted);
        llmb_buf_fini(&vals);
        vals = with_id;
        id_sent = llmb_xstrdup(minted);
    } else {
        id_sent = llmb_xstrndup(vals.data, lens[LLMB_PUSH_F_ID]);
    }
    if (cfg->wait &&
        (rc = push_wait_mark(cfg, conn, cfg->queue, &mark)) != 0) {
        /* nothing was pushed */
        push_journal_close(&journal, &t);
        journal_open = false;
        goto out;
    }
    if (cfg->dataset != NULL) {
        char *base = llmb_key_queue(cfg->common.prefix, cfg->queue);
        bool exists = false;
        int up = push_dataset_upload(&ds, conn, base, id_sent, &exists,
                                     &errstr);
        free(base);
        if (up != 0) {
            /* no job pushed; an upload left halfway expires in an hour */
            fprintf(stderr, "llmb-push: %s\n", errstr);
            free(errstr);
            push_journal_close(&journal, &t);
            journal_open = false;
            rc = EX_UNAVAILABLE;
            goto out;
        }
    }
    rc = 0;
    st = send_one(cfg, conn, cfg->queue, &vals, lens, registered, &id,
                  &errstr, &rc);
    push_status_print(cfg, &t, 0, st == PUSH_CONFIRMED ? id : id_sent,
                      cfg->queue, st, errstr, cfg->wait && st == PUSH_CONFIRMED);
    free(errstr);
    push_tally_report(&t, true, push_journal_kept(&journal));
    push_journal_close(&journal, &t);
    journal_open = false;
    if (st == PUSH_UNKNOWN)
        rc = EX_UNAVAILABLE;
    if (st == PUSH_CONFIRMED)
        push_served_warn(cfg, conn, cfg->queue, ja.type);
    if (st == PUSH_CONFIRMED && cfg->wait) {
        fprintf(stderr, "llmb-push: job %s pushed to queue %s\n", id,
                cfg->queue);
        rc = push_wait(cfg, cl, cfg->queue, id, mark);
        mark = NULL;
    }
out:
    if (journal_open)
        push_journal_close(&journal, &t);
    push_tally_fini(&t);
    free(mark);
    free(id);
    free(id_sent);
    free(payload_in);
    free(ds_payload);
    push_dataset_fini(&ds);
    llmb_buf_fini(&vals);
    llmb_buf_fini(&doc);
    return rc;
}
