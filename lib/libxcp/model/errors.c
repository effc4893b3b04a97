/*
 * Errors as the model knows them: lookups in the generated error table
 * (gen_errors.c), and the thread's error as a value (what a task keeps)
 * and back.
 */
#include "model.h"

int xcp__error_to_value(xcp_value *out)
{
    const xcp_error *e = xcp_error_last();
    size_t i;
    int rc;

    if (!e)
        return xcp_value_set_array(out, 0);
    rc = xcp_value_set_array(out, 1 + e->nparams);
    if (rc < 0)
        return rc;
    if (xcp_value_set_string(&out->u.arr.items[0], e->name) < 0)
        goto oom;
    for (i = 0; i < e->nparams; i++)
        if (xcp_value_set_string(&out->u.arr.items[1 + i],
                                 e->params[i]) < 0)
            goto oom;
    return 0;
oom:
    xcp_value_dispose(out);
    return XCP_ENOMEM;
}

int xcp__error_from_value(const xcp_value *v)
{
    const char *p[XCP__ERROR_MAX_PARAMS];
    size_t i, n;

    if (v->kind != XCP_VAL_ARRAY || v->u.arr.n == 0 ||
        v->u.arr.items[0].kind != XCP_VAL_STRING)
        return xcp__internal("task failed without error information");
    n = v->u.arr.n - 1;
    if (n > XCP__ERROR_MAX_PARAMS)
        n = XCP__ERROR_MAX_PARAMS;
    for (i = 0; i < n; i++) {
        const xcp_value *it = &v->u.arr.items[1 + i];
        p[i] = it->kind == XCP_VAL_STRING ? it->u.s : "";
    }
    return xcp__failv(v->u.arr.items[0].u.s, n, p);
}

void xcp__error_save(xcp__saved_error *s)
{
    s->set = xcp_error_last() && xcp__error_to_value(&s->v) == 0;
}

void xcp__error_restore(xcp__saved_error *s)
{
    if (!s->set) {
        xcp_error_clear();
        return;
    }
    xcp__error_from_value(&s->v);
    xcp_value_dispose(&s->v);
    s->set = false;
}

static const struct xcp__errdesc *lookup(const char *name)
{
    size_t lo = 0, hi = xcp__nerrors;

    while (name && lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(name, xcp__errors[mid].name);
        if (c == 0)
            return &xcp__errors[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *xcp_error_description(const char *name)
{
    const struct xcp__errdesc *d = lookup(name);

    return d ? d->desc : NULL;
}

const char *const *xcp_error_param_names(size_t *n, const char *name)
{
    const struct xcp__errdesc *d = lookup(name);

    if (n)
        *n = d ? d->nparams : 0;
    return d ? d->params : NULL;
}
