/*
 * xcp_vdi_import / xcp_vdi_export (<xcp/transfer.h>): checks, then the
 * session driver's transfer (engine/transfer.c for a local session, the
 * server's HTTP handlers for a remote one: client/remote.c).
 */
#include "../engine/engine.h"

#include <strings.h>

#include <xcp/transfer.h>

static int transfer(xcp_session *s, xcp_vdi vdi, bool import, int fd,
                    const xcp_vdi_transfer_options *o)
{
    xcp_vdi_transfer_options def = {XCP_VDI_TRANSFER_OPTIONS_VERSION};

    xcp_error_clear();
    if (!s)
        return XCP__ERR_INVALID_VALUE("session", "");
    if (fd < 0)
        return XCP__ERR_INVALID_VALUE("fd", "");
    if (!o)
        o = &def;
    if (o->version < 1 || o->version > XCP_VDI_TRANSFER_OPTIONS_VERSION)
        return XCP__ERR_INVALID_VALUE("version", "");
    if (o->format && *o->format && strcasecmp(o->format, "raw") &&
        strcasecmp(o->format, "vhd") && strcasecmp(o->format, "qcow2") &&
        strcasecmp(o->format, "tar"))
        return XCP__ERR_INVALID_VALUE("format", o->format);
    if (!s->ops->vdi_transfer)
        return XCP__ERR_NOT_IMPLEMENTED(import ? "xcp_vdi_import"
                                               : "xcp_vdi_export");
    return s->ops->vdi_transfer(s, vdi.ref, import, fd, o);
}

int xcp_vdi_import(xcp_session *s, xcp_vdi vdi, int fd,
                   const xcp_vdi_transfer_options *o)
{
    return transfer(s, vdi, true, fd, o);
}

int xcp_vdi_export(xcp_session *s, xcp_vdi vdi, int fd,
                   const xcp_vdi_transfer_options *o)
{
    return transfer(s, vdi, false, fd, o);
}
