/*
 * Allocation, strings and byte buffers used across the library, plus the
 * public helpers for sets and maps declared in common.h.
 */
#include "core.h"

#include <stdio.h>
#include <strings.h>

void *xcp__malloc(size_t n)
{
    return malloc(n ? n : 1);
}

void *xcp__calloc(size_t n, size_t size)
{
    return calloc(n ? n : 1, size ? size : 1);
}

void *xcp__realloc(void *p, size_t n)
{
    return realloc(p, n ? n : 1);
}

char *xcp__strdup(const char *s)
{
    return strdup(s ? s : "");
}

char *xcp__strndup(const char *s, size_t n)
{
    char *r = malloc(n + 1);

    if (r) {
        memcpy(r, s, n);
        r[n] = '\0';
    }
    return r;
}

char *xcp__printf(const char *fmt, ...)
{
    va_list ap;
    char *r = NULL;

    va_start(ap, fmt);
    if (vasprintf(&r, fmt, ap) < 0)
        r = NULL;
    va_end(ap);
    return r;
}

bool xcp__streq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

char *xcp__base64(const uint8_t *p, size_t n)
{
    static const char al[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = xcp__malloc((n + 2) / 3 * 4 + 1), *o = out;
    size_t i;
    uint32_t v;

    if (!out)
        return NULL;
    for (i = 0; i + 2 < n; i += 3) {
        v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = al[v >> 18];
        *o++ = al[v >> 12 & 63];
        *o++ = al[v >> 6 & 63];
        *o++ = al[v & 63];
    }
    if (i < n) {
        v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = al[v >> 18];
        *o++ = al[v >> 12 & 63];
        *o++ = i + 1 < n ? al[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

static void buf_grow(xcp__buf *b, size_t more)
{
    size_t need = b->len + more + 1;
    size_t cap;
    char *p;

    if (b->oom || need <= b->cap)
        return;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return;
    }
    b->data = p;
    b->cap = cap;
}

void xcp__buf_add(xcp__buf *b, const void *p, size_t n)
{
    buf_grow(b, n);
    if (b->oom)
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void xcp__buf_adds(xcp__buf *b, const char *s)
{
    xcp__buf_add(b, s, strlen(s));
}

void xcp__buf_addc(xcp__buf *b, char c)
{
    xcp__buf_add(b, &c, 1);
}

void xcp__buf_printf(xcp__buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    buf_grow(b, (size_t)n);
    if (b->oom)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *xcp__buf_steal(xcp__buf *b)
{
    char *r;

    if (b->oom) {
        xcp__buf_free(b);
        return NULL;
    }
    buf_grow(b, 0);
    if (b->oom) {
        xcp__buf_free(b);
        return NULL;
    }
    r = b->data;
    r[b->len] = '\0';
    memset(b, 0, sizeof(*b));
    return r;
}

void xcp__buf_free(xcp__buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void xcp_free(void *p)
{
    free(p);
}

void xcp_string_set_dispose(xcp_string_set *s)
{
    size_t i;

    if (!s)
        return;
    for (i = 0; i < s->n; i++)
        free(s->items[i]);
    free(s->items);
    s->items = NULL;
    s->n = 0;
}

void xcp_int_set_dispose(xcp_int_set *s)
{
    if (!s)
        return;
    free(s->items);
    s->items = NULL;
    s->n = 0;
}

void xcp_string_map_dispose(xcp_string_map *m)
{
    size_t i;

    if (!m)
        return;
    for (i = 0; i < m->n; i++) {
        free(m->items[i].key);
        free(m->items[i].value);
    }
    free(m->items);
    m->items = NULL;
    m->n = 0;
}

int xcp_string_map_set(xcp_string_map *m, const char *key, const char *value)
{
    size_t i;
    char *v = xcp__strdup(value);
    char *k;
    xcp_string_map_entry *items;

    if (!v)
        return xcp__oom();
    for (i = 0; i < m->n; i++) {
        if (strcmp(m->items[i].key, key) == 0) {
            free(m->items[i].value);
            m->items[i].value = v;
            return 0;
        }
    }
    k = xcp__strdup(key);
    items = realloc(m->items, (m->n + 1) * sizeof(*items));
    if (!k || !items) {
        free(k);
        free(v);
        if (items)
            m->items = items;
        return xcp__oom();
    }
    m->items = items;
    m->items[m->n].key = k;
    m->items[m->n].value = v;
    m->n++;
    return 0;
}

const char *xcp_string_map_get(const xcp_string_map *m, const char *key)
{
    size_t i;

    for (i = 0; m && i < m->n; i++)
        if (strcmp(m->items[i].key, key) == 0)
            return m->items[i].value;
    return NULL;
}

int xcp_string_set_add(xcp_string_set *set, const char *s)
{
    char *c = xcp__strdup(s);
    char **items;

    if (!c)
        return xcp__oom();
    items = realloc(set->items, (set->n + 1) * sizeof(*items));
    if (!items) {
        free(c);
        return xcp__oom();
    }
    set->items = items;
    set->items[set->n++] = c;
    return 0;
}

bool xcp_ref_is_null(const char *ref)
{
    return !ref || !*ref || strcmp(ref, XCP_NULL_REF) == 0;
}

const char *xcp_version(void)
{
    return PACKAGE_VERSION;
}
