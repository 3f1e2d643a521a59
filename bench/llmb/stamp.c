/*
 * The W3 probe of bench/run: an llmb executor plugin (include/llmb/executor.h)
 * that notes when the worker starts a task. The pusher (pace.c) writes its
 * wall-clock push time in microseconds into the payload as "t"; start()
 * reads the same clock (CLOCK_REALTIME, one machine) and appends the
 * difference, push-to-start in microseconds, as one line to the file named
 * by the handler's configuration text. The task then ends at once with {}.
 *
 *   llmb-worker --handler 'stamp=plugin:/tmp/.../stamp.so /tmp/.../lat'
 *
 * Built by bench/run with cc; not part of the llmb tree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include <llmb/executor.h>

static long long now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *stamp_init(const char *config, char **errstr)
{
    FILE *f = fopen(config, "a");

    if (f == NULL) {
        *errstr = strdup("stamp plugin: cannot open the output file");
        return NULL;
    }
    setvbuf(f, NULL, _IOLBF, 0);
    return f;
}

static void *stamp_start(void *instance, const struct llmb_exec_task *t,
                         struct ev_loop *loop, llmb_exec_done_fn *done,
                         void *token)
{
    long long now = now_us();
    const char *p = strstr(t->payload, "\"t\":");

    (void)loop;
    if (p != NULL)
        fprintf(instance, "%lld\n", now - atoll(p + 4));
    done(token, LLMB_EXEC_OK, "{}", 2);
    return NULL;
}

static void stamp_cancel(void *handle)
{
    (void)handle;
}

static void stamp_fini(void *instance)
{
    fclose(instance);
}

__attribute__((visibility("default")))
const struct llmb_executor llmb_executor_v1 = {
    LLMB_EXECUTOR_ABI, "stamp", stamp_init, stamp_start, stamp_cancel,
    stamp_fini,
};
