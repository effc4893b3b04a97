/*
 * Raw VDI transfers for /import_raw_vdi and /export_raw_vdi: the
 * transport streams bytes, this file authenticates the request, finds and
 * checks the VDI, reports into a task (the client's task_id, or one made
 * here) and moves the bytes through the disk-image library, a buffer at a
 * time: nothing is ever held whole in memory.
 *
 * The image is opened without the engine lock held for I/O; the engine
 * lock is taken only to look things up and to update the task.
 */
#include "server.h"
#include "../api/storage.h"
#include "../rpc/rpc.h"
#include "../sr/qcow2.h"

#include <stdio.h>
#include <strings.h>

struct xcp_server_transfer {
    xcp_server *srv;
    xcp__engine *e;
    xcp_server_direction dir;
    char task[XCP_REF_MAX];
    char vdi[XCP_REF_MAX];
    char vdi_uuid[XCP_REF_MAX];
    char basic_session[XCP_REF_MAX]; /* made from Basic credentials */
    xcp__qcow2 *q;
    uint64_t size;        /* virtual size */
    uint64_t offset;      /* import: next byte */
    uint64_t expected;    /* bytes the transfer should move */
    bool declared;        /* import: expected is the declared length */
    bool own_task;        /* the task was made here (no task_id) */
    int64_t progress_ms;  /* last progress update */
};


struct opener {
    const xcp_server_transfer_request *r;
    xcp_server_transfer *t;
    const char *session;
    xcp_sr_vdi_path path;
    bool read_only;
    int http;
};

static int find_vdi(xcp__ctx *c, const char *id, xcp__obj **out)
{
    xcp__obj *v = xcp__db_get_cls(c->db, C(VDI), id);

    if (!v)
        v = xcp__db_by_uuid(c->db, C(VDI), id);
    if (!v)
        return xcp__uuid_valid(id) ? XCP__ERR_UUID_INVALID("VDI", id)
                                   : XCP__ERR_HANDLE_INVALID("VDI", id);
    *out = v;
    return 0;
}

/* Whether a running (or paused) VM has vdi attached. */
static bool attached(xcp__ctx *c, xcp__obj *vdi)
{
    const xcp_value *vbds = xcp__obj_val(vdi, F(VDI, VBDs));
    size_t i;

    for (i = 0; vbds && vbds->kind == XCP_VAL_ARRAY && i < vbds->u.arr.n;
         i++) {
        xcp__obj *b = xcp__db_get_cls(c->db, C(VBD), vbds->u.arr.items[i].u.s);
        if (b && xcp__obj_bool(b, F(VBD, currently_attached)))
            return true;
    }
    return false;
}

static int open_txn(xcp__ctx *c, void *arg)
{
    struct opener *o = arg;
    const xcp_server_transfer_request *r = o->r;
    xcp_server_transfer *t = o->t;
    xcp__obj *vdi = NULL, *task = NULL;
    bool import = r->direction == XCP_SERVER_IMPORT;
    int rc;

    if (o->session && !xcp__db_get_cls(c->db, C(session), o->session)) {
        o->http = 401;
        return XCP__ERR_SESSION_INVALID(o->session);
    }
    if (r->task_id && *r->task_id) {
        if (!(task = xcp__db_get_cls(c->db, C(task), r->task_id))) {
            o->http = 404;
            return xcp__handle_invalid(C(task), r->task_id);
        }
    }
    if (!r->vdi || !*r->vdi) {
        o->http = 400;
        return XCP__ERR_INVALID_VALUE("vdi", "");
    }
    if ((rc = find_vdi(c, r->vdi, &vdi)) < 0) {
        o->http = 404;
        return rc;
    }
    snprintf(t->vdi, sizeof(t->vdi), "%s", vdi->ref);
    snprintf(t->vdi_uuid, sizeof(t->vdi_uuid), "%s", xcp__obj_uuid(vdi));
    if (import && (xcp__obj_bool(vdi, F(VDI, read_only)) ||
                   xcp__obj_bool(vdi, F(VDI, is_a_snapshot)))) {
        o->http = 403;
        return XCP__ERR_VDI_READONLY(vdi->ref);
    }
    if (import && attached(c, vdi)) {
        o->http = 409;
        return XCP__ERR_VDI_IN_USE(vdi->ref, "import_raw_vdi");
    }
    if ((rc = xcp__vdi_path(c, vdi, &o->path)) < 0) {
        o->http = 500;
        return rc;
    }
    if (!task) {
        if ((rc = xcp__task_new(c, import ? "VDI import" : "VDI export",
                                "", &task)) < 0) {
            o->http = 500;
            return rc;
        }
        t->own_task = true;
    }
    snprintf(t->task, sizeof(t->task), "%s", task->ref);
    return 0;
}

struct ender {
    xcp_server_transfer *t;
    xcp_value *error;        /* NULL: success */
    double progress;         /* < 0: finishing */
};

static int task_txn(xcp__ctx *c, void *arg)
{
    struct ender *en = arg;
    xcp__obj *task = xcp__db_get_cls(c->db, C(task), en->t->task);
    xcp_value v;
    int rc;

    if (!task)
        return 0; /* destroyed by the client meanwhile */
    if (en->progress >= 0)
        return xcp__db_set_float(c->db, task, F(task, progress),
                                 en->progress);
    if (en->error) {
        if ((rc = xcp__db_set(c->db, task, F(task, error_info),
                              en->error)) < 0 ||
            (rc = xcp__db_set_str(c->db, task, F(task, status),
                                  "failure")) < 0)
            return rc;
    } else {
        xcp__buf b = {0};
        xcp_value res;
        if (en->t->dir == XCP_SERVER_IMPORT)
            xcp_value_set_string(&res, en->t->vdi);
        else
            res.kind = XCP_VAL_NONE;
        xcp__xmlrpc_encode_value(&b, &res, 0);
        xcp_value_dispose(&res);
        rc = b.oom ? xcp__oom()
                   : xcp__db_set_str(c->db, task, F(task, result), b.data);
        xcp__buf_free(&b);
        if (rc < 0 ||
            (rc = xcp__db_set_str(c->db, task, F(task, status),
                                  "success")) < 0)
            return rc;
        /* The import changed the disk's contents and maybe its usage. */
        if (en->t->dir == XCP_SERVER_IMPORT) {
            xcp__obj *vdi = xcp__db_get_cls(c->db, C(VDI), en->t->vdi);
            if (vdi)
                xcp__vdi_refresh(c, vdi);
        }
    }
    if ((rc = xcp__db_set_float(c->db, task, F(task, progress), 1.0)) < 0 ||
        (rc = xcp__task_finished(c, task)) < 0)
        return rc;
    xcp_value_set_array(&v, 0);
    rc = xcp__db_set(c->db, task, F(task, allowed_operations), &v);
    xcp_value_dispose(&v);
    return rc;
}

static int destroy_task_txn(xcp__ctx *c, void *ref)
{
    xcp__obj *task = xcp__db_get_cls(c->db, C(task), ref);

    return task ? xcp__db_destroy(c->db, task) : 0;
}

/* Fail the client's task with the thread's error (auth failures too). */
static void fail_task(xcp__engine *e, const char *task_ref)
{
    xcp_server_transfer t;
    struct ender en;
    xcp_value err;
    xcp__saved_error saved;

    if (!task_ref || !*task_ref || xcp__error_to_value(&err) < 0)
        return;
    memset(&t, 0, sizeof(t));
    snprintf(t.task, sizeof(t.task), "%s", task_ref);
    en.t = &t;
    en.error = &err;
    en.progress = -1;
    xcp__error_save(&saved);
    xcp__engine_txn(e, task_txn, &en);
    xcp__error_restore(&saved);
    xcp_value_dispose(&err);
}

int xcp_server_transfer_open(xcp_server *srv, xcp_server_transfer **out,
                             uint64_t *size, int *http_status,
                             const xcp_server_transfer_request *r)
{
    xcp_server_transfer *t;
    struct opener o;
    char err[256];
    int rc;

    xcp_error_clear();
    *http_status = 500;
    if (!(t = xcp__calloc(1, sizeof(*t))))
        return xcp__oom();
    t->srv = srv;
    t->e = xcp__server_engine(srv);
    t->dir = r->direction;
    memset(&o, 0, sizeof(o));
    o.r = r;
    o.t = t;
    o.http = 500;
    /* Credentials, first match wins: local root, session_id, Basic. */
    if (r->peer.local_root) {
        o.session = NULL;
    } else if (r->session_id && *r->session_id) {
        o.session = r->session_id;
    } else if (r->basic_user) {
        rc = xcp__server_login(srv, r->basic_user,
                               r->basic_password ? r->basic_password : "",
                               t->basic_session);
        if (rc < 0) {
            *http_status = 401;
            goto fail;
        }
        o.session = t->basic_session;
    } else {
        XCP__ERR_SESSION_AUTHENTICATION_FAILED_USER("",
                                                    "no credentials given");
        *http_status = 401;
        goto fail;
    }
    if (r->format && *r->format && strcasecmp(r->format, "raw")) {
        XCP__ERR_INVALID_VALUE("format", r->format);
        *http_status = 404;
        goto fail;
    }
    if ((rc = xcp__engine_txn(t->e, open_txn, &o)) < 0) {
        *http_status = o.http;
        goto fail;
    }
    rc = xcp__qcow2_open(&t->q, o.path.path, o.path.format,
                         r->direction == XCP_SERVER_EXPORT
                             ? XCP__QCOW2_RDONLY : 0,
                         err, sizeof(err));
    if (rc < 0) {
        XCP__ERR_VDI_IO_ERROR(err);
        *http_status = 500;
        goto fail;
    }
    t->size = xcp__qcow2_virtual_size(t->q);
    t->expected = t->size;
    if (r->direction == XCP_SERVER_IMPORT) {
        if (r->content_length != UINT64_MAX && r->content_length > t->size) {
            XCP__ERR_VDI_IO_ERROR("the body is larger than the VDI");
            *http_status = 400;
            goto fail;
        }
        if (r->content_length != UINT64_MAX) {
            t->expected = r->content_length;
            t->declared = true;
        }
    }
    t->progress_ms = xcp__now_ms();
    if (size)
        *size = t->size;
    *http_status = 200;
    *out = t;
    return 0;
fail:
    {
        /* Report into the client's task; one made here goes away (the
         * client never learnt its ref, nobody would destroy it). */
        const char *task = r->task_id && *r->task_id ? r->task_id : NULL;
        xcp__saved_error saved;
        if (task)
            fail_task(t->e, task);
        xcp__error_save(&saved);
        if (t->own_task)
            xcp__engine_txn(t->e, destroy_task_txn, t->task);
        xcp__qcow2_close(t->q);
        if (t->basic_session[0])
            xcp__server_logout(srv, t->basic_session);
        xcp__error_restore(&saved);
        free(t);
    }
    return -1;
}

const char *xcp_server_transfer_task(const xcp_server_transfer *t)
{
    return t ? t->task : NULL;
}

const char *xcp_server_transfer_vdi_uuid(const xcp_server_transfer *t)
{
    return t ? t->vdi_uuid : NULL;
}

/* Progress at most every 500 ms: each update is a commit (and events). */
static void progress(xcp_server_transfer *t, uint64_t pos)
{
    int64_t now = xcp__now_ms();
    struct ender en;
    xcp__saved_error saved;

    if (now - t->progress_ms < 500 || !t->expected)
        return;
    t->progress_ms = now;
    en.t = t;
    en.error = NULL;
    en.progress = (double)pos / (double)t->expected;
    if (en.progress > 0.99)
        en.progress = 0.99;
    xcp__error_save(&saved);
    xcp__engine_txn(t->e, task_txn, &en);
    xcp__error_restore(&saved);
}

int xcp_server_transfer_write(xcp_server_transfer *t, const void *buf,
                              size_t n)
{
    char err[256];

    xcp_error_clear();
    if (!t || t->dir != XCP_SERVER_IMPORT)
        return XCP__ERR_INVALID_VALUE("transfer", "not an import");
    if (n > t->size - t->offset)
        return XCP__ERR_VDI_IO_ERROR("write past the end of the VDI");
    if (n && xcp__qcow2_write(t->q, t->offset, buf, n, err,
                              sizeof(err)) < 0)
        return XCP__ERR_VDI_IO_ERROR(err);
    t->offset += n;
    progress(t, t->offset);
    return 0;
}

int xcp_server_transfer_read(xcp_server_transfer *t, void *buf, size_t n,
                             size_t *got, uint64_t offset)
{
    char err[256];

    xcp_error_clear();
    *got = 0;
    if (!t || t->dir != XCP_SERVER_EXPORT)
        return XCP__ERR_INVALID_VALUE("transfer", "not an export");
    if (offset >= t->size)
        return 0;
    if (n > t->size - offset)
        n = (size_t)(t->size - offset);
    if (xcp__qcow2_read(t->q, offset, buf, n, err, sizeof(err)) < 0)
        return XCP__ERR_VDI_IO_ERROR(err);
    *got = n;
    progress(t, offset + n);
    return 0;
}

int xcp_server_transfer_close(xcp_server_transfer *t, int ok)
{
    struct ender en;
    xcp_value err;
    int rc = 0, frc;

    if (!t)
        return 0;
    frc = xcp__qcow2_close(t->q);
    t->q = NULL;
    if (ok && frc < 0) {
        XCP__ERR_VDI_IO_ERROR("cannot flush the VDI");
        ok = 0;
        rc = -1;
    }
    if (ok && t->declared && t->offset != t->expected) {
        XCP__ERR_VDI_IO_ERROR("transfer incomplete");
        ok = 0;
        rc = -1;
    }
    en.t = t;
    en.progress = -1;
    en.error = NULL;
    err.kind = XCP_VAL_NONE;
    if (!ok) {
        if (!xcp_error_last())
            XCP__ERR_VDI_IO_ERROR("transfer incomplete");
        if (xcp__error_to_value(&err) == 0)
            en.error = &err;
    }
    {
        xcp__saved_error saved;
        xcp__error_save(&saved);
        xcp__engine_txn(t->e, task_txn, &en);
        if (t->basic_session[0])
            xcp__server_logout(t->srv, t->basic_session);
        xcp__error_restore(&saved);
    }
    xcp_value_dispose(&err);
    free(t);
    return rc;
}
