/*
 * xe: CD commands (cli_operations.ml): vm-cd-insert puts the ISO VDI
 * called cd-name (in an SR of content_type iso) into the VM's single
 * empty CD drive, vm-cd-eject empties its single CD drive, cd-list lists
 * the VDIs of the ISO SRs.
 */
#include "fields.h"
#include "cmds.h"

#include <string.h>

/* Whether the VDI ref lies in an SR of content_type iso. */
bool xe_vdi_in_iso_sr(xe_ctx *ctx, const char *vdi)
{
    const xcp_value *v = xe_record(ctx, xe_class_id("VDI"), vdi);
    const xcp_value *sr = v ? xe_record(ctx, xe_class_id("SR"),
                                        xe_rec_str(v, "SR"))
                            : NULL;

    return sr && xe_streq(xe_rec_str(sr, "content_type"), "iso");
}

/* The VM's CD VBDs (empty ones only with empty_only) into *out. */
static void cd_vbds(xe_ctx *ctx, const xe_obj *vm, bool empty_only,
                    xe_strv *out)
{
    const xcp_value *vbds = xe_rec_field(vm->rec, "VBDs");
    const xcp_value *r;
    size_t i;

    xe_strv_init(out, &ctx->arena);
    for (i = 0; vbds && vbds->kind == XCP_VAL_ARRAY && i < vbds->u.arr.n;
         i++) {
        r = xe_record(ctx, xe_class_id("VBD"), vbds->u.arr.items[i].u.s);
        if (r && xe_streq(xe_rec_str(r, "type"), "CD") &&
            (!empty_only || xe_rec_bool(r, "empty")))
            xe_strv_add(out, vbds->u.arr.items[i].u.s);
    }
}

static int insert_op(xe_ctx *ctx, const xe_obj *vm, const void *data,
                     const char **out)
{
    const char *vdi = data;
    xe_strv cds;
    xe_args a;

    *out = NULL;
    cd_vbds(ctx, vm, true, &cds);
    if (cds.n == 0)
        return xe_fail_api(ctx, "VM_NO_EMPTY_CD_VBD", 1, &vm->ref);
    if (cds.n > 1)
        return xe_fail(ctx, "Two or more empty CD devices found. Please use "
                            "vbd-insert");
    xe_args_init(&a);
    xe_args_str(&a, cds.v[0]);
    xe_args_str(&a, vdi);
    return xe_call(ctx, NULL, "VBD.insert", &a);
}

int xe_vm_cd_insert(xe_ctx *ctx)
{
    static const char *const own[] = {"cd-name", NULL};
    const char *name = xe_param(ctx, "cd-name");
    const char *found = NULL;
    xcp_value refs;
    xe_args a;
    size_t i, n = 0;

    xe_args_init(&a);
    xe_args_str(&a, name);
    if (xe_call(ctx, &refs, "VDI.get_by_name_label", &a) < 0)
        return -1;
    for (i = 0; refs.kind == XCP_VAL_ARRAY && i < refs.u.arr.n; i++)
        if (xe_vdi_in_iso_sr(ctx, refs.u.arr.items[i].u.s)) {
            found = xe_strdup(&ctx->arena, refs.u.arr.items[i].u.s);
            n++;
        }
    xcp_value_dispose(&refs);
    if (n == 0)
        return xe_fail(ctx, "CD %s not found", name);
    if (n > 1)
        return xe_fail(ctx, "Multiple CDs named %s found. Please use "
                            "vbd-insert and specify uuids", name);
    return xe_vm_do(ctx, own, insert_op, found);
}

static int eject_op(xe_ctx *ctx, const xe_obj *vm, const void *data,
                    const char **out)
{
    xe_strv cds;

    (void)data;
    *out = NULL;
    cd_vbds(ctx, vm, false, &cds);
    if (cds.n == 0)
        return xe_fail(ctx, "No CDs found");
    if (cds.n > 1)
        return xe_fail(ctx, "Two or more CDs found. Please use vbd-eject");
    return xe_call1(ctx, "VBD.eject", cds.v[0]);
}

int xe_vm_cd_eject(xe_ctx *ctx)
{
    static const char *const own[] = {NULL};

    return xe_vm_do(ctx, own, eject_op, NULL);
}

int xe_cd_list(xe_ctx *ctx)
{
    const char *p = xe_param(ctx, "params");
    xe_strv params;
    xe_obj *objs;
    size_t n, i, kept = 0;

    if (xe_objs_all(ctx, xe_class_find("vdi"), &objs, &n) < 0)
        return -1;
    for (i = 0; i < n; i++)
        if (xe_vdi_in_iso_sr(ctx, objs[i].ref))
            objs[kept++] = objs[i];
    xe_strv_init(&params, &ctx->arena);
    if (p == NULL) {
        xe_strv_add(&params, "name-label");
        xe_strv_add(&params, "uuid");
    } else if (strcmp(p, "all") != 0) {
        xe_split(&params, p, ',');
    }
    return xe_print_objs(ctx, objs, kept, params.n ? &params : NULL, false);
}
