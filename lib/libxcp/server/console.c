/*
 * /console: the server's side of opening a console for a network client.
 * The request's credentials become a session as for transfers (local
 * root, session_id, HTTP Basic); the engine checks the console and its
 * VM and asks the hypervisor driver for the stream (api/console.c); the
 * transport then moves the bytes (CONNECT or WebSocket).
 */
#include "server.h"

int xcp_server_console_open(xcp_server *srv, int *fd, int *http_status,
                            const xcp_server_console_request *r)
{
    char basic[XCP_REF_MAX];
    xcp__console_req req;
    int rc;

    xcp_error_clear();
    *fd = -1;
    *http_status = 500;
    memset(&req, 0, sizeof(req));
    req.id = r->id;
    req.vm_too = true;
    if (xcp__server_creds(srv, &r->peer, r->session_id, r->basic_user,
                          r->basic_password, basic, &req.session) < 0) {
        *http_status = 401;
        return -1;
    }
    rc = xcp__console_open(xcp__server_engine(srv), &req, fd, http_status);
    xcp__server_creds_end(srv, basic);
    return rc;
}
