/*
 * Builds job documents from the values a user typed (llmb-push flags) and
 * checks them on the way, so a mistake is reported before any round trip
 * and names the flag. The payload is spliced in as the exact text given;
 * it is parsed once only to check it is JSON.
 */
#include <math.h>
#include <string.h>

#include <jansson.h>

#include <llmb/err.h>
#include <llmb/job.h>
#include <llmb/keys.h>

int llmb_job_type_ok(const char *s)
{
    size_t n = 0;

    if (s == NULL || *s == '\0')
        return 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || strchr("_.:/-", c) != NULL))
            return 0;
    }
    return n <= LLMB_JOB_TYPE_MAX;
}

/* Checks that text is one JSON number within [min, max], whole when
 * whole is set. */
static int number_ok(const char *text, int whole, double min, double max)
{
    json_error_t jerr;
    json_t *v = NULL;
    double d;
    int ok = 0;

    if (text == NULL || *text == '\0' || strchr(text, ' ') != NULL)
        return 0;
    v = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (v == NULL || !json_is_number(v))
        goto out;
    if (whole && !json_is_integer(v))
        goto out;
    d = json_number_value(v);
    ok = isfinite(d) && d >= min && d <= max;
out:
    json_decref(v);
    return ok;
}

static int bad_number(char **errstr, const char *flag, int whole, double min,
                      double max, const char *got)
{
    *errstr = llmb_xasprintf("--%s must be %s from %.15g to %.15g, got \"%s\"", flag,
                             whole ? "an integer" : "a number", min, max, got);
    return LLMB_EINVAL;
}

/* One numeric field: checked, then appended as ,"name":text. */
struct num_field {
    const char *flag;
    const char *name;
    const char *text;
    int whole;
    double min, max;
};

int llmb_job_doc_build(const struct llmb_job_args *a, struct llmb_buf *out,
                       char **errstr)
{
    struct num_field nums[] = {
        {"priority", "priority", a->priority, 1, -(double)LLMB_JOB_PRIORITY_MAX,
         (double)LLMB_JOB_PRIORITY_MAX},
        {"tasks", "tasks", a->tasks, 1, 1, (double)LLMB_JOB_TASKS_MAX},
        {"timeout", "timeout_s", a->timeout_s, 0, 0.001, LLMB_JOB_TIMEOUT_S_MAX},
        {"retries", "max_retries", a->max_retries, 1, 0,
         (double)LLMB_JOB_RETRIES_MAX},
        {"delay", "delay_s", a->delay_s, 0, 0, LLMB_JOB_DELAY_S_MAX},
        {"backoff-ms", "backoff_ms", a->backoff_ms, 1, 1,
         (double)LLMB_JOB_BACKOFF_MS_MAX},
        {"deadline", "deadline_s", a->deadline_s, 0, 0, LLMB_JOB_DELAY_S_MAX},
    };
    struct llmb_buf doc;
    json_error_t jerr;
    json_t *payload = NULL;
    size_t i;

    if (!llmb_job_type_ok(a->type)) {
        *errstr = llmb_xasprintf("job type must be 1 to %d characters from "
                                 "[A-Za-z0-9_.:/-], got \"%s\"",
                                 LLMB_JOB_TYPE_MAX, a->type ? a->type : "");
        return LLMB_EINVAL;
    }
    if (a->queue != NULL && !llmb_queue_name_ok(a->queue)) {
        *errstr = llmb_xasprintf("--queue must be 1 to %d characters from "
                                 "[A-Za-z0-9_.-], got \"%s\"",
                                 LLMB_QUEUE_NAME_MAX, a->queue);
        return LLMB_EINVAL;
    }
    if (a->id != NULL && !llmb_job_id_ok(a->id)) {
        *errstr = llmb_xasprintf("--id must be 1 to %d characters from "
                                 "[A-Za-z0-9_.-], got \"%s\"",
                                 LLMB_JOB_ID_MAX, a->id);
        return LLMB_EINVAL;
    }
    for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if (nums[i].text != NULL &&
            !number_ok(nums[i].text, nums[i].whole, nums[i].min, nums[i].max))
            return bad_number(errstr, nums[i].flag, nums[i].whole, nums[i].min,
                              nums[i].max, nums[i].text);
    }
    if (a->payload != NULL) {
        payload = json_loads(a->payload, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL,
                             &jerr);
        if (payload == NULL) {
            *errstr = llmb_xasprintf("payload is not valid JSON: %s (line %d, "
                                     "column %d)", jerr.text, jerr.line,
                                     jerr.column);
            return LLMB_EINVAL;
        }
        json_decref(payload);
    }

    llmb_buf_init(&doc);
    llmb_buf_appendf(&doc, "{\"type\":\"%s\"", a->type);
    if (a->queue != NULL)
        llmb_buf_appendf(&doc, ",\"queue\":\"%s\"", a->queue);
    if (a->id != NULL)
        llmb_buf_appendf(&doc, ",\"id\":\"%s\"", a->id);
    for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if (nums[i].text != NULL)
            llmb_buf_appendf(&doc, ",\"%s\":%s", nums[i].name, nums[i].text);
    }
    if (a->payload != NULL) {
        llmb_buf_appendf(&doc, ",\"payload\":");
        llmb_buf_append(&doc, a->payload, strlen(a->payload));
    }
    llmb_buf_append(&doc, "}", 1);
    llmb_buf_append(out, doc.data, doc.len);
    llmb_buf_fini(&doc);
    return 0;
}
