/*
 * tests/api/test_vm_domain.c - how a VM's domain is described and what
 * its metrics say, with XAPI's semantics: domain_type and HVM_boot_policy
 * derived from each other (VM.set_HVM_boot_policy, VM.set_domain_type,
 * VM.create), VM_metrics.current_domain_type following the domain
 * (unspecified when Halted, kept while Suspended), and VM_metrics read from
 * what the hypervisor reports (a balloon that is still moving), and
 * VM.pool_migrate to the VM's own host.
 */
#include "helpers.h"

#include <time.h>

/* Guest kernels may come from the test's state directory. */
static void boot_mode_setup(void)
{
    api_setup();
    setenv("XCP_PV_KERNEL_DIRS", api_dir, 1);
}

static void boot_mode_teardown(void)
{
    api_teardown();
    unsetenv("XCP_PV_KERNEL_DIRS");
}

TestSuite(boot_mode, .init = boot_mode_setup, .fini = boot_mode_teardown);
TestSuite(vm_metrics, .init = api_setup, .fini = api_teardown);

/* A slow balloon: 64 MiB per second of guest running time. */
static void slow_balloon_setup(void)
{
    setenv("XCP_SIM_BALLOON_RATE", "64MiB", 1);
    api_setup();
}

static void slow_balloon_teardown(void)
{
    api_teardown();
    unsetenv("XCP_SIM_BALLOON_RATE");
}

TestSuite(balloon, .init = slow_balloon_setup, .fini = slow_balloon_teardown);

static enum xcp_domain_type domain_type(xcp_vm vm)
{
    enum xcp_domain_type t = XCP_DOMAIN_TYPE__UNKNOWN;

    OK(xcp_vm_get_domain_type(S, &t, vm));
    return t;
}

static char *boot_policy(xcp_vm vm)
{
    char *p = NULL;

    OK(xcp_vm_get_HVM_boot_policy(S, &p, vm));
    return p;
}

static void assert_policy(xcp_vm vm, const char *want)
{
    char *p = boot_policy(vm);

    cr_assert_str_eq(p, want);
    xcp_free(p);
}

static xcp_vm_metrics metrics(xcp_vm vm)
{
    xcp_vm_metrics m;

    OK(xcp_vm_get_metrics(S, &m, vm));
    return m;
}

static enum xcp_domain_type current_type(xcp_vm vm)
{
    enum xcp_domain_type t = XCP_DOMAIN_TYPE__UNKNOWN;

    OK(xcp_vm_metrics_get_current_domain_type(S, &t, metrics(vm)));
    return t;
}

static int64_t memory_actual(xcp_vm vm)
{
    int64_t v = -1;

    OK(xcp_vm_metrics_get_memory_actual(S, &v, metrics(vm)));
    return v;
}

/* ---- domain_type <-> HVM_boot_policy ------------------------------------ */

/* Direct boot from a kernel file in the allowed directory. */
static void give_kernel(xcp_vm vm)
{
    char path[300];
    FILE *f;

    snprintf(path, sizeof(path), "%s/vmlinuz", api_dir);
    f = fopen(path, "w");
    cr_assert(f != NULL);
    fputs("kernel\n", f);
    fclose(f);
    OK(xcp_vm_set_PV_kernel(S, vm, path));
}

/* The user: "Other install media", HVM-boot-policy="" for PV
 * direct boot. The VM must then boot PV, not look for a device model. */
Test(boot_mode, clearing_hvm_boot_policy_makes_the_vm_pv)
{
    xcp_vm vm = api_install_from(T_OTHER, "pv");
    bool hvm = true;

    cr_assert_eq(domain_type(vm), XCP_DOMAIN_TYPE_HVM);
    OK(xcp_vm_set_HVM_boot_policy(S, vm, ""));
    cr_assert_eq(domain_type(vm), XCP_DOMAIN_TYPE_PV);
    give_kernel(vm);
    OK(xcp_vm_start(S, vm, false, false));
    cr_assert_eq(current_type(vm), XCP_DOMAIN_TYPE_PV);
    OK(xcp_vm_metrics_get_hvm(S, &hvm, metrics(vm)));
    cr_assert(!hvm);
}

Test(boot_mode, setting_hvm_boot_policy_makes_the_vm_hvm)
{
    xcp_vm vm = api_install_from(T_OTHER, "vm");

    OK(xcp_vm_set_domain_type(S, vm, XCP_DOMAIN_TYPE_PV));
    OK(xcp_vm_set_HVM_boot_policy(S, vm, "BIOS order"));
    cr_assert_eq(domain_type(vm), XCP_DOMAIN_TYPE_HVM);
    assert_policy(vm, "BIOS order");
}

Test(boot_mode, set_domain_type_derives_hvm_boot_policy)
{
    xcp_vm vm = api_install_from(T_OTHER, "vm");

    OK(xcp_vm_set_domain_type(S, vm, XCP_DOMAIN_TYPE_PV));
    assert_policy(vm, "");
    OK(xcp_vm_set_domain_type(S, vm, XCP_DOMAIN_TYPE_HVM));
    assert_policy(vm, "BIOS order");
    OK(xcp_vm_set_domain_type(S, vm, XCP_DOMAIN_TYPE_PVH));
    assert_policy(vm, "");
    cr_assert_eq(domain_type(vm), XCP_DOMAIN_TYPE_PVH);
}

Test(boot_mode, set_domain_type_unspecified_fails_invalid_value)
{
    xcp_vm vm = api_install_from(T_OTHER, "vm");

    assert_error(xcp_vm_set_domain_type(S, vm, XCP_DOMAIN_TYPE_UNSPECIFIED),
                 "INVALID_VALUE", "domain_type", "unspecified");
    cr_assert_eq(domain_type(vm), XCP_DOMAIN_TYPE_HVM);
    assert_policy(vm, "BIOS order");
}

static xcp_vm create_vm(const char *policy, enum xcp_domain_type t)
{
    xcp_vm_record r;
    xcp_vm vm;

    xcp_vm_record_init(&r);
    r.name_label = (char *)"created";
    r.memory_static_min = r.memory_dynamic_min = 256 * MiB;
    r.memory_dynamic_max = r.memory_static_max = 256 * MiB;
    r.VCPUs_max = r.VCPUs_at_startup = 1;
    r.HVM_boot_policy = (char *)policy;
    r.domain_type = t;
    OK(xcp_vm_create(S, &vm, &r));
    return vm;
}

/* Clients that know only HVM_boot_policy (older XenAPI users). */
Test(boot_mode, create_derives_a_missing_domain_type)
{
    cr_assert_eq(domain_type(create_vm("", XCP_DOMAIN_TYPE_UNSPECIFIED)),
                 XCP_DOMAIN_TYPE_PV);
    cr_assert_eq(domain_type(create_vm("BIOS order",
                                       XCP_DOMAIN_TYPE_UNSPECIFIED)),
                 XCP_DOMAIN_TYPE_HVM);
    /* An explicit type is kept, whatever the policy says. */
    cr_assert_eq(domain_type(create_vm("BIOS order", XCP_DOMAIN_TYPE_PVH)),
                 XCP_DOMAIN_TYPE_PVH);
}

/* current_domain_type: what the domain runs as; unspecified when there is
 * none, kept while Suspended (the VM resumes as that). */
Test(boot_mode, current_domain_type_follows_the_domain)
{
    xcp_vm vm = api_install("vm");

    cr_assert_eq(current_type(vm), XCP_DOMAIN_TYPE_UNSPECIFIED);
    OK(xcp_vm_start(S, vm, false, false));
    cr_assert_eq(current_type(vm), XCP_DOMAIN_TYPE_HVM);
    OK(xcp_vm_suspend(S, vm));
    cr_assert_eq(current_type(vm), XCP_DOMAIN_TYPE_HVM);
    OK(xcp_vm_resume(S, vm, false, false));
    OK(xcp_vm_hard_shutdown(S, vm));
    cr_assert_eq(current_type(vm), XCP_DOMAIN_TYPE_UNSPECIFIED);
    OK(xcp_vm_set_domain_type(S, vm, XCP_DOMAIN_TYPE_PVH));
    give_kernel(vm);
    OK(xcp_vm_start(S, vm, false, false));
    cr_assert_eq(current_type(vm), XCP_DOMAIN_TYPE_PVH);
}

/* ---- VM_metrics are the hypervisor's figures ----------------------------- */

/* The balloon moves at 64 MiB/s of guest time: right after the call the
 * guest still holds (nearly) all its memory, and memory_actual says so;
 * the domain monitor then follows it down to the target. */
Test(balloon, memory_actual_follows_the_balloon_not_the_request)
{
    xcp_vm vm = api_install("vm");
    int64_t actual = 0;
    int i;

    OK(xcp_vm_set_memory_limits(S, vm, 256 * MiB, 1 * GiB, 1 * GiB,
                                1 * GiB));
    OK(xcp_vm_start(S, vm, false, false));
    cr_assert_eq(memory_actual(vm), 1 * GiB);
    OK(xcp_vm_set_memory_dynamic_range(S, vm, 256 * MiB, 256 * MiB));
    actual = memory_actual(vm);
    cr_assert_gt(actual, 256 * MiB,
                 "memory_actual %" PRId64 " is the request, not the balloon",
                 actual);
    /* 768 MiB at 64 MiB/s: about 12 s of guest time; generous bound. */
    for (i = 0; i < 1200 && actual != 256 * MiB; i++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        actual = memory_actual(vm);
    }
    cr_assert_eq(actual, 256 * MiB, "memory_actual stuck at %" PRId64,
                 actual);
}

Test(vm_metrics, vcpus_number_is_what_the_domain_has_online)
{
    xcp_vm vm = api_install("vm");
    int64_t n = -1;

    OK(xcp_vm_set_VCPUs_max(S, vm, 4));
    OK(xcp_vm_set_VCPUs_at_startup(S, vm, 2));
    OK(xcp_vm_start(S, vm, false, false));
    OK(xcp_vm_metrics_get_VCPUs_number(S, &n, metrics(vm)));
    cr_assert_eq(n, 2);
    OK(xcp_vm_set_VCPUs_number_live(S, vm, 4));
    OK(xcp_vm_metrics_get_VCPUs_number(S, &n, metrics(vm)));
    cr_assert_eq(n, 4);
    OK(xcp_vm_hard_shutdown(S, vm));
    OK(xcp_vm_metrics_get_VCPUs_number(S, &n, metrics(vm)));
    cr_assert_eq(n, 0);
}

/* VM.start and VM.resume read nothing back from the driver (on Xen,
 * domain_info is 4+ xenstore reads: 0.4 s of every start under load):
 * VM_metrics are what the domain was built with until the monitor reads
 * it. And a driver that cannot say how a domain is (it did not say the
 * domain is gone) never makes the VM Halted. Before: the read at start
 * failed and left memory_actual 0, and the monitor took the failure for
 * a vanished domain and halted the running VM. */
Test(vm_metrics, start_and_resume_record_the_built_domain_unread)
{
    xcp_vm vm = api_install("vm");
    int64_t n = -1;
    int i;

    OK(xcp_vm_set_memory_limits(S, vm, 512 * MiB, 1 * GiB, 768 * MiB,
                                768 * MiB));
    OK(xcp_vm_set_VCPUs_max(S, vm, 4));
    OK(xcp_vm_set_VCPUs_at_startup(S, vm, 3));
    api_reopen_with_faults("domain_info=EIO*inf");
    OK(xcp_vm_start(S, vm, false, false));
    cr_assert_eq(memory_actual(vm), 768 * MiB);
    OK(xcp_vm_metrics_get_VCPUs_number(S, &n, metrics(vm)));
    cr_assert_eq(n, 3);
    cr_assert_eq(current_type(vm), XCP_DOMAIN_TYPE_HVM);
    OK(xcp_vm_suspend(S, vm));
    OK(xcp_vm_resume(S, vm, false, false));
    cr_assert_eq(memory_actual(vm), 768 * MiB);
    /* The monitor's news of the domain, and its retries (every second),
     * meet the failing reads. */
    for (i = 0; i < 30; i++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING,
                     "halted after %d ms: a failed read is not a vanished "
                     "domain", i * 100);
    }
}

/* ---- VM.pool_migrate to the VM's own host -------------------------------- */

TestSuite(vm_migrate, .init = api_setup, .fini = api_teardown);

static void small_host_setup(void)
{
    setenv("XCP_SIM_HOST_MEMORY", "4GiB", 1);
    api_setup();
}

static void small_host_teardown(void)
{
    api_teardown();
    unsetenv("XCP_SIM_HOST_MEMORY");
}

TestSuite(vm_migrate_small, .init = small_host_setup,
          .fini = small_host_teardown);

static bool vbd_attached(xcp_vm vm)
{
    xcp_vbd_set vbds = {0};
    bool att = false;

    OK(xcp_vm_get_VBDs(S, &vbds, vm));
    cr_assert_gt(vbds.n, 0);
    OK(xcp_vbd_get_currently_attached(S, &att, vbds.items[0]));
    xcp_vbd_set_dispose(&vbds);
    return att;
}

/* XAPI allows localhost migration: the VM moves to a new domain on the
 * same host and keeps running, with its devices and memory. */
Test(vm_migrate, pool_migrate_to_own_host_moves_the_vm_to_a_new_domain)
{
    xcp_vm vm = api_install("vm");
    xcp_vif vif = api_add_vif(vm, "0", "");
    xcp_string_map opts = {0};
    int64_t before, after;
    bool att = false;

    OK(xcp_vm_start(S, vm, false, false));
    before = api_domid(vm);
    OK(xcp_vm_pool_migrate(S, vm, api_host(), &opts));
    after = api_domid(vm);
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
    cr_assert_neq(after, before, "still domain %" PRId64, after);
    cr_assert(vbd_attached(vm));
    OK(xcp_vif_get_currently_attached(S, &att, vif));
    cr_assert(att);
    cr_assert_eq(memory_actual(vm), 1 * GiB);
    /* the new domain is the VM's: it shuts down cleanly */
    OK(xcp_vm_clean_shutdown(S, vm));
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_HALTED);
}

/* A driver without live migration answers as XAPI
 * does when a migration cannot be made, and the VM runs on. */
Test(vm_migrate, pool_migrate_without_driver_support_fails_migrate_failed)
{
    xcp_vm vm = api_install("vm");
    xcp_string_map opts = {0};
    int64_t before;

    OK(xcp_vm_start(S, vm, false, false));
    before = api_domid(vm);
    api_reopen_with_faults("domain_migrate_local=ENOTSUP");
    assert_error_name(xcp_vm_pool_migrate(S, vm, api_host(), &opts),
                      "VM_MIGRATE_FAILED");
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
    cr_assert_eq(api_domid(vm), before);
}

/* A stream that breaks (on Xen: the save, the restore or the receiving
 * domain fails) is VM_MIGRATE_FAILED with the driver's reason, as XAPI
 * says it, not an INTERNAL_ERROR; the VM runs on in its domain. */
Test(vm_migrate, pool_migrate_stream_failure_fails_migrate_failed_with_reason)
{
    xcp_vm vm = api_install("vm");
    xcp_string_map opts = {0};
    const xcp_error *e;
    int64_t before;

    OK(xcp_vm_start(S, vm, false, false));
    before = api_domid(vm);
    api_reopen_with_faults("domain_migrate_local=EIO");
    assert_error(xcp_vm_pool_migrate(S, vm, api_host(), &opts),
                 "VM_MIGRATE_FAILED", vm.ref, api_host().ref,
                 api_host().ref, NULL);
    e = xcp_error_last();
    cr_assert(strstr(e->params[3], "domain_migrate_local"),
              "the reason is not the driver's: %s", e->params[3]);
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
    cr_assert_eq(api_domid(vm), before);
}

Test(vm_migrate, pool_migrate_of_halted_vm_fails_bad_power_state)
{
    xcp_vm vm = api_install("vm");
    xcp_string_map opts = {0};

    assert_error(xcp_vm_pool_migrate(S, vm, api_host(), &opts),
                 "VM_BAD_POWER_STATE", vm.ref, "running", "halted");
}

/* The receiving domain is built beside the running one, as on Xen: a host
 * without room for both refuses, with figures, and the VM runs on. */
Test(vm_migrate_small, pool_migrate_without_room_for_two_copies_fails)
{
    xcp_vm vm = api_install("vm");
    xcp_string_map opts = {0};
    int64_t before;

    OK(xcp_vm_set_memory_limits(S, vm, 256 * MiB, 2 * GiB, 2 * GiB,
                                2 * GiB));
    OK(xcp_vm_start(S, vm, false, false));
    before = api_domid(vm);
    assert_error(xcp_vm_pool_migrate(S, vm, api_host(), &opts),
                 "HOST_NOT_ENOUGH_FREE_MEMORY", NULL, NULL);
    cr_assert_eq(api_power(vm), XCP_VM_POWER_STATE_RUNNING);
    cr_assert_eq(api_domid(vm), before);
}

/* ---- a host without HVM support ------------------------------------------ */

static void no_hvm_setup(void)
{
    setenv("XCP_SIM_HOST_HVM", "0", 1);
    boot_mode_setup();
}

static void no_hvm_teardown(void)
{
    boot_mode_teardown();
    unsetenv("XCP_SIM_HOST_HVM");
}

TestSuite(no_hvm, .init = no_hvm_setup, .fini = no_hvm_teardown);

/* HVM and PVH guests need VT-x/AMD-V: on a host whose capabilities list
 * no hvm-*, starting one fails VM_HVM_REQUIRED (as XAPI says), not with
 * the driver's failure; a PV guest starts. */
Test(no_hvm, hvm_and_pvh_fail_vm_hvm_required_pv_starts)
{
    xcp_vm hvm = api_install_from(T_OTHER, "hvm");
    xcp_vm pvh = api_install_from(T_OTHER, "pvh");
    xcp_vm pv = api_install_from(T_OTHER, "pv");

    assert_error(xcp_vm_start(S, hvm, false, false), "VM_HVM_REQUIRED",
                 hvm.ref);
    assert_error(xcp_vm_assert_can_boot_here(S, hvm, api_host()),
                 "VM_HVM_REQUIRED", hvm.ref);
    OK(xcp_vm_set_domain_type(S, pvh, XCP_DOMAIN_TYPE_PVH));
    give_kernel(pvh);
    assert_error(xcp_vm_start(S, pvh, false, false), "VM_HVM_REQUIRED",
                 pvh.ref);
    OK(xcp_vm_set_HVM_boot_policy(S, pv, ""));
    give_kernel(pv);
    OK(xcp_vm_start(S, pv, false, false));
}
