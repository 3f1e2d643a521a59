/*
 * The llm executor's records and task result. Each request ends as one
 * record; a task keeps up to max_records of them (a uniform sample,
 * Vitter's algorithm R, once there are more) and exact totals over all.
 *
 * The result is shaped for the coordinator's aggregate (lib/aggregate.c
 * flattens numbers to dotted paths): "metrics" holds the task's
 * histograms over every successful request and every token gap
 * (llm_metrics.c), which the aggregation merges, so the job's latency
 * percentiles never come from a sample; "summary" holds the task's
 * totals, whose sums over tasks the aggregate gives. "_requests" is the
 * sample of records, for a look at single requests: the aggregate skips
 * top-level keys starting with "_". A successful record has the latency
 * fields; a failed one only its status, class and message (cut to
 * LLMB_LLM_LINE_MESSAGE bytes, as in the record lines). docs/llm.md
 * lists the fields.
 *
 * Every record also goes, as one compact line, to the worker's record
 * sink (llmb_llm_record_sink), in chunks of about LLMB_LLM_CHUNK_BYTES,
 * which the worker appends to the job's records with llmb_records before
 * the task's outcome: `llmb export` reads those, all of them.
 *
 * Those are every record, bounded per job by max_record_bytes; the
 * sample is bounded by max_records (at most LLMB_LLM_MAX_RECORDS).
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <llmb/log.h>

#include "llm.h"

llmb_llm_sink_fn *llmb_llm_record_sink;

static const char *const class_names[LLMB_LLM_NCLASS] = {
    "ok", "timeout", "connect", "http_4xx", "http_429", "http_5xx",
    "protocol",
};

const char *llmb_llm_class_name(enum llmb_llm_class c)
{
    return (unsigned)c < LLMB_LLM_NCLASS ? class_names[c] : "?";
}

void llmb_llm_records_init(struct llmb_llm_records *rs, size_t max,
                           const struct llmb_llm_slo *slo)
{
    memset(rs, 0, sizeof(*rs));
    rs->max = max;
    llmb_llm_metrics_init(&rs->metrics, slo);
}

void llmb_llm_records_fini(struct llmb_llm_records *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        free(rs->v[i].message);
    free(rs->v);
    free(rs->first_error);
    free(rs->head);
    llmb_buf_fini(&rs->lines);
    llmb_llm_metrics_fini(&rs->metrics);
    memset(rs, 0, sizeof(*rs));
}

void llmb_llm_records_sink(struct llmb_llm_records *rs, void *token,
                           long attempt, const char *endpoint,
                           const char *model)
{
    if (llmb_llm_record_sink == NULL)
        return;
    rs->sink = llmb_llm_record_sink;
    rs->token = token;
    rs->attempt = attempt;
    rs->t0_ms = llmb_now_ms();
    rs->t0_us = llmb_mono_us();
    free(rs->head);
    rs->head = llmb_xasprintf("%s\t%s", endpoint, model);
    for (char *c = rs->head; *c != '\0'; c++)
        if (*c == '\n')
            *c = ' ';
    llmb_buf_init(&rs->lines);
}

void llmb_llm_records_mark_start(struct llmb_llm_records *rs)
{
    rs->t0_ms = llmb_now_ms();
    rs->t0_us = llmb_mono_us();
}

void llmb_llm_records_flush(struct llmb_llm_records *rs)
{
    struct llmb_buf b;

    if (rs->sink == NULL || rs->lines.len == 0)
        return;
    llmb_buf_init(&b);
    llmb_buf_appendf(&b, "%ld\t%ld\t%s\t%lld\n", rs->attempt, rs->chunks++,
                     rs->head, (long long)rs->t0_ms);
    llmb_buf_append(&b, rs->lines.data, rs->lines.len);
    rs->sink(rs->token, b.data, b.len);
    llmb_buf_fini(&b);
    llmb_buf_reset(&rs->lines);
}

/* Appends v in ms with 3 decimals, its trailing zeros cut; nothing when
 * v < 0 (not measured). */
static void line_ms(struct llmb_buf *b, double v)
{
    char s[48];
    int n;

    if (v >= 0 && v < 1e12) {
        n = snprintf(s, sizeof(s), "%.3f", v);
        while (n > 0 && s[n - 1] == '0')
            n--;
        if (n > 0 && s[n - 1] == '.')
            n--;
        llmb_buf_append(b, s, (size_t)n);
    }
    llmb_buf_append(b, "\t", 1);
}

/* The record line of rec (request n of the task), at most about 130 bytes
 * plus LLMB_LLM_LINE_MESSAGE, plus with rs->itls 11 bytes per gap (at
 * most LLMB_LLM_ITLS_MAX): columns in docs/llm.md, "Records". A chunk
 * that this line would take past LLMB_LLM_CHUNK_BYTES goes first. */
static void line_add(struct llmb_llm_records *rs,
                     const struct llmb_llm_record *rec, uint64_t n)
{
    struct llmb_buf line;
    struct llmb_buf *b = &line;
    double end = (double)(llmb_mono_us() - rs->t0_us) / 1000.0;
    uint32_t gmax = 0;
    size_t mlen;

    llmb_buf_init(&line);
    for (size_t i = 0; i < rec->ngaps; i++)
        if (rec->gaps_us[i] > gmax)
            gmax = rec->gaps_us[i];
    llmb_buf_appendf(b, "%llu\t", (unsigned long long)n);
    line_ms(b, rec->e2e_ms >= 0 && rec->e2e_ms <= end ? end - rec->e2e_ms :
            end);
    line_ms(b, end);
    line_ms(b, rec->ttft_ms);
    line_ms(b, rec->itl_ms);
    line_ms(b, rec->tpot_ms);
    llmb_buf_appendf(b, "%zu\t", rec->ngaps);
    line_ms(b, rec->ngaps > 0 ? (double)gmax / 1000.0 : -1.0);
    if (rec->cls == LLMB_LLM_OK)
        llmb_buf_appendf(b, "%ld\t%ld\t", rec->input_tokens,
                         rec->output_tokens);
    else
        llmb_buf_append(b, "\t\t", 2);
    llmb_buf_appendf(b, "%ld\t%s\t%ld\t", rec->status,
                     llmb_llm_class_name(rec->cls), rec->attempts);
    mlen = rec->message != NULL ? llmb_utf8_cut(rec->message,
                                                strlen(rec->message),
                                                LLMB_LLM_LINE_MESSAGE) : 0;
    for (size_t i = 0; i < mlen; i++) {
        char c = rec->message[i];
        llmb_buf_append(b, c == '\t' || c == '\n' || c == '\r' ? " " : &c,
                        1);
    }
    if (rs->itls) {
        llmb_buf_append(b, "\t", 1);
        for (size_t i = 0; i < rec->ngaps && i < LLMB_LLM_ITLS_MAX; i++)
            llmb_buf_appendf(b, "%s%" PRIu32, i > 0 ? "," : "",
                             rec->gaps_us[i]);
    }
    llmb_buf_append(b, "\n", 1);
    if (rs->lines.len > 0 && rs->lines.len + line.len > LLMB_LLM_CHUNK_BYTES)
        llmb_llm_records_flush(rs);
    llmb_buf_append(&rs->lines, line.data, line.len);
    llmb_buf_fini(&line);
    if (rs->lines.len >= LLMB_LLM_CHUNK_BYTES)
        llmb_llm_records_flush(rs);
}

void llmb_llm_records_add(struct llmb_llm_records *rs,
                          struct llmb_llm_record *rec, double r)
{
    if (rs->sink != NULL)
        line_add(rs, rec, rs->seen);
    rs->seen++;
    rs->retries += rec->attempts > 1 ? rec->attempts - 1 : 0;
    if (rec->cls == LLMB_LLM_OK) {
        rs->ok++;
        rs->output_tokens += rec->output_tokens;
        rs->input_tokens += rec->input_tokens;
        if (rec->estimated)
            rs->estimated++;
        llmb_llm_metrics_add(&rs->metrics, rec);
    } else {
        rs->failed++;
        rs->errors[rec->cls]++;
        if (rs->first_error == NULL)
            rs->first_error = llmb_xasprintf("%s: %s",
                                             llmb_llm_class_name(rec->cls),
                                             rec->message != NULL ?
                                             rec->message : "");
    }
    free(rec->gaps_us); /* the metrics counted them; records keep none */
    rec->gaps_us = NULL;
    rec->ngaps = 0;
    if (rs->n < rs->max) {
        if (rs->n == rs->cap) {
            rs->cap = rs->cap == 0 ? 16 : rs->cap * 2;
            if (rs->cap > rs->max)
                rs->cap = rs->max;
            rs->v = llmb_xrealloc(rs->v, rs->cap * sizeof(*rs->v));
        }
        rs->v[rs->n++] = *rec;
    } else {
        /* Keep it with probability max / seen, in place of a random one. */
        uint64_t j = (uint64_t)(r * (double)rs->seen);
        if (j < rs->n) {
            free(rs->v[j].message);
            rs->v[j] = *rec;
        } else {
            free(rec->message);
        }
    }
    rec->message = NULL;
}

/* A time in ms rounded to the microsecond: short JSON, exact enough. */
static json_t *ms(double v)
{
    double r = round(v * 1000.0) / 1000.0;

    if (r == floor(r) && fabs(r) < 9007199254740992.0)
        return json_integer((json_int_t)r);
    return json_real(r);
}

/* s as a JSON string; bytes that are not valid UTF-8 become '?'. */
static json_t *text_json(const char *s)
{
    json_t *v = json_string(s != NULL ? s : "");
    char *copy;

    if (v != NULL)
        return v;
    copy = llmb_xstrdup(s);
    for (char *c = copy; *c != '\0'; c++)
        if ((unsigned char)*c >= 0x80)
            *c = '?';
    v = json_string(copy);
    free(copy);
    return v;
}

/* The first LLMB_LLM_LINE_MESSAGE bytes of message (fewer rather than
 * half a character), as text_json(). */
static json_t *message_json(const char *message)
{
    char cut[LLMB_LLM_LINE_MESSAGE + 1];
    const char *m = message != NULL ? message : "";

    snprintf(cut, sizeof(cut), "%.*s",
             (int)llmb_utf8_cut(m, strlen(m), LLMB_LLM_LINE_MESSAGE), m);
    return text_json(cut);
}

static json_t *record_json(const struct llmb_llm_record *r)
{
    json_t *o = json_object();

    if (r->cls != LLMB_LLM_OK) {
        json_object_set_new(o, "status", json_integer(r->status));
        json_object_set_new(o, "attempts", json_integer(r->attempts));
        json_object_set_new(o, "error",
                            json_string(llmb_llm_class_name(r->cls)));
        json_object_set_new(o, "message", message_json(r->message));
        return o;
    }
    if (r->ttft_ms >= 0)
        json_object_set_new(o, "ttft_ms", ms(r->ttft_ms));
    if (r->ttfb_ms >= 0)
        json_object_set_new(o, "ttfb_ms", ms(r->ttfb_ms));
    json_object_set_new(o, "e2e_ms", ms(r->e2e_ms));
    if (r->itl_ms >= 0)
        json_object_set_new(o, "itl_ms", ms(r->itl_ms));
    if (r->tpot_ms >= 0)
        json_object_set_new(o, "tpot_ms", ms(r->tpot_ms));
    json_object_set_new(o, "output_tokens", json_integer(r->output_tokens));
    json_object_set_new(o, "input_tokens", json_integer(r->input_tokens));
    if (r->e2e_ms > 0)
        json_object_set_new(o, "tokens_per_s",
                            ms((double)r->output_tokens * 1000.0 /
                               r->e2e_ms));
    if (r->queued_ms >= 0)
        json_object_set_new(o, "queued_ms", ms(r->queued_ms));
    if (r->send_delay_ms >= 0)
        json_object_set_new(o, "send_delay_ms", ms(r->send_delay_ms));
    json_object_set_new(o, "status", json_integer(r->status));
    json_object_set_new(o, "attempts", json_integer(r->attempts));
    if (r->estimated)
        json_object_set_new(o, "tokens_estimated", json_true());
    return o;
}

/* The synchronized start's part of the result: "_start" (what the
 * rendezvous said, not aggregated; after a warm-up, what its measured
 * start said too), summary.start_wait_ms and summary.start_missing (the
 * tasks that had not arrived when the start was set: the same in every
 * result of the job), and a warning when tasks were missing or this one
 * came after the start. */
static void start_json(const struct llmb_llm_start *st, json_t *o,
                       json_t *sum, json_t *warn)
{
    const struct llmb_llm_rv *rv = &st->rv;
    json_t *s;

    if (!st->together)
        return;
    s = json_pack("{s:I,s:I,s:i,s:i,s:i,s:o,s:i}", "start_ms",
                  (json_int_t)rv->start_ms, "deadline_ms",
                  (json_int_t)rv->deadline_ms, "arrived", (int)rv->arrived,
                  "tasks", (int)rv->tasks, "missing", (int)rv->missing,
                  "late_ms", ms(st->late_ms), "calls", (int)st->calls);
    if (st->measure) {
        json_object_set_new(s, "measure_ms",
                            json_integer((json_int_t)st->mrv.start_ms));
        json_object_set_new(s, "measure_missing",
                            json_integer(st->mrv.missing));
        json_object_set_new(s, "measure_late_ms", ms(st->measure_late_ms));
        json_object_set_new(s, "measure_wait_ms", ms(st->measure_wait_ms));
        if (st->mrv.missing > 0)
            json_array_append_new(warn, json_sprintf(
                "measure: %ld of the %ld tasks warming up had not ended "
                "their warm-up when start_timeout_s ran out; the others "
                "started measuring without them", st->mrv.missing,
                st->mrv.tasks));
        if (st->measure_late_ms > 0)
            json_array_append_new(warn, json_sprintf(
                "measure: this task ended its warm-up %.0f ms after the "
                "common measured start and started measuring at once",
                st->measure_late_ms));
    }
    json_object_set_new(o, "_start", s);
    json_object_set_new(sum, "start_wait_ms", ms(st->wait_ms));
    json_object_set_new(sum, "start_missing", json_integer(rv->missing));
    if (rv->missing > 0)
        json_array_append_new(warn, json_sprintf(
            "start: %ld of the job's %ld tasks had not arrived when "
            "start_timeout_s ran out; the others started without them",
            rv->missing, rv->tasks));
    if (st->late_ms > 0)
        json_array_append_new(warn, json_sprintf(
            "start: this task arrived %.0f ms after the common start and "
            "started at once", st->late_ms));
}

char *llmb_llm_records_result(const struct llmb_llm_records *rs,
                              const struct llmb_llm_spec *spec,
                              const struct llmb_llm_client *client,
                              double duration_ms, size_t *len)
{
    json_t *o = json_object();
    json_t *arr = json_array();
    json_t *sum = json_object();
    json_t *errs = json_object();
    double secs = duration_ms / 1000.0;
    char *text;

    json_object_set_new(o, "endpoint", json_string(spec->ep->name));
    json_object_set_new(o, "model", json_string(spec->model));
    json_object_set_new(o, "api", json_string(spec->chat ? "chat" :
                                              "completions"));
    json_object_set_new(o, "stream", json_boolean(spec->stream));
    if (spec->ab) /* the aggregate's "by" section, "<endpoint>/<model>" */
        json_object_set_new(o, "_group", json_sprintf("%s/%s", spec->ep->name,
                                                      spec->model));
    for (size_t i = 0; i < rs->n; i++)
        json_array_append_new(arr, record_json(&rs->v[i]));
    json_object_set_new(o, "_requests", arr); /* not aggregated */
    if (client != NULL) /* merged per job by the aggregate, not a field */
        json_object_set_new(o, "_timeline", llmb_llm_timeline_json(
                                                &client->tl));
    json_object_set_new(o, "metrics", llmb_llm_metrics_json(&rs->metrics));

    json_object_set_new(sum, "requests", json_integer((json_int_t)rs->seen));
    json_object_set_new(sum, "ok", json_integer(rs->ok));
    json_object_set_new(sum, "failed", json_integer(rs->failed));
    for (int c = 1; c < LLMB_LLM_NCLASS; c++)
        json_object_set_new(errs, class_names[c], json_integer(rs->errors[c]));
    json_object_set_new(sum, "errors", errs);
    json_object_set_new(sum, "retries", json_integer(rs->retries));
    json_object_set_new(sum, "output_tokens",
                        json_integer(rs->output_tokens));
    json_object_set_new(sum, "input_tokens", json_integer(rs->input_tokens));
    json_object_set_new(sum, "tokens_estimated", json_integer(rs->estimated));
    if (llmb_llm_slo_set(&rs->metrics.slo)) {
        json_object_set_new(sum, "good", json_integer(rs->metrics.good));
        /* a count: its sum over tasks, and per_s the goodput */
        json_object_set_new(o, "_kinds", json_pack("{s:s}", "summary.good",
                                                   "count"));
    }
    json_object_set_new(sum, "duration_ms", ms(duration_ms));
    /* the measured window in wall-clock ms (warm-up and waits before it
     * left out): the aggregate's per_s are over the job's span of them */
    if (rs->seen > 0 && rs->t0_ms > 0) {
        json_object_set_new(sum, "window_start_ms", json_integer(rs->t0_ms));
        json_object_set_new(sum, "window_end_ms", json_integer(
                                rs->t0_ms + (json_int_t)duration_ms));
    }
    json_object_set_new(sum, "request_rate",
                        ms(secs > 0 ? (double)rs->seen / secs : 0));
    json_object_set_new(sum, "output_token_rate",
                        ms(secs > 0 ? (double)rs->output_tokens / secs : 0));
    if (client != NULL || rs->start.together) {
        json_t *warn = json_array();
        if (client != NULL)
            llmb_llm_client_json(client, spec, sum, warn);
        start_json(&rs->start, o, sum, warn);
        if (json_array_size(warn) > 0)
            json_object_set(o, "warnings", warn);
        json_decref(warn);
    }
    json_object_set_new(o, "summary", sum);
    if (rs->first_error != NULL)
        json_object_set_new(o, "first_error", text_json(rs->first_error));

    text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(12));
    llmb_assert(text != NULL);
    json_decref(o);
    *len = strlen(text);
    return text;
}
