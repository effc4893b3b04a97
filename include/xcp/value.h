/*
 * libxcp public API: generic XenAPI values and dynamic calls.
 *
 * xcp_value mirrors what travels on the wire: strings (also refs, enums),
 * ints, floats, bools, datetimes, arrays, structs (maps with string keys)
 * and records. It is what xcp_call() takes and returns, so any XenAPI
 * message can be invoked by name — the typed API (classes.h) is built on
 * the same path. Values own their contents: dispose with
 * xcp_value_dispose().
 */
#ifndef XCP_VALUE_H
#define XCP_VALUE_H

#include <xcp/common.h>

XCP_BEGIN_DECLS

typedef enum xcp_value_kind {
    XCP_VAL_NONE = 0, /**< no value (void result) */
    XCP_VAL_STRING,   /**< also refs and enums */
    XCP_VAL_INT,
    XCP_VAL_FLOAT,
    XCP_VAL_BOOL,
    XCP_VAL_DATETIME, /**< seconds since the epoch, UTC */
    XCP_VAL_ARRAY,
    XCP_VAL_STRUCT,   /**< string keys -> values (maps, structs) */
    XCP_VAL_RECORD,   /**< one object's fields, in model order */
} xcp_value_kind;

typedef struct xcp_value xcp_value;

struct xcp_value {
    xcp_value_kind kind;
    union {
        char *s;
        int64_t i;
        double f;
        bool b;
        xcp_datetime t;
        struct {
            size_t n;
            xcp_value *items;
        } arr;
        struct {
            size_t n;
            char **keys;
            xcp_value *vals;
        } st;
        struct {
            int cls;        /**< class id (model.h) */
            xcp_value *fields; /**< xcp_class_field_count(cls) values */
        } rec;
    } u;
};

/** Free a value's contents and reset it to XCP_VAL_NONE. */
XCP_EXTERN void xcp_value_dispose(xcp_value *v);

/** Deep copy src into dst (dst is overwritten, not disposed). */
XCP_EXTERN int xcp_value_copy(xcp_value *dst, const xcp_value *src);

/** Constructors: fill v (overwritten). Strings are copied. */
XCP_EXTERN int xcp_value_set_string(xcp_value *v, const char *s);
XCP_EXTERN void xcp_value_set_int(xcp_value *v, int64_t i);
XCP_EXTERN void xcp_value_set_float(xcp_value *v, double f);
XCP_EXTERN void xcp_value_set_bool(xcp_value *v, bool b);
XCP_EXTERN void xcp_value_set_datetime(xcp_value *v, xcp_datetime t);
/** An array of n values, each XCP_VAL_NONE, to be filled by the caller. */
XCP_EXTERN int xcp_value_set_array(xcp_value *v, size_t n);
/** An empty struct. */
XCP_EXTERN void xcp_value_set_struct(xcp_value *v);
/** Add key -> *val to a struct; *val is moved in (left NONE). */
XCP_EXTERN int xcp_value_struct_add(xcp_value *st, const char *key,
                                    xcp_value *val);
/** Member of a struct (or field of a record, by name), or NULL. Borrowed
 * from st: valid until st is changed or disposed. */
XCP_EXTERN const xcp_value *xcp_value_struct_get(const xcp_value *st,
                                                 const char *key);

/**
 * Render a scalar value as text the way xe does (ints decimal, floats
 * %.3f, bools true/false, datetimes 20240611T08:05:59Z). Arrays are
 * joined with "; ", structs as "k: v; k2: v2". Returns a string to free
 * with xcp_free(), or NULL on allocation failure.
 */
XCP_EXTERN char *xcp_value_to_text(const xcp_value *v);

/** Format a datetime as 20240611T08:05:59Z into buf (>= 21 bytes). */
XCP_EXTERN void xcp_datetime_format(char *buf, size_t len, xcp_datetime t);

/**
 * Parse a datetime: the compact XenAPI form 20240611T08:05:59Z or RFC 3339
 * (2024-06-11T08:05:59Z, with an optional +HH:MM offset). Returns 0, or
 * XCP_EAPI with the thread's error INVALID_VALUE ("datetime", s) and *out
 * untouched.
 */
XCP_EXTERN int xcp_datetime_parse(xcp_datetime *out, const char *s);

XCP_END_DECLS

#endif
