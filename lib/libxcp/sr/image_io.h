/*
 * image_io.h - small helpers the image libraries (qcow2, vhd) share:
 * error messages into caller buffers, big-endian fields, and full
 * pread/pwrite loops.  Header-only (static inline).
 */
#ifndef XCP_SR_IMAGE_IO_H
#define XCP_SR_IMAGE_IO_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

__attribute__((format(printf, 4, 5)))
static inline int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Put "prefix: " in front of the message a callee left in err. */
static inline int prefix_err(char *err, size_t errlen, int code,
                             const char *prefix)
{
    char inner[768];

    if (!err || !errlen)
        return code;
    snprintf(inner, sizeof(inner), "%s", err);
    snprintf(err, errlen, "%s: %s", prefix, inner);
    return code;
}

static inline uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

static inline void put64(uint8_t *p, uint64_t v)
{
    put32(p, v >> 32);
    put32(p + 4, (uint32_t)v);
}

static inline uint64_t div_up(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

static inline uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static inline bool all_zero(const uint8_t *p, size_t len)
{
    return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

/* Returns the bytes read (short only at end of file) or -errno. */
static inline ssize_t pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    ssize_t r;

    while (done < len) {
        r = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

static inline int pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    ssize_t r;

    while (done < len) {
        r = pwrite(fd, (const uint8_t *)buf + done, len - done,
                   (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        done += (size_t)r;
    }
    return 0;
}

#endif
