/*
 * server/metrics.c - the documents behind XAPI's metrics handlers:
 * /rrd_updates (rrdd_http_handler.ml's get_rrd_updates_handler: start,
 * cf, interval, host=true, vm_uuid=, json), /host_rrd and /vm_rrd (the
 * whole RRD, XAPI's XML or JSON), and /metrics (the latest values in
 * Prometheus' text format), for an authenticated client. The transport
 * (xcpd) parses the query and sends the bytes.
 */
#include "server.h"

#include <errno.h>
#include <stdio.h>

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (!s || !*s)
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int fail(int *status, int code, int rc)
{
    *status = code;
    return rc;
}

int xcp_server_metrics(xcp_server *srv, const xcp_server_metrics_request *r,
                       int *http_status, const char **content_type,
                       char **body, size_t *len)
{
    char basic[XCP_REF_MAX];
    const char *session;
    xcp__buf b = {0};
    int64_t start = 0, interval = 0;
    int rc;

    xcp_error_clear();
    *body = NULL;
    *len = 0;
    *content_type = "text/plain";
    *http_status = 500;
    if (xcp__server_creds(srv, &r->peer, r->session_id, r->basic_user,
                          r->basic_password, basic, &session) < 0)
        return fail(http_status, 401, -1);
    /* as XAPI: authenticated first (with_context), then the query */
    if (r->kind == XCP_SERVER_RRD_UPDATES && parse_i64(r->start, &start) < 0)
        rc = XCP__ERR_INVALID_VALUE("start", r->start ? r->start : "");
    else if (r->kind == XCP_SERVER_VM_RRD && (!r->uuid || !*r->uuid))
        rc = XCP__ERR_INVALID_VALUE("uuid", "");
    else if (r->kind > XCP_SERVER_METRICS)
        rc = XCP__ERR_INVALID_VALUE("kind", "");
    else
        rc = 0;
    if (rc < 0) {
        xcp__server_creds_end(srv, basic);
        return fail(http_status, 400, rc);
    }
    /* XAPI: a bad interval is 0 (the finest archive) */
    if (r->interval && parse_i64(r->interval, &interval) < 0)
        interval = 0;
    rc = xcp__engine_metrics_doc(xcp__server_engine(srv), session,
                                 (int)r->kind, start,
                                 interval, r->cf,
                                 r->host && !strcmp(r->host, "true"),
                                 r->vm_uuids, r->n_vm_uuids, r->json != 0,
                                 r->uuid, &b);
    xcp__server_creds_end(srv, basic);
    if (rc < 0) {
        xcp__buf_free(&b);
        if (rc == -EACCES)
            return fail(http_status, 401, -1);
        if (rc == -ENOENT)
            return fail(http_status, 404,
                        XCP__ERR_UUID_INVALID("VM", r->uuid ? r->uuid : ""));
        if (rc == -ENODEV) /* the engine set the error */
            return fail(http_status, 500, -1);
        if (rc == -ERANGE)
            return fail(http_status, 500,
                        xcp__internal("Rrd.No_RRA_Available"));
        return fail(http_status, 500, xcp__oom());
    }
    *len = b.len;
    *body = xcp__buf_steal(&b);
    if (!*body)
        return fail(http_status, 500, xcp__oom());
    *content_type = r->kind == XCP_SERVER_METRICS
                        ? "text/plain; version=0.0.4; charset=utf-8"
                    : r->json ? "application/json"
                              : "text/xml";
    *http_status = 200;
    return 0;
}

int xcp_server_rrd_put(xcp_server *srv, const xcp_server_rrd_put_request *r,
                       const char *body, size_t len, int *http_status)
{
    char basic[XCP_REF_MAX];
    const char *session;
    int rc;

    xcp_error_clear();
    *http_status = 500;
    basic[0] = '\0';
    session = NULL;
    /* A host of the pool (XAPI's rrdd hands a VM's RRD on so) proves
     * itself with the pool secret instead of a session. */
    if (!r->peer.local_root && !(r->session_id && *r->session_id) &&
        !r->basic_user && r->pool_secret) {
        if (!xcp__engine_pool_secret_ok(xcp__server_engine(srv),
                                         r->pool_secret))
            return fail(http_status, 401,
                        XCP__ERR_SESSION_AUTHENTICATION_FAILED_USER(
                            "", "Pool credentials invalid"));
    } else if (xcp__server_creds(srv, &r->peer, r->session_id,
                                 r->basic_user, r->basic_password, basic,
                                 &session) < 0)
        return fail(http_status, 401, -1);
    if (!r->uuid || !*r->uuid) {
        xcp__server_creds_end(srv, basic);
        return fail(http_status, 400,
                    XCP__ERR_INVALID_VALUE("uuid", "put_rrd: missing the "
                                                   "'uuid' parameter"));
    }
    rc = xcp__engine_metrics_put(xcp__server_engine(srv), session, r->uuid,
                                 r->archive != 0, body ? body : "", len);
    xcp__server_creds_end(srv, basic);
    switch (rc) {
    case 0:
        *http_status = 200;
        return 0;
    case -EACCES:
        return fail(http_status, 401, -1);
    case -ENOENT:
        return fail(http_status, 404, -1);
    case -EINVAL:
        return fail(http_status, 400, -1);
    default:
        return fail(http_status, 500, -1);
    }
}
