/*
 * metrics/rrd.c - XAPI's RRD maths (ocaml/libs/xapi-rrd lib/rrd.ml and
 * rrd_updates.ml), in C: the update that turns readings into PDPs and
 * PDPs into consolidated rows, the choice of archives for rrd_updates,
 * and the XML/JSON XAPI writes; plus a binary image for the state dir.
 */
#include "rrd.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <sys/mman.h>

const xcp__rra_def xcp__rrd_xapi_rras[] = {
    {XCP__CF_AVERAGE, 120, 1, 0.5},
    {XCP__CF_AVERAGE, 120, 12, 1.0},   {XCP__CF_MIN, 120, 12, 1.0},
    {XCP__CF_MAX, 120, 12, 1.0},       {XCP__CF_AVERAGE, 168, 720, 1.0},
    {XCP__CF_MIN, 168, 720, 1.0},      {XCP__CF_MAX, 168, 720, 1.0},
    {XCP__CF_AVERAGE, 366, 17280, 1.0}, {XCP__CF_MIN, 366, 17280, 1.0},
    {XCP__CF_MAX, 366, 17280, 1.0},
};
const size_t xcp__rrd_xapi_n_rras = XCP__ARRAY_LEN(xcp__rrd_xapi_rras);

static const char *const cf_names[] = {"AVERAGE", "MIN", "MAX", "LAST"};
static const char *const type_names[] = {"GAUGE", "ABSOLUTE", "DERIVE"};

const char *xcp__cf_name(xcp__cf cf)
{
    return cf_names[cf];
}

int xcp__cf_parse(const char *s)
{
    size_t i;

    for (i = 0; s && i < XCP__ARRAY_LEN(cf_names); i++)
        if (!strcmp(s, cf_names[i]))
            return (int)i;
    return -1;
}

const char *xcp__ds_type_name(xcp__ds_type t)
{
    return type_names[t];
}

/* ---- making and freeing ---------------------------------------------- */

xcp__rrd *xcp__rrd_new(unsigned step, const xcp__rra_def *rras, size_t n,
                       double t)
{
    xcp__rrd *r = xcp__calloc(1, sizeof(*r));
    size_t i;

    if (!r || !(r->rra = xcp__calloc(n ? n : 1, sizeof(*r->rra)))) {
        free(r);
        return NULL;
    }
    r->step = step ? step : 5;
    r->last_updated = t;
    r->n_rra = n;
    for (i = 0; i < n; i++) {
        r->rra[i].cf = rras[i].cf;
        r->rra[i].rows = rras[i].rows ? rras[i].rows : 1;
        r->rra[i].pdp_cnt = rras[i].pdp_cnt ? rras[i].pdp_cnt : 1;
        r->rra[i].xff = rras[i].xff;
        r->rra[i].head = r->rra[i].rows - 1;
    }
    return r;
}

void xcp__rrd_free(xcp__rrd *r)
{
    size_t i;

    if (!r)
        return;
    for (i = 0; i < r->n_ds; i++)
        free(r->ds[i].name);
    for (i = 0; i < r->n_rra; i++) {
        free(r->rra[i].data);
        free(r->rra[i].cdp_value);
        free(r->rra[i].cdp_unknown);
    }
    free(r->ds);
    free(r->rra);
    free(r);
}

int xcp__rrd_find(const xcp__rrd *r, const char *name)
{
    size_t i;

    for (i = 0; i < r->n_ds; i++)
        if (!strcmp(r->ds[i].name, name))
            return (int)i;
    return -1;
}

/* CA-329043: the CDP's starting value, kept within the bounds. */
static double cf_init(xcp__cf cf, const xcp__rrd_ds *ds)
{
    double v = cf == XCP__CF_AVERAGE ? 0.0
               : cf == XCP__CF_MIN   ? INFINITY
               : cf == XCP__CF_MAX   ? -INFINITY
                                     : NAN;

    return fmin(ds->max, fmax(ds->min, v));
}

/* Fring.push: out of bounds is unknown. */
static float bounded(const xcp__rrd_ds *ds, double v)
{
    return v < ds->min || v > ds->max ? NAN : (float)v;
}

int xcp__rrd_add_ds(xcp__rrd *r, const xcp__ds_def *d, double t)
{
    xcp__rrd_ds *ds;
    size_t i, k, n = r->n_ds;
    int at = xcp__rrd_find(r, d->name);

    if (at >= 0)
        return at;
    if (!(ds = xcp__realloc(r->ds, (n + 1) * sizeof(*ds))))
        return -1;
    r->ds = ds;
    for (i = 0; i < r->n_rra; i++) {
        xcp__rra *a = &r->rra[i];
        float *data = xcp__realloc(a->data, (n + 1) * a->rows * sizeof(float));
        double *cv;
        unsigned *cu;

        if (data)
            a->data = data;
        cv = data ? xcp__realloc(a->cdp_value, (n + 1) * sizeof(double))
                  : NULL;
        if (cv)
            a->cdp_value = cv;
        cu = cv ? xcp__realloc(a->cdp_unknown, (n + 1) * sizeof(unsigned))
                : NULL;
        if (!cu)
            return -1;
        a->cdp_unknown = cu;
    }
    ds = &r->ds[n];
    memset(ds, 0, sizeof(*ds));
    if (!(ds->name = xcp__strdup(d->name)))
        return -1;
    ds->type = d->type;
    ds->min = d->min;
    ds->max = d->max;
    ds->mrhb = 300.0;
    ds->last_updated = t;
    for (i = 0; i < r->n_rra; i++) {
        xcp__rra *a = &r->rra[i];

        for (k = 0; k < a->rows; k++)
            a->data[n * a->rows + k] = NAN;
        a->cdp_value[n] = cf_init(a->cf, ds);
        a->cdp_unknown[n] =
            (unsigned)(((uint64_t)t / r->step) % a->pdp_cnt);
    }
    r->n_ds = n + 1;
    return (int)n;
}

bool xcp__rrd_remove_ds(xcp__rrd *r, const char *name)
{
    int at = xcp__rrd_find(r, name);
    size_t i, n, tail;

    if (at < 0)
        return false;
    n = r->n_ds;
    tail = n - (size_t)at - 1;
    free(r->ds[at].name);
    memmove(&r->ds[at], &r->ds[at + 1], tail * sizeof(*r->ds));
    for (i = 0; i < r->n_rra; i++) {
        xcp__rra *a = &r->rra[i];

        memmove(a->data + (size_t)at * a->rows,
                a->data + ((size_t)at + 1) * a->rows,
                tail * a->rows * sizeof(float));
        memmove(&a->cdp_value[at], &a->cdp_value[at + 1],
                tail * sizeof(double));
        memmove(&a->cdp_unknown[at], &a->cdp_unknown[at + 1],
                tail * sizeof(unsigned));
    }
    r->n_ds = n - 1;
    return true;
}

size_t xcp__rrd_bytes(const xcp__rrd *r)
{
    size_t i, b = sizeof(*r) + r->n_ds * sizeof(*r->ds);

    for (i = 0; i < r->n_ds; i++)
        b += strlen(r->ds[i].name) + 1;
    for (i = 0; i < r->n_rra; i++)
        b += sizeof(r->rra[i]) +
             r->n_ds * (r->rra[i].rows * sizeof(float) + sizeof(double) +
                        sizeof(unsigned));
    return b;
}

/* ---- the update (Rrd.ds_update) ---------------------------------------- */

/* Update the CDPs with offset PDPs (Rrd.do_cfs). */
static void do_cfs(xcp__rra *a, unsigned offset, const double *pdps,
                   size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        double pdp = pdps[i], *cv = &a->cdp_value[i];

        if (isnan(pdp)) {
            /* renormalise the average for the PDPs now unknown */
            int olddiv = (int)a->pdp_cnt - (int)a->cdp_unknown[i];
            int newdiv = olddiv - (int)offset;

            if (newdiv > 0) {
                *cv = *cv * olddiv / newdiv;
                a->cdp_unknown[i] += offset;
            }
            continue;
        }
        switch (a->cf) {
        case XCP__CF_AVERAGE:
            *cv += pdp * offset / a->pdp_cnt;
            break;
        case XCP__CF_MIN:
            *cv = fmin(*cv, pdp);
            break;
        case XCP__CF_MAX:
            *cv = fmax(*cv, pdp);
            break;
        case XCP__CF_LAST:
            *cv = pdp;
            break;
        }
    }
}

static void push(xcp__rrd *r, xcp__rra *a, const double *v)
{
    size_t i;

    a->head = (a->head + 1) % a->rows;
    for (i = 0; i < r->n_ds; i++)
        a->data[i * a->rows + a->head] = bounded(&r->ds[i], v[i]);
}

/* Rrd.rra_update; prim is scratch of n_ds doubles. */
static void rra_update(xcp__rrd *r, uint64_t proc_pdp_st, uint64_t elapsed,
                       const double *pdps, double *prim)
{
    size_t k, i;

    for (k = 0; k < r->n_rra; k++) {
        xcp__rra *a = &r->rra[k];
        uint64_t start_off = a->pdp_cnt - (proc_pdp_st / r->step) % a->pdp_cnt;
        uint64_t steps =
            elapsed < start_off ? 0 : (elapsed - start_off) / a->pdp_cnt + 1;

        do_cfs(a, (unsigned)(start_off < elapsed ? start_off : elapsed), pdps,
               r->n_ds);
        if (steps == 0)
            continue;
        for (i = 0; i < r->n_ds; i++)
            prim[i] = a->cdp_unknown[i] <= (unsigned)(a->xff * a->pdp_cnt)
                          ? a->cdp_value[i]
                          : NAN;
        push(r, a, prim);
        for (i = 1; i < steps && i <= a->rows; i++)
            push(r, a, pdps);
        for (i = 0; i < r->n_ds; i++) {
            a->cdp_unknown[i] = 0;
            a->cdp_value[i] = cf_init(a->cf, &r->ds[i]);
        }
        do_cfs(a, (unsigned)((elapsed - start_off) % a->pdp_cnt), pdps,
               r->n_ds);
    }
}

/* Rrd.process_ds_value: the rate of one reading. */
static double rate_of(xcp__rrd_ds *ds, double value, double interval)
{
    double rate;

    if (interval > ds->mrhb)
        return NAN;
    switch (ds->type) {
    case XCP__DS_GAUGE:
        rate = value;
        break;
    case XCP__DS_ABSOLUTE:
        rate = value / interval;
        break;
    default:
        rate = ds->last_known && !isnan(value) ? value - ds->last : NAN;
        break;
    }
    ds->last = value;
    ds->last_known = !isnan(value);
    return rate;
}

void xcp__rrd_update(xcp__rrd *r, double t, const double *values, size_t n)
{
    double interval, pre_int, post_int, *v2s, *pdps;
    uint64_t proc_pdp_st, occu_pdp_st, elapsed;
    double occu_age;
    size_t i;

    if (n != r->n_ds || n == 0)
        return;
    if (!(v2s = xcp__malloc(3 * n * sizeof(double))))
        return;
    pdps = v2s + n;
    interval = t - r->last_updated;
    if (interval < 0) /* the clock went back */
        interval = 5.0;
    proc_pdp_st = (uint64_t)r->last_updated / r->step * r->step;
    occu_pdp_st = (uint64_t)t / r->step * r->step;
    occu_age = t - (double)occu_pdp_st;
    elapsed = occu_pdp_st > proc_pdp_st ? (occu_pdp_st - proc_pdp_st) / r->step
                                        : 0;
    pre_int = elapsed > 0 ? interval - occu_age : interval;
    post_int = elapsed > 0 ? occu_age : 0.0;
    r->last_updated = t;
    for (i = 0; i < n; i++) {
        xcp__rrd_ds *ds = &r->ds[i];

        v2s[i] = rate_of(ds, values[i], interval);
        ds->last_updated = t;
        if (isnan(v2s[i]))
            ds->unknown_sec = pre_int;
        else if (ds->type == XCP__DS_DERIVE)
            ds->value += pre_int * v2s[i] / interval;
        else
            ds->value = v2s[i];
    }
    if (elapsed > 0) {
        for (i = 0; i < n; i++) {
            xcp__rrd_ds *ds = &r->ds[i];
            double raw;

            if (interval > ds->mrhb) {
                pdps[i] = NAN;
                continue;
            }
            raw = ds->type == XCP__DS_DERIVE
                      ? ds->value / (interval - ds->unknown_sec)
                      : ds->value;
            /* CA-411679: a rate up to 5 % over its maximum is capped */
            if (ds->type == XCP__DS_DERIVE && raw > ds->max &&
                raw < ds->max * 1.05)
                raw = ds->max;
            pdps[i] = raw < ds->min || raw > ds->max ? NAN : raw;
        }
        rra_update(r, proc_pdp_st, elapsed, pdps, pdps + n);
        for (i = 0; i < n; i++) {
            xcp__rrd_ds *ds = &r->ds[i];

            if (isnan(v2s[i])) {
                ds->value = 0.0;
                ds->unknown_sec = post_int;
            } else {
                ds->unknown_sec = 0.0;
                ds->value = ds->type == XCP__DS_DERIVE
                                ? post_int * v2s[i] / interval
                                : v2s[i];
            }
        }
    }
    free(v2s);
}

/* The first AVERAGE archive holding now: the finest (find_best_rras). */
double xcp__rrd_latest(const xcp__rrd *r, size_t i)
{
    size_t k;

    if (i >= r->n_ds)
        return NAN;
    for (k = 0; k < r->n_rra; k++)
        if (r->rra[k].cf == XCP__CF_AVERAGE)
            return r->rra[k].data[i * r->rra[k].rows + r->rra[k].head];
    return NAN;
}

/* Row i back from the newest (Fring.peek). */
/* Room for n more bytes (and the NUL) in b: 0, or -1 when out of memory. */
static int xcp__buf_reserve(xcp__buf *b, size_t n)
{
    size_t need = b->len + n + 1, cap;
    char *p;

    if (b->oom)
        return -1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap *= 2;
    if (!(p = realloc(b->data, cap))) {
        b->oom = true;
        return -1;
    }
    b->data = p;
    b->cap = cap;
#ifdef MADV_HUGEPAGE
    /* a document of megabytes (rrd_updates for 1,000 VMs is ~10 MB):
     * huge pages where the kernel offers them, 5 faults instead of
     * 2,500 on the first write */
    if (cap >= (8u << 20)) {
        uintptr_t lo = ((uintptr_t)p + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1);
        uintptr_t hi = ((uintptr_t)p + cap) & ~(uintptr_t)((2u << 20) - 1);

        if (hi > lo)
            (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    }
#endif
    return 0;
}

static float peek(const xcp__rra *a, size_t ds, unsigned i)
{
    return a->data[ds * a->rows + (a->head + a->rows - i % a->rows) % a->rows];
}

/* ---- text ---------------------------------------------------------------- */

/* ---- %.15g without printf ----
 * rrd_updates formats a million values; printf's %g costs ~300 ns each.
 * v = mant * 2^k exactly (a normal double), so v * 10^p = mant * 5^p *
 * 2^(k+p): for p >= 0 one 64x64->128 multiplication and a shift, for
 * p < 0 a 128-bit division by 5^-p, both exact, rounded half to even as
 * glibc's printf rounds the exact binary value. So the digits are
 * printf's, not an approximation (tests/unit/metrics compares them over
 * millions of values). Decimal exponents -13..27 take this path; the
 * rest (and subnormals) go to printf. */
typedef unsigned __int128 u128;

static const uint64_t pow5[28] = {
    1ull, 5ull, 25ull, 125ull, 625ull, 3125ull, 15625ull, 78125ull,
    390625ull, 1953125ull, 9765625ull, 48828125ull, 244140625ull,
    1220703125ull, 6103515625ull, 30517578125ull, 152587890625ull,
    762939453125ull, 3814697265625ull, 19073486328125ull,
    95367431640625ull, 476837158203125ull, 2384185791015625ull,
    11920928955078125ull, 59604644775390625ull, 298023223876953125ull,
    1490116119384765625ull, 7450580596923828125ull};

#define E15 1000000000000000ull
#define E14 100000000000000ull

/* round(mant * 2^k * 10^p), half to even; false if out of this path's
 * range (|p| > 27, or not below 2^64). */
static bool scaled(uint64_t mant, int k, int p, uint64_t *out)
{
    u128 n, q, r, d;
    int sh;

    if (p > 27 || p < -27)
        return false;
    if (p >= 0) {
        n = (u128)mant * pow5[p];
        sh = k + p;
        if (sh >= 0) {
            if (sh > 10 || (n >> (64 - sh)) != 0)
                return false;
            *out = (uint64_t)(n << sh);
            return true;
        }
        sh = -sh;
        if (sh >= 127)
            return false;
        q = n >> sh;
        r = n & (((u128)1 << sh) - 1);
        d = (u128)1 << (sh - 1); /* half */
        if (r > d || (r == d && (q & 1)))
            q++;
    } else {
        /* mant * 2^k / 5^-p / 2^-p */
        d = pow5[-p];
        sh = k + p;
        n = mant;
        if (sh >= 0) {
            if (sh > 70)
                return false;
            n <<= sh;
        } else {
            if (-sh > 60)
                return false;
            d <<= -sh;
        }
        q = n / d;
        r = n % d;
        if (2 * r > d || (2 * r == d && (q & 1)))
            q++;
    }
    if (q >> 64)
        return false;
    *out = (uint64_t)q;
    return true;
}

/* The 15 digits of m (10^14 <= m < 10^15) into dig[0..14]. */
static void digits15(char *dig, uint64_t m)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930"
        "31323334353637383940414243444546474849505152535455565758596061"
        "62636465666768697071727374757677787980818283848586878889909192"
        "939495969798990";
    uint32_t hi = (uint32_t)(m / 100000000u), lo = (uint32_t)(m % 100000000u);
    int i;

    for (i = 14; i >= 7; i -= 2) { /* 8 low digits into dig[7..14] */
        memcpy(&dig[i - 1], &pairs[(lo % 100) * 2], 2);
        lo /= 100;
    }
    for (i = 6; i >= 1; i -= 2) { /* 7 high digits into dig[0..6] */
        memcpy(&dig[i - 1], &pairs[(hi % 100) * 2], 2);
        hi /= 100;
    }
    dig[0] = (char)('0' + hi % 10);
}

/* %.15g of a finite non-zero v: its length, or -1 to leave it to
 * printf. */
static int fmt15(char *buf, double v)
{
    uint64_t bits, mant, m = 0;
    int be, k, e, tries, len = 0, nd, i, point;
    char dig[16];

    memcpy(&bits, &v, sizeof(bits));
    be = (int)((bits >> 52) & 0x7ff);
    if (be == 0 || be == 0x7ff)
        return -1; /* subnormal, or not finite */
    mant = (bits & ((1ull << 52) - 1)) | (1ull << 52);
    k = be - 1075;
    /* 2^(be-1023) <= |v| < 2^(be-1022): a guess of floor(log10 |v|),
     * then corrected by the digits' count */
    e = ((be - 1023) * 1233) >> 12;
    for (tries = 0;; tries++) {
        if (tries > 3 || !scaled(mant, k, 14 - e, &m))
            return -1;
        if (m >= E15)
            e++;
        else if (m < E14)
            e--;
        else
            break;
    }
    digits15(dig, m);
    nd = 15;
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    if (bits >> 63)
        buf[len++] = '-';
    if (e < -4 || e >= 15) {
        unsigned x = (unsigned)(e < 0 ? -e : e);

        buf[len++] = dig[0];
        if (nd > 1) {
            buf[len++] = '.';
            memcpy(buf + len, dig + 1, (size_t)nd - 1);
            len += nd - 1;
        }
        buf[len++] = 'e';
        buf[len++] = e < 0 ? '-' : '+';
        if (x >= 100)
            buf[len++] = (char)('0' + x / 100);
        buf[len++] = (char)('0' + x / 10 % 10);
        buf[len++] = (char)('0' + x % 10);
    } else if (e >= 0) {
        point = e + 1; /* digits before the point */
        for (i = 0; i < point; i++)
            buf[len++] = i < nd ? dig[i] : '0';
        if (nd > point) {
            buf[len++] = '.';
            memcpy(buf + len, dig + point, (size_t)(nd - point));
            len += nd - point;
        }
    } else {
        buf[len++] = '0';
        buf[len++] = '.';
        for (i = 0; i < -e - 1; i++)
            buf[len++] = '0';
        memcpy(buf + len, dig, (size_t)nd);
        len += nd;
    }
    buf[len] = '\0';
    return len;
}

int xcp__rrd_fmt(char *buf, double v)
{
    int n;

    if (isnan(v))
        return (int)strlen(strcpy(buf, "NaN"));
    if (isinf(v))
        return (int)strlen(strcpy(buf, v > 0 ? "Infinity" : "-Infinity"));
    if (v == 0.0)
        return (int)strlen(strcpy(buf, "0.0"));
    /* integers (most counters and sizes) without printf */
    if (fabs(v) < 1e15 && v == (double)(int64_t)v) {
        char tmp[24];
        int64_t x = (int64_t)v;
        uint64_t u = x < 0 ? (uint64_t)-x : (uint64_t)x;
        int len = 0;

        n = 0;
        do {
            tmp[n++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (x < 0)
            buf[len++] = '-';
        while (n)
            buf[len++] = tmp[--n];
        buf[len] = '\0';
        return len;
    }
    if ((n = fmt15(buf, v)) >= 0)
        return n;
    xcp__format_double(buf, 32, 15, v);
    return (int)strlen(buf);
}

static void tag_num(xcp__buf *b, const char *tag, double v)
{
    char num[32];

    xcp__rrd_fmt(num, v);
    xcp__buf_printf(b, "<%s>%s</%s>", tag, num, tag);
}

/* XML text escaping for names (ours are plain; stay safe anyway). */
static void xml_text(xcp__buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            xcp__buf_adds(b, "&lt;");
        else if (*s == '>')
            xcp__buf_adds(b, "&gt;");
        else if (*s == '&')
            xcp__buf_adds(b, "&amp;");
        else
            xcp__buf_addc(b, *s);
    }
}

static void json_str(xcp__buf *b, const char *s)
{
    xcp__buf_addc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            xcp__buf_addc(b, '\\');
        if ((unsigned char)*s < 0x20)
            xcp__buf_printf(b, "\\u%04x", (unsigned char)*s);
        else
            xcp__buf_addc(b, *s);
    }
    xcp__buf_addc(b, '"');
}

static void json_num(xcp__buf *b, double v)
{
    char num[32];

    xcp__rrd_fmt(num, v);
    xcp__buf_printf(b, "\"%s\"", num);
}

#define XML_DECL "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

void xcp__rrd_xml(const xcp__rrd *r, xcp__buf *b)
{
    size_t i, k;
    unsigned row;

    xcp__buf_printf(b, XML_DECL "<rrd><version>0003</version><step>%u</step>"
                    "<lastupdate>%" PRId64 "</lastupdate>", r->step,
                    (int64_t)r->last_updated);
    for (i = 0; i < r->n_ds; i++) {
        const xcp__rrd_ds *ds = &r->ds[i];

        xcp__buf_adds(b, "<ds><name>");
        xml_text(b, ds->name);
        xcp__buf_printf(b, "</name><type>%s</type>", type_names[ds->type]);
        tag_num(b, "minimal_heartbeat", ds->mrhb);
        tag_num(b, "min", ds->min);
        tag_num(b, "max", ds->max);
        if (ds->last_known)
            tag_num(b, "last_ds", ds->last);
        else
            xcp__buf_adds(b, "<last_ds>0.0</last_ds>");
        tag_num(b, "value", ds->value);
        xcp__buf_printf(b, "<unknown_sec>%d</unknown_sec></ds>",
                        ds->unknown_sec >= 0 && ds->unknown_sec < 1e9
                            ? (int)ds->unknown_sec
                            : 0);
    }
    for (k = 0; k < r->n_rra; k++) {
        const xcp__rra *a = &r->rra[k];

        xcp__buf_printf(b, "<rra><cf>%s</cf><pdp_per_row>%u</pdp_per_row>"
                        "<params>", cf_names[a->cf], a->pdp_cnt);
        tag_num(b, "xff", a->xff);
        xcp__buf_adds(b, "</params><cdp_prep>");
        for (i = 0; i < r->n_ds; i++) {
            xcp__buf_adds(b, "<ds><primary_value>0.0</primary_value>"
                             "<secondary_value>0.0</secondary_value>");
            tag_num(b, "value", a->cdp_value[i]);
            xcp__buf_printf(b, "<unknown_datapoints>%u</unknown_datapoints>"
                            "</ds>", a->cdp_unknown[i]);
        }
        xcp__buf_adds(b, "</cdp_prep><database>");
        if (r->n_ds > 0)
            for (row = 0; row < a->rows; row++) {
                xcp__buf_adds(b, "<row>");
                for (i = 0; i < r->n_ds; i++)
                    tag_num(b, "v", peek(a, i, a->rows - row - 1));
                xcp__buf_adds(b, "</row>");
            }
        xcp__buf_adds(b, "</database></rra>");
    }
    xcp__buf_adds(b, "</rrd>");
}

void xcp__rrd_json(const xcp__rrd *r, xcp__buf *b)
{
    size_t i, k;
    unsigned row;

    xcp__buf_printf(b, "{\"version\":\"0003\",\"step\":\"%u\",\"lastupdate\":",
                    r->step);
    json_num(b, r->last_updated);
    xcp__buf_adds(b, ",\"ds\":[");
    for (i = 0; i < r->n_ds; i++) {
        const xcp__rrd_ds *ds = &r->ds[i];

        xcp__buf_adds(b, i ? ",{\"name\":" : "{\"name\":");
        json_str(b, ds->name);
        xcp__buf_printf(b, ",\"type\":\"%s\",\"minimal_heartbeat\":",
                        type_names[ds->type]);
        json_num(b, ds->mrhb);
        xcp__buf_adds(b, ",\"min\":");
        json_num(b, ds->min);
        xcp__buf_adds(b, ",\"max\":");
        json_num(b, ds->max);
        xcp__buf_adds(b, ",\"last_ds\":");
        json_num(b, ds->last_known ? ds->last : 0.0);
        xcp__buf_adds(b, ",\"value\":");
        json_num(b, ds->value);
        xcp__buf_adds(b, ",\"unknown_sec\":");
        json_num(b, ds->unknown_sec);
        xcp__buf_adds(b, ",\"last_updated\":");
        json_num(b, ds->last_updated);
        xcp__buf_addc(b, '}');
    }
    xcp__buf_adds(b, "],\"rra\":[");
    for (k = 0; k < r->n_rra; k++) {
        const xcp__rra *a = &r->rra[k];

        xcp__buf_printf(b, "%s{\"cf\":\"%s\",\"pdp_per_row\":\"%u\","
                        "\"params\":{\"xff\":", k ? "," : "", cf_names[a->cf],
                        a->pdp_cnt);
        json_num(b, a->xff);
        xcp__buf_adds(b, "},\"cdp_prep\":{\"ds\":[");
        for (i = 0; i < r->n_ds; i++) {
            xcp__buf_adds(b, i ? "," : "");
            xcp__buf_adds(b, "{\"primary_value\":\"0.0\","
                             "\"secondary_value\":\"0.0\",\"value\":");
            json_num(b, a->cdp_value[i]);
            xcp__buf_printf(b, ",\"unknown_datapoints\":\"%u\"}",
                            a->cdp_unknown[i]);
        }
        xcp__buf_adds(b, "]},\"database\":[");
        if (r->n_ds > 0)
            for (row = 0; row < a->rows; row++) {
                xcp__buf_adds(b, row ? ",[" : "[");
                for (i = 0; i < r->n_ds; i++) {
                    xcp__buf_adds(b, i ? "," : "");
                    json_num(b, peek(a, i, a->rows - row - 1));
                }
                xcp__buf_addc(b, ']');
            }
        xcp__buf_adds(b, "]}");
    }
    xcp__buf_adds(b, "]}");
}

/* ---- the binary image ---------------------------------------------------- */
/*
 * "XRRD1\n", then little-endian fields: u32 step, f64 last_updated,
 * u32 n_ds, u32 n_rra; per ds: u16 name length, name, u8 type,
 * u8 last_known, f64 min, max, mrhb, last, value, unknown_sec,
 * last_updated; per rra: u8 cf, u32 rows, pdp_cnt, head, f64 xff, then
 * per ds f64 cdp_value, u32 cdp_unknown, then rows f32 per ds. Written on
 * the host that reads it (native byte order, checked by the magic's
 * companion u32 0x01020304).
 */
#define MAGIC "XRRD1\n"
#define ORDER 0x01020304u
#define MAX_DS 4096
#define MAX_ROWS 1000000u
#define MAX_PDP 10000000u /* XAPI's coarsest: 17280 PDPs (a day) */

static void put(xcp__buf *b, const void *p, size_t n)
{
    xcp__buf_add(b, p, n);
}

#define PUT(b, v) put(b, &(v), sizeof(v))

void xcp__rrd_save(const xcp__rrd *r, xcp__buf *b)
{
    uint32_t u = ORDER, n_ds = (uint32_t)r->n_ds, n_rra = (uint32_t)r->n_rra;
    size_t i, k;

    put(b, MAGIC, 6);
    PUT(b, u);
    PUT(b, r->step);
    PUT(b, r->last_updated);
    PUT(b, n_ds);
    PUT(b, n_rra);
    for (i = 0; i < r->n_ds; i++) {
        const xcp__rrd_ds *ds = &r->ds[i];
        uint16_t len = (uint16_t)strlen(ds->name);
        uint8_t t = (uint8_t)ds->type, lk = ds->last_known;

        PUT(b, len);
        put(b, ds->name, len);
        PUT(b, t);
        PUT(b, lk);
        PUT(b, ds->min);
        PUT(b, ds->max);
        PUT(b, ds->mrhb);
        PUT(b, ds->last);
        PUT(b, ds->value);
        PUT(b, ds->unknown_sec);
        PUT(b, ds->last_updated);
    }
    for (k = 0; k < r->n_rra; k++) {
        const xcp__rra *a = &r->rra[k];
        uint8_t cf = (uint8_t)a->cf;

        PUT(b, cf);
        PUT(b, a->rows);
        PUT(b, a->pdp_cnt);
        PUT(b, a->head);
        PUT(b, a->xff);
        for (i = 0; i < r->n_ds; i++) {
            PUT(b, a->cdp_value[i]);
            PUT(b, a->cdp_unknown[i]);
        }
        put(b, a->data, r->n_ds * a->rows * sizeof(float));
    }
}

typedef struct rd {
    const unsigned char *p;
    size_t n, at;
    bool bad;
} rd;

static void get(rd *d, void *out, size_t n)
{
    if (d->bad || d->n - d->at < n) {
        d->bad = true;
        memset(out, 0, n);
        return;
    }
    memcpy(out, d->p + d->at, n);
    d->at += n;
}

#define GET(d, v) get(d, &(v), sizeof(v))

xcp__rrd *xcp__rrd_load(const void *p, size_t n)
{
    rd d = {p, n, 0, false};
    char magic[6];
    uint32_t order, step, n_ds, n_rra, i, k;
    double last;
    xcp__rrd *r = NULL;

    get(&d, magic, 6);
    GET(&d, order);
    GET(&d, step);
    GET(&d, last);
    GET(&d, n_ds);
    GET(&d, n_rra);
    if (d.bad || memcmp(magic, MAGIC, 6) || order != ORDER || step == 0 ||
        step > 86400 ||
        n_ds > MAX_DS || n_rra > 64 || !(last >= 0 && last < 1e11))
        return NULL;
    if (!(r = xcp__calloc(1, sizeof(*r))) ||
        !(r->ds = xcp__calloc(n_ds ? n_ds : 1, sizeof(*r->ds))) ||
        !(r->rra = xcp__calloc(n_rra ? n_rra : 1, sizeof(*r->rra))))
        goto bad;
    r->step = step;
    r->last_updated = last;
    for (i = 0; i < n_ds; i++) {
        xcp__rrd_ds *ds = &r->ds[i];
        uint16_t len;
        uint8_t t, lk;

        GET(&d, len);
        if (d.bad || !(ds->name = xcp__malloc((size_t)len + 1)))
            goto bad;
        r->n_ds = i + 1;
        get(&d, ds->name, len);
        ds->name[len] = '\0';
        GET(&d, t);
        GET(&d, lk);
        GET(&d, ds->min);
        GET(&d, ds->max);
        GET(&d, ds->mrhb);
        GET(&d, ds->last);
        GET(&d, ds->value);
        GET(&d, ds->unknown_sec);
        GET(&d, ds->last_updated);
        if (d.bad || t > XCP__DS_DERIVE || lk > 1 ||
            strlen(ds->name) != len ||
            xcp__rrd_find(r, ds->name) != (int)i)
            goto bad;
        ds->type = (xcp__ds_type)t;
        ds->last_known = lk != 0;
    }
    r->n_rra = n_rra;
    for (k = 0; k < n_rra; k++) {
        xcp__rra *a = &r->rra[k];
        uint8_t cf;

        GET(&d, cf);
        GET(&d, a->rows);
        GET(&d, a->pdp_cnt);
        GET(&d, a->head);
        GET(&d, a->xff);
        if (d.bad || cf > XCP__CF_LAST || a->rows == 0 ||
            a->rows > MAX_ROWS || a->pdp_cnt == 0 ||
            a->pdp_cnt > MAX_PDP || !(a->xff >= 0 && a->xff <= 1) ||
            a->head >= a->rows ||
            (size_t)n_ds * a->rows * sizeof(float) > n - d.at)
            goto bad;
        a->cf = (xcp__cf)cf;
        if (!(a->cdp_value = xcp__calloc(n_ds ? n_ds : 1, sizeof(double))) ||
            !(a->cdp_unknown = xcp__calloc(n_ds ? n_ds : 1,
                                           sizeof(unsigned))) ||
            !(a->data = xcp__malloc((n_ds ? n_ds : 1) * a->rows *
                                    sizeof(float))))
            goto bad;
        for (i = 0; i < n_ds; i++) {
            GET(&d, a->cdp_value[i]);
            GET(&d, a->cdp_unknown[i]);
            if (a->cdp_unknown[i] > a->pdp_cnt)
                d.bad = true;
        }
        get(&d, a->data, (size_t)n_ds * a->rows * sizeof(float));
        if (d.bad)
            goto bad;
    }
    if (d.at != n)
        goto bad;
    return r;
bad:
    xcp__rrd_free(r);
    return NULL;
}

/* ---- rrd_updates ---------------------------------------------------------- */

/* Whether archive a of r holds time t at pdp_interval (contains_time). */
static bool contains(const xcp__rrd *r, const xcp__rra *a, int64_t t,
                     int64_t pdp_interval)
{
    int64_t last_pdp = (int64_t)r->last_updated / r->step * r->step;

    return (int64_t)a->pdp_cnt >= pdp_interval &&
           t > last_pdp - (int64_t)r->step * a->rows * a->pdp_cnt;
}

static bool cf_ok(const xcp__rra *a, int cf)
{
    return cf < 0 || (int)a->cf == cf;
}

/* Rrd.find_best_rras: the first archive of cf holding start, and the
 * others of its shape; else those holding the oldest time the coarsest
 * one does. *first: that shape's archive (NULL: none). */
static const xcp__rra *best(const xcp__rrd *r, int64_t pdp_interval, int cf,
                            int64_t start)
{
    const xcp__rra *last = NULL;
    size_t k;

    for (k = 0; k < r->n_rra; k++) {
        if (!cf_ok(&r->rra[k], cf))
            continue;
        if (contains(r, &r->rra[k], start, pdp_interval))
            return &r->rra[k];
        last = &r->rra[k];
    }
    if (!last)
        return NULL;
    start = 1 + (int64_t)r->last_updated / r->step * r->step -
            (int64_t)r->step * last->rows * last->pdp_cnt;
    for (k = 0; k < r->n_rra; k++)
        if (cf_ok(&r->rra[k], cf) && contains(r, &r->rra[k], start,
                                              pdp_interval))
            return &r->rra[k];
    return NULL;
}

static bool same_shape(const xcp__rra *a, const xcp__rra *b)
{
    return a->rows == b->rows && a->pdp_cnt == b->pdp_cnt;
}

static char *put_s(char *w, const char *s, size_t n)
{
    memcpy(w, s, n);
    return w + n;
}

/* A legend entry, "<cf>:<prefix><name>", escaped, into room reserved. */
static char *legend_entry(char *w, const char *cf, const char *prefix,
                          const char *name, bool json)
{
    const char *parts[3] = {cf, prefix, name};
    const char *p;
    int i;

    if (json)
        *w++ = '"';
    else
        w = put_s(w, "<entry>", 7);
    for (i = 0; i < 3; i++) {
        for (p = parts[i]; *p; p++) {
            unsigned char c = (unsigned char)*p;

            if (json && (c == '"' || c == '\\')) {
                *w++ = '\\';
                *w++ = (char)c;
            } else if (json && c < 0x20) {
                w += sprintf(w, "\\u%04x", c);
            } else if (!json && c == '<') {
                w = put_s(w, "&lt;", 4);
            } else if (!json && c == '>') {
                w = put_s(w, "&gt;", 4);
            } else if (!json && c == '&') {
                w = put_s(w, "&amp;", 5);
            } else {
                *w++ = (char)c;
            }
        }
        if (i == 0)
            *w++ = ':';
    }
    if (json)
        *w++ = '"';
    else
        w = put_s(w, "</entry>", 8);
    return w;
}

/* Rows gathered per pass: the archives keep each data source's rows
 * together (column-major), the output goes row by row; a tile of TILE
 * rows x every column, gathered column by column (each cache line of an
 * archive read once) and then formatted row by row, keeps the 1,000 VMs'
 * archives from being walked, cache miss after miss, once per row. */
#define TILE 16
/* The longest value: "-1.23456789012345e-100" is 22; and its framing. */
#define VAL_MAX 24
#define VAL_FRAME 8

typedef struct col_src {
    const float *data;
    unsigned rows, head;
    size_t n_ds;
} col_src;

static int emit(const xcp__rra *const *sel, const xcp__rrd *const *selr,
                const char *const *selp, size_t nsel, size_t cols,
                size_t nrows, int64_t first_cdp, int64_t rstep,
                int64_t last_cdp, bool json, xcp__buf *out)
{
    col_src *cs = NULL;
    float *tile = NULL;
    size_t k, d, c, r, r0, nr, need, legend = 0;
    char *w;

    if (!(cs = xcp__calloc(nsel + 1, sizeof(*cs))))
        return -1;
    for (k = 0; k < nsel; k++) {
        size_t pl = strlen(selp[k]) + strlen(cf_names[sel[k]->cf]) + 1;

        cs[k].data = sel[k]->data;
        cs[k].rows = sel[k]->rows;
        cs[k].head = sel[k]->head;
        cs[k].n_ds = selr[k]->n_ds;
        for (d = 0; d < selr[k]->n_ds; d++) /* escaped: 6 bytes a byte */
            legend += 6 * (pl + strlen(selr[k]->ds[d].name)) + 20;
    }
    /* the document's likely size at once (values average 10-16 bytes
     * with their framing): growth and its copies are rare; each row
     * still makes sure of its worst case before it is written */
    need = 512 + legend + nrows * (cols * 16 + 64);
    if (xcp__buf_reserve(out, need) < 0 ||
        (nrows && !(tile = malloc(sizeof(*tile) * cols * TILE)))) {
        free(cs);
        out->oom = true;
        return -1;
    }
    w = out->data + out->len;
    if (json)
        w += sprintf(w, "{\"meta\":{\"start\":\"%" PRId64 "\",\"step\":"
                        "\"%" PRId64 "\",\"end\":\"%" PRId64 "\",\"rows\":"
                        "\"%zu\",\"columns\":\"%zu\",\"legend\":[",
                     first_cdp, rstep, last_cdp, nrows, cols);
    else
        w += sprintf(w, XML_DECL "<xport><meta><start>%" PRId64
                        "</start><step>%" PRId64 "</step><end>%" PRId64
                        "</end><rows>%zu</rows><columns>%zu</columns>"
                        "<legend>", first_cdp, rstep, last_cdp, nrows, cols);
    for (k = 0, c = 0; k < nsel; k++)
        for (d = 0; d < cs[k].n_ds; d++, c++) {
            if (json && c)
                *w++ = ',';
            w = legend_entry(w, cf_names[sel[k]->cf], selp[k],
                             selr[k]->ds[d].name, json);
        }
    w = json ? memcpy(w, "]},\"data\":[", 11) + 11
             : put_s(w, "</legend></meta><data>", 22);
    for (r0 = 0; r0 < nrows; r0 += TILE) {
        nr = nrows - r0 < TILE ? nrows - r0 : TILE;
        /* gather: tile[r][c] = row r0 + r back from the newest */
        for (k = 0, c = 0; k < nsel; k++) {
            unsigned rows = cs[k].rows;
            unsigned p0 = (unsigned)((cs[k].head + rows - r0 % rows) % rows);

            for (d = 0; d < cs[k].n_ds; d++, c++) {
                const float *col = cs[k].data + d * rows;
                unsigned p = p0;

                for (r = 0; r < nr; r++) {
                    tile[r * cols + c] = col[p];
                    p = p ? p - 1 : rows - 1;
                }
            }
        }
        for (r = 0; r < nr; r++) {
            const float *v = tile + r * cols;

            out->len = (size_t)(w - out->data);
            if (xcp__buf_reserve(out, cols * (VAL_MAX + VAL_FRAME) + 64) < 0)
                break;
            w = out->data + out->len;

            if (json)
                w += sprintf(w, "%s{\"t\":\"%" PRId64 "\",\"values\":[",
                             r0 + r ? "," : "",
                             last_cdp - (int64_t)(r0 + r) * rstep);
            else
                w += sprintf(w, "<row><t>%" PRId64 "</t>",
                             last_cdp - (int64_t)(r0 + r) * rstep);
            for (c = 0; c < cols; c++) {
                if (json) {
                    if (c)
                        *w++ = ',';
                    *w++ = '"';
                    w += xcp__rrd_fmt(w, v[c]);
                    *w++ = '"';
                } else {
                    w = put_s(w, "<v>", 3);
                    w += xcp__rrd_fmt(w, v[c]);
                    w = put_s(w, "</v>", 4);
                }
            }
            w = json ? put_s(w, "]}", 2) : put_s(w, "</row>", 6);
        }
    }
    if (out->oom) {
        free(tile);
        free(cs);
        return -1;
    }
    w = json ? put_s(w, "]}", 2) : put_s(w, "</data></xport>", 15);
    *w = '\0';
    out->len = (size_t)(w - out->data);
    free(tile);
    free(cs);
    return 0;
}

int xcp__rrd_export(const xcp__rrd_src *srcs, size_t n, int64_t start,
                    int64_t interval, int cf, bool json, xcp__buf *out)
{
    const xcp__rrd *r0;
    const xcp__rra *first = NULL, **sel = NULL;
    const xcp__rrd **selr;
    const char **selp;
    size_t s, k, nsel = 0, cols = 0, nrows = 0;
    int64_t pdp_interval, rstep, last_cdp, first_cdp;
    unsigned row;
    int rc;

    if (n == 0)
        return -1;
    r0 = srcs[0].rrd;
    pdp_interval = interval / r0->step;
    if (start < 0) {
        int64_t m = INT64_MAX;

        for (s = 0; s < n; s++)
            if (srcs[s].rrd->step == r0->step &&
                start + (int64_t)srcs[s].rrd->last_updated < m)
                m = start + (int64_t)srcs[s].rrd->last_updated;
        start = m;
    }
    for (s = 0; s < n && !first; s++)
        if (srcs[s].rrd->step == r0->step)
            first = best(srcs[s].rrd, pdp_interval, cf, start);
    if (!first)
        return -1;
    /* every archive of the chosen shape, per source, in order */
    if (!(sel = xcp__calloc(n * 4 + 1, sizeof(*sel) + sizeof(*selr) +
                                           sizeof(*selp))))
        return -1;
    selr = (const xcp__rrd **)(sel + n * 4 + 1);
    selp = (const char **)(selr + n * 4 + 1);
    for (s = 0; s < n; s++) {
        const xcp__rrd *r = srcs[s].rrd;
        const xcp__rra *b;

        if (r->step != r0->step || !(b = best(r, pdp_interval, cf, start)))
            continue;
        for (k = 0; k < r->n_rra; k++)
            if (cf_ok(&r->rra[k], cf) && same_shape(&r->rra[k], b) &&
                same_shape(&r->rra[k], first) && nsel < n * 4) {
                selr[nsel] = r;
                selp[nsel] = srcs[s].prefix;
                sel[nsel++] = &r->rra[k];
                cols += r->n_ds;
            }
    }
    rstep = (int64_t)r0->step * first->pdp_cnt;
    last_cdp = (int64_t)r0->last_updated / rstep * rstep;
    first_cdp = (start >= 0 ? start / rstep : (start - rstep + 1) / rstep) *
                    rstep + rstep;
    for (row = 0; row < first->rows; row++)
        if (last_cdp - (int64_t)row * rstep < start)
            break;
    nrows = row;
    rc = emit(sel, selr, selp, nsel, cols, nrows, first_cdp, rstep, last_cdp,
              json, out);
    free(sel);
    return rc < 0 || out->oom ? -1 : 0;
}
