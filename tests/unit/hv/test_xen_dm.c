/*
 * tests/unit/hv/test_xen_dm.c - when the xen driver builds a domain again
 * because libxl gave up waiting for its device model (hv/xen/xen_dm.c):
 * only for that failure, as libxl words it, and as many times as
 * XCP_XEN_DM_START_TRIES says. Runs on the host: no Xen needed.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "xen_dm.h"

/* libxl 4.17's words when its QMP set-up of QEMU ran out of time (the
 * lab's hvm_iso, a host under load), as the driver's logger keeps them */
static const char postconfig_late[] =
    "libxl_dm.c:3381:device_model_postconfig_done: Domain 3:Post DM "
    "startup configs failed, rc=-9; libxl_create.c:1896:"
    "domcreate_devmodel_started: Domain 3:device model did not start: -9";

Test(xen_dm, qmp_setup_timeout_is_a_late_device_model)
{
    cr_assert(xcp__xen_dm_timed_out(postconfig_late));
}

Test(xen_dm, spawn_timeout_is_a_late_device_model)
{
    cr_assert(xcp__xen_dm_timed_out(
        "libxl_exec.c:413:spawn_timeout: domain 4 device model: startup "
        "timed out; libxl_dm.c:3163:device_model_spawn_outcome: Domain "
        "4:domain 4 device model: spawn failed (rc=-9); libxl_create.c:"
        "1896:domcreate_devmodel_started: Domain 4:device model did not "
        "start: -9"));
}

Test(xen_dm, other_failures_are_not)
{
    /* QEMU exited (ERROR_FAIL), another code that starts with -9, other
     * failures, nothing */
    cr_assert_not(xcp__xen_dm_timed_out(
        "libxl_exec.c:117:libxl_report_child_exitstatus: domain 5 device "
        "model (dying as expected) [361] exited with error status 1; "
        "libxl_create.c:1896:domcreate_devmodel_started: Domain 5:device "
        "model did not start: -3"));
    cr_assert_not(xcp__xen_dm_timed_out("device model did not start: -90"));
    cr_assert_not(xcp__xen_dm_timed_out(
        "libxl_dom.c:581:libxl__build_dom: xc_dom_find_loader failed"));
    cr_assert_not(xcp__xen_dm_timed_out(""));
    cr_assert_not(xcp__xen_dm_timed_out(NULL));
}

Test(xen_dm, tries_default_and_setting)
{
    unsetenv("XCP_XEN_DM_START_TRIES");
    cr_assert_eq(xcp__xen_dm_start_tries(), XCP_XEN_DM_START_TRIES_DEFAULT);
    cr_assert_gt(XCP_XEN_DM_START_TRIES_DEFAULT, 1,
                 "a slow host gets a second try by default");
    setenv("XCP_XEN_DM_START_TRIES", "1", 1);
    cr_assert_eq(xcp__xen_dm_start_tries(), 1);
    setenv("XCP_XEN_DM_START_TRIES", "7", 1);
    cr_assert_eq(xcp__xen_dm_start_tries(), 7);
    unsetenv("XCP_XEN_DM_START_TRIES");
}

Test(xen_dm, tries_not_a_count_is_the_default)
{
    static const char *const bad[] = {"0", "-2", "many", "3x", "101"};
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("XCP_XEN_DM_START_TRIES", bad[i], 1);
        cr_assert_eq(xcp__xen_dm_start_tries(),
                     XCP_XEN_DM_START_TRIES_DEFAULT, "'%s'", bad[i]);
    }
    unsetenv("XCP_XEN_DM_START_TRIES");
}
