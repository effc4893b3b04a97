/*
 * Slices of a streamed get_all_records(_where) (the server's stream.c):
 * a run of records read under one hold of the engine lock, whole or only
 * some of their fields, so that a reply of 10,000 records takes the lock
 * a few hundred times, not once per record, and copies only what it
 * sends. Records are what the generated get_record gives (every field as
 * stored); no class has hand-written policy for reading its records.
 */
#include "engine.h"

struct slice {
    const char *session;
    int cls;
    const xcp_value *refs;
    size_t n;
    const int *fields;
    size_t nfields;
    xcp_value *out;
};

/* One record (or its chosen fields) into *out; NONE when it is gone. */
static int read_one(xcp__ctx *c, const struct slice *s, const char *ref,
                    xcp_value *out)
{
    const struct xcp__class *k = &xcp__classes[s->cls];
    xcp__obj *o = xcp__db_get_cls(c->db, s->cls, ref);
    size_t i;
    int rc;

    out->kind = XCP_VAL_NONE;
    if (!o)
        return 0;
    if (!s->fields)
        return xcp__obj_record(o, out);
    xcp_value_set_struct(out);
    for (i = 0; i < s->nfields; i++) {
        xcp_value v;
        if ((rc = xcp_value_copy(&v, xcp__obj_val(o, s->fields[i]))) < 0 ||
            (rc = xcp_value_struct_add(out, k->fields[s->fields[i]].name,
                                       &v)) < 0) {
            xcp_value_dispose(&v);
            xcp_value_dispose(out);
            return rc;
        }
    }
    return 0;
}

static int read_slice(xcp__ctx *c, void *arg)
{
    const struct slice *s = arg;
    size_t i;
    int rc;

    if (!xcp__db_get_cls(c->db, C(session), s->session))
        return XCP__ERR_SESSION_INVALID(s->session);
    for (i = 0; i < s->n; i++) {
        const xcp_value *r = &s->refs[i];
        s->out[i].kind = XCP_VAL_NONE;
        if (r->kind == XCP_VAL_STRING &&
            (rc = read_one(c, s, r->u.s, &s->out[i])) < 0)
            goto fail;
    }
    return 0;
fail:
    while (i-- > 0)
        xcp_value_dispose(&s->out[i]);
    return rc;
}

int xcp__engine_read_slice(xcp__engine *e, const char *session, int cls,
                           const xcp_value *refs, size_t n,
                           const int *fields, size_t nfields,
                           xcp_value *out)
{
    struct slice s = {session, cls, refs, n, fields, nfields, out};

    return xcp__engine_txn(e, read_slice, &s);
}
