/*
 * qcow2.c - the qcow2 (v2/v3) and raw image library behind the SR drivers.
 *
 * Written from the format description (QEMU's docs/interop/qcow2.txt).
 * Everything goes through pread/pwrite on one descriptor per image.
 *
 * Allocation only ever appends: a new cluster is taken at the end of the
 * file, its refcount is written first, then its contents, then the table
 * entry pointing to it.  A crash can therefore leak clusters but never
 * leave a table pointing at a cluster whose refcount is zero.  Freed
 * clusters (old L1 and refcount tables after they grow) are not reused.
 *
 * Everything read from the file is treated as hostile: each offset is
 * checked against the file size before use, and no allocation is made
 * whose size is not bounded by the file size or a fixed limit, because
 * images come from guests and imports and the parser is fuzzed.
 *
 * This file: the table cache, reading and extents. qcow2_header.c opens
 * and creates images, qcow2_alloc.c allocates clusters and writes,
 * qcow2_chain.c rebases, copies and commits (shared: qcow2_int.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* SEEK_DATA, SEEK_HOLE */
#endif
#include "qcow2_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

int xcp__qcow2_extend_file(xcp__qcow2 *q, uint64_t end, char *err,
                           size_t errlen)
{
    if (end <= q->file_size)
        return 0;
    if (ftruncate(q->fd, (off_t)end) < 0)
        return fail(err, errlen, -errno, "%s: extending to %llu bytes: %s",
                    q->path, (unsigned long long)end, strerror(errno));
    q->file_size = end;
    q->written = true;
    return 0;
}

bool xcp__qcow2_format_ok(const char *fmt)
{
    return strcmp(fmt, "qcow2") == 0 || strcmp(fmt, "raw") == 0;
}

/* Entries needed to map size bytes. */
uint64_t xcp__qcow2_l1_entries_for(uint64_t size, unsigned cluster_bits)
{
    /* An L2 table maps cluster_size / 8 clusters. */
    unsigned span_bits = 2 * cluster_bits - 3;

    return (size >> span_bits) + ((size & ((1ull << span_bits) - 1)) != 0);
}

/* ------------------------------------------------------------------ */
/* Table cache (write-through: a slot never holds unwritten changes)   */

int xcp__qcow2_cache_init(struct cache *c, unsigned n)
{
    c->slot = calloc(n, sizeof(*c->slot));
    if (!c->slot)
        return -ENOMEM;
    c->n = n;
    c->clock = 0;
    return 0;
}

void xcp__qcow2_cache_free(struct cache *c)
{
    unsigned i;

    if (!c->slot)
        return;
    for (i = 0; i < c->n; i++)
        free(c->slot[i].data);
    free(c->slot);
    c->slot = NULL;
}

/* fresh: the cluster is known to be zeros on disk, skip the read. */
int xcp__qcow2_cache_get(xcp__qcow2 *q, struct cache *c, uint64_t off,
                         bool fresh,
                         uint8_t **out, char *err, size_t errlen)
{
    struct cache_slot *victim = &c->slot[0];
    ssize_t r;
    unsigned i;

    if (off == 0 || off % q->cluster_size)
        return fail(err, errlen, -EBADMSG,
                    "%s: metadata table at bad offset %llu", q->path,
                    (unsigned long long)off);
    for (i = 0; i < c->n; i++) {
        if (c->slot[i].offset == off) {
            c->slot[i].used = ++c->clock;
            *out = c->slot[i].data;
            return 0;
        }
        if (c->slot[i].used < victim->used)
            victim = &c->slot[i];
    }
    if (!victim->data) {
        victim->data = malloc(q->cluster_size);
        if (!victim->data)
            return fail(err, errlen, -ENOMEM, "%s: out of memory", q->path);
    }
    victim->offset = 0;
    if (fresh) {
        memset(victim->data, 0, q->cluster_size);
    } else {
        r = pread_full(q->fd, victim->data, q->cluster_size, off);
        if (r < 0)
            return fail(err, errlen, (int)r,
                        "%s: reading metadata at offset %llu: %s", q->path,
                        (unsigned long long)off, strerror((int)-r));
        if ((uint64_t)r != q->cluster_size)
            return fail(err, errlen, -EBADMSG,
                        "%s: metadata table at offset %llu is cut short by "
                        "the end of the file (truncated image?)", q->path,
                        (unsigned long long)off);
    }
    victim->offset = off;
    victim->used = ++c->clock;
    *out = victim->data;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Guest cluster mapping                                               */

int xcp__qcow2_classify(xcp__qcow2 *q, uint64_t e, int *kind, uint64_t *host,
                        char *err, size_t errlen)
{
    uint64_t off = e & L2E_OFFSET_MASK;

    *host = 0;
    if (e & OFLAG_COMPRESSED) {
        *kind = K_COMPRESSED;
        return 0;
    }
    if ((e & OFLAG_ZERO) && q->version < 3)
        return fail(err, errlen, -EBADMSG,
                    "%s: zero-cluster flag in a version 2 image", q->path);
    if (off && (off % q->cluster_size || off >= q->file_size))
        return fail(err, errlen, -EBADMSG,
                    "%s: L2 entry points to %s offset %llu", q->path,
                    off % q->cluster_size ? "unaligned" : "out-of-file",
                    (unsigned long long)off);
    if (e & OFLAG_ZERO) {
        *kind = K_ZERO;
        *host = off;
        return 0;
    }
    if (!off) {
        if (e & OFLAG_COPIED)
            return fail(err, errlen, -EBADMSG,
                        "%s: L2 entry marked in use without an offset",
                        q->path);
        *kind = K_UNALLOC;
        return 0;
    }
    *kind = K_DATA;
    *host = off;
    return 0;
}

/* The L2 table for L1 index l1i, or NULL when it is not allocated. */
int xcp__qcow2_l2_table(xcp__qcow2 *q, uint64_t l1i, uint8_t **table,
                        uint64_t *l2off, char *err, size_t errlen)
{
    uint64_t off;
    int ret;

    *table = NULL;
    *l2off = 0;
    if (!q->l1 && (ret = xcp__qcow2_load_l1(q, err, errlen)) < 0)
        return ret;
    off = q->l1[l1i] & L1E_OFFSET_MASK;
    *l2off = off;
    if (!off)
        return 0;
    if (off % q->cluster_size || off >= q->file_size)
        return fail(err, errlen, -EBADMSG,
                    "%s: L1 entry %llu points to %s L2 table at %llu",
                    q->path, (unsigned long long)l1i,
                    off % q->cluster_size ? "an unaligned" : "an out-of-file",
                    (unsigned long long)off);
    return xcp__qcow2_cache_get(q, &q->l2c, off, false, table, err, errlen);
}

/* How the bytes [off, off + max) start: one extent within one L2 table. */
int xcp__qcow2_map_extent(xcp__qcow2 *q, uint64_t off, uint64_t max,
                          struct extent *e, char *err, size_t errlen)
{
    uint64_t cs = q->cluster_size, span = cs * q->l2_entries;
    uint64_t l1i = off / span, in = off % cs, idx, host, l2off, len;
    uint8_t *table;
    int kind = K_UNALLOC, ret;

    max = min64(max, span - off % span);
    e->host = 0;
    if (l1i >= q->l1_size) {
        e->kind = K_UNALLOC;
        e->len = max;
        return 0;
    }
    ret = xcp__qcow2_l2_table(q, l1i, &table, &l2off, err, errlen);
    if (ret < 0)
        return ret;
    if (!table) {
        e->kind = K_UNALLOC;
        e->len = max;
        return 0;
    }
    idx = off / cs % q->l2_entries;
    ret = xcp__qcow2_classify(q, be64(table + idx * 8), &e->kind, &e->host,
                              err, errlen);
    if (ret < 0)
        return ret;
    len = cs - in;
    while (len < max) {
        idx++;
        ret = xcp__qcow2_classify(q, be64(table + idx * 8), &kind, &host, err,
                                  errlen);
        if (ret < 0)
            return ret;
        if (kind != e->kind || kind == K_COMPRESSED ||
            (kind == K_DATA && host != e->host + (len + in)))
            break;
        len += cs;
    }
    e->len = min64(len, max);
    if (e->kind == K_DATA)
        e->host += in;
    return 0;
}

/* Holes of a sparse raw file; where SEEK_DATA is unknown all is data. */
static int raw_extent(xcp__qcow2 *q, uint64_t off, uint64_t max, bool *data,
                      uint64_t *len)
{
    off_t d = lseek(q->fd, (off_t)off, SEEK_DATA), h;

    *data = true;
    *len = max;
    if (d < 0) {
        if (errno == ENXIO)
            *data = false;      /* a hole up to the end of the file */
        return 0;
    }
    if ((uint64_t)d > off) {
        *data = false;
        *len = min64(max, (uint64_t)d - off);
        return 0;
    }
    h = lseek(q->fd, (off_t)off, SEEK_HOLE);
    if (h > d)
        *len = min64(max, (uint64_t)h - off);
    return 0;
}

/* Whether [off, ...) holds data anywhere in the chain, and for how long. */
int xcp__qcow2_chain_extent(xcp__qcow2 *q, uint64_t off, uint64_t max,
                            bool *data, uint64_t *len, char *err, size_t errlen)
{
    struct extent e;
    int ret;

    if (q->raw)
        return raw_extent(q, off, max, data, len);
    ret = xcp__qcow2_map_extent(q, off, max, &e, err, errlen);
    if (ret < 0)
        return ret;
    *len = e.len;
    *data = e.kind == K_DATA || e.kind == K_COMPRESSED;
    if (e.kind != K_UNALLOC || !q->below || off >= q->below->size)
        return 0;
    return xcp__qcow2_chain_extent(q->below, off, min64(e.len,
                                                        q->below->size - off),
                                   data, len, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */

/* What the backing chain shows at this level; zeros past its end. */
int xcp__qcow2_read_below(xcp__qcow2 *q, uint64_t off, uint8_t *buf,
                          uint64_t len,
                          char *err, size_t errlen)
{
    uint64_t m = 0;
    int ret;

    if (q->has_backing && !q->below)
        return fail(err, errlen, -ENXIO,
                    "%s: cluster at %llu comes from the backing file, which "
                    "was not opened", q->path, (unsigned long long)off);
    if (q->below && off < q->below->size) {
        m = min64(len, q->below->size - off);
        ret = xcp__qcow2_read_at(q->below, off, buf, m, err, errlen);
        if (ret < 0)
            return ret;
    }
    memset(buf + m, 0, len - m);
    return 0;
}

int xcp__qcow2_read_at(xcp__qcow2 *q, uint64_t off, uint8_t *buf, uint64_t len,
                       char *err, size_t errlen)
{
    struct extent e;
    ssize_t r;
    int ret;

    while (len) {
        if (q->raw) {
            e.kind = K_DATA;
            e.host = off;
            e.len = len;
        } else {
            ret = xcp__qcow2_map_extent(q, off, len, &e, err, errlen);
            if (ret < 0)
                return ret;
        }
        switch (e.kind) {
        case K_DATA:
            r = pread_full(q->fd, buf, e.len, e.host);
            if (r < 0)
                return fail(err, errlen, (int)r, "%s: reading at %llu: %s",
                            q->path, (unsigned long long)e.host,
                            strerror((int)-r));
            /* A cluster cut short by the end of file reads as zeros. */
            memset(buf + r, 0, e.len - (uint64_t)r);
            break;
        case K_ZERO:
            memset(buf, 0, e.len);
            break;
        case K_UNALLOC:
            ret = xcp__qcow2_read_below(q, off, buf, e.len, err, errlen);
            if (ret < 0)
                return ret;
            break;
        default:
            return fail(err, errlen, -ENOTSUP,
                        "%s: guest offset %llu is in a compressed cluster; "
                        "compressed clusters are not supported", q->path,
                        (unsigned long long)off);
        }
        off += e.len;
        buf += e.len;
        len -= e.len;
    }
    return 0;
}

int xcp__qcow2_check_range(xcp__qcow2 *q, uint64_t off, uint64_t len,
                           char *err, size_t errlen)
{
    if (off > q->size || len > q->size - off)
        return fail(err, errlen, -EINVAL,
                    "%s: range %llu+%llu is beyond the virtual size %llu",
                    q->path, (unsigned long long)off, (unsigned long long)len,
                    (unsigned long long)q->size);
    return 0;
}

int xcp__qcow2_read(xcp__qcow2 *q, uint64_t offset, void *buf, size_t len,
                    char *err, size_t errlen)
{
    int ret = xcp__qcow2_check_range(q, offset, len, err, errlen);

    if (ret < 0)
        return ret;
    return xcp__qcow2_read_at(q, offset, buf, len, err, errlen);
}

int xcp__qcow2_extent(xcp__qcow2 *q, uint64_t offset, uint64_t max,
                      bool *data, uint64_t *len, char *err, size_t errlen)
{
    int ret = xcp__qcow2_check_range(q, offset, max, err, errlen);

    if (ret == 0 && !max)
        ret = fail(err, errlen, -EINVAL, "%s: empty extent query", q->path);
    if (ret < 0)
        return ret;
    return xcp__qcow2_chain_extent(q, offset, max, data, len, err, errlen);
}

int xcp__qcow2_own_extent(xcp__qcow2 *q, uint64_t offset, uint64_t max,
                          bool *held, uint64_t *len, char *err,
                          size_t errlen)
{
    struct extent e;
    int ret = xcp__qcow2_check_range(q, offset, max, err, errlen);

    if (ret == 0 && !max)
        ret = fail(err, errlen, -EINVAL, "%s: empty extent query", q->path);
    if (ret < 0)
        return ret;
    if (q->raw)
        return raw_extent(q, offset, max, held, len);
    if ((ret = xcp__qcow2_map_extent(q, offset, max, &e, err, errlen)) < 0)
        return ret;
    *held = e.kind != K_UNALLOC;
    *len = e.len;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Where guest bytes lie in a file (zero-copy exports)                 */

static int map_at(xcp__qcow2 *q, uint64_t off, uint64_t max, int *fd,
                  uint64_t *pos, uint64_t *len, char *err, size_t errlen)
{
    struct extent e;
    int ret;

    *fd = -1;
    *pos = 0;
    if (q->raw) {
        e.kind = K_DATA;
        e.host = off;
        e.len = max;
    } else if ((ret = xcp__qcow2_map_extent(q, off, max, &e, err,
                                            errlen)) < 0) {
        return ret;
    }
    *len = e.len;
    if (e.kind == K_UNALLOC && q->below && off < q->below->size)
        return map_at(q->below, off, min64(e.len, q->below->size - off), fd,
                      pos, len, err, errlen);
    /* What the file lacks reads as zeros: read, not sent from the file. */
    if (e.kind != K_DATA || e.host >= q->file_size)
        return 0;
    *fd = q->fd;
    *pos = e.host;
    *len = min64(e.len, q->file_size - e.host);
    return 0;
}

int xcp__qcow2_map(xcp__qcow2 *q, uint64_t offset, uint64_t max, int *fd,
                   uint64_t *pos, uint64_t *len, char *err, size_t errlen)
{
    int ret = xcp__qcow2_check_range(q, offset, max, err, errlen);

    if (ret == 0 && !max)
        ret = fail(err, errlen, -EINVAL, "%s: empty map query", q->path);
    if (ret < 0)
        return ret;
    return map_at(q, offset, max, fd, pos, len, err, errlen);
}

void xcp__qcow2_start_writeback(xcp__qcow2 *q)
{
    sync_file_range(q->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}
