/*
 * hv/xen/xen_dev.h - device changes libxl has no single call for.
 */
#ifndef XCP_XEN_DEV_H
#define XCP_XEN_DEV_H

#include <stdint.h>
#include <libxl.h>

/*
 * Changes the medium in CD drive want->vdev of PV or PVH domain domid
 * (libxl_cdrom_insert is for HVM only): the drive's device goes, and comes
 * back with the new medium unless want is empty (no pdev_path), as a
 * guest's blkfront sees a PV CD change. Returns 0 or libxl's error code,
 * with the failed call's name in *call.
 */
int xcp__xen_pv_cd_change(libxl_ctx *ctx, uint32_t domid,
                          libxl_device_disk *want, const char **call);

#endif /* XCP_XEN_DEV_H */
