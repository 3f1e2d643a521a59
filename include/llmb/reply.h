/*
 * Reading numbers out of Redis replies, the same way in every program:
 * Redis answers a counter as an integer, stores every hash field as a
 * string, and TIME answers two strings (seconds, microseconds).
 */
#ifndef LLMB_REPLY_H
#define LLMB_REPLY_H

#include <stdbool.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

/* The integer of an integer reply, or of a string or status reply that
 * holds all of one (no spaces, no trailing text), into *out. Returns
 * false, leaving *out alone, for anything else: NULL, nil, an error, an
 * array, a number out of range. */
bool llmb_reply_ll(const redisReply *r, long long *out);

/* The integer of r as llmb_reply_ll() reads it, or def when r holds
 * none. */
long long llmb_reply_ll_or(const redisReply *r, long long def);

/* The Redis time of a TIME reply in milliseconds since the epoch, into
 * *ms. Returns false, leaving *ms alone, unless r is an array of two
 * integers (seconds, and microseconds from 0 to 999999) that
 * llmb_reply_ll() reads. */
bool llmb_reply_time_ms(const redisReply *r, int64_t *ms);

/* True when r is an error reply of a server that cannot serve the command
 * yet but will (LOADING, BUSY, MASTERDOWN, TRYAGAIN, CLUSTERDOWN): ask
 * again later. False for NULL, any other reply and any other error. */
bool llmb_reply_not_yet(const redisReply *r);

/* True when r is a cluster's error reply saying that the command was not
 * run where it was sent but may be elsewhere or later: its slot moved or
 * is moving, or has no owner (MOVED, ASK, TRYAGAIN, CLUSTERDOWN). False
 * for NULL, any other reply and any other error. */
bool llmb_reply_redirected(const redisReply *r);

/* True when err, the text of an error reply to a write, says that Redis
 * did not run it for now, or ran a function only halfway, and that the
 * same call may succeed later: llmb_reply_not_yet()'s errors, a replica
 * or a server refusing writes (READONLY, MISCONF, NOREPLICAS), out of
 * memory (OOM), or a redirect (MOVED, ASK). Such a call is not confirmed
 * and is sent again; any other error would fail the same way again.
 * False for NULL. */
bool llmb_reply_refused_for_now(const char *err);

#endif
