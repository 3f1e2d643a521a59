/*
 * Small helpers every part of llmb uses: allocation that aborts on failure,
 * an always-on assert, clocks, strict integer parsing, a growable byte
 * buffer and a list of strings.
 */
#ifndef LLMB_UTIL_H
#define LLMB_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LLMB_PRINTF(fmt_idx, first_arg) \
    __attribute__((format(printf, fmt_idx, first_arg)))
#define LLMB_NORETURN __attribute__((noreturn))

/* Allocation: these never return NULL; on failure they print a message to
 * stderr and abort (like tmux xmalloc). Free with free(). */
void *llmb_xmalloc(size_t size);
void *llmb_xcalloc(size_t nmemb, size_t size);
void *llmb_xrealloc(void *ptr, size_t size);
char *llmb_xstrdup(const char *s);
/* Copies at most n bytes of s and NUL-terminates the copy. */
char *llmb_xstrndup(const char *s, size_t n);
/* Formats into a new string (free() it). */
char *llmb_xasprintf(const char *fmt, ...) LLMB_PRINTF(1, 2);
char *llmb_xvasprintf(const char *fmt, va_list ap) LLMB_PRINTF(1, 0);

/* Checks a programmer's invariant, in every build type: on failure prints
 * "file:line: assertion failed: expr" to stderr and aborts. Never use it for
 * input, network or Redis errors. */
#define llmb_assert(expr)                                                   \
    ((expr) ? (void)0 : llmb_assert_fail(#expr, __FILE__, __LINE__))
void llmb_assert_fail(const char *expr, const char *file, int line)
    LLMB_NORETURN;

/* Wall clock (CLOCK_REALTIME) in milliseconds since the Unix epoch. */
int64_t llmb_now_ms(void);
/* Monotonic clock in milliseconds / microseconds, for measuring intervals. */
int64_t llmb_mono_ms(void);
int64_t llmb_mono_us(void);

/* Fills out with 2 * nbytes lowercase hex digits and a NUL from the
 * kernel's random source (getrandom), for secrets and nonces. Returns 0,
 * or LLMB_EIO when no random bytes could be had (out is then ""). */
int llmb_random_hex(char *out, size_t nbytes);

/* The value of hex digit c (0-9, a-f, A-F), or -1 for any other byte. */
int llmb_hex_digit(int c);

/* Edit distance of a[0..la) and b[0..lb) counting insertions, deletions,
 * substitutions and swaps of two neighbours ("wiat" is one from "wait"),
 * for "did you mean"; SIZE_MAX when either is longer than 64. */
size_t llmb_edit_distance(const char *a, size_t la, const char *b, size_t lb);

/* How many bytes of s[0..len) to keep to keep at most max of them
 * without cutting a UTF-8 character in two: min(len, max), less the
 * bytes of a character the cut would split (at most 3). For error texts
 * shortened for a message or a record. */
size_t llmb_utf8_cut(const char *s, size_t len, size_t max);

/* Parses all of s (base 10, optional sign, no spaces) as an integer within
 * [min, max] into *out. Returns 0, or LLMB_EINVAL (and leaves *out alone)
 * when s is NULL, empty, has other characters or is out of range. */
int llmb_parse_ll(const char *s, long long min, long long max, long long *out);

/*
 * A growable byte buffer. llmb_buf_init() gives an empty buffer whose data
 * is "" (allocated); every append keeps data NUL-terminated, so data can be
 * used as a C string when no NUL bytes were appended. llmb_buf_fini() frees
 * it; llmb_buf_steal() hands data to the caller instead. After either, data
 * is NULL until the next append or llmb_buf_init().
 */
struct llmb_buf {
    char *data; /* len bytes + a NUL; owned by the buffer */
    size_t len; /* bytes used, without the NUL */
    size_t cap; /* bytes allocated for data */
};

void llmb_buf_init(struct llmb_buf *b);
void llmb_buf_fini(struct llmb_buf *b);
/* Empties the buffer, keeping its memory. */
void llmb_buf_reset(struct llmb_buf *b);
void llmb_buf_append(struct llmb_buf *b, const void *data, size_t len);
void llmb_buf_appendf(struct llmb_buf *b, const char *fmt, ...) LLMB_PRINTF(2, 3);
void llmb_buf_vappendf(struct llmb_buf *b, const char *fmt, va_list ap)
    LLMB_PRINTF(2, 0);
/* Returns data (never NULL; the caller frees it) and leaves b empty with
 * no memory, as after llmb_buf_fini(). */
char *llmb_buf_steal(struct llmb_buf *b);
/* Appends what is left of f, up to its end, to b; f stays open. Returns
 * 0, or LLMB_EIO on a read error (errno as fread left it; b then holds
 * what was read before it). */
int llmb_buf_append_file(struct llmb_buf *b, FILE *f);

/*
 * A list of owned strings. A zeroed struct ({0}) is an empty list;
 * llmb_strlist_clear() frees the strings and empties it again.
 */
struct llmb_strlist {
    char **v; /* n strings, each owned by the list */
    size_t n;
};

/* Appends a copy of s. */
void llmb_strlist_push(struct llmb_strlist *l, const char *s);
void llmb_strlist_clear(struct llmb_strlist *l);
/* Splits s at every sep, trims ASCII white space from each piece and appends
 * the non-empty ones. Returns how many were appended. */
int llmb_strlist_split(struct llmb_strlist *l, const char *s, char sep);

#endif
