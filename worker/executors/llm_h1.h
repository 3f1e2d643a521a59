/*
 * An HTTP/1.1 response read incrementally (RFC 9112), for the llm
 * executor's own client of plain-HTTP endpoints (llm_conn.c): the status
 * line, the headers it needs, and the body decoded from chunked transfer
 * coding, from Content-Length or up to the end of the connection. Bytes
 * are fed as they come, cut anywhere; the body's bytes are handed on
 * without a copy. No allocation: every limit is a constant below.
 */
#ifndef LLMB_WORKER_LLM_H1_H
#define LLMB_WORKER_LLM_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The most bytes of a status line and headers, from the status line's
 * first byte to the LF of the empty line ending them, line ends included
 * (each interim 1xx response counted apart, and a chunked body's trailers
 * too): a larger head is an error. */
#define LLMB_H1_HEAD_MAX 65536
/* The most bytes kept of Content-Type's value (the rest is dropped). */
#define LLMB_H1_CTYPE_MAX 128

/* The body's bytes, decoded; return 0 to go on, non-zero to stop (the
 * feed then returns LLMB_H1_STOPPED). */
typedef int llmb_h1_body_fn(void *arg, const char *data, size_t len);

#define LLMB_H1_ERROR (-1)   /* malformed: see .error */
#define LLMB_H1_STOPPED (-2) /* the body callback asked to stop */

struct llmb_h1 {
    /* --- read by the caller --- */
    int status;           /* the final status (>= 200), 0 before its head */
    bool head_done;       /* the final response's head is in */
    bool done;            /* the whole response is in */
    bool keep_alive;      /* the connection may carry another request
                             once done: HTTP/1.1 without "Connection:
                             close", HTTP/1.0 with "keep-alive", and a
                             body not delimited by the connection's end */
    char content_type[LLMB_H1_CTYPE_MAX]; /* "" when none */
    long retry_after_s;   /* Retry-After in seconds (delay-seconds, or an
                             HTTP-date less the present, at least 0);
                             -1 when none or unreadable */
    const char *error;    /* a static message after LLMB_H1_ERROR */
    /* --- the parser's own --- */
    int state;
    bool no_body;         /* 204, 304, or a response to HEAD */
    bool chunked;
    bool until_close;
    int64_t left;         /* bytes of the current chunk or of the body */
    size_t head_len;      /* bytes of the head so far */
    size_t line_len;      /* bytes of the line so far, may exceed
                             sizeof(line) (only that much is kept) */
    char line[1024];      /* a line of the head or a chunk size line
                             being assembled, without its CRLF (longer
                             header lines are skipped, not kept, unless
                             they are one the parser reads; a longer
                             status or chunk size line is an error) */
    bool cr;              /* the line's last byte so far is a CR */
    bool fed;             /* a byte has come */
    bool interim;         /* the head being read is a 1xx one */
    bool http10;          /* the final response is HTTP/1.0 */
    bool has_len;         /* Content-Length: content_length */
    bool has_te;          /* Transfer-Encoding, its last coding: */
    bool te_chunked;
    bool conn_close;      /* Connection: close */
    bool conn_keep;       /* Connection: keep-alive */
    int code;             /* the final status, once its line is read */
    int64_t content_length;
};

/* Ready for a response to a request (head: the request was HEAD). */
void llmb_h1_init(struct llmb_h1 *p, bool head);

/* Feeds n bytes (n > 0). Calls body for each run of body bytes. Returns
 * the bytes used (fewer than n only once .done: the rest follows the
 * response, which a client that does not pipeline treats as an error),
 * LLMB_H1_ERROR or LLMB_H1_STOPPED. */
ssize_t llmb_h1_feed(struct llmb_h1 *p, const char *buf, size_t n,
                     llmb_h1_body_fn *body, void *arg);

/* The connection ended. Returns 0 when that completes the response (a
 * body delimited by the end: .done is set then), else LLMB_H1_ERROR with
 * .error saying what was cut short. */
int llmb_h1_eof(struct llmb_h1 *p);

#endif
