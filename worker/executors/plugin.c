/*
 * C executor plugins: a shared object loaded with dlopen that exports
 * LLMB_EXECUTOR_SYMBOL, a struct llmb_executor (include/llmb/executor.h).
 * Loading checks the ABI version and that every function is there; the
 * worker then uses the table like a built-in one.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/util.h>

#include "executors.h"

int llmb_plugin_load(const char *path, struct llmb_plugin *out, char **errstr)
{
    void *dl = NULL;
    const struct llmb_executor *ops = NULL;

    memset(out, 0, sizeof(*out));
    if (path == NULL || path[0] == '\0') {
        *errstr = llmb_xstrdup("plugin: needs the path of a shared object, "
                               "as in plugin:/usr/lib/llmb/my-plugin.so");
        return -1;
    }
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        *errstr = llmb_xasprintf("plugin: cannot load %s: %s", path,
                                 dlerror());
        return -1;
    }
    ops = dlsym(dl, LLMB_EXECUTOR_SYMBOL);
    if (ops == NULL) {
        *errstr = llmb_xasprintf("plugin: %s does not export the symbol %s",
                                 path, LLMB_EXECUTOR_SYMBOL);
        goto fail;
    }
    if (ops->abi != LLMB_EXECUTOR_ABI) {
        *errstr = llmb_xasprintf("plugin: %s implements executor ABI %d; "
                                 "this worker needs ABI %d", path, ops->abi,
                                 LLMB_EXECUTOR_ABI);
        goto fail;
    }
    if (ops->init == NULL || ops->start == NULL || ops->cancel == NULL ||
        ops->fini == NULL) {
        *errstr = llmb_xasprintf("plugin: %s leaves a function of its "
                                 "executor table NULL (init, start, cancel "
                                 "and fini are required)", path);
        goto fail;
    }
    out->ops = ops;
    out->dl = dl;
    return 0;
fail:
    dlclose(dl);
    return -1;
}

void llmb_plugin_unload(struct llmb_plugin *p)
{
    if (p->dl != NULL)
        dlclose(p->dl);
    memset(p, 0, sizeof(*p));
}
