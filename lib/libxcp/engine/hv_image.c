/*
 * engine/hv_image.c - the image I/O the library lends hypervisor drivers
 * (xcp_hv_image_ops, xcp/sys/hv.h): the image layer (sr/image.h) behind
 * the driver interface's plain types, so that a driver whose back ends
 * serve disks from image files (the sim) reads and writes them as the
 * library does without hv/ ever including or linking sr/.
 */
#include "engine.h"
#include "../sr/image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

struct xcp_hv_image {
    xcp__image *im;
};

/* The image layer's one-line message into err, with code. */
static int fail(xcp_hv_error *err, int code, const char *msg)
{
    return xcp__hv_error_set(err, code, "%s", msg);
}

static int img_open(xcp_hv_image **out, const char *path, const char *format,
                    bool readonly, xcp_hv_error *err)
{
    char msg[XCP_HV_ERROR_MSG_MAX];
    xcp_hv_image *h = calloc(1, sizeof(*h));
    int rc;

    *out = NULL;
    if (!h)
        return xcp__hv_error_set(err, -ENOMEM, "image %s: out of memory",
                                 path);
    rc = xcp__image_open(&h->im, path, format ? format : "raw",
                         readonly ? XCP__IMAGE_RDONLY : 0, msg, sizeof(msg));
    if (rc < 0) {
        free(h);
        return fail(err, rc, msg);
    }
    *out = h;
    return 0;
}

static int img_read(xcp_hv_image *h, uint64_t offset, void *buf, size_t len,
                    xcp_hv_error *err)
{
    char msg[XCP_HV_ERROR_MSG_MAX];
    int rc = xcp__image_read(h->im, offset, buf, len, msg, sizeof(msg));

    return rc < 0 ? fail(err, rc, msg) : 0;
}

static int img_write(xcp_hv_image *h, uint64_t offset, const void *buf,
                     size_t len, xcp_hv_error *err)
{
    char msg[XCP_HV_ERROR_MSG_MAX];
    int rc = xcp__image_write(h->im, offset, buf, len, msg, sizeof(msg));

    return rc < 0 ? fail(err, rc, msg) : 0;
}

static int img_flush(xcp_hv_image *h, xcp_hv_error *err)
{
    char msg[XCP_HV_ERROR_MSG_MAX];
    int rc = xcp__image_flush(h->im, msg, sizeof(msg));

    return rc < 0 ? fail(err, rc, msg) : 0;
}

static int img_close(xcp_hv_image *h, xcp_hv_error *err)
{
    int rc;

    if (!h)
        return 0;
    rc = xcp__image_close(h->im);
    free(h);
    return rc < 0 ? xcp__hv_error_set(err, rc, "image close: %s",
                                      strerror(-rc))
                  : 0;
}

static uint64_t img_size(const xcp_hv_image *h)
{
    return xcp__image_virtual_size(h->im);
}

static int img_resize(xcp_hv_image *h, uint64_t bytes, xcp_hv_error *err)
{
    char msg[XCP_HV_ERROR_MSG_MAX];
    int rc;

    if (bytes < xcp__image_virtual_size(h->im) || bytes % 512)
        return xcp__hv_error_set(err, -EINVAL, "image resize: %llu bytes "
                                 "is below %llu or no whole sectors",
                                 (unsigned long long)bytes,
                                 (unsigned long long)
                                     xcp__image_virtual_size(h->im));
    rc = xcp__image_resize(h->im, bytes, msg, sizeof(msg));
    return rc < 0 ? fail(err, rc, msg) : 0;
}

static int img_cbt(xcp_hv_image *h, bool on, xcp_hv_error *err)
{
    xcp__image_cbt fresh = {{0}, 0, NULL};
    char msg[XCP_HV_ERROR_MSG_MAX];
    int rc;

    if (!strcmp(xcp__image_format(h->im), "raw"))
        return xcp__hv_error_set(err, -ENOTSUP, "image cbt: raw images "
                                 "have no changed block tracking");
    rc = xcp__image_cbt_set(h->im, on ? &fresh : NULL, msg, sizeof(msg));
    return rc < 0 ? fail(err, rc, msg) : 0;
}

/* How much one step of img_stream copies at most. */
#define STREAM_CHUNK (1u << 20)

static int img_stream(xcp_hv_image *h, const char *backing,
                      xcp_hv_error *err)
{
    char msg[XCP_HV_ERROR_MSG_MAX];
    uint64_t size = xcp__image_virtual_size(h->im), off = 0, len, n;
    void *buf = malloc(STREAM_CHUNK);
    bool data;
    int rc = buf ? 0 : -ENOMEM;

    if (rc < 0)
        snprintf(msg, sizeof(msg), "image stream: out of memory");
    while (rc == 0 && off < size) {
        rc = xcp__image_extent(h->im, off, size - off, &data, &len, msg,
                               sizeof(msg));
        if (rc == 0 && !len)
            break;
        for (n = 0; rc == 0 && data && n < len; n += STREAM_CHUNK) {
            size_t l = (size_t)(len - n < STREAM_CHUNK ? len - n
                                                       : STREAM_CHUNK);
            rc = xcp__image_read(h->im, off + n, buf, l, msg, sizeof(msg));
            if (rc == 0)
                rc = xcp__image_write(h->im, off + n, buf, l, msg,
                                      sizeof(msg));
        }
        off += len;
    }
    free(buf);
    if (rc == 0)
        rc = xcp__image_flush(h->im, msg, sizeof(msg));
    if (rc == 0)
        rc = xcp__image_set_parent(h->im, backing && backing[0] ? backing
                                                                : NULL,
                                   msg, sizeof(msg));
    if (rc == 0)
        rc = xcp__image_flush(h->im, msg, sizeof(msg));
    return rc < 0 ? fail(err, rc, msg) : 0;
}

const xcp_hv_image_ops xcp__hv_image_ops = {
    .version = XCP_HV_IMAGE_OPS_VERSION,
    .open = img_open,
    .read = img_read,
    .write = img_write,
    .flush = img_flush,
    .close = img_close,
    .size = img_size,
    .resize = img_resize,
    .cbt = img_cbt,
    .stream = img_stream,
};
