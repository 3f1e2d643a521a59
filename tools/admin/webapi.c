/*
 * One request of `llmb web` (docs/web.md): the routes. GET / and
 * /static/<path> answer the embedded files of the UI (assets.h); GET
 * /api/... the documents of the views of admin.h, the same builders as
 * the CLI's --json; POST /api/... the actions, behind the token; GET
 * /api/events the live stream (webevents.c). Every response carries the
 * headers of llmb_web_headers(). A request takes a Redis connection of
 * the pool for its views and gives it back before it answers.
 *
 * Nothing of the request is trusted: the path is split into at most a
 * few segments and each is checked against the shapes of queue names and
 * job ids before it reaches Redis; numbers are parsed strictly within the
 * bounds of web.h; a request that announces a body is refused (413)
 * before any of it is read.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llmb/err.h>
#include <llmb/keys.h>

#include "assets.h"
#include "web.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define SEGS_MAX 6

/* The request state, kept in libmicrohttpd's per-request pointer. */
static int seen_head;

void llmb_web_headers(struct MHD_Response *r)
{
    llmb_mhd.add_response_header(r, "Content-Security-Policy",
                                 "default-src 'none'; script-src 'self'; "
                                 "style-src 'self'; img-src 'self' data:; "
                                 "connect-src 'self'; base-uri 'none'; "
                                 "form-action 'none'; frame-ancestors 'none'");
    llmb_mhd.add_response_header(r, "X-Content-Type-Options", "nosniff");
    llmb_mhd.add_response_header(r, "Referrer-Policy", "no-referrer");
    llmb_mhd.add_response_header(r, "Cache-Control", "no-store");
}

/* Queues a response of len bytes of body with its headers, the bytes
 * never copied: mode is MHD_RESPMEM_PERSISTENT for the embedded files,
 * MHD_RESPMEM_MUST_FREE for a malloc'd body, which is then
 * libmicrohttpd's (or freed here when no response could be made). */
static enum MHD_Result respond(struct MHD_Connection *c, unsigned status,
                               const char *type, const void *body,
                               size_t len, const char *allow,
                               enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = llmb_mhd.create_response_from_buffer(len, (void *)body, mode);
    if (r == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free((void *)body);
        return MHD_NO;
    }
    llmb_web_headers(r);
    llmb_mhd.add_response_header(r, "Content-Type", type);
    if (allow != NULL)
        llmb_mhd.add_response_header(r, "Allow", allow);
    if (status == MHD_HTTP_UNAUTHORIZED)
        llmb_mhd.add_response_header(r, "WWW-Authenticate", "Bearer");
    ret = llmb_mhd.queue_response(c, status, r);
    llmb_mhd.destroy_response(r);
    return ret;
}

/* Answers doc as JSON and releases it. */
static enum MHD_Result respond_json(struct MHD_Connection *c,
                                    unsigned status, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15));

    json_decref(doc);
    if (text == NULL)
        return MHD_NO;
    return respond(c, status, JSON_TYPE, text, strlen(text), NULL,
                   MHD_RESPMEM_MUST_FREE);
}

/* Answers {"error": message}. */
static enum MHD_Result respond_error(struct MHD_Connection *c,
                                     unsigned status, const char *allow,
                                     const char *fmt, ...) LLMB_PRINTF(4, 5);
static enum MHD_Result respond_error(struct MHD_Connection *c,
                                     unsigned status, const char *allow,
                                     const char *fmt, ...)
{
    json_t *doc = json_object();
    char *text, *msg;
    va_list ap;

    va_start(ap, fmt);
    msg = llmb_xvasprintf(fmt, ap);
    va_end(ap);
    json_object_set_new(doc, "error", llmb_json_str(msg));
    free(msg);
    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL)
        return MHD_NO;
    return respond(c, status, JSON_TYPE, text, strlen(text), allow,
                   MHD_RESPMEM_MUST_FREE);
}

/* The status of an error of the views. */
static unsigned status_of(int rc)
{
    switch (rc) {
    case LLMB_EINVAL: return MHD_HTTP_BAD_REQUEST;
    case LLMB_ENOTFOUND: return MHD_HTTP_NOT_FOUND;
    case LLMB_EREDIS: return MHD_HTTP_CONFLICT;
    case LLMB_EPROTO: return MHD_HTTP_BAD_GATEWAY;
    default: return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
}

/* ---- the overview ---- */

/* Worse of two health statuses by name. */
static const char *worse(const char *a, const char *b)
{
    static const char *const order[] = {"healthy", "degraded", "unhealthy"};
    int ia = 0, ib = 0;

    for (int i = 0; i < 3; i++) {
        if (strcmp(a, order[i]) == 0)
            ia = i;
        if (strcmp(b, order[i]) == 0)
            ib = i;
    }
    return order[ia > ib ? ia : ib];
}

/* {"status", "reasons"} from what stats shows: the coordinator's verdict
 * when it is fresh, made worse by what it cannot see (docs/web.md). */
static json_t *health_of(const json_t *stats, const char *prefix)
{
    const json_t *m = json_object_get(stats, "metrics");
    json_t *reasons = json_array(), *o = json_object();
    const char *status = "healthy", *k;
    json_t *v;
    size_t i;

    if (!json_is_object(m)) {
        status = "degraded";
        json_array_append_new(reasons, json_sprintf(
            "no coordinator metrics (%s:metrics does not exist): is "
            "llmb-coordinator running?", prefix));
    } else {
        json_int_t now = json_integer_value(json_object_get(stats, "now_ms"));
        json_int_t up = json_integer_value(json_object_get(m, "updated_ms"));
        json_int_t every =
            json_integer_value(json_object_get(m, "interval_ms"));
        const char *h = json_string_value(json_object_get(m, "health"));
        const char *why =
            json_string_value(json_object_get(m, "health_reason"));
        if (every > 0 && now - up > 2 * every) {
            status = "degraded";
            json_array_append_new(reasons, json_sprintf(
                "the coordinator's metrics are stale (%lld ms old): is "
                "llmb-coordinator running?", (long long)(now - up)));
        } else if (h != NULL) {
            status = worse(status, h);
            if (strcmp(h, "healthy") != 0 && why != NULL && why[0] != '\0')
                json_array_append_new(reasons, json_string(why));
        }
    }
    json_array_foreach(json_object_get(stats, "queues"), i, v) {
        const char *err = json_string_value(json_object_get(v, "error"));
        if (err != NULL) {
            status = worse(status, "degraded");
            json_array_append_new(reasons, json_sprintf(
                "queue %s: %s",
                json_string_value(json_object_get(v, "name")), err));
        }
    }
    json_object_foreach((json_t *)json_object_get(stats, "unserved"), k, v) {
        status = worse(status, "degraded");
        json_array_append_new(reasons, json_sprintf("queue %s: %s", k,
                                                    json_string_value(v)));
    }
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(o, "reasons", reasons);
    return o;
}

/* The value of "name:" in an INFO reply, or NULL (caller frees). */
static char *info_field(const char *info, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = info; p != NULL && *p != '\0';) {
        const char *end = strpbrk(p, "\r\n");
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len > n && strncmp(p, name, n) == 0 && p[n] == ':')
            return llmb_xstrndup(p + n + 1, len - n - 1);
        p = end != NULL ? end + strspn(end, "\r\n") : NULL;
    }
    return NULL;
}

/* {"used_memory", "used_memory_human", "version"} of the first node;
 * nulls when INFO cannot be read (an ACL may refuse it). */
static json_t *redis_info(struct llmb_admin *a)
{
    redisReply *r = llmb_cluster_command(a->conn, "INFO");
    const char *info = r != NULL && r->type == REDIS_REPLY_STRING ? r->str
                                                                  : NULL;
    char *used = info ? info_field(info, "used_memory") : NULL;
    char *human = info ? info_field(info, "used_memory_human") : NULL;
    char *version = info ? info_field(info, "redis_version") : NULL;
    json_t *o = json_object();

    json_object_set_new(o, "used_memory", llmb_json_int_or_null(used));
    json_object_set_new(o, "used_memory_human", llmb_json_str(human));
    json_object_set_new(o, "version", llmb_json_str(version));
    free(used);
    free(human);
    free(version);
    if (r != NULL)
        freeReplyObject(r);
    return o;
}

int llmb_web_overview(struct llmb_admin *a, json_t **doc, char **errstr)
{
    json_t *stats = NULL, *workers = NULL;
    int rc;

    *doc = NULL;
    rc = llmb_view_stats_workers(a, &stats, &workers, errstr);
    if (rc != 0)
        return rc;
    *doc = json_object();
    json_object_set_new(*doc, "health", health_of(stats, a->prefix));
    json_object_set(*doc, "now_ms", json_object_get(stats, "now_ms"));
    json_object_set_new(*doc, "stats", stats);
    json_object_set_new(*doc, "workers", workers);
    json_object_set_new(*doc, "redis", redis_info(a));
    return 0;
}

/* ---- requests ---- */

/* One request, as the handlers see it. */
struct req {
    struct llmb_web *w;
    struct MHD_Connection *c;
    const char *method;
    char *segs[SEGS_MAX]; /* the path's segments after "/api/" */
    size_t nsegs;
};

/* Parses query argument name as an integer in [min, max] into *out (def
 * when absent). Returns false, having answered 400, when it is not. */
static bool arg_ll(struct req *q, const char *name, long long def,
                   long long min, long long max, long long *out,
                   enum MHD_Result *ret)
{
    const char *s =
        llmb_mhd.lookup_connection_value(q->c, MHD_GET_ARGUMENT_KIND, name);
    char *end = NULL;
    long long v;

    *out = def;
    if (s == NULL || s[0] == '\0')
        return true;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        *ret = respond_error(q->c, MHD_HTTP_BAD_REQUEST, NULL,
                             "%s must be an integer from %lld to %lld",
                             name, min, max);
        return false;
    }
    *out = v;
    return true;
}

static const char *arg(struct req *q, const char *name)
{
    const char *s =
        llmb_mhd.lookup_connection_value(q->c, MHD_GET_ARGUMENT_KIND, name);
    return s != NULL && s[0] != '\0' ? s : NULL;
}

/* True when the request carries the token; compares in time that
 * depends on the token's length only. */
static bool token_ok(const struct llmb_web *w, const char *header)
{
    const char *given;
    size_t gl, wl = strlen(w->token);
    unsigned char diff;

    if (header == NULL || strncmp(header, "Bearer ", 7) != 0)
        return false;
    given = header + 7;
    gl = strlen(given);
    diff = (unsigned char)(gl != wl);
    for (size_t i = 0; i < wl; i++)
        diff |= (unsigned char)(w->token[i] ^ (gl > 0 ? given[i % gl] : 0));
    return diff == 0;
}

/* Answers a view's document, or its error. */
static enum MHD_Result view_answer(struct req *q, int rc, json_t *doc,
                                   char *err)
{
    enum MHD_Result ret;

    if (rc == 0)
        ret = respond_json(q->c, MHD_HTTP_OK, doc);
    else
        ret = respond_error(q->c, status_of(rc), NULL, "%s",
                            err != NULL ? err : llmb_strerror(rc));
    free(err);
    return ret;
}

static enum MHD_Result no_redis(struct req *q, char *err)
{
    enum MHD_Result ret = respond_error(q->c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                        NULL, "%s", err);
    free(err);
    return ret;
}

/* Cuts the tasks of a job view short before their JSON passes
 * LLMB_WEB_TASKS_BYTES_MAX, which `tasks_cut` (the bytes of the budget,
 * else null) says. */
static void job_view_trim(json_t *doc)
{
    json_t *tasks = json_object_get(doc, "tasks");
    size_t total = 0, keep = json_array_size(tasks);

    for (size_t i = 0; i < json_array_size(tasks); i++) {
        size_t n = json_dumpb(json_array_get(tasks, i), NULL, 0,
                              JSON_COMPACT | JSON_REAL_PRECISION(15));
        if (total + n + 1 > LLMB_WEB_TASKS_BYTES_MAX) {
            keep = i;
            break;
        }
        total += n + 1;
    }
    if (keep < json_array_size(tasks)) {
        while (json_array_size(tasks) > keep)
            json_array_remove(tasks, json_array_size(tasks) - 1);
        json_object_set_new(doc, "tasks_shown",
                            json_integer((json_int_t)keep));
        json_object_set_new(doc, "tasks_cut",
                            json_integer(LLMB_WEB_TASKS_BYTES_MAX));
    } else {
        json_object_set_new(doc, "tasks_cut", json_null());
    }
}

/* Answers the web job view of a `show --json` document, and releases it:
 * without what the page does not draw (llmb_view_drop_records()), its
 * tasks within LLMB_WEB_TASKS_BYTES_MAX (job_view_trim()). Encoded once
 * when the whole document is within the budget, as a job's usually is:
 * its tasks then are too. */
static enum MHD_Result job_view_answer(struct req *q, json_t *doc)
{
    char *text;

    llmb_view_drop_records(doc);
    json_object_set_new(doc, "tasks_cut", json_null());
    text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (text == NULL || strlen(text) > LLMB_WEB_TASKS_BYTES_MAX) {
        free(text);
        job_view_trim(doc);
        return respond_json(q->c, MHD_HTTP_OK, doc);
    }
    json_decref(doc);
    return respond(q->c, MHD_HTTP_OK, JSON_TYPE, text, strlen(text), NULL,
                   MHD_RESPMEM_MUST_FREE);
}

/* The views a GET answers. */
enum get_view { GV_OVERVIEW, GV_QUEUES, GV_QUEUE_JOBS, GV_JOB, GV_COMPARE };

static enum MHD_Result get_view(struct req *q, enum get_view v)
{
    struct llmb_admin_config cfg = *q->w->cfg;
    struct llmb_admin *a;
    struct llmb_strlist specs = {0};
    long long limit = 0, offset = 0, tasks = 0, toff = 0;
    enum MHD_Result ret = MHD_NO;
    json_t *doc = NULL;
    char *err = NULL;
    int rc = 0;

    /* arguments first: a bad one never costs a Redis round trip */
    if (v == GV_QUEUE_JOBS) {
        const char *st = arg(q, "state");
        if (!arg_ll(q, "limit", LLMB_WEB_LIMIT_DEFAULT, 1, LLMB_WEB_LIMIT_MAX,
                    &limit, &ret) ||
            !arg_ll(q, "offset", 0, 0, LLMB_WEB_OFFSET_MAX, &offset, &ret))
            return ret;
        if (st != NULL && !llmb_admin_job_state_ok(st))
            return respond_error(q->c, MHD_HTTP_BAD_REQUEST, NULL,
                                 "state must be " LLMB_ADMIN_JOB_STATES
                                 ", got \"%s\"", st);
        if (arg(q, "search") != NULL &&
            strlen(arg(q, "search")) > LLMB_JOB_ID_MAX)
            return respond_error(q->c, MHD_HTTP_BAD_REQUEST, NULL,
                                 "search must be at most %d bytes",
                                 LLMB_JOB_ID_MAX);
    }
    if (v == GV_JOB &&
        (!arg_ll(q, "tasks", LLMB_WEB_TASKS_DEFAULT, 0, LLMB_WEB_TASKS_MAX,
                 &tasks, &ret) ||
         !arg_ll(q, "task_offset", 0, 0, LLMB_WEB_TASK_OFFSET_MAX, &toff,
                 &ret)))
        return ret;
    if (v == GV_JOB || v == GV_QUEUE_JOBS) {
        const char *qn = v == GV_JOB ? arg(q, "queue") : q->segs[1];
        if (qn != NULL && !llmb_queue_name_ok(qn))
            return respond_error(q->c, MHD_HTTP_BAD_REQUEST, NULL,
                                 "queue name must be 1 to %d characters "
                                 "from [A-Za-z0-9_.-]", LLMB_QUEUE_NAME_MAX);
        cfg.queue = (char *)qn;
    }
    if (v == GV_COMPARE) {
        const char *jobs = arg(q, "jobs");
        if (jobs == NULL || strlen(jobs) > 4096)
            return respond_error(q->c, MHD_HTTP_BAD_REQUEST, NULL,
                                 "jobs must name 2 to %d jobs (or one "
                                 "A/B job), comma-separated",
                                 LLMB_WEB_COMPARE_MAX);
        llmb_strlist_split(&specs, jobs, ',');
        if (specs.n < 1 || specs.n > LLMB_WEB_COMPARE_MAX) {
            llmb_strlist_clear(&specs);
            return respond_error(q->c, MHD_HTTP_BAD_REQUEST, NULL,
                                 "jobs must name 2 to %d jobs (or one "
                                 "A/B job), comma-separated",
                                 LLMB_WEB_COMPARE_MAX);
        }
    }

    a = llmb_web_conn_take(q->w, &err);
    if (a == NULL) {
        llmb_strlist_clear(&specs);
        return no_redis(q, err);
    }
    a->cfg = &cfg;
    switch (v) {
    case GV_OVERVIEW:
        rc = llmb_web_overview(a, &doc, &err);
        break;
    case GV_QUEUES:
        rc = llmb_view_queues(a, &doc, &err);
        break;
    case GV_QUEUE_JOBS:
        rc = llmb_view_queue_jobs(a, q->segs[1], arg(q, "state"),
                                  arg(q, "search"), limit, offset, &doc,
                                  &err);
        break;
    case GV_JOB:
        rc = llmb_view_show(a, q->segs[1], tasks, toff, &doc, &err);
        break;
    case GV_COMPARE:
        rc = llmb_view_compare(a, specs.v, specs.n, &doc, &err);
        break;
    }
    llmb_web_conn_give(q->w, a);
    llmb_strlist_clear(&specs);
    if (v == GV_JOB && rc == 0)
        return job_view_answer(q, doc);
    return view_answer(q, rc, doc, err);
}

/* The actions. */
enum action { AC_CANCEL, AC_RETRY, AC_PAUSE, AC_RESUME, AC_PURGE };

static enum MHD_Result post_action(struct req *q, enum action ac)
{
    struct llmb_admin_config cfg = *q->w->cfg;
    const char *qn = ac == AC_CANCEL || ac == AC_RETRY ? arg(q, "queue")
                                                       : q->segs[1];
    struct llmb_admin *a;
    json_t *doc = NULL;
    char *err = NULL;
    int rc = 0;

    if (q->w->token == NULL)
        return respond_error(q->c, MHD_HTTP_FORBIDDEN, NULL,
                             "read-only: this server was started without "
                             "--token-env, so it takes no actions");
    if (!token_ok(q->w, llmb_mhd.lookup_connection_value(q->c, MHD_HEADER_KIND,
                                                         "Authorization")))
        return respond_error(q->c, MHD_HTTP_UNAUTHORIZED, NULL,
                             "this action needs the header Authorization: "
                             "Bearer <token>");
    if (qn != NULL && !llmb_queue_name_ok(qn))
        return respond_error(q->c, MHD_HTTP_BAD_REQUEST, NULL,
                             "queue name must be 1 to %d characters from "
                             "[A-Za-z0-9_.-]", LLMB_QUEUE_NAME_MAX);
    cfg.queue = (char *)(ac == AC_CANCEL || ac == AC_RETRY ? qn : NULL);
    a = llmb_web_conn_take(q->w, &err);
    if (a == NULL)
        return no_redis(q, err);
    a->cfg = &cfg;
    switch (ac) {
    case AC_CANCEL:
        rc = llmb_view_cancel(a, q->segs[1], &doc, &err);
        break;
    case AC_RETRY:
        rc = llmb_view_retry(a, q->segs[1], &doc, &err);
        break;
    case AC_PAUSE:
    case AC_RESUME:
        rc = llmb_view_pause(a, q->segs[1], ac == AC_PAUSE, &doc, &err);
        break;
    case AC_PURGE:
        rc = llmb_view_purge(a, q->segs[1], &doc, &err);
        break;
    }
    llmb_web_conn_give(q->w, a);
    return view_answer(q, rc, doc, err);
}

static enum MHD_Result get_config(struct req *q)
{
    json_t *doc = json_object();

    json_object_set_new(doc, "read_only", json_boolean(q->w->token == NULL));
    json_object_set_new(doc, "version", json_string(LLMB_VERSION_STRING));
    return respond_json(q->c, MHD_HTTP_OK, doc);
}

static enum MHD_Result get_events(struct req *q)
{
    struct MHD_Response *r = llmb_web_events_response(
        q->w->events, llmb_mhd.lookup_connection_value(q->c, MHD_HEADER_KIND,
                                                       "Last-Event-ID"));
    enum MHD_Result ret;

    if (r == NULL)
        return respond_error(q->c, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
                             "too many live streams open (at most %d)",
                             LLMB_WEB_STREAMS_MAX);
    ret = llmb_mhd.queue_response(q->c, MHD_HTTP_OK, r);
    llmb_mhd.destroy_response(r);
    return ret;
}

static bool is_get(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
}

/* Routes /api/<segs>. */
static enum MHD_Result route_api(struct req *q)
{
    char **s = q->segs;
    size_t n = q->nsegs;
    bool get = is_get(q->method), post = strcmp(q->method, "POST") == 0;
    const char *allow = NULL;

    /* reads */
    if (n == 1 && (strcmp(s[0], "config") == 0 ||
                   strcmp(s[0], "overview") == 0 ||
                   strcmp(s[0], "queues") == 0 ||
                   strcmp(s[0], "compare") == 0 ||
                   strcmp(s[0], "events") == 0)) {
        if (!get)
            return respond_error(q->c, MHD_HTTP_METHOD_NOT_ALLOWED,
                                 "GET, HEAD", "use GET");
        if (strcmp(s[0], "config") == 0)
            return get_config(q);
        if (strcmp(s[0], "overview") == 0)
            return get_view(q, GV_OVERVIEW);
        if (strcmp(s[0], "queues") == 0)
            return get_view(q, GV_QUEUES);
        if (strcmp(s[0], "compare") == 0)
            return get_view(q, GV_COMPARE);
        return get_events(q);
    }
    if (n >= 2 && strcmp(s[0], "queues") == 0 && !llmb_queue_name_ok(s[1]))
        return respond_error(q->c, MHD_HTTP_BAD_REQUEST, NULL,
                             "queue name must be 1 to %d characters from "
                             "[A-Za-z0-9_.-]", LLMB_QUEUE_NAME_MAX);
    if (n >= 2 && strcmp(s[0], "jobs") == 0 && !llmb_job_id_ok(s[1]))
        return respond_error(q->c, MHD_HTTP_BAD_REQUEST, NULL,
                             "job id must be 1 to %d characters from "
                             "[A-Za-z0-9_.-]", LLMB_JOB_ID_MAX);
    if (n == 3 && strcmp(s[0], "queues") == 0 && strcmp(s[2], "jobs") == 0) {
        if (get)
            return get_view(q, GV_QUEUE_JOBS);
        allow = "GET, HEAD";
    } else if (n == 2 && strcmp(s[0], "jobs") == 0) {
        if (get)
            return get_view(q, GV_JOB);
        allow = "GET, HEAD";
    } else if (n == 3 && strcmp(s[0], "jobs") == 0 &&
               (strcmp(s[2], "cancel") == 0 || strcmp(s[2], "retry") == 0)) {
        if (post)
            return post_action(q, strcmp(s[2], "cancel") == 0 ? AC_CANCEL
                                                               : AC_RETRY);
        allow = "POST";
    } else if (n == 3 && strcmp(s[0], "queues") == 0 &&
               (strcmp(s[2], "pause") == 0 || strcmp(s[2], "resume") == 0 ||
                strcmp(s[2], "purge") == 0)) {
        if (post)
            return post_action(q, strcmp(s[2], "pause") == 0    ? AC_PAUSE
                                  : strcmp(s[2], "resume") == 0 ? AC_RESUME
                                                                : AC_PURGE);
        allow = "POST";
    }
    if (allow != NULL)
        return respond_error(q->c, MHD_HTTP_METHOD_NOT_ALLOWED, allow,
                             "use %s", allow);
    return respond_error(q->c, MHD_HTTP_NOT_FOUND, NULL,
                         "no such API path (docs/web.md)");
}

/* Answers an embedded file. */
static enum MHD_Result get_asset(struct req *q, const char *path)
{
    const struct llmb_web_asset *f = llmb_web_asset_find(path);

    if (f == NULL)
        return respond_error(q->c, MHD_HTTP_NOT_FOUND, NULL,
                             "no such file");
    return respond(q->c, MHD_HTTP_OK, f->type, f->data, f->len, NULL,
                   MHD_RESPMEM_PERSISTENT);
}

/* Splits path (after "/api/") into q->segs; false when it has too many
 * segments or an empty one. */
static bool split_path(struct req *q, char *path)
{
    char *save = NULL;

    if (path[0] == '\0' || path[0] == '/' || path[strlen(path) - 1] == '/' ||
        strstr(path, "//") != NULL)
        return false;
    for (char *s = strtok_r(path, "/", &save); s != NULL;
         s = strtok_r(NULL, "/", &save)) {
        if (q->nsegs == SEGS_MAX)
            return false;
        q->segs[q->nsegs++] = s;
    }
    return q->nsegs > 0;
}

/* True when name (a Host header's host, n bytes) is one this server
 * answers: localhost, 127.0.0.1, [::1], the host of --addr or one of
 * --allow-host. Any other is refused, so that a page of another site
 * whose name was made to resolve to this address (DNS rebinding) does
 * not read it. */
static bool host_name_ok(const struct llmb_web *w, const char *name,
                         size_t n)
{
    static const char *const local[] = {"localhost", "127.0.0.1", "[::1]"};
    const char *addr = w->cfg->addr != NULL ? w->cfg->addr : "";
    const char *colon = strrchr(addr, ':');
    size_t alen = colon != NULL ? (size_t)(colon - addr) : strlen(addr);

    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
        if (strlen(local[i]) == n && strncasecmp(local[i], name, n) == 0)
            return true;
    if (alen > 0 && alen == n && strncasecmp(addr, name, n) == 0)
        return true;
    for (size_t i = 0; i < w->cfg->allow_hosts.n; i++) {
        const char *h = w->cfg->allow_hosts.v[i];
        if (strlen(h) == n && strncasecmp(h, name, n) == 0)
            return true;
    }
    return false;
}

/* True when the request announces a body (Content-Length above 0, or a
 * Transfer-Encoding): none is taken. */
static bool has_body(struct MHD_Connection *c)
{
    const char *len = llmb_mhd.lookup_connection_value(c, MHD_HEADER_KIND,
                                                       "Content-Length");

    return (len != NULL && strspn(len, "0") != strlen(len)) ||
           llmb_mhd.lookup_connection_value(c, MHD_HEADER_KIND,
                                            "Transfer-Encoding") != NULL;
}

/* The Host header's check (a request without one, HTTP/1.0, passes). */
static bool host_ok(const struct llmb_web *w, struct MHD_Connection *c)
{
    const char *host = llmb_mhd.lookup_connection_value(c, MHD_HEADER_KIND,
                                                        "Host");
    size_t n;

    if (host == NULL)
        return true;
    if (host[0] == '[') { /* [IPV6]:PORT */
        const char *end = strchr(host, ']');
        if (end == NULL)
            return false;
        n = (size_t)(end - host) + 1;
    } else {
        n = strcspn(host, ":");
    }
    return host_name_ok(w, host, n);
}

enum MHD_Result llmb_web_handle(void *cls, struct MHD_Connection *c,
                                const char *url, const char *method,
                                const char *version, const char *upload,
                                size_t *upload_size, void **state)
{
    struct req q;
    enum MHD_Result ret;
    char *path;

    (void)version;
    (void)upload;
    if (*state == NULL) { /* the head */
        *state = &seen_head;
        /* answered now, so that the body is never read (libmicrohttpd
         * then closes the connection) */
        if (has_body(c))
            return respond_error(c, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
                                 "requests take no body");
        return MHD_YES; /* wait for the end of the request */
    }
    if (*upload_size > 0) { /* not announced: none is taken */
        *upload_size = 0;
        return MHD_YES;
    }
    memset(&q, 0, sizeof(q));
    q.w = cls;
    q.c = c;
    q.method = method;
    if (!host_ok(q.w, c))
        return respond_error(c, 421, NULL,
                             "this server answers the Host names "
                             "localhost, 127.0.0.1, [::1], the host of "
                             "--addr and those of --allow-host");

    if (strncmp(url, "/api/", 5) == 0) {
        path = llmb_xstrdup(url + 5);
        if (!split_path(&q, path))
            ret = respond_error(c, MHD_HTTP_NOT_FOUND, NULL,
                                "no such API path (docs/web.md)");
        else
            ret = route_api(&q);
        free(path);
        return ret;
    }
    if (strcmp(url, "/") == 0 || strncmp(url, "/static/", 8) == 0) {
        if (!is_get(method))
            return respond_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET, HEAD",
                                 "use GET");
        return get_asset(&q, strcmp(url, "/") == 0 ? "index.html" : url + 8);
    }
    return respond_error(c, MHD_HTTP_NOT_FOUND, NULL, "not found");
}
