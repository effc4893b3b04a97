/*
 * The one way this library fills a caller's xcp__cluster_err.
 */
#include "cluster.h"

#include <stdarg.h>
#include <stdio.h>

int xcp__cluster_fail(xcp__cluster_err *err, int rc, const char *fmt, ...)
{
    va_list ap;

    if (err) {
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return rc;
}
