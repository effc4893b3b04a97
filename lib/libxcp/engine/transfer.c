/*
 * Raw VDI transfers, the XenAPI side: session, task and VDI checks, the
 * VDI's image through the SR layer's streams (api/storage.c), progress
 * into the task and its completion (xcp__task_complete, as for Async.
 * calls). The engine lock is taken only to look things up and open the
 * image (in the same transaction, so the checks hold for what is opened)
 * and to update the task; the bytes move without it, a buffer at a time.
 */
#include "transfer.h"
#include "../api/storage.h"

#include <stdio.h>

struct xcp__transfer {
    xcp__engine *e;
    bool import;
    char task[XCP_REF_MAX];
    char vdi[XCP_REF_MAX];
    char vdi_uuid[XCP_REF_MAX];
    xcp__vdi_stream *s;
    uint64_t size;        /* virtual size */
    uint64_t offset;      /* import: next byte */
    uint64_t expected;    /* bytes the transfer should move */
    bool declared;        /* import: expected is the declared length */
    bool own_task;        /* the task was made here (no task_id) */
    int64_t progress_ms;  /* last progress update */
};

struct opener {
    const xcp__transfer_req *r;
    xcp__transfer *t;
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

/* The HTTP status of a failed stream open. */
static int open_status(void)
{
    const xcp_error *err = xcp_error_last();

    if (err && !strcmp(err->name, "VDI_READONLY"))
        return 403;
    if (err && !strcmp(err->name, "VDI_IN_USE"))
        return 409;
    return 500;
}

/* Checks in order, then the task and the stream, all or nothing. */
static int open_txn(xcp__ctx *c, void *arg)
{
    struct opener *o = arg;
    const xcp__transfer_req *r = o->r;
    xcp__transfer *t = o->t;
    xcp__obj *vdi = NULL, *task = NULL;
    int rc;

    if (r->session && !xcp__db_get_cls(c->db, C(session), r->session)) {
        o->http = 401;
        return XCP__ERR_SESSION_INVALID(r->session);
    }
    if (r->task_id && *r->task_id &&
        !(task = xcp__db_get_cls(c->db, C(task), r->task_id))) {
        o->http = 404;
        return xcp__handle_invalid(C(task), r->task_id);
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
    if ((rc = xcp__vdi_stream_open(c, vdi,
                                   r->import ? "import_raw_vdi" : NULL,
                                   &t->s)) < 0) {
        o->http = open_status();
        return rc;
    }
    t->size = xcp__vdi_stream_size(t->s);
    t->expected = t->size;
    if (r->import && r->content_length != UINT64_MAX) {
        if (r->content_length > t->size) {
            o->http = 400;
            return XCP__ERR_VDI_IO_ERROR("the body is larger than the VDI");
        }
        t->expected = r->content_length;
        t->declared = true;
    }
    if (!task) {
        if ((rc = xcp__task_new(c, r->import ? "VDI import" : "VDI export",
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
    xcp__transfer *t;
    xcp_value *error;        /* NULL: success */
    double progress;         /* < 0: finishing */
};

static int task_txn(xcp__ctx *c, void *arg)
{
    struct ender *en = arg;
    xcp__obj *task = xcp__db_get_cls(c->db, C(task), en->t->task);
    xcp__obj *vdi;
    xcp_value res;
    int rc;

    if (!task)
        return 0; /* destroyed by the client meanwhile */
    if (en->progress >= 0)
        return xcp__db_set_float(c->db, task, F(task, progress),
                                 en->progress);
    res.kind = XCP_VAL_NONE;
    if (!en->error && en->t->import &&
        (rc = xcp_value_set_string(&res, en->t->vdi)) < 0)
        return rc;
    rc = xcp__task_complete(c, task, &res, en->error);
    xcp_value_dispose(&res);
    /* The import changed the disk's contents and maybe its usage. */
    if (rc == 0 && !en->error && en->t->import &&
        (vdi = xcp__db_get_cls(c->db, C(VDI), en->t->vdi)))
        xcp__vdi_refresh(c, vdi);
    return rc;
}

/* Complete t's task (error NULL: success), keeping the thread's error. */
static void complete(xcp__transfer *t, xcp_value *error)
{
    struct ender en;
    xcp__saved_error saved;

    en.t = t;
    en.error = error;
    en.progress = -1;
    xcp__error_save(&saved);
    xcp__engine_txn(t->e, task_txn, &en);
    xcp__error_restore(&saved);
}

void xcp__transfer_fail_task(xcp__engine *e, const char *task_ref)
{
    xcp__transfer t;
    xcp_value err;

    if (!task_ref || !*task_ref || xcp__error_to_value(&err) < 0)
        return;
    memset(&t, 0, sizeof(t));
    t.e = e;
    snprintf(t.task, sizeof(t.task), "%s", task_ref);
    complete(&t, &err);
    xcp_value_dispose(&err);
}

int xcp__transfer_begin(xcp__engine *e, const xcp__transfer_req *r,
                        xcp__transfer **out, int *http)
{
    xcp__transfer *t;
    struct opener o;

    *http = 500;
    if (!(t = xcp__calloc(1, sizeof(*t))))
        return xcp__oom();
    t->e = e;
    t->import = r->import;
    o.r = r;
    o.t = t;
    o.http = 500;
    if (xcp__engine_txn(e, open_txn, &o) < 0) {
        xcp__saved_error saved;
        *http = o.http;
        /* Rolled back: a task made here is gone with it. */
        xcp__error_save(&saved);
        xcp__vdi_stream_close(t->s);
        xcp__error_restore(&saved);
        xcp__transfer_fail_task(e, r->task_id);
        free(t);
        return -1;
    }
    t->progress_ms = xcp__now_ms();
    *http = 200;
    *out = t;
    return 0;
}

const char *xcp__transfer_task(const xcp__transfer *t)
{
    return t->task;
}

const char *xcp__transfer_vdi_uuid(const xcp__transfer *t)
{
    return t->vdi_uuid;
}

uint64_t xcp__transfer_size(const xcp__transfer *t)
{
    return t->size;
}

/* Progress at most every 500 ms: each update is a commit (and events). */
static void progress(xcp__transfer *t, uint64_t pos)
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

int xcp__transfer_write(xcp__transfer *t, const void *buf, size_t n)
{
    if (!t->import)
        return XCP__ERR_INVALID_VALUE("transfer", "not an import");
    if (n > t->size - t->offset)
        return XCP__ERR_VDI_IO_ERROR("write past the end of the VDI");
    if (n && xcp__vdi_stream_write(t->s, t->offset, buf, n) < 0)
        return -1;
    t->offset += n;
    progress(t, t->offset);
    return 0;
}

/* Where an export's buffer starts, for read_extent. */
struct span {
    xcp__vdi_stream *s;
    uint64_t base;
    uint8_t *buf;
};

static int read_extent(void *ctx, uint64_t offset, uint64_t length)
{
    struct span *sp = ctx;

    return xcp__vdi_stream_read(sp->s, offset, sp->buf + (offset - sp->base),
                                (size_t)length) < 0 ? -1 : 0;
}

int xcp__transfer_read(xcp__transfer *t, uint64_t offset, void *buf,
                       size_t n, size_t *got)
{
    struct span sp;

    *got = 0;
    if (t->import)
        return XCP__ERR_INVALID_VALUE("transfer", "not an export");
    if (offset >= t->size)
        return 0;
    if (n > t->size - offset)
        n = (size_t)(t->size - offset);
    /* Only what may hold data is read; the rest is zeros. */
    memset(buf, 0, n);
    sp.s = t->s;
    sp.base = offset;
    sp.buf = buf;
    if (xcp__vdi_stream_extents(t->s, offset, n, read_extent, &sp) != 0)
        return -1;
    *got = n;
    progress(t, offset + n);
    return 0;
}

int xcp__transfer_end(xcp__transfer *t, int ok)
{
    xcp__saved_error saved;
    xcp_value err;
    int rc = 0, frc;

    if (!t)
        return 0;
    xcp__error_save(&saved);
    frc = xcp__vdi_stream_close(t->s);
    xcp__error_restore(&saved);
    t->s = NULL;
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
    if (ok) {
        complete(t, NULL);
    } else {
        if (!xcp_error_last())
            XCP__ERR_VDI_IO_ERROR("transfer incomplete");
        if (xcp__error_to_value(&err) < 0)
            xcp_value_set_array(&err, 0);
        complete(t, &err);
        xcp_value_dispose(&err);
    }
    free(t);
    return rc;
}
