/*
 * Reading <base>:types, the job types live workers advertise per queue
 * (include/llmb/served.h). Workers write it (worker/types.c); this file
 * only reads it, for every program that asks whether a queue or a type is
 * served.
 */
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/served.h>

int llmb_served_parse(const redisReply *r, int64_t now_ms, int64_t forget_ms,
                      struct llmb_served *s)
{
    memset(s, 0, sizeof(*s));
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
        return LLMB_EPROTO;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        long long until = 0;
        if (f->type != REDIS_REPLY_STRING)
            continue;
        if (v->type == REDIS_REPLY_STRING)
            (void)llmb_parse_ll(v->str, 0, INT64_MAX, &until);
        if (until > now_ms) {
            llmb_strlist_push(&s->live, f->str);
            if (strcmp(f->str, "*") == 0)
                s->wildcard = true;
        } else if (now_ms - until > forget_ms) {
            llmb_strlist_push(&s->stale, f->str);
        }
    }
    return 0;
}

bool llmb_served_any(const struct llmb_served *s)
{
    return s->live.n > 0;
}

bool llmb_served_type(const struct llmb_served *s, const char *type)
{
    if (s->wildcard)
        return true;
    for (size_t i = 0; i < s->live.n; i++)
        if (strcmp(s->live.v[i], type) == 0)
            return true;
    return false;
}

void llmb_served_fini(struct llmb_served *s)
{
    llmb_strlist_clear(&s->live);
    llmb_strlist_clear(&s->stale);
}
