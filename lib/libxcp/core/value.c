/*
 * Generic XenAPI values (value.h): construction, and the XenAPI datetime
 * format. The walks that must know a record's class (disposal, deep copy,
 * lookup, text) are the model's: model/value.c.
 */
#include "core.h"

#include <stdio.h>
#include <time.h>

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

void xcp_datetime_format(char *buf, size_t len, xcp_datetime t)
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

/* The parser of xcp_datetime_parse: false when s is not a datetime. */
static bool datetime_parse(const char *s, xcp_datetime *out)
{
    int Y, M, D, h, m, sec, n = 0, oh = 0, om = 0;
    char sign = 0;
    struct tm tm;
    const char *rest;

    if (!s)
        return false;
    if (sscanf(s, "%4d%2d%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) ==
            6 && n == 17) {
        rest = s + n;
    } else if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m,
                      &sec, &n) == 6 && n == 19) {
        rest = s + n;
    } else {
        return false;
    }
    if (*rest == '.') /* fractional seconds: ignored */
        for (rest++; *rest >= '0' && *rest <= '9'; rest++)
            ;
    if (*rest == 'Z' || *rest == 'z') {
        rest++;
    } else if (*rest == '+' || *rest == '-') {
        sign = *rest;
        if (sscanf(rest + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5)
            return false;
        rest += 1 + n;
    }
    if (*rest || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 ||
        sec > 60 || h < 0 || m < 0 || sec < 0)
        return false;
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
    return true;
}

int xcp_datetime_parse(xcp_datetime *out, const char *s)
{
    if (!datetime_parse(s, out))
        return XCP__ERR_INVALID_VALUE("datetime", s ? s : "");
    return 0;
}
