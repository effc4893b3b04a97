/*
 * Where a VM may run in a pool (XAPI's xapi_vm_helpers.ml
 * assert_can_boot_here / possible_hosts / choose_host_for_vm and
 * xapi_host.ml compute_evacuation_plan_no_wlb): the checks of one host
 * for one VM in XAPI's order, the choice of a host for VM.start without
 * one, VM.get_possible_hosts, and the map of the VMs that prevent a
 * host's evacuation.
 *
 * Another host's figures come from the replicated database: its
 * host_metrics.live (which the coordinator keeps from corosync's
 * membership, pool.c), host.enabled, its PBDs, and host_metrics.memory_free
 * as that host last wrote it (it refreshes it after every VM operation, as
 * xcp__vm_refresh_host_memory). This host's memory comes from its own
 * hypervisor, as on a single host. Nothing here scans the pool's VMs: the
 * cost of a check is that of the VM's devices and the host's PBDs, and of
 * a choice that times the number of hosts.
 */
#include "../engine/engine.h"
#include "vm_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The refs of a set field, as an array value (never NULL). */
static const xcp_value *refs(const xcp__obj *o, int field, size_t *n)
{
    const xcp_value *v = xcp__obj_val(o, field);

    *n = v && v->kind == XCP_VAL_ARRAY ? v->u.arr.n : 0;
    return v;
}

static const char *ref_at(const xcp_value *v, size_t i)
{
    return v->u.arr.items[i].kind == XCP_VAL_STRING ? v->u.arr.items[i].u.s
                                                    : "";
}

bool xcp__host_live(xcp__ctx *c, const xcp__obj *host)
{
    xcp__obj *m;

    if (!strcmp(host->ref, c->e->host))
        return true;
    m = xcp__db_get_cls(c->db, C(host_metrics),
                        xcp__obj_str(host, F(host, metrics)));
    return m && xcp__obj_bool(m, F(host_metrics, live));
}

int64_t xcp__host_free_memory(xcp__ctx *c, const xcp__obj *host)
{
    xcp__obj *m = xcp__db_get_cls(c->db, C(host_metrics),
                                  xcp__obj_str(host, F(host, metrics)));

    return m ? xcp__obj_int(m, F(host_metrics, memory_free)) : 0;
}

/* Whether host has an attached PBD of sr: the SR's PBDs (one a host). */
static bool sees_sr(xcp__ctx *c, const xcp__obj *host, const char *sr_ref)
{
    xcp__obj *sr = xcp__db_get_cls(c->db, C(SR), sr_ref);
    const xcp_value *pbds;
    size_t i, n;

    if (!sr)
        return false;
    pbds = refs(sr, F(SR, PBDs), &n);
    for (i = 0; i < n; i++) {
        xcp__obj *p = xcp__db_get_cls(c->db, C(PBD), ref_at(pbds, i));
        if (p && !strcmp(xcp__obj_str(p, F(PBD, host)), host->ref) &&
            xcp__obj_bool(p, F(PBD, currently_attached)))
            return true;
    }
    return false;
}

/* XAPI's assert_can_see_SRs: the SR of every non-empty VBD's VDI, and of
 * the suspend image of a suspended VM. */
static int check_srs(xcp__ctx *c, const xcp__obj *vm, const xcp__obj *host)
{
    const xcp_value *vbds = NULL;
    size_t i, n;
    const char *sr;
    xcp__obj *vdi;

    vbds = refs(vm, F(VM, VBDs), &n);
    for (i = 0; i < n; i++) {
        xcp__obj *vbd = xcp__db_get_cls(c->db, C(VBD), ref_at(vbds, i));
        if (!vbd || xcp__obj_bool(vbd, F(VBD, empty)))
            continue;
        vdi = xcp__db_get_cls(c->db, C(VDI), xcp__obj_str(vbd, F(VBD, VDI)));
        if (!vdi)
            continue;
        sr = xcp__obj_str(vdi, F(VDI, SR));
        if (!sees_sr(c, host, sr))
            return XCP__ERR_VM_REQUIRES_SR(vm->ref, sr);
    }
    if (!strcmp(xcp__obj_str(vm, F(VM, power_state)), "Suspended") &&
        (vdi = xcp__db_get_cls(c->db, C(VDI),
                               xcp__obj_str(vm, F(VM, suspend_VDI)))) &&
        !sees_sr(c, host, xcp__obj_str(vdi, F(VDI, SR))))
        return XCP__ERR_VM_REQUIRES_SR(vm->ref, xcp__obj_str(vdi, F(VDI, SR)));
    return 0;
}

/* XAPI's assert_can_see_networks, for the networks libxcp has: a network
 * with PIFs must have one on the host; one without (internal) is
 * anywhere. */
static int check_networks(xcp__ctx *c, const xcp__obj *vm,
                          const xcp__obj *host)
{
    const xcp_value *vifs, *pifs;
    size_t i, j, n, m;

    vifs = refs(vm, F(VM, VIFs), &n);
    for (i = 0; i < n; i++) {
        xcp__obj *vif = xcp__db_get_cls(c->db, C(VIF), ref_at(vifs, i));
        xcp__obj *net = vif ? xcp__db_get_cls(c->db, C(network),
                                              xcp__obj_str(vif, F(VIF, network)))
                            : NULL;
        bool ok;
        if (!net)
            continue;
        pifs = refs(net, F(network, PIFs), &m);
        ok = m == 0;
        for (j = 0; j < m && !ok; j++) {
            xcp__obj *p = xcp__db_get_cls(c->db, C(PIF), ref_at(pifs, j));
            ok = p && !strcmp(xcp__obj_str(p, F(PIF, host)), host->ref);
        }
        if (!ok)
            return XCP__ERR_VM_REQUIRES_NETWORK(vm->ref, net->ref);
    }
    return 0;
}

int64_t xcp__vm_start_memory(xcp__ctx *c, const xcp__obj *vm)
{
    xcp_hv_domain_config cfg;
    xcp_hv_error e;
    uint64_t overhead = 0;

    memset(&cfg, 0, sizeof(cfg));
    cfg.type = xcp__vm_built_type(vm);
    cfg.memory_static_max = (uint64_t)xcp__obj_int(vm, F(VM, memory_static_max));
    cfg.memory_target = (uint64_t)xcp__obj_int(vm, F(VM, memory_dynamic_max));
    cfg.vcpus_max = (uint32_t)xcp__obj_int(vm, F(VM, VCPUs_max));
    cfg.vcpus_online = (uint32_t)xcp__obj_int(vm, F(VM, VCPUs_at_startup));
    if (cfg.vcpus_max == 0 ||
        xcp__hv_memory_overhead(c->e->hv, &cfg, &overhead, &e) < 0)
        overhead = 0;
    return (int64_t)(cfg.memory_target + overhead);
}

/* XAPI's validate_basic_parameters, the part libxcp models. */
static int check_basic(const xcp__obj *vm)
{
    if (xcp__obj_int(vm, F(VM, VCPUs_at_startup)) < 1)
        return XCP__ERR_VM_NO_VCPUS(vm->ref);
    if (xcp__obj_int(vm, F(VM, VCPUs_at_startup)) >
        xcp__obj_int(vm, F(VM, VCPUs_max)))
        return XCP__ERR_VM_TOO_MANY_VCPUS(vm->ref);
    return xcp__vm_check_memory_constraints(
        xcp__obj_int(vm, F(VM, memory_static_min)),
        xcp__obj_int(vm, F(VM, memory_dynamic_min)),
        xcp__obj_int(vm, F(VM, memory_dynamic_max)),
        xcp__obj_int(vm, F(VM, memory_static_max)));
}

int xcp__placement_check(xcp__ctx *c, xcp__obj *vm, xcp__obj *host,
                         bool memory)
{
    bool here = !strcmp(host->ref, c->e->host);
    int64_t need, avail;
    char a[32], b[32];
    int rc;

    if ((rc = check_basic(vm)) < 0)
        return rc;
    if (!xcp__host_live(c, host))
        return XCP__ERR_HOST_NOT_LIVE();
    /* A running VM checked against its own host (a local migration) and
     * control domains skip the enabled check, as XAPI. */
    if (!xcp__obj_bool(vm, F(VM, is_control_domain)) &&
        !(!strcmp(xcp__obj_str(vm, F(VM, power_state)), "Running") &&
          !strcmp(xcp__obj_str(vm, F(VM, resident_on)), host->ref)) &&
        !xcp__obj_bool(host, F(host, enabled)))
        return XCP__ERR_HOST_DISABLED(host->ref);
    if ((rc = check_srs(c, vm, host)) < 0 ||
        (rc = check_networks(c, vm, host)) < 0 || !memory)
        return rc;
    if (here) {
        /* This host: its hypervisor's figures and the domain's
         * configuration, as a single host checks. */
        struct domcfg d;
        if ((rc = xcp__vm_build_cfg(c, vm, &d, false)) == 0)
            rc = xcp__vm_check_host_fits(c, vm, &d);
        xcp__vm_domcfg_free(&d);
        return rc;
    }
    need = xcp__vm_start_memory(c, vm);
    avail = xcp__host_free_memory(c, host);
    if (need > avail) {
        snprintf(a, sizeof(a), "%" PRId64, need);
        snprintf(b, sizeof(b), "%" PRId64, avail);
        return XCP__ERR_HOST_NOT_ENOUGH_FREE_MEMORY(a, b);
    }
    return 0;
}

/* The hosts where vm can boot (memory checked or not), into out (an array
 * of n host objects, the pool's host count at most); their count. */
static size_t possible(xcp__ctx *c, xcp__obj *vm, bool memory,
                       xcp__obj **out)
{
    size_t i, n, k = 0;
    xcp__obj *const *hosts = xcp__db_all(c->db, C(host), &n);

    for (i = 0; i < n; i++) {
        if (xcp__placement_check(c, vm, hosts[i], memory) == 0)
            out[k++] = hosts[i];
        else
            xcp_error_clear();
    }
    return k;
}

int xcp__placement_possible(xcp__ctx *c, xcp__obj *vm)
{
    size_t i, k, n = xcp__db_count(c->db, C(host));
    xcp__obj **h = calloc(n ? n : 1, sizeof(*h));
    int rc;

    if (!h)
        return xcp__oom();
    k = possible(c, vm, true, h);
    rc = xcp_value_set_array(c->result, k);
    for (i = 0; rc == 0 && i < k; i++)
        rc = xcp_value_set_string(&c->result->u.arr.items[i], h[i]->ref);
    free(h);
    return rc;
}

int xcp__placement_choose(xcp__ctx *c, xcp__obj *vm, xcp__obj **out)
{
    xcp__obj *aff = xcp__db_get_cls(c->db, C(host),
                                    xcp__obj_str(vm, F(VM, affinity)));
    size_t i, k, best = 0, ties = 0, n = xcp__db_count(c->db, C(host));
    xcp__obj **h;
    int64_t top = 0, f;

    /* The affinity first, when the VM can boot there (XAPI's
     * select_host prefers it). */
    if (aff && xcp__placement_check(c, vm, aff, true) == 0) {
        *out = aff;
        return 0;
    }
    xcp_error_clear();
    if (!(h = calloc(n ? n : 1, sizeof(*h))))
        return xcp__oom();
    /* Then the hosts that pass every check; when none has the memory,
     * XAPI tries again without the memory check (the host's own start
     * then says HOST_NOT_ENOUGH_FREE_MEMORY). */
    if ((k = possible(c, vm, true, h)) == 0)
        k = possible(c, vm, false, h);
    if (k == 0) {
        free(h);
        return XCP__ERR_NO_HOSTS_AVAILABLE();
    }
    /* Spread: the most free memory wins (each start lowers it), ties
     * drawn at random, as XAPI's placement biased towards free memory. */
    for (i = 0; i < k; i++) {
        f = xcp__host_free_memory(c, h[i]);
        if (i == 0 || f > top) {
            top = f;
            best = i;
            ties = 1;
        } else if (f == top && (size_t)rand() % ++ties == 0) {
            best = i;
        }
    }
    *out = h[best];
    free(h);
    return 0;
}

int xcp__placement_route(xcp__ctx *c, char *host, size_t n)
{
    const char *wire = c->msg ? c->msg->wire : "";
    const xcp_value *a0 = xcp__arg(c, 0), *a1 = xcp__arg(c, 1);
    bool start = !strcmp(wire, "VM.start"),
         start_on = !strcmp(wire, "VM.start_on");
    xcp__obj *vm, *h;
    int rc;

    host[0] = '\0';
    if ((!start && !start_on) || !a0 || a0->kind != XCP_VAL_STRING ||
        !(vm = xcp__db_get_cls(c->db, C(VM), a0->u.s)))
        return 0;
    /* A VM whose start is not valid now goes as it is: the host that
     * runs the call answers the power state (XAPI checks the operation
     * before it places). */
    if (xcp__vm_check_op(vm, start ? "start" : "start_on") < 0) {
        xcp_error_clear();
        return 0;
    }
    if (start) {
        /* XAPI's forward_to_suitable_host. */
        if ((rc = xcp__placement_choose(c, vm, &h)) < 0)
            return rc;
        snprintf(host, n, "%s", h->ref);
        return 0;
    }
    /* start_on another host: XAPI's master checks assert_can_boot_here
     * there before it sends the call (reserve_memory_for_vm). */
    if (!a1 || a1->kind != XCP_VAL_STRING ||
        !(h = xcp__db_get_cls(c->db, C(host), a1->u.s)) ||
        !strcmp(h->ref, c->e->host))
        return 0;
    return xcp__placement_check(c, vm, h, true);
}

/* ---- evacuation (XAPI's compute_evacuation_plan_no_wlb) ------------------ */

struct evac_vm {
    xcp__obj *vm;
    int64_t need;
};

static int by_need_desc(const void *a, const void *b)
{
    const struct evac_vm *x = a, *y = b;

    return x->need < y->need ? 1 : x->need > y->need ? -1 : 0;
}

/* map[vm] := [code, params...] of the last error. */
static int add_reason(xcp_value *map, const char *vm, const char *code,
                      const xcp_error *e)
{
    xcp_value why;
    size_t i, np = e ? e->nparams : 1;
    int rc;

    if ((rc = xcp_value_set_array(&why, 1 + np)) < 0)
        return rc;
    rc = xcp_value_set_string(&why.u.arr.items[0], code);
    for (i = 0; rc == 0 && i < np; i++)
        rc = xcp_value_set_string(&why.u.arr.items[1 + i],
                                  e ? e->params[i] : vm);
    if (rc == 0)
        rc = xcp_value_struct_add(map, vm, &why);
    if (rc < 0)
        xcp_value_dispose(&why);
    return rc;
}

/* Record the thread's error for vm in map; clears it. */
static int add_error(xcp_value *map, const char *vm)
{
    const xcp_error *e = xcp_error_last();
    char code[96];
    int rc;

    snprintf(code, sizeof(code), "%s", e && e->name ? e->name
                                                    : "INTERNAL_ERROR");
    rc = add_reason(map, vm, code, e);
    xcp_error_clear();
    return rc;
}

int xcp__placement_evacuation(xcp__ctx *c, xcp__obj *host, xcp_value *map)
{
    return xcp__placement_evacuation_plan(c, host, map, NULL, NULL);
}

int xcp__placement_evacuation_plan(xcp__ctx *c, xcp__obj *host,
                                   xcp_value *map, xcp__evac_move **moves,
                                   size_t *nmoves)
{
    size_t nh, i, j, nv, nt = 0, nm = 0;
    xcp__obj *const *all = xcp__db_all(c->db, C(host), &nh);
    const xcp_value *vms = refs(host, F(host, resident_VMs), &nv);
    xcp__obj **targets = calloc(nh ? nh : 1, sizeof(*targets));
    int64_t *free_mem = calloc(nh ? nh : 1, sizeof(*free_mem));
    struct evac_vm *mv = calloc(nv ? nv : 1, sizeof(*mv));
    int rc = 0;

    if (moves) {
        *moves = NULL;
        *nmoves = 0;
    }
    if (!targets || !free_mem || !mv ||
        (moves && !(*moves = calloc(nv ? nv : 1, sizeof(**moves))))) {
        rc = xcp__oom();
        goto out;
    }
    xcp_value_set_struct(map);
    /* The other enabled hosts. */
    for (i = 0; i < nh; i++)
        if (all[i] != host && strcmp(all[i]->ref, host->ref) &&
            xcp__obj_bool(all[i], F(host, enabled))) {
            free_mem[nt] = xcp__host_free_memory(c, all[i]);
            targets[nt++] = all[i];
        }
    for (i = 0; rc == 0 && i < nv; i++) {
        xcp__obj *vm = xcp__db_get_cls(c->db, C(VM), ref_at(vms, i));
        bool fits = true;
        if (!vm || xcp__obj_bool(vm, F(VM, is_control_domain)))
            continue;
        if (nt == 0) {
            rc = add_reason(map, vm->ref, "NO_HOSTS_AVAILABLE", NULL);
            continue;
        }
        /* It must be able to boot on every target, memory aside. */
        for (j = 0; j < nt && fits; j++)
            if (xcp__placement_check(c, vm, targets[j], false) < 0) {
                rc = add_error(map, vm->ref);
                fits = false;
            }
        if (!fits)
            continue;
        /* And to be migrated at all. */
        if (xcp__vm_check_op(vm, "pool_migrate") < 0) {
            rc = add_error(map, vm->ref);
            continue;
        }
        mv[nm].vm = vm;
        mv[nm++].need = xcp__vm_start_memory(c, vm);
    }
    /* A binpack on memory alone: the largest first, each on the target
     * with the most room left; the ones left over have no room. */
    qsort(mv, nm, sizeof(*mv), by_need_desc);
    for (i = 0; rc == 0 && i < nm; i++) {
        size_t best = nt;
        for (j = 0; j < nt; j++)
            if (free_mem[j] >= mv[i].need &&
                (best == nt || free_mem[j] > free_mem[best]))
                best = j;
        if (best < nt) {
            free_mem[best] -= mv[i].need;
            if (moves) {
                xcp__evac_move *m = &(*moves)[(*nmoves)++];
                snprintf(m->vm, sizeof(m->vm), "%s", mv[i].vm->ref);
                snprintf(m->host, sizeof(m->host), "%s",
                         targets[best]->ref);
            }
            continue;
        }
        rc = add_reason(map, mv[i].vm->ref, "HOST_NOT_ENOUGH_FREE_MEMORY",
                        NULL);
    }
out:
    free(targets);
    free(free_mem);
    free(mv);
    if (rc < 0 && moves) {
        free(*moves);
        *moves = NULL;
        *nmoves = 0;
    }
    return rc;
}
