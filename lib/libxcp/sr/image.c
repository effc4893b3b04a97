/*
 * image.c - the format-neutral image layer (image.h): a table of
 * operations per format over the qcow2 library (qcow2 and raw) and the
 * VHD library, and the copy between formats, which goes extent by
 * extent so that what reads as zeros is never written.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "image_int.h"
#include "image_io.h"
#include "qcow2.h"
#include "vhd.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bytes moved at a time by a copy between formats. */
#define COPY_CHUNK (1u << 20)

/* The calls both libraries make alike, one wrapper each per library. */
#define COMMON_WRAPPERS(lib, T)                                             \
    static int lib##_close_w(void *h) { return xcp__##lib##_close(h); }     \
    static int lib##_flush_w(void *h, char *err, size_t errlen)             \
    {                                                                       \
        return xcp__##lib##_flush(h, err, errlen);                          \
    }                                                                       \
    static uint64_t lib##_size_w(const void *h)                             \
    {                                                                       \
        return xcp__##lib##_virtual_size((const T *)h);                     \
    }                                                                       \
    static int lib##_read_w(void *h, uint64_t off, void *buf, size_t len,   \
                            char *err, size_t errlen)                       \
    {                                                                       \
        return xcp__##lib##_read(h, off, buf, len, err, errlen);            \
    }                                                                       \
    static int lib##_write_w(void *h, uint64_t off, const void *buf,        \
                             size_t len, char *err, size_t errlen)          \
    {                                                                       \
        return xcp__##lib##_write(h, off, buf, len, err, errlen);           \
    }                                                                       \
    static int lib##_extent_w(void *h, uint64_t off, uint64_t max,          \
                              bool *data, uint64_t *len, char *err,         \
                              size_t errlen)                                \
    {                                                                       \
        return xcp__##lib##_extent(h, off, max, data, len, err, errlen);    \
    }                                                                       \
    static int lib##_resize_w(void *h, uint64_t size, char *err,            \
                              size_t errlen)                                \
    {                                                                       \
        return xcp__##lib##_resize(h, size, err, errlen);                   \
    }                                                                       \
    static int lib##_commit_w(void *c, void *p, const xcp__progress *pr,    \
                              char *err, size_t errlen)                     \
    {                                                                       \
        return xcp__##lib##_commit_progress(c, p, pr, err, errlen);         \
    }

COMMON_WRAPPERS(qcow2, xcp__qcow2)
COMMON_WRAPPERS(vhd, xcp__vhd)

/* ---- qcow2 and raw ------------------------------------------------------ */

static int qcow2_create_w(const char *path, const char *fmt, uint64_t size,
                          const char *parent, const char *ppath, char *err,
                          size_t errlen)
{
    xcp__qcow2_create_opts o = { 0 };
    xcp__qcow2_info pi;
    xcp__qcow2 *p;
    int ret;

    o.format = fmt;
    if (parent) {
        ret = xcp__qcow2_open(&p, ppath, "qcow2",
                              XCP__QCOW2_RDONLY | XCP__QCOW2_NO_BACKING, err,
                              errlen);
        if (ret == 0)
            ret = xcp__qcow2_get_info(p, &pi, err, errlen);
        xcp__qcow2_close(p);
        if (ret < 0)
            return prefix_err(err, errlen, ret, path);
        for (o.cluster_bits = 0; (1u << o.cluster_bits) < pi.cluster_size;
             o.cluster_bits++)
            ;
        o.backing_file = parent;
        if (!size)
            size = pi.virtual_size;
    }
    return xcp__qcow2_create(path, size, &o, err, errlen);
}

static int qcow2_open_w(void **h, const char *path, const char *fmt,
                        unsigned flags, char *err, size_t errlen)
{
    return xcp__qcow2_open((xcp__qcow2 **)h, path, fmt,
                           (flags & XCP__IMAGE_RDONLY ? XCP__QCOW2_RDONLY
                                                      : 0) |
                               (flags & XCP__IMAGE_NO_PARENT
                                    ? XCP__QCOW2_NO_BACKING : 0),
                           err, errlen);
}

static int qcow2_info_w(void *h, xcp__image_info *info, char *err,
                        size_t errlen)
{
    xcp__qcow2_info qi;
    int ret = xcp__qcow2_get_info(h, &qi, err, errlen);

    if (ret < 0)
        return ret;
    info->format = qi.format;
    info->virtual_size = qi.virtual_size;
    info->allocated_bytes = qi.allocated_bytes;
    info->has_parent = qi.has_backing;
    memcpy(info->parent, qi.backing_file, sizeof(info->parent));
    return 0;
}

static int qcow2_set_parent_w(void *h, const char *parent, const char *ppath,
                              char *err, size_t errlen)
{
    (void)ppath;                /* resolved by the library, as stored */
    return xcp__qcow2_set_backing(h, parent, NULL, err, errlen);
}

static int qcow2_relink_w(const char *path, const char *parent,
                          const char *ppath, char *err, size_t errlen)
{
    (void)ppath;                /* stored as named, as set_parent */
    return xcp__qcow2_relink(path, parent, NULL, err, errlen);
}

static int qcow2_copy_w(void *src, const char *dst, const char *fmt,
                        char *err, size_t errlen)
{
    xcp__qcow2_create_opts o = { 0 };

    o.format = fmt;
    return xcp__qcow2_copy(src, dst, &o, err, errlen);
}

/* ---- VHD ---------------------------------------------------------------- */

static int vhd_create_w(const char *path, const char *fmt, uint64_t size,
                        const char *parent, const char *ppath, char *err,
                        size_t errlen)
{
    xcp__vhd_create_opts o = { 0 };

    (void)fmt;
    o.parent = parent ? ppath : NULL;
    return xcp__vhd_create(path, size, &o, err, errlen);
}

static int vhd_open_w(void **h, const char *path, const char *fmt,
                      unsigned flags, char *err, size_t errlen)
{
    (void)fmt;
    return xcp__vhd_open((xcp__vhd **)h, path,
                         (flags & XCP__IMAGE_RDONLY ? XCP__VHD_RDONLY : 0) |
                             (flags & XCP__IMAGE_NO_PARENT ? XCP__VHD_NO_PARENT
                                                           : 0),
                         err, errlen);
}

static int vhd_info_w(void *h, xcp__image_info *info, char *err,
                      size_t errlen)
{
    xcp__vhd_info vi;
    int ret = xcp__vhd_get_info(h, &vi, err, errlen);

    if (ret < 0)
        return ret;
    info->format = vi.format;
    info->virtual_size = vi.virtual_size;
    info->allocated_bytes = vi.allocated_bytes;
    info->has_parent = vi.has_parent;
    memcpy(info->parent, vi.parent, sizeof(info->parent));
    return 0;
}

static int vhd_set_parent_w(void *h, const char *parent, const char *ppath,
                            char *err, size_t errlen)
{
    return xcp__vhd_set_parent(h, parent ? ppath : NULL, err, errlen);
}

static int vhd_relink_w(const char *path, const char *parent,
                        const char *ppath, char *err, size_t errlen)
{
    (void)parent;
    return xcp__vhd_relink(path, ppath, err, errlen);
}

static int vhd_copy_w(void *src, const char *dst, const char *fmt, char *err,
                      size_t errlen)
{
    (void)fmt;
    return xcp__vhd_copy(src, dst, NULL, err, errlen);
}

static int qcow2_own_extent_w(void *h, uint64_t off, uint64_t max,
                              bool *held, uint64_t *len, char *err,
                              size_t errlen)
{
    return xcp__qcow2_own_extent(h, off, max, held, len, err, errlen);
}

static int vhd_own_extent_w(void *h, uint64_t off, uint64_t max, bool *held,
                            uint64_t *len, char *err, size_t errlen)
{
    return xcp__vhd_held_extent(h, off, max, held, len, err, errlen);
}

static int qcow2_map_w(void *h, uint64_t off, uint64_t max, int *fd,
                       uint64_t *pos, uint64_t *len, char *err, size_t errlen)
{
    return xcp__qcow2_map(h, off, max, fd, pos, len, err, errlen);
}

static void qcow2_writeback_w(void *h)
{
    xcp__qcow2_start_writeback(h);
}

static int vhd_map_w(void *h, uint64_t off, uint64_t max, int *fd,
                     uint64_t *pos, uint64_t *len, char *err, size_t errlen)
{
    return xcp__vhd_map(h, off, max, fd, pos, len, err, errlen);
}

static void vhd_writeback_w(void *h)
{
    xcp__vhd_start_writeback(h);
}

static const struct fmt_ops formats[] = {
    { "qcow2", XCP__IMAGE_QCOW2_MAX_SIZE, qcow2_create_w, qcow2_open_w,
      qcow2_close_w, qcow2_flush_w, qcow2_info_w, qcow2_size_w,
      qcow2_read_w, qcow2_write_w, qcow2_extent_w, qcow2_resize_w,
      qcow2_set_parent_w, qcow2_relink_w, qcow2_copy_w, qcow2_commit_w,
      qcow2_own_extent_w, qcow2_map_w, qcow2_writeback_w },
    /* raw: the qcow2 library's plain files, without parents. */
    { "raw", INT64_MAX - 511, qcow2_create_w, qcow2_open_w, qcow2_close_w,
      qcow2_flush_w, qcow2_info_w, qcow2_size_w, qcow2_read_w,
      qcow2_write_w, qcow2_extent_w, qcow2_resize_w, NULL, NULL,
      qcow2_copy_w, NULL, qcow2_own_extent_w, qcow2_map_w,
      qcow2_writeback_w },
    { "vhd", XCP__VHD_MAX_SIZE, vhd_create_w, vhd_open_w, vhd_close_w,
      vhd_flush_w, vhd_info_w, vhd_size_w, vhd_read_w, vhd_write_w,
      vhd_extent_w, vhd_resize_w, vhd_set_parent_w, vhd_relink_w,
      vhd_copy_w, vhd_commit_w, vhd_own_extent_w, vhd_map_w,
      vhd_writeback_w },
};

static const struct fmt_ops *find(const char *fmt)
{
    size_t i;

    for (i = 0; fmt && i < sizeof(formats) / sizeof(formats[0]); i++)
        if (strcmp(formats[i].name, fmt) == 0)
            return &formats[i];
    return NULL;
}

static int unknown(const char *path, const char *fmt, char *err,
                   size_t errlen)
{
    return fail(err, errlen, -ENOTSUP, "%s: unknown image format '%.32s'",
                path, fmt ? fmt : "(none)");
}

/* -EFBIG unless size fits f (sizes are rounded up to 512 first). */
static int check_size(const struct fmt_ops *f, const char *path,
                      uint64_t size, char *err, size_t errlen)
{
    if (size <= f->max_size)
        return 0;
    return fail(err, errlen, -EFBIG,
                "%s: virtual size %llu is beyond the %s limit of %llu GiB "
                "(%llu bytes)", path, (unsigned long long)size, f->name,
                (unsigned long long)(f->max_size >> 30),
                (unsigned long long)f->max_size);
}

bool xcp__image_format_known(const char *fmt)
{
    return find(fmt) != NULL;
}

uint64_t xcp__image_max_size(const char *fmt)
{
    const struct fmt_ops *f = find(fmt);

    return f ? f->max_size : 0;
}

/* dir/name, or name itself when absolute. */
static int resolve(const char *dir, const char *name, char *out, size_t cap,
                   char *err, size_t errlen)
{
    int n = name[0] == '/' ? snprintf(out, cap, "%s", name)
                           : snprintf(out, cap, "%s/%s", dir, name);

    if (n < 0 || (size_t)n >= cap)
        return fail(err, errlen, -ENAMETOOLONG, "%s/%s: path too long", dir,
                    name);
    return 0;
}

/* The directory of path into dir (cap bytes). */
static void dir_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        snprintf(dir, cap, ".");
    else if (slash == path)
        snprintf(dir, cap, "/");
    else
        snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

int xcp__image_create(const char *path, const char *fmt,
                      uint64_t virtual_size, const char *parent,
                      char *err, size_t errlen)
{
    const struct fmt_ops *f = find(fmt);
    char dir[PATH_MAX], ppath[PATH_MAX];
    int ret;

    if (!f)
        return unknown(path, fmt, err, errlen);
    if (virtual_size > UINT64_MAX - 511)
        return check_size(f, path, virtual_size, err, errlen);
    if ((ret = check_size(f, path, (virtual_size + 511) & ~511ull, err,
                          errlen)) < 0)
        return ret;
    if (parent && !f->set_parent)
        return fail(err, errlen, -ENOTSUP, "%s: %s images have no parent",
                    path, f->name);
    dir_of(path, dir, sizeof(dir));
    if (parent && (ret = resolve(dir, parent, ppath, sizeof(ppath), err,
                                 errlen)) < 0)
        return ret;
    return f->create(path, f->name, virtual_size, parent, ppath, err,
                     errlen);
}

int xcp__image_open(xcp__image **out, const char *path, const char *fmt,
                    unsigned flags, char *err, size_t errlen)
{
    const struct fmt_ops *f = find(fmt);
    char dir[PATH_MAX];
    xcp__image *im;
    int ret;

    *out = NULL;
    if (!f)
        return unknown(path, fmt, err, errlen);
    dir_of(path, dir, sizeof(dir));
    if (!(im = calloc(1, sizeof(*im))) || !(im->dir = strdup(dir)) ||
        !(im->path = strdup(path))) {
        if (im)
            free(im->dir);
        free(im);
        return fail(err, errlen, -ENOMEM, "%s: out of memory", path);
    }
    im->ops = f;
    im->format = f->name;
    ret = f->open(&im->h, path, f->name, flags, err, errlen);
    if (ret == 0 && !(flags & XCP__IMAGE_RDONLY) &&
        (ret = xcp__image_cbt_open_log(im, err, errlen)) < 0)
        f->close(im->h);
    if (ret < 0) {
        free(im->path);
        free(im->dir);
        free(im);
        return ret;
    }
    *out = im;
    return 0;
}

int xcp__image_relink(const char *path, const char *fmt, const char *parent,
                      char *err, size_t errlen)
{
    const struct fmt_ops *f = find(fmt);
    char dir[PATH_MAX], ppath[PATH_MAX];
    int ret;

    if (!f)
        return unknown(path, fmt, err, errlen);
    if (!f->relink)
        return fail(err, errlen, -ENOTSUP, "%s: %s images have no parent",
                    path, f->name);
    dir_of(path, dir, sizeof(dir));
    if ((ret = resolve(dir, parent, ppath, sizeof(ppath), err, errlen)) < 0)
        return ret;
    return f->relink(path, parent, ppath, err, errlen);
}

int xcp__image_recover(const char *path, const char *fmt, char *err,
                       size_t errlen)
{
    xcp__image *im;
    int ret;

    /* Only qcow2 keeps such a mark; opening for writing repairs it. */
    if (!fmt || strcmp(fmt, "qcow2") != 0 || !xcp__qcow2_is_dirty(path))
        return 0;
    ret = xcp__image_open(&im, path, fmt, XCP__IMAGE_NO_PARENT, err, errlen);
    return ret < 0 ? ret : xcp__image_close(im);
}

int xcp__image_close(xcp__image *im)
{
    int ret;

    if (!im)
        return 0;
    xcp__image_cbt_close_log(im);
    ret = im->ops->close(im->h);
    free(im->path);
    free(im->dir);
    free(im);
    return ret;
}

int xcp__image_flush(xcp__image *im, char *err, size_t errlen)
{
    return im->ops->flush(im->h, err, errlen);
}

int xcp__image_get_info(xcp__image *im, xcp__image_info *info, char *err,
                        size_t errlen)
{
    size_t n = strlen(im->dir);
    int ret;

    memset(info, 0, sizeof(*info));
    ret = im->ops->info(im->h, info, err, errlen);
    if (ret < 0)
        return ret;
    /* A parent found in the image's own directory is named as stored. */
    if (strncmp(info->parent, im->dir, n) == 0 && info->parent[n] == '/' &&
        !strchr(info->parent + n + 1, '/'))
        memmove(info->parent, info->parent + n + 1,
                strlen(info->parent + n + 1) + 1);
    return 0;
}

uint64_t xcp__image_virtual_size(const xcp__image *im)
{
    return im->ops->size(im->h);
}

const char *xcp__image_format(const xcp__image *im)
{
    return im->format;
}

int xcp__image_read(xcp__image *im, uint64_t offset, void *buf, size_t len,
                    char *err, size_t errlen)
{
    return im->ops->read(im->h, offset, buf, len, err, errlen);
}

int xcp__image_write(xcp__image *im, uint64_t offset, const void *buf,
                     size_t len, char *err, size_t errlen)
{
    /* qcow2 marks its own bitmaps; a VHD's log is ours. */
    int ret = xcp__image_cbt_mark_log(im, offset, len, err, errlen);

    if (ret < 0)
        return ret;
    return im->ops->write(im->h, offset, buf, len, err, errlen);
}

int xcp__image_extent(xcp__image *im, uint64_t offset, uint64_t max,
                      bool *data, uint64_t *len, char *err, size_t errlen)
{
    return im->ops->extent(im->h, offset, max, data, len, err, errlen);
}

int xcp__image_map(xcp__image *im, uint64_t offset, uint64_t max, int *fd,
                   uint64_t *pos, uint64_t *len, char *err, size_t errlen)
{
    if (im->ops->map)
        return im->ops->map(im->h, offset, max, fd, pos, len, err, errlen);
    *fd = -1;
    *pos = 0;
    *len = max;
    return 0;
}

void xcp__image_start_writeback(xcp__image *im)
{
    if (im->ops->writeback)
        im->ops->writeback(im->h);
}

int xcp__image_own_extent(xcp__image *im, uint64_t offset, uint64_t max,
                          bool *held, uint64_t *len, char *err,
                          size_t errlen)
{
    return im->ops->own_extent(im->h, offset, max, held, len, err, errlen);
}

int xcp__image_resize(xcp__image *im, uint64_t new_size, char *err,
                      size_t errlen)
{
    int ret;

    if (new_size > UINT64_MAX - 511)
        return check_size(im->ops, im->path, new_size, err, errlen);
    ret = check_size(im->ops, im->path, (new_size + 511) & ~511ull, err,
                     errlen);
    return ret < 0 ? ret : im->ops->resize(im->h, new_size, err, errlen);
}

int xcp__image_set_parent(xcp__image *im, const char *parent, char *err,
                          size_t errlen)
{
    char ppath[PATH_MAX];
    int ret;

    if (!im->ops->set_parent)
        return fail(err, errlen, -ENOTSUP, "%s: %s images have no parent",
                    im->path, im->format);
    if (parent && (ret = resolve(im->dir, parent, ppath, sizeof(ppath), err,
                                 errlen)) < 0)
        return ret;
    return im->ops->set_parent(im->h, parent, parent ? ppath : NULL, err,
                               errlen);
}

/* Copy [off, off + len) of src, which holds data, into dst: chunk by
 * chunk, leaving out chunks that read as zeros. */
static int copy_range(xcp__image *src, xcp__image *dst, uint8_t *buf,
                      uint64_t off, uint64_t len, char *err, size_t errlen)
{
    size_t n;
    int ret;

    while (len) {
        n = (size_t)min64(len, COPY_CHUNK - off % COPY_CHUNK);
        if ((ret = xcp__image_read(src, off, buf, n, err, errlen)) < 0)
            return ret;
        if (!all_zero(buf, n) &&
            (ret = xcp__image_write(dst, off, buf, n, err, errlen)) < 0)
            return ret;
        off += n;
        len -= n;
    }
    return 0;
}

/* The copy between formats: create, then the data extents. */
static int copy_across(xcp__image *src, const char *dst_path,
                       const struct fmt_ops *f, char *err, size_t errlen)
{
    uint64_t size = xcp__image_virtual_size(src), off = 0, len;
    xcp__image *dst = NULL;
    uint8_t *buf = NULL;
    bool data;
    int ret;

    ret = xcp__image_create(dst_path, f->name, size, NULL, err, errlen);
    if (ret < 0)
        return ret;
    ret = xcp__image_open(&dst, dst_path, f->name, 0, err, errlen);
    if (ret == 0 && !(buf = malloc(COPY_CHUNK)))
        ret = fail(err, errlen, -ENOMEM, "%s: out of memory", dst_path);
    while (ret == 0 && off < size) {
        ret = xcp__image_extent(src, off, size - off, &data, &len, err,
                                errlen);
        if (ret == 0 && data)
            ret = copy_range(src, dst, buf, off, len, err, errlen);
        off += len;
    }
    free(buf);
    if (ret == 0)
        ret = xcp__image_flush(dst, err, errlen);
    xcp__image_close(dst);
    if (ret < 0)
        unlink(dst_path);
    return ret;
}

int xcp__image_copy(xcp__image *src, const char *dst_path,
                    const char *dst_fmt, char *err, size_t errlen)
{
    const struct fmt_ops *f = dst_fmt ? find(dst_fmt) : src->ops;
    int ret;

    if (!f)
        return unknown(dst_path, dst_fmt, err, errlen);
    ret = check_size(f, dst_path, xcp__image_virtual_size(src), err, errlen);
    if (ret < 0)
        return ret;
    if (f == src->ops)
        return f->copy(src->h, dst_path, f->name, err, errlen);
    return copy_across(src, dst_path, f, err, errlen);
}

int xcp__image_commit(xcp__image *child, xcp__image *parent, char *err,
                      size_t errlen)
{
    return xcp__image_commit_progress(child, parent, NULL, err, errlen);
}

int xcp__image_commit_progress(xcp__image *child, xcp__image *parent,
                               const xcp__progress *p, char *err,
                               size_t errlen)
{
    if (child->ops != parent->ops || !child->ops->commit)
        return fail(err, errlen, -ENOTSUP,
                    "%s: cannot commit a %s image into a %s one", child->path,
                    child->format, parent->format);
    return child->ops->commit(child->h, parent->h, p, err, errlen);
}
