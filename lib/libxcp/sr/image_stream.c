/*
 * image_stream.c - VDI streams over the image layer: a stream is an open
 * image.h handle, of any format; extents come from its allocation,
 * through the chain (xcp__image_extent), merged into maximal ranges.
 */
#include "image_stream.h"
#include "image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* Writeback of what a stream wrote starts every this many bytes, so
 * that the flush at its end (an import's) does not wait for it all. */
#define WRITEBACK_EVERY ((uint64_t)16 << 20)

struct xcp_sr_stream {
    xcp__image *q;
    uint64_t unkicked;          /* bytes written since writeback started */
};

/* A failure of the image library on a VDI, its message as is; a full
 * file system is the SR's being full (SR_FULL), not an I/O error. */
static int io_fail(xcp_sr_error *err, int code, const char *msg)
{
    if (err) {
        err->code = code;
        err->kind = code == -ENOSPC || code == -EDQUOT ? XCP_SR_ERR_FULL
                                                      : XCP_SR_ERR_VDI_IO;
        snprintf(err->reason, sizeof(err->reason), "%s", msg);
    }
    return code;
}

int xcp__image_stream_open(const char *path, const char *format,
                           unsigned int flags, xcp_sr_stream **out,
                           uint64_t *virtual_size, xcp_sr_error *err)
{
    char msg[XCP_SR_REASON_MAX];
    xcp_sr_stream *s;
    int ret;

    *out = NULL;
    if (!(s = calloc(1, sizeof(*s))))
        return io_fail(err, -ENOMEM, "out of memory");
    ret = xcp__image_open(&s->q, path, format,
                          flags & XCP_SR_STREAM_WRITE ? 0 : XCP__IMAGE_RDONLY,
                          msg, sizeof(msg));
    if (ret < 0) {
        free(s);
        return io_fail(err, ret, msg);
    }
    *virtual_size = xcp__image_virtual_size(s->q);
    *out = s;
    return 0;
}

int xcp__image_stream_read(xcp_sr_stream *s, uint64_t offset, void *buf,
                           size_t n, xcp_sr_error *err)
{
    char msg[XCP_SR_REASON_MAX];
    int ret = xcp__image_read(s->q, offset, buf, n, msg, sizeof(msg));

    return ret < 0 ? io_fail(err, ret, msg) : 0;
}

int xcp__image_stream_write(xcp_sr_stream *s, uint64_t offset,
                            const void *buf, size_t n, xcp_sr_error *err)
{
    char msg[XCP_SR_REASON_MAX];
    int ret = xcp__image_write(s->q, offset, buf, n, msg, sizeof(msg));

    if (ret < 0)
        return io_fail(err, ret, msg);
    s->unkicked += n;
    if (s->unkicked >= WRITEBACK_EVERY) {
        s->unkicked = 0;
        xcp__image_start_writeback(s->q);
    }
    return 0;
}

int xcp__image_stream_extents(xcp_sr_stream *s, uint64_t offset,
                              uint64_t length, xcp_sr_extent_cb cb,
                              void *ctx, xcp_sr_error *err)
{
    char msg[XCP_SR_REASON_MAX];
    uint64_t start = 0, run = 0, len;
    bool data;
    int ret;

    while (length) {
        ret = xcp__image_extent(s->q, offset, length, &data, &len, msg,
                                sizeof(msg));
        if (ret < 0)
            return io_fail(err, ret, msg);
        if (data && run && start + run == offset) {
            run += len;
        } else if (data) {
            if (run && (ret = cb(ctx, start, run)) != 0)
                return ret;
            start = offset;
            run = len;
        }
        offset += len;
        length -= len;
    }
    return run ? cb(ctx, start, run) : 0;
}

int xcp__image_stream_map(xcp_sr_stream *s, uint64_t offset,
                          uint64_t length, int *fd, uint64_t *pos,
                          uint64_t *len, xcp_sr_error *err)
{
    char msg[XCP_SR_REASON_MAX];
    int ret = xcp__image_map(s->q, offset, length, fd, pos, len, msg,
                             sizeof(msg));

    return ret < 0 ? io_fail(err, ret, msg) : 0;
}

int xcp__image_stream_flush(xcp_sr_stream *s, xcp_sr_error *err)
{
    char msg[XCP_SR_REASON_MAX];
    int ret = xcp__image_flush(s->q, msg, sizeof(msg));

    return ret < 0 ? io_fail(err, ret, msg) : 0;
}

int xcp__image_stream_close(xcp_sr_stream *s, xcp_sr_error *err)
{
    int ret;

    if (!s)
        return 0;
    ret = xcp__image_close(s->q);
    free(s);
    return ret < 0 ? io_fail(err, ret, "cannot flush the VDI") : 0;
}
