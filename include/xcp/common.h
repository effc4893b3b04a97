/*
 * libxcp public API: conventions shared by every header.
 *
 * The contract, stated once:
 *
 * - Functions return int: 0 on success, a negative XCP_E* code on failure.
 *   Every negative return has set the calling thread's last error, read it
 *   with xcp_error_last() (errors.h): it carries the XenAPI error name (e.g.
 *   "VM_BAD_POWER_STATE") and its parameters.
 * - Argument order: session (or the handle the call works on) first, then
 *   out-parameters, then the object the call is about, then the rest. A
 *   caller's buffer is followed by its size and then by the count of what
 *   was filled, in read(2)'s order (xcp_server_stream_read(st, buf, n,
 *   &got)).
 * - Pointers passed in (strings, options, requests) are borrowed for the
 *   duration of the call only: the library copies what it keeps.
 * - Pointers handed out without transfer of ownership are borrowed; each
 *   function says how long one lives. Those into the model's tables
 *   (model.h, error descriptions and parameter names) live as long as the
 *   library is loaded.
 * - Refs are small value types, one struct per class (xcp_vm, xcp_sr, ...),
 *   so a VM ref cannot be passed where an SR ref is wanted. They hold the
 *   XenAPI reference string ("OpaqueRef:<uuid>"); copy them freely, they own
 *   no memory. The null ref is "OpaqueRef:NULL" (xcp_ref_is_null()).
 * - Records (xcp_vm_record ...) are caller storage with library-owned
 *   contents: call <type>_init() (or zero it), let the library fill it,
 *   then <type>_dispose() exactly once. The same holds for sets and maps.
 * - Strings returned through out-parameters are freed with xcp_free().
 * - Options structs start with a version field and only grow at the end.
 * - Thread safety: a session (xcp_session *) may be used by one thread at a
 *   time; distinct sessions may be used concurrently. The error state is
 *   per thread.
 */
#ifndef XCP_COMMON_H
#define XCP_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define XCP_BEGIN_DECLS extern "C" {
#define XCP_END_DECLS }
#else
#define XCP_BEGIN_DECLS
#define XCP_END_DECLS
#endif

#if defined(XCP_BUILDING_LIBRARY) && defined(__GNUC__)
#define XCP_EXTERN __attribute__((visibility("default")))
#else
#define XCP_EXTERN
#endif

XCP_BEGIN_DECLS

/** Size of a reference buffer: "OpaqueRef:" + 36-char uuid + NUL, rounded. */
#define XCP_REF_MAX 48

/** The null reference string. */
#define XCP_NULL_REF "OpaqueRef:NULL"

/** An untyped reference (used for classes without a typed ref). */
typedef struct xcp_ref {
    char ref[XCP_REF_MAX];
} xcp_ref;

/** Datetimes are seconds since the Unix epoch, UTC. 0 = unset. */
typedef int64_t xcp_datetime;

/** A set of strings. Dispose with xcp_string_set_dispose(). */
typedef struct xcp_string_set {
    size_t n;
    char **items;
} xcp_string_set;

/** A set of 64-bit ints. Dispose with xcp_int_set_dispose(). */
typedef struct xcp_int_set {
    size_t n;
    int64_t *items;
} xcp_int_set;

/** One entry of an xcp_string_map. */
typedef struct xcp_string_map_entry {
    char *key;
    char *value;
} xcp_string_map_entry;

/**
 * A map. Every XenAPI map is exposed with string keys and values: refs as
 * their ref string, enums as their wire string, ints in decimal.
 * Dispose with xcp_string_map_dispose().
 */
typedef struct xcp_string_map {
    size_t n;
    xcp_string_map_entry *items;
} xcp_string_map;

/** Free memory the library returned (strings, arrays). NULL is fine. */
XCP_EXTERN void xcp_free(void *p);

/** Free the contents of a string set and zero it. */
XCP_EXTERN void xcp_string_set_dispose(xcp_string_set *s);

/** Free the contents of an int set and zero it. */
XCP_EXTERN void xcp_int_set_dispose(xcp_int_set *s);

/** Free the contents of a map and zero it. */
XCP_EXTERN void xcp_string_map_dispose(xcp_string_map *m);

/**
 * Add (copies of) key and value to a map, replacing the value of an
 * existing key. Returns 0 or XCP_ENOMEM.
 */
XCP_EXTERN int xcp_string_map_set(xcp_string_map *m, const char *key,
                                  const char *value);

/** Value of key in m, or NULL. The pointer lives as long as the entry. */
XCP_EXTERN const char *xcp_string_map_get(const xcp_string_map *m,
                                          const char *key);

/** Append a copy of s to a string set. Returns 0 or XCP_ENOMEM. */
XCP_EXTERN int xcp_string_set_add(xcp_string_set *set, const char *s);

/** True when a ref string is empty or "OpaqueRef:NULL". */
XCP_EXTERN bool xcp_ref_is_null(const char *ref);

/** The library version string, e.g. "0.1.0". */
XCP_EXTERN const char *xcp_version(void);

XCP_END_DECLS

#endif
