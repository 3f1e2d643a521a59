/*
 * A listening TCP socket from an address the user wrote, for the HTTP
 * servers of llmb (the coordinator's /metrics, `llmb web`), which hand
 * the socket to libmicrohttpd.
 */
#ifndef LLMB_LISTEN_H
#define LLMB_LISTEN_H

/* Listens on addr: "HOST:PORT", "[IPV6]:PORT" or ":PORT" (every
 * address); port 0 picks a free port. opt names the option in messages
 * ("--metrics-addr"). On success returns 0 with the socket (non-blocking,
 * close-on-exec) in *fd and the port in *port; else LLMB_EINVAL (a
 * malformed address) or LLMB_EIO (cannot resolve or bind) with a
 * malloc'd *errstr such as
 *   cannot listen on --addr 127.0.0.1:80: Permission denied */
int llmb_listen_tcp(const char *addr, const char *opt, int *fd, int *port,
                    char **errstr);

/* True when addr (as above) names only a loopback address: 127.0.0.0/8,
 * ::1 or localhost. */
int llmb_listen_is_loopback(const char *addr);

#endif
