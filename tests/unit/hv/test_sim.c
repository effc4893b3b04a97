/*
 * tests/unit/hv/test_sim.c - unit tests of the sim hypervisor driver and of
 * the driver registry (hv/hv.c): the model's accounting, timing, faults,
 * images and persistence, on a host of fixed size in a scratch directory.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h" /* xcp__hv_image_ops */
#include "hv_internal.h"
#include "image.h"
#include "sim.h"

#define MiB (1024ull * 1024)
#define GiB (1024 * MiB)
#define MS 1000000ull

static const xcp_hv_driver *drv = &xcp__hv_sim_driver;
static char dir[64];
static char disk_path[128];
static char live_path[160]; /* qcow2_disk */
static char overlay_path[160]; /* qcow2_overlay */
static const char *qcow2_overlay(void);
static void *hv;
static xcp_hv_error err;
static struct xcp__sim_options opt;

static const char *const uuid1 = "11111111-2222-3333-4444-555555555555";
static const char *const uuid2 = "66666666-7777-8888-9999-aaaaaaaaaaaa";

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void open_sim(void)
{
    int rc = xcp__sim_open(&hv, dir, &opt, &err);

    cr_assert_eq(rc, 0, "open: %d %s", rc, err.message);
    /* as the library hands it at open (engine.c) */
    drv->image_ops(hv, &xcp__hv_image_ops);
}

static void close_sim(void)
{
    drv->close(hv);
    hv = NULL;
}

static void setup(void)
{
    int fd;

    snprintf(dir, sizeof(dir), "/tmp/xcp-sim-test.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(disk_path, sizeof(disk_path), "%s/disk.img", dir);
    fd = open(disk_path, O_CREAT | O_WRONLY, 0600);
    cr_assert(fd >= 0);
    close(fd);
    memset(&opt, 0, sizeof(opt));
    opt.host_memory = 8 * GiB;
    opt.host_cpus = 4;
    opt.dom0_memory = 1 * GiB;
    opt.shutdown_delay_ns = 200 * MS; /* long enough to observe "not yet"
                                        even on a loaded machine */
    memset(&err, 0, sizeof(err));
    open_sim();
}

static void teardown(void)
{
    if (hv)
        close_sim();
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(sim, .init = setup, .fini = teardown);

static xcp_hv_domain_config config(const char *uuid, const char *name,
                                   uint64_t mem, uint32_t vcpus)
{
    xcp_hv_domain_config c;

    memset(&c, 0, sizeof(c));
    c.version = XCP_HV_CONFIG_VERSION;
    c.vm_uuid = uuid;
    c.name = name;
    c.type = XCP_HV_DOMAIN_HVM;
    c.memory_static_max = mem;
    c.memory_target = mem;
    c.vcpus_max = vcpus;
    return c;
}

static uint32_t create(const char *uuid, const char *name, uint64_t mem,
                       uint32_t vcpus, bool paused)
{
    xcp_hv_domain_config c = config(uuid, name, mem, vcpus);
    uint32_t domid = 0;
    int rc = drv->domain_create(hv, &c, paused, &domid, &err);

    cr_assert_eq(rc, 0, "create %s: %d %s", name, rc, err.message);
    return domid;
}

static xcp_hv_domain_info info(uint32_t domid)
{
    xcp_hv_domain_info i;
    int rc = drv->domain_info(hv, domid, &i, &err);

    cr_assert_eq(rc, 0, "info %u: %d %s", domid, rc, err.message);
    return i;
}

static uint64_t free_mem(void)
{
    static xcp_hv_host_info h; /* 8 KB: keep it off the stack */
    int rc = drv->host_info(hv, &h, &err);

    cr_assert_eq(rc, 0, "%s", err.message);
    return h.memory_free;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* ---- lifecycle ----------------------------------------------------------- */

Test(sim, create_then_destroy_removes_domain)
{
    uint32_t d = create(uuid1, "vm1", 512 * MiB, 2, false);
    xcp_hv_domain_info i = info(d);

    cr_expect_eq(d, 1);
    cr_expect_str_eq(i.vm_uuid, uuid1);
    cr_expect_str_eq(i.name, "vm1");
    cr_expect_eq(i.state, XCP_HV_STATE_RUNNING);
    cr_expect_eq(i.memory_actual, 512 * MiB);
    cr_expect_eq(i.vcpus_online, 2);
    cr_assert_eq(drv->domain_destroy(hv, d, &err), 0, "%s", err.message);
    cr_expect_eq(drv->domain_info(hv, d, &i, &err), -ESRCH);
    cr_expect_eq(err.code, -ESRCH);
    cr_expect(strstr(err.message, "domain 1") != NULL, "%s", err.message);
}

Test(sim, domids_increase_and_are_never_reused)
{
    uint32_t keep = create(uuid1, "keep", 64 * MiB, 1, false), prev = keep;
    uint32_t d;
    int i;

    cr_expect_eq(keep, 1);
    /* whatever mix of live and destroyed domains, ids only go up */
    for (i = 0; i < 5; i++) {
        d = create(uuid2, "churn", 64 * MiB, 1, false);
        cr_expect_eq(d, prev + 1, "round %d: got %u after %u", i, d, prev);
        cr_assert_eq(drv->domain_destroy(hv, d, &err), 0);
        prev = d;
    }
}

Test(sim, create_paused_does_not_run_until_unpaused)
{
    uint32_t d = create(uuid1, "vm1", 64 * MiB, 1, true);

    cr_expect_eq(info(d).state, XCP_HV_STATE_PAUSED);
    sleep_ms(20);
    cr_expect_eq(info(d).cpu_time_ns, 0);
    cr_assert_eq(drv->domain_unpause(hv, d, &err), 0);
    sleep_ms(20);
    cr_expect_eq(info(d).state, XCP_HV_STATE_RUNNING);
    cr_expect_gt(info(d).cpu_time_ns, 15 * MS);
}

Test(sim, duplicate_name_is_refused)
{
    xcp_hv_domain_config c = config(uuid2, "vm1", 64 * MiB, 1);
    uint32_t d;

    create(uuid1, "vm1", 64 * MiB, 1, false);
    cr_expect_eq(drv->domain_create(hv, &c, false, &d, &err), -EEXIST);
    cr_expect(strstr(err.message, "vm1") != NULL, "%s", err.message);
}

Test(sim, invalid_configs_are_refused)
{
    xcp_hv_domain_config c = config("not-a-uuid", "x", 64 * MiB, 1);
    xcp_hv_disk disk = {"/nonexistent/disk.img", "raw", "xvda", false, false};
    uint32_t d;

    cr_expect_eq(drv->domain_create(hv, &c, false, &d, &err), -EINVAL);
    c = config(uuid1, "x", 64 * MiB, 1);
    c.memory_target = 128 * MiB; /* above static max */
    cr_expect_eq(drv->domain_create(hv, &c, false, &d, &err), -EINVAL);
    c = config(uuid1, "x", 64 * MiB, 0);
    cr_expect_eq(drv->domain_create(hv, &c, false, &d, &err), -EINVAL);
    c = config(uuid1, "x", 64 * MiB, 1);
    c.type = XCP_HV_DOMAIN_PV; /* no kernel, no bootloader */
    cr_expect_eq(drv->domain_create(hv, &c, false, &d, &err), -EINVAL);
    c = config(uuid1, "x", 64 * MiB, 1);
    c.disks = &disk;
    c.n_disks = 1;
    cr_expect_eq(drv->domain_create(hv, &c, false, &d, &err), -ENOENT);
    cr_expect(strstr(err.message, "/nonexistent/disk.img") != NULL, "%s",
              err.message);
    disk.path = disk_path;
    disk.vdev = "floppy0";
    cr_expect_eq(drv->domain_create(hv, &c, false, &d, &err), -EINVAL);
    /* nothing was left behind by the failures */
    disk.vdev = "xvda";
    cr_expect_eq(drv->domain_create(hv, &c, false, &d, &err), 0,
                 "%s", err.message);
    cr_expect_eq(d, 1);
}

/* ---- memory -------------------------------------------------------------- */

Test(sim, overhead_formula)
{
    /* 1 GiB = 262144 pages, 2 vCPUs */
    uint64_t pv = 256 + 8 + 512;
    uint64_t pvh = pv + 512 + 2048;
    uint64_t hvm = pvh + 2048;
    xcp_hv_domain_config c = config(uuid1, "x", GiB, 2);
    uint64_t bytes;

    cr_expect_eq(xcp__sim_overhead_pages(XCP_HV_DOMAIN_PV, 262144, 2), pv);
    cr_expect_eq(xcp__sim_overhead_pages(XCP_HV_DOMAIN_PVH, 262144, 2), pvh);
    cr_expect_eq(xcp__sim_overhead_pages(XCP_HV_DOMAIN_HVM, 262144, 2), hvm);
    cr_assert_eq(drv->memory_overhead(hv, &c, &bytes, &err), 0);
    cr_expect_eq(bytes, hvm * 4096);
    cr_expect_eq(bytes, 22052864); /* ~21 MiB for a 1 GiB, 2 vCPU HVM */
}

Test(sim, free_memory_drops_by_target_plus_overhead)
{
    uint64_t before = free_mem(), after;
    uint32_t d = create(uuid1, "vm1", GiB, 2, false);
    xcp_hv_domain_info i = info(d);

    after = free_mem();
    cr_expect_eq(i.memory_overhead,
                 xcp__sim_overhead_pages(XCP_HV_DOMAIN_HVM, 262144, 2) * 4096);
    cr_expect_eq(before - after, GiB + i.memory_overhead);
    cr_assert_eq(drv->domain_destroy(hv, d, &err), 0);
    cr_expect_eq(free_mem(), before);
}

Test(sim, host_memory_matches_model)
{
    static xcp_hv_host_info h;
    uint64_t xen = 8 * GiB / 256 + 16 * MiB;

    cr_assert_eq(drv->host_info(hv, &h, &err), 0);
    cr_expect_eq(h.memory_total, 8 * GiB);
    cr_expect_eq(h.memory_hypervisor, xen);
    cr_expect_eq(h.memory_free, 8 * GiB - xen - GiB);
    cr_expect_eq(h.nr_cpus, 4);
    cr_expect_eq(h.sockets * h.cores_per_socket * h.threads_per_core, 4);
    cr_expect(strstr(h.capabilities, "hvm-3.0-x86_64") != NULL);
}

Test(sim, domain_that_does_not_fit_fails_enomem_with_amounts)
{
    uint64_t avail = free_mem();
    xcp_hv_domain_config c = config(uuid1, "big", 7 * GiB, 1);
    char want[64], have[64];
    uint64_t overhead;
    uint32_t d;

    cr_assert_eq(drv->memory_overhead(hv, &c, &overhead, &err), 0);
    cr_expect_eq(drv->domain_create(hv, &c, false, &d, &err), -ENOMEM);
    cr_expect_eq(err.code, -ENOMEM);
    snprintf(want, sizeof(want), "needs %" PRIu64 " bytes",
             (uint64_t)(7 * GiB + overhead));
    snprintf(have, sizeof(have), "%" PRIu64 " bytes available", avail);
    cr_expect(strstr(err.message, want) != NULL, "%s", err.message);
    cr_expect(strstr(err.message, have) != NULL, "%s", err.message);
    cr_expect(strstr(err.message, uuid1) != NULL, "%s", err.message);
    cr_expect_eq(free_mem(), avail);
}

Test(sim, exactly_fitting_domain_is_accepted_one_page_more_is_not)
{
    /* PV with a bootloader: find the largest memory that fits */
    uint64_t avail = free_mem(), lo = 16 * MiB, hi = avail, mid, ov;
    xcp_hv_domain_config c = config(uuid1, "fit", 0, 1);
    uint32_t d;

    c.type = XCP_HV_DOMAIN_PV;
    c.bootloader = "pygrub";
    while (hi - lo > 4096) {
        mid = (lo + hi) / 2 / 4096 * 4096;
        c.memory_static_max = c.memory_target = mid;
        drv->memory_overhead(hv, &c, &ov, &err);
        if (mid + ov <= avail)
            lo = mid;
        else
            hi = mid;
    }
    c.memory_static_max = c.memory_target = hi;
    cr_expect_eq(drv->domain_create(hv, &c, false, &d, &err), -ENOMEM);
    c.memory_static_max = c.memory_target = lo;
    cr_expect_eq(drv->domain_create(hv, &c, false, &d, &err), 0, "%s",
                 err.message);
}

Test(sim, memory_target_balloons_and_is_checked)
{
    uint32_t d;
    xcp_hv_domain_config c = config(uuid1, "vm1", 2 * GiB, 1);

    c.memory_target = GiB;
    cr_assert_eq(drv->domain_create(hv, &c, false, &d, &err), 0);
    cr_expect_eq(info(d).memory_actual, GiB);
    cr_assert_eq(drv->domain_set_memory_target(hv, d, 2 * GiB, &err), 0);
    cr_expect_eq(info(d).memory_actual, 2 * GiB); /* rate 0: at once */
    cr_expect_eq(drv->domain_set_memory_target(hv, d, 3 * GiB, &err),
                 -EINVAL);
    cr_expect_eq(drv->domain_set_memory_target(hv, d, 1 * MiB, &err),
                 -EINVAL);
}

Test(sim, balloon_moves_stepwise_at_the_configured_rate)
{
    xcp_hv_domain_config c = config(uuid1, "vm1", 2 * GiB, 1);
    uint64_t actual;
    uint32_t d;

    close_sim();
    opt.balloon_rate = 10 * GiB; /* 1 GiB takes 100 ms */
    open_sim();
    cr_assert_eq(drv->domain_create(hv, &c, false, &d, &err), 0);
    cr_assert_eq(drv->domain_set_memory_target(hv, d, GiB, &err), 0);
    sleep_ms(30);
    actual = info(d).memory_actual;
    cr_expect(actual < 2 * GiB && actual > GiB, "actual %" PRIu64, actual);
    cr_expect_eq(info(d).memory_target, GiB);
    /* a paused guest does not balloon */
    cr_assert_eq(drv->domain_pause(hv, d, &err), 0);
    actual = info(d).memory_actual;
    sleep_ms(150);
    cr_expect_eq(info(d).memory_actual, actual);
    cr_assert_eq(drv->domain_unpause(hv, d, &err), 0);
    sleep_ms(150);
    cr_expect_eq(info(d).memory_actual, GiB);
}

Test(sim, growing_target_beyond_free_memory_fails_enomem)
{
    xcp_hv_domain_config c = config(uuid1, "vm1", 6 * GiB, 1);
    uint32_t d;

    c.memory_target = GiB;
    cr_assert_eq(drv->domain_create(hv, &c, false, &d, &err), 0);
    create(uuid2, "other", 3 * GiB, 1, false);
    cr_expect_eq(drv->domain_set_memory_target(hv, d, 6 * GiB, &err),
                 -ENOMEM);
    cr_expect(strstr(err.message, "available") != NULL, "%s", err.message);
}

/* ---- time ---------------------------------------------------------------- */

Test(sim, pause_stops_cpu_time)
{
    uint32_t d = create(uuid1, "vm1", 64 * MiB, 2, false);
    uint64_t t0, t1;

    sleep_ms(30);
    cr_assert_eq(drv->domain_pause(hv, d, &err), 0);
    t0 = info(d).cpu_time_ns;
    cr_expect_geq(t0, 2 * 30 * MS); /* two vCPUs, both running */
    sleep_ms(30);
    t1 = info(d).cpu_time_ns;
    cr_expect_eq(t1, t0);
    cr_assert_eq(drv->domain_unpause(hv, d, &err), 0);
    sleep_ms(30);
    cr_expect_geq(info(d).cpu_time_ns, t0 + 2 * 30 * MS);
}

Test(sim, vcpus_share_host_cpus_fairly_when_overcommitted)
{
    /* 4 host CPUs, 8 running vCPUs: each gets half of the wall clock */
    uint32_t d = create(uuid1, "vm1", 64 * MiB, 8, false);
    xcp_hv_vcpu_info *v;
    double *u;
    size_t n, i;

    sleep_ms(100);
    cr_assert_eq(drv->domain_pause(hv, d, &err), 0);
    cr_assert_eq(drv->domain_vcpu_info(hv, d, &v, &n, &err), 0);
    cr_assert_eq(n, 8);
    for (i = 0; i < n; i++) {
        cr_expect_geq(v[i].cpu_time_ns, 50 * MS);
        cr_expect_lt(v[i].cpu_time_ns, 75 * MS);
        cr_expect_eq(v[i].cpu_time_ns, v[0].cpu_time_ns);
    }
    free(v);
    cr_assert_eq(drv->host_cpu_usage(hv, &u, &n, &err), 0);
    cr_assert_eq(n, 4);
    for (i = 0; i < n; i++)
        cr_expect_gt(u[i], 0.5); /* busy most of the time since open */
    free(u);
}

Test(sim, offline_vcpus_do_not_accumulate_time)
{
    uint32_t d = create(uuid1, "vm1", 64 * MiB, 4, false);
    xcp_hv_vcpu_info *v;
    size_t n;

    cr_assert_eq(drv->domain_set_vcpus(hv, d, 1, &err), 0);
    cr_expect_eq(drv->domain_set_vcpus(hv, d, 5, &err), -EINVAL);
    sleep_ms(20);
    cr_assert_eq(drv->domain_vcpu_info(hv, d, &v, &n, &err), 0);
    cr_assert_eq(n, 4);
    cr_expect(v[0].online && v[0].running);
    cr_expect(!v[1].online);
    cr_expect_gt(v[0].cpu_time_ns, v[1].cpu_time_ns);
    free(v);
    cr_expect_eq(info(d).vcpus_online, 1);
}

/* ---- shutdown ------------------------------------------------------------ */

Test(sim, shutdown_is_acknowledged_after_the_delay)
{
    uint32_t d = create(uuid1, "vm1", 64 * MiB, 1, false);
    xcp_hv_domain_info i;
    struct timespec a, b;
    double ms;

    clock_gettime(CLOCK_MONOTONIC, &a);
    cr_assert_eq(drv->domain_shutdown(hv, d, XCP_HV_SHUTDOWN_POWEROFF, &err),
                 0);
    cr_expect_eq(info(d).state, XCP_HV_STATE_RUNNING); /* not yet */
    cr_assert_eq(drv->domain_wait(hv, d, 10000, &i, &err), 0, "%s",
                 err.message);
    clock_gettime(CLOCK_MONOTONIC, &b);
    ms = (double)(b.tv_sec - a.tv_sec) * 1e3 +
         (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    cr_expect_geq(ms, 199.0);
    cr_expect_lt(ms, 10000.0);
    cr_expect_eq(i.state, XCP_HV_STATE_SHUTDOWN);
    cr_expect_eq(i.shutdown_reason, XCP_HV_SHUTDOWN_POWEROFF);
    /* a shut down domain holds its memory until destroyed */
    cr_expect_eq(info(d).memory_actual, 64 * MiB);
}

Test(sim, shutdown_of_paused_guest_waits_for_unpause)
{
    uint32_t d = create(uuid1, "vm1", 64 * MiB, 1, true);
    xcp_hv_domain_info i;

    cr_assert_eq(drv->domain_shutdown(hv, d, XCP_HV_SHUTDOWN_POWEROFF, &err),
                 0);
    cr_expect_eq(drv->domain_wait(hv, d, 60, &i, &err), -ETIMEDOUT);
    cr_assert_eq(drv->domain_unpause(hv, d, &err), 0);
    cr_expect_eq(drv->domain_wait(hv, d, 10000, &i, &err), 0);
    cr_expect_eq(i.shutdown_reason, XCP_HV_SHUTDOWN_POWEROFF);
}

Test(sim, reboot_request_ends_in_shutdown_reason_reboot)
{
    uint32_t d = create(uuid1, "vm1", 64 * MiB, 1, false), d2;
    xcp_hv_domain_info i;

    cr_assert_eq(drv->domain_shutdown(hv, d, XCP_HV_SHUTDOWN_REBOOT, &err), 0);
    cr_assert_eq(drv->domain_wait(hv, d, 10000, &i, &err), 0);
    cr_expect_eq(i.state, XCP_HV_STATE_SHUTDOWN);
    cr_expect_eq(i.shutdown_reason, XCP_HV_SHUTDOWN_REBOOT);
    /* what the library does next: a new domain for the same VM */
    cr_assert_eq(drv->domain_destroy(hv, d, &err), 0);
    d2 = create(uuid1, "vm1", 64 * MiB, 1, false);
    cr_expect_gt(d2, d);
}

Test(sim, hung_guest_never_acknowledges_and_wait_times_out)
{
    uint32_t d = create(uuid1, "vm1", 64 * MiB, 1, false);
    xcp_hv_fault f = {XCP_HV_FAULT_VERSION, XCP_HV_FAULT_HANG, 0, 0, 0, d,
                      true};
    xcp_hv_domain_info i;

    cr_assert_eq(drv->fault(hv, &f, &err), 0);
    cr_assert_eq(drv->domain_shutdown(hv, d, XCP_HV_SHUTDOWN_POWEROFF, &err),
                 0);
    cr_expect_eq(drv->domain_wait(hv, d, 100, &i, &err), -ETIMEDOUT);
    cr_expect_eq(err.code, -ETIMEDOUT);
    cr_expect(strstr(err.message, uuid1) != NULL, "%s", err.message);
    cr_expect_eq(info(d).state, XCP_HV_STATE_RUNNING);
    /* the hard path still works */
    cr_expect_eq(drv->domain_destroy(hv, d, &err), 0);
}

Test(sim, unhung_guest_then_acknowledges_pending_request)
{
    uint32_t d = create(uuid1, "vm1", 64 * MiB, 1, false);
    xcp_hv_fault f = {XCP_HV_FAULT_VERSION, XCP_HV_FAULT_HANG, 0, 0, 0, d,
                      true};
    xcp_hv_domain_info i;

    cr_assert_eq(drv->fault(hv, &f, &err), 0);
    cr_assert_eq(drv->domain_shutdown(hv, d, XCP_HV_SHUTDOWN_POWEROFF, &err),
                 0);
    f.on = false;
    cr_assert_eq(drv->fault(hv, &f, &err), 0);
    cr_expect_eq(drv->domain_wait(hv, d, 10000, &i, &err), 0);
}

Test(sim, crash_injection_shuts_domain_down_with_reason_crash)
{
    uint32_t d = create(uuid1, "vm1", 64 * MiB, 1, false);
    xcp_hv_fault f = {XCP_HV_FAULT_VERSION, XCP_HV_FAULT_CRASH, 0, 0, 0, d,
                      false};
    xcp_hv_domain_info i;
    uint64_t t;

    cr_assert_eq(drv->fault(hv, &f, &err), 0);
    i = info(d);
    cr_expect_eq(i.state, XCP_HV_STATE_SHUTDOWN);
    cr_expect_eq(i.shutdown_reason, XCP_HV_SHUTDOWN_CRASH);
    t = i.cpu_time_ns;
    sleep_ms(10);
    cr_expect_eq(info(d).cpu_time_ns, t);
    cr_expect_eq(drv->domain_unpause(hv, d, &err), -EINVAL);
}

Test(sim, control_domain_is_listed_and_protected)
{
    xcp_hv_domain_info i = info(0);

    cr_expect_str_eq(i.name, "Domain-0");
    cr_expect_eq(i.memory_actual, GiB);
    cr_expect_eq(drv->domain_destroy(hv, 0, &err), -EPERM);
    cr_expect_eq(drv->domain_shutdown(hv, 0, XCP_HV_SHUTDOWN_POWEROFF, &err),
                 -EPERM);
}

/* ---- list ---------------------------------------------------------------- */

Test(sim, domain_list_has_dom0_then_domains_by_id)
{
    xcp_hv_domain_info *v;
    size_t n;
    uint32_t a = create(uuid1, "a", 64 * MiB, 1, false);
    uint32_t b = create(uuid2, "b", 128 * MiB, 2, true);

    cr_assert_eq(drv->domain_list(hv, &v, &n, &err), 0);
    cr_assert_eq(n, 3);
    cr_expect_eq(v[0].domid, 0);
    cr_expect_eq(v[1].domid, a);
    cr_expect_str_eq(v[1].vm_uuid, uuid1);
    cr_expect_eq(v[1].state, XCP_HV_STATE_RUNNING);
    cr_expect_eq(v[2].domid, b);
    cr_expect_str_eq(v[2].vm_uuid, uuid2);
    cr_expect_eq(v[2].state, XCP_HV_STATE_PAUSED);
    cr_expect_eq(v[2].memory_max, 128 * MiB);
    cr_expect_eq(v[2].vcpus_max, 2);
    free(v);
}

/* ---- suspend / restore --------------------------------------------------- */

static void image_path(char *buf, size_t size)
{
    snprintf(buf, size, "%s/vm1.img", dir);
}

Test(sim, suspend_writes_image_and_restore_verifies_it)
{
    uint32_t d = create(uuid1, "vm1", 256 * MiB, 2, false), d2;
    xcp_hv_domain_config c = config(uuid1, "vm1", 256 * MiB, 2);
    uint64_t before;
    char img[128];
    struct stat st;

    image_path(img, sizeof(img));
    before = free_mem();
    cr_assert_eq(drv->domain_suspend(hv, d, img, &err), 0, "%s", err.message);
    cr_expect_eq(stat(img, &st), 0);
    cr_expect_gt(st.st_size, 0);
    cr_expect_lt(st.st_size, 64 * 1024); /* compact, not 256 MiB */
    cr_expect_eq(drv->domain_info(hv, d, &(xcp_hv_domain_info){0}, &err),
                 -ESRCH);
    cr_expect_gt(free_mem(), before);
    cr_assert_eq(drv->domain_restore(hv, &c, img, true, &d2, &err), 0, "%s",
                 err.message);
    cr_expect_gt(d2, d);
    cr_expect_eq(info(d2).state, XCP_HV_STATE_PAUSED);
    cr_expect_eq(info(d2).memory_actual, 256 * MiB);
    cr_expect_str_eq(info(d2).vm_uuid, uuid1);
}

static void flip_byte(const char *path, off_t where)
{
    unsigned char c;
    int fd = open(path, O_RDWR);

    cr_assert(fd >= 0);
    if (where < 0)
        where += lseek(fd, 0, SEEK_END);
    cr_assert_eq(pread(fd, &c, 1, where), 1);
    c ^= 0x01;
    cr_assert_eq(pwrite(fd, &c, 1, where), 1);
    close(fd);
}

Test(sim, corrupted_image_is_refused_and_leaves_no_domain)
{
    uint32_t d = create(uuid1, "vm1", 256 * MiB, 2, false), d2;
    xcp_hv_domain_config c = config(uuid1, "vm1", 256 * MiB, 2);
    xcp_hv_domain_info *v;
    char img[128];
    size_t n;

    image_path(img, sizeof(img));
    cr_assert_eq(drv->domain_suspend(hv, d, img, &err), 0);
    flip_byte(img, -5); /* in the memory body */
    cr_expect_eq(drv->domain_restore(hv, &c, img, false, &d2, &err),
                 -EBADMSG);
    cr_expect(strstr(err.message, img) != NULL, "%s", err.message);
    flip_byte(img, -5);
    flip_byte(img, 20); /* in the header */
    cr_expect_eq(drv->domain_restore(hv, &c, img, false, &d2, &err),
                 -EBADMSG);
    cr_assert_eq(drv->domain_list(hv, &v, &n, &err), 0);
    cr_expect_eq(n, 1);
    free(v);
    flip_byte(img, 20);
    cr_expect_eq(drv->domain_restore(hv, &c, img, false, &d2, &err), 0,
                 "%s", err.message);
}

/* FNV-1a 64, as the sim's image checksums. */
static uint64_t fnv(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull;

    while (len--) {
        h ^= *p++;
        h *= 0x100000001b3ull;
    }
    return h;
}

/*
 * Alters one byte of the memory body and recomputes both checksums, as a
 * forger (or a buggy writer) would: only the content check can notice.
 */
static void forge_body(const char *path)
{
    char *data, *hdr, *body_sum, *body;
    size_t len, hlen;
    FILE *f = fopen(path, "r+b");
    char hex[17];

    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    len = (size_t)ftell(f);
    rewind(f);
    data = malloc(len + 1);
    cr_assert_eq(fread(data, 1, len, f), len);
    data[len] = '\0';
    hdr = strstr(data, "\nheader-checksum ") + 1;
    body = strchr(hdr, '\n') + 1;
    body[0] ^= 0x40;
    body_sum = strstr(data, "body-checksum ") + strlen("body-checksum ");
    snprintf(hex, sizeof(hex), "%016" PRIx64,
             fnv(body, len - (size_t)(body - data)));
    memcpy(body_sum, hex, 16);
    hlen = (size_t)(hdr - data);
    snprintf(hex, sizeof(hex), "%016" PRIx64, fnv(data, hlen));
    memcpy(hdr + strlen("header-checksum "), hex, 16);
    rewind(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    free(data);
}

Test(sim, image_with_consistent_checksums_but_wrong_memory_is_refused)
{
    uint32_t d = create(uuid1, "vm1", 256 * MiB, 2, false), d2;
    xcp_hv_domain_config c = config(uuid1, "vm1", 256 * MiB, 2);
    char img[128];

    image_path(img, sizeof(img));
    cr_assert_eq(drv->domain_suspend(hv, d, img, &err), 0);
    forge_body(img);
    cr_expect_eq(drv->domain_restore(hv, &c, img, false, &d2, &err),
                 -EBADMSG);
    cr_expect(strstr(err.message, "memory contents") != NULL, "%s",
              err.message);
}

Test(sim, truncated_image_is_refused)
{
    uint32_t d = create(uuid1, "vm1", 256 * MiB, 2, false), d2;
    xcp_hv_domain_config c = config(uuid1, "vm1", 256 * MiB, 2);
    char img[128];
    struct stat st;

    image_path(img, sizeof(img));
    cr_assert_eq(drv->domain_suspend(hv, d, img, &err), 0);
    cr_assert_eq(stat(img, &st), 0);
    cr_assert_eq(truncate(img, st.st_size - 8), 0);
    cr_expect_eq(drv->domain_restore(hv, &c, img, false, &d2, &err),
                 -EBADMSG);
}

Test(sim, image_of_another_vm_restores_only_if_it_fits)
{
    uint32_t d = create(uuid1, "vm1", 256 * MiB, 2, false), d2;
    xcp_hv_domain_config c = config(uuid1, "vm1", 128 * MiB, 2);
    char img[128];

    image_path(img, sizeof(img));
    cr_assert_eq(drv->domain_suspend(hv, d, img, &err), 0);
    /* too small for the image */
    cr_expect_eq(drv->domain_restore(hv, &c, img, false, &d2, &err), -EINVAL);
    c = config(uuid1, "vm1", 256 * MiB, 1); /* wrong vCPU count */
    cr_expect_eq(drv->domain_restore(hv, &c, img, false, &d2, &err), -EINVAL);
    /* a clone (another uuid) with the same shape resumes from it */
    c = config(uuid2, "vm2", 256 * MiB, 2);
    cr_expect_eq(drv->domain_restore(hv, &c, img, false, &d2, &err), 0,
                 "%s", err.message);
    cr_expect_str_eq(info(d2).vm_uuid, uuid2);
}

Test(sim, suspend_of_hung_guest_times_out_and_keeps_domain)
{
    uint32_t d = create(uuid1, "vm1", 64 * MiB, 1, false);
    xcp_hv_fault f = {XCP_HV_FAULT_VERSION, XCP_HV_FAULT_HANG, 0, 0, 0, d,
                      true};
    char img[128];

    image_path(img, sizeof(img));
    cr_assert_eq(drv->fault(hv, &f, &err), 0);
    cr_expect_eq(drv->domain_suspend(hv, d, img, &err), -ETIMEDOUT);
    cr_expect_eq(access(img, F_OK), -1);
    cr_expect_eq(info(d).state, XCP_HV_STATE_RUNNING);
}

/* ---- persistence --------------------------------------------------------- */

Test(sim, domains_survive_closing_and_reopening)
{
    uint32_t a = create(uuid1, "a", 64 * MiB, 1, false);
    uint32_t b = create(uuid2, "b", 64 * MiB, 1, true);
    uint64_t t0, t1;

    sleep_ms(20);
    t0 = info(a).cpu_time_ns;
    close_sim();
    sleep_ms(30); /* no toolstack running: the guest runs on */
    open_sim();
    t1 = info(a).cpu_time_ns;
    cr_expect_geq(t1, t0 + 30 * MS);
    cr_expect_eq(info(a).state, XCP_HV_STATE_RUNNING);
    cr_expect_str_eq(info(a).vm_uuid, uuid1);
    cr_expect_eq(info(b).state, XCP_HV_STATE_PAUSED);
    cr_expect_eq(info(b).cpu_time_ns, 0);
    /* ids are not reused after a restart either */
    cr_assert_eq(drv->domain_destroy(hv, b, &err), 0);
    close_sim();
    open_sim();
    cr_expect_eq(create(uuid2, "c", 64 * MiB, 1, false), 3);
}

Test(sim, shutdown_acknowledged_while_no_process_has_the_host_open)
{
    uint32_t d = create(uuid1, "vm1", 64 * MiB, 1, false);
    uint64_t t;

    cr_assert_eq(drv->domain_shutdown(hv, d, XCP_HV_SHUTDOWN_REBOOT, &err), 0);
    t = info(d).cpu_time_ns;
    close_sim();
    sleep_ms(600);
    open_sim();
    cr_expect_eq(info(d).state, XCP_HV_STATE_SHUTDOWN);
    cr_expect_eq(info(d).shutdown_reason, XCP_HV_SHUTDOWN_REBOOT);
    /* it stopped using CPU when it acknowledged, the delay (200 ms) after
     * the request, not when the host was reopened (600 ms after) */
    cr_expect_lt(info(d).cpu_time_ns, t + 400 * MS);
}

Test(sim, devices_and_config_survive_reopening)
{
    xcp_hv_disk disk = {disk_path, "qcow2", "xvda", false, false};
    xcp_hv_disk cd = {NULL, NULL, "hdc", true, true};
    xcp_hv_nic nic = {{0x02, 0, 0, 0, 0, 1}, "xenbr0", 0, 9000};
    xcp_hv_kv plat = {"viridian", "true with spaces % and\nnewline"};
    xcp_hv_domain_config c = config(uuid1, "name with spaces", 64 * MiB, 1);
    uint32_t d;

    c.disks = &disk;
    c.n_disks = 1;
    c.nics = &nic;
    c.n_nics = 1;
    c.platform = &plat;
    c.n_platform = 1;
    cr_assert_eq(drv->domain_create(hv, &c, false, &d, &err), 0, "%s",
                 err.message);
    cr_assert_eq(drv->disk_plug(hv, d, &cd, &err), 0, "%s", err.message);
    close_sim();
    open_sim();
    cr_expect_str_eq(info(d).name, "name with spaces");
    /* the devices are there: plugging the same again clashes */
    cr_expect_eq(drv->disk_plug(hv, d, &disk, &err), -EEXIST);
    cr_expect_eq(drv->nic_plug(hv, d, &nic, &err), -EEXIST);
    cr_expect_eq(drv->cdrom_insert(hv, d, "hdc", disk_path, "raw", &err), 0,
                 "%s", err.message);
    cr_expect_eq(drv->cdrom_insert(hv, d, "xvda", disk_path, "raw", &err),
                 -EINVAL);
    cr_expect_eq(drv->disk_unplug(hv, d, "xvda", false, &err), 0);
    cr_expect_eq(drv->disk_unplug(hv, d, "xvda", false, &err), -ENOENT);
    cr_expect_eq(drv->nic_unplug(hv, d, 0, false, &err), 0);
    cr_expect_eq(drv->nic_unplug(hv, d, 0, false, &err), -ENOENT);
}

Test(sim, state_file_is_replaced_atomically_and_corruption_is_detected)
{
    char path[128], tmp[140];
    xcp_hv_error e2;
    void *other;

    create(uuid1, "vm1", 64 * MiB, 1, false);
    close_sim();
    snprintf(path, sizeof(path), "%s/sim/state", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    cr_expect_eq(access(tmp, F_OK), -1); /* no temp file left over */
    flip_byte(path, 40);
    cr_expect_eq(xcp__sim_open(&other, dir, &opt, &e2), -EBADMSG);
    cr_expect(strstr(e2.message, path) != NULL, "%s", e2.message);
    flip_byte(path, 40);
    open_sim();
    cr_expect_eq(info(1).state, XCP_HV_STATE_RUNNING);
}

Test(sim, two_instances_one_after_another_see_same_domains)
{
    uint32_t d = create(uuid1, "vm1", 64 * MiB, 1, false);
    xcp_hv_domain_info i;
    void *other;

    cr_assert_eq(xcp__sim_open(&other, dir, &opt, &err), 0);
    cr_assert_eq(drv->domain_info(other, d, &i, &err), 0);
    cr_expect_str_eq(i.vm_uuid, uuid1);
    drv->close(other);
}

/* ---- the state log --------------------------------------------------------- */

static void state_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/sim/%s", dir, name);
}

static off_t file_size(const char *path)
{
    struct stat st;

    cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
    return st.st_size;
}

/* Bytes this process has passed to write() and the like so far. */
static uint64_t bytes_written(void)
{
    char line[128];
    unsigned long long v = 0;
    FILE *f = fopen("/proc/self/io", "re");

    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "wchar: %llu", &v) == 1)
            break;
    fclose(f);
    return v;
}

static void uuid_of(char *out, unsigned i)
{
    snprintf(out, XCP_HV_UUID_LEN, "00000000-0000-4000-8000-%012x", i);
}

static uint32_t create_nth(unsigned i, bool paused)
{
    char uuid[XCP_HV_UUID_LEN], name[32];

    uuid_of(uuid, i);
    snprintf(name, sizeof(name), "vm-%u", i);
    return create(uuid, name, 32 * MiB, 1, paused);
}

/* Room for a few hundred domains. */
static void big_host(void)
{
    close_sim();
    opt.host_memory = 64 * GiB;
    open_sim();
}

/* Everything domain_list says, minus what time changes. */
static bool same_domains(const xcp_hv_domain_info *a, size_t na,
                         const xcp_hv_domain_info *b, size_t nb)
{
    size_t i;

    if (na != nb)
        return false;
    for (i = 1; i < na; i++)
        if (a[i].domid != b[i].domid || strcmp(a[i].vm_uuid, b[i].vm_uuid) ||
            strcmp(a[i].name, b[i].name) || a[i].state != b[i].state ||
            a[i].memory_target != b[i].memory_target ||
            a[i].vcpus_online != b[i].vcpus_online)
            return false;
    return true;
}

Test(sim, state_survives_reopening_after_many_changes_and_compactions)
{
    xcp_hv_disk disk = {disk_path, "raw", "xvda", false, false};
    xcp_hv_domain_info *before, *after;
    uint32_t live[40] = {0}, created = 0;
    size_t nb, na;
    unsigned i, k;
    char log[128];

    /* enough records (about 270 bytes each) to fold the log several
     * times; destroys, pauses, memory targets and devices mixed in */
    for (i = 0; i < 1500; i++) {
        k = (i * 7) % 40;
        if (!live[k]) {
            live[k] = create_nth(i, i % 3 == 0);
            created++;
        } else if (i % 5 == 0) {
            cr_assert_eq(drv->domain_destroy(hv, live[k], &err), 0);
            live[k] = 0;
        } else if (i % 5 == 1) {
            cr_assert_eq(drv->domain_pause(hv, live[k], &err), 0);
        } else if (i % 5 == 2) {
            cr_assert_eq(drv->domain_unpause(hv, live[k], &err), 0);
        } else if (i % 5 == 3) {
            cr_assert_eq(drv->domain_set_memory_target(
                             hv, live[k], (16 + i % 3) * MiB, &err), 0);
        } else {
            disk.vdev = i % 2 ? "xvda" : "xvdb";
            drv->disk_plug(hv, live[k], &disk, &err); /* may clash */
        }
    }
    state_path(log, sizeof(log), "log");
    /* folded: the log stays around the larger of 64 KiB and the
     * snapshot, never the 400 KB that 1500 records take */
    cr_expect_lt(file_size(log), 160 * 1024, "log of %lld bytes",
                 (long long)file_size(log));
    cr_assert_eq(drv->domain_list(hv, &before, &nb, &err), 0);
    close_sim();
    open_sim();
    cr_assert_eq(drv->domain_list(hv, &after, &na, &err), 0);
    cr_expect(same_domains(before, nb, after, na), "%zu vs %zu domains", nb,
              na);
    /* ids go on from where they were */
    cr_expect_eq(create(uuid1, "new", 16 * MiB, 1, false), created + 1);
    free(before);
    free(after);
}

/* ---- one host, several processes at once ---------------------------------- */

/* As toolstack processes share a Xen host: each instance sees what the
 * other does, at once, and ids are never handed out twice. */
Test(sim, two_instances_open_at_once_see_each_others_changes)
{
    uint32_t a = create(uuid1, "vm1", 64 * MiB, 1, false), b, ids[8];
    xcp_hv_domain_config c = config(uuid2, "vm2", 64 * MiB, 1);
    xcp_hv_domain_info i;
    size_t n, k;
    bool seen = false;
    void *other;

    cr_assert_eq(xcp__sim_open(&other, dir, &opt, &err), 0, "%s",
                 err.message);
    cr_assert_eq(drv->domain_create(other, &c, false, &b, &err), 0, "%s",
                 err.message);
    cr_expect_gt(b, a, "the other instance handed out id %u again", b);
    cr_assert_eq(drv->domain_info(hv, b, &i, &err), 0, "%s", err.message);
    cr_expect_str_eq(i.vm_uuid, uuid2);
    /* this instance destroys the other's domain: the other hears of it */
    cr_assert_eq(drv->event_read(other, ids, 8, &n, &err), 0);
    cr_assert_eq(drv->domain_destroy(hv, b, &err), 0, "%s", err.message);
    cr_expect_eq(drv->domain_info(other, b, &i, &err), -ESRCH);
    cr_assert_eq(drv->event_read(other, ids, 8, &n, &err), 0);
    for (k = 0; k < n; k++)
        seen |= ids[k] == b;
    cr_expect(seen, "no event for the domain destroyed elsewhere");
    drv->close(other);
    close_sim();
    open_sim(); /* and the log both wrote reloads */
    cr_expect_eq(drv->domain_info(hv, b, &i, &err), -ESRCH);
    cr_expect_eq(info(a).state, XCP_HV_STATE_RUNNING);
}

/* Another instance folds the log into a new snapshot meanwhile (many
 * changes): this one reloads and agrees with it. */
Test(sim, an_instance_catches_up_after_another_compacts_the_log)
{
    xcp_hv_domain_info *mine, *theirs;
    uint32_t live[8] = {0};
    size_t nm, nt;
    unsigned i;
    void *other, *keep;

    big_host();
    create(uuid1, "vm1", 64 * MiB, 1, false);
    cr_assert_eq(xcp__sim_open(&other, dir, &opt, &err), 0, "%s",
                 err.message);
    keep = hv;
    hv = other; /* create_nth works on hv */
    for (i = 0; i < 600; i++) {
        if (live[i % 8]) {
            cr_assert_eq(drv->domain_destroy(hv, live[i % 8], &err), 0);
            live[i % 8] = 0;
        } else {
            live[i % 8] = create_nth(i, true);
        }
    }
    hv = keep;
    cr_assert_eq(drv->domain_list(hv, &mine, &nm, &err), 0, "%s",
                 err.message);
    cr_assert_eq(drv->domain_list(other, &theirs, &nt, &err), 0);
    cr_expect(same_domains(mine, nm, theirs, nt), "%zu vs %zu domains", nm,
              nt);
    free(mine);
    free(theirs);
    drv->close(other);
}

/* Processes changing one host at the same moment: no record lost or
 * interleaved, every id handed out once, and the host reloads. */
Test(sim, processes_changing_one_host_at_once_never_clash, .timeout = 120)
{
    enum { KIDS = 4, ROUNDS = 60 };
    xcp_hv_domain_info *v;
    int status, k, bad = 0;
    uint32_t next;
    size_t n;
    pid_t pid[KIDS];

    big_host();
    close_sim();
    for (k = 0; k < KIDS; k++) {
        pid[k] = fork();
        cr_assert(pid[k] >= 0);
        if (pid[k] == 0) {
            char uuid[XCP_HV_UUID_LEN], name[32];
            xcp_hv_domain_config c;
            uint32_t d, prev = 0;
            int r;

            if (xcp__sim_open(&hv, dir, &opt, &err) < 0)
                _exit(2);
            for (r = 0; r < ROUNDS; r++) {
                uuid_of(uuid, (unsigned)(k * ROUNDS + r));
                snprintf(name, sizeof(name), "kid%d-%d", k, r);
                c = config(uuid, name, 32 * MiB, 1);
                if (drv->domain_create(hv, &c, r % 2, &d, &err) < 0 ||
                    d <= prev || drv->domain_destroy(hv, d, &err) < 0)
                    _exit(3);
                prev = d;
            }
            drv->close(hv);
            _exit(0);
        }
    }
    for (k = 0; k < KIDS; k++) {
        cr_assert_eq(waitpid(pid[k], &status, 0), pid[k]);
        bad += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    cr_expect_eq(bad, 0, "%d of %d processes failed", bad, KIDS);
    open_sim();
    cr_assert_eq(drv->domain_list(hv, &v, &n, &err), 0, "%s", err.message);
    cr_expect_eq(n, 1, "%zu domains left", n);
    free(v);
    /* every create took its own id: the next is the one after them all */
    next = create(uuid1, "after", 32 * MiB, 1, true);
    cr_expect_eq(next, KIDS * ROUNDS + 1);
}

Test(sim, an_operation_writes_its_change_not_the_whole_host)
{
    uint64_t w0, w1;
    uint32_t first = 0, d;
    unsigned i;

    big_host();
    for (i = 0; i < 400; i++) {
        d = create_nth(i, true);
        if (!first)
            first = d;
    }
    /* 200 changes to a host of 400 domains (a whole state file is about
     * 90 KB): each should cost its own record, about 300 bytes, plus a
     * share of the occasional compaction */
    w0 = bytes_written();
    for (i = 0; i < 100; i++) {
        cr_assert_eq(drv->domain_unpause(hv, first + i, &err), 0);
        cr_assert_eq(drv->domain_pause(hv, first + i, &err), 0);
    }
    w1 = bytes_written();
    cr_expect_lt((w1 - w0) / 200, 4096, "%" PRIu64 " bytes written per change",
                 (w1 - w0) / 200);
}

/* Cuts the last `cut` bytes off a file, or appends `add` bytes of junk. */
static void chop(const char *path, off_t cut, size_t add)
{
    static const char junk[] = "rec 9 1\ndomain 9\nuuid \0\0\0\0\0\0\0";
    int fd;

    cr_assert_eq(truncate(path, file_size(path) - cut), 0);
    fd = open(path, O_WRONLY | O_APPEND);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, junk, add), (ssize_t)add);
    close(fd);
}

Test(sim, torn_last_log_record_is_dropped_on_load)
{
    uint32_t a = create(uuid1, "a", 64 * MiB, 1, false);
    xcp_hv_domain_info i;
    char log[128];
    off_t good;

    state_path(log, sizeof(log), "log");
    good = file_size(log);
    create(uuid2, "b", 64 * MiB, 1, false);
    close_sim();
    /* the second create's record cut short, as by a write that never
     * finished: that domain was never reported, and is gone */
    chop(log, 40, 0);
    open_sim();
    cr_expect_eq(info(a).state, XCP_HV_STATE_RUNNING);
    cr_expect_eq(drv->domain_info(hv, 2, &i, &err), -ESRCH);
    cr_expect_eq(file_size(log), good, "the torn tail is cut off the file");
    /* what follows is not appended after the torn bytes */
    cr_expect_eq(create(uuid2, "b", 64 * MiB, 1, true), 2);
    close_sim();
    /* junk at the end (a power cut's zeros) goes the same way */
    chop(log, 0, 30);
    open_sim();
    cr_expect_eq(info(2).state, XCP_HV_STATE_PAUSED);
    cr_expect_eq(info(a).state, XCP_HV_STATE_RUNNING);
}

Test(sim, corrupt_log_record_before_good_ones_is_refused)
{
    char log[128];
    xcp_hv_error e2;
    void *other;

    create(uuid1, "a", 64 * MiB, 1, false);
    create(uuid2, "b", 64 * MiB, 1, false);
    close_sim();
    state_path(log, sizeof(log), "log");
    flip_byte(log, 60); /* inside the first record */
    cr_expect_eq(xcp__sim_open(&other, dir, &opt, &e2), -EBADMSG);
    cr_expect(strstr(e2.message, log) != NULL, "%s", e2.message);
    flip_byte(log, 60);
    open_sim();
    cr_expect_eq(info(2).state, XCP_HV_STATE_RUNNING);
}

/* Puts the domains of the host in the free slots of live[]. */
static void adopt(uint32_t *live, unsigned slots)
{
    xcp_hv_domain_info *v;
    size_t n, i;
    unsigned k = 0;

    if (drv->domain_list(hv, &v, &n, &err) < 0)
        _exit(6);
    for (i = 1; i < n && k < slots; i++)
        live[k++] = v[i].domid;
    free(v);
}

/*
 * The child: creates, starts and destroys domains on the sim in dir as
 * fast as it can, telling the parent through fd what it has been told
 * (and what it is about to do), until it is killed.
 */
static _Noreturn void storm_child(int fd, unsigned seed)
{
    xcp_hv_domain_config c;
    char uuid[XCP_HV_UUID_LEN], name[32], line[32];
    uint32_t live[64] = {0}, d;
    unsigned i, k;
    int n;

    if (xcp__sim_open(&hv, dir, &opt, &err) < 0)
        _exit(2);
    adopt(live, 64);
    for (i = seed * 1000000;; i++) {
        k = (i * 13) % 64;
        if (live[k]) {
            n = snprintf(line, sizeof(line), "d %u\n", live[k]);
            if (write(fd, line, (size_t)n) != n)
                _exit(3);
            if (drv->domain_destroy(hv, live[k], &err) < 0)
                _exit(4);
            n = snprintf(line, sizeof(line), "D %u\n", live[k]);
            live[k] = 0;
        } else {
            uuid_of(uuid, i);
            snprintf(name, sizeof(name), "k-%u", i);
            c = config(uuid, name, 16 * MiB, 1);
            if (drv->domain_create(hv, &c, true, &d, &err) < 0 ||
                drv->domain_unpause(hv, d, &err) < 0)
                _exit(5);
            live[k] = d;
            n = snprintf(line, sizeof(line), "C %u\n", d);
        }
        if (write(fd, line, (size_t)n) != n)
            _exit(3);
    }
}

enum told { UNKNOWN, CREATED, DESTROYING, DESTROYED };

/* Reads what the child reported until it is gone. */
static void read_reports(int fd, char *told, size_t size)
{
    char buf[4096], *p, *nl, kind;
    size_t held = 0;
    ssize_t got;
    unsigned id;

    while ((got = read(fd, buf + held, sizeof(buf) - 1 - held)) > 0) {
        buf[held + (size_t)got] = '\0';
        for (p = buf; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
            cr_assert_eq(sscanf(p, "%c %u", &kind, &id), 2, "%s", p);
            cr_assert_lt(id, size);
            told[id] = kind == 'C' ? CREATED
                       : kind == 'd' ? DESTROYING : DESTROYED;
        }
        /* a line split across reads waits for its end */
        held = strlen(p);
        memmove(buf, p, held);
    }
}

Test(sim, killed_at_any_point_the_host_reloads_what_it_reported,
     .timeout = 120)
{
    static char told[0x7ff0]; /* by domid, all below DOMID_FIRST_RESERVED */
    xcp_hv_domain_info *v;
    unsigned round, id, unknown;
    size_t n, i;
    int fds[2], status;
    pid_t pid;
    bool there;

    close_sim();
    for (round = 0; round < 25; round++) {
        cr_assert_eq(pipe(fds), 0);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            storm_child(fds[1], round + 1);
        }
        close(fds[1]);
        /* a few ms, varied, to land in loads, appends and compactions */
        sleep_ms(3 + round * 7 % 23);
        kill(pid, SIGKILL);
        read_reports(fds[0], told, sizeof(told));
        close(fds[0]);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFSIGNALED(status), "the child ended by itself: %d",
                  WEXITSTATUS(status));
        /* every domain it was told exists, exists; none it was told is
         * destroyed does; at most one it was not told about (a create in
         * flight) */
        open_sim();
        cr_assert_eq(drv->domain_list(hv, &v, &n, &err), 0, "%s",
                     err.message);
        unknown = 0;
        for (id = 1; id < sizeof(told); id++) {
            for (i = 1, there = false; i < n && !there; i++)
                there = v[i].domid == id;
            cr_expect(told[id] != CREATED || there, "round %u: domain %u "
                      "was reported created and is gone", round, id);
            cr_expect(told[id] != DESTROYED || !there, "round %u: domain "
                      "%u was reported destroyed and is back", round, id);
            unknown += there && told[id] == UNKNOWN;
            if (told[id] != UNKNOWN || there)
                told[id] = there ? CREATED : DESTROYED;
        }
        cr_expect_leq(unknown, 1, "round %u: %u domains never reported",
                      round, unknown);
        free(v);
        close_sim();
    }
}

/* ---- events -------------------------------------------------------------- */

static bool readable(int fd, int timeout_ms)
{
    struct pollfd p = {fd, POLLIN, 0};

    return poll(&p, 1, timeout_ms) == 1;
}

Test(sim, event_fd_wakes_when_guest_acknowledges_shutdown)
{
    uint32_t d = create(uuid1, "vm1", 64 * MiB, 1, false), ids[8];
    size_t n;
    int fd;

    cr_assert_eq(drv->event_fd(hv, &fd, &err), 0);
    /* the create itself is an event */
    cr_expect(readable(fd, 0));
    cr_assert_eq(drv->event_read(hv, ids, 8, &n, &err), 0);
    cr_expect_eq(n, 1);
    cr_expect_eq(ids[0], d);
    cr_expect(!readable(fd, 0));
    cr_assert_eq(drv->domain_shutdown(hv, d, XCP_HV_SHUTDOWN_POWEROFF, &err),
                 0);
    cr_expect(!readable(fd, 0));
    cr_expect(readable(fd, 10000));
    cr_assert_eq(drv->event_read(hv, ids, 8, &n, &err), 0);
    cr_expect_eq(n, 1);
    cr_expect_eq(ids[0], d);
    cr_expect_eq(info(d).state, XCP_HV_STATE_SHUTDOWN);
    cr_expect(!readable(fd, 0));
}

static const char *guest_value(const xcp_hv_guest_datum *g, size_t n,
                               const char *path)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(g[i].path, path) == 0)
            return g[i].value;
    return NULL;
}

/* The modelled guest agent: silent until the guest has run a while, then
 * its news is a domain event; what it reports (from guest_os and the
 * NICs) survives reopening. */
Test(sim, guest_agent_reports_after_boot_through_an_event)
{
    xcp_hv_domain_config c = config(uuid1, "vm1", 64 * MiB, 1);
    xcp_hv_nic nic = {{0x02, 0, 0, 0, 0x12, 0x34}, "xenbr0", 0, 1500};
    xcp_hv_guest_datum *g = NULL;
    uint32_t d, ids[8];
    size_t n;
    int fd;

    close_sim();
    opt.agent_delay_ns = 300 * MS;
    open_sim();
    c.guest_os = "Ubuntu Noble Numbat 24.04";
    c.nics = &nic;
    c.n_nics = 1;
    cr_assert_eq(drv->domain_create(hv, &c, false, &d, &err), 0, "%s",
                 err.message);
    cr_assert_eq(drv->domain_guest_data(hv, d, &g, &n, &err), 0);
    cr_expect_eq(n, 0, "the agent reported before the guest ran");
    free(g);
    cr_assert_eq(drv->event_fd(hv, &fd, &err), 0);
    cr_assert_eq(drv->event_read(hv, ids, 8, &n, &err), 0); /* the create */
    cr_expect(readable(fd, 20000), "no event when the agent started");
    cr_assert_eq(drv->event_read(hv, ids, 8, &n, &err), 0);
    cr_expect_eq(n, 1);
    cr_expect_eq(ids[0], d);
    close_sim();
    open_sim();
    cr_assert_eq(drv->domain_guest_data(hv, d, &g, &n, &err), 0);
    cr_assert_gt(n, 0);
    cr_expect_str_eq(guest_value(g, n, "data/os_name"),
                     "Ubuntu Noble Numbat 24.04");
    cr_expect_str_eq(guest_value(g, n, "data/os_distro"), "ubuntu");
    cr_expect_str_eq(guest_value(g, n, "data/os_majorver"), "24");
    cr_expect_str_eq(guest_value(g, n, "data/os_minorver"), "04");
    cr_expect_not_null(guest_value(g, n, "attr/PVAddons/MajorVersion"));
    cr_expect_not_null(guest_value(g, n, "attr/vif/0/ipv4/0"));
    cr_expect_eq(strtoull(guest_value(g, n, "data/meminfo_total"), NULL,
                          10),
                 64 * 1024);
    free(g);
}

Test(sim, event_read_returns_at_most_cap_and_stays_readable)
{
    uint32_t ids[2];
    size_t n;
    int fd;

    create(uuid1, "a", 64 * MiB, 1, false);
    create(uuid2, "b", 64 * MiB, 1, false);
    cr_assert_eq(drv->event_fd(hv, &fd, &err), 0);
    cr_assert_eq(drv->event_read(hv, ids, 1, &n, &err), 0);
    cr_expect_eq(n, 1);
    cr_expect_eq(ids[0], 1);
    cr_expect(readable(fd, 10000));
    cr_assert_eq(drv->event_read(hv, ids, 2, &n, &err), 0);
    cr_expect_eq(n, 1);
    cr_expect_eq(ids[0], 2);
}

/* ---- faults -------------------------------------------------------------- */

/* Calls op once on domain d with harmless arguments; returns its result. */
/* ---- live migration's two ends, for call_op ---- */

/* A receiver that says "ready" at once and reads whatever comes. */
static void *fake_receiver(void *arg)
{
    int fd = *(int *)arg;
    char buf[4096];

    if (send(fd, "ready\n", 6, MSG_NOSIGNAL) != 6)
        return NULL;
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    return NULL;
}

static int migrate_send_to_fake(uint32_t d)
{
    xcp_hv_migrate_stats st;
    pthread_t t;
    int sv[2], rc;

    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cr_assert_eq(pthread_create(&t, NULL, fake_receiver, &sv[1]), 0);
    rc = drv->domain_migrate_send(hv, d, sv[0], &st, &err);
    shutdown(sv[0], SHUT_RDWR);
    pthread_join(t, NULL);
    close(sv[0]);
    close(sv[1]);
    return rc;
}

struct peer_send {
    void *peer;
    uint32_t domid;
    int fd;
};

static void *peer_sender(void *arg)
{
    struct peer_send *p = arg;
    xcp_hv_migrate_stats st;
    xcp_hv_error e = {0};

    (void)drv->domain_migrate_send(p->peer, p->domid, p->fd, &st, &e);
    shutdown(p->fd, SHUT_RDWR);
    return NULL;
}

/* A receive here of VM uuid2 sent by another simulated host. */
static int migrate_receive_from_peer(const xcp_hv_domain_config *c)
{
    struct xcp__sim_options o = opt;
    char peer_dir[64];
    struct peer_send p = {0};
    xcp_hv_error e = {0};
    pthread_t t;
    uint32_t id;
    bool running;
    int sv[2], rc;

    snprintf(peer_dir, sizeof(peer_dir), "%s/peer", dir);
    mkdir(peer_dir, 0700);
    o.migrate_bandwidth = 64 * GiB;
    cr_assert_eq(xcp__sim_open(&p.peer, peer_dir, &o, &e), 0, "%s",
                 e.message);
    cr_assert_eq(drv->domain_create(p.peer, c, false, &p.domid, &e), 0, "%s",
                 e.message);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    p.fd = sv[0];
    cr_assert_eq(pthread_create(&t, NULL, peer_sender, &p), 0);
    rc = drv->domain_migrate_receive(hv, c, sv[1], &id, &running, &err);
    shutdown(sv[1], SHUT_RDWR);
    pthread_join(t, NULL);
    close(sv[0]);
    close(sv[1]);
    if (rc == 0)
        cr_assert_eq(drv->domain_destroy(hv, id, &e), 0, "%s", e.message);
    drv->close(p.peer);
    nftw(peer_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    return rc;
}

static int call_op(xcp_hv_op op, uint32_t d, const char *img)
{
    static xcp_hv_host_info h;
    xcp_hv_domain_config c = config(uuid2, "other", 64 * MiB, 1);
    xcp_hv_disk disk = {disk_path, "raw", "xvdb", false, false};
    xcp_hv_nic nic = {{0x02, 0, 0, 0, 0, 2}, "xenbr0", 1, 0};
    xcp_hv_domain_info i, *list = NULL;
    xcp_hv_vcpu_info *vcpus = NULL;
    xcp_hv_guest_datum *guest = NULL;
    double *util = NULL;
    uint64_t bytes;
    uint32_t id, ids[4];
    size_t n;
    int fd, rc = -1;

    switch (op) {
    case XCP_HV_OP_HOST_INFO: rc = drv->host_info(hv, &h, &err); break;
    case XCP_HV_OP_HOST_CPU_USAGE:
        rc = drv->host_cpu_usage(hv, &util, &n, &err);
        break;
    case XCP_HV_OP_MEMORY_OVERHEAD:
        rc = drv->memory_overhead(hv, &c, &bytes, &err);
        break;
    case XCP_HV_OP_DOMAIN_CREATE:
        rc = drv->domain_create(hv, &c, false, &id, &err);
        break;
    case XCP_HV_OP_DOMAIN_DESTROY: rc = drv->domain_destroy(hv, d, &err); break;
    case XCP_HV_OP_DOMAIN_PAUSE: rc = drv->domain_pause(hv, d, &err); break;
    case XCP_HV_OP_DOMAIN_UNPAUSE: rc = drv->domain_unpause(hv, d, &err); break;
    case XCP_HV_OP_DOMAIN_SHUTDOWN:
        rc = drv->domain_shutdown(hv, d, XCP_HV_SHUTDOWN_POWEROFF, &err);
        break;
    case XCP_HV_OP_DOMAIN_WAIT:
        rc = drv->domain_wait(hv, d, 0, &i, &err);
        if (rc == -ETIMEDOUT)
            rc = 0; /* ran, and timed out as it should */
        break;
    case XCP_HV_OP_DOMAIN_SUSPEND:
        rc = drv->domain_suspend(hv, d, img, &err);
        break;
    case XCP_HV_OP_DOMAIN_RESTORE:
        c = config(uuid1, "vm1", 64 * MiB, 1);
        rc = drv->domain_restore(hv, &c, img, false, &id, &err);
        break;
    case XCP_HV_OP_DOMAIN_SET_MEMORY_TARGET:
        rc = drv->domain_set_memory_target(hv, d, 32 * MiB, &err);
        break;
    case XCP_HV_OP_DOMAIN_SET_VCPUS:
        rc = drv->domain_set_vcpus(hv, d, 1, &err);
        break;
    case XCP_HV_OP_DOMAIN_LIST:
        rc = drv->domain_list(hv, &list, &n, &err);
        break;
    case XCP_HV_OP_DOMAIN_INFO: rc = drv->domain_info(hv, d, &i, &err); break;
    case XCP_HV_OP_DOMAIN_VCPU_INFO:
        rc = drv->domain_vcpu_info(hv, d, &vcpus, &n, &err);
        break;
    case XCP_HV_OP_DISK_PLUG: rc = drv->disk_plug(hv, d, &disk, &err); break;
    case XCP_HV_OP_DISK_UNPLUG:
        rc = drv->disk_unplug(hv, d, "xvdb", false, &err);
        break;
    case XCP_HV_OP_CDROM_INSERT:
        rc = drv->cdrom_insert(hv, d, "hdc", disk_path, "raw", &err);
        break;
    case XCP_HV_OP_NIC_PLUG: rc = drv->nic_plug(hv, d, &nic, &err); break;
    case XCP_HV_OP_NIC_UNPLUG:
        rc = drv->nic_unplug(hv, d, 1, false, &err);
        break;
    case XCP_HV_OP_EVENT_FD: rc = drv->event_fd(hv, &fd, &err); break;
    case XCP_HV_OP_EVENT_READ:
        rc = drv->event_read(hv, ids, 4, &n, &err);
        break;
    case XCP_HV_OP_CONSOLE_OPEN:
        rc = drv->console_open(hv, d, XCP_HV_CONSOLE_VT100, &fd, &err);
        if (rc == 0)
            close(fd);
        break;
    case XCP_HV_OP_DOMAIN_GUEST_DATA:
        rc = drv->domain_guest_data(hv, d, &guest, &n, &err);
        break;
    case XCP_HV_OP_DOMAIN_MIGRATE_LOCAL:
        rc = drv->domain_migrate_local(hv, d, &id, &err);
        break;
    case XCP_HV_OP_BRIDGE_REMOVE:
        rc = drv->bridge_remove(hv, "xapi0", &err);
        break;
    case XCP_HV_OP_BRIDGE_ENSURE:
        rc = drv->bridge_ensure(hv, "xapi0", &err);
        break;
    case XCP_HV_OP_DISK_PAUSE: rc = drv->disk_pause(hv, d, "xvdc", &err); break;
    case XCP_HV_OP_DISK_REOPEN:
        rc = drv->disk_reopen(hv, d, "xvdc", live_path, "qcow2", &err);
        break;
    case XCP_HV_OP_DISK_RESIZE:
        rc = drv->disk_resize(hv, d, "xvdc", 2 * MiB, &err);
        break;
    case XCP_HV_OP_DISK_CBT:
        rc = drv->disk_cbt(hv, d, "xvdc", "xcp-cbt", true, &err);
        break;
    case XCP_HV_OP_DISK_SIZE:
        rc = drv->disk_size(hv, d, "xvdc", &bytes, &err);
        break;
    case XCP_HV_OP_DISK_SNAPSHOT:
        rc = drv->disk_snapshot(hv, d, "xvdc", qcow2_overlay(), "qcow2",
                                &err);
        break;
    case XCP_HV_OP_DISK_STREAM:
        rc = drv->disk_stream(hv, d, "xvdc", 0, "", &bytes, &bytes, &err);
        break;
    case XCP_HV_OP_DISK_STREAM_CANCEL:
        rc = drv->disk_stream_cancel(hv, d, "xvdc", &err);
        break;
    case XCP_HV_OP_STATS: {
        xcp_hv_stats st;

        rc = drv->stats(hv, &st, &err);
        if (rc == 0) {
            free(st.pcpu_busy_ns);
            free(st.doms);
            free(st.vcpu_ns);
            free(st.devs);
            free(st.guest_free_kib);
        }
        break;
    }
    case XCP_HV_OP_DOMAIN_MIGRATE_SEND:
        rc = migrate_send_to_fake(d);
        break;
    case XCP_HV_OP_DOMAIN_MIGRATE_RECEIVE:
        rc = migrate_receive_from_peer(&c);
        break;
    case XCP_HV_OP_FAULT:
    case XCP_HV_OP__COUNT: break;
    }
    free(guest);
    free(list);
    free(vcpus);
    free(util);
    return rc;
}

/* A qcow2 image of 1 MiB made by the library, what the sim's back end
 * opens, beside the raw disk. */
static const char *qcow2_disk(void)
{
    char *path = live_path, msg[256];

    snprintf(path, sizeof(live_path), "%s/live.qcow2", dir);
    unlink(path);
    cr_assert_eq(xcp__image_create(path, "qcow2", MiB, NULL, msg,
                                   sizeof(msg)), 0, "%s", msg);
    return path;
}

/* A qcow2 overlay of qcow2_disk's image: its header with a backing file
 * name, "live.qcow2" (relative: beside it), at offset 512. */
static const char *qcow2_overlay(void)
{
    unsigned char h[1024] = {'Q', 'F', 'I', 0xfb, 0, 0, 0, 2};
    const char *name = "live.qcow2";
    FILE *f;

    h[14] = 0x02;               /* backing_file_offset: 512 */
    h[19] = (unsigned char)strlen(name); /* backing_file_size */
    h[23] = 16;                 /* cluster_bits */
    h[29] = 0x10;               /* size: 0x100000 */
    h[39] = 1;                  /* l1_size */
    memcpy(h + 512, name, strlen(name));
    snprintf(overlay_path, sizeof(overlay_path), "%s/live-ov.qcow2", dir);
    f = fopen(overlay_path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(h, 1, sizeof(h), f), sizeof(h));
    fclose(f);
    return overlay_path;
}

static bool live_op(xcp_hv_op op)
{
    return op == XCP_HV_OP_DISK_PAUSE || op == XCP_HV_OP_DISK_REOPEN ||
           op == XCP_HV_OP_DISK_RESIZE || op == XCP_HV_OP_DISK_CBT ||
           op == XCP_HV_OP_DISK_SIZE || op == XCP_HV_OP_DISK_SNAPSHOT ||
           op == XCP_HV_OP_DISK_STREAM || op == XCP_HV_OP_DISK_STREAM_CANCEL;
}

/* A domain on which every operation can succeed, in the order of the enum. */
static uint32_t prepare_for(xcp_hv_op op, char *img, size_t size)
{
    xcp_hv_disk disk = {disk_path, "raw", "xvdb", false, false};
    xcp_hv_disk cd = {NULL, NULL, "hdc", true, true};
    xcp_hv_nic nic = {{0x02, 0, 0, 0, 0, 2}, "xenbr0", 1, 0};
    uint32_t d;

    image_path(img, size);
    d = create(uuid1, "vm1", 64 * MiB, 1, op == XCP_HV_OP_DOMAIN_UNPAUSE);
    cr_assert_eq(drv->disk_plug(hv, d, &cd, &err), 0);
    if (op == XCP_HV_OP_DISK_UNPLUG)
        cr_assert_eq(drv->disk_plug(hv, d, &disk, &err), 0);
    if (op == XCP_HV_OP_NIC_UNPLUG)
        cr_assert_eq(drv->nic_plug(hv, d, &nic, &err), 0);
    if (live_op(op)) {
        xcp_hv_disk q = {qcow2_disk(), "qcow2", "xvdc", false, false};
        cr_assert_eq(drv->disk_plug(hv, d, &q, &err), 0, "%s", err.message);
    }
    if (op == XCP_HV_OP_DISK_REOPEN)
        cr_assert_eq(drv->disk_pause(hv, d, "xvdc", &err), 0);
    if (op == XCP_HV_OP_DOMAIN_RESTORE) {
        cr_assert_eq(drv->domain_suspend(hv, d, img, &err), 0);
        d = 0;
    }
    return d;
}

Test(sim, every_operation_fails_as_injected_then_recovers)
{
    xcp_hv_fault f = {XCP_HV_FAULT_VERSION, XCP_HV_FAULT_FAIL_OP, 0, EIO, 2, 0,
                      false};
    char img[128];
    uint32_t d;
    int op;

    for (op = 0; op < XCP_HV_OP__COUNT; op++) {
        if (op == XCP_HV_OP_FAULT)
            continue;
        d = prepare_for((xcp_hv_op)op, img, sizeof(img));
        f.op = (xcp_hv_op)op;
        cr_assert_eq(drv->fault(hv, &f, &err), 0);
        cr_expect_eq(call_op((xcp_hv_op)op, d, img), -EIO, "%s",
                     xcp__hv_op_name((xcp_hv_op)op));
        cr_expect_eq(err.code, -EIO);
        cr_expect(strstr(err.message, xcp__hv_op_name((xcp_hv_op)op)) != NULL,
                  "%s", err.message);
        cr_expect_eq(call_op((xcp_hv_op)op, d, img), -EIO, "%s (2nd)",
                     xcp__hv_op_name((xcp_hv_op)op));
        cr_expect_eq(call_op((xcp_hv_op)op, d, img), 0, "%s (3rd): %s",
                     xcp__hv_op_name((xcp_hv_op)op), err.message);
        /* start the next operation from a clean host */
        close_sim();
        nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
        cr_assert_eq(mkdir(dir, 0700), 0);
        cr_assert(creat(disk_path, 0600) >= 0);
        open_sim();
    }
}

Test(sim, injected_create_failure_leaves_nothing_behind)
{
    xcp_hv_fault f = {XCP_HV_FAULT_VERSION, XCP_HV_FAULT_FAIL_OP,
                      XCP_HV_OP_DOMAIN_CREATE, ENOSPC, 1, 0, false};
    xcp_hv_domain_config c = config(uuid1, "vm1", 64 * MiB, 1);
    uint64_t before = free_mem();
    uint32_t d;

    cr_assert_eq(drv->fault(hv, &f, &err), 0);
    cr_expect_eq(drv->domain_create(hv, &c, false, &d, &err), -ENOSPC);
    cr_expect_eq(free_mem(), before);
    cr_expect_eq(drv->domain_create(hv, &c, false, &d, &err), 0);
    cr_expect_eq(d, 1);
}

Test(sim, fault_clear_stops_injected_failures)
{
    xcp_hv_fault f = {XCP_HV_FAULT_VERSION, XCP_HV_FAULT_FAIL_OP,
                      XCP_HV_OP_DOMAIN_LIST, EIO, UINT32_MAX, 0, false};
    xcp_hv_domain_info *v;
    size_t n;

    cr_assert_eq(drv->fault(hv, &f, &err), 0);
    cr_expect_eq(drv->domain_list(hv, &v, &n, &err), -EIO);
    f.kind = XCP_HV_FAULT_CLEAR;
    cr_assert_eq(drv->fault(hv, &f, &err), 0);
    cr_expect_eq(drv->domain_list(hv, &v, &n, &err), 0);
    free(v);
}

Test(sim, faults_from_the_environment_syntax)
{
    xcp_hv_domain_config c = config(uuid2, "vm2", 64 * MiB, 1);
    xcp_hv_domain_info i;
    uint32_t d = create(uuid1, "vm1", 64 * MiB, 1, false), d2;
    char spec[128];
    xcp_hv_error e2;
    void *bad;

    close_sim();
    snprintf(spec, sizeof(spec),
             "domain_create=ENOMEM*2, host_info=5; crash=%u hang=99", d);
    opt.faults = spec;
    open_sim();
    cr_expect_eq(info(d).shutdown_reason, XCP_HV_SHUTDOWN_CRASH);
    cr_expect_eq(drv->domain_create(hv, &c, false, &d2, &err), -ENOMEM);
    cr_expect_eq(drv->domain_create(hv, &c, false, &d2, &err), -ENOMEM);
    cr_expect_eq(drv->domain_create(hv, &c, false, &d2, &err), 0);
    cr_expect_eq(drv->domain_info(hv, d2, &i, &err), 0);
    close_sim();
    opt.faults = "hang=*";
    open_sim();
    cr_assert_eq(drv->domain_shutdown(hv, d2, XCP_HV_SHUTDOWN_POWEROFF, &err),
                 0);
    cr_expect_eq(drv->domain_wait(hv, d2, 60, &i, &err), -ETIMEDOUT);
    opt.faults = "domain_create=EWHAT";
    cr_expect_eq(xcp__sim_open(&bad, dir, &opt, &e2), -EINVAL);
    cr_expect(strstr(e2.message, "EWHAT") != NULL, "%s", e2.message);
    opt.faults = "no_such_op=EIO";
    cr_expect_eq(xcp__sim_open(&bad, dir, &opt, &e2), -EINVAL);
}

Test(sim, size_parser)
{
    uint64_t v;

    cr_expect_eq(xcp__sim_parse_size("4096", &v), 0);
    cr_expect_eq(v, 4096);
    cr_expect_eq(xcp__sim_parse_size("512MiB", &v), 0);
    cr_expect_eq(v, 512 * MiB);
    cr_expect_eq(xcp__sim_parse_size("2G", &v), 0);
    cr_expect_eq(v, 2 * GiB);
    cr_expect_eq(xcp__sim_parse_size("2 GiB", &v), -EINVAL);
    cr_expect_eq(xcp__sim_parse_size("-1", &v), -EINVAL);
    cr_expect_eq(xcp__sim_parse_size("99999999999999999999", &v), -EINVAL);
}

Test(sim, environment_sets_the_host)
{
    struct xcp__sim_options o;
    xcp_hv_error e2;

    setenv("XCP_SIM_HOST_MEMORY", "16GiB", 1);
    setenv("XCP_SIM_HOST_CPUS", "12", 1);
    setenv("XCP_SIM_SHUTDOWN_DELAY_MS", "7", 1);
    cr_assert_eq(xcp__sim_options_default(&o, &e2), 0, "%s", e2.message);
    cr_expect_eq(o.host_memory, 16 * GiB);
    cr_expect_eq(o.host_cpus, 12);
    cr_expect_eq(o.shutdown_delay_ns, 7 * MS);
    cr_expect_eq(o.dom0_memory, GiB + 16 * GiB / 20);
    setenv("XCP_SIM_HOST_MEMORY", "lots", 1);
    cr_expect_eq(xcp__sim_options_default(&o, &e2), -EINVAL);
    cr_expect(strstr(e2.message, "XCP_SIM_HOST_MEMORY") != NULL);
}

/* ---- registry ------------------------------------------------------------ */

TestSuite(registry, .init = setup, .fini = teardown);

Test(registry, explicit_sim_and_unknown_names)
{
    xcp_hv *h;

    cr_assert_eq(xcp__hv_open(&h, dir, "sim", &err), 0, "%s", err.message);
    cr_expect_str_eq(xcp__hv_name(h), "sim");
    cr_expect_null(xcp__hv_fallback_reason(h));
    xcp__hv_close(h);
    cr_expect_eq(xcp__hv_open(&h, dir, "vmware", &err), -ENOENT);
    cr_expect(strstr(err.message, "vmware") && strstr(err.message, "sim"),
              "%s", err.message);
}

Test(registry, env_selects_driver_and_auto_falls_back_to_sim)
{
    xcp_hv *h;

    setenv("XCP_HV", "sim", 1);
    cr_assert_eq(xcp__hv_open(&h, dir, NULL, &err), 0);
    cr_expect_str_eq(xcp__hv_name(h), "sim");
    xcp__hv_close(h);
    setenv("XCP_HV", "nope", 1);
    cr_expect_eq(xcp__hv_open(&h, dir, NULL, &err), -ENOENT);
    unsetenv("XCP_HV");
    /* no hypervisor on a test machine: auto lands on sim and says why */
    cr_assert_eq(xcp__hv_open(&h, dir, NULL, &err), 0, "%s", err.message);
    cr_expect_str_eq(xcp__hv_name(h), "sim");
    cr_expect_not_null(xcp__hv_fallback_reason(h));
    xcp__hv_close(h);
}

Test(registry, wrappers_report_missing_slots_as_enotsup)
{
    xcp_hv_driver partial = xcp__hv_sim_driver;
    xcp_hv_fault f = {XCP_HV_FAULT_VERSION, XCP_HV_FAULT_CLEAR, 0, 0, 0, 0,
                      false};
    xcp_hv *h;
    int i;

    cr_assert_eq(xcp__hv_open(&h, dir, "sim", &err), 0);
    for (i = 0; i < XCP_HV_OP__COUNT; i++)
        cr_expect(xcp__hv_supports(h, (xcp_hv_op)i), "%s",
                  xcp__hv_op_name((xcp_hv_op)i));
    cr_expect_eq(xcp__hv_domain_pause(h, 42, &err), -ESRCH);
    cr_expect(strstr(err.message, "42") != NULL, "%s", err.message);
    xcp__hv_close(h);

    partial.name = "partial";
    partial.fault = NULL;
    cr_assert_eq(xcp__hv_open_driver(&h, &partial, dir, &err), 0);
    cr_expect(!xcp__hv_supports(h, XCP_HV_OP_FAULT));
    cr_expect_eq(xcp__hv_fault(h, &f, &err), -ENOTSUP);
    cr_expect_eq(err.code, -ENOTSUP);
    cr_expect_str_eq(err.message, "partial driver does not support fault");
    xcp__hv_close(h);
}

Test(registry, names_round_trip)
{
    int i;

    for (i = 0; i < XCP_HV_OP__COUNT; i++)
        cr_expect_eq(xcp__hv_op_from_name(xcp__hv_op_name((xcp_hv_op)i)), i);
    cr_expect_eq(xcp__hv_op_from_name("bogus"), -1);
    cr_expect_str_eq(xcp__hv_shutdown_reason_name(XCP_HV_SHUTDOWN_CRASH),
                     "crash");
    cr_expect_eq(xcp__hv_state_from_name("paused"), XCP_HV_STATE_PAUSED);
    cr_expect_eq(xcp__hv_domain_type_from_name("pvh"), XCP_HV_DOMAIN_PVH);
}

/* ---- the drivers' changed-domain queue (hv.c) ---------------------------- */

Test(hv_dirty, queues_each_domain_once_in_first_change_order)
{
    xcp__hv_dirty q = {0};
    uint32_t out[4] = {0};

    xcp__hv_dirty_mark(&q, 7);
    xcp__hv_dirty_mark(&q, 3);
    xcp__hv_dirty_mark(&q, 7);
    xcp__hv_dirty_mark(&q, 5);
    cr_assert_eq(q.n, 3);
    cr_expect_eq(xcp__hv_dirty_take(&q, out, 4), 3);
    cr_expect_eq(out[0], 7);
    cr_expect_eq(out[1], 3);
    cr_expect_eq(out[2], 5);
    cr_expect_eq(q.n, 0);
    /* taken, a domain queues again */
    xcp__hv_dirty_mark(&q, 7);
    cr_expect_eq(xcp__hv_dirty_take(&q, out, 4), 1);
    cr_expect_eq(out[0], 7);
    xcp__hv_dirty_free(&q);
    cr_expect_eq(q.n, 0);
    cr_expect_null(q.ids);
}

Test(hv_dirty, take_hands_out_at_most_cap_and_keeps_the_rest_in_order)
{
    xcp__hv_dirty q = {0};
    uint32_t out[2] = {0};
    uint32_t d;

    for (d = 1; d <= 5; d++)
        xcp__hv_dirty_mark(&q, d);
    cr_expect_eq(xcp__hv_dirty_take(&q, out, 0), 0);
    cr_expect_eq(q.n, 5);
    cr_expect_eq(xcp__hv_dirty_take(&q, out, 2), 2);
    cr_expect(out[0] == 1 && out[1] == 2);
    cr_expect_eq(xcp__hv_dirty_take(&q, out, 2), 2);
    cr_expect(out[0] == 3 && out[1] == 4);
    xcp__hv_dirty_mark(&q, 1);
    cr_expect_eq(xcp__hv_dirty_take(&q, out, 2), 2);
    cr_expect(out[0] == 5 && out[1] == 1);
    cr_expect_eq(xcp__hv_dirty_take(&q, out, 2), 0);
    xcp__hv_dirty_free(&q);
}

Test(hv_dirty, clear_forgets_what_is_queued_and_empty_take_is_zero)
{
    xcp__hv_dirty q = {0};
    uint32_t out[1];

    cr_expect_eq(xcp__hv_dirty_take(&q, out, 1), 0);
    xcp__hv_dirty_mark(&q, 9);
    xcp__hv_dirty_clear(&q);
    cr_expect_eq(xcp__hv_dirty_take(&q, out, 1), 0);
    xcp__hv_dirty_mark(&q, 9);
    cr_expect_eq(xcp__hv_dirty_take(&q, out, 1), 1);
    cr_expect_eq(out[0], 9);
    xcp__hv_dirty_free(&q);
}

Test(sim, console_of_unknown_domain_is_esrch_and_ends_with_its_domain)
{
    uint32_t d = create(uuid1, "vm1", 64 * MiB, 1, false);
    char buf[4096];
    ssize_t n;
    size_t len = 0;
    int fd = -1;

    cr_expect_eq(drv->console_open(hv, 999, XCP_HV_CONSOLE_VT100, &fd, &err),
                 -ESRCH);
    cr_assert_eq(drv->console_open(hv, d, XCP_HV_CONSOLE_VT100, &fd, &err), 0,
                 "%s", err.message);
    cr_assert_eq(drv->domain_destroy(hv, d, &err), 0);
    /* the text, then end of file: the console went with its domain */
    while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    cr_expect_eq(n, 0);
    cr_expect(strstr(buf, "vm1 login: ") != NULL, "%s", buf);
    close(fd);
}

/* How many descriptors this process has open. */
static int fds_open(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    cr_assert(d != NULL);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and d's own */
}

Test(sim, console_whose_client_leaves_gives_back_its_fds_at_once)
{
    uint32_t d = create(uuid1, "vm1", 64 * MiB, 1, false);
    char buf[256];
    int fd = -1, before, i;

    cr_assert_eq(drv->console_open(hv, d, XCP_HV_CONSOLE_VT100, &fd, &err), 0,
                 "%s", err.message);
    cr_assert(read(fd, buf, sizeof(buf)) > 0);
    close(fd);
    cr_assert_eq(drv->console_open(hv, d, XCP_HV_CONSOLE_VT100, &fd, &err), 0,
                 "%s", err.message);
    cr_assert(read(fd, buf, sizeof(buf)) > 0);
    before = fds_open();
    /* no other open comes to sweep it up: the console's own end (socket
       and wake pipe) goes when its thread sees the client leave */
    close(fd);
    for (i = 0; i < 500 && fds_open() > before - 4; i++)
        usleep(10 * 1000);
    /* at most: the first console's thread may still have been ending
       when before was counted (3 more then) */
    cr_expect_leq(fds_open(), before - 4, "%d fds, %d before the close",
                  fds_open(), before);
}

/* How many domains of the host carry VM uuid u. */
static size_t domains_of(const char *u)
{
    xcp_hv_domain_info *l = NULL;
    size_t n = 0, i, k = 0;

    cr_assert_eq(drv->domain_list(hv, &l, &n, &err), 0, "%s", err.message);
    for (i = 0; i < n; i++)
        k += strncmp(l[i].vm_uuid, u, XCP_HV_UUID_LEN) == 0;
    free(l);
    return k;
}

/*
 * A localhost migration moves the domain to a new id in one durable step:
 * however the log's last record is cut (a kill -9 while it was written),
 * a restart finds the domain exactly once, under the old id or the new.
 */
Test(sim, migration_is_one_record_a_restart_finds_the_domain_once)
{
    uint32_t a = create(uuid1, "a", 64 * MiB, 1, false), nd = 0;
    char log[128], *whole;
    off_t before, after, cut;
    xcp_hv_domain_info i;
    int fd;

    state_path(log, sizeof(log), "log");
    before = file_size(log);
    cr_assert_eq(drv->domain_migrate_local(hv, a, &nd, &err), 0, "%s",
                 err.message);
    cr_assert_neq(nd, a);
    close_sim();
    after = file_size(log);
    cr_assert_gt(after, before);
    whole = malloc((size_t)after);
    fd = open(log, O_RDONLY);
    cr_assert(whole && fd >= 0);
    cr_assert_eq(read(fd, whole, (size_t)after), after);
    close(fd);
    for (cut = 0; cut <= after - before; cut++) {
        fd = open(log, O_WRONLY | O_TRUNC);
        cr_assert(fd >= 0);
        cr_assert_eq(write(fd, whole, (size_t)(after - cut)), after - cut);
        close(fd);
        open_sim();
        cr_expect_eq(domains_of(uuid1), 1, "cut %lld bytes short: %zu "
                     "domains of the VM", (long long)cut, domains_of(uuid1));
        cr_expect_eq(drv->domain_info(hv, cut ? a : nd, &i, &err), 0,
                     "cut %lld: the domain is not under id %u", (long long)cut,
                     cut ? a : nd);
        close_sim();
    }
    free(whole);
    open_sim();
}
