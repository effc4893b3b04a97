/*
 * libFuzzer target: the RRD image reader (metrics/rrd.c xcp__rrd_load),
 * which reads the files of <state dir>/rrd/ back at start. Arbitrary bytes
 * must load or be refused, never crash or allocate without bound; an
 * image that loads must survive an update, the XML and JSON writers and
 * an rrd_updates export, and save to the same bytes it came from.
 */
#include "metrics/rrd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xcp__rrd *r = xcp__rrd_load(data, size);
    xcp__buf b = {0};
    xcp__rrd_src src;
    double *v;
    size_t i;

    if (!r)
        return 0;
    xcp__rrd_save(r, &b);
    if (!b.oom && (b.len != size || memcmp(b.data, data, size) != 0))
        abort(); /* a loaded image saves to the same bytes */
    xcp__buf_free(&b);
    xcp__rrd_xml(r, &b);
    xcp__buf_free(&b);
    xcp__rrd_json(r, &b);
    xcp__buf_free(&b);
    src.prefix = "host:x:";
    src.rrd = r;
    xcp__rrd_export(&src, 1, -600, 5, -1, false, &b);
    xcp__buf_free(&b);
    if (r->n_ds && (v = malloc(r->n_ds * sizeof(*v)))) {
        for (i = 0; i < r->n_ds; i++)
            v[i] = (double)i;
        if (isfinite(r->last_updated) && fabs(r->last_updated) < 1e12)
            xcp__rrd_update(r, r->last_updated + 5, v, r->n_ds);
        free(v);
    }
    xcp__rrd_free(r);
    return 0;
}
