/*
 * Internal description of the object model: the tables generated from
 * model.def (gen_model.c) and the types that describe them. Everything that
 * walks classes, fields or messages at run time reads these, with the
 * conversions and the record-aware value and error code built on them.
 * The model depends on core only.
 */
#ifndef XCP_INTERNAL_MODEL_H
#define XCP_INTERNAL_MODEL_H

#include "../core/core.h"

#include <xcp/model.h>
#include <xcp/classes.h>

/* Kinds of API types. */
enum xcp__tkind {
    XT_VOID = 0,
    XT_STRING,
    XT_INT,
    XT_FLOAT,
    XT_BOOL,
    XT_DATETIME,
    XT_REF,
    XT_ENUM,
    XT_SET,
    XT_MAP,
    XT_RECORD,
    XT_ANY,
};

/* C representations used by the typed API (classes.h). */
enum xcp__crep {
    XC_NONE = 0,
    XC_STRING,     /* char * */
    XC_INT,        /* int64_t */
    XC_FLOAT,      /* double */
    XC_BOOL,       /* bool */
    XC_DATETIME,   /* xcp_datetime */
    XC_REF,        /* struct { char ref[XCP_REF_MAX]; } */
    XC_ENUM,       /* int-sized enum */
    XC_ARRAY,      /* struct { size_t n; T *items; } of the element crep */
    XC_STRMAP,     /* xcp_string_map */
    XC_RECORD,     /* xcp_<class>_record */
    XC_RECMAP,     /* xcp_<class>_record_map: n, refs[], records[] */
    XC_VALUE,      /* xcp_value */
};

struct xcp__type {
    uint8_t kind;  /* enum xcp__tkind */
    uint8_t crep;  /* enum xcp__crep */
    int16_t id;    /* class id (REF/RECORD; -1 = class not modelled) or
                      enum id (ENUM) */
    const struct xcp__type *a; /* element (SET), key (MAP) */
    const struct xcp__type *b; /* value (MAP) */
    const char *spell;         /* "set:ref:VM" */
    uint32_t csize;            /* sizeof the C representation */
};

struct xcp__enum {
    const char *name;
    size_t n;
    const char *const *values;
};

enum xcp__qual { XQ_RO = 0, XQ_ROS, XQ_RW, XQ_RWS };

enum {
    XF_DEPRECATED = XCP_FIELD_DEPRECATED,
    XF_REMOVED = XCP_FIELD_REMOVED,
    XF_PROTO = XCP_FIELD_PROTO,
    XF_REQ = XCP_FIELD_REQUIRED,
    XF_DERIVED = 1 << 8, /* many side of a relation: maintained, not stored */
};

struct xcp__field {
    const char *name;
    const struct xcp__type *type;
    uint8_t qual;
    uint16_t flags;
    const char *def;     /* default literal, NULL = zero value of the type */
    uint32_t coff;       /* offset in the C record struct */
    int16_t rel_cls;     /* relation: class of the other side, or -1 */
    int16_t rel_field;   /* field index on the other side */
};

enum {
    XK_CREATE = XCP_CLASS_CREATE,
    XK_DESTROY = XCP_CLASS_DESTROY,
    XK_NOGETALL = XCP_CLASS_NOGETALL,
    XK_NOEVENTS = XCP_CLASS_NOEVENTS,
    XK_NODB = XCP_CLASS_NODB,
    XK_VOLATILE = XCP_CLASS_VOLATILE,
};

struct xcp__class {
    const char *name;   /* "VM" */
    const char *lname;  /* "vm" (event class names) */
    unsigned flags;
    size_t nfields;
    const struct xcp__field *fields;
    int uuid_field;       /* -1 if none */
    int name_label_field; /* -1 if none */
    uint32_t rec_size;    /* sizeof xcp_<class>_record */
    const xcp_field_info *info;
};

/* Message kinds: explicit ones have hand-written policy in api/;
 * the rest are served generically from the tables. */
enum xcp__mkind {
    XM_EXPLICIT = 0,
    XM_GET_RECORD,
    XM_GET_BY_UUID,
    XM_GET_BY_NAME_LABEL,
    XM_GET_ALL,
    XM_GET_ALL_RECORDS,
    XM_GET_ALL_WHERE,
    XM_GET_ALL_RECORDS_WHERE,
    XM_GET_FIELD,
    XM_SET_FIELD,
    XM_ADD_TO_MAP,
    XM_REMOVE_FROM_MAP,
    XM_ADD_TO_SET,
    XM_REMOVE_FROM_SET,
    XM_CREATE,
    XM_DESTROY,
};

enum { XMF_ASYNC = 1, XMF_NOSESSION = 2 };

struct xcp__param {
    const char *name;
    const struct xcp__type *type;
    const char *def; /* NULL = required */
};

struct xcp__message {
    const char *wire;     /* "VM.start" */
    int16_t cls;
    uint8_t kind;         /* enum xcp__mkind */
    uint8_t flags;        /* XMF_* */
    int16_t field;        /* for field messages */
    uint8_t nparams;
    uint8_t nrequired;    /* params without defaults */
    const struct xcp__param *params;
    const struct xcp__type *ret;
};

extern const struct xcp__class xcp__classes[];
extern const int xcp__nclasses;
extern const struct xcp__enum xcp__enums[];
extern const int xcp__nenums;
extern const struct xcp__message xcp__messages[];
extern const int xcp__nmessages;
extern const xcp_message_info xcp__message_infos[];

/* Message id by wire name (exact "Class.msg" or "Class_msg"), or -1. */
int xcp__message_lookup(const char *wire);
/* Enum value index, case-insensitive, or -1. */
int xcp__enum_index(const struct xcp__enum *e, const char *s);

#include "gen_model.h"

/* ---- model/errors.c: the error table and errors as values ---- */
struct xcp__errdesc {
    const char *name;
    size_t nparams;
    const char *const *params;
    const char *desc;
};
extern const struct xcp__errdesc xcp__errors[];
extern const size_t xcp__nerrors;


/* Copy of the thread's last error (for tasks): name and params as an
 * XCP_VAL_ARRAY of strings. */
int xcp__error_to_value(xcp_value *out);
/* Set the thread's error from such an array. */
int xcp__error_from_value(const xcp_value *v);
/* Keep the thread's error across cleanup calls that may overwrite it. */
typedef struct xcp__saved_error {
    xcp_value v;
    bool set;
} xcp__saved_error;
void xcp__error_save(xcp__saved_error *s);
/* Put a saved error back (or clear the error when none was saved). */
void xcp__error_restore(xcp__saved_error *s);

/* ---- model/convert.c: values <-> C, checking ---- */
/* Dispose a C representation of type t at p. */
void xcp__c_dispose(const struct xcp__type *t, void *p);
/* C representation at p -> value. */
int xcp__c_to_value(const struct xcp__type *t, const void *p, xcp_value *out,
                    bool ctor);
/* value -> C representation at p (overwritten). */
int xcp__value_to_c(const struct xcp__type *t, const xcp_value *v, void *p);
/* Check and normalise an incoming value against t (ints from strings,
 * enums case-insensitively to their canonical spelling, structs to records
 * for create). `what` names the parameter in errors. */
int xcp__value_check(const struct xcp__type *t, xcp_value *v,
                     const char *what);
/* Parse text s as a scalar of type t: INT (decimal, the whole of s), FLOAT
 * ('.' as the decimal point whatever the locale), BOOL (true/false in any
 * case) or DATETIME (xcp_datetime_parse). 0 with *out set, XCP_EINVAL when
 * s is not such a value or t another type (thread error untouched), or
 * XCP_ENOMEM. Shared by the checks here and the remote driver. */
int xcp__scalar_parse(const struct xcp__type *t, const char *s,
                      xcp_value *out);
/* Look *s up in en (case-insensitively, as xcp__enum_index) and replace it
 * by the canonical spelling when it differs: the index, XCP_EINVAL when *s
 * is none of the values (left as is, thread error untouched), or
 * XCP_ENOMEM. */
int xcp__enum_canon(const struct xcp__enum *en, char **s);
/* Whether v is a FLOAT, after making an INT the FLOAT of its value (an
 * int stands for a float wherever one is wanted: calls and replies). */
bool xcp__value_as_float(xcp_value *v);
/* The value of a default literal (or the zero value when lit is NULL). */
int xcp__value_default(const struct xcp__type *t, const char *lit,
                       xcp_value *out);
/* Field value from a record value (borrowed), or NULL. */
const xcp_value *xcp__rec_field(const xcp_value *rec, int field);
/* Allocate an XCP_VAL_RECORD of class cls, all fields NONE. */
int xcp__rec_alloc(xcp_value *out, int cls);
/* What xcp__rec_from_struct does to field f's value fv: sent says whether
 * a member named f (fv may then still be XCP_VAL_NONE: a JSON null). */
typedef int (*xcp__field_fix)(const struct xcp__field *f, xcp_value *fv,
                              bool sent, void *arg);
/* Turn STRUCT *v into a RECORD of class cls in place: each member that
 * names a field of cls moves into it (of members with one name, the
 * first; members that name no field, e.g. from a newer peer, are
 * dropped); then fix(f, value, sent, arg) is called on every field in the
 * model's order. On its first failure (returned), *v stays a STRUCT, less
 * the members already moved, for the caller to dispose as ever. */
int xcp__rec_from_struct(xcp_value *v, int cls, xcp__field_fix fix,
                         void *arg);
/* Projections (model/project.c). The field indexes of cls named by list,
 * an ARRAY of field names (*out to free()); INVALID_VALUE ["fields",
 * name] for one that is not a field of cls. */
int xcp__fields_parse(int cls, const xcp_value *list, int **out, size_t *n);
/* A STRUCT of the named fields of RECORD rec (their values moved out of
 * rec) in *out. */
int xcp__record_project(xcp_value *rec, const int *fields, size_t n,
                        xcp_value *out);
/* The same for every record of a STRUCT ref -> RECORD, in place. */
int xcp__records_project(xcp_value *all, const int *fields, size_t n);
/* Equality of two values (deep). */
bool xcp__value_equal(const xcp_value *a, const xcp_value *b);

#endif
