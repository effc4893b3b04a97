/*
 * tests/api/test_sr_ext.c - the `ext` SR type (sr/ext.c) through the
 * public API: SR.create formats a block device (a loop device on a sparse
 * file made here) with ext4 and mounts it; VDIs are qcow2 images in the
 * mount (written with qemu-io, snapshotted through the API); PBD.unplug
 * unmounts and PBD.plug mounts again with the data intact; SR.destroy
 * unmounts and wipes the device.  Sizes come from statvfs of the mount.
 * Errors name what failed and where, as XCP-ng's EXT SR.
 *
 * Needs root, /dev/loop-control, mkfs.ext4 and qemu-io; skips with a
 * message without them.  Loop devices are set to clear themselves on the
 * last close and every mount is undone in the fixture.
 */
#define _GNU_SOURCE
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define DISK_SIZE (256 * MiB)

static int loop_fd = -1;
static char loop_dev[64];
static char mounts[4][512];     /* mount points to undo */

static void note_mount(const char *mnt)
{
    size_t i;

    for (i = 0; i < 4; i++)
        if (!mounts[i][0] || strcmp(mounts[i], mnt) == 0) {
            snprintf(mounts[i], sizeof(mounts[i]), "%s", mnt);
            return;
        }
}

static void teardown(void)
{
    size_t i;

    for (i = 0; i < 4; i++) {
        if (mounts[i][0])
            umount2(mounts[i], MNT_DETACH);
        mounts[i][0] = '\0';
    }
    if (loop_fd >= 0) {
        ioctl(loop_fd, LOOP_CLR_FD, 0);
        close(loop_fd);
    }
    loop_fd = -1;
    api_teardown();
}

TestSuite(sr_ext, .init = api_setup, .fini = teardown);

/* Run argv, output discarded; its exit status (-1: not run). */
static int run(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    int status;
    pid_t pid;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static bool have(const char *prog)
{
    char *argv[] = { (char *)prog, (char *)"-V", NULL };

    return run(argv) >= 0;
}

/* A loop device over a sparse file of DISK_SIZE in the state dir. */
static void make_loop(void)
{
    char file[400];
    struct loop_info64 info;
    int ctl, n, fd;

    if (geteuid() != 0 || !have("mkfs.ext4") || !have("qemu-io"))
        cr_skip_test("ext SR tests need root, mkfs.ext4 (e2fsprogs) and "
                     "qemu-io (qemu-utils)");
    ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0)
        cr_skip_test("no loop devices: /dev/loop-control: %s",
                     strerror(errno));
    snprintf(file, sizeof(file), "%s/disk.img", api_dir);
    fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    cr_assert(fd >= 0);
    cr_assert_eq(ftruncate(fd, DISK_SIZE), 0);
    for (;;) {
        n = ioctl(ctl, LOOP_CTL_GET_FREE);
        if (n < 0)
            cr_skip_test("no free loop device: %s", strerror(errno));
        snprintf(loop_dev, sizeof(loop_dev), "/dev/loop%d", n);
        loop_fd = open(loop_dev, O_RDWR | O_CLOEXEC);
        if (loop_fd < 0)
            cr_skip_test("%s: %s", loop_dev, strerror(errno));
        if (ioctl(loop_fd, LOOP_SET_FD, fd) == 0)
            break;
        close(loop_fd);         /* taken by another process meanwhile */
        loop_fd = -1;
        if (errno != EBUSY)
            cr_skip_test("LOOP_SET_FD: %s", strerror(errno));
    }
    memset(&info, 0, sizeof(info));
    info.lo_flags = LO_FLAGS_AUTOCLEAR;
    ioctl(loop_fd, LOOP_SET_STATUS64, &info);
    close(fd);
    close(ctl);
}

static void assert_reason(int rc, const char *needle)
{
    const xcp_error *e = xcp_error_last();

    assert_error_name(rc, "SR_BACKEND_FAILURE");
    cr_assert_eq(e->nparams, 3);
    cr_assert(strstr(e->params[1], needle), "reason '%s' lacks '%s'",
              e->params[1], needle);
}

static int ext_create(const char *device, xcp_sr *sr)
{
    xcp_string_map dc = {0}, smc = {0};
    int rc;

    if (device)
        xcp_string_map_set(&dc, "device", device);
    rc = xcp_sr_create(S, sr, api_host(), &dc, 0, "ext", "", "ext", "",
                       false, &smc);
    xcp_string_map_dispose(&dc);
    return rc;
}

/* Where the SR is mounted: the state dir's SR area. */
static void mount_of(xcp_sr sr, char *mnt, size_t len)
{
    char *uuid = NULL;

    OK(xcp_sr_get_uuid(S, &uuid, sr));
    snprintf(mnt, len, "%s/sr/%s", api_dir, uuid);
    xcp_free(uuid);
    note_mount(mnt);
}

static bool is_mount(const char *mnt)
{
    char parent[600];
    struct stat a, b;

    snprintf(parent, sizeof(parent), "%s/..", mnt);
    return stat(mnt, &a) == 0 && stat(parent, &b) == 0 &&
           a.st_dev != b.st_dev;
}

static xcp_pbd only_pbd(xcp_sr sr)
{
    xcp_pbd_set pbds;
    xcp_pbd p;

    OK(xcp_sr_get_PBDs(S, &pbds, sr));
    cr_assert_eq(pbds.n, 1);
    p = pbds.items[0];
    xcp_pbd_set_dispose(&pbds);
    return p;
}

/* qemu-io on the image of vdi in the mount: "write -P 0xab 0 1M" or
 * "read -P 0xab 0 1M" (fails on other data). */
static int qemu_io(const char *mnt, xcp_vdi vdi, const char *cmd)
{
    char *loc = NULL, path[700];
    char *argv[] = { (char *)"qemu-io", (char *)"-f", (char *)"qcow2",
                     (char *)"-c", (char *)cmd, path, NULL };
    int rc;

    OK(xcp_vdi_get_location(S, &loc, vdi));
    snprintf(path, sizeof(path), "%s/%s", mnt, loc);
    xcp_free(loc);
    rc = run(argv);
    return rc;
}

/* SR sizes against statvfs of the mount. */
static void assert_sizes(xcp_sr sr, const char *mnt)
{
    struct statvfs fs;
    int64_t size, used;

    OK(xcp_sr_update(S, sr));
    OK(xcp_sr_get_physical_size(S, &size, sr));
    OK(xcp_sr_get_physical_utilisation(S, &used, sr));
    cr_assert_eq(statvfs(mnt, &fs), 0);
    cr_assert_eq(size, (int64_t)(fs.f_blocks * fs.f_frsize));
    cr_assert(size > DISK_SIZE / 2 && size <= DISK_SIZE,
              "physical_size %" PRId64, size);
    cr_assert(used > 0 && used < size, "physical_utilisation %" PRId64, used);
}

Test(sr_ext, create_plug_vdis_snapshot_unplug_replug_destroy)
{
    char mnt[512];
    xcp_string_map none = {0};
    xcp_vdi vdi, snap;
    xcp_sr sr;
    xcp_pbd pbd;
    char *ct = NULL;

    make_loop();
    OK(ext_create(loop_dev, &sr));
    mount_of(sr, mnt, sizeof(mnt));
    cr_assert(is_mount(mnt), "%s is not mounted after SR.create", mnt);
    OK(xcp_sr_get_content_type(S, &ct, sr));
    cr_assert_str_eq(ct, "user");
    xcp_free(ct);
    assert_sizes(sr, mnt);

    OK(api_vdi_create(&vdi, sr, "disk", 64 * MiB));
    cr_assert_eq(qemu_io(mnt, vdi, "write -P 0xab 0 1M"), 0);
    OK(xcp_vdi_snapshot(S, &snap, vdi, &none));
    cr_assert_eq(qemu_io(mnt, vdi, "write -P 0xcd 0 64k"), 0);
    cr_assert_eq(qemu_io(mnt, snap, "read -P 0xab 0 1M"), 0);
    cr_assert_eq(qemu_io(mnt, vdi, "read -P 0xcd 0 64k"), 0);
    assert_sizes(sr, mnt);

    /* Unplug unmounts; the VDIs are then unreachable; replug mounts. */
    pbd = only_pbd(sr);
    OK(xcp_pbd_unplug(S, pbd));
    cr_assert(!is_mount(mnt), "%s still mounted after PBD.unplug", mnt);
    OK(xcp_pbd_plug(S, pbd));
    cr_assert(is_mount(mnt), "%s not mounted after PBD.plug", mnt);
    cr_assert_eq(qemu_io(mnt, snap, "read -P 0xab 0 1M"), 0);
    cr_assert_eq(qemu_io(mnt, vdi, "read -P 0xab 64k 960k"), 0);
    OK(xcp_sr_scan(S, sr));

    /* Destroy: VDIs first, then unplug, then SR.destroy wipes. */
    OK(xcp_vdi_destroy(S, snap));
    OK(xcp_vdi_destroy(S, vdi));
    OK(xcp_pbd_unplug(S, pbd));
    OK(xcp_sr_destroy(S, sr));
    cr_assert(!is_mount(mnt), "%s still mounted after SR.destroy", mnt);
    /* The device no longer holds an SR: a new one can be made on it. */
    OK(ext_create(loop_dev, &sr));
    mount_of(sr, mnt, sizeof(mnt));
    pbd = only_pbd(sr);
    OK(xcp_pbd_unplug(S, pbd));
    OK(xcp_sr_destroy(S, sr));
}

/* SR.probe on the loop device names sr. */
static void assert_probe_finds(xcp_sr sr)
{
    xcp_string_map dc = {0}, smc = {0};
    char *xml = NULL, *uuid = NULL;

    xcp_string_map_set(&dc, "device", loop_dev);
    OK(xcp_sr_probe(S, &xml, api_host(), &dc, "ext", &smc));
    OK(xcp_sr_get_uuid(S, &uuid, sr));
    cr_assert(strstr(xml, uuid) && strstr(xml, "<Type>ext</Type>"),
              "probe: %s", xml);
    xcp_free(xml);
    xcp_free(uuid);
    xcp_string_map_dispose(&dc);
}

Test(sr_ext, a_device_holding_an_sr_is_not_formatted_again)
{
    char mnt[512];
    xcp_sr sr, other;
    xcp_vdi vdi;

    make_loop();
    OK(ext_create(loop_dev, &sr));
    mount_of(sr, mnt, sizeof(mnt));
    OK(api_vdi_create(&vdi, sr, "disk", 4 * MiB));
    /* Attached or not, the device holds an SR: SR.create refuses it and
     * SR.probe reports it. */
    assert_reason(ext_create(loop_dev, &other), "The SR already exists");
    assert_probe_finds(sr);
    OK(xcp_pbd_unplug(S, only_pbd(sr)));
    assert_reason(ext_create(loop_dev, &other), "The SR already exists");
    assert_probe_finds(sr);
    /* Its VDIs survived. */
    OK(xcp_pbd_plug(S, only_pbd(sr)));
    cr_assert_eq(qemu_io(mnt, vdi, "read -P 0 0 1M"), 0);
}

Test(sr_ext, bad_devices_say_what_and_where)
{
    char file[400];
    xcp_sr sr;
    int fd;

    assert_reason(ext_create(NULL, &sr), "missing the device parameter");
    assert_reason(ext_create("/dev/no-such-disk", &sr),
                  "/dev/no-such-disk: No such file or directory");
    snprintf(file, sizeof(file), "%s/plain", api_dir);
    fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    cr_assert(fd >= 0);
    close(fd);
    assert_reason(ext_create(file, &sr), "is not a block device");
    /* A device without an SR: probe finds none. */
    {
        xcp_string_map dc = {0}, smc = {0};
        char *xml = NULL;

        make_loop();
        xcp_string_map_set(&dc, "device", loop_dev);
        OK(xcp_sr_probe(S, &xml, api_host(), &dc, "ext", &smc));
        cr_assert(!strstr(xml, "<SR>"), "probe: %s", xml);
        xcp_free(xml);
        xcp_string_map_dispose(&dc);
    }
}

Test(sr_ext, the_type_is_listed_with_its_capabilities)
{
    xcp_string_set types;

    OK(xcp_sr_get_supported_types(S, &types));
    cr_assert(api_str_set_has(&types, "ext"));
    cr_assert(api_str_set_has(&types, "iso"));
    xcp_string_set_dispose(&types);
}

Test(sr_ext, a_restart_after_the_mount_went_mounts_it_again)
{
    char mnt[512];
    xcp_vdi vdi;
    xcp_sr sr;
    bool attached;

    make_loop();
    OK(ext_create(loop_dev, &sr));
    mount_of(sr, mnt, sizeof(mnt));
    OK(api_vdi_create(&vdi, sr, "disk", 8 * MiB));
    cr_assert_eq(qemu_io(mnt, vdi, "write -P 0x5a 0 1M"), 0);
    /* The host reboots: the toolstack stops, the mount is gone. */
    xcp_session_close(S);
    S = NULL;
    cr_assert_eq(umount2(mnt, 0), 0, "umount %s: %s", mnt, strerror(errno));
    cr_assert(!is_mount(mnt));
    api_open();
    cr_assert(is_mount(mnt), "%s not mounted again at open", mnt);
    OK(xcp_pbd_get_currently_attached(S, &attached, only_pbd(sr)));
    cr_assert(attached);
    cr_assert_eq(qemu_io(mnt, vdi, "read -P 0x5a 0 1M"), 0);
    OK(xcp_sr_scan(S, sr));
}

/*
 * A snapshot of a running VM's disk on an ext SR whose back end cannot
 * pause (the sim as Xen's QEMU): the file SR's vdi_cow_live on the
 * mounted directory (issue 10, item 2), point-in-time.  Before: ext had
 * no vdi_cow_live: VDI_IN_USE.
 */
Test(sr_ext, a_running_disk_is_snapshotted_live)
{
    char mnt[512];
    xcp_vdi vdi, snap;
    xcp_vm vm;
    xcp_sr sr;

    make_loop();
    OK(ext_create(loop_dev, &sr));
    mount_of(sr, mnt, sizeof(mnt));
    OK(api_vdi_create(&vdi, sr, "disk", 64 * MiB));
    cr_assert_eq(qemu_io(mnt, vdi, "write -P 0xab 0 1M"), 0);
    api_reopen_with_hv("sim-qemu");
    vm = api_install("vm");
    api_disk_vbd(vm, vdi, "1");
    OK(xcp_vm_start(S, vm, false, false));
    cr_assert(api_vdi_allows(vdi, XCP_VDI_OPERATIONS_SNAPSHOT));
    OK(xcp_vdi_snapshot(S, &snap, vdi, NULL));
    OK(xcp_vm_hard_shutdown(S, vm));
    cr_assert_eq(qemu_io(mnt, snap, "read -P 0xab 0 1M"), 0);
    cr_assert_eq(qemu_io(mnt, vdi, "write -P 0xcd 0 64k"), 0);
    cr_assert_eq(qemu_io(mnt, snap, "read -P 0xab 0 1M"), 0);
    cr_assert_eq(qemu_io(mnt, vdi, "read -P 0xab 64k 960k"), 0);
    OK(xcp_vdi_destroy(S, snap));
    OK(xcp_vm_destroy(S, vm));
    OK(xcp_vdi_destroy(S, vdi));
    OK(xcp_pbd_unplug(S, only_pbd(sr)));
}
