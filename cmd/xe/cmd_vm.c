/*
 * xe: VM commands. VM selection by field filters (<vm-selectors>, the
 * "vm=" pseudo-field, --multiple) as in XAPI's select_vms/do_vm_op, the
 * lifecycle commands, clone/copy/snapshot/checkpoint, snapshot-*, install
 * (clone or copy of a template + provision) and uninstall with its
 * confirmation prompt.
 */
#include "fields.h"
#include "cmds.h"

#include <inttypes.h>
#include <string.h>
#include <time.h>

/* How a command selects its VMs (XAPI do_vm_op optional arguments). */
typedef struct vm_sel {
    bool control;              /* include control domains */
    bool templates;            /* include templates */
    bool single;               /* ~multiple:false */
    const char *const *ignore; /* command parameters, not filters */
} vm_sel;

/* The per-VM operation (fields.h). */
typedef xe_vm_op vm_op;

static const char *const no_ignore[] = {NULL};
static const char *const progress_ignore[] = {"progress", NULL};

static const char *or_empty(const char *s)
{
    return s != NULL ? s : "";
}

static bool in_list(const char *const *l, const char *s)
{
    size_t i;

    for (i = 0; l[i] != NULL; i++)
        if (strcmp(l[i], s) == 0)
            return true;
    return false;
}

static bool selector_param(const vm_sel *sel, const char *key, xe_arena *a)
{
    const char *colon = strchr(key, ':');
    const char *stem = colon ? xe_strndup(a, key, (size_t)(colon - key))
                             : key;

    return !xe_is_stdparam(stem) && !in_list(sel->ignore, stem);
}

/*
 * The VMs the filters run over. With a uuid= filter that is just the VM
 * of that uuid (VM.get_by_uuid and its record; none when no VM has it)
 * rather than every VM's record: the filters then keep or drop it as they
 * would among all. A lifecycle command on one VM, the common case, thus
 * costs two small calls instead of the whole VM table (templates
 * included) through the daemon.
 */
static int candidates(xe_ctx *ctx, const vm_sel *sel, const xe_params *ps,
                      xe_obj **objs, size_t *n)
{
    const xe_class *cc = xe_class_find("vm");
    const char *uuid = NULL, *ref;
    const xcp_error *e;
    xe_args a;
    xcp_value v;
    size_t i;

    for (i = 0; uuid == NULL && i < ps->n; i++)
        if (strcmp(ps->v[i].key, "uuid") == 0
            && selector_param(sel, ps->v[i].key, &ctx->arena))
            uuid = ps->v[i].val;
    if (uuid == NULL)
        return xe_objs_all(ctx, cc, objs, n);
    *objs = xe_alloc(&ctx->arena, sizeof(xe_obj));
    *n = 0;
    xe_args_init(&a);
    xe_args_str(&a, uuid);
    if (xe_call_quiet(ctx, &v, "VM.get_by_uuid", &a) < 0) {
        e = xcp_error_last();
        if (e != NULL && xe_streq(e->name, "UUID_INVALID"))
            return 0; /* no VM has it: nothing matches */
        return xe_fail_lib(ctx);
    }
    ref = v.kind == XCP_VAL_STRING ? xe_strdup(&ctx->arena, v.u.s) : NULL;
    xcp_value_dispose(&v);
    if (ref == NULL)
        return xe_fail(ctx, "VM.get_by_uuid did not return a reference");
    (*objs)[0].cc = cc;
    (*objs)[0].cls = xcp_class_by_name(cc->api);
    (*objs)[0].ref = ref;
    /* NULL when it went between the two calls: then it matches nothing */
    (*objs)[0].rec = xe_record(ctx, (*objs)[0].cls, ref);
    *n = (*objs)[0].rec != NULL;
    return 0;
}

static int select_vms(xe_ctx *ctx, const vm_sel *sel, xe_obj **objs,
                      size_t *n)
{
    xe_params ps = {0, 0, NULL};
    const char *vm = NULL;
    size_t i, kept = 0;
    bool vm_seen = false;

    if (!sel->templates)
        xe_params_add(&ctx->arena, &ps, "is-a-template", "false");
    if (!sel->control)
        xe_params_add(&ctx->arena, &ps, "is-control-domain", "false");
    for (i = 0; i < ctx->params.n; i++) {
        if (!vm_seen && strcmp(ctx->params.v[i].key, "vm") == 0) {
            vm = ctx->params.v[i].val;
            vm_seen = true;
            continue;
        }
        xe_params_add(&ctx->arena, &ps, ctx->params.v[i].key,
                      ctx->params.v[i].val);
    }
    if (candidates(ctx, sel, &ps, objs, n) < 0)
        return -1;
    for (i = 0; vm != NULL && i < *n; i++)
        if (xe_streq(xe_rec_str((*objs)[i].rec, "uuid"), vm)
            || xe_streq(xe_rec_str((*objs)[i].rec, "name_label"), vm))
            (*objs)[kept++] = (*objs)[i];
    if (vm != NULL)
        *n = kept;
    for (i = 0; i < ps.n; i++)
        if (selector_param(sel, ps.v[i].key, &ctx->arena)
            && xe_filter(ctx, *objs, n, ps.v[i].key, ps.v[i].val) < 0)
            return -1;
    return 0;
}

static int64_t message_priority(xe_ctx *ctx)
{
    const char *p = xe_param(ctx, "message-priority");
    int64_t v;

    return p != NULL && xe_parse_int(p, &v) == 0 ? v : 5;
}

/* Messages raised for the VM during the operation (XAPI wrap_op). */
static void print_messages(xe_ctx *ctx, const xe_obj *vm, time_t since,
                           int64_t prio)
{
    xe_args a;
    xcp_value msgs, t;
    const xcp_value *m, *p, *ts;
    char when[32];
    size_t i;

    xcp_value_set_datetime(&t, (xcp_datetime)since);
    xe_args_init(&a);
    xe_args_str(&a, "VM");
    xe_args_str(&a, xe_obj_uuid(vm));
    xe_args_value(&a, &t);
    if (xe_call_quiet(ctx, &msgs, "message.get", &a) < 0)
        return;
    for (i = 0; msgs.kind == XCP_VAL_STRUCT && i < msgs.u.st.n; i++) {
        m = &msgs.u.st.vals[i];
        p = xcp_value_struct_get(m, "priority");
        ts = xcp_value_struct_get(m, "timestamp");
        if (p == NULL || p->kind != XCP_VAL_INT || p->u.i >= prio)
            continue;
        xcp_datetime_format(when, sizeof(when),
                            ts != NULL && ts->kind == XCP_VAL_DATETIME
                                ? ts->u.t : 0);
        xe_print_stderr(ctx, xe_sprintf(&ctx->arena,
                                        "Message: time=%s priority=%" PRId64
                                        " name='%s'\n",
                                        when, p->u.i,
                                        or_empty(xe_rec_str(m, "name"))));
    }
    xcp_value_dispose(&msgs);
}

static int wrapped(xe_ctx *ctx, const xe_obj *vm, vm_op op,
                   const void *data, const char **out)
{
    time_t now = time(NULL);

    *out = NULL;
    if (op(ctx, vm, data, out) < 0)
        return -1;
    print_messages(ctx, vm, now, message_priority(ctx));
    return 0;
}

/* The text do_multiple records for a failed VM. */
static const char *failure_text(xe_ctx *ctx)
{
    const xe_err *e = &ctx->err;
    const char *desc;
    xe_buf b;
    size_t i;

    if (e->kind == XE_E_API) {
        desc = xcp_error_description(e->name);
        if (desc != NULL && *desc != '\0') {
            if (e->nparams == 0)
                return xe_sprintf(&ctx->arena, "%s\n", desc);
            return xe_api_error_text(ctx, e->name, e->nparams, e->params);
        }
        xe_buf_init(&b, &ctx->arena);
        xe_buf_printf(&b, "%s: [ ", e->name);
        for (i = 0; i < e->nparams; i++)
            xe_buf_printf(&b, "%s%s", i > 0 ? "; " : "", e->params[i]);
        xe_buf_add(&b, " ]");
        return xe_buf_str(&b);
    }
    return xe_sprintf(&ctx->arena,
                      "INTERNAL_ERROR: [ Cli_util.Cli_failure(\"%s\") ]",
                      e->text != NULL ? e->text : "");
}

/* do_multiple; VM operations (msgs) print the VMs' new messages. */
static int multiple_aux(xe_ctx *ctx, const xe_obj *vms, size_t n, vm_op op,
                        const void *data, xe_strv *results, bool msgs)
{
    xe_failure *fails = xe_alloc(&ctx->arena, (n + 1) * sizeof(*fails));
    size_t i, nfail = 0;
    const char *r;
    xe_strv ok;

    xe_strv_init(&ok, &ctx->arena);
    for (i = 0; i < n; i++) {
        r = NULL;
        if ((msgs ? wrapped(ctx, &vms[i], op, data, &r)
                  : op(ctx, &vms[i], data, &r)) == 0) {
            xe_strv_add(&ok, r != NULL ? r : "");
            continue;
        }
        /* XAPI prepends: the last failure is printed first */
        memmove(fails + 1, fails, nfail * sizeof(*fails));
        fails[0].uuid = xe_obj_uuid(&vms[i]);
        fails[0].msg = failure_text(ctx);
        nfail++;
        memset(&ctx->err, 0, sizeof(ctx->err));
    }
    for (i = ok.n; i > 0; i--)
        xe_strv_add(results, ok.v[i - 1]);
    if (nfail == 0)
        return 0;
    ctx->err.kind = XE_E_MULTI;
    ctx->err.fail = fails;
    ctx->err.nfail = nfail;
    return -1;
}

static int do_multiple(xe_ctx *ctx, const xe_obj *vms, size_t n, vm_op op,
                       const void *data, xe_strv *results)
{
    return multiple_aux(ctx, vms, n, op, data, results, true);
}

int xe_do_multiple(xe_ctx *ctx, const xe_obj *objs, size_t n, xe_vm_op op,
                   const void *data)
{
    xe_strv results;

    xe_strv_init(&results, &ctx->arena);
    return multiple_aux(ctx, objs, n, op, data, &results, false);
}

static int do_vm_op(xe_ctx *ctx, const vm_sel *sel, vm_op op,
                    const void *data, xe_strv *results)
{
    xe_obj *vms;
    size_t n;
    const char *r;
    bool multiple;

    if (select_vms(ctx, sel, &vms, &n) < 0)
        return -1;
    if (n == 0)
        return xe_fail(ctx, "No matching VMs found");
    if (n == 1) {
        if (wrapped(ctx, &vms[0], op, data, &r) < 0)
            return -1;
        xe_strv_add(results, r != NULL ? r : "");
        return 0;
    }
    if (!sel->single) {
        if (xe_param_bool(ctx, "multiple", false, &multiple) < 0)
            return -1;
        if (multiple)
            return do_multiple(ctx, vms, n, op, data, results);
        return xe_fail(ctx, "Multiple matches VMs found. --multiple "
                            "required to complete the operation");
    }
    return xe_fail(ctx, "Multiple matches VMs found. Operation can only be "
                        "performed on one VM at a time");
}

static int run_on_vms(xe_ctx *ctx, const vm_sel *sel, vm_op op,
                      const void *data)
{
    xe_strv results;

    xe_strv_init(&results, &ctx->arena);
    return do_vm_op(ctx, sel, op, data, &results);
}

int xe_vm_do(xe_ctx *ctx, const char *const *own, xe_vm_op op,
             const void *data)
{
    vm_sel sel = {.ignore = own};

    return run_on_vms(ctx, &sel, op, data);
}

int xe_vm_do_one(xe_ctx *ctx, const char *const *own, xe_vm_op op,
                 const void *data)
{
    vm_sel sel = {.control = true, .single = true, .ignore = own};

    return run_on_vms(ctx, &sel, op, data);
}

int xe_vm_do_single(xe_ctx *ctx, const char *const *own, xe_vm_op op,
                    const void *data)
{
    vm_sel sel = {.templates = true, .single = true, .ignore = own};

    return run_on_vms(ctx, &sel, op, data);
}

/* ---- lifecycle ---- */

/* get_host_by_name_or_id: the first host with that name-label or uuid */
static int host_by_name_or_id(xe_ctx *ctx, const char *name,
                              const char **ref)
{
    xe_obj *hosts;
    size_t n, i;

    if (xe_objs_all(ctx, xe_class_find("host"), &hosts, &n) < 0)
        return -1;
    for (i = 0; i < n; i++) {
        if (xe_streq(xe_rec_str(hosts[i].rec, "name_label"), name)
            || xe_streq(xe_rec_str(hosts[i].rec, "uuid"), name)) {
            *ref = hosts[i].ref;
            return 0;
        }
    }
    return xe_fail(ctx, "Host %s not found", name);
}

/* vm-start and vm-resume: <msg>(vm, paused, force), or <msg>_on with the
 * host named by on= */
typedef struct start_args {
    const char *msg;
    bool force, paused;
    const char *on;
} start_args;

static int op_start(xe_ctx *ctx, const xe_obj *vm, const void *data,
                    const char **out)
{
    const start_args *sa = data;
    const char *host = NULL;
    xe_args a;

    (void)out;
    if (sa->on != NULL && host_by_name_or_id(ctx, sa->on, &host) < 0)
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, vm->ref);
    if (host != NULL)
        xe_args_str(&a, host);
    xe_args_bool(&a, sa->paused);
    xe_args_bool(&a, sa->force);
    return xe_call_async(ctx, NULL,
                         host != NULL ? xe_sprintf(&ctx->arena, "%s_on",
                                                   sa->msg)
                                      : sa->msg,
                         &a);
}

int xe_vm_start(xe_ctx *ctx)
{
    static const char *const ignore[] = {"on", "paused", "progress", NULL};
    vm_sel sel = {.control = true, .ignore = ignore};
    start_args sa = {.msg = "VM.start", .on = xe_param(ctx, "on")};

    if (xe_param_bool(ctx, "force", false, &sa.force) < 0
        || xe_param_bool(ctx, "paused", false, &sa.paused) < 0)
        return -1;
    return run_on_vms(ctx, &sel, op_start, &sa);
}

int xe_vm_resume(xe_ctx *ctx)
{
    static const char *const ignore[] = {"on", "progress", NULL};
    vm_sel sel = {.ignore = ignore};
    start_args sa = {.msg = "VM.resume", .on = xe_param(ctx, "on")};

    if (xe_param_bool(ctx, "force", false, &sa.force) < 0)
        return -1;
    return run_on_vms(ctx, &sel, op_start, &sa);
}

/* Operations that are one call on the VM; data is the method name. */
static int op_sync(xe_ctx *ctx, const xe_obj *vm, const void *data,
                   const char **out)
{
    (void)out;
    return xe_call1(ctx, data, vm->ref);
}

static int op_async(xe_ctx *ctx, const xe_obj *vm, const void *data,
                    const char **out)
{
    xe_args a;

    (void)out;
    xe_args_init(&a);
    xe_args_str(&a, vm->ref);
    return xe_call_async(ctx, NULL, data, &a);
}

/* vm-shutdown, vm-reboot: the hard message with force=true, else the
 * clean one. */
static int run_forced(xe_ctx *ctx, const vm_sel *sel, vm_op op,
                      const char *hard, const char *clean)
{
    bool force;

    if (xe_param_bool(ctx, "force", false, &force) < 0)
        return -1;
    return run_on_vms(ctx, sel, op, force ? hard : clean);
}

int xe_vm_shutdown(xe_ctx *ctx)
{
    vm_sel sel = {.ignore = progress_ignore};

    return run_forced(ctx, &sel, op_async, "VM.hard_shutdown",
                      "VM.clean_shutdown");
}

int xe_vm_reboot(xe_ctx *ctx)
{
    vm_sel sel = {.ignore = no_ignore};

    return run_forced(ctx, &sel, op_sync, "VM.hard_reboot", "VM.clean_reboot");
}

int xe_vm_suspend(xe_ctx *ctx)
{
    vm_sel sel = {.ignore = progress_ignore};

    return run_on_vms(ctx, &sel, op_async, "VM.suspend");
}

int xe_vm_pause(xe_ctx *ctx)
{
    vm_sel sel = {.ignore = no_ignore};

    return run_on_vms(ctx, &sel, op_sync, "VM.pause");
}

int xe_vm_unpause(xe_ctx *ctx)
{
    vm_sel sel = {.ignore = no_ignore};

    return run_on_vms(ctx, &sel, op_sync, "VM.unpause");
}

static int fail_without_force(xe_ctx *ctx)
{
    bool force;

    if (xe_param_bool(ctx, "force", false, &force) < 0)
        return -1;
    if (!force)
        return xe_fail(ctx, "This operation is dangerous and may cause data "
                            "loss. This operation must be forced (use "
                            "--force).");
    return 0;
}

int xe_vm_reset_powerstate(xe_ctx *ctx)
{
    vm_sel sel = {.ignore = no_ignore};

    if (fail_without_force(ctx) < 0)
        return -1;
    return run_on_vms(ctx, &sel, op_sync, "VM.power_state_reset");
}

/* ---- migration ---- */

typedef struct migrate_args {
    const char *host;
    xcp_value options; /* copied for each VM */
} migrate_args;

static int op_migrate(xe_ctx *ctx, const xe_obj *vm, const void *data,
                      const char **out)
{
    const migrate_args *ma = data;
    xcp_value opts;
    xe_args a;

    (void)out;
    if (xcp_value_copy(&opts, &ma->options) < 0)
        return xe_fail(ctx, "out of memory");
    xe_args_init(&a);
    xe_args_str(&a, vm->ref);
    xe_args_str(&a, ma->host);
    xe_args_value(&a, &opts);
    return xe_call_async(ctx, NULL, "VM.pool_migrate", &a);
}

/* XAPI's vm-migrate within the pool (VM.pool_migrate, which the
 * coordinator runs on the VM's host: to another host of the pool a live
 * migration there, to its own host a localhost migration). The cross-pool
 * form (remote-master, vif:, vdi: ...) is not supported. */
int xe_vm_migrate(xe_ctx *ctx)
{
    static const char *const ignore[] = {"host", "host-uuid", "host-name",
                                         "live", "compress", "force",
                                         "copy", NULL};
    static const char *const flags[] = {"force", "live", "copy"};
    vm_sel sel = {.control = true, .ignore = ignore};
    migrate_args ma = {NULL, {0}};
    const char *name = xe_param(ctx, "host");
    size_t i;
    int rc;

    for (i = 0; i < ctx->params.n; i++) {
        const char *k = ctx->params.v[i].key;
        if (xe_prefix(k, "remote-") || xe_prefix(k, "vif:") ||
            xe_prefix(k, "vdi:") || xe_prefix(k, "image-format:"))
            return xe_fail(ctx, "Cross-pool migration is not supported: "
                                "VMs migrate within their pool");
    }
    if (name == NULL)
        name = xe_param(ctx, "host-uuid");
    if (name == NULL)
        name = xe_param(ctx, "host-name");
    if (name == NULL)
        return xe_fail(ctx, "No destination host specified");
    if (host_by_name_or_id(ctx, name, &ma.host) < 0)
        return -1;
    xcp_value_set_struct(&ma.options);
    for (i = 0; i < XE_ARRAY_LEN(flags); i++) {
        xcp_value v;
        bool b;
        if (xe_param_bool(ctx, flags[i], false, &b) < 0 ||
            xcp_value_set_string(&v, b ? "true" : "false") < 0 ||
            xcp_value_struct_add(&ma.options, flags[i], &v) < 0) {
            xcp_value_dispose(&ma.options);
            return -1;
        }
    }
    if (xe_param(ctx, "compress") != NULL) {
        xcp_value v;
        xcp_value_set_string(&v, xe_param(ctx, "compress"));
        xcp_value_struct_add(&ma.options, "compress", &v);
    }
    rc = run_on_vms(ctx, &sel, op_migrate, &ma);
    xcp_value_dispose(&ma.options);
    return rc;
}

/* ---- memory and vCPUs ---- */

/* A message taking the VM and up to four integers. */
typedef struct int_call {
    const char *msg;
    size_t n;
    int64_t v[4];
} int_call;

static int op_set_ints(xe_ctx *ctx, const xe_obj *vm, const void *data,
                       const char **out)
{
    const int_call *d = data;
    xe_args a;
    size_t i;

    (void)out;
    xe_args_init(&a);
    xe_args_str(&a, vm->ref);
    for (i = 0; i < d->n; i++)
        xe_args_int(&a, d->v[i]);
    return xe_call(ctx, NULL, d->msg, &a);
}

/* Sizes (bytes_of_string, XAPI's suffixes) from the parameters keys, in
 * order, then msg on each selected VM; the keys are not VM filters. As
 * XAPI's memory commands, control domains are included, and templates
 * unless no_templates. */
static int memory_cmd(xe_ctx *ctx, const char *msg,
                      const char *const *keys, bool no_templates)
{
    vm_sel sel = {.control = true, .templates = !no_templates,
                  .ignore = keys};
    int_call d = {msg, 0, {0}};

    for (d.n = 0; keys[d.n] != NULL && d.n < XE_ARRAY_LEN(d.v); d.n++)
        if (xe_param_bytes(ctx, keys[d.n], &d.v[d.n]) < 0)
            return -1;
    return run_on_vms(ctx, &sel, op_set_ints, &d);
}

int xe_vm_memory_set(xe_ctx *ctx)
{
    static const char *const keys[] = {"memory", NULL};

    return memory_cmd(ctx, "VM.set_memory", keys, false);
}

int xe_vm_memory_dynamic_range_set(xe_ctx *ctx)
{
    static const char *const keys[] = {"min", "max", NULL};

    return memory_cmd(ctx, "VM.set_memory_dynamic_range", keys, false);
}

int xe_vm_memory_static_range_set(xe_ctx *ctx)
{
    static const char *const keys[] = {"min", "max", NULL};

    return memory_cmd(ctx, "VM.set_memory_static_range", keys, false);
}

int xe_vm_memory_limits_set(xe_ctx *ctx)
{
    static const char *const keys[] = {"static-min", "static-max",
                                       "dynamic-min", "dynamic-max", NULL};

    return memory_cmd(ctx, "VM.set_memory_limits", keys, false);
}

/* XAPI: the target is a dynamic range of one value; not on templates. */
int xe_vm_memory_target_set(xe_ctx *ctx)
{
    static const char *const keys[] = {"target", NULL};
    vm_sel sel = {.control = true, .ignore = keys};
    int_call d = {"VM.set_memory_dynamic_range", 2, {0}};

    if (xe_param_bytes(ctx, "target", &d.v[0]) < 0)
        return -1;
    d.v[1] = d.v[0];
    return run_on_vms(ctx, &sel, op_set_ints, &d);
}

static int op_overhead(xe_ctx *ctx, const xe_obj *vm, const void *data,
                       const char **out)
{
    xcp_value r;
    xe_args a;
    char buf[32];

    (void)data;
    (void)out;
    xe_args_init(&a);
    xe_args_str(&a, vm->ref);
    if (xe_call(ctx, &r, "VM.compute_memory_overhead", &a) < 0)
        return -1;
    snprintf(buf, sizeof(buf), "%" PRId64,
             r.kind == XCP_VAL_INT ? r.u.i : 0);
    xcp_value_dispose(&r);
    xe_print_msg(ctx, buf);
    return 0;
}

int xe_vm_compute_memory_overhead(xe_ctx *ctx)
{
    vm_sel sel = {.control = true, .ignore = no_ignore};

    return run_on_vms(ctx, &sel, op_overhead, NULL);
}

int xe_vm_vcpu_hotplug(xe_ctx *ctx)
{
    static const char *const ignore[] = {"new-vcpus", NULL};
    vm_sel sel = {.ignore = ignore};
    int_call d = {"VM.set_VCPUs_number_live", 1, {0}};

    if (xe_parse_int(xe_param(ctx, "new-vcpus"), &d.v[0]) < 0)
        return xe_fail(ctx, "Failed to parse parameter 'new-vcpus': "
                            "expecting an integer");
    return run_on_vms(ctx, &sel, op_set_ints, &d);
}

/* ---- clone, copy, snapshot, checkpoint ---- */

typedef struct clone_args {
    const char *msg;          /* VM.clone, VM.snapshot ... */
    const char *name;
    const char *sr;           /* VM.copy: target SR ref */
    xe_strv *ignore_vdis;     /* VM.snapshot */
} clone_args;

static int op_clone(xe_ctx *ctx, const xe_obj *vm, const void *data,
                    const char **out)
{
    const clone_args *ca = data;
    xe_args a;
    xcp_value set;
    size_t i;

    xe_args_init(&a);
    xe_args_str(&a, vm->ref);
    xe_args_str(&a, ca->name);
    if (ca->sr != NULL)
        xe_args_str(&a, ca->sr);
    if (ca->ignore_vdis != NULL) {
        xcp_value_set_array(&set, ca->ignore_vdis->n);
        for (i = 0; i < ca->ignore_vdis->n; i++)
            xcp_value_set_string(&set.u.arr.items[i],
                                 ca->ignore_vdis->v[i]);
        xe_args_value(&a, &set);
    }
    return xe_call_str(ctx, out, ca->msg, &a);
}

static int print_new_vms(xe_ctx *ctx, const xe_strv *vms)
{
    const char *desc = xe_param(ctx, "new-name-description");
    xe_strv uuids;
    const char *uuid;
    xe_args a;
    size_t i;

    if (desc != NULL && vms->n > 0) {
        xe_args_init(&a);
        xe_args_str(&a, vms->v[0]);
        xe_args_str(&a, desc);
        if (xe_call(ctx, NULL, "VM.set_name_description", &a) < 0)
            return -1;
    }
    xe_strv_init(&uuids, &ctx->arena);
    for (i = 0; i < vms->n; i++) {
        xe_args_init(&a);
        xe_args_str(&a, vms->v[i]);
        if (xe_call_str(ctx, &uuid, "VM.get_uuid", &a) < 0)
            return -1;
        xe_strv_add(&uuids, uuid);
    }
    xe_print_list(ctx, uuids.v, uuids.n);
    return 0;
}

static int clone_aux(xe_ctx *ctx, const vm_sel *sel, const clone_args *ca)
{
    xe_strv vms;

    xe_strv_init(&vms, &ctx->arena);
    if (do_vm_op(ctx, sel, op_clone, ca, &vms) < 0)
        return -1;
    return print_new_vms(ctx, &vms);
}

static const char *const clone_ignore[] = {
    "new-name-label", "new-name-description", "ignore-vdi-uuids", NULL};

int xe_vm_clone(xe_ctx *ctx)
{
    vm_sel sel = {.templates = true, .ignore = clone_ignore};
    clone_args ca = {"VM.clone", xe_param(ctx, "new-name-label"), NULL,
                     NULL};

    return clone_aux(ctx, &sel, &ca);
}

int xe_vm_snapshot_with_quiesce(xe_ctx *ctx)
{
    vm_sel sel = {.ignore = clone_ignore};
    clone_args ca = {"VM.snapshot_with_quiesce",
                     xe_param(ctx, "new-name-label"), NULL, NULL};

    return clone_aux(ctx, &sel, &ca);
}

int xe_vm_checkpoint(xe_ctx *ctx)
{
    vm_sel sel = {.ignore = clone_ignore};
    clone_args ca = {"VM.checkpoint", xe_param(ctx, "new-name-label"), NULL,
                     NULL};

    return clone_aux(ctx, &sel, &ca);
}

int xe_vm_snapshot(xe_ctx *ctx)
{
    vm_sel sel = {.ignore = clone_ignore};
    const char *ids = xe_param(ctx, "ignore-vdi-uuids"), *ref;
    xe_strv uuids, refs;
    clone_args ca = {"VM.snapshot", xe_param(ctx, "new-name-label"), NULL,
                     &refs};
    size_t i;

    xe_strv_init(&uuids, &ctx->arena);
    xe_strv_init(&refs, &ctx->arena);
    if (ids != NULL) {
        /* String.split_on_char: "" is one (empty) uuid */
        xe_split(&uuids, ids, ',');
        if (*ids == '\0')
            xe_strv_add(&uuids, "");
    }
    for (i = 0; i < uuids.n; i++) {
        if (xe_get_by_uuid(ctx, "VDI", uuids.v[i], &ref) < 0)
            return -1;
        xe_strv_add(&refs, ref);
    }
    return clone_aux(ctx, &sel, &ca);
}

static int sr_param(xe_ctx *ctx, const char **sr)
{
    const char *uuid = xe_param(ctx, "sr-uuid");

    *sr = XCP_NULL_REF;
    if (uuid == NULL)
        return 0;
    return xe_get_by_uuid(ctx, "SR", uuid, sr);
}

int xe_vm_copy(xe_ctx *ctx)
{
    static const char *const ignore[] = {
        "new-name-label", "sr-uuid", "new-name-description", NULL};
    vm_sel sel = {.templates = true, .single = true, .ignore = ignore};
    clone_args ca = {"VM.copy", xe_param(ctx, "new-name-label"), NULL,
                     NULL};

    if (sr_param(ctx, &ca.sr) < 0)
        return -1;
    return clone_aux(ctx, &sel, &ca);
}

/* ---- destroy, create ---- */

int xe_vm_destroy(xe_ctx *ctx)
{
    static const char *const why[] = {
        "You cannot destroy a control domain via the CLI"};
    const char *vm;
    bool dom0;

    if (xe_get_by_uuid(ctx, "VM", xe_param(ctx, "uuid"), &vm) < 0
        || xe_get_bool(ctx, "VM.get_is_control_domain", vm, &dom0) < 0)
        return -1;
    if (dom0)
        return xe_fail_api(ctx, "OPERATION_NOT_ALLOWED", 1, why);
    return xe_call1(ctx, "VM.destroy", vm);
}

int xe_vm_create(xe_ctx *ctx)
{
    const char *desc = xe_param(ctx, "name-description"), *ref, *uuid;
    int cls = xe_class_id("VM");
    int64_t mib = 1024 * 1024;
    static const char *const empty_str[] = {
        "PV_bootloader", "PV_kernel", "PV_ramdisk", "PV_args",
        "PV_bootloader_args", "PV_legacy_args", "HVM_boot_policy",
        "PCI_bus", "recommendations", "ha_restart_priority",
        "generation_id", "reference_label", "last_booted_record", NULL};
    static const char *const empty_map[] = {
        "blocked_operations", "VCPUs_params", "HVM_boot_params", "platform",
        "other_config", "xenstore_data", "NVRAM", "last_boot_CPU_flags",
        NULL};
    xcp_value st;
    xe_args a;
    size_t i;

    xcp_value_set_struct(&st);
    xe_struct_str(&st, cls, "name_label", xe_param(ctx, "name-label"));
    xe_struct_str(&st, cls, "name_description", desc != NULL ? desc : "");
    xe_struct_int(&st, cls, "user_version", 0);
    xe_struct_bool(&st, cls, "is_a_template", false);
    xe_struct_str(&st, cls, "affinity", XCP_NULL_REF);
    xe_struct_int(&st, cls, "memory_target", 256 * mib);
    xe_struct_int(&st, cls, "memory_static_max", 256 * mib);
    xe_struct_int(&st, cls, "memory_dynamic_max", 256 * mib);
    xe_struct_int(&st, cls, "memory_dynamic_min", 128 * mib);
    xe_struct_int(&st, cls, "memory_static_min", 128 * mib);
    xe_struct_int(&st, cls, "VCPUs_max", 1);
    xe_struct_int(&st, cls, "VCPUs_at_startup", 1);
    xe_struct_str(&st, cls, "actions_after_softreboot", "soft_reboot");
    xe_struct_str(&st, cls, "actions_after_shutdown", "destroy");
    xe_struct_str(&st, cls, "actions_after_reboot", "restart");
    xe_struct_str(&st, cls, "actions_after_crash", "destroy");
    xe_struct_float(&st, cls, "HVM_shadow_multiplier", 1.0);
    xe_struct_str(&st, cls, "domain_type", "unspecified");
    xe_struct_str(&st, cls, "power_state", "Halted");
    for (i = 0; empty_str[i] != NULL; i++)
        xe_struct_str(&st, cls, empty_str[i], "");
    for (i = 0; empty_map[i] != NULL; i++)
        xe_struct_empty_map(&st, cls, empty_map[i]);
    xe_struct_empty_set(&st, cls, "tags");
    xe_args_init(&a);
    xe_args_value(&a, &st);
    if (xe_call_str(ctx, &ref, "VM.create", &a) < 0
        || xe_get_str(ctx, "VM.get_uuid", ref, &uuid) < 0)
        return -1;
    xe_print_line(ctx, uuid);
    return 0;
}

/* ---- uninstall ---- */

/* One VM to uninstall: its owned VDIs and suspend image. */
typedef struct doomed {
    const char *vm;
    xe_strv vdis;
    const char *suspend;    /* NULL: none */
} doomed;

/* A VDI that exists (VDI.get_uuid works) */
static bool vdi_exists(xe_ctx *ctx, const char *vdi)
{
    return xe_try_str(ctx, "VDI.get_uuid", vdi) != NULL;
}

static const char *owned_vdi(xe_ctx *ctx, const char *vbd)
{
    xcp_value oc;
    const char *vdi;
    bool owner;

    if (xe_try_value(ctx, "VBD.get_other_config", vbd, &oc) < 0)
        return NULL;
    owner = xcp_value_struct_get(&oc, "owner") != NULL;
    xcp_value_dispose(&oc);
    vdi = xe_try_str(ctx, "VBD.get_VDI", vbd);
    if (vdi == NULL || !vdi_exists(ctx, vdi) || !owner)
        return NULL;
    return vdi;
}

static int vdi_line(xe_ctx *ctx, const char *vdi, xe_strv *lines)
{
    xcp_value r;
    const xcp_value *vbds;
    bool shared;

    if (xe_get_value(ctx, "VDI.get_record", vdi, &r) < 0)
        return -1;
    vbds = xcp_value_struct_get(&r, "VBDs");
    shared = vbds != NULL && vbds->kind == XCP_VAL_ARRAY && vbds->u.arr.n > 1;
    xe_strv_add(lines, xe_sprintf(&ctx->arena, "VDI: %s (%s) %s",
                                  or_empty(xe_rec_str(&r, "uuid")),
                                  or_empty(xe_rec_str(&r, "name_label")),
                                  shared ? " ** WARNING: disk is shared by "
                                           "other VMs"
                                         : ""));
    xcp_value_dispose(&r);
    return 0;
}

static const char *suspend_vdi(xe_ctx *ctx, const char *vm)
{
    const char *sus = xe_try_str(ctx, "VM.get_suspend_VDI", vm);

    if (sus == NULL || xcp_ref_is_null(sus) || !vdi_exists(ctx, sus))
        return NULL;
    return sus;
}

static int vm_line(xe_ctx *ctx, const char *vm, xe_strv *lines)
{
    xcp_value r;

    if (xe_get_value(ctx, "VM.get_record", vm, &r) < 0)
        return -1;
    xe_strv_add(lines, xe_sprintf(&ctx->arena, "VM : %s (%s)",
                                  or_empty(xe_rec_str(&r, "uuid")),
                                  or_empty(xe_rec_str(&r, "name_label"))));
    xcp_value_dispose(&r);
    return 0;
}

/* XAPI destroys only the VDIs whose VBD has other-config:owner. */
static int choose_objects(xe_ctx *ctx, const char *vm, doomed *d,
                          xe_strv *lines)
{
    xcp_value vbds;
    const char *vdi;
    size_t i;

    d->vm = vm;
    xe_strv_init(&d->vdis, &ctx->arena);
    if (xe_get_value(ctx, "VM.get_VBDs", vm, &vbds) < 0)
        return -1;
    for (i = 0; vbds.kind == XCP_VAL_ARRAY && i < vbds.u.arr.n; i++) {
        vdi = owned_vdi(ctx, vbds.u.arr.items[i].u.s);
        if (vdi != NULL)
            xe_strv_add(&d->vdis, vdi);
    }
    xcp_value_dispose(&vbds);
    d->suspend = suspend_vdi(ctx, vm);
    if (vm_line(ctx, vm, lines) < 0)
        return -1;
    for (i = 0; i < d->vdis.n; i++)
        if (vdi_line(ctx, d->vdis.v[i], lines) < 0)
            return -1;
    if (d->suspend != NULL && vdi_line(ctx, d->suspend, lines) < 0)
        return -1;
    return 0;
}

static int destroy_vm(xe_ctx *ctx, const doomed *d)
{
    const char *state;
    size_t j;

    if (xe_get_str(ctx, "VM.get_power_state", d->vm, &state) < 0)
        return -1;
    if (strcmp(state, "Halted") != 0
        && xe_call1(ctx, "VM.hard_shutdown", d->vm) < 0)
        return -1;
    if (xe_call1(ctx, "VM.destroy", d->vm) < 0)
        return -1;
    for (j = 0; j < d->vdis.n; j++)
        if (xe_call1(ctx, "VDI.destroy", d->vdis.v[j]) < 0)
            return -1;
    if (d->suspend != NULL)
        xe_try_value(ctx, "VDI.destroy", d->suspend, NULL);
    return 0;
}

/* xe_user_says_yes: a line from the user (xe_io_prompt; its end is the
 * thin client's lost connection). Returns 1 yes, 0 no, -1 EOF. */
int xe_user_says_yes(xe_ctx *ctx)
{
    const char *line;
    size_t len;
    const char *p, *e;

    xe_print_direct(ctx, "Type 'yes' to continue");
    if ((line = xe_io_prompt(ctx)) == NULL)
        return -1;
    len = strlen(line);
    for (p = line; *p == ' ' || *p == '\t' || *p == '\r'; p++)
        ;
    for (e = line + len; e > p && (e[-1] == ' ' || e[-1] == '\t'
                                   || e[-1] == '\r');
         e--)
        ;
    if (e - p == 3 && xe_strcaseeq(xe_strndup(&ctx->arena, p, 3), "yes"))
        return 1;
    xe_print_direct(ctx, xe_sprintf(&ctx->arena, "Aborted (you typed: '%s')",
                                    line));
    return 0;
}

static int uninstall_common(xe_ctx *ctx, const xe_strv *vms)
{
    doomed *d = xe_alloc(&ctx->arena, (vms->n + 1) * sizeof(*d));
    xe_strv lines;
    size_t i;
    bool force;
    int yes = 1;

    xe_strv_init(&lines, &ctx->arena);
    for (i = 0; i < vms->n; i++)
        if (choose_objects(ctx, vms->v[i], &d[i], &lines) < 0)
            return -1;
    xe_print_direct(ctx, "The following items are about to be destroyed");
    for (i = 0; i < lines.n; i++)
        xe_print_direct(ctx, lines.v[i]);
    if (xe_param_bool(ctx, "force", false, &force) < 0)
        return -1;
    if (!force)
        yes = xe_user_says_yes(ctx);
    if (yes <= 0)
        return yes;
    for (i = 0; i < vms->n; i++)
        if (destroy_vm(ctx, &d[i]) < 0)
            return -1;
    xe_print_direct(ctx, "All objects destroyed");
    return 0;
}

static int op_ref(xe_ctx *ctx, const xe_obj *vm, const void *data,
                  const char **out)
{
    (void)ctx;
    (void)data;
    *out = vm->ref;
    return 0;
}

int xe_vm_uninstall(xe_ctx *ctx)
{
    vm_sel sel = {.ignore = no_ignore};
    xe_strv vms, all;
    xcp_value snaps;
    xe_args a;
    size_t i, j;

    xe_strv_init(&vms, &ctx->arena);
    xe_strv_init(&all, &ctx->arena);
    if (do_vm_op(ctx, &sel, op_ref, NULL, &vms) < 0)
        return -1;
    for (i = 0; i < vms.n; i++)
        xe_strv_add(&all, vms.v[i]);
    for (i = 0; i < vms.n; i++) {
        xe_args_init(&a);
        xe_args_str(&a, vms.v[i]);
        if (xe_call(ctx, &snaps, "VM.get_snapshots", &a) < 0)
            return -1;
        for (j = 0; snaps.kind == XCP_VAL_ARRAY && j < snaps.u.arr.n; j++)
            xe_strv_add(&all, xe_strdup(&ctx->arena,
                                        snaps.u.arr.items[j].u.s));
        xcp_value_dispose(&snaps);
    }
    return uninstall_common(ctx, &all);
}

/* ---- snapshots and templates by uuid ---- */

int xe_snapshot_ref(xe_ctx *ctx, const char **ref)
{
    const char *uuid = xe_param(ctx, "snapshot-uuid");
    bool is_snap;

    if (uuid == NULL)
        uuid = xe_param(ctx, "uuid");
    if (uuid == NULL)
        return xe_fail(ctx, "Required parameter not found: snapshot-uuid or "
                            "uuid.");
    if (xe_get_by_uuid(ctx, "VM", uuid, ref) < 0
        || xe_get_bool(ctx, "VM.get_is_a_snapshot", *ref, &is_snap) < 0)
        return -1;
    if (!is_snap)
        return xe_fail(ctx, "This operation can only be performed on a VM "
                            "snapshot. %s is not a VM snapshot.", uuid);
    return 0;
}

int xe_snapshot_reset_powerstate(xe_ctx *ctx)
{
    const char *snap;

    if (fail_without_force(ctx) < 0 || xe_snapshot_ref(ctx, &snap) < 0)
        return -1;
    return xe_call1(ctx, "VM.power_state_reset", snap);
}

int xe_snapshot_revert(xe_ctx *ctx)
{
    const char *snap;

    if (xe_snapshot_ref(ctx, &snap) < 0)
        return -1;
    return xe_call1(ctx, "VM.revert", snap);
}

int xe_snapshot_destroy(xe_ctx *ctx)
{
    const char *snap, *state;

    if (xe_snapshot_ref(ctx, &snap) < 0
        || xe_get_str(ctx, "VM.get_power_state", snap, &state) < 0)
        return -1;
    if (strcmp(state, "Halted") != 0
        && xe_call1(ctx, "VM.hard_shutdown", snap) < 0)
        return -1;
    return xe_call1(ctx, "VM.destroy", snap);
}

int xe_snapshot_uninstall(xe_ctx *ctx)
{
    xe_strv vms;
    const char *snap;

    xe_strv_init(&vms, &ctx->arena);
    if (xe_snapshot_ref(ctx, &snap) < 0)
        return -1;
    xe_strv_add(&vms, snap);
    return uninstall_common(ctx, &vms);
}

static int snapshot_op(xe_ctx *ctx, const clone_args *ca)
{
    const char *snap, *ref;
    xe_obj o = {.ref = NULL};
    xe_strv vms;

    if (xe_snapshot_ref(ctx, &snap) < 0)
        return -1;
    o.ref = snap;
    if (op_clone(ctx, &o, ca, &ref) < 0)
        return -1;
    xe_strv_init(&vms, &ctx->arena);
    xe_strv_add(&vms, ref);
    return print_new_vms(ctx, &vms);
}

int xe_snapshot_clone(xe_ctx *ctx)
{
    clone_args ca = {"VM.clone", xe_param(ctx, "new-name-label"), NULL,
                     NULL};

    return snapshot_op(ctx, &ca);
}

int xe_snapshot_copy(xe_ctx *ctx)
{
    clone_args ca = {"VM.copy", xe_param(ctx, "new-name-label"), NULL,
                     NULL};

    if (sr_param(ctx, &ca.sr) < 0)
        return -1;
    return snapshot_op(ctx, &ca);
}

int xe_template_uninstall(xe_ctx *ctx)
{
    const char *uuid = xe_param(ctx, "template-uuid"), *ref;
    xe_strv vms;
    bool is_tmpl;

    xe_strv_init(&vms, &ctx->arena);
    if (xe_get_by_uuid(ctx, "VM", uuid, &ref) < 0
        || xe_get_bool(ctx, "VM.get_is_a_template", ref, &is_tmpl) < 0)
        return -1;
    if (!is_tmpl)
        return xe_fail(ctx, "This operation can only be performed on a VM "
                            "template. %s is not a VM template.", uuid);
    xe_strv_add(&vms, ref);
    return uninstall_common(ctx, &vms);
}
