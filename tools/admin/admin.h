/*
 * The llmb admin CLI: what its files share. main.c picks the command
 * (commands.c), loads its options (config.c), connects, and calls the
 * command's run function (stats.c, workers.c, queues.c, jobs.c, show.c,
 * cancel.c, retry.c, purge.c, health.c, export.c, compare.c, sweep.c;
 * health connects by itself, see own_conn; export reads a job's request
 * records through records.c). Those read Redis through pipelined batches
 * (batch.c), turn replies into values (reply.c), find queues and jobs
 * (lookup.c) and print either aligned tables for people (table.c, human.c)
 * or one JSON document for scripts (output.c). report.c writes the web
 * UI's pages of jobs into one HTML file from the embedded files of web/
 * (assets.h, assets.c) and the views' documents.
 *
 * Every run function returns 0 or a negative enum llmb_err and, on error,
 * a malloc'd message for the user in *errstr (main prints it after
 * "llmb: "); the error code decides the exit status:
 *   LLMB_EINVAL usage (64), LLMB_ENOTFOUND and LLMB_EREDIS the operation
 *   failed (1), LLMB_EIO and LLMB_ETIMEOUT Redis unreachable (69).
 */
#ifndef LLMB_ADMIN_H
#define LLMB_ADMIN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include <llmb/config.h>
#include <llmb/cluster.h>
#include <llmb/conn.h>
#include <llmb/reply.h>
#include <llmb/stats.h>
#include <llmb/util.h>

/* Defaults and bounds of the options, shared by config.c and the docs. */
#define LLMB_ADMIN_LIMIT_DEFAULT "20"
#define LLMB_ADMIN_LIMIT_MAX 10000
#define LLMB_ADMIN_TASKS_DEFAULT "20"
#define LLMB_ADMIN_TASKS_MAX 100000
/* Job ids read per queue at most when `jobs --state` filters. */
#define LLMB_ADMIN_SCAN_MAX 100000
/* `health`: a worker record older than this is stale (three heartbeats
 * of the worker's default --heartbeat-ms), and the time one check waits. */
#define LLMB_ADMIN_STALE_MS_DEFAULT "15000"
#define LLMB_ADMIN_HEALTH_TIMEOUT_DEFAULT "3000"

/* `llmb sweep`: the levels, the base job and when to stop (sweep.c). */
struct llmb_sweep_opts {
    char *over;                /* --over: concurrency or rate */
    struct llmb_strlist levels; /* --levels: the values, in order */
    char *job;                 /* --job: the base job document */
    char *job_file;            /* --job-file: the same, from a file */
    char *id;                  /* --id: the sweep's id, or NULL: minted */
    bool stop_on_slo;          /* --stop-on-slo */
    char *slo_min_good;        /* --slo-min-good: goodput / throughput */
    char *slo_percentile;      /* --slo-percentile: p50, p90, p99 or NULL */
};

/* Every option of every command; a command's option set names the ones it
 * accepts (commands.c), the others keep their zero value. */
struct llmb_admin_config {
    struct llmb_common common;
    bool json;       /* --json: one JSON document on stdout */
    char *queue;     /* --queue: restrict to / look in this queue */
    char *state;     /* --state: jobs in this state only */
    long long limit; /* --limit: most jobs to list */
    long long tasks; /* --tasks: tasks to list in `show` */
    bool yes;        /* --yes: confirm a purge */
    bool dead;       /* --dead: retry every job of the dead set */
    char *coordinator; /* --coordinator: health reads URL's /healthz */
    char *worker;      /* --worker: health checks this worker's record */
    bool live;         /* --live: health checks only that it answers */
    long long stale_ms;   /* --stale-ms: oldest fresh worker record */
    long long timeout_ms; /* --timeout-ms: bound of each health check */
    struct llmb_sweep_opts sweep; /* `sweep`'s own options (sweep.c) */
    char *format;         /* --format: export's jsonl, csv or vllm */
    char *output;         /* --output: export writes this file, not stdout */
    char *addr;           /* --addr: where `web` listens */
    char *token_env;      /* --token-env: the variable holding web's token */
    struct llmb_strlist allow_hosts; /* --allow-host: more Host names */
    long long max_conns_per_ip; /* --max-conns-per-ip: web, per address */
};

/* What a command runs with. Built by main() after the options are loaded
 * and the connection is up; the command borrows everything. */
struct llmb_admin {
    const struct llmb_admin_config *cfg;
    struct llmb_cluster *conn;  /* routes by key on a Redis Cluster */
    const char *prefix;             /* cfg->common.prefix */
    char **args;                    /* positionals after the command word */
    size_t nargs;
    FILE *out;                      /* stdout: tables or the JSON document */
};

typedef int (*llmb_command_fn)(struct llmb_admin *a, char **errstr);

/* One subcommand: its name, help and option set, and its run function. */
struct llmb_command {
    const char *name;
    const char *usage;    /* after "llmb NAME ", e.g. "[OPTIONS] JOB" */
    const char *brief;    /* one line for `llmb --help` */
    const char *summary;  /* the paragraph of `llmb NAME --help` */
    const char *options;  /* accepted options, "json,queue,state,limit" */
    size_t min_args, max_args;
    llmb_command_fn check; /* or NULL: checks the options before Redis is
                              reached (a->conn is NULL); EINVAL = usage */
    llmb_command_fn run;
    bool own_conn; /* run gets a->conn NULL and connects when it needs to,
                      so that an unreachable Redis is its result, not a
                      failure of main (health) */
};

/* commands.c */
/* The command named name, or NULL. */
/* The command name nearest to a mistyped name, or NULL when none is
 * close. */
const char *llmb_command_nearest(const char *name);
const struct llmb_command *llmb_command_find(const char *name);
/* Prints the command list for `llmb --help`. */
void llmb_command_list_print(FILE *out);
/* Finds the command word in argv: the first argument that is neither an
 * option nor an option's value. NULL when there is none. */
const char *llmb_command_word(int argc, char **argv);

/* config.c */
/* Builds the option set of cmd (or of `llmb` itself when cmd is NULL)
 * into *set; free it with llmb_admin_opt_set_fini(). */
void llmb_admin_opt_set_init(struct llmb_opt_set *set,
                             const struct llmb_command *cmd);
void llmb_admin_opt_set_fini(struct llmb_opt_set *set);
/* The job states a filter takes (`jobs --state`, the web API's
 * ?state=), as a message names them. */
#define LLMB_ADMIN_JOB_STATES "pending, running, completed, failed or cancelled"
/* True when s is one of LLMB_ADMIN_JOB_STATES. */
bool llmb_admin_job_state_ok(const char *s);
/* Checks the values that have a shape beyond their type (--queue is a
 * queue name, --state a job state). Returns 0 or LLMB_EINVAL. */
int llmb_admin_config_check(const struct llmb_admin_config *cfg,
                            char **errstr);
/*
 * Reads the command line: finds the command (*cmd), builds its option set
 * (*set; llmb_admin_opt_set_fini() it in every case), fills cfg
 * (llmb_config_free() it with *set) and the positionals (*pos: the command
 * word, then its arguments), and checks them. Returns 0 to run *cmd; 1
 * when help, --version or --dump-config was printed; LLMB_EINVAL with a
 * malloc'd *errstr for a usage error.
 */
int llmb_admin_config_load(int argc, char **argv,
                           struct llmb_admin_config *cfg,
                           struct llmb_opt_set *set,
                           const struct llmb_command **cmd,
                           struct llmb_strlist *pos, char **errstr);

/* queues.c: the read-only summary of one queue (FCALL_RO llmb_stats,
 * read by llmb_queue_stats_parse()). */
struct llmb_queue_row {
    char *name;
    struct llmb_queue_stats st; /* all zero when error is set */
    char *error;                /* why its stats cannot be read, or NULL */
};
/* Reads the stats of every queue in names, pipelined, into a new array of
 * names->n rows (*out; free with llmb_queue_rows_free()). A queue whose
 * stats cannot be read (llmb_stats failed, answered something unexpected
 * or named keys of the wrong type) gets an error in its row and does not
 * stop the others. *now_ms gets the server time (0 when no queue
 * answered). Returns 0, or LLMB_EIO with *errstr when Redis is
 * unreachable. */
int llmb_queue_stats_fetch(struct llmb_admin *a,
                           const struct llmb_strlist *names,
                           struct llmb_queue_row **out, int64_t *now_ms,
                           char **errstr);
void llmb_queue_rows_free(struct llmb_queue_row *s, size_t n);
/* The row as a JSON object: name and the numbers, or name and error. */
json_t *llmb_queue_row_json(const struct llmb_queue_row *s);
/* Prints a note on out for each paused queue of the rows. */
void llmb_queue_rows_paused_print(FILE *out, const struct llmb_queue_row *s,
                                  size_t n);
/* The queue table of `queues` and `stats`: QUEUE, PENDING, DELAYED,
 * RUNNING, DEAD, JOBS, then with LLMB_QT_TASKS TO AGGREGATE, TASKS OK,
 * TASKS FAILED, with LLMB_QT_JUNK JUNK, and HEAD AGE. */
#define LLMB_QT_TASKS 1u
#define LLMB_QT_JUNK 2u
struct llmb_table;
void llmb_queue_table_columns(struct llmb_table *t, unsigned cols);
/* Adds the row of queue name to a table of those columns; st NULL (its
 * stats unknown) prints "-" in every number. */
void llmb_queue_table_row(struct llmb_table *t, const char *name,
                          const struct llmb_queue_stats *st, unsigned cols);
/* Prints the error of each row that has one on stderr ("llmb: queue Q:
 * ..."). Returns 0 when there is none, else LLMB_EREDIS with a malloc'd
 * *errstr naming those queues, for the exit status. */
int llmb_queue_rows_errors(const struct llmb_queue_row *s, size_t n,
                           char **errstr);

/* workers.c: the records workers keep of themselves. */
enum llmb_worker_field {
    LLMB_WF_ID, LLMB_WF_HOST, LLMB_WF_PID, LLMB_WF_QUEUES, LLMB_WF_TAGS,
    LLMB_WF_CAPACITY, LLMB_WF_RUNNING, LLMB_WF_COMPLETED, LLMB_WF_FAILED,
    LLMB_WF_VERSION, LLMB_WF_STARTED_MS, LLMB_WF_SEEN_MS, LLMB_WF_STATE,
    LLMB_WF_COUNT
};
/* One worker: the fields of <prefix>:worker:<id> (NULL when missing; the
 * state is "gone" when the whole hash is) and its last heartbeat. */
struct llmb_admin_worker {
    char *id;
    char *f[LLMB_WF_COUNT];
    long long seen_ms; /* seen_ms of the hash, else the score */
};
/* Reads every worker of <prefix>:workers, sorted by id, pipelined a
 * thousand at a time, into a new array (*out, *n; free with
 * llmb_workers_free()). Returns 0, LLMB_EIO or LLMB_EREDIS with *errstr. */
int llmb_workers_fetch(struct llmb_admin *a, struct llmb_admin_worker **out,
                       size_t *n, char **errstr);
void llmb_workers_free(struct llmb_admin_worker *w, size_t n);
/* True when the worker is no longer alive: marked "dead" by a coordinator,
 * or its hash expired (the state then reads "gone"). */
bool llmb_admin_worker_gone(const struct llmb_admin_worker *w);

/* The commands, one file each. */
int llmb_stats_run(struct llmb_admin *a, char **errstr);
int llmb_workers_run(struct llmb_admin *a, char **errstr);
int llmb_queues_run(struct llmb_admin *a, char **errstr);
int llmb_jobs_run(struct llmb_admin *a, char **errstr);
int llmb_show_run(struct llmb_admin *a, char **errstr);
int llmb_cancel_run(struct llmb_admin *a, char **errstr);
int llmb_retry_check(struct llmb_admin *a, char **errstr);
int llmb_retry_run(struct llmb_admin *a, char **errstr);
int llmb_purge_check(struct llmb_admin *a, char **errstr);
int llmb_purge_run(struct llmb_admin *a, char **errstr);
int llmb_health_check(struct llmb_admin *a, char **errstr);
int llmb_health_run(struct llmb_admin *a, char **errstr);
int llmb_export_check(struct llmb_admin *a, char **errstr);
int llmb_export_run(struct llmb_admin *a, char **errstr);
int llmb_compare_run(struct llmb_admin *a, char **errstr);
int llmb_pause_run(struct llmb_admin *a, char **errstr);
int llmb_resume_run(struct llmb_admin *a, char **errstr);
int llmb_web_check(struct llmb_admin *a, char **errstr);
int llmb_web_run(struct llmb_admin *a, char **errstr);
/* report.c: `llmb report`, the web UI's pages in one HTML file. */
int llmb_report_run(struct llmb_admin *a, char **errstr);

/*
 * The views: one builder per JSON document, used by the command's --json
 * and by `llmb web`'s API (web.c), so both always show the same thing.
 * Each returns 0 with a new document in *doc (the caller decrefs), or an
 * error as the commands do (LLMB_EINVAL, LLMB_ENOTFOUND, LLMB_EREDIS,
 * LLMB_EIO...) with *errstr and *doc NULL. They read a->cfg's queue (and
 * jobs: state and limit) as the commands do.
 */
/* `stats --json`. Queues whose stats cannot be read are rows with an
 * "error": that is not an error of the view. */
int llmb_view_stats(struct llmb_admin *a, json_t **doc, char **errstr);
/* `stats --json` and, when workers is not NULL, `workers --json` from
 * the same read of the workers (the web UI's overview shows both). */
int llmb_view_stats_workers(struct llmb_admin *a, json_t **stats,
                            json_t **workers, char **errstr);
/* `workers --json`. */
int llmb_view_workers(struct llmb_admin *a, json_t **doc, char **errstr);
/* The document of `workers --json` of the n workers ws, read at now. */
json_t *llmb_workers_json(const struct llmb_admin_worker *ws, size_t n,
                          int64_t now);
/* `queues --json`. */
int llmb_view_queues(struct llmb_admin *a, json_t **doc, char **errstr);
/* `jobs --json`. */
int llmb_view_jobs(struct llmb_admin *a, json_t **doc, char **errstr);
/* A page of queue's jobs, newest first, with the objects of `jobs
 * --json`: {"jobs", "total", "next_offset", "truncated", "now_ms"}.
 * state and search (an id prefix or a type) may be NULL; limit >= 1 and
 * offset >= 0 are bounded by the caller. Reads at most
 * LLMB_ADMIN_SCAN_MAX ids of the queue's index when filtering. */
int llmb_view_queue_jobs(struct llmb_admin *a, const char *queue,
                         const char *state, const char *search,
                         long long limit, long long offset, json_t **doc,
                         char **errstr);
/* `show --json` of job spec, listing `tasks` tasks from task_offset on. */
/* Drops each task result's `_requests` (keeping their number as
 * `_requests_omitted`) and the buckets of its histograms from a
 * `show --json` document, as the report and the web job view do. */
void llmb_view_drop_records(json_t *doc);
int llmb_view_show(struct llmb_admin *a, const char *spec, long long tasks,
                   long long task_offset, json_t **doc, char **errstr);
/* `compare --json` of the n specs (1 to 16). */
int llmb_view_compare(struct llmb_admin *a, char *const *specs, size_t n,
                      json_t **doc, char **errstr);
/* The same, taking the aggregate of each job that shown (may be NULL)
 * maps, by the spec before any '@', to its `show --json` document,
 * instead of reading it again. */
int llmb_view_compare_shown(struct llmb_admin *a, char *const *specs,
                            size_t n, const json_t *shown, json_t **doc,
                            char **errstr);
/* The actions: `cancel --json`, `retry --json` (one job), `purge --yes
 * --json` and `pause --json` / `resume --json`. */
int llmb_view_cancel(struct llmb_admin *a, const char *spec, json_t **doc,
                     char **errstr);
int llmb_view_retry(struct llmb_admin *a, const char *spec, json_t **doc,
                    char **errstr);
int llmb_view_purge(struct llmb_admin *a, const char *queue, json_t **doc,
                    char **errstr);
int llmb_view_pause(struct llmb_admin *a, const char *queue, bool pause,
                    json_t **doc, char **errstr);

/* records.c: a job's per-request records, the current claim's only. */
#define LLMB_RECORD_COLS 15 /* columns of a record line, docs/llm.md */
/* One record line and the chunk it came in. Every pointer is borrowed
 * for the call of the llmb_record_fn only; a missing column is "". */
struct llmb_record {
    const char *job, *task, *claim, *worker, *attempt;
    const char *endpoint, *model, *task_start_ms;
    char *col[LLMB_RECORD_COLS]; /* n, start_ms, ..., error, itls */
};
/* Called once per record; a non-zero return stops the walk and is
 * returned by llmb_records_each(). */
typedef int (*llmb_record_fn)(const struct llmb_record *rec, void *ctx);
/* Calls fn for every record of job id of queue that belongs to its task's
 * current claim (<base>:rs:<id>), in list order, reading 100 chunks per
 * round trip. *dropped (when not NULL) gets the chunks refused by
 * max_record_bytes. Returns 0, fn's value, or LLMB_EIO / LLMB_EREDIS /
 * LLMB_EPROTO with *errstr. */
int llmb_records_each(struct llmb_admin *a, const char *queue,
                      const char *id, llmb_record_fn fn, void *ctx,
                      long long *dropped, char **errstr);

/* show.c */
/* An llm job's (or an A/B pair's) aggregate "timeline" summed up
 * (docs/llm.md): its buckets, their width, the series it left out, and
 * the highest output throughput (a bucket's tokens over its seconds) and
 * concurrency (time-weighted mean in flight) of a bucket. */
struct llmb_timeline_peaks {
    size_t buckets;
    long long width_ms, refused;
    double tok_s, concurrency;
};
/* Fills *p from agg's "timeline"; false when it has none. */
bool llmb_timeline_peaks(const json_t *agg, struct llmb_timeline_peaks *p);
/* Reads the fields of job id of queue that describe the job
 * (llmb_job_fields) into a new object of strings, absent fields left out
 * (*hash, caller decrefs; NULL on error). Returns 0; LLMB_ENOTFOUND with
 * `job "spec" not found` when the hash is gone; LLMB_EIO / LLMB_EREDIS. */
int llmb_job_hash_read(struct llmb_admin *a, const char *queue,
                       const char *id, const char *spec, json_t **hash,
                       char **errstr);

/* compare.c */
/* Finds job spec (as llmb_lookup_job) and reads its aggregate into *agg
 * (caller decrefs) and, when fields is not NULL, its job hash as
 * llmb_job_hash_read() gives it into *fields (caller decrefs). Returns 0;
 * LLMB_ENOTFOUND with `job "x" has no aggregate yet (state running)`;
 * the errors of llmb_lookup_job() and llmb_job_hash_read(). */
int llmb_job_aggregate_read(struct llmb_admin *a, const char *spec,
                            char **queue, char **id, json_t **agg,
                            json_t **fields, char **errstr);
int llmb_sweep_check(struct llmb_admin *a, char **errstr);
int llmb_sweep_run(struct llmb_admin *a, char **errstr);

/* httpget.c */
/* GETs url ("http://HOST[:PORT][/PATH]"; no path or "/" means /healthz)
 * with libcurl, loaded on first use, all of it within timeout_ms; never
 * through a proxy. Sets *status to the
 * HTTP status and *body to the malloc'd response body (caller frees).
 * Returns 0; LLMB_EINVAL for a malformed URL; LLMB_EIO (libcurl missing,
 * cannot resolve or connect), LLMB_ETIMEOUT or LLMB_EPROTO (not HTTP),
 * with *errstr. */
int llmb_http_get(const char *url, int timeout_ms, int *status, char **body,
                  char **errstr);
/* 0 when llmb_http_get() can parse url, else LLMB_EINVAL with *errstr. */
int llmb_http_url_check(const char *url, char **errstr);

/*
 * batch.c: commands sent as one pipeline. Add commands, run, then read
 * reply i of command i. The batch owns the replies.
 */
struct llmb_batch {
    size_t n, cap;
    struct llmb_batch_cmd *cmds;
    redisReply **replies; /* n replies after a successful run */
};

void llmb_batch_init(struct llmb_batch *b);
/* Appends a command made of the NUL-terminated strings given, ended by
 * NULL; the strings are copied. */
void llmb_batch_add(struct llmb_batch *b, const char *arg, ...);
/* Appends a command from a string list (copied). */
void llmb_batch_add_list(struct llmb_batch *b, const struct llmb_strlist *l);
/* Sends every command and reads every reply, a thousand commands per
 * round trip. Returns 0, or LLMB_EIO with *errstr when the connection
 * failed (replies are then unavailable). Error replies are replies. */
int llmb_batch_run(struct llmb_batch *b, struct llmb_cluster *c,
                   char **errstr);
/* Frees commands and replies; the batch can be used again after
 * llmb_batch_init(). */
void llmb_batch_fini(struct llmb_batch *b);

/* reply.c */
/* The text of a string or status reply; NULL for anything else. */
const char *llmb_reply_str(const redisReply *r);
/* An error reply's message without the leading "ERR "; "" otherwise. */
const char *llmb_reply_errmsg(const redisReply *r);
/* 0 when r is a usable reply; LLMB_EIO (r NULL: connection lost, message
 * from the connection) or LLMB_EREDIS (error reply, its message without
 * "ERR ") with a malloc'd *errstr. */
int llmb_reply_check(const redisReply *r, struct llmb_cluster *c,
                     char **errstr);
/* llmb_reply_check(), and an array reply expected: else LLMB_EREDIS with
 * "<key> is not a <kind>" ("sorted set", "list"...) in *errstr. */
int llmb_reply_check_array(const redisReply *r, struct llmb_cluster *c,
                           const char *key, const char *kind,
                           char **errstr);
/* A JSON string of s (bytes that are not UTF-8 become '?'); null for
 * NULL. */
json_t *llmb_json_str(const char *s);
/* Value of a Redis string for JSON: an integer when all of it is one,
 * else a real when it parses as one, else the string; null for NULL. */
json_t *llmb_json_scalar(const char *s);
/* An integer, or null for NULL / non-integers. */
json_t *llmb_json_int_or_null(const char *s);
/* The JSON value that text holds, or the text as a string when it is not
 * JSON; null for NULL. */
json_t *llmb_json_text(const char *s);

/* lookup.c */
/* Fills *queues with the known queues (set <prefix>:queues), sorted, or
 * with only cfg->queue when --queue was given. Returns 0, LLMB_EINVAL for
 * a bad --queue name, or LLMB_EIO / LLMB_EREDIS, with *errstr. */
int llmb_lookup_queues(struct llmb_admin *a, struct llmb_strlist *queues,
                       char **errstr);
/* Finds the queue of job `spec` ("ID" or "QUEUE/ID"; --queue also names
 * the queue): sets *queue and *id (malloc'd). Returns 0; LLMB_EINVAL for
 * a malformed id; LLMB_ENOTFOUND with `job "x" not found`; LLMB_EREDIS
 * when the id is in several queues; LLMB_EIO. */
int llmb_lookup_job(struct llmb_admin *a, const char *spec, char **queue,
                    char **id, char **errstr);

/* FCALL fn 1 <base> [arg] (arg may be NULL), a function that answers a
 * number, into *value. Returns 0, or an error with *errstr set (the
 * function's refusal without its "ERR "; LLMB_EPROTO when the answer is
 * not a number). */
int llmb_fcall_ll(struct llmb_admin *a, const char *fn, const char *base,
                  const char *arg, long long *value, char **errstr);
/* Calls the function `fn` on queue `queue` (FCALL fn 1 <base> [id], as
 * llmb_fcall_ll), which answers a number, into *value. Returns 0 with the
 * document {"job": id (when id is not NULL), "queue"} in *doc for the
 * caller to complete, or an error with *errstr set and *doc NULL. */
int llmb_queue_fcall_doc(struct llmb_admin *a, const char *fn,
                         const char *queue, const char *id,
                         long long *value, json_t **doc, char **errstr);
/* Finds job `spec` (as llmb_lookup_job) and calls the function
 * `fn` (llmb_cancel, llmb_retry) on it, which answers a number. Returns 0
 * with the new document {"job", "queue", <field>: the number} in *doc,
 * or an error with *errstr set (the function's refusal without its
 * "ERR ") and *doc NULL. */
int llmb_job_fcall_doc(struct llmb_admin *a, const char *fn,
                       const char *spec, const char *field, json_t **doc,
                       char **errstr);
/* Redis server time in ms through *now_ms. Returns 0 or LLMB_EIO. */
int llmb_lookup_now(struct llmb_admin *a, int64_t *now_ms, char **errstr);

/*
 * table.c: an aligned table for people. Columns are declared first, then
 * cells are added row by row, left to right. Control characters in cells
 * print as spaces so a row stays on one line.
 */
struct llmb_table;

struct llmb_table *llmb_table_new(void);
/* Declares the next column; right aligns it (numbers) when right. */
void llmb_table_column(struct llmb_table *t, const char *header, bool right);
/* Adds the next cell (copied); NULL prints "-". */
void llmb_table_cell(struct llmb_table *t, const char *text);
void llmb_table_cellf(struct llmb_table *t, const char *fmt, ...)
    LLMB_PRINTF(2, 3);
/* Number of complete rows added. */
size_t llmb_table_rows(const struct llmb_table *t);
/* Prints header and rows, columns two spaces apart, the last one unpadded. */
void llmb_table_print(const struct llmb_table *t, FILE *out);
void llmb_table_free(struct llmb_table *t);

/* human.c: times for people. Buffers of LLMB_HUMAN_LEN bytes. */
#define LLMB_HUMAN_LEN 48
/* "850ms", "4.2s", "59s", "3m04s", "2h05m", "3d04h". */
char *llmb_human_duration(int64_t ms, char *buf);
/* "3s ago", "in 2m00s" (then after now), "-" when then_ms <= 0. */
char *llmb_human_ago(int64_t now_ms, int64_t then_ms, char *buf);
/* "2026-11-28 16:42:24Z (3s ago)", or "-" when ms <= 0. */
char *llmb_human_time(int64_t now_ms, int64_t ms, char *buf);

/* output.c */
/* Prints doc as one indented JSON document and a newline on a->out, and
 * releases doc. */
void llmb_output_json(struct llmb_admin *a, json_t *doc);
/* Writes text on one line of a table cell: control characters become
 * spaces and it is cut at max bytes (UTF-8 safe) with "...". Returns a
 * malloc'd string; NULL gives NULL. */
char *llmb_output_oneline(const char *text, size_t max);

#endif
