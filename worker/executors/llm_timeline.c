/*
 * An llm task's throughput and concurrency over time (see
 * llm_timeline.h). Times come on the monotonic clock, like every other
 * measurement of the executor, and go into the series on the wall clock
 * through the pair of readings taken at the start: bucket edges are then
 * the same on every worker (as far as their clocks agree), so the
 * coordinator adds the tasks' buckets.
 *
 * Tokens are counted when their chunk came, not when the request ended:
 * a request's chunk times are its send time (end - e2e) plus its TTFT,
 * then each gap in turn, exactly what the record measured. How many
 * tokens a chunk carried is not known per chunk (usage comes at the end),
 * so the request's output tokens are spread evenly over its chunks, the
 * remainder going to the later ones: the series' sum stays the sum of the
 * records' output tokens, the same total the summary gives.
 */
#include <time.h>

#include "llm.h"
#include "llm_timeline.h"

static int64_t wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void llmb_llm_timeline_start(struct llmb_llm_timeline *tl)
{
    llmb_series_init(&tl->s, LLMB_SERIES_WIDTH_MS, LLMB_SERIES_MAX);
    tl->mono0_us = llmb_mono_us();
    tl->wall0_us = wall_us();
}

void llmb_llm_timeline_fini(struct llmb_llm_timeline *tl)
{
    llmb_series_fini(&tl->s);
}

/* Monotonic us t as wall-clock ms. */
static double wall_ms(const struct llmb_llm_timeline *tl, int64_t t)
{
    return (double)(tl->wall0_us + (t - tl->mono0_us)) / 1000.0;
}

static int64_t wall_ms_floor(const struct llmb_llm_timeline *tl, int64_t t)
{
    int64_t us = tl->wall0_us + (t - tl->mono0_us);

    return us >= 0 ? us / 1000 : -((999 - us) / 1000);
}

void llmb_llm_timeline_busy(struct llmb_llm_timeline *tl, int64_t from_us,
                            int64_t to_us, long level)
{
    if (tl->s.max == 0 || level <= 0 || to_us <= from_us)
        return;
    llmb_series_busy(&tl->s, wall_ms(tl, from_us), wall_ms(tl, to_us),
                     (double)level);
}

void llmb_llm_timeline_end(struct llmb_llm_timeline *tl,
                           const struct llmb_llm_record *rec, int64_t end_us)
{
    int64_t t, sent;
    long total;
    size_t chunks;

    if (tl->s.max == 0)
        return;
    llmb_series_count(&tl->s, wall_ms_floor(tl, end_us), 1, 0);
    if (rec->cls != LLMB_LLM_OK || rec->output_tokens <= 0)
        return;
    total = rec->output_tokens;
    if (rec->ttft_ms < 0 || rec->e2e_ms < 0) {
        llmb_series_count(&tl->s, wall_ms_floor(tl, end_us), 0, total);
        return;
    }
    sent = end_us - (int64_t)(rec->e2e_ms * 1000.0 + 0.5);
    t = sent + (int64_t)(rec->ttft_ms * 1000.0 + 0.5);
    chunks = rec->ngaps + 1;
    for (size_t k = 0; k < chunks; k++) {
        /* chunk k gets floor((k+1) T / N) - floor(k T / N) tokens */
        long long a = (long long)((unsigned long long)total * k / chunks);
        long long b = (long long)((unsigned long long)total * (k + 1) /
                                  chunks);
        if (k > 0)
            t += rec->gaps_us[k - 1];
        if (b > a)
            llmb_series_count(&tl->s, wall_ms_floor(tl, t < end_us ? t :
                                                    end_us), 0, b - a);
    }
}

json_t *llmb_llm_timeline_json(const struct llmb_llm_timeline *tl)
{
    return llmb_series_json(&tl->s);
}
