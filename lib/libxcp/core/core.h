/*
 * core/core.h - the ground floor: allocation, buffers, the thread's error
 * state, uuids, hashing, time, host paths, numbers as text, settings from
 * the environment, logging, building values. Core depends on nothing else
 * of ours: only the public value and error types (include/xcp/common.h,
 * errors.h, value.h). Every other internal header builds on this one.
 */
#ifndef XCP_CORE_H
#define XCP_CORE_H

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
/* RFC 4648 base64 of p[0, n), padded; NULL when out of memory. */
char *xcp__base64(const uint8_t *p, size_t n);

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

/* ---- core/error.c: the thread's last error ---- */
/* At most this many parameters are kept (more are dropped). */
#define XCP__ERROR_MAX_PARAMS 16

/* Set the thread's error: name + NULL-terminated list of parameters.
 * Returns XCP_EAPI. Not called directly: the generated XCP__ERR_<NAME>
 * macros of gen_errors.h (one per row of model/errors.def) call it with
 * the name and exactly the parameters errors.def lists, so a misspelt name
 * or a wrong count does not compile. */
int xcp__fail(const char *name, ...);
#include "gen_errors.h"
#if defined(__GNUC__) && !defined(XCP__FAIL_DIRECT)
/* Any direct call is an error (the macros above expand to it freely). */
#pragma GCC poison xcp__fail
#endif
/* Same with an array: for an error whose name is only known at run time
 * (relayed from a peer, a task or a storage driver). */
int xcp__failv(const char *name, size_t n, const char *const *params);
/* As xcp__failv with another return code (XCP_EIO for transport errors). */
int xcp__fail_code(int code, const char *name, size_t n,
                   const char *const *params);
/* INTERNAL_ERROR with a formatted message. */
int xcp__internal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A failed operation op ("write", "fsync", "open", ...) on the file at
 * path, errno err: OUT_OF_SPACE [path, "op: text (ENOSPC)"] when the disk
 * or quota is full (XAPI's error for ENOSPC), else INTERNAL_ERROR naming
 * the path, the operation and the errno (EIO: the disk is failing). */
int xcp__io_fail(const char *path, const char *op, int err);
/* OOM: sets INTERNAL_ERROR "out of memory", returns XCP_ENOMEM. */
int xcp__oom(void);

/* ---- core/uuid.c ---- */
void xcp__uuid_gen(char out[37]);
void xcp__ref_gen(char out[XCP_REF_MAX]);
/* Is s exactly a uuid (8-4-4-4-12 hex digits, either case)? */
bool xcp__uuid_valid(const char *s);
/* Does s start with a lower-case uuid (what xcp__uuid_gen makes)? Reads
 * no further than a NUL. */
bool xcp__uuid_lower_prefix(const char *s);

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
/* mkdir path and its missing parents with mode (existing ones are fine):
 * 0 or a negative errno (-ENAMETOOLONG beyond PATH_MAX). */
int xcp__mkdir_p(const char *path, unsigned mode);
/* Write all of [buf, buf + n) to fd, again after EINTR: 0, or -1 with
 * errno set (EIO when the fd took nothing). Sets no XenAPI error: the
 * caller names the failure. */
int xcp__write_all(int fd, const void *buf, size_t n);
/* fsync the directory dir, so that the names created, renamed or removed
 * in it are durable: 0 or a negative errno. */
int xcp__fsync_dir(const char *dir);
/* Replace path (in directory dir) by n bytes of buf atomically: written
 * to path.tmp (mode), fsynced, renamed over path, dir fsynced; a crash
 * leaves the old file or the new one. 0 or a negative errno (path.tmp
 * removed). Sets no XenAPI error. */
int xcp__file_replace(const char *dir, const char *path, const void *buf,
                      size_t n, unsigned mode);

/* ---- core/num.c: numbers as text, whatever the locale ---- */
/* snprintf(buf, n, "%.*g", prec, f) with '.' as the decimal point whatever
 * the process locale says (the wire's numbers are locale-free). */
void xcp__format_double(char *buf, size_t n, int prec, double f);
/* strtod of the whole of s with '.' as the decimal point whatever the
 * locale. Returns 0, XCP_EINVAL (not entirely a number) or XCP_ENOMEM. */
int xcp__parse_double(const char *s, double *out);

/* ---- core/range.c: sets of byte ranges ---- */
typedef struct xcp__range {
    uint64_t off;
    uint64_t len;
} xcp__range;
/* Zero-initialised; v holds n ranges (disjoint and in order once
 * merged). */
typedef struct xcp__ranges {
    xcp__range *v;
    size_t n, cap;
} xcp__ranges;
/* Add [off, off + len) (len 0: nothing): 0 or -ENOMEM. */
int xcp__ranges_add(xcp__ranges *r, uint64_t off, uint64_t len);
/* Sort and merge overlapping or touching ranges. */
void xcp__ranges_merge(xcp__ranges *r);
/* The bytes the ranges cover (merged first, or overlaps count twice). */
uint64_t xcp__ranges_bytes(const xcp__ranges *r);
/* Free r's ranges; r is empty again. */
void xcp__ranges_dispose(xcp__ranges *r);

/* ---- core/env.c: settings from the environment ---- */
/* The value of name, or dflt when it is unset or empty (borrowed: lives
 * until the environment changes). */
const char *xcp__env_str(const char *name, const char *dflt);
/* A count or duration from the environment: dflt when name is unset or
 * empty, else a non-negative decimal integer; anything else fails with
 * INVALID_VALUE [name, text]. */
int xcp__env_int(const char *name, int64_t dflt, int64_t *out);
#include "crash_point.h"   /* xcp__crash_point */

/* ---- core/log.c ---- */
enum { XCP__LOG_ERR = 3, XCP__LOG_WARN = 4, XCP__LOG_INFO = 6,
       XCP__LOG_DEBUG = 7 };
void xcp__log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* With $XCP_TRACE set, one line to stderr, stamped with the wall clock in
 * seconds (as bash's $EPOCHREALTIME, for bench/bench_xen.sh to place the
 * steps of a call it timed); nothing otherwise. */
void xcp__trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A function to resolve from a library loaded at first use: where its
 * address goes, and its name. */
typedef struct xcp__dl_sym {
    void **fn;
    const char *name;
} xcp__dl_sym;

/* dlopen lib (RTLD_NOW, RTLD_LOCAL) and resolve each of syms[0..n). 0 when
 * all were found; -1 with why (dlerror's text, or the missing symbol) and
 * every *fn NULL otherwise. Not an API error: the caller says which one,
 * for the feature it wanted. Call once per process (pthread_once). */
int xcp__dl_load(const char *lib, const xcp__dl_sym *syms, size_t n,
                 char *why, size_t why_len);
/* Waits (for a lock, a driver) at least this long are traced. */
#define XCP__TRACE_WAIT_MS 2

/* ---- values (core/value.c builds them; model/value.c walks records) ---- */
/* Move: *dst = *src, src reset to NONE (dst not disposed). */
static inline void xcp__value_move(xcp_value *dst, xcp_value *src)
{
    *dst = *src;
    src->kind = XCP_VAL_NONE;
}

#endif
