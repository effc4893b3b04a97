/*
 * qcow2_header.c - opening images (the header, its extensions, the L1
 * and refcount tables, the backing chain) and creating them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* SEEK_DATA, SEEK_HOLE */
#endif
#include "qcow2_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Opening                                                             */

/*
 * Step through the extension area h[*pos, end).  Returns 1 with x filled,
 * 0 at the end marker or the end of the area, or -EBADMSG.
 */
int xcp__qcow2_ext_next(const char *path, const uint8_t *h, size_t end,
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
                            struct ext *bitmaps, char *err, size_t errlen)
{
    size_t pos = q->header_length;
    bool seen_fmt = false;
    struct ext x = { 0, 0, 0 };
    int ret;

    while ((ret = xcp__qcow2_ext_next(q->path, h, end, &pos, &x, err,
                                      errlen)) > 0) {
        if (x.type == EXT_BITMAPS)
            *bitmaps = x;
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
                        struct ext *bitmaps, char *err, size_t errlen)
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
        /* Dirty (a writer died, or QEMU's lazy refcounts): repaired
         * once the tables are loaded (open_qcow2). */
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
    need = xcp__qcow2_l1_entries_for(q->size, q->cluster_bits);
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
    if (parse_extensions(q, h, boff ? boff : hlen, bitmaps, err, errlen) < 0)
        return -EBADMSG;
    if (q->backing_fmt[0] && !xcp__qcow2_format_ok(q->backing_fmt))
        return fail(err, errlen, -ENOTSUP,
                    "%s: unsupported backing format '%s'", p, q->backing_fmt);
    return 0;
}

int xcp__qcow2_load_l1(xcp__qcow2 *q, char *err, size_t errlen)
{
    uint8_t *disk;
    ssize_t r;
    uint64_t i;

    q->l1 = calloc(q->l1_size ? q->l1_size : 1, sizeof(*q->l1));
    disk = malloc(q->l1_size * 8 + 1);
    if (!q->l1 || !disk) {
        free(disk);
        free(q->l1);
        q->l1 = NULL;
        return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    }
    r = pread_full(q->fd, disk, q->l1_size * 8, q->l1_offset);
    if (r >= 0 && (uint64_t)r != q->l1_size * 8)
        r = -EBADMSG;
    for (i = 0; r >= 0 && i < q->l1_size; i++)
        q->l1[i] = be64(disk + i * 8);
    free(disk);
    if (r < 0) {
        free(q->l1);
        q->l1 = NULL;
        return fail(err, errlen, (int)r, "%s: reading the L1 table: %s",
                    q->path, strerror((int)-r));
    }
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
        ret = xcp__qcow2_cache_get(q, &q->rbc, q->rt[i], false, &rb, err,
                                   errlen);
        if (ret < 0)
            return ret;
        for (j = q->rb_entries; j-- > 0;) {
            if (xcp__qcow2_rc_get(rb, j, q->refcount_order)) {
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

int xcp__qcow2_open_chain(xcp__qcow2 **below, const xcp__qcow2 *q,
                          const char *name, const char *fmt,
                          char *err, size_t errlen)
{
    char *path = resolve_backing(q->path, name);
    int ret;

    if (!path)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    ret = xcp__qcow2_open_image(below, path, fmt[0] ? fmt : NULL,
                                XCP__QCOW2_RDONLY,
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

/*
 * The persistent bitmaps, when the autoclear bit says they are
 * consistent and we understand them all; a writable handle then keeps
 * the bit.  Other autoclear bits name extensions we do not keep up to
 * date: a writable handle clears them, as the format asks.
 */
static int open_bitmaps(xcp__qcow2 *q, const uint8_t *h,
                        const struct ext *bitmaps, char *err, size_t errlen)
{
    uint64_t ac = q->version >= 3 ? be64(h + H_AUTOCLEAR) : 0, keep = 0;
    uint8_t b[8];

    if ((ac & AUTOCLEAR_BITMAPS) && bitmaps->type == EXT_BITMAPS &&
        xcp__qcow2_bitmaps_load(q, h + bitmaps->data, bitmaps->len, NULL,
                                0) == 0)
        keep = AUTOCLEAR_BITMAPS;
    if ((q->flags & XCP__QCOW2_RDONLY) || ac == keep)
        return 0;
    put64(b, keep);
    return qwrite(q, b, 8, H_AUTOCLEAR, "header", err, errlen);
}

static int open_qcow2(xcp__qcow2 *q, char *err, size_t errlen)
{
    uint8_t first[V3_HEADER_LEN], *h = NULL;
    struct ext bitmaps = { 0, 0, 0 };
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
    ret = parse_header(q, h, hlen, &bitmaps, err, errlen);
    if (ret < 0)
        goto out;
    slots = CACHE_BYTES / q->cluster_size;
    slots = slots < CACHE_MIN_SLOTS ? CACHE_MIN_SLOTS
            : slots > CACHE_MAX_SLOTS ? CACHE_MAX_SLOTS : slots;
    if (xcp__qcow2_cache_init(&q->l2c, slots) < 0 ||
        xcp__qcow2_cache_init(&q->rbc, RB_CACHE_SLOTS) < 0) {
        ret = fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
        goto out;
    }
    /* The L1 table is read when first needed (xcp__qcow2_load_l1): an
     * open for the header alone (a stat, a chain walk) costs the same
     * whatever the virtual size. */
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
    ret = open_bitmaps(q, h, &bitmaps, err, errlen);
    if (ret == 0 && !(q->flags & XCP__QCOW2_RDONLY))
        ret = xcp__qcow2_bitmaps_drop_stale(q, err, errlen);
    if (ret < 0)
        goto out;
    /* After the bitmaps: the clusters of those kept are in use. */
    if (!(q->flags & XCP__QCOW2_RDONLY) && (q->incompat & INCOMPAT_DIRTY)) {
        q->dirty = true;
        ret = xcp__qcow2_repair_leaks(q, err, errlen);
        if (ret == 0)
            ret = xcp__qcow2_flush(q, err, errlen);
        if (ret < 0)
            goto out;
    }
    if (q->has_backing && !(q->flags & XCP__QCOW2_NO_BACKING))
        ret = xcp__qcow2_open_chain(&q->below, q, q->backing, q->backing_fmt,
                                    err,
                                    errlen);
out:
    free(h);
    return ret;
}

int xcp__qcow2_open_image(xcp__qcow2 **out, const char *path,
                          const char *format,
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
    if (format && !xcp__qcow2_format_ok(format))
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
    return xcp__qcow2_open_image(out, path, format, flags, 0, err, errlen);
}

bool xcp__qcow2_is_dirty(const char *path)
{
    uint8_t h[H_INCOMPAT + 8];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ssize_t r;

    if (fd < 0)
        return false;
    r = pread_full(fd, h, sizeof(h), 0);
    close(fd);
    return r == (ssize_t)sizeof(h) && be32(h) == QCOW2_MAGIC &&
           be32(h + H_VERSION) >= 3 && (be64(h + H_INCOMPAT) & INCOMPAT_DIRTY);
}

int xcp__qcow2_flush(xcp__qcow2 *q, char *err, size_t errlen)
{
    if (!q->written && !q->dirty)
        return 0;
    if (fdatasync(q->fd) < 0)
        return fail(err, errlen, -errno, "%s: fdatasync: %s", q->path,
                    strerror(errno));
    q->written = false;
    /* Everything is on the disk: consistent again, unless a write failed
       part way (its allocated clusters may be leaked: the next writable
       open repairs them, as after a crash). */
    return q->dirty && !q->torn ? xcp__qcow2_set_dirty(q, false, err, errlen)
                                : 0;
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
    xcp__qcow2_bitmaps_free(q);
    xcp__qcow2_cache_free(&q->l2c);
    xcp__qcow2_cache_free(&q->rbc);
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

    l1_size = xcp__qcow2_l1_entries_for(size, cb);
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
    if (!xcp__qcow2_format_ok(fmt) || !xcp__qcow2_format_ok(bfmt))
        return fail(err, errlen, -ENOTSUP, "%s: unsupported format '%s'",
                    path, xcp__qcow2_format_ok(fmt) ? bfmt : fmt);
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
