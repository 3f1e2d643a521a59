/*
 * One job from the command line: the document is built from the flags
 * (checked before any round trip), taken apart into the values of
 * llmb_push_fields as --batch does (Redis then parses no JSON), pushed in
 * one pipelined round trip together with the queue's registration, and
 * its id printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <hiredis/hiredis.h>

#include <llmb/job.h>
#include <llmb/keys.h>
#include <llmb/log.h>

#include "push.h"

/* Reads all of stdin into a new string; NULL on a read error. */
static char *read_stdin(void)
{
    struct llmb_buf b;
    char chunk[65536];
    size_t n;

    llmb_buf_init(&b);
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
        llmb_buf_append(&b, chunk, n);
    if (ferror(stdin)) {
        llmb_buf_fini(&b);
        return NULL;
    }
    return llmb_buf_steal(&b);
}

/* Sends FCALL llmb_push_fields with the values of doc and SADD
 * <prefix>:queues in one round trip. On success *id_out gets the job id
 * (caller frees). Returns an exit code. */
static int send_one(const struct push_config *cfg, struct llmb_conn *conn,
                  const char *queue, const char *doc, size_t doclen,
                  char **id_out)
{
    char *base = llmb_key_queue(cfg->common.prefix, queue);
    char *queues = llmb_key_global(cfg->common.prefix, "queues");
    const char *sargv[] = {"SADD", queues, queue};
    const char *fargv[4 + LLMB_JOB_NFIELDS];
    size_t flen[4 + LLMB_JOB_NFIELDS];
    size_t lens[LLMB_JOB_NFIELDS];
    char docq[LLMB_QUEUE_NAME_MAX + 1];
    struct llmb_buf vals;
    char *errstr = NULL;
    redisReply *r = NULL;
    const redisReply *e;
    size_t off = 0;
    int rc = EX_UNAVAILABLE;

    *id_out = NULL;
    llmb_buf_init(&vals);
    if (llmb_job_fields_append(doc, doclen, &vals, lens, docq, &errstr) != 0) {
        /* what the flags could not check, such as a payload nested
         * deeper than the server decodes: refused as llmb_push would */
        fprintf(stderr, "llmb-push: %s\n", errstr);
        free(errstr);
        rc = PUSH_EXIT_REJECTED;
        goto out;
    }
    fargv[0] = "FCALL";
    fargv[1] = "llmb_push_fields";
    fargv[2] = "1";
    fargv[3] = base;
    flen[0] = 5;
    flen[1] = strlen(fargv[1]);
    flen[2] = 1;
    flen[3] = strlen(base);
    for (size_t i = 0; i < LLMB_JOB_NFIELDS; i++) {
        fargv[4 + i] = vals.data + off;
        flen[4 + i] = lens[i];
        off += lens[i];
    }
    if (llmb_conn_append_argv(conn, 3, sargv, NULL) != 0 ||
        llmb_conn_append_argv(conn, 4 + LLMB_JOB_NFIELDS, fargv, flen) != 0)
        goto fail;
    r = llmb_conn_get_reply(conn);
    if (r == NULL)
        goto fail;
    freeReplyObject(r);
    r = llmb_conn_get_reply(conn);
    if (r == NULL)
        goto fail;
    /* an error for the whole call, or an array of one id or error */
    e = r->type == REDIS_REPLY_ARRAY && r->elements == 1 ? r->element[0] : r;
    if (e->type == REDIS_REPLY_ERROR) {
        const char *msg = e->str;
        if (strncmp(msg, "ERR ", 4) == 0)
            msg += 4;
        fprintf(stderr, "llmb-push: %s\n", msg);
        rc = strstr(msg, "Function not found") ? EX_UNAVAILABLE
                                                : PUSH_EXIT_REJECTED;
    } else if (e->type == REDIS_REPLY_STRING) {
        *id_out = llmb_xstrndup(e->str, e->len);
        rc = 0;
    } else {
        fprintf(stderr, "llmb-push: unexpected reply type %d from "
                        "llmb_push_fields\n", e->type);
        rc = EX_PROTOCOL;
    }
    freeReplyObject(r);
    goto out;
fail:
    fprintf(stderr, "llmb-push: %s\n", llmb_conn_errstr(conn));
out:
    llmb_buf_fini(&vals);
    free(base);
    free(queues);
    return rc;
}

int push_single(const struct push_config *cfg, struct llmb_conn *conn,
                const struct llmb_strlist *args)
{
    struct llmb_job_args ja;
    struct llmb_buf doc;
    char *payload_in = NULL;
    char *errstr = NULL;
    char *id = NULL;
    char *mark = NULL;
    int rc;

    if (args->n < 1 || args->n > 2) {
        fprintf(stderr, "llmb-push: expected TYPE [PAYLOAD_JSON]; see "
                        "llmb-push --help\n");
        return EX_USAGE;
    }
    memset(&ja, 0, sizeof(ja));
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

    llmb_buf_init(&doc);
    if (llmb_job_doc_build(&ja, &doc, &errstr) != 0) {
        fprintf(stderr, "llmb-push: %s\n", errstr);
        free(errstr);
        rc = EX_USAGE;
        goto out;
    }
    if (cfg->wait &&
        (rc = push_wait_mark(cfg, conn, cfg->queue, &mark)) != 0)
        goto out;
    rc = send_one(cfg, conn, cfg->queue, doc.data, doc.len, &id);
    if (rc == 0 && cfg->wait) {
        fprintf(stderr, "llmb-push: job %s pushed to queue %s\n", id,
                cfg->queue);
        rc = push_wait(cfg, conn, cfg->queue, id, mark);
        mark = NULL;
    } else if (rc == 0) {
        printf("%s\n", id);
    }
out:
    free(mark);
    free(id);
    free(payload_in);
    llmb_buf_fini(&doc);
    return rc;
}
