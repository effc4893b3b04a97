/*
 * tests/api/test_data_sources.c - host and VM data sources (the RRDs of
 * api/metrics.c) through the public API on the sim: XAPI's names, units
 * and records from host/VM.get_data_sources, latest values from
 * query_data_source that agree with what the driver reports, XAPI's
 * errors, record/forget, and RRDs that survive a restart.
 *
 * The monitor samples every 5 s on the wall clock, so these tests wait for
 * a step boundary or two (at most ~12 s each).
 */
#include "helpers.h"

#include <math.h>
#include <time.h>
#include <unistd.h>

TestSuite(data_sources, .init = api_setup, .fini = api_teardown, .timeout = 90);

static const xcp_value *field(const xcp_value *rec, const char *name)
{
    int i = xcp_class_field_index(rec->u.rec.cls, name);

    cr_assert(i >= 0, "data_source has no field %s", name);
    return &rec->u.rec.fields[i];
}

/* The record called name in a get_data_sources result, or NULL. */
static const xcp_value *ds_find(const xcp_value *set, const char *name)
{
    size_t i;

    cr_assert_eq(set->kind, XCP_VAL_ARRAY);
    for (i = 0; i < set->u.arr.n; i++) {
        const xcp_value *r = &set->u.arr.items[i];

        cr_assert_eq(r->kind, XCP_VAL_RECORD);
        if (!strcmp(field(r, "name_label")->u.s, name))
            return r;
    }
    return NULL;
}

/* The first record whose name starts with pre and ends with suf, or
 * NULL (vbd_<device>_read: the device is hda for HVM guests, xvda for
 * PV ones). */
static const xcp_value *ds_match(const xcp_value *set, const char *pre,
                                 const char *suf)
{
    size_t i, lp = strlen(pre), ls = strlen(suf);

    for (i = 0; i < set->u.arr.n; i++) {
        const char *n = field(&set->u.arr.items[i], "name_label")->u.s;
        size_t l = strlen(n);

        if (l > lp + ls && !strncmp(n, pre, lp) && !strcmp(n + l - ls, suf))
            return &set->u.arr.items[i];
    }
    return NULL;
}

static bool host_has(const char *name)
{
    xcp_value v = {0};
    bool has;

    OK(xcp_host_get_data_sources(S, &v, api_host()));
    has = ds_find(&v, name) != NULL;
    xcp_value_dispose(&v);
    return has;
}

/* Query until the value is known (a PDP was made), at most ~12 s. */
static double host_value(const char *name)
{
    double v = NAN;
    int i;

    for (i = 0; i < 130 && isnan(v); i++) {
        if (xcp_host_query_data_source(S, &v, api_host(), name) < 0)
            v = NAN;
        if (isnan(v))
            usleep(100 * 1000);
    }
    return v;
}

static double vm_value(xcp_vm vm, const char *name)
{
    double v = NAN;
    int i;

    for (i = 0; i < 130 && isnan(v); i++) {
        if (xcp_vm_query_data_source(S, &v, vm, name) < 0)
            v = NAN;
        if (isnan(v))
            usleep(100 * 1000);
    }
    return v;
}

Test(data_sources, host_lists_xapi_names_units_and_values)
{
    xcp_host_metrics hm;
    int64_t total;
    xcp_value v = {0};
    const xcp_value *r;
    int i;

    /* the first call starts the monitor; its first sample follows */
    for (i = 0; i < 50 && !host_has("memory_total_kib"); i++)
        usleep(100 * 1000);
    OK(xcp_host_get_data_sources(S, &v, api_host()));
    cr_assert_not_null(r = ds_find(&v, "memory_total_kib"));
    cr_expect_str_eq(field(r, "units")->u.s, "KiB");
    cr_expect_str_eq(field(r, "name_description")->u.s,
                     "Total amount of memory in the host");
    cr_expect(field(r, "enabled")->u.b);
    cr_expect(field(r, "standard")->u.b);
    cr_expect_eq(field(r, "min")->u.f, 0.0);
    cr_assert_not_null(r = ds_find(&v, "cpu0"));
    cr_expect_str_eq(field(r, "units")->u.s, "(fraction)");
    cr_expect_eq(field(r, "max")->u.f, 1.0);
    cr_expect_not_null(ds_find(&v, "cpu7")); /* XCP_SIM_HOST_CPUS=8 */
    cr_expect_null(ds_find(&v, "cpu8"));
    cr_expect_not_null(ds_find(&v, "cpu_avg"));
    cr_expect_not_null(ds_find(&v, "loadavg"));
    cr_expect_not_null(ds_find(&v, "memory_free_kib"));
    cr_assert_not_null(r = ds_find(&v, "pif_eth0_rx"));
    cr_expect_str_eq(field(r, "units")->u.s, "B/s");
    cr_expect_not_null(ds_find(&v, "pif_eth0_tx"));
    xcp_value_dispose(&v);

    OK(xcp_host_get_metrics(S, &hm, api_host()));
    OK(xcp_host_metrics_get_memory_total(S, &total, hm));
    cr_expect_eq(host_value("memory_total_kib"), (double)(total / 1024));
    cr_expect_leq(host_value("memory_free_kib"), (double)(total / 1024));
}

Test(data_sources, errors_are_xapis)
{
    xcp_vm vm = api_install("never-ran");
    double v;
    char uuid[64], *u = NULL, want[128];

    host_has("cpu0"); /* starts the monitor */
    assert_error_name(xcp_host_query_data_source(S, &v, api_host(), "nosuch"),
                      "INTERNAL_ERROR");
    cr_expect(strstr(xcp_error_last()->params[0], "Invalid_data_source"),
              "%s", xcp_error_last()->params[0]);
    assert_error_name(xcp_host_record_data_source(S, api_host(), "nosuch"),
                      "INTERNAL_ERROR");
    cr_expect(strstr(xcp_error_last()->params[0],
                     "Datasource_missing(nosuch)"), "%s",
              xcp_error_last()->params[0]);
    /* forgetting what is not recorded is no error, as XAPI */
    OK(xcp_host_forget_data_source_archives(S, api_host(), "nosuch"));

    /* a VM that never ran here has no RRD: XAPI's Datasource_missing */
    OK(xcp_vm_get_uuid(S, &u, vm));
    snprintf(uuid, sizeof(uuid), "%s", u);
    xcp_free(u);
    assert_error_name(xcp_vm_query_data_source(S, &v, vm, "memory"),
                      "INTERNAL_ERROR");
    snprintf(want, sizeof(want), "Datasource_missing(VM: %s)", uuid);
    cr_expect(strstr(xcp_error_last()->params[0], want), "%s",
              xcp_error_last()->params[0]);
    assert_error_name(xcp_vm_record_data_source(S, vm, "memory"),
                      "INTERNAL_ERROR");
    OK(xcp_vm_forget_data_source_archives(S, vm, "memory"));
    {
        xcp_value l = {0};

        OK(xcp_vm_get_data_sources(S, &l, vm));
        cr_expect_eq(l.u.arr.n, 0);
        xcp_value_dispose(&l);
    }
    /* a stale ref is HANDLE_INVALID, before anything else */
    {
        xcp_vm bad;

        SET_REF(bad, "OpaqueRef:nosuch");
        assert_error_name(xcp_vm_get_data_sources(S, &(xcp_value){0}, bad),
                          "HANDLE_INVALID");
    }
}

Test(data_sources, running_vm_values_follow_the_driver)
{
    xcp_vm vm = api_install("web");
    xcp_vm_metrics vmm;
    int64_t actual;
    xcp_value l = {0};
    const xcp_value *r;
    double a, b;
    char read[64];

    api_add_vif(vm, "0", NULL);
    OK(xcp_vm_start(S, vm, false, false));
    host_has("cpu0");
    cr_assert(!isnan(a = vm_value(vm, "memory")), "no VM memory value");
    OK(xcp_vm_get_metrics(S, &vmm, vm));
    OK(xcp_vm_metrics_get_memory_actual(S, &actual, vmm));
    cr_expect_eq(a, (double)actual);
    cr_expect(!isnan(vm_value(vm, "memory_target")));
    OK(xcp_vm_get_data_sources(S, &l, vm));
    cr_assert_not_null(r = ds_match(&l, "vbd_", "_read"));
    cr_expect_str_eq(field(r, "units")->u.s, "B/s");
    snprintf(read, sizeof(read), "%s", field(r, "name_label")->u.s);
    cr_expect_not_null(ds_match(&l, "vbd_", "_write"));
    cr_expect_not_null(ds_match(&l, "vbd_", "_iops_total"));
    cr_expect_not_null(ds_find(&l, "vif_0_rx"));
    cr_expect_not_null(ds_find(&l, "vif_0_tx"));
    cr_expect_not_null(ds_find(&l, "cpu0"));
    xcp_value_dispose(&l);
    /* a running guest's vCPU time and disk counters move: rates > 0 */
    b = vm_value(vm, "cpu0");
    cr_expect(b > 0 && b <= 1.0, "cpu0 = %g", b);
    b = vm_value(vm, read);
    cr_expect(b > 0, "%s = %g", read, b);

    /* forget drops the archives: not enabled until recorded again */
    OK(xcp_vm_forget_data_source_archives(S, vm, "memory_target"));
    OK(xcp_vm_get_data_sources(S, &l, vm));
    r = ds_find(&l, "memory_target");
    cr_assert_not_null(r);
    /* the sampler may have put it back already (standard): then enabled */
    xcp_value_dispose(&l);
    OK(xcp_vm_record_data_source(S, vm, "memory_target"));
    OK(xcp_vm_get_data_sources(S, &l, vm));
    cr_assert_not_null(r = ds_find(&l, "memory_target"));
    cr_expect(field(r, "enabled")->u.b);
    xcp_value_dispose(&l);
}

Test(data_sources, host_rrd_survives_a_restart)
{
    double before, after = NAN;

    host_has("cpu0");
    before = host_value("memory_total_kib");
    cr_assert(!isnan(before));
    api_reopen(); /* the engine closes (RRDs written) and opens again */
    /* known at once, from the file, before any new PDP */
    if (xcp_host_query_data_source(S, &after, api_host(),
                                   "memory_total_kib") < 0) {
        /* the monitor starts with the first call: ask again */
        usleep(200 * 1000);
        OK(xcp_host_query_data_source(S, &after, api_host(),
                                      "memory_total_kib"));
    }
    cr_expect_eq(after, before);
}

/* The host's per-SR data sources as XAPI's iostat plugin names them
 * (io_throughput_read_<first 8 of the SR uuid>, MiB/s; iops_*,
 * requests/s): the sums over the disks of the running VMs on the SR, so
 * with one VM running they are its vbd_DEV_* figures, in MiB. */
/* XAPI's maths: an ABSOLUTE source's PDP is its last rate, a DERIVE's
 * the time-weighted rates within the step, so when a sample comes late
 * (a loaded machine) the SR's figure and the disk's differ a little
 * (0.2 % seen); equal when samples fall on time. */
#define TOL 0.03

Test(data_sources, sr_figures_are_the_sums_of_their_disks)
{
    xcp_vm vm = api_install("sr-io");
    xcp_sr sr = api_default_sr();
    xcp_value l = {0};
    const xcp_value *r;
    char *sr_uuid = NULL, tp[64], iops[64], vbd[64], vbd_iops[64];
    const char *dev;
    double host_tp = NAN, host_iops = NAN, vm_tp = NAN, vm_iops = NAN;
    int i;

    OK(xcp_sr_get_uuid(S, &sr_uuid, sr));
    snprintf(tp, sizeof(tp), "io_throughput_read_%.8s", sr_uuid);
    snprintf(iops, sizeof(iops), "iops_total_%.8s", sr_uuid);
    OK(xcp_vm_start(S, vm, false, false));
    host_has("cpu0");
    OK(xcp_vm_get_data_sources(S, &l, vm));
    cr_assert_not_null(r = ds_match(&l, "vbd_", "_read"));
    dev = field(r, "name_label")->u.s + 4;
    snprintf(vbd, sizeof(vbd), "vbd_%.*s_read", (int)(strlen(dev) - 5), dev);
    snprintf(vbd_iops, sizeof(vbd_iops), "vbd_%.*s_iops_total",
             (int)(strlen(dev) - 5), dev);
    xcp_value_dispose(&l);
    /* the SR's sources appear with the first sample that sees the disk;
     * values with the next one */
    for (i = 0; i < 130 && !host_has(tp); i++)
        usleep(100 * 1000);
    OK(xcp_host_get_data_sources(S, &l, api_host()));
    cr_assert_not_null(r = ds_find(&l, tp), "no %s", tp);
    cr_expect_str_eq(field(r, "units")->u.s, "MiB/s");
    cr_expect_str_eq(field(r, "name_description")->u.s,
                     "Data read from the SR, in MiB/s");
    cr_assert_not_null(r = ds_find(&l, iops));
    cr_expect_str_eq(field(r, "units")->u.s, "requests/s");
    snprintf(tp + 3, sizeof(tp) - 3, "throughput_write_%.8s", sr_uuid);
    cr_expect_not_null(ds_find(&l, tp), "no %s", tp);
    snprintf(tp + 3, sizeof(tp) - 3, "throughput_read_%.8s", sr_uuid);
    xcp_value_dispose(&l);
    /* the same PDP on both sides: query both until they agree in time
     * (both are fed by one sample under one lock) */
    for (i = 0; i < 200; i++) {
        host_tp = host_value(tp);
        host_iops = host_value(iops);
        vm_tp = vm_value(vm, vbd);
        vm_iops = vm_value(vm, vbd_iops);
        if (vm_tp > 0 && fabs(host_tp - vm_tp / 1048576.0) <=
                             TOL * (vm_tp / 1048576.0))
            break;
        usleep(100 * 1000);
    }
    cr_assert(vm_tp > 0, "%s = %g", vbd, vm_tp);
    cr_expect(fabs(host_tp - vm_tp / 1048576.0) <= TOL * vm_tp / 1048576.0,
              "%s = %g MiB/s, %s = %g B/s", tp, host_tp, vbd, vm_tp);
    cr_expect(vm_iops > 0 && fabs(host_iops - vm_iops) <= TOL * vm_iops,
              "%s = %g, %s = %g", iops, host_iops, vbd_iops, vm_iops);
    free(sr_uuid);
}
