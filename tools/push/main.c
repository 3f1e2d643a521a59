/*
 * llmb-push: loads the configuration, connects, and pushes one job or a
 * batch. Exit codes: 0 done; 1 the waited-for job failed or was
 * cancelled; 2 --wait timed out; 64 usage; 65 a job was rejected; 69
 * Redis unavailable, or a job not confirmed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>

#include <llmb/log.h>

#include "push.h"

int main(int argc, char **argv)
{
    struct push_config cfg = {0};
    struct llmb_strlist args = {0};
    struct llmb_conn *conn = NULL;
    enum llmb_log_level level = LLMB_LOG_INFO;
    char *errstr = NULL;
    int rc;

    signal(SIGPIPE, SIG_IGN);
    rc = llmb_config_load(&push_opt_set, &cfg, argc, argv, &args, &errstr);
    if (rc < 0) {
        fprintf(stderr, "llmb-push: %s\n", errstr);
        free(errstr);
        llmb_strlist_clear(&args);
        llmb_config_free(&push_opt_set, &cfg);
        return EX_USAGE;
    }
    if (rc > 0) {
        rc = 0;
        goto out;
    }
    llmb_log_level_parse(cfg.common.log_level, &level);
    llmb_log_init("push", level);
    if (cfg.batch && args.n > 1) {
        fprintf(stderr, "llmb-push: --batch takes one FILE (or - for "
                        "stdin)\n");
        rc = EX_USAGE;
        goto out;
    }
    conn = llmb_conn_new(cfg.common.redis_url, "llmb-push",
                         (int)cfg.redis_timeout_ms);
    if (llmb_conn_connect(conn, &errstr) != 0) {
        fprintf(stderr, "llmb-push: %s\n", errstr);
        free(errstr);
        rc = EX_UNAVAILABLE;
        goto out;
    }
    if (cfg.batch)
        rc = push_batch(&cfg, conn, args.n == 1 ? args.v[0] : "-");
    else
        rc = push_single(&cfg, conn, &args);
out:
    llmb_conn_free(conn);
    llmb_strlist_clear(&args);
    llmb_config_free(&push_opt_set, &cfg);
    return rc;
}
