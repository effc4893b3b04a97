/*
 * core/range.c - sets of byte ranges: gathered in any order, then sorted
 * and merged into maximal disjoint ranges (the changed regions of a delta
 * export, from whatever source told them).
 */
#include "core.h"

#include <errno.h>
#include <stdlib.h>

int xcp__ranges_add(xcp__ranges *r, uint64_t off, uint64_t len)
{
    xcp__range *v;
    size_t cap;

    if (!len)
        return 0;
    /* Adjacent to the last one: grow it (extents come mostly in order). */
    if (r->n && r->v[r->n - 1].off + r->v[r->n - 1].len == off) {
        r->v[r->n - 1].len += len;
        return 0;
    }
    if (r->n == r->cap) {
        cap = r->cap ? r->cap * 2 : 64;
        if (!(v = realloc(r->v, cap * sizeof(*v))))
            return -ENOMEM;
        r->v = v;
        r->cap = cap;
    }
    r->v[r->n].off = off;
    r->v[r->n].len = len;
    r->n++;
    return 0;
}

static int by_offset(const void *a, const void *b)
{
    const xcp__range *x = a, *y = b;

    return x->off < y->off ? -1 : x->off > y->off;
}

void xcp__ranges_merge(xcp__ranges *r)
{
    size_t i, out = 0;
    uint64_t end;

    if (r->n < 2)
        return;
    qsort(r->v, r->n, sizeof(*r->v), by_offset);
    for (i = 1; i < r->n; i++) {
        end = r->v[out].off + r->v[out].len;
        if (r->v[i].off <= end) {
            if (r->v[i].off + r->v[i].len > end)
                r->v[out].len = r->v[i].off + r->v[i].len - r->v[out].off;
        } else {
            r->v[++out] = r->v[i];
        }
    }
    r->n = out + 1;
}

uint64_t xcp__ranges_bytes(const xcp__ranges *r)
{
    uint64_t total = 0;
    size_t i;

    for (i = 0; i < r->n; i++)
        total += r->v[i].len;
    return total;
}

void xcp__ranges_dispose(xcp__ranges *r)
{
    free(r->v);
    r->v = NULL;
    r->n = r->cap = 0;
}
