/*
 * Libraries loaded at run time (see <llmb/dl.h>).
 */
#include <dlfcn.h>

#include <llmb/dl.h>
#include <llmb/util.h>

void *llmb_dl_load(const char *soname, const char *what, const char *package,
                   const struct llmb_dl_sym *syms, size_t n,
                   const char *hint, char **errstr)
{
    void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);

    if (lib == NULL) {
        *errstr = llmb_xasprintf("cannot load %s (install %s): %s", what,
                                 package, dlerror());
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        void *sym = dlsym(lib, syms[i].name);
        if (sym == NULL) {
            *errstr = llmb_xasprintf("%s has no %s%s", soname, syms[i].name,
                                     hint);
            dlclose(lib);
            return NULL;
        }
        *syms[i].slot = sym;
    }
    return lib;
}
