/*
 * xva_stream.h - XAPI's XVA stream format, without the object model: a
 * tar (ustar) whose first member is ova.xml, then each disk as 1 MiB
 * chunks "<prefix>/<8-digit number>", each followed by its checksum
 * member ("<name>.checksum": SHA-1 in hex, or "<name>.xxhash": XXH64 as
 * 16 upper-case hex digits, which XAPI 8 writes), chunks of zeros left
 * out but for a disk's first and last; the whole optionally gzip or
 * zstd compressed. The same chunked tar of one disk is XAPI's
 * format=tar of /import_raw_vdi and /export_raw_vdi.
 *
 * Writing is pushed through a sink; reading is a push parser fed any
 * pieces of the (maybe compressed) stream, so both serve files and HTTP
 * bodies alike, a chunk at a time (memory does not grow with the disks).
 * Failures set the thread's error: the sink's or the callbacks' own,
 * IMPORT_ERROR [reason] for a malformed stream or a checksum mismatch,
 * IMPORT_ERROR_PREMATURE_EOF for a stream cut short.
 */
#ifndef XCP_SR_XVA_STREAM_H
#define XCP_SR_XVA_STREAM_H

#include "../core/core.h"

/* XAPI's chunk size. */
#define XCP__XVA_CHUNK ((size_t)1 << 20)

typedef enum xcp__xva_compression {
    XCP__XVA_PLAIN,
    XCP__XVA_GZIP,
    XCP__XVA_ZSTD,
} xcp__xva_compression;

/* The compression named by s as XAPI's use_compression and xe's
 * compress= take it: NULL, "", "false", "none" plain; "true", "gzip"
 * gzip; "zstd" zstd (any case). -1 for anything else. */
int xcp__xva_compression_of(const char *s);

/* Where a writer's bytes go: 0, or -1 with the thread's error set. */
typedef int (*xcp__xva_sink)(void *ctx, const void *buf, size_t n);

typedef struct xcp__xva_out xcp__xva_out;

int xcp__xva_out_new(xcp__xva_out **out, xcp__xva_compression c,
                     xcp__xva_sink sink, void *ctx);
/* A whole member (ova.xml). */
int xcp__xva_out_file(xcp__xva_out *o, const char *name, const void *data,
                      size_t n);

/* A disk's contents for xcp__xva_out_disk: read n bytes at offset into
 * buf (0 or -1, the thread's error set); may_hold_data says whether
 * [offset, offset + n) may hold anything but zeros (1, 0, or -1 on
 * error), so that holes are neither read nor sent. */
typedef struct xcp__xva_disk {
    int (*read)(void *ctx, uint64_t offset, void *buf, size_t n);
    int (*may_hold_data)(void *ctx, uint64_t offset, uint64_t n);
    void (*progress)(void *ctx, uint64_t done); /* bytes of the disk */
    void *ctx;
} xcp__xva_disk;

/* A disk of size bytes as chunks under prefix ("Ref:3"), each with its
 * SHA-1 .checksum member; chunks of zeros are left out but for the first
 * and the last. */
int xcp__xva_out_disk(xcp__xva_out *o, const char *prefix, uint64_t size,
                      const xcp__xva_disk *d);
/* Chunk number i of such a disk alone (nothing past its end): what
 * xcp__xva_out_disk does for each, for a producer that goes a piece at
 * a time. */
int xcp__xva_out_disk_chunk(xcp__xva_out *o, const char *prefix,
                            uint64_t size, uint64_t i,
                            const xcp__xva_disk *d);
/* End the tar (two zero blocks) and the compression, flushing all. */
int xcp__xva_out_finish(xcp__xva_out *o);
void xcp__xva_out_free(xcp__xva_out *o);

/* What a reader finds, in stream order. file: a member that is not a
 * chunk nor a checksum (ova.xml), whole. chunk: chunk number no of
 * prefix's disk, its checksum verified when one follows it (when verify
 * is set). A nonzero return stops the reader with the thread's error. */
typedef struct xcp__xva_in_ops {
    int (*file)(void *ctx, const char *name, const void *data, size_t n);
    int (*chunk)(void *ctx, const char *prefix, uint64_t no,
                 const void *data, size_t n);
} xcp__xva_in_ops;

typedef struct xcp__xva_in xcp__xva_in;

/* A reader; the compression is found from the stream's first bytes. */
int xcp__xva_in_new(xcp__xva_in **out, const xcp__xva_in_ops *ops,
                    void *ctx, bool verify);
/* The next n bytes of the stream. */
int xcp__xva_in_feed(xcp__xva_in *in, const void *buf, size_t n);
/* The stream ended: IMPORT_ERROR_PREMATURE_EOF unless it ended where a
 * tar may (after a whole member, or its end blocks). */
int xcp__xva_in_finish(xcp__xva_in *in);
void xcp__xva_in_free(xcp__xva_in *in);

/* XAPI's format=tar of one disk (/import_raw_vdi, /export_raw_vdi): the
 * chunks and checksums under this directory, no ova.xml. */
#define XCP__XVA_TAR_DIR "vdi"

/*
 * Reading such a tar of one disk of size bytes: each chunk's bytes go to
 * put (0, or nonzero to stop with the thread's error) at their offset;
 * chunks of zeros were left out, and are not written. Checksums are
 * verified. finish: IMPORT_ERROR_PREMATURE_EOF unless the disk's last
 * chunk came.
 */
typedef struct xcp__xva_disk_in xcp__xva_disk_in;
int xcp__xva_disk_in_new(xcp__xva_disk_in **out, uint64_t size,
                         int (*put)(void *ctx, uint64_t offset,
                                    const void *buf, size_t n),
                         void *ctx);
int xcp__xva_disk_in_feed(xcp__xva_disk_in *d, const void *buf, size_t n);
int xcp__xva_disk_in_finish(xcp__xva_disk_in *d);
void xcp__xva_disk_in_free(xcp__xva_disk_in *d);

#endif
