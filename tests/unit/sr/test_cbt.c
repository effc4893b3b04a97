/*
 * test_cbt.c - changed block tracking in the image layer (image.h,
 * image_cbt.c, qcow2_bitmap.c) against QEMU: our qcow2 dirty bitmaps
 * are listed by `qemu-img info` and pass `qemu-img check`; a bitmap
 * QEMU made and marked (`qemu-img bitmap`, `qemu-io -c write`) reads
 * right through our library; our writes mark it as QEMU would; resize
 * and the coalesce hook keep it; the VHD log beside the image too.
 */
#include "image_test.h"

#include "image.h"

#define BLK (64 * KiB)

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

static void put(xcp__image *im, uint64_t off, size_t len)
{
    uint8_t *b = malloc(len);

    cr_assert_not_null(b);
    memset(b, 0x5a, len);
    cr_assert_eq(xcp__image_write(im, off, b, len, err, sizeof(err)), 0,
                 "write: %s", err);
    free(b);
}

static bool bit(const xcp__image_cbt *c, uint64_t i)
{
    return c->bits[i / 8] & (0x80u >> (i % 8));
}

static uint64_t count(const xcp__image_cbt *c)
{
    uint64_t i, n = 0;

    for (i = 0; i < c->nblocks; i++)
        n += bit(c, i);
    return n;
}

static void cbt_of(const char *path, const char *fmt, xcp__image_cbt *c)
{
    xcp__image *im = img_open(path, fmt, XCP__IMAGE_RDONLY);
    bool on = false;

    cr_assert_eq(xcp__image_cbt_get(im, &on, c, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert(on, "%s has no CBT", path);
    xcp__image_close(im);
}

static void enable(const char *path, const char *fmt, const char *prev)
{
    xcp__image *im = img_open(path, fmt, 0);
    xcp__image_cbt c = { { 0 }, 0, NULL };

    snprintf(c.prev, sizeof(c.prev), "%s", prev);
    cr_assert_eq(xcp__image_cbt_set(im, &c, err, sizeof(err)), 0, "%s", err);
    xcp__image_close(im);
}

TestSuite(cbt, .init = setup, .fini = teardown);

Test(cbt, qcow2_bitmap_listed_by_qemu_img_and_check_clean)
{
    const char *img = P("a.qcow2");
    xcp__image *im;
    xcp__image_cbt c;
    char *info;

    img_new(img, "qcow2", 256 * MiB, NULL);
    enable(img, "qcow2", "");
    im = img_open(img, "qcow2", 0);
    put(im, 0, 4096);                       /* block 0 */
    put(im, 3 * BLK + 100, BLK);            /* blocks 3 and 4 */
    put(im, 256 * MiB - 512, 512);          /* the last block */
    xcp__image_close(im);
    info = qemu_info(img);
    cr_assert_not_null(strstr(info, "\"name\": \"xcp-cbt\""), "%s", info);
    cr_assert_not_null(strstr(info, "\"granularity\": 65536"), "%s", info);
    cr_assert_null(strstr(info, "in-use"), "%s", info);
    free(info);
    assert_qemu_check(img);
    cbt_of(img, "qcow2", &c);
    cr_assert_eq(c.nblocks, 4096);
    cr_assert(bit(&c, 0) && bit(&c, 3) && bit(&c, 4) && bit(&c, 4095));
    cr_assert_eq(count(&c), 4);
    xcp__image_cbt_dispose(&c);
}

/*
 * A writer killed mid-write leaves the image dirty; the next writer's
 * leak repair must count the bitmap's clusters (directory, table, data)
 * as in use.  Before: the repair ran before the bitmaps were loaded and
 * freed them (qemu-img check: "refcount=0 reference=1"; the file's tail
 * truncated), seen by the crash loop of tests/crash (disk, CBT rows).
 */
Test(cbt, qcow2_dirty_repair_keeps_the_bitmap)
{
    const char *img = P("d.qcow2");
    xcp__image *im;
    xcp__image_cbt c;

    img_new(img, "qcow2", 64 * MiB, NULL);
    im = img_open(img, "qcow2", 0);
    put(im, 0, 4096);                       /* data first: bitmap last */
    xcp__image_close(im);
    enable(img, "qcow2", "");
    im = img_open(img, "qcow2", 0);
    put(im, 5 * BLK, 4096);                 /* block 5 */
    xcp__image_close(im);
    patch64(img, 72, 1);                    /* dirty: its writer died */
    im = img_open(img, "qcow2", 0);         /* repairs */
    put(im, 9 * BLK, 4096);                 /* block 9 */
    xcp__image_close(im);
    assert_qemu_check(img);
    cbt_of(img, "qcow2", &c);
    cr_expect(bit(&c, 5) && bit(&c, 9), "blocks 5 and 9 are not marked");
    cr_expect_eq(count(&c), 2);
    xcp__image_cbt_dispose(&c);
}

/*
 * Dropping the bitmap (disable_cbt) rewrites the header, then frees the
 * bitmap's clusters: the image must be dirty on the disk from the header
 * write until the close, so that a kill before the frees leaves leaks
 * the next writer (or the SR's attach) repairs.  Before: the header
 * rewrite, read from the disk before its own write marked the image
 * dirty, wrote the bit back clear (the crash loop's 3 leaked clusters on
 * a clean image after a kill in disable_cbt).
 */
Test(cbt, qcow2_bitmap_drop_keeps_the_image_dirty_until_closed)
{
    const char *img = P("d.qcow2");
    xcp__image *im;
    char *info;

    img_new(img, "qcow2", 64 * MiB, NULL);
    enable(img, "qcow2", "");
    im = img_open(img, "qcow2", 0);
    cr_assert_eq(xcp__image_cbt_set(im, NULL, err, sizeof(err)), 0, "%s",
                 err);
    info = qemu_info(img);
    cr_expect(strstr(info, "\"dirty-flag\": true") != NULL,
              "the bitmap's clusters freed on a clean image:\n%s", info);
    free(info);
    xcp__image_close(im);
    info = qemu_info(img);
    cr_expect(strstr(info, "\"dirty-flag\": false") != NULL,
              "dirty after the close:\n%s", info);
    free(info);
    assert_qemu_check(img);
}

Test(cbt, qcow2_bitmap_made_and_marked_by_qemu_reads_right)
{
    const char *img = P("q.qcow2");
    xcp__image *im;
    xcp__image_cbt c;
    char *out = NULL;
    int rc;

    rc = RUN(NULL, "qemu-img", "create", "-q", "-f", "qcow2", img, "128M");
    cr_assert_eq(rc, 0);
    rc = RUN(&out, "qemu-img", "bitmap", "--add", "-g", "65536", img,
             "xcp-cbt");
    cr_assert_eq(rc, 0, "qemu-img bitmap: %s", out);
    free(out);
    rc = RUN(&out, "qemu-io", "-f", "qcow2", "-c", "write 1M 64k", "-c",
             "write 10M 1k", img);
    cr_assert_eq(rc, 0, "qemu-io: %s", out);
    free(out);
    cbt_of(img, "qcow2", &c);
    cr_assert_eq(c.nblocks, 2048);
    cr_assert(bit(&c, 16) && bit(&c, 160), "blocks of QEMU's writes");
    cr_assert_eq(count(&c), 2);
    xcp__image_cbt_dispose(&c);
    /* Our writes mark QEMU's bitmap, and QEMU still accepts it. */
    im = img_open(img, "qcow2", 0);
    put(im, 50 * MiB, 4096);
    xcp__image_close(im);
    assert_qemu_check(img);
    cbt_of(img, "qcow2", &c);
    cr_assert(bit(&c, 800));
    cr_assert_eq(count(&c), 3);
    xcp__image_cbt_dispose(&c);
    /* QEMU reads our marks: merging into a new bitmap works. */
    rc = RUN(&out, "qemu-img", "bitmap", "--add", img, "copy");
    free(out);
    cr_assert_eq(rc, 0);
    rc = RUN(&out, "qemu-img", "bitmap", "--merge", "xcp-cbt", img, "copy");
    cr_assert_eq(rc, 0, "qemu-img bitmap --merge: %s", out);
    free(out);
    assert_qemu_check(img);
}

Test(cbt, qcow2_bits_follow_qemu_order)
{
    /* Our bitmap, marked by us, is QEMU's: a bitmap QEMU merges from it
     * and that we read back (renamed) shows the same blocks. */
    const char *img = P("o.qcow2");
    xcp__image *im;
    xcp__image_cbt c;
    char *out = NULL;
    int rc;

    img_new(img, "qcow2", 64 * MiB, NULL);
    enable(img, "qcow2", "");
    im = img_open(img, "qcow2", 0);
    put(im, 1 * BLK, 512);
    put(im, 9 * BLK, 512);
    xcp__image_close(im);
    rc = RUN(&out, "qemu-img", "bitmap", "--add", img, "q");
    free(out);
    cr_assert_eq(rc, 0);
    rc = RUN(&out, "qemu-img", "bitmap", "--merge", "xcp-cbt", img, "q");
    free(out);
    cr_assert_eq(rc, 0);
    rc = RUN(&out, "qemu-img", "bitmap", "--remove", img, "xcp-cbt");
    free(out);
    cr_assert_eq(rc, 0);
    rc = RUN(&out, "qemu-img", "bitmap", "--add", img, "xcp-cbt");
    free(out);
    cr_assert_eq(rc, 0);
    rc = RUN(&out, "qemu-img", "bitmap", "--merge", "q", img, "xcp-cbt");
    free(out);
    cr_assert_eq(rc, 0);
    cbt_of(img, "qcow2", &c);
    cr_assert(bit(&c, 1) && bit(&c, 9));
    cr_assert_eq(count(&c), 2);
    xcp__image_cbt_dispose(&c);
}

Test(cbt, qcow2_resize_keeps_bits_and_covers_new_size)
{
    const char *img = P("r.qcow2");
    xcp__image *im;
    xcp__image_cbt c;

    img_new(img, "qcow2", 64 * MiB, NULL);
    enable(img, "qcow2", "11111111-2222-3333-4444-555555555555");
    im = img_open(img, "qcow2", 0);
    put(im, 5 * BLK, 512);
    cr_assert_eq(xcp__image_resize(im, 8 * GiB, err, sizeof(err)), 0, "%s",
                 err);
    put(im, 8 * GiB - BLK, BLK);
    xcp__image_close(im);
    assert_qemu_check(img);
    cbt_of(img, "qcow2", &c);
    cr_assert_eq(c.nblocks, 8 * GiB / BLK);
    cr_assert(bit(&c, 5) && bit(&c, c.nblocks - 1));
    cr_assert_eq(count(&c), 2);
    cr_assert_str_eq(c.prev, "11111111-2222-3333-4444-555555555555");
    xcp__image_cbt_dispose(&c);
}

Test(cbt, merge_gives_parent_the_childs_state)
{
    const char *p = P("p.qcow2"), *ch = P("c.qcow2");
    xcp__image *pi, *ci;
    xcp__image_cbt c;

    img_new(p, "qcow2", 64 * MiB, NULL);
    enable(p, "qcow2", "");
    pi = img_open(p, "qcow2", 0);
    put(pi, 0, BLK);                        /* parent's own epoch */
    xcp__image_close(pi);
    img_new(ch, "qcow2", 0, "p.qcow2");
    enable(ch, "qcow2", "aaaaaaaa-2222-3333-4444-555555555555");
    ci = img_open(ch, "qcow2", 0);
    put(ci, 7 * BLK, 512);
    xcp__image_close(ci);
    pi = img_open(p, "qcow2", 0);
    ci = img_open(ch, "qcow2", XCP__IMAGE_RDONLY | XCP__IMAGE_NO_PARENT);
    cr_assert_eq(xcp__image_commit(ci, pi, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(xcp__image_cbt_merge(pi, ci, err, sizeof(err)), 0, "%s",
                 err);
    xcp__image_close(ci);
    xcp__image_close(pi);
    assert_qemu_check(p);
    cbt_of(p, "qcow2", &c);
    cr_assert_str_eq(c.prev, "aaaaaaaa-2222-3333-4444-555555555555");
    cr_assert(bit(&c, 7));
    cr_assert_eq(count(&c), 1, "the merged data is not a change");
    xcp__image_cbt_dispose(&c);
}

Test(cbt, disable_removes_the_bitmap)
{
    const char *img = P("d.qcow2");
    xcp__image *im;
    bool on = true;
    char *info;

    img_new(img, "qcow2", 64 * MiB, NULL);
    enable(img, "qcow2", "");
    im = img_open(img, "qcow2", 0);
    cr_assert_eq(xcp__image_cbt_set(im, NULL, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_eq(xcp__image_cbt_get(im, &on, NULL, err, sizeof(err)), 0);
    cr_assert_not(on);
    xcp__image_close(im);
    info = qemu_info(img);
    cr_assert_null(strstr(info, "xcp-cbt"), "%s", info);
    free(info);
    assert_qemu_check(img);
}

Test(cbt, vhd_log_beside_the_image_marked_on_write)
{
    const char *img = P("v.vhd");
    char log[512];
    xcp__image *im;
    xcp__image_cbt c;
    struct stat st;

    img_new(img, "vhd", 64 * MiB, NULL);
    enable(img, "vhd", "");
    cr_assert_eq(xcp__image_cbt_log_path(img, log, sizeof(log)), 0);
    cr_assert_eq(stat(log, &st), 0, "%s", log);
    im = img_open(img, "vhd", 0);
    put(im, 2 * BLK, 100);
    put(im, 63 * MiB, MiB);
    xcp__image_close(im);
    cbt_of(img, "vhd", &c);
    cr_assert_eq(c.nblocks, 1024);
    cr_assert(bit(&c, 2) && bit(&c, 1008) && bit(&c, 1023));
    cr_assert_eq(count(&c), 1 + 16);
    xcp__image_cbt_dispose(&c);
}

/* ---- the file SR: snapshot, coalesce ---------------------------------- */

#include <xcp/sys/sr.h>

extern const xcp_sr_type xcp__sr_type_file;

#define SR_UUID "7b2d1c3e-8a4b-4c6d-9e0f-1a2b3c4d5e6f"

/*
 * A tracked VDI of fmt is snapshotted, written, the snapshot destroyed:
 * the collector merges the hidden parent into the VDI, whose tracking
 * state (the epoch since the snapshot) must come out unchanged: the
 * merged data is no change of the disk.
 */
static void coalesce_keeps_state(const char *fmt, bool online)
{
    /* online: a collector run with hooks, and past its paused step's
     * limit after the snapshot (blocks 512-831, 20 MiB), so the leaf's
     * data first moves under a new hidden node merged online. */
    static const xcp_sr_gc_hooks h = { 1, NULL, NULL, NULL, NULL, NULL,
                                       NULL };
    bool want;
    const xcp_sr_ops *ops = xcp__sr_type_file.ops;
    xcp_sr_kv dc[1] = { { "location", NULL } };
    xcp_sr_target sr = { SR_UUID, dc, 1, NULL };
    xcp_sr_vdi_create_params p = { 1, NULL, 64 * MiB, fmt };
    xcp_sr_vdi_info v;
    xcp_sr_cow_result snap;
    xcp_sr_gc_result g;
    xcp_sr_error e;
    char path[512], prev[XCP_SR_UUID_BUFLEN];
    uint8_t bits[64 * MiB / BLK / 8];
    uint64_t size;
    xcp__image *im;
    size_t i;

    memset(&e, 0, sizeof(e));
    dc[0].value = P("sr");
    cr_assert_eq(ops->sr_create(&sr, &size, &e), 0, "%s", e.reason);
    cr_assert_eq(ops->sr_attach(&sr, &e), 0, "%s", e.reason);
    cr_assert_eq(ops->vdi_create(&sr, &p, &v, &e), 0, "%s", e.reason);
    cr_assert_eq(ops->vdi_cbt_set(&sr, v.location, true, &e), 0, "%s",
                 e.reason);
    snprintf(path, sizeof(path), "%s/%s", P("sr"), v.location);
    im = img_open(path, fmt, 0);
    put(im, 0, 4 * MiB);                    /* before the snapshot */
    xcp__image_close(im);
    cr_assert_eq(ops->vdi_snapshot(&sr, v.location, &snap, &e), 0, "%s",
                 e.reason);
    cr_assert(snap.child.cbt_enabled && snap.source.cbt_enabled);
    im = img_open(path, fmt, 0);
    put(im, 7 * BLK, 512);                  /* after it */
    if (online)
        put(im, 512 * BLK, 320 * BLK);
    xcp__image_close(im);
    cr_assert_eq(ops->vdi_destroy(&sr, snap.child.location, &e), 0, "%s",
                 e.reason);
    if (online)
        cr_assert_eq(ops->sr_gc_run(&sr, XCP_SR_GC_COALESCE, &h, &g, &e),
                     0, "%s", e.reason);
    else
        cr_assert_eq(ops->sr_gc(&sr, XCP_SR_GC_COALESCE, &g, &e), 0, "%s",
                     e.reason);
    cr_assert_geq(g.coalesced, online ? 2 : 1, "%s: %u merged", fmt,
                  g.coalesced);
    memset(bits, 0, sizeof(bits));
    cr_assert_eq(ops->vdi_cbt_changes(&sr, v.location, bits,
                                      64 * MiB / BLK, prev, &e), 0, "%s",
                 e.reason);
    cr_assert_str_eq(prev, snap.child.uuid);
    for (i = 0; i < sizeof(bits) * 8; i++) {
        want = i == 7 || (online && i >= 512 && i < 832);
        cr_assert_eq(!!(bits[i / 8] & (0x80 >> (i % 8))), want,
                     "%s: block %zu %s", fmt, i, want ? "lost" : "marked");
    }
    if (!strcmp(fmt, "qcow2"))
        assert_qemu_check(path);
}

Test(cbt, file_sr_coalesce_keeps_the_leafs_tracking_qcow2)
{
    coalesce_keeps_state("qcow2", false);
}

Test(cbt, file_sr_coalesce_keeps_the_leafs_tracking_vhd)
{
    coalesce_keeps_state("vhd", false);
}

/* The online collector moves a busy leaf's data under a new node before
 * merging it: the leaf's epoch goes on (before: the node, the old file,
 * took the tracking and the leaf came out untracked). */
Test(cbt, online_leaf_coalesce_keeps_the_leafs_tracking_qcow2)
{
    coalesce_keeps_state("qcow2", true);
}

Test(cbt, online_leaf_coalesce_keeps_the_leafs_tracking_vhd)
{
    coalesce_keeps_state("vhd", true);
}

/* data_destroy: an empty standalone image with the tracking state. */
Test(cbt, file_sr_data_destroy_keeps_state_and_frees_the_parent)
{
    const xcp_sr_ops *ops = xcp__sr_type_file.ops;
    xcp_sr_kv dc[1] = { { "location", NULL } };
    xcp_sr_target sr = { SR_UUID, dc, 1, NULL };
    xcp_sr_vdi_create_params p = { 1, NULL, 64 * MiB, "qcow2" };
    xcp_sr_vdi_info v, s;
    xcp_sr_cow_result snap;
    xcp_sr_error e;
    char path[512], prev[XCP_SR_UUID_BUFLEN];
    uint8_t bits[64 * MiB / BLK / 8] = { 0 };
    uint64_t size;
    xcp__image *im;

    memset(&e, 0, sizeof(e));
    dc[0].value = P("sr");
    cr_assert_eq(ops->sr_create(&sr, &size, &e), 0, "%s", e.reason);
    cr_assert_eq(ops->vdi_create(&sr, &p, &v, &e), 0, "%s", e.reason);
    cr_assert_eq(ops->vdi_cbt_set(&sr, v.location, true, &e), 0, "%s",
                 e.reason);
    snprintf(path, sizeof(path), "%s/%s", P("sr"), v.location);
    im = img_open(path, "qcow2", 0);
    put(im, 3 * BLK, 8 * MiB);
    xcp__image_close(im);
    cr_assert_eq(ops->vdi_snapshot(&sr, v.location, &snap, &e), 0, "%s",
                 e.reason);
    cr_assert_eq(ops->vdi_data_destroy(&sr, snap.child.location, &e), 0,
                 "%s", e.reason);
    cr_assert_eq(ops->vdi_stat(&sr, snap.child.location, &s, &e), 0);
    cr_assert(s.cbt_enabled);
    cr_assert_str_eq(s.parent_location, "");
    cr_assert_lt(s.physical_utilisation, 2 * MiB);
    cr_assert_eq(ops->vdi_cbt_changes(&sr, snap.child.location, bits,
                                      64 * MiB / BLK, prev, &e), 0);
    cr_assert(bits[0] & 0x10, "block 3 lost");
    /* Refused on a writable VDI, with VDI_NO_CBT_METADATA when
     * untracked. */
    cr_assert_lt(ops->vdi_data_destroy(&sr, v.location, &e), 0);
    cr_assert_eq(ops->vdi_cbt_set(&sr, v.location, false, &e), 0);
    cr_assert_lt(ops->vdi_cbt_changes(&sr, v.location, bits, 1, prev, &e),
                 0);
    cr_assert_eq(e.kind, XCP_SR_ERR_NO_CBT_METADATA);
}

/* A VHD log whose image is gone (a crash between the two) is debris the
 * collector removes; one beside its image stays. */
Test(cbt, file_sr_gc_removes_orphan_logs_only)
{
    const xcp_sr_ops *ops = xcp__sr_type_file.ops;
    xcp_sr_kv dc[1] = { { "location", NULL } };
    xcp_sr_target sr = { SR_UUID, dc, 1, NULL };
    xcp_sr_vdi_create_params p = { 1, NULL, 64 * MiB, "vhd" };
    const char *orphan = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d.cbtlog";
    char path[512], log[512];
    xcp_sr_vdi_info v;
    xcp_sr_gc_result g;
    xcp_sr_error e;
    struct stat st;
    uint64_t size;
    int fd;

    memset(&e, 0, sizeof(e));
    dc[0].value = P("sr");
    cr_assert_eq(ops->sr_create(&sr, &size, &e), 0, "%s", e.reason);
    cr_assert_eq(ops->vdi_create(&sr, &p, &v, &e), 0, "%s", e.reason);
    cr_assert_eq(ops->vdi_cbt_set(&sr, v.location, true, &e), 0, "%s",
                 e.reason);
    snprintf(path, sizeof(path), "%s/%s", P("sr"), orphan);
    fd = open(path, O_WRONLY | O_CREAT, 0644);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(ops->sr_gc(&sr, 0, &g, &e), 0, "%s", e.reason);
    cr_assert_neq(stat(path, &st), 0, "orphan log left");
    snprintf(path, sizeof(path), "%s/%s", P("sr"), v.location);
    cr_assert_eq(xcp__image_cbt_log_path(path, log, sizeof(log)), 0);
    cr_assert_eq(stat(log, &st), 0, "the VDI's log went");
}

/* QEMU stores a bitmap cluster with no bit set as no cluster at all: our
 * first write under it allocates one (before: the write failed). */
Test(cbt, write_under_a_fresh_qemu_bitmap_allocates_its_cluster)
{
    const char *img = P("f.qcow2");
    xcp__image *im;
    xcp__image_cbt c;
    char *out = NULL;
    int rc;

    rc = RUN(NULL, "qemu-img", "create", "-q", "-f", "qcow2", img, "64M");
    cr_assert_eq(rc, 0);
    rc = RUN(&out, "qemu-img", "bitmap", "--add", "-g", "65536", img,
             "xcp-cbt");
    free(out);
    cr_assert_eq(rc, 0);
    im = img_open(img, "qcow2", 0);
    put(im, 33 * BLK, 512);
    xcp__image_close(im);
    assert_qemu_check(img);
    cbt_of(img, "qcow2", &c);
    cr_assert(bit(&c, 33));
    cr_assert_eq(count(&c), 1);
    xcp__image_cbt_dispose(&c);
}
