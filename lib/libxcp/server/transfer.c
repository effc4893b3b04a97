/*
 * VDI transfers for /import_raw_vdi and /export_raw_vdi: the
 * transport streams bytes; this file turns the request's credentials
 * into a session (local root, session_id or HTTP Basic) and hands the
 * rest to the engine's transfers (engine/transfer.c), which check the
 * VDI, move the bytes through the SR layer a buffer at a time (nothing
 * is ever held whole in memory) and report into a task.
 */
#include "server.h"
#include "../engine/transfer.h"
#include "../engine/xva.h"

#include <stdio.h>

struct xcp_server_transfer {
    xcp_server *srv;
    xcp__transfer *x;
    /* or a VM's XVA (engine/xva.c): an export read in order, or an
     * import */
    xcp__xva_export *xe;
    xcp__xva_import *xi;
    uint64_t sent;
    char basic_session[XCP_REF_MAX]; /* made from Basic credentials */
};

/* The session of the request's credentials, first match wins: local root
 * (none needed: *session NULL), session_id, Basic (logged in into
 * basic_session, which the caller logs out of with xcp__server_creds_end). */
int xcp__server_creds(xcp_server *srv, const xcp_server_peer *peer,
                      const char *session_id, const char *user,
                      const char *password, char basic_session[XCP_REF_MAX],
                      const char **session)
{
    *session = NULL;
    basic_session[0] = '\0';
    if (peer->local_root)
        return 0;
    if (session_id && *session_id) {
        *session = session_id;
        return 0;
    }
    if (!user)
        return XCP__ERR_SESSION_AUTHENTICATION_FAILED_USER(
            "", "no credentials given");
    if (xcp__server_login(srv, user, password ? password : "",
                          basic_session) < 0)
        return -1;
    *session = basic_session;
    return 0;
}

void xcp__server_creds_end(xcp_server *srv, char basic_session[XCP_REF_MAX])
{
    xcp__saved_error saved;

    if (!basic_session[0])
        return;
    xcp__error_save(&saved);
    xcp__server_logout(srv, basic_session);
    xcp__error_restore(&saved);
    basic_session[0] = '\0';
}

static int credentials(xcp_server_transfer *t,
                       const xcp_server_transfer_request *r,
                       const char **session)
{
    return xcp__server_creds(t->srv, &r->peer, r->session_id, r->basic_user,
                             r->basic_password, t->basic_session, session);
}

/* Log out of a session made from Basic credentials, keeping the error. */
static void logout(xcp_server_transfer *t)
{
    xcp__server_creds_end(t->srv, t->basic_session);
}

/* Open what r asks for, as the session: a VDI transfer or a VM's. */
static int open_kind(xcp_server_transfer *t, xcp__engine *e,
                     const xcp_server_transfer_request *r,
                     const char *session, uint64_t *size, int *http)
{
    xcp__transfer_req req;

    if (r->kind == XCP_SERVER_VM && r->direction == XCP_SERVER_EXPORT) {
        xcp__xva_export_req xr = {session, r->task_id, r->vm,
                                  r->compression, r->metadata != 0,
                                  !r->no_snapshots,
                                  r->preserve_power_state != 0,
                                  r->version >= 3 && r->metadata != 0 &&
                                      r->include_vhd_parents != 0};
        if (size)
            *size = UINT64_MAX;
        return xcp__xva_export_begin(e, &xr, &t->xe, http);
    }
    if (r->kind == XCP_SERVER_VM) {
        xcp__xva_import_req xr = {session, r->task_id, r->sr_id,
                                  r->force != 0, r->restore != 0,
                                  r->metadata != 0};
        return xcp__xva_import_begin(e, &xr, &t->xi, http);
    }
    memset(&req, 0, sizeof(req));
    req.import = r->direction == XCP_SERVER_IMPORT;
    req.session = session;
    req.task_id = r->task_id;
    req.vdi = r->vdi;
    req.sr = r->sr_id;
    req.content_length = r->content_length;
    req.format = r->format;
    req.chunked = r->chunked != 0;
    req.base = r->version >= 2 ? r->base : NULL;
    if (xcp__transfer_begin(e, &req, &t->x, http) < 0)
        return -1;
    if (size)
        *size = xcp__transfer_size(t->x);
    return 0;
}

int xcp_server_transfer_open(xcp_server *srv, xcp_server_transfer **out,
                             uint64_t *size, int *http_status,
                             const xcp_server_transfer_request *r)
{
    xcp__engine *e = xcp__server_engine(srv);
    xcp_server_transfer *t;
    const char *session;

    xcp_error_clear();
    *http_status = 500;
    if (!r || r->version < 1 ||
        r->version > XCP_SERVER_TRANSFER_REQUEST_VERSION) {
        char v[16];

        snprintf(v, sizeof(v), "%u", r ? r->version : 0);
        return XCP__ERR_INVALID_VALUE("xcp_server_transfer_request.version",
                                      v);
    }
    if (!(t = xcp__calloc(1, sizeof(*t))))
        return xcp__oom();
    t->srv = srv;
    if (credentials(t, r, &session) < 0) {
        *http_status = 401;
    } else if (open_kind(t, e, r, session, size, http_status) == 0) {
        *out = t;
        return 0;
    } else {
        logout(t);      /* the client's task failed in the engine */
        free(t);
        return -1;
    }
    /* Report into the client's task. */
    xcp__transfer_fail_task(e, r->task_id);
    logout(t);
    free(t);
    return -1;
}

const char *xcp_server_transfer_task(const xcp_server_transfer *t)
{
    if (!t)
        return NULL;
    if (t->xe)
        return xcp__xva_export_task(t->xe);
    if (t->xi)
        return xcp__xva_import_task(t->xi);
    return xcp__transfer_task(t->x);
}

const char *xcp_server_transfer_vdi_uuid(const xcp_server_transfer *t)
{
    if (!t)
        return NULL;
    return t->xe || t->xi ? "" : xcp__transfer_vdi_uuid(t->x);
}

int xcp_server_transfer_write(xcp_server_transfer *t, const void *buf,
                              size_t n)
{
    xcp_error_clear();
    if (!t || t->xe)
        return XCP__ERR_INVALID_VALUE("transfer", "not an import");
    if (t->xi)
        return xcp__xva_import_write(t->xi, buf, n);
    return xcp__transfer_write(t->x, buf, n);
}

/* An XVA export's next bytes, in order. */
static int xva_read(xcp_server_transfer *t, void *buf, size_t n,
                    size_t *got, uint64_t offset)
{
    if (offset != t->sent)
        return XCP__ERR_INVALID_VALUE("offset", "out of order");
    if (xcp__xva_export_read(t->xe, buf, n, got) < 0)
        return -1;
    t->sent += *got;
    return 0;
}

int xcp_server_transfer_read(xcp_server_transfer *t, void *buf, size_t n,
                             size_t *got, uint64_t offset)
{
    xcp_error_clear();
    *got = 0;
    if (!t || t->xi)
        return XCP__ERR_INVALID_VALUE("transfer", "not an export");
    if (t->xe)
        return xva_read(t, buf, n, got, offset);
    return xcp__transfer_read(t->x, offset, buf, n, got);
}

int xcp_server_transfer_read_piece(xcp_server_transfer *t, void *buf,
                                   size_t n, uint64_t offset,
                                   xcp_server_piece *out)
{
    xcp__piece p;
    int rc;

    xcp_error_clear();
    out->len = 0;
    out->fd = -1;
    out->pos = 0;
    if (!t || t->xi)
        return XCP__ERR_INVALID_VALUE("transfer", "not an export");
    if (t->xe)
        return xva_read(t, buf, n, &out->len, offset);
    if ((rc = xcp__transfer_read_piece(t->x, offset, buf, n, &p)) < 0)
        return rc;
    out->len = p.n;
    out->fd = p.fd;
    out->pos = p.pos;
    return 0;
}

int xcp_server_transfer_close(xcp_server_transfer *t, int ok)
{
    int rc;

    if (!t)
        return 0;
    if (t->xe)
        rc = xcp__xva_export_end(t->xe,
                                 ok && xcp__xva_export_complete(t->xe));
    else if (t->xi)
        rc = xcp__xva_import_end(t->xi, ok, NULL);
    else
        rc = xcp__transfer_end(t->x, ok);
    logout(t);
    free(t);
    return rc;
}
