/*
 * The LLM benchmark executor's inside, shared by its files. The executor
 * (handlers `llm` and `benchmark`, docs/llm.md) sends OpenAI-compatible
 * completion requests to an endpoint named in the worker's configuration
 * and measures each of them. The flow of one task:
 *
 *   llm.c           the executor tables: init, start, cancel, fini
 *   llm_endpoint.c  --llm-endpoint NAME=BASE_URL[,key_env=VAR]: URLs and
 *                   the API key read from the worker's environment
 *   llm_payload.c   the task payload checked and turned into a spec: the
 *                   request body, how many requests, how fast
 *   llm_workload.c  per-request prompts: synthetic ones from a seed, or
 *                   the task's part of the job's dataset read from Redis
 *   llm_run.c       one task: launches the requests under the spec's
 *                   concurrency and Poisson arrival rate, collects records
 *   llm_request.c   one request: on the own client or a curl easy
 *                   handle, its attempts and retries, its error class
 *                   and its record
 *   llm_conn.c      llmb's own HTTP/1.1 client of plain-HTTP endpoints:
 *                   kept connections (made by libcurl), one recv a chunk
 *   llm_h1.c        the HTTP/1.1 response framing it reads with
 *   llm_multi.c     the curl multi handles driven by the worker's libev
 *                   loop (one ev_io per socket, one ev_timer each)
 *   llm_sse.c       the Server-Sent Events framing, fed bytes as they come
 *   llm_chunk.c     one streamed chunk read in a single pass, without a
 *                   JSON tree: the executor's inner loop
 *   llm_response.c  what the OpenAI chunks and bodies mean: content
 *                   tokens, usage, finish, in-band errors, the gap
 *                   before each content chunk
 *   llm_metrics.c   the task's histograms of every request and every
 *                   token gap (TTFT, ITL, TPOT, ...) and its goodput
 *   llm_record.c    per-request records, the task summary, the result JSON
 *   llm_client.c    the client's own health over a task: requests on the
 *                   wire, event-loop lag, CPU, and the warnings they give
 *   llm_timeline.c  the task's throughput and concurrency over time
 *
 * Everything runs on the worker's thread; no thread is started per
 * request (libcurl may resolve host names on a helper thread of its own).
 */
#ifndef LLMB_WORKER_LLM_H
#define LLMB_WORKER_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <ev.h>
#include <jansson.h>

#include <llmb/curl.h>
#include <llmb/executor.h>
#include <llmb/histogram.h>
#include <llmb/llmworkload.h>
#include <llmb/util.h>

#include "llm_h1.h"
#include "llm_timeline.h"

/* ---- error classes ---------------------------------------------------- */

/* How a request ended. */
enum llmb_llm_class {
    LLMB_LLM_OK = 0,
    LLMB_LLM_TIMEOUT,  /* timeout_s passed (also a stalled stream) */
    LLMB_LLM_CONNECT,  /* no HTTP response: refused, DNS, TLS, reset */
    LLMB_LLM_HTTP_4XX, /* 4xx other than 429 */
    LLMB_LLM_HTTP_429, /* rate limited */
    LLMB_LLM_HTTP_5XX,
    LLMB_LLM_PROTOCOL, /* bad SSE or JSON, broken or unfinished stream,
                          unexpected status */
    LLMB_LLM_NCLASS
};

/* "ok", "timeout", "connect", "http_4xx", "http_429", "http_5xx" or
 * "protocol". */
const char *llmb_llm_class_name(enum llmb_llm_class c);

/* ---- endpoints (llm_endpoint.c) --------------------------------------- */

/* One configured endpoint. The key is held only in memory: it goes into
 * the Authorization header and nowhere else. */
struct llmb_llm_endpoint {
    char *name;
    char *base;        /* base URL as configured, no trailing '/' */
    char *chat_url;    /* <base>/chat/completions (see llm_endpoint.c) */
    char *text_url;    /* <base>/completions */
    char *key_env;     /* environment variable of the key; NULL = none */
    char *key;         /* its value, or NULL */
    char *auth_header; /* "Authorization: Bearer <key>", or NULL */
    bool own;          /* requests go through llmb's own HTTP/1.1 client
                          (llm_conn.c), not libcurl's */
    bool client_set;   /* client= was given */
};

struct llmb_llm_endpoints {
    struct llmb_llm_endpoint *v;
    size_t n;
};

/* Parses the --llm-endpoint values into eps: "NAME=BASE_URL", each
 * optionally followed by ";key_env=VAR" or by a separate value
 * "key_env=VAR" (what a comma in "NAME=URL,key_env=VAR" becomes once the
 * option list is split). Reads each key from the environment now. Returns
 * 0, or LLMB_ECONFIG with a malloc'd message naming the bad value; eps is
 * then empty. */
int llmb_llm_endpoints_parse(struct llmb_llm_endpoints *eps,
                             const struct llmb_strlist *specs, char **errstr);

/* Frees every endpoint (the keys are wiped first); eps is left empty. */
void llmb_llm_endpoints_fini(struct llmb_llm_endpoints *eps);

/* The endpoint called name, or NULL. */
const struct llmb_llm_endpoint *
llmb_llm_endpoints_find(const struct llmb_llm_endpoints *eps,
                        const char *name);

/* Replaces every occurrence of ep's key in s (NUL-terminated, modified in
 * place) with '*', so that an error message a server echoes cannot leak
 * it. */
void llmb_llm_endpoint_scrub(const struct llmb_llm_endpoint *ep, char *s);

/* ---- the task's spec (llm_payload.c) ---------------------------------- */

/* Which handler: `llm` (payload as documented) or `benchmark` (the seed
 * shape: provider, model, iterations spread over the job's tasks). */
enum llmb_llm_kind {
    LLMB_LLM_KIND_LLM,
    LLMB_LLM_KIND_BENCHMARK
};

/* Service level objectives of the payload's "slo": a request is good
 * when each metric given is at most its threshold (0 = not given). */
struct llmb_llm_slo {
    double ttft_ms;
    double tpot_ms;
    double e2e_ms;
};

/* True when at least one threshold is given. */
bool llmb_llm_slo_set(const struct llmb_llm_slo *slo);

/* ---- workloads (llm_workload.c) --------------------------------------- */

enum llmb_llm_wl_kind {
    LLMB_LLM_WL_NONE,       /* the payload's messages or prompt */
    LLMB_LLM_WL_SYNTHETIC,  /* "synthetic": seeded prompts of drawn lengths */
    LLMB_LLM_WL_DATASET     /* "dataset": the job's entries in Redis */
};

/* One dataset entry of the task's part: what its requests' bodies add to
 * the payload's (the body's other members are kept once, in the
 * workload). */
struct llmb_llm_wl_entry {
    char *value;            /* its "prompt" or "messages", compact JSON */
    size_t len;
    long max_tokens;        /* its output_tokens; 0 = the payload's */
    size_t input_chars;     /* prompt bytes, for the input estimate */
};

/* What makes each request's body, in the spec. Embedded;
 * llmb_llm_workload_parse() / llmb_llm_workload_fini(). */
struct llmb_llm_workload {
    enum llmb_llm_wl_kind kind;
    bool completions;       /* "api": "completions" */
    struct llmb_llm_synthetic syn;
    struct llmb_llm_dataset ds;
    long task;              /* the replica's index (the task's outside
                               A/B runs): part of the generator */
    char *job;
    char *rest[2];          /* the body's members but the prompt or the
                               messages, compact JSON without its braces:
                               [0] as the payload gives them, [1] for a
                               request that sets its own max_tokens */
    long first, count;      /* the task's part of the dataset */
    struct llmb_llm_wl_entry *v; /* count of them, loaded of them read */
    long loaded;
};

/* Reads the workload fields of payload o (checked already by
 * llmb_llm_fields_check) for task t, replica `replica` of `replicas`
 * (the task itself of the job's tasks outside A/B runs): the prompts and
 * the dataset's part are the replica's. Returns 0, or -1 with *errstr. */
int llmb_llm_workload_parse(struct llmb_llm_workload *wl, const json_t *o,
                            const char *kind, const struct llmb_exec_task *t,
                            long replica, long replicas, char **errstr);

/* The body every request starts from, checked (not kept: its members
 * but the prompt are copied as text). */
void llmb_llm_workload_set_body(struct llmb_llm_workload *wl,
                                const json_t *body);

void llmb_llm_workload_fini(struct llmb_llm_workload *wl);

/* The body of request k (caller frees; *len its bytes, *input_chars its
 * prompt's bytes): k >= 0 a measured request, k = -(w + 1) warm-up
 * request w. A dataset workload must be loaded. */
char *llmb_llm_workload_body(const struct llmb_llm_workload *wl, long k,
                             size_t *len, size_t *input_chars);

/* Where a task's dataset comes from: the worker sets it (task.c) to read
 * `count` entries of job's dataset from index first, for task `token`;
 * cb is then called exactly once, later, with the rows or an error text.
 * Returns 0, or -1 (no connection: cb is never called). */
typedef void llmb_llm_rows_fn(void *arg, const char *err, size_t n,
                              const char *const *rows, const size_t *lens);
typedef int llmb_llm_source_fn(void *token, const char *job, long first,
                               long count, llmb_llm_rows_fn *cb, void *arg);
extern llmb_llm_source_fn *llmb_llm_dataset_source;

/* The end of a load: err NULL when every entry of the part is in;
 * fatal when retrying cannot help (the dataset is not there). */
typedef void llmb_llm_loaded_fn(void *arg, const char *err, bool fatal);

struct llmb_llm_load;

/* Starts reading wl's part of the dataset for task token; done is called
 * once, later. Returns the load, or NULL with *errstr (nothing sent). */
struct llmb_llm_load *llmb_llm_load_start(struct llmb_llm_workload *wl,
                                          void *token,
                                          llmb_llm_loaded_fn *done,
                                          void *arg, char **errstr);

/* Stops a load: done is never called; wl may go at once. */
void llmb_llm_load_abort(struct llmb_llm_load *l);

/* What one task does, from its payload. Filled by llmb_llm_spec_parse(),
 * freed with llmb_llm_spec_fini(). */
struct llmb_llm_spec {
    const struct llmb_llm_endpoint *ep; /* owned by the instance */
    const char *url;        /* ep->chat_url or ep->text_url */
    bool chat;              /* messages (chat) or prompt (completions) */
    bool stream;
    char *model;
    char *body;             /* the request body, JSON */
    size_t body_len;
    long requests;          /* requests this task sends (0 allowed for a
                               benchmark task with no share) */
    long concurrency;       /* in flight at once */
    double rate;            /* arrivals per second; 0 = no pacing */
    double timeout_s;       /* per attempt */
    long retries;           /* per request, for 429, 5xx and connect */
    long retry_backoff_ms;  /* first retry delay, doubling */
    long max_records;       /* records of the result's sample */
    long warmup_requests;   /* sent first, all ended before the measured
                               requests start; never in the result */
    double warmup_s;        /* > 0: warm-up sending stops this long after
                               it began (with warmup_requests, at the
                               first of the two) */
    double duration_s;      /* > 0: stop sending this long after the
                               measured start; in-flight requests end */
    double ramp_up_s;       /* > 0: slots open linearly from 1 to
                               concurrency over this time */
    int64_t start_at_ms;    /* > 0: wall-clock ms since the epoch when the
                               task starts sending */
    bool together;          /* "start": "together": the job's rendezvous */
    bool record_itls;       /* records carry their gaps (LLMB_LLM_ITLS_MAX) */
    bool ab;                /* "endpoints"/"models": the result names its
                               pair in "_group" */
    long pairs;             /* of an A/B run; 1 otherwise */
    long replica, replicas; /* task i is replica i / pairs of
                               ceil(tasks / pairs): what its prompts (and
                               seeded arrivals) are keyed on, so every
                               pair of a replica sends the same */
    double start_timeout_s; /* its wait for the tasks not yet arrived */
    bool seeded;            /* seed was given */
    uint64_t seed;          /* arrival and jitter generator */
    size_t input_chars;     /* prompt bytes, for the input estimate */
    struct llmb_llm_slo slo; /* for goodput; all 0 = none */
    struct llmb_llm_workload wl; /* per-request prompts; kind NONE: body */
};

/* The User-Agent of every request, on either client. */
#define LLMB_LLM_USER_AGENT "llmb-worker"
#define LLMB_LLM_DEFAULT_TIMEOUT_S 120.0
#define LLMB_LLM_DEFAULT_START_TIMEOUT_S 60.0
#define LLMB_LLM_AB_MAX 8        /* names in "endpoints", in "models":
                                    at most 64 pairs, LLMB_AGG_GROUPS_MAX */
#define LLMB_LLM_AB_NAME_MAX 200 /* bytes of one of them */
#define LLMB_LLM_DEFAULT_RETRIES 2
#define LLMB_LLM_DEFAULT_BACKOFF_MS 500
/* The result's sample of records ("_requests"), each at most about 450
 * bytes (its message cut to LLMB_LLM_LINE_MESSAGE): at most ~450 KB, under
 * the default max_result of 1 MiB. Every record goes to the job's records
 * (llmb_llm_record_sink) whatever the sample keeps. */
#define LLMB_LLM_DEFAULT_MAX_RECORDS 1000
#define LLMB_LLM_MAX_RECORDS 1000L
#define LLMB_LLM_BENCHMARK_MAX_TOKENS 128
#define LLMB_LLM_UNBOUNDED 1000000000L /* requests of a duration-bound run
                                          that gives none */

/* Checks task t's payload and fills spec. Returns 0, or LLMB_EINVAL with
 * a malloc'd message for the user in *errstr (the task then fails for
 * good: the payload will not get better on retry). */
int llmb_llm_spec_parse(struct llmb_llm_spec *spec, enum llmb_llm_kind kind,
                        const struct llmb_llm_endpoints *eps,
                        const struct llmb_exec_task *t, char **errstr);

void llmb_llm_spec_fini(struct llmb_llm_spec *spec);

/* Bytes of text in a message's content: a string, or the "text" of each
 * part of an array ({"type": "text", "text": ...}); 0 otherwise. For the
 * input estimate of a payload's messages and a dataset entry's. */
size_t llmb_llm_content_chars(const json_t *content);

/* ---- Server-Sent Events (llm_sse.c) ----------------------------------- */

/* Called once per complete event: its type ("" when none was given) and
 * its data (the data lines joined with "\n", NUL-terminated, len bytes).
 * A nonzero return stops the parser, which returns it from feed. */
typedef int llmb_llm_sse_event_fn(void *arg, const char *event,
                                  const char *data, size_t len);

/* An incremental parser of the text/event-stream format: bytes go in as
 * they arrive, split anywhere (also inside a CR LF pair). Embedded;
 * llmb_llm_sse_init() / llmb_llm_sse_fini(). */
struct llmb_llm_sse {
    struct llmb_buf line;  /* the line being read */
    struct llmb_buf data;  /* data of the event being built */
    struct llmb_buf event; /* its type */
    bool after_cr;         /* last byte was CR: skip a LF that follows */
    size_t max_event;      /* longest line or event data accepted */
    llmb_llm_sse_event_fn *cb;
    void *arg;
};

void llmb_llm_sse_init(struct llmb_llm_sse *p, size_t max_event,
                       llmb_llm_sse_event_fn *cb, void *arg);
void llmb_llm_sse_fini(struct llmb_llm_sse *p);

/* Parses len bytes. Returns 0, the callback's nonzero value, or
 * LLMB_EPROTO when a line or an event grows past max_event. */
int llmb_llm_sse_feed(struct llmb_llm_sse *p, const char *buf, size_t len);

/* True when bytes of an unfinished line or event are buffered (the stream
 * ended in the middle of an event). */
bool llmb_llm_sse_pending(const struct llmb_llm_sse *p);

/* ---- one streamed chunk (llm_chunk.c) -------------------------------- */

/* What a streamed chunk says, as far as the measurements go. */
struct llmb_llm_chunk {
    bool chat;               /* read as chat deltas, else completions */
    size_t content;          /* bytes of content over its choices, as
                                json_string_length() counts them */
    bool finished;           /* a choice has a string finish_reason */
    long prompt_tokens;      /* usage.prompt_tokens; -1 = not given */
    long completion_tokens;  /* usage.completion_tokens; -1 = not given */
};

/* Reads the data of one SSE event (len bytes, no NUL needed) in one pass,
 * allocating nothing. Returns 0 with ck filled when the text is a JSON
 * object that json_loadb() reads and whose meaning is plain: the full
 * parse would give the same. Returns 1 (ck undefined) when the full
 * parse must decide: not JSON or not an object, an "error" member that
 * is not null, escaped keys, duplicate keys that matter, deep nesting or
 * numbers jansson may refuse. */
int llmb_llm_chunk_scan(const char *data, size_t len, bool chat,
                        struct llmb_llm_chunk *ck);

/* ---- OpenAI responses (llm_response.c) -------------------------------- */

/* Gaps between content chunks one response may have (4 MiB of them, as
 * much as its longest SSE event): past it the response is a protocol
 * error. Far above any completion's tokens; it bounds a hostile stream. */
#define LLMB_LLM_GAPS_MAX (1 << 20)

/* What one response said, fed either streamed bytes (SSE) or a whole
 * JSON body. Embedded; llmb_llm_resp_init() / llmb_llm_resp_fini(). */
struct llmb_llm_resp {
    bool chat;               /* chat.completion(.chunk) or text_completion */
    int64_t now_us;          /* arrival time of the bytes being fed */
    int64_t first_us;        /* first content chunk; 0 = none yet */
    int64_t last_us;         /* latest content chunk */
    long chunks;             /* events that carried content */
    long prompt_tokens;      /* from usage; -1 = none */
    long completion_tokens;  /* from usage; -1 = none */
    size_t chars;            /* bytes of content */
    int64_t first_byte_us;   /* first streamed bytes; 0 = none yet */
    uint32_t *gaps_us;       /* gap before each content chunk after the
                                first, ngaps of capgaps */
    size_t ngaps, capgaps;
    bool done;               /* data: [DONE] */
    bool finished;           /* a finish_reason was seen */
    bool full_parse;         /* read every chunk with json_loadb, never
                                llmb_llm_chunk_scan (tests compare) */
    char *error;             /* why the response is bad; NULL = fine */
    struct llmb_llm_sse sse;
};

void llmb_llm_resp_init(struct llmb_llm_resp *r, bool chat);
void llmb_llm_resp_fini(struct llmb_llm_resp *r);

/* Feeds streamed bytes that arrived at now_us. Returns 0, or LLMB_EPROTO
 * with r->error set (the response is bad; stop reading it). */
int llmb_llm_resp_feed(struct llmb_llm_resp *r, const char *buf, size_t len,
                       int64_t now_us);

/* The stream ended cleanly. Returns 0 when it was complete ([DONE], or a
 * finish_reason with no event cut short), else LLMB_EPROTO with
 * r->error. */
int llmb_llm_resp_end(struct llmb_llm_resp *r);

/* Reads a whole non-streaming body that arrived at now_us. Returns 0, or
 * LLMB_EPROTO with r->error. */
int llmb_llm_resp_body(struct llmb_llm_resp *r, const char *text, size_t len,
                       int64_t now_us);

struct llmb_llm_record;

/* Fills rec's time to first byte (from t0_us, the send) and moves the
 * token gaps from r to rec (rec owns them; r keeps none), for the task's
 * histograms. */
void llmb_llm_resp_measure(struct llmb_llm_resp *r, int64_t t0_us,
                           struct llmb_llm_record *rec);

/* ---- curl on libev (llm_multi.c) -------------------------------------- */

struct llmb_llm_xfer;

/* A transfer ended with rc; the easy handle is already out of the multi
 * handle and belongs to the callee. */
typedef void llmb_llm_xfer_done_fn(struct llmb_llm_xfer *x, CURLcode rc);

/* Embedded in whatever owns an easy handle (CURLOPT_PRIVATE points at
 * it). */
struct llmb_llm_xfer {
    CURL *easy;
    llmb_llm_xfer_done_fn *done;
    size_t key;       /* the owner's (a run's slot): transfers of near
                         keys share connections */
    size_t shard;     /* llm_multi.c's: where it was added */
    bool arrival;     /* the owner's: the reads of its socket get the
                         kernel's receive time, each at the cost of one
                         more system call (llmb_llm_multi_arrival) */
    bool adopt;       /* a CURLOPT_CONNECT_ONLY transfer whose socket the
                         owner takes over (llm_conn.c): fd is read just
                         before it leaves the multi handle */
    curl_socket_t fd;
};

struct llmb_llm_multi;

/* A multi handle on loop. Free with llmb_llm_multi_free(). */
struct llmb_llm_multi *llmb_llm_multi_new(struct ev_loop *loop);

/* Frees m, closing its cached connections; accepts NULL. Every transfer
 * must have been removed before. */
void llmb_llm_multi_free(struct llmb_llm_multi *m);

struct ev_loop *llmb_llm_multi_loop(const struct llmb_llm_multi *m);

/* The arrival time of the bytes curl hands over now, on llmb_mono_us()'s
 * clock. While the loop's current pass is at most LLMB_LLM_PASS_FRESH_US
 * old, the time its poll returned: the bytes of a socket it reported were
 * in by then, however many events come before theirs, and bytes that came
 * since are stamped at most that much early. In an older pass (many
 * events, or the worker preempted in it), and for a request sent at
 * sent_us during this pass, the present time. */
int64_t llmb_llm_multi_now(const struct llmb_llm_multi *m, int64_t sent_us);

#define LLMB_LLM_PASS_FRESH_US 1000

/* The arrival time of the bytes curl hands x over now: when x->arrival
 * was set before curl sent its request, and the kernel gave it, the time
 * they reached x's socket (SO_TIMESTAMPNS, peeked before curl reads: of
 * the last of the bytes waiting when the loop came to the socket, so
 * never early), however late the loop or the process was; else
 * llmb_llm_multi_now(). */
int64_t llmb_llm_multi_arrival(const struct llmb_llm_multi *m,
                               const struct llmb_llm_xfer *x,
                               int64_t sent_us);

/* x needs no more receive times (its first content chunk is in): its
 * socket's next reads cost no more system call than curl's. Called from
 * x's write callback. */
void llmb_llm_multi_arrival_off(struct llmb_llm_multi *m,
                                struct llmb_llm_xfer *x);

/* Starts transfer x (x->easy and x->key set up, CURLOPT_PRIVATE set by
 * this call): transfers whose keys are in the same block of 128 share a
 * connection cache (llm_multi.c), while the descriptor limit leaves room.
 * Its done callback runs later from the loop, never from inside this
 * call. Returns 0 or LLMB_EIO. */
int llmb_llm_multi_add(struct llmb_llm_multi *m, struct llmb_llm_xfer *x);

/* Stops transfer x without calling its done; the caller then frees the
 * easy handle. */
void llmb_llm_multi_remove(struct llmb_llm_multi *m, struct llmb_llm_xfer *x);

/* For llm_conn.c: the bytes read now for owner (an exchange of the own
 * client) reached the machine at at_us (llmb_llm_recv_stamped), which
 * llmb_llm_multi_stamp() then gives them; _rx_end() when the read is
 * over. */
void llmb_llm_multi_rx_at(struct llmb_llm_multi *m, const void *owner,
                          int64_t at_us);
void llmb_llm_multi_rx_end(struct llmb_llm_multi *m);
/* The arrival time of the bytes read now for owner (see
 * llmb_llm_multi_arrival). */
int64_t llmb_llm_multi_stamp(const struct llmb_llm_multi *m,
                             const void *owner, int64_t sent_us);

/* recvmsg(2) of up to len bytes of fd into buf with flags, which also
 * gives *at_us: the kernel's receive time (SO_TIMESTAMPNS, on the
 * socket) of the last of the bytes, on llmb_mono_us()'s clock; -1 when
 * none came or the kernel gives no time. */
ssize_t llmb_llm_recv_stamped(int fd, void *buf, size_t len, int flags,
                              int64_t *at_us);

/* The connection pool of llm_conn.c that lives with m (made on first
 * use, freed with m). */
struct llmb_llm_pool;
struct llmb_llm_pool **llmb_llm_multi_pool(struct llmb_llm_multi *m);

/* ---- llmb's own HTTP/1.1 client (llm_conn.c) ------------------------- */

/* One request and its response on a kept connection to a plain-HTTP
 * endpoint: libcurl only connects (CURLOPT_CONNECT_ONLY: name
 * resolution, happy eyeballs, its connect timeout), then the socket is
 * the client's, which writes the request and reads the response with
 * plain system calls (llm_h1.c parses it). */
struct llmb_llm_exch;

typedef void llmb_llm_exch_fn(struct llmb_llm_exch *e);
typedef void llmb_llm_exch_done_fn(struct llmb_llm_exch *e, CURLcode rc);

struct llmb_llm_exch {
    /* --- set by the owner before llmb_llm_exch_start() --- */
    const char *url;        /* for the connect (scheme, host, port) */
    const char *origin;     /* the pool's key: the URL's authority */
    struct iovec out[3];    /* the request: head, length line, body */
    double timeout_s;       /* the whole attempt, connect included */
    long connect_timeout_ms;
    size_t key;             /* a run's slot: which curl multi handle
                               connects (llmb_llm_multi_add) */
    char *errbuf;           /* CURL_ERROR_SIZE bytes: why it failed */
    llmb_llm_exch_fn *sent; /* the request is being written: just
                               before the first byte goes out (again on a
                               fresh connection, when a kept one had been
                               closed by the server) */
    llmb_h1_body_fn *body;  /* the response body's bytes; arg is e */
    llmb_llm_exch_done_fn *done; /* once, from the loop, never from
                                    inside llmb_llm_exch_start() */
    /* --- the client's; read-only for the owner --- */
    struct llmb_h1 resp;    /* status, content type, Retry-After */
    bool connected;         /* a connection was made (or kept) */
    struct llmb_llm_multi *mu;
    struct llmb_llm_conn *conn;
    ev_timer timer;         /* timeout_s; the done callback from the
                               loop */
    CURLcode rc;            /* for that callback */
    size_t written;         /* bytes of out sent */
    size_t fed;             /* bytes of the response read */
    bool resent;            /* sent again on a fresh connection */
    bool starting;          /* inside llmb_llm_exch_start() */
    bool short_timer;       /* timer is the connect timeout's */
    int64_t start_us;       /* when it started */
    bool ending;            /* the timer calls done (rc) */
};

/* Whether url (an endpoint's) can go through the own client: http://,
 * no user name or password in it, and no proxy in the environment
 * (http_proxy, all_proxy, ALL_PROXY), which libcurl would honour. */
bool llmb_llm_exch_fits(const char *url);

/* Starts e on m; the done callback runs later. */
void llmb_llm_exch_start(struct llmb_llm_multi *m, struct llmb_llm_exch *e);

/* Stops e without calling done; its connection is closed unless idle. */
void llmb_llm_exch_stop(struct llmb_llm_exch *e);

/* Frees the pool and closes its connections (llmb_llm_multi_free). */
void llmb_llm_pool_free(struct llmb_llm_pool *p);

/* ---- records and the result (llm_record.c) ---------------------------- */

/* The measurements of one request (times in ms). */
struct llmb_llm_record {
    enum llmb_llm_class cls;
    long status;             /* HTTP status of the last attempt; 0 none */
    long attempts;
    double ttft_ms;          /* < 0 = not measured (non-streaming, or no
                                content) */
    double ttfb_ms;          /* to the first byte of a streamed body;
                                < 0 = not measured */
    double e2e_ms;
    double itl_ms;           /* < 0 = fewer than two content chunks */
    double tpot_ms;          /* < 0 = fewer than two output tokens */
    double queued_ms;        /* arrival to a free slot; < 0 = no rate */
    double send_delay_ms;    /* due (arrived, slot free) to written on
                                the socket: the client's own delay */
    long output_tokens;
    long input_tokens;
    bool estimated;          /* tokens counted here, not from usage */
    char *message;           /* error text (owned), NULL when ok */
    uint32_t *gaps_us;       /* every gap between content chunks, in us
                                (owned; the histograms take them, the
                                records do not keep them) */
    size_t ngaps;
};

/* ---- metrics (llm_metrics.c) ------------------------------------------ */

/* The task's distributions over every successful request (not a sample):
 * one histogram per metric (lib/histogram.c), mergeable by the
 * coordinator, and the requests that met the SLO. Embedded in the
 * records; llmb_llm_metrics_init() / llmb_llm_metrics_fini(). */
struct llmb_llm_metrics {
    struct llmb_hist ttft, ttfb, itl, tpot, e2e, queued; /* ms, ns ticks */
    struct llmb_hist output_tokens, input_tokens;        /* tokens */
    struct llmb_llm_slo slo;
    long good;                /* successful requests within the SLO */
};

void llmb_llm_metrics_init(struct llmb_llm_metrics *m,
                           const struct llmb_llm_slo *slo);
void llmb_llm_metrics_fini(struct llmb_llm_metrics *m);

/* Adds successful record rec (its gaps too; rec keeps them). */
void llmb_llm_metrics_add(struct llmb_llm_metrics *m,
                          const struct llmb_llm_record *rec);

/* True when rec meets every threshold of slo. A metric that was not
 * measured fails its threshold, except TPOT of a response of fewer than
 * two tokens, which counts as 0 (vLLM does the same). */
bool llmb_llm_slo_met(const struct llmb_llm_slo *slo,
                      const struct llmb_llm_record *rec);

/* {"ttft_ms": histogram, "itl_ms": ..., ...}: the non-empty histograms in
 * their JSON form (a new reference). */
json_t *llmb_llm_metrics_json(const struct llmb_llm_metrics *m);

/* Where every record goes, as compact lines in chunks (docs/llm.md,
 * "Records"): called with the task's token and a chunk of len bytes,
 * copied before it returns. The worker sets it (task.c) and sends the
 * chunks with llmb_records before the task's outcome; NULL (tests that
 * run the executor alone) keeps only the result's sample. */
typedef void llmb_llm_sink_fn(void *token, const char *chunk, size_t len);
extern llmb_llm_sink_fn *llmb_llm_record_sink;

/* The synchronized start of a job's tasks (docs/llm.md, "Run control"),
 * as llmb_rendezvous answered: times in ms of the Redis clock. */
struct llmb_llm_rv {
    bool held;          /* false: the worker no longer holds the lease */
    int64_t now_ms;     /* when Redis answered */
    int64_t start_ms;   /* the common start; -1 = not set yet */
    int64_t deadline_ms; /* first arrival + start_timeout_s */
    long arrived, tasks;
    long missing;       /* tasks not arrived at the start; -1 = not set */
};

/* Where a task registers for the synchronized start: the worker sets it
 * (task.c) to call llmb_rendezvous for task `token` in meeting phase
 * ("start", "measure" or "none", lua/77-rendezvous.lua), announcing that
 * it asks again within poll_ms; cb is then called exactly once, later,
 * with the reply (err NULL) or an error text. Returns 0, or -1 (no
 * connection: cb is never called). NULL (the executor run alone): tasks
 * start at once. */
typedef void llmb_llm_rv_fn(void *arg, const char *err,
                            const struct llmb_llm_rv *rv);
typedef int llmb_llm_rendezvous_fn(void *token, long timeout_ms,
                                   const char *phase, long poll_ms,
                                   llmb_llm_rv_fn *cb, void *arg);
extern llmb_llm_rendezvous_fn *llmb_llm_rendezvous;

/* What the synchronized start gave a task, for its result. */
struct llmb_llm_start {
    bool together;      /* the task took part in a rendezvous */
    struct llmb_llm_rv rv; /* the reply that gave the start */
    double wait_ms;     /* from its first registration to its start */
    double late_ms;     /* > 0: it arrived after the common start */
    bool measure;       /* after its warm-up, it met the others again */
    struct llmb_llm_rv mrv; /* the reply that gave the measured start */
    double measure_wait_ms; /* from its warm-up's end to that start */
    double measure_late_ms; /* > 0: it came after that start */
    long calls;         /* llmb_rendezvous calls it made */
};

/* Bytes of records gathered before a chunk goes to the sink. */
#define LLMB_LLM_CHUNK_BYTES 16384
/* Bytes of an error message kept in a record line. */
#define LLMB_LLM_LINE_MESSAGE 200
/* Bytes of the server's words kept in an error message. Both cuts keep
 * fewer rather than half a UTF-8 character (llmb_utf8_cut). */
#define LLMB_LLM_ERROR_CUT 200
/* Gaps a record line carries with record_itls (the first ones): at most
 * 11 bytes each, so that a line stays well under a chunk's 64 KiB. */
#define LLMB_LLM_ITLS_MAX 4000

/* What a task collects: a uniform sample of at most max records (all of
 * them when there are fewer) and exact totals over every request; and,
 * with a sink, every record as a line of the chunk being filled. */
struct llmb_llm_records {
    struct llmb_llm_record *v;
    size_t n, cap, max;
    uint64_t seen;                 /* records offered */
    long ok, failed, retries, estimated;
    long errors[LLMB_LLM_NCLASS];
    long long output_tokens, input_tokens;
    char *first_error;             /* "class: message" of the first */
    struct llmb_llm_metrics metrics; /* every ok request, not a sample */
    llmb_llm_sink_fn *sink;        /* NULL: no record lines */
    void *token;                   /* the sink's task */
    char *head;                    /* "<endpoint>\t<model>" */
    long attempt;                  /* the task's attempt */
    bool itls;                     /* record lines carry their gaps */
    long chunks;                   /* chunks sent: the next chunk seq */
    int64_t t0_ms;                 /* wall clock at the measured start */
    int64_t t0_us;                 /* the same moment, monotonic */
    struct llmb_buf lines;         /* record lines not yet sent */
    struct llmb_llm_start start;   /* the synchronized start, if any */
};

/* slo as in the spec (copied). */
void llmb_llm_records_init(struct llmb_llm_records *rs, size_t max,
                           const struct llmb_llm_slo *slo);
void llmb_llm_records_fini(struct llmb_llm_records *rs);

/* Takes rec (its message too). r is a uniform random number in [0, 1),
 * used for the sample once max records are kept. */
void llmb_llm_records_add(struct llmb_llm_records *rs,
                          struct llmb_llm_record *rec, double r);

/* Sends every record of the task from now on to llmb_llm_record_sink
 * (when set) for `token`, headed with the task's attempt, endpoint and
 * model. */
void llmb_llm_records_sink(struct llmb_llm_records *rs, void *token,
                           long attempt, const char *endpoint,
                           const char *model);

/* The measured run starts now: the time the records count from (each
 * chunk's header carries it). */
void llmb_llm_records_mark_start(struct llmb_llm_records *rs);

/* Sends the record lines gathered so far as one chunk; call it before the
 * task's outcome. */
void llmb_llm_records_flush(struct llmb_llm_records *rs);

/* ---- the client's health (llm_client.c) ------------------------------ */

/* What the client itself did over one task, to tell a slow server from a
 * slow client: the requests on the wire (time-weighted mean and peak),
 * the lateness of a probe timer on the loop, and the process's CPU.
 * Embedded in the run; llmb_llm_client_start() / llmb_llm_client_stop(),
 * then llmb_llm_client_fini(). */
struct llmb_llm_client {
    struct ev_loop *loop;
    ev_timer probe;          /* fires every LLMB_LLM_PROBE_MS */
    int64_t probe_due_us;    /* when it should fire */
    uint32_t *lag_us;        /* probe lateness samples (a reservoir) */
    size_t nlag;
    uint64_t probes;
    uint64_t rng;
    int64_t start_us, mark_us, stop_us;
    long on_wire, peak;      /* requests sent and not yet ended */
    double wire_us;          /* integral of on_wire over time */
    double cpu0_ms, cpu_ms;  /* process user + system CPU */
    bool stopped;
    struct llmb_llm_timeline tl; /* throughput and concurrency over time:
                                    on_wire here, request ends from the
                                    run (llm_timeline.c) */
};

#define LLMB_LLM_PROBE_MS 10
#define LLMB_LLM_LAG_WARN_MS 5.0      /* lag p99 above: a warning */
#define LLMB_LLM_CPU_WARN_PCT 80.0    /* CPU of one core above: a warning */
#define LLMB_LLM_WIRE_WARN 0.9        /* peak below this share of the
                                         concurrency asked: a warning */

/* Starts measuring on loop (arms the probe timer). */
void llmb_llm_client_start(struct llmb_llm_client *c, struct ev_loop *loop);
/* A request was written on its socket at now / ended at now. */
void llmb_llm_client_sent(struct llmb_llm_client *c, int64_t now);
void llmb_llm_client_ended(struct llmb_llm_client *c, int64_t now);
/* Stops measuring (the probe too); idempotent. */
void llmb_llm_client_stop(struct llmb_llm_client *c);
/* Stops and frees the samples; accepts a zeroed struct. */
void llmb_llm_client_fini(struct llmb_llm_client *c);

/* Adds the client's figures to the result's summary object and, when the
 * client may have limited the measurement, strings to warnings (a JSON
 * array). c must be stopped. */
void llmb_llm_client_json(const struct llmb_llm_client *c,
                          const struct llmb_llm_spec *spec,
                          json_t *summary, json_t *warnings);

/* The task result: {"endpoint", "model", "api", "stream", "requests":
 * [records], "summary": {...}, "warnings": [...]} (docs/llm.md).
 * duration_ms is the task's wall time; client, when not NULL, adds the
 * client's figures and warnings. The caller frees the text. */
char *llmb_llm_records_result(const struct llmb_llm_records *rs,
                              const struct llmb_llm_spec *spec,
                              const struct llmb_llm_client *client,
                              double duration_ms, size_t *len);

/* ---- one request (llm_request.c) -------------------------------------- */

struct llmb_llm_run;
struct llmb_llm_req;

/* Starts request index of run in the run's slot; it reports to
 * llmb_llm_run_req_done() (from the loop, never from inside this call).
 * queued_ms as in the record; due_us is when it was due (arrived, with a
 * free slot), where its send_delay_ms starts. */
struct llmb_llm_req *llmb_llm_req_start(struct llmb_llm_run *run, long index,
                                        size_t slot, double queued_ms,
                                        int64_t due_us);

/* The slot given at start. */
size_t llmb_llm_req_slot(const struct llmb_llm_req *req);

/* Stops req at once and frees it, reporting nothing. */
void llmb_llm_req_free(struct llmb_llm_req *req);

/* ---- one task (llm_run.c) --------------------------------------------- */

/* Runs of one executor instance, so that fini can free them. */
struct llmb_llm_run_list {
    struct llmb_llm_run *head;
};

/* Starts a run of spec (taken over) for task t on multi, linked into
 * list. done/token as in the executor ABI: done is called once, from the
 * loop, and may be called from inside this call (then NULL is returned).
 * Random numbers come from spec->seed when given, else from getrandom. */
struct llmb_llm_run *llmb_llm_run_start(struct llmb_llm_run_list *list,
                                        struct llmb_llm_multi *multi,
                                        struct llmb_llm_spec *spec,
                                        const struct llmb_exec_task *t,
                                        llmb_exec_done_fn *done, void *token);

/* Cancels: stops every request, reports an error through done and frees
 * the run. */
void llmb_llm_run_cancel(struct llmb_llm_run *run);

/* Frees a run without reporting (the worker is going away). */
void llmb_llm_run_free(struct llmb_llm_run *run);

/* For llm_request.c: the run's spec, multi handle, shared headers and a
 * uniform random number in [0, 1). */
const struct llmb_llm_spec *llmb_llm_run_spec(const struct llmb_llm_run *run);
struct llmb_llm_multi *llmb_llm_run_multi(const struct llmb_llm_run *run);
struct curl_slist *llmb_llm_run_headers(const struct llmb_llm_run *run);
/* For llm_request.c: when the run's requests go through the own client
 * (llm_conn.c), the head of each (request line and headers, up to the
 * value of Content-Length), *len its length, *origin the URL's
 * authority; else NULL. */
const char *llmb_llm_run_h1_head(const struct llmb_llm_run *run,
                                 size_t *len, const char **origin);
double llmb_llm_run_random(struct llmb_llm_run *run);
/* For llm_request.c: the run's client measurements (a request reports
 * when it goes on the wire and when it leaves it). */
struct llmb_llm_client *llmb_llm_run_client(struct llmb_llm_run *run);

/* For llm_request.c: request req of run ended with rec (taken over); req
 * is freed by the run. */
void llmb_llm_run_req_done(struct llmb_llm_run *run, struct llmb_llm_req *req,
                           struct llmb_llm_record *rec);

/* The executor tables and llmb_llm_instance_new() are declared in
 * executors.h, with the other built-ins. */

#endif
