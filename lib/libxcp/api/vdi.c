/*
 * VDI.*: virtual disks, over the SR drivers (include/xcp/sys/sr.h).
 */
#include "storage.h"
#include "devices.h"
#include "../sr/image.h"

#include <stdio.h>
#include <stdlib.h>

static int vdi_create(xcp__ctx *c)
{
    const xcp_value *rec = xcp__arg(c, 0);
    const xcp_value *f = rec->u.rec.fields;
    xcp__obj *sr, *vdi;
    static const int extra[] = {F(VDI, sharable), F(VDI, read_only),
                                F(VDI, other_config), F(VDI, xenstore_data),
                                F(VDI, tags)};
    const char *format;
    size_t i;
    int rc;

    /* only these two have no default here (XAPI wants every constructor
     * field; clients that send fewer keep working) */
    if (f[F(VDI, SR)].kind == XCP_VAL_NONE)
        return XCP__ERR_INTERNAL_ERROR("Field SR not present in rpc");
    if (f[F(VDI, virtual_size)].kind == XCP_VAL_NONE)
        return XCP__ERR_INTERNAL_ERROR("Field virtual_size not present in rpc");
    format = xcp__image_format_arg(&f[F(VDI, sm_config)]);
    if ((rc = xcp__ref_obj(c, f[F(VDI, SR)].u.s, C(SR), &sr)) < 0 ||
        (rc = xcp__image_format_check(format)) < 0)
        return rc;
    rc = xcp__vdi_new(c, sr, f[F(VDI, name_label)].kind == XCP_VAL_STRING
                                 ? f[F(VDI, name_label)].u.s : "",
                      f[F(VDI, name_description)].kind == XCP_VAL_STRING
                          ? f[F(VDI, name_description)].u.s : "",
                      f[F(VDI, virtual_size)].u.i,
                      f[F(VDI, type)].kind == XCP_VAL_STRING
                          ? f[F(VDI, type)].u.s : "user", format, &vdi);
    if (rc < 0)
        return rc;
    if ((rc = xcp__set_fields_from(c, vdi, rec, extra,
                                   XCP__ARRAY_LEN(extra))) < 0)
        return rc;
    if (f[F(VDI, sm_config)].kind == XCP_VAL_STRUCT) {
        const xcp_value *m = &f[F(VDI, sm_config)];
        for (i = 0; i < m->u.st.n; i++) {
            xcp_value v;
            if ((rc = xcp_value_copy(&v, &m->u.st.vals[i])) < 0)
                return rc;
            rc = xcp__db_map_put(c->db, vdi, F(VDI, sm_config),
                                 m->u.st.keys[i], &v);
            xcp_value_dispose(&v);
            if (rc < 0)
                return rc;
        }
    }
    return xcp__ret_ref(c, vdi);
}

static int vdi_arg(xcp__ctx *c, xcp__obj **vdi)
{
    return xcp__arg_obj(c, 0, C(VDI), vdi);
}

static int vdi_busy(xcp__obj *vdi)
{
    const xcp_value *cur = xcp__obj_val(vdi, F(VDI, current_operations));

    if (cur->kind == XCP_VAL_STRUCT && cur->u.st.n > 0)
        return XCP__ERR_OTHER_OPERATION_IN_PROGRESS(
            "VDI", vdi->ref, cur->u.st.vals[0].u.s, cur->u.st.keys[0]);
    return 0;
}

static int vdi_destroy(xcp__ctx *c)
{
    xcp__obj *vdi;
    int rc;

    if ((rc = vdi_arg(c, &vdi)) < 0 || (rc = vdi_busy(vdi)) < 0)
        return rc;
    if (xcp__vdi_attached(c, vdi))
        return XCP__ERR_VDI_IN_USE(vdi->ref, "destroy");
    if ((rc = xcp__destroy_set(c, vdi, F(VDI, VBDs), C(VBD))) < 0)
        return rc;
    return xcp__vdi_delete(c, vdi);
}

static int vdi_forget(xcp__ctx *c)
{
    xcp__obj *vdi;
    int rc;

    if ((rc = vdi_arg(c, &vdi)) < 0)
        return rc;
    if (xcp__vdi_attached(c, vdi))
        return XCP__ERR_VDI_IN_USE(vdi->ref, "forget");
    if ((rc = xcp__destroy_set(c, vdi, F(VDI, VBDs), C(VBD))) < 0)
        return rc;
    return xcp__db_destroy(c->db, vdi);
}

static int vdi_cow_call(xcp__ctx *c, bool snapshot)
{
    xcp__obj *vdi, *n;
    int rc;

    if ((rc = vdi_arg(c, &vdi)) < 0 || (rc = vdi_busy(vdi)) < 0 ||
        (rc = xcp__vdi_check_cbt(c, vdi, snapshot ? "snapshot"
                                                  : "clone")) < 0 ||
        (rc = xcp__vdi_cow(c, vdi, snapshot, &n)) < 0)
        return rc;
    return xcp__ret_ref(c, n);
}

static int vdi_snapshot(xcp__ctx *c) { return vdi_cow_call(c, true); }

static int vdi_clone(xcp__ctx *c) { return vdi_cow_call(c, false); }

static int vdi_copy(xcp__ctx *c)
{
    xcp__obj *vdi, *sr = NULL, *n;
    int rc;

    if ((rc = vdi_arg(c, &vdi)) < 0 ||
        (rc = xcp__vdi_check_cbt(c, vdi, "copy")) < 0)
        return rc;
    if (!xcp_ref_is_null(xcp__arg_str(c, 2)) ||
        !xcp_ref_is_null(xcp__arg_str(c, 3)))
        return XCP__ERR_VALUE_NOT_SUPPORTED("base_vdi/into_vdi",
                         xcp__arg_str(c, 3),
                         "delta copies are not supported yet");
    if (!xcp_ref_is_null(xcp__arg_str(c, 1)) &&
        (rc = xcp__arg_obj(c, 1, C(SR), &sr)) < 0)
        return rc;
    if ((rc = xcp__vdi_full_copy(c, vdi, sr, &n)) < 0)
        return rc;
    return xcp__ret_ref(c, n);
}

/* VDI_TOO_LARGE [vdi, the largest size of its image format]. */
static int too_large(xcp__obj *vdi)
{
    char max[32];

    snprintf(max, sizeof(max), "%llu", (unsigned long long)
             xcp__image_max_size(xcp__obj_map_str(vdi, F(VDI, sm_config),
                                                  "image-format")));
    return XCP__ERR_VDI_TOO_LARGE(vdi->ref, max);
}

/* Whether sr's type has capability cap. */
static bool sr_can(xcp__obj *sr, uint64_t cap)
{
    const xcp_sr_type *type = xcp__sr_type_find(xcp__obj_str(sr, F(SR, type)));

    return type && (type->capabilities & cap);
}

/* One resize of an image by its SR's driver (see do_resize). */
struct resize {
    xcp__srt *t;
    const char *location;
    uint64_t size;
    xcp_sr_vdi_info info;
    xcp_sr_error err;
    bool failed;                /* the driver's call failed: see err */
};

static int resize_image(void *arg)
{
    struct resize *r = arg;

    memset(&r->err, 0, sizeof(r->err));
    memset(&r->info, 0, sizeof(r->info));
    r->failed = r->t->type->ops->vdi_resize(&r->t->t, r->location, r->size,
                                            &r->info, &r->err) < 0;
    return r->failed ? -1 : 0;
}

/*
 * The image of a disk a running VM has attached grown: paused and
 * reopened around the SR's resize when the hypervisor driver can, else
 * by the back end holding it open (then read back), else VDI_IN_USE.
 */
static int resize_live(xcp__ctx *c, xcp__obj *vdi, const xcp__live_disk *d,
                       struct resize *r, const char *op)
{
    xcp_hv_error e;
    uint64_t max;

    if (xcp__live_can_pause(c->e->hv))
        return xcp__vdi_live_change(c, vdi, d, resize_image, r);
    if (!xcp__hv_supports(c->e->hv, XCP_HV_OP_DISK_RESIZE) ||
        !r->t->type->ops->vdi_stat)
        return XCP__ERR_VDI_IN_USE(vdi->ref, op);
    /* the format's limit, which the SR's own resize would enforce */
    max = xcp__image_max_size(xcp__obj_map_str(vdi, F(VDI, sm_config),
                                               "image-format"));
    if (max && r->size > max)
        return too_large(vdi);
    if (xcp__live_stream_stop(c->e, d, &e) < 0 ||
        xcp__hv_disk_resize(c->e->hv, d->domid, d->vdev, r->size, &e) < 0)
        return xcp__live_fail(&e);
    memset(&r->err, 0, sizeof(r->err));
    memset(&r->info, 0, sizeof(r->info));
    r->failed = r->t->type->ops->vdi_stat(&r->t->t, r->location, &r->info,
                                          &r->err) < 0;
    return r->failed ? -1 : 0;
}

/*
 * VDI.resize and VDI.resize_online.  A disk a running VM has attached is
 * resized online (VDI.resize too, as XAPI routes it) when its SR has
 * VDI_RESIZE_ONLINE; VDI.resize of it on an SR without is VDI_IN_USE.
 */
static int do_resize(xcp__ctx *c, bool online)
{
    const char *op = online ? "resize_online" : "resize";
    xcp__obj *vdi, *sr;
    xcp__srt t;
    xcp__live_disk d;
    struct resize r;
    int64_t size = xcp__arg_int(c, 1);
    int64_t old;
    bool attached;
    int live, rc;

    if ((rc = vdi_arg(c, &vdi)) < 0 || (rc = vdi_busy(vdi)) < 0 ||
        (rc = xcp__vdi_check_cbt(c, vdi, op)) < 0 ||
        (rc = xcp__ref_obj(c, xcp__obj_str(vdi, F(VDI, SR)), C(SR), &sr)) < 0)
        return rc;
    old = xcp__obj_int(vdi, F(VDI, virtual_size));
    if (size < old) {
        char n[32];
        snprintf(n, sizeof(n), "%lld", (long long)old);
        return XCP__ERR_VDI_TOO_SMALL(vdi->ref, n);
    }
    attached = xcp__vdi_attached(c, vdi);
    live = attached ? xcp__vdi_live_find(c, vdi, &d) : 0;
    if (attached &&
        (!live || (!online && !sr_can(sr, XCP_SR_CAP_VDI_RESIZE_ONLINE))))
        return XCP__ERR_VDI_IN_USE(vdi->ref, op);
    if ((rc = xcp__srt_get(c, sr, false, &t)) < 0)
        return rc;
    if ((rc = xcp__sr_need(sr, &t, online || live
                                       ? XCP_SR_CAP_VDI_RESIZE_ONLINE
                                       : XCP_SR_CAP_VDI_RESIZE)) < 0)
        goto out;
    if ((rc = xcp__vdi_intent_refresh(c, sr, xcp__obj_str(vdi, F(VDI,
                                                           location)))) < 0)
        goto out;
    memset(&r, 0, sizeof(r));
    r.t = &t;
    r.location = xcp__obj_str(vdi, F(VDI, location));
    r.size = (uint64_t)size;
    rc = live ? resize_live(c, vdi, &d, &r, op) : resize_image(&r);
    if (r.failed) {
        rc = r.err.kind == XCP_SR_ERR_VDI_SIZE ? too_large(vdi)
                                               : xcp__sr_fail(&r.err, sr, vdi,
                                                              size);
        goto out;
    }
    if (rc < 0)
        goto out;
    if ((rc = xcp__db_set_int(c->db, vdi, F(VDI, virtual_size),
                              (int64_t)r.info.virtual_size)) < 0 ||
        (rc = xcp__db_set_int(c->db, sr, F(SR, virtual_allocation),
                              xcp__obj_int(sr, F(SR, virtual_allocation)) +
                                  (int64_t)r.info.virtual_size - old)) < 0)
        goto out;
out:
    xcp__srt_free(&t);
    return rc;
}

static int vdi_resize(xcp__ctx *c) { return do_resize(c, false); }

static int vdi_resize_online(xcp__ctx *c) { return do_resize(c, true); }

static int vdi_update(xcp__ctx *c)
{
    xcp__obj *vdi;
    int rc = vdi_arg(c, &vdi);

    return rc < 0 ? rc : xcp__vdi_refresh(c, vdi);
}

static int vdi_introduce(xcp__ctx *c)
{
    xcp__obj *sr, *vdi;
    xcp__srt t;
    xcp_sr_vdi_info info;
    xcp_sr_error err;
    const char *uuid = xcp__arg_str(c, 0);
    const char *loc = xcp__arg_str(c, 8);
    int rc;

    if ((rc = xcp__arg_obj(c, 3, C(SR), &sr)) < 0 ||
        (rc = xcp__srt_get(c, sr, false, &t)) < 0)
        return rc;
    memset(&err, 0, sizeof(err));
    memset(&info, 0, sizeof(info));
    rc = t.type->ops->vdi_stat ? t.type->ops->vdi_stat(&t.t, loc, &info, &err)
                               : -1;
    xcp__srt_free(&t);
    if (rc < 0)
        return XCP__ERR_VDI_LOCATION_MISSING(sr->ref, loc);
    if (*uuid && xcp__db_by_uuid(c->db, C(VDI), uuid))
        return XCP__ERR_UUID_INVALID("VDI", uuid);
    {
        const xcp_value *vdis = xcp__obj_val(sr, F(SR, VDIs));
        size_t i;
        for (i = 0; vdis->kind == XCP_VAL_ARRAY && i < vdis->u.arr.n; i++) {
            xcp__obj *o = xcp__db_get_cls(c->db, C(VDI),
                                          vdis->u.arr.items[i].u.s);
            if (o && !strcmp(xcp__obj_str(o, F(VDI, location)), loc))
                return XCP__ERR_LOCATION_NOT_UNIQUE(sr->ref, loc);
        }
    }
    if ((rc = xcp__db_create(c->db, C(VDI), NULL, *uuid ? uuid : NULL,
                             &vdi)) < 0 ||
        (rc = xcp__db_set_str(c->db, vdi, F(VDI, name_label),
                              xcp__arg_str(c, 1))) < 0 ||
        (rc = xcp__db_set_str(c->db, vdi, F(VDI, name_description),
                              xcp__arg_str(c, 2))) < 0 ||
        (rc = xcp__db_set_str(c->db, vdi, F(VDI, SR), sr->ref)) < 0 ||
        (rc = xcp__copy_arg(c, vdi, F(VDI, type), 4)) < 0 ||
        (rc = xcp__copy_arg(c, vdi, F(VDI, sharable), 5)) < 0 ||
        (rc = xcp__copy_arg(c, vdi, F(VDI, read_only), 6)) < 0 ||
        (rc = xcp__copy_arg(c, vdi, F(VDI, other_config), 7)) < 0 ||
        (rc = xcp__db_set_str(c->db, vdi, F(VDI, location), loc)) < 0 ||
        (rc = xcp__copy_arg(c, vdi, F(VDI, xenstore_data), 9)) < 0 ||
        (rc = xcp__copy_arg(c, vdi, F(VDI, sm_config), 10)) < 0 ||
        (rc = xcp__copy_arg(c, vdi, F(VDI, managed), 11)) < 0 ||
        (rc = xcp__vdi_apply_info(c, vdi, &info)) < 0 ||
        (rc = xcp__update_allowed(c, vdi)) < 0)
        return rc;
    return xcp__ret_ref(c, vdi);
}

static int vdi_set(xcp__ctx *c, int field, bool detached)
{
    xcp__obj *vdi;
    int rc;

    if ((rc = vdi_arg(c, &vdi)) < 0)
        return rc;
    if (detached && xcp__vdi_attached(c, vdi))
        return XCP__ERR_VDI_IN_USE(vdi->ref, c->msg->wire);
    return xcp__copy_arg(c, vdi, field, 1);
}

static int vdi_set_name_label(xcp__ctx *c)
{
    return vdi_set(c, F(VDI, name_label), false);
}

static int vdi_set_name_description(xcp__ctx *c)
{
    return vdi_set(c, F(VDI, name_description), false);
}

static int vdi_set_read_only(xcp__ctx *c)
{
    return vdi_set(c, F(VDI, read_only), false);
}

static int vdi_set_sharable(xcp__ctx *c)
{
    return vdi_set(c, F(VDI, sharable), false);
}

static int vdi_set_on_boot(xcp__ctx *c)
{
    xcp__obj *vdi;
    int rc;

    if ((rc = vdi_arg(c, &vdi)) < 0 ||
        (rc = xcp__vdi_check_cbt(c, vdi, "set_on_boot")) < 0)
        return rc;
    return vdi_set(c, F(VDI, on_boot), true);
}

static int vdi_set_allow_caching(xcp__ctx *c)
{
    return vdi_set(c, F(VDI, allow_caching), true);
}

/* ---- changed block tracking ------------------------------------------ */

/* The attached target of vdi's SR, with the CBT slots. */
static int cbt_target(xcp__ctx *c, xcp__obj *vdi, xcp__obj **sr,
                      xcp__srt *t)
{
    int rc;

    if ((rc = xcp__ref_obj(c, xcp__obj_str(vdi, F(VDI, SR)), C(SR), sr)) < 0 ||
        (rc = xcp__srt_get(c, *sr, false, t)) < 0)
        return rc;
    if ((rc = xcp__sr_need(*sr, t, XCP_SR_CAP_VDI_CONFIG_CBT)) < 0)
        xcp__srt_free(t);
    return rc;
}

/* One switch of a VDI's tracking by its SR's driver (see set_cbt). */
struct cbt_switch {
    xcp__srt *t;
    const char *location;
    bool on;
    xcp_sr_error err;
    bool failed;
};

static int cbt_image(void *arg)
{
    struct cbt_switch *w = arg;

    memset(&w->err, 0, sizeof(w->err));
    w->failed = w->t->type->ops->vdi_cbt_set(&w->t->t, w->location, w->on,
                                             &w->err) < 0;
    return w->failed ? -1 : 0;
}

/* VDI_IN_USE unless the tracking of vdi, a running VM's disk, can be
 * switched: its back end paused, or by the back end (qcow2 only). */
static int cbt_live_check(xcp__ctx *c, xcp__obj *vdi, const char *op)
{
    const char *fmt = xcp__obj_map_str(vdi, F(VDI, sm_config),
                                       "image-format");

    if (xcp__live_can_pause(c->e->hv))
        return 0;
    if (!xcp__hv_supports(c->e->hv, XCP_HV_OP_DISK_CBT) || !fmt ||
        strcmp(fmt, "qcow2") != 0)
        return XCP__ERR_VDI_IN_USE(vdi->ref, op);
    return 0;
}

/*
 * The tracking of a disk a running VM has attached switched, as XAPI
 * does it live: with the back end paused and reopened around the
 * image's change when the hypervisor driver can, else by the back end
 * that holds the image open (qcow2 only: a VHD's log is ours), else
 * VDI_IN_USE.
 */
static int cbt_live(xcp__ctx *c, xcp__obj *vdi, const xcp__live_disk *d,
                    struct cbt_switch *w, const char *op)
{
    xcp_hv_error e;
    int rc;

    if (xcp__live_can_pause(c->e->hv))
        return xcp__vdi_live_change(c, vdi, d, cbt_image, w);
    if ((rc = cbt_live_check(c, vdi, op)) < 0)
        return rc;
    /* (a copy the back end runs would mark the bitmap: it goes first) */
    if (xcp__live_stream_stop(c->e, d, &e) < 0 ||
        xcp__hv_disk_cbt(c->e->hv, d->domid, d->vdev, XCP__CBT_BITMAP, w->on,
                         &e) < 0)
        return xcp__live_fail(&e);
    return 0;
}

/* VDI.enable_cbt / disable_cbt, on a running VM's disk too (cbt_live). */
static int set_cbt(xcp__ctx *c, bool on)
{
    const char *op = on ? "enable_cbt" : "disable_cbt";
    struct cbt_switch w;
    xcp__live_disk d;
    xcp__obj *vdi, *sr;
    xcp__srt t;
    int live, rc;

    if ((rc = vdi_arg(c, &vdi)) < 0 || (rc = vdi_busy(vdi)) < 0 ||
        (rc = xcp__vdi_check_cbt(c, vdi, op)) < 0)
        return rc;
    if (xcp__obj_bool(vdi, F(VDI, cbt_enabled)) == on)
        return 0;
    live = xcp__vdi_attached(c, vdi) ? xcp__vdi_live_find(c, vdi, &d) : 0;
    if (xcp__vdi_attached(c, vdi) && !live)
        return XCP__ERR_VDI_IN_USE(vdi->ref, op);
    if ((rc = cbt_target(c, vdi, &sr, &t)) < 0)
        return rc;
    /*
     * The image and the record agree whatever ends the call: tracking
     * goes on in the image before the record commits, and off again if
     * the transaction rolls back (out of memory, a failed journal
     * write); it goes off only once the record has committed (until
     * then the image tracks, never less than the record says). That
     * end runs first, then the intent's: a kill between the image's
     * change and the commit has the next open read the record again
     * from the image.
     */
    rc = xcp__vdi_cbt_on_txn_end(c, vdi, sr, false, !on, live ? &d : NULL);
    if (rc == 0)
        rc = xcp__vdi_intent_refresh(c, sr,
                                     xcp__obj_str(vdi, F(VDI, location)));
    memset(&w, 0, sizeof(w));
    w.t = &t;
    w.location = xcp__obj_str(vdi, F(VDI, location));
    w.on = on;
    if (rc == 0 && live && !on)
        rc = cbt_live_check(c, vdi, op);
    else if (rc == 0 && on)
        rc = live ? cbt_live(c, vdi, &d, &w, op) : cbt_image(&w);
    if (w.failed)
        rc = xcp__sr_fail(&w.err, sr, vdi, 0);
    xcp__srt_free(&t);
    if (rc == 0)
        rc = xcp__db_set_bool(c->db, vdi, F(VDI, cbt_enabled), on);
    return rc < 0 ? rc : xcp__update_allowed(c, vdi);
}

static int vdi_enable_cbt(xcp__ctx *c) { return set_cbt(c, true); }

static int vdi_disable_cbt(xcp__ctx *c) { return set_cbt(c, false); }

/* Epochs walked at most from vdi_to back to vdi_from. */
#define MAX_EPOCHS 100000

static int unrelated(const char *why)
{
    char reason[256];

    snprintf(reason, sizeof(reason), "Failed to calculate changed blocks "
             "for given VDIs. [opterr=%s]", why);
    return XCP__ERR_SR_BACKEND_FAILURE("", reason, "");
}

int xcp__vdi_changed_bits(xcp__ctx *c, xcp__obj *from, xcp__obj *to,
                          uint8_t **out, uint64_t *nblocks_out)
{
    xcp__obj *cur, *sr;
    char prev[XCP_SR_UUID_BUFLEN];
    uint64_t nblocks;
    uint8_t *bits = NULL;
    xcp_sr_error err;
    xcp__srt t;
    unsigned steps = 0;
    int rc;

    *out = NULL;
    if (!xcp__obj_bool(from, F(VDI, cbt_enabled)))
        return XCP__ERR_VDI_NO_CBT_METADATA(from->ref);
    if (!xcp__obj_bool(to, F(VDI, cbt_enabled)))
        return XCP__ERR_VDI_NO_CBT_METADATA(to->ref);
    if (strcmp(xcp__obj_str(from, F(VDI, SR)), xcp__obj_str(to, F(VDI, SR))))
        return unrelated("Source and target VDI are in different SRs");
    if ((rc = cbt_target(c, to, &sr, &t)) < 0)
        return rc;
    nblocks = ((uint64_t)xcp__obj_int(to, F(VDI, virtual_size)) +
               XCP__CBT_BLOCK_SIZE - 1) / XCP__CBT_BLOCK_SIZE;
    if (!(bits = xcp__calloc((size_t)(nblocks + 7) / 8 + 1, 1))) {
        rc = XCP_ENOMEM;
        goto out;
    }
    for (cur = to; cur != from; steps++) {
        if (steps > MAX_EPOCHS) {
            rc = unrelated("Source and target VDI are unrelated");
            goto out;
        }
        memset(&err, 0, sizeof(err));
        if (t.type->ops->vdi_cbt_changes(&t.t, xcp__obj_str(cur,
                                                            F(VDI, location)),
                                         bits, nblocks, prev, &err) < 0) {
            rc = xcp__sr_fail(&err, sr, cur, 0);
            goto out;
        }
        cur = prev[0] ? xcp__db_by_uuid(c->db, C(VDI), prev) : NULL;
        if (!cur || strcmp(xcp__obj_str(cur, F(VDI, SR)), sr->ref)) {
            rc = unrelated("Source and target VDI are unrelated");
            goto out;
        }
    }
    *out = bits;
    *nblocks_out = nblocks;
    bits = NULL;
    rc = 0;
out:
    free(bits);
    xcp__srt_free(&t);
    return rc;
}

/*
 * The blocks changed between snapshot vdi_from and vdi_to (a later
 * snapshot of the same disk, or the disk): see xcp__vdi_changed_bits.
 */
static int vdi_list_changed_blocks(xcp__ctx *c)
{
    xcp__obj *from, *to;
    char *b64 = NULL;
    uint64_t nblocks;
    uint8_t *bits = NULL;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(VDI), &from)) < 0 ||
        (rc = xcp__arg_obj(c, 1, C(VDI), &to)) < 0 ||
        (rc = xcp__vdi_check_cbt(c, from, "list_changed_blocks")) < 0 ||
        (rc = xcp__vdi_check_cbt(c, to, "list_changed_blocks")) < 0)
        return rc;
    if (!xcp__obj_bool(from, F(VDI, cbt_enabled)))
        return XCP__ERR_VDI_NO_CBT_METADATA(from->ref);
    if (!xcp__obj_bool(to, F(VDI, cbt_enabled)))
        return XCP__ERR_VDI_NO_CBT_METADATA(to->ref);
    if (xcp__vdi_attached(c, to))
        return XCP__ERR_VDI_IN_USE(to->ref, "list_changed_blocks");
    if ((rc = xcp__vdi_changed_bits(c, from, to, &bits, &nblocks)) < 0)
        return rc;
    if (!(b64 = xcp__base64(bits, (size_t)(nblocks + 7) / 8)))
        rc = XCP_ENOMEM;
    else
        rc = xcp__ret_str(c, b64);
    free(b64);
    free(bits);
    return rc;
}

/* ---- what differs between two VDIs (delta exports) -------------------- */

/* The blocks set in bits, as ranges of [0, size). */
static int ranges_of_bits(const uint8_t *bits, uint64_t nblocks,
                          uint64_t size, xcp__ranges *out)
{
    uint64_t b, off, len;

    for (b = 0; b < nblocks; b++) {
        if (!(bits[b / 8] & (0x80u >> (b % 8))))
            continue;
        off = b * XCP__CBT_BLOCK_SIZE;
        if (off >= size)
            break;
        len = size - off < XCP__CBT_BLOCK_SIZE ? size - off
                                               : XCP__CBT_BLOCK_SIZE;
        if (xcp__ranges_add(out, off, len) < 0)
            return xcp__oom();
    }
    return 0;
}

static int add_range(void *ctx, uint64_t offset, uint64_t length)
{
    return xcp__ranges_add(ctx, offset, length) < 0 ? xcp__oom() : 0;
}

/* The SR's own answer from the two chains; *related false when it has
 * none (no vdi_changes slot, other SRs, chains that share no image). */
static int chain_delta(xcp__ctx *c, xcp__obj *vdi, xcp__obj *base,
                       uint64_t size, xcp__ranges *out, bool *related)
{
    xcp__obj *sr;
    xcp_sr_error err;
    xcp__srt t;
    int rc;

    *related = false;
    if (strcmp(xcp__obj_str(vdi, F(VDI, SR)), xcp__obj_str(base, F(VDI, SR))))
        return 0;
    if ((rc = xcp__ref_obj(c, xcp__obj_str(vdi, F(VDI, SR)), C(SR),
                           &sr)) < 0 ||
        (rc = xcp__srt_get(c, sr, false, &t)) < 0)
        return rc;
    if (t.type->ops->version >= 8 && t.type->ops->vdi_changes) {
        memset(&err, 0, sizeof(err));
        rc = t.type->ops->vdi_changes(&t.t,
                                      xcp__obj_str(vdi, F(VDI, location)),
                                      xcp__obj_str(base, F(VDI, location)),
                                      size, related, add_range, out, &err);
        if (rc < 0 && !xcp_error_last())
            rc = xcp__sr_fail(&err, sr, vdi, 0);
    }
    xcp__srt_free(&t);
    return rc;
}

/* Every range either VDI may hold (what differs is among them). */
static int union_delta(xcp__ctx *c, xcp__obj *vdi, xcp__obj *base,
                       uint64_t size, xcp__ranges *out)
{
    xcp__obj *one[2] = {vdi, base};
    xcp__vdi_stream *s;
    uint64_t len;
    int rc = 0, i;

    for (i = 0; i < 2 && rc == 0; i++) {
        if ((rc = xcp__vdi_stream_open(c, one[i], NULL, &s)) < 0)
            return rc;
        len = xcp__vdi_stream_size(s);
        rc = xcp__vdi_stream_extents(s, 0, len < size ? len : size,
                                     add_range, out);
        xcp__vdi_stream_close(s);
    }
    return rc;
}

int xcp__vdi_delta(xcp__ctx *c, xcp__obj *vdi, xcp__obj *base,
                   xcp__ranges *out, const char **how)
{
    uint64_t size = (uint64_t)xcp__obj_int(vdi, F(VDI, virtual_size));
    uint64_t nblocks;
    uint8_t *bits = NULL;
    bool related;
    int rc;

    if (xcp__obj_bool(vdi, F(VDI, cbt_enabled)) &&
        xcp__obj_bool(base, F(VDI, cbt_enabled))) {
        if (xcp__vdi_changed_bits(c, base, vdi, &bits, &nblocks) == 0) {
            *how = "cbt";
            rc = ranges_of_bits(bits, nblocks, size, out);
            free(bits);
            xcp__ranges_merge(out);
            return rc;
        }
        xcp_error_clear();      /* unrelated epochs: the chains may tell */
    }
    if ((rc = chain_delta(c, vdi, base, size, out, &related)) < 0)
        return rc;
    *how = "chain";
    if (!related) {
        *how = "compare";
        if ((rc = union_delta(c, vdi, base, size, out)) < 0)
            return rc;
    }
    xcp__ranges_merge(out);
    return 0;
}

/* A tracked snapshot loses its data and keeps its tracking state; its
 * type becomes cbt_metadata and its (detached) VBDs go. */
static int vdi_data_destroy(xcp__ctx *c)
{
    xcp__obj *vdi, *sr;
    xcp_sr_error err;
    xcp__srt t;
    int rc;

    if ((rc = vdi_arg(c, &vdi)) < 0 || (rc = vdi_busy(vdi)) < 0 ||
        (rc = xcp__vdi_check_cbt(c, vdi, "data_destroy")) < 0)
        return rc;
    if (xcp__vdi_attached(c, vdi))
        return XCP__ERR_VDI_IN_USE(vdi->ref, "data_destroy");
    if (!strcmp(xcp__obj_str(vdi, F(VDI, type)), "cbt_metadata"))
        return 0;
    if ((rc = cbt_target(c, vdi, &sr, &t)) < 0)
        return rc;
    memset(&err, 0, sizeof(err));
    rc = xcp__vdi_intent(c, 'X', sr, xcp__obj_str(vdi, F(VDI, location)));
    if (rc == 0 &&
        t.type->ops->vdi_data_destroy(&t.t, xcp__obj_str(vdi,
                                                         F(VDI, location)),
                                      &err) < 0)
        rc = xcp__sr_fail(&err, sr, vdi, 0);
    xcp__srt_free(&t);
    return rc < 0 ? rc : xcp__vdi_data_destroyed(c, vdi, sr);
}

int xcp__vdi_data_destroyed(xcp__ctx *c, xcp__obj *vdi, xcp__obj *sr)
{
    /* Its drives have nothing left to show: gone, as in XAPI. */
    int rc = xcp__destroy_set(c, vdi, F(VDI, VBDs), C(VBD));

    if (rc == 0)
        rc = xcp__db_set_str(c->db, vdi, F(VDI, type), "cbt_metadata");
    if (rc == 0)
        rc = xcp__vdi_refresh(c, vdi);
    if (rc == 0)
        xcp__sr_refresh(c, sr);
    return rc < 0 ? rc : xcp__update_allowed(c, vdi);
}

const struct xcp__impl xcp__impl_vdi[] = {
    {"VDI.create", vdi_create},
    {"VDI.destroy", vdi_destroy},
    {"VDI.forget", vdi_forget},
    {"VDI.snapshot", vdi_snapshot},
    {"VDI.clone", vdi_clone},
    {"VDI.copy", vdi_copy},
    {"VDI.resize", vdi_resize},
    {"VDI.resize_online", vdi_resize_online},
    {"VDI.update", vdi_update},
    {"VDI.introduce", vdi_introduce},
    {"VDI.set_name_label", vdi_set_name_label},
    {"VDI.set_name_description", vdi_set_name_description},
    {"VDI.set_read_only", vdi_set_read_only},
    {"VDI.set_sharable", vdi_set_sharable},
    {"VDI.set_on_boot", vdi_set_on_boot},
    {"VDI.set_allow_caching", vdi_set_allow_caching},
    {"VDI.enable_cbt", vdi_enable_cbt},
    {"VDI.disable_cbt", vdi_disable_cbt},
    {"VDI.list_changed_blocks", vdi_list_changed_blocks},
    {"VDI.data_destroy", vdi_data_destroy},
    {NULL, NULL},
};
