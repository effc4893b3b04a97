/*
 * Projections: the few fields of a class's records that a listing needs
 * (xe vm-list), as STRUCTs of field name -> value, so that get_all_records
 * of a large pool need not carry, encode or decode the whole of every
 * record. Shared by the server (xcpd's get_all_records_where with a field
 * list), the remote driver and the local fallback.
 */
#include "model.h"

#include <stdio.h>

int xcp__fields_parse(int cls, const xcp_value *list, int **out, size_t *n)
{
    size_t i;
    int *f;

    *out = NULL;
    *n = 0;
    if (!list || list->kind != XCP_VAL_ARRAY)
        return XCP__ERR_INVALID_VALUE("fields", "not a list of names");
    if (!(f = xcp__calloc(list->u.arr.n + 1, sizeof(*f))))
        return xcp__oom();
    for (i = 0; i < list->u.arr.n; i++) {
        const xcp_value *v = &list->u.arr.items[i];
        size_t j;
        if (v->kind != XCP_VAL_STRING ||
            (f[*n] = xcp_class_field_index(cls, v->u.s)) < 0) {
            int rc = XCP__ERR_INVALID_VALUE(
                "fields", v->kind == XCP_VAL_STRING ? v->u.s : "");
            free(f);
            *n = 0;
            return rc;
        }
        for (j = 0; j < *n && f[j] != f[*n]; j++)
            ;
        if (j == *n) /* a field named twice is given once */
            (*n)++;
    }
    *out = f;
    return 0;
}

int xcp__record_project(xcp_value *rec, const int *fields, size_t n,
                        xcp_value *out)
{
    const struct xcp__class *c;
    size_t i;
    int rc;

    if (rec->kind != XCP_VAL_RECORD)
        return xcp__internal("projecting a value that is not a record");
    c = &xcp__classes[rec->u.rec.cls];
    xcp_value_set_struct(out);
    for (i = 0; i < n; i++) {
        xcp_value v;
        xcp__value_move(&v, &rec->u.rec.fields[fields[i]]);
        if ((rc = xcp_value_struct_add(out, c->fields[fields[i]].name,
                                       &v)) < 0) {
            xcp_value_dispose(&v);
            xcp_value_dispose(out);
            return rc;
        }
    }
    return 0;
}

int xcp__records_project(xcp_value *all, const int *fields, size_t n)
{
    size_t i;
    int rc;

    if (all->kind != XCP_VAL_STRUCT)
        return xcp__internal("projecting a value that is not a map");
    for (i = 0; i < all->u.st.n; i++) {
        xcp_value p;
        if ((rc = xcp__record_project(&all->u.st.vals[i], fields, n,
                                      &p)) < 0)
            return rc;
        xcp_value_dispose(&all->u.st.vals[i]);
        all->u.st.vals[i] = p;
    }
    return 0;
}
