/*
 * api/metrics_xml.c - an RRD from XAPI's RRD XML (Rrd.from_xml in
 * ocaml/libs/xapi-rrd), the body of PUT /rrd that hosts send each other
 * when a VM moves, and what GET /vm_rrd and /host_rrd write
 * (metrics/rrd.c's xcp__rrd_xml). Read with libxml2's streaming reader
 * (rpc/xml_lib), so a big document never becomes a tree.
 *
 * As XAPI reads it: version ignored; a data source's last_ds ignored (the
 * last raw value is unknown: the next reading starts afresh); its min
 * raised to 0 when negative (CA-408126) and every archived value outside
 * [min, max] read as NaN (Fring.make); last_updated optional (the RRD's
 * lastupdate); cdp_prep's primary/secondary values ignored; each archive's
 * row count is the number of <row>s, every row one <v> per data source;
 * a data source named twice keeps its first. Unknown elements are
 * skipped. Anything else missing or malformed refuses the whole document.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../rpc/xml_lib.h"
#include "metrics.h"

#define MAX_DEPTH 8
#define MAX_RRA 64
#define MAX_DS 4096
#define MAX_ROWS 1000000u
#define MAX_PDP 10000000u

typedef struct px_ds {
    xcp__rrd_ds d;
    unsigned seen; /* bit per field */
} px_ds;

typedef struct px_cdp {
    double value;
    unsigned unknown;
    unsigned seen;
} px_cdp;

typedef struct px_rra {
    xcp__cf cf;
    unsigned pdp_cnt;
    double xff;
    unsigned seen;
    px_cdp *cdp;
    size_t n_cdp, cap_cdp;
    float *v;            /* row-major, oldest row first */
    size_t n_v, cap_v;
    size_t rows, in_row; /* rows closed; <v>s in the open one */
} px_rra;

typedef struct px {
    const char *path[MAX_DEPTH + 1]; /* element names, static strings */
    int depth;
    char *text;        /* the open leaf element's text */
    size_t text_len;
    bool have_step, have_last;
    unsigned step;
    double last;
    px_ds *ds;
    size_t n_ds, cap_ds;
    px_rra *rra;
    size_t n_rra;
    char *why;
    size_t why_len;
    bool bad;
} px;

static void bad(px *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void bad(px *p, const char *fmt, ...)
{
    va_list ap;

    if (p->bad)
        return;
    p->bad = true;
    va_start(ap, fmt);
    vsnprintf(p->why, p->why_len, fmt, ap);
    va_end(ap);
}

/* The element names the reader cares about, as interned pointers, so that
 * the path is compared by pointer; "" for any other. */
static const char *const names[] = {
    "rrd", "version", "step", "lastupdate", "ds", "name", "type",
    "minimal_heartbeat", "min", "max", "last_ds", "value", "unknown_sec",
    "last_updated", "rra", "cf", "pdp_per_row", "params", "xff", "cdp_prep",
    "primary_value", "secondary_value", "unknown_datapoints", "database",
    "row", "v",
};

static const char *intern(const char *s)
{
    size_t i;

    for (i = 0; i < XCP__ARRAY_LEN(names); i++)
        if (!strcmp(s, names[i]))
            return names[i];
    return "";
}

static bool at(const px *p, int depth, ...)
{
    va_list ap;
    int i;
    bool ok = p->depth == depth;

    va_start(ap, depth);
    for (i = 0; ok && i < depth; i++)
        ok = !strcmp(p->path[i + 1], va_arg(ap, const char *));
    va_end(ap);
    return ok;
}

static bool num(const char *s, double *out)
{
    char *end;

    if (!*s)
        return false;
    errno = 0;
    *out = strtod(s, &end);
    return *end == '\0';
}

static bool uint_of(const char *s, unsigned long max, unsigned *out)
{
    char *end;
    unsigned long v;

    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (*end || errno || v > max)
        return false;
    *out = (unsigned)v;
    return true;
}

static void *grow(void *v, size_t *cap, size_t need, size_t size)
{
    size_t c = *cap ? *cap : 8;
    void *n;

    if (need <= *cap)
        return v;
    while (c < need)
        c *= 2;
    if (!(n = xcp__realloc(v, c * size)))
        return NULL;
    *cap = c;
    return n;
}

enum { DS_NAME = 1, DS_TYPE = 2, DS_HB = 4, DS_MIN = 8, DS_MAX = 16,
       DS_VALUE = 32, DS_UNKNOWN = 64, DS_ALL = 127 };
enum { RRA_CF = 1, RRA_PDP = 2, RRA_XFF = 4, RRA_ALL = 7 };
enum { CDP_VALUE = 1, CDP_UNKNOWN = 2, CDP_ALL = 3 };

/* The text of a leaf element just closed. */
static void leaf(px *p, const char *t)
{
    double d;

    if (at(p, 2, "rrd", "step")) {
        if (!uint_of(t, 86400, &p->step) || p->step == 0)
            bad(p, "step '%.40s' is not a whole number of seconds", t);
        p->have_step = true;
    } else if (at(p, 2, "rrd", "lastupdate")) {
        if (!num(t, &p->last) || !(p->last >= 0 && p->last < 1e11))
            bad(p, "lastupdate '%.40s' is not a time", t);
        p->have_last = true;
    } else if (p->depth == 3 && at(p, 3, "rrd", "ds", p->path[3])) {
        px_ds *x = &p->ds[p->n_ds - 1];
        const char *f = p->path[3];
        unsigned bit = 0;

        if (!strcmp(f, "name")) {
            if (!*t || strlen(t) > 255)
                bad(p, "a data source name is empty or too long");
            else if (!x->d.name && !(x->d.name = xcp__strdup(t)))
                bad(p, "out of memory");
            bit = DS_NAME;
        } else if (!strcmp(f, "type")) {
            if (!strcmp(t, "GAUGE"))
                x->d.type = XCP__DS_GAUGE;
            else if (!strcmp(t, "ABSOLUTE"))
                x->d.type = XCP__DS_ABSOLUTE;
            else if (!strcmp(t, "DERIVE"))
                x->d.type = XCP__DS_DERIVE;
            else
                bad(p, "data source type '%.40s' is not GAUGE, ABSOLUTE or "
                       "DERIVE", t);
            bit = DS_TYPE;
        } else if (!strcmp(f, "last_ds") || !strcmp(f, "")) {
            return; /* ignored, as XAPI */
        } else {
            if (!num(t, &d)) {
                bad(p, "data source field %s: '%.40s' is not a number", f, t);
                return;
            }
            if (!strcmp(f, "minimal_heartbeat"))
                x->d.mrhb = d, bit = DS_HB;
            else if (!strcmp(f, "min"))
                x->d.min = d > 0 ? d : 0, bit = DS_MIN; /* CA-408126 */
            else if (!strcmp(f, "max"))
                x->d.max = d, bit = DS_MAX;
            else if (!strcmp(f, "value"))
                x->d.value = d, bit = DS_VALUE;
            else if (!strcmp(f, "unknown_sec"))
                x->d.unknown_sec = d, bit = DS_UNKNOWN;
            else if (!strcmp(f, "last_updated"))
                x->d.last_updated = d;
        }
        x->seen |= bit;
    } else if (p->depth == 3 && at(p, 3, "rrd", "rra", p->path[3])) {
        px_rra *a = &p->rra[p->n_rra - 1];
        const char *f = p->path[3];

        if (!strcmp(f, "cf")) {
            static const char *const cfs[] = {"AVERAGE", "MIN", "MAX",
                                              "LAST"};
            unsigned i;

            for (i = 0; i < 4 && strcmp(cfs[i], t); i++)
                ;
            if (i == 4)
                bad(p, "archive function '%.40s' is not AVERAGE, MIN, MAX "
                       "or LAST", t);
            a->cf = (xcp__cf)i;
            a->seen |= RRA_CF;
        } else if (!strcmp(f, "pdp_per_row")) {
            if (!uint_of(t, MAX_PDP, &a->pdp_cnt) || a->pdp_cnt == 0)
                bad(p, "pdp_per_row '%.40s' is not a positive count", t);
            a->seen |= RRA_PDP;
        }
    } else if (at(p, 4, "rrd", "rra", "params", "xff")) {
        px_rra *a = &p->rra[p->n_rra - 1];

        if (!num(t, &a->xff) || !(a->xff >= 0 && a->xff <= 1))
            bad(p, "xff '%.40s' is not between 0 and 1", t);
        a->seen |= RRA_XFF;
    } else if (p->depth == 5 &&
               at(p, 5, "rrd", "rra", "cdp_prep", "ds", p->path[5])) {
        px_rra *a = &p->rra[p->n_rra - 1];
        px_cdp *c = &a->cdp[a->n_cdp - 1];

        if (!strcmp(p->path[5], "value")) {
            if (!num(t, &c->value))
                bad(p, "a cdp_prep value '%.40s' is not a number", t);
            c->seen |= CDP_VALUE;
        } else if (!strcmp(p->path[5], "unknown_datapoints")) {
            if (!uint_of(t, MAX_PDP, &c->unknown))
                bad(p, "unknown_datapoints '%.40s' is not a count", t);
            c->seen |= CDP_UNKNOWN;
        }
    } else if (at(p, 5, "rrd", "rra", "database", "row", "v")) {
        px_rra *a = &p->rra[p->n_rra - 1];
        float *v;

        if (!num(t, &d)) {
            bad(p, "an archived value '%.40s' is not a number", t);
            return;
        }
        if (a->in_row >= p->n_ds) {
            bad(p, "a row has more values than the %zu data sources",
                p->n_ds);
            return;
        }
        if (!(v = grow(a->v, &a->cap_v, a->n_v + 1, sizeof(float)))) {
            bad(p, "out of memory");
            return;
        }
        a->v = v;
        a->v[a->n_v++] = (float)d;
        a->in_row++;
    }
}

static void open_el(px *p, const char *name)
{
    const char *n = intern(name);

    if (p->depth >= MAX_DEPTH) {
        bad(p, "elements nested too deep");
        return;
    }
    p->path[++p->depth] = n;
    p->text_len = 0;
    if (p->depth == 1 && strcmp(n, "rrd"))
        bad(p, "the document is not an <rrd>");
    else if (at(p, 2, "rrd", "ds")) {
        px_ds *d;

        if (p->n_rra)
            bad(p, "a data source after the archives");
        else if (p->n_ds >= MAX_DS)
            bad(p, "more than %d data sources", MAX_DS);
        else if (!(d = grow(p->ds, &p->cap_ds, p->n_ds + 1, sizeof(*d))))
            bad(p, "out of memory");
        else {
            p->ds = d;
            memset(&p->ds[p->n_ds++], 0, sizeof(*d));
        }
    } else if (at(p, 2, "rrd", "rra")) {
        if (p->n_rra >= MAX_RRA)
            bad(p, "more than %d archives", MAX_RRA);
        else
            memset(&p->rra[p->n_rra++], 0, sizeof(px_rra));
    } else if (at(p, 4, "rrd", "rra", "cdp_prep", "ds")) {
        px_rra *a = &p->rra[p->n_rra - 1];
        px_cdp *c = grow(a->cdp, &a->cap_cdp, a->n_cdp + 1, sizeof(*c));

        if (!c)
            bad(p, "out of memory");
        else {
            a->cdp = c;
            memset(&a->cdp[a->n_cdp++], 0, sizeof(*c));
        }
    } else if (at(p, 4, "rrd", "rra", "database", "row")) {
        p->rra[p->n_rra - 1].in_row = 0;
    }
}

static void close_el(px *p)
{
    if (p->depth <= 0) {
        bad(p, "unbalanced elements");
        return;
    }
    if (p->text)
        p->text[p->text_len] = '\0';
    leaf(p, p->text ? p->text : "");
    p->text_len = 0;
    if (at(p, 2, "rrd", "ds")) {
        px_ds *x = &p->ds[p->n_ds - 1];

        if ((x->seen & DS_ALL) != DS_ALL)
            bad(p, "data source %zu lacks name, type, minimal_heartbeat, "
                   "min, max, value or unknown_sec", p->n_ds);
    } else if (at(p, 2, "rrd", "rra")) {
        px_rra *a = &p->rra[p->n_rra - 1];

        if ((a->seen & RRA_ALL) != RRA_ALL)
            bad(p, "archive %zu lacks cf, pdp_per_row or xff", p->n_rra);
        else if (a->n_cdp != p->n_ds)
            bad(p, "archive %zu has %zu cdp_prep entries for %zu data "
                   "sources", p->n_rra, a->n_cdp, p->n_ds);
        else if (a->rows == 0 || a->rows > MAX_ROWS)
            bad(p, "archive %zu has %zu rows", p->n_rra, a->rows);
    } else if (at(p, 4, "rrd", "rra", "cdp_prep", "ds")) {
        px_rra *a = &p->rra[p->n_rra - 1];
        px_cdp *c = &a->cdp[a->n_cdp - 1];

        if ((c->seen & CDP_ALL) != CDP_ALL)
            bad(p, "a cdp_prep entry lacks value or unknown_datapoints");
    } else if (at(p, 4, "rrd", "rra", "database", "row")) {
        px_rra *a = &p->rra[p->n_rra - 1];

        if (a->in_row != p->n_ds)
            bad(p, "a row has %zu values for %zu data sources", a->in_row,
                p->n_ds);
        a->rows++;
    }
    p->depth--;
}

static void add_text(px *p, const char *t)
{
    size_t n = strlen(t);

    if (p->text_len + n > 4096) {
        bad(p, "a text of over 4096 bytes");
        return;
    }
    if (!p->text && !(p->text = xcp__malloc(4097))) {
        bad(p, "out of memory");
        return;
    }
    memcpy(p->text + p->text_len, t, n);
    p->text_len += n;
}

static void reader_error(void *arg, xmlErrorPtr e)
{
    px *p = arg;

    bad(p, "not well-formed XML at line %d: %s", e ? e->line : 0,
        e && e->message ? e->message : "?");
}

/* The RRD the parse found. */
static xcp__rrd *build(px *p)
{
    xcp__rra_def defs[MAX_RRA];
    xcp__rrd *r;
    size_t i, k, row;

    for (k = 0; k < p->n_rra; k++) {
        defs[k].cf = p->rra[k].cf;
        defs[k].rows = (unsigned)p->rra[k].rows;
        defs[k].pdp_cnt = p->rra[k].pdp_cnt;
        defs[k].xff = p->rra[k].xff;
    }
    if (!(r = xcp__rrd_new(p->step, defs, p->n_rra, p->last)))
        return NULL;
    for (i = 0; i < p->n_ds; i++) {
        const xcp__rrd_ds *s = &p->ds[i].d;
        xcp__ds_def def = {s->name, s->type, s->min, s->max};
        int at_ds;
        xcp__rrd_ds *d;

        if (xcp__rrd_find(r, s->name) >= 0)
            continue; /* named twice: the first is kept, as XAPI */
        if ((at_ds = xcp__rrd_add_ds(r, &def, p->last)) < 0) {
            xcp__rrd_free(r);
            return NULL;
        }
        d = &r->ds[at_ds];
        d->mrhb = s->mrhb;
        d->value = s->value;
        d->unknown_sec = s->unknown_sec;
        d->last_updated = p->ds[i].d.last_updated > 0 ? s->last_updated
                                                      : p->last;
        d->last_known = false;
        for (k = 0; k < p->n_rra; k++) {
            xcp__rra *a = &r->rra[k];
            const px_rra *x = &p->rra[k];

            a->cdp_value[at_ds] = x->cdp[i].value;
            a->cdp_unknown[at_ds] = x->cdp[i].unknown <= a->pdp_cnt
                                        ? x->cdp[i].unknown
                                        : a->pdp_cnt;
            /* head is rows - 1 (xcp__rrd_new): the row of age g is at
             * rows - 1 - g, so the XML's rows, oldest first, go in order */
            for (row = 0; row < x->rows; row++) {
                float v = x->v[row * p->n_ds + i];

                if (!(v >= d->min && v <= d->max))
                    v = NAN; /* Fring.make: outside the bounds */
                a->data[(size_t)at_ds * a->rows + row] = v;
            }
        }
    }
    return r;
}

xcp__rrd *xcp__rrd_from_xapi_xml(const char *doc, size_t len, char *why,
                                 size_t why_len)
{
    const xcp__xml_lib *x;
    xmlTextReaderPtr rd;
    px p;
    xcp__rrd *r = NULL;
    size_t k;
    int rc, type;

    memset(&p, 0, sizeof(p));
    p.why = why;
    p.why_len = why_len;
    p.path[0] = "";
    if (xcp__xml(&x) < 0) {
        const xcp_error *e = xcp_error_last();

        snprintf(why, why_len, "%s", e && e->nparams ? e->params[0]
                                                    : "cannot load libxml2");
        return NULL;
    }
    if (len > INT32_MAX) {
        snprintf(why, why_len, "the document is too big");
        return NULL;
    }
    if (!(p.rra = xcp__calloc(MAX_RRA, sizeof(*p.rra))) ||
        !(rd = x->ReaderForMemory(doc, (int)len, NULL, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOBLANKS))) {
        free(p.rra);
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    x->TextReaderSetStructuredErrorHandler(rd, reader_error, &p);
    while (!p.bad && (rc = x->TextReaderRead(rd)) == 1) {
        type = x->TextReaderNodeType(rd);
        if (type == XML_READER_TYPE_ELEMENT) {
            bool empty = x->TextReaderIsEmptyElement(rd) == 1;

            open_el(&p, (const char *)x->TextReaderConstName(rd));
            if (empty && !p.bad)
                close_el(&p);
        } else if (type == XML_READER_TYPE_END_ELEMENT) {
            close_el(&p);
        } else if (type == XML_READER_TYPE_TEXT ||
                   type == XML_READER_TYPE_CDATA) {
            const xmlChar *v = x->TextReaderConstValue(rd);

            add_text(&p, v ? (const char *)v : "");
        } else if (type == XML_READER_TYPE_DOCUMENT_TYPE ||
                   type == XML_READER_TYPE_ENTITY_REFERENCE) {
            bad(&p, "a DTD or entity in an RRD");
        }
    }
    if (!p.bad && rc != 0)
        bad(&p, "not well-formed XML");
    if (!p.bad && (!p.have_step || !p.have_last))
        bad(&p, "the document lacks step or lastupdate");
    if (!p.bad && p.n_rra == 0)
        bad(&p, "the document has no archive");
    if (!p.bad && !(r = build(&p)))
        snprintf(why, why_len, "out of memory");
    x->FreeTextReader(rd);
    for (k = 0; k < p.n_ds; k++)
        free(p.ds[k].d.name);
    free(p.ds);
    for (k = 0; k < p.n_rra; k++) {
        free(p.rra[k].cdp);
        free(p.rra[k].v);
    }
    free(p.rra);
    free(p.text);
    return r;
}
