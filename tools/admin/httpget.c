/*
 * The HTTP GET of `llmb health --coordinator URL`, with libcurl: one
 * request to the coordinator's own small server (coordinator/http.c),
 * plain http:// only, no proxy, no redirects, the whole exchange bounded
 * by --timeout-ms. libcurl is loaded at run time (<llmb/curl.h>), as the
 * worker loads it, so llmb starts without it and only this check needs
 * it installed (the image has libcurl4).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/curl.h>
#include <llmb/err.h>
#include <llmb/url.h>

#include "admin.h"

/* Most bytes of a response kept; /healthz answers a few hundred. */
#define RESPONSE_MAX 65536

/* Splits "http://HOST[:PORT][/PATH]" ("[V6]" hosts too) into *hp, the
 * malloc'd "HOST:PORT" ("[V6]:PORT"; port 80 by default), and the
 * malloc'd path ("/healthz" when there is none or it is "/"). Returns 0
 * or LLMB_EINVAL with *errstr. */
static int url_split(const char *url, char **hp, char **path, char **errstr)
{
    const char *p, *end, *slash;
    char *host = NULL, *port = NULL, *num_end = NULL;
    long num = 80;

    *hp = *path = NULL;
    if (strncmp(url, "http://", 7) != 0) {
        *errstr = llmb_xasprintf("--coordinator must be an http:// URL "
                                 "(the coordinator serves plain HTTP), got "
                                 "\"%s\"", url);
        return LLMB_EINVAL;
    }
    p = url + 7;
    slash = strchr(p, '/');
    end = slash ? slash : p + strlen(p);
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL || (rb + 1 != end && rb[1] != ':'))
            goto bad;
        host = llmb_xstrndup(p + 1, (size_t)(rb - p - 1));
        if (rb + 1 != end)
            port = llmb_xstrndup(rb + 2, (size_t)(end - rb - 2));
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        host = llmb_xstrndup(p, (size_t)((colon ? colon : end) - p));
        if (colon != NULL)
            port = llmb_xstrndup(colon + 1, (size_t)(end - colon - 1));
    }
    if (port != NULL)
        num = port[0] >= '0' && port[0] <= '9' ? strtol(port, &num_end, 10)
                                               : 0;
    if (host[0] == '\0' || num < 1 || num > 65535 ||
        (num_end != NULL && *num_end != '\0'))
        goto bad;
    *hp = llmb_hostport(host, (int)num);
    *path = llmb_xstrdup(slash == NULL || strcmp(slash, "/") == 0
                             ? "/healthz" : slash);
    free(host);
    free(port);
    return 0;

bad:
    *errstr = llmb_xasprintf("--coordinator: malformed URL \"%s\"; expected "
                             "http://HOST[:PORT][/PATH], PORT from 1 to "
                             "65535", url);
    free(host);
    free(port);
    return LLMB_EINVAL;
}

int llmb_http_url_check(const char *url, char **errstr)
{
    char *hp = NULL, *path = NULL;
    int rc = url_split(url, &hp, &path, errstr);

    free(hp);
    free(path);
    return rc;
}

/* Keeps the first RESPONSE_MAX bytes of the body in the llmb_buf. */
static size_t body_write(char *data, size_t size, size_t n, void *arg)
{
    struct llmb_buf *b = arg;
    size_t len = size * n;

    if (b->len < RESPONSE_MAX)
        llmb_buf_append(b, data, len < RESPONSE_MAX - b->len
                                     ? len : RESPONSE_MAX - b->len);
    return len;
}

int llmb_http_get(const char *url, int timeout_ms, int *status, char **body,
                  char **errstr)
{
    char *hp = NULL, *path = NULL, *full = NULL;
    char cerr[CURL_ERROR_SIZE] = "";
    struct llmb_buf resp;
    CURL *h = NULL;
    CURLcode cc;
    long code = 0, oserr = 0;
    int rc;

    *status = 0;
    *body = NULL;
    llmb_buf_init(&resp);
    rc = url_split(url, &hp, &path, errstr);
    if (rc != 0)
        goto out;
    if (llmb_curl_load(errstr) != 0) {
        rc = LLMB_EIO;
        goto out;
    }
    full = llmb_xasprintf("http://%s%s", hp, path);
    h = llmb_curl.easy_init();
    if (h == NULL) {
        *errstr = llmb_xstrdup("curl_easy_init failed");
        rc = LLMB_EIO;
        goto out;
    }
    llmb_curl.easy_setopt(h, CURLOPT_URL, full);
    llmb_curl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    /* a probe talks to the coordinator itself, never through a proxy
     * that the environment may name */
    llmb_curl.easy_setopt(h, CURLOPT_NOPROXY, "*");
    llmb_curl.easy_setopt(h, CURLOPT_USERAGENT, "llmb-health");
    llmb_curl.easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    llmb_curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    llmb_curl.easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    llmb_curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
    llmb_curl.easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    cc = llmb_curl.easy_perform(h);
    if (cerr[0] == '\0')
        snprintf(cerr, sizeof(cerr), "%s", llmb_curl.easy_strerror(cc));
    switch (cc) {
    case CURLE_OK:
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        *errstr = llmb_xasprintf("cannot resolve %s: %s", hp, cerr);
        rc = LLMB_EIO;
        goto out;
    case CURLE_COULDNT_CONNECT:
        llmb_curl.easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
        *errstr = llmb_xasprintf("cannot connect to %s: %s", hp,
                                 oserr != 0 ? strerror((int)oserr) : cerr);
        rc = LLMB_EIO;
        goto out;
    case CURLE_OPERATION_TIMEDOUT:
        *errstr = llmb_xasprintf("GET %s from %s: no answer in time", path,
                                 hp);
        rc = LLMB_ETIMEOUT;
        goto out;
    case CURLE_UNSUPPORTED_PROTOCOL: /* an HTTP/0.9 answer: no status line */
    case CURLE_WEIRD_SERVER_REPLY:
        *errstr = llmb_xasprintf("GET %s from %s: not an HTTP response",
                                 path, hp);
        rc = LLMB_EPROTO;
        goto out;
    default:
        *errstr = llmb_xasprintf("GET %s from %s: %s", path, hp, cerr);
        rc = LLMB_EIO;
        goto out;
    }
    llmb_curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    *status = (int)code;
    llmb_buf_append(&resp, "", 1); /* NUL-terminates */
    *body = llmb_xstrdup(resp.data);
    rc = 0;

out:
    if (h != NULL)
        llmb_curl.easy_cleanup(h);
    llmb_buf_fini(&resp);
    free(full);
    free(hp);
    free(path);
    return rc;
}
