/*
 * The fast reading of one streamed chunk, for llm_response.c: a single
 * pass over the `data:` of an SSE event that finds what the measurements
 * need (the bytes of content of its choices, a finish_reason, the usage
 * counts) without building a JSON tree or allocating. A stream of N
 * tokens is N such events, so this is the executor's inner loop.
 *
 * It answers only when it is sure to give what the full parse
 * (json_loadb, then llm_response.c's reading of the object) gives: the
 * text is valid JSON as jansson reads it (RFC 8259, UTF-8 checked the
 * way jansson checks it, no "\u0000", integers that fit in 64 bits), its
 * top level is an object, and its meaning is plain. Anything else is
 * left to the full parse, which also writes the error messages: an
 * "error" member that is not null, a key written with escapes (it could
 * spell one we look for), a key we look for given twice (jansson keeps
 * the last), nesting deeper than MAX_DEPTH, integers of more than 18
 * digits, long or far-out real numbers, and any text that is not valid.
 * fuzz_llm_chunk holds the two readings to agreement.
 */
#include <string.h>

#include "llm.h"

#define MAX_DEPTH 32

enum { OK = 0, FULL = 1 };

struct scan {
    const unsigned char *p, *end;
    int depth;
};

static void ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
                             *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* Is the next byte c (after white space)? Consumes it when it is. */
static bool eat(struct scan *s, unsigned char c)
{
    ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

static int hex4(const unsigned char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int d = llmb_hex_digit(p[i]);
        if (d < 0)
            return FULL;
        *v = *v << 4 | (unsigned)d;
    }
    return OK;
}

/* Checks one UTF-8 sequence starting at p (its first byte >= 0x80) as
 * jansson's utf8_check_first and utf8_check_full do; *n gets its length.
 */
static int utf8_seq(const unsigned char *p, const unsigned char *end,
                    size_t *n)
{
    unsigned c = p[0], v;
    size_t k;

    if (c >= 0xC2 && c <= 0xDF) {
        k = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        v = c & 0x07;
    } else {
        return FULL;
    }
    if ((size_t)(end - p) < k)
        return FULL;
    for (size_t i = 1; i < k; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF)
            return FULL;
        v = v << 6 | (p[i] & 0x3Fu);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) ||
        (k == 3 && v < 0x800) || (k == 4 && v < 0x10000))
        return FULL;
    *n = k;
    return OK;
}

/* A string (the opening quote next). *bytes gets its length once decoded
 * (what json_string_length() says); *escaped whether it had escapes. On
 * return *str points at its raw bytes and *rawlen counts them. */
static int string(struct scan *s, size_t *bytes, bool *escaped,
                  const char **str, size_t *rawlen)
{
    size_t n = 0;
    const unsigned char *start;

    *escaped = false;
    if (!eat(s, '"'))
        return FULL;
    start = s->p;
    for (;;) {
        unsigned c;
        if (s->p >= s->end)
            return FULL;
        c = *s->p;
        if (c == '"')
            break;
        if (c < 0x20)
            return FULL;
        if (c < 0x80 && c != '\\') {
            s->p++;
            n++;
            continue;
        }
        if (c >= 0x80) {
            size_t k;
            if (utf8_seq(s->p, s->end, &k) != OK)
                return FULL;
            s->p += k;
            n += k;
            continue;
        }
        /* An escape. */
        *escaped = true;
        if (s->end - s->p < 2)
            return FULL;
        c = s->p[1];
        if (c == 'u') {
            unsigned v, lo;
            if (s->end - s->p < 6 || hex4(s->p + 2, &v) != OK)
                return FULL;
            s->p += 6;
            if (v == 0 || (v >= 0xDC00 && v <= 0xDFFF))
                return FULL; /* jansson refuses both */
            if (v >= 0xD800 && v <= 0xDBFF) {
                if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
                    hex4(s->p + 2, &lo) != OK || lo < 0xDC00 || lo > 0xDFFF)
                    return FULL;
                s->p += 6;
                n += 4;
            } else {
                n += v < 0x80 ? 1 : v < 0x800 ? 2 : 3;
            }
            continue;
        }
        if (strchr("\"\\/bfnrt", (int)c) == NULL || c == '\0')
            return FULL;
        s->p += 2;
        n++;
    }
    *str = (const char *)start;
    *rawlen = (size_t)(s->p - start);
    s->p++; /* the closing quote */
    *bytes = n;
    return OK;
}

/* A number. *integer says whether it is one (no fraction, no exponent)
 * and *value gets it then. */
static int number(struct scan *s, bool *integer, long long *value)
{
    const unsigned char *start = s->p;
    bool neg = false;
    size_t digits = 0, expdigits = 0;
    long long v = 0;

    *integer = true;
    if (s->p < s->end && *s->p == '-') {
        neg = true;
        s->p++;
    }
    if (s->p >= s->end || *s->p < '0' || *s->p > '9')
        return FULL;
    if (*s->p == '0') {
        s->p++;
        digits = 1;
        if (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            return FULL;
    } else {
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            if (digits < 18)
                v = v * 10 + (*s->p - '0');
            digits++;
            s->p++;
        }
    }
    if (s->p < s->end && *s->p == '.') {
        *integer = false;
        s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            return FULL;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        *integer = false;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            return FULL;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            expdigits++;
            s->p++;
        }
    }
    if (*integer && digits > 18)
        return FULL; /* may not fit in 64 bits: jansson decides */
    if (!*integer && (expdigits > 2 || s->p - start > 64))
        return FULL; /* may overflow a double: jansson decides */
    *value = neg ? -v : v;
    return OK;
}

static int literal(struct scan *s, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return FULL;
    s->p += n;
    return OK;
}

static int value(struct scan *s);

/* The members of an object whose '{' was read, each handed to member()
 * with the scan at its value; member must read the value. */
typedef int member_fn(struct scan *s, const char *key, size_t klen,
                      void *arg);

static int object(struct scan *s, member_fn *member, void *arg)
{
    if (++s->depth > MAX_DEPTH)
        return FULL;
    if (eat(s, '}')) {
        s->depth--;
        return OK;
    }
    for (;;) {
        const char *key;
        size_t klen, bytes;
        bool escaped;
        ws(s);
        if (string(s, &bytes, &escaped, &key, &klen) != OK || escaped)
            return FULL;
        if (!eat(s, ':'))
            return FULL;
        ws(s);
        if ((member != NULL ? member(s, key, klen, arg) : value(s)) != OK)
            return FULL;
        if (eat(s, ','))
            continue;
        if (eat(s, '}'))
            break;
        return FULL;
    }
    s->depth--;
    return OK;
}

/* The elements of an array whose '[' was read, each handed to element()
 * (or skipped); *count gets their number. */
typedef int element_fn(struct scan *s, void *arg);

static int array(struct scan *s, element_fn *element, void *arg,
                 size_t *count)
{
    size_t n = 0;

    if (++s->depth > MAX_DEPTH)
        return FULL;
    if (!eat(s, ']')) {
        for (;;) {
            ws(s);
            if ((element != NULL ? element(s, arg) : value(s)) != OK)
                return FULL;
            n++;
            if (eat(s, ','))
                continue;
            if (eat(s, ']'))
                break;
            return FULL;
        }
    }
    if (count != NULL)
        *count = n;
    s->depth--;
    return OK;
}

/* Any value, checked and skipped (white space before it read). */
static int value(struct scan *s)
{
    const char *str;
    size_t bytes, raw;
    bool escaped, integer;
    long long v;

    if (s->p >= s->end)
        return FULL;
    switch (*s->p) {
    case '{':
        s->p++;
        return object(s, NULL, NULL);
    case '[':
        s->p++;
        return array(s, NULL, NULL, NULL);
    case '"':
        return string(s, &bytes, &escaped, &str, &raw);
    case 't':
        return literal(s, "true");
    case 'f':
        return literal(s, "false");
    case 'n':
        return literal(s, "null");
    default:
        return number(s, &integer, &v);
    }
}

static bool key_is(const char *key, size_t klen, const char *name)
{
    return strlen(name) == klen && memcmp(key, name, klen) == 0;
}

/* Marks member bit of an object as read; false when it was already: a
 * duplicate key, whose last value jansson keeps, so the full parse
 * decides. */
static bool first_seen(unsigned *seen, unsigned bit)
{
    if (*seen & bit)
        return false;
    *seen |= bit;
    return true;
}

/* Is the value at s->p opened by c ('{' or '[')? Consumes c when it is. */
static bool opens(struct scan *s, unsigned char c)
{
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

/* A string value: *len its decoded bytes; 0 when it is another value. */
static int string_len(struct scan *s, size_t *len)
{
    const char *str;
    size_t raw;
    bool escaped;

    *len = 0;
    if (s->p < s->end && *s->p == '"')
        return string(s, len, &escaped, &str, &raw);
    return value(s);
}

/* Members of a chat delta. */
struct delta {
    size_t text;       /* content + reasoning_content + reasoning */
    bool tools;        /* a non-empty tool_calls array */
    unsigned seen;
};

static int delta_member(struct scan *s, const char *key, size_t klen,
                        void *arg)
{
    static const char *const names[] = {"content", "reasoning_content",
                                        "reasoning", "tool_calls"};
    struct delta *d = arg;

    for (unsigned i = 0; i < 4; i++) {
        size_t n;
        if (!key_is(key, klen, names[i]))
            continue;
        if (!first_seen(&d->seen, 1u << i))
            return FULL;
        if (i < 3) {
            if (string_len(s, &n) != OK)
                return FULL;
            d->text += n;
            return OK;
        }
        if (!opens(s, '['))
            return value(s);
        if (array(s, NULL, NULL, &n) != OK)
            return FULL;
        d->tools = n > 0;
        return OK;
    }
    return value(s);
}

/* Members of one choice. */
struct choice {
    bool chat;
    size_t content;
    bool finished;
    unsigned seen;
};

static int choice_member(struct scan *s, const char *key, size_t klen,
                         void *arg)
{
    struct choice *c = arg;

    if (key_is(key, klen, "finish_reason")) {
        if (!first_seen(&c->seen, 1u))
            return FULL;
        c->finished = s->p < s->end && *s->p == '"';
        return value(s);
    }
    if (c->chat && key_is(key, klen, "delta")) {
        struct delta d = {0, false, 0};
        if (!first_seen(&c->seen, 2u))
            return FULL;
        if (!opens(s, '{'))
            return value(s);
        if (object(s, delta_member, &d) != OK)
            return FULL;
        c->content = d.text == 0 && d.tools ? 1 : d.text;
        return OK;
    }
    if (!c->chat && key_is(key, klen, "text")) {
        if (!first_seen(&c->seen, 2u))
            return FULL;
        return string_len(s, &c->content);
    }
    return value(s);
}

static int choice_element(struct scan *s, void *arg)
{
    struct llmb_llm_chunk *ck = arg;
    struct choice c = {ck->chat, 0, false, 0};

    if (!opens(s, '{'))
        return value(s);
    if (object(s, choice_member, &c) != OK)
        return FULL;
    ck->content += c.content;
    if (c.finished)
        ck->finished = true;
    return OK;
}

/* A usage count: a non-negative integer, else not given (-1). */
static int count(struct scan *s, long *out)
{
    bool integer = false;
    long long v = -1;

    if (s->p < s->end && (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))) {
        if (number(s, &integer, &v) != OK)
            return FULL;
        *out = integer && v >= 0 ? (long)v : -1;
        return OK;
    }
    *out = -1;
    return value(s);
}

struct usage {
    long prompt, completion;
    unsigned seen;
};

static int usage_member(struct scan *s, const char *key, size_t klen,
                        void *arg)
{
    struct usage *u = arg;

    if (key_is(key, klen, "prompt_tokens")) {
        if (!first_seen(&u->seen, 1u))
            return FULL;
        return count(s, &u->prompt);
    }
    if (key_is(key, klen, "completion_tokens")) {
        if (!first_seen(&u->seen, 2u))
            return FULL;
        return count(s, &u->completion);
    }
    return value(s);
}

struct top {
    struct llmb_llm_chunk *ck;
    unsigned seen;
};

static int top_member(struct scan *s, const char *key, size_t klen,
                      void *arg)
{
    struct top *t = arg;
    struct llmb_llm_chunk *ck = t->ck;

    if (key_is(key, klen, "choices")) {
        if (!first_seen(&t->seen, 1u))
            return FULL;
        if (!opens(s, '['))
            return value(s);
        return array(s, choice_element, ck, NULL);
    }
    if (key_is(key, klen, "usage")) {
        struct usage u = {-1, -1, 0};
        if (!first_seen(&t->seen, 2u))
            return FULL;
        if (!opens(s, '{'))
            return value(s);
        if (object(s, usage_member, &u) != OK)
            return FULL;
        ck->prompt_tokens = u.prompt;
        ck->completion_tokens = u.completion;
        return OK;
    }
    if (key_is(key, klen, "error")) {
        if (literal(s, "null") != OK)
            return FULL; /* an error to report: the full parse words it */
        if (!first_seen(&t->seen, 4u))
            return FULL;
        return OK;
    }
    return value(s);
}

int llmb_llm_chunk_scan(const char *data, size_t len, bool chat,
                        struct llmb_llm_chunk *ck)
{
    struct scan s = {(const unsigned char *)data,
                     (const unsigned char *)data + len, 0};
    struct top t = {ck, 0};

    memset(ck, 0, sizeof(*ck));
    ck->chat = chat;
    ck->prompt_tokens = ck->completion_tokens = -1;
    if (!eat(&s, '{'))
        return FULL;
    if (object(&s, top_member, &t) != OK)
        return FULL;
    ws(&s);
    return s.p == s.end ? OK : FULL;
}
