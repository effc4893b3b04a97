/*
 * VM domains: boot files, the domain configuration from the records,
 * state transitions in the database, checks before building, building
 * and destroying domains (lock dropped), and reconciliation of the
 * database with the hypervisor's domains (after a restart, or when a
 * guest halts, reboots or crashes on its own).
 */
#include "devices.h"
#include "vm_int.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

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
int xcp__vm_check_boot_path(const char *field, const char *path)
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

    if ((rc = xcp__vm_check_boot_path(field, path)) < 0)
        return rc;
    if (!realpath(path, real) || stat(real, &st) < 0 ||
        !S_ISREG(st.st_mode) || !xcp__path_below_any(real, kernel_dirs()))
        return bad_boot_file(field, path);
    return 0;
}

/* PV_bootloader: "" (direct boot) or one of the configured names. */
int xcp__vm_check_bootloader(const char *name)
{
    if (!*name || xcp__list_has(xcp__env_str("XCP_PV_BOOTLOADERS",
                                             BOOTLOADERS_DEFAULT),
                                name))
        return 0;
    return XCP__ERR_INVALID_VALUE_WHY("PV_bootloader", name,
                                      "not a supported bootloader");
}

/* The boot fields of a VM record (VM.create). */
int xcp__vm_check_boot_fields(const xcp_value *f)
{
    int rc;

    if ((rc = xcp__vm_check_boot_path("PV_kernel",
                                      f[F(VM, PV_kernel)].u.s)) < 0 ||
        (rc = xcp__vm_check_boot_path("PV_ramdisk",
                                      f[F(VM, PV_ramdisk)].u.s)) < 0)
        return rc;
    return xcp__vm_check_bootloader(f[F(VM, PV_bootloader)].u.s);
}

/* ---- domain configuration from the records ------------------------------ */

static const char *keep(struct domcfg *d, const char *s)
{
    char *c;

    if (d->nstrs >= XCP__ARRAY_LEN(d->strs) || !(c = xcp__strdup(s)))
        return NULL;
    d->strs[d->nstrs++] = c;
    return c;
}

/* A disk of vm whose image could not be found (rc): VM_REQUIRES_SR when
 * its SR is not plugged, else the error as it is. */
static int requires_sr(xcp__ctx *c, const xcp__obj *vm, const xcp__obj *vbd,
                       int rc)
{
    const xcp_error *e = xcp_error_last();
    xcp__obj *vdi = xcp__db_get_cls(c->db, C(VDI),
                                    xcp__obj_str(vbd, F(VBD, VDI)));

    if (vdi && e && (!strcmp(e->name, "SR_NOT_ATTACHED") ||
                     !strcmp(e->name, "SR_HAS_NO_PBDS")))
        return XCP__ERR_VM_REQUIRES_SR(vm->ref,
                                       xcp__obj_str(vdi, F(VDI, SR)));
    return rc;
}

void xcp__vm_domcfg_free(struct domcfg *d)
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

/* The kind of domain vm is built as. */
xcp_hv_domain_type xcp__vm_built_type(const xcp__obj *vm)
{
    if (hvm(vm))
        return XCP_HV_DOMAIN_HVM;
    return !strcmp(domain_type_name(vm), "pvh") ? XCP_HV_DOMAIN_PVH
                                                : XCP_HV_DOMAIN_PV;
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

/* The OS the VM was installed as, for a simulated guest's agent: the
 * base_template_name XAPI records in other_config, else the name of the
 * template it was cloned from; NULL if unknown. */
static const char *guest_os(xcp__ctx *c, xcp__obj *vm, struct domcfg *d)
{
    const char *t = xcp__obj_map_str(vm, F(VM, other_config),
                                     "base_template_name");
    xcp__obj *parent;

    if (t && *t)
        return keep(d, t);
    parent = xcp__db_get_cls(c->db, C(VM), xcp__obj_str(vm, F(VM, parent)));
    if (parent && xcp__obj_bool(parent, F(VM, is_a_template)) &&
        !xcp__obj_bool(parent, F(VM, is_a_snapshot)))
        return keep(d, xcp__obj_str(parent, F(VM, name_label)));
    return NULL;
}

/* Whether this host runs HVM containers (HVM and PVH guests): an hvm-*
 * entry in its capabilities, as Xen reports them. */
static bool host_has_hvm(xcp__ctx *c)
{
    xcp__obj *h = xcp__db_get_cls(c->db, C(host), c->e->host);
    const xcp_value *caps = h ? xcp__obj_val(h, F(host, capabilities)) : NULL;
    size_t i;

    for (i = 0; caps && caps->kind == XCP_VAL_ARRAY && i < caps->u.arr.n;
         i++)
        if (!strncmp(caps->u.arr.items[i].u.s, "hvm-", 4))
            return true;
    return false;
}

int xcp__vm_build_cfg(xcp__ctx *c, xcp__obj *vm, struct domcfg *d,
                      bool resume)
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
    d->cfg.type = xcp__vm_built_type(vm);
    /* HVM and PVH guests need the CPU's virtualisation: XAPI says so */
    if (d->cfg.type != XCP_HV_DOMAIN_PV && !host_has_hvm(c))
        return XCP__ERR_VM_HVM_REQUIRED(vm->ref);
    d->cfg.memory_static_max = (uint64_t)xcp__obj_int(vm,
                                                      F(VM, memory_static_max));
    d->cfg.memory_target = (uint64_t)xcp__obj_int(vm,
                                                  F(VM, memory_dynamic_max));
    d->cfg.vcpus_max = (uint32_t)xcp__obj_int(vm, F(VM, VCPUs_max));
    d->cfg.vcpus_online = (uint32_t)xcp__obj_int(vm, F(VM, VCPUs_at_startup));
    d->cfg.guest_os = guest_os(c, vm, d);
    if (!is_hvm) {
        const char *k = xcp__obj_str(vm, F(VM, PV_kernel));
        const char *r = xcp__obj_str(vm, F(VM, PV_ramdisk));
        const char *bl = xcp__obj_str(vm, F(VM, PV_bootloader));
        char real[PATH_MAX];
        if ((rc = xcp__vm_check_bootloader(bl)) < 0)
            return rc;
        /* nothing to boot: the error XAPI gives when its bootloader
           finds no kernel, rather than the driver's */
        if (!*k && !*bl && !resume)
            return XCP__ERR_BOOTLOADER_FAILED(
                vm->ref, "neither PV-kernel nor PV-bootloader is set: "
                         "nothing to boot");
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
    } else if (!strcmp(xcp__obj_str(vm, F(VM, HVM_boot_policy)),
                       "BIOS order")) {
        const char *o = xcp__obj_map_str(vm, F(VM, HVM_boot_params),
                                         "order");
        d->cfg.boot_order = o && *o ? keep(d, o) : NULL;
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
        size_t k = d->cfg.n_disks;
        if (!vbd || d->cfg.n_disks >= MAX_DISKS ||
            (resume && !xcp__obj_bool(vbd, F(VBD, currently_attached))))
            continue;
        if ((rc = xcp__dev_disk(c, vbd, is_hvm, &d->disks[k], &d->paths[k],
                                d->vdevs[k])) < 0)
            return requires_sr(c, vm, vbd, rc);
        snprintf(d->vbds[k], XCP_REF_MAX, "%s", vbd->ref);
        d->cfg.n_disks++;
    }
    d->cfg.disks = d->disks;
    for (i = 0; vifs->kind == XCP_VAL_ARRAY && i < vifs->u.arr.n; i++) {
        xcp__obj *vif = xcp__db_get_cls(c->db, C(VIF),
                                        vifs->u.arr.items[i].u.s);
        xcp__obj *net;
        xcp_hv_nic *n;
        if (!vif || d->cfg.n_nics >= MAX_NICS ||
            (resume && !xcp__obj_bool(vif, F(VIF, currently_attached))))
            continue;
        n = &d->nics[d->cfg.n_nics];
        net = xcp__db_get_cls(c->db, C(network),
                              xcp__obj_str(vif, F(VIF, network)));
        if (!net)
            return XCP__ERR_VM_REQUIRES_NETWORK(
                vm->ref, xcp__obj_str(vif, F(VIF, network)));
        xcp__dev_nic(vif, net, n);
        n->bridge = keep(d, n->bridge);
        d->cfg.n_nics++;
    }
    d->cfg.nics = d->nics;
    return 0;
}

/* ---- state transitions in the database ------------------------------------ */

static int set_int_if(xcp__ctx *c, xcp__obj *o, int f, int64_t v, bool *chg)
{
    if (xcp__obj_int(o, f) == v)
        return 0;
    *chg = true;
    return xcp__db_set_int(c->db, o, f, v);
}

static int set_str_if(xcp__ctx *c, xcp__obj *o, int f, const char *v,
                      bool *chg)
{
    if (!strcmp(xcp__obj_str(o, f), v))
        return 0;
    *chg = true;
    return xcp__db_set_str(c->db, o, f, v);
}

/* VM_metrics of a live domain from what the hypervisor reports (as XAPI
 * takes them from xenopsd): memory_actual, VCPUs_number and the domain
 * type it really runs as. Only changes are written, so an event that
 * changes nothing appends nothing to the journal. */
int xcp__vm_update_metrics(xcp__ctx *c, xcp__obj *vm,
                           const xcp_hv_domain_info *info)
{
    xcp__obj *m = xcp__db_get_cls(c->db, C(VM_metrics),
                                  xcp__obj_str(vm, F(VM, metrics)));
    bool chg = false;
    int rc;

    if (!m)
        return 0;
    if ((rc = set_int_if(c, m, F(VM_metrics, memory_actual),
                         (int64_t)info->memory_actual, &chg)) < 0 ||
        (rc = set_int_if(c, m, F(VM_metrics, VCPUs_number),
                         info->vcpus_online, &chg)) < 0 ||
        (rc = set_str_if(c, m, F(VM_metrics, current_domain_type),
                         xcp__hv_domain_type_name(info->type), &chg)) < 0)
        return rc;
    if (xcp__obj_bool(m, F(VM_metrics, hvm)) !=
        (info->type == XCP_HV_DOMAIN_HVM)) {
        chg = true;
        if ((rc = xcp__db_set_bool(c->db, m, F(VM_metrics, hvm),
                                   info->type == XCP_HV_DOMAIN_HVM)) < 0)
            return rc;
    }
    if (chg && (rc = xcp__db_set_time(c->db, m, F(VM_metrics, last_updated),
                                      xcp__now())) < 0)
        return rc;
    return 0;
}

int xcp__vm_refresh_metrics(xcp__ctx *c, xcp__obj *vm)
{
    xcp_hv_domain_info info;
    xcp_hv_error e;
    int64_t domid = xcp__obj_int(vm, F(VM, domid));

    if (domid < 0 || xcp__hv_domain_info(c->e->hv, (uint32_t)domid, &info,
                                         &e) < 0)
        return 0; /* gone: the monitor reconciles it */
    return xcp__vm_update_metrics(c, vm, &info);
}

/*
 * VM_metrics of vm, up as domid: from info, what the hypervisor reported;
 * else (a domain the call has just built or restored) from what it was
 * built with, with no driver call on the way of every start and resume
 * (on Xen, domain_info is 4+ xenstore reads: 0.4 s under load), and the
 * domain left to the monitor, which reads it once the operation has
 * ended (xcp__engine_defer) and writes what the hypervisor reports.
 */
static int set_vm_metrics(xcp__ctx *c, xcp__obj *vm, uint32_t domid,
                          bool start, const xcp_hv_domain_info *info)
{
    xcp__obj *m = xcp__db_get_cls(c->db, C(VM_metrics),
                                  xcp__obj_str(vm, F(VM, metrics)));
    xcp_hv_domain_info built;
    int rc;

    if (!m)
        return 0;
    if (start && (rc = xcp__db_set_time(c->db, m, F(VM_metrics, start_time),
                                        xcp__now())) < 0)
        return rc;
    if (!info) {
        memset(&built, 0, sizeof(built));
        built.domid = domid;
        built.type = xcp__vm_built_type(vm);
        built.memory_actual =
            (uint64_t)xcp__obj_int(vm, F(VM, memory_dynamic_max));
        built.vcpus_online =
            (uint32_t)xcp__obj_int(vm, F(VM, VCPUs_at_startup));
        info = &built;
        xcp__engine_defer(c->e, domid);
    }
    return xcp__vm_update_metrics(c, vm, info);
}

static int add_console(xcp__ctx *c, xcp__obj *vm, const char *proto)
{
    xcp__obj *con;
    int rc;

    if ((rc = xcp__db_create(c->db, C(console), NULL, NULL, &con)) < 0 ||
        (rc = xcp__db_set_str(c->db, con, F(console, protocol), proto)) < 0 ||
        (rc = xcp__console_set_location(c, con)) < 0)
        return rc;
    return xcp__db_set_str(c->db, con, F(console, VM), vm->ref);
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

/* The devices' records after a domain change: all attached (a fresh
 * boot), none (halted), or as they were (a suspend keeps, and a resume
 * rebuilds, exactly the devices attached at the time, as XAPI). */
enum devs { DEVS_ALL, DEVS_NONE, DEVS_KEEP };

static int set_vbd(xcp__ctx *c, xcp__obj *vbd, bool is_hvm, enum devs how)
{
    bool on = how == DEVS_ALL ||
              (how == DEVS_KEEP &&
               xcp__obj_bool(vbd, F(VBD, currently_attached)));
    xcp__obj *vdi;
    char dev[16];
    int rc;

    if (on) {
        xcp__vbd_device_name(is_hvm,
                             atoi(xcp__obj_str(vbd, F(VBD, userdevice))), dev);
        if ((rc = xcp__db_set_str(c->db, vbd, F(VBD, device), dev)) < 0)
            return rc;
    }
    if ((how != DEVS_KEEP &&
         (rc = xcp__db_set_bool(c->db, vbd, F(VBD, currently_attached),
                                on)) < 0) ||
        (rc = xcp__update_allowed(c, vbd)) < 0)
        return rc;
    vdi = xcp__db_get_cls(c->db, C(VDI), xcp__obj_str(vbd, F(VBD, VDI)));
    return vdi ? xcp__update_allowed(c, vdi) : 0;
}

static int set_devices(xcp__ctx *c, xcp__obj *vm, enum devs how)
{
    const xcp_value *vbds = xcp__obj_val(vm, F(VM, VBDs));
    const xcp_value *vifs = xcp__obj_val(vm, F(VM, VIFs));
    bool is_hvm = hvm(vm);
    size_t i;
    int rc;

    for (i = 0; vbds->kind == XCP_VAL_ARRAY && i < vbds->u.arr.n; i++) {
        xcp__obj *vbd = xcp__db_get_cls(c->db, C(VBD),
                                        vbds->u.arr.items[i].u.s);
        if (vbd && (rc = set_vbd(c, vbd, is_hvm, how)) < 0)
            return rc;
    }
    for (i = 0; vifs->kind == XCP_VAL_ARRAY && i < vifs->u.arr.n; i++) {
        xcp__obj *vif = xcp__db_get_cls(c->db, C(VIF),
                                        vifs->u.arr.items[i].u.s);
        if (!vif)
            continue;
        if ((how != DEVS_KEEP &&
             (rc = xcp__db_set_bool(c->db, vif, F(VIF, currently_attached),
                                    how == DEVS_ALL)) < 0) ||
            (rc = xcp__update_allowed(c, vif)) < 0)
            return rc;
    }
    return 0;
}

/* xcp__vm_set_running; info: the domain as the hypervisor reported it,
 * NULL for one the call built. */
static int set_running(xcp__ctx *c, xcp__obj *vm, uint32_t domid,
                       bool paused, enum xcp__vm_up how,
                       const xcp_hv_domain_info *info)
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
        (rc = set_devices(c, vm, how == XCP__VM_RESUMED ? DEVS_KEEP
                                                        : DEVS_ALL)) < 0 ||
        (rc = set_vm_metrics(c, vm, domid, how == XCP__VM_BOOTED,
                             info)) < 0 ||
        (how == XCP__VM_BOOTED &&
         (rc = xcp__vm_drop_guest_metrics(c, vm)) < 0))
        return rc;
    /* No read of the guest agent's data here, on the way of every start
     * and resume (a walk of xenstore on Xen): what the agent writes is
     * news for the monitor, which reconciles it, after the operation if
     * it comes during it (xcp__engine_defer). */
    if (!xcp__obj_val(vm, F(VM, consoles))->u.arr.n) {
        if ((rc = add_console(c, vm, "vt100")) < 0 ||
            (hvm(vm) && (rc = add_console(c, vm, "rfb")) < 0))
            return rc;
    }
    return xcp__update_allowed(c, vm);
}

int xcp__vm_set_running(xcp__ctx *c, xcp__obj *vm, uint32_t domid,
                        bool paused, enum xcp__vm_up how)
{
    return set_running(c, vm, domid, paused, how, NULL);
}

/* Domain gone: Halted (or Suspended with its image VDI). */
int xcp__vm_set_stopped(xcp__ctx *c, xcp__obj *vm, const char *state,
                        const char *suspend_vdi)
{
    bool suspended = !strcmp(state, "Suspended");
    xcp__obj *m;
    int rc;

    if ((rc = xcp__db_set_str(c->db, vm, F(VM, power_state), state)) < 0 ||
        (rc = xcp__db_set_int(c->db, vm, F(VM, domid), -1)) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, resident_on),
                              XCP_NULL_REF)) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, suspend_VDI),
                              suspend_vdi ? suspend_vdi : XCP_NULL_REF)) < 0 ||
        (rc = set_devices(c, vm, suspended ? DEVS_KEEP : DEVS_NONE)) < 0 ||
        (rc = drop_consoles(c, vm)) < 0)
        return rc;
    /* As XAPI: a Suspended VM keeps the domain type it will resume as. */
    m = xcp__db_get_cls(c->db, C(VM_metrics), xcp__obj_str(vm, F(VM, metrics)));
    if (m && ((rc = xcp__db_set_int(c->db, m, F(VM_metrics, memory_actual),
                                    0)) < 0 ||
              (rc = xcp__db_set_int(c->db, m, F(VM_metrics, VCPUs_number),
                                    0)) < 0 ||
              (suspended ? 0
                         : (rc = xcp__db_set_str(
                                c->db, m, F(VM_metrics, current_domain_type),
                                "unspecified"))) < 0))
        return rc;
    return xcp__update_allowed(c, vm);
}

int xcp__vm_drop_suspend_vdi(xcp__ctx *c, xcp__obj *vm)
{
    xcp__obj *vdi = xcp__db_get_cls(c->db, C(VDI),
                                    xcp__obj_str(vm, F(VM, suspend_VDI)));
    int rc;

    if (!vdi)
        return 0;
    if ((rc = xcp__db_set_str(c->db, vm, F(VM, suspend_VDI),
                              XCP_NULL_REF)) < 0)
        return rc;
    /* Deleting it (a file of the VM's memory) is no part of the call. */
    return xcp__vdi_delete_later(c, vdi);
}

/* ---- checks before building a domain --------------------------------------- */

int xcp__vm_check_memory_constraints(int64_t smin, int64_t dmin, int64_t dmax,
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
    return xcp__vm_check_memory_constraints(
        xcp__obj_int(vm, F(VM, memory_static_min)),
        xcp__obj_int(vm, F(VM, memory_dynamic_min)),
        xcp__obj_int(vm, F(VM, memory_dynamic_max)),
        xcp__obj_int(vm, F(VM, memory_static_max)));
}

/* May this host build cfg now? HOST_NOT_ENOUGH_FREE_MEMORY with figures. */
int xcp__vm_check_host_fits(xcp__ctx *c, xcp__obj *vm, struct domcfg *d)
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
        return xcp__vm_hv_fail(c, vm->ref, &e);
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

int xcp__vm_refresh_host_memory(xcp__ctx *c)
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

int xcp__vm_bridges_ready(xcp__ctx *c, const xcp_hv_domain_config *cfg)
{
    size_t i;
    int rc;

    for (i = 0; i < cfg->n_nics; i++)
        if ((rc = xcp__dev_bridge_ready(c, cfg->nics[i].bridge)) < 0)
            return rc;
    return 0;
}

/* Build the domain of vm (already checked, op committed). On return the
 * lock is held again and *vm re-resolved (NULL if it vanished). */
int xcp__vm_build_domain(xcp__ctx *c, xcp__obj **vm, bool paused,
                         const char *image, uint32_t *domid)
{
    struct domcfg d;
    xcp_hv_error e;
    char ref[XCP_REF_MAX];
    int rc;

    snprintf(ref, sizeof(ref), "%s", (*vm)->ref);
    if ((rc = xcp__vm_build_cfg(c, *vm, &d, image != NULL)) < 0 ||
        (!image && (rc = xcp__vm_check_host_fits(c, *vm, &d)) < 0) ||
        (rc = xcp__vm_bridges_ready(c, &d.cfg)) < 0) {
        xcp__vm_domcfg_free(&d);
        return rc;
    }
    if ((rc = xcp__ctx_unlock(c)) < 0) {
        xcp__ctx_lock(c);
        xcp__vm_domcfg_free(&d);
        return rc;
    }
    xcp__trace("VM %s: building its domain", ref);
    if (image)
        rc = xcp__hv_domain_restore(c->e->hv, &d.cfg, image, paused, domid,
                                    &e);
    else
        rc = xcp__hv_domain_create(c->e->hv, &d.cfg, paused, domid, &e);
    xcp__trace("VM %s: domain built", ref);
    xcp__ctx_lock(c);
    xcp__vm_domcfg_free(&d);
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
        return xcp__vm_hv_fail(c, ref, &e);
    }
    if (!*vm) {
        xcp__hv_domain_destroy(c->e->hv, *domid, &e);
        return xcp__handle_invalid(C(VM), ref);
    }
    return 0;
}

/* Destroy the domain of vm with the lock dropped. */
int xcp__vm_destroy_domain(xcp__ctx *c, xcp__obj **vm)
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
    xcp__trace("domain %" PRId64 ": destroyed", domid);
    xcp__ctx_lock(c);
    *vm = xcp__db_get_cls(c->db, C(VM), ref);
    if (rc < 0 && e.code != -ESRCH)
        return xcp__vm_hv_fail(c, ref, &e);
    return *vm ? 0 : xcp__handle_invalid(C(VM), ref);
}

/* Ask the guest to stop (poweroff or reboot) and wait until its domain
 * reports SHUTDOWN. The wait parks on the engine's condition, which the
 * domain monitor signals at every hypervisor event: no polling, and the
 * driver is free for other calls meanwhile. */
int xcp__vm_guest_shutdown(xcp__ctx *c, xcp__obj **vm,
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
        return xcp__vm_hv_fail(c, ref, &e);
    xcp__trace("domain %" PRIu32 ": shutdown asked", domid);
    for (;;) {
        if (xcp__hv_domain_info(c->e->hv, domid, &info, &e) < 0) {
            if (e.code != -ESRCH)
                return xcp__vm_hv_fail(c, ref, &e);
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
    xcp__trace("domain %" PRIu32 ": shut down", domid);
    *vm = xcp__db_get_cls(c->db, C(VM), ref);
    return *vm ? 0 : xcp__handle_invalid(C(VM), ref);
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
    if ((rc = xcp__vm_set_stopped(c, vm, "Halted", NULL)) < 0)
        return rc;
    if (strstr(action, "restart")) {
        struct domcfg d;
        if ((rc = xcp__vm_build_cfg(c, vm, &d, false)) == 0 &&
            (rc = xcp__vm_check_host_fits(c, vm, &d)) == 0 &&
            xcp__hv_domain_create(c->e->hv, &d.cfg, false, &domid, &e) == 0)
            rc = xcp__vm_set_running(c, vm, domid, false, XCP__VM_BOOTED);
        xcp__vm_domcfg_free(&d);
        if (rc < 0)
            xcp__log(XCP__LOG_WARN, "VM %s: restart after %s failed",
                     xcp__obj_uuid(vm),
                     xcp__hv_shutdown_reason_name(info->shutdown_reason));
        xcp_error_clear();
    }
    return xcp__vm_refresh_host_memory(c);
}

static bool busy(const xcp__obj *vm)
{
    const xcp_value *cur = xcp__obj_val(vm, F(VM, current_operations));

    return cur->kind == XCP_VAL_STRUCT && cur->u.st.n > 0;
}

/* What the monitor read of a domain from the driver without the engine
 * lock (xcp__vm_monitor_news); reconcile_one acts on it. */
struct news {
    uint32_t domid;
    bool found; /* info holds the domain; else it is gone, */
    bool unsure; /* or the driver could not say (read again later) */
    bool act;   /* its VM may be reconciled (not busy, ours) */
    xcp_hv_domain_info info;
    xcp_hv_guest_datum *data; /* the guest agent's, if any */
    size_t ndata;
};

/* The guest agent's data into vm's VM_guest_metrics: read from the
 * driver now, or (nw) as the monitor read it. */
static int guest_news(xcp__ctx *c, xcp__obj *vm, const struct news *nw)
{
    if (!nw)
        return xcp__vm_update_guest_metrics(c, vm);
    return nw->ndata ? xcp__vm_apply_guest_data(c, vm, nw->data, nw->ndata)
                     : 0;
}

/* vm's state from its domain's info (NULL: the domain is gone); the guest
 * agent's data from nw, else from the driver. */
static int reconcile_one(xcp__ctx *c, xcp__obj *vm,
                         const xcp_hv_domain_info *info,
                         const struct news *nw)
{
    int rc;

    if (!info) {
        if (xcp__vm_is(vm, "Running") || xcp__vm_is(vm, "Paused"))
            return xcp__vm_set_stopped(c, vm, "Halted", NULL);
        return 0;
    }
    if (info->state == XCP_HV_STATE_SHUTDOWN)
        return handle_shutdown(c, vm, info);
    /* Destroyed behind our back (the VM is not busy): Xen may hold the
     * dying domain a while longer, and nothing says when it is gone for
     * good (xenstored fires @releaseDomain once, while it dies). */
    if (info->state == XCP_HV_STATE_DYING)
        return reconcile_one(c, vm, NULL, NULL);
    if (xcp__vm_is(vm, "Halted") || xcp__vm_is(vm, "Suspended") ||
        xcp__obj_int(vm, F(VM, domid)) != (int64_t)info->domid) {
        rc = set_running(c, vm, info->domid,
                         info->state == XCP_HV_STATE_PAUSED,
                         xcp__vm_is(vm, "Suspended") ? XCP__VM_RESUMED
                                                     : XCP__VM_FOUND,
                         info);
        return rc < 0 ? rc : guest_news(c, vm, nw);
    }
    if (xcp__vm_is(vm, "Running") != (info->state == XCP_HV_STATE_RUNNING)) {
        rc = xcp__db_set_str(c->db, vm, F(VM, power_state),
                             info->state == XCP_HV_STATE_PAUSED ? "Paused"
                                                               : "Running");
        if (rc == 0)
            rc = xcp__update_allowed(c, vm);
        if (rc < 0)
            return rc;
    }
    /* A balloon that reached its target, vCPUs that came online, the
     * guest agent's news. */
    if ((rc = xcp__vm_update_metrics(c, vm, info)) < 0)
        return rc;
    return guest_news(c, vm, nw);
}

/* The VM of this host, not busy and not the control domain, whose domain
 * domid was: domain ids are per host, and in a pool another host's VM may
 * have the same one, so only this host's resident VMs count (its
 * resident_VMs, not every VM of the database). */
static xcp__obj *gone_domain_vm(xcp__ctx *c, uint32_t domid)
{
    xcp__obj *host = xcp__db_get_cls(c->db, C(host), c->e->host), *vm;
    const xcp_value *res = host ? xcp__obj_val(host, F(host, resident_VMs))
                                : NULL;
    size_t i;

    for (i = 0; res && res->kind == XCP_VAL_ARRAY && i < res->u.arr.n; i++) {
        vm = xcp__db_get_cls(c->db, C(VM), res->u.arr.items[i].u.s);
        if (vm && xcp__obj_int(vm, F(VM, domid)) == (int64_t)domid &&
            !busy(vm) && !xcp__obj_bool(vm, F(VM, is_control_domain)))
            return vm;
    }
    return NULL;
}

int xcp__vm_reconcile_domain(xcp__ctx *c, uint32_t domid)
{
    xcp_hv_domain_info info;
    xcp_hv_error e;
    xcp__obj *vm;

    if (xcp__hv_domain_info(c->e->hv, domid, &info, &e) == 0) {
        vm = xcp__db_by_uuid(c->db, C(VM), info.vm_uuid);
        if (!vm || xcp__obj_bool(vm, F(VM, is_control_domain)))
            return 0;
        /* The operation owns the VM: its news waits for the end. */
        if (busy(vm)) {
            xcp__engine_defer(c->e, domid);
            return 0;
        }
        return reconcile_one(c, vm, &info, NULL);
    }
    /* The driver could not say (not that it is gone): read it again
     * later rather than take a running domain for a vanished one. */
    if (e.code != -ESRCH) {
        xcp__engine_defer(c->e, domid);
        return 0;
    }
    /* Gone: the VM that had it (rare path: a domain vanished). */
    vm = gone_domain_vm(c, domid);
    return vm ? reconcile_one(c, vm, NULL, NULL) : 0;
}

/* ---- the domain monitor's news, read without the engine lock ------------ */

/*
 * The monitor used to reconcile each domain inside one transaction, with
 * the engine lock held across the driver's reads (on Xen, four or more
 * xenstore reads for a domain's state and a walk of the guest agent's
 * tree): every call waited for them, and for a driver held by a domain
 * being built. Now the driver is read outside the lock and the reads are
 * acted on inside it, if they still hold: a VM whose record changed since
 * the reads began (an operation ran on it meanwhile) is read again under
 * the lock, as before. A domain's own changes after the reads are news
 * of their own.
 */
struct news_batch {
    struct news *nw;
    size_t n, i;  /* i: the one news_apply acts on */
    uint64_t gen; /* the database's generation before the reads */
};

static int news_gen(xcp__ctx *c, void *arg)
{
    ((struct news_batch *)arg)->gen = xcp__db_generation(c->db);
    return 0;
}

/* The VM a domain's news is for, if the monitor may act on it now; a
 * busy VM's news is deferred (it waits for the operation's end). */
static xcp__obj *news_vm(xcp__ctx *c, const struct news *nw)
{
    xcp__obj *vm = xcp__db_by_uuid(c->db, C(VM), nw->info.vm_uuid);

    if (!vm || xcp__obj_bool(vm, F(VM, is_control_domain)))
        return NULL;
    if (busy(vm)) {
        xcp__engine_defer(c->e, nw->domid);
        return NULL;
    }
    return vm;
}

/* Which domains' news will be acted on: before the guest agent's data is
 * read for them (none for a busy VM's domain, as before). */
static int news_sort(xcp__ctx *c, void *arg)
{
    struct news_batch *b = arg;
    size_t i;

    for (i = 0; i < b->n; i++) {
        if (b->nw[i].unsure)
            xcp__engine_defer(c->e, b->nw[i].domid);
        b->nw[i].act = !b->nw[i].unsure &&
                       (!b->nw[i].found || news_vm(c, &b->nw[i]) != NULL);
    }
    return 0;
}

static int news_apply(xcp__ctx *c, void *arg)
{
    struct news_batch *b = arg;
    struct news *nw = &b->nw[b->i];
    xcp__obj *vm;

    if (nw->found) {
        if (!(vm = news_vm(c, nw)))
            return 0;
        if (vm->gen > b->gen) /* changed since: read again */
            return xcp__vm_reconcile_domain(c, nw->domid);
        return reconcile_one(c, vm, &nw->info, nw);
    }
    if (!(vm = gone_domain_vm(c, nw->domid)))
        return 0;
    return vm->gen > b->gen ? xcp__vm_reconcile_domain(c, nw->domid)
                            : reconcile_one(c, vm, NULL, NULL);
}

void xcp__vm_monitor_news(xcp__engine *e, const uint32_t *ids, size_t n)
{
    struct news_batch b = {0};
    xcp_hv_error err;
    size_t i;

    if (n == 0)
        return;
    if (!(b.nw = xcp__calloc(n, sizeof(*b.nw)))) {
        xcp_error_clear();
        return;
    }
    b.n = n;
    xcp__engine_txn(e, news_gen, &b);
    for (i = 0; i < n; i++) {
        b.nw[i].domid = ids[i];
        b.nw[i].found = xcp__hv_domain_info(e->hv, ids[i], &b.nw[i].info,
                                            &err) == 0;
        b.nw[i].unsure = !b.nw[i].found && err.code != -ESRCH;
    }
    xcp__engine_txn(e, news_sort, &b);
    for (i = 0; i < n; i++) {
        struct news *nw = &b.nw[i];
        /* a driver without an agent channel: no data, as before */
        if (nw->act && nw->found &&
            xcp__hv_domain_guest_data(e->hv, nw->domid, &nw->data,
                                      &nw->ndata, &err) < 0) {
            free(nw->data);
            nw->data = NULL;
            nw->ndata = 0;
        }
    }
    for (b.i = 0; b.i < n; b.i++)
        if (b.nw[b.i].act)
            xcp__engine_txn(e, news_apply, &b);
    for (i = 0; i < n; i++)
        free(b.nw[i].data);
    free(b.nw);
    xcp_error_clear();
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

    /* Tasks did not survive the restart: neither do their operations.
     * A pool member's are the coordinator's (its tasks live on). */
    if (!xcp__engine_pool_member(c->e, NULL, 0) && (rc = clear_ops(c)) < 0)
        return rc;
    if (xcp__hv_domain_list(c->e->hv, &doms, &nd, &e) < 0)
        return xcp__vm_hv_fail(c, "", &e); /* the driver's reason */
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
            const xcp_hv_domain_info *d;
            const char *on = xcp__obj_str(vm, F(VM, resident_on));
            if (xcp__obj_bool(vm, F(VM, is_control_domain)))
                continue;
            d = xcp__hmap_get(&byuuid, xcp__obj_uuid(vm));
            /* In a pool, a VM another host runs is that host's to
             * reconcile (a single host's VMs all reside on it). */
            if (!d && on[0] && strcmp(on, c->e->host) != 0 &&
                strcmp(on, "OpaqueRef:NULL") != 0)
                continue;
            rc = reconcile_one(c, vm, d, NULL);
        }
        xcp__hmap_free(&byuuid);
    }
    free(vms);
    free(doms);
    if (rc == 0)
        rc = xcp__vm_refresh_host_memory(c);
    return rc;
}
