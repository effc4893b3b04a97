/*
 * fuzz_qcow2_header.c - libFuzzer target: arbitrary bytes as a qcow2 image.
 *
 * Each input becomes the whole image file.  It is opened read-only
 * (header validation, extension walk, L1 load) and read at a few places
 * (L2 lookups, zero and data clusters), then opened read-write on a copy
 * and written to (refcount table and block parsing, allocation, L2 and
 * refcount block creation on hostile metadata).  Any crash, hang, leak
 * or sanitizer report is a bug; error returns are the expected outcome.
 *
 * The backing chain is never opened (XCP__QCOW2_NO_BACKING): names in a
 * fuzzed header would otherwise point anywhere on the machine.
 *
 * Build and run (seeds: any small qcow2 images, e.g. 512-byte clusters):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -Ilib/libxcp/sr tests/fuzz/fuzz_qcow2_header.c \
 *       lib/libxcp/sr/qcow2.c lib/libxcp/sr/qcow2_header.c \
 *       lib/libxcp/sr/qcow2_alloc.c lib/libxcp/sr/qcow2_chain.c \
 *       -o fuzz_qcow2_header
 *   ./fuzz_qcow2_header -max_len=65536 -rss_limit_mb=1024 corpus/
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* memfd_create */
#endif
#include "qcow2.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* In-memory files, made once per process and refilled per input. */
static int ro_fd = -1, rw_fd = -1;
static char ro_path[64], rw_path[64];

static void refill(int fd, const uint8_t *data, size_t size)
{
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
}

static void setup(void)
{
    ro_fd = memfd_create("fuzz-ro.qcow2", MFD_CLOEXEC);
    rw_fd = memfd_create("fuzz-rw.qcow2", MFD_CLOEXEC);
    if (ro_fd < 0 || rw_fd < 0)
        abort();
    snprintf(ro_path, sizeof(ro_path), "/proc/self/fd/%d", ro_fd);
    snprintf(rw_path, sizeof(rw_path), "/proc/self/fd/%d", rw_fd);
}

/* Read a little at the start, middle and end of the virtual disk. */
static void read_around(xcp__qcow2 *q, uint8_t *buf, size_t len, char *err,
                        size_t errlen)
{
    uint64_t size = xcp__qcow2_virtual_size(q);
    uint64_t at[3] = { 0, size / 2, size > len ? size - len : 0 };
    size_t i;

    for (i = 0; i < 3; i++)
        xcp__qcow2_read(q, at[i], buf, size < len ? size : len, err, errlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[256 * 1024];
    xcp__qcow2_info info;
    xcp__qcow2 *q = NULL;
    char err[1024];
    uint64_t vsize;

    if (ro_fd < 0)
        setup();
    refill(ro_fd, data, size);
    refill(rw_fd, data, size);

    if (xcp__qcow2_open(&q, ro_path, NULL,
                        XCP__QCOW2_RDONLY | XCP__QCOW2_NO_BACKING, err,
                        sizeof(err)) == 0) {
        xcp__qcow2_get_info(q, &info, err, sizeof(err));
        read_around(q, buf, sizeof(buf), err, sizeof(err));
        xcp__qcow2_close(q);
    }
    if (xcp__qcow2_open(&q, rw_path, NULL, XCP__QCOW2_NO_BACKING, err,
                        sizeof(err)) == 0) {
        vsize = xcp__qcow2_virtual_size(q);
        memset(buf, 0x5a, sizeof(buf));
        /* A partial cluster, a run of clusters, and the last sector. */
        xcp__qcow2_write(q, 0, buf, vsize < 700 ? vsize : 700, err,
                         sizeof(err));
        xcp__qcow2_write(q, vsize / 3, buf,
                         vsize - vsize / 3 < sizeof(buf)
                             ? vsize - vsize / 3 : sizeof(buf),
                         err, sizeof(err));
        if (vsize >= 512)
            xcp__qcow2_write(q, vsize - 512, buf, 512, err, sizeof(err));
        read_around(q, buf, 4096, err, sizeof(err));
        xcp__qcow2_close(q);
    }
    return 0;
}
