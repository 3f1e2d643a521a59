/*
 * A library loaded at run time (dlopen) and the functions taken from it,
 * for the libraries llmb maps only when a program needs them: libcurl
 * (<llmb/curl.h>) and libmicrohttpd (<llmb/mhd.h>).
 */
#ifndef LLMB_DL_H
#define LLMB_DL_H

#include <stddef.h>

/* One function to take: its name and the function pointer to fill,
 * written as (void **)&table.field (ISO C has no conversion between
 * function and object pointers; POSIX dlsym relies on this one). */
struct llmb_dl_sym {
    const char *name;
    void **slot;
};

/* Opens soname (RTLD_NOW | RTLD_LOCAL) and fills the n slots of syms.
 * Returns the handle (kept for the life of the process), or NULL with a
 * malloc'd *errstr: 'cannot load <what> (install <package>): <dlerror>',
 * or '<soname> has no <name><hint>' (hint may be "", or say which version
 * is needed), the library closed again. */
void *llmb_dl_load(const char *soname, const char *what, const char *package,
                   const struct llmb_dl_sym *syms, size_t n,
                   const char *hint, char **errstr);

#endif
