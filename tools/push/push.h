/*
 * llmb-push: pushes jobs, one from flags or many from NDJSON, and can
 * follow a job to its end. main.c loads the configuration (config.c) and
 * calls one of the entry points below; each returns the process exit code.
 *
 *   single.c   one job from the flags
 *   batch.c    NDJSON, pipelined
 *   journal.c  the ids of the jobs, and the journal that lets a re-run of
 *              an unfinished run finish it without pushing a job twice
 *   outcome.c  what is said about each job and about the run
 * (a run's journal is named by the SHA-256 of its input, lib/sha256.c)
 *   wait.c     --wait: follows one job, or every job of a batch, to its end
 *   summary.c  the tables after --wait: LLM benchmark, jobs of a batch
 *   served.c   the warning that no live worker serves the queue or type
 */
#ifndef LLMB_PUSH_H
#define LLMB_PUSH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include <llmb/cluster.h>
#include <llmb/config.h>
#include <llmb/conn.h>
#include <llmb/sha256.h>

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
    bool json;          /* --json: status objects; raw job with --wait */
    bool progress;      /* progress bar on a terminal with --wait */
    bool journal;       /* --journal: resume an unfinished run */
    char *state_dir;    /* --state-dir: where journals are; NULL = XDG */
    long long redis_timeout_ms;
    char *dataset;      /* --dataset: JSONL prompts stored with the job */
};

extern const struct llmb_opt_set push_opt_set;

/* Exit codes besides sysexits: a job was rejected; --wait outcomes. */
#define PUSH_EXIT_FAILED 1
#define PUSH_EXIT_TIMEOUT 2
#define PUSH_EXIT_REJECTED 65

/* A --dataset file read and checked (dataset.c): n entries, as llmb
 * stores them, back to back in buf, lens[i] bytes each. */
struct push_dataset {
    struct llmb_buf buf;
    size_t *lens;
    size_t n, cap;
};

/* Reads and checks every line of the JSONL file at path. Returns 0, or -1
 * with a malloc'd message naming the line (ds is then empty). */
int push_dataset_read(struct push_dataset *ds, const char *path,
                      char **errstr);
void push_dataset_fini(struct push_dataset *ds);

/* payload (NULL = {}) of a job of type with "dataset": {"entries": n}
 * set (other dataset options kept); tasks (--tasks, NULL = 1) must not
 * be more than n. Returns the new text (caller frees), or NULL with a
 * malloc'd message. */
char *push_dataset_payload(const char *type, const char *payload,
                           const char *tasks, long n, char **errstr);

/* Stores ds for job id of queue key base with FCALL llmb_dataset, in
 * bounded calls. *exists is set when the job exists already (nothing is
 * stored; its push returns it). Returns 0, or -1 with a malloc'd message. */
int push_dataset_upload(const struct push_dataset *ds, struct llmb_conn *conn,
                        const char *base, const char *id, bool *exists,
                        char **errstr);


/* What llmb-push knows of one job (outcome.c). */
enum push_status {
    PUSH_PENDING,   /* to be sent, or sent and not answered yet */
    PUSH_CONFIRMED, /* Redis answered its id: it is stored */
    PUSH_UNKNOWN,   /* no answer: it may or may not be stored */
    PUSH_ERROR,     /* refused by llmb-push or by Redis: not stored */
};

/* The counts of a run, and its first job not confirmed. Zeroed to start;
 * push_tally_fini() frees it. */
struct push_tally {
    long confirmed, unknown, rejected;
    char *first_unknown_id;
    char *first_unknown_queue;
    long first_unknown_line;
    long unread_after;  /* input after this line not read (0: all read) */
};

/* Counts one job in t and says what became of it: a confirmed job's id on
 * stdout, a refusal on stderr (with its line number when line > 0), and
 * with --json one status object on stdout for every job ({"line", "id",
 * "queue", "status", "error"}; "line" only when line > 0, "id" null for a
 * refused job). quiet leaves stdout alone. */
void push_status_print(const struct push_config *cfg, struct push_tally *t,
                       long line, const char *id, const char *queue,
                       enum push_status st, const char *error, bool quiet);

/* When jobs are not confirmed, says how many, the first of them, how to
 * check it and (kept: a journal protects the run) that re-running the
 * same command finishes without duplicates; else, for a batch with
 * refused lines, the counts. */
void push_tally_report(const struct push_tally *t, bool single, bool kept);
void push_tally_fini(struct push_tally *t);

/* True when the error reply err means Redis did not run the call for now
 * (BUSY, LOADING, READONLY, OOM...): its jobs are not confirmed, not
 * refused. */
bool push_reply_unavailable(const char *err);

/* The run's ids and journal (journal.c). */
/* The nonce of a run: 64 random bits as 13 base-36 digits. A journal of
 * an older release holds 16 or 24 hex digits, which a resumed run takes
 * as they are, with its line numbers in decimal as that release wrote
 * them. */
#define PUSH_NONCE_LEN 13
#define PUSH_NONCE_MAX 24
#define PUSH_ID_MAX (PUSH_NONCE_MAX + 24)

/* Lifecycle: push_journal_open() before the first call, push_journal_close()
 * at the end of the run. */
struct push_journal {
    char nonce[PUSH_NONCE_MAX + 1]; /* of the ids this run mints */
    size_t nonce_len;
    bool hex_nonce;                 /* an older release's: decimal lines */
    bool resumed;                   /* the nonce is an earlier run's */
    char *path;                     /* the journal file, or NULL */
    int fd;                         /* open and locked, or -1: none kept */
    struct llmb_buf text;           /* its content, less how it ended */
};

/* Finds the journal of this run, named by kind ("batch", "single"), the
 * prefix, queue and the input's SHA-256 (hex) and size,
 * takes its nonce and says so on stderr when there is one, or makes one
 * with a fresh nonce. source names the input in the file. Never fails:
 * without a journal (--no-journal, or it cannot be kept: said on stderr)
 * the run has a fresh nonce and push_journal_kept() is false. */
void push_journal_open(struct push_journal *j, const struct push_config *cfg,
                       const char *kind, const char *queue,
                       const char *input_sha256, unsigned long long bytes,
                       const char *source);

/* True when a journal protects this run. */
bool push_journal_kept(const struct push_journal *j);

/* The id of job number (its input line; 1 for a single job) of this run:
 * "<nonce>-<number>", the number in base 36 (in decimal after an older
 * release's nonce). */
void push_id_mint(const struct push_journal *j, long number,
                  char id[PUSH_ID_MAX]);

/* Ends the run's journal: deletes it when no job of t is left unconfirmed
 * (the next run of the input is a new run), else records how the run ended
 * and keeps it. Unlocks it and frees j. */
void push_journal_close(struct push_journal *j, const struct push_tally *t);

/* Fills argv and argvlen (4 + njobs * LLMB_PUSH_NFIELDS entries) with the
 * call FCALL llmb_push_fields 1 base and the values of njobs jobs, back to
 * back in vals, LLMB_PUSH_NFIELDS lengths per job in lens (batch.c). The
 * entries point into base and vals. Returns the number of entries. */
int push_fields_argv(const char *base, const char *vals, const size_t *lens,
                     size_t njobs, const char **argv, size_t *argvlen);

/* Pushes one job: TYPE and optional PAYLOAD from args, over conn (on a
 * cluster, the primary of --queue). Prints its id. Registers --queue in
 * <prefix>:queues on the way unless cl is a cluster (main.c has, through
 * the router: the set is in another slot). --wait follows the job through
 * the router cl. */
int push_single(const struct push_config *cfg, struct llmb_conn *conn,
                struct llmb_cluster *cl, const struct llmb_strlist *args);

/* Pushes every job document of the NDJSON stream `path` ("-" = stdin),
 * pipelined; prints the id of each accepted job in input order and
 * reports each rejected line with its number on stderr. cl is the router
 * (of one server too); on one server the calls go over conn, on a cluster
 * (conn is then unused) each run of lines of one queue goes to the
 * primary of that queue's slot. */
int push_batch(const struct push_config *cfg, struct llmb_conn *conn,
               struct llmb_cluster *cl, const char *path);

/* With --wait: *mark gets the position of the queue's event stream before
 * the push (caller frees). Returns 0 or an exit code. */
int push_wait_mark(const struct push_config *cfg, struct llmb_conn *conn,
                   const char *queue, char **mark);

/* Follows job id of queue to its end from stream position mark (taken
 * over by the call) through the router cl (on a cluster, at the primary
 * of the queue's slot, wherever it moves) and prints the final job as
 * JSON. Returns 0 completed,
 * PUSH_EXIT_FAILED failed or cancelled, PUSH_EXIT_TIMEOUT, or a sysexits
 * code. */
int push_wait(const struct push_config *cfg, struct llmb_cluster *cl,
              const char *queue, const char *id, char *mark);

/* Follows every job of ids (queue queues->v[i] each, the run's confirmed
 * jobs in input order) to its end through the router cl (one server or a
 * cluster: each read goes to its queue's primary), with one progress
 * display on stderr, then prints each final job as one JSON line on
 * stdout and the table of the jobs (stderr unless stdout is a terminal;
 * none with --json).
 * Returns 0 all completed, PUSH_EXIT_FAILED some did not,
 * PUSH_EXIT_TIMEOUT, or EX_UNAVAILABLE. */
int push_wait_jobs(const struct push_config *cfg, struct llmb_cluster *cl,
                   const struct llmb_strlist *ids,
                   const struct llmb_strlist *queues);

/* One row of the jobs table (summary.c): filled from a job's JSON,
 * push_job_row_fini() frees it. */
struct push_job_row {
    char *id, *queue, *state;
    long long tasks, ended, ok, failed, cancelled; /* tasks */
    long long run_ms;                               /* -1: not run */
};

void push_job_row_fill(struct push_job_row *row, json_t *job);
void push_job_row_fini(struct push_job_row *row);
/* Prints the rows, one per job, and a total line to out. */
void push_jobs_table_print(const struct push_job_row *rows, size_t n,
                           FILE *out);

/* Prints the LLM serving-benchmark table of job (the JSON --wait prints)
 * to out when its aggregate has llm results; returns 1 when it did, else
 * 0. */
int push_summary_print(json_t *job, FILE *out);

/* Says on stderr when no live worker serves queue, or none handles type
 * there (served.c). Advisory: a failed read says nothing. */
void push_served_warn(const struct push_config *cfg, struct llmb_conn *conn,
                      const char *queue, const char *type);

#endif
