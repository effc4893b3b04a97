/*
 * tests/api/test_storage_errors.c - what an SR driver reports failing
 * reaches the caller as the XenAPI error of its kind, with the parameters
 * errors.def lists (those XAPI sends): VDI_MISSING [sr, vdi] for an image
 * gone from the storage, SR_NOT_EMPTY [] for an SR whose storage still
 * holds images, SR_FULL [requested, maximum] for storage out of space.
 * Before, the driver's error name was relayed with one parameter, its
 * reason, whatever the error.
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB (1024 * 1024)

static char tiny[320];          /* a small tmpfs mounted for SR_FULL */

static void teardown(void)
{
    if (tiny[0])
        umount2(tiny, MNT_DETACH);
    tiny[0] = '\0';
    api_teardown();
}

TestSuite(storage_errors, .init = api_setup, .fini = teardown);

/* A file SR at api_dir/name. */
static xcp_sr file_sr(const char *name)
{
    xcp_string_map dc = {0}, smc = {0};
    char loc[320];
    xcp_sr sr;

    snprintf(loc, sizeof(loc), "%s/%s", api_dir, name);
    xcp_string_map_set(&dc, "location", loc);
    OK(xcp_sr_create(S, &sr, api_host(), &dc, 0, name, "", "file", "user",
                     false, &smc));
    xcp_string_map_dispose(&dc);
    return sr;
}

/* Remove the image of a VDI of the default SR behind the engine's back. */
static void lose_image(xcp_vdi vdi)
{
    char *loc = NULL, path[640];

    OK(xcp_vdi_get_location(S, &loc, vdi));
    snprintf(path, sizeof(path), "%s/sr/local/%s", api_dir, loc);
    cr_assert_eq(unlink(path), 0, "unlink %s: %s", path, strerror(errno));
    xcp_free(loc);
}

Test(storage_errors, missing_image_is_vdi_missing_naming_sr_and_vdi)
{
    xcp_sr sr = api_default_sr();
    xcp_string_map none = {0};
    xcp_vdi vdi, out, null_vdi;

    SET_REF(null_vdi, XCP_NULL_REF);
    OK(api_vdi_create(&vdi, sr, "disk", 4 * MiB));
    lose_image(vdi);
    assert_error(xcp_vdi_snapshot(S, &out, vdi, &none), "VDI_MISSING",
                 sr.ref, vdi.ref);
    assert_error(xcp_vdi_clone(S, &out, vdi, &none), "VDI_MISSING", sr.ref,
                 vdi.ref);
    /* A copy names the VDI copied and its own SR, not the target SR. */
    assert_error(xcp_vdi_copy(S, &out, vdi, file_sr("other"), null_vdi,
                              null_vdi),
                 "VDI_MISSING", sr.ref, vdi.ref);
}

Test(storage_errors, images_left_on_storage_are_sr_not_empty_without_params)
{
    xcp_sr sr = file_sr("second");
    xcp_pbd_set pbds;
    xcp_vdi vdi;

    OK(api_vdi_create(&vdi, sr, "disk", 4 * MiB));
    /* The record goes, its image stays: only the driver sees it. */
    OK(xcp_vdi_forget(S, vdi));
    OK(xcp_sr_get_PBDs(S, &pbds, sr));
    cr_assert_eq(pbds.n, 1);
    OK(xcp_pbd_unplug(S, pbds.items[0]));
    xcp_pbd_set_dispose(&pbds);
    assert_error0(xcp_sr_destroy(S, sr), "SR_NOT_EMPTY");
}

Test(storage_errors, storage_out_of_space_is_sr_full_requested_and_maximum)
{
    char path[400], buf[64 * 1024], size[32];
    const xcp_error *e;
    xcp_vdi vdi;
    xcp_sr sr;
    char *end;
    int fd;

    snprintf(tiny, sizeof(tiny), "%s/tiny", api_dir);
    cr_assert_eq(mkdir(tiny, 0700), 0);
    if (mount("tmpfs", tiny, "tmpfs", 0, "size=1m") < 0) {
        tiny[0] = '\0';
        cr_skip_test("cannot mount a tmpfs: %s", strerror(errno));
    }
    sr = file_sr("tiny");
    /* Fill what the SR's marker left. */
    snprintf(path, sizeof(path), "%s/filler", tiny);
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    memset(buf, 'x', sizeof(buf));
    while (write(fd, buf, sizeof(buf)) > 0)
        ;
    cr_assert_eq(errno, ENOSPC);
    close(fd);

    cr_assert_lt(api_vdi_create(&vdi, sr, "disk", 64 * MiB), 0);
    e = xcp_error_last();
    cr_assert_str_eq(e->name, "SR_FULL");
    cr_assert_eq(e->nparams, 2, "SR_FULL with %zu parameters", e->nparams);
    snprintf(size, sizeof(size), "%d", 64 * MiB);
    cr_expect_str_eq(e->params[0], size);
    /* maximum: the SR's free bytes, a number below the tmpfs's size. */
    errno = 0;
    cr_expect_leq(strtoll(e->params[1], &end, 10), MiB, "%s", e->params[1]);
    cr_expect(errno == 0 && *end == '\0' && end != e->params[1], "%s",
              e->params[1]);
}
