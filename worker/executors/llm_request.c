/*
 * One request of an llm run: a POST of the spec's body to the endpoint,
 * sent by llmb's own HTTP/1.1 client (llm_conn.c: plain HTTP) or as one
 * curl easy handle on the instance's multi handle (llm_multi.c), read
 * incrementally (llm_response.c), classified, retried by policy and
 * turned into a record for the run (llm_run.c). Both clients hand over
 * the same things (status, content type, body bytes, a CURLcode and an
 * error text), so that what follows does not depend on the client.
 *
 * Timing. The clock starts when the request is written on its socket:
 * the own client stamps it just before its sendmsg (llm_conn.c's sent
 * callback), and every byte it reads with the kernel's receive time
 * (each recvmsg gives it), so that TTFT, TTFB, every token gap and the
 * end are the times the bytes reached the machine. On libcurl's client:
 * curl calls CURLOPT_PREREQFUNCTION (libcurl 7.80 and later) once the
 * connection is ready, and in the same call goes on to write the request
 * (headers and body together, the body being small), so that callback
 * stamps the send with our monotonic clock. libcurl 7.88 has no absolute
 * send time to read afterwards: CURLINFO_PRETRANSFER_TIME_T and
 * STARTTRANSFER_TIME_T count from curl's own start of the handle, which
 * is on no clock of ours and itself comes only when curl first runs the
 * handle, a loop pass or more after it was added (QUEUE_TIME_T and
 * POSTTRANSFER_TIME_T came in 8.6 and 8.10). The time from when the
 * request was due (arrived, with a free slot) to that send is the
 * client's own delay, send_delay_ms, reported apart (it includes opening
 * a new connection). Up to the first content chunk of a streamed
 * response, the bytes are stamped with the time the kernel received them
 * (llmb_llm_multi_arrival: SO_TIMESTAMPNS, peeked before curl reads), so
 * that neither a busy loop nor a preempted worker makes TTFT and TTFB
 * late; the later ones, and any the kernel gives no time for, with the
 * time the loop's poll reported them (llmb_llm_multi_now: in the first
 * millisecond of a pass), not when curl got round to passing them to the
 * write callback. TTFT is the time from the send to the first content
 * chunk and ITL the mean gap between content chunks; e2e ends with the
 * pass in which curl reports the transfer done.
 *
 * Classes and retries. No HTTP response at all is `connect` (also a
 * connection not made in time); curl's timeout (timeout_s for the whole
 * attempt, so a stalled stream too) on a connected request is `timeout`;
 * 429 is `http_429`, other 4xx `http_4xx`, 5xx `http_5xx`; anything
 * else that went wrong (a broken or unfinished stream, bad SSE or JSON,
 * an in-band error, an unexpected status) is `protocol`. `http_429`,
 * `http_5xx` and `connect` are retried up to the spec's retries, after the
 * server's Retry-After (at most 60 s) or else a capped exponential backoff
 * with jitter from retry_backoff_ms; the others are final at once. The
 * record of a retried request is its last attempt's, with its attempt
 * count.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <llmb/backoff.h>
#include <llmb/err.h>
#include <llmb/log.h>

#include "llm.h"

#define MAX_BODY (16 * 1024 * 1024)    /* non-streaming body kept */
#define MAX_ERROR_BODY 4096            /* error body kept */
#define RETRY_AFTER_CAP_MS 60000
#define BACKOFF_CAP_MS 30000
#define CONNECT_TIMEOUT_MS 10000L

struct llmb_llm_req {
    struct llmb_llm_xfer x;    /* the transfer; x.easy NULL between tries */
    struct llmb_llm_exch ex;   /* or the own client's (llm_conn.c) */
    bool own;                  /* this attempt is ex's */
    bool in_own;               /* ex is under way */
    char clen[48];             /* ex's Content-Length line */
    struct llmb_llm_run *run;
    long index;
    size_t slot;               /* the run's slot for it */
    long attempt;              /* 1 for the first */
    double queued_ms;
    int64_t due_us;            /* due: the first attempt's arrival with a
                                  slot, a retry's end of backoff */
    int64_t t0_us;             /* this attempt written on its socket */
    bool on_wire;              /* sent and not ended (client counts) */
    long status;               /* HTTP status, once the headers are in */
    bool started;              /* the write callback has run */
    bool sse;                  /* the body is an event stream */
    bool aborted;              /* the write callback stopped the transfer */
    bool in_multi;
    struct llmb_llm_resp resp;
    struct llmb_buf body;      /* JSON body, or the start of an error */
    char *out;                 /* the request body of a workload (owned),
                                  else NULL: the spec's body */
    size_t out_len;
    size_t input_chars;        /* its prompt bytes, for the estimate */
    struct llmb_llm_record fail; /* set up by a failure to start */
    char errbuf[CURL_ERROR_SIZE];
    ev_timer wait;             /* retry backoff, or a failure to report */
};

static void xfer_done(struct llmb_llm_xfer *x, CURLcode rc);

static struct ev_loop *req_loop(const struct llmb_llm_req *req)
{
    return llmb_llm_multi_loop(llmb_llm_run_multi(req->run));
}

/* Frees what one attempt holds. */
static void attempt_clear(struct llmb_llm_req *req)
{
    if (req->on_wire) {
        llmb_llm_client_ended(llmb_llm_run_client(req->run), llmb_mono_us());
        req->on_wire = false;
    }
    if (req->in_own) {
        llmb_llm_exch_stop(&req->ex);
        req->in_own = false;
    }
    if (req->x.easy != NULL) {
        if (req->in_multi)
            llmb_llm_multi_remove(llmb_llm_run_multi(req->run), &req->x);
        llmb_curl.easy_cleanup(req->x.easy);
        req->x.easy = NULL;
    }
    req->in_multi = false;
    llmb_llm_resp_fini(&req->resp);
    llmb_buf_reset(&req->body);
}

void llmb_llm_req_free(struct llmb_llm_req *req)
{
    if (req == NULL)
        return;
    ev_timer_stop(req_loop(req), &req->wait);
    attempt_clear(req);
    llmb_buf_fini(&req->body);
    free(req->out);
    free(req->fail.message);
    free(req);
}

/* The response's start: its status and content type (NULL: none). */
static void head_in(struct llmb_llm_req *req, long status, const char *ct)
{
    req->started = true;
    req->status = status;
    /* An event stream when it says so, or when streaming was asked and it
     * does not say JSON (some servers label SSE text/plain). */
    if (ct != NULL && strncasecmp(ct, "text/event-stream", 17) == 0)
        req->sse = true;
    else
        req->sse = llmb_llm_run_spec(req->run)->stream &&
                   (ct == NULL || strstr(ct, "json") == NULL);
}

/* n bytes of the response body, which arrived at now. Returns 0, or -1
 * when the transfer is to stop (req->aborted). */
static int body_in(struct llmb_llm_req *req, const char *ptr, size_t n,
                   int64_t now)
{
    if (req->status < 200 || req->status >= 300) {
        if (req->body.len < MAX_ERROR_BODY)
            llmb_buf_append(&req->body, ptr,
                            n < MAX_ERROR_BODY - req->body.len ? n :
                            MAX_ERROR_BODY - req->body.len);
        return 0;
    }
    if (req->sse) {
        if (llmb_llm_resp_feed(&req->resp, ptr, n, now) != 0) {
            req->aborted = true;
            return -1;
        }
        return 0;
    }
    if (req->body.len + n > MAX_BODY) {
        free(req->resp.error);
        req->resp.error = llmb_xasprintf("the response body is larger than "
                                         "%d bytes", MAX_BODY);
        req->aborted = true;
        return -1;
    }
    llmb_buf_append(&req->body, ptr, n);
    return 0;
}

/* CURLOPT_WRITEFUNCTION: the response body as it arrives. */
static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct llmb_llm_req *req = userdata;
    struct llmb_llm_multi *mu = llmb_llm_run_multi(req->run);
    size_t n = size * nmemb;
    int64_t now = llmb_llm_multi_arrival(mu, &req->x, req->t0_us);

    if (!req->started) {
        long status = 0;
        char *ct = NULL;
        llmb_curl.easy_getinfo(req->x.easy, CURLINFO_RESPONSE_CODE, &status);
        llmb_curl.easy_getinfo(req->x.easy, CURLINFO_CONTENT_TYPE, &ct);
        head_in(req, status, ct);
    }
    if (body_in(req, ptr, n, now) != 0)
        return 0;
    if (req->sse && req->x.arrival && req->resp.chunks > 0)
        llmb_llm_multi_arrival_off(mu, &req->x);
    return n;
}

/* The request whose own-client exchange e is. */
static struct llmb_llm_req *req_of(struct llmb_llm_exch *e)
{
    return (struct llmb_llm_req *)((char *)e -
                                   offsetof(struct llmb_llm_req, ex));
}

/* The own client's body callback (llm_conn.c). */
static int ex_body(void *arg, const char *ptr, size_t n)
{
    struct llmb_llm_exch *e = arg;
    struct llmb_llm_req *req = req_of(e);
    int64_t now = llmb_llm_multi_stamp(e->mu, e, req->t0_us);

    if (!req->started)
        head_in(req, e->resp.status, e->resp.content_type[0] != '\0' ?
                e->resp.content_type : NULL);
    return body_in(req, ptr, n, now);
}

/* The request goes on the wire now (again, when it is resent on a
 * fresh connection): the clock starts. */
static void sending(struct llmb_llm_req *req)
{
    req->t0_us = llmb_mono_us();
    if (!req->on_wire) {
        req->on_wire = true;
        llmb_llm_client_sent(llmb_llm_run_client(req->run), req->t0_us);
    }
}

static void ex_sent(struct llmb_llm_exch *e)
{
    sending(req_of(e));
}

/* CURLOPT_PREREQFUNCTION: the connection is ready and curl writes the
 * request right after this returns, in the same call. Runs again when
 * curl resends on a fresh connection (a reused one was closed). */
static int prereq_cb(void *userdata, char *primary_ip, char *local_ip,
                     int primary_port, int local_port)
{
    struct llmb_llm_req *req = userdata;

    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    /* TTFT and TTFB end at the kernel's receive time */
    req->x.arrival = llmb_llm_run_spec(req->run)->stream;
    sending(req);
    return CURL_PREREQFUNC_OK;
}

static void ex_done(struct llmb_llm_exch *e, CURLcode rc);

/* Starts an attempt on the own client (llm_conn.c). */
static void own_start(struct llmb_llm_req *req, const char *head,
                      size_t head_len, const char *origin, long timeout_ms)
{
    const struct llmb_llm_spec *spec = llmb_llm_run_spec(req->run);
    struct llmb_llm_exch *e = &req->ex;
    size_t blen = req->out != NULL ? req->out_len : spec->body_len;
    int n = snprintf(req->clen, sizeof(req->clen), "%zu\r\n\r\n", blen);

    e->url = spec->url;
    e->origin = origin;
    e->out[0].iov_base = (void *)head;
    e->out[0].iov_len = head_len;
    e->out[1].iov_base = req->clen;
    e->out[1].iov_len = (size_t)n;
    e->out[2].iov_base = (void *)(req->out != NULL ? req->out : spec->body);
    e->out[2].iov_len = blen;
    e->timeout_s = (double)timeout_ms / 1000.0;
    e->connect_timeout_ms = timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms :
                            CONNECT_TIMEOUT_MS;
    e->key = req->slot;
    e->errbuf = req->errbuf;
    e->sent = ex_sent;
    e->body = ex_body;
    e->done = ex_done;
    req->own = req->in_own = true;
    req->t0_us = 0;
    llmb_llm_exch_start(llmb_llm_run_multi(req->run), e);
}

/* Starts one attempt. Returns 0, or -1 with req->fail set. */
static int attempt_start(struct llmb_llm_req *req)
{
    const struct llmb_llm_spec *spec = llmb_llm_run_spec(req->run);
    long timeout_ms = (long)ceil(spec->timeout_s * 1000.0);
    const char *origin;
    size_t head_len;
    const char *head = llmb_llm_run_h1_head(req->run, &head_len, &origin);
    CURL *e;

    llmb_llm_resp_init(&req->resp, spec->chat);
    req->status = 0;
    req->started = req->sse = req->aborted = false;
    req->errbuf[0] = '\0';
    req->own = false;
    if (head != NULL) {
        own_start(req, head, head_len, origin, timeout_ms);
        return 0;
    }
    e = llmb_curl.easy_init();
    if (e == NULL) {
        req->fail.cls = LLMB_LLM_CONNECT;
        req->fail.message = llmb_xstrdup("curl_easy_init failed");
        return -1;
    }
    req->x.easy = e;
    req->x.done = xfer_done;
    req->x.arrival = false;
    req->x.key = req->slot; /* a slot's requests reuse its connections */
    llmb_curl.easy_setopt(e, CURLOPT_URL, spec->url);
    llmb_curl.easy_setopt(e, CURLOPT_POST, 1L);
    llmb_curl.easy_setopt(e, CURLOPT_POSTFIELDS,
                          req->out != NULL ? req->out : spec->body);
    llmb_curl.easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                          (curl_off_t)(req->out != NULL ? req->out_len :
                                       spec->body_len));
    llmb_curl.easy_setopt(e, CURLOPT_HTTPHEADER,
                          llmb_llm_run_headers(req->run));
    llmb_curl.easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    llmb_curl.easy_setopt(e, CURLOPT_WRITEDATA, req);
    llmb_curl.easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
    llmb_curl.easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    llmb_curl.easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    llmb_curl.easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms :
                     CONNECT_TIMEOUT_MS);
    llmb_curl.easy_setopt(e, CURLOPT_USERAGENT, LLMB_LLM_USER_AGENT);
    llmb_curl.easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    llmb_curl.easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    llmb_curl.easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);
    llmb_curl.easy_setopt(e, CURLOPT_PREREQDATA, req);
    req->t0_us = 0;
    if (llmb_llm_multi_add(llmb_llm_run_multi(req->run), &req->x) != 0) {
        req->fail.cls = LLMB_LLM_CONNECT;
        req->fail.message = llmb_xstrdup("curl_multi_add_handle failed");
        return -1;
    }
    req->in_multi = true;
    return 0;
}

/* The server's words for an error status: error.message of a JSON body,
 * else the start of the body, cut at a character's boundary. */
static char *error_text(const struct llmb_llm_req *req)
{
    json_t *o = json_loadb(req->body.data, req->body.len, 0, NULL);
    json_t *e = json_object_get(o, "error");
    const char *m = json_is_object(e) ?
                    json_string_value(json_object_get(e, "message")) :
                    json_is_string(e) ? json_string_value(e) : NULL;
    char *s;

    if (m == NULL)
        m = req->body.len > 0 ? req->body.data : "(no body)";
    s = llmb_xasprintf("HTTP %ld: %.*s", req->status,
                       (int)llmb_utf8_cut(m, strlen(m), LLMB_LLM_ERROR_CUT), m);
    json_decref(o);
    for (char *c = s; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20)
            *c = ' ';
    return s;
}

/* True when the attempt got a connection (TCP, and TLS for https). */
static bool connected(const struct llmb_llm_req *req)
{
    curl_off_t us = 0;

    if (req->own)
        return req->ex.connected;

    llmb_curl.easy_getinfo(req->x.easy, CURLINFO_APPCONNECT_TIME_T, &us);
    if (us > 0)
        return true;
    llmb_curl.easy_getinfo(req->x.easy, CURLINFO_CONNECT_TIME_T, &us);
    return us > 0;
}

/* The class of a finished attempt; *msg gets the error text (NULL when
 * ok). */
static enum llmb_llm_class classify(struct llmb_llm_req *req, CURLcode rc,
                                    int64_t now, char **msg)
{
    const struct llmb_llm_spec *spec = llmb_llm_run_spec(req->run);
    const char *why = req->errbuf[0] != '\0' ? req->errbuf :
                      llmb_curl.easy_strerror(rc);

    *msg = NULL;
    if (!req->started && req->own)
        req->status = req->ex.resp.status;
    else if (!req->started)
        llmb_curl.easy_getinfo(req->x.easy, CURLINFO_RESPONSE_CODE,
                               &req->status);
    if (req->aborted && req->resp.error != NULL) {
        *msg = llmb_xstrdup(req->resp.error);
        return LLMB_LLM_PROTOCOL;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT && req->status == 0 &&
        !connected(req)) {
        *msg = llmb_xasprintf("no connection within %g s (%s)",
                              spec->timeout_s < CONNECT_TIMEOUT_MS / 1000.0 ?
                              spec->timeout_s : CONNECT_TIMEOUT_MS / 1000.0,
                              why);
        return LLMB_LLM_CONNECT;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        *msg = llmb_xasprintf("no complete response within timeout_s %g "
                              "(%s)", spec->timeout_s, why);
        return LLMB_LLM_TIMEOUT;
    }
    if (rc != CURLE_OK && req->status == 0) {
        *msg = llmb_xstrdup(why);
        return LLMB_LLM_CONNECT;
    }
    if (req->status == 429) {
        *msg = error_text(req);
        return LLMB_LLM_HTTP_429;
    }
    if (req->status >= 500 && req->status < 600) {
        *msg = error_text(req);
        return LLMB_LLM_HTTP_5XX;
    }
    if (req->status >= 400 && req->status < 500) {
        *msg = error_text(req);
        return LLMB_LLM_HTTP_4XX;
    }
    if (req->status < 200 || req->status >= 300) {
        *msg = llmb_xasprintf("unexpected HTTP status %ld", req->status);
        return LLMB_LLM_PROTOCOL;
    }
    if (rc != CURLE_OK) {
        *msg = llmb_xasprintf("the response broke off: %s", why);
        return LLMB_LLM_PROTOCOL;
    }
    if (req->sse ? llmb_llm_resp_end(&req->resp) != 0
                 : llmb_llm_resp_body(&req->resp, req->body.data,
                                      req->body.len, now) != 0) {
        *msg = llmb_xstrdup(req->resp.error);
        return LLMB_LLM_PROTOCOL;
    }
    return LLMB_LLM_OK;
}

/* Fills rec with the measurements of a successful attempt; rec takes the
 * response's token gaps. */
static void measure(struct llmb_llm_req *req, int64_t now,
                    struct llmb_llm_record *rec)
{
    struct llmb_llm_resp *r = &req->resp;

    rec->e2e_ms = (double)(now - req->t0_us) / 1000.0;
    rec->send_delay_ms = req->t0_us > req->due_us ?
                         (double)(req->t0_us - req->due_us) / 1000.0 : 0;
    rec->ttft_ms = req->sse && r->chunks > 0 ?
                   (double)(r->first_us - req->t0_us) / 1000.0 : -1.0;
    rec->itl_ms = r->chunks > 1 ? (double)(r->last_us - r->first_us) /
                                  1000.0 / (double)(r->chunks - 1) : -1.0;
    if (r->completion_tokens >= 0)
        rec->output_tokens = r->completion_tokens;
    else
        rec->output_tokens = req->sse ? r->chunks :
                             (long)((r->chars + 3) / 4);
    rec->input_tokens = r->prompt_tokens >= 0 ? r->prompt_tokens :
                        (long)((req->input_chars + 3) / 4);
    rec->estimated = r->completion_tokens < 0 || r->prompt_tokens < 0;
    rec->tpot_ms = rec->ttft_ms >= 0 && rec->output_tokens > 1 ?
                   (rec->e2e_ms - rec->ttft_ms) /
                   (double)(rec->output_tokens - 1) : -1.0;
    llmb_llm_resp_measure(r, req->t0_us, rec); /* TTFB, token gaps */
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct llmb_llm_req *req = w->data;

    (void)loop;
    (void)revents;
    if (req->fail.message != NULL) {
        /* An attempt that could not start, reported from the loop. */
        struct llmb_llm_record rec = req->fail;
        rec.attempts = req->attempt;
        rec.ttft_ms = rec.e2e_ms = rec.itl_ms = rec.tpot_ms = -1.0;
        rec.send_delay_ms = -1.0;
        rec.queued_ms = req->queued_ms;
        req->fail.message = NULL;
        llmb_llm_run_req_done(req->run, req, &rec);
        return;
    }
    req->attempt++;
    req->due_us = llmb_mono_us();
    if (attempt_start(req) != 0)
        ev_timer_start(loop, &req->wait); /* reports the failure */
}

/* The delay before the next attempt: the server's Retry-After (capped)
 * or the backoff. */
static double retry_delay_s(struct llmb_llm_req *req)
{
    const struct llmb_llm_spec *spec = llmb_llm_run_spec(req->run);
    curl_off_t ra = 0;
    int64_t ms;

    if (req->own)
        ra = req->ex.resp.retry_after_s;
    else
        llmb_curl.easy_getinfo(req->x.easy, CURLINFO_RETRY_AFTER, &ra);
    if (ra > 0)
        ms = ra * 1000 < RETRY_AFTER_CAP_MS ? (int64_t)ra * 1000 :
             RETRY_AFTER_CAP_MS;
    else
        ms = llmb_backoff_ms((unsigned)(req->attempt - 1),
                             spec->retry_backoff_ms, BACKOFF_CAP_MS,
                             llmb_llm_run_random(req->run));
    return (double)ms / 1000.0;
}

static void attempt_done(struct llmb_llm_req *req, CURLcode rc);

static void xfer_done(struct llmb_llm_xfer *x, CURLcode rc)
{
    attempt_done((struct llmb_llm_req *)x, rc);
}

static void ex_done(struct llmb_llm_exch *e, CURLcode rc)
{
    struct llmb_llm_req *req = req_of(e);

    req->in_own = false; /* the client let go of it */
    attempt_done(req, rc);
}

static void attempt_done(struct llmb_llm_req *req, CURLcode rc)
{
    const struct llmb_llm_spec *spec = llmb_llm_run_spec(req->run);
    /* the own client ends a response in the read of its last bytes:
     * their kernel receive time (llm_conn.c); curl's end, in the pass */
    int64_t now = req->own ?
                  llmb_llm_multi_stamp(llmb_llm_run_multi(req->run),
                                       &req->ex, req->t0_us) :
                  llmb_llm_multi_now(llmb_llm_run_multi(req->run),
                                     req->t0_us);
    struct llmb_llm_record rec;
    char *msg = NULL;

    req->in_multi = false; /* the multi handle let go of it */
    memset(&rec, 0, sizeof(rec));
    rec.cls = classify(req, rc, now, &msg);
    rec.status = req->status;
    rec.attempts = req->attempt;
    rec.queued_ms = req->queued_ms;
    rec.ttft_ms = rec.e2e_ms = rec.itl_ms = rec.tpot_ms = -1.0;
    rec.send_delay_ms = -1.0;
    if (msg != NULL)
        llmb_llm_endpoint_scrub(spec->ep, msg);
    if ((rec.cls == LLMB_LLM_HTTP_429 || rec.cls == LLMB_LLM_HTTP_5XX ||
         rec.cls == LLMB_LLM_CONNECT) && req->attempt <= spec->retries) {
        double d = retry_delay_s(req);
        llmb_debug("llm request retried in %.3f s: %s endpoint=%s "
                   "attempt=%ld", d, msg, spec->ep->name, req->attempt);
        free(msg);
        attempt_clear(req);
        ev_timer_set(&req->wait, d, 0.0);
        ev_timer_start(req_loop(req), &req->wait);
        return;
    }
    if (rec.cls == LLMB_LLM_OK && req->t0_us == 0)
        req->t0_us = req->due_us; /* no send seen: cannot be, but safe */
    if (rec.cls == LLMB_LLM_OK)
        measure(req, now, &rec);
    rec.message = msg;
    attempt_clear(req);
    llmb_llm_run_req_done(req->run, req, &rec);
}

size_t llmb_llm_req_slot(const struct llmb_llm_req *req)
{
    return req->slot;
}

struct llmb_llm_req *llmb_llm_req_start(struct llmb_llm_run *run, long index,
                                        size_t slot, double queued_ms,
                                        int64_t due_us)
{
    struct llmb_llm_req *req = llmb_xcalloc(1, sizeof(*req));

    req->run = run;
    req->index = index;
    req->slot = slot;
    req->attempt = 1;
    req->queued_ms = queued_ms;
    req->due_us = due_us;
    llmb_buf_init(&req->body);
    req->input_chars = llmb_llm_run_spec(run)->input_chars;
    if (llmb_llm_run_spec(run)->wl.kind != LLMB_LLM_WL_NONE)
        req->out = llmb_llm_workload_body(&llmb_llm_run_spec(run)->wl, index,
                                          &req->out_len, &req->input_chars);
    ev_timer_init(&req->wait, retry_cb, 0.0, 0.0);
    req->wait.data = req;
    if (attempt_start(req) != 0)
        ev_timer_start(req_loop(req), &req->wait); /* reports the failure */
    return req;
}
