/*
 * tests/api/test_storage_crash.c - what a call killed between changing an
 * image and committing its record leaves is made right at the next open
 * (the crash loop, tests/crash, finds these at random; here one each,
 * deterministically).
 */
#include "helpers.h"

#include <stdio.h>

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
