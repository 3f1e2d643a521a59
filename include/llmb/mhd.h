/*
 * libmicrohttpd, loaded at run time rather than linked: a program maps
 * libmicrohttpd and the TLS stack it depends on (GnuTLS, nettle, gmp,
 * p11-kit, ...: about 4.7 MiB of RSS in shared library pages) only when
 * it serves HTTP (the coordinator with --metrics-addr, `llmb web`), so a
 * coordinator without /metrics stays under 5 MB and every binary starts
 * without libmicrohttpd installed. Callers call libmicrohttpd through the
 * table below (llmb_mhd.start_daemon(...) where they would call
 * MHD_start_daemon(...)); <microhttpd.h> gives only the types and
 * constants.
 */
#ifndef LLMB_MHD_H
#define LLMB_MHD_H

#include <microhttpd.h>

struct llmb_mhd_api {
    struct MHD_Daemon *(*start_daemon)(unsigned int flags, uint16_t port,
                                       MHD_AcceptPolicyCallback apc,
                                       void *apc_cls,
                                       MHD_AccessHandlerCallback dh,
                                       void *dh_cls, ...);
    void (*stop_daemon)(struct MHD_Daemon *d);
    enum MHD_Result (*run)(struct MHD_Daemon *d);
    enum MHD_Result (*get_timeout)(struct MHD_Daemon *d,
                                   MHD_UNSIGNED_LONG_LONG *timeout);
    const union MHD_DaemonInfo *(*get_daemon_info)(
        struct MHD_Daemon *d, enum MHD_DaemonInfoType type, ...);
    struct MHD_Response *(*create_response_from_buffer)(
        size_t size, void *buffer, enum MHD_ResponseMemoryMode mode);
    struct MHD_Response *(*create_response_from_callback)(
        uint64_t size, size_t block_size, MHD_ContentReaderCallback crc,
        void *crc_cls, MHD_ContentReaderFreeCallback crfc);
    enum MHD_Result (*add_response_header)(struct MHD_Response *r,
                                           const char *header,
                                           const char *content);
    enum MHD_Result (*queue_response)(struct MHD_Connection *c,
                                      unsigned int status,
                                      struct MHD_Response *r);
    void (*destroy_response)(struct MHD_Response *r);
    const char *(*lookup_connection_value)(struct MHD_Connection *c,
                                           enum MHD_ValueKind kind,
                                           const char *key);
};

/* The table; valid after llmb_mhd_load() returned 0. */
extern struct llmb_mhd_api llmb_mhd;

/* Loads libmicrohttpd (libmicrohttpd.so.12), once per process (not
 * thread-safe: call it before starting threads); later calls return at
 * once. Returns 0, or -1 with a malloc'd message in *errstr ("cannot load
 * libmicrohttpd (install libmicrohttpd12): ..."). */
int llmb_mhd_load(char **errstr);

#endif
