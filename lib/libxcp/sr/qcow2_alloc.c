/*
 * qcow2_alloc.c - refcounts and cluster allocation (append only, see
 * qcow2.c), writing guest data, resizing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* SEEK_DATA, SEEK_HOLE */
#endif
#include "../core/crash_point.h"
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
/* Refcounts and allocation                                            */

uint64_t xcp__qcow2_rc_get(const uint8_t *rb, uint64_t i, unsigned order)
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
    ret = xcp__qcow2_extend_file(q, (b + 1) * q->cluster_size, err, errlen);
    if (ret < 0)
        return ret;
    q->rt[ti] = b * q->cluster_size;
    ret = write_rt_entry(q, ti, err, errlen);
    if (ret < 0)
        return ret;
    /* The block counts itself when it lies in its own range. */
    return xcp__qcow2_rc_set_range(q, b, 1, 1, err, errlen);
}

int xcp__qcow2_rc_set_range(xcp__qcow2 *q, uint64_t first, uint64_t n,
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
        ret = xcp__qcow2_cache_get(q, &q->rbc, q->rt[ti], false, &rb, err,
                                   errlen);
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

int xcp__qcow2_alloc_clusters(xcp__qcow2 *q, uint64_t n, uint64_t *host,
                              char *err, size_t errlen)
{
    uint64_t start = q->next_free;
    int ret;

    if (start + n > MAX_HOST_OFFSET / q->cluster_size)
        return fail(err, errlen, -EFBIG,
                    "%s: image file would exceed the 64 PiB qcow2 limit",
                    q->path);
    q->next_free += n;
    ret = xcp__qcow2_rc_set_range(q, start, n, 1, err, errlen);
    if (ret < 0)
        return ret;
    ret = xcp__qcow2_extend_file(q, (start + n) * q->cluster_size, err, errlen);
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
    ret = xcp__qcow2_extend_file(q, q->next_free * q->cluster_size, err,
                                 errlen);
    if (ret < 0)
        goto out;
    q->rt_entries = entries;
    q->rt_offset = p * q->cluster_size;
    q->rt_clusters = ntc;
    q->growing_rt = true;
    ret = xcp__qcow2_rc_set_range(q, p, ntc, 1, err, errlen);
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
    ret = xcp__qcow2_rc_set_range(q, old_off / q->cluster_size, old_clusters,
                                  0, err,
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

    ret = xcp__qcow2_cache_get(q, &q->l2c, l2off, false, &table, err, errlen);
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

    ret = xcp__qcow2_l2_table(q, l1i, &table, l2off, err, errlen);
    if (ret < 0 || *l2off)
        return ret;
    ret = xcp__qcow2_alloc_clusters(q, 1, &off, err, errlen);
    if (ret < 0)
        return ret;
    ret = xcp__qcow2_cache_get(q, &q->l2c, off, true, &table, err, errlen);
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

    ret = xcp__qcow2_l2_table(q, l1i, &table, &l2off, err, errlen);
    if (ret == 0 && table) {
        entry = be64(table + idx * 8);
        ret = xcp__qcow2_classify(q, entry, &kind, &host, err, errlen);
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
            ret = xcp__qcow2_read_below(q, coff, q->cow, below_len, err,
                                        errlen);
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
        ret = xcp__qcow2_alloc_clusters(q, 1, &host, err, errlen);
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

    ret = xcp__qcow2_l2_table(q, l1i, &table, &l2off, err, errlen);
    if (ret == 0 && table)
        ret = xcp__qcow2_classify(q, be64(table + idx * 8), &kind, &host, err,
                                  errlen);
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

/*
 * How many whole guest clusters from coff (at most max, within one L2
 * table) one write can serve: all new (unallocated, or zero without a
 * host), or all data owned by this image (COPIED) at consecutive host
 * offsets.  *fresh says which, *host where the first one lives.
 */
static int run_of_clusters(xcp__qcow2 *q, uint64_t coff, uint64_t max,
                           uint64_t *count, bool *fresh, uint64_t *host,
                           char *err, size_t errlen)
{
    uint64_t cs = q->cluster_size, idx = coff / cs % q->l2_entries;
    uint64_t l2off, e, h, i;
    uint8_t *table;
    int kind, ret;

    *count = 0;
    max = min64(max, q->l2_entries - idx);
    ret = xcp__qcow2_l2_table(q, coff / (cs * q->l2_entries), &table, &l2off,
                              err, errlen);
    if (ret < 0)
        return ret;
    for (i = 0; i < max; i++) {
        e = table ? be64(table + (idx + i) * 8) : 0;
        kind = K_UNALLOC;
        h = 0;
        if (e && (ret = xcp__qcow2_classify(q, e, &kind, &h, err,
                                            errlen)) < 0)
            return ret;
        if (i == 0) {
            *fresh = kind == K_UNALLOC || (kind == K_ZERO && !h);
            *host = h;
            if (!*fresh && !(kind == K_DATA && (e & OFLAG_COPIED)))
                return 0;
        } else if (*fresh ? !(kind == K_UNALLOC || (kind == K_ZERO && !h))
                          : !(kind == K_DATA && (e & OFLAG_COPIED) &&
                              h == *host + i * cs)) {
            break;
        }
    }
    *count = i;
    return 0;
}

/* Where the bytes of a run of whole clusters come from. */
struct run_src {
    const uint8_t *data;        /* a buffer, or */
    int fd;                     /* a file (data NULL) */
    uint64_t off;               /* at this offset */
};

/* Copy n bytes of fd from *in to q's file at out, in the kernel where it
 * can (copy_file_range), else through q->cow. */
static int copy_in(xcp__qcow2 *q, int fd, uint64_t in, uint64_t out,
                   uint64_t n, char *err, size_t errlen)
{
    loff_t i = (loff_t)in, o = (loff_t)out;
    ssize_t r = 0;
    uint64_t k;
    int ret;

    while (n) {
        r = copy_file_range(fd, &i, q->fd, &o, n, 0);
        if (r <= 0)
            break;
        n -= (uint64_t)r;
    }
    if (r < 0 && errno != ENOSYS && errno != EXDEV && errno != EINVAL &&
        errno != EOPNOTSUPP)
        return fail(err, errlen, -errno, "%s: copying data at offset %llu: "
                    "%s", q->path, (unsigned long long)o, strerror(errno));
    for (; n; n -= k, i += (loff_t)k, o += (loff_t)k) {
        k = min64(n, q->cluster_size);
        if (pread_full(fd, q->cow, k, (uint64_t)i) != (ssize_t)k)
            return fail(err, errlen, -EIO, "%s: reading the data to copy "
                        "failed", q->path);
        if ((ret = qwrite(q, q->cow, k, (uint64_t)o, "data", err,
                          errlen)) < 0)
            return ret;
    }
    if ((uint64_t)o > q->file_size)
        q->file_size = (uint64_t)o;
    q->written = true;
    return 0;
}

static int put_run(xcp__qcow2 *q, const struct run_src *src, uint64_t host,
                   uint64_t n, char *err, size_t errlen)
{
    if (src->data)
        return qwrite(q, src->data, n, host, "data clusters", err, errlen);
    return copy_in(q, src->fd, src->off, host, n, err, errlen);
}

/*
 * Write count whole clusters from coff in one go (see run_of_clusters):
 * new ones are allocated together, written, then their L2 entries, in
 * the order a single cluster's write follows (a kill leaves at worst
 * allocated clusters no entry points to).
 */
static int write_run(xcp__qcow2 *q, uint64_t coff, const struct run_src *src,
                     uint64_t count, bool fresh, uint64_t host, char *err,
                     size_t errlen)
{
    uint64_t cs = q->cluster_size, idx = coff / cs % q->l2_entries;
    uint64_t l2off, i;
    uint8_t *table;
    int ret;

    if (!fresh)
        return put_run(q, src, host, count * cs, err, errlen);
    if ((ret = l2_for_write(q, coff / (cs * q->l2_entries), &l2off, err,
                            errlen)) < 0 ||
        (ret = xcp__qcow2_alloc_clusters(q, count, &host, err,
                                         errlen)) < 0 ||
        (ret = put_run(q, src, host, count * cs, err, errlen)) < 0 ||
        (ret = xcp__qcow2_cache_get(q, &q->l2c, l2off, false, &table, err,
                                    errlen)) < 0)
        return ret;
    for (i = 0; i < count; i++)
        put64(table + (idx + i) * 8, (host + i * cs) | OFLAG_COPIED);
    return qwrite(q, table + idx * 8, count * 8, l2off + idx * 8,
                  "L2 entries", err, errlen);
}

int xcp__qcow2_write_from(xcp__qcow2 *q, uint64_t off, int fd,
                          uint64_t src_off, uint64_t len, char *err,
                          size_t errlen)
{
    struct run_src src = { NULL, fd, 0 };
    uint64_t cs = q->cluster_size, n, run = 0, host = 0;
    bool fresh;
    int ret;

    while (len) {
        n = min64(len, cs - off % cs);
        run = 0;
        if (off % cs == 0 && len >= cs &&
            (ret = run_of_clusters(q, off, len / cs, &run, &fresh, &host,
                                   err, errlen)) < 0)
            return ret;
        if (run >= 1) {
            n = run * cs;
            src.off = src_off;
            ret = write_run(q, off, &src, run, fresh, host, err, errlen);
        } else {
            /* Part of a cluster: through a buffer of its own. */
            uint8_t *buf = malloc(n);

            ret = buf ? 0 : fail(err, errlen, -ENOMEM, "%s: out of memory",
                                 q->path);
            if (ret == 0 && pread_full(fd, buf, n, src_off) != (ssize_t)n)
                ret = fail(err, errlen, -EIO, "%s: reading the data to "
                           "copy failed", q->path);
            if (ret == 0)
                ret = xcp__qcow2_write_at(q, off, buf, n, err, errlen);
            free(buf);
        }
        if (ret < 0)
            return ret;
        off += n;
        src_off += n;
        len -= n;
    }
    return 0;
}

/* data == NULL writes zeros: by flag where possible, else by bytes. */
int xcp__qcow2_write_at(xcp__qcow2 *q, uint64_t off, const uint8_t *data,
                        uint64_t len, char *err, size_t errlen)
{
    uint64_t cs = q->cluster_size, in, n, run, host = 0;
    bool fresh;
    int ret;

    while (len) {
        if (q->raw) {
            n = min64(len, data ? COPY_CHUNK : sizeof(zeros));
            ret = qwrite(q, data ? data : zeros, n, off, "data", err, errlen);
        } else {
            in = off % cs;
            n = min64(len, cs - in);
            run = 0;
            if (data && in == 0 && len >= 2 * cs &&
                (ret = run_of_clusters(q, off, len / cs, &run, &fresh,
                                       &host, err, errlen)) < 0)
                return ret;
            if (run > 1) {
                struct run_src src = { data, -1, 0 };

                n = run * cs;
                ret = write_run(q, off, &src, run, fresh, host, err, errlen);
            } else if (!data && n == cs && q->version >= 3)
                ret = zero_cluster(q, off - in, err, errlen);
            else
                ret = write_cluster(q, off - in, in, data, n, err, errlen);
        }
        if (ret < 0)
            return ret;
        off += n;
        len -= n;
        if (data)
            data += n;
    }
    return 0;
}

int xcp__qcow2_check_writable(xcp__qcow2 *q, char *err, size_t errlen)
{
    if (q->flags & XCP__QCOW2_RDONLY)
        return fail(err, errlen, -EROFS, "%s: image is opened read-only",
                    q->path);
    return 0;
}

int xcp__qcow2_write(xcp__qcow2 *q, uint64_t offset, const void *buf,
                     size_t len, char *err, size_t errlen)
{
    int ret = xcp__qcow2_check_writable(q, err, errlen);

    if (ret == 0)
        ret = xcp__qcow2_check_range(q, offset, len, err, errlen);
    if (ret == 0)
        ret = xcp__qcow2_bitmaps_mark(q, offset, len, err, errlen);
    if (ret < 0)
        return ret;
    if ((ret = xcp__qcow2_write_at(q, offset, buf, len, err, errlen)) < 0)
        q->torn = true;
    return ret;
}

/* ------------------------------------------------------------------ */
/* Resizing                                                            */

static int grow_l1(xcp__qcow2 *q, uint64_t need, char *err, size_t errlen)
{
    uint64_t cs = q->cluster_size, old_nc = div_up(q->l1_size * 8, cs);
    uint64_t i, off, *l1;
    uint8_t *disk = NULL, hdr[12];
    int ret;

    if (!q->l1 && (ret = xcp__qcow2_load_l1(q, err, errlen)) < 0)
        return ret;
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
        ret = xcp__qcow2_alloc_clusters(q, div_up(need * 8, cs), &off, err,
                                        errlen);
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
        ret = xcp__qcow2_rc_set_range(q, q->l1_offset / cs, old_nc, 0, err,
                                      errlen);
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

    ret = xcp__qcow2_check_writable(q, err, errlen);
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
        ret = xcp__qcow2_extend_file(q, new_size, err, errlen);
        if (ret == 0)
            q->size = new_size;
        return ret;
    }
    if (q->has_backing && !q->below)
        return fail(err, errlen, -EINVAL,
                    "%s: growing an image needs its backing chain open",
                    q->path);
    need = xcp__qcow2_l1_entries_for(new_size, q->cluster_bits);
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
    xcp__crash_point("qcow2:resize-bitmaps");
    if (q->nb_bm) {
        /* The bitmaps, sized anew, and the new size reach the header in
         * one write: a kill before it leaves the old size and bitmaps. */
        q->size = new_size;
        ret = xcp__qcow2_bitmaps_resized(q, old, err, errlen);
    } else {
        put64(b, new_size);
        ret = qwrite(q, b, 8, H_SIZE, "header", err, errlen);
        if (ret == 0)
            q->size = new_size;
    }
    if (ret < 0)
        return ret;
    /* A backing file larger than we were must not show through. */
    if (q->below && q->below->size > old) {
        zero_end = min64(new_size, q->below->size);
        ret = xcp__qcow2_write_at(q, old, NULL, zero_end - old, err, errlen);
    }
    return ret;
}

/* ------------------------------------------------------------------ */
/* The dirty bit and leak repair (see qcow2_int.h)                     */

int xcp__qcow2_set_dirty(xcp__qcow2 *q, bool dirty, char *err,
                         size_t errlen)
{
    uint64_t bits = dirty ? q->incompat | INCOMPAT_DIRTY
                          : q->incompat & ~INCOMPAT_DIRTY;
    uint8_t b[8];
    int ret;

    put64(b, bits);
    ret = pwrite_full(q->fd, b, sizeof(b), H_INCOMPAT);
    /* Set: on the disk before any change it covers. */
    if (ret == 0 && dirty && fdatasync(q->fd) < 0)
        ret = -errno;
    if (ret < 0)
        return fail(err, errlen, ret, "%s: %s the dirty bit: %s", q->path,
                    dirty ? "setting" : "clearing", strerror(-ret));
    q->incompat = bits;
    q->dirty = dirty;
    return 0;
}

/* Count cluster `host` (a byte offset) in want[n]; -EBADMSG past it. */
static int want_one(xcp__qcow2 *q, uint16_t *want, uint64_t n,
                    uint64_t host, char *err, size_t errlen)
{
    uint64_t c = host / q->cluster_size;

    if (c >= n)
        return fail(err, errlen, -EBADMSG, "%s: cluster at %llu is beyond "
                    "the end of the file", q->path,
                    (unsigned long long)host);
    if (want[c] < UINT16_MAX)
        want[c]++;
    return 0;
}

struct want_ctx {
    xcp__qcow2 *q;
    uint16_t *want;
    uint64_t n;
    char *err;
    size_t errlen;
};

static int want_bitmap_cluster(void *arg, uint64_t host)
{
    struct want_ctx *w = arg;

    return want_one(w->q, w->want, w->n, host, w->err, w->errlen);
}

/* What every cluster's refcount should be: header, L1, L2 tables, data,
 * refcount table and blocks, and the persistent bitmaps kept (loaded at
 * open before the repair; those dropped there have their autoclear bit
 * gone, and their clusters are leaks).  No internal snapshots (refused
 * for writing). */
static int count_reached(xcp__qcow2 *q, uint16_t *want, uint64_t n,
                         char *err, size_t errlen)
{
    uint64_t cs = q->cluster_size, i, j, host, l2off;
    struct want_ctx w = { q, want, n, err, errlen };
    uint8_t *table;
    int kind, ret = want_one(q, want, n, 0, err, errlen);

    if (ret == 0)
        ret = xcp__qcow2_bitmaps_each_cluster(q, want_bitmap_cluster, &w);

    for (i = 0; ret == 0 && i < div_up(q->l1_size * 8, cs); i++)
        ret = want_one(q, want, n, q->l1_offset + i * cs, err, errlen);
    for (i = 0; ret == 0 && i < q->rt_clusters; i++)
        ret = want_one(q, want, n, q->rt_offset + i * cs, err, errlen);
    for (i = 0; ret == 0 && i < q->rt_entries; i++)
        if (q->rt[i])
            ret = want_one(q, want, n, q->rt[i], err, errlen);
    for (i = 0; ret == 0 && i < q->l1_size; i++) {
        ret = xcp__qcow2_l2_table(q, i, &table, &l2off, err, errlen);
        if (ret < 0 || !table)
            continue;
        ret = want_one(q, want, n, l2off, err, errlen);
        for (j = 0; ret == 0 && j < q->l2_entries; j++) {
            ret = xcp__qcow2_classify(q, be64(table + j * 8), &kind, &host,
                                      err, errlen);
            if (ret == 0 && kind == K_COMPRESSED)
                ret = fail(err, errlen, -ENOTSUP, "%s: cannot repair an "
                           "image with compressed clusters", q->path);
            if (ret == 0 && host)
                ret = want_one(q, want, n, host, err, errlen);
            /* The L2 cache may have moved under us. */
            if (ret == 0)
                ret = xcp__qcow2_l2_table(q, i, &table, &l2off, err, errlen);
        }
    }
    return ret;
}

int xcp__qcow2_repair_leaks(xcp__qcow2 *q, char *err, size_t errlen)
{
    uint64_t cs = q->cluster_size, n = div_up(q->file_size, cs);
    uint64_t ti, j, c, have, last = 0;
    uint16_t *want = calloc(n ? n : 1, sizeof(*want));
    uint8_t *rb;
    int ret;

    if (!want)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    ret = count_reached(q, want, n, err, errlen);
    /* First make sure nothing is counted too low: then only leaks. */
    for (c = 0; ret == 0 && c < n; c++) {
        if (!want[c])
            continue;
        last = c + 1;
        ti = c / q->rb_entries;
        ret = ti < q->rt_entries && q->rt[ti]
                  ? xcp__qcow2_cache_get(q, &q->rbc, q->rt[ti], false, &rb,
                                         err, errlen)
                  : fail(err, errlen, -EBADMSG, "%s: cluster %llu is in "
                         "use but has no refcount block", q->path,
                         (unsigned long long)c);
        if (ret == 0 && xcp__qcow2_rc_get(rb, c % q->rb_entries,
                                          q->refcount_order) < want[c])
            ret = fail(err, errlen, -EBADMSG, "%s: cluster %llu is in use "
                       "but counted too low", q->path,
                       (unsigned long long)c);
    }
    for (ti = 0; ret == 0 && ti < q->rt_entries; ti++) {
        for (j = 0; ret == 0 && q->rt[ti] && j < q->rb_entries; j++) {
            c = ti * q->rb_entries + j;
            ret = xcp__qcow2_cache_get(q, &q->rbc, q->rt[ti], false, &rb,
                                       err, errlen);
            if (ret < 0)
                break;
            have = xcp__qcow2_rc_get(rb, j, q->refcount_order);
            if (have != (c < n ? want[c] : 0))
                ret = xcp__qcow2_rc_set_range(q, c, 1, c < n ? want[c] : 0,
                                              err, errlen);
        }
    }
    /* What was leaked at the end of the file goes with it. */
    if (ret == 0 && last < n && ftruncate(q->fd, (off_t)(last * cs)) == 0) {
        q->file_size = last * cs;
        q->next_free = last;
    }
    free(want);
    return ret;
}
