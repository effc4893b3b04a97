/*
 * tests/unit/engine/test_monitor.c - the domain monitor (engine.c) and the
 * engine lock: while a driver call holds the driver for long (on Xen,
 * libxl building a domain takes seconds), a domain event must keep only
 * the monitor waiting, never every call that needs the engine. The monitor
 * used to take the engine lock first and then wait for the driver inside
 * it, so each VM.start held all other calls (and its own end) until the
 * build was over.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "core/core.h"
#include "../common/engine_fixture.h"
#include "hv_internal.h"

#define HOLD_MS 5000 /* how long the driver is held */

static xcp__engine *e;
static char dir[256];
static uint32_t domid;
static atomic_bool held, released, probed, probe_before_release;

static void *hold_driver(void *arg)
{
    xcp_hv_domain_info info;
    xcp_hv_error err;

    (void)arg;
    atomic_store(&held, true);
    /* a running guest never asked to stop: the wait holds the driver for
     * its whole timeout */
    xcp__hv_domain_wait(e->hv, domid, HOLD_MS, &info, &err);
    atomic_store(&released, true);
    return NULL;
}

static int noop(xcp__ctx *c, void *arg)
{
    (void)c;
    (void)arg;
    return 0;
}

static void *probe(void *arg)
{
    (void)arg;
    xcp__engine_txn(e, noop, NULL);
    atomic_store(&probe_before_release, !atomic_load(&released));
    atomic_store(&probed, true);
    return NULL;
}

Test(monitor, a_busy_driver_keeps_only_the_monitor_waiting)
{
    xcp_hv_domain_config cfg = {.version = XCP_HV_CONFIG_VERSION};
    xcp_hv_error err;
    pthread_t holder, prober;
    char uuid[XCP_HV_UUID_LEN];

    e = fixture_engine_open(dir, sizeof(dir), "monitor");
    xcp__uuid_gen(uuid);
    cfg.vm_uuid = uuid;
    cfg.name = "monitor-test";
    cfg.type = XCP_HV_DOMAIN_HVM; /* needs no kernel */
    cfg.memory_static_max = cfg.memory_target = 64ull << 20;
    cfg.vcpus_max = 1;
    cr_assert_eq(xcp__hv_domain_create(e->hv, &cfg, false, &domid, &err), 0,
                 "domain_create: %s", err.message);
    /* The new domain is news for the monitor, which wakes and asks the
     * driver which domains changed: while the driver is held. */
    cr_assert_eq(pthread_create(&holder, NULL, hold_driver, NULL), 0);
    while (!atomic_load(&held))
        usleep(1000);
    usleep(HOLD_MS * 1000 / 5); /* the monitor's wake-up, even when slow */
    cr_assert_eq(pthread_create(&prober, NULL, probe, NULL), 0);
    pthread_join(prober, NULL);
    pthread_join(holder, NULL);
    cr_assert(atomic_load(&probed));
    cr_expect(atomic_load(&probe_before_release),
              "a call needing the engine waited for the driver to be "
              "released: the monitor held the engine lock meanwhile");
    fixture_engine_close(e, dir);
}
