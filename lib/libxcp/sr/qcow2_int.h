/*
 * What the qcow2 library's files share (qcow2.c: helpers, the table
 * cache, reading and extents; qcow2_header.c: opening and creating;
 * qcow2_alloc.c: refcounts, cluster allocation, writing, resizing;
 * qcow2_chain.c: backing chains: rebasing, copying, committing).
 */
#ifndef XCP_QCOW2_INT_H
#define XCP_QCOW2_INT_H

#include "qcow2.h"
#include "image_io.h"

#include <stdbool.h>
#include <stddef.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define QCOW2_MAGIC 0x514649fbu

/* Header field offsets. */
#define H_VERSION 4
#define H_BACKING_OFFSET 8
#define H_BACKING_SIZE 16
#define H_CLUSTER_BITS 20
#define H_SIZE 24
#define H_CRYPT 32
#define H_L1_SIZE 36
#define H_L1_OFFSET 40
#define H_RT_OFFSET 48
#define H_RT_CLUSTERS 56
#define H_NB_SNAPSHOTS 60
#define H_SNAPSHOTS_OFFSET 64
#define H_INCOMPAT 72
#define H_COMPAT 80
#define H_AUTOCLEAR 88
#define H_REFCOUNT_ORDER 96
#define H_HEADER_LENGTH 100
#define H_COMPRESSION 104
#define V2_HEADER_LEN 72
#define V3_MIN_HEADER_LEN 104
/* What we write for v3: the fields up to compression_type, padded. */
#define V3_HEADER_LEN 112

#define INCOMPAT_DIRTY (1ull << 0)
#define INCOMPAT_CORRUPT (1ull << 1)
#define INCOMPAT_DATA_FILE (1ull << 2)
#define INCOMPAT_COMPRESSION (1ull << 3)
#define INCOMPAT_EXTL2 (1ull << 4)

#define EXT_END 0x00000000u
#define EXT_BACKING_FORMAT 0xe2792acau
#define EXT_BITMAPS 0x23852875u

/* autoclear bit: the bitmaps extension is consistent. */
#define AUTOCLEAR_BITMAPS (1ull << 0)
/* Bitmap directory entry flags. */
#define BME_IN_USE (1u << 0)
#define BME_AUTO (1u << 1)
#define BME_EXTRA_DATA_COMPAT (1u << 2)
/* Bitmap table entries: data cluster offset, or "all ones" with 0. */
#define BTE_OFFSET_MASK 0x00fffffffffffe00ull
#define BTE_ALL_ONES 1ull
/* QEMU's limits on bitmaps. */
#define MAX_BITMAPS 65535u
#define MAX_BITMAP_DIR_BYTES (64ull << 20)
#define MAX_BITMAP_NAME 1023u

#define L1E_OFFSET_MASK 0x00fffffffffffe00ull
#define L2E_OFFSET_MASK 0x00fffffffffffe00ull
#define RTE_OFFSET_MASK 0xfffffffffffffe00ull
#define OFLAG_COPIED (1ull << 63)
#define OFLAG_COMPRESSED (1ull << 62)
#define OFLAG_ZERO (1ull << 0)

/* QEMU's own limits; images beyond them could not be used by qdisk. */
#define MAX_L1_BYTES (32ull << 20)
#define MAX_RT_BYTES (8ull << 20)
#define MAX_SNAPSHOTS 65536u
/* Host offsets must fit the 56-bit fields of L1/L2 entries. */
#define MAX_HOST_OFFSET (1ull << 56)

/* Cache budget per table kind; tables are a cluster each. */
#define CACHE_BYTES (1u << 20)
#define CACHE_MIN_SLOTS 2u
#define CACHE_MAX_SLOTS 16u
#define RB_CACHE_SLOTS 4u
/* Unit of bulk copies. */
#define COPY_CHUNK (1u << 20)

/* One header extension: type, data length, where its data starts. */
struct ext {
    uint32_t type;
    uint32_t len;
    size_t data;
};

enum { K_UNALLOC, K_ZERO, K_DATA, K_COMPRESSED };

/* Source of zeros for raw images (read-only, so not mutable state). */
static const uint8_t zeros[64 * 1024];

struct cache_slot {
    uint64_t offset;            /* 0 = empty: cluster 0 is never a table */
    uint64_t used;
    uint8_t *data;
};

struct cache {
    struct cache_slot *slot;
    unsigned n;
    uint64_t clock;
};

/* A run of guest bytes that map the same way. */
struct extent {
    int kind;
    uint64_t host;              /* K_DATA: file offset of the first byte */
    uint64_t len;
};

/* One persistent dirty bitmap (qcow2 "bitmaps" extension). */
struct qbitmap {
    char *name;
    uint32_t flags;             /* BME_* */
    unsigned gran_bits;
    uint32_t table_size;        /* entries */
    uint64_t table_off;
    uint64_t *table;            /* host order, loaded at open */
    /* Bits, qcow2 order (bit j of byte i: granule 8i + j), loaded when
     * the handle marks this bitmap on writes or the bits were read. */
    uint8_t *bits;
};

struct xcp__qcow2 {
    int fd;
    char *path;
    unsigned flags;
    unsigned depth;             /* 0 for the top image */
    bool raw;
    bool written;               /* since the last flush */
    bool dirty;                 /* the header's dirty bit is set (ours) */
    bool torn;                  /* a write failed part way (ENOSPC...):
                                   clusters may have leaked, so the dirty
                                   bit stays for the next writable open
                                   to repair them */

    uint64_t size;              /* virtual size */
    uint64_t file_size;

    uint32_t version;
    uint32_t cluster_bits;
    uint64_t cluster_size;
    uint64_t l2_entries;
    uint32_t header_length;
    uint32_t refcount_order;
    uint64_t rb_entries;
    uint64_t incompat;
    uint32_t nb_snapshots;

    uint64_t l1_offset;
    uint64_t l1_size;
    uint64_t *l1;

    /* Refcount table, loaded only for writing. */
    uint64_t rt_offset;
    uint64_t rt_clusters;
    uint64_t rt_entries;
    uint64_t *rt;
    uint64_t next_free;         /* first cluster index never used */
    bool growing_rt;

    bool has_backing;
    char backing[XCP__QCOW2_BACKING_MAX + 1];
    char backing_fmt[16];

    /* Persistent bitmaps, when the extension is there and understood. */
    struct qbitmap *bm;
    uint32_t nb_bm;
    uint64_t bm_dir_off;
    uint64_t bm_dir_size;

    struct cache l2c;
    struct cache rbc;
    uint8_t *cow;               /* one cluster of scratch for writes */
    xcp__qcow2 *below;          /* the opened backing image */
};

/*
 * The dirty bit (incompatible feature bit 0, version 3): set, and synced,
 * before the first change after a flush; cleared once a flush has synced
 * what was written.  Allocation appends and may leak clusters when the
 * writer dies, so an image found dirty is repaired (leaks freed) by the
 * next writer to open it, as QEMU does.
 */
int xcp__qcow2_set_dirty(xcp__qcow2 *q, bool dirty, char *err,
                         size_t errlen);

/* Recount every cluster the tables reach and free the ones counted but
 * unreached (leaks of a writer that died); -EBADMSG, changing nothing,
 * when a reached cluster is counted too low. */
int xcp__qcow2_repair_leaks(xcp__qcow2 *q, char *err, size_t errlen);

/* Read the L1 table, once (it is read lazily, at its first use). */
int xcp__qcow2_load_l1(xcp__qcow2 *q, char *err, size_t errlen);

/* Mark the image dirty before its first change (qwrite does); a
 * rewrite of the header read from the disk must call it before the read,
 * or the rewrite would carry the bit as it was before. */
static inline int qmark(xcp__qcow2 *q, char *err, size_t errlen)
{
    return q->dirty || q->version < 3
               ? 0 : xcp__qcow2_set_dirty(q, true, err, errlen);
}

/* Every write to an image goes through here so file_size stays exact,
 * after marking the image dirty. */
static inline int qwrite(xcp__qcow2 *q, const void *buf, size_t len,
                         uint64_t off,
                  const char *what, char *err, size_t errlen)
{
    int ret = qmark(q, err, errlen);

    if (ret < 0)
        return ret;
    ret = pwrite_full(q->fd, buf, len, off);
    if (ret < 0)
        return fail(err, errlen, ret, "%s: writing %s at offset %llu: %s",
                    q->path, what, (unsigned long long)off, strerror(-ret));
    if (off + len > q->file_size)
        q->file_size = off + len;
    q->written = true;
    return 0;
}

/* Open path (format NULL: probe) with flags; depth counts the backing
 * images above it, bounded. */
int xcp__qcow2_open_image(xcp__qcow2 **out, const char *path,
                          const char *format,
                          unsigned flags, unsigned depth,
                          char *err, size_t errlen);

/* Read guest bytes [off, off+len) through the chain (holes read zeros). */
int xcp__qcow2_read_at(xcp__qcow2 *q, uint64_t off, uint8_t *buf, uint64_t len,
                       char *err, size_t errlen);

/* data == NULL writes zeros: by flag where possible, else by bytes. */
/* Write len bytes at guest offset off from the file fd at src_off
 * (another image's data): runs of whole clusters are copied file to file
 * in the kernel (copy_file_range, else a buffer), the rest as write_at. */
int xcp__qcow2_write_from(xcp__qcow2 *q, uint64_t off, int fd,
                          uint64_t src_off, uint64_t len, char *err,
                          size_t errlen);
int xcp__qcow2_write_at(xcp__qcow2 *q, uint64_t off, const uint8_t *data,
                        uint64_t len, char *err, size_t errlen);

/* Set the refcount of clusters [first, first+n) to value, growing the
 * refcount table as needed. */
int xcp__qcow2_rc_set_range(xcp__qcow2 *q, uint64_t first, uint64_t n,
                            uint64_t value, char *err, size_t errlen);

/* n contiguous clusters at the end of the file, refcount 1, zeros. */
int xcp__qcow2_alloc_clusters(xcp__qcow2 *q, uint64_t n, uint64_t *host,
                              char *err, size_t errlen);

/* Grow the file to at least end bytes (ftruncate), keeping file_size. */
int xcp__qcow2_extend_file(xcp__qcow2 *q, uint64_t end, char *err,
                           size_t errlen);

/* Whether fmt names a format this library opens (qcow2, raw). */
bool xcp__qcow2_format_ok(const char *fmt);

/* Entries needed to map size bytes. */
uint64_t xcp__qcow2_l1_entries_for(uint64_t size, unsigned cluster_bits);

/* A cache c of n slots of one cluster each; -ENOMEM on failure. */
int xcp__qcow2_cache_init(struct cache *c, unsigned n);

/* Release c's slots. */
void xcp__qcow2_cache_free(struct cache *c);

/* fresh: the cluster is known to be zeros on disk, skip the read. */
int xcp__qcow2_cache_get(xcp__qcow2 *q, struct cache *c, uint64_t off,
                         bool fresh,
                         uint8_t **out, char *err, size_t errlen);

/* Refcount i of refcount block rb, entries of 2^order bits. */
uint64_t xcp__qcow2_rc_get(const uint8_t *rb, uint64_t i, unsigned order);

/* The kind (K_*) of L2 entry e and its host offset, checked against
 * the file. */
int xcp__qcow2_classify(xcp__qcow2 *q, uint64_t e, int *kind, uint64_t *host,
                        char *err, size_t errlen);

/* The L2 table for L1 index l1i, or NULL when it is not allocated. */
int xcp__qcow2_l2_table(xcp__qcow2 *q, uint64_t l1i, uint8_t **table,
                        uint64_t *l2off, char *err, size_t errlen);

/* How the bytes [off, off + max) start: one extent within one L2 table. */
int xcp__qcow2_map_extent(xcp__qcow2 *q, uint64_t off, uint64_t max,
                          struct extent *e, char *err, size_t errlen);

/* Whether [off, ...) holds data anywhere in the chain, and for how long. */
int xcp__qcow2_chain_extent(xcp__qcow2 *q, uint64_t off, uint64_t max,
                            bool *data, uint64_t *len, char *err,
                            size_t errlen);

/* What the backing chain shows at this level; zeros past its end. */
int xcp__qcow2_read_below(xcp__qcow2 *q, uint64_t off, uint8_t *buf,
                          uint64_t len,
                          char *err, size_t errlen);

/* -EINVAL unless [off, off+len) lies within the virtual size. */
int xcp__qcow2_check_range(xcp__qcow2 *q, uint64_t off, uint64_t len,
                           char *err, size_t errlen);

/* -EROFS when q was opened read-only. */
int xcp__qcow2_check_writable(xcp__qcow2 *q, char *err, size_t errlen);

/*
 * Step through the extension area h[*pos, end).  Returns 1 with x filled,
 * 0 at the end marker or the end of the area, or -EBADMSG.
 */
int xcp__qcow2_ext_next(const char *path, const uint8_t *h, size_t end,
                        size_t *pos, struct ext *x, char *err, size_t errlen);

/* Load the bitmap directory named by the extension at h + data (len
 * bytes): 0, or -EBADMSG / -ENOTSUP with a message for what we would not
 * keep up to date (the caller then drops the bitmaps). */
int xcp__qcow2_bitmaps_load(xcp__qcow2 *q, const uint8_t *ext, uint32_t len,
                            char *err, size_t errlen);

/* Drop the bitmaps a writer that died left in use (inconsistent, as
 * QEMU's next writer finds them) from writable q, unless a writer
 * still holds the image (xcp__qcow2_live_writer). */
int xcp__qcow2_bitmaps_drop_stale(xcp__qcow2 *q, char *err, size_t errlen);

/* Free the in-memory bitmaps. */
void xcp__qcow2_bitmaps_free(xcp__qcow2 *q);

/* Call fn(arg, host) for every cluster the loaded bitmaps use (their
 * directory, tables and data); stops at and returns fn's first nonzero
 * answer. */
int xcp__qcow2_bitmaps_each_cluster(const xcp__qcow2 *q,
                                    int (*fn)(void *arg, uint64_t host),
                                    void *arg);

/* Set the bits of [off, off + len) in every enabled bitmap, durably,
 * before the data is written. */
int xcp__qcow2_bitmaps_mark(xcp__qcow2 *q, uint64_t off, uint64_t len,
                            char *err, size_t errlen);

/* Rewrite all bitmaps for the current virtual size, q->size, after a
 * resize from old_size: the header write switching to them writes the
 * new size too, so a crash leaves old size and bitmaps or new ones. */
int xcp__qcow2_bitmaps_resized(xcp__qcow2 *q, uint64_t old_size, char *err,
                               size_t errlen);

/* Open the backing image name (relative to q's directory) of format fmt
 * read-only into *below. */
int xcp__qcow2_open_chain(xcp__qcow2 **below, const xcp__qcow2 *q,
                          const char *name, const char *fmt,
                          char *err, size_t errlen);

#endif
