/*
 * The generated ("implicit") messages of every class, served from the
 * model's tables: get_record, get_by_uuid, get_by_name_label, get_all,
 * get_all_records(_where), get_<field>, set_<field>, add_to_/remove_from_
 * (maps), add_/remove_ (sets), create and destroy. A class with special
 * rules for create/destroy registers an explicit implementation instead;
 * hooks here keep derived state (allowed_operations) right.
 */
#include "engine.h"

#include <stdio.h>
#include <strings.h>

int xcp__records_of(xcp__obj *const *objs, size_t n, xcp_value *out)
{
    size_t i;
    int rc;

    /* Sized once: a struct grown entry by entry would copy O(n^2). */
    out->kind = XCP_VAL_STRUCT;
    out->u.st.n = 0;
    out->u.st.keys = xcp__calloc(n, sizeof(char *));
    out->u.st.vals = xcp__calloc(n, sizeof(xcp_value));
    if (!out->u.st.keys || !out->u.st.vals) {
        xcp_value_dispose(out);
        return xcp__oom();
    }
    for (i = 0; i < n; i++) {
        out->u.st.keys[i] = xcp__strdup(objs[i]->ref);
        if (!out->u.st.keys[i]) {
            xcp_value_dispose(out);
            return xcp__oom();
        }
        out->u.st.n = i + 1;
        out->u.st.vals[i].kind = XCP_VAL_NONE;
        if ((rc = xcp__obj_record(objs[i], &out->u.st.vals[i])) < 0) {
            xcp_value_dispose(out);
            return rc;
        }
    }
    return 0;
}

static int refs_of(xcp__obj *const *objs, size_t n, xcp_value *out)
{
    size_t i;
    int rc;

    if ((rc = xcp_value_set_array(out, n)) < 0)
        return rc;
    for (i = 0; i < n; i++)
        if ((rc = xcp_value_set_string(&out->u.arr.items[i],
                                       objs[i]->ref)) < 0) {
            xcp_value_dispose(out);
            return rc;
        }
    return 0;
}

/* ---- get_all_records_where: the small expression language of §7.1 ---- */

enum tk { TK_END, TK_FIELD, TK_STR, TK_EQ, TK_AND, TK_OR, TK_NOT, TK_TRUE,
          TK_FALSE, TK_LP, TK_RP, TK_BAD };

struct lexer {
    const char *p;
    enum tk tok;
    char *str;
    int depth;
};

static void lex(struct lexer *l)
{
    const char *p = l->p;

    free(l->str);
    l->str = NULL;
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    if (!*p) {
        l->tok = TK_END;
    } else if (*p == '"') {
        xcp__buf b = {0};
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            xcp__buf_addc(&b, *p);
        }
        if (*p != '"') {
            xcp__buf_free(&b);
            l->tok = TK_BAD;
        } else {
            p++;
            l->str = xcp__buf_steal(&b);
            if (!l->str)
                l->str = xcp__strdup("");
            l->tok = TK_STR;
        }
    } else if (*p == '=') {
        p++;
        l->tok = TK_EQ;
    } else if (*p == '(') {
        p++;
        l->tok = TK_LP;
    } else if (*p == ')') {
        p++;
        l->tok = TK_RP;
    } else {
        static const struct { const char *w; enum tk t; } kw[] = {
            {"field", TK_FIELD}, {"and", TK_AND}, {"or", TK_OR},
            {"not", TK_NOT}, {"true", TK_TRUE}, {"false", TK_FALSE}};
        size_t i, n = 0;
        while (p[n] && ((p[n] >= 'a' && p[n] <= 'z') ||
                        (p[n] >= 'A' && p[n] <= 'Z')))
            n++;
        l->tok = TK_BAD;
        for (i = 0; i < XCP__ARRAY_LEN(kw); i++) {
            if (n == strlen(kw[i].w) && !strncasecmp(p, kw[i].w, n)) {
                l->tok = kw[i].t;
                break;
            }
        }
        p += n ? n : 1;
    }
    l->p = p;
}

/* An expression node. */
struct expr {
    enum tk op;            /* TK_EQ, TK_AND, TK_OR, TK_NOT, TK_TRUE/FALSE */
    struct expr *a, *b;
    int fa, fb;            /* field indexes for =, or -1 for literals */
    char *la, *lb;
};

static void expr_free(struct expr *e)
{
    if (!e)
        return;
    expr_free(e->a);
    expr_free(e->b);
    free(e->la);
    free(e->lb);
    free(e);
}

static struct expr *parse_or(struct lexer *l, int cls);

/* Column names use __ for namespaces: name__label -> name_label. */
static int column(int cls, const char *name)
{
    char buf[128];
    size_t i, o = 0;

    for (i = 0; name[i] && o + 1 < sizeof(buf); i++) {
        if (name[i] == '_' && name[i + 1] == '_') {
            buf[o++] = '_';
            i++;
        } else {
            buf[o++] = name[i];
        }
    }
    buf[o] = '\0';
    return xcp_class_field_index(cls, buf);
}

static bool parse_value(struct lexer *l, int cls, int *field, char **lit)
{
    *field = -1;
    *lit = NULL;
    if (l->tok == TK_FIELD) {
        lex(l);
        if (l->tok != TK_STR)
            return false;
        *field = column(cls, l->str);
        if (*field < 0)
            return false;
        lex(l);
        return true;
    }
    if (l->tok == TK_STR) {
        *lit = l->str;
        l->str = NULL;
        lex(l);
        return true;
    }
    return false;
}

static struct expr *parse_atom(struct lexer *l, int cls)
{
    struct expr *e = xcp__calloc(1, sizeof(*e));

    if (!e || ++l->depth > 64)
        goto fail;
    if (l->tok == TK_LP) {
        free(e);
        lex(l);
        e = parse_or(l, cls);
        if (!e || l->tok != TK_RP) {
            expr_free(e);
            return NULL;
        }
        lex(l);
        l->depth--;
        return e;
    }
    if (l->tok == TK_NOT) {
        lex(l);
        e->op = TK_NOT;
        if (!(e->a = parse_atom(l, cls)))
            goto fail;
        l->depth--;
        return e;
    }
    if (l->tok == TK_TRUE || l->tok == TK_FALSE) {
        e->op = l->tok;
        lex(l);
        l->depth--;
        return e;
    }
    e->op = TK_EQ;
    if (!parse_value(l, cls, &e->fa, &e->la) || l->tok != TK_EQ)
        goto fail;
    lex(l);
    if (!parse_value(l, cls, &e->fb, &e->lb))
        goto fail;
    l->depth--;
    return e;
fail:
    expr_free(e);
    return NULL;
}

/* operand (op operand)*, left-associative: the and and or levels. */
static struct expr *parse_chain(struct lexer *l, int cls, enum tk op,
                                struct expr *(*operand)(struct lexer *, int))
{
    struct expr *a = operand(l, cls);

    while (a && l->tok == op) {
        struct expr *e = xcp__calloc(1, sizeof(*e));
        lex(l);
        if (!e) {
            expr_free(a);
            return NULL;
        }
        e->op = op;
        e->a = a;
        e->b = operand(l, cls);
        if (!e->b) {
            expr_free(e);
            return NULL;
        }
        a = e;
    }
    return a;
}

static struct expr *parse_and(struct lexer *l, int cls)
{
    return parse_chain(l, cls, TK_AND, parse_atom);
}

static struct expr *parse_or(struct lexer *l, int cls)
{
    return parse_chain(l, cls, TK_OR, parse_and);
}

/* The DB string form of a field: what the expression compares. */
static char *db_string(const xcp__obj *o, int f)
{
    const xcp_value *v = xcp__obj_val(o, f);

    if (v->kind == XCP_VAL_BOOL)
        return xcp__strdup(v->u.b ? "true" : "false");
    return xcp_value_to_text(v);
}

static bool eval(const struct expr *e, const xcp__obj *o)
{
    char *a, *b;
    bool r;

    switch (e->op) {
    case TK_TRUE:
        return true;
    case TK_FALSE:
        return false;
    case TK_NOT:
        return !eval(e->a, o);
    case TK_AND:
        return eval(e->a, o) && eval(e->b, o);
    case TK_OR:
        return eval(e->a, o) || eval(e->b, o);
    default:
        a = e->fa >= 0 ? db_string(o, e->fa) : xcp__strdup(e->la);
        b = e->fb >= 0 ? db_string(o, e->fb) : xcp__strdup(e->lb);
        r = a && b && strcmp(a, b) == 0;
        free(a);
        free(b);
        return r;
    }
}

static int where(xcp__ctx *c, bool records)
{
    int cls = c->msg->cls;
    const char *text = xcp__arg_str(c, 0);
    struct lexer l = {text, TK_END, NULL, 0};
    struct expr *e;
    xcp__obj *const *objs;
    xcp__obj **hits;
    size_t n, i, k = 0;
    int rc;

    lex(&l);
    e = parse_or(&l, cls);
    if (!e || l.tok != TK_END) {
        free(l.str);
        expr_free(e);
        return XCP__ERR_INVALID_VALUE(text, "cannot parse expression");
    }
    free(l.str);
    objs = xcp__db_all(c->db, cls, &n);
    if (!(hits = xcp__calloc(n, sizeof(*hits)))) {
        expr_free(e);
        return xcp__oom();
    }
    for (i = 0; i < n; i++)
        if (eval(e, objs[i]))
            hits[k++] = objs[i];
    expr_free(e);
    rc = records ? xcp__records_of(hits, k, c->result)
                 : refs_of(hits, k, c->result);
    free(hits);
    return rc;
}

/* ---- create and destroy ---- */

int xcp__set_fields_from(xcp__ctx *c, xcp__obj *o, const xcp_value *rec,
                         const int *which, size_t n)
{
    size_t i;
    int rc;

    for (i = 0; i < n; i++) {
        const xcp_value *f = &rec->u.rec.fields[which[i]];
        xcp_value v;
        if (f->kind == XCP_VAL_NONE)
            continue;
        if ((rc = xcp_value_copy(&v, f)) < 0)
            return rc;
        rc = xcp__db_set(c->db, o, which[i], &v);
        xcp_value_dispose(&v);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The fields a constructor sets: static and writable ones, but skip. */
static size_t ctor_fields(int cls, int *out, const int *skip, size_t nskip)
{
    const struct xcp__class *k = &xcp__classes[cls];
    size_t i, j, n = 0;

    for (i = 0; i < k->nfields; i++) {
        const struct xcp__field *f = &k->fields[i];
        bool skipped = false;
        if (f->qual != XQ_RW && f->qual != XQ_ROS && f->qual != XQ_RWS)
            continue;
        for (j = 0; j < nskip; j++)
            skipped |= skip[j] == (int)i;
        if (!skipped)
            out[n++] = (int)i;
    }
    return n;
}

int xcp__set_ctor_fields(xcp__ctx *c, xcp__obj *o, const xcp_value *rec,
                         const int *skip, size_t nskip)
{
    int which[256];
    size_t n = ctor_fields(o->cls, which, skip, nskip);

    return xcp__set_fields_from(c, o, rec, which, n);
}

int xcp__ctor_required(int cls, const xcp_value *rec)
{
    const struct xcp__class *k = &xcp__classes[cls];
    size_t i;
    int rc;

    if (!rec || rec->kind != XCP_VAL_RECORD)
        return xcp__internal("constructor argument is not a record");
    for (i = 0; i < k->nfields; i++) {
        const struct xcp__field *f = &k->fields[i];
        if ((f->flags & XF_REQ) && rec->u.rec.fields[i].kind == XCP_VAL_NONE) {
            /* XAPI's generated unmarshaller fails this way, word for word */
            char *m = xcp__printf("Field %s not present in rpc", f->name);
            rc = XCP__ERR_INTERNAL_ERROR(m ? m : f->name);
            free(m);
            return rc;
        }
    }
    return 0;
}

static int generic_create(xcp__ctx *c)
{
    int cls = c->msg->cls;
    const xcp_value *rec = xcp__arg(c, 0);
    xcp__obj *o;
    int rc;

    if ((rc = xcp__ctor_required(cls, rec)) < 0)
        return rc;
    if ((rc = xcp__db_create(c->db, cls, NULL, NULL, &o)) < 0 ||
        (rc = xcp__set_ctor_fields(c, o, rec, NULL, 0)) < 0)
        return rc;
    if ((rc = xcp__update_allowed(c, o)) < 0)
        return rc;
    return xcp__ret_ref(c, o);
}

static int generic_destroy(xcp__ctx *c, xcp__obj *o)
{
    return xcp__db_destroy(c->db, o);
}

/* ---- field messages ---- */

static int map_key_dup(xcp__ctx *c, xcp__obj *o, const char *field,
                       const char *key)
{
    return XCP__ERR_MAP_DUPLICATE_KEY(xcp__classes[o->cls].name, field,
                                      xcp__obj_uuid(o), key);
}

int xcp__generic_call(xcp__ctx *c)
{
    const struct xcp__message *m = c->msg;
    int cls = m->cls;
    xcp__obj *o = NULL, *const *objs;
    size_t n;
    xcp_value v;
    int rc;

    switch (m->kind) {
    case XM_GET_ALL:
        objs = xcp__db_all(c->db, cls, &n);
        return refs_of(objs, n, c->result);
    case XM_GET_ALL_RECORDS:
        objs = xcp__db_all(c->db, cls, &n);
        return xcp__records_of(objs, n, c->result);
    case XM_GET_ALL_WHERE:
        return where(c, false);
    case XM_GET_ALL_RECORDS_WHERE:
        return where(c, true);
    case XM_GET_BY_UUID:
        o = xcp__db_by_uuid(c->db, cls, xcp__arg_str(c, 0));
        if (!o)
            return XCP__ERR_UUID_INVALID(xcp__classes[cls].name,
                                         xcp__arg_str(c, 0));
        return xcp__ret_ref(c, o);
    case XM_GET_BY_NAME_LABEL:
        objs = xcp__db_by_name(c->db, cls, xcp__arg_str(c, 0), &n);
        return refs_of(objs, n, c->result);
    case XM_CREATE:
        return generic_create(c);
    default:
        break;
    }
    if ((rc = xcp__arg_obj(c, 0, cls, &o)) < 0)
        return rc;
    switch (m->kind) {
    case XM_GET_RECORD:
        return xcp__obj_record(o, c->result);
    case XM_GET_FIELD:
        return xcp_value_copy(c->result, xcp__obj_val(o, m->field));
    case XM_SET_FIELD:
        if ((rc = xcp_value_copy(&v, xcp__arg(c, 1))) < 0)
            return rc;
        rc = xcp__db_set(c->db, o, m->field, &v);
        xcp_value_dispose(&v);
        break;
    case XM_ADD_TO_MAP:
        if (xcp__obj_map_get(o, m->field, xcp__arg_str(c, 1)))
            return map_key_dup(c, o, xcp__classes[cls].fields[m->field].name,
                               xcp__arg_str(c, 1));
        if ((rc = xcp_value_copy(&v, xcp__arg(c, 2))) < 0)
            return rc;
        rc = xcp__db_map_put(c->db, o, m->field, xcp__arg_str(c, 1), &v);
        xcp_value_dispose(&v);
        break;
    case XM_REMOVE_FROM_MAP:
        rc = xcp__db_map_del(c->db, o, m->field, xcp__arg_str(c, 1));
        break;
    case XM_ADD_TO_SET:
        if ((rc = xcp_value_copy(&v, xcp__arg(c, 1))) < 0)
            return rc;
        rc = xcp__db_set_add(c->db, o, m->field, &v);
        xcp_value_dispose(&v);
        break;
    case XM_REMOVE_FROM_SET:
        rc = xcp__db_set_del(c->db, o, m->field, xcp__arg(c, 1));
        break;
    case XM_DESTROY:
        return generic_destroy(c, o);
    default:
        return xcp__internal("unhandled generated message %s", m->wire);
    }
    if (rc == 0 && (m->field == F(VM, blocked_operations) && cls == C(VM)))
        rc = xcp__update_allowed(c, o);
    return rc;
}
