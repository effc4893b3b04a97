/*
 * VM export and import as XVA, the XenAPI side (engine/xva.c): what
 * xcp_vm_export_xva/xcp_vm_import_xva (api/vm_xva.c) and the server's /export
 * and /import handlers call once the request's credentials are known.
 * The stream format is sr/xva_stream.c's; this file maps the object
 * model to and from ova.xml, moves the disks through VDI streams (no
 * engine lock held while bytes move) and reports into a task as the
 * transfers do (engine/transfer.c).
 */
#ifndef XCP_ENGINE_XVA_H
#define XCP_ENGINE_XVA_H

#include "engine.h"
#include "../api/storage.h"
#include "../sr/xva_stream.h"

/* What an export is asked for; strings borrowed for the call. */
typedef struct xcp__xva_export_req {
    const char *session;      /* NULL: a trusted caller */
    const char *task_id;      /* the client's task, or NULL/"" */
    const char *vm;           /* ref or uuid */
    const char *compression;  /* xcp__xva_compression_of's names */
    bool metadata_only;       /* ova.xml only (/export_metadata) */
    bool snapshots;           /* the VM's snapshots too, with disks */
    bool preserve_power_state;/* a suspended VM stays so, with its image */
    bool vhd_parents;         /* metadata only: with the VDIs the disks'
                                 sm_config "vhd-parent" leads to */
    bool drop_task;           /* a task made here goes at the end (local) */
} xcp__xva_export_req;

typedef struct xcp__xva_export xcp__xva_export;

/*
 * Check and plan an export: SESSION_INVALID (401), the task unknown
 * (404), INVALID_VALUE ["compression", c] (400), the VM unknown
 * (UUID_INVALID or HANDLE_INVALID, 404), a running or paused VM
 * (VM_BAD_POWER_STATE [vm, "halted", state], 400: as XAPI, export a
 * snapshot of it instead). *http is the status (200 when it goes on).
 * The task fails with the error on failure.
 */
int xcp__xva_export_begin(xcp__engine *e, const xcp__xva_export_req *r,
                          xcp__xva_export **out, int *http);
/* The task's ref (valid until xcp__xva_export_end). */
const char *xcp__xva_export_task(const xcp__xva_export *x);
/* Write the whole XVA to sink; progress (may be NULL) gets the disk
 * bytes done of the total. */
int xcp__xva_export_run(xcp__xva_export *x, xcp__xva_sink sink, void *ctx,
                        void (*progress)(void *, uint64_t, uint64_t),
                        void *pctx);
/* The same a piece at a time, for a consumer that pulls: the next
 * piece (ova.xml, a chunk, the end) to sink, the same sink each time:
 * 0, 1 when all was written, or -1. */
int xcp__xva_export_next(xcp__xva_export *x, xcp__xva_sink sink,
                         void *ctx);
/* The same for a consumer that reads: the next bytes of the XVA in
 * order, up to n, *got of them (0 at the end). */
int xcp__xva_export_read(xcp__xva_export *x, void *buf, size_t n,
                         size_t *got);
/* Whether every byte was produced and read. */
bool xcp__xva_export_complete(const xcp__xva_export *x);
/* XAPI's format=tar of one disk: the chunks of stream s (the caller's,
 * not closed here) of size bytes under XCP__XVA_TAR_DIR, no ova.xml and
 * no task (its progress is the caller's); read it with
 * xcp__xva_export_read, free it with xcp__xva_export_free. */
int xcp__xva_disk_export_new(xcp__xva_export **out, xcp__engine *e,
                             xcp__vdi_stream *s, uint64_t size);
void xcp__xva_export_free(xcp__xva_export *x);
/* Complete the task (ok: success) and free x (NULL accepted). */
int xcp__xva_export_end(xcp__xva_export *x, int ok);

/* What an import is asked for. */
typedef struct xcp__xva_import_req {
    const char *session;
    const char *task_id;
    const char *sr;           /* ref or uuid; NULL/"": pool.default_SR */
    bool force;               /* go on despite checksum mismatches */
    bool restore;             /* keep the VMs' uuids (full restore) */
    bool metadata;            /* ova.xml only (/import_metadata): the
                               * VDIs are the existing ones of the
                               * exported uuids */
    bool drop_task;           /* a task made here goes at the end (local) */
} xcp__xva_import_req;

typedef struct xcp__xva_import xcp__xva_import;

/*
 * Begin an import: SESSION_INVALID (401), the task unknown (404), the SR
 * unknown (404) or none given and no default (DEFAULT_SR_NOT_FOUND,
 * 404). The task fails with the error on failure.
 */
int xcp__xva_import_begin(xcp__engine *e, const xcp__xva_import_req *r,
                          xcp__xva_import **out, int *http);
const char *xcp__xva_import_task(const xcp__xva_import *m);
/* The next n bytes of the body (any compression). */
int xcp__xva_import_write(xcp__xva_import *m, const void *buf, size_t n);
/*
 * End the import (ok: the body came whole): on success the VMs (not
 * their snapshots) are the task's result, an array of their refs, and
 * also in *vms when vms is non-NULL (an ARRAY to dispose); otherwise
 * every object made is destroyed and the task fails. Frees m.
 */
int xcp__xva_import_end(xcp__xva_import *m, int ok, xcp_value *vms);

/* Whole exports and imports to and from a file descriptor, for the
 * local session driver; progress may be NULL. */
int xcp__xva_export_fd(xcp__engine *e, const xcp__xva_export_req *r,
                       int fd, void (*progress)(void *, uint64_t, uint64_t),
                       void *pctx);
int xcp__xva_import_fd(xcp__engine *e, const xcp__xva_import_req *r,
                       int fd, void (*progress)(void *, uint64_t, uint64_t),
                       void *pctx, xcp_value *vms);

/*
 * Parse ova.xml (n bytes at xml): a STRUCT with "version" (a STRUCT) and
 * "objects" (an ARRAY of STRUCTs with class, id and snapshot) in *out.
 * IMPORT_ERROR [reason] when it is not one; IMPORT_INCOMPATIBLE_VERSION
 * when it comes from a newer XAPI major version than we speak. Shared
 * with the fuzzer.
 */
int xcp__xva_parse_header(const char *xml, size_t n, xcp_value *out);

#endif
