/*
 * The fields of a job hash <base>:j:<id> that describe the job itself, as
 * docs/data-model.md lists them. The hash also holds the job's task fields
 * ("<index>:state", "<index>:result", ...), up to five per task, so
 * readers ask for these by name (HMGET) instead of reading the whole hash.
 */
#ifndef LLMB_JOBFIELDS_H
#define LLMB_JOBFIELDS_H

#include <stddef.h>

#include <llmb/conn.h>

/* How a field's stored text reads as JSON. */
enum llmb_field_kind {
    LLMB_FK_STR,   /* string, null when absent */
    LLMB_FK_INT,   /* integer, null when absent */
    LLMB_FK_COUNT, /* integer, 0 when absent */
    LLMB_FK_NUM,   /* number, null when absent */
    LLMB_FK_JSON,  /* the JSON text parsed, null when absent */
    LLMB_FK_BOOL   /* "1" is true, absent false */
};

struct llmb_job_field {
    const char *name;
    enum llmb_field_kind kind;
};

extern const struct llmb_job_field llmb_job_fields[];
extern const size_t llmb_job_nfields;

/* HMGET of every field above from the job hash `key`: on success an array
 * of llmb_job_nfields values in that order (nil for absent ones; all nil
 * when there is no such job). NULL when the connection failed, as
 * llmb_conn_command. */
redisReply *llmb_job_fields_read(struct llmb_conn *c, const char *key);

#endif
