/*
 * What llmb-push says about each job it pushed and about the run: the id
 * of each confirmed job on stdout (or with --json one status object per
 * job), each refusal on stderr, and when the run could not confirm every
 * job, which ones are not confirmed and how to finish. single.c and
 * batch.c decide the status of each job; this file only counts and says.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <llmb/reply.h>

#include "push.h"

static const char *const status_names[] = {
    [PUSH_PENDING] = "pending",
    [PUSH_CONFIRMED] = "confirmed",
    [PUSH_UNKNOWN] = "unknown",
    [PUSH_ERROR] = "error",
};

bool push_reply_unavailable(const char *err)
{
    /* Redis refused to run the call for now (a script or function runs
     * too long, it loads its data, it is a replica or out of memory...);
     * or, for OOM, a function stopped halfway; or a cluster moved the
     * queue's slot while the call was on its way (MOVED, ASK). Either
     * way the jobs are not refused: they are not confirmed. */
    return llmb_reply_refused_for_now(err);
}

void push_status_print(const struct push_config *cfg, struct push_tally *t,
                       long line, const char *id, const char *queue,
                       enum push_status st, const char *error, bool quiet)
{
    /* a refusal, without the "ERR " of a Redis error reply */
    const char *msg = error != NULL ? error : "refused";

    if (strncmp(msg, "ERR ", 4) == 0)
        msg += 4;
    if (st == PUSH_CONFIRMED) {
        t->confirmed++;
    } else if (st == PUSH_UNKNOWN) {
        if (t->unknown++ == 0) {
            t->first_unknown_id = llmb_xstrdup(id != NULL ? id : "?");
            t->first_unknown_queue = llmb_xstrdup(queue);
            t->first_unknown_line = line;
        }
    } else if (st == PUSH_ERROR) {
        t->rejected++;
        if (line > 0)
            fprintf(stderr, "llmb-push: line %ld: %s\n", line, msg);
        else
            fprintf(stderr, "llmb-push: %s\n", msg);
    }
    if (quiet)
        return;
    if (cfg->json) {
        json_t *o = json_object();
        char *text;
        if (line > 0)
            json_object_set_new(o, "line", json_integer(line));
        json_object_set_new(o, "id", st != PUSH_ERROR && id != NULL
                                         ? json_string(id) : json_null());
        json_object_set_new(o, "queue", json_string(queue));
        json_object_set_new(o, "status", json_string(status_names[st]));
        if (st == PUSH_ERROR)
            json_object_set_new(o, "error", json_string(msg));
        text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("%s\n", text);
        free(text);
        json_decref(o);
    } else if (st == PUSH_CONFIRMED) {
        printf("%s\n", id);
    }
}

void push_tally_report(const struct push_tally *t, bool single, bool kept)
{
    const char *id = t->first_unknown_id, *q = t->first_unknown_queue;
    const char *next = kept ? "re-run the same command to finish without "
                              "duplicates"
                            : "this run kept no journal, so a re-run pushes "
                              "them again: check them first";

    if (t->unknown == 0) {
        if (!single && t->rejected > 0)
            fprintf(stderr, "llmb-push: %ld jobs pushed, %ld rejected\n",
                    t->confirmed, t->rejected);
        return;
    }
    if (single) {
        fprintf(stderr, "llmb-push: job %s (queue %s) not confirmed (it may "
                        "or may not be stored); %s\n", id, q,
                kept ? "re-run the same command to finish without a "
                       "duplicate"
                     : "this run kept no journal, so a re-run pushes it "
                       "again: check it first");
        fprintf(stderr, "llmb-push: `llmb show %s/%s` says whether it is "
                        "stored\n", q, id);
        return;
    }
    fprintf(stderr, "llmb-push: %ld jobs confirmed, %ld not confirmed (they "
                    "may or may not be stored)", t->confirmed, t->unknown);
    if (t->rejected > 0)
        fprintf(stderr, ", %ld rejected", t->rejected);
    fprintf(stderr, ": first unconfirmed id %s (line %ld, queue %s)", id,
            t->first_unknown_line, q);
    if (t->unread_after > 0)
        fprintf(stderr, "; the input after line %ld was not read",
                t->unread_after);
    fprintf(stderr, "; %s\n", next);
    fprintf(stderr, "llmb-push: `llmb show %s/%s` says whether a job is "
                    "stored; --json lists the id and status of every line\n",
            q, id);
}

void push_tally_fini(struct push_tally *t)
{
    free(t->first_unknown_id);
    free(t->first_unknown_queue);
    memset(t, 0, sizeof(*t));
}
