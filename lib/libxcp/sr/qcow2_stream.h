/*
 * qcow2_stream.h - a qcow2 image produced front to back from a disk's
 * contents, for transfers (GET /export_raw_vdi?format=qcow2), as
 * vhd_stream.h does for VHD: version 3, 64 KiB clusters, 16-bit
 * refcounts, laid out header, refcount table, refcount blocks, L1, L2
 * tables, then the data clusters in the disk's order, so that every byte
 * follows from which clusters hold data (a bit per cluster) and nothing
 * is ever rewritten; and one consumed front to back into a disk
 * (qcow2_stream_in.c). Conventions are qcow2.h's.
 */
#ifndef XCP_SR_QCOW2_STREAM_H
#define XCP_SR_QCOW2_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhd_stream.h" /* xcp__vhd_stream_read_cb: the same reader */

typedef struct xcp__qcow2_out xcp__qcow2_out;

/* An image of virtual_size (at most XCP__IMAGE_QCOW2_MAX_SIZE); which
 * clusters it holds is told with xcp__qcow2_out_mark before the first
 * read. */
int xcp__qcow2_out_new(xcp__qcow2_out **out, uint64_t virtual_size,
                       char *err, size_t errlen);

/* Give the image a backing file named name (a delta: clusters not held
 * read from it), of format qcow2 (a backing format extension says so, as
 * qemu-img writes one), before the first read; -ENAMETOOLONG past 1023
 * bytes. */
int xcp__qcow2_out_backing(xcp__qcow2_out *o, const char *name, char *err,
                           size_t errlen);

/* Hold the clusters covering guest bytes [offset, offset + len). */
void xcp__qcow2_out_mark(xcp__qcow2_out *o, uint64_t offset, uint64_t len);

/* The image's length in bytes, once every cluster is marked. */
uint64_t xcp__qcow2_out_length(xcp__qcow2_out *o);

/* The image's bytes [pos, pos + n) into buf (*got: filled, 0 past the
 * end); data clusters come from read. */
int xcp__qcow2_out_read(xcp__qcow2_out *o, uint64_t pos, void *buf,
                        size_t n, size_t *got, xcp__vhd_stream_read_cb read,
                        void *ctx, char *err, size_t errlen);

/* As xcp__vhd_out_data: true when the image's bytes from pos are the
 * disk's from *guest on, for *len bytes (data clusters that follow each
 * other in the disk too, up to 16 MiB, within the disk's size); false
 * when they are the format's own (or a last cluster's zeros past the
 * disk's end) for *len bytes, to be read with xcp__qcow2_out_read (0:
 * past the end). */
bool xcp__qcow2_out_data(xcp__qcow2_out *o, uint64_t pos, uint64_t *guest,
                         uint64_t *len);

void xcp__qcow2_out_free(xcp__qcow2_out *o);

/* ---- consuming a qcow2 stream (qcow2_stream_in.c) ------------------------ */

typedef struct xcp__qcow2_in xcp__qcow2_in;

/*
 * A parser for a qcow2 image (version 2 or 3, any cluster size, no
 * encryption, compression or external data file: -EMEDIUMTYPE) arriving
 * front to back, for a disk of max_size bytes (a larger virtual size
 * fails with -EFBIG). Only the clusters the image holds are written
 * (zero clusters as zeros); the tables must come before what they map,
 * as every writer lays them out (else -EBADMSG). It holds the L1 table
 * being read, one L2 table, a bit per disk cluster and the runs of data
 * still to come (one per stretch of clusters contiguous both in the file
 * and on the disk), at most 2^20 of them (else -EFBIG: an image that
 * fragmented is to be converted first).
 */
int xcp__qcow2_in_new(xcp__qcow2_in **out, uint64_t max_size, char *err,
                      size_t errlen);

/* The next n bytes of the stream; the data they complete goes to write.
 * -EBADMSG on a malformed image, -EMEDIUMTYPE on an unsupported one,
 * write's nonzero as is. */
int xcp__qcow2_in_feed(xcp__qcow2_in *in, const void *buf, size_t n,
                       xcp__vhd_stream_write_cb write, void *ctx, char *err,
                       size_t errlen);

/* 0 when the stream ended after everything its tables map, else
 * -EBADMSG naming what is missing. */
int xcp__qcow2_in_finish(xcp__qcow2_in *in, char *err, size_t errlen);

/* Whether the image has a backing file (its unallocated clusters mean
 * "as the parent", not zeros). */
bool xcp__qcow2_in_differencing(const xcp__qcow2_in *in);

/* Whether the image holds the cluster covering guest offset (data or
 * zero, once its L2 table was read); *cluster_size receives its size. */
bool xcp__qcow2_in_covered(const xcp__qcow2_in *in, uint64_t offset,
                           uint32_t *cluster_size);

/* Tables and data runs still awaited (what the parser holds). */
size_t xcp__qcow2_in_pending(const xcp__qcow2_in *in);

void xcp__qcow2_in_free(xcp__qcow2_in *in);

#endif
