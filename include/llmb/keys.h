/*
 * Key names. Every queue key is its base key "<prefix>:{<queue>}" plus a
 * suffix (docs/data-model.md); the functions in lua/ take the base key and
 * derive the rest. Keys that span queues (the queue and worker registries)
 * are "<prefix>:<name>".
 */
#ifndef LLMB_KEYS_H
#define LLMB_KEYS_H

#include <stdbool.h>

#define LLMB_QUEUE_NAME_MAX 64
#define LLMB_JOB_ID_MAX 128
#define LLMB_WORKER_ID_MAX 128

/* True when q is a valid queue name: 1 to 64 characters from
 * [A-Za-z0-9_.-]. */
bool llmb_queue_name_ok(const char *q);
/* True when id is a valid job id: 1 to 128 characters from [A-Za-z0-9_.-]. */
bool llmb_job_id_ok(const char *id);
/* True when id is a valid worker id: 1 to LLMB_WORKER_ID_MAX (128)
 * characters from [A-Za-z0-9_.-]. */
bool llmb_worker_id_ok(const char *id);
/* The message refusing `name` as a <noun> ("queue name") of 1 to max
 * characters from [A-Za-z0-9_.-]: given by option opt ("--queue"),
 * '<opt> must be a <noun> of 1 to <max> characters from [A-Za-z0-9_.-],
 * got "<name>"'; as an argument (opt NULL), '<noun> "<name>" must be 1 to
 * <max> characters from [A-Za-z0-9_.-]'. The caller frees it. */
char *llmb_name_refusal(const char *opt, const char *noun, const char *name,
                        int max);

/* "<prefix>:{<queue>}", the key every function of that queue is called
 * with. The caller frees the result. */
char *llmb_key_queue(const char *prefix, const char *queue);
/* "<prefix>:{<queue>}:<suffix>", e.g. suffix "pending" or "j:<id>". */
char *llmb_key_queue_sub(const char *prefix, const char *queue,
                         const char *suffix);
/* "<prefix>:<name>", e.g. "queues", "workers", "worker:<id>". */
char *llmb_key_global(const char *prefix, const char *name);

#endif
