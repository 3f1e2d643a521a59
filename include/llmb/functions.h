/*
 * The llmb Redis function library: its source, embedded at build time from
 * the lua/ files (cmake/EmbedLua.cmake), and the check that makes sure the
 * server runs it. Every connection calls llmb_functions_ensure() once
 * connected, and again when FCALL answers "ERR Function not found".
 */
#ifndef LLMB_FUNCTIONS_H
#define LLMB_FUNCTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

/* The bundle: lua/00-header.lua (starting "#!lua name=llmb") and the other
 * .lua files of lua/ in file-name order; NUL-terminated, len without NUL. */
extern const char llmb_lua_source[];
extern const size_t llmb_lua_source_len;
/* LLMB_LIB_VERSION from lua/00-header.lua. */
extern const long long llmb_lua_version;
/* The SHA-1 (40 hex digits) of the bundle as written in lua/, stamped into
 * its LLMB_LIB_HASH: what `FCALL_RO llmb_version 0 hash` answers. */
extern const char llmb_lua_hash[];

/*
 * Makes sure the server has the llmb library at version llmb_lua_version or
 * newer: asks its version and hash (a few bytes) and loads ours (FUNCTION
 * LOAD REPLACE) when it is missing, older, or of the same version but
 * another hash; keeps a newer one with a warning in the log. Safe to run
 * from many processes at once. Returns 0;
 * LLMB_EVERSION when the server predates Redis 7 (no FUNCTION command) or
 * runs a library older than version 6 (another layout of task states)
 * and LLMB_REPLACE_LIBRARY=1 is not set;
 * LLMB_EREDIS when Redis refuses (e.g. the Lua does not compile); LLMB_EIO
 * when the connection fails. On error *errstr (if not NULL) gets a
 * malloc'd message.
 */
int llmb_functions_ensure(redisContext *c, char **errstr);

/* True when r is the error FCALL gives for a function the server lacks
 * ("ERR Function not found": the library was flushed, or is older). */
bool llmb_reply_function_missing(const redisReply *r);

/* Reads the version of the llmb library loaded in the server into *out:
 * 0 when there is none. Returns 0, LLMB_EREDIS or LLMB_EIO (with *errstr
 * as above). */
int llmb_functions_loaded_version(redisContext *c, long long *out,
                                  char **errstr);

#endif
