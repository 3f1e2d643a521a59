/*
 * Bounded time series on wall-clock buckets, mergeable across processes:
 * what an llm task measured over its window (requests ended, output
 * tokens received and the time-weighted requests in flight, per bucket),
 * and the coordinator's merge of them into a job's series
 * (lib/aggregate.c; docs/llm.md, "Throughput and concurrency over time").
 *
 * Buckets. Bucket i covers [start_ms + i * width_ms, start_ms + (i + 1) *
 * width_ms) of the wall clock in ms since the epoch, and start_ms is a
 * multiple of width_ms: buckets of equal width made by different workers
 * have the same edges, so their counts add. A series holds at most max
 * buckets; when a time outside them would need more, the width doubles
 * (pairs of buckets merge into one) until the range fits. Counts stay
 * exact through any doubling and merge; only the time resolution drops.
 *
 * Concurrency is kept as its integral (requests in flight times ms) per
 * bucket, so that doubling and merging add it; the JSON gives the mean
 * over the whole bucket, integral / width_ms.
 *
 * JSON: {"start_ms": S, "width_ms": W, "requests": [n...],
 * "output_tokens": [n...], "concurrency": [mean...]}, three arrays of the
 * same length (0 for an empty series).
 */
#ifndef LLMB_SERIES_H
#define LLMB_SERIES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define LLMB_SERIES_WIDTH_MS 1000 /* the starting bucket width */
#define LLMB_SERIES_MAX 3600      /* buckets at most: an hour of seconds */
#define LLMB_SERIES_WIDTH_MAX (INT64_C(1) << 40) /* ms, about 35 years */
/* The latest start of a bucket, ms (the year 37648). With at most
 * LLMB_SERIES_MAX buckets, merged series then never need a width past
 * LLMB_SERIES_WIDTH_MAX. */
#define LLMB_SERIES_START_MAX (INT64_C(1) << 50)
/* A bucket's counts and mean concurrency stop here (2^53, the largest
 * integer a JSON double keeps exact): merging many results cannot
 * overflow, and the JSON form always reads back. */
#define LLMB_SERIES_COUNT_MAX (INT64_C(1) << 53)

/* Embedded; llmb_series_init() / llmb_series_fini(). Slots n..cap-1 of
 * the arrays are always zero. */
struct llmb_series {
    int64_t start_ms;   /* bucket 0's start, a multiple of width_ms */
    int64_t width_ms;
    size_t n, cap, max; /* buckets used, allocated, allowed */
    int64_t *requests;  /* requests ended in the bucket */
    int64_t *tokens;    /* output tokens received in the bucket */
    double *busy;       /* integral of requests in flight, in ms */
};

/* An empty series of buckets width_ms wide (1..LLMB_SERIES_WIDTH_MAX) and
 * at most max (>= 1) of them. */
void llmb_series_init(struct llmb_series *s, int64_t width_ms, size_t max);
/* Frees the arrays; s is left empty. */
void llmb_series_fini(struct llmb_series *s);

/* Adds requests and tokens (>= 0) to the bucket of wall-clock time
 * at_ms. */
void llmb_series_count(struct llmb_series *s, int64_t at_ms,
                       int64_t requests, int64_t tokens);

/* Adds level requests in flight from from_ms to to_ms (wall clock,
 * fractions of ms allowed) to the buckets they overlap. */
void llmb_series_busy(struct llmb_series *s, double from_ms, double to_ms,
                      double level);

/* Adds every bucket of o to s, s's width first doubled to o's when o's is
 * wider (and again when the range needs it). Returns 0, or LLMB_EINVAL
 * (s unchanged) when one width is not a power-of-two multiple of the
 * other. */
int llmb_series_merge(struct llmb_series *s, const struct llmb_series *o);

/* The JSON form above (a new reference). */
json_t *llmb_series_json(const struct llmb_series *s);

/* Reads the JSON form into s (initialised here, with at most max
 * buckets). Returns 0, or LLMB_EINVAL with *errstr (caller frees) saying
 * what is wrong; s is then empty. */
int llmb_series_from_json(struct llmb_series *s, const json_t *v, size_t max,
                          char **errstr);

#endif
