/*
 * xe: a VM's disks, CDs and VIFs, as XAPI's cli_operations.ml does them:
 * vm-disk-add/-remove/-list, vm-cd-add/-remove/-list, snapshot-disk-list,
 * vm-vif-list, and the BIOS-string commands. Every one runs on the VMs its
 * <vm-selectors> choose (xe_vm_do).
 */
#include "fields.h"
#include "cmds.h"

#include <string.h>

static xe_obj obj_of(xe_ctx *ctx, const char *cli_cls, const char *api_cls,
                     const char *ref)
{
    xe_obj o;

    o.cc = xe_class_find(cli_cls);
    o.cls = xe_class_id(api_cls);
    o.ref = ref;
    o.rec = xe_record(ctx, o.cls, ref);
    return o;
}

/* The refs of a set field of a VM record (VBDs, VIFs). */
static const xcp_value *ref_set(const xe_obj *vm, const char *field)
{
    const xcp_value *v = xe_rec_field(vm->rec, field);

    return v && v->kind == XCP_VAL_ARRAY ? v : NULL;
}

/* VBD.create then VBD.plug, whose failure is only logged by XAPI
 * (create_vbd_and_plug_with_other_config). */
static int vbd_create_plug(xe_ctx *ctx, const char *vm, const char *vdi,
                           const char *device, const char *mode,
                           const char *type, bool owner)
{
    int cls = xe_class_id("VBD");
    xcp_value st, oc;
    const char *vbd;
    xe_args a;

    xcp_value_set_struct(&st);
    xe_struct_str(&st, cls, "VM", vm);
    xe_struct_str(&st, cls, "VDI", vdi);
    xe_struct_str(&st, cls, "userdevice", device);
    xe_struct_bool(&st, cls, "bootable", false);
    xe_struct_str(&st, cls, "mode", mode);
    xe_struct_str(&st, cls, "type", type);
    xe_struct_bool(&st, cls, "unpluggable", true);
    xe_struct_bool(&st, cls, "empty", false);
    xe_struct_str(&st, cls, "qos_algorithm_type", "");
    xe_struct_empty_map(&st, cls, "qos_algorithm_params");
    xcp_value_set_struct(&oc);
    if (owner) {
        xcp_value s;

        xcp_value_set_string(&s, "");
        xcp_value_struct_add(&oc, "owner", &s);
        xcp_value_dispose(&s);
    }
    xe_struct_value(&st, cls, "other_config", &oc);
    xe_struct_str(&st, cls, "device", "");
    xe_struct_bool(&st, cls, "currently_attached", false);
    xe_args_init(&a);
    xe_args_value(&a, &st);
    if (xe_call_str(ctx, &vbd, "VBD.create", &a) < 0)
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, vbd);
    (void)xe_call_quiet(ctx, NULL, "VBD.plug", &a);
    return 0;
}

/* ---- vm-cd-add, vm-cd-remove ---- */

static int cd_add_op(xe_ctx *ctx, const xe_obj *vm, const void *data,
                     const char **out)
{
    *out = NULL;
    return vbd_create_plug(ctx, vm->ref, data, xe_param(ctx, "device"), "RO",
                           "CD", false);
}

int xe_vm_cd_add(xe_ctx *ctx)
{
    static const char *const own[] = {"cd-name", "device", "cd-location",
                                      NULL};
    const char *name = xe_param(ctx, "cd-name"), *vdi = NULL;
    xcp_value refs;
    xe_args a;
    size_t i;

    xe_args_init(&a);
    xe_args_str(&a, name);
    if (xe_call(ctx, &refs, "VDI.get_by_name_label", &a) < 0)
        return -1;
    for (i = 0; refs.kind == XCP_VAL_ARRAY && i < refs.u.arr.n && !vdi; i++)
        if (xe_vdi_in_iso_sr(ctx, refs.u.arr.items[i].u.s))
            vdi = xe_strdup(&ctx->arena, refs.u.arr.items[i].u.s);
    xcp_value_dispose(&refs);
    if (vdi == NULL)
        return xe_fail(ctx, "CD %s not found!", name);
    return xe_vm_do(ctx, own, cd_add_op, vdi);
}

static int cd_remove_op(xe_ctx *ctx, const xe_obj *vm, const void *data,
                        const char **out)
{
    const char *name = data;
    const xcp_value *vbds = ref_set(vm, "VBDs");
    const xcp_value *vbd, *vdi;
    size_t i;

    *out = NULL;
    for (i = 0; vbds && i < vbds->u.arr.n; i++) {
        const char *ref = vbds->u.arr.items[i].u.s;

        vbd = xe_record(ctx, xe_class_id("VBD"), ref);
        if (vbd == NULL)
            continue;
        vdi = xe_record(ctx, xe_class_id("VDI"), xe_rec_str(vbd, "VDI"));
        /* An empty drive's VDI is not in the database: XAPI's matches
         * the name "<EMPTY>". */
        if (vdi == NULL ? xe_streq(name, "<EMPTY>")
                        : xe_vdi_in_iso_sr(ctx, xe_rec_str(vbd, "VDI"))
                              && xe_streq(xe_rec_str(vdi, "name_label"),
                                          name))
            return xe_call1(ctx, "VBD.destroy", ref);
    }
    return xe_fail(ctx, "Disk not found");
}

int xe_vm_cd_remove(xe_ctx *ctx)
{
    static const char *const own[] = {"cd-name", NULL};

    return xe_vm_do(ctx, own, cd_remove_op, xe_param(ctx, "cd-name"));
}

/* ---- vm-disk-add, vm-disk-remove ---- */

static int disk_add_op(xe_ctx *ctx, const xe_obj *vm, const void *data,
                       const char **out)
{
    const int64_t *size = data;
    int cls = xe_class_id("VDI");
    const char *vdi, *sr = ctx->cmd_data;
    xcp_value st, sm;
    xe_args a;
    xcp_value s;
    xe_err saved;

    *out = NULL;
    xcp_value_set_struct(&st);
    xe_struct_str(&st, cls, "name_label", "Created by xe");
    xe_struct_str(&st, cls, "name_description", "Created by xe");
    xe_struct_str(&st, cls, "SR", sr);
    xe_struct_int(&st, cls, "virtual_size", *size);
    xe_struct_str(&st, cls, "type", "user");
    xe_struct_bool(&st, cls, "sharable", false);
    xe_struct_bool(&st, cls, "read_only", false);
    xe_struct_empty_map(&st, cls, "other_config");
    xe_struct_empty_map(&st, cls, "xenstore_data");
    xcp_value_set_struct(&sm);
    xcp_value_set_string(&s, xe_obj_uuid(vm));
    xcp_value_struct_add(&sm, "vmhint", &s);
    xcp_value_dispose(&s);
    xe_struct_value(&st, cls, "sm_config", &sm);
    xe_struct_empty_set(&st, cls, "tags");
    xe_args_init(&a);
    xe_args_value(&a, &st);
    if (xe_call_str(ctx, &vdi, "VDI.create", &a) < 0)
        return -1;
    if (vbd_create_plug(ctx, vm->ref, vdi, xe_param(ctx, "device"), "RW",
                        "Disk", true) == 0)
        return 0;
    /* The VBD failed: the new VDI goes, the VBD's error stays. */
    saved = ctx->err;
    xe_args_init(&a);
    xe_args_str(&a, vdi);
    (void)xe_call_quiet(ctx, NULL, "VDI.destroy", &a);
    ctx->err = saved;
    return -1;
}

int xe_vm_disk_add(xe_ctx *ctx)
{
    static const char *const own[] = {"sr-uuid", "device", "disk-size",
                                      NULL};
    const char *sr_uuid = xe_param(ctx, "sr-uuid"), *sr;
    int64_t size;

    if (xe_param_bytes(ctx, "disk-size", &size) < 0)
        return -1;
    if (sr_uuid == NULL) {
        if (xe_default_sr_uuid(ctx, &sr_uuid) < 0)
            return -1;
        if (sr_uuid == NULL)
            return xe_fail(ctx, "No default Pool SR set; you must specify "
                                "an SR on the commandline");
    }
    if (xe_get_by_uuid(ctx, "SR", sr_uuid, &sr) < 0)
        return -1;
    ctx->cmd_data = sr;
    return xe_vm_do(ctx, own, disk_add_op, &size);
}

static int disk_remove_op(xe_ctx *ctx, const xe_obj *vm, const void *data,
                          const char **out)
{
    const xcp_value *vbds = ref_set(vm, "VBDs");
    const xcp_value *vbd;
    const char *vdi;
    size_t i;

    *out = NULL;
    for (i = 0; vbds && i < vbds->u.arr.n; i++) {
        const char *ref = vbds->u.arr.items[i].u.s;

        vbd = xe_record(ctx, xe_class_id("VBD"), ref);
        if (vbd == NULL || !xe_streq(xe_rec_str(vbd, "userdevice"), data))
            continue;
        vdi = xe_strdup(&ctx->arena, xe_rec_str(vbd, "VDI"));
        if (xe_call1(ctx, "VBD.destroy", ref) < 0)
            return -1;
        return xe_call1(ctx, "VDI.destroy", vdi);
    }
    return xe_fail(ctx, "Disk not found");
}

int xe_vm_disk_remove(xe_ctx *ctx)
{
    static const char *const own[] = {"device", NULL};

    return xe_vm_do(ctx, own, disk_remove_op, xe_param(ctx, "device"));
}

/* ---- vm-disk-list, vm-cd-list, snapshot-disk-list ---- */

/* select_fields: the fields of params_key when given ("all": every one),
 * else the defaults. */
static const xe_strv *fields_of(xe_ctx *ctx, const char *params_key,
                                const char *const *defaults)
{
    const char *p = xe_param(ctx, params_key);
    xe_strv *sv = xe_alloc(&ctx->arena, sizeof(*sv));
    size_t i;

    xe_strv_init(sv, &ctx->arena);
    if (p != NULL && strcmp(p, "all") == 0)
        return NULL;
    if (p != NULL)
        xe_split(sv, p, ',');
    else
        for (i = 0; defaults[i] != NULL; i++)
            xe_strv_add(sv, defaults[i]);
    return sv;
}

/* vm_disk_list_aux: each Disk (or CD) VBD of the VM as a record, then its
 * VDI's unless the drive is empty. */
static int disk_list(xe_ctx *ctx, const xe_obj *vm, bool cds)
{
    static const char *const vbd_disk[] = {"uuid", "vm-name-label",
                                           "userdevice", NULL};
    static const char *const vbd_cd[] = {"uuid", "vm-name-label",
                                         "userdevice", "empty", NULL};
    static const char *const vdi_def[] = {"uuid", "name-label",
                                          "virtual-size", "sr-name-label",
                                          NULL};
    const xe_strv *vbdf = fields_of(ctx, "vbd-params", cds ? vbd_cd
                                                           : vbd_disk);
    const xe_strv *vdif = fields_of(ctx, "vdi-params", vdi_def);
    const xcp_value *vbds = ref_set(vm, "VBDs");
    const char *kind = cds ? "CD" : "Disk";
    size_t i, n = 0;

    for (i = 0; vbds && i < vbds->u.arr.n; i++) {
        xe_obj vbd = obj_of(ctx, "vbd", "VBD", vbds->u.arr.items[i].u.s);
        xe_obj vdi;

        if (vbd.rec == NULL
            || !xe_streq(xe_rec_str(vbd.rec, "type"), kind))
            continue;
        xe_print_msg(ctx, xe_sprintf(&ctx->arena, "%s %zu VBD:", kind, n));
        if (xe_print_objs(ctx, &vbd, 1, vbdf, true) < 0)
            return -1;
        if (!xe_rec_bool(vbd.rec, "empty")) {
            vdi = obj_of(ctx, "vdi", "VDI", xe_rec_str(vbd.rec, "VDI"));
            if (vdi.rec == NULL)
                return xe_fail_api(ctx, "HANDLE_INVALID", 1,
                                   (const char *[]){"VDI"});
            xe_print_msg(ctx, xe_sprintf(&ctx->arena, "%s %zu VDI:", kind,
                                         n));
            if (xe_print_objs(ctx, &vdi, 1, vdif, true) < 0)
                return -1;
        }
        n++;
    }
    return 0;
}

static int disk_list_op(xe_ctx *ctx, const xe_obj *vm, const void *data,
                        const char **out)
{
    *out = NULL;
    return disk_list(ctx, vm, data != NULL);
}

static const char *const list_own[] = {"vbd-params", "vdi-params", NULL};

int xe_vm_disk_list(xe_ctx *ctx)
{
    return xe_vm_do(ctx, list_own, disk_list_op, NULL);
}

int xe_vm_cd_list(xe_ctx *ctx)
{
    return xe_vm_do(ctx, list_own, disk_list_op, "cd");
}

int xe_snapshot_disk_list(xe_ctx *ctx)
{
    const char *ref;
    xe_obj snap;

    if (xe_snapshot_ref(ctx, &ref) < 0)
        return -1;
    snap = obj_of(ctx, "snapshot", "VM", ref);
    if (snap.rec == NULL)
        return xe_fail_lib(ctx);
    return disk_list(ctx, &snap, false);
}

/* ---- vm-vif-list ---- */

static int vif_list_op(xe_ctx *ctx, const xe_obj *vm, const void *data,
                       const char **out)
{
    static const char *const def[] = {"uuid", "device", "MAC",
                                      "network-uuid", "network-name-label",
                                      "vm-name-label", NULL};
    const xcp_value *vifs = ref_set(vm, "VIFs");
    const xe_strv *f = fields_of(ctx, "params", def);
    xe_obj *objs;
    size_t i, n = 0;

    (void)data;
    *out = NULL;
    objs = xe_alloc(&ctx->arena, (vifs ? vifs->u.arr.n : 0) * sizeof(*objs)
                                     + 1);
    for (i = 0; vifs && i < vifs->u.arr.n; i++) {
        objs[n] = obj_of(ctx, "vif", "VIF", vifs->u.arr.items[i].u.s);
        if (objs[n].rec != NULL)
            n++;
    }
    return xe_print_objs(ctx, objs, n, f, true);
}

int xe_vm_vif_list(xe_ctx *ctx)
{
    static const char *const own[] = {"params", NULL};

    /* XAPI always lists every VM selected ("multiple" forced). */
    if (!xe_params_has(&ctx->params, "multiple"))
        xe_params_add(&ctx->arena, &ctx->params, "multiple", "true");
    return xe_vm_do(ctx, own, vif_list_op, NULL);
}

/* ---- BIOS strings ---- */

static int copy_bios_op(xe_ctx *ctx, const xe_obj *vm, const void *data,
                        const char **out)
{
    xe_args a;

    *out = NULL;
    xe_args_init(&a);
    xe_args_str(&a, vm->ref);
    xe_args_str(&a, data);
    return xe_call(ctx, NULL, "VM.copy_bios_strings", &a);
}

int xe_vm_copy_bios_strings(xe_ctx *ctx)
{
    static const char *const own[] = {"host-uuid", NULL};
    const char *host;

    if (xe_get_by_uuid(ctx, "host", xe_param(ctx, "host-uuid"), &host) < 0)
        return -1;
    return xe_vm_do(ctx, own, copy_bios_op, host);
}

/* XAPI's Constants.generic_bios_strings. */
static const char *const generic_bios[][2] = {
    {"bios-vendor", "Xen"},   {"bios-version", ""},
    {"system-manufacturer", "Xen"}, {"system-product-name", "HVM domU"},
    {"system-version", ""},   {"system-serial-number", ""},
    {"baseboard-manufacturer", ""}, {"baseboard-product-name", ""},
    {"baseboard-version", ""}, {"baseboard-serial-number", ""},
    {"baseboard-asset-tag", ""}, {"baseboard-location-in-chassis", ""},
    {"enclosure-asset-tag", ""}, {"hp-rombios", ""},
    {"oem-1", "Xen"},         {"oem-2", "MS_VM_CERT/SHA1/"
                                       "bdbeb6e0a816d43fa6d3fe8aaef04c2b"
                                       "ad9d3e3d"},
};

static bool bios_generic(const xcp_value *bios)
{
    size_t i;
    const xcp_value *v;

    if (bios->u.st.n != XE_ARRAY_LEN(generic_bios))
        return false;
    for (i = 0; i < XE_ARRAY_LEN(generic_bios); i++) {
        v = xcp_value_struct_get(bios, generic_bios[i][0]);
        if (v == NULL || v->kind != XCP_VAL_STRING
            || strcmp(v->u.s, generic_bios[i][1]) != 0)
            return false;
    }
    return true;
}

static int bios_op(xe_ctx *ctx, const xe_obj *vm, const void *data,
                   const char **out)
{
    const xcp_value *bios = xe_rec_field(vm->rec, "bios_strings");

    (void)data;
    *out = NULL;
    if (bios == NULL || bios->kind != XCP_VAL_STRUCT || bios->u.st.n == 0)
        xe_print_msg(ctx, "The BIOS strings of this VM have not yet been "
                          "set.");
    else if (bios_generic(bios))
        xe_print_msg(ctx, "This VM is BIOS-generic.");
    else
        xe_print_msg(ctx, "This VM is BIOS-customized.");
    return 0;
}

int xe_vm_is_bios_customized(xe_ctx *ctx)
{
    static const char *const own[] = {NULL};

    return xe_vm_do(ctx, own, bios_op, NULL);
}
