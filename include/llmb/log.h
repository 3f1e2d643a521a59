/*
 * Logging: one line per event on stderr,
 *   2026-11-28T16:42:24.123Z info worker[1234]: claimed tasks n=3 queue=default
 * (UTC time with milliseconds, level, role and pid, then a logfmt-ish
 * message: words first, then key=value pairs, with job= and queue= whenever
 * they are known). The llmb_log() macros test the level before any argument
 * is formatted, so debug lines cost one comparison when they are off.
 */
#ifndef LLMB_LOG_H
#define LLMB_LOG_H

#include <stdarg.h>

#include <llmb/util.h>

enum llmb_log_level {
    LLMB_LOG_DEBUG,
    LLMB_LOG_INFO,
    LLMB_LOG_WARN,
    LLMB_LOG_ERROR
};

/* Lines below this level are dropped. LLMB_LOG_INFO until llmb_log_init(). */
extern enum llmb_log_level llmb_log_threshold;

/* Sets the role shown in every line ("worker", "coordinator"; copied, at
 * most 31 bytes; "llmb" before any call) and the threshold. */
void llmb_log_init(const char *role, enum llmb_log_level level);

/* Parses "debug", "info", "warn" (or "warning") or "error", any case.
 * Returns 0, or LLMB_EINVAL leaving *out alone. */
int llmb_log_level_parse(const char *s, enum llmb_log_level *out);

/* "debug", "info", "warn" or "error". */
const char *llmb_log_level_name(enum llmb_log_level level);

/* Formats and writes one line with a single write(2) to stderr if lvl is at
 * or above the threshold. Control characters in the message become spaces
 * so that a line stays a line; messages are cut at 16 KiB. errno is kept. */
void llmb_log_write(enum llmb_log_level lvl, const char *fmt, ...)
    LLMB_PRINTF(2, 3);

/* The same from a va_list, the message after prefix (NULL: none); spaces
 * that end the message (a newline it ended with) are left out. For
 * libraries that log through a callback (libmicrohttpd). */
void llmb_log_vwrite(enum llmb_log_level lvl, const char *prefix,
                     const char *fmt, va_list ap) LLMB_PRINTF(3, 0);

#define llmb_log(lvl, ...)                                                  \
    do {                                                                    \
        if ((lvl) >= llmb_log_threshold)                                    \
            llmb_log_write((lvl), __VA_ARGS__);                             \
    } while (0)

#define llmb_debug(...) llmb_log(LLMB_LOG_DEBUG, __VA_ARGS__)
#define llmb_info(...) llmb_log(LLMB_LOG_INFO, __VA_ARGS__)
#define llmb_warn(...) llmb_log(LLMB_LOG_WARN, __VA_ARGS__)
#define llmb_error(...) llmb_log(LLMB_LOG_ERROR, __VA_ARGS__)

#endif
