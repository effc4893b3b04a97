/*
 * tests/api/test_persistence.c - what survives closing the session and
 * opening a new one on the same state directory: records and their
 * edits, refs, running/paused/suspended VMs (domains outlive the
 * toolstack, so a running VM keeps its domid), no duplicated default
 * templates, and reconciliation with domains that changed meanwhile.
 */
#include <unistd.h>

#include "helpers.h"

TestSuite(persistence, .init = api_setup, .fini = api_teardown);

static size_t count_default_templates(void)
{
    xcp_vm_record_map all = {0};
    size_t i, n = 0;

    OK(xcp_vm_get_all_records(S, &all));
    for (i = 0; i < all.n; i++)
        n += all.records[i].is_default_template;
    xcp_vm_record_map_dispose(&all);
    return n;
}

Test(persistence, records_and_edits_survive_reopen)
{
    xcp_vm vm = api_install("persistent");
    xcp_vm_record r;

    OK(xcp_vm_set_name_description(S, vm, "kept"));
    OK(xcp_vm_add_to_other_config(S, vm, "k", "v"));
    OK(xcp_vm_add_tags(S, vm, "t1"));
    OK(xcp_vm_set_memory_limits(S, vm, 256 * MiB, 768 * MiB, 512 * MiB,
                                768 * MiB));
    api_reopen();
    xcp_vm_record_init(&r);
    OK(xcp_vm_get_record(S, &r, vm));
    cr_assert_str_eq(r.name_label, "persistent");
    cr_assert_str_eq(r.name_description, "kept");
    cr_assert_str_eq(xcp_string_map_get(&r.other_config, "k"), "v");
    cr_assert_eq(r.tags.n, 1);
    cr_assert_str_eq(r.tags.items[0], "t1");
    cr_assert_eq(r.memory_static_max, 768 * MiB);
    cr_assert_eq(r.memory_dynamic_min, 512 * MiB);
    cr_assert_eq(r.VBDs.n, 1);
    cr_assert(!r.is_a_template);
    xcp_vm_record_dispose(&r);
}

Test(persistence, refs_of_host_pool_sr_stable)
{
    xcp_host h = api_host();
    xcp_pool p = api_pool();
    xcp_sr sr = api_default_sr();
    xcp_network n = api_network();

    api_reopen();
    cr_assert_str_eq(api_host().ref, h.ref);
    cr_assert_str_eq(api_pool().ref, p.ref);
    cr_assert_str_eq(api_default_sr().ref, sr.ref);
    cr_assert_str_eq(api_network().ref, n.ref);
}

Test(persistence, templates_not_duplicated)
{
    xcp_vm_set all = {0};
    size_t n;
    int i;

    OK(xcp_vm_get_all(S, &all));
    n = all.n;
    xcp_vm_set_dispose(&all);
    for (i = 0; i < 3; i++)
        api_reopen();
    cr_assert_eq(count_default_templates(), 5);
    OK(xcp_vm_get_all(S, &all));
    cr_assert_eq(all.n, n);
    xcp_vm_set_dispose(&all);
    api_template(T_DEBIAN); /* still exactly one of each */
    api_template(T_OTHER);
}

Test(persistence, single_host_pool_sr_after_reopen)
{
    xcp_sr_set srs = {0}, srs2 = {0};

    OK(xcp_sr_get_all(S, &srs));
    api_reopen();
    api_host();
    api_pool();
    OK(xcp_sr_get_all(S, &srs2));
    cr_assert_eq(srs.n, srs2.n);
    xcp_sr_set_dispose(&srs);
    xcp_sr_set_dispose(&srs2);
}

Test(persistence, running_vm_still_running_with_same_domid)
{
    xcp_vm vm = api_install("vm");
    xcp_host h;
    xcp_vm_set rv = {0};
    int64_t d;

    OK(xcp_vm_start(S, vm, false, false));
    d = api_domid(vm);
    api_reopen();
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
    cr_assert_eq(api_domid(vm), d);
    OK(xcp_vm_get_resident_on(S, &h, vm));
    cr_assert_str_eq(h.ref, api_host().ref);
    OK(xcp_host_get_resident_VMs(S, &rv, api_host()));
    cr_assert(api_vm_set_has(&rv, vm));
    xcp_vm_set_dispose(&rv);
    /* And it can still be driven. */
    OK(xcp_vm_clean_shutdown(S, vm));
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_HALTED);
}

Test(persistence, new_domid_after_reopen_is_fresh)
{
    xcp_vm a = api_install("a"), b = api_install("b");
    int64_t da;

    OK(xcp_vm_start(S, a, false, false));
    da = api_domid(a);
    api_reopen();
    OK(xcp_vm_start(S, b, false, false));
    cr_assert_neq(api_domid(b), da);
    cr_assert_eq(api_domid(a), da);
}

Test(persistence, paused_vm_still_paused)
{
    xcp_vm vm = api_install("vm");
    int64_t d;

    OK(xcp_vm_start(S, vm, true, false));
    d = api_domid(vm);
    api_reopen();
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_PAUSED);
    cr_assert_eq(api_domid(vm), d);
    OK(xcp_vm_unpause(S, vm));
}

Test(persistence, suspended_vm_resumes_after_reopen)
{
    xcp_vm vm = api_install("vm");
    xcp_vdi sv;

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_suspend(S, vm));
    api_reopen();
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_SUSPENDED);
    OK(xcp_vm_get_suspend_VDI(S, &sv, vm));
    cr_assert(!api_is_null(sv.ref));
    OK(xcp_vm_resume(S, vm, false, false));
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
}

Test(persistence, running_vm_consoles_and_devices_survive)
{
    xcp_vm vm = api_install("vm");
    xcp_console_set cs = {0};
    xcp_vbd_set vbds = {0};
    bool att = false;

    OK(xcp_vm_start(S, vm, false, false));
    api_reopen();
    OK(xcp_vm_get_consoles(S, &cs, vm));
    cr_assert_eq(cs.n, 2);
    xcp_console_set_dispose(&cs);
    OK(xcp_vm_get_VBDs(S, &vbds, vm));
    OK(xcp_vbd_get_currently_attached(S, &att, vbds.items[0]));
    cr_assert(att);
    xcp_vbd_set_dispose(&vbds);
}

Test(persistence, destroyed_objects_stay_gone)
{
    xcp_vm vm = api_install("vm");
    xcp_vm_record r;

    OK(xcp_vm_destroy(S, vm));
    api_reopen();
    xcp_vm_record_init(&r);
    assert_error(xcp_vm_get_record(S, &r, vm), "HANDLE_INVALID", "VM",
                 vm.ref);
}

Test(persistence, refused_call_changes_nothing_on_disk)
{
    xcp_vm vm = api_install("vm");

    assert_error_name(xcp_vm_set_memory_limits(S, vm, 1 * GiB, 512 * MiB,
                                               512 * MiB, 512 * MiB),
                      "MEMORY_CONSTRAINT_VIOLATION");
    api_reopen();
    {
        int64_t smax = 0;
        OK(xcp_vm_get_memory_static_max(S, &smax, vm));
        cr_assert_eq(smax, 1 * GiB);
    }
}

Test(persistence, domain_crashed_while_closed_is_reconciled)
{
    xcp_vm vm = api_install("vm");
    char fault[32];

    OK(xcp_vm_set_actions_after_crash(S, vm,
                                      XCP_ON_CRASH_BEHAVIOUR_DESTROY));
    OK(xcp_vm_start(S, vm, false, false));
    snprintf(fault, sizeof(fault), "crash=%" PRId64, api_domid(vm));
    api_reopen_with_faults(fault);
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_HALTED);
    cr_assert_eq(api_domid(vm), -1);
    OK(xcp_vm_start(S, vm, false, false));
}

Test(persistence, many_changes_replay_in_order)
{
    xcp_vm vm = api_install("vm");
    char name[32], *got = NULL;
    int i;

    for (i = 0; i < 50; i++) {
        snprintf(name, sizeof(name), "name %d", i);
        OK(xcp_vm_set_name_label(S, vm, name));
    }
    api_reopen();
    OK(xcp_vm_get_name_label(S, &got, vm));
    cr_assert_str_eq(got, "name 49");
    xcp_free(got);
    api_reopen();
    OK(xcp_vm_get_name_label(S, &got, vm));
    cr_assert_str_eq(got, "name 49");
    xcp_free(got);
}

Test(persistence, second_session_in_process_shares_state)
{
    xcp_vm vm = api_install("vm");
    xcp_open_options o;
    xcp_session *s2 = NULL;
    char *name = NULL;

    memset(&o, 0, sizeof(o));
    o.version = XCP_OPEN_OPTIONS_VERSION;
    o.state_dir = api_dir;
    o.hv = "sim";
    OK(xcp_session_open_local(&s2, &o));
    OK(xcp_vm_set_name_label(s2, vm, "via s2"));
    OK(xcp_vm_get_name_label(S, &name, vm));
    cr_assert_str_eq(name, "via s2");
    xcp_free(name);
    cr_assert_str_neq(xcp_session_ref(S), xcp_session_ref(s2));
    xcp_session_close(s2);
    OK(xcp_vm_start(S, vm, false, false));
}

/* Closing the session while an Async call is in flight: no crash, and
 * the next session finds the VM in a definite state with no operation
 * left in current_operations. */
Test(persistence, close_with_async_call_in_flight)
{
    xcp_vm vm = api_install("vm");
    xcp_string_map cur = {0};
    enum xcp_vm_power_state ps;
    xcp_task t;

    OK(xcp_vm_start(S, vm, false, false));
    api_hang_guests(300);
    OK(xcp_vm_clean_shutdown_async(S, &t, vm));
    api_reopen();
    ps = api_power(vm);
    cr_assert(ps == XCP_VM_POWER_STATE_RUNNING ||
                  ps == XCP_VM_POWER_STATE_HALTED,
              "power state %s", xcp_vm_power_state_to_string(ps));
    OK(xcp_vm_get_current_operations(S, &cur, vm));
    cr_assert_eq(cur.n, 0, "stale operation %s",
                 cur.n ? cur.items[0].value : "");
    xcp_string_map_dispose(&cur);
    OK(xcp_vm_hard_shutdown(S, vm));
}

/* A state dir that says the host is pooled, on an installation whose
 * cluster module cannot be found, is refused with XAPI's error for a
 * cluster stack the host cannot run, naming where it looked; the state
 * dir stays usable once the role is gone. */
Test(persistence, pooled_state_without_cluster_module_is_refused_by_name)
{
    char path[300];
    xcp_session *s = NULL;
    xcp_open_options o;
    const xcp_error *e;
    FILE *f;

    xcp_session_close(S);
    S = NULL;
    snprintf(path, sizeof(path), "%s/pool-role", api_dir);
    cr_assert_not_null(f = fopen(path, "w"));
    fputs("coordinator 1\n", f);
    fclose(f);
    setenv("XCP_POOL_MODULE_DIR", "/nonexistent/xcp-modules", 1);
    memset(&o, 0, sizeof(o));
    o.version = XCP_OPEN_OPTIONS_VERSION;
    o.state_dir = api_dir;
    o.hv = "sim";
    assert_error_name(xcp_session_open_local(&s, &o),
                      "INVALID_CLUSTER_STACK");
    e = xcp_error_last();
    cr_assert(e->nparams == 1 &&
                  strstr(e->params[0], "/nonexistent/xcp-modules"),
              "the error names the directory: %s",
              e->nparams ? e->params[0] : "(none)");
    cr_assert_null(s);
    unsetenv("XCP_POOL_MODULE_DIR");
    cr_assert_eq(unlink(path), 0);
    api_open();
    cr_assert_eq(api_power(api_install("after")), XCP_VM_POWER_STATE_HALTED);
}
