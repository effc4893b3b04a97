/*
 * Generic XenAPI values (value.h): construction, deep copy, disposal,
 * text rendering as xe shows it, and the XenAPI datetime format.
 */
#include "../internal.h"

#include <stdio.h>
#include <time.h>

void xcp_value_dispose(xcp_value *v)
{
    size_t i, n;

    if (!v)
        return;
    switch (v->kind) {
    case XCP_VAL_STRING:
        free(v->u.s);
        break;
    case XCP_VAL_ARRAY:
        for (i = 0; i < v->u.arr.n; i++)
            xcp_value_dispose(&v->u.arr.items[i]);
        free(v->u.arr.items);
        break;
    case XCP_VAL_STRUCT:
        for (i = 0; i < v->u.st.n; i++) {
            free(v->u.st.keys[i]);
            xcp_value_dispose(&v->u.st.vals[i]);
        }
        free(v->u.st.keys);
        free(v->u.st.vals);
        break;
    case XCP_VAL_RECORD:
        n = xcp__classes[v->u.rec.cls].nfields;
        for (i = 0; i < n; i++)
            xcp_value_dispose(&v->u.rec.fields[i]);
        free(v->u.rec.fields);
        break;
    default:
        break;
    }
    v->kind = XCP_VAL_NONE;
}

int xcp_value_copy(xcp_value *dst, const xcp_value *src)
{
    size_t i, n;

    dst->kind = XCP_VAL_NONE;
    switch (src->kind) {
    case XCP_VAL_STRING:
        return xcp_value_set_string(dst, src->u.s);
    case XCP_VAL_ARRAY:
        if (xcp_value_set_array(dst, src->u.arr.n) < 0)
            return XCP_ENOMEM;
        for (i = 0; i < src->u.arr.n; i++)
            if (xcp_value_copy(&dst->u.arr.items[i], &src->u.arr.items[i]) < 0)
                goto fail;
        return 0;
    case XCP_VAL_STRUCT:
        n = src->u.st.n;
        dst->kind = XCP_VAL_STRUCT;
        dst->u.st.n = 0;
        dst->u.st.keys = xcp__calloc(n, sizeof(char *));
        dst->u.st.vals = xcp__calloc(n, sizeof(xcp_value));
        if (!dst->u.st.keys || !dst->u.st.vals)
            goto fail;
        for (i = 0; i < n; i++) {
            dst->u.st.keys[i] = xcp__strdup(src->u.st.keys[i]);
            dst->u.st.n = i + 1;
            if (!dst->u.st.keys[i] ||
                xcp_value_copy(&dst->u.st.vals[i], &src->u.st.vals[i]) < 0)
                goto fail;
        }
        return 0;
    case XCP_VAL_RECORD:
        n = xcp__classes[src->u.rec.cls].nfields;
        if (xcp__rec_alloc(dst, src->u.rec.cls) < 0)
            return XCP_ENOMEM;
        for (i = 0; i < n; i++)
            if (xcp_value_copy(&dst->u.rec.fields[i],
                               &src->u.rec.fields[i]) < 0)
                goto fail;
        return 0;
    default:
        *dst = *src;
        return 0;
    }
fail:
    xcp_value_dispose(dst);
    return xcp__oom();
}

int xcp_value_set_string(xcp_value *v, const char *s)
{
    v->kind = XCP_VAL_NONE;
    v->u.s = xcp__strdup(s);
    if (!v->u.s)
        return xcp__oom();
    v->kind = XCP_VAL_STRING;
    return 0;
}

void xcp_value_set_int(xcp_value *v, int64_t i)
{
    v->kind = XCP_VAL_INT;
    v->u.i = i;
}

void xcp_value_set_float(xcp_value *v, double f)
{
    v->kind = XCP_VAL_FLOAT;
    v->u.f = f;
}

void xcp_value_set_bool(xcp_value *v, bool b)
{
    v->kind = XCP_VAL_BOOL;
    v->u.b = b;
}

void xcp_value_set_datetime(xcp_value *v, xcp_datetime t)
{
    v->kind = XCP_VAL_DATETIME;
    v->u.t = t;
}

int xcp_value_set_array(xcp_value *v, size_t n)
{
    v->kind = XCP_VAL_NONE;
    v->u.arr.items = xcp__calloc(n, sizeof(xcp_value));
    if (!v->u.arr.items)
        return xcp__oom();
    v->u.arr.n = n;
    v->kind = XCP_VAL_ARRAY;
    return 0;
}

void xcp_value_set_struct(xcp_value *v)
{
    v->kind = XCP_VAL_STRUCT;
    v->u.st.n = 0;
    v->u.st.keys = NULL;
    v->u.st.vals = NULL;
}

int xcp_value_struct_add(xcp_value *st, const char *key, xcp_value *val)
{
    size_t n = st->u.st.n;
    char **keys;
    xcp_value *vals;
    char *k;

    /* Sized exactly: copies and decoders allocate n entries, so there is
     * no spare capacity to rely on. realloc amortises in practice. */
    keys = realloc(st->u.st.keys, (n + 1) * sizeof(*keys));
    if (!keys)
        return xcp__oom();
    st->u.st.keys = keys;
    vals = realloc(st->u.st.vals, (n + 1) * sizeof(*vals));
    if (!vals)
        return xcp__oom();
    st->u.st.vals = vals;
    k = xcp__strdup(key);
    if (!k)
        return xcp__oom();
    st->u.st.keys[n] = k;
    xcp__value_move(&st->u.st.vals[n], val);
    st->u.st.n = n + 1;
    return 0;
}

const xcp_value *xcp_value_struct_get(const xcp_value *st, const char *key)
{
    size_t i;

    if (!st || !key)
        return NULL;
    if (st->kind == XCP_VAL_RECORD) {
        int f = xcp_class_field_index(st->u.rec.cls, key);
        return f < 0 ? NULL : &st->u.rec.fields[f];
    }
    if (st->kind != XCP_VAL_STRUCT)
        return NULL;
    for (i = 0; i < st->u.st.n; i++)
        if (strcmp(st->u.st.keys[i], key) == 0)
            return &st->u.st.vals[i];
    return NULL;
}

void xcp_datetime_format(xcp_datetime t, char *buf, size_t len)
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (!gmtime_r(&tt, &tm)) {
        snprintf(buf, len, "19700101T00:00:00Z");
        return;
    }
    snprintf(buf, len, "%04d%02d%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int xcp_datetime_parse(const char *s, xcp_datetime *out)
{
    int Y, M, D, h, m, sec, n = 0, oh = 0, om = 0;
    char sign = 0;
    struct tm tm;
    const char *rest;

    if (!s)
        return XCP_EINVAL;
    if (sscanf(s, "%4d%2d%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) ==
            6 && n == 17) {
        rest = s + n;
    } else if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m,
                      &sec, &n) == 6 && n == 19) {
        rest = s + n;
    } else {
        return XCP_EINVAL;
    }
    if (*rest == '.') /* fractional seconds: ignored */
        for (rest++; *rest >= '0' && *rest <= '9'; rest++)
            ;
    if (*rest == 'Z' || *rest == 'z') {
        rest++;
    } else if (*rest == '+' || *rest == '-') {
        sign = *rest;
        if (sscanf(rest + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5)
            return XCP_EINVAL;
        rest += 1 + n;
    }
    if (*rest || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 ||
        sec > 60 || h < 0 || m < 0 || sec < 0)
        return XCP_EINVAL;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    *out = (xcp_datetime)timegm(&tm);
    if (sign == '+')
        *out -= oh * 3600 + om * 60;
    else if (sign == '-')
        *out += oh * 3600 + om * 60;
    return 0;
}

static void to_text(const xcp_value *v, xcp__buf *b)
{
    size_t i;
    char tbuf[32];

    switch (v->kind) {
    case XCP_VAL_NONE:
        break;
    case XCP_VAL_STRING:
        xcp__buf_adds(b, v->u.s);
        break;
    case XCP_VAL_INT:
        xcp__buf_printf(b, "%lld", (long long)v->u.i);
        break;
    case XCP_VAL_FLOAT:
        xcp__buf_printf(b, "%.3f", v->u.f);
        break;
    case XCP_VAL_BOOL:
        xcp__buf_adds(b, v->u.b ? "true" : "false");
        break;
    case XCP_VAL_DATETIME:
        xcp_datetime_format(v->u.t, tbuf, sizeof(tbuf));
        xcp__buf_adds(b, tbuf);
        break;
    case XCP_VAL_ARRAY:
        for (i = 0; i < v->u.arr.n; i++) {
            if (i)
                xcp__buf_adds(b, "; ");
            to_text(&v->u.arr.items[i], b);
        }
        break;
    case XCP_VAL_STRUCT:
        for (i = 0; i < v->u.st.n; i++) {
            if (i)
                xcp__buf_adds(b, "; ");
            xcp__buf_adds(b, v->u.st.keys[i]);
            xcp__buf_adds(b, ": ");
            to_text(&v->u.st.vals[i], b);
        }
        break;
    case XCP_VAL_RECORD:
        xcp__buf_printf(b, "<%s record>", xcp__classes[v->u.rec.cls].name);
        break;
    }
}

char *xcp_value_to_text(const xcp_value *v)
{
    xcp__buf b = {0};

    to_text(v, &b);
    return xcp__buf_steal(&b);
}
