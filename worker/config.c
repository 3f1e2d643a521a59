/*
 * llmb-worker's option table. One row per option drives defaults, the
 * config file, LLMB_* environment variables, flags, --help and
 * --dump-config (lib/config.c); this file adds the checks that span
 * options and the default worker id.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llmb/err.h>
#include <llmb/keys.h>

#include "config.h"

#define OPT(name, env, type, def, meta, help, field, min, max)              \
    {name, 0, env, type, def, meta, help,                                   \
     offsetof(struct llmb_worker_config, field), min, max, false}

static const struct llmb_opt worker_opts[] = {
    OPT("queues", "LLMB_QUEUES", LLMB_OPT_LIST, "default", "Q1,Q2",
        "Queues to serve, highest precedence first.", queues, 0, 0),
    OPT("capacity", "LLMB_CAPACITY", LLMB_OPT_INT, "0", "N",
        "Most tasks run at once (0 = the number of CPUs).", capacity, 0,
        100000),
    OPT("id", "LLMB_WORKER_ID", LLMB_OPT_STR, NULL, "ID",
        "Worker id, [A-Za-z0-9_.-] (default host-pid-random). One running "
        "worker per id: a worker started with the id of a running one exits "
        "with status 78.", id, 0, 0),
    OPT("tags", "LLMB_TAGS", LLMB_OPT_LIST, NULL, "T1,T2",
        "Free-form labels shown in the worker registry.", tags, 0, 0),
    OPT("heartbeat-ms", "LLMB_HEARTBEAT_MS", LLMB_OPT_INT, "5000", "MS",
        "Interval of lease renewals and registry updates.", heartbeat_ms,
        50, 3600000),
    OPT("lease-ms", "LLMB_LEASE_MS", LLMB_OPT_INT, "30000", "MS",
        "Lease of a claimed task; a worker silent this long loses it.",
        lease_ms, 100, 86400000),
    OPT("grace", "LLMB_GRACE", LLMB_OPT_INT, "30", "S",
        "On SIGTERM, seconds to let running tasks finish before releasing "
        "them.", grace_s, 0, 86400),
    OPT("handler", "LLMB_HANDLERS", LLMB_OPT_LIST,
        "noop=noop,sleep=sleep,echo=echo,fail=fail,llm=llm,"
        "benchmark=benchmark", "TYPE=SPEC",
        "Handler of a job type (* = any): noop, sleep, echo, fail, llm, "
        "benchmark, exec:PROGRAM ARGS or plugin:/path/lib.so [CONFIG]; "
        "repeatable. See docs/executors.md.", handlers, 0, 0),
    OPT("no-handler-fail-after-s", "LLMB_NO_HANDLER_FAIL_AFTER_S",
        LLMB_OPT_INT, "60", "S",
        "A task of a type this worker has no handler for is handed back "
        "(no attempt spent) while a live worker of its queue handles the "
        "type; it fails for good once none has for this long (0 = at "
        "once).", no_handler_fail_after_s, 0, 604800),
    OPT("max-output-bytes", "LLMB_MAX_OUTPUT_BYTES", LLMB_OPT_INT, "1048576",
        "BYTES", "Largest stdout of an exec handler; more fails the task.",
        max_output_bytes, 2, 1073741824),
    OPT("kill-grace-ms", "LLMB_KILL_GRACE_MS", LLMB_OPT_INT, "2000", "MS",
        "Time between SIGTERM and SIGKILL when an exec task is stopped.",
        kill_grace_ms, 0, 600000),
    OPT("redis-timeout-ms", "LLMB_REDIS_TIMEOUT_MS", LLMB_OPT_INT,
        "10000", "MS",
        "A Redis command unanswered this long drops the connection.",
        command_timeout_ms, 100, 3600000),
    OPT("exec-env", "LLMB_EXEC_ENV", LLMB_OPT_LIST, NULL, "NAME",
        "Environment variable passed on to exec programs, besides PATH, "
        "HOME and LANG (the rest of the worker's environment is not); "
        "repeatable.", exec_env, 0, 0),
    OPT("exec-rlimit-cpu", "LLMB_EXEC_RLIMIT_CPU", LLMB_OPT_INT, "0", "S",
        "CPU seconds an exec program may use (RLIMIT_CPU; 0 = no limit).",
        exec_rlimit_cpu, 0, 31536000),
    OPT("exec-rlimit-as", "LLMB_EXEC_RLIMIT_AS", LLMB_OPT_INT, "0", "BYTES",
        "Address space of an exec program (RLIMIT_AS; 0 = no limit).",
        exec_rlimit_as, 0, 0),
    OPT("exec-rlimit-nofile", "LLMB_EXEC_RLIMIT_NOFILE", LLMB_OPT_INT, "0",
        "N", "Open files of an exec program (RLIMIT_NOFILE; 0 = no limit).",
        exec_rlimit_nofile, 0, 1048576),
    OPT("llm-endpoint", "LLMB_LLM_ENDPOINTS", LLMB_OPT_LIST, NULL,
        "NAME=BASE_URL[,key_env=VAR][,client=llmb|libcurl]",
        "An OpenAI-compatible endpoint of the llm and benchmark handlers; "
        "the API key is read from the worker's environment variable VAR. "
        "Plain http:// goes through llmb's own HTTP/1.1 client unless "
        "client=libcurl. Repeatable. See docs/llm.md.", llm_endpoints, 0, 0),
};

/* The names the other programs give the same things: llmb-push and the
 * llmb CLI call a queue --queue, the coordinator and llmb-push call the
 * Redis command limit --redis-timeout-ms. The old spellings work, with a
 * warning. */
static const struct llmb_opt_alias worker_aliases[] = {
    {"queue", "queues", NULL},
    {"command-timeout-ms", "redis-timeout-ms", "LLMB_COMMAND_TIMEOUT_MS"},
};

const struct llmb_opt_set llmb_worker_opt_set = {
    "llmb-worker",
    "[OPTIONS]",
    "Serves llmb queues: claims tasks while it has free capacity, runs each "
    "with the handler configured for its job type, renews their leases and "
    "reports results to Redis. SIGTERM or SIGINT drains: no new tasks, "
    "running ones get --grace seconds, the rest go back to their queues; a "
    "second signal releases them at once.",
    worker_opts,
    sizeof(worker_opts) / sizeof(worker_opts[0]),
    worker_aliases,
    sizeof(worker_aliases) / sizeof(worker_aliases[0]),
    true,
};

static bool id_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

char *llmb_worker_id_default(void)
{
    char host[256] = "";
    char rnd[7];

    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
        strcpy(host, "worker");
    host[64] = '\0';
    for (char *p = host; *p != '\0'; p++)
        if (!id_char_ok(*p))
            *p = '-';
    if (llmb_random_hex(rnd, 3) != 0)
        snprintf(rnd, sizeof(rnd), "%06lx", (unsigned long)random() & 0xffffff);
    return llmb_xasprintf("%s-%ld-%s", host, (long)getpid(), rnd);
}

int llmb_worker_config_check(const struct llmb_worker_config *cfg,
                             char **errstr)
{
    if (cfg->queues.n == 0) {
        *errstr = llmb_xstrdup("--queues must name at least one queue");
        return LLMB_ECONFIG;
    }
    for (size_t i = 0; i < cfg->queues.n; i++) {
        if (!llmb_queue_name_ok(cfg->queues.v[i])) {
            *errstr = llmb_xasprintf("--queues: queue name \"%s\" must be 1 "
                                     "to 64 characters from [A-Za-z0-9_.-]",
                                     cfg->queues.v[i]);
            return LLMB_ECONFIG;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->queues.v[i], cfg->queues.v[j]) == 0) {
                *errstr = llmb_xasprintf("--queues names queue \"%s\" twice",
                                         cfg->queues.v[i]);
                return LLMB_ECONFIG;
            }
        }
    }
    if (cfg->id != NULL && !llmb_worker_id_ok(cfg->id)) {
        *errstr = llmb_name_refusal("--id", "worker id", cfg->id,
                                    LLMB_WORKER_ID_MAX);
        return LLMB_ECONFIG;
    }
    for (size_t i = 0; i < cfg->exec_env.n; i++) {
        const char *name = cfg->exec_env.v[i];
        if (name[0] == '\0' || strchr(name, '=') != NULL ||
            strncmp(name, "LLMB_", 5) == 0) {
            *errstr = llmb_xasprintf("--exec-env: \"%s\" must be the name "
                                     "of a variable, not LLMB_* (those can "
                                     "hold the Redis password)", name);
            return LLMB_ECONFIG;
        }
    }
    if (cfg->exec_rlimit_as < 0) {
        *errstr = llmb_xstrdup("--exec-rlimit-as must not be negative");
        return LLMB_ECONFIG;
    }
    if (cfg->lease_ms <= cfg->heartbeat_ms) {
        *errstr = llmb_xasprintf("--lease-ms (%lld) must be longer than "
                                 "--heartbeat-ms (%lld), or every lease "
                                 "runs out between two heartbeats",
                                 cfg->lease_ms, cfg->heartbeat_ms);
        return LLMB_ECONFIG;
    }
    return 0;
}
