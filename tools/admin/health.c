/*
 * `llmb health`: the probe of containers and Kubernetes. Runs up to three
 * checks, each ok, degraded, unhealthy or skipped, prints one line per
 * check (or one JSON document) and the overall status, the worst of them:
 *
 *   redis        connects (bounded by --timeout-ms), which loads the
 *                function library when Redis has none like every llmb
 *                command, then reads the loaded library's version;
 *   coordinator  GET --coordinator URL (/healthz): its status and reason;
 *   worker       the record <prefix>:worker:<id> of --worker: present, not
 *                dead, heartbeated within --stale-ms of the server's clock.
 *
 * Exit status (main.c): 0 healthy or degraded, 1 unhealthy. Degraded
 * passes on purpose: a probe that fails on "load above 90 %" or "a dead
 * worker record" would restart or unready a coordinator that is doing its
 * job. Docker reserves exit status 2 of a health check, so none is used.
 *
 * --live asks only "is this process stuck?": the coordinator check passes
 * on any HTTP answer (503 included: its Redis is down, not the process),
 * Redis is not checked by itself, and a worker whose Redis cannot be
 * reached passes (nothing can be judged); only a record that Redis shows
 * stale, dead or missing fails it.
 */
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/functions.h>
#include <llmb/keys.h>

#include "admin.h"

/* Exit status 1 for "unhealthy" (main.c maps it so). */
#define UNHEALTHY LLMB_EREDIS

enum status { ST_SKIPPED, ST_OK, ST_DEGRADED, ST_UNHEALTHY };

static const char *const status_names[] = {
    "skipped", "ok", "degraded", "unhealthy",
};

/* One check's result; detail is malloc'd. */
struct check {
    char *name;
    enum status st;
    char *detail;
};

static void check_set(struct check *c, enum status st, char *detail)
{
    c->st = st;
    free(c->detail);
    c->detail = detail;
}

int llmb_health_check(struct llmb_admin *a, char **errstr)
{
    const struct llmb_admin_config *cfg = a->cfg;

    if (cfg->worker != NULL && !llmb_worker_id_ok(cfg->worker)) {
        *errstr = llmb_name_refusal("--worker", "worker id", cfg->worker,
                                    LLMB_WORKER_ID_MAX);
        return LLMB_EINVAL;
    }
    if (cfg->coordinator != NULL &&
        llmb_http_url_check(cfg->coordinator, errstr) != 0)
        return LLMB_EINVAL;
    if (cfg->live && cfg->coordinator == NULL && cfg->worker == NULL) {
        *errstr = llmb_xstrdup("--live checks a process: give --coordinator "
                               "URL or --worker ID");
        return LLMB_EINVAL;
    }
    return 0;
}

/* The value of field name in the text of INFO (NULL if absent), malloc'd. */
static char *info_field(const char *info, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = info; p != NULL && *p != '\0';) {
        if (strncmp(p, name, n) == 0 && p[n] == ':')
            return llmb_xstrndup(p + n + 1, strcspn(p + n + 1, "\r\n"));
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return NULL;
}

/* Connects (once) and checks Redis and the library into c. Returns true
 * when Redis can be used for the other checks. */
static bool check_redis(struct llmb_admin *a, struct check *c)
{
    char *err = NULL, *ver = NULL;
    redisReply *r = NULL;
    long long lib = 0;
    int rc;

    a->conn = llmb_cluster_new(a->cfg->common.redis_url, "llmb-health",
                               (int)a->cfg->timeout_ms);
    rc = llmb_cluster_connect(a->conn, &err);
    if (rc != 0) {
        check_set(c, ST_UNHEALTHY, err);
        return false;
    }
    /* The first primary's: each loads it as it connects. */
    rc = llmb_functions_loaded_version(
        llmb_conn_ctx(llmb_cluster_node_conn(a->conn, 0)), &lib, &err);
    if (rc != 0) {
        check_set(c, ST_UNHEALTHY,
                  llmb_xasprintf("cannot read the function library: %s",
                                 err));
        free(err);
        return false;
    }
    r = llmb_cluster_command(a->conn, "INFO server");
    if (r != NULL && r->type == REDIS_REPLY_STRING)
        ver = info_field(r->str, "redis_version");
    if (r != NULL)
        freeReplyObject(r);
    if (lib == llmb_lua_version)
        check_set(c, ST_OK, llmb_xasprintf("Redis %s, library version %lld",
                                           ver ? ver : "?", lib));
    else
        /* Newer: a newer llmb is rolling out; this one keeps working. */
        check_set(c, ST_DEGRADED,
                  llmb_xasprintf("Redis %s, library version %lld, not this "
                                 "llmb's %lld", ver ? ver : "?", lib,
                                 llmb_lua_version));
    free(ver);
    return true;
}

/* GETs the coordinator's /healthz into c. */
static void check_coordinator(struct llmb_admin *a, struct check *c)
{
    const char *url = a->cfg->coordinator;
    json_t *doc = NULL;
    const char *st = NULL, *reason = NULL;
    char *body = NULL, *err = NULL;
    int status = 0;

    if (llmb_http_get(url, (int)a->cfg->timeout_ms, &status, &body,
                      &err) != 0) {
        check_set(c, ST_UNHEALTHY, err);
        return;
    }
    if (a->cfg->live) {
        check_set(c, ST_OK, llmb_xasprintf("answers (HTTP %d)", status));
        goto out;
    }
    doc = json_loads(body, 0, NULL);
    st = json_string_value(json_object_get(doc, "status"));
    reason = json_string_value(json_object_get(doc, "reason"));
    if (st == NULL) {
        check_set(c, ST_UNHEALTHY,
                  llmb_xasprintf("HTTP %d without a health document; is %s "
                                 "a coordinator's --metrics-addr?", status,
                                 url));
    } else if (status == 200 && strcmp(st, "healthy") == 0) {
        check_set(c, ST_OK, llmb_xstrdup("healthy"));
    } else if (status == 200 && strcmp(st, "degraded") == 0) {
        check_set(c, ST_DEGRADED, llmb_xstrdup(reason ? reason : ""));
    } else {
        check_set(c, ST_UNHEALTHY,
                  llmb_xasprintf("%s (HTTP %d): %s", st, status,
                                 reason ? reason : ""));
    }

out:
    json_decref(doc);
    free(body);
}

static const char *or_q(const char *s)
{
    return s != NULL ? s : "?";
}

/* Reads the worker's record into c. */
static void check_worker(struct llmb_admin *a, struct check *c)
{
    char *sub = llmb_xasprintf("worker:%s", a->cfg->worker);
    char *key = llmb_key_global(a->prefix, sub);
    redisReply *r = llmb_cluster_command(a->conn, "HMGET %s state seen_ms "
                                      "running capacity", key);
    char *err = NULL, ago[LLMB_HUMAN_LEN];
    const char *state;
    long long seen = 0;
    int64_t now = 0;

    if (llmb_reply_check(r, a->conn, &err) != 0) {
        check_set(c, ST_UNHEALTHY, err);
        goto out;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        check_set(c, ST_UNHEALTHY, llmb_xasprintf("%s is not a hash", key));
        goto out;
    }
    state = llmb_reply_str(r->element[0]);
    if (state == NULL) {
        check_set(c, ST_UNHEALTHY,
                  llmb_xasprintf("no record %s: the worker is not running "
                                 "with this --id and --prefix, has not "
                                 "registered yet, or stopped", key));
        goto out;
    }
    if (llmb_lookup_now(a, &now, &err) != 0) {
        check_set(c, ST_UNHEALTHY, err);
        goto out;
    }
    llmb_reply_ll(r->element[1], &seen);
    llmb_human_ago(now, seen, ago);
    if (strcmp(state, "dead") == 0)
        check_set(c, ST_UNHEALTHY,
                  llmb_xasprintf("marked dead by a coordinator, last "
                                 "heartbeat %s", ago));
    else if (seen <= 0 || now - seen > a->cfg->stale_ms)
        check_set(c, ST_UNHEALTHY,
                  llmb_xasprintf("%s, last heartbeat %s: older than "
                                 "--stale-ms %lld", state, ago,
                                 a->cfg->stale_ms));
    else if (strcmp(state, "draining") == 0)
        check_set(c, ST_DEGRADED,
                  llmb_xasprintf("draining, last heartbeat %s", ago));
    else
        check_set(c, ST_OK,
                  llmb_xasprintf("%s, %s of %s slots busy, last heartbeat "
                                 "%s", state,
                                 or_q(llmb_reply_str(r->element[2])),
                                 or_q(llmb_reply_str(r->element[3])), ago));

out:
    if (r != NULL)
        freeReplyObject(r);
    free(key);
    free(sub);
}

static void print_human(struct llmb_admin *a, const struct check *cs,
                        size_t n, enum status overall)
{
    struct llmb_table *t = llmb_table_new();

    llmb_table_column(t, "CHECK", false);
    llmb_table_column(t, "STATUS", false);
    llmb_table_column(t, "DETAIL", false);
    for (size_t i = 0; i < n; i++) {
        llmb_table_cell(t, cs[i].name);
        llmb_table_cell(t, status_names[cs[i].st]);
        llmb_table_cell(t, cs[i].detail);
    }
    llmb_table_print(t, a->out);
    llmb_table_free(t);
    fprintf(a->out, "%s\n", overall == ST_UNHEALTHY ? "unhealthy"
                            : overall == ST_DEGRADED ? "degraded"
                                                     : "healthy");
}

static void print_json(struct llmb_admin *a, const struct check *cs,
                       size_t n, enum status overall)
{
    json_t *doc = json_object(), *arr = json_array();

    json_object_set_new(doc, "status",
                        json_string(overall == ST_UNHEALTHY ? "unhealthy"
                                    : overall == ST_DEGRADED ? "degraded"
                                                             : "healthy"));
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "check", llmb_json_str(cs[i].name));
        json_object_set_new(o, "status", json_string(status_names[cs[i].st]));
        json_object_set_new(o, "detail", llmb_json_str(cs[i].detail));
        json_array_append_new(arr, o);
    }
    json_object_set_new(doc, "checks", arr);
    json_object_set_new(doc, "live", json_boolean(a->cfg->live));
    llmb_output_json(a, doc);
}

int llmb_health_run(struct llmb_admin *a, char **errstr)
{
    const struct llmb_admin_config *cfg = a->cfg;
    struct check cs[3];
    enum status overall = ST_OK;
    size_t n = 0;
    struct check *redis = NULL, *coord = NULL, *worker = NULL;
    bool redis_up = false;

    memset(cs, 0, sizeof(cs));
    if (!cfg->live || cfg->worker != NULL) {
        redis = &cs[n++];
        redis->name = llmb_xstrdup("redis");
    }
    if (cfg->coordinator != NULL) {
        coord = &cs[n++];
        coord->name = llmb_xstrdup("coordinator");
    }
    if (cfg->worker != NULL) {
        worker = &cs[n++];
        worker->name = llmb_xasprintf("worker %s", cfg->worker);
    }

    if (redis != NULL)
        redis_up = check_redis(a, redis);
    if (coord != NULL)
        check_coordinator(a, coord);
    if (worker != NULL && redis_up)
        check_worker(a, worker);
    else if (worker != NULL)
        check_set(worker, ST_SKIPPED, llmb_xstrdup("Redis is unreachable"));
    /* Liveness: an unreachable Redis says nothing about this process. */
    if (cfg->live && redis != NULL && !redis_up) {
        redis->st = ST_SKIPPED; /* its detail keeps the error */
        check_set(worker, ST_SKIPPED,
                  llmb_xstrdup("Redis is unreachable: cannot judge, passes "
                               "(--live)"));
    }

    for (size_t i = 0; i < n; i++)
        if (cs[i].st > overall)
            overall = cs[i].st;
    if (cfg->json)
        print_json(a, cs, n, overall);
    else
        print_human(a, cs, n, overall);

    if (overall == ST_UNHEALTHY) {
        for (size_t i = 0; i < n && *errstr == NULL; i++)
            if (cs[i].st == ST_UNHEALTHY)
                *errstr = llmb_xasprintf("unhealthy: %s: %s", cs[i].name,
                                         cs[i].detail ? cs[i].detail : "");
    }
    for (size_t i = 0; i < n; i++) {
        free(cs[i].name);
        free(cs[i].detail);
    }
    llmb_cluster_free(a->conn);
    a->conn = NULL;
    return overall == ST_UNHEALTHY ? UNHEALTHY : 0;
}
