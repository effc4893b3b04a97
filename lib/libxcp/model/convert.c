/*
 * Conversions driven by the model's type tables: the typed C API's
 * representations <-> generic values, checking and normalising incoming
 * arguments (what XAPI calls unmarshalling), default values, and the
 * XML-RPC <value> fragment used for task results.
 */
#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <strings.h>

struct carray {
    size_t n;
    void *items;
};

struct crecmap {
    size_t n;
    void *refs;
    void *records;
};

void xcp__c_dispose(const struct xcp__type *t, void *p)
{
    size_t i;

    switch (t->crep) {
    case XC_STRING:
        free(*(char **)p);
        *(char **)p = NULL;
        break;
    case XC_ARRAY: {
        struct carray *a = p;
        const struct xcp__type *e = t->a;
        if (e->crep == XC_STRING || e->crep == XC_ARRAY ||
            e->crep == XC_STRMAP || e->crep == XC_RECORD ||
            e->crep == XC_VALUE)
            for (i = 0; i < a->n; i++)
                xcp__c_dispose(e, (char *)a->items + i * e->csize);
        free(a->items);
        a->items = NULL;
        a->n = 0;
        break;
    }
    case XC_STRMAP:
        xcp_string_map_dispose(p);
        break;
    case XC_RECORD: {
        const struct xcp__class *c = &xcp__classes[t->id];
        for (i = 0; i < c->nfields; i++)
            xcp__c_dispose(c->fields[i].type, (char *)p + c->fields[i].coff);
        memset(p, 0, c->rec_size);
        break;
    }
    case XC_RECMAP: {
        struct crecmap *m = p;
        const struct xcp__class *c = &xcp__classes[t->b->id];
        for (i = 0; i < m->n; i++)
            xcp__c_dispose(t->b, (char *)m->records + i * c->rec_size);
        free(m->refs);
        free(m->records);
        memset(m, 0, sizeof(*m));
        break;
    }
    case XC_VALUE:
        xcp_value_dispose(p);
        break;
    default:
        break;
    }
}

static int type_error(const char *what, const char *expected,
                      const xcp_value *v)
{
    static const char *const kinds[] = {"nothing", "string", "int", "float",
                                        "bool", "datetime", "array",
                                        "struct", "record"};
    char *msg = xcp__printf("Expected %s, got %s for %s", expected,
                            kinds[v->kind], what ? what : "value");
    int rc = XCP__ERR_INTERNAL_ERROR(msg ? msg : "type error");

    free(msg);
    return rc;
}

int xcp__scalar_parse(const struct xcp__type *t, const char *s,
                      xcp_value *out)
{
    char *end;

    out->kind = XCP_VAL_NONE;
    switch (t->kind) {
    case XT_INT: {
        long long x;
        errno = 0;
        x = strtoll(s, &end, 10);
        if (errno || end == s || *end)
            return XCP_EINVAL;
        xcp_value_set_int(out, (int64_t)x);
        return 0;
    }
    case XT_FLOAT: {
        double d;
        int rc = xcp__parse_double(s, &d);
        if (rc < 0)
            return rc;
        xcp_value_set_float(out, d);
        return 0;
    }
    case XT_BOOL:
        if (!strcasecmp(s, "true"))
            xcp_value_set_bool(out, true);
        else if (!strcasecmp(s, "false"))
            xcp_value_set_bool(out, false);
        else
            return XCP_EINVAL;
        return 0;
    case XT_DATETIME: {
        xcp_datetime d;
        if (xcp_datetime_parse(&d, s) < 0)
            return XCP_EINVAL;
        xcp_value_set_datetime(out, d);
        return 0;
    }
    default:
        return XCP_EINVAL;
    }
}

/* Replace string *v by the scalar of type t it spells: as
 * xcp__scalar_parse, *v unchanged on failure. */
static int parse_in_place(const struct xcp__type *t, xcp_value *v)
{
    xcp_value n;
    int rc = xcp__scalar_parse(t, v->u.s, &n);

    if (rc == 0) {
        xcp_value_dispose(v);
        *v = n;
    }
    return rc;
}

int xcp__enum_canon(const struct xcp__enum *en, char **s)
{
    int idx = xcp__enum_index(en, *s);
    char *c;

    if (idx < 0)
        return XCP_EINVAL;
    if (strcmp(*s, en->values[idx]) != 0) {
        if (!(c = xcp__strdup(en->values[idx])))
            return xcp__oom();
        free(*s);
        *s = c;
    }
    return idx;
}

/* Map values travel as strings in the typed API; give them their type. */
static int scalar_from_text(const struct xcp__type *t, const char *s,
                            xcp_value *out)
{
    int rc;

    switch (t->kind) {
    case XT_INT:
    case XT_FLOAT:
    case XT_BOOL:
    case XT_DATETIME:
        rc = xcp__scalar_parse(t, s, out);
        return rc == XCP_EINVAL ? XCP__ERR_INVALID_VALUE("map value", s)
                                : rc;
    default:
        return xcp_value_set_string(out, s);
    }
}

int xcp__c_to_value(const struct xcp__type *t, const void *p, xcp_value *out,
                    bool ctor)
{
    size_t i;
    int rc;

    out->kind = XCP_VAL_NONE;
    if (!p) /* a NULL set/map/record pointer: the empty value */
        return xcp__value_default(t, NULL, out);
    switch (t->crep) {
    case XC_STRING:
        return xcp_value_set_string(out, *(char *const *)p);
    case XC_INT:
        xcp_value_set_int(out, *(const int64_t *)p);
        return 0;
    case XC_FLOAT:
        xcp_value_set_float(out, *(const double *)p);
        return 0;
    case XC_BOOL:
        xcp_value_set_bool(out, *(const bool *)p);
        return 0;
    case XC_DATETIME:
        xcp_value_set_datetime(out, *(const xcp_datetime *)p);
        return 0;
    case XC_REF: {
        const char *r = (const char *)p;
        return xcp_value_set_string(out, *r ? r : XCP_NULL_REF);
    }
    case XC_ENUM: {
        int e = *(const int *)p;
        const struct xcp__enum *en = &xcp__enums[t->id];
        if (e < 0 || (size_t)e >= en->n) {
            char num[24];
            snprintf(num, sizeof(num), "%d", e);
            return XCP__ERR_INVALID_VALUE(en->name, num);
        }
        return xcp_value_set_string(out, en->values[e]);
    }
    case XC_ARRAY: {
        const struct carray *a = p;
        if ((rc = xcp_value_set_array(out, a->n)) < 0)
            return rc;
        for (i = 0; i < a->n; i++) {
            rc = xcp__c_to_value(t->a, (const char *)a->items +
                                 i * t->a->csize, &out->u.arr.items[i],
                                 ctor);
            if (rc < 0)
                goto fail;
        }
        return 0;
    }
    case XC_STRMAP: {
        const xcp_string_map *m = p;
        xcp_value_set_struct(out);
        for (i = 0; i < m->n; i++) {
            xcp_value v;
            rc = scalar_from_text(t->b, m->items[i].value, &v);
            if (rc < 0)
                goto fail;
            rc = xcp_value_struct_add(out, m->items[i].key, &v);
            if (rc < 0) {
                xcp_value_dispose(&v);
                goto fail;
            }
        }
        return 0;
    }
    case XC_RECORD: {
        const struct xcp__class *c = &xcp__classes[t->id];
        if ((rc = xcp__rec_alloc(out, t->id)) < 0)
            return rc;
        for (i = 0; i < c->nfields; i++) {
            const struct xcp__field *f = &c->fields[i];
            if (ctor && f->qual != XQ_ROS && f->qual != XQ_RW &&
                f->qual != XQ_RWS)
                continue;
            rc = xcp__c_to_value(f->type, (const char *)p + f->coff,
                                 &out->u.rec.fields[i], ctor);
            if (rc < 0)
                goto fail;
        }
        return 0;
    }
    case XC_RECMAP: {
        const struct crecmap *m = p;
        const struct xcp__class *c = &xcp__classes[t->b->id];
        xcp_value_set_struct(out);
        for (i = 0; i < m->n; i++) {
            xcp_value v;
            const char *r = (const char *)m->refs + i * XCP_REF_MAX;
            rc = xcp__c_to_value(t->b, (const char *)m->records +
                                 i * c->rec_size, &v, ctor);
            if (rc < 0)
                goto fail;
            rc = xcp_value_struct_add(out, r, &v);
            if (rc < 0) {
                xcp_value_dispose(&v);
                goto fail;
            }
        }
        return 0;
    }
    case XC_VALUE:
        return xcp_value_copy(out, p);
    default:
        return 0;
    }
fail:
    xcp_value_dispose(out);
    return rc;
}

int xcp__value_to_c(const struct xcp__type *t, const xcp_value *v, void *p)
{
    size_t i;
    int rc;

    switch (t->crep) {
    case XC_STRING:
        if (v->kind != XCP_VAL_STRING)
            return type_error("result", "string", v);
        if (!(*(char **)p = xcp__strdup(v->u.s)))
            return xcp__oom();
        return 0;
    case XC_INT:
        if (v->kind == XCP_VAL_INT) {
            *(int64_t *)p = v->u.i;
            return 0;
        }
        if (v->kind == XCP_VAL_STRING) {
            xcp_value n;
            if ((rc = xcp__scalar_parse(t, v->u.s, &n)) == 0)
                *(int64_t *)p = n.u.i;
            if (rc != XCP_EINVAL)
                return rc;
        }
        return type_error("result", "int", v);
    case XC_FLOAT:
        if (v->kind == XCP_VAL_FLOAT)
            *(double *)p = v->u.f;
        else if (v->kind == XCP_VAL_INT)
            *(double *)p = (double)v->u.i;
        else
            return type_error("result", "float", v);
        return 0;
    case XC_BOOL:
        if (v->kind != XCP_VAL_BOOL)
            return type_error("result", "bool", v);
        *(bool *)p = v->u.b;
        return 0;
    case XC_DATETIME:
        if (v->kind == XCP_VAL_DATETIME) {
            *(xcp_datetime *)p = v->u.t;
            return 0;
        }
        if (v->kind == XCP_VAL_STRING &&
            xcp_datetime_parse((xcp_datetime *)p, v->u.s) == 0)
            return 0;
        return type_error("result", "datetime", v);
    case XC_REF:
        if (v->kind != XCP_VAL_STRING)
            return type_error("result", "ref", v);
        if (strlen(v->u.s) >= XCP_REF_MAX)
            return XCP__ERR_INVALID_VALUE("ref", v->u.s);
        memset(p, 0, XCP_REF_MAX);
        strcpy(p, v->u.s);
        return 0;
    case XC_ENUM:
        if (v->kind != XCP_VAL_STRING)
            return type_error("result", "enum", v);
        *(int *)p = xcp__enum_index(&xcp__enums[t->id], v->u.s);
        return 0;
    case XC_ARRAY: {
        struct carray *a = p;
        if (v->kind != XCP_VAL_ARRAY)
            return type_error("result", "array", v);
        a->n = 0;
        a->items = xcp__calloc(v->u.arr.n, t->a->csize);
        if (!a->items)
            return xcp__oom();
        for (i = 0; i < v->u.arr.n; i++) {
            rc = xcp__value_to_c(t->a, &v->u.arr.items[i],
                                 (char *)a->items + i * t->a->csize);
            if (rc < 0) {
                xcp__c_dispose(t, p);
                return rc;
            }
            a->n = i + 1;
        }
        return 0;
    }
    case XC_STRMAP: {
        xcp_string_map *m = p;
        memset(m, 0, sizeof(*m));
        if (v->kind != XCP_VAL_STRUCT)
            return type_error("result", "map", v);
        m->items = xcp__calloc(v->u.st.n, sizeof(*m->items));
        if (!m->items)
            return xcp__oom();
        for (i = 0; i < v->u.st.n; i++) {
            m->items[i].key = xcp__strdup(v->u.st.keys[i]);
            m->items[i].value = xcp_value_to_text(&v->u.st.vals[i]);
            m->n = i + 1;
            if (!m->items[i].key || !m->items[i].value) {
                xcp_string_map_dispose(m);
                return xcp__oom();
            }
        }
        return 0;
    }
    case XC_RECORD: {
        const struct xcp__class *c = &xcp__classes[t->id];
        memset(p, 0, c->rec_size);
        for (i = 0; i < c->nfields; i++) {
            const struct xcp__field *f = &c->fields[i];
            const xcp_value *fv;
            xcp_value def;
            if (v->kind == XCP_VAL_RECORD && v->u.rec.cls == t->id)
                fv = &v->u.rec.fields[i];
            else if (v->kind == XCP_VAL_STRUCT)
                fv = xcp_value_struct_get(v, f->name);
            else
                return type_error("result", "record", v);
            if (!fv || fv->kind == XCP_VAL_NONE) {
                /* Absent (older server): the field's default. */
                if (xcp__value_default(f->type, f->def, &def) < 0) {
                    xcp__c_dispose(t, p);
                    return XCP_ENOMEM;
                }
                rc = def.kind == XCP_VAL_NONE ? 0 :
                     xcp__value_to_c(f->type, &def, (char *)p + f->coff);
                xcp_value_dispose(&def);
            } else {
                xcp_value tmp;
                if ((rc = xcp_value_copy(&tmp, fv)) < 0) {
                    xcp__c_dispose(t, p);
                    return rc;
                }
                rc = xcp__value_check(f->type, &tmp, f->name);
                if (rc == 0)
                    rc = xcp__value_to_c(f->type, &tmp, (char *)p + f->coff);
                xcp_value_dispose(&tmp);
            }
            if (rc < 0) {
                xcp__c_dispose(t, p);
                return rc;
            }
        }
        return 0;
    }
    case XC_RECMAP: {
        struct crecmap *m = p;
        const struct xcp__class *c = &xcp__classes[t->b->id];
        memset(m, 0, sizeof(*m));
        if (v->kind != XCP_VAL_STRUCT)
            return type_error("result", "map", v);
        m->refs = xcp__calloc(v->u.st.n, XCP_REF_MAX);
        m->records = xcp__calloc(v->u.st.n, c->rec_size);
        if (!m->refs || !m->records) {
            xcp__c_dispose(t, p);
            return xcp__oom();
        }
        for (i = 0; i < v->u.st.n; i++) {
            xcp_value k;
            k.kind = XCP_VAL_STRING;
            k.u.s = v->u.st.keys[i];
            rc = xcp__value_to_c(t->a, &k, (char *)m->refs + i * XCP_REF_MAX);
            if (rc == 0)
                rc = xcp__value_to_c(t->b, &v->u.st.vals[i],
                                     (char *)m->records + i * c->rec_size);
            if (rc < 0) {
                xcp__c_dispose(t, p);
                return rc;
            }
            m->n = i + 1;
        }
        return 0;
    }
    case XC_VALUE:
        return xcp_value_copy(p, v);
    default:
        return 0;
    }
}

int xcp__rec_from_struct(xcp_value *v, int cls, xcp__field_fix fix,
                         void *arg)
{
    const struct xcp__class *c = &xcp__classes[cls];
    bool *sent = xcp__calloc(c->nfields ? c->nfields : 1, sizeof(*sent));
    xcp_value rec;
    size_t i;
    int rc;

    if (!sent)
        return xcp__oom();
    if ((rc = xcp__rec_alloc(&rec, cls)) < 0)
        goto out;
    for (i = 0; i < v->u.st.n; i++) {
        int f = xcp_class_field_index(cls, v->u.st.keys[i]);
        if (f < 0 || sent[f])
            continue;
        xcp__value_move(&rec.u.rec.fields[f], &v->u.st.vals[i]);
        sent[f] = true;
    }
    for (i = 0; i < c->nfields && rc == 0; i++)
        rc = fix(&c->fields[i], &rec.u.rec.fields[i], sent[i], arg);
    if (rc < 0) {
        xcp_value_dispose(&rec);
        goto out;
    }
    xcp_value_dispose(v);
    *v = rec;
out:
    free(sent);
    return rc;
}

/* A record's field from a caller: checked as its type, absent left so. */
static int check_field(const struct xcp__field *f, xcp_value *fv, bool sent,
                       void *arg)
{
    (void)arg;
    return sent ? xcp__value_check(f->type, fv, f->name) : 0;
}

bool xcp__value_as_float(xcp_value *v)
{
    if (v->kind == XCP_VAL_INT)
        xcp_value_set_float(v, (double)v->u.i);
    return v->kind == XCP_VAL_FLOAT;
}

int xcp__value_check(const struct xcp__type *t, xcp_value *v,
                     const char *what)
{
    size_t i;
    int rc;

    switch (t->kind) {
    case XT_STRING:
    case XT_REF:
        if (v->kind != XCP_VAL_STRING)
            return type_error(what, "string", v);
        return 0;
    case XT_INT:
        if (v->kind == XCP_VAL_INT)
            return 0;
        if (v->kind == XCP_VAL_STRING &&
            (rc = parse_in_place(t, v)) != XCP_EINVAL)
            return rc;
        return type_error(what, "int64", v);
    case XT_FLOAT:
        if (xcp__value_as_float(v))
            return 0;
        if (v->kind == XCP_VAL_STRING &&
            (rc = parse_in_place(t, v)) != XCP_EINVAL)
            return rc;
        return type_error(what, "float", v);
    case XT_BOOL:
        if (v->kind != XCP_VAL_BOOL)
            return type_error(what, "bool", v);
        return 0;
    case XT_DATETIME:
        if (v->kind == XCP_VAL_DATETIME)
            return 0;
        if (v->kind == XCP_VAL_STRING) {
            if ((rc = parse_in_place(t, v)) != XCP_EINVAL)
                return rc;
            return XCP__ERR_INVALID_VALUE(what ? what : "datetime",
                                          v->u.s);
        }
        return type_error(what, "datetime", v);
    case XT_ENUM: {
        const struct xcp__enum *en = &xcp__enums[t->id];
        if (v->kind != XCP_VAL_STRING)
            return type_error(what, en->name, v);
        rc = xcp__enum_canon(en, &v->u.s);
        if (rc == XCP_EINVAL)
            return XCP__ERR_INVALID_VALUE(what ? what : en->name,
                                          v->u.s);
        return rc < 0 ? rc : 0;
    }
    case XT_SET:
        if (v->kind != XCP_VAL_ARRAY)
            return type_error(what, "array", v);
        for (i = 0; i < v->u.arr.n; i++)
            if ((rc = xcp__value_check(t->a, &v->u.arr.items[i], what)) < 0)
                return rc;
        return 0;
    case XT_MAP:
        if (v->kind != XCP_VAL_STRUCT)
            return type_error(what, "struct", v);
        for (i = 0; i < v->u.st.n; i++) {
            /* Enum keys are canonicalised like enum values ("START" is
             * "start"), as the remote driver does with results; two keys
             * that name one value are refused (they would collide). */
            if (t->a->kind == XT_ENUM) {
                size_t j;
                rc = xcp__enum_canon(&xcp__enums[t->a->id],
                                     &v->u.st.keys[i]);
                if (rc == XCP_EINVAL)
                    return XCP__ERR_INVALID_VALUE(
                        what ? what : "map key",
                        v->u.st.keys[i]);
                if (rc < 0)
                    return rc;
                for (j = 0; j < i; j++)
                    if (!strcmp(v->u.st.keys[j], v->u.st.keys[i]))
                        return XCP__ERR_INVALID_VALUE(
                            what ? what : "map key",
                            v->u.st.keys[i]);
            }
            if ((rc = xcp__value_check(t->b, &v->u.st.vals[i], what)) < 0)
                return rc;
        }
        return 0;
    case XT_RECORD:
        if (v->kind == XCP_VAL_RECORD && v->u.rec.cls == t->id)
            return 0;
        if (v->kind != XCP_VAL_STRUCT)
            return type_error(what, "struct", v);
        return xcp__rec_from_struct(v, t->id, check_field, NULL);
    default:
        return 0;
    }
}

int xcp__value_default(const struct xcp__type *t, const char *lit,
                       xcp_value *out)
{
    out->kind = XCP_VAL_NONE;
    switch (t->kind) {
    case XT_STRING:
        return xcp_value_set_string(out, lit ? lit : "");
    case XT_REF:
        return xcp_value_set_string(out, (lit && strcmp(lit, "NULL"))
                                    ? lit : XCP_NULL_REF);
    case XT_INT:
        xcp_value_set_int(out, lit ? strtoll(lit, NULL, 10) : 0);
        return 0;
    case XT_FLOAT:
        xcp_value_set_float(out, lit ? strtod(lit, NULL) : 0.0);
        return 0;
    case XT_BOOL:
        xcp_value_set_bool(out, lit && !strcasecmp(lit, "true"));
        return 0;
    case XT_DATETIME:
        xcp_value_set_datetime(out, 0);
        if (lit)
            xcp_datetime_parse(&out->u.t, lit);
        return 0;
    case XT_ENUM: {
        const struct xcp__enum *en = &xcp__enums[t->id];
        return xcp_value_set_string(out, lit ? lit : en->values[0]);
    }
    case XT_SET:
        return xcp_value_set_array(out, 0);
    case XT_MAP:
        xcp_value_set_struct(out);
        return 0;
    default:
        return 0;
    }
}

const xcp_value *xcp__rec_field(const xcp_value *rec, int field)
{
    if (!rec || rec->kind != XCP_VAL_RECORD || field < 0 ||
        (size_t)field >= xcp__classes[rec->u.rec.cls].nfields)
        return NULL;
    return &rec->u.rec.fields[field];
}

int xcp__rec_alloc(xcp_value *out, int cls)
{
    out->kind = XCP_VAL_NONE;
    out->u.rec.fields = xcp__calloc(xcp__classes[cls].nfields,
                                    sizeof(xcp_value));
    if (!out->u.rec.fields)
        return xcp__oom();
    out->u.rec.cls = cls;
    out->kind = XCP_VAL_RECORD;
    return 0;
}

bool xcp__value_equal(const xcp_value *a, const xcp_value *b)
{
    size_t i;

    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case XCP_VAL_NONE:
        return true;
    case XCP_VAL_STRING:
        return strcmp(a->u.s, b->u.s) == 0;
    case XCP_VAL_INT:
        return a->u.i == b->u.i;
    case XCP_VAL_FLOAT:
        return a->u.f == b->u.f || (isnan(a->u.f) && isnan(b->u.f));
    case XCP_VAL_BOOL:
        return a->u.b == b->u.b;
    case XCP_VAL_DATETIME:
        return a->u.t == b->u.t;
    case XCP_VAL_ARRAY:
        if (a->u.arr.n != b->u.arr.n)
            return false;
        for (i = 0; i < a->u.arr.n; i++)
            if (!xcp__value_equal(&a->u.arr.items[i], &b->u.arr.items[i]))
                return false;
        return true;
    case XCP_VAL_STRUCT:
        if (a->u.st.n != b->u.st.n)
            return false;
        for (i = 0; i < a->u.st.n; i++) {
            const xcp_value *o = xcp_value_struct_get(b, a->u.st.keys[i]);
            if (!o || !xcp__value_equal(&a->u.st.vals[i], o))
                return false;
        }
        return true;
    case XCP_VAL_RECORD:
        if (a->u.rec.cls != b->u.rec.cls)
            return false;
        for (i = 0; i < xcp__classes[a->u.rec.cls].nfields; i++)
            if (!xcp__value_equal(&a->u.rec.fields[i], &b->u.rec.fields[i]))
                return false;
        return true;
    }
    return false;
}
