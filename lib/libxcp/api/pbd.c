/*
 * PBD.*: the attachment of an SR to a host, over the SR drivers
 * (include/xcp/sys/sr.h).
 */
#include "storage.h"

/* check_sr_location for a PBD of sr. */
static int check_pbd_location(xcp__ctx *c, xcp__obj *sr,
                              const xcp_value *dconf)
{
    return xcp__check_sr_location(c, xcp__obj_str(sr, F(SR, type)), dconf);
}

/* The PBD of sr on host, NULL if none. */
static xcp__obj *pbd_on(xcp__ctx *c, xcp__obj *sr, const char *host)
{
    const xcp_value *pbds = xcp__obj_val(sr, F(SR, PBDs));
    size_t i;

    for (i = 0; pbds->kind == XCP_VAL_ARRAY && i < pbds->u.arr.n; i++) {
        xcp__obj *p = xcp__db_get_cls(c->db, C(PBD), pbds->u.arr.items[i].u.s);
        if (p && !strcmp(xcp__obj_str(p, F(PBD, host)), host))
            return p;
    }
    return NULL;
}

/* As XAPI: an SR that is not shared is attached to one host at a time. */
static int check_sharing(xcp__ctx *c, xcp__obj *sr, xcp__obj *self)
{
    const xcp_value *pbds = xcp__obj_val(sr, F(SR, PBDs));
    size_t i;

    if (xcp__obj_bool(sr, F(SR, shared)))
        return 0;
    for (i = 0; pbds->kind == XCP_VAL_ARRAY && i < pbds->u.arr.n; i++) {
        xcp__obj *p = xcp__db_get_cls(c->db, C(PBD), pbds->u.arr.items[i].u.s);
        if (p && p != self && xcp__obj_bool(p, F(PBD, currently_attached)) &&
            strcmp(xcp__obj_str(p, F(PBD, host)),
                   xcp__obj_str(self, F(PBD, host))))
            return XCP__ERR_SR_NOT_SHARABLE(sr->ref,
                                            xcp__obj_str(p, F(PBD, host)));
    }
    return 0;
}

int xcp__pbd_new(xcp__ctx *c, xcp__obj *sr, xcp__obj *host,
                 const xcp_value *dconf, xcp__obj **out)
{
    xcp__obj *pbd = pbd_on(c, sr, host->ref);
    xcp_value v;
    int rc;

    if (pbd)
        return XCP__ERR_PBD_EXISTS(sr->ref, host->ref, pbd->ref);
    if ((rc = xcp__db_create(c->db, C(PBD), NULL, NULL, &pbd)) < 0 ||
        (rc = xcp__db_set_str(c->db, pbd, F(PBD, host), host->ref)) < 0 ||
        (rc = xcp__db_set_str(c->db, pbd, F(PBD, SR), sr->ref)) < 0 ||
        (rc = xcp_value_copy(&v, dconf)) < 0)
        return rc;
    rc = xcp__db_set(c->db, pbd, F(PBD, device_config), &v);
    xcp_value_dispose(&v);
    if (rc == 0)
        *out = pbd;
    return rc;
}

static int pbd_create(xcp__ctx *c)
{
    const xcp_value *rec = xcp__arg(c, 0);
    xcp__obj *host, *sr, *pbd;
    xcp_value v;
    int rc;

    if ((rc = xcp__ref_obj(c, rec->u.rec.fields[F(PBD, host)].u.s, C(host),
                           &host)) < 0 ||
        (rc = xcp__ref_obj(c, rec->u.rec.fields[F(PBD, SR)].u.s, C(SR),
                           &sr)) < 0 ||
        (rc = check_pbd_location(c, sr,
                                 &rec->u.rec.fields[F(PBD, device_config)])) < 0)
        return rc;
    rc = xcp__pbd_new(c, sr, host, &rec->u.rec.fields[F(PBD, device_config)],
                      &pbd);
    if (rc == 0 && rec->u.rec.fields[F(PBD, other_config)].kind ==
                       XCP_VAL_STRUCT) {
        if ((rc = xcp_value_copy(&v, &rec->u.rec.fields[F(PBD,
                                                          other_config)])) < 0)
            return rc;
        rc = xcp__db_set(c->db, pbd, F(PBD, other_config), &v);
        xcp_value_dispose(&v);
    }
    return rc < 0 ? rc : xcp__ret_ref(c, pbd);
}

static int pbd_destroy(xcp__ctx *c)
{
    xcp__obj *pbd;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(PBD), &pbd)) < 0)
        return rc;
    if (xcp__obj_bool(pbd, F(PBD, currently_attached)))
        return XCP__ERR_OPERATION_NOT_ALLOWED("PBD is currently attached");
    return xcp__db_destroy(c->db, pbd);
}

static int pbd_plug(xcp__ctx *c)
{
    xcp__obj *pbd, *sr;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(PBD), &pbd)) < 0 ||
        (rc = xcp__ref_obj(c, xcp__obj_str(pbd, F(PBD, SR)), C(SR), &sr)) < 0)
        return rc;
    if (xcp__obj_bool(pbd, F(PBD, currently_attached)))
        return 0;
    if (strcmp(xcp__obj_str(pbd, F(PBD, host)), c->e->host))
        return XCP__ERR_HOST_OFFLINE(xcp__obj_str(pbd, F(PBD, host)));
    if ((rc = check_sharing(c, sr, pbd)) < 0)
        return rc;
    return xcp__sr_attach(c, sr, pbd);
}

static int pbd_unplug(xcp__ctx *c)
{
    xcp__obj *pbd, *sr;
    const xcp_value *vdis;
    xcp__srt t;
    xcp_sr_error err;
    size_t i;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(PBD), &pbd)) < 0 ||
        (rc = xcp__ref_obj(c, xcp__obj_str(pbd, F(PBD, SR)), C(SR), &sr)) < 0)
        return rc;
    if (!xcp__obj_bool(pbd, F(PBD, currently_attached)))
        return 0;
    vdis = xcp__obj_val(sr, F(SR, VDIs));
    for (i = 0; vdis->kind == XCP_VAL_ARRAY && i < vdis->u.arr.n; i++) {
        xcp__obj *v = xcp__db_get_cls(c->db, C(VDI), vdis->u.arr.items[i].u.s);
        if (v && xcp__vdi_attached(c, v))
            return XCP__ERR_VDI_IN_USE(v->ref, "unplug");
    }
    if ((rc = xcp__srt_get(c, sr, true, &t)) < 0)
        return rc;
    memset(&err, 0, sizeof(err));
    if (t.type->ops->sr_detach && t.type->ops->sr_detach(&t.t, &err) < 0)
        rc = xcp__sr_fail(&err, sr, NULL, 0);
    xcp__srt_free(&t);
    if (rc < 0)
        return rc;
    if ((rc = xcp__db_set_bool(c->db, pbd, F(PBD, currently_attached),
                               false)) < 0)
        return rc;
    return xcp__update_allowed(c, sr);
}

static int pbd_set_device_config(xcp__ctx *c)
{
    xcp__obj *pbd, *sr;
    int rc = xcp__arg_obj(c, 0, C(PBD), &pbd);

    if (rc < 0)
        return rc;
    sr = xcp__db_get_cls(c->db, C(SR), xcp__obj_str(pbd, F(PBD, SR)));
    if (sr && (rc = check_pbd_location(c, sr, xcp__arg(c, 1))) < 0)
        return rc;
    return xcp__copy_arg(c, pbd, F(PBD, device_config), 1);
}

const struct xcp__impl xcp__impl_pbd[] = {
    {"PBD.create", pbd_create},
    {"PBD.destroy", pbd_destroy},
    {"PBD.plug", pbd_plug},
    {"PBD.unplug", pbd_unplug},
    {"PBD.set_device_config", pbd_set_device_config},
    {NULL, NULL},
};
