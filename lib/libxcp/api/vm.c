/*
 * VM.*: the lifecycle with XAPI's semantics and errors (start, shutdown,
 * reboot, suspend/resume, pause), clone/copy/snapshot/checkpoint/revert,
 * provision, memory and vCPU changes, and reconciliation of the database
 * with the hypervisor's domains (after a restart, or when a guest halts,
 * reboots or crashes on its own).
 *
 * Long hypervisor work runs without the engine lock: the operation is
 * first recorded in current_operations and committed (so clients see it
 * and conflicting calls are refused), the lock is dropped for the driver
 * call, then the result is committed and the operation removed. The only
 * operations admitted beside another, hard_shutdown and hard_reboot,
 * first cancel it and wait for it to end (xcp__vm_preempt), so one call
 * at a time works on a VM's domain.
 */
#include "storage.h"

#include <errno.h>
#include <inttypes.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>


#define MAX_DISKS 32
#define MAX_NICS 16
#define MAX_PLATFORM 64

static const char *power(const xcp__obj *vm)
{
    return xcp__obj_str(vm, F(VM, power_state));
}

static bool is(const xcp__obj *vm, const char *state)
{
    return !strcmp(power(vm), state);
}

/* On failure after the operation was committed: end it, commit, keep the
 * error. The dispatcher's abort then has nothing left to undo. */
static int fail_op(xcp__ctx *c, const char *vmref, int rc)
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

static int hv_fail(xcp__ctx *c, const char *vmref, const xcp_hv_error *e)
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

/* ---- boot files: PV_kernel, PV_ramdisk, PV_bootloader -------------------- */

/* As XAPI: dom0 files a guest may boot come from the guest-kernel
 * directories only, and bootloaders from a fixed set. Both lists are
 * colon-separated and configurable. */
#define KERNEL_DIRS_DEFAULT "/var/lib/xcp/guest:/boot/guest"
#define BOOTLOADERS_DEFAULT "pygrub:eliloader"

static const char *kernel_dirs(void)
{
    return xcp__env_str("XCP_PV_KERNEL_DIRS", KERNEL_DIRS_DEFAULT);
}

/* The same refusal whatever the reason (missing, not a regular file,
 * outside the directories, through .. or a symlink), so the answer tells
 * nothing about the host's files. */
static int bad_boot_file(const char *field, const char *path)
{
    char *why = xcp__printf("not a regular file in the guest kernel "
                            "directories (%s)",
                            kernel_dirs());
    int rc;

    if (!why)
        return xcp__oom();
    rc = XCP__ERR_INVALID_VALUE_WHY(field, path, why);
    free(why);
    return rc;
}

/* Lexical check, touching no file (for the setters): absolute, no "." or
 * ".." component, below a configured directory. "" clears the field. */
static int check_boot_path(const char *field, const char *path)
{
    if (*path && !xcp__path_lexically_below_any(path, kernel_dirs()))
        return bad_boot_file(field, path);
    return 0;
}

/* At start: the lexical check, then the file itself (symlinks resolved)
 * must be a regular file still below a configured directory. *real gets
 * the resolved path, which is what the hypervisor is given. */
static int resolve_boot_file(const char *field, const char *path,
                             char real[PATH_MAX])
{
    struct stat st;
    int rc;

    if ((rc = check_boot_path(field, path)) < 0)
        return rc;
    if (!realpath(path, real) || stat(real, &st) < 0 ||
        !S_ISREG(st.st_mode) || !xcp__path_below_any(real, kernel_dirs()))
        return bad_boot_file(field, path);
    return 0;
}

/* PV_bootloader: "" (direct boot) or one of the configured names. */
static int check_bootloader(const char *name)
{
    if (!*name || xcp__list_has(xcp__env_str("XCP_PV_BOOTLOADERS",
                                             BOOTLOADERS_DEFAULT),
                                name))
        return 0;
    return XCP__ERR_INVALID_VALUE_WHY("PV_bootloader", name,
                                      "not a supported bootloader");
}

/* The boot fields of a VM record (VM.create). */
static int check_boot_fields(const xcp_value *f)
{
    int rc;

    if ((rc = check_boot_path("PV_kernel", f[F(VM, PV_kernel)].u.s)) < 0 ||
        (rc = check_boot_path("PV_ramdisk", f[F(VM, PV_ramdisk)].u.s)) < 0)
        return rc;
    return check_bootloader(f[F(VM, PV_bootloader)].u.s);
}

/* ---- domain configuration from the records ------------------------------ */

struct domcfg {
    xcp_hv_domain_config cfg;
    xcp_hv_disk disks[MAX_DISKS];
    xcp_sr_vdi_path paths[MAX_DISKS];
    char vdevs[MAX_DISKS][16];
    xcp_hv_nic nics[MAX_NICS];
    xcp_hv_kv plat[MAX_PLATFORM];
    char *strs[16 + 2 * MAX_PLATFORM + MAX_NICS];
    size_t nstrs;
    /* VBD refs in disk order, to mark them attached. */
    char vbds[MAX_DISKS][XCP_REF_MAX];
};

static const char *keep(struct domcfg *d, const char *s)
{
    char *c;

    if (d->nstrs >= XCP__ARRAY_LEN(d->strs) || !(c = xcp__strdup(s)))
        return NULL;
    d->strs[d->nstrs++] = c;
    return c;
}

static void domcfg_free(struct domcfg *d)
{
    size_t i;

    for (i = 0; i < d->nstrs; i++)
        free(d->strs[i]);
    d->nstrs = 0;
}

bool xcp__vm_is_hvm(const xcp__obj *vm)
{
    const char *dt = xcp__obj_str(vm, F(VM, domain_type));

    if (!strcmp(dt, "hvm"))
        return true;
    if (!strcmp(dt, "unspecified"))
        return xcp__obj_str(vm, F(VM, HVM_boot_policy))[0] != '\0';
    return false;
}

static bool hvm(const xcp__obj *vm)
{
    return xcp__vm_is_hvm(vm);
}

static const char *domain_type_name(const xcp__obj *vm)
{
    const char *dt = xcp__obj_str(vm, F(VM, domain_type));

    if (!strcmp(dt, "unspecified"))
        return hvm(vm) ? "hvm" : "pv";
    return dt;
}

void xcp__vbd_device_name(bool is_hvm, int slot, char out[16])
{
    if (is_hvm && slot < 4)
        snprintf(out, 16, "hd%c", 'a' + slot);
    else if (slot < 26)
        snprintf(out, 16, "xvd%c", 'a' + slot);
    else
        snprintf(out, 16, "xvd%c%c", 'a' + slot / 26 - 1, 'a' + slot % 26);
}

static int build_cfg(xcp__ctx *c, xcp__obj *vm, struct domcfg *d)
{
    const xcp_value *vbds = xcp__obj_val(vm, F(VM, VBDs));
    const xcp_value *vifs = xcp__obj_val(vm, F(VM, VIFs));
    const xcp_value *plat = xcp__obj_val(vm, F(VM, platform));
    bool is_hvm = hvm(vm);
    size_t i;
    int rc;

    memset(d, 0, sizeof(*d));
    d->cfg.version = XCP_HV_CONFIG_VERSION;
    d->cfg.vm_uuid = keep(d, xcp__obj_uuid(vm));
    d->cfg.name = keep(d, xcp__obj_uuid(vm));
    d->cfg.type = is_hvm ? XCP_HV_DOMAIN_HVM
                  : !strcmp(domain_type_name(vm), "pvh") ? XCP_HV_DOMAIN_PVH
                                                         : XCP_HV_DOMAIN_PV;
    d->cfg.memory_static_max = (uint64_t)xcp__obj_int(vm,
                                                      F(VM, memory_static_max));
    d->cfg.memory_target = (uint64_t)xcp__obj_int(vm,
                                                  F(VM, memory_dynamic_max));
    d->cfg.vcpus_max = (uint32_t)xcp__obj_int(vm, F(VM, VCPUs_max));
    d->cfg.vcpus_online = (uint32_t)xcp__obj_int(vm, F(VM, VCPUs_at_startup));
    if (!is_hvm) {
        const char *k = xcp__obj_str(vm, F(VM, PV_kernel));
        const char *r = xcp__obj_str(vm, F(VM, PV_ramdisk));
        const char *bl = xcp__obj_str(vm, F(VM, PV_bootloader));
        char real[PATH_MAX];
        if ((rc = check_bootloader(bl)) < 0)
            return rc;
        if (*k) {
            if ((rc = resolve_boot_file("PV_kernel", k, real)) < 0)
                return rc;
            d->cfg.kernel = keep(d, real);
        }
        if (*r) {
            if ((rc = resolve_boot_file("PV_ramdisk", r, real)) < 0)
                return rc;
            d->cfg.ramdisk = keep(d, real);
        }
        d->cfg.cmdline = keep(d, xcp__obj_str(vm, F(VM, PV_args)));
        d->cfg.bootloader = *bl ? keep(d, bl) : NULL;
    }
    for (i = 0; plat->kind == XCP_VAL_STRUCT && i < plat->u.st.n &&
                i < MAX_PLATFORM; i++) {
        d->plat[i].key = keep(d, plat->u.st.keys[i]);
        d->plat[i].value = plat->u.st.vals[i].kind == XCP_VAL_STRING
                               ? keep(d, plat->u.st.vals[i].u.s) : "";
        d->cfg.n_platform = i + 1;
    }
    d->cfg.platform = d->plat;
    for (i = 0; vbds->kind == XCP_VAL_ARRAY && i < vbds->u.arr.n; i++) {
        xcp__obj *vbd = xcp__db_get_cls(c->db, C(VBD),
                                        vbds->u.arr.items[i].u.s);
        xcp__obj *vdi;
        xcp_hv_disk *dk;
        const char *ud;
        int slot;
        if (!vbd || d->cfg.n_disks >= MAX_DISKS)
            continue;
        dk = &d->disks[d->cfg.n_disks];
        ud = xcp__obj_str(vbd, F(VBD, userdevice));
        slot = atoi(ud);
        xcp__vbd_device_name(is_hvm, slot, d->vdevs[d->cfg.n_disks]);
        dk->vdev = d->vdevs[d->cfg.n_disks];
        dk->cdrom = !strcmp(xcp__obj_str(vbd, F(VBD, type)), "CD");
        dk->readonly = dk->cdrom ||
                       !strcmp(xcp__obj_str(vbd, F(VBD, mode)), "RO");
        vdi = xcp__db_get_cls(c->db, C(VDI), xcp__obj_str(vbd, F(VBD, VDI)));
        if (vdi && !xcp__obj_bool(vbd, F(VBD, empty))) {
            if ((rc = xcp__vdi_path(c, vdi, &d->paths[d->cfg.n_disks])) < 0) {
                const xcp_error *e = xcp_error_last();
                if (e && (!strcmp(e->name, "SR_NOT_ATTACHED") ||
                          !strcmp(e->name, "SR_HAS_NO_PBDS")))
                    return XCP__ERR_VM_REQUIRES_SR(
                        vm->ref, xcp__obj_str(vdi, F(VDI, SR)));
                return rc;
            }
            dk->path = d->paths[d->cfg.n_disks].path;
            dk->format = d->paths[d->cfg.n_disks].format;
        }
        snprintf(d->vbds[d->cfg.n_disks], XCP_REF_MAX, "%s", vbd->ref);
        d->cfg.n_disks++;
    }
    d->cfg.disks = d->disks;
    for (i = 0; vifs->kind == XCP_VAL_ARRAY && i < vifs->u.arr.n; i++) {
        xcp__obj *vif = xcp__db_get_cls(c->db, C(VIF),
                                        vifs->u.arr.items[i].u.s);
        xcp__obj *net;
        xcp_hv_nic *n;
        if (!vif || d->cfg.n_nics >= MAX_NICS)
            continue;
        n = &d->nics[d->cfg.n_nics];
        net = xcp__db_get_cls(c->db, C(network),
                              xcp__obj_str(vif, F(VIF, network)));
        if (!net)
            return XCP__ERR_VM_REQUIRES_NETWORK(
                vm->ref, xcp__obj_str(vif, F(VIF, network)));
        xcp__mac_parse(xcp__obj_str(vif, F(VIF, MAC)), n->mac);
        n->bridge = keep(d, xcp__obj_str(net, F(network, bridge)));
        n->devid = (uint32_t)atoi(xcp__obj_str(vif, F(VIF, device)));
        n->mtu = (uint32_t)xcp__obj_int(vif, F(VIF, MTU));
        d->cfg.n_nics++;
    }
    d->cfg.nics = d->nics;
    return 0;
}

/* ---- state transitions in the database ------------------------------------ */

static int set_vm_metrics(xcp__ctx *c, xcp__obj *vm, bool start)
{
    xcp__obj *m = xcp__db_get_cls(c->db, C(VM_metrics),
                                  xcp__obj_str(vm, F(VM, metrics)));
    int rc;

    if (!m)
        return 0;
    if (start && (rc = xcp__db_set_time(c->db, m, F(VM_metrics, start_time),
                                        xcp__now())) < 0)
        return rc;
    if ((rc = xcp__db_set_int(c->db, m, F(VM_metrics, VCPUs_number),
                              xcp__obj_int(vm, F(VM, VCPUs_at_startup)))) < 0 ||
        (rc = xcp__db_set_int(c->db, m, F(VM_metrics, memory_actual),
                              xcp__obj_int(vm, F(VM, memory_dynamic_max)))) < 0 ||
        (rc = xcp__db_set_str(c->db, m, F(VM_metrics, current_domain_type),
                              domain_type_name(vm))) < 0 ||
        (rc = xcp__db_set_bool(c->db, m, F(VM_metrics, hvm), hvm(vm))) < 0 ||
        (rc = xcp__db_set_time(c->db, m, F(VM_metrics, last_updated),
                               xcp__now())) < 0)
        return rc;
    return 0;
}

static int add_console(xcp__ctx *c, xcp__obj *vm, const char *proto)
{
    xcp__obj *con, *host = xcp__db_get_cls(c->db, C(host), c->e->host);
    char *loc;
    int rc;

    if ((rc = xcp__db_create(c->db, C(console), NULL, NULL, &con)) < 0)
        return rc;
    loc = xcp__printf("https://%s/console?uuid=%s",
                      host ? xcp__obj_str(host, F(host, address)) : "",
                      xcp__obj_uuid(con));
    if (!loc)
        return xcp__oom();
    rc = xcp__db_set_str(c->db, con, F(console, protocol), proto);
    if (rc == 0)
        rc = xcp__db_set_str(c->db, con, F(console, location), loc);
    if (rc == 0)
        rc = xcp__db_set_str(c->db, con, F(console, VM), vm->ref);
    free(loc);
    return rc;
}

static int drop_consoles(xcp__ctx *c, xcp__obj *vm)
{
    const xcp_value *cs = xcp__obj_val(vm, F(VM, consoles));
    int rc;

    while (cs->kind == XCP_VAL_ARRAY && cs->u.arr.n > 0) {
        xcp__obj *con = xcp__db_get_cls(c->db, C(console),
                                        cs->u.arr.items[0].u.s);
        if (!con)
            break;
        if ((rc = xcp__db_destroy(c->db, con)) < 0)
            return rc;
        cs = xcp__obj_val(vm, F(VM, consoles));
    }
    return 0;
}

static int set_devices(xcp__ctx *c, xcp__obj *vm, bool attached)
{
    const xcp_value *vbds = xcp__obj_val(vm, F(VM, VBDs));
    const xcp_value *vifs = xcp__obj_val(vm, F(VM, VIFs));
    bool is_hvm = hvm(vm);
    size_t i;
    int rc;

    for (i = 0; vbds->kind == XCP_VAL_ARRAY && i < vbds->u.arr.n; i++) {
        xcp__obj *vbd = xcp__db_get_cls(c->db, C(VBD),
                                        vbds->u.arr.items[i].u.s);
        char dev[16];
        if (!vbd)
            continue;
        if (attached) {
            xcp__vbd_device_name(is_hvm, atoi(xcp__obj_str(vbd, F(VBD, userdevice))),
                        dev);
            if ((rc = xcp__db_set_str(c->db, vbd, F(VBD, device), dev)) < 0)
                return rc;
        }
        if ((rc = xcp__db_set_bool(c->db, vbd, F(VBD, currently_attached),
                                   attached)) < 0 ||
            (rc = xcp__update_allowed(c, vbd)) < 0)
            return rc;
        {
            xcp__obj *vdi = xcp__db_get_cls(c->db, C(VDI),
                                            xcp__obj_str(vbd, F(VBD, VDI)));
            if (vdi && (rc = xcp__update_allowed(c, vdi)) < 0)
                return rc;
        }
    }
    for (i = 0; vifs->kind == XCP_VAL_ARRAY && i < vifs->u.arr.n; i++) {
        xcp__obj *vif = xcp__db_get_cls(c->db, C(VIF),
                                        vifs->u.arr.items[i].u.s);
        if (!vif)
            continue;
        if ((rc = xcp__db_set_bool(c->db, vif, F(VIF, currently_attached),
                                   attached)) < 0 ||
            (rc = xcp__update_allowed(c, vif)) < 0)
            return rc;
    }
    return 0;
}

static int set_running(xcp__ctx *c, xcp__obj *vm, uint32_t domid,
                       bool paused, bool fresh)
{
    int rc;

    if ((rc = xcp__db_set_str(c->db, vm, F(VM, power_state),
                              paused ? "Paused" : "Running")) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, domid), domid)) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, resident_on),
                              c->e->host)) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, scheduled_to_be_resident_on),
                              XCP_NULL_REF)) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, suspend_VDI),
                              XCP_NULL_REF)) < 0 ||
        (rc = set_devices(c, vm, true)) < 0 ||
        (rc = set_vm_metrics(c, vm, fresh)) < 0)
        return rc;
    if (!xcp__obj_val(vm, F(VM, consoles))->u.arr.n) {
        if ((rc = add_console(c, vm, "vt100")) < 0 ||
            (hvm(vm) && (rc = add_console(c, vm, "rfb")) < 0))
            return rc;
    }
    return xcp__update_allowed(c, vm);
}

/* Domain gone: Halted (or Suspended with its image VDI). */
static int set_stopped(xcp__ctx *c, xcp__obj *vm, const char *state,
                       const char *suspend_vdi)
{
    xcp__obj *m;
    int rc;

    if ((rc = xcp__db_set_str(c->db, vm, F(VM, power_state), state)) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, domid), -1)) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, resident_on),
                              XCP_NULL_REF)) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, suspend_VDI),
                              suspend_vdi ? suspend_vdi : XCP_NULL_REF)) < 0 ||
        (rc = set_devices(c, vm, false)) < 0 ||
        (rc = drop_consoles(c, vm)) < 0)
        return rc;
    m = xcp__db_get_cls(c->db, C(VM_metrics), xcp__obj_str(vm, F(VM, metrics)));
    if (m && ((rc = xcp__db_set_int(c->db, m, F(VM_metrics, memory_actual),
                                    0)) < 0 ||
              (rc = xcp__db_set_int(c->db, m, F(VM_metrics, VCPUs_number),
                                    0)) < 0))
        return rc;
    return xcp__update_allowed(c, vm);
}

static int drop_suspend_vdi(xcp__ctx *c, xcp__obj *vm)
{
    xcp__obj *vdi = xcp__db_get_cls(c->db, C(VDI),
                                    xcp__obj_str(vm, F(VM, suspend_VDI)));
    int rc;

    if (!vdi)
        return 0;
    if ((rc = xcp__db_set_str(c->db, vm, F(VM, suspend_VDI),
                              XCP_NULL_REF)) < 0)
        return rc;
    return xcp__vdi_delete(c, vdi);
}

/* ---- checks before building a domain --------------------------------------- */

static int check_memory_constraints(int64_t smin, int64_t dmin, int64_t dmax,
                                    int64_t smax)
{
    if (smin <= dmin && dmin <= dmax && dmax <= smax && smin >= 0)
        return 0;
    return XCP__ERR_MEMORY_CONSTRAINT_VIOLATION(
        "Memory limits must satisfy: static_min <= dynamic_min "
        "<= dynamic_max <= static_max");
}

static int check_vm_memory(xcp__obj *vm)
{
    return check_memory_constraints(
        xcp__obj_int(vm, F(VM, memory_static_min)),
        xcp__obj_int(vm, F(VM, memory_dynamic_min)),
        xcp__obj_int(vm, F(VM, memory_dynamic_max)),
        xcp__obj_int(vm, F(VM, memory_static_max)));
}

/* May this host build cfg now? HOST_NOT_ENOUGH_FREE_MEMORY with figures. */
static int check_host_fits(xcp__ctx *c, xcp__obj *vm, struct domcfg *d)
{
    xcp__obj *host = xcp__db_get_cls(c->db, C(host), c->e->host);
    xcp_hv_host_info hi;
    xcp_hv_error e;
    uint64_t overhead = 0, need;
    char a[32], b[32];

    if (host && !xcp__obj_bool(host, F(host, enabled)))
        return XCP__ERR_HOST_DISABLED(host->ref);
    if (xcp__obj_int(vm, F(VM, VCPUs_at_startup)) < 1)
        return XCP__ERR_VM_NO_VCPUS(vm->ref);
    if (xcp__obj_int(vm, F(VM, VCPUs_at_startup)) >
        xcp__obj_int(vm, F(VM, VCPUs_max)))
        return XCP__ERR_VM_TOO_MANY_VCPUS(vm->ref);
    if (check_vm_memory(vm) < 0)
        return XCP_EAPI;
    if (xcp__hv_host_info(c->e->hv, &hi, &e) < 0)
        return hv_fail(c, vm->ref, &e);
    if (xcp__hv_memory_overhead(c->e->hv, &d->cfg, &overhead, &e) < 0)
        overhead = 0;
    need = d->cfg.memory_target + overhead;
    if (need > hi.memory_free) {
        snprintf(a, sizeof(a), "%" PRIu64, need);
        snprintf(b, sizeof(b), "%" PRIu64, hi.memory_free);
        return XCP__ERR_HOST_NOT_ENOUGH_FREE_MEMORY(a, b);
    }
    return 0;
}

static int refresh_host_memory(xcp__ctx *c)
{
    xcp__obj *host = xcp__db_get_cls(c->db, C(host), c->e->host);
    xcp__obj *m;
    xcp_hv_host_info hi;
    xcp_hv_error e;
    int rc;

    if (!host || xcp__hv_host_info(c->e->hv, &hi, &e) < 0)
        return 0;
    m = xcp__db_get_cls(c->db, C(host_metrics),
                        xcp__obj_str(host, F(host, metrics)));
    /* Only a change is written: a read-only call (xe vm-list) must not
     * append to the journal. */
    if (!m || xcp__obj_int(m, F(host_metrics, memory_free)) ==
                  (int64_t)hi.memory_free)
        return 0;
    if ((rc = xcp__db_set_int(c->db, m, F(host_metrics, memory_free),
                              (int64_t)hi.memory_free)) < 0 ||
        (rc = xcp__db_set_time(c->db, m, F(host_metrics, last_updated),
                               xcp__now())) < 0)
        return rc;
    return 0;
}

/* ---- domain building (lock dropped) ------------------------------------------ */

/* Build the domain of vm (already checked, op committed). On return the
 * lock is held again and *vm re-resolved (NULL if it vanished). */
static int build_domain(xcp__ctx *c, xcp__obj **vm, bool paused,
                        const char *image, uint32_t *domid)
{
    struct domcfg d;
    xcp_hv_error e;
    char ref[XCP_REF_MAX];
    int rc;

    snprintf(ref, sizeof(ref), "%s", (*vm)->ref);
    if ((rc = build_cfg(c, *vm, &d)) < 0 ||
        (!image && (rc = check_host_fits(c, *vm, &d)) < 0)) {
        domcfg_free(&d);
        return rc;
    }
    if ((rc = xcp__ctx_unlock(c)) < 0) {
        xcp__ctx_lock(c);
        domcfg_free(&d);
        return rc;
    }
    if (image)
        rc = xcp__hv_domain_restore(c->e->hv, &d.cfg, image, paused, domid,
                                    &e);
    else
        rc = xcp__hv_domain_create(c->e->hv, &d.cfg, paused, domid, &e);
    xcp__ctx_lock(c);
    domcfg_free(&d);
    *vm = xcp__db_get_cls(c->db, C(VM), ref);
    if (rc < 0) {
        if (e.code == -ENOMEM) {
            xcp_hv_host_info hi;
            xcp_hv_error e2;
            char a[32], b[32];
            snprintf(a, sizeof(a), "%" PRIu64, d.cfg.memory_target);
            snprintf(b, sizeof(b), "%" PRIu64,
                     xcp__hv_host_info(c->e->hv, &hi, &e2) == 0
                         ? hi.memory_free : 0);
            return XCP__ERR_HOST_NOT_ENOUGH_FREE_MEMORY(a, b);
        }
        return hv_fail(c, ref, &e);
    }
    if (!*vm) {
        xcp__hv_domain_destroy(c->e->hv, *domid, &e);
        return xcp__handle_invalid(C(VM), ref);
    }
    return 0;
}

/* Destroy the domain of vm with the lock dropped. */
static int destroy_domain(xcp__ctx *c, xcp__obj **vm)
{
    xcp_hv_error e;
    char ref[XCP_REF_MAX];
    int64_t domid = xcp__obj_int(*vm, F(VM, domid));
    int rc;

    snprintf(ref, sizeof(ref), "%s", (*vm)->ref);
    if (domid < 0)
        return 0;
    if ((rc = xcp__ctx_unlock(c)) < 0) {
        xcp__ctx_lock(c);
        return rc;
    }
    rc = xcp__hv_domain_destroy(c->e->hv, (uint32_t)domid, &e);
    xcp__ctx_lock(c);
    *vm = xcp__db_get_cls(c->db, C(VM), ref);
    if (rc < 0 && e.code != -ESRCH)
        return hv_fail(c, ref, &e);
    return *vm ? 0 : xcp__handle_invalid(C(VM), ref);
}

/* Ask the guest to stop (poweroff or reboot) and wait until its domain
 * reports SHUTDOWN. The wait parks on the engine's condition, which the
 * domain monitor signals at every hypervisor event: no polling, and the
 * driver is free for other calls meanwhile. */
static int guest_shutdown(xcp__ctx *c, xcp__obj **vm,
                          xcp_hv_shutdown_reason why)
{
    xcp_hv_error e;
    xcp_hv_domain_info info;
    char ref[XCP_REF_MAX];
    uint32_t domid = (uint32_t)xcp__obj_int(*vm, F(VM, domid));
    int64_t timeout, deadline;
    int rc;

    /* "abc" used to read as 0 ms: every clean shutdown timed out. */
    if ((rc = xcp__env_int("XCP_CLEAN_SHUTDOWN_TIMEOUT_MS", 1200000,
                           &timeout)) < 0)
        return rc;
    deadline = xcp__now_ms() + timeout;
    snprintf(ref, sizeof(ref), "%s", (*vm)->ref);
    if (xcp__hv_domain_shutdown(c->e->hv, domid, why, &e) < 0)
        return hv_fail(c, ref, &e);
    for (;;) {
        if (xcp__hv_domain_info(c->e->hv, domid, &info, &e) < 0) {
            if (e.code != -ESRCH)
                return hv_fail(c, ref, &e);
            break; /* already gone */
        }
        if (info.state == XCP_HV_STATE_SHUTDOWN)
            break;
        if (xcp__task_cancelling(c)) {
            *vm = xcp__db_get_cls(c->db, C(VM), ref);
            return XCP__ERR_TASK_CANCELLED(c->task);
        }
        if (!xcp__ctx_wait(c, deadline)) {
            char t[32];
            snprintf(t, sizeof(t), "%.0f", timeout / 1000.0);
            *vm = xcp__db_get_cls(c->db, C(VM), ref);
            return XCP__ERR_VM_SHUTDOWN_TIMEOUT(ref, t);
        }
    }
    *vm = xcp__db_get_cls(c->db, C(VM), ref);
    return *vm ? 0 : xcp__handle_invalid(C(VM), ref);
}

/* ---- lifecycle calls ---------------------------------------------------------- */

static int begin(xcp__ctx *c, xcp__obj *vm, const char *op)
{
    int rc = xcp__op_start(c, vm, op);

    if (rc < 0)
        return rc;
    return xcp__ctx_commit(c);
}

static int end(xcp__ctx *c, xcp__obj *vm)
{
    int rc = xcp__op_end(c, vm);

    if (rc == 0)
        rc = refresh_host_memory(c);
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
    if ((rc = build_domain(c, &vm, paused, NULL, &domid)) < 0)
        return fail_op(c, ref, rc);
    if ((rc = set_running(c, vm, domid, paused, true)) < 0)
        return fail_op(c, ref, rc);
    return end(c, vm);
}

static int do_start(xcp__ctx *c, xcp__obj *vm, bool paused, const char *op)
{
    int rc = begin(c, vm, op);

    return rc < 0 ? rc : boot(c, vm, paused);
}

static int vm_arg(xcp__ctx *c, xcp__obj **vm)
{
    return xcp__arg_obj(c, 0, C(VM), vm);
}

static int start(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc = vm_arg(c, &vm);

    return rc < 0 ? rc : do_start(c, vm, xcp__arg_bool(c, 1), "start");
}

static int start_on(xcp__ctx *c)
{
    xcp__obj *vm, *host;
    int rc;

    if ((rc = vm_arg(c, &vm)) < 0 ||
        (rc = xcp__arg_obj(c, 1, C(host), &host)) < 0)
        return rc;
    if (strcmp(host->ref, c->e->host))
        return XCP__ERR_HOST_OFFLINE(host->ref);
    return do_start(c, vm, xcp__arg_bool(c, 2), "start_on");
}

static int do_hard_shutdown(xcp__ctx *c, xcp__obj *vm)
{
    char ref[XCP_REF_MAX];
    int rc;

    snprintf(ref, sizeof(ref), "%s", vm->ref);
    if (is(vm, "Suspended")) {
        if ((rc = drop_suspend_vdi(c, vm)) < 0)
            return fail_op(c, ref, rc);
        if ((rc = set_stopped(c, vm, "Halted", NULL)) < 0)
            return fail_op(c, ref, rc);
        return 0;
    }
    if ((rc = destroy_domain(c, &vm)) < 0)
        return fail_op(c, ref, rc);
    if ((rc = set_stopped(c, vm, "Halted", NULL)) < 0)
        return fail_op(c, ref, rc);
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

    if ((rc = vm_arg(c, &vm)) < 0 || (rc = begin(c, vm, "hard_shutdown")) < 0)
        return rc;
    if ((rc = xcp__vm_preempt(c, &vm, "hard_shutdown")) < 0)
        return fail_op(c, xcp__arg_str(c, 0), rc);
    if (!is(vm, "Halted") && (rc = do_hard_shutdown(c, vm)) < 0)
        return rc;
    vm = xcp__db_get_cls(c->db, C(VM), xcp__arg_str(c, 0));
    return vm ? end(c, vm) : 0;
}

static int do_clean_shutdown(xcp__ctx *c, xcp__obj *vm)
{
    char ref[XCP_REF_MAX];
    int rc;

    snprintf(ref, sizeof(ref), "%s", vm->ref);
    if ((rc = guest_shutdown(c, &vm, XCP_HV_SHUTDOWN_POWEROFF)) < 0)
        return rc;
    if ((rc = destroy_domain(c, &vm)) < 0)
        return rc;
    return set_stopped(c, vm, "Halted", NULL);
}

static int clean_shutdown(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc;

    if ((rc = vm_arg(c, &vm)) < 0 ||
        (rc = begin(c, vm, "clean_shutdown")) < 0)
        return rc;
    if ((rc = do_clean_shutdown(c, vm)) < 0)
        return fail_op(c, xcp__arg_str(c, 0), rc);
    vm = xcp__db_get_cls(c->db, C(VM), xcp__arg_str(c, 0));
    return vm ? end(c, vm) : 0;
}

/* VM.shutdown: clean when running, falling back to hard. */
static int shutdown(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc;

    if ((rc = vm_arg(c, &vm)) < 0 || (rc = begin(c, vm, "shutdown")) < 0)
        return rc;
    if (is(vm, "Running") && (rc = do_clean_shutdown(c, vm)) == 0) {
        vm = xcp__db_get_cls(c->db, C(VM), xcp__arg_str(c, 0));
        return vm ? end(c, vm) : 0;
    }
    /* Pre-empted by a hard_shutdown: it takes over, no fallback here. */
    if (rc < 0 && xcp_error_last() &&
        !strcmp(xcp_error_last()->name, "TASK_CANCELLED"))
        return fail_op(c, xcp__arg_str(c, 0), rc);
    xcp_error_clear();
    vm = xcp__db_get_cls(c->db, C(VM), xcp__arg_str(c, 0));
    if (!vm)
        return xcp__handle_invalid(C(VM), xcp__arg_str(c, 0));
    if (is(vm, "Halted"))
        return end(c, vm);
    if ((rc = do_hard_shutdown(c, vm)) < 0)
        return rc;
    vm = xcp__db_get_cls(c->db, C(VM), xcp__arg_str(c, 0));
    return vm ? end(c, vm) : 0;
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
    if ((rc = destroy_domain(c, &vm)) < 0)
        return fail_op(c, ref, rc);
    if ((rc = build_domain(c, &vm, false, NULL, &domid)) < 0) {
        xcp__saved_error s;
        xcp__error_save(&s);
        if (vm && set_stopped(c, vm, "Halted", NULL) < 0)
            xcp__log(XCP__LOG_WARN, "VM %s: reboot failed, and so did "
                     "recording it halted", ref);
        xcp__error_restore(&s);
        return fail_op(c, ref, rc);
    }
    if ((rc = set_running(c, vm, domid, false, true)) < 0)
        return fail_op(c, ref, rc);
    return end(c, vm);
}

static int clean_reboot(xcp__ctx *c)
{
    xcp__obj *vm;
    const char *ref = xcp__arg_str(c, 0);
    int rc;

    if ((rc = vm_arg(c, &vm)) < 0 || (rc = begin(c, vm, "clean_reboot")) < 0)
        return rc;
    if ((rc = guest_shutdown(c, &vm, XCP_HV_SHUTDOWN_REBOOT)) < 0)
        return fail_op(c, ref, rc);
    return reboot_domain(c, vm);
}

static int hard_reboot(xcp__ctx *c)
{
    xcp__obj *vm;
    const char *ref = xcp__arg_str(c, 0);
    int rc;

    if ((rc = vm_arg(c, &vm)) < 0 || (rc = begin(c, vm, "hard_reboot")) < 0)
        return rc;
    if ((rc = xcp__vm_preempt(c, &vm, "hard_reboot")) < 0)
        return fail_op(c, ref, rc);
    if (is(vm, "Halted"))
        return boot(c, vm, false);
    if (is(vm, "Suspended"))
        return fail_op(c, ref, xcp__vm_bad_power_state(ref, power(vm),
                                                       "running"));
    return reboot_domain(c, vm);
}

static int pause_unpause(xcp__ctx *c, bool pause)
{
    xcp__obj *vm;
    xcp_hv_error e;
    int rc;

    if ((rc = vm_arg(c, &vm)) < 0 ||
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
        return hv_fail(c, vm->ref, &e);
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
static int save_domain(xcp__ctx *c, xcp__obj **vm, char vdiref[XCP_REF_MAX])
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
        rc = hv_fail(c, ref, &e);
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

    if ((rc = vm_arg(c, &vm)) < 0 || (rc = begin(c, vm, "suspend")) < 0)
        return rc;
    if ((rc = save_domain(c, &vm, vdiref)) < 0 ||
        (rc = set_stopped(c, vm, "Suspended", vdiref)) < 0)
        return fail_op(c, ref, rc);
    return end(c, vm);
}

static int do_resume(xcp__ctx *c, bool paused, const char *op)
{
    xcp__obj *vm, *vdi;
    xcp_sr_vdi_path path;
    const char *ref = xcp__arg_str(c, 0);
    uint32_t domid;
    int rc;

    if ((rc = vm_arg(c, &vm)) < 0 || (rc = begin(c, vm, op)) < 0)
        return rc;
    vdi = xcp__db_get_cls(c->db, C(VDI), xcp__obj_str(vm, F(VM, suspend_VDI)));
    if (!vdi)
        return fail_op(c, ref, XCP__ERR_VDI_MISSING(
                           XCP_NULL_REF, xcp__obj_str(vm, F(VM, suspend_VDI))));
    if ((rc = xcp__vdi_path(c, vdi, &path)) < 0 ||
        (rc = build_domain(c, &vm, paused, path.path, &domid)) < 0)
        return fail_op(c, ref, rc);
    if ((rc = drop_suspend_vdi(c, vm)) < 0 ||
        (rc = set_running(c, vm, domid, paused, false)) < 0)
        return fail_op(c, ref, rc);
    return end(c, vm);
}

static int resume(xcp__ctx *c)
{
    return do_resume(c, xcp__arg_bool(c, 1), "resume");
}

static int resume_on(xcp__ctx *c)
{
    xcp__obj *host;
    int rc;

    if ((rc = xcp__arg_obj(c, 1, C(host), &host)) < 0)
        return rc;
    if (strcmp(host->ref, c->e->host))
        return XCP__ERR_HOST_OFFLINE(host->ref);
    return do_resume(c, xcp__arg_bool(c, 2), "resume_on");
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

    if ((rc = vm_arg(c, &vm)) < 0)
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
        return hv_fail(c, vm->ref, &e);
    if ((rc = drop_suspend_vdi(c, vm)) < 0 ||
        (rc = set_stopped(c, vm, "Halted", NULL)) < 0)
        return rc;
    return refresh_host_memory(c);
}

/* VM.set_is_a_template: making a template needs a Halted VM. */
static int set_is_a_template(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc;

    if ((rc = vm_arg(c, &vm)) < 0)
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

static int new_metrics(xcp__ctx *c, xcp__obj *vm)
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

    if ((rc = new_metrics(c, vm)) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, domid), -1)) < 0)
        return rc;
    return xcp__update_allowed(c, vm);
}

static int vm_create(xcp__ctx *c)
{
    const xcp_value *rec = xcp__arg(c, 0);
    const struct xcp__class *k = &xcp__classes[C(VM)];
    xcp__obj *vm;
    size_t i;
    int rc;

    for (i = 0; i < k->nfields; i++) {
        const struct xcp__field *f = &k->fields[i];
        if ((f->flags & XF_REQ) && rec->u.rec.fields[i].kind == XCP_VAL_NONE) {
            char *m = xcp__printf("missing field %s in VM.create argument",
                                  f->name);
            rc = XCP__ERR_INTERNAL_ERROR(m ? m : f->name);
            free(m);
            return rc;
        }
    }
    if ((rc = check_memory_constraints(
             rec->u.rec.fields[F(VM, memory_static_min)].u.i,
             rec->u.rec.fields[F(VM, memory_dynamic_min)].u.i,
             rec->u.rec.fields[F(VM, memory_dynamic_max)].u.i,
             rec->u.rec.fields[F(VM, memory_static_max)].u.i)) < 0 ||
        (rc = check_boot_fields(rec->u.rec.fields)) < 0)
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
    if ((rc = xcp__vm_init_record(c, vm)) < 0)
        return rc;
    return xcp__ret_ref(c, vm);
}

static int destroy_children(xcp__ctx *c, xcp__obj *vm, int field, int cls)
{
    const xcp_value *set = xcp__obj_val(vm, field);
    int rc;

    while (set->kind == XCP_VAL_ARRAY && set->u.arr.n > 0) {
        xcp__obj *o = xcp__db_get_cls(c->db, cls, set->u.arr.items[0].u.s);
        if (!o)
            break;
        if ((rc = xcp__db_destroy(c->db, o)) < 0)
            return rc;
        set = xcp__obj_val(vm, field);
    }
    return 0;
}

int xcp__vm_destroy_record(xcp__ctx *c, xcp__obj *vm)
{
    xcp__obj *m;
    int rc;

    if ((rc = drop_suspend_vdi(c, vm)) < 0 ||
        (rc = destroy_children(c, vm, F(VM, VBDs), C(VBD))) < 0 ||
        (rc = destroy_children(c, vm, F(VM, VIFs), C(VIF))) < 0 ||
        (rc = destroy_children(c, vm, F(VM, consoles), C(console))) < 0)
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

    if ((rc = vm_arg(c, &vm)) < 0 ||
        (rc = xcp__vm_check_op(vm, "destroy")) < 0)
        return rc;
    return xcp__vm_destroy_record(c, vm);
}

/* ---- clone, copy, snapshot, checkpoint, revert ------------------------------- */

enum cmode { M_CLONE, M_COPY, M_SNAPSHOT, M_CHECKPOINT };

static bool in_set(const xcp_value *set, const char *s)
{
    size_t i;

    for (i = 0; set && set->kind == XCP_VAL_ARRAY && i < set->u.arr.n; i++)
        if (!strcmp(set->u.arr.items[i].u.s, s))
            return true;
    return false;
}

/* Fields that describe the VM's configuration: what clone, snapshot and
 * revert carry over. Server-maintained state is not in here. */
static bool config_field(int f)
{
    static const int skip[] = {
        F(VM, uuid), F(VM, allowed_operations), F(VM, current_operations),
        F(VM, power_state), F(VM, suspend_VDI), F(VM, resident_on),
        F(VM, is_default_template), F(VM, domid), F(VM, is_control_domain),
        F(VM, metrics), F(VM, guest_metrics), F(VM, is_a_snapshot),
        F(VM, snapshot_of), F(VM, snapshot_time), F(VM, parent),
        F(VM, scheduled_to_be_resident_on), F(VM, transportable_snapshot_id),
        F(VM, snapshot_info), F(VM, snapshot_metadata), F(VM, name_label),
        F(VM, name_description), F(VM, requires_reboot),
        F(VM, is_vmss_snapshot), F(VM, snapshot_schedule)};
    size_t i;

    if (xcp__classes[C(VM)].fields[f].flags & XF_DERIVED)
        return false;
    for (i = 0; i < XCP__ARRAY_LEN(skip); i++)
        if (skip[i] == f)
            return false;
    return true;
}

static int copy_fields(xcp__ctx *c, xcp__obj *dst, xcp__obj *src,
                       bool (*which)(int))
{
    size_t i;
    int rc;

    for (i = 0; i < xcp__classes[src->cls].nfields; i++) {
        xcp_value v;
        if (which && !which((int)i))
            continue;
        if ((rc = xcp_value_copy(&v, xcp__obj_val(src, (int)i))) < 0)
            return rc;
        rc = xcp__db_set(c->db, dst, (int)i, &v);
        xcp_value_dispose(&v);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static bool vbd_field(int f)
{
    return f != F(VBD, uuid) && f != F(VBD, VM) && f != F(VBD, VDI) &&
           f != F(VBD, currently_attached) && f != F(VBD, allowed_operations) &&
           f != F(VBD, current_operations) && f != F(VBD, metrics);
}

static bool vif_field(int f)
{
    return f != F(VIF, uuid) && f != F(VIF, VM) &&
           f != F(VIF, currently_attached) && f != F(VIF, allowed_operations) &&
           f != F(VIF, current_operations) && f != F(VIF, metrics);
}

/* A copy of vbd on dst_vm pointing at vdi (NULL: empty drive); owned
 * marks the disk as the new VM's own (vm-uninstall destroys it). */
static int copy_vbd(xcp__ctx *c, xcp__obj *vbd, xcp__obj *dst_vm,
                    const char *vdi, bool owned)
{
    xcp__obj *n;
    int rc;

    if ((rc = xcp__db_create(c->db, C(VBD), NULL, NULL, &n)) < 0 ||
        (rc = copy_fields(c, n, vbd, vbd_field)) < 0 ||
        (rc = xcp__db_set_str(c->db, n, F(VBD, VM), dst_vm->ref)) < 0 ||
        (rc = xcp__db_set_str(c->db, n, F(VBD, VDI),
                              vdi ? vdi : XCP_NULL_REF)) < 0 ||
        (rc = xcp__db_set_bool(c->db, n, F(VBD, empty), vdi == NULL)) < 0 ||
        (owned && (rc = xcp__db_map_put_str(c->db, n, F(VBD, other_config),
                                            "owner", "")) < 0))
        return rc;
    return xcp__update_allowed(c, n);
}

static int copy_vif(xcp__ctx *c, xcp__obj *vif, xcp__obj *dst_vm, bool new_mac)
{
    xcp__obj *n;
    char mac[18];
    int rc;

    if ((rc = xcp__db_create(c->db, C(VIF), NULL, NULL, &n)) < 0 ||
        (rc = copy_fields(c, n, vif, vif_field)) < 0 ||
        (rc = xcp__db_set_str(c->db, n, F(VIF, VM), dst_vm->ref)) < 0)
        return rc;
    if (new_mac) {
        xcp__mac_gen(mac);
        if ((rc = xcp__db_set_str(c->db, n, F(VIF, MAC), mac)) < 0 ||
            (rc = xcp__db_set_bool(c->db, n, F(VIF, MAC_autogenerated),
                                   true)) < 0)
            return rc;
    }
    return xcp__update_allowed(c, n);
}

/* The new VM's disks: CoW children, snapshots or full copies. */
static int copy_disks(xcp__ctx *c, xcp__obj *src, xcp__obj *dst,
                      enum cmode mode, xcp__obj *sr, const xcp_value *ignore)
{
    const xcp_value *vbds = xcp__obj_val(src, F(VM, VBDs));
    size_t i, n = vbds->kind == XCP_VAL_ARRAY ? vbds->u.arr.n : 0;
    char (*refs)[XCP_REF_MAX] = xcp__calloc(n, XCP_REF_MAX);
    int rc = 0;

    if (!refs)
        return xcp__oom();
    for (i = 0; i < n; i++)
        snprintf(refs[i], XCP_REF_MAX, "%s", vbds->u.arr.items[i].u.s);
    for (i = 0; i < n && rc == 0; i++) {
        xcp__obj *vbd = xcp__db_get_cls(c->db, C(VBD), refs[i]);
        xcp__obj *vdi, *nv = NULL;
        if (!vbd)
            continue;
        vdi = xcp__db_get_cls(c->db, C(VDI), xcp__obj_str(vbd, F(VBD, VDI)));
        if (!vdi || xcp__obj_bool(vbd, F(VBD, empty))) {
            rc = copy_vbd(c, vbd, dst, NULL, false);
            continue;
        }
        if (!strcmp(xcp__obj_str(vbd, F(VBD, type)), "CD")) {
            rc = copy_vbd(c, vbd, dst, vdi->ref, false); /* shared media */
            continue;
        }
        if (in_set(ignore, vdi->ref))
            continue;
        if (mode == M_COPY)
            rc = xcp__vdi_full_copy(c, vdi, sr, &nv);
        else
            rc = xcp__vdi_cow(c, vdi, mode == M_SNAPSHOT ||
                                          mode == M_CHECKPOINT, &nv);
        if (rc == 0) /* the copy's disks belong to the copy */
            rc = copy_vbd(c, vbd, dst, nv->ref, true);
    }
    free(refs);
    return rc;
}

static int copy_vifs(xcp__ctx *c, xcp__obj *src, xcp__obj *dst, bool new_mac)
{
    const xcp_value *vifs = xcp__obj_val(src, F(VM, VIFs));
    size_t i;
    int rc;

    for (i = 0; vifs->kind == XCP_VAL_ARRAY && i < vifs->u.arr.n; i++) {
        xcp__obj *vif = xcp__db_get_cls(c->db, C(VIF),
                                        vifs->u.arr.items[i].u.s);
        if (vif && (rc = copy_vif(c, vif, dst, new_mac)) < 0)
            return rc;
    }
    return 0;
}

static int make_copy(xcp__ctx *c, xcp__obj *src, const char *name,
                     enum cmode mode, xcp__obj *sr, const xcp_value *ignore,
                     xcp__obj **out)
{
    xcp__obj *vm;
    int rc;

    if ((rc = xcp__db_create(c->db, C(VM), NULL, NULL, &vm)) < 0 ||
        (rc = copy_fields(c, vm, src, config_field)) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, name_label), name)) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, name_description),
                              xcp__obj_str(src, F(VM, name_description)))) < 0 ||
        (rc = new_metrics(c, vm)) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, domid), -1)) < 0 ||
        (rc = xcp__db_map_del(c->db, vm, F(VM, other_config),
                              "default_template")) < 0)
        return rc;
    if (mode == M_SNAPSHOT || mode == M_CHECKPOINT) {
        if ((rc = xcp__db_set_bool(c->db, vm, F(VM, is_a_snapshot), true)) < 0 ||
            (rc = xcp__db_set_bool(c->db, vm, F(VM, is_a_template), true)) < 0 ||
            (rc = xcp__db_set_str(c->db, vm, F(VM, snapshot_of),
                                  src->ref)) < 0 ||
            (rc = xcp__db_set_time(c->db, vm, F(VM, snapshot_time),
                                   xcp__now())) < 0 ||
            (rc = xcp__db_set_str(c->db, vm, F(VM, parent),
                                  xcp__obj_str(src, F(VM, parent)))) < 0 ||
            (rc = xcp__db_set_str(c->db, src, F(VM, parent), vm->ref)) < 0)
            return rc;
    } else {
        if ((rc = xcp__db_set_str(c->db, vm, F(VM, parent), src->ref)) < 0)
            return rc;
    }
    if ((rc = copy_disks(c, src, vm, mode, sr, ignore)) < 0 ||
        (rc = copy_vifs(c, src, vm, mode == M_CLONE || mode == M_COPY)) < 0)
        return rc;
    /* A suspended snapshot (or clone of one) carries its memory image. */
    if (mode != M_CHECKPOINT) {
        xcp__obj *svdi = xcp__db_get_cls(c->db, C(VDI),
                                         xcp__obj_str(src, F(VM, suspend_VDI)));
        if (svdi && is(src, "Suspended")) {
            xcp__obj *nv;
            if ((rc = xcp__vdi_full_copy(c, svdi, NULL, &nv)) < 0 ||
                (rc = xcp__db_set_str(c->db, vm, F(VM, suspend_VDI),
                                      nv->ref)) < 0 ||
                (rc = xcp__db_set_str(c->db, vm, F(VM, power_state),
                                      "Suspended")) < 0)
                return rc;
        }
    }
    if ((rc = xcp__update_allowed(c, vm)) < 0)
        return rc;
    *out = vm;
    return 0;
}

static int clone_like(xcp__ctx *c, enum cmode mode, const char *op)
{
    xcp__obj *vm, *sr = NULL, *n;
    const char *ref = xcp__arg_str(c, 0);
    int rc;

    if ((rc = vm_arg(c, &vm)) < 0)
        return rc;
    if (mode == M_COPY && !xcp_ref_is_null(xcp__arg_str(c, 2)) &&
        (rc = xcp__arg_obj(c, 2, C(SR), &sr)) < 0)
        return rc;
    if ((rc = begin(c, vm, op)) < 0)
        return rc;
    if ((rc = make_copy(c, vm, xcp__arg_str(c, 1), mode, sr,
                        mode == M_SNAPSHOT ? xcp__arg(c, 2) : NULL, &n)) < 0) {
        /* Undo the partial copy: the abort drops its records and the
         * images made for them (xcp__db_after_commit). */
        xcp__db_abort(c->db);
        xcp__db_begin(c->db);
        return fail_op(c, ref, rc);
    }
    if ((rc = xcp__ret_ref(c, n)) < 0)
        return fail_op(c, ref, rc);
    vm = xcp__db_get_cls(c->db, C(VM), ref);
    return vm ? end(c, vm) : 0;
}

static int vm_clone(xcp__ctx *c)
{
    return clone_like(c, M_CLONE, "clone");
}

static int vm_copy(xcp__ctx *c)
{
    return clone_like(c, M_COPY, "copy");
}

static int vm_snapshot(xcp__ctx *c)
{
    return clone_like(c, M_SNAPSHOT, "snapshot");
}

static int snapshot_with_quiesce(xcp__ctx *c)
{
    return XCP__ERR_VM_SNAPSHOT_WITH_QUIESCE_NOT_SUPPORTED_VM(
        xcp__arg_str(c, 0));
}

/* Checkpoint: memory + disks. The running domain is saved into a suspend
 * VDI, the disks snapshotted, and the domain restored from the same
 * image; the snapshot keeps the image. */
static int checkpoint(xcp__ctx *c)
{
    xcp__obj *vm, *snap, *vdi;
    xcp_sr_vdi_path path;
    char vdiref[XCP_REF_MAX];
    const char *ref = xcp__arg_str(c, 0);
    bool paused;
    uint32_t domid;
    int rc;

    if ((rc = vm_arg(c, &vm)) < 0 || (rc = begin(c, vm, "checkpoint")) < 0)
        return rc;
    if (is(vm, "Suspended")) {
        /* Already saved: a plain snapshot carries the image. */
        if ((rc = make_copy(c, vm, xcp__arg_str(c, 1), M_SNAPSHOT, NULL,
                            NULL, &snap)) < 0 ||
            (rc = xcp__ret_ref(c, snap)) < 0)
            return fail_op(c, ref, rc);
        return end(c, vm);
    }
    paused = is(vm, "Paused");
    if ((rc = save_domain(c, &vm, vdiref)) < 0)
        return fail_op(c, ref, rc);
    rc = make_copy(c, vm, xcp__arg_str(c, 1), M_CHECKPOINT, NULL, NULL, &snap);
    if (rc == 0)
        rc = xcp__db_set_str(c->db, snap, F(VM, suspend_VDI), vdiref);
    if (rc == 0)
        rc = xcp__db_set_str(c->db, snap, F(VM, power_state), "Suspended");
    if (rc == 0)
        rc = xcp__ret_ref(c, snap);
    if (rc == 0)
        rc = xcp__update_allowed(c, snap);
    /* The original runs again from the image, whatever happened above. */
    vdi = xcp__db_get_cls(c->db, C(VDI), vdiref);
    if (vdi && xcp__vdi_path(c, vdi, &path) == 0) {
        xcp__saved_error s;
        int rc2;
        xcp__error_save(&s);
        rc2 = build_domain(c, &vm, paused, path.path, &domid);
        if (rc2 == 0)
            rc2 = set_running(c, vm, domid, paused, false);
        if (rc == 0) {
            rc = rc2;
            if (s.set)
                xcp_value_dispose(&s.v);
        } else {
            xcp__error_restore(&s);
        }
    }
    if (rc < 0)
        return fail_op(c, ref, rc);
    return end(c, vm);
}

static bool revert_field(int f)
{
    return config_field(f) && f != F(VM, is_a_template) &&
           f != F(VM, blocked_operations) && f != F(VM, tags);
}

static int revert(xcp__ctx *c)
{
    xcp__obj *snap, *vm, *svdi;
    const char *sref = xcp__arg_str(c, 0);
    char vref[XCP_REF_MAX];
    size_t i, n;
    char (*old)[XCP_REF_MAX] = NULL;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(VM), &snap)) < 0 ||
        (rc = xcp__vm_check_op(snap, "revert")) < 0)
        return rc;
    if ((rc = xcp__ref_obj(c, xcp__obj_str(snap, F(VM, snapshot_of)), C(VM),
                           &vm)) < 0)
        return rc;
    snprintf(vref, sizeof(vref), "%s", vm->ref);
    if ((rc = begin(c, vm, "reverting")) < 0)
        return rc;
    /* Stop it, whatever it is doing. */
    if (!is(vm, "Halted") && (rc = do_hard_shutdown(c, vm)) < 0)
        return rc;
    if (!(vm = xcp__db_get_cls(c->db, C(VM), vref)))
        return xcp__handle_invalid(C(VM), vref);
    /* Old disks go once the VM no longer uses them. */
    {
        const xcp_value *vbds = xcp__obj_val(vm, F(VM, VBDs));
        n = vbds->kind == XCP_VAL_ARRAY ? vbds->u.arr.n : 0;
        old = xcp__calloc(n, XCP_REF_MAX);
        if (!old)
            return fail_op(c, vref, xcp__oom());
        for (i = 0; i < n; i++) {
            xcp__obj *vbd = xcp__db_get_cls(c->db, C(VBD),
                                            vbds->u.arr.items[i].u.s);
            old[i][0] = '\0';
            if (vbd && strcmp(xcp__obj_str(vbd, F(VBD, type)), "CD"))
                snprintf(old[i], XCP_REF_MAX, "%s",
                         xcp__obj_str(vbd, F(VBD, VDI)));
        }
    }
    if ((rc = destroy_children(c, vm, F(VM, VBDs), C(VBD))) < 0 ||
        (rc = destroy_children(c, vm, F(VM, VIFs), C(VIF))) < 0 ||
        (rc = copy_fields(c, vm, snap, revert_field)) < 0 ||
        (rc = copy_disks(c, snap, vm, M_CLONE, NULL, NULL)) < 0 ||
        (rc = copy_vifs(c, snap, vm, false)) < 0)
        goto fail;
    for (i = 0; i < n; i++) {
        xcp__obj *vdi = old[i][0] ? xcp__db_get_cls(c->db, C(VDI), old[i])
                                  : NULL;
        if (vdi && !xcp__obj_bool(vdi, F(VDI, is_a_snapshot)) &&
            xcp__obj_val(vdi, F(VDI, VBDs))->u.arr.n == 0 &&
            (rc = xcp__vdi_delete(c, vdi)) < 0)
            goto fail;
    }
    svdi = xcp__db_get_cls(c->db, C(VDI), xcp__obj_str(snap, F(VM, suspend_VDI)));
    if (svdi && is(snap, "Suspended")) {
        xcp__obj *nv;
        if ((rc = xcp__vdi_full_copy(c, svdi, NULL, &nv)) < 0 ||
            (rc = set_stopped(c, vm, "Suspended", nv->ref)) < 0)
            goto fail;
    }
    free(old);
    XCP__UNUSED(sref);
    return end(c, vm);
fail:
    free(old);
    xcp__db_abort(c->db);
    xcp__db_begin(c->db);
    return fail_op(c, vref, rc);
}

/* ---- provision ---------------------------------------------------------------- */

struct pdisk {
    char device[16];
    int64_t size;
    char sr[64];
    bool bootable;
    char type[32];
};

/* other_config:disks = <provision><disk device="0" size="..." sr="uuid"
 * bootable="true" type="system"/>...</provision> */
static int parse_disks(const char *xml, struct pdisk *out, size_t cap,
                       size_t *n)
{
    xmlDocPtr doc;
    xmlNodePtr root, d;

    *n = 0;
    doc = xmlReadMemory(xml, (int)strlen(xml), "disks.xml", NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR |
                            XML_PARSE_NOWARNING);
    if (!doc)
        return XCP__ERR_INVALID_VALUE("other_config:disks", xml);
    root = xmlDocGetRootElement(doc);
    if (!root || xmlStrcmp(root->name, (const xmlChar *)"provision")) {
        xmlFreeDoc(doc);
        return XCP__ERR_INVALID_VALUE("other_config:disks", xml);
    }
    for (d = root->children; d; d = d->next) {
        xmlChar *dev, *size, *sr, *boot, *type;
        if (d->type != XML_ELEMENT_NODE ||
            xmlStrcmp(d->name, (const xmlChar *)"disk"))
            continue;
        if (*n >= cap)
            break;
        dev = xmlGetProp(d, (const xmlChar *)"device");
        size = xmlGetProp(d, (const xmlChar *)"size");
        sr = xmlGetProp(d, (const xmlChar *)"sr");
        boot = xmlGetProp(d, (const xmlChar *)"bootable");
        type = xmlGetProp(d, (const xmlChar *)"type");
        memset(&out[*n], 0, sizeof(out[*n]));
        snprintf(out[*n].device, sizeof(out[*n].device), "%s",
                 dev ? (char *)dev : "0");
        out[*n].size = size ? strtoll((char *)size, NULL, 10) : 0;
        snprintf(out[*n].sr, sizeof(out[*n].sr), "%s", sr ? (char *)sr : "");
        out[*n].bootable = boot && !xmlStrcmp(boot, (const xmlChar *)"true");
        snprintf(out[*n].type, sizeof(out[*n].type), "%s",
                 type ? (char *)type : "system");
        xmlFree(dev);
        xmlFree(size);
        xmlFree(sr);
        xmlFree(boot);
        xmlFree(type);
        if (out[*n].size <= 0) {
            xmlFreeDoc(doc);
            return XCP__ERR_INVALID_VALUE("other_config:disks", xml);
        }
        (*n)++;
    }
    xmlFreeDoc(doc);
    return 0;
}

static int provision(xcp__ctx *c)
{
    xcp__obj *vm, *sr, *vdi, *vbd;
    const char *xml;
    struct pdisk disks[16];
    size_t n, i;
    int rc;

    if ((rc = vm_arg(c, &vm)) < 0 ||
        (rc = xcp__vm_check_op(vm, "provision")) < 0)
        return rc;
    xml = xcp__obj_map_str(vm, F(VM, other_config), "disks");
    if (xml && (rc = parse_disks(xml, disks, XCP__ARRAY_LEN(disks), &n)) < 0)
        return rc;
    for (i = 0; xml && i < n; i++) {
        char *name;
        sr = disks[i].sr[0] ? xcp__db_by_uuid(c->db, C(SR), disks[i].sr)
                            : NULL;
        if (!sr)
            sr = xcp__default_sr(c);
        if (!sr)
            return XCP__ERR_SR_REQUIRED("");
        name = xcp__printf("%s %s", xcp__obj_str(vm, F(VM, name_label)),
                           disks[i].device);
        if (!name)
            return xcp__oom();
        rc = xcp__vdi_new(c, sr, name, "Created by template provisioner",
                          disks[i].size, disks[i].type, NULL, &vdi);
        free(name);
        if (rc < 0)
            return rc;
        if ((rc = xcp__db_create(c->db, C(VBD), NULL, NULL, &vbd)) < 0 ||
            (rc = xcp__db_set_str(c->db, vbd, F(VBD, VM), vm->ref)) < 0 ||
            (rc = xcp__db_set_str(c->db, vbd, F(VBD, VDI), vdi->ref)) < 0 ||
            (rc = xcp__db_set_str(c->db, vbd, F(VBD, userdevice),
                                  disks[i].device)) < 0 ||
            (rc = xcp__db_set_bool(c->db, vbd, F(VBD, bootable),
                                   disks[i].bootable)) < 0 ||
            /* The VM owns this disk: vm-uninstall destroys it with it. */
            (rc = xcp__db_map_put_str(c->db, vbd, F(VBD, other_config),
                                      "owner", "")) < 0 ||
            (rc = xcp__update_allowed(c, vbd)) < 0 ||
            (rc = xcp__update_allowed(c, vdi)) < 0)
            return rc;
    }
    if ((rc = xcp__db_map_del(c->db, vm, F(VM, other_config), "disks")) < 0 ||
        (rc = xcp__db_set_bool(c->db, vm, F(VM, is_a_template), false)) < 0)
        return rc;
    return xcp__update_allowed(c, vm);
}

/* ---- memory and vCPUs --------------------------------------------------------- */

static int set_dynamic(xcp__ctx *c, xcp__obj *vm, int64_t min, int64_t max)
{
    xcp_hv_error e;
    int rc;

    if ((rc = check_memory_constraints(
             xcp__obj_int(vm, F(VM, memory_static_min)), min, max,
             xcp__obj_int(vm, F(VM, memory_static_max)))) < 0)
        return rc;
    if (is(vm, "Running")) {
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
    if (is(vm, "Running") &&
        xcp__hv_domain_set_memory_target(c->e->hv,
                                         (uint32_t)xcp__obj_int(vm,
                                                                F(VM, domid)),
                                         (uint64_t)max, &e) < 0)
        return hv_fail(c, vm->ref, &e);
    if ((rc = xcp__db_set_int(c->db, vm, F(VM, memory_dynamic_min), min)) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, memory_dynamic_max), max)) < 0)
        return rc;
    if (is(vm, "Running")) {
        xcp__obj *m = xcp__db_get_cls(c->db, C(VM_metrics),
                                      xcp__obj_str(vm, F(VM, metrics)));
        if (m && (rc = xcp__db_set_int(c->db, m, F(VM_metrics, memory_actual),
                                       max)) < 0)
            return rc;
        return refresh_host_memory(c);
    }
    return 0;
}

static int set_memory_dynamic_range(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc;

    if ((rc = vm_arg(c, &vm)) < 0 ||
        (rc = xcp__vm_check_op(vm, "changing_dynamic_range")) < 0)
        return rc;
    return set_dynamic(c, vm, xcp__arg_int(c, 1), xcp__arg_int(c, 2));
}

static int set_limits(xcp__ctx *c, xcp__obj *vm, int64_t smin, int64_t smax,
                      int64_t dmin, int64_t dmax, const char *op)
{
    int rc;

    if ((rc = xcp__vm_check_op(vm, op)) < 0 ||
        (rc = check_memory_constraints(smin, dmin, dmax, smax)) < 0)
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
    int rc = vm_arg(c, &vm);

    return rc < 0 ? rc
                  : set_limits(c, vm, xcp__arg_int(c, 1), xcp__arg_int(c, 2),
                               MEM(vm, memory_dynamic_min),
                               MEM(vm, memory_dynamic_max),
                               "changing_static_range");
}

static int set_memory_limits(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc = vm_arg(c, &vm);

    return rc < 0 ? rc
                  : set_limits(c, vm, xcp__arg_int(c, 1), xcp__arg_int(c, 2),
                               xcp__arg_int(c, 3), xcp__arg_int(c, 4),
                               "changing_memory_limits");
}

static int set_memory(xcp__ctx *c)
{
    xcp__obj *vm;
    int64_t v = xcp__arg_int(c, 1);
    int rc = vm_arg(c, &vm);

    if (rc < 0)
        return rc;
    if (is(vm, "Running"))
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
    int rc = vm_arg(c, &vm);

    if (rc < 0)
        return rc;
    smin = which == 0 ? v : MEM(vm, memory_static_min);
    smax = which == 1 ? v : MEM(vm, memory_static_max);
    dmin = which == 2 ? v : MEM(vm, memory_dynamic_min);
    dmax = which == 3 ? v : MEM(vm, memory_dynamic_max);
    if (which >= 2 && is(vm, "Running")) {
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

    if ((rc = vm_arg(c, &vm)) < 0 ||
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

    if ((rc = vm_arg(c, &vm)) < 0 ||
        (rc = xcp__vm_check_op(vm, "changing_VCPUs")) < 0)
        return rc;
    if (v < 1 || v > xcp__obj_int(vm, F(VM, VCPUs_max)))
        return bad_int("VCPUs_at_startup", v);
    return xcp__db_set_int(c->db, vm, F(VM, VCPUs_at_startup), v);
}

static int set_VCPUs_number_live(xcp__ctx *c)
{
    xcp__obj *vm, *m;
    xcp_hv_error e;
    int64_t v = xcp__arg_int(c, 1);
    int rc;

    if ((rc = vm_arg(c, &vm)) < 0 ||
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
        return hv_fail(c, vm->ref, &e);
    if ((rc = xcp__db_set_int(c->db, vm, F(VM, VCPUs_at_startup), v)) < 0)
        return rc;
    m = xcp__db_get_cls(c->db, C(VM_metrics), xcp__obj_str(vm, F(VM, metrics)));
    return m ? xcp__db_set_int(c->db, m, F(VM_metrics, VCPUs_number), v) : 0;
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
    if ((rc = vm_arg(c, &vm)) < 0)
        return rc;
    if ((rc = xcp_value_copy(&v, xcp__arg(c, 1))) < 0)
        return rc;
    rc = xcp__db_set(c->db, vm, f, &v);
    xcp_value_dispose(&v);
    return rc;
}

/* PV_kernel, PV_ramdisk, PV_bootloader: checked, then as static_setter. */
static int set_boot_field(xcp__ctx *c)
{
    const char *name = strchr(c->msg->wire, '.') + 1 + 4; /* "set_" */
    const char *v = xcp__arg_str(c, 1);
    xcp__obj *vm;
    int rc;

    if ((rc = vm_arg(c, &vm)) < 0)
        return rc;
    rc = !strcmp(name, "PV_bootloader") ? check_bootloader(v)
                                        : check_boot_path(name, v);
    return rc < 0 ? rc : static_setter(c);
}

static int map_edit(xcp__ctx *c, int f, bool add)
{
    xcp__obj *vm;
    int rc;

    if ((rc = vm_arg(c, &vm)) < 0)
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

    if ((rc = vm_arg(c, &vm)) < 0 ||
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

    if ((rc = vm_arg(c, &vm)) < 0 ||
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

    if ((rc = vm_arg(c, &vm)) < 0)
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
    int rc = vm_arg(c, &vm);

    return rc < 0 ? rc : xcp__vm_check_op(vm, xcp__arg_str(c, 1));
}

static int update_allowed_operations(xcp__ctx *c)
{
    xcp__obj *vm;
    int rc = vm_arg(c, &vm);

    return rc < 0 ? rc : xcp__update_allowed(c, vm);
}

static int assert_can_boot_here(xcp__ctx *c)
{
    xcp__obj *vm, *host;
    struct domcfg d;
    int rc;

    if ((rc = vm_arg(c, &vm)) < 0 ||
        (rc = xcp__arg_obj(c, 1, C(host), &host)) < 0)
        return rc;
    if (strcmp(host->ref, c->e->host))
        return XCP__ERR_HOST_OFFLINE(host->ref);
    if ((rc = build_cfg(c, vm, &d)) == 0)
        rc = check_host_fits(c, vm, &d);
    domcfg_free(&d);
    return rc;
}

static int get_possible_hosts(xcp__ctx *c)
{
    xcp__obj *vm;
    struct domcfg d;
    int rc;

    if ((rc = vm_arg(c, &vm)) < 0)
        return rc;
    rc = build_cfg(c, vm, &d);
    if (rc == 0)
        rc = check_host_fits(c, vm, &d);
    domcfg_free(&d);
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

    if ((rc = vm_arg(c, &vm)) < 0)
        return rc;
    if ((rc = build_cfg(c, vm, &d)) == 0 &&
        xcp__hv_memory_overhead(c->e->hv, &d.cfg, &o, &e) < 0)
        rc = hv_fail(c, vm->ref, &e);
    domcfg_free(&d);
    if (rc == 0)
        xcp__ret_int(c, (int64_t)o);
    return rc;
}

/* ---- reconciliation with the hypervisor ----------------------------------------- */

/* A domain reached SHUTDOWN on its own: apply the VM's actions. */
static int handle_shutdown(xcp__ctx *c, xcp__obj *vm,
                           const xcp_hv_domain_info *info)
{
    const char *action = "destroy";
    xcp_hv_error e;
    uint32_t domid;
    int rc;

    switch (info->shutdown_reason) {
    case XCP_HV_SHUTDOWN_REBOOT:
        action = xcp__obj_str(vm, F(VM, actions_after_reboot));
        break;
    case XCP_HV_SHUTDOWN_CRASH:
    case XCP_HV_SHUTDOWN_WATCHDOG:
        action = xcp__obj_str(vm, F(VM, actions_after_crash));
        if (!strcmp(action, "preserve")) {
            if ((rc = xcp__db_set_str(c->db, vm, F(VM, power_state),
                                      "Paused")) < 0)
                return rc;
            return xcp__update_allowed(c, vm);
        }
        break;
    case XCP_HV_SHUTDOWN_SUSPEND:
        return 0; /* a suspend in progress: its caller finishes it */
    default:
        action = xcp__obj_str(vm, F(VM, actions_after_shutdown));
        break;
    }
    xcp__hv_domain_destroy(c->e->hv, info->domid, &e);
    if ((rc = set_stopped(c, vm, "Halted", NULL)) < 0)
        return rc;
    if (strstr(action, "restart")) {
        struct domcfg d;
        if ((rc = build_cfg(c, vm, &d)) == 0 &&
            (rc = check_host_fits(c, vm, &d)) == 0 &&
            xcp__hv_domain_create(c->e->hv, &d.cfg, false, &domid, &e) == 0)
            rc = set_running(c, vm, domid, false, true);
        domcfg_free(&d);
        if (rc < 0)
            xcp__log(XCP__LOG_WARN, "VM %s: restart after %s failed",
                     xcp__obj_uuid(vm),
                     xcp__hv_shutdown_reason_name(info->shutdown_reason));
        xcp_error_clear();
    }
    return refresh_host_memory(c);
}

static bool busy(const xcp__obj *vm)
{
    const xcp_value *cur = xcp__obj_val(vm, F(VM, current_operations));

    return cur->kind == XCP_VAL_STRUCT && cur->u.st.n > 0;
}

static int reconcile_one(xcp__ctx *c, xcp__obj *vm,
                         const xcp_hv_domain_info *info)
{
    int rc;

    if (!info) {
        if (is(vm, "Running") || is(vm, "Paused"))
            return set_stopped(c, vm, "Halted", NULL);
        return 0;
    }
    if (info->state == XCP_HV_STATE_SHUTDOWN)
        return handle_shutdown(c, vm, info);
    if (info->state == XCP_HV_STATE_DYING)
        return 0;
    if (is(vm, "Halted") || is(vm, "Suspended") ||
        xcp__obj_int(vm, F(VM, domid)) != (int64_t)info->domid)
        return set_running(c, vm, info->domid,
                           info->state == XCP_HV_STATE_PAUSED, false);
    if (is(vm, "Running") != (info->state == XCP_HV_STATE_RUNNING)) {
        rc = xcp__db_set_str(c->db, vm, F(VM, power_state),
                             info->state == XCP_HV_STATE_PAUSED ? "Paused"
                                                               : "Running");
        if (rc == 0)
            rc = xcp__update_allowed(c, vm);
        return rc;
    }
    return 0;
}

int xcp__vm_reconcile_domain(xcp__ctx *c, uint32_t domid)
{
    xcp_hv_domain_info info;
    xcp_hv_error e;
    xcp__obj *vm;
    size_t n, i;
    xcp__obj *const *all;

    if (xcp__hv_domain_info(c->e->hv, domid, &info, &e) == 0) {
        vm = xcp__db_by_uuid(c->db, C(VM), info.vm_uuid);
        if (!vm || busy(vm) || xcp__obj_bool(vm, F(VM, is_control_domain)))
            return 0;
        return reconcile_one(c, vm, &info);
    }
    /* Gone: find the VM that had it (rare path: a domain vanished). */
    all = xcp__db_all(c->db, C(VM), &n);
    for (i = 0; i < n; i++) {
        vm = all[i];
        if (xcp__obj_int(vm, F(VM, domid)) == (int64_t)domid && !busy(vm) &&
            !xcp__obj_bool(vm, F(VM, is_control_domain)))
            return reconcile_one(c, vm, NULL);
    }
    return 0;
}

static int clear_ops(xcp__ctx *c)
{
    int cls, cf;
    size_t i, n;

    for (cls = 0; cls < xcp__nclasses; cls++) {
        xcp__obj *const *all;
        if (xcp__classes[cls].flags & (XK_VOLATILE | XK_NODB))
            continue;
        cf = xcp_class_field_index(cls, "current_operations");
        if (cf < 0)
            continue;
        all = xcp__db_all(c->db, cls, &n);
        for (i = 0; i < n; i++) {
            const xcp_value *cur = xcp__obj_val(all[i], cf);
            xcp_value empty;
            int rc;
            if (cur->kind != XCP_VAL_STRUCT || cur->u.st.n == 0)
                continue;
            xcp_value_set_struct(&empty);
            if ((rc = xcp__db_set(c->db, all[i], cf, &empty)) < 0 ||
                (rc = xcp__update_allowed(c, all[i])) < 0)
                return rc;
        }
    }
    return 0;
}

int xcp__vm_reconcile_all(xcp__ctx *c)
{
    xcp_hv_domain_info *doms = NULL;
    xcp_hv_error e;
    size_t nd = 0, i, n;
    xcp__obj *const *all;
    xcp__obj **vms;
    int rc;

    /* Tasks did not survive the restart: neither do their operations. */
    if ((rc = clear_ops(c)) < 0)
        return rc;
    if (xcp__hv_domain_list(c->e->hv, &doms, &nd, &e) < 0)
        return xcp__internal("cannot list domains: %s", e.message);
    all = xcp__db_all(c->db, C(VM), &n);
    vms = xcp__calloc(n, sizeof(*vms));
    if (!vms) {
        free(doms);
        return xcp__oom();
    }
    memcpy(vms, all, n * sizeof(*vms)); /* the table may move below */
    {
        /* Domains by VM uuid: one pass over each list. */
        xcp__hmap byuuid = {0};
        size_t k;
        for (k = 0; k < nd; k++)
            if (doms[k].domid != 0 &&
                xcp__hmap_put(&byuuid, doms[k].vm_uuid, &doms[k]) < 0)
                rc = xcp__oom();
        for (i = 0; i < n && rc == 0; i++) {
            xcp__obj *vm = vms[i];
            if (xcp__obj_bool(vm, F(VM, is_control_domain)))
                continue;
            rc = reconcile_one(c, vm, xcp__hmap_get(&byuuid,
                                                    xcp__obj_uuid(vm)));
        }
        xcp__hmap_free(&byuuid);
    }
    free(vms);
    free(doms);
    if (rc == 0)
        rc = refresh_host_memory(c);
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
    {"VM.set_is_a_template", set_is_a_template},
    {"VM.clone", vm_clone},
    {"VM.copy", vm_copy},
    {"VM.snapshot", vm_snapshot},
    {"VM.snapshot_with_quiesce", snapshot_with_quiesce},
    {"VM.checkpoint", checkpoint},
    {"VM.revert", revert},
    {"VM.provision", provision},
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
    {"VM.set_HVM_boot_policy", static_setter},
    {"VM.set_domain_type", static_setter},
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
