/*
 * xcp_get_records_fields: some fields of the records of a class, for
 * listings. The session driver reads just those fields (local: from the
 * engine; remote: xcpd sends only them); when the server cannot (XAPI),
 * it is get_all_records(_where) with the other fields dropped here.
 */
#include "../internal.h"

#include <stdio.h>

int xcp_get_records_fields(xcp_session *s, xcp_value *result,
                           const char *cls_name, const char *where,
                           size_t nfields, const char *const *fields)
{
    xcp_value names, arg;
    char wire[128];
    int *idx = NULL, cls, rc;
    size_t i, n = 0;

    xcp_error_clear();
    names.kind = arg.kind = XCP_VAL_NONE;
    if (!s || !result || !cls_name || (nfields && !fields))
        return XCP__ERR_INVALID_VALUE("xcp_get_records_fields", "");
    result->kind = XCP_VAL_NONE;
    if ((cls = xcp_class_by_name(cls_name)) < 0)
        return XCP__ERR_INVALID_VALUE("class", cls_name);
    if ((rc = xcp_value_set_array(&names, nfields)) < 0)
        return rc;
    for (i = 0; i < nfields; i++)
        if ((rc = xcp_value_set_string(&names.u.arr.items[i],
                                       fields[i] ? fields[i] : "")) < 0)
            goto out;
    if ((rc = xcp__fields_parse(cls, &names, &idx, &n)) < 0)
        goto out;
    if (s->ops->records_fields) {
        rc = s->ops->records_fields(s, cls, where, idx, n, &names, result);
        if (rc <= 0)
            goto out;
        xcp_error_clear(); /* the server cannot: do it here */
    }
    /* Without a condition, the plain message: no expression per row. */
    snprintf(wire, sizeof(wire), "%s.get_all_records%s",
             xcp__classes[cls].name, where ? "_where" : "");
    if (where && (rc = xcp_value_set_string(&arg, where)) < 0)
        goto out;
    if ((rc = xcp_call(s, result, wire, where ? 1 : 0, &arg)) < 0)
        goto out;
    if ((rc = xcp__records_project(result, idx, n)) < 0)
        xcp_value_dispose(result);
out:
    free(idx);
    xcp_value_dispose(&names);
    xcp_value_dispose(&arg);
    return rc;
}
