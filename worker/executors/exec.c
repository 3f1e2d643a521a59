/*
 * The exec executor: one child process per task, started with fork and
 * execvp on the argv of the handler's spec (never a shell, and the job
 * cannot choose the program). The task document goes to the child's
 * stdin, its stdout is the result (a JSON object), the last 4 KiB of its
 * stderr are the error text. The pipes are non-blocking and watched with
 * ev_io; the child is reaped with ev_child on the default loop.
 *
 * Outcome: exit 0 with a JSON object (or nothing) on stdout succeeds; exit
 * LLMB_EXEC_EXIT_FATAL fails for good; any other exit or a signal fails
 * with the status and the stderr tail. Stopping a task (cancel, or stdout
 * over the limit) sends SIGTERM to the child's process group and SIGKILL
 * after the kill grace.
 *
 * Hardening: the child's environment is built from an allow-list
 * (env_build), and resource limits from the worker's --exec-rlimit-*
 * options are set in the child before exec.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include <llmb/log.h>
#include <llmb/util.h>

#include "executors.h"

struct exec_run;

/* One handler's program and limits, and the children it has running. */
struct exec_inst {
    char **argv;             /* NULL-terminated */
    size_t max_output;
    int64_t kill_grace_ms;
    struct llmb_strlist env; /* variables passed on, besides PATH etc. */
    long long rlimit_cpu_s, rlimit_as, rlimit_nofile; /* 0 = inherit */
    struct exec_run *runs;   /* live children, for fini */
};

/* One child. Freed when it has been reaped and done was called. */
struct exec_run {
    struct exec_inst *inst;
    struct ev_loop *loop;
    llmb_exec_done_fn *done;
    void *token;
    pid_t pid;
    ev_child child;
    ev_io in_w, out_w, err_w;
    ev_timer kill_timer;
    char *in;                /* task document still to write */
    size_t in_len, in_off;
    struct llmb_buf out;     /* stdout so far */
    struct llmb_buf err;     /* stderr tail (at most 2x the tail size) */
    bool stopping;           /* cancel(): SIGTERM sent */
    bool flooded;            /* stdout went over the limit */
    struct exec_run *prev, *next;
};

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
    struct exec_inst *e = llmb_xcalloc(1, sizeof(*e));
    e->argv = argv;
    e->max_output = max_output;
    e->kill_grace_ms = kill_grace_ms;
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

static void *exec_init(const char *config, char **errstr)
{
    return llmb_exec_instance_new(config, 1048576, 2000, errstr);
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
    struct exec_inst *e = r->inst;

    close_watched(r, &r->in_w);
    close_watched(r, &r->out_w);
    close_watched(r, &r->err_w);
    ev_timer_stop(r->loop, &r->kill_timer);
    ev_child_stop(r->loop, &r->child);
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        e->runs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    free(r->in);
    llmb_buf_fini(&r->out);
    llmb_buf_fini(&r->err);
    free(r);
}

/* The child was reaped: collect what is left in the pipes, judge the
 * outcome, report it and free the run. */
static void child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
    struct exec_run *r = w->data;
    int st = w->rstatus;
    struct llmb_buf msg;
    enum llmb_exec_status status = LLMB_EXEC_ERROR;
    char sb[32];

    (void)loop;
    (void)revents;
    ev_child_stop(r->loop, w);
    if (r->stopping || r->flooded)
        kill(-r->pid, SIGKILL); /* whatever it left behind in its group */
    if (r->out_w.fd >= 0)
        pipe_read(r, &r->out_w);
    if (r->err_w.fd >= 0)
        pipe_read(r, &r->err_w);
    err_keep_tail(&r->err, true);
    buf_rtrim(&r->err);
    llmb_buf_init(&msg);

    if (r->flooded) {
        llmb_buf_appendf(&msg, "stdout exceeded %zu bytes",
                         r->inst->max_output);
    } else if (r->stopping) {
        llmb_buf_appendf(&msg, "stopped");
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
    done(token, status, msg.data, msg.len);
    llmb_buf_fini(&msg);
}

static void kill_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct exec_run *r = w->data;

    (void)loop;
    (void)revents;
    llmb_debug("exec: SIGKILL after the kill grace pid=%ld", (long)r->pid);
    kill(-r->pid, SIGKILL);
    kill(r->pid, SIGKILL);
}

/* SIGTERM to the child's group, SIGKILL after the grace. */
static void run_stop(struct exec_run *r)
{
    if (ev_is_active(&r->kill_timer))
        return;
    kill(-r->pid, SIGTERM);
    kill(r->pid, SIGTERM);
    ev_timer_set(&r->kill_timer, (ev_tstamp)r->inst->kill_grace_ms / 1000.0,
                 0.0);
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

/* In the child after fork: wire the pipes, reset signals, exec. Never
 * returns. */
/* In the child: sets resource limit res to soft (hard one more for
 * RLIMIT_CPU, so that SIGXCPU comes first), or exits 127 saying why. */
static void child_rlimit(int res, const char *name, long long soft)
{
    struct rlimit rl;

    if (soft <= 0)
        return;
    rl.rlim_cur = (rlim_t)soft;
    rl.rlim_max = (rlim_t)soft + (res == RLIMIT_CPU ? 1 : 0);
    if (setrlimit(res, &rl) != 0) {
        dprintf(2, "cannot set %s to %lld: %s\n", name, soft,
                strerror(errno));
        _exit(127);
    }
}

static void LLMB_NORETURN child_exec(struct exec_inst *e, int in, int out,
                                     int err, char **env)
{
    sigset_t none;

    setpgid(0, 0);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        _exit(127);
    close_range(3, UINT_MAX, 0);
    child_rlimit(RLIMIT_CPU, "RLIMIT_CPU", e->rlimit_cpu_s);
    child_rlimit(RLIMIT_AS, "RLIMIT_AS", e->rlimit_as);
    child_rlimit(RLIMIT_NOFILE, "RLIMIT_NOFILE", e->rlimit_nofile);
    execvpe(e->argv[0], e->argv, env);
    dprintf(2, "cannot execute %s: %s\n", e->argv[0], strerror(errno));
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
    char **env = NULL;
    pid_t pid;

    if (pipe2(pin, O_CLOEXEC) != 0 || pipe2(pout, O_CLOEXEC) != 0 ||
        pipe2(perr, O_CLOEXEC) != 0) {
        char *msg = llmb_xasprintf("exec: cannot make pipes: %s",
                                   strerror(errno));
        pipe_close(pin);
        pipe_close(pout);
        pipe_close(perr);
        done(token, LLMB_EXEC_ERROR, msg, strlen(msg));
        free(msg);
        return NULL;
    }
    env = env_build(e, t);
    pid = fork();
    if (pid == 0)
        child_exec(e, pin[0], pout[1], perr[1], env);
    argv_free(env);
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    if (pid < 0) {
        char *msg = llmb_xasprintf("exec: cannot fork: %s", strerror(errno));
        close(pin[1]);
        close(pout[0]);
        close(perr[0]);
        done(token, LLMB_EXEC_ERROR, msg, strlen(msg));
        free(msg);
        return NULL;
    }
    setpgid(pid, pid); /* also here, so that a kill right away reaches it */

    struct exec_run *r = llmb_xcalloc(1, sizeof(*r));
    r->inst = e;
    r->loop = loop;
    r->done = done;
    r->token = token;
    r->pid = pid;
    r->in_len = t->json_len;
    r->in = llmb_xmalloc(t->json_len + 1);
    memcpy(r->in, t->json, t->json_len);
    llmb_buf_init(&r->out);
    llmb_buf_init(&r->err);
    set_nonblock(pin[1]);
    set_nonblock(pout[0]);
    set_nonblock(perr[0]);
    ev_io_init(&r->in_w, in_cb, pin[1], EV_WRITE);
    ev_io_init(&r->out_w, out_cb, pout[0], EV_READ);
    ev_io_init(&r->err_w, out_cb, perr[0], EV_READ);
    r->in_w.data = r->out_w.data = r->err_w.data = r;
    ev_io_start(loop, &r->in_w);
    ev_io_start(loop, &r->out_w);
    ev_io_start(loop, &r->err_w);
    ev_child_init(&r->child, child_cb, pid, 0);
    r->child.data = r;
    ev_child_start(loop, &r->child);
    ev_timer_init(&r->kill_timer, kill_timer_cb, 0.0, 0.0);
    r->kill_timer.data = r;
    r->next = e->runs;
    if (e->runs != NULL)
        e->runs->prev = r;
    e->runs = r;
    llmb_debug("exec: started pid=%ld job=%s task=%ld", (long)pid, t->job,
               t->task);
    return r;
}

static void exec_cancel(void *handle)
{
    struct exec_run *r = handle;

    r->stopping = true;
    run_stop(r);
}

/* Kills and reaps every child still running (the worker is exiting), then
 * frees the instance. done is not called for them. */
static void exec_fini(void *instance)
{
    struct exec_inst *e = instance;

    if (e == NULL)
        return;
    while (e->runs != NULL) {
        struct exec_run *r = e->runs;
        kill(-r->pid, SIGKILL);
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        run_free(r);
    }
    argv_free(e->argv);
    llmb_strlist_clear(&e->env);
    free(e);
}

const struct llmb_executor llmb_executor_exec = {
    LLMB_EXECUTOR_ABI, "exec", exec_init, exec_start, exec_cancel, exec_fini,
};
