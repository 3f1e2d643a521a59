/*
 * The executors built into llmb-worker. Each is a struct llmb_executor
 * (include/llmb/executor.h), the same ABI a plugin implements, so the
 * worker runs every handler the same way.
 */
#ifndef LLMB_WORKER_EXECUTORS_H
#define LLMB_WORKER_EXECUTORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <llmb/executor.h>
#include <llmb/util.h>

/* noop: result {}. sleep: waits payload "ms" milliseconds, result
 * {"slept_ms": N}. echo: result is the payload, wrapped as {"value": ...}
 * unless it is an object. fail: fails with payload "message" (fatal when
 * payload "fatal" is true). */
extern const struct llmb_executor llmb_executor_noop;
extern const struct llmb_executor llmb_executor_sleep;
extern const struct llmb_executor llmb_executor_echo;
extern const struct llmb_executor llmb_executor_fail;

/* exec: runs a program per task (executors/exec.c). Its init() is NULL:
 * instances come from llmb_exec_instance_new(), with the worker's limits. */
extern const struct llmb_executor llmb_executor_exec;

/* The exit status with which an exec program fails its task for good. */
#define LLMB_EXEC_EXIT_FATAL 100
/* Bytes of stderr kept as the error text. */
#define LLMB_EXEC_STDERR_TAIL 4096

/* Makes an exec instance for cmdline ("PROGRAM ARG...", split on spaces).
 * max_output: stdout bytes allowed; kill_grace_ms: SIGTERM to SIGKILL.
 * Returns NULL with a malloc'd message in *errstr when the command line is
 * empty or the program cannot be found or executed. Free with
 * llmb_executor_exec.fini(). */
void *llmb_exec_instance_new(const char *cmdline, size_t max_output,
                             int64_t kill_grace_ms, char **errstr);

/* What an exec child gets besides its argv: the names of the worker's
 * environment variables passed on (PATH, HOME and LANG always are), and
 * resource limits set in the child before exec (0 = inherit). */
struct llmb_exec_hardening {
    const struct llmb_strlist *env; /* --exec-env; NULL = none */
    long long rlimit_cpu_s;         /* RLIMIT_CPU soft; hard is one more */
    long long rlimit_as;            /* RLIMIT_AS, bytes */
    long long rlimit_nofile;        /* RLIMIT_NOFILE */
};

/* Sets the environment allow-list and rlimits of an exec instance (copied;
 * h need not outlive the call). */
void llmb_exec_instance_harden(void *inst,
                               const struct llmb_exec_hardening *h);

/* Judges the stdout (len bytes at out) of an exec program that exited 0:
 * appends the result object, or the error text, to msg and returns
 * LLMB_EXEC_OK or LLMB_EXEC_ERROR. */
enum llmb_exec_status llmb_exec_output_parse(const char *out, size_t len,
                                             struct llmb_buf *msg);

/* The exec task supervisor (executors/exec_supervisor.c): exec runs
 * "/proc/self/exe LLMB_EXEC_SUPERVISOR_ARG ..." per task, and main()
 * hands a process started so to llmb_exec_supervise(), which runs the
 * program, kills whatever it leaves behind and returns the exit status of
 * the supervisor process. */
#define LLMB_EXEC_SUPERVISOR_ARG "--internal-exec-supervisor"
int llmb_exec_supervise(int argc, char **argv);

/* A process as /proc/<pid>/stat shows it (executors/exec_proc.c). */
struct llmb_proc {
    pid_t pid, ppid, sid;
    char state;               /* 'R', 'S', 'Z' (zombie), ... */
    unsigned long long start; /* start time, clock ticks after boot */
};

/* A snapshot of processes; zero it before first use. */
struct llmb_proc_list {
    struct llmb_proc *v;
    size_t n, cap;
};

/* Reads process pid; returns 0, or -1 when it is gone. */
int llmb_proc_read(pid_t pid, struct llmb_proc *p);
/* Fills l with every process /proc shows (replacing what l held). */
void llmb_proc_list_all(struct llmb_proc_list *l);
/* Keeps in l only the descendants of root (root not included). */
void llmb_proc_keep_descendants(struct llmb_proc_list *l, pid_t root);
/* Frees what l holds; l can be used again. */
void llmb_proc_list_fini(struct llmb_proc_list *l);
/* Sends sig to p's process if it is still the one listed (same pid and
 * start time; checked through a pidfd, so that a reused pid is never
 * hit). Returns 0, or -1 when it is gone or the signal failed. */
int llmb_proc_signal(const struct llmb_proc *p, int sig);

/* llm and benchmark: LLM serving benchmarks against OpenAI-compatible
 * endpoints (executors/llm*.c, docs/llm.md). llmb_llm_instance_new()
 * makes an instance for the endpoints given with --llm-endpoint (NULL for
 * none); it returns NULL with a malloc'd message in *errstr for a bad
 * value or a key_env that is not set. Free it with the table's fini(). */
extern const struct llmb_executor llmb_executor_llm;
extern const struct llmb_executor llmb_executor_benchmark;
void *llmb_llm_instance_new(bool benchmark,
                            const struct llmb_strlist *endpoints,
                            char **errstr);

/* A plugin loaded with dlopen (executors/plugin.c): its executor table and
 * the library handle. */
struct llmb_plugin {
    const struct llmb_executor *ops;
    void *dl;
};

/* Loads the shared object at path and checks its ABI version. Returns 0,
 * or -1 with a malloc'd message in *errstr. */
int llmb_plugin_load(const char *path, struct llmb_plugin *out, char **errstr);

/* dlcloses the library; accepts a zeroed struct. */
void llmb_plugin_unload(struct llmb_plugin *p);

#endif
