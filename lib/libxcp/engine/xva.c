/*
 * VM export and import as XVA (engine/xva.h): the object model to and
 * from ova.xml as XAPI writes it (a struct of "version" and "objects",
 * each object {class, id, snapshot: its record}, references between
 * exported objects written as their ids "Ref:N", others as
 * OpaqueRef:NULL), and the disks through VDI streams, the chunks named
 * by their VDI's id. An import makes every object in one transaction,
 * fills the disks without the engine lock, then marks the snapshots;
 * on any failure what it made is destroyed.
 */
#include "xva.h"
#include "../api/storage.h"
#include "../api/vm_int.h"
#include "../rpc/rpc.h"

#include <errno.h>
#include <stdio.h>
#include <strings.h>
#include <unistd.h>

#define XVA_NULL_REF "OpaqueRef:NULL"
/* What we say we are in ova.xml: XAPI 1.20 (XenServer 8, XCP-ng 8.x)
 * reads an export of its own version or older; format version 2. */
#define XVA_XAPI_MAJOR 1
#define XVA_XAPI_MINOR 20
#define XVA_EXPORT_VSN 2

/* ---- common: tasks --------------------------------------------------- */

struct task_end {
    const char *task;
    const xcp_value *result;  /* success */
    xcp_value *error;         /* failure */
    double progress;          /* >= 0: a progress update only */
};

static int task_txn(xcp__ctx *c, void *arg)
{
    struct task_end *t = arg;
    xcp__obj *task = xcp__db_get_cls(c->db, C(task), t->task);

    if (!task)
        return 0;
    if (t->progress >= 0)
        return xcp__db_set_float(c->db, task, F(task, progress),
                                 t->progress);
    return xcp__task_complete(c, task, t->result, t->error);
}

/* Complete a task with result (ok) or the thread's error, which stays. */
static void task_done(xcp__engine *e, const char *task, bool ok,
                      const xcp_value *result)
{
    struct task_end t = {task, result, NULL, -1};
    xcp__saved_error saved;
    xcp_value err;

    if (!task || !*task)
        return;
    err.kind = XCP_VAL_NONE;
    if (!ok) {
        if (!xcp_error_last())
            XCP__ERR_IMPORT_ERROR("transfer incomplete");
        if (xcp__error_to_value(&err) < 0)
            xcp_value_set_array(&err, 0);
        t.error = &err;
        t.result = NULL;
    }
    xcp__error_save(&saved);
    xcp__engine_txn(e, task_txn, &t);
    xcp__error_restore(&saved);
    xcp_value_dispose(&err);
}

/* Progress into the task, at most every 500 ms. */
static void task_progress(xcp__engine *e, const char *task, int64_t *last,
                          uint64_t done, uint64_t total)
{
    struct task_end t = {task, NULL, NULL, 0};
    xcp__saved_error saved;
    int64_t now = xcp__now_ms();

    if (!total || now - *last < 500)
        return;
    *last = now;
    t.progress = (double)done / (double)total;
    if (t.progress > 0.99)
        t.progress = 0.99;
    xcp__error_save(&saved);
    xcp__engine_try_txn(e, task_txn, &t);
    xcp__error_restore(&saved);
}

/* The session and the client's task, or a new one (*drop: to be destroyed
 * at the end, when drop_new asks it): 0 with *task made. */
static int task_of(xcp__ctx *c, const char *session, const char *task_id,
                   const char *label, bool drop_new, char task[XCP_REF_MAX],
                   bool *drop, int *http)
{
    xcp__obj *t;
    int rc;

    if (session && !xcp__db_get_cls(c->db, C(session), session)) {
        *http = 401;
        return XCP__ERR_SESSION_INVALID(session);
    }
    if (task_id && *task_id) {
        if (!(t = xcp__db_get_cls(c->db, C(task), task_id))) {
            *http = 404;
            return xcp__handle_invalid(C(task), task_id);
        }
    } else if ((rc = xcp__task_new(c, label, "", &t)) < 0) {
        return rc;
    } else {
        *drop = drop_new;
    }
    snprintf(task, XCP_REF_MAX, "%s", t->ref);
    return 0;
}

static int find_obj(xcp__ctx *c, int cls, const char *id, xcp__obj **out)
{
    xcp__obj *o = xcp__db_get_cls(c->db, cls, id);

    if (!o)
        o = xcp__db_by_uuid(c->db, cls, id);
    if (!o)
        return xcp__uuid_valid(id)
                   ? XCP__ERR_UUID_INVALID(xcp__classes[cls].name, id)
                   : xcp__handle_invalid(cls, id);
    *out = o;
    return 0;
}

static int field_of(int cls, const char *name)
{
    size_t i;

    for (i = 0; i < xcp__classes[cls].nfields; i++)
        if (!strcmp(xcp__classes[cls].fields[i].name, name))
            return (int)i;
    return -1;
}

/* ---- export ---------------------------------------------------------- */

struct xobj {
    int cls;
    xcp__obj *o;
    char id[24];
};

struct xdisk {
    char id[24];
    uint64_t size;
    xcp__vdi_stream *s;
};

struct xcp__xva_export {
    xcp__engine *e;
    char task[XCP_REF_MAX];
    bool drop_task;          /* the task was made here for a local caller
                              * (no task_id): destroyed at the end */
    xcp__buf ova;
    struct xdisk *disks;
    size_t ndisks;
    uint64_t total, done_before;
    int compression;
    int64_t last_ms;
    void (*progress)(void *, uint64_t, uint64_t);
    void *pctx;
    /* where xcp__xva_export_next is */
    xcp__xva_out *out;
    size_t disk;          /* the disk being sent */
    uint64_t chunk;       /* its next chunk */
    bool done;
    /* a disk's tar alone: no ova.xml, the stream the caller's */
    bool disk_only;
    /* xcp__xva_export_read's bytes made and not yet taken */
    xcp__buf pending;
    size_t pending_off;
};

struct plan {
    const xcp__xva_export_req *r;
    xcp__xva_export *x;
    struct xobj *objs;
    size_t n, cap;
    xcp__hmap ids;      /* ref -> struct xobj * (index + 1) */
    int http;
};

static const char *id_of(struct plan *p, const char *ref)
{
    uintptr_t i = (uintptr_t)xcp__hmap_get(&p->ids, ref);

    return i ? p->objs[i - 1].id : NULL;
}

static int add_obj(struct plan *p, int cls, xcp__obj *o)
{
    struct xobj *n;

    if (!o || id_of(p, o->ref))
        return 0;
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 16;
        if (!(n = xcp__realloc(p->objs, cap * sizeof(*n))))
            return xcp__oom();
        p->objs = n;
        p->cap = cap;
    }
    n = &p->objs[p->n];
    n->cls = cls;
    n->o = o;
    snprintf(n->id, sizeof(n->id), "Ref:%zu", p->n);
    p->n++;
    /* The key is the object's ref, which lives as long as the object. */
    if (xcp__hmap_put(&p->ids, o->ref, (void *)(uintptr_t)p->n) < 0)
        return xcp__oom();
    return 0;
}

static xcp__obj *ref_field(xcp__ctx *c, int cls, xcp__obj *o, int f)
{
    return xcp__db_get_cls(c->db, cls, xcp__obj_str(o, f));
}

/* Whether vdi lies in an ISO SR: an export names it (its record and its
 * SR's) but sends no data, and an import finds it again by location
 * in an ISO SR of its own (XAPI's export.ml and import.ml). */
static bool iso_vdi(xcp__ctx *c, xcp__obj *vdi)
{
    xcp__obj *sr = ref_field(c, C(SR), vdi, F(VDI, SR));

    return sr && !strcmp(xcp__obj_str(sr, F(SR, content_type)), "iso");
}

/* A VM's devices and what they lead to. */
/* A disk and its SR; with include_vhd_parents, then the VDIs its
 * sm_config's "vhd-parent" leads to, each once, as XAPI's export.ml
 * walks them (a parent without a record is skipped, as XAPI warns and
 * goes on). */
static int add_disk(xcp__ctx *c, struct plan *p, xcp__obj *vdi)
{
    const char *parent;
    int rc;

    while (vdi && !id_of(p, vdi->ref)) {
        if ((rc = add_obj(p, C(VDI), vdi)) < 0 ||
            (rc = add_obj(p, C(SR), ref_field(c, C(SR), vdi,
                                              F(VDI, SR)))) < 0)
            return rc;
        if (!p->r->vhd_parents)
            break;
        parent = xcp__obj_map_str(vdi, F(VDI, sm_config), "vhd-parent");
        vdi = parent && *parent ? xcp__db_by_uuid(c->db, C(VDI), parent)
                                : NULL;
    }
    return 0;
}

static int add_vm(xcp__ctx *c, struct plan *p, xcp__obj *vm)
{
    const xcp_value *set;
    size_t i;
    int rc;

    if ((rc = add_obj(p, C(VM), vm)) < 0)
        return rc;
    set = xcp__obj_val(vm, F(VM, VBDs));
    for (i = 0; set->kind == XCP_VAL_ARRAY && i < set->u.arr.n; i++) {
        xcp__obj *vbd = xcp__db_get_cls(c->db, C(VBD), set->u.arr.items[i].u.s);
        xcp__obj *vdi;
        if (!vbd || (rc = add_obj(p, C(VBD), vbd)) < 0)
            continue;
        vdi = ref_field(c, C(VDI), vbd, F(VBD, VDI));
        /* A CD's image is named with its ISO SR (the record, not the
           data: see iso_vdi), as XAPI exports it. */
        if (!vdi || xcp__obj_bool(vbd, F(VBD, empty)))
            continue;
        if ((rc = add_disk(c, p, vdi)) < 0)
            return rc;
    }
    set = xcp__obj_val(vm, F(VM, VIFs));
    for (i = 0; set->kind == XCP_VAL_ARRAY && i < set->u.arr.n; i++) {
        xcp__obj *vif = xcp__db_get_cls(c->db, C(VIF), set->u.arr.items[i].u.s);
        if (vif && ((rc = add_obj(p, C(VIF), vif)) < 0 ||
                    (rc = add_obj(p, C(network),
                                  ref_field(c, C(network), vif,
                                            F(VIF, network)))) < 0))
            return rc;
    }
    if (p->r->preserve_power_state && xcp__vm_is(vm, "Suspended")) {
        xcp__obj *svdi = ref_field(c, C(VDI), vm, F(VM, suspend_VDI));
        if (svdi && ((rc = add_obj(p, C(VDI), svdi)) < 0 ||
                     (rc = add_obj(p, C(SR), ref_field(c, C(SR), svdi,
                                                       F(VDI, SR)))) < 0))
            return rc;
    }
    return 0;
}

/* A reference as the export writes it. */
static int export_ref(struct plan *p, const char *ref, xcp_value *out)
{
    const char *id = ref ? id_of(p, ref) : NULL;

    return xcp_value_set_string(out, id ? id : XVA_NULL_REF);
}

/* One field's value as exported: references mapped to ids. */
static int export_field(struct plan *p, const struct xobj *xo, int f,
                        xcp_value *out)
{
    const struct xcp__type *t = xcp__classes[xo->cls].fields[f].type;
    const xcp_value *v = xcp__obj_val(xo->o, f);
    size_t i, k = 0;
    int rc;

    if (xo->cls == C(VM) && !p->r->preserve_power_state) {
        if (f == F(VM, power_state))
            return xcp_value_set_string(out, "Halted");
        if (f == F(VM, suspend_VDI))
            return xcp_value_set_string(out, XVA_NULL_REF);
    }
    if (t->kind == XT_REF)
        return export_ref(p, v->kind == XCP_VAL_STRING ? v->u.s : NULL, out);
    if (t->kind == XT_SET && t->a->kind == XT_REF &&
        v->kind == XCP_VAL_ARRAY) {
        if ((rc = xcp_value_set_array(out, v->u.arr.n)) < 0)
            return rc;
        for (i = 0; i < v->u.arr.n; i++)
            if (id_of(p, v->u.arr.items[i].u.s) &&
                (rc = export_ref(p, v->u.arr.items[i].u.s,
                                 &out->u.arr.items[k++])) < 0)
                return rc;
        out->u.arr.n = k;
        return 0;
    }
    return xcp_value_copy(out, v);
}

static int export_record(struct plan *p, const struct xobj *xo,
                         xcp_value *out)
{
    const struct xcp__class *cl = &xcp__classes[xo->cls];
    xcp_value v;
    size_t f;
    int rc;

    xcp_value_set_struct(out);
    for (f = 0; f < cl->nfields; f++) {
        if (cl->fields[f].flags & XF_REMOVED)
            continue;
        v.kind = XCP_VAL_NONE;
        if ((rc = export_field(p, xo, (int)f, &v)) < 0 ||
            (rc = xcp_value_struct_add(out, cl->fields[f].name, &v)) < 0) {
            xcp_value_dispose(&v);
            return rc;
        }
    }
    return 0;
}

static int add_member(xcp_value *st, const char *key, xcp_value *v)
{
    int rc = xcp_value_struct_add(st, key, v);

    xcp_value_dispose(v);
    return rc;
}

static int add_str(xcp_value *st, const char *key, const char *s)
{
    xcp_value v;
    int rc;

    if ((rc = xcp_value_set_string(&v, s)) < 0)
        return rc;
    return add_member(st, key, &v);
}

static int add_int(xcp_value *st, const char *key, int64_t i)
{
    xcp_value v;

    xcp_value_set_int(&v, i);
    return add_member(st, key, &v);
}

static int version_struct(xcp__ctx *c, xcp_value *out)
{
    char host[256], date[32];
    int rc;

    if (gethostname(host, sizeof(host)) < 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    xcp_datetime_format(date, sizeof(date), xcp__now());
    (void)c;
    xcp_value_set_struct(out);
    if ((rc = add_str(out, "hostname", host)) < 0 ||
        (rc = add_str(out, "date", date)) < 0 ||
        (rc = add_str(out, "product_version", PACKAGE_VERSION)) < 0 ||
        (rc = add_str(out, "product_brand", "libxcp")) < 0 ||
        (rc = add_str(out, "build_number", PACKAGE_VERSION)) < 0 ||
        (rc = add_int(out, "xapi_major", XVA_XAPI_MAJOR)) < 0 ||
        (rc = add_int(out, "xapi_minor", XVA_XAPI_MINOR)) < 0 ||
        (rc = add_int(out, "export_vsn", XVA_EXPORT_VSN)) < 0)
        return rc;
    return 0;
}

/* ova.xml for the planned objects. */
static int header_xml(xcp__ctx *c, struct plan *p, xcp__buf *out)
{
    xcp_value top, v, objs, *o;
    size_t i;
    int rc;

    xcp_value_set_struct(&top);
    objs.kind = XCP_VAL_NONE;
    if ((rc = version_struct(c, &v)) < 0 ||
        (rc = add_member(&top, "version", &v)) < 0 ||
        (rc = xcp_value_set_array(&objs, p->n)) < 0)
        goto out;
    for (i = 0; i < p->n; i++) {
        o = &objs.u.arr.items[i];
        xcp_value_set_struct(o);
        if ((rc = add_str(o, "class", xcp__classes[p->objs[i].cls].name)) < 0 ||
            (rc = add_str(o, "id", p->objs[i].id)) < 0 ||
            (rc = export_record(p, &p->objs[i], &v)) < 0 ||
            (rc = add_member(o, "snapshot", &v)) < 0)
            goto out;
    }
    if ((rc = xcp_value_struct_add(&top, "objects", &objs)) < 0)
        goto out;
    rc = xcp__xmlrpc_encode_value(out, &top, 0);
out:
    xcp_value_dispose(&objs);
    xcp_value_dispose(&top);
    return rc;
}

static int plan_txn(xcp__ctx *c, void *arg)
{
    struct plan *p = arg;
    const xcp__xva_export_req *r = p->r;
    xcp__xva_export *x = p->x;
    xcp__obj *vm;
    const xcp_value *snaps;
    size_t i;
    int rc;

    if ((rc = task_of(c, r->session, r->task_id, "VM export", r->drop_task,
                      x->task, &x->drop_task, &p->http)) < 0)
        return rc;
    p->http = 400;
    if (xcp__xva_compression_of(r->compression) < 0)
        return XCP__ERR_INVALID_VALUE("compression", r->compression);
    x->compression = xcp__xva_compression_of(r->compression);
    p->http = 404;
    if (!r->vm || !*r->vm)
        return XCP__ERR_INVALID_VALUE("vm", "");
    if ((rc = find_obj(c, C(VM), r->vm, &vm)) < 0)
        return rc;
    p->http = 400;
    if (xcp__vm_is(vm, "Running") || xcp__vm_is(vm, "Paused"))
        return xcp__vm_bad_power_state(vm->ref,
                                       xcp__obj_str(vm, F(VM, power_state)),
                                       "halted");
    if ((rc = add_vm(c, p, vm)) < 0)
        return rc;
    snaps = xcp__obj_val(vm, F(VM, snapshots));
    for (i = 0; r->snapshots && snaps->kind == XCP_VAL_ARRAY &&
                i < snaps->u.arr.n; i++)
        if ((rc = add_vm(c, p, xcp__db_get_cls(c->db, C(VM),
                                              snaps->u.arr.items[i].u.s))) < 0)
            return rc;
    p->http = 500;
    if ((rc = header_xml(c, p, &x->ova)) < 0)
        return rc;
    if (r->metadata_only)
        return 0;
    for (i = 0; i < p->n; i++)
        if (p->objs[i].cls == C(VDI) && !iso_vdi(c, p->objs[i].o))
            x->ndisks++;
    if (x->ndisks && !(x->disks = xcp__calloc(x->ndisks, sizeof(*x->disks))))
        return xcp__oom();
    x->ndisks = 0;
    for (i = 0; i < p->n; i++) {
        struct xdisk *d;
        if (p->objs[i].cls != C(VDI) || iso_vdi(c, p->objs[i].o))
            continue;
        d = &x->disks[x->ndisks];
        if ((rc = xcp__vdi_stream_open(c, p->objs[i].o, NULL, &d->s)) < 0)
            return rc;
        x->ndisks++;
        snprintf(d->id, sizeof(d->id), "%s", p->objs[i].id);
        d->size = xcp__vdi_stream_size(d->s);
        x->total += d->size;
    }
    return 0;
}

static int disk_cmp(const void *a, const void *b)
{
    return strcmp(((const struct xdisk *)a)->id,
                  ((const struct xdisk *)b)->id);
}

static void export_free(xcp__xva_export *x)
{
    xcp__saved_error saved;
    size_t i;

    xcp__error_save(&saved);
    for (i = 0; i < x->ndisks && !x->disk_only; i++)
        xcp__vdi_stream_close(x->disks[i].s);
    xcp__error_restore(&saved);
    free(x->disks);
    xcp__buf_free(&x->ova);
    xcp__buf_free(&x->pending);
    xcp__xva_out_free(x->out);
    free(x);
}

int xcp__xva_export_begin(xcp__engine *e, const xcp__xva_export_req *r,
                          xcp__xva_export **out, int *http)
{
    xcp__xva_export *x = xcp__calloc(1, sizeof(*x));
    struct plan p;
    int rc;

    *http = 500;
    if (!x)
        return xcp__oom();
    x->e = e;
    memset(&p, 0, sizeof(p));
    p.r = r;
    p.x = x;
    p.http = 500;
    rc = xcp__engine_txn(e, plan_txn, &p);
    free(p.objs);
    xcp__hmap_free(&p.ids);
    if (rc < 0) {
        *http = p.http;
        /* Rolled back: a task made here went with it. */
        task_done(e, r->task_id, false, NULL);
        export_free(x);
        return -1;
    }
    /* XAPI streams the disks in the order of their ids. */
    if (x->ndisks)
        qsort(x->disks, x->ndisks, sizeof(*x->disks), disk_cmp);
    *http = 200;
    *out = x;
    return 0;
}

const char *xcp__xva_export_task(const xcp__xva_export *x)
{
    return x->task;
}

struct disk_ctx {
    xcp__xva_export *x;
    struct xdisk *d;
};

static int disk_read(void *ctx, uint64_t offset, void *buf, size_t n)
{
    struct disk_ctx *dc = ctx;

    return xcp__vdi_stream_read(dc->d->s, offset, buf, n);
}

static int found(void *ctx, uint64_t offset, uint64_t length)
{
    (void)ctx;
    (void)offset;
    (void)length;
    return 1;
}

static int disk_may_hold(void *ctx, uint64_t offset, uint64_t n)
{
    struct disk_ctx *dc = ctx;
    int rc = xcp__vdi_stream_extents(dc->d->s, offset, n, found, NULL);

    return rc < 0 ? -1 : rc > 0;
}

static void disk_progress(void *ctx, uint64_t done)
{
    struct disk_ctx *dc = ctx;
    xcp__xva_export *x = dc->x;
    uint64_t all = x->done_before + done;

    task_progress(x->e, x->task, &x->last_ms, all, x->total);
    if (x->progress)
        x->progress(x->pctx, all, x->total);
}

int xcp__xva_export_next(xcp__xva_export *x, xcp__xva_sink sink,
                         void *ctx)
{
    struct disk_ctx dc = {x, NULL};
    xcp__xva_disk d = {disk_read, disk_may_hold, disk_progress, &dc};
    struct xdisk *xd;

    if (x->done)
        return 1;
    if (!x->out) {
        if (xcp__xva_out_new(&x->out, (xcp__xva_compression)x->compression,
                             sink, ctx) < 0)
            return -1;
        if (x->disk_only)
            return 0;
        return xcp__xva_out_file(x->out, "ova.xml", x->ova.data,
                                 x->ova.len) < 0 ? -1 : 0;
    }
    while (x->disk < x->ndisks) {
        xd = &x->disks[x->disk];
        if (x->chunk * XCP__XVA_CHUNK < xd->size) {
            dc.d = xd;
            return xcp__xva_out_disk_chunk(x->out, xd->id, xd->size,
                                           x->chunk++, &d) < 0 ? -1 : 0;
        }
        x->done_before += xd->size;
        x->disk++;
        x->chunk = 0;
    }
    if (xcp__xva_out_finish(x->out) < 0)
        return -1;
    x->done = true;
    return 1;
}

int xcp__xva_export_run(xcp__xva_export *x, xcp__xva_sink sink, void *ctx,
                        void (*progress)(void *, uint64_t, uint64_t),
                        void *pctx)
{
    int rc;

    x->progress = progress;
    x->pctx = pctx;
    while ((rc = xcp__xva_export_next(x, sink, ctx)) == 0)
        ;
    return rc < 0 ? -1 : 0;
}

static int pending_sink(void *ctx, const void *buf, size_t n)
{
    xcp__xva_export *x = ctx;

    xcp__buf_add(&x->pending, buf, n);
    return x->pending.oom ? xcp__oom() : 0;
}

int xcp__xva_export_read(xcp__xva_export *x, void *buf, size_t n,
                         size_t *got)
{
    int rc = 0;

    *got = 0;
    while (x->pending_off == x->pending.len && rc == 0) {
        x->pending.len = x->pending_off = 0;
        rc = xcp__xva_export_next(x, pending_sink, x);
    }
    if (rc < 0)
        return -1;
    *got = x->pending.len - x->pending_off < n
               ? x->pending.len - x->pending_off : n;
    memcpy(buf, x->pending.data + x->pending_off, *got);
    x->pending_off += *got;
    return 0;
}

bool xcp__xva_export_complete(const xcp__xva_export *x)
{
    return x->done && x->pending_off == x->pending.len;
}

int xcp__xva_disk_export_new(xcp__xva_export **out, xcp__engine *e,
                             xcp__vdi_stream *s, uint64_t size)
{
    xcp__xva_export *x = xcp__calloc(1, sizeof(*x));

    if (!x || !(x->disks = xcp__calloc(1, sizeof(*x->disks)))) {
        free(x);
        return xcp__oom();
    }
    x->e = e;
    x->disk_only = true;
    x->ndisks = 1;
    x->total = size;
    x->disks[0].s = s;
    x->disks[0].size = size;
    snprintf(x->disks[0].id, sizeof(x->disks[0].id), "%s", XCP__XVA_TAR_DIR);
    *out = x;
    return 0;
}

void xcp__xva_export_free(xcp__xva_export *x)
{
    if (x)
        export_free(x);
}

int xcp__xva_export_end(xcp__xva_export *x, int ok)
{
    if (!x)
        return 0;
    task_done(x->e, x->task, ok, NULL);
    if (x->drop_task)
        xcp__task_drop(x->e, x->task);
    export_free(x);
    return ok ? 0 : -1;
}

/* ---- ova.xml --------------------------------------------------------- */

int xcp__xva_parse_header(const char *xml, size_t n, xcp_value *out)
{
    static const char head[] = "<?xml version=\"1.0\"?><methodResponse>"
                               "<params><param>";
    static const char tail[] = "</param></params></methodResponse>";
    const xcp_value *ver, *objs, *major;
    xcp_value err;
    xcp__buf b = {0};
    char why[160];
    size_t i, skip = 0;
    int rc;

    out->kind = XCP_VAL_NONE;
    err.kind = XCP_VAL_NONE;
    /* ova.xml is one <value> (after an optional XML declaration): read as
     * the single param of a response. */
    while (skip < n && xml[skip] != '<')
        skip++;
    if (n - skip > 5 && !strncmp(xml + skip, "<?xml", 5)) {
        const char *end = memchr(xml + skip, '>', n - skip);
        skip = end ? (size_t)(end - xml) + 1 : n;
    }
    xcp__buf_adds(&b, head);
    xcp__buf_add(&b, xml + skip, n - skip);
    xcp__buf_adds(&b, tail);
    if ((rc = xcp__rpc_buf_status(&b)) < 0)
        goto out;
    why[0] = '\0';
    rc = xcp__xmlrpc_decode_response(b.data, b.len, out, &err, why,
                                     sizeof(why));
    if (rc != 0) {
        xcp_value_dispose(out);
        rc = rc == XCP_ENOMEM ? rc : XCP__ERR_IMPORT_ERROR(
                                         why[0] ? why : "Invalid ova.xml");
        goto out;
    }
    ver = xcp_value_struct_get(out, "version");
    objs = xcp_value_struct_get(out, "objects");
    if (out->kind != XCP_VAL_STRUCT || !ver || ver->kind != XCP_VAL_STRUCT ||
        !objs || objs->kind != XCP_VAL_ARRAY) {
        rc = XCP__ERR_IMPORT_ERROR("Invalid ova.xml: no version or objects");
        goto fail;
    }
    for (i = 0; i < objs->u.arr.n; i++) {
        const xcp_value *o = &objs->u.arr.items[i], *cls, *id, *snap;
        cls = xcp_value_struct_get(o, "class");
        id = xcp_value_struct_get(o, "id");
        snap = xcp_value_struct_get(o, "snapshot");
        if (o->kind != XCP_VAL_STRUCT || !cls || cls->kind != XCP_VAL_STRING ||
            !id || id->kind != XCP_VAL_STRING || !snap ||
            snap->kind != XCP_VAL_STRUCT) {
            rc = XCP__ERR_IMPORT_ERROR("Invalid ova.xml: malformed object");
            goto fail;
        }
    }
    /* XAPI refuses exports of a newer XAPI than itself; we read every
     * 1.x export. */
    major = xcp_value_struct_get(ver, "xapi_major");
    if (major && ((major->kind == XCP_VAL_STRING &&
                   strtoll(major->u.s, NULL, 10) > XVA_XAPI_MAJOR) ||
                  (major->kind == XCP_VAL_INT &&
                   major->u.i > XVA_XAPI_MAJOR))) {
        rc = XCP__ERR_IMPORT_INCOMPATIBLE_VERSION();
        goto fail;
    }
    rc = 0;
    goto out;
fail:
    xcp_value_dispose(out);
out:
    xcp_value_dispose(&err);
    xcp__buf_free(&b);
    return rc;
}

/* ---- import ---------------------------------------------------------- */

struct idisk {
    char id[64];
    char vdi[XCP_REF_MAX];
    uint64_t size;
    xcp__vdi_stream *s;
    bool last_seen;      /* its last chunk came */
    uint64_t done;       /* bytes up to its furthest chunk */
};

struct xcp__xva_import {
    xcp__engine *e;
    xcp__xva_import_req r;
    char task[XCP_REF_MAX];
    bool drop_task;          /* as the export's */
    char sr[XCP_REF_MAX];
    xcp__xva_in *in;
    bool have_header;
    xcp_value header;
    /* id -> new ref, for every object made or mapped */
    xcp__hmap map;
    char **keys;          /* owned keys and values of map */
    size_t nkeys;
    struct idisk *disks;
    size_t ndisks;
    uint64_t total;
    int64_t last_ms;
    /* what was made, to undo */
    xcp_value made_vms, made_vdis, made_nets;
    xcp_value vms;        /* the result */
    void (*progress)(void *, uint64_t, uint64_t);
    void *pctx;
};

static int import_begin_txn(xcp__ctx *c, void *arg)
{
    struct {
        xcp__xva_import *m;
        int http;
    } *b = arg;
    xcp__xva_import *m = b->m;
    xcp__obj *sr;
    int rc;

    if ((rc = task_of(c, m->r.session, m->r.task_id, "VM import",
                      m->r.drop_task, m->task, &m->drop_task, &b->http)) < 0)
        return rc;
    b->http = 404;
    if (m->r.sr && *m->r.sr) {
        if ((rc = find_obj(c, C(SR), m->r.sr, &sr)) < 0)
            return rc;
    } else if (!(sr = xcp__default_sr(c))) {
        return XCP__ERR_DEFAULT_SR_NOT_FOUND(XVA_NULL_REF);
    }
    snprintf(m->sr, sizeof(m->sr), "%s", sr->ref);
    return 0;
}

static const char *mapped(xcp__xva_import *m, const char *id)
{
    return id ? xcp__hmap_get(&m->map, id) : NULL;
}

static int map_put(xcp__xva_import *m, const char *id, const char *ref)
{
    char **k = xcp__realloc(m->keys, (m->nkeys + 2) * sizeof(*k));

    if (!k)
        return xcp__oom();
    m->keys = k;
    if (!(k[m->nkeys] = xcp__strdup(id)))
        return xcp__oom();
    if (!(k[m->nkeys + 1] = xcp__strdup(ref))) {
        free(k[m->nkeys]);
        return xcp__oom();
    }
    m->nkeys += 2;
    return xcp__hmap_put(&m->map, k[m->nkeys - 2], k[m->nkeys - 1]);
}

static int push_ref(xcp_value *set, const char *ref)
{
    xcp_value *items;
    size_t n = set->kind == XCP_VAL_ARRAY ? set->u.arr.n : 0;

    if (set->kind != XCP_VAL_ARRAY && xcp_value_set_array(set, 0) < 0)
        return xcp__oom();
    if (!(items = xcp__realloc(set->u.arr.items, (n + 1) * sizeof(*items))))
        return xcp__oom();
    set->u.arr.items = items;
    set->u.arr.n = n + 1;
    return xcp_value_set_string(&items[n], ref);
}

/* Fields never taken from an export: the server's own state, and what
 * the import sets itself. References are set by the import (by name
 * below), never generically. */
static bool import_skip(int cls, int f, bool restore)
{
    static const char *const skip[] = {
        "uuid", "allowed_operations", "current_operations", "power_state",
        "domid", "is_control_domain", "currently_attached", "status_code",
        "status_detail", "is_default_template", "resident_on", "metrics",
        "guest_metrics", "location", "physical_utilisation", "sm_config",
        "read_only", "is_a_snapshot", "snapshot_of", "snapshot_time",
        "managed", "missing", "storage_lock", "parent", "cbt_enabled", NULL};
    const struct xcp__field *fd = &xcp__classes[cls].fields[f];
    size_t i;

    if (fd->flags & (XF_DERIVED | XF_REMOVED) || fd->type->kind == XT_REF ||
        (fd->type->kind == XT_SET && fd->type->a->kind == XT_REF) ||
        (fd->type->kind == XT_MAP && fd->type->b->kind == XT_REF))
        return true;
    if (cls == C(VM) && (!strcmp(fd->name, "is_a_snapshot") ||
                         !strcmp(fd->name, "snapshot_time")))
        return false; /* a snapshot VM is made one at once */
    if (restore && cls == C(VM) && !strcmp(fd->name, "uuid"))
        return true;  /* given at creation */
    for (i = 0; skip[i]; i++)
        if (!strcmp(fd->name, skip[i]))
            return true;
    return false;
}

/* Set o's fields from an exported record, as far as they fit our
 * model (a field we do not know, or a value we cannot read, is left at
 * its default, as XAPI does for older exports). */
static int set_from(xcp__ctx *c, xcp__obj *o, int cls, const xcp_value *rec,
                    bool restore)
{
    size_t i;
    int f, rc;

    for (i = 0; i < rec->u.st.n; i++) {
        xcp_value v;
        if ((f = field_of(cls, rec->u.st.keys[i])) < 0 ||
            import_skip(cls, f, restore))
            continue;
        if ((rc = xcp_value_copy(&v, &rec->u.st.vals[i])) < 0)
            return rc;
        if (xcp__value_check(xcp__classes[cls].fields[f].type, &v,
                             rec->u.st.keys[i]) < 0) {
            xcp_error_clear();
            xcp_value_dispose(&v);
            continue;
        }
        rc = xcp__db_set(c->db, o, f, &v);
        xcp_value_dispose(&v);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static const char *rec_str(const xcp_value *rec, const char *key)
{
    const xcp_value *v = xcp_value_struct_get(rec, key);

    return v && v->kind == XCP_VAL_STRING ? v->u.s : "";
}

static bool rec_bool(const xcp_value *rec, const char *key)
{
    const xcp_value *v = xcp_value_struct_get(rec, key);

    if (!v)
        return false;
    if (v->kind == XCP_VAL_BOOL)
        return v->u.b;
    return v->kind == XCP_VAL_STRING && !strcasecmp(v->u.s, "true");
}

static int64_t rec_int(const xcp_value *rec, const char *key)
{
    const xcp_value *v = xcp_value_struct_get(rec, key);

    if (v && v->kind == XCP_VAL_INT)
        return v->u.i;
    return v && v->kind == XCP_VAL_STRING ? strtoll(v->u.s, NULL, 10) : -1;
}

/* A metadata import's VDI: the existing one of the exported uuid. */
/* The exported record of the object with this id (NULL: none). */
static const xcp_value *exported(xcp__xva_import *m, const char *id)
{
    const xcp_value *objs = xcp_value_struct_get(&m->header, "objects");
    size_t i;

    for (i = 0; i < objs->u.arr.n; i++)
        if (!strcmp(rec_str(&objs->u.arr.items[i], "id"), id))
            return xcp_value_struct_get(&objs->u.arr.items[i], "snapshot");
    return NULL;
}

/* An exported VDI of an ISO SR: the VDI of that location in an ISO SR
 * here (not udev's, not missing from it), else none, the drive then empty, as XAPI's import
 * does; 1 when rec is one, 0 when it is another disk. */
static int iso_import(xcp__ctx *c, xcp__xva_import *m, const char *id,
                      const xcp_value *rec)
{
    const xcp_value *sr = exported(m, rec_str(rec, "SR"));
    const char *loc = rec_str(rec, "location");
    xcp__obj *const *all;
    xcp__obj *isr;
    size_t n, i;
    int rc;

    if (!sr || strcmp(rec_str(sr, "content_type"), "iso"))
        return 0;
    all = xcp__db_all(c->db, C(VDI), &n);
    for (i = 0; *loc && i < n; i++) {
        isr = ref_field(c, C(SR), all[i], F(VDI, SR));
        if (isr && !strcmp(xcp__obj_str(isr, F(SR, content_type)), "iso") &&
            strcmp(xcp__obj_str(isr, F(SR, type)), "udev") &&
            !xcp__obj_bool(all[i], F(VDI, missing)) &&
            !strcmp(xcp__obj_str(all[i], F(VDI, location)), loc))
            return (rc = map_put(m, id, all[i]->ref)) < 0 ? rc : 1;
    }
    xcp__log(XCP__LOG_WARN, "XVA import: no ISO VDI with location %s: "
             "its drive comes empty", loc);
    return 1;
}

static int find_vdi(xcp__ctx *c, xcp__xva_import *m, const char *id,
                    const xcp_value *rec)
{
    xcp__obj *vdi;
    int rc;

    if ((rc = iso_import(c, m, id, rec)) != 0)
        return rc < 0 ? rc : 0;
    vdi = xcp__db_by_uuid(c->db, C(VDI), rec_str(rec, "uuid"));
    if (!vdi)
        return XCP__ERR_IMPORT_ERROR_ATTACHED_DISKS_NOT_FOUND();
    return map_put(m, id, vdi->ref);
}

static int make_vdi(xcp__ctx *c, xcp__xva_import *m, const char *id,
                    const xcp_value *rec)
{
    xcp__obj *sr = xcp__db_get_cls(c->db, C(SR), m->sr), *vdi;
    int64_t size = rec_int(rec, "virtual_size");
    const char *type = rec_str(rec, "type");
    struct idisk *d;
    int rc;

    if ((rc = iso_import(c, m, id, rec)) != 0)
        return rc < 0 ? rc : 0;
    if (size < 0)
        return XCP__ERR_IMPORT_ERROR("Invalid ova.xml: a VDI without "
                                     "virtual_size");
    if ((rc = xcp__vdi_new(c, sr, rec_str(rec, "name_label"),
                           rec_str(rec, "name_description"), size,
                           *type ? type : "user", NULL, &vdi)) < 0 ||
        (rc = set_from(c, vdi, C(VDI), rec, false)) < 0 ||
        (rc = map_put(m, id, vdi->ref)) < 0 ||
        (rc = push_ref(&m->made_vdis, vdi->ref)) < 0)
        return rc;
    d = &m->disks[m->ndisks++];
    snprintf(d->id, sizeof(d->id), "%s", id);
    snprintf(d->vdi, sizeof(d->vdi), "%s", vdi->ref);
    d->size = (uint64_t)size;
    m->total += d->size;
    return 0;
}

/* The network a VIF joins, as XAPI's import finds it (import.ml): the
 * first with the exported network's name, else with its bridge, else a
 * new one made from its record (on a bridge of its own if the exported
 * one is taken), gone again if the import fails. */
static int join_network(xcp__ctx *c, xcp__xva_import *m,
                        const xcp_value *rec, xcp__obj **out)
{
    size_t n, i;
    xcp__obj *const *all = xcp__db_all(c->db, C(network), &n);
    const char *bridge = rec_str(rec, "bridge");
    const char *name = rec_str(rec, "name_label");
    char free_br[32];
    int rc;

    for (i = 0; i < n; i++)
        if (!strcmp(xcp__obj_str(all[i], F(network, name_label)), name)) {
            *out = all[i];
            return 0;
        }
    for (i = 0; *bridge && i < n; i++)
        if (!strcmp(xcp__obj_str(all[i], F(network, bridge)), bridge)) {
            *out = all[i];
            return 0;
        }
    if ((rc = xcp__db_create(c->db, C(network), NULL, NULL, out)) < 0 ||
        (rc = set_from(c, *out, C(network), rec, false)) < 0 ||
        (rc = push_ref(&m->made_nets, (*out)->ref)) < 0)
        return rc;
    if (!*bridge) {
        xcp__network_free_bridge(c, free_br, sizeof(free_br));
        rc = xcp__db_set_str(c->db, *out, F(network, bridge), free_br);
    }
    return rc;
}

static int make_vm(xcp__ctx *c, xcp__xva_import *m, const char *id,
                   const xcp_value *rec)
{
    const char *uuid = rec_str(rec, "uuid");
    xcp__obj *vm;
    int rc;

    if (m->r.restore && xcp__uuid_valid(uuid) &&
        xcp__db_by_uuid(c->db, C(VM), uuid)) {
        /* A full restore keeps the uuid, which must then be free. */
        char *why = xcp__printf("a VM with uuid %s exists already", uuid);
        rc = XCP__ERR_IMPORT_ERROR(why ? why : "the VM exists already");
        free(why);
        return rc;
    }
    if ((rc = xcp__db_create(c->db, C(VM), NULL,
                             m->r.restore && xcp__uuid_valid(uuid) ? uuid
                                                                  : NULL,
                             &vm)) < 0 ||
        (rc = set_from(c, vm, C(VM), rec, m->r.restore)) < 0 ||
        (rc = xcp__db_set_str(c->db, vm, F(VM, power_state), "Halted")) < 0 ||
        (rc = xcp__vm_init_record(c, vm)) < 0 ||
        (rc = map_put(m, id, vm->ref)) < 0 ||
        (rc = push_ref(&m->made_vms, vm->ref)) < 0)
        return rc;
    if (!rec_bool(rec, "is_a_snapshot"))
        rc = push_ref(&m->vms, vm->ref);
    return rc;
}

/* A device of an imported VM, once VMs, VDIs and networks are made. */
static int make_device(xcp__ctx *c, xcp__xva_import *m, int cls,
                       const xcp_value *rec)
{
    const char *vm = mapped(m, rec_str(rec, "VM"));
    xcp__obj *o, *net;
    const char *vdi;
    int rc;

    if (!vm)
        return 0; /* of no VM we import */
    if ((rc = xcp__db_create(c->db, cls, NULL, NULL, &o)) < 0 ||
        (rc = set_from(c, o, cls, rec, false)) < 0)
        return rc;
    if (cls == C(VBD)) {
        vdi = mapped(m, rec_str(rec, "VDI"));
        if ((rc = xcp__db_set_str(c->db, o, F(VBD, VM), vm)) < 0 ||
            (rc = xcp__db_set_str(c->db, o, F(VBD, VDI),
                                  vdi ? vdi : XVA_NULL_REF)) < 0 ||
            (rc = xcp__db_set_bool(c->db, o, F(VBD, empty), !vdi)) < 0)
            return rc;
    } else {
        const xcp_value *nrec = exported(m, rec_str(rec, "network"));

        if (!nrec)
            return xcp__db_destroy(c->db, o);  /* no network: no NIC */
        if ((rc = join_network(c, m, nrec, &net)) < 0)
            return rc;
        if ((rc = xcp__db_set_str(c->db, o, F(VIF, VM), vm)) < 0 ||
            (rc = xcp__db_set_str(c->db, o, F(VIF, network), net->ref)) < 0)
            return rc;
    }
    return xcp__update_allowed(c, o);
}

/* The links between imported VMs, once all are made. */
static int link_vm(xcp__ctx *c, xcp__xva_import *m, const char *id,
                   const xcp_value *rec)
{
    xcp__obj *vm = xcp__db_get_cls(c->db, C(VM), mapped(m, id));
    const char *of = mapped(m, rec_str(rec, "snapshot_of"));
    const char *parent = mapped(m, rec_str(rec, "parent"));
    const char *svdi = mapped(m, rec_str(rec, "suspend_VDI"));
    int rc;

    if (!vm)
        return 0;
    if ((of && (rc = xcp__db_set_str(c->db, vm, F(VM, snapshot_of), of)) < 0) ||
        (parent &&
         (rc = xcp__db_set_str(c->db, vm, F(VM, parent), parent)) < 0))
        return rc;
    if (svdi && !strcmp(rec_str(rec, "power_state"), "Suspended") &&
        ((rc = xcp__db_set_str(c->db, vm, F(VM, suspend_VDI), svdi)) < 0 ||
         (rc = xcp__db_set_str(c->db, vm, F(VM, power_state),
                               "Suspended")) < 0))
        return rc;
    return xcp__update_allowed(c, vm);
}

typedef int (*maker)(xcp__ctx *, xcp__xva_import *, const char *,
                     const xcp_value *);

static int each_of(xcp__ctx *c, xcp__xva_import *m, const char *cls,
                   maker fn)
{
    const xcp_value *objs = xcp_value_struct_get(&m->header, "objects");
    size_t i;
    int rc;

    for (i = 0; i < objs->u.arr.n; i++) {
        const xcp_value *o = &objs->u.arr.items[i];
        if (strcmp(rec_str(o, "class"), cls))
            continue;
        if ((rc = fn(c, m, rec_str(o, "id"),
                     xcp_value_struct_get(o, "snapshot"))) < 0)
            return rc;
    }
    return 0;
}

static int map_sr(xcp__ctx *c, xcp__xva_import *m, const char *id,
                  const xcp_value *rec)
{
    (void)c;
    (void)rec;
    return map_put(m, id, m->sr);
}

static int vbd_maker(xcp__ctx *c, xcp__xva_import *m, const char *id,
                     const xcp_value *rec)
{
    (void)id;
    return make_device(c, m, C(VBD), rec);
}

static int vif_maker(xcp__ctx *c, xcp__xva_import *m, const char *id,
                     const xcp_value *rec)
{
    (void)id;
    return make_device(c, m, C(VIF), rec);
}

static int count_vdis(xcp__xva_import *m)
{
    const xcp_value *objs = xcp_value_struct_get(&m->header, "objects");
    size_t i, n = 0;

    for (i = 0; i < objs->u.arr.n; i++)
        if (!strcmp(rec_str(&objs->u.arr.items[i], "class"), "VDI"))
            n++;
    if (n && !(m->disks = xcp__calloc(n, sizeof(*m->disks))))
        return xcp__oom();
    return 0;
}

/* Every object of the header, in one transaction; the disks' streams
 * opened in it. */
static int make_txn(xcp__ctx *c, void *arg)
{
    xcp__xva_import *m = arg;
    size_t i;
    int rc;

    if (!xcp__db_get_cls(c->db, C(SR), m->sr))
        return xcp__handle_invalid(C(SR), m->sr);
    if ((rc = each_of(c, m, "SR", map_sr)) < 0 ||
        (rc = each_of(c, m, "VDI", m->r.metadata ? find_vdi : make_vdi)) < 0 ||
        (rc = each_of(c, m, "VM", make_vm)) < 0 ||
        (rc = each_of(c, m, "VM", link_vm)) < 0 ||
        (rc = each_of(c, m, "VBD", vbd_maker)) < 0 ||
        (rc = each_of(c, m, "VIF", vif_maker)) < 0)
        return rc;
    for (i = 0; i < m->ndisks; i++) {
        xcp__obj *vdi = xcp__db_get_cls(c->db, C(VDI), m->disks[i].vdi);
        if ((rc = xcp__vdi_stream_open(c, vdi, "import", &m->disks[i].s)) < 0)
            return rc;
    }
    return 0;
}

static void close_streams(xcp__xva_import *m, int *rc)
{
    xcp__saved_error saved;
    size_t i;

    xcp__error_save(&saved);
    for (i = 0; i < m->ndisks; i++) {
        if (m->disks[i].s && xcp__vdi_stream_close(m->disks[i].s) < 0 &&
            *rc == 0) {
            *rc = -1;
            xcp__error_save(&saved);
        }
        m->disks[i].s = NULL;
    }
    xcp__error_restore(&saved);
}

static int on_file(void *ctx, const char *name, const void *data, size_t n)
{
    xcp__xva_import *m = ctx;
    int rc;

    if (m->have_header)
        return 0; /* anything else XAPI may add is not ours to read */
    if (strcmp(name, "ova.xml"))
        return XCP__ERR_IMPORT_ERROR_UNEXPECTED_FILE("ova.xml", name);
    if ((rc = xcp__xva_parse_header(data, n, &m->header)) < 0)
        return rc;
    m->have_header = true;
    if ((rc = count_vdis(m)) < 0)
        return rc;
    if ((rc = xcp__engine_txn(m->e, make_txn, m)) < 0) {
        /* Rolled back: nothing of it stays. */
        xcp_value_dispose(&m->made_vms);
        xcp_value_dispose(&m->made_vdis);
        xcp_value_dispose(&m->made_nets);
        xcp_value_dispose(&m->vms);
        rc = 0;
        close_streams(m, &rc); /* those opened before the failure */
        m->ndisks = 0;
        return -1;
    }
    return 0;
}

static bool zeros(const uint8_t *p, size_t n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static int on_chunk(void *ctx, const char *prefix, uint64_t no,
                    const void *data, size_t n)
{
    xcp__xva_import *m = ctx;
    struct idisk *d = NULL;
    uint64_t off = no * XCP__XVA_CHUNK, all = 0;
    size_t i;

    if (!m->have_header)
        return XCP__ERR_IMPORT_ERROR_UNEXPECTED_FILE("ova.xml", prefix);
    for (i = 0; i < m->ndisks && !d; i++)
        if (!strcmp(m->disks[i].id, prefix))
            d = &m->disks[i];
    if (!d)
        return XCP__ERR_IMPORT_ERROR_FAILED_TO_FIND_OBJECT(prefix);
    if (no > d->size / XCP__XVA_CHUNK || off + n > d->size)
        return XCP__ERR_IMPORT_ERROR("Invalid XVA file: a chunk past the "
                                     "end of its disk");
    /* The disk is new and empty: zeros need not be written. */
    if (!zeros(data, n) && xcp__vdi_stream_write(d->s, off, data, n) < 0)
        return -1;
    if (n && off + n == d->size)
        d->last_seen = true;
    if (off + n > d->done)
        d->done = off + n;
    for (i = 0; i < m->ndisks; i++)
        all += m->disks[i].done;
    task_progress(m->e, m->task, &m->last_ms, all, m->total);
    if (m->progress)
        m->progress(m->pctx, all, m->total);
    return 0;
}

static const xcp__xva_in_ops in_ops = {on_file, on_chunk};

int xcp__xva_import_begin(xcp__engine *e, const xcp__xva_import_req *r,
                          xcp__xva_import **out, int *http)
{
    xcp__xva_import *m = xcp__calloc(1, sizeof(*m));
    struct {
        xcp__xva_import *m;
        int http;
    } b;

    *http = 500;
    if (!m)
        return xcp__oom();
    m->e = e;
    m->r = *r;
    b.m = m;
    b.http = 500;
    if (xcp__engine_txn(e, import_begin_txn, &b) < 0 ||
        xcp__xva_in_new(&m->in, &in_ops, m, !r->force) < 0) {
        *http = b.http;
        task_done(e, r->task_id, false, NULL);
        free(m);
        return -1;
    }
    /* Borrowed strings of the request do not outlive the call. */
    m->r.session = m->r.task_id = m->r.sr = NULL;
    *http = 200;
    *out = m;
    return 0;
}

const char *xcp__xva_import_task(const xcp__xva_import *m)
{
    return m->task;
}

int xcp__xva_import_write(xcp__xva_import *m, const void *buf, size_t n)
{
    return xcp__xva_in_feed(m->in, buf, n) < 0 ? -1 : 0;
}

/* A VDI's snapshot fields, set once its contents are in. */
static int mark_vdi(xcp__ctx *c, xcp__xva_import *m, const char *id,
                    const xcp_value *rec)
{
    xcp__obj *vdi = xcp__db_get_cls(c->db, C(VDI), mapped(m, id));
    const xcp_value *t = xcp_value_struct_get(rec, "snapshot_time");
    const char *of = mapped(m, rec_str(rec, "snapshot_of"));
    xcp_value v;
    int rc;

    if (!vdi)
        return 0;
    if ((rc = xcp__vdi_refresh(c, vdi)) < 0 ||
        (rc = xcp__db_set_bool(c->db, vdi, F(VDI, read_only),
                               rec_bool(rec, "read_only"))) < 0 ||
        (rc = xcp__db_set_bool(c->db, vdi, F(VDI, is_a_snapshot),
                               rec_bool(rec, "is_a_snapshot"))) < 0 ||
        (of && (rc = xcp__db_set_str(c->db, vdi, F(VDI, snapshot_of),
                                     of)) < 0))
        return rc;
    if (t && xcp_value_copy(&v, t) == 0) {
        if (xcp__value_check(xcp__classes[C(VDI)].fields[F(VDI, snapshot_time)]
                                 .type, &v, "snapshot_time") == 0)
            rc = xcp__db_set(c->db, vdi, F(VDI, snapshot_time), &v);
        else
            xcp_error_clear();
        xcp_value_dispose(&v);
    }
    return rc < 0 ? rc : xcp__update_allowed(c, vdi);
}

static int finish_txn(xcp__ctx *c, void *arg)
{
    xcp__xva_import *m = arg;
    struct task_end t = {m->task, &m->vms, NULL, -1};

    if (!m->r.metadata && each_of(c, m, "VDI", mark_vdi) < 0)
        return -1;
    return task_txn(c, &t);
}

static int undo_txn(xcp__ctx *c, void *arg)
{
    xcp__xva_import *m = arg;
    size_t i;
    xcp__obj *o;

    for (i = 0; m->made_vms.kind == XCP_VAL_ARRAY &&
                i < m->made_vms.u.arr.n; i++)
        if ((o = xcp__db_get_cls(c->db, C(VM), m->made_vms.u.arr.items[i].u.s)))
            xcp__vm_destroy_record(c, o);
    for (i = 0; m->made_vdis.kind == XCP_VAL_ARRAY &&
                i < m->made_vdis.u.arr.n; i++)
        if ((o = xcp__db_get_cls(c->db, C(VDI),
                                 m->made_vdis.u.arr.items[i].u.s)))
            xcp__vdi_delete(c, o);
    for (i = 0; m->made_nets.kind == XCP_VAL_ARRAY &&
                i < m->made_nets.u.arr.n; i++)
        if ((o = xcp__db_get_cls(c->db, C(network),
                                 m->made_nets.u.arr.items[i].u.s)))
            xcp__db_destroy(c->db, o);
    return 0;
}

static int import_check_end(xcp__xva_import *m)
{
    size_t i;

    if (xcp__xva_in_finish(m->in) < 0)
        return -1;
    if (!m->have_header)
        return XCP__ERR_IMPORT_ERROR_PREMATURE_EOF();
    for (i = 0; i < m->ndisks; i++)
        if (!m->disks[i].last_seen && m->disks[i].size)
            return XCP__ERR_IMPORT_ERROR_PREMATURE_EOF();
    return 0;
}

static void import_free(xcp__xva_import *m)
{
    size_t i;

    xcp__xva_in_free(m->in);
    xcp_value_dispose(&m->header);
    xcp_value_dispose(&m->made_vms);
    xcp_value_dispose(&m->made_vdis);
    xcp_value_dispose(&m->made_nets);
    xcp_value_dispose(&m->vms);
    xcp__hmap_free(&m->map);
    for (i = 0; i < m->nkeys; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->disks);
    free(m);
}

int xcp__xva_import_end(xcp__xva_import *m, int ok, xcp_value *vms)
{
    xcp__saved_error saved;
    int rc = 0;

    if (vms)
        vms->kind = XCP_VAL_NONE;
    if (!m)
        return 0;
    if (ok && import_check_end(m) < 0)
        rc = -1;
    if (!ok)
        rc = -1;
    close_streams(m, &rc);
    if (m->vms.kind != XCP_VAL_ARRAY)
        xcp_value_set_array(&m->vms, 0);
    if (rc == 0 && xcp__engine_txn(m->e, finish_txn, m) < 0)
        rc = -1;
    if (rc < 0) {
        xcp__error_save(&saved);
        xcp__engine_txn(m->e, undo_txn, m);
        xcp__error_restore(&saved);
        task_done(m->e, m->task, false, NULL);
    } else if (vms) {
        *vms = m->vms;
        m->vms.kind = XCP_VAL_NONE;
    }
    if (m->drop_task)
        xcp__task_drop(m->e, m->task);
    import_free(m);
    return rc;
}

/* ---- to and from a file descriptor ----------------------------------- */

#define FD_BLOCK ((size_t)1 << 20)

static int fd_sink(void *ctx, const void *buf, size_t n)
{
    return xcp__write_all(*(int *)ctx, buf, n) < 0
               ? XCP__ERR_VDI_IO_ERROR(strerror(errno))
               : 0;
}

int xcp__xva_export_fd(xcp__engine *e, const xcp__xva_export_req *r,
                       int fd, void (*progress)(void *, uint64_t, uint64_t),
                       void *pctx)
{
    xcp__xva_export_req local = *r;
    xcp__xva_export *x;
    int http, rc;

    local.drop_task = true; /* nobody else can name a task made here */
    if (xcp__xva_export_begin(e, &local, &x, &http) < 0)
        return -1;
    rc = xcp__xva_export_run(x, fd_sink, &fd, progress, pctx);
    return xcp__xva_export_end(x, rc == 0);
}

int xcp__xva_import_fd(xcp__engine *e, const xcp__xva_import_req *r,
                       int fd, void (*progress)(void *, uint64_t, uint64_t),
                       void *pctx, xcp_value *vms)
{
    xcp__xva_import_req local = *r;
    xcp__xva_import *m;
    uint8_t *buf;
    ssize_t n;
    int http, rc = 0;

    if (vms)
        vms->kind = XCP_VAL_NONE;
    if (!(buf = xcp__malloc(FD_BLOCK)))
        return xcp__oom();
    local.drop_task = true; /* nobody else can name a task made here */
    if (xcp__xva_import_begin(e, &local, &m, &http) < 0) {
        free(buf);
        return -1;
    }
    m->progress = progress;
    m->pctx = pctx;
    for (;;) {
        n = read(fd, buf, FD_BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = XCP__ERR_VDI_IO_ERROR(strerror(errno));
            break;
        }
        if (n == 0 || (rc = xcp__xva_import_write(m, buf, (size_t)n)) < 0)
            break;
    }
    free(buf);
    return xcp__xva_import_end(m, rc == 0, vms) < 0 || rc < 0 ? -1 : 0;
}
