/*
 * The SR layer's policy around the drivers: from SR/PBD/VDI records to a
 * driver target, VDI creation, copy-on-write children, copies and
 * deletion, with the records (sizes, chains, SR accounting) kept right.
 */
#include "storage.h"
#include "devices.h"
#include "../sr/image.h" /* XCP__CBT_BLOCK_SIZE */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int xcp__sr_fail_about(const xcp_sr_error *err, const xcp__sr_about *a)
{
    const char *reason = (err && err->reason[0]) ? err->reason
                                                 : "storage driver failure";
    const char *sr = a && a->sr ? a->sr : "";
    const char *vdi = a && a->vdi ? a->vdi : "";
    xcp_sr_error_kind kind = err ? err->kind : XCP_SR_ERR_BACKEND;
    char req[24], max[24];

    /* The errors that carry no message: the reason goes to the log. */
    if (kind != XCP_SR_ERR_BACKEND && kind != XCP_SR_ERR_VDI_IO &&
        kind != XCP_SR_ERR_VDI_SIZE && kind != XCP_SR_ERR_CHAIN_TOO_LONG)
        xcp__log(XCP__LOG_INFO, "SR %s: %s", sr, reason);
    switch (kind) {
    case XCP_SR_ERR_NOT_EMPTY:
        return XCP__ERR_SR_NOT_EMPTY();
    case XCP_SR_ERR_FULL:
        snprintf(req, sizeof(req), "%lld",
                 (long long)(a ? a->requested : 0));
        snprintf(max, sizeof(max), "%lld", (long long)(a ? a->maximum : 0));
        return XCP__ERR_SR_FULL(req, max);
    case XCP_SR_ERR_NOT_SUPPORTED:
        return XCP__ERR_SR_OPERATION_NOT_SUPPORTED(*sr ? sr : XCP_NULL_REF);
    case XCP_SR_ERR_VDI_MISSING:
        /* XAPI sends "" for what the call did not name. */
        return XCP__ERR_VDI_MISSING(sr, vdi);
    case XCP_SR_ERR_VDI_IO:
        return XCP__ERR_VDI_IO_ERROR(reason);
    case XCP_SR_ERR_VDI_READONLY:
        return XCP__ERR_VDI_READONLY(vdi);
    case XCP_SR_ERR_NO_CBT_METADATA:
        return XCP__ERR_VDI_NO_CBT_METADATA(vdi);
    case XCP_SR_ERR_VDI_SIZE:
    case XCP_SR_ERR_CHAIN_TOO_LONG: {
        /* sm's VDISize (79) and SnapshotChainTooLong (109), as XAPI
         * relays SM errors: named by their code. */
        const char *p[3] = {"", reason, ""};

        return xcp__failv(kind == XCP_SR_ERR_VDI_SIZE
                              ? "SR_BACKEND_FAILURE_79"
                              : "SR_BACKEND_FAILURE_109", 3, p);
    }
    case XCP_SR_ERR_BACKEND:
    default:
        return XCP__ERR_SR_BACKEND_FAILURE("", reason, "");
    }
}

xcp__sr_about xcp__sr_about_of(xcp__obj *sr, xcp__obj *vdi,
                               int64_t requested)
{
    xcp__sr_about a = {NULL, NULL, requested, 0};

    if (sr) {
        a.sr = sr->ref;
        a.maximum = xcp__obj_int(sr, F(SR, physical_size)) -
                    xcp__obj_int(sr, F(SR, physical_utilisation));
        if (a.maximum < 0)
            a.maximum = 0;
    }
    if (vdi)
        a.vdi = vdi->ref;
    return a;
}

int xcp__sr_fail(const xcp_sr_error *err, xcp__obj *sr, xcp__obj *vdi,
                 int64_t requested)
{
    xcp__sr_about a = xcp__sr_about_of(sr, vdi, requested);

    return xcp__sr_fail_about(err, &a);
}

void xcp__srt_free(xcp__srt *t)
{
    size_t i;

    if (t->lock)
        pthread_mutex_unlock(t->lock);
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

/* As xcp__srt_get, without taking sr_lock. */
static int srt_build(xcp__ctx *c, xcp__obj *sr, bool any_pbd, xcp__srt *out)
{
    const char *type = xcp__obj_str(sr, F(SR, type));
    xcp__obj *pbd;
    const xcp_value *dc;
    size_t i;

    memset(out, 0, sizeof(*out));
    if (!(out->type = xcp__sr_type_find(type)))
        return XCP__ERR_SR_UNKNOWN_DRIVER(type);
    pbd = local_pbd(c, sr);
    if (!pbd)
        return XCP__ERR_SR_HAS_NO_PBDS(sr->ref);
    if (!any_pbd && !xcp__obj_bool(pbd, F(PBD, currently_attached)))
        return XCP__ERR_SR_NOT_ATTACHED(sr->ref);
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

int xcp__srt_get(xcp__ctx *c, xcp__obj *sr, bool any_pbd, xcp__srt *out)
{
    int rc = srt_build(c, sr, any_pbd, out);

    if (rc == 0) {
        out->lock = &c->e->sr_lock;
        pthread_mutex_lock(out->lock);
    }
    return rc;
}

int xcp__sr_need(xcp__obj *sr, const xcp__srt *t, uint64_t cap)
{
    if (!(t->type->capabilities & cap))
        return XCP__ERR_SR_OPERATION_NOT_SUPPORTED(sr->ref);
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
int xcp__vdi_apply_info(xcp__ctx *c, xcp__obj *vdi,
                        const xcp_sr_vdi_info *in)
{
    int rc;

    if ((rc = xcp__db_set_int(c->db, vdi, F(VDI, virtual_size),
                              (int64_t)in->virtual_size)) < 0 ||
        (rc = xcp__db_set_int(c->db, vdi, F(VDI, physical_utilisation),
                              (int64_t)in->physical_utilisation)) < 0 ||
        (rc = xcp__db_set_str(c->db, vdi, F(VDI, location),
                              in->location)) < 0 ||
        (rc = xcp__db_map_put_str(c->db, vdi, F(VDI, sm_config), "image-format",
                                  in->format)) < 0 ||
        (rc = xcp__db_set_bool(c->db, vdi, F(VDI, cbt_enabled),
                               in->cbt_enabled)) < 0)
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
        return xcp__sr_fail(&err, sr, NULL, 0);
    if ((rc = xcp__db_set_int(c->db, sr, F(SR, physical_size),
                              (int64_t)st.physical_size)) < 0 ||
        (rc = xcp__db_set_int(c->db, sr, F(SR, physical_utilisation),
                              (int64_t)st.physical_utilisation)) < 0)
        return rc;
    return xcp__update_allowed(c, sr);
}

int xcp__sr_room(xcp__ctx *c, xcp__obj *sr, uint64_t need)
{
    xcp__srt t;
    xcp_sr_stat st;
    xcp_sr_error err;
    char req[24], max[24];
    int rc;

    if ((rc = xcp__srt_get(c, sr, false, &t)) < 0)
        return rc;
    memset(&err, 0, sizeof(err));
    memset(&st, 0, sizeof(st));
    rc = t.type->ops->sr_stat ? t.type->ops->sr_stat(&t.t, &st, &err) : -1;
    xcp__srt_free(&t);
    if (rc < 0 || need <= st.free_space)
        return 0;               /* or unknown: the writes will tell */
    snprintf(req, sizeof(req), "%llu", (unsigned long long)need);
    snprintf(max, sizeof(max), "%llu", (unsigned long long)st.free_space);
    return XCP__ERR_SR_FULL(req, max);
}

static int add_allocation(xcp__ctx *c, xcp__obj *sr, int64_t delta)
{
    int64_t cur = xcp__obj_int(sr, F(SR, virtual_allocation));

    return xcp__db_set_int(c->db, sr, F(SR, virtual_allocation),
                           cur + delta < 0 ? 0 : cur + delta);
}

/* ---- intents (see storage.h) ------------------------------------------- */

/* The error for a failed operation on the intent file (xcp__io_fail). */
static int intents_fail(const xcp__engine *e, const char *op, int err)
{
    char *path = xcp__printf("%s/sr-intents", e->state_dir);
    int rc = path ? xcp__io_fail(path, op, err) : xcp__oom();

    free(path);
    return rc;
}

int xcp__sr_intents_open(xcp__engine *e)
{
    char *path = xcp__printf("%s/sr-intents", e->state_dir);
    int rc;

    if (!path)
        return xcp__oom();
    e->intent_fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    rc = e->intent_fd < 0 ? xcp__io_fail(path, "open", errno) : 0;
    free(path);
    return rc;
}

/* Record that an image named by key (kind 'C': a VDI uuid, 'D', 'R': a
 * location) of sr is about to be made, deleted or changed in place; one
 * intent_done each. */
static int intent_add(xcp__ctx *c, char kind, xcp__obj *sr, const char *key)
{
    char *line = xcp__printf("%c %s %s\n", kind, xcp__obj_uuid(sr), key);
    xcp_sr_error err;
    off_t end;
    size_t len;

    if (!line)
        return xcp__oom();
    len = strlen(line);
    end = lseek(c->e->intent_fd, 0, SEEK_END);
    errno = EIO;                /* for a short write, which sets none */
    if (end >= 0 && write(c->e->intent_fd, line, len) == (ssize_t)len) {
        free(line);
        c->e->intents++;
        return 0;
    }
    memset(&err, 0, sizeof(err));
    err.kind = errno == ENOSPC || errno == EDQUOT ? XCP_SR_ERR_FULL
                                                  : XCP_SR_ERR_BACKEND;
    snprintf(err.reason, sizeof(err.reason), "cannot record an image "
             "operation [opterr=%s/sr-intents: %s]", c->e->state_dir,
             strerror(errno));
    /* No torn line for the next one to run into. */
    if (end >= 0 && ftruncate(c->e->intent_fd, end) < 0)
        xcp__log(XCP__LOG_WARN, "%s", err.reason);
    free(line);
    return xcp__sr_fail(&err, sr, NULL, (int64_t)len);
}

static void intent_done(xcp__engine *e)
{
    if (e->intents && --e->intents == 0 && ftruncate(e->intent_fd, 0) < 0)
        xcp__log(XCP__LOG_WARN, "cannot empty %s/sr-intents: %s",
                 e->state_dir, strerror(errno));
}

static void intent_end(void *arg, bool committed)
{
    (void)committed;
    intent_done(arg);
}

int xcp__vdi_intent(xcp__ctx *c, char kind, xcp__obj *sr,
                    const char *location)
{
    int rc = intent_add(c, kind, sr, location);

    if (rc == 0 && (rc = xcp__db_after_commit(c->db, intent_end, c->e)) < 0)
        intent_done(c->e);
    return rc;
}

int xcp__vdi_intent_refresh(xcp__ctx *c, xcp__obj *sr, const char *location)
{
    return xcp__vdi_intent(c, 'R', sr, location);
}

/* An image made or to be deleted, waiting for its transaction's end. */
struct pending_image {
    xcp__engine *e;
    xcp__srt t;                 /* built without sr_lock */
    char location[XCP_SR_LOCATION_MAX];
    bool made;                  /* made: deleted on abort; else on commit */
    bool later;                 /* deleted by the collector's thread */
    struct pending_image *next; /* in the engine's queue (later) */
};

void (*xcp__sr_drop_probe)(const char *location);

/* The deletion itself (no engine lock needed), if the transaction's end
 * calls for it. */
static void pending_image_drop(struct pending_image *d, bool committed)
{
    xcp_sr_error err;

    if (committed != d->made) {
        if (committed && xcp__sr_drop_probe)
            xcp__sr_drop_probe(d->location);
        memset(&err, 0, sizeof(err));
        pthread_mutex_lock(&d->e->sr_lock);
        if (d->t.type->ops->vdi_destroy(&d->t.t, d->location, &err) < 0 &&
            err.code != -ENOENT)
            xcp__log(XCP__LOG_WARN, "cannot delete %s of SR %s %s (it is "
                     "collected at the next open): %s", d->location,
                     d->t.t.sr_uuid, d->made ? "after a rolled back call"
                                             : "after its record went",
                     err.reason);
        pthread_mutex_unlock(&d->e->sr_lock);
    }
}

/* Engine lock held: the intent is done, d goes. */
static void pending_image_free(struct pending_image *d)
{
    intent_done(d->e);
    xcp__srt_free(&d->t);
    free(d);
}

static void pending_image_run(void *arg, bool committed)
{
    struct pending_image *d = arg;

    /* Queued for the collector's thread, which deletes it off the engine
     * lock, once the call has answered; its intent stays recorded until
     * then, so a crash meanwhile leaves it to the next open. */
    if (committed && d->later && d->e->gc_running) {
        d->next = d->e->doomed;
        d->e->doomed = d;
        xcp__sr_gc_request(d->e);
        return;
    }
    pending_image_drop(d, committed);
    /* Its parents may be free now, or mergeable. */
    if (committed != d->made)
        xcp__sr_gc_request(d->e);
    pending_image_free(d);
}

void xcp__sr_drop_doomed(xcp__engine *e)
{
    struct pending_image *d, *next;

    pthread_mutex_lock(&e->lock);
    d = e->doomed;
    e->doomed = NULL;
    pthread_mutex_unlock(&e->lock);
    for (; d; d = next) {
        next = d->next;
        pending_image_drop(d, true);
        pthread_mutex_lock(&e->lock);
        pending_image_free(d);
        pthread_mutex_unlock(&e->lock);
    }
}

/* Delete the image at location of sr when the transaction ends: at its
 * commit (made false) or its abort (made true).  Its intent is recorded
 * (deletions) or was (made: before the driver made it). */
static int image_on_txn_end(xcp__ctx *c, xcp__obj *sr, const char *location,
                            bool made, bool later)
{
    struct pending_image *d;
    int rc;

    if (!made && (rc = intent_add(c, 'D', sr, location)) < 0)
        return rc;
    if (!(d = xcp__calloc(1, sizeof(*d)))) {
        intent_done(c->e);
        return xcp__oom();
    }
    if ((rc = srt_build(c, sr, false, &d->t)) < 0) {
        intent_done(c->e);
        free(d);
        return rc;
    }
    d->e = c->e;
    d->made = made;
    d->later = later;
    snprintf(d->location, sizeof(d->location), "%s", location);
    return xcp__db_after_commit(c->db, pending_image_run, d);
}

/* A switch of a VDI's changed block tracking left to the end of its
 * call's transaction (xcp__vdi_cbt_on_txn_end). */
struct pending_cbt {
    xcp__engine *e;
    xcp__srt t;                 /* built without sr_lock */
    char location[XCP_SR_LOCATION_MAX];
    bool on, at_commit, live;
    xcp__live_disk disk;
    xcp_sr_vdi_path path;
};

/* The switch itself (sr_lock held): by the SR's driver, the disk's back
 * end paused around it; or by the back end that holds the image open. */
static int pending_cbt_switch(struct pending_cbt *p, char *why, size_t len)
{
    xcp_sr_error err;
    xcp_hv_error he;
    int rc;

    if (p->live && !xcp__live_can_pause(p->e->hv)) {
        rc = xcp__hv_disk_cbt(p->e->hv, p->disk.domid, p->disk.vdev,
                              XCP_HV_CBT_BITMAP, p->on, &he);
        snprintf(why, len, "%s", rc < 0 ? he.message : "");
        return rc;
    }
    if (p->live && (rc = xcp__live_pause_path(p->e->hv, &p->disk)) < 0) {
        snprintf(why, len, "its back end did not pause");
        return rc;
    }
    memset(&err, 0, sizeof(err));
    rc = p->t.type->ops->vdi_cbt_set(&p->t.t, p->location, p->on, &err);
    snprintf(why, len, "%s", rc < 0 ? err.reason : "");
    if (p->live)
        xcp__live_reopen_path(p->e->hv, &p->disk, &p->path);
    return rc;
}

static void pending_cbt_run(void *arg, bool committed)
{
    struct pending_cbt *p = arg;
    char why[XCP_SR_REASON_MAX];

    if (committed == p->at_commit) {
        pthread_mutex_lock(&p->e->sr_lock);
        if (pending_cbt_switch(p, why, sizeof(why)) < 0)
            xcp__log(XCP__LOG_WARN, "changed block tracking of %s of SR %s "
                     "not switched %s %s: %s", p->location,
                     p->t.t.sr_uuid, p->on ? "on" : "off",
                     committed ? "after its record" : "back after a rolled "
                                                      "back call", why);
        pthread_mutex_unlock(&p->e->sr_lock);
    }
    xcp__srt_free(&p->t);
    free(p);
}

int xcp__vdi_cbt_on_txn_end(xcp__ctx *c, xcp__obj *vdi, xcp__obj *sr,
                            bool on, bool at_commit,
                            const xcp__live_disk *live)
{
    struct pending_cbt *p = xcp__calloc(1, sizeof(*p));
    int rc;

    if (!p)
        return xcp__oom();
    if ((live && (rc = xcp__vdi_path(c, vdi, &p->path)) < 0) ||
        (rc = srt_build(c, sr, false, &p->t)) < 0) {
        free(p);
        return rc;
    }
    p->e = c->e;
    p->on = on;
    p->at_commit = at_commit;
    p->live = live != NULL;
    if (live)
        p->disk = *live;
    snprintf(p->location, sizeof(p->location), "%s",
             xcp__obj_str(vdi, F(VDI, location)));
    return xcp__db_after_commit(c->db, pending_cbt_run, p);
}

int xcp__image_format_check(const char *format)
{
    if (!format || !strcmp(format, "vhd") || !strcmp(format, "qcow2"))
        return 0;
    return XCP__ERR_INVALID_VALUE("sm_config:image-format", format);
}

const char *xcp__image_format_arg(const xcp_value *sm_config)
{
    const xcp_value *v = sm_config && sm_config->kind == XCP_VAL_STRUCT
                             ? xcp_value_struct_get(sm_config, "image-format")
                             : NULL;

    return v && v->kind == XCP_VAL_STRING ? v->u.s : NULL;
}

const char *xcp__sr_image_format(xcp__obj *sr)
{
    const char *f = xcp__obj_map_str(sr, F(SR, sm_config), "image-format");

    return f && *f ? f : NULL;
}

/* Before the driver makes an image: its uuid, and the intent. */
static int image_to_make(xcp__ctx *c, xcp__obj *sr, char uuid[37])
{
    xcp__uuid_gen(uuid);
    return intent_add(c, 'C', sr, uuid);
}

static int new_record(xcp__ctx *c, xcp__obj *sr, const xcp_sr_vdi_info *in,
                      const char *name, const char *descr, const char *type,
                      xcp__obj **out)
{
    xcp__obj *v;
    int rc;

    /* Whatever fails from here, the image goes with the rollback. */
    if ((rc = image_on_txn_end(c, sr, in->location, true, false)) < 0 ||
        (rc = xcp__db_create(c->db, C(VDI), NULL, in->uuid[0] ? in->uuid
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
        (rc = xcp__vdi_apply_info(c, v, in)) < 0 ||
        (rc = add_allocation(c, sr, (int64_t)in->virtual_size)) < 0 ||
        (rc = xcp__update_allowed(c, v)) < 0)
        return rc;
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
    char uuid[37];
    int rc;

    if (size < 0) {
        char num[32];
        snprintf(num, sizeof(num), "%lld", (long long)size);
        return XCP__ERR_INVALID_VALUE("virtual_size", num);
    }
    if (!format)
        format = xcp__sr_image_format(sr);
    if ((rc = xcp__srt_get(c, sr, false, &t)) < 0)
        return rc;
    if ((rc = xcp__sr_need(sr, &t, XCP_SR_CAP_VDI_CREATE)) < 0 ||
        (rc = image_to_make(c, sr, uuid)) < 0)
        goto out;
    memset(&p, 0, sizeof(p));
    memset(&info, 0, sizeof(info));
    memset(&err, 0, sizeof(err));
    p.version = 1;
    p.uuid = uuid;
    p.virtual_size = (uint64_t)size;
    p.format = format;
    if (t.type->ops->vdi_create(&t.t, &p, &info, &err) < 0) {
        intent_done(c->e);
        rc = xcp__sr_fail(&err, sr, NULL, size);
        goto out;
    }
    if ((rc = new_record(c, sr, &info, name, descr, type, out)) == 0)
        xcp__sr_refresh(c, sr);
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
        rc = XCP__ERR_SR_OPERATION_NOT_SUPPORTED(sr->ref);
    } else if (t.type->ops->vdi_path(&t.t, xcp__obj_str(vdi, F(VDI, location)),
                                     out, &err) < 0) {
        rc = xcp__sr_fail(&err, sr, vdi, 0);
    }
    c->e->sr_open_gen++;        /* sr_lock held */
    xcp__srt_free(&t);
    return rc;
}

bool xcp__vdi_attached(xcp__ctx *c, xcp__obj *vdi)
{
    return xcp__set_member_with(c, vdi, F(VDI, VBDs), C(VBD),
                                F(VBD, currently_attached)) != NULL;
}

struct xcp__vdi_stream {
    xcp__engine *e;
    struct xcp__vdi_stream *next;   /* e->sr_writers, when writing */
    bool writer;
    const xcp_sr_ops *ops;
    xcp_sr_stream *s;
    uint64_t size;
    xcp__sr_about about;        /* its refs point to sr and vdi below */
    char sr[XCP_REF_MAX];
    char vdi[XCP_REF_MAX];
};

/* Whether a stream writes into VDI vdi_ref now (sr_lock held). */
static bool vdi_writer(xcp__engine *e, const char *vdi_ref)
{
    const xcp__vdi_stream *w;

    for (w = e->sr_writers; w; w = w->next)
        if (!strcmp(w->vdi, vdi_ref))
            return true;
    return false;
}

int xcp__vdi_stream_open(xcp__ctx *c, xcp__obj *vdi, const char *write_op,
                         xcp__vdi_stream **out)
{
    const xcp_sr_ops *ops;
    xcp__vdi_stream *s;
    xcp__obj *sr;
    xcp__srt t;
    xcp_sr_error err;
    int rc;

    *out = NULL;
    if (write_op && (xcp__obj_bool(vdi, F(VDI, read_only)) ||
                     xcp__obj_bool(vdi, F(VDI, is_a_snapshot))))
        return XCP__ERR_VDI_READONLY(vdi->ref);
    if (write_op && xcp__vdi_attached(c, vdi))
        return XCP__ERR_VDI_IN_USE(vdi->ref, write_op);
    if ((rc = vdi_target(c, vdi, &sr, &t)) < 0)
        return rc;
    ops = t.type->ops;
    memset(&err, 0, sizeof(err));
    if (write_op && vdi_writer(c->e, vdi->ref)) {
        /* A second writer (another import) would interleave its blocks
           with the first's: refused as a VBD would be. */
        rc = XCP__ERR_VDI_IN_USE(vdi->ref, write_op);
    } else if (ops->version < 3 || !ops->vdi_stream_open) {
        rc = XCP__ERR_SR_OPERATION_NOT_SUPPORTED(sr->ref);
    } else if (!(s = xcp__calloc(1, sizeof(*s)))) {
        rc = xcp__oom();
    } else if (ops->vdi_stream_open(&t.t, xcp__obj_str(vdi, F(VDI, location)),
                                    write_op ? XCP_SR_STREAM_WRITE : 0,
                                    &s->s, &s->size, &err) < 0) {
        free(s);
        rc = xcp__sr_fail(&err, sr, vdi, 0);
    } else {
        s->e = c->e;
        s->ops = ops;
        c->e->sr_open_gen++;    /* sr_lock held */
        __atomic_add_fetch(&c->e->sr_streams, 1, __ATOMIC_SEQ_CST);
        s->about = xcp__sr_about_of(sr, vdi, 0);
        snprintf(s->sr, sizeof(s->sr), "%s", sr->ref);
        snprintf(s->vdi, sizeof(s->vdi), "%s", vdi->ref);
        s->about.sr = s->sr;
        s->about.vdi = s->vdi;
        if (write_op) {         /* sr_lock held */
            s->writer = true;
            s->next = c->e->sr_writers;
            c->e->sr_writers = s;
        }
        *out = s;
    }
    xcp__srt_free(&t);
    return rc;
}

uint64_t xcp__vdi_stream_size(const xcp__vdi_stream *s)
{
    return s->size;
}

int xcp__vdi_stream_read(xcp__vdi_stream *s, uint64_t offset, void *buf,
                         size_t n)
{
    xcp_sr_error err;

    memset(&err, 0, sizeof(err));
    return s->ops->stream_read(s->s, offset, buf, n, &err) < 0
               ? xcp__sr_fail_about(&err, &s->about) : 0;
}

int xcp__vdi_stream_write(xcp__vdi_stream *s, uint64_t offset,
                          const void *buf, size_t n)
{
    xcp_sr_error err;

    memset(&err, 0, sizeof(err));
    if (s->ops->stream_write(s->s, offset, buf, n, &err) == 0)
        return 0;
    s->about.requested = (int64_t)n;    /* SR_FULL: this write's */
    return xcp__sr_fail_about(&err, &s->about);
}


int xcp__vdi_stream_extents(xcp__vdi_stream *s, uint64_t offset,
                            uint64_t length, xcp_sr_extent_cb cb, void *ctx)
{
    xcp_sr_error err;
    int rc;

    memset(&err, 0, sizeof(err));
    rc = s->ops->stream_extents(s->s, offset, length, cb, ctx, &err);
    return rc < 0 && err.code ? xcp__sr_fail_about(&err, &s->about) : rc;
}

int xcp__vdi_stream_map(xcp__vdi_stream *s, uint64_t offset,
                        uint64_t length, int *fd, uint64_t *pos,
                        uint64_t *len)
{
    xcp_sr_error err;

    *fd = -1;
    *pos = 0;
    *len = length;
    if (s->ops->version < 9 || !s->ops->stream_map)
        return 0;
    memset(&err, 0, sizeof(err));
    if (s->ops->stream_map(s->s, offset, length, fd, pos, len, &err) < 0)
        return xcp__sr_fail_about(&err, &s->about);
    if (*len == 0 || *len > length) {   /* a driver's bug: read instead */
        *fd = -1;
        *len = length;
    }
    return 0;
}

int xcp__vdi_stream_close(xcp__vdi_stream *s)
{
    xcp_sr_error err;
    int rc;

    if (!s)
        return 0;
    memset(&err, 0, sizeof(err));
    if ((rc = s->ops->stream_close(s->s, &err)) < 0)
        rc = xcp__sr_fail_about(&err, &s->about);
    if (s->writer) {
        xcp__vdi_stream **p;

        pthread_mutex_lock(&s->e->sr_lock);
        for (p = &s->e->sr_writers; *p; p = &(*p)->next)
            if (*p == s) {
                *p = s->next;
                break;
            }
        pthread_mutex_unlock(&s->e->sr_lock);
    }
    __atomic_sub_fetch(&s->e->sr_streams, 1, __ATOMIC_SEQ_CST);
    free(s);
    return rc;
}

/* xcp__vdi_delete; later: its image deleted after the call answered. */
static int vdi_delete(xcp__ctx *c, xcp__obj *vdi, bool later)
{
    xcp__obj *sr;
    xcp__srt t;
    const xcp_value *vbds = xcp__obj_val(vdi, F(VDI, VBDs));
    int rc;

    if (vbds->kind == XCP_VAL_ARRAY && vbds->u.arr.n > 0)
        return XCP__ERR_VDI_IN_USE(vdi->ref, "destroy");
    if ((rc = vdi_target(c, vdi, &sr, &t)) < 0)
        return rc;
    if ((rc = xcp__sr_need(sr, &t, XCP_SR_CAP_VDI_DELETE)) < 0 ||
        (rc = image_on_txn_end(c, sr, xcp__obj_str(vdi, F(VDI, location)),
                               false, later)) < 0)
        goto out;
    if ((rc = add_allocation(c, sr, -xcp__obj_int(vdi, F(VDI, virtual_size)))) <
            0 ||
        (rc = xcp__db_destroy(c->db, vdi)) < 0)
        goto out;
    xcp__sr_refresh(c, sr);
out:
    xcp__srt_free(&t);
    return rc;
}

int xcp__vdi_delete(xcp__ctx *c, xcp__obj *vdi)
{
    return vdi_delete(c, vdi, false);
}

int xcp__vdi_delete_later(xcp__ctx *c, xcp__obj *vdi)
{
    return vdi_delete(c, vdi, true);
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
        rc = xcp__sr_fail(&err, sr, vdi, 0);
    else if (t.type->ops->vdi_stat)
        rc = xcp__vdi_apply_info(c, vdi, &info);
    xcp__srt_free(&t);
    return rc;
}

static bool gc_one(xcp__engine *e, const xcp__srt *t,
                   xcp_sr_gc_result *res);

/*
 * The driver's snapshot or clone (live: of a VDI whose writer keeps its
 * image open, vdi_cow_live).  A chain too long for the type (-EMLINK) is
 * normally kept short by the background collector; should it lag behind
 * (a burst of snapshot-and-delete cycles), its pass runs here, taking the
 * merges over from a background run under way, and the call is tried
 * once more.
 */
static int cow_once(xcp__srt *t, bool snapshot, const char *location,
                    const char *uuid, const xcp_sr_cow_hooks *live,
                    xcp_sr_cow_result *res, xcp_sr_error *err)
{
    const xcp_sr_ops *o = t->type->ops;

    memset(res, 0, sizeof(*res));
    memset(err, 0, sizeof(*err));
    if (live)
        return o->vdi_cow_live(&t->t, location, snapshot, uuid, live, res,
                               err);
    if (o->version >= 2 && o->vdi_cow)
        return o->vdi_cow(&t->t, location, snapshot, uuid, res, err);
    return (snapshot ? o->vdi_snapshot : o->vdi_clone)(&t->t, location, res,
                                                       err);
}

static int cow_call(xcp__engine *e, xcp__srt *t, bool snapshot,
                    const char *location, const char *uuid,
                    const xcp_sr_cow_hooks *live, xcp_sr_cow_result *res,
                    xcp_sr_error *err)
{
    xcp_sr_gc_result gr;
    int rc = cow_once(t, snapshot, location, uuid, live, res, err);

    if (rc == -EMLINK && (t->type->capabilities & XCP_SR_CAP_SR_GC) &&
        gc_one(e, t, &gr))
        rc = cow_once(t, snapshot, location, uuid, live, res, err);
    return rc;
}

/* One snapshot or clone, and how it failed: sr (the SR's err), or with
 * the XenAPI error set already. */
struct cow_args {
    xcp__engine *e;
    xcp__srt *t;
    bool snapshot, sr_failed;
    const char *location, *uuid;
    const xcp_sr_cow_hooks *live;
    xcp_sr_cow_result *res;
    xcp_sr_error *err;
};

static int cow_run(void *arg)
{
    struct cow_args *a = arg;
    int rc = cow_call(a->e, a->t, a->snapshot, a->location, a->uuid,
                      a->live, a->res, a->err);

    a->sr_failed = rc < 0;
    return rc;
}

/*
 * The snapshot or clone of a VDI a running VM has attached (disk d): the
 * copy must be of one instant.  The back end is paused around the SR's
 * call when the hypervisor driver can (as XAPI pauses tapdisk), else it
 * moves its writes onto the new leaf itself at the snapshot's instant
 * (disk_snapshot, through the SR's vdi_cow_live); else, and for a VDI
 * with changed block tracking (whose bitmap that back end keeps), the
 * call is refused: VDI_IN_USE, nothing changed.
 */
static int cow_live(xcp__ctx *c, xcp__obj *vdi, const xcp__live_disk *d,
                    struct cow_args *a)
{
    xcp__live_writer w;
    xcp_sr_cow_hooks h = {1, &w, xcp__live_switch_to};
    int rc;

    if (xcp__live_can_pause(c->e->hv))
        return xcp__vdi_live_change(c, vdi, d, cow_run, a);
    /* (the image's format is the back end's to refuse: a domain gone
     * meanwhile, as at VM.checkpoint, writes nothing to move) */
    if (!xcp__vdi_live_cow_ok(c, vdi, false)) {
        xcp__log(XCP__LOG_WARN, "VDI %s: domain %u disk %s can neither be "
                 "paused nor moved onto a new leaf: no %s while it runs",
                 xcp__obj_str(vdi, F(VDI, uuid)), d->domid, d->vdev,
                 a->snapshot ? "snapshot" : "clone");
        return XCP__ERR_VDI_IN_USE(vdi->ref,
                                   a->snapshot ? "snapshot" : "clone");
    }
    memset(&w, 0, sizeof(w));
    w.hv = c->e->hv;
    w.disk = *d;
    if (xcp__live_stream_stop(c->e, d, &w.e) < 0)
        return xcp__live_fail(&w.e);
    a->live = &h;
    rc = cow_run(a);
    a->live = NULL;
    if (rc < 0 && w.failed) {
        a->sr_failed = false;
        return xcp__live_fail(&w.e);
    }
    return rc;
}

int xcp__vdi_cow(xcp__ctx *c, xcp__obj *vdi, bool snapshot, xcp__obj **out)
{
    xcp__obj *sr, *n;
    xcp__srt t;
    xcp_sr_cow_result res;
    xcp_sr_error err;
    xcp__live_disk d;
    struct cow_args a;
    char uuid[37];
    bool live;
    int rc;

    if ((rc = vdi_target(c, vdi, &sr, &t)) < 0)
        return rc;
    if ((rc = xcp__sr_need(sr, &t, snapshot ? XCP_SR_CAP_VDI_SNAPSHOT
                                           : XCP_SR_CAP_VDI_CLONE)) < 0)
        goto out;
    memset(&res, 0, sizeof(res));
    memset(&err, 0, sizeof(err));
    if ((rc = image_to_make(c, sr, uuid)) < 0)
        goto out;
    a = (struct cow_args){c->e, &t, snapshot, false,
                          xcp__obj_str(vdi, F(VDI, location)), uuid, NULL,
                          &res, &err};
    live = xcp__vdi_attached(c, vdi) && xcp__vdi_live_find(c, vdi, &d);
    rc = live ? cow_live(c, vdi, &d, &a) : cow_run(&a);
    if (rc < 0) {
        intent_done(c->e);
        if (a.sr_failed)
            rc = xcp__sr_fail(&err, sr, vdi,
                              xcp__obj_int(vdi, F(VDI, virtual_size)));
        goto out;
    }
    if ((rc = xcp__vdi_apply_info(c, vdi, &res.source)) < 0)
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
    /* What each may do depends on being a snapshot, on tracking. */
    if ((rc = xcp__update_allowed(c, n)) < 0 ||
        (rc = xcp__update_allowed(c, vdi)) < 0)
        goto out;
    xcp__sr_refresh(c, sr);
    *out = n;
out:
    xcp__srt_free(&t);
    return rc;
}

/* Bytes a converting copy moves at a time. */
#define CONVERT_CHUNK (1u << 20)

struct convert {
    xcp__vdi_stream *src, *dst;
    uint8_t *buf;
};

/* One data extent of the source: chunks that read as zeros are left
 * out, so the copy stays sparse. */
static int convert_extent(void *ctx, uint64_t offset, uint64_t length)
{
    struct convert *cv = ctx;
    size_t n;
    int rc;

    while (length) {
        n = length < CONVERT_CHUNK ? (size_t)length : CONVERT_CHUNK;
        if ((rc = xcp__vdi_stream_read(cv->src, offset, cv->buf, n)) < 0)
            return rc;
        if ((cv->buf[0] || memcmp(cv->buf, cv->buf + 1, n - 1)) &&
            (rc = xcp__vdi_stream_write(cv->dst, offset, cv->buf, n)) < 0)
            return rc;
        offset += n;
        length -= n;
    }
    return 0;
}

/*
 * A copy into another image format: a new VDI of that format in dst_sr
 * (its image goes with the rollback should anything fail), then the
 * source's data extents through the VDI streams of both SRs, whatever
 * their types.
 */
static int convert_copy(xcp__ctx *c, xcp__obj *vdi, xcp__obj *dst_sr,
                        const char *format, xcp__obj **out)
{
    struct convert cv = {NULL, NULL, NULL};
    int rc, rc2;

    if ((rc = xcp__vdi_stream_open(c, vdi, NULL, &cv.src)) < 0)
        return rc;
    rc = xcp__vdi_new(c, dst_sr, xcp__obj_str(vdi, F(VDI, name_label)),
                      xcp__obj_str(vdi, F(VDI, name_description)),
                      (int64_t)xcp__vdi_stream_size(cv.src),
                      xcp__obj_str(vdi, F(VDI, type)), format, out);
    if (rc == 0)
        rc = xcp__vdi_stream_open(c, *out, "copy", &cv.dst);
    if (rc == 0 && !(cv.buf = malloc(CONVERT_CHUNK)))
        rc = xcp__oom();
    if (rc == 0)
        rc = xcp__vdi_stream_extents(cv.src, 0, xcp__vdi_stream_size(cv.src),
                                     convert_extent, &cv);
    free(cv.buf);
    xcp__vdi_stream_close(cv.src);
    rc2 = xcp__vdi_stream_close(cv.dst);
    if (rc == 0)
        rc = rc2;
    if (rc == 0 && (rc = xcp__vdi_refresh(c, *out)) == 0)
        xcp__sr_refresh(c, dst_sr);
    return rc;
}

/* The format a copy of vdi into dst_sr has: the SR's default, as a VDI
 * created there without an image-format (XAPI's VDI.copy makes the new
 * VDI so); raw images (suspend images) stay raw. */
static const char *copy_format(xcp__obj *vdi, xcp__obj *dst_sr)
{
    const char *src = xcp__obj_map_str(vdi, F(VDI, sm_config),
                                       "image-format");
    const char *dst = xcp__sr_image_format(dst_sr);

    if (!src || !*src || !strcmp(src, "raw"))
        return NULL;
    if (!dst)
        dst = XCP__DEFAULT_IMAGE_FORMAT;
    return strcmp(src, dst) ? dst : NULL;
}

int xcp__vdi_full_copy(xcp__ctx *c, xcp__obj *vdi, xcp__obj *dst_sr,
                       xcp__obj **out)
{
    xcp__obj *sr;
    xcp__srt ts, td;
    xcp_sr_vdi_info info;
    xcp_sr_error err;
    const char *format;
    char uuid[37];
    int rc;

    if ((rc = xcp__ref_obj(c, xcp__obj_str(vdi, F(VDI, SR)), C(SR), &sr)) < 0)
        return rc;
    if (!dst_sr)
        dst_sr = sr;
    if ((format = copy_format(vdi, dst_sr)))
        return convert_copy(c, vdi, dst_sr, format, out);
    if ((rc = xcp__srt_get(c, sr, false, &ts)) < 0)
        return rc;
    if ((rc = xcp__srt_get(c, dst_sr, false, &td)) < 0) {
        xcp__srt_free(&ts);
        return rc;
    }
    if ((rc = xcp__sr_need(dst_sr, &td, XCP_SR_CAP_VDI_COPY)) < 0 ||
        (rc = image_to_make(c, dst_sr, uuid)) < 0)
        goto out;
    memset(&info, 0, sizeof(info));
    memset(&err, 0, sizeof(err));
    if (td.type->ops->vdi_copy(&ts.t, xcp__obj_str(vdi, F(VDI, location)),
                               &td.t, uuid, &info, &err) < 0) {
        /* About the source VDI in its SR; the space is dst_sr's. */
        xcp__sr_about a = xcp__sr_about_of(
            dst_sr, vdi, xcp__obj_int(vdi, F(VDI, virtual_size)));

        a.sr = sr->ref;
        intent_done(c->e);
        rc = xcp__sr_fail_about(&err, &a);
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

/* ---- the SR collector ----------------------------------------------------- */

void xcp__sr_gc_request(xcp__engine *e)
{
    e->gc_wanted = true;
    pthread_cond_signal(&e->gc_cond);
}

/* An attached VDI: its location, and the device to pause, if the
 * hypervisor driver can (live), with the image to reopen. */
struct gc_busy {
    char *location;
    bool live, paused;
    bool stream;                /* else its back end may stream (Xen) */
    xcp__live_disk disk;
    xcp_sr_vdi_path path;
};

/* One SR for a collector pass. */
struct gc_job {
    char sr[XCP_REF_MAX];
    xcp__srt t;                 /* built without sr_lock */
    /* Its VDIs attached to running VMs at planning time: their images
     * are replaced only with their back ends paused (see gc_pause). */
    struct gc_busy *busy;
    size_t nbusy;
    bool changed;
};

struct gc_pass {
    struct gc_job *jobs;
    size_t n;
    uint64_t open_gen;          /* e->sr_open_gen at planning */
};

/* The locations of sr's VDIs a VBD has attached. */
static int gc_busy(xcp__ctx *c, xcp__obj *sr, struct gc_job *j)
{
    const xcp_value *vdis = xcp__obj_val(sr, F(SR, VDIs));
    size_t i, n = vdis->kind == XCP_VAL_ARRAY ? vdis->u.arr.n : 0;

    if (n && !(j->busy = xcp__calloc(n, sizeof(*j->busy))))
        return xcp__oom();
    for (i = 0; i < n; i++) {
        xcp__obj *v = xcp__db_get_cls(c->db, C(VDI), vdis->u.arr.items[i].u.s);
        struct gc_busy *b = &j->busy[j->nbusy];
        xcp_sr_error err;
        if (!v || !xcp__vdi_attached(c, v))
            continue;
        if (!(b->location = xcp__strdup(xcp__obj_str(v, F(VDI, location)))))
            return xcp__oom();
        j->nbusy++;
        memset(&err, 0, sizeof(err));
        /* the driver's own call: no image is handed out (sr_open_gen) */
        b->live = xcp__live_can_pause(c->e->hv) && j->t.type->ops->vdi_path &&
                  xcp__vdi_live_find(c, v, &b->disk) &&
                  j->t.type->ops->vdi_path(&j->t.t, b->location, &b->path,
                                           &err) == 0;
        b->stream = !xcp__live_can_pause(c->e->hv) &&
                    xcp__hv_supports(c->e->hv, XCP_HV_OP_DISK_STREAM) &&
                    xcp__vdi_live_find(c, v, &b->disk);
    }
    return 0;
}

static void gc_job_free(struct gc_job *j)
{
    size_t i;

    for (i = 0; i < j->nbusy; i++)
        free(j->busy[i].location);
    free(j->busy);
    xcp__srt_free(&j->t);
}

/* The SRs attached here whose type can gc (engine lock held). */
static int gc_plan(xcp__ctx *c, void *arg)
{
    struct gc_pass *p = arg;
    xcp__obj *const *srs;
    size_t i, n;
    int rc;

    srs = xcp__db_all(c->db, C(SR), &n);
    p->jobs = n ? xcp__calloc(n, sizeof(*p->jobs)) : NULL;
    if (n && !p->jobs)
        return xcp__oom();
    p->open_gen = c->e->sr_open_gen;
    for (i = 0; i < n; i++) {
        struct gc_job *j = &p->jobs[p->n];
        const xcp_sr_type *type = xcp__sr_type_find(xcp__obj_str(srs[i],
                                                                 F(SR, type)));
        if (!type || !(type->capabilities & XCP_SR_CAP_SR_GC) ||
            srt_build(c, srs[i], false, &j->t) < 0)
            continue;
        snprintf(j->sr, sizeof(j->sr), "%s", srs[i]->ref);
        p->n++;
        if ((rc = gc_busy(c, srs[i], j)) < 0)
            return rc;
    }
    xcp_error_clear(); /* SRs not attached here are simply skipped */
    return 0;
}

/* The records of the SRs the collector changed: their space, and their
 * VDIs' parents (a merge points images at new parents). */
static int gc_refresh(xcp__ctx *c, void *arg)
{
    struct gc_pass *p = arg;
    xcp__saved_error saved;
    const xcp_value *vdis;
    size_t i, k;

    xcp__error_save(&saved);
    for (i = 0; i < p->n; i++) {
        xcp__obj *sr = xcp__db_get_cls(c->db, C(SR), p->jobs[i].sr);
        if (!sr || !p->jobs[i].changed)
            continue;
        vdis = xcp__obj_val(sr, F(SR, VDIs));
        for (k = 0; vdis->kind == XCP_VAL_ARRAY && k < vdis->u.arr.n; k++) {
            xcp__obj *v = xcp__db_get_cls(c->db, C(VDI),
                                          vdis->u.arr.items[k].u.s);
            if (v)
                xcp__vdi_refresh(c, v);
        }
        xcp__sr_refresh(c, sr);
    }
    xcp__error_restore(&saved);
    return 0;
}

/*
 * What the collector thread lends a driver's run (xcp_sr_gc_hooks): the
 * SR lock let go around the long copies, progress into a task, and the
 * pause of a leaf's writer.
 */
struct gc_ctx {
    xcp__engine *e;
    const struct gc_job *job;
    uint64_t open_gen;
    char task[XCP_REF_MAX];     /* "Garbage collection" task, or "" */
    char what[XCP_SR_LOCATION_MAX];
    double progress;
    int64_t last_ms;
};

static void gc_unlock(void *ctx)
{
    pthread_mutex_unlock(&((struct gc_ctx *)ctx)->e->sr_lock);
}

static void gc_lock(void *ctx)
{
    pthread_mutex_lock(&((struct gc_ctx *)ctx)->e->sr_lock);
}

/* The task's update: progress in [0, 1], or its end (progress < 0). */
static int gc_task_txn(xcp__ctx *c, void *arg)
{
    struct gc_ctx *g = arg;
    xcp__obj *t = g->task[0] ? xcp__db_get_cls(c->db, C(task), g->task)
                             : NULL;
    char *descr;
    int rc;

    if (g->progress < 0)
        return t ? xcp__task_complete(c, t, NULL, NULL) : 0;
    if (!t) {
        /* As XAPI's storage garbage collector shows itself. */
        descr = xcp__printf("Coalescing %s in SR %s", g->what,
                            g->job->t.t.sr_uuid);
        rc = descr ? xcp__task_new(c, "Garbage collection", descr, &t)
                   : xcp__oom();
        free(descr);
        if (rc < 0)
            return rc;
        snprintf(g->task, sizeof(g->task), "%s", t->ref);
    }
    return xcp__db_set_float(c->db, t, F(task, progress), g->progress);
}

/* The end of the task of the merge under way, if any (SR lock not held). */
static void gc_task_end(struct gc_ctx *g)
{
    /* A merge whose reports all found the engine lock busy still shows
     * its task, done. */
    g->progress = 1.0;
    if (g->what[0] && !g->task[0] &&
        xcp__engine_txn(g->e, gc_task_txn, g) < 0)
        xcp_error_clear();
    g->progress = -1;
    if (g->task[0] && xcp__engine_txn(g->e, gc_task_txn, g) < 0)
        xcp_error_clear();
    g->task[0] = '\0';
}

/*
 * Called unlocked (neither the engine lock nor sr_lock held), and never
 * waits for the engine lock: a call holding it may be waiting for this
 * run to stop (gc_take_over).  Progress is best effort: when the lock is
 * busy it is told at a later report.
 */
static int gc_progress(void *ctx, const char *location, uint64_t done,
                       uint64_t total)
{
    struct gc_ctx *g = ctx;
    int64_t now = xcp__now_ms();
    int rc;

    /* Closing, or a call takes the merges over: the journal resumes. */
    if (__atomic_load_n(&g->e->gc_stop, __ATOMIC_SEQ_CST) ||
        __atomic_load_n(&g->e->gc_yield, __ATOMIC_SEQ_CST))
        return 1;
    if (strcmp(location, g->what) != 0) {
        g->progress = -1;
        if (g->task[0] &&
            (rc = xcp__engine_try_txn(g->e, gc_task_txn, g)) != 0) {
            if (rc < 0)
                xcp_error_clear();
            return 0;           /* the old task ends at a later report */
        }
        g->task[0] = '\0';
        snprintf(g->what, sizeof(g->what), "%s", location);
        g->last_ms = 0;
    }
    if (now - g->last_ms < 200 && done < total)
        return 0;
    g->progress = total ? (double)done / (double)total : 1.0;
    if ((rc = xcp__engine_try_txn(g->e, gc_task_txn, g)) < 0)
        xcp_error_clear();
    if (rc <= 0)
        g->last_ms = now;
    return 0;
}

/* The attached VDI of job at location, or NULL. */
static struct gc_busy *gc_busy_find(const struct gc_job *job,
                                    const char *location)
{
    size_t i;

    for (i = 0; i < job->nbusy; i++)
        if (!strcmp(job->busy[i].location, location))
            return &job->busy[i];
    return NULL;
}

/* The disk whose stream the run may start (NULL: none), told before
 * sr_lock is let go for it, so that a call holding sr_lock knows
 * (xcp__live_stream_stop). */
static void gc_stream_mark(xcp__engine *e, const xcp__live_disk *d)
{
    pthread_mutex_lock(&e->gc_run_lock);
    e->gc_stream_domid = d ? d->domid : 0;
    snprintf(e->gc_stream_vdev, sizeof(e->gc_stream_vdev), "%s",
             d ? d->vdev : "");
    pthread_mutex_unlock(&e->gc_run_lock);
}

/*
 * Whether the leaf at location may have its image replaced now (sr_lock
 * held).  A leaf attached to a running VM is, with its back end paused
 * by the hypervisor driver (reopened by gc_unpause), when the driver can
 * (on Xen, QEMU keeps its file descriptors: it cannot, and the leaf is
 * left alone).  No leaf is while an image was handed out since the pass
 * looked (a VM started, a VBD plugged) or a VDI stream is open.
 */
static int gc_pause(void *ctx, const char *location)
{
    struct gc_ctx *g = ctx;
    struct gc_busy *b;

    if (g->e->sr_open_gen != g->open_gen ||
        __atomic_load_n(&g->e->sr_streams, __ATOMIC_SEQ_CST))
        return -EBUSY;
    if (!(b = gc_busy_find(g->job, location)))
        return 0;
    if (!b->live) {
        /* Xen: QEMU holds the image and cannot let go of it (a live
         * commit would reopen its backing image by a name that a live
         * snapshot gave to the leaf): it streams instead (gc_stream),
         * or the chain waits for the VM */
        if (!b->stream)
            xcp__log(XCP__LOG_INFO, "SR collector: %s is attached and its "
                     "back end can neither pause nor stream: not coalesced "
                     "while attached", location);
        else
            gc_stream_mark(g->e, &b->disk);
        return -EBUSY;
    }
    if (b->paused || xcp__live_pause_path(g->e->hv, &b->disk) < 0)
        return -EBUSY;
    b->paused = true;
    return 0;
}

static void gc_unpause(void *ctx, const char *location)
{
    struct gc_ctx *g = ctx;
    struct gc_busy *b = gc_busy_find(g->job, location);

    if (!b || !b->paused)
        return;
    xcp__live_reopen_path(g->e->hv, &b->disk, &b->path);
    b->paused = false;
}

/* How often a stream's progress is asked for. */
#define GC_STREAM_POLL_MS 250

/*
 * A stream the run was told to stop following: closing, it goes on in the
 * back end and the journal keeps it (-ECANCELED: the next run follows
 * it); for a call that takes the merges over, the run leaves it as not
 * done (1: the journal step is cleared), as XAPI aborts its GC: the call
 * cancels it if it needs the disk (xcp__live_stream_stop), and the next
 * run plans again.
 */
static int gc_stream_left(struct gc_ctx *g, const char *location)
{
    if (__atomic_load_n(&g->e->gc_stop, __ATOMIC_SEQ_CST))
        return -ECANCELED;
    xcp__log(XCP__LOG_INFO, "SR collector: a call needs the SR: the leaf "
             "coalesce of %s is left, planned again later", location);
    return 1;
}

/*
 * Leaf coalesce of the running disk at location by its back end, which
 * cannot be paused (driver slot disk_stream: QEMU's block-stream), polled
 * until over, its progress shown as the merge's task.  Called unlocked.
 * A run told to stop (closing, a call taking the merges over) leaves the
 * copy going on in the back end: the next run follows it.
 */
static int gc_stream(void *ctx, const char *location, unsigned keep,
                     const char *backing)
{
    struct gc_ctx *g = ctx;
    struct gc_busy *b = gc_busy_find(g->job, location);
    uint64_t done = 0, total = 0;
    xcp_hv_error e;
    int rc;

    if (!b || !b->stream || g->e->sr_open_gen != g->open_gen)
        return 1;
    xcp__log(XCP__LOG_INFO, "SR collector: domain %u disk %s (%s) streams "
             "its chain into its leaf, down to %u image(s)", b->disk.domid,
             b->disk.vdev, location, keep);
    for (;;) {
        rc = xcp__hv_disk_stream(g->e->hv, b->disk.domid, b->disk.vdev, keep,
                                 backing, &done, &total, &e);
        if (rc <= 0)
            break;
        if (gc_progress(g, location, done, total ? total : 1) != 0)
            return gc_stream_left(g, location);
        usleep(GC_STREAM_POLL_MS * 1000);
    }
    if (rc < 0) {
        xcp__log(XCP__LOG_WARN, "SR collector: %s not coalesced: %s",
                 location, e.message);
        return rc == -ENOTSUP || rc == -ESRCH ? 1 : rc;
    }
    gc_progress(g, location, 1, 1);
    return 0;
}

/* One collector run over one SR (sr_lock held), logged; g NULL: a plain
 * sr_gc under the lock throughout (engine open, a snapshot waiting). */
static bool gc_one_run(const xcp__srt *t, struct gc_ctx *g,
                       xcp_sr_gc_result *res)
{
    const xcp_sr_ops *o = t->type->ops;
    xcp_sr_gc_hooks h = {2, g, gc_unlock, gc_lock, gc_progress, gc_pause,
                         gc_unpause, gc_stream};
    xcp_sr_error err;
    int rc;

    memset(res, 0, sizeof(*res));
    memset(&err, 0, sizeof(err));
    if (g && o->version >= 5 && o->sr_gc_run)
        rc = o->sr_gc_run(&t->t, XCP_SR_GC_COALESCE_HIDDEN |
                                     XCP_SR_GC_COALESCE, &h, res, &err);
    else
        rc = o->sr_gc(&t->t, XCP_SR_GC_COALESCE_HIDDEN, res, &err);
    /* an older driver says nothing of what it left: maybe a leaf */
    if (o->version < 7)
        res->leaf_left = 1;
    if (rc < 0)
        xcp__log(XCP__LOG_WARN, "SR collector: SR %s: %s", t->t.sr_uuid,
                 err.reason);
    if (res->removed || res->coalesced)
        xcp__log(XCP__LOG_INFO, "SR collector: SR %s: %u image(s) removed, "
                 "%u image(s) merged", t->t.sr_uuid, res->removed,
                 res->coalesced);
    return res->removed || res->coalesced;
}

/*
 * The collector thread's run over one SR: it starts once no call waits
 * to take the merges over (gc_take_over), and says when it is done.
 */
static void gc_run_begin(xcp__engine *e)
{
    pthread_mutex_lock(&e->gc_run_lock);
    while (e->gc_yield)
        pthread_cond_wait(&e->gc_run_cond, &e->gc_run_lock);
    e->gc_in_run = true;
    pthread_mutex_unlock(&e->gc_run_lock);
}

static void gc_run_end(xcp__engine *e)
{
    pthread_mutex_lock(&e->gc_run_lock);
    e->gc_in_run = false;
    pthread_cond_broadcast(&e->gc_run_cond);
    pthread_mutex_unlock(&e->gc_run_lock);
}

/*
 * A call holding sr_lock (and the engine lock) that needs merges now: a
 * collector run under way holds the SR's right to merge (the driver's)
 * and needs sr_lock between its copies, so it is asked to stop at its
 * next progress report (what it merged stays; the driver's journal hands
 * the merge it was in to the next run), with sr_lock let go meanwhile,
 * every level of it.  The collector's next run waits for the call.
 */
static void gc_take_over(xcp__engine *e)
{
    unsigned depth = 0;

    pthread_mutex_lock(&e->gc_run_lock);
    if (!e->gc_in_run) {
        pthread_mutex_unlock(&e->gc_run_lock);
        return;
    }
    e->gc_yield++;
    pthread_mutex_unlock(&e->gc_run_lock);
    /* A recursive mutex: unlocking past the last level fails (EPERM). */
    while (pthread_mutex_unlock(&e->sr_lock) == 0)
        depth++;
    pthread_mutex_lock(&e->gc_run_lock);
    while (e->gc_in_run)
        pthread_cond_wait(&e->gc_run_cond, &e->gc_run_lock);
    pthread_mutex_unlock(&e->gc_run_lock);
    while (depth--)
        pthread_mutex_lock(&e->sr_lock);
    pthread_mutex_lock(&e->gc_run_lock);
    e->gc_yield--;
    pthread_cond_broadcast(&e->gc_run_cond);
    pthread_mutex_unlock(&e->gc_run_lock);
}

int xcp__live_stream_stop(xcp__engine *e, const xcp__live_disk *d,
                          xcp_hv_error *err)
{
    bool followed;
    int rc;

    memset(err, 0, sizeof(*err));
    if (!xcp__hv_supports(e->hv, XCP_HV_OP_DISK_STREAM_CANCEL))
        return 0;
    /* a run that may stream this disk stops first: it would start the
     * copy again (it cannot while the call holds the locks) */
    pthread_mutex_lock(&e->gc_run_lock);
    followed = e->gc_in_run && e->gc_stream_vdev[0] &&
               e->gc_stream_domid == d->domid &&
               !strcmp(e->gc_stream_vdev, d->vdev);
    pthread_mutex_unlock(&e->gc_run_lock);
    if (followed)
        gc_take_over(e);
    rc = xcp__hv_disk_stream_cancel(e->hv, d->domid, d->vdev, err);
    if (rc > 0) {
        xcp__log(XCP__LOG_INFO, "domain %u disk %s: its leaf coalesce by "
                 "its back end is cancelled for a change of the disk (the "
                 "collector plans it again)", d->domid, d->vdev);
        xcp__sr_gc_request(e);
    }
    /* (a domain gone meanwhile has no copy running) */
    return rc < 0 && rc != -ESRCH ? rc : 0;
}

/* A collector run for a call holding sr_lock, now. */
static bool gc_one(xcp__engine *e, const xcp__srt *t,
                   xcp_sr_gc_result *res)
{
    gc_take_over(e);
    return gc_one_run(t, NULL, res);
}

void xcp__sr_collect(xcp__engine *e)
{
    struct gc_pass p = {NULL, 0, 0};
    xcp_sr_gc_result res;
    struct gc_ctx g;
    bool any = false;
    size_t i;

    if (xcp__engine_txn(e, gc_plan, &p) < 0)
        xcp__log(XCP__LOG_WARN, "SR collector: %s",
                 xcp_error_last() ? xcp_error_last()->name : "failed");
    for (i = 0; i < p.n; i++) {
        memset(&g, 0, sizeof(g));
        g.e = e;
        g.job = &p.jobs[i];
        g.open_gen = p.open_gen;
        gc_run_begin(e);
        pthread_mutex_lock(&e->sr_lock);
        p.jobs[i].changed = gc_one_run(&p.jobs[i].t, &g, &res);
        gc_stream_mark(e, NULL);
        gc_run_end(e);
        pthread_mutex_unlock(&e->sr_lock);
        gc_task_end(&g);
        any = any || p.jobs[i].changed;
    }
    if (any && xcp__engine_txn(e, gc_refresh, &p) < 0)
        xcp__log(XCP__LOG_WARN, "SR collector: cannot refresh the records");
    for (i = 0; i < p.n; i++)
        gc_job_free(&p.jobs[i]);
    free(p.jobs);
    xcp_error_clear();
}

/* ---- leftovers of interrupted calls, at open ------------------------------ */

/* The VDI record of sr with this location, NULL if none. */
static xcp__obj *vdi_at(xcp__ctx *c, xcp__obj *sr, const char *location)
{
    const xcp_value *vdis = xcp__obj_val(sr, F(SR, VDIs));
    size_t i;

    for (i = 0; vdis->kind == XCP_VAL_ARRAY && i < vdis->u.arr.n; i++) {
        xcp__obj *v = xcp__db_get_cls(c->db, C(VDI), vdis->u.arr.items[i].u.s);
        if (v && !strcmp(xcp__obj_str(v, F(VDI, location)), location))
            return v;
    }
    return NULL;
}

static bool location_known(xcp__ctx *c, xcp__obj *sr, const char *location)
{
    return vdi_at(c, sr, location) != NULL;
}

/* A VDI whose image changed in place without its record ('R'): the
 * record and the SR's virtual allocation as the storage says. */
static void replay_refresh(xcp__ctx *c, xcp__obj *sr, const char *location)
{
    xcp__obj *v = vdi_at(c, sr, location);
    int64_t old;

    if (!v)
        return;
    old = xcp__obj_int(v, F(VDI, virtual_size));
    if (xcp__vdi_refresh(c, v) < 0 ||
        add_allocation(c, sr, xcp__obj_int(v, F(VDI, virtual_size)) - old) <
            0) {
        xcp__log(XCP__LOG_WARN, "SR %s: cannot read %s again after an "
                 "interrupted call: %s", xcp__obj_uuid(sr), location,
                 xcp_error_last() ? xcp_error_last()->name : "?");
        xcp_error_clear();
    }
}

/*
 * A VDI.data_destroy interrupted (kind 'X'): the driver's step is run
 * again (it replaces the image by an empty one with its tracking, as
 * often as asked), then the record's, so that the record and the image
 * agree (type cbt_metadata, sizes) whether the kill came before the
 * image was replaced or after.  A driver that cannot finish it leaves
 * the record read again from the storage, as for 'R'.
 */
static void replay_data_destroy(xcp__ctx *c, xcp__obj *sr,
                                const char *location)
{
    xcp__obj *v = vdi_at(c, sr, location);
    xcp_sr_error err;
    xcp__srt t;
    int rc;

    if (!v || !strcmp(xcp__obj_str(v, F(VDI, type)), "cbt_metadata"))
        return;
    memset(&err, 0, sizeof(err));
    if ((rc = xcp__srt_get(c, sr, false, &t)) == 0) {
        rc = t.type->ops->vdi_data_destroy(&t.t, location, &err);
        xcp__srt_free(&t);
    }
    if (rc == 0 && (rc = xcp__vdi_data_destroyed(c, v, sr)) == 0) {
        xcp__log(XCP__LOG_INFO, "SR %s: finished the interrupted "
                 "VDI.data_destroy of %s", xcp__obj_uuid(sr), location);
        return;
    }
    xcp__log(XCP__LOG_WARN, "SR %s: cannot finish the interrupted "
             "VDI.data_destroy of %s: %s", xcp__obj_uuid(sr), location,
             err.reason[0] ? err.reason
                           : xcp_error_last() ? xcp_error_last()->name : "?");
    xcp_error_clear();
    replay_refresh(c, sr, location);
}

struct find_uuid {
    const char *uuid;
    char location[XCP_SR_LOCATION_MAX];
};

static int find_uuid_cb(void *arg, const xcp_sr_vdi_info *vdi)
{
    struct find_uuid *f = arg;

    if (vdi->hidden || strcmp(vdi->uuid, f->uuid))
        return 0;
    snprintf(f->location, sizeof(f->location), "%s", vdi->location);
    return 1;
}

/*
 * After a call interrupted while it made the image uuid (VDI.snapshot,
 * VDI.clone, VDI.copy, VDI.create), the invariant of changed block
 * tracking holds again: a VDI whose record says cbt_enabled has its
 * tracking metadata, and its epochs link to VDIs that exist, so that
 * list_changed_blocks from any of its snapshots answers.  The tracked
 * VDIs of sr that break it have their tracking switched off, record and
 * image, visibly (the documented crash outcome: the next backup is a
 * full one, as after XAPI's disable_cbt):
 *   - an epoch that follows the snapshot uuid, which never committed (a
 *     VDI.snapshot killed after the driver had started its source's new
 *     epoch): its link leads to no VDI;
 *   - no metadata at all (VDI_NO_CBT_METADATA from the driver), which no
 *     call of ours leaves behind (a driver's cow keeps the source's
 *     tracking at every instant) but a record must not promise.
 */
static void unlink_epochs(xcp__ctx *c, xcp__obj *sr, const xcp__srt *t,
                          const char *uuid)
{
    const xcp_value *vdis = xcp__obj_val(sr, F(SR, VDIs));
    const xcp_sr_ops *o = t->type->ops;
    char prev[XCP_SR_UUID_BUFLEN];
    const char *why;
    xcp_sr_error err;
    uint64_t nblocks;
    uint8_t *bits;
    size_t i;
    int rc;

    if (o->version < 5 || !o->vdi_cbt_changes || !o->vdi_cbt_set)
        return;
    for (i = 0; vdis->kind == XCP_VAL_ARRAY && i < vdis->u.arr.n; i++) {
        xcp__obj *v = xcp__db_get_cls(c->db, C(VDI), vdis->u.arr.items[i].u.s);
        const char *loc = v ? xcp__obj_str(v, F(VDI, location)) : "";
        if (!v || !xcp__obj_bool(v, F(VDI, cbt_enabled)))
            continue;
        nblocks = ((uint64_t)xcp__obj_int(v, F(VDI, virtual_size)) +
                   XCP__CBT_BLOCK_SIZE - 1) / XCP__CBT_BLOCK_SIZE;
        if (!(bits = calloc((size_t)(nblocks + 7) / 8 + 1, 1)))
            return;
        memset(&err, 0, sizeof(err));
        prev[0] = '\0';
        rc = o->vdi_cbt_changes(&t->t, loc, bits, nblocks, prev, &err);
        free(bits);
        if (rc == 0 && strcmp(prev, uuid))
            continue;
        if (rc < 0 && err.kind != XCP_SR_ERR_NO_CBT_METADATA)
            continue;           /* unreadable now: not ours to judge */
        why = rc == 0 ? "its epoch follows that snapshot, which never was"
                      : "its image has no tracking metadata";
        memset(&err, 0, sizeof(err));
        if (o->vdi_cbt_set(&t->t, loc, false, &err) < 0 ||
            xcp__db_set_bool(c->db, v, F(VDI, cbt_enabled), false) < 0 ||
            xcp__update_allowed(c, v) < 0)
            xcp__log(XCP__LOG_WARN, "SR %s: after the interrupted call "
                     "making %s, %s: %s, and its tracking cannot be switched "
                     "off: %s", xcp__obj_uuid(sr), uuid, loc, why,
                     err.reason[0] ? err.reason : "?");
        else
            xcp__log(XCP__LOG_WARN, "SR %s: after the interrupted call "
                     "making %s, changed block tracking of %s switched off: "
                     "%s", xcp__obj_uuid(sr), uuid, loc, why);
        xcp_error_clear();
    }
}

/*
 * One intent left by a crash: the image made (kind 'C', key its uuid)
 * whose record never committed, or the one whose record went (kind 'D',
 * key its location) but not the image, is deleted; the record of an image
 * changed in place (kind 'R', key its location) is read again; a
 * data_destroy (kind 'X', key its location) is finished.  Anything else
 * stays.
 */
static void replay_intent(xcp__ctx *c, char kind, const char *sr_uuid,
                          const char *key)
{
    xcp__obj *sr = xcp__db_by_uuid(c->db, C(SR), sr_uuid);
    struct find_uuid f = {key, ""};
    xcp_sr_error err;
    xcp__srt t;

    if (sr && kind == 'R') {
        replay_refresh(c, sr, key);
        return;
    }
    if (sr && kind == 'X') {
        replay_data_destroy(c, sr, key);
        return;
    }
    if (!sr || (kind == 'C' && xcp__db_by_uuid(c->db, C(VDI), key)) ||
        (kind == 'D' && location_known(c, sr, key)))
        return;
    if (xcp__srt_get(c, sr, false, &t) < 0) {
        xcp__log(XCP__LOG_WARN, "SR %s is not attached: its leftover %s is "
                 "not collected", sr_uuid, key);
        return;
    }
    memset(&err, 0, sizeof(err));
    if (kind == 'D')
        snprintf(f.location, sizeof(f.location), "%s", key);
    else if (t.type->ops->sr_scan &&
             t.type->ops->sr_scan(&t.t, find_uuid_cb, &f, &err) < 0)
        xcp__log(XCP__LOG_WARN, "SR %s: cannot look for the leftover %s: "
                 "%s", sr_uuid, key, err.reason);
    if (kind == 'C')
        unlink_epochs(c, sr, &t, key);
    if (f.location[0] && !location_known(c, sr, f.location)) {
        memset(&err, 0, sizeof(err));
        if (t.type->ops->vdi_destroy(&t.t, f.location, &err) < 0 &&
            err.code != -ENOENT)
            xcp__log(XCP__LOG_WARN, "SR %s: cannot delete the leftover %s: "
                     "%s", sr_uuid, f.location, err.reason);
        else
            xcp__log(XCP__LOG_INFO, "SR %s: deleted %s, left by an "
                     "interrupted call", sr_uuid, f.location);
    }
    xcp__srt_free(&t);
}

/* Act on the intents a crash left (see storage.h), then forget them. */
static int replay_intents(xcp__ctx *c)
{
    char buf[4096], *line, *end;
    size_t have = 0, len;
    ssize_t n;

    if (lseek(c->e->intent_fd, 0, SEEK_SET) < 0)
        return intents_fail(c->e, "seek", errno);
    for (;;) {
        n = read(c->e->intent_fd, buf + have, sizeof(buf) - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        for (line = buf; (end = strchr(line, '\n')); line = end + 1) {
            char sr[64], key[XCP_SR_LOCATION_MAX], kind;
            *end = '\0';
            if (sscanf(line, "%c %63s %255s", &kind, sr, key) == 3 &&
                (kind == 'C' || kind == 'D' || kind == 'R' ||
                 kind == 'X'))
                replay_intent(c, kind, sr, key);
        }
        /* Keep a partial line (a torn last write is dropped at the end). */
        len = strlen(line);
        memmove(buf, line, len);
        have = len;
        if (have == sizeof(buf) - 1)
            have = 0;           /* not one of ours: too long */
    }
    if (ftruncate(c->e->intent_fd, 0) < 0)
        xcp__log(XCP__LOG_WARN, "cannot empty %s/sr-intents: %s",
                 c->e->state_dir, strerror(errno));
    return 0;
}

/* Suspend images no VM (or snapshot) refers to: a suspend killed after
 * its image was committed and before the VM was. */
static int drop_orphan_suspend_images(xcp__ctx *c, xcp__obj *sr)
{
    xcp__obj *const *all;
    const xcp_value *vdis;
    xcp__hmap used;
    char **refs = NULL;
    size_t i, n, nrefs = 0;
    int rc = 0;

    memset(&used, 0, sizeof(used));
    all = xcp__db_all(c->db, C(VM), &n);
    for (i = 0; i < n; i++)
        if (xcp__hmap_put(&used, xcp__obj_str(all[i], F(VM, suspend_VDI)),
                          all[i]) < 0) {
            rc = xcp__oom();
            goto out;
        }
    /* Collect first: deleting changes SR.VDIs under the loop. */
    vdis = xcp__obj_val(sr, F(SR, VDIs));
    n = vdis->kind == XCP_VAL_ARRAY ? vdis->u.arr.n : 0;
    if (n && !(refs = xcp__calloc(n, sizeof(*refs)))) {
        rc = xcp__oom();
        goto out;
    }
    for (i = 0; i < n; i++) {
        xcp__obj *v = xcp__db_get_cls(c->db, C(VDI), vdis->u.arr.items[i].u.s);
        const xcp_value *vbds;
        if (!v || strcmp(xcp__obj_str(v, F(VDI, type)), "suspend") ||
            xcp__hmap_get(&used, v->ref))
            continue;
        vbds = xcp__obj_val(v, F(VDI, VBDs));
        if (vbds->kind == XCP_VAL_ARRAY && vbds->u.arr.n)
            continue;
        if (!(refs[nrefs++] = xcp__strdup(v->ref))) {
            rc = xcp__oom();
            goto out;
        }
    }
    for (i = 0; i < nrefs && rc == 0; i++) {
        xcp__obj *v = xcp__db_get_cls(c->db, C(VDI), refs[i]);
        if (!v)
            continue;
        xcp__log(XCP__LOG_INFO, "deleting suspend image %s (VDI %s): no VM "
                 "refers to it", xcp__obj_str(v, F(VDI, location)), refs[i]);
        rc = xcp__vdi_delete(c, v);
    }
out:
    for (i = 0; refs && i < nrefs; i++)
        free(refs[i]);
    free(refs);
    xcp__hmap_free(&used);
    return rc;
}

/*
 * Attach again, through its driver, each SR whose PBD on this host is
 * marked attached: what attach did may not have outlived a reboot (an
 * ext SR's mount). One that fails is marked unplugged, as XAPI leaves a
 * PBD it cannot plug at start, and logged.
 */
static int reattach_all(xcp__ctx *c)
{
    xcp__obj *const *all;
    size_t i, n;
    int rc = 0;

    all = xcp__db_all(c->db, C(PBD), &n);
    for (i = 0; i < n && rc == 0; i++) {
        xcp__obj *pbd = all[i];
        xcp__obj *sr = xcp__db_get_cls(c->db, C(SR),
                                       xcp__obj_str(pbd, F(PBD, SR)));
        xcp_sr_error err;
        xcp__srt t;
        int ret;

        if (!sr || strcmp(xcp__obj_str(pbd, F(PBD, host)), c->e->host) ||
            !xcp__obj_bool(pbd, F(PBD, currently_attached)))
            continue;
        if (xcp__srt_get(c, sr, false, &t) < 0) {
            xcp_error_clear();  /* unknown type: nothing to attach */
            continue;
        }
        memset(&err, 0, sizeof(err));
        ret = t.type->ops->sr_attach(&t.t, &err);
        xcp__srt_free(&t);
        if (ret == 0)
            continue;
        xcp__log(XCP__LOG_WARN, "SR %s cannot be attached again: %s; its "
                 "PBD is unplugged", xcp__obj_uuid(sr), err.reason);
        rc = xcp__db_set_bool(c->db, pbd, F(PBD, currently_attached), false);
        /* all[] may have moved with the write: start again. */
        if (rc == 0) {
            all = xcp__db_all(c->db, C(PBD), &n);
            i = (size_t)-1;
        }
    }
    return rc;
}

int xcp__sr_collect_leftovers(xcp__ctx *c)
{
    xcp__obj *const *all;
    xcp_sr_gc_result res;
    bool leaf_left = false;
    char **refs;
    size_t i, n;
    int rc;

    /* Storage first, then images: the suspend images deleted below go
     * after the commit, with intents of their own. */
    if ((rc = reattach_all(c)) < 0 || (rc = replay_intents(c)) < 0)
        return rc;
    all = xcp__db_all(c->db, C(SR), &n);
    if (!n)
        return 0;
    if (!(refs = xcp__calloc(n, sizeof(*refs))))
        return xcp__oom();
    for (i = 0; i < n; i++)
        if (!(refs[i] = xcp__strdup(all[i]->ref)))
            rc = xcp__oom();
    for (i = 0; i < n && rc == 0; i++) {
        xcp__obj *sr = xcp__db_get_cls(c->db, C(SR), refs[i]);
        xcp__srt t;
        if (!sr || xcp__srt_get(c, sr, false, &t) < 0) {
            xcp_error_clear(); /* not attached here: nothing to do */
            continue;
        }
        /* Hidden parents nothing depends on any more, temporary files:
         * nothing runs yet, so now rather than in the background. */
        memset(&res, 0, sizeof(res));
        if ((t.type->capabilities & XCP_SR_CAP_SR_GC) &&
            gc_one(c->e, &t, &res))
            xcp__sr_refresh(c, sr);
        leaf_left = leaf_left || res.leaf_left;
        xcp__srt_free(&t);
        if (rc == 0)
            rc = drop_orphan_suspend_images(c, sr);
    }
    for (i = 0; i < n; i++)
        free(refs[i]);
    free(refs);
    /* What the pass above leaves to the background collector (a leaf
     * coalesce, which may need a running disk's back end paused): a run
     * the previous engine stopped at its close, or a kill, left it, and
     * nothing else would ask for it until the next change of a chain.
     * When no SR has one left, no pass walks the chains again. */
    if (leaf_left)
        xcp__sr_gc_request(c->e);
    return rc;
}
