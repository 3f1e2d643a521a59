/*
 * Parsing the reply of llmb_stats (include/llmb/stats.h). The function
 * answers flat pairs, `pending 3 delayed 0 ... wrong_keys ""`; fields this
 * parser does not know are skipped, so a newer library's reply still
 * reads.
 */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/reply.h>
#include <llmb/stats.h>
#include <llmb/util.h>

/* The integer fields, and where they go. */
static const struct {
    const char *name;
    size_t offset;
    int required;
} fields[] = {
    {"pending", offsetof(struct llmb_queue_stats, pending), 1},
    {"delayed", offsetof(struct llmb_queue_stats, delayed), 1},
    {"running", offsetof(struct llmb_queue_stats, running), 1},
    {"jobs", offsetof(struct llmb_queue_stats, jobs), 0},
    {"dead", offsetof(struct llmb_queue_stats, dead), 0},
    {"to_aggregate", offsetof(struct llmb_queue_stats, to_aggregate), 0},
    {"head_age_ms", offsetof(struct llmb_queue_stats, head_age_ms), 0},
    {"now_ms", offsetof(struct llmb_queue_stats, now_ms), 0},
    {"tasks_ok", offsetof(struct llmb_queue_stats, tasks_ok), 0},
    {"tasks_failed", offsetof(struct llmb_queue_stats, tasks_failed), 0},
    {"tasks_cancelled", offsetof(struct llmb_queue_stats, tasks_cancelled),
     0},
    {"junk", offsetof(struct llmb_queue_stats, junk), 0},
    {"paused", offsetof(struct llmb_queue_stats, paused), 0},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static const char *type_name(int type)
{
    switch (type) {
    case REDIS_REPLY_STRING: return "a string";
    case REDIS_REPLY_ARRAY: return "an array";
    case REDIS_REPLY_INTEGER: return "an integer";
    case REDIS_REPLY_NIL: return "nil";
    case REDIS_REPLY_STATUS: return "a status";
    case REDIS_REPLY_ERROR: return "an error";
    default: return "a reply of an unknown type";
    }
}

/* wrong_keys ("k1 k2 k1": llmb_stats names a key once per command that
 * met it) with each key once, for the message. The caller frees it. */
static char *keys_unique(const char *wrong)
{
    struct llmb_strlist keys = {0};
    struct llmb_buf b;

    llmb_strlist_split(&keys, wrong, ' ');
    llmb_buf_init(&b);
    for (size_t i = 0; i < keys.n; i++) {
        bool dup = keys.v[i][0] == '\0';
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(keys.v[i], keys.v[j]) == 0;
        if (!dup)
            llmb_buf_appendf(&b, "%s%s", b.len > 0 ? " " : "", keys.v[i]);
    }
    llmb_strlist_clear(&keys);
    return llmb_buf_steal(&b);
}

int llmb_queue_stats_parse(const redisReply *r, struct llmb_queue_stats *st,
                           char **errstr)
{
    int seen[NFIELDS] = {0};
    const char *wrong = NULL;

    memset(st, 0, sizeof(*st));
    if (r->type == REDIS_REPLY_ERROR) {
        *errstr = llmb_xasprintf("llmb_stats failed: %s",
                                 strncmp(r->str, "ERR ", 4) == 0 ? r->str + 4
                                                                 : r->str);
        return LLMB_EREDIS;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        *errstr = llmb_xasprintf("llmb_stats answered %s, not field/value "
                                 "pairs", type_name(r->type));
        return LLMB_EPROTO;
    }
    if (r->elements % 2 != 0) {
        *errstr = llmb_xasprintf("llmb_stats answered an odd number of "
                                 "elements (%zu), not field/value pairs",
                                 r->elements);
        return LLMB_EPROTO;
    }
    for (size_t i = 0; i < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        size_t f;

        if (k->type != REDIS_REPLY_STRING) {
            *errstr = llmb_xasprintf("llmb_stats answered %s where field "
                                     "name %zu belongs", type_name(k->type),
                                     i / 2 + 1);
            return LLMB_EPROTO;
        }
        if (strcmp(k->str, "wrong_keys") == 0) {
            if (v->type == REDIS_REPLY_STRING && v->len > 0)
                wrong = v->str;
            continue;
        }
        for (f = 0; f < NFIELDS; f++)
            if (strcmp(k->str, fields[f].name) == 0)
                break;
        if (f == NFIELDS)
            continue; /* a field of a newer library */
        long long n = 0;
        if (!llmb_reply_ll(v, &n)) {
            *errstr = llmb_xasprintf("llmb_stats field \"%s\" is not an "
                                     "integer but %s", k->str,
                                     type_name(v->type));
            return LLMB_EPROTO;
        }
        memcpy((char *)st + fields[f].offset, &n, sizeof(n));
        seen[f] = 1;
    }
    for (size_t f = 0; f < NFIELDS; f++) {
        if (fields[f].required && !seen[f]) {
            *errstr = llmb_xasprintf("llmb_stats answered no field \"%s\"",
                                     fields[f].name);
            return LLMB_EPROTO;
        }
    }
    if (wrong != NULL) {
        char *keys = keys_unique(wrong);
        *errstr = llmb_xasprintf("keys of the wrong type, counted as empty: "
                                 "%s (written by something else than llmb: "
                                 "rename or delete them; docs/data-model.md)",
                                 keys);
        free(keys);
        return LLMB_EREDIS;
    }
    return 0;
}
