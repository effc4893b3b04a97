/*
 * xe: access to libxcp. Wraps xcp_call so that a failure is copied out of
 * the library's thread-local error into the command's context at once
 * (later calls, e.g. the ref lookups done while printing it, would
 * overwrite it), keeps a per-invocation cache of records (what XAPI's
 * records.ml fetches lazily per object), resolves refs to uuids and names,
 * and holds the small helpers commands use to read parameters.
 */
#include "xe.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct xe_cent {
    xe_cent *next;
    const char *ref;
    int cls;
    bool ok;
    xcp_value rec;
};

/* ---- errors ---- */

int xe_fail(xe_ctx *ctx, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ctx->err.kind = XE_E_CLI;
    ctx->err.text = xe_vsprintf(&ctx->arena, fmt, ap);
    va_end(ap);
    return -1;
}

int xe_fail_api(xe_ctx *ctx, const char *name, size_t n,
                const char *const *params)
{
    size_t i;

    ctx->err.kind = XE_E_API;
    ctx->err.name = xe_strdup(&ctx->arena, name);
    ctx->err.nparams = n;
    ctx->err.params = xe_alloc(&ctx->arena, (n + 1) * sizeof(char *));
    for (i = 0; i < n; i++)
        ctx->err.params[i] = xe_strdup(&ctx->arena, params[i]);
    return -1;
}

int xe_fail_lib(xe_ctx *ctx)
{
    const xcp_error *e = xcp_error_last();
    static const char *const none[] = {"xe: call failed without an error"};

    if (e == NULL || e->name == NULL)
        return xe_fail_api(ctx, "INTERNAL_ERROR", 1, none);
    return xe_fail_api(ctx, e->name, e->nparams, e->params);
}

/* ---- parameters ---- */

const char *xe_param(xe_ctx *ctx, const char *key)
{
    return xe_params_get(&ctx->params, key);
}

int xe_param_bool(xe_ctx *ctx, const char *key, bool def, bool *out)
{
    const char *v = xe_param(ctx, key);

    *out = def;
    if (v == NULL)
        return 0;
    if (xe_parse_bool(v, out) == 0)
        return 0;
    return xe_fail(ctx,
                   "Failed to parse parameter '%s': Expected 'true','t','yes',"
                   "'y','1','false','f','no','n','0' got %s",
                   key, v);
}

int xe_param_bytes(xe_ctx *ctx, const char *key, int64_t *out)
{
    const char *v = xe_param(ctx, key);

    if (v != NULL && xe_parse_bytes(v, out) == 0)
        return 0;
    return xe_fail(ctx,
                   "Failed to parse field '%s': expecting an integer "
                   "(possibly with suffix KiB, MiB, GiB, TiB), got '%s'",
                   key, v != NULL ? v : "");
}

bool xe_is_stdparam(const char *key)
{
    static const char *const std[] = {
        "server", "password", "port",  "username",         "minimal",
        "force",  "multiple", "all",   "message-priority", "trace",
    };
    size_t i;

    for (i = 0; i < XE_ARRAY_LEN(std); i++)
        if (strcmp(key, std[i]) == 0)
            return true;
    return false;
}

/* ---- calls ---- */

void xe_args_init(xe_args *a)
{
    memset(a, 0, sizeof(*a));
}

static xcp_value *next_arg(xe_args *a)
{
    if (a->n >= XE_ARRAY_LEN(a->v))
        abort(); /* a programming error: no message takes more */
    return &a->v[a->n++];
}

void xe_args_str(xe_args *a, const char *s)
{
    xcp_value_set_string(next_arg(a), s);
}

void xe_args_int(xe_args *a, int64_t i)
{
    xcp_value_set_int(next_arg(a), i);
}

void xe_args_bool(xe_args *a, bool b)
{
    xcp_value_set_bool(next_arg(a), b);
}

void xe_args_float(xe_args *a, double f)
{
    xcp_value_set_float(next_arg(a), f);
}

void xe_args_value(xe_args *a, xcp_value *v)
{
    *next_arg(a) = *v;
    v->kind = XCP_VAL_NONE;
}

void xe_args_dispose(xe_args *a)
{
    size_t i;

    for (i = 0; i < a->n; i++)
        xcp_value_dispose(&a->v[i]);
    a->n = 0;
}

static double mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The debug line of a call: its method, outcome and time. */
static void debug_call(xe_ctx *ctx, const char *method, int rc, double t0)
{
    const xcp_error *e = rc < 0 ? xcp_error_last() : NULL;

    xe_io_debug(ctx, "%s: %s (%.3f ms)", method,
                rc < 0 ? (e != NULL && e->name != NULL ? e->name : "failed")
                       : "ok",
                mono_ms() - t0);
}

int xe_call_quiet(xe_ctx *ctx, xcp_value *result, const char *method,
                  xe_args *args)
{
    bool dbg = xe_io_debugging(ctx);
    double t0 = dbg ? mono_ms() : 0;
    int rc;

    if (result != NULL)
        memset(result, 0, sizeof(*result));
    rc = xcp_call(ctx->s, result, method, args->n, args->v);
    xe_args_dispose(args);
    if (dbg)
        debug_call(ctx, method, rc, t0);
    return rc < 0 ? -1 : 0;
}

int xe_call(xe_ctx *ctx, xcp_value *result, const char *method,
            xe_args *args)
{
    if (xe_call_quiet(ctx, result, method, args) < 0)
        return xe_fail_lib(ctx);
    return 0;
}

int xe_call_async(xe_ctx *ctx, xcp_value *result, const char *method,
                  xe_args *args)
{
    xcp_value task;
    int rc = -1;

    if (result != NULL)
        memset(result, 0, sizeof(*result));
    if (xe_call(ctx, &task, xe_sprintf(&ctx->arena, "Async.%s", method),
                args) < 0)
        return -1;
    if (task.kind != XCP_VAL_STRING) {
        xe_fail(ctx, "%s did not return a task", method);
        goto out;
    }
    if (xcp_task_wait(ctx->s, result, task.u.s) < 0) {
        xe_fail_lib(ctx);
        goto out;
    }
    rc = 0;
out:
    xcp_value_dispose(&task);
    return rc;
}

int xe_call_str(xe_ctx *ctx, const char **out, const char *method,
                xe_args *args)
{
    xcp_value v;
    int rc = 0;

    *out = NULL;
    if (xe_call(ctx, &v, method, args) < 0)
        return -1;
    if (v.kind == XCP_VAL_STRING)
        *out = xe_strdup(&ctx->arena, v.u.s);
    else
        rc = xe_fail(ctx, "%s did not return a string", method);
    xcp_value_dispose(&v);
    return rc;
}

int xe_call1(xe_ctx *ctx, const char *method, const char *self)
{
    xe_args a;

    xe_args_init(&a);
    xe_args_str(&a, self);
    return xe_call(ctx, NULL, method, &a);
}

int xe_get_value(xe_ctx *ctx, const char *method, const char *self,
                 xcp_value *out)
{
    xe_args a;

    xe_args_init(&a);
    xe_args_str(&a, self);
    return xe_call(ctx, out, method, &a);
}

int xe_get_str(xe_ctx *ctx, const char *method, const char *self,
               const char **out)
{
    xe_args a;

    xe_args_init(&a);
    xe_args_str(&a, self);
    return xe_call_str(ctx, out, method, &a);
}

int xe_get_bool(xe_ctx *ctx, const char *method, const char *self,
                bool *out)
{
    xcp_value v;

    if (xe_get_value(ctx, method, self, &v) < 0)
        return -1;
    *out = v.kind == XCP_VAL_BOOL && v.u.b;
    xcp_value_dispose(&v);
    return 0;
}

int xe_try_value(xe_ctx *ctx, const char *method, const char *self,
                 xcp_value *out)
{
    xe_args a;

    xe_args_init(&a);
    xe_args_str(&a, self);
    return xe_call_quiet(ctx, out, method, &a);
}

const char *xe_try_str(xe_ctx *ctx, const char *method, const char *self)
{
    xcp_value v;
    const char *r = NULL;

    if (xe_try_value(ctx, method, self, &v) == 0 && v.kind == XCP_VAL_STRING)
        r = xe_strdup(&ctx->arena, v.u.s);
    xcp_value_dispose(&v);
    return r;
}

int xe_get_by_uuid(xe_ctx *ctx, const char *api_cls, const char *uuid,
                   const char **ref)
{
    xe_args a;

    xe_args_init(&a);
    xe_args_str(&a, uuid);
    return xe_call_str(ctx, ref,
                       xe_sprintf(&ctx->arena, "%s.get_by_uuid", api_cls),
                       &a);
}

/* ---- record cache ---- */

static unsigned hash_ref(const char *s, int cls)
{
    unsigned h = 2166136261u ^ (unsigned)cls;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % XE_CACHE_BUCKETS;
}

static xe_cent *cache_find(xe_ctx *ctx, int cls, const char *ref)
{
    xe_cent *e;

    for (e = ctx->cache.b[hash_ref(ref, cls)]; e != NULL; e = e->next)
        if (e->cls == cls && strcmp(e->ref, ref) == 0)
            return e;
    return NULL;
}

/* Insert; *rec is moved in (NULL: a failed lookup). A newer entry for
 * the same ref shadows the older one, which stays alive until
 * xe_cache_clear(): callers may still hold pointers into it. */
static xe_cent *cache_put(xe_ctx *ctx, int cls, const char *ref,
                          xcp_value *rec)
{
    xe_cent *e = calloc(1, sizeof(*e));
    unsigned h = hash_ref(ref, cls);

    if (e == NULL) {
        fputs("xe: out of memory\n", stderr);
        exit(1);
    }
    e->ref = xe_strdup(&ctx->arena, ref);
    e->cls = cls;
    e->next = ctx->cache.b[h];
    ctx->cache.b[h] = e;
    e->ok = rec != NULL;
    if (rec != NULL) {
        e->rec = *rec;
        rec->kind = XCP_VAL_NONE;
    }
    return e;
}

void xe_cache_clear(xe_ctx *ctx)
{
    size_t i;
    xe_cent *e, *next;

    for (i = 0; i < XE_CACHE_BUCKETS; i++) {
        for (e = ctx->cache.b[i]; e != NULL; e = next) {
            next = e->next;
            xcp_value_dispose(&e->rec);
            free(e);
        }
        ctx->cache.b[i] = NULL;
    }
    xcp_value_dispose(&ctx->cache.partial);
}

const xcp_value *xe_record(xe_ctx *ctx, int cls, const char *ref)
{
    xe_cent *e;
    xe_args a;
    xcp_value v;

    if (cls < 0 || ref == NULL || xcp_ref_is_null(ref))
        return NULL;
    e = cache_find(ctx, cls, ref);
    if (e == NULL) {
        xe_args_init(&a);
        xe_args_str(&a, ref);
        if (xe_call_quiet(ctx, &v,
                          xe_sprintf(&ctx->arena, "%s.get_record",
                                     xcp_class_name(cls)),
                          &a) < 0
            || v.kind != XCP_VAL_RECORD) {
            xcp_value_dispose(&v);
            e = cache_put(ctx, cls, ref, NULL);
        } else {
            e = cache_put(ctx, cls, ref, &v);
        }
    }
    return e->ok ? &e->rec : NULL;
}

int xe_all_records(xe_ctx *ctx, int cls, xe_strv *refs)
{
    xcp_value all;
    xe_args a;
    size_t i;

    xe_args_init(&a);
    if (xe_call(ctx, &all,
                xe_sprintf(&ctx->arena, "%s.get_all_records",
                           xcp_class_name(cls)),
                &a) < 0)
        return -1;
    if (all.kind == XCP_VAL_STRUCT) {
        for (i = 0; i < all.u.st.n; i++) {
            if (all.u.st.vals[i].kind != XCP_VAL_RECORD)
                continue;
            cache_put(ctx, cls, all.u.st.keys[i], &all.u.st.vals[i]);
            xe_strv_add(refs, xe_strdup(&ctx->arena, all.u.st.keys[i]));
        }
    }
    xcp_value_dispose(&all);
    return 0;
}

int xe_partial_records(xe_ctx *ctx, int cls, const char *const *fields,
                       size_t nfields, xe_strv *refs,
                       const xcp_value ***recs)
{
    xcp_value *all = &ctx->cache.partial;
    size_t i;
    bool dbg = xe_io_debugging(ctx);
    double t0 = dbg ? mono_ms() : 0;
    int rc;

    xcp_value_dispose(all);
    rc = xcp_get_records_fields(ctx->s, all, xcp_class_name(cls), NULL,
                                nfields, fields);
    if (dbg)
        debug_call(ctx, xe_sprintf(&ctx->arena, "%s records (some fields)",
                                   xcp_class_name(cls)), rc, t0);
    if (rc < 0)
        return xe_fail_lib(ctx);
    *recs = xe_alloc(&ctx->arena, (all->u.st.n + 1) * sizeof(**recs));
    for (i = 0; i < all->u.st.n; i++) {
        xe_strv_add(refs, all->u.st.keys[i]);
        (*recs)[i] = &all->u.st.vals[i];
    }
    return 0;
}

const xcp_value *xe_rec_field(const xcp_value *rec, const char *name)
{
    if (rec == NULL)
        return NULL;
    return xcp_value_struct_get(rec, name);
}

const char *xe_rec_str(const xcp_value *rec, const char *name)
{
    const xcp_value *v = xe_rec_field(rec, name);

    return v != NULL && v->kind == XCP_VAL_STRING ? v->u.s : NULL;
}

bool xe_rec_bool(const xcp_value *rec, const char *name)
{
    const xcp_value *v = xe_rec_field(rec, name);

    return v != NULL && v->kind == XCP_VAL_BOOL && v->u.b;
}

int xe_class_id(const char *api_name)
{
    return xcp_class_by_name(api_name);
}

const char *xe_ref_uuid(xe_ctx *ctx, int cls, const char *ref)
{
    return xe_rec_str(xe_record(ctx, cls, ref), "uuid");
}

const char *xe_ref_name(xe_ctx *ctx, int cls, const char *ref)
{
    return xe_rec_str(xe_record(ctx, cls, ref), "name_label");
}

/* The class of a ref of unknown class: try every stored class. */
static int ref_class(xe_ctx *ctx, const char *ref)
{
    int cls, n = xcp_class_count();

    if (!xe_prefix(ref, "OpaqueRef:") || xcp_ref_is_null(ref))
        return -1;
    for (cls = 0; cls < n; cls++) {
        xe_cent *e = cache_find(ctx, cls, ref);

        if (e != NULL && e->ok)
            return cls;
    }
    for (cls = 0; cls < n; cls++) {
        if (xcp_class_flags(cls) & XCP_CLASS_NODB)
            continue;
        if (xe_record(ctx, cls, ref) != NULL)
            return cls;
    }
    return -1;
}

const char *xe_any_ref_uuid(xe_ctx *ctx, const char *ref)
{
    int cls = ref_class(ctx, ref);

    return cls < 0 ? NULL : xe_ref_uuid(ctx, cls, ref);
}

const char *xe_ref_convert(xe_ctx *ctx, const char *s)
{
    int cls = ref_class(ctx, s);
    const char *uuid, *name;

    if (cls < 0)
        return s;
    uuid = xe_ref_uuid(ctx, cls, s);
    if (uuid == NULL)
        return s;
    name = xe_ref_name(ctx, cls, s);
    if (name == NULL)
        return uuid;
    return xe_sprintf(&ctx->arena, "%s (%s)", uuid, name);
}

/* ---- create structs ---- */

static bool has_field(int cls, const char *f)
{
    return xcp_class_field_index(cls, f) >= 0;
}

void xe_struct_value(xcp_value *st, int cls, const char *f, xcp_value *v)
{
    if (has_field(cls, f))
        xcp_value_struct_add(st, f, v);
    xcp_value_dispose(v);
}

void xe_struct_str(xcp_value *st, int cls, const char *f, const char *s)
{
    xcp_value v;

    xcp_value_set_string(&v, s);
    xe_struct_value(st, cls, f, &v);
}

void xe_struct_int(xcp_value *st, int cls, const char *f, int64_t i)
{
    xcp_value v;

    xcp_value_set_int(&v, i);
    xe_struct_value(st, cls, f, &v);
}

void xe_struct_bool(xcp_value *st, int cls, const char *f, bool b)
{
    xcp_value v;

    xcp_value_set_bool(&v, b);
    xe_struct_value(st, cls, f, &v);
}

void xe_struct_float(xcp_value *st, int cls, const char *f, double d)
{
    xcp_value v;

    xcp_value_set_float(&v, d);
    xe_struct_value(st, cls, f, &v);
}

void xe_struct_empty_map(xcp_value *st, int cls, const char *f)
{
    xcp_value v;

    xcp_value_set_struct(&v);
    xe_struct_value(st, cls, f, &v);
}

void xe_struct_empty_set(xcp_value *st, int cls, const char *f)
{
    xcp_value v;

    xcp_value_set_array(&v, 0);
    xe_struct_value(st, cls, f, &v);
}
