/*
 * A model-based randomized test of the function library. Random sequences
 * of every transition a queue has (push, claim, heartbeat, complete, fail,
 * release, cancel, retry, purge, promote, reap, reap_worker) run against
 * the fixture redis-server, with several workers, short leases, delays and
 * backoffs so that leases expire and delayed tasks come due, and with
 * stale or forged lease tokens on purpose. A small model of every job and
 * task runs alongside: each reply is compared with what the model expects,
 * and after every step the whole queue is read back and compared with the
 * model (check_all lists the invariants): the records, the members
 * waiting in <base>:pl, :pz and :pd, the batch leases (<base>:run,
 * :lease, :running, :wl:<worker>), the ends in <base>:je and :fin, the
 * attempts in <base>:att, the jobs to stop in <base>:cx, the fan-out job
 * hashes (lua/05-lifecycle.lua).
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
#include <math.h>
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

/* Where a task is (the record layout: lua/05-lifecycle.lua). A task's
 * member is "<id>" for a job of one task, "<id>:<idx>" for a task of a
 * fan-out job waiting on its own (a ref); a fan-out job's cursor is
 * "<id>". */
enum where {
    W_REF_P,  /* its member in <base>:pl (priority 0) or <base>:pz */
    W_REF_D,  /* its member in <base>:pd */
    W_CUR_P,  /* behind its job's cursor "<id>" in <base>:pl or <base>:pz */
    W_CUR_D,  /* behind the cursor in <base>:pd */
    W_RUN,    /* in <base>:run under the held token of its batch */
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
    unsigned char in_p, in_d, in_r; /* its member in pl/pz, pd, run */
    unsigned char in_pl;            /* of in_p, in <base>:pl */
    signed char wl;                 /* the worker of its batch's record */
    unsigned char st;               /* enum rstate of "<idx>:state" */
    signed char fworker;            /* "<idx>:worker": index, -1 absent, -2 other */
    long long attempt;              /* "<idx>:attempt", -1 when absent */
    long long att;                  /* its field in <base>:att, 0 absent */
    const char *result;             /* "<idx>:result" or NULL */
    const char *held;               /* its value in <base>:run */
    double sd, sr, sz;              /* scores in pd, of its batch in
                                       running, in pz */
    long long claimed;              /* claimed ms of its batch */
};

/* A task of the model. */
struct mtask {
    unsigned char where;   /* enum where */
    unsigned char outcome; /* last end (enum outcome); O_NONE never ended */
    signed char worker;    /* W_RUN: its holder */
    bool secret;           /* W_RUN: claimed with a secret */
    int attempt;           /* the attempt of its last claim */
    int att;               /* attempts before the present one: its field
                              in <base>:att (0: none) */
    int fattempt;          /* fan-out: "<idx>:attempt" as last written,
                              0 absent */
    signed char fworker;   /* fan-out: "<idx>:worker" as last written, -1 */
    signed char eworker;   /* the worker it ended on (-1: not running) */
    int eattempt;          /* the attempt it ended on */
    long long claimed_at;  /* W_RUN: the claim's now; then kept for its end */
    long long estarted;    /* the claimed ms its end shows, -1 none */
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
    int nends;                   /* runs that ended (lines in <base>:fin) */
    long long delay_ms;          /* pushed with */
    char opts[64];               /* its record's opts but y (delay) */
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
    bool bad_result; /* task_failed: for a result complete refused */
    int stale_pl; /* members of cancelled jobs left in <base>:pl, as the
                     last check counted them */
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

/* The member of task x: "<id>" for a job of one task, "<id>:<x>". */
static void task_ref(const struct mjob *j, int x, char *buf, size_t size)
{
    if (j->tasks == 1)
        snprintf(buf, size, "%s", j->id);
    else
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
    j->nends++;
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

    t->eworker = t->where == W_RUN ? t->worker : -1;
    t->estarted = t->where == W_RUN ? t->claimed_at : -1;
    t->eattempt = t->attempt;
    if (outcome == O_COMPLETED && j->tasks > 1) {
        t->fworker = t->worker;
        /* (the first attempt is no field: one of an earlier run goes) */
        if (t->attempt > 1)
            t->fattempt = t->attempt;
        else if (j->version > 0)
            t->fattempt = 0;
    }
    t->att = 0;
    tok_retire(t);
    t->where = W_ENDED;
    t->outcome = (unsigned char)outcome;
    free(t->result);
    t->result = result && outcome == O_COMPLETED ? llmb_xstrdup(result) : NULL;
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
    int attempt = t->att + 1;

    /* (<base>:att counts the attempt, whatever comes of it) */
    t->att = attempt;
    if (kind != K_FATAL && j->st != J_CANCELLING && attempt <= j->max_retries) {
        tok_retire(t);
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
    /* (a task that failed for good keeps its attempt and worker; one of
     * a job cancelled while it ran ends before that, unless its failure
     * was a result complete refused) */
    if (j->tasks > 1 && (j->st != J_CANCELLING || M.bad_result)) {
        t->fattempt = attempt;
        t->fworker = t->worker;
    }
    task_end(j, x, j->st == J_CANCELLING ? O_CANCELLED : O_FAILED, NULL);
    return 2;
}

static void task_claimed(struct mjob *j, int x, int w, const char *tok,
                         bool secret, int attempt, long long now,
                         long long deadline)
{
    struct mtask *t = &j->t[x];

    t->where = W_RUN;
    t->worker = (signed char)w;
    t->tok = llmb_xstrdup(tok);
    t->secret = secret;
    t->attempt = attempt;
    t->claimed_at = now;
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
 * refs of a fan-out job (a random subset, SPOP of <base>:jr:<id>): with
 * more, the ones it left are read back from <base>:jr:<id> and stay
 * waiting. (Its members in <base>:pl stay there, skipped by the claim
 * that meets them: check_all counts them apart.) Returns the tasks
 * removed. */
static int job_cancel(struct mjob *j)
{
    int removed = 0;
    redisReply *p = NULL;
    char ref[100];

    if (j->tasks > 1 && waiting_refs(j) > CANCEL_REFS_MAX)
        p = cmd("SMEMBERS %s:jr:%s", M.base, j->id);
    j->st = J_CANCELLING;
    for (int x = 0; x < j->tasks; x++) {
        struct mtask *t = &j->t[x];
        if (!waiting(t))
            continue;
        task_ref(j, x, ref, sizeof(ref));
        if (p != NULL && (t->where == W_REF_P || t->where == W_REF_D) &&
            in_reply(p, ref))
            continue;
        removed++;
        task_end(j, x, O_CANCELLED, NULL);
    }
    j->swept = false;
    if (p != NULL) {
        logf_(" (left %d refs waiting)", waiting_refs(j));
        C.cancel_left++;
        freeReplyObject(p);
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

/* Waiting members of the model: refs and cursors, in `set`: 'p' (pl and
 * pz), 'l' (pl), 'z' (pz) or 'd' (pd). */
static int members(char set)
{
    int n = 0;

    for (int i = 0; i < M.njobs; i++) {
        struct mjob *j = &M.job[i];
        bool cur = false;
        char s = set == 'l' || set == 'z' ? 'p' : set;
        if ((set == 'l' && j->prio != 0) || (set == 'z' && j->prio == 0))
            continue;
        for (int x = 0; x < j->tasks; x++) {
            int w = j->t[x].where;
            if ((s == 'p' && w == W_REF_P) || (s == 'd' && w == W_REF_D))
                n++;
            if ((s == 'p' && w == W_CUR_P) || (s == 'd' && w == W_CUR_D))
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

/* The delayed members of the model, in the order of <base>:pd.
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
                snprintf(d[k].name, sizeof(d[k].name), "%s", j->id);
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
        case 2: { /* what <base>:run stores: the held token */
            char ref[100];
            redisReply *h;
            task_ref(r.j, r.x, ref, sizeof(ref));
            h = cmd("HGET %s:run %s", M.base, ref);
            snprintf(e->tok, sizeof(e->tok), "%s",
                     h->type == REDIS_REPLY_STRING ? h->str : "0");
            freeReplyObject(h);
            e->why = "held token stored in <base>:run";
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
    j->delay_ms = d->delay_ms;
    {
        /* the record's opts (lua/05-lifecycle.lua OPTS) but y: those not
         * at their default, in the order p n t r b */
        size_t o = 0;
        j->opts[0] = '\0';
        if (d->prio != 0)
            o += (size_t)snprintf(j->opts + o, sizeof(j->opts) - o, "p%d", d->prio);
        if (d->tasks != 1)
            o += (size_t)snprintf(j->opts + o, sizeof(j->opts) - o, "n%d", d->tasks);
        if (strcmp(d->timeout, "600") != 0)
            o += (size_t)snprintf(j->opts + o, sizeof(j->opts) - o, "t%s", d->timeout);
        if (d->max_retries != 3)
            o += (size_t)snprintf(j->opts + o, sizeof(j->opts) - o, "r%d",
                                  d->max_retries);
        if (d->backoff_ms != 1000)
            o += (size_t)snprintf(j->opts + o, sizeof(j->opts) - o, "b%d",
                                  d->backoff_ms);
        if (d->delay_ms > 0)
            snprintf(j->opts + o, sizeof(j->opts) - o, "y%.14g",
                     (double)d->delay_ms / 1000.0);
    }
    j->t = llmb_xcalloc((size_t)d->tasks, sizeof(*j->t));
    j->r = llmb_xcalloc((size_t)d->tasks, sizeof(*j->r));
    j->clo = t0 + d->delay_ms;
    j->chi = t1 + d->delay_ms;
    for (int x = 0; x < d->tasks; x++) {
        struct mtask *t = &j->t[x];
        t->worker = t->fworker = t->eworker = -1;
        t->estarted = -1;
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
    const char *tok;

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
    /* {now, next due or -1, count, token, then per task: ref, type,
     * payload, opts} (lua/30-claim.lua) */
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 4 ||
        r->element[3]->type != REDIS_REPLY_STRING) {
        violation("reply", "claim answered %s", reply_text(r));
        freeReplyObject(r);
        return;
    }
    now = r->element[0]->integer;
    next_due = r->element[1]->integer;
    count = r->element[2]->integer;
    tok = r->element[3]->str;
    logf_(" now=%lld next_due=%lld count=%lld token=%s", now, next_due, count,
          tok);
    if (count < 0 || count > n || r->elements != 4 + (size_t)count * 4) {
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
    /* one token for the batch, "" when it is empty */
    if (count == 0 && tok[0] != '\0')
        violation("token", "an empty claim handed the token %s", tok);
    if (count > 0) {
        const char *dot = strchr(tok, '.');
        if (tok_seq(tok) <= M.last_tok)
            violation("token", "claim handed token %s after token %lld", tok,
                      M.last_tok);
        M.last_tok = tok_seq(tok);
        if ((secret && (dot == NULL || strcmp(dot + 1, M.secret[w]) != 0)) ||
            (!secret && dot != NULL))
            violation("token", "claim%s handed token %s",
                      secret ? " with a secret" : "", tok);
    }
    for (long long i = 0; i < count; i++) {
        redisReply **e = r->element + 4 + i * 4;
        struct mjob *j;
        struct mtask *t;
        long long x, want_attempt, attempt = 1;
        char buf[64], want_opts[80];
        const char *colon, *opts, *at;
        size_t idlen;

        if (e[0]->type != REDIS_REPLY_STRING || e[3]->type != REDIS_REPLY_STRING) {
            violation("reply", "claim task %lld is malformed", i);
            continue;
        }
        opts = e[3]->str;
        /* "a<attempt>" past the first, after the record's opts */
        at = strchr(opts, 'a');
        if (at != NULL)
            attempt = strtoll(at + 1, NULL, 10);
        logf_(" %s/%s", e[0]->str, opts);
        colon = strchr(e[0]->str, ':');
        idlen = colon ? (size_t)(colon - e[0]->str) : e[0]->len;
        j = job_find(e[0]->str, idlen);
        x = colon ? strtoll(colon + 1, NULL, 10) : 0;
        if (j == NULL || x < 0 || x >= j->tasks ||
            (j->tasks == 1) != (colon == NULL)) {
            violation("claim", "claim handed %s, a task the model does not "
                      "know", e[0]->str);
            continue;
        }
        t = &j->t[x];
        if (t->where != W_REF_P && t->where != W_CUR_P) {
            violation("claim", "claim handed %s, which the model has %s",
                      e[0]->str, where_name(t, buf, sizeof(buf)));
            continue;
        }
        if (j->st == J_CANCELLING)
            violation("claim", "claim handed %s of the cancelled job %s",
                      e[0]->str, j->id);
        want_attempt = t->att + 1;
        if (attempt != want_attempt)
            violation("attempt", "claim of %s answered attempt %lld (opts %s), "
                      "model expects %lld", e[0]->str, attempt, opts,
                      want_attempt);
        if (want_attempt > 1)
            snprintf(want_opts, sizeof(want_opts), "%sa%lld", j->opts,
                     want_attempt);
        else
            snprintf(want_opts, sizeof(want_opts), "%s", j->opts);
        if (strcmp(reply_text(e[1]), j->type) != 0 ||
            strcmp(reply_text(e[2]), j->payload) != 0 ||
            strcmp(opts, want_opts) != 0)
            violation("reply", "claim of %s answered type %s payload %s "
                      "opts %s; the job has %s %s %s", e[0]->str,
                      reply_text(e[1]), reply_text(e[2]), opts, j->type,
                      j->payload, want_opts);
        if (j->prio < min_prio)
            min_prio = j->prio;
        task_claimed(j, (int)x, w, tok, secret, (int)want_attempt, now,
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
        /* (a member a cancel left in <base>:pl is dropped, and another
         * taken in its place: up to CALL_MAX of them) */
        if (count < n && left_p > 0 && !sweep && met == 0 &&
            M.stale_pl < CALL_MAX)
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
    bool *taken = NULL;

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
    /* expected: first "lost" for each task named whose first entry does
     * not open its lease (unless a later one does), in order; then
     * "cancelled" for each task taken whose job was cancelled. Every batch
     * a task was taken of is renewed, all its tasks. */
    taken = llmb_xcalloc((size_t)n + 1, sizeof(bool));
    for (int i = 0; i < n; i++)
        entry_takes(e, i, w, taken);
    for (int i = 0; i < n; i++) {
        if (taken[i] || seen_before(e, i) >= 0)
            continue;
        if (k + 1 >= r->elements ||
            strcmp(reply_text(r->element[k]), e[i].ref) != 0 ||
            strcmp(reply_text(r->element[k + 1]), "lost") != 0) {
            violation("token", "heartbeat of %s token %s%s%s: redis answered "
                      "%s %s, model expects %s lost", e[i].ref, e[i].tok,
                      e[i].why ? ", " : "", e[i].why ? e[i].why : "",
                      k < r->elements ? reply_text(r->element[k]) : "(nothing)",
                      k + 1 < r->elements ? reply_text(r->element[k + 1]) : "",
                      e[i].ref);
            goto out;
        }
        k += 2;
    }
    for (int i = 0; i < n; i++) {
        if (!taken[i])
            continue;
        for (int q = 0; q < M.njobs; q++)
            for (int x = 0; x < M.job[q].tasks; x++) {
                struct mtask *o = &M.job[q].t[x];
                if (o->where == W_RUN && o->tok != NULL &&
                    strcmp(o->tok, e[i].tok) == 0) {
                    o->lo = t0 + lease;
                    o->hi = t1 + lease;
                }
            }
    }
    for (int i = 0; i < n; i++) {
        if (!taken[i] || e[i].j->st != J_CANCELLING)
            continue;
        task_end(e[i].j, e[i].x, O_CANCELLED, NULL);
        C.hb_cancelled++;
        if (k + 1 >= r->elements ||
            strcmp(reply_text(r->element[k]), e[i].ref) != 0 ||
            strcmp(reply_text(r->element[k + 1]), "cancelled") != 0) {
            violation("reply", "heartbeat of %s token %s: redis answered %s %s, "
                      "model expects %s cancelled", e[i].ref, e[i].tok,
                      k < r->elements ? reply_text(r->element[k]) : "(nothing)",
                      k + 1 < r->elements ? reply_text(r->element[k + 1]) : "",
                      e[i].ref);
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
    free(taken);
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
    M.bad_result = true;
    for (int i = 0; i < n; i++)
        if (want[i] == -1) {
            C.bad_results++;
            task_failed(e[i].j, e[i].x, K_ERROR, t0, t1);
        }
    M.bad_result = false;
    /* a task of a job cancelled while it ran ends cancelled, whatever
     * its result (lua/40-lease.lua: <base>:cx) */
    for (int i = 0; i < n; i++)
        if (want[i] == 1)
            task_end(e[i].j, e[i].x, e[i].j->st == J_CANCELLING ?
                     O_CANCELLED : O_COMPLETED, res[i]);
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
            /* (the attempt is given back: <base>:att is left as it was) */
            tok_retire(t);
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
            /* fresh attempts: <base>:att has none of them */
            t->att = 0;
            if (j->tasks == 1) {
                t->where = W_REF_P;
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

/* Value v of <base>:jd split as lua/05-lifecycle.lua keeps it: returns
 * the record (past the end an ended job holds in front: "<C|F|X>...\t<n>
 * \t<n bytes>"), and puts that end in the form the library made it
 * ("<c|f|x>...", a tab and the n bytes when n is given) in *end
 * (malloc'd; NULL when v has none). NULL v gives NULL. */
static const char *rec_split(const char *v, char **end)
{
    const char *t, *u;
    long long n = 0;

    *end = NULL;
    if (v == NULL || v[0] < 'A' || v[0] > 'Z')
        return v;
    t = strchr(v, '\t');
    u = t ? strchr(t + 1, '\t') : NULL;
    if (u == NULL) {
        violation("record", "a record with an end that does not parse: %s", v);
        return v;
    }
    if (u > t + 1)
        n = atoll(t + 1);
    if (n < 0 || (size_t)n > strlen(u + 1)) {
        violation("record", "a record whose end's length is out of it: %s", v);
        return v;
    }
    if (u > t + 1)
        *end = llmb_xasprintf("%c%.*s\t%.*s", v[0] - 'A' + 'a',
                              (int)(t - v - 1), v + 1, (int)n, u + 1);
    else
        *end = llmb_xasprintf("%c%.*s", v[0] - 'A' + 'a', (int)(t - v - 1),
                              v + 1);
    return u + 1 + n;
}

/* Whether job j's record says cancelled ('x'). */
static bool job_cancelled(const struct mjob *j)
{
    redisReply *r = cmd("HGET %s:jd %s", M.base, j->id);
    char *e = NULL;
    const char *rec = r->type == REDIS_REPLY_STRING ? rec_split(r->str, &e)
                                                    : NULL;
    bool x = rec != NULL && rec[0] == 'x';

    free(e);
    freeReplyObject(r);
    return x;
}

/* Members of <base>:pl whose job's record is cancelled and that the
 * model has not waiting there: left by a cancel for a claim or a purge to
 * drop. */
static int stale_in_pl(void)
{
    redisReply *l = cmd("LRANGE %s:pl 0 -1", M.base);
    int n = 0;

    for (size_t i = 0; l->type == REDIS_REPLY_ARRAY && i < l->elements; i++) {
        const char *m = l->element[i]->str, *colon = strchr(m, ':');
        struct mjob *j = job_find(m, colon ? (size_t)(colon - m) : strlen(m));
        bool cancelled, live = false;
        if (j == NULL)
            continue;
        cancelled = j->st == J_CANCELLING || j->st == J_CANCELLED;
        for (int x = 0; x < j->tasks && !live; x++) {
            int wh = j->t[x].where;
            live = colon ? (wh == W_REF_P && x == atoi(colon + 1))
                         : (j->tasks == 1 ? wh == W_REF_P : wh == W_CUR_P);
        }
        if (live)
            continue;
        if (!cancelled && colon != NULL) {
            redisReply *r = cmd("SISMEMBER %s:jr:%s %s", M.base, j->id, m);
            cancelled = r->type == REDIS_REPLY_INTEGER && r->integer == 0;
            freeReplyObject(r);
        }
        n += cancelled;
    }
    freeReplyObject(l);
    return n;
}

static void op_purge(void)
{
    int limit = chance(50) ? 1 + rnd(4) : CALL_MAX;
    bool cand[MAX_JOBS] = {false};
    int nl = members('l') + M.stale_pl, nz = members('z'), nd = members('d');
    int ncancel = 0, ncand = 0, stale;
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
        if (job_ended(&M.job[i]) || M.job[i].st == J_CANCELLING)
            continue;
        if (job_cancelled(&M.job[i])) {
            if (!cand[i])
                violation("purge", "purge cancelled %s, which had nothing "
                          "waiting", M.job[i].id);
            job_cancel(&M.job[i]);
            ncancel++;
            C.purged++;
        }
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
    if (limit >= nl && limit >= nz && limit >= nd && work <= 1000 &&
        ncancel != ncand)
        violation("purge", "purge with limit %d (%d+%d pending and %d "
                  "delayed members) cancelled %d of the %d jobs that had "
                  "tasks waiting", limit, nl, nz, nd, ncancel, ncand);
    /* (what waits: the model's members and those of cancelled jobs still
     * in <base>:pl, which check_all then checks) */
    stale = stale_in_pl();
    if (elem_int(r, 1) != members('p') + members('d') + stale)
        violation("reply", "purge answered %lld members still waiting, model "
                  "has %d (and %d of cancelled jobs in <base>:pl)",
                  elem_int(r, 1), members('p') + members('d'), stale);
    freeReplyObject(r);
}

static void op_promote(void)
{
    int limit = chance(70) ? -1 : rnd(3);
    long long t0, t1;
    redisReply *r, *left;
    struct dmember *dm;
    int ndm, moved = 0, met;

    t0 = redis_now();
    r = limit < 0 ? cmd("FCALL llmb_promote 1 %s", M.base)
                  : cmd("FCALL llmb_promote 1 %s %d", M.base, limit);
    t1 = redis_now();
    left = cmd("ZRANGE %s:pd 0 -1", M.base);
    logf_("promote limit=%d -> %lld", limit,
          r->type == REDIS_REPLY_INTEGER ? r->integer : -1);
    /* the refs a cancel left that it met end cancelled: not moved */
    met = refs_met_cancelled();
    if (met > 0)
        logf_(" (ended %d refs of cancelled jobs)", met);
    C.met_cancelled += met;
    dm = delayed_members(&ndm);
    for (int i = 0; i < ndm; i++) {
        bool gone = !in_reply(left, dm[i].name);
        if (gone && dm[i].due > t1)
            violation("promote", "promote moved %s, due at %lld, at %lld..%lld",
                      dm[i].name, dm[i].due, t0, t1);
        /* (those it met took part of its limit) */
        if (!gone && dm[i].due <= t0 && (limit < 0 || moved < limit) &&
            met == 0 &&
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

/* Whether the batch of token tok (the model's) is one of the first n
 * of toks. */
static bool tok_in(char **toks, int n, const char *tok)
{
    for (int i = 0; i < n; i++)
        if (strcmp(toks[i], tok) == 0)
            return true;
    return false;
}

/* The tasks of the model that a reap took back (their members gone from
 * <base>:run) are lost; a batch goes whole. `v` lists the tasks the
 * model had running that the reap could take. Returns the tasks taken
 * back and, in *batches, the batches. */
static int reaped_tasks(struct tref *v, int n, long long t0, long long t1,
                        int *batches, const char *what)
{
    redisReply *left = cmd("HKEYS %s:run", M.base);
    char **gone_tok = llmb_xcalloc((size_t)n + 1, sizeof(char *));
    char **kept_tok = llmb_xcalloc((size_t)n + 1, sizeof(char *));
    bool *gone = llmb_xcalloc((size_t)n + 1, sizeof(bool));
    int ngone = 0, nkept = 0, reaped = 0;
    char ref[100];

    for (int i = 0; i < n; i++) {
        struct mtask *t = &v[i].j->t[v[i].x];
        task_ref(v[i].j, v[i].x, ref, sizeof(ref));
        gone[i] = !in_reply(left, ref);
        if (gone[i]) {
            if (!tok_in(gone_tok, ngone, t->tok))
                gone_tok[ngone++] = llmb_xstrdup(t->tok);
        } else if (!tok_in(kept_tok, nkept, t->tok)) {
            kept_tok[nkept++] = llmb_xstrdup(t->tok);
        }
    }
    for (int i = 0; i < ngone; i++)
        if (tok_in(kept_tok, nkept, gone_tok[i]))
            violation("reap", "%s took back part of the batch of token %s",
                      what, gone_tok[i]);
    for (int i = 0; i < n; i++) {
        if (!gone[i])
            continue;
        task_ref(v[i].j, v[i].x, ref, sizeof(ref));
        logf_(" %s", ref);
        task_failed(v[i].j, v[i].x, K_LOST, t0, t1);
        reaped++;
    }
    *batches = ngone;
    for (int i = 0; i < ngone; i++)
        free(gone_tok[i]);
    for (int i = 0; i < nkept; i++)
        free(kept_tok[i]);
    free(gone_tok);
    free(kept_tok);
    free(gone);
    freeReplyObject(left);
    return reaped;
}

static void op_reap(void)
{
    int limit = chance(75) ? -1 : 1 + rnd(3);
    long long t0, t1;
    redisReply *r;
    int n, batches = 0;
    struct tref *v;
    char ref[100];

    v = held_by(-1, &n);
    t0 = redis_now();
    r = limit < 0 ? cmd("FCALL llmb_reap 1 %s", M.base)
                  : cmd("FCALL llmb_reap 1 %s %d", M.base, limit);
    t1 = redis_now();
    logf_("reap limit=%d -> %lld", limit,
          r->type == REDIS_REPLY_INTEGER ? r->integer : -1);
    /* (the reply counts batches: a lease is a batch's) */
    {
        redisReply *left = cmd("HKEYS %s:run", M.base);
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
                violation("reap", "reap left %s, its lease to %lld, at "
                          "%lld..%lld", ref, t->hi, t0, t1);
        }
        freeReplyObject(left);
    }
    C.reaped += reaped_tasks(v, n, t0, t1, &batches, "reap");
    if (r->type != REDIS_REPLY_INTEGER || r->integer != batches)
        violation("reply", "reap answered %s %lld, %d batches were taken back",
                  reply_text(r), r->type == REDIS_REPLY_INTEGER ? r->integer : 0,
                  batches);
    free(v);
    freeReplyObject(r);
}

static void op_reap_worker(void)
{
    int w = rnd(NWORKERS), n, reaped, batches = 0;
    struct tref *v = held_by(w, &n);
    long long t0, t1;
    redisReply *r;

    t0 = redis_now();
    r = chance(50) ? cmd("FCALL llmb_reap_worker 1 %s %s", M.base, WORKER[w])
                   : cmd("FCALL llmb_reap_worker 1 %s %s %s", M.base, WORKER[w],
                         "it went away");
    t1 = redis_now();
    logf_("reap_worker %s -> %lld", WORKER[w],
          r->type == REDIS_REPLY_INTEGER ? r->integer : -1);
    reaped = reaped_tasks(v, n, t0, t1, &batches, "reap_worker");
    C.reaped_worker += reaped;
    /* whole batches until CALL_MAX tasks: all of them below it */
    if (r->type != REDIS_REPLY_INTEGER || r->integer != reaped ||
        (n <= CALL_MAX ? reaped != n : reaped < CALL_MAX))
        violation("reply", "reap_worker %s answered %s %lld; it held %d, %d "
                  "were taken back", WORKER[w], reply_text(r),
                  r->type == REDIS_REPLY_INTEGER ? r->integer : 0, n, reaped);
    free(v);
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

/* Splits a member "<id>" (a job of one task, or a fan-out job's cursor)
 * or "<id>:<idx>" (a task of a fan-out job): its job and index (-1 for a
 * cursor). Returns false for a member that names no task of the model. */
static bool member_of(const char *m, struct mjob **j, int *x)
{
    const char *colon = strchr(m, ':');
    char *end;
    long v;

    if (colon == NULL) {
        *j = job_find(m, strlen(m));
        if (*j == NULL)
            return false;
        *x = (*j)->tasks == 1 ? 0 : -1;
        return true;
    }
    *j = job_find(m, (size_t)(colon - m));
    if (*j == NULL || (*j)->tasks == 1)
        return false;
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

/* The hash <base>:j:<id>: a fan-out job's counts and task fields; for a
 * job of one task, only what something rare wrote (its version after a
 * retry, errors, counts of retries), never a state or task states. */
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
        rt->claimed = -1;
    }
    if (h->type != REDIS_REPLY_ARRAY) {
        violation("job", "job %s: its hash is %s", j->id, reply_text(h));
        return;
    }
    if (j->tasks > 1 && h->elements == 0) {
        violation("job", "job %s: its hash is gone", j->id);
        return;
    }
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const char *k = h->element[i]->str, *v = h->element[i + 1]->str;
        if (k[0] >= '0' && k[0] <= '9') {
            char *end;
            long x = strtol(k, &end, 10);
            struct rtask *rt;
            if (*end != ':' || x < 0 || x >= j->tasks ||
                (j->tasks == 1 && strcmp(end, ":error") != 0)) {
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
    if (j->tasks == 1 && (f->state || f->left || f->failed || f->cancelled ||
                          f->ok || f->next || f->ahead || f->tasks ||
                          f->finished))
        violation("job", "job %s of one task has a hash with counts or a "
                  "state (state %s left %s)", j->id,
                  f->state ? f->state : "-", f->left ? f->left : "-");
}

/* Members waiting, into the read-back tasks: `set` is 'l' (<base>:pl, a
 * list: no scores), 'z' (<base>:pz) or 'd' (<base>:pd). Cursors go to
 * cur[] (by job index: +1 in pl or pz, +16 in pd), those in pl also to
 * pl_cur[]. */
static void read_waiting(const redisReply *z, char set, int *cur,
                         double *cur_score, int *pl_cur)
{
    size_t step = set == 'l' ? 1 : 2;
    const char *name = set == 'l' ? "<base>:pl" : set == 'z' ? "<base>:pz"
                                                             : "<base>:pd";

    if (z->type != REDIS_REPLY_ARRAY) {
        violation("keys", "%s: %s", name, reply_text(z));
        return;
    }
    for (size_t i = 0; i + step - 1 < z->elements; i += step) {
        const char *m = z->element[i]->str;
        double score = step == 2 ? strtod(z->element[i + 1]->str, NULL) : 0;
        struct mjob *j;
        int x;
        if (!member_of(m, &j, &x)) {
            violation("junk", "%s holds %s, which names no task of the model",
                      name, m);
            continue;
        }
        /* priority 0 in the list, others in pz scored by priority */
        if ((set == 'l' && j->prio != 0) || (set == 'z' && j->prio == 0))
            violation("place", "%s holds %s of priority %d", name, m, j->prio);
        if (set == 'z' && (long long)floor(score / 4294967296.0) != -j->prio)
            violation("place", "<base>:pz holds %s of priority %d at score "
                      "%.0f", m, j->prio, score);
        if (x < 0) {
            int ji = (int)(j - M.job);
            cur[ji] += set == 'd' ? 16 : 1;
            cur_score[ji] = score;
            if (set == 'l')
                pl_cur[ji]++;
            continue;
        }
        if (set == 'd') {
            j->r[x].in_d++;
            j->r[x].sd = score;
        } else {
            j->r[x].in_p++;
            if (set == 'l')
                j->r[x].in_pl++;
            j->r[x].sz = score;
        }
    }
}

/* A batch's record in <base>:lease. */
struct batch {
    const char *held;
    const char *rec; /* "<worker> <claimed ms> <member>..." */
    long long n;     /* "<held>#n", -1 absent */
    int w;
    long long claimed;
    double deadline; /* in <base>:running, -1 absent */
    int running;     /* its members in <base>:run under it */
};

static struct batch *batch_find(struct batch *b, int nb, const char *held)
{
    for (int i = 0; i < nb; i++)
        if (strcmp(b[i].held, held) == 0)
            return &b[i];
    return NULL;
}

/*
 * The leases: every member of <base>:run (but '~') is a task of the model
 * held under the token of a batch whose record lists it; each batch
 * record has its worker, its deadline in <base>:running, its held token
 * in <base>:wl:<worker> and "<held>#n" = its members still held under
 * it (at least one); <base>:running and the workers' sets hold nothing
 * else. Fills in the running tasks' worker, deadline and claimed ms.
 */
static void check_leases(const redisReply *run, const redisReply *lease,
                         const redisReply *running, redisReply *const *wl)
{
    struct batch *b;
    int nb = 0;

    if (run->type != REDIS_REPLY_ARRAY || lease->type != REDIS_REPLY_ARRAY ||
        running->type != REDIS_REPLY_ARRAY) {
        violation("keys", "run %s, lease %s, running %s", reply_text(run),
                  reply_text(lease), reply_text(running));
        return;
    }
    for (size_t i = 0; i + 1 < run->elements; i += 2) {
        const char *m = run->element[i]->str;
        struct mjob *j;
        int x;
        if (strcmp(m, "~") == 0)
            continue;
        if (!member_of(m, &j, &x) || x < 0) {
            violation("junk", "<base>:run holds %s, which names no task", m);
            continue;
        }
        j->r[x].in_r++;
        j->r[x].held = run->element[i + 1]->str;
    }
    b = llmb_xcalloc(lease->elements / 2 + 1, sizeof(*b));
    for (size_t i = 0; i + 1 < lease->elements; i += 2) {
        const char *k = lease->element[i]->str;
        char w[64];
        if (strstr(k, "#n") != NULL)
            continue;
        b[nb].held = k;
        b[nb].rec = lease->element[i + 1]->str;
        b[nb].n = -1;
        b[nb].deadline = -1;
        if (sscanf(b[nb].rec, "%63s %lld", w, &b[nb].claimed) != 2)
            violation("lease", "batch %s: record %s", k, b[nb].rec);
        b[nb].w = worker_index(w);
        nb++;
    }
    for (size_t i = 0; i + 1 < lease->elements; i += 2) {
        const char *k = lease->element[i]->str, *hn = strstr(k, "#n");
        struct batch *p;
        char held[200];
        if (hn == NULL)
            continue;
        snprintf(held, sizeof(held), "%.*s", (int)(hn - k), k);
        p = batch_find(b, nb, held);
        if (p == NULL || hn[2] != '\0')
            violation("lease", "<base>:lease has %s without its batch", k);
        else
            p->n = strtoll(lease->element[i + 1]->str, NULL, 10);
    }
    for (size_t i = 0; i + 1 < running->elements; i += 2) {
        struct batch *p = batch_find(b, nb, running->element[i]->str);
        if (p == NULL)
            violation("lease", "<base>:running holds %s, which has no batch "
                      "record", running->element[i]->str);
        else
            p->deadline = strtod(running->element[i + 1]->str, NULL);
    }
    for (int w = 0; w < NWORKERS; w++) {
        if (wl[w]->type != REDIS_REPLY_ARRAY) {
            violation("keys", "<base>:wl:%s is %s", WORKER[w], reply_text(wl[w]));
            continue;
        }
        for (size_t i = 0; i < wl[w]->elements; i++) {
            struct batch *p = batch_find(b, nb, wl[w]->element[i]->str);
            if (p == NULL || p->w != w)
                violation("lease", "<base>:wl:%s holds %s, %s", WORKER[w],
                          wl[w]->element[i]->str, p == NULL ?
                          "which has no batch record" : "a batch of another worker");
        }
    }
    /* each batch's members: those still held under it */
    for (int k = 0; k < nb; k++) {
        const char *s = strchr(b[k].rec, ' ');
        s = s ? strchr(s + 1, ' ') : NULL;
        while (s != NULL && *s != '\0') {
            char m[100];
            size_t len;
            struct mjob *j;
            int x;
            while (*s == ' ')
                s++;
            len = strcspn(s, " ");
            if (len == 0)
                break;
            snprintf(m, sizeof(m), "%.*s", (int)len, s);
            s += len;
            if (!member_of(m, &j, &x) || x < 0) {
                violation("lease", "batch %s lists %s, which names no task",
                          b[k].held, m);
                continue;
            }
            if (j->r[x].in_r && strcmp(j->r[x].held, b[k].held) == 0) {
                struct rtask *rt = &j->r[x];
                b[k].running++;
                rt->wl = (signed char)b[k].w;
                rt->sr = b[k].deadline;
                rt->claimed = b[k].claimed;
            }
        }
        if (b[k].w < 0)
            violation("lease", "batch %s of an unknown worker: %s", b[k].held,
                      b[k].rec);
        if (b[k].deadline < 0)
            violation("lease", "batch %s has no deadline in <base>:running",
                      b[k].held);
        if (b[k].w >= 0 && !in_reply(wl[b[k].w], b[k].held))
            violation("lease", "batch %s is not in <base>:wl:%s", b[k].held,
                      WORKER[b[k].w]);
        if (b[k].n != b[k].running || b[k].running < 1)
            violation("lease", "batch %s: #n %lld, %d of its members held "
                      "under it", b[k].held, b[k].n, b[k].running);
    }
    /* a member held under a token whose batch does not list it */
    for (int i = 0; i < M.njobs; i++)
        for (int x = 0; x < M.job[i].tasks; x++) {
            struct rtask *rt = &M.job[i].r[x];
            char ref[100];
            if (!rt->in_r || rt->claimed >= 0)
                continue;
            task_ref(&M.job[i], x, ref, sizeof(ref));
            violation("lease", "%s is held under %s, whose batch %s", ref,
                      rt->held, batch_find(b, nb, rt->held) ?
                      "does not list it" : "has no record");
        }
    free(b);
}

/* Checks one task: its place in Redis against the model. `ended` is the
 * state its job's end in <base>:je says (a job of one task), or NULL. */
static void check_task(struct mjob *j, int x, int cur, long long next,
                       const char *jstate_redis, const char *ended,
                       long long *behind)
{
    struct mtask *t = &j->t[x];
    struct rtask *rt = &j->r[x];
    int places, rwhere = -1, routcome = O_NONE, rworker = -1;
    bool cur_p = (cur & 15) > 0, cur_d = (cur >> 4) > 0;
    bool behind_cur = (cur_p || cur_d) && x >= next && rt->st != RS_COMPLETED;
    bool fan = j->tasks > 1;
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
        /* (a claim writes no task state: a running task keeps the state
         * it waited with, or of its last run) */
        if (rt->st == RS_COMPLETED || rt->st == RS_DELAYED ||
            rt->st == RS_OTHER || (ended != NULL && places == 1))
            violation("place", "%s is running with state %s%s%s", ref,
                      RSTATE[rt->st], ended ? ", its job ended " : "",
                      ended ? ended : "");
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
        if (!fan) {
            routcome = ended == NULL ? O_NONE :
                       strcmp(ended, "completed") == 0 ? O_COMPLETED :
                       strcmp(ended, "failed") == 0 ? O_FAILED : O_CANCELLED;
            if (ended == NULL) {
                violation("place", "%s is nowhere: not waiting, not running, "
                          "no end (model: %s)", ref,
                          where_name(t, buf, sizeof(buf)));
                return;
            }
        } else if (rt->st == RS_COMPLETED)
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
    if (!fan && rwhere != W_ENDED && ended != NULL && places == 1)
        violation("place", "%s has ended (%s) and is %s", ref, ended,
                  rwhere == W_RUN ? "running" : "waiting");
    if (places > 1)
        return;
    /* A task at or past its job's `next` was not handed out in this run:
     * once the job is cancelled, it ended cancelled behind its cursor,
     * whatever its state field says of an earlier run (docs/data-model.md,
     * "Task fields"; llmb show derives it the same way). */
    if (fan && rwhere == W_ENDED && x >= next && rt->st != RS_COMPLETED &&
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
        if (rt->claimed != t->claimed_at)
            violation("lease", "%s: its batch was claimed at %lld, model %lld",
                      ref, rt->claimed, t->claimed_at);
        /* the held token: "<seq>" as handed out, or "<seq>.<h>" for a
         * token with a secret, which Redis never holds */
        if (rt->held == NULL || tok_seq(rt->held) != tok_seq(t->tok) ||
            (!t->secret && strcmp(rt->held, t->tok) != 0) ||
            (t->secret && strchr(rt->held, '.') == NULL))
            violation("token", "%s: <base>:run holds %s, token %s%s", ref,
                      rt->held ? rt->held : "(nil)", t->tok,
                      t->secret ? " (with a secret)" : "");
        else if (t->secret && strchr(t->tok, '.') != NULL &&
                 strcmp(strchr(t->tok, '.'), strchr(rt->held, '.')) == 0)
            violation("token", "%s: <base>:run holds the secret", ref);
    } else if (t->where == W_REF_D) {
        long long s = (long long)rt->sd;
        if (s < t->lo || s > t->hi)
            violation("due", "%s: due at %lld, model expects %lld..%lld", ref,
                      s, t->lo, t->hi);
        t->lo = t->hi = s;
    }
    /* attempts: those started before the present one, in <base>:att;
     * the fan-out task fields as complete and fail write them */
    if (rt->att != t->att)
        violation("attempt", "%s: <base>:att has %lld, model %d", ref, rt->att,
                  t->att);
    if (fan && (rt->attempt != (t->fattempt > 0 ? t->fattempt : -1) ||
                rt->fworker != t->fworker))
        violation("attempt", "%s: attempt field %lld worker field %d, model "
                  "%d %d", ref, rt->attempt, rt->fworker, t->fattempt,
                  t->fworker);
    if (!fan)
        return; /* its result is in its end (check_end) */
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

/* The value of field f of a hash reply (HGETALL), or NULL. */
static const char *hash_get(const redisReply *h, const char *field)
{
    if (h->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (strcmp(h->element[i]->str, field) == 0)
            return h->element[i + 1]->str;
    return NULL;
}

static long long hash_num(const redisReply *h, const char *field)
{
    const char *v;

    if (h->type != REDIS_REPLY_ARRAY)
        return -1;
    v = hash_get(h, field);
    return v ? strtoll(v, NULL, 10) : 0;
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

/* Lines of <base>:fin in which job id appears, and the ms of the last. */
static int fin_count(const redisReply *fin, const char *id, long long *last)
{
    int n = 0;
    size_t idlen = strlen(id);

    *last = -1;
    if (fin->type != REDIS_REPLY_ARRAY)
        return -1;
    for (size_t i = 0; i < fin->elements; i++) {
        const char *s = fin->element[i]->str, *p = strchr(s, ' ');
        while (p != NULL) {
            const char *q = p + 1, *e = strchr(q, ' ');
            size_t len = e ? (size_t)(e - q) : strlen(q);
            if (len == idlen && memcmp(q, id, idlen) == 0) {
                n++;
                *last = strtoll(s, NULL, 10);
            }
            p = e;
        }
    }
    return n;
}

static const char *const END_NAME[] = {"none", "completed", "failed",
                                       "cancelled"};

/* The job's end (in front of its record) against the model: there iff it ended, its
 * letter, and for a job of one task when it ran, on which worker, since
 * when, its attempt past the first, and its result (not {}) or error. */
static const char *check_end(struct mjob *j, const char *e)
{
    char letter = j->st == J_COMPLETED ? 'c' : j->st == J_FAILED ? 'f' : 'x';
    const char *state = NULL;
    long long fin = -1;
    const char *tab, *p;

    if (e == NULL) {
        if (job_ended(j))
            violation("end", "job %s (%s) has no end in its record", j->id,
                      JSTATE[j->st]);
        return NULL;
    }
    state = e[0] == 'c' ? END_NAME[1] : e[0] == 'f' ? END_NAME[2] :
            e[0] == 'x' ? END_NAME[3] : NULL;
    if (!job_ended(j) || e[0] != letter || state == NULL) {
        violation("end", "job %s (model: %s) has the end %s", j->id,
                  JSTATE[j->st], e);
        return state;
    }
    fin = strtoll(e + 1, (char **)&p, 10);
    tab = strchr(e, '\t');
    if (j->tasks > 1) {
        if (*p != '\0')
            violation("end", "fan-out job %s has the end %s", j->id, e);
    } else {
        struct mtask *t = &j->t[0];
        char want[200];
        int k;
        if (t->eworker >= 0) {
            k = snprintf(want, sizeof(want), "%c%lld %lld %s", letter, fin,
                         t->estarted, WORKER[t->eworker]);
            if (t->eattempt > 1 && j->st != J_CANCELLED)
                snprintf(want + k, sizeof(want) - (size_t)k, " %d", t->eattempt);
        } else {
            snprintf(want, sizeof(want), "%c%lld", letter, fin);
        }
        if (strncmp(e, want, strlen(want)) != 0 ||
            (e[strlen(want)] != '\0' && e[strlen(want)] != '\t'))
            violation("end", "job %s has the end %s, model %s...", j->id, e,
                      want);
        else if (j->st == J_COMPLETED) {
            bool empty = t->result != NULL && strcmp(t->result, "{}") == 0;
            if (t->result == NULL || (empty ? tab != NULL
                                            : tab == NULL ||
                                              strcmp(tab + 1, t->result) != 0))
                violation("result", "job %s: end %s, model result %s", j->id,
                          e, t->result ? t->result : "(none)");
        } else if ((j->st == J_FAILED) != (tab != NULL)) {
            violation("end", "job %s (%s) has the end %s", j->id,
                      JSTATE[j->st], e);
        }
    }
    return state;
}

/* The view of job j that llmb_job answers (lua/15-job.lua), whatever the
 * layout: its state and counts, and the fields of its first 100 tasks,
 * against the model. */
static void check_view(struct mjob *j)
{
    redisReply *v = cmd("FCALL_RO llmb_job 1 %s %s", M.base, j->id);
    const char *want_state;
    char buf[64];

    if (v->type != REDIS_REPLY_ARRAY || v->elements == 0) {
        violation("view", "llmb_job %s answered %s", j->id, reply_text(v));
        freeReplyObject(v);
        return;
    }
    if (j->tasks > 1 || job_ended(j) || j->st == J_CANCELLING)
        want_state = JSTATE[j->st];
    else
        want_state = j->t[0].where == W_RUN ? "running" : "pending";
    if (strcmp(hash_get(v, "state") ? hash_get(v, "state") : "(none)",
               want_state) != 0 ||
        num(hash_get(v, "left"), -1) != j->left ||
        num(hash_get(v, "version"), 0) != j->version ||
        strcmp(hash_get(v, "type") ? hash_get(v, "type") : "", j->type) != 0 ||
        num(hash_get(v, "tasks"), -1) != j->tasks)
        violation("view", "llmb_job %s: state %s left %s version %s tasks "
                  "%s, model %s %d %d %d", j->id,
                  hash_get(v, "state") ? hash_get(v, "state") : "-",
                  hash_get(v, "left") ? hash_get(v, "left") : "-",
                  hash_get(v, "version") ? hash_get(v, "version") : "-",
                  hash_get(v, "tasks") ? hash_get(v, "tasks") : "-",
                  want_state, j->left, j->version, j->tasks);
    if (job_ended(j) &&
        (num(hash_get(v, "ok"), -1) != j->tasks - j->failed - j->cancelled ||
         num(hash_get(v, "failed"), 0) != j->failed ||
         num(hash_get(v, "cancelled"), 0) != j->cancelled))
        violation("view", "llmb_job %s (%s): ok %s failed %s cancelled %s, "
                  "model %d %d %d", j->id, JSTATE[j->st],
                  hash_get(v, "ok") ? hash_get(v, "ok") : "-",
                  hash_get(v, "failed") ? hash_get(v, "failed") : "-",
                  hash_get(v, "cancelled") ? hash_get(v, "cancelled") : "-",
                  j->tasks - j->failed - j->cancelled, j->failed, j->cancelled);
    for (int x = 0; x < j->tasks && x < 100; x++) {
        struct mtask *t = &j->t[x];
        char f[32];
        const char *st, *at, *wk, *res;
        const char *want = NULL;
        long long want_at = -1;
        int want_w = -1;
        snprintf(f, sizeof(f), "%d:state", x);
        st = hash_get(v, f);
        snprintf(f, sizeof(f), "%d:attempt", x);
        at = hash_get(v, f);
        snprintf(f, sizeof(f), "%d:worker", x);
        wk = hash_get(v, f);
        snprintf(f, sizeof(f), "%d:result", x);
        res = hash_get(v, f);
        switch (t->where) {
        case W_RUN:
            want = "running";
            want_at = t->attempt;
            want_w = t->worker;
            break;
        case W_REF_P:
        case W_REF_D:
            /* (a task waiting again shows the attempts it had) */
            if (t->att > 0 || j->tasks > 1)
                want = t->where == W_REF_P ? "pending" : "delayed";
            if (t->att > 0)
                want_at = t->att;
            break;
        case W_ENDED:
            want = OUTCOME[t->outcome];
            if (t->outcome != O_CANCELLED && t->eworker >= 0) {
                want_at = t->eattempt;
                want_w = t->eworker;
            }
            break;
        default:
            continue; /* behind a cursor: the fields of an earlier run */
        }
        /* cancelled behind its cursor: no field, or the fields of an
         * earlier run (check_task) */
        if (t->where == W_ENDED && t->outcome == O_CANCELLED && j->tasks > 1 &&
            strcmp(JSTATE[j->st], "cancelled") == 0 &&
            x >= num(hash_get(v, "next"), 0) &&
            (st == NULL || strcmp(st, "completed") != 0))
            continue;
        if ((want != NULL) != (st != NULL) ||
            (want != NULL && strcmp(st, want) != 0) ||
            (want_at >= 0 && num(at, -1) != want_at) ||
            (want_w >= 0 && (wk == NULL || worker_index(wk) != want_w)) ||
            (t->where == W_ENDED && t->outcome == O_COMPLETED &&
             (res == NULL || t->result == NULL || strcmp(res, t->result) != 0)))
            violation("view", "llmb_job %s %d: state %s attempt %s worker %s "
                      "result %s; model %s, attempt %lld, worker %s, result %s",
                      j->id, x, st ? st : "-", at ? at : "-", wk ? wk : "-",
                      res ? res : "-", where_name(t, buf, sizeof(buf)),
                      want_at, want_w >= 0 ? WORKER[want_w] : "-",
                      t->outcome == O_COMPLETED && t->result ? t->result : "-");
    }
    freeReplyObject(v);
}

/*
 * Reads the whole queue back and compares it with the model:
 *
 * - place: every task is in exactly one place: waiting (its member in
 *   <base>:pl, <base>:pz or <base>:pd, or behind its job's cursor "<id>":
 *   index >= the job's `next`, "<idx>:state" not completed), running (its
 *   member in <base>:run under the held token of a batch of one worker),
 *   or ended (a job of one task: the end in its record; a fan-out task:
 *   "<idx>:state" completed, failed or cancelled, or no field when it was
 *   cancelled behind its cursor); and it is where the model has it (same
 *   set, cursor or member, same worker). Members of a cancelled job may
 *   stay in <base>:pl (a claim or a purge drops them): they are counted
 *   apart, and only for jobs the model has cancelled;
 * - leases: check_leases;
 * - outcome/result: an ended task keeps its outcome and result (only a
 *   retry brings back the tasks that did not complete); a result exists
 *   only for a completed task; <base>:att and the fan-out task fields as
 *   the model counts attempts;
 * - lease/due: the deadlines of batches are those a claim or heartbeat
 *   set, delayed scores the due times of push delays and backoffs;
 * - record: <base>:jd holds each job's record ('x' once cancelled, until
 *   a retry), its type, options and payload; <base>:jl each job once;
 * - job: a fan-out job's state (pending until a claim, running, cancelled
 *   at once, ended only when `left` is 0), `left` = tasks not ended,
 *   `failed` and `cancelled` of this run, `ok` = tasks - failed -
 *   cancelled once ended; a cursor iff the model has tasks behind it,
 *   standing for tasks - next - ahead >= 1 tasks;
 * - end: check_end; each run of a job that ended in one line of
 *   <base>:fin, the last at its end's time; ended jobs once in
 *   <base>:done when they need aggregating (fan-out, or a result not {}),
 *   failed ones in <base>:dead; <base>:cx exactly the jobs cancelled with
 *   tasks still to stop;
 * - jr: <base>:jr:<id> holds exactly the waiting refs of fan-out job <id>;
 * - counts: <base>:counts ok/failed/cancelled are the sums of task ends;
 *   wait_p/wait_d the tasks behind cursors beyond one per cursor; junk 0;
 * - stats: llmb_stats pending, delayed and running are the model's tasks
 *   (pending with the members of cancelled jobs left in <base>:pl).
 */
static void check_all(void)
{
    redisReply *pl, *pz, *d, *run, *lease, *running, *wl[NWORKERS], *att, *cx,
        *je, *fin, *jd, *jl, *counts, *stats, *dead, *done;
    int cur[MAX_JOBS] = {0}, pl_cur[MAX_JOBS] = {0};
    double cur_score[MAX_JOBS] = {0};
    long long mp, md, mr, wait_p = 0, wait_d = 0;
    int stale = 0;

    redisAppendCommand(T.c, "LRANGE %s:pl 0 -1", M.base);
    redisAppendCommand(T.c, "ZRANGE %s:pz 0 -1 WITHSCORES", M.base);
    redisAppendCommand(T.c, "ZRANGE %s:pd 0 -1 WITHSCORES", M.base);
    redisAppendCommand(T.c, "HGETALL %s:run", M.base);
    redisAppendCommand(T.c, "HGETALL %s:lease", M.base);
    redisAppendCommand(T.c, "ZRANGE %s:running 0 -1 WITHSCORES", M.base);
    for (int w = 0; w < NWORKERS; w++)
        redisAppendCommand(T.c, "SMEMBERS %s:wl:%s", M.base, WORKER[w]);
    redisAppendCommand(T.c, "HGETALL %s:att", M.base);
    redisAppendCommand(T.c, "SMEMBERS %s:cx", M.base);
    redisAppendCommand(T.c, "HGETALL %s:je", M.base);
    redisAppendCommand(T.c, "LRANGE %s:fin 0 -1", M.base);
    redisAppendCommand(T.c, "HGETALL %s:jd", M.base);
    redisAppendCommand(T.c, "LRANGE %s:jl 0 -1", M.base);
    redisAppendCommand(T.c, "HGETALL %s:counts", M.base);
    redisAppendCommand(T.c, "FCALL llmb_stats 1 %s", M.base);
    redisAppendCommand(T.c, "ZRANGE %s:dead 0 -1", M.base);
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
    GET(pl);
    GET(pz);
    GET(d);
    GET(run);
    GET(lease);
    GET(running);
    for (int w = 0; w < NWORKERS; w++)
        GET(wl[w]);
    GET(att);
    GET(cx);
    GET(je);
    GET(fin);
    GET(jd);
    GET(jl);
    GET(counts);
    GET(stats);
    GET(dead);
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
        read_waiting(pl, 'l', cur, cur_score, pl_cur);
        read_waiting(pz, 'z', cur, cur_score, pl_cur);
        read_waiting(d, 'd', cur, cur_score, pl_cur);
        check_leases(run, lease, running, wl);
        for (size_t i = 0; att->type == REDIS_REPLY_ARRAY && i + 1 < att->elements;
             i += 2) {
            struct mjob *j;
            int x;
            if (!member_of(att->element[i]->str, &j, &x) || x < 0) {
                violation("junk", "<base>:att has %s", att->element[i]->str);
                continue;
            }
            j->r[x].att = strtoll(att->element[i + 1]->str, NULL, 10);
        }
        for (size_t i = 0; cx->type == REDIS_REPLY_ARRAY && i < cx->elements; i++) {
            struct mjob *j = job_find(cx->element[i]->str, cx->element[i]->len);
            if (j == NULL || j->st != J_CANCELLING)
                violation("cx", "<base>:cx has %s (model: %s)",
                          cx->element[i]->str, j ? JSTATE[j->st] : "no job");
        }
        /* (ends are kept in the records since library version 31) */
        if (je->type != REDIS_REPLY_ARRAY || je->elements > 0)
            violation("junk", "<base>:je exists");
        for (size_t i = 0; je->type == REDIS_REPLY_ARRAY && i + 1 < je->elements;
             i += 2)
            if (job_find(je->element[i]->str, je->element[i]->len) == NULL &&
                strcmp(je->element[i]->str, "~") != 0)
                violation("junk", "<base>:je has %s", je->element[i]->str);
        for (size_t i = 0; jd->type == REDIS_REPLY_ARRAY && i + 1 < jd->elements;
             i += 2)
            if (job_find(jd->element[i]->str, jd->element[i]->len) == NULL &&
                strcmp(jd->element[i]->str, "~") != 0)
                violation("junk", "<base>:jd has %s", jd->element[i]->str);
        if (jl->type != REDIS_REPLY_ARRAY || (int)jl->elements != M.njobs)
            violation("record", "<base>:jl has %zu ids, model %d jobs",
                      jl->type == REDIS_REPLY_ARRAY ? jl->elements : 0, M.njobs);

        for (int i = 0; i < M.njobs; i++) {
            struct mjob *j = &M.job[i];
            const char *st = f[i].state ? f[i].state : "(none)";
            long long next = num(f[i].next, 0), ahead = num(f[i].ahead, 0);
            long long behind = 0, left = 0, nwait_ref = 0, fin_ms;
            bool m_cur_p = false, m_cur_d = false;
            bool ended_m = job_ended(j);
            bool cancelled_m = j->st == J_CANCELLING || j->st == J_CANCELLED;
            char *etext = NULL;
            const char *rec = rec_split(hash_get(jd, j->id), &etext);
            const char *ended = check_end(j, etext);
            long long end_ms = etext ? strtoll(etext + 1, NULL, 10) : -1;
            char eshown[128];
            snprintf(eshown, sizeof(eshown), "%s", etext ? etext : "(none)");
            free(etext); /* (ended is a name of END_NAME) */
            int nfin;

            /* the record */
            {
                char want[256];
                snprintf(want, sizeof(want), "\t%s\t%s\t%s", j->type, j->opts,
                         j->payload);
                if (rec == NULL || rec[0] != (cancelled_m ? 'x' : 'p') ||
                    strchr(rec, '\t') == NULL ||
                    strcmp(strchr(rec, '\t'), want) != 0)
                    violation("record", "job %s (%s): record %s, model "
                              "%c<created>%s", j->id, JSTATE[j->st],
                              rec ? rec : "(none)", cancelled_m ? 'x' : 'p',
                              want);
            }
            if (count_in(jl, j->id) != 1)
                violation("record", "job %s is %lld times in <base>:jl", j->id,
                          count_in(jl, j->id));
            /* members a cancel ended and left in <base>:pl: apart (those
             * of a job cancelled; after a retry, its task refs that
             * <base>:jr:<id> no longer lists) */
            if (cancelled_m) {
                bool cur_live = false;
                for (int x = 0; x < j->tasks && j->tasks > 1 && !cur_live; x++)
                    cur_live = j->t[x].where == W_CUR_P && j->prio == 0;
                if (pl_cur[i] > (int)cur_live) {
                    stale += pl_cur[i] - (int)cur_live;
                    cur[i] -= pl_cur[i] - (int)cur_live;
                }
            }
            for (int x = 0; x < j->tasks; x++) {
                struct rtask *rt = &j->r[x];
                char ref[100];
                int live = j->t[x].where == W_REF_P && j->prio == 0;
                if (rt->in_pl <= live)
                    continue;
                task_ref(j, x, ref, sizeof(ref));
                /* a task ref in <base>:pl more times than it waits: the
                 * copies a cancel left (a claim hands the task out once,
                 * at the first copy <base>:jr:<id> still lists, and drops
                 * the others), also when the task waits again on its own
                 * after its job's retry */
                if (cancelled_m || j->tasks > 1) {
                    stale += rt->in_pl - live;
                    rt->in_p = (unsigned char)(rt->in_p - (rt->in_pl - live));
                }
            }
            for (int x = 0; x < j->tasks; x++) {
                check_task(j, x, cur[i], next, st, j->tasks == 1 ? ended : NULL,
                           &behind);
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
            if (j->tasks > 1 &&
                (((cur[i] & 15) > 0) != m_cur_p || ((cur[i] >> 4) > 0) != m_cur_d))
                violation("cursor", "job %s: cursor in pending %d, delayed %d; "
                          "model: tasks behind a cursor in pending %d, in "
                          "delayed %d", j->id, cur[i] & 15, cur[i] >> 4,
                          m_cur_p, m_cur_d);
            if (j->tasks > 1 && cur[i] != 0) {
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
            /* job fields: a fan-out job's hash */
            if (num(f[i].version, 0) != j->version)
                violation("job", "job %s: version %s, model %d", j->id,
                          f[i].version ? f[i].version : "(none)", j->version);
            if (left != j->left)
                violation("job", "job %s: %lld tasks not ended, model %d",
                          j->id, left, j->left);
            if (j->tasks > 1) {
                if (strcmp(st, JSTATE[j->st]) != 0)
                    violation("job", "job %s: state %s, model %s", j->id, st,
                              JSTATE[j->st]);
                if (num(f[i].left, j->tasks) != j->left)
                    violation("job", "job %s: left %s, model %d", j->id,
                              f[i].left ? f[i].left : "(none)", j->left);
                if (num(f[i].failed, 0) != j->failed ||
                    num(f[i].cancelled, 0) != j->cancelled)
                    violation("job", "job %s: failed %s cancelled %s, model "
                              "%d %d", j->id,
                              f[i].failed ? f[i].failed : "(none)",
                              f[i].cancelled ? f[i].cancelled : "(none)",
                              j->failed, j->cancelled);
                if (num(f[i].tasks, 1) != j->tasks)
                    violation("job", "job %s: tasks %s, model %d", j->id,
                              f[i].tasks ? f[i].tasks : "(none)", j->tasks);
                if (ended_m) {
                    if (num(f[i].ok, -1) != j->tasks - j->failed - j->cancelled)
                        violation("job", "job %s ended: ok %s, model %d", j->id,
                                  f[i].ok ? f[i].ok : "(none)",
                                  j->tasks - j->failed - j->cancelled);
                    if (f[i].finished == NULL)
                        violation("job", "job %s ended without finished_ms",
                                  j->id);
                } else if (f[i].ok != NULL || f[i].finished != NULL) {
                    violation("job", "job %s has not ended but has ok %s "
                              "finished_ms %s", j->id, f[i].ok ? f[i].ok : "-",
                              f[i].finished ? f[i].finished : "-");
                }
            }
            /* its ends: a line of <base>:fin per run that ended, the
             * hand-off to the coordinator, the dead set, <base>:cx */
            nfin = fin_count(fin, j->id, &fin_ms);
            if (nfin != j->nends)
                violation("end", "job %s (%s) is in %d lines of <base>:fin, "
                          "model: it ended %d times", j->id, JSTATE[j->st],
                          nfin, j->nends);
            else if (ended_m && ended != NULL && fin_ms != end_ms)
                violation("end", "job %s: end %s, last line of <base>:fin at "
                          "%lld", j->id, eshown, fin_ms);
            {
                bool agg = ended_m &&
                           (j->tasks > 1 ||
                            (j->st == J_COMPLETED && j->t[0].result != NULL &&
                             strcmp(j->t[0].result, "{}") != 0));
                if (count_in(done, j->id) != (agg ? 1 : 0) ||
                    count_in(dead, j->id) != (j->st == J_FAILED ? 1 : 0))
                    violation("job", "job %s (%s): in done %lld, dead %lld "
                              "times", j->id, JSTATE[j->st],
                              count_in(done, j->id), count_in(dead, j->id));
            }
            if (j->st == J_CANCELLING && count_in(cx, j->id) != 1)
                violation("cx", "job %s is cancelled with tasks to stop but "
                          "not in <base>:cx", j->id);
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
    M.stale_pl = stale;
    /* the view of one job a step, each in turn */
    if (M.njobs > 0)
        check_view(&M.job[M.step % M.njobs]);

    /* counts and stats */
    if (hash_num(counts, "ok") != M.ok || hash_num(counts, "failed") != M.failed ||
        hash_num(counts, "cancelled") != M.cancelled)
        violation("counts", "<base>:counts ok %lld failed %lld cancelled %lld, "
                  "model %lld %lld %lld", hash_num(counts, "ok"),
                  hash_num(counts, "failed"), hash_num(counts, "cancelled"),
                  M.ok, M.failed, M.cancelled);
    /* (wait_p leaves out the members a cancel left in <base>:pl) */
    if (hash_num(counts, "wait_p") != wait_p - stale ||
        hash_num(counts, "wait_d") != wait_d)
        violation("counts", "<base>:counts wait_p %lld wait_d %lld, the cursors "
                  "stand for %lld %lld more tasks than members, less %d "
                  "members a cancel left in <base>:pl",
                  hash_num(counts, "wait_p"), hash_num(counts, "wait_d"),
                  wait_p, wait_d, stale);
    if (hash_num(counts, "junk") != 0)
        violation("junk", "<base>:counts junk %lld", hash_num(counts, "junk"));
    count_places(&mp, &md, &mr);
    if (stats_num(stats, "pending") != mp ||
        stats_num(stats, "delayed") != md || stats_num(stats, "running") != mr)
        violation("stats", "llmb_stats pending %lld delayed %lld running %lld, "
                  "model %lld (and %d members of cancelled jobs) %lld %lld",
                  stats_num(stats, "pending"), stats_num(stats, "delayed"),
                  stats_num(stats, "running"), mp, stale, md, mr);

    freeReplyObject(pl);
    freeReplyObject(pz);
    freeReplyObject(d);
    freeReplyObject(run);
    freeReplyObject(lease);
    freeReplyObject(running);
    for (int w = 0; w < NWORKERS; w++)
        freeReplyObject(wl[w]);
    freeReplyObject(att);
    freeReplyObject(cx);
    freeReplyObject(je);
    freeReplyObject(fin);
    freeReplyObject(jd);
    freeReplyObject(jl);
    freeReplyObject(counts);
    freeReplyObject(stats);
    freeReplyObject(dead);
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
