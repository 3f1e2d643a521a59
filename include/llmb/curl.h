/*
 * libcurl, loaded when the first LLM endpoint is configured rather than
 * linked: a worker that serves no LLM endpoint maps none of libcurl and its
 * TLS, HTTP/2 and SSH libraries, and stays a few MB smaller. The llm
 * executor calls curl through the table below (llmb_curl.easy_setopt(...)
 * where it would call curl_easy_setopt(...)); <curl/curl.h> gives only the
 * types and constants.
 */
#ifndef LLMB_LLM_CURL_H
#define LLMB_LLM_CURL_H

#include <curl/curl.h>

struct llmb_curl_api {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *h);
    CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
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
 * per process; later calls return at once. Returns 0, or -1 with a
 * malloc'd message in *errstr (e.g. libcurl4 is not installed). */
int llmb_curl_load(char **errstr);

#endif
