/*
 * Mergeable log-linear histograms (HdrHistogram's bucket layout) for
 * latency and size distributions: record values one by one, merge
 * histograms made anywhere, and read percentiles with a bounded relative
 * error. The llm executor fills one per metric per task; the coordinator's
 * aggregation merges them into the job's distribution (lib/aggregate.c).
 *
 * Values. A value v >= 0 is stored as the integer t = round(v * scale)
 * ("ticks": scale 1000000 makes ms values ns ticks). Ticks below 256 have
 * a bucket each; above, each power of two [2^e, 2^(e+1)) is cut into 128
 * equal buckets, so a bucket is at most 1/128 of its lower bound wide.
 *
 * Error bound. A percentile is the midpoint of the bucket holding the
 * nearest-rank sample (rank ceil(q * n), 1-based), clamped to the exact
 * min and max: it is within 1/256 (0.39 %) of that sample, relative, for
 * every tick value (exact below 256 ticks). count, min, max and the sum
 * (so the mean) are exact in ticks.
 *
 * Memory: one uint64 count per bucket up to the highest bucket used, so
 * 8 * (256 + 128 * (log2(max ticks) - 7)) bytes: about 31 KB for 120 s in
 * ns ticks, 1.9 KB for counts up to 10^4. At most 7,424 buckets (59 KB).
 *
 * JSON (compact, sparse): {"hist": "llmb-loglin-7", "scale": S,
 * "count": N, "min": T, "max": T, "sum": T, "b": [i0, c0, d1, c1, ...]}
 * where the b pairs are non-empty buckets: the first index, then each
 * next index as its distance from the previous one, and the count.
 */
#ifndef LLMB_HISTOGRAM_H
#define LLMB_HISTOGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define LLMB_HIST_SCHEME "llmb-loglin-7"
#define LLMB_HIST_SUB_BITS 7
#define LLMB_HIST_NBUCKETS (256 + 128 * 56) /* every uint64_t tick */

/* Embedded; llmb_hist_init() / llmb_hist_fini(). */
struct llmb_hist {
    uint64_t scale;   /* ticks per unit of the recorded values */
    uint64_t count;   /* values recorded */
    uint64_t min, max; /* ticks; meaningful when count > 0 */
    double sum;       /* ticks */
    uint64_t *b;      /* counts of buckets 0..nb-1 */
    size_t nb;
};

/* An empty histogram of values counted in 1/scale units (scale >= 1). */
void llmb_hist_init(struct llmb_hist *h, uint64_t scale);
/* Frees the buckets; h is left empty with its scale. */
void llmb_hist_fini(struct llmb_hist *h);

/* Records v (in units; negative counts as 0, NaN is ignored) n times. */
void llmb_hist_record(struct llmb_hist *h, double v, uint64_t n);
/* Records ticks t n times. */
void llmb_hist_record_ticks(struct llmb_hist *h, uint64_t t, uint64_t n);

/* Adds every value of src to dst. Returns 0, or LLMB_EINVAL when their
 * scales differ (dst unchanged). */
int llmb_hist_merge(struct llmb_hist *dst, const struct llmb_hist *src);

/* The value (in units) at quantile q in [0, 1] (clamped): the nearest-rank
 * sample within the error bound; q = 0 gives min and q = 1 max exactly.
 * 0 when the histogram is empty. */
double llmb_hist_percentile(const struct llmb_hist *h, double q);
/* Exact min, max and mean in units (0 when empty). */
double llmb_hist_min(const struct llmb_hist *h);
double llmb_hist_max(const struct llmb_hist *h);
double llmb_hist_mean(const struct llmb_hist *h);

/* Bucket of ticks t, and the lowest and highest ticks it holds. */
size_t llmb_hist_bucket(uint64_t t);
uint64_t llmb_hist_bucket_low(size_t i);
uint64_t llmb_hist_bucket_high(size_t i);

/* The JSON form of h (a new reference). */
json_t *llmb_hist_json(const struct llmb_hist *h);

/* True when v is an object whose "hist" names this scheme: what
 * aggregation treats as a histogram rather than numbers. */
bool llmb_hist_json_is(const json_t *v);

/* Fills h (initialised here; fini it either way) from its JSON form.
 * Returns 0, or LLMB_EINVAL with a static message in *errstr when v is
 * not a well-formed histogram (bad scheme, scale, index or count, counts
 * that do not add up). */
int llmb_hist_from_json(struct llmb_hist *h, const json_t *v,
                        const char **errstr);

#endif
