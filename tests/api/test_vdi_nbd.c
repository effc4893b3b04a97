/*
 * tests/api/test_vdi_nbd.c - NBD through the public API, as XAPI does it:
 * network.add_purpose / remove_purpose with nbd and insecure_nbd keeping
 * apart (NETWORK_INCOMPATIBLE_PURPOSES [new, conflicting]), and
 * VDI.get_nbd_info where no NBD server runs (the embedded engine: an
 * empty list) and on a cbt_metadata VDI (VDI_INCOMPATIBLE_TYPE). The
 * records and the server itself are tested against xcpd
 * (tests/xcpd/test_nbd.py).
 */
#include "helpers.h"

TestSuite(vdi_nbd, .init = api_setup, .fini = api_teardown);

static xcp_network new_network(const char *name)
{
    xcp_network_record r;
    xcp_network net;

    xcp_network_record_init(&r);
    r.name_label = (char *)name;
    r.name_description = (char *)"";
    r.MTU = 1500;
    r.managed = true;
    OK(xcp_network_create(S, &net, &r));
    return net;
}

static size_t purposes(xcp_network net, enum xcp_network_purpose p)
{
    xcp_network_purpose_set s;
    size_t i, n = 0;

    OK(xcp_network_get_purpose(S, &s, net));
    for (i = 0; i < s.n; i++)
        n += s.items[i] == p;
    xcp_network_purpose_set_dispose(&s);
    return n;
}

Test(vdi_nbd, add_purpose_is_idempotent)
{
    xcp_network net = api_network();

    OK(xcp_network_add_purpose(S, net, XCP_NETWORK_PURPOSE_NBD));
    OK(xcp_network_add_purpose(S, net, XCP_NETWORK_PURPOSE_NBD));
    cr_assert_eq(purposes(net, XCP_NETWORK_PURPOSE_NBD), 1);
    OK(xcp_network_remove_purpose(S, net, XCP_NETWORK_PURPOSE_NBD));
    OK(xcp_network_remove_purpose(S, net, XCP_NETWORK_PURPOSE_NBD));
    cr_assert_eq(purposes(net, XCP_NETWORK_PURPOSE_NBD), 0);
}

Test(vdi_nbd, nbd_and_insecure_nbd_exclude_each_other_on_one_network)
{
    xcp_network net = api_network();

    OK(xcp_network_add_purpose(S, net, XCP_NETWORK_PURPOSE_NBD));
    assert_error(xcp_network_add_purpose(S, net,
                                         XCP_NETWORK_PURPOSE_INSECURE_NBD),
                 "NETWORK_INCOMPATIBLE_PURPOSES", "insecure_nbd", "nbd");
    cr_assert_eq(purposes(net, XCP_NETWORK_PURPOSE_INSECURE_NBD), 0);
}

Test(vdi_nbd, nbd_and_insecure_nbd_exclude_each_other_across_networks)
{
    xcp_network a = api_network(), b = new_network("backup");

    OK(xcp_network_add_purpose(S, a, XCP_NETWORK_PURPOSE_INSECURE_NBD));
    /* the same purpose elsewhere is fine */
    OK(xcp_network_add_purpose(S, b, XCP_NETWORK_PURPOSE_INSECURE_NBD));
    assert_error(xcp_network_add_purpose(S, b, XCP_NETWORK_PURPOSE_NBD),
                 "NETWORK_INCOMPATIBLE_PURPOSES", "nbd", "insecure_nbd");
    OK(xcp_network_remove_purpose(S, b, XCP_NETWORK_PURPOSE_INSECURE_NBD));
    assert_error(xcp_network_add_purpose(S, b, XCP_NETWORK_PURPOSE_NBD),
                 "NETWORK_INCOMPATIBLE_PURPOSES", "nbd", "insecure_nbd");
    /* once no network has the other one, it may be added */
    OK(xcp_network_remove_purpose(S, a, XCP_NETWORK_PURPOSE_INSECURE_NBD));
    OK(xcp_network_add_purpose(S, b, XCP_NETWORK_PURPOSE_NBD));
}

Test(vdi_nbd, get_nbd_info_without_an_nbd_server_is_empty)
{
    xcp_value v = {0};
    xcp_vdi vdi;

    OK(api_vdi_create(&vdi, api_default_sr(), "d", 8 * MiB));
    OK(xcp_vdi_get_nbd_info(S, &v, vdi));
    cr_assert_eq(v.kind, XCP_VAL_ARRAY);
    cr_assert_eq(v.u.arr.n, 0);
    xcp_value_dispose(&v);
    /* a network allowing NBD changes nothing while nobody serves it */
    OK(xcp_network_add_purpose(S, api_network(), XCP_NETWORK_PURPOSE_NBD));
    OK(xcp_vdi_get_nbd_info(S, &v, vdi));
    cr_assert_eq(v.kind, XCP_VAL_ARRAY);
    cr_assert_eq(v.u.arr.n, 0);
    xcp_value_dispose(&v);
}

Test(vdi_nbd, get_nbd_info_of_cbt_metadata_fails_incompatible_type)
{
    xcp_value v = {0};
    xcp_vdi vdi, snap;

    OK(api_vdi_create(&vdi, api_default_sr(), "d", 8 * MiB));
    OK(xcp_vdi_enable_cbt(S, vdi));
    OK(xcp_vdi_snapshot(S, &snap, vdi, NULL));
    OK(xcp_vdi_data_destroy(S, snap));
    assert_error(xcp_vdi_get_nbd_info(S, &v, snap), "VDI_INCOMPATIBLE_TYPE",
                 snap.ref, "cbt_metadata");
    cr_assert_eq(v.kind, XCP_VAL_NONE);
}
