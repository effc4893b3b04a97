/*
 * bench_disk.c - the driver of bench/bench_disk.sh (make bench-disk): the
 * file SR's snapshot and clone, and guest-like I/O through the image
 * layer (sr/image.h), timed in-process.  The script times the peers
 * (qemu-img create -b, qemu-io) on the same images and prints ratios.
 *
 *   bench_disk cow DIR FMT SIZE N    N snapshots then N clones of a VDI of
 *                                    SIZE bytes in a new file SR at DIR;
 *                                    prints "snapshot MS clone MS" (mean)
 *   bench_disk offsets SIZE N SEED   N 4 KiB-aligned offsets below SIZE
 *   bench_disk write PATH FMT OFFS   a 4 KiB write at each offset of the
 *                                    file OFFS, one flush at the end;
 *                                    prints seconds
 *   bench_disk read PATH FMT         read the image whole in 1 MiB
 *                                    chunks; prints seconds
 */
#define _GNU_SOURCE
#include <xcp/sys/sr.h>

#include "bench_clock.h"
#include "image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const xcp_sr_type xcp__sr_type_file;

#define SR_UUID "0be4c400-0000-4000-8000-0000000000d1"
#define BLOCK 4096

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_disk: %s: %s\n", what, why);
    exit(1);
}

static int cow(const char *dir, const char *fmt, uint64_t size, long n)
{
    const xcp_sr_ops *ops = xcp__sr_type_file.ops;
    xcp_sr_kv dc = {"location", dir};
    xcp_sr_target sr = {SR_UUID, &dc, 1, NULL};
    xcp_sr_vdi_create_params p = {1, NULL, size, fmt};
    xcp_sr_vdi_info v;
    xcp_sr_cow_result r;
    xcp_sr_error e;
    uint64_t phys;
    double t, ms[2];
    long i;
    int k;

    if (ops->sr_create(&sr, &phys, &e) || ops->vdi_create(&sr, &p, &v, &e))
        die("setup", e.reason);
    for (k = 0; k < 2; k++) {
        t = now();
        for (i = 0; i < n; i++) {
            /* A fresh VDI every 25: chains stay below XAPI's 30. */
            if ((k || i) && i % 25 == 0 && ops->vdi_create(&sr, &p, &v, &e))
                die("vdi", e.reason);
            if ((k ? ops->vdi_clone : ops->vdi_snapshot)(&sr, v.location, &r,
                                                         &e))
                die(k ? "clone" : "snapshot", e.reason);
        }
        ms[k] = (now() - t) * 1000 / (double)n;
    }
    printf("snapshot %.3f clone %.3f\n", ms[0], ms[1]);
    return 0;
}

static int offsets(uint64_t size, long n, unsigned seed)
{
    uint64_t x = seed | 1, blocks = size / BLOCK;
    long i;

    for (i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        printf("%llu\n", (unsigned long long)(x % blocks * BLOCK));
    }
    return 0;
}

static int write_at(const char *path, const char *fmt, const char *offs)
{
    char err[1024], line[64];
    uint8_t buf[BLOCK];
    xcp__image *im;
    unsigned long long off;
    FILE *f = fopen(offs, "r");
    double t;

    if (!f)
        die("offsets", offs);
    memset(buf, 0x5a, sizeof(buf));
    t = now();
    if (xcp__image_open(&im, path, fmt, 0, err, sizeof(err)))
        die("open", err);
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "%llu", &off) == 1 &&
            xcp__image_write(im, off, buf, sizeof(buf), err, sizeof(err)))
            die("write", err);
    if (xcp__image_flush(im, err, sizeof(err)))
        die("flush", err);
    xcp__image_close(im);
    printf("%.6f\n", now() - t);
    fclose(f);
    return 0;
}

static int read_all(const char *path, const char *fmt)
{
    char err[1024];
    uint8_t *buf = malloc(1 << 20);
    xcp__image *im;
    uint64_t off, size;
    double t = now();

    if (!buf || xcp__image_open(&im, path, fmt, XCP__IMAGE_RDONLY, err,
                                sizeof(err)))
        die("open", buf ? err : "out of memory");
    size = xcp__image_virtual_size(im);
    for (off = 0; off < size; off += 1 << 20)
        if (xcp__image_read(im, off, buf, size - off < (1 << 20)
                                              ? (size_t)(size - off)
                                              : 1 << 20, err, sizeof(err)))
            die("read", err);
    xcp__image_close(im);
    printf("%.6f\n", now() - t);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "cow"))
        return cow(argv[2], argv[3], strtoull(argv[4], NULL, 0),
                   atol(argv[5]));
    if (argc == 5 && !strcmp(argv[1], "offsets"))
        return offsets(strtoull(argv[2], NULL, 0), atol(argv[3]),
                       (unsigned)atol(argv[4]));
    if (argc == 5 && !strcmp(argv[1], "write"))
        return write_at(argv[2], argv[3], argv[4]);
    if (argc == 4 && !strcmp(argv[1], "read"))
        return read_all(argv[2], argv[3]);
    die("usage", "cow DIR FMT SIZE N | offsets SIZE N SEED | "
                 "write PATH FMT OFFS | read PATH FMT");
    return 1;
}
