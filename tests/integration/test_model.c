/*
 * A model-based randomized test of the function library. Random sequences
 * of every transition a queue has (push, claim, heartbeat, complete, fail,
 * release, cancel, retry, purge, promote, reap, reap_worker) run against
 * the fixture redis-server, with several workers, short leases, delays and
 * backoffs so that leases expire and delayed tasks come due, and with
 * stale or forged lease tokens on purpose. A small model of every job and
 * task runs alongside: each reply is compared with what the model expects,
 * and after every step the whole queue is read back and compared with the
 * model (check_all lists the invariants).
 *
 * The run is cut in epochs of a few hundred steps, each on a fresh queue;
 * an epoch ends with a drain that must bring every job to its end
 * (liveness). Retention is off (retention_s 0), so no job is deleted under
 * the model.
 *
 *   LLMB_MODEL_SECONDS   length of the run (default 20)
 *   LLMB_MODEL_SEED      replay a run: the seed is printed at the start
 *                        and with every failure
 *   LLMB_MODEL_STEPS     stop after that many steps (0: no limit)
 *   LLMB_MODEL_KEEP_GOING=1  report a violation, start a new epoch and go
 *                        on (the test still fails at the end); for
 *                        hunting several bugs in one long run
 *   LLMB_MODEL_TRACE=1   print every step as it ends (to compare runs)
 *
 * A seed replays the same choices as long as Redis answers the same, but
 * leases and delays follow Redis's clock, and backoffs draw their jitter
 * from Redis's math.random, which no client can repeat. So that a replay
 * sees the same leases expire at the same steps, steps start on a fixed
 * schedule (each takes a whole number of ticks, LLMB_MODEL_TICK_MS,
 * default 4; the sleep operation is a pause in it), leases and delays end
 * half a tick off it, and most backoffs are over by the next step. A
 * replay then follows the run for tens to hundreds of steps, often to the
 * same failure, not always. Expiry and promotion are checked against the
 * times Redis reports (the claim's now, TIME around other calls).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include <llmb/keys.h>
#include <llmb/util.h>

#include "fixture.h"
#include "test_queue_support.h"

#define MAX_JOBS 96     /* jobs of one epoch */
#define ALIVE_MAX 24    /* pushes stop while this many jobs have not ended */
#define BIG_TASKS 1500  /* a fan-out that crosses the 1000 chunk */
#define NWORKERS 4
#define NOLD 2          /* earlier tokens kept per task, to replay them */
#define LOG_N 20        /* operations shown with a failure */
#define LOG_LEN 1200
/* The library's bounds (lua/00-header.lua, 50-cancel.lua): tasks per
 * claim and heartbeat; jobs or tasks per other call, and the default and
 * top of the limits of promote, reap and purge; refs one cancel removes. */
#define TASKS_MAX 1000
#define CALL_MAX 250
#define CANCEL_REFS_MAX 1000

#define NOPS 13 /* kinds of operation (OPS) */

#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

/* ---- the model ---- */

/* Where a task is. */
enum where {
    W_REF_P,  /* its ref "<id>:<idx>" in <base>:pending */
    W_REF_D,  /* its ref in <base>:delayed */
    W_CUR_P,  /* behind its job's cursor "<id>:*" in <base>:pending */
    W_CUR_D,  /* behind the cursor in <base>:delayed */
    W_RUN,    /* in <base>:running and <base>:wl:<worker> */
    W_ENDED,
};

enum outcome { O_NONE, O_COMPLETED, O_FAILED, O_CANCELLED };

enum jstate {
    J_PENDING,    /* nothing claimed in this run */
    J_RUNNING,
    J_CANCELLING, /* state "cancelled", tasks still running */
    J_COMPLETED,
    J_FAILED,
    J_CANCELLED,
};

static const char *const JSTATE[] = {"pending", "running", "cancelled",
                                     "completed", "failed", "cancelled"};
static const char *const OUTCOME[] = {"none", "completed", "failed",
                                      "cancelled"};

/* Kinds of failure, as task_failed knows them. */
enum kind { K_ERROR, K_TIMEOUT, K_FATAL, K_LOST };

/* What the task states of the job hash can say. */
enum rstate {
    RS_ABSENT, RS_PENDING, RS_DELAYED, RS_RUNNING, RS_COMPLETED, RS_FAILED,
    RS_CANCELLED, RS_OTHER,
};
static const char *const RSTATE[] = {"(absent)", "pending", "delayed",
                                     "running", "completed", "failed",
                                     "cancelled", "(other)"};

/* A task as read back from Redis at a check. */
struct rtask {
    unsigned char in_p, in_d, in_r; /* its ref in pending/delayed/running */
    unsigned char wln;              /* lease hashes that hold it */
    signed char wl;                 /* the worker of the last of them */
    unsigned char st;               /* enum rstate of "<idx>:state" */
    signed char fworker;            /* "<idx>:worker": index, -1 absent, -2 other */
    long long attempt;              /* "<idx>:attempt", -1 when absent */
    const char *result;             /* "<idx>:result" or NULL */
    const char *held;               /* value in the lease hash */
    double sd, sr;                  /* scores in delayed, running */
};

/* A task of the model. */
struct mtask {
    unsigned char where;   /* enum where */
    unsigned char outcome; /* last end (enum outcome); O_NONE never ended */
    signed char worker;    /* W_RUN: its holder */
    bool secret;           /* W_RUN: claimed with a secret */
    bool claimed;          /* "<idx>:attempt" exists */
    int attempt;           /* its value */
    long long lo, hi;      /* W_REF_D: due; W_RUN: lease deadline; a range
                              until a check reads the exact value */
    char *tok;             /* W_RUN: the token */
    char *old[NOLD];       /* tokens of earlier leases, newest first */
    char *result;          /* O_COMPLETED: the result */
};

struct mjob {
    char id[80];
    int tasks, prio, max_retries, backoff_ms;
    char type[16], payload[48], timeout[8];
    enum jstate st;
    int left, failed, cancelled; /* of this run */
    long long clo, chi;          /* due of its cursor in delayed */
    bool swept;                  /* its cursor skips completed tasks */
    int version;                 /* retries */
    struct mtask *t;
    struct rtask *r;
    /* read back at a check */
    redisReply *h, *jr;
};

struct model {
    uint64_t seed;
    long step;
    long epoch_steps, epoch_len;
    int epoch;
    char *prefix, *base;
    char secret[NWORKERS][33];
    struct mjob job[MAX_JOBS];
    int njobs;
    long long ok, failed, cancelled; /* <base>:counts */
    long long last_tok;
    int bad_step;   /* violations in this step */
    int bad_total;
    bool keep_going;
    bool trace;
    int weight[NOPS]; /* of each operation in this epoch */
    long long tick_us, next_us; /* the schedule of steps (pace) */
    long long pause_us;         /* a pause to add to it */
    bool big_focus;   /* this epoch pushes, claims and cancels big jobs */
};

static struct model M;

/* What a run exercised, printed at its end. */
static struct {
    long push_jobs, push_bad, push_dup, big, claimed, claims, promoted,
        bad_tokens, completed, bad_results, retried_later, failed, released,
        cancels, retries, purged, reaped, reaped_worker, sweeps,
        cancel_left, met_cancelled, max_refs, hb_cancelled;
    long long us_op, us_check;
} C;
static const char *const WORKER[NWORKERS] = {"w1", "w2", "w3", "w4"};

/* ---- random numbers: xorshift64* ---- */

static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t x = rng_state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 2685821657736338717ULL;
}

/* 0..n-1 */
static int rnd(int n)
{
    return n <= 1 ? 0 : (int)(rng() % (uint64_t)n);
}

static bool chance(int percent)
{
    return rnd(100) < percent;
}

/* ---- the log of the last operations, and violations ---- */

static char oplog[LOG_N][LOG_LEN];
static long oplog_step[LOG_N];

static char *log_cur(void)
{
    return oplog[M.step % LOG_N];
}

static void log_begin(void)
{
    oplog_step[M.step % LOG_N] = M.step;
    log_cur()[0] = '\0';
}

PRINTF_LIKE(1, 2) static void logf_(const char *fmt, ...)
{
    char *s = log_cur();
    size_t n = strlen(s);
    va_list ap;

    if (n >= LOG_LEN - 4)
        return;
    va_start(ap, fmt);
    vsnprintf(s + n, LOG_LEN - n, fmt, ap);
    va_end(ap);
    if (strlen(s) >= LOG_LEN - 4)
        memcpy(s + LOG_LEN - 5, "...", 4);
}

static void log_print(void)
{
    long first = M.step - LOG_N + 1;

    fprintf(stderr, "test_model: the last operations (seed %llu, epoch %d, "
                    "queue %s):\n", (unsigned long long)M.seed, M.epoch,
            M.base);
    for (long s = first < 1 ? 1 : first; s <= M.step; s++)
        if (oplog_step[s % LOG_N] == s)
            fprintf(stderr, "  #%ld %s\n", s, oplog[s % LOG_N]);
}

/* Reports a broken invariant, named by `check`. The step ends with the
 * log and a failure (or a new epoch, when keeping going). */
PRINTF_LIKE(2, 3) static void violation(const char *check, const char *fmt, ...)
{
    va_list ap;

    M.bad_step++;
    M.bad_total++;
    if (M.bad_step > 12)
        return;
    fprintf(stderr, "test_model: VIOLATION [%s] seed=%llu step=%ld: ", check,
            (unsigned long long)M.seed, M.step);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- Redis calls ---- */

struct args {
    int n, cap;
    char **v;
    size_t *len;
};

static void args_add(struct args *a, const char *s)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 16;
        a->v = llmb_xrealloc(a->v, (size_t)a->cap * sizeof(*a->v));
        a->len = llmb_xrealloc(a->len, (size_t)a->cap * sizeof(*a->len));
    }
    a->v[a->n] = llmb_xstrdup(s);
    a->len[a->n] = strlen(s);
    a->n++;
}

PRINTF_LIKE(2, 3) static void args_addf(struct args *a, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = llmb_xvasprintf(fmt, ap);
    va_end(ap);
    args_add(a, s);
    free(s);
}

/* FCALL fn 1 <base> */
static void args_fcall(struct args *a, const char *fn)
{
    args_add(a, "FCALL");
    args_add(a, fn);
    args_add(a, "1");
    args_add(a, M.base);
}

static redisReply *args_run(struct args *a)
{
    redisReply *r = redisCommandArgv(T.c, a->n, (const char **)a->v, a->len);

    if (r == NULL)
        fail_msg("redis: %s", T.c->errstr);
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    free(a->len);
    memset(a, 0, sizeof(*a));
    return r;
}

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(T.c, fmt, ap);
    va_end(ap);
    if (r == NULL)
        fail_msg("redis: %s", T.c->errstr);
    return r;
}

/* Redis's clock in ms, as the functions read it. */
static long long redis_now(void)
{
    redisReply *r = cmd("TIME");
    long long ms;

    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    ms = strtoll(r->element[0]->str, NULL, 10) * 1000 +
         strtoll(r->element[1]->str, NULL, 10) / 1000;
    freeReplyObject(r);
    return ms;
}

static void sleep_us(long long us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000L};

    nanosleep(&ts, NULL);
}

static const char *reply_text(const redisReply *r)
{
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_ERROR ||
        r->type == REDIS_REPLY_STATUS)
        return r->str;
    if (r->type == REDIS_REPLY_NIL)
        return "(nil)";
    if (r->type == REDIS_REPLY_INTEGER)
        return "(integer)";
    return "(array)";
}

/* `ms` moved to half a tick past a whole number of ticks (at least 100 ms
 * when it was): a lease or a delay then ends between two step starts,
 * never on one, so a replay sees it end at the same step. */
static int off_tick(int ms)
{
    int tick = (int)(M.tick_us / 1000);

    if (tick < 2)
        return ms;
    ms = ms / tick * tick + tick / 2;
    return ms < 100 ? ms + tick : ms;
}

/* ---- model helpers ---- */

static struct mjob *job_find(const char *id, size_t len)
{
    for (int i = 0; i < M.njobs; i++)
        if (strlen(M.job[i].id) == len && memcmp(M.job[i].id, id, len) == 0)
            return &M.job[i];
    return NULL;
}

static bool job_ended(const struct mjob *j)
{
    return j->st == J_COMPLETED || j->st == J_FAILED || j->st == J_CANCELLED;
}

static bool waiting(const struct mtask *t)
{
    return t->where <= W_CUR_D;
}

static void task_ref(const struct mjob *j, int x, char *buf, size_t size)
{
    snprintf(buf, size, "%s:%d", j->id, x);
}

static const char *where_name(const struct mtask *t, char *buf, size_t size)
{
    switch (t->where) {
    case W_REF_P: return "pending (ref)";
    case W_REF_D: return "delayed (ref)";
    case W_CUR_P: return "pending (cursor)";
    case W_CUR_D: return "delayed (cursor)";
    case W_RUN:
        snprintf(buf, size, "running (%s)",
                 t->worker >= 0 ? WORKER[t->worker] : "?");
        return buf;
    default:
        snprintf(buf, size, "ended (%s)", OUTCOME[t->outcome]);
        return buf;
    }
}

/* The task leaves its lease: its token becomes an old one. */
static void tok_retire(struct mtask *t)
{
    if (t->tok == NULL)
        return;
    free(t->old[NOLD - 1]);
    memmove(&t->old[1], &t->old[0], (NOLD - 1) * sizeof(t->old[0]));
    t->old[0] = t->tok;
    t->tok = NULL;
    t->worker = -1;
}

static void job_end(struct mjob *j)
{
    if (j->st == J_CANCELLING)
        j->st = J_CANCELLED;
    else if (j->failed > 0)
        j->st = J_FAILED;
    else
        j->st = J_COMPLETED;
}

/* Task x of j ends with `outcome`. */
static void task_end(struct mjob *j, int x, enum outcome outcome,
                     const char *result)
{
    struct mtask *t = &j->t[x];

    tok_retire(t);
    t->where = W_ENDED;
    t->outcome = (unsigned char)outcome;
    free(t->result);
    t->result = result ? llmb_xstrdup(result) : NULL;
    if (outcome == O_COMPLETED) {
        M.ok++;
        C.completed++;
    } else if (outcome == O_FAILED) {
        M.failed++;
        C.failed++;
        j->failed++;
    } else {
        M.cancelled++;
        j->cancelled++;
    }
    j->left--;
    if (j->left == 0)
        job_end(j);
}

/* A running task that did not succeed (task_failed in 05-lifecycle.lua),
 * the call made between Redis times t0 and t1. Returns what fail answers:
 * 1 retried, 2 ended. */
static int task_failed(struct mjob *j, int x, enum kind kind, long long t0,
                       long long t1)
{
    struct mtask *t = &j->t[x];
    int attempt = t->attempt;

    tok_retire(t);
    if (kind != K_FATAL && j->st != J_CANCELLING && attempt <= j->max_retries) {
        if (kind == K_LOST) {
            t->where = W_REF_P;
        } else {
            double d = j->backoff_ms * (double)(1LL << (attempt - 1 < 40 ?
                                                      attempt - 1 : 40));
            if (d > 3600000)
                d = 3600000;
            t->where = W_REF_D;
            t->lo = t0 + (long long)(d / 2);
            t->hi = t1 + (long long)d;
        }
        C.retried_later++;
        return 1;
    }
    task_end(j, x, j->st == J_CANCELLING ? O_CANCELLED : O_FAILED, NULL);
    return 2;
}

static void task_claimed(struct mjob *j, int x, int w, const char *tok,
                         bool secret, int attempt, long long deadline)
{
    struct mtask *t = &j->t[x];

    t->where = W_RUN;
    t->worker = (signed char)w;
    t->tok = llmb_xstrdup(tok);
    t->secret = secret;
    t->claimed = true;
    t->attempt = attempt;
    t->lo = t->hi = deadline;
    if (j->st == J_PENDING)
        j->st = J_RUNNING;
}

static bool in_reply(const redisReply *r, const char *m)
{
    if (r->type != REDIS_REPLY_ARRAY)
        return false;
    for (size_t i = 0; i < r->elements; i++)
        if (strcmp(r->element[i]->str, m) == 0)
            return true;
    return false;
}

static int waiting_refs(const struct mjob *j)
{
    int n = 0;

    for (int x = 0; x < j->tasks; x++)
        n += j->t[x].where == W_REF_P || j->t[x].where == W_REF_D;
    return n;
}

/* Job j, which had not ended, was just cancelled in Redis: its waiting
 * tasks end as cancelled. A cancel takes at most CANCEL_REFS_MAX waiting
 * refs of a fan-out job (a random subset, SPOP): with more, the ones it
 * left are read back and stay waiting. Returns the tasks removed. */
static int job_cancel(struct mjob *j)
{
    int removed = 0;
    redisReply *p = NULL, *d = NULL;
    char ref[100];

    if (j->tasks > 1 && waiting_refs(j) > CANCEL_REFS_MAX) {
        p = cmd("ZRANGE %s:pending 0 -1", M.base);
        d = cmd("ZRANGE %s:delayed 0 -1", M.base);
    }
    j->st = J_CANCELLING;
    for (int x = 0; x < j->tasks; x++) {
        struct mtask *t = &j->t[x];
        if (!waiting(t))
            continue;
        task_ref(j, x, ref, sizeof(ref));
        if (p != NULL && ((t->where == W_REF_P && in_reply(p, ref)) ||
                          (t->where == W_REF_D && in_reply(d, ref))))
            continue;
        removed++;
        task_end(j, x, O_CANCELLED, NULL);
    }
    j->swept = false;
    if (p != NULL) {
        logf_(" (left %d refs waiting)", waiting_refs(j));
        C.cancel_left++;
        freeReplyObject(p);
        freeReplyObject(d);
    }
    return removed;
}

/* Refs a cancel left waiting end as cancelled when a claim or a purge
 * meets them: reads back which did. Returns how many. */
static int refs_met_cancelled(void)
{
    int n = 0;

    for (int i = 0; i < M.njobs; i++) {
        struct mjob *j = &M.job[i];
        if (j->st != J_CANCELLING)
            continue;
        for (int x = 0; x < j->tasks; x++) {
            redisReply *r;
            if (j->t[x].where != W_REF_P && j->t[x].where != W_REF_D)
                continue;
            r = cmd("HGET %s:j:%s %d:state", M.base, j->id, x);
            if (r->type == REDIS_REPLY_STRING && strcmp(r->str, "cancelled") == 0) {
                task_end(j, x, O_CANCELLED, NULL);
                n++;
            }
            freeReplyObject(r);
        }
    }
    return n;
}

/* Waiting members of the model: refs and cursors, in `set` ('p' or 'd'). */
static int members(char set)
{
    int n = 0;

    for (int i = 0; i < M.njobs; i++) {
        struct mjob *j = &M.job[i];
        bool cur = false;
        for (int x = 0; x < j->tasks; x++) {
            int w = j->t[x].where;
            if ((set == 'p' && w == W_REF_P) || (set == 'd' && w == W_REF_D))
                n++;
            if ((set == 'p' && w == W_CUR_P) || (set == 'd' && w == W_CUR_D))
                cur = true;
        }
        n += cur;
    }
    return n;
}

/* A delayed member of the model. */
struct dmember {
    long long due;
    char name[100];
    struct mjob *j;
    int x; /* -1: the cursor */
};

static int dmember_cmp(const void *a, const void *b)
{
    const struct dmember *p = a, *q = b;

    if (p->due != q->due)
        return p->due < q->due ? -1 : 1;
    return strcmp(p->name, q->name);
}

/* The delayed members of the model, in the order of <base>:delayed.
 * Caller frees. */
static struct dmember *delayed_members(int *n)
{
    struct dmember *d = NULL;
    int k = 0, cap = 0;

    for (int i = 0; i < M.njobs; i++) {
        struct mjob *j = &M.job[i];
        bool cur = false;
        for (int x = 0; x < j->tasks && !cur; x++)
            cur = j->t[x].where == W_CUR_D;
        for (int x = -1; x < j->tasks; x++) {
            if (x == -1 ? !cur : j->t[x].where != W_REF_D)
                continue;
            if (k == cap) {
                cap = cap ? 2 * cap : 16;
                d = llmb_xrealloc(d, (size_t)cap * sizeof(*d));
            }
            d[k].j = j;
            d[k].x = x;
            d[k].due = x == -1 ? j->clo : j->t[x].lo;
            if (x == -1)
                snprintf(d[k].name, sizeof(d[k].name), "%s:*", j->id);
            else
                task_ref(j, x, d[k].name, sizeof(d[k].name));
            k++;
        }
    }
    if (k > 1)
        qsort(d, (size_t)k, sizeof(*d), dmember_cmp);
    *n = k;
    return d;
}

/* Moves delayed member m to pending. */
static void promote_member(const struct dmember *m)
{
    struct mjob *j = m->j;

    if (m->x >= 0) {
        j->t[m->x].where = W_REF_P;
        return;
    }
    for (int x = 0; x < j->tasks; x++)
        if (j->t[x].where == W_CUR_D)
            j->t[x].where = W_CUR_P;
}

/* Tasks the model has in each place. */
static void count_places(long long *pending, long long *delayed,
                         long long *running)
{
    *pending = *delayed = *running = 0;
    for (int i = 0; i < M.njobs; i++)
        for (int x = 0; x < M.job[i].tasks; x++) {
            int w = M.job[i].t[x].where;
            if (w == W_REF_P || w == W_CUR_P)
                (*pending)++;
            else if (w == W_REF_D || w == W_CUR_D)
                (*delayed)++;
            else if (w == W_RUN)
                (*running)++;
        }
}

/* A task of the model: job and index. */
struct tref {
    struct mjob *j;
    int x;
};

/* The tasks worker w holds in the model. Caller frees. */
static struct tref *held_by(int w, int *n)
{
    struct tref *v = NULL;
    int k = 0, cap = 0;

    for (int i = 0; i < M.njobs; i++)
        for (int x = 0; x < M.job[i].tasks; x++) {
            struct mtask *t = &M.job[i].t[x];
            if (t->where != W_RUN || (w >= 0 && t->worker != w))
                continue;
            if (k == cap) {
                cap = cap ? 2 * cap : 16;
                v = llmb_xrealloc(v, (size_t)cap * sizeof(*v));
            }
            v[k].j = &M.job[i];
            v[k].x = x;
            k++;
        }
    *n = k;
    return v;
}

static void shuffle(struct tref *v, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int k = rnd(i + 1);
        struct tref tmp = v[i];
        v[i] = v[k];
        v[k] = tmp;
    }
}

/* A worker to act for: mostly one that holds tasks. */
static int pick_worker(void)
{
    int w = rnd(NWORKERS);

    if (chance(85)) {
        for (int k = 0; k < NWORKERS; k++) {
            int n;
            struct tref *v = held_by((w + k) % NWORKERS, &n);
            free(v);
            if (n > 0)
                return (w + k) % NWORKERS;
        }
    }
    return w;
}

/* ---- lease calls: entries with good and bad tokens ---- */

/* One (ref, token) of a lease call. */
struct entry {
    char ref[100];
    char tok[200];
    struct mjob *j; /* the task the ref names */
    int x;
    const char *why; /* how a bad token was made; NULL for the holder's */
};

/* True when the model says worker w holds e's task under e's token. */
static bool entry_opens(const struct entry *e, int w)
{
    const struct mtask *t = &e->j->t[e->x];

    return t->where == W_RUN && t->worker == w && t->tok != NULL &&
           strcmp(t->tok, e->tok) == 0;
}

/* The <seq> of token "<seq>" or "<seq>.<secret>". */
static long long tok_seq(const char *tok)
{
    return strtoll(tok, NULL, 10);
}

/* Makes e a stale or forged token for a task, for a call of worker w.
 * Returns false when no such task exists. */
static bool bad_entry(struct entry *e, int w)
{
    int n, kind = rnd(6);
    struct tref *v;
    bool ok = false;

    if (kind == 0) {
        /* a token of an earlier lease of the same task */
        int tries = 40;
        while (tries-- > 0 && M.njobs > 0) {
            struct mjob *j = &M.job[rnd(M.njobs)];
            int x = rnd(j->tasks);
            int k = rnd(NOLD);
            if (j->t[x].old[k] == NULL)
                continue;
            e->j = j;
            e->x = x;
            snprintf(e->tok, sizeof(e->tok), "%s", j->t[x].old[k]);
            e->why = "token of an earlier lease";
            ok = true;
            break;
        }
        if (ok)
            goto done;
        kind = 1;
    }
    v = held_by(kind == 3 ? -1 : w, &n);
    if (n == 0) {
        free(v);
        return false;
    }
    {
        struct tref r = v[rnd(n)];
        struct mtask *t = &r.j->t[r.x];
        e->j = r.j;
        e->x = r.x;
        switch (kind) {
        case 1: /* "<seq>" alone */
            snprintf(e->tok, sizeof(e->tok), "%lld", tok_seq(t->tok));
            e->why = t->secret ? "forged <seq>" : "forged <seq+1>";
            if (!t->secret)
                snprintf(e->tok, sizeof(e->tok), "%lld", tok_seq(t->tok) + 1);
            break;
        case 2: { /* what the lease hash stores */
            redisReply *h = cmd("HGET %s:wl:%s %s:%d", M.base, WORKER[t->worker],
                                r.j->id, r.x);
            snprintf(e->tok, sizeof(e->tok), "%s",
                     h->type == REDIS_REPLY_STRING ? h->str : "0");
            freeReplyObject(h);
            e->why = "value stored in the lease hash";
            break;
        }
        case 3: /* the holder's token, sent by another worker */
            snprintf(e->tok, sizeof(e->tok), "%s", t->tok);
            e->why = t->worker == w ? "holder's token" : "another worker's token";
            break;
        case 4: { /* the token of another task the worker holds */
            struct tref o = v[rnd(n)];
            snprintf(e->tok, sizeof(e->tok), "%s", o.j->t[o.x].tok);
            e->why = "token of another task";
            break;
        }
        default: /* junk */
            snprintf(e->tok, sizeof(e->tok), "%lld.%s", tok_seq(t->tok),
                     M.secret[(w + 1) % NWORKERS]);
            e->why = "seq with another secret";
            break;
        }
    }
    free(v);
done:
    task_ref(e->j, e->x, e->ref, sizeof(e->ref));
    return true;
}

/* Entries for a lease call of worker w: up to `most` of the tasks it holds
 * (all of them, up to 1000, when `all`), with bad tokens mixed in at random
 * places. Caller frees. */
static struct entry *lease_entries(int w, int most, bool all, int *n)
{
    int nheld, k = 0, want, nbad;
    struct tref *v = held_by(w, &nheld);
    struct entry *e;

    shuffle(v, nheld);
    want = all ? nheld : (nheld == 0 ? 0 : 1 + rnd(most < nheld ? most : nheld));
    if (want > CALL_MAX - 4)
        want = CALL_MAX - 4;
    nbad = chance(35) ? 1 + rnd(2) : 0;
    if (want == 0 && nbad == 0)
        nbad = 1;
    e = llmb_xcalloc((size_t)(want + nbad + 1), sizeof(*e));
    for (int i = 0; i < want; i++) {
        e[k].j = v[i].j;
        e[k].x = v[i].x;
        task_ref(v[i].j, v[i].x, e[k].ref, sizeof(e[k].ref));
        snprintf(e[k].tok, sizeof(e[k].tok), "%s", v[i].j->t[v[i].x].tok);
        k++;
    }
    free(v);
    for (int i = 0; i < nbad; i++) {
        struct entry b;
        int at;
        memset(&b, 0, sizeof(b));
        if (!bad_entry(&b, w))
            continue;
        C.bad_tokens++;
        at = rnd(k + 1);
        memmove(&e[at + 1], &e[at], (size_t)(k - at) * sizeof(*e));
        e[at] = b;
        k++;
    }
    /* sometimes the same good entry twice: it counts once */
    if (k > 0 && chance(5)) {
        e[k] = e[rnd(k)];
        k++;
    }
    *n = k;
    return e;
}

static void log_entries(const struct entry *e, int n)
{
    for (int i = 0; i < n && i < 12; i++)
        logf_(" %s/%s%s%s%s", e[i].ref, e[i].tok, e[i].why ? "(" : "",
              e[i].why ? e[i].why : "", e[i].why ? ")" : "");
    if (n > 12)
        logf_(" ...(%d entries)", n);
}

/* Index of the first entry before `i` with the same ref, or -1. */
static int seen_before(const struct entry *e, int i)
{
    for (int k = 0; k < i; k++)
        if (strcmp(e[k].ref, e[i].ref) == 0)
            return k;
    return -1;
}

/* The entry is accepted: no earlier entry took the same task, and its
 * token opens the lease. `taken` marks the tasks taken so far. */
static bool entry_takes(const struct entry *e, int i, int w, bool *taken)
{
    if (taken[i])
        return false;
    for (int k = 0; k < i; k++)
        if (taken[k] && strcmp(e[k].ref, e[i].ref) == 0)
            return false;
    if (!entry_opens(&e[i], w))
        return false;
    taken[i] = true;
    return true;
}

/* An integer element of a reply array, or LLONG_MIN. */
static long long elem_int(const redisReply *r, size_t i)
{
    if (r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
        r->element[i]->type != REDIS_REPLY_INTEGER)
        return INT64_MIN;
    return r->element[i]->integer;
}

/* Compares an array reply of integers with the model's expectation. */
static void expect_ints(const char *what, const redisReply *r, const int *want,
                        const struct entry *e, int n)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)n) {
        violation("reply", "%s: redis answered %s (%zu elements), model "
                  "expects %d results", what, reply_text(r),
                  r->type == REDIS_REPLY_ARRAY ? r->elements : 0, n);
        return;
    }
    for (int i = 0; i < n; i++) {
        long long got = elem_int(r, (size_t)i);
        if (got != want[i])
            violation(want[i] == 0 || got == 0 ? "token" : "reply",
                      "%s entry %d (%s token %s%s%s): redis answered %lld, "
                      "model expects %d", what, i, e[i].ref, e[i].tok,
                      e[i].why ? ", " : "", e[i].why ? e[i].why : "", got,
                      want[i]);
    }
}

/* ---- operations ---- */

static const char *const BAD_DOCS[] = {
    "{x",
    "[1]",
    "",
    "{\"type\":\"t\",\"tasks\":0}",
    "{\"type\":\"t\",\"priority\":\"high\"}",
    "{\"type\":\"t\",\"bogus\":1}",
    "{\"payload\":{}}",
    "{\"type\":\"t\",\"queue\":\"other\"}",
    "{\"type\":\"t\",\"id\":\"bad:id\"}",
    "{\"type\":\"t\",\"tasks\":1.5}",
    "{\"type\":\"t\",\"payload\":NaN}",
    "{\"type\":\"t\",\"max_retries\":101}",
    "{\"type\":\"t\",\"delay_s\":-1}",
};

/* One document of a push and what the model makes of it. */
struct pdoc {
    char doc[512];
    bool bad;
    char id[80]; /* explicit id, or "" */
    int tasks, prio, max_retries, backoff_ms;
    long long delay_ms;
    char type[16], payload[48], timeout[8];
};

static bool big_alive(void)
{
    for (int i = 0; i < M.njobs; i++)
        if (M.job[i].tasks >= BIG_TASKS && !job_ended(&M.job[i]))
            return true;
    return false;
}

static int alive_jobs(void)
{
    int n = 0;

    for (int i = 0; i < M.njobs; i++)
        n += !job_ended(&M.job[i]);
    return n;
}

static void pdoc_make(struct pdoc *d, bool allow_big)
{
    char delay[32] = "", doc[sizeof(d->doc)];
    int r;

    memset(d, 0, sizeof(*d));
    if (chance(8)) {
        d->bad = true;
        snprintf(d->doc, sizeof(d->doc), "%s",
                 BAD_DOCS[rnd((int)(sizeof(BAD_DOCS) / sizeof(BAD_DOCS[0])))]);
        return;
    }
    r = rnd(100);
    d->tasks = r < 40 ? 1 : r < (M.big_focus ? 80 : 97) || !allow_big ?
               2 + rnd(49) : BIG_TASKS;
    d->prio = rnd(5) - 2;
    d->max_retries = rnd(4);
    /* mostly a backoff over before the next step whatever its jitter
     * (Redis's math.random, which a replay cannot repeat) */
    d->backoff_ms = chance(75) ? 1 : 20 + rnd(130);
    d->delay_ms = 0;
    if (chance(25)) {
        int ms = off_tick(30 + rnd(600));
        d->delay_ms = ms;
        snprintf(delay, sizeof(delay), ",\"delay_s\":%d.%03d", ms / 1000,
                 ms % 1000);
    }
    if (chance(35))
        snprintf(d->id, sizeof(d->id), "x%d", rnd(40));
    snprintf(d->type, sizeof(d->type), "t%d", rnd(3));
    snprintf(d->payload, sizeof(d->payload), "{\"k\":%d,\"a\":[]}", rnd(1000));
    snprintf(d->timeout, sizeof(d->timeout), "%s", chance(50) ? "30" : "0.5");
    snprintf(doc, sizeof(doc),
             "{\"type\":\"%s\",\"payload\":%s,\"priority\":%d,\"tasks\":%d,"
             "\"max_retries\":%d,\"backoff_ms\":%d,\"timeout_s\":%s%s%s%s%s}",
             d->type, d->payload, d->prio, d->tasks, d->max_retries,
             d->backoff_ms, d->timeout, delay, d->id[0] ? ",\"id\":\"" : "",
             d->id, d->id[0] ? "\"" : "");
    memcpy(d->doc, doc, sizeof(d->doc));
}

static void job_add(const struct pdoc *d, const char *id, long long t0,
                    long long t1)
{
    struct mjob *j = &M.job[M.njobs++];

    memset(j, 0, sizeof(*j));
    snprintf(j->id, sizeof(j->id), "%s", id);
    j->tasks = d->tasks;
    j->prio = d->prio;
    j->max_retries = d->max_retries;
    j->backoff_ms = d->backoff_ms;
    memcpy(j->type, d->type, sizeof(j->type));
    memcpy(j->payload, d->payload, sizeof(j->payload));
    memcpy(j->timeout, d->timeout, sizeof(j->timeout));
    j->st = J_PENDING;
    j->left = d->tasks;
    j->t = llmb_xcalloc((size_t)d->tasks, sizeof(*j->t));
    j->r = llmb_xcalloc((size_t)d->tasks, sizeof(*j->r));
    j->clo = t0 + d->delay_ms;
    j->chi = t1 + d->delay_ms;
    for (int x = 0; x < d->tasks; x++) {
        struct mtask *t = &j->t[x];
        t->worker = -1;
        if (d->tasks == 1)
            t->where = d->delay_ms > 0 ? W_REF_D : W_REF_P;
        else
            t->where = d->delay_ms > 0 ? W_CUR_D : W_CUR_P;
        t->lo = j->clo;
        t->hi = j->chi;
    }
}

static void op_push(void)
{
    struct pdoc d[4];
    int n = chance(80) ? 1 : 2 + rnd(3);
    struct args a = {0};
    long long t0, t1;
    redisReply *r;
    bool allow_big = !big_alive();

    if (M.njobs + n > MAX_JOBS)
        n = MAX_JOBS - M.njobs;
    if (n <= 0)
        return;
    args_fcall(&a, "llmb_push");
    logf_("push");
    for (int i = 0; i < n; i++) {
        pdoc_make(&d[i], allow_big);
        if (d[i].tasks >= BIG_TASKS)
            allow_big = false;
        args_add(&a, d[i].doc);
        logf_(" %s", d[i].doc);
    }
    t0 = redis_now();
    r = args_run(&a);
    t1 = redis_now();
    logf_(" ->");
    for (int i = 0; i < n; i++) {
        const redisReply *e = n == 1 ? r : (r->type == REDIS_REPLY_ARRAY &&
                                            (size_t)i < r->elements ?
                                            r->element[i] : NULL);
        bool dup = false;
        if (e == NULL) {
            violation("reply", "push of %d documents: redis answered %s", n,
                      reply_text(r));
            break;
        }
        logf_(" %s", e->type == REDIS_REPLY_ERROR ? "(error)" : reply_text(e));
        if (d[i].bad) {
            C.push_bad++;
            if (e->type != REDIS_REPLY_ERROR)
                violation("reply", "push of the bad document %s: redis "
                          "answered %s, model expects an error", d[i].doc,
                          reply_text(e));
            continue;
        }
        if (e->type != REDIS_REPLY_STRING) {
            violation("reply", "push %s: redis answered %s, model expects an "
                      "id", d[i].doc, reply_text(e));
            continue;
        }
        if (d[i].id[0] != '\0') {
            if (strcmp(e->str, d[i].id) != 0)
                violation("reply", "push %s answered %s", d[i].doc, e->str);
            dup = job_find(d[i].id, strlen(d[i].id)) != NULL;
        } else if (job_find(e->str, e->len) != NULL) {
            violation("reply", "push %s minted the id %s of another job",
                      d[i].doc, e->str);
            continue;
        }
        if (!dup) {
            job_add(&d[i], e->str, t0, t1);
            C.push_jobs++;
            C.big += d[i].tasks >= BIG_TASKS;
        } else {
            C.push_dup++;
        }
    }
    freeReplyObject(r);
}

/* A claim: also checks the promotion it makes, the order it hands tasks
 * out in and that it hands out as many as it can. */
static void op_claim_n(int w, int n, int lease, bool secret, int limit)
{
    struct args a = {0};
    redisReply *r;
    long long now, next_due, count;
    struct dmember *dm;
    int ndm, due = 0, promoted, met;
    int min_prio = 1000000;

    args_fcall(&a, "llmb_claim");
    args_add(&a, WORKER[w]);
    args_addf(&a, "%d", n);
    args_addf(&a, "%d", lease);
    if (limit >= 0 || secret)
        args_addf(&a, "%d", limit >= 0 ? limit : CALL_MAX);
    if (secret)
        args_add(&a, M.secret[w]);
    logf_("claim %s n=%d lease=%d%s limit=%d ->", WORKER[w], n, lease,
          secret ? " secret" : "", limit);
    r = args_run(&a);
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) {
        violation("reply", "claim answered %s", reply_text(r));
        freeReplyObject(r);
        return;
    }
    now = r->element[0]->integer;
    next_due = r->element[1]->integer;
    count = r->element[2]->integer;
    logf_(" now=%lld next_due=%lld count=%lld", now, next_due, count);
    if (count < 0 || count > n || r->elements != 3 + (size_t)count * 8) {
        violation("reply", "claim of %d answered count %lld with %zu elements",
                  n, count, r->elements);
        freeReplyObject(r);
        return;
    }
    /* the promotion: due members, the earliest first, up to the limit */
    dm = delayed_members(&ndm);
    for (int i = 0; i < ndm; i++)
        due += dm[i].due <= now;
    if (limit < 0)
        limit = CALL_MAX;
    promoted = due < limit ? due : limit;
    for (int i = 0; i < promoted; i++)
        promote_member(&dm[i]);
    C.promoted += promoted;
    C.claims++;
    C.claimed += count;
    free(dm);
    if (promoted > 0)
        logf_(" (promoted %d)", promoted);
    for (long long i = 0; i < count; i++) {
        redisReply **e = r->element + 3 + i * 8;
        struct mjob *j;
        struct mtask *t;
        long long x, want_attempt;
        char buf[64];

        if (e[0]->type != REDIS_REPLY_STRING || e[2]->type != REDIS_REPLY_STRING) {
            violation("reply", "claim task %lld is malformed", i);
            continue;
        }
        x = e[1]->integer;
        logf_(" %s:%lld/%s a%lld", e[0]->str, x, e[2]->str, e[3]->integer);
        j = job_find(e[0]->str, e[0]->len);
        if (j == NULL || x < 0 || x >= (j ? j->tasks : 0)) {
            violation("claim", "claim handed %s:%lld, a task the model does "
                      "not know", e[0]->str, x);
            continue;
        }
        t = &j->t[x];
        if (t->where != W_REF_P && t->where != W_CUR_P) {
            violation("claim", "claim handed %s:%lld, which the model has %s",
                      j->id, x, where_name(t, buf, sizeof(buf)));
            continue;
        }
        if (j->st == J_CANCELLING)
            violation("claim", "claim handed %s:%lld of the cancelled job %s",
                      j->id, x, j->id);
        want_attempt = t->where == W_CUR_P ? 1 : t->attempt + 1;
        if (e[3]->integer != want_attempt)
            violation("attempt", "claim of %s:%lld answered attempt %lld, "
                      "model expects %lld", j->id, x, e[3]->integer,
                      want_attempt);
        if (strcmp(reply_text(e[4]), j->type) != 0 ||
            strcmp(reply_text(e[5]), j->payload) != 0 ||
            strcmp(reply_text(e[6]), j->timeout) != 0 ||
            strtol(reply_text(e[7]), NULL, 10) != j->tasks)
            violation("reply", "claim of %s:%lld answered type %s payload %s "
                      "timeout %s tasks %s; the job has %s %s %s %d", j->id,
                      x, reply_text(e[4]), reply_text(e[5]), reply_text(e[6]),
                      reply_text(e[7]), j->type, j->payload, j->timeout,
                      j->tasks);
        if (tok_seq(e[2]->str) <= M.last_tok)
            violation("token", "claim handed token %s after token %lld",
                      e[2]->str, M.last_tok);
        M.last_tok = tok_seq(e[2]->str);
        {
            char want_tok[64];
            const char *dot = strchr(e[2]->str, '.');
            snprintf(want_tok, sizeof(want_tok), "%s", secret ? M.secret[w] : "");
            if ((secret && (dot == NULL || strcmp(dot + 1, want_tok) != 0)) ||
                (!secret && dot != NULL))
                violation("token", "claim%s handed token %s",
                          secret ? " with a secret" : "", e[2]->str);
        }
        if (j->prio < min_prio)
            min_prio = j->prio;
        task_claimed(j, (int)x, w, e[2]->str, secret, (int)e[3]->integer,
                     now + lease);
    }
    met = refs_met_cancelled();
    if (met > 0)
        logf_(" (ended %d refs of cancelled jobs)", met);
    C.met_cancelled += met;
    /* what is left: nothing of a higher priority than what was handed
     * out, and nothing at all when fewer than n were handed out (unless a
     * cursor after a retry looked through completed tasks) */
    {
        int max_left = -1000000;
        bool sweep = false;
        long long left_p = 0;
        for (int i = 0; i < M.njobs; i++) {
            struct mjob *j = &M.job[i];
            for (int x = 0; x < j->tasks; x++) {
                int wh = j->t[x].where;
                if (wh == W_REF_P || wh == W_CUR_P) {
                    left_p++;
                    if (j->prio > max_left)
                        max_left = j->prio;
                    if (wh == W_CUR_P && j->swept)
                        sweep = true;
                }
            }
        }
        if (count > 0 && max_left > min_prio)
            violation("order", "claim handed a task of priority %d while one "
                      "of priority %d waits", min_prio, max_left);
        if (count < n && left_p > 0 && !sweep && met == 0)
            violation("claim", "claim of %d handed %lld while %lld tasks wait "
                      "in pending", n, count, left_p);
    }
    /* the next due time: the head of delayed */
    dm = delayed_members(&ndm);
    if ((ndm == 0 && next_due != -1) || (ndm > 0 && next_due != dm[0].due))
        violation("reply", "claim answered next due %lld, model expects %lld",
                  next_due, ndm > 0 ? dm[0].due : -1);
    free(dm);
    freeReplyObject(r);
}

static void op_claim(void)
{
    int r = rnd(100);
    int n = r < 60 ? 1 + rnd(3) : r < (M.big_focus ? 70 : 95) ? 1 + rnd(60) :
            TASKS_MAX;
    int limit = chance(80) ? -1 : chance(50) ? rnd(3) : CALL_MAX;

    op_claim_n(rnd(NWORKERS), n, off_tick(100 + rnd(201)), chance(60), limit);
}

static void op_heartbeat(void)
{
    int w = pick_worker(), n, lease = off_tick(100 + rnd(201));
    struct entry *e = lease_entries(w, 6, false, &n);
    struct args a = {0};
    redisReply *r;
    long long t0, t1;
    size_t k = 0;

    args_fcall(&a, "llmb_heartbeat");
    args_add(&a, WORKER[w]);
    args_addf(&a, "%d", lease);
    for (int i = 0; i < n; i++) {
        args_add(&a, e[i].ref);
        args_add(&a, e[i].tok);
    }
    logf_("heartbeat %s lease=%d", WORKER[w], lease);
    log_entries(e, n);
    t0 = redis_now();
    r = args_run(&a);
    t1 = redis_now();
    logf_(" -> %zu replies", r->type == REDIS_REPLY_ARRAY ? r->elements / 2 : 0);
    if (r->type != REDIS_REPLY_ARRAY) {
        violation("reply", "heartbeat answered %s", reply_text(r));
        goto out;
    }
    /* expected: per task (the first time it is named), nothing when its
     * lease is extended, "lost" or "cancelled" */
    for (int i = 0; i < n; i++) {
        struct mtask *t = &e[i].j->t[e[i].x];
        const char *want = NULL;
        if (seen_before(e, i) >= 0)
            continue;
        if (!entry_opens(&e[i], w)) {
            want = "lost";
        } else if (e[i].j->st == J_CANCELLING) {
            want = "cancelled";
            task_end(e[i].j, e[i].x, O_CANCELLED, NULL);
            C.hb_cancelled++;
        } else {
            t->lo = t0 + lease;
            t->hi = t1 + lease;
        }
        if (want == NULL)
            continue;
        if (k + 1 >= r->elements || strcmp(reply_text(r->element[k]), e[i].ref) != 0 ||
            strcmp(reply_text(r->element[k + 1]), want) != 0) {
            violation(strcmp(want, "lost") == 0 ? "token" : "reply",
                      "heartbeat of %s token %s%s%s: redis answered %s %s, "
                      "model expects %s %s", e[i].ref, e[i].tok,
                      e[i].why ? ", " : "", e[i].why ? e[i].why : "",
                      k < r->elements ? reply_text(r->element[k]) : "(nothing)",
                      k + 1 < r->elements ? reply_text(r->element[k + 1]) : "",
                      e[i].ref, want);
            goto out;
        }
        k += 2;
    }
    if (k != r->elements)
        violation("token", "heartbeat answered %zu values, model expects %zu "
                  "(first extra: %s %s)", r->elements, k,
                  reply_text(r->element[k]),
                  k + 1 < r->elements ? reply_text(r->element[k + 1]) : "");
out:
    freeReplyObject(r);
    free(e);
}

static const char *const BAD_RESULTS[] = {
    "[1]", "{x", "{\"a\":NaN}", "\"s\"", "1", "{\"a\":0x10}", "", "{} x",
    "null",
};

/* A result and whether complete takes it. */
static const char *result_make(char *buf, size_t size, bool *valid)
{
    int r = rnd(100);

    *valid = true;
    if (r < 10) {
        *valid = false;
        return BAD_RESULTS[rnd((int)(sizeof(BAD_RESULTS) / sizeof(BAD_RESULTS[0])))];
    }
    if (r < 30)
        return "{}";
    if (r < 35)
        return " {\"a\":[1,2,{\"b\":null}],\"s\":\"x\\\"y\"}";
    snprintf(buf, size, "{\"r\":%d}", rnd(100000));
    return buf;
}

static void op_complete_w(int w, bool all, bool only_valid)
{
    int n;
    struct entry *e = lease_entries(w, 8, all, &n);
    struct args a = {0};
    redisReply *r;
    long long t0, t1;
    char (*res)[64] = llmb_xcalloc((size_t)n + 1, sizeof(*res));
    bool *valid = llmb_xcalloc((size_t)n + 1, sizeof(bool));
    bool *taken = llmb_xcalloc((size_t)n + 1, sizeof(bool));
    int *want = llmb_xcalloc((size_t)n + 1, sizeof(int));

    args_fcall(&a, "llmb_complete");
    args_add(&a, WORKER[w]);
    for (int i = 0; i < n; i++) {
        char buf[64];
        const char *s = only_valid ? "{\"d\":1}" : result_make(buf, sizeof(buf), &valid[i]);
        if (only_valid)
            valid[i] = true;
        snprintf(res[i], sizeof(res[i]), "%s", s);
        args_add(&a, e[i].ref);
        args_add(&a, e[i].tok);
        args_add(&a, res[i]);
    }
    logf_("complete %s", WORKER[w]);
    for (int i = 0; i < n && i < 12; i++)
        logf_(" %s/%s%s%s%s=%s", e[i].ref, e[i].tok, e[i].why ? "(" : "",
              e[i].why ? e[i].why : "", e[i].why ? ")" : "", res[i]);
    if (n > 12)
        logf_(" ...(%d entries)", n);
    t0 = redis_now();
    r = args_run(&a);
    t1 = redis_now();
    for (int i = 0; i < n; i++)
        want[i] = entry_takes(e, i, w, taken) ? (valid[i] ? 1 : -1) : 0;
    logf_(" ->");
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements && i < 12; i++)
            logf_(" %lld", elem_int(r, i));
    expect_ints("complete", r, want, e, n);
    /* invalid results fail their attempt first, then the others complete */
    for (int i = 0; i < n; i++)
        if (want[i] == -1) {
            C.bad_results++;
            task_failed(e[i].j, e[i].x, K_ERROR, t0, t1);
        }
    for (int i = 0; i < n; i++)
        if (want[i] == 1)
            task_end(e[i].j, e[i].x, O_COMPLETED, res[i]);
    freeReplyObject(r);
    free(e);
    free(res);
    free(valid);
    free(taken);
    free(want);
}

static void op_complete(void)
{
    op_complete_w(pick_worker(), chance(4), false);
}

static void op_fail(void)
{
    static const char *const KINDS[] = {"error", "timeout", "fatal", "weird"};
    static const enum kind KIND[] = {K_ERROR, K_TIMEOUT, K_FATAL, K_ERROR};
    int w = pick_worker(), n;
    struct entry *e = lease_entries(w, 3, false, &n);
    struct args a = {0};
    redisReply *r;
    long long t0, t1;
    int *kind = llmb_xcalloc((size_t)n + 1, sizeof(int));
    bool *taken = llmb_xcalloc((size_t)n + 1, sizeof(bool));
    int *want = llmb_xcalloc((size_t)n + 1, sizeof(int));

    args_fcall(&a, "llmb_fail");
    args_add(&a, WORKER[w]);
    logf_("fail %s", WORKER[w]);
    for (int i = 0; i < n; i++) {
        kind[i] = rnd(4);
        args_add(&a, e[i].ref);
        args_add(&a, e[i].tok);
        args_add(&a, KINDS[kind[i]]);
        args_addf(&a, "boom %d", rnd(100));
        logf_(" %s/%s%s%s%s:%s", e[i].ref, e[i].tok, e[i].why ? "(" : "",
              e[i].why ? e[i].why : "", e[i].why ? ")" : "", KINDS[kind[i]]);
    }
    t0 = redis_now();
    r = args_run(&a);
    t1 = redis_now();
    for (int i = 0; i < n; i++)
        want[i] = entry_takes(e, i, w, taken) ?
                  task_failed(e[i].j, e[i].x, KIND[kind[i]], t0, t1) : 0;
    logf_(" ->");
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++)
            logf_(" %lld", elem_int(r, i));
    expect_ints("fail", r, want, e, n);
    freeReplyObject(r);
    free(e);
    free(kind);
    free(taken);
    free(want);
}

static void op_release(void)
{
    int w = pick_worker(), n;
    struct entry *e = lease_entries(w, 4, false, &n);
    struct args a = {0};
    redisReply *r;
    bool *taken = llmb_xcalloc((size_t)n + 1, sizeof(bool));
    int *want = llmb_xcalloc((size_t)n + 1, sizeof(int));
    bool back = chance(30);

    args_fcall(&a, "llmb_release");
    args_add(&a, WORKER[w]);
    /* `back`: behind what waits rather than at the front; the same place
     * for the model */
    if (back)
        args_add(&a, "back");
    for (int i = 0; i < n; i++) {
        args_add(&a, e[i].ref);
        args_add(&a, e[i].tok);
    }
    logf_("release %s%s", WORKER[w], back ? " back" : "");
    log_entries(e, n);
    r = args_run(&a);
    for (int i = 0; i < n; i++) {
        struct mjob *j = e[i].j;
        struct mtask *t = &j->t[e[i].x];
        want[i] = entry_takes(e, i, w, taken) ? 1 : 0;
        if (want[i] == 0)
            continue;
        C.released++;
        if (j->st == J_CANCELLING) {
            task_end(j, e[i].x, O_CANCELLED, NULL);
        } else {
            tok_retire(t);
            t->attempt--;
            t->where = W_REF_P;
        }
    }
    logf_(" ->");
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements && i < 12; i++)
            logf_(" %lld", elem_int(r, i));
    expect_ints("release", r, want, e, n);
    freeReplyObject(r);
    free(e);
    free(taken);
    free(want);
}

/* A job of the model, or NULL for an id no job has. */
static struct mjob *pick_job(bool prefer_ended)
{
    if (M.njobs == 0 || chance(10))
        return NULL;
    if (M.big_focus && chance(50)) {
        /* a big job, the one with the most refs waiting first */
        struct mjob *best = NULL;
        for (int i = 0; i < M.njobs; i++)
            if (M.job[i].tasks >= BIG_TASKS && !job_ended(&M.job[i]) &&
                (best == NULL || waiting_refs(&M.job[i]) > waiting_refs(best)))
                best = &M.job[i];
        if (best != NULL)
            return best;
    }
    if (prefer_ended && chance(70)) {
        int k = rnd(M.njobs);
        for (int i = 0; i < M.njobs; i++) {
            struct mjob *j = &M.job[(k + i) % M.njobs];
            if (j->st == J_FAILED || j->st == J_CANCELLED)
                return j;
        }
    }
    return &M.job[rnd(M.njobs)];
}

static void op_cancel(void)
{
    struct mjob *j = pick_job(false);
    const char *id = j ? j->id : "nosuchjob";
    redisReply *r = cmd("FCALL llmb_cancel 1 %s %s", M.base, id);

    logf_("cancel %s -> %s%lld", id, r->type == REDIS_REPLY_ERROR ? r->str : "",
          r->type == REDIS_REPLY_INTEGER ? r->integer : 0);
    if (j == NULL || job_ended(j) || j->st == J_CANCELLING) {
        if (r->type != REDIS_REPLY_ERROR)
            violation("reply", "cancel of %s (model: %s): redis answered %s, "
                      "model expects an error", id,
                      j ? JSTATE[j->st] : "no such job", reply_text(r));
    } else {
        int removed = job_cancel(j);
        C.cancels++;
        if (r->type != REDIS_REPLY_INTEGER || r->integer != removed)
            violation("reply", "cancel of %s: redis answered %s %lld, model "
                      "expects %d removed", id, reply_text(r),
                      r->type == REDIS_REPLY_INTEGER ? r->integer : 0, removed);
    }
    freeReplyObject(r);
}

static void op_retry(void)
{
    struct mjob *j = pick_job(true);
    const char *id = j ? j->id : "nosuchjob";
    redisReply *r = cmd("FCALL llmb_retry 1 %s %s", M.base, id);

    logf_("retry %s -> %s%lld", id, r->type == REDIS_REPLY_ERROR ? r->str : "",
          r->type == REDIS_REPLY_INTEGER ? r->integer : 0);
    if (j == NULL || (j->st != J_FAILED && j->st != J_CANCELLED)) {
        if (r->type != REDIS_REPLY_ERROR)
            violation("reply", "retry of %s (model: %s): redis answered %s, "
                      "model expects an error", id,
                      j ? JSTATE[j->st] : "no such job", reply_text(r));
    } else {
        int again = 0;
        for (int x = 0; x < j->tasks; x++) {
            struct mtask *t = &j->t[x];
            if (t->outcome == O_COMPLETED)
                continue;
            again++;
            if (j->tasks == 1) {
                t->where = W_REF_P;
                t->attempt = 0;
                t->claimed = true;
            } else {
                t->where = W_CUR_P;
            }
        }
        j->failed = j->cancelled = 0;
        j->left = again;
        j->st = again > 0 ? J_PENDING : J_COMPLETED;
        j->swept = j->tasks > 1 && again < j->tasks;
        j->version++;
        C.retries++;
        C.sweeps += j->swept;
        if (r->type != REDIS_REPLY_INTEGER || r->integer != again)
            violation("reply", "retry of %s: redis answered %s %lld, model "
                      "expects %d", id, reply_text(r),
                      r->type == REDIS_REPLY_INTEGER ? r->integer : 0, again);
    }
    freeReplyObject(r);
}

/* The state field of a job in Redis. Caller frees. */
static char *job_state(const struct mjob *j)
{
    redisReply *r = cmd("HGET %s:j:%s state", M.base, j->id);
    char *s = llmb_xstrdup(r->type == REDIS_REPLY_STRING ? r->str : "");

    freeReplyObject(r);
    return s;
}

static void op_purge(void)
{
    int limit = chance(50) ? 1 + rnd(4) : CALL_MAX;
    bool cand[MAX_JOBS] = {false};
    int np = members('p'), nd = members('d'), ncancel = 0, ncand = 0;
    int work = 0;
    redisReply *r = cmd("FCALL llmb_purge 1 %s %d", M.base, limit);

    logf_("purge limit=%d -> [%lld %lld]", limit, elem_int(r, 0), elem_int(r, 1));
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        violation("reply", "purge answered %s", reply_text(r));
        freeReplyObject(r);
        return;
    }
    for (int i = 0; i < M.njobs; i++) {
        struct mjob *j = &M.job[i];
        if (job_ended(j) || j->st == J_CANCELLING)
            continue;
        for (int x = 0; x < j->tasks; x++)
            if (waiting(&j->t[x]))
                cand[i] = true;
        ncand += cand[i];
        if (cand[i])
            work += 2 + waiting_refs(j);
    }
    for (int i = 0; i < M.njobs; i++) {
        char *s;
        if (job_ended(&M.job[i]) || M.job[i].st == J_CANCELLING)
            continue;
        s = job_state(&M.job[i]);
        if (strcmp(s, "cancelled") == 0) {
            if (!cand[i])
                violation("purge", "purge cancelled %s, which had nothing "
                          "waiting", M.job[i].id);
            job_cancel(&M.job[i]);
            ncancel++;
            C.purged++;
        }
        free(s);
    }
    logf_(" (cancelled %d of %d)", ncancel, ncand);
    {
        int met = refs_met_cancelled();
        if (met > 0)
            logf_(" (ended %d refs of cancelled jobs)", met);
        C.met_cancelled += met;
    }
    if (elem_int(r, 0) != ncancel)
        violation("reply", "purge answered %lld jobs, %d were cancelled",
                  elem_int(r, 0), ncancel);
    if (limit >= np && limit >= nd && work <= 1000 && ncancel != ncand)
        violation("purge", "purge with limit %d (%d pending and %d delayed "
                  "members) cancelled %d of the %d jobs that had tasks "
                  "waiting", limit, np, nd, ncancel, ncand);
    if (elem_int(r, 1) != members('p') + members('d'))
        violation("reply", "purge answered %lld members still waiting, model "
                  "has %d", elem_int(r, 1), members('p') + members('d'));
    freeReplyObject(r);
}

static void op_promote(void)
{
    int limit = chance(70) ? -1 : rnd(3);
    long long t0, t1;
    redisReply *r, *left;
    struct dmember *dm;
    int ndm, moved = 0;

    t0 = redis_now();
    r = limit < 0 ? cmd("FCALL llmb_promote 1 %s", M.base)
                  : cmd("FCALL llmb_promote 1 %s %d", M.base, limit);
    t1 = redis_now();
    left = cmd("ZRANGE %s:delayed 0 -1", M.base);
    logf_("promote limit=%d -> %lld", limit,
          r->type == REDIS_REPLY_INTEGER ? r->integer : -1);
    dm = delayed_members(&ndm);
    for (int i = 0; i < ndm; i++) {
        bool gone = !in_reply(left, dm[i].name);
        if (gone && dm[i].due > t1)
            violation("promote", "promote moved %s, due at %lld, at %lld..%lld",
                      dm[i].name, dm[i].due, t0, t1);
        if (!gone && dm[i].due <= t0 && (limit < 0 || moved < limit) &&
            (r->type != REDIS_REPLY_INTEGER || r->integer < (limit < 0 ? CALL_MAX : limit)))
            violation("promote", "promote left %s, due at %lld, at %lld..%lld",
                      dm[i].name, dm[i].due, t0, t1);
        if (gone) {
            promote_member(&dm[i]);
            moved++;
        }
    }
    if (r->type != REDIS_REPLY_INTEGER || r->integer != moved)
        violation("reply", "promote answered %s %lld, %d members moved",
                  reply_text(r), r->type == REDIS_REPLY_INTEGER ? r->integer : 0,
                  moved);
    free(dm);
    freeReplyObject(left);
    freeReplyObject(r);
}

static void op_reap(void)
{
    int limit = chance(75) ? -1 : 1 + rnd(3);
    long long t0, t1;
    redisReply *r, *left;
    int n, reaped = 0;
    struct tref *v;
    char ref[100];

    t0 = redis_now();
    r = limit < 0 ? cmd("FCALL llmb_reap 1 %s", M.base)
                  : cmd("FCALL llmb_reap 1 %s %d", M.base, limit);
    t1 = redis_now();
    left = cmd("ZRANGE %s:running 0 -1", M.base);
    logf_("reap limit=%d -> %lld", limit,
          r->type == REDIS_REPLY_INTEGER ? r->integer : -1);
    v = held_by(-1, &n);
    for (int i = 0; i < n; i++) {
        struct mtask *t = &v[i].j->t[v[i].x];
        bool gone;
        task_ref(v[i].j, v[i].x, ref, sizeof(ref));
        gone = !in_reply(left, ref);
        if (gone && t->lo > t1)
            violation("reap", "reap took %s back, its lease to %lld, at "
                      "%lld..%lld", ref, t->lo, t0, t1);
        if (!gone && t->hi <= t0 && r->type == REDIS_REPLY_INTEGER &&
            r->integer < (limit < 0 ? CALL_MAX : limit))
            violation("reap", "reap left %s, its lease to %lld, at %lld..%lld",
                      ref, t->hi, t0, t1);
        if (gone) {
            logf_(" %s", ref);
            task_failed(v[i].j, v[i].x, K_LOST, t0, t1);
            reaped++;
            C.reaped++;
        }
    }
    if (r->type != REDIS_REPLY_INTEGER || r->integer != reaped)
        violation("reply", "reap answered %s %lld, %d leases were taken back",
                  reply_text(r), r->type == REDIS_REPLY_INTEGER ? r->integer : 0,
                  reaped);
    free(v);
    freeReplyObject(left);
    freeReplyObject(r);
}

static void op_reap_worker(void)
{
    int w = rnd(NWORKERS), n, reaped = 0;
    struct tref *v = held_by(w, &n);
    long long t0, t1;
    redisReply *r, *left;
    char ref[100];

    t0 = redis_now();
    r = chance(50) ? cmd("FCALL llmb_reap_worker 1 %s %s", M.base, WORKER[w])
                   : cmd("FCALL llmb_reap_worker 1 %s %s %s", M.base, WORKER[w],
                         "it went away");
    t1 = redis_now();
    left = cmd("HKEYS %s:wl:%s", M.base, WORKER[w]);
    logf_("reap_worker %s -> %lld", WORKER[w],
          r->type == REDIS_REPLY_INTEGER ? r->integer : -1);
    for (int i = 0; i < n; i++) {
        task_ref(v[i].j, v[i].x, ref, sizeof(ref));
        if (in_reply(left, ref))
            continue;
        task_failed(v[i].j, v[i].x, K_LOST, t0, t1);
        reaped++;
        C.reaped_worker++;
    }
    if (r->type != REDIS_REPLY_INTEGER || r->integer != reaped ||
        reaped != (n < CALL_MAX ? n : CALL_MAX))
        violation("reply", "reap_worker %s answered %s %lld; it held %d, %d "
                  "were taken back", WORKER[w], reply_text(r),
                  r->type == REDIS_REPLY_INTEGER ? r->integer : 0, n, reaped);
    free(v);
    freeReplyObject(left);
    freeReplyObject(r);
}

static void op_sleep(void)
{
    long ms = 10 + rnd(150);

    ms -= ms % (M.tick_us / 1000 > 0 ? M.tick_us / 1000 : 1);

    logf_("sleep %ldms", ms);
    M.pause_us += ms * 1000;
}

static void op_push_or_claim(void)
{
    if (alive_jobs() < ALIVE_MAX && M.njobs < MAX_JOBS)
        op_push();
    else
        op_claim();
}

/* The operations and their weights; each epoch scales every weight by a
 * random factor, so some epochs cancel a lot, others mostly reap... */
static const struct {
    void (*fn)(void);
    int weight;
} OPS[NOPS] = {
    {op_push_or_claim, 120}, {op_claim, 210}, {op_heartbeat, 80},
    {op_complete, 200}, {op_fail, 90}, {op_release, 45}, {op_cancel, 30},
    {op_retry, 40}, {op_purge, 5}, {op_promote, 40}, {op_reap, 60},
    {op_reap_worker, 15}, {op_sleep, 40},
};

static void random_op(void)
{
    int total = 0, r;

    /* a cancel that cannot take every waiting ref of its job at once, and
     * what meets the refs it leaves, are rare by chance: big-job epochs
     * make them when they can */
    if (M.big_focus && chance(30))
        for (int i = 0; i < M.njobs; i++) {
            if (waiting_refs(&M.job[i]) > CANCEL_REFS_MAX &&
                !job_ended(&M.job[i]) && M.job[i].st != J_CANCELLING) {
                op_cancel();
                return;
            }
            if (M.job[i].st == J_CANCELLING && waiting_refs(&M.job[i]) > 0) {
                if (chance(50))
                    op_purge();
                else
                    op_promote();
                return;
            }
        }
    for (int i = 0; i < NOPS; i++)
        total += M.weight[i];
    r = rnd(total);
    for (int i = 0; i < NOPS; i++) {
        if (r < M.weight[i]) {
            OPS[i].fn();
            return;
        }
        r -= M.weight[i];
    }
}

/* ---- the check of the whole queue against the model ---- */

static enum rstate rstate_of(const char *s)
{
    for (int i = RS_PENDING; i < RS_OTHER; i++)
        if (strcmp(s, RSTATE[i]) == 0)
            return (enum rstate)i;
    return RS_OTHER;
}

static int worker_index(const char *s)
{
    for (int w = 0; w < NWORKERS; w++)
        if (strcmp(s, WORKER[w]) == 0)
            return w;
    return -2;
}

/* Splits a member "<id>:<idx>" or "<id>:*": its job and index (-1 for a
 * cursor). Returns false for a member that names no task of the model. */
static bool member_of(const char *m, struct mjob **j, int *x)
{
    const char *colon = strrchr(m, ':');
    char *end;
    long v;

    if (colon == NULL)
        return false;
    *j = job_find(m, (size_t)(colon - m));
    if (*j == NULL)
        return false;
    if (strcmp(colon + 1, "*") == 0) {
        *x = -1;
        return true;
    }
    v = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || v < 0 || v >= (*j)->tasks)
        return false;
    *x = (int)v;
    return true;
}

/* Reads the job fields a check needs. */
struct jfields {
    const char *state, *left, *failed, *cancelled, *ok, *next, *ahead,
        *tasks, *finished, *version;
};

static long long num(const char *s, long long absent)
{
    return s == NULL ? absent : strtoll(s, NULL, 10);
}

static void check_job_hash(struct mjob *j, struct jfields *f)
{
    redisReply *h = j->h;

    memset(f, 0, sizeof(*f));
    for (int x = 0; x < j->tasks; x++) {
        struct rtask *rt = &j->r[x];
        memset(rt, 0, sizeof(*rt));
        rt->attempt = -1;
        rt->fworker = -1;
        rt->wl = -1;
    }
    if (h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
        violation("job", "job %s: its hash is gone (%s)", j->id, reply_text(h));
        return;
    }
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const char *k = h->element[i]->str, *v = h->element[i + 1]->str;
        if (k[0] >= '0' && k[0] <= '9') {
            char *end;
            long x = strtol(k, &end, 10);
            struct rtask *rt;
            if (*end != ':' || x < 0 || x >= j->tasks) {
                violation("job", "job %s has the field %s", j->id, k);
                continue;
            }
            rt = &j->r[x];
            if (strcmp(end, ":state") == 0)
                rt->st = (unsigned char)rstate_of(v);
            else if (strcmp(end, ":attempt") == 0)
                rt->attempt = strtoll(v, NULL, 10);
            else if (strcmp(end, ":worker") == 0)
                rt->fworker = (signed char)worker_index(v);
            else if (strcmp(end, ":result") == 0)
                rt->result = v;
            continue;
        }
        if (strcmp(k, "state") == 0) f->state = v;
        else if (strcmp(k, "left") == 0) f->left = v;
        else if (strcmp(k, "failed") == 0) f->failed = v;
        else if (strcmp(k, "cancelled") == 0) f->cancelled = v;
        else if (strcmp(k, "ok") == 0) f->ok = v;
        else if (strcmp(k, "next") == 0) f->next = v;
        else if (strcmp(k, "ahead") == 0) f->ahead = v;
        else if (strcmp(k, "tasks") == 0) f->tasks = v;
        else if (strcmp(k, "finished_ms") == 0) f->finished = v;
        else if (strcmp(k, "version") == 0) f->version = v;
    }
}

/* Members of a zset reply WITHSCORES into the read-back tasks. `set` is
 * 'p', 'd' or 'r'. Cursors go to cur[] (by job index). */
static void read_set(const redisReply *z, char set, int *cur, double *cur_score)
{
    if (z->type != REDIS_REPLY_ARRAY) {
        violation("keys", "%c set: %s", set, reply_text(z));
        return;
    }
    for (size_t i = 0; i + 1 < z->elements; i += 2) {
        const char *m = z->element[i]->str;
        double score = strtod(z->element[i + 1]->str, NULL);
        struct mjob *j;
        int x;
        if (!member_of(m, &j, &x)) {
            violation("junk", "%s holds %s, which names no task of the model",
                      set == 'p' ? "pending" : set == 'd' ? "delayed" : "running",
                      m);
            continue;
        }
        if (x < 0) {
            int ji = (int)(j - M.job);
            if (set == 'r') {
                violation("junk", "running holds the cursor %s", m);
                continue;
            }
            cur[ji] += set == 'p' ? 1 : 16;
            cur_score[ji] = score;
            continue;
        }
        if (set == 'p')
            j->r[x].in_p++;
        else if (set == 'd') {
            j->r[x].in_d++;
            j->r[x].sd = score;
        } else {
            j->r[x].in_r++;
            j->r[x].sr = score;
        }
    }
}

/* Checks one task: its place in Redis against the model. */
static void check_task(struct mjob *j, int x, int cur, long long next,
                       const char *jstate_redis, long long *behind)
{
    struct mtask *t = &j->t[x];
    struct rtask *rt = &j->r[x];
    int places, rwhere = -1, routcome = O_NONE, rworker = -1;
    bool cur_p = (cur & 15) > 0, cur_d = (cur >> 4) > 0;
    bool behind_cur = (cur_p || cur_d) && x >= next && rt->st != RS_COMPLETED;
    char ref[100], buf[64];

    task_ref(j, x, ref, sizeof(ref));
    if (behind_cur)
        (*behind)++;
    places = rt->in_p + rt->in_d + behind_cur + rt->in_r;
    if (places > 1)
        violation("place", "%s is in %d places: pending %d, delayed %d, behind "
                  "its cursor %d, running %d (model: %s)", ref, places,
                  rt->in_p, rt->in_d, behind_cur, rt->in_r,
                  where_name(t, buf, sizeof(buf)));
    if (rt->in_r) {
        rwhere = W_RUN;
        rworker = rt->wl;
        if (rt->wln != 1 || rt->st != RS_RUNNING || rt->fworker != rt->wl)
            violation("place", "%s is running, in %d lease hashes (of %s), "
                      "state %s, worker field %s", ref, rt->wln,
                      rt->wl >= 0 ? WORKER[rt->wl] : "none", RSTATE[rt->st],
                      rt->fworker >= 0 ? WORKER[rt->fworker] : "?");
    } else if (rt->wln > 0) {
        violation("place", "%s is in the lease hash of %s but not running",
                  ref, WORKER[rt->wl]);
    }
    if (rt->in_p) {
        rwhere = W_REF_P;
        if (rt->st != RS_ABSENT && rt->st != RS_PENDING)
            violation("place", "%s waits in pending with state %s", ref,
                      RSTATE[rt->st]);
    } else if (rt->in_d) {
        rwhere = W_REF_D;
        if (rt->st != RS_ABSENT && rt->st != RS_DELAYED)
            violation("place", "%s waits in delayed with state %s", ref,
                      RSTATE[rt->st]);
    } else if (behind_cur) {
        rwhere = cur_p ? W_CUR_P : W_CUR_D;
        if (rt->st != RS_ABSENT && rt->st != RS_FAILED && rt->st != RS_CANCELLED)
            violation("place", "%s waits behind its cursor with state %s", ref,
                      RSTATE[rt->st]);
    } else if (!rt->in_r) {
        rwhere = W_ENDED;
        if (rt->st == RS_COMPLETED)
            routcome = O_COMPLETED;
        else if (rt->st == RS_FAILED)
            routcome = O_FAILED;
        else if (rt->st == RS_CANCELLED)
            routcome = O_CANCELLED;
        else if (rt->st == RS_ABSENT && strcmp(jstate_redis, "cancelled") == 0)
            routcome = O_CANCELLED; /* never left the cursor it was cancelled with */
        else {
            violation("place", "%s is nowhere: not waiting, not running, state "
                      "%s (model: %s)", ref, RSTATE[rt->st],
                      where_name(t, buf, sizeof(buf)));
            return;
        }
    }
    if (places > 1)
        return;
    /* A task at or past its job's `next` was not handed out in this run:
     * once the job is cancelled, it ended cancelled behind its cursor,
     * whatever its state field says of an earlier run (docs/data-model.md,
     * "Task fields"; llmb show derives it the same way). */
    if (rwhere == W_ENDED && x >= next && rt->st != RS_COMPLETED &&
        strcmp(jstate_redis, "cancelled") == 0)
        routcome = O_CANCELLED;
    if (rwhere != t->where || (rwhere == W_RUN && rworker != t->worker) ||
        (rwhere == W_ENDED && routcome != t->outcome)) {
        struct mtask shown = *t;
        shown.where = (unsigned char)rwhere;
        shown.worker = (signed char)rworker;
        shown.outcome = (unsigned char)routcome;
        violation(rwhere == W_ENDED && t->where == W_ENDED ? "outcome" : "place",
                  "%s: redis has it %s (state field %s), model %s", ref,
                  where_name(&shown, buf, sizeof(buf)), RSTATE[rt->st],
                  where_name(t, (char[64]){0}, 64));
        return;
    }
    /* times: pinned to what Redis holds once within the expected range */
    if (t->where == W_RUN) {
        long long s = (long long)rt->sr;
        if (s < t->lo || s > t->hi)
            violation("lease", "%s: lease deadline %lld, model expects "
                      "%lld..%lld", ref, s, t->lo, t->hi);
        t->lo = t->hi = s;
        if (rt->held == NULL || tok_seq(rt->held) != tok_seq(t->tok) ||
            (!t->secret && strcmp(rt->held, t->tok) != 0) ||
            (t->secret && strchr(rt->held, '.') == NULL))
            violation("token", "%s: lease hash holds %s, token %s%s", ref,
                      rt->held ? rt->held : "(nil)", t->tok,
                      t->secret ? " (with a secret)" : "");
        else if (t->secret && strchr(t->tok, '.') != NULL &&
                 strcmp(strchr(t->tok, '.'), strchr(rt->held, '.')) == 0)
            violation("token", "%s: lease hash holds the secret", ref);
    } else if (t->where == W_REF_D) {
        long long s = (long long)rt->sd;
        if (s < t->lo || s > t->hi)
            violation("due", "%s: due at %lld, model expects %lld..%lld", ref,
                      s, t->lo, t->hi);
        t->lo = t->hi = s;
    }
    if (t->claimed ? rt->attempt != t->attempt : rt->attempt != -1)
        violation("attempt", "%s: attempt field %lld, model %d%s", ref,
                  rt->attempt, t->attempt, t->claimed ? "" : " (no field)");
    if (t->outcome == O_COMPLETED) {
        /* the result {} is stored as no field (lua/05-lifecycle.lua
         * EMPTY_RESULT), any other as it came */
        bool empty = t->result != NULL && strcmp(t->result, "{}") == 0;
        if (t->result == NULL ||
            (empty ? rt->result != NULL
                   : rt->result == NULL || strcmp(rt->result, t->result) != 0))
            violation("result", "%s: result %s, model %s", ref,
                      rt->result ? rt->result : "(none)",
                      t->result ? t->result : "(none)");
    } else if (rt->result != NULL) {
        violation("result", "%s has the result %s but never completed (model)",
                  ref, rt->result);
    }
}

static long long count_in(const redisReply *r, const char *s)
{
    long long n = 0;

    if (r->type != REDIS_REPLY_ARRAY)
        return -1;
    for (size_t i = 0; i < r->elements; i++)
        n += strcmp(r->element[i]->str, s) == 0;
    return n;
}

static long long hash_num(const redisReply *h, const char *field)
{
    if (h->type != REDIS_REPLY_ARRAY)
        return -1;
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (strcmp(h->element[i]->str, field) == 0)
            return strtoll(h->element[i + 1]->str, NULL, 10);
    return 0;
}

static long long stats_num(const redisReply *s, const char *field)
{
    if (s->type != REDIS_REPLY_ARRAY)
        return -1;
    for (size_t i = 0; i + 1 < s->elements; i += 2)
        if (strcmp(s->element[i]->str, field) == 0 &&
            s->element[i + 1]->type == REDIS_REPLY_INTEGER)
            return s->element[i + 1]->integer;
    return -1;
}

/*
 * Reads the whole queue back and compares it with the model:
 *
 * - place: every task is in exactly one place: waiting (its ref in
 *   pending or delayed, or behind its job's cursor "<id>:*": index >= the
 *   job's `next`, "<idx>:state" not completed), running (in running and in
 *   the lease hash of exactly one worker, its state and worker fields
 *   agreeing), or ended ("<idx>:state" completed, failed or cancelled; no
 *   field at all when it was cancelled behind its cursor); and it is where
 *   the model has it (same set, cursor or ref, same worker);
 * - outcome/result: an ended task keeps its outcome and result (only a
 *   retry brings back the tasks that did not complete); a result exists
 *   only for a completed task; attempt fields as the model counts them;
 * - lease/due: running scores are the lease deadlines a claim or heartbeat
 *   set, delayed scores the due times of push delays and backoffs;
 * - job: state (pending until a claim, running, cancelled at once, ended
 *   only when `left` is 0), `left` = tasks not ended, `failed` and
 *   `cancelled` of this run, `ok` = tasks - failed - cancelled once ended;
 *   ended jobs in <base>:ended and once in <base>:done, failed ones in
 *   <base>:dead; a cursor iff the model has tasks behind it, standing for
 *   tasks - next - ahead >= 1 tasks;
 * - jr: <base>:jr:<id> holds exactly the waiting refs of fan-out job <id>;
 * - counts: <base>:counts ok/failed/cancelled are the sums of task ends;
 *   wait_p/wait_d the tasks behind cursors beyond one per cursor; junk 0;
 * - stats: llmb_stats pending, delayed and running are the model's tasks.
 */
static void check_all(void)
{
    redisReply *p, *d, *run, *wl[NWORKERS], *counts, *stats, *dead, *ended,
        *done;
    int cur[MAX_JOBS] = {0};
    double cur_score[MAX_JOBS] = {0};
    long long mp, md, mr, wait_p = 0, wait_d = 0;

    redisAppendCommand(T.c, "ZRANGE %s:pending 0 -1 WITHSCORES", M.base);
    redisAppendCommand(T.c, "ZRANGE %s:delayed 0 -1 WITHSCORES", M.base);
    redisAppendCommand(T.c, "ZRANGE %s:running 0 -1 WITHSCORES", M.base);
    for (int w = 0; w < NWORKERS; w++)
        redisAppendCommand(T.c, "HGETALL %s:wl:%s", M.base, WORKER[w]);
    redisAppendCommand(T.c, "HGETALL %s:counts", M.base);
    redisAppendCommand(T.c, "FCALL llmb_stats 1 %s", M.base);
    redisAppendCommand(T.c, "ZRANGE %s:dead 0 -1", M.base);
    redisAppendCommand(T.c, "ZRANGE %s:ended 0 -1", M.base);
    redisAppendCommand(T.c, "LRANGE %s:done 0 -1", M.base);
    for (int i = 0; i < M.njobs; i++) {
        redisAppendCommand(T.c, "HGETALL %s:j:%s", M.base, M.job[i].id);
        redisAppendCommand(T.c, "SMEMBERS %s:jr:%s", M.base, M.job[i].id);
    }
#define GET(v)                                                   \
    do {                                                         \
        void *rp_ = NULL;                                        \
        if (redisGetReply(T.c, &rp_) != REDIS_OK || rp_ == NULL) \
            fail_msg("redis: %s", T.c->errstr);                  \
        (v) = rp_;                                               \
    } while (0)
    GET(p);
    GET(d);
    GET(run);
    for (int w = 0; w < NWORKERS; w++)
        GET(wl[w]);
    GET(counts);
    GET(stats);
    GET(dead);
    GET(ended);
    GET(done);
    for (int i = 0; i < M.njobs; i++) {
        GET(M.job[i].h);
        GET(M.job[i].jr);
    }
#undef GET

    {
        struct jfields *f = llmb_xcalloc((size_t)M.njobs + 1, sizeof(*f));

        for (int i = 0; i < M.njobs; i++)
            check_job_hash(&M.job[i], &f[i]);
        read_set(p, 'p', cur, cur_score);
        read_set(d, 'd', cur, cur_score);
        read_set(run, 'r', cur, cur_score);
        for (int w = 0; w < NWORKERS; w++) {
            if (wl[w]->type != REDIS_REPLY_ARRAY)
                continue;
            for (size_t i = 0; i + 1 < wl[w]->elements; i += 2) {
                struct mjob *j;
                int x;
                if (!member_of(wl[w]->element[i]->str, &j, &x) || x < 0) {
                    violation("junk", "the lease hash of %s holds %s",
                              WORKER[w], wl[w]->element[i]->str);
                    continue;
                }
                j->r[x].wln++;
                j->r[x].wl = (signed char)w;
                j->r[x].held = wl[w]->element[i + 1]->str;
            }
        }

        for (int i = 0; i < M.njobs; i++) {
            struct mjob *j = &M.job[i];
            const char *st = f[i].state ? f[i].state : "(none)";
            long long next = num(f[i].next, 0), ahead = num(f[i].ahead, 0);
            long long behind = 0, left = 0, nwait_ref = 0;
            bool m_cur_p = false, m_cur_d = false;
            bool ended_m = job_ended(j);

            for (int x = 0; x < j->tasks; x++) {
                check_task(j, x, cur[i], next, st, &behind);
                m_cur_p |= j->t[x].where == W_CUR_P;
                m_cur_d |= j->t[x].where == W_CUR_D;
                left += j->t[x].where != W_ENDED;
            }
            if (j->tasks == 1 && cur[i] != 0)
                violation("cursor", "job %s of one task has a cursor", j->id);
            if ((cur[i] & 15) > 1 || (cur[i] >> 4) > 1 ||
                ((cur[i] & 15) && (cur[i] >> 4)))
                violation("cursor", "job %s has %d cursors in pending and %d "
                          "in delayed", j->id, cur[i] & 15, cur[i] >> 4);
            if (((cur[i] & 15) > 0) != m_cur_p || ((cur[i] >> 4) > 0) != m_cur_d)
                violation("cursor", "job %s: cursor in pending %d, delayed %d; "
                          "model: tasks behind a cursor in pending %d, in "
                          "delayed %d", j->id, cur[i] & 15, cur[i] >> 4,
                          m_cur_p, m_cur_d);
            if (cur[i] != 0) {
                if (behind != j->tasks - next - ahead || behind < 1)
                    violation("cursor", "job %s: %lld tasks behind its cursor, "
                              "tasks - next - ahead = %d - %lld - %lld", j->id,
                              behind, j->tasks, next, ahead);
                if (cur[i] & 15)
                    wait_p += j->tasks - next - ahead - 1;
                else
                    wait_d += j->tasks - next - ahead - 1;
            }
            if (m_cur_d && cur[i] >> 4) {
                long long s = (long long)cur_score[i];
                if (s < j->clo || s > j->chi)
                    violation("due", "job %s: cursor due at %lld, model "
                              "expects %lld..%lld", j->id, s, j->clo, j->chi);
                j->clo = j->chi = s;
            }
            /* job fields */
            if (strcmp(st, JSTATE[j->st]) != 0)
                violation("job", "job %s: state %s, model %s", j->id, st,
                          JSTATE[j->st]);
            /* (an absent left is tasks: no task ended yet) */
            if (num(f[i].left, j->tasks) != j->left || left != j->left)
                violation("job", "job %s: left %s, model %d (tasks not "
                          "ended: %lld)", j->id, f[i].left ? f[i].left : "(none)",
                          j->left, left);
            if (num(f[i].failed, 0) != j->failed ||
                num(f[i].cancelled, 0) != j->cancelled)
                violation("job", "job %s: failed %s cancelled %s, model %d %d",
                          j->id, f[i].failed ? f[i].failed : "(none)",
                          f[i].cancelled ? f[i].cancelled : "(none)",
                          j->failed, j->cancelled);
            /* (a job of one task stores no `tasks`: the default) */
            if (num(f[i].tasks, 1) != j->tasks ||
                num(f[i].version, 0) != j->version)
                violation("job", "job %s: tasks %s version %s, model %d %d",
                          j->id, f[i].tasks ? f[i].tasks : "(none)",
                          f[i].version ? f[i].version : "(none)", j->tasks,
                          j->version);
            if (ended_m) {
                if (num(f[i].ok, -1) != j->tasks - j->failed - j->cancelled)
                    violation("job", "job %s ended: ok %s, model %d", j->id,
                              f[i].ok ? f[i].ok : "(none)",
                              j->tasks - j->failed - j->cancelled);
                if (f[i].finished == NULL)
                    violation("job", "job %s ended without finished_ms", j->id);
            } else if (f[i].ok != NULL || f[i].finished != NULL) {
                violation("job", "job %s has not ended but has ok %s "
                          "finished_ms %s", j->id, f[i].ok ? f[i].ok : "-",
                          f[i].finished ? f[i].finished : "-");
            }
            if (count_in(ended, j->id) != (ended_m ? 1 : 0) ||
                count_in(done, j->id) != (ended_m ? 1 : 0) ||
                count_in(dead, j->id) != (j->st == J_FAILED ? 1 : 0))
                violation("job", "job %s (%s): in ended %lld, done %lld, dead "
                          "%lld times", j->id, JSTATE[j->st],
                          count_in(ended, j->id), count_in(done, j->id),
                          count_in(dead, j->id));
            /* jr: exactly the waiting refs of a fan-out job */
            for (int x = 0; x < j->tasks; x++) {
                char ref[100];
                bool want = j->tasks > 1 && (j->t[x].where == W_REF_P ||
                                             j->t[x].where == W_REF_D);
                bool has;
                task_ref(j, x, ref, sizeof(ref));
                has = count_in(j->jr, ref) > 0;
                nwait_ref += want;
                if (want != has)
                    violation("jr", "%s: %s <base>:jr:%s, model has it %s",
                              ref, has ? "in" : "not in", j->id,
                              where_name(&j->t[x], (char[64]){0}, 64));
            }
            if (nwait_ref > C.max_refs)
                C.max_refs = nwait_ref;
            if (j->jr->type != REDIS_REPLY_ARRAY ||
                (long long)j->jr->elements != nwait_ref)
                violation("jr", "<base>:jr:%s has %zu members, model %lld",
                          j->id, j->jr->type == REDIS_REPLY_ARRAY ?
                          j->jr->elements : 0, nwait_ref);
        }
        free(f);
    }

    /* counts and stats */
    if (hash_num(counts, "ok") != M.ok || hash_num(counts, "failed") != M.failed ||
        hash_num(counts, "cancelled") != M.cancelled)
        violation("counts", "<base>:counts ok %lld failed %lld cancelled %lld, "
                  "model %lld %lld %lld", hash_num(counts, "ok"),
                  hash_num(counts, "failed"), hash_num(counts, "cancelled"),
                  M.ok, M.failed, M.cancelled);
    if (hash_num(counts, "wait_p") != wait_p || hash_num(counts, "wait_d") != wait_d)
        violation("counts", "<base>:counts wait_p %lld wait_d %lld, the cursors "
                  "stand for %lld %lld more tasks than members",
                  hash_num(counts, "wait_p"), hash_num(counts, "wait_d"),
                  wait_p, wait_d);
    if (hash_num(counts, "junk") != 0)
        violation("junk", "<base>:counts junk %lld", hash_num(counts, "junk"));
    count_places(&mp, &md, &mr);
    if (stats_num(stats, "pending") != mp || stats_num(stats, "delayed") != md ||
        stats_num(stats, "running") != mr)
        violation("stats", "llmb_stats pending %lld delayed %lld running %lld, "
                  "model %lld %lld %lld", stats_num(stats, "pending"),
                  stats_num(stats, "delayed"), stats_num(stats, "running"),
                  mp, md, mr);

    freeReplyObject(p);
    freeReplyObject(d);
    freeReplyObject(run);
    for (int w = 0; w < NWORKERS; w++)
        freeReplyObject(wl[w]);
    freeReplyObject(counts);
    freeReplyObject(stats);
    freeReplyObject(dead);
    freeReplyObject(ended);
    freeReplyObject(done);
    for (int i = 0; i < M.njobs; i++) {
        freeReplyObject(M.job[i].h);
        freeReplyObject(M.job[i].jr);
        M.job[i].h = M.job[i].jr = NULL;
    }
}

/* ---- epochs and the run ---- */

static void epoch_start(void)
{
    char name[32];
    redisReply *r;

    M.epoch++;
    snprintf(name, sizeof(name), "model%dz", M.epoch);
    M.prefix = llmb_test_prefix(name);
    M.base = llmb_key_queue(M.prefix, "m");
    M.njobs = 0;
    M.ok = M.failed = M.cancelled = 0;
    M.last_tok = 0;
    M.epoch_steps = 0;
    M.epoch_len = 150 + rnd(350);
    M.big_focus = chance(30);
    for (int i = 0; i < NOPS; i++) {
        static const int scale[] = {1, 2, 4, 4, 4, 8, 16};
        M.weight[i] = OPS[i].weight * scale[rnd(7)] / 4;
    }
    for (int w = 0; w < NWORKERS; w++)
        for (int k = 0; k < 32; k++)
            M.secret[w][k] = "0123456789abcdef"[rnd(16)];
    r = cmd("HSET %s:conf retention_s 0", M.base);
    freeReplyObject(r);
}

static void epoch_end(void)
{
    for (int i = 0; i < M.njobs; i++) {
        struct mjob *j = &M.job[i];
        for (int x = 0; x < j->tasks; x++) {
            free(j->t[x].tok);
            free(j->t[x].result);
            for (int k = 0; k < NOLD; k++)
                free(j->t[x].old[k]);
        }
        free(j->t);
        free(j->r);
    }
    M.njobs = 0;
    llmb_test_redis_del_prefix(T.c, M.prefix);
    free(M.prefix);
    free(M.base);
    M.prefix = M.base = NULL;
}

/* Ends the step: on a violation, the log and a failure (or, keeping
 * going, a new epoch). Returns false when the epoch was abandoned. */
static bool step_end(void)
{
    if (M.trace)
        fprintf(stderr, "  #%ld %s\n", M.step, log_cur());
    if (M.bad_step == 0)
        return true;
    if (M.bad_step > 12)
        fprintf(stderr, "test_model: ... and %d more violations in this step\n",
                M.bad_step - 12);
    log_print();
    fprintf(stderr, "test_model: replay with LLMB_MODEL_SEED=%llu "
                    "(step %ld)\n", (unsigned long long)M.seed, M.step);
    if (!M.keep_going)
        fail_msg("test_model: %d invariant violations at step %ld (seed %llu)",
                 M.bad_step, M.step, (unsigned long long)M.seed);
    M.bad_step = 0;
    epoch_end();
    epoch_start();
    return false;
}

/* Waits for the start of the next step: a whole number of ticks after
 * the start of the last one, plus any pause. */
static void pace(void)
{
    long long now = llmb_mono_us();

    if (M.next_us == 0) {
        M.next_us = now;
        return;
    }
    M.next_us += ((now - M.next_us) / M.tick_us + 1) * M.tick_us + M.pause_us;
    M.pause_us = 0;
    if (M.next_us > now)
        sleep_us(M.next_us - now);
}

static void step_begin(void)
{
    pace();
    M.step++;
    M.epoch_steps++;
    M.bad_step = 0;
    log_begin();
}


/* Brings every job of the epoch to its end: complete what is held, claim
 * what waits, wait for what is delayed. Every job must end within 15 s
 * (liveness). Returns false when the epoch was abandoned. */
static bool drain(void)
{
    long long until = llmb_mono_ms() + 15000;

    while (alive_jobs() > 0) {
        long long mp, md, mr;
        if (llmb_mono_ms() > until) {
            char buf[64];
            step_begin();
            logf_("drain");
            for (int i = 0; i < M.njobs; i++)
                if (!job_ended(&M.job[i]))
                    for (int x = 0; x < M.job[i].tasks; x++)
                        if (M.job[i].t[x].where != W_ENDED) {
                            violation("liveness", "job %s (%s) has not ended "
                                      "after 15 s of draining: task %d is %s",
                                      M.job[i].id, JSTATE[M.job[i].st], x,
                                      where_name(&M.job[i].t[x], buf, sizeof(buf)));
                            break;
                        }
            return step_end();
        }
        count_places(&mp, &md, &mr);
        step_begin();
        if (mr > 0) {
            int w = 0;
            for (int k = 0; k < NWORKERS; k++) {
                int n;
                free(held_by(k, &n));
                if (n > 0)
                    w = k;
            }
            op_complete_w(w, true, true);
        } else if (mp > 0) {
            op_claim_n(rnd(NWORKERS), TASKS_MAX, 30000, chance(50), -1);
        } else {
            logf_("drain: wait for delayed tasks");
            M.pause_us += 20000;
            op_promote();
        }
        check_all();
        if (!step_end())
            return false;
    }
    return true;
}

static unsigned long long env_ull(const char *name, unsigned long long dflt)
{
    const char *s = getenv(name);

    return s != NULL && *s != '\0' ? strtoull(s, NULL, 10) : dflt;
}

static void test_model_random(void **state)
{
    unsigned long long seconds = env_ull("LLMB_MODEL_SECONDS", 20);
    unsigned long long steps = env_ull("LLMB_MODEL_STEPS", 0);
    long long start = llmb_mono_ms();

    (void)state;
    memset(&M, 0, sizeof(M));
    M.seed = env_ull("LLMB_MODEL_SEED", 0);
    if (M.seed == 0)
        M.seed = ((uint64_t)llmb_now_ms() << 16) ^ (uint64_t)getpid();
    rng_state = M.seed ? M.seed : 1;
    M.keep_going = env_ull("LLMB_MODEL_KEEP_GOING", 0) != 0;
    M.trace = env_ull("LLMB_MODEL_TRACE", 0) != 0;
    M.tick_us = (long long)env_ull("LLMB_MODEL_TICK_MS", 4) * 1000;
    if (M.tick_us <= 0)
        M.tick_us = 1000;
    fprintf(stderr, "test_model: seed %llu, %llu s (replay: "
                    "LLMB_MODEL_SEED=%llu)\n", (unsigned long long)M.seed,
            seconds, (unsigned long long)M.seed);
    epoch_start();
    while ((unsigned long long)(llmb_mono_ms() - start) < seconds * 1000 &&
           (steps == 0 || (unsigned long long)M.step < steps)) {
        step_begin();
        {
            long long a = llmb_mono_us(), b;
            random_op();
            b = llmb_mono_us();
            check_all();
            C.us_op += b - a;
            C.us_check += llmb_mono_us() - b;
        }
        if (!step_end())
            continue;
        if (M.epoch_steps >= M.epoch_len) {
            if (drain()) {
                epoch_end();
                epoch_start();
            }
        }
    }
    drain();
    fprintf(stderr, "test_model: %ld steps in %d epochs, %d violations "
                    "(seed %llu)\n", M.step, M.epoch, M.bad_total,
            (unsigned long long)M.seed);
    fprintf(stderr, "test_model: jobs pushed %ld (%ld of %d tasks), bad "
                    "documents %ld, ids pushed again %ld; claims %ld handing "
                    "out %ld tasks, promoted %ld; bad tokens sent %ld; "
                    "completed %ld, bad results %ld, retried later %ld, "
                    "failed %ld, released %ld; cancels %ld (%ld leaving refs, "
                    "%ld refs met later), purged %ld; retries %ld (%ld "
                    "sweeping); reaped %ld, reaped with their worker %ld; "
                    "most refs of a job waiting at once %ld; heartbeats "
                    "answered cancelled %ld\n",
            C.push_jobs, C.big, BIG_TASKS, C.push_bad, C.push_dup, C.claims,
            C.claimed, C.promoted, C.bad_tokens, C.completed, C.bad_results,
            C.retried_later, C.failed, C.released, C.cancels, C.cancel_left,
            C.met_cancelled, C.purged, C.retries, C.sweeps, C.reaped,
            C.reaped_worker, C.max_refs, C.hb_cancelled);
    fprintf(stderr, "test_model: time in ops %lld ms, in checks %lld ms\n",
            C.us_op / 1000, C.us_check / 1000);
    epoch_end();
    if (M.bad_total > 0)
        fail_msg("test_model: %d invariant violations (seed %llu)",
                 M.bad_total, (unsigned long long)M.seed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_random),
    };
    return cmocka_run_group_tests(tests, tq_setup, tq_teardown);
}
