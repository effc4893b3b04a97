/*
 * qcow2.h - internal image library: qcow2 (versions 2 and 3) and raw.
 *
 * The SR drivers build VDIs on this; it reads and writes clusters with
 * pread/pwrite and keeps refcounts exact, so that `qemu-img check` finds
 * neither errors nor leaks in what it writes.
 *
 * Conventions:
 * - Every function returning int returns 0 or a negative errno-style code
 *   and, on failure, writes a one-line message naming the file and the
 *   problem into err (errlen bytes, always NUL-terminated; err may be
 *   NULL).
 * - Codes: -EMEDIUMTYPE  not a qcow2 image (bad magic);
 *          -EBADMSG      malformed or corrupt image (bad header field,
 *                        table outside the file, truncated file ...);
 *          -ENOTSUP      valid but unsupported (version, encryption,
 *                        incompatible feature bits, compressed clusters,
 *                        internal snapshots when writing, shrinking);
 *          -EFBIG        a size beyond the format's or our limits;
 *          -ELOOP        backing chain deeper than XCP__QCOW2_MAX_CHAIN;
 *          -EROFS        write to a handle opened read-only;
 *          -EINVAL       bad arguments (range beyond the virtual size ...);
 *          anything else is the errno of a failed system call.
 * - A handle is not thread-safe: use one per thread or lock around it.
 *   Two read-write handles on one file corrupt it (no locking is done).
 */
#ifndef XCP_SR_QCOW2_H
#define XCP_SR_QCOW2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "progress.h"

#define XCP__QCOW2_DEFAULT_CLUSTER_BITS 16
#define XCP__QCOW2_MIN_CLUSTER_BITS 9
#define XCP__QCOW2_MAX_CLUSTER_BITS 21
/* Longest backing file name the format allows. */
#define XCP__QCOW2_BACKING_MAX 1023
/* Deepest backing chain we open; deeper means a loop or a mistake. */
#define XCP__QCOW2_MAX_CHAIN 64

/* xcp__qcow2_open flags */
#define XCP__QCOW2_RDONLY (1u << 0)
/* Do not open the backing chain: for looking at metadata only.  Reading
 * a cluster that would come from the backing file fails with -ENXIO. */
#define XCP__QCOW2_NO_BACKING (1u << 1)

typedef struct xcp__qcow2 xcp__qcow2;

typedef struct xcp__qcow2_create_opts {
    const char *format;         /* "qcow2" (NULL) or "raw" */
    unsigned cluster_bits;      /* 0 = XCP__QCOW2_DEFAULT_CLUSTER_BITS */
    const char *backing_file;   /* stored as given; NULL = none. A
                                 * relative name is resolved against the
                                 * image's own directory when opened. */
    const char *backing_format; /* "qcow2" (NULL) or "raw" */
} xcp__qcow2_create_opts;

typedef struct xcp__qcow2_info {
    const char *format;         /* "qcow2" or "raw" (static string) */
    uint32_t version;           /* 2 or 3; 0 for raw */
    uint64_t virtual_size;
    uint32_t cluster_size;      /* 0 for raw */
    uint32_t refcount_bits;     /* 0 for raw */
    uint64_t file_size;         /* st_size */
    uint64_t allocated_bytes;   /* st_blocks * 512: physical utilisation */
    bool has_backing;
    char backing_file[XCP__QCOW2_BACKING_MAX + 1];  /* as stored */
    char backing_format[16];    /* "" when the image does not say */
} xcp__qcow2_info;

/*
 * Create a new image at path (which must not exist: O_EXCL).  virtual_size
 * is rounded up to a multiple of 512.  The file is sparse: only the header
 * and the refcount structures are written, then it is fdatasync'ed.  The
 * backing file is not opened or checked.
 */
int xcp__qcow2_create(const char *path, uint64_t virtual_size,
                      const xcp__qcow2_create_opts *opts,
                      char *err, size_t errlen);

/*
 * Open an image.  format is "qcow2", "raw" or NULL (= "qcow2": a raw file
 * is never guessed, so a guest cannot turn its disk into a qcow2 header).
 * The header is validated strictly; unless XCP__QCOW2_NO_BACKING is
 * given the backing chain is opened read-only too.  Only regular files
 * are accepted (never a FIFO or a device named by a backing file).
 */
int xcp__qcow2_open(xcp__qcow2 **out, const char *path, const char *format,
                    unsigned flags, char *err, size_t errlen);

/* Flush if written to, then free everything, backing chain included.
 * NULL is accepted.  Returns the flush result. */
int xcp__qcow2_close(xcp__qcow2 *q);

/* Whether path is a version 3 qcow2 image whose dirty bit is set (a
 * writer died, see qcow2_int.h); opening it for writing repairs it. */
bool xcp__qcow2_is_dirty(const char *path);

/* fdatasync the image (the backing chain is never written). */
int xcp__qcow2_flush(xcp__qcow2 *q, char *err, size_t errlen);

int xcp__qcow2_get_info(xcp__qcow2 *q, xcp__qcow2_info *info,
                        char *err, size_t errlen);

/* The virtual size, without a system call. */
uint64_t xcp__qcow2_virtual_size(const xcp__qcow2 *q);

/* Read len bytes at offset, through the backing chain (zeros past its
 * end).  The range must lie within the virtual size. */
int xcp__qcow2_read(xcp__qcow2 *q, uint64_t offset, void *buf, size_t len,
                    char *err, size_t errlen);

/*
 * How the bytes at offset start, through the backing chain: *data tells
 * whether the first *len bytes (at least 1, at most max) may hold data,
 * or read as zeros (unallocated everywhere, zero clusters, holes of a
 * sparse raw file).  The range must lie within the virtual size.
 */
int xcp__qcow2_extent(xcp__qcow2 *q, uint64_t offset, uint64_t max,
                      bool *data, uint64_t *len, char *err, size_t errlen);

/*
 * How the bytes at offset start in this image alone: *held tells whether
 * the first *len bytes (at least 1, at most max) are set by the image
 * itself (data, compressed or zero clusters: what hides its backing
 * file), or left to the backing file.  A raw file holds what is not a
 * hole.  The range must lie within the virtual size.
 */
int xcp__qcow2_own_extent(xcp__qcow2 *q, uint64_t offset, uint64_t max,
                          bool *held, uint64_t *len, char *err,
                          size_t errlen);

/*
 * Where the bytes at offset lie as they are in a file, through the
 * backing chain, for sending them with sendfile(2): *fd (the handle's own
 * descriptor or one of its chain's, valid while q is open) and *pos, for
 * the first *len bytes (at least 1, at most max); or *fd = -1 when those
 * read otherwise (zeros, a compressed cluster, past the end of the file):
 * read them with xcp__qcow2_read.  The range must lie within the virtual
 * size.
 */
int xcp__qcow2_map(xcp__qcow2 *q, uint64_t offset, uint64_t max, int *fd,
                   uint64_t *pos, uint64_t *len, char *err, size_t errlen);

/* Start writing back what was written so far (sync_file_range(2)
 * without waiting), so that the flush at the end of a long write finds
 * little left to do. */
void xcp__qcow2_start_writeback(xcp__qcow2 *q);

/* Write len bytes at offset, allocating clusters and L2 tables as needed
 * and copying the rest of a partly written new cluster from below. */
int xcp__qcow2_write(xcp__qcow2 *q, uint64_t offset, const void *buf,
                     size_t len, char *err, size_t errlen);

/* Grow the virtual size (new_size rounded up to 512).  Shrinking is
 * refused with -ENOTSUP; the same size is a no-op. */
int xcp__qcow2_resize(xcp__qcow2 *q, uint64_t new_size,
                      char *err, size_t errlen);

/*
 * Point the image at another backing file (NULL: none), as `qemu-img
 * rebase -u` does: no data is moved, the caller guarantees the new
 * backing shows the same content.  Unless the handle was opened with
 * XCP__QCOW2_NO_BACKING the new chain is opened first, so a bad name
 * leaves the image untouched.  Unknown header extensions are kept.
 */
int xcp__qcow2_set_backing(xcp__qcow2 *q, const char *backing_file,
                           const char *backing_format,
                           char *err, size_t errlen);

/*
 * The same for the image at path, which another handle or process may be
 * writing (a running guest's disk): only the bytes of the backing link
 * in the first cluster are written, through a descriptor of this call's
 * own, then synced; no refcount, table, dirty bit or persistent bitmap
 * is touched, nothing is allocated or repaired, so the writer's state
 * stays true.  The writer must not change the header extensions
 * meanwhile (it does when it stores persistent bitmaps: pause such a
 * writer).  The image must have a backing file; the new one is not
 * opened.  A kill leaves the old link or the new one when both names are
 * as long (the names lie at the same place).
 */
int xcp__qcow2_relink(const char *path, const char *backing_file,
                      const char *backing_format, char *err, size_t errlen);

/*
 * Full copy: write what src shows (through its chain) into a new
 * standalone image at dst_path, allocating only clusters that are not
 * all zeros.  opts->backing_file must be NULL; opts->cluster_bits 0 means
 * the source's cluster size.  On failure dst_path is removed.
 */
int xcp__qcow2_copy(xcp__qcow2 *src, const char *dst_path,
                    const xcp__qcow2_create_opts *opts,
                    char *err, size_t errlen);

/*
 * Write the clusters child itself holds (data and zero clusters, not what
 * it inherits) into parent, growing parent to the child's size first.
 * Afterwards parent shows exactly what child shows; child's own view is
 * unchanged throughout, since only clusters it overrides are written.
 * child may be opened with XCP__QCOW2_NO_BACKING.
 */
int xcp__qcow2_commit(xcp__qcow2 *child, xcp__qcow2 *parent,
                      char *err, size_t errlen);
/* The same, telling p (may be NULL) the offset reached after each
 * extent; a nonzero answer stops it there (parent then holds part of
 * child's clusters, which is harmless: see above). */
int xcp__qcow2_commit_progress(xcp__qcow2 *child, xcp__qcow2 *parent,
                               const xcp__progress *p, char *err,
                               size_t errlen);

/*
 * Persistent dirty bitmaps (the qcow2 "bitmaps" extension, as QEMU
 * writes them: `qemu-img info` lists them).  An enabled ("auto") bitmap
 * of a handle opened for writing is kept up to date by every
 * xcp__qcow2_write: the bits of the granules written are made durable
 * (written and fdatasync'ed) before the data is written, so after a
 * crash no write that reached the image is missing from it.  Bits are
 * given in the format's order: bit j of byte i is granule 8i + j.
 */

/*
 * Find the first bitmap whose name starts with prefix: *found, its name
 * (name, namelen bytes), granularity (2^*gran_bits bytes), whether it
 * is enabled, and a malloc'd copy of its bits in *bits (*nbits granules
 * covering the virtual size); bits may be NULL to skip them.  An in-use
 * bitmap is found while a process (QEMU) holds the image for writing
 * (xcp__qcow2_live_writer): its bits are then in that process, and
 * asking for them fails with -EBUSY.  One left in use by a writer that
 * died is inconsistent: not found.
 */
/*
 * Whether another process holds q's file with the right to write it, by
 * QEMU's image locks (a shared OFD lock on byte 101: QEMU's
 * raw_apply_lock_bytes); a process that dies loses its locks.
 */
bool xcp__qcow2_live_writer(const xcp__qcow2 *q);

int xcp__qcow2_bitmap_find(xcp__qcow2 *q, const char *prefix, bool *found,
                           char *name, size_t namelen, unsigned *gran_bits,
                           bool *enabled, uint8_t **bits, uint64_t *nbits,
                           char *err, size_t errlen);

/*
 * Remove every bitmap whose name starts with prefix, then, when name is
 * not NULL, add an enabled bitmap called name of granularity
 * 2^gran_bits (16..31) holding bits (NULL: all clear; else covering the
 * virtual size); in one update of the bitmap directory.  The handle must
 * be writable.  A crash leaves the old set or the new one.
 */
int xcp__qcow2_bitmap_replace(xcp__qcow2 *q, const char *prefix,
                              const char *name, unsigned gran_bits,
                              const uint8_t *bits, char *err, size_t errlen);

#endif
