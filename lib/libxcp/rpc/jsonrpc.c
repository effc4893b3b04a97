/*
 * JSON-RPC codec of the XenAPI wire protocol (wire spec section 3): v1.0
 * and v2.0 request decoding with xapi's detection rules, the success and
 * failure envelopes with the echoed id, and the client side (v2.0
 * requests, v1/v2 responses) for the remote driver.
 *
 * Parsing is jansson's (with its own nesting cap) followed by a
 * conversion that enforces our depth and size limits; output is written
 * directly, compact, so that key order and number formats are exactly
 * ours. Bytes that are not UTF-8 are handled as rpc.h describes.
 */
#include "rpc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

/* ======================================================================
 * Decoding
 * ====================================================================== */

/*
 * XAPI's JSON-RPC (rpclib over Yojson, not in its "std" mode) writes a
 * float that is not finite as the bare token NaN, Infinity or -Infinity
 * (a data source's unbounded max is infinity), and reads them back.
 * jansson refuses them: outside strings each becomes the string
 * "\u0000<token>", which jstring turns back into the float. No string
 * of a body that had \u0000 in a string is rewritten (it would be
 * ambiguous): such a body with these tokens stays unparsable. NULL when
 * there is nothing to rewrite (or no memory: jansson then reports it).
 */
static const char *const nonfinite_tokens[] = {"NaN", "Infinity",
                                               "-Infinity"};

static size_t nonfinite_at(const char *p, const char *end)
{
    size_t t, n;

    for (t = 0; t < 3; t++) {
        n = strlen(nonfinite_tokens[t]);
        if ((size_t)(end - p) >= n && !memcmp(p, nonfinite_tokens[t], n))
            return n;
    }
    return 0;
}

static char *nonfinite_rewrite(const char *body, size_t len, size_t *out_len)
{
    const char *p, *end = body + len;
    bool str = false;
    size_t found = 0, n;
    char *out, *w;

    for (p = body; p < end; p++) {
        if (str) {
            if (*p == '\\') {
                if (end - p >= 6 && !memcmp(p + 1, "u0000", 5))
                    return NULL;
                p++;
            } else if (*p == '"') {
                str = false;
            }
        } else if (*p == '"') {
            str = true;
        } else if ((n = nonfinite_at(p, end)) > 0) {
            found++;
            p += n - 1;
        }
    }
    if (!found || !(out = malloc(len + found * 8 + 1)))
        return NULL;
    str = false;
    for (p = body, w = out; p < end; p++) {
        if (str) {
            if (*p == '\\' && p + 1 < end) {
                *w++ = *p++;
            } else if (*p == '"') {
                str = false;
            }
        } else if (*p == '"') {
            str = true;
        } else if ((n = nonfinite_at(p, end)) > 0) {
            memcpy(w, "\"\\u0000", 7); /* "\u0000 */
            memcpy(w + 7, p, n);
            w[7 + n] = '"';
            w += 8 + n;
            p += n - 1;
            continue;
        }
        *w++ = *p;
    }
    *w = '\0';
    *out_len = (size_t)(w - out);
    return out;
}

static int jstring(struct xcp__rpc_dec *d, json_t *j, xcp_value *out)
{
    const char *s = json_string_value(j);
    size_t n = json_string_length(j);

    if (d->nonfinite && n > 1 && s[0] == '\0') {
        if (n == 4 && !memcmp(s + 1, "NaN", 3)) {
            xcp_value_set_float(out, NAN);
            return 0;
        }
        if (n == 9 && !memcmp(s + 1, "Infinity", 8)) {
            xcp_value_set_float(out, INFINITY);
            return 0;
        }
        if (n == 10 && !memcmp(s + 1, "-Infinity", 9)) {
            xcp_value_set_float(out, -INFINITY);
            return 0;
        }
    }
    return xcp__rpc_string_value(out, json_string_value(j),
                                 json_string_length(j), d->sflags);
}

/* jansson value -> xcp_value (out overwritten; NONE on failure). */
static int jconv(struct xcp__rpc_dec *d, json_t *j, xcp_value *out,
                 int depth)
{
    size_t i, n;
    void *it;
    int rc;

    out->kind = XCP_VAL_NONE;
    if ((rc = xcp__rpc_count_value(d, depth)) < 0)
        return rc;
    switch (json_typeof(j)) {
    case JSON_STRING:
        return jstring(d, j, out);
    case JSON_INTEGER:
        xcp_value_set_int(out, (int64_t)json_integer_value(j));
        return 0;
    case JSON_REAL:
        xcp_value_set_float(out, json_real_value(j));
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        xcp_value_set_bool(out, json_is_true(j));
        return 0;
    case JSON_NULL:
        return 0;
    case JSON_ARRAY:
        n = json_array_size(j);
        if ((rc = xcp_value_set_array(out, n)) < 0)
            return rc;
        for (i = 0; i < n; i++)
            if ((rc = jconv(d, json_array_get(j, i), &out->u.arr.items[i],
                            depth + 1)) < 0)
                goto fail;
        return 0;
    case JSON_OBJECT:
        n = json_object_size(j);
        xcp_value_set_struct(out);
        out->u.st.keys = xcp__calloc(n, sizeof(char *));
        out->u.st.vals = xcp__calloc(n, sizeof(xcp_value));
        if (!out->u.st.keys || !out->u.st.vals) {
            rc = xcp__oom();
            goto fail;
        }
        for (it = json_object_iter(j); it && out->u.st.n < n;
             it = json_object_iter_next(j, it)) {
            i = out->u.st.n;
            out->u.st.keys[i] = xcp__rpc_wire_string(
                json_object_iter_key(it), json_object_iter_key_len(it),
                d->sflags);
            if (!out->u.st.keys[i]) {
                rc = XCP_ENOMEM;
                goto fail;
            }
            out->u.st.vals[i].kind = XCP_VAL_NONE;
            out->u.st.n = i + 1;
            if ((rc = jconv(d, json_object_iter_value(it),
                            &out->u.st.vals[i], depth + 1)) < 0)
                goto fail;
        }
        return 0;
    }
    return xcp__rpc_fail(d, "unknown JSON type");
fail:
    xcp_value_dispose(out);
    return rc;
}

/* Parse body[len] into *root (a JSON object, or an error), with the
 * limits and UTF-8 handling of requests or responses. */
static int jparse(struct xcp__rpc_dec *d, const char *body, size_t len,
                  bool request, json_t **root)
{
    json_error_t jerr;
    char *nb, *nf;
    size_t nf_len = 0;
    int rc;

    *root = NULL;
    if ((rc = xcp__rpc_open_body(d, &body, &len, request, &nb)) < 0)
        return rc;
    if ((nf = nonfinite_rewrite(body, len, &nf_len))) {
        body = nf;
        len = nf_len;
        d->nonfinite = true;
    }
    /* JSON_ALLOW_NUL: a \u0000 reaches our string handling, which marks
     * it invalid rather than making the whole body unparsable. */
    *root = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
    if (!*root) {
        rc = xcp__rpc_fail(d, "JSON line %d column %d: %s", jerr.line,
                           jerr.column, jerr.text);
        goto out;
    }
    if (json_is_array(*root)) {
        rc = xcp__rpc_fail(d, "batch requests are not supported");
        goto out;
    }
    if (!json_is_object(*root))
        rc = xcp__rpc_fail(d, "not a JSON object");
out:
    if (rc < 0 && *root) {
        json_decref(*root);
        *root = NULL;
    }
    free(nf);
    free(nb);
    return rc;
}

/* The "jsonrpc" member: absent 1, "2.0" 2, anything else an error. */
static int jversion(struct xcp__rpc_dec *d, json_t *root, int *version)
{
    json_t *v = json_object_get(root, "jsonrpc");

    if (!v) {
        *version = 1;
        return 0;
    }
    if (json_is_string(v) && !strcmp(json_string_value(v), "2.0")) {
        *version = 2;
        return 0;
    }
    return xcp__rpc_fail(d, "invalid field 'jsonrpc'");
}

/* An id kept with its type: integer or string. */
static int jid(struct xcp__rpc_dec *d, json_t *j, xcp_value *id)
{
    if (json_is_integer(j)) {
        xcp_value_set_int(id, (int64_t)json_integer_value(j));
        return 0;
    }
    if (json_is_string(j))
        return jstring(d, j, id);
    return xcp__rpc_fail(d, "invalid field 'id'");
}

/* The params member as an ARRAY, by the request's version's rules. */
static int jparams(struct xcp__rpc_dec *d, json_t *p, int version,
                   xcp_value *out)
{
    int rc;

    if (json_is_array(p))
        return jconv(d, p, out, 0);
    if (version == 2 && (!p || json_is_null(p)))
        return xcp_value_set_array(out, 0);
    if (version == 2 && json_is_object(p)) {
        if ((rc = xcp_value_set_array(out, 1)) < 0)
            return rc;
        ++d->nvalues;
        if ((rc = jconv(d, p, &out->u.arr.items[0], 1)) < 0)
            xcp_value_dispose(out);
        return rc;
    }
    return xcp__rpc_fail(d, p ? "invalid field 'params'"
                              : "required field 'params' is missing");
}

int xcp__jsonrpc_decode_request(const char *body, size_t len, char **method,
                                xcp_value *params, xcp_value *id,
                                int *version, char *err, size_t errlen)
{
    struct xcp__rpc_dec d = {.err = err, .errlen = errlen};
    json_t *root = NULL, *m, *i;
    int rc;

    *method = NULL;
    params->kind = XCP_VAL_NONE;
    id->kind = XCP_VAL_NONE;
    *version = 1;
    if (err && errlen)
        err[0] = '\0';
    if ((rc = jparse(&d, body, len, true, &root)) < 0 ||
        (rc = jversion(&d, root, version)) < 0)
        goto out;
    m = json_object_get(root, "method");
    if (!json_is_string(m)) {
        rc = xcp__rpc_fail(&d, m ? "invalid field 'method'"
                                 : "required field 'method' is missing");
        goto out;
    }
    i = json_object_get(root, "id");
    if (!i || json_is_null(i)) {
        rc = xcp__rpc_fail(&d, "notifications (no id) are not supported");
        goto out;
    }
    if ((rc = jid(&d, i, id)) < 0 ||
        (rc = jparams(&d, json_object_get(root, "params"), *version,
                      params)) < 0)
        goto out;
    *method = xcp__rpc_wire_string(json_string_value(m),
                                   json_string_length(m), d.sflags);
    if (!*method) {
        rc = XCP_ENOMEM;
        goto out;
    }
    rc = xcp__rpc_find_invalid(params) ? XCP__RPC_BAD_UTF8 : 0;
out:
    if (root)
        json_decref(root);
    if (rc < 0) {
        free(*method);
        *method = NULL;
        xcp_value_dispose(params);
        xcp_value_dispose(id);
    }
    return rc;
}

/* An error member as [CODE, params...]: a plain array (v1, and xapi's
 * pre-dispatch errors), a v2 object {code, message, data}, or a bare
 * string. */
static int jerror(struct xcp__rpc_dec *d, json_t *e, xcp_value *error)
{
    json_t *msg, *data;
    size_t i, n;
    int rc;

    if (json_is_array(e)) {
        if ((rc = jconv(d, e, error, 0)) < 0)
            return rc;
    } else if (json_is_string(e)) {
        if ((rc = xcp_value_set_array(error, 1)) < 0)
            return rc;
        if ((rc = jconv(d, e, &error->u.arr.items[0], 1)) < 0)
            return rc;
    } else if (json_is_object(e)) {
        msg = json_object_get(e, "message");
        data = json_object_get(e, "data");
        if (!json_is_string(msg))
            return xcp__rpc_fail(d, "error object without a message");
        n = json_is_array(data) ? json_array_size(data)
                                : (data && !json_is_null(data) ? 1 : 0);
        if ((rc = xcp_value_set_array(error, n + 1)) < 0 ||
            (rc = jconv(d, msg, &error->u.arr.items[0], 1)) < 0)
            return rc;
        /* data: an array of params, or a lone scalar as the one param */
        for (i = 0; i < n; i++)
            if ((rc = jconv(d, json_is_array(data) ? json_array_get(data, i)
                                                   : data,
                            &error->u.arr.items[i + 1], 1)) < 0)
                return rc;
    } else {
        return xcp__rpc_fail(d, "invalid field 'error'");
    }
    return xcp__rpc_error_list(error, d->err, d->errlen);
}

int xcp__jsonrpc_decode_response(const char *body, size_t len,
                                 xcp_value *result, xcp_value *error,
                                 xcp_value *id, char *err, size_t errlen)
{
    struct xcp__rpc_dec d = {.err = err, .errlen = errlen};
    json_t *root = NULL, *res, *er, *i;
    bool has_res, has_err;
    int version, rc;

    result->kind = XCP_VAL_NONE;
    error->kind = XCP_VAL_NONE;
    if (id)
        id->kind = XCP_VAL_NONE;
    if (err && errlen)
        err[0] = '\0';
    if ((rc = jparse(&d, body, len, false, &root)) < 0 ||
        (rc = jversion(&d, root, &version)) < 0)
        goto out;
    res = json_object_get(root, "result");
    er = json_object_get(root, "error");
    has_res = res && !json_is_null(res);
    has_err = er && !json_is_null(er);
    if ((has_res && has_err) || (version == 2 && !res && !er)) {
        rc = xcp__rpc_fail(&d, "a response needs exactly one of result "
                               "and error");
        goto out;
    }
    i = json_object_get(root, "id");
    if (id && (json_is_integer(i) || json_is_string(i)) &&
        (rc = jid(&d, i, id)) < 0)
        goto out;
    if (has_err) {
        rc = jerror(&d, er, error);
        if (rc == 0)
            rc = XCP__RPC_FAILURE;
    } else if (has_res) {
        rc = jconv(&d, res, result, 0);
    }
out:
    if (root)
        json_decref(root);
    if (rc < 0) {
        xcp_value_dispose(result);
        xcp_value_dispose(error);
        if (id)
            xcp_value_dispose(id);
    }
    return rc;
}

/* ======================================================================
 * Encoding
 * ====================================================================== */

static void json_emit(xcp__buf *b, const char *p, size_t n, uint32_t cp)
{
    switch (cp) {
    case '"':
        xcp__buf_add(b, "\\\"", 2);
        return;
    case '\\':
        xcp__buf_add(b, "\\\\", 2);
        return;
    case '\b':
        xcp__buf_add(b, "\\b", 2);
        return;
    case '\f':
        xcp__buf_add(b, "\\f", 2);
        return;
    case '\n':
        xcp__buf_add(b, "\\n", 2);
        return;
    case '\r':
        xcp__buf_add(b, "\\r", 2);
        return;
    case '\t':
        xcp__buf_add(b, "\\t", 2);
        return;
    default:
        if (cp < 0x20 || cp == 0x7F)
            xcp__buf_printf(b, "\\u%04x", (unsigned)cp);
        else
            xcp__buf_add(b, p, n);
    }
}

static void json_str(xcp__buf *b, const char *s)
{
    const char *p;

    xcp__buf_addc(b, '"');
    for (p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7F ||
            *p == '"' || *p == '\\')
            break;
    if (*p)
        xcp__rpc_utf8_walk(b, s, json_emit);
    else
        xcp__buf_add(b, s, (size_t)(p - s));
    xcp__buf_addc(b, '"');
}

/* Yojson's float output: %.16g, or %.17g when that does not read back
 * exactly, with ".0" so that an integral value stays a float. */
static void json_float(xcp__buf *b, double f)
{
    char tmp[40];
    double back;

    if (!isfinite(f)) { /* as Yojson writes them (XAPI's JSON-RPC) */
        xcp__buf_adds(b, isnan(f) ? "NaN" : f > 0 ? "Infinity" : "-Infinity");
        return;
    }
    xcp__format_double(tmp, sizeof(tmp), 16, f);
    if (xcp__parse_double(tmp, &back) < 0 || back != f)
        xcp__format_double(tmp, sizeof(tmp), 17, f);
    xcp__buf_adds(b, tmp);
    if (!strpbrk(tmp, ".eE"))
        xcp__buf_adds(b, ".0");
}

/* client: records carry only their fields that are not NONE. */
static void jenc_value(xcp__buf *b, const xcp_value *v, bool client);

/* "name":value, after a comma unless first. */
static void jmember(xcp__buf *b, bool first, const char *name,
                    const xcp_value *v, bool client)
{
    if (!first)
        xcp__buf_addc(b, ',');
    json_str(b, name);
    xcp__buf_addc(b, ':');
    jenc_value(b, v, client);
}

static void jenc_value(xcp__buf *b, const xcp_value *v, bool client)
{
    const struct xcp__class *c;
    char tmp[40];
    bool first;
    size_t i;

    switch (v->kind) {
    case XCP_VAL_NONE:
        xcp__buf_adds(b, "null");
        break;
    case XCP_VAL_STRING:
        json_str(b, v->u.s);
        break;
    case XCP_VAL_INT:
        xcp__buf_printf(b, "%lld", (long long)v->u.i);
        break;
    case XCP_VAL_FLOAT:
        json_float(b, v->u.f);
        break;
    case XCP_VAL_BOOL:
        xcp__buf_adds(b, v->u.b ? "true" : "false");
        break;
    case XCP_VAL_DATETIME:
        xcp_datetime_format(tmp, sizeof(tmp), v->u.t);
        json_str(b, tmp);
        break;
    case XCP_VAL_ARRAY:
        xcp__buf_addc(b, '[');
        for (i = 0; i < v->u.arr.n; i++) {
            if (i)
                xcp__buf_addc(b, ',');
            jenc_value(b, &v->u.arr.items[i], client);
        }
        xcp__buf_addc(b, ']');
        break;
    case XCP_VAL_STRUCT:
        xcp__buf_addc(b, '{');
        for (i = 0; i < v->u.st.n; i++)
            jmember(b, i == 0, v->u.st.keys[i], &v->u.st.vals[i], client);
        xcp__buf_addc(b, '}');
        break;
    case XCP_VAL_RECORD:
        c = &xcp__classes[v->u.rec.cls];
        first = true;
        xcp__buf_addc(b, '{');
        for (i = 0; i < c->nfields; i++) {
            if (client && v->u.rec.fields[i].kind == XCP_VAL_NONE)
                continue;
            if (!first)
                xcp__buf_addc(b, ',');
            first = false;
            json_str(b, c->fields[i].name);
            xcp__buf_addc(b, ':');
            jenc_value(b, &v->u.rec.fields[i], client);
        }
        xcp__buf_addc(b, '}');
        break;
    }
}

static void jenc_id(xcp__buf *b, const xcp_value *id)
{
    if (id && id->kind == XCP_VAL_INT)
        xcp__buf_printf(b, "%lld", (long long)id->u.i);
    else if (id && id->kind == XCP_VAL_STRING)
        json_str(b, id->u.s);
    else
        xcp__buf_adds(b, "null");
}

int xcp__jsonrpc_encode_value(xcp__buf *out, const xcp_value *v)
{
    jenc_value(out, v, false);
    return xcp__rpc_buf_status(out);
}

/* A success envelope around its result. */
static void jsuccess_head(xcp__buf *out, int version)
{
    xcp__buf_adds(out, version == 2 ? "{\"jsonrpc\":\"2.0\",\"result\":"
                                    : "{\"result\":");
}

static void jsuccess_tail(xcp__buf *out, int version, const xcp_value *id)
{
    xcp__buf_adds(out, version == 2 ? ",\"id\":" : ",\"error\":null,\"id\":");
    jenc_id(out, id);
    xcp__buf_addc(out, '}');
}

int xcp__jsonrpc_encode_success(xcp__buf *out, int version,
                                const xcp_value *id, const xcp_value *result,
                                unsigned quirks)
{
    XCP__UNUSED(quirks);
    jsuccess_head(out, version);
    if (!result || result->kind == XCP_VAL_NONE)
        xcp__buf_adds(out, "\"\""); /* void */
    else
        jenc_value(out, result, false);
    jsuccess_tail(out, version, id);
    return xcp__rpc_buf_status(out);
}

int xcp__jsonrpc_encode_struct_head(xcp__buf *out, int version)
{
    jsuccess_head(out, version);
    xcp__buf_addc(out, '{');
    return xcp__rpc_buf_status(out);
}

int xcp__jsonrpc_encode_struct_member(xcp__buf *out, bool first,
                                      const char *name, const xcp_value *v)
{
    jmember(out, first, name, v, false);
    return xcp__rpc_buf_status(out);
}

int xcp__jsonrpc_encode_struct_tail(xcp__buf *out, int version,
                                    const xcp_value *id)
{
    xcp__buf_addc(out, '}');
    jsuccess_tail(out, version, id);
    return xcp__rpc_buf_status(out);
}

int xcp__jsonrpc_encode_failure(xcp__buf *out, int version,
                                const xcp_value *id, const char *code,
                                size_t n, const char *const *params)
{
    size_t i;

    if (version == 2) {
        xcp__buf_adds(out, "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":1,"
                      "\"message\":");
        json_str(out, code ? code : "");
        xcp__buf_adds(out, ",\"data\":[");
    } else {
        xcp__buf_adds(out, "{\"result\":null,\"error\":[");
        json_str(out, code ? code : "");
    }
    for (i = 0; i < n; i++) {
        if (i || version != 2)
            xcp__buf_addc(out, ',');
        json_str(out, params[i] ? params[i] : "");
    }
    xcp__buf_adds(out, version == 2 ? "]},\"id\":" : "],\"id\":");
    jenc_id(out, id);
    xcp__buf_addc(out, '}');
    return xcp__rpc_buf_status(out);
}

int xcp__jsonrpc_encode_request(const char *method, const xcp_value *params,
                                int64_t id, xcp__buf *out)
{
    size_t i;

    xcp__buf_adds(out, "{\"jsonrpc\":\"2.0\",\"method\":");
    json_str(out, method ? method : "");
    xcp__buf_adds(out, ",\"params\":[");
    if (params && params->kind == XCP_VAL_ARRAY)
        for (i = 0; i < params->u.arr.n; i++) {
            if (i)
                xcp__buf_addc(out, ',');
            jenc_value(out, &params->u.arr.items[i], true);
        }
    xcp__buf_printf(out, "],\"id\":%lld}", (long long)id);
    return xcp__rpc_buf_status(out);
}
