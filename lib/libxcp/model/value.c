/*
 * Generic XenAPI values (value.h), the walks that reach into records and
 * so need the model's classes: disposal, deep copy, member lookup, and
 * text rendering as xe shows it. Construction is core/value.c.
 */
#include "model.h"

void xcp_value_dispose(xcp_value *v)
{
    size_t i, n;

    if (!v)
        return;
    switch (v->kind) {
    case XCP_VAL_STRING:
        free(v->u.s);
        break;
    case XCP_VAL_ARRAY:
        for (i = 0; i < v->u.arr.n; i++)
            xcp_value_dispose(&v->u.arr.items[i]);
        free(v->u.arr.items);
        break;
    case XCP_VAL_STRUCT:
        for (i = 0; i < v->u.st.n; i++) {
            free(v->u.st.keys[i]);
            xcp_value_dispose(&v->u.st.vals[i]);
        }
        free(v->u.st.keys);
        free(v->u.st.vals);
        break;
    case XCP_VAL_RECORD:
        n = xcp__classes[v->u.rec.cls].nfields;
        for (i = 0; i < n; i++)
            xcp_value_dispose(&v->u.rec.fields[i]);
        free(v->u.rec.fields);
        break;
    default:
        break;
    }
    v->kind = XCP_VAL_NONE;
}

int xcp_value_copy(xcp_value *dst, const xcp_value *src)
{
    size_t i, n;

    dst->kind = XCP_VAL_NONE;
    switch (src->kind) {
    case XCP_VAL_STRING:
        return xcp_value_set_string(dst, src->u.s);
    case XCP_VAL_ARRAY:
        if (xcp_value_set_array(dst, src->u.arr.n) < 0)
            return XCP_ENOMEM;
        for (i = 0; i < src->u.arr.n; i++)
            if (xcp_value_copy(&dst->u.arr.items[i], &src->u.arr.items[i]) < 0)
                goto fail;
        return 0;
    case XCP_VAL_STRUCT:
        n = src->u.st.n;
        dst->kind = XCP_VAL_STRUCT;
        dst->u.st.n = 0;
        dst->u.st.keys = xcp__calloc(n, sizeof(char *));
        dst->u.st.vals = xcp__calloc(n, sizeof(xcp_value));
        if (!dst->u.st.keys || !dst->u.st.vals)
            goto fail;
        for (i = 0; i < n; i++) {
            dst->u.st.keys[i] = xcp__strdup(src->u.st.keys[i]);
            dst->u.st.n = i + 1;
            if (!dst->u.st.keys[i] ||
                xcp_value_copy(&dst->u.st.vals[i], &src->u.st.vals[i]) < 0)
                goto fail;
        }
        return 0;
    case XCP_VAL_RECORD:
        n = xcp__classes[src->u.rec.cls].nfields;
        if (xcp__rec_alloc(dst, src->u.rec.cls) < 0)
            return XCP_ENOMEM;
        for (i = 0; i < n; i++)
            if (xcp_value_copy(&dst->u.rec.fields[i],
                               &src->u.rec.fields[i]) < 0)
                goto fail;
        return 0;
    default:
        *dst = *src;
        return 0;
    }
fail:
    xcp_value_dispose(dst);
    return xcp__oom();
}

const xcp_value *xcp_value_struct_get(const xcp_value *st, const char *key)
{
    size_t i;

    if (!st || !key)
        return NULL;
    if (st->kind == XCP_VAL_RECORD) {
        int f = xcp_class_field_index(st->u.rec.cls, key);
        return f < 0 ? NULL : &st->u.rec.fields[f];
    }
    if (st->kind != XCP_VAL_STRUCT)
        return NULL;
    for (i = 0; i < st->u.st.n; i++)
        if (strcmp(st->u.st.keys[i], key) == 0)
            return &st->u.st.vals[i];
    return NULL;
}

static void to_text(const xcp_value *v, xcp__buf *b)
{
    size_t i;
    char tbuf[32];

    switch (v->kind) {
    case XCP_VAL_NONE:
        break;
    case XCP_VAL_STRING:
        xcp__buf_adds(b, v->u.s);
        break;
    case XCP_VAL_INT:
        xcp__buf_printf(b, "%lld", (long long)v->u.i);
        break;
    case XCP_VAL_FLOAT:
        xcp__buf_printf(b, "%.3f", v->u.f);
        break;
    case XCP_VAL_BOOL:
        xcp__buf_adds(b, v->u.b ? "true" : "false");
        break;
    case XCP_VAL_DATETIME:
        xcp_datetime_format(tbuf, sizeof(tbuf), v->u.t);
        xcp__buf_adds(b, tbuf);
        break;
    case XCP_VAL_ARRAY:
        for (i = 0; i < v->u.arr.n; i++) {
            if (i)
                xcp__buf_adds(b, "; ");
            to_text(&v->u.arr.items[i], b);
        }
        break;
    case XCP_VAL_STRUCT:
        for (i = 0; i < v->u.st.n; i++) {
            if (i)
                xcp__buf_adds(b, "; ");
            xcp__buf_adds(b, v->u.st.keys[i]);
            xcp__buf_adds(b, ": ");
            to_text(&v->u.st.vals[i], b);
        }
        break;
    case XCP_VAL_RECORD:
        xcp__buf_printf(b, "<%s record>", xcp__classes[v->u.rec.cls].name);
        break;
    }
}

char *xcp_value_to_text(const xcp_value *v)
{
    xcp__buf b = {0};

    to_text(v, &b);
    return xcp__buf_steal(&b);
}
