/*
 * vhd_chain.c - VHD chains: re-parenting, copying an image (flattening
 * its chain) and committing a child into its parent.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* sync_file_range */
#endif
#include "vhd_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Unit of bulk copies (and at most one block, so that all-zero runs are
 * recognised block by block). */
#define COPY_CHUNK (2u << 20)

int xcp__vhd_set_parent(xcp__vhd *v, const char *parent_path, char *err,
                        size_t errlen)
{
    xcp__vhd *p = NULL;
    unsigned flags = XCP__VHD_RDONLY;
    int ret = xcp__vhd_check_writable(v, err, errlen);

    if (ret < 0)
        return ret;
    if (v->type == XCP__VHD_FIXED)
        return fail(err, errlen, -ENOTSUP,
                    "%s: a fixed disk cannot have a parent", v->path);
    if (parent_path) {
        if (!*parent_path || strlen(parent_path) > XCP__VHD_PARENT_MAX)
            return fail(err, errlen, -EINVAL, "%s: bad parent name",
                        v->path);
        if (v->flags & XCP__VHD_NO_PARENT)
            flags |= XCP__VHD_NO_PARENT;
        ret = xcp__vhd_open_image(&p, parent_path, flags, v->depth + 1, err,
                                  errlen);
        if (ret < 0)
            return prefix_err(err, errlen, ret, v->path);
    }
    ret = xcp__vhd_link_parent(v, p, parent_path, err, errlen);
    if (ret == 0)
        ret = xcp__vhd_write_header(v, err, errlen);
    if (ret == 0)
        ret = xcp__vhd_write_footer(v, v->footer_off, err, errlen);
    if (ret < 0) {
        xcp__vhd_close(p);
        return ret;
    }
    xcp__vhd_close(v->below);
    v->below = (v->flags & XCP__VHD_NO_PARENT) ? NULL : p;
    if (v->flags & XCP__VHD_NO_PARENT)
        xcp__vhd_close(p);
    v->has_parent = p != NULL;
    v->parent[0] = '\0';
    if (p)
        snprintf(v->parent, sizeof(v->parent), "%s", parent_path);
    return 0;
}

/* Copy the ranges of src that held(...) selects into dst, chunk by chunk,
 * skipping all-zero chunks when skip_zeros. */
typedef int (*extent_fn)(xcp__vhd *v, uint64_t off, uint64_t max,
                         bool *held, uint64_t *len, char *err, size_t errlen);

static int chain_held(xcp__vhd *v, uint64_t off, uint64_t max, bool *held,
                      uint64_t *len, char *err, size_t errlen)
{
    return xcp__vhd_extent(v, off, max, held, len, err, errlen);
}

static int copy_ranges(xcp__vhd *src, xcp__vhd *dst, extent_fn held_fn,
                       bool skip_zeros, const xcp__progress *p, char *err,
                       size_t errlen)
{
    uint64_t off = 0, len, n;
    uint8_t *buf = malloc(COPY_CHUNK);
    bool held;
    int ret = 0;

    if (!buf)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", src->path);
    while (off < src->size) {
        ret = held_fn(src, off, min64(src->size - off, COPY_CHUNK), &held,
                      &len, err, errlen);
        if (ret < 0)
            break;
        for (; held && len; off += n, len -= n) {
            n = min64(len, COPY_CHUNK - off % COPY_CHUNK);
            ret = xcp__vhd_read_at(src, off, buf, n, err, errlen);
            if (ret == 0 && !(skip_zeros && all_zero(buf, n)))
                ret = xcp__vhd_write_at(dst, off, buf, n, err, errlen);
            /* The disk writes each chunk while the next is copied (a
             * hint: the caller's flush makes it durable). */
            if (ret == 0)
                sync_file_range(dst->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
            if (ret < 0)
                goto out;
        }
        off += len;
        if ((ret = xcp__progress_at(p, off, src->size)) != 0)
            break;
    }
out:
    free(buf);
    return ret;
}

int xcp__vhd_copy(xcp__vhd *src, const char *dst_path,
                  const xcp__vhd_create_opts *opts, char *err,
                  size_t errlen)
{
    xcp__vhd_create_opts o = { 0 };
    xcp__vhd *dst = NULL;
    int ret;

    if (opts)
        o = *opts;
    if (o.parent)
        return fail(err, errlen, -EINVAL,
                    "%s: a full copy has no parent", dst_path);
    if (!o.block_size && src->block_size)
        o.block_size = src->block_size;
    ret = xcp__vhd_create(dst_path, src->size, &o, err, errlen);
    if (ret < 0)
        return ret;
    ret = xcp__vhd_open(&dst, dst_path, 0, err, errlen);
    if (ret == 0)
        ret = copy_ranges(src, dst, chain_held, true, NULL, err, errlen);
    if (ret == 0)
        ret = xcp__vhd_flush(dst, err, errlen);
    xcp__vhd_close(dst);
    if (ret < 0)
        unlink(dst_path);
    return ret;
}

int xcp__vhd_commit(xcp__vhd *child, xcp__vhd *parent, char *err,
                    size_t errlen)
{
    return xcp__vhd_commit_progress(child, parent, NULL, err, errlen);
}

int xcp__vhd_commit_progress(xcp__vhd *child, xcp__vhd *parent,
                             const xcp__progress *p, char *err,
                             size_t errlen)
{
    int ret = xcp__vhd_check_writable(parent, err, errlen);

    if (ret == 0 && parent->size < child->size)
        ret = xcp__vhd_resize(parent, child->size, err, errlen);
    if (ret == 0)
        ret = copy_ranges(child, parent, xcp__vhd_own_extent, false, p, err,
                          errlen);
    if (ret == 0)
        ret = xcp__vhd_flush(parent, err, errlen);
    return ret;
}
