/*
 * Job documents on the client side: llmb-push builds the JSON document of
 * the job contract from its flags and checks each value before anything is
 * sent. The server (lua/10-document.lua) validates every document again,
 * whoever sent it; the limits below are the same as its built-in ones.
 */
#ifndef LLMB_JOB_H
#define LLMB_JOB_H

#include <stdbool.h>

#include <llmb/keys.h>
#include <llmb/util.h>

#define LLMB_JOB_PRIORITY_MAX 1000000LL
#define LLMB_JOB_TASKS_MAX 100000LL
#define LLMB_JOB_TIMEOUT_S_MAX 604800.0
#define LLMB_JOB_RETRIES_MAX 100LL
#define LLMB_JOB_DELAY_S_MAX 31536000.0
#define LLMB_JOB_BACKOFF_MS_MAX 3600000LL
#define LLMB_JOB_TYPE_MAX 128

/* The fields of one job as the user typed them. NULL leaves a field out of
 * the document, so the server's default applies. */
struct llmb_job_args {
    const char *type;        /* required: [A-Za-z0-9_.:/-], 1..128 */
    const char *queue;       /* queue name */
    const char *payload;     /* any JSON text, kept byte for byte */
    const char *priority;    /* integer, -1000000..1000000 */
    const char *tasks;       /* integer, 1..100000 */
    const char *timeout_s;   /* number, 0.001..604800 */
    const char *max_retries; /* integer, 0..100 */
    const char *delay_s;     /* number, 0..31536000 */
    const char *id;          /* job id: [A-Za-z0-9_.-], 1..128 */
    const char *backoff_ms;  /* integer, 1..3600000 */
    const char *deadline_s;  /* number, 0..31536000 */
};

/* The values of one job in an FCALL llmb_push_fields, in this order (the
 * order of PUSH_FIELDS in lua/20-push.lua). */
enum llmb_push_field {
    LLMB_PUSH_F_ID,
    LLMB_PUSH_F_TYPE,
    LLMB_PUSH_F_PAYLOAD,
    LLMB_PUSH_F_PRIORITY,
    LLMB_PUSH_F_TASKS,
    LLMB_PUSH_F_TIMEOUT_S,
    LLMB_PUSH_F_MAX_RETRIES,
    LLMB_PUSH_F_BACKOFF_MS,
    LLMB_PUSH_F_DELAY_S,
    LLMB_PUSH_F_DEADLINE_S,
    LLMB_PUSH_NFIELDS
};

/* True when s is a valid job type. */
int llmb_job_type_ok(const char *s);

/* The states of a job, as its hash's "state" field spells them
 * (lua/): one table for every program that reads or checks them. */
enum llmb_job_state {
    LLMB_JOB_PENDING,
    LLMB_JOB_RUNNING,
    LLMB_JOB_COMPLETED,
    LLMB_JOB_FAILED,
    LLMB_JOB_CANCELLED,
    LLMB_JOB_NSTATES
};

/* The name of state s. */
const char *llmb_job_state_name(enum llmb_job_state s);

/* The enum llmb_job_state named name, or -1 when name is no job state. */
int llmb_job_state_parse(const char *name);

/* True when state is final: completed, failed or cancelled, so no task
 * of the job will be claimed any more (some may still be running). */
bool llmb_job_state_final(const char *state);

/* True when a job whose hash says state and left (tasks not ended) has
 * ended: completed or failed, or cancelled with none of its tasks still
 * running. What --wait and `llmb sweep` wait for. */
bool llmb_job_ended(const char *state, long long left);

/* Appends the JSON document for a to out. Returns 0, or LLMB_EINVAL with a
 * malloc'd message in *errstr naming the flag and the value, e.g.
 * `--priority must be an integer from -1000000 to 1000000, got "high"`,
 * or an llm payload's unknown field (llmb/llmfields.h);
 * out is then unchanged. */
int llmb_job_doc_build(const struct llmb_job_args *a, struct llmb_buf *out,
                       char **errstr);

/* Checks the job document doc (len bytes: one NDJSON line) and appends
 * its LLMB_PUSH_NFIELDS values for llmb_push_fields to out, one after the
 * other, their lengths in lens; a field the document leaves out is an
 * empty value. Checked here, with the messages llmb_push gives: JSON, an
 * object, known fields, type, queue and id, and the field names of an
 * llm or benchmark payload (llmb/llmfields.h: llmb_push_fields stores
 * payloads unread, so this is that path's check). Numbers and the payload go as
 * the document's exact text, and the server checks them against the
 * queue's limits. queue gets the document's "queue", or "" when it names
 * none. Returns 0, or LLMB_EINVAL with a malloc'd message in *errstr; out
 * is then unchanged. */
int llmb_job_fields_append(const char *doc, size_t len, struct llmb_buf *out,
                           size_t lens[LLMB_PUSH_NFIELDS],
                           char queue[LLMB_QUEUE_NAME_MAX + 1], char **errstr);

#endif
