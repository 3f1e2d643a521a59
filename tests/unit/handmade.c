/*
 * Handmade hiredis replies (handmade.h), allocated the way hiredis
 * allocates its own so that freeReplyObject() frees them.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/util.h>

#include "handmade.h"

static redisReply *blank(int type)
{
    redisReply *r = llmb_xcalloc(1, sizeof(*r));

    r->type = type;
    return r;
}

redisReply *str(int type, const char *s)
{
    redisReply *r = blank(type);

    r->str = llmb_xstrdup(s);
    r->len = strlen(s);
    return r;
}

redisReply *num(long long v)
{
    redisReply *r = blank(REDIS_REPLY_INTEGER);

    r->integer = v;
    return r;
}

redisReply *nil(void)
{
    return blank(REDIS_REPLY_NIL);
}

redisReply *arr(size_t n, ...)
{
    redisReply *r = blank(REDIS_REPLY_ARRAY);
    va_list ap;

    r->elements = n;
    r->element = llmb_xcalloc(n + 1, sizeof(*r->element));
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}
