/*
 * qcow2.c - the qcow2 (v2/v3) and raw image library behind the SR drivers.
 *
 * Written from the format description (QEMU's docs/interop/qcow2.txt).
 * Everything goes through pread/pwrite on one descriptor per image.
 *
 * Allocation only ever appends: a new cluster is taken at the end of the
 * file, its refcount is written first, then its contents, then the table
 * entry pointing to it.  A crash can therefore leak clusters but never
 * leave a table pointing at a cluster whose refcount is zero.  Freed
 * clusters (old L1 and refcount tables after they grow) are not reused.
 *
 * Everything read from the file is treated as hostile: each offset is
 * checked against the file size before use, and no allocation is made
 * whose size is not bounded by the file size or a fixed limit, because
 * images come from guests and imports and the parser is fuzzed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* SEEK_DATA, SEEK_HOLE */
#endif
#include "qcow2.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

struct xcp__qcow2 {
    int fd;
    char *path;
    unsigned flags;
    unsigned depth;             /* 0 for the top image */
    bool raw;
    bool written;               /* since the last flush */

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

    struct cache l2c;
    struct cache rbc;
    uint8_t *cow;               /* one cluster of scratch for writes */
    xcp__qcow2 *below;          /* the opened backing image */
};

static int open_image(xcp__qcow2 **out, const char *path, const char *format,
                      unsigned flags, unsigned depth,
                      char *err, size_t errlen);
static int read_at(xcp__qcow2 *q, uint64_t off, uint8_t *buf, uint64_t len,
                   char *err, size_t errlen);
static int write_at(xcp__qcow2 *q, uint64_t off, const uint8_t *buf,
                    uint64_t len, char *err, size_t errlen);
static int rc_set_range(xcp__qcow2 *q, uint64_t first, uint64_t n,
                        uint64_t value, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Put "prefix: " in front of the message a callee left in err. */
static int prefix_err(char *err, size_t errlen, int code, const char *prefix)
{
    char inner[768];

    if (!err || !errlen)
        return code;
    snprintf(inner, sizeof(inner), "%s", err);
    snprintf(err, errlen, "%s: %s", prefix, inner);
    return code;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, v >> 32);
    put32(p + 4, (uint32_t)v);
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static bool all_zero(const uint8_t *p, size_t len)
{
    return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* Returns the bytes read (short only at end of file) or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    ssize_t r;

    while (done < len) {
        r = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    ssize_t r;

    while (done < len) {
        r = pwrite(fd, (const uint8_t *)buf + done, len - done,
                   (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        done += (size_t)r;
    }
    return 0;
}

/* Every write to an image goes through here so file_size stays exact. */
static int qwrite(xcp__qcow2 *q, const void *buf, size_t len, uint64_t off,
                  const char *what, char *err, size_t errlen)
{
    int ret = pwrite_full(q->fd, buf, len, off);

    if (ret < 0)
        return fail(err, errlen, ret, "%s: writing %s at offset %llu: %s",
                    q->path, what, (unsigned long long)off, strerror(-ret));
    if (off + len > q->file_size)
        q->file_size = off + len;
    q->written = true;
    return 0;
}

static int extend_file(xcp__qcow2 *q, uint64_t end, char *err, size_t errlen)
{
    if (end <= q->file_size)
        return 0;
    if (ftruncate(q->fd, (off_t)end) < 0)
        return fail(err, errlen, -errno, "%s: extending to %llu bytes: %s",
                    q->path, (unsigned long long)end, strerror(errno));
    q->file_size = end;
    q->written = true;
    return 0;
}

static bool format_ok(const char *fmt)
{
    return strcmp(fmt, "qcow2") == 0 || strcmp(fmt, "raw") == 0;
}

/* Entries needed to map size bytes. */
static uint64_t l1_entries_for(uint64_t size, unsigned cluster_bits)
{
    /* An L2 table maps cluster_size / 8 clusters. */
    unsigned span_bits = 2 * cluster_bits - 3;

    return (size >> span_bits) + ((size & ((1ull << span_bits) - 1)) != 0);
}

/* ------------------------------------------------------------------ */
/* Table cache (write-through: a slot never holds unwritten changes)   */

static int cache_init(struct cache *c, unsigned n)
{
    c->slot = calloc(n, sizeof(*c->slot));
    if (!c->slot)
        return -ENOMEM;
    c->n = n;
    c->clock = 0;
    return 0;
}

static void cache_free(struct cache *c)
{
    unsigned i;

    if (!c->slot)
        return;
    for (i = 0; i < c->n; i++)
        free(c->slot[i].data);
    free(c->slot);
    c->slot = NULL;
}

/* fresh: the cluster is known to be zeros on disk, skip the read. */
static int cache_get(xcp__qcow2 *q, struct cache *c, uint64_t off, bool fresh,
                     uint8_t **out, char *err, size_t errlen)
{
    struct cache_slot *victim = &c->slot[0];
    ssize_t r;
    unsigned i;

    if (off == 0 || off % q->cluster_size)
        return fail(err, errlen, -EBADMSG,
                    "%s: metadata table at bad offset %llu", q->path,
                    (unsigned long long)off);
    for (i = 0; i < c->n; i++) {
        if (c->slot[i].offset == off) {
            c->slot[i].used = ++c->clock;
            *out = c->slot[i].data;
            return 0;
        }
        if (c->slot[i].used < victim->used)
            victim = &c->slot[i];
    }
    if (!victim->data) {
        victim->data = malloc(q->cluster_size);
        if (!victim->data)
            return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    }
    victim->offset = 0;
    if (fresh) {
        memset(victim->data, 0, q->cluster_size);
    } else {
        r = pread_full(q->fd, victim->data, q->cluster_size, off);
        if (r < 0)
            return fail(err, errlen, (int)r,
                        "%s: reading metadata at offset %llu: %s", q->path,
                        (unsigned long long)off, strerror((int)-r));
        if ((uint64_t)r != q->cluster_size)
            return fail(err, errlen, -EBADMSG,
                        "%s: metadata table at offset %llu is cut short by "
                        "the end of the file (truncated image?)", q->path,
                        (unsigned long long)off);
    }
    victim->offset = off;
    victim->used = ++c->clock;
    *out = victim->data;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Refcounts and allocation                                            */

static uint64_t rc_get(const uint8_t *rb, uint64_t i, unsigned order)
{
    unsigned bits = 1u << order, k;
    uint64_t v = 0;

    if (bits < 8)
        return (rb[i * bits / 8] >> (i * bits % 8)) & ((1u << bits) - 1);
    for (k = 0; k < bits / 8; k++)
        v = v << 8 | rb[i * (bits / 8) + k];
    return v;
}

static void rc_put(uint8_t *rb, uint64_t i, unsigned order, uint64_t v)
{
    unsigned bits = 1u << order, shift, k;
    uint8_t mask;

    if (bits < 8) {
        shift = i * bits % 8;
        mask = (uint8_t)(((1u << bits) - 1) << shift);
        rb[i * bits / 8] = (uint8_t)((rb[i * bits / 8] & ~mask) |
                                     ((v << shift) & mask));
        return;
    }
    for (k = bits / 8; k-- > 0; v >>= 8)
        rb[i * (bits / 8) + k] = (uint8_t)v;
}

static int grow_rt(xcp__qcow2 *q, uint64_t min_index, char *err,
                   size_t errlen);

static int write_rt_entry(xcp__qcow2 *q, uint64_t i, char *err, size_t errlen)
{
    uint8_t b[8];

    put64(b, q->rt[i]);
    return qwrite(q, b, 8, q->rt_offset + i * 8, "refcount table entry",
                  err, errlen);
}

/* Make sure refcount block ti exists, allocating it at the end of file. */
static int ensure_rb(xcp__qcow2 *q, uint64_t ti, char *err, size_t errlen)
{
    uint64_t b;
    int ret;

    if (ti >= q->rt_entries) {
        ret = grow_rt(q, ti, err, errlen);
        if (ret < 0)
            return ret;
    }
    if (q->rt[ti])
        return 0;
    if (q->next_free >= MAX_HOST_OFFSET / q->cluster_size)
        return fail(err, errlen, -EFBIG,
                    "%s: image file would exceed the 64 PiB qcow2 limit",
                    q->path);
    b = q->next_free++;
    /* Past the old end of file, so the new block reads as zeros. */
    ret = extend_file(q, (b + 1) * q->cluster_size, err, errlen);
    if (ret < 0)
        return ret;
    q->rt[ti] = b * q->cluster_size;
    ret = write_rt_entry(q, ti, err, errlen);
    if (ret < 0)
        return ret;
    /* The block counts itself when it lies in its own range. */
    return rc_set_range(q, b, 1, 1, err, errlen);
}

static int rc_set_range(xcp__qcow2 *q, uint64_t first, uint64_t n,
                        uint64_t value, char *err, size_t errlen)
{
    unsigned bits = 1u << q->refcount_order;
    uint64_t ti, i0, cnt, i, b0, b1;
    uint8_t *rb;
    int ret;

    while (n) {
        ti = first / q->rb_entries;
        i0 = first % q->rb_entries;
        cnt = min64(n, q->rb_entries - i0);
        ret = ensure_rb(q, ti, err, errlen);
        if (ret < 0)
            return ret;
        ret = cache_get(q, &q->rbc, q->rt[ti], false, &rb, err, errlen);
        if (ret < 0)
            return ret;
        for (i = i0; i < i0 + cnt; i++)
            rc_put(rb, i, q->refcount_order, value);
        b0 = i0 * bits / 8;
        b1 = div_up((i0 + cnt) * bits, 8);
        ret = qwrite(q, rb + b0, b1 - b0, q->rt[ti] + b0, "refcount block",
                     err, errlen);
        if (ret < 0)
            return ret;
        first += cnt;
        n -= cnt;
    }
    return 0;
}

/* n contiguous clusters at the end of the file, refcount 1, zeros. */
static int alloc_clusters(xcp__qcow2 *q, uint64_t n, uint64_t *host,
                          char *err, size_t errlen)
{
    uint64_t start = q->next_free;
    int ret;

    if (start + n > MAX_HOST_OFFSET / q->cluster_size)
        return fail(err, errlen, -EFBIG,
                    "%s: image file would exceed the 64 PiB qcow2 limit",
                    q->path);
    q->next_free += n;
    ret = rc_set_range(q, start, n, 1, err, errlen);
    if (ret < 0)
        return ret;
    ret = extend_file(q, (start + n) * q->cluster_size, err, errlen);
    if (ret < 0)
        return ret;
    *host = start * q->cluster_size;
    return 0;
}

/*
 * Move the refcount table to a bigger place at the end of the file.  It
 * must also cover its own clusters and the blocks counting them, so it
 * is sized generously: a second growth from inside this one is a bug.
 */
static int grow_rt(xcp__qcow2 *q, uint64_t min_index, char *err,
                   size_t errlen)
{
    uint64_t per = q->cluster_size / 8, entries, ntc = 0, reach, need, i;
    uint64_t *old = q->rt, old_off = q->rt_offset;
    uint64_t old_clusters = q->rt_clusters;
    uint64_t old_entries = q->rt_entries, p;
    uint8_t *disk = NULL, hdr[12];
    int ret;

    if (q->growing_rt)
        return fail(err, errlen, -EFBIG,
                    "%s: refcount table growth did not converge", q->path);
    entries = min_index + 1 > old_entries * 2 ? min_index + 1
                                              : old_entries * 2;
    for (;;) {
        ntc = div_up(entries, per);
        reach = q->next_free + 2 * ntc + 4;
        need = reach / q->rb_entries + 1;
        if (entries >= need)
            break;
        entries = need;
    }
    entries = ntc * per;
    if (ntc * q->cluster_size > MAX_RT_BYTES)
        return fail(err, errlen, -EFBIG,
                    "%s: refcount table would exceed %llu MiB", q->path,
                    MAX_RT_BYTES >> 20);
    q->rt = calloc(entries, sizeof(*q->rt));
    disk = malloc(entries * 8);
    if (!q->rt || !disk) {
        ret = fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
        goto out;
    }
    memcpy(q->rt, old, old_entries * sizeof(*old));
    p = q->next_free;
    q->next_free += ntc;
    ret = extend_file(q, q->next_free * q->cluster_size, err, errlen);
    if (ret < 0)
        goto out;
    q->rt_entries = entries;
    q->rt_offset = p * q->cluster_size;
    q->rt_clusters = ntc;
    q->growing_rt = true;
    ret = rc_set_range(q, p, ntc, 1, err, errlen);
    q->growing_rt = false;
    if (ret < 0)
        goto out;
    for (i = 0; i < entries; i++)
        put64(disk + i * 8, q->rt[i]);
    ret = qwrite(q, disk, entries * 8, q->rt_offset, "refcount table", err,
                 errlen);
    if (ret < 0)
        goto out;
    put64(hdr, q->rt_offset);
    put32(hdr + 8, (uint32_t)ntc);
    ret = qwrite(q, hdr, sizeof(hdr), H_RT_OFFSET, "header", err, errlen);
    if (ret < 0)
        goto out;
    free(old);
    old = NULL;
    ret = rc_set_range(q, old_off / q->cluster_size, old_clusters, 0, err,
                       errlen);
out:
    if (old) {
        /* Not switched: keep using the old table; clusters may leak. */
        free(q->rt);
        q->rt = old;
        q->rt_entries = old_entries;
        q->rt_offset = old_off;
        q->rt_clusters = old_clusters;
    }
    free(disk);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Guest cluster mapping                                               */

static int classify(xcp__qcow2 *q, uint64_t e, int *kind, uint64_t *host,
                    char *err, size_t errlen)
{
    uint64_t off = e & L2E_OFFSET_MASK;

    *host = 0;
    if (e & OFLAG_COMPRESSED) {
        *kind = K_COMPRESSED;
        return 0;
    }
    if ((e & OFLAG_ZERO) && q->version < 3)
        return fail(err, errlen, -EBADMSG,
                    "%s: zero-cluster flag in a version 2 image", q->path);
    if (off && (off % q->cluster_size || off >= q->file_size))
        return fail(err, errlen, -EBADMSG,
                    "%s: L2 entry points to %s offset %llu", q->path,
                    off % q->cluster_size ? "unaligned" : "out-of-file",
                    (unsigned long long)off);
    if (e & OFLAG_ZERO) {
        *kind = K_ZERO;
        *host = off;
        return 0;
    }
    if (!off) {
        if (e & OFLAG_COPIED)
            return fail(err, errlen, -EBADMSG,
                        "%s: L2 entry marked in use without an offset",
                        q->path);
        *kind = K_UNALLOC;
        return 0;
    }
    *kind = K_DATA;
    *host = off;
    return 0;
}

/* The L2 table for L1 index l1i, or NULL when it is not allocated. */
static int l2_table(xcp__qcow2 *q, uint64_t l1i, uint8_t **table,
                    uint64_t *l2off, char *err, size_t errlen)
{
    uint64_t off = q->l1[l1i] & L1E_OFFSET_MASK;

    *table = NULL;
    *l2off = off;
    if (!off)
        return 0;
    if (off % q->cluster_size || off >= q->file_size)
        return fail(err, errlen, -EBADMSG,
                    "%s: L1 entry %llu points to %s L2 table at %llu",
                    q->path, (unsigned long long)l1i,
                    off % q->cluster_size ? "an unaligned" : "an out-of-file",
                    (unsigned long long)off);
    return cache_get(q, &q->l2c, off, false, table, err, errlen);
}

/* How the bytes [off, off + max) start: one extent within one L2 table. */
static int map_extent(xcp__qcow2 *q, uint64_t off, uint64_t max,
                      struct extent *e, char *err, size_t errlen)
{
    uint64_t cs = q->cluster_size, span = cs * q->l2_entries;
    uint64_t l1i = off / span, in = off % cs, idx, host, l2off, len;
    uint8_t *table;
    int kind = K_UNALLOC, ret;

    max = min64(max, span - off % span);
    e->host = 0;
    if (l1i >= q->l1_size) {
        e->kind = K_UNALLOC;
        e->len = max;
        return 0;
    }
    ret = l2_table(q, l1i, &table, &l2off, err, errlen);
    if (ret < 0)
        return ret;
    if (!table) {
        e->kind = K_UNALLOC;
        e->len = max;
        return 0;
    }
    idx = off / cs % q->l2_entries;
    ret = classify(q, be64(table + idx * 8), &e->kind, &e->host, err, errlen);
    if (ret < 0)
        return ret;
    len = cs - in;
    while (len < max) {
        idx++;
        ret = classify(q, be64(table + idx * 8), &kind, &host, err, errlen);
        if (ret < 0)
            return ret;
        if (kind != e->kind || kind == K_COMPRESSED ||
            (kind == K_DATA && host != e->host + (len + in)))
            break;
        len += cs;
    }
    e->len = min64(len, max);
    if (e->kind == K_DATA)
        e->host += in;
    return 0;
}

/* Holes of a sparse raw file; where SEEK_DATA is unknown all is data. */
static int raw_extent(xcp__qcow2 *q, uint64_t off, uint64_t max, bool *data,
                      uint64_t *len)
{
    off_t d = lseek(q->fd, (off_t)off, SEEK_DATA), h;

    *data = true;
    *len = max;
    if (d < 0) {
        if (errno == ENXIO)
            *data = false;      /* a hole up to the end of the file */
        return 0;
    }
    if ((uint64_t)d > off) {
        *data = false;
        *len = min64(max, (uint64_t)d - off);
        return 0;
    }
    h = lseek(q->fd, (off_t)off, SEEK_HOLE);
    if (h > d)
        *len = min64(max, (uint64_t)h - off);
    return 0;
}

/* Whether [off, ...) holds data anywhere in the chain, and for how long. */
static int chain_extent(xcp__qcow2 *q, uint64_t off, uint64_t max,
                        bool *data, uint64_t *len, char *err, size_t errlen)
{
    struct extent e;
    int ret;

    if (q->raw)
        return raw_extent(q, off, max, data, len);
    ret = map_extent(q, off, max, &e, err, errlen);
    if (ret < 0)
        return ret;
    *len = e.len;
    *data = e.kind == K_DATA || e.kind == K_COMPRESSED;
    if (e.kind != K_UNALLOC || !q->below || off >= q->below->size)
        return 0;
    return chain_extent(q->below, off, min64(e.len, q->below->size - off),
                        data, len, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */

/* What the backing chain shows at this level; zeros past its end. */
static int read_below(xcp__qcow2 *q, uint64_t off, uint8_t *buf, uint64_t len,
                      char *err, size_t errlen)
{
    uint64_t m = 0;
    int ret;

    if (q->has_backing && !q->below)
        return fail(err, errlen, -ENXIO,
                    "%s: cluster at %llu comes from the backing file, which "
                    "was not opened", q->path, (unsigned long long)off);
    if (q->below && off < q->below->size) {
        m = min64(len, q->below->size - off);
        ret = read_at(q->below, off, buf, m, err, errlen);
        if (ret < 0)
            return ret;
    }
    memset(buf + m, 0, len - m);
    return 0;
}

static int read_at(xcp__qcow2 *q, uint64_t off, uint8_t *buf, uint64_t len,
                   char *err, size_t errlen)
{
    struct extent e;
    ssize_t r;
    int ret;

    while (len) {
        if (q->raw) {
            e.kind = K_DATA;
            e.host = off;
            e.len = len;
        } else {
            ret = map_extent(q, off, len, &e, err, errlen);
            if (ret < 0)
                return ret;
        }
        switch (e.kind) {
        case K_DATA:
            r = pread_full(q->fd, buf, e.len, e.host);
            if (r < 0)
                return fail(err, errlen, (int)r, "%s: reading at %llu: %s",
                            q->path, (unsigned long long)e.host,
                            strerror((int)-r));
            /* A cluster cut short by the end of file reads as zeros. */
            memset(buf + r, 0, e.len - (uint64_t)r);
            break;
        case K_ZERO:
            memset(buf, 0, e.len);
            break;
        case K_UNALLOC:
            ret = read_below(q, off, buf, e.len, err, errlen);
            if (ret < 0)
                return ret;
            break;
        default:
            return fail(err, errlen, -ENOTSUP,
                        "%s: guest offset %llu is in a compressed cluster; "
                        "compressed clusters are not supported", q->path,
                        (unsigned long long)off);
        }
        off += e.len;
        buf += e.len;
        len -= e.len;
    }
    return 0;
}

static int check_range(xcp__qcow2 *q, uint64_t off, uint64_t len,
                       char *err, size_t errlen)
{
    if (off > q->size || len > q->size - off)
        return fail(err, errlen, -EINVAL,
                    "%s: range %llu+%llu is beyond the virtual size %llu",
                    q->path, (unsigned long long)off, (unsigned long long)len,
                    (unsigned long long)q->size);
    return 0;
}

int xcp__qcow2_read(xcp__qcow2 *q, uint64_t offset, void *buf, size_t len,
                    char *err, size_t errlen)
{
    int ret = check_range(q, offset, len, err, errlen);

    if (ret < 0)
        return ret;
    return read_at(q, offset, buf, len, err, errlen);
}

int xcp__qcow2_extent(xcp__qcow2 *q, uint64_t offset, uint64_t max,
                      bool *data, uint64_t *len, char *err, size_t errlen)
{
    int ret = check_range(q, offset, max, err, errlen);

    if (ret == 0 && !max)
        ret = fail(err, errlen, -EINVAL, "%s: empty extent query", q->path);
    if (ret < 0)
        return ret;
    return chain_extent(q, offset, max, data, len, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */

static int set_l1(xcp__qcow2 *q, uint64_t i, uint64_t v, char *err,
                  size_t errlen)
{
    uint8_t b[8];

    q->l1[i] = v;
    put64(b, v);
    return qwrite(q, b, 8, q->l1_offset + i * 8, "L1 entry", err, errlen);
}

static int set_l2(xcp__qcow2 *q, uint64_t l2off, uint64_t idx, uint64_t v,
                  char *err, size_t errlen)
{
    uint8_t *table = NULL;
    int ret;

    ret = cache_get(q, &q->l2c, l2off, false, &table, err, errlen);
    if (ret < 0)
        return ret;
    put64(table + idx * 8, v);
    return qwrite(q, table + idx * 8, 8, l2off + idx * 8, "L2 entry", err,
                  errlen);
}

/* The L2 table covering l1i, allocated if missing. */
static int l2_for_write(xcp__qcow2 *q, uint64_t l1i, uint64_t *l2off,
                        char *err, size_t errlen)
{
    uint8_t *table;
    uint64_t off;
    int ret;

    ret = l2_table(q, l1i, &table, l2off, err, errlen);
    if (ret < 0 || *l2off)
        return ret;
    ret = alloc_clusters(q, 1, &off, err, errlen);
    if (ret < 0)
        return ret;
    ret = cache_get(q, &q->l2c, off, true, &table, err, errlen);
    if (ret < 0)
        return ret;
    *l2off = off;
    return set_l1(q, l1i, off | OFLAG_COPIED, err, errlen);
}

/*
 * Write n bytes at offset `in` of the guest cluster starting at coff.
 * data == NULL writes zeros.
 */
static int write_cluster(xcp__qcow2 *q, uint64_t coff, uint64_t in,
                         const uint8_t *data, uint64_t n,
                         char *err, size_t errlen)
{
    uint64_t cs = q->cluster_size, span = cs * q->l2_entries;
    uint64_t l1i = coff / span, idx = coff / cs % q->l2_entries;
    uint64_t l2off, host = 0, entry = 0, below_len;
    const uint8_t *src;
    uint8_t *table;
    int kind = K_UNALLOC, ret;

    ret = l2_table(q, l1i, &table, &l2off, err, errlen);
    if (ret == 0 && table) {
        entry = be64(table + idx * 8);
        ret = classify(q, entry, &kind, &host, err, errlen);
    }
    if (ret < 0)
        return ret;
    /* Zeros over a hole with nothing below already read as zeros. */
    if (!data && kind == K_UNALLOC && !q->has_backing)
        return 0;
    ret = l2_for_write(q, l1i, &l2off, err, errlen);
    if (ret < 0)
        return ret;
    if (kind == K_COMPRESSED)
        return fail(err, errlen, -ENOTSUP,
                    "%s: cannot write into compressed cluster at guest "
                    "offset %llu", q->path, (unsigned long long)coff);
    if (kind == K_DATA) {
        if (data) {
            ret = qwrite(q, data, n, host + in, "data", err, errlen);
        } else {
            memset(q->cow, 0, n);
            ret = qwrite(q, q->cow, n, host + in, "data", err, errlen);
        }
        if (ret < 0 || (entry & OFLAG_COPIED))
            return ret;
        return set_l2(q, l2off, idx, entry | OFLAG_COPIED, err, errlen);
    }
    /* A new cluster, or a zero cluster becoming data: build it whole. */
    if (data && n == cs) {
        src = data;
    } else {
        if (kind == K_ZERO || n == cs) {
            memset(q->cow, 0, cs);
        } else {
            /* Only what lies inside the virtual size comes from below,
             * so a later resize cannot expose stale backing data. */
            below_len = coff < q->size ? min64(cs, q->size - coff) : 0;
            ret = read_below(q, coff, q->cow, below_len, err, errlen);
            if (ret < 0)
                return ret;
            memset(q->cow + below_len, 0, cs - below_len);
        }
        if (data)
            memcpy(q->cow + in, data, n);
        else
            memset(q->cow + in, 0, n);
        src = q->cow;
    }
    if (!host) {
        ret = alloc_clusters(q, 1, &host, err, errlen);
        if (ret < 0)
            return ret;
    }
    ret = qwrite(q, src, cs, host, "data cluster", err, errlen);
    if (ret < 0)
        return ret;
    return set_l2(q, l2off, idx, host | OFLAG_COPIED, err, errlen);
}

/* Mark a whole guest cluster as reading zeros (v3 only). */
static int zero_cluster(xcp__qcow2 *q, uint64_t coff, char *err,
                        size_t errlen)
{
    uint64_t cs = q->cluster_size, span = cs * q->l2_entries;
    uint64_t l1i = coff / span, idx = coff / cs % q->l2_entries;
    uint64_t l2off, host = 0;
    uint8_t *table;
    int kind = K_UNALLOC, ret;

    ret = l2_table(q, l1i, &table, &l2off, err, errlen);
    if (ret == 0 && table)
        ret = classify(q, be64(table + idx * 8), &kind, &host, err, errlen);
    if (ret < 0)
        return ret;
    /* Already zeros: a zero cluster, or a hole with nothing below. */
    if (kind == K_ZERO || (kind == K_UNALLOC && !q->has_backing))
        return 0;
    if (kind == K_COMPRESSED)
        return fail(err, errlen, -ENOTSUP,
                    "%s: cannot zero compressed cluster at guest offset %llu",
                    q->path, (unsigned long long)coff);
    ret = l2_for_write(q, l1i, &l2off, err, errlen);
    if (ret < 0)
        return ret;
    /* An allocated cluster stays allocated (preallocated zero), so no
     * refcount changes and no leak. */
    return set_l2(q, l2off, idx,
                  host ? host | OFLAG_COPIED | OFLAG_ZERO : OFLAG_ZERO,
                  err, errlen);
}

/* data == NULL writes zeros: by flag where possible, else by bytes. */
static int write_at(xcp__qcow2 *q, uint64_t off, const uint8_t *data,
                    uint64_t len, char *err, size_t errlen)
{
    uint64_t cs = q->cluster_size, in, n;
    int ret;

    if (q->raw) {
        while (len) {
            n = min64(len, data ? COPY_CHUNK : sizeof(zeros));
            ret = qwrite(q, data ? data : zeros, n, off, "data", err, errlen);
            if (ret < 0)
                return ret;
            off += n;
            len -= n;
            if (data)
                data += n;
        }
        return 0;
    }
    while (len) {
        in = off % cs;
        n = min64(len, cs - in);
        if (!data && n == cs && q->version >= 3)
            ret = zero_cluster(q, off - in, err, errlen);
        else
            ret = write_cluster(q, off - in, in, data, n, err, errlen);
        if (ret < 0)
            return ret;
        off += n;
        len -= n;
        if (data)
            data += n;
    }
    return 0;
}

static int check_writable(xcp__qcow2 *q, char *err, size_t errlen)
{
    if (q->flags & XCP__QCOW2_RDONLY)
        return fail(err, errlen, -EROFS, "%s: image is opened read-only",
                    q->path);
    return 0;
}

int xcp__qcow2_write(xcp__qcow2 *q, uint64_t offset, const void *buf,
                     size_t len, char *err, size_t errlen)
{
    int ret = check_writable(q, err, errlen);

    if (ret == 0)
        ret = check_range(q, offset, len, err, errlen);
    if (ret < 0)
        return ret;
    return write_at(q, offset, buf, len, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Opening                                                             */

/* One header extension: type, data length, where its data starts. */
struct ext {
    uint32_t type;
    uint32_t len;
    size_t data;
};

/*
 * Step through the extension area h[*pos, end).  Returns 1 with x filled,
 * 0 at the end marker or the end of the area, or -EBADMSG.
 */
static int ext_next(const char *path, const uint8_t *h, size_t end,
                    size_t *pos, struct ext *x, char *err, size_t errlen)
{
    if (*pos + 8 > end)
        return 0;
    x->type = be32(h + *pos);
    x->len = be32(h + *pos + 4);
    if (x->type == EXT_END)
        return 0;
    if (x->len > end - *pos - 8)
        return fail(err, errlen, -EBADMSG,
                    "%s: header extension 0x%08x at offset %zu overruns the "
                    "header area (length %u)", path, x->type, *pos, x->len);
    x->data = *pos + 8;
    *pos = min64(end, x->data + div_up(x->len, 8) * 8);
    return 1;
}

static int parse_extensions(xcp__qcow2 *q, const uint8_t *h, size_t end,
                            char *err, size_t errlen)
{
    size_t pos = q->header_length;
    bool seen_fmt = false;
    struct ext x = { 0, 0, 0 };
    int ret;

    while ((ret = ext_next(q->path, h, end, &pos, &x, err, errlen)) > 0) {
        if (x.type != EXT_BACKING_FORMAT)
            continue;
        if (seen_fmt || x.len == 0 || x.len >= sizeof(q->backing_fmt))
            return fail(err, errlen, -EBADMSG,
                        "%s: %s backing format extension", q->path,
                        seen_fmt ? "duplicate" : "bad length of the");
        memcpy(q->backing_fmt, h + x.data, x.len);
        q->backing_fmt[x.len] = '\0';
        seen_fmt = true;
    }
    return ret;
}

/* Magic, version and cluster size: enough to know how much to read. */
static int parse_basics(xcp__qcow2 *q, const uint8_t *h, size_t hlen,
                        char *err, size_t errlen)
{
    const char *p = q->path;
    uint32_t cb;

    if (hlen < 4 || be32(h) != QCOW2_MAGIC)
        return fail(err, errlen, -EMEDIUMTYPE,
                    "%s: not a qcow2 image (bad magic)", p);
    if (hlen < V2_HEADER_LEN)
        return fail(err, errlen, -EBADMSG,
                    "%s: truncated header (%zu bytes)", p, hlen);
    q->version = be32(h + H_VERSION);
    if (q->version != 2 && q->version != 3)
        return fail(err, errlen, -ENOTSUP,
                    "%s: unsupported qcow2 version %u", p, q->version);
    cb = be32(h + H_CLUSTER_BITS);
    if (cb < XCP__QCOW2_MIN_CLUSTER_BITS || cb > XCP__QCOW2_MAX_CLUSTER_BITS)
        return fail(err, errlen,
                    cb < XCP__QCOW2_MIN_CLUSTER_BITS ? -EBADMSG : -ENOTSUP,
                    "%s: cluster_bits %u outside %d..%d", p, cb,
                    XCP__QCOW2_MIN_CLUSTER_BITS, XCP__QCOW2_MAX_CLUSTER_BITS);
    q->cluster_bits = cb;
    q->cluster_size = 1ull << cb;
    q->l2_entries = q->cluster_size / 8;
    return 0;
}

/* Validate the header in h[0, hlen), hlen = min(cluster, file size). */
static int parse_header(xcp__qcow2 *q, const uint8_t *h, size_t hlen,
                        char *err, size_t errlen)
{
    const char *p = q->path;
    bool rw = !(q->flags & XCP__QCOW2_RDONLY);
    uint64_t cs = q->cluster_size, need, boff, bad, rt_clusters;
    uint32_t blen;

    if (q->version == 2) {
        q->header_length = V2_HEADER_LEN;
        q->refcount_order = 4;
    } else {
        if (hlen < V3_MIN_HEADER_LEN)
            return fail(err, errlen, -EBADMSG,
                        "%s: truncated version 3 header (%zu bytes)", p, hlen);
        q->header_length = be32(h + H_HEADER_LENGTH);
        if (q->header_length < V3_MIN_HEADER_LEN ||
            q->header_length % 8 || q->header_length > hlen)
            return fail(err, errlen, -EBADMSG,
                        "%s: bad header_length %u", p, q->header_length);
        q->refcount_order = be32(h + H_REFCOUNT_ORDER);
        if (q->refcount_order > 6)
            return fail(err, errlen, -EBADMSG,
                        "%s: bad refcount_order %u (max 6)", p,
                        q->refcount_order);
        q->incompat = be64(h + H_INCOMPAT);
        bad = q->incompat & ~(INCOMPAT_DIRTY | INCOMPAT_CORRUPT);
        if (bad)
            return fail(err, errlen, -ENOTSUP,
                        "%s: unsupported incompatible features 0x%llx%s", p,
                        (unsigned long long)bad,
                        bad & INCOMPAT_DATA_FILE ? " (external data file)"
                        : bad & INCOMPAT_COMPRESSION ? " (compression type)"
                        : bad & INCOMPAT_EXTL2 ? " (extended L2 entries)"
                                               : "");
        if (q->header_length > H_COMPRESSION && h[H_COMPRESSION] != 0)
            return fail(err, errlen, -EBADMSG,
                        "%s: compression type set without its feature bit", p);
        if (rw && (q->incompat & INCOMPAT_CORRUPT))
            return fail(err, errlen, -EBADMSG,
                        "%s: image is marked corrupt; only read-only access "
                        "is allowed", p);
        if (rw && (q->incompat & INCOMPAT_DIRTY))
            return fail(err, errlen, -ENOTSUP,
                        "%s: image is dirty (lazy refcounts); repair it with "
                        "'qemu-img check -r all' before writing", p);
    }
    q->rb_entries = cs * 8 >> q->refcount_order;
    if (be32(h + H_CRYPT) != 0)
        return fail(err, errlen, -ENOTSUP,
                    "%s: encrypted images are not supported", p);

    q->size = be64(h + H_SIZE);
    q->l1_size = be32(h + H_L1_SIZE);
    q->l1_offset = be64(h + H_L1_OFFSET);
    if (q->l1_size * 8 > MAX_L1_BYTES)
        return fail(err, errlen, -EFBIG,
                    "%s: L1 table of %llu entries exceeds %llu MiB", p,
                    (unsigned long long)q->l1_size, MAX_L1_BYTES >> 20);
    need = l1_entries_for(q->size, q->cluster_bits);
    if (need > q->l1_size)
        return fail(err, errlen, need * 8 > MAX_L1_BYTES ? -EFBIG : -EBADMSG,
                    "%s: virtual size %llu needs %llu L1 entries, header "
                    "has %llu", p, (unsigned long long)q->size,
                    (unsigned long long)need, (unsigned long long)q->l1_size);
    if (q->l1_size && (q->l1_offset % cs || q->l1_offset < cs ||
                       q->l1_offset > q->file_size ||
                       q->l1_size * 8 > q->file_size - q->l1_offset))
        return fail(err, errlen, -EBADMSG,
                    "%s: L1 table at %llu (%llu entries) is %s", p,
                    (unsigned long long)q->l1_offset,
                    (unsigned long long)q->l1_size,
                    q->l1_offset % cs || q->l1_offset < cs
                        ? "misplaced" : "beyond the end of the file");

    q->rt_offset = be64(h + H_RT_OFFSET);
    rt_clusters = be32(h + H_RT_CLUSTERS);
    if (rt_clusters == 0 || rt_clusters * cs > MAX_RT_BYTES)
        return fail(err, errlen, rt_clusters ? -EFBIG : -EBADMSG,
                    "%s: bad refcount table size (%llu clusters)", p,
                    (unsigned long long)rt_clusters);
    if (q->rt_offset % cs || q->rt_offset < cs ||
        q->rt_offset > q->file_size ||
        rt_clusters * cs > q->file_size - q->rt_offset)
        return fail(err, errlen, -EBADMSG,
                    "%s: refcount table at %llu (%llu clusters) is %s", p,
                    (unsigned long long)q->rt_offset,
                    (unsigned long long)rt_clusters,
                    q->rt_offset % cs || q->rt_offset < cs
                        ? "misplaced" : "beyond the end of the file");
    q->rt_clusters = rt_clusters;

    q->nb_snapshots = be32(h + H_NB_SNAPSHOTS);
    if (q->nb_snapshots > MAX_SNAPSHOTS ||
        (q->nb_snapshots && (be64(h + H_SNAPSHOTS_OFFSET) % cs ||
                             be64(h + H_SNAPSHOTS_OFFSET) >= q->file_size)))
        return fail(err, errlen, -EBADMSG,
                    "%s: bad snapshot table (%u snapshots at %llu)", p,
                    q->nb_snapshots,
                    (unsigned long long)be64(h + H_SNAPSHOTS_OFFSET));
    if (rw && q->nb_snapshots)
        return fail(err, errlen, -ENOTSUP,
                    "%s: image has %u internal snapshots; writing such "
                    "images is not supported", p, q->nb_snapshots);

    boff = be64(h + H_BACKING_OFFSET);
    blen = be32(h + H_BACKING_SIZE);
    if (boff) {
        if (blen == 0 || blen > XCP__QCOW2_BACKING_MAX ||
            boff < q->header_length || boff > hlen || blen > hlen - boff)
            return fail(err, errlen, -EBADMSG,
                        "%s: backing file name (offset %llu, length %u) "
                        "is outside the first cluster", p,
                        (unsigned long long)boff, blen);
        if (memchr(h + boff, '\0', blen))
            return fail(err, errlen, -EBADMSG,
                        "%s: backing file name contains a NUL byte", p);
        memcpy(q->backing, h + boff, blen);
        q->backing[blen] = '\0';
        q->has_backing = true;
    }
    /* Extensions stop where the backing name starts. */
    if (parse_extensions(q, h, boff ? boff : hlen, err, errlen) < 0)
        return -EBADMSG;
    if (q->backing_fmt[0] && !format_ok(q->backing_fmt))
        return fail(err, errlen, -ENOTSUP,
                    "%s: unsupported backing format '%s'", p, q->backing_fmt);
    return 0;
}

static int load_l1(xcp__qcow2 *q, char *err, size_t errlen)
{
    uint8_t *disk;
    ssize_t r;
    uint64_t i;

    q->l1 = calloc(q->l1_size ? q->l1_size : 1, sizeof(*q->l1));
    disk = malloc(q->l1_size * 8 + 1);
    if (!q->l1 || !disk) {
        free(disk);
        return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    }
    r = pread_full(q->fd, disk, q->l1_size * 8, q->l1_offset);
    if (r >= 0 && (uint64_t)r != q->l1_size * 8)
        r = -EBADMSG;
    for (i = 0; r >= 0 && i < q->l1_size; i++)
        q->l1[i] = be64(disk + i * 8);
    free(disk);
    if (r < 0)
        return fail(err, errlen, (int)r, "%s: reading the L1 table: %s",
                    q->path, strerror((int)-r));
    return 0;
}

/* Load the refcount table and find where allocation may start. */
static int load_rt(xcp__qcow2 *q, char *err, size_t errlen)
{
    uint64_t bytes = q->rt_clusters * q->cluster_size, i, j, last = 0;
    uint8_t *disk, *rb;
    ssize_t r;
    int ret;

    q->rt_entries = bytes / 8;
    q->rt = calloc(q->rt_entries, sizeof(*q->rt));
    disk = malloc(bytes);
    if (!q->rt || !disk) {
        free(disk);
        return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    }
    r = pread_full(q->fd, disk, bytes, q->rt_offset);
    for (i = 0; r == (ssize_t)bytes && i < q->rt_entries; i++)
        q->rt[i] = be64(disk + i * 8) & RTE_OFFSET_MASK;
    free(disk);
    if (r != (ssize_t)bytes)
        return fail(err, errlen, r < 0 ? (int)r : -EBADMSG,
                    "%s: reading the refcount table failed", q->path);
    for (i = 0; i < q->rt_entries; i++)
        if (q->rt[i] % q->cluster_size || q->rt[i] >= q->file_size)
            return fail(err, errlen, -EBADMSG,
                        "%s: refcount table entry %llu points to %s offset "
                        "%llu", q->path, (unsigned long long)i,
                        q->rt[i] % q->cluster_size ? "unaligned"
                                                   : "out-of-file",
                        (unsigned long long)q->rt[i]);
    /* The last cluster in use, from the last non-empty refcount block. */
    for (i = q->rt_entries; i-- > 0 && !last;) {
        if (!q->rt[i])
            continue;
        ret = cache_get(q, &q->rbc, q->rt[i], false, &rb, err, errlen);
        if (ret < 0)
            return ret;
        for (j = q->rb_entries; j-- > 0;) {
            if (rc_get(rb, j, q->refcount_order)) {
                last = i * q->rb_entries + j + 1;
                break;
            }
        }
    }
    q->next_free = div_up(q->file_size, q->cluster_size);
    if (last > q->next_free)
        q->next_free = last;
    /* Refcounts claiming clusters past what L2 entries can address:
     * allocating after them would overflow offsets. */
    if (q->next_free >= MAX_HOST_OFFSET / q->cluster_size)
        return fail(err, errlen, -EBADMSG,
                    "%s: refcounts claim clusters beyond 64 PiB", q->path);
    return 0;
}

/* Backing names are relative to the directory of the image naming them. */
static char *resolve_backing(const char *image, const char *name)
{
    const char *slash = strrchr(image, '/');
    size_t dirlen = slash ? (size_t)(slash - image) + 1 : 0;
    char *out;

    if (name[0] == '/')
        dirlen = 0;
    out = malloc(dirlen + strlen(name) + 1);
    if (!out)
        return NULL;
    memcpy(out, image, dirlen);
    strcpy(out + dirlen, name);
    return out;
}

static int open_chain(xcp__qcow2 **below, const xcp__qcow2 *q,
                      const char *name, const char *fmt,
                      char *err, size_t errlen)
{
    char *path = resolve_backing(q->path, name);
    int ret;

    if (!path)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    ret = open_image(below, path, fmt[0] ? fmt : NULL, XCP__QCOW2_RDONLY,
                     q->depth + 1, err, errlen);
    free(path);
    /* Only the top image adds context; the innermost message names the
     * file at fault, and prefixes from every level would bury it. */
    if (ret < 0 && q->depth == 0) {
        char prefix[600];

        snprintf(prefix, sizeof(prefix), "%s: backing file '%.512s'",
                 q->path, name);
        return prefix_err(err, errlen, ret, prefix);
    }
    return ret;
}

static int open_qcow2(xcp__qcow2 *q, char *err, size_t errlen)
{
    uint8_t first[V3_HEADER_LEN], *h = NULL, zero[8] = { 0 };
    size_t hlen;
    ssize_t r;
    unsigned slots;
    int ret;

    /* Read the fixed part, then the whole first cluster it describes. */
    r = pread_full(q->fd, first, sizeof(first), 0);
    if (r < 0)
        return fail(err, errlen, (int)r, "%s: reading the header: %s",
                    q->path, strerror((int)-r));
    ret = parse_basics(q, first, (size_t)r, err, errlen);
    if (ret < 0)
        return ret;
    hlen = min64(q->cluster_size, q->file_size);
    h = malloc(hlen);
    if (!h)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    r = pread_full(q->fd, h, hlen, 0);
    if (r != (ssize_t)hlen) {
        ret = fail(err, errlen, r < 0 ? (int)r : -EBADMSG,
                   "%s: reading the first cluster failed", q->path);
        goto out;
    }
    ret = parse_header(q, h, hlen, err, errlen);
    if (ret < 0)
        goto out;
    /* We keep no bitmaps up to date: say so, as the format asks. */
    if (!(q->flags & XCP__QCOW2_RDONLY) && q->version >= 3 &&
        be64(h + H_AUTOCLEAR)) {
        ret = qwrite(q, zero, 8, H_AUTOCLEAR, "header", err, errlen);
        if (ret < 0)
            goto out;
    }
    slots = CACHE_BYTES / q->cluster_size;
    slots = slots < CACHE_MIN_SLOTS ? CACHE_MIN_SLOTS
            : slots > CACHE_MAX_SLOTS ? CACHE_MAX_SLOTS : slots;
    if (cache_init(&q->l2c, slots) < 0 ||
        cache_init(&q->rbc, RB_CACHE_SLOTS) < 0) {
        ret = fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
        goto out;
    }
    ret = load_l1(q, err, errlen);
    if (ret < 0)
        goto out;
    if (!(q->flags & XCP__QCOW2_RDONLY)) {
        q->cow = malloc(q->cluster_size);
        if (!q->cow) {
            ret = fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
            goto out;
        }
        ret = load_rt(q, err, errlen);
        if (ret < 0)
            goto out;
    }
    if (q->has_backing && !(q->flags & XCP__QCOW2_NO_BACKING))
        ret = open_chain(&q->below, q, q->backing, q->backing_fmt, err,
                         errlen);
out:
    free(h);
    return ret;
}

static int open_image(xcp__qcow2 **out, const char *path, const char *format,
                      unsigned flags, unsigned depth,
                      char *err, size_t errlen)
{
    xcp__qcow2 *q;
    struct stat st;
    int ret;

    *out = NULL;
    if (depth > XCP__QCOW2_MAX_CHAIN)
        return fail(err, errlen, -ELOOP,
                    "%s: backing chain deeper than %d (a loop?)", path,
                    XCP__QCOW2_MAX_CHAIN);
    if (format && !format_ok(format))
        return fail(err, errlen, -ENOTSUP, "%s: unsupported format '%s'",
                    path, format);
    q = calloc(1, sizeof(*q));
    if (!q || !(q->path = strdup(path))) {
        free(q);
        return fail(err, errlen, -ENOMEM, "%s: out of memory", path);
    }
    q->flags = flags;
    q->depth = depth;
    q->raw = format && strcmp(format, "raw") == 0;
    /* O_NONBLOCK: a FIFO named as a backing file must not hang us. */
    q->fd = open(path, ((flags & XCP__QCOW2_RDONLY) ? O_RDONLY : O_RDWR) |
                           O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (q->fd < 0) {
        ret = fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(q->fd, &st) < 0) {
        ret = fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        ret = fail(err, errlen, -EINVAL, "%s: not a regular file", path);
        goto out;
    }
    q->file_size = (uint64_t)st.st_size;
    if (q->raw) {
        q->size = q->file_size;
        ret = 0;
    } else {
        ret = open_qcow2(q, err, errlen);
    }
out:
    if (ret < 0) {
        xcp__qcow2_close(q);
        return ret;
    }
    *out = q;
    return 0;
}

int xcp__qcow2_open(xcp__qcow2 **out, const char *path, const char *format,
                    unsigned flags, char *err, size_t errlen)
{
    return open_image(out, path, format, flags, 0, err, errlen);
}

int xcp__qcow2_flush(xcp__qcow2 *q, char *err, size_t errlen)
{
    if (!q->written)
        return 0;
    if (fdatasync(q->fd) < 0)
        return fail(err, errlen, -errno, "%s: fdatasync: %s", q->path,
                    strerror(errno));
    q->written = false;
    return 0;
}

int xcp__qcow2_close(xcp__qcow2 *q)
{
    int ret = 0;

    if (!q)
        return 0;
    if (q->fd >= 0) {
        ret = xcp__qcow2_flush(q, NULL, 0);
        close(q->fd);
    }
    xcp__qcow2_close(q->below);
    cache_free(&q->l2c);
    cache_free(&q->rbc);
    free(q->l1);
    free(q->rt);
    free(q->cow);
    free(q->path);
    free(q);
    return ret;
}

uint64_t xcp__qcow2_virtual_size(const xcp__qcow2 *q)
{
    return q->size;
}

int xcp__qcow2_get_info(xcp__qcow2 *q, xcp__qcow2_info *info,
                        char *err, size_t errlen)
{
    struct stat st;

    if (fstat(q->fd, &st) < 0)
        return fail(err, errlen, -errno, "%s: %s", q->path, strerror(errno));
    memset(info, 0, sizeof(*info));
    info->format = q->raw ? "raw" : "qcow2";
    info->version = q->raw ? 0 : q->version;
    info->virtual_size = q->size;
    info->cluster_size = q->raw ? 0 : (uint32_t)q->cluster_size;
    info->refcount_bits = q->raw ? 0 : 1u << q->refcount_order;
    info->file_size = (uint64_t)st.st_size;
    info->allocated_bytes = (uint64_t)st.st_blocks * 512;
    info->has_backing = q->has_backing;
    memcpy(info->backing_file, q->backing, sizeof(info->backing_file));
    memcpy(info->backing_format, q->backing_fmt, sizeof(info->backing_format));
    return 0;
}

/* ------------------------------------------------------------------ */
/* Creating                                                            */

/* Build cluster 0: header, extensions, backing name.  Returns length. */
static size_t build_header(uint8_t *h, uint64_t size, unsigned cb,
                           uint64_t l1_size, uint64_t l1_off, uint64_t rt_off,
                           uint64_t rt_clusters, const char *backing,
                           const char *backing_fmt)
{
    size_t pos = V3_HEADER_LEN, flen;

    put32(h, QCOW2_MAGIC);
    put32(h + H_VERSION, 3);
    put32(h + H_CLUSTER_BITS, cb);
    put64(h + H_SIZE, size);
    put32(h + H_L1_SIZE, (uint32_t)l1_size);
    put64(h + H_L1_OFFSET, l1_off);
    put64(h + H_RT_OFFSET, rt_off);
    put32(h + H_RT_CLUSTERS, (uint32_t)rt_clusters);
    put32(h + H_REFCOUNT_ORDER, 4);
    put32(h + H_HEADER_LENGTH, V3_HEADER_LEN);
    if (backing) {
        flen = strlen(backing_fmt);
        put32(h + pos, EXT_BACKING_FORMAT);
        put32(h + pos + 4, (uint32_t)flen);
        memcpy(h + pos + 8, backing_fmt, flen);
        pos += 8 + div_up(flen, 8) * 8;
    }
    pos += 8;                   /* end-of-extensions marker: zeros */
    if (backing) {
        put64(h + H_BACKING_OFFSET, pos);
        put32(h + H_BACKING_SIZE, (uint32_t)strlen(backing));
        memcpy(h + pos, backing, strlen(backing));
        pos += strlen(backing);
    }
    return pos;
}

static int create_raw(int fd, const char *path, uint64_t size, char *err,
                      size_t errlen)
{
    if (ftruncate(fd, (off_t)size) < 0)
        return fail(err, errlen, -errno, "%s: setting size: %s", path,
                    strerror(errno));
    return 0;
}

static int create_qcow2(int fd, const char *path, uint64_t size, unsigned cb,
                        const char *backing, const char *backing_fmt,
                        char *err, size_t errlen)
{
    uint64_t cs = 1ull << cb, rbe = cs * 8 / 16, l1_size, l1c;
    uint64_t rtc = 1, rbc = 1, total, nrbc, nrtc, i;
    uint8_t h[2048] = { 0 }, *rt = NULL, *rb = NULL;
    size_t hlen;
    int ret;

    l1_size = l1_entries_for(size, cb);
    if (l1_size * 8 > MAX_L1_BYTES)
        return fail(err, errlen, -EFBIG,
                    "%s: virtual size %llu too large for %llu-byte clusters",
                    path, (unsigned long long)size, (unsigned long long)cs);
    l1c = div_up(l1_size * 8, cs);
    /* Refcount blocks must count themselves and the table: iterate. */
    for (;;) {
        total = 1 + rtc + rbc + l1c;
        nrbc = div_up(total, rbe);
        nrtc = div_up(nrbc * 8, cs);
        if (nrbc == rbc && nrtc == rtc)
            break;
        rbc = nrbc;
        rtc = nrtc;
    }
    hlen = build_header(h, size, cb, l1_size,
                        l1_size ? (1 + rtc + rbc) * cs : 0, cs, rtc,
                        backing, backing_fmt);
    if (hlen > cs)
        return fail(err, errlen, -ENAMETOOLONG,
                    "%s: backing file name does not fit in a %llu-byte "
                    "cluster", path, (unsigned long long)cs);
    rt = calloc(rbc, 8);
    rb = calloc(total, 2);
    if (!rt || !rb) {
        ret = fail(err, errlen, -ENOMEM, "%s: out of memory", path);
        goto out;
    }
    for (i = 0; i < rbc; i++)
        put64(rt + i * 8, (1 + rtc + i) * cs);
    /* The blocks are contiguous, so one run of 16-bit ones covers all. */
    for (i = 0; i < total; i++)
        rb[i * 2 + 1] = 1;
    if (ftruncate(fd, (off_t)(total * cs)) < 0 ||
        pwrite_full(fd, h, hlen, 0) < 0 ||
        pwrite_full(fd, rt, rbc * 8, cs) < 0 ||
        pwrite_full(fd, rb, total * 2, (1 + rtc) * cs) < 0) {
        ret = fail(err, errlen, -errno, "%s: writing metadata: %s", path,
                   strerror(errno));
        goto out;
    }
    ret = 0;
out:
    free(rt);
    free(rb);
    return ret;
}

int xcp__qcow2_create(const char *path, uint64_t virtual_size,
                      const xcp__qcow2_create_opts *opts,
                      char *err, size_t errlen)
{
    static const xcp__qcow2_create_opts defaults;
    const char *fmt, *bfmt;
    unsigned cb;
    int fd, ret;

    if (!opts)
        opts = &defaults;
    fmt = opts->format ? opts->format : "qcow2";
    bfmt = opts->backing_format ? opts->backing_format : "qcow2";
    cb = opts->cluster_bits ? opts->cluster_bits
                            : XCP__QCOW2_DEFAULT_CLUSTER_BITS;
    if (!format_ok(fmt) || !format_ok(bfmt))
        return fail(err, errlen, -ENOTSUP, "%s: unsupported format '%s'",
                    path, format_ok(fmt) ? bfmt : fmt);
    if (cb < XCP__QCOW2_MIN_CLUSTER_BITS || cb > XCP__QCOW2_MAX_CLUSTER_BITS)
        return fail(err, errlen, -EINVAL, "%s: cluster_bits %u outside %d..%d",
                    path, cb, XCP__QCOW2_MIN_CLUSTER_BITS,
                    XCP__QCOW2_MAX_CLUSTER_BITS);
    if (opts->backing_file &&
        (strcmp(fmt, "raw") == 0 || !opts->backing_file[0] ||
         strlen(opts->backing_file) > XCP__QCOW2_BACKING_MAX))
        return fail(err, errlen, -EINVAL,
                    "%s: bad backing file name (empty, too long, or for a "
                    "raw image)", path);
    if (virtual_size > INT64_MAX - 511)
        return fail(err, errlen, -EFBIG, "%s: virtual size too large", path);
    /* qcow2 sizes are whole sectors; a raw file keeps its exact length
     * (a copied suspend image must stay byte-identical). */
    if (strcmp(fmt, "raw") != 0)
        virtual_size = (virtual_size + 511) & ~511ull;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
    if (strcmp(fmt, "raw") == 0)
        ret = create_raw(fd, path, virtual_size, err, errlen);
    else
        ret = create_qcow2(fd, path, virtual_size, cb, opts->backing_file,
                           bfmt, err, errlen);
    if (ret == 0 && fdatasync(fd) < 0)
        ret = fail(err, errlen, -errno, "%s: fdatasync: %s", path,
                   strerror(errno));
    close(fd);
    if (ret < 0)
        unlink(path);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Resizing, rebasing, copying                                         */

static int grow_l1(xcp__qcow2 *q, uint64_t need, char *err, size_t errlen)
{
    uint64_t cs = q->cluster_size, old_nc = div_up(q->l1_size * 8, cs);
    uint64_t i, off, *l1;
    uint8_t *disk = NULL, hdr[12];
    int ret;

    l1 = realloc(q->l1, need * sizeof(*l1));
    if (!l1)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    memset(l1 + q->l1_size, 0, (need - q->l1_size) * sizeof(*l1));
    q->l1 = l1;
    disk = calloc(need, 8);
    if (!disk)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    if (need <= old_nc * cs / 8) {
        /* Room left in the table's last cluster: make sure it is zeros
         * (the file may even end inside it). */
        ret = qwrite(q, disk, (need - q->l1_size) * 8,
                     q->l1_offset + q->l1_size * 8, "L1 table", err, errlen);
        off = q->l1_offset;
    } else {
        ret = alloc_clusters(q, div_up(need * 8, cs), &off, err, errlen);
        for (i = 0; ret == 0 && i < q->l1_size; i++)
            put64(disk + i * 8, q->l1[i]);
        if (ret == 0)
            ret = qwrite(q, disk, q->l1_size * 8, off, "L1 table", err,
                         errlen);
    }
    if (ret < 0)
        goto out;
    put32(hdr, (uint32_t)need);
    put64(hdr + 4, off);
    ret = qwrite(q, hdr, sizeof(hdr), H_L1_SIZE, "header", err, errlen);
    if (ret < 0)
        goto out;
    if (off != q->l1_offset && old_nc)
        ret = rc_set_range(q, q->l1_offset / cs, old_nc, 0, err, errlen);
    q->l1_offset = off;
    q->l1_size = need;
out:
    free(disk);
    return ret;
}

int xcp__qcow2_resize(xcp__qcow2 *q, uint64_t new_size, char *err,
                      size_t errlen)
{
    uint64_t old = q->size, need, zero_end;
    uint8_t b[8];
    int ret;

    ret = check_writable(q, err, errlen);
    if (ret < 0)
        return ret;
    if (new_size > INT64_MAX - 511)
        return fail(err, errlen, -EFBIG, "%s: size too large", q->path);
    new_size = (new_size + 511) & ~511ull;
    if (new_size < old)
        return fail(err, errlen, -ENOTSUP,
                    "%s: shrinking from %llu to %llu bytes is not supported",
                    q->path, (unsigned long long)old,
                    (unsigned long long)new_size);
    if (new_size == old)
        return 0;
    if (q->raw) {
        ret = extend_file(q, new_size, err, errlen);
        if (ret == 0)
            q->size = new_size;
        return ret;
    }
    if (q->has_backing && !q->below)
        return fail(err, errlen, -EINVAL,
                    "%s: growing an image needs its backing chain open",
                    q->path);
    need = l1_entries_for(new_size, q->cluster_bits);
    if (need * 8 > MAX_L1_BYTES)
        return fail(err, errlen, -EFBIG,
                    "%s: %llu bytes is too large for %llu-byte clusters",
                    q->path, (unsigned long long)new_size,
                    (unsigned long long)q->cluster_size);
    if (need > q->l1_size) {
        ret = grow_l1(q, need, err, errlen);
        if (ret < 0)
            return ret;
    }
    put64(b, new_size);
    ret = qwrite(q, b, 8, H_SIZE, "header", err, errlen);
    if (ret < 0)
        return ret;
    q->size = new_size;
    /* A backing file larger than we were must not show through. */
    if (q->below && q->below->size > old) {
        zero_end = min64(new_size, q->below->size);
        ret = write_at(q, old, NULL, zero_end - old, err, errlen);
    }
    return ret;
}

int xcp__qcow2_set_backing(xcp__qcow2 *q, const char *backing_file,
                           const char *backing_format, char *err,
                           size_t errlen)
{
    uint64_t cs = q->cluster_size;
    const char *fmt = backing_format ? backing_format : "qcow2";
    uint8_t *h = NULL, *area = NULL, hdr[12] = { 0 };
    size_t hlen, pos, apos = 0, blen = 0, flen = strlen(fmt);
    uint64_t ext_end;
    xcp__qcow2 *below = NULL;
    struct ext x = { 0, 0, 0 };
    int ret;

    ret = check_writable(q, err, errlen);
    if (ret < 0)
        return ret;
    if (q->raw)
        return fail(err, errlen, -ENOTSUP,
                    "%s: raw images have no backing file", q->path);
    if (backing_file) {
        blen = strlen(backing_file);
        if (blen == 0 || blen > XCP__QCOW2_BACKING_MAX || !format_ok(fmt))
            return fail(err, errlen, -EINVAL,
                        "%s: bad backing file name or format", q->path);
        if (!(q->flags & XCP__QCOW2_NO_BACKING)) {
            ret = open_chain(&below, q, backing_file, fmt, err, errlen);
            if (ret < 0)
                return ret;
        }
    }
    hlen = min64(cs, q->file_size);
    h = malloc(hlen);
    area = calloc(1, cs);
    if (!h || !area) {
        ret = fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
        goto out;
    }
    if (pread_full(q->fd, h, hlen, 0) != (ssize_t)hlen) {
        ret = fail(err, errlen, -EIO, "%s: rereading the header failed",
                   q->path);
        goto out;
    }
    /* Keep every extension but the backing format, then add ours. */
    pos = q->header_length;
    ext_end = be64(h + H_BACKING_OFFSET) ? be64(h + H_BACKING_OFFSET) : hlen;
    while ((ret = ext_next(q->path, h, min64(ext_end, hlen), &pos, &x, err,
                           errlen)) > 0) {
        if (x.type == EXT_BACKING_FORMAT)
            continue;
        memcpy(area + apos, h + x.data - 8, 8 + x.len);
        apos += 8 + div_up(x.len, 8) * 8;
    }
    if (ret < 0)
        goto out;
    if (backing_file) {
        put32(area + apos, EXT_BACKING_FORMAT);
        put32(area + apos + 4, (uint32_t)flen);
        memcpy(area + apos + 8, fmt, flen);
        apos += 8 + div_up(flen, 8) * 8;
    }
    apos += 8;                  /* end marker */
    if (q->header_length + apos + blen > cs) {
        ret = fail(err, errlen, -ENAMETOOLONG,
                   "%s: backing file name does not fit in the first cluster",
                   q->path);
        goto out;
    }
    if (backing_file) {
        memcpy(area + apos, backing_file, blen);
        put64(hdr, q->header_length + apos);
        put32(hdr + 8, (uint32_t)blen);
    }
    ret = qwrite(q, area, apos + blen, q->header_length, "header extensions",
                 err, errlen);
    if (ret == 0)
        ret = qwrite(q, hdr, sizeof(hdr), H_BACKING_OFFSET, "header", err,
                     errlen);
    if (ret < 0)
        goto out;
    xcp__qcow2_close(q->below);
    q->below = below;
    below = NULL;
    q->has_backing = backing_file != NULL;
    memset(q->backing, 0, sizeof(q->backing));
    memset(q->backing_fmt, 0, sizeof(q->backing_fmt));
    if (backing_file) {
        memcpy(q->backing, backing_file, blen);
        memcpy(q->backing_fmt, fmt, flen);
    }
out:
    xcp__qcow2_close(below);
    free(h);
    free(area);
    return ret;
}

int xcp__qcow2_copy(xcp__qcow2 *src, const char *dst_path,
                    const xcp__qcow2_create_opts *opts,
                    char *err, size_t errlen)
{
    xcp__qcow2_create_opts o = { 0 };
    xcp__qcow2 *dst = NULL;
    uint64_t off = 0, end, len, pos, n, chunk, i, run;
    uint8_t *buf = NULL;
    bool data;
    int ret;

    if (opts)
        o = *opts;
    if (o.backing_file)
        return fail(err, errlen, -EINVAL,
                    "%s: a full copy has no backing file", dst_path);
    if (src->has_backing && !src->below)
        return fail(err, errlen, -EINVAL,
                    "%s: copying needs the backing chain open", src->path);
    if (!o.cluster_bits)
        o.cluster_bits = src->raw ? XCP__QCOW2_DEFAULT_CLUSTER_BITS
                                  : src->cluster_bits;
    ret = xcp__qcow2_create(dst_path, src->size, &o, err, errlen);
    if (ret < 0)
        return ret;
    ret = xcp__qcow2_open(&dst, dst_path, o.format, 0, err, errlen);
    if (ret < 0)
        goto out;
    /* Zero detection works on the destination's clusters. */
    chunk = 1ull << o.cluster_bits;
    buf = malloc(COPY_CHUNK > chunk ? COPY_CHUNK : chunk);
    if (!buf) {
        ret = fail(err, errlen, -ENOMEM, "%s: out of memory", dst_path);
        goto out;
    }
    while (off < src->size) {
        ret = chain_extent(src, off, src->size - off, &data, &len, err,
                           errlen);
        if (ret < 0)
            goto out;
        if (!data) {
            off += len;
            continue;
        }
        pos = off / chunk * chunk;
        end = min64(div_up(off + len, chunk) * chunk, src->size);
        while (pos < end) {
            n = min64(end - pos, COPY_CHUNK > chunk ? COPY_CHUNK : chunk);
            ret = read_at(src, pos, buf, n, err, errlen);
            if (ret < 0)
                goto out;
            /* Write runs of non-zero clusters, skip the zero ones. */
            for (i = 0; i < n; i += run) {
                run = min64(chunk, n - i);
                if (all_zero(buf + i, run))
                    continue;
                while (i + run < n &&
                       !all_zero(buf + i + run, min64(chunk, n - i - run)))
                    run += min64(chunk, n - i - run);
                ret = write_at(dst, pos + i, buf + i, run, err, errlen);
                if (ret < 0)
                    goto out;
            }
            pos += n;
        }
        off = end;
    }
    ret = xcp__qcow2_flush(dst, err, errlen);
out:
    free(buf);
    xcp__qcow2_close(dst);
    if (ret < 0)
        unlink(dst_path);
    return ret;
}

int xcp__qcow2_commit(xcp__qcow2 *child, xcp__qcow2 *parent, char *err,
                      size_t errlen)
{
    uint64_t off = 0, n, pos;
    struct extent e;
    uint8_t *buf = NULL;
    int ret;

    ret = check_writable(parent, err, errlen);
    if (ret < 0)
        return ret;
    if (child->raw)
        return fail(err, errlen, -EINVAL,
                    "%s: a raw image has nothing of its own to commit",
                    child->path);
    if (child->size < parent->size)
        return fail(err, errlen, -EINVAL,
                    "%s: smaller than the image it would be committed into",
                    child->path);
    ret = xcp__qcow2_resize(parent, child->size, err, errlen);
    if (ret < 0)
        return ret;
    buf = malloc(COPY_CHUNK);
    if (!buf)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", child->path);
    while (off < child->size) {
        ret = map_extent(child, off, child->size - off, &e, err, errlen);
        if (ret < 0)
            goto out;
        if (e.kind == K_COMPRESSED) {
            ret = fail(err, errlen, -ENOTSUP,
                       "%s: compressed cluster at %llu", child->path,
                       (unsigned long long)off);
            goto out;
        }
        if (e.kind == K_ZERO)
            ret = write_at(parent, off, NULL, e.len, err, errlen);
        for (pos = 0; e.kind == K_DATA && pos < e.len && ret == 0; pos += n) {
            n = min64(e.len - pos, COPY_CHUNK);
            ret = read_at(child, off + pos, buf, n, err, errlen);
            if (ret == 0)
                ret = write_at(parent, off + pos, buf, n, err, errlen);
        }
        if (ret < 0)
            goto out;
        off += e.len;
    }
    ret = xcp__qcow2_flush(parent, err, errlen);
out:
    free(buf);
    return ret;
}
