/*
 * The SR layer's policy side, as the rest of the API uses it: VDIs as
 * database objects backed by an SR driver (include/xcp/sys/sr.h). Drivers
 * get paths and uuids; these functions keep the records right.
 */
#ifndef XCP_STORAGE_H
#define XCP_STORAGE_H

#include "../engine/engine.h"
#include <xcp/sys/sr.h>

/* The SR type table (sr/registry.c). */
const xcp_sr_type *xcp__sr_type_find(const char *name);
size_t xcp__sr_type_count(void);
const xcp_sr_type *xcp__sr_type_at(size_t i);

/* A driver target for an SR: owns the device_config copy. */
typedef struct xcp__srt {
    xcp_sr_target t;
    xcp_sr_kv kv[32];
    char *loc;
    const xcp_sr_type *type;
    pthread_mutex_t *lock;   /* the engine's sr_lock while held */
} xcp__srt;

/* Build the target of sr on this host (needs an attached PBD unless
 * any_pbd). Errors: SR_HAS_NO_PBDS, SR_NOT_ATTACHED, SR_UNKNOWN_DRIVER.
 * Until xcp__srt_free the caller holds the engine's sr_lock, which
 * serialises driver calls with the background SR collector (the lock
 * order is engine lock, then sr_lock). */
int xcp__srt_get(xcp__ctx *c, xcp__obj *sr, bool any_pbd, xcp__srt *out);
void xcp__srt_free(xcp__srt *t);
/* What a failed driver call was about: its error's parameters. */
typedef struct xcp__sr_about {
    const char *sr;             /* the SR's ref, or NULL */
    const char *vdi;            /* the VDI's ref, or NULL */
    int64_t requested;          /* bytes the call asked for (SR_FULL) */
    int64_t maximum;            /* bytes free in the SR (SR_FULL) */
} xcp__sr_about;
/* The about of a call on sr and vdi (either may be NULL), asking for
 * requested bytes; maximum is the SR's free space as its record says.
 * The refs are borrowed from the objects. */
xcp__sr_about xcp__sr_about_of(xcp__obj *sr, xcp__obj *vdi,
                               int64_t requested);
/*
 * Turn a driver error into the thread's XenAPI error, of its kind with
 * the parameters the XenAPI lists (errors.def): SR_BACKEND_FAILURE
 * ["", reason, ""], SR_NOT_EMPTY [], SR_FULL [requested, maximum],
 * SR_OPERATION_NOT_SUPPORTED [sr], VDI_MISSING [sr, vdi] ("" for what is
 * unknown, as XAPI), VDI_IO_ERROR [reason], VDI_READONLY [vdi],
 * SR_BACKEND_FAILURE_79 ["", reason, ""] (a size the format cannot have).
 */
int xcp__sr_fail_about(const xcp_sr_error *err, const xcp__sr_about *a);
/* The same for a call on sr and vdi asking for requested bytes. */
int xcp__sr_fail(const xcp_sr_error *err, xcp__obj *sr, xcp__obj *vdi,
                 int64_t requested);
/* The type's capability, or SR_OPERATION_NOT_SUPPORTED. */
int xcp__sr_need(xcp__obj *sr, const xcp__srt *t, uint64_t cap);

/* Errors: SR_BACKEND_FAILURE unless a file or iso SR's device_config
 * location (dconf, may be NULL) lies below an SR root or the state
 * directory (sr.c). Other types pass. */
int xcp__check_sr_location(xcp__ctx *c, const char *type,
                           const xcp_value *dconf);
/* Set field of o to a copy of the call's argument arg. */
int xcp__copy_arg(xcp__ctx *c, xcp__obj *o, int field, size_t arg);
/* Attach sr through the driver and mark pbd attached. */
int xcp__sr_attach(xcp__ctx *c, xcp__obj *sr, xcp__obj *pbd);

/* Errors: INVALID_VALUE ["sm_config:image-format", format] unless format
 * is NULL (none asked for), "vhd" or "qcow2": the image formats a user
 * may ask for with sm-config:image-format (SR.create, VDI.create). */
int xcp__image_format_check(const char *format);
/* The image-format of an sm_config argument (borrowed), or NULL. */
const char *xcp__image_format_arg(const xcp_value *sm_config);
/* The SR's default image format for new VDIs (its sm_config
 * image-format, borrowed from sr), or NULL when it has none (the
 * type's default, qcow2 for file SRs). */
const char *xcp__sr_image_format(xcp__obj *sr);

/* Create a VDI record + storage in sr. format NULL = the SR's default
 * (xcp__sr_image_format), else the type's. */
int xcp__vdi_new(xcp__ctx *c, xcp__obj *sr, const char *name,
                 const char *descr, int64_t size, const char *type,
                 const char *format, xcp__obj **out);
/* Destroy the record (VDI must be unattached); its storage is deleted
 * once that is committed, so a crash never leaves a record without its
 * image (a leftover image is collected at the next open). */
int xcp__vdi_delete(xcp__ctx *c, xcp__obj *vdi);
/* xcp__vdi_delete whose image is deleted by the collector's thread after
 * the commit, off the engine lock, so that the call answers first (a
 * suspend image at VM.resume): its intent stays recorded until then, and
 * the collector's last pass at close deletes what is still queued. */
int xcp__vdi_delete_later(xcp__ctx *c, xcp__obj *vdi);
/* The collector's thread (unlocked): delete the images queued by
 * xcp__vdi_delete_later. */
void xcp__sr_drop_doomed(xcp__engine *e);
/* Tests: called with the image's location just before an image whose
 * record was committed gone is deleted (NULL: nothing). */
extern void (*xcp__sr_drop_probe)(const char *location);
/* Copy-on-write children: snapshot (read-only) or clone (writable). */
int xcp__vdi_cow(xcp__ctx *c, xcp__obj *vdi, bool snapshot,
                 xcp__obj **out);
/* The image format of new VDIs where neither the VDI nor its SR asks
 * for one (the file SR types' default). */
#define XCP__DEFAULT_IMAGE_FORMAT "qcow2"
/* Full copy into sr (NULL = same SR), in sr's image format (its
 * sm_config image-format, else XCP__DEFAULT_IMAGE_FORMAT), converting
 * when the source's differs; raw images stay raw. */
int xcp__vdi_full_copy(xcp__ctx *c, xcp__obj *vdi, xcp__obj *sr,
                       xcp__obj **out);
/* Whether network net's purpose set holds purpose (network.c). */
bool xcp__net_has_purpose(const xcp__obj *net, const char *purpose);
/* Path and format a hypervisor opens. */
int xcp__vdi_path(xcp__ctx *c, xcp__obj *vdi, xcp_sr_vdi_path *out);
/* Whether a VBD of vdi is currently attached (to a running VM). */
bool xcp__vdi_attached(xcp__ctx *c, xcp__obj *vdi);

/*
 * VDI streams: a VDI's image open for moving its bytes (transfers), over
 * the SR driver's stream slots. xcp__vdi_stream_open is a call of the
 * caller's transaction; the handle it makes then works without the
 * engine lock, one thread at a time, until xcp__vdi_stream_close. A
 * stream for writing (write_op non-NULL: the operation, as VDI_IN_USE
 * names it) needs a writable VDI (VDI_READONLY for a read-only one or a
 * snapshot) that no running VM has attached and no other stream writes
 * (VDI_IN_USE [vdi, write_op]). I/O errors are
 * the driver's (VDI_IO_ERROR [reason]); every failure sets the thread's
 * error.
 */
typedef struct xcp__vdi_stream xcp__vdi_stream;
int xcp__vdi_stream_open(xcp__ctx *c, xcp__obj *vdi, const char *write_op,
                         xcp__vdi_stream **out);
/* The VDI's virtual size, as the image says. */
uint64_t xcp__vdi_stream_size(const xcp__vdi_stream *s);
/* Read or write n bytes at offset, within the virtual size. */
int xcp__vdi_stream_read(xcp__vdi_stream *s, uint64_t offset, void *buf,
                         size_t n);
int xcp__vdi_stream_write(xcp__vdi_stream *s, uint64_t offset,
                          const void *buf, size_t n);
/* The ranges of [offset, offset + length) that may hold data, in order
 * (what is not listed reads as zeros); nonzero from cb stops and is
 * returned, the thread's error left as cb left it. */
int xcp__vdi_stream_extents(xcp__vdi_stream *s, uint64_t offset,
                            uint64_t length, xcp_sr_extent_cb cb, void *ctx);
/* Where [offset, offset + length) starts as it is in a file the stream
 * holds (*fd, valid until close, and *pos, for *len bytes), for
 * sendfile(2); *fd = -1 when those *len bytes are to be read (zeros, or
 * a driver without the slot: then *len is length). */
int xcp__vdi_stream_map(xcp__vdi_stream *s, uint64_t offset,
                        uint64_t length, int *fd, uint64_t *pos,
                        uint64_t *len);
/* Flush if written to and free s (NULL accepted); the flush result. */
int xcp__vdi_stream_close(xcp__vdi_stream *s);

/* The first bridge name xapiN no network has, into out (api/network.c). */
void xcp__network_free_bridge(xcp__ctx *c, char *out, size_t len);

/* The blocks (XCP__CBT_BLOCK_SIZE each, a bit per block as
 * VDI.list_changed_blocks gives them) changed from snapshot from to to (a
 * later snapshot of the same disk, or the disk), from their changed block
 * tracking: VDI_NO_CBT_METADATA when one has none, SR_BACKEND_FAILURE
 * when their epochs do not link (unrelated).  *bits is malloc'd. */
int xcp__vdi_changed_bits(xcp__ctx *c, xcp__obj *from, xcp__obj *to,
                          uint8_t **bits, uint64_t *nblocks);
/*
 * The ranges of vdi that may differ from base (a delta export), merged,
 * into out, and how they were found into *how (static): "cbt" when both
 * track their changes and the epochs link, else "chain" when the SR
 * tells from their images (what the images above the one both chains
 * share hold), else "compare" (every range either may hold: other SRs,
 * unrelated disks).  No data is read.  A call of the caller's
 * transaction.
 */
int xcp__vdi_delta(xcp__ctx *c, xcp__obj *vdi, xcp__obj *base,
                   xcp__ranges *out, const char **how);

/* Record what the driver says of a VDI's image: virtual size,
 * physical utilisation, location, sm_config image-format and vhd-parent
 * (the parent's uuid, removed when there is none). */
int xcp__vdi_apply_info(xcp__ctx *c, xcp__obj *vdi,
                        const xcp_sr_vdi_info *in);
/* SR_FULL [need, free] when the storage behind sr has fewer than need
 * bytes free now (the driver's sr_stat; 0 when it cannot tell). */
int xcp__sr_room(xcp__ctx *c, xcp__obj *sr, uint64_t need);
/* Refresh a VDI's sizes from storage, and its SR's totals. */
int xcp__vdi_refresh(xcp__ctx *c, xcp__obj *vdi);

/*
 * Before the driver changes the image of a VDI of sr in place (a resize):
 * an intent ('R', the location) until the transaction ends, so that a
 * crash between the change and the commit has the next open read the
 * record again from the storage (sizes, SR accounting).
 */
/* A new PBD of sr on host with device_config dconf (copied), not plugged;
 * PBD_EXISTS when sr has one on host already (as XAPI). */
int xcp__pbd_new(xcp__ctx *c, xcp__obj *sr, xcp__obj *host,
                 const xcp_value *dconf, xcp__obj **out);

int xcp__vdi_intent_refresh(xcp__ctx *c, xcp__obj *sr, const char *location);
/* Any intent (kind 'R' as above, or 'X': a VDI.data_destroy of the VDI
 * at location, which the next open finishes) until the transaction
 * ends. */
int xcp__vdi_intent(xcp__ctx *c, char kind, xcp__obj *sr,
                    const char *location);
/* The record's side of a VDI.data_destroy whose driver step is done: the
 * VBDs go, type cbt_metadata, sizes read again (vdi.c). */
int xcp__vdi_data_destroyed(xcp__ctx *c, xcp__obj *vdi, xcp__obj *sr);
int xcp__sr_refresh(xcp__ctx *c, xcp__obj *sr);
/* The SR to use for new disks when none is given: pool.default_SR. */
xcp__obj *xcp__default_sr(xcp__ctx *c);

/*
 * The SR collector.  xcp__sr_collect runs one pass over the SRs attached
 * on this host whose type can gc: it deletes hidden parents nothing
 * depends on and interrupted operations' debris, merges hidden nodes up
 * into their parents (XCP_SR_GC_COALESCE_HIDDEN, safe with VDIs attached)
 * and leaf-coalesces VDIs nothing has attached or open
 * (XCP_SR_GC_COALESCE), then refreshes the records of the SRs it changed
 * (space, VDIs' vhd-parent).  Through the driver's sr_gc_run it holds
 * sr_lock only for the short metadata steps, never the engine lock
 * while it holds sr_lock; each merge copied unlocked shows as a
 * "Garbage collection" task with its progress (docs/design-sr-types.md).
 * Its thread runs it when asked with xcp__sr_gc_request (engine lock
 * held), e.g. after an image is deleted, and once more before the engine
 * closes if a request is pending.
 */
void xcp__sr_collect(xcp__engine *e);
void xcp__sr_gc_request(xcp__engine *e);
/*
 * Intents.  Before an image is made or deleted outside the commit that
 * makes or drops its record, a line goes to <state dir>/sr-intents
 * ("C <SR uuid> <VDI uuid>" before one is made, "D <SR uuid> <location>"
 * before one is deleted after the commit); write() is enough against a
 * kill.  The file is emptied whenever nothing is in flight.  At open the
 * lines left say exactly which images a crash may have orphaned, so
 * nothing else (an image placed in the SR for SR.scan, or one whose VDI
 * was forgotten with VDI.forget) is ever taken for a leftover.
 */
/* Open the file at engine open (before xcp__sr_collect_leftovers). */
int xcp__sr_intents_open(xcp__engine *e);
/* At engine open (lock held, in a transaction, nothing else running):
 * attach again the SRs whose PBD here is marked attached (a PBD whose
 * attach fails is marked unplugged), then
 * collect what interrupted calls left behind: images of the intents
 * left whose record is not there (made) or is gone (deleted), suspend
 * images no VM refers to (deleted after the commit), then a collector
 * pass (hidden parents, temporary files). */
int xcp__sr_collect_leftovers(xcp__ctx *c);

/* ---- disks of running VMs (vdi_live.c) ---------------------------------- */

/* The device serving a VDI in a running domain. */
typedef struct xcp__live_disk {
    uint32_t domid;
    char vdev[16];
} xcp__live_disk;

/* 1 with *out filled when a running VM has vdi attached, else 0. */
int xcp__vdi_live_find(xcp__ctx *c, xcp__obj *vdi, xcp__live_disk *out);
/* Whether the hypervisor driver can pause and reopen a disk's back end. */
bool xcp__live_can_pause(xcp_hv *hv);
/*
 * change(arg) run with the back end of d paused, then the back end
 * reopens vdi's image (whatever change returned); run as it is when the
 * domain is gone already. change's return, or the XenAPI error of a
 * failed pause or reopen.
 */
int xcp__vdi_live_change(xcp__ctx *c, xcp__obj *vdi, const xcp__live_disk *d,
                         int (*change)(void *arg), void *arg);
/* For the collector (no engine lock): the pause of d's back end, 0 or a
 * negative errno (-ENOTSUP when the driver cannot); then its reopen on
 * path, retried, logged when it fails. */
int xcp__live_pause_path(xcp_hv *hv, const xcp__live_disk *d);
void xcp__live_reopen_path(xcp_hv *hv, const xcp__live_disk *d,
                           const xcp_sr_vdi_path *path);

/*
 * Switch the changed block tracking of vdi's image (of sr) on or off when
 * the open transaction ends: at its commit (at_commit), or at its abort
 * (the undo of a switch done before the commit); live: the running VM's
 * disk it is, whose back end is paused around it (or does it itself).
 * A failure then is logged: the image keeps its tracking, never less.
 */
int xcp__vdi_cbt_on_txn_end(xcp__ctx *c, xcp__obj *vdi, xcp__obj *sr,
                            bool on, bool at_commit,
                            const xcp__live_disk *live);
/* The back end of a live disk that moves its writes itself at a snapshot
 * (driver slot disk_snapshot), for the SR's vdi_cow_live: e holds the
 * driver's error when the move failed. */
typedef struct xcp__live_writer {
    xcp_hv *hv;
    xcp__live_disk disk;
    bool failed;
    xcp_hv_error e;
} xcp__live_writer;
/*
 * Before a change of running disk d by its back end (a snapshot, a
 * resize, tracking switched on): a leaf coalesce that back end runs on
 * it for the SR collector (disk_stream; the disk takes no change
 * meanwhile) is cancelled, as XAPI aborts its GC when an SR operation
 * needs a disk, the collector's run following it stopped first (it
 * plans the coalesce again later).  The engine lock and sr_lock held.
 * 0, or the driver's negative code with err filled.
 */
int xcp__live_stream_stop(xcp__engine *e, const xcp__live_disk *d,
                          xcp_hv_error *err);
/*
 * The snapshot of several disks of a running domain at one instant, as
 * XAPI pauses every tapdisk first: the domain is paused around them
 * (its vCPUs stopped, no write is issued meanwhile: each disk's snapshot
 * holds what the guest had been told was written before the first).
 * xcp__live_hold: 1 when paused, 0 when there is no domain, or the
 * XenAPI error. xcp__live_release unpauses it (retried, logged) and
 * returns rc, or the failure of the unpause when rc is 0.
 */
int xcp__live_hold(xcp__ctx *c, uint32_t domid);
int xcp__live_release(xcp__ctx *c, uint32_t domid, int rc);
/* The XenAPI error of a failed driver call on a running disk:
 * OPERATION_NOT_ALLOWED when the back end cannot (-ENOTSUP), else
 * SR_BACKEND_FAILURE with the driver's reason (QEMU's error class and
 * description on Xen); INTERNAL_ERROR only for no memory. */
int xcp__live_fail(const xcp_hv_error *e);
/* xcp_sr_cow_hooks.switch_to over an xcp__live_writer (ctx). */
int xcp__live_switch_to(void *ctx, const char *path, const char *format,
                        char *reason, size_t len);

#endif
