/*
 * The SR layer's policy around the drivers: from SR/PBD/VDI records to a
 * driver target, VDI creation, copy-on-write children, copies and
 * deletion, with the records (sizes, chains, SR accounting) kept right.
 */
#include "storage.h"

#include <stdio.h>

int xcp__sr_fail(const xcp_sr_error *err)
{
    const char *name = (err && err->name) ? err->name : "SR_BACKEND_FAILURE";
    const char *reason = (err && err->reason[0]) ? err->reason
                                                 : "storage driver failure";

    if (!strcmp(name, "SR_BACKEND_FAILURE"))
        return xcp__fail(name, "", reason, "", NULL);
    return xcp__fail(name, reason, NULL);
}

void xcp__srt_free(xcp__srt *t)
{
    size_t i;

    for (i = 0; i < t->t.n_device_config; i++) {
        free((char *)t->kv[i].key);
        free((char *)t->kv[i].value);
    }
    free((char *)t->t.sr_uuid);
    free(t->loc);
    memset(t, 0, sizeof(*t));
}

static xcp__obj *local_pbd(xcp__ctx *c, xcp__obj *sr)
{
    const xcp_value *pbds = xcp__obj_val(sr, F(SR, PBDs));
    size_t i;

    for (i = 0; pbds->kind == XCP_VAL_ARRAY && i < pbds->u.arr.n; i++) {
        xcp__obj *p = xcp__db_get_cls(c->db, C(PBD),
                                      pbds->u.arr.items[i].u.s);
        if (p && !strcmp(xcp__obj_str(p, F(PBD, host)), c->e->host))
            return p;
    }
    return NULL;
}

int xcp__srt_get(xcp__ctx *c, xcp__obj *sr, bool any_pbd, xcp__srt *out)
{
    const char *type = xcp__obj_str(sr, F(SR, type));
    xcp__obj *pbd;
    const xcp_value *dc;
    size_t i;

    memset(out, 0, sizeof(*out));
    if (!(out->type = xcp__sr_type_find(type)))
        return xcp__fail("SR_UNKNOWN_DRIVER", type, NULL);
    pbd = local_pbd(c, sr);
    if (!pbd)
        return xcp__fail("SR_HAS_NO_PBDS", sr->ref, NULL);
    if (!any_pbd && !xcp__obj_bool(pbd, F(PBD, currently_attached)))
        return xcp__fail("SR_NOT_ATTACHED", sr->ref, NULL);
    dc = xcp__obj_val(pbd, F(PBD, device_config));
    for (i = 0; dc->kind == XCP_VAL_STRUCT && i < dc->u.st.n &&
                i < XCP__ARRAY_LEN(out->kv); i++) {
        out->kv[i].key = xcp__strdup(dc->u.st.keys[i]);
        out->kv[i].value = xcp_value_to_text(&dc->u.st.vals[i]);
        out->t.n_device_config = i + 1;
        if (!out->kv[i].key || !out->kv[i].value)
            goto oom;
    }
    out->t.device_config = out->kv;
    out->t.sr_uuid = xcp__strdup(xcp__obj_uuid(sr));
    out->loc = xcp__printf("%s/sr/%s", c->e->state_dir, xcp__obj_uuid(sr));
    if (!out->t.sr_uuid || !out->loc)
        goto oom;
    out->t.default_location = out->loc;
    return 0;
oom:
    xcp__srt_free(out);
    return xcp__oom();
}

int xcp__sr_need(xcp__obj *sr, const xcp__srt *t, uint64_t cap)
{
    if (!(t->type->capabilities & cap))
        return xcp__fail("SR_OPERATION_NOT_SUPPORTED", sr->ref, NULL);
    return 0;
}

xcp__obj *xcp__default_sr(xcp__ctx *c)
{
    xcp__obj *pool = xcp__db_get_cls(c->db, C(pool), c->e->pool);

    return pool ? xcp__db_get_cls(c->db, C(SR),
                                  xcp__obj_str(pool, F(pool, default_SR)))
                : NULL;
}

/* Apply a driver's view of a VDI to its record. */
static int apply_info(xcp__ctx *c, xcp__obj *vdi, const xcp_sr_vdi_info *in)
{
    int rc;

    if ((rc = xcp__db_set_int(c->db, vdi, F(VDI, virtual_size),
                              (int64_t)in->virtual_size)) < 0 ||
        (rc = xcp__db_set_int(c->db, vdi, F(VDI, physical_utilisation),
                              (int64_t)in->physical_utilisation)) < 0 ||
        (rc = xcp__db_set_str(c->db, vdi, F(VDI, location),
                              in->location)) < 0 ||
        (rc = xcp__db_map_put_str(c->db, vdi, F(VDI, sm_config), "image-format",
                                  in->format)) < 0)
        return rc;
    if (in->parent_location[0]) {
        char parent[64];
        size_t n = strcspn(in->parent_location, ".");
        snprintf(parent, sizeof(parent), "%.*s", (int)(n < 63 ? n : 63),
                 in->parent_location);
        rc = xcp__db_map_put_str(c->db, vdi, F(VDI, sm_config), "vhd-parent",
                                 parent);
    } else {
        rc = xcp__db_map_del(c->db, vdi, F(VDI, sm_config), "vhd-parent");
    }
    return rc;
}

int xcp__sr_refresh(xcp__ctx *c, xcp__obj *sr)
{
    xcp__srt t;
    xcp_sr_stat st;
    xcp_sr_error err;
    int rc;

    if ((rc = xcp__srt_get(c, sr, false, &t)) < 0)
        return rc;
    memset(&err, 0, sizeof(err));
    if (!t.type->ops->sr_stat) {
        xcp__srt_free(&t);
        return 0;
    }
    rc = t.type->ops->sr_stat(&t.t, &st, &err);
    xcp__srt_free(&t);
    if (rc < 0)
        return xcp__sr_fail(&err);
    if ((rc = xcp__db_set_int(c->db, sr, F(SR, physical_size),
                              (int64_t)st.physical_size)) < 0 ||
        (rc = xcp__db_set_int(c->db, sr, F(SR, physical_utilisation),
                              (int64_t)st.physical_utilisation)) < 0)
        return rc;
    return xcp__update_allowed(c, sr);
}

static int add_allocation(xcp__ctx *c, xcp__obj *sr, int64_t delta)
{
    int64_t cur = xcp__obj_int(sr, F(SR, virtual_allocation));

    return xcp__db_set_int(c->db, sr, F(SR, virtual_allocation),
                           cur + delta < 0 ? 0 : cur + delta);
}

void xcp__ctx_created(xcp__ctx *c, const char *sr, const char *location)
{
    struct xcp__newvdi *n = realloc(c->created,
                                    (c->ncreated + 1) * sizeof(*n));

    if (!n)
        return; /* at worst an orphan image, never a lost one */
    c->created = n;
    snprintf(n[c->ncreated].sr, sizeof(n->sr), "%s", sr);
    snprintf(n[c->ncreated].location, sizeof(n->location), "%s", location);
    c->ncreated++;
}

void xcp__ctx_discard_created(xcp__ctx *c)
{
    xcp__saved_error saved;
    size_t i;

    xcp__error_save(&saved);
    for (i = c->ncreated; i-- > 0;) {
        xcp__obj *sr = xcp__db_get_cls(c->db, C(SR), c->created[i].sr);
        xcp__srt t;
        xcp_sr_error err;
        if (!sr || xcp__srt_get(c, sr, true, &t) < 0)
            continue;
        memset(&err, 0, sizeof(err));
        if (t.type->ops->vdi_destroy &&
            t.type->ops->vdi_destroy(&t.t, c->created[i].location, &err) < 0)
            xcp__log(XCP__LOG_WARN, "cannot remove %s after a failed call: "
                     "%s", c->created[i].location, err.reason);
        xcp__srt_free(&t);
    }
    c->ncreated = 0;
    xcp__error_restore(&saved);
}

static int new_record(xcp__ctx *c, xcp__obj *sr, const xcp_sr_vdi_info *in,
                      const char *name, const char *descr, const char *type,
                      xcp__obj **out)
{
    xcp__obj *v;
    int rc;

    if ((rc = xcp__db_create(c->db, C(VDI), NULL, in->uuid[0] ? in->uuid
                                                             : NULL,
                             &v)) < 0)
        return rc;
    if ((rc = xcp__db_set_str(c->db, v, F(VDI, SR), sr->ref)) < 0 ||
        (rc = xcp__db_set_str(c->db, v, F(VDI, name_label), name)) < 0 ||
        (rc = xcp__db_set_str(c->db, v, F(VDI, name_description),
                              descr ? descr : "")) < 0 ||
        (rc = xcp__db_set_str(c->db, v, F(VDI, type), type)) < 0 ||
        (rc = xcp__db_set_bool(c->db, v, F(VDI, read_only),
                               in->read_only)) < 0 ||
        (rc = apply_info(c, v, in)) < 0 ||
        (rc = add_allocation(c, sr, (int64_t)in->virtual_size)) < 0 ||
        (rc = xcp__update_allowed(c, v)) < 0)
        return rc;
    xcp__ctx_created(c, sr->ref, in->location);
    *out = v;
    return 0;
}

int xcp__vdi_new(xcp__ctx *c, xcp__obj *sr, const char *name,
                 const char *descr, int64_t size, const char *type,
                 const char *format, xcp__obj **out)
{
    xcp__srt t;
    xcp_sr_vdi_create_params p;
    xcp_sr_vdi_info info;
    xcp_sr_error err;
    int rc;

    if (size < 0) {
        char num[32];
        snprintf(num, sizeof(num), "%lld", (long long)size);
        return xcp__fail("INVALID_VALUE", "virtual_size", num, NULL);
    }
    if ((rc = xcp__srt_get(c, sr, false, &t)) < 0)
        return rc;
    if ((rc = xcp__sr_need(sr, &t, XCP_SR_CAP_VDI_CREATE)) < 0)
        goto out;
    memset(&p, 0, sizeof(p));
    memset(&info, 0, sizeof(info));
    memset(&err, 0, sizeof(err));
    p.version = 1;
    p.virtual_size = (uint64_t)size;
    p.format = format;
    if (t.type->ops->vdi_create(&t.t, &p, &info, &err) < 0) {
        rc = xcp__sr_fail(&err);
        goto out;
    }
    rc = new_record(c, sr, &info, name, descr, type, out);
    if (rc < 0) {
        /* The record failed: don't leave the storage behind. */
        xcp__saved_error saved;
        xcp__error_save(&saved);
        t.type->ops->vdi_destroy(&t.t, info.location, &err);
        xcp__error_restore(&saved);
    } else {
        xcp__sr_refresh(c, sr);
    }
out:
    xcp__srt_free(&t);
    return rc;
}

/* The SR of a VDI and its driver target (attached on this host). */
static int vdi_target(xcp__ctx *c, xcp__obj *vdi, xcp__obj **sr,
                      xcp__srt *t)
{
    int rc = xcp__ref_obj(c, xcp__obj_str(vdi, F(VDI, SR)), C(SR), sr);

    return rc < 0 ? rc : xcp__srt_get(c, *sr, false, t);
}

int xcp__vdi_path(xcp__ctx *c, xcp__obj *vdi, xcp_sr_vdi_path *out)
{
    xcp__obj *sr;
    xcp__srt t;
    xcp_sr_error err;
    int rc;

    if ((rc = vdi_target(c, vdi, &sr, &t)) < 0)
        return rc;
    memset(&err, 0, sizeof(err));
    if (!t.type->ops->vdi_path) {
        rc = xcp__fail("SR_OPERATION_NOT_SUPPORTED", sr->ref, NULL);
    } else if (t.type->ops->vdi_path(&t.t, xcp__obj_str(vdi, F(VDI, location)),
                                     out, &err) < 0) {
        rc = xcp__sr_fail(&err);
    }
    xcp__srt_free(&t);
    return rc;
}

int xcp__vdi_delete(xcp__ctx *c, xcp__obj *vdi)
{
    xcp__obj *sr;
    xcp__srt t;
    xcp_sr_error err;
    const xcp_value *vbds = xcp__obj_val(vdi, F(VDI, VBDs));
    int rc;

    if (vbds->kind == XCP_VAL_ARRAY && vbds->u.arr.n > 0)
        return xcp__fail("VDI_IN_USE", vdi->ref, "destroy", NULL);
    if ((rc = vdi_target(c, vdi, &sr, &t)) < 0)
        return rc;
    if ((rc = xcp__sr_need(sr, &t, XCP_SR_CAP_VDI_DELETE)) < 0)
        goto out;
    memset(&err, 0, sizeof(err));
    if (t.type->ops->vdi_destroy(&t.t, xcp__obj_str(vdi, F(VDI, location)),
                                 &err) < 0) {
        rc = xcp__sr_fail(&err);
        goto out;
    }
    if ((rc = add_allocation(c, sr, -xcp__obj_int(vdi, F(VDI, virtual_size)))) <
            0 ||
        (rc = xcp__db_destroy(c->db, vdi)) < 0)
        goto out;
    xcp__sr_refresh(c, sr);
out:
    xcp__srt_free(&t);
    return rc;
}

int xcp__vdi_refresh(xcp__ctx *c, xcp__obj *vdi)
{
    xcp__obj *sr;
    xcp__srt t;
    xcp_sr_vdi_info info;
    xcp_sr_error err;
    int rc;

    if ((rc = vdi_target(c, vdi, &sr, &t)) < 0)
        return rc;
    memset(&err, 0, sizeof(err));
    memset(&info, 0, sizeof(info));
    if (t.type->ops->vdi_stat &&
        t.type->ops->vdi_stat(&t.t, xcp__obj_str(vdi, F(VDI, location)),
                              &info, &err) < 0)
        rc = xcp__sr_fail(&err);
    else if (t.type->ops->vdi_stat)
        rc = apply_info(c, vdi, &info);
    xcp__srt_free(&t);
    return rc;
}

int xcp__vdi_cow(xcp__ctx *c, xcp__obj *vdi, bool snapshot, xcp__obj **out)
{
    xcp__obj *sr, *n;
    xcp__srt t;
    xcp_sr_cow_result res;
    xcp_sr_error err;
    int rc;

    if ((rc = vdi_target(c, vdi, &sr, &t)) < 0)
        return rc;
    if ((rc = xcp__sr_need(sr, &t, snapshot ? XCP_SR_CAP_VDI_SNAPSHOT
                                           : XCP_SR_CAP_VDI_CLONE)) < 0)
        goto out;
    memset(&res, 0, sizeof(res));
    memset(&err, 0, sizeof(err));
    rc = (snapshot ? t.type->ops->vdi_snapshot : t.type->ops->vdi_clone)(
        &t.t, xcp__obj_str(vdi, F(VDI, location)), &res, &err);
    if (rc < 0) {
        rc = xcp__sr_fail(&err);
        goto out;
    }
    if ((rc = apply_info(c, vdi, &res.source)) < 0)
        goto out;
    if ((rc = new_record(c, sr, &res.child, xcp__obj_str(vdi,
                                                         F(VDI, name_label)),
                         xcp__obj_str(vdi, F(VDI, name_description)),
                         xcp__obj_str(vdi, F(VDI, type)), &n)) < 0)
        goto out;
    {
        xcp_value v;
        if ((rc = xcp_value_copy(&v, xcp__obj_val(vdi, F(VDI,
                                                         other_config)))) < 0)
            goto out;
        rc = xcp__db_set(c->db, n, F(VDI, other_config), &v);
        xcp_value_dispose(&v);
        if (rc < 0)
            goto out;
    }
    if ((rc = xcp__db_set_bool(c->db, n, F(VDI, sharable),
                               xcp__obj_bool(vdi, F(VDI, sharable)))) < 0)
        goto out;
    if (snapshot) {
        if ((rc = xcp__db_set_bool(c->db, n, F(VDI, is_a_snapshot),
                                   true)) < 0 ||
            (rc = xcp__db_set_str(c->db, n, F(VDI, snapshot_of),
                                  vdi->ref)) < 0 ||
            (rc = xcp__db_set_time(c->db, n, F(VDI, snapshot_time),
                                   xcp__now())) < 0)
            goto out;
    }
    xcp__sr_refresh(c, sr);
    *out = n;
out:
    xcp__srt_free(&t);
    return rc;
}

int xcp__vdi_full_copy(xcp__ctx *c, xcp__obj *vdi, xcp__obj *dst_sr,
                       xcp__obj **out)
{
    xcp__obj *sr;
    xcp__srt ts, td;
    xcp_sr_vdi_info info;
    xcp_sr_error err;
    int rc;

    if ((rc = xcp__ref_obj(c, xcp__obj_str(vdi, F(VDI, SR)), C(SR), &sr)) < 0)
        return rc;
    if (!dst_sr)
        dst_sr = sr;
    if ((rc = xcp__srt_get(c, sr, false, &ts)) < 0)
        return rc;
    if ((rc = xcp__srt_get(c, dst_sr, false, &td)) < 0) {
        xcp__srt_free(&ts);
        return rc;
    }
    if ((rc = xcp__sr_need(dst_sr, &td, XCP_SR_CAP_VDI_COPY)) < 0)
        goto out;
    memset(&info, 0, sizeof(info));
    memset(&err, 0, sizeof(err));
    if (td.type->ops->vdi_copy(&ts.t, xcp__obj_str(vdi, F(VDI, location)),
                               &td.t, NULL, &info, &err) < 0) {
        rc = xcp__sr_fail(&err);
        goto out;
    }
    rc = new_record(c, dst_sr, &info, xcp__obj_str(vdi, F(VDI, name_label)),
                    xcp__obj_str(vdi, F(VDI, name_description)),
                    xcp__obj_str(vdi, F(VDI, type)), out);
    if (rc == 0)
        xcp__sr_refresh(c, dst_sr);
out:
    xcp__srt_free(&ts);
    xcp__srt_free(&td);
    return rc;
}
