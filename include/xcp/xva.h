/*
 * libxcp public API: a VM to and from an XVA file, as XAPI's
 * `xe vm-export` / `xe vm-import` and its /export and /import handlers.
 *
 * An XVA is XAPI's VM archive: a tar of ova.xml (the VM, its snapshots,
 * VBDs, VDIs, VIFs, networks and SRs) and each disk in 1 MiB chunks with
 * their SHA-1 checksums, optionally gzip or zstd compressed. What these
 * functions write XAPI imports, and what XAPI exports they import.
 * A local session moves the bytes through the engine; a remote one
 * through its server's /export, /export_metadata, /import and
 * /import_metadata handlers (xcpd's or XAPI's), with its session.
 */
#ifndef XCP_XVA_H
#define XCP_XVA_H

#include <stdint.h>

#include <xcp/common.h>
#include <xcp/session.h>
#include <xcp/classes.h>
#include <xcp/transfer.h>

XCP_BEGIN_DECLS

#define XCP_VM_EXPORT_OPTIONS_VERSION 1

/** Options of xcp_vm_export_xva(). Start with
 * `{XCP_VM_EXPORT_OPTIONS_VERSION}`; the struct only grows at its end. */
typedef struct xcp_vm_export_options {
    unsigned version;
    /** NULL, "", "false", "none": not compressed; "true" or "gzip":
     * gzip; "zstd": zstd (XAPI's use_compression values). */
    const char *compression;
    /** ova.xml only, no disks (XAPI's /export_metadata). */
    bool metadata_only;
    /** Leave the VM's snapshots out (they go with their disks by
     * default). */
    bool no_snapshots;
    /** A suspended VM is exported suspended, with its memory image
     * (else as halted, without it). */
    bool preserve_power_state;
    xcp_transfer_progress progress;  /**< disk bytes; or NULL */
    void *progress_ctx;
} xcp_vm_export_options;

/**
 * Write VM vm (halted or suspended; a template or snapshot too) as an XVA
 * to fd. Errors: SESSION_INVALID; HANDLE_INVALID ["VM", ref];
 * VM_BAD_POWER_STATE [vm, "halted", state] for a running or paused VM;
 * INVALID_VALUE ["compression", c]; VDI_IO_ERROR [reason] for a read or
 * write error; for a remote session, the transport errors of
 * xcp_session_open_remote().
 */
XCP_EXTERN int xcp_vm_export_xva(xcp_session *s, xcp_vm vm, int fd,
                                 const xcp_vm_export_options *o);

#define XCP_VM_IMPORT_OPTIONS_VERSION 1

/** Options of xcp_vm_import_xva(). Start with
 * `{XCP_VM_IMPORT_OPTIONS_VERSION}`. */
typedef struct xcp_vm_import_options {
    unsigned version;
    /** The SR for the disks; a null ref (all zeros): pool.default_SR. */
    xcp_sr sr;
    /** A full restore: the VMs keep their uuids (XAPI's restore=true,
     * xe's preserve=true). */
    bool restore;
    /** Import even when chunk checksums do not match. */
    bool force;
    xcp_transfer_progress progress;  /**< disk bytes; or NULL */
    void *progress_ctx;
    /** A metadata-only export (XAPI's /import_metadata): the VMs' disks
     * are the existing VDIs of the exported uuids
     * (IMPORT_ERROR_ATTACHED_DISKS_NOT_FOUND when one is not here). */
    bool metadata;
} xcp_vm_import_options;

/**
 * Read an XVA (plain, gzip or zstd, found from its first bytes) from fd
 * to its end and make its VMs, snapshots, devices and disks; *out gets
 * the VMs made (not their snapshots), to free with xcp_vm_set_dispose.
 * On failure nothing of it stays. Errors: SESSION_INVALID;
 * HANDLE_INVALID ["SR", ref]; DEFAULT_SR_NOT_FOUND; IMPORT_ERROR
 * [reason] for a malformed archive or a checksum mismatch (without
 * force); IMPORT_ERROR_PREMATURE_EOF for one cut short;
 * IMPORT_ERROR_UNEXPECTED_FILE ["ova.xml", found] when it does not start
 * with ova.xml; IMPORT_INCOMPATIBLE_VERSION; the SR's errors; for a
 * remote session, the transport errors of xcp_session_open_remote().
 */
XCP_EXTERN int xcp_vm_import_xva(xcp_session *s, xcp_vm_set *out, int fd,
                                 const xcp_vm_import_options *o);

XCP_END_DECLS

#endif
