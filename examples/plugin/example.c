/*
 * An example llmb executor plugin (include/llmb/executor.h). Build it as a
 * shared object and give it to a worker:
 *
 *   llmb-worker --handler 'sum=plugin:/path/libllmb_example_plugin.so hello'
 *
 * For each task it waits payload "delay_ms" milliseconds on the worker's
 * loop (an ev_timer: never block the loop), then returns
 *   {"greeting": "<config>", "sum": 1+2+...+n, "task": i, "attempt": a}
 * for payload {"n": n}. Payload {"fail": "text"} fails the task with that
 * text; {"fatal": "text"} fails it for good. cancel() stops the timer and
 * reports at once.
 *
 * The only symbol it exports is llmb_executor_v1 (built with hidden
 * visibility by default).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <jansson.h>

#include <llmb/executor.h>

/* The instance: what the handler spec configured. */
struct example {
    char *greeting;
};

/* One running task. */
struct example_run {
    ev_timer timer;
    struct ev_loop *loop;
    llmb_exec_done_fn *done;
    void *token;
    char *result; /* JSON text to report when the timer fires */
};

static void *example_init(const char *config, char **errstr)
{
    struct example *e = calloc(1, sizeof(*e));

    if (e == NULL || (e->greeting = strdup(config[0] ? config : "hi")) == NULL) {
        free(e);
        *errstr = strdup("example plugin: out of memory");
        return NULL;
    }
    return e;
}

static void example_fini(void *instance)
{
    struct example *e = instance;

    free(e->greeting);
    free(e);
}

/* Reports an error built from a string field of the payload. */
static void fail_with(llmb_exec_done_fn *done, void *token,
                      enum llmb_exec_status st, json_t *text)
{
    const char *s = json_string_value(text);
    done(token, st, s, strlen(s));
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct example_run *r = w->data;

    (void)loop;
    (void)revents;
    r->done(r->token, LLMB_EXEC_OK, r->result, strlen(r->result));
    free(r->result);
    free(r);
}

static void *example_start(void *instance, const struct llmb_exec_task *t,
                           struct ev_loop *loop, llmb_exec_done_fn *done,
                           void *token)
{
    struct example *e = instance;
    json_error_t jerr;
    json_t *p = json_loadb(t->payload, t->payload_len, JSON_DECODE_ANY, &jerr);
    json_t *out = NULL;
    struct example_run *r = NULL;

    if (!json_is_object(p)) {
        static const char msg[] = "example plugin: payload must be an object";
        json_decref(p);
        done(token, LLMB_EXEC_FATAL, msg, sizeof(msg) - 1);
        return NULL;
    }
    if (json_is_string(json_object_get(p, "fatal"))) {
        fail_with(done, token, LLMB_EXEC_FATAL, json_object_get(p, "fatal"));
        json_decref(p);
        return NULL;
    }
    if (json_is_string(json_object_get(p, "fail"))) {
        fail_with(done, token, LLMB_EXEC_ERROR, json_object_get(p, "fail"));
        json_decref(p);
        return NULL;
    }
    json_int_t n = json_integer_value(json_object_get(p, "n"));
    double delay_ms = json_number_value(json_object_get(p, "delay_ms"));
    json_decref(p);

    out = json_pack("{s:s, s:I, s:i, s:i}", "greeting", e->greeting, "sum",
                    (json_int_t)(n * (n + 1) / 2), "task", (int)t->task,
                    "attempt", (int)t->attempt);
    r = calloc(1, sizeof(*r));
    if (out == NULL || r == NULL) {
        static const char msg[] = "example plugin: out of memory";
        json_decref(out);
        free(r);
        done(token, LLMB_EXEC_ERROR, msg, sizeof(msg) - 1);
        return NULL;
    }
    r->result = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    r->loop = loop;
    r->done = done;
    r->token = token;
    ev_timer_init(&r->timer, timer_cb, delay_ms > 0 ? delay_ms / 1000.0 : 0.0,
                  0.0);
    r->timer.data = r;
    ev_timer_start(loop, &r->timer);
    return r;
}

static void example_cancel(void *handle)
{
    struct example_run *r = handle;
    static const char msg[] = "cancelled";

    ev_timer_stop(r->loop, &r->timer);
    r->done(r->token, LLMB_EXEC_ERROR, msg, sizeof(msg) - 1);
    free(r->result);
    free(r);
}

__attribute__((visibility("default")))
const struct llmb_executor llmb_executor_v1 = {
    LLMB_EXECUTOR_ABI, "example", example_init, example_start, example_cancel,
    example_fini,
};
