/*
 * libxcp public API: moving a VDI's contents to and from a file, as
 * XAPI's `xe vdi-import` / `xe vdi-export` do.
 *
 * A local session moves the bytes through the engine's transfers (the
 * same code as the daemon's /import_raw_vdi and /export_raw_vdi); a
 * remote one through those HTTP handlers of its server (xcpd or XAPI),
 * with its session.
 */
#ifndef XCP_TRANSFER_H
#define XCP_TRANSFER_H

#include <stdint.h>

#include <xcp/common.h>
#include <xcp/session.h>
#include <xcp/classes.h>

XCP_BEGIN_DECLS

/** Called as a transfer goes (at most a few times a second, and once at
 * the end): bytes moved so far, of total (0 when unknown). */
typedef void (*xcp_transfer_progress)(void *ctx, uint64_t done,
                                      uint64_t total);

/* Version 2 added base. */
#define XCP_VDI_TRANSFER_OPTIONS_VERSION 2

/** Options of xcp_vdi_import() and xcp_vdi_export(). Start with
 * `{XCP_VDI_TRANSFER_OPTIONS_VERSION}`; the struct only grows at its
 * end. */
typedef struct xcp_vdi_transfer_options {
    unsigned version;
    /** "raw" (NULL: raw), "vhd" (a dynamic VHD image; an import also
     * takes a differencing one, applied over the VDI's contents) or
     * "qcow2" (a qcow2 v3 image; an import takes version 2 or 3, and
     * one with a backing file is applied over the VDI's contents). */
    const char *format;
    xcp_transfer_progress progress;  /**< or NULL */
    void *progress_ctx;
    /** Version 2. Export only: NULL for the whole disk, else a VDI (ref
     * or uuid: an earlier snapshot of the same disk) to send only what
     * differs from, as XAPI's /export_raw_vdi?base=: "vhd", a
     * differencing VHD whose parent is base; "qcow2", an image backed
     * by "<base uuid>.qcow2"; raw, zeros where nothing changed. Found
     * from changed block tracking when both have it on, else from the
     * images' chains, no data read. */
    const char *base;
} xcp_vdi_transfer_options;

/**
 * Write what fd holds (read to its end) into the VDI: raw bytes from
 * offset 0, or a VHD or qcow2 image's contents (the VDI then reads as
 * the image does, whatever its own format). The VDI must be writable and not
 * attached to a running VM. Errors: SESSION_INVALID; HANDLE_INVALID
 * ["VDI", ref]; VDI_READONLY; VDI_IN_USE; INVALID_VALUE ["format", f];
 * VDI_IO_ERROR [reason] for data past the VDI's end, a malformed image,
 * a read error of fd or the storage's; for a remote session, the
 * transport errors of xcp_session_open_remote().
 */
XCP_EXTERN int xcp_vdi_import(xcp_session *s, xcp_vdi vdi, int fd,
                              const xcp_vdi_transfer_options *o);

/**
 * Write the VDI's contents to fd: raw (its virtual size, holes as
 * zeros), or a dynamic VHD or qcow2 image holding only the blocks or
 * clusters that have data.
 * Errors as xcp_vdi_import(), but for the write ones.
 */
XCP_EXTERN int xcp_vdi_export(xcp_session *s, xcp_vdi vdi, int fd,
                              const xcp_vdi_transfer_options *o);

/**
 * The bytes of blob `blob` (XAPI's GET /blob?ref=...) written to fd. A
 * local session reads them from the state directory, a remote one from
 * its server's /blob handler.
 * Errors: SESSION_INVALID; HANDLE_INVALID ["blob", ref] for an unknown
 * blob and for one never written (XAPI's handler answers 404 for
 * both: the blob has no bytes to read; a real XAPI's 404 reaches a
 * remote session as TRANSPORT_ERROR [uri, "HTTP 404"]); INVALID_VALUE
 * ["fd", ""] (with the reason) when fd cannot be written; for a remote
 * session, the transport errors of xcp_session_open_remote().
 */
XCP_EXTERN int xcp_blob_get_data(xcp_session *s, xcp_blob blob, int fd);

/**
 * Replace the bytes of blob `blob` with what fd holds, read to its end
 * (XAPI's PUT /blob?ref=...), and set its last_updated. The old bytes
 * stay until the new ones are all stored (a crash leaves one or the
 * other); blob.destroy removes them. Errors as xcp_blob_get_data(),
 * INVALID_VALUE ["fd", ""] when fd cannot be read, and OUT_OF_SPACE
 * when the state directory's disk is full.
 */
XCP_EXTERN int xcp_blob_put_data(xcp_session *s, xcp_blob blob, int fd);

/**
 * A backup of the session's host (XAPI's GET /host_backup) written to
 * fd: a tar of what its state directory needs to come back as it is now
 * (the database as of one commit, blob bytes, each SR's configuration,
 * the daemon's certificate), not the disk images.
 * Errors: SESSION_INVALID; INVALID_VALUE ["fd", ""] (with the reason)
 * when fd cannot be written; for a remote session, the transport errors
 * of xcp_session_open_remote().
 */
XCP_EXTERN int xcp_host_backup(xcp_session *s, int fd);

/**
 * Restore the session's host from a backup xcp_host_backup() made, read
 * from fd to its end (XAPI's PUT /host_restore). As on XAPI, it takes
 * effect at the next start (of the daemon, or of the next embedded
 * engine on the state directory): the backup is checked and staged now,
 * put in place then. Errors: SESSION_INVALID; RESTORE_SCRIPT_FAILED
 * [why] for what is not such a backup (nothing is staged);
 * INVALID_VALUE ["fd", ""] when fd cannot be read.
 */
XCP_EXTERN int xcp_host_restore(xcp_session *s, int fd);

XCP_END_DECLS

#endif
