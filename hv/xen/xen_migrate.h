/*
 * hv/xen/xen_migrate.h - localhost live migration for the xen driver
 * (xen_migrate.c), and the few helpers of xen.c it borrows.
 */
#ifndef XCP_XEN_MIGRATE_H
#define XCP_XEN_MIGRATE_H

#include <stdint.h>

#include <libxl.h>

#include "hv_internal.h"

/* ---- lent by xen.c (self is the driver's handle) ------------------------ */

/* The driver's libxl context (thread-safe, shared by all callers). */
libxl_ctx *xcp__xen_ctx(void *self);

/*
 * Checks that domid is a guest (not dom0) that exists, and starts a new
 * collection of libxl's messages for the calling thread; -EPERM/-ESRCH.
 */
int xcp__xen_guest(void *self, uint32_t domid, const char *what,
                   xcp_hv_error *err);

/*
 * Sets err from libxl error rc of call on domid, with the messages libxl
 * logged on the calling thread; returns the errno-style code.
 */
int xcp__xen_libxl_fail(xcp_hv_error *err, int rc, const char *call,
                        uint32_t domid);

/* -ENOMEM, with figures, unless the host has need bytes free for uuid. */
int xcp__xen_check_fit(void *self, const char *uuid, uint64_t need,
                       xcp_hv_error *err);

/* Destroys domid and waits until Xen has let it go; marks it changed. */
int xcp__xen_destroy(void *self, uint32_t domid, xcp_hv_error *err);

/* Marks domid as changed, for the next event_read. */
void xcp__xen_mark(void *self, uint32_t domid);

/*
 * With XCP_XEN_TIMING set in the environment, logs "xen: timing: <what>
 * domain <domid> <seconds> s" on stderr (the daemon's log), the time since
 * t0_ns (CLOCK_MONOTONIC): how long a step took inside libxl, which the
 * benchmark subtracts from a whole call to find the toolstack's own share.
 * With XCP_TRACE set, also a line in the library's trace format (wall
 * clock stamp: core/log.c); t0_ns 0 marks a moment, not a step.
 */
void xcp__xen_timing(const char *what, uint32_t domid, uint64_t t0_ns);

/* CLOCK_MONOTONIC now, in ns. */
uint64_t xcp__xen_now_ns(void);

/* ---- xen_migrate.c ------------------------------------------------------ */

/*
 * The driver's domain_migrate_local slot (see include/xcp/sys/hv.h), as
 * `xl migrate localhost` does it: libxl's live save stream into one end of
 * a socket pair, a restore reading the other end on a second thread; the
 * sender is "<name>--migratedaway" and the receiver "<name>--incoming"
 * while both exist. On success the receiver has the name (unpaused unless
 * the sender was paused) and the sender is gone; on failure the sender
 * runs on as before and no receiver is left.
 */
int xcp__xen_domain_migrate_local(void *self, uint32_t domid,
                                  uint32_t *new_domid, xcp_hv_error *err);

#endif /* XCP_XEN_MIGRATE_H */
