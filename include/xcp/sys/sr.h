/*
 * xcp/sys/sr.h - the interface between libxcp's SR layer and SR drivers.
 *
 * An SR type is two things, kept apart as curl keeps a scheme apart from
 * its protocol handler:
 *
 *   - xcp_sr_type: what the type is and can do (name, description,
 *     capability bits, default content_type, device_config keys).  The SR
 *     layer reads it to fill SM records and to refuse an operation the
 *     type cannot do before calling anything;
 *   - xcp_sr_ops: how it does it, a versioned table of functions.  A NULL
 *     slot means "not supported".
 *
 * Drivers speak paths, uuids and the plain structs below; they never see
 * database objects or sessions.  They keep no state between calls: every
 * call names its SR through an xcp_sr_target, so operations keep working
 * across toolstack restarts.  Policy (which VDI may be destroyed, when to
 * run garbage collection, whether a VDI is attached) stays in the SR
 * layer, which also serialises operations on one SR: a driver may assume
 * no two calls for the same SR run at once.  Calls for different SRs may
 * run concurrently.
 *
 * Every operation returns 0 or a negative errno-style code; on failure
 * it has filled the xcp_sr_error it was given (see there).
 *
 * Strings in structs filled by drivers are fixed-size, NUL-terminated
 * arrays owned by the caller; pointers in structs given to drivers are
 * borrowed for the duration of the call.
 */
#ifndef XCP_SYS_SR_H
#define XCP_SYS_SR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the driver interface described by this header: of struct
 * xcp_sr_ops, whose slots are only ever added at the end (a table with a
 * smaller version lacks them), and of the structs the slots take.
 * Version 4 changed xcp_sr_error: it names its error by kind (enum
 * xcp_sr_error_kind) instead of by a string; the SR layer accepts no
 * older table, whose drivers would fill the old struct.  Version 5 added
 * the changed block tracking slots, xcp_sr_vdi_info.cbt_enabled and
 * XCP_SR_ERR_NO_CBT_METADATA, and sr_gc_run (a collector run that lets
 * other calls in, with its hooks) and XCP_SR_ERR_CHAIN_TOO_LONG.
 * Version 6 added vdi_cow_live and xcp_sr_cow_hooks.  Version 7 added
 * xcp_sr_gc_result.leaf_left (set by drivers of version 7 and up only)
 * and version 2 of xcp_sr_gc_hooks (stream).  Version 8 added
 * vdi_changes (delta exports).  Version 9 added stream_map (zero-copy
 * exports). */
#define XCP_SR_OPS_VERSION 9

/* Buffer sizes of the strings in the structs below, NUL included. */
#define XCP_SR_UUID_BUFLEN 37
#define XCP_SR_LOCATION_MAX 256
#define XCP_SR_PATH_MAX 4096
#define XCP_SR_FORMAT_MAX 16
#define XCP_SR_REASON_MAX 1024

/*
 * Capabilities.  The SR layer publishes them in SM.capabilities under the
 * macro's name without XCP_SR_CAP_ (XAPI's own names where XAPI has the
 * capability).  A bit that names an operation promises that the matching
 * slot of xcp_sr_ops is set, and a set slot needs its bit.
 */
#define XCP_SR_CAP_SR_PROBE (UINT64_C(1) << 0)          /* sr_probe */
#define XCP_SR_CAP_SR_SCAN (UINT64_C(1) << 1)           /* sr_scan */
#define XCP_SR_CAP_SR_UPDATE (UINT64_C(1) << 2)         /* sr_stat */
#define XCP_SR_CAP_SR_GC (UINT64_C(1) << 3)             /* sr_gc */
#define XCP_SR_CAP_VDI_CREATE (UINT64_C(1) << 8)        /* vdi_create */
#define XCP_SR_CAP_VDI_DELETE (UINT64_C(1) << 9)        /* vdi_destroy */
#define XCP_SR_CAP_VDI_UPDATE (UINT64_C(1) << 10)       /* vdi_stat */
#define XCP_SR_CAP_VDI_SNAPSHOT (UINT64_C(1) << 11)     /* vdi_snapshot */
#define XCP_SR_CAP_VDI_CLONE (UINT64_C(1) << 12)        /* vdi_clone */
#define XCP_SR_CAP_VDI_RESIZE (UINT64_C(1) << 13)       /* vdi_resize */
/* vdi_resize may run while the VDI is attached to a running VM. */
#define XCP_SR_CAP_VDI_RESIZE_ONLINE (UINT64_C(1) << 14)
#define XCP_SR_CAP_VDI_COPY (UINT64_C(1) << 15)         /* vdi_copy */
/* Images only take the space written to (no operation). */
#define XCP_SR_CAP_THIN_PROVISIONING (UINT64_C(1) << 16)
/* Changed block tracking, XAPI's SM feature VDI_CONFIG_CBT:
 * vdi_cbt_set, vdi_cbt_changes and vdi_data_destroy (version 5). */
#define XCP_SR_CAP_VDI_CONFIG_CBT (UINT64_C(1) << 17)

/* sr_destroy flags: also delete the VDIs still present. */
#define XCP_SR_DESTROY_FORCE (1u << 0)

/* sr_gc flags: also leaf-coalesce: merge each VDI whose parent is a
 * hidden parent with no other child into that parent, which then takes
 * the VDI's place.  The VDI's image is replaced: with sr_gc, only when
 * nothing has it open; with sr_gc_run, the hooks' pause says when. */
#define XCP_SR_GC_COALESCE (1u << 0)
/* sr_gc flags: merge each hidden node into its parent when that parent is
 * hidden with no other child (the node's own clusters written into the
 * parent, as qemu-img commit does), then point the node's children at the
 * parent and delete the node.  No VDI's data changes at any instant and
 * no VDI's image is replaced (only its parent pointer is rewritten), so
 * this is safe while VDIs are attached; it keeps chains short under
 * repeated snapshot-and-delete. */
#define XCP_SR_GC_COALESCE_HIDDEN (1u << 1)

/* One device_config entry. */
typedef struct xcp_sr_kv {
    const char *key;
    const char *value;
} xcp_sr_kv;

/* A device_config key a type understands (SM.configuration). */
typedef struct xcp_sr_config_key {
    const char *key;
    const char *description;
    bool required;              /* sr_create fails without it */
} xcp_sr_config_key;

/*
 * What kind of failure a driver reports.  The SR layer raises the XenAPI
 * error of that kind with the parameters the XenAPI gives it, from what
 * it knows of the call (the SR and VDI the call was about); a driver only
 * says which.
 */
typedef enum xcp_sr_error_kind {
    /* SR_BACKEND_FAILURE ["", reason, ""]: any other failure (the
     * default: a zeroed xcp_sr_error has this kind). */
    XCP_SR_ERR_BACKEND = 0,
    /* SR_NOT_EMPTY []: sr_destroy while visible VDIs remain. */
    XCP_SR_ERR_NOT_EMPTY,
    /* SR_FULL [requested, maximum]: no space left on the storage; the
     * bytes the call asked for and the SR's free space, as the SR layer
     * knows them. */
    XCP_SR_ERR_FULL,
    /* SR_OPERATION_NOT_SUPPORTED [sr]: the type cannot do this here. */
    XCP_SR_ERR_NOT_SUPPORTED,
    /* VDI_MISSING [sr, vdi]: the VDI's image is not on the storage. */
    XCP_SR_ERR_VDI_MISSING,
    /* VDI_IO_ERROR [reason]: reading or writing an image failed. */
    XCP_SR_ERR_VDI_IO,
    /* VDI_READONLY [vdi]: the image may not be written. */
    XCP_SR_ERR_VDI_READONLY,
    /* A virtual size the image format cannot have (VHD: beyond 2040 GiB):
     * SR_BACKEND_FAILURE_79 ["", reason, ""] (sm's VDISize error, "VDI
     * Invalid size"), or VDI_TOO_LARGE [vdi, maximum] when an existing
     * VDI was to grow.  Added in version 4 (older drivers never set it). */
    XCP_SR_ERR_VDI_SIZE,
    /* VDI_NO_CBT_METADATA [vdi]: the VDI has no changed block tracking
     * state on the storage.  Added in version 5. */
    XCP_SR_ERR_NO_CBT_METADATA,
    /* A snapshot or clone would make a chain longer than the type allows
     * (XAPI's 30 images): SR_BACKEND_FAILURE_109 ["", reason, ""] (sm's
     * SnapshotChainTooLong).  Added in version 5. */
    XCP_SR_ERR_CHAIN_TOO_LONG,
} xcp_sr_error_kind;

/*
 * Failure detail.  kind is the error the SR layer raises (see there).
 * reason reads like the message of an SR_BACKEND_FAILURE: what failed,
 * then the cause in [opterr=...], with the file and errno involved; it
 * is sent where the error has a message, and logged.
 */
typedef struct xcp_sr_error {
    int code;                   /* the negative code also returned */
    xcp_sr_error_kind kind;
    char reason[XCP_SR_REASON_MAX];
} xcp_sr_error;

/*
 * The SR an operation is about.  default_location is chosen by the
 * caller (e.g. a directory under its state directory) and used by types
 * that store data in a directory when device_config does not name one.
 */
typedef struct xcp_sr_target {
    const char *sr_uuid;
    const xcp_sr_kv *device_config;
    size_t n_device_config;
    const char *default_location;   /* may be NULL */
} xcp_sr_target;

/* What a driver knows of one VDI from its storage. */
typedef struct xcp_sr_vdi_info {
    char uuid[XCP_SR_UUID_BUFLEN];
    char location[XCP_SR_LOCATION_MAX];        /* VDI.location */
    /* Location of the image this one is a copy-on-write child of, ""
     * when none: what XAPI keeps as sm_config:vhd-parent. */
    char parent_location[XCP_SR_LOCATION_MAX];
    char format[XCP_SR_FORMAT_MAX];            /* "qcow2", "vhd", "raw" */
    uint64_t virtual_size;
    uint64_t physical_utilisation;             /* bytes used on storage */
    bool read_only;             /* a snapshot: never written again */
    /* An internal copy-on-write parent, not a user-visible VDI: scan
     * reports it so the caller can follow chains, but it gets no VDI
     * record. */
    bool hidden;
    /* Changed block tracking is on for the VDI (version 5). */
    bool cbt_enabled;
} xcp_sr_vdi_info;

/* An SR found by sr_probe. */
typedef struct xcp_sr_probe_info {
    char sr_uuid[XCP_SR_UUID_BUFLEN];
    char type[XCP_SR_FORMAT_MAX];
    char path[XCP_SR_PATH_MAX];
} xcp_sr_probe_info;

/* Space on the storage behind an SR. */
typedef struct xcp_sr_stat {
    uint64_t physical_size;
    uint64_t physical_utilisation;
    uint64_t free_space;
} xcp_sr_stat;

/* What a hypervisor is given to open a VDI. */
typedef struct xcp_sr_vdi_path {
    char path[XCP_SR_PATH_MAX];
    char format[XCP_SR_FORMAT_MAX];            /* "qcow2", "raw" */
} xcp_sr_vdi_path;

/* Arguments of vdi_create. */
typedef struct xcp_sr_vdi_create_params {
    unsigned int version;       /* 1; fields are only added at the end */
    const char *uuid;           /* NULL: the driver makes one */
    uint64_t virtual_size;      /* bytes; a suspend VDI's image size too */
    const char *format;         /* NULL: the type's default; "raw" gives a
                                 * plain file, e.g. for suspend images;
                                 * the SR layer passes the image-format
                                 * chosen (VDI's, SR's sm_config) */
} xcp_sr_vdi_create_params;

/*
 * Result of vdi_snapshot and vdi_clone.  source is the original VDI: it
 * keeps its location but is now a fresh leaf on top of parent.  child is
 * the new snapshot (read-only) or clone (writable), also on top of
 * parent.  parent is the hidden node now holding the data the two share;
 * its location is "" when the source was itself read-only and simply
 * became the children's parent.
 */
typedef struct xcp_sr_cow_result {
    xcp_sr_vdi_info source;
    xcp_sr_vdi_info child;
    xcp_sr_vdi_info parent;
} xcp_sr_cow_result;

/* What sr_gc did. */
typedef struct xcp_sr_gc_result {
    unsigned int removed;       /* hidden images deleted */
    unsigned int coalesced;     /* hidden parents merged into a child */
    /* Leaf coalesces the run could have done and left: not asked for
     * (no XCP_SR_GC_COALESCE), or not possible now (a writer that can
     * neither pause nor stream, a run stopped).  Version 7. */
    unsigned int leaf_left;
} xcp_sr_gc_result;

/*
 * What the SR layer lends a collector run (sr_gc_run).  Every hook may be
 * NULL.  A run starts with the SR layer's lock on the SR held.
 */
typedef struct xcp_sr_gc_hooks {
    unsigned int version;       /* 2; fields are only added at the end */
    void *ctx;                  /* passed to every hook */
    /* Let other calls on the SR run while the run copies data, and take
     * the SR back; the driver re-reads what it relies on afterwards. */
    void (*unlock)(void *ctx);
    void (*lock)(void *ctx);
    /* A merge of the image at location (a hidden node, or a leaf) has
     * walked done of total bytes; called while unlocked.  Nonzero: stop
     * the run (what was done is kept; the rest waits for the next). */
    int (*progress)(void *ctx, const char *location, uint64_t done,
                    uint64_t total);
    /* Before the leaf VDI at location is replaced (leaf coalesce, or its
     * data moved under a new hidden node): stop whoever writes it and
     * make it let go of the image (close it).  0: done, or nobody has it
     * open; negative: it cannot be paused, the leaf is left as it is. */
    int (*pause)(void *ctx, const char *location);
    /* After: the writer opens location again (a new file) and goes on. */
    void (*unpause)(void *ctx, const char *location);
    /* ---- version 2 ---- */
    /*
     * Leaf coalesce by the writer of the leaf at location, when pause
     * refused (it keeps the image open: QEMU on Xen): the writer copies
     * into the leaf what the images below it show, down to (not
     * including) the last keep images of its chain, then records backing
     * (a location, "" with keep 0) as the leaf's parent, writing only the
     * file it holds; the images it copied from are then unreferenced.
     * Called with the SR lock let go (unlock); reports through progress.
     * 0: done; 1: nobody can (the leaf is left as it is); negative:
     * failed or stopped, the leaf reading as before (its parent link
     * either still the old one or already backing).
     */
    int (*stream)(void *ctx, const char *location, unsigned keep,
                  const char *backing);
} xcp_sr_gc_hooks;

/*
 * What the SR layer lends vdi_cow_live: the writer of a VDI that keeps
 * its image open (QEMU on Xen) and cannot let go of it.
 */
typedef struct xcp_sr_cow_hooks {
    unsigned int version;       /* 1; fields are only added at the end */
    void *ctx;                  /* passed to every hook */
    /* The writer moves its writes onto the image at path (format), whose
     * backing file is the image it has open, at one instant; it then
     * holds that file whatever its name.  0: done; negative: it did not
     * (it goes on with its image), with the reason in reason. */
    int (*switch_to)(void *ctx, const char *path, const char *format,
                     char *reason, size_t len);
} xcp_sr_cow_hooks;

/*
 * An open VDI image, for moving its bytes (imports, exports): what the
 * driver's vdi_stream_open made, opaque to the SR layer.  One handle is
 * used by one thread at a time; two writable handles on one VDI are not
 * allowed (the SR layer refuses a transfer into an attached VDI).
 */
typedef struct xcp_sr_stream xcp_sr_stream;

/* vdi_stream_open flags: open for writing too (default: read-only). */
#define XCP_SR_STREAM_WRITE (1u << 0)

/* Called by stream_extents once per allocated range, in increasing
 * order; nonzero stops the listing, which then returns that value. */
typedef int (*xcp_sr_extent_cb)(void *ctx, uint64_t offset, uint64_t length);

/* Called once per VDI by sr_scan; nonzero stops the scan, which then
 * returns that value. */
typedef int (*xcp_sr_vdi_cb)(void *ctx, const xcp_sr_vdi_info *vdi);

/* Called once per SR found by sr_probe; nonzero stops the probe. */
typedef int (*xcp_sr_probe_cb)(void *ctx, const xcp_sr_probe_info *sr);

typedef struct xcp_sr_ops {
    unsigned int version;       /* XCP_SR_OPS_VERSION */

    /*
     * Prepare new storage for the SR sr->sr_uuid (format, create the
     * directory, write a marker so probe and attach recognise it) and
     * report its size in *physical_size.  Fails if storage already holds
     * an SR.
     */
    int (*sr_create)(const xcp_sr_target *sr, uint64_t *physical_size,
                     xcp_sr_error *err);

    /* Report the SRs found where sr->device_config points (sr->sr_uuid is
     * ignored), one cb call each; none found is not an error. */
    int (*sr_probe)(const xcp_sr_target *sr, xcp_sr_probe_cb cb, void *ctx,
                    xcp_sr_error *err);

    /* Make the SR usable on this host (mount, check the marker matches
     * sr->sr_uuid).  Attaching an attached SR succeeds. */
    int (*sr_attach)(const xcp_sr_target *sr, xcp_sr_error *err);

    /* Undo sr_attach.  Detaching a detached SR succeeds. */
    int (*sr_detach)(const xcp_sr_target *sr, xcp_sr_error *err);

    /*
     * Erase the SR's storage.  Fails (XCP_SR_ERR_NOT_EMPTY) while
     * visible VDIs remain, unless flags has XCP_SR_DESTROY_FORCE.  Hidden
     * parents left over are removed either way.
     */
    int (*sr_destroy)(const xcp_sr_target *sr, unsigned int flags,
                      xcp_sr_error *err);

    /* Call cb for each image on storage, hidden parents included.  An
     * image that cannot be read fails the scan, naming it: leaving it
     * out would make its VDI look deleted. */
    int (*sr_scan)(const xcp_sr_target *sr, xcp_sr_vdi_cb cb, void *ctx,
                   xcp_sr_error *err);

    /* Size, use and free space of the storage. */
    int (*sr_stat)(const xcp_sr_target *sr, xcp_sr_stat *out,
                   xcp_sr_error *err);

    /*
     * Garbage collection: delete hidden parents no image depends on any
     * more and debris of interrupted operations; with XCP_SR_GC_COALESCE
     * or XCP_SR_GC_COALESCE_HIDDEN also merge single-child hidden parents
     * (see the flags).  out may be NULL.
     */
    int (*sr_gc)(const xcp_sr_target *sr, unsigned int flags,
                 xcp_sr_gc_result *out, xcp_sr_error *err);

    /* Create an empty VDI; fills *out, location included. */
    int (*vdi_create)(const xcp_sr_target *sr,
                      const xcp_sr_vdi_create_params *params,
                      xcp_sr_vdi_info *out, xcp_sr_error *err);

    /*
     * Delete a VDI (a damaged one too).  If other images still depend on
     * it, it becomes a hidden parent instead; then hidden parents nobody
     * depends on any more are deleted, up the chain.
     */
    int (*vdi_destroy)(const xcp_sr_target *sr, const char *location,
                       xcp_sr_error *err);

    /* Grow a VDI to new_size bytes (shrinking fails) and fill *out. */
    int (*vdi_resize)(const xcp_sr_target *sr, const char *location,
                      uint64_t new_size, xcp_sr_vdi_info *out,
                      xcp_sr_error *err);

    /* Fill *out for one VDI. */
    int (*vdi_stat)(const xcp_sr_target *sr, const char *location,
                    xcp_sr_vdi_info *out, xcp_sr_error *err);

    /*
     * Copy-on-write snapshot: see xcp_sr_cow_result.  child is read-only.
     * The VDI must not be written during the call (the SR layer pauses or
     * refuses an attached VDI).
     */
    int (*vdi_snapshot)(const xcp_sr_target *sr, const char *location,
                        xcp_sr_cow_result *out, xcp_sr_error *err);

    /* As vdi_snapshot, but child is writable. */
    int (*vdi_clone)(const xcp_sr_target *sr, const char *location,
                     xcp_sr_cow_result *out, xcp_sr_error *err);

    /*
     * Full standalone copy of the VDI at location in src (through its
     * chain) into a new VDI in dst; both SRs are of this type.  uuid names
     * the new VDI (NULL: the driver makes one).  Fills *out.
     */
    int (*vdi_copy)(const xcp_sr_target *src, const char *location,
                    const xcp_sr_target *dst, const char *uuid,
                    xcp_sr_vdi_info *out, xcp_sr_error *err);

    /* The path and image format a hypervisor should open. */
    int (*vdi_path)(const xcp_sr_target *sr, const char *location,
                    xcp_sr_vdi_path *out, xcp_sr_error *err);

    /* ---- version 2 ---- */

    /*
     * vdi_snapshot (read_only) or vdi_clone, the new VDI getting uuid
     * (NULL: the driver makes one), as vdi_create's params->uuid: so the
     * caller can name, before the call, an image a crash might leave
     * behind.  Optional: NULL when the type has neither operation.
     */
    int (*vdi_cow)(const xcp_sr_target *sr, const char *location,
                   bool read_only, const char *uuid, xcp_sr_cow_result *out,
                   xcp_sr_error *err);

    /* ---- version 3: VDI streams; every type sets all six ---- */

    /*
     * Open the image of the VDI at location (in its own format) for
     * reading, or reading and writing with XCP_SR_STREAM_WRITE, and
     * report its virtual size in *virtual_size.  Failures are of kind
     * XCP_SR_ERR_VDI_MISSING, _VDI_IO or _BACKEND.  The handle
     * outlives the call and the target: it holds what it needs.
     */
    int (*vdi_stream_open)(const xcp_sr_target *sr, const char *location,
                           unsigned int flags, xcp_sr_stream **out,
                           uint64_t *virtual_size, xcp_sr_error *err);

    /* Read n bytes at offset (what the VDI shows, through its chain);
     * the range lies within the virtual size.  Errors: XCP_SR_ERR_VDI_IO. */
    int (*stream_read)(xcp_sr_stream *s, uint64_t offset, void *buf,
                       size_t n, xcp_sr_error *err);

    /* Write n bytes at offset, within the virtual size, on a handle
     * opened with XCP_SR_STREAM_WRITE.  Errors: XCP_SR_ERR_VDI_IO. */
    int (*stream_write)(xcp_sr_stream *s, uint64_t offset, const void *buf,
                        size_t n, xcp_sr_error *err);

    /*
     * List the ranges of [offset, offset + length) that may hold data
     * (through the chain), merged and in order, one cb call each; what
     * is not listed reads as zeros, so it need be neither read nor sent.
     * A type that cannot tell lists the whole range.
     */
    int (*stream_extents)(xcp_sr_stream *s, uint64_t offset,
                          uint64_t length, xcp_sr_extent_cb cb, void *ctx,
                          xcp_sr_error *err);

    /* Make what was written durable. */
    int (*stream_flush)(xcp_sr_stream *s, xcp_sr_error *err);

    /* Flush if written to, then free the handle (NULL accepted); err may
     * be NULL.  Returns the flush result: the handle is freed anyway. */
    int (*stream_close)(xcp_sr_stream *s, xcp_sr_error *err);

    /* ---- version 5: changed block tracking (XCP_SR_CAP_VDI_CONFIG_CBT) */

    /*
     * Turn changed block tracking on (a new epoch with no blocks and no
     * previous snapshot; on already: nothing changes) or off (its state
     * is dropped) for the VDI at location.  vdi_snapshot and vdi_cow of
     * a VDI with it on end its epoch: the snapshot takes the blocks
     * changed so far, with the previous snapshot's uuid, and the VDI
     * starts a new epoch whose previous snapshot is the new one; a
     * clone starts without it.  Coalescing keeps every VDI's state.
     */
    int (*vdi_cbt_set)(const xcp_sr_target *sr, const char *location,
                       bool enabled, xcp_sr_error *err);

    /*
     * OR the blocks the VDI's epoch changed into bits (nblocks bits, one
     * per 64 KiB block, block i in bit 0x80 >> (i % 8) of byte i / 8),
     * and give the uuid of the snapshot that ended the previous epoch in
     * prev ("" for the first).  XCP_SR_ERR_NO_CBT_METADATA when the VDI
     * has no tracking state.
     */
    int (*vdi_cbt_changes)(const xcp_sr_target *sr, const char *location,
                           uint8_t *bits, uint64_t nblocks,
                           char prev[XCP_SR_UUID_BUFLEN], xcp_sr_error *err);

    /*
     * Drop the data of a read-only VDI (a snapshot) with tracking on,
     * keeping its tracking state: the image becomes an empty standalone
     * one of the same size, and parents nobody needs any more go.
     */
    int (*vdi_data_destroy)(const xcp_sr_target *sr, const char *location,
                            xcp_sr_error *err);

    /*
     * sr_gc, as one collector run the SR layer may let other calls into:
     * the long copies run between hooks->unlock and hooks->lock, so the
     * driver must check again what changed meanwhile (a node that gained
     * or lost children, a node deleted) and leave what it cannot finish
     * to the next run.  Crash-safe: a run killed at any point leaves
     * every VDI reading as before, and the next run finishes its work.
     * Optional (NULL: the SR layer calls sr_gc).
     */
    int (*sr_gc_run)(const xcp_sr_target *sr, unsigned int flags,
                     const xcp_sr_gc_hooks *hooks, xcp_sr_gc_result *out,
                     xcp_sr_error *err);

    /* ---- version 6 ---- */

    /*
     * vdi_cow of a writable VDI whose image a running writer keeps open
     * (hooks): the VDI's new leaf is made under another name first, its
     * backing file the new hidden parent (the writer's image, under its
     * new name), hooks->switch_to moves the writer onto it, and only then
     * does it take the VDI's name; so the writer's data up to the switch
     * is in the parent the snapshot shares, and none after it.  When the
     * switch fails, nothing is left changed.  A crash between the switch
     * and the rename is finished at the next sr_attach.  Optional.
     */
    int (*vdi_cow_live)(const xcp_sr_target *sr, const char *location,
                        bool read_only, const char *uuid,
                        const xcp_sr_cow_hooks *hooks,
                        xcp_sr_cow_result *out, xcp_sr_error *err);

    /* ---- version 8 ---- */

    /*
     * The ranges of [0, length) where the VDI at location may differ from
     * the VDI at base (both of this SR), as their chains tell without
     * reading data: what the images of either chain above the nearest
     * image both share set themselves, merged and in order, one cb call
     * each (nonzero from cb stops and is returned).  *related is false,
     * and cb not called, when the chains share no image.  Optional
     * (NULL: the SR layer compares what the two VDIs hold).
     */
    int (*vdi_changes)(const xcp_sr_target *sr, const char *location,
                       const char *base, uint64_t length, bool *related,
                       xcp_sr_extent_cb cb, void *ctx, xcp_sr_error *err);

    /* ---- version 9 ---- */

    /*
     * Where the VDI's bytes at offset lie, as they are, in a file the
     * stream holds open (a raw image, a qcow2 image's data clusters, a
     * VHD's data sectors, in the chain), so that a transfer can send them with sendfile(2)
     * instead of reading them: *fd (the stream's, valid until
     * stream_close, only ever read) and *pos, for the first *len bytes
     * (at least 1, at most length).  *fd = -1 when those bytes are to be
     * read with stream_read instead (zeros, or stored otherwise).  The
     * range lies within the virtual size.  Errors: XCP_SR_ERR_VDI_IO.
     * Optional (NULL: every byte is read).
     */
    int (*stream_map)(xcp_sr_stream *s, uint64_t offset, uint64_t length,
                      int *fd, uint64_t *pos, uint64_t *len,
                      xcp_sr_error *err);
} xcp_sr_ops;

/* The static description of an SR type. */
typedef struct xcp_sr_type {
    const char *name;           /* SR.type, SM.type: "file" */
    const char *description;
    const char *vendor;
    const char *copyright;
    const char *version;        /* driver version, for SM.version */
    uint64_t capabilities;      /* XCP_SR_CAP_* */
    const char *content_type;   /* default SR.content_type: "user" ... */
    /* device_config keys, ending with an entry whose key is NULL. */
    const xcp_sr_config_key *config_keys;
    const xcp_sr_ops *ops;
} xcp_sr_type;

#ifdef __cplusplus
}
#endif

#endif
