/*
 * xe: host commands over the calls libxcp implements, as XAPI's
 * cli_operations.ml: host-enable/-disable and the memory queries on the
 * hosts the <host-selectors> choose (select_hosts/do_host_op: the "host"
 * pseudo-field matches uuid, hostname or name-label), host-forget,
 * host-set-hostname-live, host-get-vms-which-prevent-evacuation,
 * host-shutdown, host-reboot, host-evacuate,
 * host-cpu-info and diagnostic-vdi-status.
 */
#include "cmds.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* select_hosts: own lists the command's parameters (not filters). */
static int select_hosts(xe_ctx *ctx, const char *const *own, xe_obj **objs,
                        size_t *n)
{
    const char *host = xe_param(ctx, "host");
    size_t i, j, kept = 0;
    bool skip;

    if (xe_objs_all(ctx, xe_class_find("host"), objs, n) < 0)
        return -1;
    for (i = 0; host != NULL && i < *n; i++)
        if (xe_streq(xe_rec_str((*objs)[i].rec, "uuid"), host)
            || xe_streq(xe_rec_str((*objs)[i].rec, "hostname"), host)
            || xe_streq(xe_rec_str((*objs)[i].rec, "name_label"), host))
            (*objs)[kept++] = (*objs)[i];
    if (host != NULL)
        *n = kept;
    for (i = 0; i < ctx->params.n; i++) {
        const char *k = ctx->params.v[i].key, *colon = strchr(k, ':');
        const char *stem = colon ? xe_strndup(&ctx->arena, k,
                                              (size_t)(colon - k))
                                 : k;

        skip = strcmp(k, "host") == 0 || xe_is_stdparam(stem);
        for (j = 0; own[j] != NULL && !skip; j++)
            skip = strcmp(own[j], stem) == 0;
        if (!skip && xe_filter(ctx, *objs, n, k, ctx->params.v[i].val) < 0)
            return -1;
    }
    return 0;
}

/* do_host_op; multiple false: one host only. */
static int do_host_op(xe_ctx *ctx, const char *const *own, bool multiple,
                      xe_vm_op op, const void *data)
{
    xe_obj *hosts;
    const char *r;
    size_t n;
    bool m;

    if (select_hosts(ctx, own, &hosts, &n) < 0)
        return -1;
    if (n == 0)
        return xe_fail(ctx, "No matching hosts found");
    if (n == 1)
        return op(ctx, &hosts[0], data, &r);
    if (xe_param_bool(ctx, "multiple", false, &m) < 0)
        return -1;
    if (multiple && m)
        return xe_do_multiple(ctx, hosts, n, op, data);
    if (!multiple)
        return xe_fail(ctx, "Multiple matching hosts found. Operation can "
                            "only be performed on one host at a time");
    return xe_fail(ctx, "Multiple matching hosts found. --multiple required "
                        "to complete the operation");
}

int xe_do_host_op(xe_ctx *ctx, const char *const *own, bool multiple,
                  xe_vm_op op, const void *data)
{
    return do_host_op(ctx, own, multiple, op, data);
}

static int enable_op(xe_ctx *ctx, const xe_obj *h, const void *data,
                     const char **out)
{
    xe_args a;

    (void)data;
    *out = NULL;
    xe_args_init(&a);
    xe_args_str(&a, h->ref);
    xe_args_str(&a, "MAINTENANCE_MODE");
    if (xe_call(ctx, NULL, "host.remove_from_other_config", &a) < 0)
        return -1;
    return xe_call1(ctx, "host.enable", h->ref);
}

int xe_host_enable(xe_ctx *ctx)
{
    static const char *const own[] = {NULL};

    return do_host_op(ctx, own, true, enable_op, NULL);
}

static int disable_op(xe_ctx *ctx, const xe_obj *h, const void *data,
                      const char **out)
{
    xe_args a;

    *out = NULL;
    xe_args_init(&a);
    xe_args_str(&a, h->ref);
    xe_args_bool(&a, *(const bool *)data);
    return xe_call(ctx, NULL, "host.disable", &a);
}

int xe_host_disable(xe_ctx *ctx)
{
    static const char *const own[] = {"auto-enable", NULL};
    bool auto_enable;

    if (xe_param_bool(ctx, "auto-enable", true, &auto_enable) < 0)
        return -1;
    return do_host_op(ctx, own, true, disable_op, &auto_enable);
}

/* host.shutdown / host.reboot of one selected host, printing nothing
 * (XAPI's host_shutdown / host_reboot). */
static int power_op(xe_ctx *ctx, const xe_obj *h, const void *data,
                    const char **out)
{
    *out = NULL;
    return xe_call1(ctx, data, h->ref);
}

int xe_host_shutdown(xe_ctx *ctx)
{
    static const char *const own[] = {NULL};

    return do_host_op(ctx, own, true, power_op, "host.shutdown");
}

int xe_host_reboot(xe_ctx *ctx)
{
    static const char *const own[] = {NULL};

    return do_host_op(ctx, own, true, power_op, "host.reboot");
}

/* A call host.<msg>(host) whose int answer is printed (PMsg). */
static int int_op(xe_ctx *ctx, const xe_obj *h, const void *data,
                  const char **out)
{
    xcp_value v;
    xe_args a;

    *out = NULL;
    xe_args_init(&a);
    xe_args_str(&a, h->ref);
    if (xe_call(ctx, &v, data, &a) < 0)
        return -1;
    if (v.kind != XCP_VAL_INT) {
        xcp_value_dispose(&v);
        return xe_fail(ctx, "%s did not return an integer", (const char *)data);
    }
    xe_print_msg(ctx, xe_sprintf(&ctx->arena, "%" PRId64, v.u.i));
    return 0;
}

int xe_host_compute_free_memory(xe_ctx *ctx)
{
    static const char *const own[] = {NULL};

    return do_host_op(ctx, own, false, int_op, "host.compute_free_memory");
}

int xe_host_compute_memory_overhead(xe_ctx *ctx)
{
    static const char *const own[] = {NULL};

    return do_host_op(ctx, own, false, int_op,
                      "host.compute_memory_overhead");
}

int xe_host_set_hostname_live(xe_ctx *ctx)
{
    const char *host;
    xe_args a;

    if (xe_get_by_uuid(ctx, "host", xe_param(ctx, "host-uuid"), &host) < 0)
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, host);
    xe_args_str(&a, xe_param(ctx, "host-name"));
    return xe_call(ctx, NULL, "host.set_hostname_live", &a);
}

/* host_careful_op: the warnings, then "yes" unless --force. */
int xe_host_forget(xe_ctx *ctx)
{
    static const char *const warn =
        "WARNING: A host should only be forgotten if it is physically "
        "unrecoverable;\n"
        "WARNING: if possible, Hosts should be 'ejected' from the Pool "
        "instead.\n"
        "WARNING: Once a host has been forgotten it will have to be "
        "re-installed.\n"
        "WARNING: This operation is irreversible.";
    const char *host;
    bool force;
    int yes;

    if (xe_get_by_uuid(ctx, "host", xe_param(ctx, "uuid"), &host) < 0
        || xe_param_bool(ctx, "force", false, &force) < 0)
        return -1;
    if (!force) {
        xe_print_direct(ctx, warn);
        if ((yes = xe_user_says_yes(ctx)) <= 0)
            return yes;
    }
    return xe_call1(ctx, "host.destroy", host);
}

int xe_host_get_vms_which_prevent_evacuation(xe_ctx *ctx)
{
    static const char *const def[] = {"uuid", "name-label", "reason", NULL};
    const char *host, *p = xe_param(ctx, "params");
    const xe_class *cc = xe_class_find("vm");
    xe_strv fields;
    xcp_value v;
    size_t i, j, k;

    if (xe_get_by_uuid(ctx, "host", xe_param(ctx, "uuid"), &host) < 0
        || xe_get_value(ctx, "host.get_vms_which_prevent_evacuation", host,
                        &v) < 0)
        return -1;
    xe_strv_init(&fields, &ctx->arena);
    if (p != NULL)
        xe_split(&fields, p, ',');
    else
        for (i = 0; def[i] != NULL; i++)
            xe_strv_add(&fields, def[i]);
    for (i = 0; v.kind == XCP_VAL_STRUCT && i < v.u.st.n; i++) {
        xe_obj vm = {cc, xe_class_id("VM"), v.u.st.keys[i], NULL};
        const xcp_value *errs = &v.u.st.vals[i];
        xe_strv reason;
        xe_table_rec rec;
        const char *text;
        bool all = p != NULL && strcmp(p, "all") == 0;

        vm.rec = xe_record(ctx, vm.cls, vm.ref);
        if (vm.rec == NULL)
            continue;
        xe_strv_init(&reason, &ctx->arena);
        for (j = 0; errs->kind == XCP_VAL_ARRAY && j < errs->u.arr.n; j++)
            xe_strv_add(&reason, errs->u.arr.items[j].u.s);
        rec.n = 0;
        rec.rows = xe_alloc(&ctx->arena, (cc->nfields + 2) * sizeof(xe_row));
        for (k = 0; k < cc->nfields; k++) {
            const xe_field *f = &cc->fields[k];

            if ((f->flags & XE_F_HIDDEN)
                || (!all && !xe_strv_has(&fields, f->name)))
                continue;
            if (xe_field_text(ctx, &vm, f, &text) < 0) {
                xcp_value_dispose(&v);
                return -1;
            }
            rec.rows[rec.n++] = (xe_row){xe_field_label(ctx, f), text};
        }
        if (all || xe_strv_has(&fields, "reason"))
            rec.rows[rec.n++] = (xe_row){"reason ( RO)",
                                         xe_strv_join(&reason, ",")};
        xe_print_table(ctx, &rec, 1);
    }
    xcp_value_dispose(&v);
    return 0;
}

/* The host of the session (get_host_from_session). */
static int session_host(xe_ctx *ctx, const char **host)
{
    xe_obj *hosts;
    size_t n;

    /* A local engine or a daemon of one host: its only host. */
    if (xe_objs_all(ctx, xe_class_find("host"), &hosts, &n) < 0)
        return -1;
    if (n != 1)
        return xe_fail(ctx, "Required parameter not found: uuid");
    *host = hosts[0].ref;
    return 0;
}

int xe_host_cpu_info(xe_ctx *ctx)
{
    const char *uuid = xe_param(ctx, "uuid"), *host;
    xcp_value v;
    xe_table_rec rec;
    size_t i;

    if ((uuid != NULL ? xe_get_by_uuid(ctx, "host", uuid, &host)
                      : session_host(ctx, &host)) < 0
        || xe_get_value(ctx, "host.get_cpu_info", host, &v) < 0)
        return -1;
    rec.n = 0;
    rec.rows = xe_alloc(&ctx->arena,
                        (v.kind == XCP_VAL_STRUCT ? v.u.st.n : 0) * sizeof(xe_row)
                            + 1);
    for (i = 0; v.kind == XCP_VAL_STRUCT && i < v.u.st.n; i++)
        rec.rows[rec.n++] = (xe_row){
            xe_strdup(&ctx->arena, v.u.st.keys[i]),
            xe_strdup(&ctx->arena, v.u.st.vals[i].kind == XCP_VAL_STRING
                                       ? v.u.st.vals[i].u.s
                                       : "")};
    xcp_value_dispose(&v);
    xe_print_table(ctx, &rec, 1);
    return 0;
}

/* One object's named fields as a record (the fields it has). */
static int print_some(xe_ctx *ctx, const xe_obj *o,
                      const char *const *names)
{
    xe_strv sv;
    size_t i;

    xe_strv_init(&sv, &ctx->arena);
    for (i = 0; names[i] != NULL; i++)
        xe_strv_add(&sv, names[i]);
    return xe_print_objs(ctx, o, 1, &sv, true);
}

int xe_diagnostic_vdi_status(xe_ctx *ctx)
{
    static const char *const vdi_f[] = {"uuid", "name-label", "sr-uuid",
                                        "mode", "read-only", "sharable",
                                        "storage-lock", NULL};
    static const char *const vbd_f[] = {"uuid", "userdevice", "device",
                                        "empty", "mode", "type",
                                        "storage-lock", NULL};
    xe_obj vdi = {xe_class_find("vdi"), xe_class_id("VDI"), NULL, NULL};
    const xcp_value *vbds;
    xe_obj *act, *inact;
    size_t i, na = 0, ni = 0, n;

    if (xe_get_by_uuid(ctx, "VDI", xe_param(ctx, "uuid"), &vdi.ref) < 0)
        return -1;
    if ((vdi.rec = xe_record(ctx, vdi.cls, vdi.ref)) == NULL)
        return xe_fail_lib(ctx);
    if (print_some(ctx, &vdi, vdi_f) < 0)
        return -1;
    vbds = xe_rec_field(vdi.rec, "VBDs");
    n = vbds && vbds->kind == XCP_VAL_ARRAY ? vbds->u.arr.n : 0;
    act = xe_alloc(&ctx->arena, (n + 1) * sizeof(*act));
    inact = xe_alloc(&ctx->arena, (n + 1) * sizeof(*inact));
    for (i = 0; i < n; i++) {
        xe_obj o = {xe_class_find("vbd"), xe_class_id("VBD"),
                    vbds->u.arr.items[i].u.s, NULL};

        if ((o.rec = xe_record(ctx, o.cls, o.ref)) == NULL)
            continue;
        if (xe_rec_bool(o.rec, "currently_attached"))
            act[na++] = o;
        else
            inact[ni++] = o;
    }
    xe_print_line(ctx, na == 0 ? "no active VBDs." : "active VBDs:");
    for (i = 0; i < na; i++)
        if (print_some(ctx, &act[i], vbd_f) < 0)
            return -1;
    if (ni > 0)
        xe_print_line(ctx, "inactive VBDs:");
    for (i = 0; i < ni; i++)
        if (print_some(ctx, &inact[i], vbd_f) < 0)
            return -1;
    return 0;
}

int xe_host_do_one(xe_ctx *ctx, const char *const *own, xe_vm_op op,
                   const void *data)
{
    return do_host_op(ctx, own, false, op, data);
}

struct evacuate_args {
    const char *network; /* ref, or the null ref */
    int64_t batch;
};

static int evacuate_op(xe_ctx *ctx, const xe_obj *h, const void *data,
                       const char **out)
{
    const struct evacuate_args *e = data;
    xe_args a;

    *out = NULL;
    xe_args_init(&a);
    xe_args_str(&a, h->ref);
    xe_args_str(&a, e->network);
    xe_args_int(&a, e->batch);
    return xe_call(ctx, NULL, "host.evacuate", &a);
}

/* host.evacuate of one selected host (XAPI's host_evacuate): network-uuid
 * names the migration network, batch-size how many VMs move at once (0,
 * the default: the server's). Prints nothing. */
int xe_host_evacuate(xe_ctx *ctx)
{
    static const char *const own[] = {"network-uuid", "batch-size", NULL};
    struct evacuate_args e = {"OpaqueRef:NULL", 0};
    const char *net = xe_param(ctx, "network-uuid");
    const char *bs = xe_param(ctx, "batch-size");
    char *end;

    if (net && xe_get_by_uuid(ctx, "network", net, &e.network) < 0)
        return -1;
    if (bs) {
        errno = 0;
        e.batch = strtoll(bs, &end, 10);
        if (errno || !*bs || *end)
            return xe_fail(ctx, "batch-size: \"%s\" is not an integer", bs);
    }
    return do_host_op(ctx, own, false, evacuate_op, &e);
}
