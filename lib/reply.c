/*
 * Numbers out of Redis replies (llmb/reply.h): one reading of an integer
 * reply and of a TIME reply for every program, so that a daemon and the
 * CLI never disagree on what a field holds.
 */
#include <limits.h>
#include <string.h>

#include <llmb/reply.h>
#include <llmb/util.h>

bool llmb_reply_ll(const redisReply *r, long long *out)
{
    if (r == NULL)
        return false;
    if (r->type == REDIS_REPLY_INTEGER) {
        *out = r->integer;
        return true;
    }
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        return llmb_parse_ll(r->str, LLONG_MIN, LLONG_MAX, out) == 0;
    return false;
}

long long llmb_reply_ll_or(const redisReply *r, long long def)
{
    long long v;

    return llmb_reply_ll(r, &v) ? v : def;
}

bool llmb_reply_time_ms(const redisReply *r, int64_t *ms)
{
    long long s, us;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        !llmb_reply_ll(r->element[0], &s) ||
        !llmb_reply_ll(r->element[1], &us) || s < 0 ||
        s > INT64_MAX / 1000 - 1 || us < 0 || us > 999999)
        return false;
    *ms = (int64_t)s * 1000 + (int64_t)us / 1000;
    return true;
}

bool llmb_reply_redirected(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR && r->str != NULL &&
           (strncmp(r->str, "MOVED ", 6) == 0 ||
            strncmp(r->str, "ASK ", 4) == 0 ||
            strncmp(r->str, "TRYAGAIN", 8) == 0 ||
            strncmp(r->str, "CLUSTERDOWN", 11) == 0);
}

bool llmb_reply_refused_for_now(const char *err)
{
    static const char *const codes[] = {
        "BUSY", "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN",
        "READONLY", "MISCONF", "NOREPLICAS", "OOM", "MOVED", "ASK",
    };

    if (err == NULL)
        return false;
    for (size_t i = 0; i < sizeof(codes) / sizeof(*codes); i++) {
        size_t n = strlen(codes[i]);
        if (strncmp(err, codes[i], n) == 0 &&
            (err[n] == ' ' || err[n] == '\0'))
            return true;
    }
    return false;
}

bool llmb_reply_not_yet(const redisReply *r)
{
    static const char *const later[] = {"LOADING", "BUSY", "MASTERDOWN",
                                        "TRYAGAIN", "CLUSTERDOWN"};

    if (r == NULL || r->type != REDIS_REPLY_ERROR || r->str == NULL)
        return false;
    for (size_t i = 0; i < sizeof(later) / sizeof(*later); i++) {
        size_t n = strlen(later[i]);
        if (strncmp(r->str, later[i], n) == 0 &&
            (r->str[n] == ' ' || r->str[n] == '\0'))
            return true;
    }
    return false;
}
