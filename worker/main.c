/*
 * llmb-worker: loads the configuration, starts logging, builds the worker
 * core (worker.c and friends), runs the libev loop until the core breaks
 * it after a drain, and exits with a sysexits code: 0 after a clean
 * shutdown, 64 for a usage error, 78 for a bad configuration, a worker id
 * that another running worker owns included.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <ev.h>

#include <llmb/config.h>
#include <llmb/log.h>

#include "config.h"
#include "executors/executors.h"
#include "worker.h"

int main(int argc, char **argv)
{
    struct llmb_worker_config cfg = {0};
    struct llmb_worker *w = NULL;
    enum llmb_log_level level = LLMB_LOG_INFO;
    char *err = NULL;
    int rc = 0;
    int code = EX_OK;

    /* The exec executor runs this binary again as each task's supervisor
     * (executors/exec_supervisor.c). */
    if (argc > 1 && strcmp(argv[1], LLMB_EXEC_SUPERVISOR_ARG) == 0)
        return llmb_exec_supervise(argc, argv);
    rc = llmb_config_load(&llmb_worker_opt_set, &cfg, argc, argv, NULL, &err);
    if (rc == 1)
        goto out;
    if (rc != 0) {
        fprintf(stderr, "llmb-worker: %s\n", err);
        code = EX_USAGE;
        goto out;
    }
    if (cfg.common.log_level != NULL)
        llmb_log_level_parse(cfg.common.log_level, &level);
    llmb_log_init("worker", level);

    w = llmb_worker_new(&cfg, &err);
    if (w == NULL) {
        fprintf(stderr, "llmb-worker: %s\n", err);
        code = EX_CONFIG;
        goto out;
    }
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    if (llmb_worker_attach(w, loop, &err) != 0) {
        fprintf(stderr, "llmb-worker: %s\n", err);
        code = EX_CONFIG;
        goto out;
    }
    ev_run(loop, 0);
    if (llmb_worker_status(w) != 0)
        code = EX_CONFIG;

out:
    llmb_worker_free(w);
    llmb_config_free(&llmb_worker_opt_set, &cfg);
    free(err);
    return code;
}
