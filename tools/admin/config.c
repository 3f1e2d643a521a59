/*
 * The command line of the llmb CLI. One table holds every option any
 * command takes; each command names the options it accepts (commands.c),
 * and this file builds that command's struct llmb_opt_set from the table,
 * so the config engine in lib/config.c parses, checks and documents
 * exactly those (plus the common --redis, --prefix, --log-level and
 * --config). llmb_admin_config_load() is everything main() needs before
 * it connects: the command, its options and its arguments, checked.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/job.h>
#include <llmb/keys.h>

#include "admin.h"

static const struct llmb_opt admin_opts[] = {
    {"json", 0, NULL, LLMB_OPT_BOOL, "false", NULL,
     "Print one JSON document on stdout instead of tables.",
     offsetof(struct llmb_admin_config, json), 0, 0, false},
    {"queue", 'q', NULL, LLMB_OPT_STR, NULL, "QUEUE",
     "The queue to look at (default: every queue of <prefix>:queues).",
     offsetof(struct llmb_admin_config, queue), 0, 0, false},
    {"state", 0, NULL, LLMB_OPT_STR, NULL, "STATE",
     "Only jobs in this state: pending, running, completed, failed or "
     "cancelled.",
     offsetof(struct llmb_admin_config, state), 0, 0, false},
    {"limit", 'n', NULL, LLMB_OPT_INT, LLMB_ADMIN_LIMIT_DEFAULT, "N",
     "Most jobs to list.",
     offsetof(struct llmb_admin_config, limit), 1, LLMB_ADMIN_LIMIT_MAX,
     false},
    {"tasks", 0, NULL, LLMB_OPT_INT, LLMB_ADMIN_TASKS_DEFAULT, "N",
     "Tasks to list one by one (the first N); every task is counted in the "
     "summary.",
     offsetof(struct llmb_admin_config, tasks), 0, LLMB_ADMIN_TASKS_MAX,
     false},
    {"yes", 'y', NULL, LLMB_OPT_BOOL, "false", NULL,
     "Confirm that the queue's waiting jobs are to be cancelled.",
     offsetof(struct llmb_admin_config, yes), 0, 0, false},
    {"dead", 0, NULL, LLMB_OPT_BOOL, "false", NULL,
     "Retry every job of the dead set instead of one job.",
     offsetof(struct llmb_admin_config, dead), 0, 0, false},
    {"coordinator", 0, NULL, LLMB_OPT_STR, NULL, "URL",
     "Also read a coordinator's health at http://HOST:PORT (its "
     "--metrics-addr; the path defaults to /healthz).",
     offsetof(struct llmb_admin_config, coordinator), 0, 0, false},
    {"worker", 0, NULL, LLMB_OPT_STR, NULL, "ID",
     "Also check that worker ID is registered, not dead, and heartbeated "
     "within --stale-ms.",
     offsetof(struct llmb_admin_config, worker), 0, 0, false},
    {"live", 0, NULL, LLMB_OPT_BOOL, "false", NULL,
     "Liveness only: pass unless the process itself is found not to "
     "answer (the coordinator's HTTP server is down, or Redis answers and "
     "the worker's record is stale); an unreachable Redis passes.",
     offsetof(struct llmb_admin_config, live), 0, 0, false},
    {"stale-ms", 0, NULL, LLMB_OPT_INT, LLMB_ADMIN_STALE_MS_DEFAULT, "MS",
     "A worker whose last heartbeat is older than this is unhealthy.",
     offsetof(struct llmb_admin_config, stale_ms), 1, 86400000, false},
    {"timeout-ms", 0, NULL, LLMB_OPT_INT, LLMB_ADMIN_HEALTH_TIMEOUT_DEFAULT,
     "MS", "How long each check (Redis, the coordinator) may take.",
     offsetof(struct llmb_admin_config, timeout_ms), 100, 60000, false},
    {"format", 0, NULL, LLMB_OPT_STR, "jsonl", "FORMAT",
     "export: jsonl (one JSON object a request), csv (a header row, then "
     "a row a request) or vllm (one document like vLLM's benchmark "
     "result).",
     offsetof(struct llmb_admin_config, format), 0, 0, false},
    {"output", 'o', NULL, LLMB_OPT_STR, NULL, "FILE",
     "export, report: write to FILE instead of stdout.",
     offsetof(struct llmb_admin_config, output), 0, 0, false},
    {"addr", 0, NULL, LLMB_OPT_STR, "127.0.0.1:8080", "HOST:PORT",
     "web: listen on HOST:PORT, [IPV6]:PORT or :PORT (every address).",
     offsetof(struct llmb_admin_config, addr), 0, 0, false},
    {"token-env", 0, NULL, LLMB_OPT_STR, NULL, "VAR",
     "web: the environment variable holding the token that the actions "
     "(cancel, retry, purge, pause, resume) need; without it the UI is "
     "read-only.",
     offsetof(struct llmb_admin_config, token_env), 0, 0, false},
    {"allow-host", 0, NULL, LLMB_OPT_LIST, NULL, "NAME",
     "web: answer requests whose Host header names NAME too (may repeat); "
     "besides localhost, 127.0.0.1, [::1] and the host of --addr, every "
     "other Host is refused (421), against DNS rebinding.",
     offsetof(struct llmb_admin_config, allow_hosts), 0, 0, false},
    {"max-conns-per-ip", 0, NULL, LLMB_OPT_INT, "16", "N",
     "web: connections one client address may hold open at once (1 to "
     "256, the server's total); one more is refused at once, so that a "
     "client that opens connections and sends nothing (slowloris) cannot "
     "take them all. Behind a reverse proxy every client is the proxy's "
     "address: raise it.",
     offsetof(struct llmb_admin_config, max_conns_per_ip), 1,
     256 /* LLMB_WEB_CONNS_MAX */, false},
    /* sweep (sweep.c checks their values) */
    {"over", 0, NULL, LLMB_OPT_STR, NULL, "PARAM",
     "The payload field each level sets: concurrency or rate.",
     offsetof(struct llmb_admin_config, sweep.over), 0, 0, false},
    {"levels", 0, NULL, LLMB_OPT_LIST, NULL, "L1,L2,...",
     "The values of --over, run in this order, one job each (at most "
     "100; integers for concurrency, req/s for rate).",
     offsetof(struct llmb_admin_config, sweep.levels), 0, 0, false},
    {"job", 0, NULL, LLMB_OPT_STR, NULL, "JSON",
     "The base job document ({\"type\": \"llm\", \"payload\": {...}, "
     "...}) that every level copies.",
     offsetof(struct llmb_admin_config, sweep.job), 0, 0, false},
    {"job-file", 0, NULL, LLMB_OPT_STR, NULL, "FILE",
     "Read the base job document from FILE (\"-\": stdin).",
     offsetof(struct llmb_admin_config, sweep.job_file), 0, 0, false},
    {"id", 0, NULL, LLMB_OPT_STR, NULL, "ID",
     "The sweep's id: level L's job is ID-PARAM-L (default: a random id).",
     offsetof(struct llmb_admin_config, sweep.id), 0, 0, false},
    {"stop-on-slo", 0, NULL, LLMB_OPT_BOOL, "false", NULL,
     "Stop after the first level that breaks the payload's slo (see "
     "--slo-min-good and --slo-percentile).",
     offsetof(struct llmb_admin_config, sweep.stop_on_slo), 0, 0, false},
    {"slo-min-good", 0, NULL, LLMB_OPT_STR, "0.9", "FRACTION",
     "A level breaks the slo when its goodput is below FRACTION of its "
     "request throughput (every request sent, failed ones too).",
     offsetof(struct llmb_admin_config, sweep.slo_min_good), 0, 0, false},
    {"slo-percentile", 0, NULL, LLMB_OPT_STR, NULL, "P",
     "Also break when percentile P (p50, p90 or p99) of a metric the slo "
     "names is over its threshold.",
     offsetof(struct llmb_admin_config, sweep.slo_percentile), 0, 0, false},
};
#define NADMIN_OPTS (sizeof(admin_opts) / sizeof(admin_opts[0]))

static const char top_summary[] =
    "llmb inspects and repairs an llmb job queue in Redis: statistics, "
    "workers, queues and jobs as tables for people or, with --json, as one "
    "JSON document for scripts; cancel, retry and purge of jobs; and a "
    "health probe for containers.";

/* True when name is an entry of the comma-separated list. */
static bool listed(const char *list, const char *name)
{
    size_t len = strlen(name);

    for (const char *p = list; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, ",");
        if (n == len && strncmp(p, name, len) == 0)
            return true;
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

void llmb_admin_opt_set_init(struct llmb_opt_set *set,
                             const struct llmb_command *cmd)
{
    struct llmb_opt *opts = llmb_xcalloc(NADMIN_OPTS, sizeof(*opts));
    size_t n = 0;

    for (size_t i = 0; i < NADMIN_OPTS; i++)
        if (listed(cmd ? cmd->options : "json", admin_opts[i].name))
            opts[n++] = admin_opts[i];
    memset(set, 0, sizeof(*set));
    set->cluster = true; /* every command routes by key (lib/cluster.c) */
    set->opts = opts;
    set->nopts = n;
    if (cmd == NULL) {
        set->prog = llmb_xstrdup("llmb");
        set->usage = "[OPTIONS] COMMAND [ARGS]";
        set->summary = top_summary;
    } else {
        set->prog = llmb_xasprintf("llmb %s", cmd->name);
        set->usage = cmd->usage;
        set->summary = cmd->summary;
    }
}

bool llmb_admin_job_state_ok(const char *s)
{
    return llmb_job_state_parse(s) >= 0;
}

int llmb_admin_config_check(const struct llmb_admin_config *cfg,
                            char **errstr)
{
    if (cfg->queue != NULL && !llmb_queue_name_ok(cfg->queue)) {
        *errstr = llmb_name_refusal("--queue", "queue name", cfg->queue,
                                    LLMB_QUEUE_NAME_MAX);
        return LLMB_EINVAL;
    }
    if (cfg->state != NULL && !llmb_admin_job_state_ok(cfg->state)) {
        *errstr = llmb_xasprintf("--state must be " LLMB_ADMIN_JOB_STATES
                                 ", got \"%s\"", cfg->state);
        return LLMB_EINVAL;
    }
    return 0;
}

void llmb_admin_opt_set_fini(struct llmb_opt_set *set)
{
    free((void *)set->opts);
    free((void *)set->prog);
    memset(set, 0, sizeof(*set));
}

/* True when argv asks for help (-h or --help before any "--"). */
static bool wants_help(int argc, char **argv)
{
    for (int k = 1; k < argc && strcmp(argv[k], "--") != 0; k++)
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0)
            return true;
    return false;
}

/* `llmb help [COMMAND]`: prints the help of the command named after "help"
 * in argv, or of llmb. */
static int help_print(int argc, char **argv, const char *word, char **errstr)
{
    const struct llmb_command *cmd = NULL;
    const char *name = NULL;
    struct llmb_opt_set set;

    for (int k = 1; k < argc; k++)
        if (argv[k] == word && k + 1 < argc)
            name = llmb_command_word(argc - k, argv + k);
    if (name != NULL && (cmd = llmb_command_find(name)) == NULL) {
        const char *near = llmb_command_nearest(name);
        *errstr = near != NULL
            ? llmb_xasprintf("unknown command \"%s\"; did you mean %s? See "
                             "llmb --help", name, near)
            : llmb_xasprintf("unknown command \"%s\"; see llmb --help",
                             name);
        return LLMB_EINVAL;
    }
    llmb_admin_opt_set_init(&set, cmd);
    llmb_config_help(&set, stdout);
    if (cmd == NULL)
        llmb_command_list_print(stdout);
    llmb_admin_opt_set_fini(&set);
    return 1;
}

/* Checks the number of arguments cmd got after its name. */
static int args_check(const struct llmb_command *cmd,
                      const struct llmb_strlist *pos, char **errstr)
{
    size_t n = pos->n - 1;

    if (n < cmd->min_args) {
        *errstr = llmb_xasprintf("%s: missing argument; usage: llmb %s %s",
                                 cmd->name, cmd->name, cmd->usage);
        return LLMB_EINVAL;
    }
    if (n > cmd->max_args) {
        *errstr = llmb_xasprintf("%s: unexpected argument \"%s\"; usage: "
                                 "llmb %s %s", cmd->name,
                                 pos->v[1 + cmd->max_args], cmd->name,
                                 cmd->usage);
        return LLMB_EINVAL;
    }
    return 0;
}

int llmb_admin_config_load(int argc, char **argv,
                           struct llmb_admin_config *cfg,
                           struct llmb_opt_set *set,
                           const struct llmb_command **cmd,
                           struct llmb_strlist *pos, char **errstr)
{
    const char *word = llmb_command_word(argc, argv);
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    *cmd = NULL;
    *errstr = NULL;
    llmb_admin_opt_set_init(set, NULL);
    if (word != NULL && strcmp(word, "help") == 0)
        return help_print(argc, argv, word, errstr);
    if (word != NULL && (*cmd = llmb_command_find(word)) == NULL) {
        const char *near = llmb_command_nearest(word);
        *errstr = near != NULL
            ? llmb_xasprintf("unknown command \"%s\"; did you mean %s? See "
                             "llmb --help", word, near)
            : llmb_xasprintf("unknown command \"%s\"; see llmb --help",
                             word);
        return LLMB_EINVAL;
    }

    llmb_admin_opt_set_fini(set);
    llmb_admin_opt_set_init(set, *cmd);
    rc = llmb_config_load(set, cfg, argc, argv, pos, errstr);
    if (rc == 1 && *cmd == NULL && wants_help(argc, argv))
        llmb_command_list_print(stdout);
    if (rc != 0)
        return rc < 0 ? LLMB_EINVAL : rc;
    if (*cmd == NULL) {
        *errstr = llmb_xstrdup("no command given: stats, workers, queues, "
                               "jobs, show, cancel, retry, purge, health, "
                               "export, compare or sweep; see llmb --help");
        return LLMB_EINVAL;
    }
    rc = args_check(*cmd, pos, errstr);
    if (rc == 0)
        rc = llmb_admin_config_check(cfg, errstr);
    return rc;
}
