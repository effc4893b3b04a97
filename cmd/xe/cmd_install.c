/*
 * xe: vm-install. Finds the template (template=, template-uuid=,
 * template-name-label=), clones it (or copies it when an SR is given),
 * points the provisioning XML at the chosen SR, sets the suspend SR and
 * the vendor device, provisions the disks and prints the new VM's uuid;
 * the new VM is destroyed again if a step after the clone fails.
 * Follows XAPI's cli_operations.ml vm_install / vm_install_real.
 */
#include "fields.h"
#include "cmds.h"

#include <string.h>

static int find_template_by_name(xe_ctx *ctx, const char *name,
                                 const char **ref)
{
    xe_obj *vms;
    size_t n;

    if (xe_objs_all(ctx, xe_class_find("vm"), &vms, &n) < 0
        || xe_filter(ctx, vms, &n, "name-label", name) < 0
        || xe_filter(ctx, vms, &n, "is-a-template", "true") < 0
        || xe_filter(ctx, vms, &n, "is-control-domain", "false") < 0)
        return -1;
    if (n == 0)
        return xe_fail(ctx, "No templates matched");
    if (n > 1)
        return xe_fail(ctx, "More than one matching template found");
    *ref = vms[0].ref;
    return 0;
}

static int find_template(xe_ctx *ctx, const char **ref)
{
    const char *p;

    if ((p = xe_param(ctx, "template-uuid")) != NULL) {
        if (xe_get_by_uuid(ctx, "VM", p, ref) < 0)
            return xe_fail(ctx, "Cannot find template");
        return 0;
    }
    if ((p = xe_param(ctx, "template-name-label")) != NULL
        || (p = xe_param(ctx, "template-name")) != NULL)
        return find_template_by_name(ctx, p, ref);
    if ((p = xe_param(ctx, "template")) != NULL) {
        *ref = xe_try_str(ctx, "VM.get_by_uuid", p);
        return *ref != NULL ? 0 : find_template_by_name(ctx, p, ref);
    }
    return xe_fail(ctx, "Template must be specified by parameter "
                        "'template-uuid', 'template-name', "
                        "'template-name-label' or 'template'");
}

/* The SR from sr-name-label, checked against the one from sr-uuid. */
static int sr_by_name(xe_ctx *ctx, const char *name, const char **sr)
{
    xe_args a;
    xcp_value v;
    size_t i;
    int rc = 0;

    xe_args_init(&a);
    xe_args_str(&a, name);
    if (xe_call(ctx, &v, "SR.get_by_name_label", &a) < 0)
        return -1;
    if (v.kind != XCP_VAL_ARRAY || v.u.arr.n == 0) {
        rc = xe_fail(ctx, "No SR with that name-label found");
    } else if (*sr != NULL) {
        for (i = 0; i < v.u.arr.n; i++)
            if (strcmp(v.u.arr.items[i].u.s, *sr) == 0)
                break;
        if (i == v.u.arr.n)
            rc = xe_fail(ctx, "SR specified via sr-uuid doesn't have the "
                              "name specified via sr-name-label");
    } else if (v.u.arr.n > 1) {
        rc = xe_fail(ctx, "Multiple SRs with that name-label found");
    } else {
        *sr = xe_strdup(&ctx->arena, v.u.arr.items[0].u.s);
    }
    xcp_value_dispose(&v);
    return rc;
}

/* NULL: no SR given (clone); "OpaqueRef:NULL": from a snapshot (clone). */
static int target_sr(xe_ctx *ctx, const char *tmpl, const char **sr)
{
    const char *uuid = xe_param(ctx, "sr-uuid");
    const char *name = xe_param(ctx, "sr-name-label");
    bool snap;

    *sr = NULL;
    if (xe_get_bool(ctx, "VM.get_is_a_snapshot", tmpl, &snap) < 0)
        return -1;
    if (snap) {
        if (uuid != NULL || name != NULL)
            return xe_fail(ctx, "Do not use the sr-name-label or sr-uuid "
                                "argument when installing from a snapshot. "
                                "By default, it will install each new disk "
                                "on the same SR as the corresponding "
                                "snapshot disks.");
        *sr = XCP_NULL_REF;
        return 0;
    }
    if (uuid != NULL && xe_get_by_uuid(ctx, "SR", uuid, sr) < 0)
        return -1;
    if (name != NULL)
        return sr_by_name(ctx, name, sr);
    return 0;
}

static bool sr_valid(xe_ctx *ctx, const char *sr)
{
    return xe_try_str(ctx, "SR.get_uuid", sr) != NULL;
}

static int first_pool(xe_ctx *ctx, const char **pool)
{
    xe_args a;
    xcp_value v;
    int rc = 0;

    xe_args_init(&a);
    if (xe_call(ctx, &v, "pool.get_all", &a) < 0)
        return -1;
    if (v.kind == XCP_VAL_ARRAY && v.u.arr.n > 0)
        *pool = xe_strdup(&ctx->arena, v.u.arr.items[0].u.s);
    else
        rc = xe_fail(ctx, "Remote host does not belong to a pool.");
    xcp_value_dispose(&v);
    return rc;
}

/* get_default_sr_uuid: NULL when the pool default SR is unusable. */
int xe_default_sr_uuid(xe_ctx *ctx, const char **uuid)
{
    const char *pool, *sr;

    *uuid = NULL;
    if (first_pool(ctx, &pool) < 0
        || xe_get_str(ctx, "pool.get_default_SR", pool, &sr) < 0)
        return -1;
    *uuid = xe_try_str(ctx, "SR.get_uuid", sr);
    return 0;
}

static int disks_sr_uuid(xe_ctx *ctx, const char *tmpl, const char *sr,
                         const char **uuid)
{
    xcp_value oc;
    bool disks;

    if (sr != NULL && !xcp_ref_is_null(sr))
        return xe_get_str(ctx, "SR.get_uuid", sr, uuid);
    if (xe_default_sr_uuid(ctx, uuid) < 0)
        return -1;
    if (*uuid != NULL)
        return 0;
    if (xe_get_value(ctx, "VM.get_other_config", tmpl, &oc) < 0)
        return -1;
    disks = xcp_value_struct_get(&oc, "disks") != NULL;
    xcp_value_dispose(&oc);
    if (disks)
        return xe_fail(ctx, "Failed to find a valid default SR for the "
                            "Pool. Please provide an sr-name-label or "
                            "sr-uuid parameter.");
    *uuid = "";
    return 0;
}

/* The value of attribute name in the tag text [p, end), or NULL. */
static const char *attr_span(const char *p, const char *end,
                             const char *name, size_t *len)
{
    size_t n = strlen(name);
    const char *q;
    char quote;

    for (; p + n + 2 < end; p++) {
        if ((p[-1] != ' ' && p[-1] != '\t' && p[-1] != '\n')
            || strncmp(p, name, n) != 0 || p[n] != '=')
            continue;
        quote = p[n + 1];
        if (quote != '"' && quote != '\'')
            continue;
        q = memchr(p + n + 2, quote, (size_t)(end - (p + n + 2)));
        if (q == NULL)
            return NULL;
        *len = (size_t)(q - (p + n + 2));
        return p + n + 2;
    }
    return NULL;
}

/* Every <disk sr="..."> of the provisioning XML now names sr_uuid. */
static const char *rewrite_disks(xe_ctx *ctx, const char *xml,
                                 const char *sr_uuid)
{
    xe_buf b;
    const char *p = xml, *tag, *end, *val;
    size_t len;

    xe_buf_init(&b, &ctx->arena);
    xe_buf_add(&b, "");
    while ((tag = strstr(p, "<disk")) != NULL) {
        end = strchr(tag, '>');
        if (end == NULL)
            break;
        val = attr_span(tag + 5, end, "sr", &len);
        if (val == NULL) {
            xe_buf_addn(&b, p, (size_t)(end - p));
            p = end;
            continue;
        }
        xe_buf_addn(&b, p, (size_t)(val - p));
        xe_buf_add(&b, sr_uuid);
        p = val + len;
    }
    xe_buf_add(&b, p);
    return xe_buf_str(&b);
}

static int rewrite_provisioning(xe_ctx *ctx, const char *vm,
                                const char *sr_uuid)
{
    xcp_value oc;
    const xcp_value *disks;
    const char *xml = NULL;
    xe_args a;

    if (xe_get_value(ctx, "VM.get_other_config", vm, &oc) < 0)
        return -1;
    disks = xcp_value_struct_get(&oc, "disks");
    if (disks != NULL && disks->kind == XCP_VAL_STRING)
        xml = rewrite_disks(ctx, disks->u.s, sr_uuid);
    xcp_value_dispose(&oc);
    if (xml == NULL)
        return 0;
    xe_args_init(&a);
    xe_args_str(&a, vm);
    xe_args_str(&a, "disks");
    if (xe_call(ctx, NULL, "VM.remove_from_other_config", &a) < 0)
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, vm);
    xe_args_str(&a, "disks");
    xe_args_str(&a, xml);
    return xe_call(ctx, NULL, "VM.add_to_other_config", &a);
}

/* <restriction field="name" value="true"/> in VM.recommendations */
static bool is_recommended(const char *xml, const char *field)
{
    const char *p = xml, *end, *v;
    size_t len;

    while ((p = strstr(p, "<restriction")) != NULL) {
        end = strchr(p, '>');
        if (end == NULL)
            return false;
        v = attr_span(p + 12, end, "field", &len);
        if (v != NULL && len == strlen(field) && strncmp(v, field, len) == 0) {
            v = attr_span(p + 12, end, "value", &len);
            return v != NULL && len == 4 && strncmp(v, "true", 4) == 0;
        }
        p = end;
    }
    return false;
}

static int set_vendor_device(xe_ctx *ctx, const char *tmpl, const char *vm)
{
    const char *rec, *pool, *name;
    bool no_dev;
    xe_args a;

    if (xe_get_str(ctx, "VM.get_recommendations", tmpl, &rec) < 0
        || first_pool(ctx, &pool) < 0
        || xe_get_bool(ctx, "pool.get_policy_no_vendor_device", pool,
                     &no_dev) < 0)
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, vm);
    xe_args_bool(&a, is_recommended(rec, "has-vendor-device") && !no_dev);
    if (xe_call(ctx, NULL, "VM.set_has_vendor_device", &a) == 0)
        return 0;
    if (!xe_streq(ctx->err.name, "LICENCE_RESTRICTION"))
        return -1;
    memset(&ctx->err, 0, sizeof(ctx->err));
    if (xe_get_str(ctx, "VM.get_name_label", vm, &name) < 0)
        return -1;
    xe_print_stderr(ctx, xe_sprintf(&ctx->arena,
        "Note: the VM template recommends setting has-vendor-device=true (to "
        "provide the option of obtaining PV drivers through Windows Update), "
        "but a suitable licence has not been deployed for this host. "
        "Ignoring this recommendation and continuing with installation of "
        "VM \"%s\"...\n", name));
    return 0;
}

static int copy_bios_strings(xe_ctx *ctx, const char *vm)
{
    const char *uuid = xe_param(ctx, "copy-bios-strings-from"), *host;
    xe_args a;

    if (uuid == NULL)
        return 0;
    if (xe_get_by_uuid(ctx, "host", uuid, &host) < 0)
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, vm);
    xe_args_str(&a, host);
    return xe_call(ctx, NULL, "VM.copy_bios_strings", &a);
}

/* Everything after the clone; the caller destroys the VM on failure. */
static int finish_install(xe_ctx *ctx, const char *tmpl, const char *vm,
                          const char *suspend_sr, const char *sr_uuid)
{
    xe_args a;
    const char *uuid;

    xe_args_init(&a);
    xe_args_str(&a, vm);
    xe_args_str(&a, "Installed via xe CLI");
    if (xe_call(ctx, NULL, "VM.set_name_description", &a) < 0)
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, vm);
    xe_args_str(&a, suspend_sr);
    if (xe_call(ctx, NULL, "VM.set_suspend_SR", &a) < 0
        || rewrite_provisioning(ctx, vm, sr_uuid) < 0
        || set_vendor_device(ctx, tmpl, vm) < 0
        || xe_call1(ctx, "VM.provision", vm) < 0
        || copy_bios_strings(ctx, vm) < 0
        || xe_get_str(ctx, "VM.get_uuid", vm, &uuid) < 0)
        return -1;
    xe_print_line(ctx, uuid);
    return 0;
}

static int install(xe_ctx *ctx, const char *tmpl, const char *name)
{
    const char *sr, *suspend_sr, *sr_uuid, *vm;
    xe_args a;
    xe_err saved;

    if (target_sr(ctx, tmpl, &sr) < 0)
        return -1;
    if (sr != NULL && sr_valid(ctx, sr))
        suspend_sr = sr;
    else if (xe_get_str(ctx, "VM.get_suspend_SR", tmpl, &suspend_sr) < 0)
        return -1;
    if (disks_sr_uuid(ctx, tmpl, sr, &sr_uuid) < 0)
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, tmpl);
    xe_args_str(&a, name);
    if (sr != NULL && !xcp_ref_is_null(sr))
        xe_args_str(&a, sr);
    if (xe_call_str(ctx, &vm, a.n == 3 ? "VM.copy" : "VM.clone", &a) < 0)
        return -1;
    if (finish_install(ctx, tmpl, vm, suspend_sr, sr_uuid) == 0)
        return 0;
    saved = ctx->err;
    xe_try_value(ctx, "VM.destroy", vm, NULL);
    ctx->err = saved;
    return -1;
}

int xe_vm_install(xe_ctx *ctx)
{
    const char *tmpl;
    bool is_tmpl;

    if (find_template(ctx, &tmpl) < 0
        || xe_get_bool(ctx, "VM.get_is_a_template", tmpl, &is_tmpl) < 0)
        return -1;
    if (!is_tmpl)
        return xe_fail(ctx, "Can only install from templates");
    return install(ctx, tmpl, xe_param(ctx, "new-name-label"));
}
