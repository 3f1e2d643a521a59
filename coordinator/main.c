/*
 * llmb-coordinator: loads the configuration, starts logging, builds the
 * core (coordinator.c) on the default libev loop and runs it until SIGTERM
 * or SIGINT. Exit codes: 0 stopped by a signal (or --help, --dump-config);
 * 64 bad usage or configuration; 69 the metrics address cannot be served;
 * 78 Redis refused the credentials before the first connect. Redis being
 * away, or refusing credentials that worked before, is never a reason to
 * exit.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>

#include <ev.h>

#include <llmb/log.h>

#include "coordinator.h"

int main(int argc, char **argv)
{
    struct llmb_coord_config cfg = {0};
    struct llmb_coord *co = NULL;
    struct ev_loop *loop;
    enum llmb_log_level level = LLMB_LOG_INFO;
    char *errstr = NULL;
    int rc;

    signal(SIGPIPE, SIG_IGN);
    rc = llmb_config_load(&llmb_coord_opt_set, &cfg, argc, argv, NULL,
                          &errstr);
    if (rc < 0) {
        fprintf(stderr, "llmb-coordinator: %s\n", errstr);
        free(errstr);
        llmb_config_free(&llmb_coord_opt_set, &cfg);
        return EX_USAGE;
    }
    if (rc > 0) {
        llmb_config_free(&llmb_coord_opt_set, &cfg);
        return 0;
    }
    llmb_log_level_parse(cfg.common.log_level, &level);
    llmb_log_init("coordinator", level);

    loop = ev_default_loop(EVFLAG_AUTO);
    co = llmb_coord_new(&cfg, loop);
    if (llmb_coord_start(co, &errstr) != 0) {
        llmb_error("%s", errstr);
        free(errstr);
        rc = EX_UNAVAILABLE;
    } else {
        ev_run(loop, 0);
        rc = llmb_coord_status(co) == 0 ? 0 : EX_CONFIG;
        if (rc == 0)
            llmb_info("coordinator stopped");
    }
    llmb_coord_free(co);
    ev_loop_destroy(loop);
    llmb_config_free(&llmb_coord_opt_set, &cfg);
    return rc;
}
