/*
 * xe: the commands generated for every CLI class: <class>-list and
 * <class>-param-list/-get/-set/-add/-remove/-clear, with XAPI's semantics
 * (cli_operations.ml make_param_funs): filters, params= selection,
 * --minimal, map:key= and legacy map-key= parameters, read-only checks.
 */
#include "fields.h"

#include <string.h>

static const xe_class *klass(xe_ctx *ctx)
{
    return ctx->cmd_data;
}

static bool wanted(const xe_strv *params, const xe_field *f)
{
    return params == NULL || xe_strv_has(params, f->name);
}

/* The fields a listing shows, in record order (hidden ones never). */
static const xe_field **columns(xe_ctx *ctx, const xe_class *cc,
                                const xe_strv *params, size_t *n)
{
    const xe_field **cols = xe_alloc(&ctx->arena,
                                     (cc->nfields + 1) * sizeof(*cols));
    size_t i;

    *n = 0;
    for (i = 0; i < cc->nfields; i++)
        if (!(cc->fields[i].flags & XE_F_HIDDEN)
            && wanted(params, &cc->fields[i]))
            cols[(*n)++] = &cc->fields[i];
    /* --minimal prints the first column only: nothing else is read. */
    if (ctx->out.minimal && *n > 1)
        *n = 1;
    return cols;
}

static int obj_rows(xe_ctx *ctx, const xe_obj *o, const xe_field **cols,
                    size_t ncols, bool expensive_ok, xe_table_rec *rec)
{
    size_t i;
    const xe_field *f;
    const char *v;

    rec->n = 0;
    rec->rows = xe_alloc(&ctx->arena, (ncols + 1) * sizeof(xe_row));
    for (i = 0; i < ncols; i++) {
        f = cols[i];
        if ((f->flags & XE_F_EXPENSIVE) && !expensive_ok)
            v = "<expensive field>";
        else if (xe_field_text(ctx, o, f, &v) < 0)
            return -1;
        rec->rows[rec->n].label = xe_field_label(ctx, f);
        rec->rows[rec->n].value = v;
        rec->n++;
    }
    return 0;
}

int xe_print_objs(xe_ctx *ctx, const xe_obj *objs, size_t n,
                  const xe_strv *params, bool expensive_ok)
{
    xe_table_rec *recs = xe_alloc(&ctx->arena, (n + 1) * sizeof(*recs));
    const xe_field **cols = NULL;
    size_t i, ncols = 0;

    if (n > 0)
        cols = columns(ctx, objs[0].cc, params, &ncols);
    for (i = 0; i < n; i++)
        if (obj_rows(ctx, &objs[i], cols, ncols, expensive_ok, &recs[i]) < 0)
            return -1;
    xe_print_table(ctx, recs, n);
    return 0;
}

/* Astring.String.cuts ~sep:",": always at least one piece. */
static void cuts(xe_strv *out, const char *s)
{
    const char *p;

    for (;;) {
        p = strchr(s, ',');
        if (p == NULL) {
            xe_strv_add(out, xe_strdup(out->a, s));
            return;
        }
        xe_strv_add(out, xe_strndup(out->a, s, (size_t)(p - s)));
        s = p + 1;
    }
}

/* choose_params: params=a,b / params=all / the class defaults; NULL means
 * every field. */
static const xe_strv *choose_params(xe_ctx *ctx, const xe_class *cc)
{
    const char *p = xe_param(ctx, "params");
    xe_strv *sv = xe_alloc(&ctx->arena, sizeof(*sv));
    size_t i;

    xe_strv_init(sv, &ctx->arena);
    if (p != NULL) {
        if (strcmp(p, "all") == 0)
            return NULL;
        cuts(sv, p);
    } else {
        for (i = 0; cc->defaults[i] != NULL; i++)
            xe_strv_add(sv, cc->defaults[i]);
    }
    return sv->n == 0 ? NULL : sv;
}

static bool list_filter_param(const char *k)
{
    return strcmp(k, "params") != 0 && !xe_is_stdparam(k)
           && !xe_prefix(k, "database:");
}

/* Add the field a filter key names (NULL when it names none: the filter
 * reports that itself, later). */
static void add_filter_field(xe_ctx *ctx, const xe_class *cc, const char *k,
                             const xe_field **fs, size_t *n)
{
    xe_err saved = ctx->err;
    xe_ftype type;
    const xe_field *f;

    if (xe_field_type(ctx, cc, k, &type, &f) < 0) {
        ctx->err = saved;
        f = NULL;
    }
    fs[(*n)++] = f;
}

/* The objects of a listing, with what its filters and printed fields read
 * (xe_objs_some), or whole when the fields cannot be told (params=all, an
 * unknown filter). */
static int list_objs(xe_ctx *ctx, const xe_class *cc, const xe_strv *params,
                     xe_obj **objs, size_t *n)
{
    const xe_field **fs, **cols;
    size_t i, k = 0, ncols;

    if (params == NULL)
        return xe_objs_all(ctx, cc, objs, n);
    fs = xe_alloc(&ctx->arena,
                  (cc->nfields + ctx->params.n + 8) * sizeof(*fs));
    for (i = 0; cc->filters[i] != NULL; i += 2)
        add_filter_field(ctx, cc, cc->filters[i], fs, &k);
    for (i = 0; i < ctx->params.n; i++)
        if (list_filter_param(ctx->params.v[i].key))
            add_filter_field(ctx, cc, ctx->params.v[i].key, fs, &k);
    for (i = 0; i < k; i++)
        if (fs[i] == NULL)
            return xe_objs_all(ctx, cc, objs, n);
    cols = columns(ctx, cc, params, &ncols);
    for (i = 0; i < ncols; i++)
        if (!(cols[i]->flags & XE_F_EXPENSIVE)) /* shown, not evaluated */
            fs[k++] = cols[i];
    return xe_objs_some(ctx, cc, fs, k, objs, n);
}

int xe_gen_list(xe_ctx *ctx)
{
    const xe_class *cc = klass(ctx);
    const xe_strv *params = choose_params(ctx, cc);
    xe_obj *all, *objs;
    size_t nall, n, i;
    bool print_all;

    if (list_objs(ctx, cc, params, &all, &nall) < 0)
        return -1;
    objs = xe_alloc(&ctx->arena, (nall + 1) * sizeof(*objs));
    memcpy(objs, all, nall * sizeof(*objs));
    n = nall;
    for (i = 0; cc->filters[i] != NULL; i += 2)
        if (xe_filter(ctx, objs, &n, cc->filters[i], cc->filters[i + 1]) < 0)
            return -1;
    for (i = 0; i < ctx->params.n; i++) {
        const xe_kv *p = &ctx->params.v[i];

        if (list_filter_param(p->key)
            && xe_filter(ctx, objs, &n, p->key, p->val) < 0)
            return -1;
    }
    if (xe_param_bool(ctx, "all", false, &print_all) < 0)
        return -1;
    if (print_all)
        return xe_print_objs(ctx, all, nall, params, false);
    return xe_print_objs(ctx, objs, n, params, false);
}

static int the_obj(xe_ctx *ctx, xe_obj *o)
{
    return xe_obj_by_uuid(ctx, klass(ctx), xe_param(ctx, "uuid"), o);
}

int xe_gen_param_list(xe_ctx *ctx)
{
    xe_obj o;

    if (the_obj(ctx, &o) < 0)
        return -1;
    return xe_print_objs(ctx, &o, 1, NULL, true);
}

/* field_lookup: an unknown name is XAPI's "Missing parameter" error */
static int lookup(xe_ctx *ctx, const char *name, const xe_field **f)
{
    *f = xe_field_find(klass(ctx), name);
    if (*f == NULL)
        return xe_fail_api(ctx, "Missing parameter", 1, &name);
    return 0;
}

static int map_lookup(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                      const char *key, const char **out)
{
    xe_err saved = ctx->err;
    xe_fval v;
    size_t i;

    if (xe_field_eval(ctx, o, f, &v) == 0)
        for (i = 0; i < v.keys.n && i < v.vals.n; i++)
            if (strcmp(v.keys.v[i], key) == 0) {
                *out = v.vals.v[i];
                return 0;
            }
    ctx->err = saved;
    return xe_fail(ctx, "Key %s not found in map", key);
}

int xe_gen_param_get(xe_ctx *ctx)
{
    xe_obj o;
    const xe_field *f;
    const char *key = xe_param(ctx, "param-key"), *v;

    if (the_obj(ctx, &o) < 0 || lookup(ctx, xe_param(ctx, "param-name"),
                                       &f) < 0)
        return -1;
    if (key != NULL && (f->flags & XE_F_MAP)) {
        if (map_lookup(ctx, &o, f, key, &v) < 0)
            return -1;
    } else if (xe_field_text(ctx, &o, f, &v) < 0) {
        return -1;
    }
    xe_print_line(ctx, v);
    return 0;
}

/* Pending whole-map writes of param-set (fields with set_map). */
typedef struct map_acc {
    const xe_field *f;
    xe_strv keys, vals;
} map_acc;

static map_acc *acc_for(xe_ctx *ctx, map_acc *accs, size_t *n,
                        const xe_field *f)
{
    size_t i;

    for (i = 0; i < *n; i++)
        if (accs[i].f == f)
            return &accs[i];
    accs[*n].f = f;
    xe_strv_init(&accs[*n].keys, &ctx->arena);
    xe_strv_init(&accs[*n].vals, &ctx->arena);
    return &accs[(*n)++];
}

static bool has_key(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                    const char *key)
{
    xe_err saved = ctx->err;
    xe_fval v;

    if (xe_field_eval(ctx, o, f, &v) < 0) {
        ctx->err = saved;
        return false;
    }
    return xe_strv_has(&v.keys, key);
}

static int set_map_entry(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                         const char *key, const char *v, map_acc *accs,
                         size_t *nacc)
{
    map_acc *acc;

    if (f->flags & XE_F_SETINMAP)
        return xe_field_map_set_in(ctx, o, f, key, v);
    if (f->flags & XE_F_SETMAP) {
        acc = acc_for(ctx, accs, nacc, f);
        xe_strv_add(&acc->keys, key);
        xe_strv_add(&acc->vals, v);
        return 0;
    }
    if (!(f->flags & XE_F_MAPRW))
        return xe_fail(ctx, "Map field '%s' is read-only.", f->name);
    if (has_key(ctx, o, f, key) && xe_field_map_remove(ctx, o, f, key) < 0)
        return -1;
    return xe_field_map_add(ctx, o, f, key, v);
}

static int set_one(xe_ctx *ctx, const xe_obj *o, const char *k,
                   const char *v, map_acc *accs, size_t *nacc)
{
    xe_ftype type;
    const xe_field *f;

    if (xe_field_type(ctx, o->cc, k, &type, &f) < 0)
        return -1;
    if (type == XE_FT_MAP)
        return set_map_entry(ctx, o, f, k + strlen(f->name) + 1, v, accs,
                             nacc);
    if (type == XE_FT_SET)
        return xe_fail(ctx, "Cannot param-set on set fields");
    if (f->flags & XE_F_RW)
        return xe_field_set(ctx, o, f, v);
    if (f->flags & XE_F_MAPRW)
        return xe_fail(ctx, "Field '%s' is a map or set. use the "
                            "'name:key=value' syntax.", k);
    return xe_fail(ctx, "Field '%s' is read-only.", k);
}

/* XAPI accumulates set_map pairs newest first. */
static int flush_maps(xe_ctx *ctx, const xe_obj *o, map_acc *accs,
                      size_t nacc)
{
    size_t i, j;
    xe_strv k, v;

    for (i = 0; i < nacc; i++) {
        xe_strv_init(&k, &ctx->arena);
        xe_strv_init(&v, &ctx->arena);
        for (j = accs[i].keys.n; j > 0; j--) {
            xe_strv_add(&k, accs[i].keys.v[j - 1]);
            xe_strv_add(&v, accs[i].vals.v[j - 1]);
        }
        if (xe_field_map_replace(ctx, o, accs[i].f, &k, &v) < 0)
            return -1;
    }
    return 0;
}

int xe_gen_param_set(xe_ctx *ctx)
{
    xe_obj o;
    map_acc *accs;
    size_t i, nacc = 0;
    const xe_kv *p;

    if (the_obj(ctx, &o) < 0)
        return -1;
    accs = xe_alloc(&ctx->arena, (ctx->params.n + 1) * sizeof(*accs));
    for (i = 0; i < ctx->params.n; i++) {
        p = &ctx->params.v[i];
        if (strcmp(p->key, "uuid") == 0 || xe_is_stdparam(p->key))
            continue;
        if (set_one(ctx, &o, p->key, p->val, accs, &nacc) < 0)
            return -1;
    }
    return flush_maps(ctx, &o, accs, nacc);
}

static bool add_filter_param(const char *k)
{
    return strcmp(k, "uuid") != 0 && strcmp(k, "param-name") != 0
           && strcmp(k, "param-key") != 0 && !xe_is_stdparam(k);
}

int xe_gen_param_add(xe_ctx *ctx)
{
    xe_obj o;
    const xe_field *f;
    const char *key = xe_param(ctx, "param-key");
    size_t i;

    if (the_obj(ctx, &o) < 0
        || lookup(ctx, xe_param(ctx, "param-name"), &f) < 0)
        return -1;
    if (f->flags & XE_F_SETRW) {
        if (key == NULL)
            return xe_fail(ctx, "When adding a key to a set, use the syntax: "
                                "*-param-add param-name=<name> "
                                "param-key=<key>");
        return xe_field_set_add(ctx, &o, f, key);
    }
    if (f->flags & XE_F_MAPRW) {
        for (i = 0; i < ctx->params.n; i++)
            if (add_filter_param(ctx->params.v[i].key)
                && xe_field_map_add(ctx, &o, f, ctx->params.v[i].key,
                                    ctx->params.v[i].val) < 0)
                return -1;
        return 0;
    }
    if (f->flags & (XE_F_SET | XE_F_MAP))
        return xe_fail(ctx, "Parameter is read-only");
    return xe_fail(ctx, "Can only add to parameters of type Set or Map");
}

int xe_gen_param_remove(xe_ctx *ctx)
{
    xe_obj o;
    const xe_field *f;
    const char *key = xe_param(ctx, "param-key");

    if (the_obj(ctx, &o) < 0
        || lookup(ctx, xe_param(ctx, "param-name"), &f) < 0)
        return -1;
    if ((f->flags & XE_F_SET) && (f->flags & XE_F_SETRW)) {
        if (!has_key(ctx, &o, f, key))
            return xe_fail(ctx, "Key %s is not in the set", key);
        return xe_field_set_remove(ctx, &o, f, key);
    }
    if ((f->flags & XE_F_MAP) && (f->flags & XE_F_MAPRW)) {
        if (!has_key(ctx, &o, f, key))
            return xe_fail(ctx, "Key %s is not in map", key);
        return xe_field_map_remove(ctx, &o, f, key);
    }
    if (f->flags & (XE_F_SET | XE_F_MAP))
        return xe_fail(ctx, "Cannot remove parameters from read-only map");
    return xe_fail(ctx, "Can only remove from parameters of type Set or "
                        "Map");
}

static int clear_members(xe_ctx *ctx, const xe_obj *o, const xe_field *f,
                         bool is_set)
{
    xe_fval v;
    size_t i;

    if (xe_field_eval(ctx, o, f, &v) < 0)
        return -1;
    for (i = 0; i < v.keys.n; i++)
        if ((is_set ? xe_field_set_remove(ctx, o, f, v.keys.v[i])
                    : xe_field_map_remove(ctx, o, f, v.keys.v[i])) < 0)
            return -1;
    return 0;
}

int xe_gen_param_clear(xe_ctx *ctx)
{
    xe_obj o;
    const xe_field *f;
    xe_strv none;

    if (the_obj(ctx, &o) < 0
        || lookup(ctx, xe_param(ctx, "param-name"), &f) < 0)
        return -1;
    xe_strv_init(&none, &ctx->arena);
    if ((f->flags & XE_F_SET) && (f->flags & XE_F_SETRW))
        return clear_members(ctx, &o, f, true);
    if (f->flags & XE_F_CLEARMAP)
        return xe_field_map_replace(ctx, &o, f, &none, &none);
    if (f->flags & XE_F_SETMAP)
        return xe_field_map_replace(ctx, &o, f, &none, &none);
    if ((f->flags & XE_F_MAP) && (f->flags & XE_F_MAPRW))
        return clear_members(ctx, &o, f, false);
    if (f->flags & XE_F_RW) {
        if (xe_field_set(ctx, &o, f, "") < 0)
            return xe_fail(ctx, "Cannot clear this parameter");
        return 0;
    }
    return xe_fail(ctx, "Can only clear RW parameters");
}
