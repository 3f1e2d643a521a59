/*
 * llmb-push's option table: defaults, environment, config file, flags,
 * --help and --dump-config all come from it.
 */
#include <stddef.h>

#include "push.h"

#define OPT_STR(name, env, def, meta, help, field)                          \
    {name, 0, env, LLMB_OPT_STR, def, meta, help,                           \
     offsetof(struct push_config, field), 0, 0, false}

static const struct llmb_opt push_opts[] = {
    {"queue", 'q', "LLMB_QUEUE", LLMB_OPT_STR, "default", "Q",
     "Queue to push to (jobs in NDJSON may name their own).",
     offsetof(struct push_config, queue), 0, 0, false},
    OPT_STR("priority", NULL, NULL, "N",
            "Job priority, -1000000..1000000; higher runs first (default 0).",
            priority),
    OPT_STR("tasks", NULL, NULL, "N",
            "Fan out into N tasks, indexes 0..N-1 (default 1).", tasks),
    OPT_STR("timeout", NULL, NULL, "S",
            "Limit of one attempt of one task in seconds (default 600).",
            timeout),
    OPT_STR("retries", NULL, NULL, "N",
            "Retries after the first attempt (default 3).", retries),
    OPT_STR("delay", NULL, NULL, "S", "Start no sooner than S seconds from now.",
            delay),
    OPT_STR("id", NULL, NULL, "ID",
            "Job id; pushing an existing id returns that job (default "
            "NONCE-1, NONCE random per run; see --journal).",
            id),
    OPT_STR("backoff-ms", NULL, NULL, "MS",
            "First retry delay; doubles each attempt (default 1000).",
            backoff_ms),
    OPT_STR("deadline", NULL, NULL, "S",
            "Fail what is left of the job S seconds after the push.", deadline),
    {"batch", 'b', NULL, LLMB_OPT_BOOL, "false", NULL,
     "Read NDJSON job documents from FILE (or stdin) and push them pipelined.",
     offsetof(struct push_config, batch), 0, 0, false},
    {"batch-size", 0, "LLMB_PUSH_BATCH_SIZE", LLMB_OPT_INT, "200", "N",
     "Job documents per call with --batch.",
     offsetof(struct push_config, batch_size), 1, 250, false},
    {"pipeline", 0, "LLMB_PUSH_PIPELINE", LLMB_OPT_INT, "16", "N",
     "Calls in flight at once with --batch.",
     offsetof(struct push_config, pipeline), 1, 1024, false},
    {"wait", 'w', NULL, LLMB_OPT_BOOL, "false", NULL,
     "Follow the job (with --batch: every job) to its end; print it as "
     "JSON (NDJSON for a batch) and, on a terminal, a table; exit 0 "
     "completed, 1 failed or cancelled, 2 timed out.",
     offsetof(struct push_config, wait), 0, 0, false},
    {"wait-timeout", 0, NULL, LLMB_OPT_INT, "0", "S",
     "Give up waiting after S seconds (0 = never).",
     offsetof(struct push_config, wait_timeout), 0, 31536000, false},
    {"json", 0, NULL, LLMB_OPT_BOOL, "false", NULL,
     "Print one JSON object per job: line, id, queue, status (confirmed, "
     "unknown or error); with --wait, the final job JSON only (no table).",
     offsetof(struct push_config, json), 0, 0, false},
    {"progress", 0, NULL, LLMB_OPT_BOOL, "true", NULL,
     "With --wait, show progress on stderr: a bar on a terminal, else a "
     "line every 5 s.",
     offsetof(struct push_config, progress), 0, 0, false},
    {"journal", 0, "LLMB_PUSH_JOURNAL", LLMB_OPT_BOOL, "true", NULL,
     "Keep a journal of each run in --state-dir, so that re-running the same "
     "input after a run that did not finish pushes no job twice "
     "(--no-journal: fresh ids every run; stdin is streamed, not read to "
     "its end first).",
     offsetof(struct push_config, journal), 0, 0, false},
    OPT_STR("state-dir", "LLMB_STATE_DIR", NULL, "DIR",
            "Directory of the journals (default $XDG_STATE_HOME/llmb, else "
            "~/.local/state/llmb).",
            state_dir),
    OPT_STR("dataset", NULL, NULL, "FILE",
            "JSONL prompts or conversations (ShareGPT) for an llm or "
            "benchmark job: stored in Redis with the job, each task taking "
            "its part; sets the payload's dataset.entries.",
            dataset),
    {"redis-timeout-ms", 0, "LLMB_REDIS_TIMEOUT_MS", LLMB_OPT_INT, "10000",
     "MS",
     "Limit of the connect and of every Redis reply; jobs of a call not "
     "answered in time are reported as not confirmed.",
     offsetof(struct push_config, redis_timeout_ms), 100, 600000, false},
};

const struct llmb_opt_set push_opt_set = {
    "llmb-push",
    "[OPTIONS] TYPE [PAYLOAD_JSON]\n   or: llmb-push --batch [OPTIONS] [FILE|-]",
    "Pushes a job to an llmb queue and prints its id. PAYLOAD_JSON is any "
    "JSON (default {}); \"-\" reads it from stdin. With --batch, reads one "
    "job document per line (the job contract of docs/data-model.md), "
    "pushes them pipelined and prints one id per accepted line; a rejected "
    "line is reported with its number on stderr and the others go on. A job "
    "without an id gets NONCE-LINE (NONCE random per run, LINE its input "
    "line in base 36); when a run stops before every job is confirmed, running the "
    "same command again finishes it without duplicates (see --journal).",
    push_opts,
    sizeof(push_opts) / sizeof(push_opts[0]),
    NULL,
    0,
    true,
};
