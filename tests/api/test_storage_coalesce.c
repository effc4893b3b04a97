/*
 * tests/api/test_storage_coalesce.c - online coalesce through the public
 * API: the chain length bound (XAPI's 30 images, SR_BACKEND_FAILURE_109),
 * the background collector's "Garbage collection" task, and a busy disk
 * (written by qemu-io, a process of its own, between snapshots) whose
 * snapshot-and-delete cycles keep its chain short and its data intact.
 */
#include "helpers.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

TestSuite(storage_coalesce, .init = api_setup, .fini = api_teardown,
          .timeout = 600);

/* Run argv (no shell), its output discarded; the exit status. */
static int run(const char *const *argv)
{
    posix_spawn_file_actions_t fa;
    int status;
    pid_t pid;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv,
                     environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

#define RUN(...) run((const char *const[]){ __VA_ARGS__, NULL })

/* The image file of a VDI of the default SR. */
static void image_of(xcp_vdi vdi, char *out, size_t n)
{
    char *loc;

    OK(xcp_vdi_get_location(S, &loc, vdi));
    snprintf(out, n, "%s/sr/local/%s", api_dir, loc);
    free(loc);
}

static xcp_vdi new_vdi(const char *name, int64_t size)
{
    xcp_vdi v;

    OK(api_vdi_create(&v, api_default_sr(), name, size));
    return v;
}

/* Write len bytes of pattern at off into a qcow2 image, and the same into
 * the raw reference file ref, with qemu-io: a writer outside libxcp. */
static void write_both(const char *img, const char *ref, int pattern,
                       int64_t off, int64_t len)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "write -P %d %lld %lld", pattern,
             (long long)off, (long long)len);
    cr_assert_eq(RUN("qemu-io", "-f", "qcow2", "-c", cmd, img), 0,
                 "qemu-io %s on %s", cmd, img);
    if (ref)
        cr_assert_eq(RUN("qemu-io", "-f", "raw", "-c", cmd, ref), 0,
                     "qemu-io %s on %s", cmd, ref);
}

/* Images in the chain of img, itself included (qemu-img follows it). */
static unsigned chain_length(const char *img)
{
    char out[512];
    int fd, st, tries;
    unsigned n = 0;
    pid_t pid;
    posix_spawn_file_actions_t fa;
    const char *const argv[] = { "qemu-img", "info", "-U",
                                 "--backing-chain", img, NULL };
    char *buf = NULL, *p;
    size_t len = 0;
    ssize_t r;
    FILE *f;

    snprintf(out, sizeof(out), "%s/chain.txt", api_dir);
    /* qemu-img reads the chain from outside the engine: the collector may
     * relink an image and delete its old parent between qemu-img's read
     * of the header and its open of that parent.  Read it again then. */
    for (tries = 0;; tries++) {
        fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        cr_assert_geq(fd, 0);
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fd, 1);
        cr_assert_eq(posix_spawnp(&pid, "qemu-img", &fa, NULL,
                                  (char *const *)argv, environ), 0);
        posix_spawn_file_actions_destroy(&fa);
        close(fd);
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        if ((WIFEXITED(st) && WEXITSTATUS(st) == 0) || tries == 50)
            break;
        usleep(20 * 1000);
    }
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "qemu-img info %s",
              img);
    f = fopen(out, "r");
    cr_assert_not_null(f);
    buf = malloc(1 << 16);
    cr_assert_not_null(buf);
    while ((r = (ssize_t)fread(buf + len, 1, (1 << 16) - 1 - len, f)) > 0)
        len += (size_t)r;
    fclose(f);
    buf[len] = '\0';
    for (p = buf; (p = strstr(p, "image: ")); p++)
        n++;
    free(buf);
    return n;
}

/* Before: the 30th image was refused as SR_BACKEND_FAILURE ["", "The
 * snapshot chain is too long ...", ""], not as sm's SnapshotChainTooLong
 * (code 109) that XAPI relays. */
Test(storage_coalesce, snapshot_past_30_images_fails_sr_backend_failure_109)
{
    xcp_vdi v = new_vdi("deep", 4 * MiB), snap;
    const xcp_error *err;
    int i, rc = 0;

    /* Each snapshot kept: every hidden parent has two children, so the
     * collector has nothing to merge and the chain grows by one. */
    for (i = 0; i < 40; i++)
        if ((rc = xcp_vdi_snapshot(S, &snap, v, NULL)) < 0)
            break;
    cr_assert_lt(rc, 0, "40 snapshots of one disk were allowed");
    cr_expect_eq(i, 29, "refused at snapshot %d (the chain was %d images)",
                 i + 1, i + 1);
    err = xcp_error_last();
    cr_assert_not_null(err);
    cr_expect_str_eq(err->name, "SR_BACKEND_FAILURE_109");
    cr_assert_eq(err->nparams, 3);
    cr_expect_str_eq(err->params[0], "");
    cr_expect(strstr(err->params[1], "The snapshot chain is too long"),
              "%s", err->params[1]);
    cr_expect_str_eq(err->params[2], "");
}

/* The most recent task named "Garbage collection", its status and
 * progress; false when there is none. */
static bool gc_task(enum xcp_task_status_type *status, double *progress,
                    char **descr)
{
    xcp_task_set all;
    bool found = false;
    size_t i;

    OK(xcp_task_get_all(S, &all));
    for (i = 0; i < all.n && !found; i++) {
        char *label = NULL;
        if (xcp_task_get_name_label(S, &label, all.items[i]) < 0)
            continue;
        if (!strcmp(label, "Garbage collection")) {
            found = true;
            OK(xcp_task_get_status(S, status, all.items[i]));
            OK(xcp_task_get_progress(S, progress, all.items[i]));
            OK(xcp_task_get_name_description(S, descr, all.items[i]));
        }
        free(label);
    }
    xcp_task_set_dispose(&all);
    return found;
}

/* Before: the collector showed nothing while it merged. */
Test(storage_coalesce, background_merge_shows_a_garbage_collection_task)
{
    xcp_vdi v = new_vdi("data", 64 * MiB), s1, s2;
    xcp_string_map sm;
    enum xcp_task_status_type status = XCP_TASK_STATUS_TYPE_PENDING;
    double progress = 0;
    char img[1024], *descr = NULL, *sr_uuid, *s1_parent = NULL;
    const char *vp;
    int i;

    image_of(v, img, sizeof(img));
    write_both(img, NULL, 0x11, 0, 32 * MiB);
    OK(xcp_vdi_snapshot(S, &s1, v, NULL));
    OK(xcp_vdi_get_sm_config(S, &sm, s1));
    vp = xcp_string_map_get(&sm, "vhd-parent");
    cr_assert_not_null(vp);
    s1_parent = strdup(vp);
    xcp_string_map_dispose(&sm);
    write_both(img, NULL, 0x22, 8 * MiB, 16 * MiB);
    OK(xcp_vdi_snapshot(S, &s2, v, NULL));
    write_both(img, NULL, 0x33, 0, 1 * MiB);
    /* The snapshots go: the second's parent (hidden, 16 MiB of its own)
     * is merged into the first's (a task), the disk pointed at that one,
     * then, nothing having it attached, the disk is leaf-coalesced. */
    OK(xcp_vdi_destroy(S, s1));
    OK(xcp_vdi_destroy(S, s2));
    for (i = 0; i < 600; i++) {
        free(descr);
        descr = NULL;
        if (gc_task(&status, &progress, &descr) &&
            status != XCP_TASK_STATUS_TYPE_PENDING)
            break;
        usleep(100 * 1000);
    }
    cr_assert(descr, "no Garbage collection task after 60 s");
    cr_expect_eq(status, XCP_TASK_STATUS_TYPE_SUCCESS);
    cr_expect_float_eq(progress, 1.0, 1e-9);
    OK(xcp_sr_get_uuid(S, &sr_uuid, api_default_sr()));
    cr_expect(strstr(descr, sr_uuid), "%s", descr);
    /* The record follows the chain: the disk has no parent left. */
    for (i = 0; i < 600; i++) {
        OK(xcp_vdi_get_sm_config(S, &sm, v));
        vp = xcp_string_map_get(&sm, "vhd-parent");
        xcp_string_map_dispose(&sm);
        if (!vp)
            break;
        usleep(100 * 1000);
    }
    cr_expect_lt(i, 600, "VDI.sm_config:vhd-parent was not updated");
    cr_expect_eq(chain_length(img), 1);
    cr_expect_eq(RUN("qemu-img", "check", "-q", img), 0);
    free(descr);
    free(sr_uuid);
    free(s1_parent);
}

/*
 * A snapshot at the chain limit while the background collector is in the
 * middle of a merge that would bring the chain under it.  Before: the
 * snapshot's synchronous pass could not take the SR's merge lock over
 * from the running merge, which in turn needed the locks the snapshot
 * held for its next step, so the snapshot failed SR_BACKEND_FAILURE_109
 * (a client had to retry until the collector caught up).
 */
Test(storage_coalesce, a_snapshot_at_the_chain_limit_takes_over_a_merge)
{
    xcp_vdi v = new_vdi("deep", 2 * GiB), snaps[29], s;
    enum xcp_task_status_type status = XCP_TASK_STATUS_TYPE_SUCCESS;
    double progress = 0;
    char img[1024], *descr = NULL;
    bool merging = false;
    int i;

    image_of(v, img, sizeof(img));
    OK(xcp_vdi_snapshot(S, &snaps[0], v, NULL));
    /* The second hidden image holds 1 GiB: merging it takes a while. */
    write_both(img, NULL, 0x5a, 0, 1 * GiB);
    for (i = 1; i < 29; i++)
        OK(xcp_vdi_snapshot(S, &snaps[i], v, NULL));
    cr_assert_eq(chain_length(img), 30);
    /* The first hidden image keeps one child: the 1 GiB one merges into
     * it in the background, which takes the chain down to 29. */
    OK(xcp_vdi_destroy(S, snaps[0]));
    for (i = 0; i < 3000 && !merging; i++) {
        free(descr);
        descr = NULL;
        merging = gc_task(&status, &progress, &descr) &&
                  status == XCP_TASK_STATUS_TYPE_PENDING;
        if (!merging)
            usleep(10 * 1000);
    }
    free(descr);
    cr_assert(merging, "no merge under way after 30 s");
    OK(xcp_vdi_snapshot(S, &s, v, NULL));
    cr_expect_leq(chain_length(img), 30);
    cr_expect_eq(RUN("qemu-img", "check", "-q", img), 0);
    cr_expect_eq(RUN("qemu-io", "-r", "-U", "-f", "qcow2", "-c",
                     "read -P 90 0 1G", img), 0,
                 "the disk lost its data");
}

/*
 * A backup-like job on a busy disk: each cycle the disk is written (4 MiB
 * at a moving place, by qemu-io), snapshotted, and the snapshot before
 * the last one deleted, while the collector merges in the background.
 * Before: merging needed the SR lock for the whole copy, and a VHD or
 * any node with children was never merged up; here the chain must stay
 * short whatever the load (a generous bound: 6 images) and the disk must
 * read as a flat reference file written alike.
 */
Test(storage_coalesce, busy_disk_snapshot_cycles_keep_the_chain_short)
{
    const int cycles = 40;
    xcp_vdi v = new_vdi("busy", 128 * MiB), snaps[64];
    char img[1024], ref[1024];
    unsigned len, longest = 0;
    int i, fd;

    image_of(v, img, sizeof(img));
    snprintf(ref, sizeof(ref), "%s/reference.raw", api_dir);
    fd = open(ref, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ftruncate(fd, 128 * MiB), 0);
    close(fd);
    write_both(img, ref, 0x5a, 0, 64 * MiB);
    for (i = 0; i < cycles; i++) {
        write_both(img, ref, (i * 7 + 1) & 0xff,
                   (int64_t)(i % 30) * 4 * MiB, 4 * MiB);
        OK(xcp_vdi_snapshot(S, &snaps[i], v, NULL));
        if (i >= 2)
            OK(xcp_vdi_destroy(S, snaps[i - 2]));
        len = chain_length(img);
        if (len > longest)
            longest = len;
    }
    /* The collector's last pass (it may lag behind the loop). */
    for (i = 0; i < 300 && chain_length(img) > 3; i++)
        usleep(100 * 1000);
    len = chain_length(img);
    cr_log_info("%d snapshot cycles on a busy disk: chain at most %u "
                "images, %u at the end", cycles, longest, len);
    fprintf(stderr, "storage_coalesce: %d snapshot/delete cycles with 4 MiB "
            "written each: chain at most %u images during, %u at the end\n",
            cycles, longest, len);
    cr_expect_leq(longest, 6, "the chain grew to %u images", longest);
    cr_expect_leq(len, 3, "%u images in the chain at the end", len);
    cr_expect_eq(RUN("qemu-img", "check", "-q", img), 0);
    cr_expect_eq(RUN("qemu-img", "compare", "-q", "-f", "raw", "-F",
                     "qcow2", ref, img), 0,
                 "the disk does not read as the reference");
}

/* The pending "Garbage collection" task, if any. */
static bool gc_pending(void)
{
    enum xcp_task_status_type status;
    double progress;
    char *descr = NULL;
    bool pending = gc_task(&status, &progress, &descr) &&
                   status == XCP_TASK_STATUS_TYPE_PENDING;

    free(descr);
    return pending;
}

/*
 * While the collector copies a large node into its parent, calls on the
 * same SR go on: a snapshot of another disk and a new disk are made while
 * its task is still pending.  Before: the copy held the SR's lock (and
 * showed no task), so they waited for it.
 */
Test(storage_coalesce, calls_on_the_sr_proceed_during_a_merge)
{
    xcp_vdi v = new_vdi("big", 2 * GiB), other = new_vdi("other", 4 * MiB);
    xcp_vdi s1, s2, snap, fresh;
    char img[1024];
    bool before = false, after = false;
    int i, tries, round;

    image_of(v, img, sizeof(img));
    /* A merge that ends before the calls do proves nothing either way (a
     * slow build, such as the sanitizers', makes the calls slower than
     * the copy): then another round, with a new node to merge. */
    for (round = 0; round < 3 && !after; round++) {
        write_both(img, NULL, 0x11 + round, 0, 64 * MiB);
        OK(xcp_vdi_snapshot(S, &s1, v, NULL));
        /* The node to merge: 1 GiB of its own. */
        write_both(img, NULL, 0x22 + round, 0, 1 * GiB);
        OK(xcp_vdi_snapshot(S, &s2, v, NULL));
        OK(xcp_vdi_destroy(S, s1));
        OK(xcp_vdi_destroy(S, s2));
        /* Catch the merge's task while it runs (on a loaded machine it
         * may start late). */
        for (tries = 0; tries < 3000 && !(before = gc_pending()); tries++)
            usleep(10 * 1000);
        cr_assert(before, "no pending Garbage collection task seen in 30 s");
        OK(xcp_vdi_snapshot(S, &snap, other, NULL));
        OK(api_vdi_create(&fresh, api_default_sr(), "fresh", 4 * MiB));
        after = gc_pending();
        cr_log_info("round %d: snapshot and create done while the merge %s",
                    round, after ? "still ran" : "had ended");
        fprintf(stderr, "storage_coalesce: VDI.snapshot and VDI.create on "
                "the SR during a 1 GiB merge (round %d): %s\n", round,
                after ? "both done while its task was still pending"
                      : "the merge ended first");
        for (i = 0; i < 600 && gc_pending(); i++)
            usleep(100 * 1000);
    }
    cr_expect(after, "the calls waited for the merge to end (3 rounds)");
    cr_expect_eq(RUN("qemu-img", "check", "-q", img), 0);
}
