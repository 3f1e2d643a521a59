/*
 * The table of llmb's subcommands: what each is called, what it takes and
 * which function runs it. main() finds the command word in argv with
 * llmb_command_word() before any option is parsed, so that the option set
 * it then loads is that command's own: `llmb show --help` describes
 * `show`, and an option the command does not take is an error.
 */
#include <stdint.h>
#include <string.h>

#include "admin.h"

static const struct llmb_command commands[] = {
    {"stats", "[OPTIONS]", "Summary of every queue, the workers and the "
     "coordinator's metrics.",
     "Prints per queue the tasks pending, delayed and running, the jobs "
     "kept, the dead jobs and the age of the oldest waiting task; the "
     "workers by state with their capacity and counters; and the "
     "coordinator's cluster metrics (the hash <prefix>:metrics) when a "
     "coordinator wrote them.",
     "json,queue", 0, 0, NULL, llmb_stats_run, false},
    {"workers", "[OPTIONS]", "The workers: host, queues, state, load, "
     "last heartbeat.",
     "Lists every worker of the sorted set <prefix>:workers with its host, "
     "pid, queues, state, capacity, running tasks, completed and failed "
     "counts, and how long ago it last heartbeated.",
     "json", 0, 0, NULL, llmb_workers_run, false},
    {"queues", "[OPTIONS]", "The known queues with their depth and age.",
     "Lists every queue of the set <prefix>:queues: tasks pending, delayed "
     "and running, dead jobs, jobs kept and the age of the job at the head "
     "of the queue.",
     "json,queue", 0, 0, NULL, llmb_queues_run, false},
    {"jobs", "[OPTIONS]", "The newest jobs, of one queue or all.",
     "Lists the newest jobs first, of --queue or of every known queue, "
     "with state, progress and age. --state keeps the jobs in one state "
     "(pending, running, completed, failed, cancelled); at most 100000 jobs "
     "per queue are read to find them.",
     "json,queue,state,limit", 0, 0, NULL, llmb_jobs_run, false},
    {"show", "[OPTIONS] JOB", "A job: spec, state, counters, tasks, "
     "aggregate.",
     "Prints job JOB (an id, or QUEUE/ID) with its spec, state, counters "
     "and times, the state of every task (summarised for a fan-out, the "
     "first --tasks tasks in detail with attempt, worker and error) and "
     "the aggregate of its results.",
     "json,queue,tasks", 1, 1, NULL, llmb_show_run, false},
    {"cancel", "[OPTIONS] JOB", "Cancel a job.",
     "Cancels job JOB (an id, or QUEUE/ID): its waiting tasks are removed "
     "at once and its running tasks stop at their worker's next heartbeat.",
     "json,queue", 1, 1, NULL, llmb_cancel_run, false},
    {"retry", "[OPTIONS] JOB | --dead", "Run a failed or cancelled job "
     "again, or every dead job.",
     "Runs again every task that did not complete of job JOB (an id, or "
     "QUEUE/ID), which must have failed or been cancelled. With --dead, "
     "does that for every job of the dead set of --queue, or of every "
     "known queue.",
     "json,queue,dead", 0, 1, llmb_retry_check, llmb_retry_run, false},
    {"purge", "[OPTIONS] --queue QUEUE --yes", "Cancel every waiting job "
     "of a queue.",
     "Cancels every job that has tasks waiting (pending or delayed) in "
     "queue QUEUE, a thousand tasks per call, until nothing waits. Running "
     "tasks of those jobs stop at their next heartbeat. Asks for --yes.",
     "json,queue,yes", 0, 0, llmb_purge_check, llmb_purge_run, false},
    {"pause", "[OPTIONS] QUEUE", "Stop workers claiming from a queue.",
     "Pauses queue QUEUE: workers claim nothing from it until it is "
     "resumed. Pushes are still accepted and running tasks go on. Pausing "
     "a paused queue changes nothing.",
     "json", 1, 1, NULL, llmb_pause_run, false},
    {"resume", "[OPTIONS] QUEUE", "Let workers claim from a paused queue "
     "again.",
     "Resumes queue QUEUE, paused by llmb pause, and wakes the idle "
     "workers so that they claim what waited.",
     "json", 1, 1, NULL, llmb_resume_run, false},
    {"web", "[OPTIONS]", "Serve the web UI: dashboard, jobs, live "
     "updates.",
     "Serves the web UI and its JSON API on --addr (127.0.0.1:8080): the "
     "queues, workers, jobs and benchmark results, updated live by "
     "Server-Sent Events. Reads Redis only; the actions (cancel, retry, "
     "purge, pause, resume) need the token held by the variable that "
     "--token-env names, and without it the UI is read-only. Runs until "
     "SIGINT or SIGTERM (docs/web.md).",
     "addr,token-env,allow-host,max-conns-per-ip", 0, 0, llmb_web_check,
     llmb_web_run,
     true},
    {"health", "[OPTIONS]", "Probe: Redis, the library, a coordinator, a "
     "worker.",
     "Checks that Redis answers and runs the llmb function library (it is "
     "loaded when missing, as every llmb command does), and with "
     "--coordinator a coordinator's /healthz, with --worker a worker's "
     "registry record. Prints one line per check and the overall status. "
     "Exit status 0 healthy or degraded, 1 unhealthy, 64 usage: made for "
     "container health checks and Kubernetes probes (docs/cli.md).",
     "json,coordinator,worker,live,stale-ms,timeout-ms", 0, 0,
     llmb_health_check, llmb_health_run, true},
    {"export", "[OPTIONS] JOB", "Every request of an llm job, as JSON lines, "
     "CSV or vLLM's result JSON.",
     "Writes the per-request records of job JOB (an id, or QUEUE/ID), "
     "each request once (per task, the records of the attempt that "
     "completed), on stdout or to --output: --format jsonl (one object a "
     "request), csv (a header row, then a row a request) or vllm (one "
     "document with the fields of vLLM's benchmark result JSON, its "
     "summary from the job's aggregate). JOB@ENDPOINT/MODEL exports one "
     "pair of an A/B job. Reads 100 record chunks at a "
     "time; warns on stderr when max_record_bytes dropped some.",
     "format,output,queue", 1, 1, llmb_export_check, llmb_export_run,
     false},
    {"compare", "[OPTIONS] JOB_A JOB_B [JOB...]", "The main numbers of llm "
     "jobs side by side, with deltas.",
     "Prints request and output throughput, goodput, TTFT, ITL, TPOT and "
     "E2E p50/p99, errors and requests of each job (an id, or QUEUE/ID) "
     "from its aggregate, with each job's difference to the first job, "
     "absolute and in percent. JOB@ENDPOINT/MODEL is one pair of an A/B "
     "job (\"endpoints\"/\"models\" in its payload); an A/B job alone "
     "compares its pairs. A job not aggregated yet is an error.",
     "json,queue", 1, 16, NULL, llmb_compare_run, false},
    {"sweep", "[OPTIONS] --over PARAM --levels L,... --job JSON", "Run an "
     "llm benchmark job per concurrency or rate level, one after another.",
     "Pushes one llm (or benchmark) job per level of --over (concurrency or "
     "rate), the base job with the level set in its payload and the id "
     "<sweep id>-<param>-<level>, waits for each to end and be aggregated "
     "before the next, and prints one row per level: requests, request and "
     "output throughput, goodput, TTFT, ITL and TPOT p50/p99, errors. "
     "--stop-on-slo ends the sweep after the first level that breaks the "
     "payload's slo. Ctrl-C cancels the running level's job (docs/cli.md).",
     "json,queue,over,levels,job,job-file,id,stop-on-slo,slo-min-good,"
     "slo-percentile", 0, 0, llmb_sweep_check, llmb_sweep_run, false},
    {"report", "[OPTIONS] JOB [JOB...] -o FILE", "One HTML file with the "
     "web UI's view of jobs: charts, tables, comparison.",
     "Writes a self-contained HTML report of the jobs (an id, or QUEUE/ID; "
     "JOB@ENDPOINT/MODEL names a pair of an A/B job) to --output (stdout "
     "without it): for each job what the web UI's job page shows (spec, "
     "tasks, timeline, aggregate; for llm jobs the latency distributions, "
     "SLO and goodput, the pairs of an A/B job, a sweep's levels when the "
     "report holds them) and, for several jobs, their comparison. Data, "
     "script and styles are inside the file: it opens from disk and makes "
     "no network request (docs/web.md).",
     "output,queue", 1, 16, NULL, llmb_report_run, false},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

const char *llmb_command_nearest(const char *name)
{
    const char *best = NULL;
    size_t bd = SIZE_MAX, n = strlen(name);

    for (size_t i = 0; i < NCOMMANDS; i++) {
        size_t d = llmb_edit_distance(name, n, commands[i].name,
                                      strlen(commands[i].name));
        if (d < bd) {
            bd = d;
            best = commands[i].name;
        }
    }
    return bd <= (n <= 5 ? 1u : 2u) ? best : NULL;
}

const struct llmb_command *llmb_command_find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

void llmb_command_list_print(FILE *out)
{
    fprintf(out, "\nCommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].brief);
    fprintf(out, "\nRun \"llmb COMMAND --help\" for the options of a "
                 "command.\nOptions may come before or after the command.\n");
}

/* True when the long option `name` (up to '=' or the end) takes a value
 * as the next argument. */
static bool long_takes_value(const char *name)
{
    static const char *const with_value[] = {
        "redis", "prefix", "log-level", "config", "queue", "state", "limit",
        "tasks", "coordinator", "worker", "stale-ms", "timeout-ms",
        "format", "output", "addr", "token-env", "allow-host",
        "max-conns-per-ip",
        "over", "levels", "job", "job-file", "id", "slo-min-good",
        "slo-percentile",
    };
    if (strchr(name, '=') != NULL)
        return false;
    for (size_t i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++)
        if (strcmp(name, with_value[i]) == 0)
            return true;
    return false;
}

/* The same for a short option: -q QUEUE, -n N and -o FILE (not
 * -qQUEUE). */
static bool short_takes_value(const char *arg)
{
    return (arg[0] == 'q' || arg[0] == 'n' || arg[0] == 'o') &&
           arg[1] == '\0';
}

const char *llmb_command_word(int argc, char **argv)
{
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k];

        if (strcmp(a, "--") == 0)
            return k + 1 < argc ? argv[k + 1] : NULL;
        if (a[0] != '-' || a[1] == '\0')
            return a;
        if (a[1] == '-' ? long_takes_value(a + 2) : short_takes_value(a + 1))
            k++;
    }
    return NULL;
}
