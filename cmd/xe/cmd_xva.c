/*
 * xe vm-export / vm-import: a VM to and from an XVA file of the user's
 * (xe_io_vm_export/xe_io_vm_import), printing what XAPI's xe
 * prints ("Export succeeded"; the imported VMs' uuids, comma-separated).
 */
#include "fields.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <xcp/xva.h>

static const char *const export_own[] = {
    "filename", "preserve-power-state", "compress", "metadata",
    "include-snapshots", "excluded-device-types", "progress", NULL};

static int export_op(xe_ctx *ctx, const xe_obj *vm, const void *data,
                     const char **out)
{
    const char *file = xe_param(ctx, "filename");
    xcp_vm_export_options o = {XCP_VM_EXPORT_OPTIONS_VERSION};
    bool snaps = true;

    (void)data;
    *out = NULL;
    o.compression = xe_param(ctx, "compress");
    if (xe_param_bool(ctx, "metadata", false, &o.metadata_only) < 0 ||
        xe_param_bool(ctx, "preserve-power-state", false,
                      &o.preserve_power_state) < 0 ||
        xe_param_bool(ctx, "include-snapshots", true, &snaps) < 0)
        return -1;
    o.no_snapshots = !snaps;
    return xe_io_vm_export(ctx, file, vm->ref, &o);
}

int xe_vm_export(xe_ctx *ctx)
{
    if (xe_vm_do_single(ctx, export_own, export_op, NULL) < 0)
        return -1;
    xe_print_msg(ctx, "Export succeeded");
    return 0;
}

int xe_vm_import(xe_ctx *ctx)
{
    const char *file = xe_param(ctx, "filename"), *sr;
    const char *sr_uuid = xe_param(ctx, "sr-uuid");
    xcp_vm_import_options o = {XCP_VM_IMPORT_OPTIONS_VERSION};
    xe_strv vms, uuids;
    size_t i;

    if (!file)
        return xe_fail(ctx, "Required parameter not found: filename");
    if (xe_param_bool(ctx, "preserve", false, &o.restore) < 0 ||
        xe_param_bool(ctx, "force", false, &o.force) < 0 ||
        xe_param_bool(ctx, "metadata", false, &o.metadata) < 0)
        return -1;
    if (sr_uuid) {
        if (xe_get_by_uuid(ctx, "SR", sr_uuid, &sr) < 0)
            return -1;
        snprintf(o.sr.ref, sizeof(o.sr.ref), "%s", sr);
    }
    xe_strv_init(&vms, &ctx->arena);
    if (xe_io_vm_import(ctx, file, &o, &vms) < 0)
        return -1;
    xe_strv_init(&uuids, &ctx->arena);
    for (i = 0; i < vms.n; i++)
        xe_strv_add(&uuids, xe_any_ref_uuid(ctx, vms.v[i]));
    xe_print_line(ctx, xe_strv_join(&uuids, ","));
    return 0;
}
