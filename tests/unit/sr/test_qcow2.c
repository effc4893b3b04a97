/*
 * test_qcow2.c - the qcow2 image library, checked against qemu-img/qemu-io.
 *
 * QEMU is the reference: images we write must pass `qemu-img check` with
 * no errors and no leaks and show the same bytes through `qemu-img
 * convert`, and images QEMU writes must read back the same through us.
 * Each test works in its own temporary directory.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* nftw */
#endif
#include "image_test.h"

#include "qcow2.h"
#include "qcow2_int.h"    /* a writer killed mid-allocation */

static void create(const char *path, uint64_t size, unsigned cb,
                   const char *backing, const char *bfmt)
{
    xcp__qcow2_create_opts o = { 0 };
    int ret;

    o.cluster_bits = cb;
    o.backing_file = backing;
    o.backing_format = bfmt;
    ret = xcp__qcow2_create(path, size, &o, err, sizeof(err));
    cr_assert_eq(ret, 0, "create %s: %d %s", path, ret, err);
}

static xcp__qcow2 *open_img(const char *path, unsigned flags)
{
    xcp__qcow2 *q = NULL;
    int ret = xcp__qcow2_open(&q, path, NULL, flags, err, sizeof(err));

    cr_assert_eq(ret, 0, "open %s: %d %s", path, ret, err);
    return q;
}

/* Write buf at off both into the image and into the model. */
static void put(xcp__qcow2 *q, uint8_t *model, uint64_t off, size_t len,
                uint32_t seed)
{
    uint8_t *buf = malloc(len);
    int ret;

    fill(buf, len, seed);
    ret = xcp__qcow2_write(q, off, buf, len, err, sizeof(err));
    cr_assert_eq(ret, 0, "write %llu+%zu: %d %s", (unsigned long long)off,
                 len, ret, err);
    if (model)
        memcpy(model + off, buf, len);
    free(buf);
}

/* Our view and QEMU's view of path must both equal model. */
static void assert_content(const char *path, const uint8_t *model,
                           uint64_t size)
{
    uint8_t *ours = malloc(size + 1), *theirs;
    xcp__qcow2 *q = open_img(path, XCP__QCOW2_RDONLY);
    uint64_t i;
    int ret;

    ret = xcp__qcow2_read(q, 0, ours, size, err, sizeof(err));
    cr_assert_eq(ret, 0, "read %s: %s", path, err);
    xcp__qcow2_close(q);
    theirs = qemu_read_all(NULL, path, size);
    for (i = 0; i < size && ours[i] == model[i]; i++)
        ;
    cr_assert_eq(i, size, "%s: our read differs from model at %llu", path,
                 (unsigned long long)i);
    for (i = 0; i < size && theirs[i] == model[i]; i++)
        ;
    cr_assert_eq(i, size, "%s: qemu's read differs from model at %llu", path,
                 (unsigned long long)i);
    free(ours);
    free(theirs);
}


static void expect_open(const char *path, unsigned flags, int code,
                        const char *needle)
{
    xcp__qcow2 *q = NULL;
    int ret;

    err[0] = '\0';
    ret = xcp__qcow2_open(&q, path, NULL, flags, err, sizeof(err));
    assert_open_refused(path, ret, q, code, needle);
}

/* ------------------------------------------------------------------ */

TestSuite(qcow2_create, .init = setup, .fini = teardown);
TestSuite(qcow2_io, .init = setup, .fini = teardown);
TestSuite(qcow2_chain, .init = setup, .fini = teardown);
TestSuite(qcow2_resize, .init = setup, .fini = teardown);
TestSuite(qcow2_corrupt, .init = setup, .fini = teardown);
TestSuite(qcow2_crash, .init = setup, .fini = teardown);

Test(qcow2_create, new_image_passes_qemu_check_and_info)
{
    const char *path = P("a.qcow2");
    xcp__qcow2_info info;
    xcp__qcow2 *q;
    char *json;

    create(path, 1 * GiB, 0, NULL, NULL);
    assert_qemu_check(path);
    json = qemu_info(path);
    cr_expect_eq(json_num(json, "virtual-size"), 1 * GiB);
    cr_expect_eq(json_num(json, "cluster-size"), 64 * KiB);
    cr_expect_str_eq(json_str(json, "format"), "qcow2");
    cr_expect_str_eq(json_str(json, "compat"), "1.1");
    cr_expect_str_eq(json_str(json, "backing-filename"), "");
    free(json);
    q = open_img(path, XCP__QCOW2_RDONLY);
    cr_assert_eq(xcp__qcow2_get_info(q, &info, err, sizeof(err)), 0);
    cr_expect_eq(info.virtual_size, 1 * GiB);
    cr_expect_eq(info.cluster_size, 64 * KiB);
    cr_expect_eq(info.version, 3);
    cr_expect_eq(info.refcount_bits, 16);
    cr_expect_not(info.has_backing);
    /* Sparse: a few metadata clusters, not the virtual size. */
    cr_expect_lt(info.allocated_bytes, 1 * MiB);
    xcp__qcow2_close(q);
}

Test(qcow2_create, existing_file_is_not_overwritten)
{
    const char *path = P("a.qcow2");
    int ret;

    create(path, 1 * MiB, 0, NULL, NULL);
    ret = xcp__qcow2_create(path, 1 * MiB, NULL, err, sizeof(err));
    cr_assert_eq(ret, -EEXIST, "%d %s", ret, err);
}

Test(qcow2_create, cluster_sizes_and_odd_sizes_pass_check)
{
    static const struct {
        unsigned cb;
        uint64_t size, expect;
    } cases[] = {
        { 9, 0, 0 },
        { 9, 1, 512 },
        { 9, 123456789, 123457024 },
        /* 4 MiB L1 table: refcount blocks must cover many clusters. */
        { 9, 16 * GiB, 16 * GiB },
        { 12, 5 * GiB + 512, 5 * GiB + 512 },
        { 16, 3 * 1024 * GiB, 3 * 1024 * GiB },
        { 21, 64 * 1024 * GiB, 64 * 1024 * GiB },
    };
    char name[64], *json;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(name, sizeof(name), "c%zu.qcow2", i);
        create(P(name), cases[i].size, cases[i].cb, NULL, NULL);
        assert_qemu_check(P(name));
        json = qemu_info(P(name));
        cr_expect_eq(json_num(json, "virtual-size"), cases[i].expect,
                     "case %zu", i);
        cr_expect_eq(json_num(json, "cluster-size"), 1u << cases[i].cb,
                     "case %zu", i);
        free(json);
    }
}

Test(qcow2_create, bad_arguments_are_refused)
{
    xcp__qcow2_create_opts o = { 0 };
    char name[1100];

    o.cluster_bits = 8;
    cr_expect_eq(xcp__qcow2_create(P("a"), MiB, &o, err, sizeof(err)),
                 -EINVAL);
    o.cluster_bits = 9;
    cr_expect_eq(xcp__qcow2_create(P("b"), 1ull << 50, &o, err, sizeof(err)),
                 -EFBIG);
    o.cluster_bits = 0;
    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    o.backing_file = name;
    cr_expect_eq(xcp__qcow2_create(P("c"), MiB, &o, err, sizeof(err)),
                 -EINVAL);
    /* The name fits the format's limit but not a 512-byte cluster. */
    name[900] = '\0';
    o.cluster_bits = 9;
    cr_expect_eq(xcp__qcow2_create(P("d"), MiB, &o, err, sizeof(err)),
                 -ENAMETOOLONG);
    cr_expect_neq(access(P("d"), F_OK), 0, "failed create left a file");
    o.backing_file = NULL;
    o.format = "vmdk";
    cr_expect_eq(xcp__qcow2_create(P("e"), MiB, &o, err, sizeof(err)),
                 -ENOTSUP);
}

Test(qcow2_create, backing_file_is_recorded_for_qemu)
{
    char *json;

    create(P("base.qcow2"), 10 * MiB, 0, NULL, NULL);
    create(P("top.qcow2"), 20 * MiB, 0, "base.qcow2", "qcow2");
    assert_qemu_check(P("top.qcow2"));
    json = qemu_info(P("top.qcow2"));
    cr_expect_eq(json_num(json, "virtual-size"), 20 * MiB);
    cr_expect_str_eq(json_str(json, "backing-filename"), "base.qcow2");
    cr_expect_str_eq(json_str(json, "backing-filename-format"), "qcow2");
    free(json);
}

Test(qcow2_io, writes_match_qemu_convert)
{
    /* 4 KiB clusters: an L2 table maps 2 MiB, so L2 boundaries are
     * crossed too. */
    const uint64_t size = 9 * MiB + 512;
    const char *path = P("a.qcow2");
    uint8_t *model = calloc(1, size);
    xcp__qcow2 *q;

    create(path, size, 12, NULL, NULL);
    q = open_img(path, 0);
    put(q, model, 0, 1, 1);                         /* one byte */
    put(q, model, 4095, 2, 2);                      /* across clusters */
    put(q, model, 10000, 3 * 4096, 3);              /* unaligned run */
    put(q, model, 2 * MiB - 100, 300, 4);           /* across L2 tables */
    put(q, model, 4 * MiB, 1 * MiB, 5);             /* whole clusters */
    put(q, model, 4 * MiB + 777, 5000, 6);          /* overwrite */
    put(q, model, size - 700, 700, 7);              /* the very end */
    cr_assert_eq(xcp__qcow2_close(q), 0);
    assert_qemu_check(path);
    assert_content(path, model, size);
    free(model);
}

Test(qcow2_io, reading_past_the_end_is_refused)
{
    const char *path = P("a.qcow2");
    uint8_t b[16];
    xcp__qcow2 *q;

    create(path, 1 * MiB, 0, NULL, NULL);
    q = open_img(path, 0);
    cr_expect_eq(xcp__qcow2_read(q, MiB - 8, b, 16, err, sizeof(err)),
                 -EINVAL);
    cr_expect_eq(xcp__qcow2_write(q, UINT64_MAX - 4, b, 16, err,
                                  sizeof(err)), -EINVAL);
    xcp__qcow2_close(q);
    q = open_img(path, XCP__QCOW2_RDONLY);
    cr_expect_eq(xcp__qcow2_write(q, 0, b, 16, err, sizeof(err)), -EROFS);
    xcp__qcow2_close(q);
}

Test(qcow2_io, refcount_table_growth_keeps_image_clean)
{
    /* 512-byte clusters: a refcount block covers 128 KiB and the first
     * refcount table 8 MiB, so this writes through several table moves. */
    const uint64_t size = 64 * MiB;
    const char *path = P("small.qcow2");
    uint8_t *model = calloc(1, size);
    xcp__qcow2 *q;
    int i;

    create(path, size, 9, NULL, NULL);
    q = open_img(path, 0);
    for (i = 0; i < 24; i++)
        put(q, model, (uint64_t)i * 2 * MiB + (uint64_t)i * 1000,
            1 * MiB + 3, 100 + i);
    cr_assert_eq(xcp__qcow2_close(q), 0);
    assert_qemu_check(path);
    assert_content(path, model, size);
    free(model);
}

/* Write some data with qemu-io, zero clusters (allocated and not) too. */
static void qemu_io_writes(const char *path)
{
    cr_assert_eq(RUN(NULL, "qemu-io", "-f", "qcow2",
                     "-c", "write -P 0xab 0 64k",
                     "-c", "write -P 0xcd 100000 5000",
                     "-c", "write -P 0x11 1M 64k",
                     "-c", "write -z 1M 64k",
                     "-c", "write -z 3M 128k",
                     "-c", "write -P 0x77 8388000 608", path), 0,
                 "qemu-io on %s", path);
}

Test(qcow2_io, reads_images_written_by_qemu)
{
    static const char *const variants[] = {
        "compat=1.1", "compat=0.10", "refcount_bits=1", "refcount_bits=64",
        "cluster_size=512", "cluster_size=2M",
    };
    const uint64_t size = 8 * MiB;
    uint8_t *ours = malloc(size), *theirs;
    char name[32];
    xcp__qcow2 *q;
    size_t i;

    for (i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        snprintf(name, sizeof(name), "q%zu.qcow2", i);
        cr_assert_eq(RUN(NULL, "qemu-img", "create", "-q", "-f", "qcow2",
                         "-o", variants[i], P(name), "8M"), 0);
        qemu_io_writes(P(name));
        theirs = qemu_read_all(NULL, P(name), size);
        q = open_img(P(name), XCP__QCOW2_RDONLY);
        cr_assert_eq(xcp__qcow2_read(q, 0, ours, size, err, sizeof(err)), 0,
                     "%s: %s", variants[i], err);
        xcp__qcow2_close(q);
        cr_expect_eq(memcmp(ours, theirs, size), 0, "%s differs",
                     variants[i]);
        free(theirs);
    }
    free(ours);
}

Test(qcow2_io, writes_into_qemu_images_keep_them_clean)
{
    static const char *const variants[] = {
        "compat=1.1", "compat=0.10", "refcount_bits=1", "refcount_bits=2",
        "refcount_bits=64", "cluster_size=512",
    };
    const uint64_t size = 8 * MiB;
    uint8_t *model;
    char name[32];
    xcp__qcow2 *q;
    size_t i;

    for (i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        snprintf(name, sizeof(name), "q%zu.qcow2", i);
        cr_assert_eq(RUN(NULL, "qemu-img", "create", "-q", "-f", "qcow2",
                         "-o", variants[i], P(name), "8M"), 0);
        qemu_io_writes(P(name));
        model = qemu_read_all(NULL, P(name), size);
        q = open_img(P(name), 0);
        put(q, model, 60000, 10000, 1);         /* into a data cluster */
        put(q, model, 1 * MiB + 5, 10, 2);      /* into a zero cluster */
        put(q, model, 3 * MiB + 70000, 100, 3); /* into a plain zero */
        put(q, model, 5 * MiB, 1 * MiB, 4);     /* fresh clusters */
        cr_assert_eq(xcp__qcow2_close(q), 0);
        assert_qemu_check(P(name));
        assert_content(P(name), model, size);
        free(model);
    }
}

Test(qcow2_io, compressed_clusters_are_refused_cleanly)
{
    uint8_t b[512];
    xcp__qcow2 *q;

    cr_assert_eq(RUN(NULL, "qemu-img", "create", "-q", "-f", "qcow2",
                     P("src.qcow2"), "1M"), 0);
    cr_assert_eq(RUN(NULL, "qemu-io", "-f", "qcow2", "-c",
                     "write -P 0x41 0 64k", P("src.qcow2")), 0);
    cr_assert_eq(RUN(NULL, "qemu-img", "convert", "-c", "-O", "qcow2",
                     P("src.qcow2"), P("c.qcow2")), 0);
    q = open_img(P("c.qcow2"), XCP__QCOW2_RDONLY);
    cr_expect_eq(xcp__qcow2_read(q, 0, b, sizeof(b), err, sizeof(err)),
                 -ENOTSUP);
    cr_expect_not_null(strstr(err, "compressed"), "%s", err);
    /* Unallocated parts still read. */
    cr_expect_eq(xcp__qcow2_read(q, 512 * KiB, b, sizeof(b), err,
                                 sizeof(err)), 0);
    xcp__qcow2_close(q);
}

Test(qcow2_io, raw_images_read_and_write)
{
    xcp__qcow2_create_opts o = { .format = "raw" };
    uint8_t *model = calloc(1, MiB);
    xcp__qcow2_info info;
    xcp__qcow2 *q = NULL;

    cr_assert_eq(xcp__qcow2_create(P("a.raw"), MiB, &o, err, sizeof(err)), 0);
    cr_assert_eq(xcp__qcow2_open(&q, P("a.raw"), "raw", 0, err, sizeof(err)),
                 0, "%s", err);
    put(q, model, 1000, 5000, 9);
    cr_assert_eq(xcp__qcow2_get_info(q, &info, err, sizeof(err)), 0);
    cr_expect_str_eq(info.format, "raw");
    cr_expect_eq(info.virtual_size, MiB);
    cr_expect_eq(xcp__qcow2_resize(q, 2 * MiB, err, sizeof(err)), 0);
    cr_expect_eq(xcp__qcow2_virtual_size(q), 2 * MiB);
    xcp__qcow2_close(q);
    cr_assert_eq(RUN(NULL, "qemu-img", "compare", "-q", "-f", "raw", "-F",
                     "raw", P("a.raw"), P("a.raw")), 0);
    free(model);
}

Test(qcow2_chain, partial_write_copies_the_rest_from_backing)
{
    const uint64_t size = 4 * MiB;
    uint8_t *model = calloc(1, size);
    xcp__qcow2 *q;

    create(P("base.qcow2"), 2 * MiB, 0, NULL, NULL);
    q = open_img(P("base.qcow2"), 0);
    put(q, model, 0, 2 * MiB, 1);
    xcp__qcow2_close(q);
    /* The overlay is bigger than its base: the tail reads zeros. */
    create(P("top.qcow2"), size, 0, "base.qcow2", "qcow2");
    q = open_img(P("top.qcow2"), 0);
    put(q, model, 70000, 100, 2);
    put(q, model, 2 * MiB - 50, 100, 3);            /* across base's end */
    cr_assert_eq(xcp__qcow2_close(q), 0);
    assert_qemu_check(P("top.qcow2"));
    assert_content(P("top.qcow2"), model, size);
    /* The base is untouched. */
    memset(model, 0, size);
    fill(model, 2 * MiB, 1);
    assert_content(P("base.qcow2"), model, 2 * MiB);
    free(model);
}

Test(qcow2_chain, three_levels_and_a_raw_base_read_through)
{
    const uint64_t size = 2 * MiB;
    xcp__qcow2_create_opts o = { .format = "raw" };
    uint8_t *model = calloc(1, size);
    xcp__qcow2 *q = NULL;

    cr_assert_eq(xcp__qcow2_create(P("base.raw"), size, &o, err,
                                   sizeof(err)), 0);
    cr_assert_eq(xcp__qcow2_open(&q, P("base.raw"), "raw", 0, err,
                                 sizeof(err)), 0);
    put(q, model, 0, 300000, 1);
    xcp__qcow2_close(q);
    create(P("mid.qcow2"), size, 0, "base.raw", "raw");
    q = open_img(P("mid.qcow2"), 0);
    put(q, model, 100000, 100000, 2);
    xcp__qcow2_close(q);
    create(P("top.qcow2"), size, 16, "mid.qcow2", NULL);
    q = open_img(P("top.qcow2"), 0);
    put(q, model, 150000, 10, 3);
    xcp__qcow2_close(q);
    assert_qemu_check(P("top.qcow2"));
    assert_content(P("top.qcow2"), model, size);
    free(model);
}

Test(qcow2_chain, metadata_only_handle_refuses_backing_reads)
{
    uint8_t b[16];
    xcp__qcow2 *q;

    create(P("base.qcow2"), MiB, 0, NULL, NULL);
    create(P("top.qcow2"), MiB, 0, "base.qcow2", NULL);
    q = open_img(P("top.qcow2"), XCP__QCOW2_RDONLY | XCP__QCOW2_NO_BACKING);
    cr_expect_eq(xcp__qcow2_read(q, 0, b, sizeof(b), err, sizeof(err)),
                 -ENXIO);
    xcp__qcow2_close(q);
}

Test(qcow2_chain, backing_loop_is_refused)
{
    create(P("self.qcow2"), MiB, 0, "self.qcow2", NULL);
    expect_open(P("self.qcow2"), XCP__QCOW2_RDONLY, -ELOOP, "chain");
}

Test(qcow2_chain, fifo_as_backing_file_does_not_hang)
{
    cr_assert_eq(mkfifo(P("fifo"), 0600), 0);
    create(P("top.qcow2"), MiB, 0, "fifo", NULL);
    expect_open(P("top.qcow2"), XCP__QCOW2_RDONLY, -EINVAL,
                "not a regular file");
}

Test(qcow2_chain, missing_backing_file_is_named)
{
    create(P("top.qcow2"), MiB, 0, "gone.qcow2", NULL);
    expect_open(P("top.qcow2"), XCP__QCOW2_RDONLY, -ENOENT, "gone.qcow2");
}

Test(qcow2_chain, full_copy_matches_chain_and_skips_zero_clusters)
{
    const uint64_t size = 1 * GiB;
    uint8_t *model = calloc(1, 4 * MiB), zeros[65536] = { 0 };
    xcp__qcow2 *q;
    char *out = NULL;

    create(P("base.qcow2"), size, 0, NULL, NULL);
    q = open_img(P("base.qcow2"), 0);
    put(q, model, 0, 3 * 65536, 1);                 /* 3 clusters */
    /* An explicitly written zero cluster must not be copied. */
    cr_assert_eq(xcp__qcow2_write(q, 5 * 65536, zeros, 65536, err,
                                  sizeof(err)), 0);
    xcp__qcow2_close(q);
    create(P("top.qcow2"), size, 0, "base.qcow2", NULL);
    q = open_img(P("top.qcow2"), 0);
    put(q, model, 3 * MiB, 100, 2);                 /* 1 more cluster */
    put(q, model, 65536 + 10, 10, 3);               /* already counted */
    cr_assert_eq(xcp__qcow2_copy(q, P("flat.qcow2"), NULL, err,
                                 sizeof(err)), 0, "copy: %s", err);
    xcp__qcow2_close(q);
    assert_qemu_check(P("flat.qcow2"));
    cr_assert_eq(RUN(NULL, "qemu-img", "compare", "-q", P("flat.qcow2"),
                     P("top.qcow2")), 0, "flat copy differs from chain");
    cr_assert_eq(RUN(&out, "qemu-img", "info", "--output=json",
                     P("flat.qcow2")), 0);
    cr_expect_str_eq(json_str(out, "backing-filename"), "");
    free(out);
    cr_assert_eq(RUN(&out, "qemu-img", "check", "--output=json",
                     P("flat.qcow2")), 0);
    cr_expect_eq(json_num(out, "allocated-clusters"), 4, "%s", out);
    free(out);
    free(model);
}

Test(qcow2_chain, rebase_points_at_the_new_backing_file)
{
    uint8_t *model = calloc(1, MiB);
    xcp__qcow2 *q;
    char *json;

    create(P("base1.qcow2"), MiB, 0, NULL, NULL);
    q = open_img(P("base1.qcow2"), 0);
    put(q, model, 0, MiB, 1);
    xcp__qcow2_close(q);
    cr_assert_eq(RUN(NULL, "cp", P("base1.qcow2"), P("base2.qcow2")), 0);
    create(P("top.qcow2"), MiB, 0, "base1.qcow2", NULL);
    q = open_img(P("top.qcow2"), 0);
    put(q, model, 1000, 10, 2);
    /* A bad name fails and changes nothing. */
    cr_expect_eq(xcp__qcow2_set_backing(q, "nope.qcow2", "qcow2", err,
                                        sizeof(err)), -ENOENT);
    cr_assert_eq(xcp__qcow2_set_backing(q, "base2.qcow2", "qcow2", err,
                                        sizeof(err)), 0, "%s", err);
    xcp__qcow2_close(q);
    unlink(P("base1.qcow2"));
    assert_qemu_check(P("top.qcow2"));
    json = qemu_info(P("top.qcow2"));
    cr_expect_str_eq(json_str(json, "backing-filename"), "base2.qcow2");
    free(json);
    assert_content(P("top.qcow2"), model, MiB);

    /* Dropping the backing file leaves only what top holds. */
    q = open_img(P("top.qcow2"), 0);
    cr_assert_eq(xcp__qcow2_set_backing(q, NULL, NULL, err, sizeof(err)), 0);
    xcp__qcow2_close(q);
    json = qemu_info(P("top.qcow2"));
    cr_expect_str_eq(json_str(json, "backing-filename"), "");
    free(json);
    assert_qemu_check(P("top.qcow2"));
    free(model);
}

Test(qcow2_chain, commit_makes_parent_show_child_content)
{
    const uint64_t size = 2 * MiB;
    uint8_t *model = calloc(1, 3 * MiB), zeros[65536] = { 0 };
    xcp__qcow2 *parent, *child;

    create(P("base.qcow2"), size, 0, NULL, NULL);
    parent = open_img(P("base.qcow2"), 0);
    put(parent, model, 0, size, 1);
    xcp__qcow2_close(parent);
    create(P("top.qcow2"), 3 * MiB, 0, "base.qcow2", NULL);
    child = open_img(P("top.qcow2"), 0);
    put(child, model, 5000, 70000, 2);
    put(child, model, 2 * MiB + 10, 10, 3);
    cr_assert_eq(xcp__qcow2_write(child, MiB, zeros, 65536, err,
                                  sizeof(err)), 0);
    memset(model + MiB, 0, 65536);
    xcp__qcow2_close(child);
    parent = open_img(P("base.qcow2"), 0);
    child = open_img(P("top.qcow2"),
                     XCP__QCOW2_RDONLY | XCP__QCOW2_NO_BACKING);
    cr_assert_eq(xcp__qcow2_commit(child, parent, err, sizeof(err)), 0,
                 "%s", err);
    xcp__qcow2_close(child);
    xcp__qcow2_close(parent);
    assert_qemu_check(P("base.qcow2"));
    assert_content(P("base.qcow2"), model, 3 * MiB);
    assert_content(P("top.qcow2"), model, 3 * MiB);
    free(model);
}

Test(qcow2_resize, grow_moves_l1_and_keeps_data)
{
    uint8_t *model = calloc(1, 100 * MiB);
    xcp__qcow2 *q;
    char *json;

    /* 512-byte clusters: 1 MiB fits one L1 cluster, 100 MiB does not. */
    create(P("a.qcow2"), MiB, 9, NULL, NULL);
    q = open_img(P("a.qcow2"), 0);
    put(q, model, 0, MiB, 1);
    cr_assert_eq(xcp__qcow2_resize(q, 100 * MiB, err, sizeof(err)), 0, "%s",
                 err);
    put(q, model, 100 * MiB - 1000, 1000, 2);
    xcp__qcow2_close(q);
    assert_qemu_check(P("a.qcow2"));
    json = qemu_info(P("a.qcow2"));
    cr_expect_eq(json_num(json, "virtual-size"), 100 * MiB);
    free(json);
    assert_content(P("a.qcow2"), model, 100 * MiB);
    free(model);
}

Test(qcow2_resize, grow_qemu_image_with_partial_l1_cluster)
{
    uint8_t b[4096];
    xcp__qcow2 *q;

    /* QEMU's file ends right after its few L1 entries. */
    cr_assert_eq(RUN(NULL, "qemu-img", "create", "-q", "-f", "qcow2",
                     P("q.qcow2"), "64M"), 0);
    q = open_img(P("q.qcow2"), 0);
    cr_assert_eq(xcp__qcow2_resize(q, 3 * GiB, err, sizeof(err)), 0, "%s",
                 err);
    memset(b, 0x5a, sizeof(b));
    cr_assert_eq(xcp__qcow2_write(q, 3 * GiB - 4096, b, 4096, err,
                                  sizeof(err)), 0, "%s", err);
    xcp__qcow2_close(q);
    assert_qemu_check(P("q.qcow2"));
    /* qemu-io exits 1 when the pattern does not match. */
    cr_expect_eq(RUN(NULL, "qemu-io", "-f", "qcow2", "-c",
                     "read -P 0x5a 3145724k 4k", P("q.qcow2")), 0);
    cr_expect_eq(RUN(NULL, "qemu-io", "-f", "qcow2", "-c",
                     "read -P 0 3145720k 4k", P("q.qcow2")), 0);
}

Test(qcow2_resize, shrink_is_refused)
{
    xcp__qcow2 *q;

    create(P("a.qcow2"), 10 * MiB, 0, NULL, NULL);
    q = open_img(P("a.qcow2"), 0);
    cr_expect_eq(xcp__qcow2_resize(q, 5 * MiB, err, sizeof(err)), -ENOTSUP);
    cr_expect_not_null(strstr(err, "shrinking"), "%s", err);
    cr_expect_eq(xcp__qcow2_virtual_size(q), 10 * MiB);
    cr_expect_eq(xcp__qcow2_resize(q, 10 * MiB, err, sizeof(err)), 0);
    xcp__qcow2_close(q);
}

Test(qcow2_resize, grow_over_larger_backing_does_not_expose_it)
{
    uint8_t *model = calloc(1, 2 * MiB);
    xcp__qcow2 *q;

    create(P("base.qcow2"), 2 * MiB, 0, NULL, NULL);
    q = open_img(P("base.qcow2"), 0);
    put(q, NULL, 0, 2 * MiB, 1);
    xcp__qcow2_close(q);
    create(P("top.qcow2"), MiB + 4096, 0, "base.qcow2", NULL);
    fill(model, MiB + 4096, 1);
    q = open_img(P("top.qcow2"), 0);
    cr_assert_eq(xcp__qcow2_resize(q, 2 * MiB, err, sizeof(err)), 0, "%s",
                 err);
    xcp__qcow2_close(q);
    assert_qemu_check(P("top.qcow2"));
    assert_content(P("top.qcow2"), model, 2 * MiB);
    free(model);
}

/* ------------------------------------------------------------------ */
/* Malformed images: each refused with its own code and message.       */

static const char *good(void)
{
    create(P("x.qcow2"), 100 * MiB, 0, NULL, NULL);
    return P("x.qcow2");
}

Test(qcow2_corrupt, bad_magic)
{
    const char *p = good();

    patch(p, 0, "QFI\xfa", 4);
    expect_open(p, XCP__QCOW2_RDONLY, -EMEDIUMTYPE, "bad magic");
}

Test(qcow2_corrupt, empty_and_truncated_headers)
{
    const char *p = good();

    cr_assert_eq(truncate(p, 50), 0);
    expect_open(p, XCP__QCOW2_RDONLY, -EBADMSG, "truncated");
    cr_assert_eq(truncate(p, 0), 0);
    expect_open(p, XCP__QCOW2_RDONLY, -EMEDIUMTYPE, "bad magic");
}

Test(qcow2_corrupt, truncated_file_cuts_tables)
{
    const char *p = good();

    /* Header intact, refcount table and L1 gone. */
    cr_assert_eq(truncate(p, 64 * 1024 + 100), 0);
    expect_open(p, XCP__QCOW2_RDONLY, -EBADMSG, "beyond the end of the file");
}

Test(qcow2_corrupt, huge_l1_size)
{
    const char *p = good();

    patch32(p, 36, 0x10000000);
    expect_open(p, XCP__QCOW2_RDONLY, -EFBIG, "L1 table");
    patch32(p, 36, 0x00100000);             /* allowed, but past the EOF */
    expect_open(p, XCP__QCOW2_RDONLY, -EBADMSG, "L1 table");
}

Test(qcow2_corrupt, l1_too_small_for_virtual_size)
{
    const char *p = good();

    patch64(p, 24, 1ull << 40);
    expect_open(p, XCP__QCOW2_RDONLY, -EBADMSG, "L1 entries");
    patch64(p, 24, 1ull << 62);
    expect_open(p, XCP__QCOW2_RDONLY, -EFBIG, "L1 entries");
}

Test(qcow2_corrupt, bad_cluster_bits)
{
    const char *p = good();

    patch32(p, 20, 8);
    expect_open(p, XCP__QCOW2_RDONLY, -EBADMSG, "cluster_bits");
    patch32(p, 20, 22);
    expect_open(p, XCP__QCOW2_RDONLY, -ENOTSUP, "cluster_bits");
    patch32(p, 20, 0xffffffff);
    expect_open(p, XCP__QCOW2_RDONLY, -ENOTSUP, "cluster_bits");
}

Test(qcow2_corrupt, unknown_incompatible_features)
{
    const char *p = good();

    patch64(p, 72, 1ull << 40);
    expect_open(p, XCP__QCOW2_RDONLY, -ENOTSUP, "incompatible features");
    patch64(p, 72, 1ull << 4);
    expect_open(p, XCP__QCOW2_RDONLY, -ENOTSUP, "extended L2");
    patch64(p, 72, 1ull << 2);
    expect_open(p, XCP__QCOW2_RDONLY, -ENOTSUP, "external data file");
}

/* Dirty (QEMU's lazy refcounts, or one of our writers that died): read
 * as it is, repaired and made clean by the next writer. */
Test(qcow2_corrupt, dirty_bit_is_repaired_by_a_writer_corrupt_allows_reading)
{
    const char *p = good();
    xcp__qcow2 *q;
    uint8_t b[8];
    int fd;

    patch64(p, 72, 1);
    q = open_img(p, XCP__QCOW2_RDONLY);
    xcp__qcow2_close(q);
    q = open_img(p, 0);
    xcp__qcow2_close(q);
    fd = open(p, O_RDONLY);
    cr_assert_eq(pread(fd, b, 8, 72), 8);
    close(fd);
    cr_expect_eq(b[7], 0, "the dirty bit stays after a repair");
    assert_qemu_check(p);
    patch64(p, 72, 2);
    expect_open(p, 0, -EBADMSG, "corrupt");
    q = open_img(p, XCP__QCOW2_RDONLY);
    xcp__qcow2_close(q);
}

/*
 * A writer killed between counting new clusters and linking them (what
 * allocation order allows) leaves leaks behind the dirty bit; the next
 * writer frees them, so `qemu-img check` finds the image clean (before:
 * the leaks stayed, and a dirty image could not be written at all).
 */
Test(qcow2_crash, leaks_of_a_killed_writer_are_freed_by_the_next)
{
    const char *p = P("leak.qcow2");
    uint8_t model[1 << 16], back[1 << 16];
    xcp__qcow2 *q;
    struct stat st0, st1;
    char *out = NULL;
    pid_t pid;
    int status;

    create(p, 8 * MiB, 0, NULL, NULL);
    q = open_img(p, 0);
    put(q, NULL, 0, sizeof(model), 7);
    xcp__qcow2_close(q);
    cr_assert_eq(stat(p, &st0), 0);
    if ((pid = fork()) == 0) {
        /* Allocate two clusters and die before anything points to them. */
        q = open_img(p, 0);
        put(q, NULL, MiB, 512, 8);
        if (xcp__qcow2_rc_set_range(q, q->next_free, 2, 1, err,
                                    sizeof(err)) < 0 ||
            xcp__qcow2_extend_file(q, (q->next_free + 2) * q->cluster_size,
                                   err, sizeof(err)) < 0)
            _exit(1);
        kill(getpid(), SIGKILL);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status), "the writer was not killed");
    cr_expect_eq(RUN(&out, "qemu-img", "check", p), 3,
                 "the killed writer left no leak to repair: %s", out);
    free(out);
    q = open_img(p, 0);
    xcp__qcow2_close(q);
    assert_qemu_check(p);
    cr_assert_eq(stat(p, &st1), 0);
    cr_expect_leq(st1.st_size, st0.st_size + 2 * 65536,
                  "the leaked tail stays: %lld -> %lld bytes",
                  (long long)st0.st_size, (long long)st1.st_size);
    fill(model, sizeof(model), 7);
    q = open_img(p, XCP__QCOW2_RDONLY);
    cr_assert_eq(xcp__qcow2_read(q, 0, back, sizeof(back), err,
                                 sizeof(err)), 0, "%s", err);
    xcp__qcow2_close(q);
    cr_expect_eq(memcmp(back, model, sizeof(back)), 0);
}

Test(qcow2_corrupt, backing_name_out_of_bounds)
{
    const char *p;

    create(P("base.qcow2"), MiB, 0, NULL, NULL);
    create(P("x.qcow2"), MiB, 0, "base.qcow2", NULL);
    p = P("x.qcow2");
    patch64(p, 8, 70000);                   /* past the first cluster */
    expect_open(p, XCP__QCOW2_RDONLY, -EBADMSG, "backing file name");
    patch64(p, 8, 65530);                   /* runs past it */
    expect_open(p, XCP__QCOW2_RDONLY, -EBADMSG, "backing file name");
    patch64(p, 8, 200);
    patch32(p, 16, 2000);                   /* longer than 1023 */
    expect_open(p, XCP__QCOW2_RDONLY, -EBADMSG, "backing file name");
    patch64(p, 8, 16);                      /* inside the header */
    patch32(p, 16, 10);
    expect_open(p, XCP__QCOW2_RDONLY, -EBADMSG, "backing file name");
}

Test(qcow2_corrupt, unsupported_version_and_encryption)
{
    const char *p = good();

    patch32(p, 4, 4);
    expect_open(p, XCP__QCOW2_RDONLY, -ENOTSUP, "version 4");
    patch32(p, 4, 3);
    patch32(p, 32, 2);
    expect_open(p, XCP__QCOW2_RDONLY, -ENOTSUP, "encrypted");
}

Test(qcow2_corrupt, misplaced_tables)
{
    const char *p = good();

    patch64(p, 40, 3 * 65536 + 8);          /* unaligned L1 */
    expect_open(p, XCP__QCOW2_RDONLY, -EBADMSG, "L1 table");
    patch64(p, 40, 0);                      /* L1 over the header */
    expect_open(p, XCP__QCOW2_RDONLY, -EBADMSG, "L1 table");
    patch64(p, 40, 3 * 65536);
    patch64(p, 48, 1ull << 50);             /* refcount table far away */
    expect_open(p, XCP__QCOW2_RDONLY, -EBADMSG, "refcount table");
    patch64(p, 48, 65536);
    patch32(p, 56, 0);
    expect_open(p, XCP__QCOW2_RDONLY, -EBADMSG, "refcount table");
    patch32(p, 56, 0x100000);
    expect_open(p, XCP__QCOW2_RDONLY, -EFBIG, "refcount table");
}

Test(qcow2_corrupt, bad_header_length_and_refcount_order)
{
    const char *p = good();

    patch32(p, 100, 108);
    expect_open(p, XCP__QCOW2_RDONLY, -EBADMSG, "header_length");
    patch32(p, 100, 1u << 20);
    expect_open(p, XCP__QCOW2_RDONLY, -EBADMSG, "header_length");
    patch32(p, 100, 112);
    patch32(p, 96, 7);
    expect_open(p, XCP__QCOW2_RDONLY, -EBADMSG, "refcount_order");
}

Test(qcow2_corrupt, header_extension_overrun)
{
    const char *p = good();
    uint8_t ext[8] = { 0x12, 0x34, 0x56, 0x78, 0xff, 0xff, 0xff, 0x00 };

    patch(p, 112, ext, sizeof(ext));
    expect_open(p, XCP__QCOW2_RDONLY, -EBADMSG, "overruns");
}

Test(qcow2_corrupt, bad_l2_entries_fail_reads_not_the_process)
{
    const char *p = good();
    uint8_t b[4096];
    xcp__qcow2 *q = open_img(p, 0);
    uint8_t l1[8];
    int fd;
    uint64_t l2;

    put(q, NULL, 0, 4096, 1);
    xcp__qcow2_close(q);
    fd = open(p, O_RDONLY);
    cr_assert_eq(pread(fd, l1, 8, 3 * 65536), 8);
    close(fd);
    l2 = ((uint64_t)l1[1] << 48 | (uint64_t)l1[2] << 40 |
          (uint64_t)l1[3] << 32 | (uint64_t)l1[4] << 24 |
          (uint64_t)l1[5] << 16 | (uint64_t)l1[6] << 8 | l1[7]) &
         ~511ull;
    patch64(p, (off_t)l2, (1ull << 63) | (1ull << 50));
    q = open_img(p, XCP__QCOW2_RDONLY);
    cr_expect_eq(xcp__qcow2_read(q, 0, b, sizeof(b), err, sizeof(err)),
                 -EBADMSG);
    cr_expect_not_null(strstr(err, "out-of-file"), "%s", err);
    xcp__qcow2_close(q);
    patch64(p, (off_t)l2, (1ull << 63) | (4 * 65536 + 512));
    q = open_img(p, 0);
    cr_expect_eq(xcp__qcow2_write(q, 0, b, sizeof(b), err, sizeof(err)),
                 -EBADMSG);
    cr_expect_not_null(strstr(err, "unaligned"), "%s", err);
    xcp__qcow2_close(q);
}

Test(qcow2_corrupt, internal_snapshots_block_writing_only)
{
    const char *p = good();
    xcp__qcow2 *q;

    cr_assert_eq(RUN(NULL, "qemu-img", "snapshot", "-c", "snap1", p), 0);
    expect_open(p, 0, -ENOTSUP, "internal snapshots");
    q = open_img(p, XCP__QCOW2_RDONLY);
    xcp__qcow2_close(q);
}
