/*
 * Times for people: durations with two units at most ("3m04s"), ages
 * ("3s ago") and UTC timestamps. Every function writes into a caller's
 * buffer of LLMB_HUMAN_LEN bytes and returns it, so a table row can use
 * several without allocating.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin.h"

char *llmb_human_duration(int64_t ms, char *buf)
{
    int64_t s, m, h, d;

    if (ms < 0)
        ms = 0;
    s = ms / 1000;
    m = s / 60;
    h = m / 60;
    d = h / 24;
    if (ms < 1000)
        snprintf(buf, LLMB_HUMAN_LEN, "%lldms", (long long)ms);
    else if (ms < 10000)
        snprintf(buf, LLMB_HUMAN_LEN, "%lld.%llds", (long long)s,
                 (long long)(ms % 1000 / 100));
    else if (s < 60)
        snprintf(buf, LLMB_HUMAN_LEN, "%llds", (long long)s);
    else if (m < 60)
        snprintf(buf, LLMB_HUMAN_LEN, "%lldm%02llds", (long long)m,
                 (long long)(s % 60));
    else if (h < 24)
        snprintf(buf, LLMB_HUMAN_LEN, "%lldh%02lldm", (long long)h,
                 (long long)(m % 60));
    else
        snprintf(buf, LLMB_HUMAN_LEN, "%lldd%02lldh", (long long)d,
                 (long long)(h % 24));
    return buf;
}

char *llmb_human_ago(int64_t now_ms, int64_t then_ms, char *buf)
{
    char d[LLMB_HUMAN_LEN];

    if (then_ms <= 0)
        snprintf(buf, LLMB_HUMAN_LEN, "-");
    else if (then_ms > now_ms)
        snprintf(buf, LLMB_HUMAN_LEN, "in %s",
                 llmb_human_duration(then_ms - now_ms, d));
    else
        snprintf(buf, LLMB_HUMAN_LEN, "%s ago",
                 llmb_human_duration(now_ms - then_ms, d));
    return buf;
}

char *llmb_human_time(int64_t now_ms, int64_t ms, char *buf)
{
    char ago[LLMB_HUMAN_LEN];
    time_t t;
    struct tm tm;

    if (ms <= 0) {
        snprintf(buf, LLMB_HUMAN_LEN, "-");
        return buf;
    }
    t = (time_t)(ms / 1000);
    gmtime_r(&t, &tm);
    /* Built in two steps: the year alone could take 11 characters as far
     * as the compiler knows, which leaves no room for the age. */
    strftime(buf, LLMB_HUMAN_LEN, "%Y-%m-%d %H:%M:%SZ", &tm);
    llmb_human_ago(now_ms, ms, ago);
    if (strlen(buf) + strlen(ago) + 4 <= LLMB_HUMAN_LEN) {
        strcat(buf, " (");
        strcat(buf, ago);
        strcat(buf, ")");
    }
    return buf;
}
