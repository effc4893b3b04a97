/* server: being written. */
#include "server.h"

int xcp_server_open(xcp_server **out, const xcp_server_options *opts)
{
    XCP__UNUSED(out);
    XCP__UNUSED(opts);
    return xcp__fail("NOT_IMPLEMENTED", "xcp_server_open", NULL);
}
void xcp_server_shutdown(xcp_server *srv) { XCP__UNUSED(srv); }
void xcp_server_close(xcp_server *srv) { XCP__UNUSED(srv); }
const char *xcp_server_state_dir(const xcp_server *srv) { XCP__UNUSED(srv); return NULL; }
void xcp_server_rpc(xcp_server *srv, const xcp_server_request *req,
                    xcp_server_done_fn done, void *arg)
{
    xcp_server_reply r = {503, "text/html", "", 0};
    XCP__UNUSED(srv);
    XCP__UNUSED(req);
    done(arg, &r);
}
