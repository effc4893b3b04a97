/*
 * tests/api/test_vm_lifecycle.c - the VM power state machine through the
 * public API on the sim hypervisor: every transition of the spec's table
 * (xenapi-model.md, "VM power states"), the VM_BAD_POWER_STATE refusals
 * with their exact [vm, expected, actual] parameters, allowed_operations /
 * current_operations bookkeeping, and what a start or a halt changes on
 * the VM, its devices, metrics, consoles and the host.
 */
#include "helpers.h"

#include <time.h>

TestSuite(vm_lifecycle, .init = api_setup, .fini = api_teardown);
TestSuite(vm_bad_power_state, .init = api_setup, .fini = api_teardown);
TestSuite(vm_allowed_ops, .init = api_setup, .fini = api_teardown);
TestSuite(vm_start_effects, .init = api_setup, .fini = api_teardown);

static void assert_power(xcp_vm vm, enum xcp_vm_power_state want)
{
    enum xcp_vm_power_state got = api_power(vm);

    cr_assert_eq(got, want, "power_state %s, expected %s",
                 xcp_vm_power_state_to_string(got),
                 xcp_vm_power_state_to_string(want));
}

static xcp_vm running_vm(void)
{
    xcp_vm vm = api_install("vm");

    OK(xcp_vm_start(S, vm, false, false));
    return vm;
}

static xcp_vm paused_vm(void)
{
    xcp_vm vm = api_install("vm");

    OK(xcp_vm_start(S, vm, true, false));
    return vm;
}

static xcp_vm suspended_vm(void)
{
    xcp_vm vm = running_vm();

    OK(xcp_vm_suspend(S, vm));
    return vm;
}

static void assert_no_current_ops(xcp_vm vm)
{
    xcp_string_map cur = {0};

    OK(xcp_vm_get_current_operations(S, &cur, vm));
    cr_assert_eq(cur.n, 0, "current_operations has %zu entries (first %s)",
                 cur.n, cur.n ? cur.items[0].value : "");
    xcp_string_map_dispose(&cur);
}

static void assert_halted_cleanly(xcp_vm vm)
{
    xcp_host h;
    xcp_vdi sv;

    assert_power(vm, XCP_VM_POWER_STATE_HALTED);
    cr_assert_eq(api_domid(vm), -1);
    OK(xcp_vm_get_resident_on(S, &h, vm));
    cr_assert(api_is_null(h.ref), "resident_on %s after halt", h.ref);
    OK(xcp_vm_get_suspend_VDI(S, &sv, vm));
    cr_assert(api_is_null(sv.ref), "suspend_VDI %s after halt", sv.ref);
    assert_no_current_ops(vm);
}

/* ---- transitions -------------------------------------------------------- */

Test(vm_lifecycle, start_makes_halted_vm_running)
{
    xcp_vm vm = api_install("vm");

    assert_power(vm, XCP_VM_POWER_STATE_HALTED);
    OK(xcp_vm_start(S, vm, false, false));
    assert_power(vm, XCP_VM_POWER_STATE_RUNNING);
    cr_assert_geq(api_domid(vm), 1);
    assert_no_current_ops(vm);
}

Test(vm_lifecycle, start_paused_makes_vm_paused)
{
    xcp_vm vm = paused_vm();

    assert_power(vm, XCP_VM_POWER_STATE_PAUSED);
    cr_assert_geq(api_domid(vm), 1);
    assert_no_current_ops(vm);
}

Test(vm_lifecycle, pause_then_unpause_keeps_domain)
{
    xcp_vm vm = running_vm();
    int64_t d = api_domid(vm);

    OK(xcp_vm_pause(S, vm));
    assert_power(vm, XCP_VM_POWER_STATE_PAUSED);
    cr_assert_eq(api_domid(vm), d);
    OK(xcp_vm_unpause(S, vm));
    assert_power(vm, XCP_VM_POWER_STATE_RUNNING);
    cr_assert_eq(api_domid(vm), d);
    assert_no_current_ops(vm);
}

Test(vm_lifecycle, suspend_sets_suspend_vdi_of_type_suspend)
{
    xcp_vm vm = running_vm();
    xcp_vdi_record vr;
    xcp_vm_record r;

    cr_assert_eq(api_count_vdis(XCP_VDI_TYPE_SUSPEND), 0);
    OK(xcp_vm_suspend(S, vm));
    xcp_vm_record_init(&r);
    OK(xcp_vm_get_record(S, &r, vm));
    cr_assert_eq(r.power_state, XCP_VM_POWER_STATE_SUSPENDED);
    cr_assert_eq(r.domid, -1);
    cr_assert(api_is_null(r.resident_on.ref), "resident_on %s",
              r.resident_on.ref);
    cr_assert(!api_is_null(r.suspend_VDI.ref), "suspend_VDI not set");
    xcp_vdi_record_init(&vr);
    OK(xcp_vdi_get_record(S, &vr, r.suspend_VDI));
    cr_assert_eq(vr.type, XCP_VDI_TYPE_SUSPEND);
    cr_assert_eq(api_count_vdis(XCP_VDI_TYPE_SUSPEND), 1);
    xcp_vdi_record_dispose(&vr);
    xcp_vm_record_dispose(&r);
    assert_no_current_ops(vm);
}

Test(vm_lifecycle, resume_runs_vm_and_drops_suspend_vdi)
{
    xcp_vm vm = suspended_vm();
    xcp_vdi sv, vnow;
    xcp_vdi_record vr;

    OK(xcp_vm_get_suspend_VDI(S, &sv, vm));
    cr_assert(!api_is_null(sv.ref));
    OK(xcp_vm_resume(S, vm, false, false));
    assert_power(vm, XCP_VM_POWER_STATE_RUNNING);
    cr_assert_geq(api_domid(vm), 1);
    OK(xcp_vm_get_suspend_VDI(S, &vnow, vm));
    cr_assert(api_is_null(vnow.ref), "suspend_VDI still %s", vnow.ref);
    xcp_vdi_record_init(&vr);
    assert_error(xcp_vdi_get_record(S, &vr, sv), "HANDLE_INVALID", "VDI",
                 sv.ref);
    cr_assert_eq(api_count_vdis(XCP_VDI_TYPE_SUSPEND), 0);
    assert_no_current_ops(vm);
}

Test(vm_lifecycle, resume_paused_makes_vm_paused)
{
    xcp_vm vm = suspended_vm();

    OK(xcp_vm_resume(S, vm, true, false));
    assert_power(vm, XCP_VM_POWER_STATE_PAUSED);
    cr_assert_geq(api_domid(vm), 1);
    OK(xcp_vm_unpause(S, vm));
    assert_power(vm, XCP_VM_POWER_STATE_RUNNING);
}

Test(vm_lifecycle, resume_on_this_host_runs_vm)
{
    xcp_vm vm = suspended_vm();
    xcp_host h;

    OK(xcp_vm_resume_on(S, vm, api_host(), false, false));
    assert_power(vm, XCP_VM_POWER_STATE_RUNNING);
    OK(xcp_vm_get_resident_on(S, &h, vm));
    cr_assert_str_eq(h.ref, api_host().ref);
}

Test(vm_lifecycle, clean_shutdown_halts_running_vm)
{
    xcp_vm vm = running_vm();

    OK(xcp_vm_clean_shutdown(S, vm));
    assert_halted_cleanly(vm);
}

Test(vm_lifecycle, hard_shutdown_halts_running_vm)
{
    xcp_vm vm = running_vm();

    OK(xcp_vm_hard_shutdown(S, vm));
    assert_halted_cleanly(vm);
}

Test(vm_lifecycle, hard_shutdown_halts_paused_vm)
{
    xcp_vm vm = paused_vm();

    OK(xcp_vm_hard_shutdown(S, vm));
    assert_halted_cleanly(vm);
}

Test(vm_lifecycle, hard_shutdown_of_suspended_vm_destroys_suspend_vdi)
{
    xcp_vm vm = suspended_vm();
    xcp_vdi sv;
    xcp_vdi_record vr;

    OK(xcp_vm_get_suspend_VDI(S, &sv, vm));
    OK(xcp_vm_hard_shutdown(S, vm));
    assert_halted_cleanly(vm);
    xcp_vdi_record_init(&vr);
    assert_error(xcp_vdi_get_record(S, &vr, sv), "HANDLE_INVALID", "VDI",
                 sv.ref);
    cr_assert_eq(api_count_vdis(XCP_VDI_TYPE_SUSPEND), 0);
}

Test(vm_lifecycle, shutdown_halts_running_vm_cleanly)
{
    xcp_vm vm = running_vm();

    OK(xcp_vm_shutdown(S, vm));
    assert_halted_cleanly(vm);
}

Test(vm_lifecycle, shutdown_halts_paused_vm)
{
    xcp_vm vm = paused_vm();

    OK(xcp_vm_shutdown(S, vm));
    assert_halted_cleanly(vm);
}

Test(vm_lifecycle, shutdown_halts_suspended_vm_and_drops_image)
{
    xcp_vm vm = suspended_vm();

    OK(xcp_vm_shutdown(S, vm));
    assert_halted_cleanly(vm);
    cr_assert_eq(api_count_vdis(XCP_VDI_TYPE_SUSPEND), 0);
}

Test(vm_lifecycle, clean_shutdown_of_hung_guest_times_out)
{
    xcp_vm vm = running_vm();
    int64_t d = api_domid(vm);

    api_hang_guests(200);
    assert_error(xcp_vm_clean_shutdown(S, vm), "VM_SHUTDOWN_TIMEOUT", vm.ref,
                 NULL);
    assert_power(vm, XCP_VM_POWER_STATE_RUNNING);
    cr_assert_eq(api_domid(vm), d);
    assert_no_current_ops(vm);
}

/* A malformed timeout is refused, not read as 0 ms (which made every
 * clean shutdown time out). */
Test(vm_lifecycle, clean_shutdown_with_bad_timeout_setting_is_refused)
{
    xcp_vm vm = running_vm();
    int64_t d = api_domid(vm);

    setenv("XCP_CLEAN_SHUTDOWN_TIMEOUT_MS", "soon", 1);
    assert_error(xcp_vm_clean_shutdown(S, vm), "INVALID_VALUE",
                 "XCP_CLEAN_SHUTDOWN_TIMEOUT_MS", "soon");
    assert_power(vm, XCP_VM_POWER_STATE_RUNNING);
    cr_assert_eq(api_domid(vm), d);
    assert_no_current_ops(vm);
    unsetenv("XCP_CLEAN_SHUTDOWN_TIMEOUT_MS");
    OK(xcp_vm_clean_shutdown(S, vm));
    assert_power(vm, XCP_VM_POWER_STATE_HALTED);
}

Test(vm_lifecycle, shutdown_of_hung_guest_falls_back_to_hard)
{
    xcp_vm vm = running_vm();

    api_hang_guests(200);
    OK(xcp_vm_shutdown(S, vm));
    assert_halted_cleanly(vm);
}

Test(vm_lifecycle, hard_shutdown_of_hung_guest_works)
{
    xcp_vm vm = running_vm();

    api_hang_guests(200);
    OK(xcp_vm_hard_shutdown(S, vm));
    assert_halted_cleanly(vm);
}

Test(vm_lifecycle, clean_reboot_gives_new_domid)
{
    xcp_vm vm = running_vm();
    int64_t d = api_domid(vm);

    OK(xcp_vm_clean_reboot(S, vm));
    assert_power(vm, XCP_VM_POWER_STATE_RUNNING);
    cr_assert_geq(api_domid(vm), 1);
    cr_assert_neq(api_domid(vm), d);
    assert_no_current_ops(vm);
}

Test(vm_lifecycle, hard_reboot_gives_new_domid)
{
    xcp_vm vm = running_vm();
    int64_t d = api_domid(vm);

    OK(xcp_vm_hard_reboot(S, vm));
    assert_power(vm, XCP_VM_POWER_STATE_RUNNING);
    cr_assert_geq(api_domid(vm), 1);
    cr_assert_neq(api_domid(vm), d);
    assert_no_current_ops(vm);
}

Test(vm_lifecycle, hard_reboot_of_paused_vm_runs_it)
{
    xcp_vm vm = paused_vm();
    int64_t d = api_domid(vm);

    OK(xcp_vm_hard_reboot(S, vm));
    assert_power(vm, XCP_VM_POWER_STATE_RUNNING);
    cr_assert_neq(api_domid(vm), d);
}

Test(vm_lifecycle, power_state_reset_of_suspended_vm_halts_it)
{
    xcp_vm vm = suspended_vm();

    OK(xcp_vm_power_state_reset(S, vm));
    assert_halted_cleanly(vm);
}

/* The image of a reset suspended VM is referenced by nothing any more. */
Test(vm_lifecycle, power_state_reset_of_suspended_vm_drops_image)
{
    xcp_vm vm = suspended_vm();

    OK(xcp_vm_power_state_reset(S, vm));
    cr_assert_eq(api_count_vdis(XCP_VDI_TYPE_SUSPEND), 0,
                 "suspend VDI left behind");
}

/*
 * power_state_reset on a VM whose domain is alive on this host must not
 * lose track of the domain: either it is refused (xapi: VM_BAD_POWER_STATE
 * [vm, "halted", "running"]) or the VM ends Halted with no domain left, so
 * that it can start again without leaking the old domain's memory.
 */
Test(vm_lifecycle, power_state_reset_of_running_vm_loses_no_domain)
{
    xcp_vm vm = running_vm();
    xcp_host_metrics hm;
    int64_t free_running, free_after;
    int rc;

    OK(xcp_host_get_metrics(S, &hm, api_host()));
    OK(xcp_host_metrics_get_memory_free(S, &free_running, hm));
    rc = xcp_vm_power_state_reset(S, vm);
    if (rc < 0) {
        assert_error(rc, "VM_BAD_POWER_STATE", vm.ref, "halted", "running");
        assert_power(vm, XCP_VM_POWER_STATE_RUNNING);
        return;
    }
    assert_halted_cleanly(vm);
    OK(xcp_vm_start(S, vm, false, false));
    assert_power(vm, XCP_VM_POWER_STATE_RUNNING);
    OK(xcp_host_metrics_get_memory_free(S, &free_after, hm));
    cr_assert_eq(free_after, free_running,
                 "memory_free %" PRId64 " with one domain, %" PRId64
                 " after reset + start: the old domain leaked",
                 free_running, free_after);
}

Test(vm_lifecycle, start_on_this_host_runs_vm_there)
{
    xcp_vm vm = api_install("vm");
    xcp_host h;

    OK(xcp_vm_start_on(S, vm, api_host(), false, false));
    assert_power(vm, XCP_VM_POWER_STATE_RUNNING);
    OK(xcp_vm_get_resident_on(S, &h, vm));
    cr_assert_str_eq(h.ref, api_host().ref);
}

Test(vm_lifecycle, start_on_paused_makes_vm_paused)
{
    xcp_vm vm = api_install("vm");

    OK(xcp_vm_start_on(S, vm, api_host(), true, false));
    assert_power(vm, XCP_VM_POWER_STATE_PAUSED);
}

Test(vm_lifecycle, start_on_bogus_host_fails_handle_invalid)
{
    xcp_vm vm = api_install("vm");
    xcp_host h;

    snprintf(h.ref, sizeof(h.ref), "OpaqueRef:bogus");
    assert_error(xcp_vm_start_on(S, vm, h, false, false), "HANDLE_INVALID",
                 "host", "OpaqueRef:bogus");
    assert_power(vm, XCP_VM_POWER_STATE_HALTED);
}

Test(vm_lifecycle, destroy_halted_vm_removes_record)
{
    xcp_vm vm = api_install("vm");
    xcp_vm_record r;

    OK(xcp_vm_destroy(S, vm));
    xcp_vm_record_init(&r);
    assert_error(xcp_vm_get_record(S, &r, vm), "HANDLE_INVALID", "VM",
                 vm.ref);
}

Test(vm_lifecycle, destroy_suspended_vm_removes_record)
{
    xcp_vm vm = suspended_vm();
    xcp_vm_record r;

    OK(xcp_vm_destroy(S, vm));
    xcp_vm_record_init(&r);
    assert_error(xcp_vm_get_record(S, &r, vm), "HANDLE_INVALID", "VM",
                 vm.ref);
}

Test(vm_lifecycle, destroy_keeps_the_vms_disks)
{
    xcp_vm vm = api_install("vm");
    xcp_vbd_set vbds = {0};
    xcp_vdi vdi;
    xcp_vdi_record r;

    OK(xcp_vm_get_VBDs(S, &vbds, vm));
    OK(xcp_vbd_get_VDI(S, &vdi, vbds.items[0]));
    OK(xcp_vm_destroy(S, vm));
    xcp_vdi_record_init(&r);
    OK(xcp_vdi_get_record(S, &r, vdi));
    cr_assert_eq(r.VBDs.n, 0);
    xcp_vdi_record_dispose(&r);
    xcp_vbd_set_dispose(&vbds);
}

Test(vm_lifecycle, full_cycle_twice)
{
    xcp_vm vm = api_install("vm");
    int i;

    for (i = 0; i < 2; i++) {
        OK(xcp_vm_start(S, vm, false, false));
        OK(xcp_vm_pause(S, vm));
        OK(xcp_vm_unpause(S, vm));
        OK(xcp_vm_suspend(S, vm));
        OK(xcp_vm_resume(S, vm, false, false));
        OK(xcp_vm_clean_reboot(S, vm));
        OK(xcp_vm_clean_shutdown(S, vm));
        assert_halted_cleanly(vm);
    }
    cr_assert_eq(api_count_vdis(XCP_VDI_TYPE_SUSPEND), 0);
}

/* ---- wrong state: VM_BAD_POWER_STATE [vm, expected, actual] ------------- */

Test(vm_bad_power_state, start_when_running)
{
    xcp_vm vm = running_vm();

    assert_error(xcp_vm_start(S, vm, false, false), "VM_BAD_POWER_STATE",
                 vm.ref, "halted", "running");
    assert_no_current_ops(vm);
}

Test(vm_bad_power_state, start_when_paused)
{
    xcp_vm vm = paused_vm();

    assert_error(xcp_vm_start(S, vm, false, false), "VM_BAD_POWER_STATE",
                 vm.ref, "halted", "paused");
}

Test(vm_bad_power_state, start_when_suspended)
{
    xcp_vm vm = suspended_vm();

    assert_error(xcp_vm_start(S, vm, false, false), "VM_BAD_POWER_STATE",
                 vm.ref, "halted", "suspended");
}

Test(vm_bad_power_state, start_on_when_running)
{
    xcp_vm vm = running_vm();

    assert_error(xcp_vm_start_on(S, vm, api_host(), false, false),
                 "VM_BAD_POWER_STATE", vm.ref, "halted", "running");
}

Test(vm_bad_power_state, pause_when_halted)
{
    xcp_vm vm = api_install("vm");

    assert_error(xcp_vm_pause(S, vm), "VM_BAD_POWER_STATE", vm.ref,
                 "running", "halted");
}

Test(vm_bad_power_state, pause_when_paused)
{
    xcp_vm vm = paused_vm();

    assert_error(xcp_vm_pause(S, vm), "VM_BAD_POWER_STATE", vm.ref,
                 "running", "paused");
}

Test(vm_bad_power_state, unpause_when_running)
{
    xcp_vm vm = running_vm();

    assert_error(xcp_vm_unpause(S, vm), "VM_BAD_POWER_STATE", vm.ref,
                 "paused", "running");
}

Test(vm_bad_power_state, unpause_when_halted)
{
    xcp_vm vm = api_install("vm");

    assert_error(xcp_vm_unpause(S, vm), "VM_BAD_POWER_STATE", vm.ref,
                 "paused", "halted");
}

Test(vm_bad_power_state, resume_when_halted)
{
    xcp_vm vm = api_install("vm");

    assert_error(xcp_vm_resume(S, vm, false, false), "VM_BAD_POWER_STATE",
                 vm.ref, "suspended", "halted");
}

Test(vm_bad_power_state, resume_when_running)
{
    xcp_vm vm = running_vm();

    assert_error(xcp_vm_resume(S, vm, false, false), "VM_BAD_POWER_STATE",
                 vm.ref, "suspended", "running");
}

Test(vm_bad_power_state, resume_on_when_halted)
{
    xcp_vm vm = api_install("vm");

    assert_error(xcp_vm_resume_on(S, vm, api_host(), false, false),
                 "VM_BAD_POWER_STATE", vm.ref, "suspended", "halted");
}

Test(vm_bad_power_state, suspend_when_paused)
{
    xcp_vm vm = paused_vm();

    assert_error(xcp_vm_suspend(S, vm), "VM_BAD_POWER_STATE", vm.ref,
                 "running", "paused");
}

Test(vm_bad_power_state, suspend_when_halted)
{
    xcp_vm vm = api_install("vm");

    assert_error(xcp_vm_suspend(S, vm), "VM_BAD_POWER_STATE", vm.ref,
                 "running", "halted");
}

Test(vm_bad_power_state, clean_shutdown_when_halted)
{
    xcp_vm vm = api_install("vm");

    assert_error(xcp_vm_clean_shutdown(S, vm), "VM_BAD_POWER_STATE", vm.ref,
                 "running", "halted");
}

Test(vm_bad_power_state, clean_shutdown_when_paused)
{
    xcp_vm vm = paused_vm();

    assert_error(xcp_vm_clean_shutdown(S, vm), "VM_BAD_POWER_STATE", vm.ref,
                 "running", "paused");
}

Test(vm_bad_power_state, clean_reboot_when_halted)
{
    xcp_vm vm = api_install("vm");

    assert_error(xcp_vm_clean_reboot(S, vm), "VM_BAD_POWER_STATE", vm.ref,
                 "running", "halted");
}

Test(vm_bad_power_state, hard_shutdown_when_halted)
{
    xcp_vm vm = api_install("vm");

    assert_error(xcp_vm_hard_shutdown(S, vm), "VM_BAD_POWER_STATE", vm.ref,
                 "paused, running, suspended", "halted");
}

Test(vm_bad_power_state, shutdown_when_halted)
{
    xcp_vm vm = api_install("vm");

    assert_error(xcp_vm_shutdown(S, vm), "VM_BAD_POWER_STATE", vm.ref,
                 "paused, running, suspended", "halted");
}

Test(vm_bad_power_state, hard_reboot_when_halted)
{
    xcp_vm vm = api_install("vm");

    assert_error(xcp_vm_hard_reboot(S, vm), "VM_BAD_POWER_STATE", vm.ref,
                 "paused, running", "halted");
}

Test(vm_bad_power_state, hard_reboot_when_suspended)
{
    xcp_vm vm = suspended_vm();

    assert_error(xcp_vm_hard_reboot(S, vm), "VM_BAD_POWER_STATE", vm.ref,
                 "paused, running", "suspended");
}

Test(vm_bad_power_state, destroy_when_running)
{
    xcp_vm vm = running_vm();

    assert_error(xcp_vm_destroy(S, vm), "VM_BAD_POWER_STATE", vm.ref,
                 "halted, suspended", "running");
    assert_power(vm, XCP_VM_POWER_STATE_RUNNING);
}

Test(vm_bad_power_state, destroy_when_paused)
{
    xcp_vm vm = paused_vm();

    assert_error(xcp_vm_destroy(S, vm), "VM_BAD_POWER_STATE", vm.ref,
                 "halted, suspended", "paused");
}

Test(vm_bad_power_state, clone_when_running)
{
    xcp_vm vm = running_vm();
    xcp_vm out;

    assert_error(xcp_vm_clone(S, &out, vm, "c"), "VM_BAD_POWER_STATE",
                 vm.ref, "halted", "running");
}

Test(vm_bad_power_state, copy_when_running)
{
    xcp_vm vm = running_vm();
    xcp_vm out;
    xcp_sr sr;

    snprintf(sr.ref, sizeof(sr.ref), "%s", XCP_NULL_REF);
    assert_error(xcp_vm_copy(S, &out, vm, "c", sr), "VM_BAD_POWER_STATE",
                 vm.ref, "halted", "running");
}

Test(vm_bad_power_state, clone_when_suspended)
{
    xcp_vm vm = suspended_vm();
    xcp_vm out;

    assert_error(xcp_vm_clone(S, &out, vm, "c"), "VM_BAD_POWER_STATE",
                 vm.ref, "halted", "suspended");
}

Test(vm_bad_power_state, make_running_vm_a_template_fails)
{
    xcp_vm vm = running_vm();
    bool tmpl = true;

    assert_error(xcp_vm_set_is_a_template(S, vm, true), "VM_BAD_POWER_STATE",
                 vm.ref, "halted", "running");
    OK(xcp_vm_get_is_a_template(S, &tmpl, vm));
    cr_assert(!tmpl);
}

Test(vm_bad_power_state, start_on_disabled_host_fails_host_disabled)
{
    xcp_vm vm = api_install("vm");
    xcp_host h = api_host();

    OK(xcp_host_disable(S, h, false));
    assert_error(xcp_vm_start(S, vm, false, false), "HOST_DISABLED", h.ref);
    assert_power(vm, XCP_VM_POWER_STATE_HALTED);
    assert_no_current_ops(vm);
    OK(xcp_host_enable(S, h));
    OK(xcp_vm_start(S, vm, false, false));
}

/* A host alone: every running VM prevents its evacuation, as XAPI's
 * [NO_HOSTS_AVAILABLE, vm]; the control domain does not. */
Test(vm_bad_power_state, prevent_evacuation_alone)
{
    xcp_vm vm = running_vm();
    xcp_host h = api_host();
    xcp_value m;
    const xcp_value *why;
    char want[300];

    OK(xcp_host_get_vms_which_prevent_evacuation(S, &m, h));
    cr_assert_eq(m.kind, XCP_VAL_STRUCT);
    cr_assert_eq(m.u.st.n, 1);
    cr_assert_str_eq(m.u.st.keys[0], vm.ref);
    why = &m.u.st.vals[0];
    cr_assert_eq(why->kind, XCP_VAL_ARRAY);
    cr_assert_eq(why->u.arr.n, 2);
    cr_assert_str_eq(why->u.arr.items[0].u.s, "NO_HOSTS_AVAILABLE");
    cr_assert_str_eq(why->u.arr.items[1].u.s, vm.ref);
    xcp_value_dispose(&m);
    snprintf(want, sizeof(want), "NO_HOSTS_AVAILABLE,%s", vm.ref);
    assert_error(xcp_host_assert_can_evacuate(S, h), "CANNOT_EVACUATE_HOST",
                 want);
    OK(xcp_vm_hard_shutdown(S, vm));
    OK(xcp_host_assert_can_evacuate(S, h));
}

/* host.shutdown/reboot want the host disabled (HOST_NOT_DISABLED); an
 * embedded engine cannot power its process off, and says so. */
Test(vm_bad_power_state, host_shutdown_needs_disabled)
{
    xcp_host h = api_host();

    assert_error(xcp_host_shutdown(S, h), "HOST_NOT_DISABLED");
    assert_error(xcp_host_reboot(S, h), "HOST_NOT_DISABLED");
    OK(xcp_host_disable(S, h, true));
    assert_error(xcp_host_shutdown(S, h), "NOT_IMPLEMENTED",
                 "host.shutdown (embedded engine)");
    OK(xcp_host_enable(S, h));
}

Test(vm_bad_power_state, checkpoint_when_halted)
{
    xcp_vm vm = api_install("vm");
    xcp_vm out;

    assert_error(xcp_vm_checkpoint(S, &out, vm, "cp"), "VM_BAD_POWER_STATE",
                 vm.ref, "paused, running, suspended", "halted");
}

Test(vm_bad_power_state, refused_call_leaves_no_current_operation)
{
    xcp_vm vm = api_install("vm");

    assert_error_name(xcp_vm_pause(S, vm), "VM_BAD_POWER_STATE");
    assert_no_current_ops(vm);
    OK(xcp_vm_start(S, vm, false, false));
    assert_power(vm, XCP_VM_POWER_STATE_RUNNING);
}

/* ---- allowed_operations / current_operations ---------------------------- */

static void assert_ops(xcp_vm vm, const enum xcp_vm_operations *yes,
                       size_t nyes, const enum xcp_vm_operations *no,
                       size_t nno)
{
    xcp_vm_operations_set ops = {0};
    size_t i;

    OK(xcp_vm_get_allowed_operations(S, &ops, vm));
    for (i = 0; i < nyes; i++)
        cr_assert(api_ops_has(&ops, yes[i]), "%s missing from allowed_ops",
                  xcp_vm_operations_to_string(yes[i]));
    for (i = 0; i < nno; i++)
        cr_assert(!api_ops_has(&ops, no[i]), "%s in allowed_ops",
                  xcp_vm_operations_to_string(no[i]));
    xcp_vm_operations_set_dispose(&ops);
}

#define OPS(...) (const enum xcp_vm_operations[]){__VA_ARGS__}, \
    sizeof((const enum xcp_vm_operations[]){__VA_ARGS__}) / \
        sizeof(enum xcp_vm_operations)

Test(vm_allowed_ops, halted_vm_allows_start_clone_copy_destroy)
{
    xcp_vm vm = api_install("vm");

    assert_ops(vm,
               OPS(XCP_VM_OPERATIONS_START, XCP_VM_OPERATIONS_START_ON,
                   XCP_VM_OPERATIONS_CLONE, XCP_VM_OPERATIONS_COPY,
                   XCP_VM_OPERATIONS_DESTROY, XCP_VM_OPERATIONS_SNAPSHOT,
                   XCP_VM_OPERATIONS_EXPORT,
                   XCP_VM_OPERATIONS_CHANGING_DYNAMIC_RANGE),
               OPS(XCP_VM_OPERATIONS_PAUSE, XCP_VM_OPERATIONS_UNPAUSE,
                   XCP_VM_OPERATIONS_SUSPEND, XCP_VM_OPERATIONS_RESUME,
                   XCP_VM_OPERATIONS_CLEAN_SHUTDOWN,
                   XCP_VM_OPERATIONS_HARD_SHUTDOWN,
                   XCP_VM_OPERATIONS_CLEAN_REBOOT,
                   XCP_VM_OPERATIONS_HARD_REBOOT,
                   XCP_VM_OPERATIONS_CHECKPOINT,
                   XCP_VM_OPERATIONS_PROVISION,
                   XCP_VM_OPERATIONS_REVERT));
}

Test(vm_allowed_ops, running_vm_allows_pause_suspend_shutdowns)
{
    xcp_vm vm = running_vm();

    assert_ops(vm,
               OPS(XCP_VM_OPERATIONS_PAUSE, XCP_VM_OPERATIONS_SUSPEND,
                   XCP_VM_OPERATIONS_CLEAN_SHUTDOWN,
                   XCP_VM_OPERATIONS_HARD_SHUTDOWN,
                   XCP_VM_OPERATIONS_CLEAN_REBOOT,
                   XCP_VM_OPERATIONS_HARD_REBOOT,
                   XCP_VM_OPERATIONS_CHECKPOINT,
                   XCP_VM_OPERATIONS_SNAPSHOT,
                   XCP_VM_OPERATIONS_CHANGING_VCPUS_LIVE),
               OPS(XCP_VM_OPERATIONS_START, XCP_VM_OPERATIONS_START_ON,
                   XCP_VM_OPERATIONS_UNPAUSE, XCP_VM_OPERATIONS_RESUME,
                   XCP_VM_OPERATIONS_CLONE, XCP_VM_OPERATIONS_COPY,
                   XCP_VM_OPERATIONS_DESTROY,
                   XCP_VM_OPERATIONS_CHANGING_STATIC_RANGE));
}

Test(vm_allowed_ops, paused_vm_allows_unpause_and_hard_ops)
{
    xcp_vm vm = paused_vm();

    assert_ops(vm,
               OPS(XCP_VM_OPERATIONS_UNPAUSE,
                   XCP_VM_OPERATIONS_HARD_SHUTDOWN,
                   XCP_VM_OPERATIONS_HARD_REBOOT),
               OPS(XCP_VM_OPERATIONS_PAUSE, XCP_VM_OPERATIONS_START,
                   XCP_VM_OPERATIONS_SUSPEND,
                   XCP_VM_OPERATIONS_CLEAN_SHUTDOWN,
                   XCP_VM_OPERATIONS_DESTROY));
}

Test(vm_allowed_ops, suspended_vm_allows_resume_destroy_hard_shutdown)
{
    xcp_vm vm = suspended_vm();

    assert_ops(vm,
               OPS(XCP_VM_OPERATIONS_RESUME, XCP_VM_OPERATIONS_RESUME_ON,
                   XCP_VM_OPERATIONS_HARD_SHUTDOWN,
                   XCP_VM_OPERATIONS_DESTROY),
               OPS(XCP_VM_OPERATIONS_START, XCP_VM_OPERATIONS_PAUSE,
                   XCP_VM_OPERATIONS_UNPAUSE, XCP_VM_OPERATIONS_SUSPEND,
                   XCP_VM_OPERATIONS_CLEAN_SHUTDOWN,
                   XCP_VM_OPERATIONS_HARD_REBOOT));
}

Test(vm_allowed_ops, internal_ops_never_listed)
{
    xcp_vm vm = running_vm();

    assert_ops(vm, NULL, 0,
               OPS(XCP_VM_OPERATIONS_POWER_STATE_RESET,
                   XCP_VM_OPERATIONS_SHUTDOWN,
                   XCP_VM_OPERATIONS_CREATE_TEMPLATE,
                   XCP_VM_OPERATIONS_CHANGING_MEMORY_LIVE,
                   XCP_VM_OPERATIONS_CHANGING_VCPUS,
                   XCP_VM_OPERATIONS_ASSERT_OPERATION_VALID,
                   XCP_VM_OPERATIONS_UPDATE_ALLOWED_OPERATIONS,
                   XCP_VM_OPERATIONS_IMPORT, XCP_VM_OPERATIONS_REVERTING));
}

Test(vm_allowed_ops, follow_every_transition)
{
    xcp_vm vm = api_install("vm");

    OK(xcp_vm_start(S, vm, false, false));
    assert_ops(vm, OPS(XCP_VM_OPERATIONS_PAUSE),
               OPS(XCP_VM_OPERATIONS_START));
    OK(xcp_vm_pause(S, vm));
    assert_ops(vm, OPS(XCP_VM_OPERATIONS_UNPAUSE),
               OPS(XCP_VM_OPERATIONS_PAUSE));
    OK(xcp_vm_unpause(S, vm));
    OK(xcp_vm_suspend(S, vm));
    assert_ops(vm, OPS(XCP_VM_OPERATIONS_RESUME),
               OPS(XCP_VM_OPERATIONS_SUSPEND));
    OK(xcp_vm_hard_shutdown(S, vm));
    assert_ops(vm, OPS(XCP_VM_OPERATIONS_START),
               OPS(XCP_VM_OPERATIONS_RESUME, XCP_VM_OPERATIONS_HARD_SHUTDOWN));
    assert_no_current_ops(vm);
}

Test(vm_allowed_ops, assert_operation_valid_matches_power_state)
{
    xcp_vm vm = api_install("vm");

    OK(xcp_vm_assert_operation_valid(S, vm, XCP_VM_OPERATIONS_START));
    assert_error(xcp_vm_assert_operation_valid(S, vm,
                                               XCP_VM_OPERATIONS_PAUSE),
                 "VM_BAD_POWER_STATE", vm.ref, "running", "halted");
}

Test(vm_allowed_ops, blocked_operation_fails_operation_blocked)
{
    xcp_vm vm = api_install("vm");

    OK(xcp_vm_add_to_blocked_operations(S, vm, XCP_VM_OPERATIONS_START,
                                        "no"));
    assert_error(xcp_vm_start(S, vm, false, false), "OPERATION_BLOCKED",
                 vm.ref, "no");
    assert_ops(vm, NULL, 0, OPS(XCP_VM_OPERATIONS_START));
    OK(xcp_vm_remove_from_blocked_operations(S, vm,
                                             XCP_VM_OPERATIONS_START));
    OK(xcp_vm_start(S, vm, false, false));
}

/*
 * While an Async clean_shutdown waits for a hung guest, current_operations
 * shows {task: "clean_shutdown"}, a conflicting op is refused with
 * OTHER_OPERATION_IN_PROGRESS ["VM", vm, op, task], and hard_shutdown is
 * still allowed (it is compatible with everything but itself).
 */
Test(vm_allowed_ops, running_async_op_shows_in_current_operations)
{
    xcp_vm vm = running_vm();
    xcp_string_map cur = {0};
    xcp_vm_operations_set ops = {0};
    xcp_task t;
    int i;

    api_hang_guests(3000);
    OK(xcp_vm_clean_shutdown_async(S, &t, vm));
    for (i = 0; i < 200; i++) {
        OK(xcp_vm_get_current_operations(S, &cur, vm));
        if (cur.n)
            break;
        xcp_string_map_dispose(&cur);
        nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    }
    cr_assert_eq(cur.n, 1, "the async op never showed up");
    cr_assert_str_eq(cur.items[0].key, t.ref);
    cr_assert_str_eq(cur.items[0].value, "clean_shutdown");
    xcp_string_map_dispose(&cur);

    OK(xcp_vm_get_allowed_operations(S, &ops, vm));
    cr_assert(!api_ops_has(&ops, XCP_VM_OPERATIONS_PAUSE));
    cr_assert(!api_ops_has(&ops, XCP_VM_OPERATIONS_CLEAN_SHUTDOWN));
    cr_assert(api_ops_has(&ops, XCP_VM_OPERATIONS_HARD_SHUTDOWN));
    xcp_vm_operations_set_dispose(&ops);
    assert_error(xcp_vm_pause(S, vm), "OTHER_OPERATION_IN_PROGRESS", "VM",
                 vm.ref, "clean_shutdown", t.ref);

    OK(xcp_vm_hard_shutdown(S, vm));
    assert_power(vm, XCP_VM_POWER_STATE_HALTED);
    xcp_task_wait(S, NULL, t.ref); /* either outcome; it must end */
    assert_power(vm, XCP_VM_POWER_STATE_HALTED);
    assert_no_current_ops(vm);
}

Test(vm_allowed_ops, async_start_task_completes_and_clears_ops)
{
    xcp_vm vm = api_install("vm");
    xcp_task t;

    OK(xcp_vm_start_async(S, &t, vm, false, false));
    cr_assert(!api_is_null(t.ref));
    OK(xcp_task_wait(S, NULL, t.ref));
    assert_power(vm, XCP_VM_POWER_STATE_RUNNING);
    assert_no_current_ops(vm);
}

/* ---- what start and halt change ----------------------------------------- */

Test(vm_start_effects, domid_and_resident_on_follow_power_state)
{
    xcp_vm vm = api_install("vm");
    xcp_host h;

    cr_assert_eq(api_domid(vm), -1);
    OK(xcp_vm_get_resident_on(S, &h, vm));
    cr_assert(api_is_null(h.ref));
    OK(xcp_vm_start(S, vm, false, false));
    cr_assert_geq(api_domid(vm), 1);
    OK(xcp_vm_get_resident_on(S, &h, vm));
    cr_assert_str_eq(h.ref, api_host().ref);
    OK(xcp_vm_hard_shutdown(S, vm));
    cr_assert_eq(api_domid(vm), -1);
    OK(xcp_vm_get_resident_on(S, &h, vm));
    cr_assert(api_is_null(h.ref));
}

Test(vm_start_effects, host_resident_vms_gains_and_loses_vm)
{
    xcp_vm vm = api_install("vm");
    xcp_vm_set rv = {0};

    OK(xcp_host_get_resident_VMs(S, &rv, api_host()));
    cr_assert(!api_vm_set_has(&rv, vm));
    xcp_vm_set_dispose(&rv);
    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_host_get_resident_VMs(S, &rv, api_host()));
    cr_assert(api_vm_set_has(&rv, vm), "resident_VMs lacks the VM");
    xcp_vm_set_dispose(&rv);
    OK(xcp_vm_clean_shutdown(S, vm));
    OK(xcp_host_get_resident_VMs(S, &rv, api_host()));
    cr_assert(!api_vm_set_has(&rv, vm), "resident_VMs still has the VM");
    xcp_vm_set_dispose(&rv);
}

Test(vm_start_effects, vbds_attached_with_device_name)
{
    xcp_vm vm = api_install("vm");
    xcp_vbd_set vbds = {0};
    xcp_vbd_record r;

    OK(xcp_vm_get_VBDs(S, &vbds, vm));
    cr_assert_eq(vbds.n, 1);
    xcp_vbd_record_init(&r);
    OK(xcp_vbd_get_record(S, &r, vbds.items[0]));
    cr_assert(!r.currently_attached);
    cr_assert_str_eq(r.userdevice, "0");
    xcp_vbd_record_dispose(&r);

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vbd_get_record(S, &r, vbds.items[0]));
    cr_assert(r.currently_attached);
    /* The Debian template is HVM: the first disk is hda. */
    cr_assert_str_eq(r.device, "hda");
    xcp_vbd_record_dispose(&r);

    OK(xcp_vm_hard_shutdown(S, vm));
    OK(xcp_vbd_get_record(S, &r, vbds.items[0]));
    cr_assert(!r.currently_attached);
    xcp_vbd_record_dispose(&r);
    xcp_vbd_set_dispose(&vbds);
}

Test(vm_start_effects, pv_vm_disk_is_xvda)
{
    xcp_vm vm = api_install("vm");
    xcp_vbd_set vbds = {0};
    char *dev = NULL;

    OK(xcp_vm_set_domain_type(S, vm, XCP_DOMAIN_TYPE_PV));
    OK(xcp_vm_set_PV_bootloader(S, vm, "pygrub"));
    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_get_VBDs(S, &vbds, vm));
    cr_assert_eq(vbds.n, 1);
    OK(xcp_vbd_get_device(S, &dev, vbds.items[0]));
    cr_assert_str_eq(dev, "xvda");
    xcp_free(dev);
    xcp_vbd_set_dispose(&vbds);
}

Test(vm_start_effects, vifs_attached_while_running)
{
    xcp_vm vm = api_install("vm");
    xcp_vif vif = api_add_vif(vm, "0", NULL);
    bool att = true;

    OK(xcp_vif_get_currently_attached(S, &att, vif));
    cr_assert(!att);
    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vif_get_currently_attached(S, &att, vif));
    cr_assert(att);
    OK(xcp_vm_hard_shutdown(S, vm));
    OK(xcp_vif_get_currently_attached(S, &att, vif));
    cr_assert(!att);
}

Test(vm_start_effects, vm_metrics_set_on_start)
{
    xcp_vm vm = api_install("vm");
    xcp_vm_metrics m;
    xcp_vm_metrics_record r;
    int64_t dmax, vcpus;

    OK(xcp_vm_get_memory_dynamic_max(S, &dmax, vm));
    OK(xcp_vm_get_VCPUs_at_startup(S, &vcpus, vm));
    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_get_metrics(S, &m, vm));
    cr_assert(!api_is_null(m.ref));
    xcp_vm_metrics_record_init(&r);
    OK(xcp_vm_metrics_get_record(S, &r, m));
    cr_assert_gt(r.start_time, 0);
    cr_assert_eq(r.VCPUs_number, vcpus);
    cr_assert_eq(r.memory_actual, dmax);
    cr_assert_eq(r.current_domain_type, XCP_DOMAIN_TYPE_HVM);
    xcp_vm_metrics_record_dispose(&r);
}

Test(vm_start_effects, consoles_created_on_start_destroyed_on_halt)
{
    xcp_vm vm = api_install("vm");
    xcp_console_set cs = {0};
    xcp_console_record cr;
    bool rfb = false, vt100 = false;
    size_t i;

    OK(xcp_vm_get_consoles(S, &cs, vm));
    cr_assert_eq(cs.n, 0);
    xcp_console_set_dispose(&cs);
    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_get_consoles(S, &cs, vm));
    cr_assert_eq(cs.n, 2, "HVM VM has %zu consoles", cs.n);
    for (i = 0; i < cs.n; i++) {
        xcp_console_record_init(&cr);
        OK(xcp_console_get_record(S, &cr, cs.items[i]));
        cr_assert_str_eq(cr.VM.ref, vm.ref);
        cr_assert(strstr(cr.location, cs.items[i].ref) != NULL,
                  "location %s", cr.location);
        rfb |= cr.protocol == XCP_CONSOLE_PROTOCOL_RFB;
        vt100 |= cr.protocol == XCP_CONSOLE_PROTOCOL_VT100;
        xcp_console_record_dispose(&cr);
    }
    cr_assert(rfb && vt100);
    OK(xcp_vm_clean_shutdown(S, vm));
    for (i = 0; i < cs.n; i++) {
        xcp_console_record_init(&cr);
        assert_error(xcp_console_get_record(S, &cr, cs.items[i]),
                     "HANDLE_INVALID", "console", cs.items[i].ref);
    }
    xcp_console_set_dispose(&cs);
    OK(xcp_vm_get_consoles(S, &cs, vm));
    cr_assert_eq(cs.n, 0);
    xcp_console_set_dispose(&cs);
}

Test(vm_start_effects, host_memory_free_drops_while_running)
{
    xcp_vm vm = api_install("vm");
    xcp_host_metrics hm;
    int64_t before, during, after, smax;

    OK(xcp_host_get_metrics(S, &hm, api_host()));
    OK(xcp_host_metrics_get_memory_free(S, &before, hm));
    OK(xcp_vm_get_memory_static_max(S, &smax, vm));
    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_host_metrics_get_memory_free(S, &during, hm));
    cr_assert_lt(during, before, "memory_free %" PRId64 " -> %" PRId64,
                 before, during);
    cr_assert_geq(before - during, smax / 2,
                  "memory_free dropped only %" PRId64, before - during);
    OK(xcp_vm_hard_shutdown(S, vm));
    OK(xcp_host_metrics_get_memory_free(S, &after, hm));
    cr_assert_eq(after, before);
}

Test(vm_start_effects, halt_resets_metrics)
{
    xcp_vm vm = running_vm();
    xcp_vm_metrics m;
    int64_t v = -1;

    OK(xcp_vm_hard_shutdown(S, vm));
    OK(xcp_vm_get_metrics(S, &m, vm));
    OK(xcp_vm_metrics_get_memory_actual(S, &v, m));
    cr_assert_eq(v, 0);
}
