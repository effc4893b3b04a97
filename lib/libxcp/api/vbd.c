/*
 * VBD.*: a VM's disks: created, hot-plugged, unplugged, media inserted and
 * ejected.
 */
#include "devices.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* The VDI's allowed operations depend on its VBDs' attachment. */
static int vdi_touch(xcp__ctx *c, const char *vdiref)
{
    xcp__obj *vdi = xcp__db_get_cls(c->db, C(VDI), vdiref);

    return vdi ? xcp__update_allowed(c, vdi) : 0;
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
    /* A snapshot whose data was destroyed has nothing to attach. */
    if (vdi && !strcmp(xcp__obj_str(vdi, F(VDI, type)), "cbt_metadata"))
        return XCP__ERR_VDI_INCOMPATIBLE_TYPE(vdi->ref, "cbt_metadata");
    ud = f[F(VBD, userdevice)].kind == XCP_VAL_STRING
             ? f[F(VBD, userdevice)].u.s : "autodetect";
    if (!strcmp(ud, "autodetect")) {
        int d;
        for (d = 0; d < 16; d++) {
            snprintf(dev, sizeof(dev), "%d", d);
            if (!xcp__dev_slot_used(c, vm, F(VM, VBDs), C(VBD),
                                    F(VBD, userdevice), dev))
                break;
        }
        if (d == 16)
            return XCP__ERR_DEVICE_ALREADY_EXISTS("16");
        ud = dev;
    } else if (!xcp__dev_valid_slot(ud, 16)) {
        return XCP__ERR_INVALID_DEVICE(ud);
    } else if (xcp__dev_slot_used(c, vm, F(VM, VBDs), C(VBD),
                                  F(VBD, userdevice), ud)) {
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
    if (!xcp__dev_running(c, xcp__obj_str(vbd, F(VBD, VM)), &domid, &is_hvm))
        return xcp__dev_bad_state(c, xcp__obj_str(vbd, F(VBD, VM)), "running");
    if (xcp__obj_bool(vbd, F(VBD, currently_attached)))
        return XCP__ERR_DEVICE_ALREADY_ATTACHED(vbd->ref);
    if ((rc = xcp__dev_disk(c, vbd, is_hvm, &d, &path, vdev)) < 0)
        return rc;
    if (xcp__hv_disk_plug(c->e->hv, (uint32_t)domid, &d, &e) < 0)
        return xcp__dev_hv_err(&e);
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
    if (xcp__dev_running(c, xcp__obj_str(vbd, F(VBD, VM)), &domid, NULL) &&
        xcp__hv_disk_unplug(c->e->hv, (uint32_t)domid,
                            xcp__obj_str(vbd, F(VBD, device)), force, &e) < 0) {
        if (e.code == -EBUSY)
            return XCP__ERR_DEVICE_DETACH_REJECTED("VBD", vbd->ref,
                                                   e.message);
        return xcp__dev_hv_err(&e);
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
        xcp__dev_running(c, xcp__obj_str(vbd, F(VBD, VM)), &domid, NULL)) {
        if (vdi && (rc = xcp__vdi_path(c, vdi, &path)) < 0)
            return rc;
        if (xcp__hv_cdrom_insert(c->e->hv, (uint32_t)domid,
                                 xcp__obj_str(vbd, F(VBD, device)),
                                 vdi ? path.path : NULL,
                                 vdi ? path.format : NULL, &e) < 0)
            return xcp__dev_hv_err(&e);
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
        return xcp__dev_bad_state(c, vm->ref, "halted");
    return xcp__db_set_str(c->db, vbd, F(VBD, mode), xcp__arg_str(c, 1));
}

static int vbd_assert_attachable(xcp__ctx *c)
{
    xcp__obj *vbd;

    return vbd_arg(c, &vbd);
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
