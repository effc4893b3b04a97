/*
 * tests/unit/hv/test_sim_guest.c - the sim's guests really write to their
 * disks, through the image I/O the library lends the driver (issue 10,
 * item 5): a paused disk holds a write until its reopen, which sends it
 * to the new chain; a snapshot taken while the guest writes holds what
 * was acknowledged before it; and while the guest keeps writing, the
 * collector merges and leaf-coalesces its chain, the disk is resized and
 * its tracking switched, and every acknowledged write reads back from
 * the image afterwards.
 *
 * The engine is the public API's (a local session, as tests/api); the
 * test's own sim instance on the same state directory is the guest's
 * hand (xcp__sim_guest_write), as a second process sharing the host
 * would be.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/wait.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "../../api/helpers.h"
#include "engine/engine.h" /* xcp__hv_image_ops */
#include "hv_internal.h"
#include "image.h"
#include "sim.h"

#define REC XCP__SIM_RECORD_SIZE
#define DATA_AT (8 * MiB) /* past the records' slots */

static void *guest; /* the test's instance of the simulated host */
static xcp_hv_error herr;

static void setup(void)
{
    struct xcp__sim_options opt;

    setenv("XCP_SIM_GUEST_WRITE_MS", "20", 1);
    api_setup();
    cr_assert_eq(xcp__sim_options_default(&opt, &herr), 0, "%s",
                 herr.message);
    cr_assert_eq(xcp__sim_open(&guest, api_dir, &opt, &herr), 0, "%s",
                 herr.message);
    xcp__hv_sim_driver.image_ops(guest, &xcp__hv_image_ops);
}

static void teardown(void)
{
    xcp__hv_sim_driver.close(guest);
    guest = NULL;
    api_teardown();
}

TestSuite(sim_guest, .init = setup, .fini = teardown, .timeout = 600);

/* The VM's disk, and its device name. */
static xcp_vdi vm_disk(xcp_vm vm, char *vdev, size_t len)
{
    xcp_vbd_set vbds = {0};
    enum xcp_vbd_type type;
    xcp_vdi disk = {""};
    char *dev = NULL;
    size_t i;

    OK(xcp_vm_get_VBDs(S, &vbds, vm));
    for (i = 0; i < vbds.n; i++) {
        OK(xcp_vbd_get_type(S, &type, vbds.items[i]));
        if (type != XCP_VBD_TYPE_DISK)
            continue;
        OK(xcp_vbd_get_VDI(S, &disk, vbds.items[i]));
        OK(xcp_vbd_get_device(S, &dev, vbds.items[i]));
        snprintf(vdev, len, "%s", dev);
        xcp_free(dev);
    }
    xcp_vbd_set_dispose(&vbds);
    cr_assert(disk.ref[0], "the VM has no disk");
    return disk;
}

/* The image file of a VDI of the default SR. */
static const char *file_of(xcp_vdi vdi, char *path, size_t len)
{
    char *loc = NULL;

    OK(xcp_vdi_get_location(S, &loc, vdi));
    snprintf(path, len, "%s/sr/local/%s", api_dir, loc);
    xcp_free(loc);
    return path;
}

/* len bytes at offset of the VDI's image, read through its chain by the
 * image library (what an export sends). */
static void read_vdi(xcp_vdi vdi, uint64_t offset, void *buf, size_t len)
{
    char path[640], msg[256];
    xcp__image *im;

    file_of(vdi, path, sizeof(path));
    cr_assert_eq(xcp__image_open(&im, path, "qcow2", XCP__IMAGE_RDONLY, msg,
                                 sizeof(msg)), 0, "%s", msg);
    cr_assert_eq(xcp__image_read(im, offset, buf, len, msg, sizeof(msg)), 0,
                 "%s", msg);
    xcp__image_close(im);
}

static void pattern(unsigned char *buf, size_t len, unsigned tag)
{
    size_t i;

    for (i = 0; i < len; i++)
        buf[i] = (unsigned char)(tag * 131 + i * 7);
}

/* The guest writes len bytes of pattern tag at offset (acknowledged). */
static void guest_write(uint32_t domid, const char *vdev, uint64_t offset,
                        unsigned tag)
{
    unsigned char buf[4096];

    pattern(buf, sizeof(buf), tag);
    cr_assert_eq(xcp__sim_guest_write(guest, domid, vdev, offset, buf,
                                      sizeof(buf), 60000, &herr),
                 0, "guest write: %s", herr.message);
}

static bool holds(xcp_vdi vdi, uint64_t offset, unsigned tag)
{
    unsigned char want[4096], got[4096];

    pattern(want, sizeof(want), tag);
    read_vdi(vdi, offset, got, sizeof(got));
    return memcmp(want, got, sizeof(got)) == 0;
}

static uint64_t records(uint32_t domid, const char *vdev)
{
    uint64_t n = 0;

    cr_assert_eq(xcp__sim_guest_written(guest, domid, vdev, &n, &herr), 0,
                 "%s", herr.message);
    return n;
}

/* Waits until the guest has acknowledged at least n records. */
static void wait_records(uint32_t domid, const char *vdev, uint64_t n)
{
    int i;

    for (i = 0; i < 6000 && records(domid, vdev) < n; i++)
        usleep(10000);
    cr_assert_geq(records(domid, vdev), n, "the guest wrote no records");
}

/* Every record slot of the VDI holds the latest of records 1 .. n. */
static void check_records(xcp_vdi vdi, const char *uuid, const char *vdev,
                          uint64_t n)
{
    unsigned char want[REC], got[REC];
    uint64_t seq, off;

    cr_assert_geq(n, XCP__SIM_RECORD_SLOTS, "too few records: %" PRIu64, n);
    for (seq = n - XCP__SIM_RECORD_SLOTS + 1; seq <= n; seq++) {
        off = xcp__sim_guest_record(seq, uuid, vdev, want);
        read_vdi(vdi, off, got, sizeof(got));
        cr_assert(memcmp(want, got, REC) == 0, "record %" PRIu64 " of %"
                  PRIu64 " is not at %" PRIu64 ": '%.40s'", seq, n, off,
                  (char *)got);
    }
}


extern char **environ;

/* `qemu-img check` of every image in the default SR is clean and says
 * nothing (no leak, no corruption, no bitmap made inconsistent by a
 * second writer); the guest is paused meanwhile. */
static void check_images(void)
{
    char dir[512], path[800], out[600];
    const char *argv[] = {"qemu-img", "check", "-q", "-U", "-f", "qcow2",
                          path, NULL};
    posix_spawn_file_actions_t fa;
    struct dirent *de;
    struct stat st;
    int status;
    size_t len;
    pid_t pid;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/sr/local", api_dir);
    snprintf(out, sizeof(out), "%s/qemu-img.out", api_dir);
    cr_assert_not_null(d = opendir(dir), "%s", dir);
    while ((de = readdir(d))) {
        len = strlen(de->d_name);
        if (len <= 6 || strcmp(de->d_name + len - 6, ".qcow2"))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT |
                                         O_TRUNC, 0600);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        cr_assert_eq(posix_spawnp(&pid, argv[0], &fa, NULL,
                                  (char *const *)argv, environ), 0);
        posix_spawn_file_actions_destroy(&fa);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "qemu-img check %s: exit %d", path, WEXITSTATUS(status));
        cr_assert_eq(stat(out, &st), 0);
        cr_expect_eq(st.st_size, 0, "qemu-img check %s says something "
                     "(see %s)", path, out);
    }
    closedir(d);
}

static xcp_vm running_vm(uint32_t *domid)
{
    xcp_vm vm = api_install("vm");

    OK(xcp_vm_start(S, vm, false, false));
    *domid = (uint32_t)api_domid(vm);
    return vm;
}

struct held_write {
    uint32_t domid;
    const char *vdev;
    atomic_bool done;
    int rc;
};

static void *write_later(void *arg)
{
    struct held_write *w = arg;
    unsigned char buf[4096];
    xcp_hv_error e;

    pattern(buf, sizeof(buf), 2);
    w->rc = xcp__sim_guest_write(guest, w->domid, w->vdev, DATA_AT, buf,
                                 sizeof(buf), 60000, &e);
    atomic_store(&w->done, true);
    return NULL;
}

/* A write the guest issues while its disk is paused waits (it is not
 * failed nor dropped) and lands on the chain the reopen brings, not on
 * the image the disk had. */
Test(sim_guest, a_paused_disk_holds_a_write_until_its_reopen)
{
    char vdev[16], path[640], child[700], msg[256], leaf[64];
    struct held_write w = {0};
    unsigned char buf[4096], want[4096];
    xcp__image *im;
    uint32_t domid;
    pthread_t t;
    xcp_vm vm = running_vm(&domid);
    xcp_vdi disk = vm_disk(vm, vdev, sizeof(vdev));
    uint64_t n;

    guest_write(domid, vdev, DATA_AT, 1);
    cr_assert(holds(disk, DATA_AT, 1));
    cr_assert_eq(xcp__hv_sim_driver.disk_pause(guest, domid, vdev, &herr), 0,
                 "%s", herr.message);
    n = records(domid, vdev);
    w.domid = domid;
    w.vdev = vdev;
    cr_assert_eq(pthread_create(&t, NULL, write_later, &w), 0);
    usleep(500000);
    cr_assert_not(atomic_load(&w.done), "a write went through a paused "
                  "disk");
    cr_assert_eq(records(domid, vdev), n, "records written while paused");
    cr_assert(holds(disk, DATA_AT, 1));
    /* The library gives the disk a new leaf (as a snapshot would). */
    file_of(disk, path, sizeof(path));
    snprintf(leaf, sizeof(leaf), "%s", strrchr(path, '/') + 1);
    snprintf(child, sizeof(child), "%s/sr/local/new-leaf.qcow2", api_dir);
    cr_assert_eq(xcp__image_create(child, "qcow2", 0, leaf, msg,
                                   sizeof(msg)), 0, "%s", msg);
    cr_assert_eq(xcp__hv_sim_driver.disk_reopen(guest, domid, vdev, child,
                                                "qcow2", &herr),
                 0, "%s", herr.message);
    pthread_join(t, NULL);
    cr_assert_eq(w.rc, 0, "the held write failed");
    /* on the new leaf, the old image untouched */
    cr_assert(holds(disk, DATA_AT, 1), "the held write reached the old "
              "image");
    cr_assert_eq(xcp__image_open(&im, child, "qcow2", XCP__IMAGE_RDONLY, msg,
                                 sizeof(msg)), 0, "%s", msg);
    cr_assert_eq(xcp__image_read(im, DATA_AT, buf, sizeof(buf), msg,
                                 sizeof(msg)), 0, "%s", msg);
    xcp__image_close(im);
    pattern(want, sizeof(want), 2);
    cr_assert(memcmp(buf, want, sizeof(buf)) == 0, "the held write is not "
              "on the reopened chain");
    /* and the records go on there */
    wait_records(domid, vdev, n + 3);
    OK(xcp_vm_hard_shutdown(S, vm));
}

/* A guest that writes as fast as it can: write k (0, 1, ...) is pattern
 * k at HAMMER_AT + (k % HAMMER_SLOTS) * 64 KiB. */
#define HAMMER_AT (32 * MiB)
#define HAMMER_SLOTS 64

struct hammer {
    uint32_t domid;
    const char *vdev;
    atomic_bool stop;
    atomic_uint acked;          /* writes 0 .. acked - 1 acknowledged */
    int rc;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    unsigned char buf[4096];
    xcp_hv_error e;
    unsigned k;

    for (k = 0; !atomic_load(&h->stop); k++) {
        pattern(buf, sizeof(buf), k);
        h->rc = xcp__sim_guest_write(guest, h->domid, h->vdev,
                                     HAMMER_AT + (k % HAMMER_SLOTS) * 65536,
                                     buf, sizeof(buf), 60000, &e);
        if (h->rc < 0)
            break;
        atomic_store(&h->acked, k + 1);
    }
    return NULL;
}

/* The latest acknowledged write of each hammer slot reads back. */
static void check_hammer(xcp_vdi vdi, unsigned acked)
{
    unsigned k = acked > HAMMER_SLOTS ? acked - HAMMER_SLOTS : 0;

    for (; k < acked; k++)
        cr_assert(holds(vdi, HAMMER_AT + (k % HAMMER_SLOTS) * 65536, k),
                  "acknowledged write %u of %u lost", k, acked);
}

/*
 * While the guest writes (its records, and data of the test's), the disk
 * is snapshotted (each snapshot holds what was acknowledged before it,
 * not what came after), resized and its tracking switched, and the
 * collector merges the chain and leaf-coalesces the disk; at the end the
 * chain is one image again and every acknowledged write reads back.
 */
Test(sim_guest, acknowledged_writes_survive_snapshots_and_the_collector)
{
    char vdev[16], *uuid = NULL;
    xcp_vdi snap[4];
    struct hammer h = {0};
    pthread_t t;
    uint32_t domid;
    size_t start;
    xcp_vm vm = running_vm(&domid);
    xcp_vdi disk = vm_disk(vm, vdev, sizeof(vdev));
    uint64_t n;
    unsigned i;

    OK(xcp_vm_get_uuid(S, &uuid, vm));
    start = api_count_image_files();
    h.domid = domid;
    h.vdev = vdev;
    cr_assert_eq(pthread_create(&t, NULL, hammer_main, &h), 0);
    for (i = 0; i < 4; i++) {
        guest_write(domid, vdev, DATA_AT + i * MiB, 10 + i);
        OK(xcp_vdi_snapshot(S, &snap[i], disk, NULL));
        /* after the snapshot: the disk sees it, the snapshot not */
        guest_write(domid, vdev, DATA_AT + i * MiB, 20 + i);
        cr_assert(holds(snap[i], DATA_AT + i * MiB, 10 + i),
                  "snapshot %u does not hold the write before it", i);
        cr_assert(holds(disk, DATA_AT + i * MiB, 20 + i));
        if (i == 3)
            OK(xcp_vdi_resize(S, disk, 12 * GiB));
        if (i == 2)
            OK(xcp_vdi_enable_cbt(S, disk));
        wait_records(domid, vdev, records(domid, vdev) + 2);
    }
    OK(xcp_vdi_disable_cbt(S, disk));
    atomic_store(&h.stop, true);
    pthread_join(t, NULL);
    cr_assert_eq(h.rc, 0, "a guest write failed");
    for (i = 0; i < 4; i++) {
        cr_assert(holds(snap[i], DATA_AT + i * MiB, 10 + i),
                  "snapshot %u changed after it was taken", i);
        OK(xcp_vdi_destroy(S, snap[i]));
    }
    /* The collector's pass, the guest still writing (closing the engine
     * finishes it); the guest's records go on meanwhile. */
    n = records(domid, vdev);
    for (i = 0; i < 10 && api_count_image_files() > start; i++) {
        api_reopen();
        if (api_count_image_files() > start)
            sleep(1);
    }
    wait_records(domid, vdev, n + 5);
    cr_assert_eq(api_count_image_files(), start,
                 "the running disk's chain was not coalesced: %zu images, "
                 "%zu before", api_count_image_files(), start);
    wait_records(domid, vdev, XCP__SIM_RECORD_SLOTS + 8);
    /* Stop the guest, then read everything back. */
    OK(xcp_vm_pause(S, vm));
    n = records(domid, vdev);
    check_images();
    check_records(disk, uuid, vdev, n);
    check_hammer(disk, atomic_load(&h.acked));
    for (i = 0; i < 4; i++)
        cr_assert(holds(disk, DATA_AT + i * MiB, 20 + i), "write %u lost",
                  i);
    xcp_free(uuid);
    OK(xcp_vm_hard_shutdown(S, vm));
}

/* The back end's own resize and tracking switch (slots disk_resize and
 * disk_cbt), through the library's image I/O, on a VHD disk too: before,
 * the sim wrote a qcow2 header's size field by hand (VHD: -ENOTSUP) and
 * only noted the bitmap (qcow2 only), nothing in the image. */
Test(sim_guest, the_back_end_resizes_and_tracks_a_vhd_disk)
{
    char path[600], log[620], msg[256];
    xcp_hv_disk k = {0};
    unsigned char buf[4096], want[4096];
    xcp__image *im;
    struct stat st;
    uint64_t size = 0;
    uint32_t domid;
    xcp_vm vm = running_vm(&domid);

    snprintf(path, sizeof(path), "%s/extra.vhd", api_dir);
    snprintf(log, sizeof(log), "%s/extra.cbtlog", api_dir);
    cr_assert_eq(xcp__image_create(path, "vhd", 8 * MiB, NULL, msg,
                                   sizeof(msg)), 0, "%s", msg);
    k.path = path;
    k.format = "vhd";
    k.vdev = "xvdc";
    cr_assert_eq(xcp__hv_sim_driver.disk_plug(guest, domid, &k, &herr), 0,
                 "%s", herr.message);
    guest_write(domid, "xvdc", 1 * MiB, 7);
    cr_assert_eq(xcp__hv_sim_driver.disk_resize(guest, domid, "xvdc",
                                                16 * MiB, &herr),
                 0, "disk_resize: %s", herr.message);
    cr_assert_eq(xcp__hv_sim_driver.disk_size(guest, domid, "xvdc", &size,
                                              &herr), 0);
    cr_assert_eq(size, 16 * MiB);
    cr_assert_eq(xcp__hv_sim_driver.disk_cbt(guest, domid, "xvdc",
                                             XCP_HV_CBT_BITMAP, true, &herr),
                 0, "disk_cbt: %s", herr.message);
    cr_assert_eq(stat(log, &st), 0, "no %s", log);
    guest_write(domid, "xvdc", 12 * MiB, 8); /* past the old end */
    cr_assert_eq(xcp__image_open(&im, path, "vhd", XCP__IMAGE_RDONLY, msg,
                                 sizeof(msg)), 0, "%s", msg);
    cr_assert_eq(xcp__image_virtual_size(im), 16 * MiB);
    cr_assert_eq(xcp__image_read(im, 1 * MiB, buf, sizeof(buf), msg,
                                 sizeof(msg)), 0, "%s", msg);
    pattern(want, sizeof(want), 7);
    cr_assert(memcmp(buf, want, sizeof(buf)) == 0);
    cr_assert_eq(xcp__image_read(im, 12 * MiB, buf, sizeof(buf), msg,
                                 sizeof(msg)), 0, "%s", msg);
    pattern(want, sizeof(want), 8);
    cr_assert(memcmp(buf, want, sizeof(buf)) == 0);
    {
        xcp__image_cbt c = {{0}, 0, NULL};
        bool on = false;

        cr_assert_eq(xcp__image_cbt_get(im, &on, &c, msg, sizeof(msg)), 0,
                     "%s", msg);
        cr_assert(on);
        /* the write after the switch is marked: block 12 MiB / 64 KiB */
        cr_assert(c.bits[(12 * MiB / 65536) / 8] &
                  (0x80 >> ((12 * MiB / 65536) % 8)));
        xcp__image_cbt_dispose(&c);
    }
    xcp__image_close(im);
    cr_assert_eq(xcp__hv_sim_driver.disk_cbt(guest, domid, "xvdc",
                                             XCP_HV_CBT_BITMAP, false, &herr),
                 0, "disk_cbt off: %s", herr.message);
    cr_assert_neq(stat(log, &st), 0, "%s left behind", log);
    OK(xcp_vm_hard_shutdown(S, vm));
}

/*
 * A back end that never lets go of its image (the sim as Xen's QEMU,
 * "sim-qemu": no disk_pause): a snapshot moves its writes onto the new
 * leaf (disk_snapshot), which the library then renames into the VDI's
 * name; the back end holds that file (QEMU its descriptor), so the
 * guest's writes go on to it, and the collector leaf-coalesces the
 * running disk by the back end's own copy (disk_stream), the guest
 * writing all along.  Before: the sim reopened the leaf by its
 * temporary name, gone after the rename (the guest's writes failed:
 * ENOENT), and the leaf stayed on its parent while the VM ran.
 */
Test(sim_guest, a_back_end_that_cannot_pause_follows_a_snapshot_and_streams)
{
    char vdev[16], *uuid = NULL;
    uint32_t domid;
    size_t start;
    xcp_vm vm;
    xcp_vdi disk, snap;
    uint64_t n;
    unsigned i;

    api_reopen_with_hv("sim-qemu");
    vm = running_vm(&domid);
    disk = vm_disk(vm, vdev, sizeof(vdev));
    OK(xcp_vm_get_uuid(S, &uuid, vm));
    start = api_count_image_files();
    guest_write(domid, vdev, DATA_AT, 10);
    OK(xcp_vdi_snapshot(S, &snap, disk, NULL));
    cr_assert_eq(api_count_image_files(), start + 2);
    guest_write(domid, vdev, DATA_AT, 20);
    cr_assert(holds(snap, DATA_AT, 10), "the snapshot lost the write "
              "before it");
    cr_assert(holds(disk, DATA_AT, 20), "the write after the snapshot "
              "is not on the disk");
    wait_records(domid, vdev, records(domid, vdev) + 3);
    OK(xcp_vdi_destroy(S, snap));
    /* the collector's pass (closing the engine finishes it) */
    n = records(domid, vdev);
    for (i = 0; i < 10 && api_count_image_files() > start; i++) {
        api_reopen();
        if (api_count_image_files() > start)
            sleep(1);
    }
    cr_assert_eq(api_count_image_files(), start,
                 "the running disk's leaf was not coalesced: %zu images, "
                 "%zu before", api_count_image_files(), start);
    wait_records(domid, vdev, n + 5);
    wait_records(domid, vdev, XCP__SIM_RECORD_SLOTS + 8);
    guest_write(domid, vdev, DATA_AT + MiB, 30);
    OK(xcp_vm_pause(S, vm));
    n = records(domid, vdev);
    check_images();
    check_records(disk, uuid, vdev, n);
    cr_assert(holds(disk, DATA_AT, 20) && holds(disk, DATA_AT + MiB, 30),
              "a write was lost");
    xcp_free(uuid);
    OK(xcp_vm_hard_shutdown(S, vm));
}

/* Whether the collector follows a leaf coalesce of the VDI by its back
 * end now: its "Garbage collection" task, pending, names the VDI's
 * location (shown once the back end's copy runs). */
static bool coalescing(xcp_vdi vdi)
{
    xcp_task_set set = {0};
    enum xcp_task_status_type st;
    char *loc = NULL, *d;
    bool yes = false;
    size_t i;

    OK(xcp_vdi_get_location(S, &loc, vdi));
    OK(xcp_task_get_by_name_label(S, &set, "Garbage collection"));
    for (i = 0; i < set.n && !yes; i++) {
        d = NULL;
        if (xcp_task_get_status(S, &st, set.items[i]) < 0 ||
            xcp_task_get_name_description(S, &d, set.items[i]) < 0) {
            xcp_error_clear(); /* a task just destroyed */
            continue;
        }
        yes = st == XCP_TASK_STATUS_TYPE_PENDING && strstr(d, loc);
        xcp_free(d);
    }
    xcp_task_set_dispose(&set);
    xcp_free(loc);
    return yes;
}

/* Waits (up to 2 minutes) until the back end streams the VDI's chain. */
static void wait_coalescing(xcp_vdi vdi)
{
    int i;

    for (i = 0; i < 1200 && !coalescing(vdi); i++)
        usleep(100000);
    cr_assert(coalescing(vdi), "the collector does not stream the disk");
}

/*
 * A running disk whose back end streams its chain into its leaf (the
 * sim as Xen's QEMU, a copy that lasts: XCP_SIM_STREAM_MS) is
 * snapshotted (VDI.snapshot), resized, and its VM snapshotted, while the
 * copy runs and the guest writes: each call cancels the copy first (the back end takes no other
 * change of the disk while it runs, as QEMU's block job holds its node)
 * and goes ahead; the collector plans the coalesce again and, once
 * copies are quick, finishes it: no image more than before, every
 * acknowledged write on the disk, every image clean.  Before: the
 * snapshots and the resize failed (INTERNAL_ERROR: the disk is busy).
 */
Test(sim_guest, snapshots_and_a_resize_during_a_stream_cancel_it)
{
    char vdev[16], sdev[16], *uuid = NULL;
    uint32_t domid;
    size_t start;
    xcp_vm vm, vsnap;
    xcp_vdi disk, snap;
    uint64_t n;
    unsigned i;

    setenv("XCP_SIM_STREAM_MS", "600000", 1); /* outlasts the test */
    api_reopen_with_hv("sim-qemu");
    vm = running_vm(&domid);
    disk = vm_disk(vm, vdev, sizeof(vdev));
    OK(xcp_vm_get_uuid(S, &uuid, vm));
    start = api_count_image_files();
    guest_write(domid, vdev, DATA_AT, 10);
    OK(xcp_vdi_snapshot(S, &snap, disk, NULL));
    guest_write(domid, vdev, DATA_AT, 20);
    OK(xcp_vdi_destroy(S, snap));
    wait_coalescing(disk);

    /* a snapshot during the copy: point-in-time, the copy cancelled */
    guest_write(domid, vdev, DATA_AT + MiB, 30);
    OK(xcp_vdi_snapshot(S, &snap, disk, NULL));
    guest_write(domid, vdev, DATA_AT + MiB, 40);
    cr_assert(holds(snap, DATA_AT, 20) && holds(snap, DATA_AT + MiB, 30),
              "the snapshot lost a write before it");
    cr_assert(holds(disk, DATA_AT + MiB, 40), "a write after the snapshot "
              "is not on the disk");
    OK(xcp_vdi_destroy(S, snap));

    /* the collector streams again: a resize during that copy */
    wait_coalescing(disk);
    OK(xcp_vdi_resize(S, disk, 12 * GiB));
    OK(xcp_vdi_get_virtual_size(S, (int64_t *)&n, disk));
    cr_assert_eq(n, 12 * GiB);
    guest_write(domid, vdev, DATA_AT + 2 * MiB, 50);

    /* and again (the cancel asked for a pass): a VM.snapshot during it */
    wait_coalescing(disk);
    OK(xcp_vm_snapshot(S, &vsnap, vm, "during", NULL));
    snap = vm_disk(vsnap, sdev, sizeof(sdev));
    cr_assert(holds(snap, DATA_AT + 2 * MiB, 50), "the VM snapshot lost a "
              "write before it");
    OK(xcp_vm_destroy(S, vsnap));
    OK(xcp_vdi_destroy(S, snap));

    /* quick copies now: the collector's next passes finish the coalesce */
    unsetenv("XCP_SIM_STREAM_MS");
    for (i = 0; i < 30 && api_count_image_files() > start; i++) {
        api_reopen();
        if (api_count_image_files() > start)
            sleep(1);
    }
    cr_assert_eq(api_count_image_files(), start,
                 "the running disk's leaf was not coalesced: %zu images, "
                 "%zu before", api_count_image_files(), start);
    wait_records(domid, vdev, XCP__SIM_RECORD_SLOTS + 8);
    OK(xcp_vm_pause(S, vm));
    n = records(domid, vdev);
    check_images();
    check_records(disk, uuid, vdev, n);
    cr_assert(holds(disk, DATA_AT, 20) && holds(disk, DATA_AT + MiB, 40) &&
                  holds(disk, DATA_AT + 2 * MiB, 50),
              "a write was lost");
    xcp_free(uuid);
    OK(xcp_vm_hard_shutdown(S, vm));
}

/* The device name of the VBD of vm that holds vdi. */
static void vdev_of(xcp_vm vm, xcp_vdi vdi, char *vdev, size_t len)
{
    xcp_vbd_set vbds = {0};
    xcp_vdi v;
    char *dev = NULL;
    size_t i;

    vdev[0] = '\0';
    OK(xcp_vm_get_VBDs(S, &vbds, vm));
    for (i = 0; i < vbds.n; i++) {
        OK(xcp_vbd_get_VDI(S, &v, vbds.items[i]));
        if (strcmp(v.ref, vdi.ref) != 0)
            continue;
        OK(xcp_vbd_get_device(S, &dev, vbds.items[i]));
        snprintf(vdev, len, "%s", dev);
        xcp_free(dev);
    }
    xcp_vbd_set_dispose(&vbds);
    cr_assert(vdev[0], "no VBD of the VM holds the VDI");
}

/* When the back end of disk vdev moved onto its last snapshot's overlay,
 * in the guest's time (0: never). */
static uint64_t switched(uint32_t domid, const char *vdev)
{
    uint64_t ns = 0;

    cr_assert_eq(xcp__sim_disk_switched(guest, domid, vdev, &ns, &herr), 0,
                 "%s", herr.message);
    return ns;
}

/* The state of domain domid in the simulated host. */
static xcp_hv_domain_state dom_state(uint32_t domid)
{
    xcp_hv_domain_info info;

    cr_assert_eq(xcp__hv_sim_driver.domain_info(guest, domid, &info, &herr),
                 0, "%s", herr.message);
    return info.state;
}

/*
 * VM.snapshot of a running VM with two disks whose back ends cannot
 * pause (the sim as Xen's QEMU): the disks move onto their snapshots'
 * overlays at one instant of the guest (the domain held paused around
 * them, as XAPI pauses every tapdisk first), and the guest runs on
 * afterwards; a snapshot that fails unpauses it too.  Before: one disk
 * after the other while the guest ran (its vCPU time moved between
 * them).
 */
Test(sim_guest, a_vm_snapshot_moves_all_its_disks_at_one_instant)
{
    char vdev[16], vdev2[16];
    uint32_t domid;
    xcp_vdi disk, disk2;
    xcp_vm vm, snap;

    api_reopen_with_hv("sim-qemu");
    vm = api_install("vm");
    disk = vm_disk(vm, vdev, sizeof(vdev));
    OK(api_vdi_create(&disk2, api_default_sr(), "second", 64 * MiB));
    api_disk_vbd(vm, disk2, "1");
    OK(xcp_vm_start(S, vm, false, false));
    domid = (uint32_t)api_domid(vm);
    vdev_of(vm, disk, vdev, sizeof(vdev));
    vdev_of(vm, disk2, vdev2, sizeof(vdev2));
    cr_assert_str_neq(vdev, vdev2);
    wait_records(domid, vdev, 3);

    OK(xcp_vm_snapshot(S, &snap, vm, "both", NULL));
    cr_assert_neq(switched(domid, vdev), 0, "disk %s was not moved", vdev);
    cr_assert_eq(switched(domid, vdev), switched(domid, vdev2),
                 "disks %s and %s moved at guest times %" PRIu64 " and %"
                 PRIu64 " ns", vdev, vdev2, switched(domid, vdev),
                 switched(domid, vdev2));
    cr_assert_eq(dom_state(domid), XCP_HV_STATE_RUNNING,
                 "the guest stays paused");
    /* (the guest's time moves on: the next snapshot is at a later one) */
    wait_records(domid, vdev, records(domid, vdev) + 2);

    /* a failed snapshot leaves the guest running too */
    api_reopen_with_faults("disk_snapshot=EIO");
    assert_error_name(xcp_vm_snapshot(S, &snap, vm, "failed", NULL),
                      "SR_BACKEND_FAILURE");
    cr_assert_eq(dom_state(domid), XCP_HV_STATE_RUNNING,
                 "the failed snapshot left the guest paused");
    OK(xcp_vm_snapshot(S, &snap, vm, "again", NULL));
    cr_assert_eq(switched(domid, vdev), switched(domid, vdev2));
    OK(xcp_vm_hard_shutdown(S, vm));
}
