/*
 * host.*: what a host answers for itself, and in a pool for the others
 * (placement.c: where VMs can go; pool.c: the pool). host.shutdown and
 * host.reboot come to the host itself (the coordinator forwards them,
 * pool/fwd.c).
 */
#include "../engine/engine.h"
#include "../pool/pool.h"
#include "vm_int.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int host_arg(xcp__ctx *c, xcp__obj **h)
{
    return xcp__arg_obj(c, 0, C(host), h);
}

static int host_enable(xcp__ctx *c, bool en)
{
    xcp__obj *h;
    int rc;

    if ((rc = host_arg(c, &h)) < 0)
        return rc;
    /* XAPI's assert_safe_to_reenable: a host on its way down stays
     * disabled (its flag is this daemon's: host.enable of another host
     * runs here, the coordinator, and checks what the pool knows). */
    if (en && !xcp__obj_bool(h, F(host, enabled)) &&
        !strcmp(h->ref, c->e->host) && c->e->disabled_until_reboot)
        return XCP__ERR_HOST_DISABLED_UNTIL_REBOOT(h->ref);
    if ((rc = xcp__db_set_bool(c->db, h, F(host, enabled), en)) < 0)
        return rc;
    if (!en && !xcp__arg_bool(c, 1) &&
        (rc = xcp__db_set_str(c->db, h, F(host, display), "disabled")) < 0)
        return rc;
    return xcp__update_allowed(c, h);
}

static int host_disable(xcp__ctx *c) { return host_enable(c, false); }
static int host_enable_(xcp__ctx *c) { return host_enable(c, true); }

static int servertime(xcp__ctx *c)
{
    xcp__obj *h;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    xcp_value_set_datetime(c->result, xcp__now());
    return 0;
}

static int free_memory(xcp__ctx *c)
{
    xcp__obj *h;
    xcp_hv_host_info hi;
    xcp_hv_error e;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    if (xcp__hv_host_info(c->e->hv, &hi, &e) < 0)
        return XCP__ERR_INTERNAL_ERROR(e.message);
    xcp__ret_int(c, (int64_t)hi.memory_free);
    return 0;
}

static int memory_overhead(xcp__ctx *c)
{
    xcp__obj *h;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    xcp__ret_int(c, xcp__obj_int(h, F(host, memory_overhead)));
    return 0;
}

static int management_interface(xcp__ctx *c)
{
    xcp__obj *h, *p;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    p = xcp__set_member_with(c, h, F(host, PIFs), C(PIF), F(PIF, management));
    if (!p)
        return XCP__ERR_PIF_IS_NOT_MANAGEMENT_INTERFACE(XCP_NULL_REF);
    return xcp__ret_ref(c, p);
}

/* XAPI's map of the VMs that cannot leave the host (placement.c). */
static int prevent_evacuation(xcp__ctx *c)
{
    xcp__obj *h;
    int rc = host_arg(c, &h);

    return rc < 0 ? rc : xcp__placement_evacuation(c, h, c->result);
}

/* ---- host.evacuate (XAPI's Xapi_host.evacuate) ------------------------- */

#define EVACUATE_BATCH_DEFAULT 10 /* XAPI's evacuation_batch_size */

struct evac {
    xcp__engine *e;
    const char *session;
    const char *network;       /* a network ref, or NULL */
    int mid;                   /* VM.pool_migrate */
    const xcp__evac_move *moves;
    size_t n, next;            /* next move to start (under mu) */
    pthread_mutex_t mu;
    xcp__saved_error first;    /* the first failure, kept */
    bool failed;
};

/* One VM.pool_migrate, as the client's session (on the coordinator: it
 * goes to the VM's host, pool/fwd.c). */
static int evac_one(struct evac *x, const xcp__evac_move *m)
{
    xcp_value args[3], res, v;
    int rc;

    memset(args, 0, sizeof(args));
    res.kind = XCP_VAL_NONE;
    xcp_value_set_struct(&args[2]);
    if (xcp_value_set_string(&args[0], m->vm) < 0 ||
        xcp_value_set_string(&args[1], m->host) < 0 ||
        xcp_value_set_string(&v, "true") < 0 ||
        xcp_value_struct_add(&args[2], "live", &v) < 0 ||
        (x->network && (xcp_value_set_string(&v, x->network) < 0 ||
                        xcp_value_struct_add(&args[2], "network", &v) < 0)))
        rc = xcp__oom();
    else
        rc = xcp__engine_call(x->e, x->session, x->mid, false, 3, args,
                              &res);
    xcp_value_dispose(&res);
    xcp_value_dispose(&args[0]);
    xcp_value_dispose(&args[1]);
    xcp_value_dispose(&args[2]);
    return rc;
}

static void *evac_worker(void *arg)
{
    struct evac *x = arg;

    for (;;) {
        const xcp__evac_move *m;
        const xcp_error *e;

        pthread_mutex_lock(&x->mu);
        m = !x->failed && x->next < x->n ? &x->moves[x->next++] : NULL;
        pthread_mutex_unlock(&x->mu);
        if (!m)
            return NULL;
        xcp_error_clear();
        if (evac_one(x, m) == 0)
            continue;
        /* A VM that stopped meanwhile has nothing left to move (XAPI's
         * assert_success lets VM_BAD_POWER_STATE pass). */
        e = xcp_error_last();
        if (e && e->name && !strcmp(e->name, "VM_BAD_POWER_STATE"))
            continue;
        pthread_mutex_lock(&x->mu);
        if (!x->failed) {
            x->failed = true; /* no new move starts */
            xcp__error_save(&x->first);
        }
        pthread_mutex_unlock(&x->mu);
    }
}

/* Leaves nothing but the control domain on the host: every other
 * resident VM live-migrated where the evacuation plan puts it,
 * evacuate_batch_size at a time (0: XAPI's default, 10). The plan's
 * first refusal is the error, before anything moves; a migration's
 * failure stops new ones and is the error once those under way end. */
static int evacuate(xcp__ctx *c)
{
    xcp__obj *h, *net = NULL;
    xcp__evac_move *moves = NULL;
    size_t n = 0, i, nw, left = 0, nres;
    const char *nref = xcp__arg_str(c, 1);
    int64_t batch = xcp__arg_int(c, 2);
    pthread_t *th = NULL;
    struct evac x;
    xcp_value map;
    const xcp_value *res;
    int rc;

    if ((rc = host_arg(c, &h)) < 0)
        return rc;
    if (nref && *nref && strcmp(nref, XCP_NULL_REF) != 0 &&
        (rc = xcp__arg_obj(c, 1, C(network), &net)) < 0)
        return rc;
    memset(&map, 0, sizeof(map));
    rc = xcp__placement_evacuation_plan(c, h, &map, &moves, &n);
    if (rc == 0 && map.u.st.n > 0) {
        const xcp_value *why = &map.u.st.vals[0];
        const char *p[8];
        size_t np = 0;
        for (i = 1; why->kind == XCP_VAL_ARRAY && i < why->u.arr.n && np < 8;
             i++)
            p[np++] = why->u.arr.items[i].u.s;
        rc = xcp_error_set(why->kind == XCP_VAL_ARRAY && why->u.arr.n
                               ? why->u.arr.items[0].u.s : "INTERNAL_ERROR",
                           np, p);
    }
    xcp_value_dispose(&map);
    if (rc < 0 || n == 0) {
        free(moves);
        return rc < 0 ? rc : 0;
    }
    batch = batch <= 0 ? EVACUATE_BATCH_DEFAULT : batch;
    nw = (size_t)batch < n ? (size_t)batch : n;
    memset(&x, 0, sizeof(x));
    x.e = c->e;
    x.session = c->session;
    x.network = net ? net->ref : NULL;
    x.mid = xcp__message_lookup("VM.pool_migrate");
    x.moves = moves;
    x.n = n;
    pthread_mutex_init(&x.mu, NULL);
    if (!(th = calloc(nw, sizeof(*th)))) {
        free(moves);
        return xcp__oom();
    }
    if ((rc = xcp__ctx_unlock(c)) < 0) {
        xcp__ctx_lock(c);
        free(th);
        free(moves);
        return rc;
    }
    for (i = 0; i < nw; i++)
        if (pthread_create(&th[i], NULL, evac_worker, &x) != 0)
            break;
    if (i == 0) /* no thread: this one does the work */
        evac_worker(&x);
    for (nw = i, i = 0; i < nw; i++)
        pthread_join(th[i], NULL);
    xcp__ctx_lock(c);
    free(th);
    free(moves);
    pthread_mutex_destroy(&x.mu);
    if (x.failed) {
        xcp__error_restore(&x.first);
        return -1;
    }
    /* XAPI checks that nothing but the control domain is left. */
    if (!(h = xcp__db_get_cls(c->db, C(host), h->ref)))
        return xcp__handle_invalid(C(host), xcp__arg_str(c, 0));
    res = xcp__obj_val(h, F(host, resident_VMs));
    nres = res && res->kind == XCP_VAL_ARRAY ? res->u.arr.n : 0;
    for (i = 0; i < nres; i++) {
        xcp__obj *vm = xcp__db_get_cls(c->db, C(VM), res->u.arr.items[i].u.s);
        if (vm && !xcp__obj_bool(vm, F(VM, is_control_domain)) &&
            (xcp__vm_is(vm, "Running") || xcp__vm_is(vm, "Paused")))
            left++;
    }
    if (left) {
        char msg[160];
        snprintf(msg, sizeof(msg), "evacuate: %zu VMs are still resident "
                 "on %s", left, h->ref);
        return XCP__ERR_INTERNAL_ERROR(msg);
    }
    return 0;
}

/* XAPI's older form: CANNOT_EVACUATE_HOST ["code,params|code,params"]. */
static int assert_can_evacuate(xcp__ctx *c)
{
    xcp_value m;
    xcp__buf why = {0};
    xcp__obj *h;
    size_t i, j;
    int rc;

    if ((rc = host_arg(c, &h)) < 0)
        return rc;
    memset(&m, 0, sizeof(m));
    if ((rc = xcp__placement_evacuation(c, h, &m)) == 0 && m.u.st.n > 0) {
        for (i = 0; i < m.u.st.n; i++) {
            const xcp_value *v = &m.u.st.vals[i];
            if (i)
                xcp__buf_add(&why, "|", 1);
            for (j = 0; v->kind == XCP_VAL_ARRAY && j < v->u.arr.n; j++)
                xcp__buf_printf(&why, "%s%s", j ? "," : "",
                                v->u.arr.items[j].u.s);
        }
        xcp__buf_addc(&why, '\0');
        rc = why.oom ? xcp__oom() : XCP__ERR_CANNOT_EVACUATE_HOST(why.data);
    }
    xcp__buf_free(&why);
    xcp_value_dispose(&m);
    return rc;
}

static int set_hostname_live(xcp__ctx *c)
{
    xcp__obj *h;
    const char *name = xcp__arg_str(c, 1);
    size_t i;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    for (i = 0; name[i]; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
            break;
    }
    if (!*name || name[i] || i > 253)
        return XCP__ERR_HOST_NAME_INVALID("hostname contains invalid "
                                          "characters");
    return xcp__db_set_str(c->db, h, F(host, hostname), name);
}

static int host_destroy(xcp__ctx *c)
{
    xcp__obj *h;
    int rc = host_arg(c, &h);

    if (rc < 0)
        return rc;
    if (!strcmp(h->ref, c->e->host))
        return XCP__ERR_HOST_CANNOT_DESTROY_SELF(h->ref);
    /* A dead member of the pool (not in the pool's corosync group) goes,
     * with its node id; a live one is pool.eject's. */
    if (!c->e->pool_repl ||
        xcp__pool_host_live(c->e->pool_repl, xcp__pool_host_nodeid(h)))
        return XCP__ERR_HOST_IS_LIVE(h->ref);
    return xcp__pool_remove_host(c, h);
}

/* ---- host.shutdown / host.reboot (XAPI's shutdown_and_reboot_common) ---- */

/* The daemon stops (SIGTERM) or restarts (SIGHUP) 3 s after the call
 * answered (XAPI runs /sbin/shutdown 10 s later): time for the answer to
 * reach the client, through the coordinator. */
static void *power_later(void *arg)
{
    int sig = (int)(intptr_t)arg;

    sleep(3);
    kill(getpid(), sig);
    return NULL;
}

static int power(xcp__ctx *c, bool reboot)
{
    xcp__obj *h, *vm;
    const xcp_value *vms;
    char (*refs)[XCP_REF_MAX] = NULL;
    size_t i, n = 0;
    sigset_t cur;
    pthread_t t;
    int sig = reboot ? SIGHUP : SIGTERM, rc;

    if ((rc = host_arg(c, &h)) < 0)
        return rc;
    /* Another host: the coordinator forwards the call there; a member
     * that gets one for another host cannot act on it. */
    if (strcmp(h->ref, c->e->host))
        return XCP__ERR_HOST_OFFLINE(h->ref);
    /* prepare_for_poweroff_precheck: assert_host_disabled. */
    if (xcp__obj_bool(h, F(host, enabled)))
        return XCP__ERR_HOST_NOT_DISABLED();
    /* Only a daemon that takes the signal through its signalfd (xcpd: it
     * blocks them in every thread) can go down in order; an embedded
     * engine cannot power its process off. */
    if (pthread_sigmask(SIG_BLOCK, NULL, &cur) != 0 ||
        !sigismember(&cur, sig))
        return XCP__ERR_NOT_IMPLEMENTED(reboot ? "host.reboot (embedded "
                                                 "engine)"
                                               : "host.shutdown (embedded "
                                                 "engine)");
    /* From here host.enable waits for the restart. */
    c->e->disabled_until_reboot = true;
    /* Vm_evacuation.ensure_no_vms: what still runs here is stopped hard
     * (a clean shutdown of a guest that ignores it would hold the host);
     * suspended VMs keep their image. */
    vms = xcp__obj_val(h, F(host, resident_VMs));
    n = vms && vms->kind == XCP_VAL_ARRAY ? vms->u.arr.n : 0;
    if (n && !(refs = calloc(n, sizeof(*refs))))
        return xcp__oom();
    for (i = 0; i < n; i++)
        snprintf(refs[i], XCP_REF_MAX, "%s", vms->u.arr.items[i].u.s);
    for (i = 0; i < n; i++) {
        vm = xcp__db_get_cls(c->db, C(VM), refs[i]);
        if (!vm || xcp__obj_bool(vm, F(VM, is_control_domain)) ||
            !(xcp__vm_is(vm, "Running") || xcp__vm_is(vm, "Paused")))
            continue;
        xcp__log(XCP__LOG_INFO, "host %s: VM %s stopped for the host's %s",
                 c->e->host, refs[i], reboot ? "reboot" : "shutdown");
        if ((rc = xcp__vm_begin(c, vm, "hard_shutdown")) < 0 ||
            !(vm = xcp__db_get_cls(c->db, C(VM), refs[i])) ||
            (rc = xcp__vm_do_hard_shutdown(c, vm)) < 0)
            break;
        if ((vm = xcp__db_get_cls(c->db, C(VM), refs[i])) &&
            (rc = xcp__vm_end(c, vm)) < 0)
            break;
    }
    free(refs);
    if (rc < 0)
        return rc;
    xcp__pool_power_off(c->e->pool_repl);
    xcp__log(XCP__LOG_INFO, "host %s: %s in a moment", c->e->host,
             reboot ? "rebooting (the daemon restarts)"
                    : "shutting down (the daemon stops)");
    if (pthread_create(&t, NULL, power_later, (void *)(intptr_t)sig) != 0)
        return xcp__internal("cannot start the %s thread",
                             reboot ? "reboot" : "shutdown");
    pthread_detach(t);
    return 0;
}

static int host_shutdown(xcp__ctx *c) { return power(c, false); }
static int host_reboot(xcp__ctx *c) { return power(c, true); }

const struct xcp__impl xcp__impl_host[] = {
    {"host.evacuate", evacuate},
    {"host.shutdown", host_shutdown},
    {"host.reboot", host_reboot},
    {"host.disable", host_disable},
    {"host.enable", host_enable_},
    {"host.get_servertime", servertime},
    {"host.get_server_localtime", servertime},
    {"host.compute_free_memory", free_memory},
    {"host.compute_memory_overhead", memory_overhead},
    {"host.get_management_interface", management_interface},
    {"host.get_vms_which_prevent_evacuation", prevent_evacuation},
    {"host.assert_can_evacuate", assert_can_evacuate},
    {"host.set_hostname_live", set_hostname_live},
    {"host.destroy", host_destroy},
    {NULL, NULL},
};

