/*
 * The client's own health over one llm task, so that a result says when
 * the numbers may be the client's rather than the server's (docs/llm.md,
 * "Is the client the bottleneck?"). Three signals:
 *
 * - requests on the wire: from the moment a request is written on its
 *   socket (llm_request.c) to its end; the time-weighted mean is the
 *   achieved concurrency, the peak is compared with what was asked;
 * - event-loop lag: a probe timer due every LLMB_LLM_PROBE_MS, and how
 *   late it fires. Every response byte is stamped when the loop gets to
 *   it, so a lag of X ms can add up to X ms to TTFT and ITL;
 * - CPU: getrusage(RUSAGE_SELF) over the task, the whole worker process
 *   (its other tasks too), as a share of one core.
 *
 * The run (llm_run.c) embeds one, reports sends and ends to it and adds
 * its figures and warnings to the result (llm_record.c).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "llm.h"

#define MAX_LAG_SAMPLES 65536 /* 11 minutes of probes, then a reservoir */

static double cpu_now_ms(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

/* Adds the time since the last change, weighted by the requests then on
 * the wire. */
static void mark(struct llmb_llm_client *c, int64_t now)
{
    if (now > c->mark_us) {
        c->wire_us += (double)c->on_wire * (double)(now - c->mark_us);
        llmb_llm_timeline_busy(&c->tl, c->mark_us, now, c->on_wire);
    }
    c->mark_us = now;
}

static uint64_t next_rng(struct llmb_llm_client *c)
{
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 2685821657736338717ULL;
}

static void probe_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct llmb_llm_client *c = w->data;
    int64_t now = llmb_mono_us();
    int64_t lag = now > c->probe_due_us ? now - c->probe_due_us : 0;
    uint32_t v = lag > UINT32_MAX ? UINT32_MAX : (uint32_t)lag;

    (void)revents;
    c->probes++;
    if (c->nlag < MAX_LAG_SAMPLES) {
        c->lag_us[c->nlag++] = v;
    } else {
        uint64_t j = next_rng(c) % c->probes;
        if (j < MAX_LAG_SAMPLES)
            c->lag_us[j] = v;
    }
    /* libev counts from the time its loop pass began; bring it to now so
     * that the next due time is exactly a period away. */
    ev_now_update(loop);
    c->probe_due_us = llmb_mono_us() + LLMB_LLM_PROBE_MS * 1000;
    ev_timer_set(w, LLMB_LLM_PROBE_MS / 1000.0, 0.0);
    ev_timer_start(loop, w);
}

void llmb_llm_client_start(struct llmb_llm_client *c, struct ev_loop *loop)
{
    memset(c, 0, sizeof(*c));
    c->loop = loop;
    c->lag_us = llmb_xcalloc(MAX_LAG_SAMPLES, sizeof(*c->lag_us));
    c->start_us = c->mark_us = llmb_mono_us();
    llmb_llm_timeline_start(&c->tl);
    c->rng = (uint64_t)c->start_us | 1;
    c->cpu0_ms = cpu_now_ms();
    ev_timer_init(&c->probe, probe_cb, LLMB_LLM_PROBE_MS / 1000.0, 0.0);
    c->probe.data = c;
    c->probe_due_us = c->start_us + LLMB_LLM_PROBE_MS * 1000;
    ev_timer_start(loop, &c->probe);
}

void llmb_llm_client_sent(struct llmb_llm_client *c, int64_t now)
{
    mark(c, now);
    c->on_wire++;
    if (c->on_wire > c->peak)
        c->peak = c->on_wire;
}

void llmb_llm_client_ended(struct llmb_llm_client *c, int64_t now)
{
    mark(c, now);
    if (c->on_wire > 0)
        c->on_wire--;
}

void llmb_llm_client_stop(struct llmb_llm_client *c)
{
    if (c->stopped || c->loop == NULL)
        return;
    c->stopped = true;
    ev_timer_stop(c->loop, &c->probe);
    c->stop_us = llmb_mono_us();
    mark(c, c->stop_us);
    c->cpu_ms = cpu_now_ms() - c->cpu0_ms;
}

void llmb_llm_client_fini(struct llmb_llm_client *c)
{
    llmb_llm_client_stop(c);
    llmb_llm_timeline_fini(&c->tl);
    free(c->lag_us);
    c->lag_us = NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* The p-quantile of the lag samples in ms (nearest rank), 0 without. */
static double lag_ms(const struct llmb_llm_client *c, double p)
{
    uint32_t *v;
    size_t k;
    double r;

    if (c->nlag == 0)
        return 0;
    v = llmb_xmalloc(c->nlag * sizeof(*v));
    memcpy(v, c->lag_us, c->nlag * sizeof(*v));
    qsort(v, c->nlag, sizeof(*v), cmp_u32);
    k = (size_t)(p * (double)c->nlag);
    if (k >= c->nlag)
        k = c->nlag - 1;
    r = v[k] / 1000.0;
    free(v);
    return r;
}

static json_t *num(double v)
{
    return json_real((double)(long long)(v * 1000.0 + (v < 0 ? -0.5 : 0.5)) /
                     1000.0);
}

void llmb_llm_client_json(const struct llmb_llm_client *c,
                          const struct llmb_llm_spec *spec,
                          json_t *summary, json_t *warnings)
{
    double wall_us = (double)(c->stop_us - c->start_us);
    double achieved = wall_us > 0 ? c->wire_us / wall_us : 0;
    double cpu_pct = wall_us > 0 ? c->cpu_ms * 1000.0 * 100.0 / wall_us : 0;
    double p99 = lag_ms(c, 0.99);
    long want = spec->concurrency < spec->requests ? spec->concurrency :
                spec->requests;

    json_object_set_new(summary, "concurrency",
                        json_integer(spec->concurrency));
    json_object_set_new(summary, "achieved_concurrency", num(achieved));
    json_object_set_new(summary, "peak_concurrency", json_integer(c->peak));
    json_object_set_new(summary, "inflight_s", num(c->wire_us / 1e6));
    json_object_set_new(summary, "loop_lag_p50_ms", num(lag_ms(c, 0.5)));
    json_object_set_new(summary, "loop_lag_p99_ms", num(p99));
    json_object_set_new(summary, "worker_cpu_ms", num(c->cpu_ms));
    json_object_set_new(summary, "worker_cpu_pct", num(cpu_pct));
    if (p99 > LLMB_LLM_LAG_WARN_MS)
        json_array_append_new(warnings, json_sprintf(
            "client may be the bottleneck: event-loop lag p99 %.1f ms "
            "(over %.0f ms), so response times may read up to that much "
            "high; use more workers or fewer streams per worker",
            p99, LLMB_LLM_LAG_WARN_MS));
    if (cpu_pct > LLMB_LLM_CPU_WARN_PCT)
        json_array_append_new(warnings, json_sprintf(
            "client may be the bottleneck: the worker used %.0f%% of a CPU "
            "(over %.0f%%); use more workers or fewer streams per worker",
            cpu_pct, LLMB_LLM_CPU_WARN_PCT));
    if (spec->rate <= 0 && want > 0 &&
        (double)c->peak < LLMB_LLM_WIRE_WARN * (double)want)
        json_array_append_new(warnings, json_sprintf(
            "client may be the bottleneck: at most %ld requests were on the "
            "wire at once, of the %ld asked (mean %.1f)", c->peak, want,
            achieved));
}
