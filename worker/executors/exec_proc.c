/*
 * Processes as /proc shows them, for the exec executor's clean-up: the
 * task supervisor (exec_supervisor.c) finds every descendant of itself,
 * the worker (exec.c) its own children. It reads /proc/<pid>/stat of every
 * process rather than /proc/<pid>/task/<tid>/children, which kernels built
 * without CONFIG_PROC_CHILDREN lack and which misses the children of
 * other threads.
 *
 * A listing is a snapshot: a process may end, and its pid be taken by an
 * unrelated one, before it is signalled. llmb_proc_signal therefore checks
 * the start time again through a pidfd, so that only the process listed
 * is ever hit.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <llmb/util.h>

#include "executors.h"

int llmb_proc_read(pid_t pid, struct llmb_proc *p)
{
    char path[64], buf[1024];
    int fd = -1, ppid = 0, sid = 0;
    ssize_t n = 0;
    const char *end = NULL;
    char state = 0;
    unsigned long long start = 0;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* "pid (comm) state ppid pgrp session ... starttime(22nd)": comm may
     * hold spaces and parentheses, so parse from the last ')'. */
    end = strrchr(buf, ')');
    if (end == NULL ||
        sscanf(end + 1, " %c %d %*s %d %*s %*s %*s %*s %*s %*s %*s %*s %*s "
               "%*s %*s %*s %*s %*s %*s %llu", &state, &ppid, &sid,
               &start) != 4)
        return -1;
    p->pid = pid;
    p->ppid = (pid_t)ppid;
    p->sid = (pid_t)sid;
    p->state = state;
    p->start = start;
    return 0;
}

void llmb_proc_list_all(struct llmb_proc_list *l)
{
    DIR *d = opendir("/proc");
    struct dirent *e = NULL;

    l->n = 0;
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        char *end = NULL;
        long pid = strtol(e->d_name, &end, 10);
        struct llmb_proc p;
        if (pid <= 0 || *end != '\0' || llmb_proc_read((pid_t)pid, &p) != 0)
            continue;
        if (l->n == l->cap) {
            l->cap = l->cap < 64 ? 64 : 2 * l->cap;
            l->v = llmb_xrealloc(l->v, l->cap * sizeof(*l->v));
        }
        l->v[l->n++] = p;
    }
    closedir(d);
}

void llmb_proc_list_fini(struct llmb_proc_list *l)
{
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int proc_cmp(const void *a, const void *b)
{
    pid_t x = ((const struct llmb_proc *)a)->pid;
    pid_t y = ((const struct llmb_proc *)b)->pid;
    return (x > y) - (x < y);
}

/* True when root is an ancestor of l->v[i]; l is sorted by pid. The walk
 * is bounded: a snapshot taken while pids were reused may hold a loop. */
static bool descends(const struct llmb_proc_list *l, size_t i, pid_t root)
{
    pid_t up = l->v[i].ppid;

    for (size_t steps = 0; up > 1 && steps < l->n; steps++) {
        if (up == root)
            return true;
        struct llmb_proc key = {.pid = up};
        const struct llmb_proc *p = bsearch(&key, l->v, l->n, sizeof(*l->v),
                                            proc_cmp);
        if (p == NULL)
            return false;
        up = p->ppid;
    }
    return false;
}

void llmb_proc_keep_descendants(struct llmb_proc_list *l, pid_t root)
{
    size_t k = 0;
    bool *keep = NULL;

    if (l->n == 0)
        return;
    qsort(l->v, l->n, sizeof(*l->v), proc_cmp);
    keep = llmb_xcalloc(l->n, sizeof(*keep));
    for (size_t i = 0; i < l->n; i++)
        keep[i] = l->v[i].pid != root && descends(l, i, root);
    for (size_t i = 0; i < l->n; i++)
        if (keep[i])
            l->v[k++] = l->v[i];
    l->n = k;
    free(keep);
}

int llmb_proc_signal(const struct llmb_proc *p, int sig)
{
    struct llmb_proc now;

#if defined(SYS_pidfd_open) && defined(SYS_pidfd_send_signal)
    int fd = (int)syscall(SYS_pidfd_open, p->pid, 0);
    if (fd >= 0) {
        /* fd is the process that has the pid now: if its start time is
         * the listed one, it is the listed process. */
        int rc = -1;
        if (llmb_proc_read(p->pid, &now) == 0 && now.start == p->start)
            rc = (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
        close(fd);
        return rc == 0 ? 0 : -1;
    }
    if (errno == ESRCH)
        return -1;
    /* No pidfd (a kernel before 5.3, or no file descriptor left): check
     * and kill, with the small window between the two. */
#endif
    if (llmb_proc_read(p->pid, &now) != 0 || now.start != p->start)
        return -1;
    return kill(p->pid, sig);
}
