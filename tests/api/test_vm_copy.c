/*
 * tests/api/test_vm_copy.c - templates, clones, copies, snapshots,
 * checkpoints and reverts through the public API: the template and
 * snapshot rules (VM_IS_TEMPLATE, VM_CANNOT_DELETE_DEFAULT_TEMPLATE,
 * PROVISION_ONLY_ALLOWED_ON_TEMPLATE, VM_IS_SNAPSHOT,
 * REVERT_ONLY_ALLOWED_ON_SNAPSHOT), and what each copy shares or owns
 * (uuids, VDIs and their sm_config chain, MACs, snapshot fields).
 */
#include "helpers.h"

#include <unistd.h>

TestSuite(vm_templates, .init = api_setup, .fini = api_teardown);
TestSuite(vm_clone, .init = api_setup, .fini = api_teardown);
TestSuite(vm_snapshot, .init = api_setup, .fini = api_teardown);

/* The VDIs behind a VM's VBDs (CDs and empty drives skipped). */
static xcp_vdi_set vm_vdis(xcp_vm vm)
{
    xcp_vbd_set vbds = {0};
    xcp_vdi_set out = {0};
    size_t i;

    OK(xcp_vm_get_VBDs(S, &vbds, vm));
    out.items = calloc(vbds.n ? vbds.n : 1, sizeof(*out.items));
    cr_assert_not_null(out.items);
    for (i = 0; i < vbds.n; i++) {
        xcp_vdi vdi;
        OK(xcp_vbd_get_VDI(S, &vdi, vbds.items[i]));
        if (!api_is_null(vdi.ref))
            out.items[out.n++] = vdi;
    }
    xcp_vbd_set_dispose(&vbds);
    return out;
}

static void free_vdis(xcp_vdi_set *s)
{
    free(s->items);
    s->items = NULL;
    s->n = 0;
}

static char *vm_uuid(xcp_vm vm)
{
    char *u = NULL;

    OK(xcp_vm_get_uuid(S, &u, vm));
    return u;
}

/* ---- templates ---------------------------------------------------------- */

Test(vm_templates, first_boot_creates_five_default_templates)
{
    static const char *const names[] = {
        "Debian Bookworm 12", "Ubuntu Noble Numbat 24.04", "Rocky Linux 9",
        "Windows Server 2022 (64-bit)", "Other install media"};
    xcp_vm_record_map all = {0};
    size_t i, n = 0;

    for (i = 0; i < 5; i++) {
        xcp_vm t = api_template(names[i]);
        bool tmpl = false, dflt = false;
        OK(xcp_vm_get_is_a_template(S, &tmpl, t));
        OK(xcp_vm_get_is_default_template(S, &dflt, t));
        cr_assert(tmpl && dflt, "%s: is_a_template %d is_default %d",
                  names[i], tmpl, dflt);
    }
    OK(xcp_vm_get_all_records(S, &all));
    for (i = 0; i < all.n; i++)
        n += all.records[i].is_default_template;
    cr_assert_eq(n, 5);
    xcp_vm_record_map_dispose(&all);
}

Test(vm_templates, start_template_fails_vm_is_template)
{
    xcp_vm t = api_template(T_DEBIAN);

    assert_error(xcp_vm_start(S, t, false, false), "VM_IS_TEMPLATE", t.ref,
                 "start");
    cr_assert_eq(api_power(t), XCP_VM_POWER_STATE_HALTED);
}

Test(vm_templates, template_does_not_allow_start)
{
    xcp_vm t = api_template(T_DEBIAN);
    xcp_vm_operations_set ops = {0};

    OK(xcp_vm_get_allowed_operations(S, &ops, t));
    cr_assert(!api_ops_has(&ops, XCP_VM_OPERATIONS_START));
    cr_assert(!api_ops_has(&ops, XCP_VM_OPERATIONS_DESTROY),
              "default template lists destroy");
    cr_assert(api_ops_has(&ops, XCP_VM_OPERATIONS_CLONE));
    cr_assert(api_ops_has(&ops, XCP_VM_OPERATIONS_PROVISION));
    xcp_vm_operations_set_dispose(&ops);
}

Test(vm_templates, destroy_default_template_fails)
{
    xcp_vm t = api_template(T_OTHER);

    assert_error(xcp_vm_destroy(S, t), "VM_CANNOT_DELETE_DEFAULT_TEMPLATE",
                 t.ref);
    cr_assert_eq(api_power(t), XCP_VM_POWER_STATE_HALTED);
}

Test(vm_templates, clone_of_template_is_custom_template_and_destroyable)
{
    xcp_vm c;
    bool tmpl = false, dflt = true;

    OK(xcp_vm_clone(S, &c, api_template(T_DEBIAN), "my template"));
    OK(xcp_vm_get_is_a_template(S, &tmpl, c));
    OK(xcp_vm_get_is_default_template(S, &dflt, c));
    cr_assert(tmpl);
    cr_assert(!dflt);
    OK(xcp_vm_destroy(S, c));
}

Test(vm_templates, provision_non_template_fails)
{
    xcp_vm vm = api_install("vm");

    assert_error0(xcp_vm_provision(S, vm),
                  "PROVISION_ONLY_ALLOWED_ON_TEMPLATE");
}

Test(vm_templates, provision_creates_disks_and_clears_template_flag)
{
    xcp_vm vm;
    xcp_string_map oc = {0};
    xcp_vdi_set vdis;
    xcp_vdi_record r;
    bool tmpl = true;
    size_t before = api_count_vdis(-1);

    OK(xcp_vm_clone(S, &vm, api_template(T_DEBIAN), "vm"));
    OK(xcp_vm_get_other_config(S, &oc, vm));
    cr_assert_not_null(xcp_string_map_get(&oc, "disks"));
    xcp_string_map_dispose(&oc);
    vdis = vm_vdis(vm);
    cr_assert_eq(vdis.n, 0);
    free_vdis(&vdis);

    OK(xcp_vm_provision(S, vm));
    OK(xcp_vm_get_is_a_template(S, &tmpl, vm));
    cr_assert(!tmpl);
    OK(xcp_vm_get_other_config(S, &oc, vm));
    cr_assert_null(xcp_string_map_get(&oc, "disks"));
    xcp_string_map_dispose(&oc);
    cr_assert_eq(api_count_vdis(-1), before + 1);
    vdis = vm_vdis(vm);
    cr_assert_eq(vdis.n, 1);
    xcp_vdi_record_init(&r);
    OK(xcp_vdi_get_record(S, &r, vdis.items[0]));
    cr_assert_eq(r.virtual_size, 10 * GiB);
    cr_assert_eq(r.type, XCP_VDI_TYPE_SYSTEM);
    cr_assert_str_eq(r.SR.ref, api_default_sr().ref);
    cr_assert_str_eq(xcp_string_map_get(&r.sm_config, "image-format")
                         ? xcp_string_map_get(&r.sm_config, "image-format")
                         : "(none)",
                     "qcow2");
    xcp_vdi_record_dispose(&r);
    free_vdis(&vdis);
}

Test(vm_templates, provision_twice_fails)
{
    xcp_vm vm = api_install("vm");

    assert_error0(xcp_vm_provision(S, vm),
                  "PROVISION_ONLY_ALLOWED_ON_TEMPLATE");
    cr_assert_eq(api_count_vdis(-1), 1);
}

Test(vm_templates, clone_of_default_template_is_not_default)
{
    xcp_vm vm = api_install("vm");
    bool dflt = true;

    OK(xcp_vm_get_is_default_template(S, &dflt, vm));
    cr_assert(!dflt);
    OK(xcp_vm_start(S, vm, false, false));
}

/* ---- clone and copy ----------------------------------------------------- */

Test(vm_clone, clone_has_new_uuid_and_name)
{
    xcp_vm vm = api_install("vm");
    xcp_vm c;
    char *u1, *u2, *name = NULL;

    OK(xcp_vm_clone(S, &c, vm, "the clone"));
    cr_assert_str_neq(c.ref, vm.ref);
    u1 = vm_uuid(vm);
    u2 = vm_uuid(c);
    cr_assert_str_neq(u1, u2);
    OK(xcp_vm_get_name_label(S, &name, c));
    cr_assert_str_eq(name, "the clone");
    cr_assert_eq(api_power(c), XCP_VM_POWER_STATE_HALTED);
    xcp_free(u1);
    xcp_free(u2);
    xcp_free(name);
}

Test(vm_clone, clone_disks_are_new_cow_vdis)
{
    xcp_vm vm = api_install("vm");
    xcp_vm c;
    xcp_vdi_set a, b;
    xcp_vdi_record r;
    size_t before = api_count_vdis(-1);

    OK(xcp_vm_clone(S, &c, vm, "c"));
    a = vm_vdis(vm);
    b = vm_vdis(c);
    cr_assert_eq(a.n, 1);
    cr_assert_eq(b.n, 1);
    cr_assert_str_neq(a.items[0].ref, b.items[0].ref);
    cr_assert_eq(api_count_vdis(-1), before + 1);
    xcp_vdi_record_init(&r);
    OK(xcp_vdi_get_record(S, &r, b.items[0]));
    cr_assert_not_null(xcp_string_map_get(&r.sm_config, "vhd-parent"),
                       "clone VDI without sm_config:vhd-parent");
    cr_assert_str_neq(xcp_string_map_get(&r.sm_config, "vhd-parent"), "");
    cr_assert_eq(r.virtual_size, 10 * GiB);
    cr_assert(!r.is_a_snapshot);
    xcp_vdi_record_dispose(&r);
    free_vdis(&a);
    free_vdis(&b);
}

Test(vm_clone, clone_vifs_get_new_macs)
{
    xcp_vm vm = api_install("vm");
    xcp_vm c;
    xcp_vif_set vifs = {0};
    xcp_vif_record r1, r2;
    xcp_vif v = api_add_vif(vm, "0", "02:00:00:aa:bb:cc");

    OK(xcp_vm_clone(S, &c, vm, "c"));
    OK(xcp_vm_get_VIFs(S, &vifs, c));
    cr_assert_eq(vifs.n, 1);
    xcp_vif_record_init(&r1);
    xcp_vif_record_init(&r2);
    OK(xcp_vif_get_record(S, &r1, v));
    OK(xcp_vif_get_record(S, &r2, vifs.items[0]));
    cr_assert_str_eq(r1.MAC, "02:00:00:aa:bb:cc");
    cr_assert_str_neq(r2.MAC, r1.MAC);
    cr_assert_eq(strlen(r2.MAC), 17);
    cr_assert_str_eq(r2.device, r1.device);
    cr_assert_str_eq(r2.network.ref, r1.network.ref);
    cr_assert_str_eq(r2.VM.ref, c.ref);
    xcp_vif_record_dispose(&r1);
    xcp_vif_record_dispose(&r2);
    xcp_vif_set_dispose(&vifs);
}

Test(vm_clone, clone_keeps_configuration)
{
    xcp_vm vm = api_install("vm");
    xcp_vm c;
    xcp_vm_record a, b;

    OK(xcp_vm_set_memory_limits(S, vm, 256 * MiB, 768 * MiB, 512 * MiB,
                                768 * MiB));
    OK(xcp_vm_add_to_other_config(S, vm, "k", "v"));
    OK(xcp_vm_clone(S, &c, vm, "c"));
    xcp_vm_record_init(&a);
    xcp_vm_record_init(&b);
    OK(xcp_vm_get_record(S, &a, vm));
    OK(xcp_vm_get_record(S, &b, c));
    cr_assert_eq(b.memory_static_max, 768 * MiB);
    cr_assert_eq(b.memory_dynamic_min, 512 * MiB);
    cr_assert_eq(b.VCPUs_max, a.VCPUs_max);
    cr_assert_str_eq(xcp_string_map_get(&b.other_config, "k"), "v");
    cr_assert_str_eq(b.HVM_boot_policy, a.HVM_boot_policy);
    cr_assert_str_neq(b.metrics.ref, a.metrics.ref);
    cr_assert(!b.is_a_snapshot);
    xcp_vm_record_dispose(&a);
    xcp_vm_record_dispose(&b);
}

Test(vm_clone, clone_can_start_alongside_original)
{
    xcp_vm vm = api_install("vm");
    xcp_vm c;

    OK(xcp_vm_clone(S, &c, vm, "c"));
    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_start(S, c, false, false));
    cr_assert_neq(api_domid(vm), api_domid(c));
}

Test(vm_clone, copy_makes_full_copies)
{
    xcp_vm vm = api_install("vm");
    xcp_vm c;
    xcp_vdi_set a, b;
    xcp_vdi_record r;
    xcp_sr null_sr;
    size_t before = api_count_vdis(-1);

    SET_REF(null_sr, XCP_NULL_REF);
    OK(xcp_vm_copy(S, &c, vm, "copy", null_sr));
    a = vm_vdis(vm);
    b = vm_vdis(c);
    cr_assert_eq(b.n, 1);
    cr_assert_str_neq(a.items[0].ref, b.items[0].ref);
    cr_assert_eq(api_count_vdis(-1), before + 1);
    xcp_vdi_record_init(&r);
    OK(xcp_vdi_get_record(S, &r, b.items[0]));
    cr_assert_null(xcp_string_map_get(&r.sm_config, "vhd-parent"),
                   "full copy has vhd-parent %s",
                   xcp_string_map_get(&r.sm_config, "vhd-parent"));
    cr_assert_eq(r.virtual_size, 10 * GiB);
    cr_assert_str_eq(r.SR.ref, api_default_sr().ref);
    xcp_vdi_record_dispose(&r);
    free_vdis(&a);
    free_vdis(&b);
}

Test(vm_clone, copy_to_explicit_sr)
{
    xcp_vm vm = api_install("vm");
    xcp_vm c;
    xcp_vdi_set b;
    xcp_sr sr;

    OK(xcp_vm_copy(S, &c, vm, "copy", api_default_sr()));
    b = vm_vdis(c);
    cr_assert_eq(b.n, 1);
    OK(xcp_vdi_get_SR(S, &sr, b.items[0]));
    cr_assert_str_eq(sr.ref, api_default_sr().ref);
    free_vdis(&b);
}

/* A second file SR under the state dir. */
static xcp_sr second_sr(void)
{
    xcp_string_map dc = {0}, smc = {0};
    char loc[320];
    xcp_sr sr;

    snprintf(loc, sizeof(loc), "%s/second-sr", api_dir);
    xcp_string_map_set(&dc, "location", loc);
    OK(xcp_sr_create(S, &sr, api_host(), &dc, 0, "second", "", "file",
                     "user", false, &smc));
    xcp_string_map_dispose(&dc);
    return sr;
}

Test(vm_clone, copy_to_another_sr_puts_disks_there)
{
    xcp_vm vm = api_install("vm");
    xcp_vm c;
    xcp_vdi_set b;
    xcp_sr sr = second_sr(), got;
    int64_t size = 0;

    OK(xcp_vm_copy(S, &c, vm, "copy", sr));
    b = vm_vdis(c);
    cr_assert_eq(b.n, 1);
    OK(xcp_vdi_get_SR(S, &got, b.items[0]));
    cr_assert_str_eq(got.ref, sr.ref);
    OK(xcp_vdi_get_virtual_size(S, &size, b.items[0]));
    cr_assert_eq(size, 10 * GiB);
    OK(xcp_vm_start(S, c, false, false));
    free_vdis(&b);
}

Test(vm_clone, copy_to_bogus_sr_fails_handle_invalid)
{
    xcp_vm vm = api_install("vm");
    xcp_vm c;
    xcp_sr sr;
    xcp_vm_set all = {0};
    size_t n;

    OK(xcp_vm_get_all(S, &all));
    n = all.n;
    xcp_vm_set_dispose(&all);
    SET_REF(sr, "OpaqueRef:nope");
    assert_error(xcp_vm_copy(S, &c, vm, "copy", sr), "HANDLE_INVALID", "SR",
                 "OpaqueRef:nope");
    OK(xcp_vm_get_all(S, &all));
    cr_assert_eq(all.n, n);
    xcp_vm_set_dispose(&all);
}

Test(vm_clone, destroying_clone_keeps_original_bootable)
{
    xcp_vm vm = api_install("vm");
    xcp_vm c;

    OK(xcp_vm_clone(S, &c, vm, "c"));
    OK(xcp_vm_destroy(S, c));
    OK(xcp_vm_start(S, vm, false, false));
}

/* ---- snapshots, checkpoints, revert ------------------------------------- */

Test(vm_snapshot, snapshot_record_fields)
{
    xcp_vm vm = api_install("vm");
    xcp_vm snap;
    xcp_vm_record r;
    xcp_vm_set snaps = {0};

    OK(xcp_vm_snapshot(S, &snap, vm, "snap", NULL));
    xcp_vm_record_init(&r);
    OK(xcp_vm_get_record(S, &r, snap));
    cr_assert(r.is_a_snapshot);
    cr_assert(r.is_a_template);
    cr_assert_str_eq(r.snapshot_of.ref, vm.ref);
    cr_assert_gt(r.snapshot_time, 0);
    cr_assert_str_eq(r.name_label, "snap");
    cr_assert_eq(r.power_state, XCP_VM_POWER_STATE_HALTED);
    xcp_vm_record_dispose(&r);
    OK(xcp_vm_get_snapshots(S, &snaps, vm));
    cr_assert_eq(snaps.n, 1);
    cr_assert_str_eq(snaps.items[0].ref, snap.ref);
    xcp_vm_set_dispose(&snaps);
}

Test(vm_snapshot, snapshot_vdis_are_vdi_snapshots)
{
    xcp_vm vm = api_install("vm");
    xcp_vm snap;
    xcp_vdi_set a, b;
    xcp_vdi_record r;
    xcp_vdi_set vs = {0};

    OK(xcp_vm_snapshot(S, &snap, vm, "snap", NULL));
    a = vm_vdis(vm);
    b = vm_vdis(snap);
    cr_assert_eq(b.n, 1);
    cr_assert_str_neq(a.items[0].ref, b.items[0].ref);
    xcp_vdi_record_init(&r);
    OK(xcp_vdi_get_record(S, &r, b.items[0]));
    cr_assert(r.is_a_snapshot);
    cr_assert_str_eq(r.snapshot_of.ref, a.items[0].ref);
    cr_assert_gt(r.snapshot_time, 0);
    xcp_vdi_record_dispose(&r);
    OK(xcp_vdi_get_snapshots(S, &vs, a.items[0]));
    cr_assert_eq(vs.n, 1);
    cr_assert_str_eq(vs.items[0].ref, b.items[0].ref);
    xcp_vdi_set_dispose(&vs);
    free_vdis(&a);
    free_vdis(&b);
}

Test(vm_snapshot, snapshot_of_running_vm_keeps_it_running)
{
    xcp_vm vm = api_install("vm");
    xcp_vm snap;
    int64_t d;

    OK(xcp_vm_start(S, vm, false, false));
    d = api_domid(vm);
    OK(xcp_vm_snapshot(S, &snap, vm, "snap", NULL));
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
    cr_assert_eq(api_domid(vm), d);
    cr_assert_eq(api_power(snap), XCP_VM_POWER_STATE_HALTED);
    cr_assert_eq(api_domid(snap), -1);
}

Test(vm_snapshot, snapshot_ignoring_vdis_skips_them)
{
    xcp_vm vm = api_install("vm");
    xcp_vm snap;
    xcp_vdi_set a = vm_vdis(vm), b;

    OK(xcp_vm_snapshot(S, &snap, vm, "snap", &a));
    b = vm_vdis(snap);
    cr_assert_eq(b.n, 0);
    free_vdis(&a);
    free_vdis(&b);
}

Test(vm_snapshot, start_snapshot_fails_vm_is_snapshot)
{
    xcp_vm vm = api_install("vm");
    xcp_vm snap;

    OK(xcp_vm_snapshot(S, &snap, vm, "snap", NULL));
    assert_error(xcp_vm_start(S, snap, false, false), "VM_IS_SNAPSHOT",
                 snap.ref, "start");
}

Test(vm_snapshot, revert_non_snapshot_fails)
{
    xcp_vm vm = api_install("vm");

    assert_error0(xcp_vm_revert(S, vm), "REVERT_ONLY_ALLOWED_ON_SNAPSHOT");
}

/* Template rules are checked before "revert only on snapshots". */
Test(vm_snapshot, revert_template_fails_vm_is_template)
{
    xcp_vm t = api_template(T_DEBIAN);

    assert_error(xcp_vm_revert(S, t), "VM_IS_TEMPLATE", t.ref, "revert");
}

Test(vm_snapshot, snapshot_allows_revert_clone_destroy_only)
{
    xcp_vm vm = api_install("vm");
    xcp_vm snap;
    xcp_vm_operations_set ops = {0};

    OK(xcp_vm_snapshot(S, &snap, vm, "snap", NULL));
    OK(xcp_vm_get_allowed_operations(S, &ops, snap));
    cr_assert(api_ops_has(&ops, XCP_VM_OPERATIONS_REVERT));
    cr_assert(api_ops_has(&ops, XCP_VM_OPERATIONS_CLONE));
    cr_assert(api_ops_has(&ops, XCP_VM_OPERATIONS_DESTROY));
    cr_assert(!api_ops_has(&ops, XCP_VM_OPERATIONS_START));
    cr_assert(!api_ops_has(&ops, XCP_VM_OPERATIONS_SNAPSHOT));
    cr_assert(!api_ops_has(&ops, XCP_VM_OPERATIONS_PROVISION));
    xcp_vm_operations_set_dispose(&ops);
}

Test(vm_snapshot, revert_restores_settings_and_gives_new_disks)
{
    xcp_vm vm = api_install("vm");
    xcp_vm snap;
    xcp_vdi_set before, after;
    int64_t smax = 0;

    OK(xcp_vm_set_memory_limits(S, vm, 256 * MiB, 512 * MiB, 512 * MiB,
                                512 * MiB));
    OK(xcp_vm_snapshot(S, &snap, vm, "snap", NULL));
    OK(xcp_vm_set_memory_limits(S, vm, 256 * MiB, 2 * GiB, 1 * GiB,
                                2 * GiB));
    before = vm_vdis(vm);
    OK(xcp_vm_revert(S, snap));
    OK(xcp_vm_get_memory_static_max(S, &smax, vm));
    cr_assert_eq(smax, 512 * MiB);
    after = vm_vdis(vm);
    cr_assert_eq(after.n, 1);
    cr_assert_str_neq(after.items[0].ref, before.items[0].ref);
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_HALTED);
    /* The snapshot survives the revert and is still its snapshot. */
    {
        xcp_vm of;
        OK(xcp_vm_get_snapshot_of(S, &of, snap));
        cr_assert_str_eq(of.ref, vm.ref);
    }
    OK(xcp_vm_start(S, vm, false, false));
    free_vdis(&before);
    free_vdis(&after);
}

Test(vm_snapshot, revert_of_running_vm_halts_it)
{
    xcp_vm vm = api_install("vm");
    xcp_vm snap;

    OK(xcp_vm_snapshot(S, &snap, vm, "snap", NULL));
    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_revert(S, snap));
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_HALTED);
    cr_assert_eq(api_domid(vm), -1);
}

Test(vm_snapshot, revert_keeps_vm_name_and_uuid)
{
    xcp_vm vm = api_install("vm");
    xcp_vm snap;
    char *u1 = vm_uuid(vm), *u2, *name = NULL;

    OK(xcp_vm_snapshot(S, &snap, vm, "snap", NULL));
    OK(xcp_vm_revert(S, snap));
    u2 = vm_uuid(vm);
    cr_assert_str_eq(u1, u2);
    OK(xcp_vm_get_name_label(S, &name, vm));
    cr_assert_str_eq(name, "vm");
    xcp_free(u1);
    xcp_free(u2);
    xcp_free(name);
}

Test(vm_snapshot, checkpoint_of_running_vm)
{
    xcp_vm vm = api_install("vm");
    xcp_vm cp;
    xcp_vm_record r;
    xcp_vdi_record vr;

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_checkpoint(S, &cp, vm, "cp"));
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
    cr_assert_geq(api_domid(vm), 1);
    xcp_vm_record_init(&r);
    OK(xcp_vm_get_record(S, &r, cp));
    cr_assert(r.is_a_snapshot);
    cr_assert_str_eq(r.snapshot_of.ref, vm.ref);
    cr_assert_eq(r.power_state, XCP_VM_POWER_STATE_SUSPENDED);
    cr_assert(!api_is_null(r.suspend_VDI.ref), "checkpoint has no image");
    xcp_vdi_record_init(&vr);
    OK(xcp_vdi_get_record(S, &vr, r.suspend_VDI));
    cr_assert_eq(vr.type, XCP_VDI_TYPE_SUSPEND);
    xcp_vdi_record_dispose(&vr);
    xcp_vm_record_dispose(&r);
    {
        xcp_vdi sv;
        OK(xcp_vm_get_suspend_VDI(S, &sv, vm));
        cr_assert(api_is_null(sv.ref), "running VM keeps suspend_VDI %s",
                  sv.ref);
    }
}

Test(vm_snapshot, revert_to_checkpoint_leaves_vm_suspended)
{
    xcp_vm vm = api_install("vm");
    xcp_vm cp;
    xcp_vdi sv, cpv;

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_checkpoint(S, &cp, vm, "cp"));
    OK(xcp_vm_revert(S, cp));
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_SUSPENDED);
    OK(xcp_vm_get_suspend_VDI(S, &sv, vm));
    OK(xcp_vm_get_suspend_VDI(S, &cpv, cp));
    cr_assert(!api_is_null(sv.ref));
    cr_assert_str_neq(sv.ref, cpv.ref, "VM and checkpoint share an image");
    OK(xcp_vm_resume(S, vm, false, false));
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
    /* The checkpoint can be reverted to again. */
    OK(xcp_vm_revert(S, cp));
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_SUSPENDED);
}

Test(vm_snapshot, destroy_snapshot_removes_it_from_vm_snapshots)
{
    xcp_vm vm = api_install("vm");
    xcp_vm snap;
    xcp_vm_set snaps = {0};

    OK(xcp_vm_snapshot(S, &snap, vm, "snap", NULL));
    OK(xcp_vm_destroy(S, snap));
    OK(xcp_vm_get_snapshots(S, &snaps, vm));
    cr_assert_eq(snaps.n, 0);
    xcp_vm_set_dispose(&snaps);
    OK(xcp_vm_start(S, vm, false, false));
}

Test(vm_snapshot, destroy_checkpoint_drops_its_image)
{
    xcp_vm vm = api_install("vm");
    xcp_vm cp;

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_checkpoint(S, &cp, vm, "cp"));
    cr_assert_eq(api_count_vdis(XCP_VDI_TYPE_SUSPEND), 1);
    OK(xcp_vm_destroy(S, cp));
    cr_assert_eq(api_count_vdis(XCP_VDI_TYPE_SUSPEND), 0);
}

Test(vm_snapshot, clone_of_snapshot_is_a_normal_vm)
{
    xcp_vm vm = api_install("vm");
    xcp_vm snap, c;
    bool is_snap = true, tmpl = true;

    OK(xcp_vm_snapshot(S, &snap, vm, "snap", NULL));
    OK(xcp_vm_clone(S, &c, snap, "from snap"));
    OK(xcp_vm_get_is_a_snapshot(S, &is_snap, c));
    cr_assert(!is_snap, "clone of a snapshot is a snapshot");
    /* Like xe snapshot-clone: the result is a template, made a VM by
     * clearing is_a_template. */
    OK(xcp_vm_get_is_a_template(S, &tmpl, c));
    cr_assert(tmpl);
    OK(xcp_vm_set_is_a_template(S, c, false));
    OK(xcp_vm_start(S, c, false, false));
}

Test(vm_snapshot, clone_of_checkpoint_can_resume)
{
    xcp_vm vm = api_install("vm");
    xcp_vm cp, c;

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_checkpoint(S, &cp, vm, "cp"));
    OK(xcp_vm_clone(S, &c, cp, "from checkpoint"));
    cr_assert_eq(api_power(c), XCP_VM_POWER_STATE_SUSPENDED);
    OK(xcp_vm_set_is_a_template(S, c, false));
    OK(xcp_vm_resume(S, c, false, false));
    cr_assert_eq(api_power(c), XCP_VM_POWER_STATE_RUNNING);
}

Test(vm_snapshot, snapshot_of_suspended_vm_is_suspended_with_own_image)
{
    xcp_vm vm = api_install("vm");
    xcp_vm snap;
    xcp_vdi a, b;

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_suspend(S, vm));
    OK(xcp_vm_snapshot(S, &snap, vm, "snap", NULL));
    cr_assert_eq(api_power(snap), XCP_VM_POWER_STATE_SUSPENDED);
    OK(xcp_vm_get_suspend_VDI(S, &a, vm));
    OK(xcp_vm_get_suspend_VDI(S, &b, snap));
    cr_assert(!api_is_null(b.ref));
    cr_assert_str_neq(a.ref, b.ref);
    /* The original still resumes from its own image. */
    OK(xcp_vm_resume(S, vm, false, false));
}

Test(vm_snapshot, revert_to_suspended_snapshot_then_resume)
{
    xcp_vm vm = api_install("vm");
    xcp_vm snap;

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_suspend(S, vm));
    OK(xcp_vm_snapshot(S, &snap, vm, "snap", NULL));
    OK(xcp_vm_resume(S, vm, false, false));
    OK(xcp_vm_revert(S, snap));
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_SUSPENDED);
    OK(xcp_vm_resume(S, vm, false, false));
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
}

Test(vm_snapshot, checkpoint_of_paused_vm_keeps_it_paused)
{
    xcp_vm vm = api_install("vm");
    xcp_vm cp;

    OK(xcp_vm_start(S, vm, true, false));
    OK(xcp_vm_checkpoint(S, &cp, vm, "cp"));
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_PAUSED);
    cr_assert_eq(api_power(cp), XCP_VM_POWER_STATE_SUSPENDED);
    OK(xcp_vm_unpause(S, vm));
}

/* A clone that fails half-way (its second disk's image is gone) leaves no
 * image behind: an SR scan afterwards finds exactly the disks it knew. */
Test(vm_clone, failure_half_way_leaves_no_image_behind)
{
    xcp_vm vm = api_install("two-disks"), clone;
    xcp_vdi_record vr;
    xcp_vbd_record br;
    xcp_vdi vdi;
    xcp_vbd vbd;
    xcp_sr sr = api_default_sr();
    xcp_vdi_set before, after;
    char path[600];

    xcp_vdi_record_init(&vr);
    vr.SR = sr;
    vr.virtual_size = 1 << 20;
    vr.type = XCP_VDI_TYPE_USER;
    OK(xcp_vdi_create(S, &vdi, &vr));
    xcp_vbd_record_init(&br);
    br.VM = vm;
    br.VDI = vdi;
    br.userdevice = "1";
    br.mode = XCP_VBD_MODE_RW;
    br.type = XCP_VBD_TYPE_DISK;
    OK(xcp_vbd_create(S, &vbd, &br));
    OK(xcp_vdi_get_record(S, &vr, vdi));
    snprintf(path, sizeof(path), "%s/sr/local/%s", api_dir, vr.location);
    cr_assert_eq(unlink(path), 0, "%s", path);
    xcp_vdi_record_dispose(&vr);

    OK(xcp_sr_get_VDIs(S, &before, sr));
    cr_assert_lt(xcp_vm_clone(S, &clone, vm, "clone"), 0);
    OK(xcp_sr_scan(S, sr));
    OK(xcp_sr_get_VDIs(S, &after, sr));
    cr_assert_eq(after.n, before.n, "SR had %zu VDIs, %zu after a failed "
                 "clone and a scan", before.n, after.n);
    xcp_vdi_set_dispose(&before);
    xcp_vdi_set_dispose(&after);
}
