/*
 * llmb-worker's core, as main.c sees it: build it from a loaded
 * configuration, attach it to a libev loop, run the loop until the core
 * breaks it (after a drain on SIGTERM/SIGINT), free it.
 */
#ifndef LLMB_WORKER_H
#define LLMB_WORKER_H

#include <ev.h>

#include "config.h"

struct llmb_worker;

/* Builds a worker from cfg (which must outlive it): checks the options,
 * makes the handlers (an exec program that is missing or a plugin that
 * does not load is an error here, not at the first task). Returns NULL
 * with a malloc'd message in *errstr on a configuration error. */
struct llmb_worker *llmb_worker_new(const struct llmb_worker_config *cfg,
                                    char **errstr);

/* Attaches the worker to loop (the default loop: exec needs ev_child):
 * connects to Redis in the background and installs the SIGTERM/SIGINT
 * watchers. On a cluster it reads the slot map first; while no node
 * answers, or the cluster has no slots yet, it reads it again with the
 * reconnect backoff. Returns 0, or an llmb_err with *errstr for a
 * configuration error (bad Redis URL, credentials the cluster refuses). */
int llmb_worker_attach(struct llmb_worker *w, struct ev_loop *loop,
                       char **errstr);

/* The worker's id. */
const char *llmb_worker_id(const struct llmb_worker *w);

/* Why the loop ended: 0 when the worker stopped as asked (a signal), or
 * LLMB_ECONFIG when it stopped itself because another running worker owns
 * its id (at start, or taken over later) or Redis refused the claim on it;
 * the reason was logged. */
int llmb_worker_status(const struct llmb_worker *w);

/* Stops everything (children are killed) and frees the worker; accepts
 * NULL. */
void llmb_worker_free(struct llmb_worker *w);

#endif
