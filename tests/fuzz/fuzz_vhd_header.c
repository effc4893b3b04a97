/*
 * fuzz_vhd_header.c - libFuzzer target: arbitrary bytes as a VHD image.
 *
 * Each input becomes the whole image file.  It is opened read-only
 * (footer and its copy, header, BAT, block and locator bounds) and read
 * and mapped at a few places (bitmaps, data), then opened read-write on a
 * copy and written to (block allocation after hostile metadata, torn
 * footer repair) and grown.  Any crash, hang, leak or sanitizer report is
 * a bug; error returns are the expected outcome.
 *
 * The parent chain is never opened (XCP__VHD_NO_PARENT): locators in a
 * fuzzed header would otherwise point anywhere on the machine.
 *
 * Build and run (seeds: small VHD images, e.g. from qemu-img create -f vpc):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -Ilib/libxcp/sr tests/fuzz/fuzz_vhd_header.c \
 *       lib/libxcp/sr/vhd.c lib/libxcp/sr/vhd_meta.c \
 *       lib/libxcp/sr/vhd_chain.c -o fuzz_vhd_header
 *   ./fuzz_vhd_header -max_len=65536 -rss_limit_mb=1024 corpus/
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* memfd_create */
#endif
#include "vhd.h"
#include "fuzz_image_files.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read and map a little at the start, middle and end of the disk. */
static void read_around(xcp__vhd *v, uint8_t *buf, size_t len, char *err,
                        size_t errlen)
{
    uint64_t size = xcp__vhd_virtual_size(v), n, elen;
    uint64_t at[3] = { 0, size / 2, size > len ? size - len : 0 };
    size_t i;
    bool data;

    n = size < len ? size : len;
    for (i = 0; i < 3; i++) {
        xcp__vhd_read(v, at[i], buf, n, err, errlen);
        if (n)
            xcp__vhd_extent(v, at[i], n, &data, &elen, err, errlen);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[256 * 1024];
    xcp__vhd_info info;
    xcp__vhd *v = NULL;
    char err[1024];
    const char *ro_path, *rw_path;
    uint64_t vsize;

    fuzz_image_files("vhd", data, size, &ro_path, &rw_path);

    if (xcp__vhd_open(&v, ro_path, XCP__VHD_RDONLY | XCP__VHD_NO_PARENT, err,
                      sizeof(err)) == 0) {
        xcp__vhd_get_info(v, &info, err, sizeof(err));
        read_around(v, buf, sizeof(buf), err, sizeof(err));
        xcp__vhd_close(v);
    }
    if (xcp__vhd_open(&v, rw_path, XCP__VHD_NO_PARENT, err,
                      sizeof(err)) == 0) {
        vsize = xcp__vhd_virtual_size(v);
        memset(buf, 0x5a, sizeof(buf));
        /* A partial sector, a run of sectors, and the last sector. */
        xcp__vhd_write(v, 0, buf, vsize < 700 ? vsize : 700, err,
                       sizeof(err));
        xcp__vhd_write(v, vsize / 3, buf,
                       vsize - vsize / 3 < sizeof(buf)
                           ? vsize - vsize / 3 : sizeof(buf),
                       err, sizeof(err));
        if (vsize >= 512)
            xcp__vhd_write(v, vsize - 512, buf, 512, err, sizeof(err));
        /* Growing a little: the BAT may grow over the footer. */
        xcp__vhd_resize(v, vsize + (4u << 20), err, sizeof(err));
        read_around(v, buf, 4096, err, sizeof(err));
        xcp__vhd_close(v);
    }
    return 0;
}
