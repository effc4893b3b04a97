/*
 * xe: messages, secrets, the session's password and event-wait, as
 * XAPI's cli_operations.ml does them.
 */
#include "cmds.h"

#include <string.h>

int xe_message_create(xe_ctx *ctx)
{
    static const char *const owners[][2] = {{"vm-uuid", "VM"},
                                            {"pool-uuid", "Pool"},
                                            {"sr-uuid", "SR"},
                                            {"host-uuid", "Host"}};
    const char *uuid = NULL, *cls = NULL;
    int64_t prio;
    xe_args a;
    size_t i;

    if (xe_parse_int(xe_param(ctx, "priority"), &prio) < 0)
        return xe_fail(ctx, "Priority field should be an integer");
    for (i = 0; i < XE_ARRAY_LEN(owners) && uuid == NULL; i++)
        if ((uuid = xe_param(ctx, owners[i][0])) != NULL)
            cls = owners[i][1];
    if (uuid == NULL)
        return xe_fail(ctx, "Need one of: vm-uuid, host-uuid, sr-uuid or "
                            "pool-uuid");
    xe_args_init(&a);
    xe_args_str(&a, xe_param(ctx, "name"));
    xe_args_int(&a, prio);
    xe_args_str(&a, cls);
    xe_args_str(&a, uuid);
    xe_args_str(&a, xe_param(ctx, "body"));
    return xe_call(ctx, NULL, "message.create", &a);
}

int xe_message_destroy(xe_ctx *ctx)
{
    const char *uuid = xe_param(ctx, "uuid");
    const char *uuids = xe_param(ctx, "uuids"), *ref;
    xe_strv list;
    xcp_value refs;
    xe_args a;
    size_t i;

    xe_strv_init(&list, &ctx->arena);
    if (uuid != NULL && uuids != NULL)
        return xe_fail(ctx, "Ambiguous arguments; need one of uuid, uuids");
    if (uuid == NULL && uuids == NULL)
        return xe_fail(ctx, "Need one of uuid, uuids");
    if (uuid != NULL) {
        xe_strv_add(&list, uuid);
    } else {
        /* String.split_on_char: "" is one (empty) uuid */
        xe_split(&list, uuids, ',');
        if (*uuids == '\0')
            xe_strv_add(&list, "");
    }
    xcp_value_set_array(&refs, list.n);
    for (i = 0; i < list.n; i++) {
        if (xe_get_by_uuid(ctx, "message", list.v[i], &ref) < 0) {
            xcp_value_dispose(&refs);
            return -1;
        }
        xcp_value_set_string(&refs.u.arr.items[i], ref);
    }
    xe_args_init(&a);
    xe_args_value(&a, &refs);
    return xe_call(ctx, NULL, "message.destroy_many", &a);
}

int xe_secret_create(xe_ctx *ctx)
{
    int cls = xe_class_id("secret");
    const char *ref, *uuid;
    xcp_value st, oc;
    xe_args a;

    xcp_value_set_struct(&st);
    xe_struct_str(&st, cls, "value", xe_param(ctx, "value"));
    xe_map_params(ctx, "other-config", &oc);
    xe_struct_value(&st, cls, "other_config", &oc);
    xe_args_init(&a);
    xe_args_value(&a, &st);
    if (xe_call_str(ctx, &ref, "secret.create", &a) < 0
        || xe_get_str(ctx, "secret.get_uuid", ref, &uuid) < 0)
        return -1;
    xe_print_line(ctx, uuid);
    return 0;
}

int xe_secret_destroy(xe_ctx *ctx)
{
    const char *ref;

    if (xe_get_by_uuid(ctx, "secret", xe_param(ctx, "uuid"), &ref) < 0)
        return -1;
    return xe_call1(ctx, "secret.destroy", ref);
}

int xe_user_password_change(xe_ctx *ctx)
{
    const char *old = xe_param(ctx, "old");
    xe_args a;

    xe_args_init(&a);
    xe_args_str(&a, old != NULL ? old : "");
    xe_args_str(&a, xe_param(ctx, "new"));
    return xe_call(ctx, NULL, "session.change_password", &a);
}

/* ---- event-wait ---- */

/* One condition: field = value, or field =/= value. */
typedef struct cond {
    const char *field;
    const char *value;
    bool equal;
} cond;

/* The classes XAPI's event_wait_gen listens to (those libxcp has). */
static const char *const wait_classes[] = {"vm",   "vdi", "sr",   "host",
                                           "network", "vif", "pif", "vbd",
                                           "pbd",  "pool", "task", "secret",
                                           NULL};

/* record_matches: 1 when every condition holds, 0 when not, -1 on an
 * error (an unknown field: "key missing"). */
static int matches(xe_ctx *ctx, const xe_obj *o, const cond *c, size_t n)
{
    const xe_field *f;
    const char *text;
    size_t i;
    int ok = 1;

    for (i = 0; i < n; i++) {
        if ((f = xe_field_find(o->cc, c[i].field)) == NULL)
            return xe_fail(ctx, "key missing: %s", c[i].field);
        if (xe_field_text(ctx, o, f, &text) < 0)
            return -1;
        if (xe_streq(text, c[i].value) != c[i].equal)
            ok = 0;
    }
    return ok;
}

/* Whether some object of the class already matches (poll). */
static int poll_all(xe_ctx *ctx, const xe_class *cc, const cond *c,
                    size_t n)
{
    xe_obj *objs;
    size_t i, nobj;
    int m;

    xe_cache_clear(ctx);
    if (xe_objs_all(ctx, cc, &objs, &nobj) < 0)
        return -1;
    for (i = 0; i < nobj; i++)
        if ((m = matches(ctx, &objs[i], c, n)) != 0)
            return m;
    return 0;
}

/* The objects named by one event.from answer, re-read; token updated. */
static int poll_events(xe_ctx *ctx, const xe_class *cc, const char **token,
                       const cond *c, size_t n)
{
    const xcp_value *evs, *tok, *ev, *ref, *op;
    xcp_value res, classes;
    xe_args a;
    size_t i;
    int m = 0;

    xcp_value_set_array(&classes, 1);
    xcp_value_set_string(&classes.u.arr.items[0], cc->name);
    xe_args_init(&a);
    xe_args_value(&a, &classes);
    xe_args_str(&a, *token);
    xe_args_float(&a, 30.0);
    if (xe_call(ctx, &res, "event.from", &a) < 0)
        return -1;
    tok = xcp_value_struct_get(&res, "token");
    if (tok != NULL && tok->kind == XCP_VAL_STRING)
        *token = xe_strdup(&ctx->arena, tok->u.s);
    evs = xcp_value_struct_get(&res, "events");
    xe_cache_clear(ctx);
    for (i = 0; m == 0 && evs && evs->kind == XCP_VAL_ARRAY
                && i < evs->u.arr.n;
         i++) {
        xe_obj o = {cc, xe_class_id(cc->api), NULL, NULL};

        ev = &evs->u.arr.items[i];
        ref = xcp_value_struct_get(ev, "ref");
        op = xcp_value_struct_get(ev, "operation");
        if (ref == NULL || ref->kind != XCP_VAL_STRING
            || (op != NULL && op->kind == XCP_VAL_STRING
                && strcmp(op->u.s, "del") == 0))
            continue;
        o.ref = xe_strdup(&ctx->arena, ref->u.s);
        if ((o.rec = xe_record(ctx, o.cls, o.ref)) != NULL)
            m = matches(ctx, &o, c, n);
    }
    xcp_value_dispose(&res);
    return m;
}

int xe_event_wait(xe_ctx *ctx)
{
    const char *name = xe_param(ctx, "class"), *token = "";
    const xe_class *cc = NULL;
    cond *c = xe_alloc(&ctx->arena, (ctx->params.n + 1) * sizeof(*c));
    size_t i, n = 0;
    int m;

    for (i = 0; wait_classes[i] != NULL && cc == NULL; i++)
        if (strcmp(wait_classes[i], name) == 0)
            cc = xe_class_find(name);
    if (cc == NULL)
        return xe_fail(ctx, "Cli listening for class '%s' not currently "
                            "implemented", name);
    for (i = 0; i < ctx->params.n; i++) {
        const xe_kv *p = &ctx->params.v[i];

        if (strcmp(p->key, "class") == 0 || xe_is_stdparam(p->key))
            continue;
        c[n].field = p->key;
        c[n].equal = !xe_prefix(p->val, "/=");
        c[n].value = c[n].equal ? p->val : p->val + 2;
        n++;
    }
    if ((m = poll_all(ctx, cc, c, n)) != 0)
        return m < 0 ? -1 : 0;
    /* The xe program with the engine in its own process (no daemon
     * listens): it holds the state directory, so no one else can make
     * the change it would wait for. XAPI's waits on the server; here
     * that is xcpd, which xe uses whenever it runs. */
    if (ctx->io->out == xe_io_local()->out
        && xcp_session_state_dir(ctx->s) != NULL)
        return xe_fail(ctx, "event-wait needs a running xcpd: no %s matches "
                            "yet, and this xe holds the state directory "
                            "%s itself, so nothing else can change it",
                       name, xcp_session_state_dir(ctx->s));
    while ((m = poll_events(ctx, cc, &token, c, n)) == 0)
        ;
    return m < 0 ? -1 : 0;
}

/* ---- XAPI's commands libxcp lacks the calls for ---- */

int xe_unsupported(xe_ctx *ctx)
{
    const xe_xapi_cmd *x = ctx->cmd_data;

    return xe_fail_api(ctx, x->error, 1, &x->call);
}

int xe_session_subject_identifier_list(xe_ctx *ctx)
{
    xe_table_rec *recs;
    xcp_value ids;
    xe_args a;
    size_t i, n;

    xe_args_init(&a);
    if (xe_call(ctx, &ids, "session.get_all_subject_identifiers", &a) < 0)
        return -1;
    n = ids.kind == XCP_VAL_ARRAY ? ids.u.arr.n : 0;
    recs = xe_alloc(&ctx->arena, (n + 1) * sizeof(*recs));
    for (i = 0; i < n; i++) {
        recs[i].n = 1;
        recs[i].rows = xe_alloc(&ctx->arena, sizeof(xe_row));
        recs[i].rows[0] = (xe_row){
            "subject-identifier ( RO)",
            xe_strdup(&ctx->arena, ids.u.arr.items[i].u.s)};
    }
    xcp_value_dispose(&ids);
    xe_print_table(ctx, recs, n);
    return 0;
}

/* vm_export_aux for templates and snapshots: the object of <kind>-uuid=,
 * refused when it is not one, exported as vm-export does. */
static int export_kind(xe_ctx *ctx, const char *kind, const char *flag)
{
    const char *key = xe_sprintf(&ctx->arena, "%s-uuid", kind);
    const char *uuid = xe_param(ctx, key), *ref;
    xe_params ps = {0, 0, NULL};
    bool is;
    size_t i;

    if (xe_get_by_uuid(ctx, "VM", uuid, &ref) < 0
        || xe_get_bool(ctx, flag, ref, &is) < 0)
        return -1;
    if (!is)
        return xe_fail(ctx, "This operation can only be performed on a VM "
                            "%s. %s is not a VM %s.", kind, uuid, kind);
    /* vm-export's selection: that object's uuid. */
    for (i = 0; i < ctx->params.n; i++)
        if (strcmp(ctx->params.v[i].key, key) != 0)
            xe_params_add(&ctx->arena, &ps, ctx->params.v[i].key,
                          ctx->params.v[i].val);
    xe_params_add(&ctx->arena, &ps, "uuid", uuid);
    ctx->params = ps;
    return xe_vm_export(ctx);
}

int xe_template_export(xe_ctx *ctx)
{
    return export_kind(ctx, "template", "VM.get_is_a_template");
}

int xe_snapshot_export_to_template(xe_ctx *ctx)
{
    return export_kind(ctx, "snapshot", "VM.get_is_a_snapshot");
}
