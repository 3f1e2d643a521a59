/*
 * Fuzz target for the task result aggregator (lib/aggregate.c). The input
 * is split at '\n' into task results, each fed to llmb_agg_add_text() as
 * the coordinator does, with small limits so that the field cap and the
 * reservoir sampling run too. The summary must be a JSON object whose
 * every field has min <= p50 <= p90 <= p99 <= max (NaN aside).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <llmb/aggregate.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct llmb_agg_limits lim = {8, 16};
    struct llmb_agg *agg = llmb_agg_new(&lim);
    const char *p = (const char *)data, *end = p + size;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        llmb_agg_add_text(agg, p, n);
        p += n + 1;
    }
    for (size_t i = 0; i < llmb_agg_nfields(agg); i++) {
        const char *path = NULL;
        struct llmb_agg_stats s;
        if (llmb_agg_field(agg, i, &path, &s) != 0 || path == NULL)
            abort();
        if (!isnan(s.p50) && !isnan(s.min) && !isnan(s.max) &&
            (s.min > s.p50 || s.p50 > s.p90 || s.p90 > s.p99 ||
             s.p99 > s.max))
            abort();
    }
    json_t *j = llmb_agg_fields_json(agg, 1000);
    if (!json_is_object(j))
        abort();
    char *text = json_dumps(j, JSON_COMPACT);
    free(text);
    json_decref(j);
    llmb_agg_free(agg);
    return 0;
}
