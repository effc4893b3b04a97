/*
 * Internal API of the XenAPI wire codecs: XML-RPC (xmlrpc.c, libxml2) and
 * JSON-RPC 1.0/2.0 (jsonrpc.c, jansson). Both directions are here: the
 * server side (decode a request, encode the response envelope exactly as
 * xapi writes it) and the client side used by the remote session driver
 * (encode a request, decode a response).
 *
 * Conventions shared by every function below:
 * - Decoders take a body and its length (the body need not be
 *   NUL-terminated), fill caller-provided xcp_values (overwritten, not
 *   disposed first; on failure they are left XCP_VAL_NONE) and return 0, a
 *   positive status (XCP__RPC_BAD_UTF8, XCP__RPC_FAILURE), or a negative
 *   code: XCP_EINVAL for malformed input, with a one-line reason in
 *   err[errlen] (err may be NULL), or XCP_ENOMEM (the thread's error is
 *   then set). Malformed input does not touch the thread's error.
 * - Encoders append to an xcp__buf and return 0 or XCP_ENOMEM. Their output
 *   is always well-formed for strict parsers: strings that are not valid
 *   UTF-8 have the bad bytes replaced by U+FFFD.
 * - Nothing here keeps state between calls; every function may be called
 *   from any thread. libxml2 is initialised once, on first use, by
 *   xmlrpc.c (pthread_once around xmlInitParser).
 */
#ifndef XCP_RPC_H
#define XCP_RPC_H

#include "../model/model.h"

/* ---- limits ------------------------------------------------------------ */

/* Deepest nesting of values: a parameter (or result) is at depth 1, the
 * items of an array or struct at that level at depth 2, and so on. */
#define XCP__RPC_MAX_DEPTH 64
/* Largest body a request decoder accepts (the HTTP layer is expected to
 * refuse more than 300 KiB long before this). */
#define XCP__RPC_MAX_REQUEST_BODY (16u << 20)
/* Most values (each scalar, array and struct counts one) in a request. */
#define XCP__RPC_MAX_REQUEST_VALUES (1u << 20)
/* The same bounds for responses, which may be large (get_all_records of a
 * big pool). */
#define XCP__RPC_MAX_RESPONSE_BODY (512u << 20)
#define XCP__RPC_MAX_RESPONSE_VALUES (1u << 26)

/* ---- statuses and options ---------------------------------------------- */

enum xcp__rpc_status {
    /* Request decoded, but some string in the parameters is not valid
     * UTF-8 as xapi defines it (see xcp__rpc_string_valid). Everything is
     * filled; answer INVALID_VALUE ["Invalid UTF-8 string in parameter",
     * s] with s = xcp__rpc_find_invalid(params). */
    XCP__RPC_BAD_UTF8 = 1,
    /* Response decoded and it is a failure envelope: the error output holds
     * the [CODE, params...] array of strings. */
    XCP__RPC_FAILURE = 2,
};

/* Encoder options (a bit set). */
enum xcp__rpc_quirks {
    /* event.from: in the result struct, the members of the struct called
     * valid_ref_counts are written <value><i4>N</i4></value> (XML-RPC
     * only; JSON numbers are unchanged). */
    XCP__RPC_I4_REFCOUNTS = 1,
};

/* ---- shared helpers (defined in xmlrpc.c) ------------------------------ */

/*
 * Whether the n bytes at s are a string xapi accepts as a parameter
 * (its UTF8_XML check): canonical UTF-8, no surrogates, nothing above
 * U+10FFFF, no non-characters (U+FDD0..U+FDEF, U+xFFFE, U+xFFFF), and no
 * control characters below 0x20 other than TAB, LF and CR.
 */
bool xcp__rpc_string_valid(const char *s, size_t n);

/*
 * The first string or struct member name in v (searched depth first) that
 * fails xcp__rpc_string_valid, or NULL when all pass. Borrowed from v.
 */
const char *xcp__rpc_find_invalid(const xcp_value *v);

/*
 * Request decoders' handling of bytes that are not UTF-8: when the body
 * declares no other encoding, each such byte b is carried through the
 * parser as the private-use character U+F0000 + b, so that the parser
 * accepts the document and the strings come out with the original bytes
 * (and fail xcp__rpc_string_valid). Response decoders instead replace
 * those bytes by U+FFFD (be lenient in what you accept).
 *
 * xcp__rpc_wire_body: if body[len] needs this treatment, returns a new
 * NUL-terminated body (length in *outlen) to free(); with
 * mark == false the bad bytes become U+FFFD instead. Returns NULL with
 * *outlen = 0 when the body can be parsed as it is, or NULL with
 * *outlen = 1 on allocation failure (thread error set).
 */
char *xcp__rpc_wire_body(const char *body, size_t len, bool mark,
                         size_t *outlen);

/* Flags of xcp__rpc_wire_string. */
enum {
    XCP__RPC_UNMARK = 1, /* map U+F0080..U+F00FF back to raw bytes */
    XCP__RPC_NUL_BAD = 2, /* NUL -> C0 80 (invalid, flagged) instead of
                             U+FFFD */
};

/*
 * A decoded string's bytes p[n] as a new NUL-terminated string (free()),
 * applying the flags above; NULs, which C strings cannot carry, are never
 * kept. Returns NULL on allocation failure (thread error set).
 */
char *xcp__rpc_wire_string(const char *p, size_t n, unsigned flags);

/*
 * A decoded string's bytes p[n] as a STRING value in *out (kind set only
 * on success), by xcp__rpc_wire_string's rules. 0 or XCP_ENOMEM.
 */
int xcp__rpc_string_value(xcp_value *out, const char *p, size_t n,
                          unsigned flags);

/*
 * What every decoder keeps: where the reason for XCP_EINVAL goes, the
 * value count against its limit, and the xcp__rpc_wire_string flags for
 * the body's strings.
 */
struct xcp__rpc_dec {
    char *err;
    size_t errlen;
    bool reported; /* err already holds the first reason: keep it */
    size_t nvalues;
    size_t maxvalues;
    unsigned sflags;
    bool nonfinite; /* JSON: NaN/Infinity tokens were rewritten (jsonrpc.c) */
};

/* Put the reason in d->err (unless d->reported); returns XCP_EINVAL. */
int xcp__rpc_fail(struct xcp__rpc_dec *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * The start of every decoding: set d's limits and flags for a request or a
 * response, refuse an empty or oversized body, and rewrite bytes that are
 * not UTF-8 (xcp__rpc_wire_body). *body and *len are updated to what must
 * be parsed; *owned gets the rewritten copy to free() afterwards (or NULL).
 * Returns 0, XCP_EINVAL or XCP_ENOMEM.
 */
int xcp__rpc_open_body(struct xcp__rpc_dec *d, const char **body,
                       size_t *len, bool request, char **owned);

/*
 * Count one more value at depth (parameters at 1) against d's limits:
 * XCP_EINVAL when nested deeper than XCP__RPC_MAX_DEPTH or past
 * d->maxvalues.
 */
int xcp__rpc_count_value(struct xcp__rpc_dec *d, int depth);

/* 0, or the thread's out-of-memory error when b ran out of memory. */
int xcp__rpc_buf_status(const xcp__buf *b);

/*
 * Normalise a decoded error description in place: list must be a non-empty
 * ARRAY; scalar items become strings (ints in decimal, bools true/false,
 * NONE ""). Returns 0, XCP_EINVAL (nested or empty: err filled) or
 * XCP_ENOMEM.
 */
int xcp__rpc_error_list(xcp_value *list, char *err, size_t errlen);

/*
 * Append s to b as UTF-8 with bad bytes replaced by U+FFFD; each valid
 * code point is passed to emit(b, start, len, cp), which appends it
 * (possibly escaped). Shared by both encoders' string escaping.
 */
void xcp__rpc_utf8_walk(xcp__buf *b, const char *s,
                        void (*emit)(xcp__buf *b, const char *p, size_t n,
                                     uint32_t cp));

/* ---- XML-RPC: server side ---------------------------------------------- */

/*
 * Decode a methodCall. *method gets the method name (free()); *params an
 * ARRAY of the parameters. Untyped <value>text</value> and <string> are
 * STRING; <int>/<i4>/<i8> INT (64-bit, range-checked); <boolean> BOOL
 * (only "1" is true); <double> FLOAT; <dateTime.iso8601> DATETIME (compact
 * or RFC 3339); <base64> STRING of the decoded bytes; <array><data> ARRAY;
 * <struct> STRUCT (member order kept, duplicate names kept); <nil/> NONE.
 * Missing <params>, unknown tags, text beside a typed value, DTDs,
 * encodings that are not ASCII-compatible (UTF-16/32: NUL bytes), nesting
 * deeper than XCP__RPC_MAX_DEPTH, more than
 * XCP__RPC_MAX_REQUEST_VALUES values or a body over
 * XCP__RPC_MAX_REQUEST_BODY give XCP_EINVAL (HTTP 500 in xapi). Returns
 * XCP__RPC_BAD_UTF8 when everything decoded but a string fails
 * xcp__rpc_string_valid.
 */
int xcp__xmlrpc_decode_request(const char *body, size_t len, char **method,
                               xcp_value *params, char *err, size_t errlen);

/*
 * Append one <value>...</value> fragment for v as xapi writes it: strings
 * untyped with < > & " escaped (CR as &#13;) and other control characters
 * dropped, empty string <value></value>, INT as an untyped decimal string,
 * FLOAT <double> with %.16g (nan, inf, -inf), BOOL <boolean>1</boolean>,
 * DATETIME <dateTime.iso8601>20240611T08:05:59Z</dateTime.iso8601>, ARRAY
 * <array><data>, STRUCT <struct> with escaped member names, RECORD a
 * struct of every field in model order, NONE <value></value>. quirks:
 * enum xcp__rpc_quirks, applied to v as the top-level result. Also the
 * encoder of task results (task.result is such a fragment).
 */
int xcp__xmlrpc_encode_value(xcp__buf *out, const xcp_value *v,
                             unsigned quirks);

/*
 * Append the whole success response (XML declaration, methodResponse,
 * struct of Status "Success" and Value), no whitespace between elements.
 * quirks: enum xcp__rpc_quirks (XCP__RPC_I4_REFCOUNTS for event.from).
 */
int xcp__xmlrpc_encode_success(xcp__buf *out, const xcp_value *result,
                               unsigned quirks);

/*
 * A success response whose result is a struct, in pieces, so that a large
 * one (get_all_records) can be written as its members are produced: head,
 * any number of members, tail. Together they are byte for byte what
 * xcp__xmlrpc_encode_success writes for the whole struct.
 */
int xcp__xmlrpc_encode_struct_head(xcp__buf *out);
int xcp__xmlrpc_encode_struct_member(xcp__buf *out, const char *name,
                                     const xcp_value *v);
int xcp__xmlrpc_encode_struct_tail(xcp__buf *out);

/*
 * Append the failure response: Status "Failure" and ErrorDescription, an
 * array of the strings [code, params[0], ..., params[n-1]].
 */
int xcp__xmlrpc_encode_failure(xcp__buf *out, const char *code, size_t n,
                               const char *const *params);

/*
 * Append a response whose single param is v itself, without the
 * Status/Value struct: what xapi answers to system.listMethods.
 */
int xcp__xmlrpc_encode_bare(xcp__buf *out, const xcp_value *v);

/* ---- XML-RPC: client side ---------------------------------------------- */

/*
 * Append a methodCall as the C SDK writes it: strings and INTs as
 * <string> (ints in decimal), BOOL <boolean>, FLOAT <double>, DATETIME
 * <dateTime.iso8601>, ARRAY, STRUCT, RECORD as a struct of the fields
 * that are not NONE, NONE as <nil/>. params must be an ARRAY (or NULL
 * for none).
 */
int xcp__xmlrpc_encode_request(const char *method, const xcp_value *params,
                               xcp__buf *out);

/*
 * Decode a methodResponse. A struct with Status "Success" and a Value
 * member: 0, *result = Value. Status "Failure" with ErrorDescription:
 * XCP__RPC_FAILURE, *error = the array normalised to strings. Any other
 * value (system.listMethods' bare array): 0, *result = that value. An
 * XML-RPC <fault>: XCP__RPC_FAILURE with *error = ["fault", faultCode,
 * faultString] (as ocaml-rpc reports it). Decoding rules as for requests,
 * with the response limits; bytes that are not UTF-8 become U+FFFD.
 */
int xcp__xmlrpc_decode_response(const char *body, size_t len,
                                xcp_value *result, xcp_value *error,
                                char *err, size_t errlen);

/* ---- JSON-RPC: server side --------------------------------------------- */

/*
 * Decode a JSON-RPC request (xapi's rules, wire spec 3.1). *version is 2
 * when "jsonrpc" is "2.0", 1 when the member is absent; any other value is
 * XCP_EINVAL. method: required string (*method, free()). params: 1.0 needs
 * an array; 2.0 takes an array, absent/null as [], an object as a
 * one-element array. id: required, integer or string, kept with its type
 * in *id (INT or STRING); absent or null (a notification) is XCP_EINVAL.
 * A batch (top-level array) is XCP_EINVAL. Values: integers INT (64-bit;
 * larger is XCP_EINVAL), other numbers FLOAT, strings STRING, booleans
 * BOOL, null NONE, arrays ARRAY, objects STRUCT. Depth, value count and
 * body limits and XCP__RPC_BAD_UTF8 as for XML-RPC.
 */
int xcp__jsonrpc_decode_request(const char *body, size_t len, char **method,
                                xcp_value *params, xcp_value *id,
                                int *version, char *err, size_t errlen);

/*
 * Append a JSON value, compact: strings (also datetimes, in the compact
 * XenAPI form), INT as an integer literal, FLOAT as the shortest of %.16g /
 * %.17g that reads back exactly, with ".0" added to integral values
 * (non-finite values, which JSON cannot carry, as null), BOOL, ARRAY,
 * STRUCT/RECORD as objects (every field of a record), NONE null.
 */
int xcp__jsonrpc_encode_value(xcp__buf *out, const xcp_value *v);

/*
 * Append the success envelope (version 1 or 2, wire spec 3.2):
 * v1 {"result":R,"error":null,"id":ID}, v2 {"jsonrpc":"2.0","result":R,
 * "id":ID}. A NONE result (void) is written "". id: INT or STRING echoed
 * with its type; NULL or NONE is written null. quirks are accepted for
 * symmetry with XML-RPC and change nothing.
 */
int xcp__jsonrpc_encode_success(xcp__buf *out, int version,
                                const xcp_value *id, const xcp_value *result,
                                unsigned quirks);

/*
 * The same in pieces, as xcp__xmlrpc_encode_struct_head and its kin: first
 * is true for the struct's first member only.
 */
int xcp__jsonrpc_encode_struct_head(xcp__buf *out, int version);
int xcp__jsonrpc_encode_struct_member(xcp__buf *out, bool first,
                                      const char *name, const xcp_value *v);
int xcp__jsonrpc_encode_struct_tail(xcp__buf *out, int version,
                                    const xcp_value *id);

/*
 * Append the failure envelope: v1 {"result":null,"error":[code,p...],
 * "id":ID}; v2 {"jsonrpc":"2.0","error":{"code":1,"message":code,
 * "data":[p...]},"id":ID}.
 */
int xcp__jsonrpc_encode_failure(xcp__buf *out, int version,
                                const xcp_value *id, const char *code,
                                size_t n, const char *const *params);

/* ---- JSON-RPC: client side --------------------------------------------- */

/*
 * Append a JSON-RPC 2.0 request {"jsonrpc":"2.0","method":M,"params":[...],
 * "id":id}. params: ARRAY or NULL. Records are written with their fields
 * that are not NONE.
 */
int xcp__jsonrpc_encode_request(const char *method, const xcp_value *params,
                                int64_t id, xcp__buf *out);

/*
 * Decode a JSON-RPC 1.0 or 2.0 response. Success: 0, *result the result
 * (NONE when absent or null). Failure: XCP__RPC_FAILURE, *error the
 * [CODE, params...] strings, from a v1/plain error array, or a v2 error
 * object's message followed by its data array. *id (may be NULL) gets the
 * echoed id (INT, STRING or NONE). Both or neither of result and error in
 * 2.0, or a "jsonrpc" other than "2.0", are XCP_EINVAL.
 */
int xcp__jsonrpc_decode_response(const char *body, size_t len,
                                 xcp_value *result, xcp_value *error,
                                 xcp_value *id, char *err, size_t errlen);

#endif
