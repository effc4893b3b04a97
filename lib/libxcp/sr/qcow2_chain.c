/*
 * qcow2_chain.c - backing chains: rebasing, copying an image (or its
 * whole chain) and committing a child into its parent.
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

/*
 * The bytes of q's backing link for backing_file (NULL: none) of format
 * fmt: from the first cluster h (hlen bytes), every header extension but
 * the backing format, then ours, the end marker and the name, into area
 * (a zeroed cluster, *alen bytes used, written at header_length); the
 * header's backing offset and size into hdr (written at
 * H_BACKING_OFFSET).  Nothing else of the header changes.
 */
static int link_bytes(xcp__qcow2 *q, const uint8_t *h, size_t hlen,
                      const char *backing_file, const char *fmt,
                      uint8_t *area, size_t *alen, uint8_t hdr[12],
                      char *err, size_t errlen)
{
    size_t pos = q->header_length, apos = 0, flen = strlen(fmt), blen = 0;
    uint64_t ext_end = be64(h + H_BACKING_OFFSET) ? be64(h + H_BACKING_OFFSET)
                                                  : hlen;
    struct ext x = { 0, 0, 0 };
    int ret;

    while ((ret = xcp__qcow2_ext_next(q->path, h, min64(ext_end, hlen), &pos,
                                      &x, err, errlen)) > 0) {
        if (x.type == EXT_BACKING_FORMAT)
            continue;
        memcpy(area + apos, h + x.data - 8, 8 + x.len);
        apos += 8 + div_up(x.len, 8) * 8;
    }
    if (ret < 0)
        return ret;
    if (backing_file) {
        blen = strlen(backing_file);
        put32(area + apos, EXT_BACKING_FORMAT);
        put32(area + apos + 4, (uint32_t)flen);
        memcpy(area + apos + 8, fmt, flen);
        apos += 8 + div_up(flen, 8) * 8;
    }
    apos += 8;                  /* end marker */
    if (q->header_length + apos + blen > q->cluster_size)
        return fail(err, errlen, -ENAMETOOLONG,
                    "%s: backing file name does not fit in the first cluster",
                    q->path);
    memset(hdr, 0, 12);
    if (backing_file) {
        memcpy(area + apos, backing_file, blen);
        put64(hdr, q->header_length + apos);
        put32(hdr + 8, (uint32_t)blen);
    }
    *alen = apos + blen;
    return 0;
}

/* Check a backing name and format before they are stored. */
static int link_ok(xcp__qcow2 *q, const char *backing_file, const char *fmt,
                   char *err, size_t errlen)
{
    size_t blen = backing_file ? strlen(backing_file) : 1;

    if (q->raw)
        return fail(err, errlen, -ENOTSUP,
                    "%s: raw images have no backing file", q->path);
    if (blen == 0 || blen > XCP__QCOW2_BACKING_MAX ||
        !xcp__qcow2_format_ok(fmt))
        return fail(err, errlen, -EINVAL,
                    "%s: bad backing file name or format", q->path);
    return 0;
}

/* The first cluster of q (hlen bytes, malloc'd) into *h. */
static int read_first(xcp__qcow2 *q, uint8_t **h, size_t *hlen, char *err,
                      size_t errlen)
{
    *hlen = min64(q->cluster_size, q->file_size);
    *h = malloc(*hlen);
    if (!*h)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    if (pread_full(q->fd, *h, *hlen, 0) != (ssize_t)*hlen)
        return fail(err, errlen, -EIO, "%s: rereading the header failed",
                    q->path);
    return 0;
}

int xcp__qcow2_set_backing(xcp__qcow2 *q, const char *backing_file,
                           const char *backing_format, char *err,
                           size_t errlen)
{
    const char *fmt = backing_format ? backing_format : "qcow2";
    uint8_t *h = NULL, *area = NULL, hdr[12];
    size_t hlen, alen;
    xcp__qcow2 *below = NULL;
    int ret;

    ret = xcp__qcow2_check_writable(q, err, errlen);
    if (ret == 0)
        ret = link_ok(q, backing_file, fmt, err, errlen);
    if (ret < 0)
        return ret;
    if (backing_file && !(q->flags & XCP__QCOW2_NO_BACKING)) {
        ret = xcp__qcow2_open_chain(&below, q, backing_file, fmt, err,
                                    errlen);
        if (ret < 0)
            return ret;
    }
    area = calloc(1, q->cluster_size);
    ret = area ? read_first(q, &h, &hlen, err, errlen)
               : fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    if (ret == 0)
        ret = link_bytes(q, h, hlen, backing_file, fmt, area, &alen, hdr,
                         err, errlen);
    if (ret == 0)
        ret = qwrite(q, area, alen, q->header_length, "header extensions",
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
        memcpy(q->backing, backing_file, strlen(backing_file));
        memcpy(q->backing_fmt, fmt, strlen(fmt));
    }
out:
    xcp__qcow2_close(below);
    free(h);
    free(area);
    return ret;
}

/* Write the link bytes into path through a descriptor of its own, and
 * sync them.  The name lies where the old one did when both are as long
 * (the SR's names are): the first write is then the whole change. */
static int write_link(const char *path, uint64_t at, const uint8_t *area,
                      size_t alen, const uint8_t hdr[12], char *err,
                      size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY), ret;

    if (fd < 0)
        return fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
    ret = pwrite_full(fd, area, alen, at);
    if (ret == 0)
        ret = pwrite_full(fd, hdr, 12, H_BACKING_OFFSET);
    if (ret == 0 && fdatasync(fd) < 0)
        ret = -errno;
    close(fd);
    return ret < 0 ? fail(err, errlen, ret, "%s: writing the backing link: "
                          "%s", path, strerror(-ret))
                   : 0;
}

int xcp__qcow2_relink(const char *path, const char *backing_file,
                      const char *backing_format, char *err, size_t errlen)
{
    const char *fmt = backing_format ? backing_format : "qcow2";
    uint8_t *h = NULL, *area = NULL, hdr[12];
    xcp__qcow2 *q = NULL;
    size_t hlen, alen;
    int ret;

    /* Read-only: no refcount table, no repair, no dirty bit. */
    ret = xcp__qcow2_open(&q, path, "qcow2",
                          XCP__QCOW2_RDONLY | XCP__QCOW2_NO_BACKING, err,
                          errlen);
    if (ret < 0)
        return ret;
    ret = backing_file ? link_ok(q, backing_file, fmt, err, errlen)
                       : fail(err, errlen, -EINVAL,
                              "%s: relinking needs a backing file", path);
    if (ret == 0 && !q->has_backing)
        ret = fail(err, errlen, -EINVAL, "%s: has no backing file to "
                   "relink", path);
    area = calloc(1, q->cluster_size);
    if (ret == 0)
        ret = area ? read_first(q, &h, &hlen, err, errlen)
                   : fail(err, errlen, -ENOMEM, "%s: out of memory", path);
    if (ret == 0)
        ret = link_bytes(q, h, hlen, backing_file, fmt, area, &alen, hdr,
                         err, errlen);
    if (ret == 0)
        ret = write_link(path, q->header_length, area, alen, hdr, err,
                         errlen);
    xcp__qcow2_close(q);
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
        ret = xcp__qcow2_chain_extent(src, off, src->size - off, &data, &len,
                                      err,
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
            ret = xcp__qcow2_read_at(src, pos, buf, n, err, errlen);
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
                ret = xcp__qcow2_write_at(dst, pos + i, buf + i, run, err,
                                          errlen);
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
    return xcp__qcow2_commit_progress(child, parent, NULL, err, errlen);
}

/* Bytes of a data extent copied between two progress reports. */
#define COMMIT_CHUNK (8u << 20)

int xcp__qcow2_commit_progress(xcp__qcow2 *child, xcp__qcow2 *parent,
                               const xcp__progress *p, char *err,
                               size_t errlen)
{
    uint64_t off = 0, pos, n;
    struct extent e;
    int ret;

    ret = xcp__qcow2_check_writable(parent, err, errlen);
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
    while (ret == 0 && off < child->size) {
        ret = xcp__qcow2_map_extent(child, off, child->size - off, &e, err,
                                    errlen);
        if (ret == 0 && e.kind == K_COMPRESSED)
            ret = fail(err, errlen, -ENOTSUP,
                       "%s: compressed cluster at %llu", child->path,
                       (unsigned long long)off);
        if (ret == 0 && e.kind == K_ZERO)
            ret = xcp__qcow2_write_at(parent, off, NULL, e.len, err, errlen);
        /* Data goes file to file (its clusters are contiguous in the
         * child: map_extent says so), never through user memory. */
        for (pos = 0; ret == 0 && e.kind == K_DATA && pos < e.len;
             pos += n) {
            n = min64(e.len - pos, COMMIT_CHUNK);
            ret = xcp__qcow2_write_from(parent, off + pos, child->fd,
                                        e.host + pos, n, err, errlen);
            /* The disk writes each chunk while the next is copied, so
             * the final flush has little left to wait for (a hint: the
             * flush is what makes it durable). */
            if (ret == 0)
                sync_file_range(parent->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
            if (ret == 0)
                ret = xcp__progress_at(p, off + pos + n, child->size);
        }
        off += e.len;
        if (ret == 0 && e.kind != K_DATA)
            ret = xcp__progress_at(p, off, child->size);
    }
    if (ret == 0)
        ret = xcp__qcow2_flush(parent, err, errlen);
    return ret;
}
