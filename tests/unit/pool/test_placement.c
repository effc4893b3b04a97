/*
 * tests/unit/pool/test_placement.c - lib/libxcp/api/placement.c on an
 * embedded engine whose database is given other hosts by hand (rows with
 * host_metrics; nothing runs on them): XAPI's checks of a host and their
 * errors, the choice of a host (affinity, most free memory, the retry
 * without the memory check, NO_HOSTS_AVAILABLE), the evacuation map's
 * binpack, and the cost of a choice, which must not grow with the VMs the
 * pool holds (64 hosts with 10, then 100 VMs each).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../../api/helpers.h"
#include "api/vm_int.h"
#include "engine/engine.h"

#define GIB (1024LL * 1024 * 1024)

static xcp__engine *e;
static xcp__ctx c;
static xcp_value res;

static void setup(void)
{
    xcp_open_options o = {XCP_OPEN_OPTIONS_VERSION};

    api_setup();
    o.state_dir = api_dir;
    cr_assert(xcp__engine_get(&e, &o) == 0);
    pthread_mutex_lock(&e->lock);
    memset(&c, 0, sizeof(c));
    c.e = e;
    c.db = e->db;
    c.result = &res;
    xcp__db_begin(e->db);
}

static void teardown(void)
{
    xcp_value_dispose(&res);
    xcp__db_abort(e->db);
    pthread_mutex_unlock(&e->lock);
    xcp__engine_put(e);
    api_teardown();
}

TestSuite(placement, .init = setup, .fini = teardown);

/* Another host of the pool: free bytes, enabled, live. */
static xcp__obj *host(int64_t free, bool enabled, bool live)
{
    xcp__obj *h, *m;

    cr_assert(xcp__db_create(c.db, C(host_metrics), NULL, NULL, &m) == 0);
    cr_assert(xcp__db_set_int(c.db, m, F(host_metrics, memory_free), free) == 0);
    cr_assert(xcp__db_set_bool(c.db, m, F(host_metrics, live), live) == 0);
    cr_assert(xcp__db_create(c.db, C(host), NULL, NULL, &h) == 0);
    cr_assert(xcp__db_set_str(c.db, h, F(host, metrics), m->ref) == 0);
    cr_assert(xcp__db_set_bool(c.db, h, F(host, enabled), enabled) == 0);
    return h;
}

/* A diskless PV VM of mem bytes (Running on `on` when not NULL). */
static xcp__obj *vm(int64_t mem, const xcp__obj *on)
{
    xcp__obj *v;

    cr_assert(xcp__db_create(c.db, C(VM), NULL, NULL, &v) == 0);
    cr_assert(xcp__db_set_int(c.db, v, F(VM, VCPUs_max), 1) == 0);
    cr_assert(xcp__db_set_int(c.db, v, F(VM, VCPUs_at_startup), 1) == 0);
    cr_assert(xcp__db_set_str(c.db, v, F(VM, domain_type), "pv") == 0);
    cr_assert(xcp__db_set_int(c.db, v, F(VM, memory_static_min), mem) == 0);
    cr_assert(xcp__db_set_int(c.db, v, F(VM, memory_dynamic_min), mem) == 0);
    cr_assert(xcp__db_set_int(c.db, v, F(VM, memory_dynamic_max), mem) == 0);
    cr_assert(xcp__db_set_int(c.db, v, F(VM, memory_static_max), mem) == 0);
    if (on) {
        cr_assert(xcp__db_set_str(c.db, v, F(VM, power_state), "Running") == 0);
        cr_assert(xcp__db_set_str(c.db, v, F(VM, resident_on), on->ref) == 0);
    }
    return v;
}

/* This host out of the way (disabled): choices among the others. */
static void here_disabled(void)
{
    xcp__obj *h = xcp__db_get_cls(c.db, C(host), e->host);

    cr_assert_not_null(h);
    cr_assert(xcp__db_set_bool(c.db, h, F(host, enabled), false) == 0);
}

static void expect_error(int rc, const char *name, const char *p0)
{
    const xcp_error *x = xcp_error_last();

    cr_assert(rc < 0, "expected %s", name);
    cr_assert_not_null(x);
    cr_assert_str_eq(x->name, name);
    if (p0) {
        cr_assert(x->nparams > 0);
        cr_assert_str_eq(x->params[0], p0);
    }
    xcp_error_clear();
}

Test(placement, checks_in_xapis_order)
{
    xcp__obj *dead = host(8 * GIB, false, false);
    xcp__obj *off = host(8 * GIB, false, true);
    xcp__obj *small = host(1 * GIB, true, true);
    xcp__obj *big = host(8 * GIB, true, true);
    xcp__obj *v = vm(2 * GIB, NULL);

    /* live before enabled, as assert_can_boot_here */
    expect_error(xcp__placement_check(&c, v, dead, true), "HOST_NOT_LIVE",
                 NULL);
    expect_error(xcp__placement_check(&c, v, off, true), "HOST_DISABLED",
                 off->ref);
    expect_error(xcp__placement_check(&c, v, small, true),
                 "HOST_NOT_ENOUGH_FREE_MEMORY", NULL);
    cr_assert(xcp__placement_check(&c, v, small, false) == 0);
    cr_assert(xcp__placement_check(&c, v, big, true) == 0);
    cr_assert(xcp__db_set_int(c.db, v, F(VM, VCPUs_at_startup), 0) == 0);
    expect_error(xcp__placement_check(&c, v, big, true), "VM_NO_VCPUS",
                 v->ref);
}

Test(placement, a_disk_pins_the_vm_to_the_hosts_that_see_its_sr)
{
    xcp_vm inst;
    xcp__obj *other, *v;
    const xcp_error *x;

    /* A VM with a disk on this host's local SR, through the API (which
     * takes the engine lock). */
    xcp__db_abort(e->db);
    pthread_mutex_unlock(&e->lock);
    inst = api_install("disk");
    pthread_mutex_lock(&e->lock);
    xcp__db_begin(e->db);
    other = host(64 * GIB, true, true);
    v = xcp__db_get_cls(c.db, C(VM), inst.ref);

    cr_assert_not_null(v);
    cr_assert(xcp__placement_check(&c, v, other, true) < 0);
    x = xcp_error_last();
    cr_assert_str_eq(x->name, "VM_REQUIRES_SR");
    cr_assert_str_eq(x->params[0], v->ref);
    xcp_error_clear();
    cr_assert(xcp__placement_possible(&c, v) == 0);
    cr_assert_eq(res.u.arr.n, 1);
    cr_assert_str_eq(res.u.arr.items[0].u.s, e->host);
}

Test(placement, affinity_then_most_free_memory_then_without_the_check)
{
    xcp__obj *h2 = host(2 * GIB + GIB / 2, true, true);
    xcp__obj *h8 = host(8 * GIB, true, true);
    xcp__obj *h9off = host(9 * GIB, false, true);
    xcp__obj *h10dead = host(10 * GIB, true, false);
    xcp__obj *v = vm(2 * GIB, NULL), *got;

    (void)h9off;
    (void)h10dead;
    here_disabled();
    cr_assert(xcp__placement_choose(&c, v, &got) == 0);
    cr_assert_str_eq(got->ref, h8->ref);
    /* the affinity wins when the VM can boot there */
    cr_assert(xcp__db_set_str(c.db, v, F(VM, affinity), h2->ref) == 0);
    cr_assert(xcp__placement_choose(&c, v, &got) == 0);
    cr_assert_str_eq(got->ref, h2->ref);
    /* not when it cannot */
    cr_assert(xcp__db_set_int(c.db, v, F(VM, memory_dynamic_max), 3 * GIB) == 0);
    cr_assert(xcp__db_set_int(c.db, v, F(VM, memory_static_max), 3 * GIB) == 0);
    cr_assert(xcp__placement_choose(&c, v, &got) == 0);
    cr_assert_str_eq(got->ref, h8->ref);
    /* no host has the memory: one that passes the rest (its start will
     * answer HOST_NOT_ENOUGH_FREE_MEMORY), never the disabled or dead */
    cr_assert(xcp__db_set_int(c.db, v, F(VM, memory_dynamic_max), 20 * GIB) == 0);
    cr_assert(xcp__db_set_int(c.db, v, F(VM, memory_static_max), 20 * GIB) == 0);
    cr_assert(xcp__placement_choose(&c, v, &got) == 0);
    cr_assert(!strcmp(got->ref, h8->ref) || !strcmp(got->ref, h2->ref));
    cr_assert(xcp__placement_possible(&c, v) == 0);
    cr_assert_eq(res.u.arr.n, 0);
}

Test(placement, no_hosts_available)
{
    xcp__obj *v = vm(GIB, NULL), *got;

    host(8 * GIB, false, true);
    host(8 * GIB, true, false);
    here_disabled();
    expect_error(xcp__placement_choose(&c, v, &got), "NO_HOSTS_AVAILABLE",
                 NULL);
}

Test(placement, evacuation_binpack)
{
    xcp__obj *src = host(0, true, true), *dst = host(7 * GIB, true, true);
    xcp__obj *a = vm(3 * GIB, src), *b = vm(3 * GIB, src),
             *d = vm(3 * GIB, src);
    xcp_value m;
    size_t i, nomem = 0;

    (void)dst;
    (void)a;
    (void)b;
    (void)d;
    /* only dst can take them (this host disabled): room for two */
    here_disabled();
    memset(&m, 0, sizeof(m));
    cr_assert(xcp__placement_evacuation(&c, src, &m) == 0);
    cr_assert_eq(m.kind, XCP_VAL_STRUCT);
    for (i = 0; i < m.u.st.n; i++) {
        const xcp_value *w = &m.u.st.vals[i];
        cr_assert_eq(w->u.arr.n, 2);
        cr_assert_str_eq(w->u.arr.items[0].u.s, "HOST_NOT_ENOUGH_FREE_MEMORY");
        cr_assert_str_eq(w->u.arr.items[1].u.s, m.u.st.keys[i]);
        nomem++;
    }
    cr_assert_eq(nomem, 1);
    xcp_value_dispose(&m);
    /* no other enabled host: each VM, NO_HOSTS_AVAILABLE [vm] */
    cr_assert(xcp__db_set_bool(c.db, dst, F(host, enabled), false) == 0);
    cr_assert(xcp__placement_evacuation(&c, src, &m) == 0);
    cr_assert_eq(m.u.st.n, 3);
    cr_assert_str_eq(m.u.st.vals[0].u.arr.items[0].u.s, "NO_HOSTS_AVAILABLE");
    xcp_value_dispose(&m);
}

static double choose_us(xcp__obj *v, int n)
{
    struct timespec t0, t1;
    xcp__obj *got;
    int i;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < n; i++)
        cr_assert(xcp__placement_choose(&c, v, &got) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return ((double)(t1.tv_sec - t0.tv_sec) * 1e6 +
            (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) /
           n;
}

/* 64 hosts: a choice costs the hosts, not the VMs they run. */
Test(placement, cost_does_not_grow_with_the_vms, .timeout = 120)
{
    xcp__obj *hosts[64], *v = vm(GIB, NULL);
    double t10, t100;
    int i, j;

    here_disabled();
    for (i = 0; i < 64; i++)
        hosts[i] = host((int64_t)(16 + i % 7) * GIB, true, true);
    for (i = 0; i < 64; i++)
        for (j = 0; j < 10; j++)
            vm(GIB / 4, hosts[i]);
    choose_us(v, 200); /* warm up */
    t10 = choose_us(v, 200);
    for (i = 0; i < 64; i++)
        for (j = 0; j < 90; j++)
            vm(GIB / 4, hosts[i]);
    t100 = choose_us(v, 200);
    fprintf(stderr, "# placement over 64 hosts: %.1f us a choice with 640 "
            "VMs in the pool, %.1f us with 6400\n", t10, t100);
    /* Generous against a loaded machine; a scan of the VMs would be ten
     * times slower. */
    cr_assert(t100 < t10 * 4 + 50, "%.1f us vs %.1f us", t100, t10);
}
