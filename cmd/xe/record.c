/*
 * xe: the record engine behind every <class>-list and <class>-param-*
 * command. Evaluates the CLI fields of fields.c on an object (following
 * ref paths through cached records and rendering values from their model
 * type the way records.ml does), classifies parameter names as XAPI's
 * get_field_type does, filters objects, and writes fields through the
 * generated setters (set_<f>, add_to_<f>, add_<f> ...).
 */
#include "fields.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Enum values XAPI's CLI spells differently from the wire (record_util.ml
 * shadows the generated converters for these). */
static const struct {
    const char *en, *wire, *shown;
} enum_shown[] = {
    {"vm_power_state", "Halted", "halted"},
    {"vm_power_state", "Paused", "paused"},
    {"vm_power_state", "Running", "running"},
    {"vm_power_state", "Suspended", "suspended"},
    {"vm_operations", "assert_operation_valid", "assertoperationvalid"},
    {"vm_operations", "data_source_op", "data_sources_op"},
    {"vm_operations", "create_template", "(unknown operation)"},
    {"vm_operations", "changing_VCPUs", "(unknown operation)"},
    {"vm_operations", "changing_memory_limits", "(unknown operation)"},
    {"vm_operations", "query_services", "(unknown operation)"},
    {"host_allowed_operations", "vm_start", "VM.start"},
    {"host_allowed_operations", "vm_resume", "VM.resume"},
    {"host_allowed_operations", "vm_migrate", "VM.migrate"},
    {"storage_operations", "pbd_create", "PBD.create"},
    {"storage_operations", "pbd_destroy", "PBD.destroy"},
    {"console_protocol", "vt100", "VT100"},
    {"console_protocol", "rfb", "RFB"},
    {"console_protocol", "rdp", "RDP"},
    {"task_allowed_operations", "cancel", "Cancel"},
    {"task_allowed_operations", "destroy", "Destroy"},
    {"on_normal_exit", "destroy", "Destroy"},
    {"on_normal_exit", "restart", "Restart"},
    {"on_crash_behaviour", "destroy", "Destroy"},
    {"on_crash_behaviour", "coredump_and_destroy", "Core dump and destroy"},
    {"on_crash_behaviour", "restart", "Restart"},
    {"on_crash_behaviour", "coredump_and_restart", "Core dump and restart"},
    {"on_crash_behaviour", "preserve", "Preserve"},
    {"on_crash_behaviour", "rename_restart", "Rename restart"},
    {"on_softreboot_behavior", "destroy", "Destroy"},
    {"on_softreboot_behavior", "restart", "Restart"},
    {"on_softreboot_behavior", "preserve", "Preserve"},
    {"on_softreboot_behavior", "soft_reboot", "Soft reboot"},
    {"vdi_type", "system", "System"},
    {"vdi_type", "user", "User"},
    {"vdi_type", "ephemeral", "Ephemeral"},
    {"vdi_type", "suspend", "Suspend"},
    {"vdi_type", "crashdump", "Crashdump"},
    {"vdi_type", "ha_statefile", "HA statefile"},
    {"vdi_type", "metadata", "Metadata"},
    {"vdi_type", "redo_log", "Redo log"},
    {"vdi_type", "pvs_cache", "PVS cache"},
    {"vdi_type", "cbt_metadata", "CBT metadata"},
    {"tristate_type", "yes", "true"},
    {"tristate_type", "no", "false"},
    {"domain_type", "pv_in_pvh", "pv-in-pvh"},
};

static bool is_enum(const char *type)
{
    size_t n;

    return xcp_enum_values(&n, type) != NULL;
}

static const char *enum_text(xe_ctx *ctx, const char *en, const char *wire)
{
    size_t i;

    for (i = 0; i < XE_ARRAY_LEN(enum_shown); i++)
        if (strcmp(enum_shown[i].en, en) == 0
            && strcmp(enum_shown[i].wire, wire) == 0)
            return enum_shown[i].shown;
    /* XAPI names the SR's VDI operations VDI.<op> */
    if (strcmp(en, "storage_operations") == 0 && xe_prefix(wire, "vdi_"))
        return xe_sprintf(&ctx->arena, "VDI.%s", wire + 4);
    return wire;
}

void xe_fval_init(xe_fval *v, xe_arena *a)
{
    v->text = "";
    xe_strv_init(&v->keys, a);
    xe_strv_init(&v->vals, a);
}

int xe_path_value(xe_ctx *ctx, int cls, const xcp_value *rec,
                  const char *path, const xcp_value **v, const char **type)
{
    const char *p = path, *gt, *name;
    const xcp_field_info *fi;
    const xcp_value *fv;
    int idx;

    for (;;) {
        gt = strchr(p, '>');
        name = gt ? xe_strndup(&ctx->arena, p, (size_t)(gt - p)) : p;
        idx = xcp_class_field_index(cls, name);
        if (idx < 0 || rec == NULL)
            return 1;
        fi = xcp_class_field(cls, (size_t)idx);
        fv = xcp_value_struct_get(rec, name);
        if (fi == NULL || fv == NULL)
            return 1;
        if (gt == NULL) {
            *v = fv;
            *type = fi->type;
            return 0;
        }
        if (!xe_prefix(fi->type, "ref:") || fv->kind != XCP_VAL_STRING)
            return 1;
        cls = xcp_class_by_name(fi->type + 4);
        rec = xe_record(ctx, cls, fv->u.s);
        if (rec == NULL)
            return 1;
        p = gt + 1;
    }
}

/* get_uuid_from_ref: the target's uuid, or "<not in database>" */
static const char *ref_text(xe_ctx *ctx, const char *target, const char *ref)
{
    int cls = target != NULL ? xcp_class_by_name(target) : -1;
    const char *uuid;

    if (xcp_ref_is_null(ref))
        return XE_NID;
    uuid = cls >= 0 ? xe_ref_uuid(ctx, cls, ref) : xe_any_ref_uuid(ctx, ref);
    return uuid != NULL ? uuid : XE_NID;
}

static const char *lib_text(xe_ctx *ctx, const xcp_value *v)
{
    char *t = xcp_value_to_text(v);
    const char *r = xe_strdup(&ctx->arena, t != NULL ? t : "");

    xcp_free(t);
    return r;
}

const char *xe_render_scalar(xe_ctx *ctx, const char *type,
                             const xcp_value *v)
{
    char dt[32];

    switch (v->kind) {
    case XCP_VAL_STRING:
        if (xe_prefix(type, "ref:"))
            return ref_text(ctx, type + 4, v->u.s);
        if (is_enum(type))
            return enum_text(ctx, type, v->u.s);
        return v->u.s;
    case XCP_VAL_INT:
        return xe_sprintf(&ctx->arena, "%" PRId64, v->u.i);
    case XCP_VAL_FLOAT:
        return xe_sprintf(&ctx->arena, "%.3f", v->u.f);
    case XCP_VAL_BOOL:
        return v->u.b ? "true" : "false";
    case XCP_VAL_DATETIME:
        xcp_datetime_format(dt, sizeof(dt), v->u.t);
        return xe_strdup(&ctx->arena, dt);
    default:
        return lib_text(ctx, v);
    }
}

/* "map:K:V" -> K and V; K may itself be "ref:<Class>". */
static void split_map_type(xe_ctx *ctx, const char *type, const char **k,
                           const char **v)
{
    const char *p = type + 4, *colon;

    colon = strchr(xe_prefix(p, "ref:") ? p + 4 : p, ':');
    if (colon == NULL) {
        *k = "string";
        *v = "string";
        return;
    }
    *k = xe_strndup(&ctx->arena, p, (size_t)(colon - p));
    *v = colon + 1;
}

static const char *render_item(xe_ctx *ctx, const char *type,
                               const xcp_value *v, unsigned flags)
{
    xe_strv parts;
    size_t i;

    if (v->kind == XCP_VAL_ARRAY) {
        xe_strv_init(&parts, &ctx->arena);
        for (i = 0; i < v->u.arr.n; i++)
            xe_strv_add(&parts, render_item(ctx, xe_prefix(type, "set:")
                                                     ? type + 4 : "string",
                                            &v->u.arr.items[i], flags));
        return xe_strv_join(&parts, "; ");
    }
    if ((flags & XE_F_STRREFS) && v->kind == XCP_VAL_STRING)
        return ref_text(ctx, NULL, v->u.s);
    return xe_render_scalar(ctx, type, v);
}

static void render_set(xe_ctx *ctx, const char *type, const xcp_value *v,
                       unsigned flags, xe_fval *out)
{
    size_t i;

    if (v->kind == XCP_VAL_ARRAY)
        for (i = 0; i < v->u.arr.n; i++)
            xe_strv_add(&out->keys, render_item(ctx, type + 4,
                                                &v->u.arr.items[i], flags));
    out->text = xe_strv_join(&out->keys, (flags & XE_F_COMMA) ? ", " : "; ");
}

static const char *map_key_text(xe_ctx *ctx, const char *ktype,
                                const char *key)
{
    if (xe_prefix(ktype, "ref:"))
        return ref_text(ctx, ktype + 4, key);
    if (is_enum(ktype))
        return enum_text(ctx, ktype, key);
    return key;
}

static void render_map(xe_ctx *ctx, const char *type, const xcp_value *v,
                       unsigned flags, xe_fval *out)
{
    const char *kt, *vt, *k, *val;
    xe_strv pairs;
    size_t i;

    split_map_type(ctx, type, &kt, &vt);
    xe_strv_init(&pairs, &ctx->arena);
    if (v->kind == XCP_VAL_STRUCT) {
        for (i = 0; i < v->u.st.n; i++) {
            k = map_key_text(ctx, kt, v->u.st.keys[i]);
            val = render_item(ctx, vt, &v->u.st.vals[i], flags);
            if (flags & XE_F_MAPVALUES) {
                xe_strv_add(&out->keys, val);
                continue;
            }
            xe_strv_add(&out->keys, k);
            xe_strv_add(&out->vals, val);
            xe_strv_add(&pairs, xe_sprintf(&ctx->arena, "%s: %s", k, val));
        }
    }
    out->text = (flags & XE_F_MAPVALUES) ? xe_strv_join(&out->keys, "; ")
                                         : xe_strv_join(&pairs, "; ");
}

void xe_render(xe_ctx *ctx, const char *type, const xcp_value *v,
               unsigned flags, xe_fval *out)
{
    if (xe_prefix(type, "set:"))
        render_set(ctx, type, v, flags, out);
    else if (xe_prefix(type, "map:"))
        render_map(ctx, type, v, flags, out);
    else
        out->text = render_item(ctx, type, v, flags);
}

int xe_field_eval(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                  xe_fval *out)
{
    const xcp_value *v;
    const char *type;

    xe_fval_init(out, &ctx->arena);
    if (f->get != NULL)
        return f->get(ctx, o, f, out);
    if (xe_path_value(ctx, o->cls, o->rec, f->path, &v, &type) != 0) {
        out->text = f->missing != NULL ? f->missing : XE_NID;
        return 0;
    }
    xe_render(ctx, type, v, f->flags, out);
    return 0;
}

int xe_field_text(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                  const char **out)
{
    xe_fval v;

    if (xe_field_eval(ctx, o, f, &v) < 0) {
        if (ctx->err.kind == XE_E_API
            && xe_streq(ctx->err.name, "HANDLE_INVALID")) {
            ctx->err.kind = XE_E_NONE;
            *out = "<invalid reference>";
            return 0;
        }
        return -1;
    }
    *out = v.text;
    return 0;
}

const char *xe_field_label(xe_ctx *ctx, const xe_field *f)
{
    const char *mark;

    if (f->flags & XE_F_SET)
        mark = (f->flags & XE_F_SETRW) ? " (SRW)" : " (SRO)";
    else if (f->flags & XE_F_MAP)
        mark = (f->flags & XE_F_MAPRW) ? " (MRW)" : " (MRO)";
    else
        mark = (f->flags & XE_F_RW) ? " ( RW)" : " ( RO)";
    return xe_sprintf(&ctx->arena, "%s%s%s", f->name, mark,
                      (f->flags & XE_F_DEPRECATED) ? " [DEPRECATED]" : "");
}

const xe_field *xe_field_find(const xe_class *cc, const char *name)
{
    size_t i;

    for (i = 0; i < cc->nfields; i++)
        if (strcmp(cc->fields[i].name, name) == 0)
            return &cc->fields[i];
    return NULL;
}

bool xe_field_settable(const xe_field *f)
{
    return (f->flags & XE_F_RW) != 0;
}

bool xe_field_addable(const xe_field *f)
{
    return (f->flags & (XE_F_SETRW | XE_F_MAPRW)) != 0;
}

bool xe_field_clearable(const xe_field *f)
{
    return (f->flags & (XE_F_RW | XE_F_SET | XE_F_MAP)) != 0;
}

/* ---- objects ---- */

int xe_objs_all(xe_ctx *ctx, const xe_class *cc, xe_obj **objs, size_t *n)
{
    xe_strv refs;
    size_t i;
    int cls = xcp_class_by_name(cc->api);

    *objs = NULL;
    *n = 0;
    xe_strv_init(&refs, &ctx->arena);
    if (xe_all_records(ctx, cls, &refs) < 0)
        return -1;
    *objs = xe_alloc(&ctx->arena, (refs.n + 1) * sizeof(xe_obj));
    for (i = 0; i < refs.n; i++) {
        (*objs)[i].cc = cc;
        (*objs)[i].cls = cls;
        (*objs)[i].ref = refs.v[i];
        (*objs)[i].rec = xe_record(ctx, cls, refs.v[i]);
    }
    *n = refs.n;
    return 0;
}

/* The API field a CLI field reads from its own record, or NULL when it
 * is computed (a getter may read anything). */
static const char *api_field(xe_ctx *ctx, const xe_field *f)
{
    const char *gt;

    if (f->get != NULL || f->path == NULL)
        return NULL;
    gt = strchr(f->path, '>');
    return gt ? xe_strndup(&ctx->arena, f->path, (size_t)(gt - f->path))
              : f->path;
}

int xe_objs_some(xe_ctx *ctx, const xe_class *cc, const xe_field *const *fs,
                 size_t nfs, xe_obj **objs, size_t *n)
{
    const char **names = xe_alloc(&ctx->arena, (nfs + 1) * sizeof(*names));
    const xcp_value **recs;
    xe_strv refs;
    size_t i, k = 0;
    int cls = xcp_class_by_name(cc->api);

    for (i = 0; i < nfs; i++)
        if ((names[k++] = api_field(ctx, fs[i])) == NULL)
            return xe_objs_all(ctx, cc, objs, n);
    *objs = NULL;
    *n = 0;
    xe_strv_init(&refs, &ctx->arena);
    if (xe_partial_records(ctx, cls, names, k, &refs, &recs) < 0)
        return -1;
    *objs = xe_alloc(&ctx->arena, (refs.n + 1) * sizeof(xe_obj));
    for (i = 0; i < refs.n; i++) {
        (*objs)[i].cc = cc;
        (*objs)[i].cls = cls;
        (*objs)[i].ref = refs.v[i];
        (*objs)[i].rec = recs[i];
    }
    *n = refs.n;
    return 0;
}

int xe_obj_by_uuid(xe_ctx *ctx, const xe_class *cc, const char *uuid,
                   xe_obj *o)
{
    const char *ref;

    o->cc = cc;
    o->cls = xcp_class_by_name(cc->api);
    if (xe_get_by_uuid(ctx, cc->api, uuid, &ref) < 0)
        return -1;
    o->ref = ref;
    o->rec = xe_record(ctx, o->cls, ref);
    if (o->rec == NULL) {
        /* vanished between the two calls: report it as the server does */
        const char *p[] = {cc->api, ref};

        return xe_fail_api(ctx, "HANDLE_INVALID", 2, p);
    }
    return 0;
}

const char *xe_obj_uuid(const xe_obj *o)
{
    const char *u = xe_rec_str(o->rec, "uuid");

    return u != NULL ? u : "";
}

/* ---- parameter names and filters ---- */

/* Longest field name first among those with the flag, then prefix+"-". */
static const xe_field *legacy_match(const xe_class *cc, const char *name,
                                    unsigned flag)
{
    const xe_field *best = NULL;
    size_t i, len, blen = 0;

    for (i = 0; i < cc->nfields; i++) {
        const xe_field *f = &cc->fields[i];

        if (!(f->flags & flag))
            continue;
        len = strlen(f->name);
        if (strncmp(name, f->name, len) != 0 || name[len] != '-')
            continue;
        if (best == NULL || len > blen) {
            best = f;
            blen = len;
        }
    }
    return best;
}

int xe_field_type(xe_ctx *ctx, const xe_class *cc, const char *name,
                  xe_ftype *type, const xe_field **f)
{
    const char *colon;

    *f = xe_field_find(cc, name);
    if (*f != NULL) {
        *type = XE_FT_NORMAL;
        return 0;
    }
    colon = strchr(name, ':');
    if (colon != NULL) {
        *f = xe_field_find(cc, xe_strndup(&ctx->arena, name,
                                          (size_t)(colon - name)));
        if (*f == NULL)
            return xe_fail(ctx, "Unknown field '%s'", name);
        if ((*f)->flags & XE_F_SET)
            *type = XE_FT_SET;
        else if ((*f)->flags & XE_F_MAP)
            *type = XE_FT_MAP;
        else
            return xe_fail(ctx, "Field '%s' is not a set or map",
                           (*f)->name);
        return 0;
    }
    *f = legacy_match(cc, name, XE_F_MAP);
    *type = XE_FT_MAP;
    if (*f == NULL) {
        *f = legacy_match(cc, name, XE_F_SET);
        *type = XE_FT_SET;
    }
    if (*f == NULL)
        return xe_fail(ctx, "Unknown field '%s'", name);
    return 0;
}

static const char *lower(xe_ctx *ctx, const char *s)
{
    return xe_lower(&ctx->arena, s);
}

/* Does the object match? -1 on an error that aborts the command. */
static int match_normal(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                        const char *v)
{
    const char *t;

    if (xe_field_text(ctx, o, f, &t) < 0)
        return -1;
    if (f->flags & XE_F_CI)
        return strcmp(lower(ctx, t), lower(ctx, v)) == 0;
    return strcmp(t, v) == 0;
}

/* Set and map filters ignore evaluation errors (XAPI: with _ -> false). */
static int match_coll(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                      xe_ftype type, const char *key, const char *v)
{
    xe_err saved = ctx->err;
    xe_fval fv;
    bool ci = (f->flags & XE_F_CI) != 0;
    size_t i;

    if (xe_field_eval(ctx, o, f, &fv) < 0) {
        ctx->err = saved;
        return 0;
    }
    if (ci) {
        key = lower(ctx, key);
        v = lower(ctx, v);
    }
    for (i = 0; i < fv.keys.n; i++) {
        const char *k = ci ? lower(ctx, fv.keys.v[i]) : fv.keys.v[i];

        if (type == XE_FT_SET && strcmp(k, v) == 0)
            return 1;
        /* List.assoc: the first binding of the key decides */
        if (type == XE_FT_MAP && strcmp(k, key) == 0)
            return strcmp(fv.vals.v[i], v) == 0;
    }
    return 0;
}

int xe_filter(xe_ctx *ctx, xe_obj *objs, size_t *n, const char *k,
              const char *v)
{
    const xe_field *f;
    xe_ftype type;
    const char *sub = NULL;
    size_t i, kept = 0;
    int m;

    if (*n == 0)
        return 0;
    if (xe_field_type(ctx, objs[0].cc, k, &type, &f) < 0)
        return -1;
    if (type != XE_FT_NORMAL) {
        sub = k + strlen(f->name) + 1;
        if (type == XE_FT_SET && strcmp(sub, "contains") != 0)
            return xe_fail(ctx, "Invalid syntax for set filtering (should "
                                "be set-param:contains=key)");
    }
    for (i = 0; i < *n; i++) {
        m = type == XE_FT_NORMAL ? match_normal(ctx, &objs[i], f, v)
                                 : match_coll(ctx, &objs[i], f, type, sub, v);
        if (m < 0)
            return -1;
        if (m)
            objs[kept++] = objs[i];
    }
    *n = kept;
    return 0;
}

/* ---- writes ---- */

static const char *field_type(const xe_obj *o, const xe_field *f)
{
    int idx;

    if (f->vtype != NULL)
        return f->vtype;
    if (f->path == NULL || strchr(f->path, '>') != NULL)
        return "string";
    idx = xcp_class_field_index(o->cls, f->path);
    if (idx < 0)
        return "string";
    return xcp_class_field(o->cls, (size_t)idx)->type;
}

static int enum_value(xe_ctx *ctx, const char *en, const char *s,
                      xcp_value *out)
{
    size_t n, i;
    const char *const *vals = xcp_enum_values(&n, en);
    xe_buf b;

    if (strcmp(en, "domain_type") == 0 && xe_strcaseeq(s, "pv-in-pvh"))
        s = "pv_in_pvh";
    for (i = 0; i < n; i++) {
        if (xe_strcaseeq(vals[i], s)) {
            xcp_value_set_string(out, vals[i]);
            return 0;
        }
    }
    if (strcmp(en, "domain_type") == 0)
        return xe_fail(ctx, "Invalid domain type. Got %s", lower(ctx, s));
    xe_buf_init(&b, &ctx->arena);
    xe_buf_add(&b, "Expected one of ");
    for (i = 0; i < n; i++)
        xe_buf_printf(&b, "%s'%s'", i > 0 ? ", " : "", vals[i]);
    return xe_fail(ctx, "%s, got %s", xe_buf_str(&b), lower(ctx, s));
}

static int to_value(xe_ctx *ctx, const xe_field *f, const char *type,
                    const char *s, xcp_value *out);

static int set_value(xe_ctx *ctx, const xe_field *f, const char *type,
                     const char *s, xcp_value *out)
{
    xe_strv words;
    size_t i;

    xe_strv_init(&words, &ctx->arena);
    xe_split(&words, s, ',');
    if (xcp_value_set_array(out, words.n) < 0)
        return xe_fail(ctx, "out of memory");
    for (i = 0; i < words.n; i++)
        if (to_value(ctx, f, type + 4, words.v[i],
                     &out->u.arr.items[i]) < 0) {
            xcp_value_dispose(out);
            return -1;
        }
    return 0;
}

static int int_value(xe_ctx *ctx, const xe_field *f, const char *s,
                     xcp_value *out)
{
    int64_t i;

    if (f->flags & XE_F_BYTES) {
        if (xe_parse_bytes(s, &i) < 0)
            return xe_fail(ctx,
                           "Failed to parse field '%s': expecting an "
                           "integer (possibly with suffix KiB, MiB, GiB, "
                           "TiB), got '%s'",
                           f->name, s);
    } else if (xe_parse_int(s, &i) < 0) {
        return xe_fail(ctx, "Failed to parse parameter '%s': expecting an "
                            "integer",
                       (f->flags & XE_F_SET) ? "value" : f->name);
    }
    xcp_value_set_int(out, i);
    return 0;
}

static int to_value(xe_ctx *ctx, const xe_field *f, const char *type,
                    const char *s, xcp_value *out)
{
    const char *ref;
    double d;
    xcp_datetime t;

    memset(out, 0, sizeof(*out));
    if (strcmp(type, "int") == 0)
        return int_value(ctx, f, s, out);
    if (strcmp(type, "float") == 0) {
        if (xe_parse_float(s, &d) < 0)
            return xe_fail(ctx, "Parameter %s must be a floating-point "
                                "number", f->name);
        xcp_value_set_float(out, d);
    } else if (strcmp(type, "bool") == 0) {
        if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0)
            return xe_fail(ctx, "Failed to parse parameter '%s': expecting "
                                "a boolean (true or false)", f->name);
        xcp_value_set_bool(out, strcmp(s, "true") == 0);
    } else if (strcmp(type, "datetime") == 0) {
        if (xcp_datetime_parse(&t, s) < 0)
            return xe_fail(ctx, "Parameter %s must be a date", f->name);
        xcp_value_set_datetime(out, t);
    } else if (xe_prefix(type, "ref:")) {
        if (*s == '\0' && (f->flags & XE_F_NULLREF))
            ref = XCP_NULL_REF;
        else if (xe_get_by_uuid(ctx, type + 4, s, &ref) < 0)
            return -1;
        xcp_value_set_string(out, ref);
    } else if (xe_prefix(type, "set:")) {
        return set_value(ctx, f, type, s, out);
    } else if (is_enum(type)) {
        return enum_value(ctx, type, s, out);
    } else {
        xcp_value_set_string(out, s);
    }
    return 0;
}

static const char *method(xe_ctx *ctx, const xe_obj *o, const char *fmt,
                          const char *arg)
{
    return xe_sprintf(&ctx->arena, "%s.%s", o->cc->api,
                      xe_sprintf(&ctx->arena, fmt, arg));
}

int xe_field_set(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                 const char *value)
{
    xcp_value v;
    xe_args a;
    const char *m = f->msg != NULL ? method(ctx, o, "%s", f->msg)
                                   : method(ctx, o, "set_%s", f->path);

    if (to_value(ctx, f, field_type(o, f), value, &v) < 0)
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, o->ref);
    xe_args_value(&a, &v);
    return xe_call(ctx, NULL, m, &a);
}

/* Map keys typed by an enum (blocked_operations) take the CLI spelling;
 * XAPI's string_to_vm_operation rejects others as below. */
static int map_key(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                   const char *k, const char **out)
{
    const char *kt, *vt, *type = field_type(o, f);
    const char *params[2] = {"blocked_operation", k};
    const char *const *vals;
    size_t i, n;

    *out = k;
    if (!xe_prefix(type, "map:"))
        return 0;
    split_map_type(ctx, type, &kt, &vt);
    if (!is_enum(kt))
        return 0;
    vals = xcp_enum_values(&n, kt);
    for (i = 0; i < n; i++) {
        if (strcmp(enum_text(ctx, kt, vals[i]), k) == 0
            && strcmp(k, "(unknown operation)") != 0) {
            *out = vals[i];
            return 0;
        }
    }
    return xe_fail_api(ctx, "INVALID_VALUE", 2, params);
}

static bool key_allowed(const xe_field *f, const char *k)
{
    size_t i;

    if (f->keys == NULL)
        return true;
    for (i = 0; f->keys[i] != NULL; i++)
        if (strcmp(f->keys[i], k) == 0)
            return true;
    return false;
}

static const char *quoted_keys(xe_ctx *ctx, const xe_field *f)
{
    xe_buf b;
    size_t i;

    xe_buf_init(&b, &ctx->arena);
    for (i = 0; f->keys[i] != NULL; i++) {
        if (i > 0)
            xe_buf_add(&b, f->keys[i + 1] == NULL ? " or " : ",");
        xe_buf_printf(&b, "'%s'", f->keys[i]);
    }
    return xe_buf_str(&b);
}

int xe_field_map_add(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                     const char *k, const char *v)
{
    xe_args a;
    const char *key;

    if (!key_allowed(f, k))
        return xe_fail(ctx, "Failed to add parameter '%s': expecting %s", k,
                       quoted_keys(ctx, f));
    if (map_key(ctx, o, f, k, &key) < 0)
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, o->ref);
    xe_args_str(&a, key);
    xe_args_str(&a, v);
    return xe_call(ctx, NULL,
                   f->addmsg != NULL ? method(ctx, o, "%s", f->addmsg)
                                     : method(ctx, o, "add_to_%s", f->path),
                   &a);
}

int xe_field_map_remove(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                        const char *k)
{
    xe_args a;
    const char *key;

    if (map_key(ctx, o, f, k, &key) < 0)
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, o->ref);
    xe_args_str(&a, key);
    return xe_call(ctx, NULL,
                   f->rmmsg != NULL ? method(ctx, o, "%s", f->rmmsg)
                                    : method(ctx, o, "remove_from_%s",
                                             f->path),
                   &a);
}

static int set_member(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                      const char *v, const char *msg)
{
    const char *type = field_type(o, f);
    xcp_value val;
    xe_args a;

    if (to_value(ctx, f, xe_prefix(type, "set:") ? type + 4 : "string", v,
                 &val) < 0)
        return -1;
    xe_args_init(&a);
    xe_args_str(&a, o->ref);
    xe_args_value(&a, &val);
    return xe_call(ctx, NULL, method(ctx, o, "%s", msg), &a);
}

int xe_field_set_add(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                     const char *v)
{
    return set_member(ctx, o, f, v,
                      f->addmsg != NULL
                          ? f->addmsg
                          : xe_sprintf(&ctx->arena, "add_%s", f->path));
}

int xe_field_set_remove(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                        const char *v)
{
    return set_member(ctx, o, f, v,
                      f->rmmsg != NULL
                          ? f->rmmsg
                          : xe_sprintf(&ctx->arena, "remove_%s", f->path));
}

static const char *joined_keys(xe_ctx *ctx, const xe_field *f)
{
    xe_strv all;
    size_t i;

    xe_strv_init(&all, &ctx->arena);
    for (i = 0; f->keys[i] != NULL; i++)
        xe_strv_add(&all, f->keys[i]);
    return xe_strv_join(&all, ", ");
}

int xe_field_map_replace(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                         const xe_strv *keys, const xe_strv *vals)
{
    xcp_value m, s;
    xe_args a;
    size_t i;

    for (i = 0; i < keys->n; i++)
        if (!key_allowed(f, keys->v[i]))
            return xe_fail(ctx, "Unknown key '%s': expecting %s",
                           keys->v[i], joined_keys(ctx, f));
    xcp_value_set_struct(&m);
    for (i = 0; i < keys->n; i++) {
        xcp_value_set_string(&s, vals->v[i]);
        xcp_value_struct_add(&m, keys->v[i], &s);
        xcp_value_dispose(&s);
    }
    xe_args_init(&a);
    xe_args_str(&a, o->ref);
    xe_args_value(&a, &m);
    return xe_call(ctx, NULL, method(ctx, o, "set_%s", f->path), &a);
}

int xe_field_map_set_in(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                        const char *k, const char *v)
{
    xe_args a;

    xe_args_init(&a);
    xe_args_str(&a, o->ref);
    xe_args_str(&a, k);
    xe_args_str(&a, v);
    return xe_call(ctx, NULL, method(ctx, o, "%s", f->msg), &a);
}
