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
#include "fuzz_image_files.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    const char *ro_path, *rw_path;
    uint64_t vsize;

    fuzz_image_files("qcow2", data, size, &ro_path, &rw_path);

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
