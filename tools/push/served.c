/*
 * The warning that a push went to a queue nobody serves. After a job is
 * stored, llmb-push reads the queue's <base>:types (the job types live
 * workers advertise, llmb/served.h) with Redis TIME in one round trip, and
 * says on stderr when no live worker serves the queue, or none handles
 * the job's type there. The job is stored either way: a worker may come.
 * Workers older than <base>:types do not advertise, so with those the
 * warning can be wrong. A read that fails says nothing.
 */
#include <stdio.h>
#include <stdlib.h>

#include <llmb/keys.h>
#include <llmb/reply.h>
#include <llmb/served.h>

#include "push.h"

void push_served_warn(const struct push_config *cfg, struct llmb_conn *conn,
                      const char *queue, const char *type)
{
    char *key = llmb_key_queue_sub(cfg->common.prefix, queue,
                                   LLMB_SERVED_SUFFIX);
    const char *time_argv[] = {"TIME"};
    const char *hgetall[] = {"HGETALL", key};
    redisReply *t = NULL, *r = NULL;
    struct llmb_served s;
    int64_t now;

    if (llmb_conn_append_argv(conn, 1, time_argv, NULL) != 0 ||
        llmb_conn_append_argv(conn, 2, hgetall, NULL) != 0)
        goto out;
    t = llmb_conn_get_reply(conn);
    r = t != NULL ? llmb_conn_get_reply(conn) : NULL;
    if (r == NULL || !llmb_reply_time_ms(t, &now))
        goto out;
    if (llmb_served_parse(r, now, INT64_MAX, &s) != 0)
        goto out;
    if (!llmb_served_any(&s))
        fprintf(stderr, "llmb-push: warning: no live worker serves queue %s "
                        "(none advertises job types in %s); the job waits "
                        "until one does\n", queue, key);
    else if (!llmb_served_type(&s, type))
        fprintf(stderr, "llmb-push: warning: no live worker of queue %s "
                        "handles job type \"%s\"; the job waits until one "
                        "does, or a worker without the handler fails it "
                        "(--no-handler-fail-after-s)\n", queue, type);
    llmb_served_fini(&s);
out:
    if (t != NULL)
        freeReplyObject(t);
    if (r != NULL)
        freeReplyObject(r);
    free(key);
}
