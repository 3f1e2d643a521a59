/*
 * The log line writer behind llmb_log(). Every process logs to stderr and
 * leaves routing to whoever runs it (systemd, docker, a terminal); one line
 * per event, written with one write(2) so lines of concurrent processes
 * sharing a pipe do not interleave.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <llmb/err.h>
#include <llmb/log.h>
#include <llmb/util.h>

#define LOG_MAX_MESSAGE (16 * 1024)

enum llmb_log_level llmb_log_threshold = LLMB_LOG_INFO;

static char log_role[32] = "llmb";

void llmb_log_init(const char *role, enum llmb_log_level level)
{
    if (role != NULL && *role != '\0')
        snprintf(log_role, sizeof(log_role), "%s", role);
    llmb_log_threshold = level;
}

int llmb_log_level_parse(const char *s, enum llmb_log_level *out)
{
    if (s == NULL)
        return LLMB_EINVAL;
    if (strcasecmp(s, "debug") == 0)
        *out = LLMB_LOG_DEBUG;
    else if (strcasecmp(s, "info") == 0)
        *out = LLMB_LOG_INFO;
    else if (strcasecmp(s, "warn") == 0 || strcasecmp(s, "warning") == 0)
        *out = LLMB_LOG_WARN;
    else if (strcasecmp(s, "error") == 0)
        *out = LLMB_LOG_ERROR;
    else
        return LLMB_EINVAL;
    return LLMB_OK;
}

const char *llmb_log_level_name(enum llmb_log_level level)
{
    switch (level) {
    case LLMB_LOG_DEBUG: return "debug";
    case LLMB_LOG_INFO: return "info";
    case LLMB_LOG_WARN: return "warn";
    case LLMB_LOG_ERROR: return "error";
    }
    return "?";
}

/* Writes all of s; a short write is continued (it only happens for lines
 * beyond PIPE_BUF or on a signal). Errors are ignored: there is nowhere
 * left to report them. */
static void write_all(const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, s, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        s += n;
        len -= (size_t)n;
    }
}

void llmb_log_vwrite(enum llmb_log_level lvl, const char *prefix,
                     const char *fmt, va_list ap)
{
    int saved_errno = errno;
    struct llmb_buf b;
    struct timespec ts;
    struct tm tm;
    char when[32];
    size_t start;

    if (lvl < llmb_log_threshold)
        return;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

    llmb_buf_init(&b);
    llmb_buf_appendf(&b, "%s.%03ldZ %s %s[%ld]: ", when, ts.tv_nsec / 1000000,
                     llmb_log_level_name(lvl), log_role, (long)getpid());
    start = b.len;
    if (prefix != NULL)
        llmb_buf_appendf(&b, "%s", prefix);
    llmb_buf_vappendf(&b, fmt, ap);

    if (b.len - start > LOG_MAX_MESSAGE) {
        b.len = start + LOG_MAX_MESSAGE;
        llmb_buf_append(&b, "...", 3);
    }
    for (size_t i = start; i < b.len; i++) {
        unsigned char c = (unsigned char)b.data[i];
        if (c < 0x20 || c == 0x7f)
            b.data[i] = ' ';
    }
    /* a message that ended its own line (a library's) does not end in
     * spaces */
    while (b.len > start && b.data[b.len - 1] == ' ')
        b.len--;
    llmb_buf_append(&b, "\n", 1);
    write_all(b.data, b.len);
    llmb_buf_fini(&b);
    errno = saved_errno;
}

void llmb_log_write(enum llmb_log_level lvl, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    llmb_log_vwrite(lvl, NULL, fmt, ap);
    va_end(ap);
}
