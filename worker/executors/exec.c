/*
 * The exec executor: one program per task, run with execvp on the argv of
 * the handler's spec (never a shell, and the job cannot choose the
 * program). The task document goes to the program's stdin, its stdout is
 * the result (a JSON object), the last 4 KiB of its stderr are the error
 * text. The pipes are non-blocking and watched with ev_io.
 *
 * The program does not run as the worker's child: each task gets a
 * supervisor (exec_supervisor.c), the worker binary executed again in a
 * session of its own, which runs the program and, once it has exited or
 * is told to stop, kills and reaps every process the task started, even
 * those that left its process group or session. It passes the program's
 * wait status back on a pipe and exits last, so the task holds its
 * capacity slot until nothing of it runs.
 *
 * Outcome: exit 0 with a JSON object (or nothing) on stdout succeeds; exit
 * LLMB_EXEC_EXIT_FATAL fails for good; any other exit or a signal fails
 * with the status and the stderr tail. Stopping a task (cancel, or stdout
 * over the limit) sends SIGTERM to the supervisor, which gives the
 * program's processes the kill grace before SIGKILL; the worker kills a
 * supervisor that is still there after the grace and some slack.
 *
 * Orphans: the worker is a child subreaper too, and one ev_child watcher
 * for any pid reaps the supervisors. A supervisor that died before its
 * tree (SIGKILL from outside) leaves that tree to the worker, which kills
 * those processes as they reach it (orphans_kill).
 *
 * Hardening: the program's environment is built from an allow-list
 * (env_build), and resource limits from the worker's --exec-rlimit-*
 * options are set in the program's process before exec.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <llmb/list.h>
#include <llmb/log.h>
#include <llmb/util.h>

#include "executors.h"

/* What the worker executes as a task's supervisor: itself. */
#define EXEC_SELF "/proc/self/exe"
/* How much longer than the kill grace a stopping supervisor may take
 * before the worker kills it. */
#define SUPERVISOR_SLACK_MS 2000
/* At exit: the longest wait for the processes of dead supervisors. */
#define ORPHAN_WAIT_MS 2000

/* One handler's program and limits. */
struct exec_inst {
    char **argv;             /* NULL-terminated */
    size_t max_output;
    int64_t kill_grace_ms;
    struct llmb_strlist env; /* variables passed on, besides PATH etc. */
    long long rlimit_cpu_s, rlimit_as, rlimit_nofile; /* 0 = inherit */
};

/* One task's supervisor. Freed when it has been reaped and done was
 * called, or by fini. */
struct exec_run {
    struct exec_inst *inst;
    struct ev_loop *loop;
    llmb_exec_done_fn *done;
    void *token;
    char *job;               /* for the log */
    long task;
    pid_t pid;               /* the supervisor */
    int status_fd;           /* its status pipe, read when it is reaped */
    ev_io in_w, out_w, err_w;
    ev_timer kill_timer;     /* after a stop: grace and slack, then KILL */
    char *in;                /* task document still to write */
    size_t in_len, in_off;
    struct llmb_buf out;     /* stdout so far */
    struct llmb_buf err;     /* stderr tail (at most 2x the tail size) */
    bool stopping;           /* cancel(): SIGTERM sent */
    bool flooded;            /* stdout went over the limit */
    struct exec_run *prev, *next;
};

/*
 * Shared by every exec instance of the worker: the runs of all of them
 * and the one ev_child watcher, for any pid, that reaps their supervisors
 * and notices orphans. The watcher starts with the first task and stops
 * when the last instance is freed.
 */
static struct {
    struct exec_run *runs;   /* every supervisor not yet reaped */
    size_t instances;
    struct ev_loop *loop;    /* of child_w, once started */
    ev_child child_w;
} reaper;

static char **argv_split(const char *cmdline, size_t *argc)
{
    struct llmb_strlist l = {0};
    char **argv = NULL;

    llmb_strlist_split(&l, cmdline, ' ');
    argv = llmb_xcalloc(l.n + 1, sizeof(*argv));
    for (size_t i = 0; i < l.n; i++)
        argv[i] = l.v[i];
    *argc = l.n;
    free(l.v);
    return argv;
}

static void argv_free(char **argv)
{
    if (argv == NULL)
        return;
    for (char **p = argv; *p != NULL; p++)
        free(*p);
    free(argv);
}

/* True when prog names an executable file, directly (with a '/') or found
 * in PATH. */
static bool program_found(const char *prog)
{
    if (strchr(prog, '/') != NULL)
        return access(prog, X_OK) == 0;
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    struct llmb_strlist dirs = {0};
    bool found = false;
    llmb_strlist_split(&dirs, path, ':');
    for (size_t i = 0; i < dirs.n && !found; i++) {
        char *p = llmb_xasprintf("%s/%s", dirs.v[i], prog);
        struct stat st;
        found = stat(p, &st) == 0 && S_ISREG(st.st_mode) &&
                access(p, X_OK) == 0;
        free(p);
    }
    llmb_strlist_clear(&dirs);
    return found;
}

void *llmb_exec_instance_new(const char *cmdline, size_t max_output,
                             int64_t kill_grace_ms, char **errstr)
{
    size_t argc = 0;
    char **argv = argv_split(cmdline != NULL ? cmdline : "", &argc);

    if (argc == 0) {
        argv_free(argv);
        *errstr = llmb_xstrdup("exec: needs a program, as in "
                               "exec:/usr/bin/my-task --flag");
        return NULL;
    }
    if (!program_found(argv[0])) {
        *errstr = llmb_xasprintf("exec: program \"%s\" is not an executable "
                                 "file%s", argv[0],
                                 strchr(argv[0], '/') ? "" : " in PATH");
        argv_free(argv);
        return NULL;
    }
    /* Each task's supervisor is this binary run again; the worker adopts
     * what a supervisor that died leaves (orphans_kill). */
    if (access(EXEC_SELF, X_OK) != 0) {
        *errstr = llmb_xasprintf("exec: cannot execute %s (%s): the task "
                                 "supervisor needs /proc", EXEC_SELF,
                                 strerror(errno));
        argv_free(argv);
        return NULL;
    }
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
        *errstr = llmb_xasprintf("exec: cannot become a child subreaper: %s",
                                 strerror(errno));
        argv_free(argv);
        return NULL;
    }
    struct exec_inst *e = llmb_xcalloc(1, sizeof(*e));
    e->argv = argv;
    e->max_output = max_output;
    e->kill_grace_ms = kill_grace_ms;
    reaper.instances++;
    return e;
}

void llmb_exec_instance_harden(void *inst,
                               const struct llmb_exec_hardening *h)
{
    struct exec_inst *e = inst;

    llmb_strlist_clear(&e->env);
    for (size_t i = 0; h->env != NULL && i < h->env->n; i++)
        llmb_strlist_push(&e->env, h->env->v[i]);
    e->rlimit_cpu_s = h->rlimit_cpu_s;
    e->rlimit_as = h->rlimit_as;
    e->rlimit_nofile = h->rlimit_nofile;
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void close_watched(struct exec_run *r, ev_io *w)
{
    if (w->fd < 0)
        return;
    ev_io_stop(r->loop, w);
    close(w->fd);
    ev_io_set(w, -1, w->events);
}

/* Keeps only the last LLMB_EXEC_STDERR_TAIL bytes once err grows past
 * twice that. */
static void err_keep_tail(struct llmb_buf *b, bool final)
{
    size_t keep = LLMB_EXEC_STDERR_TAIL;

    if (b->len <= (final ? keep : 2 * keep))
        return;
    memmove(b->data, b->data + b->len - keep, keep);
    b->len = keep;
    b->data[keep] = '\0';
}

static void run_stop(struct exec_run *r);

/* Reads what is available on w into r's buffers. Returns false at EOF or
 * on an error (the fd is then closed). */
static bool pipe_read(struct exec_run *r, ev_io *w)
{
    char buf[65536];

    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof(buf));
        if (n > 0) {
            if (w == &r->out_w) {
                if (r->out.len + (size_t)n > r->inst->max_output) {
                    /* Too much: stop reading and stop the child. */
                    r->flooded = true;
                    close_watched(r, w);
                    run_stop(r);
                    return false;
                }
                llmb_buf_append(&r->out, buf, (size_t)n);
            } else {
                llmb_buf_append(&r->err, buf, (size_t)n);
                err_keep_tail(&r->err, false);
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        close_watched(r, w);
        return false;
    }
}

static void out_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    pipe_read(w->data, w);
}

static void in_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct exec_run *r = w->data;

    (void)loop;
    (void)revents;
    while (r->in_off < r->in_len) {
        ssize_t n = write(w->fd, r->in + r->in_off, r->in_len - r->in_off);
        if (n > 0) {
            r->in_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        break; /* EPIPE: the child does not read its stdin; fine */
    }
    close_watched(r, w);
}

/* "SIGSEGV" for 11; "signal" when unknown. */
static const char *sig_name(int sig, char *buf, size_t len)
{
    const char *abbrev = sigabbrev_np(sig);
    if (abbrev == NULL)
        return "signal";
    snprintf(buf, len, "SIG%s", abbrev);
    return buf;
}

/* Removes trailing white space from b. */
static void buf_rtrim(struct llmb_buf *b)
{
    while (b->len > 0 && strchr(" \t\r\n", b->data[b->len - 1]) != NULL)
        b->data[--b->len] = '\0';
}

/* Judges the stdout of a program that exited 0. Appends to msg the
 * result, the JSON object without the white space around it ("{}" when
 * out is only white space), and returns LLMB_EXEC_OK; or appends the error
 * text, which quotes at most the first 200 bytes of out, and returns
 * LLMB_EXEC_ERROR. out need not end with a NUL; the caller keeps it. */
enum llmb_exec_status llmb_exec_output_parse(const char *out, size_t len,
                                             struct llmb_buf *msg)
{
    const char *ws = " \t\r\n";
    size_t skip = 0;
    json_error_t jerr;
    json_t *j = NULL;
    enum llmb_exec_status status = LLMB_EXEC_ERROR;

    while (len > 0 && memchr(ws, out[len - 1], 4) != NULL)
        len--;
    while (skip < len && memchr(ws, out[skip], 4) != NULL)
        skip++;
    if (skip == len) {
        llmb_buf_append(msg, "{}", 2);
        return LLMB_EXEC_OK;
    }
    out += skip;
    len -= skip;
    int quoted = len < 200 ? (int)len : 200;
    j = json_loadb(out, len, JSON_DECODE_ANY, &jerr);
    if (json_is_object(j)) {
        llmb_buf_append(msg, out, len);
        status = LLMB_EXEC_OK;
    } else if (j != NULL) {
        llmb_buf_appendf(msg, "stdout must be a JSON object, got %s: %.*s",
                         json_is_array(j) ? "an array" : "a scalar", quoted,
                         out);
    } else {
        llmb_buf_appendf(msg, "stdout is not JSON (%s at byte %d): %.*s",
                         jerr.text, jerr.position, quoted, out);
    }
    json_decref(j);
    return status;
}

static void run_free(struct exec_run *r)
{
    close_watched(r, &r->in_w);
    close_watched(r, &r->out_w);
    close_watched(r, &r->err_w);
    ev_timer_stop(r->loop, &r->kill_timer);
    if (r->status_fd >= 0)
        close(r->status_fd);
    LLMB_LIST_REMOVE(reaper.runs, r);
    free(r->job);
    free(r->in);
    llmb_buf_fini(&r->out);
    llmb_buf_fini(&r->err);
    free(r);
}

static struct exec_run *run_find(pid_t pid)
{
    for (struct exec_run *r = reaper.runs; r != NULL; r = r->next)
        if (r->pid == pid)
            return r;
    return NULL;
}

/*
 * Kills the worker's children that are no run's supervisor and live
 * outside the worker's session: the processes of a task whose supervisor
 * died, which came to the worker because it is a subreaper. No process
 * of a task can be in the worker's session (its supervisor starts a
 * session of its own, and a process leaves a session only for a new
 * one), so processes a plugin started are spared. SIGKILL, because the
 * SIGTERM and the grace were the supervisor's to give. Their own
 * children come to the worker as they die and go at the next call, made
 * for each child that ends. Returns how many were killed, listed in l.
 */
static size_t orphans_kill(struct llmb_proc_list *l)
{
    pid_t self = getpid(), sid = getsid(0);
    size_t k = 0;

    llmb_proc_list_all(l);
    for (size_t i = 0; i < l->n; i++) {
        const struct llmb_proc *p = &l->v[i];
        if (p->ppid != self || p->sid == sid || p->state == 'Z' ||
            run_find(p->pid) != NULL)
            continue;
        if (llmb_proc_signal(p, SIGKILL) == 0)
            l->v[k++] = *p;
    }
    l->n = k;
    return k;
}

static void orphans_sweep(void)
{
    struct llmb_proc_list l = {0};
    size_t n = orphans_kill(&l);

    if (n > 0)
        llmb_warn("exec: SIGKILL to %zu processes left by a task whose "
                  "supervisor died (pid=%ld)", n, (long)l.v[0].pid);
    llmb_proc_list_fini(&l);
}

/* The worker is exiting: kills orphans, and what they leave in turn, and
 * reaps them (the loop no longer does), for at most ORPHAN_WAIT_MS. */
static void orphans_clear(void)
{
    struct llmb_proc_list l = {0};
    int64_t deadline = llmb_mono_ms() + ORPHAN_WAIT_MS;
    const struct timespec tick = {0, 5000000L};

    while (orphans_kill(&l) > 0 && llmb_mono_ms() < deadline) {
        for (size_t i = 0; i < l.n && llmb_mono_ms() < deadline;) {
            pid_t got = waitpid(l.v[i].pid, NULL, WNOHANG);
            if (got == 0)
                nanosleep(&tick, NULL);
            else
                i++;
        }
    }
    llmb_proc_list_fini(&l);
}

/* Reads "<wait status> <left>" from the supervisor's status pipe; false
 * when it wrote nothing (it died before its program's tree). */
static bool status_read(struct exec_run *r, int *st, unsigned *left)
{
    char buf[64];
    ssize_t n = 0;

    do
        n = read(r->status_fd, buf, sizeof(buf) - 1);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return sscanf(buf, "%d %u", st, left) == 2;
}

/* The supervisor of r was reaped with wait status sup_st: nothing of the
 * task runs any more. Collects what is left in the pipes, judges the
 * program's outcome, reports it and frees the run. */
static void run_reaped(struct exec_run *r, int sup_st)
{
    int st = 0;
    unsigned left = 0;
    bool have = status_read(r, &st, &left);
    struct llmb_buf msg;
    enum llmb_exec_status status = LLMB_EXEC_ERROR;
    char sb[32];

    if (r->out_w.fd >= 0)
        pipe_read(r, &r->out_w);
    if (r->err_w.fd >= 0)
        pipe_read(r, &r->err_w);
    err_keep_tail(&r->err, true);
    buf_rtrim(&r->err);
    llmb_buf_init(&msg);
    if (have && left > 0 && !r->stopping && !r->flooded)
        llmb_info("exec: killed %u processes the program left running "
                  "job=%s task=%ld", left, r->job, r->task);

    if (r->flooded) {
        llmb_buf_appendf(&msg, "stdout exceeded %zu bytes",
                         r->inst->max_output);
    } else if (r->stopping) {
        llmb_buf_appendf(&msg, "stopped");
    } else if (!have && WIFSIGNALED(sup_st)) {
        int sig = WTERMSIG(sup_st);
        llmb_buf_appendf(&msg, "exec: the task supervisor was killed by "
                         "signal %d (%s)", sig, sig_name(sig, sb, sizeof(sb)));
    } else if (!have) {
        llmb_buf_appendf(&msg, "exec: the task supervisor ended with wait "
                         "status %d", sup_st);
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        status = llmb_exec_output_parse(r->out.data, r->out.len, &msg);
    } else if (WIFEXITED(st)) {
        int code = WEXITSTATUS(st);
        if (code == LLMB_EXEC_EXIT_FATAL)
            status = LLMB_EXEC_FATAL;
        llmb_buf_appendf(&msg, "exited with status %d%s", code,
                         code == LLMB_EXEC_EXIT_FATAL ? " (do not retry)" : "");
    } else if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        llmb_buf_appendf(&msg, "killed by signal %d (%s)", sig,
                         sig_name(sig, sb, sizeof(sb)));
    } else {
        llmb_buf_appendf(&msg, "ended with wait status %d", st);
    }
    if (status != LLMB_EXEC_OK && r->err.len > 0 && !r->stopping)
        llmb_buf_appendf(&msg, ": %s", r->err.data);

    llmb_exec_done_fn *done = r->done;
    void *token = r->token;
    run_free(r);
    if (!have)
        orphans_sweep(); /* the tree it left has come to the worker */
    done(token, status, msg.data, msg.len);
    llmb_buf_fini(&msg);
}

/* Any child of the worker ended (and was reaped by libev): a supervisor,
 * or an orphan, whose end may bring more orphans. */
static void any_child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
    struct exec_run *r = run_find(w->rpid);

    (void)loop;
    (void)revents;
    if (r != NULL)
        run_reaped(r, w->rstatus);
    else
        orphans_sweep();
}

static void kill_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct exec_run *r = w->data;

    (void)loop;
    (void)revents;
    llmb_warn("exec: the task supervisor did not stop within the kill "
              "grace; killing it pid=%ld job=%s task=%ld", (long)r->pid,
              r->job, r->task);
    kill(r->pid, SIGKILL);
}

/* SIGTERM to the supervisor, which stops the task's processes within the
 * kill grace; SIGKILL to it if it is still there some time after. */
static void run_stop(struct exec_run *r)
{
    if (ev_is_active(&r->kill_timer))
        return;
    kill(r->pid, SIGTERM);
    ev_timer_set(&r->kill_timer,
                 (ev_tstamp)(r->inst->kill_grace_ms + SUPERVISOR_SLACK_MS) /
                 1000.0, 0.0);
    ev_timer_start(r->loop, &r->kill_timer);
}

/* The child's environment, built from nothing: PATH (the worker's, or a
 * default), HOME and LANG when the worker has them, the variables named by
 * --exec-env that the worker has, plus the task's LLMB_JOB_ID, LLMB_TASK,
 * LLMB_ATTEMPT, LLMB_TASKS, LLMB_QUEUE and LLMB_TYPE. Nothing else of the
 * worker's environment (Redis password, API keys) reaches the program. */
static char **env_build(const struct exec_inst *e,
                        const struct llmb_exec_task *t)
{
    static const char *const always[] = {"PATH", "HOME", "LANG"};
    size_t k = 0;
    char **env = llmb_xcalloc(3 + e->env.n + 7, sizeof(*env));
    const char *v;

    for (size_t i = 0; i < 3 + e->env.n; i++) {
        const char *name = i < 3 ? always[i] : e->env.v[i - 3];
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(name, j < 3 ? always[j] : e->env.v[j - 3]) == 0;
        v = getenv(name);
        if (v == NULL && i == 0)
            v = "/usr/local/bin:/usr/bin:/bin";
        if (!seen && v != NULL)
            env[k++] = llmb_xasprintf("%s=%s", name, v);
    }
    env[k++] = llmb_xasprintf("LLMB_JOB_ID=%s", t->job);
    env[k++] = llmb_xasprintf("LLMB_TASK=%ld", t->task);
    env[k++] = llmb_xasprintf("LLMB_ATTEMPT=%ld", t->attempt);
    env[k++] = llmb_xasprintf("LLMB_TASKS=%ld", t->tasks);
    env[k++] = llmb_xasprintf("LLMB_QUEUE=%s", t->queue);
    env[k++] = llmb_xasprintf("LLMB_TYPE=%s", t->type);
    env[k] = NULL;
    return env;
}

/* The supervisor's argv (exec_supervisor.c has the layout). */
static char **supervisor_argv(const struct exec_inst *e)
{
    size_t n = 0, k = 0;
    char **argv = NULL;

    while (e->argv[n] != NULL)
        n++;
    argv = llmb_xcalloc(7 + n + 1, sizeof(*argv));
    argv[k++] = llmb_xstrdup("llmb-worker");
    argv[k++] = llmb_xstrdup(LLMB_EXEC_SUPERVISOR_ARG);
    argv[k++] = llmb_xasprintf("%ld", (long)getpid());
    argv[k++] = llmb_xasprintf("%lld", (long long)e->kill_grace_ms);
    argv[k++] = llmb_xasprintf("%lld", e->rlimit_cpu_s);
    argv[k++] = llmb_xasprintf("%lld", e->rlimit_as);
    argv[k++] = llmb_xasprintf("%lld", e->rlimit_nofile);
    for (size_t i = 0; i < n; i++)
        argv[k++] = llmb_xstrdup(e->argv[i]);
    argv[k] = NULL;
    return argv;
}

/*
 * In the child after fork, a copy of a worker that may have threads: only
 * async-signal-safe calls from here on. A session of its own (so no
 * process of the task is ever in the worker's: orphans_kill), default
 * signal dispositions with the supervisor's signals blocked (a SIGTERM
 * sent right away waits for it), fds[0..3] as 0..3 and nothing else, then
 * the supervisor. Never returns.
 */
static void LLMB_NORETURN child_exec(const int fds[4], char **argv,
                                     char **env)
{
    static const char fail[] = "exec: cannot execute the task supervisor "
                               EXEC_SELF "\n";
    sigset_t mask;
    int high[4];

    setsid();
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_SETMASK, &mask, NULL);
    /* Above 3 first, so that no dup2 below overwrites a source. */
    for (int i = 0; i < 4; i++)
        if ((high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 4)) < 0)
            _exit(127);
    for (int i = 0; i < 4; i++)
        if (dup2(high[i], i) < 0)
            _exit(127);
    close_range(4, UINT_MAX, 0);
    execve(EXEC_SELF, argv, env);
    if (write(2, fail, sizeof(fail) - 1) < 0)
        _exit(127);
    _exit(127);
}

static void pipe_close(int p[2])
{
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
}

static void *exec_start(void *instance, const struct llmb_exec_task *t,
                        struct ev_loop *loop, llmb_exec_done_fn *done,
                        void *token)
{
    struct exec_inst *e = instance;
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    int pst[2] = {-1, -1};
    char **env = NULL, **argv = NULL;
    pid_t pid;

    if (pipe2(pin, O_CLOEXEC) != 0 || pipe2(pout, O_CLOEXEC) != 0 ||
        pipe2(perr, O_CLOEXEC) != 0 || pipe2(pst, O_CLOEXEC) != 0) {
        char *msg = llmb_xasprintf("exec: cannot make pipes: %s",
                                   strerror(errno));
        pipe_close(pin);
        pipe_close(pout);
        pipe_close(perr);
        pipe_close(pst);
        done(token, LLMB_EXEC_ERROR, msg, strlen(msg));
        free(msg);
        return NULL;
    }
    if (reaper.loop == NULL) {
        reaper.loop = loop;
        ev_child_init(&reaper.child_w, any_child_cb, 0, 0);
        ev_child_start(loop, &reaper.child_w);
    }
    env = env_build(e, t);
    argv = supervisor_argv(e);
    pid = fork();
    if (pid == 0) {
        const int fds[4] = {pin[0], pout[1], perr[1], pst[1]};
        child_exec(fds, argv, env);
    }
    argv_free(env);
    argv_free(argv);
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    close(pst[1]);
    if (pid < 0) {
        char *msg = llmb_xasprintf("exec: cannot fork: %s", strerror(errno));
        close(pin[1]);
        close(pout[0]);
        close(perr[0]);
        close(pst[0]);
        done(token, LLMB_EXEC_ERROR, msg, strlen(msg));
        free(msg);
        return NULL;
    }

    struct exec_run *r = llmb_xcalloc(1, sizeof(*r));
    r->inst = e;
    r->loop = loop;
    r->done = done;
    r->token = token;
    r->job = llmb_xstrdup(t->job);
    r->task = t->task;
    r->pid = pid;
    r->status_fd = pst[0];
    r->in_len = t->json_len;
    r->in = llmb_xmalloc(t->json_len + 1);
    memcpy(r->in, t->json, t->json_len);
    llmb_buf_init(&r->out);
    llmb_buf_init(&r->err);
    set_nonblock(pin[1]);
    set_nonblock(pout[0]);
    set_nonblock(perr[0]);
    set_nonblock(pst[0]);
    ev_io_init(&r->in_w, in_cb, pin[1], EV_WRITE);
    ev_io_init(&r->out_w, out_cb, pout[0], EV_READ);
    ev_io_init(&r->err_w, out_cb, perr[0], EV_READ);
    r->in_w.data = r->out_w.data = r->err_w.data = r;
    ev_io_start(loop, &r->in_w);
    ev_io_start(loop, &r->out_w);
    ev_io_start(loop, &r->err_w);
    ev_timer_init(&r->kill_timer, kill_timer_cb, 0.0, 0.0);
    r->kill_timer.data = r;
    LLMB_LIST_INSERT(reaper.runs, r);
    llmb_debug("exec: started supervisor pid=%ld job=%s task=%ld", (long)pid,
               t->job, t->task);
    return r;
}

static void exec_cancel(void *handle)
{
    struct exec_run *r = handle;

    r->stopping = true;
    run_stop(r);
}

/* True while a run of e is not yet reaped: asks each supervisor to stop
 * (again, which is harmless), reaps those that have, and once the
 * deadline passed kills and reaps the rest. */
static bool fini_step(const struct exec_inst *e, int64_t deadline)
{
    struct exec_run *r = reaper.runs, *next = NULL;
    bool late = llmb_mono_ms() >= deadline, left = false;

    for (; r != NULL; r = next) {
        next = r->next;
        if (r->inst != e)
            continue;
        if (late) {
            llmb_warn("exec: the task supervisor did not stop; killing it "
                      "pid=%ld job=%s task=%ld", (long)r->pid, r->job,
                      r->task);
            kill(r->pid, SIGKILL);
            waitpid(r->pid, NULL, 0);
            run_free(r);
            continue;
        }
        pid_t got = waitpid(r->pid, NULL, WNOHANG);
        if (got == r->pid || (got < 0 && errno == ECHILD)) {
            run_free(r);
            continue;
        }
        if (!r->stopping) {
            r->stopping = true;
            kill(r->pid, SIGTERM);
        }
        left = true;
    }
    return left;
}

/* The worker is exiting: stops every task of e still running the way a
 * cancel does and waits for their supervisors (the kill grace and some
 * slack, then SIGKILL), then frees the instance. done is not called for
 * them. The last instance freed also stops the shared watcher and kills
 * what dead supervisors left to the worker. */
static void exec_fini(void *instance)
{
    struct exec_inst *e = instance;
    const struct timespec tick = {0, 5000000L};

    if (e == NULL)
        return;
    int64_t deadline = llmb_mono_ms() + e->kill_grace_ms + SUPERVISOR_SLACK_MS;
    while (fini_step(e, deadline))
        nanosleep(&tick, NULL);
    argv_free(e->argv);
    llmb_strlist_clear(&e->env);
    free(e);
    if (--reaper.instances > 0)
        return;
    if (reaper.loop != NULL)
        ev_child_stop(reaper.loop, &reaper.child_w);
    reaper.loop = NULL;
    orphans_clear();
}

/* No init(): the worker makes each instance with its limits through
 * llmb_exec_instance_new() (handler.c). */
const struct llmb_executor llmb_executor_exec = {
    LLMB_EXECUTOR_ABI, "exec", NULL, exec_start, exec_cancel, exec_fini,
};
