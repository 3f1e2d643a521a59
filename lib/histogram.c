/*
 * Log-linear histograms (see <llmb/histogram.h> for the contract and the
 * error bound). The buckets are a dense array of counts grown on demand up
 * to the highest bucket used, so a histogram of millisecond latencies in
 * ns ticks stays near 30 KB and merging is a loop over two arrays. The
 * JSON form lists only non-empty buckets, their indexes delta-coded.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/histogram.h>
#include <llmb/util.h>

#define SUB (1u << LLMB_HIST_SUB_BITS) /* buckets per power of two */
#define LINEAR (2u * SUB)              /* ticks below this are exact */

size_t llmb_hist_bucket(uint64_t t)
{
    unsigned e;

    if (t < LINEAR)
        return (size_t)t;
    e = 63u - (unsigned)__builtin_clzll(t);             /* >= 8 */
    return LINEAR + (size_t)(e - 8u) * SUB +
           (size_t)((t >> (e - LLMB_HIST_SUB_BITS)) - SUB);
}

uint64_t llmb_hist_bucket_low(size_t i)
{
    size_t k;

    if (i < LINEAR)
        return (uint64_t)i;
    k = i - LINEAR;
    return (uint64_t)(SUB + k % SUB) << (k / SUB + 1u);
}

uint64_t llmb_hist_bucket_high(size_t i)
{
    if (i < LINEAR)
        return (uint64_t)i;
    return llmb_hist_bucket_low(i) +
           ((uint64_t)1 << ((i - LINEAR) / SUB + 1u)) - 1u;
}

void llmb_hist_init(struct llmb_hist *h, uint64_t scale)
{
    memset(h, 0, sizeof(*h));
    h->scale = scale > 0 ? scale : 1;
}

void llmb_hist_fini(struct llmb_hist *h)
{
    uint64_t scale = h->scale;

    free(h->b);
    llmb_hist_init(h, scale);
}

/* Makes bucket i exist. */
static void grow(struct llmb_hist *h, size_t i)
{
    size_t nb;

    if (i < h->nb)
        return;
    nb = h->nb > 0 ? h->nb : 64;
    while (nb <= i)
        nb *= 2;
    if (nb > LLMB_HIST_NBUCKETS)
        nb = LLMB_HIST_NBUCKETS;
    h->b = llmb_xrealloc(h->b, nb * sizeof(*h->b));
    memset(h->b + h->nb, 0, (nb - h->nb) * sizeof(*h->b));
    h->nb = nb;
}

void llmb_hist_record_ticks(struct llmb_hist *h, uint64_t t, uint64_t n)
{
    size_t i = llmb_hist_bucket(t);

    if (n == 0)
        return;
    grow(h, i);
    h->b[i] += n;
    if (h->count == 0 || t < h->min)
        h->min = t;
    if (h->count == 0 || t > h->max)
        h->max = t;
    h->count += n;
    h->sum += (double)t * (double)n;
}

void llmb_hist_record(struct llmb_hist *h, double v, uint64_t n)
{
    double t;

    if (isnan(v))
        return;
    t = v > 0 ? round(v * (double)h->scale) : 0.0;
    llmb_hist_record_ticks(h, t >= 18446744073709549568.0 ? UINT64_MAX :
                           (uint64_t)t, n);
}

int llmb_hist_merge(struct llmb_hist *dst, const struct llmb_hist *src)
{
    if (dst->scale != src->scale)
        return LLMB_EINVAL;
    if (src->count == 0)
        return 0;
    grow(dst, src->nb - 1);
    for (size_t i = 0; i < src->nb; i++)
        dst->b[i] += src->b[i];
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (dst->count == 0 || src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
    return 0;
}

double llmb_hist_min(const struct llmb_hist *h)
{
    return h->count > 0 ? (double)h->min / (double)h->scale : 0.0;
}

double llmb_hist_max(const struct llmb_hist *h)
{
    return h->count > 0 ? (double)h->max / (double)h->scale : 0.0;
}

double llmb_hist_mean(const struct llmb_hist *h)
{
    return h->count > 0 ?
           h->sum / (double)h->count / (double)h->scale : 0.0;
}

double llmb_hist_percentile(const struct llmb_hist *h, double q)
{
    uint64_t rank, seen = 0;
    double mid;
    size_t i;

    if (h->count == 0)
        return 0.0;
    if (!(q > 0.0))
        return llmb_hist_min(h);
    if (q >= 1.0)
        return llmb_hist_max(h);
    /* Nearest rank, 1-based: the smallest sample with at least q * n
     * samples at or below it. */
    rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1)
        rank = 1;
    for (i = 0; i < h->nb; i++) {
        seen += h->b[i];
        if (seen >= rank)
            break;
    }
    llmb_assert(i < h->nb);
    mid = ((double)llmb_hist_bucket_low(i) +
           (double)llmb_hist_bucket_high(i)) / 2.0;
    if (mid < (double)h->min)
        mid = (double)h->min;
    if (mid > (double)h->max)
        mid = (double)h->max;
    return mid / (double)h->scale;
}

/* A tick count as JSON: an integer (ticks fit json_int_t up to 2^63). */
static json_t *ticks_json(double t)
{
    if (t > 9.2e18)
        t = 9.2e18;
    return json_integer((json_int_t)t);
}

json_t *llmb_hist_json(const struct llmb_hist *h)
{
    json_t *o = json_object();
    json_t *b = json_array();
    size_t prev = 0;
    bool first = true;

    json_object_set_new(o, "hist", json_string(LLMB_HIST_SCHEME));
    json_object_set_new(o, "scale", json_integer((json_int_t)h->scale));
    json_object_set_new(o, "count", ticks_json((double)h->count));
    json_object_set_new(o, "min", ticks_json((double)h->min));
    json_object_set_new(o, "max", ticks_json((double)h->max));
    json_object_set_new(o, "sum", ticks_json(h->sum));
    for (size_t i = 0; i < h->nb; i++) {
        if (h->b[i] == 0)
            continue;
        json_array_append_new(b, json_integer((json_int_t)(first ? i :
                                                           i - prev)));
        json_array_append_new(b, ticks_json((double)h->b[i]));
        prev = i;
        first = false;
    }
    json_object_set_new(o, "b", b);
    return o;
}

bool llmb_hist_json_is(const json_t *v)
{
    const char *s = json_string_value(json_object_get(v, "hist"));

    return s != NULL && strcmp(s, LLMB_HIST_SCHEME) == 0;
}

/* A non-negative JSON integer of v's key into *out; false when not. */
static bool get_u64(const json_t *v, const char *key, uint64_t *out)
{
    json_t *x = json_object_get(v, key);

    if (!json_is_integer(x) || json_integer_value(x) < 0)
        return false;
    *out = (uint64_t)json_integer_value(x);
    return true;
}

int llmb_hist_from_json(struct llmb_hist *h, const json_t *v,
                        const char **errstr)
{
    uint64_t scale = 0, count = 0, min = 0, max = 0, sum = 0, total = 0;
    const json_t *b = json_object_get(v, "b");
    size_t idx = 0;

    llmb_hist_init(h, 1);
    *errstr = NULL;
    if (!llmb_hist_json_is(v))
        *errstr = "not a histogram: \"hist\" must be \"" LLMB_HIST_SCHEME "\"";
    else if (!get_u64(v, "scale", &scale) || scale == 0)
        *errstr = "histogram \"scale\" must be a positive integer";
    else if (!get_u64(v, "count", &count) || !get_u64(v, "min", &min) ||
             !get_u64(v, "max", &max) || !get_u64(v, "sum", &sum))
        *errstr = "histogram \"count\", \"min\", \"max\" and \"sum\" must be "
                  "non-negative integers";
    else if (!json_is_array(b) || json_array_size(b) % 2 != 0)
        *errstr = "histogram \"b\" must be an array of index, count pairs";
    else if (count > 0 && min > max)
        *errstr = "histogram \"min\" is above its \"max\"";
    if (*errstr != NULL)
        return LLMB_EINVAL;
    h->scale = scale;
    for (size_t k = 0; k < json_array_size(b); k += 2) {
        const json_t *d = json_array_get(b, k), *c = json_array_get(b, k + 1);
        json_int_t dv = json_integer_value(d), cv = json_integer_value(c);

        if (!json_is_integer(d) || !json_is_integer(c) || dv < 0 ||
            (k > 0 && dv == 0) || cv <= 0 ||
            (uint64_t)dv >= LLMB_HIST_NBUCKETS - idx) {
            *errstr = "histogram bucket index or count out of range";
            break;
        }
        idx += (size_t)dv;
        grow(h, idx);
        h->b[idx] = (uint64_t)cv;
        total += (uint64_t)cv;
    }
    if (*errstr == NULL && total != count)
        *errstr = "histogram bucket counts do not add up to its \"count\"";
    if (*errstr == NULL && count > 0 &&
        (llmb_hist_bucket(max) >= h->nb || h->b[llmb_hist_bucket(min)] == 0 ||
         h->b[llmb_hist_bucket(max)] == 0))
        *errstr = "histogram \"min\" or \"max\" is not in a non-empty bucket";
    if (*errstr != NULL) {
        llmb_hist_fini(h);
        return LLMB_EINVAL;
    }
    h->count = count;
    h->min = min;
    h->max = max;
    h->sum = (double)sum;
    return 0;
}
