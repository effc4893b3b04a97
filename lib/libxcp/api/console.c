/*
 * console.*: consoles come with their domains; creating or destroying one
 * by hand answers NOT_IMPLEMENTED. xcp_console_open goes through the
 * session's driver: the engine's checks and the hypervisor's stream
 * (engine/console.c) for a local session, CONNECT for a remote one.
 * A console's location is where a client reaches it, as XAPI writes it:
 * https://<host.address>/console?ref=<console ref>.
 */
#include "../engine/engine.h"

#include <string.h>
#include <xcp/console.h>


static int not_impl(xcp__ctx *c)
{
    return XCP__ERR_NOT_IMPLEMENTED(c->msg->wire);
}

int xcp__console_set_location(xcp__ctx *c, xcp__obj *con)
{
    return xcp__console_set_location_at(
        c, con, xcp__db_get_cls(c->db, C(host), c->e->host));
}

int xcp__console_set_location_at(xcp__ctx *c, xcp__obj *con, xcp__obj *host)
{
    const char *addr = host ? xcp__obj_str(host, F(host, address)) : "";
    bool v6 = strchr(addr, ':') != NULL;
    char *loc;
    int rc;

    /* no address, no location (XAPI leaves it empty rather than point
     * at nowhere); an IPv6 address goes in brackets, as in any URI */
    loc = addr[0] ? xcp__printf("https://%s%s%s/console?ref=%s",
                                v6 ? "[" : "", addr, v6 ? "]" : "",
                                con->ref)
                  : xcp__printf("%s", "");
    if (!loc)
        return xcp__oom();
    rc = strcmp(loc, xcp__obj_str(con, F(console, location)))
             ? xcp__db_set_str(c->db, con, F(console, location), loc)
             : 0;
    free(loc);
    return rc;
}

int xcp__consoles_relocate(xcp__ctx *c)
{
    size_t i, n;
    xcp__obj *const *all = xcp__db_all(c->db, C(console), &n);
    int rc;

    for (i = 0; i < n; i++)
        if ((rc = xcp__console_set_location(c, all[i])) < 0)
            return rc;
    return 0;
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
