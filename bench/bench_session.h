/*
 * bench_session.h - what the public-API benches (bench_vms.c,
 * bench_cbt.c) share: a local session on a state directory and the
 * report of a failed call.  Header-only; define BENCH_NAME first.
 */
#ifndef XCP_BENCH_SESSION_H
#define XCP_BENCH_SESSION_H

#include <xcp/xcp.h>

#include <stdio.h>
#include <string.h>

/* Print "<BENCH_NAME>: what: ERROR [params]" and return 1 (exit code). */
static inline int die_api(const char *what)
{
    const xcp_error *e = xcp_error_last();
    size_t i;

    fprintf(stderr, "%s: %s: %s", BENCH_NAME, what, e ? e->name : "?");
    for (i = 0; e && i < e->nparams; i++)
        fprintf(stderr, " [%s]", e->params[i]);
    fprintf(stderr, "\n");
    return 1;
}

/* The embedded engine on state directory dir. */
static inline int open_dir(xcp_session **s, const char *dir)
{
    xcp_open_options o;

    memset(&o, 0, sizeof(o));
    o.version = XCP_OPEN_OPTIONS_VERSION;
    o.state_dir = dir;
    o.originator = BENCH_NAME;
    return xcp_session_open_local(s, &o);
}

#endif
