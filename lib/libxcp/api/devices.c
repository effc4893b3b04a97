/*
 * What the device classes share (devices.h): a VM's state as device
 * operations see it, and its device slots. vbd.c, vif.c and network.c
 * hold VBD.*, VIF.* and network.*.
 */
#include "devices.h"

#include <errno.h>

bool xcp__dev_running(xcp__ctx *c, const char *vmref, int64_t *domid,
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

int xcp__dev_bad_state(xcp__ctx *c, const char *vmref, const char *want)
{
    xcp__obj *vm = xcp__db_get_cls(c->db, C(VM), vmref);

    return xcp__vm_bad_power_state(vmref, vm ? xcp__obj_str(vm, F(VM,
                                                                 power_state))
                                             : "Halted", want);
}

int xcp__dev_hv_err(const xcp_hv_error *e)
{
    const char *why = e->message[0] ? e->message : "hypervisor failure";

    /* what this host cannot do is no bug: the driver's reason says why */
    if (e->code == -ENOTSUP)
        return XCP__ERR_OPERATION_NOT_ALLOWED(why);
    return XCP__ERR_INTERNAL_ERROR(why);
}

int xcp__dev_bridge_ready(xcp__ctx *c, const char *bridge)
{
    xcp_hv_error e;

    if (!bridge || !*bridge ||
        !xcp__hv_supports(c->e->hv, XCP_HV_OP_BRIDGE_ENSURE) ||
        xcp__hv_bridge_ensure(c->e->hv, bridge, &e) == 0)
        return 0;
    if (e.code != -ENODEV)
        return xcp__dev_hv_err(&e);
    xcp__log(XCP__LOG_WARN, "bridge %s is not available: %s", bridge,
             e.message);
    return XCP__ERR_BRIDGE_NOT_AVAILABLE(bridge);
}

bool xcp__dev_slot_used(xcp__ctx *c, xcp__obj *vm, int set_field, int cls,
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

bool xcp__dev_valid_slot(const char *s, int max)
{
    char *end;
    long n;

    if (!*s)
        return false;
    n = strtol(s, &end, 10);
    return !*end && n >= 0 && n < max;
}

void xcp__dev_nic(const xcp__obj *vif, const xcp__obj *net, xcp_hv_nic *n)
{
    memset(n, 0, sizeof(*n));
    xcp__mac_parse(xcp__obj_str(vif, F(VIF, MAC)), n->mac);
    n->bridge = xcp__obj_str(net, F(network, bridge));
    n->devid = (uint32_t)atoi(xcp__obj_str(vif, F(VIF, device)));
    n->mtu = (uint32_t)xcp__obj_int(vif, F(VIF, MTU));
}

int xcp__dev_disk(xcp__ctx *c, const xcp__obj *vbd, bool is_hvm,
                  xcp_hv_disk *d, xcp_sr_vdi_path *path, char vdev[16])
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
