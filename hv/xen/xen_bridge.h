/*
 * hv/xen/xen_bridge.h - the Linux bridges in dom0 that the networks' VIFs
 * join: made by the driver when a NIC needs one, marked as its own, and
 * removed with their network when no port is left.
 */
#ifndef XCP_XEN_BRIDGE_H
#define XCP_XEN_BRIDGE_H

#include "hv_internal.h"

/*
 * Makes sure Linux bridge `name` exists and is up; one the driver creates
 * is marked as made by libxcp (its ifalias). NULL or "" is no bridge: 0.
 * -ENODEV when it cannot be had (not a bridge name, an interface of
 * another kind, or the kernel refuses), the reason in err.
 */
int xcp__xen_bridge_ensure(const char *name, xcp_hv_error *err);

/*
 * Removes bridge `name` if it carries libxcp's mark and has no port left;
 * 0 also when it is not there or not libxcp's (left alone). -EBUSY when
 * ports remain.
 */
int xcp__xen_bridge_remove(const char *name, xcp_hv_error *err);

#endif /* XCP_XEN_BRIDGE_H */
