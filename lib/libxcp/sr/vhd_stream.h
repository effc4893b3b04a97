/*
 * vhd_stream.h - VHD images as byte streams, for transfers: a dynamic VHD
 * produced front to back from a disk's contents (as XAPI's vhd-tool
 * writes one to a socket), and a dynamic or differencing VHD consumed
 * front to back into a disk, a buffer at a time.  Neither ever holds the
 * image: only its metadata (a bit per block to produce one; the block
 * table, 4 bytes per block, and the allocated blocks' order, 8 bytes per
 * allocated block, to consume one).  The on-disk layout is the VHD
 * library's (vhd_int.h); conventions are vhd.h's (0 or a negative errno
 * code, a one-line message in err).
 */
#ifndef XCP_SR_VHD_STREAM_H
#define XCP_SR_VHD_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reads guest bytes [offset, offset + len) of the disk being exported
 * into buf; nonzero stops the stream and is returned. */
typedef int (*xcp__vhd_stream_read_cb)(void *ctx, uint64_t offset,
                                       void *buf, size_t len);
/* Writes guest bytes [offset, offset + len) of the disk being imported;
 * nonzero stops the stream and is returned. */
typedef int (*xcp__vhd_stream_write_cb)(void *ctx, uint64_t offset,
                                        const void *buf, size_t len);

/* ---- producing a VHD stream ---------------------------------------------- */

typedef struct xcp__vhd_out xcp__vhd_out;

/*
 * A dynamic VHD of virtual_size (rounded up to 512) with the default
 * block size (XCP__VHD_DEFAULT_BLOCK_SIZE): footer copy, header, block
 * table, then each block that may hold data (its sector bitmap all set
 * and its bytes) in the disk's order, then the footer.  Which blocks are
 * sent is told afterwards with xcp__vhd_out_mark, before the first read.
 */
int xcp__vhd_out_new(xcp__vhd_out **out, uint64_t virtual_size,
                     char *err, size_t errlen);

/*
 * Make o a differencing VHD (a delta) whose parent is the disk with uuid
 * parent_uuid (its footer's unique id, as vhd-tool writes a delta's),
 * named name (the header's parent name, UTF-8), found beside the delta:
 * its three parent locators are those vhd-util writes for a parent in
 * the same directory (MacX "file://./name", W2ku and W2ru ".\name" in
 * UTF-16LE), their payloads between the BAT and the first block; before
 * the first read.  Its sent blocks (all sectors set)
 * hide the parent's, the others read from it.  -ENAMETOOLONG for a name
 * the header cannot hold, -EINVAL for a uuid that is not one.
 */
int xcp__vhd_out_parent(xcp__vhd_out *o, const char *parent_uuid,
                        const char *name, char *err, size_t errlen);

/* The block size of o (what xcp__vhd_out_mark counts in). */
uint32_t xcp__vhd_out_block_size(const xcp__vhd_out *o);

/* Send the blocks covering guest bytes [offset, offset + len). */
void xcp__vhd_out_mark(xcp__vhd_out *o, uint64_t offset, uint64_t len);

/* The stream's length in bytes, once every block is marked. */
uint64_t xcp__vhd_out_length(xcp__vhd_out *o);

/*
 * The stream's bytes [pos, pos + n) into buf (n is cut at the end: *got
 * is what was filled, 0 past the end).  Block contents come from read;
 * reading front to back costs no more than the bytes, any other order
 * one pass over the block map per jump.
 */
int xcp__vhd_out_read(xcp__vhd_out *o, uint64_t pos, void *buf, size_t n,
                      size_t *got, xcp__vhd_stream_read_cb read, void *ctx,
                      char *err, size_t errlen);

/*
 * What the stream's bytes from pos are, so that a transfer can send a
 * block's data without reading it through xcp__vhd_out_read: true when
 * they are the disk's bytes from *guest on, for *len bytes (to the end of
 * the block or of the disk); false when they are the format's own (or a
 * last block's zeros past the disk's end), for *len bytes, to be read
 * with xcp__vhd_out_read (0: past the end).
 */
bool xcp__vhd_out_data(xcp__vhd_out *o, uint64_t pos, uint64_t *guest,
                       uint64_t *len);

void xcp__vhd_out_free(xcp__vhd_out *o);

/* ---- consuming a VHD stream ---------------------------------------------- */

typedef struct xcp__vhd_in xcp__vhd_in;

/*
 * A parser for a dynamic or differencing VHD arriving front to back, for
 * a disk of max_size bytes (a larger virtual size fails with -EFBIG).
 * Only the sectors the image holds are written (a differencing image's
 * others stay as they are; so do a dynamic one's: see
 * xcp__vhd_in_covered); the metadata must come before the blocks, as
 * every writer puts it (a block before the table: -EBADMSG).
 */
int xcp__vhd_in_new(xcp__vhd_in **out, uint64_t max_size, char *err,
                    size_t errlen);

/* The next n bytes of the stream; the sectors they complete are passed
 * to write.  -EBADMSG on a malformed image, -EMEDIUMTYPE on a fixed or
 * non-VHD one, write's nonzero as is. */
int xcp__vhd_in_feed(xcp__vhd_in *in, const void *buf, size_t n,
                     xcp__vhd_stream_write_cb write, void *ctx, char *err,
                     size_t errlen);

/* 0 when the stream ended after every block (the footer may be cut),
 * else -EBADMSG naming what is missing. */
int xcp__vhd_in_finish(xcp__vhd_in *in, char *err, size_t errlen);

/* The image's virtual size once its footer was read (0 before). */
uint64_t xcp__vhd_in_virtual_size(const xcp__vhd_in *in);

/* Whether the image is a differencing one (its unallocated sectors mean
 * "as the parent", not zeros). */
bool xcp__vhd_in_differencing(const xcp__vhd_in *in);

/* Whether the image holds a block covering guest offset (once its table
 * was read); *block_size receives the block size. */
bool xcp__vhd_in_covered(const xcp__vhd_in *in, uint64_t offset,
                         uint32_t *block_size);

void xcp__vhd_in_free(xcp__vhd_in *in);

#endif
