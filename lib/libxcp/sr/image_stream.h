/*
 * image_stream.h - VDI streams (include/xcp/sys/sr.h, version 3) over the
 * image layer (image.h): what an SR type whose VDIs are qcow2, VHD or raw
 * files puts in its stream slots, once it has found the file.
 */
#ifndef XCP_SR_IMAGE_STREAM_H
#define XCP_SR_IMAGE_STREAM_H

#include <xcp/sys/sr.h>

/* Open the image at path in format ("qcow2", "vhd" or "raw"), read-only unless
 * flags has XCP_SR_STREAM_WRITE; VDI_IO_ERROR with the library's message
 * when it cannot be opened. */
int xcp__image_stream_open(const char *path, const char *format,
                           unsigned int flags, xcp_sr_stream **out,
                           uint64_t *virtual_size, xcp_sr_error *err);

/* The stream slots, as sr.h describes them; failures are VDI_IO_ERROR
 * with the library's message. */
int xcp__image_stream_read(xcp_sr_stream *s, uint64_t offset, void *buf,
                           size_t n, xcp_sr_error *err);
int xcp__image_stream_write(xcp_sr_stream *s, uint64_t offset,
                            const void *buf, size_t n, xcp_sr_error *err);
int xcp__image_stream_extents(xcp_sr_stream *s, uint64_t offset,
                              uint64_t length, xcp_sr_extent_cb cb,
                              void *ctx, xcp_sr_error *err);
int xcp__image_stream_map(xcp_sr_stream *s, uint64_t offset,
                          uint64_t length, int *fd, uint64_t *pos,
                          uint64_t *len, xcp_sr_error *err);
int xcp__image_stream_flush(xcp_sr_stream *s, xcp_sr_error *err);
int xcp__image_stream_close(xcp_sr_stream *s, xcp_sr_error *err);

#endif
