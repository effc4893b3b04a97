/*
 * libFuzzer target: the RRD XML reader (api/metrics_xml.c
 * xcp__rrd_from_xapi_xml), which reads what another host PUTs to /rrd.
 * Arbitrary bytes must give an RRD or a reason, never crash, hang or
 * allocate without bound; an RRD that loads must write XML that loads
 * again to the same XML (the reader is the writer's inverse from the
 * second round on), and survive an update and an rrd_updates export.
 */
#include "api/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256] = "";
    xcp__rrd *r = xcp__rrd_from_xapi_xml((const char *)data, size, why,
                                         sizeof(why)), *r2;
    xcp__buf a = {0}, b = {0};
    xcp__rrd_src src;
    double *v;
    size_t i;

    if (!r) {
        if (!why[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    xcp__rrd_xml(r, &a);
    if (!a.oom) {
        if (!(r2 = xcp__rrd_from_xapi_xml(a.data, a.len, why, sizeof(why))))
            abort(); /* our own XML always loads */
        xcp__rrd_xml(r2, &b);
        if (!b.oom && (b.len != a.len || memcmp(a.data, b.data, a.len)))
            abort();
        xcp__rrd_free(r2);
    }
    xcp__buf_free(&a);
    xcp__buf_free(&b);
    src.prefix = "vm:x:";
    src.rrd = r;
    xcp__rrd_export(&src, 1, -600, 5, -1, true, &a);
    xcp__buf_free(&a);
    if (r->n_ds && (v = malloc(r->n_ds * sizeof(*v)))) {
        for (i = 0; i < r->n_ds; i++)
            v[i] = (double)i;
        xcp__rrd_update(r, r->last_updated + 5, v, r->n_ds);
        free(v);
    }
    xcp__rrd_free(r);
    return 0;
}
