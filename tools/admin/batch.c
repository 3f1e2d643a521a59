/*
 * Pipelined commands: every listing of the CLI reads one thing per queue,
 * job or worker, and sends those reads as one pipeline instead of one round
 * trip each. A batch collects commands, llmb_batch_run() sends them a
 * thousand at a time through the connection's pipelining helpers and keeps
 * the replies for the caller to read by index.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>

#include "admin.h"

/* Commands sent before their replies are read. */
#define BATCH_WINDOW 1000

struct llmb_batch_cmd {
    int argc;
    char **argv;
    size_t *lens;
};

void llmb_batch_init(struct llmb_batch *b)
{
    memset(b, 0, sizeof(*b));
}

static struct llmb_batch_cmd *next_cmd(struct llmb_batch *b, int argc)
{
    struct llmb_batch_cmd *cmd;

    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 16;
        b->cmds = llmb_xrealloc(b->cmds, b->cap * sizeof(*b->cmds));
    }
    cmd = &b->cmds[b->n++];
    cmd->argc = argc;
    cmd->argv = llmb_xcalloc((size_t)argc, sizeof(*cmd->argv));
    cmd->lens = llmb_xcalloc((size_t)argc, sizeof(*cmd->lens));
    return cmd;
}

static void set_arg(struct llmb_batch_cmd *cmd, int i, const char *s)
{
    cmd->argv[i] = llmb_xstrdup(s);
    cmd->lens[i] = strlen(s);
}

void llmb_batch_add(struct llmb_batch *b, const char *arg, ...)
{
    struct llmb_batch_cmd *cmd;
    va_list ap;
    int argc = 0;

    va_start(ap, arg);
    for (const char *s = arg; s != NULL; s = va_arg(ap, const char *))
        argc++;
    va_end(ap);
    llmb_assert(argc > 0);

    cmd = next_cmd(b, argc);
    va_start(ap, arg);
    argc = 0;
    for (const char *s = arg; s != NULL; s = va_arg(ap, const char *))
        set_arg(cmd, argc++, s);
    va_end(ap);
}

void llmb_batch_add_list(struct llmb_batch *b, const struct llmb_strlist *l)
{
    struct llmb_batch_cmd *cmd;

    llmb_assert(l->n > 0);
    cmd = next_cmd(b, (int)l->n);
    for (size_t i = 0; i < l->n; i++)
        set_arg(cmd, (int)i, l->v[i]);
}

int llmb_batch_run(struct llmb_batch *b, struct llmb_cluster *c,
                   char **errstr)
{
    size_t done = 0;

    llmb_assert(b->replies == NULL);
    b->replies = llmb_xcalloc(b->n, sizeof(*b->replies));
    while (done < b->n) {
        size_t end = done + BATCH_WINDOW < b->n ? done + BATCH_WINDOW : b->n;

        for (size_t i = done; i < end; i++) {
            struct llmb_batch_cmd *cmd = &b->cmds[i];
            if (llmb_cluster_append_argv(c, cmd->argc,
                                      (const char **)cmd->argv,
                                      cmd->lens) != 0)
                goto fail;
        }
        for (size_t i = done; i < end; i++) {
            b->replies[i] = llmb_cluster_get_reply(c);
            if (b->replies[i] == NULL)
                goto fail;
        }
        done = end;
    }
    return 0;

fail:
    *errstr = llmb_xstrdup(llmb_cluster_errstr(c));
    for (size_t i = 0; i < b->n; i++)
        if (b->replies[i] != NULL)
            freeReplyObject(b->replies[i]);
    free(b->replies);
    b->replies = NULL;
    return LLMB_EIO;
}

void llmb_batch_fini(struct llmb_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        for (int k = 0; k < b->cmds[i].argc; k++)
            free(b->cmds[i].argv[k]);
        free(b->cmds[i].argv);
        free(b->cmds[i].lens);
        if (b->replies != NULL && b->replies[i] != NULL)
            freeReplyObject(b->replies[i]);
    }
    free(b->cmds);
    free(b->replies);
    memset(b, 0, sizeof(*b));
}
