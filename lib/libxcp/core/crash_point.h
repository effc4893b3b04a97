/*
 * crash_point.h - crash points for the tests of crash safety, header-only
 * so that the standalone image libraries (sr/qcow2*.c, built alone by the
 * fuzzers) can place them without linking the core.
 */
#ifndef XCP_CORE_CRASH_POINT_H
#define XCP_CORE_CRASH_POINT_H

#include <signal.h>
#include <stdlib.h>
#include <string.h>

/*
 * A crash point: when XCP_CRASH_AT names point (exactly), the process
 * kills itself there with SIGKILL, as a kill -9 at that instant would
 * (nothing flushed, no handler run); otherwise nothing happens.  Points
 * are named "<module>:<step>" after the step just done (e.g.
 * "file:leaf-renamed"); each is listed where it is placed.
 */
static inline void xcp__crash_point(const char *point)
{
    const char *at = getenv("XCP_CRASH_AT");

    if (at && !strcmp(at, point))
        raise(SIGKILL);
}

#endif /* XCP_CORE_CRASH_POINT_H */
