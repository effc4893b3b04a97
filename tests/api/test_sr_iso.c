/*
 * tests/api/test_sr_iso.c - the `iso` SR type (sr/iso.c) through the
 * public API: a directory of ISO files as an SR of content_type iso whose
 * scan registers each file as a read-only user VDI named after it (and
 * marks the ones gone missing); VDI.create and VDI.destroy are refused
 * with SR_OPERATION_NOT_SUPPORTED, as XCP-ng's ISO SR; the VDIs go into
 * a VM's CD drive (VBD.insert/eject).  The directory must lie below an
 * SR root or the state directory, like a file SR's.  xe's vm-cd-insert,
 * vm-cd-eject and cd-list (cmd/xe/cmd_cd.c) run on the same state
 * directory, between sessions.
 */
#define _GNU_SOURCE
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

TestSuite(sr_iso, .init = api_setup, .fini = api_teardown);

static char lib[400];

/* A file of size bytes (a pattern) in the library directory. */
static void put_file(const char *name, size_t size)
{
    char path[700], buf[4096];
    size_t done, n;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", lib, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
    memset(buf, 'x', sizeof(buf));
    for (done = 0; done < size; done += n) {
        n = size - done < sizeof(buf) ? size - done : sizeof(buf);
        cr_assert_eq(write(fd, buf, n), (ssize_t)n);
    }
    close(fd);
}

static xcp_sr iso_sr(void)
{
    xcp_string_map dc = {0}, smc = {0};
    xcp_sr sr;

    snprintf(lib, sizeof(lib), "%s/isos", api_dir);
    mkdir(lib, 0755);
    xcp_string_map_set(&dc, "location", lib);
    OK(xcp_sr_create(S, &sr, api_host(), &dc, 0, "ISO library", "", "iso",
                     "", false, &smc));
    xcp_string_map_dispose(&dc);
    return sr;
}

/* The VDI of sr named name (asserts there is exactly one). */
static xcp_vdi vdi_named(xcp_sr sr, const char *name)
{
    xcp_vdi_set vdis;
    xcp_vdi found;
    size_t i, n = 0;

    OK(xcp_sr_get_VDIs(S, &vdis, sr));
    for (i = 0; i < vdis.n; i++) {
        char *label = NULL;

        OK(xcp_vdi_get_name_label(S, &label, vdis.items[i]));
        if (strcmp(label, name) == 0) {
            found = vdis.items[i];
            n++;
        }
        xcp_free(label);
    }
    xcp_vdi_set_dispose(&vdis);
    cr_assert_eq(n, 1, "%zu VDIs called %s", n, name);
    return found;
}

Test(sr_iso, scan_registers_iso_files_as_read_only_vdis)
{
    xcp_vdi_record r;
    xcp_sr sr;
    char *ct = NULL;

    sr = iso_sr();
    OK(xcp_sr_get_content_type(S, &ct, sr));
    cr_assert_str_eq(ct, "iso");
    xcp_free(ct);
    put_file("debian.iso", 1024 * 1024 + 3);
    put_file("notes.txt", 10);
    put_file(".hidden.iso", 10);
    OK(xcp_sr_scan(S, sr));
    cr_assert_eq(api_sr_vdi_count(sr), 1);

    OK(xcp_vdi_get_record(S, &r, vdi_named(sr, "debian.iso")));
    cr_assert_str_eq(r.location, "debian.iso");
    cr_assert(r.read_only);
    cr_assert_eq(r.type, XCP_VDI_TYPE_USER);
    cr_assert_eq(r.virtual_size, 1024 * 1024 + 3);
    cr_assert(!r.missing);
    xcp_vdi_record_dispose(&r);
    /* the SR type snapshots and clones nothing: not offered (before:
     * listed, then refused SR_OPERATION_NOT_SUPPORTED) */
    cr_assert(!api_vdi_allows(vdi_named(sr, "debian.iso"),
                              XCP_VDI_OPERATIONS_SNAPSHOT) &&
              !api_vdi_allows(vdi_named(sr, "debian.iso"),
                              XCP_VDI_OPERATIONS_CLONE));

    /* Files added and removed behind the toolstack's back. */
    put_file("tools.ISO", 4096);
    OK(xcp_sr_scan(S, sr));
    cr_assert_eq(api_sr_vdi_count(sr), 2);
    vdi_named(sr, "tools.ISO");
    snprintf(lib + strlen(lib), sizeof(lib) - strlen(lib), "/debian.iso");
    cr_assert_eq(unlink(lib), 0);
    *strrchr(lib, '/') = '\0';
    OK(xcp_sr_scan(S, sr));
    OK(xcp_vdi_get_record(S, &r, vdi_named(sr, "debian.iso")));
    cr_assert(r.missing, "a removed ISO is not marked missing");
    xcp_vdi_record_dispose(&r);
    /* Back again: no longer missing, and still one VDI for it. */
    put_file("debian.iso", 2048);
    OK(xcp_sr_scan(S, sr));
    OK(xcp_vdi_get_record(S, &r, vdi_named(sr, "debian.iso")));
    cr_assert(!r.missing);
    cr_assert_eq(r.virtual_size, 2048);
    xcp_vdi_record_dispose(&r);
}

Test(sr_iso, vdis_cannot_be_created_or_destroyed)
{
    xcp_vdi vdi;
    xcp_sr sr = iso_sr();

    put_file("a.iso", 4096);
    OK(xcp_sr_scan(S, sr));
    assert_error(api_vdi_create(&vdi, sr, "new", 4096),
                 "SR_OPERATION_NOT_SUPPORTED", sr.ref);
    vdi = vdi_named(sr, "a.iso");
    assert_error(xcp_vdi_destroy(S, vdi), "SR_OPERATION_NOT_SUPPORTED",
                 sr.ref);
    /* The file is the user's: still there. */
    OK(xcp_sr_scan(S, sr));
    vdi_named(sr, "a.iso");
}

Test(sr_iso, location_must_be_below_an_sr_root)
{
    xcp_string_map dc = {0}, smc = {0};
    xcp_sr sr;

    xcp_string_map_set(&dc, "location", "/etc");
    assert_error_name(xcp_sr_create(S, &sr, api_host(), &dc, 0, "etc", "",
                                    "iso", "", false, &smc),
                      "SR_BACKEND_FAILURE");
    xcp_string_map_dispose(&dc);
}

/* A CD drive on a halted VM. */
static xcp_vbd add_cd(xcp_vm vm)
{
    xcp_vbd_record r;
    xcp_vbd vbd;

    xcp_vbd_record_init(&r);
    r.VM = vm;
    SET_REF(r.VDI, XCP_NULL_REF);
    r.userdevice = (char *)"3";
    r.type = XCP_VBD_TYPE_CD;
    r.mode = XCP_VBD_MODE_RO;
    r.empty = true;
    r.bootable = false;
    OK(xcp_vbd_create(S, &vbd, &r));
    return vbd;
}

Test(sr_iso, an_iso_goes_into_a_cd_drive_and_out)
{
    xcp_sr sr = iso_sr();
    xcp_vm vm = api_install("cd");
    xcp_vbd cd = add_cd(vm);
    xcp_vdi iso, in;
    bool empty;

    put_file("install.iso", 64 * 1024);
    OK(xcp_sr_scan(S, sr));
    iso = vdi_named(sr, "install.iso");
    OK(xcp_vbd_insert(S, cd, iso));
    OK(xcp_vbd_get_VDI(S, &in, cd));
    cr_assert_str_eq(in.ref, iso.ref);
    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vbd_eject(S, cd));
    OK(xcp_vbd_get_empty(S, &empty, cd));
    cr_assert(empty);
    OK(xcp_vbd_insert(S, cd, iso));
    OK(xcp_vm_hard_shutdown(S, vm));
}

/* Run the xe under test (the build's, from the top build directory) on
 * api_dir with the arguments given (NULL-terminated); its exit status,
 * stdout and stderr into out. */
static int xe(char *out, size_t len, ...)
{
    posix_spawn_file_actions_t fa;
    char *argv[16];
    size_t n = 1, used = 0;
    int fds[2], status;
    ssize_t r;
    va_list ap;
    pid_t pid;

    argv[0] = (char *)"./cmd/xe/xe";
    va_start(ap, len);
    while (n < 15 && (argv[n] = va_arg(ap, char *)))
        n++;
    va_end(ap);
    argv[n] = NULL;
    if (access(argv[0], X_OK) != 0)
        cr_skip_test("no xe binary at %s", argv[0]);
    setenv("XCP_STATE_DIR", api_dir, 1);
    cr_assert_eq(pipe(fds), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    while (used + 1 < len &&
           (r = read(fds[0], out + used, len - 1 - used)) > 0)
        used += (size_t)r;
    out[used] = '\0';
    close(fds[0]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(sr_iso, xe_cd_list_vm_cd_insert_and_eject)
{
    char out[4096];
    xcp_sr sr = iso_sr();
    xcp_vm vm = api_install("cdvm");
    xcp_vbd cd = add_cd(vm);
    xcp_vdi iso, in;
    bool empty;

    put_file("install.iso", 64 * 1024);
    put_file("rescue.iso", 4096);
    OK(xcp_sr_scan(S, sr));
    iso = vdi_named(sr, "install.iso");
    xcp_session_close(S);
    S = NULL;

    cr_assert_eq(xe(out, sizeof(out), "cd-list", "params=name-label",
                    "--minimal", NULL), 0, "%s", out);
    cr_assert(strstr(out, "install.iso") && strstr(out, "rescue.iso"),
              "cd-list: %s", out);
    cr_assert(!strstr(out, "Debian"), "cd-list lists a disk: %s", out);
    cr_assert_neq(xe(out, sizeof(out), "vm-cd-insert", "vm=cdvm",
                     "cd-name=missing.iso", NULL), 0);
    cr_assert(strstr(out, "CD missing.iso not found"), "%s", out);
    cr_assert_eq(xe(out, sizeof(out), "vm-cd-insert", "vm=cdvm",
                    "cd-name=install.iso", NULL), 0, "%s", out);
    /* The drive is full now: no empty CD drive is left. */
    cr_assert_neq(xe(out, sizeof(out), "vm-cd-insert", "vm=cdvm",
                     "cd-name=rescue.iso", NULL), 0);
    cr_assert(strstr(out, "VM_NO_EMPTY_CD_VBD") ||
              strstr(out, "no empty CD drive"), "%s", out);

    api_open();
    OK(xcp_vbd_get_VDI(S, &in, cd));
    cr_assert_str_eq(in.ref, iso.ref);
    xcp_session_close(S);
    S = NULL;

    cr_assert_eq(xe(out, sizeof(out), "vm-cd-eject", "vm=cdvm", NULL), 0,
                 "%s", out);
    api_open();
    OK(xcp_vbd_get_empty(S, &empty, cd));
    cr_assert(empty);
}

/* No changed block tracking on an ISO library (no VDI_CONFIG_CBT): XAPI's
 * SR_OPERATION_NOT_SUPPORTED [sr], and not offered. */
Test(sr_iso, changed_block_tracking_is_not_supported)
{
    xcp_vdi_operations_set ops = {0};
    xcp_sr sr = iso_sr();
    xcp_vdi v;
    size_t i;

    put_file("a.iso", 4096);
    OK(xcp_sr_scan(S, sr));
    v = vdi_named(sr, "a.iso");
    assert_error(xcp_vdi_enable_cbt(S, v), "SR_OPERATION_NOT_SUPPORTED",
                 sr.ref);
    OK(xcp_vdi_get_allowed_operations(S, &ops, v));
    for (i = 0; i < ops.n; i++)
        cr_assert_neq(ops.items[i], XCP_VDI_OPERATIONS_ENABLE_CBT);
    xcp_vdi_operations_set_dispose(&ops);
}
