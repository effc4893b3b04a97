/*
 * xe: the data-source commands, as XAPI's cli_operations.ml: host- and
 * vm-data-source-list (a table of data_source_to_kvs: name_label,
 * name_description, enabled, standard, min, max, units, the floats as
 * OCaml's string_of_float), -query (the value as Printf "%f"), -record
 * and -forget, on one host of the <host-selectors> or one VM of the
 * <vm-selectors> (control domains included).
 */
#include "cmds.h"

#include <stdio.h>
#include <string.h>

/* OCaml's string_of_float: "%.12g", with a "." when that looks like an
 * integer ("0.", "1.", "1e+20" stays). */
static const char *ocaml_float(xe_ctx *ctx, double f)
{
    char b[48];

    snprintf(b, sizeof(b), "%.12g", f);
    if (strpbrk(b, ".eEni") == NULL)
        strcat(b, ".");
    return xe_strdup(&ctx->arena, b);
}

static const char *field_text(xe_ctx *ctx, const xcp_value *rec,
                              const char *name)
{
    int i = xcp_class_field_index(rec->u.rec.cls, name);
    const xcp_value *v;

    if (i < 0)
        return "";
    v = &rec->u.rec.fields[i];
    switch (v->kind) {
    case XCP_VAL_STRING:
        return xe_strdup(&ctx->arena, v->u.s);
    case XCP_VAL_BOOL:
        return v->u.b ? "true" : "false";
    case XCP_VAL_FLOAT:
        return ocaml_float(ctx, v->u.f);
    default:
        return "";
    }
}

static int list_op(xe_ctx *ctx, const xe_obj *o, const void *data,
                   const char **out)
{
    static const char *const keys[] = {"name_label", "name_description",
                                       "enabled",    "standard",
                                       "min",        "max",
                                       "units"};
    xe_table_rec *recs;
    xcp_value v;
    size_t i, k, n;

    *out = NULL;
    if (xe_get_value(ctx, data, o->ref, &v) < 0)
        return -1;
    n = v.kind == XCP_VAL_ARRAY ? v.u.arr.n : 0;
    recs = xe_alloc(&ctx->arena, (n + 1) * sizeof(*recs));
    for (i = 0; i < n; i++) {
        const xcp_value *r = &v.u.arr.items[i];

        recs[i].n = 0;
        recs[i].rows = xe_alloc(&ctx->arena, 7 * sizeof(xe_row));
        if (r->kind != XCP_VAL_RECORD)
            continue;
        for (k = 0; k < 7; k++)
            recs[i].rows[recs[i].n++] =
                (xe_row){keys[k], field_text(ctx, r, keys[k])};
    }
    xcp_value_dispose(&v);
    xe_print_table(ctx, recs, n);
    return 0;
}

/* method(self, data-source), whose float answer is printed when query. */
typedef struct ds_call {
    const char *method;
    bool query;
} ds_call;

static int ds_op(xe_ctx *ctx, const xe_obj *o, const void *data,
                 const char **out)
{
    const ds_call *dc = data;
    xcp_value v;
    xe_args a;

    *out = NULL;
    xe_args_init(&a);
    xe_args_str(&a, o->ref);
    xe_args_str(&a, xe_param(ctx, "data-source"));
    if (xe_call(ctx, dc->query ? &v : NULL, dc->method, &a) < 0)
        return -1;
    if (dc->query) {
        double f = v.kind == XCP_VAL_FLOAT ? v.u.f
                   : v.kind == XCP_VAL_INT ? (double)v.u.i
                                           : 0.0;

        xcp_value_dispose(&v);
        xe_print_line(ctx, xe_sprintf(&ctx->arena, "%f", f));
    }
    return 0;
}

static const char *const own_ds[] = {"data-source", NULL};
static const char *const own_none[] = {NULL};

int xe_host_data_source_list(xe_ctx *ctx)
{
    return xe_host_do_one(ctx, own_none, list_op, "host.get_data_sources");
}

int xe_host_data_source_query(xe_ctx *ctx)
{
    static const ds_call c = {"host.query_data_source", true};

    return xe_host_do_one(ctx, own_ds, ds_op, &c);
}

int xe_host_data_source_record(xe_ctx *ctx)
{
    static const ds_call c = {"host.record_data_source", false};

    return xe_host_do_one(ctx, own_ds, ds_op, &c);
}

int xe_host_data_source_forget(xe_ctx *ctx)
{
    static const ds_call c = {"host.forget_data_source_archives", false};

    return xe_host_do_one(ctx, own_ds, ds_op, &c);
}

int xe_vm_data_source_list(xe_ctx *ctx)
{
    return xe_vm_do_one(ctx, own_none, list_op, "VM.get_data_sources");
}

int xe_vm_data_source_query(xe_ctx *ctx)
{
    static const ds_call c = {"VM.query_data_source", true};

    return xe_vm_do_one(ctx, own_ds, ds_op, &c);
}

int xe_vm_data_source_record(xe_ctx *ctx)
{
    static const ds_call c = {"VM.record_data_source", false};

    return xe_vm_do_one(ctx, own_ds, ds_op, &c);
}

int xe_vm_data_source_forget(xe_ctx *ctx)
{
    static const ds_call c = {"VM.forget_data_source_archives", false};

    return xe_vm_do_one(ctx, own_ds, ds_op, &c);
}
