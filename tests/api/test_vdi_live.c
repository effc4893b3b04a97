/*
 * tests/api/test_vdi_live.c - the disk of a running VM (sim hypervisor,
 * whose back ends pause and reopen): VDI.resize and resize_online grow it
 * online, enable_cbt / disable_cbt switch its tracking live, and the SR
 * collector leaf-coalesces it (issue 10, items 4, 5, 6). Before, all
 * three waited for the VM to stop: VDI_IN_USE, or a leaf left on its
 * parent. A snapshot of it is taken with its back end paused.
 */
#include "helpers.h"

#include <dirent.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

TestSuite(vdi_live, .init = api_setup, .fini = api_teardown);

/* The VM's disk (not its CD). */
static xcp_vdi vm_disk(xcp_vm vm)
{
    xcp_vbd_set vbds = {0};
    enum xcp_vbd_type type;
    xcp_vdi disk = {""};
    size_t i;

    OK(xcp_vm_get_VBDs(S, &vbds, vm));
    for (i = 0; i < vbds.n; i++) {
        OK(xcp_vbd_get_type(S, &type, vbds.items[i]));
        if (type == XCP_VBD_TYPE_DISK)
            OK(xcp_vbd_get_VDI(S, &disk, vbds.items[i]));
    }
    xcp_vbd_set_dispose(&vbds);
    cr_assert(disk.ref[0], "the VM has no disk");
    return disk;
}

/* A running VM and its disk. */
static xcp_vdi running_disk(xcp_vm *vm)
{
    *vm = api_install("vm");
    OK(xcp_vm_start(S, *vm, false, false));
    return vm_disk(*vm);
}

/* The image file of a VDI of the default SR. */
static const char *file_of(xcp_vdi vdi)
{
    static char path[640];
    char *loc = NULL;

    OK(xcp_vdi_get_location(S, &loc, vdi));
    snprintf(path, sizeof(path), "%s/sr/local/%s", api_dir, loc);
    xcp_free(loc);
    return path;
}

/* What `qemu-img info` says of the VDI's image (its first 4 KiB). */
static const char *qemu_info(xcp_vdi vdi)
{
    static char out[4096];
    const char *argv[] = {"qemu-img", "info", "-U", file_of(vdi), NULL};
    posix_spawn_file_actions_t fa;
    int p[2], status;
    ssize_t n, got = 0;
    pid_t pid;

    cr_assert_eq(pipe(p), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    cr_assert_eq(posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv,
                              environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    while ((n = read(p[0], out + got, sizeof(out) - 1 - (size_t)got)) > 0)
        got += n;
    close(p[0]);
    out[got] = '\0';
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "qemu-img info %s", file_of(vdi));
    return out;
}

static int64_t vsize(xcp_vdi v)
{
    int64_t n = 0;

    OK(xcp_vdi_get_virtual_size(S, &n, v));
    return n;
}

/* Before: VDI_IN_USE [vdi, resize] (the file SR had no VDI_RESIZE_ONLINE
 * and nothing could pause the disk). */
Test(vdi_live, resize_of_a_running_vms_disk_is_done_online)
{
    xcp_vm vm;
    xcp_vdi disk = running_disk(&vm);
    char want[64];

    cr_assert(api_vdi_allows(disk, XCP_VDI_OPERATIONS_RESIZE));
    cr_assert(api_vdi_allows(disk, XCP_VDI_OPERATIONS_RESIZE_ONLINE));
    OK(xcp_vdi_resize(S, disk, 20 * GiB));
    cr_assert_eq(vsize(disk), 20 * GiB);
    snprintf(want, sizeof(want), "(%lld bytes)", (long long)(20 * GiB));
    cr_assert_not_null(strstr(qemu_info(disk), want), "%s",
                       qemu_info(disk));
    /* The back end was reopened: a second one pauses it again. */
    OK(xcp_vdi_resize_online(S, disk, 24 * GiB));
    cr_assert_eq(vsize(disk), 24 * GiB);
    /* What was refused stays refused, with the VM running. */
    {
        char n[32];
        snprintf(n, sizeof(n), "%lld", (long long)(24 * GiB));
        assert_error(xcp_vdi_resize_online(S, disk, 1 * GiB),
                     "VDI_TOO_SMALL", disk.ref, n);
    }
    cr_assert(!api_vdi_allows(disk, XCP_VDI_OPERATIONS_DESTROY));
    /* The guest goes on: a clean shutdown, then the disk detaches. */
    OK(xcp_vm_clean_shutdown(S, vm));
    OK(xcp_vdi_resize(S, disk, 25 * GiB));
}

/* Before: VDI_IN_USE [vdi, enable_cbt]. */
Test(vdi_live, cbt_is_switched_on_and_off_on_a_running_vms_disk)
{
    xcp_vm vm;
    xcp_vdi disk = running_disk(&vm), s1, s2;
    bool on = false;
    char *b64 = NULL;

    cr_assert(api_vdi_allows(disk, XCP_VDI_OPERATIONS_ENABLE_CBT));
    OK(xcp_vdi_enable_cbt(S, disk));
    OK(xcp_vdi_get_cbt_enabled(S, &on, disk));
    cr_assert(on);
    cr_assert_not_null(strstr(qemu_info(disk), "xcp-cbt"), "%s",
                       qemu_info(disk));
    OK(xcp_vdi_snapshot(S, &s1, disk, NULL));
    OK(xcp_vdi_snapshot(S, &s2, disk, NULL));
    OK(xcp_vdi_list_changed_blocks(S, &b64, s1, s2));
    cr_assert_eq(strspn(b64, "A="), strlen(b64), "%.40s", b64);
    xcp_free(b64);
    OK(xcp_vdi_disable_cbt(S, disk));
    OK(xcp_vdi_get_cbt_enabled(S, &on, disk));
    cr_assert_not(on);
    cr_assert_null(strstr(qemu_info(disk), "xcp-cbt"), "%s",
                   qemu_info(disk));
    OK(xcp_vm_hard_shutdown(S, vm));
}

/* Before: the leaf stayed on its parent (one image more) until the VM
 * stopped. */
Test(vdi_live, collector_leaf_coalesces_a_running_vms_disk)
{
    xcp_vm vm;
    xcp_vdi disk = running_disk(&vm), snap;
    size_t start = api_count_image_files();

    OK(xcp_vdi_snapshot(S, &snap, disk, NULL));
    cr_assert_eq(api_count_image_files(), start + 2);
    OK(xcp_vdi_destroy(S, snap));
    /* Closing the engine finishes the collector's pending pass. */
    api_reopen();
    cr_assert_eq(api_count_image_files(), start,
                 "the running disk's leaf was not coalesced: %zu images, "
                 "%zu before", api_count_image_files(), start);
    cr_assert_null(strstr(qemu_info(disk), "backing file"), "%s",
                   qemu_info(disk));
    /* The back end was reopened: the disk resizes online again. */
    OK(xcp_vdi_resize(S, disk, 12 * GiB));
    OK(xcp_vm_clean_shutdown(S, vm));
}

/*
 * Before: the snapshot was taken with the disk's back end running (what
 * the guest wrote meanwhile could land in the new parent, under the
 * snapshot), and a back end that could not pause was not even asked.
 * Now it is paused around the snapshot, and one that refuses fails the
 * snapshot with the driver's reason and nothing made.
 */
Test(vdi_live, snapshot_of_a_running_vms_disk_pauses_its_back_end)
{
    xcp_vm vm;
    xcp_vdi disk = running_disk(&vm), snap;
    size_t images = api_count_image_files(), vdis = api_count_vdis(-1);

    api_reopen_with_faults("disk_pause=ENOTSUP");
    assert_error_name(xcp_vdi_snapshot(S, &snap, disk, NULL),
                      "OPERATION_NOT_ALLOWED");
    cr_assert_eq(api_count_image_files(), images,
                 "the refused snapshot left images");
    cr_assert_eq(api_count_vdis(-1), vdis);
    cr_assert_null(strstr(qemu_info(disk), "backing file"), "%s",
                   qemu_info(disk));
    /* the fault was for one call: the next snapshot pauses, and the back
     * end is reopened after it (a second pause works) */
    OK(xcp_vdi_snapshot(S, &snap, disk, NULL));
    cr_assert_eq(api_count_image_files(), images + 2);
    OK(xcp_vdi_clone(S, &snap, disk, NULL));
    cr_assert_eq(api_count_image_files(), images + 4);
    OK(xcp_vm_clean_shutdown(S, vm));
}

static bool vm_allows(xcp_vm vm, enum xcp_vm_operations op)
{
    xcp_vm_operations_set s = {0};
    bool r;

    OK(xcp_vm_get_allowed_operations(S, &s, vm));
    r = api_ops_has(&s, op);
    xcp_vm_operations_set_dispose(&s);
    return r;
}

/*
 * The disks of a running VM whose back ends cannot pause (the sim as Xen's
 * QEMU): a snapshot or clone is offered (VDI and VM allowed_operations)
 * exactly where it would be taken.  A qcow2 disk: yes (the back end moves
 * its writes onto the new leaf); with changed block tracking on: no (the
 * back end keeps the bitmap: VDI_IN_USE); a VHD disk: no (QEMU's vpc has
 * no backing files), except VM.checkpoint, whose domain is gone when its
 * disks are snapshotted.  Before: snapshot and clone were always listed,
 * and the calls refused.
 */
Test(vdi_live, allowed_operations_offer_what_a_running_disk_can_take)
{
    xcp_vm vm, cp;
    xcp_vdi disk, vhd, snap;
    xcp_sr sr;

    api_reopen_with_hv("sim-qemu");
    disk = running_disk(&vm);
    cr_assert(api_vdi_allows(disk, XCP_VDI_OPERATIONS_SNAPSHOT) &&
              api_vdi_allows(disk, XCP_VDI_OPERATIONS_CLONE));
    cr_assert(vm_allows(vm, XCP_VM_OPERATIONS_SNAPSHOT) &&
              vm_allows(vm, XCP_VM_OPERATIONS_CHECKPOINT));

    OK(xcp_vdi_enable_cbt(S, disk));
    cr_assert(!api_vdi_allows(disk, XCP_VDI_OPERATIONS_SNAPSHOT) &&
              !api_vdi_allows(disk, XCP_VDI_OPERATIONS_CLONE),
              "a tracked running disk offers a snapshot");
    cr_assert(!vm_allows(vm, XCP_VM_OPERATIONS_SNAPSHOT) &&
              !vm_allows(vm, XCP_VM_OPERATIONS_CHECKPOINT));
    assert_error_name(xcp_vdi_snapshot(S, &snap, disk, NULL), "VDI_IN_USE");
    OK(xcp_vdi_disable_cbt(S, disk));
    cr_assert(api_vdi_allows(disk, XCP_VDI_OPERATIONS_SNAPSHOT));
    cr_assert(vm_allows(vm, XCP_VM_OPERATIONS_SNAPSHOT));

    sr = api_file_sr("vhdsr", "vhd");
    OK(api_vdi_create(&vhd, sr, "vhd disk", 64 * MiB));
    cr_assert(api_vdi_allows(vhd, XCP_VDI_OPERATIONS_SNAPSHOT),
              "a detached VHD disk is snapshotted offline");
    OK(xcp_vbd_plug(S, api_disk_vbd(vm, vhd, "3")));
    cr_assert(!api_vdi_allows(vhd, XCP_VDI_OPERATIONS_SNAPSHOT) &&
              !api_vdi_allows(vhd, XCP_VDI_OPERATIONS_CLONE),
              "a running VHD disk offers a snapshot");
    cr_assert(!vm_allows(vm, XCP_VM_OPERATIONS_SNAPSHOT));
    cr_assert(vm_allows(vm, XCP_VM_OPERATIONS_CHECKPOINT));
    assert_error_name(xcp_vdi_snapshot(S, &snap, vhd, NULL),
                      "OPERATION_NOT_ALLOWED");
    OK(xcp_vm_checkpoint(S, &cp, vm, "cp"));
    OK(xcp_vm_hard_shutdown(S, vm));
    cr_assert(api_vdi_allows(vhd, XCP_VDI_OPERATIONS_SNAPSHOT));
    cr_assert(vm_allows(vm, XCP_VM_OPERATIONS_SNAPSHOT));
}
