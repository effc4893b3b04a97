/*
 * The replication record (docs/design-pool.md §2): one committed
 * transaction as it travels in the pool's process group,
 *     "XCPR 1 <epoch> <seq> <gen> <len> <crc32 hex>\n" <len bytes of body>
 * the body being the journal line db.c built at commit, the CRC over the
 * header's numbers and the body.
 * Decoding is strict: exactly one record, canonical decimal numbers, the
 * length and the checksum matching; anything else is refused whole.
 */
#include "cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#define MAGIC "XCPR 1 "

static uint32_t crc(uint32_t c, const char *p, size_t n)
{
    /* zlib takes uInt lengths: feed large bodies in pieces. */
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = (uint32_t)crc32(c, (const Bytef *)p, k);
        p += k;
        n -= k;
    }
    return c;
}

ssize_t xcp__cluster_record_encode(const xcp__cluster_record *r, char *buf,
                                   size_t size)
{
    uint32_t sum;
    int h = snprintf(buf, size, MAGIC "%" PRIu64 " %" PRIu64 " %" PRIu64
                                " %zu ",
                     r->epoch, r->seq, r->gen, r->len);

    if (h < 0 || (size_t)h + 9 >= size || size - (size_t)h - 9 < r->len)
        return -ENOSPC;
    /* The CRC covers the numbers before it and the body after it. */
    sum = crc(crc(0, buf, (size_t)h), r->body, r->len);
    snprintf(buf + h, 10, "%08" PRIx32 "\n", sum);
    memcpy(buf + h + 9, r->body, r->len);
    return (ssize_t)((size_t)h + 9 + r->len);
}

/* A canonical decimal (no sign, no leading zero but "0"), then sep. */
static const char *dec(const char *p, const char *end, char sep,
                       uint64_t *out)
{
    uint64_t v = 0;
    const char *s = p;

    while (p < end && *p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return NULL;
        v = v * 10 + d;
        p++;
    }
    if (p == s || (p - s > 1 && *s == '0') || p >= end || *p != sep)
        return NULL;
    *out = v;
    return p + 1;
}

/* Eight lowercase hex digits, then sep. */
static const char *hex32(const char *p, const char *end, char sep,
                         uint32_t *out)
{
    uint32_t v = 0;
    int i;

    if (end - p < 9)
        return NULL;
    for (i = 0; i < 8; i++) {
        char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return NULL;
        v = v << 4 | d;
    }
    if (p[8] != sep)
        return NULL;
    *out = v;
    return p + 9;
}

int xcp__cluster_record_decode(const char *buf, size_t len,
                               xcp__cluster_record *r)
{
    const char *p = buf, *end = buf + len;
    uint64_t epoch, seq, gen, blen;
    uint32_t sum;
    size_t hdr;

    memset(r, 0, sizeof(*r));
    if (len < sizeof(MAGIC) - 1 || memcmp(p, MAGIC, sizeof(MAGIC) - 1) != 0)
        return -EBADMSG;
    p += sizeof(MAGIC) - 1;
    if ((p = dec(p, end, ' ', &epoch)) == NULL ||
        (p = dec(p, end, ' ', &seq)) == NULL ||
        (p = dec(p, end, ' ', &gen)) == NULL ||
        (p = dec(p, end, ' ', &blen)) == NULL)
        return -EBADMSG;
    hdr = (size_t)(p - buf);
    if ((p = hex32(p, end, '\n', &sum)) == NULL)
        return -EBADMSG;
    if (blen != (uint64_t)(end - p) ||
        crc(crc(0, buf, hdr), p, (size_t)blen) != sum)
        return -EBADMSG;
    r->epoch = epoch;
    r->seq = seq;
    r->gen = gen;
    r->body = p;
    r->len = (size_t)blen;
    return 0;
}

#define ACK_MAGIC "XCPA 1 "

ssize_t xcp__cluster_ack_encode(uint64_t epoch, uint64_t seq, char *buf,
                                size_t size)
{
    int n = snprintf(buf, size, ACK_MAGIC "%" PRIu64 " %" PRIu64 "\n", epoch,
                     seq);

    if (n < 0 || (size_t)n >= size)
        return -ENOSPC;
    return n;
}

int xcp__cluster_ack_decode(const char *buf, size_t len, uint64_t *epoch,
                            uint64_t *seq)
{
    const char *p = buf, *end = buf + len;

    if (len < sizeof(ACK_MAGIC) - 1 ||
        memcmp(p, ACK_MAGIC, sizeof(ACK_MAGIC) - 1) != 0)
        return -EBADMSG;
    p += sizeof(ACK_MAGIC) - 1;
    if ((p = dec(p, end, ' ', epoch)) == NULL ||
        (p = dec(p, end, '\n', seq)) == NULL || p != end)
        return -EBADMSG;
    return 0;
}

#define STATE_MAGIC "XCPS 2 "

/* An address token of n bytes: 1..63 of [A-Za-z0-9.:_[]-] ("-" alone:
 * none). */
static bool addr_ok(const char *a, size_t n)
{
    size_t i;

    if (n == 0 || n >= sizeof(((xcp__cluster_state *)0)->addr))
        return false;
    for (i = 0; i < n; i++) {
        char c = a[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '.' || c == ':' || c == '_' ||
              c == '-' || c == '[' || c == ']'))
            return false;
    }
    return true;
}

ssize_t xcp__cluster_state_encode(const xcp__cluster_state *s, char *buf,
                                  size_t size)
{
    int n;

    if (s->addr[0] &&
        (!addr_ok(s->addr, strnlen(s->addr, sizeof(s->addr))) ||
         strcmp(s->addr, "-") == 0))
        return -EINVAL;
    n = snprintf(buf, size,
                 STATE_MAGIC "%" PRIu64 " %" PRIu64 " %" PRIu64 " %d %" PRIu32
                             " %s\n",
                 s->epoch, s->last_epoch, s->last, s->quorate ? 1 : 0,
                 s->coordinator, s->addr[0] ? s->addr : "-");
    if (n < 0 || (size_t)n >= size)
        return -ENOSPC;
    return n;
}

int xcp__cluster_state_decode(const char *buf, size_t len,
                              xcp__cluster_state *s)
{
    const char *p = buf, *end = buf + len, *a;
    uint64_t q, coord;
    size_t alen;

    memset(s, 0, sizeof(*s));
    if (len < sizeof(STATE_MAGIC) - 1 ||
        memcmp(p, STATE_MAGIC, sizeof(STATE_MAGIC) - 1) != 0)
        return -EBADMSG;
    p += sizeof(STATE_MAGIC) - 1;
    if ((p = dec(p, end, ' ', &s->epoch)) == NULL ||
        (p = dec(p, end, ' ', &s->last_epoch)) == NULL ||
        (p = dec(p, end, ' ', &s->last)) == NULL ||
        (p = dec(p, end, ' ', &q)) == NULL || q > 1 ||
        (p = dec(p, end, ' ', &coord)) == NULL || coord > UINT32_MAX)
        goto bad;
    a = p;
    while (p < end && *p != '\n')
        p++;
    alen = (size_t)(p - a);
    if (p + 1 != end || !addr_ok(a, alen))
        goto bad;
    memcpy(s->addr, a, alen);
    s->addr[alen] = '\0';
    if (strcmp(s->addr, "-") == 0)
        s->addr[0] = '\0';
    s->quorate = q == 1;
    s->coordinator = (uint32_t)coord;
    return 0;
bad:
    memset(s, 0, sizeof(*s));
    return -EBADMSG;
}

#define REQ_MAGIC "XCPQ 1 "

ssize_t xcp__cluster_req_encode(uint64_t epoch, uint64_t last_epoch,
                                uint64_t last, char *buf, size_t size)
{
    int n = snprintf(buf, size,
                     REQ_MAGIC "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", epoch,
                     last_epoch, last);

    if (n < 0 || (size_t)n >= size)
        return -ENOSPC;
    return n;
}

int xcp__cluster_req_decode(const char *buf, size_t len, uint64_t *epoch,
                            uint64_t *last_epoch, uint64_t *last)
{
    const char *p = buf, *end = buf + len;

    if (len < sizeof(REQ_MAGIC) - 1 ||
        memcmp(p, REQ_MAGIC, sizeof(REQ_MAGIC) - 1) != 0)
        return -EBADMSG;
    p += sizeof(REQ_MAGIC) - 1;
    if ((p = dec(p, end, ' ', epoch)) == NULL ||
        (p = dec(p, end, ' ', last_epoch)) == NULL ||
        (p = dec(p, end, '\n', last)) == NULL || p != end)
        return -EBADMSG;
    return 0;
}

#define HANDOVER_MAGIC "XCPH 1 "

ssize_t xcp__cluster_handover_encode(uint64_t epoch, uint64_t last_epoch,
                                     uint64_t last, uint32_t to, char *buf,
                                     size_t size)
{
    int n = snprintf(buf, size,
                     HANDOVER_MAGIC "%" PRIu64 " %" PRIu64 " %" PRIu64
                                    " %" PRIu32 "\n",
                     epoch, last_epoch, last, to);

    if (n < 0 || (size_t)n >= size)
        return -ENOSPC;
    return n;
}

int xcp__cluster_handover_decode(const char *buf, size_t len,
                                 uint64_t *epoch, uint64_t *last_epoch,
                                 uint64_t *last, uint32_t *to)
{
    const char *p = buf, *end = buf + len;
    uint64_t t;

    if (len < sizeof(HANDOVER_MAGIC) - 1 ||
        memcmp(p, HANDOVER_MAGIC, sizeof(HANDOVER_MAGIC) - 1) != 0)
        return -EBADMSG;
    p += sizeof(HANDOVER_MAGIC) - 1;
    if ((p = dec(p, end, ' ', epoch)) == NULL ||
        (p = dec(p, end, ' ', last_epoch)) == NULL ||
        (p = dec(p, end, ' ', last)) == NULL ||
        (p = dec(p, end, '\n', &t)) == NULL || p != end || t == 0 ||
        t > UINT32_MAX)
        return -EBADMSG;
    *to = (uint32_t)t;
    return 0;
}

#define CHUNK_MAGIC "XCPC 1 "

ssize_t xcp__cluster_chunk_encode(const xcp__cluster_chunk *c, char *buf,
                                  size_t size)
{
    int h;

    if ((c->kind != 'C' && c->kind != 'T') || c->offset > c->total ||
        c->len > c->total - c->offset)
        return -EINVAL;
    h = snprintf(buf, size,
                 CHUNK_MAGIC "%c %" PRIu32 " %" PRIu64 " %" PRIu64 " %" PRIu64
                             " %" PRIu64 " %" PRIu64 " %" PRIu64 " %08" PRIx32
                             " %zu\n",
                 c->kind, c->to, c->epoch, c->seq, c->last_epoch, c->gen,
                 c->offset, c->total, c->crc, c->len);
    if (h < 0 || (size_t)h >= size || size - (size_t)h < c->len)
        return -ENOSPC;
    memcpy(buf + h, c->data, c->len);
    return (ssize_t)((size_t)h + c->len);
}

int xcp__cluster_chunk_decode(const char *buf, size_t len,
                              xcp__cluster_chunk *c)
{
    const char *p = buf, *end = buf + len;
    uint64_t to, dlen;
    uint32_t sum = 0;

    memset(c, 0, sizeof(*c));
    if (len < sizeof(CHUNK_MAGIC) + 1 ||
        memcmp(p, CHUNK_MAGIC, sizeof(CHUNK_MAGIC) - 1) != 0)
        return -EBADMSG;
    p += sizeof(CHUNK_MAGIC) - 1;
    if ((*p != 'C' && *p != 'T') || p[1] != ' ')
        return -EBADMSG;
    c->kind = *p;
    p += 2;
    if ((p = dec(p, end, ' ', &to)) == NULL || to > UINT32_MAX ||
        (p = dec(p, end, ' ', &c->epoch)) == NULL ||
        (p = dec(p, end, ' ', &c->seq)) == NULL ||
        (p = dec(p, end, ' ', &c->last_epoch)) == NULL ||
        (p = dec(p, end, ' ', &c->gen)) == NULL ||
        (p = dec(p, end, ' ', &c->offset)) == NULL ||
        (p = dec(p, end, ' ', &c->total)) == NULL ||
        (p = hex32(p, end, ' ', &sum)) == NULL)
        goto bad;
    if ((p = dec(p, end, '\n', &dlen)) == NULL ||
        dlen != (uint64_t)(end - p) || c->offset > c->total ||
        dlen > c->total - c->offset)
        goto bad;
    c->to = (uint32_t)to;
    c->crc = sum;
    c->data = p;
    c->len = (size_t)dlen;
    return 0;
bad:
    memset(c, 0, sizeof(*c));
    return -EBADMSG;
}

uint32_t xcp__cluster_crc(uint32_t c, const void *p, size_t n)
{
    return crc(c, p, n);
}

int xcp__cluster_record_next(const char **p, const char *end,
                             xcp__cluster_record *r)
{
    const char *s = *p, *nl, *q;
    uint64_t epoch, seq, gen, blen;
    size_t n;

    if (s >= end)
        return -ENOENT;
    nl = memchr(s, '\n', (size_t)(end - s) < XCP__CLUSTER_RECORD_HDR_MAX
                             ? (size_t)(end - s)
                             : XCP__CLUSTER_RECORD_HDR_MAX);
    if (nl == NULL || (size_t)(end - s) < sizeof(MAGIC) - 1 ||
        memcmp(s, MAGIC, sizeof(MAGIC) - 1) != 0)
        return -EBADMSG;
    q = s + sizeof(MAGIC) - 1;
    if ((q = dec(q, nl, ' ', &epoch)) == NULL ||
        (q = dec(q, nl, ' ', &seq)) == NULL ||
        (q = dec(q, nl, ' ', &gen)) == NULL ||
        (q = dec(q, nl, ' ', &blen)) == NULL ||
        blen > (uint64_t)(end - nl - 1))
        return -EBADMSG;
    n = (size_t)(nl + 1 - s) + (size_t)blen;
    if (xcp__cluster_record_decode(s, n, r) < 0)
        return -EBADMSG;
    *p = s + n;
    return 0;
}
