/*
 * Operation bookkeeping, XAPI's way: which operations are valid on an
 * object right now (allowed_operations, recomputed on every change that
 * matters) and which are running (current_operations: task -> op), with
 * the checks and errors a refused operation gets.
 */
#include "../api/storage.h"

#include <stdio.h>

/* ---- VM ------------------------------------------------------------------ */

enum { PS_HALTED = 1, PS_PAUSED = 2, PS_RUNNING = 4, PS_SUSPENDED = 8,
       PS_ANY = 15 };

static int power_bit(const char *ps)
{
    if (!strcmp(ps, "Halted"))
        return PS_HALTED;
    if (!strcmp(ps, "Paused"))
        return PS_PAUSED;
    if (!strcmp(ps, "Running"))
        return PS_RUNNING;
    if (!strcmp(ps, "Suspended"))
        return PS_SUSPENDED;
    return 0;
}

static const struct {
    const char *op;
    int states;
} vm_states[] = {
    {"start", PS_HALTED}, {"start_on", PS_HALTED}, {"provision", PS_HALTED},
    {"make_into_template", PS_HALTED}, {"changing_shadow_memory", PS_HALTED},
    {"changing_NVRAM", PS_HALTED}, {"create_vtpm", PS_HALTED},
    {"changing_VCPUs", PS_HALTED}, {"changing_static_range", PS_HALTED},
    {"changing_memory_limits", PS_HALTED},
    {"unpause", PS_PAUSED},
    {"resume", PS_SUSPENDED}, {"resume_on", PS_SUSPENDED},
    {"csvm", PS_SUSPENDED},
    {"pause", PS_RUNNING}, {"suspend", PS_RUNNING},
    {"clean_shutdown", PS_RUNNING}, {"clean_reboot", PS_RUNNING},
    {"pool_migrate", PS_RUNNING}, {"changing_VCPUs_live", PS_RUNNING},
    {"changing_memory_live", PS_RUNNING}, {"call_plugin", PS_RUNNING},
    {"send_sysrq", PS_RUNNING}, {"send_trigger", PS_RUNNING},
    {"snapshot_with_quiesce", PS_RUNNING}, {"sysprep", PS_RUNNING},
    {"data_source_op", PS_RUNNING}, {"awaiting_memory_live", PS_RUNNING},
    {"changing_shadow_memory_live", PS_RUNNING},
    {"changing_dynamic_range", PS_HALTED | PS_RUNNING},
    {"clone", PS_HALTED}, {"copy", PS_HALTED},
    {"destroy", PS_HALTED | PS_SUSPENDED},
    {"export", PS_HALTED | PS_SUSPENDED},
    {"hard_reboot", PS_PAUSED | PS_RUNNING},
    {"shutdown", PS_PAUSED | PS_SUSPENDED | PS_RUNNING},
    {"hard_shutdown", PS_PAUSED | PS_SUSPENDED | PS_RUNNING},
    {"checkpoint", PS_PAUSED | PS_SUSPENDED | PS_RUNNING},
    {"get_boot_record", PS_PAUSED | PS_SUSPENDED | PS_RUNNING},
    {"migrate_send", PS_HALTED | PS_SUSPENDED | PS_RUNNING},
};

/* Internal ops never listed in allowed_operations. */
static const char *const vm_hidden[] = {
    "create_template", "power_state_reset", "csvm", "get_boot_record",
    "send_sysrq", "send_trigger", "query_services", "shutdown",
    "call_plugin", "changing_memory_live", "awaiting_memory_live",
    "changing_memory_limits", "changing_shadow_memory_live",
    "changing_VCPUs", "assert_operation_valid", "data_source_op",
    "update_allowed_operations", "import", "reverting"};

static const char *const template_ok[] = {
    "clone", "copy", "export", "metadata_export", "provision",
    "changing_dynamic_range", "changing_static_range",
    "changing_memory_limits", "changing_VCPUs", "changing_shadow_memory",
    "changing_NVRAM", "destroy", "migrate_send", "snapshot",
    "assert_operation_valid", "update_allowed_operations",
    "power_state_reset", "make_into_template"};

static const char *const snapshot_ok[] = {
    "revert", "clone", "copy", "export", "destroy", "hard_shutdown",
    "metadata_export", "assert_operation_valid",
    "update_allowed_operations", "power_state_reset"};

static bool in_list(const char *op, const char *const *list, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (!strcmp(op, list[i]))
            return true;
    return false;
}

static int allowed_states(const char *op, bool snapshot)
{
    size_t i;

    for (i = 0; i < XCP__ARRAY_LEN(vm_states); i++) {
        if (strcmp(vm_states[i].op, op))
            continue;
        if (snapshot && (!strcmp(op, "clone") || !strcmp(op, "copy")))
            return PS_HALTED | PS_SUSPENDED;
        return vm_states[i].states;
    }
    return PS_ANY;
}

static void states_text(int states, char *buf, size_t len)
{
    static const char *const names[] = {"halted", "paused", "running",
                                        "suspended"};
    size_t i, o = 0;

    buf[0] = '\0';
    for (i = 0; i < 4; i++) {
        if (!(states & (1 << i)))
            continue;
        o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "",
                              names[i]);
        if (o >= len)
            break;
    }
}

static bool same_family(const char *a, const char *b)
{
    static const char *const fam1[] = {"clone", "copy", "export"};
    static const char *const fam2[] = {"snapshot", "checkpoint"};

    if (in_list(a, fam1, 3) && in_list(b, fam1, 3))
        return true;
    if (in_list(a, fam2, 2) && in_list(b, fam2, 2))
        return true;
    if (!strcmp(a, "get_boot_record") && !strcmp(b, "get_boot_record"))
        return true;
    return false;
}

/* May op start while `running` is in progress? */
static bool compatible(const char *op, const char *running)
{
    if (same_family(op, running))
        return true;
    if (!strcmp(op, "snapshot") && !strcmp(running, "snapshot_with_quiesce"))
        return true;
    if (!strcmp(running, "migrate_send") &&
        (!strcmp(op, "metadata_export") || !strcmp(op, "clean_shutdown") ||
         !strcmp(op, "clean_reboot")))
        return true;
    if (!strcmp(op, "hard_shutdown") && strcmp(running, "hard_shutdown"))
        return true;
    if (!strcmp(op, "hard_reboot") && strcmp(running, "hard_shutdown") &&
        strcmp(running, "hard_reboot"))
        return true;
    return false;
}

/* The error op would get on vm now, or 0. Sets the thread error. */
static int vm_check(xcp__obj *vm, const char *op, const char *self_task)
{
    const char *ps = xcp__obj_str(vm, F(VM, power_state));
    const xcp_value *cur = xcp__obj_val(vm, F(VM, current_operations));
    const char *blocked = xcp__obj_map_str(vm, F(VM, blocked_operations), op);
    bool tmpl = xcp__obj_bool(vm, F(VM, is_a_template));
    bool snap = xcp__obj_bool(vm, F(VM, is_a_snapshot));
    int states;
    size_t i;

    if (blocked)
        return XCP__ERR_OPERATION_BLOCKED(vm->ref, blocked);
    states = allowed_states(op, snap);
    /* The control domain is always running: a start is a power-state
     * error (as XAPI says), most other operations are simply refused. */
    if (xcp__obj_bool(vm, F(VM, is_control_domain)) &&
        (states & power_bit(ps)) &&
        strcmp(op, "changing_dynamic_range") &&
        strcmp(op, "assert_operation_valid") &&
        strcmp(op, "update_allowed_operations") &&
        strcmp(op, "changing_VCPUs_live") &&
        strcmp(op, "changing_memory_live"))
        return XCP__ERR_OPERATION_NOT_ALLOWED(
            "This operation is not allowed on a control "
            "domain");
    if (!(states & power_bit(ps))) {
        char exp[64];
        states_text(states, exp, sizeof(exp));
        return xcp__vm_bad_power_state(vm->ref, ps, exp);
    }
    for (i = 0; cur->kind == XCP_VAL_STRUCT && i < cur->u.st.n; i++) {
        const char *running = cur->u.st.vals[i].u.s;
        if (self_task && !strcmp(cur->u.st.keys[i], self_task))
            continue;
        if (!compatible(op, running))
            return XCP__ERR_OTHER_OPERATION_IN_PROGRESS(
                "VM", vm->ref, running, cur->u.st.keys[i]);
    }
    if (tmpl && !snap && !in_list(op, template_ok,
                                  XCP__ARRAY_LEN(template_ok)))
        return XCP__ERR_VM_IS_TEMPLATE_OP(vm->ref, op);
    if (tmpl && !snap && xcp__obj_bool(vm, F(VM, is_default_template)) &&
        !strcmp(op, "destroy"))
        return XCP__ERR_VM_CANNOT_DELETE_DEFAULT_TEMPLATE(vm->ref);
    if (snap && !in_list(op, snapshot_ok, XCP__ARRAY_LEN(snapshot_ok)))
        return XCP__ERR_VM_IS_SNAPSHOT(vm->ref, op);
    if (!strcmp(op, "provision") && !tmpl)
        return XCP__ERR_PROVISION_ONLY_ALLOWED_ON_TEMPLATE();
    if (!strcmp(op, "revert") && !snap)
        return XCP__ERR_REVERT_ONLY_ALLOWED_ON_SNAPSHOT();
    return 0;
}

int xcp__vm_bad_power_state(const char *vmref, const char *power_state,
                            const char *expected)
{
    char act[16];
    size_t k;

    for (k = 0; power_state[k] && k + 1 < sizeof(act); k++)
        act[k] = (char)(power_state[k] >= 'A' && power_state[k] <= 'Z'
                            ? power_state[k] + 32 : power_state[k]);
    act[k] = '\0';
    return XCP__ERR_VM_BAD_POWER_STATE(vmref, expected, act);
}

int xcp__vm_check_op(xcp__obj *vm, const char *op)
{
    return vm_check(vm, op, NULL);
}

/*
 * Pre-emption by the hard operations, as XAPI's message_forwarding.ml:
 * hard_shutdown and hard_reboot may start while another operation runs
 * (see compatible()); they cancel the operations listed here and then
 * wait until every other operation on the VM has ended, so that one call
 * at a time works on the VM's domain (xenopsd's per-VM queue) and the
 * hard operation acts last, on what the others left.
 */
static const char *const hard_shutdown_cancels[] = {
    "clean_shutdown", "clean_reboot", "hard_reboot", "pool_migrate",
    "call_plugin", "shutdown", "suspend"};
static const char *const hard_reboot_cancels[] = {
    "clean_shutdown", "clean_reboot", "pool_migrate", "call_plugin",
    "suspend"};

/* Ask the pending task of a running operation to cancel. */
static int cancel_task(xcp__ctx *c, const char *ref)
{
    xcp__obj *t = xcp__db_get_cls(c->db, C(task), ref);

    if (!t || strcmp(xcp__obj_str(t, F(task, status)), "pending"))
        return 0;
    return xcp__db_set_str(c->db, t, F(task, status), "cancelling");
}

int xcp__vm_preempt(xcp__ctx *c, xcp__obj **vm, const char *op)
{
    bool shut = !strcmp(op, "hard_shutdown");
    const char *const *list = shut ? hard_shutdown_cancels
                                   : hard_reboot_cancels;
    size_t nlist = shut ? XCP__ARRAY_LEN(hard_shutdown_cancels)
                        : XCP__ARRAY_LEN(hard_reboot_cancels);
    char ref[XCP_REF_MAX];
    int rc;

    snprintf(ref, sizeof(ref), "%s", (*vm)->ref);
    for (;;) {
        const xcp_value *cur;
        size_t i, others = 0;

        if (!(*vm = xcp__db_get_cls(c->db, C(VM), ref)))
            return xcp__handle_invalid(C(VM), ref);
        cur = xcp__obj_val(*vm, F(VM, current_operations));
        for (i = 0; cur->kind == XCP_VAL_STRUCT && i < cur->u.st.n; i++) {
            const char *task = cur->u.st.keys[i];
            if (!strcmp(task, c->task) ||
                !xcp__db_get_cls(c->db, C(task), task))
                continue; /* ours, or left by a call that is gone */
            others++;
            if (in_list(cur->u.st.vals[i].u.s, list, nlist) &&
                (rc = cancel_task(c, task)) < 0)
                return rc;
        }
        if (!others)
            return 0;
        /* A hard_shutdown may in turn pre-empt a waiting hard_reboot. */
        if (xcp__task_cancelling(c))
            return XCP__ERR_TASK_CANCELLED(c->task);
        /* The cancels must reach the calls (a full disk fails here, not
         * in a wait for calls that were never told). */
        if ((rc = xcp__ctx_commit(c)) < 0)
            return rc;
        xcp__ctx_wait(c, -1); /* wakes at every commit */
    }
}

/* ---- other classes: simple rules ----------------------------------------- */

static bool vm_running(xcp__ctx *c, const char *vmref)
{
    xcp__obj *vm = xcp__db_get_cls(c->db, C(VM), vmref);

    return vm && !strcmp(xcp__obj_str(vm, F(VM, power_state)), "Running");
}

static bool has_current(const xcp__obj *o, int field)
{
    const xcp_value *cur = xcp__obj_val(o, field);

    return cur->kind == XCP_VAL_STRUCT && cur->u.st.n > 0;
}

xcp__obj *xcp__set_member_with(xcp__ctx *c, const xcp__obj *o, int set,
                               int cls, int flag)
{
    const xcp_value *refs = xcp__obj_val(o, set);
    size_t i;

    for (i = 0; refs && refs->kind == XCP_VAL_ARRAY && i < refs->u.arr.n;
         i++) {
        xcp__obj *m = xcp__db_get_cls(c->db, cls, refs->u.arr.items[i].u.s);
        if (m && xcp__obj_bool(m, flag))
            return m;
    }
    return NULL;
}

int xcp__destroy_set(xcp__ctx *c, const xcp__obj *o, int set, int cls)
{
    const xcp_value *refs = xcp__obj_val(o, set);
    int rc;

    /* Each destroy edits o's set (the db drops the ref from it), so
     * re-read it and always take the first member. */
    while (refs && refs->kind == XCP_VAL_ARRAY && refs->u.arr.n > 0) {
        xcp__obj *m = xcp__db_get_cls(c->db, cls, refs->u.arr.items[0].u.s);
        if (!m)
            break;
        if ((rc = xcp__db_destroy(c->db, m)) < 0)
            return rc;
        refs = xcp__obj_val(o, set);
    }
    return 0;
}

/* SR operations: what the SR type can do (its capability bits) and the
 * attachment allows; the same rules the calls enforce. */
static bool sr_op_ok(xcp__ctx *c, xcp__obj *sr, const char *op)
{
    static const struct {
        const char *op;
        uint64_t cap; /* 0: no capability needed */
    } vdi_ops[] = {
        {"vdi_create", XCP_SR_CAP_VDI_CREATE},
        {"vdi_destroy", XCP_SR_CAP_VDI_DELETE},
        {"vdi_resize", XCP_SR_CAP_VDI_RESIZE},
        {"vdi_resize_online", XCP_SR_CAP_VDI_RESIZE_ONLINE},
        {"vdi_clone", XCP_SR_CAP_VDI_CLONE},
        {"vdi_snapshot", XCP_SR_CAP_VDI_SNAPSHOT},
        {"vdi_copy", XCP_SR_CAP_VDI_COPY},
        {"vdi_introduce", XCP_SR_CAP_VDI_UPDATE},
        {"vdi_update", XCP_SR_CAP_VDI_UPDATE},
        {"vdi_forget", 0},
        {"vdi_generate_config", 0},
        {"vdi_enable_cbt", XCP_SR_CAP_VDI_CONFIG_CBT},
        {"vdi_disable_cbt", XCP_SR_CAP_VDI_CONFIG_CBT},
        {"vdi_list_changed_blocks", XCP_SR_CAP_VDI_CONFIG_CBT},
        {"vdi_data_destroy", XCP_SR_CAP_VDI_CONFIG_CBT},
    };
    const xcp_sr_type *t = xcp__sr_type_find(xcp__obj_str(sr, F(SR, type)));
    bool att = xcp__set_member_with(c, sr, F(SR, PBDs), C(PBD),
                                    F(PBD, currently_attached)) != NULL;
    const char *ind = xcp__obj_map_str(sr, F(SR, other_config),
                                       "indestructible");
    size_t i;

    if (!strcmp(op, "pbd_create") || !strcmp(op, "pbd_destroy"))
        return true;
    if (!strcmp(op, "plug"))
        return !att;
    if (!strcmp(op, "forget"))
        return !att;
    if (!strcmp(op, "destroy"))
        return !att && t && !(ind && !strcmp(ind, "true")) &&
               xcp__obj_val(sr, F(SR, VDIs))->u.arr.n == 0;
    if (!t || !att)
        return false;
    if (!strcmp(op, "unplug") || !strcmp(op, "update"))
        return true;
    if (!strcmp(op, "scan"))
        return (t->capabilities & XCP_SR_CAP_SR_SCAN) != 0;
    for (i = 0; i < XCP__ARRAY_LEN(vdi_ops); i++)
        if (!strcmp(op, vdi_ops[i].op))
            return !vdi_ops[i].cap || (t->capabilities & vdi_ops[i].cap);
    return false; /* mirror, on-boot, ...: not offered yet */
}

/*
 * XAPI's checks of the changed-block-tracking side of a VDI operation
 * (xapi_vdi.ml check_operation_error): the SR type's VDI_CONFIG_CBT
 * feature, what a cbt_metadata VDI and a tracked VDI refuse, and the
 * preconditions of enable/disable_cbt and data_destroy.  0 when none
 * applies; whether the VDI is attached is the caller's concern.
 */
int xcp__vdi_check_cbt(xcp__ctx *c, xcp__obj *vdi, const char *op)
{
    static const char *const cbt_ops[] = {
        "enable_cbt", "disable_cbt", "data_destroy", "list_changed_blocks"};
    static const char *const not_on_metadata[] = {
        "clone", "copy", "disable_cbt", "enable_cbt", "mirror", "resize",
        "resize_online", "snapshot", "set_on_boot"};
    const char *type = xcp__obj_str(vdi, F(VDI, type));
    bool snap = xcp__obj_bool(vdi, F(VDI, is_a_snapshot));
    xcp__obj *sr = xcp__db_get_cls(c->db, C(SR),
                                   xcp__obj_str(vdi, F(VDI, SR)));
    const xcp_sr_type *t = sr ? xcp__sr_type_find(xcp__obj_str(sr,
                                                               F(SR, type)))
                              : NULL;
    char msg[96];

    if (in_list(op, cbt_ops, XCP__ARRAY_LEN(cbt_ops)) &&
        (!t || !(t->capabilities & XCP_SR_CAP_VDI_CONFIG_CBT)))
        return XCP__ERR_SR_OPERATION_NOT_SUPPORTED(
            sr ? sr->ref : XCP_NULL_REF);
    if (!strcmp(type, "cbt_metadata") &&
        in_list(op, not_on_metadata, XCP__ARRAY_LEN(not_on_metadata)))
        return XCP__ERR_VDI_INCOMPATIBLE_TYPE(vdi->ref, type);
    if (xcp__obj_bool(vdi, F(VDI, cbt_enabled)) &&
        (!strcmp(op, "mirror") || !strcmp(op, "set_on_boot")))
        return XCP__ERR_VDI_CBT_ENABLED(vdi->ref);
    if (!strcmp(op, "data_destroy")) {
        snprintf(msg, sizeof(msg), "VDI is not a snapshot: %s", vdi->ref);
        if (!snap)
            return XCP__ERR_OPERATION_NOT_ALLOWED(msg);
        if (!xcp__obj_bool(vdi, F(VDI, cbt_enabled)))
            return XCP__ERR_VDI_NO_CBT_METADATA(vdi->ref);
    }
    if (!strcmp(op, "enable_cbt") || !strcmp(op, "disable_cbt")) {
        snprintf(msg, sizeof(msg), "VDI is a snapshot: %s", vdi->ref);
        if (snap)
            return XCP__ERR_OPERATION_NOT_ALLOWED(msg);
        if (strcmp(type, "user") != 0 && strcmp(type, "system") != 0)
            return XCP__ERR_VDI_INCOMPATIBLE_TYPE(vdi->ref, type);
        if (!strcmp(xcp__obj_str(vdi, F(VDI, on_boot)), "reset"))
            return XCP__ERR_VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION();
    }
    return 0;
}

/*
 * Whether op may act on vdi (pinned: while a running VM has it attached),
 * the rules of VDI.resize, resize_online, enable_cbt and disable_cbt: the
 * SR type resizes online, and the hypervisor driver pauses and reopens
 * the disk's back end, or has that back end do it.
 */
static bool vdi_live_ok(xcp__ctx *c, xcp__obj *vdi, const char *op,
                        bool pinned)
{
    xcp__obj *sr = xcp__db_get_cls(c->db, C(SR), xcp__obj_str(vdi, F(VDI, SR)));
    const xcp_sr_type *t = sr ? xcp__sr_type_find(xcp__obj_str(sr,
                                                               F(SR, type)))
                              : NULL;
    bool pause = xcp__hv_supports(c->e->hv, XCP_HV_OP_DISK_PAUSE) &&
                 xcp__hv_supports(c->e->hv, XCP_HV_OP_DISK_REOPEN);

    if (!strcmp(op, "resize") || !strcmp(op, "resize_online"))
        return t && (t->capabilities & XCP_SR_CAP_VDI_RESIZE_ONLINE) &&
               (!pinned || pause ||
                xcp__hv_supports(c->e->hv, XCP_HV_OP_DISK_RESIZE));
    if (!strcmp(op, "enable_cbt") || !strcmp(op, "disable_cbt")) {
        const char *fmt = xcp__obj_map_str(vdi, F(VDI, sm_config),
                                           "image-format");
        /* a back end's own bitmaps are qcow2's */
        return pause || (xcp__hv_supports(c->e->hv, XCP_HV_OP_DISK_CBT) &&
                         fmt && !strcmp(fmt, "qcow2"));
    }
    return false;
}

bool xcp__vdi_live_cow_ok(xcp__ctx *c, xcp__obj *vdi, bool format)
{
    xcp__obj *sr = xcp__db_get_cls(c->db, C(SR), xcp__obj_str(vdi, F(VDI, SR)));
    const xcp_sr_type *t = sr ? xcp__sr_type_find(xcp__obj_str(sr,
                                                               F(SR, type)))
                              : NULL;
    const char *fmt = xcp__obj_map_str(vdi, F(VDI, sm_config),
                                       "image-format");

    if (xcp__hv_supports(c->e->hv, XCP_HV_OP_DISK_PAUSE) &&
        xcp__hv_supports(c->e->hv, XCP_HV_OP_DISK_REOPEN))
        return true;
    return t && t->ops->version >= 6 && t->ops->vdi_cow_live &&
           xcp__hv_supports(c->e->hv, XCP_HV_OP_DISK_SNAPSHOT) &&
           !xcp__obj_bool(vdi, F(VDI, cbt_enabled)) &&
           (!format || (fmt && !strcmp(fmt, "qcow2")));
}

/* Whether the SR type of vdi has capability cap. */
static bool vdi_sr_can(xcp__ctx *c, xcp__obj *vdi, uint64_t cap)
{
    xcp__obj *sr = xcp__db_get_cls(c->db, C(SR), xcp__obj_str(vdi, F(VDI, SR)));
    const xcp_sr_type *t = sr ? xcp__sr_type_find(xcp__obj_str(sr,
                                                               F(SR, type)))
                              : NULL;

    return t && (t->capabilities & cap);
}

/* Whether the running vm's disks can all be snapshotted where they are
 * (VM.snapshot, and VM.checkpoint, whose domain is gone by then: format
 * not checked), each VDI's SR able to, by the rules of VDI.snapshot. */
static bool vm_disks_snapshot_ok(xcp__ctx *c, xcp__obj *vm, bool checkpoint)
{
    const xcp_value *vbds = xcp__obj_val(vm, F(VM, VBDs));
    size_t i;

    for (i = 0; vbds->kind == XCP_VAL_ARRAY && i < vbds->u.arr.n; i++) {
        xcp__obj *vbd = xcp__db_get_cls(c->db, C(VBD),
                                        vbds->u.arr.items[i].u.s);
        xcp__obj *vdi = vbd && !xcp__obj_bool(vbd, F(VBD, empty)) &&
                                strcmp(xcp__obj_str(vbd, F(VBD, type)), "CD")
                            ? xcp__db_get_cls(c->db, C(VDI),
                                              xcp__obj_str(vbd, F(VBD, VDI)))
                            : NULL;
        if (!vdi)
            continue;
        if (!vdi_sr_can(c, vdi, XCP_SR_CAP_VDI_SNAPSHOT) ||
            (xcp__obj_bool(vbd, F(VBD, currently_attached)) &&
             !xcp__vdi_live_cow_ok(c, vdi, !checkpoint)))
            return false;
    }
    return true;
}

/* Collect the valid operations of o into an array value. */
static int compute_allowed(xcp__ctx *c, xcp__obj *o, xcp_value *out)
{
    const struct xcp__field *f;
    const struct xcp__enum *en;
    int af = xcp_class_field_index(o->cls, "allowed_operations");
    size_t i, k = 0;
    bool ok[64];

    f = &xcp__classes[o->cls].fields[af];
    en = &xcp__enums[f->type->a->id];
    for (i = 0; i < en->n && i < 64; i++) {
        const char *op = en->values[i];
        ok[i] = false;
        if (o->cls == C(VM)) {
            ok[i] = !in_list(op, vm_hidden, XCP__ARRAY_LEN(vm_hidden)) &&
                    vm_check(o, op, NULL) == 0;
            /* a snapshot of a running VM's disks the driver cannot take
             * (VDI_IN_USE, OPERATION_NOT_ALLOWED) is not offered */
            if (ok[i] && (!strcmp(op, "snapshot") ||
                          !strcmp(op, "checkpoint")) &&
                !xcp__obj_bool(o, F(VM, is_a_template)))
                ok[i] = vm_disks_snapshot_ok(c, o, !strcmp(op,
                                                           "checkpoint"));
        } else if (o->cls == C(VBD)) {
            bool att = xcp__obj_bool(o, F(VBD, currently_attached));
            bool cd = !strcmp(xcp__obj_str(o, F(VBD, type)), "CD");
            bool empty = xcp__obj_bool(o, F(VBD, empty));
            bool run = vm_running(c, xcp__obj_str(o, F(VBD, VM)));
            bool busy = has_current(o, F(VBD, current_operations));
            if (busy)
                ok[i] = false;
            else if (!strcmp(op, "attach"))
                ok[i] = !att;
            else if (!strcmp(op, "plug"))
                ok[i] = run && !att;
            else if (!strcmp(op, "unplug") || !strcmp(op, "unplug_force"))
                ok[i] = att && xcp__obj_bool(o, F(VBD, unpluggable));
            else if (!strcmp(op, "insert"))
                ok[i] = cd && empty;
            else if (!strcmp(op, "eject"))
                ok[i] = cd && !empty;
            else if (!strcmp(op, "pause"))
                ok[i] = att;
        } else if (o->cls == C(VDI)) {
            /* Attached VBDs pin the disk; detached ones do not. */
            bool pinned = xcp__set_member_with(c, o, F(VDI, VBDs), C(VBD),
                                               F(VBD, currently_attached));
            bool busy = has_current(o, F(VDI, current_operations));
            static const char *const always[] = {
                "copy", "update", "generate_config"};
            /* enable/disable_cbt are live in XAPI; see VDI.enable_cbt. */
            static const char *const detached[] = {
                "resize", "destroy", "forget", "set_on_boot",
                "data_destroy", "force_unlock", "list_changed_blocks",
                "enable_cbt", "disable_cbt"};
            bool snap = !strcmp(op, "snapshot");
            if (busy || xcp__vdi_check_cbt(c, o, op) < 0)
                ok[i] = false;
            else if (snap || !strcmp(op, "clone"))
                /* the SR's type can, and a running VM's disk the driver
                 * can take at one instant */
                ok[i] = vdi_sr_can(c, o, snap ? XCP_SR_CAP_VDI_SNAPSHOT
                                              : XCP_SR_CAP_VDI_CLONE) &&
                        (!pinned || xcp__vdi_live_cow_ok(c, o, true));
            else if (in_list(op, always, XCP__ARRAY_LEN(always)))
                ok[i] = true;
            else if (pinned && vdi_live_ok(c, o, op, true))
                ok[i] = true;
            else if (!strcmp(op, "resize_online"))
                ok[i] = !pinned && vdi_live_ok(c, o, op, false);
            else if (in_list(op, detached, XCP__ARRAY_LEN(detached)))
                ok[i] = !pinned || !strcmp(op, "forget");
        } else if (o->cls == C(VIF)) {
            bool att = xcp__obj_bool(o, F(VIF, currently_attached));
            bool run = vm_running(c, xcp__obj_str(o, F(VIF, VM)));
            if (!strcmp(op, "attach"))
                ok[i] = !att;
            else if (!strcmp(op, "plug"))
                ok[i] = run && !att;
            else if (!strcmp(op, "unplug"))
                ok[i] = att;
        } else if (o->cls == C(SR)) {
            ok[i] = !has_current(o, F(SR, current_operations)) &&
                    sr_op_ok(c, o, op);
        } else if (o->cls == C(host)) {
            bool en2 = xcp__obj_bool(o, F(host, enabled));
            if (!strcmp(op, "evacuate") || !strcmp(op, "provision") ||
                !strcmp(op, "vm_start") || !strcmp(op, "vm_resume") ||
                !strcmp(op, "vm_migrate"))
                ok[i] = en2;
            else if (!strcmp(op, "reboot") || !strcmp(op, "shutdown"))
                ok[i] = !en2;
            else if (!strcmp(op, "enable"))
                ok[i] = !en2;
        } else if (o->cls == C(task)) {
            ok[i] = true;
        }
        if (ok[i])
            k++;
    }
    if (xcp_value_set_array(out, k) < 0)
        return XCP_ENOMEM;
    for (i = 0, k = 0; i < en->n && i < 64; i++)
        if (ok[i] && xcp_value_set_string(&out->u.arr.items[k++],
                                          en->values[i]) < 0) {
            xcp_value_dispose(out);
            return XCP_ENOMEM;
        }
    xcp_error_clear();
    return 0;
}

/* The allowed operations of the VMs whose VBDs hold vdi. */
static int update_vms_of(xcp__ctx *c, xcp__obj *vdi)
{
    const xcp_value *vbds = xcp__obj_val(vdi, F(VDI, VBDs));
    size_t i;
    int rc = 0;

    for (i = 0; rc == 0 && vbds->kind == XCP_VAL_ARRAY && i < vbds->u.arr.n;
         i++) {
        xcp__obj *vbd = xcp__db_get_cls(c->db, C(VBD),
                                        vbds->u.arr.items[i].u.s);
        xcp__obj *vm = vbd ? xcp__db_get_cls(c->db, C(VM),
                                             xcp__obj_str(vbd, F(VBD, VM)))
                           : NULL;
        if (vm)
            rc = xcp__update_allowed(c, vm);
    }
    return rc;
}

int xcp__update_allowed(xcp__ctx *c, xcp__obj *o)
{
    int af;
    xcp_value v;
    int rc;

    if (!o || o->deleted || o->cls == C(task))
        return 0;
    af = xcp_class_field_index(o->cls, "allowed_operations");
    if (af < 0)
        return 0;
    if ((rc = compute_allowed(c, o, &v)) < 0)
        return rc;
    rc = xcp__db_set(c->db, o, af, &v);
    xcp_value_dispose(&v);
    /* a VM's snapshot depends on its disks' state (vm_disks_snapshot_ok) */
    if (rc == 0 && o->cls == C(VDI))
        rc = update_vms_of(c, o);
    return rc;
}

const char *xcp__ctx_opref(xcp__ctx *c)
{
    xcp__obj *t;

    if (!c->task[0]) {
        if (xcp__task_new(c, c->msg ? c->msg->wire : "internal", "", &t) < 0)
            return NULL;
        snprintf(c->task, sizeof(c->task), "%s", t->ref);
        c->own_task = true;
    }
    return c->task;
}

int xcp__op_start(xcp__ctx *c, xcp__obj *o, const char *op)
{
    int cf = xcp_class_field_index(o->cls, "current_operations");
    const char *task;
    int rc;

    if (o->cls == C(VM) && (rc = vm_check(o, op, NULL)) < 0)
        return rc;
    if (cf < 0)
        return 0;
    if (o->cls != C(VM) && has_current(o, cf)) {
        const xcp_value *cur = xcp__obj_val(o, cf);
        return XCP__ERR_OTHER_OPERATION_IN_PROGRESS(
            xcp__classes[o->cls].name, o->ref,
            cur->u.st.vals[0].u.s, cur->u.st.keys[0]);
    }
    if (!(task = xcp__ctx_opref(c)))
        return XCP_ENOMEM;
    if ((rc = xcp__db_map_put_str(c->db, o, cf, task, op)) < 0)
        return rc;
    return xcp__update_allowed(c, o);
}

int xcp__op_end(xcp__ctx *c, xcp__obj *o)
{
    int cf = xcp_class_field_index(o->cls, "current_operations");
    int rc;

    if (cf < 0 || o->deleted || !c->task[0])
        return 0;
    if ((rc = xcp__db_map_del(c->db, o, cf, c->task)) < 0)
        return rc;
    return xcp__update_allowed(c, o);
}
