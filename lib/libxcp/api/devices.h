/*
 * What the device classes (vbd.c, vif.c) share, from devices.c: a VM's
 * state as device operations see it and its device slots.
 */
#ifndef XCP_DEVICES_H
#define XCP_DEVICES_H

#include "storage.h"

/* Whether the VM vmref is running; if so, its domid and whether it is
 * HVM (either may be NULL). */
bool xcp__dev_running(xcp__ctx *c, const char *vmref, int64_t *domid,
                      bool *is_hvm);
/* VM_BAD_POWER_STATE for a device operation on vmref that needs `want`. */
int xcp__dev_bad_state(xcp__ctx *c, const char *vmref, const char *want);
/* The XenAPI error for a hypervisor driver's failure e: OPERATION_NOT_ALLOWED
 * [reason] for what the host cannot do (ENOTSUP), else INTERNAL_ERROR. */
int xcp__dev_hv_err(const xcp_hv_error *e);
/* Has the driver make host bridge `bridge` ready for a NIC to join (NULL
 * or "": none needed). BRIDGE_NOT_AVAILABLE [bridge] when it cannot be had,
 * the driver's reason in the log. */
int xcp__dev_bridge_ready(xcp__ctx *c, const char *bridge);
/* Whether one of the objects (class cls) in vm's set_field has dev in its
 * dev_field. */
bool xcp__dev_slot_used(xcp__ctx *c, xcp__obj *vm, int set_field, int cls,
                        int dev_field, const char *dev);
/* Whether s is a slot number, 0 <= s < max. */
bool xcp__dev_valid_slot(const char *s, int max);
/* The driver's view of VIF vif on network net: MAC, devid, MTU, and the
 * bridge, borrowed from net's row. */
void xcp__dev_nic(const xcp__obj *vif, const xcp__obj *net, xcp_hv_nic *n);
/* The driver's view of VBD vbd in a guest (HVM or not): its device name
 * (written to vdev), CD or disk, read-only, and the image of its VDI unless
 * empty (path holds its strings). Errors: those of xcp__vdi_path. */
int xcp__dev_disk(xcp__ctx *c, const xcp__obj *vbd, bool is_hvm,
                  xcp_hv_disk *d, xcp_sr_vdi_path *path, char vdev[16]);

#endif
