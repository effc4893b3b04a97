/*
 * hv/xen/xen_qdisk.h - the qdisk back end (QEMU's "xenpv" machine) of a
 * domain that was built without one, started when a disk that needs it is
 * hot-plugged.
 */
#ifndef XCP_XEN_QDISK_H
#define XCP_XEN_QDISK_H

#include <stdint.h>
#include <libxl.h>
#include <xenstore.h>

#include "hv_internal.h"

/*
 * Makes sure that disk vdev of domain domid, just added through libxl, has
 * a back end serving it. libxl gives qcow2 and VHD images (and whatever
 * it cannot hand to blkback) to QEMU's qdisk back end, but starts that
 * QEMU only when it builds a domain with such a disk: for one hot-plugged
 * later into a domain with no device model it writes the back end's
 * xenstore entries and returns, and nothing ever serves them. This starts
 * the QEMU libxl would have started (detached, in its own session, its
 * output in /var/log/xen/qemu-dm-<name>.log), records its pid where libxl
 * looks for a domain's device model (so libxl's later plugs use it and
 * libxl_domain_destroy kills it), and waits until it runs. 0 also when
 * nothing was needed (not a qdisk disk, or a device model is there).
 * vdev NULL: before the add of a disk that asks libxl for qdisk itself
 * (libxl refuses that without a device model: "device model required but
 * not running"), start one unless there is one.
 * Where the QEMU binary is: XCP_XEN_QEMU, else the usual places.
 */
int xcp__xen_qdisk_ensure(libxl_ctx *ctx, struct xs_handle *xs,
                          uint32_t domid, const char *vdev,
                          xcp_hv_error *err);

/*
 * -ENOTSUP, with the reason, for disk d if no qdisk back end can serve it:
 * a read-only qcow2 or VHD image (QEMU's xen-block opens the file
 * read-only under a writable format layer, which QEMU refuses: "Block
 * node is read-only"; the plug would look fine and the guest would never
 * see the disk). 0 for anything else (raw images, CDs, writable disks).
 */
int xcp__xen_qdisk_can_serve(const libxl_device_disk *d, xcp_hv_error *err);

#endif /* XCP_XEN_QDISK_H */
