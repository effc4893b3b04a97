/*
 * VBD.*, VIF.* and network.*: a VM's disks and NICs (created, hot-plugged,
 * ejected, moved) and the networks they attach to.
 */
#include "storage.h"

#include <errno.h>
#include <stdio.h>
#include <sys/random.h>

static bool running(xcp__ctx *c, const char *vmref, int64_t *domid,
                    bool *is_hvm)
{
    xcp__obj *vm = xcp__db_get_cls(c->db, C(VM), vmref);

    if (!vm || strcmp(xcp__obj_str(vm, F(VM, power_state)), "Running"))
        return false;
    if (domid)
        *domid = xcp__obj_int(vm, F(VM, domid));
    if (is_hvm)
        *is_hvm = xcp__vm_is_hvm(vm);
    return true;
}

/* VM_BAD_POWER_STATE for a device operation that needs `want`. */
static int bad_state(xcp__ctx *c, const char *vmref, const char *want)
{
    xcp__obj *vm = xcp__db_get_cls(c->db, C(VM), vmref);

    return xcp__vm_bad_power_state(vmref, vm ? xcp__obj_str(vm, F(VM,
                                                                 power_state))
                                             : "Halted", want);
}

/* The VDI's allowed operations depend on its VBDs' attachment. */
static int vdi_touch(xcp__ctx *c, const char *vdiref)
{
    xcp__obj *vdi = xcp__db_get_cls(c->db, C(VDI), vdiref);

    return vdi ? xcp__update_allowed(c, vdi) : 0;
}

static int hv_err(const xcp_hv_error *e)
{
    return XCP__ERR_INTERNAL_ERROR(e->message[0] ? e->message
                                   : "hypervisor failure");
}

/* ---- VBD ----------------------------------------------------------------- */

static bool slot_used(xcp__ctx *c, xcp__obj *vm, int set_field, int cls,
                      int dev_field, const char *dev)
{
    const xcp_value *set = xcp__obj_val(vm, set_field);
    size_t i;

    for (i = 0; set->kind == XCP_VAL_ARRAY && i < set->u.arr.n; i++) {
        xcp__obj *o = xcp__db_get_cls(c->db, cls, set->u.arr.items[i].u.s);
        if (o && !strcmp(xcp__obj_str(o, dev_field), dev))
            return true;
    }
    return false;
}

static bool valid_slot(const char *s, int max)
{
    char *end;
    long n;

    if (!*s)
        return false;
    n = strtol(s, &end, 10);
    return !*end && n >= 0 && n < max;
}

static int vbd_create(xcp__ctx *c)
{
    const xcp_value *f = xcp__arg(c, 0)->u.rec.fields;
    xcp__obj *vm, *vdi = NULL, *vbd;
    char dev[8];
    const char *ud, *type, *mode;
    bool empty;
    static const int copy[] = {F(VBD, bootable), F(VBD, mode), F(VBD, type),
                               F(VBD, unpluggable), F(VBD, other_config),
                               F(VBD, qos_algorithm_type),
                               F(VBD, qos_algorithm_params)};
    int rc;

    if ((rc = xcp__ref_obj(c, f[F(VBD, VM)].u.s, C(VM), &vm)) < 0)
        return rc;
    type = f[F(VBD, type)].kind == XCP_VAL_STRING ? f[F(VBD, type)].u.s
                                                  : "Disk";
    mode = f[F(VBD, mode)].kind == XCP_VAL_STRING ? f[F(VBD, mode)].u.s : "RW";
    empty = f[F(VBD, empty)].kind == XCP_VAL_BOOL && f[F(VBD, empty)].u.b;
    if (!empty && (rc = xcp__ref_obj(c, f[F(VBD, VDI)].u.s, C(VDI),
                                     &vdi)) < 0)
        return rc;
    if (empty && strcmp(type, "CD"))
        return XCP__ERR_VBD_NOT_REMOVABLE_MEDIA(XCP_NULL_REF);
    if (!strcmp(type, "CD") && strcmp(mode, "RO"))
        return XCP__ERR_VBD_CDS_MUST_BE_READONLY();
    if (vdi && xcp__obj_bool(vdi, F(VDI, read_only)) && !strcmp(mode, "RW"))
        return XCP__ERR_VDI_READONLY(vdi->ref);
    ud = f[F(VBD, userdevice)].kind == XCP_VAL_STRING
             ? f[F(VBD, userdevice)].u.s : "autodetect";
    if (!strcmp(ud, "autodetect")) {
        int d;
        for (d = 0; d < 16; d++) {
            snprintf(dev, sizeof(dev), "%d", d);
            if (!slot_used(c, vm, F(VM, VBDs), C(VBD), F(VBD, userdevice),
                           dev))
                break;
        }
        if (d == 16)
            return XCP__ERR_DEVICE_ALREADY_EXISTS("16");
        ud = dev;
    } else if (!valid_slot(ud, 16)) {
        return XCP__ERR_INVALID_DEVICE(ud);
    } else if (slot_used(c, vm, F(VM, VBDs), C(VBD), F(VBD, userdevice),
                         ud)) {
        return XCP__ERR_DEVICE_ALREADY_EXISTS(ud);
    }
    if ((rc = xcp__db_create(c->db, C(VBD), NULL, NULL, &vbd)) < 0 ||
        (rc = xcp__db_set_str(c->db, vbd, F(VBD, VM), vm->ref)) < 0 ||
        (rc = xcp__db_set_str(c->db, vbd, F(VBD, VDI),
                              vdi ? vdi->ref : XCP_NULL_REF)) < 0 ||
        (rc = xcp__db_set_str(c->db, vbd, F(VBD, userdevice), ud)) < 0 ||
        (rc = xcp__db_set_bool(c->db, vbd, F(VBD, empty), empty)) < 0)
        return rc;
    if ((rc = xcp__set_fields_from(c, vbd, xcp__arg(c, 0), copy,
                                   XCP__ARRAY_LEN(copy))) < 0)
        return rc;
    if ((rc = xcp__update_allowed(c, vbd)) < 0)
        return rc;
    if (vdi && (rc = xcp__update_allowed(c, vdi)) < 0)
        return rc;
    return xcp__ret_ref(c, vbd);
}

static int vbd_arg(xcp__ctx *c, xcp__obj **vbd)
{
    return xcp__arg_obj(c, 0, C(VBD), vbd);
}

static int vbd_destroy(xcp__ctx *c)
{
    xcp__obj *vbd, *vdi;
    int rc;

    if ((rc = vbd_arg(c, &vbd)) < 0)
        return rc;
    if (xcp__obj_bool(vbd, F(VBD, currently_attached)))
        return XCP__ERR_OPERATION_NOT_ALLOWED(
            "VBD is currently attached to a running VM");
    vdi = xcp__db_get_cls(c->db, C(VDI), xcp__obj_str(vbd, F(VBD, VDI)));
    if ((rc = xcp__db_destroy(c->db, vbd)) < 0)
        return rc;
    return vdi ? xcp__update_allowed(c, vdi) : 0;
}

static int vbd_disk(xcp__ctx *c, xcp__obj *vbd, bool is_hvm, xcp_hv_disk *d,
                    xcp_sr_vdi_path *path, char vdev[16])
{
    xcp__obj *vdi = xcp__db_get_cls(c->db, C(VDI),
                                    xcp__obj_str(vbd, F(VBD, VDI)));
    int slot = atoi(xcp__obj_str(vbd, F(VBD, userdevice)));
    int rc;

    memset(d, 0, sizeof(*d));
    xcp__vbd_device_name(is_hvm, slot, vdev);
    d->vdev = vdev;
    d->cdrom = !strcmp(xcp__obj_str(vbd, F(VBD, type)), "CD");
    d->readonly = d->cdrom || !strcmp(xcp__obj_str(vbd, F(VBD, mode)), "RO");
    if (vdi && !xcp__obj_bool(vbd, F(VBD, empty))) {
        if ((rc = xcp__vdi_path(c, vdi, path)) < 0)
            return rc;
        d->path = path->path;
        d->format = path->format;
    }
    return 0;
}

static int vbd_plug(xcp__ctx *c)
{
    xcp__obj *vbd;
    xcp_hv_disk d;
    xcp_sr_vdi_path path;
    xcp_hv_error e;
    char vdev[16];
    int64_t domid;
    bool is_hvm;
    int rc;

    if ((rc = vbd_arg(c, &vbd)) < 0)
        return rc;
    if (!running(c, xcp__obj_str(vbd, F(VBD, VM)), &domid, &is_hvm))
        return bad_state(c, xcp__obj_str(vbd, F(VBD, VM)), "running");
    if (xcp__obj_bool(vbd, F(VBD, currently_attached)))
        return XCP__ERR_DEVICE_ALREADY_ATTACHED(vbd->ref);
    if ((rc = vbd_disk(c, vbd, is_hvm, &d, &path, vdev)) < 0)
        return rc;
    if (xcp__hv_disk_plug(c->e->hv, (uint32_t)domid, &d, &e) < 0)
        return hv_err(&e);
    if ((rc = xcp__db_set_str(c->db, vbd, F(VBD, device), vdev)) < 0 ||
        (rc = xcp__db_set_bool(c->db, vbd, F(VBD, currently_attached),
                               true)) < 0 ||
        (rc = vdi_touch(c, xcp__obj_str(vbd, F(VBD, VDI)))) < 0)
        return rc;
    return xcp__update_allowed(c, vbd);
}

static int do_unplug(xcp__ctx *c, bool force)
{
    xcp__obj *vbd;
    xcp_hv_error e;
    int64_t domid = -1;
    int rc;

    if ((rc = vbd_arg(c, &vbd)) < 0)
        return rc;
    if (!xcp__obj_bool(vbd, F(VBD, currently_attached)))
        return XCP__ERR_DEVICE_ALREADY_DETACHED(vbd->ref);
    if (!xcp__obj_bool(vbd, F(VBD, unpluggable)))
        return XCP__ERR_VBD_NOT_UNPLUGGABLE(vbd->ref);
    if (running(c, xcp__obj_str(vbd, F(VBD, VM)), &domid, NULL) &&
        xcp__hv_disk_unplug(c->e->hv, (uint32_t)domid,
                            xcp__obj_str(vbd, F(VBD, device)), force, &e) < 0) {
        if (e.code == -EBUSY)
            return XCP__ERR_DEVICE_DETACH_REJECTED("VBD", vbd->ref,
                                                   e.message);
        return hv_err(&e);
    }
    if ((rc = xcp__db_set_bool(c->db, vbd, F(VBD, currently_attached),
                               false)) < 0 ||
        (rc = vdi_touch(c, xcp__obj_str(vbd, F(VBD, VDI)))) < 0)
        return rc;
    return xcp__update_allowed(c, vbd);
}

static int vbd_unplug(xcp__ctx *c) { return do_unplug(c, false); }
static int vbd_unplug_force(xcp__ctx *c) { return do_unplug(c, true); }

static int media(xcp__ctx *c, xcp__obj *vbd, xcp__obj *vdi)
{
    xcp_sr_vdi_path path;
    xcp_hv_error e;
    int64_t domid;
    int rc;

    if (xcp__obj_bool(vbd, F(VBD, currently_attached)) &&
        running(c, xcp__obj_str(vbd, F(VBD, VM)), &domid, NULL)) {
        if (vdi && (rc = xcp__vdi_path(c, vdi, &path)) < 0)
            return rc;
        if (xcp__hv_cdrom_insert(c->e->hv, (uint32_t)domid,
                                 xcp__obj_str(vbd, F(VBD, device)),
                                 vdi ? path.path : NULL,
                                 vdi ? path.format : NULL, &e) < 0)
            return hv_err(&e);
    }
    if ((rc = xcp__db_set_str(c->db, vbd, F(VBD, VDI),
                              vdi ? vdi->ref : XCP_NULL_REF)) < 0 ||
        (rc = xcp__db_set_bool(c->db, vbd, F(VBD, empty), vdi == NULL)) < 0)
        return rc;
    return xcp__update_allowed(c, vbd);
}

static int vbd_insert(xcp__ctx *c)
{
    xcp__obj *vbd, *vdi;
    int rc;

    if ((rc = vbd_arg(c, &vbd)) < 0 ||
        (rc = xcp__arg_obj(c, 1, C(VDI), &vdi)) < 0)
        return rc;
    if (strcmp(xcp__obj_str(vbd, F(VBD, type)), "CD"))
        return XCP__ERR_VBD_NOT_REMOVABLE_MEDIA(vbd->ref);
    if (!xcp__obj_bool(vbd, F(VBD, empty)))
        return XCP__ERR_VBD_NOT_EMPTY(vbd->ref);
    return media(c, vbd, vdi);
}

static int vbd_eject(xcp__ctx *c)
{
    xcp__obj *vbd;
    int rc;

    if ((rc = vbd_arg(c, &vbd)) < 0)
        return rc;
    if (strcmp(xcp__obj_str(vbd, F(VBD, type)), "CD"))
        return XCP__ERR_VBD_NOT_REMOVABLE_MEDIA(vbd->ref);
    if (xcp__obj_bool(vbd, F(VBD, empty)))
        return XCP__ERR_VBD_IS_EMPTY(vbd->ref);
    return media(c, vbd, NULL);
}

static int vbd_set_mode(xcp__ctx *c)
{
    xcp__obj *vbd, *vm;
    int rc;

    if ((rc = vbd_arg(c, &vbd)) < 0 ||
        (rc = xcp__ref_obj(c, xcp__obj_str(vbd, F(VBD, VM)), C(VM), &vm)) < 0)
        return rc;
    if (strcmp(xcp__obj_str(vm, F(VM, power_state)), "Halted"))
        return bad_state(c, vm->ref, "halted");
    return xcp__db_set_str(c->db, vbd, F(VBD, mode), xcp__arg_str(c, 1));
}

static int vbd_assert_attachable(xcp__ctx *c)
{
    xcp__obj *vbd;

    return vbd_arg(c, &vbd);
}

/* ---- VIF ------------------------------------------------------------------- */

int xcp__mac_parse(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    int i, n = 0;

    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%n", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &n) != 6 || n != 17 || s[n])
        return -1;
    for (i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    return 0;
}

int xcp__mac_gen(char out[18])
{
    unsigned char b[6] = {0};
    size_t got = 0;

    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
        if (n > 0)
            got += (size_t)n;
    }
    b[0] = (unsigned char)((b[0] & 0xfc) | 0x02); /* local, unicast */
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3],
             b[4], b[5]);
    return 0;
}

static bool mac_valid(const char *s)
{
    uint8_t m[6];

    return xcp__mac_parse(s, m) == 0;
}

static int vif_create(xcp__ctx *c)
{
    const xcp_value *f = xcp__arg(c, 0)->u.rec.fields;
    xcp__obj *vm, *net, *vif;
    char mac[18];
    const char *dev, *m;
    static const int copy[] = {F(VIF, other_config), F(VIF, qos_algorithm_type),
                               F(VIF, qos_algorithm_params),
                               F(VIF, locking_mode), F(VIF, ipv4_allowed),
                               F(VIF, ipv6_allowed)};
    int rc;

    if ((rc = xcp__ref_obj(c, f[F(VIF, VM)].u.s, C(VM), &vm)) < 0 ||
        (rc = xcp__ref_obj(c, f[F(VIF, network)].u.s, C(network), &net)) < 0)
        return rc;
    dev = f[F(VIF, device)].kind == XCP_VAL_STRING ? f[F(VIF, device)].u.s : "";
    if (!valid_slot(dev, 7))
        return XCP__ERR_INVALID_DEVICE(dev);
    if (slot_used(c, vm, F(VM, VIFs), C(VIF), F(VIF, device), dev))
        return XCP__ERR_DEVICE_ALREADY_EXISTS(dev);
    m = f[F(VIF, MAC)].kind == XCP_VAL_STRING ? f[F(VIF, MAC)].u.s : "";
    if (*m && !mac_valid(m))
        return XCP__ERR_MAC_INVALID(m);
    if (!*m)
        xcp__mac_gen(mac);
    if ((rc = xcp__db_create(c->db, C(VIF), NULL, NULL, &vif)) < 0 ||
        (rc = xcp__db_set_str(c->db, vif, F(VIF, VM), vm->ref)) < 0 ||
        (rc = xcp__db_set_str(c->db, vif, F(VIF, network), net->ref)) < 0 ||
        (rc = xcp__db_set_str(c->db, vif, F(VIF, device), dev)) < 0 ||
        (rc = xcp__db_set_str(c->db, vif, F(VIF, MAC), *m ? m : mac)) < 0 ||
        (rc = xcp__db_set_bool(c->db, vif, F(VIF, MAC_autogenerated),
                               !*m)) < 0 ||
        (rc = xcp__db_set_int(c->db, vif, F(VIF, MTU),
                              f[F(VIF, MTU)].kind == XCP_VAL_INT &&
                                      f[F(VIF, MTU)].u.i > 0
                                  ? f[F(VIF, MTU)].u.i
                                  : xcp__obj_int(net, F(network, MTU)))) < 0)
        return rc;
    if ((rc = xcp__set_fields_from(c, vif, xcp__arg(c, 0), copy,
                                   XCP__ARRAY_LEN(copy))) < 0)
        return rc;
    if ((rc = xcp__update_allowed(c, vif)) < 0)
        return rc;
    return xcp__ret_ref(c, vif);
}

static int vif_arg(xcp__ctx *c, xcp__obj **vif)
{
    return xcp__arg_obj(c, 0, C(VIF), vif);
}

static int vif_destroy(xcp__ctx *c)
{
    xcp__obj *vif;
    int rc;

    if ((rc = vif_arg(c, &vif)) < 0)
        return rc;
    if (xcp__obj_bool(vif, F(VIF, currently_attached)))
        return XCP__ERR_OPERATION_NOT_ALLOWED(
            "VIF is currently attached to a running VM");
    return xcp__db_destroy(c->db, vif);
}

static int nic_of(xcp__ctx *c, xcp__obj *vif, xcp_hv_nic *n)
{
    xcp__obj *net = xcp__db_get_cls(c->db, C(network),
                                    xcp__obj_str(vif, F(VIF, network)));
    memset(n, 0, sizeof(*n));
    if (!net)
        return xcp__handle_invalid(C(network),
                                   xcp__obj_str(vif, F(VIF, network)));
    xcp__mac_parse(xcp__obj_str(vif, F(VIF, MAC)), n->mac);
    n->bridge = xcp__obj_str(net, F(network, bridge));
    n->devid = (uint32_t)atoi(xcp__obj_str(vif, F(VIF, device)));
    n->mtu = (uint32_t)xcp__obj_int(vif, F(VIF, MTU));
    return 0;
}

static int vif_plug(xcp__ctx *c)
{
    xcp__obj *vif;
    xcp_hv_nic n;
    xcp_hv_error e;
    int64_t domid;
    int rc;

    if ((rc = vif_arg(c, &vif)) < 0)
        return rc;
    if (!running(c, xcp__obj_str(vif, F(VIF, VM)), &domid, NULL))
        return bad_state(c, xcp__obj_str(vif, F(VIF, VM)), "running");
    if (xcp__obj_bool(vif, F(VIF, currently_attached)))
        return XCP__ERR_DEVICE_ALREADY_ATTACHED(vif->ref);
    if ((rc = nic_of(c, vif, &n)) < 0)
        return rc;
    if (xcp__hv_nic_plug(c->e->hv, (uint32_t)domid, &n, &e) < 0)
        return hv_err(&e);
    if ((rc = xcp__db_set_bool(c->db, vif, F(VIF, currently_attached),
                               true)) < 0)
        return rc;
    return xcp__update_allowed(c, vif);
}

static int vif_do_unplug(xcp__ctx *c, bool force)
{
    xcp__obj *vif;
    xcp_hv_error e;
    int64_t domid;
    int rc;

    if ((rc = vif_arg(c, &vif)) < 0)
        return rc;
    if (!xcp__obj_bool(vif, F(VIF, currently_attached)))
        return XCP__ERR_DEVICE_ALREADY_DETACHED(vif->ref);
    if (running(c, xcp__obj_str(vif, F(VIF, VM)), &domid, NULL) &&
        xcp__hv_nic_unplug(c->e->hv, (uint32_t)domid,
                           (uint32_t)atoi(xcp__obj_str(vif, F(VIF, device))),
                           force, &e) < 0)
        return hv_err(&e);
    if ((rc = xcp__db_set_bool(c->db, vif, F(VIF, currently_attached),
                               false)) < 0)
        return rc;
    return xcp__update_allowed(c, vif);
}

static int vif_unplug(xcp__ctx *c) { return vif_do_unplug(c, false); }
static int vif_unplug_force(xcp__ctx *c) { return vif_do_unplug(c, true); }

static int vif_move(xcp__ctx *c)
{
    xcp__obj *vif, *net;
    xcp_hv_nic n;
    xcp_hv_error e;
    int64_t domid;
    bool att;
    int rc;

    if ((rc = vif_arg(c, &vif)) < 0 ||
        (rc = xcp__arg_obj(c, 1, C(network), &net)) < 0)
        return rc;
    att = xcp__obj_bool(vif, F(VIF, currently_attached)) &&
          running(c, xcp__obj_str(vif, F(VIF, VM)), &domid, NULL);
    if (att && xcp__hv_nic_unplug(c->e->hv, (uint32_t)domid,
                                  (uint32_t)atoi(xcp__obj_str(vif,
                                                              F(VIF, device))),
                                  true, &e) < 0)
        return hv_err(&e);
    if ((rc = xcp__db_set_str(c->db, vif, F(VIF, network), net->ref)) < 0)
        return rc;
    if (att) {
        if ((rc = nic_of(c, vif, &n)) < 0)
            return rc;
        if (xcp__hv_nic_plug(c->e->hv, (uint32_t)domid, &n, &e) < 0)
            return hv_err(&e);
    }
    return 0;
}

static int vif_set(xcp__ctx *c, int field)
{
    xcp__obj *vif;
    xcp_value v;
    int rc;

    if ((rc = vif_arg(c, &vif)) < 0 ||
        (rc = xcp_value_copy(&v, xcp__arg(c, 1))) < 0)
        return rc;
    rc = xcp__db_set(c->db, vif, field, &v);
    xcp_value_dispose(&v);
    return rc;
}

static int vif_set_locking_mode(xcp__ctx *c)
{
    return vif_set(c, F(VIF, locking_mode));
}
static int vif_set_ipv4_allowed(xcp__ctx *c)
{
    return vif_set(c, F(VIF, ipv4_allowed));
}
static int vif_set_ipv6_allowed(xcp__ctx *c)
{
    return vif_set(c, F(VIF, ipv6_allowed));
}

static int vif_set_edit(xcp__ctx *c, int field, bool add)
{
    xcp__obj *vif;
    int rc;

    if ((rc = vif_arg(c, &vif)) < 0)
        return rc;
    if (add)
        return xcp__db_set_add_str(c->db, vif, field, xcp__arg_str(c, 1));
    return xcp__db_set_del(c->db, vif, field, xcp__arg(c, 1));
}

static int add_ipv4(xcp__ctx *c) { return vif_set_edit(c, F(VIF, ipv4_allowed), true); }
static int rm_ipv4(xcp__ctx *c) { return vif_set_edit(c, F(VIF, ipv4_allowed), false); }
static int add_ipv6(xcp__ctx *c) { return vif_set_edit(c, F(VIF, ipv6_allowed), true); }
static int rm_ipv6(xcp__ctx *c) { return vif_set_edit(c, F(VIF, ipv6_allowed), false); }

static int configure_ip(xcp__ctx *c, bool v6)
{
    xcp__obj *vif;
    int rc;

    if ((rc = vif_arg(c, &vif)) < 0)
        return rc;
    if ((rc = xcp__db_set_str(c->db, vif,
                              v6 ? F(VIF, ipv6_configuration_mode)
                                 : F(VIF, ipv4_configuration_mode),
                              xcp__arg_str(c, 1))) < 0 ||
        (rc = xcp__db_set_str(c->db, vif, v6 ? F(VIF, ipv6_gateway)
                                             : F(VIF, ipv4_gateway),
                              xcp__arg_str(c, 3))) < 0)
        return rc;
    {
        xcp_value set;
        const char *addr = xcp__arg_str(c, 2);
        if ((rc = xcp_value_set_array(&set, *addr ? 1 : 0)) < 0)
            return rc;
        if (*addr && (rc = xcp_value_set_string(&set.u.arr.items[0],
                                                addr)) < 0) {
            xcp_value_dispose(&set);
            return rc;
        }
        rc = xcp__db_set(c->db, vif, v6 ? F(VIF, ipv6_addresses)
                                        : F(VIF, ipv4_addresses), &set);
        xcp_value_dispose(&set);
    }
    return rc;
}

static int configure_ipv4(xcp__ctx *c) { return configure_ip(c, false); }
static int configure_ipv6(xcp__ctx *c) { return configure_ip(c, true); }

/* ---- network -------------------------------------------------------------- */

static int net_create(xcp__ctx *c)
{
    const xcp_value *f = xcp__arg(c, 0)->u.rec.fields;
    xcp__obj *net;
    char bridge[32];
    const char *br;
    static const int copy[] = {F(network, name_label),
                               F(network, name_description),
                               F(network, other_config), F(network, managed),
                               F(network, tags)};
    int rc;

    br = f[F(network, bridge)].kind == XCP_VAL_STRING
             ? f[F(network, bridge)].u.s : "";
    if (!*br) {
        /* The first free xapiN. */
        size_t n;
        int k;
        xcp__obj *const *all = xcp__db_all(c->db, C(network), &n);
        for (k = 0;; k++) {
            size_t j;
            snprintf(bridge, sizeof(bridge), "xapi%d", k);
            for (j = 0; j < n; j++)
                if (!strcmp(xcp__obj_str(all[j], F(network, bridge)), bridge))
                    break;
            if (j == n)
                break;
        }
        br = bridge;
    }
    if ((rc = xcp__db_create(c->db, C(network), NULL, NULL, &net)) < 0 ||
        (rc = xcp__db_set_str(c->db, net, F(network, bridge), br)) < 0 ||
        (rc = xcp__db_set_int(c->db, net, F(network, MTU),
                              f[F(network, MTU)].kind == XCP_VAL_INT &&
                                      f[F(network, MTU)].u.i > 0
                                  ? f[F(network, MTU)].u.i : 1500)) < 0)
        return rc;
    if ((rc = xcp__set_fields_from(c, net, xcp__arg(c, 0), copy,
                                   XCP__ARRAY_LEN(copy))) < 0)
        return rc;
    return xcp__ret_ref(c, net);
}

static int refs_param(const xcp_value *set, char **out)
{
    xcp__buf b = {0};
    size_t i;

    for (i = 0; i < set->u.arr.n; i++) {
        if (i)
            xcp__buf_adds(&b, "; ");
        xcp__buf_adds(&b, set->u.arr.items[i].u.s);
    }
    *out = xcp__buf_steal(&b);
    if (!*out)
        *out = xcp__strdup("");
    return *out ? 0 : xcp__oom();
}

static int net_destroy(xcp__ctx *c)
{
    xcp__obj *net;
    const xcp_value *vifs, *pifs;
    char *p;
    const char *sys;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(network), &net)) < 0)
        return rc;
    sys = xcp__obj_map_str(net, F(network, other_config),
                           "is_host_internal_management_network");
    if (sys && !strcmp(sys, "true"))
        return XCP__ERR_CANNOT_DESTROY_SYSTEM_NETWORK(net->ref);
    vifs = xcp__obj_val(net, F(network, VIFs));
    pifs = xcp__obj_val(net, F(network, PIFs));
    if (vifs->u.arr.n > 0 || pifs->u.arr.n > 0) {
        bool v = vifs->u.arr.n > 0;
        if ((rc = refs_param(v ? vifs : pifs, &p)) < 0)
            return rc;
        rc = v ? XCP__ERR_NETWORK_CONTAINS_VIF(p)
               : XCP__ERR_NETWORK_CONTAINS_PIF(p);
        free(p);
        return rc;
    }
    return xcp__db_destroy(c->db, net);
}

static int net_purpose(xcp__ctx *c, bool add)
{
    xcp__obj *net;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(network), &net)) < 0)
        return rc;
    if (add)
        return xcp__db_set_add_str(c->db, net, F(network, purpose),
                                   xcp__arg_str(c, 1));
    return xcp__db_set_del(c->db, net, F(network, purpose), xcp__arg(c, 1));
}

static int net_add_purpose(xcp__ctx *c) { return net_purpose(c, true); }
static int net_remove_purpose(xcp__ctx *c) { return net_purpose(c, false); }

static int net_set_default_locking_mode(xcp__ctx *c)
{
    xcp__obj *net;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(network), &net)) < 0)
        return rc;
    return xcp__db_set_str(c->db, net, F(network, default_locking_mode),
                           xcp__arg_str(c, 1));
}

const struct xcp__impl xcp__impl_vbd[] = {
    {"VBD.create", vbd_create},
    {"VBD.destroy", vbd_destroy},
    {"VBD.plug", vbd_plug},
    {"VBD.unplug", vbd_unplug},
    {"VBD.unplug_force", vbd_unplug_force},
    {"VBD.insert", vbd_insert},
    {"VBD.eject", vbd_eject},
    {"VBD.set_mode", vbd_set_mode},
    {"VBD.assert_attachable", vbd_assert_attachable},
    {NULL, NULL},
};

const struct xcp__impl xcp__impl_vif[] = {
    {"VIF.create", vif_create},
    {"VIF.destroy", vif_destroy},
    {"VIF.plug", vif_plug},
    {"VIF.unplug", vif_unplug},
    {"VIF.unplug_force", vif_unplug_force},
    {"VIF.move", vif_move},
    {"VIF.set_locking_mode", vif_set_locking_mode},
    {"VIF.set_ipv4_allowed", vif_set_ipv4_allowed},
    {"VIF.add_ipv4_allowed", add_ipv4},
    {"VIF.remove_ipv4_allowed", rm_ipv4},
    {"VIF.set_ipv6_allowed", vif_set_ipv6_allowed},
    {"VIF.add_ipv6_allowed", add_ipv6},
    {"VIF.remove_ipv6_allowed", rm_ipv6},
    {"VIF.configure_ipv4", configure_ipv4},
    {"VIF.configure_ipv6", configure_ipv6},
    {NULL, NULL},
};

const struct xcp__impl xcp__impl_network[] = {
    {"network.create", net_create},
    {"network.destroy", net_destroy},
    {"network.add_purpose", net_add_purpose},
    {"network.remove_purpose", net_remove_purpose},
    {"network.set_default_locking_mode", net_set_default_locking_mode},
    {NULL, NULL},
};
