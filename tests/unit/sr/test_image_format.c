/*
 * test_image_format.c - the format-neutral image layer (image.h) and the
 * file SR on VHD VDIs: conversion between qcow2 and VHD (qemu-img
 * compare against the source, `qemu-img check -f qcow2` on qcow2
 * results, vhd_check on VHD ones, unallocated staying unallocated), the
 * size limits of each format, chains never mixed, and every VDI
 * operation of the file SR on a VHD VDI.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* nftw */
#endif
#include "image_test.h"
#include "vhd_check.h"

#include <xcp/sys/sr.h>

#include "image.h"

#include <inttypes.h>

extern const xcp_sr_type xcp__sr_type_file;

#define SR_UUID "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
#define DISK (64 * MiB)
/* XAPI's VHD limit, 2040 GiB. */
#define XCP__VHD_LIMIT (2040ull << 30)

/* ------------------------------------------------------------------ */
/* The image layer                                                      */

static xcp__image *img_open(const char *path, const char *fmt,
                            unsigned flags)
{
    xcp__image *im = NULL;
    int ret = xcp__image_open(&im, path, fmt, flags, err, sizeof(err));

    cr_assert_eq(ret, 0, "open %s: %s", path, err);
    return im;
}

static void img_new(const char *path, const char *fmt, uint64_t size,
                    const char *parent)
{
    int ret = xcp__image_create(path, fmt, size, parent, err, sizeof(err));

    cr_assert_eq(ret, 0, "create %s: %s", path, err);
}

/* Write len bytes of pattern seed at off. */
static void put(xcp__image *im, uint64_t off, size_t len, int seed)
{
    uint8_t *b = malloc(len);
    size_t i;

    cr_assert_not_null(b);
    for (i = 0; i < len; i++)
        b[i] = (uint8_t)(seed + i * 7 + (i >> 9));
    cr_assert_eq(xcp__image_write(im, off, b, len, err, sizeof(err)), 0,
                 "write: %s", err);
    free(b);
}

/* The same scattered writes for every test: 3 small ranges, one
 * straddling a 2 MiB VHD block boundary. */
static void scatter(const char *path, const char *fmt)
{
    xcp__image *im = img_open(path, fmt, 0);

    put(im, 0, 4096, 1);
    put(im, 6 * MiB - 512, 1024, 2);
    put(im, 40 * MiB + 4096, 8192, 3);
    cr_assert_eq(xcp__image_close(im), 0);
}

static void qemu_same(const char *f1, const char *a, const char *f2,
                      const char *b)
{
    char *out = NULL;
    int rc = RUN(&out, "qemu-img", "compare", "-f", f1, "-F", f2, a, b);

    cr_assert_eq(rc, 0, "qemu-img compare %s %s exited %d: %s", a, b, rc,
                 out);
    free(out);
}

/* `qemu-img check -f qcow2`: no error, no leak; the allocated clusters. */
static unsigned long long qcow2_checked(const char *path)
{
    char *out = NULL;
    unsigned long long n;
    int rc = RUN(&out, "qemu-img", "check", "-f", "qcow2", "--output=json",
                 path);

    cr_assert_eq(rc, 0, "qemu-img check %s exited %d: %s", path, rc, out);
    n = strstr(out, "allocated-clusters") ? json_num(out, "allocated-clusters")
                                          : 0;
    free(out);
    return n;
}

static void copy_to(const char *src, const char *sfmt, const char *dst,
                    const char *dfmt)
{
    xcp__image *im = img_open(src, sfmt, XCP__IMAGE_RDONLY);
    int ret = xcp__image_copy(im, dst, dfmt, err, sizeof(err));

    xcp__image_close(im);
    cr_assert_eq(ret, 0, "copy %s -> %s: %s", src, dst, err);
}

TestSuite(image, .init = setup, .fini = teardown);

Test(image, qcow2_to_vhd_copy_is_identical_and_sparse)
{
    img_new(P("a.qcow2"), "qcow2", DISK, NULL);
    scatter(P("a.qcow2"), "qcow2");
    copy_to(P("a.qcow2"), "qcow2", P("b.vhd"), "vhd");
    qemu_same("qcow2", P("a.qcow2"), "vpc", P("b.vhd"));
    /* Blocks 0, 2 (6 MiB - 512 is in block 2) and 3 (the rest of that
     * write), 20: nothing else is allocated. */
    cr_assert_eq(vhd_check(P("b.vhd")), 4);
}

Test(image, vhd_to_qcow2_copy_is_identical_sparse_and_checks_clean)
{
    img_new(P("a.vhd"), "vhd", DISK, NULL);
    scatter(P("a.vhd"), "vhd");
    copy_to(P("a.vhd"), "vhd", P("b.qcow2"), "qcow2");
    qemu_same("vpc", P("a.vhd"), "qcow2", P("b.qcow2"));
    /* 64 KiB clusters: the 4 written ranges, no more. */
    cr_assert_eq(qcow2_checked(P("b.qcow2")), 4);
}

Test(image, copy_flattens_a_vhd_chain_into_qcow2)
{
    xcp__image *im;

    img_new(P("base.vhd"), "vhd", DISK, NULL);
    scatter(P("base.vhd"), "vhd");
    img_new(P("top.vhd"), "vhd", 0, "base.vhd");
    im = img_open(P("top.vhd"), "vhd", 0);
    put(im, 4096, 4096, 9);              /* beside base's first write */
    put(im, 40 * MiB + 4096, 512, 10);   /* over part of base's third */
    xcp__image_close(im);
    vhd_check(P("top.vhd"));
    copy_to(P("top.vhd"), "vhd", P("flat.qcow2"), "qcow2");
    /* QEMU's vpc reads no parents: compare with our own flattening. */
    copy_to(P("top.vhd"), "vhd", P("flat.vhd"), "vhd");
    qemu_same("qcow2", P("flat.qcow2"), "vpc", P("flat.vhd"));
    cr_assert_eq(qcow2_checked(P("flat.qcow2")), 4);
}

Test(image, vhd_beyond_2040_gib_is_efbig_and_2040_gib_fits)
{
    xcp__image *im;

    cr_assert_eq(xcp__image_create(P("big.vhd"), "vhd",
                                   XCP__VHD_LIMIT + 512, NULL, err,
                                   sizeof(err)), -EFBIG);
    cr_assert_not_null(strstr(err, "2040 GiB"), "%s", err);
    cr_assert_eq(access(P("big.vhd"), F_OK), -1);
    img_new(P("max.vhd"), "vhd", XCP__VHD_LIMIT, NULL);
    im = img_open(P("max.vhd"), "vhd", 0);
    cr_assert_eq(xcp__image_resize(im, XCP__VHD_LIMIT + 512, err,
                                   sizeof(err)), -EFBIG);
    xcp__image_close(im);
    cr_assert_eq(xcp__image_max_size("vhd"), XCP__VHD_LIMIT);
}

Test(image, qcow2_up_to_16_tib)
{
    xcp__image *im;

    img_new(P("max.qcow2"), "qcow2", 16ull << 40, NULL);
    qcow2_checked(P("max.qcow2"));
    cr_assert_eq(xcp__image_create(P("big.qcow2"), "qcow2",
                                   (16ull << 40) + 512, NULL, err,
                                   sizeof(err)), -EFBIG);
    cr_assert_not_null(strstr(err, "16384 GiB"), "%s", err);
    img_new(P("small.qcow2"), "qcow2", GiB, NULL);
    im = img_open(P("small.qcow2"), "qcow2", 0);
    cr_assert_eq(xcp__image_resize(im, (16ull << 40) + 512, err,
                                   sizeof(err)), -EFBIG);
    cr_assert_eq(xcp__image_resize(im, 16ull << 40, err, sizeof(err)), 0,
                 "%s", err);
    xcp__image_close(im);
}

Test(image, a_converting_copy_too_large_for_vhd_makes_nothing)
{
    img_new(P("huge.qcow2"), "qcow2", 3ull << 40, NULL);
    {
        xcp__image *im = img_open(P("huge.qcow2"), "qcow2",
                                  XCP__IMAGE_RDONLY);
        cr_assert_eq(xcp__image_copy(im, P("huge.vhd"), "vhd", err,
                                     sizeof(err)), -EFBIG);
        xcp__image_close(im);
    }
    cr_assert_eq(access(P("huge.vhd"), F_OK), -1);
}

Test(image, chains_are_never_mixed)
{
    img_new(P("q.qcow2"), "qcow2", DISK, NULL);
    img_new(P("v.vhd"), "vhd", DISK, NULL);
    cr_assert_eq(xcp__image_create(P("c.vhd"), "vhd", 0, "q.qcow2", err,
                                   sizeof(err)), -EMEDIUMTYPE, "%s", err);
    cr_assert_eq(xcp__image_create(P("c.qcow2"), "qcow2", 0, "v.vhd", err,
                                   sizeof(err)), -EMEDIUMTYPE, "%s", err);
    cr_assert_eq(access(P("c.vhd"), F_OK), -1);
    cr_assert_eq(access(P("c.qcow2"), F_OK), -1);
}

Test(image, info_names_a_vhd_parent_as_the_child_records_it)
{
    xcp__image_info info;
    xcp__image *im;

    img_new(P("p.vhd"), "vhd", DISK, NULL);
    img_new(P("c.vhd"), "vhd", 0, "p.vhd");
    im = img_open(P("c.vhd"), "vhd", XCP__IMAGE_RDONLY | XCP__IMAGE_NO_PARENT);
    cr_assert_eq(xcp__image_get_info(im, &info, err, sizeof(err)), 0);
    xcp__image_close(im);
    cr_assert_str_eq(info.format, "vhd");
    cr_assert(info.has_parent);
    cr_assert_str_eq(info.parent, "p.vhd");
    cr_assert_eq(info.virtual_size, DISK);
}

/* ------------------------------------------------------------------ */
/* The file SR on VHD VDIs                                              */

static char srdir[128];
static xcp_sr_kv dc[1];
static xcp_sr_target sr;
static const xcp_sr_ops *ops;
static xcp_sr_error e;

static void sr_setup(void)
{
    uint64_t size;

    setup();
    snprintf(srdir, sizeof(srdir), "%s/sr", dir);
    dc[0].key = "location";
    dc[0].value = srdir;
    sr.sr_uuid = SR_UUID;
    sr.device_config = dc;
    sr.n_device_config = 1;
    ops = xcp__sr_type_file.ops;
    memset(&e, 0, sizeof(e));
    cr_assert_eq(ops->sr_create(&sr, &size, &e), 0, "%s", e.reason);
}

static xcp_sr_vdi_info vdi_new(const char *fmt, uint64_t size)
{
    xcp_sr_vdi_create_params p = { .version = 1, .virtual_size = size,
                                   .format = fmt };
    xcp_sr_vdi_info v;

    cr_assert_eq(ops->vdi_create(&sr, &p, &v, &e), 0, "%s", e.reason);
    return v;
}

static const char *file_of(const char *location)
{
    static char buf[2][512];
    static int i;

    i = !i;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", srdir, location);
    return buf[i];
}

/* Write len bytes of seed at off through the VDI's stream. */
static void vdi_put(const char *location, uint64_t off, size_t len, int seed)
{
    xcp_sr_stream *s;
    uint64_t size;
    uint8_t *b = malloc(len);

    cr_assert_not_null(b);
    memset(b, seed, len);
    cr_assert_eq(ops->vdi_stream_open(&sr, location, XCP_SR_STREAM_WRITE, &s,
                                      &size, &e), 0, "%s", e.reason);
    cr_assert_eq(ops->stream_write(s, off, b, len, &e), 0, "%s", e.reason);
    cr_assert_eq(ops->stream_close(s, &e), 0);
    free(b);
}

/* The byte at off, through the VDI's chain. */
static int vdi_byte(const char *location, uint64_t off)
{
    xcp_sr_stream *s;
    uint64_t size;
    uint8_t b;

    cr_assert_eq(ops->vdi_stream_open(&sr, location, 0, &s, &size, &e), 0,
                 "%s", e.reason);
    cr_assert_eq(ops->stream_read(s, off, &b, 1, &e), 0, "%s", e.reason);
    ops->stream_close(s, NULL);
    return b;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);

    return n >= m && strcmp(s + n - m, tail) == 0;
}

struct scan { xcp_sr_vdi_info v[16]; int n; };

static int scan_cb(void *ctx, const xcp_sr_vdi_info *v)
{
    struct scan *s = ctx;

    cr_assert_lt(s->n, 16);
    s->v[s->n++] = *v;
    return 0;
}

static const xcp_sr_vdi_info *scanned(struct scan *s, const char *location)
{
    int i;

    for (i = 0; i < s->n; i++)
        if (strcmp(s->v[i].location, location) == 0)
            return &s->v[i];
    return NULL;
}

TestSuite(file_vhd, .init = sr_setup, .fini = teardown);

Test(file_vhd, create_gives_a_vhd_file_and_path)
{
    xcp_sr_vdi_info v = vdi_new("vhd", DISK);
    xcp_sr_vdi_path vp;

    cr_assert(ends_with(v.location, ".vhd"), "%s", v.location);
    cr_assert_str_eq(v.format, "vhd");
    cr_assert_eq(v.virtual_size, DISK);
    cr_assert_eq(ops->vdi_path(&sr, v.location, &vp, &e), 0);
    cr_assert_str_eq(vp.format, "vhd");
    cr_assert_eq(vhd_check(vp.path), 0);
    cr_assert_str_eq(vdi_new(NULL, DISK).format, "qcow2");
}

Test(file_vhd, create_beyond_2040_gib_is_a_size_error)
{
    xcp_sr_vdi_create_params p = { .version = 1, .format = "vhd",
                                   .virtual_size = XCP__VHD_LIMIT + MiB };
    xcp_sr_vdi_info v;

    cr_assert_eq(ops->vdi_create(&sr, &p, &v, &e), -EFBIG);
    cr_assert_eq(e.kind, XCP_SR_ERR_VDI_SIZE);
    cr_assert_not_null(strstr(e.reason, "VDI Invalid size"), "%s",
                       e.reason);
    p.format = "qcow2";
    cr_assert_eq(ops->vdi_create(&sr, &p, &v, &e), 0, "%s", e.reason);
}

Test(file_vhd, snapshot_and_clone_make_vhd_differencing_children)
{
    xcp_sr_vdi_info a = vdi_new("vhd", DISK);
    xcp_sr_cow_result snap, clone;
    xcp__image_info info;
    xcp__image *im;

    vdi_put(a.location, 3 * MiB, 4096, 0x11);
    cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &snap, &e), 0, "%s",
                 e.reason);
    cr_assert(ends_with(snap.child.location, ".vhd"));
    cr_assert(ends_with(snap.parent.location, ".vhd"));
    cr_assert_str_eq(snap.child.format, "vhd");
    cr_assert(snap.child.read_only);
    cr_assert(snap.parent.hidden);
    cr_assert_str_eq(snap.source.parent_location, snap.parent.location);
    cr_assert_str_eq(snap.child.parent_location, snap.parent.location);
    /* A differencing disk whose locators lead to the parent. */
    im = img_open(file_of(a.location), "vhd",
                  XCP__IMAGE_RDONLY | XCP__IMAGE_NO_PARENT);
    cr_assert_eq(xcp__image_get_info(im, &info, err, sizeof(err)), 0);
    xcp__image_close(im);
    cr_assert_str_eq(info.parent, snap.parent.location);
    vhd_check(file_of(a.location));
    vhd_check(file_of(snap.child.location));
    vhd_check(file_of(snap.parent.location));

    vdi_put(a.location, 3 * MiB, 4096, 0x22);
    cr_assert_eq(vdi_byte(a.location, 3 * MiB), 0x22);
    cr_assert_eq(vdi_byte(snap.child.location, 3 * MiB), 0x11);
    /* A clone of the (read-only) snapshot builds on it directly. */
    cr_assert_eq(ops->vdi_clone(&sr, snap.child.location, &clone, &e), 0,
                 "%s", e.reason);
    cr_assert_str_eq(clone.child.parent_location, snap.child.location);
    cr_assert_str_eq(clone.child.format, "vhd");
    cr_assert(!clone.child.read_only);
    cr_assert_eq(vdi_byte(clone.child.location, 3 * MiB), 0x11);
    vhd_check(file_of(clone.child.location));
}

/* Bytes this process has read and written through system calls so far
 * (/proc/self/io: rchar, wchar; page cache or not). */
static void io_bytes(uint64_t *rd, uint64_t *wr)
{
    char line[128];
    FILE *f = fopen("/proc/self/io", "r");

    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f)) {
        sscanf(line, "rchar: %" SCNu64, rd);
        sscanf(line, "wchar: %" SCNu64, wr);
    }
    fclose(f);
}

/*
 * What a snapshot of a 2040 GiB VHD VDI ten images deep reads and writes:
 * the children's BATs (4 MiB each, all "unallocated": what the format
 * needs), and next to nothing else.  Before: every image opened on the
 * way (the chain's length, each stat) read its whole 4 MiB BAT, so a
 * snapshot read about 100 MiB here and took 394 ms at 2040 GiB against
 * 30 ms at 1 GiB.  Counted in bytes, not time.
 */
Test(file_vhd, a_snapshot_of_a_2040_gib_vhd_reads_no_bat)
{
    const uint64_t bat = (XCP__VHD_LIMIT >> 21) * 4;
    xcp_sr_vdi_info a = vdi_new("vhd", XCP__VHD_LIMIT);
    xcp_sr_cow_result r;
    uint64_t rd0 = 0, wr0 = 0, rd1 = 0, wr1 = 0;
    int i;

    vdi_put(a.location, 0, 4096, 0x33);
    for (i = 0; i < 9; i++) {
        cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &r, &e), 0, "%s",
                     e.reason);
        vdi_put(a.location, (uint64_t)(i + 1) * GiB, 4096, 0x40 + i);
    }
    io_bytes(&rd0, &wr0);
    cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &r, &e), 0, "%s",
                 e.reason);
    io_bytes(&rd1, &wr1);
    cr_log_info("2040 GiB VHD snapshot: %" PRIu64 " bytes read, %" PRIu64
                " written (BAT %" PRIu64 ")", rd1 - rd0, wr1 - wr0, bat);
    fprintf(stderr, "file_vhd: snapshot of a 2040 GiB VHD, 10 images "
            "deep: %" PRIu64 " KiB read, %" PRIu64 " KiB written (two "
            "children of %" PRIu64 " KiB of BAT each)\n", (rd1 - rd0) >> 10,
            (wr1 - wr0) >> 10, bat >> 10);
    cr_expect_lt(rd1 - rd0, 1 * MiB, "the snapshot read %" PRIu64 " bytes",
                 rd1 - rd0);
    cr_expect_lt(wr1 - wr0, 2 * bat + 1 * MiB, "the snapshot wrote %" PRIu64
                 " bytes", wr1 - wr0);
    /* Still reads through the chain (the BATs read when data is). */
    cr_expect_eq(vdi_byte(a.location, 0), 0x33);
    cr_expect_eq(vdi_byte(r.child.location, 9 * GiB), 0x48);
    vhd_check(file_of(a.location));
}

Test(file_vhd, resize_grows_and_past_2040_gib_is_a_size_error)
{
    xcp_sr_vdi_info a = vdi_new("vhd", DISK), v;

    vdi_put(a.location, 0, 512, 0x5a);
    cr_assert_eq(ops->vdi_resize(&sr, a.location, 4 * GiB, &v, &e), 0, "%s",
                 e.reason);
    cr_assert_eq(v.virtual_size, 4 * GiB);
    cr_assert_eq(vdi_byte(a.location, 0), 0x5a);
    vhd_check(file_of(a.location));
    cr_assert_eq(ops->vdi_resize(&sr, a.location, XCP__VHD_LIMIT + 512, &v,
                                 &e), -EFBIG);
    cr_assert_eq(e.kind, XCP_SR_ERR_VDI_SIZE);
}

Test(file_vhd, scan_reports_the_chain_and_adopts_a_qemu_made_vhd)
{
    xcp_sr_vdi_info a = vdi_new("vhd", DISK);
    const char *qname = "0b1c2d3e-4f50-4617-8a9b-0c1d2e3f4a5b.vhd";
    xcp_sr_cow_result snap;
    struct scan s = { .n = 0 };
    const xcp_sr_vdi_info *v;

    cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &snap, &e), 0);
    cr_assert_eq(RUN(NULL, "qemu-img", "create", "-q", "-f", "vpc",
                     file_of(qname), "10M"), 0);
    cr_assert_eq(ops->sr_scan(&sr, scan_cb, &s, &e), 0, "%s", e.reason);
    cr_assert_eq(s.n, 4);
    cr_assert_not_null(v = scanned(&s, a.location));
    cr_assert_str_eq(v->parent_location, snap.parent.location);
    cr_assert_not_null(v = scanned(&s, snap.parent.location));
    cr_assert(v->hidden);
    cr_assert_str_eq(v->format, "vhd");
    cr_assert_not_null(v = scanned(&s, qname));
    cr_assert_str_eq(v->format, "vhd");
    cr_assert_geq(v->virtual_size, 10 * MiB);
}

Test(file_vhd, a_vhd_image_named_qcow2_is_not_adopted)
{
    const char *name = "1b1c2d3e-4f50-4617-8a9b-0c1d2e3f4a5b.qcow2";
    struct scan s = { .n = 0 };

    img_new(file_of(name), "vhd", DISK, NULL);
    /* Its header does not check as qcow2: the scan fails naming it
     * rather than leave it out. */
    cr_assert_lt(ops->sr_scan(&sr, scan_cb, &s, &e), 0);
    cr_assert_not_null(strstr(e.reason, name), "%s", e.reason);
}

Test(file_vhd, destroy_then_gc_and_coalesce_keep_the_data)
{
    xcp_sr_vdi_info a = vdi_new("vhd", DISK), now;
    xcp_sr_cow_result snap;
    xcp_sr_gc_result g;

    vdi_put(a.location, 0, 4096, 0x31);
    cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &snap, &e), 0);
    vdi_put(a.location, 8 * MiB, 4096, 0x32);
    cr_assert_eq(ops->vdi_destroy(&sr, snap.child.location, &e), 0, "%s",
                 e.reason);
    cr_assert_eq(ops->sr_gc(&sr, XCP_SR_GC_COALESCE, &g, &e), 0, "%s",
                 e.reason);
    cr_assert_eq(g.coalesced, 1);
    cr_assert_eq(access(file_of(snap.parent.location), F_OK), -1);
    cr_assert_eq(vdi_byte(a.location, 0), 0x31);
    cr_assert_eq(vdi_byte(a.location, 8 * MiB), 0x32);
    cr_assert_eq(ops->vdi_stat(&sr, a.location, &now, &e), 0, "%s",
                 e.reason);
    cr_assert_str_eq(now.parent_location, "");
    vhd_check(file_of(a.location));
}

Test(file_vhd, copy_keeps_the_format_and_the_data)
{
    xcp_sr_vdi_info a = vdi_new("vhd", DISK), c;

    vdi_put(a.location, 5 * MiB, 4096, 0x44);
    cr_assert_eq(ops->vdi_copy(&sr, a.location, &sr, NULL, &c, &e), 0, "%s",
                 e.reason);
    cr_assert_str_eq(c.format, "vhd");
    qemu_same("vpc", file_of(a.location), "vpc", file_of(c.location));
    cr_assert_eq(vhd_check(file_of(c.location)), 1);
}

/* Merging a hidden VHD parent into a hidden child that has children of
 * its own would break them (they name the child's unique id): such
 * chains stay as they are, readable. */
Test(file_vhd, hidden_chains_of_vhd_stay_readable_through_gc)
{
    xcp_sr_vdi_info a = vdi_new("vhd", DISK);
    xcp_sr_cow_result s1, s2;
    xcp_sr_gc_result g;

    vdi_put(a.location, 0, 512, 0x61);
    cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &s1, &e), 0);
    vdi_put(a.location, 4 * MiB, 512, 0x62);
    cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &s2, &e), 0);
    cr_assert_eq(ops->vdi_destroy(&sr, s1.child.location, &e), 0);
    cr_assert_eq(ops->vdi_destroy(&sr, s2.child.location, &e), 0);
    cr_assert_eq(ops->sr_gc(&sr, XCP_SR_GC_COALESCE_HIDDEN, &g, &e), 0, "%s",
                 e.reason);
    cr_assert_eq(vdi_byte(a.location, 0), 0x61);
    cr_assert_eq(vdi_byte(a.location, 4 * MiB), 0x62);
    vhd_check(file_of(a.location));
}

struct ranges { uint64_t off[8], len[8]; int n; };

static int range_cb(void *ctx, uint64_t off, uint64_t len)
{
    struct ranges *r = ctx;

    cr_assert_lt(r->n, 8);
    r->off[r->n] = off;
    r->len[r->n++] = len;
    return 0;
}

/* What an export sends of a VHD VDI: only what its chain holds. */
Test(file_vhd, stream_extents_list_only_the_written_blocks)
{
    xcp_sr_vdi_info a = vdi_new("vhd", DISK);
    xcp_sr_cow_result snap;
    struct ranges r = { .n = 0 };
    xcp_sr_stream *s;
    uint64_t size;

    vdi_put(a.location, 0, 512, 1);
    cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &snap, &e), 0);
    vdi_put(a.location, 10 * MiB, 512, 2);
    cr_assert_eq(ops->vdi_stream_open(&sr, a.location, 0, &s, &size, &e), 0);
    cr_assert_eq(size, DISK);
    cr_assert_eq(ops->stream_extents(s, 0, size, range_cb, &r, &e), 0);
    ops->stream_close(s, NULL);
    /* At sector or block granularity, but within the blocks written:
     * one from the parent, one from the leaf. */
    cr_assert_eq(r.n, 2);
    cr_assert_eq(r.off[0], 0);
    cr_assert_leq(r.len[0], 2 * MiB);
    cr_assert_geq(r.off[1], 10 * MiB - 2 * MiB);
    cr_assert_leq(r.off[1] + r.len[1], 12 * MiB);
}

/* A VHD whose parent has gone still names it (as qcow2 names a missing
 * backing file): it must not pass for a standalone disk. */
Test(file_vhd, a_missing_vhd_parent_is_still_named)
{
    xcp_sr_vdi_info a = vdi_new("vhd", DISK), now;
    xcp_sr_cow_result snap;
    char moved[600];

    cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &snap, &e), 0);
    snprintf(moved, sizeof(moved), "%s/elsewhere", dir);
    cr_assert_eq(rename(file_of(snap.parent.location), moved), 0);
    cr_assert_eq(ops->vdi_stat(&sr, a.location, &now, &e), 0, "%s",
                 e.reason);
    cr_assert_str_eq(now.parent_location, snap.parent.location);
}
