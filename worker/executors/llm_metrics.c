/*
 * The llm task's metrics as vLLM's `bench serve` and genai-perf define
 * them (docs/llm.md, "Metrics"), over every successful request of the
 * task, never a sample: one mergeable histogram per metric
 * (<llmb/histogram.h>, percentiles within 0.39 %), which the task result
 * carries under "metrics" and the coordinator merges over the job's tasks.
 *
 *   ttft_ms        send to the first content chunk, per request
 *   ttfb_ms        send to the first byte of the streamed body
 *   itl_ms         every gap between consecutive content chunks of every
 *                  request, pooled (vLLM's ITL)
 *   tpot_ms        (e2e - ttft) / (output_tokens - 1), per request
 *                  (vLLM's TPOT, genai-perf's inter_token_latency)
 *   e2e_ms         send to the end of the response, per request
 *   queued_ms      with a rate: arrival to a free slot
 *   output_tokens, input_tokens   per request
 *
 * Times are recorded in ns ticks (scale 10^6 per ms), token counts as
 * they are. The run adds each record as it ends (llm_record.c), so the
 * histograms cost memory by range, not by request count: about 20-30 KB
 * per latency metric, a few KB per token count.
 */
#include <string.h>

#include "llm.h"

#define NS_PER_MS 1000000u

bool llmb_llm_slo_set(const struct llmb_llm_slo *slo)
{
    return slo->ttft_ms > 0 || slo->tpot_ms > 0 || slo->e2e_ms > 0;
}

void llmb_llm_metrics_init(struct llmb_llm_metrics *m,
                           const struct llmb_llm_slo *slo)
{
    memset(m, 0, sizeof(*m));
    llmb_hist_init(&m->ttft, NS_PER_MS);
    llmb_hist_init(&m->ttfb, NS_PER_MS);
    llmb_hist_init(&m->itl, NS_PER_MS);
    llmb_hist_init(&m->tpot, NS_PER_MS);
    llmb_hist_init(&m->e2e, NS_PER_MS);
    llmb_hist_init(&m->queued, NS_PER_MS);
    llmb_hist_init(&m->output_tokens, 1);
    llmb_hist_init(&m->input_tokens, 1);
    if (slo != NULL)
        m->slo = *slo;
}

void llmb_llm_metrics_fini(struct llmb_llm_metrics *m)
{
    llmb_hist_fini(&m->ttft);
    llmb_hist_fini(&m->ttfb);
    llmb_hist_fini(&m->itl);
    llmb_hist_fini(&m->tpot);
    llmb_hist_fini(&m->e2e);
    llmb_hist_fini(&m->queued);
    llmb_hist_fini(&m->output_tokens);
    llmb_hist_fini(&m->input_tokens);
}

bool llmb_llm_slo_met(const struct llmb_llm_slo *slo,
                      const struct llmb_llm_record *rec)
{
    if (rec->cls != LLMB_LLM_OK)
        return false;
    if (slo->ttft_ms > 0 && !(rec->ttft_ms >= 0 &&
                              rec->ttft_ms <= slo->ttft_ms))
        return false;
    if (slo->tpot_ms > 0 && rec->output_tokens > 1 &&
        !(rec->tpot_ms >= 0 && rec->tpot_ms <= slo->tpot_ms))
        return false;
    if (slo->e2e_ms > 0 && !(rec->e2e_ms <= slo->e2e_ms))
        return false;
    return true;
}

void llmb_llm_metrics_add(struct llmb_llm_metrics *m,
                          const struct llmb_llm_record *rec)
{
    if (rec->cls != LLMB_LLM_OK)
        return;
    if (rec->ttft_ms >= 0)
        llmb_hist_record(&m->ttft, rec->ttft_ms, 1);
    if (rec->ttfb_ms >= 0)
        llmb_hist_record(&m->ttfb, rec->ttfb_ms, 1);
    if (rec->tpot_ms >= 0)
        llmb_hist_record(&m->tpot, rec->tpot_ms, 1);
    llmb_hist_record(&m->e2e, rec->e2e_ms, 1);
    if (rec->queued_ms >= 0)
        llmb_hist_record(&m->queued, rec->queued_ms, 1);
    llmb_hist_record(&m->output_tokens, (double)rec->output_tokens, 1);
    llmb_hist_record(&m->input_tokens, (double)rec->input_tokens, 1);
    for (size_t i = 0; i < rec->ngaps; i++)
        llmb_hist_record_ticks(&m->itl, (uint64_t)rec->gaps_us[i] * 1000u,
                               1);
    if (llmb_llm_slo_set(&m->slo) && llmb_llm_slo_met(&m->slo, rec))
        m->good++;
}

static void put(json_t *o, const char *name, const struct llmb_hist *h)
{
    if (h->count > 0)
        json_object_set_new(o, name, llmb_hist_json(h));
}

json_t *llmb_llm_metrics_json(const struct llmb_llm_metrics *m)
{
    json_t *o = json_object();

    put(o, "ttft_ms", &m->ttft);
    put(o, "ttfb_ms", &m->ttfb);
    put(o, "itl_ms", &m->itl);
    put(o, "tpot_ms", &m->tpot);
    put(o, "e2e_ms", &m->e2e);
    put(o, "queued_ms", &m->queued);
    put(o, "output_tokens", &m->output_tokens);
    put(o, "input_tokens", &m->input_tokens);
    return o;
}
