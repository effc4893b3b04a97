/*
 * hv/xen/xen_dev.c - device changes libxl has no single call for
 * (xen_dev.h): a PV or PVH guest's CD change.
 */
#ifdef XCP_HAVE_XEN

#include "xen_dev.h"

#include <libxl_utils.h>

int xcp__xen_pv_cd_change(libxl_ctx *ctx, uint32_t domid,
                          libxl_device_disk *want, const char **call)
{
    libxl_device_disk old;
    int rc = 0;

    libxl_device_disk_init(&old);
    if (libxl_vdev_to_device_disk(ctx, domid, want->vdev, &old) == 0) {
        *call = "libxl_device_disk_remove";
        rc = libxl_device_disk_remove(ctx, domid, &old, NULL);
    }
    libxl_device_disk_dispose(&old);
    if (rc == 0 && want->pdev_path && *want->pdev_path) {
        *call = "libxl_device_disk_add";
        rc = libxl_device_disk_add(ctx, domid, want, NULL);
    }
    return rc;
}

#else
/* ISO C wants something in every translation unit. */
typedef int xcp__hv_xen_dev_not_built;
#endif /* XCP_HAVE_XEN */
