/*
 * The exec task supervisor: the process between the worker and an exec
 * program, one per task, so that nothing a task starts outlives it.
 *
 * exec.c forks and executes the worker binary again (/proc/self/exe) with
 * LLMB_EXEC_SUPERVISOR_ARG as argv[1], in a session of its own; main()
 * hands that over to llmb_exec_supervise(). Executing instead of running
 * this code in the forked copy of the worker matters: the worker may have
 * threads (libcurl's resolver, a plugin's), and after fork such a process
 * may only make async-signal-safe calls, while the supervisor needs
 * malloc and stdio to read /proc.
 *
 * The supervisor is a child subreaper (PR_SET_CHILD_SUBREAPER): whatever
 * the program starts and abandons (a background job, a daemon that forks
 * twice or calls setsid) is reparented to it, not to init, so every
 * process of the task stays its descendant, found by walking /proc
 * (exec_proc.c). It runs the program with the task's resource limits in a
 * process group of its own, and waits. When the program has exited, or
 * when the supervisor is told to stop (SIGTERM, SIGINT or SIGHUP: the
 * worker's cancel, or the parent-death signal the kernel sends when the
 * worker dies), it sends SIGTERM and SIGCONT to every descendant,
 * SIGKILL to those still there after the kill grace (again and again,
 * for what they start meanwhile), and reaps until it has no child left:
 * then no descendant is left either. Only then does it write the
 * program's wait status to fd 3 and exit, so when the worker reaps the
 * supervisor the task has nothing running any more.
 *
 *   argv  <name> LLMB_EXEC_SUPERVISOR_ARG <worker pid> <kill grace ms>
 *         <rlimit cpu s> <rlimit as> <rlimit nofile> <program> [arg...]
 *         (a limit of 0 keeps the supervisor's own)
 *   fds   0, 1, 2: the program's stdin, stdout, stderr; 3: the status
 *   env   the program's, as exec.c built it
 *   fd 3  "<wait status of the program> <processes found left>\n"
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <llmb/util.h>

#include "executors.h"

/* Between SIGKILL rounds: how long the killed get to be reaped before the
 * tree is walked again for what they started meanwhile. */
#define KILL_ROUND_MS 20

/* The supervisor's task and how far it got. */
struct sup {
    pid_t worker;            /* parent at start */
    long long grace_ms;      /* SIGTERM to SIGKILL */
    long long cpu_s, as, nofile; /* rlimits of the program; 0 = inherit */
    char **argv;             /* the program's, NULL-terminated */
    pid_t prog;              /* the program; 0 when not started */
    bool prog_ended;         /* reaped (or could not be started) */
    int prog_status;         /* its wait status then */
    bool stop;               /* told to stop */
    unsigned left;           /* descendants found at the first sweep,
                                the program not counted */
};

static bool args_parse(struct sup *s, int argc, char **argv)
{
    long long worker = 0;

    if (argc < 8 || strcmp(argv[1], LLMB_EXEC_SUPERVISOR_ARG) != 0 ||
        llmb_parse_ll(argv[2], 2, INT_MAX, &worker) != 0 ||
        llmb_parse_ll(argv[3], 0, LLONG_MAX, &s->grace_ms) != 0 ||
        llmb_parse_ll(argv[4], 0, LLONG_MAX, &s->cpu_s) != 0 ||
        llmb_parse_ll(argv[5], 0, LLONG_MAX, &s->as) != 0 ||
        llmb_parse_ll(argv[6], 0, LLONG_MAX, &s->nofile) != 0)
        return false;
    s->worker = (pid_t)worker;
    s->argv = argv + 7;
    return true;
}

/* In the program's process before exec: sets resource limit res to soft
 * (the hard one a second more for RLIMIT_CPU, so that SIGXCPU comes
 * first), or exits 127 saying why. */
static void child_rlimit(int res, const char *name, long long soft)
{
    struct rlimit rl;

    if (soft <= 0)
        return;
    rl.rlim_cur = (rlim_t)soft;
    rl.rlim_max = (rlim_t)soft + (res == RLIMIT_CPU ? 1 : 0);
    if (setrlimit((__rlimit_resource_t)res, &rl) != 0) {
        dprintf(2, "cannot set %s to %lld: %s\n", name, soft,
                strerror(errno));
        _exit(127);
    }
}

/* In the program's process after fork (the supervisor has one thread, so
 * anything goes): default signal dispositions and an empty mask, a
 * process group of its own (a "kill 0" in the program does not reach the
 * supervisor), no descriptor but 0, 1 and 2, the limits, exec. */
static void LLMB_NORETURN program_exec(const struct sup *s)
{
    sigset_t none;

    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    close_range(3, UINT_MAX, 0);
    child_rlimit(RLIMIT_CPU, "RLIMIT_CPU", s->cpu_s);
    child_rlimit(RLIMIT_AS, "RLIMIT_AS", s->as);
    child_rlimit(RLIMIT_NOFILE, "RLIMIT_NOFILE", s->nofile);
    execvp(s->argv[0], s->argv);
    dprintf(2, "cannot execute %s: %s\n", s->argv[0], strerror(errno));
    _exit(127);
}

/* Starts the program; a fork that fails ends the task with status 127. */
static void program_start(struct sup *s)
{
    int nul = -1;

    s->prog = fork();
    if (s->prog == 0)
        program_exec(s);
    if (s->prog < 0) {
        dprintf(2, "exec: cannot fork: %s\n", strerror(errno));
        s->prog = 0;
        s->prog_ended = true;
        s->prog_status = 127 << 8;
        return;
    }
    /* Hold no end of the program's stdin and stdout: the worker sees them
     * close when the program's side does. stderr stays for messages. */
    nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nul >= 0) {
        dup2(nul, 0);
        dup2(nul, 1);
        close(nul);
    }
}

/* Reaps every child that has ended and notes the program's status.
 * Returns false once the supervisor has no child at all. */
static bool reap(struct sup *s)
{
    for (;;) {
        int st = 0;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid > 0) {
            if (pid == s->prog) {
                s->prog_ended = true;
                s->prog_status = st;
            }
            continue;
        }
        if (pid == 0)
            return true;
        if (errno == EINTR)
            continue;
        return false; /* ECHILD */
    }
}

/* Sends sig, then SIGCONT when cont (a stopped process acts on SIGTERM
 * only once continued), to every live descendant. Returns how many
 * processes other than the program it reached. */
static unsigned tree_signal(struct sup *s, struct llmb_proc_list *l, int sig,
                            bool cont)
{
    unsigned n = 0;

    llmb_proc_list_all(l);
    llmb_proc_keep_descendants(l, getpid());
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].state == 'Z' || llmb_proc_signal(&l->v[i], sig) != 0)
            continue;
        if (cont)
            llmb_proc_signal(&l->v[i], SIGCONT);
        if (l->v[i].pid != s->prog)
            n++;
    }
    return n;
}

/* Waits at most ms (no limit when negative) for SIGCHLD or a signal to
 * stop, which sets s->stop. */
static void signal_wait(struct sup *s, const sigset_t *set, int64_t ms)
{
    siginfo_t si;
    int sig = 0;

    if (ms < 0) {
        sig = sigwaitinfo(set, &si);
    } else {
        struct timespec ts = {(time_t)(ms / 1000),
                              (long)(ms % 1000) * 1000000L};
        sig = sigtimedwait(set, &si, &ts);
    }
    if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP)
        s->stop = true;
}

int llmb_exec_supervise(int argc, char **argv)
{
    struct sup s;
    struct llmb_proc_list l = {0};
    sigset_t set;
    bool cleaning = false;
    int64_t deadline = 0;

    memset(&s, 0, sizeof(s));
    if (!args_parse(&s, argc, argv)) {
        fprintf(stderr, "llmb-worker %s: the exec executor's task "
                "supervisor, started by the worker; not for direct use\n",
                LLMB_EXEC_SUPERVISOR_ARG);
        return 64;
    }
    /* exec.c starts us with these blocked already, so that a SIGTERM
     * sent at once waits for us here. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    fcntl(3, F_SETFD, FD_CLOEXEC);
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
        dprintf(2, "exec: cannot become a child subreaper: %s\n",
                strerror(errno));
        return 70;
    }
    /* The worker's death stops the task; if it died before this line,
     * the supervisor already has another parent. */
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    if (getppid() != s.worker)
        s.stop = true;
    else
        program_start(&s);

    for (;;) {
        if (!reap(&s))
            break;
        if (!cleaning && (s.stop || s.prog_ended)) {
            cleaning = true;
            s.left = tree_signal(&s, &l, SIGTERM, true);
            deadline = llmb_mono_ms() + s.grace_ms;
            continue;
        }
        if (!cleaning) {
            signal_wait(&s, &set, -1);
            continue;
        }
        int64_t ms = deadline - llmb_mono_ms();
        if (ms <= 0) {
            tree_signal(&s, &l, SIGKILL, false);
            ms = KILL_ROUND_MS;
        }
        signal_wait(&s, &set, ms);
    }
    if (s.prog_ended)
        dprintf(3, "%d %u\n", s.prog_status, s.left);
    llmb_proc_list_fini(&l);
    return 0;
}
