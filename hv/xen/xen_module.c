/*
 * hv/xen/xen_module.c - the xen driver is a module of its own
 * (xcp-hv-xen.so, linked with the Xen libraries): this is the one symbol
 * it exports, which hv/hv.c's registry looks up after dlopening it.
 */
#ifdef XCP_HAVE_XEN

#include "hv_internal.h"

XCP__HV_MODULE_EXPORT const xcp_hv_driver *xcp__hv_module(void);

const xcp_hv_driver *xcp__hv_module(void)
{
    return &xcp__hv_xen_driver;
}

#else
typedef int xcp__hv_xen_module_not_built;
#endif /* XCP_HAVE_XEN */
