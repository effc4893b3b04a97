/*
 * test_vdi_stream.c - the SR drivers' VDI streams (include/xcp/sys/sr.h,
 * version 3): write, read back and list extents through the file SR's
 * ops table, on qcow2 and raw VDIs, and the registry's check that a
 * version 3 table has every stream slot.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* nftw */
#endif
#include <criterion/criterion.h>

#include <xcp/sys/sr.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* From file.c and registry.c (no internal SR header yet). */
extern const xcp_sr_type xcp__sr_type_file;
int xcp__sr_type_check(const xcp_sr_type *t, char *err, size_t errlen);

#define MiB (1024ull * 1024)
#define SR_UUID "0b7c6a41-2f3e-4d5c-8b9a-7e6f5d4c3b2a"
#define MAX_EXT 16

static char dir[64];
static xcp_sr_kv dc[1];
static xcp_sr_target sr;
static const xcp_sr_ops *ops;
static xcp_sr_error e;

struct extents {
    size_t n;
    uint64_t off[MAX_EXT], len[MAX_EXT];
};

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    uint64_t size;

    snprintf(dir, sizeof(dir), "/tmp/xcp-stream-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    dc[0].key = "location";
    dc[0].value = dir;
    sr.sr_uuid = SR_UUID;
    sr.device_config = dc;
    sr.n_device_config = 1;
    ops = xcp__sr_type_file.ops;
    memset(&e, 0, sizeof(e));
    cr_assert_eq(ops->sr_create(&sr, &size, &e), 0, "sr_create: %s",
                 e.reason);
}

static void teardown(void)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static xcp_sr_vdi_info vdi_new(const char *format, uint64_t size)
{
    xcp_sr_vdi_create_params p = {
        .version = 1, .virtual_size = size, .format = format,
    };
    xcp_sr_vdi_info v;

    cr_assert_eq(ops->vdi_create(&sr, &p, &v, &e), 0, "vdi_create: %s",
                 e.reason);
    return v;
}

static xcp_sr_stream *open_stream(const char *location, unsigned flags,
                                  uint64_t want_size)
{
    xcp_sr_stream *s = NULL;
    uint64_t size = 0;

    cr_assert_eq(ops->vdi_stream_open(&sr, location, flags, &s, &size, &e),
                 0, "vdi_stream_open %s: %s", location, e.reason);
    cr_assert_not_null(s);
    cr_assert_eq(size, want_size);
    return s;
}

static int add_extent(void *ctx, uint64_t offset, uint64_t length)
{
    struct extents *x = ctx;

    cr_assert_lt(x->n, MAX_EXT);
    x->off[x->n] = offset;
    x->len[x->n] = length;
    x->n++;
    return 0;
}

static void fill(uint8_t *buf, size_t n, unsigned seed)
{
    size_t i;

    for (i = 0; i < n; i++)
        buf[i] = (uint8_t)(seed + i * 7 + (i >> 9));
}

/* Write two patterns far apart, read them back (and a hole as zeros) on
 * a fresh read-only handle, then list the extents: two, each covering
 * its pattern and far smaller than the gap between them. */
static void round_trip(const char *format)
{
    const uint64_t size = 8 * MiB, far = 5 * MiB + 512;
    xcp_sr_vdi_info v = vdi_new(format, size);
    static uint8_t a[8192], b[4096], got[8192];
    struct extents x = {0};
    xcp_sr_stream *s;

    fill(a, sizeof(a), 1);
    fill(b, sizeof(b), 99);
    s = open_stream(v.location, XCP_SR_STREAM_WRITE, size);
    cr_assert_eq(ops->stream_write(s, 0, a, sizeof(a), &e), 0, "%s",
                 e.reason);
    cr_assert_eq(ops->stream_write(s, far, b, sizeof(b), &e), 0, "%s",
                 e.reason);
    cr_assert_eq(ops->stream_flush(s, &e), 0, "%s", e.reason);
    cr_assert_eq(ops->stream_close(s, &e), 0, "%s", e.reason);

    s = open_stream(v.location, 0, size);
    cr_assert_eq(ops->stream_read(s, 0, got, sizeof(a), &e), 0);
    cr_assert_arr_eq(got, a, sizeof(a));
    cr_assert_eq(ops->stream_read(s, far, got, sizeof(b), &e), 0);
    cr_assert_arr_eq(got, b, sizeof(b));
    cr_assert_eq(ops->stream_read(s, 2 * MiB, got, sizeof(got), &e), 0);
    memset(a, 0, sizeof(a));
    cr_assert_arr_eq(got, a, sizeof(got));
    /* A read-only handle refuses writes with VDI_IO_ERROR. */
    cr_assert_lt(ops->stream_write(s, 0, b, sizeof(b), &e), 0);
    cr_assert_eq(e.kind, XCP_SR_ERR_VDI_IO);

    cr_assert_eq(ops->stream_extents(s, 0, size, add_extent, &x, &e), 0,
                 "%s", e.reason);
    cr_assert_eq(x.n, 2, "%s: %zu extents", format, x.n);
    cr_assert_eq(x.off[0], 0);
    cr_assert_geq(x.len[0], sizeof(a));
    cr_assert_leq(x.len[0], 1 * MiB);
    cr_assert_leq(x.off[1], far);
    cr_assert_geq(x.off[1] + x.len[1], far + sizeof(b));
    cr_assert_gt(x.off[1], 1 * MiB);
    cr_assert_leq(x.off[1] + x.len[1], size);
    /* A window inside the gap lists nothing. */
    x.n = 0;
    cr_assert_eq(ops->stream_extents(s, 2 * MiB, MiB, add_extent, &x, &e),
                 0);
    cr_assert_eq(x.n, 0);
    cr_assert_eq(ops->stream_close(s, &e), 0);
}

TestSuite(vdi_stream, .init = setup, .fini = teardown);

Test(vdi_stream, qcow2_round_trip_and_extents)
{
    round_trip("qcow2");
}

Test(vdi_stream, raw_round_trip_and_extents)
{
    round_trip("raw");
}

/* A fresh image is all hole: no extent at all. */
Test(vdi_stream, sparse_image_lists_no_extent)
{
    const char *fmts[] = { "qcow2", "raw" };
    size_t i;

    for (i = 0; i < 2; i++) {
        xcp_sr_vdi_info v = vdi_new(fmts[i], 4 * MiB);
        xcp_sr_stream *s = open_stream(v.location, 0, 4 * MiB);
        struct extents x = {0};

        cr_assert_eq(ops->stream_extents(s, 0, 4 * MiB, add_extent, &x, &e),
                     0, "%s", e.reason);
        cr_assert_eq(x.n, 0, "%s: %zu extents", fmts[i], x.n);
        ops->stream_close(s, NULL);
    }
}

/* After a snapshot the VDI is an empty leaf on a parent holding the
 * data: its stream reads and lists that data through the chain, and what
 * is written into the leaf joins the listing. */
Test(vdi_stream, extents_through_the_backing_chain)
{
    xcp_sr_vdi_info v = vdi_new("qcow2", 4 * MiB);
    static uint8_t a[4096], got[4096];
    struct extents x = {0};
    xcp_sr_cow_result cow;
    xcp_sr_stream *s;

    fill(a, sizeof(a), 5);
    s = open_stream(v.location, XCP_SR_STREAM_WRITE, 4 * MiB);
    cr_assert_eq(ops->stream_write(s, MiB, a, sizeof(a), &e), 0);
    cr_assert_eq(ops->stream_close(s, &e), 0);
    cr_assert_eq(ops->vdi_snapshot(&sr, v.location, &cow, &e), 0, "%s",
                 e.reason);
    cr_assert_str_eq(cow.source.location, v.location);
    s = open_stream(v.location, XCP_SR_STREAM_WRITE, 4 * MiB);
    cr_assert_eq(ops->stream_read(s, MiB, got, sizeof(got), &e), 0);
    cr_assert_arr_eq(got, a, sizeof(a));
    cr_assert_eq(ops->stream_write(s, 3 * MiB, a, sizeof(a), &e), 0);
    cr_assert_eq(ops->stream_extents(s, 0, 4 * MiB, add_extent, &x, &e), 0,
                 "%s", e.reason);
    cr_assert_eq(x.n, 2, "%zu extents", x.n);
    cr_assert_leq(x.off[0], MiB);
    cr_assert_geq(x.off[0] + x.len[0], MiB + sizeof(a));
    cr_assert_leq(x.off[1], 3 * MiB);
    cr_assert_geq(x.off[1] + x.len[1], 3 * MiB + sizeof(a));
    cr_assert_gt(x.off[1], x.off[0] + x.len[0]);
    cr_assert_eq(ops->stream_close(s, &e), 0);
}

/* A callback's nonzero return stops the listing and is returned. */
static int stop_at_first(void *ctx, uint64_t offset, uint64_t length)
{
    (void)offset;
    (void)length;
    ++*(int *)ctx;
    return 7;
}

Test(vdi_stream, extent_callback_stops_the_listing)
{
    xcp_sr_vdi_info v = vdi_new("qcow2", 4 * MiB);
    static uint8_t a[512] = {1};
    xcp_sr_stream *s = open_stream(v.location, XCP_SR_STREAM_WRITE, 4 * MiB);
    int calls = 0;

    cr_assert_eq(ops->stream_write(s, 0, a, sizeof(a), &e), 0);
    cr_assert_eq(ops->stream_write(s, 2 * MiB, a, sizeof(a), &e), 0);
    cr_assert_eq(ops->stream_extents(s, 0, 4 * MiB, stop_at_first, &calls,
                                     &e), 7);
    cr_assert_eq(calls, 1);
    ops->stream_close(s, NULL);
}

Test(vdi_stream, missing_vdi_fails_with_vdi_missing)
{
    xcp_sr_stream *s = (xcp_sr_stream *)&s;
    uint64_t size;

    cr_assert_lt(ops->vdi_stream_open(&sr, "6a1c0f9e-1d2c-4b3a-9f8e-"
                                      "7d6c5b4a3f2e.qcow2", 0, &s, &size,
                                      &e), 0);
    cr_assert_eq(e.kind, XCP_SR_ERR_VDI_MISSING);
    cr_assert_null(s);
}

/* Write past the virtual size: refused, nothing written. */
Test(vdi_stream, write_beyond_size_fails)
{
    xcp_sr_vdi_info v = vdi_new("qcow2", MiB);
    xcp_sr_stream *s = open_stream(v.location, XCP_SR_STREAM_WRITE, MiB);
    uint8_t buf[1024] = {1};

    cr_assert_lt(ops->stream_write(s, MiB - 512, buf, sizeof(buf), &e), 0);
    cr_assert_eq(e.kind, XCP_SR_ERR_VDI_IO);
    ops->stream_close(s, NULL);
}

/* The registry refuses a version 3 table without its stream slots. */
Test(vdi_stream, registry_requires_stream_slots)
{
    xcp_sr_ops o = *xcp__sr_type_file.ops;
    xcp_sr_type t = xcp__sr_type_file;
    char msg[256];

    cr_assert_eq(xcp__sr_type_check(&t, msg, sizeof(msg)), 0, "%s", msg);
    o.stream_extents = NULL;
    t.ops = &o;
    cr_assert_lt(xcp__sr_type_check(&t, msg, sizeof(msg)), 0);
    cr_assert(strstr(msg, "stream"), "%s", msg);
}

/* ---- stream_map (version 9): where the bytes lie as they are ---------- */

/* Walk [0, size) of s by stream_map: every run named in a file reads
 * there (pread) as stream_read shows it; the others are read. Returns the
 * file runs' count, and the distinct descriptors into fds (at most 4). */
static size_t check_map(xcp_sr_stream *s, uint64_t size, int fds[4],
                        size_t *nfds)
{
    static uint8_t want[4 * 1024 * 1024], got[4 * 1024 * 1024];
    uint64_t off = 0, pos, len;
    size_t runs = 0, i;
    int fd;

    *nfds = 0;
    while (off < size) {
        fd = -2;
        cr_assert_eq(ops->stream_map(s, off, size - off, &fd, &pos, &len,
                                     &e), 0, "stream_map: %s", e.reason);
        cr_assert_geq(fd, -1);
        cr_assert_gt(len, 0);
        cr_assert_leq(len, size - off);
        if (len > sizeof(want))
            len = sizeof(want);
        cr_assert_eq(ops->stream_read(s, off, want, len, &e), 0);
        if (fd >= 0) {
            cr_assert_eq(pread(fd, got, len, (off_t)pos), (ssize_t)len,
                         "the file holds the run at %llu",
                         (unsigned long long)off);
            cr_assert_arr_eq(got, want, len, "run at %llu differs",
                             (unsigned long long)off);
            runs++;
            for (i = 0; i < *nfds && fds[i] != fd; i++)
                ;
            if (i == *nfds && *nfds < 4)
                fds[(*nfds)++] = fd;
        }
        off += len;
    }
    return runs;
}

static void map_round_trip(const char *format)
{
    const uint64_t size = 8 * MiB;
    xcp_sr_vdi_info v = vdi_new(format, size);
    static uint8_t a[3 * 65536 + 100];
    xcp_sr_stream *s;
    int fds[4];
    size_t n, runs;

    fill(a, sizeof(a), 3);
    s = open_stream(v.location, XCP_SR_STREAM_WRITE, size);
    cr_assert_eq(ops->stream_write(s, 100, a, sizeof(a), &e), 0);
    cr_assert_eq(ops->stream_write(s, 5 * MiB, a, sizeof(a), &e), 0);
    cr_assert_eq(ops->stream_close(s, &e), 0);
    s = open_stream(v.location, 0, size);
    cr_assert_not_null(ops->stream_map);
    runs = check_map(s, size, fds, &n);
    cr_assert_geq(runs, 2, "%s: %zu file runs", format, runs);
    cr_assert_eq(ops->stream_close(s, &e), 0);
}

Test(vdi_stream, qcow2_map_names_the_data_clusters)
{
    map_round_trip("qcow2");
}

Test(vdi_stream, raw_map_names_the_file)
{
    map_round_trip("raw");
}

Test(vdi_stream, vhd_map_names_the_data_sectors)
{
    map_round_trip("vhd");
}

/* After a snapshot, what the parent holds is named in the parent's file
 * and what the leaf wrote since in the leaf's: two descriptors. */
static void map_chain(const char *format)
{
    xcp_sr_vdi_info v = vdi_new(format, 4 * MiB);
    static uint8_t a[2 * 65536];
    xcp_sr_cow_result cow;
    xcp_sr_stream *s;
    int fds[4];
    size_t n, runs;

    fill(a, sizeof(a), 9);
    s = open_stream(v.location, XCP_SR_STREAM_WRITE, 4 * MiB);
    cr_assert_eq(ops->stream_write(s, MiB, a, sizeof(a), &e), 0);
    cr_assert_eq(ops->stream_close(s, &e), 0);
    cr_assert_eq(ops->vdi_snapshot(&sr, v.location, &cow, &e), 0, "%s",
                 e.reason);
    fill(a, sizeof(a), 77);
    s = open_stream(v.location, XCP_SR_STREAM_WRITE, 4 * MiB);
    /* over half of the parent's run, and elsewhere */
    cr_assert_eq(ops->stream_write(s, MiB + 65536, a, 65536, &e), 0);
    cr_assert_eq(ops->stream_write(s, 3 * MiB, a, sizeof(a), &e), 0);
    cr_assert_eq(ops->stream_close(s, &e), 0);
    s = open_stream(v.location, 0, 4 * MiB);
    runs = check_map(s, 4 * MiB, fds, &n);
    cr_assert_geq(runs, 3, "%s: %zu file runs", format, runs);
    cr_assert_eq(n, 2, "%s: %zu files", format, n);
    cr_assert_eq(ops->stream_close(s, &e), 0);
}

Test(vdi_stream, map_through_the_backing_chain)
{
    map_chain("qcow2");
}

Test(vdi_stream, vhd_map_through_the_parent_chain)
{
    map_chain("vhd");
}
