/*
 * SR.*: storage repositories (pbd.c: their attachment to hosts; vdi.c:
 * their virtual disks), over the SR drivers (include/xcp/sys/sr.h).
 */
#include "storage.h"

#include <stdio.h>
#include <stdlib.h>

/* Directories a file SR may live below, besides the state directory's own
 * (where the local SR goes): XAPI mounts its SRs under /var/run/sr-mount. */
#define SR_ROOTS_DEFAULT "/var/run/sr-mount"

/*
 * A file or iso SR's directory (device_config:location) is a host path
 * the server reads (and for a file SR writes) as root, and its images
 * become readable VDIs: it must lie below one of the SR roots
 * (XCP_SR_ROOTS, ':'-separated) or the state directory, symlinks and ".."
 * resolved. Without a location the file driver uses the state directory's
 * sr area. Other SR types name no host path.
 */
int xcp__check_sr_location(xcp__ctx *c, const char *type,
                           const xcp_value *dconf)
{
    const xcp_value *loc = dconf && dconf->kind == XCP_VAL_STRUCT
                               ? xcp_value_struct_get(dconf, "location")
                               : NULL;
    const char *roots = xcp__env_str("XCP_SR_ROOTS", SR_ROOTS_DEFAULT);
    char *list, *why;
    int rc;

    if ((strcmp(type, "file") != 0 && strcmp(type, "iso") != 0) || !loc ||
        (loc->kind == XCP_VAL_STRING && !*loc->u.s))
        return 0;
    list = xcp__printf("%s:%s", roots, c->e->state_dir);
    if (!list)
        return xcp__oom();
    if (loc->kind == XCP_VAL_STRING && xcp__path_below_any(loc->u.s, list)) {
        free(list);
        return 0;
    }
    why = xcp__printf("SR location invalid [opterr=device_config:location "
                      "must be a directory below one of %s]", list);
    free(list);
    if (!why)
        return xcp__oom();
    rc = XCP__ERR_SR_BACKEND_FAILURE("", why, "");
    free(why);
    return rc;
}

int xcp__copy_arg(xcp__ctx *c, xcp__obj *o, int field, size_t arg)
{
    xcp_value v;
    int rc = xcp_value_copy(&v, xcp__arg(c, arg));

    if (rc < 0)
        return rc;
    rc = xcp__db_set(c->db, o, field, &v);
    xcp_value_dispose(&v);
    return rc;
}

int xcp__sr_attach(xcp__ctx *c, xcp__obj *sr, xcp__obj *pbd)
{
    xcp__srt t;
    xcp_sr_error err;
    int rc;

    if ((rc = xcp__srt_get(c, sr, true, &t)) < 0)
        return rc;
    memset(&err, 0, sizeof(err));
    if (t.type->ops->sr_attach && t.type->ops->sr_attach(&t.t, &err) < 0)
        rc = xcp__sr_fail(&err, sr, NULL, 0);
    xcp__srt_free(&t);
    if (rc < 0)
        return rc;
    if ((rc = xcp__db_set_bool(c->db, pbd, F(PBD, currently_attached),
                               true)) < 0)
        return rc;
    xcp__sr_refresh(c, sr);
    xcp_error_clear();
    return xcp__update_allowed(c, sr);
}

/*
 * The PBDs of a new SR: on host, and for a shared SR on every other host
 * of the pool too, with the same device_config (XAPI's SR.create); only
 * the one on this host is plugged here (the others are plugged by their
 * host, which the pool layer will ask).
 */
static int new_pbds(xcp__ctx *c, xcp__obj *sr, xcp__obj *host,
                    const xcp_value *dconf, bool shared, xcp__obj **local)
{
    xcp__obj *const *hosts;
    xcp__obj *pbd;
    char **refs;
    size_t i, n;
    int rc;

    if ((rc = xcp__pbd_new(c, sr, host, dconf, local)) < 0 || !shared)
        return rc;
    /* Collect first: creating PBDs may move the table under us. */
    hosts = xcp__db_all(c->db, C(host), &n);
    if (!(refs = xcp__calloc(n ? n : 1, sizeof(*refs))))
        return xcp__oom();
    for (i = 0; i < n && rc == 0; i++)
        if (!(refs[i] = xcp__strdup(hosts[i]->ref)))
            rc = xcp__oom();
    for (i = 0; i < n && rc == 0; i++) {
        xcp__obj *h = xcp__db_get_cls(c->db, C(host), refs[i]);
        if (h && h != host && strcmp(h->ref, host->ref))
            rc = xcp__pbd_new(c, sr, h, dconf, &pbd);
    }
    for (i = 0; i < n; i++)
        free(refs[i]);
    free(refs);
    return rc;
}

int xcp__sr_create(xcp__ctx *c, xcp__obj *host, const xcp_value *dconf,
                   const char *name, const char *descr, const char *type,
                   const char *content_type, bool shared, xcp__obj **out)
{
    const xcp_sr_type *st = xcp__sr_type_find(type);
    xcp__obj *sr, *pbd;
    xcp__srt t;
    xcp_sr_error err;
    uint64_t size = 0;
    int rc;

    if (!st)
        return XCP__ERR_SR_UNKNOWN_DRIVER(type);
    if ((rc = xcp__check_sr_location(c, type, dconf)) < 0)
        return rc;
    if ((rc = xcp__db_create(c->db, C(SR), NULL, NULL, &sr)) < 0 ||
        (rc = xcp__db_set_str(c->db, sr, F(SR, name_label), name)) < 0 ||
        (rc = xcp__db_set_str(c->db, sr, F(SR, name_description), descr)) < 0 ||
        (rc = xcp__db_set_str(c->db, sr, F(SR, type), type)) < 0 ||
        (rc = xcp__db_set_str(c->db, sr, F(SR, content_type),
                              *content_type ? content_type
                                            : st->content_type)) < 0 ||
        (rc = xcp__db_set_bool(c->db, sr, F(SR, shared), shared)) < 0 ||
        (rc = new_pbds(c, sr, host, dconf, shared, &pbd)) < 0 ||
        (rc = xcp__srt_get(c, sr, true, &t)) < 0)
        return rc;
    memset(&err, 0, sizeof(err));
    if (t.type->ops->sr_create &&
        t.type->ops->sr_create(&t.t, &size, &err) < 0)
        rc = xcp__sr_fail(&err, sr, NULL, 0);
    xcp__srt_free(&t);
    if (rc < 0)
        return rc;
    if ((rc = xcp__db_set_int(c->db, sr, F(SR, physical_size),
                              (int64_t)size)) < 0 ||
        (rc = xcp__sr_attach(c, sr, pbd)) < 0)
        return rc;
    *out = sr;
    return 0;
}

static int sr_create(xcp__ctx *c)
{
    xcp__obj *host, *sr;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(host), &host)) < 0 ||
        (rc = xcp__image_format_check(
             xcp__image_format_arg(xcp__arg(c, 8)))) < 0 ||
        (rc = xcp__sr_create(c, host, xcp__arg(c, 1), xcp__arg_str(c, 3),
                             xcp__arg_str(c, 4), xcp__arg_str(c, 5),
                             xcp__arg_str(c, 6), xcp__arg_bool(c, 7),
                             &sr)) < 0 ||
        (rc = xcp__copy_arg(c, sr, F(SR, sm_config), 8)) < 0)
        return rc;
    return xcp__ret_ref(c, sr);
}

static int sr_introduce(xcp__ctx *c)
{
    xcp__obj *sr;
    const char *uuid = xcp__arg_str(c, 0);
    int rc;

    if (*uuid && xcp__db_by_uuid(c->db, C(SR), uuid))
        return XCP__ERR_UUID_INVALID("SR", uuid);
    if ((rc = xcp__db_create(c->db, C(SR), NULL, *uuid ? uuid : NULL,
                             &sr)) < 0 ||
        (rc = xcp__db_set_str(c->db, sr, F(SR, name_label),
                              xcp__arg_str(c, 1))) < 0 ||
        (rc = xcp__db_set_str(c->db, sr, F(SR, name_description),
                              xcp__arg_str(c, 2))) < 0 ||
        (rc = xcp__db_set_str(c->db, sr, F(SR, type), xcp__arg_str(c, 3))) < 0 ||
        (rc = xcp__db_set_str(c->db, sr, F(SR, content_type),
                              xcp__arg_str(c, 4))) < 0 ||
        (rc = xcp__db_set_bool(c->db, sr, F(SR, shared),
                               xcp__arg_bool(c, 5))) < 0 ||
        (rc = xcp__copy_arg(c, sr, F(SR, sm_config), 6)) < 0 ||
        (rc = xcp__update_allowed(c, sr)) < 0)
        return rc;
    return xcp__ret_ref(c, sr);
}

static bool any_attached(xcp__ctx *c, xcp__obj *sr)
{
    return xcp__set_member_with(c, sr, F(SR, PBDs), C(PBD),
                                F(PBD, currently_attached)) != NULL;
}

static int forget_records(xcp__ctx *c, xcp__obj *sr)
{
    const xcp_value *vdis = xcp__obj_val(sr, F(SR, VDIs));
    xcp__obj *pool = xcp__db_get_cls(c->db, C(pool), c->e->pool);
    int rc;

    while (vdis->kind == XCP_VAL_ARRAY && vdis->u.arr.n > 0) {
        xcp__obj *v = xcp__db_get_cls(c->db, C(VDI), vdis->u.arr.items[0].u.s);
        if (!v)
            break;
        if ((rc = xcp__destroy_set(c, v, F(VDI, VBDs), C(VBD))) < 0 ||
            (rc = xcp__db_destroy(c->db, v)) < 0)
            return rc;
        vdis = xcp__obj_val(sr, F(SR, VDIs));
    }
    if ((rc = xcp__destroy_set(c, sr, F(SR, PBDs), C(PBD))) < 0)
        return rc;
    if (pool) {
        static const int fields[] = {F(pool, default_SR),
                                     F(pool, suspend_image_SR),
                                     F(pool, crash_dump_SR)};
        size_t i;
        for (i = 0; i < XCP__ARRAY_LEN(fields); i++)
            if (!strcmp(xcp__obj_str(pool, fields[i]), sr->ref) &&
                (rc = xcp__db_set_str(c->db, pool, fields[i],
                                      XCP_NULL_REF)) < 0)
                return rc;
    }
    return xcp__db_destroy(c->db, sr);
}

static int sr_forget(xcp__ctx *c)
{
    xcp__obj *sr;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(SR), &sr)) < 0)
        return rc;
    if (any_attached(c, sr))
        return XCP__ERR_SR_HAS_PBD(sr->ref);
    return forget_records(c, sr);
}

static int sr_destroy(xcp__ctx *c)
{
    xcp__obj *sr;
    xcp__srt t;
    xcp_sr_error err;
    const char *ind;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(SR), &sr)) < 0)
        return rc;
    ind = xcp__obj_map_str(sr, F(SR, other_config), "indestructible");
    if (ind && !strcmp(ind, "true"))
        return XCP__ERR_SR_INDESTRUCTIBLE(sr->ref);
    if (any_attached(c, sr))
        return XCP__ERR_SR_HAS_PBD(sr->ref);
    if (xcp__obj_val(sr, F(SR, VDIs))->u.arr.n > 0)
        return XCP__ERR_SR_NOT_EMPTY();
    if ((rc = xcp__srt_get(c, sr, true, &t)) < 0)
        return rc;
    memset(&err, 0, sizeof(err));
    if (t.type->ops->sr_destroy && t.type->ops->sr_destroy(&t.t, 0, &err) < 0)
        rc = xcp__sr_fail(&err, sr, NULL, 0);
    xcp__srt_free(&t);
    if (rc < 0)
        return rc;
    return forget_records(c, sr);
}

struct scan_ctx {
    xcp__ctx *c;
    xcp__obj *sr;
    xcp__hmap seen; /* locations found on storage */
    xcp_sr_vdi_info *found;
    size_t n, cap;
};

static int scan_cb(void *arg, const xcp_sr_vdi_info *vdi)
{
    struct scan_ctx *s = arg;

    if (vdi->hidden)
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        xcp_sr_vdi_info *f = realloc(s->found, cap * sizeof(*f));
        if (!f)
            return -1;
        s->found = f;
        s->cap = cap;
    }
    s->found[s->n++] = *vdi;
    return 0;
}

/* A VDI that scan finds in a library of ISO files (content_type iso) is
 * named after its file, as XCP-ng's ISO SR names it; images found in
 * other SRs stay unnamed. */
static int scan_name(xcp__ctx *c, const xcp__srt *t, xcp__obj *v,
                     const xcp_sr_vdi_info *found)
{
    if (strcmp(t->type->content_type, "iso") != 0)
        return 0;
    return xcp__db_set_str(c->db, v, F(VDI, name_label), found->location);
}

static int sr_scan(xcp__ctx *c)
{
    struct scan_ctx s;
    xcp__obj *sr;
    xcp__srt t;
    xcp_sr_error err;
    const xcp_value *vdis;
    size_t i;
    int rc;

    if ((rc = xcp__arg_obj(c, 0, C(SR), &sr)) < 0 ||
        (rc = xcp__srt_get(c, sr, false, &t)) < 0)
        return rc;
    memset(&s, 0, sizeof(s));
    s.c = c;
    s.sr = sr;
    memset(&err, 0, sizeof(err));
    if ((rc = xcp__sr_need(sr, &t, XCP_SR_CAP_SR_SCAN)) < 0 ||
        t.type->ops->sr_scan(&t.t, scan_cb, &s, &err) < 0) {
        if (rc == 0)
            rc = xcp__sr_fail(&err, sr, NULL, 0);
        goto out;
    }
    for (i = 0; i < s.n; i++)
        xcp__hmap_put(&s.seen, s.found[i].location, &s.found[i]);
    /* Records: refresh, or mark missing. */
    vdis = xcp__obj_val(sr, F(SR, VDIs));
    for (i = 0; vdis->kind == XCP_VAL_ARRAY && i < vdis->u.arr.n; i++) {
        xcp__obj *v = xcp__db_get_cls(c->db, C(VDI), vdis->u.arr.items[i].u.s);
        xcp_sr_vdi_info *f;
        if (!v)
            continue;
        f = xcp__hmap_get(&s.seen, xcp__obj_str(v, F(VDI, location)));
        if ((rc = xcp__db_set_bool(c->db, v, F(VDI, missing), !f)) < 0)
            goto out;
        if (f) {
            if ((rc = xcp__vdi_apply_info(c, v, f)) < 0)
                goto out;
            xcp__hmap_del(&s.seen, f->location);
        }
    }
    /* Storage the records don't know: introduce it. */
    for (i = 0; i < s.n; i++) {
        xcp__obj *v;
        if (!xcp__hmap_get(&s.seen, s.found[i].location))
            continue;
        if (s.found[i].uuid[0] &&
            xcp__db_by_uuid(c->db, C(VDI), s.found[i].uuid))
            continue;
        if ((rc = xcp__db_create(c->db, C(VDI), NULL,
                                 s.found[i].uuid[0] ? s.found[i].uuid : NULL,
                                 &v)) < 0 ||
            (rc = xcp__db_set_str(c->db, v, F(VDI, SR), sr->ref)) < 0 ||
            (rc = xcp__vdi_apply_info(c, v, &s.found[i])) < 0 ||
            (rc = xcp__db_set_bool(c->db, v, F(VDI, read_only),
                                   s.found[i].read_only)) < 0 ||
            (rc = scan_name(c, &t, v, &s.found[i])) < 0 ||
            (rc = xcp__update_allowed(c, v)) < 0)
            goto out;
        xcp__db_set_int(c->db, sr, F(SR, virtual_allocation),
                        xcp__obj_int(sr, F(SR, virtual_allocation)) +
                            (int64_t)s.found[i].virtual_size);
    }
    xcp__sr_refresh(c, sr);
out:
    xcp__hmap_free(&s.seen);
    free(s.found);
    xcp__srt_free(&t);
    return rc;
}

static int sr_update(xcp__ctx *c)
{
    xcp__obj *sr;
    int rc = xcp__arg_obj(c, 0, C(SR), &sr);

    return rc < 0 ? rc : xcp__sr_refresh(c, sr);
}

struct probe_ctx {
    xcp__buf b;
};

static int probe_cb(void *arg, const xcp_sr_probe_info *p)
{
    struct probe_ctx *pc = arg;

    xcp__buf_printf(&pc->b, "<SR><UUID>%s</UUID><Type>%s</Type>"
                    "<Path>%s</Path></SR>", p->sr_uuid, p->type, p->path);
    return 0;
}

static int sr_probe(xcp__ctx *c)
{
    const xcp_sr_type *st = xcp__sr_type_find(xcp__arg_str(c, 2));
    const xcp_value *dc = xcp__arg(c, 1);
    struct probe_ctx pc;
    xcp_sr_target t;
    xcp_sr_kv kv[32];
    xcp_sr_error err;
    size_t i;
    int rc = 0;
    char *s;

    if (!st)
        return XCP__ERR_SR_UNKNOWN_DRIVER(xcp__arg_str(c, 2));
    if (!st->ops->sr_probe)
        return XCP__ERR_SR_OPERATION_NOT_SUPPORTED(XCP_NULL_REF);
    if ((rc = xcp__check_sr_location(c, xcp__arg_str(c, 2), dc)) < 0)
        return rc;
    memset(&t, 0, sizeof(t));
    for (i = 0; i < dc->u.st.n && i < XCP__ARRAY_LEN(kv); i++) {
        kv[i].key = dc->u.st.keys[i];
        kv[i].value = dc->u.st.vals[i].kind == XCP_VAL_STRING
                          ? dc->u.st.vals[i].u.s : "";
    }
    t.device_config = kv;
    t.n_device_config = i;
    memset(&pc, 0, sizeof(pc));
    memset(&err, 0, sizeof(err));
    xcp__buf_adds(&pc.b, "<?xml version=\"1.0\" ?><SRlist>");
    if (st->ops->sr_probe(&t, probe_cb, &pc, &err) < 0) {
        xcp__buf_free(&pc.b);
        return xcp__sr_fail(&err, NULL, NULL, 0);
    }
    xcp__buf_adds(&pc.b, "</SRlist>");
    if (!(s = xcp__buf_steal(&pc.b)))
        return xcp__oom();
    rc = xcp__ret_str(c, s);
    free(s);
    return rc;
}

static int sr_set(xcp__ctx *c, int field)
{
    xcp__obj *sr;
    int rc = xcp__arg_obj(c, 0, C(SR), &sr);

    return rc < 0 ? rc : xcp__copy_arg(c, sr, field, 1);
}

static int sr_set_name_label(xcp__ctx *c) { return sr_set(c, F(SR, name_label)); }
static int sr_set_name_description(xcp__ctx *c)
{
    return sr_set(c, F(SR, name_description));
}
static int sr_set_shared(xcp__ctx *c) { return sr_set(c, F(SR, shared)); }
static int sr_set_physical_size(xcp__ctx *c)
{
    return sr_set(c, F(SR, physical_size));
}

static int supported_types(xcp__ctx *c)
{
    size_t i, n = xcp__sr_type_count();
    int rc;

    if ((rc = xcp_value_set_array(c->result, n)) < 0)
        return rc;
    for (i = 0; i < n; i++)
        if ((rc = xcp_value_set_string(&c->result->u.arr.items[i],
                                       xcp__sr_type_at(i)->name)) < 0)
            return rc;
    return 0;
}

const struct xcp__impl xcp__impl_sr[] = {
    {"SR.create", sr_create},
    {"SR.introduce", sr_introduce},
    {"SR.forget", sr_forget},
    {"SR.destroy", sr_destroy},
    {"SR.scan", sr_scan},
    {"SR.update", sr_update},
    {"SR.probe", sr_probe},
    {"SR.set_name_label", sr_set_name_label},
    {"SR.set_name_description", sr_set_name_description},
    {"SR.set_shared", sr_set_shared},
    {"SR.set_physical_size", sr_set_physical_size},
    {"SR.get_supported_types", supported_types},
    {NULL, NULL},
};
