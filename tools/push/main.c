/*
 * llmb-push: loads the configuration, connects, and pushes one job or a
 * batch. Exit codes: 0 done; 1 the waited-for job failed or was
 * cancelled; 2 --wait timed out; 64 usage; 65 a job was rejected; 69
 * Redis unavailable, or a job not confirmed; 78 Redis refused the
 * credentials.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>

#include <llmb/err.h>
#include <llmb/keys.h>
#include <llmb/log.h>
#include <llmb/util.h>

#include "push.h"

/* On a cluster: registers --queue in <prefix>:queues and returns the
 * connection of the primary that owns the queue, or NULL (said on
 * stderr). */
static struct llmb_conn *push_cluster_route(const struct push_config *cfg,
                                            struct llmb_cluster *cl)
{
    char *queues = llmb_key_global(cfg->common.prefix, "queues");
    char *base = llmb_key_queue(cfg->common.prefix, cfg->queue);
    const char *argv[] = {"SADD", queues, cfg->queue};
    redisReply *r = llmb_cluster_command_argv(cl, queues, 3, argv, NULL);
    struct llmb_conn *conn = NULL;

    if (r == NULL)
        fprintf(stderr, "llmb-push: %s\n", llmb_cluster_errstr(cl));
    else if (r->type == REDIS_REPLY_ERROR)
        fprintf(stderr, "llmb-push: registering the queue: %s\n", r->str);
    if (r != NULL) {
        freeReplyObject(r);
        conn = llmb_cluster_conn_for_key(cl, base);
        if (conn == NULL)
            fprintf(stderr, "llmb-push: %s\n", llmb_cluster_errstr(cl));
    }
    free(queues);
    free(base);
    return conn;
}

int main(int argc, char **argv)
{
    struct push_config cfg = {0};
    struct llmb_strlist args = {0};
    struct llmb_cluster *cl = NULL;
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
    if (cfg.batch && cfg.dataset != NULL) {
        fprintf(stderr, "llmb-push: --dataset goes with one job, not "
                        "--batch\n");
        rc = EX_USAGE;
        goto out;
    }
    if (cfg.batch && args.n > 1) {
        fprintf(stderr, "llmb-push: --batch takes one FILE (or - for "
                        "stdin)\n");
        rc = EX_USAGE;
        goto out;
    }
    cl = llmb_cluster_new(cfg.common.redis_url, "llmb-push",
                          (int)cfg.redis_timeout_ms);
    rc = llmb_cluster_connect(cl, &errstr);
    if (rc != 0) {
        fprintf(stderr, "llmb-push: %s\n", errstr);
        free(errstr);
        rc = rc == LLMB_EAUTH ? EX_CONFIG : EX_UNAVAILABLE;
        goto out;
    }
    if (!llmb_cluster_enabled(cl)) {
        conn = llmb_cluster_node_conn(cl, 0);
    } else if (!cfg.batch) {
        /* One job: every key it touches is its queue's, on the primary
         * of the queue's slot, but <prefix>:queues (in the slot of its
         * own name), registered here through the router. */
        conn = push_cluster_route(&cfg, cl);
        if (conn == NULL) {
            rc = EX_UNAVAILABLE;
            goto out;
        }
    }
    if (cfg.batch)
        rc = push_batch(&cfg, conn, cl, args.n == 1 ? args.v[0] : "-");
    else
        rc = push_single(&cfg, conn, cl, &args);
out:
    llmb_cluster_free(cl);
    llmb_strlist_clear(&args);
    llmb_config_free(&push_opt_set, &cfg);
    return rc;
}
