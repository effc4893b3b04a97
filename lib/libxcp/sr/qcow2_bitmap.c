/*
 * qcow2_bitmap.c - persistent dirty bitmaps, the qcow2 "bitmaps" header
 * extension as QEMU's docs/interop/qcow2.txt describes it: a directory
 * of bitmaps, each a table of data clusters holding one bit per
 * granule.  We load them at open, mark enabled ones before each write
 * and rewrite the whole set (new clusters, new directory, then the
 * header in one write, then the old clusters freed) when it changes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "qcow2_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * QEMU's image locking (block/file-posix.c): a process holding a
 * permission on the image keeps a shared OFD lock on byte
 * LOCK_PERM_BASE + the permission's bit number; BLK_PERM_WRITE is bit 1.
 */
#define LOCK_PERM_BASE 100
#define LOCK_PERM_WRITE_BIT 1

/* Directory entry: fixed part before the extra data and the name. */
#define BME_FIXED 24
#define BITMAP_TYPE_DIRTY 1

static uint64_t granules(const xcp__qcow2 *q, unsigned gran_bits)
{
    return div_up(q->size, 1ull << gran_bits);
}

static uint64_t bits_bytes(const xcp__qcow2 *q, unsigned gran_bits)
{
    return div_up(granules(q, gran_bits), 8);
}

static uint32_t table_entries(const xcp__qcow2 *q, unsigned gran_bits)
{
    return (uint32_t)div_up(bits_bytes(q, gran_bits), q->cluster_size);
}

static void bm_free(struct qbitmap *b)
{
    free(b->name);
    free(b->table);
    free(b->bits);
    memset(b, 0, sizeof(*b));
}

void xcp__qcow2_bitmaps_free(xcp__qcow2 *q)
{
    uint32_t i;

    for (i = 0; i < q->nb_bm; i++)
        bm_free(&q->bm[i]);
    free(q->bm);
    q->bm = NULL;
    q->nb_bm = 0;
}

/* Whether [off, off + len) lies in whole clusters inside the file. */
static bool in_file(const xcp__qcow2 *q, uint64_t off, uint64_t len)
{
    return off % q->cluster_size == 0 && off >= q->cluster_size &&
           off <= q->file_size && len <= q->file_size - off;
}

static int load_table(xcp__qcow2 *q, struct qbitmap *b, char *err,
                      size_t errlen)
{
    uint8_t *disk;
    uint32_t i;
    ssize_t r;

    b->table = calloc(b->table_size ? b->table_size : 1, sizeof(uint64_t));
    disk = malloc((size_t)b->table_size * 8 + 1);
    if (!b->table || !disk) {
        free(disk);
        return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    }
    r = pread_full(q->fd, disk, (size_t)b->table_size * 8, b->table_off);
    for (i = 0; r == (ssize_t)b->table_size * 8 && i < b->table_size; i++) {
        b->table[i] = be64(disk + (size_t)i * 8);
        if ((b->table[i] & ~(BTE_OFFSET_MASK | BTE_ALL_ONES)) ||
            ((b->table[i] & BTE_OFFSET_MASK) &&
             !in_file(q, b->table[i] & BTE_OFFSET_MASK, q->cluster_size)))
            r = -EBADMSG;
    }
    free(disk);
    if (r != (ssize_t)b->table_size * 8)
        return fail(err, errlen, -EBADMSG,
                    "%s: bitmap '%s': bad bitmap table at %llu", q->path,
                    b->name, (unsigned long long)b->table_off);
    return 0;
}

/* One directory entry at d[*pos, end) into b. */
static int parse_entry(xcp__qcow2 *q, const uint8_t *d, size_t end,
                       size_t *pos, struct qbitmap *b, char *err,
                       size_t errlen)
{
    const uint8_t *e = d + *pos;
    uint32_t extra;
    uint16_t nlen;
    size_t size;

    if (end - *pos < BME_FIXED)
        return fail(err, errlen, -EBADMSG,
                    "%s: truncated bitmap directory", q->path);
    b->table_off = be64(e);
    b->table_size = be32(e + 8);
    b->flags = be32(e + 12);
    b->gran_bits = e[17];
    nlen = (uint16_t)(e[18] << 8 | e[19]);
    extra = be32(e + 20);
    size = div_up(BME_FIXED + (uint64_t)extra + nlen, 8) * 8;
    if (size > end - *pos || nlen == 0 || nlen > MAX_BITMAP_NAME)
        return fail(err, errlen, -EBADMSG,
                    "%s: bad bitmap directory entry at %zu", q->path, *pos);
    if (e[16] != BITMAP_TYPE_DIRTY || extra ||
        (b->flags & ~(BME_IN_USE | BME_AUTO | BME_EXTRA_DATA_COMPAT)) ||
        b->gran_bits < 9 || b->gran_bits > 31)
        return fail(err, errlen, -ENOTSUP,
                    "%s: bitmap at %zu has a type, flags, granularity or "
                    "extra data we do not keep", q->path, *pos);
    if (b->table_size != table_entries(q, b->gran_bits) ||
        !in_file(q, b->table_off, (uint64_t)b->table_size * 8))
        return fail(err, errlen, -EBADMSG,
                    "%s: bitmap at %zu: table of %u entries at %llu does "
                    "not match the image", q->path, *pos, b->table_size,
                    (unsigned long long)b->table_off);
    b->name = strndup((const char *)e + BME_FIXED + extra, nlen);
    if (!b->name)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    *pos += size;
    return load_table(q, b, err, errlen);
}

static int read_bits(xcp__qcow2 *q, struct qbitmap *b, char *err,
                     size_t errlen);

int xcp__qcow2_bitmaps_each_cluster(const xcp__qcow2 *q,
                                    int (*fn)(void *arg, uint64_t host),
                                    void *arg)
{
    uint64_t cs = q->cluster_size, i, host;
    uint32_t k, j;
    int ret = 0;

    if (!q->nb_bm)
        return 0;
    for (i = 0; ret == 0 && i < div_up(q->bm_dir_size, cs); i++)
        ret = fn(arg, q->bm_dir_off + i * cs);
    for (k = 0; ret == 0 && k < q->nb_bm; k++) {
        const struct qbitmap *b = &q->bm[k];
        for (i = 0; ret == 0 && i < div_up((uint64_t)b->table_size * 8, cs);
             i++)
            ret = fn(arg, b->table_off + i * cs);
        for (j = 0; ret == 0 && b->table && j < b->table_size; j++)
            if ((host = b->table[j] & BTE_OFFSET_MASK))
                ret = fn(arg, host);
    }
    return ret;
}

int xcp__qcow2_bitmaps_load(xcp__qcow2 *q, const uint8_t *ext, uint32_t len,
                            char *err, size_t errlen)
{
    uint8_t *dir = NULL;
    size_t pos = 0;
    uint32_t n, i;
    int ret = 0;

    if (len < 24)
        return fail(err, errlen, -EBADMSG,
                    "%s: short bitmaps extension", q->path);
    n = be32(ext);
    q->bm_dir_size = be64(ext + 8);
    q->bm_dir_off = be64(ext + 16);
    if (n == 0 || n > MAX_BITMAPS || be32(ext + 4) ||
        q->bm_dir_size > MAX_BITMAP_DIR_BYTES ||
        !in_file(q, q->bm_dir_off, q->bm_dir_size))
        return fail(err, errlen, -EBADMSG,
                    "%s: bad bitmaps extension (%u bitmaps, directory of "
                    "%llu bytes at %llu)", q->path, n,
                    (unsigned long long)q->bm_dir_size,
                    (unsigned long long)q->bm_dir_off);
    q->bm = calloc(n, sizeof(*q->bm));
    dir = malloc(q->bm_dir_size + 1);
    if (!q->bm || !dir) {
        ret = fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
        goto out;
    }
    if (pread_full(q->fd, dir, q->bm_dir_size, q->bm_dir_off) !=
        (ssize_t)q->bm_dir_size) {
        ret = fail(err, errlen, -EBADMSG,
                   "%s: reading the bitmap directory failed", q->path);
        goto out;
    }
    for (i = 0; ret == 0 && i < n; i++) {
        q->nb_bm = i + 1;
        ret = parse_entry(q, dir, q->bm_dir_size, &pos, &q->bm[i], err,
                          errlen);
    }
    /* A writable handle keeps the enabled ones up to date. */
    for (i = 0; ret == 0 && i < n; i++)
        if (!(q->flags & XCP__QCOW2_RDONLY) &&
            (q->bm[i].flags & (BME_AUTO | BME_IN_USE)) == BME_AUTO)
            ret = read_bits(q, &q->bm[i], err, errlen);
out:
    free(dir);
    if (ret < 0)
        xcp__qcow2_bitmaps_free(q);
    return ret;
}

static int read_bits(xcp__qcow2 *q, struct qbitmap *b, char *err,
                     size_t errlen)
{
    uint64_t total = bits_bytes(q, b->gran_bits), cs = q->cluster_size;
    uint64_t i, n, off;

    if (b->bits)
        return 0;
    b->bits = calloc(total ? total : 1, 1);
    if (!b->bits)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    for (i = 0; i < b->table_size; i++) {
        n = min64(cs, total - i * cs);
        off = b->table[i] & BTE_OFFSET_MASK;
        if (off && pread_full(q->fd, b->bits + i * cs, n, off) !=
                       (ssize_t)n)
            return fail(err, errlen, -EIO,
                        "%s: bitmap '%s': reading cluster %llu failed",
                        q->path, b->name, (unsigned long long)off);
        if (!off && (b->table[i] & BTE_ALL_ONES))
            memset(b->bits + i * cs, 0xff, n);
    }
    return 0;
}

/* Set granules [g0, g1] in bits; the byte range changed, if any. */
static bool set_range(uint8_t *bits, uint64_t g0, uint64_t g1, uint64_t *b0,
                      uint64_t *b1)
{
    bool changed = false;
    uint64_t g;

    for (g = g0; g <= g1; g++) {
        if (g % 8 == 0 && g + 7 <= g1) {
            if (bits[g / 8] != 0xff) {
                bits[g / 8] = 0xff;
                *b0 = changed ? *b0 : g / 8;
                *b1 = g / 8;
                changed = true;
            }
            g += 7;
            continue;
        }
        if (!(bits[g / 8] & (1u << (g % 8)))) {
            bits[g / 8] |= (uint8_t)(1u << (g % 8));
            *b0 = changed ? *b0 : g / 8;
            *b1 = g / 8;
            changed = true;
        }
    }
    return changed;
}

/*
 * Give entry i of b's table a data cluster (QEMU leaves all-zeros and
 * all-ones clusters unallocated): the cluster gets the bits, is synced,
 * then the table entry points to it.  A crash in between leaks it.
 */
static int own_cluster(xcp__qcow2 *q, struct qbitmap *b, uint64_t i,
                       char *err, size_t errlen)
{
    uint64_t cs = q->cluster_size, off;
    uint64_t n = min64(cs, bits_bytes(q, b->gran_bits) - i * cs);
    uint8_t e[8];
    int ret;

    ret = xcp__qcow2_alloc_clusters(q, 1, &off, err, errlen);
    if (ret == 0)
        ret = qwrite(q, b->bits + i * cs, n, off, "bitmap", err, errlen);
    if (ret == 0 && fdatasync(q->fd) < 0)
        ret = fail(err, errlen, -errno, "%s: fdatasync: %s", q->path,
                   strerror(errno));
    put64(e, off);
    if (ret == 0)
        ret = qwrite(q, e, 8, b->table_off + i * 8, "bitmap table", err,
                     errlen);
    if (ret == 0)
        b->table[i] = off;
    return ret;
}

/* Write bytes [b0, b1] of b's bits to its data clusters. */
static int write_bits(xcp__qcow2 *q, struct qbitmap *b, uint64_t b0,
                      uint64_t b1, char *err, size_t errlen)
{
    uint64_t cs = q->cluster_size, i, end, off;
    int ret;

    while (b0 <= b1) {
        i = b0 / cs;
        end = min64(b1 + 1, (i + 1) * cs);
        if (!(b->table[i] & BTE_OFFSET_MASK)) {
            if ((ret = own_cluster(q, b, i, err, errlen)) < 0)
                return ret;
            b0 = end;
            continue;
        }
        off = b->table[i] & BTE_OFFSET_MASK;
        ret = qwrite(q, b->bits + b0, end - b0, off + b0 - i * cs,
                     "bitmap", err, errlen);
        if (ret < 0)
            return ret;
        b0 = end;
    }
    return 0;
}

int xcp__qcow2_bitmaps_mark(xcp__qcow2 *q, uint64_t off, uint64_t len,
                            char *err, size_t errlen)
{
    bool any = false;
    uint64_t b0 = 0, b1 = 0;
    uint32_t i;
    int ret;

    if (!len)
        return 0;
    for (i = 0; i < q->nb_bm; i++) {
        struct qbitmap *b = &q->bm[i];

        if (!b->bits || (b->flags & (BME_AUTO | BME_IN_USE)) != BME_AUTO)
            continue;
        if (!set_range(b->bits, off >> b->gran_bits,
                       (off + len - 1) >> b->gran_bits, &b0, &b1))
            continue;
        ret = write_bits(q, b, b0, b1, err, errlen);
        if (ret < 0)
            return ret;
        any = true;
    }
    /* The bits reach the disk before the data they cover is written. */
    if (any && fdatasync(q->fd) < 0)
        return fail(err, errlen, -errno, "%s: fdatasync: %s", q->path,
                    strerror(errno));
    return 0;
}

/* ---- rewriting the set --------------------------------------------- */

/* Write b (bits: bits_bytes bytes or NULL) into fresh clusters: its
 * table gets an allocated cluster per entry, so marking never
 * allocates. */
static int store_bitmap(xcp__qcow2 *q, struct qbitmap *b, char *err,
                        size_t errlen)
{
    uint64_t cs = q->cluster_size, total = bits_bytes(q, b->gran_bits);
    uint64_t data, tab, i, n, tclusters;
    uint8_t *disk = NULL;
    int ret;

    b->table_size = table_entries(q, b->gran_bits);
    tclusters = div_up((uint64_t)b->table_size * 8, cs);
    free(b->table);
    b->table = calloc(b->table_size ? b->table_size : 1, sizeof(uint64_t));
    disk = calloc(tclusters ? tclusters : 1, cs);
    if (!b->table || !disk) {
        free(disk);
        return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    }
    ret = xcp__qcow2_alloc_clusters(q, b->table_size + tclusters, &data,
                                    err, errlen);
    tab = data + (uint64_t)b->table_size * cs;
    for (i = 0; ret == 0 && i < b->table_size; i++) {
        b->table[i] = data + i * cs;
        put64(disk + i * 8, b->table[i]);
        n = min64(cs, total - i * cs);
        /* Fresh clusters read as zeros: write only what is set. */
        if (b->bits && !all_zero(b->bits + i * cs, n))
            ret = qwrite(q, b->bits + i * cs, n, b->table[i], "bitmap",
                         err, errlen);
    }
    if (ret == 0)
        ret = qwrite(q, disk, (size_t)b->table_size * 8, tab,
                     "bitmap table", err, errlen);
    b->table_off = tab;
    free(disk);
    return ret;
}

/* Free the clusters of b as stored (table entries and table). */
static int release_bitmap(xcp__qcow2 *q, const uint64_t *table, uint32_t n,
                          uint64_t table_off, char *err, size_t errlen)
{
    uint64_t cs = q->cluster_size;
    uint32_t i;
    int ret = 0;

    for (i = 0; ret == 0 && i < n; i++)
        if (table[i] & BTE_OFFSET_MASK)
            ret = xcp__qcow2_rc_set_range(q, (table[i] & BTE_OFFSET_MASK) /
                                                 cs, 1, 0, err, errlen);
    if (ret == 0 && n)
        ret = xcp__qcow2_rc_set_range(q, table_off / cs,
                                      div_up((uint64_t)n * 8, cs), 0, err,
                                      errlen);
    return ret;
}

static size_t entry_size(const struct qbitmap *b)
{
    return div_up(BME_FIXED + strlen(b->name), 8) * 8;
}

/* The directory of q->bm into fresh clusters at *off (*size bytes). */
static int store_dir(xcp__qcow2 *q, uint64_t *off, uint64_t *size,
                     char *err, size_t errlen)
{
    uint8_t *dir;
    size_t pos = 0, nlen;
    uint32_t i;
    int ret;

    *size = 0;
    for (i = 0; i < q->nb_bm; i++)
        *size += entry_size(&q->bm[i]);
    if (*size > MAX_BITMAP_DIR_BYTES)
        return fail(err, errlen, -EFBIG, "%s: bitmap directory too large",
                    q->path);
    dir = calloc(1, *size ? *size : 1);
    if (!dir)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    for (i = 0; i < q->nb_bm; i++) {
        const struct qbitmap *b = &q->bm[i];

        nlen = strlen(b->name);
        put64(dir + pos, b->table_off);
        put32(dir + pos + 8, b->table_size);
        put32(dir + pos + 12, b->flags);
        dir[pos + 16] = BITMAP_TYPE_DIRTY;
        dir[pos + 17] = (uint8_t)b->gran_bits;
        dir[pos + 18] = (uint8_t)(nlen >> 8);
        dir[pos + 19] = (uint8_t)nlen;
        memcpy(dir + pos + BME_FIXED, b->name, nlen);
        pos += entry_size(b);
    }
    ret = *size ? xcp__qcow2_alloc_clusters(q, div_up(*size,
                                                      q->cluster_size),
                                            off, err, errlen)
                : 0;
    if (ret == 0 && *size)
        ret = qwrite(q, dir, *size, *off, "bitmap directory", err, errlen);
    free(dir);
    return ret;
}

/*
 * Cluster 0 with the bitmaps extension replaced by ours (none when no
 * bitmaps) and the autoclear bit to match, written in one pwrite: the
 * backing file name moves after the extensions.
 */
static int write_header(xcp__qcow2 *q, char *err, size_t errlen)
{
    uint64_t cs = q->cluster_size, boff, ext_end;
    size_t hlen = min64(cs, q->file_size), pos, apos, blen;
    uint8_t *h = malloc(hlen), *out = calloc(1, cs);
    struct ext x = { 0, 0, 0 };
    int ret;

    if (!h || !out) {
        ret = fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
        goto done;
    }
    /* Dirty first: the header rewritten below carries the bit. */
    if ((ret = qmark(q, err, errlen)) < 0)
        goto done;
    if (pread_full(q->fd, h, hlen, 0) != (ssize_t)hlen) {
        ret = fail(err, errlen, -EIO, "%s: rereading the header failed",
                   q->path);
        goto done;
    }
    memcpy(out, h, q->header_length);
    put64(out + H_SIZE, q->size);       /* a resize's, with its bitmaps */
    boff = be64(h + H_BACKING_OFFSET);
    blen = be32(h + H_BACKING_SIZE);
    ext_end = boff ? boff : hlen;
    pos = q->header_length;
    apos = q->header_length;
    while ((ret = xcp__qcow2_ext_next(q->path, h, min64(ext_end, hlen), &pos,
                                      &x, err, errlen)) > 0) {
        if (x.type == EXT_BITMAPS)
            continue;
        memcpy(out + apos, h + x.data - 8, 8 + x.len);
        apos += 8 + div_up(x.len, 8) * 8;
    }
    if (ret < 0)
        goto done;
    if (q->nb_bm) {
        put32(out + apos, EXT_BITMAPS);
        put32(out + apos + 4, 24);
        put32(out + apos + 8, q->nb_bm);
        put64(out + apos + 16, q->bm_dir_size);
        put64(out + apos + 24, q->bm_dir_off);
        apos += 32;
    }
    apos += 8;                  /* end marker */
    if (apos + blen > cs) {
        ret = fail(err, errlen, -ENOSPC,
                   "%s: header extensions do not fit in the first cluster",
                   q->path);
        goto done;
    }
    if (boff) {
        memcpy(out + apos, h + boff, blen);
        put64(out + H_BACKING_OFFSET, apos);
        apos += blen;
    }
    put64(out + H_AUTOCLEAR, (be64(h + H_AUTOCLEAR) & ~AUTOCLEAR_BITMAPS) |
                                 (q->nb_bm ? AUTOCLEAR_BITMAPS : 0));
    ret = qwrite(q, out, apos, 0, "header", err, errlen);
done:
    free(h);
    free(out);
    return ret;
}

/* What the set was on disk, to free once the new one is in place. */
struct old_set {
    struct qbitmap *bm;
    uint32_t n;
    uint64_t dir_off;
    uint64_t dir_size;
};

/* Store every bitmap of q->bm afresh, switch the header to them, then
 * free old's clusters.  Bits must be loaded for all of q->bm. */
static int commit_set(xcp__qcow2 *q, const struct old_set *old, char *err,
                      size_t errlen)
{
    uint32_t i;
    int ret = 0;

    for (i = 0; ret == 0 && i < q->nb_bm; i++)
        ret = store_bitmap(q, &q->bm[i], err, errlen);
    if (ret == 0)
        ret = store_dir(q, &q->bm_dir_off, &q->bm_dir_size, err, errlen);
    /* Everything the new header names is durable before it does. */
    if (ret == 0 && fdatasync(q->fd) < 0)
        ret = fail(err, errlen, -errno, "%s: fdatasync: %s", q->path,
                   strerror(errno));
    if (ret == 0)
        ret = write_header(q, err, errlen);
    if (ret == 0 && fdatasync(q->fd) < 0)
        ret = fail(err, errlen, -errno, "%s: fdatasync: %s", q->path,
                   strerror(errno));
    for (i = 0; ret == 0 && i < old->n; i++)
        ret = release_bitmap(q, old->bm[i].table, old->bm[i].table_size,
                             old->bm[i].table_off, err, errlen);
    if (ret == 0 && old->dir_size)
        ret = xcp__qcow2_rc_set_range(q, old->dir_off / q->cluster_size,
                                      div_up(old->dir_size,
                                             q->cluster_size), 0, err,
                                      errlen);
    return ret;
}

/* Copy the tables of the current set so they can be freed later. */
static int save_old(xcp__qcow2 *q, struct old_set *old, char *err,
                    size_t errlen)
{
    uint32_t i;

    memset(old, 0, sizeof(*old));
    old->dir_off = q->bm_dir_off;
    old->dir_size = q->nb_bm ? q->bm_dir_size : 0;
    if (!q->nb_bm)
        return 0;
    old->bm = calloc(q->nb_bm, sizeof(*old->bm));
    if (!old->bm)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    for (i = 0; i < q->nb_bm; i++) {
        old->bm[i].table_off = q->bm[i].table_off;
        old->bm[i].table_size = q->bm[i].table_size;
        old->bm[i].table = malloc(((size_t)q->bm[i].table_size + 1) * 8);
        old->n = i + 1;
        if (!old->bm[i].table)
            return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
        memcpy(old->bm[i].table, q->bm[i].table,
               (size_t)q->bm[i].table_size * 8);
    }
    return 0;
}

static void free_old(struct old_set *old)
{
    uint32_t i;

    for (i = 0; i < old->n; i++)
        free(old->bm[i].table);
    free(old->bm);
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool xcp__qcow2_live_writer(const xcp__qcow2 *q)
{
    struct flock fl;

    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = LOCK_PERM_BASE + LOCK_PERM_WRITE_BIT;
    fl.l_len = 1;
    /* Our handle holds no lock: any conflict is another process's. */
    return fcntl(q->fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

/* b is in use by a writer still running (not one that died). */
static bool held(const xcp__qcow2 *q, const struct qbitmap *b, int *live)
{
    if (!(b->flags & BME_IN_USE))
        return false;
    if (*live < 0)
        *live = xcp__qcow2_live_writer(q);
    return *live;
}

int xcp__qcow2_bitmaps_drop_stale(xcp__qcow2 *q, char *err, size_t errlen)
{
    struct old_set old;
    uint32_t i, keep = 0;
    int ret;

    for (i = 0; i < q->nb_bm && !(q->bm[i].flags & BME_IN_USE); i++)
        ;
    if (i == q->nb_bm || (q->flags & XCP__QCOW2_RDONLY) ||
        xcp__qcow2_live_writer(q))
        return 0;
    for (i = 0; i < q->nb_bm; i++)
        if ((ret = read_bits(q, &q->bm[i], err, errlen)) < 0)
            return ret;
    if ((ret = save_old(q, &old, err, errlen)) == 0) {
        for (i = 0; i < q->nb_bm; i++) {
            if (q->bm[i].flags & BME_IN_USE)
                bm_free(&q->bm[i]);
            else
                q->bm[keep++] = q->bm[i];
        }
        q->nb_bm = keep;
        ret = commit_set(q, &old, err, errlen);
    }
    free_old(&old);
    return ret;
}

int xcp__qcow2_bitmap_find(xcp__qcow2 *q, const char *prefix, bool *found,
                           char *name, size_t namelen, unsigned *gran_bits,
                           bool *enabled, uint8_t **bits, uint64_t *nbits,
                           char *err, size_t errlen)
{
    struct qbitmap *b = NULL;
    uint32_t i;
    int ret, live = -1;

    *found = false;
    for (i = 0; !b && i < q->nb_bm; i++)
        if (has_prefix(q->bm[i].name, prefix) &&
            (!(q->bm[i].flags & BME_IN_USE) || held(q, &q->bm[i], &live)))
            b = &q->bm[i];
    if (!b)
        return 0;
    *found = true;
    snprintf(name, namelen, "%s", b->name);
    *gran_bits = b->gran_bits;
    *enabled = (b->flags & BME_AUTO) != 0;
    *nbits = granules(q, b->gran_bits);
    if (!bits)
        return 0;
    /* Its writer keeps the current bits in memory, not in the file. */
    if (b->flags & BME_IN_USE)
        return fail(err, errlen, -EBUSY, "%s: bitmap '%s' is in use by "
                    "the process writing the image", q->path, b->name);
    if ((ret = read_bits(q, b, err, errlen)) < 0)
        return ret;
    *bits = malloc(bits_bytes(q, b->gran_bits) + 1);
    if (!*bits)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    memcpy(*bits, b->bits, bits_bytes(q, b->gran_bits));
    return 0;
}

int xcp__qcow2_bitmap_replace(xcp__qcow2 *q, const char *prefix,
                              const char *name, unsigned gran_bits,
                              const uint8_t *bits, char *err, size_t errlen)
{
    struct old_set old;
    struct qbitmap *nb;
    uint32_t i, keep = 0;
    uint64_t nbytes;
    int ret;

    if ((ret = xcp__qcow2_check_writable(q, err, errlen)) < 0)
        return ret;
    if (q->raw || q->version < 3)
        return fail(err, errlen, -ENOTSUP,
                    "%s: persistent bitmaps need a qcow2 version 3 image",
                    q->path);
    if (name && (gran_bits < 16 || gran_bits > 31 || !name[0] ||
                 strlen(name) > MAX_BITMAP_NAME))
        return fail(err, errlen, -EINVAL, "%s: bad bitmap name or "
                    "granularity", q->path);
    for (i = 0; i < q->nb_bm; i++)
        if ((ret = read_bits(q, &q->bm[i], err, errlen)) < 0)
            return ret;
    if ((ret = save_old(q, &old, err, errlen)) < 0)
        goto out;
    /* Keep the others in place; drop the matching ones. */
    for (i = 0; i < q->nb_bm; i++) {
        if (has_prefix(q->bm[i].name, prefix))
            bm_free(&q->bm[i]);
        else
            q->bm[keep++] = q->bm[i];
    }
    q->nb_bm = keep;
    if (name) {
        nbytes = bits_bytes(q, gran_bits);
        nb = realloc(q->bm, (keep + 1) * sizeof(*nb));
        if (!nb) {
            ret = fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
            goto out;
        }
        q->bm = nb;
        nb = &q->bm[keep];
        memset(nb, 0, sizeof(*nb));
        nb->name = strdup(name);
        nb->bits = calloc(nbytes ? nbytes : 1, 1);
        nb->flags = BME_AUTO;
        nb->gran_bits = gran_bits;
        q->nb_bm = keep + 1;
        if (!nb->name || !nb->bits) {
            ret = fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
            goto out;
        }
        if (bits)
            memcpy(nb->bits, bits, nbytes);
    }
    ret = commit_set(q, &old, err, errlen);
out:
    free_old(&old);
    return ret;
}

int xcp__qcow2_bitmaps_resized(xcp__qcow2 *q, uint64_t old_size, char *err,
                               size_t errlen)
{
    uint64_t new_size = q->size, nbytes, obytes;
    struct old_set old;
    uint8_t *bits;
    uint32_t i;
    int ret = 0;

    if (!q->nb_bm)
        return 0;
    /* Load the bits as they are for the old size, then grow them. */
    q->size = old_size;
    for (i = 0; ret == 0 && i < q->nb_bm; i++)
        ret = read_bits(q, &q->bm[i], err, errlen);
    q->size = new_size;
    if (ret < 0)
        return ret;
    for (i = 0; i < q->nb_bm; i++) {
        nbytes = bits_bytes(q, q->bm[i].gran_bits);
        obytes = div_up(div_up(old_size, 1ull << q->bm[i].gran_bits), 8);
        bits = calloc(nbytes ? nbytes : 1, 1);
        if (!bits)
            return fail(err, errlen, -ENOMEM, "%s: out of memory",
                        q->path);
        memcpy(bits, q->bm[i].bits, obytes);
        free(q->bm[i].bits);
        q->bm[i].bits = bits;
    }
    if ((ret = save_old(q, &old, err, errlen)) == 0)
        ret = commit_set(q, &old, err, errlen);
    free_old(&old);
    return ret;
}
