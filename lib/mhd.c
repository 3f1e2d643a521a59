/*
 * Loads libmicrohttpd on demand (see <llmb/mhd.h>) and fills the table of
 * the functions its callers use: the coordinator's /metrics server and
 * `llmb web`.
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>

#include <llmb/mhd.h>
#include <llmb/util.h>

struct llmb_mhd_api llmb_mhd;

static bool loaded;

/* dlsym into a function pointer (ISO C has no conversion from void *). */
#define RESOLVE(field, name)                                                \
    do {                                                                    \
        void *sym = dlsym(lib, name);                                       \
        if (sym == NULL)                                                    \
            missing = name;                                                 \
        else                                                                \
            *(void **)&llmb_mhd.field = sym;                                \
    } while (0)

int llmb_mhd_load(char **errstr)
{
    const char *missing = NULL;
    void *lib;

    if (loaded)
        return 0;
    lib = dlopen("libmicrohttpd.so.12", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        *errstr = llmb_xasprintf("cannot load libmicrohttpd (install "
                                 "libmicrohttpd12): %s", dlerror());
        return -1;
    }
    RESOLVE(start_daemon, "MHD_start_daemon");
    RESOLVE(stop_daemon, "MHD_stop_daemon");
    RESOLVE(run, "MHD_run");
    RESOLVE(get_timeout, "MHD_get_timeout");
    RESOLVE(get_daemon_info, "MHD_get_daemon_info");
    RESOLVE(create_response_from_buffer, "MHD_create_response_from_buffer");
    RESOLVE(create_response_from_callback,
            "MHD_create_response_from_callback");
    RESOLVE(add_response_header, "MHD_add_response_header");
    RESOLVE(queue_response, "MHD_queue_response");
    RESOLVE(destroy_response, "MHD_destroy_response");
    RESOLVE(lookup_connection_value, "MHD_lookup_connection_value");
    if (missing != NULL) {
        *errstr = llmb_xasprintf("libmicrohttpd.so.12 has no %s", missing);
        dlclose(lib);
        return -1;
    }
    loaded = true; /* kept loaded for the life of the process */
    return 0;
}
