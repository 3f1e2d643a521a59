/*
 * Loads libcurl on demand (see <llmb/curl.h>) and fills the table of the
 * functions its callers use: the worker's llm executor and `llmb health`.
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>

#include <llmb/curl.h>
#include <llmb/dl.h>
#include <llmb/util.h>

struct llmb_curl_api llmb_curl;

static bool loaded;

/* The functions the table holds. */
#define SYM(field, name) {name, (void **)&llmb_curl.field}

static const struct llmb_dl_sym syms[] = {
    SYM(global_init, "curl_global_init"),
    SYM(easy_init, "curl_easy_init"),
    SYM(easy_cleanup, "curl_easy_cleanup"),
    SYM(easy_setopt, "curl_easy_setopt"),
    SYM(easy_getinfo, "curl_easy_getinfo"),
    SYM(easy_perform, "curl_easy_perform"),
    SYM(easy_strerror, "curl_easy_strerror"),
    SYM(multi_init, "curl_multi_init"),
    SYM(multi_cleanup, "curl_multi_cleanup"),
    SYM(multi_setopt, "curl_multi_setopt"),
    SYM(multi_add_handle, "curl_multi_add_handle"),
    SYM(multi_remove_handle, "curl_multi_remove_handle"),
    SYM(multi_assign, "curl_multi_assign"),
    SYM(multi_socket_action, "curl_multi_socket_action"),
    SYM(multi_info_read, "curl_multi_info_read"),
    SYM(multi_strerror, "curl_multi_strerror"),
    SYM(slist_append, "curl_slist_append"),
    SYM(slist_free_all, "curl_slist_free_all"),
};

int llmb_curl_load(char **errstr)
{
    void *lib;
    CURLcode rc;

    if (loaded)
        return 0;
    lib = llmb_dl_load("libcurl.so.4", "libcurl", "libcurl4", syms,
                       sizeof(syms) / sizeof(*syms),
                       "; is it older than 7.88?", errstr);
    if (lib == NULL)
        return -1;
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
