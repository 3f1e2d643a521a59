/*
 * One task of the llm executor: sends spec->requests requests, at most
 * spec->concurrency in flight, and when spec->rate is set, paced by
 * Poisson arrivals (exponential gaps with mean 1/rate, the first at
 * once). An arrival that finds every slot busy waits for one; its wait is
 * the record's queued_ms. A request waiting to be retried keeps its slot.
 *
 * Starts are spread: at most LAUNCH_PER_PASS requests start in one pass
 * of the event loop, the rest in the next passes (an ev_check runs them,
 * an ev_idle keeps the loop from sleeping meanwhile), so that thousands
 * of due requests, at the start or freed by synchronized ends, do not
 * hold the loop while responses wait to be stamped. What a request waits
 * here is part of its send_delay_ms, never of its latencies.
 *
 * Run control (docs/llm.md, "Run control"): with start_at_ms the task
 * first waits for that wall-clock time; with "start": "together" it
 * registers in its job's rendezvous (llmb_llm_rendezvous: the worker's
 * llmb_rendezvous call) and asks again, RV_POLL_S after the first call
 * and twice as long each time up to RV_POLL_MAX_S (announcing each wait,
 * so that Redis sets the start far enough ahead for every waiter to hear
 * of it), until Redis sets the common start, then waits for it on the
 * Redis clock; then warmup_requests requests (or, with warmup_s, as many
 * as that time allows, the first of the two ending the warm-up's sending)
 * run at full concurrency and are thrown away, and only once the last of
 * them has ended does the measured run start (its clock, its client
 * figures, its arrivals); with "together", once every task's warm-up has
 * ended, at a second common start (the rendezvous's "measure" meeting),
 * so that no task measures while another still warms up. duration_s stops
 * sending that long after the measured start: what is in flight then
 * runs to its end and counts, what has not been sent never is. ramp_up_s
 * opens the slots one by one, linearly from 1 to concurrency over that
 * time.
 *
 * When the last request has ended the run reports the task: the result
 * JSON (llm_record.c), or an error when every request failed, since a
 * benchmark of nothing but errors says the endpoint or the payload is
 * wrong. Cancel stops every request at once.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <llmb/list.h>
#include <llmb/log.h>

#include "llm.h"

/* Requests started in one loop pass at most. A start costs libcurl 30 to
 * 100 us (more with more connections in its cache), and curl runs a
 * pass's starts before the next pass reads its sockets: 8 keep that
 * under LLMB_LLM_PASS_FRESH_US, so the next pass's bytes are stamped
 * with its poll. 32 held reads up to 4 ms at 2,048 streams. */
#define LAUNCH_PER_PASS 8

llmb_llm_rendezvous_fn *llmb_llm_rendezvous;

/* A call to llmb_llm_rendezvous in flight; the run forgets it (run =
 * NULL) when it is freed before the reply. */
struct rv_call {
    struct llmb_llm_run *run;
};

struct llmb_llm_run {
    struct llmb_llm_run_list *list;
    struct llmb_llm_run *prev, *next;
    struct llmb_llm_multi *multi;
    struct llmb_llm_spec spec;
    struct curl_slist *headers;  /* shared by every request */
    char *h1_head;               /* or, on the own client (llm_conn.c), the
                                    head of each request up to its
                                    Content-Length value; else NULL */
    size_t h1_head_len;
    char *h1_origin;             /* the URL's authority */
    llmb_exec_done_fn *done;
    void *token;
    char *job;                   /* for logs */
    long task;

    struct llmb_llm_records recs;
    struct llmb_llm_req **slots; /* concurrency of them; NULL = free */
    size_t *free_slots;          /* stack of free slot numbers */
    int64_t *slot_free_us;       /* when each slot was last freed */
    size_t nfree;
    long launched, finished, arrived;
    long total;                  /* requests of the phase; duration_s's
                                    end lowers it to those launched */
    bool warming;                /* the warm-up phase: records dropped */
    long open;                   /* slots ramp_up_s has opened */
    double *arrivals;            /* arrival times (s from start) when
                                    pacing, of the requests from
                                    arrivals_base on (those launched
                                    before are dropped); ncap of them */
    size_t ncap;
    long arrivals_base;
    double next_arrival_s;
    int64_t start_us;
    ev_timer pace;
    ev_timer wait;               /* until start_at_ms, or the common
                                    start of "start": "together" */
    ev_timer poll;               /* the next call to the rendezvous */
    struct rv_call *rv;          /* that call in flight; NULL = none */
    int64_t rv_first_us;         /* the first call; 0 = none yet */
    double rv_poll_s;            /* the wait after the call in flight */
    bool rv_measure;             /* meeting for the measured start */
    int64_t warm_end_us;         /* when the warm-up ended; 0 = not yet */
    ev_timer stop;               /* duration_s after the measured start */
    ev_timer ramp;               /* opens the next slot */
    ev_check spread;             /* starts the next requests due */
    ev_idle awake;               /* no sleeping while some are due */
    unsigned pass;               /* loop pass of the budget below */
    int budget;                  /* starts left in that pass */
    struct llmb_llm_client client;
    struct llmb_llm_load *load;  /* reading the task's dataset */
    uint64_t rng;                /* xorshift64* */
};

double llmb_llm_run_random(struct llmb_llm_run *run)
{
    run->rng ^= run->rng >> 12;
    run->rng ^= run->rng << 25;
    run->rng ^= run->rng >> 27;
    return (double)((run->rng * 2685821657736338717ULL) >> 11) *
           (1.0 / 9007199254740992.0);
}

const struct llmb_llm_spec *llmb_llm_run_spec(const struct llmb_llm_run *run)
{
    return &run->spec;
}

struct llmb_llm_multi *llmb_llm_run_multi(const struct llmb_llm_run *run)
{
    return run->multi;
}

const char *llmb_llm_run_h1_head(const struct llmb_llm_run *run,
                                 size_t *len, const char **origin)
{
    *len = run->h1_head_len;
    *origin = run->h1_origin;
    return run->h1_head;
}

struct curl_slist *llmb_llm_run_headers(const struct llmb_llm_run *run)
{
    return run->headers;
}

struct llmb_llm_client *llmb_llm_run_client(struct llmb_llm_run *run)
{
    return &run->client;
}

void llmb_llm_run_free(struct llmb_llm_run *run)
{
    struct ev_loop *loop = NULL;

    if (run == NULL)
        return;
    loop = llmb_llm_multi_loop(run->multi);
    llmb_llm_load_abort(run->load);
    ev_timer_stop(loop, &run->pace);
    ev_timer_stop(loop, &run->wait);
    ev_timer_stop(loop, &run->poll);
    if (run->rv != NULL)
        run->rv->run = NULL; /* its reply finds no run */
    ev_timer_stop(loop, &run->stop);
    ev_timer_stop(loop, &run->ramp);
    ev_check_stop(loop, &run->spread);
    ev_idle_stop(loop, &run->awake);
    for (long i = 0; i < run->spec.concurrency; i++)
        llmb_llm_req_free(run->slots[i]);
    llmb_llm_client_fini(&run->client);
    if (run->list != NULL)
        LLMB_LIST_REMOVE(run->list->head, run);
    llmb_curl.slist_free_all(run->headers);
    free(run->h1_head);
    free(run->h1_origin);
    llmb_llm_records_fini(&run->recs);
    llmb_llm_spec_fini(&run->spec);
    free(run->slots);
    free(run->free_slots);
    free(run->slot_free_us);
    free(run->arrivals);
    free(run->job);
    free(run);
}

static double elapsed_s(const struct llmb_llm_run *run)
{
    return (double)(llmb_mono_us() - run->start_us) / 1e6;
}

/* Reports the task and frees the run. */
static void finish(struct llmb_llm_run *run)
{
    double ms = (double)(llmb_mono_us() - run->start_us) / 1000.0;
    const struct llmb_llm_records *rs = &run->recs;

    llmb_llm_client_stop(&run->client);
    llmb_llm_records_flush(&run->recs); /* before the outcome */
    if (rs->seen > 0 && rs->ok == 0) {
        struct llmb_buf b;
        llmb_buf_init(&b);
        llmb_buf_appendf(&b, "all %llu requests failed (",
                         (unsigned long long)rs->seen);
        for (int c = 1, k = 0; c < LLMB_LLM_NCLASS; c++)
            if (rs->errors[c] > 0)
                llmb_buf_appendf(&b, "%s%s %ld", k++ > 0 ? ", " : "",
                                 llmb_llm_class_name(
                                     (enum llmb_llm_class)c),
                                 rs->errors[c]);
        llmb_buf_appendf(&b, "); first: %s", rs->first_error);
        run->done(run->token, LLMB_EXEC_ERROR, b.data, b.len);
        llmb_buf_fini(&b);
    } else {
        size_t len = 0;
        char *text = llmb_llm_records_result(rs, &run->spec, &run->client,
                                             ms, &len);
        llmb_info("llm task done job=%s task=%ld endpoint=%s requests=%llu "
                  "ok=%ld failed=%ld ms=%.0f", run->job, run->task,
                  run->spec.ep->name, (unsigned long long)rs->seen, rs->ok,
                  rs->failed, ms);
        run->done(run->token, LLMB_EXEC_OK, text, len);
        free(text);
    }
    llmb_llm_run_free(run);
}

/* Starts what the free slots, the arrivals and this loop pass's budget
 * allow; what the budget leaves waits for the next pass (spread_cb). */
static void launch(struct llmb_llm_run *run)
{
    struct ev_loop *loop = llmb_llm_multi_loop(run->multi);
    unsigned pass = ev_iteration(loop);

    if (pass != run->pass) {
        run->pass = pass;
        run->budget = LAUNCH_PER_PASS;
    }
    while (run->nfree > 0 && run->launched < run->arrived &&
           run->spec.concurrency - (long)run->nfree < run->open) {
        size_t slot;
        int64_t due, arrival;
        double queued = -1.0;

        if (run->budget == 0) {
            ev_check_start(loop, &run->spread);
            ev_idle_start(loop, &run->awake);
            return;
        }
        run->budget--;
        slot = run->free_slots[--run->nfree];
        due = run->slot_free_us[slot];
        if (run->arrivals != NULL) {
            arrival = run->start_us + (int64_t)(run->arrivals[
                          run->launched - run->arrivals_base] * 1e6);
            queued = due > arrival ? (double)(due - arrival) / 1000.0 : 0;
            if (arrival > due)
                due = arrival;
        }
        /* warm-up request w is -(w + 1): prompts of its own, not the
         * first measured ones' (llmb_llm_workload_body) */
        run->slots[slot] = llmb_llm_req_start(run, run->warming ?
                                              -(run->launched + 1) :
                                              run->launched, slot,
                                              queued, due);
        run->launched++;
    }
    ev_check_stop(loop, &run->spread);
    ev_idle_stop(loop, &run->awake);
}

static void spread_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    (void)loop;
    (void)revents;
    launch(w->data);
}

/* Only keeps the loop polling without sleeping while starts wait. */
static void awake_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

/* Makes room for one more arrival: drops those launched when they are
 * half the array or more, else doubles it. So the array holds the
 * arrivals not yet launched, not every one of a long paced run. */
static void arrivals_room(struct llmb_llm_run *run)
{
    size_t done = (size_t)(run->launched - run->arrivals_base);

    if ((size_t)(run->arrived - run->arrivals_base) < run->ncap)
        return;
    if (done > 0 && done >= run->ncap / 2) {
        memmove(run->arrivals, run->arrivals + done,
                (run->ncap - done) * sizeof(*run->arrivals));
        run->arrivals_base = run->launched;
        return;
    }
    run->ncap *= 2;
    run->arrivals = llmb_xrealloc(run->arrivals,
                                  run->ncap * sizeof(*run->arrivals));
}

/* Counts the arrivals that are due and arms the timer for the next. */
static void pace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct llmb_llm_run *run = w->data;
    double now = elapsed_s(run);

    (void)revents;
    while (run->arrived < run->total &&
           run->next_arrival_s <= now + 0.0002) {
        arrivals_room(run);
        run->arrivals[run->arrived++ - run->arrivals_base] =
            run->next_arrival_s;
        run->next_arrival_s += -log(1.0 - llmb_llm_run_random(run)) /
                               run->spec.rate;
    }
    if (run->arrived < run->total) {
        ev_timer_set(w, run->next_arrival_s - now, 0.0);
        ev_timer_start(loop, w);
    }
    launch(run);
}

static void measure(struct llmb_llm_run *run);
static void warmed(struct llmb_llm_run *run);

/* duration_s (warmup_s in the warm-up) is up: nothing more is sent; the
 * phase ends with the last request in flight (at once when there is
 * none). */
static void stop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct llmb_llm_run *run = w->data;

    (void)revents;
    ev_timer_stop(loop, &run->pace);
    ev_timer_stop(loop, &run->ramp);
    run->total = run->arrived = run->launched;
    if (run->finished < run->total)
        return;
    if (run->warming)
        warmed(run);
    else
        finish(run);
}

/* Opens one more slot and arms the timer for the next: slot k + 1 opens
 * at k / (concurrency - 1) of ramp_up_s. */
static void ramp_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct llmb_llm_run *run = w->data;

    (void)revents;
    if (run->open < run->spec.concurrency)
        run->open++;
    if (run->open < run->spec.concurrency) {
        double at = run->spec.ramp_up_s * (double)run->open /
                    (double)(run->spec.concurrency - 1);
        ev_timer_set(w, at > elapsed_s(run) ? at - elapsed_s(run) : 0.0, 0.0);
        ev_timer_start(loop, w);
    }
    launch(run);
}

/* Starts the measured phase: its clock, client figures, duration, ramp
 * and arrivals. */
static void measure(struct llmb_llm_run *run)
{
    struct ev_loop *loop = llmb_llm_multi_loop(run->multi);

    ev_timer_stop(loop, &run->stop); /* warmup_s's, when requests ended
                                        the warm-up first */
    run->warming = false;
    if (run->warm_end_us > 0)
        run->recs.start.measure_wait_ms = (double)(llmb_mono_us() -
                                                   run->warm_end_us) / 1000.0;
    llmb_llm_records_mark_start(&run->recs);
    run->launched = run->finished = run->arrived = 0;
    run->total = run->spec.requests;
    run->start_us = llmb_mono_us();
    for (long i = 0; i < run->spec.concurrency; i++)
        run->slot_free_us[i] = run->start_us;
    llmb_llm_client_fini(&run->client);
    llmb_llm_client_start(&run->client, loop);
    run->open = run->spec.concurrency;
    if (run->spec.ramp_up_s > 0 && run->spec.concurrency > 1) {
        run->open = 1;
        ev_timer_set(&run->ramp, run->spec.ramp_up_s /
                     (double)(run->spec.concurrency - 1), 0.0);
        ev_timer_start(loop, &run->ramp);
    }
    if (run->spec.duration_s > 0) {
        ev_timer_set(&run->stop, run->spec.duration_s, 0.0);
        ev_timer_start(loop, &run->stop);
    }
    if (run->spec.rate > 0) {
        run->ncap = run->total < 1024 ? (size_t)run->total : 1024;
        run->arrivals = llmb_xcalloc(run->ncap, sizeof(*run->arrivals));
        run->arrivals_base = 0;
        run->next_arrival_s = 0.0;
        pace_cb(loop, &run->pace, 0);
    } else {
        run->arrived = run->total;
        launch(run);
    }
}

#define RV_POLL_S 0.02     /* the first wait between calls while the
                              start is not set */
#define RV_POLL_MAX_S 0.5  /* the longest: the start is set this much
                              later, at worst, than every task arrived */
#define RV_RETRY_S 0.25    /* while the lease is not held */

static void rv_poll(struct llmb_llm_run *run);
static void begin(struct llmb_llm_run *run);

static void rv_again(struct llmb_llm_run *run, double s)
{
    ev_timer_set(&run->poll, s, 0.0);
    ev_timer_start(llmb_llm_multi_loop(run->multi), &run->poll);
}

static void poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    rv_poll(w->data);
}

/* The start the rendezvous gave has come: the warm-up (begin) or, after
 * it, the measured run. */
static void rv_go(struct llmb_llm_run *run)
{
    if (run->rv_measure)
        measure(run);
    else
        begin(run);
}

/* The rendezvous answered: ask again, after the wait announced in the
 * call (doubled for the next one), until the start is set, then wait for
 * it (on the Redis clock: start - now of the reply) and go. A task whose
 * lease is gone keeps asking, slowly, until the worker drops it. */
static void rv_reply(void *arg, const char *err, const struct llmb_llm_rv *rv)
{
    struct rv_call *call = arg;
    struct llmb_llm_run *run = call->run;
    struct llmb_llm_start *st;
    int64_t delay;
    double late;

    free(call);
    if (run == NULL)
        return;
    run->rv = NULL;
    if (run->spec.requests == 0 && err == NULL) {
        finish(run); /* registered (or its lease is gone): nothing to send */
        return;
    }
    if (err != NULL || !rv->held) {
        llmb_warn("llm task start rendezvous: %s job=%s task=%ld",
                  err != NULL ? err : "the lease is not held", run->job,
                  run->task);
        /* After an error, again within the wait the call announced (the
         * start is set counting on it); a task whose lease is gone,
         * slowly. */
        rv_again(run, err != NULL ? run->rv_poll_s : RV_RETRY_S);
        return;
    }
    if (rv->start_ms < 0) {
        double wait = run->rv_poll_s;
        run->rv_poll_s = wait * 2 < RV_POLL_MAX_S ? wait * 2 : RV_POLL_MAX_S;
        rv_again(run, wait);
        return;
    }
    st = &run->recs.start;
    delay = rv->start_ms - rv->now_ms;
    late = delay < 0 ? (double)-delay : 0.0;
    if (run->rv_measure) {
        st->measure = true;
        st->mrv = *rv;
        st->measure_late_ms = late;
    } else {
        st->together = true;
        st->rv = *rv;
        st->late_ms = late;
    }
    if (delay <= 0) {
        if (-delay > 1000)
            llmb_warn("llm task arrived %lld ms after the common %s "
                      "job=%s task=%ld", (long long)-delay,
                      run->rv_measure ? "measured start" : "start",
                      run->job, run->task);
        rv_go(run);
        return;
    }
    ev_timer_set(&run->wait, (double)delay / 1000.0, 0.0);
    ev_timer_start(llmb_llm_multi_loop(run->multi), &run->wait);
}

/* Registers the task in its job's rendezvous (again): at the start,
 * "none" when it has nothing to send, or at the measured start. */
static void rv_poll(struct llmb_llm_run *run)
{
    struct rv_call *call = llmb_xmalloc(sizeof(*call));
    const char *phase = run->rv_measure ? "measure" :
                        run->spec.requests == 0 ? "none" : "start";

    if (run->rv_first_us == 0)
        run->rv_first_us = llmb_mono_us();
    if (run->rv_poll_s <= 0)
        run->rv_poll_s = RV_POLL_S;
    call->run = run;
    run->recs.start.calls++;
    if (llmb_llm_rendezvous(run->token,
                            (long)(run->spec.start_timeout_s * 1000.0),
                            phase, lround(run->rv_poll_s * 1000.0),
                            rv_reply, call) != 0) {
        free(call);
        rv_again(run, run->rv_poll_s); /* within the wait announced */
        return;
    }
    run->rv = call;
}

/* The start: with "start": "together", once the job's rendezvous says so
 * (without a worker to ask, at once); then the warm-up first, when there
 * is one: warmup_requests requests, or as many as warmup_s allows,
 * whichever ends first. */
static void begin(struct llmb_llm_run *run)
{
    if (run->spec.together && llmb_llm_rendezvous != NULL &&
        !run->recs.start.together) {
        rv_poll(run);
        return;
    }
    if (run->rv_first_us > 0)
        run->recs.start.wait_ms = (double)(llmb_mono_us() -
                                           run->rv_first_us) / 1000.0;
    if (run->spec.warmup_requests == 0 && run->spec.warmup_s <= 0) {
        measure(run);
        return;
    }
    run->warming = true;
    run->open = run->spec.concurrency;
    run->total = run->arrived = run->spec.warmup_requests > 0 ?
                                run->spec.warmup_requests :
                                LLMB_LLM_UNBOUNDED;
    if (run->spec.warmup_s > 0) {
        ev_timer_set(&run->stop, run->spec.warmup_s, 0.0);
        ev_timer_start(llmb_llm_multi_loop(run->multi), &run->stop);
    }
    launch(run);
}

static void wait_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    rv_go(w->data);
}

/* The warm-up has ended, its last request too. With "start": "together"
 * the job's tasks meet again, so that every one starts measuring at one
 * time, none while another still warms up (docs/llm.md, "Run control");
 * otherwise the measured run starts now. */
static void warmed(struct llmb_llm_run *run)
{
    ev_timer_stop(llmb_llm_multi_loop(run->multi), &run->stop);
    if (!run->recs.start.together || llmb_llm_rendezvous == NULL) {
        measure(run);
        return;
    }
    run->rv_measure = true;
    run->rv_poll_s = RV_POLL_S;
    run->warm_end_us = llmb_mono_us();
    rv_poll(run);
}

void llmb_llm_run_req_done(struct llmb_llm_run *run, struct llmb_llm_req *req,
                           struct llmb_llm_record *rec)
{
    size_t slot = llmb_llm_req_slot(req);

    if (rec->cls != LLMB_LLM_OK)
        llmb_debug("llm request failed job=%s task=%ld class=%s status=%ld "
                   "attempts=%ld error=\"%s\"", run->job, run->task,
                   llmb_llm_class_name(rec->cls), rec->status, rec->attempts,
                   rec->message != NULL ? rec->message : "");
    if (run->warming) {
        free(rec->message);
        free(rec->gaps_us);
    } else {
        llmb_llm_timeline_end(&run->client.tl, rec, llmb_mono_us());
        llmb_llm_records_add(&run->recs, rec, llmb_llm_run_random(run));
    }
    llmb_llm_req_free(req);
    run->slots[slot] = NULL;
    run->free_slots[run->nfree++] = slot;
    run->slot_free_us[slot] = llmb_mono_us();
    run->finished++;
    if (run->finished < run->total)
        launch(run);
    else if (run->warming)
        warmed(run);
    else
        finish(run);
}

void llmb_llm_run_cancel(struct llmb_llm_run *run)
{
    static const char msg[] = "cancelled";
    llmb_exec_done_fn *done = run->done;
    void *token = run->token;

    llmb_llm_run_free(run);
    done(token, LLMB_EXEC_ERROR, msg, sizeof(msg) - 1);
}

/* The headers of every request of the run. */
static struct curl_slist *headers_new(const struct llmb_llm_spec *spec)
{
    struct curl_slist *h = NULL;

    h = llmb_curl.slist_append(h, "Content-Type: application/json");
    h = llmb_curl.slist_append(h, spec->stream ? "Accept: text/event-stream" :
                                            "Accept: application/json");
    h = llmb_curl.slist_append(h, "Expect:"); /* no 100-continue round trip */
    if (spec->ep->auth_header != NULL)
        h = llmb_curl.slist_append(h, spec->ep->auth_header);
    llmb_assert(h != NULL);
    return h;
}

/* The head of every request of the run on the own client, up to the
 * value of Content-Length: those libcurl adds itself (Host, User-Agent),
 * then the headers headers_new() gave it (h), but those that only take a
 * header of libcurl's away ("Expect:"). *origin gets the URL's
 * authority. */
static char *h1_head_new(const struct llmb_llm_spec *spec,
                         const struct curl_slist *h, size_t *len,
                         char **origin)
{
    const char *auth = spec->url + 7; /* llmb_llm_exch_fits: http:// */
    size_t alen = strcspn(auth, "/?#");
    const char *path = auth + alen;
    struct llmb_buf b;

    llmb_buf_init(&b);
    *origin = llmb_xstrndup(auth, alen);
    llmb_buf_appendf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\n"
                     "User-Agent: " LLMB_LLM_USER_AGENT "\r\n",
                     path[0] == '/' ? path : "/", *origin);
    for (; h != NULL; h = h->next) {
        size_t n = strlen(h->data);
        if (n > 0 && h->data[n - 1] != ':')
            llmb_buf_appendf(&b, "%s\r\n", h->data);
    }
    llmb_buf_appendf(&b, "Content-Length: ");
    *len = b.len;
    return llmb_buf_steal(&b);
}

/* The start once the task's dataset (if any) is in: at once, or at
 * start_at_ms. Returns run, or NULL when it ended already. */
static struct llmb_llm_run *run_go(struct llmb_llm_run *run)
{
    if (run->spec.requests == 0) {
        /* a benchmark task with no share of the iterations; with "start":
         * "together" it registers first (once), so that the job's other
         * tasks do not wait start_timeout_s for it */
        if (run->spec.together && llmb_llm_rendezvous != NULL) {
            rv_poll(run);
            return run;
        }
        finish(run);
        return NULL;
    }
    if (run->spec.start_at_ms > 0) {
        struct timespec ts;
        int64_t now_ms;
        clock_gettime(CLOCK_REALTIME, &ts);
        now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        if (run->spec.start_at_ms > now_ms) {
            ev_timer_set(&run->wait,
                         (double)(run->spec.start_at_ms - now_ms) / 1000.0,
                         0.0);
            ev_timer_start(llmb_llm_multi_loop(run->multi), &run->wait);
            return run;
        }
        llmb_warn("llm task starts %lld ms after its start_at_ms job=%s "
                  "task=%ld", (long long)(now_ms - run->spec.start_at_ms),
                  run->job, run->task);
    }
    begin(run);
    return run;
}

/* llmb_llm_load_start's end: the run goes on, or fails with err. */
static void loaded_cb(void *arg, const char *err, bool fatal)
{
    struct llmb_llm_run *run = arg;
    llmb_exec_done_fn *done = run->done;
    void *token = run->token;
    char *msg;

    run->load = NULL;
    if (err == NULL) {
        run_go(run);
        return;
    }
    msg = llmb_xstrdup(err);
    llmb_llm_run_free(run);
    done(token, fatal ? LLMB_EXEC_FATAL : LLMB_EXEC_ERROR, msg, strlen(msg));
    free(msg);
}

struct llmb_llm_run *llmb_llm_run_start(struct llmb_llm_run_list *list,
                                        struct llmb_llm_multi *multi,
                                        struct llmb_llm_spec *spec,
                                        const struct llmb_exec_task *t,
                                        llmb_exec_done_fn *done, void *token)
{
    struct llmb_llm_run *run = llmb_xcalloc(1, sizeof(*run));
    size_t c;

    run->multi = multi;
    run->spec = *spec;
    memset(spec, 0, sizeof(*spec));
    run->done = done;
    run->token = token;
    run->job = llmb_xstrdup(t->job);
    run->task = t->task;
    run->start_us = llmb_mono_us();
    if (run->spec.seeded) {
        /* keyed on the replica: an A/B run's pairs get one schedule */
        run->rng = run->spec.seed * 0x9E3779B97F4A7C15ULL +
                   (uint64_t)run->spec.replica * 0xBF58476D1CE4E5B9ULL + 1;
    } else if (getrandom(&run->rng, sizeof(run->rng), 0) !=
               (ssize_t)sizeof(run->rng)) {
        run->rng = (uint64_t)run->start_us ^ (uint64_t)t->task;
    }
    if (run->rng == 0)
        run->rng = 0x9E3779B97F4A7C15ULL;
    c = (size_t)run->spec.concurrency;
    run->slots = llmb_xcalloc(c, sizeof(*run->slots));
    run->free_slots = llmb_xcalloc(c, sizeof(*run->free_slots));
    for (size_t i = 0; i < c; i++)
        run->free_slots[i] = c - 1 - i;
    run->nfree = c;
    run->slot_free_us = llmb_xcalloc(c, sizeof(*run->slot_free_us));
    for (size_t i = 0; i < c; i++)
        run->slot_free_us[i] = run->start_us;
    llmb_llm_records_init(&run->recs, (size_t)run->spec.max_records,
                          &run->spec.slo);
    llmb_llm_records_sink(&run->recs, token, t->attempt, run->spec.ep->name,
                          run->spec.model);
    run->recs.itls = run->spec.record_itls;
    run->headers = headers_new(&run->spec);
    if (run->spec.ep->own)
        run->h1_head = h1_head_new(&run->spec, run->headers, &run->h1_head_len,
                                   &run->h1_origin);
    ev_timer_init(&run->pace, pace_cb, 0.0, 0.0);
    run->pace.data = run;
    ev_timer_init(&run->wait, wait_cb, 0.0, 0.0);
    run->wait.data = run;
    ev_timer_init(&run->poll, poll_cb, 0.0, 0.0);
    run->poll.data = run;
    ev_timer_init(&run->stop, stop_cb, 0.0, 0.0);
    run->stop.data = run;
    ev_timer_init(&run->ramp, ramp_cb, 0.0, 0.0);
    run->ramp.data = run;
    ev_check_init(&run->spread, spread_cb);
    run->spread.data = run;
    /* after curl's timer in the pass: curl runs the starts of the pass
     * before, then this adds the next ones */
    ev_set_priority(&run->spread, EV_MINPRI);
    ev_idle_init(&run->awake, awake_cb);
    llmb_llm_client_start(&run->client, llmb_llm_multi_loop(multi));

    run->list = list;
    LLMB_LIST_INSERT(list->head, run);

    if (run->spec.wl.kind == LLMB_LLM_WL_DATASET) {
        char *err = NULL;
        run->load = llmb_llm_load_start(&run->spec.wl, token, loaded_cb, run,
                                        &err);
        if (run->load == NULL) {
            llmb_llm_run_free(run);
            done(token, LLMB_EXEC_ERROR, err, strlen(err));
            free(err);
            return NULL;
        }
        return run;
    }
    return run_go(run);
}
