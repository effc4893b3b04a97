/*
 * tests/api/test_vdi_cbt.c - changed block tracking through the public
 * API, as XAPI does it: VDI.enable_cbt / disable_cbt, the base64 bitmap
 * of VDI.list_changed_blocks between a snapshot and a later snapshot or
 * the disk (writes made by QEMU itself, which keeps our qcow2 bitmap up
 * to date), snapshots carrying the tracking and clones not, data_destroy
 * turning a snapshot into cbt_metadata, the SM capability, the allowed
 * operations of the VDI and of its SR (the type's VDI_CONFIG_CBT
 * capability), every error path with XAPI's error, a restart and VHD.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "helpers.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define BLK (64 * 1024)
#define DISK (64 * MiB)

TestSuite(vdi_cbt, .init = api_setup, .fini = api_teardown);

static int run(const char *const *argv)
{
    posix_spawn_file_actions_t fa;
    int status;
    pid_t pid;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv,
                     environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
#define RUN(...) run((const char *const[]){__VA_ARGS__, NULL})

/* The image file of a VDI of the default SR. */
static const char *file_of(xcp_vdi vdi)
{
    static char path[2][640];
    static int i;
    char *loc = NULL;

    OK(xcp_vdi_get_location(S, &loc, vdi));
    i = !i;
    snprintf(path[i], sizeof(path[i]), "%s/sr/local/%s", api_dir, loc);
    xcp_free(loc);
    return path[i];
}

/* A guest write, by QEMU: it marks our (auto) qcow2 bitmap itself. */
static void qemu_write(xcp_vdi vdi, long long off, long long len)
{
    char cmd[96];

    snprintf(cmd, sizeof(cmd), "write %lld %lld", off, len);
    cr_assert_eq(RUN("qemu-io", "-f", "qcow2", "-c", cmd, file_of(vdi)), 0,
                 "qemu-io %s", cmd);
}

static xcp_vdi new_disk(void)
{
    xcp_vdi v;

    OK(api_vdi_create(&v, api_default_sr(), "disk", DISK));
    return v;
}

static xcp_vdi snap(xcp_vdi v)
{
    xcp_vdi s;

    OK(xcp_vdi_snapshot(S, &s, v, NULL));
    return s;
}

static bool cbt_on(xcp_vdi v)
{
    bool b = false;

    OK(xcp_vdi_get_cbt_enabled(S, &b, v));
    return b;
}

/* The changed blocks from..to, as a list "3,100," of block numbers. */
static const char *changed(xcp_vdi from, xcp_vdi to)
{
    const char *list;
    size_t n = 0;

    list = api_changed_blocks(from, to, &n);
    cr_assert_not_null(list, "list_changed_blocks: %s",
                       xcp_error_last() ? xcp_error_last()->name : "?");
    cr_assert_eq(n, DISK / BLK / 8, "bitmap of %zu bytes for %d blocks", n,
                 DISK / BLK);
    return list;
}

Test(vdi_cbt, enable_sets_the_flag_a_qemu_visible_bitmap_and_capability)
{
    xcp_vdi v = new_disk();
    xcp_storage_operations_set sops = {0};
    bool cap = false;
    size_t i;

    cr_assert_not(cbt_on(v));
    cr_assert(api_vdi_allows(v, XCP_VDI_OPERATIONS_ENABLE_CBT));
    cr_assert_not(api_vdi_allows(v, XCP_VDI_OPERATIONS_DATA_DESTROY));
    OK(xcp_vdi_enable_cbt(S, v));
    cr_assert(cbt_on(v));
    OK(xcp_vdi_enable_cbt(S, v));           /* again: nothing changes */
    cr_assert_eq(RUN("qemu-img", "check", "-q", file_of(v)), 0);
    OK(xcp_sr_get_allowed_operations(S, &sops, api_default_sr()));
    for (i = 0; i < sops.n; i++)
        cap = cap || sops.items[i] == XCP_STORAGE_OPERATIONS_VDI_ENABLE_CBT;
    xcp_storage_operations_set_dispose(&sops);
    cr_assert(cap, "the file SR does not offer vdi_enable_cbt");
    OK(xcp_vdi_disable_cbt(S, v));
    cr_assert_not(cbt_on(v));
    OK(xcp_vdi_update(S, v));               /* the storage agrees */
    cr_assert_not(cbt_on(v));
}

Test(vdi_cbt, changed_blocks_between_snapshots_and_the_leaf)
{
    xcp_vdi v = new_disk(), s1, s2;

    OK(xcp_vdi_enable_cbt(S, v));
    qemu_write(v, 0, 4096);                 /* before s1: not listed */
    s1 = snap(v);
    cr_assert(cbt_on(s1));
    qemu_write(v, 3 * BLK, 512);
    qemu_write(v, 100 * BLK + 1000, BLK);   /* blocks 100 and 101 */
    s2 = snap(v);
    qemu_write(v, 7 * BLK, 4096);
    cr_assert_str_eq(changed(s1, s2), "3,100,101,");
    cr_assert_str_eq(changed(s2, v), "7,");
    cr_assert_str_eq(changed(s1, v), "3,7,100,101,");
    cr_assert_str_eq(changed(s2, s2), "");
    cr_assert_eq(RUN("qemu-img", "check", "-q", file_of(v)), 0);
    cr_assert_eq(RUN("qemu-img", "check", "-q", file_of(s2)), 0);
    /* The storage is the truth: a refresh keeps what it says. */
    OK(xcp_vdi_update(S, s1));
    cr_assert(cbt_on(s1));
}

Test(vdi_cbt, clone_is_untracked_and_the_source_epoch_goes_on)
{
    xcp_vdi v = new_disk(), s1, cl;

    OK(xcp_vdi_enable_cbt(S, v));
    s1 = snap(v);
    qemu_write(v, 5 * BLK, 512);
    OK(xcp_vdi_clone(S, &cl, v, NULL));
    cr_assert_not(cbt_on(cl));
    cr_assert(cbt_on(v));
    qemu_write(v, 9 * BLK, 512);
    cr_assert_str_eq(changed(s1, v), "5,9,");
    assert_error(xcp_vdi_list_changed_blocks(S, NULL, s1, cl),
                 "VDI_NO_CBT_METADATA", cl.ref);
}

Test(vdi_cbt, state_survives_a_restart)
{
    xcp_vdi v = new_disk(), s1;

    OK(xcp_vdi_enable_cbt(S, v));
    s1 = snap(v);
    qemu_write(v, 2 * BLK, 512);
    api_reopen();
    cr_assert(cbt_on(v) && cbt_on(s1));
    qemu_write(v, 4 * BLK, 512);
    cr_assert_str_eq(changed(s1, v), "2,4,");
}

Test(vdi_cbt, data_destroy_keeps_the_metadata_only)
{
    xcp_vdi v = new_disk(), s1, s2, out;
    enum xcp_vdi_type type;
    xcp_vbd_record r;
    xcp_vbd vbd;
    struct stat st;
    xcp_vm vm = api_install("vm");

    OK(xcp_vdi_enable_cbt(S, v));
    qemu_write(v, 0, 8 * MiB);              /* data the snapshot holds */
    s1 = snap(v);
    qemu_write(v, 12 * BLK, 512);
    s2 = snap(v);
    cr_assert(api_vdi_allows(s1, XCP_VDI_OPERATIONS_DATA_DESTROY));
    /* A drive of a halted VM on it goes with the data, as in XAPI. */
    xcp_vbd_record_init(&r);
    r.VM = vm;
    r.VDI = s1;
    r.userdevice = (char *)"3";
    r.mode = XCP_VBD_MODE_RO;
    r.type = XCP_VBD_TYPE_DISK;
    OK(xcp_vbd_create(S, &vbd, &r));
    OK(xcp_vdi_data_destroy(S, s1));
    assert_error_name(xcp_vbd_get_VDI(S, &out, vbd), "HANDLE_INVALID");
    OK(xcp_vdi_get_type(S, &type, s1));
    cr_assert_eq(type, XCP_VDI_TYPE_CBT_METADATA);
    cr_assert(cbt_on(s1));
    cr_assert_eq(stat(file_of(s1), &st), 0);
    cr_assert_lt(st.st_blocks * 512, 2 * MiB, "%lld bytes left",
                 (long long)st.st_blocks * 512);
    cr_assert_eq(RUN("qemu-img", "check", "-q", file_of(s1)), 0);
    /* Still a base for incremental backups. */
    cr_assert_str_eq(changed(s1, s2), "12,");
    OK(xcp_vdi_data_destroy(S, s1));        /* again: nothing to do */
    /* What a metadata-only VDI refuses, with XAPI's error. */
    assert_error(xcp_vdi_snapshot(S, &out, s1, NULL), "VDI_INCOMPATIBLE_TYPE",
                 s1.ref, "cbt_metadata");
    assert_error(xcp_vdi_clone(S, &out, s1, NULL), "VDI_INCOMPATIBLE_TYPE",
                 s1.ref, "cbt_metadata");
    assert_error(xcp_vdi_copy(S, &out, s1, api_default_sr(), (xcp_vdi){""},
                              (xcp_vdi){""}),
                 "VDI_INCOMPATIBLE_TYPE", s1.ref, "cbt_metadata");
    assert_error(xcp_vdi_resize(S, s1, 2 * DISK), "VDI_INCOMPATIBLE_TYPE",
                 s1.ref, "cbt_metadata");
    xcp_vbd_record_init(&r);
    r.VM = vm;
    r.VDI = s1;
    r.userdevice = (char *)"3";
    r.mode = XCP_VBD_MODE_RO;
    r.type = XCP_VBD_TYPE_DISK;
    assert_error(xcp_vbd_create(S, &vbd, &r), "VDI_INCOMPATIBLE_TYPE",
                 s1.ref, "cbt_metadata");
    cr_assert_not(api_vdi_allows(s1, XCP_VDI_OPERATIONS_SNAPSHOT));
    cr_assert(api_vdi_allows(s1, XCP_VDI_OPERATIONS_DESTROY));
    OK(xcp_vdi_destroy(S, s1));
}

/* A clone of a tracked snapshot reads through the snapshot's image:
 * data_destroy of the snapshot is refused while the clone needs it, and
 * the clone keeps its data.  Before: the snapshot's image was replaced by
 * an empty one and the clone read zeros (the crash loop of tests/crash
 * found it: acknowledged writes reading 0 in a clone of a snapshot). */
Test(vdi_cbt, data_destroy_of_a_snapshot_with_clones_keeps_their_data)
{
    xcp_vdi v = new_disk(), s1, c;
    enum xcp_vdi_type type;

    OK(xcp_vdi_enable_cbt(S, v));
    qemu_write(v, 0, 2 * MiB);
    s1 = snap(v);
    OK(xcp_vdi_clone(S, &c, s1, NULL));
    assert_error_name(xcp_vdi_data_destroy(S, s1), "SR_BACKEND_FAILURE");
    OK(xcp_vdi_get_type(S, &type, s1));
    cr_assert_eq(type, XCP_VDI_TYPE_USER);
    cr_assert_eq(RUN("qemu-img", "compare", "-q", file_of(v), file_of(c)), 0,
                 "the clone lost the snapshot's data");
    /* The clone gone, the snapshot's data may go. */
    OK(xcp_vdi_destroy(S, c));
    OK(xcp_vdi_data_destroy(S, s1));
    OK(xcp_vdi_get_type(S, &type, s1));
    cr_assert_eq(type, XCP_VDI_TYPE_CBT_METADATA);
}

Test(vdi_cbt, error_paths_answer_xapis_errors)
{
    xcp_vdi v = new_disk(), plain = new_disk(), s_plain, s1, other;
    char msg[128];
    xcp_vdi_record r;
    xcp_vdi susp;

    s_plain = snap(plain);
    /* data_destroy: a snapshot, with tracking. */
    snprintf(msg, sizeof(msg), "VDI is not a snapshot: %s", v.ref);
    assert_error(xcp_vdi_data_destroy(S, v), "OPERATION_NOT_ALLOWED", msg);
    assert_error(xcp_vdi_data_destroy(S, s_plain), "VDI_NO_CBT_METADATA",
                 s_plain.ref);
    /* enable/disable: not on a snapshot, only user/system disks, not
     * on_boot=reset. */
    snprintf(msg, sizeof(msg), "VDI is a snapshot: %s", s_plain.ref);
    assert_error(xcp_vdi_enable_cbt(S, s_plain), "OPERATION_NOT_ALLOWED",
                 msg);
    assert_error(xcp_vdi_disable_cbt(S, s_plain), "OPERATION_NOT_ALLOWED",
                 msg);
    cr_assert_not(api_vdi_allows(s_plain, XCP_VDI_OPERATIONS_ENABLE_CBT));
    xcp_vdi_record_init(&r);
    r.name_label = (char *)"suspend";
    r.name_description = (char *)"";
    r.SR = api_default_sr();
    r.virtual_size = DISK;
    r.type = XCP_VDI_TYPE_SUSPEND;
    OK(xcp_vdi_create(S, &susp, &r));
    assert_error(xcp_vdi_enable_cbt(S, susp), "VDI_INCOMPATIBLE_TYPE",
                 susp.ref, "suspend");
    OK(xcp_vdi_set_on_boot(S, plain, XCP_ON_BOOT_RESET));
    assert_error0(xcp_vdi_enable_cbt(S, plain),
                  "VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION");
    /* A tracked disk refuses on_boot changes. */
    OK(xcp_vdi_enable_cbt(S, v));
    assert_error(xcp_vdi_set_on_boot(S, v, XCP_ON_BOOT_RESET),
                 "VDI_CBT_ENABLED", v.ref);
    /* list_changed_blocks: both tracked and related. */
    s1 = snap(v);
    assert_error(xcp_vdi_list_changed_blocks(S, NULL, s_plain, v),
                 "VDI_NO_CBT_METADATA", s_plain.ref);
    OK(xcp_vdi_enable_cbt(S, plain = new_disk()));
    other = snap(plain);
    assert_error(xcp_vdi_list_changed_blocks(S, NULL, other, v),
                 "SR_BACKEND_FAILURE", "",
                 "Failed to calculate changed blocks for given VDIs. "
                 "[opterr=Source and target VDI are unrelated]", "");
    /* Tracking off and on again breaks the chain. */
    OK(xcp_vdi_disable_cbt(S, v));
    assert_error(xcp_vdi_list_changed_blocks(S, NULL, s1, v),
                 "VDI_NO_CBT_METADATA", v.ref);
    OK(xcp_vdi_enable_cbt(S, v));
    assert_error_name(xcp_vdi_list_changed_blocks(S, NULL, s1, v),
                      "SR_BACKEND_FAILURE");
}

Test(vdi_cbt, vhd_disks_keep_a_log_beside_the_image)
{
    xcp_vdi v, s1, s2;
    enum xcp_vdi_type type;
    char loc[320], log[700], *l = NULL;
    xcp_sr sr;
    struct stat st;

    snprintf(loc, sizeof(loc), "%s/vhdsr", api_dir);
    sr = api_file_sr("vhdsr", "vhd");
    OK(api_vdi_create(&v, sr, "disk", DISK));
    OK(xcp_vdi_enable_cbt(S, v));
    OK(xcp_vdi_get_uuid(S, &l, v));
    snprintf(log, sizeof(log), "%s/%s.cbtlog", loc, l);
    xcp_free(l);
    cr_assert_eq(stat(log, &st), 0, "no %s", log);
    s1 = snap(v);
    s2 = snap(v);
    cr_assert(cbt_on(s1) && cbt_on(s2) && cbt_on(v));
    OK(xcp_vdi_data_destroy(S, s1));
    OK(xcp_vdi_get_type(S, &type, s1));
    cr_assert_eq(type, XCP_VDI_TYPE_CBT_METADATA);
    cr_assert_str_eq(changed(s1, v), "");
    OK(xcp_vdi_disable_cbt(S, v));
    cr_assert_neq(stat(log, &st), 0, "%s left behind", log);
}

/* The switches are live since issue 10 (tests/api/test_vdi_live.c); the
 * changed blocks of the running leaf still wait for it. */
Test(vdi_cbt, changed_blocks_wait_for_a_running_vm_to_let_go)
{
    xcp_vm vm = api_install("vm");
    xcp_vbd_set vbds = {0};
    enum xcp_vbd_type type;
    xcp_vdi disk = {""}, s1;
    char *b64 = NULL;
    size_t i;

    OK(xcp_vm_get_VBDs(S, &vbds, vm));
    for (i = 0; i < vbds.n; i++) {
        OK(xcp_vbd_get_type(S, &type, vbds.items[i]));
        if (type == XCP_VBD_TYPE_DISK)
            OK(xcp_vbd_get_VDI(S, &disk, vbds.items[i]));
    }
    xcp_vbd_set_dispose(&vbds);
    cr_assert(disk.ref[0], "the VM has no disk");
    OK(xcp_vdi_enable_cbt(S, disk));
    s1 = snap(disk);
    OK(xcp_vm_start(S, vm, false, false));
    cr_assert(api_vdi_allows(disk, XCP_VDI_OPERATIONS_DISABLE_CBT));
    assert_error(xcp_vdi_list_changed_blocks(S, NULL, s1, disk),
                 "VDI_IN_USE", disk.ref, "list_changed_blocks");
    /* A snapshot of the running disk still ends an epoch: none set. */
    OK(xcp_vdi_list_changed_blocks(S, &b64, s1, snap(disk)));
    cr_assert_eq(strspn(b64, "A="), strlen(b64), "%.40s", b64);
    xcp_free(b64);
    OK(xcp_vdi_disable_cbt(S, disk));
    OK(xcp_vm_hard_shutdown(S, vm));
}

/* Every file write past `bytes` of a file fails (EFBIG) while on. */
static void writes_past(rlim_t bytes, bool on)
{
    static struct rlimit saved;
    struct rlimit r;

    if (on) {
        signal(SIGXFSZ, SIG_IGN);
        cr_assert_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
        r = saved;
        r.rlim_cur = bytes;
        cr_assert_eq(setrlimit(RLIMIT_FSIZE, &r), 0);
    } else {
        cr_assert_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    }
}

/* The switch of a VHD VDI's tracking with the database's journal write
 * failing (the log beside the image, a new file of some KiB, is written;
 * the journal, past them, is not): the call's transaction rolls back.
 * Before: the image kept the switch (a log without the record's flag, or
 * the flag without its log, the blocks written meanwhile untracked) until
 * a restart, as only a kill was covered. */
Test(vdi_cbt, a_rolled_back_switch_leaves_image_and_record_agreeing)
{
    char loc[320], log[700], journal[320], desc[4000], *l = NULL;
    struct stat st;
    xcp_vdi v;
    xcp_sr sr;
    int rc, i;

    snprintf(loc, sizeof(loc), "%s/vhdsr", api_dir);
    sr = api_file_sr("vhdsr", "vhd");
    OK(api_vdi_create(&v, sr, "disk", DISK));
    OK(xcp_vdi_get_uuid(S, &l, v));
    snprintf(log, sizeof(log), "%s/%s.cbtlog", loc, l);
    xcp_free(l);
    /* a journal well past the size of the log */
    snprintf(journal, sizeof(journal), "%s/db.journal", api_dir);
    memset(desc, 'x', sizeof(desc) - 1);
    desc[sizeof(desc) - 1] = '\0';
    for (i = 0; i < 200 && (stat(journal, &st) < 0 || st.st_size < 256 * 1024);
         i++) {
        desc[0] = (char)('a' + i % 26);
        OK(xcp_vdi_set_name_description(S, v, desc));
    }
    cr_assert_eq(stat(journal, &st), 0);
    cr_assert_geq(st.st_size, 256 * 1024, "journal of %lld bytes",
                  (long long)st.st_size);

    writes_past((rlim_t)st.st_size, true);
    rc = xcp_vdi_enable_cbt(S, v);
    writes_past(0, false);
    cr_assert_lt(rc, 0, "the commit did not fail");
    cr_assert_not(cbt_on(v));
    cr_assert_neq(stat(log, &st), 0, "%s made, its record rolled back", log);

    OK(xcp_vdi_enable_cbt(S, v));
    cr_assert_eq(stat(log, &st), 0, "no %s", log);
    cr_assert_eq(stat(journal, &st), 0);
    writes_past((rlim_t)st.st_size, true);
    rc = xcp_vdi_disable_cbt(S, v);
    writes_past(0, false);
    cr_assert_lt(rc, 0, "the commit did not fail");
    cr_assert(cbt_on(v));
    cr_assert_eq(stat(log, &st), 0, "%s removed, its record rolled back",
                 log);
    /* and both go on together */
    OK(xcp_vdi_disable_cbt(S, v));
    cr_assert_not(cbt_on(v));
    cr_assert_neq(stat(log, &st), 0, "%s left behind", log);
}

/* QEMU's lock on a held write permission (block/file-posix.c: byte 100
 * + BLK_PERM_WRITE's bit) is on path. */
static bool write_locked(const char *path)
{
    struct flock fl = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool held;

    cr_assert_geq(fd, 0, "%s", path);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 101;
    fl.l_len = 1;
    held = fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
    close(fd);
    return held;
}

/* Whether `qemu-img info` lists our bitmap in vdi's image (-U: QEMU may
 * hold it): 0 no, 1 yes, 2 yes and in use. */
static int bitmap_state(xcp_vdi vdi)
{
    const char *argv[] = {"qemu-img", "info", "-U", file_of(vdi), NULL};
    posix_spawn_file_actions_t fa;
    char line[256];
    int found = 0;
    int p[2], status;
    FILE *f;
    pid_t pid;

    cr_assert_eq(pipe(p), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    cr_assert_eq(posix_spawnp(&pid, argv[0], &fa, NULL,
                              (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    f = fdopen(p[0], "r");
    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f))
        if (strstr(line, "in-use"))
            found = 2;
        else if (!found && strstr(line, "xcp-cbt"))
            found = 1;
    fclose(f);
    waitpid(pid, &status, 0);
    return found;
}

static bool has_bitmap(xcp_vdi vdi)
{
    return bitmap_state(vdi) > 0;
}

/* A QEMU holding vdi's image open for writing (as a running VM's does):
 * qemu-io reading commands from a pipe, *to, until it is closed.  It
 * marks the disk's bitmap in use. */
static pid_t qemu_holds(xcp_vdi vdi, int *to)
{
    const char *argv[] = {"qemu-io", "-f", "qcow2", file_of(vdi), NULL};
    posix_spawn_file_actions_t fa;
    int p[2], i;
    pid_t pid;

    cr_assert_eq(pipe(p), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[0], 0);
    posix_spawn_file_actions_addclose(&fa, p[1]);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    cr_assert_eq(posix_spawnp(&pid, argv[0], &fa, NULL,
                              (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(p[0]);
    *to = p[1];
    /* It locks the file, then marks the bitmap. */
    for (i = 0; i < 3000 && !(write_locked(argv[3]) &&
                              bitmap_state(vdi) == 2); i++)
        usleep(10000);
    cr_assert(write_locked(argv[3]) && bitmap_state(vdi) == 2,
              "qemu-io never took %s", argv[3]);
    return pid;
}

/* A running VM's tracked qcow2 disk: QEMU has marked its bitmap in use.
 * A refresh meanwhile (VDI.update, SR.scan) finds tracking on and
 * leaves the image alone; QEMU's marks are read once it closes.  Before,
 * the in-use bitmap was skipped and the refresh wrote cbt_enabled=false
 * under the running VM. */
Test(vdi_cbt, a_refresh_while_qemu_writes_keeps_the_tracking)
{
    xcp_vdi v = new_disk(), s1;
    int to, status;
    pid_t pid;

    OK(xcp_vdi_enable_cbt(S, v));
    s1 = snap(v);
    pid = qemu_holds(v, &to);
    cr_assert_eq(write(to, "write 128k 64k\n", 15), 15);
    OK(xcp_vdi_update(S, v));
    cr_assert(cbt_on(v), "VDI.update under QEMU switched tracking off");
    OK(xcp_sr_scan(S, api_default_sr()));
    cr_assert(cbt_on(v), "SR.scan under QEMU switched tracking off");
    cr_assert(write_locked(file_of(v)) && has_bitmap(v));
    close(to);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    OK(xcp_vdi_update(S, v));
    cr_assert(cbt_on(v));
    cr_assert_str_eq(changed(s1, v), "2,");
}

/* QEMU killed with the bitmap in use: its bits are inconsistent.  The
 * refresh switches the record off, and our next writer drops the bitmap
 * from the image, as the invariant of a lost epoch wants (no image
 * tracked behind an untracked record).  Before, the stale bitmap stayed
 * in the image for good. */
Test(vdi_cbt, a_bitmap_left_in_use_by_a_dead_qemu_is_dropped)
{
    xcp_vdi v = new_disk();
    int to, status;
    pid_t pid;

    OK(xcp_vdi_enable_cbt(S, v));
    pid = qemu_holds(v, &to);
    kill(pid, SIGKILL);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    close(to);
    cr_assert_not(write_locked(file_of(v)));
    cr_assert(has_bitmap(v), "the dead QEMU's bitmap");
    OK(xcp_vdi_update(S, v));
    cr_assert_not(cbt_on(v), "a dead writer's bitmap taken as tracking");
    OK(xcp_vdi_resize(S, v, 2 * DISK));     /* our writer opens it */
    cr_assert_not(has_bitmap(v), "the stale bitmap stayed in the image");
    OK(xcp_vdi_enable_cbt(S, v));
    cr_assert(cbt_on(v) && has_bitmap(v));
}
