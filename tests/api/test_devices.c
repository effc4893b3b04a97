/*
 * tests/api/test_devices.c - VDIs, VBDs, VIFs and networks through the
 * public API: VDI create/destroy/resize/snapshot/clone/copy and their
 * records, VBD creation and hot-plug (DEVICE_ALREADY_EXISTS,
 * DEVICE_ALREADY_ATTACHED/DETACHED), CD media (VBD_IS_EMPTY,
 * VBD_NOT_EMPTY, VBD_NOT_REMOVABLE_MEDIA), VIF MACs (MAC_INVALID, the
 * generated format) and network.destroy (NETWORK_CONTAINS_VIF).
 */
#include "helpers.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(vdi, .init = api_setup, .fini = api_teardown);
TestSuite(vbd, .init = api_setup, .fini = api_teardown);
TestSuite(cd, .init = api_setup, .fini = api_teardown);
TestSuite(vif, .init = api_setup, .fini = api_teardown);
TestSuite(network, .init = api_setup, .fini = api_teardown);

static xcp_vdi new_vdi(const char *name, int64_t size, enum xcp_vdi_type type)
{
    xcp_vdi_record r;
    xcp_vdi vdi;

    xcp_vdi_record_init(&r);
    r.name_label = (char *)name;
    r.name_description = (char *)"";
    r.SR = api_default_sr();
    r.virtual_size = size;
    r.type = type;
    OK(xcp_vdi_create(S, &vdi, &r));
    return vdi;
}

static xcp_vbd new_vbd(xcp_vm vm, xcp_vdi vdi, const char *userdevice,
                       enum xcp_vbd_type type, enum xcp_vbd_mode mode,
                       bool empty, int *rc)
{
    xcp_vbd_record r;
    xcp_vbd vbd;

    memset(&vbd, 0, sizeof(vbd));
    xcp_vbd_record_init(&r);
    r.VM = vm;
    r.VDI = vdi;
    r.userdevice = (char *)userdevice;
    r.bootable = false;
    r.mode = mode;
    r.type = type;
    r.unpluggable = true;
    r.empty = empty;
    r.qos_algorithm_type = (char *)"";
    *rc = xcp_vbd_create(S, &vbd, &r);
    return vbd;
}

static xcp_vbd disk_vbd(xcp_vm vm, xcp_vdi vdi, const char *userdevice)
{
    int rc;
    xcp_vbd vbd = new_vbd(vm, vdi, userdevice, XCP_VBD_TYPE_DISK,
                          XCP_VBD_MODE_RW, false, &rc);

    OK(rc);
    return vbd;
}

static xcp_vbd empty_cd(xcp_vm vm, const char *userdevice)
{
    xcp_vdi none;
    int rc;
    xcp_vbd vbd;

    SET_REF(none, XCP_NULL_REF);
    vbd = new_vbd(vm, none, userdevice, XCP_VBD_TYPE_CD, XCP_VBD_MODE_RO,
                  true, &rc);
    OK(rc);
    return vbd;
}

static xcp_vbd first_vbd(xcp_vm vm)
{
    xcp_vbd_set s = {0};
    xcp_vbd v;

    OK(xcp_vm_get_VBDs(S, &s, vm));
    cr_assert_geq(s.n, 1);
    v = s.items[0];
    xcp_vbd_set_dispose(&s);
    return v;
}

static xcp_vdi first_vdi(xcp_vm vm)
{
    xcp_vdi vdi;

    OK(xcp_vbd_get_VDI(S, &vdi, first_vbd(vm)));
    return vdi;
}

static bool attached(xcp_vbd vbd)
{
    bool a = false;

    OK(xcp_vbd_get_currently_attached(S, &a, vbd));
    return a;
}

static bool set_has_vdi(const xcp_vdi_set *s, xcp_vdi v)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        if (!strcmp(s->items[i].ref, v.ref))
            return true;
    return false;
}

/* ---- VDI ---------------------------------------------------------------- */

Test(vdi, create_makes_vdi_in_sr)
{
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    xcp_vdi_record r;
    xcp_vdi_set srv = {0};

    xcp_vdi_record_init(&r);
    OK(xcp_vdi_get_record(S, &r, vdi));
    cr_assert_str_eq(r.name_label, "data");
    cr_assert_eq(r.virtual_size, 1 * GiB);
    cr_assert_eq(r.type, XCP_VDI_TYPE_USER);
    cr_assert_str_eq(r.SR.ref, api_default_sr().ref);
    cr_assert(!r.is_a_snapshot);
    cr_assert(r.managed);
    cr_assert_eq(r.VBDs.n, 0);
    cr_assert_eq(strlen(r.uuid), 36);
    xcp_vdi_record_dispose(&r);
    OK(xcp_sr_get_VDIs(S, &srv, api_default_sr()));
    cr_assert(set_has_vdi(&srv, vdi));
    xcp_vdi_set_dispose(&srv);
}

Test(vdi, create_negative_size_fails)
{
    xcp_vdi_record r;
    xcp_vdi vdi;

    xcp_vdi_record_init(&r);
    r.name_label = (char *)"bad";
    r.SR = api_default_sr();
    r.virtual_size = -1;
    r.type = XCP_VDI_TYPE_USER;
    assert_error(xcp_vdi_create(S, &vdi, &r), "INVALID_VALUE",
                 "virtual_size", "-1");
}

Test(vdi, create_in_bogus_sr_fails)
{
    xcp_vdi_record r;
    xcp_vdi vdi;

    xcp_vdi_record_init(&r);
    r.name_label = (char *)"bad";
    SET_REF(r.SR, "OpaqueRef:nope");
    r.virtual_size = MiB;
    r.type = XCP_VDI_TYPE_USER;
    assert_error(xcp_vdi_create(S, &vdi, &r), "HANDLE_INVALID", "SR",
                 "OpaqueRef:nope");
}

Test(vdi, destroy_removes_vdi_from_sr)
{
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    xcp_vdi_record r;
    xcp_vdi_set srv = {0};

    OK(xcp_vdi_destroy(S, vdi));
    xcp_vdi_record_init(&r);
    assert_error(xcp_vdi_get_record(S, &r, vdi), "HANDLE_INVALID", "VDI",
                 vdi.ref);
    OK(xcp_sr_get_VDIs(S, &srv, api_default_sr()));
    cr_assert(!set_has_vdi(&srv, vdi));
    xcp_vdi_set_dispose(&srv);
}

Test(vdi, destroy_attached_to_running_vm_fails_vdi_in_use)
{
    xcp_vm vm = api_install("vm");
    xcp_vdi vdi = first_vdi(vm);

    OK(xcp_vm_start(S, vm, false, false));
    assert_error(xcp_vdi_destroy(S, vdi), "VDI_IN_USE", vdi.ref, "destroy");
    cr_assert(attached(first_vbd(vm)));
}

Test(vdi, destroy_disk_of_halted_vm_drops_its_vbd)
{
    xcp_vm vm = api_install("vm");
    xcp_vdi vdi = first_vdi(vm);
    xcp_vbd_set s = {0};

    OK(xcp_vdi_destroy(S, vdi));
    OK(xcp_vm_get_VBDs(S, &s, vm));
    cr_assert_eq(s.n, 0);
    xcp_vbd_set_dispose(&s);
}

Test(vdi, resize_grows)
{
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    int64_t size = 0;

    OK(xcp_vdi_resize(S, vdi, 2 * GiB));
    OK(xcp_vdi_get_virtual_size(S, &size, vdi));
    cr_assert_eq(size, 2 * GiB);
}

Test(vdi, resize_shrink_fails_vdi_too_small)
{
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    int64_t size = 0;
    char n[32];

    snprintf(n, sizeof(n), "%lld", (long long)(1 * GiB));
    assert_error(xcp_vdi_resize(S, vdi, 512 * MiB), "VDI_TOO_SMALL", vdi.ref,
                 n);
    OK(xcp_vdi_get_virtual_size(S, &size, vdi));
    cr_assert_eq(size, 1 * GiB);
}

/* Online since issue 10 (tests/api/test_vdi_live.c); a paused VM's disk
 * too, its back end paused meanwhile. */
Test(vdi, resize_of_attached_disk_is_online)
{
    xcp_vm vm = api_install("vm");
    xcp_vdi vdi = first_vdi(vm);
    int64_t size = 0;

    OK(xcp_vm_start(S, vm, true, false));
    OK(xcp_vdi_resize(S, vdi, 20 * GiB));
    OK(xcp_vdi_get_virtual_size(S, &size, vdi));
    cr_assert_eq(size, 20 * GiB);
}

Test(vdi, resize_updates_sr_virtual_allocation)
{
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    int64_t a = 0, b = 0;

    OK(xcp_sr_get_virtual_allocation(S, &a, api_default_sr()));
    OK(xcp_vdi_resize(S, vdi, 3 * GiB));
    OK(xcp_sr_get_virtual_allocation(S, &b, api_default_sr()));
    cr_assert_eq(b - a, 2 * GiB);
}

Test(vdi, snapshot_record)
{
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    xcp_vdi snap;
    xcp_vdi_record r;
    xcp_vdi_set snaps = {0};

    OK(xcp_vdi_snapshot(S, &snap, vdi, NULL));
    cr_assert_str_neq(snap.ref, vdi.ref);
    xcp_vdi_record_init(&r);
    OK(xcp_vdi_get_record(S, &r, snap));
    cr_assert(r.is_a_snapshot);
    cr_assert_str_eq(r.snapshot_of.ref, vdi.ref);
    cr_assert_gt(r.snapshot_time, 0);
    cr_assert_eq(r.virtual_size, 1 * GiB);
    cr_assert_str_eq(r.SR.ref, api_default_sr().ref);
    cr_assert_str_eq(r.name_label, "data");
    xcp_vdi_record_dispose(&r);
    OK(xcp_vdi_get_snapshots(S, &snaps, vdi));
    cr_assert_eq(snaps.n, 1);
    cr_assert_str_eq(snaps.items[0].ref, snap.ref);
    xcp_vdi_set_dispose(&snaps);
}

Test(vdi, clone_record)
{
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    xcp_vdi c;
    xcp_vdi_record r, o;

    OK(xcp_vdi_add_to_other_config(S, vdi, "k", "v"));
    OK(xcp_vdi_clone(S, &c, vdi, NULL));
    xcp_vdi_record_init(&r);
    xcp_vdi_record_init(&o);
    OK(xcp_vdi_get_record(S, &r, c));
    OK(xcp_vdi_get_record(S, &o, vdi));
    cr_assert(!r.is_a_snapshot);
    cr_assert(api_is_null(r.snapshot_of.ref));
    cr_assert_str_neq(r.uuid, o.uuid);
    cr_assert_eq(r.virtual_size, 1 * GiB);
    cr_assert_not_null(xcp_string_map_get(&r.sm_config, "vhd-parent"));
    cr_assert_str_eq(xcp_string_map_get(&r.other_config, "k"), "v");
    xcp_vdi_record_dispose(&r);
    xcp_vdi_record_dispose(&o);
}

Test(vdi, copy_record)
{
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    xcp_vdi c, none;
    xcp_vdi_record r;
    size_t before = api_count_vdis(-1);

    SET_REF(none, XCP_NULL_REF);
    OK(xcp_vdi_copy(S, &c, vdi, api_default_sr(), none, none));
    cr_assert_eq(api_count_vdis(-1), before + 1);
    xcp_vdi_record_init(&r);
    OK(xcp_vdi_get_record(S, &r, c));
    cr_assert(!r.is_a_snapshot);
    cr_assert_eq(r.virtual_size, 1 * GiB);
    cr_assert_null(xcp_string_map_get(&r.sm_config, "vhd-parent"));
    xcp_vdi_record_dispose(&r);
}

Test(vdi, destroy_snapshot_keeps_original)
{
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    xcp_vdi snap;
    xcp_vdi_set snaps = {0};
    int64_t size = 0;

    OK(xcp_vdi_snapshot(S, &snap, vdi, NULL));
    OK(xcp_vdi_destroy(S, snap));
    OK(xcp_vdi_get_snapshots(S, &snaps, vdi));
    cr_assert_eq(snaps.n, 0);
    xcp_vdi_set_dispose(&snaps);
    OK(xcp_vdi_get_virtual_size(S, &size, vdi));
    cr_assert_eq(size, 1 * GiB);
    OK(xcp_vdi_destroy(S, vdi));
}

Test(vdi, set_name_label_explicit_setter)
{
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    char *name = NULL;

    OK(xcp_vdi_set_name_label(S, vdi, "renamed"));
    OK(xcp_vdi_get_name_label(S, &name, vdi));
    cr_assert_str_eq(name, "renamed");
    xcp_free(name);
}

static bool vdi_allows(xcp_vdi vdi, enum xcp_vdi_operations op)
{
    xcp_vdi_operations_set ops = {0};
    bool found = false;
    size_t i;

    OK(xcp_vdi_get_allowed_operations(S, &ops, vdi));
    for (i = 0; i < ops.n; i++)
        found |= ops.items[i] == op;
    xcp_vdi_operations_set_dispose(&ops);
    return found;
}

Test(vdi, unattached_vdi_allows_destroy_and_resize)
{
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);

    cr_assert(vdi_allows(vdi, XCP_VDI_OPERATIONS_DESTROY));
    cr_assert(vdi_allows(vdi, XCP_VDI_OPERATIONS_RESIZE));
    cr_assert(vdi_allows(vdi, XCP_VDI_OPERATIONS_SNAPSHOT));
    cr_assert(vdi_allows(vdi, XCP_VDI_OPERATIONS_CLONE));
}

/* VDI.destroy fails VDI_IN_USE on a running VM's disk, so
 * allowed_operations must not advertise it; resize is online (issue 10). */
Test(vdi, running_vm_disk_does_not_allow_destroy_but_resize)
{
    xcp_vm vm = api_install("vm");
    xcp_vdi vdi = first_vdi(vm);

    OK(xcp_vm_start(S, vm, false, false));
    cr_assert(!vdi_allows(vdi, XCP_VDI_OPERATIONS_DESTROY),
              "running VM's disk lists destroy");
    cr_assert(vdi_allows(vdi, XCP_VDI_OPERATIONS_RESIZE),
              "running VM's disk does not list resize");
    cr_assert(vdi_allows(vdi, XCP_VDI_OPERATIONS_SNAPSHOT));
}

/* ---- VBD ---------------------------------------------------------------- */

Test(vbd, create_on_used_userdevice_fails_device_already_exists)
{
    xcp_vm vm = api_install("vm");
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    xcp_vbd_set s = {0};
    int rc;

    new_vbd(vm, vdi, "0", XCP_VBD_TYPE_DISK, XCP_VBD_MODE_RW, false, &rc);
    assert_error(rc, "DEVICE_ALREADY_EXISTS", "0");
    OK(xcp_vm_get_VBDs(S, &s, vm));
    cr_assert_eq(s.n, 1);
    xcp_vbd_set_dispose(&s);
}

Test(vbd, create_with_invalid_userdevice_fails)
{
    xcp_vm vm = api_install("vm");
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    int rc;

    new_vbd(vm, vdi, "xyz", XCP_VBD_TYPE_DISK, XCP_VBD_MODE_RW, false, &rc);
    assert_error(rc, "INVALID_DEVICE", "xyz");
}

Test(vbd, create_autodetect_takes_next_free_slot)
{
    xcp_vm vm = api_install("vm");
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    xcp_vbd vbd = disk_vbd(vm, vdi, "autodetect");
    char *ud = NULL;
    xcp_vbd_set vs = {0};

    OK(xcp_vbd_get_userdevice(S, &ud, vbd));
    cr_assert_str_eq(ud, "1");
    xcp_free(ud);
    OK(xcp_vdi_get_VBDs(S, &vs, vdi));
    cr_assert_eq(vs.n, 1);
    cr_assert_str_eq(vs.items[0].ref, vbd.ref);
    xcp_vbd_set_dispose(&vs);
}

Test(vbd, create_for_bogus_vm_fails_handle_invalid)
{
    xcp_vm vm;
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    int rc;

    SET_REF(vm, "OpaqueRef:nope");
    new_vbd(vm, vdi, "1", XCP_VBD_TYPE_DISK, XCP_VBD_MODE_RW, false, &rc);
    assert_error(rc, "HANDLE_INVALID", "VM", "OpaqueRef:nope");
}

Test(vbd, create_with_bogus_vdi_fails_handle_invalid)
{
    xcp_vm vm = api_install("vm");
    xcp_vdi vdi;
    int rc;

    SET_REF(vdi, "OpaqueRef:nope");
    new_vbd(vm, vdi, "1", XCP_VBD_TYPE_DISK, XCP_VBD_MODE_RW, false, &rc);
    assert_error(rc, "HANDLE_INVALID", "VDI", "OpaqueRef:nope");
}

Test(vbd, hot_plug_and_unplug_on_running_vm)
{
    xcp_vm vm = api_install("vm");
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    xcp_vbd vbd;
    char *dev = NULL;

    OK(xcp_vm_start(S, vm, false, false));
    vbd = disk_vbd(vm, vdi, "1");
    cr_assert(!attached(vbd));
    OK(xcp_vbd_plug(S, vbd));
    cr_assert(attached(vbd));
    OK(xcp_vbd_get_device(S, &dev, vbd));
    cr_assert(!strcmp(dev, "hdb") || !strcmp(dev, "xvdb"), "device %s", dev);
    xcp_free(dev);
    assert_error(xcp_vbd_plug(S, vbd), "DEVICE_ALREADY_ATTACHED", vbd.ref);
    OK(xcp_vbd_unplug(S, vbd));
    cr_assert(!attached(vbd));
    assert_error(xcp_vbd_unplug(S, vbd), "DEVICE_ALREADY_DETACHED", vbd.ref);
    OK(xcp_vbd_destroy(S, vbd));
}

/*
 * A disk the host cannot attach (the xen driver says ENOTSUP for a
 * read-only qcow2 image, which QEMU's qdisk back end cannot open) fails
 * OPERATION_NOT_ALLOWED with the driver's reason, not INTERNAL_ERROR; the
 * VBD stays unplugged.
 */
Test(vbd, plug_the_host_cannot_do_fails_operation_not_allowed)
{
    xcp_vm vm = api_install("vm");
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    const xcp_error *e;
    xcp_vbd vbd;

    OK(xcp_vm_start(S, vm, false, false));
    vbd = disk_vbd(vm, vdi, "1");
    api_reopen_with_faults("disk_plug=ENOTSUP");
    assert_error_name(xcp_vbd_plug(S, vbd), "OPERATION_NOT_ALLOWED");
    e = xcp_error_last();
    cr_assert(e->nparams == 1 && strstr(e->params[0], "disk_plug"),
              "the reason is not the driver's: %s",
              e->nparams ? e->params[0] : "(none)");
    cr_assert(!attached(vbd));
}

Test(vbd, plug_on_halted_vm_fails_bad_power_state)
{
    xcp_vm vm = api_install("vm");
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    xcp_vbd vbd = disk_vbd(vm, vdi, "1");

    assert_error(xcp_vbd_plug(S, vbd), "VM_BAD_POWER_STATE", vm.ref,
                 "running", "halted");
}

Test(vbd, plug_on_suspended_vm_reports_actual_state)
{
    xcp_vm vm = api_install("vm");
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    xcp_vbd vbd;

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_suspend(S, vm));
    vbd = disk_vbd(vm, vdi, "1");
    assert_error(xcp_vbd_plug(S, vbd), "VM_BAD_POWER_STATE", vm.ref,
                 "running", "suspended");
}

Test(vbd, unplug_of_non_unpluggable_fails)
{
    xcp_vm vm = api_install("vm");
    xcp_vbd vbd = first_vbd(vm);

    OK(xcp_vbd_set_unpluggable(S, vbd, false));
    OK(xcp_vm_start(S, vm, false, false));
    assert_error(xcp_vbd_unplug(S, vbd), "VBD_NOT_UNPLUGGABLE", vbd.ref);
    cr_assert(attached(vbd));
}

Test(vbd, destroy_attached_vbd_fails)
{
    xcp_vm vm = api_install("vm");
    xcp_vbd vbd = first_vbd(vm);

    OK(xcp_vm_start(S, vm, false, false));
    assert_error_name(xcp_vbd_destroy(S, vbd), "OPERATION_NOT_ALLOWED");
    cr_assert(attached(vbd));
}

Test(vbd, hot_plugged_disk_detached_on_shutdown)
{
    xcp_vm vm = api_install("vm");
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    xcp_vbd vbd;

    OK(xcp_vm_start(S, vm, false, false));
    vbd = disk_vbd(vm, vdi, "1");
    OK(xcp_vbd_plug(S, vbd));
    OK(xcp_vm_hard_shutdown(S, vm));
    cr_assert(!attached(vbd));
    /* Next start attaches both disks. */
    OK(xcp_vm_start(S, vm, false, false));
    cr_assert(attached(vbd));
}

/* As XAPI: a suspended VM keeps its devices' currently_attached, and
 * resume rebuilds the domain with exactly those: a disk and a VIF
 * unplugged before the suspend stay unplugged (and can be plugged after,
 * so the domain really does not have them). */
Test(vbd, resume_replugs_exactly_the_devices_attached_at_suspend)
{
    xcp_vm vm = api_install("vm");
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    xcp_vbd boot = first_vbd(vm), data = disk_vbd(vm, vdi, "1");
    xcp_vif vif = api_add_vif(vm, "0", ""), vif2 = api_add_vif(vm, "1", "");
    bool att = true;

    OK(xcp_vm_start(S, vm, false, false));
    cr_assert(attached(boot) && attached(data));
    OK(xcp_vbd_unplug(S, data));
    OK(xcp_vif_unplug(S, vif2));
    OK(xcp_vm_suspend(S, vm));
    cr_assert(attached(boot), "suspend forgot the attached disk");
    cr_assert(!attached(data));
    OK(xcp_vm_resume(S, vm, false, false));
    cr_assert(attached(boot));
    cr_assert(!attached(data), "resume plugged a disk unplugged before");
    OK(xcp_vif_get_currently_attached(S, &att, vif));
    cr_assert(att);
    OK(xcp_vif_get_currently_attached(S, &att, vif2));
    cr_assert(!att, "resume plugged a VIF unplugged before");
    OK(xcp_vbd_plug(S, data));
    OK(xcp_vif_plug(S, vif2));
    cr_assert(attached(data));
}

/* A checkpoint resumes the same way, and so does a revert to it. */
Test(vbd, revert_to_checkpoint_resumes_with_the_devices_it_had)
{
    xcp_vm vm = api_install("vm"), snap;
    xcp_vdi vdi = new_vdi("data", 1 * GiB, XCP_VDI_TYPE_USER);
    xcp_vbd data = disk_vbd(vm, vdi, "1");
    xcp_vbd_set vbds = {0};
    size_t i, n_att = 0;

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vbd_unplug(S, data));
    OK(xcp_vm_checkpoint(S, &snap, vm, "cp"));
    cr_assert(!attached(data), "checkpoint plugged the unplugged disk");
    OK(xcp_vm_revert(S, snap));
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_SUSPENDED);
    OK(xcp_vm_resume(S, vm, false, false));
    OK(xcp_vm_get_VBDs(S, &vbds, vm));
    cr_assert_eq(vbds.n, 2);
    for (i = 0; i < vbds.n; i++)
        n_att += attached(vbds.items[i]);
    cr_assert_eq(n_att, 1, "%zu disks attached after resuming the revert",
                 n_att);
    xcp_vbd_set_dispose(&vbds);
}

Test(vbd, set_mode_on_suspended_vm_reports_actual_state)
{
    xcp_vm vm = api_install("vm");
    xcp_vbd vbd = first_vbd(vm);

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_suspend(S, vm));
    assert_error(xcp_vbd_set_mode(S, vbd, XCP_VBD_MODE_RO),
                 "VM_BAD_POWER_STATE", vm.ref, "halted", "suspended");
}

Test(vbd, allowed_operations_follow_state)
{
    xcp_vm vm = api_install("vm");
    xcp_vbd vbd = first_vbd(vm);
    xcp_vbd_operations_set ops = {0};
    bool plug = false, unplug = false;
    size_t i;

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vbd_get_allowed_operations(S, &ops, vbd));
    for (i = 0; i < ops.n; i++) {
        plug |= ops.items[i] == XCP_VBD_OPERATIONS_PLUG;
        unplug |= ops.items[i] == XCP_VBD_OPERATIONS_UNPLUG;
    }
    cr_assert(!plug && unplug);
    xcp_vbd_operations_set_dispose(&ops);
    OK(xcp_vbd_unplug(S, vbd));
    OK(xcp_vbd_get_allowed_operations(S, &ops, vbd));
    plug = unplug = false;
    for (i = 0; i < ops.n; i++) {
        plug |= ops.items[i] == XCP_VBD_OPERATIONS_PLUG;
        unplug |= ops.items[i] == XCP_VBD_OPERATIONS_UNPLUG;
    }
    cr_assert(plug && !unplug);
    xcp_vbd_operations_set_dispose(&ops);
}

/* ---- CD drives ---------------------------------------------------------- */

Test(cd, empty_cd_eject_fails_vbd_is_empty)
{
    xcp_vm vm = api_install("vm");
    xcp_vbd cd = empty_cd(vm, "3");
    bool empty = false;

    OK(xcp_vbd_get_empty(S, &empty, cd));
    cr_assert(empty);
    assert_error(xcp_vbd_eject(S, cd), "VBD_IS_EMPTY", cd.ref);
}

Test(cd, insert_then_insert_again_fails_vbd_not_empty)
{
    xcp_vm vm = api_install("vm");
    xcp_vbd cd = empty_cd(vm, "3");
    xcp_vdi iso = new_vdi("install.iso", 64 * MiB, XCP_VDI_TYPE_USER);
    xcp_vdi iso2 = new_vdi("other.iso", 64 * MiB, XCP_VDI_TYPE_USER);
    xcp_vdi got;
    bool empty = true;

    OK(xcp_vbd_insert(S, cd, iso));
    OK(xcp_vbd_get_empty(S, &empty, cd));
    cr_assert(!empty);
    OK(xcp_vbd_get_VDI(S, &got, cd));
    cr_assert_str_eq(got.ref, iso.ref);
    assert_error(xcp_vbd_insert(S, cd, iso2), "VBD_NOT_EMPTY", cd.ref);
    OK(xcp_vbd_eject(S, cd));
    OK(xcp_vbd_get_empty(S, &empty, cd));
    cr_assert(empty);
    OK(xcp_vbd_get_VDI(S, &got, cd));
    cr_assert(api_is_null(got.ref));
}

Test(cd, eject_and_insert_on_running_vm)
{
    xcp_vm vm = api_install("vm");
    xcp_vbd cd = empty_cd(vm, "3");
    xcp_vdi iso = new_vdi("install.iso", 64 * MiB, XCP_VDI_TYPE_USER);

    OK(xcp_vm_start(S, vm, false, false));
    cr_assert(attached(cd));
    OK(xcp_vbd_insert(S, cd, iso));
    OK(xcp_vbd_eject(S, cd));
    OK(xcp_vbd_insert(S, cd, iso));
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
}

Test(cd, eject_of_disk_fails_not_removable_media)
{
    xcp_vm vm = api_install("vm");
    xcp_vbd disk = first_vbd(vm);
    xcp_vdi iso = new_vdi("install.iso", 64 * MiB, XCP_VDI_TYPE_USER);

    assert_error(xcp_vbd_eject(S, disk), "VBD_NOT_REMOVABLE_MEDIA", disk.ref);
    assert_error(xcp_vbd_insert(S, disk, iso), "VBD_NOT_REMOVABLE_MEDIA",
                 disk.ref);
}

Test(cd, rw_cd_fails_cds_must_be_readonly)
{
    xcp_vm vm = api_install("vm");
    xcp_vdi none;
    int rc;

    SET_REF(none, XCP_NULL_REF);
    new_vbd(vm, none, "3", XCP_VBD_TYPE_CD, XCP_VBD_MODE_RW, true, &rc);
    assert_error0(rc, "VBD_CDS_MUST_BE_READONLY");
}

Test(cd, empty_disk_fails_not_removable_media)
{
    xcp_vm vm = api_install("vm");
    xcp_vdi none;
    int rc;

    SET_REF(none, XCP_NULL_REF);
    new_vbd(vm, none, "3", XCP_VBD_TYPE_DISK, XCP_VBD_MODE_RW, true, &rc);
    assert_error_name(rc, "VBD_NOT_REMOVABLE_MEDIA");
}

Test(cd, allowed_operations_insert_or_eject)
{
    xcp_vm vm = api_install("vm");
    xcp_vbd cd = empty_cd(vm, "3");
    xcp_vdi iso = new_vdi("install.iso", 64 * MiB, XCP_VDI_TYPE_USER);
    xcp_vbd_operations_set ops = {0};
    bool ins = false, ej = false;
    size_t i;

    OK(xcp_vbd_get_allowed_operations(S, &ops, cd));
    for (i = 0; i < ops.n; i++) {
        ins |= ops.items[i] == XCP_VBD_OPERATIONS_INSERT;
        ej |= ops.items[i] == XCP_VBD_OPERATIONS_EJECT;
    }
    cr_assert(ins && !ej);
    xcp_vbd_operations_set_dispose(&ops);
    OK(xcp_vbd_insert(S, cd, iso));
    OK(xcp_vbd_get_allowed_operations(S, &ops, cd));
    ins = ej = false;
    for (i = 0; i < ops.n; i++) {
        ins |= ops.items[i] == XCP_VBD_OPERATIONS_INSERT;
        ej |= ops.items[i] == XCP_VBD_OPERATIONS_EJECT;
    }
    cr_assert(!ins && ej);
    xcp_vbd_operations_set_dispose(&ops);
}

/* ---- VIF ---------------------------------------------------------------- */

static int try_vif(xcp_vm vm, const char *device, const char *mac,
                   xcp_network net, xcp_vif *out)
{
    xcp_vif_record r;

    xcp_vif_record_init(&r);
    r.device = (char *)device;
    r.network = net;
    r.VM = vm;
    r.MAC = (char *)mac;
    r.MTU = 1500;
    r.qos_algorithm_type = (char *)"";
    return xcp_vif_create(S, out, &r);
}

Test(vif, bad_mac_fails_mac_invalid)
{
    static const char *const bad[] = {
        "zz:00:00:00:00:00", "00:11:22:33:44", "00:11:22:33:44:55:66",
        "0011.2233.4455", "00-11-22-33-44-55", "not a mac"};
    xcp_vm vm = api_install("vm");
    xcp_vif vif;
    xcp_vif_set s = {0};
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_error(try_vif(vm, "0", bad[i], api_network(), &vif),
                     "MAC_INVALID", bad[i]);
    OK(xcp_vm_get_VIFs(S, &s, vm));
    cr_assert_eq(s.n, 0);
    xcp_vif_set_dispose(&s);
}

Test(vif, create_on_bogus_network_fails_handle_invalid)
{
    xcp_vm vm = api_install("vm");
    xcp_network net;
    xcp_vif vif;

    SET_REF(net, "OpaqueRef:nope");
    assert_error(try_vif(vm, "0", "", net, &vif), "HANDLE_INVALID",
                 "network", "OpaqueRef:nope");
}

Test(vif, generated_mac_format)
{
    xcp_vm vm = api_install("vm");
    xcp_vif vif = api_add_vif(vm, "0", "");
    xcp_vif_record r;
    unsigned b0;
    int i;

    xcp_vif_record_init(&r);
    OK(xcp_vif_get_record(S, &r, vif));
    cr_assert_eq(strlen(r.MAC), 17, "MAC %s", r.MAC);
    for (i = 0; i < 17; i++) {
        if (i % 3 == 2)
            cr_assert_eq(r.MAC[i], ':', "MAC %s", r.MAC);
        else
            cr_assert(isxdigit((unsigned char)r.MAC[i]) &&
                          !isupper((unsigned char)r.MAC[i]),
                      "MAC %s", r.MAC);
    }
    cr_assert_eq(sscanf(r.MAC, "%2x", &b0), 1);
    cr_assert(b0 & 0x02, "MAC %s is not locally administered", r.MAC);
    cr_assert(!(b0 & 0x01), "MAC %s is multicast", r.MAC);
    cr_assert(r.MAC_autogenerated);
    cr_assert_eq(r.MTU, 1500);
    xcp_vif_record_dispose(&r);
}

Test(vif, generated_macs_differ)
{
    xcp_vm vm = api_install("vm");
    xcp_vif a = api_add_vif(vm, "0", ""), b = api_add_vif(vm, "1", "");
    char *ma = NULL, *mb = NULL;

    OK(xcp_vif_get_MAC(S, &ma, a));
    OK(xcp_vif_get_MAC(S, &mb, b));
    cr_assert_str_neq(ma, mb);
    xcp_free(ma);
    xcp_free(mb);
}

Test(vif, explicit_mac_is_kept)
{
    xcp_vm vm = api_install("vm");
    xcp_vif vif = api_add_vif(vm, "0", "02:11:22:33:44:55");
    xcp_vif_record r;

    xcp_vif_record_init(&r);
    OK(xcp_vif_get_record(S, &r, vif));
    cr_assert_str_eq(r.MAC, "02:11:22:33:44:55");
    cr_assert(!r.MAC_autogenerated);
    cr_assert_str_eq(r.device, "0");
    cr_assert_str_eq(r.VM.ref, vm.ref);
    xcp_vif_record_dispose(&r);
}

Test(vif, duplicate_device_fails_device_already_exists)
{
    xcp_vm vm = api_install("vm");
    xcp_vif vif;

    api_add_vif(vm, "0", "");
    assert_error(try_vif(vm, "0", "", api_network(), &vif),
                 "DEVICE_ALREADY_EXISTS", "0");
}

Test(vif, network_vifs_lists_it)
{
    xcp_vm vm = api_install("vm");
    xcp_vif vif = api_add_vif(vm, "0", "");
    xcp_vif_set s = {0};
    size_t i;
    bool found = false;

    OK(xcp_network_get_VIFs(S, &s, api_network()));
    for (i = 0; i < s.n; i++)
        found |= !strcmp(s.items[i].ref, vif.ref);
    cr_assert(found);
    xcp_vif_set_dispose(&s);
}

Test(vif, hot_plug_and_unplug_on_running_vm)
{
    xcp_vm vm = api_install("vm");
    xcp_vif vif;
    bool att = false;

    OK(xcp_vm_start(S, vm, false, false));
    vif = api_add_vif(vm, "0", "");
    OK(xcp_vif_get_currently_attached(S, &att, vif));
    cr_assert(!att);
    OK(xcp_vif_plug(S, vif));
    OK(xcp_vif_get_currently_attached(S, &att, vif));
    cr_assert(att);
    assert_error(xcp_vif_plug(S, vif), "DEVICE_ALREADY_ATTACHED", vif.ref);
    assert_error_name(xcp_vif_destroy(S, vif), "OPERATION_NOT_ALLOWED");
    OK(xcp_vif_unplug(S, vif));
    assert_error(xcp_vif_unplug(S, vif), "DEVICE_ALREADY_DETACHED", vif.ref);
    OK(xcp_vif_destroy(S, vif));
}

Test(vif, plug_on_suspended_vm_reports_actual_state)
{
    xcp_vm vm = api_install("vm");
    xcp_vif vif = api_add_vif(vm, "0", "");

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_suspend(S, vm));
    assert_error(xcp_vif_plug(S, vif), "VM_BAD_POWER_STATE", vm.ref,
                 "running", "suspended");
}

Test(vif, plug_on_halted_vm_fails_bad_power_state)
{
    xcp_vm vm = api_install("vm");
    xcp_vif vif = api_add_vif(vm, "0", "");

    assert_error(xcp_vif_plug(S, vif), "VM_BAD_POWER_STATE", vm.ref,
                 "running", "halted");
}

/* ---- network ------------------------------------------------------------ */

/* A network on bridge `bridge` ("": the server picks one). */
static xcp_network new_network_on(const char *name, const char *bridge)
{
    xcp_network_record r;
    xcp_network net;

    xcp_network_record_init(&r);
    r.name_label = (char *)name;
    r.name_description = (char *)"";
    r.MTU = 1500;
    r.bridge = (char *)bridge;
    r.managed = true;
    OK(xcp_network_create(S, &net, &r));
    return net;
}

static xcp_network new_network(const char *name)
{
    return new_network_on(name, "");
}

/* No bridge of this name can be made (Linux names have 15 characters at
 * most): the sim refuses it as the xen driver does. */
#define BAD_BRIDGE "bridge-name-over-15"

Test(network, create_picks_a_bridge)
{
    xcp_network a = new_network("private a"), b = new_network("private b");
    char *ba = NULL, *bb = NULL;
    int64_t mtu = 0;

    OK(xcp_network_get_bridge(S, &ba, a));
    OK(xcp_network_get_bridge(S, &bb, b));
    cr_assert(!strncmp(ba, "xapi", 4), "bridge %s", ba);
    cr_assert_str_neq(ba, bb);
    OK(xcp_network_get_MTU(S, &mtu, a));
    cr_assert_eq(mtu, 1500);
    xcp_free(ba);
    xcp_free(bb);
}

Test(network, destroy_with_vif_fails_network_contains_vif)
{
    xcp_network net = new_network("private");
    xcp_vm vm = api_install("vm");
    xcp_vif vif;

    OK(try_vif(vm, "0", "", net, &vif));
    assert_error(xcp_network_destroy(S, net), "NETWORK_CONTAINS_VIF",
                 vif.ref);
    OK(xcp_vif_destroy(S, vif));
    OK(xcp_network_destroy(S, net));
}

Test(network, destroy_unused_network)
{
    xcp_network net = new_network("private");
    xcp_network_record r;

    OK(xcp_network_destroy(S, net));
    xcp_network_record_init(&r);
    assert_error(xcp_network_get_record(S, &r, net), "HANDLE_INVALID",
                 "network", net.ref);
}

/*
 * network.destroy asks the driver to remove the network's bridge (the xen
 * driver removes one it made); a bridge that cannot go is logged, and the
 * record is gone all the same.
 */
Test(network, destroy_removes_its_bridge_through_the_driver)
{
    char path[] = "/tmp/xcp-test-log-XXXXXX", buf[4096] = "";
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    xcp_network net;
    xcp_network_record r;
    ssize_t n;

    cr_assert(fd >= 0 && saved >= 0);
    api_reopen_with_faults("bridge_remove=EIO");
    net = new_network("private");
    fflush(stderr);
    dup2(fd, STDERR_FILENO);
    OK(xcp_network_destroy(S, net));
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    unlink(path);
    cr_assert(n > 0 && strstr(buf, "its bridge xapi"),
              "the driver was not asked to remove the bridge: '%s'", buf);
    xcp_network_record_init(&r);
    assert_error(xcp_network_get_record(S, &r, net), "HANDLE_INVALID",
                 "network", net.ref);
}

Test(network, vm_on_private_network_starts)
{
    xcp_network net = new_network("private");
    xcp_vm vm = api_install("vm");
    xcp_vif vif;
    bool att = false;

    OK(try_vif(vm, "0", "", net, &vif));
    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vif_get_currently_attached(S, &att, vif));
    cr_assert(att);
}

Test(network, vm_start_on_a_bridge_that_cannot_be_made_fails_bridge_not_available)
{
    xcp_network net = new_network_on("nobridge", BAD_BRIDGE);
    xcp_vm vm = api_install("vm");
    xcp_vif vif;

    OK(try_vif(vm, "0", "", net, &vif));
    assert_error(xcp_vm_start(S, vm, false, false), "BRIDGE_NOT_AVAILABLE",
                 BAD_BRIDGE);
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_HALTED);
}

Test(network, vif_plug_on_a_bridge_that_cannot_be_made_fails_bridge_not_available)
{
    xcp_network net = new_network_on("nobridge", BAD_BRIDGE);
    xcp_vm vm = api_install("vm");
    xcp_vif vif;
    bool att = true;

    OK(xcp_vm_start(S, vm, false, false));
    OK(try_vif(vm, "1", "", net, &vif));
    assert_error(xcp_vif_plug(S, vif), "BRIDGE_NOT_AVAILABLE", BAD_BRIDGE);
    OK(xcp_vif_get_currently_attached(S, &att, vif));
    cr_assert(!att);
}

Test(network, vif_move_to_a_bridge_that_cannot_be_made_stays_put)
{
    xcp_network good = new_network("good");
    xcp_network bad = new_network_on("nobridge", BAD_BRIDGE);
    xcp_network now;
    xcp_vm vm = api_install("vm");
    xcp_vif vif;

    OK(try_vif(vm, "0", "", good, &vif));
    OK(xcp_vm_start(S, vm, false, false));
    assert_error(xcp_vif_move(S, vif, bad), "BRIDGE_NOT_AVAILABLE",
                 BAD_BRIDGE);
    OK(xcp_vif_get_network(S, &now, vif));
    cr_assert_str_eq(now.ref, good.ref);
}

Test(network, vif_mtu_copied_from_network)
{
    xcp_network net = new_network("jumbo");
    xcp_vm vm = api_install("vm");
    xcp_vif_record r;
    xcp_vif vif;

    OK(xcp_network_set_MTU(S, net, 9000));
    xcp_vif_record_init(&r);
    r.device = (char *)"0";
    r.network = net;
    r.VM = vm;
    r.MAC = (char *)"";
    r.MTU = 0;
    r.qos_algorithm_type = (char *)"";
    OK(xcp_vif_create(S, &vif, &r));
    xcp_vif_record_init(&r);
    OK(xcp_vif_get_record(S, &r, vif));
    cr_assert_eq(r.MTU, 9000);
    xcp_vif_record_dispose(&r);
}

static bool sr_allows(xcp_sr sr, enum xcp_storage_operations op)
{
    xcp_storage_operations_set ops = {0};
    bool found = false;
    size_t i;

    OK(xcp_sr_get_allowed_operations(S, &ops, sr));
    for (i = 0; i < ops.n; i++)
        found |= ops.items[i] == op;
    xcp_storage_operations_set_dispose(&ops);
    return found;
}

/* SR.allowed_operations follow the PBD's attachment and the type's
 * capabilities, as the calls themselves do. */
Test(vdi, sr_allowed_operations_follow_attachment)
{
    xcp_sr sr = api_default_sr();
    xcp_pbd_set pbds = {0};

    cr_assert(sr_allows(sr, XCP_STORAGE_OPERATIONS_VDI_CREATE));
    cr_assert(sr_allows(sr, XCP_STORAGE_OPERATIONS_SCAN));
    cr_assert(sr_allows(sr, XCP_STORAGE_OPERATIONS_UNPLUG));
    cr_assert(!sr_allows(sr, XCP_STORAGE_OPERATIONS_PLUG));
    cr_assert(!sr_allows(sr, XCP_STORAGE_OPERATIONS_FORGET));
    cr_assert(!sr_allows(sr, XCP_STORAGE_OPERATIONS_DESTROY));
    /* The file type tracks changed blocks (VDI_CONFIG_CBT), plugged. */
    cr_assert(sr_allows(sr, XCP_STORAGE_OPERATIONS_VDI_ENABLE_CBT));
    OK(xcp_sr_get_PBDs(S, &pbds, sr));
    cr_assert_eq(pbds.n, 1);
    OK(xcp_pbd_unplug(S, pbds.items[0]));
    cr_assert(!sr_allows(sr, XCP_STORAGE_OPERATIONS_VDI_ENABLE_CBT));
    cr_assert(!sr_allows(sr, XCP_STORAGE_OPERATIONS_VDI_CREATE));
    cr_assert(!sr_allows(sr, XCP_STORAGE_OPERATIONS_SCAN));
    cr_assert(sr_allows(sr, XCP_STORAGE_OPERATIONS_PLUG));
    cr_assert(sr_allows(sr, XCP_STORAGE_OPERATIONS_FORGET));
    OK(xcp_pbd_plug(S, pbds.items[0]));
    cr_assert(sr_allows(sr, XCP_STORAGE_OPERATIONS_VDI_CREATE));
    cr_assert(!sr_allows(sr, XCP_STORAGE_OPERATIONS_PLUG));
    xcp_pbd_set_dispose(&pbds);
}

/* host.get_management_interface: the host's PIF flagged management. */
Test(network, host_management_interface_is_its_management_pif)
{
    xcp_host h = api_host();
    xcp_pif_set pifs = {0};
    xcp_pif mgmt;
    size_t i, n = 0;
    bool m;

    OK(xcp_host_get_PIFs(S, &pifs, h));
    cr_assert_gt(pifs.n, 0);
    OK(xcp_host_get_management_interface(S, &mgmt, h));
    for (i = 0; i < pifs.n; i++) {
        OK(xcp_pif_get_management(S, &m, pifs.items[i]));
        if (m) {
            cr_expect_str_eq(pifs.items[i].ref, mgmt.ref);
            n++;
        }
    }
    cr_expect_eq(n, 1);
    xcp_pif_set_dispose(&pifs);
}

/* A disk whose SR is unplugged: VM.start answers VM_REQUIRES_SR [vm, sr]
 * (the domain config maps the image lookup's SR_NOT_ATTACHED). */
Test(vbd, start_with_a_disk_on_an_unplugged_sr_fails_vm_requires_sr)
{
    xcp_vm vm = api_install("vm");
    xcp_sr sr = api_default_sr();
    xcp_pbd_set pbds = {0};

    OK(xcp_sr_get_PBDs(S, &pbds, sr));
    cr_assert_eq(pbds.n, 1);
    OK(xcp_pbd_unplug(S, pbds.items[0]));
    assert_error(xcp_vm_start(S, vm, false, false), "VM_REQUIRES_SR", vm.ref,
                 sr.ref);
    OK(xcp_pbd_plug(S, pbds.items[0]));
    OK(xcp_vm_start(S, vm, false, false));
    xcp_pbd_set_dispose(&pbds);
}
