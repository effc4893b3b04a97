/*
 * qcow2_stream.h - a qcow2 image produced front to back from a disk's
 * contents, for transfers (GET /export_raw_vdi?format=qcow2), as
 * vhd_stream.h does for VHD: version 3, 64 KiB clusters, 16-bit
 * refcounts, laid out header, refcount table, refcount blocks, L1, L2
 * tables, then the data clusters in the disk's order, so that every byte
 * follows from which clusters hold data (a bit per cluster) and nothing
 * is ever rewritten. Conventions are qcow2.h's.
 */
#ifndef XCP_SR_QCOW2_STREAM_H
#define XCP_SR_QCOW2_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "vhd_stream.h" /* xcp__vhd_stream_read_cb: the same reader */

typedef struct xcp__qcow2_out xcp__qcow2_out;

/* An image of virtual_size (at most XCP__IMAGE_QCOW2_MAX_SIZE); which
 * clusters it holds is told with xcp__qcow2_out_mark before the first
 * read. */
int xcp__qcow2_out_new(xcp__qcow2_out **out, uint64_t virtual_size,
                       char *err, size_t errlen);

/* Hold the clusters covering guest bytes [offset, offset + len). */
void xcp__qcow2_out_mark(xcp__qcow2_out *o, uint64_t offset, uint64_t len);

/* The image's length in bytes, once every cluster is marked. */
uint64_t xcp__qcow2_out_length(xcp__qcow2_out *o);

/* The image's bytes [pos, pos + n) into buf (*got: filled, 0 past the
 * end); data clusters come from read. */
int xcp__qcow2_out_read(xcp__qcow2_out *o, uint64_t pos, void *buf,
                        size_t n, size_t *got, xcp__vhd_stream_read_cb read,
                        void *ctx, char *err, size_t errlen);

void xcp__qcow2_out_free(xcp__qcow2_out *o);

#endif
