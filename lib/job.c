/*
 * Job documents on the client side. llmb_job_doc_build makes one from the
 * values a user typed (llmb-push flags) and checks them on the way, so a
 * mistake is reported before any round trip and names the flag; the
 * payload is spliced in as the exact text given, parsed once only to check
 * it is JSON. llmb_job_fields_append takes a document apart into the
 * values of llmb_push_fields (llmb-push --batch), keeping the payload's
 * and the numbers' exact text the way lua/10-document.lua does.
 */
#include <math.h>
#include <string.h>

#include <jansson.h>

#include <llmb/aggregate.h>
#include <llmb/err.h>
#include <llmb/job.h>
#include <llmb/keys.h>
#include <llmb/llmfields.h>

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

static const char *const state_names[LLMB_JOB_NSTATES] = {
    "pending", "running", "completed", "failed", "cancelled"};

const char *llmb_job_state_name(enum llmb_job_state s)
{
    return state_names[s];
}

int llmb_job_state_parse(const char *name)
{
    for (int i = 0; i < LLMB_JOB_NSTATES; i++)
        if (strcmp(name, state_names[i]) == 0)
            return i;
    return -1;
}

bool llmb_job_state_final(const char *state)
{
    int s = llmb_job_state_parse(state);

    return s == LLMB_JOB_COMPLETED || s == LLMB_JOB_FAILED ||
           s == LLMB_JOB_CANCELLED;
}

/* A cancelled job has ended only once its running tasks have: their
 * results still come in (docs/cli.md, llmb cancel). */
bool llmb_job_ended(const char *state, long long left)
{
    int s = llmb_job_state_parse(state);

    return s == LLMB_JOB_COMPLETED || s == LLMB_JOB_FAILED ||
           (s == LLMB_JOB_CANCELLED && left <= 0);
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
        if ((llmb_llm_type(a->type) &&
             llmb_llm_fields_check(payload, strcmp(a->type, "benchmark") == 0,
                                   errstr) != 0) ||
            llmb_agg_kinds_check(payload, errstr) != 0) {
            json_decref(payload);
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

/* The fields of a job document, in the order llmb_push's message lists
 * them, and where each goes in the llmb_push_fields vector (-1: queue,
 * which is not in it). */
static const struct {
    const char *name;
    int slot;
} doc_fields[] = {
    {"type", LLMB_PUSH_F_TYPE},
    {"queue", -1},
    {"payload", LLMB_PUSH_F_PAYLOAD},
    {"priority", LLMB_PUSH_F_PRIORITY},
    {"tasks", LLMB_PUSH_F_TASKS},
    {"timeout_s", LLMB_PUSH_F_TIMEOUT_S},
    {"max_retries", LLMB_PUSH_F_MAX_RETRIES},
    {"delay_s", LLMB_PUSH_F_DELAY_S},
    {"id", LLMB_PUSH_F_ID},
    {"backoff_ms", LLMB_PUSH_F_BACKOFF_MS},
    {"deadline_s", LLMB_PUSH_F_DEADLINE_S},
};
#define NDOC_FIELDS (sizeof(doc_fields) / sizeof(doc_fields[0]))

/* The raw text of one value in a document. */
struct raw {
    const char *p; /* NULL when the document has no such field */
    size_t n;
};

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' ||
                     s[i] == '\n'))
        i++;
    return i;
}

/* Index of the quote that closes the string opening at s[i]. */
static size_t scan_string(const char *s, size_t n, size_t i)
{
    size_t j = i + 1;

    while (j < n) {
        if (s[j] == '\\')
            j += 2;
        else if (s[j] == '"')
            return j;
        else
            j++;
    }
    return n - 1;
}

/* Index of the last byte of the JSON value starting at s[i]; *deepest
 * gets the deepest nesting of arrays and objects in it. */
static size_t scan_value(const char *s, size_t n, size_t i, int *deepest)
{
    size_t j;
    int depth = 0;

    *deepest = 0;

    if (s[i] == '"')
        return scan_string(s, n, i);
    if (s[i] == '{' || s[i] == '[') {
        for (j = i; j < n; j++) {
            char c = s[j];
            if (c == '"')
                j = scan_string(s, n, j);
            else if ((c == '{' || c == '[') && ++depth > *deepest)
                *deepest = depth;
            else if ((c == '}' || c == ']') && --depth == 0)
                return j;
        }
        return n - 1;
    }
    for (j = i; j < n; j++)
        if (s[j] == ',' || s[j] == '}' || s[j] == ']' || s[j] == ' ' ||
            s[j] == '\t' || s[j] == '\r' || s[j] == '\n')
            break;
    return j - 1;
}

/* A value's text as llmb_push shows it in a message: at most 40 bytes. */
static char *shown(const char *p, size_t n)
{
    if (n > 40)
        return llmb_xasprintf("%.37s...", p);
    return llmb_xstrndup(p, n);
}

/* The doc_fields index of the key whose quoted text is s[i..ke], or -1
 * for an unknown key, whose decoded name goes to *unknown (caller frees). */
static int key_index(const char *s, size_t i, size_t ke, char **unknown)
{
    const char *k = s + i + 1;
    size_t n = ke - i - 1, f;
    json_t *dec = NULL;

    if (memchr(k, '\\', n) != NULL) {
        dec = json_loadb(s + i, ke - i + 1, JSON_DECODE_ANY, NULL);
        k = json_string_value(dec);
        n = json_string_length(dec);
    }
    for (f = 0; k != NULL && f < NDOC_FIELDS; f++)
        if (strlen(doc_fields[f].name) == n &&
            memcmp(doc_fields[f].name, k, n) == 0)
            break;
    if (k == NULL || f == NDOC_FIELDS) {
        *unknown = shown(k != NULL ? k : s + i, k != NULL ? n : ke - i + 1);
        json_decref(dec);
        return -1;
    }
    json_decref(dec);
    return (int)f;
}

/* Nesting that cjson decodes (its decode_max_depth): a document whose
 * payload is deeper is refused as llmb_push refuses it, although jansson
 * takes it and llmb_push_fields stores payloads without decoding them. */
#define CJSON_MAX_DEPTH 1000

/* The raw text of every known field of object document s, which jansson
 * has accepted as valid JSON; for an unknown field or one nested deeper
 * than cjson decodes, its message. */
static int raw_fields(const char *s, size_t n, struct raw raw[NDOC_FIELDS],
                      char **errstr)
{
    size_t i = skip_ws(s, n, skip_ws(s, n, 0) + 1);

    memset(raw, 0, NDOC_FIELDS * sizeof(*raw));
    if (i >= n || s[i] == '}')
        return 0;
    for (;;) {
        size_t ke = scan_string(s, n, i), vs, ve;
        char *unknown = NULL;
        int f = key_index(s, i, ke, &unknown), deepest;

        if (f < 0) {
            *errstr = llmb_xasprintf("job field \"%s\" is not known (known "
                                     "fields: type, queue, payload, priority, "
                                     "tasks, timeout_s, max_retries, delay_s, "
                                     "id, backoff_ms, deadline_s)", unknown);
            free(unknown);
            return LLMB_EINVAL;
        }
        vs = skip_ws(s, n, skip_ws(s, n, ke + 1) + 1);
        ve = scan_value(s, n, vs, &deepest);
        if (1 + deepest > CJSON_MAX_DEPTH) {
            *errstr = llmb_xasprintf("job document is not valid JSON: Found "
                                     "too many nested data structures (%d)",
                                     CJSON_MAX_DEPTH + 1);
            return LLMB_EINVAL;
        }
        raw[f].p = s + vs;
        raw[f].n = ve - vs + 1;
        i = skip_ws(s, n, ve + 1);
        if (i >= n || s[i] != ',')
            return 0;
        i = skip_ws(s, n, i + 1);
    }
}

/* Field f of doc as a name: a string of 1 to max bytes that ok accepts.
 * Returns its value (owned by doc), NULL when absent, or sets *errstr. */
static const char *doc_name(json_t *doc, const struct raw raw[NDOC_FIELDS],
                            size_t f, size_t max, int (*ok)(const char *),
                            char **errstr)
{
    json_t *v = json_object_get(doc, doc_fields[f].name);
    const char *s = json_string_value(v);
    char *got;

    if (v == NULL)
        return NULL;
    if (s != NULL && json_string_length(v) == strlen(s) &&
        json_string_length(v) <= max && ok(s))
        return s;
    got = shown(raw[f].p, raw[f].n);
    *errstr = llmb_xasprintf("job field \"%s\" must be a string of 1 to %zu "
                             "characters from [A-Za-z0-9_.%s-], got %s",
                             doc_fields[f].name, max,
                             strcmp(doc_fields[f].name, "type") == 0 ? ":/" : "",
                             got);
    free(got);
    return NULL;
}

static int queue_ok(const char *s)
{
    return llmb_queue_name_ok(s);
}

static int id_ok(const char *s)
{
    return llmb_job_id_ok(s);
}

/* Indexes of the name fields in doc_fields. */
enum { F_TYPE = 0, F_QUEUE = 1, F_ID = 8 };

int llmb_job_fields_append(const char *doc, size_t len, struct llmb_buf *out,
                           size_t lens[LLMB_PUSH_NFIELDS],
                           char queue[LLMB_QUEUE_NAME_MAX + 1], char **errstr)
{
    struct raw raw[NDOC_FIELDS];
    const char *vals[LLMB_PUSH_NFIELDS] = {0};
    json_error_t jerr;
    json_t *obj = json_loadb(doc, len, JSON_DECODE_INT_AS_REAL, &jerr);
    const char *type, *q, *id;
    size_t f;
    int rc = LLMB_EINVAL;

    *errstr = NULL;
    queue[0] = '\0';
    if (obj == NULL) {
        *errstr = llmb_xasprintf("job document is not valid JSON: %s "
                                 "(column %d)", jerr.text, jerr.column);
        return LLMB_EINVAL;
    }
    if (!json_is_object(obj)) {
        *errstr = llmb_xstrdup("job document must be a JSON object");
        goto out;
    }
    if (raw_fields(doc, len, raw, errstr) != 0)
        goto out;
    if (raw[F_TYPE].p == NULL) {
        *errstr = llmb_xstrdup("job field \"type\" is required");
        goto out;
    }
    type = doc_name(obj, raw, F_TYPE, LLMB_JOB_TYPE_MAX, llmb_job_type_ok,
                    errstr);
    if (type == NULL)
        goto out;
    q = doc_name(obj, raw, F_QUEUE, LLMB_QUEUE_NAME_MAX, queue_ok, errstr);
    if (*errstr != NULL)
        goto out;
    id = doc_name(obj, raw, F_ID, LLMB_JOB_ID_MAX, id_ok, errstr);
    if (*errstr != NULL)
        goto out;
    if (llmb_llm_type(type) &&
        llmb_llm_fields_check(json_object_get(obj, "payload"),
                              strcmp(type, "benchmark") == 0, errstr) != 0)
        goto out;
    if (llmb_agg_kinds_check(json_object_get(obj, "payload"), errstr) != 0)
        goto out;

    if (q != NULL)
        memcpy(queue, q, strlen(q) + 1);
    for (f = 0; f < LLMB_PUSH_NFIELDS; f++)
        lens[f] = 0;
    for (f = 0; f < NDOC_FIELDS; f++) {
        int slot = doc_fields[f].slot;
        if (slot >= 0 && raw[f].p != NULL) {
            vals[slot] = raw[f].p;
            lens[slot] = raw[f].n;
        }
    }
    vals[LLMB_PUSH_F_TYPE] = type;
    lens[LLMB_PUSH_F_TYPE] = strlen(type);
    vals[LLMB_PUSH_F_ID] = id;
    lens[LLMB_PUSH_F_ID] = id != NULL ? strlen(id) : 0;
    for (f = 0; f < LLMB_PUSH_NFIELDS; f++)
        if (lens[f] > 0)
            llmb_buf_append(out, vals[f], lens[f]);
    rc = 0;
out:
    json_decref(obj);
    return rc;
}
