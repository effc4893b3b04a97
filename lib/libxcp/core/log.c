/*
 * Logging. The library is quiet by default: messages at or below the level
 * in $XCP_LOG_LEVEL (err, warn, info, debug; default warn) go to stderr.
 * The daemon can later route them to syslog.
 */
#include "core.h"

#include <stdio.h>
#include <strings.h>
#include <time.h>

static int level_from_env(void)
{
    const char *s = getenv("XCP_LOG_LEVEL");

    if (!s)
        return XCP__LOG_WARN;
    if (!strcasecmp(s, "debug"))
        return XCP__LOG_DEBUG;
    if (!strcasecmp(s, "info"))
        return XCP__LOG_INFO;
    if (!strcasecmp(s, "err") || !strcasecmp(s, "error"))
        return XCP__LOG_ERR;
    return XCP__LOG_WARN;
}

void xcp__log(int level, const char *fmt, ...)
{
    static const char *const names[] = {
        [XCP__LOG_ERR] = "error", [XCP__LOG_WARN] = "warning",
        [XCP__LOG_INFO] = "info", [XCP__LOG_DEBUG] = "debug"};
    va_list ap;
    char line[1024];

    if (level > level_from_env())
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "libxcp %s: %s\n", names[level] ? names[level] : "log",
            line);
}

void xcp__trace(const char *fmt, ...)
{
    static int on = -1; /* a benign race: every thread finds the same */
    struct timespec ts;
    va_list ap;
    char line[512];

    if (on < 0)
        on = getenv("XCP_TRACE") && *getenv("XCP_TRACE");
    if (!on)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "libxcp trace: %lld.%06ld %s\n", (long long)ts.tv_sec,
            ts.tv_nsec / 1000, line);
}
