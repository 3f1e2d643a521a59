/*
 * llmb-push: pushes jobs, one from flags or many from NDJSON, and can
 * follow a job to its end. main.c loads the configuration and calls one of
 * the entry points below; each returns the process exit code.
 */
#ifndef LLMB_PUSH_H
#define LLMB_PUSH_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include <llmb/config.h>
#include <llmb/conn.h>

struct push_config {
    struct llmb_common common;
    char *queue;        /* --queue: default queue of the jobs */
    char *priority;     /* the job fields below stay text until the */
    char *tasks;        /* document is built, so that an unset one */
    char *timeout;      /* leaves the server's default in force */
    char *retries;
    char *delay;
    char *id;
    char *backoff_ms;
    char *deadline;
    bool batch;         /* --batch: NDJSON from FILE or stdin */
    long long batch_size;
    long long pipeline;
    bool wait;          /* --wait: follow the job to its end */
    long long wait_timeout;
    bool json;          /* --json: raw aggregate with --wait */
    bool progress;      /* progress bar on a terminal with --wait */
};

extern const struct llmb_opt_set push_opt_set;

/* Exit codes besides sysexits: a job was rejected; --wait outcomes. */
#define PUSH_EXIT_FAILED 1
#define PUSH_EXIT_TIMEOUT 2
#define PUSH_EXIT_REJECTED 65

/* Pushes one job: TYPE and optional PAYLOAD from args. Prints its id. */
int push_single(const struct push_config *cfg, struct llmb_conn *conn,
                const struct llmb_strlist *args);

/* Pushes every job document of the NDJSON stream `path` ("-" = stdin),
 * pipelined; prints the id of each accepted job in input order and
 * reports each rejected line with its number on stderr. */
int push_batch(const struct push_config *cfg, struct llmb_conn *conn,
               const char *path);

/* With --wait: *mark gets the position of the queue's event stream before
 * the push (caller frees). Returns 0 or an exit code. */
int push_wait_mark(const struct push_config *cfg, struct llmb_conn *conn,
                   const char *queue, char **mark);

/* Follows job id of queue to its end from stream position mark (taken
 * over by the call) and prints the final job as JSON. Returns 0 completed,
 * PUSH_EXIT_FAILED failed or cancelled, PUSH_EXIT_TIMEOUT, or a sysexits
 * code. */
int push_wait(const struct push_config *cfg, struct llmb_conn *conn,
              const char *queue, const char *id, char *mark);

/* Prints the LLM serving-benchmark table of job (the JSON --wait prints)
 * to out when its aggregate has llm results; returns 1 when it did, else
 * 0. */
int push_summary_print(json_t *job, FILE *out);

#endif
