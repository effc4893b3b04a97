/*
 * image.h - one interface over the image libraries: qcow2 and raw
 * (qcow2.h) and VHD (vhd.h).  The SR drivers and the VDI streams call
 * these and never a format's library directly, so every operation works
 * on every format; a per-format ops table in image.c does the dispatch.
 *
 * Conventions are the libraries' (qcow2.h, vhd.h): 0 or a negative
 * errno-style code, a one-line message naming the file in err (errlen
 * bytes, err may be NULL).  Beyond them: -EFBIG for a virtual size past
 * the format's limit (xcp__image_max_size), with a message saying so.
 *
 * Chains are never mixed: an image's parent is of its own format (a
 * create or set_parent naming a parent of another format fails with the
 * parent library's -EMEDIUMTYPE).
 */
#ifndef XCP_SR_IMAGE_H
#define XCP_SR_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "progress.h"

/* Longest parent name an image records that we follow. */
#define XCP__IMAGE_PARENT_MAX 1023
/* qcow2 VDIs: up to 16 TiB, as XCP-ng's qcow2 SRs. */
#define XCP__IMAGE_QCOW2_MAX_SIZE (16ull << 40)

/* xcp__image_open flags */
#define XCP__IMAGE_RDONLY (1u << 0)
/* Do not open the parent chain (metadata only; reading what the parent
 * holds fails with -ENXIO). */
#define XCP__IMAGE_NO_PARENT (1u << 1)

typedef struct xcp__image xcp__image;

typedef struct xcp__image_info {
    const char *format;         /* "qcow2", "raw" or "vhd" (static) */
    uint64_t virtual_size;
    uint64_t allocated_bytes;   /* st_blocks * 512 */
    /* The parent as the image names it, relative to the image's own
     * directory when it lies there ("<uuid>.vhd"), else as a path; ""
     * when none.  A VHD parent that no locator finds is named as its
     * header records it (a base name). */
    char parent[XCP__IMAGE_PARENT_MAX + 1];
    bool has_parent;
} xcp__image_info;

/* Whether fmt names a format of this layer: "qcow2", "raw", "vhd". */
bool xcp__image_format_known(const char *fmt);

/* The largest virtual size an image of fmt may have (0: unknown fmt). */
uint64_t xcp__image_max_size(const char *fmt);

/*
 * Create a new image at path (O_EXCL) of fmt and virtual_size (rounded up
 * to 512).  parent, when not NULL, makes a copy-on-write child: the name
 * of the parent relative to path's directory, recorded so (qcow2 backing
 * file, VHD parent locators); the parent must be of fmt ("raw" has none)
 * and its layout (cluster size) is kept.  virtual_size 0 with a parent
 * means the parent's.  The file is synced.
 */
int xcp__image_create(const char *path, const char *fmt,
                      uint64_t virtual_size, const char *parent,
                      char *err, size_t errlen);

/* Open the image at path, of fmt (never guessed). */
int xcp__image_open(xcp__image **out, const char *path, const char *fmt,
                    unsigned flags, char *err, size_t errlen);

/*
 * Bring an image a writer left in the middle of a change back to a clean
 * state: a qcow2 image left dirty (clusters counted but not yet linked
 * when its writer died) has its leaks freed; other images and clean ones
 * are left alone.  Only for images no live process is writing.
 */
int xcp__image_recover(const char *path, const char *fmt, char *err,
                       size_t errlen);

/* Flush if written, free (NULL accepted); the flush result. */
int xcp__image_close(xcp__image *im);

int xcp__image_flush(xcp__image *im, char *err, size_t errlen);
int xcp__image_get_info(xcp__image *im, xcp__image_info *info,
                        char *err, size_t errlen);
uint64_t xcp__image_virtual_size(const xcp__image *im);
/* The format the image was opened as (static string). */
const char *xcp__image_format(const xcp__image *im);

/* As the libraries' read, write and extent: through the chain, within
 * the virtual size. */
int xcp__image_read(xcp__image *im, uint64_t offset, void *buf, size_t len,
                    char *err, size_t errlen);
int xcp__image_write(xcp__image *im, uint64_t offset, const void *buf,
                     size_t len, char *err, size_t errlen);
int xcp__image_extent(xcp__image *im, uint64_t offset, uint64_t max,
                      bool *data, uint64_t *len, char *err, size_t errlen);
/* How the bytes at offset start in im alone (open it with
 * XCP__IMAGE_NO_PARENT): *held tells whether the first *len bytes (at
 * least 1, at most max) are set by im itself (data, or qcow2 zero
 * clusters: anything that hides the parent), else left to its parent. */
int xcp__image_own_extent(xcp__image *im, uint64_t offset, uint64_t max,
                          bool *held, uint64_t *len, char *err,
                          size_t errlen);

/* Where the bytes at offset lie as they are in a file, through the
 * chain (as qcow2.h's xcp__qcow2_map): *fd, valid while im is open, and
 * *pos for the first *len bytes (at least 1, at most max), or *fd = -1
 * when they are to be read with xcp__image_read (zeros, or what the file
 * lacks). Raw files, qcow2 data clusters and VHD data sectors map. */
int xcp__image_map(xcp__image *im, uint64_t offset, uint64_t max, int *fd,
                   uint64_t *pos, uint64_t *len, char *err, size_t errlen);

/* Start writing back what a writable handle wrote, without waiting (a
 * long import's flush then finds little left); nothing for a format that
 * cannot. */
void xcp__image_start_writeback(xcp__image *im);

/* Grow to new_size (shrinking: -ENOTSUP; past the limit: -EFBIG). */
int xcp__image_resize(xcp__image *im, uint64_t new_size,
                      char *err, size_t errlen);

/* Re-parent without moving data (the caller guarantees the new parent
 * shows the same content); parent is named relative to the image's
 * directory, NULL for none. */
int xcp__image_set_parent(xcp__image *im, const char *parent,
                          char *err, size_t errlen);

/*
 * The same for the image at path, of fmt, which another process may be
 * writing (a running guest's disk): only the bytes of the parent link
 * are rewritten in place (qcow2: the backing name; VHD: the header and
 * the parent locators), through a descriptor of the call's own, and
 * synced.  Nothing the writer keeps in memory changes on disk (tables,
 * refcounts, the dirty bit, the footer), nothing is allocated, and
 * nothing is repaired, so the writer goes on as if nothing happened.
 * The writer must not rewrite the header itself meanwhile (qcow2
 * persistent bitmaps, VHD resize: pause such a writer).  parent is
 * named relative to the image's directory.  -ENOSPC, with nothing
 * written, when the new link does not fit where the old one lies (VHD
 * locators for a much longer name); -EINVAL when the image has no
 * parent.  Against a kill: the old link or the new one for names as
 * long as the old (the SR's).
 */
int xcp__image_relink(const char *path, const char *fmt, const char *parent,
                      char *err, size_t errlen);

/*
 * Full standalone copy of what src shows (through its chain) into a new
 * image at dst_path of dst_fmt (NULL: src's format) and src's size.
 * Only data is written: what reads as zeros stays unallocated.  Within
 * one format the library's own copy keeps its layout; across formats
 * (qcow2 <-> vhd, raw) the data goes extent by extent.  A size past
 * dst_fmt's limit fails with -EFBIG before anything is made; on failure
 * dst_path is removed.
 */
int xcp__image_copy(xcp__image *src, const char *dst_path,
                    const char *dst_fmt, char *err, size_t errlen);

/* Write what child itself holds into parent (both of one format), as the
 * libraries' commit; child may be opened with XCP__IMAGE_NO_PARENT. */
int xcp__image_commit(xcp__image *child, xcp__image *parent,
                      char *err, size_t errlen);
/* The same, telling p (may be NULL) how far it got as it goes; a nonzero
 * answer stops it and is returned (parent then holds part of child's
 * data: harmless to whatever reads through child). */
int xcp__image_commit_progress(xcp__image *child, xcp__image *parent,
                               const xcp__progress *p, char *err,
                               size_t errlen);

/*
 * Changed block tracking (CBT), as XAPI's VDI.list_changed_blocks sees
 * it: one bit per 64 KiB block of the virtual size, block i in bit
 * 0x80 >> (i % 8) of byte i / 8 (the order of XAPI's base64 bitmaps).
 * An image with CBT on carries the blocks written since its tracking
 * epoch began and the uuid of the snapshot that ended the previous one
 * (prev, "" when none: the first epoch after enable_cbt).
 *
 * qcow2 keeps it in a persistent dirty bitmap of the image itself,
 * named "xcp-cbt" or "xcp-cbt:<prev>" (QEMU sees it; the qcow2 library
 * marks it on every write).  VHD keeps it in a log file beside the
 * image, <image name without .vhd>.cbtlog, as XAPI's sm does; the
 * image layer marks it on every write of a writable handle.  Either
 * way the bits of a write are on disk before its data is written.
 */
#define XCP__CBT_BLOCK_SIZE (64u * 1024)
/* The qcow2 bitmap name prefix. */
#define XCP__CBT_BITMAP "xcp-cbt"

typedef struct xcp__image_cbt {
    char prev[37];
    uint64_t nblocks;           /* covering the virtual size */
    uint8_t *bits;              /* div_up(nblocks, 8) bytes, malloc'd */
} xcp__image_cbt;

/* Free c's bits (c itself is caller storage). */
void xcp__image_cbt_dispose(xcp__image_cbt *c);

/* Whether im has CBT on (*on) and, when out is not NULL and it has, its
 * state into *out (dispose it). */
int xcp__image_cbt_get(xcp__image *im, bool *on, xcp__image_cbt *out,
                       char *err, size_t errlen);

/* Replace im's CBT state with in (its bits cover at most im's size;
 * NULL bits: none set), or turn CBT off (in NULL).  im is writable. */
int xcp__image_cbt_set(xcp__image *im, const xcp__image_cbt *in,
                       char *err, size_t errlen);

/*
 * The coalesce hook: parent is about to take child's place (its file
 * renamed over child's), so it takes child's CBT state too (or none).
 * Data merged from child into parent is not a change of the disk: the
 * blocks it marked on parent are dropped with parent's own state.
 */
int xcp__image_cbt_merge(xcp__image *parent, xcp__image *child,
                         char *err, size_t errlen);

/*
 * im, a new image about to take another's name (its file renamed over
 * the other's), takes the CBT state c that name has (or none: c NULL),
 * before the rename, so that the name never shows an image without it:
 * written into im where the format keeps it in the image (qcow2); a VHD
 * log, named after the image, stays beside the name as it is.  im is
 * writable.
 */
int xcp__image_cbt_carry(xcp__image *im, const xcp__image_cbt *c,
                         char *err, size_t errlen);

/* The path of the CBT log a VHD image at path has (cap bytes). */
int xcp__image_cbt_log_path(const char *path, char *out, size_t cap);

#endif
