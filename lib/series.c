/*
 * Bounded wall-clock time series (see <llmb/series.h> for the contract).
 * The llm executor fills one per task (worker/executors/llm_timeline.c);
 * the coordinator's aggregation merges them per job and per group
 * (lib/aggregate.c).
 *
 * Every change of range goes through cover(): it finds the smallest
 * doubling of the width at which the wanted range fits in max buckets and
 * moves the buckets there. A bucket of width w starting at a multiple of
 * w lies inside one bucket of any width 2^k w, so a move only adds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/series.h>
#include <llmb/util.h>

void llmb_series_init(struct llmb_series *s, int64_t width_ms, size_t max)
{
    llmb_assert(width_ms >= 1 && width_ms <= LLMB_SERIES_WIDTH_MAX &&
                max >= 1);
    memset(s, 0, sizeof(*s));
    s->width_ms = width_ms;
    s->max = max;
}

void llmb_series_fini(struct llmb_series *s)
{
    free(s->requests);
    free(s->tokens);
    free(s->busy);
    memset(s, 0, sizeof(*s));
}

/* floor(a / b) for b > 0. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return a % b != 0 && a < 0 ? q - 1 : q;
}

/* *a += b (b >= 0), stopping at LLMB_SERIES_COUNT_MAX: the results of
 * a job's tasks are anyone's JSON, and their sum must not overflow. */
static void add_count(int64_t *a, int64_t b)
{
    *a = b >= LLMB_SERIES_COUNT_MAX - *a ? LLMB_SERIES_COUNT_MAX : *a + b;
}

/* Grows the arrays to hold at least n buckets (geometrically, up to
 * max), the new slots zero. */
static void reserve(struct llmb_series *s, size_t n)
{
    size_t cap = s->cap;

    if (n <= cap)
        return;
    cap = cap < 16 ? 16 : cap * 2;
    if (cap > s->max)
        cap = s->max;
    if (cap < n)
        cap = n;
    s->requests = llmb_xrealloc(s->requests, cap * sizeof(*s->requests));
    s->tokens = llmb_xrealloc(s->tokens, cap * sizeof(*s->tokens));
    s->busy = llmb_xrealloc(s->busy, cap * sizeof(*s->busy));
    memset(s->requests + s->cap, 0, (cap - s->cap) * sizeof(*s->requests));
    memset(s->tokens + s->cap, 0, (cap - s->cap) * sizeof(*s->tokens));
    memset(s->busy + s->cap, 0, (cap - s->cap) * sizeof(*s->busy));
    s->cap = cap;
}

/* Makes the buckets of width w (a power-of-two multiple of s's, at least
 * it) start at start (a multiple of w) and be nb, keeping every count. */
static void move(struct llmb_series *s, int64_t start, int64_t w, size_t nb)
{
    struct llmb_series t;

    if (s->n == 0 || (start == s->start_ms && w == s->width_ms)) {
        reserve(s, nb);
        s->start_ms = start;
        s->width_ms = w;
        s->n = nb;
        return;
    }
    llmb_series_init(&t, w, s->max);
    reserve(&t, nb);
    t.start_ms = start;
    t.n = nb;
    for (size_t i = 0; i < s->n; i++) {
        int64_t at = s->start_ms + (int64_t)i * s->width_ms;
        size_t j = (size_t)((at - start) / w);
        add_count(&t.requests[j], s->requests[i]);
        add_count(&t.tokens[j], s->tokens[i]);
        t.busy[j] += s->busy[i];
    }
    llmb_series_fini(s);
    *s = t;
}

/* Makes buckets for every time in [lo, hi] (ms) besides those there are,
 * at width w or at least s's, doubled until they fit in max. */
static void cover(struct llmb_series *s, int64_t lo, int64_t hi, int64_t w)
{
    int64_t first, last;

    if (s->n > 0) {
        int64_t end = s->start_ms + (int64_t)s->n * s->width_ms - 1;
        if (lo >= s->start_ms && hi <= end && w <= s->width_ms)
            return;
        if (lo > s->start_ms)
            lo = s->start_ms;
        if (hi < end)
            hi = end;
    }
    if (w < s->width_ms)
        w = s->width_ms;
    for (;;) {
        first = floor_div(lo, w);
        last = floor_div(hi, w);
        if (last - first < (int64_t)s->max)
            break;
        w *= 2;
    }
    move(s, first * w, w, (size_t)(last - first + 1));
}

static size_t index_of(const struct llmb_series *s, int64_t at_ms)
{
    return (size_t)((at_ms - s->start_ms) / s->width_ms);
}

void llmb_series_count(struct llmb_series *s, int64_t at_ms,
                       int64_t requests, int64_t tokens)
{
    size_t i;

    cover(s, at_ms, at_ms, s->width_ms);
    i = index_of(s, at_ms);
    add_count(&s->requests[i], requests);
    add_count(&s->tokens[i], tokens);
}

void llmb_series_busy(struct llmb_series *s, double from_ms, double to_ms,
                      double level)
{
    int64_t lo, hi;

    if (!(to_ms > from_ms) || !(level > 0))
        return;
    lo = (int64_t)floor(from_ms);
    hi = (int64_t)ceil(to_ms) - 1;
    cover(s, lo, hi, s->width_ms);
    for (size_t i = index_of(s, lo); i <= index_of(s, hi); i++) {
        double b0 = (double)(s->start_ms + (int64_t)i * s->width_ms);
        double b1 = b0 + (double)s->width_ms;
        double a = from_ms > b0 ? from_ms : b0;
        double z = to_ms < b1 ? to_ms : b1;
        if (z > a)
            s->busy[i] += level * (z - a);
    }
}

/* True when big is small times a power of two. */
static int doubling_of(int64_t big, int64_t small)
{
    if (big % small != 0)
        return 0;
    big /= small;
    return (big & (big - 1)) == 0;
}

int llmb_series_merge(struct llmb_series *s, const struct llmb_series *o)
{
    if (o->n == 0)
        return 0;
    if (!(s->width_ms >= o->width_ms ? doubling_of(s->width_ms, o->width_ms)
                                     : doubling_of(o->width_ms, s->width_ms)))
        return LLMB_EINVAL;
    cover(s, o->start_ms,
          o->start_ms + (int64_t)o->n * o->width_ms - 1, o->width_ms);
    for (size_t i = 0; i < o->n; i++) {
        size_t j = index_of(s, o->start_ms + (int64_t)i * o->width_ms);
        add_count(&s->requests[j], o->requests[i]);
        add_count(&s->tokens[j], o->tokens[i]);
        s->busy[j] += o->busy[i];
    }
    return 0;
}

json_t *llmb_series_json(const struct llmb_series *s)
{
    json_t *req = json_array(), *tok = json_array(), *conc = json_array();

    for (size_t i = 0; i < s->n; i++) {
        /* the mean to 1/10000 of a request: short, and plenty */
        double c = round(s->busy[i] / (double)s->width_ms * 1e4) / 1e4;
        if (c > (double)LLMB_SERIES_COUNT_MAX)
            c = (double)LLMB_SERIES_COUNT_MAX;
        json_array_append_new(req, json_integer(s->requests[i]));
        json_array_append_new(tok, json_integer(s->tokens[i]));
        json_array_append_new(conc, c == floor(c) ?
                              json_integer((json_int_t)c) : json_real(c));
    }
    return json_pack("{s:I,s:I,s:o,s:o,s:o}", "start_ms",
                     (json_int_t)(s->n > 0 ? s->start_ms : 0), "width_ms",
                     (json_int_t)s->width_ms, "requests", req,
                     "output_tokens", tok, "concurrency", conc);
}

/* Element i of array a as a number >= 0 into *out (an integer when
 * whole). Returns 0 or -1. */
static int element(const json_t *a, size_t i, int whole, double *out)
{
    const json_t *e = json_array_get(a, i);
    double v;

    if (whole ? !json_is_integer(e) : !json_is_number(e))
        return -1;
    v = json_number_value(e);
    if (!(v >= 0) || !isfinite(v) || v > 9007199254740992.0)
        return -1;
    *out = v;
    return 0;
}

int llmb_series_from_json(struct llmb_series *s, const json_t *v, size_t max,
                          char **errstr)
{
    const json_t *start = json_object_get(v, "start_ms");
    const json_t *width = json_object_get(v, "width_ms");
    const json_t *arr[3];
    static const char *const names[3] = {"requests", "output_tokens",
                                         "concurrency"};
    json_int_t st, w;
    size_t n;

    llmb_series_init(s, LLMB_SERIES_WIDTH_MS, max);
    if (!json_is_object(v)) {
        *errstr = llmb_xstrdup("a time series must be an object");
        return LLMB_EINVAL;
    }
    if (!json_is_integer(width) || json_integer_value(width) < 1 ||
        json_integer_value(width) > LLMB_SERIES_WIDTH_MAX) {
        *errstr = llmb_xasprintf("time series \"width_ms\" must be an "
                                 "integer from 1 to %lld",
                                 (long long)LLMB_SERIES_WIDTH_MAX);
        return LLMB_EINVAL;
    }
    w = json_integer_value(width);
    if (!json_is_integer(start) || json_integer_value(start) < 0 ||
        json_integer_value(start) > LLMB_SERIES_START_MAX ||
        json_integer_value(start) % w != 0) {
        *errstr = llmb_xasprintf("time series \"start_ms\" must be an "
                                 "integer from 0 to %lld, a multiple of "
                                 "\"width_ms\"",
                                 (long long)LLMB_SERIES_START_MAX);
        return LLMB_EINVAL;
    }
    st = json_integer_value(start);
    for (int k = 0; k < 3; k++) {
        arr[k] = json_object_get(v, names[k]);
        if (!json_is_array(arr[k])) {
            *errstr = llmb_xasprintf("time series \"%s\" must be an array",
                                     names[k]);
            return LLMB_EINVAL;
        }
    }
    n = json_array_size(arr[0]);
    if (json_array_size(arr[1]) != n || json_array_size(arr[2]) != n) {
        *errstr = llmb_xstrdup("time series arrays must have the same "
                               "length");
        return LLMB_EINVAL;
    }
    if (n > max) {
        *errstr = llmb_xasprintf("time series has %zu buckets, more than "
                                 "%zu", n, max);
        return LLMB_EINVAL;
    }
    /* Every bucket starts by START_MAX: any two series then span at most
     * START_MAX + WIDTH_MAX, which LLMB_SERIES_MAX buckets cover below
     * WIDTH_MAX, so a merge of them never makes a width the JSON form
     * refuses (cover() doubles it to the first that fits). */
    if (n > 0 && (json_int_t)(n - 1) > (LLMB_SERIES_START_MAX - st) / w) {
        *errstr = llmb_xasprintf("time series buckets must start by %lld "
                                 "ms: \"start_ms\" + (buckets - 1) * "
                                 "\"width_ms\" is past it",
                                 (long long)LLMB_SERIES_START_MAX);
        return LLMB_EINVAL;
    }
    s->width_ms = w;
    if (n == 0)
        return 0;
    move(s, st, w, n);
    for (size_t i = 0; i < n; i++) {
        double r, t, c;
        if (element(arr[0], i, 1, &r) != 0 || element(arr[1], i, 1, &t) != 0
            || element(arr[2], i, 0, &c) != 0) {
            *errstr = llmb_xasprintf("time series bucket %zu: counts must be "
                                     "integers >= 0 and concurrency a number "
                                     ">= 0", i);
            llmb_series_fini(s);
            llmb_series_init(s, LLMB_SERIES_WIDTH_MS, max);
            return LLMB_EINVAL;
        }
        s->requests[i] = (int64_t)r;
        s->tokens[i] = (int64_t)t;
        s->busy[i] = c * (double)w;
    }
    return 0;
}
