/*
 * vhd.h - internal image library: VHD (Microsoft Virtual Hard Disk, the
 * "vpc" format of QEMU), dynamic and differencing disks as XAPI's
 * vhd-util writes them, fixed disks read and written in place.
 *
 * The same shape as qcow2.h, so the SR layer can put either format behind
 * one interface.  Images are written as blktap's vhd-util does: creator
 * "tap", 2 MiB blocks, a footer copy at offset 0, and parent locators of
 * three kinds for a differencing disk (MacX: a file:// URL, W2ru: the
 * relative name, W2ku: the absolute name, both UTF-16LE).
 *
 * Conventions (as qcow2.h):
 * - Every function returning int returns 0 or a negative errno-style code
 *   and, on failure, writes a one-line message naming the file and the
 *   problem into err (errlen bytes, always NUL-terminated; err may be
 *   NULL).
 * - Codes: -EMEDIUMTYPE  not a VHD image (no "conectix" footer);
 *          -EBADMSG      malformed or corrupt image (bad checksum, field,
 *                        table or block outside the file, a parent whose
 *                        unique id is not the one the child names ...);
 *          -ENOTSUP      valid but unsupported (fixed disks for chains,
 *                        shrinking);
 *          -EFBIG        a virtual size beyond XCP__VHD_MAX_SIZE (XAPI's
 *                        2040 GiB).  The SR layer reports it as
 *                        VDI_TOO_LARGE [vdi, XCP__VHD_MAX_SIZE] when the
 *                        VDI exists (VDI.resize), and as
 *                        SR_BACKEND_FAILURE_79 ("VDI Invalid size", sm's
 *                        VDISize error) when creating one, as sm does;
 *          -ENOSPC       growing needs a bigger BAT and the dynamic
 *                        disk header lies right after it (never in
 *                        images we or vhd-util or QEMU write);
 *          -ELOOP        parent chain deeper than XCP__VHD_MAX_CHAIN;
 *          -ENOENT       no parent locator names an existing file;
 *          -EROFS        write to a handle opened read-only;
 *          -EINVAL       bad arguments (range beyond the virtual size ...);
 *          anything else is the errno of a failed system call.
 * - A handle is not thread-safe: use one per thread or lock around it.
 *   Two read-write handles on one file corrupt it (no locking is done).
 */
#ifndef XCP_SR_VHD_H
#define XCP_SR_VHD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "progress.h"

/* XAPI's (and QEMU's) limit: 2 TiB minus the metadata, 0xff000000
 * sectors. */
#define XCP__VHD_MAX_SIZE (2040ull << 30)
/* What vhd-util and sm use. */
#define XCP__VHD_DEFAULT_BLOCK_SIZE (2u << 20)
/* Longest parent name we store or follow. */
#define XCP__VHD_PARENT_MAX 1023
/* Deepest parent chain we open (XAPI's policy limit of 30 is the SR
 * layer's business; deeper than this means a loop or a mistake). */
#define XCP__VHD_MAX_CHAIN 64

/* Disk types of the footer. */
#define XCP__VHD_FIXED 2
#define XCP__VHD_DYNAMIC 3
#define XCP__VHD_DIFFERENCING 4

/* xcp__vhd_open flags */
#define XCP__VHD_RDONLY (1u << 0)
/* Do not open the parent chain: for looking at metadata only.  Reading a
 * sector that would come from the parent fails with -ENXIO. */
#define XCP__VHD_NO_PARENT (1u << 1)

typedef struct xcp__vhd xcp__vhd;

typedef struct xcp__vhd_create_opts {
    uint32_t block_size;        /* 0 = XCP__VHD_DEFAULT_BLOCK_SIZE; a
                                 * power of two, 4 KiB .. 256 MiB */
    uint64_t max_size;          /* room left after the BAT for growing
                                 * to this size without moving blocks,
                                 * as vhd-util create -S; 0 = none
                                 * beyond the virtual size */
    const char *parent;         /* differencing disk: the parent image
                                 * (opened to read its unique id and, when
                                 * virtual_size is 0, its size); NULL =
                                 * dynamic disk */
} xcp__vhd_create_opts;

typedef struct xcp__vhd_info {
    const char *format;         /* "vhd" (static string) */
    uint32_t disk_type;         /* XCP__VHD_FIXED, _DYNAMIC, _DIFFERENCING */
    uint64_t virtual_size;      /* the footer's current size */
    uint32_t block_size;        /* 0 for fixed disks */
    uint32_t max_table_entries;
    uint64_t max_size;          /* largest size resize reaches in place */
    uint64_t file_size;         /* st_size */
    uint64_t allocated_bytes;   /* st_blocks * 512: physical utilisation */
    char uuid[37];              /* the footer's unique id */
    bool has_parent;
    char parent_uuid[37];       /* as the header names it */
    char parent[XCP__VHD_PARENT_MAX + 1];  /* the file the locators lead
                                 * to (when the chain was not opened: the
                                 * first existing file they name, else the
                                 * header's parent name, a base name) */
} xcp__vhd_info;

/*
 * Create a new image at path (which must not exist: O_EXCL).  virtual_size
 * is rounded up to a multiple of 512; 0 with opts->parent means the
 * parent's size.  Beyond XCP__VHD_MAX_SIZE fails with -EFBIG.  The file is
 * sparse: footer, header, BAT and parent locators are written, then it is
 * fdatasync'ed.  A parent is named relative to the new image's directory
 * in the MacX and W2ru locators and by its absolute path in W2ku.
 */
int xcp__vhd_create(const char *path, uint64_t virtual_size,
                    const xcp__vhd_create_opts *opts,
                    char *err, size_t errlen);

/*
 * Open an image.  Everything in it is validated strictly (checksums,
 * tables and blocks inside the file and apart); unless XCP__VHD_NO_PARENT
 * is given the parent chain is opened read-only too, following the first
 * locator that names an existing regular file, whose unique id must be
 * the one the child records.  A torn footer at the end of the file is
 * taken from the copy at offset 0 (and rewritten when opened read-write).
 */
int xcp__vhd_open(xcp__vhd **out, const char *path, unsigned flags,
                  char *err, size_t errlen);

/* Flush if written to, then free everything, parent chain included.
 * NULL is accepted.  Returns the flush result. */
int xcp__vhd_close(xcp__vhd *v);

/* fdatasync the image (the parent chain is never written). */
int xcp__vhd_flush(xcp__vhd *v, char *err, size_t errlen);

/* Fill info (stat'ing the file for its sizes). */
int xcp__vhd_get_info(xcp__vhd *v, xcp__vhd_info *info,
                      char *err, size_t errlen);

/* The virtual size, without a system call. */
uint64_t xcp__vhd_virtual_size(const xcp__vhd *v);

/* Read len bytes at offset, through the parent chain (zeros past its
 * end).  The range must lie within the virtual size. */
int xcp__vhd_read(xcp__vhd *v, uint64_t offset, void *buf, size_t len,
                  char *err, size_t errlen);

/*
 * How the bytes at offset start, through the parent chain: *data tells
 * whether the first *len bytes (at least 1, at most max) are held by some
 * image of the chain, or read as zeros because none holds them.  The
 * range must lie within the virtual size.
 */
int xcp__vhd_extent(xcp__vhd *v, uint64_t offset, uint64_t max,
                    bool *data, uint64_t *len, char *err, size_t errlen);

/* The same in this image alone: *held tells whether the first *len bytes
 * are its own sectors (a fixed image holds all), else its parent's. */
int xcp__vhd_held_extent(xcp__vhd *v, uint64_t offset, uint64_t max,
                         bool *held, uint64_t *len, char *err,
                         size_t errlen);

/* Where the bytes at offset lie as they are in a file, through the
 * chain, for sendfile(2) (as qcow2.h's xcp__qcow2_map): *fd, valid while
 * v is open, and *pos for the first *len bytes (at least 1, at most max,
 * within one block), or *fd = -1 when those read otherwise (zeros,
 * sectors past the end of the file). */
int xcp__vhd_map(xcp__vhd *v, uint64_t offset, uint64_t max, int *fd,
                 uint64_t *pos, uint64_t *len, char *err, size_t errlen);

/* As xcp__qcow2_start_writeback. */
void xcp__vhd_start_writeback(xcp__vhd *v);

/*
 * Write len bytes at offset.  A new block is appended (footer first, so a
 * crash leaks space but never loses the footer), then its data and
 * sector bitmap, then its BAT entry.  Only the sectors written are marked
 * in the bitmap: the others still read from the parent (or as zeros).
 */
int xcp__vhd_write(xcp__vhd *v, uint64_t offset, const void *buf,
                   size_t len, char *err, size_t errlen);

/*
 * Grow the virtual size (new_size rounded up to 512).  Beyond
 * XCP__VHD_MAX_SIZE fails with -EFBIG; shrinking with -ENOTSUP; the same
 * size is a no-op.  When the BAT must grow past the room before the first
 * locator or block (info.max_size), those in the way move to the end of
 * the file first, as vhd-util does, each copied and synced before its BAT
 * entry (or the header) points at the copy: a crash leaves a consistent
 * image.  Reserving room at creation (max_size) avoids the copying.
 */
int xcp__vhd_resize(xcp__vhd *v, uint64_t new_size,
                    char *err, size_t errlen);

/*
 * Make parent_path the image's parent (re-parenting for coalesce, as
 * vhd-util modify -p): no data is moved, the caller guarantees the new
 * parent shows the same content.  The new parent is opened first (its
 * unique id is recorded), so a bad name leaves the image untouched.  A
 * dynamic disk becomes differencing; NULL makes a differencing disk
 * dynamic (its clear bitmap bits then read as zeros).  The new locators
 * are appended (the footer moving first); the old ones' space is left
 * unused.
 */
int xcp__vhd_set_parent(xcp__vhd *v, const char *parent_path,
                        char *err, size_t errlen);

/*
 * Make parent_path the parent of the differencing disk at path, which
 * another handle or process may be writing (a running guest's disk), as
 * vhd-util modify -p does: the new locators are written in place of the
 * old ones, then the header, through a descriptor of this call's own,
 * and synced; the footer, BAT and blocks the writer owns are never
 * touched, nothing is appended.  -ENOSPC (nothing written) when the new
 * locators do not fit the old ones' space (names much longer than the
 * old).  A kill between the two writes leaves locators naming the new
 * parent and a header naming the old, which opening resolves (the parent
 * is the candidate whose unique id the header names).
 */
int xcp__vhd_relink(const char *path, const char *parent_path, char *err,
                    size_t errlen);

/*
 * Full copy: write what src shows (through its chain) into a new dynamic
 * image at dst_path of src's size, allocating only blocks that are not all
 * zeros.  opts->parent must be NULL.  On failure dst_path is removed.
 */
int xcp__vhd_copy(xcp__vhd *src, const char *dst_path,
                  const xcp__vhd_create_opts *opts,
                  char *err, size_t errlen);

/*
 * Write the sectors child itself holds (not what it inherits) into
 * parent, growing parent to the child's size first.  Afterwards parent
 * shows exactly what child shows; child's own view is unchanged
 * throughout.  child may be opened with XCP__VHD_NO_PARENT.
 */
int xcp__vhd_commit(xcp__vhd *child, xcp__vhd *parent,
                    char *err, size_t errlen);
/* The same, telling p (may be NULL) the offset reached as it goes; a
 * nonzero answer stops it there. */
int xcp__vhd_commit_progress(xcp__vhd *child, xcp__vhd *parent,
                             const xcp__progress *p, char *err,
                             size_t errlen);

#endif
