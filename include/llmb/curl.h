/*
 * libcurl, loaded at run time rather than linked: a program maps libcurl
 * and its TLS, HTTP/2 and SSH libraries only when it first needs HTTP (the
 * worker when an LLM endpoint is configured, `llmb health --coordinator`),
 * so a worker without LLM endpoints stays a few MB smaller and every
 * binary starts without libcurl installed. Callers call curl through the
 * table below (llmb_curl.easy_setopt(...) where they would call
 * curl_easy_setopt(...)); <curl/curl.h> gives only the types and
 * constants.
 */
#ifndef LLMB_CURL_H
#define LLMB_CURL_H

#include <curl/curl.h>

struct llmb_curl_api {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *h);
    CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    CURLcode (*easy_perform)(CURL *h);
    const char *(*easy_strerror)(CURLcode rc);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_cleanup)(CURLM *m);
    CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
    CURLMcode (*multi_add_handle)(CURLM *m, CURL *h);
    CURLMcode (*multi_remove_handle)(CURLM *m, CURL *h);
    CURLMcode (*multi_assign)(CURLM *m, curl_socket_t s, void *p);
    CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t s, int ev,
                                     int *running);
    CURLMsg *(*multi_info_read)(CURLM *m, int *left);
    const char *(*multi_strerror)(CURLMcode rc);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
};

/* The table; valid after llmb_curl_load() returned 0. */
extern struct llmb_curl_api llmb_curl;

/* Loads libcurl (libcurl.so.4) and runs its global initialisation, once
 * per process (not thread-safe: call it before starting threads); later
 * calls return at once. Returns 0, or -1 with a malloc'd message in
 * *errstr ("cannot load libcurl (install libcurl4): ..."). */
int llmb_curl_load(char **errstr);

#endif
