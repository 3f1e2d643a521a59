/*
 * Aggregation of task results: the numbers a job's tasks returned, reduced
 * to count, min, mean, p50, p90, p99 and max per field. The coordinator
 * feeds it every task result of a finished job; the admin CLI and
 * executors that summarise their own measurements use the same math.
 *
 * Flattening. Every numeric value of a result object is a sample of its
 * dotted path: {"usage":{"tokens":7}} gives 7 for "usage.tokens". Numbers
 * inside arrays contribute one sample each to the array's path, the index
 * dropped: {"requests":[{"ttft_ms":1},{"ttft_ms":2}]} gives 1 and 2 for
 * "requests.ttft_ms", {"lat":[3,4]} gives 3 and 4 for "lat". Strings,
 * booleans and null are ignored; a key holding a dot is used as it is.
 *
 * Sums. Each field also reports the exact (compensated) sum of its
 * samples, so totals over tasks (requests sent, tokens, errors) need no
 * mean-times-count arithmetic.
 *
 * Percentiles interpolate linearly between the two nearest ranks, the
 * method NumPy uses by default: for n sorted samples x[0..n-1] and q in
 * [0, 1], h = (n - 1) * q and the value is x[floor(h)] + (h - floor(h)) *
 * (x[floor(h) + 1] - x[floor(h)]).
 *
 * Bounds. Count, min, mean and max are always exact. Percentiles are exact
 * while a field holds at most max_samples samples; past that they come
 * from a uniform reservoir sample of max_samples of them. At most
 * max_fields distinct paths are kept; samples of further paths are
 * counted as dropped.
 */
#ifndef LLMB_AGGREGATE_H
#define LLMB_AGGREGATE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The summary of one field. */
struct llmb_agg_stats {
    uint64_t count; /* samples seen */
    double min, mean, p50, p90, p99, max;
    double sum;     /* of every sample (compensated), for totals */
};

/* Limits of one aggregation; a zero field takes its default. */
struct llmb_agg_limits {
    size_t max_fields;  /* distinct paths kept; default 1024 */
    size_t max_samples; /* samples kept per path for percentiles; 100000 */
};

#define LLMB_AGG_MAX_FIELDS_DEFAULT 1024
#define LLMB_AGG_MAX_SAMPLES_DEFAULT 100000

struct llmb_agg;

/* Returns the value at quantile q (0..1, clamped) of the n >= 1 samples in
 * sorted, which must be in ascending order, by linear interpolation. */
double llmb_agg_quantile(const double *sorted, size_t n, double q);

/* Sorts samples[0..n-1] in place and fills *out. With n == 0 every field
 * of *out is 0. */
void llmb_agg_stats_compute(double *samples, size_t n,
                            struct llmb_agg_stats *out);

/* A new, empty aggregation; limits NULL means the defaults. Free with
 * llmb_agg_free(). */
struct llmb_agg *llmb_agg_new(const struct llmb_agg_limits *limits);

/* Frees agg and its samples; accepts NULL. */
void llmb_agg_free(struct llmb_agg *agg);

/* Adds every numeric value of result (any JSON value; the caller keeps its
 * reference) as samples of its flattened path. */
void llmb_agg_add(struct llmb_agg *agg, const json_t *result);

/* Parses len bytes of JSON text and adds them like llmb_agg_add(). Returns
 * 0, or LLMB_EINVAL when the text is not JSON (then nothing is added). */
int llmb_agg_add_text(struct llmb_agg *agg, const char *text, size_t len);

/* Number of distinct paths kept so far. */
size_t llmb_agg_nfields(const struct llmb_agg *agg);

/* Samples not kept because their path came after max_fields others. */
uint64_t llmb_agg_dropped(const struct llmb_agg *agg);

/* Fills *path (owned by agg, valid until the next add or the free) and
 * *out for field i of llmb_agg_nfields(), in ascending byte order of the
 * paths. Returns 0, or LLMB_EINVAL when i is out of range. */
int llmb_agg_field(struct llmb_agg *agg, size_t i, const char **path,
                   struct llmb_agg_stats *out);

/* Returns a new JSON object {"<path>": {"count", "sum", "min", "mean",
 * "p50", "p90", "p99", "max"}, ...}; whole numbers within +-2^53 are JSON
 * integers, other values reals. The caller owns the reference. */
json_t *llmb_agg_fields_json(struct llmb_agg *agg);

/* Returns v as a new JSON number: an integer when v is whole and within
 * +-2^53, else a real. */
json_t *llmb_agg_json_number(double v);

#endif
