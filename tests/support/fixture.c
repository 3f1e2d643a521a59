/*
 * Implementation of the test helpers in fixture.h. They abort with a
 * message instead of returning errors: a test without its server cannot
 * say anything useful anyway.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include <llmb/url.h>
#include <llmb/util.h>

#include "fixture.h"

const char *llmb_test_redis_url(void)
{
    static char url[512];
    const char *file = getenv("LLMB_TEST_REDIS_URL_FILE");
    const char *direct = getenv("LLMB_TEST_REDIS_URL");

    if (url[0] != '\0')
        return url;
    if (file != NULL && *file != '\0') {
        FILE *f = fopen(file, "r");
        if (f == NULL) {
            fprintf(stderr, "test: cannot read %s (is the redis_start "
                            "fixture running?)\n", file);
            return NULL;
        }
        if (fgets(url, sizeof(url), f) == NULL)
            url[0] = '\0';
        fclose(f);
        url[strcspn(url, "\r\n")] = '\0';
    } else if (direct != NULL && *direct != '\0') {
        snprintf(url, sizeof(url), "%s", direct);
    }
    if (url[0] == '\0') {
        fprintf(stderr, "test: no test redis: set LLMB_TEST_REDIS_URL_FILE "
                        "or LLMB_TEST_REDIS_URL (ctest does this)\n");
        return NULL;
    }
    return url;
}

char *llmb_test_prefix(const char *name)
{
    char *p = llmb_xasprintf("t%ld-%s", (long)getpid(), name);
    for (char *s = p; *s; s++)
        if (!isalnum((unsigned char)*s) && strchr("_.:-", *s) == NULL)
            *s = '_';
    return p;
}

redisContext *llmb_test_redis(void)
{
    const char *url = llmb_test_redis_url();
    struct llmb_redis_url u;
    struct timeval tv = {5, 0};
    redisContext *c;
    char *err = NULL;

    if (url == NULL)
        abort();
    if (llmb_redis_url_parse(url, &u, &err) != 0) {
        fprintf(stderr, "test: %s\n", err);
        abort();
    }
    c = u.socket_path ? redisConnectUnixWithTimeout(u.socket_path, tv)
                      : redisConnectWithTimeout(u.host, u.port, tv);
    if (c == NULL || c->err) {
        fprintf(stderr, "test: cannot connect to %s: %s\n", url,
                c ? c->errstr : "out of memory");
        abort();
    }
    redisSetTimeout(c, tv);
    llmb_redis_url_fini(&u);
    return c;
}

void llmb_test_redis_del_prefix(redisContext *c, const char *prefix)
{
    char cursor[32] = "0";
    char *pattern;
    size_t n = 0;

    /* Escape the glob characters SCAN MATCH knows. */
    pattern = llmb_xmalloc(2 * strlen(prefix) + 3);
    pattern[n++] = '*';
    for (const char *s = prefix; *s; s++) {
        if (strchr("*?[]\\", *s) != NULL)
            pattern[n++] = '\\';
        pattern[n++] = *s;
    }
    pattern[n++] = '*';
    pattern[n] = '\0';

    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor,
                                     pattern);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            fprintf(stderr, "test: SCAN failed: %s\n",
                    r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
            abort();
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            redisReply *k = r->element[1]->element[i];
            redisReply *d = redisCommand(c, "UNLINK %b", k->str, k->len);
            if (d != NULL)
                freeReplyObject(d);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    free(pattern);
}

int llmb_test_clients_named(redisContext *c, const char *name)
{
    redisReply *r = redisCommand(c, "CLIENT LIST");
    char *want;
    int n = 0;

    if (r == NULL || r->type != REDIS_REPLY_STRING)
        fail_msg("CLIENT LIST failed: %s",
                 r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
    /* Each client is a line of fields; " name=<name> " is one of them. */
    want = llmb_xasprintf(" name=%s ", name);
    for (const char *p = r->str; (p = strstr(p, want)) != NULL; p++)
        n++;
    free(want);
    freeReplyObject(r);
    return n;
}

int llmb_test_free_port(void)
{
    static int seeded;

    if (!seeded) {
        /* test processes run in parallel: each its own sequence */
        srandom((unsigned)getpid() ^ (unsigned)time(NULL));
        seeded = 1;
    }
    for (int tries = 0; tries < 200; tries++) {
        struct sockaddr_in a;
        int port = 20000 + (int)(random() % 12000);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int ok;

        if (fd < 0)
            break;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons((uint16_t)port);
        ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        if (ok)
            return port;
    }
    fprintf(stderr, "no free TCP port in 20000-31999\n");
    abort();
}

static void tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)t;
    (void)revents;
}

void llmb_test_run_until(struct ev_loop *loop, const int *counter, int want,
                         int timeout_ms)
{
    ev_timer tick;
    int64_t end = llmb_mono_ms() + timeout_ms;

    ev_timer_init(&tick, tick_cb, 0.01, 0.01);
    ev_timer_start(loop, &tick);
    while (*counter < want && llmb_mono_ms() < end)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &tick);
    if (*counter < want)
        fail_msg("waited %d ms for %d events, saw %d", timeout_ms, want,
                 *counter);
}

void llmb_test_run_for(struct ev_loop *loop, int ms)
{
    ev_timer guard;

    ev_timer_init(&guard, tick_cb, (ev_tstamp)ms / 1000.0, 0.0);
    ev_timer_start(loop, &guard);
    while (ev_is_active(&guard))
        ev_run(loop, EVRUN_ONCE);
}
