/*
 * qcow2 images consumed front to back (qcow2_stream.h), for PUT
 * /import_raw_vdi?format=qcow2. The stream cannot be sought, so what is
 * wanted from it is a list of targets sorted by file offset: the L1
 * table (known from the header), the L2 tables (known from the L1
 * table), and the runs of data clusters (known from each L2 table, held
 * as runs: contiguous in the file and on the disk). Every other byte
 * (refcounts, snapshots, leaked clusters) passes unread. Metadata has to
 * come before what it maps, as every writer lays it out (qemu-img
 * convert, XAPI's qcow2-to-stdout, our own exporter); a cluster met
 * before the table that maps it has gone by and fails the stream.
 */
#include "qcow2_stream.h"
#include "qcow2_int.h"
#include "image.h"

#include <stdlib.h>

/* Targets held at most (32 bytes each): a sequentially written image
 * needs a few per L2 table; one fragmented past this (a VM's working
 * image) is refused rather than let grow with the disk. */
#define MAX_TARGETS ((size_t)1 << 20)

typedef enum tkind { T_L1, T_L2, T_DATA } tkind;

/* A range of the stream that is wanted. */
typedef struct target {
    uint64_t at;        /* file offset */
    uint64_t len;
    uint64_t guest;     /* T_DATA: disk offset of its first byte;
                           T_L2: index of its L1 entry */
    tkind kind;
} target;

struct xcp__qcow2_in {
    uint64_t max_size;
    uint64_t pos;               /* stream bytes consumed */
    uint8_t head[V3_HEADER_LEN];
    bool have_header;
    bool backing;               /* a backing file: a differencing image */
    unsigned cbits;
    uint64_t csize;
    uint64_t size;              /* virtual size */
    target *t;                  /* sorted by at, from t[first] */
    size_t first, n, cap;
    uint8_t *table;             /* the L1 or L2 table being gathered */
    uint64_t table_have;
    uint8_t *covered;           /* bit per disk cluster: the image has it */
    uint8_t *zeros;             /* a cluster of zeros (zero clusters) */
};

static int bad(char *err, size_t errlen, const char *what, uint64_t at)
{
    return fail(err, errlen, -EBADMSG, "qcow2 stream: %s (file offset %llu)",
                what, (unsigned long long)at);
}

int xcp__qcow2_in_new(xcp__qcow2_in **out, uint64_t max_size, char *err,
                      size_t errlen)
{
    xcp__qcow2_in *in = calloc(1, sizeof(*in));

    *out = in;
    if (!in)
        return fail(err, errlen, -ENOMEM, "qcow2 stream: out of memory");
    in->max_size = max_size;
    return 0;
}

/* Add a target, keeping the list sorted; a data run adjoining the one
 * before it (in the file and on the disk) extends it. Overlaps and
 * targets already gone by are malformed streams. */
static int add(xcp__qcow2_in *in, tkind kind, uint64_t at, uint64_t len,
               uint64_t guest, char *err, size_t errlen)
{
    size_t lo = in->first, hi = in->first + in->n, mid;
    target *p;

    if (at < in->pos)
        return bad(err, errlen, kind == T_DATA
                       ? "a data cluster comes before the table mapping it"
                       : "a table comes before the one pointing to it", at);
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (in->t[mid].at < at)
            lo = mid + 1;
        else
            hi = mid;
    }
    if ((lo > in->first && in->t[lo - 1].at + in->t[lo - 1].len > at) ||
        (lo < in->first + in->n && at + len > in->t[lo].at))
        return bad(err, errlen, "clusters used twice", at);
    p = lo > in->first ? &in->t[lo - 1] : NULL;
    if (kind == T_DATA && p && p->kind == T_DATA && p->at + p->len == at &&
        p->guest + p->len == guest) {
        p->len += len;
        return 0;
    }
    if (in->first > 0 && in->first + in->n == in->cap) {
        memmove(in->t, in->t + in->first, in->n * sizeof(*in->t));
        lo -= in->first;
        in->first = 0;
    }
    if (in->n >= MAX_TARGETS)
        return fail(err, errlen, -EFBIG,
                    "qcow2 stream: more than %zu fragments ahead; lay the "
                    "image out first (qemu-img convert -O qcow2)",
                    MAX_TARGETS);
    if (in->first + in->n == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 64;
        target *nt = realloc(in->t, cap * sizeof(*nt));

        if (!nt)
            return fail(err, errlen, -ENOMEM, "qcow2 stream: out of memory");
        in->t = nt;
        in->cap = cap;
    }
    memmove(in->t + lo + 1, in->t + lo,
            (in->first + in->n - lo) * sizeof(*in->t));
    in->t[lo].at = at;
    in->t[lo].len = len;
    in->t[lo].guest = guest;
    in->t[lo].kind = kind;
    in->n++;
    return 0;
}

static void cover(xcp__qcow2_in *in, uint64_t cluster)
{
    in->covered[cluster / 8] |= (uint8_t)(0x80u >> (cluster % 8));
}

/* The header, once its first V3_HEADER_LEN bytes (or fewer, for a short
 * v2 header, when the stream is that short) are in in->head. */
static int parse_header(xcp__qcow2_in *in, char *err, size_t errlen)
{
    const uint8_t *h = in->head;
    uint32_t version = be32(h + H_VERSION);
    uint64_t l1_size, l1_at, ncl;

    if (be32(h) != QCOW2_MAGIC)
        return fail(err, errlen, -EMEDIUMTYPE,
                    "qcow2 stream: not a qcow2 image");
    if (version != 2 && version != 3)
        return fail(err, errlen, -EMEDIUMTYPE,
                    "qcow2 stream: version %u is not supported", version);
    in->cbits = be32(h + H_CLUSTER_BITS);
    if (in->cbits < 9 || in->cbits > 21)
        return bad(err, errlen, "cluster size out of range", H_CLUSTER_BITS);
    in->csize = (uint64_t)1 << in->cbits;
    if (be32(h + H_CRYPT) != 0)
        return fail(err, errlen, -EMEDIUMTYPE,
                    "qcow2 stream: encrypted images are not supported");
    if (version == 3 && (be64(h + H_INCOMPAT) & ~INCOMPAT_DIRTY))
        return fail(err, errlen, -EMEDIUMTYPE,
                    "qcow2 stream: incompatible features 0x%llx are not "
                    "supported",
                    (unsigned long long)be64(h + H_INCOMPAT));
    in->size = be64(h + H_SIZE);
    if (in->size > in->max_size)
        return fail(err, errlen, -EFBIG,
                    "qcow2 stream: the image (%llu bytes) is larger than "
                    "the VDI (%llu bytes)", (unsigned long long)in->size,
                    (unsigned long long)in->max_size);
    in->backing = be64(h + H_BACKING_OFFSET) != 0;
    l1_size = be32(h + H_L1_SIZE);
    l1_at = be64(h + H_L1_OFFSET);
    ncl = div_up(in->size, in->csize);
    if (l1_size * 8 > MAX_L1_BYTES ||
        l1_size < div_up(ncl, in->csize / 8))
        return bad(err, errlen, "L1 table size out of range", H_L1_SIZE);
    if (l1_at % in->csize || l1_at >= MAX_HOST_OFFSET)
        return bad(err, errlen, "L1 table misplaced", H_L1_OFFSET);
    in->covered = calloc(div_up(ncl, 8) + 1, 1);
    in->table = malloc(l1_size * 8 > in->csize ? l1_size * 8 : in->csize);
    if (!in->covered || !in->table)
        return fail(err, errlen, -ENOMEM, "qcow2 stream: out of memory");
    in->have_header = true;
    return l1_size ? add(in, T_L1, l1_at, l1_size * 8, 0, err, errlen) : 0;
}

/* The L1 table: its L2 tables become targets. */
static int parse_l1(xcp__qcow2_in *in, const target *tg, char *err,
                    size_t errlen)
{
    uint64_t i, e, l2;
    int rc;

    for (i = 0; i < tg->len / 8; i++) {
        e = be64(in->table + i * 8);
        if (!(l2 = e & L1E_OFFSET_MASK))
            continue;
        if (l2 % in->csize || l2 >= MAX_HOST_OFFSET ||
            i << (in->cbits * 2 - 3) >= in->size)
            return bad(err, errlen, "bad L1 entry", tg->at + i * 8);
        if ((rc = add(in, T_L2, l2, in->csize, i, err, errlen)) < 0)
            return rc;
    }
    return 0;
}

/* An L2 table: its data clusters become targets; zero clusters are
 * written as zeros at once. */
static int parse_l2(xcp__qcow2_in *in, const target *tg,
                    xcp__vhd_stream_write_cb write, void *ctx, char *err,
                    size_t errlen)
{
    uint64_t per = in->csize / 8, i, e, host, guest, c;
    int rc;

    for (i = 0; i < per; i++) {
        e = be64(in->table + i * 8);
        c = tg->guest * per + i;
        guest = c << in->cbits;
        if (guest >= in->size)
            break;
        if (e & OFLAG_COMPRESSED)
            return fail(err, errlen, -EMEDIUMTYPE,
                        "qcow2 stream: compressed clusters are not "
                        "supported (convert with qemu-img convert -O "
                        "qcow2 first)");
        host = e & L2E_OFFSET_MASK;
        if (e & OFLAG_ZERO) {
            if (!in->zeros && !(in->zeros = calloc(1, in->csize)))
                return fail(err, errlen, -ENOMEM,
                            "qcow2 stream: out of memory");
            cover(in, c);
            if ((rc = write(ctx, guest, in->zeros,
                            (size_t)min64(in->csize, in->size - guest))))
                return rc;
            continue;
        }
        if (!host)
            continue;
        if (host % in->csize || host >= MAX_HOST_OFFSET)
            return bad(err, errlen, "bad L2 entry", tg->at + i * 8);
        cover(in, c);
        if ((rc = add(in, T_DATA, host, in->csize, guest, err, errlen)) < 0)
            return rc;
    }
    return 0;
}

int xcp__qcow2_in_feed(xcp__qcow2_in *in, const void *buf, size_t n,
                       xcp__vhd_stream_write_cb write, void *ctx, char *err,
                       size_t errlen)
{
    const uint8_t *p = buf;
    uint64_t take, skip;
    target tg;
    int rc;

    while (n > 0) {
        if (!in->have_header) {
            take = min64(n, sizeof(in->head) - in->pos);
            memcpy(in->head + in->pos, p, (size_t)take);
            in->pos += take;
            p += take;
            n -= (size_t)take;
            if (in->pos == sizeof(in->head) &&
                (rc = parse_header(in, err, errlen)) < 0)
                return rc;
            continue;
        }
        if (in->n == 0) {       /* nothing more is wanted */
            in->pos += n;
            return 0;
        }
        tg = in->t[in->first];
        if (in->pos < tg.at) {
            skip = min64(n, tg.at - in->pos);
            in->pos += skip;
            p += skip;
            n -= (size_t)skip;
            continue;
        }
        take = min64(n, tg.at + tg.len - in->pos);
        if (tg.kind == T_DATA) {
            uint64_t guest = tg.guest + (in->pos - tg.at);
            uint64_t w = guest < in->size ? min64(take, in->size - guest)
                                          : 0;

            if (w && (rc = write(ctx, guest, p, (size_t)w)))
                return rc;
        } else {
            memcpy(in->table + in->table_have, p, (size_t)take);
            in->table_have += take;
        }
        in->pos += take;
        p += take;
        n -= (size_t)take;
        if (in->pos < tg.at + tg.len)
            continue;
        in->first++;            /* done with it */
        in->n--;
        in->table_have = 0;
        if (tg.kind == T_L1)
            rc = parse_l1(in, &tg, err, errlen);
        else if (tg.kind == T_L2)
            rc = parse_l2(in, &tg, write, ctx, err, errlen);
        else
            rc = 0;
        if (rc)
            return rc;
    }
    return 0;
}

int xcp__qcow2_in_finish(xcp__qcow2_in *in, char *err, size_t errlen)
{
    if (!in->have_header)
        return fail(err, errlen, -EBADMSG,
                    "qcow2 stream: the stream ended in its header");
    if (in->n > 0)
        return bad(err, errlen, in->t[in->first].kind == T_DATA
                       ? "the stream ended before a data cluster"
                       : "the stream ended before a table",
                   in->t[in->first].at);
    return 0;
}

bool xcp__qcow2_in_differencing(const xcp__qcow2_in *in)
{
    return in->backing;
}

bool xcp__qcow2_in_covered(const xcp__qcow2_in *in, uint64_t offset,
                           uint32_t *cluster_size)
{
    uint64_t c;

    *cluster_size = in->csize ? (uint32_t)in->csize : 65536u;
    if (!in->covered || offset >= in->size)
        return false;
    c = offset >> in->cbits;
    return in->covered[c / 8] & (0x80u >> (c % 8));
}

size_t xcp__qcow2_in_pending(const xcp__qcow2_in *in)
{
    return in->n;
}

void xcp__qcow2_in_free(xcp__qcow2_in *in)
{
    if (!in)
        return;
    free(in->t);
    free(in->table);
    free(in->covered);
    free(in->zeros);
    free(in);
}
