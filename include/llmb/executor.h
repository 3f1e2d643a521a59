/*
 * The executor ABI: how llmb-worker runs one task. Every handler of the
 * worker implements it (the built-ins, exec, and C plugins loaded with
 * --handler TYPE=plugin:/path/lib.so). A plugin is a shared object that
 * exports one symbol,
 *
 *     const struct llmb_executor llmb_executor_v1 = { LLMB_EXECUTOR_ABI, ... };
 *
 * and needs nothing else from llmb: this header depends only on libev and
 * the C library. docs/executors.md describes the contract in full, and
 * examples/plugin/ is a working plugin.
 *
 * Threading: everything happens on the worker's one thread and its libev
 * loop. An executor never blocks the loop: it starts work (a child
 * process, a socket, a timer, or a thread of its own that reports back
 * through an ev_async) and returns at once.
 */
#ifndef LLMB_EXECUTOR_H
#define LLMB_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

/* Bumped on any incompatible change of the structs below. */
#define LLMB_EXECUTOR_ABI 1

/* The symbol a plugin exports. */
#define LLMB_EXECUTOR_SYMBOL "llmb_executor_v1"

/* One task to run. Owned by the worker; valid from start() until the
 * executor calls done (not after). Strings are NUL-terminated. */
struct llmb_exec_task {
    const char *job;         /* job id */
    long task;               /* task index, 0..tasks-1 */
    long tasks;              /* the job's task count */
    long attempt;            /* 1 for the first run */
    const char *type;        /* job type */
    const char *queue;       /* queue name */
    const char *payload;     /* the payload's JSON text, as pushed */
    size_t payload_len;
    double timeout_s;        /* the job's timeout_s */
    int64_t deadline_ms;     /* wall-clock ms when the worker stops it */
    const char *json;        /* the task document given to exec on stdin:
                                {"job","task","tasks","attempt","type",
                                 "queue","payload","deadline_ms"} */
    size_t json_len;
};

/* How a task ended. */
enum llmb_exec_status {
    LLMB_EXEC_OK = 0,    /* text is the result: a JSON object */
    LLMB_EXEC_ERROR = 1, /* text is the error; retried by the job's policy */
    LLMB_EXEC_FATAL = 2  /* text is the error; failed for good, no retry */
};

/*
 * Reports the end of a task; call it exactly once per start(), from the
 * loop's thread, also after cancel(). It may be called from inside start()
 * (the task finished at once) and from inside cancel(). text (len bytes, need not be
 * NUL-terminated) is copied before done returns. After done the executor
 * must not touch the task or its handle again.
 */
typedef void llmb_exec_done_fn(void *token, enum llmb_exec_status status,
                               const char *text, size_t len);

/* An executor: a table of functions. All are required. */
struct llmb_executor {
    int abi;          /* LLMB_EXECUTOR_ABI */
    const char *name; /* for logs, e.g. "example" */

    /* Makes an instance from the handler's configuration text (what follows
     * the program or library path in the spec; "" when none). Returns the
     * instance, or NULL with a malloc'd message in *errstr: the worker
     * prints it and exits with status 78. */
    void *(*init)(const char *config, char **errstr);

    /* Starts task t on loop. Returns a handle for cancel(), or NULL when
     * done was already called from inside start(). */
    void *(*start)(void *instance, const struct llmb_exec_task *t,
                   struct ev_loop *loop, llmb_exec_done_fn *done,
                   void *token);

    /* Asks the task to stop soon (timeout, cancelled job, lost lease,
     * shutdown). The executor still calls done once the work has stopped;
     * the worker ignores what it reports. Never called after done. */
    void (*cancel)(void *handle);

    /* Frees the instance; no task of it is running any more. */
    void (*fini)(void *instance);
};

#endif
