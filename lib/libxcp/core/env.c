/*
 * Settings from the environment: strings with a default, counts or
 * durations that fail with INVALID_VALUE when they are not numbers (the
 * crash points of the crash-safety tests are in crash_point.h).
 */
#include "core.h"

#include <errno.h>

const char *xcp__env_str(const char *name, const char *dflt)
{
    const char *v = getenv(name);

    return v && *v ? v : dflt;
}

int xcp__env_int(const char *name, int64_t dflt, int64_t *out)
{
    const char *s = getenv(name);
    char *end;
    long long v;

    *out = dflt;
    if (!s || !*s)
        return 0;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v < 0)
        return XCP__ERR_INVALID_VALUE(name, s);
    *out = v;
    return 0;
}
