/*
 * Internal header of the layers above the model (db, engine, api, rpc,
 * server, client): core (core/core.h), the model (model/model.h) and the
 * session driver behind the typed front door. Cross-module names are
 * prefixed xcp__ and never exported. Core includes only core/core.h, the
 * model only model/model.h.
 */
#ifndef XCP_INTERNAL_H
#define XCP_INTERNAL_H

#include "core/core.h"
#include "model/model.h"

#include <xcp/session.h>
#include <xcp/transfer.h>
#include <xcp/xva.h>

/* ---- session driver ---- */
struct xcp__session_ops {
    /* Invoke message mid; args already checked; result filled. async:
     * return a task ref instead. */
    int (*invoke)(xcp_session *s, int mid, bool async, size_t nargs,
                  xcp_value *args, xcp_value *result);
    void (*close)(xcp_session *s);
    /* Optional: xcp_get_records_fields (where NULL: every record; names:
     * the fields as an ARRAY of names); > 0 when the server cannot (the
     * caller falls back on whole records). */
    int (*records_fields)(xcp_session *s, int cls, const char *where,
                          const int *fields, size_t n,
                          const xcp_value *names, xcp_value *result);
    /* Optional: xcp_console_open for console ref `ref`. */
    int (*console_open)(xcp_session *s, const char *ref, int *fd);
    /* Optional: xcp_vdi_import (import) or xcp_vdi_export of VDI ref
     * `vdi` from/to fd; o checked. */
    int (*vdi_transfer)(xcp_session *s, const char *vdi, bool import,
                        int fd, const xcp_vdi_transfer_options *o);
    /* Optional: xcp_vm_export_xva of VM ref `vm` to fd, and xcp_vm_import
     * from fd (*vms: an ARRAY of the VMs' refs); o checked. */
    int (*vm_export)(xcp_session *s, const char *vm, int fd,
                     const xcp_vm_export_options *o);
    int (*vm_import)(xcp_session *s, int fd, const xcp_vm_import_options *o,
                     xcp_value *vms);
    /* Optional: wake a call of s that waits (xcp_session_interrupt, from
     * another thread; s->interrupted is already set), or, on false, undo
     * what that left (xcp_session_resume, from the session's thread). */
    void (*interrupt)(xcp_session *s, bool on);
    /* Optional: XAPI's HTTP handler at path ("/blob") with the query's
     * n pairs kv[2i] = kv[2i + 1] (NULL values left out): GET (fd
     * written) or put (fd read to its end). */
    int (*handler)(xcp_session *s, const char *path, const char *const *kv,
                   size_t n, bool put, int fd);
};

struct xcp_session {
    const struct xcp__session_ops *ops;
    char ref[XCP_REF_MAX];
    void *priv;
    int interrupted; /* xcp_session_interrupt; __atomic_* access only */
};

/* Whether s is interrupted (xcp_session_interrupt). */
bool xcp__session_interrupted(const xcp_session *s);
/* The error of a call on an interrupted session: INTERRUPTED [], with the
 * code XCP_EINTR (returned). */
int xcp__interrupted(void);

/* The typed API's entry: converts C args, invokes, converts the result. */
int xcp__typed_call(xcp_session *s, int mid, bool async, void *out,
                    const void *const *args);

#endif
