/*
 * Capped exponential backoff with "equal jitter", used for reconnects and
 * for task retries. The Lua retry in lua/00-header.lua uses the same
 * formula (there attempts count from 1, so Lua attempt k is attempt k-1 here).
 */
#ifndef LLMB_BACKOFF_H
#define LLMB_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

/* Delay before retry number `attempt` (0 for the first retry), in ms:
 *   d = min(cap_ms, base_ms * 2^attempt)      (no overflow for any attempt)
 *   return d/2 + (int64_t)(r * d / 2)         (d/2 in integers, r*d/2 in double)
 * so the result lies in [d/2, d) (0 when d is 1). r is a uniform random number in [0, 1)
 * chosen by the caller (clamped into that range). base_ms <= 0 or
 * cap_ms <= 0 gives 0. */
int64_t llmb_backoff_ms(unsigned attempt, int64_t base_ms, int64_t cap_ms,
                        double r);

/*
 * The reconnect policy of every connection (lib/aconn.c, the coordinator):
 * after each failure wait llmb_backoff_ms(attempt, base, cap) with a fresh
 * random factor from a generator seeded per process and per policy, so a
 * fleet that lost Redis at the same moment comes back spread out. The
 * owner resets it once a connection is (or has stayed) good. Embedded:
 * llmb_reconnect_init(), no _fini.
 */
struct llmb_reconnect {
    int64_t base_ms, cap_ms;
    unsigned attempt;       /* failures since the last reset */
    int64_t next_mono_ms;   /* no try before this (llmb_mono_ms clock) */
    unsigned short seed[3]; /* erand48 state */
};

/* base_ms / cap_ms <= 0 take the defaults, 100 and 5000 ms. */
void llmb_reconnect_init(struct llmb_reconnect *rc, int64_t base_ms,
                         int64_t cap_ms);

/* Counts a failure; returns the delay before the next try, also kept as
 * next_mono_ms. */
int64_t llmb_reconnect_failed(struct llmb_reconnect *rc);

/* True when the next try may start. */
bool llmb_reconnect_due(const struct llmb_reconnect *rc);

/* Starts the count over (the next failure waits about base_ms). */
void llmb_reconnect_reset(struct llmb_reconnect *rc);

#endif
