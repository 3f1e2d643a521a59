/*
 * The llm executor's payload: checked field by field with a message that
 * names the field, then split in two. Only the fields of llmb_llm_fields
 * (llmb/llmfields.h) are taken: a typo such as "concurency" would
 * otherwise reach the server, which ignores it, and the run would not be
 * the run asked for. The push paths refuse them first; this check is for
 * jobs an older client pushed. The fields that steer the run (endpoint,
 * requests, concurrency, rate, warmup_requests, warmup_s, duration_s,
 * ramp_up_s, start_at_ms, start, start_timeout_s, timeout_s, retries,
 * retry_backoff_ms, max_records, record_itls, seed, slo, extra_body) are
 * taken out; the OpenAI request fields left (model, messages or prompt,
 * max_tokens, temperature, ...) are the request body, sent as they are,
 * with "stream" defaulting to true and, when streaming,
 * stream_options.include_usage set unless the payload sets
 * stream_options itself. The keys of "extra_body", an object, join the
 * body as they are: the server's own fields (vLLM's top_k, a sampling
 * seed, ...).
 *
 * The `benchmark` handler takes the seed document's shape: "provider"
 * names the endpoint and "iterations" the requests of the whole job,
 * spread over its tasks (task i gets iterations / tasks, and one more
 * when i < iterations % tasks; by replica in an A/B run); messages
 * default to a fixed prompt and max_tokens to
 * LLMB_LLM_BENCHMARK_MAX_TOKENS. Every llm field works there too.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <llmb/err.h>
#include <llmb/llmfields.h>

#include "llm.h"

static const char benchmark_prompt[] =
    "Explain in one paragraph how a distributed job queue keeps work from "
    "being lost when a worker crashes.";

/* A human name of v's JSON type, for messages. */
static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "something else";
}

/* Reads integer field name of o into *out (left alone when absent).
 * Returns 0, or -1 with *errstr. */
static int get_int(json_t *o, const char *kind, const char *name, long min,
                   long max, long *out, char **errstr)
{
    json_t *v = json_object_get(o, name);

    if (v == NULL)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min ||
        json_integer_value(v) > max) {
        char *s = llmb_llm_shown(v);
        *errstr = llmb_xasprintf("%s payload field \"%s\" must be an integer "
                                 "from %ld to %ld, got %s", kind, name, min,
                                 max, s);
        free(s);
        return -1;
    }
    *out = (long)json_integer_value(v);
    return 0;
}

/* Reads number field name of o, in (min, max] (or [min, max] when
 * min_ok), into *out (left alone when absent or null). */
static int get_num(json_t *o, const char *kind, const char *name, double min,
                   bool min_ok, double max, double *out, char **errstr)
{
    json_t *v = json_object_get(o, name);
    double d;

    if (v == NULL || json_is_null(v))
        return 0;
    d = json_is_number(v) ? json_number_value(v) : NAN;
    if (!json_is_number(v) || !(min_ok ? d >= min : d > min) || !(d <= max)) {
        char *s = llmb_llm_shown(v);
        *errstr = llmb_xasprintf("%s payload field \"%s\" must be a number "
                                 "%s %g and at most %g, got %s", kind, name,
                                 min_ok ? "of at least" : "greater than",
                                 min, max, s);
        free(s);
        return -1;
    }
    *out = d;
    return 0;
}

size_t llmb_llm_content_chars(const json_t *content)
{
    size_t n = 0, i;
    json_t *part;

    if (json_is_string(content))
        return json_string_length(content);
    json_array_foreach(content, i, part) {
        json_t *t = json_object_get(part, "text");
        if (json_is_string(t))
            n += json_string_length(t);
    }
    return n;
}

/* Checks messages; adds their text bytes to *chars. */
static int check_messages(json_t *m, const char *kind, size_t *chars,
                          char **errstr)
{
    size_t i;
    json_t *e;

    if (!json_is_array(m) || json_array_size(m) == 0) {
        *errstr = llmb_xasprintf("%s payload field \"messages\" must be a "
                                 "non-empty array of {\"role\", \"content\"} "
                                 "objects, got %s", kind,
                                 json_is_array(m) ? "an empty array" :
                                 type_name(m));
        return -1;
    }
    json_array_foreach(m, i, e) {
        if (!json_is_object(e) ||
            !json_is_string(json_object_get(e, "role"))) {
            *errstr = llmb_xasprintf("%s payload field \"messages\": item "
                                     "%zu must be an object with a string "
                                     "\"role\"", kind, i);
            return -1;
        }
        *chars += llmb_llm_content_chars(json_object_get(e, "content"));
    }
    return 0;
}

/* Checks prompt (a string, or a non-empty array of strings or token
 * ids); adds its text bytes (4 per token id) to *chars. */
static int check_prompt(json_t *p, const char *kind, size_t *chars,
                        char **errstr)
{
    size_t i;
    json_t *e;

    if (json_is_string(p)) {
        *chars += json_string_length(p);
        return 0;
    }
    if (json_is_array(p) && json_array_size(p) > 0) {
        json_array_foreach(p, i, e) {
            if (json_is_string(e))
                *chars += json_string_length(e);
            else if (json_is_integer(e))
                *chars += 4;
            else
                break;
        }
        if (i == json_array_size(p))
            return 0;
    }
    *errstr = llmb_xasprintf("%s payload field \"prompt\" must be a string "
                             "or a non-empty array of strings or token ids, "
                             "got %s", kind, type_name(p));
    return -1;
}

/* The endpoint field (called field in messages): named, or the only one
 * configured. */
static int pick_endpoint(struct llmb_llm_spec *spec, json_t *o,
                         const char *kind, const char *field,
                         const struct llmb_llm_endpoints *eps, char **errstr)
{
    json_t *v = json_object_get(o, "endpoint");
    struct llmb_buf names;

    llmb_buf_init(&names);
    for (size_t i = 0; i < eps->n; i++)
        llmb_buf_appendf(&names, "%s%s", i > 0 ? ", " : "", eps->v[i].name);
    if (eps->n == 0) {
        *errstr = llmb_xasprintf("no LLM endpoint is configured on this "
                                 "worker; start it with --llm-endpoint "
                                 "NAME=BASE_URL");
    } else if (v == NULL && eps->n == 1) {
        spec->ep = &eps->v[0];
    } else if (v == NULL) {
        *errstr = llmb_xasprintf("%s payload needs \"%s\": one of %s (the "
                                 "worker's --llm-endpoint names)", kind,
                                 field, names.data);
    } else if (!json_is_string(v)) {
        *errstr = llmb_xasprintf("%s payload field \"%s\" must be a string, "
                                 "got %s", kind, field, type_name(v));
    } else {
        spec->ep = llmb_llm_endpoints_find(eps, json_string_value(v));
        if (spec->ep == NULL)
            *errstr = llmb_xasprintf("%s payload field \"%s\": no endpoint "
                                     "named \"%s\" on this worker "
                                     "(configured: %s)", kind, field,
                                     json_string_value(v), names.data);
    }
    llmb_buf_fini(&names);
    return spec->ep != NULL ? 0 : -1;
}

/* Checks the list "name" of o ("endpoints" or "models"): 1 to
 * LLMB_LLM_AB_MAX distinct non-empty strings. Returns its size (0 when
 * absent or null), or -1 with *errstr. */
static long ab_list(json_t *o, const char *kind, const char *name,
                    char **errstr)
{
    json_t *v = json_object_get(o, name), *e;
    size_t i, n;

    if (v == NULL || json_is_null(v))
        return 0;
    n = json_array_size(v);
    if (!json_is_array(v) || n < 1 || n > LLMB_LLM_AB_MAX) {
        *errstr = llmb_xasprintf("%s payload field \"%s\" must be an array "
                                 "of 1 to %d names, got %s", kind, name,
                                 LLMB_LLM_AB_MAX, json_is_array(v) ?
                                 (n == 0 ? "an empty array" :
                                  "a longer array") : type_name(v));
        return -1;
    }
    json_array_foreach(v, i, e) {
        const char *s = json_string_value(e);
        if (s == NULL || *s == '\0' || strlen(s) > LLMB_LLM_AB_NAME_MAX) {
            *errstr = llmb_xasprintf("%s payload field \"%s\": item %zu "
                                     "must be a string of 1 to %d bytes, got "
                                     "%s", kind, name, i,
                                     LLMB_LLM_AB_NAME_MAX,
                                     s != NULL ? "a longer one" :
                                     type_name(e));
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_string_value(json_array_get(v, j)), s) == 0) {
                *errstr = llmb_xasprintf("%s payload field \"%s\" names "
                                         "\"%s\" twice", kind, name, s);
                return -1;
            }
    }
    return (long)n;
}

/* A/B runs (docs/llm.md): "endpoints" and/or "models" spread the job's
 * tasks over every (endpoint, model) pair, endpoint-major: task i takes
 * pair i mod (endpoints x models), so that endpoint e and model m go to
 * task e * models + m (and every pairs-th task after). The pair is written
 * into o as "endpoint" and "model" (which the payload must then not
 * give), the number of pairs into spec->pairs, and the task's result
 * names its pair in "_group". */
static int pick_combo(struct llmb_llm_spec *spec, json_t *o,
                      const char *kind, const struct llmb_llm_endpoints *eps,
                      const struct llmb_exec_task *t, char **errstr)
{
    long ne = ab_list(o, kind, "endpoints", errstr), nm, pair;
    json_t *es = json_object_get(o, "endpoints");
    json_t *ms = json_object_get(o, "models");

    if (ne < 0 || (nm = ab_list(o, kind, "models", errstr)) < 0)
        return -1;
    if (ne == 0 && nm == 0)
        return 0;
    if (ne > 0 && json_object_get(o, "endpoint") != NULL) {
        *errstr = llmb_xasprintf("%s payload fields \"endpoints\" and "
                                 "\"%s\" cannot go together: give one",
                                 kind, json_object_get(o, "provider") ?
                                 "provider" : "endpoint");
        return -1;
    }
    if (nm > 0 && json_object_get(o, "model") != NULL) {
        *errstr = llmb_xasprintf("%s payload fields \"models\" and \"model\" "
                                 "cannot go together: give one", kind);
        return -1;
    }
    for (long i = 0; i < ne; i++) {
        const char *name = json_string_value(json_array_get(es, (size_t)i));
        if (llmb_llm_endpoints_find(eps, name) == NULL) {
            *errstr = llmb_xasprintf("%s payload field \"endpoints\": no "
                                     "endpoint named \"%s\" on this worker",
                                     kind, name);
            return -1;
        }
    }
    spec->pairs = (ne > 0 ? ne : 1) * (nm > 0 ? nm : 1);
    pair = t->task % spec->pairs;
    if (ne > 0)
        json_object_set(o, "endpoint", json_array_get(es, (size_t)(
                            nm > 0 ? pair / nm : pair)));
    if (nm > 0)
        json_object_set(o, "model", json_array_get(ms, (size_t)(pair % nm)));
    spec->ab = true;
    return 0;
}

/* The benchmark shape: provider -> endpoint, iterations checked (its
 * share is iterations_share's, once the pairs are known), a default
 * prompt and max_tokens. */
static int benchmark_map(json_t *o, const char **field, char **errstr)
{
    json_t *prov = json_object_get(o, "provider");
    long iterations = 1;

    if (prov != NULL) {
        json_t *ep = json_object_get(o, "endpoint");
        if (ep != NULL && !json_equal(ep, prov)) {
            *errstr = llmb_xstrdup("benchmark payload: \"provider\" and "
                                   "\"endpoint\" name different endpoints; "
                                   "give one");
            return -1;
        }
        json_object_set(o, "endpoint", prov);
        json_object_del(o, "provider");
        *field = "provider";
    } else if (json_object_get(o, "endpoint") != NULL) {
        *field = "endpoint";
    }
    if (json_object_get(o, "iterations") != NULL) {
        if (json_object_get(o, "requests") != NULL) {
            *errstr = llmb_xstrdup("benchmark payload: give \"iterations\" "
                                   "(requests of the whole job) or "
                                   "\"requests\" (per task), not both");
            return -1;
        }
        if (get_int(o, "benchmark", "iterations", 1, 1000000000L,
                    &iterations, errstr) != 0)
            return -1;
    }
    if (json_object_get(o, "messages") == NULL &&
        json_object_get(o, "prompt") == NULL &&
        llmb_llm_workload_field(o, "synthetic") == NULL &&
        llmb_llm_workload_field(o, "dataset") == NULL) {
        json_t *m = json_pack("[{s:s, s:s}]", "role", "user", "content",
                              benchmark_prompt);
        json_object_set_new(o, "messages", m);
    }
    if (json_object_get(o, "max_tokens") == NULL &&
        json_object_get(o, "max_completion_tokens") == NULL)
        json_object_set_new(o, "max_tokens",
                            json_integer(LLMB_LLM_BENCHMARK_MAX_TOKENS));
    return 0;
}

/* The benchmark's "iterations" (the whole job's requests, checked by
 * benchmark_map) -> this task's "requests": task i of n gets
 * iterations / n, and one more when i < iterations % n. In an A/B run of
 * P pairs the one more goes by replica instead (r < (iterations % n) /
 * P), so that every pair of a replica sends as many requests (and the
 * same prompts): a remainder that is not a multiple of P leaves up to
 * P - 1 unsent. */
static void iterations_share(json_t *o, const struct llmb_llm_spec *spec,
                             const struct llmb_exec_task *t)
{
    json_t *it = json_object_get(o, "iterations");
    long n = t->tasks > 0 ? t->tasks : 1, iterations, share;

    if (it == NULL)
        return;
    iterations = (long)json_integer_value(it);
    share = iterations / n;
    if (spec->pairs > 1)
        share += spec->replica < iterations % n / spec->pairs ? 1 : 0;
    else
        share += t->task < iterations % n ? 1 : 0;
    json_object_set_new(o, "requests", json_integer(share));
    json_object_del(o, "iterations");
}

/* Checks the request fields the executor relies on, sets the defaults,
 * and fills spec from them. */
static int request_fields(struct llmb_llm_spec *spec, json_t *o,
                          const char *kind, char **errstr)
{
    json_t *model = json_object_get(o, "model");
    json_t *msgs = json_object_get(o, "messages");
    json_t *prompt = json_object_get(o, "prompt");
    json_t *stream = json_object_get(o, "stream");
    long l = 0;
    double d = 0;

    if (!json_is_string(model) || json_string_length(model) == 0) {
        *errstr = llmb_xasprintf("%s payload needs \"model\", a non-empty "
                                 "string%s%s", kind,
                                 model != NULL ? ", got " : "",
                                 model != NULL ? type_name(model) : "");
        return -1;
    }
    spec->model = llmb_xstrdup(json_string_value(model));
    if (spec->wl.kind != LLMB_LLM_WL_NONE) {
        /* each request's prompt comes from the workload (llm_workload.c) */
        spec->chat = !spec->wl.completions;
    } else if ((msgs == NULL) == (prompt == NULL)) {
        *errstr = llmb_xasprintf("%s payload needs %s \"messages\" (for "
                                 "/chat/completions) or \"prompt\" (for "
                                 "/completions)", kind,
                                 msgs == NULL ? "one of" : "only one of");
        return -1;
    } else {
        spec->chat = msgs != NULL;
        if (spec->chat ?
            check_messages(msgs, kind, &spec->input_chars, errstr) :
            check_prompt(prompt, kind, &spec->input_chars, errstr))
            return -1;
    }
    if (get_int(o, kind, "max_tokens", 1, 100000000L, &l, errstr) != 0 ||
        get_int(o, kind, "max_completion_tokens", 1, 100000000L, &l,
                errstr) != 0 ||
        get_num(o, kind, "temperature", 0.0, true, 2.0, &d, errstr) != 0)
        return -1;
    if (stream != NULL && !json_is_boolean(stream)) {
        *errstr = llmb_xasprintf("%s payload field \"stream\" must be true "
                                 "or false, got %s", kind, type_name(stream));
        return -1;
    }
    spec->stream = stream == NULL || json_is_true(stream);
    if (stream == NULL)
        json_object_set_new(o, "stream", json_true());
    if (spec->stream && json_object_get(o, "stream_options") == NULL)
        json_object_set_new(o, "stream_options",
                            json_pack("{s:b}", "include_usage", 1));
    return 0;
}

/* The SLO thresholds of goodput: "slo": {"ttft_ms": 200, "tpot_ms": 50,
 * "e2e_ms": 2000}, each optional, at least one, a number of ms greater
 * than 0; null or absent means no SLO. */
static int get_slo(json_t *o, const char *kind, struct llmb_llm_slo *slo,
                   char **errstr)
{
    static const char *const names[] = {"ttft_ms", "tpot_ms", "e2e_ms"};
    double *at[] = {&slo->ttft_ms, &slo->tpot_ms, &slo->e2e_ms};
    json_t *v = json_object_get(o, "slo");
    const char *key;
    json_t *e;

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v) || json_object_size(v) == 0) {
        char *sh = llmb_llm_shown(v);
        *errstr = llmb_xasprintf("%s payload field \"slo\" must be an object "
                                 "with at least one of \"ttft_ms\", "
                                 "\"tpot_ms\", \"e2e_ms\", got %s", kind, sh);
        free(sh);
        return -1;
    }
    json_object_foreach(v, key, e) {
        size_t i = 0;
        double d;
        while (i < 3 && strcmp(key, names[i]) != 0)
            i++;
        if (i == 3) {
            *errstr = llmb_xasprintf("%s payload field \"slo\" has an unknown "
                                     "key \"%.40s\" (known: ttft_ms, tpot_ms, "
                                     "e2e_ms)", kind, key);
            return -1;
        }
        d = json_is_number(e) ? json_number_value(e) : NAN;
        if (!(d > 0 && d <= 86400000.0)) {
            char *sh = llmb_llm_shown(e);
            *errstr = llmb_xasprintf("%s payload field \"slo.%s\" must be a "
                                     "number of ms greater than 0 and at most "
                                     "86400000, got %s", kind, key, sh);
            free(sh);
            return -1;
        }
        *at[i] = d;
    }
    return 0;
}

/* "extra_body": an object whose keys join the request body as they are,
 * for the server's own fields. A key the executor checks at the top level
 * (model, stream, ...) is refused there, so that nothing it relies on is
 * changed unchecked. On success *extra is a new reference, or NULL. */
static int get_extra(json_t *o, const char *kind, json_t **extra,
                     char **errstr)
{
    json_t *v = json_object_get(o, "extra_body"), *e;
    const char *key;

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v)) {
        *errstr = llmb_xasprintf("%s payload field \"extra_body\" must be an "
                                 "object (its keys join the request body), "
                                 "got %s", kind, type_name(v));
        return -1;
    }
    json_object_foreach(v, key, e) {
        const struct llmb_llm_field *f = llmb_llm_field_find(key, false);
        if (f != NULL && f->kind == LLMB_LLM_FIELD_REQUEST) {
            *errstr = llmb_xasprintf("%s payload field \"extra_body\" has "
                                     "\"%s\", a field llmb knows: give it "
                                     "at the top level of the payload",
                                     kind, key);
            return -1;
        }
    }
    *extra = json_incref(v);
    return 0;
}

/* "start": "now" (the default) or "together" (the job's rendezvous), and
 * its "start_timeout_s". */
static int get_start(struct llmb_llm_spec *spec, json_t *o, const char *kind,
                     char **errstr)
{
    json_t *v = json_object_get(o, "start");
    const char *s = json_string_value(v);

    spec->start_timeout_s = LLMB_LLM_DEFAULT_START_TIMEOUT_S;
    if (v != NULL && !json_is_null(v)) {
        if (s == NULL || (strcmp(s, "now") != 0 &&
                          strcmp(s, "together") != 0)) {
            char *t = llmb_llm_shown(v);
            *errstr = llmb_xasprintf("%s payload field \"start\" must be "
                                     "\"now\" or \"together\", got %s", kind,
                                     t);
            free(t);
            return -1;
        }
        spec->together = strcmp(s, "together") == 0;
    }
    return get_num(o, kind, "start_timeout_s", 0.0, false, 86400.0,
                   &spec->start_timeout_s, errstr);
}

/* "record_itls": true or false (the default). */
static int get_record_itls(struct llmb_llm_spec *spec, json_t *o,
                           const char *kind, char **errstr)
{
    json_t *v = json_object_get(o, "record_itls");

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        *errstr = llmb_xasprintf("%s payload field \"record_itls\" must be "
                                 "true or false, got %s", kind,
                                 type_name(v));
        return -1;
    }
    spec->record_itls = json_is_true(v);
    return 0;
}

/* The fields that steer the run. */
static int control(struct llmb_llm_spec *spec, json_t *o, const char *kind,
                   bool benchmark, char **errstr)
{
    long seed = -1;
    double start_at = 0;

    spec->requests = 1;
    spec->concurrency = 1;
    spec->timeout_s = LLMB_LLM_DEFAULT_TIMEOUT_S;
    spec->retries = LLMB_LLM_DEFAULT_RETRIES;
    spec->retry_backoff_ms = LLMB_LLM_DEFAULT_BACKOFF_MS;
    spec->max_records = LLMB_LLM_DEFAULT_MAX_RECORDS;
    if (get_int(o, kind, "requests", benchmark ? 0 : 1, 1000000L,
                &spec->requests, errstr) != 0 ||
        get_int(o, kind, "concurrency", 1, 100000L, &spec->concurrency,
                errstr) != 0 ||
        get_num(o, kind, "rate", 0.0, false, 1000000.0, &spec->rate,
                errstr) != 0 ||
        get_num(o, kind, "timeout_s", 0.0, false, 86400.0, &spec->timeout_s,
                errstr) != 0 ||
        get_int(o, kind, "retries", 0, 100L, &spec->retries, errstr) != 0 ||
        get_int(o, kind, "retry_backoff_ms", 0, 600000L,
                &spec->retry_backoff_ms, errstr) != 0 ||
        get_int(o, kind, "max_records", 0, LLMB_LLM_MAX_RECORDS,
                &spec->max_records, errstr) != 0 ||
        get_int(o, kind, "seed", 0, 0x7fffffffL, &seed, errstr) != 0 ||
        get_slo(o, kind, &spec->slo, errstr) != 0 ||
        get_int(o, kind, "warmup_requests", 0, 1000000L,
                &spec->warmup_requests, errstr) != 0 ||
        get_num(o, kind, "warmup_s", 0.0, true, 604800.0, &spec->warmup_s,
                errstr) != 0 ||
        get_num(o, kind, "duration_s", 0.0, false, 604800.0,
                &spec->duration_s, errstr) != 0 ||
        get_num(o, kind, "ramp_up_s", 0.0, true, 604800.0, &spec->ramp_up_s,
                errstr) != 0 ||
        get_num(o, kind, "start_at_ms", 0.0, true, 1e15, &start_at,
                errstr) != 0 ||
        get_start(spec, o, kind, errstr) != 0 ||
        get_record_itls(spec, o, kind, errstr) != 0)
        return -1;
    if (spec->together && start_at != 0) {
        *errstr = llmb_xasprintf("%s payload fields \"start\": \"together\" "
                                 "and \"start_at_ms\" cannot go together: "
                                 "give one", kind);
        return -1;
    }
    if (start_at != 0 && start_at != floor(start_at)) {
        *errstr = llmb_xasprintf("%s payload field \"start_at_ms\" must be "
                                 "an integer (ms since the epoch), got %.3f",
                                 kind, start_at);
        return -1;
    }
    spec->start_at_ms = (int64_t)start_at;
    /* With duration_s and no requests, time alone ends the run. */
    if (spec->duration_s > 0 && json_object_get(o, "requests") == NULL)
        spec->requests = LLMB_LLM_UNBOUNDED;
    if (seed >= 0) {
        spec->seeded = true;
        spec->seed = (uint64_t)seed;
    }
    return 0;
}

int llmb_llm_spec_parse(struct llmb_llm_spec *spec, enum llmb_llm_kind kind,
                        const struct llmb_llm_endpoints *eps,
                        const struct llmb_exec_task *t, char **errstr)
{
    bool bench = kind == LLMB_LLM_KIND_BENCHMARK;
    const char *kname = bench ? "benchmark" : "llm";
    const char *field = bench ? "provider" : "endpoint";
    json_error_t jerr;
    json_t *o = json_loadb(t->payload, t->payload_len, JSON_DECODE_ANY,
                           &jerr);
    json_t *extra = NULL;
    int rc = LLMB_EINVAL;

    memset(spec, 0, sizeof(*spec));
    if (!json_is_object(o)) {
        *errstr = llmb_xasprintf("%s payload must be a JSON object, got %s",
                                 kname, o != NULL ? type_name(o) :
                                 "text that is not JSON");
        goto out;
    }
    if (llmb_llm_fields_check(o, bench, errstr) != 0 ||
        get_extra(o, kname, &extra, errstr) != 0)
        goto out;
    if (bench && benchmark_map(o, &field, errstr) != 0)
        goto out;
    spec->pairs = 1;
    if (pick_combo(spec, o, kname, eps, t, errstr) != 0)
        goto out;
    /* the replica: what the task's prompts are keyed on, the same for
     * every pair (docs/llm.md, "A/B runs") */
    spec->replica = t->task / spec->pairs;
    spec->replicas = ((t->tasks > 0 ? t->tasks : 1) + spec->pairs - 1) /
                     spec->pairs;
    if (bench)
        iterations_share(o, spec, t);
    if (llmb_llm_workload_parse(&spec->wl, o, kname, t, spec->replica,
                                spec->replicas, errstr) != 0 ||
        pick_endpoint(spec, o, kname, field, eps, errstr) != 0 ||
        control(spec, o, kname, bench, errstr) != 0 ||
        request_fields(spec, o, kname, errstr) != 0)
        goto out;
    /* A dataset without "requests" (or "iterations", or a duration): each
     * entry of the task's part once. */
    if (spec->wl.kind == LLMB_LLM_WL_DATASET && spec->duration_s <= 0 &&
        json_object_get(o, "requests") == NULL)
        spec->requests = spec->wl.count;
    spec->url = spec->chat ? spec->ep->chat_url : spec->ep->text_url;
    for (size_t i = 0; i < llmb_llm_nfields; i++)
        if (llmb_llm_fields[i].kind != LLMB_LLM_FIELD_REQUEST)
            json_object_del(o, llmb_llm_fields[i].name);
    if (extra != NULL)
        json_object_update(o, extra);
    spec->body = json_dumps(o, JSON_COMPACT);
    llmb_assert(spec->body != NULL);
    spec->body_len = strlen(spec->body);
    if (spec->wl.kind != LLMB_LLM_WL_NONE)
        llmb_llm_workload_set_body(&spec->wl, o);
    if (spec->concurrency > spec->requests && spec->requests > 0)
        spec->concurrency = spec->requests;
    rc = 0;
out:
    json_decref(extra);
    json_decref(o);
    if (rc != 0)
        llmb_llm_spec_fini(spec);
    return rc;
}

void llmb_llm_spec_fini(struct llmb_llm_spec *spec)
{
    free(spec->model);
    free(spec->body);
    llmb_llm_workload_fini(&spec->wl);
    memset(spec, 0, sizeof(*spec));
}
