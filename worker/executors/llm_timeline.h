/*
 * One llm task's throughput and concurrency over its measured window
 * (llm_timeline.c): a bounded wall-clock series (<llmb/series.h>) of the
 * requests that ended, the output tokens received and the requests on the
 * wire. The client (llm_client.c) embeds one from the measured start and
 * feeds it the requests on the wire; each request's end (llm_run.c)
 * adds the request and its tokens; the result carries it as "_timeline"
 * (llm_record.c), which the coordinator merges per job.
 */
#ifndef LLMB_WORKER_LLM_TIMELINE_H
#define LLMB_WORKER_LLM_TIMELINE_H

#include <stdint.h>

#include <jansson.h>

#include <llmb/series.h>

struct llmb_llm_record;

/* Embedded; llmb_llm_timeline_start() / llmb_llm_timeline_fini(). */
struct llmb_llm_timeline {
    struct llmb_series s;
    int64_t wall0_us; /* the wall clock at the start, in us */
    int64_t mono0_us; /* the same moment on llmb_mono_us()'s clock */
};

/* Starts an empty series now: 1 s buckets, at most LLMB_SERIES_MAX. */
void llmb_llm_timeline_start(struct llmb_llm_timeline *tl);
/* Frees it; accepts a zeroed struct. */
void llmb_llm_timeline_fini(struct llmb_llm_timeline *tl);

/* level requests were on the wire from from_us to to_us (monotonic). */
void llmb_llm_timeline_busy(struct llmb_llm_timeline *tl, int64_t from_us,
                            int64_t to_us, long level);

/* A request ended at end_us (monotonic) with rec: counted at end_us, and
 * when it succeeded its output tokens at the times its content chunks
 * came (rec's TTFT and gaps; all at end_us when not streamed), spread
 * evenly over the chunks so that they add up to rec->output_tokens. */
void llmb_llm_timeline_end(struct llmb_llm_timeline *tl,
                           const struct llmb_llm_record *rec, int64_t end_us);

/* The series' JSON form (a new reference). */
json_t *llmb_llm_timeline_json(const struct llmb_llm_timeline *tl);

#endif
