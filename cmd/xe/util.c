/*
 * xe: small utilities with no dependency on libxcp: the per-invocation
 * arena, growable strings and string vectors, and the value parsers xe
 * shares with XAPI's CLI (sizes with suffixes, booleans, integers).
 * Kept library-free so the argument fuzzer can link it alone.
 */
#include "xe.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct xe_chunk {
    xe_chunk *next;
    max_align_t data[];
};

static void xe_oom(void)
{
    fputs("xe: out of memory\n", stderr);
    exit(1);
}

void *xe_alloc(xe_arena *a, size_t n)
{
    xe_chunk *c = calloc(1, sizeof(*c) + n + 1);

    if (c == NULL)
        xe_oom();
    c->next = a->head;
    a->head = c;
    return c->data;
}

void *xe_realloc(xe_arena *a, void *p, size_t n)
{
    xe_chunk **pp;
    xe_chunk *c;

    if (p == NULL)
        return xe_alloc(a, n);
    for (pp = &a->head; *pp != NULL; pp = &(*pp)->next) {
        if ((void *)(*pp)->data != p)
            continue;
        c = realloc(*pp, sizeof(*c) + n + 1);
        if (c == NULL)
            xe_oom();
        *pp = c;
        return c->data;
    }
    xe_oom();
    return NULL;
}

char *xe_strndup(xe_arena *a, const char *s, size_t n)
{
    char *p = xe_alloc(a, n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xe_strdup(xe_arena *a, const char *s)
{
    return s == NULL ? NULL : xe_strndup(a, s, strlen(s));
}

char *xe_vsprintf(xe_arena *a, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;
    char *p, probe[1];

    if (fmt == NULL) /* never; keeps -Wformat-truncation quiet */
        fmt = "";
    va_copy(ap2, ap);
    n = vsnprintf(probe, sizeof(probe), fmt, ap2);
    va_end(ap2);
    if (n < 0)
        n = 0;
    p = xe_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *xe_sprintf(xe_arena *a, const char *fmt, ...)
{
    va_list ap;
    char *p;

    va_start(ap, fmt);
    p = xe_vsprintf(a, fmt, ap);
    va_end(ap);
    return p;
}

void xe_arena_free(xe_arena *a)
{
    xe_chunk *c = a->head;

    while (c != NULL) {
        xe_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

void xe_buf_init(xe_buf *b, xe_arena *a)
{
    b->a = a;
    b->s = NULL;
    b->len = 0;
    b->cap = 0;
}

void xe_buf_addn(xe_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;

        while (cap < b->len + n + 1)
            cap *= 2;
        b->s = xe_realloc(b->a, b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void xe_buf_add(xe_buf *b, const char *s)
{
    xe_buf_addn(b, s, strlen(s));
}

void xe_buf_addc(xe_buf *b, char c)
{
    xe_buf_addn(b, &c, 1);
}

void xe_buf_printf(xe_buf *b, const char *fmt, ...)
{
    va_list ap;
    char *p;

    va_start(ap, fmt);
    p = xe_vsprintf(b->a, fmt, ap);
    va_end(ap);
    xe_buf_add(b, p);
}

const char *xe_buf_str(xe_buf *b)
{
    return b->s != NULL ? b->s : "";
}

void xe_strv_init(xe_strv *sv, xe_arena *a)
{
    sv->a = a;
    sv->n = 0;
    sv->cap = 0;
    sv->v = NULL;
}

void xe_strv_add(xe_strv *sv, const char *s)
{
    if (sv->n == sv->cap) {
        sv->cap = sv->cap ? sv->cap * 2 : 8;
        sv->v = xe_realloc(sv->a, sv->v, sv->cap * sizeof(*sv->v));
    }
    sv->v[sv->n++] = s;
}

bool xe_strv_has(const xe_strv *sv, const char *s)
{
    size_t i;

    for (i = 0; i < sv->n; i++)
        if (strcmp(sv->v[i], s) == 0)
            return true;
    return false;
}

const char *xe_strv_join(const xe_strv *sv, const char *sep)
{
    xe_buf b;
    size_t i;

    xe_buf_init(&b, sv->a);
    for (i = 0; i < sv->n; i++) {
        if (i > 0)
            xe_buf_add(&b, sep);
        xe_buf_add(&b, sv->v[i]);
    }
    return xe_buf_str(&b);
}

bool xe_streq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

bool xe_strcaseeq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return false;
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return false;
    return *a == *b;
}

char *xe_lower(xe_arena *a, const char *s)
{
    char *p = xe_strdup(a, s), *q;

    for (q = p; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    return p;
}

bool xe_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

void xe_split(xe_strv *out, const char *s, char sep)
{
    const char *p;

    if (*s == '\0')
        return;
    for (;;) {
        p = strchr(s, sep);
        if (p == NULL) {
            xe_strv_add(out, xe_strdup(out->a, s));
            return;
        }
        xe_strv_add(out, xe_strndup(out->a, s, (size_t)(p - s)));
        s = p + 1;
    }
}

/* An optionally signed run of decimal digits, as OCaml's Scanf "%Ld". */
static int scan_int64(const char **sp, int64_t *out)
{
    const char *s = *sp;
    bool neg = false;
    uint64_t v = 0, lim;

    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (!isdigit((unsigned char)*s))
        return -1;
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');

        if (v > (lim - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    *sp = s;
    return 0;
}

static int64_t wrap_mul(int64_t a, uint64_t b)
{
    return (int64_t)((uint64_t)a * b);
}

int xe_parse_bytes(const char *s, int64_t *out)
{
    static const struct {
        const char *sfx;
        unsigned shift;
    } units[] = {
        {"bytes", 0}, {"b", 0},  {"", 0},    {"kib", 10}, {"kb", 10},
        {"k", 10},    {"mib", 20}, {"mb", 20}, {"m", 20},   {"gib", 30},
        {"gb", 30},   {"g", 30}, {"tib", 40}, {"tb", 40},  {"t", 40},
    };
    int64_t size;
    const char *p = s, *end;
    size_t i, n;

    if (scan_int64(&p, &size) < 0 || size < 0)
        return -1;
    while (isspace((unsigned char)*p))
        p++;
    for (end = p; *end && !isspace((unsigned char)*end); end++)
        ;
    n = (size_t)(end - p);
    for (i = 0; i < XE_ARRAY_LEN(units); i++) {
        const char *u = units[i].sfx;
        size_t j;

        if (strlen(u) != n)
            continue;
        for (j = 0; j < n; j++)
            if (tolower((unsigned char)p[j]) != u[j])
                break;
        if (j == n) {
            *out = wrap_mul(size, (uint64_t)1 << units[i].shift);
            return 0;
        }
    }
    return -1;
}

int xe_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "t", "yes", "y", "1"};
    static const char *const no[] = {"false", "f", "no", "n", "0"};
    size_t i;

    for (i = 0; i < XE_ARRAY_LEN(yes); i++) {
        if (xe_strcaseeq(s, yes[i])) {
            *out = true;
            return 0;
        }
        if (xe_strcaseeq(s, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

int xe_parse_int(const char *s, int64_t *out)
{
    const char *p = s;
    char *end;
    unsigned long long v;

    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        if (!isxdigit((unsigned char)p[2]))
            return -1;
        errno = 0;
        v = strtoull(p + 2, &end, 16);
        if (errno != 0 || *end != '\0')
            return -1;
        *out = (int64_t)v;
        return 0;
    }
    if (scan_int64(&p, out) < 0 || *p != '\0')
        return -1;
    return 0;
}

int xe_parse_float(const char *s, double *out)
{
    char *end;

    if (*s == '\0' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    *out = strtod(s, &end);
    return *end == '\0' ? 0 : -1;
}

char *xe_slurp(xe_arena *a, const char *path)
{
    FILE *f = fopen(path, "r");
    xe_buf b;
    char chunk[4096];
    size_t n;

    if (f == NULL)
        return NULL;
    xe_buf_init(&b, a);
    xe_buf_add(&b, "");
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        xe_buf_addn(&b, chunk, n);
    fclose(f);
    return b.s;
}
