/*
 * test_file_sr.c - the `file` SR driver and the SR type registry.
 *
 * Drives the driver through its ops table, as the SR layer will, in a
 * fresh temporary directory per test; image contents are checked through
 * the qcow2 library and image validity with `qemu-img check`.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* nftw */
#endif
#include <criterion/criterion.h>

#include <xcp/sys/sr.h>

#include "qcow2.h"
#include "../core/core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* From registry.c and file.c (no internal SR header yet). */
extern const xcp_sr_type xcp__sr_type_file;
const xcp_sr_type *xcp__sr_type_find(const char *name);
size_t xcp__sr_type_count(void);
const xcp_sr_type *xcp__sr_type_at(size_t i);
const char *xcp__sr_cap_name(uint64_t cap);
int xcp__sr_type_check(const xcp_sr_type *t, char *err, size_t errlen);

extern char **environ;

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)
#define SR_UUID "5f2d1c3e-8a4b-4c6d-9e0f-1a2b3c4d5e6f"
#define MAX_SCAN 64

static char dir[64];
static char srdir[128];
static xcp_sr_kv dc[1];
static xcp_sr_target sr;
static const xcp_sr_ops *ops;
static xcp_sr_error e;
static char msg[1024];

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
    snprintf(dir, sizeof(dir), "/tmp/xcp-filesr-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    /* Two levels that do not exist yet: sr_create makes them. */
    snprintf(srdir, sizeof(srdir), "%s/srs/one", dir);
    dc[0].key = "location";
    dc[0].value = srdir;
    sr.sr_uuid = SR_UUID;
    sr.device_config = dc;
    sr.n_device_config = 1;
    sr.default_location = NULL;
    ops = xcp__sr_type_file.ops;
    memset(&e, 0, sizeof(e));
}

static void setup_with_sr(void)
{
    uint64_t size = 0;
    int ret;

    setup();
    ret = ops->sr_create(&sr, &size, &e);
    cr_assert_eq(ret, 0, "sr_create: %s", e.reason);
}

static void teardown(void)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int run(const char *const *argv)
{
    int status;
    pid_t pid;

    if (posix_spawnp(&pid, argv[0], NULL, NULL, (char *const *)argv,
                     environ) != 0)
        return -1;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *path_of(const char *location)
{
    static char path[2][XCP_SR_PATH_MAX];
    static int i;
    xcp_sr_vdi_path vp;
    int ret;

    ret = ops->vdi_path(&sr, location, &vp, &e);
    cr_assert_eq(ret, 0, "vdi_path %s: %s", location, e.reason);
    i = !i;
    snprintf(path[i], sizeof(path[i]), "%s", vp.path);
    return path[i];
}

static void assert_qemu_check(const char *location)
{
    const char *path = path_of(location);
    const char *const argv[] = { "qemu-img", "check", "-q", path, NULL };

    cr_assert_eq(run(argv), 0, "qemu-img check %s", path);
}

static xcp_sr_vdi_info vdi_new(uint64_t size)
{
    xcp_sr_vdi_create_params p = { .version = 1, .virtual_size = size };
    xcp_sr_vdi_info v;
    int ret;

    ret = ops->vdi_create(&sr, &p, &v, &e);
    cr_assert_eq(ret, 0, "vdi_create: %s", e.reason);
    return v;
}

/* Fill [off, off+len) of a VDI with byte, through the image library. */
static void vdi_fill(const char *location, uint64_t off, size_t len, int byte)
{
    uint8_t *buf = malloc(len);
    xcp__qcow2 *q;
    int ret;

    memset(buf, byte, len);
    ret = xcp__qcow2_open(&q, path_of(location), NULL, 0, msg, sizeof(msg));
    cr_assert_eq(ret, 0, "%s", msg);
    ret = xcp__qcow2_write(q, off, buf, len, msg, sizeof(msg));
    cr_assert_eq(ret, 0, "%s", msg);
    xcp__qcow2_close(q);
    free(buf);
}

/* Whether every byte of [off, off+len) of a VDI is byte. */
static bool vdi_holds(const char *location, uint64_t off, size_t len,
                      int byte)
{
    uint8_t *buf = malloc(len);
    xcp__qcow2 *q;
    size_t i;
    int ret;

    ret = xcp__qcow2_open(&q, path_of(location), NULL, XCP__QCOW2_RDONLY,
                          msg, sizeof(msg));
    cr_assert_eq(ret, 0, "%s", msg);
    ret = xcp__qcow2_read(q, off, buf, len, msg, sizeof(msg));
    cr_assert_eq(ret, 0, "%s", msg);
    xcp__qcow2_close(q);
    for (i = 0; i < len && buf[i] == byte; i++)
        ;
    free(buf);
    return i == len;
}

struct scan {
    xcp_sr_vdi_info v[MAX_SCAN];
    size_t n;
};

static int collect(void *ctx, const xcp_sr_vdi_info *vdi)
{
    struct scan *s = ctx;

    cr_assert_lt(s->n, MAX_SCAN);
    s->v[s->n++] = *vdi;
    return 0;
}

static struct scan scan(void)
{
    struct scan s = { .n = 0 };
    int ret = ops->sr_scan(&sr, collect, &s, &e);

    cr_assert_eq(ret, 0, "sr_scan: %s", e.reason);
    return s;
}

static const xcp_sr_vdi_info *find(const struct scan *s, const char *loc)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        if (strcmp(s->v[i].location, loc) == 0)
            return &s->v[i];
    return NULL;
}

static bool exists(const char *name)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", srdir, name);
    return access(path, F_OK) == 0;
}

/* ------------------------------------------------------------------ */

TestSuite(sr_registry);
TestSuite(file_sr, .init = setup, .fini = teardown);
TestSuite(file_vdi, .init = setup_with_sr, .fini = teardown);

Test(sr_registry, file_type_is_found_and_consistent)
{
    const xcp_sr_type *t = xcp__sr_type_find("file");
    char buf[256];

    cr_assert_eq(t, &xcp__sr_type_file);
    cr_expect_null(xcp__sr_type_find("nfs-that-does-not-exist"));
    cr_expect_null(xcp__sr_type_find(NULL));
    cr_assert_geq(xcp__sr_type_count(), 1);
    cr_expect_eq(xcp__sr_type_at(0), t);
    cr_expect_null(xcp__sr_type_at(xcp__sr_type_count()));
    cr_expect_str_eq(t->content_type, "user");
    cr_expect_str_eq(t->config_keys[0].key, "location");
    cr_expect_null(t->config_keys[1].key);
    cr_expect_eq(xcp__sr_type_check(t, buf, sizeof(buf)), 0, "%s", buf);
    cr_expect(t->capabilities & XCP_SR_CAP_VDI_SNAPSHOT);
    /* online: through the hypervisor driver's disk pause (issue 10) */
    cr_expect(t->capabilities & XCP_SR_CAP_VDI_RESIZE_ONLINE);
    cr_expect_str_eq(xcp__sr_cap_name(XCP_SR_CAP_VDI_CLONE), "VDI_CLONE");
    cr_expect_null(xcp__sr_cap_name(UINT64_C(1) << 63));
}

/* Every registered type (file, ext, iso) is well formed. */
Test(sr_registry, every_type_is_consistent)
{
    static const char *const names[] = { "file", "ext", "iso" };
    char buf[256];
    size_t i;

    for (i = 0; i < xcp__sr_type_count(); i++)
        cr_expect_eq(xcp__sr_type_check(xcp__sr_type_at(i), buf,
                                        sizeof(buf)), 0, "%s", buf);
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        cr_expect_not_null(xcp__sr_type_find(names[i]), "%s", names[i]);
    cr_expect_str_eq(xcp__sr_type_find("iso")->content_type, "iso");
}

Test(sr_registry, check_catches_capabilities_without_operations)
{
    xcp_sr_ops ops_copy = *xcp__sr_type_file.ops;
    xcp_sr_type t = xcp__sr_type_file;
    char buf[256];

    t.ops = &ops_copy;
    ops_copy.vdi_snapshot = NULL;
    cr_expect_eq(xcp__sr_type_check(&t, buf, sizeof(buf)), -EINVAL);
    cr_expect_not_null(strstr(buf, "VDI_SNAPSHOT"), "%s", buf);
    ops_copy = *xcp__sr_type_file.ops;
    t.capabilities &= ~XCP_SR_CAP_VDI_CLONE;
    cr_expect_eq(xcp__sr_type_check(&t, buf, sizeof(buf)), -EINVAL);
    t = xcp__sr_type_file;
    t.capabilities |= XCP_SR_CAP_VDI_RESIZE_ONLINE;
    t.capabilities &= ~XCP_SR_CAP_VDI_RESIZE;
    cr_expect_eq(xcp__sr_type_check(&t, buf, sizeof(buf)), -EINVAL);
}

/* Tables older than version 4 fill the old xcp_sr_error (a name string
 * where the kind now is): the registry refuses them. */
Test(sr_registry, check_refuses_ops_before_error_kinds)
{
    xcp_sr_ops ops_copy = *xcp__sr_type_file.ops;
    xcp_sr_type t = xcp__sr_type_file;
    char buf[256];

    t.ops = &ops_copy;
    cr_expect_eq(ops_copy.version, XCP_SR_OPS_VERSION);
    cr_expect_eq(xcp__sr_type_check(&t, buf, sizeof(buf)), 0, "%s", buf);
    ops_copy.version = 3;
    cr_expect_eq(xcp__sr_type_check(&t, buf, sizeof(buf)), -EINVAL);
    cr_expect_not_null(strstr(buf, "version 3"), "%s", buf);
}

static int probe_cb(void *ctx, const xcp_sr_probe_info *p)
{
    xcp_sr_probe_info *out = ctx;

    *out = *p;
    return 0;
}

Test(file_sr, create_makes_directory_and_probe_finds_it)
{
    xcp_sr_probe_info found;
    uint64_t size = 0;
    struct stat st;

    memset(&found, 0, sizeof(found));
    cr_assert_eq(ops->sr_probe(&sr, probe_cb, &found, &e), 0);
    cr_expect_str_eq(found.sr_uuid, "", "probe found an SR before create");
    cr_assert_eq(ops->sr_create(&sr, &size, &e), 0, "%s", e.reason);
    cr_expect_gt(size, 0);
    cr_assert_eq(stat(srdir, &st), 0);
    cr_expect(S_ISDIR(st.st_mode));
    cr_assert_eq(ops->sr_probe(&sr, probe_cb, &found, &e), 0);
    cr_expect_str_eq(found.sr_uuid, SR_UUID);
    cr_expect_str_eq(found.type, "file");
    cr_expect_str_eq(found.path, srdir);
    cr_expect_eq(ops->sr_attach(&sr, &e), 0, "%s", e.reason);
    cr_expect_eq(ops->sr_detach(&sr, &e), 0);
    /* Creating again over an existing SR is refused. */
    cr_expect_eq(ops->sr_create(&sr, &size, &e), -EEXIST);
    cr_expect_eq(e.kind, XCP_SR_ERR_BACKEND);
    cr_expect_not_null(strstr(e.reason, srdir), "%s", e.reason);
}

Test(file_sr, attach_checks_the_sr_uuid)
{
    uint64_t size;

    cr_expect_lt(ops->sr_attach(&sr, &e), 0, "attached before create");
    cr_expect_not_null(strstr(e.reason, "not available"), "%s", e.reason);
    cr_assert_eq(ops->sr_create(&sr, &size, &e), 0, "%s", e.reason);
    sr.sr_uuid = "00000000-0000-4000-8000-000000000000";
    cr_expect_eq(ops->sr_attach(&sr, &e), -EINVAL);
    cr_expect_not_null(strstr(e.reason, SR_UUID), "%s", e.reason);
}

Test(file_sr, default_location_is_used_without_device_config)
{
    char def[128];
    uint64_t size;

    snprintf(def, sizeof(def), "%s/default-sr", dir);
    sr.n_device_config = 0;
    cr_expect_eq(ops->sr_create(&sr, &size, &e), -EINVAL,
                 "created with no location at all");
    sr.default_location = def;
    cr_assert_eq(ops->sr_create(&sr, &size, &e), 0, "%s", e.reason);
    cr_expect_eq(access(def, F_OK), 0);
    dc[0].value = "relative/path";
    sr.n_device_config = 1;
    cr_expect_eq(ops->sr_attach(&sr, &e), -EINVAL);
}

Test(file_sr, destroy_refuses_while_vdis_remain)
{
    uint64_t size;

    cr_assert_eq(ops->sr_create(&sr, &size, &e), 0, "%s", e.reason);
    vdi_new(MiB);
    cr_expect_eq(ops->sr_destroy(&sr, 0, &e), -ENOTEMPTY);
    cr_expect_eq(e.kind, XCP_SR_ERR_NOT_EMPTY);
    cr_expect_eq(access(srdir, F_OK), 0);
    cr_expect_eq(ops->sr_destroy(&sr, XCP_SR_DESTROY_FORCE, &e), 0, "%s",
                 e.reason);
    cr_expect_neq(access(srdir, F_OK), 0, "SR directory left behind");
}

Test(file_vdi, create_then_scan_lists_it)
{
    xcp_sr_vdi_create_params p = {
        .version = 1,
        .uuid = "11111111-2222-4333-8444-555555555555",
        .virtual_size = 2 * GiB,
    };
    xcp_sr_vdi_info a, b;
    xcp_sr_vdi_path vp;
    struct scan s;

    a = vdi_new(10 * MiB);
    cr_assert_eq(ops->vdi_create(&sr, &p, &b, &e), 0, "%s", e.reason);
    cr_expect_str_eq(b.location, "11111111-2222-4333-8444-555555555555.qcow2");
    cr_expect_str_eq(b.uuid, p.uuid);
    cr_expect_eq(ops->vdi_create(&sr, &p, &b, &e), -EEXIST);
    s = scan();
    cr_assert_eq(s.n, 2);
    cr_assert_not_null(find(&s, a.location));
    cr_expect_eq(find(&s, a.location)->virtual_size, 10 * MiB);
    cr_expect_eq(find(&s, b.location)->virtual_size, 2 * GiB);
    cr_expect_not(find(&s, a.location)->hidden);
    cr_expect_not(find(&s, a.location)->read_only);
    cr_expect_str_eq(find(&s, a.location)->parent_location, "");
    cr_expect_str_eq(find(&s, a.location)->format, "qcow2");
    cr_assert_eq(ops->vdi_path(&sr, a.location, &vp, &e), 0);
    cr_expect_str_eq(vp.format, "qcow2");
    cr_expect_not_null(strstr(vp.path, srdir));
    assert_qemu_check(a.location);
    assert_qemu_check(b.location);
}

Test(file_vdi, damaged_image_fails_scan_but_can_be_destroyed)
{
    xcp_sr_vdi_info a = vdi_new(MiB), b = vdi_new(MiB);
    struct scan s = { .n = 0 };
    int fd;

    fd = open(path_of(b.location), O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, "JUNK", 4, 0), 4);
    close(fd);
    cr_expect_eq(ops->sr_scan(&sr, collect, &s, &e), -EMEDIUMTYPE);
    cr_expect_not_null(strstr(e.reason, b.location), "%s", e.reason);
    cr_assert_eq(ops->vdi_destroy(&sr, b.location, &e), 0, "%s", e.reason);
    cr_expect_not(exists(b.location));
    s = scan();
    cr_expect_eq(s.n, 1);
    cr_expect_str_eq(s.v[0].location, a.location);
}

Test(file_vdi, bad_or_missing_locations_are_refused)
{
    static const char *const bad[] = {
        "../../etc/passwd", "x.qcow2", "/abs.qcow2",
        "11111111-2222-4333-8444-555555555555.vhd",
        "11111111-2222-4333-8444-55555555555.qcow2",
        "11111111-2222-4333-8444-555555555555.qcow2/..",
    };
    xcp_sr_vdi_info v;
    xcp_sr_vdi_path vp;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(ops->vdi_stat(&sr, bad[i], &v, &e), -ENOENT, "%s",
                     bad[i]);
        cr_expect_eq(e.kind, XCP_SR_ERR_VDI_MISSING);
        cr_expect_eq(ops->vdi_destroy(&sr, bad[i], &e), -ENOENT);
    }
    cr_expect_eq(ops->vdi_path(&sr, "11111111-2222-4333-8444-555555555555"
                               ".qcow2", &vp, &e), -ENOENT);
    cr_expect_eq(e.kind, XCP_SR_ERR_VDI_MISSING);
}

Test(file_vdi, snapshot_keeps_old_content_and_hides_the_parent)
{
    xcp_sr_vdi_info a = vdi_new(8 * MiB);
    const xcp_sr_vdi_info *leaf, *snap, *parent;
    xcp_sr_cow_result r;
    struct scan s;

    vdi_fill(a.location, 0, MiB, 0xaa);
    cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &r, &e), 0, "%s",
                 e.reason);
    /* The VDI keeps its location; both leaves sit on the new parent. */
    cr_expect_str_eq(r.source.location, a.location);
    cr_expect_str_eq(r.source.parent_location, r.parent.location);
    cr_expect_str_eq(r.child.parent_location, r.parent.location);
    cr_expect(r.child.read_only);
    cr_expect(r.parent.hidden);
    cr_expect_str_neq(r.child.location, a.location);
    vdi_fill(a.location, 0, 4096, 0xbb);
    cr_expect(vdi_holds(r.child.location, 0, MiB, 0xaa));
    cr_expect(vdi_holds(a.location, 0, 4096, 0xbb));
    cr_expect(vdi_holds(a.location, 4096, MiB - 4096, 0xaa));
    s = scan();
    cr_assert_eq(s.n, 3);
    leaf = find(&s, a.location);
    snap = find(&s, r.child.location);
    parent = find(&s, r.parent.location);
    cr_assert(leaf && snap && parent);
    cr_expect(!leaf->hidden && !leaf->read_only);
    cr_expect(!snap->hidden && snap->read_only);
    cr_expect(parent->hidden);
    cr_expect_str_eq(parent->parent_location, "");
    cr_expect_eq(snap->virtual_size, 8 * MiB);
    /* The data lives in the parent, the new leaves are nearly empty. */
    cr_expect_geq(parent->physical_utilisation, MiB);
    cr_expect_lt(snap->physical_utilisation, MiB);
    assert_qemu_check(a.location);
    assert_qemu_check(r.child.location);
    assert_qemu_check(r.parent.location);
}

Test(file_vdi, clone_is_writable_and_independent)
{
    xcp_sr_vdi_info a = vdi_new(4 * MiB);
    xcp_sr_cow_result r;

    vdi_fill(a.location, 0, 65536, 0x11);
    cr_assert_eq(ops->vdi_clone(&sr, a.location, &r, &e), 0, "%s", e.reason);
    cr_expect_not(r.child.read_only);
    vdi_fill(r.child.location, 0, 100, 0x22);
    vdi_fill(a.location, 100, 100, 0x33);
    cr_expect(vdi_holds(r.child.location, 0, 100, 0x22));
    cr_expect(vdi_holds(r.child.location, 100, 65436, 0x11));
    cr_expect(vdi_holds(a.location, 0, 100, 0x11));
    cr_expect(vdi_holds(a.location, 100, 100, 0x33));
    assert_qemu_check(r.child.location);
}

Test(file_vdi, destroying_leaves_collects_their_hidden_parent)
{
    xcp_sr_vdi_info a = vdi_new(4 * MiB);
    xcp_sr_cow_result r;
    struct scan s;

    vdi_fill(a.location, 0, 65536, 0x11);
    cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &r, &e), 0, "%s",
                 e.reason);
    cr_assert_eq(ops->vdi_destroy(&sr, r.child.location, &e), 0, "%s",
                 e.reason);
    cr_expect_not(exists(r.child.location));
    cr_expect(exists(r.parent.location), "parent of a live leaf removed");
    cr_expect(vdi_holds(a.location, 0, 65536, 0x11));
    cr_assert_eq(ops->vdi_destroy(&sr, a.location, &e), 0, "%s", e.reason);
    cr_expect_not(exists(a.location));
    cr_expect_not(exists(r.parent.location), "childless parent kept");
    s = scan();
    cr_expect_eq(s.n, 0);
    cr_expect_eq(ops->vdi_destroy(&sr, a.location, &e), -ENOENT);
    cr_expect_eq(e.kind, XCP_SR_ERR_VDI_MISSING);
}

Test(file_vdi, destroying_a_vdi_others_depend_on_hides_it)
{
    xcp_sr_vdi_info a = vdi_new(4 * MiB);
    xcp_sr_cow_result snap, clone;
    struct scan s;

    vdi_fill(a.location, 0, 65536, 0x44);
    cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &snap, &e), 0);
    /* A clone of the read-only snapshot sits directly on it. */
    cr_assert_eq(ops->vdi_clone(&sr, snap.child.location, &clone, &e), 0,
                 "%s", e.reason);
    cr_expect_str_eq(clone.parent.location, "");
    cr_expect_str_eq(clone.child.parent_location, snap.child.location);
    cr_expect_str_eq(clone.source.location, snap.child.location);
    cr_assert_eq(ops->vdi_destroy(&sr, snap.child.location, &e), 0);
    s = scan();
    cr_assert_not_null(find(&s, snap.child.location));
    cr_expect(find(&s, snap.child.location)->hidden);
    cr_expect(vdi_holds(clone.child.location, 0, 65536, 0x44));
    cr_assert_eq(ops->vdi_destroy(&sr, clone.child.location, &e), 0);
    cr_expect_not(exists(snap.child.location));
    cr_expect(exists(snap.parent.location), "a still needs its parent");
    cr_expect(vdi_holds(a.location, 0, 65536, 0x44));
}

Test(file_vdi, gc_coalesces_a_parent_with_one_child)
{
    xcp_sr_vdi_info a = vdi_new(4 * MiB);
    xcp_sr_gc_result g;
    xcp_sr_cow_result r;
    struct scan s;

    vdi_fill(a.location, 0, 2 * 65536, 0x55);
    cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &r, &e), 0);
    vdi_fill(a.location, 65536, 100, 0x66);
    cr_assert_eq(ops->vdi_destroy(&sr, r.child.location, &e), 0);
    /* Plain gc keeps the parent: a still reads through it. */
    cr_assert_eq(ops->sr_gc(&sr, 0, &g, &e), 0, "%s", e.reason);
    cr_expect_eq(g.coalesced, 0);
    cr_expect(exists(r.parent.location));
    cr_assert_eq(ops->sr_gc(&sr, XCP_SR_GC_COALESCE, &g, &e), 0, "%s",
                 e.reason);
    cr_expect_eq(g.coalesced, 1);
    cr_expect_not(exists(r.parent.location));
    s = scan();
    cr_assert_eq(s.n, 1);
    cr_expect_str_eq(s.v[0].location, a.location);
    cr_expect_str_eq(s.v[0].parent_location, "");
    cr_expect_not(s.v[0].hidden);
    cr_expect(vdi_holds(a.location, 0, 65536, 0x55));
    cr_expect(vdi_holds(a.location, 65536, 100, 0x66));
    cr_expect(vdi_holds(a.location, 65636, 65436, 0x55));
    assert_qemu_check(a.location);
}

/* Snapshot-and-delete cycles build a chain of hidden parents above a VDI
 * that may be attached: the newer hidden node is merged into the older
 * (its parent, whose only child it is), the VDI is pointed at that one,
 * and the VDI's image is never replaced (its inode stays: a VM keeps
 * writing to it). */
Test(file_vdi, gc_coalesce_hidden_merges_hidden_parents_only)
{
    xcp_sr_vdi_info a = vdi_new(4 * MiB);
    xcp_sr_gc_result g;
    xcp_sr_cow_result r1, r2;
    struct stat before, after;
    struct scan s;

    vdi_fill(a.location, 0, 2 * 65536, 0x55);
    cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &r1, &e), 0);
    vdi_fill(a.location, 65536, 100, 0x66);
    cr_assert_eq(ops->vdi_destroy(&sr, r1.child.location, &e), 0);
    cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &r2, &e), 0);
    vdi_fill(a.location, 0, 100, 0x77);
    cr_assert_eq(ops->vdi_destroy(&sr, r2.child.location, &e), 0);
    /* a -> P2 -> P1 */
    cr_assert_str_eq(r2.parent.parent_location, r1.parent.location);
    cr_assert_eq(stat(path_of(a.location), &before), 0);

    cr_assert_eq(ops->sr_gc(&sr, XCP_SR_GC_COALESCE_HIDDEN, &g, &e), 0,
                 "%s", e.reason);
    cr_expect_eq(g.coalesced, 1);
    cr_expect_not(exists(r2.parent.location));
    cr_expect(exists(r1.parent.location));
    cr_assert_eq(stat(path_of(a.location), &after), 0);
    cr_expect_eq(after.st_ino, before.st_ino, "the VDI's image was replaced");
    s = scan();
    cr_assert_eq(s.n, 2);
    cr_expect_str_eq(find(&s, a.location)->parent_location,
                     r1.parent.location);
    cr_expect_str_eq(find(&s, r1.parent.location)->parent_location, "");
    cr_expect(find(&s, r1.parent.location)->hidden);
    cr_expect(vdi_holds(a.location, 0, 100, 0x77));
    cr_expect(vdi_holds(a.location, 100, 65436, 0x55));
    cr_expect(vdi_holds(a.location, 65536, 100, 0x66));
    cr_expect(vdi_holds(a.location, 65636, 65436, 0x55));
    assert_qemu_check(r1.parent.location);
    assert_qemu_check(a.location);
    /* What is left is a's own parent: only XCP_SR_GC_COALESCE merges it. */
    cr_assert_eq(ops->sr_gc(&sr, XCP_SR_GC_COALESCE_HIDDEN, &g, &e), 0);
    cr_expect_eq(g.coalesced, 0);
    cr_expect(exists(r1.parent.location));
}

/* The caller can name the new VDI before the call (so that a crash
 * leaves nothing it cannot name). */
Test(file_vdi, cow_names_the_child_as_asked)
{
    const char *uuid = "3d7c5e70-9f3b-4e3c-9c4d-5e6f7a8b9c0d";
    xcp_sr_vdi_info a = vdi_new(4 * MiB);
    xcp_sr_cow_result r;

    cr_assert_geq(ops->version, 2);
    cr_assert_eq(ops->vdi_cow(&sr, a.location, true, uuid, &r, &e), 0, "%s",
                 e.reason);
    cr_expect_str_eq(r.child.uuid, uuid);
    cr_expect(r.child.read_only);
    cr_expect_eq(ops->vdi_cow(&sr, a.location, false, uuid, &r, &e), -EEXIST,
                 "a second image with that uuid");
    cr_expect_eq(ops->vdi_cow(&sr, a.location, false, "../x", &r, &e),
                 -EINVAL);
    cr_assert_eq(ops->vdi_cow(&sr, a.location, false, NULL, &r, &e), 0);
    cr_expect_str_neq(r.child.uuid, uuid);
    cr_expect_not(r.child.read_only);
}

Test(file_vdi, gc_removes_debris_of_interrupted_operations)
{
    xcp_sr_gc_result g;
    char path[512];
    int fd;

    snprintf(path, sizeof(path), "%s/.xcp-tmp-whatever.qcow2", srdir);
    fd = open(path, O_CREAT | O_WRONLY, 0644);
    cr_assert_geq(fd, 0);
    close(fd);
    snprintf(path, sizeof(path),
             "%s/22222222-2222-4222-8222-222222222222.meta", srdir);
    fd = open(path, O_CREAT | O_WRONLY, 0644);
    close(fd);
    cr_assert_eq(ops->sr_gc(&sr, 0, &g, &e), 0, "%s", e.reason);
    cr_expect_eq(g.removed, 2);
    cr_expect_not(exists(".xcp-tmp-whatever.qcow2"));
    cr_expect_not(exists("22222222-2222-4222-8222-222222222222.meta"));
    cr_expect(exists("xcp-sr.conf"));
}

Test(file_vdi, stat_and_physical_utilisation)
{
    xcp_sr_vdi_info a = vdi_new(1 * GiB), v;
    xcp_sr_stat st;

    cr_assert_eq(ops->sr_stat(&sr, &st, &e), 0, "%s", e.reason);
    cr_expect_gt(st.physical_size, 0);
    cr_expect_leq(st.free_space, st.physical_size);
    cr_expect_leq(st.physical_utilisation, st.physical_size);
    /* Thin: an empty 1 GiB VDI takes a few clusters. */
    cr_expect_lt(a.physical_utilisation, MiB);
    vdi_fill(a.location, 100 * MiB, 4 * MiB, 0x77);
    cr_assert_eq(ops->vdi_stat(&sr, a.location, &v, &e), 0);
    cr_expect_geq(v.physical_utilisation, 4 * MiB);
    cr_expect_lt(v.physical_utilisation, 5 * MiB);
    cr_expect_eq(v.virtual_size, GiB);
}

Test(file_vdi, resize_grows_and_refuses_to_shrink)
{
    xcp_sr_vdi_info a = vdi_new(10 * MiB), v;
    xcp_sr_cow_result r;

    vdi_fill(a.location, 0, 4096, 0x12);
    cr_assert_eq(ops->vdi_resize(&sr, a.location, 20 * MiB, &v, &e), 0, "%s",
                 e.reason);
    cr_expect_eq(v.virtual_size, 20 * MiB);
    cr_expect(vdi_holds(a.location, 0, 4096, 0x12));
    cr_expect(vdi_holds(a.location, 10 * MiB, 10 * MiB, 0));
    cr_expect_eq(ops->vdi_resize(&sr, a.location, 5 * MiB, &v, &e),
                 -ENOTSUP);
    cr_expect_eq(e.kind, XCP_SR_ERR_BACKEND);
    cr_expect_not_null(strstr(e.reason, "shrinking"), "%s", e.reason);
    cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &r, &e), 0);
    cr_expect_eq(ops->vdi_resize(&sr, r.child.location, 30 * MiB, &v, &e),
                 -EROFS);
    cr_expect_eq(e.kind, XCP_SR_ERR_VDI_READONLY);
    assert_qemu_check(a.location);
}

Test(file_vdi, copy_makes_a_standalone_image_in_another_sr)
{
    xcp_sr_vdi_info a = vdi_new(4 * MiB), c;
    xcp_sr_kv dc2[1];
    xcp_sr_target sr2;
    xcp_sr_cow_result r;
    char dir2[128];
    uint64_t size;

    vdi_fill(a.location, 0, 65536, 0x21);
    cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &r, &e), 0);
    vdi_fill(a.location, 3 * MiB, 65536, 0x22);
    snprintf(dir2, sizeof(dir2), "%s/other", dir);
    dc2[0].key = "location";
    dc2[0].value = dir2;
    sr2 = sr;
    sr2.sr_uuid = "99999999-8888-4777-8666-555555555555";
    sr2.device_config = dc2;
    cr_assert_eq(ops->sr_create(&sr2, &size, &e), 0, "%s", e.reason);
    cr_assert_eq(ops->vdi_copy(&sr, a.location, &sr2, NULL, &c, &e), 0,
                 "%s", e.reason);
    cr_expect_str_eq(c.parent_location, "");
    cr_expect_eq(c.virtual_size, 4 * MiB);
    cr_expect_lt(c.physical_utilisation, MiB);
    {
        const xcp_sr_target saved = sr;

        sr = sr2;
        cr_expect(vdi_holds(c.location, 0, 65536, 0x21));
        cr_expect(vdi_holds(c.location, 65536, 3 * MiB - 65536, 0));
        cr_expect(vdi_holds(c.location, 3 * MiB, 65536, 0x22));
        assert_qemu_check(c.location);
        sr = saved;
    }
}

Test(file_vdi, raw_vdis_for_suspend_images)
{
    xcp_sr_vdi_create_params p = {
        .version = 1, .virtual_size = 3 * MiB, .format = "raw",
    };
    xcp_sr_vdi_info v;
    xcp_sr_vdi_path vp;
    xcp_sr_cow_result r;
    struct stat st;

    cr_assert_eq(ops->vdi_create(&sr, &p, &v, &e), 0, "%s", e.reason);
    cr_expect_str_eq(v.format, "raw");
    cr_expect_str_eq(v.location + 36, ".raw");
    cr_assert_eq(ops->vdi_path(&sr, v.location, &vp, &e), 0);
    cr_expect_str_eq(vp.format, "raw");
    cr_assert_eq(stat(vp.path, &st), 0);
    cr_expect_eq((uint64_t)st.st_size, 3 * MiB);
    cr_expect_eq(ops->vdi_snapshot(&sr, v.location, &r, &e), -ENOTSUP);
    cr_expect_eq(e.kind, XCP_SR_ERR_NOT_SUPPORTED);
    p.format = "vmdk";     /* vhd is a file SR format now */
    cr_expect_eq(ops->vdi_create(&sr, &p, &v, &e), -ENOTSUP);
}

Test(file_vdi, snapshot_chain_length_is_limited)
{
    xcp_sr_vdi_info a = vdi_new(MiB);
    xcp_sr_cow_result r;
    int i, ret = 0;

    for (i = 0; i < 40 && ret == 0; i++)
        ret = ops->vdi_snapshot(&sr, a.location, &r, &e);
    cr_expect_eq(ret, -EMLINK);
    cr_expect_eq(i, 30, "refused after %d snapshots", i - 1);
    cr_expect_not_null(strstr(e.reason, "chain is too long"), "%s",
                       e.reason);
    assert_qemu_check(a.location);
}

/* ---- vdi_cow_live: a writer that keeps its image open ------------------ */

/* A writer holding its image by a file descriptor, as QEMU does. */
struct writer {
    int fd;
    const char *vdi_path;
    ino_t old_ino;              /* the VDI's file at the switch */
    int fail;                   /* switch_to fails with this */
    int calls;
};

static ino_t ino_of(const char *path)
{
    struct stat st;

    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    return st.st_ino;
}

static ino_t fd_ino(int fd)
{
    struct stat st;

    cr_assert_eq(fstat(fd, &st), 0);
    return st.st_ino;
}

static int writer_switch(void *ctx, const char *path, const char *format,
                         char *reason, size_t len)
{
    struct writer *w = ctx;
    int fd;

    w->calls++;
    cr_expect_str_eq(format, "qcow2");
    /* until the switch, the VDI's name is the writer's file */
    w->old_ino = ino_of(w->vdi_path);
    if (w->fail) {
        snprintf(reason, len, "the writer refused");
        return w->fail;
    }
    cr_assert_geq(fd = open(path, O_RDWR | O_CLOEXEC), 0, "%s", path);
    close(w->fd);
    w->fd = fd;
    return 0;
}

/* Entries of the SR's folder (dot files too, but . and ..). */
static size_t count_dir(void)
{
    struct dirent *de;
    size_t n = 0;
    DIR *d = opendir(srdir);

    cr_assert_not_null(d);
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return n;
}

/* The writer moves onto the new leaf before it takes the VDI's name: its
 * file is then the VDI's leaf, its old one the snapshot's parent. */
Test(file_vdi, live_cow_moves_the_writer_onto_the_new_leaf)
{
    xcp_sr_vdi_info a = vdi_new(8 * MiB);
    struct writer w = {-1, NULL, 0, 0, 0};
    xcp_sr_cow_hooks h = {1, &w, writer_switch};
    xcp_sr_cow_result r;
    size_t files = count_dir();
    ino_t before;

    vdi_fill(a.location, 0, MiB, 0xaa);
    w.vdi_path = path_of(a.location);
    cr_assert_geq(w.fd = open(w.vdi_path, O_RDWR | O_CLOEXEC), 0);
    before = fd_ino(w.fd);
    cr_assert_eq(ops->vdi_cow_live(&sr, a.location, true, NULL, &h, &r, &e),
                 0, "%s", e.reason);
    cr_expect_eq(w.calls, 1);
    cr_expect_eq(w.old_ino, before);
    cr_expect_eq(ino_of(path_of(a.location)), fd_ino(w.fd),
                 "the writer's file is not the VDI's leaf");
    cr_expect_eq(ino_of(path_of(r.parent.location)), before,
                 "the snapshot's parent is not the writer's old file");
    cr_expect_str_eq(r.child.parent_location, r.parent.location);
    vdi_fill(a.location, 0, 4096, 0xbb);
    cr_expect(vdi_holds(r.child.location, 0, MiB, 0xaa));
    cr_expect(vdi_holds(a.location, 0, 4096, 0xbb));
    /* two images and the sidecars of the hidden parent and the snapshot;
     * no leaf left under its temporary name */
    cr_expect_eq(count_dir(), files + 4);
    assert_qemu_check(a.location);
    assert_qemu_check(r.child.location);
    assert_qemu_check(r.parent.location);
    close(w.fd);
}

/* A writer that cannot move: no snapshot, nothing changed. */
Test(file_vdi, live_cow_whose_writer_cannot_move_changes_nothing)
{
    xcp_sr_vdi_info a = vdi_new(8 * MiB);
    struct writer w = {-1, NULL, 0, -ENOTSUP, 0};
    xcp_sr_cow_hooks h = {1, &w, writer_switch};
    xcp_sr_cow_result r;
    size_t files = count_dir();
    ino_t before;
    int ret;

    w.vdi_path = path_of(a.location);
    cr_assert_geq(w.fd = open(w.vdi_path, O_RDWR | O_CLOEXEC), 0);
    before = fd_ino(w.fd);
    ret = ops->vdi_cow_live(&sr, a.location, false, NULL, &h, &r, &e);
    cr_expect_eq(ret, -ENOTSUP);
    cr_expect_not_null(strstr(e.reason, "the writer refused"), "%s",
                       e.reason);
    cr_expect_eq(count_dir(), files);
    cr_expect_eq(scan().n, 1);
    cr_expect_eq(ino_of(path_of(a.location)), before);
    assert_qemu_check(a.location);
    close(w.fd);
}

/* Stopped between the switch and the rename: attach finishes it. */
Test(file_vdi, attach_finishes_a_live_cow_cut_short)
{
    xcp_sr_vdi_info a = vdi_new(8 * MiB), b = vdi_new(8 * MiB);
    char live[512];
    ino_t leaf;

    snprintf(live, sizeof(live), "%s/.xcp-live-%s.%s", srdir, a.location,
             "33333333-3333-4333-8333-333333333333");
    cr_assert_eq(rename(path_of(b.location), live), 0);
    leaf = ino_of(live);
    cr_assert_eq(ops->sr_attach(&sr, &e), 0, "%s", e.reason);
    cr_expect_eq(ino_of(path_of(a.location)), leaf);
    cr_expect_eq(access(live, F_OK), -1);
}

/* ---- vdi_changes: what may differ between two VDIs (delta exports) ---- */

struct spans {
    uint64_t off[16], len[16];
    unsigned n;
};

static int span_cb(void *ctx, uint64_t off, uint64_t len)
{
    struct spans *s = ctx;

    if (s->n < 16) {
        s->off[s->n] = off;
        s->len[s->n] = len;
    }
    s->n++;
    return 0;
}

static struct spans changes(const char *loc, const char *base, bool related)
{
    struct spans s = {{0}, {0}, 0};
    bool rel = !related;

    cr_assert_eq(ops->vdi_changes(&sr, loc, base, 8 * MiB, &rel, span_cb,
                                  &s, &e), 0, "%s", e.reason);
    cr_assert_eq(rel, related);
    return s;
}

/* Only what the images above the one both chains share set themselves:
 * the writes between two snapshots, whole clusters, no data read; the
 * leaf's own writes count too; unrelated disks share nothing. */
Test(file_vdi, changes_are_what_the_images_above_the_shared_one_set)
{
    xcp_sr_vdi_info a = vdi_new(8 * MiB), other = vdi_new(8 * MiB);
    xcp_sr_cow_result r1, r2;
    struct spans s;

    vdi_fill(a.location, 0, 2 * MiB, 0xaa);
    cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &r1, &e), 0, "%s",
                 e.reason);
    vdi_fill(a.location, 4 * MiB + 100, 4096, 0xbb);
    vdi_fill(a.location, 6 * MiB, 2 * 65536, 0xcc);
    cr_assert_eq(ops->vdi_snapshot(&sr, a.location, &r2, &e), 0, "%s",
                 e.reason);
    s = changes(r2.child.location, r1.child.location, true);
    cr_assert_eq(s.n, 2);
    cr_expect_eq(s.off[0], 4 * MiB);
    cr_expect_eq(s.len[0], 65536);
    cr_expect_eq(s.off[1], 6 * MiB);
    cr_expect_eq(s.len[1], 2 * 65536);
    /* the leaf, with a write of its own since S2, and zeros QEMU wrote
       as a zero cluster (no data, yet it hides the data below) */
    vdi_fill(a.location, 7 * MiB, 10, 0xdd);
    {
        const char *const argv[] = { "qemu-io", "-f", "qcow2", "-c",
                                     "write -z 1M 64k",
                                     path_of(a.location), NULL };
        cr_assert_eq(run(argv), 0, "qemu-io write -z");
    }
    s = changes(a.location, r1.child.location, true);
    cr_assert_eq(s.n, 4);
    cr_expect_eq(s.off[0], MiB);
    cr_expect_eq(s.len[0], 65536);
    s = changes(r2.child.location, r2.child.location, true);
    cr_expect_eq(s.n, 0);
    changes(r2.child.location, other.location, false);
}

Test(ranges, merge_sorts_and_joins)
{
    xcp__ranges r = {0};

    cr_assert_eq(xcp__ranges_add(&r, 100, 10), 0);
    cr_assert_eq(xcp__ranges_add(&r, 110, 5), 0);    /* joins the last */
    cr_assert_eq(xcp__ranges_add(&r, 0, 50), 0);
    cr_assert_eq(xcp__ranges_add(&r, 40, 20), 0);    /* overlaps */
    cr_assert_eq(xcp__ranges_add(&r, 60, 0), 0);     /* nothing */
    cr_assert_eq(xcp__ranges_add(&r, 112, 1), 0);    /* inside */
    xcp__ranges_merge(&r);
    cr_assert_eq(r.n, 2);
    cr_expect_eq(r.v[0].off, 0);
    cr_expect_eq(r.v[0].len, 60);
    cr_expect_eq(r.v[1].off, 100);
    cr_expect_eq(r.v[1].len, 15);
    cr_expect_eq(xcp__ranges_bytes(&r), 75);
    xcp__ranges_dispose(&r);
    cr_expect_eq(r.n, 0);
}
