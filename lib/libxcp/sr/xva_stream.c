/*
 * XAPI's XVA stream format (xva_stream.h): the ustar framing, the 1 MiB
 * chunks with their checksums, gzip (zlib) and zstd (libzstd).
 *
 * The tar is written and parsed here rather than through libarchive:
 * an XVA needs only ustar's fixed 512-byte headers, the reader must be
 * a push parser fed whatever pieces an HTTP upload brings (libarchive
 * reads by pulling from a callback, which would need a thread and a
 * pipe per import), and a chunk's checksum must be checked against the
 * chunk before the chunk is written to the disk.
 *
 * libcrypto (SHA-1) and libzstd are loaded at the first XVA (dlopen,
 * core/dl.c): every xe command maps libxcp, and most never move a VM.
 */
#include "xva_stream.h"

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <strings.h>

#include <openssl/evp.h>
#include <zlib.h>
#include <zstd.h>

#ifdef HAVE_XXHASH_H
#define XXH_INLINE_ALL
#include <xxhash.h>
#endif

#define BLOCK 512
#define OUTBUF ((size_t)256 * 1024)
/* The largest member a reader holds whole (ova.xml, a chunk). */
#define MAX_MEMBER ((uint64_t)256 << 20)

/* ---- libraries loaded at first use ----------------------------------- */

static struct {
    int (*digest)(const void *, size_t, unsigned char *, unsigned int *,
                  const EVP_MD *, ENGINE *);
    const EVP_MD *(*sha1)(void);
    char why[256];
} crypto;
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;

static struct {
    ZSTD_CStream *(*create_c)(void);
    size_t (*set_parameter)(ZSTD_CCtx *, ZSTD_cParameter, int);
    size_t (*compress)(ZSTD_CCtx *, ZSTD_outBuffer *, ZSTD_inBuffer *,
                       ZSTD_EndDirective);
    size_t (*free_c)(ZSTD_CStream *);
    ZSTD_DStream *(*create_d)(void);
    size_t (*decompress)(ZSTD_DStream *, ZSTD_outBuffer *, ZSTD_inBuffer *);
    size_t (*free_d)(ZSTD_DStream *);
    unsigned (*is_error)(size_t);
    const char *(*error_name)(size_t);
    char why[256];
} zs;
static pthread_once_t zstd_once = PTHREAD_ONCE_INIT;

static void crypto_load(void)
{
    const xcp__dl_sym syms[] = {
        {(void **)&crypto.digest, "EVP_Digest"},
        {(void **)&crypto.sha1, "EVP_sha1"},
    };

    (void)xcp__dl_load("libcrypto.so.3", syms, XCP__ARRAY_LEN(syms),
                       crypto.why, sizeof(crypto.why));
}

static void zstd_load(void)
{
    const xcp__dl_sym syms[] = {
        {(void **)&zs.create_c, "ZSTD_createCStream"},
        {(void **)&zs.set_parameter, "ZSTD_CCtx_setParameter"},
        {(void **)&zs.compress, "ZSTD_compressStream2"},
        {(void **)&zs.free_c, "ZSTD_freeCStream"},
        {(void **)&zs.create_d, "ZSTD_createDStream"},
        {(void **)&zs.decompress, "ZSTD_decompressStream"},
        {(void **)&zs.free_d, "ZSTD_freeDStream"},
        {(void **)&zs.is_error, "ZSTD_isError"},
        {(void **)&zs.error_name, "ZSTD_getErrorName"},
    };

    (void)xcp__dl_load("libzstd.so.1", syms, XCP__ARRAY_LEN(syms), zs.why,
                       sizeof(zs.why));
}

/* 0 when SHA-1 (and zstd, when zstd is set) can be had; else the error
 * naming the library and why it did not load. */
static int need_libs(bool zstd)
{
    pthread_once(&crypto_once, crypto_load);
    if (!crypto.digest)
        return XCP__ERR_IMPORT_ERROR(crypto.why);
    if (!zstd)
        return 0;
    pthread_once(&zstd_once, zstd_load);
    return zs.create_c ? 0 : XCP__ERR_IMPORT_ERROR(zs.why);
}

int xcp__xva_compression_of(const char *s)
{
    if (!s || !*s || !strcasecmp(s, "false") || !strcasecmp(s, "none"))
        return XCP__XVA_PLAIN;
    if (!strcasecmp(s, "true") || !strcasecmp(s, "gzip"))
        return XCP__XVA_GZIP;
    if (!strcasecmp(s, "zstd"))
        return XCP__XVA_ZSTD;
    return -1;
}

/* ---- checksums ------------------------------------------------------- */

static void sha1_hex(const void *p, size_t n, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0, i;

    crypto.digest(p, n, md, &len, crypto.sha1(), NULL);
    for (i = 0; i < len && i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[40] = '\0';
}

/* The checksum member's text (trimmed) against the chunk: 1 when it
 * matches or cannot be checked here, 0 when not; recomputed in got. */
static int checksum_ok(const char *ext, const char *text, size_t tn,
                       const void *p, size_t n, char got[41])
{
    size_t len = tn;

    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    got[0] = '\0';
    if (!strcmp(ext, ".checksum")) {
        sha1_hex(p, n, got);
    } else {
#ifdef HAVE_XXHASH_H
        snprintf(got, 41, "%016" PRIX64, (uint64_t)XXH64(p, n, 0));
#else
        return 1;
#endif
    }
    return len == strlen(got) && !strncasecmp(text, got, len);
}

/* ---- writing --------------------------------------------------------- */

struct xcp__xva_out {
    xcp__xva_compression c;
    xcp__xva_sink sink;
    void *ctx;
    z_stream z;
    bool z_init;
    ZSTD_CStream *zs;
    uint8_t *buf;      /* compressed (or plain) bytes for the sink */
    size_t len;
    uint8_t *chunk;    /* a disk chunk being sent */
    bool failed;
};

static int flush_buf(xcp__xva_out *o)
{
    if (o->len && o->sink(o->ctx, o->buf, o->len) < 0) {
        o->failed = true;
        return -1;
    }
    o->len = 0;
    return 0;
}

static int gz_push(xcp__xva_out *o, const void *p, size_t n, int flush)
{
    int zrc;

    o->z.next_in = (Bytef *)p;
    o->z.avail_in = (uInt)n;
    do {
        o->z.next_out = o->buf + o->len;
        o->z.avail_out = (uInt)(OUTBUF - o->len);
        zrc = deflate(&o->z, flush);
        o->len = OUTBUF - o->z.avail_out;
        if (zrc == Z_STREAM_ERROR)
            return XCP__ERR_IMPORT_ERROR("gzip compression failed");
        if ((o->len == OUTBUF || zrc == Z_STREAM_END) && flush_buf(o) < 0)
            return -1;
    } while (o->z.avail_in > 0 || (flush == Z_FINISH && zrc != Z_STREAM_END));
    return 0;
}

static int zstd_push(xcp__xva_out *o, const void *p, size_t n, bool end)
{
    ZSTD_inBuffer in = {p, n, 0};
    ZSTD_outBuffer out;
    size_t left;

    do {
        out.dst = o->buf;
        out.size = OUTBUF;
        out.pos = o->len;
        left = zs.compress(o->zs, &out, &in,
                                    end ? ZSTD_e_end : ZSTD_e_continue);
        if (zs.is_error(left))
            return XCP__ERR_IMPORT_ERROR(zs.error_name(left));
        o->len = out.pos;
        if ((o->len == OUTBUF || (end && left == 0)) && flush_buf(o) < 0)
            return -1;
    } while (in.pos < in.size || (end && left != 0));
    return 0;
}

/* n bytes of tar into the compression and on to the sink. */
static int emit(xcp__xva_out *o, const void *p, size_t n)
{
    size_t take;

    if (o->failed)
        return -1;
    if (o->c == XCP__XVA_GZIP)
        return gz_push(o, p, n, Z_NO_FLUSH);
    if (o->c == XCP__XVA_ZSTD)
        return zstd_push(o, p, n, false);
    while (n > 0) {
        take = OUTBUF - o->len < n ? OUTBUF - o->len : n;
        memcpy(o->buf + o->len, p, take);
        o->len += take;
        p = (const uint8_t *)p + take;
        n -= take;
        if (o->len == OUTBUF && flush_buf(o) < 0)
            return -1;
    }
    return 0;
}

static void octal(char *field, size_t width, uint64_t v)
{
    snprintf(field, width, "%0*" PRIo64, (int)width - 1, v);
}

/* A regular file's ustar header. */
static int tar_header(xcp__xva_out *o, const char *name, uint64_t size)
{
    char h[BLOCK];
    unsigned sum = 0;
    size_t i, nl = strlen(name);

    if (nl > 100)
        return XCP__ERR_IMPORT_ERROR("tar member name too long");
    memset(h, 0, sizeof(h));
    memcpy(h, name, nl);
    octal(h + 100, 8, 0644);
    octal(h + 108, 8, 0);
    octal(h + 116, 8, 0);
    octal(h + 124, 12, size);
    octal(h + 136, 12, (uint64_t)xcp__now());
    memset(h + 148, ' ', 8);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    for (i = 0; i < BLOCK; i++)
        sum += (unsigned char)h[i];
    snprintf(h + 148, 8, "%06o", sum);
    h[155] = ' ';
    return emit(o, h, sizeof(h));
}

static int tar_member(xcp__xva_out *o, const char *name, const void *data,
                      size_t n)
{
    static const char zeros[BLOCK];
    size_t pad = (BLOCK - n % BLOCK) % BLOCK;

    if (tar_header(o, name, n) < 0 || emit(o, data, n) < 0)
        return -1;
    return emit(o, zeros, pad);
}

int xcp__xva_out_new(xcp__xva_out **out, xcp__xva_compression c,
                     xcp__xva_sink sink, void *ctx)
{
    xcp__xva_out *o;

    if (need_libs(c == XCP__XVA_ZSTD) < 0)
        return -1;
    o = xcp__calloc(1, sizeof(*o));
    if (!o || !(o->buf = xcp__malloc(OUTBUF)))
        goto oom;
    o->c = c;
    o->sink = sink;
    o->ctx = ctx;
    if (c == XCP__XVA_GZIP) {
        if (deflateInit2(&o->z, 1, Z_DEFLATED, 15 + 16, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            goto oom;
        o->z_init = true;
    } else if (c == XCP__XVA_ZSTD) {
        if (!(o->zs = zs.create_c()))
            goto oom;
        zs.set_parameter(o->zs, ZSTD_c_compressionLevel, 3);
    }
    *out = o;
    return 0;
oom:
    xcp__xva_out_free(o);
    return xcp__oom();
}

int xcp__xva_out_file(xcp__xva_out *o, const char *name, const void *data,
                      size_t n)
{
    return tar_member(o, name, data, n);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static int out_chunk(xcp__xva_out *o, const char *prefix, uint64_t no,
                     const void *data, size_t n)
{
    char name[128], sum[41];

    snprintf(name, sizeof(name), "%s/%08" PRIu64, prefix, no);
    if (tar_member(o, name, data, n) < 0)
        return -1;
    sha1_hex(data, n, sum);
    snprintf(name, sizeof(name), "%s/%08" PRIu64 ".checksum", prefix, no);
    return tar_member(o, name, sum, 40);
}

int xcp__xva_out_disk_chunk(xcp__xva_out *o, const char *prefix,
                            uint64_t size, uint64_t i,
                            const xcp__xva_disk *d)
{
    uint64_t nchunks = (size + XCP__XVA_CHUNK - 1) / XCP__XVA_CHUNK;
    uint64_t off = i * XCP__XVA_CHUNK;
    size_t n;
    bool must;
    int may;

    if (i >= nchunks)
        return 0;
    n = size - off < XCP__XVA_CHUNK ? (size_t)(size - off) : XCP__XVA_CHUNK;
    must = i == 0 || i + 1 == nchunks;
    if (!o->chunk && !(o->chunk = xcp__malloc(XCP__XVA_CHUNK)))
        return xcp__oom();
    may = must ? 1 : d->may_hold_data(d->ctx, off, n);
    if (may < 0)
        return -1;
    if (may) {
        if (d->read(d->ctx, off, o->chunk, n) < 0)
            return -1;
        if ((must || !all_zero(o->chunk, n)) &&
            out_chunk(o, prefix, i, o->chunk, n) < 0)
            return -1;
    }
    if (d->progress)
        d->progress(d->ctx, off + n);
    return 0;
}

int xcp__xva_out_disk(xcp__xva_out *o, const char *prefix, uint64_t size,
                      const xcp__xva_disk *d)
{
    uint64_t nchunks = (size + XCP__XVA_CHUNK - 1) / XCP__XVA_CHUNK, i;

    for (i = 0; i < nchunks; i++)
        if (xcp__xva_out_disk_chunk(o, prefix, size, i, d) < 0)
            return -1;
    return 0;
}

int xcp__xva_out_finish(xcp__xva_out *o)
{
    static const char end[2 * BLOCK];

    if (emit(o, end, sizeof(end)) < 0)
        return -1;
    if (o->c == XCP__XVA_GZIP && gz_push(o, NULL, 0, Z_FINISH) < 0)
        return -1;
    if (o->c == XCP__XVA_ZSTD && zstd_push(o, NULL, 0, true) < 0)
        return -1;
    return flush_buf(o);
}

void xcp__xva_out_free(xcp__xva_out *o)
{
    if (!o)
        return;
    if (o->z_init)
        deflateEnd(&o->z);
    if (o->zs)
        zs.free_c(o->zs);
    free(o->buf);
    free(o->chunk);
    free(o);
}

/* ---- reading --------------------------------------------------------- */

enum tstate { T_HEADER, T_DATA, T_PAD, T_END };

struct xcp__xva_in {
    const xcp__xva_in_ops *ops;
    void *ctx;
    bool verify;
    /* compression, found from the first bytes */
    int c;             /* -1 until known */
    uint8_t magic[4];
    size_t nmagic;
    z_stream z;
    bool z_init;
    ZSTD_DStream *zs;
    uint8_t *dbuf;     /* decompressed bytes */
    /* tar */
    enum tstate st;
    uint8_t hdr[BLOCK];
    size_t have;       /* of the header, or of the member's data */
    int zero_blocks;
    char name[512];
    char longname[512]; /* from a GNU 'L' member, for the next header */
    bool keep;         /* the member's data is wanted */
    bool is_longname;
    uint64_t size, pad;
    uint8_t *data;
    size_t cap;
    /* the last chunk, held until its checksum member says it is good */
    char pname[512];
    uint8_t *pdata;
    size_t pcap, plen;
    bool pending;
};

int xcp__xva_in_new(xcp__xva_in **out, const xcp__xva_in_ops *ops,
                    void *ctx, bool verify)
{
    xcp__xva_in *in;

    if (need_libs(false) < 0)
        return -1;
    if (!(in = xcp__calloc(1, sizeof(*in))))
        return xcp__oom();
    in->ops = ops;
    in->ctx = ctx;
    in->verify = verify;
    in->c = -1;
    *out = in;
    return 0;
}

void xcp__xva_in_free(xcp__xva_in *in)
{
    if (!in)
        return;
    if (in->z_init)
        inflateEnd(&in->z);
    if (in->zs)
        zs.free_d(in->zs);
    free(in->dbuf);
    free(in->data);
    free(in->pdata);
    free(in);
}

static uint64_t tar_number(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    size_t i = 0;

    if (p[0] & 0x80) { /* base-256, as GNU tar writes large sizes */
        v = p[0] & 0x3f;
        for (i = 1; i < n; i++)
            v = v << 8 | p[i];
        return v;
    }
    while (i < n && (p[i] == ' ' || p[i] == '\0'))
        i++;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; i++)
        v = v << 3 | (uint64_t)(p[i] - '0');
    return v;
}

/* "<prefix>/<digits>": the chunk's number and the prefix's length. */
static bool chunk_name(const char *name, uint64_t *no, size_t *plen)
{
    const char *slash = strrchr(name, '/');
    const char *d;

    if (!slash || slash == name || !slash[1])
        return false;
    for (d = slash + 1; *d; d++)
        if (!isdigit((unsigned char)*d))
            return false;
    if (strlen(slash + 1) > 18)
        return false;
    *no = strtoull(slash + 1, NULL, 10);
    *plen = (size_t)(slash - name);
    return true;
}

static const char *checksum_ext(const char *name)
{
    const char *dot = strrchr(name, '.');

    if (dot && (!strcmp(dot, ".checksum") || !strcmp(dot, ".xxhash")))
        return dot;
    return NULL;
}

/* Hand the held chunk on. */
static int deliver(xcp__xva_in *in)
{
    uint64_t no;
    size_t plen;
    char prefix[512];

    if (!in->pending)
        return 0;
    in->pending = false;
    chunk_name(in->pname, &no, &plen);
    memcpy(prefix, in->pname, plen);
    prefix[plen] = '\0';
    return in->ops->chunk(in->ctx, prefix, no, in->pdata, in->plen) ? -1 : 0;
}

static int checksum_member(xcp__xva_in *in, const char *ext)
{
    size_t stem = strlen(in->name) - strlen(ext);
    char got[41];

    if (!in->pending || strlen(in->pname) != stem ||
        strncmp(in->pname, in->name, stem))
        return 0; /* not the held chunk's: nothing to check */
    if (in->verify &&
        !checksum_ok(ext, (const char *)in->data, (size_t)in->size,
                     in->pdata, in->plen, got)) {
        char *msg = xcp__printf("Block %s checksum failed: original = %.*s;"
                                " recomputed = %s", in->pname,
                                (int)(in->size > 64 ? 64 : in->size),
                                (const char *)in->data, got);
        int rc = XCP__ERR_IMPORT_ERROR(msg ? msg : "checksum failed");
        free(msg);
        return rc;
    }
    return deliver(in);
}

/* A whole member is in in->data. */
static int member(xcp__xva_in *in)
{
    const char *ext = checksum_ext(in->name);
    uint64_t no;
    size_t plen, cap;
    uint8_t *p;

    if (ext)
        return checksum_member(in, ext);
    if (deliver(in) < 0)
        return -1;
    if (chunk_name(in->name, &no, &plen)) {
        /* Hold it: swap buffers rather than copy. */
        p = in->pdata;
        cap = in->pcap;
        in->pdata = in->data;
        in->pcap = in->cap;
        in->data = p;
        in->cap = cap;
        in->plen = (size_t)in->size;
        snprintf(in->pname, sizeof(in->pname), "%s", in->name);
        in->pending = true;
        return 0;
    }
    return in->ops->file(in->ctx, in->name, in->data, (size_t)in->size)
               ? -1 : 0;
}

static int header(xcp__xva_in *in)
{
    const uint8_t *h = in->hdr;
    unsigned sum = 0, want;
    char type = (char)h[156];
    size_t i;

    if (all_zero(h, BLOCK)) {
        if (++in->zero_blocks == 2)
            in->st = T_END;
        return 0;
    }
    in->zero_blocks = 0;
    for (i = 0; i < BLOCK; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    want = (unsigned)tar_number(h + 148, 8);
    if (sum != want)
        return XCP__ERR_IMPORT_ERROR("Invalid XVA file: bad tar header");
    in->size = tar_number(h + 124, 12);
    in->pad = (BLOCK - in->size % BLOCK) % BLOCK;
    if (in->longname[0]) {
        snprintf(in->name, sizeof(in->name), "%s", in->longname);
        in->longname[0] = '\0';
    } else if (!memcmp(h + 257, "ustar", 5) && h[345]) {
        snprintf(in->name, sizeof(in->name), "%.155s/%.100s",
                 (const char *)h + 345, (const char *)h);
    } else {
        snprintf(in->name, sizeof(in->name), "%.100s", (const char *)h);
    }
    in->is_longname = type == 'L';
    in->keep = type == '0' || type == '\0' || type == 'L';
    if (in->keep && in->size > MAX_MEMBER)
        return XCP__ERR_IMPORT_ERROR("Invalid XVA file: member too large");
    in->have = 0;
    in->st = T_DATA;
    return 0;
}

/* Room for need bytes of the member (and a NUL), grown as its data
 * comes rather than at its header's word. */
static int reserve(xcp__xva_in *in, size_t need)
{
    size_t cap = in->cap ? in->cap : 64 * 1024;
    uint8_t *p;

    if (need + 1 <= in->cap)
        return 0;
    while (cap < need + 1)
        cap *= 2;
    if (cap > in->size + 1)
        cap = (size_t)in->size + 1;
    if (!(p = xcp__realloc(in->data, cap)))
        return xcp__oom();
    in->data = p;
    in->cap = cap;
    return 0;
}

static int member_done(xcp__xva_in *in)
{
    in->st = in->pad ? T_PAD : T_HEADER;
    in->have = 0;
    if (!in->keep)
        return 0;
    if (reserve(in, (size_t)in->size) < 0)
        return -1;
    in->data[in->size] = '\0';
    if (in->is_longname) {
        snprintf(in->longname, sizeof(in->longname), "%s",
                 (const char *)in->data);
        return 0;
    }
    return member(in);
}

/* Plain tar bytes. */
static int tar_feed(xcp__xva_in *in, const uint8_t *p, size_t n)
{
    size_t take = 0;

    while (n > 0) {
        switch (in->st) {
        case T_END:
            return 0; /* what follows the end blocks is ignored */
        case T_HEADER:
            take = BLOCK - in->have < n ? BLOCK - in->have : n;
            memcpy(in->hdr + in->have, p, take);
            in->have += take;
            if (in->have == BLOCK) {
                in->have = 0;
                if (header(in) < 0)
                    return -1;
                if (in->st == T_DATA && in->size == 0 &&
                    member_done(in) < 0)
                    return -1;
            }
            break;
        case T_DATA:
            take = in->size - in->have < n ? (size_t)(in->size - in->have)
                                           : n;
            if (in->keep) {
                if (reserve(in, (size_t)in->have + take) < 0)
                    return -1;
                memcpy(in->data + in->have, p, take);
            }
            in->have += take;
            if (in->have == in->size && member_done(in) < 0)
                return -1;
            break;
        case T_PAD:
            take = in->pad - in->have < n ? (size_t)(in->pad - in->have) : n;
            in->have += take;
            if (in->have == in->pad) {
                in->have = 0;
                in->st = T_HEADER;
            }
            break;
        }
        p += take;
        n -= take;
    }
    return 0;
}

static int gz_feed(xcp__xva_in *in, const uint8_t *p, size_t n)
{
    int zrc;

    in->z.next_in = (Bytef *)p;
    in->z.avail_in = (uInt)n;
    while (in->z.avail_in > 0) {
        in->z.next_out = in->dbuf;
        in->z.avail_out = (uInt)OUTBUF;
        zrc = inflate(&in->z, Z_NO_FLUSH);
        if (zrc != Z_OK && zrc != Z_STREAM_END && zrc != Z_BUF_ERROR)
            return XCP__ERR_IMPORT_ERROR("Invalid XVA file: bad gzip "
                                         "stream");
        if (tar_feed(in, in->dbuf, OUTBUF - in->z.avail_out) < 0)
            return -1;
        if (zrc == Z_STREAM_END) /* another gzip member may follow */
            inflateReset(&in->z);
        else if (zrc == Z_BUF_ERROR && in->z.avail_out == OUTBUF)
            break;
    }
    return 0;
}

static int zstd_feed(xcp__xva_in *in, const uint8_t *p, size_t n)
{
    ZSTD_inBuffer src = {p, n, 0};
    ZSTD_outBuffer dst;
    size_t rc;

    do {
        dst.dst = in->dbuf;
        dst.size = OUTBUF;
        dst.pos = 0;
        rc = zs.decompress(in->zs, &dst, &src);
        if (zs.is_error(rc))
            return XCP__ERR_IMPORT_ERROR("Invalid XVA file: bad zstd "
                                         "stream");
        if (tar_feed(in, in->dbuf, dst.pos) < 0)
            return -1;
    } while (src.pos < src.size || dst.pos == dst.size);
    return 0;
}

static int body_feed(xcp__xva_in *in, const uint8_t *p, size_t n)
{
    if (in->c == XCP__XVA_GZIP)
        return gz_feed(in, p, n);
    if (in->c == XCP__XVA_ZSTD)
        return zstd_feed(in, p, n);
    return tar_feed(in, p, n);
}

/* The compression, from the stream's magic. */
static int detect(xcp__xva_in *in)
{
    static const uint8_t gz[2] = {0x1f, 0x8b};
    static const uint8_t zst[4] = {0x28, 0xb5, 0x2f, 0xfd};

    in->c = XCP__XVA_PLAIN;
    if (in->nmagic >= 2 && !memcmp(in->magic, gz, 2))
        in->c = XCP__XVA_GZIP;
    else if (in->nmagic >= 4 && !memcmp(in->magic, zst, 4))
        in->c = XCP__XVA_ZSTD;
    if (in->c != XCP__XVA_PLAIN && !(in->dbuf = xcp__malloc(OUTBUF)))
        return xcp__oom();
    if (in->c == XCP__XVA_GZIP) {
        if (inflateInit2(&in->z, 15 + 32) != Z_OK)
            return xcp__oom();
        in->z_init = true;
    } else if (in->c == XCP__XVA_ZSTD) {
        if (need_libs(true) < 0)
            return -1;
        if (!(in->zs = zs.create_d()))
            return xcp__oom();
    }
    return body_feed(in, in->magic, in->nmagic);
}

int xcp__xva_in_feed(xcp__xva_in *in, const void *buf, size_t n)
{
    const uint8_t *p = buf;

    if (in->c < 0) {
        while (n > 0 && in->nmagic < sizeof(in->magic)) {
            in->magic[in->nmagic++] = *p++;
            n--;
        }
        if (in->nmagic < sizeof(in->magic))
            return 0;
        if (detect(in) < 0)
            return -1;
    }
    return n ? body_feed(in, p, n) : 0;
}

int xcp__xva_in_finish(xcp__xva_in *in)
{
    if (in->c < 0 && detect(in) < 0)
        return -1;
    if (in->st == T_DATA || in->st == T_PAD ||
        (in->st == T_HEADER && in->have > 0))
        return XCP__ERR_IMPORT_ERROR_PREMATURE_EOF();
    return deliver(in);
}

/* ---- one disk's chunked tar ------------------------------------------ */

struct xcp__xva_disk_in {
    xcp__xva_in *in;
    uint64_t size;
    bool last_seen;
    int (*put)(void *ctx, uint64_t offset, const void *buf, size_t n);
    void *ctx;
};

static int disk_file(void *ctx, const char *name, const void *data,
                     size_t n)
{
    (void)ctx;
    (void)data;
    (void)n;
    return XCP__ERR_IMPORT_ERROR_UNEXPECTED_FILE(XCP__XVA_TAR_DIR
                                                 "/00000000", name);
}

static int disk_chunk(void *ctx, const char *prefix, uint64_t no,
                      const void *data, size_t n)
{
    xcp__xva_disk_in *d = ctx;
    uint64_t off = no * XCP__XVA_CHUNK;

    (void)prefix;
    if (no > d->size / XCP__XVA_CHUNK || off + n > d->size)
        return XCP__ERR_IMPORT_ERROR("Invalid tar: a chunk past the end "
                                     "of the disk");
    if (n && off + n == d->size)
        d->last_seen = true;
    if (all_zero(data, n))
        return 0;
    return d->put(d->ctx, off, data, n) ? -1 : 0;
}

static const xcp__xva_in_ops disk_ops = {disk_file, disk_chunk};

int xcp__xva_disk_in_new(xcp__xva_disk_in **out, uint64_t size,
                         int (*put)(void *ctx, uint64_t offset,
                                    const void *buf, size_t n),
                         void *ctx)
{
    xcp__xva_disk_in *d = xcp__calloc(1, sizeof(*d));

    if (!d)
        return xcp__oom();
    d->size = size;
    d->put = put;
    d->ctx = ctx;
    if (xcp__xva_in_new(&d->in, &disk_ops, d, true) < 0) {
        free(d);
        return -1;
    }
    *out = d;
    return 0;
}

int xcp__xva_disk_in_feed(xcp__xva_disk_in *d, const void *buf, size_t n)
{
    return xcp__xva_in_feed(d->in, buf, n);
}

int xcp__xva_disk_in_finish(xcp__xva_disk_in *d)
{
    if (xcp__xva_in_finish(d->in) < 0)
        return -1;
    if (d->size && !d->last_seen)
        return XCP__ERR_IMPORT_ERROR_PREMATURE_EOF();
    return 0;
}

void xcp__xva_disk_in_free(xcp__xva_disk_in *d)
{
    if (!d)
        return;
    xcp__xva_in_free(d->in);
    free(d);
}
