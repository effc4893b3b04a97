/*
 * xe vm-export / vm-import: a VM to and from an XVA file through
 * xcp_vm_export_xva()/xcp_vm_import_xva(), printing what XAPI's xe
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
    xcp_vm ref;
    xe_bar b;
    int fd, rc;

    (void)data;
    *out = NULL;
    o.compression = xe_param(ctx, "compress");
    if (xe_param_bool(ctx, "metadata", false, &o.metadata_only) < 0 ||
        xe_param_bool(ctx, "preserve-power-state", false,
                      &o.preserve_power_state) < 0 ||
        xe_param_bool(ctx, "include-snapshots", true, &snaps) < 0)
        return -1;
    o.no_snapshots = !snaps;
    xe_bar_start(&b, &o.progress, &o.progress_ctx);
    fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return xe_fail(ctx, "%s: %s", file, strerror(errno));
    snprintf(ref.ref, sizeof(ref.ref), "%s", vm->ref);
    rc = xcp_vm_export_xva(ctx->s, ref, fd, &o);
    xe_bar_end(&b);
    if (close(fd) < 0 && rc == 0) {
        unlink(file);
        return xe_fail(ctx, "%s: %s", file, strerror(errno));
    }
    if (rc < 0) {
        unlink(file); /* no half-written export left behind */
        return xe_fail_lib(ctx);
    }
    return 0;
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
    xcp_vm_set vms = {0, NULL};
    xe_strv uuids;
    xe_bar b;
    size_t i;
    int fd, rc;

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
    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return xe_fail(ctx, "%s: %s", file, strerror(errno));
    xe_bar_start(&b, &o.progress, &o.progress_ctx);
    rc = xcp_vm_import_xva(ctx->s, &vms, fd, &o);
    xe_bar_end(&b);
    close(fd);
    if (rc < 0)
        return xe_fail_lib(ctx);
    xe_strv_init(&uuids, &ctx->arena);
    for (i = 0; i < vms.n; i++)
        xe_strv_add(&uuids, xe_any_ref_uuid(ctx, vms.items[i].ref));
    xcp_vm_set_dispose(&vms);
    xe_print_line(ctx, xe_strv_join(&uuids, ","));
    return 0;
}
