/*
 * tests/api/test_host_paths.c - host paths a client names are confined,
 * and the errors reveal nothing of the host's files:
 *  - PV_kernel / PV_ramdisk only from the guest kernel directories
 *    (XCP_PV_KERNEL_DIRS), checked lexically when set and resolved at
 *    VM.start (symlinks, directories, missing files: one answer);
 *  - PV_bootloader only from XCP_PV_BOOTLOADERS;
 *  - a file SR only below XCP_SR_ROOTS or the state directory (no marker
 *    written in /etc);
 *  - SR.scan adopts no raw image it did not make, and no symlink.
 */
#include "helpers.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static char guest[300];   /* the guest kernel directory of the test */

static void paths_setup(void)
{
    FILE *f;
    char path[400];

    api_setup();
    snprintf(guest, sizeof(guest), "%s/guest", api_dir);
    cr_assert_eq(mkdir(guest, 0755), 0);
    setenv("XCP_PV_KERNEL_DIRS", guest, 1);
    snprintf(path, sizeof(path), "%s/vmlinuz", guest);
    cr_assert_not_null(f = fopen(path, "w"));
    fputs("kernel", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/subdir", guest);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/passwd-link", guest);
    cr_assert_eq(symlink("/etc/passwd", path), 0);
    snprintf(path, sizeof(path), "%s/missing-link", guest);
    cr_assert_eq(symlink("/etc/no-such-file", path), 0);
}

/* Made below /etc only if SR.create wrongly accepts it (then removed). */
static char etc_sr[64];

static void paths_teardown(void)
{
    char cmd[128];

    if (etc_sr[0] && access(etc_sr, F_OK) == 0) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", etc_sr);
        if (system(cmd) != 0)
            cr_log_warn("cannot remove %s", etc_sr);
    }
    unsetenv("XCP_PV_KERNEL_DIRS");
    unsetenv("XCP_SR_ROOTS");
    api_teardown();
}

TestSuite(host_paths, .init = paths_setup, .fini = paths_teardown);

/* The one reason every refused boot file gets. */
static const char *reason(void)
{
    static char r[400];

    snprintf(r, sizeof(r), "not a regular file in the guest kernel "
             "directories (%s)", guest);
    return r;
}

static xcp_vm pv_vm(const char *name)
{
    xcp_vm vm = api_install(name);

    OK(xcp_vm_set_domain_type(S, vm, XCP_DOMAIN_TYPE_PV));
    return vm;
}

Test(host_paths, kernel_outside_guest_dirs_refused_when_set)
{
    static const char *const bad[] = {
        "/etc/shadow", "/etc/no-such-file", "/boot/vmlinuz", "vmlinuz",
        "/var/lib/xcp/guest/../../../../etc/shadow", NULL,
    };
    xcp_vm vm = pv_vm("k");
    char dotdot[400], *got = NULL;
    int i;

    for (i = 0; bad[i]; i++) {
        assert_error(xcp_vm_set_PV_kernel(S, vm, bad[i]), "INVALID_VALUE",
                     "PV_kernel", bad[i], reason());
        assert_error(xcp_vm_set_PV_ramdisk(S, vm, bad[i]), "INVALID_VALUE",
                     "PV_ramdisk", bad[i], reason());
    }
    snprintf(dotdot, sizeof(dotdot), "%s/../../../etc/shadow", guest);
    assert_error(xcp_vm_set_PV_kernel(S, vm, dotdot), "INVALID_VALUE",
                 "PV_kernel", dotdot, reason());
    OK(xcp_vm_get_PV_kernel(S, &got, vm));
    cr_assert_str_eq(got, "");
    xcp_free(got);
}

Test(host_paths, create_refuses_host_kernel)
{
    xcp_vm vm = pv_vm("src");
    xcp_vm_record r;
    xcp_vm out;

    xcp_vm_record_init(&r);
    OK(xcp_vm_get_record(S, &r, vm));
    free(r.PV_kernel);
    r.PV_kernel = strdup("/etc/shadow");
    assert_error(xcp_vm_create(S, &out, &r), "INVALID_VALUE", "PV_kernel",
                 "/etc/shadow", reason());
    xcp_vm_record_dispose(&r);
}

Test(host_paths, start_answers_alike_for_missing_link_out_and_directory)
{
    static const char *const names[] = {
        "absent", "passwd-link", "missing-link", "subdir",
    };
    xcp_vm vm = pv_vm("s");
    char path[400];
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", guest, names[i]);
        OK(xcp_vm_set_PV_kernel(S, vm, path)); /* lexically fine */
        assert_error(xcp_vm_start(S, vm, false, false), "INVALID_VALUE",
                     "PV_kernel", path, reason());
        cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_HALTED);
    }
    snprintf(path, sizeof(path), "%s/vmlinuz", guest);
    OK(xcp_vm_set_PV_kernel(S, vm, path));
    snprintf(path, sizeof(path), "%s/passwd-link", guest);
    OK(xcp_vm_set_PV_ramdisk(S, vm, path));
    assert_error(xcp_vm_start(S, vm, false, false), "INVALID_VALUE",
                 "PV_ramdisk", path, reason());
    OK(xcp_vm_set_PV_ramdisk(S, vm, ""));
    OK(xcp_vm_start(S, vm, false, false));
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
}

Test(host_paths, start_refuses_a_kernel_dir_that_moved)
{
    xcp_vm vm = pv_vm("moved");
    char path[400];

    snprintf(path, sizeof(path), "%s/vmlinuz", guest);
    OK(xcp_vm_set_PV_kernel(S, vm, path));
    /* Set while allowed; the directory is no longer one at start. */
    setenv("XCP_PV_KERNEL_DIRS", "/var/lib/xcp/guest", 1);
    assert_error_name(xcp_vm_start(S, vm, false, false), "INVALID_VALUE");
    setenv("XCP_PV_KERNEL_DIRS", guest, 1);
}

Test(host_paths, bootloader_from_fixed_set)
{
    xcp_vm vm = pv_vm("bl");

    assert_error(xcp_vm_set_PV_bootloader(S, vm, "/bin/sh"),
                 "INVALID_VALUE", "PV_bootloader", "/bin/sh",
                 "not a supported bootloader");
    assert_error(xcp_vm_set_PV_bootloader(S, vm, "/usr/bin/pygrub"),
                 "INVALID_VALUE", "PV_bootloader", "/usr/bin/pygrub",
                 "not a supported bootloader");
    OK(xcp_vm_set_PV_bootloader(S, vm, "eliloader"));
    OK(xcp_vm_set_PV_bootloader(S, vm, "pygrub"));
    OK(xcp_vm_set_PV_bootloader(S, vm, ""));
    setenv("XCP_PV_BOOTLOADERS", "mygrub", 1);
    assert_error_name(xcp_vm_set_PV_bootloader(S, vm, "pygrub"),
                      "INVALID_VALUE");
    OK(xcp_vm_set_PV_bootloader(S, vm, "mygrub"));
    unsetenv("XCP_PV_BOOTLOADERS");
}

/* A PV VM with neither a kernel nor a bootloader has nothing to boot:
   XAPI's BOOTLOADER_FAILED naming it, not the driver's INTERNAL_ERROR. */
Test(host_paths, pv_with_nothing_to_boot_is_bootloader_failed)
{
    xcp_vm vm = pv_vm("nothing");

    OK(xcp_vm_set_PV_bootloader(S, vm, ""));
    OK(xcp_vm_set_PV_kernel(S, vm, ""));
    assert_error(xcp_vm_start(S, vm, false, false), "BOOTLOADER_FAILED",
                 vm.ref,
                 "neither PV-kernel nor PV-bootloader is set: nothing to "
                 "boot");
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_HALTED);
    OK(xcp_vm_set_PV_bootloader(S, vm, "pygrub"));
    OK(xcp_vm_start(S, vm, false, false));
}

/* SR.create of a file SR at loc; returns its rc. */
static int file_sr_at(const char *loc, xcp_sr *sr)
{
    xcp_string_map dc = {0}, smc = {0};
    int rc;

    xcp_string_map_set(&dc, "location", loc);
    rc = xcp_sr_create(S, sr, api_host(), &dc, 0, "sr", "", "file", "user",
                       false, &smc);
    xcp_string_map_dispose(&dc);
    return rc;
}

static bool exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

Test(host_paths, file_sr_only_below_roots)
{
    char path[400], outside[400], link[400];
    xcp_sr sr;

    /* (Not /etc itself: on a server without the check, this test would
     * leave its marker there.) */
    snprintf(etc_sr, sizeof(etc_sr), "/etc/xcp-test-sr-%d", (int)getpid());
    assert_error_name(file_sr_at(etc_sr, &sr), "SR_BACKEND_FAILURE");
    cr_assert(strstr(xcp_error_last()->params[1], "SR location invalid"));
    cr_assert(!exists(etc_sr), "%s made, marker written", etc_sr);
    /* Out through .. or a symlink */
    snprintf(path, sizeof(path), "%s/../xcp-escape-sr", api_dir);
    assert_error_name(file_sr_at(path, &sr), "SR_BACKEND_FAILURE");
    snprintf(outside, sizeof(outside), "%s-outside", api_dir);
    cr_assert_eq(mkdir(outside, 0700), 0);
    snprintf(link, sizeof(link), "%s/to-outside", api_dir);
    cr_assert_eq(symlink(outside, link), 0);
    snprintf(path, sizeof(path), "%s/sr", link);
    assert_error_name(file_sr_at(path, &sr), "SR_BACKEND_FAILURE");
    snprintf(path, sizeof(path), "%s/sr", outside);
    cr_assert(!exists(path));
    /* A configured root, and the state directory. */
    setenv("XCP_SR_ROOTS", outside, 1);
    snprintf(path, sizeof(path), "%s/sr", outside);
    OK(file_sr_at(path, &sr));
    unsetenv("XCP_SR_ROOTS");
    snprintf(path, sizeof(path), "%s/second", api_dir);
    OK(file_sr_at(path, &sr));
    /* No way round through the PBD either. */
    {
        xcp_pbd_set pbds = {0};
        xcp_string_map dc = {0};
        OK(xcp_sr_get_PBDs(S, &pbds, sr));
        cr_assert_eq(pbds.n, 1);
        xcp_string_map_set(&dc, "location", "/etc");
        assert_error_name(xcp_pbd_set_device_config(S, pbds.items[0], &dc),
                          "SR_BACKEND_FAILURE");
        xcp_string_map_dispose(&dc);
        xcp_pbd_set_dispose(&pbds);
    }
    snprintf(path, sizeof(path), "rm -rf '%s'", outside);
    cr_assert_eq(system(path), 0);
}

Test(host_paths, scan_adopts_no_planted_raw_file_or_symlink)
{
    xcp_sr sr = api_default_sr();
    xcp_vm vm = api_install("suspended");
    char path[400];
    size_t before;
    FILE *f;

    /* A raw image we made: the suspend image. */
    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_suspend(S, vm));
    OK(xcp_sr_scan(S, sr));
    before = api_sr_vdi_count(sr);
    snprintf(path, sizeof(path),
             "%s/sr/local/11111111-2222-4333-8444-555555555555.raw", api_dir);
    cr_assert_not_null(f = fopen(path, "w"), "%s", path);
    fputs("host data", f);
    fclose(f);
    snprintf(path, sizeof(path),
             "%s/sr/local/11111111-2222-4333-8444-666666666666.raw", api_dir);
    cr_assert_eq(symlink("/etc/passwd", path), 0);
    OK(xcp_sr_scan(S, sr));
    cr_assert_eq(api_sr_vdi_count(sr), before,
                 "scan adopted %zu planted raw files",
                 api_sr_vdi_count(sr) - before);
    snprintf(path, sizeof(path),
             "%s/sr/local/11111111-2222-4333-8444-777777777777.qcow2",
             api_dir);
    cr_assert_eq(symlink("/etc/passwd", path), 0);
    OK(xcp_sr_scan(S, sr));
    cr_assert_eq(api_sr_vdi_count(sr), before,
                 "scan adopted %zu planted files",
                 api_sr_vdi_count(sr) - before);
    OK(xcp_vm_resume(S, vm, false, false));
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
}
