/*
 * The reply of FCALL_RO llmb_stats (lua/80-stats.lua): field/value pairs
 * that sum up one queue. Read here once for every program that shows them:
 * the coordinator's metrics and health, and the admin CLI's `stats` and
 * `queues`.
 */
#ifndef LLMB_STATS_H
#define LLMB_STATS_H

#include <hiredis/hiredis.h>

/* One queue's numbers. Fields missing from the reply (an older library)
 * read 0. */
struct llmb_queue_stats {
    long long pending, delayed, running;  /* tasks now */
    long long jobs, dead, to_aggregate;   /* jobs now */
    long long head_age_ms;                /* 0 when nothing is pending */
    long long now_ms;                     /* Redis time of the reply */
    long long tasks_ok, tasks_failed, tasks_cancelled; /* ever ended */
    long long junk;  /* junk members the functions met and skipped, ever */
    long long paused; /* 1 while the queue is paused (llmb_pause) */
};

/*
 * Reads a reply of llmb_stats into *st (zeroed first). Returns 0 when the
 * numbers can be trusted. Otherwise a malloc'd message for people in
 * *errstr, and: LLMB_EREDIS when the reply is an error ("llmb_stats
 * failed: ...") or names keys of the wrong type (wrong_keys: llmb_stats
 * counted them as empty; *st is filled all the same); LLMB_EPROTO when the
 * reply has another shape than field/value pairs with the integer fields
 * pending, delayed and running.
 */
int llmb_queue_stats_parse(const redisReply *r, struct llmb_queue_stats *st,
                           char **errstr);

#endif
