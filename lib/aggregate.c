/*
 * Aggregation of task results (see <llmb/aggregate.h> for the contract).
 * The coordinator creates one struct llmb_agg per finished job, adds each
 * task's result JSON, then turns the per-path samples into the "fields"
 * object of the job's aggregate.
 *
 * Each path owns a field: exact count, min, max and a compensated sum, and
 * a sample array for the percentiles that stops growing at max_samples and
 * from then on is a uniform reservoir (Vitter's algorithm R) driven by a
 * fixed-seed generator, so a run is reproducible. Paths are found through
 * a jansson object used as a hash map from path to field index.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/aggregate.h>
#include <llmb/err.h>
#include <llmb/util.h>

/* Whole numbers of at most this magnitude print as JSON integers. */
#define EXACT_INT_LIMIT 9007199254740992.0 /* 2^53 */

struct field {
    char *path;     /* owned */
    uint64_t count; /* samples seen */
    double min, max;
    double sum, comp; /* Neumaier-compensated sum */
    double *s;        /* kept samples, n of cap */
    size_t n, cap;
};

struct llmb_agg {
    struct llmb_agg_limits limits;
    json_t *index;         /* path -> integer index into fields */
    struct field *fields;  /* nfields of capfields */
    size_t nfields, capfields;
    size_t *order;         /* field indexes sorted by path; NULL = stale */
    uint64_t dropped;
    uint64_t rng;          /* xorshift64* state */
    struct llmb_buf path;  /* scratch for the path being walked */
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
    llmb_assert(agg->index != NULL);
    agg->rng = 0x9E3779B97F4A7C15ULL;
    llmb_buf_init(&agg->path);
    return agg;
}

void llmb_agg_free(struct llmb_agg *agg)
{
    size_t i;

    if (agg == NULL)
        return;
    for (i = 0; i < agg->nfields; i++) {
        free(agg->fields[i].path);
        free(agg->fields[i].s);
    }
    free(agg->fields);
    free(agg->order);
    json_decref(agg->index);
    llmb_buf_fini(&agg->path);
    free(agg);
}

/* Returns the field of the path in agg->path, creating it, or NULL when
 * the path is new and max_fields are already kept. */
static struct field *field_get(struct llmb_agg *agg)
{
    json_t *at = json_object_get(agg->index, agg->path.data);
    struct field *f;

    if (at != NULL)
        return &agg->fields[(size_t)json_integer_value(at)];
    if (agg->nfields >= agg->limits.max_fields)
        return NULL;
    if (agg->nfields == agg->capfields) {
        agg->capfields = agg->capfields ? agg->capfields * 2 : 16;
        agg->fields = llmb_xrealloc(agg->fields,
                                    agg->capfields * sizeof(*agg->fields));
    }
    f = &agg->fields[agg->nfields];
    memset(f, 0, sizeof(*f));
    f->path = llmb_xstrdup(agg->path.data);
    json_object_set_new(agg->index, f->path,
                        json_integer((json_int_t)agg->nfields));
    agg->nfields++;
    free(agg->order);
    agg->order = NULL;
    return f;
}

static void field_add(struct llmb_agg *agg, struct field *f, double v)
{
    double t;

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

/* Walks v, whose path is agg->path, adding its numbers. */
static void walk(struct llmb_agg *agg, const json_t *v)
{
    size_t mark = agg->path.len;

    switch (json_typeof(v)) {
    case JSON_INTEGER:
    case JSON_REAL: {
        struct field *f;
        if (mark == 0)
            return; /* a bare number has no name */
        f = field_get(agg);
        if (f == NULL)
            agg->dropped++;
        else
            field_add(agg, f, json_number_value(v));
        return;
    }
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
        /* json_object_foreach needs a non-const object; it only reads. */
        json_object_foreach((json_t *)v, key, e) {
            if (mark > 0)
                llmb_buf_append(&agg->path, ".", 1);
            llmb_buf_append(&agg->path, key, strlen(key));
            walk(agg, e);
            agg->path.len = mark;
            agg->path.data[mark] = '\0';
        }
        return;
    }
    case JSON_STRING:
    case JSON_TRUE:
    case JSON_FALSE:
    case JSON_NULL:
        return;
    }
}

void llmb_agg_add(struct llmb_agg *agg, const json_t *result)
{
    llmb_buf_reset(&agg->path);
    if (result != NULL)
        walk(agg, result);
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
    /* The reservoir gives the percentiles; the rest is exact. */
    out->count = f->count;
    out->min = f->min;
    out->max = f->max;
    out->sum = f->sum + f->comp;
    out->mean = out->sum / (double)f->count;
    *path = f->path;
    return 0;
}

json_t *llmb_agg_json_number(double v)
{
    if (v == floor(v) && fabs(v) <= EXACT_INT_LIMIT)
        return json_integer((json_int_t)v);
    return json_real(v);
}

json_t *llmb_agg_fields_json(struct llmb_agg *agg)
{
    json_t *out = json_object();
    size_t i;

    llmb_assert(out != NULL);
    for (i = 0; i < agg->nfields; i++) {
        struct llmb_agg_stats st;
        const char *path = NULL;
        json_t *o;

        llmb_assert(llmb_agg_field(agg, i, &path, &st) == 0);
        o = json_object();
        json_object_set_new(o, "count", json_integer((json_int_t)st.count));
        json_object_set_new(o, "sum", llmb_agg_json_number(st.sum));
        json_object_set_new(o, "min", llmb_agg_json_number(st.min));
        json_object_set_new(o, "mean", llmb_agg_json_number(st.mean));
        json_object_set_new(o, "p50", llmb_agg_json_number(st.p50));
        json_object_set_new(o, "p90", llmb_agg_json_number(st.p90));
        json_object_set_new(o, "p99", llmb_agg_json_number(st.p99));
        json_object_set_new(o, "max", llmb_agg_json_number(st.max));
        json_object_set_new(out, path, o);
    }
    return out;
}
