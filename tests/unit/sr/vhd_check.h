/*
 * vhd_check.h - an independent structural check of a VHD file, for the
 * tests of what writes VHD images (test_vhd.c, test_image_format.c):
 * written from the specification apart from the library, since QEMU 7.2
 * has no checker for vpc.  Include after image_test.h.
 */
#ifndef XCP_TEST_VHD_CHECK_H
#define XCP_TEST_VHD_CHECK_H

/* ------------------------------------------------------------------ */
/* An independent structural check                                     */

static uint32_t be32_(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64_(const uint8_t *p)
{
    return (uint64_t)be32_(p) << 32 | be32_(p + 4);
}

static uint32_t sum_(const uint8_t *p, size_t len, size_t field)
{
    uint32_t s = 0;
    size_t i;

    for (i = 0; i < len; i++)
        if (i < field || i >= field + 4)
            s += p[i];
    return ~s;
}

static int cmp32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* The image's structure is sound; returns its number of blocks. */
static UNUSED unsigned vhd_check(const char *path)
{
    uint8_t foot[512], copy[512], hdr[1024], *bat;
    uint32_t entries, bs, bmsz, *blk, n = 0, i, type;
    uint64_t size, hoff, boff, meta_end, lim;
    struct stat st;
    char *out = NULL;
    int fd, rc;

    rc = RUN(&out, "qemu-img", "check", "-f", "vpc", path);
    /* 63: "This image format does not support checks" (on stderr) */
    cr_assert(rc == 0 || rc == 63, "qemu-img check %s exited %d: %s", path,
              rc, out);
    free(out);
    rc = RUN(&out, "qemu-img", "info", "-f", "vpc", "--output=json", path);
    cr_assert_eq(rc, 0, "qemu-img info %s exited %d", path, rc);
    free(out);

    fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(st.st_size % 512, 0, "%s: size %lld", path,
                 (long long)st.st_size);
    cr_assert_eq(pread(fd, foot, 512, st.st_size - 512), 512);
    cr_assert_eq(memcmp(foot, "conectix", 8), 0, "%s: no footer", path);
    cr_assert_eq(be32_(foot + 64), sum_(foot, 512, 64), "%s: footer sum",
                 path);
    type = be32_(foot + 60);
    size = be64_(foot + 48);
    if (type == 2) {
        close(fd);
        return 0;
    }
    cr_assert_eq(pread(fd, copy, 512, 0), 512);
    cr_assert_eq(memcmp(foot, copy, 512), 0, "%s: footer copy differs",
                 path);
    hoff = be64_(foot + 16);
    cr_assert_eq(pread(fd, hdr, 1024, (off_t)hoff), 1024);
    cr_assert_eq(memcmp(hdr, "cxsparse", 8), 0);
    cr_assert_eq(be32_(hdr + 36), sum_(hdr, 1024, 36), "%s: header sum",
                 path);
    entries = be32_(hdr + 28);
    bs = be32_(hdr + 32);
    bmsz = (bs / 512 / 8 + 511) / 512 * 512;
    cr_assert_geq((uint64_t)entries * bs, size);
    boff = be64_(hdr + 16);
    bat = malloc((size_t)entries * 4 + 1);
    blk = malloc((size_t)entries * 4 + 4);
    cr_assert_eq(pread(fd, bat, (size_t)entries * 4, (off_t)boff),
                 (ssize_t)entries * 4);
    for (i = 0; i < entries; i++)
        if (be32_(bat + 4 * i) != 0xffffffffu)
            blk[n++] = be32_(bat + 4 * i);
    qsort(blk, n, 4, cmp32);
    meta_end = boff + (uint64_t)entries * 4;
    if (hoff + 1024 > meta_end)
        meta_end = hoff + 1024;
    lim = (uint64_t)st.st_size - 512;
    for (i = 0; i < n; i++) {
        cr_assert_geq((uint64_t)blk[i] * 512, meta_end,
                      "%s: block in metadata", path);
        cr_assert_leq((uint64_t)blk[i] * 512 + bmsz + bs, lim,
                      "%s: block %u past the footer", path, blk[i]);
        if (i + 1 < n)
            cr_assert_leq((uint64_t)blk[i] * 512 + bmsz + bs,
                          (uint64_t)blk[i + 1] * 512,
                          "%s: blocks overlap", path);
    }
    for (i = 0; i < 8; i++) {
        const uint8_t *l = hdr + 576 + 24 * i;

        if (!be32_(l))
            continue;
        cr_assert_leq(be64_(l + 16) + be32_(l + 8), lim,
                      "%s: locator %u past the footer", path, i);
        /* Nor in a block: a writer's block over it loses the name. */
        for (uint32_t j = 0; j < n; j++)
            cr_assert(be64_(l + 16) + be32_(l + 8) <= (uint64_t)blk[j] * 512 ||
                          be64_(l + 16) >= (uint64_t)blk[j] * 512 + bmsz + bs,
                      "%s: locator %u overlaps block at sector %u", path, i,
                      blk[j]);
    }
    free(bat);
    free(blk);
    close(fd);
    return n;
}

#endif
