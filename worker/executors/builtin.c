/*
 * The built-in executors for tests and benchmarks: noop, sleep, echo and
 * fail. noop, echo and fail finish inside start(); sleep holds an ev_timer
 * per task. They read the payload with jansson only when they need a
 * field of it, so noop costs nothing per task.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <llmb/util.h>

#include "executors.h"

static void *builtin_init(const char *config, char **errstr)
{
    static int instance;

    if (config != NULL && config[0] != '\0') {
        *errstr = llmb_xasprintf("built-in handlers take no configuration, "
                                 "got \"%s\"", config);
        return NULL;
    }
    return &instance;
}

static void builtin_fini(void *instance)
{
    (void)instance;
}

static void builtin_cancel_none(void *handle)
{
    (void)handle; /* never called: these finish inside start() */
}

static void *noop_start(void *instance, const struct llmb_exec_task *t,
                        struct ev_loop *loop, llmb_exec_done_fn *done,
                        void *token)
{
    (void)instance;
    (void)t;
    (void)loop;
    done(token, LLMB_EXEC_OK, "{}", 2);
    return NULL;
}

const struct llmb_executor llmb_executor_noop = {
    LLMB_EXECUTOR_ABI, "noop", builtin_init, noop_start, builtin_cancel_none,
    builtin_fini,
};

/* True when the JSON text s starts with '{' after white space. */
static int is_object_text(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' ||
                     s[i] == '\n'))
        i++;
    return i < n && s[i] == '{';
}

static void *echo_start(void *instance, const struct llmb_exec_task *t,
                        struct ev_loop *loop, llmb_exec_done_fn *done,
                        void *token)
{
    (void)instance;
    (void)loop;
    if (is_object_text(t->payload, t->payload_len)) {
        done(token, LLMB_EXEC_OK, t->payload, t->payload_len);
    } else {
        struct llmb_buf b;
        llmb_buf_init(&b);
        llmb_buf_append(&b, "{\"value\":", 9);
        llmb_buf_append(&b, t->payload, t->payload_len);
        llmb_buf_append(&b, "}", 1);
        done(token, LLMB_EXEC_OK, b.data, b.len);
        llmb_buf_fini(&b);
    }
    return NULL;
}

const struct llmb_executor llmb_executor_echo = {
    LLMB_EXECUTOR_ABI, "echo", builtin_init, echo_start, builtin_cancel_none,
    builtin_fini,
};

/* Decodes the payload; NULL when it is not JSON. */
static json_t *payload_decode(const struct llmb_exec_task *t)
{
    return json_loadb(t->payload, t->payload_len, JSON_DECODE_ANY, NULL);
}

static void *fail_start(void *instance, const struct llmb_exec_task *t,
                        struct ev_loop *loop, llmb_exec_done_fn *done,
                        void *token)
{
    json_t *p = payload_decode(t);
    const char *msg = "failed on purpose (fail handler)";
    enum llmb_exec_status st = LLMB_EXEC_ERROR;

    (void)instance;
    (void)loop;
    if (json_is_object(p)) {
        json_t *m = json_object_get(p, "message");
        if (json_is_string(m))
            msg = json_string_value(m);
        if (json_is_true(json_object_get(p, "fatal")))
            st = LLMB_EXEC_FATAL;
    }
    done(token, st, msg, strlen(msg));
    json_decref(p);
    return NULL;
}

const struct llmb_executor llmb_executor_fail = {
    LLMB_EXECUTOR_ABI, "fail", builtin_init, fail_start, builtin_cancel_none,
    builtin_fini,
};

/* A sleeping task: its timer and how to report. */
struct sleep_run {
    ev_timer timer;
    struct ev_loop *loop;
    llmb_exec_done_fn *done;
    void *token;
    long long ms;
};

static void sleep_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sleep_run *s = w->data;
    char out[64];
    int n = snprintf(out, sizeof(out), "{\"slept_ms\":%lld}", s->ms);

    (void)loop;
    (void)revents;
    s->done(s->token, LLMB_EXEC_OK, out, (size_t)n);
    free(s);
}

static void *sleep_start(void *instance, const struct llmb_exec_task *t,
                         struct ev_loop *loop, llmb_exec_done_fn *done,
                         void *token)
{
    json_t *p = payload_decode(t);
    json_t *ms = json_is_object(p) ? json_object_get(p, "ms") : NULL;
    struct sleep_run *s = NULL;

    (void)instance;
    if (!json_is_number(ms) || json_number_value(ms) < 0 ||
        json_number_value(ms) > 604800000.0) {
        static const char msg[] = "the sleep handler needs a payload "
                                  "{\"ms\": N} with N from 0 to 604800000";
        json_decref(p);
        done(token, LLMB_EXEC_FATAL, msg, sizeof(msg) - 1);
        return NULL;
    }
    s = llmb_xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->done = done;
    s->token = token;
    s->ms = (long long)json_number_value(ms);
    json_decref(p);
    ev_timer_init(&s->timer, sleep_timer_cb, (ev_tstamp)s->ms / 1000.0, 0.0);
    s->timer.data = s;
    ev_timer_start(loop, &s->timer);
    return s;
}

static void sleep_cancel(void *handle)
{
    struct sleep_run *s = handle;
    static const char msg[] = "cancelled";

    ev_timer_stop(s->loop, &s->timer);
    s->done(s->token, LLMB_EXEC_ERROR, msg, sizeof(msg) - 1);
    free(s);
}

const struct llmb_executor llmb_executor_sleep = {
    LLMB_EXECUTOR_ABI, "sleep", builtin_init, sleep_start, sleep_cancel,
    builtin_fini,
};
