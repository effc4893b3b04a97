/*
 * hv/xen/xen_dev.h - device changes libxl has no single call for.
 */
#ifndef XCP_XEN_DEV_H
#define XCP_XEN_DEV_H

#include <stdint.h>
#include <libxl.h>
#include <xenstore.h>

/*
 * Changes the medium in CD drive want->vdev of PV or PVH domain domid
 * (libxl_cdrom_insert is for HVM only): the drive's device goes, and comes
 * back with the new medium unless want is empty (no pdev_path), as a
 * guest's blkfront sees a PV CD change. Returns 0 or libxl's error code,
 * with the failed call's name in *call.
 */
int xcp__xen_pv_cd_change(libxl_ctx *ctx, uint32_t domid,
                          libxl_device_disk *want, const char **call);

/*
 * Takes offline the qdisk back end of HVM domain domid's CD drive vdev if
 * QEMU never took it up (it is still Initialising: the drive was empty,
 * which QEMU's xen-block cannot open). The guest uses the emulated drive
 * (PV drivers ignore a PV CD on HVM); but QEMU (Debian 12's 7.2) tries
 * such a back end again at every change of its keys, and dereferences a
 * NULL drive, killing the guest's device model, when "params" is empty,
 * as libxl_cdrom_insert writes it while it changes the medium.
 */
void xcp__xen_hvm_cd_quiesce(struct xs_handle *xs, uint32_t domid,
                             const char *vdev);

#endif /* XCP_XEN_DEV_H */
