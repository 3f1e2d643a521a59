/*
 * The fields of a job that describe the job itself, as docs/data-model.md
 * lists them. A job also has task fields ("<index>:state",
 * "<index>:result", ...), up to five per task, so readers ask for fields
 * by name instead of reading the whole job.
 *
 * Readers never read a job's keys: they ask the read-only function
 * llmb_job (lua/15-job.lua) for the fields they want, which answers them
 * whatever the layout that stores the job.
 */
#ifndef LLMB_JOBFIELDS_H
#define LLMB_JOBFIELDS_H

#include <stddef.h>

#include <llmb/conn.h>
#include <llmb/util.h>

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

/* Most fields one llmb_job call names (JOB_VIEW.max in lua/15-job.lua). */
#define LLMB_JOB_READ_MAX 1000

/* Appends to cmd (emptied first) the start of a read of job `id` of the
 * queue whose base key is `base`: FCALL_RO llmb_job 1 <base> <id>. The
 * caller appends the names of the fields it wants (1 to
 * LLMB_JOB_READ_MAX); the reply is their values in that order, nil for
 * absent ones (all nil when there is no such job), as HMGET of a hash. */
void llmb_job_read_cmd(struct llmb_strlist *cmd, const char *base,
                       const char *id);

/* cmd (emptied first) becomes the read of every field above of job `id`
 * of the queue whose base key is `base`, in that order: llmb_job_read_cmd
 * followed by the llmb_job_nfields names. */
void llmb_job_fields_cmd(struct llmb_strlist *cmd, const char *base,
                         const char *id);

/* Reads every field above of job `id` of the queue whose base key is
 * `base`: on success an array of llmb_job_nfields values in that order
 * (nil for absent ones; all nil when there is no such job). NULL when
 * the connection failed, as llmb_conn_command. */
redisReply *llmb_job_fields_read(struct llmb_conn *c, const char *base,
                                 const char *id);

#endif
