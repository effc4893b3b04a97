/*
 * VM.*: the lifecycle with XAPI's semantics and errors (start, shutdown,
 * reboot, suspend/resume, pause), creation and destruction, memory and
 * vCPU changes, queries. vm_domain.c builds domains and reconciles the
 * database with the hypervisor's; vm_copy.c clones, copies, snapshots,
 * reverts and provisions.
 *
 * Long hypervisor work runs without the engine lock: the operation is
 * first recorded in current_operations and committed (so clients see it
 * and conflicting calls are refused), the lock is dropped for the driver
 * call, then the result is committed and the operation removed. The only
 * operations admitted beside another, hard_shutdown and hard_reboot,
 * first cancel it and wait for it to end (xcp__vm_preempt), so one call
 * at a time works on a VM's domain.
 */
#include "vm_int.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static const char *power(const xcp__obj *vm)
{
    return xcp__obj_str(vm, F(VM, power_state));
}

bool xcp__vm_is(const xcp__obj *vm, const char *state)
{
    return !strcmp(power(vm), state);
}

/* On failure after the operation was committed: end it, commit, keep the
 * error. The dispatcher's abort then has nothing left to undo. */
int xcp__vm_fail_op(xcp__ctx *c, const char *vmref, int rc)
{
    xcp__saved_error s;
    xcp__obj *vm = xcp__db_get_cls(c->db, C(VM), vmref);

    xcp__error_save(&s);
    if (vm)
        xcp__op_end(c, vm);
    xcp__ctx_commit(c);
    xcp__error_restore(&s);
    return rc;
}

int xcp__vm_hv_fail(xcp__ctx *c, const char *vmref, const xcp_hv_error *e)
{
    /* Memory shortages are checked before the driver is called, with exact
     * figures (HOST_NOT_ENOUGH_FREE_MEMORY [needed, available]); a driver
     * that still says ENOMEM reports its own message below. */
    XCP__UNUSED(c);
    if (e->code == -ETIMEDOUT)
        return XCP__ERR_VM_SHUTDOWN_TIMEOUT(vmref, e->message);
    return XCP__ERR_INTERNAL_ERROR(e->message[0] ? e->message
                                   : "hypervisor failure");
}

/* ---- lifecycle calls ---------------------------------------------------------- */

int xcp__vm_begin(xcp__ctx *c, xcp__obj *vm, const char *op)
{
    int rc = xcp__op_start(c, vm, op);

    if (rc < 0)
        return rc;
    return xcp__ctx_commit(c);
}

int xcp__vm_end(xcp__ctx *c, xcp__obj *vm)
{
    int rc = xcp__op_end(c, vm);

    if (rc == 0)
        rc = xcp__vm_refresh_host_memory(c);
    xcp__trace("VM %s: operation ended", vm->ref);
    return rc;
}

/*
 * The last steps of a start or resume whose domain was built paused and
 * recorded (as Paused when the caller asked for that, else Running): the
 * host's free memory is read while the new guest is still quiet, then the
 * guest runs, and the operation ends. Nothing of the toolstack's comes
 * after the unpause but the operation's end: a guest's first moments
 * (booting, or reconnecting its devices after a resume) compete for
 * dom0's CPUs, as they do with xl, which exits once the domain runs. A
 * domain Xen will not unpause stays, recorded as Paused, and the call
 * fails with the driver's reason.
 */
static int go(xcp__ctx *c, xcp__obj *vm, uint32_t domid, bool paused)
{
    xcp_hv_error e;
    int rc;

    if ((rc = xcp__vm_refresh_host_memory(c)) < 0)
        return xcp__vm_fail_op(c, vm->ref, rc);
    if (!paused && xcp__hv_domain_unpause(c->e->hv, domid, &e) < 0) {
        char ref[XCP_REF_MAX];

        snprintf(ref, sizeof(ref), "%s", vm->ref);
        rc = xcp__vm_hv_fail(c, ref, &e);
        xcp__saved_error s;
        xcp__error_save(&s);
        if (xcp__db_set_str(c->db, vm, F(VM, power_state), "Paused") < 0 ||
            xcp__update_allowed(c, vm) < 0)
            xcp__log(XCP__LOG_WARN, "VM %s: its domain %" PRIu32 " would "
                     "not unpause, and recording it paused failed", ref,
                     domid);
        xcp__error_restore(&s);
        return xcp__vm_fail_op(c, ref, rc);
    }
    rc = xcp__op_end(c, vm);
    xcp__trace("VM %s: operation ended", vm->ref);
    return rc;
}

/* Build the domain of a Halted vm whose operation is under way, record it
 * and end the operation. */
static int boot(xcp__ctx *c, xcp__obj *vm, bool paused)
{
    char ref[XCP_REF_MAX];
    uint32_t domid;
    int rc;

    snprintf(ref, sizeof(ref), "%s", vm->ref);
    if ((rc = xcp__vm_build_domain(c, &vm, true, NULL, &domid)) < 0)
        return xcp__vm_fail_op(c, ref, rc);
    if ((rc = xcp__vm_set_running(c, vm, domid, paused, XCP__VM_BOOTED)) < 0)
        return xcp__vm_fail_op(c, ref, rc);
    xcp__trace("VM %s: recorded running", ref);
    return go(c, vm, domid, paused);
}

/* Argument i, a host, which must be this one: 0, or HANDLE_INVALID or
 * HOST_OFFLINE (the pool has no other host to act on). */
static int local_host_arg(xcp__ctx *c, size_t i)
{
    xcp__obj *host;
    int rc;

    if ((rc = xcp__arg_obj(c, i, C(host), &host)) < 0)
        return rc;
    if (strcmp(host->ref, c->e->host))
        return XCP__ERR_HOST_OFFLINE(host->ref);
    return 0;
}

static int do_start(xcp__ctx *c, xcp__obj *vm, bool paused, const char *op)
{
    int rc = xcp__vm_ensure_domain_type(c, vm);

    if (rc == 0)
        rc = xcp__vm_begin(c, vm, op);
    xcp__trace("VM %s: %s begun", vm->ref, op);
    return rc < 0 ? rc : boot(c, vm, paused);
}

int xcp__vm_arg(xcp__ctx *c, xcp__obj **vm)
{
    return xcp__arg_obj(c, 0, C(VM), vm);
}

static int start(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc = xcp__vm_arg(c, &vm);

    return rc < 0 ? rc : do_start(c, vm, xcp__arg_bool(c, 1), "start");
}

static int start_on(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0 || (rc = local_host_arg(c, 1)) < 0)
        return rc;
    return do_start(c, vm, xcp__arg_bool(c, 2), "start_on");
}

int xcp__vm_do_hard_shutdown(xcp__ctx *c, xcp__obj *vm)
{
    char ref[XCP_REF_MAX];
    int rc;

    snprintf(ref, sizeof(ref), "%s", vm->ref);
    if (xcp__vm_is(vm, "Suspended")) {
        if ((rc = xcp__vm_drop_suspend_vdi(c, vm)) < 0)
            return xcp__vm_fail_op(c, ref, rc);
        if ((rc = xcp__vm_set_stopped(c, vm, "Halted", NULL)) < 0)
            return xcp__vm_fail_op(c, ref, rc);
        return 0;
    }
    if ((rc = xcp__vm_destroy_domain(c, &vm)) < 0)
        return xcp__vm_fail_op(c, ref, rc);
    if ((rc = xcp__vm_set_stopped(c, vm, "Halted", NULL)) < 0)
        return xcp__vm_fail_op(c, ref, rc);
    return 0;
}

/* The hard operations pre-empt what runs on the VM (xcp__vm_preempt) and
 * then act on the state it left, as XAPI's Xapi_vm does: a VM that ended
 * Halted meanwhile needs no hard_shutdown and is started by a
 * hard_reboot. */
static int hard_shutdown(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0 ||
        (rc = xcp__vm_begin(c, vm, "hard_shutdown")) < 0)
        return rc;
    if ((rc = xcp__vm_preempt(c, &vm, "hard_shutdown")) < 0)
        return xcp__vm_fail_op(c, xcp__arg_str(c, 0), rc);
    if (!xcp__vm_is(vm, "Halted") && (rc = xcp__vm_do_hard_shutdown(c, vm)) < 0)
        return rc;
    vm = xcp__db_get_cls(c->db, C(VM), xcp__arg_str(c, 0));
    return vm ? xcp__vm_end(c, vm) : 0;
}

static int do_clean_shutdown(xcp__ctx *c, xcp__obj *vm)
{
    char ref[XCP_REF_MAX];
    int rc;

    snprintf(ref, sizeof(ref), "%s", vm->ref);
    if ((rc = xcp__vm_guest_shutdown(c, &vm, XCP_HV_SHUTDOWN_POWEROFF)) < 0)
        return rc;
    if ((rc = xcp__vm_destroy_domain(c, &vm)) < 0)
        return rc;
    return xcp__vm_set_stopped(c, vm, "Halted", NULL);
}

static int clean_shutdown(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0 ||
        (rc = xcp__vm_begin(c, vm, "clean_shutdown")) < 0)
        return rc;
    xcp__trace("VM %s: clean_shutdown begun", vm->ref);
    if ((rc = do_clean_shutdown(c, vm)) < 0)
        return xcp__vm_fail_op(c, xcp__arg_str(c, 0), rc);
    vm = xcp__db_get_cls(c->db, C(VM), xcp__arg_str(c, 0));
    return vm ? xcp__vm_end(c, vm) : 0;
}

/* VM.shutdown: clean when running, falling back to hard. */
static int shutdown(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0 ||
        (rc = xcp__vm_begin(c, vm, "shutdown")) < 0)
        return rc;
    if (xcp__vm_is(vm, "Running") && (rc = do_clean_shutdown(c, vm)) == 0) {
        vm = xcp__db_get_cls(c->db, C(VM), xcp__arg_str(c, 0));
        return vm ? xcp__vm_end(c, vm) : 0;
    }
    /* Pre-empted by a hard_shutdown: it takes over, no fallback here. */
    if (rc < 0 && xcp_error_last() &&
        !strcmp(xcp_error_last()->name, "TASK_CANCELLED"))
        return xcp__vm_fail_op(c, xcp__arg_str(c, 0), rc);
    xcp_error_clear();
    vm = xcp__db_get_cls(c->db, C(VM), xcp__arg_str(c, 0));
    if (!vm)
        return xcp__handle_invalid(C(VM), xcp__arg_str(c, 0));
    if (xcp__vm_is(vm, "Halted"))
        return xcp__vm_end(c, vm);
    if ((rc = xcp__vm_do_hard_shutdown(c, vm)) < 0)
        return rc;
    vm = xcp__db_get_cls(c->db, C(VM), xcp__arg_str(c, 0));
    return vm ? xcp__vm_end(c, vm) : 0;
}

/* Replace the domain of a Running or Paused vm (operation under way) by a
 * fresh one and end the operation. The VM stays Running throughout, as
 * XAPI shows a reboot; it is Halted only if the new domain cannot be
 * built. */
static int reboot_domain(xcp__ctx *c, xcp__obj *vm)
{
    char ref[XCP_REF_MAX];
    uint32_t domid;
    int rc;

    snprintf(ref, sizeof(ref), "%s", vm->ref);
    if ((rc = xcp__vm_destroy_domain(c, &vm)) < 0)
        return xcp__vm_fail_op(c, ref, rc);
    if ((rc = xcp__vm_build_domain(c, &vm, false, NULL, &domid)) < 0) {
        xcp__saved_error s;
        xcp__error_save(&s);
        if (vm && xcp__vm_set_stopped(c, vm, "Halted", NULL) < 0)
            xcp__log(XCP__LOG_WARN, "VM %s: reboot failed, and so did "
                     "recording it halted", ref);
        xcp__error_restore(&s);
        return xcp__vm_fail_op(c, ref, rc);
    }
    if ((rc = xcp__vm_set_running(c, vm, domid, false, XCP__VM_BOOTED)) < 0)
        return xcp__vm_fail_op(c, ref, rc);
    return xcp__vm_end(c, vm);
}

static int clean_reboot(xcp__ctx *c)
{
    xcp__obj *vm;
    const char *ref = xcp__arg_str(c, 0);
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0 ||
        (rc = xcp__vm_begin(c, vm, "clean_reboot")) < 0)
        return rc;
    if ((rc = xcp__vm_guest_shutdown(c, &vm, XCP_HV_SHUTDOWN_REBOOT)) < 0)
        return xcp__vm_fail_op(c, ref, rc);
    return reboot_domain(c, vm);
}

static int hard_reboot(xcp__ctx *c)
{
    xcp__obj *vm;
    const char *ref = xcp__arg_str(c, 0);
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0 ||
        (rc = xcp__vm_begin(c, vm, "hard_reboot")) < 0)
        return rc;
    if ((rc = xcp__vm_preempt(c, &vm, "hard_reboot")) < 0)
        return xcp__vm_fail_op(c, ref, rc);
    if (xcp__vm_is(vm, "Halted"))
        return boot(c, vm, false);
    if (xcp__vm_is(vm, "Suspended"))
        return xcp__vm_fail_op(c, ref, xcp__vm_bad_power_state(ref, power(vm),
                                                               "running"));
    return reboot_domain(c, vm);
}

static int pause_unpause(xcp__ctx *c, bool pause)
{
    xcp__obj *vm;
    xcp_hv_error e;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0 ||
        (rc = xcp__vm_check_op(vm, pause ? "pause" : "unpause")) < 0)
        return rc;
    rc = pause ? xcp__hv_domain_pause(c->e->hv,
                                      (uint32_t)xcp__obj_int(vm, F(VM, domid)),
                                      &e)
               : xcp__hv_domain_unpause(c->e->hv,
                                        (uint32_t)xcp__obj_int(vm,
                                                               F(VM, domid)),
                                        &e);
    if (rc < 0)
        return xcp__vm_hv_fail(c, vm->ref, &e);
    if ((rc = xcp__db_set_str(c->db, vm, F(VM, power_state),
                              pause ? "Paused" : "Running")) < 0)
        return rc;
    return xcp__update_allowed(c, vm);
}

static int vm_pause(xcp__ctx *c)
{
    return pause_unpause(c, true);
}

static int vm_unpause(xcp__ctx *c)
{
    return pause_unpause(c, false);
}

static xcp__obj *suspend_sr(xcp__ctx *c, xcp__obj *vm)
{
    xcp__obj *sr = xcp__db_get_cls(c->db, C(SR),
                                   xcp__obj_str(vm, F(VM, suspend_SR)));
    xcp__obj *pool = xcp__db_get_cls(c->db, C(pool), c->e->pool);

    if (!sr && pool)
        sr = xcp__db_get_cls(c->db, C(SR),
                             xcp__obj_str(pool, F(pool, suspend_image_SR)));
    if (!sr)
        sr = xcp__default_sr(c);
    return sr;
}

/* Save the domain's memory into a new suspend VDI; the domain is gone
 * after. Returns the VDI's ref in vdiref. */
int xcp__vm_save_domain(xcp__ctx *c, xcp__obj **vm, char vdiref[XCP_REF_MAX])
{
    xcp__obj *sr = suspend_sr(c, *vm), *vdi;
    xcp_sr_vdi_path path;
    xcp_hv_error e;
    char ref[XCP_REF_MAX], *name;
    uint32_t domid = (uint32_t)xcp__obj_int(*vm, F(VM, domid));
    int rc;

    snprintf(ref, sizeof(ref), "%s", (*vm)->ref);
    if (!sr)
        return XCP__ERR_VM_REQUIRES_SR(ref, XCP_NULL_REF);
    name = xcp__printf("Suspend image for %s",
                       xcp__obj_str(*vm, F(VM, name_label)));
    if (!name)
        return xcp__oom();
    rc = xcp__vdi_new(c, sr, name, "", xcp__obj_int(*vm,
                                                   F(VM, memory_static_max)),
                      "suspend", "raw", &vdi);
    free(name);
    if (rc < 0 || (rc = xcp__vdi_path(c, vdi, &path)) < 0)
        return rc;
    snprintf(vdiref, XCP_REF_MAX, "%s", vdi->ref);
    if ((rc = xcp__ctx_unlock(c)) < 0) {
        xcp__ctx_lock(c);
        return rc;
    }
    rc = xcp__hv_domain_suspend(c->e->hv, domid, path.path, &e);
    xcp__ctx_lock(c);
    *vm = xcp__db_get_cls(c->db, C(VM), ref);
    vdi = xcp__db_get_cls(c->db, C(VDI), vdiref);
    if (rc < 0) {
        xcp__saved_error s;
        rc = xcp__vm_hv_fail(c, ref, &e);
        xcp__error_save(&s);
        if (vdi)
            xcp__vdi_delete(c, vdi);
        xcp__error_restore(&s);
        return rc;
    }
    if (vdi)
        xcp__vdi_refresh(c, vdi);
    return *vm ? 0 : xcp__handle_invalid(C(VM), ref);
}

static int suspend(xcp__ctx *c)
{
    xcp__obj *vm;
    char vdiref[XCP_REF_MAX];
    const char *ref = xcp__arg_str(c, 0);
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0 ||
        (rc = xcp__vm_begin(c, vm, "suspend")) < 0)
        return rc;
    if ((rc = xcp__vm_save_domain(c, &vm, vdiref)) < 0 ||
        (rc = xcp__vm_set_stopped(c, vm, "Suspended", vdiref)) < 0)
        return xcp__vm_fail_op(c, ref, rc);
    return xcp__vm_end(c, vm);
}

static int do_resume(xcp__ctx *c, bool paused, const char *op)
{
    xcp__obj *vm, *vdi;
    xcp_sr_vdi_path path;
    const char *ref = xcp__arg_str(c, 0);
    uint32_t domid;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0 ||
        (rc = xcp__vm_ensure_domain_type(c, vm)) < 0 ||
        (rc = xcp__vm_begin(c, vm, op)) < 0)
        return rc;
    vdi = xcp__db_get_cls(c->db, C(VDI), xcp__obj_str(vm, F(VM, suspend_VDI)));
    if (!vdi)
        return xcp__vm_fail_op(c, ref, XCP__ERR_VDI_MISSING(
                           XCP_NULL_REF, xcp__obj_str(vm, F(VM, suspend_VDI))));
    if ((rc = xcp__vdi_path(c, vdi, &path)) < 0 ||
        (rc = xcp__vm_build_domain(c, &vm, true, path.path, &domid)) < 0)
        return xcp__vm_fail_op(c, ref, rc);
    if ((rc = xcp__vm_drop_suspend_vdi(c, vm)) < 0)
        return xcp__vm_fail_op(c, ref, rc);
    xcp__trace("VM %s: suspend image dropped", ref);
    if ((rc = xcp__vm_set_running(c, vm, domid, paused,
                                  XCP__VM_RESUMED)) < 0)
        return xcp__vm_fail_op(c, ref, rc);
    xcp__trace("VM %s: recorded running", ref);
    return go(c, vm, domid, paused);
}

static int resume(xcp__ctx *c)
{
    return do_resume(c, xcp__arg_bool(c, 1), "resume");
}

static int resume_on(xcp__ctx *c)
{
    int rc = local_host_arg(c, 1);

    if (rc < 0)
        return rc;
    return do_resume(c, xcp__arg_bool(c, 2), "resume_on");
}

/* A driver that has no room for a second copy of the domain: the figures
 * XAPI gives, what the domain holds (with its overhead) against what the
 * host has free. */
static int migrate_no_memory(xcp__ctx *c, uint32_t domid)
{
    xcp_hv_domain_info info;
    xcp_hv_host_info hi;
    xcp_hv_error e;
    char a[32], b[32];

    memset(&info, 0, sizeof(info));
    xcp__hv_domain_info(c->e->hv, domid, &info, &e);
    snprintf(a, sizeof(a), "%" PRIu64,
             info.memory_actual + info.memory_overhead);
    snprintf(b, sizeof(b), "%" PRIu64,
             xcp__hv_host_info(c->e->hv, &hi, &e) == 0 ? hi.memory_free : 0);
    return XCP__ERR_HOST_NOT_ENOUGH_FREE_MEMORY(a, b);
}

/* VM.pool_migrate: to another host of the pool, vm_migrate.c; to this
 * host, XAPI's localhost migration, through the driver's live migration.
 * The VM stays Running, as a new domain with the same devices. */
static int pool_migrate(xcp__ctx *c)
{
    xcp__obj *vm, *host;
    const char *ref = xcp__arg_str(c, 0);
    xcp_hv_error e;
    uint32_t domid, nd = 0;
    bool paused;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0 ||
        (rc = xcp__arg_obj(c, 1, C(host), &host)) < 0)
        return rc;
    /* Another host of the pool: the VM's host (the coordinator forwarded
     * the call here) streams it there (vm_migrate.c). */
    if (strcmp(host->ref, c->e->host) && c->e->pool_repl) {
        const char *res = xcp__obj_str(vm, F(VM, resident_on));
        if (!xcp__vm_is(vm, "Running"))
            return xcp__vm_bad_power_state(
                vm->ref, xcp__obj_str(vm, F(VM, power_state)), "running");
        if (strcmp(res, c->e->host))
            return XCP__ERR_HOST_OFFLINE(res);
        return xcp__vm_pool_migrate_remote(c, vm, host);
    }
    if ((rc = local_host_arg(c, 1)) < 0)
        return rc;
    if ((rc = xcp__vm_begin(c, vm, "pool_migrate")) < 0)
        return rc;
    domid = (uint32_t)xcp__obj_int(vm, F(VM, domid));
    paused = xcp__vm_is(vm, "Paused");
    if ((rc = xcp__ctx_unlock(c)) < 0) {
        xcp__ctx_lock(c);
        return xcp__vm_fail_op(c, ref, rc);
    }
    rc = xcp__hv_domain_migrate_local(c->e->hv, domid, &nd, &e);
    xcp__ctx_lock(c);
    /* Whatever stopped the stream (the driver cannot migrate, the stream
     * or the receiving domain failed), XAPI says VM_MIGRATE_FAILED with
     * the reason, and the VM runs on where it was. */
    if (rc < 0)
        return xcp__vm_fail_op(
            c, ref,
            e.code == -ENOMEM
                ? migrate_no_memory(c, domid)
                : XCP__ERR_VM_MIGRATE_FAILED(ref, c->e->host, c->e->host,
                                             e.message[0] ? e.message
                                             : "hypervisor failure"));
    if (!(vm = xcp__db_get_cls(c->db, C(VM), ref)))
        return xcp__handle_invalid(C(VM), ref);
    if ((rc = xcp__vm_set_running(c, vm, nd, paused, XCP__VM_RESUMED)) < 0)
        return xcp__vm_fail_op(c, ref, rc);
    return xcp__vm_end(c, vm);
}

/* Recovery: the VM is Halted afterwards, whatever the database said. A
 * domain still alive on this host, or a suspend image, would otherwise leak
 * (memory, storage) and block the next start: they go too. */
static int power_state_reset(xcp__ctx *c)
{
    xcp__obj *vm;
    xcp_hv_domain_info info;
    xcp_hv_error e;
    int64_t domid;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0)
        return rc;
    if (xcp__obj_bool(vm, F(VM, is_control_domain)))
        return XCP__ERR_OPERATION_NOT_ALLOWED(
            "This operation is not allowed on the control "
            "domain");
    domid = xcp__obj_int(vm, F(VM, domid));
    if (domid > 0 &&
        xcp__hv_domain_info(c->e->hv, (uint32_t)domid, &info, &e) == 0 &&
        !strcmp(info.vm_uuid, xcp__obj_uuid(vm)) &&
        xcp__hv_domain_destroy(c->e->hv, (uint32_t)domid, &e) < 0 &&
        e.code != -ESRCH)
        return xcp__vm_hv_fail(c, vm->ref, &e);
    if ((rc = xcp__vm_drop_suspend_vdi(c, vm)) < 0 ||
        (rc = xcp__vm_set_stopped(c, vm, "Halted", NULL)) < 0)
        return rc;
    return xcp__vm_refresh_host_memory(c);
}

/* VM.set_is_a_template: making a template needs a Halted VM. */
static int set_is_a_template(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0)
        return rc;
    if (xcp__arg_bool(c, 1) && !xcp__obj_bool(vm, F(VM, is_a_template)) &&
        (rc = xcp__vm_check_op(vm, "make_into_template")) < 0)
        return rc;
    if ((rc = xcp__db_set_bool(c->db, vm, F(VM, is_a_template),
                               xcp__arg_bool(c, 1))) < 0)
        return rc;
    return xcp__update_allowed(c, vm);
}

/* ---- creation, destruction ---------------------------------------------------- */

int xcp__vm_new_metrics(xcp__ctx *c, xcp__obj *vm)
{
    xcp__obj *m;
    int rc;

    if ((rc = xcp__db_create(c->db, C(VM_metrics), NULL, NULL, &m)) < 0 ||
        (rc = xcp__db_set_time(c->db, m, F(VM_metrics, install_time),
                               xcp__now())) < 0)
        return rc;
    return xcp__db_set_str(c->db, vm, F(VM, metrics), m->ref);
}

int xcp__vm_init_record(xcp__ctx *c, xcp__obj *vm)
{
    int rc;

    if ((rc = xcp__vm_new_metrics(c, vm)) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, domid), -1)) < 0)
        return rc;
    return xcp__update_allowed(c, vm);
}

static int vm_create(xcp__ctx *c)
{
    const xcp_value *rec = xcp__arg(c, 0);
    xcp__obj *vm;
    int rc;

    if ((rc = xcp__ctor_required(C(VM), rec)) < 0 ||
        (rc = xcp__vm_check_memory_constraints(
             rec->u.rec.fields[F(VM, memory_static_min)].u.i,
             rec->u.rec.fields[F(VM, memory_dynamic_min)].u.i,
             rec->u.rec.fields[F(VM, memory_dynamic_max)].u.i,
             rec->u.rec.fields[F(VM, memory_static_max)].u.i)) < 0 ||
        (rc = xcp__vm_check_boot_fields(rec->u.rec.fields)) < 0)
        return rc;
    if (rec->u.rec.fields[F(VM, VCPUs_at_startup)].u.i >
            rec->u.rec.fields[F(VM, VCPUs_max)].u.i ||
        rec->u.rec.fields[F(VM, VCPUs_at_startup)].u.i < 1) {
        char n[32];
        snprintf(n, sizeof(n), "%lld",
                 (long long)rec->u.rec.fields[F(VM, VCPUs_at_startup)].u.i);
        return XCP__ERR_INVALID_VALUE("VCPUs_at_startup", n);
    }
    {
        /* The power state and its image are the server's business. */
        static const int skip[] = {F(VM, power_state), F(VM, suspend_VDI)};
        if ((rc = xcp__db_create(c->db, C(VM), NULL, NULL, &vm)) < 0 ||
            (rc = xcp__set_ctor_fields(c, vm, rec, skip,
                                       XCP__ARRAY_LEN(skip))) < 0)
            return rc;
    }
    if ((rc = xcp__vm_ensure_domain_type(c, vm)) < 0 ||
        (rc = xcp__vm_init_record(c, vm)) < 0)
        return rc;
    return xcp__ret_ref(c, vm);
}

int xcp__vm_destroy_record(xcp__ctx *c, xcp__obj *vm)
{
    xcp__obj *m;
    int rc;

    if ((rc = xcp__vm_drop_suspend_vdi(c, vm)) < 0 ||
        (rc = xcp__destroy_set(c, vm, F(VM, VBDs), C(VBD))) < 0 ||
        (rc = xcp__destroy_set(c, vm, F(VM, VIFs), C(VIF))) < 0 ||
        (rc = xcp__destroy_set(c, vm, F(VM, consoles), C(console))) < 0)
        return rc;
    if ((m = xcp__db_get_cls(c->db, C(VM_metrics),
                             xcp__obj_str(vm, F(VM, metrics)))) &&
        (rc = xcp__db_destroy(c->db, m)) < 0)
        return rc;
    if ((m = xcp__db_get_cls(c->db, C(VM_guest_metrics),
                             xcp__obj_str(vm, F(VM, guest_metrics)))) &&
        (rc = xcp__db_destroy(c->db, m)) < 0)
        return rc;
    return xcp__db_destroy(c->db, vm);
}

static int vm_destroy(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0 ||
        (rc = xcp__vm_check_op(vm, "destroy")) < 0)
        return rc;
    return xcp__vm_destroy_record(c, vm);
}

/* ---- memory and vCPUs --------------------------------------------------------- */

static int set_dynamic(xcp__ctx *c, xcp__obj *vm, int64_t min, int64_t max)
{
    xcp_hv_error e;
    int rc;

    if ((rc = xcp__vm_check_memory_constraints(
             xcp__obj_int(vm, F(VM, memory_static_min)), min, max,
             xcp__obj_int(vm, F(VM, memory_static_max)))) < 0)
        return rc;
    if (xcp__vm_is(vm, "Running")) {
        /* Growing a running guest takes the difference from the host. */
        xcp__obj *m = xcp__db_get_cls(c->db, C(VM_metrics),
                                      xcp__obj_str(vm, F(VM, metrics)));
        int64_t cur = m ? xcp__obj_int(m, F(VM_metrics, memory_actual)) : 0;
        xcp_hv_host_info hi;
        char a[32], b[32];
        if (max > cur && xcp__hv_host_info(c->e->hv, &hi, &e) == 0 &&
            (uint64_t)(max - cur) > hi.memory_free) {
            snprintf(a, sizeof(a), "%lld", (long long)(max - cur));
            snprintf(b, sizeof(b), "%llu", (unsigned long long)hi.memory_free);
            return XCP__ERR_HOST_NOT_ENOUGH_FREE_MEMORY(a, b);
        }
    }
    if (xcp__vm_is(vm, "Running") &&
        xcp__hv_domain_set_memory_target(c->e->hv,
                                         (uint32_t)xcp__obj_int(vm,
                                                                F(VM, domid)),
                                         (uint64_t)max, &e) < 0)
        return xcp__vm_hv_fail(c, vm->ref, &e);
    if ((rc = xcp__db_set_int(c->db, vm, F(VM, memory_dynamic_min), min)) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, memory_dynamic_max), max)) < 0)
        return rc;
    if (xcp__vm_is(vm, "Running")) {
        /* memory_actual is the balloon's, which may still be moving: the
         * domain monitor updates it as the driver reports progress. */
        if ((rc = xcp__vm_refresh_metrics(c, vm)) < 0)
            return rc;
        return xcp__vm_refresh_host_memory(c);
    }
    return 0;
}

static int set_memory_dynamic_range(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0 ||
        (rc = xcp__vm_check_op(vm, "changing_dynamic_range")) < 0)
        return rc;
    return set_dynamic(c, vm, xcp__arg_int(c, 1), xcp__arg_int(c, 2));
}

static int set_limits(xcp__ctx *c, xcp__obj *vm, int64_t smin, int64_t smax,
                      int64_t dmin, int64_t dmax, const char *op)
{
    int rc;

    if ((rc = xcp__vm_check_op(vm, op)) < 0 ||
        (rc = xcp__vm_check_memory_constraints(smin, dmin, dmax, smax)) < 0)
        return rc;
    if ((rc = xcp__db_set_int(c->db, vm, F(VM, memory_static_min), smin)) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, memory_static_max), smax)) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, memory_dynamic_min), dmin)) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, memory_dynamic_max), dmax)) < 0)
        return rc;
    return 0;
}

#define MEM(vm, f) xcp__obj_int(vm, F(VM, f))

static int set_memory_static_range(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc = xcp__vm_arg(c, &vm);

    return rc < 0 ? rc
                  : set_limits(c, vm, xcp__arg_int(c, 1), xcp__arg_int(c, 2),
                               MEM(vm, memory_dynamic_min),
                               MEM(vm, memory_dynamic_max),
                               "changing_static_range");
}

static int set_memory_limits(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc = xcp__vm_arg(c, &vm);

    return rc < 0 ? rc
                  : set_limits(c, vm, xcp__arg_int(c, 1), xcp__arg_int(c, 2),
                               xcp__arg_int(c, 3), xcp__arg_int(c, 4),
                               "changing_memory_limits");
}

static int set_memory(xcp__ctx *c)
{
    xcp__obj *vm;
    int64_t v = xcp__arg_int(c, 1);
    int rc = xcp__vm_arg(c, &vm);

    if (rc < 0)
        return rc;
    if (xcp__vm_is(vm, "Running"))
        return set_dynamic(c, vm, v, v);
    return set_limits(c, vm, MEM(vm, memory_static_min) < v
                                 ? MEM(vm, memory_static_min) : v,
                      v, v, v, "changing_memory_limits");
}

static int set_one_memory(xcp__ctx *c, int which)
{
    xcp__obj *vm;
    int64_t v = xcp__arg_int(c, 1);
    int64_t smin, smax, dmin, dmax;
    int rc = xcp__vm_arg(c, &vm);

    if (rc < 0)
        return rc;
    smin = which == 0 ? v : MEM(vm, memory_static_min);
    smax = which == 1 ? v : MEM(vm, memory_static_max);
    dmin = which == 2 ? v : MEM(vm, memory_dynamic_min);
    dmax = which == 3 ? v : MEM(vm, memory_dynamic_max);
    if (which >= 2 && xcp__vm_is(vm, "Running")) {
        if ((rc = xcp__vm_check_op(vm, "changing_dynamic_range")) < 0)
            return rc;
        return set_dynamic(c, vm, dmin, dmax);
    }
    return set_limits(c, vm, smin, smax, dmin, dmax,
                      which >= 2 ? "changing_dynamic_range"
                                 : "changing_static_range");
}

static int set_memory_static_min(xcp__ctx *c) { return set_one_memory(c, 0); }
static int set_memory_static_max(xcp__ctx *c) { return set_one_memory(c, 1); }
static int set_memory_dynamic_min(xcp__ctx *c) { return set_one_memory(c, 2); }
static int set_memory_dynamic_max(xcp__ctx *c) { return set_one_memory(c, 3); }

static int bad_int(const char *field, int64_t v)
{
    char n[32];

    snprintf(n, sizeof(n), "%lld", (long long)v);
    return XCP__ERR_INVALID_VALUE(field, n);
}

static int set_VCPUs_max(xcp__ctx *c)
{
    xcp__obj *vm;
    int64_t v = xcp__arg_int(c, 1);
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0 ||
        (rc = xcp__vm_check_op(vm, "changing_VCPUs")) < 0)
        return rc;
    if (v < 1 || v > 64 || v < xcp__obj_int(vm, F(VM, VCPUs_at_startup)))
        return bad_int("VCPUs_max", v);
    return xcp__db_set_int(c->db, vm, F(VM, VCPUs_max), v);
}

static int set_VCPUs_at_startup(xcp__ctx *c)
{
    xcp__obj *vm;
    int64_t v = xcp__arg_int(c, 1);
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0 ||
        (rc = xcp__vm_check_op(vm, "changing_VCPUs")) < 0)
        return rc;
    if (v < 1 || v > xcp__obj_int(vm, F(VM, VCPUs_max)))
        return bad_int("VCPUs_at_startup", v);
    return xcp__db_set_int(c->db, vm, F(VM, VCPUs_at_startup), v);
}

static int set_VCPUs_number_live(xcp__ctx *c)
{
    xcp__obj *vm;
    xcp_hv_error e;
    int64_t v = xcp__arg_int(c, 1);
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0 ||
        (rc = xcp__vm_check_op(vm, "changing_VCPUs_live")) < 0)
        return rc;
    if (v < 1)
        return bad_int("nvcpu", v);
    if (v > xcp__obj_int(vm, F(VM, VCPUs_max)))
        return XCP__ERR_OPERATION_NOT_ALLOWED(
            "The number of vCPUs may not exceed VCPUs_max");
    if (xcp__hv_domain_set_vcpus(c->e->hv,
                                 (uint32_t)xcp__obj_int(vm, F(VM, domid)),
                                 (uint32_t)v, &e) < 0)
        return xcp__vm_hv_fail(c, vm->ref, &e);
    if ((rc = xcp__db_set_int(c->db, vm, F(VM, VCPUs_at_startup), v)) < 0)
        return rc;
    return xcp__vm_refresh_metrics(c, vm);
}

/* Explicit setters of static fields: the field is the message's name. */
static int static_setter(xcp__ctx *c)
{
    const char *name = strchr(c->msg->wire, '.') + 1 + 4; /* "set_" */
    int f = xcp_class_field_index(C(VM), name);
    xcp__obj *vm;
    xcp_value v;
    int rc;

    if (f < 0)
        return xcp__internal("no field for %s", c->msg->wire);
    if ((rc = xcp__vm_arg(c, &vm)) < 0)
        return rc;
    if ((rc = xcp_value_copy(&v, xcp__arg(c, 1))) < 0)
        return rc;
    rc = xcp__db_set(c->db, vm, f, &v);
    xcp_value_dispose(&v);
    return rc;
}

/* ---- domain_type and HVM_boot_policy ------------------------------------ */

/* As XAPI (Xapi_vm_helpers): each is derived from the other, so clients
 * that know only HVM_boot_policy (xe HVM-boot-policy="" for PV) and those
 * that set domain_type agree on how the VM boots. */
static const char *derive_domain_type(const char *hvm_boot_policy)
{
    return *hvm_boot_policy ? "hvm" : "pv";
}

int xcp__vm_ensure_domain_type(xcp__ctx *c, xcp__obj *vm)
{
    if (strcmp(xcp__obj_str(vm, F(VM, domain_type)), "unspecified"))
        return 0;
    return xcp__db_set_str(c->db, vm, F(VM, domain_type),
                           derive_domain_type(
                               xcp__obj_str(vm, F(VM, HVM_boot_policy))));
}

static const char *derive_hvm_boot_policy(const char *domain_type)
{
    return !strcmp(domain_type, "hvm") ? "BIOS order" : "";
}

static int set_HVM_boot_policy(xcp__ctx *c)
{
    const char *v = xcp__arg_str(c, 1);
    xcp__obj *vm;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, domain_type),
                              derive_domain_type(v))) < 0)
        return rc;
    return xcp__db_set_str(c->db, vm, F(VM, HVM_boot_policy), v);
}

static int set_domain_type(xcp__ctx *c)
{
    const char *v = xcp__arg_str(c, 1);
    xcp__obj *vm;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0)
        return rc;
    if (!strcmp(v, "unspecified"))
        return XCP__ERR_INVALID_VALUE("domain_type", v);
    if ((rc = xcp__db_set_str(c->db, vm, F(VM, domain_type), v)) < 0)
        return rc;
    return xcp__db_set_str(c->db, vm, F(VM, HVM_boot_policy),
                           derive_hvm_boot_policy(v));
}

/* PV_kernel, PV_ramdisk, PV_bootloader: checked, then as static_setter. */
static int set_boot_field(xcp__ctx *c)
{
    const char *name = strchr(c->msg->wire, '.') + 1 + 4; /* "set_" */
    const char *v = xcp__arg_str(c, 1);
    xcp__obj *vm;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0)
        return rc;
    rc = !strcmp(name, "PV_bootloader") ? xcp__vm_check_bootloader(v)
                                        : xcp__vm_check_boot_path(name, v);
    return rc < 0 ? rc : static_setter(c);
}

static int map_edit(xcp__ctx *c, int f, bool add)
{
    xcp__obj *vm;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0)
        return rc;
    if (!add)
        return xcp__db_map_del(c->db, vm, f, xcp__arg_str(c, 1));
    return xcp__db_map_put_str(c->db, vm, f, xcp__arg_str(c, 1),
                               xcp__arg_str(c, 2));
}

static int add_to_NVRAM(xcp__ctx *c) { return map_edit(c, F(VM, NVRAM), true); }
static int remove_from_NVRAM(xcp__ctx *c)
{
    return map_edit(c, F(VM, NVRAM), false);
}

static int add_to_VCPUs_params_live(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0 ||
        (rc = xcp__vm_check_op(vm, "changing_VCPUs_live")) < 0)
        return rc;
    return xcp__db_map_put_str(c->db, vm, F(VM, VCPUs_params),
                               xcp__arg_str(c, 1), xcp__arg_str(c, 2));
}

static int copy_bios_strings(xcp__ctx *c)
{
    xcp__obj *vm, *host;
    xcp_value v;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0 ||
        (rc = xcp__arg_obj(c, 1, C(host), &host)) < 0)
        return rc;
    if ((rc = xcp_value_copy(&v, xcp__obj_val(host, F(host, bios_strings)))) < 0)
        return rc;
    rc = xcp__db_set(c->db, vm, F(VM, bios_strings), &v);
    xcp_value_dispose(&v);
    return rc;
}

/* ---- queries ------------------------------------------------------------------- */

static int allowed_devices(xcp__ctx *c, int set_field, int cls, int dev_field,
                           int max)
{
    xcp__obj *vm;
    const xcp_value *set;
    bool used[64] = {false};
    size_t i, k = 0;
    int d, rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0)
        return rc;
    set = xcp__obj_val(vm, set_field);
    for (i = 0; set->kind == XCP_VAL_ARRAY && i < set->u.arr.n; i++) {
        xcp__obj *o = xcp__db_get_cls(c->db, cls, set->u.arr.items[i].u.s);
        int n = o ? atoi(xcp__obj_str(o, dev_field)) : -1;
        if (n >= 0 && n < 64)
            used[n] = true;
    }
    for (d = 0; d < max; d++)
        if (!used[d])
            k++;
    if ((rc = xcp_value_set_array(c->result, k)) < 0)
        return rc;
    for (d = 0, k = 0; d < max; d++) {
        char s[8];
        if (used[d])
            continue;
        snprintf(s, sizeof(s), "%d", d);
        if ((rc = xcp_value_set_string(&c->result->u.arr.items[k++], s)) < 0)
            return rc;
    }
    return 0;
}

static int allowed_vbd_devices(xcp__ctx *c)
{
    return allowed_devices(c, F(VM, VBDs), C(VBD), F(VBD, userdevice), 16);
}

static int allowed_vif_devices(xcp__ctx *c)
{
    return allowed_devices(c, F(VM, VIFs), C(VIF), F(VIF, device), 7);
}

static int assert_operation_valid(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc = xcp__vm_arg(c, &vm);

    return rc < 0 ? rc : xcp__vm_check_op(vm, xcp__arg_str(c, 1));
}

static int update_allowed_operations(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc = xcp__vm_arg(c, &vm);

    return rc < 0 ? rc : xcp__update_allowed(c, vm);
}

static int assert_can_boot_here(xcp__ctx *c)
{
    xcp__obj *vm, *host;
    struct domcfg d;
    int rc;

    /* In a pool, any host of it, with XAPI's checks (placement.c). */
    if (c->e->pool_repl) {
        if ((rc = xcp__vm_arg(c, &vm)) < 0 ||
            (rc = xcp__arg_obj(c, 1, C(host), &host)) < 0)
            return rc;
        return xcp__placement_check(c, vm, host, true);
    }
    if ((rc = xcp__vm_arg(c, &vm)) < 0 || (rc = local_host_arg(c, 1)) < 0)
        return rc;
    if ((rc = xcp__vm_build_cfg(c, vm, &d, false)) == 0)
        rc = xcp__vm_check_host_fits(c, vm, &d);
    xcp__vm_domcfg_free(&d);
    return rc;
}

static int get_possible_hosts(xcp__ctx *c)
{
    xcp__obj *vm;
    struct domcfg d;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0)
        return rc;
    if (c->e->pool_repl)
        return xcp__placement_possible(c, vm);
    rc = xcp__vm_build_cfg(c, vm, &d, false);
    if (rc == 0)
        rc = xcp__vm_check_host_fits(c, vm, &d);
    xcp__vm_domcfg_free(&d);
    if (rc < 0) {
        xcp_error_clear();
        return xcp_value_set_array(c->result, 0);
    }
    if ((rc = xcp_value_set_array(c->result, 1)) < 0)
        return rc;
    return xcp_value_set_string(&c->result->u.arr.items[0], c->e->host);
}

static int compute_memory_overhead(xcp__ctx *c)
{
    xcp__obj *vm;
    struct domcfg d;
    xcp_hv_error e;
    uint64_t o = 0;
    int rc;

    if ((rc = xcp__vm_arg(c, &vm)) < 0)
        return rc;
    if ((rc = xcp__vm_build_cfg(c, vm, &d, false)) == 0 &&
        xcp__hv_memory_overhead(c->e->hv, &d.cfg, &o, &e) < 0)
        rc = xcp__vm_hv_fail(c, vm->ref, &e);
    xcp__vm_domcfg_free(&d);
    if (rc == 0)
        xcp__ret_int(c, (int64_t)o);
    return rc;
}

const struct xcp__impl xcp__impl_vm[] = {
    {"VM.create", vm_create},
    {"VM.destroy", vm_destroy},
    {"VM.start", start},
    {"VM.start_on", start_on},
    {"VM.shutdown", shutdown},
    {"VM.clean_shutdown", clean_shutdown},
    {"VM.hard_shutdown", hard_shutdown},
    {"VM.clean_reboot", clean_reboot},
    {"VM.hard_reboot", hard_reboot},
    {"VM.suspend", suspend},
    {"VM.resume", resume},
    {"VM.resume_on", resume_on},
    {"VM.pause", vm_pause},
    {"VM.unpause", vm_unpause},
    {"VM.power_state_reset", power_state_reset},
    {"VM.pool_migrate", pool_migrate},
    {"VM.set_is_a_template", set_is_a_template},
    {"VM.set_memory_dynamic_range", set_memory_dynamic_range},
    {"VM.set_memory_static_range", set_memory_static_range},
    {"VM.set_memory_limits", set_memory_limits},
    {"VM.set_memory", set_memory},
    {"VM.set_memory_static_max", set_memory_static_max},
    {"VM.set_memory_static_min", set_memory_static_min},
    {"VM.set_memory_dynamic_max", set_memory_dynamic_max},
    {"VM.set_memory_dynamic_min", set_memory_dynamic_min},
    {"VM.set_VCPUs_max", set_VCPUs_max},
    {"VM.set_VCPUs_at_startup", set_VCPUs_at_startup},
    {"VM.set_VCPUs_number_live", set_VCPUs_number_live},
    {"VM.add_to_VCPUs_params_live", add_to_VCPUs_params_live},
    {"VM.set_HVM_shadow_multiplier", static_setter},
    {"VM.set_HVM_boot_policy", set_HVM_boot_policy},
    {"VM.set_domain_type", set_domain_type},
    {"VM.set_actions_after_crash", static_setter},
    {"VM.set_ha_restart_priority", static_setter},
    {"VM.set_ha_always_run", static_setter},
    {"VM.set_suspend_VDI", static_setter},
    {"VM.set_order", static_setter},
    {"VM.set_start_delay", static_setter},
    {"VM.set_shutdown_delay", static_setter},
    {"VM.set_has_vendor_device", static_setter},
    {"VM.set_bios_strings", static_setter},
    {"VM.set_NVRAM", static_setter},
    {"VM.set_PV_kernel", set_boot_field},
    {"VM.set_PV_ramdisk", set_boot_field},
    {"VM.set_PV_bootloader", set_boot_field},
    {"VM.add_to_NVRAM", add_to_NVRAM},
    {"VM.remove_from_NVRAM", remove_from_NVRAM},
    {"VM.copy_bios_strings", copy_bios_strings},
    {"VM.get_allowed_VBD_devices", allowed_vbd_devices},
    {"VM.get_allowed_VIF_devices", allowed_vif_devices},
    {"VM.assert_operation_valid", assert_operation_valid},
    {"VM.update_allowed_operations", update_allowed_operations},
    {"VM.assert_can_boot_here", assert_can_boot_here},
    {"VM.get_possible_hosts", get_possible_hosts},
    {"VM.compute_memory_overhead", compute_memory_overhead},
    {NULL, NULL},
};
