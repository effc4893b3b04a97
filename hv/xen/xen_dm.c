/*
 * hv/xen/xen_dm.c - when the xen driver builds a domain again because
 * libxl gave up waiting for its device model to start (xen_dm.h).
 */
#ifdef XCP_HAVE_XEN

#include "xen_dm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxl.h>

#define TRIES_MAX 100

unsigned xcp__xen_dm_start_tries(void)
{
    const char *v = getenv("XCP_XEN_DM_START_TRIES");
    char *end;
    long n;

    if (!v || !*v)
        return XCP_XEN_DM_START_TRIES_DEFAULT;
    n = strtol(v, &end, 10);
    if (*end || n < 1 || n > TRIES_MAX)
        return XCP_XEN_DM_START_TRIES_DEFAULT;
    return (unsigned)n;
}

bool xcp__xen_dm_timed_out(const char *libxl_errors)
{
    /* libxl_create.c's domcreate_devmodel_started, after either wait
     * (the spawn's or the QMP set-up's) ran out */
    char want[64];
    const char *p;
    size_t n;

    if (!libxl_errors)
        return false;
    n = (size_t)snprintf(want, sizeof(want),
                         "device model did not start: %d", ERROR_TIMEDOUT);
    for (p = libxl_errors; (p = strstr(p, want)); p += n)
        if (p[n] < '0' || p[n] > '9') /* not -90... */
            return true;
    return false;
}

#else
/* ISO C wants something in every translation unit. */
typedef int xcp__hv_xen_dm_not_built;
#endif /* XCP_HAVE_XEN */
