/*
 * test_vhd.c - the VHD image library, checked against qemu-img/qemu-io.
 *
 * QEMU is the reference reader: images we write must open in QEMU's vpc
 * driver and `qemu-img compare` must find the data we wrote.  QEMU 7.2
 * has no checker for vpc (`qemu-img check -f vpc` exits 63, "This image
 * format does not support checks"), so vhd_check() (vhd_check.h) also
 * walks the structure itself, written from the specification apart from the
 * library: both footers equal with good checksums, the header's checksum,
 * every block inside the file after the metadata, none overlapping, the
 * footer at the very end.  Images QEMU writes must read back the same
 * through us.  Each test works in its own temporary directory.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* nftw */
#endif
#include "image_test.h"

#include "vhd.h"
#include "vhd_check.h"
#include "vhd_stream.h"

#include <sys/random.h>

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static void create(const char *path, uint64_t size, const char *parent)
{
    xcp__vhd_create_opts o = { 0 };
    int ret;

    o.parent = parent;
    ret = xcp__vhd_create(path, size, &o, err, sizeof(err));
    cr_assert_eq(ret, 0, "create %s: %d %s", path, ret, err);
}

static xcp__vhd *open_img(const char *path, unsigned flags)
{
    xcp__vhd *v = NULL;
    int ret = xcp__vhd_open(&v, path, flags, err, sizeof(err));

    cr_assert_eq(ret, 0, "open %s: %d %s", path, ret, err);
    return v;
}

/* Write a pattern at off both into the image and into the model. */
static void put(xcp__vhd *v, uint8_t *model, uint64_t off, size_t len,
                uint32_t seed)
{
    uint8_t *buf = malloc(len);
    int ret;

    fill(buf, len, seed);
    ret = xcp__vhd_write(v, off, buf, len, err, sizeof(err));
    cr_assert_eq(ret, 0, "write %llu+%zu: %d %s", (unsigned long long)off,
                 len, ret, err);
    if (model)
        memcpy(model + off, buf, len);
    free(buf);
}

/* Writes at random places, many across 2 MiB block boundaries and at
 * odd byte offsets; seed makes them differ between images. */
static void scatter(xcp__vhd *v, uint8_t *model, uint64_t size, int n,
                    uint32_t seed)
{
    uint32_t r[3];
    uint64_t off, len;
    int i;

    for (i = 0; i < n; i++) {
        cr_assert_eq(getrandom(r, sizeof(r), 0), (ssize_t)sizeof(r));
        len = 1 + r[1] % (i % 3 == 0 ? 300 * KiB : 9000);
        if (i % 2)              /* straddle a block boundary */
            off = (r[0] % (size / (2 * MiB))) * 2 * MiB + 2 * MiB -
                  len / 2 - r[2] % 700;
        else
            off = ((uint64_t)r[0] << 16 ^ r[2]) % size;
        if (off >= size)
            off = size - 1;
        if (len > size - off)
            len = size - off;
        put(v, model, off, (size_t)len, seed * 1000 + (uint32_t)i);
    }
}

/* The virtual size QEMU's vpc driver sees. */
static uint64_t vpc_size(const char *path)
{
    char *out = NULL;
    uint64_t size;

    cr_assert_eq(RUN(&out, "qemu-img", "info", "-f", "vpc", "--output=json",
                     path), 0, "qemu-img info %s", path);
    size = json_num(out, "virtual-size");
    free(out);
    return size;
}

/* Our whole view of path. */
static uint8_t *read_all(const char *path, uint64_t size)
{
    uint8_t *buf = malloc(size + 1);
    xcp__vhd *v = open_img(path, XCP__VHD_RDONLY);
    int ret = xcp__vhd_read(v, 0, buf, size, err, sizeof(err));

    cr_assert_eq(ret, 0, "read %s: %s", path, err);
    xcp__vhd_close(v);
    return buf;
}

static void assert_same(const uint8_t *a, const uint8_t *b, uint64_t size,
                        const char *what)
{
    uint64_t i;

    for (i = 0; i < size && a[i] == b[i]; i++)
        ;
    cr_assert_eq(i, size, "%s differs from the model at byte %llu", what,
                 (unsigned long long)i);
}

/* `qemu-img compare` finds model (as a raw file) in path. */
static void qemu_compare(const char *path, const uint8_t *model,
                         uint64_t size)
{
    const char *raw = P("model.raw");
    uint64_t off, n;
    char *out = NULL;
    int fd, rc;

    unlink(raw);
    fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, (off_t)size), 0);
    for (off = 0; off < size; off += n) {   /* sparse: skip zero runs */
        n = size - off < 64 * KiB ? size - off : 64 * KiB;
        if (model[off] || memcmp(model + off, model + off + 1, n - 1))
            cr_assert_eq(pwrite(fd, model + off, n, (off_t)off),
                         (ssize_t)n);
    }
    close(fd);
    rc = RUN(&out, "qemu-img", "compare", "-f", "vpc", "-F", "raw", path,
             raw);
    cr_assert_eq(rc, 0, "qemu-img compare %s: %d %s", path, rc, out);
    free(out);
    unlink(raw);
}

/* Both our view and QEMU's of a standalone image equal model, and it is
 * sound. */
static void assert_content(const char *path, const uint8_t *model,
                           uint64_t size)
{
    uint8_t *ours = read_all(path, size);

    assert_same(ours, model, size, path);
    free(ours);
    vhd_check(path);
    qemu_compare(path, model, size);
}

static void expect_open(const char *path, unsigned flags, int code,
                        const char *needle)
{
    xcp__vhd *v = NULL;
    int ret;

    err[0] = '\0';
    ret = xcp__vhd_open(&v, path, flags, err, sizeof(err));
    assert_open_refused(path, ret, v, code, needle);
}

/* ------------------------------------------------------------------ */

TestSuite(vhd_create, .init = setup, .fini = teardown);
TestSuite(vhd_io, .init = setup, .fini = teardown);
TestSuite(vhd_chain, .init = setup, .fini = teardown);
TestSuite(vhd_resize, .init = setup, .fini = teardown);
TestSuite(vhd_corrupt, .init = setup, .fini = teardown);

Test(vhd_create, new_image_is_sound_and_qemu_sees_its_size)
{
    const char *img = P("a.vhd");
    xcp__vhd_info info;
    xcp__vhd *v;
    char *js;

    create(img, 100 * MiB, NULL);
    cr_assert_eq(vhd_check(img), 0);
    js = qemu_info(img);
    cr_assert_str_eq(json_str(js, "format"), "vpc");
    cr_assert_eq(json_num(js, "virtual-size"), 100 * MiB, "%s", js);
    cr_assert_eq(json_num(js, "cluster-size"), 2 * MiB, "%s", js);
    free(js);
    v = open_img(img, XCP__VHD_RDONLY);
    cr_assert_eq(xcp__vhd_get_info(v, &info, err, sizeof(err)), 0);
    cr_assert_str_eq(info.format, "vhd");
    cr_assert_eq(info.disk_type, XCP__VHD_DYNAMIC);
    cr_assert_eq(info.virtual_size, 100 * MiB);
    cr_assert_eq(info.block_size, 2 * MiB);
    cr_assert_eq(info.max_table_entries, 50);
    cr_assert_not(info.has_parent);
    cr_assert_eq(strlen(info.uuid), 36);
    /* Metadata only: footer, copy, header, one BAT sector. */
    cr_assert_leq(info.file_size, 4 * KiB);
    xcp__vhd_close(v);
}

Test(vhd_create, existing_file_is_not_overwritten)
{
    const char *img = P("a.vhd");
    int ret;

    create(img, MiB, NULL);
    ret = xcp__vhd_create(img, MiB, NULL, err, sizeof(err));
    cr_assert_eq(ret, -EEXIST, "%d %s", ret, err);
}

Test(vhd_create, beyond_2040_GiB_is_refused_and_2040_GiB_is_not)
{
    const char *img = P("big.vhd");
    xcp__vhd_create_opts o = { 0 };
    char *js;
    int ret;

    ret = xcp__vhd_create(img, XCP__VHD_MAX_SIZE + 512, NULL, err,
                          sizeof(err));
    cr_assert_eq(ret, -EFBIG, "%d %s", ret, err);
    cr_assert_not_null(strstr(err, "2040 GiB"), "%s", err);
    cr_assert_eq(access(img, F_OK), -1, "no file is left behind");
    o.max_size = 3ull << 40;
    ret = xcp__vhd_create(img, GiB, &o, err, sizeof(err));
    cr_assert_eq(ret, -EFBIG, "%d %s", ret, err);
    create(img, XCP__VHD_MAX_SIZE, NULL);
    vhd_check(img);
    js = qemu_info(img);
    cr_assert_eq(json_num(js, "virtual-size"), XCP__VHD_MAX_SIZE, "%s", js);
    free(js);
}

Test(vhd_create, bad_block_sizes_are_refused)
{
    xcp__vhd_create_opts o = { 0 };
    uint32_t bad[] = { 2048, 3 * MiB, 512 * MiB };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o.block_size = bad[i];
        cr_assert_eq(xcp__vhd_create(P("a.vhd"), MiB, &o, err, sizeof(err)),
                     -EINVAL, "block size %u: %s", bad[i], err);
    }
}

/* qemu sizes its images to a whole geometry: ours, at that size, must
 * record the same cylinders, heads and sectors. */
Test(vhd_create, geometry_matches_qemu)
{
    const char *sizes[] = { "10M", "100M", "1000M", "40G", "130G", "2000G" };
    uint8_t f[512], g[512];
    char name[32];
    size_t i;
    int fd;

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        snprintf(name, sizeof(name), "q%zu.vhd", i);
        cr_assert_eq(RUN(NULL, "qemu-img", "create", "-q", "-f", "vpc",
                         "-o", "subformat=dynamic", P(name), sizes[i]), 0);
        fd = open(P(name), O_RDONLY);
        cr_assert_eq(pread(fd, f, 512, 0), 512);
        close(fd);
        snprintf(name, sizeof(name), "ours%zu.vhd", i);
        create(P(name), be64_(f + 48), NULL);
        fd = open(P(name), O_RDONLY);
        cr_assert_eq(pread(fd, g, 512, 0), 512);
        close(fd);
        cr_assert_eq(be32_(g + 56), be32_(f + 56),
                     "%s: geometry %08x, qemu %08x", sizes[i], be32_(g + 56),
                     be32_(f + 56));
    }
}

/* ------------------------------------------------------------------ */

Test(vhd_io, random_writes_match_qemu_compare)
{
    const char *img = P("a.vhd");
    uint64_t size = 64 * MiB;
    uint8_t *model = calloc(1, size);
    xcp__vhd *v;

    create(img, size, NULL);
    v = open_img(img, 0);
    put(v, model, 0, 512, 1);
    put(v, model, 2 * MiB - 3, 7, 2);               /* across a block */
    put(v, model, size - 1000, 1000, 3);            /* the very end */
    put(v, model, 10 * MiB, 2 * MiB, 4);            /* one whole block */
    scatter(v, model, size, 60, 5);
    cr_assert_eq(xcp__vhd_close(v), 0);
    assert_content(img, model, size);
    free(model);
}

Test(vhd_io, extent_tells_written_from_unwritten)
{
    const char *img = P("a.vhd");
    uint64_t len;
    xcp__vhd *v;
    bool data;

    create(img, 16 * MiB, NULL);
    v = open_img(img, 0);
    put(v, NULL, 4 * MiB + 4096, 8192, 1);
    cr_assert_eq(xcp__vhd_extent(v, 0, 16 * MiB, &data, &len, err,
                                 sizeof(err)), 0, "%s", err);
    cr_assert_not(data);
    cr_assert_eq(len, 2 * MiB);     /* one unallocated block at a time */
    cr_assert_eq(xcp__vhd_extent(v, 4 * MiB, 12 * MiB, &data, &len, err,
                                 sizeof(err)), 0);
    cr_assert_not(data);
    cr_assert_eq(len, 4096);
    cr_assert_eq(xcp__vhd_extent(v, 4 * MiB + 4096, 8 * MiB, &data, &len,
                                 err, sizeof(err)), 0);
    cr_assert(data);
    cr_assert_eq(len, 8192);
    cr_assert_eq(xcp__vhd_extent(v, 0, 0, &data, &len, err, sizeof(err)),
                 -EINVAL);
    xcp__vhd_close(v);
}

Test(vhd_io, out_of_range_and_read_only_are_refused)
{
    const char *img = P("a.vhd");
    uint8_t buf[1024] = { 0 };
    xcp__vhd *v;

    create(img, MiB, NULL);
    v = open_img(img, XCP__VHD_RDONLY);
    cr_assert_eq(xcp__vhd_read(v, MiB - 512, buf, 1024, err, sizeof(err)),
                 -EINVAL);
    cr_assert_eq(xcp__vhd_write(v, 0, buf, 512, err, sizeof(err)), -EROFS);
    cr_assert_eq(xcp__vhd_resize(v, 2 * MiB, err, sizeof(err)), -EROFS);
    xcp__vhd_close(v);
    v = open_img(img, 0);
    cr_assert_eq(xcp__vhd_write(v, MiB, buf, 1, err, sizeof(err)), -EINVAL);
    xcp__vhd_close(v);
}

static void qemu_io(const char *fmt, const char *path, const char *cmd)
{
    char *out = NULL;
    int rc = RUN(&out, "qemu-io", "-f", fmt, "-c", cmd, path);

    cr_assert_eq(rc, 0, "qemu-io %s: %d %s", cmd, rc, out);
    free(out);
}

/* An image qemu made and wrote to reads the same through us, takes our
 * writes, and qemu then still reads what both wrote. */
static void qemu_image_round_trip(const char *subformat)
{
    const char *img = P("q.vhd");
    char opt[64];
    uint8_t *theirs, *ours;
    uint64_t size;
    xcp__vhd *v;

    snprintf(opt, sizeof(opt), "subformat=%s", subformat);
    cr_assert_eq(RUN(NULL, "qemu-img", "create", "-q", "-f", "vpc", "-o",
                     opt, img, "24M"), 0);
    qemu_io("vpc", img, "write -P 0x5a 1M 3M");
    qemu_io("vpc", img, "write -P 0xa5 7340544 1536");
    size = vpc_size(img);
    v = open_img(img, 0);
    cr_assert_eq(xcp__vhd_virtual_size(v), size);
    theirs = qemu_read_all("vpc", img, size);
    ours = malloc(size);
    cr_assert_eq(xcp__vhd_read(v, 0, ours, size, err, sizeof(err)), 0,
                 "%s", err);
    assert_same(ours, theirs, size, "our read of qemu's image");
    free(ours);
    put(v, theirs, 2 * MiB + 77, 3 * MiB, 9);
    put(v, theirs, size - 512, 512, 10);
    cr_assert_eq(xcp__vhd_close(v), 0);
    assert_content(img, theirs, size);
    free(theirs);
}

Test(vhd_io, dynamic_images_qemu_writes_round_trip)
{
    qemu_image_round_trip("dynamic");
}

Test(vhd_io, fixed_images_qemu_writes_round_trip)
{
    qemu_image_round_trip("fixed");
}

/* ------------------------------------------------------------------ */

/* base <- mid <- top, each written at random; returns the model of top. */
static uint8_t *chain3(uint64_t size)
{
    uint8_t *model = calloc(1, size);
    xcp__vhd *v;

    create(P("base.vhd"), size, NULL);
    v = open_img(P("base.vhd"), 0);
    scatter(v, model, size, 20, 1);
    xcp__vhd_close(v);
    create(P("mid.vhd"), 0, P("base.vhd"));
    v = open_img(P("mid.vhd"), 0);
    scatter(v, model, size, 20, 2);
    put(v, model, 0, 1, 3);                 /* a partial sector over base */
    xcp__vhd_close(v);
    create(P("top.vhd"), 0, P("mid.vhd"));
    v = open_img(P("top.vhd"), 0);
    scatter(v, model, size, 20, 4);
    xcp__vhd_close(v);
    return model;
}

Test(vhd_chain, three_levels_read_through_and_copy_flattens)
{
    uint64_t size = 32 * MiB;
    uint8_t *model = chain3(size), *ours;
    xcp__vhd_info info;
    xcp__vhd *v;

    ours = read_all(P("top.vhd"), size);
    assert_same(ours, model, size, "the chain");
    free(ours);
    vhd_check(P("base.vhd"));
    vhd_check(P("mid.vhd"));
    vhd_check(P("top.vhd"));
    v = open_img(P("top.vhd"), XCP__VHD_RDONLY);
    cr_assert_eq(xcp__vhd_get_info(v, &info, err, sizeof(err)), 0);
    cr_assert_eq(info.disk_type, XCP__VHD_DIFFERENCING);
    cr_assert(info.has_parent);
    cr_assert_str_eq(info.parent, P("mid.vhd"));
    cr_assert_eq(xcp__vhd_copy(v, P("flat.vhd"), NULL, err, sizeof(err)), 0,
                 "%s", err);
    xcp__vhd_close(v);
    assert_content(P("flat.vhd"), model, size);
    free(model);
}

Test(vhd_chain, extent_follows_the_chain)
{
    xcp__vhd *v;
    uint64_t len;
    bool data;

    create(P("base.vhd"), 8 * MiB, NULL);
    v = open_img(P("base.vhd"), 0);
    put(v, NULL, 2 * MiB, 4096, 1);
    xcp__vhd_close(v);
    create(P("top.vhd"), 0, P("base.vhd"));
    v = open_img(P("top.vhd"), 0);
    put(v, NULL, 2 * MiB + 4096, 4096, 2);
    cr_assert_eq(xcp__vhd_extent(v, 2 * MiB, 6 * MiB, &data, &len, err,
                                 sizeof(err)), 0);
    cr_assert(data, "held by the parent");
    cr_assert_eq(len, 4096);
    cr_assert_eq(xcp__vhd_extent(v, 2 * MiB + 4096, 4 * MiB, &data, &len,
                                 err, sizeof(err)), 0);
    cr_assert(data, "held by the child");
    cr_assert_eq(xcp__vhd_extent(v, 2 * MiB + 8192, 4 * MiB, &data, &len,
                                 err, sizeof(err)), 0);
    cr_assert_not(data);
    xcp__vhd_close(v);
}

/* qemu's vpc driver reads a differencing disk as if it were dynamic (it
 * ignores the parent): it must open ours and find the sectors the child
 * holds. */
Test(vhd_chain, qemu_reads_our_differencing_disk)
{
    uint64_t size = 8 * MiB;
    uint8_t *model = calloc(1, size), *theirs;
    xcp__vhd *v;

    create(P("base.vhd"), size, NULL);
    create(P("top.vhd"), 0, P("base.vhd"));
    v = open_img(P("top.vhd"), 0);
    put(v, model, 3 * MiB, 64 * KiB, 1);
    put(v, model, 6 * MiB - 512, 1024, 2);
    xcp__vhd_close(v);
    vhd_check(P("top.vhd"));
    theirs = qemu_read_all("vpc", P("top.vhd"), size);
    assert_same(theirs + 3 * MiB, model + 3 * MiB, 64 * KiB, "qemu's read");
    assert_same(theirs + 6 * MiB - 512, model + 6 * MiB - 512, 1024,
                "qemu's read");
    free(theirs);
    free(model);
}

/* Clear every locator but the one of code want (and the header's name
 * when keep_name is false). */
static void keep_locator(const char *path, uint32_t want, bool keep_name)
{
    uint8_t hdr[1024], zero[512] = { 0 };
    uint32_t s = 0;
    size_t i;
    int fd = open(path, O_RDWR);

    cr_assert_eq(pread(fd, hdr, 1024, 512), 1024);
    for (i = 0; i < 8; i++)
        if (be32_(hdr + 576 + 24 * i) != want)
            memset(hdr + 576 + 24 * i, 0, 24);
    if (!keep_name)
        memcpy(hdr + 64, zero, 512);
    hdr[36] = hdr[37] = hdr[38] = hdr[39] = 0;
    for (i = 0; i < 1024; i++)
        s += hdr[i];
    s = ~s;
    hdr[36] = (uint8_t)(s >> 24);
    hdr[37] = (uint8_t)(s >> 16);
    hdr[38] = (uint8_t)(s >> 8);
    hdr[39] = (uint8_t)s;
    cr_assert_eq(pwrite(fd, hdr, 1024, 512), 1024);
    close(fd);
}

Test(vhd_chain, each_locator_kind_finds_the_parent)
{
    static const uint32_t kinds[3] = { 0x4d616358u, 0x57327275u,
                                       0x57326b75u };
    char sub[400], moved[300], name[32];
    uint8_t *model = calloc(1, 4 * MiB), *ours;
    xcp__vhd *v;
    int i;

    snprintf(sub, sizeof(sub), "%s/sub", dir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    create(P("base.vhd"), 4 * MiB, NULL);
    v = open_img(P("base.vhd"), 0);
    put(v, model, 0, 4 * MiB, 1);
    xcp__vhd_close(v);
    for (i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "sub/c%d.vhd", i);
        create(P(name), 0, P("base.vhd"));
        keep_locator(P(name), kinds[i], false);
        ours = read_all(P(name), 4 * MiB);
        assert_same(ours, model, 4 * MiB, name);
        free(ours);
    }
    /* Relative names survive moving the whole tree, the absolute one
     * does not. */
    snprintf(moved, sizeof(moved), "%s.moved", dir);
    cr_assert_eq(rename(dir, moved), 0);
    snprintf(sub, sizeof(sub), "%s/sub/c0.vhd", moved);
    v = open_img(sub, XCP__VHD_RDONLY);
    xcp__vhd_close(v);
    snprintf(sub, sizeof(sub), "%s/sub/c2.vhd", moved);
    cr_assert_eq(xcp__vhd_open(&v, sub, XCP__VHD_RDONLY, err, sizeof(err)),
                 -ENOENT, "%s", err);
    cr_assert_eq(rename(moved, dir), 0);
    free(model);
}

/* The bytes as the specification (and vhd-util) lay them out, read apart
 * from the library: the header's parent name in UTF-16BE, MacX a file://
 * URL, W2ru and W2ku the relative and absolute names in UTF-16LE with
 * backslashes; a bitmap's first sector is its top bit. */
Test(vhd_chain, locators_and_bitmaps_are_laid_out_as_the_spec_says)
{
    char want[600], got[600];
    uint8_t hdr[1024], raw[2048], bm[512];
    uint32_t code, len, e;
    size_t i, j;
    xcp__vhd *v;
    int fd;

    create(P("base.vhd"), 4 * MiB, NULL);
    cr_assert_eq(mkdir(P("sub"), 0755), 0);
    create(P("sub/c.vhd"), 0, P("base.vhd"));
    v = open_img(P("sub/c.vhd"), 0);
    put(v, NULL, 2 * MiB + 512, 512, 1);        /* block 1, sector 1 */
    xcp__vhd_close(v);
    fd = open(P("sub/c.vhd"), O_RDONLY);
    cr_assert_eq(pread(fd, hdr, 1024, 512), 1024);
    for (i = 0; i < 8; i++)
        cr_assert_eq(hdr[64 + 2 * i], 0, "UTF-16BE parent name");
    for (i = 0; i < 8; i++)
        got[i] = (char)hdr[64 + 2 * i + 1];
    got[8] = '\0';
    cr_assert_str_eq(got, "base.vhd");
    for (i = 0; i < 3; i++) {
        code = be32_(hdr + 576 + 24 * i);
        len = be32_(hdr + 576 + 24 * i + 8);
        cr_assert_leq(len, sizeof(raw));
        cr_assert_eq(pread(fd, raw, len, (off_t)be64_(hdr + 576 + 24 * i +
                                                      16)), (ssize_t)len);
        if (code == 0x4d616358u) {              /* MacX */
            snprintf(want, sizeof(want), "file://../base.vhd");
            memcpy(got, raw, len);
            got[len] = '\0';
        } else {
            if (code == 0x57327275u)            /* W2ru */
                snprintf(want, sizeof(want), "..\\base.vhd");
            else                                /* W2ku */
                snprintf(want, sizeof(want), "%s", P("base.vhd"));
            for (j = 0; want[j]; j++)
                if (want[j] == '/')
                    want[j] = '\\';
            for (j = 0; j < len / 2; j++) {
                cr_assert_eq(raw[2 * j + 1], 0, "UTF-16LE");
                got[j] = (char)raw[2 * j];
            }
            got[j] = '\0';
        }
        cr_assert_str_eq(got, want, "locator %zu (%08x)", i, code);
    }
    cr_assert_eq(pread(fd, raw, 8, 1536), 8);
    e = be32_(raw + 4);
    cr_assert_eq(be32_(raw), 0xffffffffu);
    cr_assert_eq(pread(fd, bm, 512, (off_t)e * 512), 512);
    cr_assert_eq(bm[0], 0x40, "sector 1 is bit 6 of byte 0: %02x", bm[0]);
    for (i = 1; i < 512; i++)
        cr_assert_eq(bm[i], 0);
    close(fd);
}

Test(vhd_chain, wrong_missing_and_unopened_parents)
{
    uint8_t buf[512];
    xcp__vhd *v;

    create(P("base.vhd"), 4 * MiB, NULL);
    create(P("top.vhd"), 0, P("base.vhd"));
    v = open_img(P("top.vhd"), XCP__VHD_NO_PARENT);
    cr_assert_eq(xcp__vhd_read(v, 0, buf, 512, err, sizeof(err)), -ENXIO);
    xcp__vhd_close(v);
    /* Another image under the parent's name: its unique id differs. */
    unlink(P("base.vhd"));
    create(P("base.vhd"), 4 * MiB, NULL);
    expect_open(P("top.vhd"), 0, -EBADMSG, "unique id");
    unlink(P("base.vhd"));
    expect_open(P("top.vhd"), 0, -ENOENT, "parent locator");
}

Test(vhd_chain, parent_loop_is_refused)
{
    xcp__vhd *v;

    create(P("a.vhd"), 4 * MiB, NULL);
    create(P("b.vhd"), 0, P("a.vhd"));
    v = open_img(P("a.vhd"), XCP__VHD_NO_PARENT);
    cr_assert_eq(xcp__vhd_set_parent(v, P("b.vhd"), err, sizeof(err)), 0,
                 "%s", err);
    xcp__vhd_close(v);
    expect_open(P("b.vhd"), 0, -ELOOP, "deeper");
}

Test(vhd_chain, fifo_as_parent_does_not_hang)
{
    create(P("base.vhd"), 4 * MiB, NULL);
    create(P("top.vhd"), 0, P("base.vhd"));
    unlink(P("base.vhd"));
    cr_assert_eq(mkfifo(P("base.vhd"), 0600), 0);
    expect_open(P("top.vhd"), 0, -ENOENT, "parent locator");
}

/* Coalesce as XAPI does it: commit mid into base, re-parent top onto
 * base, drop mid; top shows the same throughout. */
Test(vhd_chain, commit_and_reparent_keep_the_leaf_view)
{
    uint64_t size = 32 * MiB;
    uint8_t *model = chain3(size), *ours, *mid_model;
    xcp__vhd *mid, *base, *top;

    mid_model = read_all(P("mid.vhd"), size);
    mid = open_img(P("mid.vhd"), XCP__VHD_RDONLY | XCP__VHD_NO_PARENT);
    base = open_img(P("base.vhd"), 0);
    cr_assert_eq(xcp__vhd_commit(mid, base, err, sizeof(err)), 0, "%s", err);
    xcp__vhd_close(mid);
    xcp__vhd_close(base);
    assert_content(P("base.vhd"), mid_model, size);
    top = open_img(P("top.vhd"), 0);
    cr_assert_eq(xcp__vhd_set_parent(top, P("base.vhd"), err, sizeof(err)),
                 0, "%s", err);
    xcp__vhd_close(top);
    unlink(P("mid.vhd"));
    ours = read_all(P("top.vhd"), size);
    assert_same(ours, model, size, "top after coalesce");
    vhd_check(P("top.vhd"));
    free(ours);
    /* And commit the leaf too: base alone now shows the leaf. */
    top = open_img(P("top.vhd"), XCP__VHD_RDONLY);
    base = open_img(P("base.vhd"), 0);
    cr_assert_eq(xcp__vhd_commit(top, base, err, sizeof(err)), 0, "%s", err);
    xcp__vhd_close(top);
    xcp__vhd_close(base);
    assert_content(P("base.vhd"), model, size);
    free(mid_model);
    free(model);
}

Test(vhd_chain, set_parent_to_a_missing_file_changes_nothing)
{
    uint8_t a[1024], b[1024];
    xcp__vhd *v;
    int fd;

    create(P("base.vhd"), 4 * MiB, NULL);
    create(P("top.vhd"), 0, P("base.vhd"));
    fd = open(P("top.vhd"), O_RDONLY);
    cr_assert_eq(pread(fd, a, 1024, 512), 1024);
    v = open_img(P("top.vhd"), 0);
    cr_assert_eq(xcp__vhd_set_parent(v, P("nope.vhd"), err, sizeof(err)),
                 -ENOENT);
    xcp__vhd_close(v);
    cr_assert_eq(pread(fd, b, 1024, 512), 1024);
    close(fd);
    cr_assert_eq(memcmp(a, b, 1024), 0);
}

Test(vhd_chain, no_parent_makes_a_dynamic_disk)
{
    uint64_t size = 8 * MiB;
    uint8_t *model = calloc(1, size);
    xcp__vhd_info info;
    xcp__vhd *v;

    create(P("base.vhd"), size, NULL);
    v = open_img(P("base.vhd"), 0);
    put(v, NULL, 0, size, 1);
    xcp__vhd_close(v);
    create(P("top.vhd"), 0, P("base.vhd"));
    v = open_img(P("top.vhd"), 0);
    /* Whole sectors: a partial one would hold the parent's bytes too. */
    put(v, model, 3 * MiB + 512, 5120, 2);
    cr_assert_eq(xcp__vhd_set_parent(v, NULL, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_eq(xcp__vhd_get_info(v, &info, err, sizeof(err)), 0);
    cr_assert_eq(info.disk_type, XCP__VHD_DYNAMIC);
    cr_assert_not(info.has_parent);
    xcp__vhd_close(v);
    assert_content(P("top.vhd"), model, size);
    free(model);
}

Test(vhd_chain, copy_skips_zero_blocks)
{
    xcp__vhd_info info;
    xcp__vhd *v;
    uint8_t zero[4096] = { 0 };

    create(P("a.vhd"), 64 * MiB, NULL);
    v = open_img(P("a.vhd"), 0);
    put(v, NULL, 40 * MiB, 4096, 1);
    cr_assert_eq(xcp__vhd_write(v, 8 * MiB, zero, 4096, err, sizeof(err)),
                 0);
    cr_assert_eq(xcp__vhd_copy(v, P("b.vhd"), NULL, err, sizeof(err)), 0);
    xcp__vhd_close(v);
    cr_assert_eq(vhd_check(P("b.vhd")), 1, "only the data block is copied");
    v = open_img(P("b.vhd"), XCP__VHD_RDONLY);
    cr_assert_eq(xcp__vhd_get_info(v, &info, err, sizeof(err)), 0);
    cr_assert_lt(info.file_size, 3 * MiB);
    xcp__vhd_close(v);
}

/* ------------------------------------------------------------------ */

Test(vhd_resize, grow_within_reserved_room_keeps_data)
{
    xcp__vhd_create_opts o = { 0 };
    uint64_t size = 10 * MiB, big = 700 * MiB;
    uint8_t *model = calloc(1, big);
    xcp__vhd_info info;
    xcp__vhd *v;

    o.max_size = GiB;
    cr_assert_eq(xcp__vhd_create(P("a.vhd"), size, &o, err, sizeof(err)), 0);
    v = open_img(P("a.vhd"), 0);
    scatter(v, model, size, 10, 1);
    cr_assert_eq(xcp__vhd_get_info(v, &info, err, sizeof(err)), 0);
    cr_assert_eq(info.max_size, GiB);
    cr_assert_eq(xcp__vhd_resize(v, big, err, sizeof(err)), 0, "%s", err);
    put(v, model, big - 3 * MiB - 5, 3 * MiB + 5, 2);
    cr_assert_eq(xcp__vhd_resize(v, 5 * MiB, err, sizeof(err)), -ENOTSUP);
    cr_assert_eq(xcp__vhd_resize(v, XCP__VHD_MAX_SIZE + 1, err, sizeof(err)),
                 -EFBIG);
    cr_assert_not_null(strstr(err, "2040 GiB"), "%s", err);
    xcp__vhd_close(v);
    assert_content(P("a.vhd"), model, big);
    free(model);
}

/* The BAT's one sector holds 128 entries (256 MiB): growing further moves
 * the blocks and locators in its way to the end of the file. */
Test(vhd_resize, grow_past_the_room_moves_blocks_and_locators)
{
    uint64_t size = 20 * MiB, big = 600 * MiB;
    uint8_t *model = calloc(1, big), *base_model, *ours;
    xcp__vhd_info info;
    xcp__vhd *v;

    create(P("base.vhd"), size, NULL);
    v = open_img(P("base.vhd"), 0);
    scatter(v, model, size, 30, 1);
    cr_assert_eq(xcp__vhd_get_info(v, &info, err, sizeof(err)), 0);
    cr_assert_eq(info.max_size, 256 * MiB);
    cr_assert_eq(xcp__vhd_resize(v, 256 * MiB, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_eq(xcp__vhd_resize(v, big, err, sizeof(err)), 0, "%s", err);
    put(v, model, big - MiB - 1, MiB + 1, 2);
    xcp__vhd_close(v);
    assert_content(P("base.vhd"), model, big);
    /* A differencing disk: its locators lie right after the BAT. */
    base_model = model;
    model = malloc(big);
    memcpy(model, base_model, big);
    create(P("top.vhd"), 0, P("base.vhd"));
    v = open_img(P("top.vhd"), 0);
    scatter(v, model, big, 20, 3);
    cr_assert_eq(xcp__vhd_resize(v, 2 * big, err, sizeof(err)), 0, "%s",
                 err);
    xcp__vhd_close(v);
    vhd_check(P("top.vhd"));
    ours = read_all(P("top.vhd"), big);
    assert_same(ours, model, big, "the child after growing");
    free(ours);
    free(base_model);
    free(model);
}

Test(vhd_resize, empty_image_grows_its_bat_over_the_footer)
{
    uint64_t big = 300 * MiB;      /* past the 128 entries of one sector */
    uint8_t *model = calloc(1, big);
    xcp__vhd *v;

    create(P("a.vhd"), 10 * MiB, NULL);
    v = open_img(P("a.vhd"), 0);
    cr_assert_eq(xcp__vhd_resize(v, big, err, sizeof(err)), 0, "%s", err);
    put(v, model, big - 4096, 4096, 1);
    put(v, model, 0, 4096, 2);
    xcp__vhd_close(v);
    assert_content(P("a.vhd"), model, big);
    free(model);
}

Test(vhd_resize, qemu_image_grows)
{
    const char *img = P("q.vhd");
    uint8_t *model, *theirs;
    uint64_t size;
    xcp__vhd *v;

    cr_assert_eq(RUN(NULL, "qemu-img", "create", "-q", "-f", "vpc", "-o",
                     "subformat=dynamic", img, "100M"), 0);
    qemu_io("vpc", img, "write -P 0x33 0 1M");
    v = open_img(img, 0);
    size = xcp__vhd_virtual_size(v);
    cr_assert_eq(xcp__vhd_resize(v, 200 * MiB, err, sizeof(err)), 0, "%s",
                 err);
    model = calloc(1, 200 * MiB);
    theirs = qemu_read_all("vpc", img, size);
    memcpy(model, theirs, size);
    free(theirs);
    put(v, model, 199 * MiB, MiB, 1);
    xcp__vhd_close(v);
    assert_content(img, model, 200 * MiB);
    free(model);
}

/* ------------------------------------------------------------------ */

static const char *good(void)
{
    create(P("good.vhd"), 16 * MiB, NULL);
    return P("good.vhd");
}

static void patch_header_sum(const char *path)
{
    uint8_t hdr[1024];
    uint32_t s;
    int fd = open(path, O_RDONLY);

    cr_assert_eq(pread(fd, hdr, 1024, 512), 1024);
    close(fd);
    s = sum_(hdr, 1024, 36);
    patch32(path, 512 + 36, s);
}

/* Both footers patched the same way (and their checksums fixed). */
static void patch_footers32(const char *path, off_t field, uint32_t v)
{
    uint8_t f[512];
    struct stat st;
    int fd = open(path, O_RDONLY);

    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(pread(fd, f, 512, 0), 512);
    close(fd);
    f[field] = (uint8_t)(v >> 24);
    f[field + 1] = (uint8_t)(v >> 16);
    f[field + 2] = (uint8_t)(v >> 8);
    f[field + 3] = (uint8_t)v;
    memset(f + 64, 0, 4);
    v = sum_(f, 512, 64);
    f[64] = (uint8_t)(v >> 24);
    f[65] = (uint8_t)(v >> 16);
    f[66] = (uint8_t)(v >> 8);
    f[67] = (uint8_t)v;
    patch(path, 0, f, 512);
    patch(path, st.st_size - 512, f, 512);
}

Test(vhd_corrupt, not_a_vhd)
{
    uint8_t junk[4096];
    const char *img = P("junk");

    fill(junk, sizeof(junk), 1);
    close(open(P("empty"), O_WRONLY | O_CREAT, 0644));
    expect_open(P("empty"), 0, -EMEDIUMTYPE, "not a VHD");
    close(open(img, O_WRONLY | O_CREAT, 0644));
    patch(img, 0, junk, sizeof(junk));
    expect_open(img, 0, -EMEDIUMTYPE, "not a VHD");
}

Test(vhd_corrupt, bad_checksums)
{
    const char *img = good();
    struct stat st;

    cr_assert_eq(stat(img, &st), 0);
    patch32(img, 512 + 28, 9);                      /* header entries */
    expect_open(img, 0, -EBADMSG, "header checksum");
    unlink(img);
    img = good();
    patch32(img, st.st_size - 512 + 48, 7);         /* footer size */
    patch32(img, 48, 7);
    expect_open(img, 0, -EBADMSG, "footer checksum");
}

Test(vhd_corrupt, torn_footer_is_taken_from_the_copy_and_repaired)
{
    const char *img = good();
    uint8_t zero[512] = { 0 }, *model = calloc(1, 16 * MiB);
    xcp__vhd *v;
    struct stat st;

    v = open_img(img, 0);
    put(v, model, 5 * MiB, 8192, 1);
    xcp__vhd_close(v);
    /* A crash while the footer was appended: zeros at the end. */
    cr_assert_eq(stat(img, &st), 0);
    patch(img, st.st_size, zero, 512);
    v = open_img(img, XCP__VHD_RDONLY);
    xcp__vhd_close(v);
    v = open_img(img, 0);
    xcp__vhd_close(v);
    assert_content(img, model, 16 * MiB);
    /* Without a good copy it is refused. */
    patch(img, 0, zero, 512);
    patch(img, st.st_size - 512, zero, 512);
    expect_open(img, 0, -EMEDIUMTYPE, "not a VHD");
    free(model);
}

/* A crash while a block was being added, after the footer moved on and
 * before the BAT pointed at the block: the space is leaked, nothing else. */
Test(vhd_corrupt, crash_while_allocating_leaks_space_only)
{
    const char *img = good();
    uint8_t foot[512], *model = calloc(1, 16 * MiB);
    struct stat st;
    xcp__vhd *v;
    int fd;

    v = open_img(img, 0);
    put(v, model, 0, 4096, 1);
    xcp__vhd_close(v);
    cr_assert_eq(stat(img, &st), 0);
    fd = open(img, O_RDONLY);
    cr_assert_eq(pread(fd, foot, 512, st.st_size - 512), 512);
    close(fd);
    patch(img, st.st_size - 512 + 2 * MiB + 512, foot, 512);
    v = open_img(img, 0);
    put(v, model, 6 * MiB, 4096, 2);
    xcp__vhd_close(v);
    assert_content(img, model, 16 * MiB);
    free(model);
}

Test(vhd_corrupt, hostile_bat_entries)
{
    const char *img;
    struct stat st;
    xcp__vhd *v;

    img = good();
    patch32(img, 1536 + 4, 0x00ffffff);                  /* past the end */
    expect_open(img, 0, -EBADMSG, "block at sector");
    unlink(img);
    img = good();
    patch32(img, 1536 + 4, 1);                           /* in metadata */
    expect_open(img, 0, -EBADMSG, "metadata");
    unlink(img);
    img = good();
    v = open_img(img, 0);
    put(v, NULL, 0, 512, 1);
    put(v, NULL, 2 * MiB, 512, 1);
    xcp__vhd_close(v);
    cr_assert_eq(stat(img, &st), 0);
    /* entry 2 at entry 0's block + 1 sector: overlapping blocks */
    {
        uint8_t e[4];
        int fd = open(img, O_RDONLY);

        cr_assert_eq(pread(fd, e, 4, 1536), 4);
        close(fd);
        patch32(img, 1536 + 8, be32_(e) + 1);
    }
    expect_open(img, 0, -EBADMSG, "another block");
}

Test(vhd_corrupt, hostile_header_fields)
{
    const char *img;

    img = good();
    patch32(img, 512 + 28, 0x7fffffff);              /* max entries */
    patch_header_sum(img);
    expect_open(img, 0, -EBADMSG, "BAT");
    unlink(img);
    img = good();
    patch32(img, 512 + 28, 2);                       /* too few */
    patch_header_sum(img);
    expect_open(img, 0, -EBADMSG, "too small");
    unlink(img);
    img = good();
    patch32(img, 512 + 32, 3 * 1000 * 1000);         /* block size */
    patch_header_sum(img);
    expect_open(img, 0, -EBADMSG, "block size");
    unlink(img);
    img = good();
    patch64(img, 512 + 16, 1ull << 60);              /* BAT offset */
    patch_header_sum(img);
    expect_open(img, 0, -EBADMSG, "BAT");
    unlink(img);
    img = good();
    patch32(img, 512, 0);                            /* cookie */
    patch_header_sum(img);
    expect_open(img, 0, -EBADMSG, "dynamic disk header");
}

Test(vhd_corrupt, hostile_footer_fields)
{
    const char *img;

    img = good();
    patch_footers32(img, 60, 7);                     /* disk type */
    expect_open(img, 0, -EBADMSG, "disk type");
    unlink(img);
    img = good();
    patch_footers32(img, 16 + 4, 0x10000000);        /* header offset */
    expect_open(img, 0, -EBADMSG, "header offset");
    unlink(img);
    img = good();
    patch_footers32(img, 48 + 4, 1000);              /* odd size */
    expect_open(img, 0, -EBADMSG, "virtual size");
}

Test(vhd_corrupt, hostile_locators)
{
    uint8_t buf[512];
    xcp__vhd *v;

    create(P("base.vhd"), 4 * MiB, NULL);
    create(P("top.vhd"), 0, P("base.vhd"));
    patch64(P("top.vhd"), 512 + 576 + 16, 1ull << 50);
    patch_header_sum(P("top.vhd"));
    expect_open(P("top.vhd"), 0, -EBADMSG, "locator");
    unlink(P("top.vhd"));
    create(P("top.vhd"), 0, P("base.vhd"));
    patch32(P("top.vhd"), 512 + 576 + 8, 1u << 30);     /* data length */
    patch_header_sum(P("top.vhd"));
    expect_open(P("top.vhd"), 0, -EBADMSG, "locator");
    /* Garbage names lead nowhere: no crash, -ENOENT. */
    unlink(P("top.vhd"));
    create(P("top.vhd"), 0, P("base.vhd"));
    fill(buf, sizeof(buf), 3);
    v = open_img(P("top.vhd"), XCP__VHD_NO_PARENT);
    xcp__vhd_close(v);
    {
        uint8_t hdr[1024];
        int fd = open(P("top.vhd"), O_RDONLY);
        size_t i;

        cr_assert_eq(pread(fd, hdr, 1024, 512), 1024);
        close(fd);
        for (i = 0; i < 3; i++)
            patch(P("top.vhd"), (off_t)be64_(hdr + 576 + 24 * i + 16), buf,
                  be32_(hdr + 576 + 24 * i + 8));
        patch(P("top.vhd"), 512 + 64, buf, 512);
        patch_header_sum(P("top.vhd"));
    }
    expect_open(P("top.vhd"), 0, -ENOENT, "parent locator");
}

/* ------------------------------------------------------------------ */
/* A delta as /export_raw_vdi?base= streams it                         */

static int serve_pattern(void *ctx, uint64_t offset, void *buf, size_t len)
{
    memcpy(buf, (const uint8_t *)ctx + offset, len);
    return 0;
}

/* Make the header's parent name lead nowhere ("gone.vhd"), with a good
 * checksum again: the parent is then found through the locators alone. */
static void hide_parent_name(const char *path)
{
    uint8_t h[1024];
    uint32_t sum = 0;
    const char *gone = "gone.vhd";
    int fd = open(path, O_RDWR), i;

    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, h, sizeof(h), 512), (ssize_t)sizeof(h));
    memset(h + 64, 0, 512);                 /* parent unicode name */
    for (i = 0; gone[i]; i++)
        h[64 + 2 * i + 1] = (uint8_t)gone[i]; /* UTF-16 big-endian */
    memset(h + 36, 0, 4);                   /* checksum */
    for (i = 0; i < (int)sizeof(h); i++)
        sum += h[i];
    sum = ~sum;
    h[36] = (uint8_t)(sum >> 24);
    h[37] = (uint8_t)(sum >> 16);
    h[38] = (uint8_t)(sum >> 8);
    h[39] = (uint8_t)sum;
    cr_assert_eq(pwrite(fd, h, sizeof(h), 512), (ssize_t)sizeof(h));
    cr_assert_eq(close(fd), 0);
}

/* The differencing VHD of the stream producer (vhd_stream.c), written to
 * a file beside its parent, opens as a chain: its parent locators
 * (checked against the file by the strict open) lead to the parent, even
 * with the header's parent name leading nowhere (vhd-util and tapdisk
 * follow the locators), and
 * the data reads through: the delta's block over the parent's data. */
Test(vhd_chain, streamed_delta_opens_beside_its_parent)
{
    uint64_t size = 8 * MiB, len, pos = 0;
    uint8_t *model = calloc(1, size), *delta = calloc(1, size), *ours;
    uint8_t *buf = malloc(MiB);
    xcp__vhd_out *o = NULL;
    xcp__vhd_info info;
    xcp__vhd *v;
    size_t got;
    FILE *f;

    create(P("base.vhd"), size, NULL);
    v = open_img(P("base.vhd"), 0);
    put(v, model, 0, 6 * MiB, 7);
    cr_assert_eq(xcp__vhd_get_info(v, &info, err, sizeof(err)), 0);
    xcp__vhd_close(v);
    fill(delta + 2 * MiB, 2 * MiB, 9);
    memcpy(model + 2 * MiB, delta + 2 * MiB, 2 * MiB);
    cr_assert_eq(xcp__vhd_out_new(&o, size, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(xcp__vhd_out_parent(o, info.uuid, "base.vhd", err,
                                     sizeof(err)), 0, "%s", err);
    xcp__vhd_out_mark(o, 2 * MiB, 2 * MiB);
    len = xcp__vhd_out_length(o);
    cr_assert_not_null(f = fopen(P("delta.vhd"), "wb"));
    while (pos < len) {
        cr_assert_eq(xcp__vhd_out_read(o, pos, buf, MiB, &got, serve_pattern,
                                       delta, err, sizeof(err)), 0, "%s",
                     err);
        cr_assert_eq(fwrite(buf, 1, got, f), got);
        pos += got;
    }
    cr_assert_eq(fclose(f), 0);
    xcp__vhd_out_free(o);
    hide_parent_name(P("delta.vhd"));
    vhd_check(P("delta.vhd"));
    v = open_img(P("delta.vhd"), XCP__VHD_RDONLY);
    cr_assert_eq(xcp__vhd_get_info(v, &info, err, sizeof(err)), 0);
    cr_assert_eq(info.disk_type, XCP__VHD_DIFFERENCING);
    cr_assert(info.has_parent);
    cr_assert_str_eq(info.parent, P("base.vhd"));
    xcp__vhd_close(v);
    ours = read_all(P("delta.vhd"), size);
    assert_same(ours, model, size, "base + streamed delta");
    free(ours);
    free(buf);
    free(delta);
    free(model);
}
