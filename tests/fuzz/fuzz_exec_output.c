/*
 * Fuzz target for the exec executor's output reader
 * (llmb_exec_output_parse in worker/executors/exec.c): any stdout of a
 * program that exited 0. A success must carry a JSON object, which is what
 * goes to Redis as the task result; an error must carry a message.
 */
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "executors/executors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct llmb_buf msg;
    json_error_t jerr;

    llmb_buf_init(&msg);
    if (llmb_exec_output_parse((const char *)data, size, &msg) ==
        LLMB_EXEC_OK) {
        json_t *j = json_loadb(msg.data, msg.len, 0, &jerr);
        if (!json_is_object(j))
            abort();
        json_decref(j);
    } else if (msg.len == 0) {
        abort();
    }
    llmb_buf_fini(&msg);
    return 0;
}
