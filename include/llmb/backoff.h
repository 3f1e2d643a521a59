/*
 * Capped exponential backoff with "equal jitter", used for reconnects and
 * for task retries. The Lua retry in lua/00-header.lua uses the same
 * formula (there attempts count from 1, so Lua attempt k is attempt k-1 here).
 */
#ifndef LLMB_BACKOFF_H
#define LLMB_BACKOFF_H

#include <stdint.h>

/* Delay before retry number `attempt` (0 for the first retry), in ms:
 *   d = min(cap_ms, base_ms * 2^attempt)      (no overflow for any attempt)
 *   return d/2 + (int64_t)(r * d / 2)         (d/2 in integers, r*d/2 in double)
 * so the result lies in [d/2, d) (0 when d is 1). r is a uniform random number in [0, 1)
 * chosen by the caller (clamped into that range). base_ms <= 0 or
 * cap_ms <= 0 gives 0. */
int64_t llmb_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms,
                        double r);

#endif
