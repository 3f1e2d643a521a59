/*
 * Aggregation of task results: the values a job's tasks returned, reduced
 * per field to statistics that fit what the field measures. The
 * coordinator feeds it every task result of a finished job; the admin CLI
 * and llmb-push print its numbers with the same rounding.
 *
 * Flattening. Every numeric value of a result object is a sample of its
 * dotted path: {"usage":{"tokens":7}} gives 7 for "usage.tokens". Numbers
 * inside arrays contribute one sample each to the array's path, the index
 * dropped: {"requests":[{"ttft_ms":1},{"ttft_ms":2}]} gives 1 and 2 for
 * "requests.ttft_ms", {"lat":[3,4]} gives 3 and 4 for "lat". Booleans are
 * samples of flags; strings count only in a field declared a label; null
 * is ignored; a key holding a dot is used as it is. A top-level key
 * starting with "_" is not walked: "_kinds" declares kinds (below), and
 * any other such key holds what a result keeps for its readers only.
 *
 * Kinds. Each field has a kind that decides its statistics:
 *   duration  a time; unit from the name's suffix (_ms, _s, _us, _ns)
 *   gauge     a level or a ratio (also *_per_s, *_rate)
 *   count     a number of things (requests, errors, tokens, ...): the
 *             only kind with a sum, and a per-second rate of the sum
 *   flag      true/false: how many were true and their share
 *   label     a category (an HTTP status, an error class): count per
 *             value, at most LLMB_AGG_LABELS_MAX values, the rest "other"
 * A field's kind is, first found: the job's override
 * (llmb_agg_set_kinds), the first "_kinds" declaration of a result that
 * names it ({"_kinds": {"latency_ms": "duration"}}), or inferred from the
 * name and the first value (llmb_agg_kind_infer). It is fixed when the
 * field gets its first sample.
 *
 * Histograms. An object in the form of <llmb/histogram.h> ({"hist":
 * "llmb-loglin-7", ...}) is not walked: it is merged into its path's
 * histogram, and that field's count, min, mean, sum, p50, p90, p99 and
 * max then come from the merged histogram, over every value of every
 * result (percentiles within 0.39 %, nearest rank), never a sample. A
 * malformed one, or one of another scale than the path's first, counts
 * as dropped. A path should hold histograms or numbers, not both.
 *
 * Percentiles interpolate linearly between the two nearest ranks, the
 * method NumPy uses by default: for n sorted samples x[0..n-1] and q in
 * [0, 1], h = (n - 1) * q and the value is x[floor(h)] + (h - floor(h)) *
 * (x[floor(h) + 1] - x[floor(h)]).
 *
 * Bounds. Count, min, mean, sum and max are always exact. Percentiles are
 * exact while a field holds at most max_samples samples; past that they
 * come from a uniform reservoir sample of max_samples of them. At most
 * max_fields distinct paths are kept; samples of further paths are
 * counted as dropped.
 *
 * Rounding. Every number of an aggregate, stored or printed, goes through
 * llmb_agg_round(): 3 decimals, or 6 significant digits when that keeps
 * more (111.111, 0.8, 0.000123457, 1234567.891).
 */
#ifndef LLMB_AGGREGATE_H
#define LLMB_AGGREGATE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* What a field measures (see above). */
enum llmb_agg_kind {
    LLMB_AGG_GAUGE,
    LLMB_AGG_DURATION,
    LLMB_AGG_COUNT,
    LLMB_AGG_FLAG,
    LLMB_AGG_LABEL
};

/* Version of the aggregate document: 2 added "kind" to every field and
 * kept "sum" and "per_s" for counts only (docs/coordinator.md). */
#define LLMB_AGG_VERSION 2
/* Distinct values kept per label field, and their length in bytes. */
#define LLMB_AGG_LABELS_MAX 32
#define LLMB_AGG_LABEL_LEN 64
/* Buffer size of llmb_agg_format(). */
#define LLMB_AGG_NUM_LEN 40

/* The summary of one field. */
struct llmb_agg_stats {
    enum llmb_agg_kind kind;
    uint64_t count; /* samples seen */
    double min, mean, max;
    double p50, p90, p99; /* NAN for flags and labels */
    double sum;     /* of every sample (compensated); flags: true ones */
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

/* Returns a new JSON object {"<path>": {"kind", ...}, ...} whose members
 * depend on the kind: "count" always; durations "unit" when the name has
 * one; durations, gauges and counts "min", "mean", "p50", "p90", "p99",
 * "max"; counts also "sum" and, when run_ms > 0, "per_s" (the sum per
 * second of run_ms); flags "true" and "mean" (their share); labels
 * "values" {"<value>": n} (most frequent first) and "other" when values
 * past LLMB_AGG_LABELS_MAX were seen. Numbers go through
 * llmb_agg_json_number(). The caller owns the reference. */
json_t *llmb_agg_fields_json(struct llmb_agg *agg, int64_t run_ms);

/* Returns llmb_agg_round(v) as a new JSON number: an integer when it is
 * whole and within +-2^53, else a real (dump it with
 * JSON_REAL_PRECISION(15) or more to keep the rounding). */
json_t *llmb_agg_json_number(double v);

/* v rounded to 3 decimals, or to 6 significant digits when that keeps
 * more; NaN, infinities and values too large to scale are returned as
 * they are. */
double llmb_agg_round(double v);

/* Writes llmb_agg_round(v) as short text ("12", "0.8", "1.5e-07") into
 * buf of LLMB_AGG_NUM_LEN bytes and returns buf. */
char *llmb_agg_format(double v, char *buf);

/* The name of kind ("duration", ...). */
const char *llmb_agg_kind_name(enum llmb_agg_kind kind);

/* Parses a kind name into *out. Returns 0, or LLMB_EINVAL. */
int llmb_agg_kind_parse(const char *name, enum llmb_agg_kind *out);

/* The kind of a field named path whose first value has JSON type type,
 * when nothing declared one: booleans are flags; then by the last name of
 * the path: *_per_s, *_rate are gauges; *_ms, *_s, *_us, *_ns (or ms, s,
 * us, ns) durations; status, code, *_status, *_code labels; requests,
 * errors, retries, failures, failed, ok, attempts, bytes, tokens, count,
 * total, dropped, or *_ of one of those (output_tokens), or any name under
 * a segment "errors" or "counts", counts; everything else is a gauge. */
enum llmb_agg_kind llmb_agg_kind_infer(const char *path, json_type type);

/* The unit of a duration named path: "ms", "s", "us", "ns", or NULL. */
const char *llmb_agg_unit(const char *path);

/* Sets the job's kinds, which win over declarations and inference:
 * kinds is an object {"<path>": "<kind name>"}. Entries that are not a
 * kind name are skipped; the first one gives a malloc'd *errstr and
 * LLMB_EINVAL (the valid ones are kept). Call before adding results. */
int llmb_agg_set_kinds(struct llmb_agg *agg, const json_t *kinds,
                       char **errstr);

/* An llm job's concurrency, asked against achieved (docs/llm.md, "Is the
 * client the bottleneck?"): *asked is the sum of its tasks'
 * summary.concurrency, *achieved the sum of their summary.inflight_s
 * (requests on the wire integrated over time) over the job's run_ms.
 * Returns 0 with both set, or -1 when the aggregate has not got them. */
int llmb_agg_concurrency(const json_t *agg, double *asked, double *achieved);

/* The line about it that llmb-push --wait and llmb show print: "16 asked,
 * 7.96 achieved (time-weighted over the run)", and when achieved is below
 * LLMB_AGG_CONCURRENCY_LOW of asked and the job's payload sets no rate
 * (under a rate, concurrency is a cap), a second line starting
 * "warning: ". Writes at most n bytes into buf and returns buf; "" when
 * llmb_agg_concurrency() has nothing. */
#define LLMB_AGG_CONCURRENCY_LOW 0.75
char *llmb_agg_concurrency_text(const json_t *agg, const json_t *payload,
                                char *buf, size_t n);

/* Most entries of a job's "_kinds". */
#define LLMB_AGG_KINDS_MAX LLMB_AGG_MAX_FIELDS_DEFAULT

/* The check every push path makes of a job payload's "_kinds" (absent or
 * null is fine): an object of at most LLMB_AGG_KINDS_MAX non-empty field
 * paths, each to a kind name. Returns 0, or LLMB_EINVAL with a malloc'd
 * *errstr for the user, the same words as lua/10-document.lua's:
 * `payload field "_kinds": "lat" must be one of duration, count, gauge,
 * flag, label, got "fast"`. */
int llmb_agg_kinds_check(const json_t *payload, char **errstr);

/* Groups. A result with a top-level string "_group" (the llm executor's
 * "<endpoint>/<model>" of an A/B job) is also added to the aggregate of
 * its group, at most LLMB_AGG_GROUPS_MAX groups of names of at most
 * LLMB_AGG_GROUP_LEN bytes (a result of a further group counts as
 * dropped). llmb_agg_by_json() gives them, in the order they came:
 * {"<group>": {"results": n, "fields": <as llmb_agg_fields_json()>}}, or
 * NULL when no result named a group. The job's kinds apply to every
 * group; per_s is over the group's measured window (its "measured_ms",
 * llmb_agg_window_ms()) when its results give one, else over the job's
 * run_ms, as the groups ran side by side. */
#define LLMB_AGG_GROUPS_MAX 64
#define LLMB_AGG_GROUP_LEN 512
json_t *llmb_agg_by_json(struct llmb_agg *agg, int64_t run_ms);

/* The measured window of the results added (llm tasks'
 * summary.window_start_ms and summary.window_end_ms, wall-clock ms): the
 * latest end minus the earliest start, or 0 when no result gave both.
 * llmb_agg_by_json() gives each group's as its "measured_ms" and takes it
 * for the group's per_s instead of run_ms. */
int64_t llmb_agg_window_ms(const struct llmb_agg *agg);

/* Time series. A result's top-level "_timeline" (an llm task's
 * throughput and concurrency over time, <llmb/series.h>) is merged into
 * its aggregate's and its group's: counts and concurrency added bucket by
 * bucket, on the widest width (at most LLMB_SERIES_MAX buckets).
 * llmb_agg_series_json() gives the series' JSON form plus "tasks" (the
 * series merged) and "refused" (those that were not a series or whose
 * width is no power-of-two multiple of the others', when any), or NULL
 * when no result had one; llmb_agg_by_json() gives each group's as its
 * "timeline". */
json_t *llmb_agg_series_json(const struct llmb_agg *agg);

/* Group `name` of an aggregate document's "by" section as an aggregate
 * document of its own ({"fields", "run_ms", "measured_ms", "timeline"}:
 * what llmb_agg_stat and the programs read), a new reference; NULL when
 * there is no such group. */
json_t *llmb_agg_group(const json_t *agg, const char *name);

/* Statistic `stat` ("p99", "per_s", "sum", ...) of field `path` of an
 * aggregate document (the JSON the coordinator stores on the job), or NAN
 * when the document has no such number. */
double llmb_agg_stat(const json_t *agg, const char *path, const char *stat);

#endif
