/*
 * tests/api/test_storage_crash.c - what a call killed between changing an
 * image and committing its record leaves is made right at the next open
 * (the crash loop, tests/crash, finds these at random; here one each,
 * deterministically).
 */
#include "helpers.h"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

TestSuite(storage_crash, .init = api_setup, .fini = api_teardown);

/*
 * A VDI.resize killed after the image grew, before the commit: its line
 * in <state dir>/sr-intents makes the next open read the record again
 * (before: the record kept the old size, the image had the new one).
 */
static xcp_vdi vdi_of(int64_t size, char **loc)
{
    xcp_vdi_record r;
    xcp_vdi vdi;

    xcp_vdi_record_init(&r);
    r.SR = api_default_sr();
    r.virtual_size = size;
    r.type = XCP_VDI_TYPE_USER;
    r.name_label = "grown";
    OK(xcp_vdi_create(S, &vdi, &r));
    OK(xcp_vdi_get_location(S, loc, vdi));
    return vdi;
}

Test(storage_crash, resize_killed_before_its_commit_is_read_again)
{
    xcp_vdi vdi;
    char *loc, *bigloc, *sr_uuid, path[512], big[512];
    int64_t size, alloc0, alloc1;
    FILE *f;

    vdi = vdi_of(4 * MiB, &loc);
    vdi_of(6 * MiB, &bigloc);
    OK(xcp_sr_get_uuid(S, &sr_uuid, api_default_sr()));
    OK(xcp_sr_get_virtual_allocation(S, &alloc0, api_default_sr()));
    /* What the driver did before the kill: the image is 6 MiB now (the
     * other VDI's image, moved in its place). */
    snprintf(path, sizeof(path), "%s/sr/local/%s", api_dir, loc);
    snprintf(big, sizeof(big), "%s/sr/local/%s", api_dir, bigloc);
    cr_assert_eq(rename(big, path), 0);
    snprintf(big, sizeof(big), "%s/sr-intents", api_dir);
    f = fopen(big, "a");
    cr_assert_not_null(f, "%s", big);
    fprintf(f, "R %s %s\n", sr_uuid, loc);
    fclose(f);
    api_reopen();
    OK(xcp_vdi_get_virtual_size(S, &size, vdi));
    cr_expect_eq(size, (int64_t)(6 * MiB), "the record says %lld bytes, "
                 "the image %llu", (long long)size, 6ull * MiB);
    OK(xcp_sr_get_virtual_allocation(S, &alloc1, api_default_sr()));
    cr_expect_eq(alloc1 - alloc0, (int64_t)(2 * MiB), "allocation %lld -> "
                 "%lld", (long long)alloc0, (long long)alloc1);
    free(loc);
    free(bigloc);
    free(sr_uuid);
}

/* Whether the qcow2 image at path carries our tracking bitmap, as
 * `qemu-img info` lists it. */
static bool image_tracked(const char *path)
{
    char *argv[] = {"qemu-img", "info", "-U", "--output=json", (char *)path,
                    NULL};
    posix_spawn_file_actions_t fa;
    char buf[65536];
    size_t have = 0;
    ssize_t n;
    int p[2], status;
    pid_t pid;

    cr_assert_eq(pipe(p), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    cr_assert_eq(posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    while (have < sizeof(buf) - 1 &&
           (n = read(p[0], buf + have, sizeof(buf) - 1 - have)) > 0)
        have += (size_t)n;
    buf[have] = '\0';
    close(p[0]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "qemu-img info %s", path);
    return strstr(buf, "xcp-cbt") != NULL;
}

/*
 * VDI.enable_cbt (on) or disable_cbt in a child process on api_dir,
 * killed the moment the driver closes the image it rewrote (before the
 * record's commit, most times: the commit follows at once).
 */
static void cbt_set_killed(const char *vdi_uuid, const char *path, bool on)
{
    char ev[4096];
    struct pollfd pfd;
    xcp_session *s;
    xcp_vdi v;
    int in, status;
    pid_t pid;

    xcp_session_close(S);
    S = NULL;
    in = inotify_init1(IN_CLOEXEC);
    cr_assert_geq(in, 0);
    cr_assert_geq(inotify_add_watch(in, path, IN_CLOSE_WRITE), 0);
    cr_assert_geq(pid = fork(), 0);
    if (pid == 0) {
        s = api_session("killed");
        if (!s || xcp_vdi_get_by_uuid(s, &v, vdi_uuid) < 0)
            _exit(2);
        _exit((on ? xcp_vdi_enable_cbt(s, v) : xcp_vdi_disable_cbt(s, v))
                  < 0 ? 1 : 0);
    }
    pfd.fd = in;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, 60000) == 1 && read(in, ev, sizeof(ev)) > 0)
        kill(pid, SIGKILL);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) || WEXITSTATUS(status) == 0,
              "the call failed");
    close(in);
    api_open();
}

/*
 * VDI.enable_cbt / disable_cbt killed after the image changed, before the
 * commit: the next open reads cbt_enabled again from the image, so the
 * record and the image agree (a later disable is then not a no-op that
 * leaves the image tracking).  Before: the record stayed as it was until
 * some later refresh (a collector pass) flipped it, which the crash
 * loop saw as tracking on that was never acknowledged.
 */
Test(storage_crash, cbt_switch_killed_before_its_commit_is_read_again,
     .timeout = 300)
{
    xcp_vdi vdi;
    char *loc, *uuid, path[512];
    unsigned i, hit = 0;
    bool rec, img;

    vdi = vdi_of(4 * MiB, &loc);
    OK(xcp_vdi_get_uuid(S, &uuid, vdi));
    snprintf(path, sizeof(path), "%s/sr/local/%s", api_dir, loc);
    for (i = 0; i < 12; i++) {
        OK(xcp_vdi_get_cbt_enabled(S, &rec, vdi));
        cbt_set_killed(uuid, path, !rec);
        OK(xcp_vdi_get_cbt_enabled(S, &rec, vdi));
        img = image_tracked(path);
        hit += rec == img;
        cr_expect_eq(rec, img, "round %u: cbt_enabled %d, the image %s",
                     i, rec, img ? "tracked" : "untracked");
        if (rec != img)
            break;
    }
    cr_log_info("%u rounds agreed", hit);
    free(uuid);
    free(loc);
}

/*
 * A VDI.snapshot of a tracked disk killed after the driver started the
 * disk's new epoch (linked to the new snapshot), before the snapshot's
 * record committed: the next open deletes the snapshot's image (its 'C'
 * intent) and switches the disk's tracking off, visibly, since its epoch
 * follows a snapshot that never was.  Before: cbt_enabled stayed true
 * and list_changed_blocks from the earlier snapshot failed as unrelated.
 * The state the kill leaves is made here: a committed snapshot's record
 * forgotten (its image stays, as an uncommitted one's) and the intent.
 */
Test(storage_crash, snapshot_killed_before_its_commit_leaves_no_dangling_cbt)
{
    xcp_vdi vdi, s1, s2;
    char *loc, *sr_uuid, *s2_uuid, *b64 = NULL, line[512];
    bool on;
    int rc;
    FILE *f;

    vdi = vdi_of(4 * MiB, &loc);
    OK(xcp_sr_get_uuid(S, &sr_uuid, api_default_sr()));
    OK(xcp_vdi_enable_cbt(S, vdi));
    OK(xcp_vdi_snapshot(S, &s1, vdi, NULL));
    OK(xcp_vdi_snapshot(S, &s2, vdi, NULL));
    OK(xcp_vdi_get_uuid(S, &s2_uuid, s2));
    OK(xcp_vdi_forget(S, s2));
    snprintf(line, sizeof(line), "%s/sr-intents", api_dir);
    f = fopen(line, "a");
    cr_assert_not_null(f, "%s", line);
    fprintf(f, "C %s %s\n", sr_uuid, s2_uuid);
    fclose(f);
    api_reopen();
    OK(xcp_vdi_get_cbt_enabled(S, &on, vdi));
    rc = xcp_vdi_list_changed_blocks(S, &b64, s1, vdi);
    cr_expect(!on || rc == 0, "tracking on, and list_changed_blocks from "
              "the earlier snapshot fails: %s",
              xcp_error_last() ? xcp_error_last()->name : "?");
    cr_expect_not(on, "tracking kept on a link to nothing");
    xcp_free(b64);
    free(s2_uuid);
    free(sr_uuid);
    free(loc);
}

/* ---- VDI.snapshot and VDI.clone of a tracked disk, killed at each step */

#define BLK (64 * 1024)

/* The steps of the file SR's snapshot or clone of a tracked writable
 * VDI, in order (the crash points of lib/libxcp/sr/file.c), and whether
 * the disk must come out of a kill there still tracked: a clone leaves
 * the disk's epoch as it was, so always; a snapshot only until the disk
 * starts its new epoch, which follows a snapshot that never committed
 * and is switched off at the next open. */
static const struct cow_step {
    const char *point;
    bool snapshot_keeps;
    bool snapshot_only;
} cow_steps[] = {
    {"file:parent-linked", true, false},
    {"file:leaf-made", true, false},
    {"file:leaf-renamed", true, false},
    {"file:child-made", true, false},
    {"file:cbt-child", true, true},
    {"file:cbt-source", false, true},
    {"file:cbt-parent", false, false},
    {"file:cow-done", false, false},
};

/* Run argv (a QEMU tool) to a successful end. */
static void run_ok(char *const argv[])
{
    int status;
    pid_t pid;

    cr_assert_eq(posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ), 0,
                 "%s", argv[0]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s %s fails",
              argv[0], argv[1]);
}

/* A guest write to the qcow2 image at path, by QEMU: it marks our
 * (auto) bitmap itself. */
static void qemu_write(const char *path, long long off, long long len)
{
    char cmd[96];

    snprintf(cmd, sizeof(cmd), "write -q %lld %lld", off, len);
    run_ok((char *[]){"qemu-io", "-f", "qcow2", "-c", cmd, (char *)path,
                      NULL});
}

/* The calls killed at a crash point: on the VDI v of session s. */
static int call_snapshot(xcp_session *s, xcp_vdi v)
{
    xcp_vdi out;

    return xcp_vdi_snapshot(s, &out, v, NULL);
}

static int call_clone(xcp_session *s, xcp_vdi v)
{
    xcp_vdi out;

    return xcp_vdi_clone(s, &out, v, NULL);
}

/* Past 32 GiB: a qcow2 bitmap of 64 KiB granules then needs a second
 * cluster of bits (its table grows). */
#define GROWN (40 * GiB)

static int call_resize(xcp_session *s, xcp_vdi v)
{
    return xcp_vdi_resize(s, v, GROWN);
}

static int call_data_destroy(xcp_session *s, xcp_vdi v)
{
    return xcp_vdi_data_destroy(s, v);
}

/*
 * call on the VDI vdi_uuid in a child process on api_dir (S closed),
 * which kills itself at the crash point point (XCP_CRASH_AT); whether it
 * died there (else the call ran to its end: the step was never
 * reached).  S is open again after.
 */
static bool killed_at(const char *vdi_uuid, int (*call)(xcp_session *,
                                                        xcp_vdi),
                      const char *point)
{
    xcp_session *s;
    xcp_vdi v;
    int status;
    pid_t pid;

    cr_assert_null(S);
    cr_assert_geq(pid = fork(), 0);
    if (pid == 0) {
        s = api_session("killed");
        if (!s || xcp_vdi_get_by_uuid(s, &v, vdi_uuid) < 0)
            _exit(2);
        setenv("XCP_CRASH_AT", point, 1);
        _exit(call(s, v) < 0 ? 1 : 0);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    api_open();
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

/*
 * For each step of a snapshot (snapshot) or clone of a tracked disk of a
 * new file SR of image format fmt: a disk with a snapshot s1 and writes
 * since (blocks 5 and 9; by QEMU, on qcow2 only: a VHD log is ours), the
 * call killed at that step, then the next open.  The invariant: a disk
 * whose record says cbt_enabled has its metadata, and list_changed_blocks
 * from s1 answers what was written since; tracking switched off only
 * where a snapshot had started the disk's new epoch.
 */
static void cow_killed_at_each_step(const char *fmt, bool snapshot)
{
    const char *want = strcmp(fmt, "qcow2") == 0 ? "5,9," : "";
    const char *got;
    char *uuid, *loc, path[640];
    xcp_vdi v, s1;
    xcp_sr sr;
    size_t i;
    bool on;

    sr = api_file_sr(fmt, fmt);
    for (i = 0; i < sizeof(cow_steps) / sizeof(cow_steps[0]); i++) {
        const struct cow_step *st = &cow_steps[i];
        if (!snapshot && st->snapshot_only)
            continue;
        OK(api_vdi_create(&v, sr, "disk", 4 * MiB));
        OK(xcp_vdi_enable_cbt(S, v));
        OK(xcp_vdi_snapshot(S, &s1, v, NULL));
        OK(xcp_vdi_get_uuid(S, &uuid, v));
        OK(xcp_vdi_get_location(S, &loc, v));
        snprintf(path, sizeof(path), "%s/%s/%s", api_dir, fmt, loc);
        /* QEMU marks the bitmap in use while it writes: with the engine
         * closed, no refresh of the record reads it meanwhile. */
        xcp_session_close(S);
        S = NULL;
        if (*want) {
            qemu_write(path, 5 * BLK, 512);
            qemu_write(path, 9 * BLK + 100, 512);
        }
        cr_assert(killed_at(uuid, snapshot ? call_snapshot : call_clone,
                            st->point), "%s %s: no "
                  "kill at %s (the step was not reached)", fmt,
                  snapshot ? "snapshot" : "clone", st->point);
        OK(xcp_vdi_get_cbt_enabled(S, &on, v));
        got = on ? api_changed_blocks(s1, v, NULL) : NULL;
        cr_expect(!on || got, "%s %s killed at %s: cbt_enabled, and "
                  "list_changed_blocks fails: %s", fmt,
                  snapshot ? "snapshot" : "clone", st->point,
                  xcp_error_last() ? xcp_error_last()->name : "?");
        cr_expect(!got || !strcmp(got, want), "%s %s killed at %s: "
                  "changed blocks %s, written %s", fmt,
                  snapshot ? "snapshot" : "clone", st->point, got, want);
        cr_expect(on || (snapshot && !st->snapshot_keeps), "%s %s killed "
                  "at %s: tracking lost", fmt,
                  snapshot ? "snapshot" : "clone", st->point);
        xcp_free(uuid);
        xcp_free(loc);
    }
}

/*
 * VDI.clone and VDI.snapshot of a tracked disk killed at each step of
 * the driver (the crash points of sr/file.c).  Before: a qcow2 disk's
 * bitmap lives in its file, which the new hidden parent takes; the new
 * leaf renamed over the disk got it back only after the child was made,
 * so a kill in between left the record saying cbt_enabled over an image
 * without tracking, and list_changed_blocks answered
 * VDI_NO_CBT_METADATA (the crash loop's failure in CI, a kill in a
 * clone).
 */
Test(storage_crash, qcow2_clone_killed_at_each_step_keeps_tracking,
     .timeout = 300)
{
    cow_killed_at_each_step("qcow2", false);
}

Test(storage_crash, qcow2_snapshot_killed_at_each_step_leaves_cbt_answering,
     .timeout = 300)
{
    cow_killed_at_each_step("qcow2", true);
}

Test(storage_crash, vhd_clone_killed_at_each_step_keeps_tracking,
     .timeout = 300)
{
    cow_killed_at_each_step("vhd", false);
}

Test(storage_crash, vhd_snapshot_killed_at_each_step_leaves_cbt_answering,
     .timeout = 300)
{
    cow_killed_at_each_step("vhd", true);
}

/*
 * What the old driver left (a qcow2 disk's bitmap gone with its file to
 * the new parent, the call killed before the leaf got it back) is made
 * right by the next open whatever leaves it: after an interrupted call
 * (its 'C' intent), a tracked disk found without metadata has its
 * tracking switched off, record and image, so that cbt_enabled never
 * promises what list_changed_blocks cannot answer.  Before: the record
 * stayed on, and list_changed_blocks answered VDI_NO_CBT_METADATA.
 */
Test(storage_crash, tracked_disk_without_metadata_is_switched_off_at_open)
{
    char *loc, *sr_uuid, path[640], uuid[37], *b64 = NULL;
    xcp_vdi v, s1;
    FILE *f;
    bool on;

    OK(api_vdi_create(&v, api_default_sr(), "disk", 4 * MiB));
    OK(xcp_vdi_enable_cbt(S, v));
    OK(xcp_vdi_get_location(S, &loc, v));
    OK(xcp_sr_get_uuid(S, &sr_uuid, api_default_sr()));
    snprintf(path, sizeof(path), "%s/sr/local/%s", api_dir, loc);
    xcp_session_close(S);
    S = NULL;
    run_ok((char *[]){"qemu-img", "bitmap", "--remove", "-f", "qcow2", path,
                      "xcp-cbt", NULL});
    snprintf(uuid, sizeof(uuid), "%s", "0f0e0d0c-0b0a-4908-8706-050403020100");
    snprintf(path, sizeof(path), "%s/sr-intents", api_dir);
    f = fopen(path, "a");
    cr_assert_not_null(f, "%s", path);
    fprintf(f, "C %s %s\n", sr_uuid, uuid);
    fclose(f);
    api_open();
    OK(xcp_vdi_get_cbt_enabled(S, &on, v));
    cr_expect_not(on, "cbt_enabled kept over an image without tracking");
    /* Tracking can be switched on again: a new first epoch. */
    OK(xcp_vdi_enable_cbt(S, v));
    OK(xcp_vdi_snapshot(S, &s1, v, NULL));
    OK(xcp_vdi_list_changed_blocks(S, &b64, s1, v));
    xcp_free(b64);
    xcp_free(loc);
    xcp_free(sr_uuid);
}

/*
 * A tracked 4 MiB qcow2 disk of the default SR with a snapshot *s1 and a
 * QEMU write to block 5 since, the engine closed (S NULL) for a call
 * killed_at; its uuid into uuid (37 bytes).
 */
static xcp_vdi killed_disk(xcp_vdi *s1, char *uuid)
{
    char *loc, *u, path[640];
    xcp_vdi v;

    OK(api_vdi_create(&v, api_default_sr(), "disk", 4 * MiB));
    OK(xcp_vdi_enable_cbt(S, v));
    OK(xcp_vdi_snapshot(S, s1, v, NULL));
    OK(xcp_vdi_get_uuid(S, &u, v));
    OK(xcp_vdi_get_location(S, &loc, v));
    snprintf(uuid, 37, "%s", u);
    snprintf(path, sizeof(path), "%s/sr/local/%s", api_dir, loc);
    xcp_free(u);
    xcp_free(loc);
    xcp_session_close(S);
    S = NULL;
    qemu_write(path, 5 * BLK, 512);
    return v;
}

/*
 * VDI.resize of a tracked qcow2 disk killed before the bitmaps are
 * rewritten for the new size (one that needs a longer bitmap table): the
 * disk is still tracked, its changes answer, the record agrees with the
 * image's size, and QEMU opens the image.  Before: the new size reached
 * the header first, the bitmap's table no longer matched it, and QEMU
 * refused the image ("Bitmap 'xcp-cbt' doesn't satisfy the
 * constraints"); we found the disk untracked.
 */
Test(storage_crash, qcow2_resize_killed_midway_keeps_tracking)
{
    char uuid[37], *loc, path[640];
    const char *got;
    xcp_vdi v, s1;
    int64_t size;
    bool on;

    v = killed_disk(&s1, uuid);
    cr_assert(killed_at(uuid, call_resize, "qcow2:resize-bitmaps"),
              "no kill at qcow2:resize-bitmaps");
    OK(xcp_vdi_get_location(S, &loc, v));
    snprintf(path, sizeof(path), "%s/sr/local/%s", api_dir, loc);
    xcp_free(loc);
    run_ok((char *[]){"qemu-img", "check", "-q", path, NULL});
    OK(xcp_vdi_get_cbt_enabled(S, &on, v));
    cr_expect(on, "tracking lost");
    got = on ? api_changed_blocks(s1, v, NULL) : NULL;
    cr_expect(!on || (got && !strcmp(got, "5,")), "changed blocks %s",
              got ? got : "(error)");
    OK(xcp_vdi_get_virtual_size(S, &size, v));
    cr_expect_eq(size, (int64_t)(4 * MiB), "size %lld", (long long)size);
    /* And the resize goes through when run again. */
    OK(xcp_vdi_resize(S, v, GROWN));
    OK(xcp_vdi_get_cbt_enabled(S, &on, v));
    cr_expect(on);
    run_ok((char *[]){"qemu-img", "check", "-q", path, NULL});
}

/*
 * VDI.data_destroy of a tracked snapshot killed before its new empty
 * image replaced the snapshot's, and after: the next open finishes it
 * (its 'X' intent), so the record says cbt_metadata with the empty
 * image's sizes and list_changed_blocks from it still answers.  Before:
 * the record stayed a user disk with its old sizes over an image
 * without data (or, killed before the rename, over the data).
 */
Test(storage_crash, data_destroy_killed_midway_is_finished_at_open)
{
    static const char *const points[] = {"file:dd-made", "file:dd-renamed"};
    enum xcp_vdi_type type;
    char uuid[37], *su;
    const char *got;
    int64_t phys;
    xcp_vdi v, s1;
    size_t i;

    for (i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
        v = killed_disk(&s1, uuid);
        api_open();
        OK(xcp_vdi_get_uuid(S, &su, s1));
        xcp_session_close(S);
        S = NULL;
        cr_assert(killed_at(su, call_data_destroy, points[i]),
                  "no kill at %s", points[i]);
        xcp_free(su);
        OK(xcp_vdi_get_type(S, &type, s1));
        cr_expect_eq(type, XCP_VDI_TYPE_CBT_METADATA, "killed at %s: type "
                     "%d", points[i], (int)type);
        OK(xcp_vdi_get_physical_utilisation(S, &phys, s1));
        cr_expect_lt(phys, (int64_t)(1 * MiB), "killed at %s: %lld bytes",
                     points[i], (long long)phys);
        got = api_changed_blocks(s1, v, NULL);
        cr_expect(got && !strcmp(got, "5,"), "killed at %s: changed "
                  "blocks %s", points[i], got ? got : "(error)");
    }
}
