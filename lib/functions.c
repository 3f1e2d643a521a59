/*
 * Loading the llmb function library (the lua/ files, embedded as
 * llmb_lua_source) into Redis. Called by every connection right after it
 * connects and authenticates, and again when Redis lost the library (e.g.
 * FUNCTION FLUSH, or a restart without persistence). Many processes may run
 * this at once: loading identical code twice is harmless, and a load is
 * checked afterwards so that a race with an older binary cannot leave the
 * older library in place. The check on connect is one short call:
 * `FCALL_RO llmb_version 0 hash` answers the version and the SHA-1 the
 * build stamped into the library (cmake/EmbedLua.cmake), compared with
 * ours; the library is sent only when they differ.
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
/* The first library versions of a new layout: 6 keeps a job's task
 * fields in its job hash, 30 keeps jobs as records (bench/proto/LAYOUT.md),
 * 31 keeps a job's end in its record.
 * Replacing an older one under running processes would split jobs in
 * flight between two layouts (and the older workers cannot read the newer
 * claim reply), so it is done only when asked (LLMB_REPLACE_LIBRARY=1,
 * docs/operations.md). */
static const long long LAYOUTS[] = {6, 30, 31};

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

bool llmb_reply_function_missing(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR &&
           strncmp(r->str, "ERR Function not found", 22) == 0;
}

/* Asks the loaded library its version: FCALL_RO llmb_version 0, with
 * "hash" when hash is not NULL. Sets *present, *version (0 when there is
 * no library) and hash (hashsz bytes, NUL-terminated; "" when the library
 * answers only its version, as those before version 17 do). */
static int ask_version(redisContext *c, bool *present, long long *version,
                       char *hash, size_t hashsz, char **errstr)
{
    redisReply *r = hash != NULL
                        ? redisCommand(c, "FCALL_RO llmb_version 0 hash")
                        : redisCommand(c, "FCALL_RO llmb_version 0");
    const redisReply *v;
    int rc = LLMB_OK;

    *present = false;
    *version = 0;
    if (hash != NULL)
        hash[0] = '\0';
    if (r == NULL) {
        set_err(errstr, io_error(c, "reading the llmb library version"));
        return LLMB_EIO;
    }
    v = r;
    if (hash != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING &&
        r->element[1]->len < hashsz) {
        memcpy(hash, r->element[1]->str, r->element[1]->len + 1);
        v = r->element[0];
    }
    if (v->type == REDIS_REPLY_INTEGER) {
        *present = true;
        *version = v->integer;
    } else if (v->type == REDIS_REPLY_STRING) {
        *present = true;
        if (llmb_parse_ll(v->str, 0, LLONG_MAX, version) != 0)
            rc = LLMB_EPROTO;
    } else if (llmb_reply_function_missing(v)) {
        *version = 0;
    } else if (v->type == REDIS_REPLY_ERROR) {
        if (strncasecmp(v->str, "ERR unknown command", 19) == 0) {
            set_err(errstr, too_old(c));
            freeReplyObject(r);
            return LLMB_EVERSION;
        }
        set_err(errstr, llmb_xasprintf("FCALL_RO llmb_version failed: %s",
                                       v->str));
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

int llmb_functions_loaded_version(redisContext *c, long long *out,
                                  char **errstr)
{
    bool present;

    return ask_version(c, &present, out, NULL, 0, errstr);
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

/* Whether loading ours over library `version` crosses a layout. */
static bool layout_crossed(long long version)
{
    for (size_t i = 0; i < sizeof(LAYOUTS) / sizeof(LAYOUTS[0]); i++)
        if (version < LAYOUTS[i] && llmb_lua_version >= LAYOUTS[i])
            return true;
    return false;
}

int llmb_functions_ensure(redisContext *c, char **errstr)
{
    bool present = false, same_code;
    long long version = 0;
    char hash[64];
    int rc;

    if (errstr != NULL)
        *errstr = NULL;
    rc = ask_version(c, &present, &version, hash, sizeof(hash), errstr);
    if (rc != 0)
        return rc;
    same_code = strcmp(hash, llmb_lua_hash) == 0;
    if (present && version > llmb_lua_version) {
        llmb_warn("redis has a newer llmb function library, keeping it "
                  "loaded=%lld ours=%lld", version, llmb_lua_version);
        return LLMB_OK;
    }
    if (present && version == llmb_lua_version && same_code)
        return LLMB_OK;
    if (present && version >= 1 && layout_crossed(version)) {
        const char *ok = getenv("LLMB_REPLACE_LIBRARY");
        if (ok == NULL || strcmp(ok, "1") != 0) {
            set_err(errstr, llmb_xasprintf(
                "redis runs llmb function library version %lld, which keeps "
                "jobs in another layout than version %lld: stop the older "
                "llmb processes (letting the queues drain first keeps every "
                "task from running twice), then start this one once with "
                "LLMB_REPLACE_LIBRARY=1 (docs/operations.md, Upgrade)",
                version, llmb_lua_version));
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
