/*
 * qcow2 images as streams (qcow2_stream.h). The layout is fixed once the
 * data clusters are known, so any metadata cluster is computed on demand
 * (one at a time, kept for the next read) and a data cluster's place is
 * its rank among the held ones (a cursor makes reading front to back
 * linear). Field offsets are the qcow2 library's (qcow2_int.h).
 */
#include "qcow2_stream.h"
#include "qcow2_int.h"
#include "image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CBITS 16u
#define CSIZE ((uint64_t)1 << CBITS)
#define L2_ENTRIES (CSIZE / 8)
#define RB_ENTRIES (CSIZE / 2)          /* 16-bit refcounts */

struct xcp__qcow2_out {
    uint64_t size;
    uint64_t nclusters;                 /* of the disk */
    uint8_t *map;                       /* bit per disk cluster: held */
    bool planned;
    uint64_t ndata, nl2, l1_entries;
    uint64_t rt, rb, l1c;               /* clusters of each area */
    uint64_t l1_at, l2_at, data_at;     /* first cluster of each area */
    uint64_t total;                     /* clusters of the image */
    uint32_t *l2_list;                  /* L2 ranges that hold data */
    uint64_t *l2_base;                  /* rank of each one's first */
    uint8_t *meta;                      /* one metadata cluster */
    uint64_t meta_k;                    /* which (UINT64_MAX: none) */
    uint64_t c_cluster, c_rank;         /* data cursor */
    char backing[1024];                 /* "": none */
};

static bool held(const xcp__qcow2_out *o, uint64_t c)
{
    return o->map[c / 8] & (0x80u >> (c % 8));
}

int xcp__qcow2_out_new(xcp__qcow2_out **out, uint64_t virtual_size,
                       char *err, size_t errlen)
{
    xcp__qcow2_out *o;

    *out = NULL;
    if (virtual_size > XCP__IMAGE_QCOW2_MAX_SIZE)
        return fail(err, errlen, -EFBIG,
                    "qcow2 stream: %llu bytes is past the qcow2 limit",
                    (unsigned long long)virtual_size);
    if (!(o = calloc(1, sizeof(*o))))
        return fail(err, errlen, -ENOMEM, "qcow2 stream: out of memory");
    o->size = virtual_size;
    o->nclusters = div_up(virtual_size, CSIZE);
    o->map = calloc(div_up(o->nclusters, 8) + 1, 1);
    o->meta = malloc(CSIZE);
    o->meta_k = UINT64_MAX;
    if (!o->map || !o->meta) {
        xcp__qcow2_out_free(o);
        return fail(err, errlen, -ENOMEM, "qcow2 stream: out of memory");
    }
    *out = o;
    return 0;
}

void xcp__qcow2_out_mark(xcp__qcow2_out *o, uint64_t offset, uint64_t len)
{
    uint64_t c, end;

    if (!len || offset >= o->size)
        return;
    end = div_up(min64(offset + len, o->size), CSIZE);
    for (c = offset / CSIZE; c < end; c++)
        o->map[c / 8] |= (uint8_t)(0x80u >> (c % 8));
    o->planned = false;
}

int xcp__qcow2_out_backing(xcp__qcow2_out *o, const char *name, char *err,
                           size_t errlen)
{
    if (strlen(name) >= sizeof(o->backing))
        return fail(err, errlen, -ENAMETOOLONG,
                    "qcow2 stream: backing file name %.64s... is too long",
                    name);
    snprintf(o->backing, sizeof(o->backing), "%s", name);
    return 0;
}

/* Count what is held and place the areas; 0 or -ENOMEM. */
static int plan(xcp__qcow2_out *o)
{
    uint64_t c, r, meta, prev = UINT64_MAX;

    if (o->planned)
        return 0;
    free(o->l2_list);
    free(o->l2_base);
    o->ndata = o->nl2 = 0;
    o->l1_entries = div_up(o->nclusters, L2_ENTRIES);
    o->l2_list = malloc((o->l1_entries + 1) * sizeof(uint32_t));
    o->l2_base = malloc((o->l1_entries + 1) * sizeof(uint64_t));
    if (!o->l2_list || !o->l2_base)
        return -ENOMEM;
    for (c = 0; c < o->nclusters; c++) {
        if (!held(o, c))
            continue;
        if (c / L2_ENTRIES != prev) {
            prev = c / L2_ENTRIES;
            o->l2_list[o->nl2] = (uint32_t)prev;
            o->l2_base[o->nl2++] = o->ndata;
        }
        o->ndata++;
    }
    o->l1c = div_up(o->l1_entries * 8, CSIZE);
    if (!o->l1c)
        o->l1c = 1;
    meta = 1 + o->l1c + o->nl2 + o->ndata;
    /* The refcount areas count themselves too. */
    for (o->rb = 1, o->rt = 1;;) {
        r = div_up(meta + o->rb + o->rt, RB_ENTRIES);
        if (r == o->rb && div_up(r * 8, CSIZE) == o->rt)
            break;
        o->rb = r;
        o->rt = div_up(r * 8, CSIZE);
    }
    o->l1_at = 1 + o->rt + o->rb;
    o->l2_at = o->l1_at + o->l1c;
    o->data_at = o->l2_at + o->nl2;
    o->total = o->data_at + o->ndata;
    o->c_cluster = o->c_rank = 0;
    o->meta_k = UINT64_MAX;
    o->planned = true;
    return 0;
}

uint64_t xcp__qcow2_out_length(xcp__qcow2_out *o)
{
    return plan(o) < 0 ? 0 : o->total * CSIZE;
}

static void header(xcp__qcow2_out *o, uint8_t *h)
{
    put32(h, QCOW2_MAGIC);
    put32(h + H_VERSION, 3);
    put32(h + H_CLUSTER_BITS, CBITS);
    put64(h + H_SIZE, o->size);
    put32(h + H_L1_SIZE, (uint32_t)o->l1_entries);
    put64(h + H_L1_OFFSET, o->l1_at * CSIZE);
    put64(h + H_RT_OFFSET, CSIZE);
    put32(h + H_RT_CLUSTERS, (uint32_t)o->rt);
    put32(h + H_REFCOUNT_ORDER, 4);
    put32(h + H_HEADER_LENGTH, V3_MIN_HEADER_LEN);
    /* then the header extensions, ended by 8 zero bytes, and the backing
       file's name: its format (8 bytes of type and length, "qcow2"
       padded to 8), the end, the name */
    if (o->backing[0]) {
        put32(h + V3_MIN_HEADER_LEN, EXT_BACKING_FORMAT);
        put32(h + V3_MIN_HEADER_LEN + 4, 5);
        memcpy(h + V3_MIN_HEADER_LEN + 8, "qcow2", 5);
        put64(h + H_BACKING_OFFSET, V3_MIN_HEADER_LEN + 24);
        put32(h + H_BACKING_SIZE, (uint32_t)strlen(o->backing));
        memcpy(h + V3_MIN_HEADER_LEN + 24, o->backing, strlen(o->backing));
    }
}

/* The L2 table of the i-th held range. */
static void l2_table(xcp__qcow2_out *o, uint64_t i, uint8_t *p)
{
    uint64_t first = (uint64_t)o->l2_list[i] * L2_ENTRIES, e, rank;

    rank = o->l2_base[i];
    for (e = 0; e < L2_ENTRIES && first + e < o->nclusters; e++)
        if (held(o, first + e))
            put64(p + e * 8, ((o->data_at + rank++) * CSIZE) | OFLAG_COPIED);
}

/* Metadata cluster k into o->meta. */
static void meta_cluster(xcp__qcow2_out *o, uint64_t k)
{
    uint8_t *p = o->meta;
    uint64_t e, i, j;

    if (o->meta_k == k)
        return;
    memset(p, 0, CSIZE);
    if (k == 0) {
        header(o, p);
    } else if (k < 1 + o->rt) {                 /* refcount table */
        for (e = 0; e < CSIZE / 8; e++) {
            i = (k - 1) * (CSIZE / 8) + e;
            if (i < o->rb)
                put64(p + e * 8, (1 + o->rt + i) * CSIZE);
        }
    } else if (k < o->l1_at) {                  /* refcount blocks */
        for (e = 0; e < RB_ENTRIES; e++) {
            j = (k - 1 - o->rt) * RB_ENTRIES + e;
            if (j < o->total) {
                p[e * 2] = 0;
                p[e * 2 + 1] = 1;
            }
        }
    } else if (k < o->l2_at) {                  /* L1 */
        for (i = 0; i < o->nl2; i++) {
            j = o->l2_list[i];
            if (j / (CSIZE / 8) == k - o->l1_at)
                put64(p + (j % (CSIZE / 8)) * 8,
                      ((o->l2_at + i) * CSIZE) | OFLAG_COPIED);
        }
    } else {                                    /* an L2 table */
        l2_table(o, k - o->l2_at, p);
    }
    o->meta_k = k;
}

/* The disk cluster of the data cluster of rank d. */
static uint64_t select_rank(xcp__qcow2_out *o, uint64_t d)
{
    if (d < o->c_rank || (o->c_cluster < o->nclusters && d == o->c_rank &&
                          !held(o, o->c_cluster)))
        o->c_cluster = o->c_rank = 0;
    for (;;) {
        if (held(o, o->c_cluster)) {
            if (o->c_rank == d)
                return o->c_cluster;
            o->c_rank++;
        }
        o->c_cluster++;
    }
}

int xcp__qcow2_out_read(xcp__qcow2_out *o, uint64_t pos, void *buf,
                        size_t n, size_t *got, xcp__vhd_stream_read_cb read,
                        void *ctx, char *err, size_t errlen)
{
    uint8_t *p = buf;
    uint64_t k, rel, take, g;
    int rc;

    *got = 0;
    if (plan(o) < 0)
        return fail(err, errlen, -ENOMEM, "qcow2 stream: out of memory");
    if (pos >= o->total * CSIZE)
        return 0;
    n = (size_t)min64(n, o->total * CSIZE - pos);
    while (*got < n) {
        k = (pos + *got) / CSIZE;
        rel = (pos + *got) % CSIZE;
        take = min64(n - *got, CSIZE - rel);
        if (k < o->data_at) {
            meta_cluster(o, k);
            memcpy(p + *got, o->meta + rel, take);
        } else {
            g = select_rank(o, k - o->data_at) * CSIZE + rel;
            memset(p + *got, 0, take);
            if (g < o->size &&
                (rc = read(ctx, g, p + *got,
                           (size_t)min64(take, o->size - g))) != 0)
                return fail(err, errlen, rc < 0 ? rc : -EIO,
                            "qcow2 stream: reading the disk at %llu",
                            (unsigned long long)g);
        }
        *got += (size_t)take;
    }
    return 0;
}

/* Clusters a data run of xcp__qcow2_out_data spans at most. */
#define RUN_CLUSTERS 256u

bool xcp__qcow2_out_data(xcp__qcow2_out *o, uint64_t pos, uint64_t *guest,
                         uint64_t *len)
{
    uint64_t k, rel, c, g, n;

    *guest = 0;
    *len = 0;
    if (plan(o) < 0 || pos >= o->total * CSIZE)
        return false;
    k = pos / CSIZE;
    rel = pos % CSIZE;
    if (k < o->data_at) {
        *len = o->data_at * CSIZE - pos;
        return false;
    }
    c = select_rank(o, k - o->data_at);
    g = c * CSIZE + rel;
    if (g >= o->size) {
        *len = CSIZE - rel;
        return false;
    }
    /* The next ranks are the next held clusters: consecutive in the disk
       while none is skipped. */
    for (n = 1; n < RUN_CLUSTERS && c + n < o->nclusters && held(o, c + n);
         n++)
        ;
    *guest = g;
    *len = min64(n * CSIZE - rel, o->size - g);
    return true;
}

void xcp__qcow2_out_free(xcp__qcow2_out *o)
{
    if (!o)
        return;
    free(o->map);
    free(o->meta);
    free(o->l2_list);
    free(o->l2_base);
    free(o);
}
