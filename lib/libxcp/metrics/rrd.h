/*
 * metrics/rrd.h - round-robin databases as XAPI's xcp-rrdd keeps them
 * (ocaml/libs/xapi-rrd): data sources (GAUGE, ABSOLUTE, DERIVE) turned
 * into primary data points every step, consolidated (AVERAGE, MIN, MAX)
 * into archives of fixed rows, the values stored as 32-bit floats as
 * XAPI's rings store them. Also the outputs XAPI derives from them: the
 * RRD XML (/host_rrd, /vm_rrd), rrd_updates' xport in XML and JSON, and
 * a compact binary image for the state directory.
 *
 * Pure data: no locking (the caller's), no I/O but the buffers given.
 * Times are seconds since the epoch, as doubles.
 */
#ifndef XCP_METRICS_RRD_H
#define XCP_METRICS_RRD_H

#include "../core/core.h"

typedef enum xcp__ds_type {
    XCP__DS_GAUGE = 0,    /* the value as it is                      */
    XCP__DS_ABSOLUTE = 1, /* a count since the last update: per second */
    XCP__DS_DERIVE = 2,   /* a counter: its rate of change           */
} xcp__ds_type;

typedef enum xcp__cf {
    XCP__CF_AVERAGE = 0,
    XCP__CF_MIN = 1,
    XCP__CF_MAX = 2,
    XCP__CF_LAST = 3,
} xcp__cf;

typedef struct xcp__rrd_ds {
    char *name;
    xcp__ds_type type;
    double min, max, mrhb;  /* bounds; maximal heartbeat (s)             */
    bool last_known;        /* last holds the last raw value             */
    double last;
    double value;           /* the PDP being accumulated                 */
    double unknown_sec;
    double last_updated;
} xcp__rrd_ds;

typedef struct xcp__rra {
    xcp__cf cf;
    unsigned rows;          /* CDPs kept                                 */
    unsigned pdp_cnt;       /* PDPs per CDP                              */
    double xff;
    unsigned head;          /* row of the newest CDP                     */
    float *data;            /* [ds][rows], NaN for unknown               */
    double *cdp_value;      /* [ds] CDP being prepared                   */
    unsigned *cdp_unknown;  /* [ds] unknown PDPs in it                   */
} xcp__rra;

typedef struct xcp__rrd {
    double last_updated;
    unsigned step;          /* seconds per PDP (5)                       */
    size_t n_ds, n_rra;
    xcp__rrd_ds *ds;
    xcp__rra *rra;
} xcp__rrd;

/* One archive to make: cf, rows, PDPs per row, xff. */
typedef struct xcp__rra_def {
    xcp__cf cf;
    unsigned rows, pdp_cnt;
    double xff;
} xcp__rra_def;

/* One data source to make. */
typedef struct xcp__ds_def {
    const char *name;
    xcp__ds_type type;
    double min, max;
} xcp__ds_def;

/* XAPI's archives: 5 s x 120 (AVERAGE), 1 min x 120, 1 h x 168 and
 * 1 day x 366 (AVERAGE, MIN, MAX; xcp-rrdd with use_min_max). */
extern const xcp__rra_def xcp__rrd_xapi_rras[];
extern const size_t xcp__rrd_xapi_n_rras;

/* A new RRD of step seconds, no data source yet, last updated at t.
 * NULL when out of memory. */
xcp__rrd *xcp__rrd_new(unsigned step, const xcp__rra_def *rras, size_t n,
                       double t);
void xcp__rrd_free(xcp__rrd *r);

/* The index of a data source, or -1. */
int xcp__rrd_find(const xcp__rrd *r, const char *name);
/* Adds a data source (its rows unknown; nothing if the name is there).
 * Returns its index, or -1 when out of memory. */
int xcp__rrd_add_ds(xcp__rrd *r, const xcp__ds_def *d, double t);
/* Removes a data source and its archives; false if there was none. */
bool xcp__rrd_remove_ds(xcp__rrd *r, const char *name);

/*
 * One update at time t: values[i] is the raw reading of data source i
 * (NaN: unknown), for every data source in order (n == r->n_ds). XAPI's
 * ds_update: rates from counters, PDPs at each step boundary crossed,
 * consolidated into the archives.
 */
void xcp__rrd_update(xcp__rrd *r, double t, const double *values, size_t n);

/* The newest AVERAGE CDP of the finest archive for data source i (what
 * XAPI's query_named_ds returns), NaN if unknown. */
double xcp__rrd_latest(const xcp__rrd *r, size_t i);

/* Bytes the RRD holds in memory (its arrays). */
size_t xcp__rrd_bytes(const xcp__rrd *r);

/* XAPI's number format (Rrd_utils.f_to_s: %0.15g, "NaN", "Infinity",
 * "0.0"); returns its length. buf: 32 bytes. */
int xcp__rrd_fmt(char *buf, double v);

/* XAPI's RRD XML (Rrd.xml_to_output, internal=false), or its JSON. */
void xcp__rrd_xml(const xcp__rrd *r, xcp__buf *out);
void xcp__rrd_json(const xcp__rrd *r, xcp__buf *out);

/* Compact binary image of the whole RRD (for the state directory), and
 * back: NULL if the bytes are not a well-formed image. */
void xcp__rrd_save(const xcp__rrd *r, xcp__buf *out);
xcp__rrd *xcp__rrd_load(const void *p, size_t n);

/* ---- rrd_updates (Rrd_updates.export) ---- */

/* One RRD in an export, with its legend prefix ("host:<uuid>:"). */
typedef struct xcp__rrd_src {
    const char *prefix;
    const xcp__rrd *rrd;
} xcp__rrd_src;

/*
 * The rows since start (negative: relative to the newest update) of the
 * archives of the coarsest resolution at least interval seconds that
 * still hold start, with consolidation function cf (-1: every archive
 * of that resolution), as XAPI's Rrd_updates.create_multi picks them;
 * written as xport XML, or JSON when json. -1 when no archive fits
 * (XAPI: No_RRA_Available), 0 otherwise.
 */
int xcp__rrd_export(const xcp__rrd_src *srcs, size_t n, int64_t start,
                    int64_t interval, int cf, bool json, xcp__buf *out);

const char *xcp__cf_name(xcp__cf cf);
/* -1 if s names none */
int xcp__cf_parse(const char *s);
const char *xcp__ds_type_name(xcp__ds_type t);

#endif
