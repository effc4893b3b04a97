/*
 * Internal header shared by every module of libxcp: the public headers,
 * the model tables, and the cross-module helpers (prefixed xcp__, never
 * exported).
 */
#ifndef XCP_INTERNAL_H
#define XCP_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <xcp/common.h>
#include <xcp/errors.h>
#include <xcp/value.h>
#include <xcp/session.h>
#include <xcp/model.h>
#include <xcp/classes.h>

#include "model/model.h"

#define XCP__UNUSED(x) ((void)(x))
#define XCP__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- core/mem.c ---- */
void *xcp__malloc(size_t n);
void *xcp__calloc(size_t n, size_t size);
void *xcp__realloc(void *p, size_t n);
char *xcp__strdup(const char *s);
char *xcp__strndup(const char *s, size_t n);
char *xcp__printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool xcp__streq(const char *a, const char *b);

/* A growable byte buffer. */
typedef struct xcp__buf {
    char *data;
    size_t len;
    size_t cap;
    bool oom;
} xcp__buf;
void xcp__buf_add(xcp__buf *b, const void *p, size_t n);
void xcp__buf_adds(xcp__buf *b, const char *s);
void xcp__buf_addc(xcp__buf *b, char c);
void xcp__buf_printf(xcp__buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *xcp__buf_steal(xcp__buf *b); /* NUL-terminated, buffer reset */
void xcp__buf_free(xcp__buf *b);

/* ---- core/error.c ---- */
struct xcp__errdesc {
    const char *name;
    size_t nparams;
    const char *const *params;
    const char *desc;
};
extern const struct xcp__errdesc xcp__errors[];
extern const size_t xcp__nerrors;

/* Set the thread's error: name + NULL-terminated list of parameters.
 * Returns XCP_EAPI. */
int xcp__fail(const char *name, ...);
/* Same with an array. */
int xcp__failv(const char *name, size_t n, const char *const *params);
/* As xcp__failv with another return code (XCP_EIO for transport errors). */
int xcp__fail_code(int code, const char *name, size_t n,
                   const char *const *params);
/* INTERNAL_ERROR with a formatted message. */
int xcp__internal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* OOM: sets INTERNAL_ERROR "out of memory", returns XCP_ENOMEM. */
int xcp__oom(void);
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

/* ---- core/uuid.c ---- */
void xcp__uuid_gen(char out[37]);
void xcp__ref_gen(char out[XCP_REF_MAX]);
bool xcp__uuid_valid(const char *s);

/* ---- core/hash.c: string-keyed hash map (keys borrowed) ---- */
typedef struct xcp__hmap {
    size_t cap;   /* power of two */
    size_t n;     /* live entries */
    size_t used;  /* live + tombstones */
    struct xcp__hent {
        const char *key;
        void *val;
        uint32_t hash;
    } *ents;
} xcp__hmap;
uint32_t xcp__hash(const char *s);
void *xcp__hmap_get(const xcp__hmap *m, const char *key);
int xcp__hmap_put(xcp__hmap *m, const char *key, void *val);
void *xcp__hmap_del(xcp__hmap *m, const char *key);
void xcp__hmap_free(xcp__hmap *m);

/* ---- core/time.c ---- */
int64_t xcp__now(void);          /* seconds, realtime */
int64_t xcp__now_ms(void);       /* milliseconds, monotonic */
double xcp__now_real(void);      /* seconds with fraction, realtime */

/* ---- core/path.c: host paths named by clients ---- */
/* Absolute, with no empty, "." or ".." component. */
bool xcp__path_clean(const char *path);
/* path (clean) with its deepest existing ancestor resolved (symlinks,
 * realpath(3)) and the rest kept, into out (PATH_MAX bytes). 0 or a
 * negative errno. */
int xcp__path_canon(const char *path, char *out);
/* Is path strictly below one of the ':'-separated directories of list,
 * both resolved as xcp__path_canon does (no way out through a symlink)? */
bool xcp__path_below_any(const char *path, const char *list);
/* The same without touching the filesystem: lexically below. */
bool xcp__path_lexically_below_any(const char *path, const char *list);
/* Is item one of the ':'-separated entries of list? */
bool xcp__list_has(const char *list, const char *item);

/* ---- core/log.c ---- */
enum { XCP__LOG_ERR = 3, XCP__LOG_WARN = 4, XCP__LOG_INFO = 6,
       XCP__LOG_DEBUG = 7 };
void xcp__log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

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
/* The value of a default literal (or the zero value when lit is NULL). */
int xcp__value_default(const struct xcp__type *t, const char *lit,
                       xcp_value *out);
/* Field value from a record value (borrowed), or NULL. */
const xcp_value *xcp__rec_field(const xcp_value *rec, int field);
/* Allocate an XCP_VAL_RECORD of class cls, all fields NONE. */
int xcp__rec_alloc(xcp_value *out, int cls);
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
/* Move: *dst = *src, src reset to NONE (dst not disposed). */
static inline void xcp__value_move(xcp_value *dst, xcp_value *src)
{
    *dst = *src;
    src->kind = XCP_VAL_NONE;
}

/* ---- session driver ---- */
struct xcp__session_ops {
    /* Invoke message mid; args already checked; result filled. async:
     * return a task ref instead. */
    int (*invoke)(xcp_session *s, int mid, bool async, size_t nargs,
                  xcp_value *args, xcp_value *result);
    void (*close)(xcp_session *s);
    /* Optional: xcp_get_records_fields (where NULL: every record; names:
     * the fields as an ARRAY of names); > 0 when the server cannot (the
     * caller falls back on whole records). */
    int (*records_fields)(xcp_session *s, int cls, const char *where,
                          const int *fields, size_t n,
                          const xcp_value *names, xcp_value *result);
};

struct xcp_session {
    const struct xcp__session_ops *ops;
    char ref[XCP_REF_MAX];
    void *priv;
};

/* The typed API's entry: converts C args, invokes, converts the result. */
int xcp__typed_call(xcp_session *s, int mid, bool async, void *out,
                    const void *const *args);

#endif
