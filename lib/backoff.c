/*
 * Backoff delays, and the reconnect policy built on them: the async
 * connection and the coordinator ask struct llmb_reconnect for each wait,
 * with a fresh random r each time, so a fleet that lost Redis at the same
 * moment does not come back in lockstep.
 */
#include <stdlib.h>
#include <unistd.h>

#include <llmb/backoff.h>
#include <llmb/util.h>

#define RECONNECT_BASE_MS 100
#define RECONNECT_CAP_MS 5000

int64_t llmb_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms,
                        double r)
{
    int64_t d;

    if (base_ms <= 0 || cap_ms <= 0)
        return 0;
    /* base * 2^attempt > cap exactly when base > cap >> attempt; shifting
     * cap (not base) never overflows. */
    if (attempt >= 62 || base_ms > (cap_ms >> attempt))
        d = cap_ms;
    else
        d = base_ms << attempt;
    if (d > cap_ms)
        d = cap_ms;

    if (!(r >= 0.0)) /* also catches NaN */
        r = 0.0;
    if (r >= 1.0)
        r = 1.0 - 1e-12;
    return d / 2 + (int64_t)(r * (double)d / 2.0);
}

void llmb_reconnect_init(struct llmb_reconnect *rc, int64_t base_ms,
                         int64_t cap_ms)
{
    uint64_t mix = (uint64_t)llmb_now_ms() * 1000003u ^
                   (uint64_t)getpid() << 20 ^ (uint64_t)(uintptr_t)rc;

    rc->base_ms = base_ms > 0 ? base_ms : RECONNECT_BASE_MS;
    rc->cap_ms = cap_ms > 0 ? cap_ms : RECONNECT_CAP_MS;
    rc->attempt = 0;
    rc->next_mono_ms = 0;
    rc->seed[0] = (unsigned short)(mix & 0xffff);
    rc->seed[1] = (unsigned short)(mix >> 16 & 0xffff);
    rc->seed[2] = (unsigned short)(mix >> 32 & 0xffff);
}

int64_t llmb_reconnect_failed(struct llmb_reconnect *rc)
{
    int64_t d = llmb_backoff_ms(rc->attempt, rc->base_ms, rc->cap_ms,
                                erand48(rc->seed));

    if (rc->attempt < 64)
        rc->attempt++;
    rc->next_mono_ms = llmb_mono_ms() + d;
    return d;
}

bool llmb_reconnect_due(const struct llmb_reconnect *rc)
{
    return llmb_mono_ms() >= rc->next_mono_ms;
}

void llmb_reconnect_reset(struct llmb_reconnect *rc)
{
    rc->attempt = 0;
    rc->next_mono_ms = 0;
}
