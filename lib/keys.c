/*
 * Key names and the names that go into them (queues, job ids). The same
 * rules are enforced by lua/10-document.lua for documents pushed with
 * redis-cli; the client side checks them early to give the error before a
 * round trip.
 */
#include <string.h>

#include <llmb/keys.h>
#include <llmb/util.h>

static bool name_ok(const char *s, size_t max)
{
    size_t n = 0;

    if (s == NULL || *s == '\0')
        return false;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return n <= max;
}

bool llmb_queue_name_ok(const char *q)
{
    return name_ok(q, LLMB_QUEUE_NAME_MAX);
}

bool llmb_job_id_ok(const char *id)
{
    return name_ok(id, LLMB_JOB_ID_MAX);
}

bool llmb_worker_id_ok(const char *id)
{
    return name_ok(id, LLMB_WORKER_ID_MAX);
}

/* One wording for every tool, so that a name is refused alike wherever it
 * is given. */
char *llmb_name_refusal(const char *opt, const char *noun, const char *name,
                        int max)
{
    if (opt == NULL)
        return llmb_xasprintf("%s \"%s\" must be 1 to %d characters from "
                              "[A-Za-z0-9_.-]", noun, name, max);
    return llmb_xasprintf("%s must be a %s of 1 to %d characters from "
                          "[A-Za-z0-9_.-], got \"%s\"", opt, noun, max,
                          name);
}

char *llmb_key_queue(const char *prefix, const char *queue)
{
    return llmb_xasprintf("%s:{%s}", prefix, queue);
}

char *llmb_key_queue_sub(const char *prefix, const char *queue,
                         const char *suffix)
{
    return llmb_xasprintf("%s:{%s}:%s", prefix, queue, suffix);
}

char *llmb_key_global(const char *prefix, const char *name)
{
    return llmb_xasprintf("%s:%s", prefix, name);
}
