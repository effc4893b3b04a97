/*
 * hv/xen/xen_dev.c - device changes libxl has no single call for
 * (xen_dev.h): a PV or PVH guest's CD change, an HVM guest's empty CD
 * kept from QEMU's qdisk.
 */
#ifdef XCP_HAVE_XEN

#include "xen_dev.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Does xenstore's dir/key read want? */
static bool xs_is(struct xs_handle *xs, const char *dir, const char *key,
                  const char *want)
{
    char path[256], *v;
    unsigned int len;
    bool yes;

    snprintf(path, sizeof(path), "%s/%s", dir, key);
    v = xs_read(xs, XBT_NULL, path, &len);
    yes = v && strcmp(v, want) == 0;
    free(v);
    return yes;
}

void xcp__xen_hvm_cd_quiesce(struct xs_handle *xs, uint32_t domid,
                             const char *vdev)
{
    char path[256], **devs, *be;
    unsigned int n = 0, i, len;

    snprintf(path, sizeof(path), "/local/domain/%" PRIu32 "/device/vbd",
             domid);
    devs = xs_directory(xs, XBT_NULL, path, &n);
    for (i = 0; devs && i < n; i++) {
        snprintf(path, sizeof(path),
                 "/local/domain/%" PRIu32 "/device/vbd/%s/backend", domid,
                 devs[i]);
        if (!(be = xs_read(xs, XBT_NULL, path, &len)))
            continue;
        /* XenbusStateInitialising: no back end ever took it up */
        if (strstr(be, "/backend/qdisk/") && xs_is(xs, be, "dev", vdev) &&
            xs_is(xs, be, "state", "1")) {
            snprintf(path, sizeof(path), "%s/online", be);
            xs_write(xs, XBT_NULL, path, "0", 1);
        }
        free(be);
    }
    free(devs);
}

#else
/* ISO C wants something in every translation unit. */
typedef int xcp__hv_xen_dev_not_built;
#endif /* XCP_HAVE_XEN */
