/*
 * The W3 pusher of bench/run: pushes N single-task jobs one at a time at
 * RATE per second (FCALL llmb_push_fields, the values llmb-push sends, one
 * round trip each, waiting for the reply), each payload carrying its push
 * time "t" in wall-clock
 * microseconds, taken just before the command is sent. stamp.c on the
 * worker side subtracts it from the start time.
 *
 *   pace HOST PORT BASE_KEY TYPE N RATE
 *
 * Built by bench/run with cc against hiredis; not part of the llmb tree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <hiredis/hiredis.h>

static long long now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
    redisContext *c = NULL;
    long n, i;
    double rate;
    long long t0;
    char doc[512];

    if (argc != 7) {
        fprintf(stderr, "usage: pace HOST PORT BASE_KEY TYPE N RATE\n");
        return 64;
    }
    n = atol(argv[5]);
    rate = atof(argv[6]);
    c = redisConnect(argv[1], atoi(argv[2]));
    if (c == NULL || c->err) {
        fprintf(stderr, "pace: cannot connect to Redis\n");
        return 69;
    }
    t0 = now_us();
    for (i = 0; i < n; i++) {
        long long due = t0 + (long long)((double)i * 1e6 / rate);
        long long now = now_us();
        redisReply *r;

        if (due > now) {
            struct timespec d = { (due - now) / 1000000,
                                  ((due - now) % 1000000) * 1000 };
            nanosleep(&d, NULL);
        }
        snprintf(doc, sizeof(doc),
                 "{\"t\":%lld,\"prompt\":\"benchmark request %08ld\","
                 "\"seed\":%ld}",
                 now_us(), i, i);
        /* id (minted), type, payload, then seven defaults */
        const char *av[] = {"FCALL", "llmb_push_fields", "1", argv[3], "",
                            argv[4], doc, "", "", "", "", "", "", ""};
        r = redisCommandArgv(c, 14, av, NULL);
        if (r == NULL || r->type == REDIS_REPLY_ERROR ||
            (r->type == REDIS_REPLY_ARRAY &&
             (r->elements != 1 || r->element[0]->type != REDIS_REPLY_STRING))) {
            fprintf(stderr, "pace: push failed: %s\n",
                    r == NULL ? c->errstr
                    : r->type == REDIS_REPLY_ERROR ? r->str
                    : r->elements == 1 && r->element[0]->str ? r->element[0]->str
                                                               : "?");
            return 1;
        }
        freeReplyObject(r);
    }
    redisFree(c);
    return 0;
}
