/*
 * tests/api/test_storage_gc.c - storage left behind: the SR collector
 * keeps snapshot chains short under snapshot-and-delete cycles, and the
 * engine's open collects what interrupted calls left in an SR (images no
 * record refers to, temporary files, suspend images no VM refers to),
 * touching nothing else.
 */
#include "helpers.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(storage_gc, .init = api_setup, .fini = api_teardown);

/* The default SR's directory. */
static void sr_dir(char *out, size_t n)
{
    snprintf(out, n, "%s/sr/local", api_dir);
}

/* Image files (*.qcow2, *.raw) in the default SR, and their bytes. */
static size_t count_images(uint64_t *bytes)
{
    char dir[512], path[1024];
    struct dirent *de;
    struct stat st;
    size_t n = 0, len;
    DIR *d;

    sr_dir(dir, sizeof(dir));
    d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    if (bytes)
        *bytes = 0;
    while ((de = readdir(d))) {
        len = strlen(de->d_name);
        if (!(len > 6 && !strcmp(de->d_name + len - 6, ".qcow2")) &&
            !(len > 4 && !strcmp(de->d_name + len - 4, ".raw")))
            continue;
        n++;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (bytes && stat(path, &st) == 0)
            *bytes += (uint64_t)st.st_blocks * 512;
    }
    closedir(d);
    return n;
}

/* Destroy a snapshot VM and its disks, as xe snapshot-uninstall does. */
static void uninstall(xcp_vm snap)
{
    xcp_vbd_set vbds;
    xcp_vdi vdis[16];
    enum xcp_vbd_type type;
    size_t i, n = 0;

    OK(xcp_vm_get_VBDs(S, &vbds, snap));
    for (i = 0; i < vbds.n && n < 16; i++) {
        OK(xcp_vbd_get_type(S, &type, vbds.items[i]));
        if (type == XCP_VBD_TYPE_DISK)
            OK(xcp_vbd_get_VDI(S, &vdis[n++], vbds.items[i]));
    }
    xcp_vbd_set_dispose(&vbds);
    OK(xcp_vm_destroy(S, snap));
    for (i = 0; i < n; i++)
        OK(xcp_vdi_destroy(S, vdis[i]));
}

/* Before: the 29th snapshot failed "snapshot chain too long", with 30
 * images for one disk, and no space ever came back. */
Test(storage_gc, snapshot_delete_cycles_keep_chains_and_files_bounded,
     .timeout = 600)
{
    xcp_vm vm = api_install("web"), snap;
    size_t i, files, most = 0, start;
    uint64_t bytes;

    /* Its disk stays attached all along: the collector works online. */
    OK(xcp_vm_start(S, vm, false, false));
    start = count_images(NULL);
    for (i = 0; i < 200; i++) {
        /* A burst far faster than the collector reaches the chain limit
         * while a background merge may be under way: the snapshot's own
         * pass takes the merges over and never fails (before, it got
         * SR_BACKEND_FAILURE_109 and the test retried it). */
        int rc = xcp_vm_snapshot(S, &snap, vm, "s", NULL);

        if (rc < 0)
            files = count_images(&bytes);
        cr_assert_eq(rc, 0, "cycle %zu: VM.snapshot failed: %s %s (%zu "
                     "image files, %" PRIu64 " bytes)", i + 1,
                     xcp_error_last() ? xcp_error_last()->name : "?",
                     xcp_error_last() && xcp_error_last()->nparams > 1
                         ? xcp_error_last()->params[1] : "", files, bytes);
        uninstall(snap);
        files = count_images(NULL);
        if (files > most)
            most = files;
    }
    /* Closing the engine finishes the collector's pending pass. */
    api_reopen();
    files = count_images(&bytes);
    cr_log_info("200 snapshot/delete cycles: %zu image files at the end "
                "(%zu at the start, at most %zu during), %" PRIu64
                " bytes", files, start, most, bytes);
    fprintf(stderr, "storage_gc: 200 snapshot/delete cycles: %zu image "
            "files at the end (%zu before the first, at most %zu during), "
            "%" PRIu64 " bytes on disk\n", files, start, most, bytes);
    /* The disk and one hidden parent holding its data. */
    cr_expect_leq(files, start + 1, "%zu image files for one disk", files);
    /* The background collector may lag behind a tight loop, never past
     * the chain limit (30 images) without a pass of its own. */
    cr_expect_leq(most, start + 31, "%zu image files during the cycles",
                  most);
    /* The VM still runs and its disk still snapshots. */
    cr_expect_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
    OK(xcp_vm_snapshot(S, &snap, vm, "last", NULL));
    uninstall(snap);
}

static void touch(const char *name, const char *text)
{
    char path[1024], dir[512];
    int fd;

    sr_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0, "%s", path);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static bool exists(const char *name)
{
    char path[1024], dir[512];
    struct stat st;

    sr_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

/* Copy an image of the SR under another name, as a call killed between
 * making an image and committing its record leaves it. */
static void copy_image(const char *from, const char *to)
{
    char src[1024], dst[1024], dir[512], buf[65536];
    ssize_t n;
    int in, out;

    sr_dir(dir, sizeof(dir));
    snprintf(src, sizeof(src), "%s/%s", dir, from);
    snprintf(dst, sizeof(dst), "%s/%s", dir, to);
    in = open(src, O_RDONLY);
    out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(in >= 0 && out >= 0, "%s -> %s", src, dst);
    while ((n = read(in, buf, sizeof(buf))) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
}

/* As a call killed in the middle leaves it: the line it wrote to
 * <state dir>/sr-intents before making or deleting an image. */
static void intent(const char *line)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/sr-intents", api_dir);
    f = fopen(path, "a");
    cr_assert_not_null(f, "%s", path);
    fprintf(f, "%s\n", line);
    fclose(f);
}

static xcp_vdi new_vdi(const char *name, enum xcp_vdi_type type, char **loc)
{
    xcp_vdi_record r;
    xcp_vdi vdi;

    xcp_vdi_record_init(&r);
    r.SR = api_default_sr();
    r.virtual_size = 1 * MiB;
    r.type = type;
    r.name_label = (char *)name;
    OK(xcp_vdi_create(S, &vdi, &r));
    OK(xcp_vdi_get_location(S, loc, vdi));
    return vdi;
}

/* Before: none of the leftovers was ever removed. */
Test(storage_gc, open_collects_leftovers_of_interrupted_calls_only)
{
    xcp_vdi keep, susp, forgotten, gone;
    xcp_vdi_set vdis;
    char *loc, *sloc, *floc, *gloc, *sr_uuid, line[256];
    size_t before, i;
    bool adopted = false;
    const char *made = "0b5a3c5e-7d1f-4c1a-9a2b-3c4d5e6f7a8b";
    const char *dropped = "1c6b4d6f-8e2a-4d2b-8b3c-4d5e6f7a8b9c.qcow2";

    OK(xcp_sr_get_uuid(S, &sr_uuid, api_default_sr()));
    keep = new_vdi("keep", XCP_VDI_TYPE_USER, &loc);
    susp = new_vdi("suspend image", XCP_VDI_TYPE_SUSPEND, &sloc);
    forgotten = new_vdi("forgotten", XCP_VDI_TYPE_USER, &floc);
    gone = new_vdi("gone", XCP_VDI_TYPE_USER, &gloc);
    OK(xcp_vdi_forget(S, forgotten));
    before = count_images(NULL);

    /* A VDI.create killed after making its image, before the commit. */
    snprintf(line, sizeof(line), "%s.qcow2", made);
    copy_image(loc, line);
    snprintf(line, sizeof(line), "C %s %s", sr_uuid, made);
    intent(line);
    /* A VDI.destroy killed before its commit: the record is still there,
     * so is the image. */
    snprintf(line, sizeof(line), "D %s %s", sr_uuid, loc);
    intent(line);
    /* One killed after the commit, before the deletion. */
    OK(xcp_vdi_forget(S, gone));
    snprintf(line, sizeof(line), "D %s %s", sr_uuid, gloc);
    intent(line);
    touch(".xcp-tmp-deadbeef.qcow2", "x");  /* an interrupted operation */
    copy_image(loc, dropped);               /* placed there for SR.scan */
    touch("notes.txt", "not ours");
    touch("README", "not ours");

    api_reopen();
    snprintf(line, sizeof(line), "%s.qcow2", made);
    cr_expect(!exists(line), "the image of a killed VDI.create stays");
    cr_expect(!exists(gloc), "the image of a killed VDI.destroy stays");
    cr_expect(!exists(".xcp-tmp-deadbeef.qcow2"), "a temporary file stays");
    cr_expect(!exists(sloc), "the orphaned suspend image stays");
    cr_expect(exists(loc), "a VDI's image went");
    cr_expect(exists(floc), "the image of a forgotten VDI went");
    cr_expect(exists(dropped), "an image placed in the SR went");
    cr_expect(exists("notes.txt") && exists("README"),
              "a file that is not ours went");
    {
        char *none = NULL;
        assert_error(xcp_vdi_get_location(S, &none, susp), "HANDLE_INVALID",
                     "VDI", susp.ref);
    }
    /* keep, forgotten, dropped (and the VM's disk): as before, bar the
     * suspend image and gone, plus dropped. */
    cr_expect_eq(count_images(NULL), before - 1);
    /* SR.scan brings back what was forgotten or placed there. */
    OK(xcp_sr_scan(S, api_default_sr()));
    OK(xcp_sr_get_VDIs(S, &vdis, api_default_sr()));
    for (i = 0; i < vdis.n; i++) {
        char *l;
        OK(xcp_vdi_get_location(S, &l, vdis.items[i]));
        adopted = adopted || !strcmp(l, dropped);
        free(l);
    }
    xcp_vdi_set_dispose(&vdis);
    cr_expect(adopted, "SR.scan did not introduce %s", dropped);
    (void)keep;
    free(sr_uuid);
    free(sloc);
    free(floc);
    free(gloc);
    free(loc);
}
