/*
 * Fuzz target for the Redis URL parser (lib/url.c): parse, redact and
 * name the address of any text. A parsed URL must satisfy the documented
 * contract (a host or a socket path, port 1..65535 for TCP, db >= 0), and
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
        if (u.db < 0 || (u.socket_path == NULL &&
                         (u.host == NULL || u.port < 1 || u.port > 65535)))
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
