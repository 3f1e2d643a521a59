/*
 * Backoff delays. Reconnect loops of the worker and the coordinator call
 * llmb_backoff_ms() with a fresh random r each time, so a fleet that lost
 * Redis at the same moment does not come back in lockstep.
 */
#include <llmb/backoff.h>

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
