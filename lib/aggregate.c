/*
 * Aggregation of task results (see <llmb/aggregate.h> for the contract).
 * The coordinator creates one struct llmb_agg per finished job, adds each
 * task's result JSON, then turns the per-path samples into the "fields"
 * object of the job's aggregate.
 *
 * Each path owns a field: its kind, exact count, min, max and a
 * compensated sum, and a sample array for the percentiles that stops
 * growing at max_samples and from then on is a uniform reservoir (Vitter's
 * algorithm R) driven by a fixed-seed generator, so a run is reproducible.
 * Flags keep no samples (the sum counts the true ones); labels keep a
 * short table of values instead. Paths are found through a jansson object
 * used as a hash map from path to field index; kinds set by the job or
 * declared by results wait in two more such maps until their field comes.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/aggregate.h>
#include <llmb/err.h>
#include <llmb/histogram.h>
#include <llmb/series.h>
#include <llmb/util.h>

/* Whole numbers of at most this magnitude print as JSON integers. */
#define EXACT_INT_LIMIT 9007199254740992.0 /* 2^53 */

/* One value of a label field and how often it came. */
struct label {
    char *value; /* owned */
    uint64_t n;
};

struct field {
    char *path;     /* owned */
    enum llmb_agg_kind kind;
    uint64_t count; /* samples seen */
    double min, max;
    double sum, comp; /* Neumaier-compensated sum */
    double *s;        /* kept samples, n of cap */
    size_t n, cap;
    struct label *labels; /* nlabels of LLMB_AGG_LABELS_MAX */
    size_t nlabels;
    uint64_t other;       /* label values past the table */
    struct llmb_hist *hist; /* merged histograms of the path; NULL = none:
                               then its statistics come from it */
};

struct llmb_agg {
    struct llmb_agg_limits limits;
    json_t *index;         /* path -> integer index into fields */
    json_t *job_kinds;     /* path -> integer kind, set by the job */
    json_t *declared;      /* path -> integer kind, from results' _kinds */
    struct field *fields;  /* nfields of capfields */
    size_t nfields, capfields;
    size_t *order;         /* field indexes sorted by path; NULL = stale */
    uint64_t dropped;
    uint64_t rng;          /* xorshift64* state */
    struct llmb_buf path;  /* scratch for the path being walked */
    uint64_t results;      /* results added */
    json_t *group_index;   /* group name -> integer index into groups */
    struct llmb_agg **groups; /* the aggregates of each "_group", ngroups */
    size_t ngroups;
    struct llmb_series series; /* the results' "_timeline"s merged */
    uint64_t series_n;         /* merged into it */
    uint64_t series_bad;       /* refused: not a series, or a width that
                                  does not double into the others' */
};

static uint64_t rng_next(struct llmb_agg *agg)
{
    agg->rng ^= agg->rng >> 12;
    agg->rng ^= agg->rng << 25;
    agg->rng ^= agg->rng >> 27;
    return agg->rng * 2685821657736338717ULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

double llmb_agg_quantile(const double *sorted, size_t n, double q)
{
    double h, lo_f, t, a, b;
    size_t lo;

    llmb_assert(n >= 1);
    if (!(q > 0.0))
        return sorted[0];
    if (q >= 1.0)
        return sorted[n - 1];
    h = (double)(n - 1) * q;
    lo_f = floor(h);
    lo = (size_t)lo_f;
    if (lo >= n - 1)
        return sorted[n - 1];
    t = h - lo_f;
    a = sorted[lo];
    b = sorted[lo + 1];
    /* NumPy's lerp: exact at both ends and monotonic in t. */
    if (t >= 0.5)
        return b - (b - a) * (1.0 - t);
    return a + (b - a) * t;
}

void llmb_agg_stats_compute(double *samples, size_t n,
                            struct llmb_agg_stats *out)
{
    double sum = 0.0, comp = 0.0;
    size_t i;

    memset(out, 0, sizeof(*out));
    if (n == 0)
        return;
    qsort(samples, n, sizeof(*samples), cmp_double);
    for (i = 0; i < n; i++) {
        double t = sum + samples[i];
        if (fabs(sum) >= fabs(samples[i]))
            comp += (sum - t) + samples[i];
        else
            comp += (samples[i] - t) + sum;
        sum = t;
    }
    out->count = n;
    out->min = samples[0];
    out->max = samples[n - 1];
    out->sum = sum + comp;
    out->mean = out->sum / (double)n;
    out->p50 = llmb_agg_quantile(samples, n, 0.50);
    out->p90 = llmb_agg_quantile(samples, n, 0.90);
    out->p99 = llmb_agg_quantile(samples, n, 0.99);
}

struct llmb_agg *llmb_agg_new(const struct llmb_agg_limits *limits)
{
    struct llmb_agg *agg = llmb_xcalloc(1, sizeof(*agg));

    if (limits != NULL)
        agg->limits = *limits;
    if (agg->limits.max_fields == 0)
        agg->limits.max_fields = LLMB_AGG_MAX_FIELDS_DEFAULT;
    if (agg->limits.max_samples == 0)
        agg->limits.max_samples = LLMB_AGG_MAX_SAMPLES_DEFAULT;
    agg->index = json_object();
    agg->job_kinds = json_object();
    agg->declared = json_object();
    agg->group_index = json_object();
    llmb_assert(agg->index != NULL && agg->job_kinds != NULL &&
                agg->declared != NULL && agg->group_index != NULL);
    agg->rng = 0x9E3779B97F4A7C15ULL;
    llmb_buf_init(&agg->path);
    llmb_series_init(&agg->series, LLMB_SERIES_WIDTH_MS, LLMB_SERIES_MAX);
    return agg;
}

void llmb_agg_free(struct llmb_agg *agg)
{
    size_t i;

    if (agg == NULL)
        return;
    for (i = 0; i < agg->nfields; i++) {
        struct field *f = &agg->fields[i];
        for (size_t k = 0; k < f->nlabels; k++)
            free(f->labels[k].value);
        free(f->labels);
        free(f->path);
        free(f->s);
        if (f->hist != NULL)
            llmb_hist_fini(f->hist);
        free(f->hist);
    }
    free(agg->fields);
    free(agg->order);
    for (i = 0; i < agg->ngroups; i++)
        llmb_agg_free(agg->groups[i]);
    free(agg->groups);
    json_decref(agg->group_index);
    json_decref(agg->index);
    json_decref(agg->job_kinds);
    json_decref(agg->declared);
    llmb_buf_fini(&agg->path);
    llmb_series_fini(&agg->series);
    free(agg);
}

/* The kind the job set or a result declared for path, or -1. */
static int kind_set(const struct llmb_agg *agg, const char *path)
{
    json_t *k = json_object_get(agg->job_kinds, path);

    if (k == NULL)
        k = json_object_get(agg->declared, path);
    return k != NULL ? (int)json_integer_value(k) : -1;
}

/* Returns the field of the path in agg->path, creating it for a first
 * value of JSON type type, or NULL when the value is not a sample (a
 * string of a field that is not a label) or when the path is new and
 * max_fields are already kept (then *dropped is set). */
static struct field *field_get(struct llmb_agg *agg, json_type type,
                               bool *dropped)
{
    json_t *at = json_object_get(agg->index, agg->path.data);
    struct field *f;
    int kind;

    *dropped = false;
    if (at != NULL) {
        f = &agg->fields[(size_t)json_integer_value(at)];
        return type == JSON_STRING && f->kind != LLMB_AGG_LABEL ? NULL : f;
    }
    kind = kind_set(agg, agg->path.data);
    if (kind < 0) {
        if (type == JSON_STRING)
            return NULL; /* undeclared strings are not aggregated */
        kind = (int)llmb_agg_kind_infer(agg->path.data, type);
    }
    if (type == JSON_STRING && kind != LLMB_AGG_LABEL)
        return NULL;
    if (agg->nfields >= agg->limits.max_fields) {
        *dropped = true;
        return NULL;
    }
    if (agg->nfields == agg->capfields) {
        agg->capfields = agg->capfields ? agg->capfields * 2 : 16;
        agg->fields = llmb_xrealloc(agg->fields,
                                    agg->capfields * sizeof(*agg->fields));
    }
    f = &agg->fields[agg->nfields];
    memset(f, 0, sizeof(*f));
    f->path = llmb_xstrdup(agg->path.data);
    f->kind = (enum llmb_agg_kind)kind;
    json_object_set_new(agg->index, f->path,
                        json_integer((json_int_t)agg->nfields));
    agg->nfields++;
    free(agg->order);
    agg->order = NULL;
    return f;
}

/* Counts one value of a label field (cut at LLMB_AGG_LABEL_LEN bytes). */
static void label_add(struct field *f, const char *value)
{
    size_t len = strnlen(value, LLMB_AGG_LABEL_LEN);
    size_t i;

    f->count++;
    for (i = 0; i < f->nlabels; i++)
        if (strncmp(f->labels[i].value, value, len) == 0 &&
            f->labels[i].value[len] == '\0') {
            f->labels[i].n++;
            return;
        }
    if (f->nlabels == LLMB_AGG_LABELS_MAX) {
        f->other++;
        return;
    }
    if (f->labels == NULL)
        f->labels = llmb_xcalloc(LLMB_AGG_LABELS_MAX, sizeof(*f->labels));
    f->labels[f->nlabels].value = llmb_xmalloc(len + 1);
    memcpy(f->labels[f->nlabels].value, value, len);
    f->labels[f->nlabels].value[len] = '\0';
    f->labels[f->nlabels].n = 1;
    f->nlabels++;
}

static void field_add(struct llmb_agg *agg, struct field *f, double v)
{
    double t;

    if (f->kind == LLMB_AGG_LABEL) {
        char buf[LLMB_AGG_NUM_LEN];
        label_add(f, llmb_agg_format(v, buf));
        return;
    }
    if (f->kind == LLMB_AGG_FLAG)
        v = v != 0.0 ? 1.0 : 0.0;
    if (f->count == 0 || v < f->min)
        f->min = v;
    if (f->count == 0 || v > f->max)
        f->max = v;
    t = f->sum + v;
    if (fabs(f->sum) >= fabs(v))
        f->comp += (f->sum - t) + v;
    else
        f->comp += (v - t) + f->sum;
    f->sum = t;
    f->count++;

    if (f->kind == LLMB_AGG_FLAG)
        return; /* count and sum say all */
    if (f->n < agg->limits.max_samples) {
        if (f->n == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 8;
            if (f->cap > agg->limits.max_samples)
                f->cap = agg->limits.max_samples;
            f->s = llmb_xrealloc(f->s, f->cap * sizeof(*f->s));
        }
        f->s[f->n++] = v;
    } else {
        /* Keep the new sample with probability n / count. */
        uint64_t j = rng_next(agg) % f->count;
        if (j < f->n)
            f->s[j] = v;
    }
}

/* Merges histogram v (<llmb/histogram.h>) into the field of agg->path.
 * A malformed one, or one whose scale differs from the field's first, is
 * counted as dropped. */
static void hist_add(struct llmb_agg *agg, const json_t *v)
{
    struct llmb_hist h;
    const char *err = NULL;
    struct field *f;
    bool dropped;

    if (llmb_hist_from_json(&h, v, &err) != 0) {
        agg->dropped++;
        return;
    }
    f = field_get(agg, JSON_REAL, &dropped);
    if (f == NULL || f->kind == LLMB_AGG_LABEL ||
        f->kind == LLMB_AGG_FLAG) {
        agg->dropped++;
    } else {
        if (f->hist == NULL) {
            f->hist = llmb_xmalloc(sizeof(*f->hist));
            llmb_hist_init(f->hist, h.scale);
        }
        if (llmb_hist_merge(f->hist, &h) != 0)
            agg->dropped++;
    }
    llmb_hist_fini(&h);
}

/* Walks v, whose path is agg->path, adding its samples. */
static void walk(struct llmb_agg *agg, const json_t *v)
{
    size_t mark = agg->path.len;
    struct field *f;
    bool dropped;

    switch (json_typeof(v)) {
    case JSON_INTEGER:
    case JSON_REAL:
    case JSON_TRUE:
    case JSON_FALSE:
    case JSON_STRING:
        if (mark == 0)
            return; /* a bare value has no name */
        f = field_get(agg, json_typeof(v), &dropped);
        if (dropped)
            agg->dropped++;
        if (f == NULL)
            return;
        if (json_is_string(v))
            label_add(f, json_string_value(v));
        else if (f->kind == LLMB_AGG_LABEL && json_is_boolean(v))
            label_add(f, json_is_true(v) ? "true" : "false");
        else if (json_is_boolean(v))
            field_add(agg, f, json_is_true(v) ? 1.0 : 0.0);
        else
            field_add(agg, f, json_number_value(v));
        return;
    case JSON_ARRAY: {
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e)
            walk(agg, e);
        return;
    }
    case JSON_OBJECT: {
        const char *key;
        const json_t *e;
        if (mark > 0 && llmb_hist_json_is(v)) {
            hist_add(agg, v);
            return;
        }
        /* json_object_foreach needs a non-const object; it only reads. */
        json_object_foreach((json_t *)v, key, e) {
            if (mark == 0 && key[0] == '_')
                continue; /* "_kinds" (read by llmb_agg_add()) and what a
                             result keeps for its readers only */
            if (mark > 0)
                llmb_buf_append(&agg->path, ".", 1);
            llmb_buf_append(&agg->path, key, strlen(key));
            walk(agg, e);
            agg->path.len = mark;
            agg->path.data[mark] = '\0';
        }
        return;
    }
    case JSON_NULL:
        return;
    }
}

/* Records the kinds a result declares in "_kinds"; the first declaration
 * of a path wins, names that are not kinds are ignored. */
static void declare(struct llmb_agg *agg, const json_t *kinds)
{
    const char *path;
    json_t *v;
    enum llmb_agg_kind k;

    if (!json_is_object(kinds))
        return;
    json_object_foreach((json_t *)kinds, path, v)
        if (json_is_string(v) &&
            llmb_agg_kind_parse(json_string_value(v), &k) == 0 &&
            json_object_get(agg->declared, path) == NULL)
            json_object_set_new(agg->declared, path, json_integer(k));
}

int llmb_agg_set_kinds(struct llmb_agg *agg, const json_t *kinds,
                       char **errstr)
{
    const char *path;
    json_t *v;
    enum llmb_agg_kind k;
    int rc = 0;

    if (kinds == NULL)
        return 0;
    if (!json_is_object(kinds)) {
        *errstr = llmb_xasprintf("\"_kinds\" must be an object of field "
                                 "paths to kind names");
        return LLMB_EINVAL;
    }
    json_object_foreach((json_t *)kinds, path, v) {
        if (json_is_string(v) &&
            llmb_agg_kind_parse(json_string_value(v), &k) == 0) {
            json_object_set_new(agg->job_kinds, path, json_integer(k));
        } else if (rc == 0) {
            const char *s = json_string_value(v);
            *errstr = llmb_xasprintf(
                "\"_kinds\" of \"%s\" must be one of duration, count, "
                "gauge, flag, label, got %s%.40s%s", path,
                s != NULL ? "\"" : "a non-string", s != NULL ? s : "",
                s != NULL ? "\"" : "");
            rc = LLMB_EINVAL;
        }
    }
    return rc;
}

/* The total of gauge or duration path over the tasks: count * mean. */
static double total_of(const json_t *agg, const char *path)
{
    return llmb_agg_stat(agg, path, "count") *
           llmb_agg_stat(agg, path, "mean");
}

int llmb_agg_concurrency(const json_t *agg, double *asked, double *achieved)
{
    /* over the measured window when there is one (llm jobs) */
    double run_ms = json_number_value(json_object_get(agg, "measured_ms")) > 0
                        ? json_number_value(json_object_get(agg,
                                                            "measured_ms"))
                        : json_number_value(json_object_get(agg, "run_ms"));
    double a = total_of(agg, "summary.concurrency");
    double inflight = total_of(agg, "summary.inflight_s");

    if (isnan(a) || isnan(inflight) || !(run_ms > 0) || !(a > 0))
        return -1;
    *asked = a;
    *achieved = inflight * 1000.0 / run_ms;
    return 0;
}

char *llmb_agg_concurrency_text(const json_t *agg, const json_t *payload,
                                char *buf, size_t n)
{
    char a[LLMB_AGG_NUM_LEN], b[LLMB_AGG_NUM_LEN];
    double asked, achieved;
    const json_t *rate = json_object_get(payload, "rate");
    int len;

    buf[0] = '\0';
    if (llmb_agg_concurrency(agg, &asked, &achieved) != 0)
        return buf;
    len = snprintf(buf, n, "%s asked, %s achieved (time-weighted over the "
                   "run)", llmb_agg_format(asked, a),
                   llmb_agg_format(achieved, b));
    if (achieved < LLMB_AGG_CONCURRENCY_LOW * asked &&
        !(json_is_number(rate) && json_number_value(rate) > 0) &&
        len > 0 && (size_t)len < n)
        snprintf(buf + len, n - (size_t)len, "\nwarning: the job ran at %.0f "
                 "%% of the concurrency asked: its tasks did not all run "
                 "at once (the workers' --capacity, too few workers) or "
                 "could not keep their requests in flight; its latencies "
                 "are those of the concurrency achieved",
                 achieved * 100.0 / asked);
    return buf;
}

int llmb_agg_kinds_check(const json_t *payload, char **errstr)
{
    const json_t *kinds = json_object_get(payload, "_kinds");
    const char *path, *bad = NULL;
    json_t *v, *badv = NULL;
    enum llmb_agg_kind k;

    if (kinds == NULL || json_is_null(kinds))
        return 0;
    if (!json_is_object(kinds)) {
        *errstr = llmb_xasprintf("payload field \"_kinds\" must be an object "
                                 "of field paths to kind names (duration, "
                                 "count, gauge, flag, label)");
        return LLMB_EINVAL;
    }
    if (json_object_size(kinds) > LLMB_AGG_KINDS_MAX) {
        *errstr = llmb_xasprintf("payload field \"_kinds\" has %zu entries; "
                                 "the limit is %d", json_object_size(kinds),
                                 LLMB_AGG_KINDS_MAX);
        return LLMB_EINVAL;
    }
    /* the byte-least bad entry, as the Lua check (its keys come in no
     * order) */
    json_object_foreach((json_t *)kinds, path, v) {
        const char *s = json_string_value(v);
        if ((path[0] == '\0' || s == NULL ||
             llmb_agg_kind_parse(s, &k) != 0) &&
            (bad == NULL || strcmp(path, bad) < 0)) {
            bad = path;
            badv = v;
        }
    }
    if (bad == NULL)
        return 0;
    if (bad[0] == '\0') {
        *errstr = llmb_xasprintf("payload field \"_kinds\" has an empty "
                                 "field path");
    } else {
        const char *s = json_string_value(badv);
        *errstr = llmb_xasprintf(
            "payload field \"_kinds\": \"%.100s\" must be one of duration, "
            "count, gauge, flag, label, got %s%.40s%s", bad,
            s != NULL ? "\"" : "a non-string", s != NULL ? s : "",
            s != NULL ? "\"" : "");
    }
    return LLMB_EINVAL;
}

/* Merges a result's "_timeline" (an llm task's series) into agg's. */
static void series_add(struct llmb_agg *agg, const json_t *v)
{
    struct llmb_series s;
    char *err = NULL;

    if (v == NULL)
        return;
    if (llmb_series_from_json(&s, v, LLMB_SERIES_MAX, &err) == 0 &&
        llmb_series_merge(&agg->series, &s) == 0)
        agg->series_n++;
    else
        agg->series_bad++;
    free(err);
    llmb_series_fini(&s);
}

static void add_one(struct llmb_agg *agg, const json_t *result)
{
    llmb_buf_reset(&agg->path);
    agg->results++;
    declare(agg, json_object_get(result, "_kinds"));
    walk(agg, result);
    series_add(agg, json_object_get(result, "_timeline"));
}

json_t *llmb_agg_series_json(const struct llmb_agg *agg)
{
    json_t *o;

    if (agg->series_n == 0 && agg->series_bad == 0)
        return NULL;
    o = llmb_series_json(&agg->series);
    json_object_set_new(o, "tasks", json_integer((json_int_t)agg->series_n));
    if (agg->series_bad > 0)
        json_object_set_new(o, "refused",
                            json_integer((json_int_t)agg->series_bad));
    return o;
}

/* The aggregate of group name, made on first use with the job's kinds;
 * NULL past LLMB_AGG_GROUPS_MAX groups. */
static struct llmb_agg *group_get(struct llmb_agg *agg, const char *name)
{
    json_t *i = json_object_get(agg->group_index, name);
    struct llmb_agg *g;

    if (i != NULL)
        return agg->groups[json_integer_value(i)];
    if (agg->ngroups == LLMB_AGG_GROUPS_MAX)
        return NULL;
    g = llmb_agg_new(&agg->limits);
    json_object_update(g->job_kinds, agg->job_kinds);
    agg->groups = llmb_xrealloc(agg->groups, (agg->ngroups + 1) *
                                             sizeof(*agg->groups));
    json_object_set_new(agg->group_index, name,
                        json_integer((json_int_t)agg->ngroups));
    agg->groups[agg->ngroups++] = g;
    return g;
}

void llmb_agg_add(struct llmb_agg *agg, const json_t *result)
{
    const char *group;
    struct llmb_agg *g;

    if (result == NULL) {
        llmb_buf_reset(&agg->path);
        return;
    }
    add_one(agg, result);
    group = json_string_value(json_object_get(result, "_group"));
    if (group != NULL && *group != '\0' &&
        strlen(group) <= LLMB_AGG_GROUP_LEN) {
        if ((g = group_get(agg, group)) != NULL)
            add_one(g, result);
        else
            agg->dropped++;
    }
}

json_t *llmb_agg_group(const json_t *agg, const char *name)
{
    json_t *g = json_object_get(json_object_get(agg, "by"), name);

    if (!json_is_object(g))
        return NULL;
    return json_pack("{s:O,s:O*,s:O*,s:O*,s:O*}", "fields",
                     json_object_get(g, "fields"), "run_ms",
                     json_object_get(agg, "run_ms"), "measured_ms",
                     json_object_get(g, "measured_ms"), "results",
                     json_object_get(g, "results"), "timeline",
                     json_object_get(g, "timeline"));
}

/* The field of path that holds numbers, or NULL (no such path, no value,
 * or labels). */
static const struct field *number_field(const struct llmb_agg *agg,
                                        const char *path)
{
    json_t *at = json_object_get(agg->index, path);
    const struct field *f;

    if (at == NULL)
        return NULL;
    f = &agg->fields[(size_t)json_integer_value(at)];
    if (f->kind == LLMB_AGG_LABEL ||
        (f->hist != NULL ? f->hist->count : f->count) == 0)
        return NULL;
    return f;
}

int64_t llmb_agg_window_ms(const struct llmb_agg *agg)
{
    const struct field *s = number_field(agg, "summary.window_start_ms");
    const struct field *e = number_field(agg, "summary.window_end_ms");
    double lo, hi;

    if (s == NULL || e == NULL)
        return 0;
    lo = s->hist != NULL ? llmb_hist_min(s->hist) : s->min;
    hi = e->hist != NULL ? llmb_hist_max(e->hist) : e->max;
    return hi > lo ? (int64_t)(hi - lo) : 0;
}

json_t *llmb_agg_by_json(struct llmb_agg *agg, int64_t run_ms)
{
    const char *name;
    json_t *by, *v;

    if (agg->ngroups == 0)
        return NULL;
    by = json_object();
    /* jansson iterates an object in insertion order: the groups' order */
    json_object_foreach(agg->group_index, name, v) {
        struct llmb_agg *a = agg->groups[(size_t)json_integer_value(v)];
        int64_t w = llmb_agg_window_ms(a);
        json_t *g = json_pack("{s:I,s:o}", "results",
                              (json_int_t)a->results, "fields",
                              llmb_agg_fields_json(a, w > 0 ? w : run_ms));
        json_t *tl = llmb_agg_series_json(a);
        if (w > 0)
            json_object_set_new(g, "measured_ms", json_integer(w));
        if (tl != NULL)
            json_object_set_new(g, "timeline", tl);
        json_object_set_new(by, name, g);
    }
    return by;
}

int llmb_agg_add_text(struct llmb_agg *agg, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY, &jerr);

    if (v == NULL)
        return LLMB_EINVAL;
    llmb_agg_add(agg, v);
    json_decref(v);
    return 0;
}

size_t llmb_agg_nfields(const struct llmb_agg *agg)
{
    return agg->nfields;
}

uint64_t llmb_agg_dropped(const struct llmb_agg *agg)
{
    return agg->dropped;
}

static int cmp_order(const void *a, const void *b, void *arg)
{
    const struct llmb_agg *agg = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;

    return strcmp(agg->fields[x].path, agg->fields[y].path);
}

int llmb_agg_field(struct llmb_agg *agg, size_t i, const char **path,
                   struct llmb_agg_stats *out)
{
    struct field *f;
    size_t k;

    if (i >= agg->nfields)
        return LLMB_EINVAL;
    if (agg->order == NULL) {
        agg->order = llmb_xmalloc(agg->nfields * sizeof(*agg->order));
        for (k = 0; k < agg->nfields; k++)
            agg->order[k] = k;
        qsort_r(agg->order, agg->nfields, sizeof(*agg->order), cmp_order,
                agg);
    }
    f = &agg->fields[agg->order[i]];
    llmb_agg_stats_compute(f->s, f->n, out);
    out->kind = f->kind;
    /* The reservoir gives the percentiles; the rest is exact. */
    out->count = f->count;
    out->min = f->min;
    out->max = f->max;
    out->sum = f->sum + f->comp;
    out->mean = f->count > 0 ? out->sum / (double)f->count : 0.0;
    if (f->kind == LLMB_AGG_LABEL)
        out->min = out->max = out->sum = out->mean = 0.0;
    /* Flags and labels have no percentiles: unknown, not 0. */
    if (f->kind == LLMB_AGG_LABEL || f->kind == LLMB_AGG_FLAG)
        out->p50 = out->p90 = out->p99 = NAN;
    if (f->hist != NULL) {
        /* Histograms give every statistic, over every value they hold. */
        out->count = f->hist->count;
        out->min = llmb_hist_min(f->hist);
        out->max = llmb_hist_max(f->hist);
        out->mean = llmb_hist_mean(f->hist);
        out->sum = f->hist->sum / (double)f->hist->scale;
        out->p50 = llmb_hist_percentile(f->hist, 0.50);
        out->p90 = llmb_hist_percentile(f->hist, 0.90);
        out->p99 = llmb_hist_percentile(f->hist, 0.99);
    }
    *path = f->path;
    return 0;
}

double llmb_agg_round(double v)
{
    double a = fabs(v), scale;
    int dec;

    if (!isfinite(v) || v == 0.0)
        return v;
    /* 6 significant digits: 5 decimals below the leading digit. */
    dec = 5 - (int)floor(log10(a));
    if (dec < 3)
        dec = 3;
    if (dec > 300)
        return v;
    scale = pow(10.0, dec);
    if (a * scale >= EXACT_INT_LIMIT)
        return v; /* no digit to drop that a double still holds */
    return round(v * scale) / scale;
}

char *llmb_agg_format(double v, char *buf)
{
    double r = llmb_agg_round(v);

    if (r == floor(r) && fabs(r) <= EXACT_INT_LIMIT)
        snprintf(buf, LLMB_AGG_NUM_LEN, "%.0f", r);
    else
        snprintf(buf, LLMB_AGG_NUM_LEN, "%.15g", r);
    if (strcmp(buf, "-0") == 0)
        strcpy(buf, "0");
    return buf;
}

json_t *llmb_agg_json_number(double v)
{
    v = llmb_agg_round(v);
    if (v == floor(v) && fabs(v) <= EXACT_INT_LIMIT)
        return json_integer((json_int_t)v);
    return json_real(v);
}

static const char *const kind_names[] = {
    [LLMB_AGG_GAUGE] = "gauge",
    [LLMB_AGG_DURATION] = "duration",
    [LLMB_AGG_COUNT] = "count",
    [LLMB_AGG_FLAG] = "flag",
    [LLMB_AGG_LABEL] = "label",
};

const char *llmb_agg_kind_name(enum llmb_agg_kind kind)
{
    llmb_assert((size_t)kind < sizeof(kind_names) / sizeof(*kind_names));
    return kind_names[kind];
}

int llmb_agg_kind_parse(const char *name, enum llmb_agg_kind *out)
{
    for (size_t i = 0; i < sizeof(kind_names) / sizeof(*kind_names); i++)
        if (strcmp(name, kind_names[i]) == 0) {
            *out = (enum llmb_agg_kind)i;
            return 0;
        }
    return LLMB_EINVAL;
}

/* True when name is word or ends with "_" word. */
static bool named(const char *name, const char *word)
{
    size_t n = strlen(name), w = strlen(word);

    if (n == w)
        return strcmp(name, word) == 0;
    return n > w && name[n - w - 1] == '_' && strcmp(name + n - w, word) == 0;
}

const char *llmb_agg_unit(const char *path)
{
    static const char *const units[] = {"ms", "us", "ns", "s"};
    const char *dot = strrchr(path, '.');
    const char *name = dot != NULL ? dot + 1 : path;

    if (named(name, "per_s"))
        return NULL;
    for (size_t i = 0; i < sizeof(units) / sizeof(*units); i++)
        if (named(name, units[i]))
            return units[i];
    return NULL;
}

enum llmb_agg_kind llmb_agg_kind_infer(const char *path, json_type type)
{
    static const char *const counts[] = {
        "requests", "errors", "retries", "failures", "failed", "ok",
        "attempts", "bytes", "tokens", "count", "total", "dropped",
    };
    const char *dot = strrchr(path, '.');
    const char *name = dot != NULL ? dot + 1 : path;
    size_t i;

    if (type == JSON_TRUE || type == JSON_FALSE)
        return LLMB_AGG_FLAG;
    if (named(name, "per_s") || named(name, "rate"))
        return LLMB_AGG_GAUGE;
    if (llmb_agg_unit(path) != NULL)
        return LLMB_AGG_DURATION;
    if (named(name, "status") || named(name, "code"))
        return LLMB_AGG_LABEL;
    for (i = 0; i < sizeof(counts) / sizeof(*counts); i++)
        if (named(name, counts[i]))
            return LLMB_AGG_COUNT;
    /* A member of an "errors" or "counts" object: errors.http_429. */
    for (const char *p = path; p < name; p = strchr(p, '.') + 1) {
        size_t len = (size_t)(strchr(p, '.') - p);
        if ((len == 6 && strncmp(p, "errors", 6) == 0) ||
            (len == 6 && strncmp(p, "counts", 6) == 0))
            return LLMB_AGG_COUNT;
    }
    return LLMB_AGG_GAUGE;
}

static int cmp_label(const void *a, const void *b)
{
    const struct label *x = a, *y = b;

    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return strcmp(x->value, y->value);
}

/* The label values of field path (most frequent first), or NULL. */
static json_t *label_json(struct llmb_agg *agg, const char *path,
                          uint64_t *other)
{
    json_t *at = json_object_get(agg->index, path);
    struct field *f = &agg->fields[(size_t)json_integer_value(at)];
    json_t *o = json_object();

    qsort(f->labels, f->nlabels, sizeof(*f->labels), cmp_label);
    for (size_t i = 0; i < f->nlabels; i++)
        json_object_set_new(o, f->labels[i].value,
                            json_integer((json_int_t)f->labels[i].n));
    *other = f->other;
    return o;
}

json_t *llmb_agg_fields_json(struct llmb_agg *agg, int64_t run_ms)
{
    json_t *out = json_object();
    size_t i;

    llmb_assert(out != NULL);
    for (i = 0; i < agg->nfields; i++) {
        struct llmb_agg_stats st;
        const struct llmb_hist *hist;
        const char *path = NULL;
        json_t *o;

        llmb_assert(llmb_agg_field(agg, i, &path, &st) == 0);
        hist = agg->fields[agg->order[i]].hist;
        o = json_object();
        json_object_set_new(o, "kind",
                            json_string(llmb_agg_kind_name(st.kind)));
        if (st.kind == LLMB_AGG_DURATION && llmb_agg_unit(path) != NULL)
            json_object_set_new(o, "unit", json_string(llmb_agg_unit(path)));
        json_object_set_new(o, "count", json_integer((json_int_t)st.count));
        switch (st.kind) {
        case LLMB_AGG_LABEL: {
            uint64_t other = 0;
            json_object_set_new(o, "values", label_json(agg, path, &other));
            if (other > 0)
                json_object_set_new(o, "other",
                                    json_integer((json_int_t)other));
            break;
        }
        case LLMB_AGG_FLAG:
            json_object_set_new(o, "true", llmb_agg_json_number(st.sum));
            json_object_set_new(o, "mean", llmb_agg_json_number(st.mean));
            break;
        case LLMB_AGG_COUNT:
        case LLMB_AGG_GAUGE:
        case LLMB_AGG_DURATION:
            if (st.kind == LLMB_AGG_COUNT)
                json_object_set_new(o, "sum", llmb_agg_json_number(st.sum));
            json_object_set_new(o, "min", llmb_agg_json_number(st.min));
            json_object_set_new(o, "mean", llmb_agg_json_number(st.mean));
            json_object_set_new(o, "p50", llmb_agg_json_number(st.p50));
            json_object_set_new(o, "p90", llmb_agg_json_number(st.p90));
            json_object_set_new(o, "p99", llmb_agg_json_number(st.p99));
            json_object_set_new(o, "max", llmb_agg_json_number(st.max));
            if (st.kind == LLMB_AGG_COUNT && run_ms > 0)
                json_object_set_new(o, "per_s", llmb_agg_json_number(
                    st.sum * 1000.0 / (double)run_ms));
            break;
        }
        /* The merged histogram itself, for the distributions the web UI
         * and reports draw (docs/coordinator.md). */
        if (hist != NULL)
            json_object_set_new(o, "hist", llmb_hist_json(hist));
        json_object_set_new(out, path, o);
    }
    return out;
}

double llmb_agg_stat(const json_t *agg, const char *path, const char *stat)
{
    json_t *v = json_object_get(
        json_object_get(json_object_get(agg, "fields"), path), stat);

    return json_is_number(v) ? json_number_value(v) : NAN;
}
