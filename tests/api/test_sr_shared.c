/*
 * tests/api/test_sr_shared.c - a file SR on a path several hosts mount
 * (shared=true), as XAPI's shared file/NFS SRs behave in the model: one
 * PBD per host, each plugged and unplugged on its own, one PBD per host
 * and SR at most, an SR that is not shared attached to one host at a time.
 * libxcp has one host until pools come: what a second host adds is in
 * docs/design-sr-types.md.
 */
#include "helpers.h"

#include <stdio.h>

TestSuite(sr_shared, .init = api_setup, .fini = api_teardown);

static xcp_sr shared_sr(const char *name)
{
    char dir[512];
    xcp_string_map_entry loc = {"location", dir};
    xcp_string_map dc = {1, &loc}, smc = {0, NULL};
    xcp_sr sr;

    snprintf(dir, sizeof(dir), "%s/mnt-%s", api_dir, name);
    OK(xcp_sr_create(S, &sr, api_host(), &dc, 0, name, "", "file", "user",
                     true, &smc));
    return sr;
}

/* XAPI's SR.create: shared, a PBD on every host of the pool (here the one
 * host), the local one plugged. */
Test(sr_shared, create_makes_a_plugged_pbd_per_host)
{
    xcp_sr sr = shared_sr("nfs-like");
    xcp_host_set hosts;
    xcp_pbd_set pbds;
    xcp_pbd_record r;
    bool shared = false;
    size_t i;

    OK(xcp_sr_get_shared(S, &shared, sr));
    cr_expect(shared);
    OK(xcp_host_get_all(S, &hosts));
    OK(xcp_sr_get_PBDs(S, &pbds, sr));
    cr_assert_eq(pbds.n, hosts.n, "%zu PBDs for %zu hosts", pbds.n, hosts.n);
    for (i = 0; i < pbds.n; i++) {
        xcp_pbd_record_init(&r);
        OK(xcp_pbd_get_record(S, &r, pbds.items[i]));
        cr_expect_str_eq(r.SR.ref, sr.ref);
        cr_expect_eq(r.currently_attached,
                     !strcmp(r.host.ref, api_host().ref));
        cr_expect_eq(r.device_config.n, 1);
        xcp_pbd_record_dispose(&r);
    }
    xcp_pbd_set_dispose(&pbds);
    xcp_host_set_dispose(&hosts);
}

/* One PBD per host and SR (before: a second one was made, and the SR
 * looked attached twice on one host). */
Test(sr_shared, second_pbd_on_one_host_is_pbd_exists)
{
    xcp_sr sr = shared_sr("twice");
    xcp_pbd_set pbds;
    xcp_pbd_record r;
    xcp_pbd extra;
    char dir[512];
    xcp_string_map_entry loc = {"location", dir};

    snprintf(dir, sizeof(dir), "%s/mnt-twice", api_dir);
    OK(xcp_sr_get_PBDs(S, &pbds, sr));
    cr_assert_eq(pbds.n, 1);
    xcp_pbd_record_init(&r);
    r.host = api_host();
    r.SR = sr;
    r.device_config.n = 1;
    r.device_config.items = &loc;
    assert_error(xcp_pbd_create(S, &extra, &r), "PBD_EXISTS", sr.ref,
                 api_host().ref, pbds.items[0].ref);
    xcp_pbd_set_dispose(&pbds);
    OK(xcp_sr_get_PBDs(S, &pbds, sr));
    cr_expect_eq(pbds.n, 1);
    xcp_pbd_set_dispose(&pbds);
}

/* A host's PBD is unplugged, destroyed and made again, as a host leaving
 * and joining does; the SR's VDIs are there again once it is plugged. */
Test(sr_shared, pbd_of_a_host_goes_and_comes_back)
{
    xcp_sr sr = shared_sr("rejoin");
    xcp_pbd_set pbds;
    xcp_pbd_record r;
    xcp_string_map dc;
    xcp_pbd pbd;
    xcp_vdi_record vr;
    xcp_vdi vdi;
    bool attached = true;

    xcp_vdi_record_init(&vr);
    vr.SR = sr;
    vr.virtual_size = MiB;
    vr.type = XCP_VDI_TYPE_USER;
    vr.name_label = "on the shared SR";
    OK(xcp_vdi_create(S, &vdi, &vr));
    OK(xcp_sr_get_PBDs(S, &pbds, sr));
    cr_assert_eq(pbds.n, 1);
    OK(xcp_pbd_get_device_config(S, &dc, pbds.items[0]));
    OK(xcp_pbd_unplug(S, pbds.items[0]));
    OK(xcp_pbd_get_currently_attached(S, &attached, pbds.items[0]));
    cr_expect(!attached);
    OK(xcp_pbd_destroy(S, pbds.items[0]));
    xcp_pbd_set_dispose(&pbds);
    xcp_pbd_record_init(&r);
    r.host = api_host();
    r.SR = sr;
    r.device_config = dc;
    OK(xcp_pbd_create(S, &pbd, &r));
    OK(xcp_pbd_plug(S, pbd));
    OK(xcp_pbd_get_currently_attached(S, &attached, pbd));
    cr_expect(attached);
    OK(xcp_vdi_update(S, vdi));
    xcp_string_map_dispose(&dc);
}
