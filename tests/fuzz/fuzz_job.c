/*
 * Fuzz target for the job document builder (lib/job.c). The input is split
 * at '\n' into the fields of struct llmb_job_args in their order (type,
 * queue, payload, priority, tasks, timeout_s, max_retries, delay_s, id,
 * backoff_ms, deadline_s); a field that is the single byte "~" is left
 * out (NULL). A document the builder accepts must be one JSON object whose
 * "type" is the type given: anything else aborts. Integers of any size are
 * read as reals, as the builder checks the payload (it is spliced in byte
 * for byte, so 1e400-sized integers stay as the user wrote them).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <llmb/job.h>
#include <llmb/util.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *f[11] = {NULL};
    char *copy = llmb_xmalloc(size + 1);
    char *p = copy, *nl;
    struct llmb_job_args a;
    struct llmb_buf out;
    char *err = NULL;

    memcpy(copy, data, size);
    copy[size] = '\0';
    for (size_t i = 0; i < 11 && p != NULL; i++) {
        nl = strchr(p, '\n');
        if (nl != NULL)
            *nl = '\0';
        f[i] = strcmp(p, "~") == 0 ? NULL : p;
        p = nl != NULL ? nl + 1 : NULL;
    }
    a = (struct llmb_job_args){f[0], f[1], f[2], f[3], f[4], f[5],
                               f[6], f[7], f[8], f[9], f[10]};
    llmb_buf_init(&out);
    if (llmb_job_doc_build(&a, &out, &err) == 0) {
        json_error_t jerr;
        json_t *doc = json_loadb(out.data, out.len, JSON_DECODE_INT_AS_REAL,
                                 &jerr);
        if (!json_is_object(doc) ||
            strcmp(json_string_value(json_object_get(doc, "type")),
                   a.type) != 0)
            abort();
        json_decref(doc);
    } else if (err == NULL || out.len != 0) {
        abort();
    }
    free(err);
    llmb_buf_fini(&out);
    free(copy);
    return 0;
}
