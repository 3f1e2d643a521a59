/*
 * Reading Redis replies: Redis stores every number of a job or worker hash
 * as a string, and the functions answer errors as "ERR <message>". These
 * helpers turn replies into error messages for the user and JSON values
 * for --json, the same way in every command; numbers are read by
 * llmb/reply.h.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>

#include "admin.h"

const char *llmb_reply_str(const redisReply *r)
{
    if (r != NULL &&
        (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS))
        return r->str;
    return NULL;
}

const char *llmb_reply_errmsg(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ERROR)
        return "";
    if (strncmp(r->str, "ERR ", 4) == 0)
        return r->str + 4;
    return r->str;
}

int llmb_reply_check(const redisReply *r, struct llmb_cluster *c,
                     char **errstr)
{
    if (r == NULL) {
        *errstr = llmb_xstrdup(llmb_cluster_errstr(c));
        return LLMB_EIO;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        *errstr = llmb_xstrdup(llmb_reply_errmsg(r));
        return LLMB_EREDIS;
    }
    return 0;
}

int llmb_reply_check_array(const redisReply *r, struct llmb_cluster *c,
                           const char *key, const char *kind,
                           char **errstr)
{
    int rc = llmb_reply_check(r, c, errstr);

    if (rc == 0 && r->type != REDIS_REPLY_ARRAY) {
        *errstr = llmb_xasprintf("%s is not a %s", key, kind);
        rc = LLMB_EREDIS;
    }
    return rc;
}

json_t *llmb_json_str(const char *s)
{
    json_t *v;
    char *copy;

    if (s == NULL)
        return json_null();
    v = json_string(s);
    if (v != NULL)
        return v;
    /* Not valid UTF-8 (hand-written keys): keep the ASCII, mark the rest. */
    copy = llmb_xstrdup(s);
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    v = json_string(copy);
    free(copy);
    return v;
}

json_t *llmb_json_scalar(const char *s)
{
    long long v;
    char *end = NULL;
    double d;

    if (s == NULL)
        return json_null();
    if (llmb_parse_ll(s, LLONG_MIN, LLONG_MAX, &v) == 0)
        return json_integer(v);
    if (*s != '\0' && strspn(s, "0123456789+-.eE") == strlen(s)) {
        errno = 0;
        d = strtod(s, &end);
        if (errno == 0 && *end == '\0' && isfinite(d))
            return json_real(d);
    }
    return llmb_json_str(s);
}

json_t *llmb_json_int_or_null(const char *s)
{
    long long v;

    if (s != NULL && llmb_parse_ll(s, LLONG_MIN, LLONG_MAX, &v) == 0)
        return json_integer(v);
    return json_null();
}

json_t *llmb_json_text(const char *s)
{
    json_t *v;

    if (s == NULL)
        return json_null();
    v = json_loads(s, JSON_DECODE_ANY, NULL);
    return v ? v : llmb_json_str(s);
}
