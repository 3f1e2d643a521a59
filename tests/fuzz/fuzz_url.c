/*
 * Fuzz target for the Redis URL parser (lib/url.c): parse, redact and
 * name the address of any text. A parsed URL must satisfy the documented
 * contract (a host or a socket path, port 1..65535 for TCP, db >= 0; a
 * Sentinel URL: no host, sentinels with ports and a primary's name), and
 * the redacted form must never contain the password.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <llmb/url.h>
#include <llmb/util.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = llmb_xmalloc(size + 1);
    struct llmb_redis_url u;
    char *err = NULL;

    memcpy(s, data, size);
    s[size] = '\0';
    free(llmb_redis_url_redacted(s));
    if (llmb_redis_url_parse(s, &u, &err) == 0) {
        if (u.db < 0)
            abort();
        if (u.sentinel) {
            /* The server is found through the sentinels: no host, at
             * least one sentinel with a port, and the primary's name. */
            if (u.host != NULL || u.nseeds == 0 || u.master_name == NULL ||
                u.master_name[0] == '\0')
                abort();
        } else if (u.socket_path == NULL &&
                   (u.host == NULL || u.port < 1 || u.port > 65535)) {
            abort();
        }
        for (size_t i = 0; i < u.nseeds; i++)
            if (u.seeds[i].port < 1 || u.seeds[i].port > 65535)
                abort();
        free(llmb_redis_url_address(&u));
        llmb_redis_url_fini(&u);
    } else if (err == NULL) {
        abort();
    }
    free(err);
    free(s);
    return 0;
}
