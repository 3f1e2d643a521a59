/*
 * Names for enum llmb_err, for log lines and messages that have nothing more
 * specific to say. Everything that can be more specific returns its own
 * errstr instead.
 */
#include <llmb/err.h>

/* Returns a static string describing err; unknown codes get a generic one. */
const char *llmb_strerror(int err)
{
    switch (err) {
    case LLMB_OK: return "success";
    case LLMB_EINVAL: return "invalid argument";
    case LLMB_EIO: return "I/O error";
    case LLMB_EREDIS: return "redis error";
    case LLMB_ENOTFOUND: return "not found";
    case LLMB_ETIMEOUT: return "timed out";
    case LLMB_EPROTO: return "protocol error";
    case LLMB_ECONFIG: return "configuration error";
    case LLMB_EVERSION: return "version mismatch";
    case LLMB_EAUTH: return "credentials refused";
    default: return "unknown error";
    }
}
