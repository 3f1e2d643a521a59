/*
 * Loads libcurl on demand (see <llmb/curl.h>) and fills the table of the
 * functions its callers use: the worker's llm executor and `llmb health`.
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>

#include <llmb/curl.h>
#include <llmb/util.h>

struct llmb_curl_api llmb_curl;

static bool loaded;

/* dlsym into a function pointer (ISO C has no conversion from void *). */
#define RESOLVE(field, name)                                                \
    do {                                                                    \
        void *sym = dlsym(lib, name);                                       \
        if (sym == NULL)                                                    \
            missing = name;                                                 \
        else                                                                \
            *(void **)&llmb_curl.field = sym;                               \
    } while (0)

int llmb_curl_load(char **errstr)
{
    const char *missing = NULL;
    void *lib;
    CURLcode rc;

    if (loaded)
        return 0;
    lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        *errstr = llmb_xasprintf("cannot load libcurl (install libcurl4): "
                                 "%s", dlerror());
        return -1;
    }
    RESOLVE(global_init, "curl_global_init");
    RESOLVE(easy_init, "curl_easy_init");
    RESOLVE(easy_cleanup, "curl_easy_cleanup");
    RESOLVE(easy_setopt, "curl_easy_setopt");
    RESOLVE(easy_getinfo, "curl_easy_getinfo");
    RESOLVE(easy_perform, "curl_easy_perform");
    RESOLVE(easy_strerror, "curl_easy_strerror");
    RESOLVE(multi_init, "curl_multi_init");
    RESOLVE(multi_cleanup, "curl_multi_cleanup");
    RESOLVE(multi_setopt, "curl_multi_setopt");
    RESOLVE(multi_add_handle, "curl_multi_add_handle");
    RESOLVE(multi_remove_handle, "curl_multi_remove_handle");
    RESOLVE(multi_assign, "curl_multi_assign");
    RESOLVE(multi_socket_action, "curl_multi_socket_action");
    RESOLVE(multi_info_read, "curl_multi_info_read");
    RESOLVE(multi_strerror, "curl_multi_strerror");
    RESOLVE(slist_append, "curl_slist_append");
    RESOLVE(slist_free_all, "curl_slist_free_all");
    if (missing != NULL) {
        *errstr = llmb_xasprintf("libcurl.so.4 has no %s; is it older than "
                                 "7.88?", missing);
        dlclose(lib);
        return -1;
    }
    rc = llmb_curl.global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        *errstr = llmb_xasprintf("curl_global_init: %s",
                                 llmb_curl.easy_strerror(rc));
        dlclose(lib);
        return -1;
    }
    loaded = true; /* kept loaded for the life of the process */
    return 0;
}
