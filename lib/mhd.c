/*
 * Loads libmicrohttpd on demand (see <llmb/mhd.h>) and fills the table of
 * the functions its callers use: the coordinator's /metrics server and
 * `llmb web`.
 */
#include <stdbool.h>
#include <stdlib.h>

#include <llmb/dl.h>
#include <llmb/mhd.h>
#include <llmb/util.h>

struct llmb_mhd_api llmb_mhd;

static bool loaded;

/* The functions the table holds. */
#define SYM(field, name) {name, (void **)&llmb_mhd.field}

static const struct llmb_dl_sym syms[] = {
    SYM(start_daemon, "MHD_start_daemon"),
    SYM(stop_daemon, "MHD_stop_daemon"),
    SYM(run, "MHD_run"),
    SYM(get_timeout, "MHD_get_timeout"),
    SYM(get_daemon_info, "MHD_get_daemon_info"),
    SYM(create_response_from_buffer, "MHD_create_response_from_buffer"),
    SYM(create_response_from_callback, "MHD_create_response_from_callback"),
    SYM(add_response_header, "MHD_add_response_header"),
    SYM(queue_response, "MHD_queue_response"),
    SYM(destroy_response, "MHD_destroy_response"),
    SYM(lookup_connection_value, "MHD_lookup_connection_value"),
};

int llmb_mhd_load(char **errstr)
{
    if (loaded)
        return 0;
    if (llmb_dl_load("libmicrohttpd.so.12", "libmicrohttpd", "libmicrohttpd12",
                     syms, sizeof(syms) / sizeof(*syms), "", errstr) == NULL)
        return -1;
    loaded = true; /* kept loaded for the life of the process */
    return 0;
}
