/*
 * Which job types live workers serve on a queue: the hash <base>:types
 * (docs/data-model.md), one field per job type a worker of the queue has
 * a handler for ("*" for its catch-all handler), its value the wall-clock
 * ms (the writing worker's clock) until which that advert holds. Every
 * worker rewrites its types at each heartbeat; a field whose time has
 * passed is a type no live worker has served since then. Read here once for every program that
 * asks: the worker (before it fails a task for "no handler"), the
 * coordinator's health, llmb-push's warning and `llmb stats`.
 */
#ifndef LLMB_SERVED_H
#define LLMB_SERVED_H

#include <stdbool.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include <llmb/util.h>

/* Suffix of the hash under the queue base: <base>:types. */
#define LLMB_SERVED_SUFFIX "types"

/* What one read of <base>:types says at a given time. */
struct llmb_served {
    struct llmb_strlist live;  /* types advertised until after now */
    struct llmb_strlist stale; /* types whose advert ended more than
                                  forget_ms ago: safe to delete */
    bool wildcard;             /* "*" is live: every type is served */
};

/*
 * Reads an HGETALL reply of <base>:types at time now_ms into *s (zeroed
 * first; free it with llmb_served_fini). Fields whose value is not a whole
 * number count as ended long ago. Returns 0, or LLMB_EPROTO when r is not
 * an array of pairs (an error reply, a key of another type).
 */
int llmb_served_parse(const redisReply *r, int64_t now_ms, int64_t forget_ms,
                      struct llmb_served *s);

/* True when some live worker serves the queue at all. */
bool llmb_served_any(const struct llmb_served *s);

/* True when a live worker has a handler for type (or a catch-all). */
bool llmb_served_type(const struct llmb_served *s, const char *type);

void llmb_served_fini(struct llmb_served *s);

#endif
