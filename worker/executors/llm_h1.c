/*
 * An HTTP/1.1 response read incrementally (RFC 9112) for llm_conn.c: the
 * connection's bytes are fed as they come, cut anywhere, and the body's
 * bytes go to a callback as runs of the caller's own buffer.
 *
 * The head and the chunk framing are read a line at a time: a line ends
 * with LF, a CR before it is dropped, and up to sizeof(p->line) bytes of
 * it (CR and LF not counted) are kept. The body itself is never looked at
 * byte by byte: a run is cut by length arithmetic only.
 *
 * What counts against LLMB_H1_HEAD_MAX: every byte from the status line's
 * first to the LF of the empty line that ends the head, line ends
 * included; each interim 1xx response is counted apart, and so is the
 * trailer section of a chunked body (from the line after the last chunk's
 * size line to the LF of the empty line ending it).
 */
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <llmb/util.h>

#include "llm_h1.h"

enum {
    S_STATUS,     /* a status line */
    S_HEADER,     /* header lines, up to the empty one */
    S_BODY_LEN,   /* Content-Length bytes */
    S_BODY_CLOSE, /* everything up to the connection's end */
    S_CHUNK_SIZE, /* a chunk size line */
    S_CHUNK_DATA, /* a chunk's bytes */
    S_CHUNK_CR,   /* the CRLF after a chunk's bytes */
    S_CHUNK_LF,
    S_TRAILER,    /* trailer lines after the last chunk, skipped */
    S_DONE,
    S_ERROR
};

#define H1_STR(x) #x
#define H1_XSTR(x) H1_STR(x)

static int fail(struct llmb_h1 *p, const char *msg)
{
    p->state = S_ERROR;
    p->error = msg;
    return LLMB_H1_ERROR;
}

void llmb_h1_init(struct llmb_h1 *p, bool head)
{
    memset(p, 0, sizeof(*p));
    p->retry_after_s = -1;
    p->no_body = head;
    p->state = S_STATUS;
}

/* Takes the bytes of the line being read up to its LF, keeping what fits;
 * returns the bytes used and sets *eol when the LF was among them. */
static size_t line_take(struct llmb_h1 *p, const char *buf, size_t n,
                        bool *eol)
{
    const char *lf = memchr(buf, '\n', n);
    size_t seg = lf ? (size_t)(lf - buf) : n;

    if (p->line_len < sizeof(p->line)) {
        size_t room = sizeof(p->line) - p->line_len;

        memcpy(p->line + p->line_len, buf, seg < room ? seg : room);
    }
    if (seg > 0) {
        p->cr = buf[seg - 1] == '\r';
        p->line_len += seg;
    }
    *eol = lf != NULL;
    return lf ? seg + 1 : seg;
}

/* The line's length without its CR, which may exceed the bytes kept. */
static size_t line_content(const struct llmb_h1 *p)
{
    return p->line_len - (p->cr ? 1 : 0);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_ows(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_ows((*s)[*n - 1]))
        (*n)--;
}

static bool eq_ci(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

/* "HTTP/1.x SSS reason" (the reason may be empty, its SP too). */
static int status_line(struct llmb_h1 *p, const char *s, size_t n)
{
    int code;

    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' ||
        s[7] > '9' || s[8] != ' ' || s[9] < '1' || s[9] > '5' ||
        s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9' ||
        (n > 12 && s[12] != ' '))
        return fail(p, "not an HTTP/1.x response: a bad status line");
    code = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (code == 101)
        return fail(p, "101 Switching Protocols is not expected");
    p->interim = code < 200;
    if (!p->interim) {
        p->code = code;
        p->http10 = s[7] == '0';
    }
    p->state = S_HEADER;
    return 0;
}

static int content_length(struct llmb_h1 *p, const char *v, size_t n)
{
    int64_t len = 0;

    if (n == 0)
        return fail(p, "an empty Content-Length");
    for (size_t i = 0; i < n; i++) {
        int d = v[i] - '0';

        if (d < 0 || d > 9)
            return fail(p, "a Content-Length that is not a number");
        if (len > (INT64_MAX - d) / 10)
            return fail(p, "a Content-Length too large");
        len = len * 10 + d;
    }
    if (p->has_len && len != p->content_length)
        return fail(p, "two different Content-Lengths");
    p->has_len = true;
    p->content_length = len;
    return 0;
}

/* Only the last coding matters: chunked there frames the body. */
static void transfer_encoding(struct llmb_h1 *p, const char *v, size_t n)
{
    const char *last = v;
    size_t last_n = n;
    const char *comma;

    while ((comma = memchr(v, ',', n)) != NULL) {
        const char *t = v;
        size_t tn = (size_t)(comma - v);

        trim(&t, &tn);
        if (tn > 0) {
            last = t;
            last_n = tn;
        }
        n -= (size_t)(comma - v) + 1;
        v = comma + 1;
    }
    trim(&v, &n);
    if (n > 0) {
        last = v;
        last_n = n;
    }
    trim(&last, &last_n);
    if (last_n == 0)
        return; /* an empty list: no coding named */
    p->has_te = true;
    p->te_chunked = eq_ci(last, last_n, "chunked");
}

static void connection(struct llmb_h1 *p, const char *v, size_t n)
{
    while (n > 0) {
        const char *comma = memchr(v, ',', n);
        size_t tn = comma ? (size_t)(comma - v) : n;
        const char *t = v;
        size_t used = comma ? tn + 1 : tn;

        trim(&t, &tn);
        if (eq_ci(t, tn, "close"))
            p->conn_close = true;
        else if (eq_ci(t, tn, "keep-alive"))
            p->conn_keep = true;
        v += used;
        n -= used;
    }
}

static int two_digits(const char *s)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return -1;
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* An IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT", as a time; -1 when it
 * is not one (the obsolete RFC 850 and asctime forms are not read). */
static time_t imf_fixdate(const char *s, size_t n)
{
    static const char days[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    struct tm tm;
    int day = -1, mon = -1, y1, y2;

    if (n != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' ||
        s[11] != ' ' || s[16] != ' ' || s[19] != ':' || s[22] != ':' ||
        s[25] != ' ' || memcmp(s + 26, "GMT", 3) != 0)
        return -1;
    for (int i = 0; i < 7; i++)
        if (memcmp(s, days + 3 * i, 3) == 0)
            day = i;
    for (int i = 0; i < 12; i++)
        if (memcmp(s + 8, months + 3 * i, 3) == 0)
            mon = i;
    memset(&tm, 0, sizeof(tm));
    tm.tm_mday = two_digits(s + 5);
    y1 = two_digits(s + 12);
    y2 = two_digits(s + 14);
    tm.tm_hour = two_digits(s + 17);
    tm.tm_min = two_digits(s + 20);
    tm.tm_sec = two_digits(s + 23);
    if (day < 0 || mon < 0 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        y1 < 0 || y2 < 0 || tm.tm_hour < 0 || tm.tm_hour > 23 ||
        tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 ||
        tm.tm_sec > 60)
        return -1;
    tm.tm_mon = mon;
    tm.tm_year = y1 * 100 + y2 - 1900;
    return timegm(&tm);
}

/* delay-seconds or an HTTP-date; -1 when neither (or too large). */
static long retry_after(const char *v, size_t n)
{
    long s = 0;
    time_t t;

    if (n > 0 && v[0] >= '0' && v[0] <= '9') {
        for (size_t i = 0; i < n; i++) {
            int d = v[i] - '0';

            if (d < 0 || d > 9 || s > (LONG_MAX - d) / 10)
                return -1;
            s = s * 10 + d;
        }
        return s;
    }
    t = imf_fixdate(v, n);
    if (t == (time_t)-1)
        return -1;
    t -= time(NULL);
    return t < 0 ? 0 : (long)t;
}

/* The status line and headers are in: how the body is delimited. */
static void head_end(struct llmb_h1 *p)
{
    p->status = p->code;
    p->head_done = true;
    p->keep_alive = p->http10 ? p->conn_keep && !p->conn_close
                              : !p->conn_close;
    if (p->code == 204 || p->code == 304)
        p->no_body = true;
    if (p->no_body) {
        p->state = S_DONE;
    } else if (p->has_te && p->te_chunked) {
        /* RFC 9112 6.1 and 6.3: chunked wins over a Content-Length, and
         * either framing fault makes the connection unfit for reuse. */
        if (p->has_len || p->http10)
            p->keep_alive = false;
        p->chunked = true;
        p->line_len = 0;
        p->state = S_CHUNK_SIZE;
    } else if (p->has_te) {
        p->until_close = true;
        p->keep_alive = false;
        p->state = S_BODY_CLOSE;
    } else if (p->has_len) {
        p->left = p->content_length;
        p->state = p->left > 0 ? S_BODY_LEN : S_DONE;
    } else {
        p->until_close = true;
        p->keep_alive = false;
        p->state = S_BODY_CLOSE;
    }
    if (p->state == S_DONE)
        p->done = true;
}

#define H1_LINE_MSG "a header line longer than 1024 bytes"

/* One header line (or the empty line ending the head). */
static int header_line(struct llmb_h1 *p)
{
    size_t len = line_content(p);
    bool cut = len > sizeof(p->line);
    const char *s = p->line, *colon, *v;
    size_t kept = cut ? sizeof(p->line) : len, nlen, vlen;

    if (len == 0) {
        if (p->interim) { /* a 1xx: the real response follows */
            p->state = S_STATUS;
            p->head_len = 0;
            return 0;
        }
        head_end(p);
        return 0;
    }
    if (is_ows(s[0]))
        return fail(p, "a folded header line (obsolete line folding)");
    colon = memchr(s, ':', kept);
    if (colon == NULL)
        return fail(p, cut ? H1_LINE_MSG : "a header line without ':'");
    nlen = (size_t)(colon - s);
    if (nlen == 0)
        return fail(p, "a header line with no name before ':'");
    for (size_t i = 0; i < nlen; i++)
        if (is_ows(s[i]))
            return fail(p, "whitespace in a header's name");
    if (p->interim)
        return 0;
    v = colon + 1;
    vlen = kept - nlen - 1;
    trim(&v, &vlen);
    if (eq_ci(s, nlen, "content-type")) {
        if (cut)
            return fail(p, H1_LINE_MSG);
        if (vlen > LLMB_H1_CTYPE_MAX - 1)
            vlen = LLMB_H1_CTYPE_MAX - 1;
        memcpy(p->content_type, v, vlen);
        p->content_type[vlen] = '\0';
    } else if (eq_ci(s, nlen, "content-length")) {
        return cut ? fail(p, H1_LINE_MSG) : content_length(p, v, vlen);
    } else if (eq_ci(s, nlen, "transfer-encoding")) {
        if (cut)
            return fail(p, H1_LINE_MSG);
        transfer_encoding(p, v, vlen);
    } else if (eq_ci(s, nlen, "connection")) {
        if (cut)
            return fail(p, H1_LINE_MSG);
        connection(p, v, vlen);
    } else if (eq_ci(s, nlen, "retry-after")) {
        if (cut)
            return fail(p, H1_LINE_MSG);
        p->retry_after_s = retry_after(v, vlen);
    }
    return 0;
}

/* "1a2b;ext=1": at most 15 significant hex digits (the size fits an
 * int64_t), then optional whitespace and extensions, ignored. */
static int chunk_size_line(struct llmb_h1 *p)
{
    size_t len = line_content(p), i = 0;
    int64_t size = 0;
    int digits = 0;

    if (len > sizeof(p->line))
        return fail(p, "a chunk size line longer than 1024 bytes");
    for (; i < len; i++) {
        int d = llmb_hex_digit((unsigned char)p->line[i]);

        if (d < 0)
            break;
        if (size > 0 || d > 0)
            digits++;
        if (digits > 15)
            return fail(p, "a chunk size of more than 15 hex digits");
        size = size * 16 + d;
    }
    if (i == 0)
        return fail(p, "a bad chunk size");
    while (i < len && is_ows(p->line[i]))
        i++;
    if (i < len && p->line[i] != ';')
        return fail(p, "a bad chunk size");
    if (size == 0) {
        p->state = S_TRAILER;
        p->head_len = 0;
    } else {
        p->left = size;
        p->state = S_CHUNK_DATA;
    }
    return 0;
}

/* A line of the head, of a chunk size or of the trailers is complete. */
static int line_end(struct llmb_h1 *p)
{
    int rc = 0;

    switch (p->state) {
    case S_STATUS:
        if (line_content(p) > sizeof(p->line))
            rc = fail(p, "not an HTTP/1.x response: a status line "
                         "longer than 1024 bytes");
        else
            rc = status_line(p, p->line, line_content(p));
        break;
    case S_HEADER:
        rc = header_line(p);
        break;
    case S_CHUNK_SIZE:
        rc = chunk_size_line(p);
        break;
    case S_TRAILER:
        if (line_content(p) == 0) {
            p->state = S_DONE;
            p->done = true;
        }
        break;
    }
    p->line_len = 0;
    p->cr = false;
    return rc;
}

/* Hands on a run of body bytes; LLMB_H1_STOPPED when told to stop. */
static int emit(struct llmb_h1 *p, llmb_h1_body_fn *body, void *arg,
                const char *data, size_t len)
{
    if (body == NULL || len == 0 || body(arg, data, len) == 0)
        return 0;
    p->state = S_ERROR;
    p->error = "the body's reader stopped the response";
    return LLMB_H1_STOPPED;
}

ssize_t llmb_h1_feed(struct llmb_h1 *p, const char *buf, size_t n,
                     llmb_h1_body_fn *body, void *arg)
{
    size_t at = 0;

    if (p->state == S_DONE)
        return fail(p, "bytes fed after the response's end");
    if (p->state == S_ERROR)
        return LLMB_H1_ERROR;
    if (n > 0)
        p->fed = true;
    while (at < n && p->state != S_DONE) {
        size_t take;
        bool eol;

        switch (p->state) {
        case S_STATUS:
        case S_HEADER:
        case S_TRAILER:
            take = line_take(p, buf + at, n - at, &eol);
            at += take;
            p->head_len += take;
            if (p->head_len > LLMB_H1_HEAD_MAX)
                return fail(p, p->state == S_TRAILER
                                   ? "trailers longer than "
                                     H1_XSTR(LLMB_H1_HEAD_MAX) " bytes"
                                   : "a response head longer than "
                                     H1_XSTR(LLMB_H1_HEAD_MAX) " bytes");
            if (eol && line_end(p) < 0)
                return LLMB_H1_ERROR;
            break;
        case S_CHUNK_SIZE:
            take = line_take(p, buf + at, n - at, &eol);
            at += take;
            /* Bounded before its end too: +1 for a CR yet to be seen. */
            if (p->line_len > sizeof(p->line) + 1)
                return fail(p, "a chunk size line longer than 1024 bytes");
            if (eol && line_end(p) < 0)
                return LLMB_H1_ERROR;
            break;
        case S_BODY_LEN:
        case S_CHUNK_DATA:
            take = n - at;
            if ((uint64_t)p->left < take)
                take = (size_t)p->left;
            p->left -= (int64_t)take;
            if (p->left == 0)
                p->state = p->state == S_CHUNK_DATA ? S_CHUNK_CR : S_DONE;
            if (p->state == S_DONE)
                p->done = true;
            if (emit(p, body, arg, buf + at, take) < 0)
                return LLMB_H1_STOPPED;
            at += take;
            break;
        case S_BODY_CLOSE:
            take = n - at;
            if (emit(p, body, arg, buf + at, take) < 0)
                return LLMB_H1_STOPPED;
            at += take;
            break;
        case S_CHUNK_CR:
        case S_CHUNK_LF:
            /* CRLF, or a bare LF (a line end RFC 9112 2.2 lets us take). */
            if (buf[at] == '\n') {
                p->state = S_CHUNK_SIZE;
            } else if (buf[at] == '\r' && p->state == S_CHUNK_CR) {
                p->state = S_CHUNK_LF;
            } else {
                return fail(p, "no CRLF after a chunk's data");
            }
            at++;
            break;
        default:
            return fail(p, "the HTTP/1.1 parser is in a bad state");
        }
    }
    return (ssize_t)at;
}

int llmb_h1_eof(struct llmb_h1 *p)
{
    switch (p->state) {
    case S_DONE:
        return 0;
    case S_BODY_CLOSE:
        p->state = S_DONE;
        p->done = true;
        return 0;
    case S_ERROR:
        return LLMB_H1_ERROR;
    case S_STATUS:
        if (!p->fed)
            return fail(p, "the connection closed before a response");
        /* fall through */
    case S_HEADER:
        return fail(p, "the connection closed within the response's head");
    default:
        return fail(p, "the connection closed within the response's body");
    }
}
