/*
 * Following jobs to their end the way llmb-push --wait and llmb sweep do:
 * bounded blocking reads of the queue's event stream (XREAD BLOCK, no
 * busy polling), and a read of the job (llmb_job) at most once per block
 * in case the capped stream dropped an event before it was read. The
 * pieces (progress of a job from a read of it or from its events, the
 * stream's position)
 * serve a follower of many jobs too; llmb_job_wait() follows one.
 */
#ifndef LLMB_JOBWAIT_H
#define LLMB_JOBWAIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include <llmb/cluster.h>

/* What is known of a job being followed. */
struct llmb_job_progress {
    char state[16];
    long long tasks, done;
    bool finished;   /* it has ended (llmb_job_ended()) */
    bool aggregated; /* its aggregate is written */
};

/* The words of the read of job id of the queue whose base key is base
 * (FCALL_RO llmb_job, llmb/jobfields.h; routed by base) whose reply
 * llmb_job_progress_take() reads, into argv. */
#define LLMB_JOB_PROGRESS_ARGC 9
void llmb_job_progress_argv(const char *base, const char *id,
                            const char *argv[LLMB_JOB_PROGRESS_ARGC]);

/* Takes the reply r of that read into *p. Returns 0, or LLMB_ENOTFOUND
 * when it has no state: the job is gone (purged, expired). */
int llmb_job_progress_take(const redisReply *r, struct llmb_job_progress *p);

/* The fields of one event stream entry that a follower reads (the others
 * stay NULL); they point into the reply. */
struct llmb_job_event {
    const char *ev, *job, *done, *state, *ids, *states;
};

/* Applies event e, which names the job of p in its field `job`. */
void llmb_job_event_apply(const struct llmb_job_event *e,
                          struct llmb_job_progress *p);

/* Calls fn(e, arg) for every entry of an XREAD reply r of one stream, and
 * advances *mark (malloc'd) past them. Returns the number of entries. */
size_t llmb_job_events_each(const redisReply *r, char **mark,
                            void (*fn)(const struct llmb_job_event *e,
                                       void *arg),
                            void *arg);

/* Takes the stream position in r, a reply of XREVRANGE <events> + -
 * COUNT 1, into *mark (caller frees): the last entry's id, or "0-0" for
 * an empty stream. Returns 0, or LLMB_EREDIS for an error reply. */
int llmb_job_mark_take(const redisReply *r, char **mark);

/* How llmb_job_wait() waits. */
struct llmb_job_wait_opts {
    int block_ms;      /* the longest blocking read (and how often the job
                          is read again); below the connection's timeout */
    int64_t grace_ms;  /* how long to wait for the aggregate once the job
                          has ended */
    /* Called before each read (may be NULL): a value other than 0 ends
     * the wait, and llmb_job_wait() returns it. */
    int (*tick)(const struct llmb_job_progress *p, void *arg);
    void *arg;
};

/* Follows job id of queue (keys under prefix) through cl from the event
 * stream position *mark (taken before the job could end; advanced,
 * still the caller's) until it has ended and been aggregated, or
 * o->grace_ms after it ended; *p tells how it went. Returns 0, LLMB_EIO
 * (the connection failed: llmb_cluster_errstr()), LLMB_ENOTFOUND (the job
 * is gone), LLMB_EREDIS (Redis answered a read with an error, such as
 * WRONGTYPE for a key that is not a stream: *errstr, which the caller
 * frees, names the key and the error; one of a server that cannot serve
 * yet, llmb_reply_not_yet(), is waited out instead), or what o->tick
 * returned. */
int llmb_job_wait(struct llmb_cluster *cl, const char *prefix,
                  const char *queue, const char *id, char **mark,
                  const struct llmb_job_wait_opts *o,
                  struct llmb_job_progress *p, char **errstr);

#endif
