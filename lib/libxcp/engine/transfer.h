/*
 * Raw VDI transfers, the XenAPI side (engine/transfer.c): what the server's
 * /import_raw_vdi and /export_raw_vdi (server/transfer.c) call once the
 * request's credentials are known. Checks the session, task and VDI,
 * opens the VDI's image through the SR layer's streams, reports progress
 * into the task and completes it as the engine completes Async. tasks.
 */
#ifndef XCP_ENGINE_TRANSFER_H
#define XCP_ENGINE_TRANSFER_H

#include "engine.h"

typedef struct xcp__transfer xcp__transfer;

/* What a transfer is asked to do; strings are borrowed for the call. */
typedef struct xcp__transfer_req {
    bool import;                /* else export */
    const char *session;        /* NULL: a trusted caller (local root) */
    const char *task_id;        /* the client's task; NULL or "": one is
                                 * made (and goes if the begin fails) */
    const char *vdi;            /* ref or uuid */
    const char *sr;             /* import without vdi: a new VDI "Imported
                                 * VDI" of content_length bytes in this SR
                                 * (ref or uuid), raw bodies only, gone
                                 * again if the import fails */
    uint64_t content_length;    /* import: UINT64_MAX when not declared */
    const char *format;         /* "raw" (NULL, "": raw), "vhd" or
                                 * "qcow2", any case; others:
                                 * INVALID_VALUE (404) */
    bool chunked;               /* import: raw in XAPI's chunk framing */
    const char *base;           /* export: NULL or "": the whole disk;
                                 * else a VDI (ref or uuid: an earlier
                                 * snapshot) to send the delta from, see
                                 * xcp__transfer_begin */
    bool drop_task;             /* the task made here (no task_id) is
                                 * destroyed at the end: local callers,
                                 * whose task nobody else can name */
} xcp__transfer_req;

/*
 * Begin a transfer: SESSION_INVALID (HTTP 401), the task unknown (404),
 * a format other than raw, vhd or qcow2 (INVALID_VALUE ["format", f],
 * 404),
 * chunked framing of another format than raw (INVALID_VALUE ["chunked",
 * format], 400),
 * no VDI given (INVALID_VALUE, 400; with an SR, a raw import of a
 * declared length makes one, other formats NOT_IMPLEMENTED, 400) or
 * unknown (UUID_INVALID or HANDLE_INVALID, 404), for an import VDI_READONLY (403), VDI_IN_USE
 * (another writer still there after 2 s: Xen Orchestra uploads right
 * after a probe whose writer may still be closing)
 * (409) or a body larger than the VDI (VDI_IO_ERROR, 400); anything else
 * 500.
 * An export with a base sends only what may differ from it
 * (xcp__vdi_delta: no data is read to find it): vhd, a differencing VHD
 * whose parent is base (its uuid, "<uuid>.vhd"); qcow2, an image whose
 * backing file is "<base uuid>.qcow2"; raw, the whole disk with zeros
 * where nothing changed, as vhd-tool sends one; tar refuses it
 * (INVALID_VALUE ["base", base], 400). A base not found is UUID_INVALID
 * or HANDLE_INVALID (404). *http is the status to answer with (200 on
 * success). On failure
 * the client's task fails with the error (xcp__transfer_fail_task).
 */
int xcp__transfer_begin(xcp__engine *e, const xcp__transfer_req *r,
                        xcp__transfer **out, int *http);

/* Fail the client's task task_ref (NULL or "": none) with the thread's
 * error, which is kept: for failures before xcp__transfer_begin. */
void xcp__transfer_fail_task(xcp__engine *e, const char *task_ref);

/* The task's ref, the VDI's uuid (valid until xcp__transfer_end) and the
 * byte count of an export (the VDI's virtual size for raw, the image's
 * length for vhd; an import's: the VDI's virtual size). */
const char *xcp__transfer_task(const xcp__transfer *t);
const char *xcp__transfer_vdi_uuid(const xcp__transfer *t);
uint64_t xcp__transfer_size(const xcp__transfer *t);

/* Import: the next n bytes of the body, decoded as the format and the
 * framing say (VDI_IO_ERROR for a write past the end or a malformed
 * image or frame). */
int xcp__transfer_write(xcp__transfer *t, const void *buf, size_t n);

/* Export: up to n bytes at offset into buf, *got of them (0 at the end). */
int xcp__transfer_read(xcp__transfer *t, uint64_t offset, void *buf,
                       size_t n, size_t *got);

/* A piece of an export's body: n bytes, in the caller's buffer (fd -1)
 * or, as they are, in file fd from pos (the transfer's own descriptor,
 * valid until xcp__transfer_end: for sendfile(2), never written). */
typedef struct xcp__piece {
    size_t n;
    int fd;
    uint64_t pos;
} xcp__piece;

/* Export: the body's next piece at offset, p->n 0 at the end: the bytes
 * the format makes and zeros into buf (at most n), the disk's data, when
 * it lies as it is in an image file, as a run of that file of up to
 * 16 MiB (raw and image exports; a chunked tar and a raw delta always
 * come as bytes). Errors as xcp__transfer_read. */
int xcp__transfer_read_piece(xcp__transfer *t, uint64_t offset, void *buf,
                             size_t n, xcp__piece *p);

/* End the transfer (ok: the transport succeeded) and complete its task:
 * success with the VDI's ref (import) or none (export), else failure
 * with the thread's error (VDI_IO_ERROR "transfer incomplete" when there
 * is none). -1 when an ok transfer still failed (a flush, an import
 * shorter than declared, a chunked body without its last frame, an image
 * cut short). The import of an image without a parent leaves zeros
 * where the image has no block or cluster and the VDI had data. Frees t (NULL accepted). */
int xcp__transfer_end(xcp__transfer *t, int ok);

/*
 * The whole transfer between the VDI and a file descriptor, for
 * xcp_vdi_import (import: fd read to its end) and xcp_vdi_export (the
 * body written to fd; relative to base when not NULL, see
 * xcp__transfer_begin), in session (NULL: trusted), reporting to
 * progress (may be NULL) as it goes. Its own task records the outcome.
 */
int xcp__transfer_fd(xcp__engine *e, const char *session, const char *vdi,
                     bool import, int fd, const char *format,
                     const char *base,
                     void (*progress)(void *, uint64_t, uint64_t),
                     void *ctx);

#endif
