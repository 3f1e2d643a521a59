/*
 * The helpers below sit under everything else in libllmb: allocation that
 * aborts instead of returning NULL (so callers never check), the always-on
 * assert, clocks, strict integer parsing, llmb_buf and llmb_strlist.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <llmb/err.h>
#include <llmb/util.h>

static void oom(size_t size) LLMB_NORETURN;

static void oom(size_t size)
{
    fprintf(stderr, "llmb: out of memory allocating %zu bytes\n", size);
    fflush(stderr);
    abort();
}

void *llmb_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        oom(size);
    return p;
}

void *llmb_xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (p == NULL)
        oom(nmemb * size);
    return p;
}

void *llmb_xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL)
        oom(size);
    return p;
}

char *llmb_xstrdup(const char *s)
{
    return llmb_xstrndup(s, strlen(s));
}

char *llmb_xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = llmb_xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *llmb_xvasprintf(const char *fmt, va_list ap)
{
    struct llmb_buf b;
    llmb_buf_init(&b);
    llmb_buf_vappendf(&b, fmt, ap);
    return llmb_buf_steal(&b);
}

char *llmb_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    va_start(ap, fmt);
    s = llmb_xvasprintf(fmt, ap);
    va_end(ap);
    return s;
}

void llmb_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}

static int64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + (int64_t)ts.tv_nsec / 1000;
}

int llmb_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int llmb_random_hex(char *out, size_t nbytes)
{
    unsigned char b[64];
    size_t done = 0;

    out[0] = '\0';
    while (done < nbytes) {
        size_t want = nbytes - done < sizeof(b) ? nbytes - done : sizeof(b);
        ssize_t got = getrandom(b, want, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return LLMB_EIO;
        for (ssize_t i = 0; i < got; i++)
            snprintf(out + 2 * (done + (size_t)i), 3, "%02x", b[i]);
        done += (size_t)got;
    }
    return 0;
}

int64_t llmb_now_ms(void)
{
    return clock_us(CLOCK_REALTIME) / 1000;
}

int64_t llmb_mono_ms(void)
{
    return clock_us(CLOCK_MONOTONIC) / 1000;
}

int64_t llmb_mono_us(void)
{
    return clock_us(CLOCK_MONOTONIC);
}

int llmb_parse_ll(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    long long v;

    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return LLMB_EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return LLMB_EINVAL;
    if (v < min || v > max)
        return LLMB_EINVAL;
    *out = v;
    return LLMB_OK;
}

#define BUF_INITIAL 64

void llmb_buf_init(struct llmb_buf *b)
{
    b->cap = BUF_INITIAL;
    b->data = llmb_xmalloc(b->cap);
    b->data[0] = '\0';
    b->len = 0;
}

void llmb_buf_fini(struct llmb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void llmb_buf_reset(struct llmb_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

/* Makes room for len more bytes plus the NUL. */
static void buf_reserve(struct llmb_buf *b, size_t len)
{
    size_t need = b->len + len + 1;
    size_t cap = b->cap ? b->cap : BUF_INITIAL;

    llmb_assert(need > b->len);
    if (need <= b->cap)
        return;
    while (cap < need) {
        llmb_assert(cap <= SIZE_MAX / 2);
        cap *= 2;
    }
    b->data = llmb_xrealloc(b->data, cap);
    b->cap = cap;
}

void llmb_buf_append(struct llmb_buf *b, const void *data, size_t len)
{
    buf_reserve(b, len);
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void llmb_buf_vappendf(struct llmb_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    int n;

    buf_reserve(b, 0);
    va_copy(cp, ap);
    n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, cp);
    va_end(cp);
    llmb_assert(n >= 0);
    if ((size_t)n >= b->cap - b->len) {
        buf_reserve(b, (size_t)n);
        va_copy(cp, ap);
        n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, cp);
        va_end(cp);
        llmb_assert(n >= 0 && (size_t)n < b->cap - b->len);
    }
    b->len += (size_t)n;
}

void llmb_buf_appendf(struct llmb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    llmb_buf_vappendf(b, fmt, ap);
    va_end(ap);
}

/* Reads straight into the buffer's spare room, BUF_READ bytes or more at
 * a time, until fread gives nothing: at the end of f or on an error. */
#define BUF_READ 65536

int llmb_buf_append_file(struct llmb_buf *b, FILE *f)
{
    size_t n;

    do {
        buf_reserve(b, BUF_READ);
        n = fread(b->data + b->len, 1, b->cap - b->len - 1, f);
        b->len += n;
        b->data[b->len] = '\0';
    } while (n > 0);
    return ferror(f) ? LLMB_EIO : LLMB_OK;
}

char *llmb_buf_steal(struct llmb_buf *b)
{
    char *s = b->data;
    if (s == NULL)
        s = llmb_xstrdup("");
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return s;
}

void llmb_strlist_push(struct llmb_strlist *l, const char *s)
{
    l->v = llmb_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n++] = llmb_xstrdup(s);
}

void llmb_strlist_clear(struct llmb_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int llmb_strlist_split(struct llmb_strlist *l, const char *s, char sep)
{
    int added = 0;
    const char *p = s;

    for (;;) {
        const char *end = strchr(p, sep);
        const char *stop = end ? end : p + strlen(p);
        const char *a = p, *z = stop;

        while (a < z && isspace((unsigned char)*a))
            a++;
        while (z > a && isspace((unsigned char)z[-1]))
            z--;
        if (z > a) {
            char *piece = llmb_xstrndup(a, (size_t)(z - a));
            l->v = llmb_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
            l->v[l->n++] = piece;
            added++;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    return added;
}

/* The first byte dropped is s[n]: when it continues a character (10xx
 * xxxx), that character's lead byte is at most 3 bytes back, and the cut
 * goes before it if the character it leads reaches past n. Bytes that are
 * not UTF-8 are cut where they are: no text is valid to begin with. */
size_t llmb_utf8_cut(const char *s, size_t len, size_t max)
{
    size_t n = len < max ? len : max;

    if (n == len || ((unsigned char)s[n] & 0xC0) != 0x80)
        return n;
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = (unsigned char)s[n - back];
        size_t seq = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        if ((c & 0xC0) == 0xC0)            /* a lead byte */
            return back < seq ? n - back : n;
        if ((c & 0x80) == 0)               /* ASCII: s[n] is stray */
            return n;
    }
    return n;
}

/* Edit distance of a[0..la) and b[0..lb): insertions, deletions,
 * substitutions and swaps of two neighbours ("wiat" is one from "wait");
 * SIZE_MAX when either is longer than any name worth comparing. */
size_t llmb_edit_distance(const char *a, size_t la, const char *b,
                          size_t lb)
{
    unsigned char d[65][65];

    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (unsigned char)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (unsigned char)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            unsigned best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1] ? 1u : 0u);
            if (d[i - 1][j] + 1u < best)
                best = d[i - 1][j] + 1u;
            if (d[i][j - 1] + 1u < best)
                best = d[i][j - 1] + 1u;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
                a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1u < best)
                best = d[i - 2][j - 2] + 1u;
            d[i][j] = (unsigned char)best;
        }
    }
    return d[la][lb];
}
