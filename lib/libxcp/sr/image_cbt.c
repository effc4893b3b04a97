/*
 * image_cbt.c - changed block tracking over the image formats (image.h):
 * qcow2 persistent dirty bitmaps (qcow2_bitmap.c) and, for VHD, a log
 * file beside the image.  Converts between the formats' bit orders and
 * XAPI's (64 KiB blocks, most significant bit first).
 *
 * The VHD log, <name>.cbtlog:
 *   0   8 bytes  magic "XCPCBT01"
 *   8   8 bytes  blocks tracked (big-endian)
 *   16  36 bytes uuid of the previous epoch's snapshot, or zeros
 *   512 ...      the bitmap, XAPI's order
 * It is replaced whole by writing a temporary file and renaming it, and
 * marked in place (bits before data, fdatasync between).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "../core/core.h"
#include "image_int.h"
#include "image_io.h"
#include "qcow2.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_MAGIC "XCPCBT01"
#define LOG_HEADER 512u
#define LOG_PREV 16u
#define CBT_GRAN_BITS 16u        /* 64 KiB */
/* Longest bitmap name we make: "xcp-cbt:" and a uuid. */
#define NAME_MAX_LEN 64

struct xcp__cbt_log {
    int fd;
    uint64_t nblocks;
    uint8_t *bits;
};

static uint64_t blocks_of(uint64_t size)
{
    return div_up(size, XCP__CBT_BLOCK_SIZE);
}

static bool test_msb(const uint8_t *bits, uint64_t i)
{
    return bits[i / 8] & (0x80u >> (i % 8));
}

static void set_msb(uint8_t *bits, uint64_t i)
{
    bits[i / 8] |= (uint8_t)(0x80u >> (i % 8));
}

void xcp__image_cbt_dispose(xcp__image_cbt *c)
{
    if (c) {
        free(c->bits);
        c->bits = NULL;
    }
}

int xcp__image_cbt_log_path(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    size_t n = dot && (!slash || dot > slash) ? (size_t)(dot - path)
                                              : strlen(path);
    int w = snprintf(out, cap, "%.*s.cbtlog", (int)n, path);

    return w < 0 || (size_t)w >= cap ? -ENAMETOOLONG : 0;
}

/* ---- the VHD log ---------------------------------------------------- */

static int log_read(const char *path, bool *found, xcp__image_cbt *out,
                    char *err, size_t errlen)
{
    uint8_t h[LOG_HEADER];
    uint64_t n;
    ssize_t r;
    int fd, ret = 0;

    *found = false;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0
                               : fail(err, errlen, -errno, "%s: %s", path,
                                      strerror(errno));
    r = pread_full(fd, h, sizeof(h), 0);
    n = r == (ssize_t)sizeof(h) ? be64(h + 8) : 0;
    if (r != (ssize_t)sizeof(h) || memcmp(h, LOG_MAGIC, 8) != 0 ||
        n > (1ull << 40)) {
        ret = fail(err, errlen, -EBADMSG, "%s: not a CBT log", path);
        goto out;
    }
    *found = true;
    if (!out)
        goto out;
    memset(out, 0, sizeof(*out));
    memcpy(out->prev, h + LOG_PREV, 36);
    out->nblocks = n;
    out->bits = calloc(div_up(n, 8) + 1, 1);
    if (!out->bits) {
        ret = fail(err, errlen, -ENOMEM, "%s: out of memory", path);
        goto out;
    }
    r = pread_full(fd, out->bits, div_up(n, 8), LOG_HEADER);
    if (r < 0)
        ret = fail(err, errlen, (int)r, "%s: %s", path, strerror((int)-r));
out:
    close(fd);
    if (ret < 0 && out && *found)
        xcp__image_cbt_dispose(out);
    return ret;
}

static int fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');

    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 1,
             slash ? path : ".");
    return xcp__fsync_dir(dir);
}

/* Replace the log at path with in (nblocks blocks), atomically. */
static int log_write(const char *path, const xcp__image_cbt *in,
                     uint64_t nblocks, char *err, size_t errlen)
{
    char tmp[PATH_MAX];
    uint8_t h[LOG_HEADER] = { 0 }, *bits;
    size_t nb = div_up(nblocks, 8);
    int fd, ret;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return fail(err, errlen, -ENAMETOOLONG, "%s: path too long", path);
    bits = calloc(nb + 1, 1);
    if (!bits)
        return fail(err, errlen, -ENOMEM, "%s: out of memory", path);
    if (in->bits)
        memcpy(bits, in->bits, min64(nb, div_up(in->nblocks, 8)));
    memcpy(h, LOG_MAGIC, 8);
    put64(h + 8, nblocks);
    memcpy(h + LOG_PREV, in->prev, strnlen(in->prev, 36));
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ret = fd < 0 ? -errno : 0;
    if (ret == 0)
        ret = pwrite_full(fd, h, sizeof(h), 0);
    if (ret == 0)
        ret = pwrite_full(fd, bits, nb, LOG_HEADER);
    if (ret == 0 && fdatasync(fd) < 0)
        ret = -errno;
    if (fd >= 0)
        close(fd);
    if (ret == 0 && rename(tmp, path) < 0)
        ret = -errno;
    if (ret == 0)
        ret = fsync_parent(path);
    free(bits);
    if (ret < 0) {
        unlink(tmp);
        return fail(err, errlen, ret, "%s: writing the CBT log: %s", path,
                    strerror(-ret));
    }
    return 0;
}

int xcp__image_cbt_open_log(xcp__image *im, char *err, size_t errlen)
{
    char path[PATH_MAX];
    struct xcp__cbt_log *log;
    xcp__image_cbt c;
    bool found;
    int ret;

    if (strcmp(im->format, "vhd") != 0)
        return 0;
    if (xcp__image_cbt_log_path(im->path, path, sizeof(path)) < 0)
        return fail(err, errlen, -ENAMETOOLONG, "%s: path too long",
                    im->path);
    if ((ret = log_read(path, &found, &c, err, errlen)) < 0 || !found)
        return ret;
    log = calloc(1, sizeof(*log));
    if (log)
        log->fd = open(path, O_RDWR | O_CLOEXEC);
    if (!log || log->fd < 0) {
        ret = fail(err, errlen, log ? -errno : -ENOMEM, "%s: %s", path,
                   log ? strerror(errno) : "out of memory");
        free(log);
        xcp__image_cbt_dispose(&c);
        return ret;
    }
    log->nblocks = c.nblocks;
    log->bits = c.bits;
    im->log = log;
    return 0;
}

void xcp__image_cbt_close_log(xcp__image *im)
{
    if (!im->log)
        return;
    close(im->log->fd);
    free(im->log->bits);
    free(im->log);
    im->log = NULL;
}

/* Grow the open log to cover nblocks (after a resize). */
static int log_grow(struct xcp__cbt_log *log, uint64_t nblocks, char *err,
                    size_t errlen)
{
    uint8_t *bits, n[8];
    int ret;

    bits = realloc(log->bits, div_up(nblocks, 8) + 1);
    if (!bits)
        return fail(err, errlen, -ENOMEM, "CBT log: out of memory");
    memset(bits + div_up(log->nblocks, 8), 0,
           div_up(nblocks, 8) - div_up(log->nblocks, 8) + 1);
    log->bits = bits;
    put64(n, nblocks);
    ret = pwrite_full(log->fd, n, 8, 8);
    if (ret < 0)
        return fail(err, errlen, ret, "CBT log: %s", strerror(-ret));
    log->nblocks = nblocks;
    return 0;
}

int xcp__image_cbt_mark_log(xcp__image *im, uint64_t off, uint64_t len,
                            char *err, size_t errlen)
{
    struct xcp__cbt_log *log = im->log;
    uint64_t b, b0, b1, lo = UINT64_MAX, hi = 0;
    int ret;

    if (!log || !len)
        return 0;
    b0 = off / XCP__CBT_BLOCK_SIZE;
    b1 = (off + len - 1) / XCP__CBT_BLOCK_SIZE;
    if (b1 >= log->nblocks &&
        (ret = log_grow(log, b1 + 1, err, errlen)) < 0)
        return ret;
    for (b = b0; b <= b1; b++) {
        if (test_msb(log->bits, b))
            continue;
        set_msb(log->bits, b);
        lo = min64(lo, b / 8);
        hi = b / 8;
    }
    if (lo == UINT64_MAX)
        return 0;
    ret = pwrite_full(log->fd, log->bits + lo, hi - lo + 1, LOG_HEADER + lo);
    if (ret == 0 && fdatasync(log->fd) < 0)
        ret = -errno;
    if (ret < 0)
        return fail(err, errlen, ret, "%s: marking the CBT log: %s",
                    im->path, strerror(-ret));
    return 0;
}

/* ---- qcow2 ---------------------------------------------------------- */

/* qcow2 order (granule 8i + j in bit j) to XAPI's (bit 7 - j). */
static uint8_t rev8(uint8_t b)
{
    b = (uint8_t)((b & 0xf0) >> 4 | (b & 0x0f) << 4);
    b = (uint8_t)((b & 0xcc) >> 2 | (b & 0x33) << 2);
    return (uint8_t)((b & 0xaa) >> 1 | (b & 0x55) << 1);
}

static int qcow2_get(xcp__image *im, bool *on, xcp__image_cbt *out,
                     char *err, size_t errlen)
{
    char name[XCP__QCOW2_BACKING_MAX + 1];
    uint64_t ngran, g, b, first, last;
    unsigned gb;
    uint8_t *bits = NULL;
    bool enabled;
    int ret;

    ret = xcp__qcow2_bitmap_find(im->h, XCP__CBT_BITMAP, on, name,
                                 sizeof(name), &gb, &enabled,
                                 out ? &bits : NULL, &ngran, err, errlen);
    if (ret < 0 || !*on || !out)
        return ret;
    memset(out, 0, sizeof(*out));
    if (name[strlen(XCP__CBT_BITMAP)] == ':')
        snprintf(out->prev, sizeof(out->prev), "%.36s",
                 name + strlen(XCP__CBT_BITMAP) + 1);
    out->nblocks = blocks_of(xcp__image_virtual_size(im));
    out->bits = calloc(div_up(out->nblocks, 8) + 1, 1);
    if (!out->bits) {
        free(bits);
        return fail(err, errlen, -ENOMEM, "%s: out of memory", im->path);
    }
    /* Ours (64 KiB granules): the same bits, each byte reversed. */
    if (gb == CBT_GRAN_BITS) {
        for (b = 0; b < div_up(min64(ngran, out->nblocks), 8); b++)
            if (bits[b])
                out->bits[b] = rev8(bits[b]);
        free(bits);
        return 0;
    }
    /* Any other granularity: a set granule marks the blocks it overlaps. */
    for (g = 0; g < ngran; g++) {
        if (!bits[g / 8]) {
            g |= 7;
            continue;
        }
        if (!(bits[g / 8] & (1u << (g % 8))))
            continue;
        first = (g << gb) / XCP__CBT_BLOCK_SIZE;
        last = (((g + 1) << gb) - 1) / XCP__CBT_BLOCK_SIZE;
        for (b = first; b <= last && b < out->nblocks; b++)
            set_msb(out->bits, b);
    }
    free(bits);
    return 0;
}

static int qcow2_set(xcp__image *im, const xcp__image_cbt *in, char *err,
                     size_t errlen)
{
    char name[NAME_MAX_LEN + 1];
    uint64_t n = blocks_of(xcp__image_virtual_size(im)), b;
    uint8_t *bits = NULL;
    int ret;

    if (!in)
        return xcp__qcow2_bitmap_replace(im->h, XCP__CBT_BITMAP, NULL, 0,
                                         NULL, err, errlen);
    snprintf(name, sizeof(name), in->prev[0] ? "%s:%.36s" : "%s",
             XCP__CBT_BITMAP, in->prev);
    if (in->bits) {
        bits = calloc(div_up(n, 8) + 1, 1);
        if (!bits)
            return fail(err, errlen, -ENOMEM, "%s: out of memory",
                        im->path);
        for (b = 0; b < div_up(min64(n, in->nblocks), 8); b++)
            bits[b] = rev8(in->bits[b]);
        /* Nothing past the shorter of the two. */
        b = min64(n, in->nblocks);
        if (b % 8)
            bits[b / 8] &= (uint8_t)((1u << (b % 8)) - 1);
    }
    ret = xcp__qcow2_bitmap_replace(im->h, XCP__CBT_BITMAP, name,
                                    CBT_GRAN_BITS, bits, err, errlen);
    free(bits);
    return ret;
}

/* ---- the format-neutral calls ---------------------------------------- */

static bool is_qcow2(const xcp__image *im)
{
    return strcmp(im->format, "qcow2") == 0;
}

static bool is_vhd(const xcp__image *im)
{
    return strcmp(im->format, "vhd") == 0;
}

int xcp__image_cbt_get(xcp__image *im, bool *on, xcp__image_cbt *out,
                       char *err, size_t errlen)
{
    char path[PATH_MAX];

    *on = false;
    if (is_qcow2(im))
        return qcow2_get(im, on, out, err, errlen);
    if (!is_vhd(im))
        return 0;
    if (xcp__image_cbt_log_path(im->path, path, sizeof(path)) < 0)
        return fail(err, errlen, -ENAMETOOLONG, "%s: path too long",
                    im->path);
    return log_read(path, on, out, err, errlen);
}

int xcp__image_cbt_set(xcp__image *im, const xcp__image_cbt *in,
                       char *err, size_t errlen)
{
    char path[PATH_MAX];
    bool reopen = im->log != NULL;
    int ret;

    if (is_qcow2(im))
        return qcow2_set(im, in, err, errlen);
    if (!is_vhd(im))
        return fail(err, errlen, -ENOTSUP,
                    "%s: %s images have no changed block tracking",
                    im->path, im->format);
    if (xcp__image_cbt_log_path(im->path, path, sizeof(path)) < 0)
        return fail(err, errlen, -ENAMETOOLONG, "%s: path too long",
                    im->path);
    xcp__image_cbt_close_log(im);
    if (in)
        ret = log_write(path, in, blocks_of(xcp__image_virtual_size(im)),
                        err, errlen);
    else if (unlink(path) < 0 && errno != ENOENT)
        ret = fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
    else
        ret = 0;
    if (ret == 0 && (reopen || in))
        ret = xcp__image_cbt_open_log(im, err, errlen);
    return ret;
}

int xcp__image_cbt_carry(xcp__image *im, const xcp__image_cbt *c,
                         char *err, size_t errlen)
{
    return is_qcow2(im) ? xcp__image_cbt_set(im, c, err, errlen) : 0;
}

int xcp__image_cbt_merge(xcp__image *parent, xcp__image *child, char *err,
                         size_t errlen)
{
    xcp__image_cbt c;
    bool on;
    int ret;

    /* A VHD log is named after the image: the one beside child's name
     * stays with it when parent's file is renamed there. */
    if (!is_qcow2(parent) || !is_qcow2(child))
        return 0;
    ret = xcp__image_cbt_get(child, &on, &c, err, errlen);
    if (ret < 0)
        return ret;
    if (!on) {
        bool pon;
        ret = xcp__image_cbt_get(parent, &pon, NULL, err, errlen);
        return ret < 0 || !pon ? ret
                               : xcp__image_cbt_set(parent, NULL, err,
                                                    errlen);
    }
    ret = xcp__image_cbt_set(parent, &c, err, errlen);
    xcp__image_cbt_dispose(&c);
    return ret;
}
