/*
 * hv/xen/xen_log.h - the xen driver's xentoollog logger: what libxl and
 * libxenctrl log goes on to a stdio stream (the daemon's log) as before,
 * and the error messages are also kept, per thread, so a failed call can
 * carry libxl's own words to the caller instead of leaving them on stderr.
 */
#ifndef XCP_XEN_LOG_H
#define XCP_XEN_LOG_H

#include <stdio.h>
#include <xentoollog.h>

/*
 * A logger writing messages of level >= XTL_ERROR (and keeping them) to
 * stream, or from the level that the environment's XCP_XEN_LOG_LEVEL
 * names ("debug", "verbose", ..., "error"; dated then: libxl's debug
 * messages show where a domain's build spends its time); NULL when out
 * of memory. Free it with xtl_logger_destroy().
 * Usable from any thread: each thread keeps its own messages.
 */
xentoollog_logger *xcp__xen_log_new(FILE *stream);

/* Forgets the calling thread's kept messages: call before a libxl call. */
void xcp__xen_log_reset(void);

/*
 * The error messages the calling thread's libxl/libxc calls logged since
 * the last reset, "; "-separated, as "file:line:function: text[: errno
 * text]" (truncated if very long); "" if none. Valid until the thread's
 * next logging or reset.
 */
const char *xcp__xen_log_errors(void);

#endif /* XCP_XEN_LOG_H */
