/*
 * xcp_vm_export / xcp_vm_import (<xcp/xva.h>): checks, then the session
 * driver's (engine/xva.c for a local session).
 */
#include "../engine/engine.h"
#include "../sr/xva_stream.h"

#include <stdio.h>

#include <xcp/xva.h>

/* The options' checks shared by both directions. */
static int check(xcp_session *s, int fd, unsigned version, unsigned max)
{
    xcp_error_clear();
    if (!s)
        return XCP__ERR_INVALID_VALUE("session", "");
    if (fd < 0)
        return XCP__ERR_INVALID_VALUE("fd", "");
    if (version < 1 || version > max)
        return XCP__ERR_INVALID_VALUE("version", "");
    return 0;
}

int xcp_vm_export_xva(xcp_session *s, xcp_vm vm, int fd,
                  const xcp_vm_export_options *o)
{
    xcp_vm_export_options def = {XCP_VM_EXPORT_OPTIONS_VERSION};
    int rc;

    if (!o)
        o = &def;
    if ((rc = check(s, fd, o->version, XCP_VM_EXPORT_OPTIONS_VERSION)) < 0)
        return rc;
    if (xcp__xva_compression_of(o->compression) < 0)
        return XCP__ERR_INVALID_VALUE("compression", o->compression);
    if (!s->ops->vm_export)
        return XCP__ERR_NOT_IMPLEMENTED("xcp_vm_export_xva");
    return s->ops->vm_export(s, vm.ref, fd, o);
}

int xcp_vm_import_xva(xcp_session *s, xcp_vm_set *out, int fd,
                  const xcp_vm_import_options *o)
{
    xcp_vm_import_options def = {XCP_VM_IMPORT_OPTIONS_VERSION};
    xcp_value vms;
    size_t i;
    int rc;

    if (!o)
        o = &def;
    if (out)
        memset(out, 0, sizeof(*out));
    if ((rc = check(s, fd, o->version, XCP_VM_IMPORT_OPTIONS_VERSION)) < 0)
        return rc;
    if (!s->ops->vm_import)
        return XCP__ERR_NOT_IMPLEMENTED("xcp_vm_import_xva");
    if ((rc = s->ops->vm_import(s, fd, o, &vms)) < 0)
        return rc;
    if (out && vms.kind == XCP_VAL_ARRAY && vms.u.arr.n) {
        if (!(out->items = xcp__calloc(vms.u.arr.n, sizeof(*out->items)))) {
            xcp_value_dispose(&vms);
            return xcp__oom();
        }
        for (i = 0; i < vms.u.arr.n; i++)
            snprintf(out->items[i].ref, XCP_REF_MAX, "%s",
                     vms.u.arr.items[i].u.s);
        out->n = vms.u.arr.n;
    }
    xcp_value_dispose(&vms);
    return 0;
}
