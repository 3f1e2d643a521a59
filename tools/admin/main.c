/*
 * llmb, the admin CLI: loads the command line (config.c), connects to
 * Redis, runs the command and turns its result into an exit status:
 * 0 done, 1 the job is unknown or Redis refused the operation, 64 usage,
 * 69 Redis unavailable, 78 bad configuration. `health` connects by itself
 * (own_conn) and answers 0 healthy or degraded, 1 unhealthy.
 */
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <llmb/config.h>
#include <llmb/conn.h>
#include <llmb/err.h>
#include <llmb/log.h>

#include "admin.h"

/* Bounds the connect and every command. */
#define LLMB_ADMIN_TIMEOUT_MS 10000

static int exit_code(int err)
{
    switch (err) {
    case LLMB_OK: return EX_OK;
    case LLMB_EINVAL: return EX_USAGE;
    case LLMB_ENOTFOUND: return 1;
    case LLMB_EREDIS: return 1;
    case LLMB_EIO: return EX_UNAVAILABLE;
    case LLMB_ETIMEOUT: return EX_UNAVAILABLE;
    case LLMB_EVERSION: return EX_UNAVAILABLE;
    case LLMB_ECONFIG: return EX_CONFIG;
    case LLMB_EAUTH: return EX_CONFIG;
    case LLMB_EPROTO: return EX_PROTOCOL;
    default: return EX_SOFTWARE;
    }
}

int main(int argc, char **argv)
{
    struct llmb_admin_config cfg;
    struct llmb_opt_set set;
    struct llmb_strlist pos = {0};
    struct llmb_admin a;
    enum llmb_log_level level = LLMB_LOG_WARN;
    const struct llmb_command *cmd = NULL;
    char *err = NULL;
    int rc, status;

    memset(&a, 0, sizeof(a));
    rc = llmb_admin_config_load(argc, argv, &cfg, &set, &cmd, &pos, &err);
    if (rc == 0) {
        a.cfg = &cfg;
        a.prefix = cfg.common.prefix;
        a.args = pos.v + 1;
        a.nargs = pos.n - 1;
        a.out = stdout;
        if (cmd->check != NULL)
            rc = cmd->check(&a, &err);
    }
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "llmb: %s\n", err);
        status = rc < 0 ? exit_code(rc) : EX_OK;
        goto out;
    }

    /* A one-shot command has no use for info lines (such as loading the
     * function library): the default "info" means warnings here. */
    llmb_log_level_parse(cfg.common.log_level, &level);
    llmb_log_init("llmb", level == LLMB_LOG_INFO ? LLMB_LOG_WARN : level);

    if (cmd->own_conn) {
        rc = cmd->run(&a, &err);
        if (rc != 0)
            fprintf(stderr, "llmb: %s\n", err ? err : llmb_strerror(rc));
        status = exit_code(rc);
        goto out;
    }
    a.conn = llmb_cluster_new(cfg.common.redis_url, "llmb-cli",
                              LLMB_ADMIN_TIMEOUT_MS);
    rc = llmb_cluster_connect(a.conn, &err);
    if (rc != 0) {
        /* A bad URL or refused credentials: configuration (78); cannot
         * connect, Redis too old: unavailable (69). */
        fprintf(stderr, "llmb: %s\n", err);
        status = rc == LLMB_ECONFIG || rc == LLMB_EAUTH ? EX_CONFIG
                                                         : EX_UNAVAILABLE;
        goto out;
    }
    rc = cmd->run(&a, &err);
    if (rc != 0)
        fprintf(stderr, "llmb: %s\n", err ? err : llmb_strerror(rc));
    status = exit_code(rc);

out:
    if (fflush(stdout) != 0 && status == EX_OK)
        status = EX_IOERR;
    llmb_cluster_free(a.conn);
    free(err);
    llmb_strlist_clear(&pos);
    llmb_config_free(&set, &cfg);
    llmb_admin_opt_set_fini(&set);
    return status;
}
