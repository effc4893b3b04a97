/*
 * XML-RPC codec of the XenAPI wire protocol (wire spec section 2), both
 * sides: decoding methodCall bodies and writing the Status/Value envelopes
 * byte for byte as xapi does, and, for the remote driver, writing
 * methodCall bodies as the C SDK does and decoding methodResponse.
 *
 * Parsing uses libxml2's streaming xmlTextReader (no tree is built, so big
 * get_all_records responses stay cheap), with external entities and the
 * network off and DTDs refused outright. The few helpers both codecs need
 * (UTF-8 rules, marking of bytes that are not UTF-8, number formatting)
 * live at the top of this file; rpc.h documents them.
 */
#include "rpc.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <strings.h>

#include "xml_lib.h"

/* ======================================================================
 * Shared helpers
 * ====================================================================== */

/* Length of the canonical UTF-8 sequence at s (at most n bytes) and its
 * code point, or 0 when the bytes are not one (RFC 3629: no overlongs,
 * surrogates or values above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t len, i;
    uint32_t v;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

bool xcp__rpc_string_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, k;
    uint32_t cp;

    while (i < n) {
        k = utf8_seq(p + i, n - i, &cp);
        if (k == 0)
            return false;
        if (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r')
            return false;
        if ((cp >= 0xFDD0 && cp <= 0xFDEF) || (cp & 0xFFFE) == 0xFFFE)
            return false;
        i += k;
    }
    return true;
}

const char *xcp__rpc_find_invalid(const xcp_value *v)
{
    const char *bad;
    size_t i;

    switch (v->kind) {
    case XCP_VAL_STRING:
        return xcp__rpc_string_valid(v->u.s, strlen(v->u.s)) ? NULL : v->u.s;
    case XCP_VAL_ARRAY:
        for (i = 0; i < v->u.arr.n; i++)
            if ((bad = xcp__rpc_find_invalid(&v->u.arr.items[i])))
                return bad;
        return NULL;
    case XCP_VAL_STRUCT:
        for (i = 0; i < v->u.st.n; i++) {
            if (!xcp__rpc_string_valid(v->u.st.keys[i],
                                       strlen(v->u.st.keys[i])))
                return v->u.st.keys[i];
            if ((bad = xcp__rpc_find_invalid(&v->u.st.vals[i])))
                return bad;
        }
        return NULL;
    case XCP_VAL_RECORD:
        for (i = 0; i < xcp__classes[v->u.rec.cls].nfields; i++)
            if ((bad = xcp__rpc_find_invalid(&v->u.rec.fields[i])))
                return bad;
        return NULL;
    default:
        return NULL;
    }
}

static size_t utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Marked bytes: U+F0000 + b, b in 0x80..0xFF, in plane 15's private use
 * area (legal in XML and JSON, never produced by our encoders). */
#define MARK_BASE 0xF0000u

/* Whether the XML declaration at the head of body names an encoding other
 * than UTF-8, or a BOM says UTF-16/32: then the parser transcodes and
 * bytes must not be touched. */
static bool declares_other_encoding(const char *body, size_t len)
{
    const unsigned char *u = (const unsigned char *)body;
    const char *end, *p;
    size_t n = len < 256 ? len : 256;
    char q;

    if (len >= 2 && ((u[0] == 0xFE && u[1] == 0xFF) ||
                     (u[0] == 0xFF && u[1] == 0xFE) || u[0] == 0 ||
                     u[1] == 0))
        return true;
    if (n < 5 || memcmp(body, "<?xml", 5) != 0)
        return false;
    end = memmem(body, n, "?>", 2);
    if (!end)
        return false;
    p = memmem(body, (size_t)(end - body), "encoding", 8);
    if (!p)
        return false;
    for (p += 8; p < end && (*p == ' ' || *p == '=' || *p == '\t' ||
                             *p == '\n' || *p == '\r'); p++)
        ;
    if (p >= end || (*p != '"' && *p != '\''))
        return false;
    q = *p++;
    if ((size_t)(end - p) >= 6 && !strncasecmp(p, "utf-8", 5) && p[5] == q)
        return false;
    if ((size_t)(end - p) >= 5 && !strncasecmp(p, "utf8", 4) && p[4] == q)
        return false;
    return true;
}

char *xcp__rpc_wire_body(const char *body, size_t len, bool mark,
                         size_t *outlen)
{
    const unsigned char *u = (const unsigned char *)body;
    xcp__buf b = {0};
    size_t i = 0, k, start;
    uint32_t cp;
    char tmp[4];

    *outlen = 0;
    while (i < len && (k = utf8_seq(u + i, len - i, &cp)) != 0)
        i += k;
    if (i == len || declares_other_encoding(body, len))
        return NULL;
    xcp__buf_add(&b, body, i);
    while (i < len) {
        start = i;
        while (i < len && (k = utf8_seq(u + i, len - i, &cp)) != 0)
            i += k;
        xcp__buf_add(&b, body + start, i - start);
        if (i < len) {
            if (mark)
                xcp__buf_add(&b, tmp, utf8_put(tmp, MARK_BASE + u[i]));
            else
                xcp__buf_adds(&b, "\xEF\xBF\xBD");
            i++;
        }
    }
    if (b.oom) {
        xcp__buf_free(&b);
        *outlen = 1;
        xcp__oom();
        return NULL;
    }
    *outlen = b.len;
    return xcp__buf_steal(&b);
}

char *xcp__rpc_wire_string(const char *p, size_t n, unsigned flags)
{
    const unsigned char *u = (const unsigned char *)p;
    char *out, *o;
    size_t i = 0, k, nuls = 0;
    uint32_t cp;

    for (k = 0; k < n; k++)
        nuls += u[k] == 0;
    /* Each NUL becomes at most 3 bytes; unmarking only shrinks. */
    out = malloc(n + 2 * nuls + 1);
    if (!out) {
        xcp__oom();
        return NULL;
    }
    o = out;
    while (i < n) {
        if (u[i] == 0) {
            if (flags & XCP__RPC_NUL_BAD) {
                *o++ = (char)0xC0;
                *o++ = (char)0x80;
            } else {
                o += utf8_put(o, 0xFFFD);
            }
            i++;
            continue;
        }
        if ((flags & XCP__RPC_UNMARK) && u[i] == 0xF3 &&
            (k = utf8_seq(u + i, n - i, &cp)) == 4 &&
            cp >= MARK_BASE + 0x80 && cp <= MARK_BASE + 0xFF) {
            *o++ = (char)(cp - MARK_BASE);
            i += 4;
            continue;
        }
        *o++ = (char)u[i++];
    }
    *o = '\0';
    return out;
}

int xcp__rpc_string_value(xcp_value *out, const char *p, size_t n,
                          unsigned flags)
{
    out->u.s = xcp__rpc_wire_string(p, n, flags);
    if (!out->u.s)
        return XCP_ENOMEM;
    out->kind = XCP_VAL_STRING;
    return 0;
}

int xcp__rpc_fail(struct xcp__rpc_dec *d, const char *fmt, ...)
{
    va_list ap;

    if (d->err && d->errlen && !d->reported) {
        va_start(ap, fmt);
        vsnprintf(d->err, d->errlen, fmt, ap);
        va_end(ap);
    }
    return XCP_EINVAL;
}

int xcp__rpc_open_body(struct xcp__rpc_dec *d, const char **body,
                       size_t *len, bool request, char **owned)
{
    size_t max = request ? XCP__RPC_MAX_REQUEST_BODY
                         : XCP__RPC_MAX_RESPONSE_BODY;
    size_t n;

    *owned = NULL;
    d->maxvalues = request ? XCP__RPC_MAX_REQUEST_VALUES
                           : XCP__RPC_MAX_RESPONSE_VALUES;
    d->sflags = request ? XCP__RPC_NUL_BAD : 0;
    if (!*body || *len == 0)
        return xcp__rpc_fail(d, "empty body");
    if (*len > max)
        return xcp__rpc_fail(d, "body larger than %zu bytes", max);
    *owned = xcp__rpc_wire_body(*body, *len, request, &n);
    if (!*owned && n)
        return XCP_ENOMEM;
    if (*owned) {
        *body = *owned;
        *len = n;
        d->sflags |= request ? XCP__RPC_UNMARK : 0;
    }
    return 0;
}

int xcp__rpc_count_value(struct xcp__rpc_dec *d, int depth)
{
    if (depth > XCP__RPC_MAX_DEPTH)
        return xcp__rpc_fail(d, "values nested deeper than %d",
                             XCP__RPC_MAX_DEPTH);
    if (++d->nvalues > d->maxvalues)
        return xcp__rpc_fail(d, "more than %zu values", d->maxvalues);
    return 0;
}

int xcp__rpc_buf_status(const xcp__buf *b)
{
    return b->oom ? xcp__oom() : 0;
}

int xcp__rpc_error_list(xcp_value *list, char *err, size_t errlen)
{
    struct xcp__rpc_dec d = {.err = err, .errlen = errlen};
    xcp_value *it;
    char tmp[40];
    size_t i;

    if (list->kind != XCP_VAL_ARRAY || list->u.arr.n == 0)
        return xcp__rpc_fail(&d, "error description is not a non-empty "
                             "array");
    for (i = 0; i < list->u.arr.n; i++) {
        it = &list->u.arr.items[i];
        switch (it->kind) {
        case XCP_VAL_STRING:
            continue;
        case XCP_VAL_NONE:
            tmp[0] = '\0';
            break;
        case XCP_VAL_INT:
            snprintf(tmp, sizeof(tmp), "%lld", (long long)it->u.i);
            break;
        case XCP_VAL_FLOAT:
            xcp__format_double(tmp, sizeof(tmp), 16, it->u.f);
            break;
        case XCP_VAL_BOOL:
            snprintf(tmp, sizeof(tmp), "%s", it->u.b ? "true" : "false");
            break;
        case XCP_VAL_DATETIME:
            xcp_datetime_format(tmp, sizeof(tmp), it->u.t);
            break;
        default:
            return xcp__rpc_fail(&d, "error description item %zu is not "
                                 "a string", i);
        }
        if (xcp_value_set_string(it, tmp) < 0)
            return XCP_ENOMEM;
    }
    return 0;
}

void xcp__rpc_utf8_walk(xcp__buf *b, const char *s,
                        void (*emit)(xcp__buf *b, const char *p, size_t n,
                                     uint32_t cp))
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), i = 0, k;
    uint32_t cp;

    while (i < n) {
        k = utf8_seq(u + i, n - i, &cp);
        if (k == 0) {
            emit(b, "\xEF\xBF\xBD", 3, 0xFFFD);
            i++;
        } else {
            emit(b, s + i, k, cp);
            i += k;
        }
    }
}

/* ======================================================================
 * Decoding
 * ====================================================================== */

enum tok { TK_EOF, TK_START, TK_END, TK_TEXT };

/* One decoding: the reader, the current token, limits, and the first
 * error. */
struct xdec {
    const xcp__xml_lib *x; /* libxml2, loaded at the first decoding */
    xmlTextReaderPtr r;
    int tok;
    const char *name;   /* TK_START, TK_END: element name (reader's) */
    const char *text;   /* TK_TEXT: the characters (reader's) */
    bool empty_pending; /* the current <x/> still owes its TK_END */
    /* err, limits, string flags; c.reported: the XML parser's error
     * handler saw an error (and its message is in c.err) */
    struct xcp__rpc_dec c;
    xcp__buf acc;       /* text being collected */
};

#define dfail(d, ...) xcp__rpc_fail(&(d)->c, __VA_ARGS__)

static void on_xml_error(void *arg, xmlErrorPtr e)
{
    struct xdec *d = arg;
    size_t n;

    if (!e || e->level < XML_ERR_ERROR || d->c.reported)
        return;
    if (d->c.err && d->c.errlen) {
        snprintf(d->c.err, d->c.errlen, "XML line %d: %s", e->line,
                 e->message ? e->message : "malformed");
        n = strlen(d->c.err);
        while (n > 0 &&
               (d->c.err[n - 1] == '\n' || d->c.err[n - 1] == ' '))
            d->c.err[--n] = '\0';
    }
    d->c.reported = true;
}

static bool all_ws(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return false;
    return true;
}

/* Move to the next token: elements, their ends (also for <x/>), and
 * character data; comments and processing instructions are skipped. */
static int advance(struct xdec *d)
{
    int rc;

    if (d->empty_pending) {
        d->empty_pending = false;
        d->tok = TK_END;
        return 0;
    }
    for (;;) {
        rc = d->x->TextReaderRead(d->r);
        if (rc < 0 || d->c.reported)
            return dfail(d, "malformed XML");
        if (rc == 0) {
            d->tok = TK_EOF;
            return 0;
        }
        switch (d->x->TextReaderNodeType(d->r)) {
        case XML_READER_TYPE_ELEMENT:
            d->tok = TK_START;
            d->name = (const char *)d->x->TextReaderConstName(d->r);
            d->empty_pending = d->x->TextReaderIsEmptyElement(d->r) == 1;
            return d->name ? 0 : dfail(d, "unnamed element");
        case XML_READER_TYPE_END_ELEMENT:
            d->tok = TK_END;
            d->name = (const char *)d->x->TextReaderConstName(d->r);
            return d->name ? 0 : dfail(d, "unnamed element");
        case XML_READER_TYPE_TEXT:
        case XML_READER_TYPE_CDATA:
        case XML_READER_TYPE_WHITESPACE:
        case XML_READER_TYPE_SIGNIFICANT_WHITESPACE:
            d->tok = TK_TEXT;
            d->text = (const char *)d->x->TextReaderConstValue(d->r);
            if (!d->text)
                d->text = "";
            return 0;
        case XML_READER_TYPE_COMMENT:
        case XML_READER_TYPE_PROCESSING_INSTRUCTION:
        case XML_READER_TYPE_XML_DECLARATION:
            continue;
        case XML_READER_TYPE_DOCUMENT_TYPE:
            return dfail(d, "DTDs are not allowed");
        default:
            return dfail(d, "unexpected XML node (type %d)",
                         d->x->TextReaderNodeType(d->r));
        }
    }
}

/* Skip whitespace-only character data; any other text is an error. */
static int skip_ws(struct xdec *d)
{
    int rc;

    while (d->tok == TK_TEXT) {
        if (!all_ws(d->text, strlen(d->text)))
            return dfail(d, "unexpected text");
        if ((rc = advance(d)) < 0)
            return rc;
    }
    return 0;
}

static bool at_start(const struct xdec *d, const char *name)
{
    return d->tok == TK_START && strcmp(d->name, name) == 0;
}

static int expect_start(struct xdec *d, const char *name)
{
    int rc;

    if ((rc = skip_ws(d)) < 0)
        return rc;
    if (!at_start(d, name))
        return dfail(d, "expected <%s>", name);
    return advance(d);
}

static int expect_end(struct xdec *d, const char *name)
{
    int rc;

    if ((rc = skip_ws(d)) < 0)
        return rc;
    if (d->tok != TK_END)
        return dfail(d, "expected </%s>", name);
    return advance(d);
}

/* Collect consecutive character data into d->acc (reset first). */
static int collect_text(struct xdec *d)
{
    int rc;

    d->acc.len = 0;
    if (d->acc.data)
        d->acc.data[0] = '\0';
    while (d->tok == TK_TEXT) {
        xcp__buf_adds(&d->acc, d->text);
        if ((rc = advance(d)) < 0)
            return rc;
    }
    if (d->acc.oom)
        return xcp__oom();
    return 0;
}

/* The text of a simple element whose start was consumed: collect it and
 * consume the end. */
static int element_text(struct xdec *d, const char *name)
{
    int rc;

    if ((rc = collect_text(d)) < 0)
        return rc;
    if (d->tok != TK_END)
        return dfail(d, "<%s> holds markup", name);
    return advance(d);
}

static const char *acc_str(const struct xdec *d)
{
    return d->acc.data ? d->acc.data : "";
}

/* acc without the surrounding XML whitespace (in place). */
static const char *acc_trimmed(struct xdec *d)
{
    char *s = d->acc.data;
    size_t n = d->acc.len;

    if (!s)
        return "";
    while (n > 0 && all_ws(s + n - 1, 1))
        s[--n] = '\0';
    while (*s && all_ws(s, 1))
        s++;
    return s;
}

static int parse_int(const char *s, int64_t *out)
{
    const char *p = s;
    char *end;
    long long v;

    if (*p == '+' || *p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return XCP_EINVAL;
    for (; *p; p++)
        if (*p < '0' || *p > '9')
            return XCP_EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end)
        return XCP_EINVAL;
    *out = v;
    return 0;
}

static int b64_sextet(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decode base64 text (whitespace ignored, padding optional) into a
 * string value. */
static int parse_base64(struct xdec *d, const char *s, xcp_value *out)
{
    size_t n = strlen(s), o = 0, bits = 0, pad = 0, i;
    unsigned char *raw;
    uint32_t acc = 0;
    int v, rc;

    raw = malloc(n / 4 * 3 + 3);
    if (!raw)
        return xcp__oom();
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (all_ws(s + i, 1))
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        v = b64_sextet(c);
        if (v < 0 || pad) {
            rc = dfail(d, "bad base64");
            goto out;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (bits >= 6 || pad > 2) {
        rc = dfail(d, "bad base64");
        goto out;
    }
    /* The decoded bytes were never in the body, so never marked: only
     * the NUL rule applies. */
    rc = xcp__rpc_string_value(out, (const char *)raw, o,
                               d->c.sflags & ~(unsigned)XCP__RPC_UNMARK);
out:
    free(raw);
    return rc;
}

/* Growable array of values (and keys, for structs) while decoding. */
struct vec {
    xcp_value *vals;
    char **keys;
    size_t n;
    size_t cap;
};

static int vec_push(struct vec *v, bool keyed)
{
    size_t cap;
    void *p;

    if (v->n < v->cap)
        return 0;
    cap = v->cap ? v->cap * 2 : 8;
    p = realloc(v->vals, cap * sizeof(*v->vals));
    if (!p)
        return xcp__oom();
    v->vals = p;
    if (keyed) {
        p = realloc(v->keys, cap * sizeof(*v->keys));
        if (!p)
            return xcp__oom();
        v->keys = p;
    }
    v->cap = cap;
    return 0;
}

static void vec_dispose(struct vec *v)
{
    size_t i;

    for (i = 0; i < v->n; i++) {
        xcp_value_dispose(&v->vals[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->vals);
    free(v->keys);
    memset(v, 0, sizeof(*v));
}

/* Hand the vector's contents to out (ARRAY or STRUCT). */
static int vec_finish(struct vec *v, bool keyed, xcp_value *out)
{
    if (keyed) {
        xcp_value_set_struct(out);
        out->u.st.n = v->n;
        out->u.st.keys = v->keys;
        out->u.st.vals = v->vals;
    } else if (v->n == 0) {
        free(v->vals);
        if (xcp_value_set_array(out, 0) < 0)
            return XCP_ENOMEM;
    } else {
        out->kind = XCP_VAL_ARRAY;
        out->u.arr.n = v->n;
        out->u.arr.items = v->vals;
    }
    memset(v, 0, sizeof(*v));
    return 0;
}

static int parse_value(struct xdec *d, xcp_value *out, int depth);

/* After <array>: [<data> <value>... </data>] </array>. */
static int parse_array(struct xdec *d, xcp_value *out, int depth)
{
    struct vec v = {0};
    int rc;

    if ((rc = skip_ws(d)) < 0)
        goto out;
    if (d->tok != TK_END) { /* <array/> and <array></array> are [] */
        if ((rc = expect_start(d, "data")) < 0 || (rc = skip_ws(d)) < 0)
            goto out;
        while (at_start(d, "value")) {
            if ((rc = vec_push(&v, false)) < 0 || (rc = advance(d)) < 0)
                goto out;
            v.vals[v.n].kind = XCP_VAL_NONE;
            rc = parse_value(d, &v.vals[v.n], depth + 1);
            if (rc < 0)
                goto out;
            v.n++;
            if ((rc = skip_ws(d)) < 0)
                goto out;
        }
        if ((rc = expect_end(d, "data")) < 0 || (rc = skip_ws(d)) < 0)
            goto out;
    }
    if ((rc = expect_end(d, "array")) < 0)
        goto out;
    rc = vec_finish(&v, false, out);
out:
    vec_dispose(&v);
    return rc;
}

/* After <struct>: <member><name>k</name><value>v</value></member>...
 * </struct>. */
static int parse_struct(struct xdec *d, xcp_value *out, int depth)
{
    struct vec v = {0};
    int rc;

    if ((rc = skip_ws(d)) < 0)
        goto out;
    while (at_start(d, "member")) {
        if ((rc = vec_push(&v, true)) < 0 || (rc = advance(d)) < 0 ||
            (rc = expect_start(d, "name")) < 0 ||
            (rc = element_text(d, "name")) < 0)
            goto out;
        v.keys[v.n] = xcp__rpc_wire_string(acc_str(d), d->acc.len,
                                           d->c.sflags);
        if (!v.keys[v.n]) {
            rc = XCP_ENOMEM;
            goto out;
        }
        v.vals[v.n].kind = XCP_VAL_NONE;
        v.n++;
        if ((rc = expect_start(d, "value")) < 0 ||
            (rc = parse_value(d, &v.vals[v.n - 1], depth + 1)) < 0 ||
            (rc = expect_end(d, "member")) < 0 || (rc = skip_ws(d)) < 0)
            goto out;
    }
    if (d->tok != TK_END) {
        rc = dfail(d, "expected <member> or </struct>");
        goto out;
    }
    if ((rc = advance(d)) < 0)
        goto out;
    rc = vec_finish(&v, true, out);
out:
    vec_dispose(&v);
    return rc;
}

enum vtype { VT_STRING, VT_INT, VT_BOOL, VT_DOUBLE, VT_DATETIME, VT_BASE64,
             VT_ARRAY, VT_STRUCT, VT_NIL, VT_UNKNOWN };

static enum vtype vtype_of(const char *name)
{
    static const struct {
        const char *name;
        enum vtype t;
    } tags[] = {
        {"string", VT_STRING}, {"int", VT_INT}, {"i4", VT_INT},
        {"i8", VT_INT}, {"boolean", VT_BOOL}, {"double", VT_DOUBLE},
        {"dateTime.iso8601", VT_DATETIME}, {"base64", VT_BASE64},
        {"array", VT_ARRAY}, {"struct", VT_STRUCT}, {"nil", VT_NIL},
    };
    size_t i;

    for (i = 0; i < XCP__ARRAY_LEN(tags); i++)
        if (strcmp(name, tags[i].name) == 0)
            return tags[i].t;
    return VT_UNKNOWN;
}

/* A scalar typed value: the start tag was consumed. */
static int parse_scalar(struct xdec *d, enum vtype t, xcp_value *out)
{
    static const char *const names[] = {"string", "int", "boolean",
                                        "double", "dateTime.iso8601",
                                        "base64"};
    const char *s;
    int rc;

    if ((rc = element_text(d, names[t])) < 0)
        return rc;
    if (t == VT_STRING)
        return xcp__rpc_string_value(out, acc_str(d), d->acc.len,
                                     d->c.sflags);
    s = acc_trimmed(d);
    switch (t) {
    case VT_INT:
        if (parse_int(s, &out->u.i) < 0)
            return dfail(d, "bad or out of range integer");
        out->kind = XCP_VAL_INT;
        return 0;
    case VT_BOOL:
        xcp_value_set_bool(out, strcmp(s, "1") == 0);
        return 0;
    case VT_DOUBLE:
        if (xcp__parse_double(s, &out->u.f) < 0)
            return dfail(d, "bad double");
        out->kind = XCP_VAL_FLOAT;
        return 0;
    case VT_DATETIME:
        if (xcp_datetime_parse(&out->u.t, s) < 0)
            return dfail(d, "bad dateTime.iso8601");
        out->kind = XCP_VAL_DATETIME;
        return 0;
    default:
        return parse_base64(d, s, out);
    }
}

/* A <value> whose start tag was consumed, through its end tag. */
static int parse_value(struct xdec *d, xcp_value *out, int depth)
{
    enum vtype t;
    int rc;

    if ((rc = xcp__rpc_count_value(&d->c, depth)) < 0 ||
        (rc = collect_text(d)) < 0)
        return rc;
    if (d->tok == TK_END) { /* untyped: a string, whitespace and all */
        if ((rc = xcp__rpc_string_value(out, acc_str(d), d->acc.len,
                                        d->c.sflags)) == 0)
            rc = advance(d);
        goto out;
    }
    if (d->tok != TK_START)
        return dfail(d, "unterminated <value>");
    if (!all_ws(acc_str(d), d->acc.len))
        return dfail(d, "text beside a typed value");
    t = vtype_of(d->name);
    if (t == VT_UNKNOWN)
        return dfail(d, "unknown value type <%.40s>", d->name);
    if ((rc = advance(d)) < 0)
        return rc;
    switch (t) {
    case VT_ARRAY:
        rc = parse_array(d, out, depth);
        break;
    case VT_STRUCT:
        rc = parse_struct(d, out, depth);
        break;
    case VT_NIL:
        out->kind = XCP_VAL_NONE;
        rc = expect_end(d, "nil");
        break;
    default:
        rc = parse_scalar(d, t, out);
    }
    if (rc == 0)
        rc = expect_end(d, "value");
out:
    if (rc < 0)
        xcp_value_dispose(out);
    return rc;
}

/* Set up a decoding of body[len]: limits and marking of bytes that are
 * not UTF-8 (xcp__rpc_open_body), DTD refusal, the reader. *owned gets the
 * rewritten body to free after the reader. */
static int xdec_open(struct xdec *d, const char *body, size_t len,
                     bool request, char **owned)
{
    size_t n;
    int rc;

    if ((rc = xcp__rpc_open_body(&d->c, &body, &len, request, owned)) < 0)
        return rc;
    /* Only ASCII-compatible encodings (no NULs, markup starts with '<'):
     * this rules out UTF-16/32 and EBCDIC, which every client we know
     * never sends, and makes the byte search below reliable. */
    if (memchr(body, 0, len))
        return dfail(d, "NUL bytes in the body (only ASCII-compatible "
                     "encodings are supported)");
    for (n = len >= 3 && !memcmp(body, "\xEF\xBB\xBF", 3) ? 3 : 0;
         n < len && all_ws(body + n, 1); n++)
        ;
    if (n == len || body[n] != '<')
        return dfail(d, "not an XML document");
    /* Entity declarations can only come with a DTD: refusing any
     * DOCTYPE keeps entity expansion (billion laughs, XXE) out. */
    if (memmem(body, len, "<!DOCTYPE", 9))
        return dfail(d, "DTDs are not allowed");
    if ((rc = xcp__xml(&d->x)) < 0)
        return rc;
    /* No XML_PARSE_NOENT (never substitute entities), no DTD loading,
     * no network, no XML_PARSE_HUGE (keep libxml2's own limits). */
    d->r = d->x->ReaderForMemory(body, (int)len, NULL, NULL,
                                 XML_PARSE_NONET | XML_PARSE_NOERROR |
                                     XML_PARSE_NOWARNING);
    if (!d->r)
        return xcp__oom();
    d->x->TextReaderSetStructuredErrorHandler(d->r, on_xml_error, d);
    return advance(d);
}

static void xdec_close(struct xdec *d, char *owned)
{
    if (d->r)
        d->x->FreeTextReader(d->r);
    d->r = NULL;
    xcp__buf_free(&d->acc);
    free(owned);
}

/* After the root's end: only whitespace, comments and PIs may follow. */
static int expect_eof(struct xdec *d)
{
    int rc;

    if ((rc = skip_ws(d)) < 0)
        return rc;
    return d->tok == TK_EOF ? 0 : dfail(d, "content after the document");
}

int xcp__xmlrpc_decode_request(const char *body, size_t len, char **method,
                               xcp_value *params, char *err, size_t errlen)
{
    struct xdec d = {.c = {.err = err, .errlen = errlen}};
    struct vec v = {0};
    char *owned = NULL;
    const char *name;
    int rc;

    *method = NULL;
    params->kind = XCP_VAL_NONE;
    if (err && errlen)
        err[0] = '\0';
    if ((rc = xdec_open(&d, body, len, true, &owned)) < 0 ||
        (rc = expect_start(&d, "methodCall")) < 0 ||
        (rc = expect_start(&d, "methodName")) < 0 ||
        (rc = element_text(&d, "methodName")) < 0)
        goto out;
    name = acc_trimmed(&d);
    *method = xcp__rpc_wire_string(name, strlen(name), d.c.sflags);
    if (!*method) {
        rc = XCP_ENOMEM;
        goto out;
    }
    if ((rc = skip_ws(&d)) < 0)
        goto out;
    if (!at_start(&d, "params")) {
        rc = dfail(&d, "missing <params>");
        goto out;
    }
    if ((rc = advance(&d)) < 0 || (rc = skip_ws(&d)) < 0)
        goto out;
    while (at_start(&d, "param")) {
        if ((rc = vec_push(&v, false)) < 0 || (rc = advance(&d)) < 0 ||
            (rc = expect_start(&d, "value")) < 0)
            goto out;
        v.vals[v.n].kind = XCP_VAL_NONE;
        if ((rc = parse_value(&d, &v.vals[v.n], 1)) < 0)
            goto out;
        v.n++;
        if ((rc = expect_end(&d, "param")) < 0 || (rc = skip_ws(&d)) < 0)
            goto out;
    }
    if ((rc = expect_end(&d, "params")) < 0 ||
        (rc = expect_end(&d, "methodCall")) < 0 ||
        (rc = expect_eof(&d)) < 0 || (rc = vec_finish(&v, false, params)) < 0)
        goto out;
    rc = xcp__rpc_find_invalid(params) ? XCP__RPC_BAD_UTF8 : 0;
out:
    vec_dispose(&v);
    xdec_close(&d, owned);
    if (rc < 0) {
        free(*method);
        *method = NULL;
        xcp_value_dispose(params);
    }
    return rc;
}

/* ocaml-rpc's reading of a <fault>: ["fault", faultCode, faultString]. */
static int fault_to_error(struct xdec *d, xcp_value *fault, xcp_value *error)
{
    const xcp_value *code = xcp_value_struct_get(fault, "faultCode");
    const xcp_value *msg = xcp_value_struct_get(fault, "faultString");
    int rc;

    if (fault->kind != XCP_VAL_STRUCT || !code || !msg)
        return dfail(d, "<fault> without faultCode and faultString");
    if ((rc = xcp_value_set_array(error, 3)) < 0 ||
        (rc = xcp_value_set_string(&error->u.arr.items[0], "fault")) < 0 ||
        (rc = xcp_value_copy(&error->u.arr.items[1], code)) < 0 ||
        (rc = xcp_value_copy(&error->u.arr.items[2], msg)) < 0)
        return rc;
    return xcp__rpc_error_list(error, d->c.err, d->c.errlen);
}

/* Interpret the single param of a methodResponse (moved out of v). */
static int unwrap_response(struct xdec *d, xcp_value *v, xcp_value *result,
                           xcp_value *error)
{
    const xcp_value *st = xcp_value_struct_get(v, "Status");
    xcp_value *member;
    int rc;

    if (v->kind == XCP_VAL_STRUCT && st && st->kind == XCP_VAL_STRING) {
        if (!strcmp(st->u.s, "Success") &&
            (member = (xcp_value *)xcp_value_struct_get(v, "Value"))) {
            xcp__value_move(result, member);
            return 0;
        }
        if (!strcmp(st->u.s, "Failure") &&
            (member = (xcp_value *)xcp_value_struct_get(
                 v, "ErrorDescription"))) {
            xcp__value_move(error, member);
            rc = xcp__rpc_error_list(error, d->c.err, d->c.errlen);
            return rc < 0 ? rc : XCP__RPC_FAILURE;
        }
    }
    xcp__value_move(result, v);
    return 0;
}

int xcp__xmlrpc_decode_response(const char *body, size_t len,
                                xcp_value *result, xcp_value *error,
                                char *err, size_t errlen)
{
    struct xdec d = {.c = {.err = err, .errlen = errlen}};
    xcp_value v = {.kind = XCP_VAL_NONE};
    char *owned = NULL;
    bool fault = false;
    int rc;

    result->kind = XCP_VAL_NONE;
    error->kind = XCP_VAL_NONE;
    if (err && errlen)
        err[0] = '\0';
    if ((rc = xdec_open(&d, body, len, false, &owned)) < 0 ||
        (rc = expect_start(&d, "methodResponse")) < 0 ||
        (rc = skip_ws(&d)) < 0)
        goto out;
    if (at_start(&d, "fault")) {
        fault = true;
        if ((rc = advance(&d)) < 0)
            goto out;
    } else if ((rc = expect_start(&d, "params")) < 0 ||
               (rc = expect_start(&d, "param")) < 0) {
        goto out;
    }
    if ((rc = expect_start(&d, "value")) < 0 ||
        (rc = parse_value(&d, &v, 1)) < 0 ||
        (!fault && (rc = expect_end(&d, "param")) < 0) ||
        (rc = expect_end(&d, fault ? "fault" : "params")) < 0 ||
        (rc = expect_end(&d, "methodResponse")) < 0 ||
        (rc = expect_eof(&d)) < 0)
        goto out;
    if (fault) {
        rc = fault_to_error(&d, &v, error);
        if (rc == 0)
            rc = XCP__RPC_FAILURE;
    } else {
        rc = unwrap_response(&d, &v, result, error);
    }
out:
    xcp_value_dispose(&v);
    xdec_close(&d, owned);
    if (rc < 0) {
        xcp_value_dispose(result);
        xcp_value_dispose(error);
    }
    return rc;
}

/* ======================================================================
 * Encoding
 * ====================================================================== */

#define XML_DECL "<?xml version=\"1.0\"?>"

static void xml_emit(xcp__buf *b, const char *p, size_t n, uint32_t cp)
{
    switch (cp) {
    case '<':
        xcp__buf_add(b, "&lt;", 4);
        return;
    case '>':
        xcp__buf_add(b, "&gt;", 4);
        return;
    case '&':
        xcp__buf_add(b, "&amp;", 5);
        return;
    case '"':
        xcp__buf_add(b, "&quot;", 6);
        return;
    case '\r':
        /* A raw CR would come back as LF (XML end-of-line handling). */
        xcp__buf_add(b, "&#13;", 5);
        return;
    case 0xFFFE:
    case 0xFFFF:
        return; /* not XML characters */
    default:
        /* Control characters cannot be carried by XML 1.0: dropped, as
         * xapi does. */
        if (cp < 0x20 && cp != '\t' && cp != '\n')
            return;
        xcp__buf_add(b, p, n);
    }
}

static void xml_text(xcp__buf *b, const char *s)
{
    const char *p;

    /* Fast path: nothing to escape or check. */
    for (p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7F ||
            *p == '<' || *p == '>' || *p == '&' || *p == '"')
            break;
    if (!*p) {
        xcp__buf_add(b, s, (size_t)(p - s));
        return;
    }
    xcp__rpc_utf8_walk(b, s, xml_emit);
}

/* Server (xapi's output) or client (the C SDK's input) flavour. */
struct xenc {
    xcp__buf *b;
    bool client;
};

static void xenc_value(const struct xenc *e, const xcp_value *v,
                       unsigned quirks);

static void xenc_member(const struct xenc *e, const char *name,
                        const xcp_value *v)
{
    xcp__buf_adds(e->b, "<member><name>");
    xml_text(e->b, name);
    xcp__buf_adds(e->b, "</name>");
    xenc_value(e, v, 0);
    xcp__buf_adds(e->b, "</member>");
}

/* event.from's valid_ref_counts: int members as <i4>. */
static void xenc_refcounts(const struct xenc *e, const xcp_value *v)
{
    size_t i;

    if (v->kind != XCP_VAL_STRUCT) {
        xenc_value(e, v, 0);
        return;
    }
    xcp__buf_adds(e->b, "<value><struct>");
    for (i = 0; i < v->u.st.n; i++) {
        if (v->u.st.vals[i].kind != XCP_VAL_INT) {
            xenc_member(e, v->u.st.keys[i], &v->u.st.vals[i]);
            continue;
        }
        xcp__buf_adds(e->b, "<member><name>");
        xml_text(e->b, v->u.st.keys[i]);
        xcp__buf_printf(e->b, "</name><value><i4>%lld</i4></value></member>",
                        (long long)v->u.st.vals[i].u.i);
    }
    xcp__buf_adds(e->b, "</struct></value>");
}

static void xenc_value(const struct xenc *e, const xcp_value *v,
                       unsigned quirks)
{
    const struct xcp__class *c;
    char tmp[40];
    size_t i;

    switch (v->kind) {
    case XCP_VAL_NONE:
        xcp__buf_adds(e->b, e->client ? "<value><nil/></value>"
                                      : "<value></value>");
        break;
    case XCP_VAL_STRING:
        xcp__buf_adds(e->b, e->client ? "<value><string>" : "<value>");
        xml_text(e->b, v->u.s);
        xcp__buf_adds(e->b, e->client ? "</string></value>" : "</value>");
        break;
    case XCP_VAL_INT:
        xcp__buf_printf(e->b, e->client ? "<value><string>%lld</string>"
                                          "</value>" : "<value>%lld</value>",
                        (long long)v->u.i);
        break;
    case XCP_VAL_FLOAT:
        if (isnan(v->u.f))
            snprintf(tmp, sizeof(tmp), "nan");
        else if (isinf(v->u.f))
            snprintf(tmp, sizeof(tmp), v->u.f > 0 ? "inf" : "-inf");
        else
            xcp__format_double(tmp, sizeof(tmp), 16, v->u.f);
        xcp__buf_printf(e->b, "<value><double>%s</double></value>", tmp);
        break;
    case XCP_VAL_BOOL:
        xcp__buf_adds(e->b, v->u.b ? "<value><boolean>1</boolean></value>"
                                   : "<value><boolean>0</boolean></value>");
        break;
    case XCP_VAL_DATETIME:
        xcp_datetime_format(tmp, sizeof(tmp), v->u.t);
        xcp__buf_printf(e->b, "<value><dateTime.iso8601>%s"
                        "</dateTime.iso8601></value>", tmp);
        break;
    case XCP_VAL_ARRAY:
        xcp__buf_adds(e->b, "<value><array><data>");
        for (i = 0; i < v->u.arr.n; i++)
            xenc_value(e, &v->u.arr.items[i], 0);
        xcp__buf_adds(e->b, "</data></array></value>");
        break;
    case XCP_VAL_STRUCT:
        xcp__buf_adds(e->b, "<value><struct>");
        for (i = 0; i < v->u.st.n; i++) {
            if ((quirks & XCP__RPC_I4_REFCOUNTS) &&
                !strcmp(v->u.st.keys[i], "valid_ref_counts")) {
                xcp__buf_adds(e->b, "<member><name>valid_ref_counts</name>");
                xenc_refcounts(e, &v->u.st.vals[i]);
                xcp__buf_adds(e->b, "</member>");
                continue;
            }
            xenc_member(e, v->u.st.keys[i], &v->u.st.vals[i]);
        }
        xcp__buf_adds(e->b, "</struct></value>");
        break;
    case XCP_VAL_RECORD:
        c = &xcp__classes[v->u.rec.cls];
        xcp__buf_adds(e->b, "<value><struct>");
        for (i = 0; i < c->nfields; i++)
            if (!e->client || v->u.rec.fields[i].kind != XCP_VAL_NONE)
                xenc_member(e, c->fields[i].name, &v->u.rec.fields[i]);
        xcp__buf_adds(e->b, "</struct></value>");
        break;
    }
}

int xcp__xmlrpc_encode_value(xcp__buf *out, const xcp_value *v,
                             unsigned quirks)
{
    struct xenc e = {out, false};

    xenc_value(&e, v, quirks);
    return xcp__rpc_buf_status(out);
}

/* A success envelope around its Value. */
#define XML_SUCCESS_HEAD                                                   \
    XML_DECL "<methodResponse><params><param><value><struct><member>"    \
             "<name>Status</name><value>Success</value></member><member>" \
             "<name>Value</name>"
#define XML_SUCCESS_TAIL                                                   \
    "</member></struct></value></param></params></methodResponse>"

int xcp__xmlrpc_encode_success(xcp__buf *out, const xcp_value *result,
                               unsigned quirks)
{
    struct xenc e = {out, false};

    xcp__buf_adds(out, XML_SUCCESS_HEAD);
    xenc_value(&e, result, quirks);
    xcp__buf_adds(out, XML_SUCCESS_TAIL);
    return xcp__rpc_buf_status(out);
}

int xcp__xmlrpc_encode_struct_head(xcp__buf *out)
{
    xcp__buf_adds(out, XML_SUCCESS_HEAD "<value><struct>");
    return xcp__rpc_buf_status(out);
}

int xcp__xmlrpc_encode_struct_member(xcp__buf *out, const char *name,
                                     const xcp_value *v)
{
    struct xenc e = {out, false};

    xenc_member(&e, name, v);
    return xcp__rpc_buf_status(out);
}

int xcp__xmlrpc_encode_struct_tail(xcp__buf *out)
{
    xcp__buf_adds(out, "</struct></value>" XML_SUCCESS_TAIL);
    return xcp__rpc_buf_status(out);
}

int xcp__xmlrpc_encode_failure(xcp__buf *out, const char *code, size_t n,
                               const char *const *params)
{
    size_t i;

    xcp__buf_adds(out, XML_DECL "<methodResponse><params><param><value>"
                  "<struct><member><name>Status</name><value>Failure"
                  "</value></member><member><name>ErrorDescription</name>"
                  "<value><array><data><value>");
    xml_text(out, code ? code : "");
    xcp__buf_adds(out, "</value>");
    for (i = 0; i < n; i++) {
        xcp__buf_adds(out, "<value>");
        xml_text(out, params[i] ? params[i] : "");
        xcp__buf_adds(out, "</value>");
    }
    xcp__buf_adds(out, "</data></array></value></member></struct></value>"
                  "</param></params></methodResponse>");
    return xcp__rpc_buf_status(out);
}

int xcp__xmlrpc_encode_bare(xcp__buf *out, const xcp_value *v)
{
    struct xenc e = {out, false};

    xcp__buf_adds(out, XML_DECL "<methodResponse><params><param>");
    xenc_value(&e, v, 0);
    xcp__buf_adds(out, "</param></params></methodResponse>");
    return xcp__rpc_buf_status(out);
}

int xcp__xmlrpc_encode_request(const char *method, const xcp_value *params,
                               xcp__buf *out)
{
    struct xenc e = {out, true};
    size_t i;

    xcp__buf_adds(out, XML_DECL "<methodCall><methodName>");
    xml_text(out, method ? method : "");
    xcp__buf_adds(out, "</methodName><params>");
    if (params && params->kind == XCP_VAL_ARRAY)
        for (i = 0; i < params->u.arr.n; i++) {
            xcp__buf_adds(out, "<param>");
            xenc_value(&e, &params->u.arr.items[i], 0);
            xcp__buf_adds(out, "</param>");
        }
    xcp__buf_adds(out, "</params></methodCall>");
    return xcp__rpc_buf_status(out);
}
