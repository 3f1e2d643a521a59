/*
 * The llm executor's endpoints: where requests go is worker
 * configuration, never job data. Each --llm-endpoint value names one
 * OpenAI-compatible server,
 *
 *     NAME=BASE_URL[,key_env=VAR][,client=llmb|libcurl]
 *     NAME=BASE_URL;key_env=VAR;client=...     (the same)
 *
 * The option is a list split on commas, so the first form arrives here as
 * two values, "NAME=BASE_URL" and "key_env=VAR"; a value that is only an
 * attribute belongs to the endpoint before it. BASE_URL is the base the
 * OpenAI SDKs take (https://api.openai.com/v1): requests go to
 * BASE_URL/chat/completions and BASE_URL/completions; a URL with no path
 * (http://127.0.0.1:8000) gets /v1 added.
 *
 * client= says which HTTP client sends the requests: llmb's own
 * (llm_conn.c), the default where it can (llmb_llm_exch_fits: plain
 * http://, no user in the URL, no proxy in the environment), or libcurl.
 *
 * The API key is read once, at start, from the worker's environment
 * variable VAR, and lives only in this process's memory: it is sent in
 * the Authorization header and scrubbed from any error text a server
 * echoes. A key_env whose variable is unset or empty stops the worker at
 * start (exit 78), like any handler that cannot start.
 */
#include <stdlib.h>
#include <string.h>

#include <llmb/err.h>

#include "llm.h"

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char_ok(s[i]))
            return false;
    return true;
}

static bool env_name_ok(const char *s)
{
    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') ||
          s[0] == '_'))
        return false;
    for (const char *p = s + 1; *p != '\0'; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

static void endpoint_fini(struct llmb_llm_endpoint *ep)
{
    if (ep->key != NULL)
        explicit_bzero(ep->key, strlen(ep->key));
    if (ep->auth_header != NULL)
        explicit_bzero(ep->auth_header, strlen(ep->auth_header));
    free(ep->name);
    free(ep->base);
    free(ep->chat_url);
    free(ep->text_url);
    free(ep->key_env);
    free(ep->key);
    free(ep->auth_header);
    memset(ep, 0, sizeof(*ep));
}

void llmb_llm_endpoints_fini(struct llmb_llm_endpoints *eps)
{
    for (size_t i = 0; i < eps->n; i++)
        endpoint_fini(&eps->v[i]);
    free(eps->v);
    eps->v = NULL;
    eps->n = 0;
}

const struct llmb_llm_endpoint *
llmb_llm_endpoints_find(const struct llmb_llm_endpoints *eps,
                        const char *name)
{
    for (size_t i = 0; i < eps->n; i++)
        if (strcmp(eps->v[i].name, name) == 0)
            return &eps->v[i];
    return NULL;
}

/* Applies "client=llmb|libcurl" (the value in v) to ep. */
static int client_attribute(struct llmb_llm_endpoint *ep, const char *v,
                            char **errstr)
{
    if (ep->client_set) {
        *errstr = llmb_xasprintf("--llm-endpoint %s: client given twice",
                                 ep->name);
        return -1;
    }
    ep->client_set = true;
    if (strcmp(v, "libcurl") == 0) {
        ep->own = false;
        return 0;
    }
    if (strcmp(v, "llmb") != 0) {
        *errstr = llmb_xasprintf("--llm-endpoint %s: client must be llmb or "
                                 "libcurl, got \"%s\"", ep->name, v);
        return -1;
    }
    if (!llmb_llm_exch_fits(ep->base)) {
        *errstr = llmb_xasprintf("--llm-endpoint %s: client=llmb speaks "
                                 "plain http:// without a user or password "
                                 "in the URL and without a proxy "
                                 "(http_proxy, all_proxy); use libcurl for "
                                 "\"%s\"", ep->name, ep->base);
        return -1;
    }
    ep->own = true;
    return 0;
}

/* The attributes that may follow NAME=BASE_URL, which no endpoint may
 * therefore be named. */
static const char *const ATTRIBUTES[] = {"key_env", "client"};

/* Whether the len bytes at s are the name of an attribute. */
static bool is_attribute(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof(ATTRIBUTES) / sizeof(ATTRIBUTES[0]); i++)
        if (strlen(ATTRIBUTES[i]) == len && memcmp(s, ATTRIBUTES[i], len) == 0)
            return true;
    return false;
}

/* Applies one attribute "key_env=VAR" or "client=..." (len bytes of a)
 * to ep. Returns 0, or -1 with *errstr. */
static int attribute(struct llmb_llm_endpoint *ep, const char *spec,
                     const char *a, size_t len, char **errstr)
{
    char *text = llmb_xstrndup(a, len);
    char *eq = strchr(text, '=');
    int rc = -1;

    if (eq != NULL && (size_t)(eq - text) == 6 &&
        strncmp(text, "client", 6) == 0) {
        rc = client_attribute(ep, eq + 1, errstr);
    } else if (eq == NULL || (size_t)(eq - text) != 7 ||
        strncmp(text, "key_env", 7) != 0) {
        *errstr = llmb_xasprintf("--llm-endpoint \"%s\": unknown attribute "
                                 "\"%s\" (known: key_env=VAR, "
                                 "client=llmb|libcurl)", spec, text);
    } else if (!env_name_ok(eq + 1)) {
        *errstr = llmb_xasprintf("--llm-endpoint \"%s\": key_env must name "
                                 "an environment variable "
                                 "([A-Za-z_][A-Za-z0-9_]*), got \"%s\"",
                                 spec, eq + 1);
    } else if (ep->key_env != NULL) {
        *errstr = llmb_xasprintf("--llm-endpoint %s: key_env given twice",
                                 ep->name);
    } else {
        const char *v = getenv(eq + 1);
        if (v == NULL || v[0] == '\0') {
            *errstr = llmb_xasprintf("--llm-endpoint %s: the environment "
                                     "variable %s (key_env) is not set in "
                                     "the worker's environment", ep->name,
                                     eq + 1);
        } else {
            ep->key_env = llmb_xstrdup(eq + 1);
            ep->key = llmb_xstrdup(v);
            ep->auth_header = llmb_xasprintf("Authorization: Bearer %s", v);
            rc = 0;
        }
    }
    free(text);
    return rc;
}

/* Fills ep from "NAME=BASE_URL" (len bytes of s). Returns 0, or -1 with
 * *errstr. */
static int name_url(struct llmb_llm_endpoint *ep, const char *spec,
                    const char *s, size_t len, char **errstr)
{
    const char *eq = memchr(s, '=', len);
    const char *url, *host, *path;
    size_t ulen;

    if (eq == NULL || eq == s || eq + 1 == s + len) {
        *errstr = llmb_xasprintf("--llm-endpoint \"%s\" must be "
                                 "NAME=BASE_URL[,key_env=VAR], as in "
                                 "openai=https://api.openai.com/v1,"
                                 "key_env=OPENAI_API_KEY", spec);
        return -1;
    }
    if (!name_ok(s, (size_t)(eq - s)) || is_attribute(s, (size_t)(eq - s))) {
        *errstr = llmb_xasprintf("--llm-endpoint \"%s\": the name must be 1 "
                                 "to 64 characters from [A-Za-z0-9_.-] and "
                                 "not key_env or client", spec);
        return -1;
    }
    url = eq + 1;
    ulen = len - (size_t)(url - s);
    while (ulen > 0 && url[ulen - 1] == '/')
        ulen--;
    ep->name = llmb_xstrndup(s, (size_t)(eq - s));
    ep->base = llmb_xstrndup(url, ulen);
    if (strncmp(ep->base, "http://", 7) == 0)
        host = ep->base + 7;
    else if (strncmp(ep->base, "https://", 8) == 0)
        host = ep->base + 8;
    else {
        *errstr = llmb_xasprintf("--llm-endpoint %s: the base URL must start "
                                 "with http:// or https://, got \"%s\"",
                                 ep->name, ep->base);
        return -1;
    }
    if (host[0] == '\0' || host[0] == '/') {
        *errstr = llmb_xasprintf("--llm-endpoint %s: the base URL \"%s\" has "
                                 "no host", ep->name, ep->base);
        return -1;
    }
    path = strchr(host, '/');
    if (strpbrk(host, "?# ") != NULL) {
        *errstr = llmb_xasprintf("--llm-endpoint %s: the base URL \"%s\" must "
                                 "not hold a query, fragment or space",
                                 ep->name, ep->base);
        return -1;
    }
    /* plain HTTP goes through llmb's own client unless told otherwise */
    ep->own = llmb_llm_exch_fits(ep->base);
    ep->chat_url = llmb_xasprintf("%s%s/chat/completions", ep->base,
                                  path == NULL ? "/v1" : "");
    ep->text_url = llmb_xasprintf("%s%s/completions", ep->base,
                                  path == NULL ? "/v1" : "");
    return 0;
}

/* Adds the endpoint of one value "NAME=BASE_URL[;key_env=VAR]". */
static int endpoint_add(struct llmb_llm_endpoints *eps, const char *spec,
                        char **errstr)
{
    struct llmb_llm_endpoint *ep;
    const char *p = spec;
    size_t k = strcspn(p, ";");

    eps->v = llmb_xrealloc(eps->v, (eps->n + 1) * sizeof(*eps->v));
    ep = &eps->v[eps->n];
    memset(ep, 0, sizeof(*ep));
    if (name_url(ep, spec, p, k, errstr) != 0) {
        endpoint_fini(ep);
        return -1;
    }
    if (llmb_llm_endpoints_find(eps, ep->name) != NULL) {
        *errstr = llmb_xasprintf("--llm-endpoint: the name \"%s\" is given "
                                 "twice", ep->name);
        endpoint_fini(ep);
        return -1;
    }
    for (p += k; *p == ';'; p += k) {
        p++;
        k = strcspn(p, ";");
        if (k == 0)
            continue;
        if (attribute(ep, spec, p, k, errstr) != 0) {
            endpoint_fini(ep);
            return -1;
        }
    }
    eps->n++;
    return 0;
}

int llmb_llm_endpoints_parse(struct llmb_llm_endpoints *eps,
                             const struct llmb_strlist *specs, char **errstr)
{
    eps->v = NULL;
    eps->n = 0;
    for (size_t i = 0; specs != NULL && i < specs->n; i++) {
        const char *s = specs->v[i];
        int rc;

        const char *eq = strchr(s, '=');

        /* (client=http://... names an endpoint, which is refused) */
        if (eq != NULL && is_attribute(s, (size_t)(eq - s)) &&
            strstr(eq, "://") == NULL) {
            /* The tail of "NAME=URL,key_env=VAR" after the list split. */
            if (eps->n == 0) {
                *errstr = llmb_xasprintf("--llm-endpoint \"%s\": an attribute "
                                         "must follow NAME=BASE_URL", s);
                rc = -1;
            } else {
                rc = attribute(&eps->v[eps->n - 1], s, s, strlen(s), errstr);
            }
        } else {
            rc = endpoint_add(eps, s, errstr);
        }
        if (rc != 0) {
            llmb_llm_endpoints_fini(eps);
            return LLMB_ECONFIG;
        }
    }
    return 0;
}

void llmb_llm_endpoint_scrub(const struct llmb_llm_endpoint *ep, char *s)
{
    size_t n;
    char *at;

    if (ep == NULL || ep->key == NULL || s == NULL)
        return;
    n = strlen(ep->key);
    while ((at = strstr(s, ep->key)) != NULL)
        memset(at, '*', n);
}
