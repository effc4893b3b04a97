/*
 * VDI transfers, the XenAPI side: session, task and VDI checks, the
 * VDI's image through the SR layer's streams (api/storage.c), progress
 * into the task and its completion (xcp__task_complete, as for Async.
 * calls). The engine lock is taken only to look things up and open the
 * image (in the same transaction, so the checks hold for what is opened)
 * and to update the task; the bytes move without it, a buffer at a time.
 * The body is the disk's bytes (raw), XAPI's chunk frames (12 bytes:
 * offset u64 and length u32, little-endian, then the data; a frame of
 * offset and length 0 ends it), or a VHD or qcow2 image streamed through
 * sr/vhd_stream.c or sr/qcow2_stream_in.c, whatever the format of the
 * VDI's own image.
 */
#include "transfer.h"
#include "../api/storage.h"
#include "../sr/qcow2_stream.h"
#include "../sr/vhd_stream.h"
#include "xva.h"

#include <errno.h>
#include <stdio.h>
#include <strings.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef enum xfmt {
    XFMT_RAW,
    XFMT_VHD,
    XFMT_QCOW2,
    XFMT_TAR,       /* XAPI's chunked tar (sr/xva_stream.c) */
} xfmt;

/* An export's image producer (sr/vhd_stream.c, sr/qcow2_stream.c). */
typedef struct encoder {
    int (*create)(void **out, uint64_t size, char *err, size_t errlen);
    void (*mark)(void *o, uint64_t offset, uint64_t len);
    uint64_t (*length)(void *o);
    /* a delta: the image's parent is the VDI with this uuid */
    int (*parent)(void *o, const char *uuid, char *err, size_t errlen);
    int (*read)(void *o, uint64_t pos, void *buf, size_t n, size_t *got,
                xcp__vhd_stream_read_cb read, void *ctx, char *err,
                size_t errlen);
    /* whether the bytes from pos are the disk's (from *guest), for *len */
    bool (*data)(void *o, uint64_t pos, uint64_t *guest, uint64_t *len);
    void (*free)(void *o);
} encoder;

/* The producers' own types behind the encoder's void pointers. */
#define ENCODER_OF(name, type)                                             \
    static int name##_create(void **out, uint64_t size, char *err,         \
                             size_t errlen)                                \
    {                                                                      \
        type *o = NULL;                                                    \
        int rc = xcp__##name##_out_new(&o, size, err, errlen);             \
        *out = o;                                                          \
        return rc;                                                         \
    }                                                                      \
    static void name##_mark(void *o, uint64_t offset, uint64_t len)        \
    {                                                                      \
        xcp__##name##_out_mark(o, offset, len);                            \
    }                                                                      \
    static uint64_t name##_length(void *o)                                 \
    {                                                                      \
        return xcp__##name##_out_length(o);                                \
    }                                                                      \
    static int name##_parent(void *o, const char *uuid, char *err,         \
                             size_t errlen)                                \
    {                                                                      \
        char file[64];                                                     \
                                                                           \
        snprintf(file, sizeof(file), "%s." #name, uuid);                   \
        return name##_out_parent(o, uuid, file, err, errlen);              \
    }                                                                      \
    static int name##_read(void *o, uint64_t pos, void *buf, size_t n,     \
                           size_t *got, xcp__vhd_stream_read_cb read,      \
                           void *ctx, char *err, size_t errlen)            \
    {                                                                      \
        return xcp__##name##_out_read(o, pos, buf, n, got, read, ctx, err, \
                                      errlen);                             \
    }                                                                      \
    static bool name##_data(void *o, uint64_t pos, uint64_t *guest,       \
                            uint64_t *len)                                 \
    {                                                                      \
        return xcp__##name##_out_data(o, pos, guest, len);                 \
    }                                                                      \
    static void name##_free(void *o)                                       \
    {                                                                      \
        xcp__##name##_out_free(o);                                         \
    }                                                                      \
    static const encoder name##_encoder = {                                \
        name##_create, name##_mark, name##_length, name##_parent,          \
        name##_read,   name##_data, name##_free,                           \
    };

/* A delta's parent: a VHD names it by uuid and name, a qcow2 image by
 * name (its backing file); the name is the file base would have in an
 * SR, <uuid>.<format>. */
static int vhd_out_parent(void *o, const char *uuid, const char *file,
                          char *err, size_t errlen)
{
    return xcp__vhd_out_parent(o, uuid, file, err, errlen);
}

static int qcow2_out_parent(void *o, const char *uuid, const char *file,
                            char *err, size_t errlen)
{
    (void)uuid;
    return xcp__qcow2_out_backing(o, file, err, errlen);
}

ENCODER_OF(vhd, xcp__vhd_out)
ENCODER_OF(qcow2, xcp__qcow2_out)

/* An import's image parser (sr/vhd_stream.c, sr/qcow2_stream_in.c). */
typedef struct decoder {
    int (*create)(void **out, uint64_t max_size, char *err, size_t errlen);
    int (*feed)(void *in, const void *buf, size_t n,
                xcp__vhd_stream_write_cb write, void *ctx, char *err,
                size_t errlen);
    int (*finish)(void *in, char *err, size_t errlen);
    bool (*differencing)(const void *in);
    bool (*covered)(const void *in, uint64_t offset, uint32_t *unit);
    void (*free)(void *in);
} decoder;

#define DECODER_OF(name, type)                                             \
    static int name##_in_create(void **out, uint64_t max, char *err,       \
                                size_t errlen)                             \
    {                                                                      \
        type *in = NULL;                                                   \
        int rc = xcp__##name##_in_new(&in, max, err, errlen);              \
        *out = in;                                                         \
        return rc;                                                         \
    }                                                                      \
    static int name##_in_feed(void *in, const void *buf, size_t n,         \
                              xcp__vhd_stream_write_cb write, void *ctx,   \
                              char *err, size_t errlen)                    \
    {                                                                      \
        return xcp__##name##_in_feed(in, buf, n, write, ctx, err, errlen); \
    }                                                                      \
    static int name##_in_finish(void *in, char *err, size_t errlen)        \
    {                                                                      \
        return xcp__##name##_in_finish(in, err, errlen);                   \
    }                                                                      \
    static bool name##_in_differencing(const void *in)                     \
    {                                                                      \
        return xcp__##name##_in_differencing(in);                          \
    }                                                                      \
    static bool name##_in_covered(const void *in, uint64_t off,            \
                                  uint32_t *unit)                          \
    {                                                                      \
        return xcp__##name##_in_covered(in, off, unit);                    \
    }                                                                      \
    static void name##_in_free(void *in)                                   \
    {                                                                      \
        xcp__##name##_in_free(in);                                         \
    }                                                                      \
    static const decoder name##_decoder = {                                \
        name##_in_create,       name##_in_feed,    name##_in_finish,       \
        name##_in_differencing, name##_in_covered, name##_in_free,         \
    };

DECODER_OF(vhd, xcp__vhd_in)
DECODER_OF(qcow2, xcp__qcow2_in)

/* Zeros are left unwritten over holes in pieces of this size (the
   clusters of qcow2 images). */
#define SPARSE_GRAIN ((size_t)64 * 1024)
/* XAPI's chunk frame header. */
#define CHUNK_HEADER 12

struct xcp__transfer {
    xcp__engine *e;
    bool import;
    char task[XCP_REF_MAX];
    char vdi[XCP_REF_MAX];
    char vdi_uuid[XCP_REF_MAX];
    xcp__vdi_stream *s;
    uint64_t size;        /* virtual size */
    uint64_t offset;      /* import: next byte (raw) */
    uint64_t received;    /* import: body bytes so far */
    uint64_t expected;    /* bytes the transfer should move */
    bool declared;        /* import: expected is the declared length */
    bool drop_task;       /* the task was made here (no task_id) for a
                           * local caller: destroyed at the end */
    bool made;            /* the VDI was made here (sr_id): it goes if
                             the import fails */
    int64_t progress_ms;  /* last progress update */
    xfmt format;
    uint64_t length;      /* export: bytes of the body */
    const encoder *enc;   /* export as an image: its producer */
    void *out;
    const decoder *dec;   /* import of an image: its parser */
    void *in;
    xcp__xva_export *tout; /* export as a chunked tar */
    xcp__xva_disk_in *tin; /* import of one */
    /* export with base=: what may differ from base, sent alone */
    bool delta;
    char base_uuid[XCP_REF_MAX];
    xcp__ranges changed;
    /* import in chunk frames */
    bool chunked;
    bool chunk_end;       /* the last frame came */
    uint8_t chunk_hdr[CHUNK_HEADER];
    size_t chunk_have;    /* header bytes gathered */
    uint64_t chunk_off;   /* where the frame's next data byte goes */
    uint32_t chunk_left;  /* data bytes left in the frame */
};

/* The format named by f (NULL or "": raw); -1 when unknown. */
static int format_of(const char *f)
{
    if (!f || !*f || !strcasecmp(f, "raw"))
        return XFMT_RAW;
    if (!strcasecmp(f, "vhd"))
        return XFMT_VHD;
    if (!strcasecmp(f, "qcow2"))
        return XFMT_QCOW2;
    if (!strcasecmp(f, "tar"))
        return XFMT_TAR;
    return -1;
}

struct opener {
    const xcp__transfer_req *r;
    xcp__transfer *t;
    int http;
};

/* The object of class cls (named name in errors) whose ref or uuid is
 * id: UUID_INVALID or HANDLE_INVALID [name, id] when there is none. */
static int find_obj(xcp__ctx *c, int cls, const char *name, const char *id,
                    xcp__obj **out)
{
    xcp__obj *v = xcp__db_get_cls(c->db, cls, id);

    if (!v)
        v = xcp__db_by_uuid(c->db, cls, id);
    if (!v)
        return xcp__uuid_valid(id) ? XCP__ERR_UUID_INVALID(name, id)
                                   : XCP__ERR_HANDLE_INVALID(name, id);
    *out = v;
    return 0;
}

/* The HTTP status of a failed stream open. */
static int open_status(void)
{
    const xcp_error *err = xcp_error_last();

    if (err && !strcmp(err->name, "VDI_READONLY"))
        return 403;
    if (err && !strcmp(err->name, "VDI_IN_USE"))
        return 409;
    return 500;
}

static int add_extent(void *ctx, uint64_t offset, uint64_t length)
{
    (void)offset;
    *(uint64_t *)ctx += length;
    return 0;
}

/* SR_FULL before a byte is written when the SR cannot take a raw body of
 * len bytes: what of [0, len) the VDI does not hold yet, and the image's
 * tables for it (a qcow2 L2 entry and refcount per 64 KiB cluster, a VHD
 * bitmap per 2 MiB block: under 1/4096 of it), plus a few clusters. Zeros
 * in the body are not written, so this errs on the safe side. */
static int room_for(xcp__ctx *c, xcp__obj *vdi, xcp__vdi_stream *s,
                    uint64_t len)
{
    xcp__obj *sr = xcp__db_get_cls(c->db, C(SR),
                                   xcp__obj_str(vdi, F(VDI, SR)));
    uint64_t held = 0, need;

    if (!sr || xcp__vdi_stream_extents(s, 0, len, add_extent, &held) < 0) {
        xcp_error_clear();
        return 0;               /* the writes will tell */
    }
    need = len > held ? len - held : 0;
    if (need == 0)
        return 0;
    return xcp__sr_room(c, sr, need + need / 4096 + ((uint64_t)256 << 10));
}

/* An export's base (base=): what of the VDI may differ from it, as
 * xcp__vdi_delta finds it. XAPI's chunked tar carries no delta. */
static int open_base(xcp__ctx *c, struct opener *o, xcp__obj *vdi)
{
    xcp__transfer *t = o->t;
    xcp__obj *base;
    const char *how = "";
    int rc;

    if ((rc = find_obj(c, C(VDI), "VDI", o->r->base, &base)) < 0) {
        o->http = 404;
        return rc;
    }
    if (t->format == XFMT_TAR) {
        o->http = 400;
        return XCP__ERR_INVALID_VALUE("base", o->r->base);
    }
    if ((rc = xcp__vdi_delta(c, vdi, base, &t->changed, &how)) < 0) {
        o->http = 500;
        return rc;
    }
    t->delta = true;
    snprintf(t->base_uuid, sizeof(t->base_uuid), "%s", xcp__obj_uuid(base));
    xcp__log(XCP__LOG_INFO, "export of VDI %s relative to %s: %llu bytes "
             "in %zu ranges may differ (%s)", t->vdi_uuid, t->base_uuid,
             (unsigned long long)xcp__ranges_bytes(&t->changed),
             t->changed.n, how);
    return 0;
}

/* Checks in order, then the task and the stream, all or nothing. */
static int open_txn(xcp__ctx *c, void *arg)
{
    struct opener *o = arg;
    const xcp__transfer_req *r = o->r;
    xcp__transfer *t = o->t;
    xcp__obj *vdi = NULL, *task = NULL;
    int rc;

    if (r->session && !xcp__db_get_cls(c->db, C(session), r->session)) {
        o->http = 401;
        return XCP__ERR_SESSION_INVALID(r->session);
    }
    if (r->task_id && *r->task_id &&
        !(task = xcp__db_get_cls(c->db, C(task), r->task_id))) {
        o->http = 404;
        return xcp__handle_invalid(C(task), r->task_id);
    }
    if (format_of(r->format) < 0) {
        o->http = 404;
        return XCP__ERR_INVALID_VALUE("format", r->format);
    }
    t->format = (xfmt)format_of(r->format);
    if (r->import && r->chunked && t->format != XFMT_RAW) {
        o->http = 400;
        return XCP__ERR_INVALID_VALUE("chunked", r->format);
    }
    t->chunked = r->import && r->chunked;
    if (!r->vdi || !*r->vdi) {
        o->http = 400;
        return XCP__ERR_INVALID_VALUE("vdi", "");
    }
    if ((rc = find_obj(c, C(VDI), "VDI", r->vdi, &vdi)) < 0) {
        o->http = 404;
        return rc;
    }
    snprintf(t->vdi, sizeof(t->vdi), "%s", vdi->ref);
    snprintf(t->vdi_uuid, sizeof(t->vdi_uuid), "%s", xcp__obj_uuid(vdi));
    if ((rc = xcp__vdi_stream_open(c, vdi,
                                   r->import ? "import_raw_vdi" : NULL,
                                   &t->s)) < 0) {
        o->http = open_status();
        return rc;
    }
    t->size = xcp__vdi_stream_size(t->s);
    t->expected = t->size;
    if (!r->import && r->base && *r->base &&
        (rc = open_base(c, o, vdi)) < 0)
        return rc;
    if (r->import && r->content_length != UINT64_MAX) {
        if (t->format == XFMT_RAW && !t->chunked &&
            r->content_length > t->size) {
            o->http = 400;
            return XCP__ERR_VDI_IO_ERROR("the body is larger than the VDI");
        }
        t->expected = r->content_length;
        t->declared = true;
        if (t->format == XFMT_RAW && !t->chunked &&
            (rc = room_for(c, vdi, t->s, r->content_length)) < 0)
            return rc;
    }
    if (!task) {
        if ((rc = xcp__task_new(c, r->import ? "VDI import" : "VDI export",
                                "", &task)) < 0) {
            o->http = 500;
            return rc;
        }
        t->drop_task = r->drop_task;
    }
    snprintf(t->task, sizeof(t->task), "%s", task->ref);
    return 0;
}

struct ender {
    xcp__transfer *t;
    xcp_value *error;        /* NULL: success */
    double progress;         /* < 0: finishing */
};

static int task_txn(xcp__ctx *c, void *arg)
{
    struct ender *en = arg;
    xcp__obj *task = xcp__db_get_cls(c->db, C(task), en->t->task);
    xcp__obj *vdi;
    xcp_value res;
    int rc;

    if (!task)
        return 0; /* destroyed by the client meanwhile */
    if (en->progress >= 0)
        return xcp__db_set_float(c->db, task, F(task, progress),
                                 en->progress);
    res.kind = XCP_VAL_NONE;
    if (!en->error && en->t->import &&
        (rc = xcp_value_set_string(&res, en->t->vdi)) < 0)
        return rc;
    rc = xcp__task_complete(c, task, &res, en->error);
    xcp_value_dispose(&res);
    /* The import changed the disk's contents and maybe its usage. */
    if (rc == 0 && !en->error && en->t->import &&
        (vdi = xcp__db_get_cls(c->db, C(VDI), en->t->vdi)))
        xcp__vdi_refresh(c, vdi);
    return rc;
}

/* Complete t's task (error NULL: success), keeping the thread's error. */
static void complete(xcp__transfer *t, xcp_value *error)
{
    struct ender en;
    xcp__saved_error saved;

    en.t = t;
    en.error = error;
    en.progress = -1;
    xcp__error_save(&saved);
    xcp__engine_txn(t->e, task_txn, &en);
    xcp__error_restore(&saved);
}

void xcp__transfer_fail_task(xcp__engine *e, const char *task_ref)
{
    xcp__transfer t;
    xcp_value err;

    if (!task_ref || !*task_ref || xcp__error_to_value(&err) < 0)
        return;
    memset(&t, 0, sizeof(t));
    t.e = e;
    snprintf(t.task, sizeof(t.task), "%s", task_ref);
    complete(&t, &err);
    xcp_value_dispose(&err);
}

/* An sr/ stream library's failure as the thread's error. */
static int stream_error(int rc, const char *msg)
{
    if (xcp_error_last())
        return -1; /* the VDI stream's own, set by a callback */
    (void)rc;
    return XCP__ERR_VDI_IO_ERROR(msg);
}

/* Read [offset, offset + n) of the VDI: only what may hold data is read;
 * the rest is zeroed (only the rest: a buffer of data is not cleared
 * first). */
struct span {
    xcp__vdi_stream *s;
    uint64_t base;
    uint64_t done;      /* filled up to here */
    uint8_t *buf;
};

static int read_extent(void *ctx, uint64_t offset, uint64_t length)
{
    struct span *sp = ctx;

    if (offset > sp->done)
        memset(sp->buf + (sp->done - sp->base), 0,
               (size_t)(offset - sp->done));
    sp->done = offset + length;
    return xcp__vdi_stream_read(sp->s, offset, sp->buf + (offset - sp->base),
                                (size_t)length) < 0 ? -1 : 0;
}

static int read_sparse(void *ctx, uint64_t offset, void *buf, size_t n)
{
    xcp__transfer *t = ctx;
    struct span sp;

    sp.s = t->s;
    sp.base = sp.done = offset;
    sp.buf = buf;
    if (xcp__vdi_stream_extents(t->s, offset, n, read_extent, &sp) != 0)
        return -1;
    if (sp.done < offset + n)
        memset(sp.buf + (sp.done - offset), 0,
               (size_t)(offset + n - sp.done));
    return 0;
}

/* A raw delta's [offset, offset + n): the ranges that may differ from
 * base as the VDI shows them, zeros elsewhere (as vhd-tool's raw stream
 * relative to a base sends it). */
static int read_delta(xcp__transfer *t, uint64_t offset, void *buf, size_t n)
{
    const xcp__range *v = t->changed.v;
    size_t lo = 0, hi = t->changed.n, mid;
    uint64_t a, b, end = offset + n;

    memset(buf, 0, n);
    while (lo < hi) {           /* the first range ending after offset */
        mid = lo + (hi - lo) / 2;
        if (v[mid].off + v[mid].len <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < t->changed.n && v[lo].off < end; lo++) {
        a = v[lo].off > offset ? v[lo].off : offset;
        b = v[lo].off + v[lo].len < end ? v[lo].off + v[lo].len : end;
        if (read_sparse(t, a, (uint8_t *)buf + (a - offset),
                        (size_t)(b - a)) < 0)
            return -1;
    }
    return 0;
}

static int mark_extent(void *ctx, uint64_t offset, uint64_t length)
{
    xcp__transfer *t = ctx;

    t->enc->mark(t->out, offset, length);
    return 0;
}

static int put(void *ctx, uint64_t offset, const void *buf, size_t n);

/* The format's state once the VDI is open: an export's image layout
 * (which blocks hold data: one pass over the disk's map, not its
 * bytes), an import's parser. */
static int codec_open(xcp__transfer *t)
{
    char err[256];
    int rc;

    err[0] = '\0';
    t->length = t->size;
    if (t->format == XFMT_RAW)
        return 0;
    if (t->format == XFMT_TAR && t->import)
        return xcp__xva_disk_in_new(&t->tin, t->size, put, t) < 0 ? -1 : 0;
    if (t->format == XFMT_TAR) {
        /* Its length is known once it is sent: UINT64_MAX until then. */
        t->length = UINT64_MAX;
        return xcp__xva_disk_export_new(&t->tout, t->e, t->s, t->size) < 0
                   ? -1 : 0;
    }
    if (t->import) {
        t->dec = t->format == XFMT_VHD ? &vhd_decoder : &qcow2_decoder;
        rc = t->dec->create(&t->in, t->size, err, sizeof(err));
        return rc < 0 ? stream_error(rc, err) : 0;
    }
    t->enc = t->format == XFMT_VHD ? &vhd_encoder : &qcow2_encoder;
    if ((rc = t->enc->create(&t->out, t->size, err, sizeof(err))) < 0)
        return stream_error(rc, err);
    if (t->delta) {
        size_t i;

        if ((rc = t->enc->parent(t->out, t->base_uuid, err,
                                 sizeof(err))) < 0)
            return stream_error(rc, err);
        for (i = 0; i < t->changed.n; i++)
            mark_extent(t, t->changed.v[i].off, t->changed.v[i].len);
    } else if (xcp__vdi_stream_extents(t->s, 0, t->size, mark_extent, t)) {
        return -1;
    }
    t->length = t->expected = t->enc->length(t->out);
    return 0;
}

static void codec_free(xcp__transfer *t)
{
    if (t->dec)
        t->dec->free(t->in);
    xcp__xva_disk_in_free(t->tin);
    xcp__xva_export_free(t->tout);
    t->tin = NULL;
    t->tout = NULL;
    if (t->enc)
        t->enc->free(t->out);
    t->in = NULL;
    t->out = NULL;
}

static void transfer_free(xcp__transfer *t)
{
    codec_free(t);
    xcp__ranges_dispose(&t->changed);
    free(t);
}

/* ---- a new VDI for an import by sr_id, as XAPI's handler makes one ---- */

struct maker {
    const xcp__transfer_req *r;
    char ref[XCP_REF_MAX];
    int http;
};

static int make_txn(xcp__ctx *c, void *arg)
{
    struct maker *m = arg;
    const xcp__transfer_req *r = m->r;
    xcp__obj *sr = NULL, *vdi;
    int rc;

    if (r->session && !xcp__db_get_cls(c->db, C(session), r->session)) {
        m->http = 401;
        return XCP__ERR_SESSION_INVALID(r->session);
    }
    m->http = 400;
    /* The size of an image's disk is known only once its header came;
       XAPI takes raw bodies of a declared length only, too. */
    if (format_of(r->format) != XFMT_RAW)
        return XCP__ERR_NOT_IMPLEMENTED("import_raw_vdi of an image into "
                                        "an SR");
    if (r->chunked || r->content_length == UINT64_MAX ||
        r->content_length == 0 || r->content_length > INT64_MAX)
        return XCP__ERR_INVALID_VALUE("content-length", "");
    m->http = 404;
    if ((rc = find_obj(c, C(SR), "SR", r->sr, &sr)) < 0)
        return rc;
    m->http = 500;
    if ((rc = xcp__vdi_new(c, sr, "Imported VDI", "",
                           (int64_t)r->content_length, "user", NULL,
                           &vdi)) < 0)
        return rc;
    snprintf(m->ref, sizeof(m->ref), "%s", vdi->ref);
    return 0;
}

static int unmake_txn(xcp__ctx *c, void *arg)
{
    xcp__obj *vdi = xcp__db_get_cls(c->db, C(VDI), (const char *)arg);

    return vdi ? xcp__vdi_delete(c, vdi) : 0;
}

/* Destroy a VDI made for a failed import, keeping the thread's error. */
static void unmake(xcp__engine *e, const char *ref)
{
    xcp__saved_error saved;

    xcp__error_save(&saved);
    xcp__engine_txn(e, unmake_txn, (void *)ref);
    xcp__error_restore(&saved);
}

static int begin(xcp__engine *e, const xcp__transfer_req *r,
                 xcp__transfer **out, int *http, bool made);

/* How long an import waits for another writer of its VDI to go before
 * VDI_IN_USE, and how often it looks. */
#define IN_USE_WAIT_MS 2000
#define IN_USE_NAP_MS 50

int xcp__transfer_begin(xcp__engine *e, const xcp__transfer_req *r,
                        xcp__transfer **out, int *http)
{
    xcp__transfer_req with;
    struct maker m;

    if (!r->import || (r->vdi && *r->vdi) || !r->sr || !*r->sr)
        return begin(e, r, out, http, false);
    m.r = r;
    m.http = 500;
    if (xcp__engine_txn(e, make_txn, &m) < 0) {
        *http = m.http;
        xcp__transfer_fail_task(e, r->task_id);
        return -1;
    }
    with = *r;
    with.vdi = m.ref;
    if (begin(e, &with, out, http, true) < 0) {
        unmake(e, m.ref);
        return -1;
    }
    return 0;
}

static int begin(xcp__engine *e, const xcp__transfer_req *r,
                 xcp__transfer **out, int *http, bool made)
{
    xcp__transfer *t;
    struct opener o;
    int waited_ms = 0;

    *http = 500;
    if (!(t = xcp__calloc(1, sizeof(*t))))
        return xcp__oom();
    t->e = e;
    t->made = made;
    t->import = r->import;
    o.r = r;
    o.t = t;
    o.http = 500;
    while (xcp__engine_txn(e, open_txn, &o) < 0) {
        xcp__saved_error saved;
        struct timespec nap = {0, IN_USE_NAP_MS * 1000000L};
        const xcp_error *err = xcp_error_last();

        /* Xen Orchestra's upload of unknown length comes right after its
           probe (the same PUT without a body, dropped at the 200): the
           probe's writer may still be closing. Another writer gets a
           moment to go before the import is refused. */
        if (r->import && err && !strcmp(err->name, "VDI_IN_USE") &&
            waited_ms < IN_USE_WAIT_MS) {
            xcp__error_save(&saved);
            xcp__vdi_stream_close(t->s);
            xcp__error_restore(&saved);
            t->s = NULL;
            nanosleep(&nap, NULL);
            waited_ms += IN_USE_NAP_MS;
            o.http = 500;
            continue;
        }
        *http = o.http;
        /* Rolled back: a task made here is gone with it. */
        xcp__error_save(&saved);
        xcp__vdi_stream_close(t->s);
        xcp__error_restore(&saved);
        xcp__transfer_fail_task(e, r->task_id);
        xcp__ranges_dispose(&t->changed);
        free(t);
        return -1;
    }
    t->progress_ms = xcp__now_ms();
    if (codec_open(t) < 0) {
        t->made = false;         /* the caller destroys it */
        xcp__transfer_end(t, 0); /* fails the task, ours or the client's */
        return -1;
    }
    *http = 200;
    *out = t;
    return 0;
}

const char *xcp__transfer_task(const xcp__transfer *t)
{
    return t->task;
}

const char *xcp__transfer_vdi_uuid(const xcp__transfer *t)
{
    return t->vdi_uuid;
}

uint64_t xcp__transfer_size(const xcp__transfer *t)
{
    return t->length;
}

/* Progress at most every 500 ms: each update is a commit (and events). */
static void progress(xcp__transfer *t, uint64_t pos)
{
    int64_t now = xcp__now_ms();
    struct ender en;
    xcp__saved_error saved;

    if (now - t->progress_ms < 500 || !t->expected)
        return;
    t->progress_ms = now;
    en.t = t;
    en.error = NULL;
    en.progress = (double)pos / (double)t->expected;
    if (en.progress > 0.99)
        en.progress = 0.99;
    xcp__error_save(&saved);
    xcp__engine_txn(t->e, task_txn, &en);
    xcp__error_restore(&saved);
}

static int found_data(void *ctx, uint64_t offset, uint64_t length)
{
    (void)ctx;
    (void)offset;
    (void)length;
    return 1;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Whether piece [offset, offset + n) of buf need not be written: zeros
   over what holds no data yet. */
static int skippable(xcp__transfer *t, uint64_t offset, const uint8_t *p,
                     size_t n)
{
    int rc;

    if (!all_zero(p, n))
        return 0;
    rc = xcp__vdi_stream_extents(t->s, offset, n, found_data, NULL);
    return rc < 0 ? -1 : rc == 0;
}

/* Guest bytes [offset, offset + n) into the VDI, within its size. Zero
   pieces (aligned on SPARSE_GRAIN) over what holds no data are not
   written: the image stays sparse. */
static int put(void *ctx, uint64_t offset, const void *buf, size_t n)
{
    xcp__transfer *t = ctx;
    const uint8_t *p = buf;
    size_t run = 0, piece;
    int skip;

    if (offset > t->size || n > t->size - offset)
        return XCP__ERR_VDI_IO_ERROR("write past the end of the VDI");
    while (n > 0) {
        piece = SPARSE_GRAIN - (size_t)((offset + run) % SPARSE_GRAIN);
        if (piece > n - run)
            piece = n - run;
        if ((skip = skippable(t, offset + run, p + run, piece)) < 0)
            return -1;
        if (!skip) {
            run += piece;
            if (run < n)
                continue;
        }
        if (run && xcp__vdi_stream_write(t->s, offset, p, run) < 0)
            return -1;
        if (skip)
            run += piece;
        offset += run;
        p += run;
        n -= run;
        run = 0;
    }
    if (offset > t->offset)
        t->offset = offset;
    return 0;
}

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;

    while (n--)
        v = v << 8 | p[n];
    return v;
}

/* XAPI's chunk frames: headers gathered across buffers, data written
 * where each frame says. */
static int put_chunked(xcp__transfer *t, const uint8_t *p, size_t n)
{
    size_t take;

    while (n > 0) {
        if (t->chunk_end)
            return XCP__ERR_VDI_IO_ERROR("data after the last chunk");
        if (t->chunk_left == 0) {
            take = CHUNK_HEADER - t->chunk_have;
            take = take < n ? take : n;
            memcpy(t->chunk_hdr + t->chunk_have, p, take);
            t->chunk_have += take;
            p += take;
            n -= take;
            if (t->chunk_have < CHUNK_HEADER)
                break;
            t->chunk_have = 0;
            t->chunk_off = le(t->chunk_hdr, 8);
            t->chunk_left = (uint32_t)le(t->chunk_hdr + 8, 4);
            t->chunk_end = t->chunk_off == 0 && t->chunk_left == 0;
            continue;
        }
        take = t->chunk_left < n ? t->chunk_left : n;
        if (put(t, t->chunk_off, p, take) < 0)
            return -1;
        t->chunk_off += take;
        t->chunk_left -= (uint32_t)take;
        p += take;
        n -= take;
    }
    return 0;
}

int xcp__transfer_write(xcp__transfer *t, const void *buf, size_t n)
{
    char err[256];
    int rc;

    if (!t->import)
        return XCP__ERR_INVALID_VALUE("transfer", "not an import");
    err[0] = '\0';
    if (t->tin) {
        if (xcp__xva_disk_in_feed(t->tin, buf, n) < 0)
            return -1;
    } else if (t->in) {
        rc = t->dec->feed(t->in, buf, n, put, t, err, sizeof(err));
        if (rc != 0)
            return stream_error(rc, err);
    } else if (t->chunked) {
        if (put_chunked(t, buf, n) < 0)
            return -1;
    } else if (put(t, t->offset, buf, n) < 0) {
        return -1;
    }
    t->received += n;
    progress(t, t->declared ? t->received : t->offset);
    return 0;
}

int xcp__transfer_read(xcp__transfer *t, uint64_t offset, void *buf,
                       size_t n, size_t *got)
{
    char err[256];
    int rc;

    *got = 0;
    if (t->import)
        return XCP__ERR_INVALID_VALUE("transfer", "not an export");
    if (offset >= t->length)
        return 0;
    if (n > t->length - offset)
        n = (size_t)(t->length - offset);
    if (t->tout) {
        /* read in order: how far the disk is sent is the progress */
        if (xcp__xva_export_read(t->tout, buf, n, got) < 0)
            return -1;
        progress(t, offset + *got < t->size ? offset + *got : t->size);
        return 0;
    } else if (t->out) {
        err[0] = '\0';
        rc = t->enc->read(t->out, offset, buf, n, got, read_sparse, t, err,
                          sizeof(err));
        if (rc < 0)
            return stream_error(rc, err);
    } else {
        if ((t->delta ? read_delta(t, offset, buf, n)
                      : read_sparse(t, offset, buf, n)) < 0)
            return -1;
        *got = n;
    }
    progress(t, offset + *got);
    return 0;
}

/* ---- exports in pieces: file runs sent without being read ---- */

/* A file piece spans at most this much (sendfile(2) takes it in one
   call; bytes pieces are bounded by the caller's buffer). */
#define FILE_PIECE_MAX ((uint64_t)16 << 20)

struct first_extent {
    bool found;
    uint64_t off, len;
};

static int first_extent(void *ctx, uint64_t offset, uint64_t length)
{
    struct first_extent *f = ctx;

    f->found = true;
    f->off = offset;
    f->len = length;
    return 1;
}

/* The disk's bytes [g, g + m) (m <= max_file), as much of them from g on
   as one piece holds: zeros or bytes read into buf (at most n), or a run
   of an image file. */
static int guest_piece(xcp__transfer *t, uint64_t g, uint64_t m, void *buf,
                       size_t n, xcp__piece *p)
{
    struct first_extent f = {false, 0, 0};
    uint64_t pos, len;
    int fd, rc;

    rc = xcp__vdi_stream_extents(t->s, g, m, first_extent, &f);
    if (rc < 0)
        return -1;
    if (!f.found || f.off > g) {        /* a hole: zeros */
        len = f.found ? f.off - g : m;
        p->n = (size_t)(len < n ? len : n);
        memset(buf, 0, p->n);
        return 0;
    }
    len = f.off + f.len - g < m ? f.off + f.len - g : m;
    if (xcp__vdi_stream_map(t->s, g, len, &fd, &pos, &len) < 0)
        return -1;
    if (fd >= 0) {
        p->fd = fd;
        p->pos = pos;
        p->n = (size_t)len;
        return 0;
    }
    p->n = (size_t)(len < n ? len : n);
    return xcp__vdi_stream_read(t->s, g, buf, p->n);
}

int xcp__transfer_read_piece(xcp__transfer *t, uint64_t offset, void *buf,
                             size_t n, xcp__piece *p)
{
    uint64_t left, g = offset, m;
    int rc;

    p->n = 0;
    p->fd = -1;
    p->pos = 0;
    /* XAPI's chunked tar and raw deltas go as bytes. */
    if (t->import || t->tout || (t->delta && !t->out) || offset >= t->length)
        return xcp__transfer_read(t, offset, buf, n, &p->n);
    left = t->length - offset;
    m = left < FILE_PIECE_MAX ? left : FILE_PIECE_MAX;
    if (t->out && !t->enc->data(t->out, offset, &g, &m)) {
        /* the format's own bytes, up to the next data (m 0: the encoder
           cannot tell, and its read says why) */
        return xcp__transfer_read(t, offset, buf, m && m < n ? (size_t)m : n,
                                  &p->n);
    }
    if (m > FILE_PIECE_MAX)
        m = FILE_PIECE_MAX;
    xcp_error_clear();
    if ((rc = guest_piece(t, g, m, buf, n, p)) < 0)
        return stream_error(rc, "reading the disk");
    progress(t, offset + p->n);
    return 0;
}

/* Zeros over [offset, offset + len) of the VDI. */
static int put_zeros(xcp__transfer *t, uint64_t offset, uint64_t len)
{
    static const uint8_t zeros[64 * 1024];
    size_t n;

    while (len > 0) {
        n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
        if (put(t, offset, zeros, n) < 0)
            return -1;
        offset += n;
        len -= n;
    }
    return 0;
}

/* An image without a parent (a dynamic VHD, a qcow2 without a backing
 * file) says zeros where it has no block or cluster: what the VDI held
 * there goes. */
static int clear_uncovered(void *ctx, uint64_t offset, uint64_t length)
{
    xcp__transfer *t = ctx;
    uint64_t end = offset + length, next;
    uint32_t bs;

    while (offset < end) {
        bool held = t->dec->covered(t->in, offset, &bs);

        next = (offset / bs + 1) * bs;
        if (next > end)
            next = end;
        if (!held && put_zeros(t, offset, next - offset) < 0)
            return -1;
        offset = next;
    }
    return 0;
}

/* What an import's format still needs once the body ended: 0, or the
 * thread's error. */
static int codec_finish(xcp__transfer *t)
{
    char err[256];
    int rc;

    if (t->chunked && !t->chunk_end)
        return XCP__ERR_VDI_IO_ERROR("the body ended before its last "
                                     "chunk");
    if (t->tin)
        return xcp__xva_disk_in_finish(t->tin) < 0 ? -1 : 0;
    if (!t->in)
        return 0;
    err[0] = '\0';
    if ((rc = t->dec->finish(t->in, err, sizeof(err))) < 0)
        return stream_error(rc, err);
    if (t->dec->differencing(t->in))
        return 0;
    return xcp__vdi_stream_extents(t->s, 0, t->size, clear_uncovered, t)
               ? -1 : 0;
}

int xcp__transfer_end(xcp__transfer *t, int ok)
{
    xcp__saved_error saved;
    xcp_value err;
    int rc = 0, frc;

    if (!t)
        return 0;
    if (ok && t->import && codec_finish(t) < 0) {
        ok = 0;
        rc = -1;
    }
    xcp__error_save(&saved);
    frc = xcp__vdi_stream_close(t->s);
    xcp__error_restore(&saved);
    t->s = NULL;
    if (ok && frc < 0) {
        XCP__ERR_VDI_IO_ERROR("cannot flush the VDI");
        ok = 0;
        rc = -1;
    }
    if (ok && t->declared && t->received != t->expected) {
        XCP__ERR_VDI_IO_ERROR("transfer incomplete");
        ok = 0;
        rc = -1;
    }
    if (ok) {
        complete(t, NULL);
    } else {
        if (!xcp_error_last())
            XCP__ERR_VDI_IO_ERROR("transfer incomplete");
        if (xcp__error_to_value(&err) < 0)
            xcp_value_set_array(&err, 0);
        complete(t, &err);
        xcp_value_dispose(&err);
        if (t->made)    /* no half-made VDI is left behind */
            unmake(t->e, t->vdi);
    }
    if (t->drop_task)   /* nobody can ask for it */
        xcp__task_drop(t->e, t->task);
    transfer_free(t);
    return rc;
}

/* ---- to and from a file descriptor (xcp_vdi_import, xcp_vdi_export) ---- */

#define FD_BLOCK ((size_t)1 << 20)
#define FD_PROGRESS_MS 250

struct fd_progress {
    void (*fn)(void *, uint64_t, uint64_t);
    void *ctx;
    uint64_t total;
    int64_t last_ms;
};

static void fd_progress(struct fd_progress *p, uint64_t done, bool last)
{
    int64_t now;

    if (!p->fn)
        return;
    now = xcp__now_ms();
    if (!last && now - p->last_ms < FD_PROGRESS_MS)
        return;
    p->last_ms = now;
    p->fn(p->ctx, done, p->total);
}

static int fd_import(xcp__transfer *t, int fd, uint8_t *buf,
                     struct fd_progress *p)
{
    uint64_t done = 0;
    ssize_t n;

    for (;;) {
        n = read(fd, buf, FD_BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return XCP__ERR_VDI_IO_ERROR(strerror(errno));
        if (n == 0)
            return 0;
        if (xcp__transfer_write(t, buf, (size_t)n) < 0)
            return -1;
        done += (uint64_t)n;
        fd_progress(p, done, false);
    }
}

/* All of [p, p + n) to fd. */
static int fd_write_all(int fd, const uint8_t *p, size_t n)
{
    return xcp__write_all(fd, p, n) < 0
               ? XCP__ERR_VDI_IO_ERROR(strerror(errno))
               : 0;
}

/* A file run of an export to fd: sendfile(2) (the kernel copies, or
   shares, the pages), else, where it cannot (*no_sendfile set from then
   on), read and written through buf. */
static int fd_send_run(int fd, const xcp__piece *pc, uint8_t *buf,
                       bool *no_sendfile)
{
    off_t at = (off_t)pc->pos;
    size_t left = pc->n;
    ssize_t r;

    while (left > 0 && !*no_sendfile) {
        r = sendfile(fd, pc->fd, &at, left);
        if (r > 0) {
            left -= (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EINVAL || errno == ENOSYS)) {
            *no_sendfile = true;
            break;
        }
        return XCP__ERR_VDI_IO_ERROR(strerror(r < 0 ? errno : EIO));
    }
    while (left > 0) {
        r = pread(pc->fd, buf, left < FD_BLOCK ? left : FD_BLOCK, at);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return XCP__ERR_VDI_IO_ERROR(strerror(r < 0 ? errno : EIO));
        if (fd_write_all(fd, buf, (size_t)r) < 0)
            return -1;
        at += r;
        left -= (size_t)r;
    }
    return 0;
}

static int fd_export(xcp__transfer *t, int fd, uint8_t *buf,
                     struct fd_progress *p)
{
    bool no_sendfile = getenv("XCP_NO_SENDFILE") != NULL;
    uint64_t off = 0;
    xcp__piece pc;

    for (;;) {
        if (xcp__transfer_read_piece(t, off, buf, FD_BLOCK, &pc) < 0)
            return -1;
        if (pc.n == 0)
            return 0;
        if ((pc.fd >= 0 ? fd_send_run(fd, &pc, buf, &no_sendfile)
                        : fd_write_all(fd, buf, pc.n)) < 0)
            return -1;
        off += pc.n;
        fd_progress(p, off, false);
    }
}

int xcp__transfer_fd(xcp__engine *e, const char *session, const char *vdi,
                     bool import, int fd, const char *format,
                     const char *base,
                     void (*progress)(void *, uint64_t, uint64_t),
                     void *ctx)
{
    xcp__transfer_req r;
    xcp__transfer *t;
    struct fd_progress p = {progress, ctx, 0, 0};
    struct stat st;
    uint8_t *buf;
    int http, rc;

    memset(&r, 0, sizeof(r));
    r.import = import;
    r.session = session;
    r.vdi = vdi;
    r.format = format;
    r.base = base;
    r.content_length = UINT64_MAX;
    r.drop_task = true;
    if (import && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        off_t pos = lseek(fd, 0, SEEK_CUR);

        if (pos >= 0 && st.st_size >= pos)
            r.content_length = (uint64_t)(st.st_size - pos);
    }
    if (!(buf = malloc(FD_BLOCK)))
        return xcp__oom();
    if (xcp__transfer_begin(e, &r, &t, &http) < 0) {
        free(buf);
        return -1;
    }
    p.total = import ? (r.content_length != UINT64_MAX ? r.content_length
                                                       : 0)
                     : xcp__transfer_size(t);
    if (p.total == UINT64_MAX)
        p.total = 0; /* a tar's length is known at its end */
    fd_progress(&p, 0, true);
    rc = import ? fd_import(t, fd, buf, &p) : fd_export(t, fd, buf, &p);
    free(buf);
    if (xcp__transfer_end(t, rc == 0) < 0 || rc < 0)
        return -1;
    fd_progress(&p, p.total, true);
    return 0;
}
