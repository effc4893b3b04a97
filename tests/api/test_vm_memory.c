/*
 * tests/api/test_vm_memory.c - VM memory and vCPU settings through the
 * public API: the static/dynamic constraint (MEMORY_CONSTRAINT_VIOLATION),
 * which power states each setter accepts, live changes reflected in
 * VM_metrics, host memory accounting and HOST_NOT_ENOUGH_FREE_MEMORY
 * [needed, available] on a small simulated host.
 */
#include "helpers.h"

TestSuite(vm_memory, .init = api_setup, .fini = api_teardown);
TestSuite(vm_vcpus, .init = api_setup, .fini = api_teardown);

/* A 4 GiB host: dom0 takes 1 GiB, Xen 32 MiB; about 2.9 GiB for guests. */
static void small_host_setup(void)
{
    setenv("XCP_SIM_HOST_MEMORY", "4GiB", 1);
    api_setup();
}

TestSuite(host_memory, .init = small_host_setup, .fini = api_teardown);

static const char *const constraint =
    "Memory limits must satisfy: static_min <= dynamic_min <= dynamic_max "
    "<= static_max";

static int64_t metrics_memory_actual(xcp_vm vm)
{
    xcp_vm_metrics m;
    int64_t v = -1;

    OK(xcp_vm_get_metrics(S, &m, vm));
    OK(xcp_vm_metrics_get_memory_actual(S, &v, m));
    return v;
}

static int64_t metrics_vcpus(xcp_vm vm)
{
    xcp_vm_metrics m;
    int64_t v = -1;

    OK(xcp_vm_get_metrics(S, &m, vm));
    OK(xcp_vm_metrics_get_VCPUs_number(S, &v, m));
    return v;
}

static int64_t host_free(void)
{
    xcp_host_metrics hm;
    int64_t v = -1;

    OK(xcp_host_get_metrics(S, &hm, api_host()));
    OK(xcp_host_metrics_get_memory_free(S, &v, hm));
    return v;
}

static void get_mem(xcp_vm vm, int64_t out[4])
{
    OK(xcp_vm_get_memory_static_min(S, &out[0], vm));
    OK(xcp_vm_get_memory_dynamic_min(S, &out[1], vm));
    OK(xcp_vm_get_memory_dynamic_max(S, &out[2], vm));
    OK(xcp_vm_get_memory_static_max(S, &out[3], vm));
}

/* ---- constraints and setters -------------------------------------------- */

Test(vm_memory, set_memory_limits_on_halted_vm_persists)
{
    xcp_vm vm = api_install("vm");
    int64_t m[4];

    OK(xcp_vm_set_memory_limits(S, vm, 128 * MiB, 1 * GiB, 256 * MiB,
                                512 * MiB));
    get_mem(vm, m);
    cr_assert_eq(m[0], 128 * MiB);
    cr_assert_eq(m[1], 256 * MiB);
    cr_assert_eq(m[2], 512 * MiB);
    cr_assert_eq(m[3], 1 * GiB);
}

Test(vm_memory, dynamic_range_above_static_max_fails)
{
    xcp_vm vm = api_install("vm");
    int64_t before[4], after[4];

    get_mem(vm, before);
    assert_error(xcp_vm_set_memory_dynamic_range(S, vm, 512 * MiB, 2 * GiB),
                 "MEMORY_CONSTRAINT_VIOLATION", constraint);
    get_mem(vm, after);
    cr_assert_arr_eq(before, after, sizeof(before));
}

Test(vm_memory, dynamic_range_below_static_min_fails)
{
    xcp_vm vm = api_install("vm");

    assert_error(xcp_vm_set_memory_dynamic_range(S, vm, 64 * MiB, 512 * MiB),
                 "MEMORY_CONSTRAINT_VIOLATION", constraint);
}

Test(vm_memory, dynamic_range_min_above_max_fails)
{
    xcp_vm vm = api_install("vm");

    assert_error(xcp_vm_set_memory_dynamic_range(S, vm, 1 * GiB, 512 * MiB),
                 "MEMORY_CONSTRAINT_VIOLATION", constraint);
}

Test(vm_memory, memory_limits_out_of_order_fail)
{
    xcp_vm vm = api_install("vm");

    assert_error(xcp_vm_set_memory_limits(S, vm, 512 * MiB, 256 * MiB,
                                          256 * MiB, 256 * MiB),
                 "MEMORY_CONSTRAINT_VIOLATION", constraint);
    assert_error(xcp_vm_set_memory_static_range(S, vm, 128 * MiB, 512 * MiB),
                 "MEMORY_CONSTRAINT_VIOLATION", constraint);
    assert_error(xcp_vm_set_memory_static_max(S, vm, 512 * MiB),
                 "MEMORY_CONSTRAINT_VIOLATION", constraint);
}

Test(vm_memory, set_memory_sets_all_four)
{
    xcp_vm vm = api_install("vm");
    int64_t m[4];

    OK(xcp_vm_set_memory(S, vm, 768 * MiB));
    get_mem(vm, m);
    cr_assert_eq(m[1], 768 * MiB);
    cr_assert_eq(m[2], 768 * MiB);
    cr_assert_eq(m[3], 768 * MiB);
    cr_assert_leq(m[0], 768 * MiB);
}

Test(vm_memory, dynamic_range_on_halted_vm_persists)
{
    xcp_vm vm = api_install("vm");
    int64_t m[4];

    OK(xcp_vm_set_memory_dynamic_range(S, vm, 512 * MiB, 768 * MiB));
    get_mem(vm, m);
    cr_assert_eq(m[1], 512 * MiB);
    cr_assert_eq(m[2], 768 * MiB);
}

Test(vm_memory, live_dynamic_range_updates_memory_actual)
{
    xcp_vm vm = api_install("vm");

    OK(xcp_vm_set_memory_limits(S, vm, 256 * MiB, 1 * GiB, 1 * GiB, 1 * GiB));
    OK(xcp_vm_start(S, vm, false, false));
    cr_assert_eq(metrics_memory_actual(vm), 1 * GiB);
    OK(xcp_vm_set_memory_dynamic_range(S, vm, 512 * MiB, 512 * MiB));
    cr_assert_eq(metrics_memory_actual(vm), 512 * MiB);
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
}

Test(vm_memory, live_dynamic_range_gives_memory_back_to_host)
{
    xcp_vm vm = api_install("vm");
    int64_t before, after;

    OK(xcp_vm_start(S, vm, false, false));
    before = host_free();
    OK(xcp_vm_set_memory_dynamic_range(S, vm, 512 * MiB, 512 * MiB));
    after = host_free();
    cr_assert_gt(after, before, "memory_free %" PRId64 " -> %" PRId64,
                 before, after);
}

Test(vm_memory, live_set_memory_dynamic_max_updates_memory_actual)
{
    xcp_vm vm = api_install("vm");

    OK(xcp_vm_set_memory_limits(S, vm, 256 * MiB, 1 * GiB, 512 * MiB,
                                1 * GiB));
    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_set_memory_dynamic_max(S, vm, 768 * MiB));
    cr_assert_eq(metrics_memory_actual(vm), 768 * MiB);
}

Test(vm_memory, set_memory_limits_on_running_vm_fails)
{
    xcp_vm vm = api_install("vm");

    OK(xcp_vm_start(S, vm, false, false));
    assert_error(xcp_vm_set_memory_limits(S, vm, 256 * MiB, 1 * GiB,
                                          512 * MiB, 512 * MiB),
                 "VM_BAD_POWER_STATE", vm.ref, "halted", "running");
}

Test(vm_memory, set_memory_static_max_on_running_vm_fails)
{
    xcp_vm vm = api_install("vm");

    OK(xcp_vm_start(S, vm, false, false));
    assert_error(xcp_vm_set_memory_static_max(S, vm, 2 * GiB),
                 "VM_BAD_POWER_STATE", vm.ref, "halted", "running");
    assert_error(xcp_vm_set_memory_static_range(S, vm, 256 * MiB, 2 * GiB),
                 "VM_BAD_POWER_STATE", vm.ref, "halted", "running");
}

Test(vm_memory, dynamic_range_on_paused_vm_fails)
{
    xcp_vm vm = api_install("vm");

    OK(xcp_vm_start(S, vm, true, false));
    assert_error(xcp_vm_set_memory_dynamic_range(S, vm, 512 * MiB, 512 * MiB),
                 "VM_BAD_POWER_STATE", vm.ref, "halted, running", "paused");
}

Test(vm_memory, dynamic_range_on_suspended_vm_fails)
{
    xcp_vm vm = api_install("vm");

    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_suspend(S, vm));
    assert_error(xcp_vm_set_memory_dynamic_range(S, vm, 512 * MiB, 512 * MiB),
                 "VM_BAD_POWER_STATE", vm.ref, "halted, running", "suspended");
}

Test(vm_memory, vm_create_with_bad_memory_fails)
{
    xcp_vm_record r;
    xcp_vm vm;

    xcp_vm_record_init(&r);
    r.name_label = (char *)"bad";
    r.memory_static_min = 512 * MiB;
    r.memory_dynamic_min = 256 * MiB;
    r.memory_dynamic_max = 256 * MiB;
    r.memory_static_max = 256 * MiB;
    r.VCPUs_max = 1;
    r.VCPUs_at_startup = 1;
    assert_error(xcp_vm_create(S, &vm, &r), "MEMORY_CONSTRAINT_VIOLATION",
                 constraint);
}

/* ---- host memory -------------------------------------------------------- */

Test(host_memory, start_fails_when_host_is_full)
{
    xcp_vm vms[8];
    const xcp_error *e;
    int64_t free_before, needed, available, target;
    int i, rc = 0;

    for (i = 0; i < 8; i++) {
        char name[16];
        snprintf(name, sizeof(name), "vm%d", i);
        vms[i] = api_install(name);
        free_before = host_free();
        rc = xcp_vm_start(S, vms[i], false, false);
        if (rc < 0)
            break;
    }
    /* 1 GiB guests on a 4 GiB host: the third one cannot fit. */
    cr_assert_eq(i, 2, "%d VMs started", i);
    assert_error(rc, "HOST_NOT_ENOUGH_FREE_MEMORY", NULL, NULL);
    e = xcp_error_last();
    needed = strtoll(e->params[0], NULL, 10);
    available = strtoll(e->params[1], NULL, 10);
    OK(xcp_vm_get_memory_dynamic_max(S, &target, vms[i]));
    cr_assert_geq(needed, target, "needed %" PRId64 " < target %" PRId64,
                  needed, target);
    cr_assert_lt(needed, target + 256 * MiB, "needed %" PRId64, needed);
    cr_assert_lt(available, needed, "available %" PRId64 " >= needed %"
                 PRId64, available, needed);
    cr_assert_eq(available, free_before,
                 "available %" PRId64 " != host memory_free %" PRId64,
                 available, free_before);
    /* Nothing changed for the refused VM. */
    cr_assert_eq(api_power(vms[i]), XCP_VM_POWER_STATE_HALTED);
    cr_assert_eq(api_domid(vms[i]), -1);
    cr_assert_eq(host_free(), free_before);
    {
        xcp_string_map cur = {0};
        OK(xcp_vm_get_current_operations(S, &cur, vms[i]));
        cr_assert_eq(cur.n, 0);
        xcp_string_map_dispose(&cur);
    }
    /* Free some memory and it starts. */
    OK(xcp_vm_hard_shutdown(S, vms[0]));
    OK(xcp_vm_start(S, vms[i], false, false));
}

Test(host_memory, smaller_vm_fits_where_bigger_does_not)
{
    xcp_vm a = api_install("a"), b = api_install("b");

    OK(xcp_vm_set_memory_limits(S, a, 256 * MiB, 2 * GiB, 2 * GiB, 2 * GiB));
    OK(xcp_vm_set_memory_limits(S, b, 256 * MiB, 2 * GiB, 2 * GiB, 2 * GiB));
    OK(xcp_vm_start(S, a, false, false));
    assert_error(xcp_vm_start(S, b, false, false),
                 "HOST_NOT_ENOUGH_FREE_MEMORY", NULL, NULL);
    OK(xcp_vm_set_memory_limits(S, b, 256 * MiB, 512 * MiB, 512 * MiB,
                                512 * MiB));
    OK(xcp_vm_start(S, b, false, false));
}

Test(host_memory, resume_on_full_host_reports_sane_figures)
{
    xcp_vm a = api_install("a"), b = api_install("b");
    const xcp_error *e;
    int64_t needed, available;

    OK(xcp_vm_set_memory_limits(S, a, 256 * MiB, 2 * GiB, 2 * GiB, 2 * GiB));
    OK(xcp_vm_set_memory_limits(S, b, 256 * MiB, 2 * GiB, 2 * GiB, 2 * GiB));
    OK(xcp_vm_start(S, a, false, false));
    OK(xcp_vm_suspend(S, a));
    OK(xcp_vm_start(S, b, false, false));
    assert_error(xcp_vm_resume(S, a, false, false),
                 "HOST_NOT_ENOUGH_FREE_MEMORY", NULL, NULL);
    e = xcp_error_last();
    needed = strtoll(e->params[0], NULL, 10);
    available = strtoll(e->params[1], NULL, 10);
    cr_assert_lt(available, needed);
    cr_assert_eq(api_power(a), XCP_VM_POWER_STATE_SUSPENDED);
}

Test(host_memory, compute_free_memory_matches_metrics)
{
    int64_t f = -1;

    OK(xcp_host_compute_free_memory(S, &f, api_host()));
    cr_assert_eq(f, host_free());
    cr_assert_gt(f, 2 * GiB);
    cr_assert_lt(f, 4 * GiB);
}

/* ---- vCPUs -------------------------------------------------------------- */

Test(vm_vcpus, set_vcpus_number_live_within_max_updates_metrics)
{
    xcp_vm vm = api_install("vm");
    int64_t v = 0;

    OK(xcp_vm_set_VCPUs_max(S, vm, 4));
    OK(xcp_vm_start(S, vm, false, false));
    cr_assert_eq(metrics_vcpus(vm), 1);
    OK(xcp_vm_set_VCPUs_number_live(S, vm, 3));
    cr_assert_eq(metrics_vcpus(vm), 3);
    OK(xcp_vm_get_VCPUs_at_startup(S, &v, vm));
    cr_assert_eq(v, 3);
}

Test(vm_vcpus, set_vcpus_number_live_above_max_fails)
{
    xcp_vm vm = api_install("vm");

    OK(xcp_vm_set_VCPUs_max(S, vm, 2));
    OK(xcp_vm_start(S, vm, false, false));
    assert_error(xcp_vm_set_VCPUs_number_live(S, vm, 3),
                 "OPERATION_NOT_ALLOWED",
                 "The number of vCPUs may not exceed VCPUs_max");
    cr_assert_eq(metrics_vcpus(vm), 1);
}

Test(vm_vcpus, set_vcpus_number_live_on_halted_vm_fails)
{
    xcp_vm vm = api_install("vm");

    assert_error(xcp_vm_set_VCPUs_number_live(S, vm, 1),
                 "VM_BAD_POWER_STATE", vm.ref, "running", "halted");
}

Test(vm_vcpus, set_vcpus_max_on_running_vm_fails)
{
    xcp_vm vm = api_install("vm");

    OK(xcp_vm_start(S, vm, false, false));
    assert_error(xcp_vm_set_VCPUs_max(S, vm, 4), "VM_BAD_POWER_STATE",
                 vm.ref, "halted", "running");
    assert_error(xcp_vm_set_VCPUs_at_startup(S, vm, 1), "VM_BAD_POWER_STATE",
                 vm.ref, "halted", "running");
}

Test(vm_vcpus, vcpus_at_startup_above_max_fails)
{
    xcp_vm vm = api_install("vm");

    assert_error(xcp_vm_set_VCPUs_at_startup(S, vm, 2), "INVALID_VALUE",
                 "VCPUs_at_startup", "2");
    assert_error(xcp_vm_set_VCPUs_at_startup(S, vm, 0), "INVALID_VALUE",
                 "VCPUs_at_startup", "0");
}

Test(vm_vcpus, vcpus_max_below_at_startup_fails)
{
    xcp_vm vm = api_install("vm");

    OK(xcp_vm_set_VCPUs_max(S, vm, 4));
    OK(xcp_vm_set_VCPUs_at_startup(S, vm, 3));
    assert_error(xcp_vm_set_VCPUs_max(S, vm, 2), "INVALID_VALUE",
                 "VCPUs_max", "2");
}

Test(vm_vcpus, start_uses_vcpus_at_startup)
{
    xcp_vm vm = api_install("vm");

    OK(xcp_vm_set_VCPUs_max(S, vm, 4));
    OK(xcp_vm_set_VCPUs_at_startup(S, vm, 2));
    OK(xcp_vm_start(S, vm, false, false));
    cr_assert_eq(metrics_vcpus(vm), 2);
}

/* Growing a running VM's balloon past the host's free memory is refused
 * with figures, like a start. */
Test(host_memory, live_growth_beyond_free_memory_fails_with_figures)
{
    xcp_vm a = api_install("a"), b = api_install("b");
    const xcp_error *e;
    int64_t needed, available, actual;

    OK(xcp_vm_set_memory_limits(S, a, 256 * MiB, 2 * GiB, 512 * MiB,
                                512 * MiB));
    OK(xcp_vm_set_memory_limits(S, b, 256 * MiB, 2 * GiB, 2 * GiB, 2 * GiB));
    OK(xcp_vm_start(S, a, false, false));
    OK(xcp_vm_start(S, b, false, false));
    assert_error(xcp_vm_set_memory_dynamic_range(S, a, 2 * GiB, 2 * GiB),
                 "HOST_NOT_ENOUGH_FREE_MEMORY", NULL, NULL);
    e = xcp_error_last();
    cr_assert(e->params[0][0] && e->params[1][0],
              "empty figures: [\"%s\", \"%s\"]", e->params[0], e->params[1]);
    needed = strtoll(e->params[0], NULL, 10);
    available = strtoll(e->params[1], NULL, 10);
    cr_assert_lt(available, needed);
    actual = metrics_memory_actual(a);
    cr_assert_eq(actual, 512 * MiB);
    {
        int64_t dmax = 0;
        OK(xcp_vm_get_memory_dynamic_max(S, &dmax, a));
        cr_assert_eq(dmax, 512 * MiB, "refused change was recorded");
    }
}
