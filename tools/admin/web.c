/*
 * `llmb web`: the command (docs/web.md). Checks its options, reads the
 * token from the environment, listens, and runs libmicrohttpd with a
 * thread per connection: a request blocks its own thread only, which
 * suits the blocking Redis calls of the views and the live streams that
 * wait for events. The request threads share a small pool of Redis
 * connections (LLMB_WEB_POOL_MAX), each reconnecting as every llmb
 * command does. The main thread waits for SIGINT or SIGTERM, then stops
 * the live streams, the daemon and the pool, in that order. libmicrohttpd
 * is loaded first (<llmb/mhd.h>): no other command of llmb maps it.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llmb/err.h>
#include <llmb/listen.h>
#include <llmb/log.h>

#include "web.h"

/* Bounds the connect and every Redis command of a request. */
#define WEB_REDIS_TIMEOUT_MS 10000

int llmb_web_check(struct llmb_admin *a, char **errstr)
{
    const char *var = a->cfg->token_env;
    const char *tok;

    if (var == NULL)
        return 0;
    tok = getenv(var);
    if (tok == NULL || tok[0] == '\0') {
        *errstr = llmb_xasprintf("--token-env %s: the environment variable "
                                 "%s is %s; set it to the token the actions "
                                 "need, or leave --token-env out for a "
                                 "read-only UI", var, var,
                                 tok == NULL ? "not set" : "empty");
        return LLMB_ECONFIG;
    }
    return 0;
}

struct llmb_admin *llmb_web_conn_take(struct llmb_web *w, char **errstr)
{
    struct llmb_admin *a = NULL;
    int rc;

    pthread_mutex_lock(&w->mu);
    while (w->nidle == 0 && w->nconns >= LLMB_WEB_POOL_MAX)
        pthread_cond_wait(&w->cv, &w->mu);
    if (w->nidle > 0) {
        a = w->idle[--w->nidle];
        pthread_mutex_unlock(&w->mu);
        return a;
    }
    w->nconns++;
    pthread_mutex_unlock(&w->mu);

    /* A new one, connected outside the lock. */
    a = llmb_xcalloc(1, sizeof(*a));
    a->cfg = w->cfg;
    a->prefix = w->prefix;
    a->out = stdout;
    a->conn = llmb_cluster_new(w->cfg->common.redis_url, "llmb-web",
                               WEB_REDIS_TIMEOUT_MS);
    rc = llmb_cluster_connect(a->conn, errstr);
    if (rc == 0)
        return a;
    llmb_cluster_free(a->conn);
    free(a);
    pthread_mutex_lock(&w->mu);
    w->nconns--;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

void llmb_web_conn_give(struct llmb_web *w, struct llmb_admin *a)
{
    if (a == NULL)
        return;
    a->cfg = w->cfg;
    pthread_mutex_lock(&w->mu);
    llmb_assert(w->nidle < LLMB_WEB_POOL_MAX);
    w->idle[w->nidle++] = a;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void pool_free(struct llmb_web *w)
{
    for (size_t i = 0; i < w->nidle; i++) {
        llmb_cluster_free(w->idle[i]->conn);
        free(w->idle[i]);
    }
    w->nidle = w->nconns = 0;
}

/* libmicrohttpd's messages go to the log, as warnings. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    llmb_log_vwrite(LLMB_LOG_WARN, "http: ", fmt, ap);
}

/* "http://HOST:PORT/" of addr and the port bound. */
static char *url_of(const char *addr, int port)
{
    const char *colon = strrchr(addr, ':');
    size_t hlen = colon != NULL ? (size_t)(colon - addr) : 0;

    if (hlen == 0)
        return llmb_xasprintf("http://0.0.0.0:%d/", port);
    return llmb_xasprintf("http://%.*s:%d/", (int)hlen, addr, port);
}

int llmb_web_run(struct llmb_admin *a, char **errstr)
{
    const char *addr = a->cfg->addr;
    struct llmb_web w;
    struct llmb_admin *probe;
    sigset_t set;
    char *url = NULL, *why = NULL;
    int fd = -1, port = 0, sig = 0, rc;

    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    w.cfg = a->cfg;
    w.prefix = a->prefix;
    if (a->cfg->token_env != NULL)
        w.token = llmb_xstrdup(getenv(a->cfg->token_env));
    /* jansson seeds its hash function once, before any thread does */
    json_object_seed(0);

    if (llmb_mhd_load(errstr) != 0) {
        rc = LLMB_EIO;
        goto out;
    }
    rc = llmb_listen_tcp(addr, "--addr", &fd, &port, errstr);
    if (rc != 0)
        goto out;
    if (w.token == NULL && !llmb_listen_is_loopback(addr))
        fprintf(stderr, "llmb web: warning: listening on %s without "
                        "--token-env: anyone who reaches it reads every "
                        "job; the actions are off (read-only)\n", addr);
    /* Loads the function library now, and says so when Redis is away
     * (the API answers 503 until it is back). */
    probe = llmb_web_conn_take(&w, &why);
    if (probe == NULL)
        fprintf(stderr, "llmb web: warning: %s; answering 503 until Redis "
                        "is back\n", why);
    llmb_web_conn_give(&w, probe);
    free(why);

    /* The threads the daemon starts inherit this mask: only sigwait()
     * below takes the signals. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    w.events = llmb_web_events_new(&w);
    w.daemon = llmb_mhd.start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
            MHD_USE_POLL | MHD_USE_ERROR_LOG,
        0, NULL, NULL, llmb_web_handle, &w,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)LLMB_WEB_CONNS_MAX,
        /* one address cannot hold every connection (slowloris): the
         * daemon closes the connection past the limit at once */
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)a->cfg->max_conns_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)LLMB_WEB_IDLE_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
        MHD_OPTION_END);
    if (w.daemon == NULL) {
        *errstr = llmb_xasprintf("cannot start the HTTP server on %s",
                                 addr);
        rc = LLMB_EIO;
        goto out;
    }
    fd = -1; /* the daemon's now */
    url = url_of(addr, port);
    fprintf(stderr, "llmb web: serving %s (%s)\n", url,
            w.token != NULL ? "actions need the token" : "read-only");
    fflush(stderr);
    sigwait(&set, &sig);
    fprintf(stderr, "llmb web: received %s; stopping\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");

out:
    llmb_web_events_stop(w.events);
    if (w.daemon != NULL)
        llmb_mhd.stop_daemon(w.daemon);
    else if (fd >= 0)
        close(fd);
    llmb_web_events_free(w.events);
    pool_free(&w);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    free(w.token);
    free(url);
    return rc;
}
