/*
 * What each request of a task sends when the payload has a workload
 * (docs/llm.md, "Workloads"; the payload checks are lib/llmworkload.c):
 *
 *   synthetic  request k of task i gets a prompt of N words and, with
 *              "output_tokens", max_tokens M and ignore_eos true; N and M
 *              are drawn from the generator of (seed, i, k), so a request
 *              is the same whatever order or worker runs it;
 *   dataset    task i of n takes the contiguous part of the job's entries
 *              from floor(i*N/n) to floor((i+1)*N/n) - 1, read from Redis
 *              when the task starts (a chunk of LOAD_CHUNK entries per
 *              call, through llmb_llm_dataset_source); request k sends
 *              entry k mod (its part's size).
 *
 * In an A/B run of P pairs, i and n above are the replica i / P and the
 * number of replicas ceil(n / P): the P tasks of a replica, one per pair,
 * send the same prompts, so the pairs are compared on the same requests.
 *
 * Warm-up request w (0, 1, ...) is k = -(w + 1): synthetic, the generator
 * of (seed, i, k) with that negative k, a domain no measured request
 * draws from; dataset, the part's entries from its last one backwards.
 * So the warm-up does not send the first measured requests' prompts
 * ahead of them (a server's prefix cache would flatter their TTFT).
 *
 * Each request's body is the payload's body (every field checked and set
 * as for a fixed prompt) with the prompt or messages of its entry, and its
 * max_tokens when the workload gives one. The payload's members are kept
 * once as text and each body is spliced from them and its entry's value:
 * a task's part of a dataset costs its entries' bytes, not an entry's
 * bytes plus the payload's per entry, and a request no JSON work.
 */
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>
#include <llmb/log.h>

#include "llm.h"

#define LOAD_CHUNK 256 /* entries per read: llmb_dataset_read's limit */

llmb_llm_source_fn *llmb_llm_dataset_source;

int llmb_llm_workload_parse(struct llmb_llm_workload *wl, const json_t *o,
                            const char *kind, const struct llmb_exec_task *t,
                            long replica, long replicas, char **errstr)
{
    json_t *syn = llmb_llm_workload_field(o, "synthetic");
    json_t *ds = llmb_llm_workload_field(o, "dataset");
    long n = replicas > 0 ? replicas : 1;

    memset(wl, 0, sizeof(*wl));
    wl->task = replica;
    wl->job = llmb_xstrdup(t->job);
    if (syn != NULL) {
        if (llmb_llm_synthetic_parse(syn, kind, &wl->syn, errstr) != 0)
            return -1;
        wl->kind = LLMB_LLM_WL_SYNTHETIC;
        wl->completions = wl->syn.completions;
    } else if (ds != NULL) {
        if (llmb_llm_dataset_parse(ds, kind, &wl->ds, errstr) != 0)
            return -1;
        wl->kind = LLMB_LLM_WL_DATASET;
        wl->completions = wl->ds.completions;
        wl->first = (long)((long long)replica * wl->ds.entries / n);
        wl->count = (long)((long long)(replica + 1) * wl->ds.entries / n) -
                    wl->first;
        if (wl->count <= 0) {
            *errstr = llmb_xasprintf("%s payload: a dataset of %ld entries "
                                     "has none for task %ld of %ld; use at "
                                     "most %ld tasks", kind, wl->ds.entries,
                                     t->task, t->tasks > 0 ? t->tasks : 1,
                                     wl->ds.entries);
            return -1;
        }
    }
    return 0;
}

/* o's members as compact JSON without the braces (caller frees; "" when
 * o has none). */
static char *members_text(const json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    size_t n;

    llmb_assert(s != NULL);
    n = strlen(s);
    memmove(s, s + 1, n - 2); /* "{...}" -> "..." */
    s[n - 2] = '\0';
    return s;
}

void llmb_llm_workload_set_body(struct llmb_llm_workload *wl,
                                const json_t *body)
{
    json_t *b = json_deep_copy(body);

    json_object_del(b, "prompt");
    json_object_del(b, "messages");
    free(wl->rest[0]);
    wl->rest[0] = members_text(b);
    json_object_del(b, "max_completion_tokens");
    json_object_del(b, "max_tokens");
    /* a synthetic output length is sent exactly unless the payload says */
    if (wl->kind == LLMB_LLM_WL_SYNTHETIC &&
        json_object_get(b, "ignore_eos") == NULL)
        json_object_set_new(b, "ignore_eos", json_true());
    free(wl->rest[1]);
    wl->rest[1] = members_text(b);
    json_decref(b);
}

void llmb_llm_workload_fini(struct llmb_llm_workload *wl)
{
    for (long i = 0; i < wl->loaded; i++)
        free(wl->v[i].value);
    free(wl->v);
    free(wl->rest[0]);
    free(wl->rest[1]);
    free(wl->job);
    memset(wl, 0, sizeof(*wl));
}

/* The body of a request sending value (len bytes of compact JSON) as its
 * "prompt" (completions) or "messages" (chat), with max_tokens max when
 * max > 0. Returns the text (caller frees). */
static char *body_make(const struct llmb_llm_workload *wl, const char *value,
                       size_t len, long max, size_t *out_len)
{
    const char *rest = wl->rest[max > 0];
    struct llmb_buf b;

    llmb_buf_init(&b);
    llmb_buf_appendf(&b, "{\"%s\":", wl->completions ? "prompt"
                                                      : "messages");
    llmb_buf_append(&b, value, len);
    if (max > 0)
        llmb_buf_appendf(&b, ",\"max_tokens\":%ld", max);
    if (rest[0] != '\0')
        llmb_buf_appendf(&b, ",%s", rest);
    llmb_buf_append(&b, "}", 1);
    *out_len = b.len;
    return llmb_buf_steal(&b);
}

/* text (a JSON string) as a request's prompt or messages value: itself
 * for completions, one user message for chat. Returns compact JSON
 * (caller frees). */
static char *prompt_value(const struct llmb_llm_workload *wl, json_t *text)
{
    json_t *v = wl->completions ? json_incref(text) :
                json_pack("[{s:s, s:O}]", "role", "user", "content", text);
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

    llmb_assert(s != NULL);
    json_decref(v);
    return s;
}

char *llmb_llm_workload_body(const struct llmb_llm_workload *wl, long k,
                             size_t *len, size_t *input_chars)
{
    uint64_t rng;
    struct llmb_buf words;
    json_t *text;
    long in, out = 0;
    char *v, *s;

    if (wl->kind == LLMB_LLM_WL_DATASET) {
        /* warm-up request -(w + 1): entry w from the part's end */
        long i = k >= 0 ? k % wl->loaded :
                          wl->loaded - 1 - (-(k + 1)) % wl->loaded;
        const struct llmb_llm_wl_entry *e = &wl->v[i];
        *input_chars = e->input_chars;
        return body_make(wl, e->value, e->len, e->max_tokens, len);
    }
    rng = llmb_llm_synthetic_rng(wl->syn.seed, wl->task, k);
    in = llmb_llm_dist_draw(&wl->syn.in, &rng);
    if (wl->syn.has_out)
        out = llmb_llm_dist_draw(&wl->syn.out, &rng);
    llmb_buf_init(&words);
    llmb_llm_synthetic_words(&words, in, &rng);
    *input_chars = words.len;
    text = json_stringn(words.data, words.len);
    llmb_buf_fini(&words);
    v = prompt_value(wl, text);
    json_decref(text);
    s = body_make(wl, v, strlen(v), out, len);
    free(v);
    return s;
}

/* Turns stored entry text (len bytes) into entry e. Returns 0, or
 * -1 with *errstr. */
static int entry_load(struct llmb_llm_workload *wl, long index,
                      const char *text, size_t len,
                      struct llmb_llm_wl_entry *e, char **errstr)
{
    json_t *o = json_loadb(text, len, 0, NULL);
    json_t *prompt = json_object_get(o, "prompt");
    json_t *msgs = json_object_get(o, "messages");
    json_t *ot = json_object_get(o, "output_tokens");
    long max = wl->ds.reference_output && json_is_integer(ot) ?
               (long)json_integer_value(ot) : 0;
    size_t i;
    json_t *m;

    if (!json_is_string(prompt) && !json_is_array(msgs)) {
        *errstr = llmb_xasprintf("dataset entry %ld of job %s is not an "
                                 "entry llmb_dataset stores", index,
                                 wl->job);
        json_decref(o);
        return -1;
    }
    if (msgs != NULL && wl->completions) {
        *errstr = llmb_xasprintf("dataset entry %ld of job %s holds "
                                 "\"messages\"; \"api\": \"completions\" "
                                 "sends prompts only", index, wl->job);
        json_decref(o);
        return -1;
    }
    e->input_chars = 0;
    if (prompt != NULL)
        e->input_chars = json_string_length(prompt);
    json_array_foreach(msgs, i, m)
        e->input_chars += llmb_llm_content_chars(
            json_object_get(m, "content"));
    if (prompt != NULL) {
        e->value = prompt_value(wl, prompt);
    } else {
        e->value = json_dumps(msgs, JSON_COMPACT);
        llmb_assert(e->value != NULL);
    }
    e->len = strlen(e->value);
    e->max_tokens = max;
    json_decref(o);
    return 0;
}

/* Loading a task's part of the dataset. `wl` is NULL once aborted: the
 * read in flight then frees the load when it answers. */
struct llmb_llm_load {
    struct llmb_llm_workload *wl;
    void *token;
    llmb_llm_loaded_fn *done;
    void *arg;
};

static int load_next(struct llmb_llm_load *l, char **errstr);

static void load_rows(void *arg, const char *err, size_t n,
                      const char *const *rows, const size_t *lens)
{
    struct llmb_llm_load *l = arg;
    struct llmb_llm_workload *wl = l->wl;
    char *msg = NULL;
    bool fatal = true;
    long want;

    if (wl == NULL) {
        free(l);
        return;
    }
    want = wl->count - wl->loaded < LOAD_CHUNK ? wl->count - wl->loaded
                                               : LOAD_CHUNK;
    if (err != NULL) {
        msg = llmb_xasprintf("reading the dataset of job %s: %s", wl->job,
                             err);
        fatal = strstr(err, "has no dataset") != NULL;
    } else if ((long)n != want) {
        msg = llmb_xasprintf("the dataset of job %s has %ld entries, its "
                             "payload says %ld", wl->job,
                             wl->first + wl->loaded + (long)n,
                             wl->ds.entries);
    } else {
        for (size_t i = 0; i < n && msg == NULL; i++) {
            if (entry_load(wl, wl->first + wl->loaded, rows[i], lens[i],
                           &wl->v[wl->loaded], &msg) == 0)
                wl->loaded++;
        }
    }
    if (msg == NULL && wl->loaded < wl->count && load_next(l, &msg) == 0)
        return;
    if (msg == NULL)
        llmb_debug("llm dataset loaded job=%s task=%ld entries=%ld",
                   wl->job, wl->task, wl->loaded);
    l->done(l->arg, msg, fatal);
    free(msg);
    free(l);
}

static int load_next(struct llmb_llm_load *l, char **errstr)
{
    struct llmb_llm_workload *wl = l->wl;
    long left = wl->count - wl->loaded;

    if (llmb_llm_dataset_source == NULL ||
        llmb_llm_dataset_source(l->token, wl->job, wl->first + wl->loaded,
                                left < LOAD_CHUNK ? left : LOAD_CHUNK,
                                load_rows, l) != 0) {
        *errstr = llmb_xasprintf("cannot read the dataset of job %s: no "
                                 "connection to Redis", wl->job);
        return -1;
    }
    return 0;
}

struct llmb_llm_load *llmb_llm_load_start(struct llmb_llm_workload *wl,
                                          void *token,
                                          llmb_llm_loaded_fn *done,
                                          void *arg, char **errstr)
{
    struct llmb_llm_load *l = llmb_xcalloc(1, sizeof(*l));

    l->wl = wl;
    l->token = token;
    l->done = done;
    l->arg = arg;
    wl->v = llmb_xcalloc((size_t)wl->count, sizeof(*wl->v));
    if (load_next(l, errstr) != 0) {
        free(l);
        return NULL;
    }
    return l;
}

void llmb_llm_load_abort(struct llmb_llm_load *l)
{
    if (l != NULL)
        l->wl = NULL;
}
