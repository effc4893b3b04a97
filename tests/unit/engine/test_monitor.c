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

/* ---- news that comes while a VM is busy ---------------------------------- */

static char vm_ref[XCP_REF_MAX], vm_uuid[XCP_HV_UUID_LEN], task[XCP_REF_MAX];

/* A halted VM whose start is under way (its operation recorded). */
static int begin_start(xcp__ctx *c, void *arg)
{
    xcp__obj *vm;
    int rc;

    (void)arg;
    if ((rc = xcp__db_create(c->db, C(VM), NULL, NULL, &vm)) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, name_label), "busy")) < 0 ||
        (rc = xcp__op_start(c, vm, "start")) < 0)
        return rc;
    snprintf(vm_ref, sizeof(vm_ref), "%s", vm->ref);
    snprintf(vm_uuid, sizeof(vm_uuid), "%s", xcp__obj_str(vm, F(VM, uuid)));
    snprintf(task, sizeof(task), "%s", c->task);
    return 0;
}

static int end_start(xcp__ctx *c, void *arg)
{
    (void)arg;
    snprintf(c->task, sizeof(c->task), "%s", task);
    return xcp__op_end(c, xcp__db_get_cls(c->db, C(VM), vm_ref));
}

static int is_running(xcp__ctx *c, void *arg)
{
    xcp__obj *vm = xcp__db_get_cls(c->db, C(VM), vm_ref);

    *(bool *)arg = vm && !strcmp(xcp__obj_str(vm, F(VM, power_state)),
                                 "Running");
    return 0;
}

/*
 * The domain of a VM appears while the VM's operation is under way (as
 * when another process built it): the monitor may not touch a busy VM,
 * but the news is kept and acted on once the operation ends. It used to
 * be dropped, and the VM stayed Halted beside its running domain until
 * the domain's next change (here: none, the guest agent never reports).
 */
Test(monitor, news_for_a_busy_vm_is_acted_on_when_its_operation_ends)
{
    xcp_hv_domain_config cfg = {.version = XCP_HV_CONFIG_VERSION};
    xcp_hv_error err;
    bool running = false;
    int i;

    setenv("XCP_SIM_AGENT_DELAY_MS", "100000000", 1);
    e = fixture_engine_open(dir, sizeof(dir), "monitor-busy");
    cr_assert_eq(xcp__engine_txn(e, begin_start, NULL), 0);
    cfg.vm_uuid = vm_uuid;
    cfg.name = "monitor-busy";
    cfg.type = XCP_HV_DOMAIN_HVM;
    cfg.memory_static_max = cfg.memory_target = 64ull << 20;
    cfg.vcpus_max = 1;
    cr_assert_eq(xcp__hv_domain_create(e->hv, &cfg, false, &domid, &err), 0,
                 "domain_create: %s", err.message);
    /* the monitor's turn with the news while the VM is busy */
    usleep(1000 * 1000);
    cr_assert_eq(xcp__engine_txn(e, is_running, &running), 0);
    cr_assert(!running, "a busy VM was reconciled under its operation");
    cr_assert_eq(xcp__engine_txn(e, end_start, NULL), 0);
    for (i = 0; i < 200 && !running; i++) {
        usleep(50 * 1000);
        cr_assert_eq(xcp__engine_txn(e, is_running, &running), 0);
    }
    cr_expect(running, "the VM stayed Halted beside its running domain "
              "after its operation ended");
    fixture_engine_close(e, dir);
}

/* ---- the monitor reads the driver without the engine lock -------------- */

/*
 * News for a VM is acted on once its operation ends: the monitor tries it
 * again every second. If the driver is held just then (on Xen, libxl
 * building another domain for seconds), the monitor waits for it to read
 * the domain, but without the engine lock: a call that needs the engine
 * goes on meanwhile. It used to read the domain's state (and the guest
 * agent's data) inside the lock, so every call waited for the driver.
 */
Test(monitor, reading_a_domain_keeps_only_the_monitor_waiting)
{
    xcp_hv_domain_config cfg = {.version = XCP_HV_CONFIG_VERSION};
    xcp_hv_error err;
    pthread_t holder, prober;
    bool running = false;
    int i;

    setenv("XCP_SIM_AGENT_DELAY_MS", "100000000", 1);
    e = fixture_engine_open(dir, sizeof(dir), "monitor-read");
    cr_assert_eq(xcp__engine_txn(e, begin_start, NULL), 0);
    cfg.vm_uuid = vm_uuid;
    cfg.name = "monitor-read";
    cfg.type = XCP_HV_DOMAIN_HVM;
    cfg.memory_static_max = cfg.memory_target = 64ull << 20;
    cfg.vcpus_max = 1;
    cr_assert_eq(xcp__hv_domain_create(e->hv, &cfg, false, &domid, &err), 0,
                 "domain_create: %s", err.message);
    usleep(500 * 1000); /* the news, deferred: the VM is busy */
    /* the operation ends, and the driver is held across the monitor's
     * next try (within a second) */
    cr_assert_eq(xcp__engine_txn(e, end_start, NULL), 0);
    cr_assert_eq(pthread_create(&holder, NULL, hold_driver, NULL), 0);
    while (!atomic_load(&held))
        usleep(1000);
    usleep(HOLD_MS * 1000 / 2); /* the monitor's try, even when slow */
    cr_assert_eq(pthread_create(&prober, NULL, probe, NULL), 0);
    pthread_join(prober, NULL);
    pthread_join(holder, NULL);
    cr_assert(atomic_load(&probed));
    cr_expect(atomic_load(&probe_before_release),
              "a call needing the engine waited for the driver to be "
              "released: the monitor read the domain inside the engine "
              "lock");
    /* and the news is still acted on once the driver is free */
    for (i = 0; i < 200 && !running; i++) {
        usleep(50 * 1000);
        cr_assert_eq(xcp__engine_txn(e, is_running, &running), 0);
    }
    cr_expect(running, "the VM stayed Halted beside its running domain");
    fixture_engine_close(e, dir);
}
