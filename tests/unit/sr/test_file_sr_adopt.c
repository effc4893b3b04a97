/*
 * test_file_sr_adopt.c - what the `file` SR's scan adopts: images we can
 * tell are ours.  A qcow2 image whose backing file is a host path (so that
 * reading the VDI reads that file), an image built on a raw file we did
 * not make, and a planted raw file are all left out; raw images made by
 * vdi_create and vdi_copy are adopted.
 */
#include <criterion/criterion.h>

#include <xcp/sys/sr.h>

#include "qcow2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const xcp_sr_type xcp__sr_type_file;

#define SR_UUID "0b7c4e52-3d1f-4a8e-9b6c-2f5e8d7a1c30"
#define PLANTED_RAW "aaaaaaaa-bbbb-4ccc-8ddd-000000000001.raw"
#define HOST_BACKED "aaaaaaaa-bbbb-4ccc-8ddd-000000000002.qcow2"
#define ON_PLANTED "aaaaaaaa-bbbb-4ccc-8ddd-000000000003.qcow2"
#define ON_HOST_BACKED "aaaaaaaa-bbbb-4ccc-8ddd-000000000004.qcow2"

static char dir[64];
static xcp_sr_kv dc[1];
static xcp_sr_target sr;
static const xcp_sr_ops *ops;
static xcp_sr_error e;

static void setup(void)
{
    uint64_t size = 0;

    snprintf(dir, sizeof(dir), "/tmp/xcp-adopt-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    dc[0].key = "location";
    dc[0].value = dir;
    sr.sr_uuid = SR_UUID;
    sr.device_config = dc;
    sr.n_device_config = 1;
    ops = xcp__sr_type_file.ops;
    cr_assert_eq(ops->sr_create(&sr, &size, &e), 0, "%s", e.reason);
}

static void teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        cr_log_warn("cannot remove %s", dir);
}

TestSuite(adopt, .init = setup, .fini = teardown);

struct seen {
    size_t n;
    char loc[32][XCP_SR_LOCATION_MAX];
};

static int collect(void *ctx, const xcp_sr_vdi_info *v)
{
    struct seen *s = ctx;

    cr_assert_lt(s->n, 32);
    snprintf(s->loc[s->n++], XCP_SR_LOCATION_MAX, "%s", v->location);
    return 0;
}

static bool seen(const struct seen *s, const char *loc)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        if (!strcmp(s->loc[i], loc))
            return true;
    return false;
}

/* An image in the SR directory made directly, not through the driver. */
static void plant(const char *name, const char *backing, const char *bfmt,
                  const char *fmt)
{
    xcp__qcow2_create_opts o = {.format = fmt, .backing_file = backing,
                                .backing_format = bfmt};
    char path[256], err[512];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    cr_assert_eq(xcp__qcow2_create(path, 1 << 20, &o, err, sizeof(err)), 0,
                 "%s", err);
}

Test(adopt, only_images_we_can_verify)
{
    xcp_sr_vdi_create_params p = {.version = 1, .virtual_size = 1 << 20};
    xcp_sr_vdi_info mine_q, mine_r, copy_r;
    struct seen s = {0};

    cr_assert_eq(ops->vdi_create(&sr, &p, &mine_q, &e), 0, "%s", e.reason);
    p.format = "raw";
    cr_assert_eq(ops->vdi_create(&sr, &p, &mine_r, &e), 0, "%s", e.reason);
    cr_assert_eq(ops->vdi_copy(&sr, mine_r.location, &sr, NULL, &copy_r,
                               &e), 0, "%s", e.reason);
    plant(PLANTED_RAW, NULL, NULL, "raw");
    plant(HOST_BACKED, "/etc/passwd", "raw", "qcow2");
    plant(ON_PLANTED, PLANTED_RAW, "raw", "qcow2");
    plant(ON_HOST_BACKED, HOST_BACKED, "qcow2", "qcow2");
    cr_assert_eq(ops->sr_scan(&sr, collect, &s, &e), 0, "%s", e.reason);
    cr_assert(seen(&s, mine_q.location));
    cr_assert(seen(&s, mine_r.location), "our raw image was not adopted");
    cr_assert(seen(&s, copy_r.location), "our raw copy was not adopted");
    cr_assert(!seen(&s, PLANTED_RAW), "planted raw file adopted");
    cr_assert(!seen(&s, HOST_BACKED), "image backed by /etc/passwd adopted");
    cr_assert(!seen(&s, ON_PLANTED), "image on a planted raw adopted");
    cr_assert(!seen(&s, ON_HOST_BACKED), "image on a host-backed adopted");
    cr_assert_eq(s.n, 3, "%zu images adopted", s.n);
    /* Deleting our raw image leaves no sidecar behind. */
    cr_assert_eq(ops->vdi_destroy(&sr, mine_r.location, &e), 0, "%s",
                 e.reason);
    {
        char meta[256];
        snprintf(meta, sizeof(meta), "%s/%s.meta", dir, mine_r.uuid);
        cr_assert_neq(access(meta, F_OK), 0, "%s left behind", meta);
    }
}
