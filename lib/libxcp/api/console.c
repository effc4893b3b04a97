/*
 * console.*: consoles come with their domains; creating or destroying one
 * by hand answers NOT_IMPLEMENTED. xcp_console_open goes through the
 * session's driver: the engine's checks and the hypervisor's stream
 * (engine/console.c) for a local session, CONNECT for a remote one.
 */
#include "../engine/engine.h"

#include <xcp/console.h>


static int not_impl(xcp__ctx *c)
{
    return XCP__ERR_NOT_IMPLEMENTED(c->msg->wire);
}

const struct xcp__impl xcp__impl_console[] = {
    {"console.create", not_impl},
    {"console.destroy", not_impl},
    {NULL, NULL},
};

int xcp_console_open(xcp_session *s, int *fd, xcp_console console)
{
    xcp_error_clear();
    if (!fd)
        return XCP__ERR_INVALID_VALUE("fd", "");
    *fd = -1;
    if (!s)
        return XCP__ERR_INVALID_VALUE("session", "");
    if (!s->ops->console_open)
        return XCP__ERR_NOT_IMPLEMENTED("xcp_console_open");
    return s->ops->console_open(s, console.ref, fd);
}
