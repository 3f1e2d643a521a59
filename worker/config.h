/*
 * llmb-worker's configuration: the struct that llmb_config_load() fills
 * from the option table in config.c (defaults < config file < LLMB_*
 * environment < flags), and what the core derives from it.
 */
#ifndef LLMB_WORKER_CONFIG_H
#define LLMB_WORKER_CONFIG_H

#include <stdbool.h>

#include <llmb/config.h>
#include <llmb/util.h>

/* Filled by llmb_config_load(&llmb_worker_opt_set, ...); freed with
 * llmb_config_free(). */
struct llmb_worker_config {
    struct llmb_common common;    /* --redis, --prefix, --log-level, --config */
    struct llmb_strlist queues;   /* served in this order */
    long long capacity;           /* most tasks at once; 0 = CPUs */
    char *id;                     /* worker id; NULL = host-pid-random */
    struct llmb_strlist tags;     /* free-form labels */
    long long heartbeat_ms;
    long long lease_ms;
    long long grace_s;            /* drain time on SIGTERM */
    struct llmb_strlist handlers; /* TYPE=SPEC */
    long long no_handler_fail_after_s; /* unserved type: fail after */
    long long max_output_bytes;   /* exec stdout limit */
    long long kill_grace_ms;      /* SIGTERM to SIGKILL */
    long long command_timeout_ms; /* redis watchdog */
    struct llmb_strlist exec_env; /* names passed to exec programs */
    long long exec_rlimit_cpu;    /* seconds; 0 = none */
    long long exec_rlimit_as;     /* bytes; 0 = none */
    long long exec_rlimit_nofile; /* 0 = none */
    struct llmb_strlist llm_endpoints; /* NAME=BASE_URL[,key_env=VAR] */
};

extern const struct llmb_opt_set llmb_worker_opt_set;

/* A default worker id: "<host>-<pid>-<6 random hex>", the host name cut
 * to 64 characters with characters outside [A-Za-z0-9_.-] as '-'. The
 * caller frees it. */
char *llmb_worker_id_default(void);

/* Checks what the table cannot (queue names, the worker id, lease against
 * heartbeat). Returns 0, or LLMB_ECONFIG with a malloc'd message. */
int llmb_worker_config_check(const struct llmb_worker_config *cfg,
                             char **errstr);

#endif
