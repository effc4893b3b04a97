/*
 * VM export and import as XVA (<xcp/xva.h>) on the embedded engine: round
 * trips in every compression with snapshots, disks and VIFs; what the
 * archive holds (ova.xml first, only the chunks with data but the first
 * and last, SHA-1 checksums); and the refusals: a corrupt chunk, a
 * stream cut short, a running VM, an archive not starting with ova.xml,
 * each leaving nothing behind.
 */
#include "helpers.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(vm_xva, .init = api_setup, .fini = api_teardown, .timeout = 120);

#define DISK (8 * MiB)

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", api_dir, name);
}

/* The data disk's contents: bytes in chunks 0 and 5 only (a 1 MiB chunk
 * of zeros in between is left out of an export). */
static void fill_pattern(uint8_t *p)
{
    size_t i;

    memset(p, 0, DISK);
    for (i = 0; i < 4096; i++) {
        p[i] = (uint8_t)(i * 7 + 1);
        p[5 * MiB + 100 + i] = (uint8_t)(i * 13 + 5);
    }
}

/* Write the pattern into vdi through xcp_vdi_import. */
static void vdi_put_pattern(xcp_vdi vdi)
{
    uint8_t *p = malloc(DISK);
    char path[512];
    int fd;

    cr_assert_not_null(p);
    fill_pattern(p);
    path_of(path, sizeof(path), "pattern.raw");
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    cr_assert_eq(write(fd, p, DISK), (ssize_t)DISK);
    cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
    OK(xcp_vdi_import(S, vdi, fd, NULL));
    close(fd);
    free(p);
}

/* Whether vdi reads as the pattern. */
static bool vdi_has_pattern(xcp_vdi vdi)
{
    uint8_t *want = malloc(DISK), *got = malloc(DISK);
    char path[512];
    bool same;
    int fd;

    fill_pattern(want);
    path_of(path, sizeof(path), "check.raw");
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    OK(xcp_vdi_export(S, vdi, fd, NULL));
    same = pread(fd, got, DISK, 0) == (ssize_t)DISK &&
           !memcmp(want, got, DISK);
    close(fd);
    free(want);
    free(got);
    return same;
}

/* A halted VM with one 8 MiB data disk holding the pattern, a VIF and a
 * snapshot. */
static xcp_vm make_vm(void)
{
    xcp_vm vm = api_install_from(T_OTHER, "exported"), snap;
    xcp_vbd_record br;
    xcp_vdi vdi;
    xcp_vbd vbd;

    OK(api_vdi_create(&vdi, api_default_sr(), "data", DISK));
    vdi_put_pattern(vdi);
    xcp_vbd_record_init(&br);
    br.VM = vm;
    br.VDI = vdi;
    br.userdevice = "1";
    br.mode = XCP_VBD_MODE_RW;
    br.type = XCP_VBD_TYPE_DISK;
    OK(xcp_vbd_create(S, &vbd, &br));
    api_add_vif(vm, "0", "aa:bb:cc:00:11:22");
    OK(xcp_vm_snapshot(S, &snap, vm, "snap1", NULL));
    return vm;
}

static int export_to(xcp_vm vm, const char *name, const char *compression,
                     bool metadata)
{
    xcp_vm_export_options o = {XCP_VM_EXPORT_OPTIONS_VERSION};
    char path[512];
    int fd, rc;

    o.compression = compression;
    o.metadata_only = metadata;
    path_of(path, sizeof(path), name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    rc = xcp_vm_export_xva(S, vm, fd, &o);
    close(fd);
    return rc;
}

static int import_from(const char *name, bool force, xcp_vm_set *out)
{
    xcp_vm_import_options o = {XCP_VM_IMPORT_OPTIONS_VERSION};
    char path[512];
    int fd, rc;

    o.force = force;
    path_of(path, sizeof(path), name);
    fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    rc = xcp_vm_import_xva(S, out, fd, &o);
    close(fd);
    return rc;
}

/* The VDI of vm's VBD on userdevice 1. */
static xcp_vdi data_vdi(xcp_vm vm)
{
    xcp_vbd_set vbds;
    xcp_vdi vdi;
    char *dev;
    size_t i;
    bool found = false;

    OK(xcp_vm_get_VBDs(S, &vbds, vm));
    for (i = 0; i < vbds.n && !found; i++) {
        OK(xcp_vbd_get_userdevice(S, &dev, vbds.items[i]));
        if (!strcmp(dev, "1")) {
            OK(xcp_vbd_get_VDI(S, &vdi, vbds.items[i]));
            found = true;
        }
        xcp_free(dev);
    }
    xcp_vbd_set_dispose(&vbds);
    cr_assert(found, "no VBD on userdevice 1");
    return vdi;
}

static void assert_copy_of(xcp_vm orig, xcp_vm vm)
{
    xcp_vm_set snaps;
    xcp_vif_set vifs;
    xcp_vm of;
    char *name, *u1, *u2, *mac;

    OK(xcp_vm_get_name_label(S, &name, vm));
    cr_assert_str_eq(name, "exported");
    xcp_free(name);
    OK(xcp_vm_get_uuid(S, &u1, orig));
    OK(xcp_vm_get_uuid(S, &u2, vm));
    cr_assert_str_neq(u1, u2, "an import without restore has a new uuid");
    xcp_free(u1);
    xcp_free(u2);
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_HALTED);
    cr_assert(vdi_has_pattern(data_vdi(vm)));
    OK(xcp_vm_get_snapshots(S, &snaps, vm));
    cr_assert_eq(snaps.n, 1, "the snapshot comes with the VM");
    OK(xcp_vm_get_snapshot_of(S, &of, snaps.items[0]));
    cr_assert_str_eq(of.ref, vm.ref);
    cr_assert(vdi_has_pattern(data_vdi(snaps.items[0])),
              "the snapshot's disk comes with it");
    xcp_vm_set_dispose(&snaps);
    OK(xcp_vm_get_VIFs(S, &vifs, vm));
    cr_assert_eq(vifs.n, 1);
    OK(xcp_vif_get_MAC(S, &mac, vifs.items[0]));
    cr_assert_str_eq(mac, "aa:bb:cc:00:11:22");
    xcp_free(mac);
    xcp_vif_set_dispose(&vifs);
}

static void round_trip(const char *compression)
{
    xcp_vm vm = make_vm();
    xcp_vm_set got;

    OK(export_to(vm, "vm.xva", compression, false));
    OK(import_from("vm.xva", false, &got));
    cr_assert_eq(got.n, 1, "the VM, not its snapshot, is the result");
    assert_copy_of(vm, got.items[0]);
    xcp_vm_set_dispose(&got);
}

Test(vm_xva, round_trip_plain)
{
    round_trip(NULL);
}

/* The tasks the transfers make for themselves (no task_id) go with them,
 * as XAPI's handlers destroy theirs: none is left after VDI and VM
 * exports and imports on a local session. */
Test(vm_xva, transfers_leave_no_task)
{
    xcp_vm vm = make_vm();
    xcp_vm_set got;
    xcp_task_set tasks;

    OK(xcp_task_get_all(S, &tasks));
    size_t before = tasks.n;
    xcp_task_set_dispose(&tasks);
    vdi_put_pattern(data_vdi(vm));
    cr_assert(vdi_has_pattern(data_vdi(vm)));
    OK(export_to(vm, "vm.xva", NULL, false));
    OK(import_from("vm.xva", false, &got));
    xcp_vm_set_dispose(&got);
    {   /* and a failed import neither */
        char path[512];
        FILE *f;

        path_of(path, sizeof(path), "junk.xva");
        cr_assert_not_null(f = fopen(path, "w"));
        fputs("not a tar archive at all", f);
        fclose(f);
        cr_assert_lt(import_from("junk.xva", false, &got), 0);
    }
    OK(xcp_task_get_all(S, &tasks));
    cr_assert_eq(tasks.n, before, "%zu tasks left by the transfers",
                 tasks.n - before);
    xcp_task_set_dispose(&tasks);
}

/* A local VDI export sends the disk's file runs with sendfile(2) into
 * the target; with XCP_NO_SENDFILE it reads and writes them instead: the
 * same bytes either way. */
Test(vm_xva, vdi_export_without_sendfile_gives_the_same_bytes)
{
    xcp_vdi vdi = data_vdi(make_vm());

    vdi_put_pattern(vdi);
    cr_assert(vdi_has_pattern(vdi), "through sendfile");
    setenv("XCP_NO_SENDFILE", "1", 1);
    cr_assert(vdi_has_pattern(vdi), "read and written");
    unsetenv("XCP_NO_SENDFILE");
}

Test(vm_xva, round_trip_gzip)
{
    round_trip("gzip");
}

Test(vm_xva, round_trip_zstd)
{
    round_trip("zstd");
}

/* ---- what the archive holds -------------------------------------------- */

typedef struct member {
    char name[101];
    uint64_t size;
    off_t data;  /* offset of its data in the file */
} member;

/* The plain tar's members (at most max). */
static size_t members(const char *name, member *m, size_t max)
{
    char path[512], h[512];
    size_t n = 0;
    off_t off = 0;
    int fd;

    path_of(path, sizeof(path), name);
    fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    while (n < max && pread(fd, h, 512, off) == 512 && h[0]) {
        memcpy(m[n].name, h, 100);
        m[n].name[100] = '\0';
        m[n].size = strtoull(h + 124, NULL, 8);
        m[n].data = off + 512;
        off += 512 + (off_t)((m[n].size + 511) / 512 * 512);
        n++;
    }
    close(fd);
    return n;
}

Test(vm_xva, archive_has_ova_xml_first_and_only_chunks_with_data)
{
    xcp_vm vm = make_vm();
    member m[64];
    size_t n, i, chunks = 0, sums = 0;
    char *slash;

    OK(export_to(vm, "vm.xva", NULL, false));
    n = members("vm.xva", m, 64);
    cr_assert_gt(n, 1);
    cr_assert_str_eq(m[0].name, "ova.xml");
    for (i = 1; i < n; i++) {
        slash = strchr(m[i].name, '/');
        cr_assert_not_null(slash, "%s", m[i].name);
        cr_assert_eq(strncmp(m[i].name, "Ref:", 4), 0, "%s", m[i].name);
        if (strstr(m[i].name, ".checksum")) {
            cr_assert_eq(m[i].size, 40, "SHA-1 in hex");
            sums++;
            continue;
        }
        /* chunks 0 (data, first), 5 (data) and 7 (last) of 8 */
        cr_assert(!strcmp(slash + 1, "00000000") ||
                      !strcmp(slash + 1, "00000005") ||
                      !strcmp(slash + 1, "00000007"),
                  "chunk %s of zeros sent", m[i].name);
        cr_assert_eq(m[i].size, 1 * MiB);
        chunks++;
    }
    /* The VM's disk and its snapshot's: 3 chunks each. */
    cr_assert_eq(chunks, 6);
    cr_assert_eq(sums, 6);
}

Test(vm_xva, metadata_only_export_is_ova_xml_alone)
{
    xcp_vm vm = make_vm();
    member m[4];

    OK(export_to(vm, "meta.xva", NULL, true));
    cr_assert_eq(members("meta.xva", m, 4), 1);
    cr_assert_str_eq(m[0].name, "ova.xml");
}

/* ---- refusals ----------------------------------------------------------- */

static void counts(size_t *vms, size_t *vdis)
{
    xcp_vm_set a;
    xcp_vdi_set b;

    OK(xcp_vm_get_all(S, &a));
    OK(xcp_vdi_get_all(S, &b));
    *vms = a.n;
    *vdis = b.n;
    xcp_vm_set_dispose(&a);
    xcp_vdi_set_dispose(&b);
}

static void assert_counts(size_t vms, size_t vdis)
{
    size_t v, d;

    counts(&v, &d);
    cr_assert_eq(v, vms, "%zu VMs before, %zu after", vms, v);
    cr_assert_eq(d, vdis, "%zu VDIs before, %zu after", vdis, d);
}

Test(vm_xva, corrupt_chunk_fails_checksum_and_leaves_nothing_unless_forced)
{
    xcp_vm vm = make_vm();
    xcp_vm_set got;
    member m[64];
    size_t n, vms, vdis;
    char path[512];
    uint8_t b;
    int fd;

    OK(export_to(vm, "vm.xva", NULL, false));
    n = members("vm.xva", m, 64);
    cr_assert_gt(n, 2);
    path_of(path, sizeof(path), "vm.xva");
    fd = open(path, O_RDWR);
    cr_assert_eq(pread(fd, &b, 1, m[1].data + 10), 1);
    b ^= 0xff;
    cr_assert_eq(pwrite(fd, &b, 1, m[1].data + 10), 1);
    close(fd);
    counts(&vms, &vdis);
    assert_error_name(import_from("vm.xva", false, &got), "IMPORT_ERROR");
    cr_assert(strstr(xcp_error_last()->params[0], "checksum"), "%s",
              xcp_error_last()->params[0]);
    assert_counts(vms, vdis);
    OK(import_from("vm.xva", true, &got));
    cr_assert_eq(got.n, 1);
    xcp_vm_set_dispose(&got);
}

Test(vm_xva, stream_cut_short_fails_premature_eof_and_leaves_nothing)
{
    xcp_vm vm = make_vm();
    xcp_vm_set got;
    size_t vms, vdis;
    char path[512];
    struct stat st;

    OK(export_to(vm, "vm.xva", "gzip", false));
    path_of(path, sizeof(path), "vm.xva");
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(truncate(path, st.st_size / 2), 0);
    counts(&vms, &vdis);
    assert_error0(import_from("vm.xva", false, &got),
                  "IMPORT_ERROR_PREMATURE_EOF");
    assert_counts(vms, vdis);
}

Test(vm_xva, archive_not_starting_with_ova_xml_fails_unexpected_file)
{
    char path[512], h[512];
    xcp_vm_set got;
    unsigned sum = 0;
    size_t i;
    int fd;

    /* One member "hello" of 0 bytes, then the end blocks. */
    memset(h, 0, sizeof(h));
    strcpy(h, "hello");
    strcpy(h + 100, "0000644");
    strcpy(h + 124, "00000000000");
    memset(h + 148, ' ', 8);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    for (i = 0; i < 512; i++)
        sum += (unsigned char)h[i];
    snprintf(h + 148, 8, "%06o", sum);
    path_of(path, sizeof(path), "bad.xva");
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_eq(write(fd, h, 512), 512);
    memset(h, 0, sizeof(h));
    cr_assert_eq(write(fd, h, 512), 512);
    cr_assert_eq(write(fd, h, 512), 512);
    close(fd);
    assert_error(import_from("bad.xva", false, &got),
                 "IMPORT_ERROR_UNEXPECTED_FILE", "ova.xml", "hello");
}

Test(vm_xva, empty_file_fails_premature_eof)
{
    char path[512];
    xcp_vm_set got;
    int fd;

    path_of(path, sizeof(path), "empty.xva");
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    close(fd);
    assert_error0(import_from("empty.xva", false, &got),
                  "IMPORT_ERROR_PREMATURE_EOF");
}

Test(vm_xva, running_vm_export_fails_bad_power_state)
{
    xcp_vm vm = api_install_from(T_OTHER, "running");

    OK(xcp_vm_start(S, vm, false, false));
    assert_error(export_to(vm, "vm.xva", NULL, false), "VM_BAD_POWER_STATE",
                 vm.ref, "halted", "running");
}

Test(vm_xva, unknown_compression_fails_invalid_value)
{
    xcp_vm vm = api_install_from(T_OTHER, "v");

    assert_error(export_to(vm, "vm.xva", "lz4", false), "INVALID_VALUE",
                 "compression", "lz4");
}

Test(vm_xva, suspended_vm_keeps_its_power_state_when_asked)
{
    xcp_vm vm = api_install_from(T_OTHER, "sleepy");
    xcp_vm_export_options o = {XCP_VM_EXPORT_OPTIONS_VERSION};
    xcp_vm_set got;
    xcp_vdi svdi;
    char path[512];
    int fd;

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_suspend(S, vm));
    o.preserve_power_state = true;
    path_of(path, sizeof(path), "s.xva");
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    OK(xcp_vm_export_xva(S, vm, fd, &o));
    close(fd);
    OK(import_from("s.xva", false, &got));
    cr_assert_eq(got.n, 1);
    cr_assert_eq(api_power(got.items[0]), XCP_VM_POWER_STATE_SUSPENDED);
    OK(xcp_vm_get_suspend_VDI(S, &svdi, got.items[0]));
    cr_assert(!api_is_null(svdi.ref), "the memory image comes along");
    xcp_vm_set_dispose(&got);
    /* Without preserve_power_state it comes back halted. */
    OK(export_to(vm, "h.xva", NULL, false));
    OK(import_from("h.xva", false, &got));
    cr_assert_eq(api_power(got.items[0]), XCP_VM_POWER_STATE_HALTED);
    xcp_vm_set_dispose(&got);
}

/* ---- format=tar: XAPI's chunked tar of one disk ------------------------ */

static int vdi_transfer_file(xcp_vdi vdi, const char *name, bool import,
                             const char *format)
{
    xcp_vdi_transfer_options o = {XCP_VDI_TRANSFER_OPTIONS_VERSION};
    char path[512];
    int fd, rc;

    o.format = format;
    path_of(path, sizeof(path), name);
    fd = import ? open(path, O_RDONLY)
                : open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    rc = import ? xcp_vdi_import(S, vdi, fd, &o)
                : xcp_vdi_export(S, vdi, fd, &o);
    close(fd);
    return rc;
}

Test(vm_xva, vdi_tar_export_is_xapis_chunks_and_imports_back)
{
    xcp_vdi vdi, back;
    member m[32];
    size_t n, i;

    OK(api_vdi_create(&vdi, api_default_sr(), "data", DISK));
    vdi_put_pattern(vdi);
    OK(vdi_transfer_file(vdi, "d.tar", false, "tar"));
    n = members("d.tar", m, 32);
    cr_assert_eq(n, 6, "chunks 0, 5 and 7 with their checksums");
    for (i = 0; i < n; i += 2) {
        cr_assert_eq(strncmp(m[i].name, "vdi/0000000", 11), 0, "%s",
                     m[i].name);
        cr_assert_str_eq(m[i + 1].name + strlen(m[i].name), ".checksum");
    }
    OK(api_vdi_create(&back, api_default_sr(), "back", DISK));
    OK(vdi_transfer_file(back, "d.tar", true, "tar"));
    cr_assert(vdi_has_pattern(back));
}

Test(vm_xva, vdi_tar_import_cut_short_fails_premature_eof)
{
    xcp_vdi vdi, back;
    char path[512];
    struct stat st;

    OK(api_vdi_create(&vdi, api_default_sr(), "data", DISK));
    vdi_put_pattern(vdi);
    OK(vdi_transfer_file(vdi, "d.tar", false, "tar"));
    path_of(path, sizeof(path), "d.tar");
    cr_assert_eq(stat(path, &st), 0);
    /* Without the last chunk and the end blocks. */
    cr_assert_eq(truncate(path, st.st_size - 1024 - (1 * MiB + 512) - 1024),
                 0);
    OK(api_vdi_create(&back, api_default_sr(), "back", DISK));
    assert_error0(vdi_transfer_file(back, "d.tar", true, "tar"),
                  "IMPORT_ERROR_PREMATURE_EOF");
}

Test(vm_xva, restore_keeps_the_uuid_and_refuses_a_taken_one)
{
    xcp_vm vm = api_install_from(T_OTHER, "kept");
    xcp_vm_import_options o = {XCP_VM_IMPORT_OPTIONS_VERSION};
    xcp_vm_set got;
    char path[512], *u1, *u2;
    int fd;

    OK(export_to(vm, "k.xva", NULL, false));
    OK(xcp_vm_get_uuid(S, &u1, vm));
    o.restore = true;
    path_of(path, sizeof(path), "k.xva");
    fd = open(path, O_RDONLY);
    assert_error_name(xcp_vm_import_xva(S, &got, fd, &o), "IMPORT_ERROR");
    close(fd);
    OK(xcp_vm_destroy(S, vm));
    fd = open(path, O_RDONLY);
    OK(xcp_vm_import_xva(S, &got, fd, &o));
    close(fd);
    cr_assert_eq(got.n, 1);
    OK(xcp_vm_get_uuid(S, &u2, got.items[0]));
    cr_assert_str_eq(u1, u2, "a full restore keeps the VM's uuid");
    xcp_free(u1);
    xcp_free(u2);
    xcp_vm_set_dispose(&got);
}
