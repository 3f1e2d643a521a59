/*
 * Loading the llmb function library (the lua/ files, embedded as
 * llmb_lua_source) into Redis. Called by every connection right after it
 * connects and authenticates, and again when Redis lost the library (e.g.
 * FUNCTION FLUSH, or a restart without persistence). Many processes may run
 * this at once: loading identical code twice is harmless, and a load is
 * checked afterwards so that a race with an older binary cannot leave the
 * older library in place.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llmb/err.h>
#include <llmb/functions.h>
#include <llmb/log.h>
#include <llmb/util.h>

#define LOAD_TRIES 3
/* The first library version that keeps a job's task fields in its job
 * hash. Replacing an older one under running processes would split the
 * task states of jobs in flight between two layouts, so it is done only
 * when asked (LLMB_REPLACE_LIBRARY=1, docs/operations.md). */
#define LAYOUT_VERSION 6

static void set_err(char **errstr, char *msg)
{
    if (errstr != NULL)
        *errstr = msg;
    else
        free(msg);
}

static char *io_error(redisContext *c, const char *doing)
{
    return llmb_xasprintf("lost the connection to redis while %s: %s", doing,
                          c->errstr[0] ? c->errstr : "connection closed");
}

/* The message for a server without Redis Functions: names its version. */
static char *too_old(redisContext *c)
{
    redisReply *r = redisCommand(c, "INFO server");
    char version[32] = "older than 7.0";

    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        const char *v = strstr(r->str, "redis_version:");
        if (v != NULL) {
            v += strlen("redis_version:");
            size_t n = strcspn(v, "\r\n");
            if (n > 0 && n < sizeof(version)) {
                memcpy(version, v, n);
                version[n] = '\0';
            }
        }
    }
    if (r != NULL)
        freeReplyObject(r);
    return llmb_xasprintf("llmb needs Redis 7.0 or newer (Redis Functions); "
                          "this server is %s", version);
}

/* Finds field `name` in a RESP2 map (a flat array of name, value). */
static redisReply *map_get(const redisReply *map, const char *name)
{
    if (map == NULL || map->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < map->elements; i += 2) {
        const redisReply *k = map->element[i];
        if ((k->type == REDIS_REPLY_STRING || k->type == REDIS_REPLY_STATUS) &&
            strcmp(k->str, name) == 0)
            return map->element[i + 1];
    }
    return NULL;
}

bool llmb_reply_function_missing(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR &&
           strncmp(r->str, "ERR Function not found", 22) == 0;
}

int llmb_functions_loaded_version(redisContext *c, long long *out,
                                  char **errstr)
{
    redisReply *r = redisCommand(c, "FCALL_RO llmb_version 0");
    int rc = LLMB_OK;

    *out = 0;
    if (r == NULL) {
        set_err(errstr, io_error(c, "reading the llmb library version"));
        return LLMB_EIO;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        *out = r->integer;
    } else if (r->type == REDIS_REPLY_STRING) {
        if (llmb_parse_ll(r->str, 0, LLONG_MAX, out) != 0)
            rc = LLMB_EPROTO;
    } else if (llmb_reply_function_missing(r)) {
        *out = 0;
    } else if (r->type == REDIS_REPLY_ERROR) {
        if (strncasecmp(r->str, "ERR unknown command", 19) == 0) {
            set_err(errstr, too_old(c));
            freeReplyObject(r);
            return LLMB_EVERSION;
        }
        set_err(errstr, llmb_xasprintf("FCALL_RO llmb_version failed: %s",
                                       r->str));
        rc = LLMB_EREDIS;
    } else {
        rc = LLMB_EPROTO;
    }
    if (rc == LLMB_EPROTO)
        set_err(errstr, llmb_xstrdup("llmb_version answered something other "
                                     "than an integer"));
    freeReplyObject(r);
    return rc;
}

/* Asks for the llmb library. Sets *present, and *same_code when its code
 * is byte for byte ours. */
static int inspect(redisContext *c, bool *present, bool *same_code,
                   char **errstr)
{
    redisReply *r = redisCommand(c, "FUNCTION LIST LIBRARYNAME llmb WITHCODE");

    *present = *same_code = false;
    if (r == NULL) {
        set_err(errstr, io_error(c, "listing redis functions"));
        return LLMB_EIO;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        int rc = LLMB_EREDIS;
        if (strncasecmp(r->str, "ERR unknown command", 19) == 0) {
            set_err(errstr, too_old(c));
            rc = LLMB_EVERSION;
        } else {
            set_err(errstr, llmb_xasprintf("FUNCTION LIST failed: %s",
                                           r->str));
        }
        freeReplyObject(r);
        return rc;
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *name = map_get(r->element[i], "library_name");
        const redisReply *code = map_get(r->element[i], "library_code");
        if (name == NULL || name->type != REDIS_REPLY_STRING ||
            strcmp(name->str, "llmb") != 0)
            continue;
        *present = true;
        *same_code = code != NULL && code->type == REDIS_REPLY_STRING &&
                     code->len == llmb_lua_source_len &&
                     memcmp(code->str, llmb_lua_source, code->len) == 0;
    }
    freeReplyObject(r);
    return LLMB_OK;
}

static int load(redisContext *c, char **errstr)
{
    redisReply *r = redisCommand(c, "FUNCTION LOAD REPLACE %b",
                                 llmb_lua_source, llmb_lua_source_len);
    int rc = LLMB_OK;

    if (r == NULL) {
        set_err(errstr, io_error(c, "loading the llmb library"));
        return LLMB_EIO;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        set_err(errstr, llmb_xasprintf("redis refused the llmb function "
                                       "library: %s", r->str));
        rc = LLMB_EREDIS;
    }
    freeReplyObject(r);
    return rc;
}

int llmb_functions_ensure(redisContext *c, char **errstr)
{
    bool present = false, same_code = false;
    long long version = 0;
    int rc;

    if (errstr != NULL)
        *errstr = NULL;
    rc = inspect(c, &present, &same_code, errstr);
    if (rc != 0)
        return rc;
    if (present) {
        rc = llmb_functions_loaded_version(c, &version, errstr);
        if (rc != 0)
            return rc;
    }
    if (present && version > llmb_lua_version) {
        llmb_warn("redis has a newer llmb function library, keeping it "
                  "loaded=%lld ours=%lld", version, llmb_lua_version);
        return LLMB_OK;
    }
    if (present && version == llmb_lua_version && same_code)
        return LLMB_OK;
    if (present && version >= 1 && version < LAYOUT_VERSION &&
        llmb_lua_version >= LAYOUT_VERSION) {
        const char *ok = getenv("LLMB_REPLACE_LIBRARY");
        if (ok == NULL || strcmp(ok, "1") != 0) {
            set_err(errstr, llmb_xasprintf(
                "redis runs llmb function library version %lld, which keeps "
                "task states in another layout than version %lld: let the "
                "queues drain and stop the older llmb processes, then start "
                "this one once with LLMB_REPLACE_LIBRARY=1 "
                "(docs/operations.md, Upgrade)", version, llmb_lua_version));
            return LLMB_EVERSION;
        }
    }
    if (present && version == llmb_lua_version)
        llmb_warn("redis has llmb function library version %lld with other "
                  "code than ours; replacing it (bump LLMB_LIB_VERSION in "
                  "lua/00-header.lua when the Lua changes)", version);

    /* Another process may load an older library between our LOAD and our
     * check; then load again, a bounded number of times. */
    for (int i = 0; i < LOAD_TRIES; i++) {
        rc = load(c, errstr);
        if (rc != 0)
            return rc;
        rc = llmb_functions_loaded_version(c, &version, errstr);
        if (rc != 0)
            return rc;
        if (version >= llmb_lua_version) {
            llmb_info("loaded the llmb function library version=%lld",
                      llmb_lua_version);
            return LLMB_OK;
        }
    }
    set_err(errstr, llmb_xasprintf("the llmb function library keeps being "
                                   "replaced by version %lld (ours is %lld); "
                                   "is an older llmb running?", version,
                                   llmb_lua_version));
    return LLMB_EVERSION;
}
