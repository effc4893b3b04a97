/*
 * hv/xen/xen_blk.h - the disks of running domains on Xen, through QEMU's
 * QMP (xen_blk.c): the driver's disk_resize, disk_cbt, disk_size,
 * disk_snapshot, disk_stream and disk_stream_cancel slots (xcp/sys/hv.h),
 * self being the driver's handle.
 */
#ifndef XCP_XEN_BLK_H
#define XCP_XEN_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "hv_internal.h"

/* block_resize of the disk's node in its qdisk QEMU. */
int xcp__xen_disk_resize(void *self, uint32_t domid, const char *vdev,
                         uint64_t bytes, xcp_hv_error *err);
/* block-dirty-bitmap-add (persistent) / -remove on the disk's qcow2 node. */
int xcp__xen_disk_cbt(void *self, uint32_t domid, const char *vdev,
                      const char *bitmap, bool on, xcp_hv_error *err);
/* The size blkfront is told: the back end's xenstore "sectors". */
int xcp__xen_disk_size(void *self, uint32_t domid, const char *vdev,
                       uint64_t *bytes, xcp_hv_error *err);
/* blockdev-snapshot-sync of the disk's serving node onto the existing
 * qcow2 overlay (its backing file checked to be the disk's image). */
int xcp__xen_disk_snapshot(void *self, uint32_t domid, const char *vdev,
                           const char *overlay, const char *format,
                           xcp_hv_error *err);
/* block-stream of the chain below the disk's node into it, keeping the
 * last `keep` nodes (x-debug-query-block-graph tells them), or the job of
 * an earlier call followed (query-jobs). */
int xcp__xen_disk_stream(void *self, uint32_t domid, const char *vdev,
                         unsigned keep, const char *backing, uint64_t *done,
                         uint64_t *total, xcp_hv_error *err);
/* block-job-cancel of that copy, the job waited for and dismissed: 1
 * when one ran, 0 when none did. */
int xcp__xen_disk_stream_cancel(void *self, uint32_t domid, const char *vdev,
                                xcp_hv_error *err);

#endif /* XCP_XEN_BLK_H */
