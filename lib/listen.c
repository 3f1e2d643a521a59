/*
 * Listening sockets for llmb's HTTP servers (include/llmb/listen.h): the
 * address is split and resolved here, the socket is bound and listens,
 * and libmicrohttpd is given the socket, so that every server takes
 * addresses the same way and reports the port it got.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <llmb/err.h>
#include <llmb/listen.h>
#include <llmb/util.h>

/* Splits "HOST:PORT", "[V6]:PORT" or ":PORT" into host (NULL = any) and
 * port. Returns 0 or LLMB_EINVAL. */
static int addr_split(const char *addr, char **host, char **port)
{
    const char *colon;

    *host = *port = NULL;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (end == NULL || end[1] != ':')
            return LLMB_EINVAL;
        *host = llmb_xstrndup(addr + 1, (size_t)(end - addr - 1));
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL)
            return LLMB_EINVAL;
        if (colon > addr)
            *host = llmb_xstrndup(addr, (size_t)(colon - addr));
    }
    if (colon[1] == '\0' || strlen(colon + 1) > 5 ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        atoi(colon + 1) > 65535) {
        free(*host);
        *host = NULL;
        return LLMB_EINVAL;
    }
    *port = llmb_xstrdup(colon + 1);
    return 0;
}

int llmb_listen_tcp(const char *addr, const char *opt, int *fd_out,
                    int *port_out, char **errstr)
{
    struct addrinfo hints, *res = NULL, *ai;
    char *host = NULL, *port = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    int fd = -1, one = 1, gai, rc = 0, err = 0;

    *fd_out = -1;
    *port_out = 0;
    if (addr_split(addr, &host, &port) != 0) {
        *errstr = llmb_xasprintf("%s must be HOST:PORT, [IPV6]:PORT or "
                                 ":PORT, got \"%s\"", opt, addr);
        return LLMB_EINVAL;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        *errstr = llmb_xasprintf("%s %s: %s", opt, addr, gai_strerror(gai));
        rc = LLMB_EIO;
        goto out;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            listen(fd, 64) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        *errstr = llmb_xasprintf("cannot listen on %s %s: %s", opt, addr,
                                 strerror(err));
        rc = LLMB_EIO;
        goto out;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0) {
        if (ss.ss_family == AF_INET)
            *port_out = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            *port_out = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    *fd_out = fd;

out:
    if (res != NULL)
        freeaddrinfo(res);
    free(host);
    free(port);
    return rc;
}

int llmb_listen_is_loopback(const char *addr)
{
    char *host = NULL, *port = NULL;
    struct in_addr v4;
    struct in6_addr v6;
    int yes = 0;

    if (addr_split(addr, &host, &port) != 0)
        return 0;
    if (host == NULL) /* ":PORT": every address */
        yes = 0;
    else if (strcmp(host, "localhost") == 0)
        yes = 1;
    else if (inet_pton(AF_INET, host, &v4) == 1)
        yes = (ntohl(v4.s_addr) >> 24) == 127;
    else if (inet_pton(AF_INET6, host, &v6) == 1)
        yes = IN6_IS_ADDR_LOOPBACK(&v6);
    free(host);
    free(port);
    return yes;
}
