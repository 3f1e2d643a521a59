/*
 * Fuzz target for the configuration loader (lib/config.c) through a config
 * file: the input becomes the file given to llmb-worker's option table
 * (every option type: strings, integers with ranges, lists, the Redis
 * URL). Whatever loads is dumped again, and freed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llmb/config.h>
#include <llmb/util.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void remove_file(void)
{
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct llmb_worker_config cfg;
    char *argv[] = {"llmb-worker", "--config", path, NULL};
    char *err = NULL;
    FILE *f;

    if (path[0] == '\0') {
        /* One private file per process; LLMB_* variables would override
         * what the file says, so drop them. */
        snprintf(path, sizeof(path), "/tmp/llmb-fuzz-config-%ld",
                 (long)getpid());
        atexit(remove_file);
        for (char **e = environ; *e != NULL;)
            if (strncmp(*e, "LLMB_", 5) == 0) {
                char *name = llmb_xstrdup(*e);
                name[strcspn(name, "=")] = '\0';
                unsetenv(name);
                free(name);
            } else {
                e++;
            }
    }
    f = fopen(path, "w");
    if (f == NULL)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);
    memset(&cfg, 0, sizeof(cfg));
    int rc = llmb_config_load(&llmb_worker_opt_set, &cfg, 3, argv, NULL, &err);
    if (rc == 0) {
        FILE *null = fopen("/dev/null", "w");
        llmb_config_dump(&llmb_worker_opt_set, &cfg, null);
        fclose(null);
    } else if (rc < 0 && err == NULL) {
        abort();
    }
    free(err);
    llmb_config_free(&llmb_worker_opt_set, &cfg);
    return 0;
}
